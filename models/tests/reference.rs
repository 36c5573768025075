//! The reference forward's contract: shapes, routing, the streaming split, determinism.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{max_abs_diff, model, tensor, to_vec};
use emoedge_models::ModelCost;
use emoedge_models::reference::Routing;

#[test]
fn output_shapes_for_several_batch_sizes() {
    let (config, model, device) = model(1);
    let (t, s, e, n) = (config.clip_length, config.crop_size, config.expert_dim, config.expert_tokens());
    for b in [1, 2, 5] {
        let frames = model.forward_frame(tensor([b, 3, s, s], 10 + b as u64, &device));
        assert_eq!(frames.general_tokens.dims(), [b, n, e]);
        assert_eq!(frames.emotion_tokens.dims(), [b, n, e]);
        assert_eq!(frames.pooled.dims(), [b, config.token_dim]);

        let out = model.forward(tensor([b, t, 3, s, s], 20 + b as u64, &device));
        assert_eq!(out.emotion_logits.dims(), [b, 7]);
        assert_eq!(out.emotion_probs.dims(), [b, 7]);
        assert_eq!(out.gate.dims(), [b, 2]);
        assert_eq!(out.general_logits.dims(), [b, config.general_classes]);
        assert_eq!(out.fused_tokens.dims(), [b, t * n, e]);
    }
}

#[test]
fn gate_weights_are_positive_and_sum_to_one() {
    let (config, model, device) = model(2);
    let (t, s) = (config.clip_length, config.crop_size);
    let out = model.forward(tensor([4, t, 3, s, s], 3, &device));
    for pair in to_vec(out.gate).chunks(2) {
        assert!(pair[0] > 0.0 && pair[1] > 0.0, "{pair:?}");
        assert!((pair[0] + pair[1] - 1.0).abs() < 1e-6, "{pair:?}");
    }
    for probs in to_vec(out.emotion_probs).chunks(7) {
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn fused_tokens_are_the_gate_weighted_sum_of_the_experts() {
    let (config, model, device) = model(3);
    let (b, t, s, e) = (3, config.clip_length, config.crop_size, config.expert_dim);
    let clip = model.forward_frame(tensor([b * t, 3, s, s], 4, &device)).into_clips(t);
    let general = to_vec(clip.general_tokens.clone());
    let emotion = to_vec(clip.emotion_tokens.clone());
    let out = model.forward_clip(clip);
    let gate = to_vec(out.gate);
    let fused = to_vec(out.fused_tokens);
    let per_clip = t * config.expert_tokens() * e;
    let expected: Vec<f32> = (0..b * per_clip)
        .map(|i| {
            let c = i / per_clip;
            gate[2 * c] * general[i] + gate[2 * c + 1] * emotion[i]
        })
        .collect();
    assert!(max_abs_diff(&fused, &expected) <= 1e-6);
}

#[test]
fn pinned_routing_uses_one_expert_only() {
    let (config, model, device) = model(4);
    let (t, s) = (config.clip_length, config.crop_size);
    let clip = model.forward_frame(tensor([2 * t, 3, s, s], 5, &device)).into_clips(t);
    let general = to_vec(clip.general_tokens.clone().reshape([2, t * config.expert_tokens(), config.expert_dim]));
    let out = model.forward_clip_routed(clip, Routing::GeneralOnly);
    assert_eq!(to_vec(out.gate), vec![1.0, 0.0, 1.0, 0.0]);
    assert_eq!(to_vec(out.fused_tokens), general);
}

#[test]
fn frame_by_frame_then_clip_equals_whole_clip() {
    let (config, model, device) = model(5);
    let (b, t, s) = (2, config.clip_length, config.crop_size);
    let clips = tensor([b, t, 3, s, s], 6, &device);
    let whole = model.forward(clips.clone());

    // Streaming: each frame encoded alone, as the runtime does, then the cached T frames.
    let mut general = Vec::new();
    let mut emotion = Vec::new();
    let mut pooled = Vec::new();
    for i in 0..b * t {
        let frame = clips.clone().reshape([b * t, 3, s, s]).narrow(0, i, 1);
        let f = model.forward_frame(frame);
        general.push(f.general_tokens);
        emotion.push(f.emotion_tokens);
        pooled.push(f.pooled);
    }
    let features = emoedge_models::reference::FrameFeatures {
        general_tokens: burn::tensor::Tensor::cat(general, 0),
        emotion_tokens: burn::tensor::Tensor::cat(emotion, 0),
        pooled: burn::tensor::Tensor::cat(pooled, 0),
    };
    let streamed = model.forward_clip(features.into_clips(t));

    for (a, b) in [
        (whole.emotion_logits, streamed.emotion_logits),
        (whole.emotion_probs, streamed.emotion_probs),
        (whole.gate, streamed.gate),
        (whole.general_logits, streamed.general_logits),
    ] {
        let diff = max_abs_diff(&to_vec(a), &to_vec(b));
        assert!(diff <= 1e-5, "streamed differs by {diff}");
    }
    assert!(max_abs_diff(&to_vec(whole.fused_tokens), &to_vec(streamed.fused_tokens)) <= 1e-5);
}

#[test]
fn same_seed_same_output_bit_for_bit() {
    let (config, a, device) = model(42);
    let (_, b, _) = model(42);
    let (_, c, _) = model(43);
    let input = tensor([2, config.clip_length, 3, config.crop_size, config.crop_size], 7, &device);
    let out_a = to_vec(a.forward(input.clone()).emotion_logits);
    let out_b = to_vec(b.forward(input.clone()).emotion_logits);
    let out_c = to_vec(c.forward(input).emotion_logits);
    assert_eq!(
        out_a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        out_b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_ne!(out_a, out_c, "a different seed must give different weights");
}

#[test]
fn parameter_count_matches_the_analytic_cost_model() {
    let (config, model, _) = model(6);
    use burn::module::Module;
    assert_eq!(model.num_params(), ModelCost::of(&config).params());
    let total: usize = model.param_specs().iter().map(|s| s.shape.iter().product::<usize>()).sum();
    assert_eq!(total, model.num_params());
}

#[test]
fn parameter_ids_follow_parameter_paths() {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Ids(Vec<u64>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<burn::tensor::Tensor<D>>) {
            self.0.push(param.id.val());
        }
    }
    let ids = |seed| {
        let (_, model, _) = model(seed);
        let mut ids = Ids(Vec::new());
        model.visit(&mut ids);
        ids.0
    };
    let (a, b) = (ids(31), ids(32));
    assert_eq!(a, b, "ids depend on paths, not on the seed or the process");
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), a.len(), "every parameter has its own id");
}

#[test]
fn taps_see_every_conv_and_linear_input_and_an_identity_tap_changes_nothing() {
    use emoedge_models::reference::Tap;
    use std::cell::RefCell;
    struct Record(RefCell<Vec<String>>);
    impl Tap for Record {
        fn tap(&self, site: &str, x: burn::tensor::Tensor<1>) -> burn::tensor::Tensor<1> {
            self.0.borrow_mut().push(site.to_string());
            x
        }
    }
    let (config, model, device) = model(8);
    let input = tensor([1, config.clip_length, 3, config.crop_size, config.crop_size], 9, &device);
    let record = Record(RefCell::new(Vec::new()));
    let tapped = model.forward_tapped(input.clone(), Routing::Gated, Some(&record));
    let plain = model.forward(input);
    assert_eq!(to_vec(tapped.emotion_logits), to_vec(plain.emotion_logits));

    let mut sites = record.0.into_inner();
    sites.sort();
    sites.dedup();
    let weights: Vec<String> =
        model.param_specs().into_iter().map(|s| s.name).filter(|n| n.ends_with(".weight")).collect();
    // Every tapped site is a layer with weights; every conv/linear weight has its input tapped,
    // except the attention's own projections (q/k/v share the `gate.attention` input).
    for site in &sites {
        let layer = if site == "gate.attention" { "gate.attention.query".to_string() } else { site.clone() };
        assert!(weights.contains(&format!("{layer}.weight")), "site `{site}` is not a layer");
    }
    let untapped: Vec<&String> = weights
        .iter()
        .filter(|w| !w.contains("norm") && !w.starts_with("gate.attention."))
        .filter(|w| !sites.contains(&w.trim_end_matches(".weight").to_string()))
        .collect();
    assert!(untapped.is_empty(), "layers without a tapped input: {untapped:?}");
    // encoder: 2 stem convs + 4 modules × (shortcut + 2 separable × 2); experts 2 × 2; gate 4; head 3.
    assert_eq!(sites.len(), 2 + 4 * 5 + 2 * 2 + 4 + 3, "{sites:?}");
}
