//! `frame.onnx` in real ONNX Runtime against the reference forward, on random and real faces.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use emoedge_exporter::frame::frame_graph;
use emoedge_exporter::weights::Weights;
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, cpu};
use emoedge_runtime::onnx::{self, SessionOptions, open_session};
use ndarray::Array4;
use onnx_protobuf::Message;
use ort::value::TensorRef;

fn default_model() -> (Config, HybridModel) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default");
    let config = Config::load(dir.join("config.json")).unwrap();
    let model = HybridModel::load_safetensors(&config, dir.join("weights.safetensors"), &cpu()).unwrap();
    (config, model)
}

fn random_faces(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n * 3 * 64 * 64)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// Real face crops from a sample video, cut by the runtime and normalised as the model expects.
fn real_faces(n: usize) -> Vec<f32> {
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
        if frame.index % 30 != 0 {
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

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn frame_onnx_matches_the_reference_forward() {
    let (config, model) = default_model();
    let graph = frame_graph(&config, &Weights::of(&model).unwrap(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frame.onnx");
    std::fs::write(&path, graph.write_to_bytes().unwrap()).unwrap();
    let env = onnx::environment(None).unwrap();
    let mut session = open_session(env, &path, &SessionOptions::default()).unwrap().session;

    for (name, faces, batch) in [("random", random_faces(1, 1), 1), ("random", random_faces(7, 2), 7), ("real", real_faces(7), 7)] {
        let reference = model.forward_frame(Tensor::from_data(TensorData::new(faces.clone(), [batch, 3, 64, 64]), &cpu()));
        let input = Array4::from_shape_vec((batch, 3, 64, 64), faces).unwrap();
        let outputs = session.run(ort::inputs![TensorRef::from_array_view(&input).unwrap()]).unwrap();
        for (output, expected) in [
            ("general_tokens", reference.general_tokens.into_data()),
            ("emotion_tokens", reference.emotion_tokens.into_data()),
            ("pooled", reference.pooled.into_data()),
        ] {
            let (shape, got) = outputs[output].try_extract_tensor::<f32>().unwrap();
            assert_eq!(shape[0], batch as i64);
            let diff = max_diff(got, &expected.try_to_vec::<f32>().unwrap());
            assert!(diff <= 1e-4, "{name} batch {batch}: `{output}` differs by {diff}");
        }
    }
}
