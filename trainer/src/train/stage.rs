//! The three training stages of Emotion-Qwen's recipe, plus the single-path baseline that
//! measures forgetting: what each trains, what it freezes, how it routes, which data it sees.

use burn::module::Module;
use emoedge_models::reference::{HybridModel, Routing};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// 1. Encoder + general expert + head on the general task; routing pinned to general.
    General,
    /// 2. Emotion expert + emotion classifier (+ the encoder's top blocks) on emotion data;
    ///    routing pinned to emotion; the general path's own parts frozen.
    Emotion,
    /// 3. Gate + head + both experts on a mix of both tasks, gated; encoder frozen.
    Joint,
    /// The single-path baseline: the general path (encoder, general expert, head) fine-tuned
    /// on emotion data only, without emotion expert or gate.
    Baseline,
}

impl Stage {
    pub fn routing(self) -> Routing {
        match self {
            Stage::General | Stage::Baseline => Routing::GeneralOnly,
            Stage::Emotion => Routing::EmotionOnly,
            Stage::Joint => Routing::Gated,
        }
    }

    /// Whether the stage trains on the general task's data.
    pub fn uses_general_data(self) -> bool {
        matches!(self, Stage::General | Stage::Joint)
    }

    /// Whether the stage trains on emotion data.
    pub fn uses_emotion_data(self) -> bool {
        !matches!(self, Stage::General)
    }

    /// Marks the parts this stage does not train as frozen (no gradient, untouched by the
    /// optimizer). `encoder_top_blocks`: how many of the encoder's last blocks stage 2 trains.
    pub fn freeze(self, mut model: HybridModel, encoder_top_blocks: usize) -> HybridModel {
        match self {
            Stage::General => {
                model.emotion_expert = model.emotion_expert.no_grad();
                model.gate = model.gate.no_grad();
                model.head.emotion = model.head.emotion.no_grad();
            }
            Stage::Emotion => {
                let blocks = model.encoder.blocks.len();
                model.encoder.stem = model.encoder.stem.no_grad();
                model.encoder.blocks = std::mem::take(&mut model.encoder.blocks)
                    .into_iter()
                    .enumerate()
                    .map(|(i, block)| if i + encoder_top_blocks < blocks { block.no_grad() } else { block })
                    .collect();
                if encoder_top_blocks == 0 {
                    model.encoder.token_norm = model.encoder.token_norm.no_grad();
                }
                model.general_expert = model.general_expert.no_grad();
                model.gate = model.gate.no_grad();
                model.head.query = model.head.query.set_require_grad(false);
                model.head.key = model.head.key.no_grad();
                model.head.norm = model.head.norm.no_grad();
                model.head.general = model.head.general.no_grad();
            }
            Stage::Joint => {
                model.encoder = model.encoder.no_grad();
            }
            Stage::Baseline => {
                model.emotion_expert = model.emotion_expert.no_grad();
                model.gate = model.gate.no_grad();
            }
        }
        model
    }
}
