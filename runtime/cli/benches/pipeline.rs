//! Frames per second of `emoedge run` on the sample video with each bundle variant on the CPU
//! provider, and where the time goes (inside ONNX Runtime per model vs the rest). Prints a
//! Markdown table.
//!
//! `cargo bench -p emoedge-cli --bench pipeline` (EMOEDGE_BENCH_VIDEO picks another video)

// A benchmark is a program that stops on any failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn number_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    text[start..].split_whitespace().next()
}

fn main() {
    let root = emoedge_tests::workspace_root();
    let video = std::env::var("EMOEDGE_BENCH_VIDEO")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("assets/media/WolfgangLanger_Pexels.mp4"));
    println!("video: {}", video.display());
    println!(
        "| variant | frames | wall (s) | frames/s | detector ORT (s) | frame model ORT (s) | clip model ORT (s) | rest (s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for variant in ["fp32", "fp16", "int8"] {
        let out = tempfile::tempdir().expect("temp dir");
        let output = Command::new(env!("CARGO_BIN_EXE_emoedge"))
            .args([
                "run",
                video.to_str().expect("utf-8 path"),
                "--precision",
                variant,
                "--execution-provider",
                "cpu",
                "--out",
            ])
            .arg(out.path())
            .output()
            .expect("emoedge runs");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}{}", String::from_utf8_lossy(&output.stderr));
        let get = |marker: &str| {
            number_after(&text, marker).unwrap_or("?").trim_matches(|c| c == '(' || c == ',').to_string()
        };
        let frames =
            text.lines().find(|l| l.contains(" frames in ")).and_then(|l| l.split_whitespace().next()).unwrap_or("?");
        println!(
            "| {variant} | {frames} | {} | {} | {} | {} | {} | {} |",
            get(" frames in "),
            get("s ("),
            get("ONNX Runtime: face detector "),
            get("emotion frame model "),
            get("clip model "),
            get("the rest ")
        );
    }
}
