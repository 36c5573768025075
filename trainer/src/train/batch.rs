//! Examples → tensors. A clip's T frames are sampled from its crops (random and sorted when
//! training, evenly spaced when evaluating); a still image is one crop used T times, so the
//! encoder sees each distinct crop of a batch once and the clip part gathers them.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use emoedge_models::Preprocessing;
use emoedge_models::reference::{FrameFeatures, HybridModel, Taps};
use image::RgbImage;
use rand::RngExt;

use crate::augment::Augment;
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
        // One augmentation per distinct crop of the clip keeps a clip's frames consistent.
        let mut chosen: Vec<(usize, usize)> = Vec::new();
        for pick in picks {
            let row = match chosen.iter().find(|(frame, _)| *frame == pick) {
                Some(&(_, row)) => row,
                None => {
                    let crop: &Arc<RgbImage> = &example.frames[pick];
                    crops.push(match sampling {
                        Sampling::Train { rng, augment } => augment.apply(crop, *rng),
                        Sampling::Eval => (**crop).clone(),
                    });
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

fn pick_frames<R: RngExt>(available: usize, t: usize, sampling: &mut Sampling<R>) -> Vec<usize> {
    match sampling {
        Sampling::Train { rng, .. } => {
            let mut picks: Vec<usize> = (0..t).map(|_| rng.random_range(0..available)).collect();
            picks.sort_unstable();
            picks
        }
        Sampling::Eval => (0..t).map(|i| (i * available) / t).collect(),
    }
}

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
