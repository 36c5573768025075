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
//! `EMOEDGE_BENCH_ARGS="--reid"` adds options to `emoedge run` (split at white space);
//! `EMOEDGE_BENCH_SERVE=1` runs the streams through `emoedge serve` instead (streams in its TOML
//! file, ended by SIGTERM once their sources have ended; default settings).
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
    let serve = std::env::var("EMOEDGE_BENCH_SERVE").is_ok_and(|v| v == "1");
    let how = if serve { "`emoedge serve` (streams in its TOML file)" } else { "`emoedge run`" };
    println!("{how} with the default settings{}", extra.iter().map(|a| format!(" {a}")).collect::<String>());
    println!(
        "| streams | frames per stream | results published = received | delay median | delay p99 | delay max | wall | faces embedded | sustained |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for n in counts {
        let broker = Mosquitto::start();
        let mut subscriber = Subscriber::start(&broker, "bench/#", None);
        let started = Instant::now();
        let (frames, results, embedded) =
            if serve { through_serve(n, &source, &broker) } else { through_run(n, &source, &broker, &extra) };
        let wall = started.elapsed();
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
        assert!(!delays.is_empty(), "no delays measured");
        let (median, p99, max) = (percentile(&delays, 0.5), percentile(&delays, 0.99), *delays.last().unwrap());
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

/// N live streams through one `emoedge run`: frames per stream, results, faces embedded.
fn through_run(n: usize, source: &str, broker: &Mosquitto, extra: &[&str]) -> (Vec<u64>, usize, String) {
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_emoedge"));
    command.args(["run", "--out", out.path().to_str().unwrap(), "--execution-provider", "cpu"]);
    command.args(["--publish", &broker.url("bench"), "--device-name", "bench"]).args(extra);
    for _ in 0..n {
        command.args(["--source", source]);
    }
    let output = command.output().unwrap();
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
    // `face embedder 0.22 s for 20 faces` in the summary when re-identification ran.
    let embedded = stdout.split("face embedder ").nth(1).and_then(|s| s.split_whitespace().nth(3)).unwrap_or("0");
    (frames, results, embedded.to_string())
}

/// N live streams in one `emoedge serve`'s file: run until each stream's source has ended (as
/// `GET /streams` says), then SIGTERM; frames and results per stream from `GET /streams`.
fn through_serve(n: usize, source: &str, broker: &Mosquitto) -> (Vec<u64>, usize, String) {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("127.0.0.1:{}", emoedge_tests::free_port());
    let mut config = format!(
        "listen = \"{address}\"\nout = {:?}\nexecution_provider = \"cpu\"\npublish = {:?}\ndevice_name = \"bench\"\n",
        dir.path().join("out").display().to_string(),
        broker.url("bench")
    );
    for i in 0..n {
        config.push_str(&format!("[[stream]]\nname = \"s{i}\"\nsource = {}\n", serde_json::to_string(source).unwrap()));
    }
    let file = dir.path().join("serve.toml");
    std::fs::write(&file, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["serve", "--config"])
        .arg(&file)
        .env_remove("NOTIFY_SOCKET")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let streams = loop {
        std::thread::sleep(Duration::from_millis(500));
        assert!(child.try_wait().unwrap().is_none(), "emoedge serve ended early");
        if std::net::TcpStream::connect(&address).is_err() {
            continue;
        }
        let list = emoedge_tests::http::get(&address, "/streams");
        let streams: Vec<serde_json::Value> = serde_json::from_str(&list.body).unwrap();
        if streams.len() == n && streams.iter().all(|s| s["state"] != "running") {
            break streams;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the streams never ended");
    };
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    assert!(child.wait().unwrap().success(), "emoedge serve failed at SIGTERM");
    let frames = streams.iter().map(|s| s["frames"].as_u64().unwrap()).collect();
    let results = streams.iter().map(|s| s["results"].as_u64().unwrap() as usize).sum();
    (frames, results, "-".into())
}
