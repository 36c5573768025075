/**
 * element-emotiondetect:
 *
 * Finds the faces of each frame (on ONNX Runtime: MTCNN, or with `detector=blazeface-back`
 * BlazeFace proposing faces that MTCNN's O-Net checks; the full detector every
 * `detect-interval` frames and O-Net following the faces in between — or the boxes an upstream
 * detector attached), follows them as tracks, and runs the hybrid-experts emotion model on each
 * track's last second of face crops (every `interval`-th frame encoded). Each result is attached
 * to its buffer as a `GstVideoRegionOfInterestMeta` "face" carrying an `emotion` structure
 * (label, confidence, probabilities, gate weights; `fresh` on the frame that completed it), and
 * posted as an `emotion` element message. Buffers pass through unchanged.
 *
 * ## Example launch line
 *
 * ```sh
 * GST_PLUGIN_PATH=target/release gst-launch-1.0 -m \
 *   filesrc location=assets/media/single_face.mp4 ! decodebin ! videoconvert ! \
 *   emotiondetect precision=fp32 execution-provider=cpu detect-interval=5 ! fakesink
 * ```
 *
 * Several `emotiondetect` elements of one process share one emotion model (`share-model`), its
 * calls batched across streams; `track-id-base` keeps a restarted stream's track ids unique.
 *
 * `model` may change while the element plays: the next buffer is classified with the new
 * bundle (loaded then, unless the process already holds it open; tracks keep their ids, their
 * emotion windows start again, results name the new `model_version`). A bundle that cannot be
 * loaded, or that wants other crops or clips, leaves the running model in place and posts a
 * warning saying why.
 */
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use emoedge_inference::assets;
use emoedge_inference::model::Precision;
use emoedge_inference::onnx::{ActiveProvider, Provider, SessionOptions};
use emoedge_inference::shared::SharedModel;
use emoedge_vision::analyzer::{Analyzer, AnalyzerFiles, AnalyzerSettings, FaceResult, FaceSource, ranges, swappable};
use emoedge_vision::face::{BBox, Detector};
use emoedge_vision::video::{FORMATS, Frame, refill, to_frame};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::subclass::prelude::*;
use gstreamer_video as gst_video;

use super::worker::{AsyncWorker, Delivery, Job, Stats};
use crate::lock;
use crate::meta::{Attached, FACE, ModelTag, roi_box};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("emotiondetect", gst::DebugColorFlags::empty(), Some("emoedge video emotion recognition"))
});

/// The properties' defaults: the analyzer's, defined once in the libraries.
static DEFAULTS: LazyLock<AnalyzerSettings> = LazyLock::new(AnalyzerSettings::default);

/// An upstream box and a result computed on an earlier frame (asynchronous mode) belong
/// together only if they still overlap this much.
const ASYNC_MIN_IOU: f32 = 0.3;

/// The highest track-id-base: ids above it stay free for 2⁶³ new tracks.
const MAX_TRACK_ID_BASE: u64 = u64::MAX / 2;

#[derive(Debug, Clone, Default)]
struct Settings {
    /// The `model` property; unset: the bundled default model, found at start.
    model: Option<PathBuf>,
    /// Times `model` was set: a playing element compares it, not paths, on every buffer.
    model_sets: u64,
    /// The `detector` property: which face detector's folder is found at start.
    detector: Detector,
    /// The `detector-dir` property; unset: the `detector`'s folder from scripts/setup.
    detector_dir: Option<PathBuf>,
    /// The `embedder-dir` property; unset: `assets/reid/embedder` from scripts/setup.
    embedder_dir: Option<PathBuf>,
    analyzer: AnalyzerSettings,
    asynchronous: bool,
    /// Added to every track id (a restarted stream continues after its last id).
    track_id_base: u64,
}

impl Settings {
    /// The files the properties name, or the ones scripts/setup fetched where they are unset.
    fn files(&self) -> Result<AnalyzerFiles, assets::Missing> {
        let bundle = assets::given_or(
            self.model.as_deref(),
            assets::default_bundle,
            "set the model property to a bundle folder",
        )?;
        let detector_dir = match self.analyzer.face_source {
            FaceSource::Builtin => Some(assets::given_or(
                self.detector_dir.as_deref(),
                |fix| assets::detector_dir(self.detector.folder(), fix),
                "set the detector-dir property to a detector folder (MTCNN's pnet.onnx, rnet.onnx, onet.onnx, or one emoedge-export detector wrote), or use face-source=upstream",
            )?),
            _ => self.detector_dir.clone(),
        };
        let embedder_dir = match self.analyzer.reid.enabled {
            true => Some(assets::given_or(
                self.embedder_dir.as_deref(),
                assets::embedder_dir,
                "set the embedder-dir property to a folder written by `emoedge-export embedder`, or set reid=false",
            )?),
            false => self.embedder_dir.clone(),
        };
        Ok(AnalyzerFiles { bundle, detector_dir, embedder_dir })
    }
}

enum Mode {
    Sync(Box<Analyzer>),
    Async(AsyncWorker),
}

struct State {
    mode: Mode,
    /// Faces come from upstream metas (fixed at start, like the rest of the settings).
    upstream: bool,
    /// The model classifying now (in async mode: the last one handed to the worker).
    model: SharedModel,
    tag: Arc<ModelTag>,
    /// The running model's bundle, and the `model_sets` last acted on.
    bundle: PathBuf,
    model_sets: u64,
    /// How models are opened (fixed at start): a swapped-in model is opened the same way.
    open: (Precision, SessionOptions),
    /// A model to hand to the worker with its next frame (async mode).
    pending: Option<(SharedModel, Arc<ModelTag>)>,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
    track_id_base: u64,
    /// The frame analysed in sync mode, its pixels reused from buffer to buffer.
    frame: Frame,
}

#[derive(Default)]
pub struct EmotionDetect {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Arc<Stats>>,
    active_provider: Mutex<Option<String>>,
}

#[glib::object_subclass]
impl ObjectSubclass for EmotionDetect {
    const NAME: &'static str = "GstEmotionDetect";
    type Type = super::EmotionDetect;
    type ParentType = gst_base::BaseTransform;
}

/// What is loaded and where it runs.
fn model_properties(d: &AnalyzerSettings) -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("model")
            .nick("Model bundle")
            .blurb("Folder of an emoedge model bundle (manifest.json + ONNX files); empty = the bundled default model. May change while playing: the next buffer uses the new model")
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("detector", Detector::default())
            .nick("Face detector")
            .blurb("The face detector of face-source=builtin: mtcnn, blazeface-back (BlazeFace full range proposing, MTCNN's O-Net checking; faster on large frames and many faces) or blazeface-front (close-ups only)")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("detector-dir")
            .nick("Face detector folder")
            .blurb("Folder of the face detector for face-source=builtin (MTCNN's pnet.onnx, rnet.onnx, onet.onnx, or one emoedge-export detector wrote); empty = the detector property's folder from scripts/setup")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("embedder-dir")
            .nick("Face embedder folder")
            .blurb("Folder of the face embedder for re-identification (embedder.json + ONNX files); empty = assets/reid/embedder from scripts/setup")
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("precision", d.precision)
            .nick("Precision")
            .blurb("Bundle variant: auto (fp16 on TensorRT/CUDA, fp32 on CPU), fp32, fp16 or int8")
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("execution-provider", d.session.provider)
            .nick("Execution provider")
            .blurb("ONNX Runtime provider: auto (TensorRT, then CUDA, then CPU), tensorrt, cuda or cpu")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("engine-cache-dir")
            .nick("Engine cache folder")
            .blurb(
                "Where TensorRT keeps built engines and timing caches (the first start builds them); empty = no cache",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecInt::builder("device-id")
            .nick("GPU device")
            .blurb("CUDA device index for TensorRT and CUDA")
            .minimum(*ranges::DEVICE_ID.start())
            .maximum(*ranges::DEVICE_ID.end())
            .default_value(d.session.device_id)
            .mutable_ready()
            .build(),
    ]
}

/// How frames are analysed.
fn analysis_properties(d: &AnalyzerSettings) -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecUInt::builder("interval")
            .nick("Interval")
            .blurb("Encode each track's face every N-th frame it appears in")
            .minimum(*ranges::INTERVAL.start())
            .maximum(*ranges::INTERVAL.end())
            .default_value(d.engine.interval)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("detect-interval")
            .nick("Detection interval")
            .blurb("Run the built-in face detector every N-th frame and follow the faces with O-Net in between (1 = detect on every frame)")
            .minimum(*ranges::INTERVAL.start())
            .maximum(*ranges::INTERVAL.end())
            .default_value(d.detect_interval)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("clip-length")
            .nick("Clip length")
            .blurb("Encodings per clip; 0 = the model's T (a different value is refused at start)")
            .minimum(*ranges::CLIP_LENGTH.start())
            .maximum(*ranges::CLIP_LENGTH.end())
            .default_value(d.clip_length as u32)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("window", d.engine.window)
            .nick("Window")
            .blurb("How a track's window of T frames becomes one result: mean-of-frames (each frame classified alone, mean log-probabilities) or clip-head (the clip head over the T encodings)")
            .mutable_ready()
            .build(),
        glib::ParamSpecDouble::builder("smoothing")
            .nick("Smoothing")
            .blurb("Weight of a track's previous probabilities in the moving average (0 = none)")
            .minimum(*ranges::SMOOTHING.start())
            .maximum(*ranges::SMOOTHING.end())
            .default_value(d.engine.smoothing.into())
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("min-face-size")
            .nick("Minimum face size")
            .blurb("Smallest face side in pixels that is detected or accepted from upstream")
            .minimum(*ranges::MIN_FACE_SIZE.start())
            .maximum(*ranges::MIN_FACE_SIZE.end())
            .default_value(d.min_face_size as u32)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("face-source", d.face_source)
            .nick("Face source")
            .blurb("Where faces come from")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("async")
            .nick("Asynchronous")
            .blurb("Infer on a worker thread and attach results to later frames of the same track (live sources never stall); off = every result lands on its own frame")
            .default_value(false)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("share-model")
            .nick("Share the model")
            .blurb("Use one emotion model, its calls batched, with the other emotiondetect elements of this process that open the same model, precision and provider (several streams, one model)")
            .default_value(d.share_model)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt64::builder("track-id-base")
            .nick("Track id base")
            .blurb("Added to every track id: a stream restarted with the last id it used keeps its ids unique")
            .maximum(MAX_TRACK_ID_BASE)
            .mutable_ready()
            .build(),
    ]
}

/// Re-identification: who the tracks are.
fn reid_properties(d: &AnalyzerSettings) -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecBoolean::builder("reid")
            .nick("Re-identification")
            .blurb("Give each track a person id: a face that returns, in this stream or another of this process, takes its earlier id (embeddings stay in memory)")
            .default_value(d.reid.enabled)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("reid-window")
            .nick("Re-identification window")
            .blurb("Seconds a person nobody sees is remembered; then their embeddings are dropped and a return is a new person")
            .minimum(*ranges::REID_WINDOW.start())
            .maximum(*ranges::REID_WINDOW.end())
            .default_value(d.reid.matching.window.as_secs() as u32)
            .mutable_ready()
            .build(),
        glib::ParamSpecDouble::builder("reid-threshold")
            .nick("Re-identification threshold")
            .blurb("Cosine similarity a new track's face must reach to take a remembered person's id")
            .minimum(*ranges::REID_THRESHOLD.start())
            .maximum(*ranges::REID_THRESHOLD.end())
            .default_value(d.reid.matching.threshold.into())
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("reid-gallery")
            .nick("Re-identification gallery file")
            .blurb("Keep the people's embeddings in this file (mode 0600) across runs; empty = in memory only, forgotten after reid-window")
            .mutable_ready()
            .build(),
    ]
}

/// What the element reports.
fn read_only_properties() -> Vec<glib::ParamSpec> {
    vec![
        glib::ParamSpecString::builder("active-provider")
            .nick("Active provider")
            .blurb("The execution provider that runs the emotion model (after start)")
            .read_only()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("Frames seen and analysed, faces encoded, clips classified, nanoseconds inside ONNX Runtime per model, calls of the emotion model (shared by the process's streams)")
            .read_only()
            .build(),
    ]
}

impl ObjectImpl for EmotionDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = &*DEFAULTS;
            [model_properties(d), analysis_properties(d), reid_properties(d), read_only_properties()].concat()
        });
        PROPERTIES.as_ref()
    }

    #[allow(clippy::expect_used, reason = "GObject checks a value's type against the property's before set_property")]
    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        let a = &mut settings.analyzer;
        let path = |v: &glib::Value| {
            v.get::<Option<String>>().expect("type checked upstream").filter(|s| !s.is_empty()).map(PathBuf::from)
        };
        match pspec.name() {
            "model" => {
                settings.model = path(value);
                settings.model_sets += 1;
            }
            "detector" => settings.detector = value.get().expect("type checked upstream"),
            "detector-dir" => settings.detector_dir = path(value),
            "embedder-dir" => settings.embedder_dir = path(value),
            "reid" => a.reid.enabled = value.get().expect("type checked upstream"),
            "reid-window" => {
                a.reid.matching.window =
                    std::time::Duration::from_secs(value.get::<u32>().expect("type checked upstream").into())
            }
            "reid-threshold" => a.reid.matching.threshold = value.get::<f64>().expect("type checked upstream") as f32,
            "reid-gallery" => a.reid.gallery_file = path(value),
            "precision" => a.precision = value.get().expect("type checked upstream"),
            "execution-provider" => a.session.provider = value.get::<Provider>().expect("type checked upstream"),
            "engine-cache-dir" => a.session.tensorrt.cache_in(path(value)),
            "device-id" => a.session.device_id = value.get().expect("type checked upstream"),
            "interval" => a.engine.interval = value.get().expect("type checked upstream"),
            "detect-interval" => a.detect_interval = value.get().expect("type checked upstream"),
            "clip-length" => a.clip_length = value.get::<u32>().expect("type checked upstream") as usize,
            "smoothing" => a.engine.smoothing = value.get::<f64>().expect("type checked upstream") as f32,
            "window" => a.engine.window = value.get().expect("type checked upstream"),
            "min-face-size" => a.min_face_size = value.get::<u32>().expect("type checked upstream") as f32,
            "face-source" => a.face_source = value.get::<FaceSource>().expect("type checked upstream"),
            "async" => settings.asynchronous = value.get().expect("type checked upstream"),
            "share-model" => a.share_model = value.get().expect("type checked upstream"),
            "track-id-base" => settings.track_id_base = value.get().expect("type checked upstream"),
            other => gst::warning!(CAT, imp = self, "no writable property `{other}`"),
        }
        gst::debug!(CAT, imp = self, "set {} → {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        let a = &settings.analyzer;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        match pspec.name() {
            "model" => path(&settings.model),
            "detector" => settings.detector.to_value(),
            "detector-dir" => path(&settings.detector_dir),
            "embedder-dir" => path(&settings.embedder_dir),
            "reid" => a.reid.enabled.to_value(),
            "reid-window" => (a.reid.matching.window.as_secs() as u32).to_value(),
            "reid-threshold" => f64::from(a.reid.matching.threshold).to_value(),
            "reid-gallery" => path(&a.reid.gallery_file),
            "precision" => a.precision.to_value(),
            "execution-provider" => a.session.provider.to_value(),
            "engine-cache-dir" => path(&a.session.tensorrt.engine_cache_dir),
            "device-id" => a.session.device_id.to_value(),
            "interval" => a.engine.interval.to_value(),
            "detect-interval" => a.detect_interval.to_value(),
            "clip-length" => (a.clip_length as u32).to_value(),
            "smoothing" => f64::from(a.engine.smoothing).to_value(),
            "window" => a.engine.window.to_value(),
            "min-face-size" => (a.min_face_size as u32).to_value(),
            "face-source" => a.face_source.to_value(),
            "async" => settings.asynchronous.to_value(),
            "share-model" => a.share_model.to_value(),
            "track-id-base" => settings.track_id_base.to_value(),
            "active-provider" => lock(&self.active_provider).to_value(),
            "stats" => lock(&self.stats).snapshot().to_structure().to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for EmotionDetect {}

impl ElementImpl for EmotionDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Emotion detection",
                "Filter/Analyzer/Video",
                "Finds faces, follows them as tracks and classifies each track's emotion with a hybrid-experts video model; \
                 results as GstVideoRegionOfInterestMeta \"face\" with an \"emotion\" structure and element messages",
                "emoedge developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new().format_list(FORMATS).build();
            [gst::PadDirection::Src, gst::PadDirection::Sink]
                .into_iter()
                .filter_map(|direction| {
                    let name = if direction == gst::PadDirection::Src { "src" } else { "sink" };
                    gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps).ok()
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }
}

impl EmotionDetect {
    /// Attaches `faces` to `buffer` — new "face" metas, or parameters on the upstream metas
    /// they name — and posts one element message per fresh result.
    fn attach(&self, buffer: &mut gst::BufferRef, faces: &[FaceResult], model: &ModelTag, state: AttachMode) {
        let pts = buffer.pts();
        let mut messages = Vec::new();
        let mut describe = |face: &FaceResult| {
            let attached = Attached::of_face(face, model, pts)?;
            let s = attached.to_structure();
            if attached.fresh {
                messages.push(s.clone());
            }
            Some(s)
        };
        match state {
            AttachMode::Upstream { exact } => {
                let metas = buffer.iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>();
                for (i, mut meta) in metas.filter(|m| m.roi_type() == FACE).enumerate() {
                    let b = roi_box(meta.rect());
                    let Some(face) =
                        faces.iter().find(|f| f.upstream == Some(i) && (exact || f.bbox.iou(&b) > ASYNC_MIN_IOU))
                    else {
                        continue;
                    };
                    if let Some(s) = describe(face) {
                        meta.add_param(s);
                    }
                }
            }
            AttachMode::NewMetas => {
                for face in faces {
                    let b = face.bbox;
                    let rect = (
                        b.x1.max(0.0) as u32,
                        b.y1.max(0.0) as u32,
                        b.width().max(0.0) as u32,
                        b.height().max(0.0) as u32,
                    );
                    let mut meta = gst_video::VideoRegionOfInterestMeta::add(buffer, FACE, rect);
                    meta.set_id(i32::try_from(face.track.track).unwrap_or(i32::MAX));
                    if let Some(s) = describe(face) {
                        meta.add_param(s);
                    }
                }
            }
        }
        let obj = self.obj();
        for s in messages {
            let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        }
    }

    /// Says where each session's nodes ran, once, after its first call: at warning level on a
    /// GPU provider (what a Jetson user must see: "tensorrt" with nodes left to the CPU is a
    /// slow pipeline), and as a bus warning when nodes left the session's provider.
    fn report_placements(&self) {
        for placement in lock(&self.stats).unreported_placements() {
            if placement.provider == ActiveProvider::Cpu && !placement.is_split() {
                gst::info!(CAT, imp = self, "{placement}");
                continue;
            }
            gst::warning!(CAT, imp = self, "{placement}");
            if placement.is_split() {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Settings,
                    ("{placement}: not all nodes run on {}", placement.provider)
                );
            }
        }
    }

    /// Swaps in the bundle the `model` property names, if it changed since the last buffer:
    /// at once in sync mode, with the worker's next frame in async mode. A bundle that cannot
    /// be opened or does not fit leaves the running model in place, with a warning on the bus.
    fn swap_if_asked(&self, state: &mut State) {
        let settings = lock(&self.settings);
        if settings.model_sets == state.model_sets {
            return;
        }
        state.model_sets = settings.model_sets;
        let files = settings.files();
        drop(settings);
        let asked = match files {
            Ok(files) if files.bundle != state.bundle => files.bundle,
            Ok(_) => return,
            Err(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::NotFound,
                    ("emotiondetect keeps model {}: {e}", state.tag.version)
                );
                return;
            }
        };
        let (precision, session) = &state.open;
        let opened = SharedModel::open(&asked, *precision, session)
            .map_err(|e| e.to_string())
            .and_then(|new| swappable(&state.model, &new).map(|()| new).map_err(|e| e.to_string()));
        let new = match opened {
            Ok(new) => new,
            Err(reason) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::OpenRead,
                    (
                        "emotiondetect keeps model {}: {} cannot be swapped in: {reason}",
                        state.tag.version,
                        asked.display()
                    )
                );
                return;
            }
        };
        let tag = Arc::new(ModelTag::of(&new));
        gst::info!(CAT, imp = self, "model {} → {} ({})", state.tag.version, tag.version, asked.display());
        state.bundle = asked;
        state.model = new.clone();
        state.tag = tag.clone();
        match &mut state.mode {
            // Checked by `swappable` above: the swap cannot be refused.
            Mode::Sync(analyzer) => drop(analyzer.swap_model(new)),
            Mode::Async(_) => state.pending = Some((new, tag)),
        }
    }

    /// A buffer that cannot be read as the caps say: an error on the bus, the stream ends.
    fn unreadable(&self, problem: &str) -> gst::FlowError {
        gst::element_imp_error!(self, gst::StreamError::Format, ("{}", problem));
        gst::FlowError::Error
    }

    fn fail(&self, message: &str) -> gst::FlowError {
        gst::element_imp_error!(self, gst::StreamError::Failed, ("inference failed: {}", message));
        gst::FlowError::Error
    }
}

/// How results find their place on a buffer.
#[derive(Clone, Copy)]
enum AttachMode {
    /// On the upstream metas they came from; `exact` when computed on this very buffer.
    Upstream { exact: bool },
    /// As new "face" metas.
    NewMetas,
}

/// The upstream "face" boxes of `buffer`, in meta order.
fn upstream_boxes(buffer: &gst::BufferRef) -> Vec<BBox> {
    buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == FACE)
        .map(|m| roi_box(m.rect()))
        .collect()
}

impl BaseTransformImpl for EmotionDetect {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let cannot_start = |e: &dyn std::fmt::Display| {
            gst::error_msg!(gst::ResourceError::OpenRead, ("emotiondetect cannot start: {}", e))
        };
        let files = settings.files().map_err(|e| cannot_start(&e))?;
        let analyzer = Analyzer::load(&settings.analyzer, &files).map_err(|e| cannot_start(&e))?;
        let provider = analyzer.provider();
        let model = analyzer.model();
        model.with(|m| {
            gst::info!(
                CAT,
                imp = self,
                "model {} ({}) on {provider}, used by {} stream(s) of this process; face source {:?}, async {}",
                m.bundle.display(),
                m.variant,
                model.users(),
                settings.analyzer.face_source,
                settings.asynchronous
            );
            for reason in &m.frame.fallbacks {
                gst::info!(CAT, imp = self, "passed over {reason}");
            }
        });
        *lock(&self.active_provider) = Some(provider.to_string());
        let stats = Arc::new(Stats::new(provider));
        *lock(&self.stats) = stats.clone();
        let model = analyzer.model().clone();
        let tag = Arc::new(ModelTag::of(&model));
        let mode = if settings.asynchronous {
            let worker = AsyncWorker::spawn(analyzer, tag.clone(), stats).map_err(|e| {
                gst::error_msg!(gst::CoreError::Thread, ("emotiondetect cannot start its inference thread: {}", e))
            })?;
            Mode::Async(worker)
        } else {
            Mode::Sync(Box::new(analyzer))
        };
        let upstream = settings.analyzer.face_source == FaceSource::Upstream;
        let track_id_base = settings.track_id_base;
        let frame = Frame { index: 0, pts_ns: None, image: Default::default() };
        let open = (settings.analyzer.precision, settings.analyzer.session.clone());
        *lock(&self.state) = Some(State {
            mode,
            upstream,
            model,
            tag,
            bundle: files.bundle,
            model_sets: settings.model_sets,
            open,
            pending: None,
            info: None,
            frames: 0,
            track_id_base,
            frame,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let finished = match lock(&self.state).take().map(|s| s.mode) {
            Some(Mode::Async(mut worker)) => worker.stop(),
            Some(Mode::Sync(mut analyzer)) => analyzer.finish().map_err(|e| e.to_string()),
            None => Ok(()),
        };
        finished
            .map_err(|e| gst::error_msg!(gst::ResourceError::Write, ("emotiondetect cannot keep its gallery: {}", e)))
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "cannot parse caps {}", incaps))?;
        if let Some(state) = lock(&self.state).as_mut() {
            state.info = Some(info);
        }
        Ok(())
    }

    fn transform_ip(&self, buffer: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("emotiondetect got a buffer before it started")
            );
            return Err(gst::FlowError::Error);
        };
        self.swap_if_asked(state);
        let Some(info) = state.info.as_ref() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("emotiondetect got a buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let index = state.frames;
        state.frames += 1;
        lock(&self.stats).frame_seen();
        let upstream = state.upstream;
        let job = |buffer: &gst::BufferRef| -> Result<Job, gst::FlowError> {
            let boxes = if upstream { upstream_boxes(buffer) } else { Vec::new() };
            let frame = to_frame(buffer, info, index).map_err(|e| self.unreadable(&e))?;
            Ok(Job { frame, upstream: boxes, swap: None })
        };
        let track_id_base = state.track_id_base;
        let (mut faces, exact, model) = match &mut state.mode {
            Mode::Sync(analyzer) => {
                let frame = &mut state.frame;
                refill(frame, buffer, info, index).map_err(|e| self.unreadable(&e))?;
                let boxes = if upstream { upstream_boxes(buffer) } else { Vec::new() };
                let faces = analyzer.analyze(frame, &boxes).map_err(|e| self.fail(&e.to_string()))?;
                lock(&self.stats).analyzed(analyzer);
                (faces, true, state.tag.clone())
            }
            Mode::Async(worker) => {
                // What the worker finished before this buffer arrived goes onto it …
                let (faces, model) = match worker.deliver() {
                    Delivery::Faces(faces, model) => (faces, model),
                    Delivery::Failed(error) => return Err(self.fail(&error)),
                };
                // … and this frame is analysed only if the worker is free: otherwise it is not
                // even converted.
                if worker.is_idle() {
                    worker.submit(Job { swap: state.pending.take(), ..job(buffer)? });
                }
                (faces, false, model)
            }
        };
        let mode = if upstream { AttachMode::Upstream { exact } } else { AttachMode::NewMetas };
        for face in &mut faces {
            // Never two tracks on one id: past the last id the stream fails, it does not merge.
            face.track.track = face.track.track.checked_add(track_id_base).ok_or_else(|| {
                self.fail(&format!("track ids ran out above {track_id_base}; restart the stream with track-id-base 0"))
            })?;
        }
        drop(guard);
        self.report_placements();
        gst::trace!(CAT, imp = self, "frame {index}: {} faces", faces.len());
        self.attach(buffer, &faces, &model, mode);
        Ok(gst::FlowSuccess::Ok)
    }
}
