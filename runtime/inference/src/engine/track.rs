//! One face track's memory: its last T frame encodings and its smoothed emotion.

use std::collections::VecDeque;

use crate::model::{ClipResult, FaceFeatures};

pub struct TrackState {
    /// The last T encodings, oldest first.
    pub features: VecDeque<FaceFeatures>,
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
