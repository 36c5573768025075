//! Real parity inputs: face crops cut from a video by the runtime's own face capture, and the
//! clips they make.

use std::path::Path;

use anyhow::Context;
use emoedge_models::Preprocessing;
use emoedge_runtime::capture::FaceCapture;
use emoedge_runtime::face::tracker::TrackerOptions;
use emoedge_runtime::face::{AlignedCrop, DetectorOptions, Mtcnn};
use emoedge_runtime::onnx::{self, SessionOptions};
use emoedge_runtime::video::VideoSource;

use crate::check::Inputs;

/// Up to `max` preprocessed crops (planar, `S`×`S`) of the faces in every `every`-th frame of
/// `video`, in frame order.
pub fn face_crops(video: &Path, crop_size: usize, every: u64, max: usize) -> anyhow::Result<Vec<f32>> {
    let detector_dir =
        emoedge_runtime::assets::detector_dir().context("the MTCNN face detector is missing; run scripts/setup")?;
    let env = onnx::environment(None)?;
    let detector = Mtcnn::load(env, &detector_dir, &SessionOptions::default(), DetectorOptions::default())?;
    let mut capture = FaceCapture::new(detector, AlignedCrop::new(crop_size as u32), TrackerOptions::default());
    let shown = video.display().to_string();
    let mut source = VideoSource::open(&shown)?;
    let pre = Preprocessing::default();
    let plane = 3 * crop_size * crop_size;
    let mut out = Vec::new();
    while out.len() < max.saturating_mul(plane) {
        let Some(frame) = source.next_frame()? else { break };
        if frame.index % every != 0 {
            continue;
        }
        for face in capture.process(&frame)? {
            let mut planar = vec![0.0f32; plane];
            pre.rgb8_to_planar(face.crop.as_raw(), crop_size, &mut planar);
            out.extend(planar);
        }
    }
    out.truncate(max.saturating_mul(plane));
    anyhow::ensure!(!out.is_empty(), "no face found in {shown}; use a video that shows a face");
    Ok(out)
}

/// Every window of `t` consecutive crops (stride 1) as one clip, up to `max_clips`.
pub fn sliding_clips(name: &str, crops: &[f32], crop_size: usize, t: usize, max_clips: usize) -> Inputs {
    let plane = 3 * crop_size * crop_size;
    let n = crops.len() / plane;
    let clips = (n + 1).saturating_sub(t).min(max_clips);
    let faces = (0..clips).flat_map(|start| crops[start * plane..(start + t) * plane].iter().copied()).collect();
    Inputs { name: name.into(), faces, clips }
}
