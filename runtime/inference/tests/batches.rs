//! Batches never exceed the bundle's TensorRT profile maxima: larger requests are split into
//! calls the profile admits, with the same results.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_inference::model::{EmotionModel, FaceFeatures};
use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_models::manifest::Variant;
use emoedge_models::seeded::seeded_values;

fn cpu() -> SessionOptions {
    SessionOptions { provider: Provider::Cpu, ..Default::default() }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn requests_larger_than_the_profile_are_split_and_give_the_same_results() {
    // The same bundle with profiles that admit 2 faces and 1 clip per call.
    let copy = emoedge_tests::bundle_copy();
    let path = copy.path().join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let trt = &mut manifest["variants"]["fp32"]["tensorrt"];
    let frame_max = trt["frame_profile"]["max"].as_str().unwrap().replacen(":32x", ":2x", 1);
    let clip_max = trt["clip_profile"]["max"].as_str().unwrap().replace(":16x", ":1x");
    trt["frame_profile"]["max"] = frame_max.into();
    trt["clip_profile"]["max"] = clip_max.into();
    std::fs::write(&path, manifest.to_string()).unwrap();

    let mut small = EmotionModel::load(copy.path(), Variant::Fp32, &cpu()).unwrap();
    let mut whole = EmotionModel::load(&emoedge_tests::default_bundle(), Variant::Fp32, &cpu()).unwrap();
    let (s, t) = (small.manifest.crop_size, small.manifest.clip_length);
    let faces = seeded_values(3 * t * 3 * s * s, 5);

    let split = small.frame_features(&faces, 3 * t).unwrap();
    let one = whole.frame_features(&faces, 3 * t).unwrap();
    assert_eq!((small.frame.runs, whole.frame.runs), (12, 1), "24 faces in calls of at most 2");
    let flat =
        |f: &[FaceFeatures]| f.iter().flat_map(|x| x.general.iter().chain(&x.pooled).copied()).collect::<Vec<_>>();
    assert!(max_diff(&flat(&split), &flat(&one)) < 1e-5);

    let clips: Vec<&[FaceFeatures]> = one.chunks(t).collect();
    let split = small.classify_clips(&clips).unwrap();
    let one = whole.classify_clips(&clips).unwrap();
    assert_eq!((small.clip.runs, whole.clip.runs), (3, 1), "3 clips in calls of 1");
    for (a, b) in split.iter().zip(&one) {
        assert!(max_diff(&a.emotion_probs, &b.emotion_probs) < 1e-5);
    }
}

#[test]
fn a_wrong_number_of_values_is_an_error_not_a_panic() {
    let mut model = EmotionModel::load(&emoedge_tests::default_bundle(), Variant::Fp32, &cpu()).unwrap();
    let error = model.frame_features(&[0.0; 10], 1).unwrap_err();
    assert!(error.to_string().contains("10 values for 1 crops"), "{error}");
}

#[test]
fn non_finite_outputs_are_an_error_naming_them_not_null_probabilities() {
    let mut model = EmotionModel::load(&emoedge_tests::default_bundle(), Variant::Fp32, &cpu()).unwrap();
    let s = model.manifest.crop_size;
    let error = model.frame_features(&vec![f32::NAN; 3 * s * s], 1).unwrap_err().to_string();
    assert!(error.contains("inference with frame.onnx failed: output `") && error.contains("holds NaN"), "{error}");
}

#[test]
fn streams_sharing_a_model_get_their_own_answers_in_fewer_calls() {
    use emoedge_inference::engine::EmotionBackend;
    use emoedge_inference::model::Precision;
    use emoedge_inference::shared::SharedModel;

    let bundle = emoedge_tests::default_bundle();
    let first = SharedModel::open(&bundle, Precision::Fp32, &cpu()).unwrap();
    let second = SharedModel::open(&bundle, Precision::Fp32, &cpu()).unwrap();
    assert_eq!(first.users(), 2, "the same bundle, precision and sessions: one model");
    let other = SharedModel::open(&bundle, Precision::Int8, &cpu()).unwrap();
    assert_eq!(other.users(), 1, "another precision is another model");
    let spelled = SharedModel::open(&bundle.join("../bundle/."), Precision::Fp32, &cpu()).unwrap();
    assert_eq!(first.users(), 3, "another spelling of the same folder is the same model");
    let auto = SharedModel::open(&bundle, Precision::Auto, &cpu()).unwrap();
    assert_eq!(first.users(), 4, "auto on the CPU is the FP32 variant: the same model");
    drop((spelled, auto));

    let mut alone = EmotionModel::load(&bundle, Variant::Fp32, &cpu()).unwrap();
    let (s, t) = (alone.manifest.crop_size, alone.manifest.clip_length);
    let plane = 3 * s * s;
    // Four streams, each 12 requests of 1–3 faces and one clip per request.
    let requests: Vec<Vec<(Vec<f32>, usize)>> = (0..4)
        .map(|stream| {
            (0..12).map(|k| (seeded_values((1 + k % 3) * plane, 100 * stream + k as u64), 1 + k % 3)).collect()
        })
        .collect();
    let expected: Vec<Vec<(Vec<FaceFeatures>, Vec<f32>)>> = requests
        .iter()
        .map(|stream| {
            stream
                .iter()
                .map(|(faces, n)| {
                    let features = alone.frame_features(faces, *n).unwrap();
                    let clip: Vec<FaceFeatures> = features.iter().cycle().take(t).cloned().collect();
                    let probs = alone.classify_clips(&[&clip]).unwrap().remove(0).emotion_probs;
                    (features, probs)
                })
                .collect()
        })
        .collect();
    std::thread::scope(|scope| {
        for (stream, (requests, expected)) in requests.iter().zip(&expected).enumerate() {
            let mut handle = if stream % 2 == 0 { first.clone() } else { second.clone() };
            scope.spawn(move || {
                for ((faces, n), (features, probs)) in requests.iter().zip(expected) {
                    let got = handle.frame_features(faces, *n).unwrap();
                    assert_eq!(got.len(), *n);
                    for (a, b) in got.iter().zip(features) {
                        assert!(max_diff(&a.pooled, &b.pooled) < 1e-4 && max_diff(&a.emotion, &b.emotion) < 1e-4);
                    }
                    let clip: Vec<FaceFeatures> = got.iter().cycle().take(t).cloned().collect();
                    let result = handle.classify_clips(&[&clip]).unwrap();
                    assert!(
                        max_diff(&result[0].emotion_probs, probs) < 1e-4,
                        "stream {stream}: another stream's answer?"
                    );
                }
            });
        }
    });
    let stats = first.batch_stats();
    assert_eq!((stats.faces, stats.clips), (4 * (4 + 8 + 12), 48), "{stats:?}");
    assert!(stats.frame_calls < 48 && stats.clip_calls < 48, "concurrent requests share calls: {stats:?}");
}
