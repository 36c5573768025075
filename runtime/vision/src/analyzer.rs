//! Face source + emotion engine: everything the GStreamer element and `emoedge run` do to a
//! frame, as one settings model whose defaults are defined once.

use std::path::PathBuf;
use std::time::Duration;

use emoedge_inference::bundle::BundleError;
use emoedge_inference::engine::{EmotionBackend, EmotionEngine, EngineOptions, EngineStats, TrackEmotion};
use emoedge_inference::model::{EmotionModel, Precision};
use emoedge_inference::onnx::{ActiveProvider, OnnxError, Placement, SessionOptions};
use emoedge_inference::shared::{BatchStats, SharedModel};

use crate::capture::{CaptureError, CaptureOptions, CapturedFace, CropTracker, FaceCapture};
use crate::face::tracker::TrackerOptions;
use crate::face::{AlignedCrop, BBox, DetectorOptions, Face};
use crate::reid::{GalleryError, ReidError, ReidSettings, Reidentifier};
use crate::video::Frame;

/// The runtime's default `detect_interval` (element property `detect-interval`, CLI
/// `--detect-interval`): the full detector every N-th frame, O-Net following faces in between.
/// Chosen by measurement on the sample media (`cargo bench -p emoedge-cli --bench speed`).
pub const DEFAULT_DETECT_INTERVAL: u32 = 5;

/// The accepted values of the numeric settings, defined once: the element's property specs and
/// the command line's parsers both read them, so whatever one accepts the other accepts too
/// (and nothing either accepts can exhaust memory or time: a 1-pixel minimum face is a pyramid
/// of thousands of levels, a 200,000-pixel crop a 120 GB batch).
pub mod ranges {
    use std::ops::RangeInclusive;

    /// GPU index for CUDA and TensorRT.
    pub const DEVICE_ID: RangeInclusive<i32> = 0..=64;
    /// `interval` (encode every N-th frame) and `detect-interval`.
    pub const INTERVAL: RangeInclusive<u32> = 1..=1000;
    /// Weight of the previous probabilities in the moving average.
    pub const SMOOTHING: RangeInclusive<f64> = 0.0..=0.99;
    /// Smallest face side in pixels.
    pub const MIN_FACE_SIZE: RangeInclusive<u32> = 8..=4096;
    /// T the caller expects (0 = the bundle's).
    pub const CLIP_LENGTH: RangeInclusive<u32> = 0..=1024;
    /// Side of the square face crops `emoedge faces` writes.
    pub const CROP_SIZE: RangeInclusive<u32> = 16..=1024;
    /// Seconds a person nobody sees is remembered (up to a week).
    pub const REID_WINDOW: RangeInclusive<u32> = 1..=604_800;
    /// Cosine a new track must reach to take a remembered person's id.
    pub const REID_THRESHOLD: RangeInclusive<f64> = 0.0..=1.0;
}

/// Where faces come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "glib", derive(glib::Enum), enum_type(name = "GstEmoedgeFaceSource"))]
#[repr(i32)]
pub enum FaceSource {
    /// The runtime's face detector (MTCNN, or BlazeFace with O-Net: `detector`) and IoU tracker.
    #[default]
    #[cfg_attr(
        feature = "glib",
        enum_value(name = "Built-in face detector (the detector property) and IoU tracker", nick = "builtin")
    )]
    Builtin,
    /// Boxes given with each frame (an upstream detector's region-of-interest metas); not a
    /// command-line choice, where nothing is upstream.
    #[cfg_attr(feature = "clap", value(skip))]
    #[cfg_attr(
        feature = "glib",
        enum_value(name = "Upstream GstVideoRegionOfInterestMeta of type \"face\"", nick = "upstream")
    )]
    Upstream,
    /// The whole frame is one face (pre-cropped input).
    #[cfg_attr(feature = "glib", enum_value(name = "The whole frame is one face", nick = "full-frame"))]
    FullFrame,
}

/// The files an analyzer opens, found by its entry point (the element's `start()`).
#[derive(Debug, Clone)]
pub struct AnalyzerFiles {
    /// The model bundle folder.
    pub bundle: PathBuf,
    /// The MTCNN detector folder; the built-in face source needs it.
    pub detector_dir: Option<PathBuf>,
    /// The face embedder folder; re-identification needs it.
    pub embedder_dir: Option<PathBuf>,
}

/// Everything else the element's properties and `emoedge run`'s options set.
#[derive(Debug, Clone)]
pub struct AnalyzerSettings {
    pub precision: Precision,
    pub session: SessionOptions,
    pub engine: EngineOptions,
    pub face_source: FaceSource,
    /// Smallest face side in pixels that is detected or accepted from upstream.
    pub min_face_size: f32,
    /// The built-in detector runs every N-th frame; faces are followed in between.
    pub detect_interval: u32,
    /// T the caller expects; 0 = whatever the bundle has.
    pub clip_length: usize,
    /// Share one emotion model (and batch its calls) with the other analyzers of this process
    /// that open the same bundle, precision and sessions — several streams, one model.
    pub share_model: bool,
    /// Re-identification: a person id per track, shared across the process's streams.
    pub reid: ReidSettings,
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            precision: Precision::default(),
            session: SessionOptions::default(),
            engine: EngineOptions::default(),
            face_source: FaceSource::default(),
            min_face_size: DetectorOptions::default().min_face_size,
            detect_interval: DEFAULT_DETECT_INTERVAL,
            clip_length: 0,
            share_model: true,
            reid: ReidSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error(
        "clip-length is {requested} but the model {bundle} classifies clips of {model} frames; set clip-length to 0 or {model}"
    )]
    ClipLength { requested: usize, model: usize, bundle: String },
    #[error(
        "the model {bundle} takes {}-pixel crops and {}-frame clips, the running one {}-pixel crops and {}-frame clips; a model of another shape needs the stream restarted",
        new.0, new.1, old.0, old.1
    )]
    Unswappable { bundle: String, new: (usize, usize), old: (usize, usize) },
    #[error("face-source builtin needs the face detector folder, and none was given")]
    NoDetector,
    #[error("re-identification needs the face embedder folder, and none was given")]
    NoEmbedder,
    #[error(transparent)]
    Reid(#[from] ReidError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
}

/// One face of a frame with its track's emotion.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceResult {
    /// For upstream boxes: the index of the box in the frame's list that this face is.
    pub upstream: Option<usize>,
    pub bbox: BBox,
    pub track: TrackEmotion,
    /// The person the track shows (re-identification on and the track identified).
    pub person: Option<u64>,
}

enum Capture {
    Detector(Box<FaceCapture>),
    Boxes(CropTracker),
}

impl Capture {
    /// The tracks, whichever source found their faces.
    fn tracks(&self) -> &CropTracker {
        match self {
            Capture::Detector(capture) => capture.tracks(),
            Capture::Boxes(tracks) => tracks,
        }
    }

    /// Takes back the crops of faces `analyze` is done with.
    fn recycle(&mut self, faces: Vec<CapturedFace>) {
        match self {
            Capture::Detector(capture) => capture.recycle(faces),
            Capture::Boxes(tracks) => tracks.recycle(faces),
        }
    }
}

pub struct Analyzer {
    capture: Capture,
    engine: EmotionEngine<SharedModel>,
    reid: Option<Reidentifier>,
    source: FaceSource,
    min_face_size: f32,
    /// Sessions whose placement was already handed out by [`Analyzer::new_placements`].
    placed: Vec<String>,
}

/// Where one session's nodes ran in its first call.
#[derive(Debug, Clone)]
pub struct SessionPlacement {
    /// The model file, e.g. `pnet.onnx` or `frame.onnx`.
    pub session: String,
    /// The provider the session was opened on.
    pub provider: ActiveProvider,
    /// Nodes per provider, or why ONNX Runtime's profile could not be read.
    pub placement: Result<Placement, String>,
}

impl SessionPlacement {
    /// True when nodes run on another provider than the session's own (e.g. TensorRT left
    /// some to CUDA or the CPU) or the placement is unknown.
    pub fn is_split(&self) -> bool {
        self.placement.as_ref().map_or(true, |p| p.is_elsewhere(self.provider))
    }
}

impl std::fmt::Display for SessionPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.placement {
            Ok(placement) => write!(f, "{} on {}: nodes ran {placement}", self.session, self.provider),
            Err(reason) => write!(f, "{} on {}: placement unknown ({reason})", self.session, self.provider),
        }
    }
}

/// Wall time spent inside ONNX Runtime, per model, and the engine's work.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    pub detector: Duration,
    /// Frames on which the full face detector ran (the others followed known faces).
    pub detections: u64,
    pub engine: EngineStats,
    /// Calls of the (shared) emotion model and what they carried: all streams together.
    pub batches: BatchStats,
    /// Face embeddings computed for re-identification, and the time they took.
    pub embeddings: u64,
    pub embedder: Duration,
}

/// Whether an analyzer running `old` can take `new` without stopping: the same crop size
/// (the face capture cuts crops for it) and clip length.
pub fn swappable(old: &SharedModel, new: &SharedModel) -> Result<(), AnalyzerError> {
    let shape = |m: &SharedModel| (m.crop_size(), m.clip_length());
    if shape(old) == shape(new) {
        return Ok(());
    }
    Err(AnalyzerError::Unswappable {
        bundle: new.with(|m| m.bundle.display().to_string()),
        new: shape(new),
        old: shape(old),
    })
}

impl Analyzer {
    pub fn load(settings: &AnalyzerSettings, files: &AnalyzerFiles) -> Result<Self, AnalyzerError> {
        let (bundle, precision, session) = (files.bundle.as_path(), settings.precision, &settings.session);
        let model = if settings.share_model {
            SharedModel::open(bundle, precision, session)?
        } else {
            SharedModel::new(EmotionModel::open(bundle, precision, session)?)
        };
        let t = model.clip_length();
        if settings.clip_length != 0 && settings.clip_length != t {
            return Err(AnalyzerError::ClipLength {
                requested: settings.clip_length,
                model: t,
                bundle: model.with(|m| m.bundle.display().to_string()),
            });
        }
        let crop = AlignedCrop::new(model.crop_size() as u32);
        let tracker = TrackerOptions::default();
        let capture = match settings.face_source {
            FaceSource::Builtin => {
                let dir = files.detector_dir.clone().ok_or(AnalyzerError::NoDetector)?;
                let detector = DetectorOptions { min_face_size: settings.min_face_size, ..Default::default() };
                let options = CaptureOptions {
                    session: settings.session.clone(),
                    detector,
                    detect_interval: settings.detect_interval,
                    ..CaptureOptions::new(dir, crop.size)
                };
                Capture::Detector(Box::new(FaceCapture::open(&options)?))
            }
            FaceSource::Upstream => Capture::Boxes(CropTracker::new(crop, tracker)),
            // A pre-cropped frame is the face: no context margin around it.
            FaceSource::FullFrame => Capture::Boxes(CropTracker::new(AlignedCrop { margin: 0.0, ..crop }, tracker)),
        };
        let reid = if settings.reid.enabled {
            let dir = files.embedder_dir.as_deref().ok_or(AnalyzerError::NoEmbedder)?;
            Some(Reidentifier::open(dir, &settings.reid, &settings.session)?)
        } else {
            None
        };
        Ok(Self {
            capture,
            engine: EmotionEngine::new(model, settings.engine),
            reid,
            source: settings.face_source,
            min_face_size: settings.min_face_size,
            placed: Vec::new(),
        })
    }

    /// The emotion model (shared with the process's other streams unless asked otherwise).
    pub fn model(&self) -> &SharedModel {
        self.engine.backend()
    }

    /// Classifies with `model` from the next frame on (tracks keep their ids; their emotion
    /// windows start again). Refused, the old model kept, when `model` wants other crops or
    /// clips ([`swappable`]).
    pub fn swap_model(&mut self, model: SharedModel) -> Result<(), AnalyzerError> {
        swappable(self.model(), &model)?;
        self.engine.replace_backend(model);
        Ok(())
    }

    /// The provider that runs the emotion model.
    pub fn provider(&self) -> ActiveProvider {
        self.model().with(|m| m.frame.provider)
    }

    /// Placements that became known since the last call (each session's after its first call):
    /// the detector's sessions (with the built-in source), then the emotion model's parts.
    pub fn new_placements(&mut self) -> Vec<SessionPlacement> {
        let known = |s: &emoedge_inference::onnx::ModelSession| {
            let placement = s.placement.clone()?;
            Some(SessionPlacement { session: s.name.clone(), provider: s.provider, placement })
        };
        let mut all: Vec<SessionPlacement> = match &self.capture {
            Capture::Detector(capture) => capture.detector().each_session(known).into_iter().flatten().collect(),
            Capture::Boxes(_) => Vec::new(),
        };
        all.extend(self.model().with(|m| [known(&m.frame), known(&m.clip)]).into_iter().flatten());
        let fresh: Vec<SessionPlacement> = all.into_iter().filter(|p| !self.placed.contains(&p.session)).collect();
        self.placed.extend(fresh.iter().map(|p| p.session.clone()));
        fresh
    }

    pub fn timing(&self) -> Timing {
        let (detector, detections) = match &self.capture {
            Capture::Detector(capture) => (capture.detector().busy(), capture.detections()),
            Capture::Boxes(_) => (Duration::ZERO, 0),
        };
        let (embeddings, embedder) = self.reid.as_ref().map_or((0, Duration::ZERO), Reidentifier::cost);
        Timing {
            detector,
            detections,
            engine: self.engine.stats(),
            batches: self.model().batch_stats(),
            embeddings,
            embedder,
        }
    }

    /// Ends re-identification for this stream: its tracks end, and a gallery kept in a file
    /// is saved.
    pub fn finish(&mut self) -> Result<(), GalleryError> {
        self.reid.as_mut().map_or(Ok(()), Reidentifier::finish)
    }

    /// Finds (or takes) the faces of `frame` and returns each with its track's emotion. With
    /// the upstream source, `upstream` are the frame's boxes; those smaller than the minimum
    /// face size are skipped, and each result names the box it belongs to.
    pub fn analyze(&mut self, frame: &Frame, upstream: &[BBox]) -> Result<Vec<FaceResult>, OnnxError> {
        let (faces, origin): (Vec<Face>, Vec<Option<usize>>) = match self.source {
            FaceSource::Builtin => (Vec::new(), Vec::new()),
            FaceSource::Upstream => upstream
                .iter()
                .enumerate()
                .filter(|(_, b)| b.width().min(b.height()) >= self.min_face_size)
                .map(|(i, b)| (Face::from_box(*b), Some(i)))
                .unzip(),
            FaceSource::FullFrame => {
                let (w, h) = (frame.image.width() as f32, frame.image.height() as f32);
                (vec![Face::from_box(BBox { x1: 0.0, y1: 0.0, x2: w, y2: h })], vec![None])
            }
        };
        let captured = match &mut self.capture {
            Capture::Detector(capture) => capture.process(frame)?,
            Capture::Boxes(tracks) => tracks.assign(frame, faces),
        };
        let crops: Vec<_> = captured.iter().map(|c| c.tracked_crop()).collect();
        let emotions = self.engine.process(frame.index, &crops)?;
        let persons = match &mut self.reid {
            Some(reid) => reid.observe(frame, &captured, &self.capture.tracks().live_tracks())?,
            None => vec![None; captured.len()],
        };
        let results = captured
            .iter()
            .zip(emotions)
            .zip(persons)
            .enumerate()
            .map(|(i, ((face, track), person))| FaceResult {
                upstream: origin.get(i).copied().flatten(),
                bbox: face.face.bbox,
                track,
                person,
            })
            .collect();
        self.capture.recycle(captured);
        Ok(results)
    }
}
