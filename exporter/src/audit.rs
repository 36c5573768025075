//! The operators TensorRT 8.5 (JetPack 5) parses from ONNX that the exporter may emit. Every
//! graph is checked against this list; an op outside it is an export bug, not a runtime surprise.

use std::collections::BTreeSet;

use onnx_protobuf::ModelProto;

/// ONNX ops supported by TensorRT 8.5's ONNX parser that the model needs (a deliberate subset).
pub const TENSORRT_8_5_OPS: &[&str] = &[
    "Add",
    "Cast",
    "Conv",
    "DequantizeLinear",
    "Div",
    "Erf",
    "Identity",
    "MatMul",
    "MaxPool",
    "Mul",
    "QuantizeLinear",
    "ReduceMean",
    "Relu",
    "Reshape",
    "Slice",
    "Softmax",
    "Sqrt",
    "Sub",
    "Transpose",
];

/// The distinct op types of a model's graph.
pub fn op_types(model: &ModelProto) -> BTreeSet<String> {
    model.graph.node.iter().map(|n| n.op_type.clone()).collect()
}

/// Ops of `model` that are not on the allow-list.
pub fn disallowed_ops(model: &ModelProto) -> Vec<String> {
    op_types(model).into_iter().filter(|op| !TENSORRT_8_5_OPS.contains(&op.as_str())).collect()
}
