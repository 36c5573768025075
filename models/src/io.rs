//! The model's I/O contract: the names and shapes of the frame and clip parts' inputs and
//! outputs, derived from [`Config`]. The exporter names its graphs' tensors from it, the
//! runtime checks loaded models against it and feeds them by it, and the TensorRT optimisation
//! profiles are written from it — so a tensor name is spelt once.

use crate::Config;
use crate::manifest::ProfileShapes;

/// Input of the frame part: preprocessed face crops `[B, 3, S, S]`.
pub const FACES: &str = "faces";
/// General-expert tokens: frame output `[B, N, D']`, clip input `[B, T, N, D']`.
pub const GENERAL_TOKENS: &str = "general_tokens";
/// Emotion-expert tokens: frame output `[B, N, D']`, clip input `[B, T, N, D']`.
pub const EMOTION_TOKENS: &str = "emotion_tokens";
/// Mean encoder token: frame output `[B, D]`, clip input `[B, T, D]`.
pub const POOLED: &str = "pooled";
/// Clip outputs: emotion logits and softmax `[B, K]`, router weights `[B, 2]`, general logits.
pub const EMOTION_LOGITS: &str = "emotion_logits";
pub const EMOTION_PROBS: &str = "emotion_probs";
pub const GATE: &str = "gate";
pub const GENERAL_LOGITS: &str = "general_logits";
/// The router-weighted mix of both experts' tokens `[B, T·N, D']`, for inspection.
pub const FUSED_TOKENS: &str = "fused_tokens";

/// One dimension of a tensor: the dynamic batch, or a fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    Batch,
    Fixed(usize),
}

/// One named input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: &'static str,
    pub dims: Vec<Dim>,
}

impl TensorSpec {
    fn new(name: &'static str, fixed: &[usize]) -> Self {
        Self { name, dims: std::iter::once(Dim::Batch).chain(fixed.iter().map(|&d| Dim::Fixed(d))).collect() }
    }

    /// The shape as ONNX reports it: `-1` for the batch.
    pub fn onnx_shape(&self) -> Vec<i64> {
        self.dims.iter().map(|d| if let Dim::Fixed(n) = d { *n as i64 } else { -1 }).collect()
    }

    /// Elements of one batch item.
    pub fn item_len(&self) -> usize {
        self.dims.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { 1 }).product()
    }

    /// `name:BxDxD…` for a TensorRT optimisation profile at batch `batch`.
    fn profile_entry(&self, batch: usize) -> String {
        let dims: Vec<String> =
            self.dims.iter().map(|d| if let Dim::Fixed(n) = d { n.to_string() } else { batch.to_string() }).collect();
        format!("{}:{}", self.name, dims.join("x"))
    }
}

/// The inputs and outputs of one part, in graph order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartIo {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

impl PartIo {
    /// The frame part (`frame.onnx`): one face crop → its expert tokens and pooled feature.
    pub fn frame(c: &Config) -> Self {
        let (s, n, e) = (c.crop_size, c.expert_tokens(), c.expert_dim);
        Self {
            inputs: vec![TensorSpec::new(FACES, &[3, s, s])],
            outputs: vec![
                TensorSpec::new(GENERAL_TOKENS, &[n, e]),
                TensorSpec::new(EMOTION_TOKENS, &[n, e]),
                TensorSpec::new(POOLED, &[c.token_dim]),
            ],
        }
    }

    /// The clip part (`clip.onnx`): T frames' features → emotion, router weights, general logits.
    pub fn clip(c: &Config) -> Self {
        let (t, n, e, k) = (c.clip_length, c.expert_tokens(), c.expert_dim, c.num_emotions());
        Self {
            inputs: vec![
                TensorSpec::new(GENERAL_TOKENS, &[t, n, e]),
                TensorSpec::new(EMOTION_TOKENS, &[t, n, e]),
                TensorSpec::new(POOLED, &[t, c.token_dim]),
            ],
            outputs: vec![
                TensorSpec::new(EMOTION_LOGITS, &[k]),
                TensorSpec::new(EMOTION_PROBS, &[k]),
                TensorSpec::new(GATE, &[2]),
                TensorSpec::new(GENERAL_LOGITS, &[c.general_classes]),
                TensorSpec::new(FUSED_TOKENS, &[t * n, e]),
            ],
        }
    }

    /// The named input or output.
    pub fn spec(&self, name: &str) -> Option<&TensorSpec> {
        self.inputs.iter().chain(&self.outputs).find(|s| s.name == name)
    }

    /// A TensorRT optimisation profile over every input at batches `min`, `opt`, `max`.
    pub fn profile(&self, [min, opt, max]: [usize; 3]) -> ProfileShapes {
        let at = |b: usize| self.inputs.iter().map(|i| i.profile_entry(b)).collect::<Vec<_>>().join(",");
        ProfileShapes { min: at(min), opt: at(opt), max: at(max) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_contract_reads_as_the_bundles_do() {
        let c = Config::default();
        let frame = PartIo::frame(&c);
        assert_eq!(frame.inputs[0].onnx_shape(), vec![-1, 3, 64, 64]);
        assert_eq!(frame.profile([1, 8, 32]).opt, "faces:8x3x64x64");
        let clip = PartIo::clip(&c);
        assert_eq!(
            clip.profile([1, 4, 16]).min,
            format!(
                "general_tokens:1x{t}x{n}x{e},emotion_tokens:1x{t}x{n}x{e},pooled:1x{t}x{d}",
                t = c.clip_length,
                n = c.expert_tokens(),
                e = c.expert_dim,
                d = c.token_dim
            )
        );
        assert_eq!(clip.spec(EMOTION_PROBS).map(TensorSpec::item_len), Some(c.num_emotions()));
    }
}
