//! `emoedge faces`: face capture over a video, written as PNG crops plus an index.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use emoedge_models::Config;
use emoedge_support::{AtomicFile, FolderLock};
use emoedge_vision::analyzer::ranges;
use emoedge_vision::capture::{CaptureOptions, CapturedFace, FaceCapture};
use emoedge_vision::face::DetectorOptions;
use emoedge_vision::video::{Frame, SourceOptions, VideoSource};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::args::{DetectorArgs, InputArgs, OrtArgs, int_in};
use crate::interrupt::Interrupts;

#[derive(Args, Debug)]
pub struct FacesArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder for crops/ and index.jsonl.
    #[arg(long)]
    pub out: PathBuf,
    /// Process every N-th frame.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub every: u64,
    /// Smallest face side in pixels.
    #[arg(long, default_value_t = DetectorOptions::default().min_face_size as u32, value_parser = int_in(ranges::MIN_FACE_SIZE))]
    pub min_face_size: u32,
    /// Side of the square crops (the model's input size S).
    #[arg(long, default_value_t = Config::default().crop_size as u32, value_parser = int_in(ranges::CROP_SIZE))]
    pub crop_size: u32,
    #[command(flatten)]
    pub detector: DetectorArgs,
    /// Stop after this many processed frames (live sources run until stopped otherwise).
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Write only index.jsonl (boxes, landmarks, tracks): no face images.
    #[arg(long)]
    pub no_crops: bool,
    #[command(flatten)]
    pub ort: OrtArgs,
}

#[derive(Serialize)]
struct IndexLine<'a> {
    frame: u64,
    pts_ns: Option<u64>,
    track: u64,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    landmarks: &'a [[f32; 2]; 5],
    /// The crop's PNG, relative to the output folder (absent with `--no-crops`).
    #[serde(skip_serializing_if = "Option::is_none")]
    crop: Option<String>,
}

pub fn execute(args: FacesArgs) -> anyhow::Result<()> {
    // Held to the end of the run: a second run on this folder is refused, not interleaved.
    let _lock = FolderLock::acquire(&args.out)
        .with_context(|| format!("cannot use {} as the output folder", args.out.display()))?;
    args.ort.load_library()?;
    let options = CaptureOptions {
        session: args.ort.session_options(),
        detector: DetectorOptions { min_face_size: args.min_face_size as f32, ..DetectorOptions::default() },
        ..CaptureOptions::new(args.detector.dir()?, args.crop_size)
    };
    let mut capture = FaceCapture::open(&options)?;
    eprintln!("emoedge: face detector on execution provider: {}", capture.detector().provider());
    for reason in capture.detector().fallbacks() {
        eprintln!("emoedge:   passed over {reason}");
    }
    let mut video = args.input.open(SourceOptions::default())?;
    let crops_dir = (!args.no_crops).then(|| args.out.join("crops"));
    let folder = crops_dir.clone().unwrap_or_else(|| args.out.clone());
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create output folder {}; check permissions", folder.display()))?;
    let index_path = args.out.join("index.jsonl");
    let mut index =
        AtomicFile::create(&index_path).with_context(|| format!("cannot write {}", index_path.display()))?;
    let interrupts = Interrupts::install()?;
    let mut writer = BufWriter::new(index.file());
    let mut summary = Summary { frames: 0, faces: 0, tracks: 0, seconds: 1e-9 };
    let streamed =
        write_index(&args, &mut video, &mut capture, &interrupts, &mut writer, crops_dir.as_deref(), &mut summary);
    writer.flush().with_context(|| format!("cannot write {}", index_path.display()))?;
    drop(writer);
    // Whatever ended the stream, the crops written so far and their index lines stay together.
    if streamed.is_err() && summary.faces == 0 {
        return streamed;
    }
    index.commit().with_context(|| format!("cannot write {}", index_path.display()))?;
    streamed.map_err(|e| {
        anyhow::anyhow!("{e:#}; the {} faces found before it are kept in {}", summary.faces, index_path.display())
    })?;
    println!(
        "{} frames processed, {} faces in {} tracks, {:.1} s ({:.1} faces/s, {:.1} frames/s) → {}",
        summary.frames,
        summary.faces,
        summary.tracks,
        summary.seconds,
        summary.faces as f64 / summary.seconds,
        summary.frames as f64 / summary.seconds,
        index_path.display()
    );
    Ok(())
}

struct Summary {
    frames: u64,
    faces: u64,
    tracks: usize,
    seconds: f64,
}

/// Detects, crops and indexes until the video ends, `--max-frames` or an interrupt (which ends
/// the stream cleanly); `summary` counts what was written, also when an error stops it.
fn write_index(
    args: &FacesArgs,
    video: &mut VideoSource,
    capture: &mut FaceCapture,
    interrupts: &Interrupts,
    index: &mut impl Write,
    crops_dir: Option<&Path>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let progress = ProgressBar::no_length().with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut tracks = std::collections::BTreeSet::new();
    let mut stopping = false;
    let mut frame = Frame::default();
    loop {
        if !stopping && interrupts.requested() {
            stopping = true;
            progress.println("interrupted: ending the stream and writing the index (Ctrl-C again to quit at once)");
            video.stop();
        }
        if !video.next_frame_into(&mut frame)? {
            break;
        }
        if progress.length().is_none()
            && let Some(total) = video.estimated_frames()
        {
            progress.set_length(total);
        }
        progress.set_position(frame.index + 1);
        if frame.index % args.every != 0 {
            continue;
        }
        let captured = capture.process(&frame)?;
        for face in &captured {
            write_face(index, crops_dir, face)?;
            tracks.insert(face.track);
            summary.faces += 1;
            summary.tracks = tracks.len();
        }
        // Written: their pixel buffers are cut into again (no allocation per crop).
        capture.recycle(captured);
        summary.frames += 1;
        summary.seconds = start.elapsed().as_secs_f64().max(1e-9);
        progress.set_message(format!("{} faces, {} tracks", summary.faces, tracks.len()));
        if args.max_frames.is_some_and(|max| summary.frames >= max) {
            break;
        }
    }
    progress.finish_and_clear();
    Ok(())
}

/// Writes `captured`'s crop into `crops_dir` (none: no image) and its index line.
fn write_face(index: &mut impl Write, crops_dir: Option<&Path>, captured: &CapturedFace) -> anyhow::Result<()> {
    let crop = match crops_dir {
        Some(dir) => {
            let name = format!("{:06}_t{}.png", captured.frame, captured.track);
            let mut png = Vec::new();
            captured.crop.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            let path = dir.join(&name);
            emoedge_support::write_atomic(&path, &png).with_context(|| format!("cannot write {}", path.display()))?;
            Some(format!("crops/{name}"))
        }
        None => None,
    };
    let b = captured.face.bbox;
    let line = IndexLine {
        frame: captured.frame,
        pts_ns: captured.pts_ns,
        track: captured.track,
        bbox: [b.x1, b.y1, b.x2, b.y2],
        score: captured.face.score,
        landmarks: &captured.face.landmarks,
        crop,
    };
    serde_json::to_writer(&mut *index, &line)?;
    index.write_all(b"\n")?;
    Ok(())
}
