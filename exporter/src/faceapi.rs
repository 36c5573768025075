//! face-api's face descriptor — dlib's 29-layer ResNet face-recognition net (128-d, trained on
//! about 3 million faces of 7,485 people) as `@vladmandic/face-api` ships its weights: a
//! TensorFlow.js weights manifest without a graph, whose layers this module writes with the
//! graph builder in face-api's order (`convDown` → max pool → residual stages → mean → fc).
//! Every convolution is followed by a per-channel scale layer; both fold into one Conv.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use emoedge_models::io::EmbedderIo;
use onnx_protobuf::ModelProto;

use crate::graph::{Arithmetic, GraphBuilder, attr_int, attr_ints};
use crate::tfjs::{Const, PixelNorm, WeightGroup, normalised_nchw, read_weights, to_oihw, unit_length_out};

/// The side of the crops the net was trained on.
pub const SIDE: usize = 150;
/// face-api's normalisation: the training set's mean RGB, then 1/255.
pub const NORM: PixelNorm = PixelNorm { offset: [122.782, 117.001, 104.298], scale: 1.0 / 255.0 };

/// A value in the graph and its spatial side (square all the way).
struct Value {
    name: String,
    side: usize,
    channels: usize,
}

struct Net<'a> {
    g: GraphBuilder,
    w: &'a HashMap<String, Const>,
}

impl Net<'_> {
    fn weight(&self, name: &str) -> anyhow::Result<&Const> {
        self.w.get(name).with_context(|| format!("the face-api weights have no {name}"))
    }

    /// `conv` (+ bias) then the scale layer (`·weights + biases`), folded into one Conv; ReLU
    /// when `relu`. `stride` 2 convolutions are VALID, the others SAME (face-api's layers).
    fn conv(&mut self, x: &Value, layer: &str, stride: usize, relu: bool) -> anyhow::Result<Value> {
        let filters = self.weight(&format!("{layer}/conv/filters"))?;
        let [k, _, ci, co] = <[usize; 4]>::try_from(filters.shape.clone())
            .map_err(|_| anyhow::anyhow!("{layer}: filters of shape {:?}", filters.shape))?;
        anyhow::ensure!(ci == x.channels, "{layer}: {ci} input channels, the value has {}", x.channels);
        let bias = &self.weight(&format!("{layer}/conv/bias"))?.values;
        let scale = &self.weight(&format!("{layer}/scale/weights"))?.values;
        let shift = &self.weight(&format!("{layer}/scale/biases"))?.values;
        let mut oihw = to_oihw(&filters.values, [k, k, ci, co], false);
        for (o, kernel) in oihw.chunks_mut(ci * k * k).enumerate() {
            kernel.iter_mut().for_each(|v| *v *= scale[o]);
        }
        let folded: Vec<f32> = (0..co).map(|o| bias[o] * scale[o] + shift[o]).collect();
        let weight = self.g.weight(&format!("{layer}.weight"), &[co, ci, k, k], &oihw);
        let bias = self.g.weight(&format!("{layer}.bias"), &[co], &folded);
        let (pads, side) = if stride == 1 {
            let total = k - 1;
            ([total / 2, total / 2, total - total / 2, total - total / 2], x.side)
        } else {
            ([0; 4], (x.side - k) / stride + 1)
        };
        let y = self.g.conv_padded(&x.name, &weight, Some(&bias), stride, pads, 1);
        let name = if relu { self.g.relu(&y) } else { y };
        Ok(Value { name, side, channels: co })
    }

    /// conv → conv (no ReLU) + the input → ReLU.
    fn residual(&mut self, x: &Value, layer: &str) -> anyhow::Result<Value> {
        let a = self.conv(x, &format!("{layer}/conv1"), 1, true)?;
        let b = self.conv(&a, &format!("{layer}/conv2"), 1, false)?;
        let sum = self.g.add(&b.name, &x.name);
        Ok(Value { name: self.g.relu(&sum), ..b })
    }

    /// The down-sampling block: a stride-2 conv path beside a 2×2 average pool of the input
    /// whose extra channels are zeros; where the conv path came out one pixel smaller, it is
    /// padded with zeros at the bottom and right (as face-api does).
    fn residual_down(&mut self, x: &Value, layer: &str) -> anyhow::Result<Value> {
        let a = self.conv(x, &format!("{layer}/conv1"), 2, true)?;
        let mut b = self.conv(&a, &format!("{layer}/conv2"), 1, false)?;
        let pool = self.g.node(
            "AveragePool",
            &[&x.name],
            vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2])],
        );
        let pooled_side = x.side / 2;
        if pooled_side != b.side {
            let grow = (pooled_side - b.side) as i64;
            let pads = self.g.int64s(&[0, 0, 0, 0, 0, 0, grow, grow]);
            b = Value { name: self.g.node("Pad", &[&b.name, &pads], vec![]), side: pooled_side, ..b };
        }
        let extra = (b.channels - x.channels) as i64;
        let pads = self.g.int64s(&[0, 0, 0, 0, 0, extra, 0, 0]);
        let pooled = self.g.node("Pad", &[&pool, &pads], vec![]);
        let sum = self.g.add(&pooled, &b.name);
        Ok(Value { name: self.g.relu(&sum), ..b })
    }
}

/// The ONNX embedder of face-api's recognition net, from its weights manifest.
pub fn embedder(manifest: &Path, arithmetic: Arithmetic) -> anyhow::Result<ModelProto> {
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let groups: Vec<WeightGroup> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a TensorFlow.js weights manifest", manifest.display()))?;
    let weights = read_weights(&groups, manifest)?;
    let io = EmbedderIo::new(SIDE, 128);
    let mut net = Net { g: GraphBuilder::new("embedder", arithmetic), w: &weights };
    let input = Value {
        name: {
            let pixels = net.g.input(&io.faces);
            normalised_nchw(&mut net.g, &pixels, NORM)
        },
        side: SIDE,
        channels: 3,
    };
    let x = net.conv(&input, "conv32_down", 2, true)?;
    let pooled =
        net.g.node("MaxPool", &[&x.name], vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("strides", &[2, 2])]);
    let mut x = Value { name: pooled, side: (x.side - 3) / 2 + 1, ..x };
    for layer in [
        "conv32_1",
        "conv32_2",
        "conv32_3",
        "conv64_down",
        "conv64_1",
        "conv64_2",
        "conv64_3",
        "conv128_down",
        "conv128_1",
        "conv128_2",
        "conv256_down",
        "conv256_1",
        "conv256_2",
        "conv256_down_out",
    ] {
        x = if layer.ends_with("down") || layer.ends_with("down_out") {
            net.residual_down(&x, layer)?
        } else {
            net.residual(&x, layer)?
        };
    }
    let mean = net.g.node("ReduceMean", &[&x.name], vec![attr_ints("axes", &[2, 3]), attr_int("keepdims", 0)]);
    let fc = net.weight("fc")?.clone();
    let fc = net.g.weight("fc.weight", &fc.shape, &fc.values);
    let descriptor = net.g.matmul(&mean, &fc);
    unit_length_out(&mut net.g, &io, &descriptor);
    Ok(net.g.finish(&[("emoedge.embedder.source", "face-api face_recognition_model".into())]))
}
