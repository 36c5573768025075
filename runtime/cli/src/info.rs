//! `emoedge info`: the size and cost of a model configuration.

use emoedge_models::{Config, EMOTIONS, ModelCost};

/// A human-readable table of parameters and FLOPs for `config`.
pub fn report(config: &Config) -> String {
    let cost = ModelCost::of(config);
    let t = config.clip_length;
    let mflops = |flops: usize| flops as f64 / 1e6;
    let mut out = String::new();
    out += &format!(
        "model: crop {s}×{s}, clip T={t}, tokens {g}×{g}×{d} → {n}×{e} per expert, labels: {labels}\n",
        s = config.crop_size,
        g = config.token_grid(),
        d = config.token_dim,
        n = config.expert_tokens(),
        e = config.expert_dim,
        labels = EMOTIONS.join(", "),
    );
    out += "part                          params     MFLOPs\n";
    out += &format!("frame (frame.onnx, per face)  {:>9}  {:>9.2}\n", cost.frame_params, mflops(cost.frame_flops));
    out += &format!("clip  (clip.onnx, per clip)   {:>9}  {:>9.2}\n", cost.clip_params, mflops(cost.clip_flops));
    out += &format!("total (T frames + clip)       {:>9}  {:>9.2}\n", cost.params(), mflops(cost.full_clip_flops(t)));
    out
}
