//! The consumer's side: what the results of many devices and streams add up to — the fleet
//! view of `emoedge watch`. Messages delivered twice (at-least-once) are counted once, by id;
//! a jump in a session's `seq` shows results that never arrived. Anyone allowed to publish
//! under the prefix may send anything: only results whose device and stream are the topic's
//! own levels are taken, everything else is skipped and counted, what the table shows is
//! escaped, and memory is bounded (the streams and sessions heard from longest ago are
//! forgotten, and counted).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::broker::{MAX_MESSAGE_BYTES, topic_level};
use crate::record::ResultMessage;

/// Tracks not heard from for this long leave the table.
const TRACK_TIMEOUT_MS: u64 = 10_000;
/// Most streams (device, stream) kept.
const MAX_STREAMS: usize = 1024;
/// Most publishing sessions remembered per stream (a device restarting every minute for an hour).
const MAX_SESSIONS: usize = 64;
/// Most tracks kept per stream.
const MAX_TRACKS: usize = 256;
/// Most characters of a label or session id: ours are a few.
const MAX_TEXT: usize = 64;
/// How far a session's `seq` may jump ahead: further is not a result of that session's.
const MAX_SEQ_JUMP: u64 = 1_000_000;
/// No publisher counts this far (2⁵³, the largest integer every JSON reader keeps exact).
const MAX_SEQ: u64 = 1 << 53;

/// One track's latest result as the table shows it.
#[derive(Debug)]
pub struct TrackView {
    pub label: String,
    pub confidence: f32,
    pub person: Option<u64>,
    pub at_ms: u64,
}

/// One stream as seen from the broker.
#[derive(Debug, Default)]
pub struct StreamView {
    pub results: u64,
    pub duplicates: u64,
    /// Results missing between two that arrived (a spool that overflowed, or a broker's loss).
    pub missing: u64,
    /// Each track's latest result.
    pub tracks: BTreeMap<u64, TrackView>,
    pub last_ms: u64,
    /// Per publishing session: the highest sequence number seen and when (our count of
    /// messages taken, for forgetting the quietest).
    sessions: HashMap<String, (u64, u64)>,
    /// When this stream was last heard from, in messages taken.
    heard: u64,
}

/// What became of one message.
#[derive(Debug, PartialEq)]
pub enum Taken {
    Result,
    Duplicate,
    /// Not a result of this prefix's (the reason, for a log line: escape it before printing).
    Skipped(String),
}

/// Every stream of every device under one prefix, keyed by (device, stream).
#[derive(Debug, Default)]
pub struct Fleet {
    prefix: String,
    pub streams: BTreeMap<(String, String), StreamView>,
    /// Messages that were not results of this prefix's (foreign, damaged, too large, forged).
    pub skipped: u64,
    /// Streams and sessions forgotten to keep memory bounded.
    pub forgotten: u64,
    /// Messages taken so far: the clock of "heard from longest ago".
    taken: u64,
}

pub use emoedge_support::printable;

impl Fleet {
    /// The view of the results under `prefix` (topics `<prefix>/<device>/<stream>`).
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_string(), ..Self::default() }
    }

    /// Takes in one MQTT message as it arrived.
    pub fn take(&mut self, topic: &str, payload: &[u8]) -> Taken {
        let taken = self.check(topic, payload).map(|m| self.add(m));
        taken.unwrap_or_else(|reason| {
            self.skipped += 1;
            Taken::Skipped(reason)
        })
    }

    /// The result in `payload`, if it is one of this prefix's for `topic`.
    fn check(&self, topic: &str, payload: &[u8]) -> Result<ResultMessage, String> {
        if payload.len() > MAX_MESSAGE_BYTES {
            return Err(format!("{} bytes, more than a result ({MAX_MESSAGE_BYTES} at most)", payload.len()));
        }
        let m: ResultMessage = serde_json::from_slice(payload).map_err(|e| format!("not a result: {e}"))?;
        topic_level("the device", &m.device).map_err(|e| e.to_string())?;
        topic_level("the stream", &m.stream).map_err(|e| e.to_string())?;
        if topic != format!("{}/{}/{}", self.prefix, m.device, m.stream) {
            return Err("its device and stream are not its topic's".into());
        }
        if m.session.chars().count() > MAX_TEXT || m.record.label.chars().count() > MAX_TEXT {
            return Err(format!("a session id or label over {MAX_TEXT} characters"));
        }
        if m.seq > MAX_SEQ {
            return Err(format!("seq {} is beyond any publisher's count", m.seq));
        }
        Ok(m)
    }

    /// Counts a checked result; a duplicate (by session and seq) is counted as one.
    fn add(&mut self, m: ResultMessage) -> Taken {
        self.taken += 1;
        let now = self.taken;
        let key = (m.device.clone(), m.stream.clone());
        if !self.streams.contains_key(&key) && self.streams.len() >= MAX_STREAMS {
            let quietest = self.streams.iter().min_by_key(|(_, v)| v.heard).map(|(k, _)| k.clone());
            self.streams.retain(|k, _| Some(k) != quietest.as_ref());
            self.forgotten += 1;
        }
        let view = self.streams.entry(key).or_default();
        view.heard = now;
        match view.sessions.get(&m.session) {
            Some(&(max, _)) if m.seq <= max => {
                view.duplicates += 1;
                return Taken::Duplicate;
            }
            Some(&(max, _)) if m.seq - max > MAX_SEQ_JUMP => {
                self.skipped += 1;
                return Taken::Skipped(format!("seq jumps from {max} to {}", m.seq));
            }
            Some(&(max, _)) => view.missing += m.seq - max - 1,
            // Another process's session: what came before it is not ours to count.
            None => {
                if view.sessions.len() >= MAX_SESSIONS {
                    let quietest = view.sessions.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| k.clone());
                    view.sessions.retain(|k, _| Some(k) != quietest.as_ref());
                    self.forgotten += 1;
                }
            }
        }
        view.sessions.insert(m.session.clone(), (m.seq, now));
        view.results += 1;
        view.last_ms = view.last_ms.max(m.time_ms);
        view.tracks.retain(|_, t| m.time_ms.saturating_sub(t.at_ms) <= TRACK_TIMEOUT_MS);
        if view.tracks.len() >= MAX_TRACKS && !view.tracks.contains_key(&m.record.track) {
            view.tracks.pop_first();
        }
        let track = TrackView {
            label: m.record.label,
            confidence: m.record.confidence,
            person: m.record.person,
            at_ms: m.time_ms,
        };
        view.tracks.insert(m.record.track, track);
        Taken::Result
    }

    /// Results counted over all streams.
    pub fn results(&self) -> u64 {
        self.streams.values().map(|v| v.results).sum()
    }

    /// The table, one row per stream (every text escaped); tracks quiet for 10 s are left out.
    pub fn table(&self, now_ms: u64) -> String {
        let mut out = format!(
            "{:<20} {:<10} {:>8} {:>5} {:>7} {:>9}  tracks (person, label, confidence)\n",
            "device", "stream", "results", "dups", "missing", "last (s)"
        );
        for ((device, stream), view) in &self.streams {
            let mut tracks = String::new();
            for (track, t) in &view.tracks {
                if now_ms.saturating_sub(t.at_ms) <= TRACK_TIMEOUT_MS {
                    let person = t.person.map(|p| format!(" (person {p})")).unwrap_or_default();
                    let _ = write!(tracks, "{track}{person}: {} {:.2}  ", printable(&t.label), t.confidence);
                }
            }
            let age = now_ms.saturating_sub(view.last_ms) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:>8} {:>5} {:>7} {age:>9.1}  {}",
                printable(device),
                printable(stream),
                view.results,
                view.duplicates,
                view.missing,
                tracks.trim_end()
            );
        }
        if self.skipped > 0 || self.forgotten > 0 {
            let _ = writeln!(
                out,
                "skipped {} message(s) that are not results of this prefix; forgot {} quiet stream(s) or session(s)",
                self.skipped, self.forgotten
            );
        }
        out
    }
}

/// What a [`Watch`] heard.
#[derive(Debug)]
pub enum Heard {
    /// The subscription is live (again, after a reconnection).
    Subscribed,
    /// A message on the results' topics (checked by [`Fleet::take`]).
    Message { topic: String, payload: Vec<u8> },
    /// The connection failed; the next call tries again, unless `fatal` (credentials refused).
    Lost { reason: String, fatal: bool },
}

/// How long the broker keeps the watch's session (and the results sent to it) while the
/// connection is down.
const SESSION_EXPIRY: std::time::Duration = std::time::Duration::from_secs(300);

/// A subscription to every device's and stream's results (`<prefix>/+/+`, QoS 1) over MQTT 5:
/// the broker keeps the session while the connection is down (nothing sent meanwhile is lost)
/// and sends nothing larger than a result may be (a huge message cannot cut the watch off).
/// rumqttc's connection runs on its own thread, reconnecting after each loss.
pub struct Watch {
    heard: std::sync::mpsc::Receiver<Heard>,
    // Dropping the client ends the connection's thread.
    _client: rumqttc::v5::Client,
}

impl Watch {
    pub fn connect(broker: &crate::Broker) -> Result<Self, crate::BrokerError> {
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
        use rumqttc::v5::{ConnectionError, Event};
        let client_id = format!("emoedge-watch-{:08x}", rand::random::<u32>());
        let options = broker.mqtt5_options(&client_id, SESSION_EXPIRY)?;
        let (client, mut connection) = rumqttc::v5::Client::new(options, 16);
        let (tx, heard) = std::sync::mpsc::channel();
        let (subscriber, filter) = (client.clone(), broker.all_topics());
        let listen = move || {
            while let Ok(event) = connection.recv() {
                let heard = match event {
                    // Subscribing again on a kept session is harmless, and needed on a new one.
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        match subscriber.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                            Ok(()) => continue,
                            Err(e) => Heard::Lost { reason: e.to_string(), fatal: false },
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => Heard::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => Heard::Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.to_vec(),
                    },
                    Ok(_) => continue,
                    Err(e) => {
                        let fatal = matches!(
                            e,
                            ConnectionError::ConnectionRefused(
                                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                            )
                        );
                        // rumqttc reconnects on the next call: not at once, in a tight loop.
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        Heard::Lost { reason: e.to_string(), fatal }
                    }
                };
                if tx.send(heard).is_err() {
                    return;
                }
            }
        };
        std::thread::Builder::new()
            .name("mqtt-watch".into())
            .spawn(listen)
            .map_err(|e| crate::BrokerError::Thread(e.to_string()))?;
        Ok(Self { heard, _client: client })
    }

    /// The next thing heard within `timeout`, if any.
    pub fn next(&mut self, timeout: std::time::Duration) -> Option<Heard> {
        self.heard.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::record::EmotionRecord;

    fn message(session: &str, seq: u64, stream: &str, track: u64, label: &str) -> ResultMessage {
        ResultMessage {
            id: format!("{session}-{seq}"),
            session: session.into(),
            seq,
            device: "dev".into(),
            stream: stream.into(),
            time_ms: 1_000u64.saturating_add(seq),
            frame_time_ms: None,
            record: EmotionRecord {
                track,
                person: (track == 2).then_some(5),
                pts_ns: None,
                label: label.into(),
                confidence: 0.5,
                probabilities: vec![],
                labels: vec![],
                gate: [0.0, 1.0],
                bbox: [0.0; 4],
                clips: 1,
                model: None,
            },
        }
    }

    fn send(fleet: &mut Fleet, m: &ResultMessage) -> Taken {
        fleet.take(&format!("site/{}/{}", m.device, m.stream), &serde_json::to_vec(m).unwrap())
    }

    #[test]
    fn duplicates_count_once_and_gaps_show() {
        let mut fleet = Fleet::new("site");
        assert_eq!(send(&mut fleet, &message("a", 0, "0", 1, "sad")), Taken::Result);
        assert_eq!(send(&mut fleet, &message("a", 1, "0", 1, "happy")), Taken::Result);
        assert_eq!(send(&mut fleet, &message("a", 1, "0", 1, "happy")), Taken::Duplicate, "a re-delivery");
        assert_eq!(send(&mut fleet, &message("a", 4, "0", 2, "fear")), Taken::Result);
        assert_eq!(send(&mut fleet, &message("b", 0, "1", 1, "neutral")), Taken::Result);
        let view = &fleet.streams[&("dev".to_string(), "0".to_string())];
        assert_eq!((view.results, view.duplicates, view.missing), (3, 1, 2));
        assert_eq!(fleet.results(), 4);
        let table = fleet.table(1_010);
        assert!(table.contains("1: happy 0.50  2 (person 5): fear 0.50"), "{table}");
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(!fleet.table(100_000).contains("happy"), "quiet tracks leave the table");
    }

    #[test]
    fn foreign_forged_and_hostile_messages_are_skipped_counted_and_never_printed_raw() {
        let mut fleet = Fleet::new("site");
        let mut evil = message("a", 0, "0", 1, "\u{1b}[2J\u{1b}[41m\u{1b}]0;title\u{7}");
        assert_eq!(send(&mut fleet, &evil), Taken::Result);
        let table = fleet.table(1_000);
        assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");
        assert!(table.contains("\\u{1b}[2J"), "{table}");
        // A device that is not a topic level, a topic that is not the message's own, junk.
        evil.device = "\u{1b}[2J".into();
        assert!(matches!(send(&mut fleet, &evil), Taken::Skipped(_)));
        let other = message("a", 1, "0", 1, "sad");
        assert!(matches!(fleet.take("site/dev/9", &serde_json::to_vec(&other).unwrap()), Taken::Skipped(_)));
        assert!(matches!(fleet.take("site/dev/0", b"\xff\x00 not json"), Taken::Skipped(_)));
        assert!(matches!(fleet.take("site/dev/0", &vec![b' '; MAX_MESSAGE_BYTES + 1]), Taken::Skipped(_)));
        // A forged seq far ahead does not hide the session's later results, seen first or not.
        assert!(matches!(send(&mut fleet, &message("a", u64::MAX, "0", 1, "sad")), Taken::Skipped(_)));
        assert!(matches!(send(&mut fleet, &message("a", 5_000_000, "0", 1, "sad")), Taken::Skipped(_)));
        assert!(matches!(send(&mut fleet, &message("new", u64::MAX - 1, "0", 1, "sad")), Taken::Skipped(_)));
        assert_eq!(send(&mut fleet, &message("a", 1, "0", 1, "sad")), Taken::Result);
        assert_eq!(send(&mut fleet, &message("new", 0, "0", 1, "sad")), Taken::Result);
        assert_eq!(fleet.skipped, 7);
        assert!(fleet.table(1_000).contains("skipped 7 message(s)"));
    }

    #[test]
    fn memory_stays_bounded_under_junk_sessions_and_streams() {
        let mut fleet = Fleet::new("site");
        // 20,000 sessions on one stream, then 20,000 results over 3,000 streams.
        for i in 0..40_000u64 {
            let stream = if i < 20_000 { "0".to_string() } else { format!("s{}", i % 3000) };
            let mut m = message(&format!("junk{i}"), 0, &stream, i, "sad");
            m.time_ms = i;
            send(&mut fleet, &m);
        }
        assert!(fleet.streams.len() <= MAX_STREAMS);
        assert!(fleet.streams.values().all(|v| v.sessions.len() <= MAX_SESSIONS && v.tracks.len() <= MAX_TRACKS));
        assert!(fleet.forgotten >= 20_000 - MAX_SESSIONS as u64 + (3000 - MAX_STREAMS) as u64, "{}", fleet.forgotten);
        // A real session is still counted right afterwards.
        for seq in 0..3 {
            assert_eq!(send(&mut fleet, &message("real", seq, "s1", 1, "happy")), Taken::Result);
        }
    }
}
