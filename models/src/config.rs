//! The model's configuration: one JSON file that the trainer writes, the exporter reads and
//! the runtime checks a bundle against. Every shape in the model follows from it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::labels::EMOTIONS;

/// One stage of the frame encoder: `blocks` depthwise-separable blocks, the first of which
/// changes the width to `channels` and moves with `stride`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub channels: usize,
    pub stride: usize,
    pub blocks: usize,
}

/// The frame encoder: a 3×3 stride-2 stem, then depthwise-separable stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    pub stem_channels: usize,
    pub stages: Vec<StageConfig>,
}

/// The whole hybrid-experts model. Field names are the JSON keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Side S of the square RGB face crop.
    pub crop_size: usize,
    /// Frames T per clip.
    pub clip_length: usize,
    pub encoder: EncoderConfig,
    /// Token width D: the encoder's last stage width.
    pub token_dim: usize,
    /// Hidden width of each expert's MLP.
    pub expert_hidden: usize,
    /// Token width D' after an expert.
    pub expert_dim: usize,
    /// Attention heads of the gate's self-attention over frames.
    pub gate_heads: usize,
    /// Width of the gate's two Linear→ReLU→LayerNorm layers.
    pub gate_hidden: usize,
    /// Classes K of the general task (10 for the digits task).
    pub general_classes: usize,
    pub layer_norm_eps: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            crop_size: 64,
            clip_length: 8,
            encoder: EncoderConfig {
                stem_channels: 24,
                stages: vec![
                    StageConfig { channels: 32, stride: 1, blocks: 1 },
                    StageConfig { channels: 64, stride: 2, blocks: 2 },
                    StageConfig { channels: 128, stride: 2, blocks: 2 },
                ],
            },
            token_dim: 128,
            expert_hidden: 256,
            expert_dim: 128,
            gate_heads: 4,
            gate_hidden: 64,
            general_classes: 10,
            layer_norm_eps: 1e-5,
        }
    }
}

/// A configuration that cannot describe a working model, or a file that holds none.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid model config: {problem}; {fix}")]
    Invalid { problem: String, fix: String },
    #[error("cannot read model config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("model config {path} is not valid JSON for emoedge: {source}")]
    Parse { path: String, source: serde_json::Error },
}

fn invalid(problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { problem: problem.into(), fix: fix.into() }
}

/// The stem always halves the crop.
pub const STEM_STRIDE: usize = 2;

impl Config {
    /// Number of emotion logits (the canonical label list).
    pub fn num_emotions(&self) -> usize {
        EMOTIONS.len()
    }

    /// Total spatial downsampling of the encoder.
    pub fn encoder_stride(&self) -> usize {
        self.encoder.stages.iter().map(|s| s.stride).product::<usize>() * STEM_STRIDE
    }

    /// Side of the encoder's token grid (8 for the default 64×64 crop).
    pub fn token_grid(&self) -> usize {
        self.crop_size / self.encoder_stride()
    }

    /// Tokens per frame after the experts' 2×2 merge (16 by default).
    pub fn expert_tokens(&self) -> usize {
        (self.token_grid() / 2).pow(2)
    }

    /// Checks that every shape in the model fits; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("crop_size", self.crop_size),
            ("clip_length", self.clip_length),
            ("encoder.stem_channels", self.encoder.stem_channels),
            ("token_dim", self.token_dim),
            ("expert_hidden", self.expert_hidden),
            ("expert_dim", self.expert_dim),
            ("gate_heads", self.gate_heads),
            ("gate_hidden", self.gate_hidden),
            ("general_classes", self.general_classes),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(invalid(format!("`{name}` is 0"), "set it to a positive integer"));
            }
        }
        if self.encoder.stages.is_empty() {
            return Err(invalid("`encoder.stages` is empty", "give the encoder at least one stage"));
        }
        for (i, stage) in self.encoder.stages.iter().enumerate() {
            if stage.channels == 0 || stage.blocks == 0 || !matches!(stage.stride, 1 | 2) {
                return Err(invalid(
                    format!(
                        "`encoder.stages[{i}]` = {{channels: {}, stride: {}, blocks: {}}}",
                        stage.channels, stage.stride, stage.blocks
                    ),
                    "channels and blocks must be ≥ 1 and stride 1 or 2",
                ));
            }
        }
        let last = self.encoder.stages.last().map(|s| s.channels).unwrap_or_default();
        if last != self.token_dim {
            return Err(invalid(
                format!("`token_dim` is {} but the last encoder stage has {last} channels", self.token_dim),
                "make `token_dim` equal to the last stage's `channels`",
            ));
        }
        let stride = self.encoder_stride();
        if self.crop_size % stride != 0 {
            return Err(invalid(
                format!("`crop_size` {} is not divisible by the encoder stride {stride}", self.crop_size),
                format!("use a crop size that is a multiple of {stride}"),
            ));
        }
        let grid = self.token_grid();
        if grid < 2 || grid % 2 != 0 {
            return Err(invalid(
                format!(
                    "the token grid is {grid}×{grid} (crop {} / stride {stride}); the experts' 2×2 token \
                     merge needs an even grid of at least 2",
                    self.crop_size
                ),
                format!("use a crop size that is a multiple of {}", 2 * stride),
            ));
        }
        if self.token_dim % self.gate_heads != 0 {
            return Err(invalid(
                format!("`token_dim` {} is not divisible by `gate_heads` {}", self.token_dim, self.gate_heads),
                "choose a head count that divides token_dim",
            ));
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return Err(invalid(
                format!("`layer_norm_eps` is {}", self.layer_norm_eps),
                "use a small positive value such as 1e-5",
            ));
        }
        Ok(())
    }

    /// Reads and validates a config JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        Self::from_json(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse { path: shown, source },
            other => other,
        })
    }

    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: Self =
            serde_json::from_str(text).map_err(|source| ConfigError::Parse { path: "<text>".into(), source })?;
        config.validate()?;
        Ok(config)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Config always serialises")
    }
}
