//! The workspace's structural promises.

// Test helpers stop the test loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use emoedge_tests::workspace_root;

/// `cargo tree` of `package` over the given edge kinds, one crate per line.
fn tree(package: &str, edges: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["tree", "--offline", "--locked", "-e", edges, "--prefix", "none", "-p", package])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn normal_deps(package: &str) -> String {
    tree(package, "normal")
}

/// Crate names in a `cargo tree` listing that start with any of `prefixes`.
fn crates_named<'a>(tree: &'a str, prefixes: &[&str]) -> Vec<&'a str> {
    tree.lines().filter(|l| prefixes.iter().any(|p| l.starts_with(&format!("{p} ")))).collect()
}

const EDGE: [&str; 4] = ["emoedge-inference", "emoedge-vision", "gst-plugin-emoedge", "emoedge-cli"];

#[test]
fn the_edge_crates_never_link_the_training_framework() {
    for package in EDGE {
        let tree = normal_deps(package);
        assert!(tree.contains("emoedge-models"), "{package} uses the one model definition:\n{tree}");
        let burn: Vec<&str> = tree.lines().filter(|l| l.starts_with("burn")).collect();
        assert!(burn.is_empty(), "{package} pulls in {burn:?}");
    }
}

const GSTREAMER: [&str; 6] =
    ["gstreamer", "gstreamer-app", "gstreamer-base", "gstreamer-video", "glib", "gst-plugin-emoedge"];
const CLI: [&str; 4] = ["indicatif", "ctrlc", "plotters", "emoedge-cli"];

#[test]
fn the_inference_core_and_the_exporter_hold_no_gstreamer_and_no_cli() {
    for package in ["emoedge-inference", "emoedge-exporter"] {
        let tree = normal_deps(package);
        assert!(tree.contains("ort "), "{package} runs ONNX Runtime:\n{tree}");
        let found = crates_named(&tree, &[GSTREAMER.as_slice(), CLI.as_slice()].concat());
        assert!(found.is_empty(), "{package} pulls in {found:?}");
    }
    let core = normal_deps("emoedge-inference");
    let clap = crates_named(&core, &["clap"]);
    assert!(clap.is_empty(), "the inference core parses no command line: {clap:?}");
}

#[test]
fn publishing_holds_no_gstreamer_no_inference_and_no_cli() {
    let tree = normal_deps("emoedge-publish");
    assert!(tree.contains("rumqttc "), "emoedge-publish speaks MQTT through rumqttc:\n{tree}");
    let found = crates_named(&tree, &[GSTREAMER.as_slice(), CLI.as_slice(), &["ort", "emoedge-inference"]].concat());
    assert!(found.is_empty(), "emoedge-publish pulls in {found:?}");
}

#[test]
fn the_trainer_uses_vision_but_no_element_and_no_runtime_cli() {
    let tree = normal_deps("emoedge-trainer");
    assert!(tree.contains("emoedge-vision"), "the trainer captures faces with the runtime's code:\n{tree}");
    let found = crates_named(&tree, &["gst-plugin-emoedge", "emoedge-cli", "ctrlc"]);
    assert!(found.is_empty(), "emoedge-trainer pulls in {found:?}");
}

#[test]
fn trainer_and_exporter_share_the_reference_model() {
    for package in ["emoedge-trainer", "emoedge-exporter"] {
        let tree = normal_deps(package);
        assert!(tree.lines().any(|l| l.starts_with("burn-flex")), "{package} lacks the reference forward");
    }
}

#[test]
fn the_edge_crates_use_no_gstreamer_api_newer_than_1_16() {
    // gstreamer-rs declares an API only when its `v1_XX` feature is on; with none above v1_16,
    // nothing newer than JetPack 5's GStreamer 1.16 can be called (or linked).
    for package in ["emoedge-vision", "gst-plugin-emoedge", "emoedge-cli"] {
        let tree = tree(package, "features,normal");
        assert!(tree.lines().any(|l| l.starts_with("gstreamer ")), "{package} uses GStreamer:\n{tree}");
        let newer: Vec<&str> = tree
            .lines()
            .filter(|l| l.starts_with("gstreamer") || l.starts_with("glib"))
            .filter(|l| {
                ["v1_18", "v1_20", "v1_22", "v1_24", "v1_26", "v1_28"]
                    .iter()
                    .any(|v| l.contains(&format!("feature \"{v}\"")))
            })
            .collect();
        assert!(newer.is_empty(), "{package} enables GStreamer API newer than 1.16: {newer:?}");
    }
}

#[test]
fn the_model_contract_holds_no_helpers_and_publishing_and_plots_need_no_model() {
    let support = normal_deps("emoedge-support");
    let found = crates_named(&support, &["emoedge-models", "burn", "ort", "gstreamer", "rumqttc", "emoedge-cli"]);
    assert!(found.is_empty(), "the helpers are for every layer: they pull in {found:?}");
    for package in ["emoedge-publish", "emoedge-plot"] {
        let tree = normal_deps(package);
        assert!(tree.contains("emoedge-support"), "{package} writes files through the helpers:\n{tree}");
        let found = crates_named(&tree, &["emoedge-models"]);
        assert!(found.is_empty(), "{package} needs no model definition, yet pulls in {found:?}");
    }
}
