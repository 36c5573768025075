//! Temporal head: attention pooling with one learned query over all fused tokens of a clip,
//! then the emotion and general classifiers.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::tap::Taps;
use crate::config::Config;

#[derive(Module, Debug)]
pub struct TemporalHead {
    /// Learned pooling query [D'].
    pub query: Param<Tensor<1>>,
    pub key: Linear,
    pub norm: LayerNorm,
    pub emotion: Linear,
    pub general: Linear,
}

/// The head's two classifiers' logits.
pub struct HeadOutput {
    pub emotion_logits: Tensor<2>,
    pub general_logits: Tensor<2>,
}

impl TemporalHead {
    pub fn new(config: &Config, device: &Device) -> Self {
        let e = config.expert_dim;
        Self {
            query: Initializer::Normal { mean: 0.0, std: 0.02 }.init([e], device),
            key: LinearConfig::new(e, e).init(device),
            norm: LayerNormConfig::new(e).with_epsilon(config.layer_norm_eps).init(device),
            emotion: LinearConfig::new(e, config.num_emotions()).init(device),
            general: LinearConfig::new(e, config.general_classes).init(device),
        }
    }

    /// fused [B, N, D'] → logits.
    pub fn forward(&self, fused: Tensor<3>, taps: &Taps) -> HeadOutput {
        let [b, _, e] = fused.dims();
        let query = self.query.val().reshape([1, e, 1]).expand([b, e, 1]);
        let scores = self.key.forward(taps.at("key", fused.clone())).matmul(query).div_scalar((e as f32).sqrt());
        let weights = softmax(scores, 1); // [B, N, 1]
        let pooled = weights.swap_dims(1, 2).matmul(fused).squeeze_dim::<2>(1);
        let pooled = self.norm.forward(pooled);
        HeadOutput {
            emotion_logits: self.emotion.forward(taps.at("emotion", pooled.clone())),
            general_logits: self.general.forward(taps.at("general", pooled)),
        }
    }
}
