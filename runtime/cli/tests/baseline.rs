//! The speed benchmark's Python baseline does the job `emoedge run` does, on the same models:
//! on a real video it finds the same face in the same frames and gives as many results. A ratio
//! against a script doing less (or more) would mean nothing.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use emoedge_tests::{assets, default_bundle, media, workspace_root};
use emoedge_vision::face::BBox;
use serde_json::Value;

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_python_baseline_finds_the_same_faces_and_gives_as_many_results() {
    let out = tempfile::tempdir().unwrap();
    let video = media("single_face.mp4");
    let emoedge = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["run", &video, "--execution-provider", "cpu", "--detect-interval", "1", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(emoedge.status.success(), "{}", String::from_utf8_lossy(&emoedge.stderr));
    let python_results = out.path().join("python.jsonl");
    let python = Command::new(assets().join("baseline/venv/bin/python"))
        .arg(workspace_root().join("runtime/cli/benches/python/baseline.py"))
        .arg(&video)
        .arg(default_bundle())
        .arg(assets().join("mtcnn"))
        .arg("--results")
        .arg(&python_results)
        .output()
        .expect("scripts/setup installs the baseline's Python");
    assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stderr));

    let ours = lines(&out.path().join("results.jsonl"));
    let theirs = lines(&python_results);
    assert_eq!(ours.len(), 65, "T = 8: results from the 8th of 72 frames on");
    assert_eq!(theirs.len(), ours.len());
    let labels: Vec<&str> = ours.iter().map(|r| r["label"].as_str().unwrap()).collect();
    for (a, b) in ours.iter().zip(&theirs) {
        let f = |v: &Value, i: usize| v.as_array().unwrap()[i].as_f64().unwrap() as f32;
        // emoedge writes x, y, width, height; the baseline x1, y1, x2, y2.
        let (x, y) = (f(&a["bbox"], 0), f(&a["bbox"], 1));
        let our_box = BBox { x1: x, y1: y, x2: x + f(&a["bbox"], 2), y2: y + f(&a["bbox"], 3) };
        let their_box = BBox { x1: f(&b["box"], 0), y1: f(&b["box"], 1), x2: f(&b["box"], 2), y2: f(&b["box"], 3) };
        assert!(our_box.iou(&their_box) > 0.8, "{a} vs {b}");
        assert!(labels.contains(&b["label"].as_str().unwrap()), "a label emoedge never gave: {b}");
    }
}
