#![allow(dead_code)]

use std::path::PathBuf;

use emoedge_runtime::capture::FaceCapture;
use emoedge_runtime::face::tracker::TrackerOptions;
use emoedge_runtime::face::{AlignedCrop, DetectorOptions, Mtcnn};
use emoedge_runtime::onnx::{self, SessionOptions};
use emoedge_runtime::video::VideoSource;

pub fn assets() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    assert!(dir.join("mtcnn/pnet.onnx").is_file(), "assets are missing: run scripts/setup first");
    dir
}

pub fn media(name: &str) -> String {
    assets().join("media").join(name).display().to_string()
}

pub fn capture() -> FaceCapture {
    let env = onnx::environment(None).expect("scripts/setup provides ONNX Runtime");
    let detector = Mtcnn::load(env, &assets().join("mtcnn"), &SessionOptions::default(), DetectorOptions::default())
        .expect("detector loads");
    FaceCapture::new(detector, AlignedCrop::new(64), TrackerOptions::default())
}

/// Track ids of the faces found in each frame of `video`.
pub fn tracks_per_frame(video: &str) -> Vec<Vec<u64>> {
    let mut capture = capture();
    let mut source = VideoSource::open(video).expect("video opens");
    let mut frames = Vec::new();
    while let Some(frame) = source.next_frame().expect("video decodes") {
        frames.push(capture.process(&frame).expect("capture runs").into_iter().map(|f| f.track).collect());
    }
    frames
}

/// The committed default model bundle.
pub fn bundle() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/default/bundle")
}

/// GStreamer initialised with `emotiondetect` registered in-process.
pub fn gst_init() {
    gstreamer::init().unwrap();
    let _ = onnx::environment(None).expect("scripts/setup provides ONNX Runtime");
    emoedge_runtime::emotiondetect::register(None).unwrap();
}

/// Copies a bundle folder to a temp dir so that a test can damage it.
pub fn bundle_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in walk(&bundle()) {
        let relative = entry.strip_prefix(bundle()).unwrap();
        let target = dir.path().join(relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
    dir
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}
