//! The workspace's structural promises.

use std::process::Command;

use emoedge_tests::workspace_root;

fn normal_deps(package: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "-p", package])
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
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
