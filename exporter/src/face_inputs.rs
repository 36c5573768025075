//! Real parity inputs: face crops that the runtime's face capture cut from a video — the folder
//! `emoedge faces VIDEO --out DIR` writes (`DIR/index.jsonl` listing `crops/*.png` in frame
//! order) — and the clips they make. Reading crops from that folder keeps the exporter free of
//! GStreamer and the detector.

use std::path::Path;

use anyhow::Context;
use emoedge_models::Preprocessing;
use image::RgbImage;

use crate::check::Inputs;

/// `crops` as the model's input: planar `[n, 3, S, S]`, normalised as the model expects.
pub fn planar(crops: &[RgbImage], crop_size: usize) -> anyhow::Result<Vec<f32>> {
    let pre = Preprocessing::default();
    let plane = 3 * crop_size * crop_size;
    let mut out = vec![0.0f32; crops.len() * plane];
    for (crop, slot) in crops.iter().zip(out.chunks_exact_mut(plane)) {
        anyhow::ensure!(
            crop.dimensions() == (crop_size as u32, crop_size as u32),
            "a {}×{} crop where the model takes {crop_size}×{crop_size}; cut the faces with --crop-size {crop_size}",
            crop.width(),
            crop.height()
        );
        pre.rgb8_to_planar(crop.as_raw(), crop_size, slot);
    }
    Ok(out)
}

/// Up to `max` crops listed in `dir/index.jsonl` (the output of `emoedge faces`), in order.
pub fn read_faces(dir: &Path, max: usize) -> anyhow::Result<Vec<RgbImage>> {
    let index = dir.join("index.jsonl");
    let text = std::fs::read_to_string(&index).with_context(|| {
        format!("cannot read {}; write it with `emoedge faces VIDEO --out {}`", index.display(), dir.display())
    })?;
    let mut crops = Vec::new();
    for (n, line) in text.lines().filter(|l| !l.trim().is_empty()).take(max).enumerate() {
        let entry: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("{} line {}: not JSON", index.display(), n + 1))?;
        let file = entry["crop"]
            .as_str()
            .with_context(|| format!("{} line {}: no `crop` file named", index.display(), n + 1))?;
        let path = dir.join(file);
        let crop = image::open(&path).with_context(|| format!("cannot read the crop {}", path.display()))?;
        crops.push(crop.to_rgb8());
    }
    anyhow::ensure!(!crops.is_empty(), "{} lists no face; use a video that shows one", index.display());
    Ok(crops)
}

/// Every window of `t` consecutive crops (stride 1) as one clip, up to `max_clips`.
pub fn sliding_clips(name: &str, crops: &[f32], crop_size: usize, t: usize, max_clips: usize) -> Inputs {
    let plane = 3 * crop_size * crop_size;
    let n = crops.len() / plane;
    let clips = (n + 1).saturating_sub(t).min(max_clips);
    let faces = (0..clips).flat_map(|start| crops[start * plane..(start + t) * plane].iter().copied()).collect();
    Inputs { name: name.into(), faces, clips }
}
