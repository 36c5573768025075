//! The operators TensorRT 8.5 (JetPack 5) parses from ONNX that the exporter may emit. Every
//! graph is checked against this list; an op outside it is an export bug, not a runtime surprise.

use std::collections::BTreeSet;

use onnx_protobuf::ModelProto;

/// ONNX ops supported by TensorRT 8.5's ONNX parser that the models need (a deliberate subset;
/// Abs, AveragePool, Max, Min, Pad, ReduceSum and Squeeze came with the face embedders, Concat
/// and Sigmoid with the face detector).
pub const TENSORRT_8_5_OPS: &[&str] = &[
    "Abs",
    "Add",
    "AveragePool",
    "Cast",
    "Concat",
    "Conv",
    "DequantizeLinear",
    "Div",
    "Erf",
    "Identity",
    "MatMul",
    "Max",
    "MaxPool",
    "Min",
    "Mul",
    "Pad",
    "QuantizeLinear",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Sqrt",
    "Squeeze",
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

/// Refuses a graph (`name`, for the message) with an op outside the allow-list: a bundle that
/// TensorRT cannot parse is never written.
pub fn check(model: &ModelProto, name: &str) -> anyhow::Result<()> {
    let ops = disallowed_ops(model);
    anyhow::ensure!(
        ops.is_empty(),
        "{name} uses {} that TensorRT 8.5 (JetPack 5) cannot parse; the exporter must not emit it (see exporter/src/audit.rs)",
        ops.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use onnx_protobuf::NodeProto;

    use super::*;

    #[test]
    fn a_graph_with_an_op_tensorrt_cannot_parse_is_refused_naming_the_op() {
        let mut model = ModelProto::new();
        for op in ["Conv", "TopK", "Relu"] {
            let mut node = NodeProto::new();
            node.op_type = op.into();
            model.graph.mut_or_insert_default().node.push(node);
        }
        let e = check(&model, "the fp32 frame graph").unwrap_err().to_string();
        assert!(e.contains("the fp32 frame graph uses TopK that TensorRT 8.5"), "{e}");
        model.graph.mut_or_insert_default().node.remove(1);
        check(&model, "the fp32 frame graph").unwrap();
    }
}
