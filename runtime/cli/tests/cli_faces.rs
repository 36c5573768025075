//! `emoedge faces` end to end, and each kind of bad input as one clear line and a failing exit.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use emoedge_tests::{assets, interrupt, media};

fn emoedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emoedge")).args(args).output().unwrap()
}

#[test]
fn writes_crops_and_an_index_line_per_face() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_str().unwrap();
    let output = emoedge(&["faces", &media("single_face.mp4"), "--out", out, "--every", "4"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.starts_with("18 frames processed, 18 faces in 1 tracks"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("execution provider: cpu"));

    let index = std::fs::read_to_string(out_dir.path().join("index.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = index.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 18);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["frame"], (i * 4) as u64, "every 4th frame");
        assert_eq!(line["track"], 1);
        assert!(line["pts_ns"].as_u64().is_some());
        assert_eq!(line["box"].as_array().unwrap().len(), 4);
        assert_eq!(line["landmarks"].as_array().unwrap().len(), 5);
        let crop = image::open(out_dir.path().join(line["crop"].as_str().unwrap())).unwrap();
        assert_eq!((crop.width(), crop.height()), (64, 64));
    }
    assert!(!out_dir.path().join("index.jsonl.partial").exists());
}

#[test]
fn no_crops_writes_the_index_without_a_face_image() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().to_str().unwrap();
    let output = emoedge(&["faces", &media("single_face.mp4"), "--out", out, "--every", "8", "--no-crops"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let index = std::fs::read_to_string(out_dir.path().join("index.jsonl")).unwrap();
    assert_eq!(index.lines().count(), 9);
    for line in index.lines() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(line["box"].is_array() && line.get("crop").is_none(), "{line}");
    }
    let mut files: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    files.sort();
    assert_eq!(files, [".emoedge.lock", "index.jsonl"], "no crops folder, no image");
}

/// The command fails with exit code 1 and one error line that contains every `needle`, and
/// leaves no index behind.
fn fails_clearly(args: &[&str], out: &Path, needles: &[&str]) {
    let output = emoedge(args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("emoedge: error: ")).collect();
    assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(errors[0].contains(needle), "`{needle}` missing from: {}", errors[0]);
    }
    assert!(!out.join("index.jsonl").exists() && !out.join("index.jsonl.partial").exists());
}

#[test]
fn bad_videos_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    fails_clearly(&["faces", "/nonexistent/clip.mp4", "--out", o], &out, &["/nonexistent/clip.mp4", "does not exist"]);

    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video").unwrap();
    fails_clearly(&["faces", text.to_str().unwrap(), "--out", o], &out, &["cannot decode", "notes.mp4"]);

    let whole = std::fs::read(media("WolfgangLanger_Pexels.mp4")).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    // A cut video is an error too, but the faces found before the cut stay, index and crops
    // together (issue 14: the crops used to stay without their index).
    let output = emoedge(&["faces", cut.to_str().unwrap(), "--out", o]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ends early") && stderr.contains("truncated"), "{stderr}");
    assert!(stderr.contains("faces found before it are kept in") && stderr.contains("index.jsonl"), "{stderr}");
    assert_index_matches_crops(&out);
}

/// `index.jsonl` has one line per crop in `crops/`, naming each, and at least one.
fn assert_index_matches_crops(out: &Path) {
    let index = std::fs::read_to_string(out.join("index.jsonl")).unwrap();
    let mut listed: Vec<String> = index
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["crop"].as_str().unwrap().to_string())
        .collect();
    let mut crops: Vec<String> = std::fs::read_dir(out.join("crops"))
        .unwrap()
        .map(|e| format!("crops/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    listed.sort();
    crops.sort();
    assert!(!crops.is_empty());
    assert_eq!(listed, crops, "every crop is indexed and every index line has its crop");
}

#[test]
fn ctrl_c_on_a_live_source_ends_it_cleanly_with_index_and_crops_together() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // An endless live source, as the report used (the path is the test's own).
    let still = media("single_face.jpg");
    let source =
        format!("multifilesrc location={still} loop=true caps=image/jpeg,framerate=10/1 ! jpegdec ! videoconvert");
    let child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["faces", "--source", &source, "--out", out.to_str().unwrap(), "--execution-provider", "cpu"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let crops = || std::fs::read_dir(out.join("crops")).map_or(0, |d| d.count());
    let started = std::time::Instant::now();
    while crops() < 3 {
        assert!(started.elapsed().as_secs() < 120, "no crops after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let output = interrupt(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("faces in 1 tracks"), "{stdout}");
    assert_index_matches_crops(&out);
}

#[test]
fn bad_models_and_runtime_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    let video = media("single_face.mp4");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails_clearly(
        &["faces", &video, "--out", o, "--detector-dir", empty.to_str().unwrap()],
        &out,
        &["pnet.onnx", "does not exist"],
    );

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    for name in ["pnet", "rnet", "onet"] {
        std::fs::copy(assets().join(format!("mtcnn/{name}.onnx")), corrupt.join(format!("{name}.onnx"))).unwrap();
    }
    let onet = std::fs::read(corrupt.join("onet.onnx")).unwrap();
    std::fs::write(corrupt.join("onet.onnx"), &onet[..onet.len() / 3]).unwrap();
    fails_clearly(
        &["faces", &video, "--out", o, "--detector-dir", corrupt.to_str().unwrap()],
        &out,
        &["onet.onnx", "not a valid ONNX model"],
    );

    fails_clearly(
        &["faces", &video, "--out", o, "--ort-lib", "/nonexistent/libonnxruntime.so"],
        &out,
        &["ONNX Runtime library not found", "scripts/setup"],
    );
    let not_a_library = dir.path().join("libonnxruntime.so");
    std::fs::write(&not_a_library, "not a library").unwrap();
    fails_clearly(
        &["faces", &video, "--out", o, "--ort-lib", not_a_library.to_str().unwrap()],
        &out,
        &["cannot load the ONNX Runtime library"],
    );

    fails_clearly(
        &["faces", &video, "--out", o, "--execution-provider", "tensorrt"],
        &out,
        &["`tensorrt` is not usable", "TensorRT"],
    );
}

#[test]
fn unknown_provider_names_are_refused_by_the_parser() {
    let output = emoedge(&["faces", "x.mp4", "--out", "/tmp/unused", "--execution-provider", "gpu"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("invalid value 'gpu'") && stderr.contains("auto, tensorrt, cuda, cpu"), "{stderr}");
}
