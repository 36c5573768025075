//! Fuzzing (proptest, from a fixed seed) of what the fleet path reads from places others can
//! write: spool segments and the `acked` mark left on disk, and MQTT payloads under the prefix
//! that `emoedge watch` reads. Nothing may panic, fail an opening, or reach the terminal raw.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_publish::fleet::Taken;
use emoedge_publish::{Fleet, Spool};
use emoedge_tests::fuzz::{apply_bytes, apply_json, config, edits};
use proptest::prelude::*;

const RESULT: &str = r#"{"id":"ab-3","session":"ab","seq":3,"device":"cam","stream":"0","time_ms":1700000000000,"track":1,"pts_ns":5,"label":"happy","confidence":0.5,"probabilities":[0.5,0.5],"labels":["happy","sad"],"gate":[0.5,0.5],"bbox":[1,2,3,4]}"#;

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => edits().prop_map(|e| apply_json(RESULT, &e)),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => Just(RESULT.as_bytes().to_vec()),
    ]
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn any_spool_folder_opens_and_gives_back_its_complete_lines(
        lines in prop::collection::vec(payload(), 0..8),
        damage in edits(),
        mark in prop_oneof![Just(None), "[0-9 ]{0,12}".prop_map(Some), prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| Some(String::from_utf8_lossy(&b).into_owned()))],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut segment: Vec<u8> = lines.join(&b'\n');
        segment.push(b'\n');
        let segment = apply_bytes(&segment, &damage);
        std::fs::write(dir.path().join("00000000000000000000.jsonl"), &segment).unwrap();
        if let Some(mark) = mark {
            std::fs::write(dir.path().join("acked"), mark).unwrap();
        }
        let complete = segment.iter().filter(|&&b| b == b'\n').count() as u64;
        let mut spool = Spool::open(dir.path(), 100).unwrap();
        prop_assert!(spool.pending() <= complete);
        let waiting = spool.read(spool.acknowledged(), usize::MAX).unwrap();
        prop_assert_eq!(waiting.len() as u64, spool.pending());
        prop_assert!(waiting.iter().all(|q| !q.payload.contains('\n')));
        spool.push(RESULT).unwrap();
        let after = spool.read(spool.acknowledged(), usize::MAX).unwrap();
        prop_assert_eq!(after.last().map(|q| q.payload.as_str()), Some(RESULT));
    }

    #[test]
    fn any_message_under_the_prefix_is_taken_or_skipped_and_the_table_stays_printable(
        messages in prop::collection::vec((prop_oneof![Just("site/cam/0".to_string()), "site/\\PC{0,8}/\\PC{0,4}"], payload()), 1..12),
    ) {
        let mut fleet = Fleet::new("site");
        for (topic, payload) in &messages {
            if let Taken::Skipped(reason) = fleet.take(topic, payload) {
                prop_assert!(!reason.is_empty());
            }
        }
        let view_total: u64 = fleet.streams.values().map(|v| v.results + v.duplicates).sum();
        prop_assert_eq!(view_total + fleet.skipped, messages.len() as u64);
        let table = fleet.table(1_700_000_000_000);
        prop_assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{:?}", table);
    }
}
