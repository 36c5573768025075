//! Parameter count and FLOPs of a configuration, computed from shapes alone so that any
//! crate (the edge runtime included) can report them without the training framework.
//!
//! FLOPs count a multiply-add as two operations and cover convolutions, linear layers and
//! attention matmuls; element-wise work (activations, norms, softmax) is left out, as is usual.

use crate::config::{Config, STEM_CONVS};

/// One convolution or linear layer's share of the cost.
struct Layer {
    params: usize,
    macs: usize,
}

/// A residual module of the encoder, as the reference forward builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleShape {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Side of the feature map entering the module; it leaves at ⌈side / 2⌉.
    pub side: usize,
}

/// The encoder's residual modules in order.
pub fn encoder_modules(config: &Config) -> Vec<ModuleShape> {
    let sides = config.encoder_sides();
    let mut in_channels = config.encoder.stem_channels;
    config
        .encoder
        .modules
        .iter()
        .zip(sides)
        .map(|(&out_channels, side)| {
            let shape = ModuleShape { in_channels, out_channels, side };
            in_channels = out_channels;
            shape
        })
        .collect()
}

fn conv(in_c: usize, out_c: usize, kernel: usize, groups: usize, out_hw: usize) -> Layer {
    let weights = out_c * (in_c / groups) * kernel * kernel;
    Layer { params: weights + out_c, macs: weights * out_hw }
}

fn linear(d_in: usize, d_out: usize, rows: usize) -> Layer {
    Layer { params: d_in * d_out + d_out, macs: d_in * d_out * rows }
}

fn frame_layers(c: &Config) -> Vec<Layer> {
    let stem = c.encoder.stem_channels;
    let mut layers = Vec::new();
    let mut in_channels = 3;
    for i in 1..=STEM_CONVS {
        let side = c.crop_size - 2 * i;
        layers.push(conv(in_channels, stem, 3, 1, side * side));
        in_channels = stem;
    }
    for m in encoder_modules(c) {
        let area = m.side * m.side;
        // Two separable convolutions at full resolution (depthwise without bias), then the
        // max-pool; the 1×1 stride-2 shortcut runs at the output resolution.
        for channels in [m.in_channels, m.out_channels] {
            layers.push(Layer { params: channels * 9, macs: channels * 9 * area });
            layers.push(conv(channels, m.out_channels, 1, 1, area));
        }
        let out = m.side.div_ceil(2);
        layers.push(conv(m.in_channels, m.out_channels, 1, 1, out * out));
    }
    layers.push(Layer { params: 2 * c.token_dim, macs: 0 }); // token LayerNorm
    let tokens = c.expert_tokens();
    for _expert in 0..2 {
        layers.push(linear(4 * c.token_dim, c.expert_hidden, tokens));
        layers.push(linear(c.expert_hidden, c.expert_dim, tokens));
    }
    layers
}

fn clip_layers(c: &Config) -> Vec<Layer> {
    let (t, d, h, e) = (c.clip_length, c.token_dim, c.gate_hidden, c.expert_dim);
    let fused = t * c.expert_tokens();
    vec![
        Layer { params: t * d, macs: 0 },         // gate position embedding
        linear(d, d, t),                          // attention query
        linear(d, d, t),                          // key
        linear(d, d, t),                          // value
        Layer { params: 0, macs: 2 * t * t * d }, // scores and context
        linear(d, d, t),                          // attention output
        linear(d, h, 1),
        Layer { params: 2 * h, macs: 0 },
        linear(h, h, 1),
        Layer { params: 2 * h, macs: 0 },
        linear(h, 2, 1),
        Layer { params: e, macs: 0 },             // head query
        linear(e, e, fused),                      // head keys
        Layer { params: 0, macs: 2 * fused * e }, // scores and weighted sum
        Layer { params: 2 * e, macs: 0 },         // head LayerNorm
        linear(e, c.num_emotions(), 1),
        linear(e, c.general_classes, 1),
    ]
}

/// Parameters and FLOPs of the two halves of the streaming split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelCost {
    pub frame_params: usize,
    pub clip_params: usize,
    /// FLOPs of `frame.onnx` for one face crop.
    pub frame_flops: usize,
    /// FLOPs of `clip.onnx` for one clip of T cached frames.
    pub clip_flops: usize,
}

impl ModelCost {
    pub fn of(config: &Config) -> Self {
        let sum = |layers: Vec<Layer>| layers.iter().fold((0, 0), |(p, f), l| (p + l.params, f + 2 * l.macs));
        let (frame_params, frame_flops) = sum(frame_layers(config));
        let (clip_params, clip_flops) = sum(clip_layers(config));
        Self { frame_params, clip_params, frame_flops, clip_flops }
    }

    pub fn params(&self) -> usize {
        self.frame_params + self.clip_params
    }

    /// FLOPs of a whole clip computed from scratch (T frames encoded, then the clip part).
    pub fn full_clip_flops(&self, clip_length: usize) -> usize {
        clip_length * self.frame_flops + self.clip_flops
    }
}
