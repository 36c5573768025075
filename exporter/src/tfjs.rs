//! A TensorFlow.js graph model (`model.json` + its weight files, as npm packages ship them)
//! translated to ONNX with the graph builder — how the face embedder of issue 24 becomes
//! `embedder.onnx` without TensorFlow, tf2onnx or a model hub. Only the ops the embedders use
//! are translated; anything else is an error naming the op.
//!
//! TensorFlow works in NHWC, ONNX's Conv in NCHW: the input is transposed once, every 4-D value
//! stays NCHW (its per-channel constants reshaped to `[C, 1, 1]`), and a 4-D value is turned
//! back to NHWC only before a `Reshape`, whose element order depends on the layout.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use emoedge_models::io::{DetectorIo, EmbedderIo};
use onnx_protobuf::ModelProto;
use serde::Deserialize;
use serde_json::Value;

use crate::graph::{Arithmetic, GraphBuilder, attr_int};

#[derive(Deserialize)]
struct ModelJson {
    #[serde(rename = "modelTopology")]
    topology: Topology,
    #[serde(rename = "weightsManifest")]
    manifest: Vec<WeightGroup>,
}

#[derive(Deserialize)]
struct Topology {
    node: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    name: String,
    op: String,
    #[serde(default)]
    input: Vec<String>,
    #[serde(default)]
    attr: HashMap<String, Value>,
}

/// One group of a weights manifest: files that concatenate to the listed weights.
#[derive(Deserialize)]
pub(crate) struct WeightGroup {
    paths: Vec<String>,
    weights: Vec<WeightEntry>,
}

#[derive(Deserialize)]
struct WeightEntry {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    #[serde(default)]
    quantization: Option<Quantization>,
}

#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    scale: Option<f32>,
    min: Option<f32>,
}

/// A constant of the TensorFlow graph (weights and small integer operands).
#[derive(Debug, Clone)]
pub(crate) struct Const {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A computed value: its ONNX name and, for a 4-D (NCHW) value, its spatial size `(h, w)`.
#[derive(Debug, Clone)]
struct Tensor {
    name: String,
    rank: usize,
    spatial: Option<(usize, usize)>,
}

#[derive(Debug, Clone)]
enum Operand {
    Const(Const),
    Tensor(Tensor),
}

/// How the graph's input pixels (0–255) are normalised for the source model:
/// `(pixel − offset[channel]) · scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelNorm {
    pub offset: [f32; 3],
    pub scale: f32,
}

/// `pixels` (NHWC, 0–255) normalised by `norm`, as NCHW. Transposed first: ONNX Runtime's CPU
/// kernels broadcast a `[3]` offset over NHWC in 3-element spans, one call each (0.55 ms of a
/// 3.9 ms BlazeFace call, ORT's profiler), and a `[1, 3, 1, 1]` one over whole planes.
pub(crate) fn normalised_nchw(g: &mut GraphBuilder, pixels: &str, norm: PixelNorm) -> String {
    let nchw = g.transpose(pixels, &[0, 3, 1, 2]);
    let offset = g.weight("pixel_offset", &[1, 3, 1, 1], &norm.offset);
    let shifted = g.node("Sub", &[&nchw, &offset], vec![]);
    g.scale(&shifted, norm.scale)
}

/// Publishes `x` `[B, E]` as the embedder's output at unit length (identity is compared by
/// cosine, whatever the source net returns).
pub(crate) fn unit_length_out(g: &mut GraphBuilder, io: &EmbedderIo, x: &str) {
    let squared = g.mul(x, x);
    let axes = g.int64s(&[1]);
    let sum = g.node("ReduceSum", &[&squared, &axes], vec![attr_int("keepdims", 1)]);
    let eps = g.scalar(1e-10);
    let floor = g.node("Max", &[&sum, &eps], vec![]);
    let norm = g.node("Sqrt", &[&floor], vec![]);
    let unit = g.node("Div", &[x, &norm], vec![]);
    g.output(&unit, &io.embeddings);
}

/// Reads `model.json` and the weight files next to it.
fn read_model(model_json: &Path) -> anyhow::Result<(Vec<Node>, HashMap<String, Const>)> {
    let text = std::fs::read_to_string(model_json).with_context(|| format!("cannot read {}", model_json.display()))?;
    let model: ModelJson = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a TensorFlow.js graph model", model_json.display()))?;
    Ok((model.topology.node, read_weights(&model.manifest, model_json)?))
}

/// The weights a TensorFlow.js weights manifest (`origin`, its groups `manifest`) lists, read
/// from the files next to it and dequantized (`uint8`/`uint16`: `q·scale + min`; `float16`).
pub(crate) fn read_weights(manifest: &[WeightGroup], origin: &Path) -> anyhow::Result<HashMap<String, Const>> {
    let folder = origin.parent().unwrap_or(Path::new("."));
    let mut consts = HashMap::new();
    for group in manifest {
        let mut bytes = Vec::new();
        for path in &group.paths {
            let file = folder.join(path);
            bytes.extend(std::fs::read(&file).with_context(|| format!("cannot read weight file {}", file.display()))?);
        }
        let mut at = 0;
        for w in &group.weights {
            let n: usize = w.shape.iter().product();
            let stored = w.quantization.as_ref().map_or(w.dtype.as_str(), |q| q.dtype.as_str());
            let width = match stored {
                "float32" | "int32" => 4,
                "uint16" | "float16" => 2,
                "uint8" => 1,
                other => {
                    bail!("weight {} of {} is stored as {other}, which is not translated", w.name, origin.display())
                }
            };
            let chunk = bytes
                .get(at..at + width * n)
                .with_context(|| format!("the weight files of {} end inside weight {}", origin.display(), w.name))?;
            at += width * n;
            let values = decode(chunk, stored, w.quantization.as_ref());
            consts.insert(w.name.clone(), Const { shape: w.shape.clone(), values });
        }
    }
    Ok(consts)
}

/// One weight's stored bytes as floats (`stored` is a width `read_weights` accepted).
fn decode(chunk: &[u8], stored: &str, quantization: Option<&Quantization>) -> Vec<f32> {
    let (scale, min) = quantization.map_or((1.0, 0.0), |q| (q.scale.unwrap_or(1.0), q.min.unwrap_or(0.0)));
    match stored {
        "float32" => chunk.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        "int32" => chunk.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32).collect(),
        "float16" => chunk.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        "uint16" => chunk.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]]) as f32 * scale + min).collect(),
        _ => chunk.iter().map(|&q| q as f32 * scale + min).collect(),
    }
}

/// `node`'s attribute `key` as a list of integers (`{"list": {"i": ["1", "2"]}}`).
fn ints(node: &Node, key: &str) -> Vec<i64> {
    node.attr
        .get(key)
        .and_then(|a| a.pointer("/list/i"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_i64())).collect())
        .unwrap_or_default()
}

/// `node`'s string attribute `key` (base64 in the JSON), or a string list's items joined by `+`.
fn text(node: &Node, key: &str) -> String {
    use base64::Engine;
    let decode = |v: &Value| {
        v.as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    match node.attr.get(key) {
        Some(a) if a.get("s").is_some() => a.get("s").and_then(decode).unwrap_or_default(),
        Some(a) => a
            .pointer("/list/s")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(decode).collect::<Vec<_>>().join("+"))
            .unwrap_or_default(),
        None => String::new(),
    }
}

/// A TensorFlow HWIO kernel `[kh, kw, ci, co]` in ONNX's OIHW order; a depthwise HW·C·M
/// kernel becomes (C·M)·1·H·W (one group per input channel).
pub(crate) fn to_oihw(values: &[f32], [kh, kw, ci, co]: [usize; 4], depthwise: bool) -> Vec<f32> {
    let per_group = if depthwise { 1 } else { ci };
    let mut oihw = vec![0.0; values.len()];
    for (i, v) in values.iter().enumerate() {
        let (y, rest) = (i / (kw * ci * co), i % (kw * ci * co));
        let (x, rest) = (rest / (ci * co), rest % (ci * co));
        let (c, m) = (rest / co, rest % co);
        let (o, inner) = if depthwise { (c * co + m, 0) } else { (m, c) };
        oihw[((o * per_group + inner) * kh + y) * kw + x] = *v;
    }
    oihw
}

/// TensorFlow's padding of one spatial axis: `(before, after, output size)`.
fn padding(mode: &str, size: usize, kernel: usize, stride: usize) -> anyhow::Result<(usize, usize, usize)> {
    match mode {
        "SAME" => {
            let out = size.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(size);
            Ok((total / 2, total - total / 2, out))
        }
        "VALID" => {
            ensure!(size >= kernel, "a {kernel}-wide VALID convolution over {size} pixels");
            Ok((0, 0, (size - kernel) / stride + 1))
        }
        other => bail!("padding {other} is not translated"),
    }
}

struct Translator<'a> {
    g: &'a mut GraphBuilder,
    consts: &'a HashMap<String, Const>,
    values: HashMap<String, Operand>,
    consts_made: usize,
    /// Convolutions into which the TensorFlow.js converter folded a `Relu` although the net's
    /// PReLU (`relu(x) + (x − |x|)·α/2`) also reads them through `Abs` and `Sub`: those two
    /// must see the value before the Relu, or every PReLU becomes a ReLU (which collapses
    /// MobileFaceNet's embeddings: every face then has cosine ≈ 1 with every other).
    pre_relu: HashMap<String, Tensor>,
}

impl Translator<'_> {
    fn operand(&self, input: &str) -> anyhow::Result<Operand> {
        let name = input.split(':').next().unwrap_or(input);
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        self.consts.get(name).cloned().map(Operand::Const).with_context(|| format!("no value named {name}"))
    }

    fn tensor(&self, input: &str) -> anyhow::Result<Tensor> {
        match self.operand(input)? {
            Operand::Tensor(t) => Ok(t),
            Operand::Const(_) => bail!("{input} is a constant where a computed value was expected"),
        }
    }

    /// `input` before a Relu the converter folded into it (see `pre_relu`), else `input`.
    fn before_relu(&self, input: &str) -> anyhow::Result<Operand> {
        let name = input.split(':').next().unwrap_or(input);
        self.pre_relu.get(name).cloned().map_or_else(|| self.operand(input), |t| Ok(Operand::Tensor(t)))
    }

    fn constant(&self, input: &str) -> anyhow::Result<Const> {
        match self.operand(input)? {
            Operand::Const(c) => Ok(c),
            Operand::Tensor(_) => bail!("{input} is computed where a constant was expected"),
        }
    }

    /// A constant as an ONNX weight shaped to broadcast against `other` (per-channel vectors
    /// against an NCHW value become `[C, 1, 1]`).
    fn broadcast_weight(&mut self, c: &Const, other: &Tensor) -> String {
        // The graph builder names its own constants `const_N`; these get a prefix of their own.
        self.consts_made += 1;
        let name = format!("tfjs_const_{}", self.consts_made);
        let channels = c.shape.last().copied().unwrap_or(1);
        if other.rank == 4 && c.values.len() == channels && channels > 1 {
            self.g.weight(&name, &[channels, 1, 1], &c.values)
        } else if c.values.len() == 1 {
            self.g.weight(&name, &[], &c.values)
        } else {
            self.g.weight(&name, &c.shape, &c.values)
        }
    }

    /// `op` of operands `a` and `b` (a constant one broadcast against the other).
    fn binary(&mut self, op: &str, a: Operand, b: Operand) -> anyhow::Result<Tensor> {
        let (x, y, like) = match (&a, &b) {
            (Operand::Tensor(x), Operand::Tensor(y)) => (x.name.clone(), y.name.clone(), x.clone()),
            (Operand::Tensor(x), Operand::Const(c)) => (x.name.clone(), self.broadcast_weight(c, x), x.clone()),
            (Operand::Const(c), Operand::Tensor(y)) => (self.broadcast_weight(c, y), y.name.clone(), y.clone()),
            (Operand::Const(_), Operand::Const(_)) => bail!("{op} of two constants is not translated"),
        };
        Ok(Tensor { name: self.g.node(op, &[&x, &y], vec![]), ..like })
    }

    /// Conv2D and depthwise convolutions, with their fused bias and activation.
    fn conv(&mut self, node: &Node, depthwise: bool) -> anyhow::Result<Tensor> {
        let x = self.tensor(&node.input[0])?;
        let w = self.constant(&node.input[1])?;
        let (h, width) = x.spatial.context("a convolution of a value that is not 4-D")?;
        let [kh, kw, ci, co] = <[usize; 4]>::try_from(w.shape.clone())
            .map_err(|_| anyhow::anyhow!("{}: kernel shape {:?} is not 4-D", node.name, w.shape))?;
        let strides = ints(node, "strides");
        let stride = strides.get(1).copied().unwrap_or(1) as usize;
        ensure!(strides.get(2).copied().unwrap_or(1) as usize == stride, "{}: unequal strides", node.name);
        ensure!(
            ints(node, "dilations").iter().all(|&d| d == 1),
            "{}: dilated convolutions are not translated",
            node.name
        );
        let mode = text(node, "padding");
        let (top, bottom, out_h) = padding(&mode, h, kh, stride)?;
        let (left, right, out_w) = padding(&mode, width, kw, stride)?;
        let (out_channels, per_group, groups) = if depthwise { (ci * co, 1, ci) } else { (co, ci, 1) };
        let oihw = to_oihw(&w.values, [kh, kw, ci, co], depthwise);
        let weight = self.g.weight(&format!("{}.weight", node.name), &[out_channels, per_group, kh, kw], &oihw);
        let fused = text(node, "fused_ops");
        let bias = match fused.split('+').next() {
            Some("BiasAdd") => {
                let b = self.constant(&node.input[2])?;
                Some(self.g.weight(&format!("{}.bias", node.name), &[out_channels], &b.values))
            }
            _ => None,
        };
        let y = self.g.conv_padded(&x.name, &weight, bias.as_deref(), stride, [top, left, bottom, right], groups);
        let y = Tensor { name: y, rank: 4, spatial: Some((out_h, out_w)) };
        match fused.as_str() {
            "" | "BiasAdd" => {}
            "BiasAdd+Relu" => {
                let relu = Tensor { name: self.g.relu(&y.name), ..y.clone() };
                self.pre_relu.insert(node.name.clone(), y);
                return Ok(relu);
            }
            other => bail!("{}: fused ops {other} are not translated", node.name),
        }
        Ok(y)
    }

    /// Square max pooling (BlazeFace's shortcut branches), TensorFlow's padding rule.
    fn max_pool(&mut self, node: &Node) -> anyhow::Result<Tensor> {
        let x = self.tensor(&node.input[0])?;
        let (h, w) = x.spatial.context("a max pooling of a value that is not 4-D")?;
        let (kernel, strides) = (ints(node, "ksize"), ints(node, "strides"));
        let (k, stride) = (kernel.get(1).copied().unwrap_or(1) as usize, strides.get(1).copied().unwrap_or(1) as usize);
        ensure!(
            kernel.get(2) == kernel.get(1) && strides.get(2) == strides.get(1),
            "{}: only square max pooling is translated",
            node.name
        );
        let mode = text(node, "padding");
        let (top, bottom, out_h) = padding(&mode, h, k, stride)?;
        let (left, right, out_w) = padding(&mode, w, k, stride)?;
        ensure!(top == left && bottom == right, "{}: unequal pooling padding is not translated", node.name);
        let name = self.g.max_pool(&x.name, k, stride, [top, bottom]);
        Ok(Tensor { name, rank: 4, spatial: Some((out_h, out_w)) })
    }

    /// TensorFlow axes of a 4-D value in its NCHW layout.
    fn axes(x: &Tensor, axes: &[i64]) -> Vec<i64> {
        let nchw = |a: i64| match a.rem_euclid(4) {
            0 => 0,
            1 => 2,
            2 => 3,
            _ => 1,
        };
        if x.rank == 4 { axes.iter().map(|&a| nchw(a)).collect() } else { axes.to_vec() }
    }

    fn translate(&mut self, node: &Node) -> anyhow::Result<Option<Tensor>> {
        let input = |i: usize| node.input.get(i).map(String::as_str).unwrap_or_default();
        let unary = |t: &mut Self, op: &str| -> anyhow::Result<Tensor> {
            let x = t.tensor(input(0))?;
            Ok(Tensor { name: t.g.node(op, &[&x.name], vec![]), ..x })
        };
        let y = match node.op.as_str() {
            "Const" | "Placeholder" | "NoOp" => return Ok(None),
            "Identity" => self.tensor(input(0))?,
            "Conv2D" | "_FusedConv2D" => self.conv(node, false)?,
            "DepthwiseConv2dNative" | "FusedDepthwiseConv2dNative" => self.conv(node, true)?,
            "Relu" => unary(self, "Relu")?,
            "Abs" => match self.before_relu(input(0))? {
                Operand::Tensor(x) => Tensor { name: self.g.node("Abs", &[&x.name], vec![]), ..x },
                Operand::Const(_) => bail!("Abs of a constant (node {}) is not translated", node.name),
            },
            "Sqrt" => unary(self, "Sqrt")?,
            "Add" | "AddV2" => self.binary("Add", self.operand(input(0))?, self.operand(input(1))?)?,
            "Sub" => self.binary("Sub", self.before_relu(input(0))?, self.operand(input(1))?)?,
            "Mul" => self.binary("Mul", self.operand(input(0))?, self.operand(input(1))?)?,
            "Maximum" => self.binary("Max", self.operand(input(0))?, self.operand(input(1))?)?,
            "Minimum" => self.binary("Min", self.operand(input(0))?, self.operand(input(1))?)?,
            "Square" => self.binary("Mul", self.operand(input(0))?, self.operand(input(0))?)?,
            "Rsqrt" => {
                let root = unary(self, "Sqrt")?;
                let one = self.g.scalar(1.0);
                Tensor { name: self.g.node("Div", &[&one, &root.name], vec![]), ..root }
            }
            "MaxPool" => self.max_pool(node)?,
            "Sum" | "Squeeze" | "Pad" | "Reshape" | "MatMul" => self.reshaping(node)?,
            other => bail!("op {other} (node {}) is not translated", node.name),
        };
        Ok(Some(y))
    }

    /// The ops that change a value's shape.
    fn reshaping(&mut self, node: &Node) -> anyhow::Result<Tensor> {
        let x = self.tensor(&node.input[0])?;
        let axes_of = |c: &Const| c.values.iter().map(|&v| v as i64).collect::<Vec<i64>>();
        match node.op.as_str() {
            "Sum" => {
                let axes = Self::axes(&x, &axes_of(&self.constant(&node.input[1])?));
                let keep =
                    node.attr.get("keep_dims").and_then(|a| a.get("b")).and_then(Value::as_bool).unwrap_or(false);
                let axes = self.g.int64s(&axes);
                let name = self.g.node("ReduceSum", &[&x.name, &axes], vec![attr_int("keepdims", keep as i64)]);
                ensure!(keep || x.rank != 4, "{}: a 4-D sum without keep_dims is not translated", node.name);
                Ok(Tensor { name, ..x })
            }
            "Squeeze" => {
                let dims = ints(node, "squeeze_dims");
                let axes = self.g.int64s(&Self::axes(&x, &dims));
                let name = self.g.node("Squeeze", &[&x.name, &axes], vec![]);
                Ok(Tensor { name, rank: x.rank - dims.len(), spatial: None })
            }
            "Pad" => {
                let p = axes_of(&self.constant(&node.input[1])?);
                ensure!(p.len() == 8 && x.rank == 4, "{}: only 4-D padding is translated", node.name);
                // TensorFlow [[n0,n1],[h0,h1],[w0,w1],[c0,c1]] → ONNX [n0,c0,h0,w0, n1,c1,h1,w1].
                let pads = self.g.int64s(&[p[0], p[6], p[2], p[4], p[1], p[7], p[3], p[5]]);
                let name = self.g.node("Pad", &[&x.name, &pads], vec![]);
                let (h, w) = x.spatial.unwrap_or_default();
                let spatial = Some((h + (p[2] + p[3]) as usize, w + (p[4] + p[5]) as usize));
                Ok(Tensor { name, rank: 4, spatial })
            }
            "Reshape" => {
                let mut shape = axes_of(&self.constant(&node.input[1])?);
                if x.rank == 4 && shape.first() == Some(&1) {
                    // The converter fixed the batch at 1; ONNX's 0 keeps the input's, so the
                    // graph takes batches (the detector's calls across streams).
                    shape[0] = 0;
                }
                let from = if x.rank == 4 { self.g.transpose(&x.name, &[0, 2, 3, 1]) } else { x.name.clone() };
                ensure!(shape.len() != 4, "{}: a reshape to 4-D is not translated", node.name);
                Ok(Tensor { name: self.g.reshape(&from, &shape), rank: shape.len(), spatial: None })
            }
            _ => {
                let w = self.constant(&node.input[1])?;
                ensure!(w.shape.len() == 2 && x.rank == 2, "{}: only 2-D matrix products are translated", node.name);
                let transposed =
                    node.attr.get("transpose_b").and_then(|a| a.get("b")).and_then(Value::as_bool).unwrap_or(false);
                ensure!(!transposed, "{}: transpose_b is not translated", node.name);
                let weight = self.g.weight(&format!("{}.weight", node.name), &w.shape, &w.values);
                Ok(Tensor { name: self.g.matmul(&x.name, &weight), ..x })
            }
        }
    }
}

/// The embedding size and crop side of a translated embedder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderShape {
    pub side: usize,
    pub size: usize,
}

/// Translates the TensorFlow.js graph `model_json` (one NHWC image input, output `output`) to
/// an ONNX embedder: pixels `[B, S, S, 3]` in, unit-length embeddings `[B, E]` out, in
/// `arithmetic`. `size` is the embedding length the caller expects (checked by ONNX Runtime
/// when the graph is loaded).
pub fn embedder(
    model_json: &Path,
    output: &str,
    norm: PixelNorm,
    shape: EmbedderShape,
    arithmetic: Arithmetic,
) -> anyhow::Result<ModelProto> {
    let io = EmbedderIo::new(shape.side, shape.size);
    let mut g = GraphBuilder::new("embedder", arithmetic);
    let pixels = g.input(&io.faces);
    let out = translate(&mut g, model_json, &pixels, norm, shape.side, &[output])?.into_iter().next();
    let out = out.context("the translation returned no output")?;
    ensure!(out.rank == 2, "the output {output} is {}-D, not [batch, embedding]", out.rank);
    unit_length_out(&mut g, &io, &out.name);
    Ok(g.finish(&[("emoedge.embedder.source", source_name(model_json))]))
}

fn source_name(model_json: &Path) -> String {
    model_json.file_name().unwrap_or_default().to_string_lossy().into()
}

/// Translates the TensorFlow.js graph `model_json`, whose one input is the NHWC image `pixels`
/// (0–255, side `side`, normalised by `norm` for it), into `g`; returns the values `outputs`.
fn translate(
    g: &mut GraphBuilder,
    model_json: &Path,
    pixels: &str,
    norm: PixelNorm,
    side: usize,
    outputs: &[&str],
) -> anyhow::Result<Vec<Tensor>> {
    let (nodes, consts) = read_model(model_json)?;
    let nchw = normalised_nchw(g, pixels, norm);
    let mut t = Translator { g, consts: &consts, values: HashMap::new(), consts_made: 0, pre_relu: HashMap::new() };
    let placeholder = nodes.iter().find(|n| n.op == "Placeholder").context("the graph has no input")?;
    let input = Tensor { name: nchw, rank: 4, spatial: Some((side, side)) };
    t.values.insert(placeholder.name.clone(), Operand::Tensor(input));
    for node in &nodes {
        if let Some(y) = t.translate(node).with_context(|| format!("translating {}", model_json.display()))? {
            t.values.insert(node.name.clone(), Operand::Tensor(y));
        }
    }
    outputs
        .iter()
        .map(|o| t.tensor(o).with_context(|| format!("the graph {} has no output {o}", model_json.display())))
        .collect()
}

/// The face detector's geometry as the graph exposes it: input side, anchors and keypoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorShape {
    pub side: usize,
    pub anchors: usize,
    pub keypoints: usize,
}

/// Translates an SSD-style face detector (BlazeFace) from the TensorFlow.js graph `model_json`:
/// pixels `[B, S, S, 3]` in; each feature map's `(scores, regressions)` value pair of `heads`
/// (`[B, A_i, 1]`, `[B, A_i, 4 + 2K]`) concatenated in order into `regressions` `[B, A, 4 + 2K]`
/// and `face_scores` `[B, A]`, the latter through a sigmoid (probabilities out, so a threshold
/// means the same in every arithmetic).
pub fn detector(
    model_json: &Path,
    heads: &[[&str; 2]],
    norm: PixelNorm,
    shape: DetectorShape,
    arithmetic: Arithmetic,
) -> anyhow::Result<ModelProto> {
    let io = DetectorIo::new(shape.side, shape.anchors, shape.keypoints);
    let mut g = GraphBuilder::new("face_detector", arithmetic);
    let pixels = g.input(&io.pixels);
    let names: Vec<&str> = heads.iter().flatten().copied().collect();
    let values = translate(&mut g, model_json, &pixels, norm, shape.side, &names)?;
    let concat = |g: &mut GraphBuilder, parts: Vec<&str>| g.node("Concat", &parts, vec![attr_int("axis", 1)]);
    let scores = concat(&mut g, values.iter().step_by(2).map(|v| v.name.as_str()).collect());
    let regressions = concat(&mut g, values.iter().skip(1).step_by(2).map(|v| v.name.as_str()).collect());
    let scores = g.reshape(&scores, &[0, -1]);
    let probabilities = g.node("Sigmoid", &[&scores], vec![]);
    g.output(&regressions, &io.regressions);
    g.output(&probabilities, &io.scores);
    Ok(g.finish(&[("emoedge.detector.source", source_name(model_json))]))
}
