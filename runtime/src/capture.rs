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

/// Track ids and model crops for faces found by anyone: the built-in detector, an upstream
/// element's region-of-interest metas, or the whole frame.
pub struct CropTracker {
    tracker: IouTracker,
    crop: AlignedCrop,
}

impl CropTracker {
    pub fn new(crop: AlignedCrop, tracker: TrackerOptions) -> Self {
        Self { tracker: IouTracker::new(tracker), crop }
    }

    /// Assigns track ids to `faces` of `frame` and cuts their crops.
    pub fn assign(&mut self, frame: &Frame, faces: Vec<Face>) -> Vec<CapturedFace> {
        let tracks = self.tracker.update(&faces);
        faces
            .into_iter()
            .zip(tracks)
            .map(|(face, track)| CapturedFace {
                frame: frame.index,
                pts_ns: frame.pts_ns,
                track,
                crop: aligned_crop(&frame.image, &face, self.crop),
                face,
            })
            .collect()
    }
}

/// The runtime's own face capture: MTCNN, then [`CropTracker`].
pub struct FaceCapture {
    detector: Mtcnn,
    tracks: CropTracker,
}

impl FaceCapture {
    pub fn new(detector: Mtcnn, crop: AlignedCrop, tracker: TrackerOptions) -> Self {
        Self { detector, tracks: CropTracker::new(crop, tracker) }
    }

    pub fn detector(&self) -> &Mtcnn {
        &self.detector
    }

    /// Detects the faces of `frame`, assigns track ids and cuts their crops.
    pub fn process(&mut self, frame: &Frame) -> Result<Vec<CapturedFace>, OnnxError> {
        let faces = self.detector.detect(&frame.image)?;
        Ok(self.tracks.assign(frame, faces))
    }
}
