//! What the engine needs from a model: encode face crops, classify clips of encodings. The
//! bundle's [`EmotionModel`] is the real one; tests drive the engine with a fake.

use std::time::Duration;

use emoedge_models::Preprocessing;

use crate::model::{ClipResult, EmotionModel, FaceFeatures};
use crate::onnx::OnnxError;

pub trait EmotionBackend {
    /// Side S of the square crops the frame part takes.
    fn crop_size(&self) -> usize;
    /// T, the encodings per clip.
    fn clip_length(&self) -> usize;
    /// Labels in probability order.
    fn labels(&self) -> &[String];
    /// How crops become the frame part's input.
    fn preprocessing(&self) -> &Preprocessing;
    /// The frame part on `n` preprocessed crops, planar `[n, 3, S, S]`.
    fn frame_features(&mut self, faces: &[f32], n: usize) -> Result<Vec<FaceFeatures>, OnnxError>;
    /// The clip part on clips of exactly T encodings each.
    fn classify_clips(&mut self, clips: &[&[FaceFeatures]]) -> Result<Vec<ClipResult>, OnnxError>;
    /// Wall time spent in the frame and clip parts so far.
    fn busy(&self) -> (Duration, Duration);
}

impl EmotionBackend for EmotionModel {
    fn crop_size(&self) -> usize {
        self.manifest.crop_size
    }

    fn clip_length(&self) -> usize {
        self.manifest.clip_length
    }

    fn labels(&self) -> &[String] {
        &self.manifest.labels
    }

    fn preprocessing(&self) -> &Preprocessing {
        &self.manifest.preprocessing
    }

    fn frame_features(&mut self, faces: &[f32], n: usize) -> Result<Vec<FaceFeatures>, OnnxError> {
        EmotionModel::frame_features(self, faces, n)
    }

    fn classify_clips(&mut self, clips: &[&[FaceFeatures]]) -> Result<Vec<ClipResult>, OnnxError> {
        EmotionModel::classify_clips(self, clips)
    }

    fn busy(&self) -> (Duration, Duration) {
        (self.frame.busy, self.clip.busy)
    }
}
