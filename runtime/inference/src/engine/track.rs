//! One face track's memory: its last T frame encodings and its smoothed emotion.

use std::collections::VecDeque;

use emoedge_models::{mean_log_probs, softmax};

use crate::model::{ClipResult, FaceFeatures};

pub struct TrackState {
    /// The last T encodings, oldest first (the clip head's window).
    pub features: VecDeque<FaceFeatures>,
    /// The last T frames' own results, oldest first (the mean of frames' window).
    pub frame_results: VecDeque<ClipResult>,
    /// Frames of this track seen so far (encoded or not).
    pub frames_seen: u64,
    /// The frame this track was last seen in.
    pub last_frame: u64,
    /// Exponentially smoothed probabilities, once a clip was classified.
    pub smoothed: Option<Vec<f32>>,
    pub last_result: Option<ClipResult>,
    pub results: u64,
}

impl TrackState {
    pub fn new(frame: u64) -> Self {
        Self {
            features: VecDeque::new(),
            frame_results: VecDeque::new(),
            frames_seen: 0,
            last_frame: frame,
            smoothed: None,
            last_result: None,
            results: 0,
        }
    }

    /// Adds an encoding, keeping the last `t`; true when a full clip is ready.
    pub fn push(&mut self, features: FaceFeatures, t: usize) -> bool {
        if self.features.len() == t {
            self.features.pop_front();
        }
        self.features.push_back(features);
        self.features.len() == t
    }

    /// Adds one frame's own result, keeping the last `t`; once there are `t`, the window's
    /// result: probabilities the softmax of the frames' mean log-probabilities, gate their mean.
    pub fn push_frame_result(&mut self, result: ClipResult, t: usize) -> Option<ClipResult> {
        if self.frame_results.len() == t {
            self.frame_results.pop_front();
        }
        self.frame_results.push_back(result);
        if self.frame_results.len() < t {
            return None;
        }
        let n = self.frame_results.len() as f32;
        let labels = self.frame_results.back()?.emotion_probs.len();
        let mean_log = mean_log_probs(self.frame_results.iter().map(|r| r.emotion_probs.as_slice()), labels);
        let gate = [0, 1].map(|g| self.frame_results.iter().map(|r| r.gate[g]).sum::<f32>() / n);
        Some(ClipResult {
            emotion_probs: softmax(&mean_log),
            emotion_logits: mean_log,
            gate,
            general_logits: self.frame_results.back()?.general_logits.clone(),
        })
    }

    /// Folds a new clip result into the smoothed probabilities: `p = s·p_old + (1 − s)·p_new`.
    pub fn update(&mut self, result: ClipResult, smoothing: f32) {
        self.smoothed = Some(match self.smoothed.take() {
            Some(old) => {
                old.iter().zip(&result.emotion_probs).map(|(o, n)| smoothing * o + (1.0 - smoothing) * n).collect()
            }
            None => result.emotion_probs.clone(),
        });
        self.last_result = Some(result);
        self.results += 1;
    }
}
