#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn messages(spool: &Spool, from: u64) -> Vec<String> {
    spool.read(from, usize::MAX).unwrap().into_iter().map(|q| q.payload).collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    found.sort();
    found
}

#[test]
fn messages_come_back_in_order_and_leave_once_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 80).unwrap();
    for i in 0..25 {
        spool.push(&format!("{{\"n\":{i}}}")).unwrap();
    }
    assert_eq!(spool.pending(), 25);
    let read = spool.read(3, 4).unwrap();
    assert_eq!(read.iter().map(|q| q.seq).collect::<Vec<_>>(), [3, 4, 5, 6]);
    assert_eq!(read[0].payload, "{\"n\":3}");
    spool.delivered_below(21).unwrap();
    assert_eq!(spool.pending(), 4);
    // Segments of 10: the two fully delivered ones are gone.
    assert_eq!(segments(dir.path()).len(), 1);
    assert_eq!(messages(&spool, 21), ["{\"n\":21}", "{\"n\":22}", "{\"n\":23}", "{\"n\":24}"]);
}

#[test]
fn past_the_bound_the_oldest_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 16).unwrap();
    for i in 0..100 {
        spool.push(&i.to_string()).unwrap();
        assert!(spool.pending() <= 16);
    }
    assert_eq!(spool.dropped() + spool.pending(), 100);
    let kept = messages(&spool, 0);
    assert_eq!(kept.last().map(String::as_str), Some("99"));
    let first: u64 = kept[0].parse().unwrap();
    assert_eq!(kept, (first..100).map(|i| i.to_string()).collect::<Vec<_>>(), "the newest, in order, no gap");
}

#[test]
fn a_new_process_delivers_only_what_was_not_acknowledged_and_skips_a_cut_line() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), 100).unwrap();
        for i in 0..30 {
            spool.push(&i.to_string()).unwrap();
        }
        // Segments of 12: the first goes, the second is acknowledged up to its 6th message.
        spool.delivered_below(18).unwrap();
    }
    let last = segments(dir.path()).pop().unwrap();
    OpenOptions::new().append(true).open(last).unwrap().write_all(b"{\"cut").unwrap();
    let mut spool = Spool::open(dir.path(), 100).unwrap();
    assert_eq!(spool.pending(), 12);
    let from = spool.acknowledged();
    assert_eq!(messages(&spool, from), (18..30).map(|i| i.to_string()).collect::<Vec<_>>());
    spool.push("30").unwrap();
    assert_eq!(messages(&spool, from).last().map(String::as_str), Some("30"));
}

#[test]
fn everything_acknowledged_stays_acknowledged_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), 100_000).unwrap();
        for i in 0..65 {
            spool.push(&i.to_string()).unwrap();
        }
        spool.delivered_below(65).unwrap();
        assert_eq!(spool.pending(), 0);
    }
    // The last segment keeps its (acknowledged) lines until it is full: none may go again.
    assert_eq!(segments(dir.path()).len(), 1);
    let spool = Spool::open(dir.path(), 100_000).unwrap();
    assert_eq!(spool.pending(), 0);
    assert!(messages(&spool, spool.acknowledged()).is_empty());
}

#[test]
fn a_spool_in_use_is_refused_with_its_folder_named() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Spool::open(dir.path(), 10).unwrap();
    let e = Spool::open(dir.path(), 10).err().unwrap().to_string();
    assert!(e.contains("MQTT spool") && e.contains(&dir.path().display().to_string()), "{e}");
}

#[test]
fn the_spool_folder_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("a/spool");
    let _spool = Spool::open(&spool_dir, 10).unwrap();
    assert_eq!(std::fs::metadata(&spool_dir).unwrap().permissions().mode() & 0o777, 0o700);
    // A folder someone left open to others is closed before anything is written in it.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    drop(Spool::open(&open, 10).unwrap());
    assert_eq!(std::fs::metadata(&open).unwrap().permissions().mode() & 0o777, 0o700);
    // A link is not a folder of ours.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&open, &link).unwrap();
    let e = Spool::open(&link, 10).err().unwrap().to_string();
    assert!(e.contains("not a folder of this user's") && e.contains("link"), "{e}");
}

#[test]
fn unreadable_segments_and_damaged_bytes_are_set_aside_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut spool = Spool::open(dir.path(), 16).unwrap();
        for i in 0..5 {
            spool.push(&i.to_string()).unwrap();
        }
    }
    // A damaged byte in one line, a folder and a link to /dev/zero posing as segments.
    let first = segments(dir.path())[0].clone();
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[2] = 0xff;
    std::fs::write(&first, bytes).unwrap();
    std::fs::create_dir(segment_path(dir.path(), 7)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", segment_path(dir.path(), 9)).unwrap();
    let spool = Spool::open(dir.path(), 16).unwrap();
    assert_eq!(spool.set_aside().len(), 2, "{:?}", spool.set_aside());
    assert!(spool.set_aside()[0].contains("00000000000000000007.jsonl"), "{:?}", spool.set_aside());
    assert!(dir.path().join("00000000000000000009.jsonl.unreadable").exists());
    let payloads = messages(&spool, 0);
    assert_eq!(payloads.len(), 5, "the damaged line is still a message (the publisher refuses it)");
    assert_eq!(payloads[1], "\u{fffd}", "{payloads:?}");
}

#[test]
fn lines_of_the_old_format_give_their_payload_never_their_topic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(segment_path(dir.path(), 0), "elsewhere/#\t{\"n\":1}\n").unwrap();
    let spool = Spool::open(dir.path(), 16).unwrap();
    assert_eq!(messages(&spool, 0), ["{\"n\":1}"]);
}
