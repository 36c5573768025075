//! Every op of every exported graph is on the TensorRT 8.5 allow-list kept in the exporter.

mod common;

use common::default_model;
use emoedge_exporter::audit::{disallowed_ops, op_types};
use emoedge_exporter::clip::clip_graph;
use emoedge_exporter::frame::frame_graph;
use emoedge_exporter::graph::Precision;
use emoedge_exporter::weights::Weights;

#[test]
fn graphs_use_only_tensorrt_8_5_ops_and_opset_17() {
    let (config, model) = default_model();
    let weights = Weights::of(&model).unwrap();
    for graph in [frame_graph(&config, &weights, Precision::Fp32, &[]), clip_graph(&config, &weights, Precision::Fp32, &[])] {
        assert!(disallowed_ops(&graph).is_empty(), "{:?}", disallowed_ops(&graph));
        let ops = op_types(&graph);
        assert!(!ops.contains("LayerNormalization") && !ops.contains("TopK") && !ops.contains("Gelu"), "{ops:?}");
        assert_eq!(graph.opset_import.len(), 1);
        assert_eq!(graph.opset_import[0].version, 17);
        // Constants live as initializers, never as Constant nodes.
        assert!(!ops.contains("Constant"));
    }
}
