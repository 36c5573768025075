//! Parameter count and FLOPs of a configuration, computed from shapes alone so that any
//! crate (the edge runtime included) can report them without the training framework.
//!
//! FLOPs count a multiply-add as two operations and cover convolutions, linear layers and
//! attention matmuls; element-wise work (activations, norms, softmax) is left out, as is usual.

use crate::config::{Config, STEM_STRIDE};

/// One convolution or linear layer's share of the cost.
struct Layer {
    params: usize,
    macs: usize,
}

/// A depthwise-separable block of the encoder, as the reference forward builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub stride: usize,
}

impl BlockShape {
    /// Blocks with an identity shortcut keep both width and resolution.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.in_channels == self.out_channels
    }
}

/// The encoder's blocks in order: each stage's first block changes width and stride.
pub fn encoder_blocks(config: &Config) -> Vec<BlockShape> {
    let mut blocks = Vec::new();
    let mut channels = config.encoder.stem_channels;
    for stage in &config.encoder.stages {
        for i in 0..stage.blocks {
            let stride = if i == 0 { stage.stride } else { 1 };
            blocks.push(BlockShape { in_channels: channels, out_channels: stage.channels, stride });
            channels = stage.channels;
        }
    }
    blocks
}

fn conv(in_c: usize, out_c: usize, kernel: usize, groups: usize, out_hw: usize) -> Layer {
    let weights = out_c * (in_c / groups) * kernel * kernel;
    Layer { params: weights + out_c, macs: weights * out_hw }
}

fn linear(d_in: usize, d_out: usize, rows: usize) -> Layer {
    Layer { params: d_in * d_out + d_out, macs: d_in * d_out * rows }
}

fn frame_layers(c: &Config) -> Vec<Layer> {
    let mut side = c.crop_size / STEM_STRIDE;
    let mut layers = vec![conv(3, c.encoder.stem_channels, 3, 1, side * side)];
    for block in encoder_blocks(c) {
        side /= block.stride;
        layers.push(conv(block.in_channels, block.in_channels, 3, block.in_channels, side * side));
        layers.push(conv(block.in_channels, block.out_channels, 1, 1, side * side));
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
        Layer { params: t * d, macs: 0 }, // gate position embedding
        linear(d, d, t),                  // attention query
        linear(d, d, t),                  // key
        linear(d, d, t),                  // value
        Layer { params: 0, macs: 2 * t * t * d }, // scores and context
        linear(d, d, t),                  // attention output
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
        let sum = |layers: Vec<Layer>| {
            layers.iter().fold((0, 0), |(p, f), l| (p + l.params, f + 2 * l.macs))
        };
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
