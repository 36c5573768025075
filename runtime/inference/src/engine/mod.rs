//! Emotion per face track: encode each track's face every `interval` frames (all faces of a
//! frame in one frame-part call), keep the last T encodings, classify a track's clip (all ready
//! tracks in one clip-part call) whenever it gains an encoding, smooth the probabilities over
//! time, and forget tracks unseen for a while. Independent of where faces come from.

mod backend;
mod track;

pub use backend::EmotionBackend;

use std::collections::HashMap;
use std::time::Duration;

use emoedge_models::top;
use image::RgbImage;

use crate::onnx::OnnxError;
use track::TrackState;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineOptions {
    /// Encode a track's face every `interval`-th frame it appears in (1 = every frame).
    pub interval: u32,
    /// Weight of the previous smoothed probabilities, in [0, 1): 0 = no smoothing.
    pub smoothing: f32,
    /// A track unseen for more than this many frames is forgotten.
    pub forget_after: u64,
}

impl Default for EngineOptions {
    /// The defaults of the element's properties and of `emoedge run`'s options.
    fn default() -> Self {
        Self { interval: 1, smoothing: 0.5, forget_after: 30 }
    }
}

/// One face of a frame as the engine takes it: its track and its crop at the model's size.
#[derive(Debug, Clone, Copy)]
pub struct TrackedCrop<'a> {
    pub track: u64,
    pub crop: &'a RgbImage,
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

/// A track's emotion for one face of a frame, if it has one yet.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEmotion {
    pub track: u64,
    pub emotion: Option<Emotion>,
    /// True when `emotion` was computed on this frame (a new clip), false when carried over.
    pub fresh: bool,
}

/// Work done and time spent in the model's two parts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineStats {
    pub frame_model: Duration,
    pub clip_model: Duration,
    pub faces_encoded: u64,
    pub clips_classified: u64,
}

pub struct EmotionEngine<B: EmotionBackend> {
    backend: B,
    options: EngineOptions,
    tracks: HashMap<u64, TrackState>,
    stats: EngineStats,
}

impl<B: EmotionBackend> EmotionEngine<B> {
    pub fn new(backend: B, options: EngineOptions) -> Self {
        Self { backend, options, tracks: HashMap::new(), stats: EngineStats::default() }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn stats(&self) -> EngineStats {
        let (frame_model, clip_model) = self.backend.busy();
        EngineStats { frame_model, clip_model, ..self.stats }
    }

    /// Runs the model on the faces of frame `frame` and returns each face's track emotion, in
    /// the order of `faces`.
    pub fn process(&mut self, frame: u64, faces: &[TrackedCrop]) -> Result<Vec<TrackEmotion>, OnnxError> {
        let to_encode = self.note_seen(frame, faces);
        let fresh = if to_encode.is_empty() { Vec::new() } else { self.encode_and_classify(faces, &to_encode)? };
        let forget_after = self.options.forget_after;
        self.tracks.retain(|_, state| frame.saturating_sub(state.last_frame) <= forget_after);
        Ok(faces
            .iter()
            .map(|face| TrackEmotion {
                track: face.track,
                emotion: self.tracks.get(&face.track).and_then(|state| self.emotion(state)),
                fresh: fresh.contains(&face.track),
            })
            .collect())
    }

    /// Records that each face's track was seen in `frame`; returns the faces due for encoding.
    fn note_seen(&mut self, frame: u64, faces: &[TrackedCrop]) -> Vec<usize> {
        let interval = u64::from(self.options.interval.max(1));
        let mut due = Vec::new();
        for (i, face) in faces.iter().enumerate() {
            let state = self.tracks.entry(face.track).or_insert_with(|| TrackState::new(frame));
            if state.frames_seen.is_multiple_of(interval) {
                due.push(i);
            }
            state.frames_seen += 1;
            state.last_frame = frame;
        }
        due
    }

    /// Encodes the faces `due` in one call, then classifies every track whose window is full
    /// in one call; returns those tracks.
    fn encode_and_classify(&mut self, faces: &[TrackedCrop], due: &[usize]) -> Result<Vec<u64>, OnnxError> {
        let (s, t) = (self.backend.crop_size(), self.backend.clip_length());
        let plane = 3 * s * s;
        let mut batch = vec![0.0f32; due.len() * plane];
        for (slot, &i) in due.iter().enumerate() {
            let crop = faces[i].crop;
            if (crop.width() as usize, crop.height() as usize) != (s, s) {
                return Err(OnnxError::Run {
                    model: "frame part".into(),
                    message: format!("a {}×{} crop; the model takes {s}×{s}", crop.width(), crop.height()),
                });
            }
            self.backend.preprocessing().rgb8_to_planar(crop.as_raw(), s, &mut batch[slot * plane..][..plane]);
        }
        let encoded = self.backend.frame_features(&batch, due.len())?;
        self.stats.faces_encoded += encoded.len() as u64;
        let mut ready = Vec::new();
        for (&i, features) in due.iter().zip(encoded) {
            let track = faces[i].track;
            if self.tracks.get_mut(&track).is_some_and(|state| state.push(features, t)) {
                ready.push(track);
            }
        }
        if ready.is_empty() {
            return Ok(ready);
        }
        // Each ready track's window as one slice, without copying the encodings.
        for id in &ready {
            if let Some(state) = self.tracks.get_mut(id) {
                state.features.make_contiguous();
            }
        }
        let windows: Vec<&[_]> =
            ready.iter().filter_map(|id| self.tracks.get(id)).map(|state| state.features.as_slices().0).collect();
        let results = self.backend.classify_clips(&windows)?;
        self.stats.clips_classified += results.len() as u64;
        for (id, result) in ready.iter().zip(results) {
            if let Some(state) = self.tracks.get_mut(id) {
                state.update(result, self.options.smoothing);
            }
        }
        Ok(ready)
    }

    fn emotion(&self, state: &TrackState) -> Option<Emotion> {
        let probabilities = state.smoothed.clone()?;
        let last = state.last_result.as_ref()?;
        let (label_index, confidence) = top(&probabilities);
        Some(Emotion {
            label: self.backend.labels().get(label_index)?.clone(),
            label_index,
            confidence,
            probabilities,
            gate: last.gate,
            clips: state.results,
        })
    }
}

#[cfg(test)]
mod tests;
