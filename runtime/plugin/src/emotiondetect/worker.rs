//! What the element does beside its streaming thread: the statistics it exposes (atomics, so
//! reading the `stats` property never waits for an inference) and the asynchronous worker that
//! analyses frames on its own thread while buffers flow on.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use crate::lock;
use crate::meta::ModelTag;
use crate::stats::DetectStats;
use emoedge_support::sync::panic_message;
use std::thread::JoinHandle;

use emoedge_inference::onnx::ActiveProvider;
use emoedge_inference::shared::SharedModel;
use emoedge_vision::analyzer::{Analyzer, FaceResult, SessionPlacement};
use emoedge_vision::face::BBox;
use emoedge_vision::video::Frame;

/// Counters of the element's work, written by whoever analyses and read by the property.
#[derive(Default)]
pub struct Stats {
    /// The emotion model's provider, known when the element starts.
    provider: Option<ActiveProvider>,
    frames: AtomicU64,
    analyzed: AtomicU64,
    faces_encoded: AtomicU64,
    clips_classified: AtomicU64,
    detections: AtomicU64,
    detector_ns: AtomicU64,
    frame_model_ns: AtomicU64,
    clip_model_ns: AtomicU64,
    frame_model_calls: AtomicU64,
    frame_model_faces: AtomicU64,
    clip_model_calls: AtomicU64,
    embeddings: AtomicU64,
    embedder_ns: AtomicU64,
    /// Every session's placement known so far, in the order they became known.
    placements: Mutex<Vec<SessionPlacement>>,
    /// How many of `placements` the element has logged.
    reported: AtomicUsize,
}

impl Stats {
    pub fn new(provider: ActiveProvider) -> Self {
        Self { provider: Some(provider), ..Self::default() }
    }

    pub fn frame_seen(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one analysed frame, the analyzer's totals after it, and the placements of the
    /// sessions that ran for the first time.
    pub fn analyzed(&self, analyzer: &mut Analyzer) {
        let placements = analyzer.new_placements();
        if !placements.is_empty() {
            lock(&self.placements).extend(placements);
        }
        let timing = analyzer.timing();
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.analyzed.fetch_add(1, Ordering::Relaxed);
        self.faces_encoded.store(timing.engine.faces_encoded, Ordering::Relaxed);
        self.clips_classified.store(timing.engine.clips_classified, Ordering::Relaxed);
        self.detections.store(timing.detections, Ordering::Relaxed);
        self.detector_ns.store(ns(timing.detector), Ordering::Relaxed);
        self.frame_model_ns.store(ns(timing.engine.frame_model), Ordering::Relaxed);
        self.clip_model_ns.store(ns(timing.engine.clip_model), Ordering::Relaxed);
        self.frame_model_calls.store(timing.batches.frame_calls, Ordering::Relaxed);
        self.frame_model_faces.store(timing.batches.faces, Ordering::Relaxed);
        self.clip_model_calls.store(timing.batches.clip_calls, Ordering::Relaxed);
        self.embeddings.store(timing.embeddings, Ordering::Relaxed);
        self.embedder_ns.store(ns(timing.embedder), Ordering::Relaxed);
    }

    /// The placements not reported yet; each is handed out once.
    pub fn unreported_placements(&self) -> Vec<SessionPlacement> {
        let placements = lock(&self.placements);
        let from = self.reported.swap(placements.len(), Ordering::Relaxed).min(placements.len());
        placements[from..].to_vec()
    }

    /// Frames seen, frames analysed, work done and time inside ONNX Runtime so far.
    pub fn snapshot(&self) -> DetectStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DetectStats {
            provider: self.provider,
            frames: get(&self.frames),
            analyzed_frames: get(&self.analyzed),
            faces_encoded: get(&self.faces_encoded),
            clips_classified: get(&self.clips_classified),
            detections: get(&self.detections),
            detector_ort_ns: get(&self.detector_ns),
            frame_model_ort_ns: get(&self.frame_model_ns),
            clip_model_ort_ns: get(&self.clip_model_ns),
            frame_model_calls: get(&self.frame_model_calls),
            frame_model_faces: get(&self.frame_model_faces),
            clip_model_calls: get(&self.clip_model_calls),
            embeddings: get(&self.embeddings),
            embedder_ort_ns: get(&self.embedder_ns),
            placement: lock(&self.placements).iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        }
    }
}

/// A frame handed to the worker, with the upstream face boxes it carried.
pub struct Job {
    pub frame: Frame,
    pub upstream: Vec<BBox>,
    /// A model to classify with from this frame on (checked to fit: [`emoedge_vision::analyzer::swappable`]).
    pub swap: Option<(SharedModel, Arc<ModelTag>)>,
}

/// What the worker knows: the faces of the last frame it analysed, the model that classified
/// them, and whether they were already attached to a buffer.
struct Latest {
    faces: Vec<FaceResult>,
    model: Arc<ModelTag>,
    delivered: bool,
    error: Option<String>,
}

/// The results a buffer gets in asynchronous mode.
pub enum Delivery {
    /// The latest results and their model; `fresh` is kept only the first time they are
    /// delivered.
    Faces(Vec<FaceResult>, Arc<ModelTag>),
    /// The worker failed and stopped.
    Failed(String),
}

pub struct AsyncWorker {
    jobs: Option<SyncSender<Job>>,
    /// True from handing a job over until its results are in: the streaming thread then skips
    /// analysing frames (without even converting them) instead of waiting.
    busy: Arc<AtomicBool>,
    latest: Arc<Mutex<Latest>>,
    /// Returns how the analyzer finished (a gallery file that could not be saved).
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl AsyncWorker {
    /// The worker for `analyzer`, whose model `model` describes.
    pub fn spawn(mut analyzer: Analyzer, model: Arc<ModelTag>, stats: Arc<Stats>) -> std::io::Result<Self> {
        let (jobs, receiver): (SyncSender<Job>, Receiver<Job>) = sync_channel(1);
        let busy = Arc::new(AtomicBool::new(false));
        let latest = Latest { faces: Vec::new(), model: model.clone(), delivered: false, error: None };
        let latest = Arc::new(Mutex::new(latest));
        let (worker_busy, shared) = (busy.clone(), latest.clone());
        let thread = std::thread::Builder::new().name("emotiondetect".into()).spawn(move || {
            let mut current = model;
            for job in receiver {
                // A panic must not end the thread silently (the element would skip every later
                // frame and the run would "succeed"): it becomes the worker's error.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    if let Some((model, tag)) = job.swap {
                        analyzer.swap_model(model).map_err(|e| e.to_string())?;
                        current = tag;
                    }
                    analyzer.analyze(&job.frame, &job.upstream).map_err(|e| e.to_string())
                }))
                .unwrap_or_else(|panic| Err(format!("inference panicked: {}", panic_message(&panic))));
                stats.analyzed(&mut analyzer);
                let mut latest = lock(&shared);
                let failed = result.is_err();
                match result {
                    Ok(faces) => {
                        latest.faces = faces;
                        latest.model = current.clone();
                        latest.delivered = false;
                    }
                    Err(e) => latest.error = Some(e),
                }
                drop(latest);
                worker_busy.store(false, Ordering::Release);
                if failed {
                    break;
                }
            }
            analyzer.finish().map_err(|e| e.to_string())
        })?;
        Ok(Self { jobs: Some(jobs), busy, latest, thread: Some(thread) })
    }

    /// Whether a new frame would be taken now.
    pub fn is_idle(&self) -> bool {
        !self.busy.load(Ordering::Acquire)
    }

    /// Hands `job` over; call only when [`is_idle`](Self::is_idle).
    pub fn submit(&self, job: Job) {
        let Some(jobs) = &self.jobs else { return };
        self.busy.store(true, Ordering::Release);
        match jobs.try_send(job) {
            Ok(()) => {}
            // A worker that stopped has left its error in `latest`.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.busy.store(false, Ordering::Release),
        }
    }

    /// The latest results for the current buffer.
    pub fn deliver(&self) -> Delivery {
        let mut latest = lock(&self.latest);
        if let Some(error) = latest.error.take() {
            return Delivery::Failed(error);
        }
        let first_time = !latest.delivered;
        latest.delivered = true;
        let faces = latest
            .faces
            .iter()
            .cloned()
            .map(|mut f| {
                f.track.fresh &= first_time;
                f
            })
            .collect();
        Delivery::Faces(faces, latest.model.clone())
    }

    /// Ends the worker; the error says why its analyzer could not finish.
    pub fn stop(&mut self) -> Result<(), String> {
        self.jobs.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(finished)) => finished,
            Some(Err(panic)) => Err(format!("the inference thread panicked: {}", panic_message(&*panic))),
            None => Ok(()),
        }
    }
}

impl Drop for AsyncWorker {
    fn drop(&mut self) {
        // Whatever could not be finished was already reported by an explicit stop.
        let _ = self.stop();
    }
}
