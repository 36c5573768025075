//! A live RTSP camera that drops and comes back: `emoedge run rtsp://… --reconnect-interval`
//! against a real gst-rtsp-server on loopback, stopped and restarted mid-run.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use emoedge_tests::mqtt::{Mosquitto, Subscriber};
use emoedge_tests::{interrupt, media};
use gstreamer::glib;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

/// gst-rtsp-server serving the sample video (H.264, no re-encoding) at `/cam`, on its own
/// GLib main loop.
struct RtspServer {
    server: rtsp::RTSPServer,
    context: glib::MainContext,
    source: Option<glib::SourceId>,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl RtspServer {
    fn start(video: &str) -> Self {
        gstreamer::init().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = rtsp::RTSPMediaFactory::new();
        // The path is the test's own sample file, quoted for the launch syntax.
        factory.set_launch(&format!(
            "( filesrc location=\"{video}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
        ));
        server.mount_points().unwrap().add_factory("/cam", factory);
        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let thread = {
            let (context, main_loop) = (context.clone(), main_loop.clone());
            std::thread::spawn(move || {
                context.with_thread_default(|| main_loop.run()).unwrap();
            })
        };
        let mut rtsp = Self { server, context, source: None, main_loop, thread: Some(thread), port };
        rtsp.resume();
        rtsp
    }

    fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    /// Listens again on the same port.
    fn resume(&mut self) {
        self.source = Some(self.server.attach(Some(&self.context)).unwrap());
    }

    /// Stops listening and drops every client, as a camera that loses power does.
    fn pause(&mut self) {
        // The source lives on the server's own context (SourceId::remove looks in the default one).
        if let Some(source) = self.source.take().and_then(|id| self.context.find_source_by_id(&id)) {
            source.destroy();
        }
        self.server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.pause();
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits for a line containing `needle` on `lines`, keeping every line seen in `log`.
fn wait_for(lines: &Receiver<String>, log: &mut Vec<String>, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !log.iter().any(|l| l.contains(needle)) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {needle:?} within {timeout:?}:\n{}", log.join("\n"));
        if let Ok(line) = lines.recv_timeout(left.min(Duration::from_millis(200))) {
            log.push(line);
        }
    }
}

/// Size of the results being written (the run's temp file), 0 before there is one.
fn written(out: &Path) -> u64 {
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".results."))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn a_camera_that_drops_and_comes_back_is_reopened_and_its_track_ids_continue() {
    let mut server = RtspServer::start(&media("WolfgangLanger_Pexels.mp4"));
    let broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args(["run", &server.url(), "--out", out.path().to_str().unwrap()])
        .args(["--precision", "int8", "--execution-provider", "cpu", "--reconnect-interval", "1"])
        .args(["--publish", &broker.url("site")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let started = Instant::now();
    while written(out.path()) == 0 {
        assert!(started.elapsed() < Duration::from_secs(90), "no results from the camera: {log:?}");
        log.extend(lines.try_iter());
        std::thread::sleep(Duration::from_millis(100));
    }
    server.pause();
    wait_for(&lines, &mut log, "was lost", Duration::from_secs(30));
    let before = written(out.path());
    // Down for a while: attempts fail (connection refused) without a message each.
    std::thread::sleep(Duration::from_secs(3));
    server.resume();
    wait_for(&lines, &mut log, "is back", Duration::from_secs(60));
    let back = Instant::now();
    while written(out.path()) == before {
        assert!(back.elapsed() < Duration::from_secs(60), "no results after the camera came back: {log:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = interrupt(child);
    log.extend(lines.try_iter());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", log.join("\n"));
    assert_eq!(log.iter().filter(|l| l.contains("was lost")).count(), 1, "one loss, one message: {log:?}");
    assert!(stdout.contains("lost 1 time(s) and reopened"), "{stdout}");

    let text = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    let results: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let tracks: Vec<u64> = results.iter().map(|r| r["track"].as_u64().unwrap()).collect();
    // The second opening's tracks start after the first's: ids stay unique in the stream.
    let first_max = tracks[0];
    let reopened: Vec<u64> = tracks.iter().copied().skip_while(|&t| t == first_max).collect();
    assert!(!reopened.is_empty() && reopened.iter().all(|&t| t > first_max), "{tracks:?}");

    // One publisher for the stream across the reopening: every result once, in one session.
    subscriber.until(Duration::from_secs(30), |m| m.len() >= results.len());
    subscriber.until(Duration::from_secs(1), |_| false);
    let messages: Vec<serde_json::Value> =
        subscriber.messages.iter().map(|(_, p)| serde_json::from_str(p).unwrap()).collect();
    assert_eq!(messages.len(), results.len(), "each result once, none sent again after the reopening");
    assert!(messages.iter().all(|m| m["session"] == messages[0]["session"]), "one session");
    let seqs: Vec<u64> = messages.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..results.len() as u64).collect::<Vec<_>>());
}
