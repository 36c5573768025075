//! Face capture: the face detector ([`detector`]: MTCNN, or BlazeFace proposing for MTCNN's
//! O-Net, [`blazeface`]), aligned crops for the model ([`align`]) and an
//! IoU tracker that gives faces track ids across frames ([`tracker`]). The trainer's data
//! preparation uses this same code, so training and inference see identically cropped faces.

pub mod align;
pub mod blazeface;
pub mod detector;
mod resample;
pub mod tracker;

use serde::{Deserialize, Serialize};

pub use align::{AlignedCrop, aligned_crop, aligned_crop_reusing, identity_crop, warp_affine, warp_square};
pub use detector::{Detector, DetectorOptions, FaceDetector};
pub use tracker::{IouTracker, Track};

/// An axis-aligned box in pixels: `x1, y1` top-left, `x2, y2` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// Intersection over union.
    pub fn iou(&self, other: &BBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    pub bbox: BBox,
    /// The detector's confidence in [0, 1].
    pub score: f32,
    /// Left eye, right eye, nose, left mouth corner, right mouth corner (image left/right).
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    /// A face known only by its box (an upstream detector's region of interest, or the whole
    /// frame): score 1 and landmarks of an upright face, so its crop is not rotated.
    pub fn from_box(bbox: BBox) -> Self {
        let at = |fx: f32, fy: f32| [bbox.x1 + fx * bbox.width(), bbox.y1 + fy * bbox.height()];
        Self { bbox, score: 1.0, landmarks: [at(0.3, 0.4), at(0.7, 0.4), at(0.5, 0.6), at(0.35, 0.8), at(0.65, 0.8)] }
    }
}

/// A failed network call of `model`, as the detectors report it.
pub(crate) fn run_error(model: &str, e: impl std::fmt::Display) -> emoedge_inference::onnx::OnnxError {
    emoedge_inference::onnx::OnnxError::Run { model: model.to_string(), message: e.to_string() }
}
