#![allow(dead_code)]

use std::path::{Path, PathBuf};

use emoedge_exporter::bundle::Run;
use emoedge_exporter::video_inputs::face_crops;
use emoedge_models::Config;
use emoedge_models::reference::HybridModel;
use emoedge_runtime::onnx::{self, SessionOptions};

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
pub fn default_run() -> Run {
    Run::load(&default_run_dir()).unwrap()
}

pub fn default_model() -> (Config, HybridModel) {
    let run = default_run();
    (run.config, run.model)
}

pub fn random_faces(n: usize, seed: u64) -> Vec<f32> {
    emoedge_tests::test_values(n * 3 * 64 * 64, seed)
}

/// Real face crops (every 8th frame of a sample video), cut by the runtime and normalised as
/// the model expects.
pub fn real_faces(n: usize) -> Vec<f32> {
    let video = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/media/WolfgangLanger_Pexels.mp4");
    let faces = face_crops(&video, 64, 8, n).unwrap();
    assert_eq!(faces.len(), n * 3 * 64 * 64);
    faces
}

/// Every frame's face of the video that training never saw (models/default/MODEL_CARD.md).
/// Faces of a person the default model never saw nor was calibrated on: every 4th frame of the
/// demo video (crying, then laughing), 118 crops.
pub fn never_trained_faces() -> Vec<f32> {
    let video = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/media/WolfgangLanger_Pexels.mp4");
    face_crops(&video, 64, 4, usize::MAX).unwrap()
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
