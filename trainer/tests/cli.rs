//! `emoedge-train` end to end on a small real sample: data → train → quantize → predict.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

fn train(args: &[&str]) -> String {
    let out =
        Command::new(env!("CARGO_BIN_EXE_emoedge-train")).args(args).current_dir(assets().join("..")).output().unwrap();
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
    let stdout = train(&[
        "data",
        video.to_str().unwrap(),
        "--val",
        still.to_str().unwrap(),
        "--every",
        "12",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(stdout.starts_with("7 faces (6 train, 1 val)"), "{stdout}");
    let manifest = data.join("faces.jsonl");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&manifest).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    for line in &lines {
        let logits: Vec<f32> = serde_json::from_value(line["logits"].clone()).unwrap();
        assert!(logits.len() == 7 && logits.iter().all(|z| z.is_finite()));
        assert!(data.join(line["crops"][0].as_str().unwrap()).is_file());
    }

    let run = dir.path().join("run");
    let stdout = train(&[
        "train",
        "--stage",
        "emotion",
        "--out",
        run.to_str().unwrap(),
        "--emotion",
        manifest.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "4",
    ]);
    assert!(stdout.contains("stage Emotion: "), "{stdout}");
    for file in [
        "weights.safetensors",
        "config.json",
        "metrics.jsonl",
        "curves.png",
        "confusion.png",
        "summary.json",
        "checkpoint/state.json",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().count(), 2);

    let stdout =
        train(&["quantize", "--run", run.to_str().unwrap(), "--emotion", manifest.to_str().unwrap(), "--samples", "8"]);
    assert!(stdout.contains("int8") && stdout.contains("fp16"), "{stdout}");
    let quant: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("quant.json")).unwrap()).unwrap();
    assert_eq!(quant["activations"].as_object().unwrap().len(), 33);
    assert!(run.join("weights-int8.safetensors").is_file() && run.join("weights-fp16.safetensors").is_file());

    let stdout = train(&["predict", "--run", run.to_str().unwrap(), still.to_str().unwrap()]);
    let label = stdout.trim().rsplit(": ").next().unwrap();
    assert!(emoedge_models::EMOTIONS.contains(&label), "{stdout}");
}

/// A recipe's sources and evaluation sets, a fresh model on fer's encoder, and its evaluation
/// beside the teachers on the same clips.
#[test]
fn recipe_data_encoder_init_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("recipe.json");
    let text = serde_json::json!({
        "train": ["media/single_face.mp4"],
        "val": ["media/single_face.jpg"],
        "eval": [
            {"name": "stills", "about": "one labelled still", "people": 1, "images": [["media/0-f15-hao-ph.jpg", "happy"]]},
            {"name": "clip", "about": "a labelled second of video", "people": 1, "video": "media/WolfgangLanger_Pexels.mp4",
             "segments": [[14.0, 15.0, "happy"]]}
        ]
    });
    std::fs::write(&recipe, text.to_string()).unwrap();
    let data = dir.path().join("data");
    let stdout =
        train(&["data", "--recipe", recipe.to_str().unwrap(), "--every", "6", "--out", data.to_str().unwrap()]);
    // 12 captured frames of the video make 2 windows of 8 (overlapping by 4).
    assert!(stdout.starts_with("13 faces (12 train, 1 val) and 2 clips of 8 consecutive frames"), "{stdout}");
    let manifest = data.join("faces.jsonl");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&manifest).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let windows: Vec<&serde_json::Value> = lines.iter().filter(|l| l["crops"].as_array().unwrap().len() == 8).collect();
    assert_eq!(windows.len(), 2);
    // A window's target is the mean of its frames' targets (fer's logits).
    let frame_logits = |crop: &serde_json::Value| -> Vec<f32> {
        let line = lines.iter().find(|l| l["crops"].as_array().unwrap().len() == 1 && &l["crops"][0] == crop).unwrap();
        serde_json::from_value(line["logits"].clone()).unwrap()
    };
    let window: Vec<f32> = serde_json::from_value(windows[0]["logits"].clone()).unwrap();
    let mean: Vec<f32> = (0..7)
        .map(|k| windows[0]["crops"].as_array().unwrap().iter().map(|c| frame_logits(c)[k]).sum::<f32>() / 8.0)
        .collect();
    assert!(window.iter().zip(&mean).all(|(a, b)| (a - b).abs() < 1e-4), "{window:?} vs {mean:?}");

    let init = dir.path().join("fer.safetensors");
    train(&["encoder-init", "--out", init.to_str().unwrap()]);
    let run = dir.path().join("run");
    let stdout = train(&[
        "train",
        "--stage",
        "emotion",
        "--pretrained-encoder",
        init.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--emotion",
        manifest.to_str().unwrap(),
        "--online-teacher",
        init.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch-size",
        "8",
    ]);
    assert!(stdout.contains("stage Emotion: "), "{stdout}");
    // The online teacher is fer's classifier: a file without it is refused by name.
    let bare = dir.path().join("bare.safetensors");
    std::fs::write(
        &bare,
        safetensors::serialize(Vec::<(String, safetensors::tensor::TensorView)>::new(), None).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_emoedge-train"))
        .args([
            "train",
            "--stage",
            "emotion",
            "--init",
            run.to_str().unwrap(),
            "--out",
            dir.path().join("r2").to_str().unwrap(),
        ])
        .args(["--emotion", manifest.to_str().unwrap(), "--online-teacher", bare.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("fer_classifier.weight") && stderr.contains("encoder-init"),
        "{stderr}"
    );
    // …and it needs fer's encoder unchanged.
    let out = Command::new(env!("CARGO_BIN_EXE_emoedge-train"))
        .args([
            "train",
            "--stage",
            "emotion",
            "--init",
            run.to_str().unwrap(),
            "--out",
            dir.path().join("r3").to_str().unwrap(),
        ])
        .args([
            "--emotion",
            manifest.to_str().unwrap(),
            "--online-teacher",
            init.to_str().unwrap(),
            "--encoder-modules",
            "1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--encoder-modules 0"), "{stderr}");
    let out = dir.path().join("eval");
    let stdout = train(&[
        "eval",
        "--run",
        run.to_str().unwrap(),
        "--teachers",
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    for predictor in ["student", "fer", "faceapi", "facex", "ensemble"] {
        assert!(stdout.contains(&format!("| stills (1, 1) | {predictor} |")), "{stdout}");
    }
    assert!(
        out.join("confusion-stills.png").is_file()
            && out.join("confusion-clip.png").is_file()
            && out.join("eval.md").is_file()
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    // Every evaluation clip of the video lies inside the labelled second: ~24 frames, 17 windows.
    let clips = results[1]["clips"].as_u64().unwrap();
    assert!((10..=24).contains(&clips), "{clips}");
    // Every teacher reads this laughing face and second of laughter as happy.
    for set in results.as_array().unwrap() {
        for score in set["scores"].as_array().unwrap().iter().skip(1) {
            assert!(score["accuracy"].as_f64().unwrap() >= 0.9, "{score}");
        }
    }
    // One second of one video is one resampled unit: its interval says nothing either way.
    let interval = &results[1]["scores"][1]["accuracy_ci95"];
    assert_eq!(interval[0], interval[1], "{interval}");
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
    let examples = emoedge_trainer::data::manifest::read_manifest(
        &manifest,
        64,
        &mut emoedge_trainer::run::manifest_videos(Some(emoedge_tests::detector_dir())),
    )
    .unwrap();
    assert_eq!(examples.len(), 1);
    assert_eq!(examples[0].frames.len(), 16, "one face crop per frame of the range");
    assert!(examples[0].frames.iter().all(|f| f.dimensions() == (64, 64)));
    // And `train` reads such a manifest directly.
    let run = dir.path().join("run");
    let stdout = train(&[
        "train",
        "--stage",
        "emotion",
        "--out",
        run.to_str().unwrap(),
        "--emotion",
        manifest.to_str().unwrap(),
        "--epochs",
        "1",
    ]);
    assert!(stdout.contains("stage Emotion: 1 steps"), "{stdout}");
}

#[test]
fn train_reads_labelled_faces_as_a_folder_per_class_or_a_fer_csv() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("faces");
    for (i, (split, label)) in
        [("train", "happy"), ("train", "happy"), ("train", "sadness"), ("train", "sadness"), ("val", "anger")]
            .into_iter()
            .enumerate()
    {
        let path = folder.join(split).join(label).join(format!("{i}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let shade = 40 * i as u8;
        image::RgbImage::from_pixel(24, 24, image::Rgb([shade, 100, 255 - shade])).save(&path).unwrap();
    }
    let csv = dir.path().join("fer.csv");
    let pixels = |v: usize| vec![(v * 37 % 256).to_string(); 48 * 48].join(" ");
    let rows: Vec<String> = [(3, "Training"), (4, "Training"), (3, "Training"), (6, "PublicTest")]
        .iter()
        .enumerate()
        .map(|(i, (label, usage))| format!("{label},{},{usage}", pixels(i)))
        .collect();
    std::fs::write(&csv, format!("emotion,pixels,Usage\n{}\n", rows.join("\n"))).unwrap();
    for (name, set) in [("folder", &folder), ("csv", &csv)] {
        let run = dir.path().join(name);
        let (out, set) = (run.to_str().unwrap(), set.to_str().unwrap());
        let stdout = train(&[
            "train",
            "--stage",
            "emotion",
            "--out",
            out,
            "--emotion",
            set,
            "--epochs",
            "1",
            "--batch-size",
            "2",
        ]);
        assert!(stdout.contains("stage Emotion: "), "{name}: {stdout}");
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
        // Two labelled training faces per class are balanced, and one validation face scored.
        assert!(summary["steps"].as_u64().unwrap() >= 2, "{name}: {summary}");
        assert!(!summary["val"]["emotion"].is_null(), "{name}: the held-out face is scored: {summary}");
    }
}
