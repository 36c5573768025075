//! How many live 640×360 streams at 24 frames/s one machine analyses in real time with the
//! default settings while publishing every result to MQTT, and the delay from a frame entering
//! the pipeline to its result arriving at a subscriber (median, p99).
//!
//! Each stream is the sample video `WolfgangLanger_Pexels.mp4` (640×360, 23.98 frames/s, 472
//! frames, one face) played live (`clocksync`: frames come at their real pace, as from a
//! camera); N of them go through one `emoedge run` (one shared model) that publishes to a real
//! Mosquitto on loopback, read by `mosquitto_sub`. N streams are sustained when every stream
//! delivered all its frames and the p99 delay stays under one second: a stream that cannot keep
//! up piles its frames up and its delay grows with the video. The delay is the subscriber's
//! arrival time minus the message's `frame_time_ms` (the wall-clock time its frame entered the
//! pipeline). `EMOEDGE_BENCH_STREAMS="1 2 3"` picks the counts tried (default 1 2 3 4 6);
//! `EMOEDGE_BENCH_ARGS="--reid"` adds options to `emoedge run` (split at white space).
//!
//! `cargo bench -p emoedge-cli --bench streams` (after `bash scripts/setup`)

// A benchmark is a program that stops on any failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use emoedge_tests::media;
use emoedge_tests::mqtt::{Mosquitto, Subscriber};

const FRAMES: u64 = 472;

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let counts: Vec<usize> = std::env::var("EMOEDGE_BENCH_STREAMS")
        .unwrap_or_else(|_| "1 2 3 4 6".into())
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let extra = std::env::var("EMOEDGE_BENCH_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let video = media("WolfgangLanger_Pexels.mp4");
    // The user's own live source: the file decoded and released at its frames' real times.
    let source = format!("filesrc location={video} ! qtdemux ! h264parse ! avdec_h264 ! clocksync");
    println!("`emoedge run` with the default settings{}", extra.iter().map(|a| format!(" {a}")).collect::<String>());
    println!(
        "| streams | frames per stream | results published = received | delay median | delay p99 | delay max | wall | faces embedded | sustained |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for n in counts {
        let broker = Mosquitto::start();
        let mut subscriber = Subscriber::start(&broker, "bench/#", None);
        let out = tempfile::tempdir().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_emoedge"));
        command.args(["run", "--out", out.path().to_str().unwrap(), "--execution-provider", "cpu"]);
        command.args(["--publish", &broker.url("bench"), "--device-name", "bench"]).args(&extra);
        for _ in 0..n {
            command.args(["--source", &source]);
        }
        let started = Instant::now();
        let output = command.output().unwrap();
        let wall = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let frames: Vec<u64> = (0..n)
            .map(|i| {
                let line = stdout.lines().find(|l| l.starts_with(&format!("stream {i} ("))).unwrap_or("");
                let after = line.split("): ").nth(1).unwrap_or("0");
                after.split_whitespace().next().unwrap_or("0").parse().unwrap_or(0)
            })
            .collect();
        let frames = if n == 1 {
            // One stream prints no per-stream line: its frames are the run's.
            let summary = stdout.lines().find(|l| l.contains(" frames in ")).unwrap_or("0");
            vec![summary.split_whitespace().next().unwrap_or("0").parse().unwrap_or(0)]
        } else {
            frames
        };
        let results = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap().lines().count();
        subscriber.until(Duration::from_secs(30), |m| m.len() >= results);
        let mut delays: Vec<i64> = subscriber
            .messages
            .iter()
            .zip(&subscriber.arrived_ms)
            .filter_map(|((_, payload), &arrived)| {
                let message: serde_json::Value = serde_json::from_str(payload).ok()?;
                Some(arrived as i64 - message["frame_time_ms"].as_u64()? as i64)
            })
            .collect();
        delays.sort_unstable();
        assert!(!delays.is_empty(), "no delays measured: {stdout}");
        let (median, p99, max) = (percentile(&delays, 0.5), percentile(&delays, 0.99), *delays.last().unwrap());
        // `face embedder 0.22 s for 20 faces` in the summary when re-identification ran.
        let embedded = stdout.split("face embedder ").nth(1).and_then(|s| s.split_whitespace().nth(3)).unwrap_or("0");
        let sustained = frames.iter().all(|&f| f == FRAMES) && p99 < 1000;
        println!(
            "| {n} | {} | {results} = {} | {median} ms | {p99} ms | {max} ms | {:.1} s | {embedded} | {} |",
            frames.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
            subscriber.messages.len(),
            wall.as_secs_f64(),
            if sustained { "yes" } else { "no" }
        );
    }
}
