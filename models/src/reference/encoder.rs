//! Frame encoder: a small depthwise-separable CNN that turns one face crop into a grid of
//! tokens. No batch norm: its running statistics would change "frozen" parameters during the
//! later training stages and make per-frame and per-clip results depend on the batch.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::tap::Taps;
use crate::config::{Config, STEM_STRIDE};
use crate::cost::{BlockShape, encoder_blocks};

/// He initialisation: without batch norm, burn's default (Kaiming with gain 1/√3) shrinks the
/// activations layer by layer until the token LayerNorm sees only its epsilon.
fn he() -> Initializer {
    Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: false }
}

/// Depthwise 3×3 (carries the stride) → ReLU → pointwise 1×1 → ReLU, with an identity
/// shortcut when the shape is kept.
#[derive(Module, Debug)]
pub struct SeparableBlock {
    pub depthwise: Conv2d,
    pub pointwise: Conv2d,
    pub residual: bool,
}

impl SeparableBlock {
    pub fn new(shape: BlockShape, device: &Device) -> Self {
        let c = shape.in_channels;
        Self {
            depthwise: Conv2dConfig::new([c, c], [3, 3])
                .with_stride([shape.stride, shape.stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_groups(c)
                .with_initializer(he())
                .init(device),
            pointwise: Conv2dConfig::new([c, shape.out_channels], [1, 1]).with_initializer(he()).init(device),
            residual: shape.residual(),
        }
    }

    pub fn forward(&self, x: Tensor<4>, taps: &Taps) -> Tensor<4> {
        let y = relu(self.depthwise.forward(taps.at("depthwise", x.clone())));
        let y = relu(self.pointwise.forward(taps.at("pointwise", y)));
        if self.residual { y + x } else { y }
    }
}

#[derive(Module, Debug)]
pub struct FrameEncoder {
    pub stem: Conv2d,
    pub blocks: Vec<SeparableBlock>,
    /// Normalises each token so that both experts see inputs of one scale.
    pub token_norm: LayerNorm,
}

impl FrameEncoder {
    pub fn new(config: &Config, device: &Device) -> Self {
        Self {
            stem: Conv2dConfig::new([3, config.encoder.stem_channels], [3, 3])
                .with_stride([STEM_STRIDE, STEM_STRIDE])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(he())
                .init(device),
            blocks: encoder_blocks(config).into_iter().map(|b| SeparableBlock::new(b, device)).collect(),
            token_norm: LayerNormConfig::new(config.token_dim).with_epsilon(config.layer_norm_eps).init(device),
        }
    }

    /// `faces` [N, 3, S, S] → tokens [N, G·G, D], row-major over the G×G grid.
    pub fn forward(&self, faces: Tensor<4>, taps: &Taps) -> Tensor<3> {
        let mut x = relu(self.stem.forward(taps.at("stem", faces)));
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, &taps.scope(&format!("blocks.{i}")));
        }
        let [n, d, g, _] = x.dims();
        let tokens = x.reshape([n, d, g * g]).swap_dims(1, 2);
        self.token_norm.forward(tokens)
    }
}
