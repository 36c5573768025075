//! The face embedders as `emoedge-export embedder` writes them, opened by the runtime: FP16
//! agrees with FP32 on real faces, embeddings are unit length, and what cannot be translated
//! is an error naming it.

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
