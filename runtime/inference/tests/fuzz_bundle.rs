//! Fuzzing (proptest, stable toolchain) of the bundle loader: a copy of the default bundle with
//! its manifest damaged by hostile edits and its model files damaged, cut, or swapped for a
//! link to a device or a folder. Loading it is a working model or one error naming the bundle,
//! never a panic, an abort or a hang. Failing inputs are kept in
//! `fuzz_bundle.proptest-regressions` and replayed first.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_inference::model::EmotionModel;
use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_models::manifest::Variant;
use emoedge_tests::fuzz::{Edit, apply_bytes, apply_json, edits};
use proptest::prelude::*;

/// What happens to one of the bundle's ONNX files.
#[derive(Debug, Clone)]
enum FileDamage {
    None,
    Bytes(Vec<Edit>),
    LinkToDevice,
    Folder,
}

fn file_damage() -> impl Strategy<Value = FileDamage> {
    prop_oneof![
        3 => Just(FileDamage::None),
        2 => edits().prop_map(FileDamage::Bytes),
        1 => Just(FileDamage::LinkToDevice),
        1 => Just(FileDamage::Folder),
    ]
}

proptest! {
    #![proptest_config(emoedge_tests::fuzz::config(500))]

    #[test]
    fn a_damaged_bundle_loads_or_is_one_clear_error(
        manifest_edits in prop::option::of(edits()),
        damage in file_damage(),
        file in prop_oneof![Just("fp32/frame.onnx"), Just("fp32/clip.onnx")],
    ) {
        let copy = emoedge_tests::bundle_copy();
        let manifest = copy.path().join("manifest.json");
        if let Some(edits) = &manifest_edits {
            let text = std::fs::read_to_string(&manifest).unwrap();
            std::fs::write(&manifest, apply_json(&text, edits)).unwrap();
        }
        let target = copy.path().join(file);
        match &damage {
            FileDamage::None => {}
            FileDamage::Bytes(edits) => {
                let bytes = std::fs::read(&target).unwrap();
                std::fs::write(&target, apply_bytes(&bytes, edits)).unwrap();
            }
            FileDamage::LinkToDevice => {
                std::fs::remove_file(&target).unwrap();
                std::os::unix::fs::symlink("/dev/zero", &target).unwrap();
            }
            FileDamage::Folder => {
                std::fs::remove_file(&target).unwrap();
                std::fs::create_dir(&target).unwrap();
            }
        }
        let options = SessionOptions { provider: Provider::Cpu, ..Default::default() };
        match EmotionModel::load(copy.path(), Variant::Fp32, &options) {
            Ok(_) => prop_assert!(
                !matches!(damage, FileDamage::LinkToDevice | FileDamage::Folder),
                "a model file that is not a regular file was loaded"
            ),
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains(&copy.path().display().to_string()), "{}", message);
            }
        }
    }
}
