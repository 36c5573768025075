use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::thread::JoinHandle;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::subclass::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use image::RgbImage;

use super::FaceSourceProperty;
use super::meta::{emotion_structure, roi_box};
use crate::emotion::{Analyzer, AnalyzerSettings, EngineOptions, FaceResult, FaceSource, Precision, Timing};
use crate::face::BBox;
use crate::onnx::{Provider, SessionOptions, TensorRtOptions};
use crate::video::Frame;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("emotiondetect", gst::DebugColorFlags::empty(), Some("emoedge video emotion recognition"))
});

const DEFAULT_PRECISION: &str = "auto";
const DEFAULT_PROVIDER: &str = "auto";
const DEFAULT_INTERVAL: u32 = 1;
const DEFAULT_SMOOTHING: f64 = 0.5;
const DEFAULT_MIN_FACE_SIZE: u32 = 40;

#[derive(Debug, Clone)]
struct Settings {
    model: Option<String>,
    precision: String,
    execution_provider: String,
    engine_cache_dir: Option<String>,
    device_id: i32,
    interval: u32,
    clip_length: u32,
    smoothing: f64,
    min_face_size: u32,
    face_source: FaceSourceProperty,
    asynchronous: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            precision: DEFAULT_PRECISION.into(),
            execution_provider: DEFAULT_PROVIDER.into(),
            engine_cache_dir: None,
            device_id: 0,
            interval: DEFAULT_INTERVAL,
            clip_length: 0,
            smoothing: DEFAULT_SMOOTHING,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            face_source: FaceSourceProperty::Builtin,
            asynchronous: false,
        }
    }
}

impl Settings {
    /// The analyzer's settings, or a message naming the bad property and its valid values.
    fn analyzer(&self) -> Result<AnalyzerSettings, String> {
        let precision: Precision = self.precision.parse().map_err(|e| format!("{e} (property `precision`)"))?;
        let provider: Provider =
            self.execution_provider.parse().map_err(|e| format!("{e} (property `execution-provider`)"))?;
        let session = SessionOptions {
            provider,
            device_id: self.device_id,
            tensorrt: TensorRtOptions {
                engine_cache_dir: self.engine_cache_dir.as_ref().map(PathBuf::from),
                timing_cache: true,
                ..Default::default()
            },
            ..Default::default()
        };
        Ok(AnalyzerSettings {
            bundle: self.model.as_ref().map(PathBuf::from),
            precision,
            session,
            engine: EngineOptions { interval: self.interval, smoothing: self.smoothing as f32, ..Default::default() },
            face_source: match self.face_source {
                FaceSourceProperty::Builtin => FaceSource::Builtin,
                FaceSourceProperty::Upstream => FaceSource::Upstream,
                FaceSourceProperty::FullFrame => FaceSource::FullFrame,
            },
            min_face_size: self.min_face_size as f32,
            clip_length: self.clip_length as usize,
        })
    }
}

/// A frame handed to the asynchronous worker.
struct Job {
    frame: Frame,
    upstream: Vec<BBox>,
}

/// What the worker knows: the faces of the last frame it analysed, and whether they were
/// already attached to a buffer.
#[derive(Default)]
struct Latest {
    faces: Vec<FaceResult>,
    delivered: bool,
    error: Option<String>,
    timing: Timing,
    analyzed: u64,
}

struct AsyncWorker {
    jobs: Option<SyncSender<Job>>,
    latest: Arc<Mutex<Latest>>,
    thread: Option<JoinHandle<()>>,
}

impl AsyncWorker {
    fn spawn(mut analyzer: Analyzer) -> std::io::Result<Self> {
        // One frame in flight: a busy worker makes the streaming thread skip frames, never wait.
        let (jobs, receiver): (SyncSender<Job>, Receiver<Job>) = sync_channel(1);
        let latest = Arc::new(Mutex::new(Latest::default()));
        let shared = latest.clone();
        let thread = std::thread::Builder::new().name("emotiondetect".into()).spawn(move || {
            for job in receiver {
                let result = analyzer.analyze(&job.frame, &job.upstream);
                let mut latest = shared.lock().unwrap_or_else(|e| e.into_inner());
                latest.timing = analyzer.timing();
                latest.analyzed += 1;
                match result {
                    Ok(faces) => {
                        latest.faces = faces.into_iter().flatten().collect();
                        latest.delivered = false;
                    }
                    Err(e) => {
                        latest.error = Some(e.to_string());
                        break;
                    }
                }
            }
        })?;
        Ok(Self { jobs: Some(jobs), latest, thread: Some(thread) })
    }

    fn stop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for AsyncWorker {
    fn drop(&mut self) {
        self.stop();
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
    labels: Arc<[String]>,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
}

impl State {
    /// Frames seen, frames analysed and time inside ONNX Runtime so far.
    fn stats(&self) -> gst::Structure {
        let (analyzed, timing) = match &self.mode {
            Mode::Sync(analyzer) => (self.frames, analyzer.timing()),
            Mode::Async(worker) => {
                let latest = lock(&worker.latest);
                (latest.analyzed, latest.timing)
            }
        };
        gst::Structure::builder("emotiondetect-stats")
            .field("frames", self.frames)
            .field("analyzed-frames", analyzed)
            .field("faces-encoded", timing.engine.faces_encoded)
            .field("clips-classified", timing.engine.clips_classified)
            .field("detector-ort-ns", timing.detector.as_nanos() as u64)
            .field("frame-model-ort-ns", timing.engine.frame_model.as_nanos() as u64)
            .field("clip-model-ort-ns", timing.engine.clip_model.as_nanos() as u64)
            .build()
    }
}

#[derive(Default)]
pub struct EmotionDetect {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    active_provider: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for EmotionDetect {
    const NAME: &'static str = "GstEmotionDetect";
    type Type = super::EmotionDetect;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for EmotionDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model")
                    .nick("Model bundle")
                    .blurb("Folder of an emoedge model bundle (manifest.json + ONNX files); empty = the bundled default model")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("precision")
                    .nick("Precision")
                    .blurb("Bundle variant: auto (fp16 on TensorRT/CUDA, fp32 on CPU), fp32, fp16 or int8")
                    .default_value(Some(DEFAULT_PRECISION))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("execution-provider")
                    .nick("Execution provider")
                    .blurb("ONNX Runtime provider: auto (TensorRT, then CUDA, then CPU), tensorrt, cuda or cpu")
                    .default_value(Some(DEFAULT_PROVIDER))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("engine-cache-dir")
                    .nick("Engine cache folder")
                    .blurb("Where TensorRT keeps built engines and timing caches (the first start builds them); empty = no cache")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("device-id")
                    .nick("GPU device")
                    .blurb("CUDA device index for TensorRT and CUDA")
                    .minimum(0)
                    .maximum(64)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("interval")
                    .nick("Interval")
                    .blurb("Encode each track's face every N-th frame it appears in")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_INTERVAL)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("clip-length")
                    .nick("Clip length")
                    .blurb("Encodings per clip; 0 = the model's T (a different value is refused at start)")
                    .maximum(1024)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Smoothing")
                    .blurb("Weight of a track's previous probabilities in the moving average (0 = none)")
                    .minimum(0.0)
                    .maximum(0.99)
                    .default_value(DEFAULT_SMOOTHING)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Smallest face side in pixels that is detected or accepted from upstream")
                    .minimum(8)
                    .maximum(4096)
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("face-source", FaceSourceProperty::Builtin)
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
                glib::ParamSpecString::builder("active-provider")
                    .nick("Active provider")
                    .blurb("The execution provider that runs the emotion model (after start)")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Frames seen and analysed, faces encoded, clips classified, nanoseconds inside ONNX Runtime per model")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        let string = |v: &glib::Value| v.get::<Option<String>>().ok().flatten().filter(|s| !s.is_empty());
        match pspec.name() {
            "model" => settings.model = string(value),
            "precision" => settings.precision = string(value).unwrap_or_else(|| DEFAULT_PRECISION.into()),
            "execution-provider" => {
                settings.execution_provider = string(value).unwrap_or_else(|| DEFAULT_PROVIDER.into())
            }
            "engine-cache-dir" => settings.engine_cache_dir = string(value),
            "device-id" => settings.device_id = value.get().unwrap_or(0),
            "interval" => settings.interval = value.get().unwrap_or(DEFAULT_INTERVAL),
            "clip-length" => settings.clip_length = value.get().unwrap_or(0),
            "smoothing" => settings.smoothing = value.get().unwrap_or(DEFAULT_SMOOTHING),
            "min-face-size" => settings.min_face_size = value.get().unwrap_or(DEFAULT_MIN_FACE_SIZE),
            "face-source" => settings.face_source = value.get().unwrap_or_default(),
            "async" => settings.asynchronous = value.get().unwrap_or(false),
            other => gst::warning!(CAT, imp = self, "no writable property `{other}`"),
        }
        gst::debug!(CAT, imp = self, "set {} → {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        match pspec.name() {
            "model" => settings.model.to_value(),
            "precision" => settings.precision.to_value(),
            "execution-provider" => settings.execution_provider.to_value(),
            "engine-cache-dir" => settings.engine_cache_dir.to_value(),
            "device-id" => settings.device_id.to_value(),
            "interval" => settings.interval.to_value(),
            "clip-length" => settings.clip_length.to_value(),
            "smoothing" => settings.smoothing.to_value(),
            "min-face-size" => settings.min_face_size.to_value(),
            "face-source" => settings.face_source.to_value(),
            "async" => settings.asynchronous.to_value(),
            "active-provider" => lock(&self.active_provider).to_value(),
            "stats" => lock(&self.state).as_ref().map(State::stats).to_value(),
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
            use gst_video::VideoFormat::*;
            let caps = gst_video::VideoCapsBuilder::new().format_list([Rgb, Bgr, Rgba, Bgra, Rgbx, Bgrx]).build();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps)
                    .expect("valid template"),
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps)
                    .expect("valid template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

/// The frame as packed RGB, whatever the negotiated 3- or 4-byte RGB/BGR layout.
fn to_rgb(buffer: &gst::BufferRef, info: &gst_video::VideoInfo, index: u64) -> Result<Frame, String> {
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info)
        .map_err(|e| format!("cannot map the frame: {e}"))?;
    let (w, h) = (info.width(), info.height());
    let data = frame.plane_data(0).map_err(|e| e.to_string())?;
    let stride = frame.plane_stride()[0] as usize;
    let (bytes, order): (usize, [usize; 3]) = match info.format() {
        gst_video::VideoFormat::Rgb => (3, [0, 1, 2]),
        gst_video::VideoFormat::Bgr => (3, [2, 1, 0]),
        gst_video::VideoFormat::Rgba | gst_video::VideoFormat::Rgbx => (4, [0, 1, 2]),
        gst_video::VideoFormat::Bgra | gst_video::VideoFormat::Bgrx => (4, [2, 1, 0]),
        other => return Err(format!("unsupported format {other:?}")),
    };
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for row in data.chunks(stride).take(h as usize) {
        for pixel in row[..w as usize * bytes].chunks_exact(bytes) {
            rgb.extend(order.map(|c| pixel[c]));
        }
    }
    let image = RgbImage::from_raw(w, h, rgb).ok_or("frame smaller than its caps")?;
    Ok(Frame { index, pts_ns: buffer.pts().map(|t| t.nseconds()), image })
}

impl EmotionDetect {
    /// Attaches `faces` to `buffer` (new "face" metas, or parameters on the upstream metas they
    /// came from) and posts one element message per fresh result.
    fn attach(&self, buffer: &mut gst::BufferRef, faces: &[FaceResult], labels: &[String], upstream: bool) {
        let pts = buffer.pts();
        let mut messages = Vec::new();
        if upstream {
            for mut meta in buffer.iter_meta_mut::<gst_video::VideoRegionOfInterestMeta>() {
                if meta.roi_type() != "face" {
                    continue;
                }
                let b = roi_box(meta.rect());
                let best = faces
                    .iter()
                    .filter(|f| f.bbox.iou(&b) > 0.3)
                    .max_by(|x, y| x.bbox.iou(&b).total_cmp(&y.bbox.iou(&b)));
                if let Some(face) = best
                    && let Some(emotion) = &face.emotion
                {
                    let s = emotion_structure(face, emotion, labels, pts);
                    if face.fresh {
                        messages.push(s.clone());
                    }
                    meta.add_param(s);
                }
            }
        } else {
            for face in faces {
                let b = face.bbox;
                let rect =
                    (b.x1.max(0.0) as u32, b.y1.max(0.0) as u32, b.width().max(0.0) as u32, b.height().max(0.0) as u32);
                let mut meta = gst_video::VideoRegionOfInterestMeta::add(buffer, "face", rect);
                meta.set_id(face.track.min(i32::MAX as u64) as i32);
                if let Some(emotion) = &face.emotion {
                    let s = emotion_structure(face, emotion, labels, pts);
                    if face.fresh {
                        messages.push(s.clone());
                    }
                    meta.add_param(s);
                }
            }
        }
        let obj = self.obj();
        for s in messages {
            let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        }
    }
}

impl BaseTransformImpl for EmotionDetect {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let analyzer_settings =
            settings.analyzer().map_err(|e| gst::error_msg!(gst::LibraryError::Settings, ("{}", e)))?;
        let analyzer = Analyzer::load(&analyzer_settings)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("emotiondetect cannot start: {}", e)))?;
        let provider = analyzer.provider().to_string();
        gst::info!(
            CAT,
            imp = self,
            "model {} ({}) on {provider}; face source {:?}, async {}",
            analyzer.model().bundle.display(),
            analyzer.model().variant,
            settings.face_source,
            settings.asynchronous
        );
        for reason in &analyzer.model().frame.fallbacks {
            gst::info!(CAT, imp = self, "passed over {reason}");
        }
        *lock(&self.active_provider) = Some(provider);
        let labels: Arc<[String]> = analyzer.model().labels().into();
        let mode = if settings.asynchronous {
            let worker = AsyncWorker::spawn(analyzer).map_err(|e| {
                gst::error_msg!(gst::CoreError::Thread, ("emotiondetect cannot start its inference thread: {}", e))
            })?;
            Mode::Async(worker)
        } else {
            Mode::Sync(Box::new(analyzer))
        };
        let upstream = settings.face_source == FaceSourceProperty::Upstream;
        *lock(&self.state) = Some(State { mode, upstream, labels, info: None, frames: 0 });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(State { mode: Mode::Async(mut worker), .. }) = lock(&self.state).take() {
            worker.stop();
        }
        Ok(())
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
        let Some(info) = state.info.as_ref() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("emotiondetect got a buffer before caps"));
            return Err(gst::FlowError::NotNegotiated);
        };
        let index = state.frames;
        state.frames += 1;
        let upstream_mode = state.upstream;
        let upstream: Vec<BBox> = if upstream_mode {
            buffer
                .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
                .filter(|m| m.roi_type() == "face")
                .map(|m| roi_box(m.rect()))
                .collect()
        } else {
            Vec::new()
        };
        let frame = to_rgb(buffer, info, index).map_err(|e| {
            gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e));
            gst::FlowError::Error
        })?;
        let labels = state.labels.clone();
        let faces = match &mut state.mode {
            Mode::Sync(analyzer) => match analyzer.analyze(&frame, &upstream) {
                Ok(faces) => faces.into_iter().flatten().collect::<Vec<_>>(),
                Err(e) => {
                    gst::element_imp_error!(self, gst::StreamError::Failed, ("inference failed: {}", e));
                    return Err(gst::FlowError::Error);
                }
            },
            Mode::Async(worker) => {
                if let Some(jobs) = &worker.jobs {
                    match jobs.try_send(Job { frame, upstream }) {
                        Ok(()) | Err(TrySendError::Full(_)) => {}
                        Err(TrySendError::Disconnected(_)) => {}
                    }
                }
                let mut latest = lock(&worker.latest);
                if let Some(error) = latest.error.take() {
                    drop(latest);
                    gst::element_imp_error!(self, gst::StreamError::Failed, ("inference failed: {}", error));
                    return Err(gst::FlowError::Error);
                }
                let fresh = !latest.delivered;
                latest.delivered = true;
                latest.faces.iter().cloned().map(|f| FaceResult { fresh: f.fresh && fresh, ..f }).collect()
            }
        };
        drop(guard);
        gst::trace!(CAT, imp = self, "frame {index}: {} faces", faces.len());
        self.attach(buffer, &faces, &labels, upstream_mode);
        Ok(gst::FlowSuccess::Ok)
    }
}
