//! `emoedge run` with several inputs: one process, one shared model, results per stream.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use emoedge_tests::media;

fn emoedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emoedge")).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn results(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const CPU: [&str; 4] = ["--precision", "int8", "--execution-provider", "cpu"];

#[test]
fn streams_share_one_model_and_each_result_names_its_stream() {
    let (one, two) = (media("single_face.mp4"), media("WolfgangLanger_Pexels.mp4"));
    let alone = tempfile::tempdir().unwrap();
    let output = emoedge(&[&["run", &one, "--out", alone.path().to_str().unwrap()][..], &CPU].concat());
    assert!(output.status.success(), "{}", text(&output));

    let out = tempfile::tempdir().unwrap();
    let output = emoedge(&[&["run", &one, &two, "--out", out.path().to_str().unwrap()][..], &CPU].concat());
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("544 frames across 2 streams"), "{log}");
    assert!(log.contains("one emotion model for the 2 streams:"), "{log}");
    assert!(log.contains("stream 0 track 1:") && log.contains("stream 1 track 1:"), "{log}");
    let all = results(out.path());
    let stream = |s: u64| all.iter().filter(|r| r["stream"] == s).cloned().collect::<Vec<_>>();
    let (first, second) = (stream(0), stream(1));
    assert_eq!(first.len() + second.len(), all.len(), "every result names its stream");
    assert!(second.len() > 400, "{}", second.len());
    // Sharing the model changes nothing a stream gets: the same results as on its own.
    let single = results(alone.path());
    assert_eq!(first.len(), single.len());
    for (a, b) in first.iter().zip(&single) {
        assert_eq!((&a["pts_ns"], &a["track"], &a["label"]), (&b["pts_ns"], &b["track"], &b["label"]));
    }
    for name in ["timeline-0-1.png", "timeline-1-1.png"] {
        assert!(out.path().join(name).is_file(), "{name}");
    }
}

#[test]
fn a_failing_stream_is_reported_and_the_others_go_on() {
    let out = tempfile::tempdir().unwrap();
    let missing = out.path().join("no-such-camera.mp4");
    let output = emoedge(
        &[
            &["run", &media("single_face.mp4"), missing.to_str().unwrap(), "--out", out.path().to_str().unwrap()][..],
            &CPU,
        ]
        .concat(),
    );
    let log = text(&output);
    assert!(!output.status.success(), "a failed stream fails the run: {log}");
    assert!(log.contains("stream 1 (") && log.contains("no-such-camera.mp4) failed"), "{log}");
    assert!(log.contains("the results of the 72 frames analysed are kept"), "{log}");
    let kept = results(out.path());
    assert!(kept.len() == 65 && kept.iter().all(|r| r["stream"] == 0), "{}", kept.len());
}

#[test]
fn annotate_takes_one_input() {
    let out = tempfile::tempdir().unwrap();
    let video = media("single_face.mp4");
    let annotated = out.path().join("a.mp4");
    let output = emoedge(&[
        "run",
        &video,
        &video,
        "--out",
        out.path().to_str().unwrap(),
        "--annotate",
        annotated.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(text(&output).contains("--annotate draws one video"), "{}", text(&output));
}
