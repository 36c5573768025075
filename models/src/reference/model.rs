//! The hybrid-experts video emotion model, split as it streams: [`HybridModel::forward_frame`]
//! runs once per face crop (`frame.onnx`), [`HybridModel::forward_clip`] on the cached last T
//! frames of a track (`clip.onnx`). [`HybridModel::forward`] is both in one go.

use std::sync::Mutex;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::encoder::FrameEncoder;
use super::expert::Expert;
use super::gate::Gate;
use super::head::TemporalHead;
use super::tap::{SiteRecorder, Tap, Taps};
use crate::config::{Config, ConfigError};

#[derive(Module, Debug)]
pub struct HybridModel {
    pub encoder: FrameEncoder,
    pub general_expert: Expert,
    pub emotion_expert: Expert,
    pub gate: Gate,
    pub head: TemporalHead,
}

/// What the frame part produces for N face crops.
#[derive(Debug, Clone)]
pub struct FrameFeatures {
    /// [N, 16, D']
    pub general_tokens: Tensor<3>,
    /// [N, 16, D']
    pub emotion_tokens: Tensor<3>,
    /// Mean of the encoder's tokens [N, D]: the gate's view of the frame.
    pub pooled: Tensor<2>,
}

/// The frame features of B clips of T frames: the clip part's input.
#[derive(Debug, Clone)]
pub struct ClipFeatures {
    /// [B, T, 16, D']
    pub general_tokens: Tensor<4>,
    /// [B, T, 16, D']
    pub emotion_tokens: Tensor<4>,
    /// [B, T, D]
    pub pooled: Tensor<3>,
}

impl FrameFeatures {
    /// Groups N = B·T frames (clip-major) into B clips of `clip_length` frames.
    pub fn into_clips(self, clip_length: usize) -> ClipFeatures {
        let [n, tokens, e] = self.general_tokens.dims();
        let [_, d] = self.pooled.dims();
        let b = n / clip_length;
        ClipFeatures {
            general_tokens: self.general_tokens.reshape([b, clip_length, tokens, e]),
            emotion_tokens: self.emotion_tokens.reshape([b, clip_length, tokens, e]),
            pooled: self.pooled.reshape([b, clip_length, d]),
        }
    }
}

/// Outputs of the clip part, named as in `clip.onnx`.
#[derive(Debug, Clone)]
pub struct ClipOutput {
    /// [B, 7] in [`crate::EMOTIONS`] order.
    pub emotion_logits: Tensor<2>,
    /// [B, 7] softmax of the logits.
    pub emotion_probs: Tensor<2>,
    /// [B, 2] = (g_general, g_emotion).
    pub gate: Tensor<2>,
    /// [B, K]
    pub general_logits: Tensor<2>,
    /// [B, T·16, D'] = g_general·general + g_emotion·emotion.
    pub fused_tokens: Tensor<3>,
}

/// How the experts are mixed. Training stages and the single-path baseline pin one expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The gate decides (the product's mode).
    Gated,
    /// Weights fixed to (1, 0): the general expert only (stage 1, the single-path baseline).
    GeneralOnly,
    /// Weights fixed to (0, 1): the emotion expert only.
    EmotionOnly,
}

/// Burn draws initial weights from one process-wide generator, lazily; holding this lock while
/// seeding and materialising makes `init` reproducible even with tests on parallel threads.
static INIT_LOCK: Mutex<()> = Mutex::new(());

struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// Gives every parameter an id derived from its path (FNV-1a of `encoder.stem.weight`, …).
/// burn keys optimizer state by parameter id and draws ids at random, so without this an
/// optimizer checkpoint could not be matched to the same model in a later process.
struct PathIds {
    path: Vec<String>,
}

impl ModuleMapper for PathIds {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_, value, mapper) = param.consume();
        let id = self
            .path
            .join(".")
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3));
        Param::from_mapped_value(ParamId::from(id), value, mapper)
    }
}

impl HybridModel {
    /// A freshly initialised model; the same `seed` gives the same weights bit for bit, and
    /// parameter ids are derived from parameter paths (stable across processes).
    pub fn init(config: &Config, device: &Device, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let _guard = INIT_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let model = Self {
            encoder: FrameEncoder::new(config, device),
            general_expert: Expert::new(config, device),
            emotion_expert: Expert::new(config, device),
            gate: Gate::new(config, device),
            head: TemporalHead::new(config, device),
        };
        model.visit(&mut Materialize);
        Ok(model.map(&mut PathIds { path: Vec::new() }))
    }

    /// The frame part: `faces` [N, 3, S, S], normalised as [`crate::Preprocessing`] says.
    pub fn forward_frame(&self, faces: Tensor<4>) -> FrameFeatures {
        self.forward_frame_tapped(faces, &Taps::none())
    }

    /// The frame part with every conv/linear input passed through `taps`.
    pub fn forward_frame_tapped(&self, faces: Tensor<4>, taps: &Taps) -> FrameFeatures {
        let tokens = self.encoder.forward(faces, &taps.scope("encoder"));
        FrameFeatures {
            general_tokens: self.general_expert.forward(tokens.clone(), &taps.scope("general_expert")),
            emotion_tokens: self.emotion_expert.forward(tokens.clone(), &taps.scope("emotion_expert")),
            pooled: tokens.mean_dim(1).squeeze_dim::<2>(1),
        }
    }

    /// The clip part, gated.
    pub fn forward_clip(&self, clip: ClipFeatures) -> ClipOutput {
        self.forward_clip_routed(clip, Routing::Gated)
    }

    /// The clip part with a chosen routing.
    pub fn forward_clip_routed(&self, clip: ClipFeatures, routing: Routing) -> ClipOutput {
        self.forward_clip_tapped(clip, routing, &Taps::none())
    }

    /// The clip part with every conv/linear input passed through `taps`.
    pub fn forward_clip_tapped(&self, clip: ClipFeatures, routing: Routing, taps: &Taps) -> ClipOutput {
        let [b, t, tokens, e] = clip.general_tokens.dims();
        let gate = match routing {
            Routing::Gated => self.gate.forward(clip.pooled, &taps.scope("gate")),
            Routing::GeneralOnly => fixed_gate(b, [1.0, 0.0], &clip.general_tokens.device()),
            Routing::EmotionOnly => fixed_gate(b, [0.0, 1.0], &clip.general_tokens.device()),
        };
        let g_general = gate.clone().narrow(1, 0, 1).reshape([b, 1, 1]);
        let g_emotion = gate.clone().narrow(1, 1, 1).reshape([b, 1, 1]);
        let general = clip.general_tokens.reshape([b, t * tokens, e]);
        let emotion = clip.emotion_tokens.reshape([b, t * tokens, e]);
        let fused_tokens = general * g_general + emotion * g_emotion;
        let head = self.head.forward(fused_tokens.clone(), &taps.scope("head"));
        ClipOutput {
            emotion_probs: softmax(head.emotion_logits.clone(), 1),
            emotion_logits: head.emotion_logits,
            gate,
            general_logits: head.general_logits,
            fused_tokens,
        }
    }

    /// Whole clips at once: `clips` [B, T, 3, S, S].
    pub fn forward(&self, clips: Tensor<5>) -> ClipOutput {
        self.forward_routed(clips, Routing::Gated)
    }

    pub fn forward_routed(&self, clips: Tensor<5>, routing: Routing) -> ClipOutput {
        self.forward_tapped(clips, routing, None)
    }

    /// Whole clips with an optional tap on every conv/linear input (calibration, simulation).
    pub fn forward_tapped(&self, clips: Tensor<5>, routing: Routing, tap: Option<&dyn Tap>) -> ClipOutput {
        let taps = tap.map_or_else(Taps::none, Taps::new);
        let [b, t, c, h, w] = clips.dims();
        let frames = self.forward_frame_tapped(clips.reshape([b * t, c, h, w]), &taps);
        self.forward_clip_tapped(frames.into_clips(t), routing, &taps)
    }

    /// The tap sites of the gated forward, in the order it passes them (each once).
    pub fn tap_sites(&self, config: &Config) -> Vec<String> {
        let recorder = SiteRecorder::default();
        let (t, s) = (config.clip_length, config.crop_size);
        let device = self.head.query.val().device();
        self.forward_tapped(Tensor::zeros([1, t, 3, s, s], &device), Routing::Gated, Some(&recorder));
        let mut sites = recorder.sites.into_inner();
        let mut seen = std::collections::HashSet::new();
        sites.retain(|site| seen.insert(site.clone()));
        sites
    }
}

fn fixed_gate(batch: usize, weights: [f32; 2], device: &Device) -> Tensor<2> {
    Tensor::<1>::from_floats(weights, device).reshape([1, 2]).expand([batch, 2])
}
