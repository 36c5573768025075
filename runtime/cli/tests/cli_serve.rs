//! `emoedge serve` as a site runs it: a real process with its TOML file, publishing to a real
//! Mosquitto, scraped by a real Prometheus, changed over real HTTP and by signals while its
//! streams go on, and telling systemd (a notify socket the test listens on) that it is ready
//! and alive.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emoedge_tests::http::{self, Reply};
use emoedge_tests::mqtt::{Mosquitto, Subscriber};
use emoedge_tests::prometheus::Prometheus;
use emoedge_tests::{bundle_versioned, free_port, media};

const TOKEN: &str = "test-token-0123456789abcdef";

/// A running `emoedge serve`, its log collected as it comes; killed on drop.
struct Serve {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
    /// What the service told systemd, one datagram each (read as it comes: a socket left
    /// unread would block the sender, as systemd never does).
    notified: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Serve {
    /// Starts the service on `config` (its `listen` is set here) and waits for READY=1.
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!(
            "listen = \"{address}\"\ntoken_file = \"token\"\nout = \"{}\"\n{config}",
            dir.path().join("out").display()
        );
        std::fs::write(dir.path().join("serve.toml"), text).unwrap();
        let socket = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&socket).unwrap();
        let notified = Arc::new(Mutex::new(Vec::new()));
        let heard = Arc::clone(&notified);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while let Ok(n) = notify.recv(&mut buffer) {
                heard.lock().unwrap().push(String::from_utf8_lossy(&buffer[..n]).to_string());
            }
        });
        let mut child = Command::new(env!("CARGO_BIN_EXE_emoedge"))
            .args(["serve", "--config"])
            .arg(dir.path().join("serve.toml"))
            .env("NOTIFY_SOCKET", &socket)
            .env("WATCHDOG_USEC", "1000000")
            // As the systemd unit runs it (cross/JETSON.md): without the cap glibc keeps one arena
            // per thread that ever allocated, and the churn's memory bound measures glibc, not us.
            .env("MALLOC_ARENA_MAX", "2")
            .env_remove("EMOEDGE_API_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (stderr, lines) = (child.stderr.take().unwrap(), Arc::clone(&log));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let serve = Self { child, address, log, notified, dir };
        serve.await_notification("READY=1", Duration::from_secs(120));
        serve
    }

    fn await_notification(&self, what: &str, timeout: Duration) {
        let heard = || self.notified.lock().unwrap().iter().any(|d| d.lines().any(|l| l == what));
        self.until(&format!("systemd hearing {what}"), timeout, heard);
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn get(&self, path: &str) -> Reply {
        http::get(&self.address, path)
    }

    /// A write with the right token.
    fn write(&self, method: &str, path: &str, body: &str) -> Reply {
        http::request(&self.address, method, path, &[("Authorization", &format!("Bearer {TOKEN}"))], body)
    }

    /// The streams as `GET /streams` lists them, by name.
    fn streams(&self) -> BTreeMap<String, serde_json::Value> {
        let list = self.get("/streams").json();
        list.as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap().to_string(), s.clone())).collect()
    }

    fn until(&self, what: &str, timeout: Duration, done: impl Fn() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < timeout, "{what} did not happen within {timeout:?}: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("serve.toml")
    }

    /// A value of the Prometheus text `/metrics` serves.
    fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics").body;
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stream(name: &str, video: &str, replay: bool) -> String {
    format!("[[stream]]\nname = \"{name}\"\nuri = \"{}\"\nloop = {replay}\n", media(video))
}

/// The messages on `topic` so far, as JSON.
fn on(subscriber: &Subscriber, topic: &str) -> Vec<serde_json::Value> {
    subscriber.messages.iter().filter(|(t, _)| t == topic).map(|(_, p)| serde_json::from_str(p).unwrap()).collect()
}

/// Each session's sequence numbers on `topic` run from 0 without a gap (duplicates from
/// at-least-once delivery are allowed); returns how many distinct messages came.
fn without_gaps(messages: &[serde_json::Value], topic: &str) -> usize {
    let mut sessions: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for m in messages {
        sessions.entry(m["session"].as_str().unwrap().to_string()).or_default().push(m["seq"].as_u64().unwrap());
    }
    assert_eq!(sessions.len(), 1, "{topic}: one publisher session for the stream's life");
    let mut seqs = sessions.into_values().next().unwrap();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "{topic}: a gap in the sequence numbers");
    seqs.len()
}

#[test]
fn a_service_is_changed_over_http_while_its_streams_run_and_everything_reaches_the_broker() {
    let broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    let demo = "WolfgangLanger_Pexels.mp4";
    let config = format!(
        "execution_provider = \"cpu\"\npublish = \"{}\"\ndevice_name = \"dev\"\n{}{}",
        broker.url("site"),
        stream("cam0", demo, true),
        stream("cam1", demo, true)
    );
    let serve = Serve::start(&config);
    serve.await_notification("WATCHDOG=1", Duration::from_secs(10));
    assert_eq!((serve.get("/healthz").status, serve.get("/readyz").status), (200, 200));
    let got =
        |topic: &'static str, n: usize| move |m: &[(String, String)]| m.iter().filter(|(t, _)| t == topic).count() >= n;
    subscriber.until(Duration::from_secs(60), got("site/dev/cam1", 10));
    assert!(on(&subscriber, "site/dev/cam0").iter().all(|m| m["model"] == "default-2"));

    // Writes without the token, or with a wrong one, change nothing.
    let add_cam2 = format!("{{\"name\": \"cam2\", \"uri\": \"{}\"}}", media(demo));
    let none = http::request(&serve.address, "POST", "/streams", &[], &add_cam2);
    let wrong = http::request(
        &serve.address,
        "POST",
        "/streams",
        &[("Authorization", "Bearer not-the-token-at-all")],
        &add_cam2,
    );
    let delete = http::request(&serve.address, "DELETE", "/streams/cam0", &[], "");
    assert_eq!((none.status, wrong.status, delete.status), (401, 401, 401), "{none:?} {wrong:?} {delete:?}");
    assert!(!serve.log().contains(TOKEN), "the token never appears in the log");
    assert_eq!(serve.streams().keys().collect::<Vec<_>>(), ["cam0", "cam1"]);

    // Bad requests get clear errors.
    for (method, path, body, status, says) in [
        ("POST", "/streams", "{\"name\": \"x\", ", 400, "not the JSON expected"),
        ("POST", "/streams", "{\"name\": \"x\", \"url\": \"a\"}", 400, "unknown field"),
        ("POST", "/streams", "{\"name\": \"../x\", \"uri\": \"a\"}", 400, "letters, digits"),
        ("POST", "/streams", "{\"name\": \"x\", \"uri\": \"/no/such.mp4\"}", 400, "does not exist"),
        ("POST", "/streams", "{\"name\": \"x\", \"source\": \"videotestsrc\"}", 403, "config file only"),
        ("POST", "/streams", &format!("{{\"name\": \"cam0\", \"uri\": \"{}\"}}", media(demo)), 409, "is running"),
        ("DELETE", "/streams/nobody", "", 404, "no stream is named"),
        ("POST", "/model", "{\"bundle\": \"/no/such/bundle\"}", 422, "the model in use stays"),
    ] {
        let reply = serve.write(method, path, body);
        assert_eq!(reply.status, status, "{method} {path} {body}: {}", reply.body);
        assert!(reply.json()["error"].as_str().unwrap().contains(says), "{method} {path} {body}: {}", reply.body);
    }

    // A third stream comes and goes; its results appear, then stop.
    assert_eq!(serve.write("POST", "/streams", &add_cam2).status, 201);
    subscriber.until(Duration::from_secs(60), got("site/dev/cam2", 10));
    assert_eq!(serve.write("DELETE", "/streams/cam2", "").status, 202);
    serve.until("cam2's end", Duration::from_secs(60), || !serve.streams().contains_key("cam2"));
    serve.until("cam2's flush", Duration::from_secs(30), || serve.log().contains("cam2: "));
    std::thread::sleep(Duration::from_secs(2));
    subscriber.until(Duration::from_secs(1), |_| false);
    let cam2 = on(&subscriber, "site/dev/cam2").len();
    std::thread::sleep(Duration::from_secs(2));
    subscriber.until(Duration::from_secs(1), |_| false);
    assert_eq!(on(&subscriber, "site/dev/cam2").len(), cam2, "no result of cam2 after its removal");
    assert!(serve.log().contains(&format!("cam2: {cam2} results queued, {cam2} delivered, 0 wait")), "{}", serve.log());

    // A damaged bundle is refused; a good one is swapped in while the streams run.
    let damaged = bundle_versioned("damaged-1");
    let frame = damaged.path().join("fp32/frame.onnx");
    let bytes = std::fs::read(&frame).unwrap();
    std::fs::write(&frame, &bytes[..bytes.len() / 2]).unwrap();
    let refused = serve.write("POST", "/model", &format!("{{\"bundle\": \"{}\"}}", damaged.path().display()));
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(serve.get("/model").json()["version"], "default-2");
    let swapped = bundle_versioned("swapped-1");
    let reply = serve.write("POST", "/model", &format!("{{\"bundle\": \"{}\"}}", swapped.path().display()));
    assert_eq!((reply.status, &reply.json()["version"]), (200, &"swapped-1".into()), "{}", reply.body);
    let swapped_on = |topic: &'static str| {
        move |m: &[(String, String)]| m.iter().any(|(t, p)| t == topic && p.contains("\"model\":\"swapped-1\""))
    };
    subscriber.until(Duration::from_secs(60), swapped_on("site/dev/cam0"));
    subscriber.until(Duration::from_secs(60), swapped_on("site/dev/cam1"));

    // Prometheus scrapes the service and knows each stream's frame rate.
    let prometheus = Prometheus::start(&serve.address);
    let started = Instant::now();
    let rates = loop {
        let rates = prometheus.query("rate(emoedge_frames_total[5s])");
        // Paced at the video's 23.98 frames/s (the first windows hold too few scrapes).
        if rates.len() == 2 && rates.iter().all(|(_, v)| (15.0..=30.0).contains(v)) {
            break rates;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus has {rates:?}: {}\n{}",
            serve.get("/metrics").body,
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut names: Vec<&str> = rates.iter().map(|(m, _)| m["stream"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["cam0", "cam1"]);

    // Rapid adds and removes, twice a thousand: clear answers, and memory bounded — the first
    // round raises it to what max_streams streams at once take; the second adds little.
    let resident = || serve.metric("process_resident_memory_bytes").unwrap();
    let churn = |round: usize| {
        let mut started = 0;
        for i in 0..1000 {
            let name = format!("churn-{round}-{i}");
            let added =
                serve.write("POST", "/streams", &format!("{{\"name\": \"{name}\", \"uri\": \"{}\"}}", media(demo)));
            // Past max_streams (32) running or still closing, adds are refused until some are done.
            assert!(matches!(added.status, 201 | 429), "{added:?}");
            started += usize::from(added.status == 201);
            let removed = serve.write("DELETE", &format!("/streams/{name}"), "");
            assert_eq!(removed.status, if added.status == 201 { 202 } else { 404 }, "{removed:?}");
        }
        let gone = || !serve.streams().keys().any(|k| k.starts_with("churn"));
        serve.until("the churn's end", Duration::from_secs(120), gone);
        started
    };
    let before = resident();
    let (started, first) = (churn(0), resident());
    let (started_again, second) = (churn(1), resident());
    eprintln!(
        "churn: {started} and {started_again} of 1000 adds started a stream; resident memory {before} → {first} → {second} bytes"
    );
    assert!(started > 32 && started_again > 32, "the churn started streams again once the earlier ones had closed");
    assert!(second < first + 100e6, "resident memory grew from {first} to {second} bytes in the second round");
    // Nor do their spools stay behind on disk once everything in them was delivered.
    let spools: Vec<String> = std::fs::read_dir(serve.dir.path().join("out/spool"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(spools.iter().all(|s| s == "cam0" || s == "cam1"), "{spools:?}");
    assert_eq!(serve.get("/healthz").status, 200);

    // SIGTERM: every stream ends, every result is delivered, exit 0.
    serve.signal("TERM");
    let mut serve = serve;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = serve.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still running after SIGTERM: {}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(300));
    let log = serve.log();
    assert!(status.success() && log.contains("stopped"), "{status}: {log}");
    for cam in ["cam0", "cam1"] {
        let line = log.lines().find(|l| l.contains(&format!("{cam}: ")) && l.contains("results queued")).expect(&log);
        let queued: usize = line.split(": ").nth(2).unwrap().split_whitespace().next().unwrap().parse().unwrap();
        assert!(
            line.ends_with(&format!("{queued} results queued, {queued} delivered, 0 wait in the spool for the broker")),
            "{line}"
        );
        let topic = format!("site/dev/{cam}");
        subscriber.until(Duration::from_secs(30), |m| m.iter().filter(|(t, _)| *t == topic).count() >= queued);
        assert_eq!(without_gaps(&on(&subscriber, &topic), &topic), queued, "{cam}: every result, none lost");
    }
    assert!(!log.contains(TOKEN));
}

#[test]
fn sighup_changes_what_the_file_changed_and_refuses_a_broken_file() {
    let config =
        |streams: &str, interval: u32| format!("execution_provider = \"cpu\"\ndetect_interval = {interval}\n{streams}");
    let demo = "WolfgangLanger_Pexels.mp4";
    let first = format!("{}{}", stream("cam0", demo, true), stream("cam1", demo, true));
    let serve = Serve::start(&config(&first, 5));
    let running = |names: &[&str]| {
        let streams = serve.streams();
        streams.len() == names.len()
            && names
                .iter()
                .all(|n| streams.get(*n).is_some_and(|s| s["state"] == "running" && s["frames"].as_u64() > Some(0)))
    };
    serve.until("cam0 and cam1 running", Duration::from_secs(60), || running(&["cam0", "cam1"]));
    let cam0_frames = serve.streams()["cam0"]["frames"].as_u64().unwrap();

    // cam1 goes, cam2 comes (a file without `loop`), cam0 goes on; another detect_interval
    // is reported as needing a restart.
    let second = format!("{}{}", stream("cam0", demo, true), stream("cam2", "single_face.mp4", false));
    std::fs::write(
        serve.config(),
        format!(
            "listen = \"{}\"\ntoken_file = \"token\"\nout = \"{}\"\n{}",
            serve.address,
            serve.dir.path().join("out").display(),
            config(&second, 2)
        ),
    )
    .unwrap();
    serve.signal("HUP");
    serve.until("the reload", Duration::from_secs(60), || running(&["cam0", "cam2"]));
    assert!(serve.log().contains("reload: detect_interval changed; that takes a restart"), "{}", serve.log());
    assert!(serve.streams()["cam0"]["frames"].as_u64().unwrap() > cam0_frames, "cam0 went on");
    serve.until("cam2's end", Duration::from_secs(60), || serve.streams()["cam2"]["state"] == "ended");

    // A broken file changes nothing.
    std::fs::write(serve.config(), "listen = [").unwrap();
    serve.signal("HUP");
    serve.until("the refusal", Duration::from_secs(30), || serve.log().contains("refused"));
    assert!(serve.log().contains("nothing changed"), "{}", serve.log());
    assert_eq!(serve.streams().keys().collect::<Vec<_>>(), ["cam0", "cam2"]);
    assert_eq!(serve.get("/readyz").status, 200);
}

#[test]
fn a_config_that_cannot_work_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        ("colour = 1\n", "unknown key `colour`"),
        ("detect_interval = 0\n", "0 is not in 1..="),
        ("annotate = \"x.mp4\"\n", "serve writes no video"),
        ("listen = \"everywhere\"\n", "is not an address:port"),
        ("[[stream]]\nname = \"a b\"\nuri = \"x\"\n", "letters, digits"),
        ("[[stream]]\nname = \"a\"\nuri = \"/no/such.mp4\"\n", "does not exist"),
    ] {
        let file = dir.path().join("serve.toml");
        std::fs::write(&file, text).unwrap();
        let output =
            Command::new(env!("CARGO_BIN_EXE_emoedge")).args(["serve", "--config"]).arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(says) && stderr.contains("serve.toml"), "{text}: {stderr}");
    }
}
