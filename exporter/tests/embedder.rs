//! The face embedders as `emoedge-export embedder` writes them, opened by the runtime: FP16
//! agrees with FP32 on real faces, embeddings are unit length, face-api's net computes what
//! face-api's own TensorFlow.js code computes, and what cannot be translated is an error naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_exporter::embedder::{source, write_embedder};
use emoedge_inference::embedder::{FaceEmbedder, cosine};
use emoedge_inference::model::Precision;
use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_tests::{assets, detector_dir, media};
use emoedge_vision::capture::{CaptureOptions, FaceCapture};
use emoedge_vision::face::identity_crop;
use emoedge_vision::video::VideoSource;

/// The identity crops (interleaved pixels) of every face in `multi_face.jpg`, for `embedder`.
fn faces(embedder: &FaceEmbedder) -> (Vec<f32>, usize) {
    let mut capture = FaceCapture::open(&CaptureOptions::new(detector_dir(), 64)).unwrap();
    let frame = VideoSource::open(&media("multi_face.jpg")).unwrap().next_frame().unwrap().unwrap();
    let found = capture.process(&frame).unwrap();
    let (side, template) = (embedder.side() as u32, embedder.template());
    let pixels =
        found.iter().flat_map(|f| identity_crop(&frame.image, &f.face, &template, side).into_raw()).map(f32::from);
    (pixels.collect(), found.len())
}

#[test]
fn each_embedder_runs_in_fp32_and_fp16_alike_with_unit_length_embeddings() {
    let cpu = SessionOptions { provider: Provider::Cpu, ..Default::default() };
    for (net, from) in [("faceapi", "reid/faceapi"), ("mobileface", "reid/tfjs")] {
        let out = tempfile::tempdir().unwrap();
        write_embedder(&source(net).unwrap(), &assets().join(from), out.path()).unwrap();
        let mut fp32 = FaceEmbedder::open(out.path(), Precision::Fp32, &cpu).unwrap();
        let mut fp16 = FaceEmbedder::open(out.path(), Precision::Fp16, &cpu).unwrap();
        let (pixels, n) = faces(&fp32);
        assert_eq!(n, 5, "the five of multi_face.jpg");
        let (a, b) = (fp32.embed(&pixels, n).unwrap(), fp16.embed(&pixels, n).unwrap());
        for (x, y) in a.iter().zip(&b) {
            let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{net}: unit length, got {norm}");
            assert!(cosine(x, y) > 0.999, "{net}: FP16 agrees with FP32 ({})", cosine(x, y));
        }
        // Five people: no two of them alike as one face is to itself.
        for i in 0..n {
            for j in i + 1..n {
                assert!(cosine(&a[i], &a[j]) < 0.99, "{net}: faces {i} and {j} are different people");
            }
        }
    }
}

/// face-api's own code (`@vladmandic/face-api` on TensorFlow.js's CPU backend, installed by
/// `scripts/setup` into `assets/reid/node`) on the five faces of `multi_face.jpg`: the
/// translation gives each face face-api's descriptor (up to length: ours are unit length), and
/// another face's descriptor it does not.
#[test]
fn the_faceapi_translation_computes_what_face_api_itself_computes() {
    let cpu = SessionOptions { provider: Provider::Cpu, ..Default::default() };
    let out = tempfile::tempdir().unwrap();
    write_embedder(&source("faceapi").unwrap(), &assets().join("reid/faceapi"), out.path()).unwrap();
    let mut ours = FaceEmbedder::open(out.path(), Precision::Fp32, &cpu).unwrap();
    let (pixels, n) = faces(&ours);
    let side = ours.side();
    let crops: Vec<_> = pixels
        .chunks(side * side * 3)
        .enumerate()
        .map(|(i, crop)| {
            let path = out.path().join(format!("crop{i}.rgb"));
            std::fs::write(&path, crop.iter().map(|&p| p as u8).collect::<Vec<u8>>()).unwrap();
            path
        })
        .collect();
    let output = std::process::Command::new("node")
        .arg(emoedge_tests::workspace_root().join("exporter/node/faceapi_reference.cjs"))
        .arg(assets().join("reid/node/node_modules"))
        .arg(assets().join("reid/faceapi"))
        .arg(side.to_string())
        .args(&crops)
        .output()
        .expect("Node.js runs face-api (scripts/setup installs it)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let reference: Vec<Vec<f32>> = serde_json::from_slice(&output.stdout).unwrap();
    let embedded = ours.embed(&pixels, n).unwrap();
    assert_eq!(reference.len(), n);
    let mut agreement = f32::INFINITY;
    for (i, mine) in embedded.iter().enumerate() {
        for (j, theirs) in reference.iter().enumerate() {
            let length = theirs.iter().map(|v| v * v).sum::<f32>().sqrt();
            let c = cosine(mine, &theirs.iter().map(|v| v / length).collect::<Vec<f32>>());
            if i == j {
                agreement = agreement.min(c);
                assert!(c > 0.99999, "face {i}: ours and face-api's agree ({c})");
            } else {
                assert!(c < 0.99, "face {i} is not face {j} ({c})");
            }
        }
    }
    eprintln!("ours vs face-api, lowest cosine of the {n} faces: {agreement:.7}");
}

#[test]
fn an_op_the_translator_does_not_know_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = serde_json::json!({
        "modelTopology": {"node": [
            {"name": "x", "op": "Placeholder"},
            {"name": "y", "op": "Erfinv", "input": ["x"]},
        ]},
        "weightsManifest": [],
    });
    std::fs::write(dir.path().join("mobilefacenet.json"), model.to_string()).unwrap();
    let out = dir.path().join("out");
    let e = write_embedder(&source("mobilefacenet").unwrap(), dir.path(), &out).unwrap_err();
    assert!(format!("{e:#}").contains("op Erfinv (node y) is not translated"), "{e:#}");
    assert!(!out.exists(), "nothing is written");
    assert!(source("facenet").unwrap_err().to_string().contains("known: faceapi, mobileface, mobilefacenet"));
}
