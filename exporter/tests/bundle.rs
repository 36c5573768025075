//! `emoedge-export build`: the bundle on disk, and bad input as clear errors with nothing half-written.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

fn export(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_emoedge-export")).args(args).output().unwrap()
}

fn default_run() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default")
}

#[test]
fn bundle_has_every_variant_with_checksums_metadata_and_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let output = export(&["build", "--run", default_run().to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["labels"][0], "happy");
    assert_eq!(manifest["clip_length"], 8);
    assert_eq!(manifest["variants"]["fp16"]["tensorrt"]["frame_profile"]["opt"], "faces:8x3x64x64");
    assert_eq!(manifest["variants"]["int8"]["tensorrt"]["int8"], true);
    assert_eq!(manifest["variants"]["fp32"]["tensorrt"]["fp16"], false);
    // The source run, relative to the bundle, so that `check` finds the reference weights.
    assert!(
        manifest["source"]["run"].as_str().unwrap().starts_with('/')
            || out.join(manifest["source"]["run"].as_str().unwrap()).join("weights.safetensors").exists()
    );
    for variant in ["fp32", "fp16", "int8"] {
        for part in ["frame", "clip"] {
            let entry = &manifest["variants"][variant][part];
            let bytes = std::fs::read(out.join(entry["file"].as_str().unwrap())).unwrap();
            use sha2::Digest;
            let digest: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(entry["sha256"], digest.as_str());
            use onnx_protobuf::Message;
            let model = onnx_protobuf::ModelProto::parse_from_bytes(&bytes).unwrap();
            let meta: std::collections::HashMap<_, _> =
                model.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
            assert_eq!(meta["emoedge.labels"], "happy,sad,neutral,angry,surprise,disgust,fear");
            assert_eq!(meta["emoedge.crop_size"], "64");
            assert_eq!(meta["emoedge.variant"], variant);
        }
    }
    // `check` loads every variant in ONNX Runtime and prints a passing parity table.
    let faces = common::faces_folder(&dir.path().join("faces"), 23);
    let output = export(&[
        "check",
        out.to_str().unwrap(),
        "--clips",
        "4",
        "--max-real-clips",
        "16",
        "--faces",
        faces.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(table.lines().filter(|l| l.ends_with("| pass |")).count(), 6, "{table}");
    // Rebuilding replaces the bundle whole; no staging folders remain.
    assert!(
        export(&["build", "--run", default_run().to_str().unwrap(), "--out", out.to_str().unwrap()]).status.success()
    );
    let mut leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    leftovers.sort();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("bundle"), std::ffi::OsString::from("faces")]);
}

fn fails(args: &[&str], needles: &[&str]) {
    let output = export(args);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("emoedge-export: error: ") && stderr.trim_end().lines().count() == 1, "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` missing: {stderr}");
    }
}

#[test]
fn bad_weights_configs_and_outputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    // Weights of another shape than the config says.
    std::fs::copy(default_run().join("weights.safetensors"), run.join("weights.safetensors")).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(default_run().join("config.json")).unwrap()).unwrap();
    config["expert_dim"] = 96.into();
    std::fs::write(run.join("config.json"), config.to_string()).unwrap();
    let out = dir.path().join("bundle");
    fails(
        &["build", "--run", run.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &["general_expert.out_proj.weight", "expects [256, 96]"],
    );
    assert!(!out.exists());

    // A tensor missing from the weights.
    std::fs::copy(default_run().join("config.json"), run.join("config.json")).unwrap();
    let bytes = std::fs::read(default_run().join("weights.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> =
        file.tensors().into_iter().filter(|(name, _)| name != "head.emotion.bias").collect();
    std::fs::write(run.join("weights.safetensors"), safetensors::serialize(kept, None).unwrap()).unwrap();
    fails(
        &["build", "--run", run.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &["missing tensor `head.emotion.bias`", "expected shape [7]"],
    );

    // quant.json missing, then lacking one weight's scales.
    std::fs::copy(default_run().join("weights.safetensors"), run.join("weights.safetensors")).unwrap();
    fails(
        &["build", "--run", run.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &["quant.json", "emoedge-train quantize"],
    );
    let mut quant: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(default_run().join("quant.json")).unwrap()).unwrap();
    quant["weights"].as_object_mut().unwrap().remove("head.key.weight");
    std::fs::write(run.join("quant.json"), quant.to_string()).unwrap();
    fails(
        &["build", "--run", run.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &["no scales for weight `head.key.weight`", "[128, 128]"],
    );
    assert!(!out.exists());

    // A damaged bundle file fails `check` naming the file and the fix.
    let bundle = dir.path().join("good");
    assert!(
        export(&["build", "--run", default_run().to_str().unwrap(), "--out", bundle.to_str().unwrap()])
            .status
            .success()
    );
    std::fs::write(bundle.join("int8/clip.onnx"), b"damaged").unwrap();
    fails(
        &["check", bundle.to_str().unwrap(), "--clips", "1", "--max-real-clips", "1"],
        &["int8/clip.onnx is 7 bytes", "the manifest lists a file of", "export the bundle again"],
    );

    // An output below a file cannot be written.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("bundle");
    fails(
        &["build", "--run", default_run().to_str().unwrap(), "--out", out.to_str().unwrap()],
        &["cannot write beside", "file is not a folder"],
    );
}

#[test]
fn the_committed_default_bundle_is_what_the_exporter_writes() {
    // Export is deterministic, so the bundle under models/default matches a fresh export of the
    // committed weights file for file; a stale bundle fails here.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let output = export(&[
        "build",
        "--run",
        default_run().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--model-version",
        "default-2",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("manifest.json")).unwrap()).unwrap()
    };
    let (fresh, committed) = (read(&out), read(&default_run().join("bundle")));
    assert_eq!(
        fresh["variants"], committed["variants"],
        "models/default/bundle is stale: run `cargo run --release -p emoedge-exporter -- build --run models/default --out models/default/bundle --model-version default-2`"
    );
    assert_eq!(fresh["source"]["weights_sha256"], committed["source"]["weights_sha256"]);
}
