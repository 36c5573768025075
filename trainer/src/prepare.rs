//! `emoedge-train data`: real faces → crops → teacher soft labels → a clip manifest.
//!
//! Faces are found, tracked and cut by the runtime's [`FaceCapture`] — the code that cuts them
//! at inference. Each face gives the student's S×S crop and a larger crop for the teachers;
//! every crop becomes a one-frame manifest line whose target is fer's logits (the student's
//! encoder is fer's; see `train::loss` for why logits), and every T consecutive captured frames
//! of a video track also become a clip line (windows overlapping by half) whose target is the
//! mean over its frames — so the clip part (gate
//! attention over T, position embedding, temporal pooling) learns from real motion, not only
//! from one crop repeated T times. Splits are per source: every frame of a held-out video is
//! held out. A `.npy` source is scikit-image's `lfw_subset` (already cropped faces).

use std::io::Write;
use std::path::{Path, PathBuf};

use emoedge_vision::capture::FaceCapture;
use emoedge_vision::face::aligned_crop;
use emoedge_vision::video::VideoSource;

use crate::data::lfw::read_lfw_faces;
use crate::data::{Split, fit};
use crate::teachers::{ENSEMBLE, Teachers, teacher_crop};

pub struct Source {
    pub path: PathBuf,
    pub split: Split,
}

pub struct Prepared {
    pub manifest: PathBuf,
    pub faces: usize,
    /// Clip lines of T consecutive frames (video sources only).
    pub clips: usize,
    pub per_split: [usize; 3],
}

/// Captures every `every`-th frame's faces of `sources` into `out` and labels them.
/// A captured face: its two crops, where it came from, and (for video) its track and frame.
pub struct Row {
    /// The student's S×S crop.
    pub student: PathBuf,
    /// The teachers' larger crop of the same face.
    pub teacher: PathBuf,
    pub split: Split,
    pub source: String,
    /// (track, frame index) in a video.
    pub track: Option<(u64, u64)>,
    /// Presentation time in a video.
    pub seconds: Option<f64>,
    /// The face box's longer side in the source, in pixels.
    pub side: f32,
}

/// Captures the faces of `sources` (every `every`-th frame) into `out/crops` (student) and
/// `out/teacher-crops`.
pub fn capture_sources(
    sources: &[Source],
    out: &Path,
    every: u64,
    capture: &mut FaceCapture,
    capture_size: u32,
) -> anyhow::Result<Vec<Row>> {
    let crops_dir = out.join("crops");
    let teacher_dir = out.join("teacher-crops");
    std::fs::create_dir_all(&crops_dir)?;
    std::fs::create_dir_all(&teacher_dir)?;
    let mut rows: Vec<Row> = Vec::new();
    let bar = crate::progress::bar(sources.len() as u64, "sources");
    for source in sources {
        let name = source.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        bar.set_message(format!("{name}: {} faces so far", rows.len()));
        if source.path.extension().is_some_and(|e| e == "npy") {
            // Already face crops (lfw_subset): no detection, just the two sizes.
            for (i, face) in read_lfw_faces(&source.path)?.into_iter().enumerate() {
                let rgb = image::DynamicImage::ImageLuma8(face).to_rgb8();
                let rgb_side = rgb.width().max(rgb.height()) as f32;
                let file = format!("{name}_{i:03}.png");
                let (student, teacher) = (crops_dir.join(&file), teacher_dir.join(&file));
                fit(rgb.clone(), capture_size).save(&student)?;
                fit(rgb, teacher_crop().size).save(&teacher)?;
                rows.push(Row {
                    student,
                    teacher,
                    split: source.split,
                    source: source.path.display().to_string(),
                    track: None,
                    seconds: None,
                    side: rgb_side,
                });
            }
            bar.inc(1);
            continue;
        }
        let mut video = VideoSource::open(&source.path.display().to_string())?;
        while let Some(frame) = video.next_frame()? {
            if frame.index % every != 0 {
                continue;
            }
            for face in capture.process(&frame)? {
                let file = format!("{name}_{:06}_t{}.png", face.frame, face.track);
                let (student, teacher) = (crops_dir.join(&file), teacher_dir.join(&file));
                face.crop.save(&student)?;
                aligned_crop(&frame.image, &face.face, teacher_crop()).save(&teacher)?;
                let (track, seconds) = (Some((face.track, face.frame)), face.pts_ns.map(|ns| ns as f64 / 1e9));
                rows.push(Row {
                    student,
                    teacher,
                    split: source.split,
                    source: source.path.display().to_string(),
                    track,
                    seconds,
                    side: face.face.bbox.width().max(face.face.bbox.height()),
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// Captures `sources` and labels every face with the teacher ensemble: `out/faces.jsonl` (one
/// line per face, one per window of T consecutive video frames) and `out/teachers.jsonl`.
pub fn prepare(
    sources: &[Source],
    out: &Path,
    every: u64,
    capture: &mut FaceCapture,
    capture_size: u32,
    clip_length: usize,
    teachers: &Teachers,
) -> anyhow::Result<Prepared> {
    let rows = capture_sources(sources, out, every, capture, capture_size)?;
    let teacher_crops: Vec<PathBuf> = rows.iter().map(|r| r.teacher.clone()).collect();
    let labels = teachers.label(&teacher_crops)?;
    let manifest = out.join("faces.jsonl");
    let mut lines = Vec::new();
    let mut detail = Vec::new();
    let mut per_split = [0usize; 3];
    let relative = |path: &Path| path.strip_prefix(out).unwrap_or(path).to_path_buf();
    for (row, label) in rows.iter().zip(&labels) {
        let crop = relative(&row.student);
        lines.push(serde_json::json!({ "crops": [crop], "logits": label.fer_logits, "split": row.split }).to_string());
        let mut line = serde_json::json!({ "crop": crop, "source": row.source, "ensemble": label.ensemble });
        for ((_, name), probs) in ENSEMBLE.iter().zip(&label.teachers) {
            line[*name] = serde_json::json!(probs);
        }
        detail.push(line.to_string());
        per_split[row.split as usize] += 1;
    }
    let windows = clip_windows(&rows, clip_length);
    for window in &windows {
        let logits: [f32; 7] =
            std::array::from_fn(|i| window.iter().map(|&r| labels[r].fer_logits[i]).sum::<f32>() / window.len() as f32);
        let crops: Vec<PathBuf> = window.iter().map(|&r| relative(&rows[r].student)).collect();
        lines.push(serde_json::json!({ "crops": crops, "logits": logits, "split": rows[window[0]].split }).to_string());
    }
    write_lines(&manifest, &lines)?;
    write_lines(&out.join("teachers.jsonl"), &detail)?;
    Ok(Prepared { manifest, faces: rows.len(), clips: windows.len(), per_split })
}

/// Windows of `t` consecutive captured frames of one video track (starting every `t / 2`
/// frames), as row indices in time order.
fn clip_windows(rows: &[Row], t: usize) -> Vec<Vec<usize>> {
    windows_every(rows, t, (t / 2).max(1))
}

/// Windows of `t` consecutive captured frames of one video track, starting every `step`.
pub fn windows_every(rows: &[Row], t: usize, step: usize) -> Vec<Vec<usize>> {
    let mut tracks: std::collections::BTreeMap<(&str, u64), Vec<(u64, usize)>> = Default::default();
    for (i, row) in rows.iter().enumerate() {
        if let Some((track, frame)) = row.track {
            tracks.entry((row.source.as_str(), track)).or_default().push((frame, i));
        }
    }
    let mut windows = Vec::new();
    for mut frames in tracks.into_values() {
        frames.sort_unstable();
        let mut start = 0;
        while start + t <= frames.len() {
            windows.push(frames[start..start + t].iter().map(|&(_, i)| i).collect());
            start += step;
        }
    }
    windows
}

fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let mut text = Vec::new();
    for line in lines {
        writeln!(text, "{line}")?;
    }
    emoedge_support::write_atomic(path, &text)?;
    Ok(())
}

/// The face crops of `video` in frame range `[first, end)` for a manifest's `video` line: per
/// frame, the face of the track seen most often (the clip's subject), cut by the runtime.
pub fn video_crops(
    capture: &mut FaceCapture,
    video: &Path,
    range: Option<[u64; 2]>,
) -> Result<Vec<image::RgbImage>, String> {
    let mut source = VideoSource::open(&video.display().to_string()).map_err(|e| e.to_string())?;
    let [first, end] = range.unwrap_or([0, u64::MAX]);
    let mut faces = Vec::new();
    while let Some(frame) = source.next_frame().map_err(|e| e.to_string())? {
        if frame.index >= end {
            break;
        }
        if frame.index >= first {
            faces.extend(capture.process(&frame).map_err(|e| e.to_string())?);
        }
    }
    let subject = most_seen(faces.iter().map(|f| f.track));
    Ok(faces.into_iter().filter(|f| Some(f.track) == subject).map(|f| f.crop).collect())
}

/// The track seen most often (the lowest id on a tie): a video's subject.
pub fn most_seen(tracks: impl Iterator<Item = u64>) -> Option<u64> {
    let mut counts = std::collections::HashMap::new();
    for track in tracks {
        *counts.entry(track).or_insert(0usize) += 1;
    }
    counts.into_iter().max_by_key(|&(track, n)| (n, std::cmp::Reverse(track))).map(|(t, _)| t)
}
