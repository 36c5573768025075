//! `emoedge run`, the main job, end to end on the real sample videos.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use emoedge_tests::{default_bundle as bundle, interrupt, media};

fn emoedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emoedge")).args(args).output().unwrap()
}

#[test]
fn run_writes_results_timelines_and_an_annotated_video() {
    let out = tempfile::tempdir().unwrap();
    let annotated = out.path().join("annotated.mp4");
    let output = emoedge(&[
        "run",
        &media("single_face.mp4"),
        "--out",
        out.path().to_str().unwrap(),
        "--precision",
        "int8",
        "--execution-provider",
        "cpu",
        "--annotate",
        annotated.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("72 frames in") && stdout.contains("on cpu; 1 track(s) with results"), "{stdout}");
    assert!(stdout.contains("time in ONNX Runtime: face detector"), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("track 1: 0.")),
        "the text timeline starts at the 8th frame:\n{stdout}"
    );

    let results = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = results.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 65);
    for line in &lines {
        assert_eq!(line["track"], 1);
        assert_eq!(line["probabilities"].as_array().unwrap().len(), 7);
        assert!(line["pts_ns"].as_u64().is_some() && line["bbox"].as_array().unwrap().len() == 4);
        assert!(line["gate"].as_array().unwrap().len() == 2);
    }
    let png = std::fs::read(out.path().join("timeline-1.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // The annotated MP4 decodes to the input's frames at the input's times (Debian's
    // avenc_mpeg4 drops timestamps: every frame would sit at 0 s).
    let times = |path: &str| {
        let mut video = emoedge_vision::video::VideoSource::open(path).unwrap();
        let mut times = Vec::new();
        while let Some(frame) = video.next_frame().unwrap() {
            times.push(frame.pts_ns.expect("every frame has a timestamp") as i64);
        }
        times.iter().map(|t| t - times[0]).collect::<Vec<i64>>()
    };
    let (input, output) = (times(&media("single_face.mp4")), times(annotated.to_str().unwrap()));
    assert_eq!(output.len(), 72);
    assert!(output[71] > 2_000_000_000, "the annotated video lasts as long as the input: {output:?}");
    for (i, (a, b)) in input.iter().zip(&output).enumerate() {
        assert!((a - b).abs() < 1_000_000, "frame {i}: input at {a} ns, annotated at {b} ns");
    }
    let leftovers = temp_entries(out.path());
    assert!(leftovers.is_empty(), "no temp files remain: {leftovers:?}");
}

#[test]
fn run_on_a_video_without_faces_succeeds_with_no_results() {
    let out = tempfile::tempdir().unwrap();
    // An earlier run's timelines in the reused folder would sit beside these (empty) results.
    for stale in ["timeline-1.png", "timeline-7.png"] {
        std::fs::write(out.path().join(stale), "an earlier run's plot").unwrap();
    }
    std::fs::write(out.path().join("notes.txt"), "the user's").unwrap();
    let output =
        emoedge(&["run", &media("no_face.mp4"), "--out", out.path().to_str().unwrap(), "--execution-provider", "cpu"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("no face was found") && stdout.contains("0 track(s)"), "{stdout}");
    assert_eq!(std::fs::read_to_string(out.path().join("results.jsonl")).unwrap(), "");
    assert!(!out.path().join("timeline-1.png").exists() && !out.path().join("timeline-7.png").exists());
    assert!(out.path().join("notes.txt").exists(), "only emoedge's own outputs are replaced");
}

fn fails(args: &[&str], needles: &[&str]) {
    let output = emoedge(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("emoedge: error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` missing: {stderr}");
    }
}

#[test]
fn bad_input_is_one_clear_error_and_leaves_no_results_file() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    fails(&["run", "/nonexistent.mp4", "--out", dir], &["/nonexistent.mp4 does not exist"]);
    fails(
        &["run", &media("single_face.mp4"), "--out", dir, "--model", "/nonexistent"],
        &["/nonexistent/manifest.json"],
    );
    let output = emoedge(&["run", &media("single_face.mp4"), "--out", dir, "--precision", "fp64"]);
    assert_eq!(output.status.code(), Some(2), "clap refuses the value");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid value 'fp64'") && stderr.contains("auto, fp32, fp16, int8"), "{stderr}");
    let not_video = out.path().join("not-a-video.mp4");
    std::fs::write(&not_video, "text").unwrap();
    fails(&["run", not_video.to_str().unwrap(), "--out", dir, "--model", bundle().to_str().unwrap()], &[]);
    assert!(!out.path().join("results.jsonl").exists());
}

#[test]
fn ctrl_c_ends_a_run_cleanly_with_the_results_so_far() {
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args([
            "run",
            &media("WolfgangLanger_Pexels.mp4"),
            "--out",
            out.path().to_str().unwrap(),
            "--execution-provider",
            "cpu",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until results are flowing (the temp results file grows), then interrupt as a user would.
    let partial = || {
        std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(".results."))
    };
    let started = std::time::Instant::now();
    while partial().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len()) == 0 {
        assert!(started.elapsed().as_secs() < 120, "no results after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let output = interrupt(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    let lines = results.lines().count();
    assert!(lines > 0 && lines < 465, "an interrupted run keeps what it had: {lines} results");
    assert!(out.path().join("timeline-1.png").is_file());
    assert_eq!(partial(), None, "the temp file became results.jsonl");
}

#[test]
fn values_the_element_would_refuse_are_refused_by_the_parser_with_the_range() {
    // Each of these once passed the parser and panicked in `set_property` or exhausted memory
    // (issue 14): the command line now accepts exactly what the element does.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let video = media("single_face.mp4");
    for (command, option, value, range) in [
        ("run", "--smoothing", "0.995", "0..=0.99"),
        ("run", "--smoothing", "-0.1", "0..=0.99"),
        ("run", "--device-id", "-1", "0..=64"),
        ("run", "--device-id", "65", "0..=64"),
        ("run", "--detect-interval", "0", "1..=1000"),
        ("run", "--encode-interval", "0", "1..=1000"),
        ("faces", "--min-face-size", "0", "8..=4096"),
        ("faces", "--min-face-size", "1", "8..=4096"),
        ("faces", "--crop-size", "200000", "16..=1024"),
    ] {
        let output = emoedge(&[command, &video, "--out", dir, &format!("{option}={value}")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command} {option} {value}: {stderr}");
        assert!(stderr.contains(&format!("invalid value '{value}' for '{option}")), "{stderr}");
        assert!(stderr.contains(range), "{option} {value}: the range {range} is named: {stderr}");
    }
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing was written");
}

#[test]
fn a_second_run_on_a_folder_in_use_is_refused_and_the_first_keeps_its_results() {
    // Issue 14: two runs on one --out used to tear each other's results.jsonl. Here the test
    // holds the folder's lock as a running emoedge would.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let held = emoedge_support::FolderLock::acquire(out.path()).unwrap();
    for command in ["run", "faces"] {
        fails(
            &[command, &media("single_face.mp4"), "--out", dir],
            &[
                &format!("cannot use {dir} as the output folder"),
                &format!("another emoedge run is writing to {dir}"),
                "choose another output folder",
            ],
        );
    }
    assert!(!out.path().join("results.jsonl").exists() && !out.path().join("index.jsonl").exists());
    drop(held);
    let output = emoedge(&["run", &media("single_face.mp4"), "--out", dir, "--execution-provider", "cpu"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(out.path().join("results.jsonl")).unwrap().lines().count(), 65);
}

#[test]
fn a_truncated_video_is_an_error_that_keeps_the_results_before_the_cut() {
    let out = tempfile::tempdir().unwrap();
    let video = std::fs::read(media("WolfgangLanger_Pexels.mp4")).unwrap();
    let cut = out.path().join("cut.mp4");
    std::fs::write(&cut, &video[..163_229]).unwrap();
    let results = out.path().join("results");
    let dir = results.to_str().unwrap();
    fails(
        &["run", cut.to_str().unwrap(), "--out", dir, "--execution-provider", "cpu"],
        &[
            "cut.mp4 ends early",
            "truncated",
            &format!("the results of the 37 frames analysed are kept in {dir}/results.jsonl"),
        ],
    );
    let kept = std::fs::read_to_string(results.join("results.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 30, "37 frames, a result from the 8th on");
    assert!(kept.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "whole lines only");
    assert!(results.join("timeline-1.png").is_file());
}

#[test]
fn an_annotation_that_cannot_be_written_keeps_the_results() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    // The annotated video's folder is a file: the annotator fails; the run's results must not.
    std::fs::write(out.path().join("blocker"), "x").unwrap();
    let annotated = out.path().join("blocker/annotated.mp4");
    let output = emoedge(&[
        "run",
        &media("single_face.mp4"),
        "--out",
        dir,
        "--execution-provider",
        "cpu",
        "--annotate",
        annotated.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("blocker"), "the failing path is named: {stderr}");
    assert!(stderr.contains("the results of the 72 frames analysed are kept"), "{stderr}");
    assert_eq!(std::fs::read_to_string(out.path().join("results.jsonl")).unwrap().lines().count(), 65);
}

/// The hidden temp entries in `out` (the lock file aside).
fn temp_entries(out: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.') && n != emoedge_support::FolderLock::FILE)
        .collect()
}

#[test]
fn a_run_killed_mid_write_leaves_the_earlier_results_whole_and_the_next_run_clears_its_temp() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let earlier = emoedge(&["run", &media("single_face.mp4"), "--out", dir, "--execution-provider", "cpu"]);
    assert!(earlier.status.success());
    let results = std::fs::read(out.path().join("results.jsonl")).unwrap();
    // An endless live source (`--source`, as for faces), killed with SIGKILL while it writes.
    let source = format!(
        "multifilesrc location={} loop=true caps=image/jpeg,framerate=10/1 ! jpegdec",
        media("single_face.jpg")
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["run", "--source", &source, "--out", dir, "--execution-provider", "cpu"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let written = || {
        temp_entries(out.path())
            .iter()
            .map(|n| std::fs::metadata(out.path().join(n)).map_or(0, |m| m.len()))
            .sum::<u64>()
    };
    while written() == 0 {
        assert!(started.elapsed().as_secs() < 120, "no results after 2 minutes");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(out.path().join("results.jsonl")).unwrap(), results, "the earlier results are whole");
    assert_eq!(temp_entries(out.path()).len(), 1, "the killed run's temp file stays until the next run");
    let next = emoedge(&["run", &media("single_face.mp4"), "--out", dir, "--execution-provider", "cpu"]);
    assert!(next.status.success());
    assert_eq!(temp_entries(out.path()), Vec::<String>::new(), "the next run removed it");
}

#[test]
fn results_that_cannot_be_written_are_one_clear_error_and_leave_the_earlier_ones_whole() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let earlier = emoedge(&["run", &media("single_face.mp4"), "--out", dir, "--execution-provider", "cpu"]);
    assert!(earlier.status.success());
    let results = std::fs::read(out.path().join("results.jsonl")).unwrap();
    // A full disk without root: a 64 KiB file-size limit (the sample video's results are
    // 160 KiB) makes writes fail as ENOSPC would, with SIGXFSZ ignored so they return errors.
    let output = Command::new("sh")
        .args([
            "-c",
            r#"trap '' XFSZ; ulimit -f 128; exec "$0" run "$1" --out "$2" --execution-provider cpu"#,
            env!("CARGO_BIN_EXE_emoedge"),
            &media("WolfgangLanger_Pexels.mp4"),
            dir,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write {dir}/results.jsonl: File too large"))
            && stderr.contains("free space there or choose another --out"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out.path().join("results.jsonl")).unwrap(), results, "the earlier results are whole");
    assert_eq!(temp_entries(out.path()), Vec::<String>::new(), "no half-written temp file stays");
}

#[test]
fn the_encode_interval_has_one_name_in_the_help_and_the_old_one_still_works() {
    let help = emoedge(&["run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--encode-interval <N>") && !help.contains("--interval <"), "{help}");
    let out = tempfile::tempdir().unwrap();
    let output = emoedge(&["run", &media("single_face.mp4"), "--out", out.path().to_str().unwrap(), "--interval=0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("1..=1000"), "the old name reaches the same flag: {stderr}");
}

#[test]
fn files_it_cannot_find_are_errors_that_name_the_flag_that_gives_them() {
    // An emoedge outside any checkout, run from an empty folder: nothing is found by searching.
    let away = tempfile::tempdir().unwrap();
    let binary = away.path().join("emoedge");
    std::fs::copy(env!("CARGO_BIN_EXE_emoedge"), &binary).unwrap();
    let arch = std::env::consts::ARCH;
    let library = emoedge_tests::workspace_root().join(format!("assets/onnxruntime/{arch}/libonnxruntime.so"));
    assert!(library.is_file(), "scripts/setup installs ONNX Runtime at {}", library.display());
    let out = away.path().join("out");
    let run = |extra: &[&str]| {
        let mut command = Command::new(&binary);
        command.current_dir(away.path()).env("EMOEDGE_ORT_LIB", &library).env_remove("ORT_DYLIB_PATH");
        command.args(["run", &media("single_face.mp4"), "--out", out.to_str().unwrap()]).args(extra);
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(&[]);
    assert!(
        stderr.contains("the bundled default model (models/default/bundle) was not found")
            && stderr.contains("run scripts/setup, or pass --model DIR"),
        "{stderr}"
    );
    let bundle = bundle();
    let stderr = run(&["--model", bundle.to_str().unwrap()]);
    assert!(
        stderr.contains("the face detector (assets/detectors/mtcnn) was not found")
            && stderr.contains("pass --detector-dir DIR"),
        "{stderr}"
    );
    let stderr = run(&["--model", bundle.to_str().unwrap(), "--detector", "blazeface-back"]);
    assert!(
        stderr.contains("the face detector (assets/detectors/blazeface-back) was not found"),
        "--detector picks the folder: {stderr}"
    );
    let detector = emoedge_tests::detector_dir();
    let stderr = run(&["--model", bundle.to_str().unwrap(), "--detector-dir", detector.to_str().unwrap(), "--reid"]);
    assert!(
        stderr.contains("the face embedder for re-identification (assets/reid/embedder) was not found")
            && stderr.contains("pass --embedder DIR"),
        "{stderr}"
    );
    let empty = away.path().join("no-detector");
    std::fs::create_dir(&empty).unwrap();
    let stderr = run(&["--model", bundle.to_str().unwrap(), "--detector-dir", empty.to_str().unwrap()]);
    assert!(stderr.contains(&empty.join("pnet.onnx").display().to_string()), "the given folder is used: {stderr}");
}

/// `emoedge run` on the demo video with `extra` options: (pts in ns, label) per result.
fn demo_results(extra: &[&str]) -> Vec<(u64, String)> {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["run", &media("WolfgangLanger_Pexels.mp4")[..], "--out", out.path().to_str().unwrap()]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    args.extend(extra.iter().map(|a| a.to_string()));
    let output = emoedge(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    results
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|r| (r["pts_ns"].as_u64().unwrap(), r["label"].as_str().unwrap().to_string()))
        .collect()
}

/// The share of `results` between `from` and `to` seconds labelled `label`.
fn share(results: &[(u64, String)], from: f64, to: f64, label: &str) -> f64 {
    let inside: Vec<_> = results.iter().filter(|(t, _)| (from * 1e9..=to * 1e9).contains(&(*t as f64))).collect();
    inside.iter().filter(|(_, l)| l == label).count() as f64 / inside.len().max(1) as f64
}

/// The share of results at the same times with the same label.
fn agreement(a: &[(u64, String)], b: &[(u64, String)]) -> f64 {
    let b: std::collections::HashMap<_, _> = b.iter().cloned().collect();
    let common: Vec<_> = a.iter().filter(|(t, _)| b.contains_key(t)).collect();
    assert!(common.len() * 100 >= a.len() * 99, "{} of {} results at the same times", common.len(), a.len());
    common.iter().filter(|(t, l)| &b[t] == l).count() as f64 / common.len() as f64
}

#[test]
fn the_demo_reads_sad_then_happy_whatever_the_window_and_the_detector() {
    // The defaults (MTCNN, the mean of frames), the clip head, BlazeFace proposing for O-Net, and
    // MTCNN on every frame.
    let default = demo_results(&[]);
    let clip_head = demo_results(&["--window", "clip-head"]);
    let blazeface = demo_results(&["--detector", "blazeface-back"]);
    let mtcnn = demo_results(&["--detect-interval", "1"]);
    for (name, results) in
        [("default", &default), ("clip head", &clip_head), ("BlazeFace", &blazeface), ("MTCNN", &mtcnn)]
    {
        // The woman cries from 0.5 s to 9.5 s and laughs from 11 s (the recipe's labels).
        let (sad, happy) = (share(results, 0.5, 9.5, "sad"), share(results, 11.0, 60.0, "happy"));
        assert!(sad >= 0.8 && happy >= 0.95, "{name}: crying read sad {sad:.3}, laughing read happy {happy:.3}");
    }
    // Issue 26: the lighter detector's crops keep the labels of MTCNN on every frame.
    let agree = agreement(&blazeface, &mtcnn);
    assert!(agree >= 0.97, "labels agree with MTCNN's on {agree:.3} of the results");
}
