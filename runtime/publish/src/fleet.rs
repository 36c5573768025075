//! The consumer's side: what the results of many devices and streams add up to — the fleet
//! view of `emoedge watch`. Messages delivered twice (at-least-once) are counted once, by id;
//! a jump in a session's `seq` shows results that never arrived.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::message::ResultMessage;

/// Tracks not heard from for this long leave the table.
const TRACK_TIMEOUT_MS: u64 = 10_000;

/// One stream as seen from the broker.
#[derive(Debug, Default)]
pub struct StreamView {
    pub results: u64,
    pub duplicates: u64,
    /// Results missing between two that arrived (a spool that overflowed, or a broker's loss).
    pub missing: u64,
    /// Each track's latest label, confidence and time.
    pub tracks: BTreeMap<u64, (String, f32, u64)>,
    pub last_ms: u64,
    /// Highest sequence number seen per publishing session.
    sessions: BTreeMap<String, u64>,
}

/// Every stream of every device, keyed by (device, stream).
#[derive(Debug, Default)]
pub struct Fleet {
    pub streams: BTreeMap<(String, String), StreamView>,
}

impl Fleet {
    /// Takes in one message; returns false for a duplicate.
    pub fn add(&mut self, m: ResultMessage) -> bool {
        let view = self.streams.entry((m.device.clone(), m.stream.clone())).or_default();
        match view.sessions.get(&m.session) {
            Some(&max) if m.seq <= max => {
                view.duplicates += 1;
                return false;
            }
            Some(&max) => view.missing += m.seq - max - 1,
            // Another process's session: what came before it is not ours to count.
            None => {}
        }
        view.sessions.insert(m.session.clone(), m.seq);
        view.results += 1;
        view.last_ms = view.last_ms.max(m.time_ms);
        view.tracks.insert(m.emotion.track, (m.emotion.label, m.emotion.confidence, m.time_ms));
        true
    }

    /// Results counted over all streams.
    pub fn results(&self) -> u64 {
        self.streams.values().map(|v| v.results).sum()
    }

    /// The table, one row per stream; tracks quiet for 10 s are left out.
    pub fn table(&self, now_ms: u64) -> String {
        let mut out = format!(
            "{:<20} {:<10} {:>8} {:>5} {:>7} {:>9}  tracks (label confidence)\n",
            "device", "stream", "results", "dups", "missing", "last (s)"
        );
        for ((device, stream), view) in &self.streams {
            let mut tracks = String::new();
            for (track, (label, confidence, at)) in &view.tracks {
                if now_ms.saturating_sub(*at) <= TRACK_TIMEOUT_MS {
                    let _ = write!(tracks, "{track}: {label} {confidence:.2}  ");
                }
            }
            let age = now_ms.saturating_sub(view.last_ms) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{device:<20} {stream:<10} {:>8} {:>5} {:>7} {age:>9.1}  {}",
                view.results,
                view.duplicates,
                view.missing,
                tracks.trim_end()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Emotion;

    fn message(session: &str, seq: u64, stream: &str, track: u64, label: &str) -> ResultMessage {
        ResultMessage {
            id: format!("{session}-{seq}"),
            session: session.into(),
            seq,
            device: "dev".into(),
            stream: stream.into(),
            time_ms: 1_000 + seq,
            frame_time_ms: None,
            emotion: Emotion {
                track,
                pts_ns: None,
                label: label.into(),
                confidence: 0.5,
                probabilities: vec![],
                labels: vec![],
                gate: [0.0, 1.0],
                bbox: [0.0; 4],
            },
        }
    }

    #[test]
    fn duplicates_count_once_and_gaps_show() {
        let mut fleet = Fleet::default();
        assert!(fleet.add(message("a", 0, "0", 1, "sad")));
        assert!(fleet.add(message("a", 1, "0", 1, "happy")));
        assert!(!fleet.add(message("a", 1, "0", 1, "happy")), "a re-delivery");
        assert!(fleet.add(message("a", 4, "0", 2, "fear")));
        assert!(fleet.add(message("b", 0, "1", 1, "neutral")));
        let view = &fleet.streams[&("dev".to_string(), "0".to_string())];
        assert_eq!((view.results, view.duplicates, view.missing), (3, 1, 2));
        assert_eq!(fleet.results(), 4);
        let table = fleet.table(1_010);
        assert!(table.contains("1: happy 0.50  2: fear 0.50"), "{table}");
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(!fleet.table(100_000).contains("happy"), "quiet tracks leave the table");
    }
}

/// What a [`Watch`] heard.
#[derive(Debug)]
pub enum Heard {
    /// The subscription is live (again, after a reconnection).
    Subscribed,
    Message(Box<ResultMessage>),
    /// A message on the results' topics that is not a result.
    Unreadable {
        topic: String,
        reason: String,
    },
    /// The connection failed; the next call tries again, unless `fatal` (credentials refused).
    Lost {
        reason: String,
        fatal: bool,
    },
}

/// A subscription to every device's and stream's results (`<prefix>/+/+`, QoS 1); rumqttc's
/// connection runs on its own thread, reconnecting and subscribing again after each loss.
pub struct Watch {
    heard: std::sync::mpsc::Receiver<Heard>,
    // Dropping the client ends the connection's thread.
    _client: rumqttc::Client,
}

impl Watch {
    pub fn connect(broker: &crate::Broker) -> Result<Self, crate::BrokerError> {
        use rumqttc::{ConnectReturnCode, ConnectionError, Event, Packet, QoS};
        let client_id = format!("emoedge-watch-{:08x}", rand::random::<u32>());
        let (client, mut connection) = rumqttc::Client::new(broker.mqtt_options(&client_id)?, 16);
        let (tx, heard) = std::sync::mpsc::channel();
        let (subscriber, filter) = (client.clone(), broker.all_topics());
        let listen = move || {
            while let Ok(event) = connection.recv() {
                let heard = match event {
                    // A new session each time: subscribe again.
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        match subscriber.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                            Ok(()) => continue,
                            Err(e) => Heard::Lost { reason: e.to_string(), fatal: false },
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => Heard::Subscribed,
                    Ok(Event::Incoming(Packet::Publish(p))) => match serde_json::from_slice(&p.payload) {
                        Ok(message) => Heard::Message(Box::new(message)),
                        Err(e) => Heard::Unreadable { topic: p.topic, reason: e.to_string() },
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
