//! ONNX Runtime through `ort`: loading the library, opening sessions on the provider chain
//! TensorRT → CUDA → CPU, and saying which provider actually serves each session.

mod library;
mod placement;
mod provider;
mod session;
mod shared_session;

pub use library::{ORT_LIB_ENV, environment, locate};
pub use placement::Placement;
pub use provider::{
    ActiveProvider, DEFAULT_INTRA_THREADS, PlacementProfile, ProfileShapes, Provider, SessionOptions, TensorRtOptions,
};
pub use session::{ModelSession, offers_gpu, open_session, sessions_opened};
pub use shared_session::SharedSession;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(
        "ONNX Runtime library not found at {path} ({source_hint}); run scripts/setup, or point \
         --ort-lib / $EMOEDGE_ORT_LIB at libonnxruntime.so"
    )]
    LibraryMissing { path: String, source_hint: String },
    #[error(
        "cannot load the ONNX Runtime library {path}: {message}; it must be ONNX Runtime ≥ 1.17 built \
         for this machine — run scripts/setup or point --ort-lib at a working libonnxruntime.so"
    )]
    LibraryLoad { path: String, message: String },
    #[error("ONNX Runtime is already loaded from {loaded}; a process cannot also load {requested}")]
    LibraryConflict { loaded: String, requested: String },
    #[error("ONNX model {path} does not exist; check the path (models and detectors are set up by scripts/setup)")]
    ModelMissing { path: String },
    #[error(
        "cannot load ONNX model {path}: {message}; the file is not a valid ONNX model — re-export it or re-run scripts/setup"
    )]
    ModelInvalid { path: String, message: String },
    #[error(
        "execution provider `{requested}` is not usable: {reasons}; use --execution-provider auto or cpu, or run on a machine whose ONNX Runtime has it"
    )]
    ProviderUnavailable { requested: Provider, reasons: String },
    #[error("inference with {model} failed: {message}")]
    Run { model: String, message: String },
}
