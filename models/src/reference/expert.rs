//! An expert of the hybrid compressor: merges each 2×2 neighbourhood of tokens into one
//! (4× fewer tokens, 4× wider), then an MLP maps it to the expert width D'.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use super::tap::Taps;
use crate::config::Config;

#[derive(Module, Debug)]
pub struct Expert {
    pub merge_proj: Linear,
    pub out_proj: Linear,
}

impl Expert {
    pub fn new(config: &Config, device: &Device) -> Self {
        Self {
            merge_proj: LinearConfig::new(4 * config.token_dim, config.expert_hidden).init(device),
            out_proj: LinearConfig::new(config.expert_hidden, config.expert_dim).init(device),
        }
    }

    /// tokens [N, G·G, D] → [N, (G/2)², D'].
    pub fn forward(&self, tokens: Tensor<3>, taps: &Taps) -> Tensor<3> {
        let merged = merge_2x2(tokens);
        let hidden = gelu(self.merge_proj.forward(taps.at("merge_proj", merged)));
        self.out_proj.forward(taps.at("out_proj", hidden))
    }
}

/// [N, G·G, D] → [N, (G/2)², 4D]. Each merged token concatenates its neighbourhood in the
/// order (row 0, col 0), (0, 1), (1, 0), (1, 1); the exporter's graph uses the same order.
pub fn merge_2x2(tokens: Tensor<3>) -> Tensor<3> {
    let [n, count, d] = tokens.dims();
    let g = count.isqrt();
    let h = g / 2;
    tokens.reshape([n, h, 2, h, 2, d]).permute([0, 1, 3, 2, 4, 5]).reshape([n, h * h, 4 * d])
}
