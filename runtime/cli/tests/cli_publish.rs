//! `emoedge run --publish`: every result of a run reaches a real Mosquitto broker, read back by
//! `mosquitto_sub`; a broker that is not there or refuses us is handled as documented.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::time::Duration;

use emoedge_tests::media;
use emoedge_tests::mqtt::{Mosquitto, Subscriber};

fn run(out: &std::path::Path, extra: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_emoedge"));
    command
        .args(["run", &media("single_face.mp4"), "--out", out.to_str().unwrap()])
        .args(["--precision", "int8", "--execution-provider", "cpu", "--device-name", "test-rig"])
        .args(extra);
    match password {
        Some(p) => command.env("EMOEDGE_MQTT_PASSWORD", p),
        None => command.env_remove("EMOEDGE_MQTT_PASSWORD"),
    };
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn results(out: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_result_of_a_run_arrives_at_the_broker_with_its_stream_and_device() {
    let broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    let out = tempfile::tempdir().unwrap();
    let output = run(out.path(), &["--publish", &broker.url("site")], None);
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    let local = results(out.path());
    assert_eq!(local.len(), 65);
    assert!(log.contains("65 results queued, 65 delivered, 0 waiting"), "{log}");
    subscriber.until(Duration::from_secs(20), |m| m.len() >= local.len());
    assert_eq!(subscriber.messages.len(), local.len(), "each result once");
    for ((topic, payload), result) in subscriber.messages.iter().zip(&local) {
        assert_eq!(topic, "site/test-rig/0");
        let m: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!((&m["device"], &m["stream"]), (&"test-rig".into(), &"0".into()));
        for field in ["track", "pts_ns", "label", "confidence", "probabilities", "labels", "gate", "bbox"] {
            assert_eq!(m[field], result[field], "{field} as in results.jsonl");
        }
        assert!(m["id"].as_str().unwrap().ends_with(&format!("-{}", m["seq"])), "{m}");
    }
}

#[test]
fn a_run_without_its_broker_keeps_the_results_for_the_next_run() {
    let mut broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    broker.kill();
    let out = tempfile::tempdir().unwrap();
    let url = broker.url("site");
    let output = run(out.path(), &["--publish", &url, "--publish-timeout", "1"], None);
    let log = text(&output);
    assert!(output.status.success(), "a broker that is away does not fail the analysis: {log}");
    assert!(log.contains("results are kept in") && log.contains("retrying"), "{log}");
    assert!(log.contains("65 results queued, 0 delivered, 65 waiting"), "{log}");
    broker.restart();
    // The next run on the folder sends the earlier results first, then its own.
    let output = run(out.path(), &["--publish", &url], None);
    assert!(output.status.success(), "{}", text(&output));
    subscriber.until(Duration::from_secs(20), |m| m.len() >= 130);
    let sessions: Vec<String> = subscriber
        .messages
        .iter()
        .map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).unwrap()["session"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sessions.len(), 130);
    assert!(sessions[..65].iter().all(|s| s == &sessions[0]) && sessions[65..].iter().all(|s| s != &sessions[0]));
}

#[test]
fn bad_broker_urls_and_refused_credentials_are_errors_that_say_what_to_do() {
    let out = tempfile::tempdir().unwrap();
    let output = run(out.path(), &["--publish", "localhost:1883"], None);
    assert!(!output.status.success());
    let log = text(&output);
    assert!(log.contains("mqtt://HOST:PORT/PREFIX") || log.contains("scheme must be mqtt://"), "{log}");

    let broker = Mosquitto::with_password("camera", "right-secret");
    let url = broker.url("site");
    let output = run(out.path(), &["--publish", &url, "--mqtt-user", "camera"], Some("wrong-secret"));
    let log = text(&output);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains("refused user \"camera\"") && log.contains("EMOEDGE_MQTT_PASSWORD"), "{log}");
    assert!(!log.contains("wrong-secret"), "the password is never printed: {log}");
    assert!(out.path().join("results.jsonl").exists(), "the results are kept: {log}");
    let output = run(out.path(), &["--publish", &url, "--mqtt-user", "camera"], Some("right-secret"));
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn watch_shows_the_fleet_table_of_what_a_run_published() {
    use std::io::{BufRead, BufReader};
    let broker = Mosquitto::start();
    let url = broker.url("site");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["watch", &url, "--exit-after", "65", "--duration", "120"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(watch.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("watching mqtt://127.0.0.1:") && line.contains("site/+/+"), "{line}");
    let out = tempfile::tempdir().unwrap();
    let output = run(out.path(), &["--publish", &url], None);
    assert!(output.status.success(), "{}", text(&output));
    let mut table = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut table).unwrap();
    assert!(watch.wait().unwrap().success());
    let row = table.lines().find(|l| l.starts_with("test-rig")).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..5], ["test-rig", "0", "65", "0", "0"], "device, stream, results, dups, missing: {table}");
    let last = results(out.path()).pop().unwrap();
    let expected = format!("1: {} {:.2}", last["label"].as_str().unwrap(), last["confidence"].as_f64().unwrap());
    assert!(row.contains(&expected), "the track's latest result {expected:?} in {row:?}");
}

#[test]
fn a_broker_killed_and_restarted_mid_run_still_gets_every_result_without_a_gap() {
    let mut broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    let out = tempfile::tempdir().unwrap();
    // The sample played live (its real 20 s), as a camera sends it.
    let camera = format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! clocksync",
        media("WolfgangLanger_Pexels.mp4")
    );
    let run = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["run", "--source", &camera, "--out", out.path().to_str().unwrap(), "--publish", &broker.url("site")])
        .args([
            "--precision",
            "int8",
            "--execution-provider",
            "cpu",
            "--device-name",
            "test-rig",
            "--publish-timeout",
            "30",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    subscriber.until(Duration::from_secs(60), |m| m.len() >= 20);
    broker.kill();
    std::thread::sleep(Duration::from_secs(3));
    broker.restart();
    let output = run.wait_with_output().unwrap();
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    let local = results(out.path());
    assert!(log.contains("results queued") && log.contains("0 waiting"), "{log}");
    assert!(log.contains("retrying"), "the run saw the broker go: {log}");
    subscriber.until(Duration::from_secs(30), |m| {
        m.iter()
            .map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).unwrap()["seq"].as_u64())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            >= local.len()
    });
    let seqs: std::collections::BTreeSet<u64> = subscriber
        .messages
        .iter()
        .map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..local.len() as u64).collect(), "every result, no gap by message id: {log}");
}
