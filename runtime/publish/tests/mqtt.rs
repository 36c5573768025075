//! The publisher against a real Mosquitto broker on loopback, read back by `mosquitto_sub`.

// Helpers outside #[test] functions stop the test loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use emoedge_publish::{Broker, EmotionRecord, PublishStats, Publisher, PublisherConfig, ResultMessage};
use emoedge_tests::mqtt::{Mosquitto, Subscriber};

fn config(url: &str, spool: &Path, limit: u64) -> PublisherConfig {
    PublisherConfig {
        broker: Broker::parse(url).unwrap(),
        device: "jetson-7".into(),
        stream: "0".into(),
        spool_dir: spool.to_path_buf(),
        spool_limit: limit,
        max_backoff: Duration::from_millis(500),
    }
}

fn record(track: u64) -> EmotionRecord {
    EmotionRecord {
        track,
        person: Some(track + 100),
        pts_ns: Some(track * 41_708_333),
        label: "happy".into(),
        confidence: 0.8,
        probabilities: vec![0.8, 0.2],
        labels: vec!["happy".into(), "sad".into()],
        gate: [0.1, 0.9],
        bbox: [1.0, 2.0, 30.0, 40.0],
        clips: track,
        model: Some("test-1".into()),
    }
}

fn parsed(messages: &[(String, String)]) -> Vec<ResultMessage> {
    messages.iter().map(|(_, payload)| serde_json::from_str(payload).unwrap()).collect()
}

/// Distinct sequence numbers received, checking that first deliveries come in order.
fn distinct_in_order(messages: &[(String, String)]) -> Vec<u64> {
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    for m in parsed(messages) {
        if seen.insert(m.seq) {
            order.push(m.seq);
        }
    }
    assert!(order.windows(2).all(|w| w[0] < w[1]), "first deliveries out of order: {order:?}");
    order
}

fn wait_for(publisher: &Publisher, what: &str, done: impl Fn(&PublishStats) -> bool) {
    let started = Instant::now();
    while !done(&publisher.stats()) {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}: {:?}", publisher.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_result_arrives_once_in_order_on_its_topic() {
    let broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    let spool = tempfile::tempdir().unwrap();
    let publisher = Publisher::start(config(&broker.url("site"), spool.path(), 1000)).unwrap();
    for track in 0..200 {
        publisher.publish(record(track), None).unwrap();
    }
    let stats = publisher.close(Duration::from_secs(20));
    assert_eq!((stats.queued, stats.delivered, stats.pending, stats.dropped), (200, 200, 0, 0), "{stats:?}");
    let messages = subscriber.until(Duration::from_secs(10), |m| m.len() >= 200).to_vec();
    assert_eq!(messages.len(), 200);
    assert!(messages.iter().all(|(topic, _)| topic == "site/jetson-7/0"));
    let results = parsed(&messages);
    assert_eq!(results.iter().map(|m| m.seq).collect::<Vec<_>>(), (0..200).collect::<Vec<_>>());
    let first = &results[0];
    assert_eq!((first.device.as_str(), first.stream.as_str()), ("jetson-7", "0"));
    assert_eq!(first.record, record(0));
    assert_eq!(first.id, format!("{}-0", first.session));
    assert!(first.time_ms > 1_700_000_000_000, "wall-clock milliseconds: {}", first.time_ms);
    // Delivered messages leave the spool.
    let left: usize = std::fs::read_dir(spool.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "jsonl"))
        .count();
    assert!(left <= 1, "{left} segments left");
}

#[test]
fn a_broker_killed_and_restarted_mid_stream_still_gets_every_result() {
    let mut broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    let spool = tempfile::tempdir().unwrap();
    let publisher = Publisher::start(config(&broker.url("site"), spool.path(), 10_000)).unwrap();
    for track in 0..50 {
        publisher.publish(record(track), None).unwrap();
    }
    wait_for(&publisher, "the first 50 delivered", |s| s.delivered == 50);
    // Acknowledged results are never sent again: once the broker has them, they are its to keep.
    // A broker killed before it passed them on or saved them would lose them, so it is killed
    // after that (its persistence is what a site relies on for these).
    subscriber.until(Duration::from_secs(20), |m| m.len() >= 50);
    broker.kill();
    // Results keep coming while the broker is away: they go to the spool, nothing is refused.
    for track in 50..300 {
        publisher.publish(record(track), None).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    wait_for(&publisher, "the connection seen as lost", |s| !s.connected);
    assert!(publisher.stats().pending >= 200, "{:?}", publisher.stats());
    broker.restart();
    let stats = publisher.close(Duration::from_secs(30));
    assert_eq!((stats.pending, stats.dropped), (0, 0), "{stats:?}");
    assert!(stats.connections >= 2, "{stats:?}");
    subscriber.until(Duration::from_secs(20), |m| distinct_in_order(m).len() >= 300);
    assert_eq!(distinct_in_order(&subscriber.messages), (0..300).collect::<Vec<_>>(), "no gap by message id");
}

#[test]
fn past_the_spool_bound_the_oldest_are_dropped_counted_and_the_rest_delivered_in_order() {
    let mut broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    broker.kill();
    let spool = tempfile::tempdir().unwrap();
    let publisher = Publisher::start(config(&broker.url("site"), spool.path(), 40)).unwrap();
    for track in 0..100 {
        publisher.publish(record(track), None).unwrap();
        assert!(publisher.stats().pending <= 40, "{:?}", publisher.stats());
    }
    let before = publisher.stats();
    assert_eq!(before.dropped + before.pending, 100, "{before:?}");
    assert!(before.dropped >= 60, "{before:?}");
    broker.restart();
    let stats = publisher.close(Duration::from_secs(20));
    assert_eq!((stats.pending, stats.dropped, stats.delivered), (0, before.dropped, before.pending), "{stats:?}");
    subscriber.until(Duration::from_secs(30), |m| distinct_in_order(m).len() as u64 >= before.pending);
    assert_eq!(
        distinct_in_order(&subscriber.messages),
        (before.dropped..100).collect::<Vec<_>>(),
        "the newest, in order"
    );
}

#[test]
fn results_spooled_while_no_broker_listens_are_delivered_by_the_next_publisher() {
    let spool = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start();
    let url = broker.url("site");
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    broker.kill();
    // Connection refused: the publisher starts, keeps results, and says it is retrying.
    let publisher = Publisher::start(config(&url, spool.path(), 1000)).unwrap();
    for track in 0..20 {
        publisher.publish(record(track), None).unwrap();
    }
    let stats = publisher.close(Duration::from_millis(300));
    assert_eq!((stats.connected, stats.pending, stats.delivered), (false, 20, 0), "{stats:?}");
    broker.restart();
    let publisher = Publisher::start(config(&url, spool.path(), 1000)).unwrap();
    let stats = publisher.close(Duration::from_secs(20));
    assert_eq!((stats.pending, stats.delivered), (0, 20), "{stats:?}");
    // mosquitto_sub finds the restarted broker by its own reconnection timer: slow on a busy machine.
    subscriber.until(Duration::from_secs(30), |m| m.len() >= 20);
    assert_eq!(distinct_in_order(&subscriber.messages), (0..20).collect::<Vec<_>>(), "{}", broker.log());
}

#[test]
fn refused_credentials_stop_publishing_with_an_error_that_names_the_user_not_the_password() {
    let broker = Mosquitto::with_password("camera", "right-secret");
    let spool = tempfile::tempdir().unwrap();
    let wrong = broker.url("site").replace("mqtt://", "mqtt://camera:wrong-secret@");
    let publisher = Publisher::start(config(&wrong, spool.path(), 1000)).unwrap();
    publisher.publish(record(1), None).unwrap();
    let started = Instant::now();
    let error = loop {
        if let Err(e) = publisher.publish(record(2), None) {
            break e.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the refusal never surfaced");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(error.contains("\"camera\"") && error.contains("password"), "{error}");
    assert!(!error.contains("wrong-secret"), "{error}");
    drop(publisher);

    let mut subscriber = Subscriber::start(&broker, "site/#", Some(("camera", "right-secret")));
    let right = PublisherConfig {
        broker: Broker::parse(&broker.url("site"))
            .unwrap()
            .with_credentials(Some("camera".into()), Some("right-secret".into())),
        ..config(&broker.url("site"), spool.path(), 1000)
    };
    let publisher = Publisher::start(right).unwrap();
    let stats = publisher.close(Duration::from_secs(20));
    assert_eq!((stats.pending, stats.delivered), (0, 2), "the refused run's results, delivered now: {stats:?}");
    subscriber.until(Duration::from_secs(10), |m| m.len() >= 2);
    assert_eq!(parsed(&subscriber.messages).iter().map(|m| m.record.track).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn tls_brokers_are_checked_against_the_given_ca() {
    let broker = Mosquitto::with_tls();
    let url = broker.url("site").replace("mqtt://", "mqtts://");
    let spool = tempfile::tempdir().unwrap();
    // The system's CAs do not know the test CA: no connection, the results wait.
    let untrusted = Publisher::start(config(&url, spool.path(), 100)).unwrap();
    untrusted.publish(record(1), None).unwrap();
    let stats = untrusted.close(Duration::from_secs(2));
    assert_eq!((stats.connections, stats.delivered, stats.pending), (0, 0, 1), "{stats:?}");
    let trusted = PublisherConfig {
        broker: Broker::parse(&url).unwrap().with_ca_file(Some(broker.ca_file())).unwrap(),
        ..config(&url, spool.path(), 100)
    };
    let publisher = Publisher::start(trusted).unwrap();
    publisher.publish(record(2), None).unwrap();
    let stats = publisher.close(Duration::from_secs(20));
    assert_eq!((stats.connections, stats.delivered, stats.pending), (1, 2, 0), "{stats:?}");
    // A CA file that is not one is refused before any connection.
    let bogus = spool.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let broker = Broker::parse(&url).unwrap().with_ca_file(Some(bogus)).unwrap();
    let error = Publisher::start(PublisherConfig { broker, ..config(&url, spool.path(), 100) }).err().unwrap();
    assert!(error.to_string().contains("bogus.pem") && error.to_string().contains("--mqtt-ca"), "{error}");
}

#[test]
fn a_broker_that_drops_every_connection_is_retried_with_backoff_not_once_per_result() {
    // Accepts and hangs up at once, counting the attempts.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = attempts.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            drop(stream);
        }
    });
    let spool = tempfile::tempdir().unwrap();
    let publisher = Publisher::start(config(&format!("mqtt://127.0.0.1:{port}/site"), spool.path(), 1000)).unwrap();
    let started = Instant::now();
    for track in 0..150 {
        publisher.publish(record(track), None).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = publisher.close(Duration::ZERO);
    let attempts = attempts.load(std::sync::atomic::Ordering::Relaxed);
    // Backoff 0.25, 0.5, then every 0.5 s (this test's reconnect interval): about 2 a second.
    assert!(attempts as f64 <= 2.5 * seconds + 2.0, "{attempts} attempts in {seconds:.1} s");
    assert_eq!((stats.delivered, stats.pending), (0, 150), "{stats:?}");
}

/// (session, seq) of every message received, and whether each was unique.
fn all_unique(messages: &[(String, String)]) -> bool {
    let ids: BTreeSet<(String, u64)> = parsed(messages).into_iter().map(|m| (m.session, m.seq)).collect();
    ids.len() == messages.len()
}

#[test]
fn nothing_acknowledged_is_sent_again_by_the_next_publisher_or_after_a_reconnect() {
    let mut broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "#", None);
    let spool = tempfile::tempdir().unwrap();
    let url = broker.url("site");
    let publisher = Publisher::start(config(&url, spool.path(), 100_000)).unwrap();
    for track in 0..65 {
        publisher.publish(record(track), None).unwrap();
    }
    assert_eq!(publisher.close(Duration::from_secs(20)).delivered, 65);
    // The last segment still holds those 65 lines: the next publisher must skip them.
    let publisher = Publisher::start(config(&url, spool.path(), 100_000)).unwrap();
    for track in 0..20 {
        publisher.publish(record(track), None).unwrap();
    }
    wait_for(&publisher, "20 more delivered", |s| s.delivered == 20);
    subscriber.until(Duration::from_secs(20), |m| m.len() >= 85);
    broker.await_save();
    broker.kill();
    broker.restart();
    publisher.publish(record(99), None).unwrap();
    let stats = publisher.close(Duration::from_secs(30));
    assert_eq!((stats.delivered, stats.pending), (21, 0), "{stats:?}");
    assert!(stats.connections >= 2, "{stats:?}");
    subscriber.until(Duration::from_secs(20), |m| m.len() >= 86);
    // Anything sent again would arrive within this second.
    subscriber.until(Duration::from_secs(1), |_| false);
    assert_eq!(subscriber.messages.len(), 86, "65 + 21, none twice");
    assert!(all_unique(&subscriber.messages));
}

#[test]
fn spooled_lines_that_are_not_results_are_rejected_counted_and_never_block_or_pick_a_topic() {
    let broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "#", None);
    let spool = tempfile::tempdir().unwrap();
    let mut planted = ResultMessage {
        id: "planted-0".into(),
        session: "planted".into(),
        seq: 0,
        device: "jetson-7".into(),
        stream: "0".into(),
        time_ms: 1,
        frame_time_ms: None,
        record: record(1),
    };
    let mut lines = vec![format!("kr/a/#\t{}", serde_json::to_string(&planted).unwrap()).into_bytes()];
    lines.push(b"\xff\xfe not text".to_vec());
    lines.push(br#"{"not":"a result"}"#.to_vec());
    planted.device = "a/b".into();
    lines.push(serde_json::to_vec(&planted).unwrap());
    planted.device = "jetson-7".into();
    planted.record.label = "x".repeat(70_000);
    lines.push(serde_json::to_vec(&planted).unwrap());
    let segment: Vec<u8> = lines
        .into_iter()
        .flat_map(|mut l| {
            l.push(b'\n');
            l
        })
        .collect();
    std::fs::write(spool.path().join("00000000000000000000.jsonl"), segment).unwrap();

    let publisher = Publisher::start(config(&broker.url("site"), spool.path(), 1000)).unwrap();
    for track in 0..3 {
        publisher.publish(record(track), None).unwrap();
    }
    let closing = Instant::now();
    let stats = publisher.close(Duration::from_secs(10));
    assert!(closing.elapsed() < Duration::from_secs(12), "close ends at its timeout");
    assert_eq!((stats.delivered, stats.rejected, stats.pending), (4, 4, 0), "{stats:?}");
    subscriber.until(Duration::from_secs(10), |m| m.len() >= 4);
    subscriber.until(Duration::from_secs(1), |_| false);
    assert_eq!(subscriber.messages.len(), 4, "{:?}", subscriber.messages);
    assert!(subscriber.messages.iter().all(|(topic, _)| topic == "site/jetson-7/0"), "{:?}", subscriber.messages);
}

#[test]
fn one_publisher_serves_a_spool_folder_in_a_process() {
    let spool = tempfile::tempdir().unwrap();
    let url = "mqtt://127.0.0.1:9/site";
    let first = Publisher::shared(config(url, spool.path(), 100)).unwrap();
    let again = Publisher::shared(config(url, spool.path(), 100)).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again), "a reopened stream keeps its publisher");
    let mut other = config(url, spool.path(), 100);
    other.device = "someone-else".into();
    let e = Publisher::shared(other).err().unwrap().to_string();
    assert!(e.contains("already used") && e.contains("site/jetson-7/0"), "{e}");
    Publisher::release(again, Duration::ZERO);
    Publisher::release(first, Duration::ZERO);
    // Released by all, the folder is free for a new publisher.
    drop(Publisher::start(config(url, spool.path(), 100)).unwrap());
}
