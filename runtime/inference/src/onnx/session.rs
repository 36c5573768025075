//! Opening a session on the first provider of the chain that works.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ort::environment::Environment;
use ort::ep::ExecutionProviderDispatch;
use ort::session::{Session, SessionInputs, SessionOutputs};

use super::{ActiveProvider, OnnxError, Placement, PlacementProfile, Provider, SessionOptions};

/// ONNX Runtime sessions this process has created, a profiled session's second opening
/// included: what a model costs to open (tests hold `auto` on the CPU to one variant's two
/// sessions, each opened once).
static OPENED: AtomicU64 = AtomicU64::new(0);

/// How many ONNX Runtime sessions this process has created so far.
pub fn sessions_opened() -> u64 {
    OPENED.load(Ordering::Relaxed)
}

/// Whether `provider`'s chain holds a GPU provider that can be registered at all: built into
/// emoedge (the `cuda` and `tensorrt` features) and into the loaded ONNX Runtime library (the
/// PyPI wheel has neither). Whether it then works needs a device: only opening a session tells.
pub fn offers_gpu(provider: Provider) -> bool {
    provider.chain().iter().any(|&candidate| match candidate {
        ActiveProvider::Cpu => false,
        ActiveProvider::Cuda => cuda_offered(),
        ActiveProvider::TensorRt => tensorrt_offered(),
    })
}

/// A loaded model and the provider that runs it.
pub struct ModelSession {
    pub session: Session,
    pub provider: ActiveProvider,
    /// The model's file name, for messages.
    pub name: String,
    /// Why each provider tried before `provider` was passed over (empty when the first worked).
    pub fallbacks: Vec<String>,
    /// Wall time spent inside [`ModelSession::run`] so far.
    pub busy: std::time::Duration,
    /// Calls of [`ModelSession::run`] so far.
    pub runs: u64,
    /// Times ONNX Runtime opened this model for this session: 1, or 2 after a profiled first
    /// call.
    pub openings: u32,
    /// Where the nodes ran: on the CPU provider, known at opening; elsewhere from ONNX
    /// Runtime's profile of the first call (`None` before it), or why it could not be read.
    pub placement: Option<Result<Placement, String>>,
    /// How the first call was profiled, and how to open the session again without profiling.
    profiled: Option<Profiled>,
}

/// A session opened with ONNX Runtime's profiler on. The profiler tells where the first call's
/// nodes ran, but a session that was ever profiled kept growing by ~800 B a call after
/// `end_profiling` (a 30-minute live soak: 86 → 117 MiB RSS; without profiling, flat): after
/// the first call, the session is opened again without it.
struct Profiled {
    /// Where the profile goes (deleted with this).
    _dir: tempfile::TempDir,
    env: &'static Environment,
    model: PathBuf,
    options: SessionOptions,
    explicit_gpu: bool,
    /// On TensorRT without an engine cache of the user's, a private one: the second opening
    /// loads the engines the first built instead of building them again.
    _engines: Option<tempfile::TempDir>,
}

impl ModelSession {
    /// Runs the model on `inputs` and hands its outputs to `read`; the call's time goes into
    /// `busy` and `runs`, and any failure becomes an error naming the model.
    pub fn run<'i, 'v: 'i, const N: usize, T>(
        &mut self,
        inputs: impl Into<SessionInputs<'i, 'v, N>>,
        read: impl FnOnce(&SessionOutputs) -> Result<T, OnnxError>,
    ) -> Result<T, OnnxError> {
        let start = std::time::Instant::now();
        let name = &self.name;
        let outputs =
            self.session.run(inputs).map_err(|e| OnnxError::Run { model: name.clone(), message: e.to_string() })?;
        let result = read(&outputs);
        drop(outputs);
        self.busy += start.elapsed();
        self.runs += 1;
        if let Some(profiled) = self.profiled.take() {
            self.placement = Some(self.end_profiling());
            // The unprofiled session; should it fail to open, the profiled one goes on.
            if let Ok(session) =
                try_open(profiled.env, &profiled.model, self.provider, &profiled.options, profiled.explicit_gpu, None)
            {
                self.session = session;
                self.openings += 1;
            }
        }
        result
    }

    /// Stops profiling after the first call and counts where its nodes ran.
    fn end_profiling(&mut self) -> Result<Placement, String> {
        let file = self.session.end_profiling().map_err(|e| e.to_string())?;
        let json = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
        Placement::from_profile(&json)
    }
}

impl std::fmt::Debug for ModelSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSession").field("name", &self.name).field("provider", &self.provider).finish()
    }
}

/// Opens `model` with the first provider of `options.provider`'s chain that registers and
/// accepts the model. A GPU provider that the user named explicitly must work: its failure is
/// an error naming why, and ONNX Runtime may not quietly run parts of the model on the CPU.
pub fn open_session(
    env: &'static Environment,
    model: &Path,
    options: &SessionOptions,
) -> Result<ModelSession, OnnxError> {
    let shown = model.display().to_string();
    if !model.is_file() {
        return Err(OnnxError::ModelMissing { path: shown });
    }
    let explicit_gpu = options.provider.chain().len() == 1 && options.provider.chain()[0] != ActiveProvider::Cpu;
    let mut reasons = Vec::new();
    for &candidate in options.provider.chain() {
        // ONNX Runtime profiles the first call, to tell where its nodes ran; the profile goes
        // into a private temporary folder, deleted after it is read.
        let profile = match options.placement_profile {
            PlacementProfile::OnGpu => candidate != ActiveProvider::Cpu,
            PlacementProfile::Always => true,
            PlacementProfile::Never => false,
        };
        let profiling =
            profile.then(|| tempfile::Builder::new().prefix("emoedge-ort-profile").tempdir().ok()).flatten();
        let mut options = options.clone();
        let engines = (profiling.is_some()
            && candidate == ActiveProvider::TensorRt
            && options.tensorrt.engine_cache_dir.is_none())
        .then(|| tempfile::Builder::new().prefix("emoedge-trt-engines").tempdir().ok())
        .flatten();
        if let Some(dir) = &engines {
            options.tensorrt.engine_cache_dir = Some(dir.path().to_path_buf());
        }
        match try_open(env, model, candidate, &options, explicit_gpu, profiling.as_ref()) {
            Ok(session) => {
                let name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(shown);
                let profiled = profiling.map(|dir| Profiled {
                    _dir: dir,
                    env,
                    model: model.to_path_buf(),
                    options,
                    explicit_gpu,
                    _engines: engines,
                });
                return Ok(ModelSession {
                    session,
                    provider: candidate,
                    name,
                    fallbacks: reasons,
                    busy: Default::default(),
                    runs: 0,
                    openings: 1,
                    // The CPU provider alone has nowhere else to put a node.
                    placement: (candidate == ActiveProvider::Cpu && profiled.is_none())
                        .then_some(Ok(Placement::Only(ActiveProvider::Cpu))),
                    profiled,
                });
            }
            Err(Attempt::Model(message)) => return Err(OnnxError::ModelInvalid { path: shown, message }),
            Err(Attempt::Provider(reason)) => reasons.push(format!("{candidate}: {reason}")),
        }
    }
    Err(OnnxError::ProviderUnavailable { requested: options.provider, reasons: reasons.join("; ") })
}

/// Why one candidate failed: the provider (try the next) or the model itself (stop).
enum Attempt {
    Provider(String),
    Model(String),
}

fn try_open(
    env: &Environment,
    model: &Path,
    candidate: ActiveProvider,
    options: &SessionOptions,
    explicit_gpu: bool,
    profiling: Option<&tempfile::TempDir>,
) -> Result<Session, Attempt> {
    let provider_err = |e: &dyn std::fmt::Display| Attempt::Provider(e.to_string());
    let mut builder = Session::builder(env).map_err(|e| provider_err(&e))?;
    // A pipeline runs five sessions one after another (P/R/O-Net, the frame and clip parts)
    // beside GStreamer's decoder: workers that spin after their session's call steal the cores
    // the next session needs. Without spinning, `emoedge run` on the sample video went from
    // 57 to 101 frames/s on a 2-core machine (detector time in ONNX Runtime 5.95 s → 3.04 s).
    builder = builder.with_intra_op_spinning(false).map_err(|e| provider_err(&e))?;
    if options.intra_threads > 0 {
        builder = builder.with_intra_threads(options.intra_threads).map_err(|e| provider_err(&e))?;
    }
    if let Some(dir) = profiling {
        builder = builder.with_profiling(dir.path().join("first-call")).map_err(|e| provider_err(&e))?;
    }
    if let Some(first) = dispatch(candidate, options).map_err(Attempt::Provider)? {
        let mut providers = vec![first];
        // Under `auto`, nodes TensorRT cannot take go to CUDA before the CPU (CUDA failing to
        // register here only leaves them to the CPU).
        if candidate == ActiveProvider::TensorRt && !explicit_gpu {
            providers.extend(cuda(options).ok());
        }
        builder = builder.with_execution_providers(providers).map_err(|e| provider_err(&e))?;
        if explicit_gpu {
            builder = builder.with_disable_cpu_fallback().map_err(|e| provider_err(&e))?;
        }
    }
    let session = builder.commit_from_file(model).map_err(|e| {
        // A GPU provider may register and still fail to build the model; only the CPU
        // provider's failure proves the model itself is bad.
        if candidate == ActiveProvider::Cpu { Attempt::Model(e.to_string()) } else { Attempt::Provider(e.to_string()) }
    })?;
    OPENED.fetch_add(1, Ordering::Relaxed);
    Ok(session)
}

/// The `ort` registration of a GPU provider; `None` for the CPU, which needs none.
fn dispatch(candidate: ActiveProvider, options: &SessionOptions) -> Result<Option<ExecutionProviderDispatch>, String> {
    match candidate {
        ActiveProvider::Cpu => Ok(None),
        ActiveProvider::Cuda => cuda(options).map(|ep| Some(ep.error_on_failure())),
        ActiveProvider::TensorRt => tensorrt(options).map(Some),
    }
}

/// CUDA's registration; the caller decides whether its failure fails the session.
#[cfg(feature = "cuda")]
fn cuda(options: &SessionOptions) -> Result<ExecutionProviderDispatch, String> {
    Ok(ort::ep::CUDA::default().with_device_id(options.device_id).build())
}

/// Whether the loaded ONNX Runtime library was built with CUDA.
#[cfg(feature = "cuda")]
fn cuda_offered() -> bool {
    <ort::ep::CUDA as ort::ep::ExecutionProvider>::is_available().unwrap_or(false)
}

#[cfg(not(feature = "cuda"))]
fn cuda_offered() -> bool {
    false
}

#[cfg(not(feature = "cuda"))]
fn cuda(_: &SessionOptions) -> Result<ExecutionProviderDispatch, String> {
    Err("this emoedge was built without the `cuda` feature".into())
}

#[cfg(feature = "tensorrt")]
fn tensorrt(options: &SessionOptions) -> Result<ExecutionProviderDispatch, String> {
    let trt = &options.tensorrt;
    let mut ep = ort::ep::TensorRT::default().with_device_id(options.device_id).with_fp16(trt.fp16).with_int8(trt.int8);
    if let Some(dir) = &trt.engine_cache_dir {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create engine cache dir {}: {e}", dir.display()))?;
        let dir = dir.display().to_string();
        ep = ep.with_engine_cache(true).with_engine_cache_path(&dir);
        if trt.timing_cache {
            ep = ep.with_timing_cache(true).with_timing_cache_path(&dir);
        }
    }
    if let Some(bytes) = trt.max_workspace_bytes {
        ep = ep.with_max_workspace_size(bytes);
    }
    if let Some(profile) = &trt.profile {
        ep = ep
            .with_profile_min_shapes(&profile.min)
            .with_profile_opt_shapes(&profile.opt)
            .with_profile_max_shapes(&profile.max);
    }
    Ok(ep.build().error_on_failure())
}

/// Whether the loaded ONNX Runtime library was built with TensorRT.
#[cfg(feature = "tensorrt")]
fn tensorrt_offered() -> bool {
    <ort::ep::TensorRT as ort::ep::ExecutionProvider>::is_available().unwrap_or(false)
}

#[cfg(not(feature = "tensorrt"))]
fn tensorrt_offered() -> bool {
    false
}

#[cfg(not(feature = "tensorrt"))]
fn tensorrt(_: &SessionOptions) -> Result<ExecutionProviderDispatch, String> {
    Err("this emoedge was built without the `tensorrt` feature".into())
}
