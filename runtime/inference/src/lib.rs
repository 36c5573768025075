//! # emoedge-inference
//!
//! The inference core of emoedge, without GStreamer: the ONNX Runtime library and sessions on
//! the TensorRT → CUDA → CPU chain ([`onnx`]), model bundles checked against their manifest and
//! the model's I/O contract ([`model`], [`bundle`]), and the per-track emotion engine
//! ([`engine`]) that turns face crops of tracks into smoothed emotions.
//!
//! It links the model's definition without the training framework (`emoedge-models` with
//! `default-features = false`): config, labels, preprocessing and the I/O contract, no burn.
//! The exporter's parity check uses this crate; the vision layer, the GStreamer element and the
//! CLI build on it.

pub mod assets;
pub mod bundle;
pub mod embedder;
pub mod engine;
pub mod model;
pub mod onnx;
pub mod shared;
