//! A small ONNX graph builder over the registry's `onnx-protobuf` types: named helpers for the
//! layers of the model, so that an export reads like the reference forward.

use emoedge_models::io::{Dim, TensorSpec};
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto, tensor_proto, type_proto,
};

/// ONNX opset of every graph (TensorRT 8.5 on JetPack 5 parses up to 17).
pub const OPSET: i64 = 17;

/// The float type of a graph's weights and compute (a bundle variant's graphs use FP16 for `fp16`, FP32
/// otherwise; `int8` adds Q/DQ pairs to FP32 graphs). Inputs and outputs stay FP32; an FP16
/// graph casts at its edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arithmetic {
    Fp32,
    Fp16,
}

pub struct GraphBuilder {
    graph: GraphProto,
    next: usize,
    arithmetic: Arithmetic,
}

pub(crate) fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: attribute_proto::AttributeType::INT.into(),
        i: value,
        ..Default::default()
    }
}

pub(crate) fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: attribute_proto::AttributeType::INTS.into(),
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// The name of the dynamic batch dimension in every graph.
const BATCH: &str = "batch";

fn value_info(name: &str, elem_type: tensor_proto::DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                Dim::Batch => dimension::Value::DimParam(BATCH.into()),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: elem_type as i32,
        shape: Some(TensorShapeProto { dim, ..Default::default() }).into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }).into(),
        ..Default::default()
    }
}

impl GraphBuilder {
    pub fn new(name: &str, arithmetic: Arithmetic) -> Self {
        Self { graph: GraphProto { name: name.into(), ..Default::default() }, next: 0, arithmetic }
    }

    /// Declares the input `spec` of the model's I/O contract; returns its value in the graph's arithmetic.
    pub fn input(&mut self, spec: &TensorSpec) -> String {
        let name = spec.name;
        self.graph.input.push(value_info(name, tensor_proto::DataType::FLOAT, &spec.dims));
        match self.arithmetic {
            Arithmetic::Fp32 => name.to_string(),
            Arithmetic::Fp16 => {
                self.node("Cast", &[name], vec![attr_int("to", tensor_proto::DataType::FLOAT16 as i64)])
            }
        }
    }

    /// Publishes `value` as the output `spec` of the model's I/O contract (FP32).
    pub fn output(&mut self, value: &str, spec: &TensorSpec) {
        let value = match self.arithmetic {
            Arithmetic::Fp32 => value.to_string(),
            Arithmetic::Fp16 => self.node("Cast", &[value], vec![attr_int("to", tensor_proto::DataType::FLOAT as i64)]),
        };
        let value = self.identity(&value, spec.name);
        self.graph.output.push(value_info(&value, tensor_proto::DataType::FLOAT, &spec.dims));
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Adds an initializer with little-endian `raw_data` and returns its name.
    fn initializer(
        &mut self,
        name: &str,
        shape: &[usize],
        data_type: tensor_proto::DataType,
        raw_data: Vec<u8>,
    ) -> String {
        self.graph.initializer.push(TensorProto {
            name: name.into(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        });
        name.to_string()
    }

    /// A float initializer (a weight or a constant), stored in the graph's arithmetic.
    pub fn weight(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        match self.arithmetic {
            Arithmetic::Fp32 => self.fp32s(name, shape, data),
            Arithmetic::Fp16 => {
                let raw = data.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
                self.initializer(name, shape, tensor_proto::DataType::FLOAT16, raw)
            }
        }
    }

    fn int8s(&mut self, name: &str, shape: &[usize], values: &[i8]) -> String {
        self.initializer(name, shape, tensor_proto::DataType::INT8, values.iter().map(|&v| v as u8).collect())
    }

    /// An FP32 initializer whatever the graph's arithmetic (quantization scales).
    fn fp32s(&mut self, name: &str, shape: &[usize], values: &[f32]) -> String {
        self.initializer(
            name,
            shape,
            tensor_proto::DataType::FLOAT,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// An INT8 weight stored as such and dequantized per output channel along axis 0
    /// (`DequantizeLinear`, zero points 0) — the weight half of TensorRT's explicit Q/DQ.
    /// `values` is row-major `shape` with its channels along `axis`; a `[in, out]` linear
    /// weight (axis 1) is stored `[out, in]` and transposed back after dequantization.
    pub fn dequantized_weight(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[i8],
        scales: &[f32],
        axis: usize,
    ) -> String {
        let channels = [scales.len()];
        let scale = self.fp32s(&format!("{name}.scale"), &channels, scales);
        let zero = self.int8s(&format!("{name}.zero_point"), &channels, &vec![0; scales.len()]);
        if shape.len() == 2 && axis == 1 {
            let (rows, cols) = (shape[0], shape[1]);
            let transposed: Vec<i8> = (0..cols * rows).map(|i| values[(i % rows) * cols + i / rows]).collect();
            let stored = self.int8s(&format!("{name}.int8"), &[cols, rows], &transposed);
            let weight = self.node("DequantizeLinear", &[&stored, &scale, &zero], vec![attr_int("axis", 0)]);
            self.transpose(&weight, &[1, 0])
        } else {
            assert_eq!(axis, 0, "per-channel axis of `{name}`");
            let stored = self.int8s(&format!("{name}.int8"), shape, values);
            self.node("DequantizeLinear", &[&stored, &scale, &zero], vec![attr_int("axis", 0)])
        }
    }

    /// `x` through a per-tensor INT8 QuantizeLinear → DequantizeLinear pair (zero point 0):
    /// where TensorRT runs the following layer in INT8.
    pub fn quantize_dequantize(&mut self, x: &str, scale: f32) -> String {
        let scale_name = self.fresh("act_scale");
        let scale = self.fp32s(&scale_name, &[], &[scale]);
        let zero_name = self.fresh("act_zero_point");
        let zero = self.int8s(&zero_name, &[], &[0]);
        let q = self.node("QuantizeLinear", &[x, &scale, &zero], vec![]);
        self.node("DequantizeLinear", &[&q, &scale, &zero], vec![])
    }

    pub fn scalar(&mut self, value: f32) -> String {
        let name = self.fresh("const");
        self.weight(&name, &[], &[value])
    }

    pub fn int64s(&mut self, values: &[i64]) -> String {
        let name = self.fresh("shape");
        self.initializer(
            &name,
            &[values.len()],
            tensor_proto::DataType::INT64,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    pub fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let output = self.fresh(&op.to_ascii_lowercase());
        self.graph.node.push(NodeProto {
            op_type: op.into(),
            name: output.clone(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            attribute: attributes,
            ..Default::default()
        });
        output
    }

    fn identity(&mut self, x: &str, name: &str) -> String {
        self.graph.node.push(NodeProto {
            op_type: "Identity".into(),
            name: format!("{name}_out"),
            input: vec![x.into()],
            output: vec![name.into()],
            ..Default::default()
        });
        name.to_string()
    }

    /// A 2-D convolution; `bias` is optional (a depthwise convolution has none).
    pub fn conv(
        &mut self,
        x: &str,
        weight: &str,
        bias: Option<&str>,
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> String {
        self.conv_padded(x, weight, bias, stride, [pad; 4], groups)
    }

    /// A 2-D convolution with its own padding per side, `[top, left, bottom, right]` (ONNX's
    /// order): TensorFlow's `SAME` pads the bottom and right more when the total is odd.
    pub fn conv_padded(
        &mut self,
        x: &str,
        weight: &str,
        bias: Option<&str>,
        stride: usize,
        pads: [usize; 4],
        groups: usize,
    ) -> String {
        let s = stride as i64;
        let pads = pads.map(|p| p as i64);
        let inputs: Vec<&str> = [Some(x), Some(weight), bias].into_iter().flatten().collect();
        self.node(
            "Conv",
            &inputs,
            vec![attr_ints("strides", &[s, s]), attr_ints("pads", &pads), attr_int("group", groups as i64)],
        )
    }

    /// `kernel`×`kernel` max pooling with `stride` and padding (before, after) on both spatial
    /// axes; ONNX never picks a padded cell.
    pub fn max_pool(&mut self, x: &str, kernel: usize, stride: usize, [before, after]: [usize; 2]) -> String {
        let (k, s, b, a) = (kernel as i64, stride as i64, before as i64, after as i64);
        self.node(
            "MaxPool",
            &[x],
            vec![attr_ints("kernel_shape", &[k, k]), attr_ints("strides", &[s, s]), attr_ints("pads", &[b, b, a, a])],
        )
    }

    pub fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], vec![])
    }

    pub fn add(&mut self, a: &str, b: &str) -> String {
        self.node("Add", &[a, b], vec![])
    }

    pub fn mul(&mut self, a: &str, b: &str) -> String {
        self.node("Mul", &[a, b], vec![])
    }

    /// `x · W + b` with burn's `[in, out]` weight.
    pub fn linear(&mut self, x: &str, weight: &str, bias: &str) -> String {
        let y = self.node("MatMul", &[x, weight], vec![]);
        self.add(&y, bias)
    }

    /// Exact GELU as `0.5·x·(1 + erf(x/√2))` (the Gelu op needs opset 20).
    pub fn gelu(&mut self, x: &str) -> String {
        let inv_sqrt2 = self.scalar(std::f32::consts::FRAC_1_SQRT_2);
        let one = self.scalar(1.0);
        let half = self.scalar(0.5);
        let scaled = self.mul(x, &inv_sqrt2);
        let erf = self.node("Erf", &[&scaled], vec![]);
        let shifted = self.add(&erf, &one);
        let product = self.mul(x, &shifted);
        self.mul(&product, &half)
    }

    /// LayerNorm over the last axis, decomposed (TensorRT 8.5 has no LayerNormalization op).
    pub fn layer_norm(&mut self, x: &str, gamma: &str, beta: &str, epsilon: f32) -> String {
        let mean = self.node("ReduceMean", &[x], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)]);
        let centred = self.node("Sub", &[x, &mean], vec![]);
        let squared = self.mul(&centred, &centred);
        let variance = self.node("ReduceMean", &[&squared], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)]);
        let eps = self.scalar(epsilon);
        let shifted = self.add(&variance, &eps);
        let std = self.node("Sqrt", &[&shifted], vec![]);
        let normed = self.node("Div", &[&centred, &std], vec![]);
        let scaled = self.mul(&normed, gamma);
        self.add(&scaled, beta)
    }

    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let shape = self.int64s(shape);
        self.node("Reshape", &[x, &shape], vec![])
    }

    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.node("Transpose", &[x], vec![attr_ints("perm", perm)])
    }

    pub fn reduce_mean(&mut self, x: &str, axes: &[i64], keepdims: bool) -> String {
        self.node("ReduceMean", &[x], vec![attr_ints("axes", axes), attr_int("keepdims", keepdims as i64)])
    }

    /// `x[..., start:end, ...]` along `axis`.
    pub fn slice(&mut self, x: &str, start: i64, end: i64, axis: i64) -> String {
        let (starts, ends, axes) = (self.int64s(&[start]), self.int64s(&[end]), self.int64s(&[axis]));
        self.node("Slice", &[x, &starts, &ends, &axes], vec![])
    }

    pub fn matmul(&mut self, a: &str, b: &str) -> String {
        self.node("MatMul", &[a, b], vec![])
    }

    pub fn softmax(&mut self, x: &str, axis: i64) -> String {
        self.node("Softmax", &[x], vec![attr_int("axis", axis)])
    }

    pub fn scale(&mut self, x: &str, factor: f32) -> String {
        let c = self.scalar(factor);
        self.mul(x, &c)
    }

    /// Wraps the graph as an opset-17 model with `metadata_props`.
    pub fn finish(self, metadata: &[(&str, String)]) -> ModelProto {
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET, ..Default::default() }],
            producer_name: "emoedge-export".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph).into(),
            metadata_props: metadata
                .iter()
                .map(|(k, v)| StringStringEntryProto { key: (*k).into(), value: v.clone(), ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }
}
