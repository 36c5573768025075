//! Emotion per face track: encode each track's face every `interval` frames (all faces of a
//! frame in one frame-part call), keep the last T encodings, classify a track's window (all
//! ready tracks in one clip-part call) whenever it gains an encoding — by default as the mean of
//! its frames' log-probabilities, each frame classified alone, or with the clip head over the T
//! encodings ([`Window`]) — smooth the probabilities over time, and forget tracks unseen for a
//! while. Independent of where faces come from.

mod backend;
mod track;

pub use backend::EmotionBackend;

use std::collections::HashMap;
use std::time::Duration;

use emoedge_models::top;
use image::RgbImage;

use crate::model::{ClipResult, FaceFeatures};
use crate::onnx::OnnxError;
use track::TrackState;

/// How a track's window of T frames becomes one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "glib", derive(glib::Enum), enum_type(name = "GstEmoedgeWindow"))]
#[repr(i32)]
pub enum Window {
    /// Each frame classified alone (the clip part on the frame repeated T times, as a still),
    /// the window's result the mean of their log-probabilities. The default: the clip head
    /// never beat it (model card, "The clip head against the mean of frames").
    #[default]
    #[cfg_attr(feature = "glib", enum_value(name = "Mean of the frames' log-probabilities", nick = "mean-of-frames"))]
    MeanOfFrames,
    /// The clip head (gate attention over T, position embedding, temporal pooling) on the T
    /// encodings together.
    #[cfg_attr(feature = "glib", enum_value(name = "The clip head over the T encodings", nick = "clip-head"))]
    ClipHead,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineOptions {
    /// Encode a track's face every `interval`-th frame it appears in (1 = every frame).
    pub interval: u32,
    /// Weight of the previous smoothed probabilities, in [0, 1): 0 = no smoothing.
    pub smoothing: f32,
    /// A track unseen for more than this many frames is forgotten.
    pub forget_after: u64,
    pub window: Window,
}

impl Default for EngineOptions {
    /// The defaults of the element's properties and of `emoedge run`'s options.
    fn default() -> Self {
        Self { interval: 1, smoothing: 0.5, forget_after: 30, window: Window::default() }
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
    /// The router's (general, emotion) weights of the latest window (its frames' mean).
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
    /// The frame part's input, reused frame after frame.
    batch: Vec<f32>,
}

impl<B: EmotionBackend> EmotionEngine<B> {
    pub fn new(backend: B, options: EngineOptions) -> Self {
        Self { backend, options, tracks: HashMap::new(), stats: EngineStats::default(), batch: Vec::new() }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Runs on `backend` from the next frame on. Every track's window and smoothed result
    /// start again: another model's encodings and probabilities do not mix with these. The
    /// counters go on.
    pub fn replace_backend(&mut self, backend: B) {
        self.tracks.clear();
        self.backend = backend;
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
        // Every value is written below: the resize only sets the length.
        self.batch.resize(due.len() * plane, 0.0);
        for (slot, &i) in due.iter().enumerate() {
            let crop = faces[i].crop;
            if (crop.width() as usize, crop.height() as usize) != (s, s) {
                return Err(OnnxError::Run {
                    model: "frame part".into(),
                    message: format!("a {}×{} crop; the model takes {s}×{s}", crop.width(), crop.height()),
                });
            }
            self.backend.preprocessing().rgb8_to_planar(crop.as_raw(), s, &mut self.batch[slot * plane..][..plane]);
        }
        let encoded = self.backend.frame_features(&self.batch, due.len())?;
        self.stats.faces_encoded += encoded.len() as u64;
        let tracks: Vec<u64> = due.iter().map(|&i| faces[i].track).collect();
        let ready = match self.options.window {
            Window::ClipHead => self.classify_windows(&tracks, encoded, t)?,
            Window::MeanOfFrames => self.classify_frames(&tracks, encoded, t)?,
        };
        let mut fresh = Vec::with_capacity(ready.len());
        for (id, result) in ready {
            if let Some(state) = self.tracks.get_mut(&id) {
                state.update(result, self.options.smoothing);
            }
            fresh.push(id);
        }
        Ok(fresh)
    }

    /// The clip head: each track's new encoding joins its window; every full window is
    /// classified, all in one call.
    fn classify_windows(
        &mut self,
        tracks: &[u64],
        encoded: Vec<FaceFeatures>,
        t: usize,
    ) -> Result<Vec<(u64, ClipResult)>, OnnxError> {
        let mut ready = Vec::new();
        for (&track, features) in tracks.iter().zip(encoded) {
            if let Some(state) = self.tracks.get_mut(&track)
                && state.push(features, t)
            {
                state.features.make_contiguous();
                ready.push(track);
            }
        }
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        // Each ready track's window as one slice, without copying the encodings.
        let windows: Vec<&[_]> =
            ready.iter().filter_map(|id| self.tracks.get(id)).map(|state| state.features.as_slices().0).collect();
        let results = self.backend.classify_clips(&windows)?;
        self.stats.clips_classified += results.len() as u64;
        Ok(ready.into_iter().zip(results).collect())
    }

    /// The mean of frames: each new encoding classified alone (T copies of it: a still), all in
    /// one call; a track whose last T frames are classified gets their mean log-probabilities.
    fn classify_frames(
        &mut self,
        tracks: &[u64],
        encoded: Vec<FaceFeatures>,
        t: usize,
    ) -> Result<Vec<(u64, ClipResult)>, OnnxError> {
        let stills: Vec<Vec<FaceFeatures>> = encoded.into_iter().map(|f| vec![f; t]).collect();
        let windows: Vec<&[FaceFeatures]> = stills.iter().map(Vec::as_slice).collect();
        let results = self.backend.classify_clips(&windows)?;
        self.stats.clips_classified += results.len() as u64;
        Ok(tracks
            .iter()
            .zip(results)
            .filter_map(|(&track, result)| {
                let state = self.tracks.get_mut(&track)?;
                state.push_frame_result(result, t).map(|mean| (track, mean))
            })
            .collect())
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
