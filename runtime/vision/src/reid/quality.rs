//! Which faces are good enough to embed: large, frontal by their landmarks, and sharp. A
//! profile or a blurred face embeds far from the same person's frontal face, and a wrong
//! embedding is how two people end up sharing an id.

use image::RgbImage;

use crate::face::Face;

/// What makes a face worth embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityGate {
    /// Smallest side of the face box in pixels.
    pub min_side: f32,
    /// Largest sideways offset of the nose from the eyes' midpoint, as a fraction of the eye
    /// distance (0 for a frontal face, about 0.5 and more in profile).
    pub max_yaw: f32,
    /// Smallest variance of the Laplacian of the grey identity crop (a blurred crop is flat).
    pub min_sharpness: f32,
}

impl Default for QualityGate {
    fn default() -> Self {
        Self { min_side: 40.0, max_yaw: 0.25, min_sharpness: 15.0 }
    }
}

/// How good one face is for identity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceQuality {
    pub side: f32,
    pub yaw: f32,
    pub sharpness: f32,
}

impl QualityGate {
    /// Whether `face` is large and frontal enough to be worth an identity crop: its box and
    /// landmarks only, before the crop's sharpness is measured.
    pub fn frames(&self, face: &Face) -> bool {
        let (side, yaw) = pose(face);
        self.admits_pose(side, yaw)
    }

    fn admits_pose(&self, side: f32, yaw: f32) -> bool {
        side >= self.min_side && yaw <= self.max_yaw
    }
}

impl FaceQuality {
    /// Measures `face` and its identity crop `crop`.
    pub fn of(face: &Face, crop: &RgbImage) -> Self {
        let (side, yaw) = pose(face);
        Self { side, yaw, sharpness: sharpness(crop) }
    }

    pub fn passes(&self, gate: &QualityGate) -> bool {
        gate.admits_pose(self.side, self.yaw) && self.sharpness >= gate.min_sharpness
    }
}

/// The face box's smaller side and the nose's sideways offset from the eyes' midpoint, along
/// the eye line (whatever the head's roll), as a fraction of the eye distance.
fn pose(face: &Face) -> (f32, f32) {
    let [left, right, nose, ..] = face.landmarks;
    let eye = [right[0] - left[0], right[1] - left[1]];
    let distance = (eye[0] * eye[0] + eye[1] * eye[1]).sqrt().max(1.0);
    let mid = [(left[0] + right[0]) / 2.0, (left[1] + right[1]) / 2.0];
    let along = ((nose[0] - mid[0]) * eye[0] + (nose[1] - mid[1]) * eye[1]) / distance;
    (face.bbox.width().min(face.bbox.height()), (along / distance).abs())
}

/// Variance of the 4-neighbour Laplacian of the crop's grey values.
fn sharpness(crop: &RgbImage) -> f32 {
    let (w, h) = (crop.width() as usize, crop.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let grey: Vec<f32> =
        crop.pixels().map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect();
    let mut values = Vec::with_capacity((w - 2) * (h - 2));
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let at = |x: usize, y: usize| grey[y * w + x];
            values.push(at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y));
        }
    }
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::BBox;

    fn face(nose_x: f32) -> Face {
        let bbox = BBox { x1: 0.0, y1: 0.0, x2: 100.0, y2: 100.0 };
        Face { bbox, score: 1.0, landmarks: [[30.0, 40.0], [70.0, 40.0], [nose_x, 60.0], [35.0, 80.0], [65.0, 80.0]] }
    }

    #[test]
    fn a_turned_head_and_a_flat_crop_fail_the_gate() {
        let checker = RgbImage::from_fn(112, 112, |x, y| {
            if (x / 4 + y / 4) % 2 == 0 { image::Rgb([0; 3]) } else { image::Rgb([255; 3]) }
        });
        let flat = RgbImage::from_pixel(112, 112, image::Rgb([128; 3]));
        let gate = QualityGate::default();
        assert!(FaceQuality::of(&face(50.0), &checker).passes(&gate));
        let turned = FaceQuality::of(&face(68.0), &checker);
        assert!(turned.yaw > 0.4 && !turned.passes(&gate), "{turned:?}");
        assert!(gate.frames(&face(50.0)) && !gate.frames(&face(68.0)));
        assert!(!FaceQuality::of(&face(50.0), &flat).passes(&gate));
    }
}
