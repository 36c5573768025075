//! # emoedge-runtime
//!
//! The edge side of emoedge: what runs on a Jetson. ONNX Runtime sessions on the
//! TensorRT → CUDA → CPU chain ([`onnx`]), video decoding with GStreamer ([`video`]), face
//! capture with the MTCNN detector, aligned crops and an IoU tracker ([`face`]).
//!
//! It links the model's definition without the training framework (`emoedge-models` with
//! `default-features = false`), so the edge binary carries config, labels and preprocessing
//! but no burn.

pub mod assets;
pub mod capture;
pub mod emotion;
pub mod emotiondetect;
pub mod face;
pub mod info;
pub mod model;
pub mod onnx;
pub mod plot;
pub mod video;
