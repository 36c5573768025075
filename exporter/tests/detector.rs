//! The face detectors as `emoedge-export detector` writes them: the BlazeFace translation
//! computes what BlazeFace's own TensorFlow.js graph computes (run by TensorFlow.js in Node.js,
//! installed by `scripts/setup` into `assets/reid/node`), in FP32 and, within FP16's precision,
//! in FP16; the folder lists every file with its checksum.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_exporter::detector::{detector_source, write_detector};
use emoedge_inference::onnx::{self, Provider, SessionOptions, open_session};
use emoedge_models::io::{DETECTOR_PIXELS, DETECTOR_REGRESSIONS, DETECTOR_SCORES};
use emoedge_models::manifest::{DetectorManifest, Variant, sha256_hex};
use emoedge_tests::{assets, media};
use emoedge_vision::video::VideoSource;
use ort::value::TensorRef;

/// `multi_face.jpg` (five faces) squeezed to `side`×`side`, interleaved RGB bytes.
fn pixels(side: u32) -> Vec<u8> {
    let frame = VideoSource::open(&media("multi_face.jpg")).unwrap().next_frame().unwrap().unwrap();
    image::imageops::resize(&frame.image, side, side, image::imageops::FilterType::Triangle).into_raw()
}

/// The graph `file` on `pixels`: (scores, regressions).
fn run(file: &std::path::Path, side: usize, pixels: &[u8]) -> (Vec<f32>, Vec<f32>) {
    let cpu = SessionOptions { provider: Provider::Cpu, ..Default::default() };
    let mut session = open_session(onnx::environment(None).unwrap(), file, &cpu).unwrap();
    let input: Vec<f32> = pixels.iter().map(|&p| f32::from(p)).collect();
    let tensor = TensorRef::from_array_view(([1, side, side, 3], input.as_slice())).unwrap();
    session
        .run(ort::inputs![DETECTOR_PIXELS => tensor], |outputs| {
            let read = |name: &str| outputs[name].try_extract_tensor::<f32>().unwrap().1.to_vec();
            Ok((read(DETECTOR_SCORES), read(DETECTOR_REGRESSIONS)))
        })
        .unwrap()
}

#[derive(serde::Deserialize)]
struct Reference {
    scores: Vec<f32>,
    regressions: Vec<f32>,
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn the_blazeface_translation_computes_what_its_tensorflow_js_graph_computes() {
    let source = detector_source("blazeface-back").unwrap();
    let out = tempfile::tempdir().unwrap();
    let manifest_path =
        write_detector(&source, &assets().join("detectors/tfjs"), &assets().join("mtcnn/onet.onnx"), out.path())
            .unwrap();
    let manifest: DetectorManifest = serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    for entry in manifest.variants.values().chain([&manifest.refiner]) {
        let bytes = std::fs::read(out.path().join(&entry.file)).unwrap();
        assert_eq!((bytes.len() as u64, sha256_hex(bytes.as_slice()).unwrap()), (entry.bytes, entry.sha256.clone()));
    }
    let side = manifest.side;
    let image = pixels(side as u32);
    let input = out.path().join("pixels.rgb");
    std::fs::write(&input, &image).unwrap();
    let output = std::process::Command::new("node")
        .arg(emoedge_tests::workspace_root().join("exporter/node/blazeface_reference.cjs"))
        .arg(assets().join("reid/node/node_modules"))
        .arg(assets().join("detectors/tfjs").join(source.model_json))
        .arg(&input)
        .arg(side.to_string())
        .output()
        .expect("Node.js runs TensorFlow.js (scripts/setup installs it)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // TensorFlow.js prints a banner on stdout before the JSON.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reference: Reference = serde_json::from_str(&stdout[stdout.find('{').unwrap()..]).unwrap();
    assert_eq!(reference.scores.len(), manifest.anchor_count());

    let file = |v: Variant| out.path().join(&manifest.variants[&v].file);
    let (scores, regressions) = run(&file(Variant::Fp32), side, &image);
    let (ds, dr) =
        (largest_difference(&scores, &reference.scores), largest_difference(&regressions, &reference.regressions));
    eprintln!("FP32 vs TensorFlow.js: scores within {ds:.2e}, regressions within {dr:.2e} px");
    assert!(ds < 1e-4 && dr < 1e-2, "FP32: scores {ds}, regressions {dr}");
    let faces = reference.scores.iter().filter(|&&s| s >= 0.5).count();
    assert!(faces >= 5, "the five faces of multi_face.jpg are found ({faces} anchors ≥ 0.5)");
    let (scores, regressions) = run(&file(Variant::Fp16), side, &image);
    let (ds, dr) =
        (largest_difference(&scores, &reference.scores), largest_difference(&regressions, &reference.regressions));
    eprintln!("FP16 vs TensorFlow.js: scores within {ds:.2e}, regressions within {dr:.2e} px");
    assert!(ds < 1e-3 && dr < 0.25, "FP16: scores {ds}, regressions {dr}");
}

#[test]
fn a_detector_the_exporter_does_not_know_is_refused_naming_the_known_ones() {
    let e = detector_source("yolo").unwrap_err().to_string();
    assert!(e.contains("no detector named yolo; known: blazeface-back, blazeface-front"), "{e}");
}
