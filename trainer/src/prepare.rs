//! `emoedge-train data`: real faces → crops → teacher soft labels → a clip manifest.
//!
//! Faces are found, tracked and cut by the runtime's [`FaceCapture`] — the code that cuts them
//! at inference. Each face gives the student's S×S crop and a larger crop for the teachers;
//! every crop becomes a one-frame manifest line with the teachers' ensemble as its soft label.
//! Splits are per source: every frame of a held-out video is held out. A `.npy` source is
//! scikit-image's `lfw_subset` (already cropped faces).

use std::io::Write;
use std::path::{Path, PathBuf};

use emoedge_runtime::capture::FaceCapture;
use emoedge_runtime::face::aligned_crop;
use emoedge_runtime::video::VideoSource;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::lfw::read_lfw_faces;
use crate::data::{Split, fit};
use crate::teachers::{TEACHER_CROP, TeacherLabels, Teachers};

pub struct Source {
    pub path: PathBuf,
    pub split: Split,
}

pub struct Prepared {
    pub manifest: PathBuf,
    pub faces: usize,
    pub per_split: [usize; 3],
}

/// Captures every `every`-th frame's faces of `sources` into `out` and labels them.
pub fn prepare(
    sources: &[Source],
    out: &Path,
    every: u64,
    capture: &mut FaceCapture,
    capture_size: u32,
    teachers: &Teachers,
) -> anyhow::Result<Prepared> {
    let crops_dir = out.join("crops");
    let teacher_dir = out.join("teacher-crops");
    std::fs::create_dir_all(&crops_dir)?;
    std::fs::create_dir_all(&teacher_dir)?;
    let mut rows: Vec<(PathBuf, PathBuf, Split, String)> = Vec::new();
    let bar = ProgressBar::new(sources.len() as u64)
        .with_style(ProgressStyle::with_template("{bar:30} {pos}/{len} sources {msg}").expect("valid template"));
    for source in sources {
        let name = source.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        bar.set_message(format!("{name}: {} faces so far", rows.len()));
        if source.path.extension().is_some_and(|e| e == "npy") {
            // Already face crops (lfw_subset): no detection, just the two sizes.
            for (i, face) in read_lfw_faces(&source.path)?.into_iter().enumerate() {
                let rgb = image::DynamicImage::ImageLuma8(face).to_rgb8();
                let file = format!("{name}_{i:03}.png");
                let (student, teacher) = (crops_dir.join(&file), teacher_dir.join(&file));
                fit(rgb.clone(), capture_size).save(&student)?;
                fit(rgb, TEACHER_CROP.size).save(&teacher)?;
                rows.push((student, teacher, source.split, source.path.display().to_string()));
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
                aligned_crop(&frame.image, &face.face, TEACHER_CROP).save(&teacher)?;
                rows.push((student, teacher, source.split, source.path.display().to_string()));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let teacher_crops: Vec<PathBuf> = rows.iter().map(|r| r.1.clone()).collect();
    let labels = teachers.label(&teacher_crops)?;
    let manifest = out.join("faces.jsonl");
    let mut lines = Vec::new();
    let mut detail = Vec::new();
    let mut per_split = [0usize; 3];
    for ((student, _, split, source), label) in rows.iter().zip(&labels) {
        let crop = student.strip_prefix(out).unwrap_or(student);
        lines.push(serde_json::json!({ "crops": [crop], "soft": label.ensemble, "split": split }).to_string());
        detail.push(serde_json::json!({ "crop": crop, "source": source, "facex": label.facex, "fer": label.fer }).to_string());
        per_split[*split as usize] += 1;
    }
    write_lines(&manifest, &lines)?;
    write_lines(&out.join("teachers.jsonl"), &detail)?;
    Ok(Prepared { manifest, faces: rows.len(), per_split })
}

fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let mut text = Vec::new();
    for line in lines {
        writeln!(text, "{line}")?;
    }
    emoedge_models::write_atomic(path, &text)?;
    Ok(())
}

/// The ensemble's top-1, for summaries.
pub fn top(label: &TeacherLabels) -> usize {
    label.ensemble.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i)
}

/// The face crops of `video` in frame range `[first, end)` for a manifest's `video` line: per
/// frame, the face of the track seen most often (the clip's subject), cut by the runtime.
pub fn video_crops(capture: &mut FaceCapture, video: &Path, range: Option<[u64; 2]>) -> Result<Vec<image::RgbImage>, String> {
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
    let mut counts = std::collections::HashMap::new();
    for face in &faces {
        *counts.entry(face.track).or_insert(0usize) += 1;
    }
    let subject = counts.into_iter().max_by_key(|&(track, n)| (n, std::cmp::Reverse(track))).map(|(t, _)| t);
    Ok(faces.into_iter().filter(|f| Some(f.track) == subject).map(|f| f.crop).collect())
}
