//! Face source + emotion engine: everything the GStreamer element and `emoedge run` do to a
//! frame, without GStreamer.

use std::path::PathBuf;
use std::time::Duration;

use emoedge_models::manifest::Variant;

use super::{EmotionEngine, EngineOptions, EngineStats, FaceResult};
use crate::capture::{CropTracker, FaceCapture};
use crate::face::tracker::TrackerOptions;
use crate::face::{AlignedCrop, BBox, DetectorOptions, Face, Mtcnn};
use crate::model::{BundleError, EmotionModel};
use crate::onnx::{self, ActiveProvider, OnnxError, SessionOptions};
use crate::video::Frame;

/// Where faces come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaceSource {
    /// The runtime's MTCNN detector and IoU tracker.
    #[default]
    Builtin,
    /// Boxes given with each frame (an upstream detector's region-of-interest metas).
    Upstream,
    /// The whole frame is one face (pre-cropped input).
    FullFrame,
}

/// Which variant of the bundle to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// FP16 on TensorRT and CUDA, FP32 on the CPU.
    #[default]
    Auto,
    Fixed(Variant),
}

impl Precision {
    pub const NAMES: [&'static str; 4] = ["auto", "fp32", "fp16", "int8"];
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            other => other
                .parse::<Variant>()
                .map(Self::Fixed)
                .map_err(|_| format!("precision `{other}` is not one of {}", Self::NAMES.join(", "))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AnalyzerSettings {
    /// The model bundle; `None` = the bundled default model.
    pub bundle: Option<PathBuf>,
    pub precision: Precision,
    pub session: SessionOptions,
    pub engine: EngineOptions,
    pub face_source: FaceSource,
    pub min_face_size: f32,
    /// T the caller expects; 0 = whatever the bundle has.
    pub clip_length: usize,
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            bundle: None,
            precision: Precision::Auto,
            session: SessionOptions::default(),
            engine: EngineOptions::default(),
            face_source: FaceSource::Builtin,
            min_face_size: DetectorOptions::default().min_face_size,
            clip_length: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    #[error(
        "no model bundle given and the bundled default model (models/default/bundle) was not found; set the model property / --model to a bundle folder"
    )]
    NoBundle,
    #[error("the MTCNN face detector (assets/mtcnn) was not found; run scripts/setup, or use face-source=upstream")]
    NoDetector,
    #[error(
        "clip-length is {requested} but the model {bundle} classifies clips of {model} frames; set clip-length to 0 or {model}"
    )]
    ClipLength { requested: usize, model: usize, bundle: String },
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
}

enum Capture {
    Detector(FaceCapture),
    Boxes(CropTracker),
}

pub struct Analyzer {
    capture: Capture,
    engine: EmotionEngine,
    source: FaceSource,
    min_face_size: f32,
}

/// Wall time spent inside ONNX Runtime, per model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    pub detector: Duration,
    pub engine: EngineStats,
}

/// Opens the bundle (`None` = the bundled default model) in the variant `precision` picks:
/// `auto` is FP16 where TensorRT or CUDA serves it and FP32 on the CPU.
pub fn load_model(
    bundle: Option<PathBuf>,
    precision: Precision,
    session: &SessionOptions,
) -> Result<EmotionModel, AnalyzerError> {
    let bundle = bundle.or_else(crate::assets::default_bundle).ok_or(AnalyzerError::NoBundle)?;
    let env = onnx::environment(None)?;
    Ok(match precision {
        Precision::Fixed(variant) => EmotionModel::load(env, &bundle, variant, session)?,
        Precision::Auto => {
            let model = EmotionModel::load(env, &bundle, Variant::Fp16, session)?;
            if model.frame.provider == ActiveProvider::Cpu {
                EmotionModel::load(env, &bundle, Variant::Fp32, session)?
            } else {
                model
            }
        }
    })
}

impl Analyzer {
    pub fn load(settings: &AnalyzerSettings) -> Result<Self, AnalyzerError> {
        let model = load_model(settings.bundle.clone(), settings.precision, &settings.session)?;
        let env = onnx::environment(None)?;
        let bundle = model.bundle.clone();
        let t = model.manifest.clip_length;
        if settings.clip_length != 0 && settings.clip_length != t {
            return Err(AnalyzerError::ClipLength {
                requested: settings.clip_length,
                model: t,
                bundle: bundle.display().to_string(),
            });
        }
        let crop = AlignedCrop::new(model.manifest.crop_size as u32);
        let capture = match settings.face_source {
            FaceSource::Builtin => {
                let dir = crate::assets::detector_dir().ok_or(AnalyzerError::NoDetector)?;
                let options = DetectorOptions { min_face_size: settings.min_face_size, ..Default::default() };
                Capture::Detector(FaceCapture::new(
                    Mtcnn::load(env, &dir, &settings.session, options)?,
                    crop,
                    TrackerOptions::default(),
                ))
            }
            FaceSource::Upstream => Capture::Boxes(CropTracker::new(crop, TrackerOptions::default())),
            // A pre-cropped frame is the face: no context margin around it.
            FaceSource::FullFrame => {
                Capture::Boxes(CropTracker::new(AlignedCrop { margin: 0.0, ..crop }, TrackerOptions::default()))
            }
        };
        Ok(Self {
            capture,
            engine: EmotionEngine::new(model, settings.engine),
            source: settings.face_source,
            min_face_size: settings.min_face_size,
        })
    }

    pub fn model(&self) -> &EmotionModel {
        self.engine.model()
    }

    /// The provider that runs the emotion model.
    pub fn provider(&self) -> ActiveProvider {
        self.engine.model().frame.provider
    }

    pub fn timing(&self) -> Timing {
        let detector = match &self.capture {
            Capture::Detector(capture) => capture.detector().busy(),
            Capture::Boxes(_) => Duration::ZERO,
        };
        Timing { detector, engine: self.engine.stats() }
    }

    /// Finds (or takes) the faces of `frame` and returns each with its track's emotion, in the
    /// order of `upstream` for the upstream source (boxes smaller than the minimum face size are
    /// skipped: their entries are `None`).
    pub fn analyze(&mut self, frame: &Frame, upstream: &[BBox]) -> Result<Vec<Option<FaceResult>>, OnnxError> {
        let (faces, kept): (Vec<Face>, Vec<bool>) = match self.source {
            FaceSource::Builtin => (Vec::new(), Vec::new()),
            FaceSource::Upstream => {
                let kept: Vec<bool> =
                    upstream.iter().map(|b| b.width().min(b.height()) >= self.min_face_size).collect();
                (upstream.iter().zip(&kept).filter(|(_, k)| **k).map(|(b, _)| Face::from_box(*b)).collect(), kept)
            }
            FaceSource::FullFrame => {
                let (w, h) = (frame.image.width() as f32, frame.image.height() as f32);
                (vec![Face::from_box(BBox { x1: 0.0, y1: 0.0, x2: w, y2: h })], vec![true])
            }
        };
        let captured = match &mut self.capture {
            Capture::Detector(capture) => capture.process(frame)?,
            Capture::Boxes(tracks) => tracks.assign(frame, faces),
        };
        let mut results = self.engine.process(frame.index, &captured)?.into_iter();
        if self.source != FaceSource::Upstream {
            return Ok(results.map(Some).collect());
        }
        Ok(kept.into_iter().map(|k| if k { results.next() } else { None }).collect())
    }
}
