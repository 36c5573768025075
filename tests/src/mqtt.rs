//! A real Mosquitto broker (Debian's `mosquitto`) on a free loopback port, started and stopped
//! by the test that owns it, and `mosquitto_sub` as an independent consumer.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;

use crate::{binary, free_port};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A broker that lives as long as this value (killed on drop). It keeps subscriptions and
/// queued messages across a kill and restart (persistence saved every second), as a site's
/// broker does.
pub struct Mosquitto {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Mosquitto {
    /// Anyone may connect.
    pub fn start() -> Self {
        Self::start_with(None, false)
    }

    /// Only `user` with `password` may connect.
    pub fn with_password(user: &str, password: &str) -> Self {
        Self::start_with(Some((user, password)), false)
    }

    /// TLS only, with a certificate for 127.0.0.1 from a CA made for the test
    /// ([`Mosquitto::ca_file`]).
    pub fn with_tls() -> Self {
        Self::start_with(None, true)
    }

    /// The PEM file of the CA that signed a TLS broker's certificate.
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start_with(login: Option<(&str, &str)>, tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\npersistence true\npersistence_location {}/\nautosave_interval 1\n\
             max_queued_messages 0\nlog_dest file {}/broker.log\nlog_type all\n",
            dir.path().display(),
            dir.path().display()
        );
        // Run as root (CI containers), mosquitto would drop to a `mosquitto` user that cannot
        // read the temp folder.
        if std::env::var("USER").as_deref() == Ok("root") || is_root() {
            conf.push_str("user root\n");
        }
        match login {
            Some((user, password)) => {
                let file = dir.path().join("passwords");
                let ok = Command::new(binary("mosquitto_passwd"))
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, password])
                    .status()
                    .unwrap()
                    .success();
                assert!(ok, "mosquitto_passwd failed");
                conf.push_str(&format!("allow_anonymous false\npassword_file {}\n", file.display()));
            }
            None => conf.push_str("allow_anonymous true\n"),
        }
        if tls {
            make_certificates(dir.path());
            let file = |name: &str| dir.path().join(name).display().to_string();
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                file("ca.pem"),
                file("server.pem"),
                file("server.key")
            ));
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let mut broker = Self { dir, port, child: None };
        broker.restart();
        broker
    }

    /// `mqtt://127.0.0.1:<port>/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("mqtt://127.0.0.1:{}/{prefix}", self.port)
    }

    /// Starts the broker (again) on its port and waits until it accepts connections.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        let child = Command::new(binary("mosquitto"))
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "mosquitto did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the broker at once (SIGKILL), as a crash or a pulled cable would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the broker has saved its state to disk once more (it does every second or two).
    /// It logs a save as it begins one: only when the next begins has this one surely ended
    /// (a kill in the middle keeps the state saved before, which may miss a new subscription).
    pub fn await_save(&self) {
        let saves = || self.log().matches("Saving in-memory database").count();
        let before = saves();
        let started = Instant::now();
        while saves() < before + 2 {
            assert!(started.elapsed() < Duration::from_secs(10), "mosquitto never saved its state: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Publishes `payload` (any bytes) on `topic` with `mosquitto_pub`, QoS 1, as any client
    /// allowed under a prefix could; `retain`: the broker keeps it for every new subscriber.
    pub fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        use std::io::Write;
        let mut command = Command::new(binary("mosquitto_pub"));
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1", "-t", topic, "-s"]);
        if retain {
            command.arg("-r");
        }
        let mut child = command.stdin(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(payload).unwrap();
        assert!(child.wait().unwrap().success(), "mosquitto_pub failed on {topic}");
    }

    /// The broker's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, with Debian's `openssl`.
fn make_certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=emoedge test CA",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `mosquitto_sub` on a topic filter with a persistent QoS 1 session: it reconnects by itself
/// and the broker keeps its messages while it is away.
pub struct Subscriber {
    child: Child,
    lines: Receiver<(String, u64)>,
    /// (topic, payload) received so far, probes excluded.
    pub messages: Vec<(String, String)>,
    /// When each of `messages` arrived: wall-clock milliseconds since the Unix epoch.
    pub arrived_ms: Vec<u64>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Subscriber {
    /// Subscribes and returns once the subscription is live (a probe came through) and saved.
    pub fn start(broker: &Mosquitto, filter: &str, login: Option<(&str, &str)>) -> Self {
        let port = broker.port.to_string();
        let id = format!("test-sub-{}", free_port());
        let mut command = Command::new(binary("mosquitto_sub"));
        command.args(["-h", "127.0.0.1", "-p", &port, "-q", "1", "-c", "-i", &id, "-v", "-t", filter, "-t", "probe/#"]);
        let mut publish = Command::new(binary("mosquitto_pub"));
        publish.args(["-h", "127.0.0.1", "-p", &port, "-t", "probe/x", "-m", "probe"]);
        if let Some((user, password)) = login {
            command.args(["-u", user, "-P", password]);
            publish.args(["-u", user, "-P", password]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send((line, now_ms())).is_err() {
                    break;
                }
            }
        });
        let subscriber = Self { child, lines, messages: Vec::new(), arrived_ms: Vec::new() };
        let started = Instant::now();
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "mosquitto_sub never received a probe: {}",
                broker.log()
            );
            assert!(publish.status().unwrap().success(), "mosquitto_pub failed");
            if subscriber.lines.recv_timeout(Duration::from_millis(200)).is_ok_and(|(l, _)| l.starts_with("probe/")) {
                break;
            }
        }
        // Once the broker has saved its state again, the subscription survives a kill.
        broker.await_save();
        subscriber
    }

    /// Collects messages until `done` holds for them or `timeout` passes; returns them all.
    pub fn until(&mut self, timeout: Duration, done: impl Fn(&[(String, String)]) -> bool) -> &[(String, String)] {
        let deadline = Instant::now() + timeout;
        while !done(&self.messages) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok((line, arrived)) => {
                    if let Some((topic, payload)) = line.split_once(' ')
                        && !topic.starts_with("probe/")
                    {
                        self.messages.push((topic.to_string(), payload.to_string()));
                        self.arrived_ms.push(arrived);
                    }
                }
                Err(RecvTimeoutError::Timeout) if left.is_zero() => break,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        &self.messages
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
