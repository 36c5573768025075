//! Clip manifests: JSON lines, one clip per line.
//!
//! ```json
//! {"crops": ["a/000.png", "a/001.png"], "label": "sad", "split": "train"}
//! {"crop_dir": "faces/crops", "soft": [0.1, 0.6, 0.1, 0.1, 0.05, 0.03, 0.02]}
//! {"video": "clip.mp4", "frames": [0, 120], "label": "happy", "split": "val"}
//! ```
//! Exactly one of `crops` / `crop_dir` / `video`, exactly one of `label` (an emotion name) /
//! `soft` (seven probabilities in canonical order) / `logits` (a teacher's seven logits in
//! canonical order, matched after centring). `split` defaults to `train`. Paths are
//! relative to the manifest. Faces of a `video` come from the runtime's face capture — the
//! same code that crops faces at inference — through the `video_crops` callback.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use emoedge_models::EMOTIONS;
use emoedge_models::labels::canonical_index;
use image::RgbImage;
use serde::Deserialize;

use super::{DataError, Example, Split, Target, io_error, load_crop, relative_to};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    crops: Option<Vec<String>>,
    crop_dir: Option<String>,
    video: Option<String>,
    /// `[first, end)` frame range of `video`.
    frames: Option<[u64; 2]>,
    label: Option<String>,
    soft: Option<Vec<f32>>,
    logits: Option<Vec<f32>>,
    split: Option<Split>,
}

/// Produces the face crops of `video` (frame range `[first, end)` if given), in time order.
pub type VideoCrops<'a> = dyn FnMut(&Path, Option<[u64; 2]>) -> Result<Vec<RgbImage>, String> + 'a;

pub fn read_manifest(path: &Path, size: u32, video_crops: &mut VideoCrops) -> Result<Vec<Example>, DataError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut examples = Vec::new();
    for (i, text) in std::io::BufReader::new(file).lines().enumerate() {
        let number = i + 1;
        let row = |problem: String| DataError::Row { path: shown.clone(), line: number, problem };
        let text = text.map_err(io_error(path))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| row(format!("not a manifest line ({e})")))?;
        let target = match (&line.label, &line.soft, &line.logits) {
            (Some(label), None, None) => Target::Hard(canonical_index(label).map_err(|e| row(e.to_string()))?),
            (None, None, Some(logits)) => {
                if logits.len() != EMOTIONS.len() || logits.iter().any(|z| !z.is_finite()) {
                    return Err(row(format!(
                        "`logits` must be {} finite numbers in the order {}",
                        EMOTIONS.len(),
                        EMOTIONS.join(", ")
                    )));
                }
                Target::Logits(logits.clone())
            }
            (None, Some(soft), None) => {
                let sum: f32 = soft.iter().sum();
                if soft.len() != EMOTIONS.len()
                    || soft.iter().any(|p| !(0.0..=1.0).contains(p))
                    || (sum - 1.0).abs() > 1e-3
                {
                    return Err(row(format!(
                        "`soft` must be {} probabilities summing to 1 in the order {}",
                        EMOTIONS.len(),
                        EMOTIONS.join(", ")
                    )));
                }
                Target::Soft(soft.clone())
            }
            _ => return Err(row("give exactly one of `label`, `soft` and `logits`".into())),
        };
        let (frames, source) = match (&line.crops, &line.crop_dir, &line.video) {
            (Some(crops), None, None) => {
                let files: Vec<PathBuf> = crops.iter().map(|c| relative_to(path, c)).collect();
                (load_all(&files, size, &row)?, files.first().map(|f| f.display().to_string()).unwrap_or_default())
            }
            (None, Some(dir), None) => {
                let dir = relative_to(path, dir);
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| row(format!("crop_dir {}: {e}", dir.display())))?
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "png" || x == "jpg" || x == "jpeg"))
                    .collect();
                files.sort();
                (load_all(&files, size, &row)?, dir.display().to_string())
            }
            (None, None, Some(video)) => {
                let video = relative_to(path, video);
                let crops =
                    video_crops(&video, line.frames).map_err(|e| row(format!("video {}: {e}", video.display())))?;
                let crops = crops.into_iter().map(|c| Arc::new(super::fit(c, size))).collect();
                (crops, video.display().to_string())
            }
            _ => return Err(row("give exactly one of `crops`, `crop_dir` and `video`".into())),
        };
        if frames.is_empty() {
            return Err(row("the clip has no frames (no crops, or no face found in the video)".into()));
        }
        examples.push(Example { frames, target, split: line.split.unwrap_or(Split::Train), source });
    }
    Ok(examples)
}

fn load_all(files: &[PathBuf], size: u32, row: &dyn Fn(String) -> DataError) -> Result<Vec<Arc<RgbImage>>, DataError> {
    files.iter().map(|f| load_crop(f, size).map(Arc::new).map_err(|e| row(e.to_string()))).collect()
}
