//! How far `emoedge run` is from the limit, and from a Python script doing the same job with the
//! same models (`benches/python/baseline.py`), measured side by side in one run on the CPU
//! provider. For each video: (a) decoding + colour conversion alone, (b) decoding + the face
//! detector on every frame (MTCNN and BlazeFace), (c) the whole `emoedge run` at several
//! `--detect-interval`s and with BlazeFace, each with its result count and its agreement with
//! MTCNN detecting on every frame (same frame, box IoU ≥ 0.5: same label?), and (d) the Python
//! baseline (MTCNN, as the package ships it); (e) first, start-up: the whole process on a
//! one-frame video. (c) also runs without a face detector (`--face-source full-frame`: the frame
//! is the one face), the most any detector's run could reach. (c) at the default settings, with
//! re-identification, with BlazeFace, without a detector, at interval 1 and (d) run in alternation,
//! `EMOEDGE_BENCH_ROUNDS` rounds (default 3); their medians are compared. Wall times are whole
//! processes, start-up included. Prints Markdown.
//!
//! `cargo bench -p emoedge-cli --bench speed` (after `bash scripts/setup`)

// A benchmark is a program that stops on any failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_vision::analyzer::DEFAULT_DETECT_INTERVAL;
use emoedge_vision::face::{BBox, Detector, DetectorOptions, FaceDetector};
use emoedge_vision::video::{Frame, VideoSource};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde_json::Value;

/// One result line of `emoedge run`: frame time, box and label.
struct Labelled {
    pts_ns: u64,
    bbox: BBox,
    label: String,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn cpu() -> SessionOptions {
    SessionOptions { provider: Provider::Cpu, ..Default::default() }
}

/// `still` frozen into `frames` frames of 960×640 MPEG-4 at 30 frames/s.
fn frozen_video(still: &Path, frames: i32, out: &Path) {
    let pipeline = gst::Pipeline::new();
    let make = |name: &str| gst::ElementFactory::make(name).build().unwrap();
    let src = gst::ElementFactory::make("filesrc").property("location", still.to_str().unwrap()).build().unwrap();
    let scaled = gst::ElementFactory::make("capsfilter")
        .property("caps", gst::Caps::builder("video/x-raw").field("width", 960).field("height", 640).build())
        .build()
        .unwrap();
    let freeze = gst::ElementFactory::make("imagefreeze").property("num-buffers", frames).build().unwrap();
    let rate = gst::ElementFactory::make("capsfilter")
        .property("caps", gst::Caps::builder("video/x-raw").field("framerate", gst::Fraction::new(30, 1)).build())
        .build()
        .unwrap();
    let encode = emoedge_vision::video::mpeg4_encoder(4_000_000).unwrap();
    let sink = gst::ElementFactory::make("filesink").property("location", out.to_str().unwrap()).build().unwrap();
    let chain = [
        &src,
        &make("jpegdec"),
        &make("videoconvert"),
        &make("videoscale"),
        &scaled,
        &freeze,
        &rate,
        &make("videoconvert"),
        &encode,
        &make("mp4mux"),
        &sink,
    ];
    pipeline.add_many(chain).unwrap();
    gst::Element::link_many(chain).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let message = bus.timed_pop_filtered(gst::ClockTime::NONE, &[gst::MessageType::Eos, gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(matches!(message.map(|m| m.type_()), Some(gst::MessageType::Eos)), "cannot write {}", out.display());
}

/// (a) Frames/s of decoding and converting to RGB, the runtime's own video source.
fn decode_only(video: &Path) -> (u64, Duration) {
    let started = Instant::now();
    let mut source = VideoSource::open(video.to_str().unwrap()).unwrap();
    let (mut frames, mut frame) = (0, Frame::default());
    while source.next_frame_into(&mut frame).unwrap() {
        frames += 1;
    }
    (frames, started.elapsed())
}

/// (b) Decoding + `detector` on every frame: frames, faces found, wall time (opening included).
fn detect_only(video: &Path, detector: Detector) -> (u64, u64, Duration) {
    let root = emoedge_tests::workspace_root();
    let started = Instant::now();
    let mut detector = FaceDetector::load(&root.join(detector.folder()), &cpu(), DetectorOptions::default()).unwrap();
    let mut source = VideoSource::open(video.to_str().unwrap()).unwrap();
    let (mut frames, mut faces, mut frame) = (0, 0, Frame::default());
    while source.next_frame_into(&mut frame).unwrap() {
        frames += 1;
        faces += detector.detect(&frame.image).unwrap().len() as u64;
    }
    (frames, faces, started.elapsed())
}

/// (c) `emoedge run` at `interval` (and `extra` arguments): wall time, its results, and its
/// face embeddings with their time in ONNX Runtime (re-identification on).
fn emoedge(video: &Path, interval: u32, extra: &[&str], out: &Path) -> (Duration, Vec<Labelled>, Embedded) {
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .arg("run")
        .arg(video)
        .args(["--execution-provider", "cpu", "--detect-interval", &interval.to_string(), "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let wall = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = read_lines(&out.join("results.jsonl"), |v| {
        let b: Vec<f32> = v["bbox"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        Labelled {
            pts_ns: v["pts_ns"].as_u64().unwrap(),
            bbox: BBox { x1: b[0], y1: b[1], x2: b[0] + b[2], y2: b[1] + b[3] },
            label: v["label"].as_str().unwrap().into(),
        }
    });
    (wall, results, embedded(&String::from_utf8_lossy(&output.stdout)))
}

/// Faces embedded and the seconds it took, as `emoedge run` reports them.
#[derive(Debug, Clone, Copy, Default)]
struct Embedded {
    faces: u64,
    seconds: f64,
}

/// Reads `face embedder 0.22 s for 20 faces` from `emoedge run`'s summary.
fn embedded(stdout: &str) -> Embedded {
    let Some(at) = stdout.find("face embedder ") else { return Embedded::default() };
    let words: Vec<&str> = stdout[at..].split_whitespace().collect();
    Embedded { seconds: words[2].parse().unwrap_or(0.0), faces: words[5].parse().unwrap_or(0) }
}

/// (d) The Python baseline: wall time and its result count.
fn python(video: &Path, out: &Path) -> (Duration, usize) {
    let root = emoedge_tests::workspace_root();
    let results = out.join("python.jsonl");
    let started = Instant::now();
    let output = Command::new(root.join("assets/baseline/venv/bin/python"))
        .arg(root.join("runtime/cli/benches/python/baseline.py"))
        .arg(video)
        .arg(emoedge_tests::default_bundle())
        .arg(root.join("assets/mtcnn"))
        .arg("--results")
        .arg(&results)
        .output()
        .expect("the Python baseline runs (bash scripts/setup installs it)");
    let wall = started.elapsed();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (wall, read_lines(&results, |_| ()).len())
}

fn read_lines<T>(path: &Path, parse: impl Fn(&Value) -> T) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|line| parse(&serde_json::from_str(line).unwrap())).collect()
}

/// Of `reference`'s results, the share that `other` has too (same frame, box IoU ≥ 0.5) with the
/// same label, and the mean IoU of those boxes.
fn agreement(reference: &[Labelled], other: &[Labelled]) -> (f64, f64) {
    let (mut same, mut ious) = (0usize, Vec::new());
    for r in reference {
        let best = other
            .iter()
            .filter(|o| o.pts_ns == r.pts_ns)
            .map(|o| (f64::from(r.bbox.iou(&o.bbox)), o))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((overlap, o)) = best.filter(|(overlap, _)| *overlap >= 0.5) {
            ious.push(overlap);
            same += usize::from(o.label == r.label);
        }
    }
    let mean = if ious.is_empty() { 0.0 } else { ious.iter().sum::<f64>() / ious.len() as f64 };
    (same as f64 / reference.len().max(1) as f64, mean)
}

/// (e) What a run costs before and after its frames: `emoedge run` on a one-frame video, whole
/// process (loading ONNX Runtime and GStreamer, opening and checking every model, writing the
/// outputs), median of `rounds`.
fn start_up(root: &Path, rounds: usize, tmp: &Path) {
    let one = tmp.join("one_frame.mp4");
    frozen_video(&root.join("assets/media/single_face.jpg"), 1, &one);
    println!("| start-up and shut-down: `emoedge run` on a one-frame video | wall (s), median |");
    println!("|---|---:|");
    for (what, extra) in [("default", &[][..]), ("`--detector blazeface-back`", &["--detector", "blazeface-back"][..])]
    {
        let walls = (0..rounds.max(3))
            .map(|_| {
                let out = tempfile::tempdir().unwrap();
                emoedge(&one, DEFAULT_DETECT_INTERVAL, extra, out.path()).0.as_secs_f64()
            })
            .collect();
        println!("| {what} | {:.3} |", median(walls));
    }
    println!();
}

fn main() {
    gst::init().unwrap();
    let root = emoedge_tests::workspace_root();
    let rounds: usize = std::env::var("EMOEDGE_BENCH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let many = tmp.path().join("five_faces.mp4");
    frozen_video(&root.join("assets/media/multi_face.jpg"), 300, &many);
    let videos: [(&str, PathBuf); 2] = [
        ("WolfgangLanger_Pexels.mp4 (640×360, 1 face)", root.join("assets/media/WolfgangLanger_Pexels.mp4")),
        ("multi_face.jpg frozen, 300 frames (960×640, 5 faces)", many),
    ];
    let default = DEFAULT_DETECT_INTERVAL;
    start_up(&root, rounds, tmp.path());
    println!("rounds: {rounds}; wall = whole process, median of the rounds where marked");
    println!();
    println!(
        "| video | what | frames/s | faces/s (results/s) | wall (s) | results | labels = MTCNN on every frame | box IoU | vs Python |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, video) in &videos {
        let (frames, decode) = decode_only(video);
        let fps = |wall: f64| frames as f64 / wall;
        println!(
            "| {name} | (a) decode + colour conversion | {:.0} | | {:.2} | | | | |",
            fps(decode.as_secs_f64()),
            decode.as_secs_f64()
        );
        for detector in [Detector::Mtcnn, Detector::BlazefaceBack] {
            let (_, detected, detect) = detect_only(video, detector);
            let d = detect.as_secs_f64();
            println!(
                "| | (b) decode + face detector `{}`, every frame ({detected} faces) | {:.0} | {:.0} | {d:.2} | | | | |",
                detector.folder().rsplit('/').next().unwrap_or_default(),
                fps(d),
                detected as f64 / d
            );
        }
        // Paired rounds: Python, emoedge by default, with re-identification, with BlazeFace, and
        // detecting every frame (the reference).
        let blaze = ["--detector", "blazeface-back"];
        let (mut py, mut every, mut by_default, mut with_reid, mut with_blaze) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut py_results, mut reference, mut default_results, mut blaze_results) = (0, vec![], vec![], vec![]);
        let (mut reid_results, mut embeddings) = (Vec::new(), Embedded::default());
        let (mut undetected, mut undetected_results) = (Vec::new(), 0);
        for _ in 0..rounds {
            let out = tempfile::tempdir().unwrap();
            let (wall, results) = python(video, out.path());
            py.push(wall.as_secs_f64());
            py_results = results;
            let (wall, results, _) = emoedge(video, default, &[], out.path());
            by_default.push(wall.as_secs_f64());
            default_results = results;
            let (wall, results, embedded) = emoedge(video, default, &["--reid"], out.path());
            with_reid.push(wall.as_secs_f64());
            (reid_results, embeddings) = (results, embedded);
            let (wall, results, _) = emoedge(video, default, &blaze, out.path());
            with_blaze.push(wall.as_secs_f64());
            blaze_results = results;
            let (wall, results, _) = emoedge(video, 1, &[], out.path());
            every.push(wall.as_secs_f64());
            reference = results;
            let (wall, results, _) = emoedge(video, default, &["--face-source", "full-frame"], out.path());
            undetected.push(wall.as_secs_f64());
            undetected_results = results.len();
        }
        let python_wall = median(py);
        let faces = |results: usize, wall: f64| results as f64 / wall;
        let row = |what: String, wall: f64, results: &[Labelled]| {
            let (same, box_iou) = agreement(&reference, results);
            println!(
                "| | {what} | {:.0} | {:.0} | {wall:.2} | {} | {:.1}% | {box_iou:.3} | {:.1}× |",
                fps(wall),
                faces(results.len(), wall),
                results.len(),
                100.0 * same,
                python_wall / wall
            );
        };
        row("(c) `emoedge run --detect-interval 1`, median".into(), median(every), &reference);
        for interval in [2, 10] {
            let out = tempfile::tempdir().unwrap();
            let (wall, results, _) = emoedge(video, interval, &[], out.path());
            row(format!("(c) `emoedge run --detect-interval {interval}`"), wall.as_secs_f64(), &results);
        }
        let out = tempfile::tempdir().unwrap();
        let (wall, results, _) = emoedge(video, 1, &blaze, out.path());
        row("(c) `emoedge run --detector blazeface-back --detect-interval 1`".into(), wall.as_secs_f64(), &results);
        row("(c) `emoedge run --detector blazeface-back`, median".into(), median(with_blaze), &blaze_results);
        let (off, on) = (median(by_default), median(with_reid));
        row(format!("(c) `emoedge run` (default: `--detect-interval {default}`), median"), off, &default_results);
        row("(c) `emoedge run --reid` (re-identification on), median".into(), on, &reid_results);
        println!(
            "| | re-identification: {:+.1}% wall; {} faces embedded, {:.1} ms each in ONNX Runtime | | | | | | | |",
            100.0 * (on - off) / off,
            embeddings.faces,
            1e3 * embeddings.seconds / embeddings.faces.max(1) as f64
        );
        // Its one box is the whole frame: no agreement with MTCNN's boxes to show.
        let wall = median(undetected);
        println!(
            "| | (c) `emoedge run --face-source full-frame` (no face detector, one crop a frame: the ceiling), median | {:.0} | {:.0} | {wall:.2} | {undetected_results} | – | – | {:.1}× |",
            fps(wall),
            faces(undetected_results, wall),
            python_wall / wall
        );
        println!(
            "| | (d) Python baseline, median | {:.0} | {:.0} | {python_wall:.2} | {py_results} | | | 1.0× |",
            fps(python_wall),
            faces(py_results, python_wall)
        );
    }
}
