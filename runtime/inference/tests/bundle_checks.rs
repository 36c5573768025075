//! A bundle is checked against itself before ONNX Runtime sees any of it (issue 14): each
//! damaged manifest or file entry below is one clear error, never a panic, a hang or `null`
//! probabilities. Before these checks, `clip_length: 4` panicked in the frame/clip split,
//! `std: 0` gave NaN probabilities and a file entry reaching `/dev/zero` hung the loader.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_inference::model::EmotionModel;
use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_models::manifest::Variant;
use serde_json::Value;

/// The error of loading a copy of the default bundle after `damage` changed its manifest (and,
/// through the folder it gets, its files).
fn load_damaged(damage: impl FnOnce(&mut Value, &std::path::Path)) -> String {
    let copy = emoedge_tests::bundle_copy();
    let path = copy.path().join("manifest.json");
    let mut manifest: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    damage(&mut manifest, copy.path());
    std::fs::write(&path, manifest.to_string()).unwrap();
    let options = SessionOptions { provider: Provider::Cpu, ..Default::default() };
    EmotionModel::load(copy.path(), Variant::Fp32, &options).expect_err("the damage is refused").to_string()
}

fn assert_says(error: &str, needles: &[&str]) {
    for needle in needles {
        assert!(error.contains(needle), "`{needle}` missing from: {error}");
    }
}

#[test]
fn sizes_that_contradict_the_config_are_refused() {
    let error = load_damaged(|m, _| m["clip_length"] = 4.into());
    assert_says(&error, &["manifest.json contradicts itself", "clip_length is 4 but its config says 8", "export"]);
    let error = load_damaged(|m, _| m["crop_size"] = 48.into());
    assert_says(&error, &["crop_size is 48 but its config says 64"]);
}

#[test]
fn preprocessing_the_runtime_cannot_apply_is_refused() {
    let error = load_damaged(|m, _| m["preprocessing"]["std"][1] = 0.0.into());
    assert_says(&error, &["std must be positive"]);
    let error = load_damaged(|m, _| m["preprocessing"]["layout"] = "NHWC".into());
    assert_says(&error, &["preprocessing is RGB NHWC; the runtime feeds RGB NCHW"]);
    let error = load_damaged(|m, _| m["preprocessing"]["crop_margin"] = 5.0.into());
    assert_says(&error, &["crop_margin 5 is outside [0, 1]"]);
    let error = load_damaged(|m, _| m["labels"][1] = "happy".into());
    assert_says(&error, &["label 1 (`happy`) appears twice"]);
}

#[test]
fn file_entries_must_be_regular_files_inside_the_bundle_of_the_listed_size() {
    for outside in ["/dev/zero", "../../etc/passwd", ""] {
        let error = load_damaged(|m, _| m["variants"]["fp32"]["clip"]["file"] = outside.into());
        assert_says(&error, &[&format!("fp32's file `{outside}` is not a path inside the bundle")]);
    }
    // A link inside the bundle to a device: refused before a byte is read.
    let error = load_damaged(|m, dir| {
        std::os::unix::fs::symlink("/dev/zero", dir.join("fp32/zero.onnx")).unwrap();
        m["variants"]["fp32"]["clip"]["file"] = "fp32/zero.onnx".into();
    });
    assert_says(&error, &["fp32/zero.onnx is not a regular file", "copy or export the bundle again"]);
    let error = load_damaged(|m, _| m["variants"]["fp32"]["frame"]["bytes"] = 12.into());
    assert_says(&error, &["fp32/frame.onnx is ", "bytes, the manifest lists a file of 12 bytes"]);
}

#[test]
fn errors_after_the_manifest_name_the_bundle_they_come_from() {
    // Found by fuzzing: a valid but different config named only `frame.onnx`, an invalid one
    // no file at all; with several bundles on a device, the user must know which one.
    let copy = emoedge_tests::bundle_copy();
    let path = copy.path().join("manifest.json");
    let options = SessionOptions { provider: Provider::Cpu, ..Default::default() };
    for (field, value, needle) in [
        ("expert_dim", 1, "fp32/frame.onnx does not match the bundle's manifest"),
        ("token_dim", u64::MAX, "manifest.json has an invalid model config"),
    ] {
        let mut manifest: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let original = manifest["config"][field].clone();
        manifest["config"][field] = value.into();
        std::fs::write(&path, manifest.to_string()).unwrap();
        let error = EmotionModel::load(copy.path(), Variant::Fp32, &options).expect_err("refused").to_string();
        assert_says(&error, &[&format!("{}/{needle}", copy.path().display()), "export"]);
        manifest["config"][field] = original;
        std::fs::write(&path, manifest.to_string()).unwrap();
    }
}
