//! The reference forward in burn: the truth that the trainer trains and the exporter's ONNX
//! must match.

pub mod encoder;
pub mod expert;
pub mod gate;
pub mod head;
pub mod model;
pub mod store;
pub mod tap;

pub use encoder::FrameEncoder;
pub use model::{ClipFeatures, ClipOutput, FrameFeatures, HybridModel, Routing};
pub use store::{ParamSpec, WeightsError};
pub use tap::{Int8Tap, SiteRecorder, Tap, Taps};

/// Burn's portable CPU device (the `flex` backend).
pub fn cpu() -> burn::tensor::Device {
    burn::tensor::Device::flex()
}
