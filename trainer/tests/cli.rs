//! `emoedge-train` end to end on a small real sample: data → train → quantize → predict.

use std::path::{Path, PathBuf};
use std::process::Command;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

fn train(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_emoedge-train")).args(args).current_dir(assets().join("..")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn data_train_quantize_predict() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let media = assets().join("media");
    let (video, still) = (media.join("single_face.mp4"), media.join("single_face.jpg"));
    let stdout = train(&["data", video.to_str().unwrap(), "--val", still.to_str().unwrap(), "--every", "12", "--out", data.to_str().unwrap()]);
    assert!(stdout.starts_with("7 faces (6 train, 1 val)"), "{stdout}");
    let manifest = data.join("faces.jsonl");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&manifest).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    for line in &lines {
        let soft: Vec<f32> = serde_json::from_value(line["soft"].clone()).unwrap();
        assert!((soft.iter().sum::<f32>() - 1.0).abs() < 1e-3);
        assert!(data.join(line["crops"][0].as_str().unwrap()).is_file());
    }

    let run = dir.path().join("run");
    let stdout = train(&["train", "--stage", "emotion", "--out", run.to_str().unwrap(), "--emotion", manifest.to_str().unwrap(), "--epochs", "2", "--batch-size", "4"]);
    assert!(stdout.contains("stage Emotion: 4 steps"), "{stdout}");
    for file in ["weights.safetensors", "config.json", "metrics.jsonl", "curves.png", "confusion.png", "summary.json", "checkpoint/state.json"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().count(), 2);

    let stdout = train(&["quantize", "--run", run.to_str().unwrap(), "--emotion", manifest.to_str().unwrap(), "--samples", "8"]);
    assert!(stdout.contains("int8") && stdout.contains("fp16"), "{stdout}");
    let quant: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("quant.json")).unwrap()).unwrap();
    assert_eq!(quant["activations"].as_object().unwrap().len(), 22);
    assert!(run.join("weights-int8.safetensors").is_file() && run.join("weights-fp16.safetensors").is_file());

    let stdout = train(&["predict", "--run", run.to_str().unwrap(), still.to_str().unwrap()]);
    let label = stdout.trim().rsplit(": ").next().unwrap();
    assert!(emoedge_models::EMOTIONS.contains(&label), "{stdout}");
}

#[test]
fn a_stage_without_its_data_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_emoedge-train"))
        .args(["train", "--stage", "joint", "--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("emoedge-train: error: ") && stderr.contains("give --general"), "{stderr}");
}

#[test]
fn manifest_video_lines_are_cut_by_the_runtime_face_capture() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("clips.jsonl");
    let video = assets().join("media/single_face.mp4");
    std::fs::write(
        &manifest,
        serde_json::json!({"video": video, "frames": [8, 24], "label": "neutral"}).to_string() + "\n",
    )
    .unwrap();
    let examples = emoedge_trainer::data::manifest::read_manifest(&manifest, 64, &mut emoedge_trainer::run::manifest_videos()).unwrap();
    assert_eq!(examples.len(), 1);
    assert_eq!(examples[0].frames.len(), 16, "one face crop per frame of the range");
    assert!(examples[0].frames.iter().all(|f| f.dimensions() == (64, 64)));
    // And `train` reads such a manifest directly.
    let run = dir.path().join("run");
    let stdout = train(&["train", "--stage", "emotion", "--out", run.to_str().unwrap(), "--emotion", manifest.to_str().unwrap(), "--epochs", "1"]);
    assert!(stdout.contains("stage Emotion: 1 steps"), "{stdout}");
}
