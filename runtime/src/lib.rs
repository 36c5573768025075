//! # emoedge-runtime
//!
//! The edge side of emoedge: what runs on a Jetson. It links the model's definition without
//! the training framework (`emoedge-models` with `default-features = false`), so the edge
//! binary carries config, labels and cost figures but no burn.

pub mod info;
