//! End-to-end tests across emoedge's crates live in `tests/`; this library holds their shared
//! helpers.

// Test helpers: a missing asset or an unwritable temp folder should stop the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod fuzz;
pub mod http;
pub mod mqtt;
pub mod prometheus;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// Deterministic test inputs in [-1, 1) (see `emoedge_models::seeded`).
pub fn test_values(len: usize, seed: u64) -> Vec<f32> {
    emoedge_models::seeded::seeded_values(len, seed)
}

/// The `assets/` folder that `scripts/setup` fills, checked to be set up.
pub fn assets() -> PathBuf {
    let dir = workspace_root().join("assets");
    assert!(dir.join("mtcnn/pnet.onnx").is_file(), "assets are missing: run scripts/setup first");
    dir
}

/// A sample video or image fetched by `scripts/setup` (`assets/media/<name>`).
pub fn media(name: &str) -> String {
    assets().join("media").join(name).display().to_string()
}

/// The committed default model bundle.
pub fn default_bundle() -> PathBuf {
    workspace_root().join("models/default/bundle")
}

/// The MTCNN detector folder that scripts/setup fills.
pub fn detector_dir() -> PathBuf {
    workspace_root().join("assets/detectors/mtcnn")
}

/// A copy of the default bundle in a temp folder, for a test to damage.
pub fn bundle_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp folder");
    copy_tree(&default_bundle(), dir.path());
    dir
}

/// A copy of the default bundle whose manifest names `version` (a model to swap in).
pub fn bundle_versioned(version: &str) -> tempfile::TempDir {
    let copy = bundle_copy();
    let manifest = copy.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("the bundle has a manifest");
    let renamed = text.replace("\"model_version\": \"default-2\"", &format!("\"model_version\": \"{version}\""));
    assert_ne!(text, renamed, "the default bundle's version is default-2");
    std::fs::write(&manifest, renamed).expect("a writable temp folder");
    copy
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).expect("the bundle is readable") {
        let path = entry.expect("a readable entry").path();
        let target = to.join(path.file_name().expect("entries have names"));
        if path.is_dir() {
            std::fs::create_dir_all(&target).expect("a writable temp folder");
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("a writable temp folder");
        }
    }
}

/// Interrupts a running command as Ctrl-C does (SIGINT) and collects its output; a command
/// that has not ended a minute later is killed and fails the test instead of hanging it.
pub fn interrupt(mut child: std::process::Child) -> std::process::Output {
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("`kill` runs");
    assert!(sent.success(), "SIGINT could not be sent to {pid}");
    let started = std::time::Instant::now();
    while child.try_wait().expect("the child can be waited for").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let output = child.wait_with_output().expect("the killed child can be waited for");
            panic!(
                "still running a minute after Ctrl-C (killed): {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("the child can be waited for")
}

/// A service's binary (Debian's `mosquitto`, `prometheus`, …), which `scripts/setup` installs.
pub fn binary(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = std::path::Path::new(dir).join(name);
        if path.exists() {
            return path.display().to_string();
        }
    }
    panic!("{name} is not installed: run scripts/setup (it installs the services the tests start)")
}

/// A loopback port nobody listens on (right now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
