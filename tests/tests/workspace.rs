//! The workspace's structural promises.

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

#[test]
fn the_edge_binary_never_links_the_training_framework() {
    let tree = normal_deps("emoedge-runtime");
    assert!(tree.contains("emoedge-models"), "the runtime uses the one model definition:\n{tree}");
    let burn: Vec<&str> = tree.lines().filter(|l| l.starts_with("burn")).collect();
    assert!(burn.is_empty(), "emoedge-runtime pulls in {burn:?}");
}

#[test]
fn trainer_and_exporter_share_the_reference_model() {
    for package in ["emoedge-trainer", "emoedge-exporter"] {
        let tree = normal_deps(package);
        assert!(tree.lines().any(|l| l.starts_with("burn-flex")), "{package} lacks the reference forward");
    }
}

#[test]
fn the_plugin_and_binary_use_no_gstreamer_api_newer_than_1_16() {
    // gstreamer-rs declares an API only when its `v1_XX` feature is on; with none above v1_16,
    // nothing newer than JetPack 5's GStreamer 1.16 can be called (or linked).
    for package in ["gst-plugin-emoedge", "emoedge-runtime"] {
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
