//! Face capture over a video: detect, track, crop. The trainer's data preparation, the
//! exporter's parity tests, the CLI and the GStreamer element all run this, so every crop the
//! model ever sees is cut the same way.

use std::path::PathBuf;

use emoedge_inference::engine::TrackedCrop;
use emoedge_inference::onnx::{OnnxError, SessionOptions};
use image::RgbImage;

use crate::face::tracker::TrackerOptions;
use crate::face::{AlignedCrop, DetectorOptions, Face, IouTracker, Mtcnn, aligned_crop};
use crate::video::Frame;

/// One face of one frame, with its track and its model-ready crop.
#[derive(Debug, Clone)]
pub struct CapturedFace {
    pub frame: u64,
    pub pts_ns: Option<u64>,
    pub track: u64,
    pub face: Face,
    pub crop: RgbImage,
}

impl CapturedFace {
    /// The face as the emotion engine takes it.
    pub fn tracked_crop(&self) -> TrackedCrop<'_> {
        TrackedCrop { track: self.track, crop: &self.crop }
    }
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

    /// Assigns track ids to `faces` of `frame` and cuts their crops, in the order of `faces`.
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

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(
        "the MTCNN face detector (assets/mtcnn) was not found; run scripts/setup, pass --detector DIR, or use face-source=upstream"
    )]
    NoDetector,
    #[error(transparent)]
    Onnx(#[from] OnnxError),
}

/// How to build a [`FaceCapture`]; [`CaptureOptions::new`] has the defaults everyone uses.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Folder with `pnet.onnx`, `rnet.onnx`, `onet.onnx`; `None` = `assets/mtcnn` from scripts/setup.
    pub detector_dir: Option<PathBuf>,
    pub session: SessionOptions,
    pub detector: DetectorOptions,
    pub crop: AlignedCrop,
    pub tracker: TrackerOptions,
}

impl CaptureOptions {
    /// The default detector, tracker and sessions, cutting the model's crops at side `crop_size`.
    pub fn new(crop_size: u32) -> Self {
        Self {
            detector_dir: None,
            session: SessionOptions::default(),
            detector: DetectorOptions::default(),
            crop: AlignedCrop::new(crop_size),
            tracker: TrackerOptions::default(),
        }
    }
}

/// The runtime's own face capture: MTCNN, then [`CropTracker`].
pub struct FaceCapture {
    detector: Mtcnn,
    tracks: CropTracker,
}

impl FaceCapture {
    /// Loads the detector `options` name (or the one scripts/setup fetched).
    pub fn open(options: &CaptureOptions) -> Result<Self, CaptureError> {
        let dir = options.detector_dir.clone().or_else(emoedge_inference::assets::detector_dir);
        let dir = dir.ok_or(CaptureError::NoDetector)?;
        let detector = Mtcnn::load(&dir, &options.session, options.detector)?;
        Ok(Self { detector, tracks: CropTracker::new(options.crop, options.tracker) })
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
