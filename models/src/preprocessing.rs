//! How a face crop becomes the model's input. Trainer, exporter metadata and runtime all call
//! this one definition, so training and inference cannot drift apart.

use serde::{Deserialize, Serialize};

/// Per-channel normalisation of an RGB crop, planar (NCHW) layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Channel order of the input planes.
    pub colour_order: String,
    /// Applied as `(x / 255 - mean[c]) / std[c]`.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub layout: String,
    /// Context around the face detector's box, as a fraction of its longer side, in the square
    /// eye-levelled crop. 0 — the box itself — suits the encoder's FER2013-trained weights: on
    /// the crying part of WolfgangLanger_Pexels.mp4 (never trained on) fer read sad on 69% of
    /// frames at margin 0, 64% at 0.1 and 39% at 0.25 (`models/default/MODEL_CARD.md`).
    pub crop_margin: f32,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Self { colour_order: "RGB".into(), mean: [0.5; 3], std: [0.5; 3], layout: "NCHW".into(), crop_margin: 0.0 }
    }
}

impl Preprocessing {
    /// Writes one interleaved RGB8 crop (`side`×`side`×3) into `out` as 3 planes of `side`².
    ///
    /// `out` is caller-owned so that a runtime can fill a batch buffer without allocating.
    pub fn rgb8_to_planar(&self, rgb: &[u8], side: usize, out: &mut [f32]) {
        let plane = side * side;
        assert_eq!(rgb.len(), plane * 3, "crop must be {side}×{side} RGB8");
        assert_eq!(out.len(), plane * 3, "output must hold 3 planes of {side}×{side}");
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        for (i, pixel) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + i] = pixel[c] as f32 * scale[c] - shift[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb8_maps_to_minus_one_one_in_planar_order() {
        let rgb = [0u8, 255, 51];
        let mut out = [0.0f32; 3];
        Preprocessing::default().rgb8_to_planar(&rgb, 1, &mut out);
        assert_eq!(out[0], -1.0);
        assert_eq!(out[1], 1.0);
        assert!((out[2] - (51.0 / 127.5 - 1.0)).abs() < 1e-6);
        let mut two = [0.0f32; 12];
        let crop = [10u8, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];
        Preprocessing::default().rgb8_to_planar(&crop, 2, &mut two);
        // Plane R holds pixels' red values in order, then G, then B.
        let r: Vec<f32> = [10.0f32, 40.0, 70.0, 100.0].iter().map(|v| v / 127.5 - 1.0).collect();
        assert!(two[..4].iter().zip(&r).all(|(a, b)| (a - b).abs() < 1e-6));
        assert!((two[4] - (20.0 / 127.5 - 1.0)).abs() < 1e-6);
    }
}
