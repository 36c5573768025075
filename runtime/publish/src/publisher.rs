//! The delivery of results: producers append to the [`Spool`]; one thread per publisher keeps
//! an MQTT session to the broker, sends the spooled messages in order with QoS 1 and removes
//! them once the broker acknowledges them. When the connection drops, everything not
//! acknowledged is sent again after reconnecting (with backoff), so a consumer may see a message
//! twice (same `id`) but never misses one — unless the spool overflowed, which is counted.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak};

use emoedge_support::Backoff;
use emoedge_support::sync::lock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::sync::mpsc::{Receiver, RecvTimeoutError};

use rumqttc::{Client, ConnectReturnCode, ConnectionError, Event, Outgoing, Packet, QoS};

use crate::broker::{Broker, BrokerError, MAX_MESSAGE_BYTES, topic_char, topic_level};
use crate::record::{EmotionRecord, ResultMessage};
use crate::spool::Spool;

/// Messages sent and not yet acknowledged at any time.
const WINDOW: usize = 64;

/// How a publisher is set up.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub broker: Broker,
    /// This device's id (a topic level; default: the host name).
    pub device: String,
    /// The stream's id (a topic level).
    pub stream: String,
    /// The folder of the on-disk queue (one publisher at a time).
    pub spool_dir: PathBuf,
    /// Most messages the queue holds before the oldest are dropped.
    pub spool_limit: u64,
    /// Longest wait between two connection attempts (they start at 0.25 s and double).
    pub max_backoff: Duration,
}

/// The defaults users see.
pub mod defaults {
    use std::time::Duration;
    /// ≈ 30 MB of results, hours of a busy camera at the default interval.
    pub const SPOOL_LIMIT: u64 = 100_000;
    pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
    /// Seconds a closing publisher waits for the broker to acknowledge what is queued.
    pub const FLUSH_TIMEOUT: u32 = 10;
}

/// The values the settings may take, one table for the element's properties and the command
/// line's flags (a value the element would refuse is refused by the flag, with the range named).
pub mod ranges {
    use std::ops::RangeInclusive;
    /// Messages (≈ 30 GB of results at the top).
    pub const SPOOL_LIMIT: RangeInclusive<u64> = 1..=100_000_000;
    /// Seconds.
    pub const MAX_BACKOFF: RangeInclusive<u32> = 1..=3600;
    /// Seconds.
    pub const FLUSH_TIMEOUT: RangeInclusive<u32> = 0..=3600;
}

/// Warnings about the same cause (the spool overflowing) are repeated at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Wall-clock milliseconds since the Unix epoch, the time unit of the messages.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The spool folder of a publisher given none: private to this user (the parent is created
/// 0700 and must be this user's, never a shared temp folder someone else made first).
pub fn default_spool_dir(device: &str, stream: &str) -> std::io::Result<PathBuf> {
    let user = std::env::temp_dir().join(format!("emoedge-{}", emoedge_support::effective_uid()));
    emoedge_support::private_dir(&user)?;
    Ok(user.join(format!("spool-{device}-{stream}")))
}

/// This machine's host name, the default device id (a topic level, so anything else is replaced).
pub fn default_device() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name.trim().chars().map(|c| if topic_char(c) { c } else { '_' }).collect();
    if name.is_empty() { "emoedge".to_string() } else { name }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Spool(std::io::Error),
    #[error(
        "the broker {broker} refused {who}: {code}; check the user name and password (--mqtt-user, EMOEDGE_MQTT_PASSWORD)"
    )]
    Credentials { broker: String, who: String, code: String },
    #[error("the broker {broker} refused the connection: {code}")]
    Refused { broker: String, code: String },
    #[error("cannot spool a result to {dir}: {source}; free space there or choose another spool folder")]
    Write { dir: PathBuf, source: std::io::Error },
    #[error(
        "the spool folder {dir} is already used by this process's publisher of {other}; give each stream a spool folder of its own"
    )]
    SpoolTaken { dir: PathBuf, other: String },
}

/// Counters of a publisher, for stats and the end-of-run summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishStats {
    /// Results handed to the publisher.
    pub queued: u64,
    /// Acknowledged by the broker (a message sent twice counts once).
    pub delivered: u64,
    /// Dropped because the spool was full.
    pub dropped: u64,
    /// Never sent because they cannot be: too large, or spooled lines that are not results of
    /// ours (damaged, or planted).
    pub rejected: u64,
    /// Waiting in the spool (sent but unacknowledged included).
    pub pending: u64,
    pub connected: bool,
    /// Connections made (the first included).
    pub connections: u64,
    /// Why delivery stopped for good (the broker refused the credentials), if it did.
    pub error: Option<String>,
}

struct Shared {
    config: PublisherConfig,
    spool: Mutex<Spool>,
    /// Signalled when a message is queued or the publisher closes.
    wake: Condvar,
    closing: AtomicBool,
    connected: AtomicBool,
    queued: AtomicU64,
    delivered: AtomicU64,
    rejected: AtomicU64,
    connections: AtomicU64,
    /// Why delivery stopped for good (refused credentials), shown by the next call.
    fatal: Mutex<Option<String>>,
    /// What the user should hear of (a message refused, a segment set aside, the spool
    /// overflowing), until [`Publisher::warnings`] takes it.
    warnings: Mutex<Warnings>,
}

#[derive(Default)]
struct Warnings {
    pending: Vec<String>,
    /// Drops already warned about, and when.
    dropped_warned: u64,
    warned_at: Option<Instant>,
    /// Whether a refused message was warned about (the first one is; the rest are counted).
    rejected_warned: bool,
}

impl Shared {
    fn spool(&self) -> MutexGuard<'_, Spool> {
        lock(&self.spool)
    }

    /// Counts a message that can never be sent; the first one is warned about.
    fn reject(&self, what: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let mut warnings = lock(&self.warnings);
        if !std::mem::replace(&mut warnings.rejected_warned, true) {
            warnings.pending.push(format!(
                "MQTT: {what}: it is not sent (later ones are only counted, as \"rejected\"); spool {}",
                self.config.spool_dir.display()
            ));
        }
    }
}

/// The process's publishers by spool folder: streams that reopen their source keep one.
static PUBLISHERS: LazyLock<Mutex<HashMap<PathBuf, Weak<Publisher>>>> = LazyLock::new(Default::default);

/// Sends results to one broker for one stream; see the module docs.
pub struct Publisher {
    shared: Arc<Shared>,
    session: String,
    seq: AtomicU64,
    topic: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    /// Opens the spool and starts delivering (connecting in the background: a broker that is
    /// not there yet is retried, never an error here).
    pub fn start(config: PublisherConfig) -> Result<Self, PublishError> {
        topic_level("the device id", &config.device)?;
        topic_level("the stream id", &config.stream)?;
        // Options are built once here so that a bad CA file fails now, not in the thread.
        config.broker.mqtt_options("check")?;
        let spool = Spool::open(&config.spool_dir, config.spool_limit).map_err(PublishError::Spool)?;
        let session = format!("{:016x}", rand::random::<u64>());
        let topic = config.broker.topic(&config.device, &config.stream);
        let warnings = Warnings {
            pending: spool.set_aside().iter().map(|s| format!("MQTT spool: {s}")).collect(),
            ..Default::default()
        };
        let shared = Arc::new(Shared {
            config,
            spool: Mutex::new(spool),
            wake: Condvar::new(),
            closing: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            queued: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            fatal: Mutex::new(None),
            warnings: Mutex::new(warnings),
        });
        let worker = Arc::clone(&shared);
        let client_id = format!("emoedge-{}-{}-{}", shared.config.device, shared.config.stream, &session[..8]);
        let thread = std::thread::Builder::new()
            .name(format!("mqtt-{}", shared.config.stream))
            .spawn(move || deliver(&worker, &client_id))
            .map_err(PublishError::Spool)?;
        Ok(Self { shared, session, seq: AtomicU64::new(0), topic, thread: Some(thread) })
    }

    /// The publisher of this process on `config.spool_dir`, started if there is none: a stream
    /// whose pipeline is rebuilt (a camera reopened) keeps one publisher, one session and one
    /// acknowledgement mark. Settings other than broker, device and stream are the first
    /// caller's.
    pub fn shared(config: PublisherConfig) -> Result<Arc<Self>, PublishError> {
        let key = std::path::absolute(&config.spool_dir).unwrap_or_else(|_| config.spool_dir.clone());
        let mut publishers = lock(&PUBLISHERS);
        publishers.retain(|_, p| p.strong_count() > 0);
        if let Some(publisher) = publishers.get(&key).and_then(Weak::upgrade) {
            let theirs = &publisher.shared.config;
            let same = (theirs.broker.to_string(), &theirs.device, &theirs.stream)
                == (config.broker.to_string(), &config.device, &config.stream);
            if !same {
                return Err(PublishError::SpoolTaken { dir: config.spool_dir, other: publisher.topic.clone() });
            }
            return Ok(publisher);
        }
        let publisher = Arc::new(Self::start(config)?);
        publishers.insert(key, Arc::downgrade(&publisher));
        Ok(publisher)
    }

    /// Lets go of a shared publisher: the last holder closes it ([`Self::close`] with
    /// `timeout`); the others leave it running. Returns its counters.
    pub fn release(publisher: Arc<Self>, timeout: Duration) -> PublishStats {
        match Arc::try_unwrap(publisher) {
            Ok(publisher) => publisher.close(timeout),
            Err(publisher) => publisher.stats(),
        }
    }

    /// Queues one result (on disk when this returns); `age`: how long ago its frame entered
    /// the pipeline, when known. Fails only when the spool cannot be written or the broker
    /// refused our credentials.
    pub fn publish(&self, record: EmotionRecord, age: Option<Duration>) -> Result<(), PublishError> {
        self.check()?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let time_ms = now_ms();
        let message = ResultMessage {
            id: format!("{}-{seq}", self.session),
            session: self.session.clone(),
            seq,
            device: self.shared.config.device.clone(),
            stream: self.shared.config.stream.clone(),
            time_ms,
            frame_time_ms: age.map(|age| time_ms.saturating_sub(age.as_millis() as u64)),
            record,
        };
        let payload = serde_json::to_string(&message).map_err(|e| PublishError::Spool(e.into()))?;
        if let Err(reason) = message_size(&self.topic, &payload) {
            self.shared.reject(&format!("a result of track {} is {reason}", message.record.track));
            return Ok(());
        }
        let dir = &self.shared.config.spool_dir;
        self.shared.spool().push(&payload).map_err(|source| PublishError::Write { dir: dir.clone(), source })?;
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        self.shared.wake.notify_all();
        Ok(())
    }

    /// What the user should hear of since the last call: messages refused, spool segments set
    /// aside, the spool overflowing (at most every 10 s).
    pub fn warnings(&self) -> Vec<String> {
        let dropped = self.shared.spool().dropped();
        let mut warnings = lock(&self.shared.warnings);
        if dropped > warnings.dropped_warned && warnings.warned_at.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            let text = format!(
                "MQTT: the broker has been away long enough to fill the spool {}: {dropped} oldest results dropped so far (raise the spool limit to keep more)",
                self.shared.config.spool_dir.display()
            );
            warnings.pending.push(text);
            warnings.dropped_warned = dropped;
            warnings.warned_at = Some(Instant::now());
        }
        std::mem::take(&mut warnings.pending)
    }

    /// The error that stopped delivery for good, if any.
    pub fn check(&self) -> Result<(), PublishError> {
        match lock(&self.shared.fatal).as_ref() {
            Some(reason) => {
                Err(PublishError::Refused { broker: self.shared.config.broker.to_string(), code: reason.clone() })
            }
            None => Ok(()),
        }
    }

    pub fn stats(&self) -> PublishStats {
        let error = self.check().err().map(|e| e.to_string());
        let spool = self.shared.spool();
        PublishStats {
            queued: self.shared.queued.load(Ordering::Relaxed),
            delivered: self.shared.delivered.load(Ordering::Relaxed),
            dropped: spool.dropped(),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
            pending: spool.pending(),
            connected: self.shared.connected.load(Ordering::Relaxed),
            connections: self.shared.connections.load(Ordering::Relaxed),
            error,
        }
    }

    /// The topic this publisher sends to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Waits up to `timeout` for the broker to acknowledge everything queued; what is left stays
    /// in the spool for the next publisher on that folder. Returns the final counters.
    pub fn close(mut self, timeout: Duration) -> PublishStats {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && self.shared.spool().pending() > 0 && self.check().is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits `duration`, or less if the publisher closes (new results do not cut it short: a
/// broker that is away must not see a connection attempt per result).
fn pause(shared: &Shared, duration: Duration) {
    let deadline = Instant::now() + duration;
    let mut spool = shared.spool();
    while !shared.closing.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        spool = match shared.wake.wait_timeout(spool, left) {
            Ok((spool, _)) => spool,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}

/// The delivery thread: connect, send, track acknowledgements; on any connection error start
/// again from the oldest unacknowledged message.
fn deliver(shared: &Shared, client_id: &str) {
    let broker = &shared.config.broker;
    let mut backoff = Backoff::new(shared.config.max_backoff.max(Backoff::FIRST));
    let mut reported: Option<String> = None;
    while !shared.closing.load(Ordering::Relaxed) {
        let options = match broker.mqtt_options(client_id) {
            Ok(options) => options,
            Err(e) => {
                *lock(&shared.fatal) = Some(e.to_string());
                return;
            }
        };
        match session(shared, options) {
            Ok(()) => return,
            Err(Failure::Fatal(reason)) => {
                eprintln!("emoedge: MQTT: {reason}; results stay in {}", shared.config.spool_dir.display());
                *lock(&shared.fatal) = Some(reason);
                return;
            }
            Err(Failure::Retry { reason, was_connected }) => {
                if was_connected {
                    backoff.reset();
                }
                if reported.as_deref() != Some(reason.as_str()) {
                    eprintln!(
                        "emoedge: MQTT broker {broker}: {reason}; results are kept in {} and sent when it is back (retrying)",
                        shared.config.spool_dir.display()
                    );
                    reported = Some(reason);
                }
            }
        }
        pause(shared, backoff.next_wait());
    }
}

enum Failure {
    Retry { reason: String, was_connected: bool },
    Fatal(String),
}

/// Acknowledgement bookkeeping of one connection.
#[derive(Default)]
struct InFlight {
    /// Sent to the client, packet id not yet known (rumqttc numbers them as it writes them).
    unnumbered: VecDeque<u64>,
    by_packet: HashMap<u16, u64>,
    /// Acknowledged above the contiguous mark.
    acked: BTreeSet<u64>,
}

/// Runs rumqttc's connection on a thread of its own until its first error, passing its events
/// on. Its calls are never cut short by a timeout: a connection attempt or a write interrupted
/// half-way would have to start again (and over a slow link might never finish).
fn pump(
    mut connection: rumqttc::Connection,
    name: String,
) -> std::io::Result<Receiver<Result<Event, ConnectionError>>> {
    let (tx, events) = std::sync::mpsc::channel();
    std::thread::Builder::new().name(name).spawn(move || {
        // Ends at the first error, or when the client is dropped (`recv` then fails).
        while let Ok(event) = connection.recv() {
            let failed = event.is_err();
            if tx.send(event).is_err() || failed {
                return;
            }
        }
    })?;
    Ok(events)
}

/// Whether a message fits in what emoedge sends (`Err`: why not, for the user).
fn message_size(topic: &str, payload: &str) -> Result<(), String> {
    let bytes = topic.len() + payload.len();
    if bytes > MAX_MESSAGE_BYTES {
        return Err(format!(
            "{bytes} bytes with its topic, over the {MAX_MESSAGE_BYTES}-byte limit of an emoedge MQTT message"
        ));
    }
    Ok(())
}

/// The topic and payload a spooled line goes out as: only a result of ours, under our prefix
/// at the device and stream it names (a spool outlives a change of --device-name), within the
/// size limit; `Err` says why a line can never be sent.
fn outgoing(shared: &Shared, payload: String) -> Result<(String, String), String> {
    let message: ResultMessage =
        serde_json::from_str(&payload).map_err(|e| format!("a spooled line is not a result ({e})"))?;
    topic_level("the device id", &message.device).map_err(|e| format!("a spooled result is refused: {e}"))?;
    topic_level("the stream id", &message.stream).map_err(|e| format!("a spooled result is refused: {e}"))?;
    let topic = shared.config.broker.topic(&message.device, &message.stream);
    message_size(&topic, &payload).map_err(|reason| format!("a spooled result is {reason}"))?;
    Ok((topic, payload))
}

impl InFlight {
    /// Records `seq` as done (acknowledged, or refused for good) and moves the mark over every
    /// done message after it; the spool keeps the mark.
    fn done(&mut self, shared: &Shared, seq: u64, mark: &mut u64) -> std::io::Result<()> {
        self.acked.insert(seq);
        let mut spool = shared.spool();
        *mark = (*mark).max(spool.acknowledged());
        while self.acked.first().is_some_and(|&s| s <= *mark) {
            if let Some(s) = self.acked.pop_first() {
                *mark = (*mark).max(s + 1);
            }
        }
        spool.delivered_below(*mark)
    }
}

/// One connection's life: returns `Ok` when the publisher closes (what is not acknowledged by
/// then stays in the spool: `close` has given the broker its time).
fn session(shared: &Shared, options: rumqttc::MqttOptions) -> Result<(), Failure> {
    let (client, connection) = Client::new(options, WINDOW * 2);
    let events = pump(connection, format!("mqtt-io-{}", shared.config.stream))
        .map_err(|e| Failure::Retry { reason: format!("cannot start the MQTT thread: {e}"), was_connected: false })?;
    let mut connected = false;
    let mut flight = InFlight::default();
    // Next message to send; everything below `mark` is acknowledged (kept by the spool, so
    // neither a reconnection nor a new publisher sends it again).
    let mut mark = shared.spool().acknowledged();
    let mut next = mark;
    let retry = |reason: String, connected| Failure::Retry { reason, was_connected: connected };
    let spool_error = |e: std::io::Error, connected| retry(format!("cannot update the spool: {e}"), connected);
    loop {
        if shared.closing.load(Ordering::Relaxed) {
            let _ = client.try_disconnect();
            return Ok(());
        }
        if connected {
            let room = WINDOW.saturating_sub(flight.unnumbered.len() + flight.by_packet.len());
            let batch = if room > 0 { shared.spool().read(next, room) } else { Ok(Vec::new()) };
            for message in batch.map_err(|e| retry(format!("cannot read the spool: {e}"), connected))? {
                match outgoing(shared, message.payload) {
                    Ok((topic, payload)) => {
                        if client.try_publish(topic, QoS::AtLeastOnce, false, payload).is_err() {
                            break;
                        }
                        flight.unnumbered.push_back(message.seq);
                    }
                    Err(reason) => {
                        shared.reject(&reason);
                        flight.done(shared, message.seq, &mut mark).map_err(|e| spool_error(e, connected))?;
                    }
                }
                next = message.seq + 1;
            }
        }
        // New results are looked for at least this often.
        let event = match events.recv_timeout(Duration::from_millis(20)) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Err(retry("the connection ended".into(), connected)),
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected = true;
                shared.connected.store(true, Ordering::Relaxed);
                shared.connections.fetch_add(1, Ordering::Relaxed);
                // Everything unacknowledged goes (again), from the oldest.
                mark = mark.max(shared.spool().acknowledged());
                next = mark;
            }
            Ok(Event::Outgoing(Outgoing::Publish(packet))) => {
                if let Some(seq) = flight.unnumbered.pop_front() {
                    flight.by_packet.insert(packet, seq);
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(seq) = flight.by_packet.remove(&ack.pkid) {
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    flight.done(shared, seq, &mut mark).map_err(|e| spool_error(e, connected))?;
                }
            }
            Ok(_) => {}
            Err(e) => {
                shared.connected.store(false, Ordering::Relaxed);
                return Err(failure(shared, e, connected));
            }
        }
    }
}

/// What a connection error means: refused credentials end delivery, anything else is retried.
fn failure(shared: &Shared, error: ConnectionError, connected: bool) -> Failure {
    match error {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => Failure::Fatal(
            PublishError::Credentials {
                broker: shared.config.broker.to_string(),
                who: shared
                    .config
                    .broker
                    .username
                    .as_ref()
                    .map_or("an anonymous client".into(), |u| format!("user {u:?}")),
                code: format!("{code:?}"),
            }
            .to_string(),
        ),
        other => Failure::Retry { reason: other.to_string(), was_connected: connected },
    }
}
