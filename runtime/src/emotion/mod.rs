//! Emotion per face track, independent of GStreamer: encode each track's face every `interval`
//! frames (all faces of a frame in one `frame.onnx` call), keep the last T encodings, classify
//! a track's clip (`clip.onnx`, all ready tracks in one call) whenever it gains an encoding,
//! and smooth the probabilities over time.

mod analyzer;
mod track;

pub use analyzer::{Analyzer, AnalyzerError, AnalyzerSettings, FaceSource, Precision, Timing, load_model};

use std::collections::HashMap;
use std::time::Duration;

use emoedge_models::Preprocessing;

use crate::capture::CapturedFace;
use crate::face::BBox;
use crate::model::{EmotionModel, top};
use crate::onnx::OnnxError;
use track::TrackState;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineOptions {
    /// Encode a track's face every `interval`-th frame it appears in (1 = every frame).
    pub interval: u32,
    /// Weight of the previous smoothed probabilities, in [0, 1): 0 = no smoothing.
    pub smoothing: f32,
    /// A track unseen for this many frames is forgotten.
    pub forget_after: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { interval: 1, smoothing: 0.5, forget_after: 30 }
    }
}

/// A track's emotion as of some frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Emotion {
    pub label: String,
    pub label_index: usize,
    /// The smoothed probability of `label`.
    pub confidence: f32,
    /// Smoothed probabilities in the model's label order.
    pub probabilities: Vec<f32>,
    /// The router's (general, emotion) weights of the latest clip.
    pub gate: [f32; 2],
    /// Clips classified on this track so far.
    pub clips: u64,
}

/// One face of one frame with its track's emotion, if it has one yet.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceResult {
    pub track: u64,
    pub bbox: BBox,
    pub emotion: Option<Emotion>,
    /// True when `emotion` was computed on this frame (a new clip), false when carried over.
    pub fresh: bool,
}

/// Time spent in ONNX Runtime by the emotion model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineStats {
    pub frame_model: Duration,
    pub clip_model: Duration,
    pub faces_encoded: u64,
    pub clips_classified: u64,
}

pub struct EmotionEngine {
    model: EmotionModel,
    options: EngineOptions,
    tracks: HashMap<u64, TrackState>,
    preprocessing: Preprocessing,
    stats: EngineStats,
}

impl EmotionEngine {
    pub fn new(model: EmotionModel, options: EngineOptions) -> Self {
        let preprocessing = model.manifest.preprocessing.clone();
        Self { model, options, tracks: HashMap::new(), preprocessing, stats: EngineStats::default() }
    }

    pub fn model(&self) -> &EmotionModel {
        &self.model
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats { frame_model: self.model.frame.busy, clip_model: self.model.clip.busy, ..self.stats }
    }

    /// Runs the model on the faces of frame `frame` and returns every face with its track's
    /// current emotion.
    pub fn process(&mut self, frame: u64, faces: &[CapturedFace]) -> Result<Vec<FaceResult>, OnnxError> {
        let (s, t) = (self.model.manifest.crop_size, self.model.manifest.clip_length);
        let plane = 3 * s * s;
        let mut to_encode = Vec::new();
        for (i, face) in faces.iter().enumerate() {
            let state = self.tracks.entry(face.track).or_insert_with(|| TrackState::new(frame));
            if state.frames_seen % self.options.interval as u64 == 0 {
                to_encode.push(i);
            }
            state.frames_seen += 1;
            state.last_frame = frame;
        }
        let mut fresh = Vec::new();
        if !to_encode.is_empty() {
            let mut batch = vec![0.0f32; to_encode.len() * plane];
            for (slot, &i) in to_encode.iter().enumerate() {
                let crop = &faces[i].crop;
                assert_eq!(crop.width() as usize, s, "crops are cut at the model's size");
                self.preprocessing.rgb8_to_planar(crop.as_raw(), s, &mut batch[slot * plane..(slot + 1) * plane]);
            }
            let encoded = self.model.frame_features(&batch, to_encode.len())?;
            self.stats.faces_encoded += encoded.len() as u64;
            let mut ready = Vec::new();
            for (&i, features) in to_encode.iter().zip(encoded) {
                let track = faces[i].track;
                if self.tracks.get_mut(&track).is_some_and(|state| state.push(features, t)) {
                    ready.push(track);
                }
            }
            if !ready.is_empty() {
                // Each ready track's window as one slice, without copying the encodings.
                for id in &ready {
                    if let Some(state) = self.tracks.get_mut(id) {
                        state.features.make_contiguous();
                    }
                }
                let views: Vec<&[_]> = ready.iter().map(|id| self.tracks[id].features.as_slices().0).collect();
                let results = self.model.classify_clips(&views)?;
                self.stats.clips_classified += results.len() as u64;
                for (id, result) in ready.iter().zip(results) {
                    if let Some(state) = self.tracks.get_mut(id) {
                        state.update(result, self.options.smoothing);
                    }
                }
                fresh = ready;
            }
        }
        let forget_after = self.options.forget_after;
        self.tracks.retain(|_, state| frame.saturating_sub(state.last_frame) <= forget_after);
        let labels = &self.model.manifest.labels;
        Ok(faces
            .iter()
            .map(|face| {
                let emotion = self.tracks.get(&face.track).and_then(|state| {
                    let probabilities = state.smoothed.clone()?;
                    let last = state.last_result.as_ref()?;
                    let (label_index, confidence) = top(&probabilities);
                    Some(Emotion {
                        label: labels[label_index].clone(),
                        label_index,
                        confidence,
                        probabilities,
                        gate: last.gate,
                        clips: state.results,
                    })
                });
                FaceResult { track: face.track, bbox: face.face.bbox, emotion, fresh: fresh.contains(&face.track) }
            })
            .collect())
    }
}
