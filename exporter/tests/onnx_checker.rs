//! The ONNX project's own checker (Python `onnx`, installed by scripts/setup) as an independent
//! validator: `check_model(full_check=True)` on every file of the default model's bundle.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{default_run, write_model};
use emoedge_exporter::bundle::write_bundle;

fn checker(files: &[PathBuf]) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("assets/onnx/venv/bin/python");
    assert!(python.exists(), "{} is missing; run scripts/setup", python.display());
    let output = Command::new(python).arg(root.join("exporter/python/check_onnx.py")).args(files).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn every_exported_graph_passes_the_full_onnx_check() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    write_bundle(&default_run(), "test", &bundle).unwrap();
    let files: Vec<PathBuf> = ["fp32", "fp16", "int8"]
        .iter()
        .flat_map(|v| ["frame", "clip"].map(|p| bundle.join(v).join(format!("{p}.onnx"))))
        .collect();
    let (ok, report) = checker(&files);
    eprintln!("{report}");
    assert!(ok, "{report}");
    assert_eq!(report.lines().filter(|l| l.contains(": valid (ir 8, opset 17")).count(), 6, "{report}");
}

use emoedge_models::io::{Dim, TensorSpec};

#[test]
fn the_checker_rejects_a_broken_graph() {
    // A node that reads a tensor nobody produces: the checker must say so, or it proves nothing.
    let mut graph = emoedge_exporter::graph::GraphBuilder::new("broken", emoedge_exporter::graph::Arithmetic::Fp32);
    let spec = |name| TensorSpec { name, dims: vec![Dim::Fixed(2)] };
    let x = graph.input(&spec("x"));
    let y = graph.add(&x, "nowhere");
    graph.output(&y, &spec("y"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "broken.onnx", &graph.finish(&[]));
    let (ok, report) = checker(&[path]);
    assert!(!ok && report.contains("invalid") && report.contains("nowhere"), "{report}");
}
