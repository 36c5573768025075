//! Fuzzing (proptest, stable toolchain) of what the model crate reads from files: bundle
//! manifests, model configs and safetensors weights, each a valid file damaged by a few
//! hostile edits. Whatever the input: no panic, no abort (huge allocations included), and
//! either a valid result or an error that names the file. Failing inputs are kept in
//! `proptest-regressions/fuzz.txt` and replayed first.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_models::Config;
use emoedge_models::manifest::Manifest;
use emoedge_models::reference::{HybridModel, cpu};
use emoedge_tests::fuzz::{Edit, apply_bytes, apply_json, edits};
use emoedge_tests::{default_bundle, workspace_root};
use proptest::prelude::*;

fn text(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

proptest! {
    #![proptest_config(emoedge_tests::fuzz::config(10_000))]

    #[test]
    fn a_damaged_manifest_is_valid_or_one_clear_error(edits in edits()) {
        let damaged = apply_json(&text(default_bundle().join("manifest.json")), &edits);
        let damaged = String::from_utf8_lossy(&damaged);
        match Manifest::parse(&damaged, "fuzz/manifest.json") {
            Ok(manifest) => {
                // What the runtime relies on once a manifest is accepted.
                prop_assert_eq!(manifest.crop_size, manifest.config.crop_size);
                prop_assert_eq!(manifest.clip_length, manifest.config.clip_length);
                prop_assert!(manifest.preprocessing.std.iter().all(|s| s.is_finite() && *s > 0.0));
                prop_assert!(!manifest.labels.is_empty());
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.contains("fuzz/manifest.json") || message.contains("config"), "{}", message);
            }
        }
    }
}

proptest! {
    #![proptest_config(emoedge_tests::fuzz::config(300))]

    #[test]
    fn a_damaged_config_is_refused_or_builds_its_model(edits in edits()) {
        let damaged = apply_json(&text(workspace_root().join("models/default/config.json")), &edits);
        if let Ok(config) = Config::from_json(&String::from_utf8_lossy(&damaged)) {
            // Accepted means buildable: every shape fits and the allocation is sane.
            prop_assert!(HybridModel::init(&config, &cpu(), 0).is_ok());
        }
    }

    #[test]
    fn damaged_weights_are_refused_with_the_file_named(
        edits in edits(),
        header_only in any::<bool>(),
    ) {
        let weights = std::fs::read(workspace_root().join("models/default/weights.safetensors")).unwrap();
        // The 8-byte length and the JSON header say where every tensor is: damage them most.
        let header_end = 8 + u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
        let edits: Vec<Edit> = edits
            .into_iter()
            .map(|e| match e {
                Edit::Overwrite { at, bytes } if header_only => Edit::Overwrite { at: at % header_end, bytes },
                other => other,
            })
            .collect();
        let damaged = apply_bytes(&weights, &edits);
        let truncated = damaged.len() < weights.len();
        match HybridModel::from_safetensors(&Config::default(), damaged, "fuzz/weights.safetensors", &cpu()) {
            // Overwritten tensor data still loads (it is only numbers); a cut file never does.
            Ok(_) => prop_assert!(!truncated, "a truncated file loaded"),
            Err(e) => prop_assert!(e.to_string().contains("fuzz/weights.safetensors"), "{}", e),
        }
    }
}
