//! One emotion model for every stream of a process, with their calls batched together — what
//! DeepStream's `nvstreammux` + one `nvinfer` do. Each stream's engine holds a [`SharedModel`]
//! handle; a call queues its crops (or clips) in the model's [`GroupCommit`]: a lone stream
//! pays nothing and busy streams fill batches up to the bundle's TensorRT profile.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use emoedge_models::Preprocessing;
use emoedge_models::manifest::Variant;
use emoedge_support::GroupCommit;
use emoedge_support::sync::{WeakRegistry, lock};

use crate::bundle::BundleError;
use crate::engine::EmotionBackend;
use crate::model::{ClipResult, EmotionModel, FaceFeatures, Precision};
use crate::onnx::{OnnxError, SessionOptions};

/// Calls made and items they carried, per part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub frame_calls: u64,
    pub faces: u64,
    pub clip_calls: u64,
    pub clips: u64,
}

enum Work {
    Frame { faces: Vec<f32>, n: usize },
    Clips(Vec<Vec<FaceFeatures>>),
}

enum Done {
    Frame(Vec<FaceFeatures>),
    Clips(Vec<ClipResult>),
}

/// A request's result, or the error of the call that carried it.
type Answer = Result<Done, String>;

/// What the batches did so far.
#[derive(Default)]
struct Tally {
    stats: BatchStats,
    /// The model's time in its frame and clip parts, as of the last batch (read without
    /// waiting for a running one).
    busy: (Duration, Duration),
}

struct Inner {
    model: Mutex<EmotionModel>,
    calls: GroupCommit<Work, Answer>,
    tally: Mutex<Tally>,
    /// Copies of what every handle answers without locking.
    labels: Vec<String>,
    preprocessing: Preprocessing,
    crop_size: usize,
    clip_length: usize,
}

impl Inner {
    fn of(model: EmotionModel) -> Self {
        Self {
            labels: model.manifest.labels.clone(),
            preprocessing: model.manifest.preprocessing.clone(),
            crop_size: model.manifest.crop_size,
            clip_length: model.manifest.clip_length,
            model: Mutex::new(model),
            calls: GroupCommit::new(),
            tally: Mutex::default(),
        }
    }
}

/// What makes two requests one model: the bundle's canonical path (two spellings of one folder
/// are one model), the variant and the sessions' options.
#[derive(PartialEq, Eq)]
struct ModelKey {
    bundle: PathBuf,
    variant: Variant,
    options: SessionOptions,
}

/// Open models by what opened them: a second stream asking for the same model gets it.
static OPEN: WeakRegistry<ModelKey, Inner> = WeakRegistry::new();

/// A handle on a model shared by streams; cloning it is cheap.
#[derive(Clone)]
pub struct SharedModel {
    inner: Arc<Inner>,
}

impl SharedModel {
    /// The model `bundle`/`precision`/`options` open elsewhere in this process, or a new one.
    pub fn open(bundle: &Path, precision: Precision, options: &SessionOptions) -> Result<Self, BundleError> {
        // The variant `auto` picks needs the library loaded: it asks which providers it has.
        crate::onnx::environment(None)?;
        let key = ModelKey {
            bundle: bundle.canonicalize().unwrap_or_else(|_| bundle.to_path_buf()),
            variant: precision.choose(options.provider),
            options: options.clone(),
        };
        let inner =
            OPEN.get_or_open(key, || Ok::<_, BundleError>(Inner::of(EmotionModel::open(bundle, precision, options)?)))?;
        Ok(Self { inner })
    }

    /// A model not shared through [`SharedModel::open`] (tests, tools).
    pub fn new(model: EmotionModel) -> Self {
        Self { inner: Arc::new(Inner::of(model)) }
    }

    /// Reads the model (waits while a batch runs).
    pub fn with<R>(&self, read: impl FnOnce(&EmotionModel) -> R) -> R {
        read(&lock(&self.inner.model))
    }

    /// Streams using this model right now.
    pub fn users(&self) -> usize {
        Arc::strong_count(&self.inner)
    }

    pub fn batch_stats(&self) -> BatchStats {
        lock(&self.inner.tally).stats
    }

    /// Time inside ONNX Runtime in the frame and the clip part so far, as of the last batch
    /// (read without waiting for a running one).
    pub fn busy(&self) -> (Duration, Duration) {
        lock(&self.inner.tally).busy
    }

    /// Queues `work` and returns its result, running the model for everything queued when no
    /// other caller is.
    fn submit(&self, work: Work) -> Result<Done, OnnxError> {
        let inner = &self.inner;
        let answer = inner.calls.submit(work, |batch| {
            let mut model = lock(&inner.model);
            let (results, stats) = run_batch(&mut model, batch);
            let mut tally = lock(&inner.tally);
            tally.busy = (model.frame.busy, model.clip.busy);
            tally.stats.add(stats);
            results
        });
        let answer = answer.unwrap_or_else(|| Err("the batch carrying this request failed on another stream".into()));
        answer.map_err(|message| OnnxError::Run { model: "the shared emotion model".into(), message })
    }
}

impl BatchStats {
    fn add(&mut self, other: BatchStats) {
        self.frame_calls += other.frame_calls;
        self.faces += other.faces;
        self.clip_calls += other.clip_calls;
        self.clips += other.clips;
    }
}

/// Runs every queued request: all crops in one frame-part call, all clips in one clip-part
/// call (each split by the model at its profile's maximum batch). Returns each request's
/// result and what was run.
fn run_batch(model: &mut EmotionModel, batch: Vec<(u64, Work)>) -> (Vec<(u64, Answer)>, BatchStats) {
    let mut out = Vec::with_capacity(batch.len());
    let mut stats = BatchStats::default();
    let (mut frames, mut clips) = (Vec::new(), Vec::new());
    for (id, work) in batch {
        match work {
            Work::Frame { faces, n } => frames.push((id, faces, n)),
            Work::Clips(c) => clips.push((id, c)),
        }
    }
    if !frames.is_empty() {
        let n: usize = frames.iter().map(|(_, _, n)| n).sum();
        let all: Vec<f32> = frames.iter().flat_map(|(_, faces, _)| faces.iter().copied()).collect();
        match model.frame_features(&all, n) {
            Ok(features) => {
                (stats.frame_calls, stats.faces) = (1, n as u64);
                let mut features = features.into_iter();
                for (id, _, n) in frames {
                    out.push((id, Ok(Done::Frame(features.by_ref().take(n).collect()))));
                }
            }
            Err(e) => out.extend(frames.into_iter().map(|(id, _, _)| (id, Err(e.to_string())))),
        }
    }
    if !clips.is_empty() {
        let windows: Vec<&[FaceFeatures]> = clips.iter().flat_map(|(_, c)| c.iter().map(Vec::as_slice)).collect();
        match model.classify_clips(&windows) {
            Ok(results) => {
                (stats.clip_calls, stats.clips) = (1, windows.len() as u64);
                let mut results = results.into_iter();
                for (id, c) in &clips {
                    out.push((*id, Ok(Done::Clips(results.by_ref().take(c.len()).collect()))));
                }
            }
            Err(e) => out.extend(clips.iter().map(|(id, _)| (*id, Err(e.to_string())))),
        }
    }
    (out, stats)
}

impl EmotionBackend for SharedModel {
    fn crop_size(&self) -> usize {
        self.inner.crop_size
    }

    fn clip_length(&self) -> usize {
        self.inner.clip_length
    }

    fn labels(&self) -> &[String] {
        &self.inner.labels
    }

    fn preprocessing(&self) -> &Preprocessing {
        &self.inner.preprocessing
    }

    fn frame_features(&mut self, faces: &[f32], n: usize) -> Result<Vec<FaceFeatures>, OnnxError> {
        match self.submit(Work::Frame { faces: faces.to_vec(), n })? {
            Done::Frame(features) => Ok(features),
            Done::Clips(_) => Err(OnnxError::Run {
                model: "the shared emotion model".into(),
                message: "answered a frame request with clips".into(),
            }),
        }
    }

    fn classify_clips(&mut self, clips: &[&[FaceFeatures]]) -> Result<Vec<ClipResult>, OnnxError> {
        match self.submit(Work::Clips(clips.iter().map(|c| c.to_vec()).collect()))? {
            Done::Clips(results) => Ok(results),
            Done::Frame(_) => Err(OnnxError::Run {
                model: "the shared emotion model".into(),
                message: "answered a clip request with features".into(),
            }),
        }
    }

    /// Time of the shared model: all streams' calls together.
    fn busy(&self) -> (Duration, Duration) {
        lock(&self.inner.tally).busy
    }
}
