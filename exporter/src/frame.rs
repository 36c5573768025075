//! `frame.onnx`: the frame part — `faces [B,3,S,S]` → `general_tokens`, `emotion_tokens`
//! `[B,16,D']`, `pooled [B,D]` — built layer by layer as `HybridModel::forward_frame` runs.

use emoedge_models::Config;
use emoedge_models::config::{STEM_CONVS, pool_padding};
use emoedge_models::cost::encoder_modules;
use onnx_protobuf::ModelProto;

use emoedge_models::io::FrameIo;

use crate::graph::{Arithmetic, GraphBuilder};
use crate::weights::Weights;

/// Adds a parameter as an initializer (INT8 + DequantizeLinear in the INT8 variant) and
/// returns the name of its value.
pub fn param(g: &mut GraphBuilder, w: &Weights, name: &str) -> String {
    match w.quantized(name) {
        Some(q) => g.dequantized_weight(name, &q.shape, &q.values, &q.scales, q.axis),
        None => {
            let (shape, values) = w.get(name);
            g.weight(name, shape, values)
        }
    }
}

/// `x` as it enters tap site `site`: quantized there in the INT8 variant.
pub fn at_site(g: &mut GraphBuilder, w: &Weights, x: &str, site: &str) -> String {
    match w.activation_scale(site) {
        Some(scale) => g.quantize_dequantize(x, scale),
        None => x.to_string(),
    }
}

fn conv(g: &mut GraphBuilder, w: &Weights, x: &str, layer: &str, stride: usize, pad: usize, groups: usize) -> String {
    let x = at_site(g, w, x, layer);
    let weight = param(g, w, &format!("{layer}.weight"));
    let bias = format!("{layer}.bias");
    let bias = w.has(&bias).then(|| param(g, w, &bias));
    g.conv(&x, &weight, bias.as_deref(), stride, pad, groups)
}

/// A separable convolution: depthwise 3×3 ('same') → pointwise 1×1.
fn separable(g: &mut GraphBuilder, w: &Weights, x: &str, layer: &str, channels: usize) -> String {
    let y = conv(g, w, x, &format!("{layer}.depthwise"), 1, 1, channels);
    conv(g, w, &y, &format!("{layer}.pointwise"), 1, 0, 1)
}

pub fn linear(g: &mut GraphBuilder, w: &Weights, x: &str, layer: &str) -> String {
    let x = at_site(g, w, x, layer);
    let (weight, bias) = (param(g, w, &format!("{layer}.weight")), param(g, w, &format!("{layer}.bias")));
    g.linear(&x, &weight, &bias)
}

pub fn layer_norm(g: &mut GraphBuilder, w: &Weights, x: &str, layer: &str, epsilon: f64) -> String {
    let (gamma, beta) = (param(g, w, &format!("{layer}.gamma")), param(g, w, &format!("{layer}.beta")));
    g.layer_norm(x, &gamma, &beta, epsilon as f32)
}

fn expert(g: &mut GraphBuilder, w: &Weights, c: &Config, tokens: &str, name: &str) -> String {
    let (h, d) = ((c.token_grid() / 2) as i64, c.token_dim as i64);
    let grid = g.reshape(tokens, &[-1, h, 2, h, 2, d]);
    let neighbourhoods = g.transpose(&grid, &[0, 1, 3, 2, 4, 5]);
    let merged = g.reshape(&neighbourhoods, &[-1, h * h, 4 * d]);
    let hidden = linear(g, w, &merged, &format!("{name}.merge_proj"));
    let hidden = g.gelu(&hidden);
    linear(g, w, &hidden, &format!("{name}.out_proj"))
}

pub fn frame_graph(c: &Config, w: &Weights, arithmetic: Arithmetic, metadata: &[(&str, String)]) -> ModelProto {
    let mut g = GraphBuilder::new("emoedge_frame", arithmetic);
    let contract = FrameIo::new(c);
    let faces = g.input(&contract.faces);
    let mut x = faces;
    for i in 0..STEM_CONVS {
        let y = conv(&mut g, w, &x, &format!("encoder.stem.{i}"), 1, 0, 1);
        x = g.relu(&y);
    }
    for (i, module) in encoder_modules(c).into_iter().enumerate() {
        let name = format!("encoder.modules.{i}");
        let shortcut = conv(&mut g, w, &x, &format!("{name}.shortcut"), 2, 0, 1);
        let y = separable(&mut g, w, &x, &format!("{name}.separable.0"), module.in_channels);
        let y = g.relu(&y);
        let y = separable(&mut g, w, &y, &format!("{name}.separable.1"), module.out_channels);
        let pooled = g.max_pool(&y, 3, 2, pool_padding(module.side));
        x = g.add(&pooled, &shortcut);
    }
    let d = c.token_dim as i64;
    let flat = g.reshape(&x, &[0, d, -1]);
    let tokens = g.transpose(&flat, &[0, 2, 1]);
    let tokens = layer_norm(&mut g, w, &tokens, "encoder.token_norm", c.layer_norm_eps);
    let general = expert(&mut g, w, c, &tokens, "general_expert");
    let emotion = expert(&mut g, w, c, &tokens, "emotion_expert");
    let pooled = g.reduce_mean(&tokens, &[1], false);
    g.output(&general, &contract.general_tokens);
    g.output(&emotion, &contract.emotion_tokens);
    g.output(&pooled, &contract.pooled);
    g.finish(metadata)
}
