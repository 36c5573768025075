//! # emoedge-exporter
//!
//! Turns trainer output (safetensors + config + quant.json) into the ONNX model bundle the
//! runtime loads, and proves parity against [`emoedge_models::reference::HybridModel`]'s
//! forward in ONNX Runtime. The `emoedge-export` binary arrives with the exporter issue.

pub use emoedge_models::reference::HybridModel;
