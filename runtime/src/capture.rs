//! Face capture over a video: detect, track, crop. The trainer's data preparation and the
//! GStreamer element both run this, so every crop the model ever sees is cut the same way.

use image::RgbImage;

use crate::face::tracker::TrackerOptions;
use crate::face::{AlignedCrop, Face, IouTracker, Mtcnn, aligned_crop};
use crate::onnx::OnnxError;
use crate::video::Frame;

/// One face of one frame, with its track and its model-ready crop.
pub struct CapturedFace {
    pub frame: u64,
    pub pts_ns: Option<u64>,
    pub track: u64,
    pub face: Face,
    pub crop: RgbImage,
}

pub struct FaceCapture {
    detector: Mtcnn,
    tracker: IouTracker,
    crop: AlignedCrop,
}

impl FaceCapture {
    pub fn new(detector: Mtcnn, crop: AlignedCrop, tracker: TrackerOptions) -> Self {
        Self { detector, tracker: IouTracker::new(tracker), crop }
    }

    pub fn detector(&self) -> &Mtcnn {
        &self.detector
    }

    /// Detects the faces of `frame`, assigns track ids and cuts their crops.
    pub fn process(&mut self, frame: &Frame) -> Result<Vec<CapturedFace>, OnnxError> {
        let faces = self.detector.detect(&frame.image)?;
        let tracks = self.tracker.update(&faces);
        Ok(faces
            .into_iter()
            .zip(tracks)
            .map(|(face, track)| CapturedFace {
                frame: frame.index,
                pts_ns: frame.pts_ns,
                track,
                crop: aligned_crop(&frame.image, &face, self.crop),
                face,
            })
            .collect())
    }
}
