//! Face capture over a video: detect, track, crop. The trainer's data preparation, the
//! exporter's parity tests, the CLI and the GStreamer element all run this, so every crop the
//! model ever sees is cut the same way.

use std::path::PathBuf;

use emoedge_inference::bundle::BundleError;
use emoedge_inference::engine::TrackedCrop;
use emoedge_inference::onnx::{OnnxError, SessionOptions};
use image::RgbImage;

use crate::face::tracker::TrackerOptions;
use crate::face::{AlignedCrop, BBox, DetectorOptions, Face, FaceDetector, IouTracker, aligned_crop_reusing};
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
    /// Pixel buffers of crops handed back with [`Self::recycle`], cut into again: a stream
    /// allocates no crop per face and frame.
    spare: Vec<Vec<u8>>,
}

/// The most crop buffers kept for reuse: a crowd that left does not hold its crops' memory.
const MAX_SPARE: usize = 64;

impl CropTracker {
    pub fn new(crop: AlignedCrop, tracker: TrackerOptions) -> Self {
        Self { tracker: IouTracker::new(tracker), crop, spare: Vec::new() }
    }

    /// Assigns track ids to `faces` of `frame` and cuts their crops, in the order of `faces`.
    pub fn assign(&mut self, frame: &Frame, faces: Vec<Face>) -> Vec<CapturedFace> {
        let tracks = self.tracker.update(&faces);
        faces
            .into_iter()
            .zip(tracks)
            .map(|(face, track)| {
                let buffer = self.spare.pop().unwrap_or_default();
                CapturedFace {
                    frame: frame.index,
                    pts_ns: frame.pts_ns,
                    track,
                    crop: aligned_crop_reusing(&frame.image, &face, self.crop, buffer),
                    face,
                }
            })
            .collect()
    }

    /// Takes back faces that [`Self::assign`] returned, once their crops are no longer needed:
    /// the next frames' crops are cut into the same memory.
    pub fn recycle(&mut self, faces: Vec<CapturedFace>) {
        let room = MAX_SPARE.saturating_sub(self.spare.len());
        self.spare.extend(faces.into_iter().take(room).map(|f| f.crop.into_raw()));
    }

    /// The ids of the tracks alive now (seen, or missed for fewer frames than the tracker waits).
    pub fn live_tracks(&self) -> Vec<u64> {
        self.tracker.tracks().iter().map(|t| t.id).collect()
    }

    /// The boxes of the tracks that had a face in the last frame.
    pub fn current_boxes(&self) -> Vec<BBox> {
        self.tracker.tracks().iter().filter(|t| t.missed == 0).map(|t| t.bbox).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Detector(#[from] BundleError),
}

/// How to build a [`FaceCapture`]; [`CaptureOptions::new`] has the defaults everyone uses.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// The detector folder: MTCNN's `pnet.onnx`, `rnet.onnx`, `onet.onnx` (`assets/detectors/mtcnn` from
    /// scripts/setup) or one `emoedge-export detector` wrote (`assets/detectors/blazeface`).
    pub detector_dir: PathBuf,
    pub session: SessionOptions,
    pub detector: DetectorOptions,
    pub crop: AlignedCrop,
    pub tracker: TrackerOptions,
    /// Run the full detector every N-th frame and follow the faces found with O-Net alone in
    /// between (1 = detect on every frame, what training data is cut with).
    pub detect_interval: u32,
}

impl CaptureOptions {
    /// The detector in `detector_dir` with the default tracker and sessions, cutting the
    /// model's crops at side `crop_size`.
    pub fn new(detector_dir: PathBuf, crop_size: u32) -> Self {
        Self {
            detector_dir,
            session: SessionOptions::default(),
            detector: DetectorOptions::default(),
            crop: AlignedCrop::new(crop_size),
            tracker: TrackerOptions::default(),
            detect_interval: 1,
        }
    }
}

/// The runtime's own face capture: the face detector, then [`CropTracker`]. Like DeepStream's
/// `nvinfer` `interval` with a tracker, the full detector (P-Net's pyramid and R-Net, or
/// BlazeFace, then O-Net) runs every
/// `detect_interval`-th frame; in between, each face of the last frame is followed with O-Net on
/// its last box, which moves the box with the face and renews its landmarks at a fraction of the
/// cost. A face that O-Net loses, or two faces that collapse onto one, make that frame a
/// detection frame at once. While no face is tracked the detector runs on every frame; a face
/// entering beside tracked ones waits for the next detection frame.
pub struct FaceCapture {
    detector: FaceDetector,
    tracks: CropTracker,
    detect_interval: u32,
    /// Frames since the last full detection.
    since_detection: u32,
    detections: u64,
}

impl FaceCapture {
    /// Loads the detector `options` name.
    pub fn open(options: &CaptureOptions) -> Result<Self, CaptureError> {
        let detector = FaceDetector::load(&options.detector_dir, &options.session, options.detector)?;
        Ok(Self {
            detector,
            tracks: CropTracker::new(options.crop, options.tracker),
            detect_interval: options.detect_interval.max(1),
            since_detection: 0,
            detections: 0,
        })
    }

    pub fn detector(&self) -> &FaceDetector {
        &self.detector
    }

    /// The tracks of the faces found so far.
    pub fn tracks(&self) -> &CropTracker {
        &self.tracks
    }

    /// Frames on which the full detector ran so far.
    pub fn detections(&self) -> u64 {
        self.detections
    }

    /// Takes back faces that [`Self::process`] returned (see [`CropTracker::recycle`]).
    pub fn recycle(&mut self, faces: Vec<CapturedFace>) {
        self.tracks.recycle(faces);
    }

    /// Finds the faces of `frame` (detected or followed), assigns track ids and cuts their crops.
    pub fn process(&mut self, frame: &Frame) -> Result<Vec<CapturedFace>, OnnxError> {
        let faces = match self.follow(frame)? {
            Some(faces) => faces,
            None => {
                self.since_detection = 0;
                self.detections += 1;
                self.detector.detect(&frame.image)?
            }
        };
        self.since_detection += 1;
        Ok(self.tracks.assign(frame, faces))
    }

    /// The last frame's faces followed into `frame`; `None` when this frame needs the detector.
    fn follow(&mut self, frame: &Frame) -> Result<Option<Vec<Face>>, OnnxError> {
        if self.detections == 0 || self.since_detection >= self.detect_interval {
            return Ok(None);
        }
        let previous = self.tracks.current_boxes();
        if previous.is_empty() {
            // Nothing to follow: look on every frame, so a face entering an empty view gets
            // its results without waiting for the next detection frame.
            return Ok(None);
        }
        let followed: Option<Vec<Face>> = self.detector.follow(&frame.image, &previous)?.into_iter().collect();
        let Some(faces) = followed else { return Ok(None) };
        let collapsed = faces.iter().enumerate().any(|(i, a)| faces[i + 1..].iter().any(|b| a.bbox.iou(&b.bbox) > 0.5));
        Ok((!collapsed).then_some(faces))
    }
}
