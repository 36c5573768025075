//! The built plugin file as GStreamer's own tools load it: `gst-inspect-1.0` documents the
//! element, and `gst-launch-1.0` runs it on a real video in a separate process.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// A folder holding only the `libgstemoedge.so` that cargo built for this test (beside the
/// test binary in `deps/`; `cargo test` does not copy it up to `target/<profile>/`).
fn plugin_dir() -> tempfile::TempDir {
    let exe = std::env::current_exe().unwrap();
    let built = exe.parent().unwrap().join("libgstemoedge.so");
    assert!(built.is_file(), "{} was not built", built.display());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&built, dir.path().join("libgstemoedge.so")).unwrap();
    dir
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs a GStreamer tool with only this plugin added and a private registry.
fn gst_tool(tool: &str, args: &[&str]) -> Output {
    let registry = tempfile::tempdir().unwrap();
    let plugins = plugin_dir();
    Command::new(tool)
        .args(args)
        .current_dir(workspace())
        .env("GST_PLUGIN_PATH", plugins.path())
        .env("GST_REGISTRY", registry.path().join("registry.bin"))
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}; scripts/setup installs gstreamer1.0-tools"))
}

#[test]
fn gst_inspect_documents_the_element() {
    let output = gst_tool("gst-inspect-1.0", &["emotiondetect"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    for needle in [
        "Filter/Analyzer/Video",
        "libgstemoedge.so",
        "emoedge GStreamer plugin",
        "model ",
        "precision ",
        "execution-provider",
        "engine-cache-dir",
        "device-id",
        "interval ",
        "clip-length",
        "smoothing",
        "min-face-size",
        "face-source",
        "full-frame",
        "async ",
        "active-provider",
        "Range: 1 - 1000",
    ] {
        assert!(text.contains(needle), "`{needle}` missing:\n{text}");
    }
}

#[test]
fn gst_launch_runs_the_plugin_on_a_real_video() {
    let video = workspace().join("assets/media/single_face.mp4");
    let pipeline = format!(
        "filesrc location={} ! decodebin ! videoconvert ! emotiondetect precision=fp32 ! fakesink",
        video.display()
    );
    let args: Vec<&str> = std::iter::once("-m").chain(pipeline.split(' ')).collect();
    let output = gst_tool("gst-launch-1.0", &args);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
    // One element message per result: 72 frames, the first clip full at the 8th.
    // The structure's fields stand in name order.
    let results =
        text.lines().filter(|l| l.contains("(element): emotion, bbox=") && l.contains(" track=(guint64)1;")).count();
    assert_eq!(results, 65, "{text}");
}

#[test]
fn gst_launch_reports_a_bad_model_and_exits_cleanly() {
    let output = gst_tool(
        "gst-launch-1.0",
        &[
            "videotestsrc",
            "num-buffers=3",
            "!",
            "videoconvert",
            "!",
            "emotiondetect",
            "model=/nonexistent",
            "!",
            "fakesink",
        ],
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("emotiondetect cannot start: cannot read /nonexistent/manifest.json"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}
