#![allow(dead_code)]
// Test helpers stop the test loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use emoedge_exporter::bundle::TrainedRun;
use emoedge_exporter::face_inputs::planar;
use emoedge_inference::onnx::{self, SessionOptions};
use emoedge_models::Config;
use emoedge_models::reference::HybridModel;
use emoedge_vision::capture::{CaptureOptions, FaceCapture};
use emoedge_vision::video::VideoSource;

pub fn write_model(dir: &Path, name: &str, model: &onnx_protobuf::ModelProto) -> PathBuf {
    use onnx_protobuf::Message;
    let path = dir.join(name);
    std::fs::write(&path, model.write_to_bytes().unwrap()).unwrap();
    path
}

pub fn session(path: &Path) -> ort::session::Session {
    let env = onnx::environment(None).unwrap();
    onnx::open_session(env, path, &SessionOptions::default()).unwrap().session
}

pub fn default_run_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default")
}

/// The committed default model with its quantization spec.
pub fn default_run() -> TrainedRun {
    TrainedRun::load(&default_run_dir()).unwrap()
}

pub fn default_model() -> (Config, HybridModel) {
    let run = default_run();
    (run.config, run.model)
}

pub fn random_faces(n: usize, seed: u64) -> Vec<f32> {
    emoedge_tests::test_values(n * 3 * 64 * 64, seed)
}

/// Up to `max` face crops of every `every`-th frame of the demo video, cut by the runtime's
/// face capture and normalised as the model expects.
fn demo_video_faces(every: u64, max: usize) -> Vec<f32> {
    let mut capture = FaceCapture::open(&CaptureOptions::new(emoedge_tests::detector_dir(), 64)).unwrap();
    let mut video = VideoSource::open(&emoedge_tests::media("WolfgangLanger_Pexels.mp4")).unwrap();
    let mut crops = Vec::new();
    while crops.len() < max {
        let Some(frame) = video.next_frame().unwrap() else { break };
        if frame.index % every == 0 {
            crops.extend(capture.process(&frame).unwrap().into_iter().map(|face| face.crop));
        }
    }
    crops.truncate(max);
    planar(&crops, 64).unwrap()
}

/// A folder as `emoedge faces VIDEO --out DIR` writes it (`index.jsonl` naming `crops/*.png`),
/// with the faces of the first `n` frames of the demo video.
pub fn faces_folder(dir: &Path, n: usize) -> PathBuf {
    let mut capture = FaceCapture::open(&CaptureOptions::new(emoedge_tests::detector_dir(), 64)).unwrap();
    let mut video = VideoSource::open(&emoedge_tests::media("WolfgangLanger_Pexels.mp4")).unwrap();
    std::fs::create_dir_all(dir.join("crops")).unwrap();
    let mut index = String::new();
    for _ in 0..n {
        let frame = video.next_frame().unwrap().unwrap();
        for face in capture.process(&frame).unwrap() {
            let crop = format!("crops/{:06}_t{}.png", face.frame, face.track);
            face.crop.save(dir.join(&crop)).unwrap();
            index += &format!("{}\n", serde_json::json!({ "frame": face.frame, "crop": crop }));
        }
    }
    std::fs::write(dir.join("index.jsonl"), index).unwrap();
    dir.to_path_buf()
}

/// Real face crops (every 8th frame of a sample video).
pub fn real_faces(n: usize) -> Vec<f32> {
    let faces = demo_video_faces(8, n);
    assert_eq!(faces.len(), n * 3 * 64 * 64);
    faces
}

/// Faces of a person the default model never saw nor was calibrated on: every 4th frame of the
/// demo video (crying, then laughing), 118 crops.
pub fn never_trained_faces() -> Vec<f32> {
    demo_video_faces(4, usize::MAX)
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
