#![allow(dead_code)]

use std::path::{Path, PathBuf};

use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, cpu};
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

pub fn default_model() -> (Config, HybridModel) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default");
    let config = Config::load(dir.join("config.json")).unwrap();
    let model = HybridModel::load_safetensors(&config, dir.join("weights.safetensors"), &cpu()).unwrap();
    (config, model)
}

pub fn random_faces(n: usize, seed: u64) -> Vec<f32> {
    emoedge_tests::test_values(n * 3 * 64 * 64, seed)
}

/// Real face crops from a sample video, cut by the runtime and normalised as the model expects.
pub fn real_faces(n: usize) -> Vec<f32> {
    use emoedge_runtime::capture::FaceCapture;
    use emoedge_runtime::face::tracker::TrackerOptions;
    use emoedge_runtime::face::{AlignedCrop, DetectorOptions, Mtcnn};
    use emoedge_runtime::video::VideoSource;
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let env = onnx::environment(None).unwrap();
    let detector = Mtcnn::load(env, &assets.join("mtcnn"), &SessionOptions::default(), DetectorOptions::default()).unwrap();
    let mut capture = FaceCapture::new(detector, AlignedCrop::new(64), TrackerOptions::default());
    let mut video = VideoSource::open(assets.join("media/WolfgangLanger_Pexels.mp4").to_str().unwrap()).unwrap();
    let mut out = Vec::new();
    let pre = emoedge_models::Preprocessing::default();
    while out.len() < n * 3 * 64 * 64 {
        let frame = video.next_frame().unwrap().unwrap();
        if frame.index % 8 != 0 {
            continue;
        }
        for face in capture.process(&frame).unwrap() {
            let mut planar = vec![0.0f32; 3 * 64 * 64];
            pre.rgb8_to_planar(face.crop.as_raw(), 64, &mut planar);
            out.extend(planar);
        }
    }
    out.truncate(n * 3 * 64 * 64);
    out
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

