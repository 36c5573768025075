//! Execution providers: the user's preference, the options of each GPU provider, and which one
//! actually serves a session.

use std::fmt;
use std::path::PathBuf;

/// What the user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "glib", derive(glib::Enum), enum_type(name = "GstEmoedgeExecutionProvider"))]
#[repr(i32)]
pub enum Provider {
    /// TensorRT, else CUDA, else CPU; the one that registers is reported.
    #[default]
    #[cfg_attr(feature = "glib", enum_value(name = "TensorRT, then CUDA, then CPU", nick = "auto"))]
    Auto,
    #[cfg_attr(feature = "clap", value(name = "tensorrt", alias = "trt"))]
    #[cfg_attr(feature = "glib", enum_value(name = "TensorRT only", nick = "tensorrt"))]
    TensorRt,
    #[cfg_attr(feature = "glib", enum_value(name = "CUDA only", nick = "cuda"))]
    Cuda,
    #[cfg_attr(feature = "glib", enum_value(name = "CPU only", nick = "cpu"))]
    Cpu,
}

impl Provider {
    /// The providers to try, in order.
    pub fn chain(self) -> &'static [ActiveProvider] {
        match self {
            Provider::Auto => &[ActiveProvider::TensorRt, ActiveProvider::Cuda, ActiveProvider::Cpu],
            Provider::TensorRt => &[ActiveProvider::TensorRt],
            Provider::Cuda => &[ActiveProvider::Cuda],
            Provider::Cpu => &[ActiveProvider::Cpu],
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provider::Auto => f.write_str("auto"),
            Provider::TensorRt => ActiveProvider::TensorRt.fmt(f),
            Provider::Cuda => ActiveProvider::Cuda.fmt(f),
            Provider::Cpu => ActiveProvider::Cpu.fmt(f),
        }
    }
}

/// The provider that a session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveProvider {
    TensorRt,
    Cuda,
    Cpu,
}

impl fmt::Display for ActiveProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActiveProvider::TensorRt => "tensorrt",
            ActiveProvider::Cuda => "cuda",
            ActiveProvider::Cpu => "cpu",
        })
    }
}

pub use emoedge_models::manifest::ProfileShapes;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TensorRtOptions {
    pub fp16: bool,
    pub int8: bool,
    /// Built engines are cached here; the first run on a device builds them (minutes on a Jetson).
    pub engine_cache_dir: Option<PathBuf>,
    /// Cache TensorRT's kernel timings beside the engines.
    pub timing_cache: bool,
    pub max_workspace_bytes: Option<usize>,
    pub profile: Option<ProfileShapes>,
}

impl TensorRtOptions {
    /// Engines kept in `dir` (built on the first run, minutes on a Jetson) with TensorRT's
    /// kernel timings beside them; `None`: nothing is kept.
    pub fn cache_in(&mut self, dir: Option<PathBuf>) {
        self.timing_cache = dir.is_some();
        self.engine_cache_dir = dir;
    }
}

/// When ONNX Runtime's profiler watches a session's first call to learn where its nodes ran.
/// A profiled session is opened a second time after that call (see `ModelSession::run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlacementProfile {
    /// On a GPU provider, which may leave nodes to the next one in line; on the CPU provider
    /// every node runs on the CPU, known without a profile or a second opening.
    #[default]
    OnGpu,
    /// On every provider, the CPU's too (the profiler's own tests).
    Always,
    /// Never: for a small model called rarely (the face embedder), opening it twice costs more
    /// than all its calls in a short run.
    Never,
}

/// How to open sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionOptions {
    pub provider: Provider,
    /// GPU index for CUDA and TensorRT.
    pub device_id: i32,
    pub tensorrt: TensorRtOptions,
    /// CPU threads for one session's operators; 0 lets ONNX Runtime decide.
    pub intra_threads: usize,
    pub placement_profile: PlacementProfile,
}

/// CPU threads per session by default. The runtime's models are small and called one after
/// another beside GStreamer's decoder thread (and, with several streams, beside each other):
/// with ONNX Runtime's own choice (one worker per core) a call's workers wake and sleep ~60
/// times per frame. One thread per session took `emoedge run` on the sample video from 1.40 s
/// to 1.16 s with BlazeFace and from 1.54 s to 1.47 s with MTCNN (5 runs each,
/// `perf stat -r 5`, 2 cores), and leaves the other core to decoding and to other streams.
pub const DEFAULT_INTRA_THREADS: usize = 1;

impl SessionOptions {
    /// For offline work on large batches (evaluation): ONNX Runtime's own thread count, all
    /// cores for each call.
    pub fn offline() -> Self {
        Self { intra_threads: 0, ..Self::default() }
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            provider: Provider::default(),
            device_id: 0,
            tensorrt: TensorRtOptions::default(),
            intra_threads: DEFAULT_INTRA_THREADS,
            placement_profile: PlacementProfile::default(),
        }
    }
}
