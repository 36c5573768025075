//! `clip.onnx`: the clip part — the cached frame features of T frames → `emotion_logits`,
//! `emotion_probs`, `gate`, `general_logits`, `fused_tokens` — built as
//! `HybridModel::forward_clip` runs (gated routing).

use emoedge_models::Config;
use onnx_protobuf::ModelProto;

use crate::frame::{at_site, layer_norm, linear, param};
use emoedge_models::io::ClipIo;

use crate::graph::{Arithmetic, GraphBuilder};
use crate::weights::Weights;

/// burn-nn's multi-head self-attention: q/k/v projections, scaled dot product, softmax,
/// weighted values, output projection.
fn self_attention(g: &mut GraphBuilder, w: &Weights, x: &str, c: &Config) -> String {
    let (t, d, heads) = (c.clip_length as i64, c.token_dim as i64, c.gate_heads as i64);
    let d_k = d / heads;
    let x = &at_site(g, w, x, "gate.attention");
    let project = |g: &mut GraphBuilder, name: &str, perm: &[i64]| {
        let y = linear(g, w, x, &format!("gate.attention.{name}"));
        let y = g.reshape(&y, &[-1, t, heads, d_k]);
        g.transpose(&y, perm)
    };
    let q = project(g, "query", &[0, 2, 1, 3]);
    let k_t = project(g, "key", &[0, 2, 3, 1]);
    let v = project(g, "value", &[0, 2, 1, 3]);
    let scores = g.matmul(&q, &k_t);
    let scores = g.scale(&scores, 1.0 / (d_k as f32).sqrt());
    let weights = g.softmax(&scores, -1);
    let context = g.matmul(&weights, &v);
    let context = g.transpose(&context, &[0, 2, 1, 3]);
    let context = g.reshape(&context, &[-1, t, d]);
    linear(g, w, &context, "gate.attention.output")
}

fn gate(g: &mut GraphBuilder, w: &Weights, pooled: &str, c: &Config) -> String {
    let position = param(g, w, "gate.position");
    let frames = g.add(pooled, &position);
    let attended = self_attention(g, w, &frames, c);
    let summary = g.reduce_mean(&attended, &[1], false);
    let mut h = summary;
    for i in 1..=2 {
        let y = linear(g, w, &h, &format!("gate.hidden{i}"));
        let y = g.relu(&y);
        h = layer_norm(g, w, &y, &format!("gate.norm{i}"), c.layer_norm_eps);
    }
    let logits = linear(g, w, &h, "gate.logits");
    g.softmax(&logits, 1)
}

pub fn clip_graph(c: &Config, w: &Weights, arithmetic: Arithmetic, metadata: &[(&str, String)]) -> ModelProto {
    let mut g = GraphBuilder::new("emoedge_clip", arithmetic);
    let (t, n, e) = (c.clip_length, c.expert_tokens(), c.expert_dim);
    let contract = ClipIo::new(c);
    let [general, emotion, pooled] = contract.inputs().map(|spec| g.input(spec));

    let weights = gate(&mut g, w, &pooled, c);
    let fused_len = (t * n) as i64;
    let general = g.reshape(&general, &[-1, fused_len, e as i64]);
    let emotion = g.reshape(&emotion, &[-1, fused_len, e as i64]);
    let g_general = g.slice(&weights, 0, 1, 1);
    let g_general = g.reshape(&g_general, &[-1, 1, 1]);
    let g_emotion = g.slice(&weights, 1, 2, 1);
    let g_emotion = g.reshape(&g_emotion, &[-1, 1, 1]);
    let general = g.mul(&general, &g_general);
    let emotion = g.mul(&emotion, &g_emotion);
    let fused = g.add(&general, &emotion);

    // Temporal head: one learned query attends over all fused tokens.
    let keys = linear(&mut g, w, &fused, "head.key");
    let (_, query) = w.get("head.query");
    let query = g.weight("head.query", &[e, 1], query);
    let scores = g.matmul(&keys, &query);
    let scores = g.scale(&scores, 1.0 / (e as f32).sqrt());
    let attention = g.softmax(&scores, 1);
    let attention = g.transpose(&attention, &[0, 2, 1]);
    let summary = g.matmul(&attention, &fused);
    let summary = g.reshape(&summary, &[-1, e as i64]);
    let summary = layer_norm(&mut g, w, &summary, "head.norm", c.layer_norm_eps);
    let emotion_logits = linear(&mut g, w, &summary, "head.emotion");
    let emotion_probs = g.softmax(&emotion_logits, 1);
    let general_logits = linear(&mut g, w, &summary, "head.general");

    g.output(&emotion_logits, &contract.emotion_logits);
    g.output(&emotion_probs, &contract.emotion_probs);
    g.output(&weights, &contract.gate);
    g.output(&general_logits, &contract.general_logits);
    g.output(&fused, &contract.fused_tokens);
    g.finish(metadata)
}
