//! The router that mixes the experts (Emotion-Qwen's hybrid compressor): self-attention over
//! the clip's frame summaries, then 2 × (Linear → ReLU → LayerNorm), then Linear → softmax
//! over the two experts. One weight pair per clip: dense, soft routing.

use burn::module::{Module, Param};
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

use super::tap::Taps;
use crate::config::Config;

#[derive(Module, Debug)]
pub struct Gate {
    /// Learned per-frame position [T, D], so the attention can tell frames apart.
    pub position: Param<Tensor<2>>,
    pub attention: MultiHeadAttention,
    pub hidden1: Linear,
    pub norm1: LayerNorm,
    pub hidden2: Linear,
    pub norm2: LayerNorm,
    pub logits: Linear,
}

impl Gate {
    pub fn new(config: &Config, device: &Device) -> Self {
        let norm = || LayerNormConfig::new(config.gate_hidden).with_epsilon(config.layer_norm_eps).init(device);
        Self {
            position: Initializer::Normal { mean: 0.0, std: 0.02 }.init([config.clip_length, config.token_dim], device),
            // No dropout: routing must be a deterministic function of the clip.
            attention: MultiHeadAttentionConfig::new(config.token_dim, config.gate_heads)
                .with_dropout(0.0)
                .init(device),
            hidden1: LinearConfig::new(config.token_dim, config.gate_hidden).init(device),
            norm1: norm(),
            hidden2: LinearConfig::new(config.gate_hidden, config.gate_hidden).init(device),
            norm2: norm(),
            logits: LinearConfig::new(config.gate_hidden, 2).init(device),
        }
    }

    /// pooled [B, T, D] → weights [B, 2] = (g_general, g_emotion), positive, summing to 1.
    pub fn forward(&self, pooled: Tensor<3>, taps: &Taps) -> Tensor<2> {
        let [_, t, _] = pooled.dims();
        let position = self.position.val().narrow(0, 0, t).unsqueeze_dim::<3>(0);
        let frames = taps.at("attention", pooled + position);
        let attended = self.attention.forward(MhaInput::self_attn(frames)).context;
        let summary = attended.mean_dim(1).squeeze_dim::<2>(1);
        let h = self.norm1.forward(relu(self.hidden1.forward(taps.at("hidden1", summary))));
        let h = self.norm2.forward(relu(self.hidden2.forward(taps.at("hidden2", h))));
        softmax(self.logits.forward(taps.at("logits", h)), 1)
    }
}
