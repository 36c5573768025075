//! `emoedge run --publish`: every result of a run reaches a real Mosquitto broker, read back by
//! `mosquitto_sub`; a broker that is not there or refuses us is handled as documented.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
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
    let log = text(&output);
    assert!(output.status.success() && log.contains("0 waiting"), "everything was acknowledged: {log}");
    // mosquitto_sub may take a while to find the restarted broker on a busy machine.
    subscriber.until(Duration::from_secs(30), |m| m.len() >= 130);
    let sessions: Vec<String> = subscriber
        .messages
        .iter()
        .map(|(_, p)| serde_json::from_str::<serde_json::Value>(p).unwrap()["session"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sessions.len(), 130, "{log}");
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

/// `emoedge watch URL` until `exit_after` results or `seconds`, once it says it is watching.
fn start_watch(
    url: &str,
    exit_after: u64,
    seconds: u64,
) -> (std::process::Child, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    let mut watch = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["watch", url, "--exit-after", &exit_after.to_string(), "--duration", &seconds.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(watch.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("watching mqtt://127.0.0.1:") && line.contains("site/+/+"), "{line}");
    (watch, stdout)
}

#[test]
fn watch_shows_the_fleet_table_of_what_a_run_published() {
    let broker = Mosquitto::start();
    let url = broker.url("site");
    let (mut watch, mut stdout) = start_watch(&url, 65, 120);
    let out = tempfile::tempdir().unwrap();
    // With re-identification: the table shows the person of each track.
    let output = run(out.path(), &["--publish", &url, "--reid"], None);
    assert!(output.status.success(), "{}", text(&output));
    let mut table = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut table).unwrap();
    assert!(watch.wait().unwrap().success());
    let row = table.lines().find(|l| l.starts_with("test-rig")).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..5], ["test-rig", "0", "65", "0", "0"], "device, stream, results, dups, missing: {table}");
    let last = results(out.path()).pop().unwrap();
    let (person, label, confidence) =
        (last["person"].as_u64().unwrap(), last["label"].as_str().unwrap(), last["confidence"].as_f64().unwrap());
    let expected = format!("1 (person {person}): {label} {confidence:.2}");
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

/// Runs `emoedge ARGS` and fails the test if it is still running after `limit`.
fn run_within(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(args)
        .env_remove("EMOEDGE_MQTT_PASSWORD")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("emoedge {args:?} still ran after {limit:?}: {}", text(&output));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn values_the_element_would_refuse_are_refused_by_the_flag_with_the_range() {
    let out = tempfile::tempdir().unwrap();
    for (flag, value, range) in [("--spool-limit", "0", "1..=100000000"), ("--publish-timeout", "3601", "0..=3600")] {
        let output = run(out.path(), &["--publish", "mqtt://127.0.0.1:9/site", flag, value], None);
        let log = text(&output);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}: {log}");
        assert!(log.contains(flag) && log.contains(range), "{log}");
    }
}

#[test]
fn secrets_special_files_and_bad_prefixes_are_refused_at_once() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let video = media("single_face.mp4");
    let quick = Duration::from_secs(60);
    let output =
        run_within(&["run", &video, "--out", dir, "--publish", "mqtt://cam:s3cr/et@127.0.0.1:1883/site"], quick);
    let log = text(&output);
    assert!(!output.status.success() && log.contains("%2F"), "{log}");
    assert!(!log.contains("s3cr") && !log.contains("et@"), "the password is never printed: {log}");
    let output = run_within(&["watch", "mqtt://cam:s3cr/et@127.0.0.1:1883/site", "--duration", "1"], quick);
    assert!(!output.status.success() && !text(&output).contains("s3cr"), "{}", text(&output));
    let output = run_within(
        &["run", &video, "--out", dir, "--publish", "mqtts://127.0.0.1/site", "--mqtt-ca", "/dev/zero"],
        quick,
    );
    let log = text(&output);
    assert!(!output.status.success() && log.contains("/dev/zero") && log.contains("not a regular file"), "{log}");
    let output = run_within(&["run", &video, "--out", dir, "--publish", "mqtt://127.0.0.1/site/#"], quick);
    assert!(!output.status.success() && text(&output).contains("'#'"), "{}", text(&output));
    // A FIFO named as a file:// URI would block the pipeline's start for good.
    let fifo = out.path().join("camera.mp4");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let uri = format!("file://{}", fifo.display());
    let output = run_within(&["run", &uri, "--out", dir, "--execution-provider", "cpu"], quick);
    let log = text(&output);
    assert!(!output.status.success() && log.contains("not a regular file"), "{log}");
}

/// The messages received, parsed, checking that none came twice.
fn unique_results(messages: &[(String, String)]) -> Vec<serde_json::Value> {
    let parsed: Vec<serde_json::Value> = messages.iter().map(|(_, p)| serde_json::from_str(p).unwrap()).collect();
    let ids: std::collections::BTreeSet<String> = parsed.iter().map(|m| m["id"].as_str().unwrap().into()).collect();
    assert_eq!(ids.len(), parsed.len(), "a message came twice");
    parsed
}

#[test]
fn the_next_run_sends_nothing_acknowledged_again_and_planted_lines_pick_no_topic() {
    let broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "#", None);
    let out = tempfile::tempdir().unwrap();
    let url = broker.url("site");
    let output = run(out.path(), &["--publish", &url], None);
    assert!(text(&output).contains("65 results queued, 65 delivered, 0 waiting"), "{}", text(&output));
    subscriber.until(Duration::from_secs(20), |m| m.len() >= 65);
    // Plant lines in the spool: one of the old `topic<TAB>payload` form aiming elsewhere, a bad byte.
    let spool = out.path().join("spool/0");
    let mut segments: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    segments.sort();
    let last = segments.last().unwrap();
    let first_line = std::fs::read_to_string(last)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .replace("\"seq\":0", "\"seq\":900")
        .replace("-0\",", "-900\",");
    let mut planted = format!("kr/a/#\t{first_line}\n").into_bytes();
    planted.extend_from_slice(b"\xff{\n");
    std::fs::OpenOptions::new().append(true).open(last).unwrap().write_all(&planted).unwrap();
    let output = run(out.path(), &["--publish", &url], None);
    let log = text(&output);
    assert!(output.status.success(), "one bad line fails no run: {log}");
    assert!(log.contains("66 delivered") && log.contains("1 rejected"), "{log}");
    subscriber.until(Duration::from_secs(20), |m| m.len() >= 131);
    subscriber.until(Duration::from_secs(1), |_| false);
    assert_eq!(subscriber.messages.len(), 131, "65, the planted result, then 65 new ones: none twice");
    unique_results(&subscriber.messages);
    assert!(subscriber.messages.iter().all(|(topic, _)| topic == "site/test-rig/0"));
}

#[test]
fn a_spool_that_fills_up_warns_during_the_run_and_a_spool_that_cannot_be_written_is_named() {
    let mut broker = Mosquitto::start();
    broker.kill();
    let out = tempfile::tempdir().unwrap();
    let url = broker.url("site");
    let output = run(out.path(), &["--publish", &url, "--spool-limit", "8", "--publish-timeout", "0"], None);
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("warning") && log.contains("fill the spool") && log.contains("oldest results dropped"),
        "{log}"
    );
    // A full disk: the spool on a 16 KiB tmpfs, mounted in a mount namespace of the run's own.
    let full = tempfile::tempdir().unwrap();
    std::fs::create_dir(full.path().join("spool")).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=16k tmpfs {0}/spool && exec {1} run {2} --out {0} --precision int8 --execution-provider cpu --publish {url} --publish-timeout 0",
        full.path().display(),
        env!("CARGO_BIN_EXE_emoedge"),
        media("single_face.mp4"),
    );
    let output =
        Command::new("unshare").args(["--user", "--map-root-user", "--mount", "bash", "-c", &script]).output().unwrap();
    let log = text(&output);
    assert!(!output.status.success(), "{log}");
    assert!(
        log.contains("cannot spool a result to") && log.contains("spool/0") && log.contains("No space left"),
        "the folder is named: {log}"
    );
    assert!(full.path().join("results.jsonl").is_file(), "the results are kept: {log}");
}

/// A result message as a device would publish it.
fn result_payload(session: &str, seq: u64, label: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": format!("{session}-{seq}"), "session": session, "seq": seq, "device": "cam", "stream": "0",
        "time_ms": 1_700_000_000_000u64 + seq, "track": 1, "pts_ns": null, "label": label, "confidence": 0.5,
        "probabilities": [0.5], "labels": [label], "gate": [0.5, 0.5], "bbox": [0.0, 0.0, 1.0, 1.0]
    }))
    .unwrap()
}

#[test]
fn watch_is_neither_blinded_nor_steered_by_hostile_messages_and_loses_nothing_across_a_reconnect() {
    use std::io::Read;
    let mut broker = Mosquitto::start();
    // Waiting for every new subscriber: an 11 kB message and a 100 kB one (over the limit).
    broker.publish("site/cam/0", &vec![b'x'; 11_000], true);
    broker.publish("site/big/0", &vec![b'{'; 100_000], true);
    let (watch, mut stdout) = start_watch(&broker.url("site"), 8, 60);
    // Escape sequences in a label and a device; a result on a topic that is not its own.
    broker.publish("site/cam/0", &result_payload("s", 0, "\u{1b}[2J\u{1b}[41m\u{1b}]0;owned\u{7}"), false);
    let mut evil = result_payload("s", 1, "sad");
    evil = String::from_utf8(evil).unwrap().replace("\"cam\"", "\"\\u001b[2J\"").into_bytes();
    broker.publish("site/cam/0", &evil, false);
    broker.publish("site/other/0", &result_payload("s", 2, "sad"), false);
    for seq in 1..4 {
        broker.publish("site/cam/0", &result_payload("s", seq, "happy"), false);
    }
    // The broker goes and comes back; what is sent before the watch reconnects still reaches it.
    broker.await_save();
    broker.kill();
    broker.restart();
    for seq in 4..8 {
        broker.publish("site/cam/0", &result_payload("s", seq, "happy"), false);
    }
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let output = watch.wait_with_output().unwrap();
    let table = String::from_utf8_lossy(&rest).into_owned();
    let log = format!("{table}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{log}");
    assert!(!rest.contains(&0x1b) && !output.stderr.contains(&0x1b) && !rest.contains(&0x07), "{log:?}");
    let row = table.lines().find(|l| l.starts_with("cam")).unwrap_or_else(|| panic!("{log}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..5], ["cam", "0", "8", "0", "0"], "device, stream, results, dups, missing: {log}");
    assert!(table.contains("skipped 3 message(s)"), "the 11 kB one, the forged device, the wrong topic: {log}");
}

#[test]
fn ctrl_c_writes_the_results_even_when_a_source_never_answers() {
    let out = tempfile::tempdir().unwrap();
    // A FIFO nobody writes to, opened by the user's own description: its open() blocks for good.
    let fifo = out.path().join("stuck");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args([
            "run",
            &media("single_face.mp4"),
            "--source",
            &format!("filesrc location={} ! decodebin", fifo.display()),
        ])
        .args(["--out", out.path().join("run").to_str().unwrap(), "--precision", "int8", "--execution-provider", "cpu"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let output = emoedge_tests::interrupt(child);
    let log = text(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("did not stop within 10 s of the interrupt"), "{log}");
    let kept = results(&out.path().join("run"));
    assert!(!kept.is_empty() && kept.iter().all(|r| r["stream"] == 0), "the file stream's results: {log}");
}

#[test]
fn ctrl_c_while_a_camera_is_being_opened_is_no_failure() {
    // A server that accepts the connection and never answers: the RTSP source waits.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("rtsp://127.0.0.1:{}/cam", listener.local_addr().unwrap().port());
    let out = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["run", &url, "--out", out.path().to_str().unwrap(), "--execution-provider", "cpu"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _held = listener.accept().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let output = emoedge_tests::interrupt(child);
    let log = text(&output);
    assert!(!log.contains("failed") && !log.contains("Error"), "an interruption, not a failure: {log}");
}
