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
        let dims: Vec<usize> = self.dims.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { batch }).collect();
        crate::manifest::profile_entry(self.name, &dims)
    }
}

/// A TensorRT optimisation profile over `inputs` at batches `min`, `opt`, `max`.
pub fn profile(inputs: &[&TensorSpec], [min, opt, max]: [usize; 3]) -> ProfileShapes {
    let at = |b: usize| inputs.iter().map(|i| i.profile_entry(b)).collect::<Vec<_>>().join(",");
    ProfileShapes { min: at(min), opt: at(opt), max: at(max) }
}

/// The frame part (`frame.onnx`): face crops → their expert tokens and pooled features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIo {
    pub faces: TensorSpec,
    pub general_tokens: TensorSpec,
    pub emotion_tokens: TensorSpec,
    pub pooled: TensorSpec,
}

impl FrameIo {
    pub fn new(c: &Config) -> Self {
        let (s, n, e) = (c.crop_size, c.expert_tokens(), c.expert_dim);
        Self {
            faces: TensorSpec::new(FACES, &[3, s, s]),
            general_tokens: TensorSpec::new(GENERAL_TOKENS, &[n, e]),
            emotion_tokens: TensorSpec::new(EMOTION_TOKENS, &[n, e]),
            pooled: TensorSpec::new(POOLED, &[c.token_dim]),
        }
    }

    /// Inputs in graph order.
    pub fn inputs(&self) -> [&TensorSpec; 1] {
        [&self.faces]
    }

    /// Outputs in graph order.
    pub fn outputs(&self) -> [&TensorSpec; 3] {
        [&self.general_tokens, &self.emotion_tokens, &self.pooled]
    }
}

/// The clip part (`clip.onnx`): T frames' features → emotion, router weights, general logits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipIo {
    pub general_tokens: TensorSpec,
    pub emotion_tokens: TensorSpec,
    pub pooled: TensorSpec,
    pub emotion_logits: TensorSpec,
    pub emotion_probs: TensorSpec,
    pub gate: TensorSpec,
    pub general_logits: TensorSpec,
    pub fused_tokens: TensorSpec,
}

impl ClipIo {
    pub fn new(c: &Config) -> Self {
        let (t, n, e, k) = (c.clip_length, c.expert_tokens(), c.expert_dim, c.num_emotions());
        Self {
            general_tokens: TensorSpec::new(GENERAL_TOKENS, &[t, n, e]),
            emotion_tokens: TensorSpec::new(EMOTION_TOKENS, &[t, n, e]),
            pooled: TensorSpec::new(POOLED, &[t, c.token_dim]),
            emotion_logits: TensorSpec::new(EMOTION_LOGITS, &[k]),
            emotion_probs: TensorSpec::new(EMOTION_PROBS, &[k]),
            gate: TensorSpec::new(GATE, &[2]),
            general_logits: TensorSpec::new(GENERAL_LOGITS, &[c.general_classes]),
            fused_tokens: TensorSpec::new(FUSED_TOKENS, &[t * n, e]),
        }
    }

    /// Inputs in graph order.
    pub fn inputs(&self) -> [&TensorSpec; 3] {
        [&self.general_tokens, &self.emotion_tokens, &self.pooled]
    }

    /// Outputs in graph order.
    pub fn outputs(&self) -> [&TensorSpec; 5] {
        [&self.emotion_logits, &self.emotion_probs, &self.gate, &self.general_logits, &self.fused_tokens]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_contract_reads_as_the_bundles_do() {
        let c = Config::default();
        let frame = FrameIo::new(&c);
        assert_eq!(frame.faces.onnx_shape(), vec![-1, 3, 64, 64]);
        assert_eq!(profile(&frame.inputs(), [1, 8, 32]).opt, "faces:8x3x64x64");
        let clip = ClipIo::new(&c);
        assert_eq!(
            profile(&clip.inputs(), [1, 4, 16]).min,
            format!(
                "general_tokens:1x{t}x{n}x{e},emotion_tokens:1x{t}x{n}x{e},pooled:1x{t}x{d}",
                t = c.clip_length,
                n = c.expert_tokens(),
                e = c.expert_dim,
                d = c.token_dim
            )
        );
        assert_eq!(clip.emotion_probs.item_len(), c.num_emotions());
        assert_eq!(profile(&clip.inputs(), [1, 4, 16]).max_batch(), Some(16));
        assert_eq!(profile(&frame.inputs(), [1, 8, 32]).max_batch(), Some(32));
    }
}

/// Input of the face embedder (`embedder.onnx`, issue 24): aligned RGB face crops as pixel
/// values 0–255, `[B, S, S, 3]` (the graph normalises them as its source model expects).
pub const EMBEDDER_FACES: &str = "face_pixels";
/// Output of the face embedder: one unit-length identity vector per face, `[B, E]`.
pub const EMBEDDINGS: &str = "embeddings";

/// The face embedder's contract, for a crop side `side` and embedding size `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderIo {
    pub faces: TensorSpec,
    pub embeddings: TensorSpec,
}

impl EmbedderIo {
    pub fn new(side: usize, size: usize) -> Self {
        Self {
            faces: TensorSpec::new(EMBEDDER_FACES, &[side, side, 3]),
            embeddings: TensorSpec::new(EMBEDDINGS, &[size]),
        }
    }

    pub fn inputs(&self) -> [&TensorSpec; 1] {
        [&self.faces]
    }

    pub fn outputs(&self) -> [&TensorSpec; 1] {
        [&self.embeddings]
    }
}

/// Input of the face detector (`emoedge-export detector`, issue 26): RGB frames as pixel values
/// 0–255, letterboxed to the net's square side, `[B, S, S, 3]`.
pub const DETECTOR_PIXELS: &str = "detector_pixels";
/// Detector output per anchor: box centre offset and size, then each keypoint's offset, in
/// input pixels, `[B, A, 4 + 2·K]`.
pub const DETECTOR_REGRESSIONS: &str = "regressions";
/// Detector output per anchor: the probability that a face is there, `[B, A]`.
pub const DETECTOR_SCORES: &str = "face_scores";

/// The face detector's contract: side `side`, `anchors` anchors, `keypoints` keypoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorIo {
    pub pixels: TensorSpec,
    pub regressions: TensorSpec,
    pub scores: TensorSpec,
}

impl DetectorIo {
    pub fn new(side: usize, anchors: usize, keypoints: usize) -> Self {
        Self {
            pixels: TensorSpec::new(DETECTOR_PIXELS, &[side, side, 3]),
            regressions: TensorSpec::new(DETECTOR_REGRESSIONS, &[anchors, 4 + 2 * keypoints]),
            scores: TensorSpec::new(DETECTOR_SCORES, &[anchors]),
        }
    }

    pub fn inputs(&self) -> [&TensorSpec; 1] {
        [&self.pixels]
    }

    pub fn outputs(&self) -> [&TensorSpec; 2] {
        [&self.regressions, &self.scores]
    }
}
