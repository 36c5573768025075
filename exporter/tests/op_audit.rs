//! Every op of every exported graph is on the TensorRT 8.5 allow-list kept in the exporter, and
//! the INT8 graphs carry Q/DQ pairs exactly where the trainer calibrated.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::default_run;
use emoedge_exporter::audit::{disallowed_ops, op_types};
use emoedge_exporter::bundle::graphs;
use emoedge_models::manifest::Variant;
use emoedge_models::quant::weight_axis;
use onnx_protobuf::tensor_proto::DataType;

#[test]
fn graphs_use_only_tensorrt_8_5_ops_and_opset_17() {
    let run = default_run();
    for variant in Variant::ALL {
        for graph in graphs(&run.config, &run.model, &run.quant, variant, "test").unwrap() {
            assert!(disallowed_ops(&graph).is_empty(), "{variant}: {:?}", disallowed_ops(&graph));
            let ops = op_types(&graph);
            assert!(!ops.contains("LayerNormalization") && !ops.contains("TopK") && !ops.contains("Gelu"), "{ops:?}");
            assert_eq!(graph.opset_import.len(), 1);
            assert_eq!(graph.opset_import[0].version, 17);
            // Constants live as initializers, never as Constant nodes.
            assert!(!ops.contains("Constant"));
        }
    }
}

#[test]
fn int8_graphs_quantize_every_calibrated_site_and_weight() {
    let run = default_run();
    let [frame, clip] = graphs(&run.config, &run.model, &run.quant, Variant::Int8, "test").unwrap();
    let count = |op: &str| {
        [&frame, &clip].iter().map(|g| g.graph.node.iter().filter(|n| n.op_type == op).count()).sum::<usize>()
    };
    let sites = run.model.tap_sites(&run.config);
    let quantized_weights = run.model.param_specs().iter().filter(|p| weight_axis(&p.name, &p.shape).is_some()).count();
    assert_eq!(sites.len(), 33); // encoder 2 stem + 4 modules × 5, experts 2 × 2, gate 4, head 3
    assert_eq!(count("QuantizeLinear"), sites.len());
    assert_eq!(count("DequantizeLinear"), sites.len() + quantized_weights);
    // Weights are stored as INT8 (a quarter of FP32), with per-channel scales on axis 0.
    let int8: Vec<_> = [&frame, &clip]
        .iter()
        .flat_map(|g| g.graph.initializer.iter())
        .filter(|t| t.data_type == DataType::INT8 as i32 && t.name.ends_with(".int8"))
        .collect();
    assert_eq!(int8.len(), quantized_weights);
    for node in [&frame, &clip]
        .iter()
        .flat_map(|g| g.graph.node.iter())
        .filter(|n| n.op_type == "DequantizeLinear" && n.input[0].ends_with(".int8"))
    {
        assert_eq!(node.attribute.iter().find(|a| a.name == "axis").map(|a| a.i), Some(0), "{}", node.name);
    }
}
