//! Examples → tensors. A clip's T frames are T distinct crops in time order when it has that
//! many — a run at a random start and spacing when training, evenly spaced when evaluating — and
//! one augmentation moves the whole clip; a still image is one crop used T times, so the encoder
//! sees each distinct crop of a batch once and the clip part gathers them.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use emoedge_models::Preprocessing;
use emoedge_models::reference::{FrameFeatures, HybridModel, Taps};
use image::RgbImage;
use rand::RngExt;

use crate::augment::{Augment, Jitter};
use crate::data::{Example, Target};

pub struct Batch {
    /// Distinct crops [U, 3, S, S].
    pub frames: Tensor<4>,
    /// For each clip and time step, the row of `frames` [B·T].
    pub index: Tensor<1, Int>,
    /// The same rows, on the host.
    pub rows: Vec<usize>,
    pub clip_length: usize,
    pub targets: Vec<Target>,
}

/// Training or evaluation sampling.
pub enum Sampling<'a, R: RngExt> {
    Train { rng: &'a mut R, augment: &'a Augment },
    Eval,
}

pub fn make_batch<R: RngExt>(
    examples: &[&Example],
    clip_length: usize,
    sampling: &mut Sampling<R>,
    device: &Device,
) -> Batch {
    let mut crops: Vec<RgbImage> = Vec::new();
    let mut index = Vec::with_capacity(examples.len() * clip_length);
    for example in examples {
        let picks = pick_frames(example.frames.len(), clip_length, sampling);
        let jitter = match sampling {
            Sampling::Train { rng, augment } => augment.draw(*rng),
            Sampling::Eval => Jitter::IDENTITY,
        };
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        for pick in picks {
            let row = match chosen.iter().find(|(frame, _)| *frame == pick) {
                Some(&(_, row)) => row,
                None => {
                    let crop: &Arc<RgbImage> = &example.frames[pick];
                    crops.push(jitter.apply(crop));
                    chosen.push((pick, crops.len() - 1));
                    crops.len() - 1
                }
            };
            index.push(row as i64);
        }
    }
    Batch {
        frames: crops_tensor(&crops, device),
        rows: index.iter().map(|&r| r as usize).collect(),
        index: Tensor::from_data(TensorData::new(index, [examples.len() * clip_length]), device),
        clip_length,
        targets: examples.iter().map(|e| e.target.clone()).collect(),
    }
}

/// The frames of a clip of `available` crops, in time order: distinct when there are at least
/// `t` (training: spacing 1 up to [`MAX_SPACING`], random start; evaluation: evenly spaced over
/// the clip), else every crop, repeated evenly.
pub fn pick_frames<R: RngExt>(available: usize, t: usize, sampling: &mut Sampling<R>) -> Vec<usize> {
    let spread = |i: usize| (i * available) / t;
    match sampling {
        Sampling::Train { rng, .. } if available > t => {
            let widest = if t > 1 { MAX_SPACING.min((available - 1) / (t - 1)) } else { 1 };
            let spacing = rng.random_range(1..=widest);
            let start = rng.random_range(0..=available - 1 - spacing * (t - 1));
            (0..t).map(|i| start + i * spacing).collect()
        }
        _ => (0..t).map(spread).collect(),
    }
}

/// The widest spacing of a training clip's frames, in captured frames: enough to vary the
/// clip's tempo, little enough that a manifest's clip still shows one expression.
pub const MAX_SPACING: usize = 3;

/// Normalised planar crops [N, 3, S, S], as `Preprocessing` defines them.
pub fn crops_tensor(crops: &[RgbImage], device: &Device) -> Tensor<4> {
    let side = crops.first().map_or(0, |c| c.width() as usize);
    let plane = 3 * side * side;
    let mut data = vec![0.0f32; crops.len() * plane];
    let pre = Preprocessing::default();
    for (crop, out) in crops.iter().zip(data.chunks_exact_mut(plane)) {
        pre.rgb8_to_planar(crop.as_raw(), side, out);
    }
    Tensor::from_data(TensorData::new(data, [crops.len(), 3, side, side]), device)
}

/// The frame part on the batch's distinct crops, gathered into clips.
pub fn clip_features(model: &HybridModel, batch: &Batch, taps: &Taps) -> emoedge_models::reference::ClipFeatures {
    let features = model.forward_frame_tapped(batch.frames.clone(), taps);
    let gathered = FrameFeatures {
        general_tokens: features.general_tokens.select(0, batch.index.clone()),
        emotion_tokens: features.emotion_tokens.select(0, batch.index.clone()),
        pooled: features.pooled.select(0, batch.index.clone()),
    };
    gathered.into_clips(batch.clip_length)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::data::Split;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    proptest! {
        #[test]
        fn a_clip_shows_distinct_frames_in_time_order_when_it_has_them(
            available in 1usize..200, t in 1usize..17, seed: u64, train: bool
        ) {
            let (mut rng, augment) = (ChaCha8Rng::seed_from_u64(seed), Augment::default());
            let mut sampling = if train { Sampling::Train { rng: &mut rng, augment: &augment } } else { Sampling::Eval };
            let picks = pick_frames(available, t, &mut sampling);
            prop_assert_eq!(picks.len(), t);
            prop_assert!(picks.iter().all(|&p| p < available));
            prop_assert!(picks.windows(2).all(|w| w[0] <= w[1]), "{:?}", picks);
            if available >= t {
                prop_assert!(picks.windows(2).all(|w| w[0] < w[1]), "repeated frame: {:?}", picks);
            }
            if train && available > t {
                let spacing = picks.get(1).map_or(1, |second| second - picks[0]);
                prop_assert!(picks.windows(2).all(|w| w[1] - w[0] == spacing), "{:?}", picks);
                prop_assert!(spacing <= MAX_SPACING, "{:?}", picks);
            } else {
                // Short clips and evaluation: every crop is used, spread evenly.
                let used: std::collections::BTreeSet<_> = picks.iter().collect();
                prop_assert_eq!(used.len(), available.min(t));
            }
        }
    }

    #[test]
    fn one_augmentation_moves_the_whole_clip() {
        // Eight different frames of one clip that differ only in a marker pixel: after
        // augmentation they must still differ only there — the same flip, warp and colour.
        let base = RgbImage::from_fn(48, 48, |x, y| image::Rgb([(x * 5) as u8, (y * 5) as u8, ((x + y) * 2) as u8]));
        let frames = (0..8u8)
            .map(|i| {
                let mut frame = base.clone();
                frame.put_pixel(24, 24, image::Rgb([i * 30, 0, 0]));
                Arc::new(frame)
            })
            .collect();
        let example = Example { frames, target: Target::Hard(0), split: Split::Train, source: "clip".into() };
        let (augment, device) = (Augment::default(), emoedge_models::reference::cpu());
        for seed in 0..8 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let batch = make_batch(&[&example], 8, &mut Sampling::Train { rng: &mut rng, augment: &augment }, &device);
            assert_eq!(batch.rows, (0..8).collect::<Vec<_>>(), "eight distinct frames, once each");
            let data = batch.frames.into_data().try_to_vec::<f32>().unwrap();
            let plane = data.len() / 8;
            let (first, last) = (&data[..plane], &data[7 * plane..]);
            let differing = first.iter().zip(last).filter(|(a, b)| (*a - *b).abs() > 1e-6).count();
            // The marker, smeared by the warp's interpolation over a few pixels in 3 channels.
            assert!(differing > 0 && differing < 3 * 16, "seed {seed}: {differing} values differ");
        }
    }
}
