//! The service's emotion model: the bundle every new opening of a stream uses, and the swap to
//! another one while the streams run — opened and checked beside the old one first, then set on
//! every live `emotiondetect`, which changes over at its next frame (no stream stops).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use emoedge_inference::model::Precision;
use emoedge_inference::onnx::{ActiveProvider, SessionOptions};
use emoedge_inference::shared::SharedModel;
use emoedge_support::sync::lock;
use gstreamer as gst;
use gstreamer::prelude::*;

use crate::run::RunArgs;
use crate::run::pipeline;

/// The model in use and the elements that run it.
struct Current {
    path: PathBuf,
    /// Held so that the elements' own openings of `path` find it open (one copy per process).
    model: SharedModel,
    version: String,
    provider: ActiveProvider,
    elements: Vec<glib::WeakRef<gst::Element>>,
}

pub struct LiveModel {
    current: Mutex<Current>,
    precision: Precision,
    session: SessionOptions,
}

/// What `GET /model` and the metrics show of the model in use.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelView {
    pub bundle: String,
    pub version: String,
    pub provider: String,
    /// Frame-part calls, faces they carried, clip-part calls, clips they carried.
    pub frame_calls: u64,
    pub faces: u64,
    pub clip_calls: u64,
    pub clips: u64,
    /// Seconds inside ONNX Runtime in the frame and the clip part.
    pub frame_seconds: f64,
    pub clip_seconds: f64,
}

/// How a swap ended.
pub enum Swapped {
    /// The model changed from the first version to the second.
    Changed(String, String),
    /// The bundle asked for is the one in use.
    Unchanged(String),
}

impl LiveModel {
    /// Opens the bundle `run` names, as the elements will open it.
    pub fn open(run: &RunArgs) -> anyhow::Result<Self> {
        let path = run.model.bundle()?;
        let (precision, session) = (run.precision, run.ort.session_options());
        let current = Self::load(&path, precision, &session)?;
        Ok(Self { current: Mutex::new(current), precision, session })
    }

    fn load(path: &Path, precision: Precision, session: &SessionOptions) -> anyhow::Result<Current> {
        let model = SharedModel::open(path, precision, session)?;
        let (version, provider) = model.with(|m| (m.manifest.model_version.clone(), m.frame.provider));
        Ok(Current { path: path.to_path_buf(), model, version, provider, elements: Vec::new() })
    }

    /// A new `emotiondetect` for stream `stream` on the model in use (kept to be swapped).
    pub fn detect(&self, run: &RunArgs, stream: &str, first_track: u64) -> anyhow::Result<gst::Element> {
        let mut current = lock(&self.current);
        let element = pipeline::emotiondetect(run, stream, first_track, Some(&current.path))?;
        current.elements.retain(|e| e.upgrade().is_some());
        current.elements.push(element.downgrade());
        Ok(element)
    }

    /// Opens `bundle` beside the model in use, checks that it fits the streams (crop size and
    /// clip length), then makes it the model of every stream. On any failure the old model
    /// stays, and the error says why.
    pub fn swap(&self, bundle: &Path) -> anyhow::Result<Swapped> {
        let mut current = lock(&self.current);
        let same = |a: &Path, b: &Path| a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a));
        if same(bundle, &current.path) {
            return Ok(Swapped::Unchanged(current.version.clone()));
        }
        let new = Self::load(bundle, self.precision, &self.session)?;
        emoedge_vision::analyzer::swappable(&current.model, &new.model)?;
        let old = std::mem::replace(&mut *current, new);
        let text = bundle.display().to_string();
        current.elements = old.elements.into_iter().filter(|e| e.upgrade().is_some()).collect();
        for element in current.elements.iter().filter_map(|e| e.upgrade()) {
            element.set_property("model", &text);
        }
        Ok(Swapped::Changed(old.version, current.version.clone()))
    }

    pub fn view(&self) -> ModelView {
        let current = lock(&self.current);
        let stats = current.model.batch_stats();
        let (frame, clip) = current.model.busy();
        ModelView {
            bundle: current.path.display().to_string(),
            version: current.version.clone(),
            provider: current.provider.to_string(),
            frame_calls: stats.frame_calls,
            faces: stats.faces,
            clip_calls: stats.clip_calls,
            clips: stats.clips,
            frame_seconds: frame.as_secs_f64(),
            clip_seconds: clip.as_secs_f64(),
        }
    }
}
