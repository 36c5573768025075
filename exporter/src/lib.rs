//! # emoedge-exporter
//!
//! Turns trainer output (safetensors + config + quant.json) into the ONNX model bundle the
//! runtime loads, and proves parity against [`emoedge_models::reference::HybridModel`]'s
//! forward in ONNX Runtime. ONNX graphs are built over the registry's `onnx-protobuf` types
//! (`graph`), layer by layer as the reference forward reads (`frame`).

pub mod audit;
pub mod bundle;
pub mod check;
pub mod clip;
pub mod detector;
pub mod embedder;
pub mod face_inputs;
pub mod faceapi;
pub mod frame;
pub mod graph;
pub mod mtcnn;
pub mod tfjs;
pub mod weights;

pub use emoedge_models::reference::HybridModel;
