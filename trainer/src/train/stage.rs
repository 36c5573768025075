//! The three training stages of Emotion-Qwen's recipe, plus the single-path baseline that
//! measures forgetting: what each trains, what it freezes, how it routes, which data it sees.

use burn::module::Module;
use emoedge_models::reference::{FrameEncoder, HybridModel, Routing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// 1. General expert + head (+ the encoder's modules the options name) on the general
    ///    task; routing pinned to general.
    General,
    /// 2. Emotion expert + emotion classifier (+ encoder modules as named) on emotion data;
    ///    routing pinned to emotion; the general path's own parts frozen.
    Emotion,
    /// 3. Gate + head + both experts on a mix of both tasks, gated; encoder frozen.
    Joint,
    /// The single-path baseline: the general path (general expert, head, + encoder modules as
    /// named) fine-tuned on the joint stage's data mix, without emotion expert or gate — so the
    /// only difference from the hybrid is the second expert and the router.
    Baseline,
    /// Adapting a finished model to a site (`emoedge-train finetune`): the emotion path (emotion
    /// expert, emotion classifier) and the gate, gated, on the site's faces and replayed digits;
    /// the encoder, the general expert and the shared temporal head stay as they were, so the
    /// general task cannot be forgotten through them.
    Adapt,
}

impl Stage {
    pub fn routing(self) -> Routing {
        match self {
            Stage::General | Stage::Baseline => Routing::GeneralOnly,
            Stage::Emotion => Routing::EmotionOnly,
            Stage::Joint | Stage::Adapt => Routing::Gated,
        }
    }

    /// Whether the stage trains on the general task's data (the joint stage and the baseline
    /// replay it alongside emotion data).
    pub fn uses_general_data(self) -> bool {
        matches!(self, Stage::General | Stage::Joint | Stage::Baseline | Stage::Adapt)
    }

    /// Whether the stage trains on emotion data.
    pub fn uses_emotion_data(self) -> bool {
        !matches!(self, Stage::General)
    }

    /// Marks the parts this stage does not train as frozen (no gradient, untouched by the
    /// optimizer). `encoder_modules`: how many of the encoder's residual modules, counted from
    /// the top, the general, emotion and baseline stages train (with the token norm; more than
    /// there are modules trains the stem too). The joint and adapt stages never train the
    /// encoder.
    pub fn freeze(self, mut model: HybridModel, encoder_modules: usize) -> HybridModel {
        model.encoder = match self {
            Stage::Joint | Stage::Adapt => model.encoder.no_grad(),
            _ => freeze_encoder(model.encoder, encoder_modules),
        };
        match self {
            Stage::General => {
                model.emotion_expert = model.emotion_expert.no_grad();
                model.gate = model.gate.no_grad();
                model.head.emotion = model.head.emotion.no_grad();
            }
            Stage::Emotion => {
                model.general_expert = model.general_expert.no_grad();
                model.gate = model.gate.no_grad();
                model.head.query = model.head.query.set_require_grad(false);
                model.head.key = model.head.key.no_grad();
                model.head.norm = model.head.norm.no_grad();
                model.head.general = model.head.general.no_grad();
            }
            Stage::Joint => {}
            Stage::Adapt => {
                model.general_expert = model.general_expert.no_grad();
                model.head.query = model.head.query.set_require_grad(false);
                model.head.key = model.head.key.no_grad();
                model.head.norm = model.head.norm.no_grad();
                model.head.general = model.head.general.no_grad();
            }
            Stage::Baseline => {
                model.emotion_expert = model.emotion_expert.no_grad();
                model.gate = model.gate.no_grad();
            }
        }
        model
    }
}

/// Freezes all but the top `trained` residual modules (and the token norm when any train; the
/// stem only when all do and more).
fn freeze_encoder(mut encoder: FrameEncoder, trained: usize) -> FrameEncoder {
    let modules = encoder.modules.len();
    if trained <= modules {
        encoder.stem = encoder.stem.into_iter().map(|conv| conv.no_grad()).collect();
    }
    encoder.modules = std::mem::take(&mut encoder.modules)
        .into_iter()
        .enumerate()
        .map(|(i, module)| if i + trained < modules { module.no_grad() } else { module })
        .collect();
    if trained == 0 {
        encoder.token_norm = encoder.token_norm.no_grad();
    }
    encoder
}
