//! # emoedge-vision
//!
//! Everything between a video and the emotion engine: GStreamer video input with one pull loop
//! ([`video`]), the MTCNN detector, aligned crops and an IoU tracker ([`face`]), face capture
//! that ties them together ([`capture`]), and the [`analyzer`] — face source plus
//! [`emoedge_inference::engine`] — that the GStreamer element and `emoedge run` share. The
//! trainer's data preparation uses the same capture, so training and inference see identically
//! cut faces.

pub mod analyzer;
pub mod capture;
pub mod face;
pub mod reid;
pub mod video;
