//! The on-disk queue between the producer of results and the broker: append-only segment files
//! `<index>.jsonl` in one locked folder, one message per line (`topic<TAB>payload`). Messages
//! are delivered oldest first; a segment goes once all its messages are acknowledged. The queue
//! holds at most `limit` messages: past it the oldest segment is dropped and its undelivered
//! messages counted. Segments left by an earlier process are delivered first (again, if they
//! had been: at-least-once).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use emoedge_models::FolderLock;

/// One queued message; `seq` is its position in this process's view of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub seq: u64,
    pub topic: String,
    pub payload: String,
}

#[derive(Debug)]
struct Segment {
    index: u64,
    /// Sequence number of its first message and how many it holds.
    first: u64,
    len: u64,
}

impl Segment {
    fn end(&self) -> u64 {
        self.first + self.len
    }
}

pub struct Spool {
    dir: PathBuf,
    limit: u64,
    segment_len: u64,
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending while it has room.
    writer: Option<File>,
    /// Every message before this one is acknowledged (or dropped).
    delivered_below: u64,
    dropped: u64,
    _lock: FolderLock,
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.jsonl"))
}

/// The complete lines of a segment (a line cut by a crash is not a message).
fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if line.ends_with('\n') && line.contains('\t') {
            lines.push(line.trim_end_matches('\n').to_string());
        }
        line.clear();
    }
    Ok(lines)
}

impl Spool {
    /// Opens (creating) the queue in `dir`, holding at most `limit` messages; an error naming
    /// the folder when another process uses it.
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<Self> {
        let lock = FolderLock::acquire(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot use {} as the MQTT spool: {e}", dir.display()))
        })?;
        let limit = limit.max(1);
        let mut indices: Vec<u64> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".jsonl")?.parse().ok())
            .collect();
        indices.sort_unstable();
        let mut segments = VecDeque::new();
        let mut next = 0;
        for index in indices {
            let len = read_lines(&segment_path(dir, index))?.len() as u64;
            segments.push_back(Segment { index, first: next, len });
            next += len;
        }
        let mut spool = Self {
            dir: dir.to_path_buf(),
            limit,
            // Drops happen a segment at a time: small segments keep them close to the bound.
            segment_len: (limit / 8).clamp(1, 1024),
            segments,
            writer: None,
            delivered_below: 0,
            dropped: 0,
            _lock: lock,
        };
        spool.enforce_limit()?;
        Ok(spool)
    }

    /// The sequence number the next pushed message gets.
    pub fn end(&self) -> u64 {
        self.segments.back().map_or(self.delivered_below, Segment::end)
    }

    /// Messages stored and not yet acknowledged (in flight included).
    pub fn pending(&self) -> u64 {
        self.end() - self.delivered_below.max(self.first())
    }

    /// Messages dropped past the bound since the queue was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The oldest sequence number still stored.
    pub fn first(&self) -> u64 {
        self.segments.front().map_or(self.delivered_below, |s| s.first)
    }

    /// Appends a message; it is on disk (in the kernel's cache) when this returns.
    pub fn push(&mut self, topic: &str, payload: &str) -> std::io::Result<()> {
        debug_assert!(!topic.contains(['\t', '\n']) && !payload.contains('\n'));
        let full = self.segments.back().is_none_or(|s| s.len >= self.segment_len);
        if full || self.writer.is_none() {
            let index = self.segments.back().map_or(0, |s| s.index + 1);
            let first = self.end();
            let file = OpenOptions::new().create_new(true).append(true).open(segment_path(&self.dir, index))?;
            self.segments.push_back(Segment { index, first, len: 0 });
            self.writer = Some(file);
        }
        let line = format!("{topic}\t{payload}\n");
        if let (Some(writer), Some(last)) = (self.writer.as_mut(), self.segments.back_mut()) {
            writer.write_all(line.as_bytes())?;
            last.len += 1;
        }
        self.enforce_limit()
    }

    /// Up to `max` messages from `seq` on (from the oldest stored, if `seq` was dropped).
    pub fn read(&self, seq: u64, max: usize) -> std::io::Result<Vec<Queued>> {
        let mut out = Vec::new();
        let mut seq = seq.max(self.first());
        for segment in &self.segments {
            if out.len() >= max {
                break;
            }
            if segment.end() <= seq {
                continue;
            }
            let lines = read_lines(&segment_path(&self.dir, segment.index))?;
            for line in lines.into_iter().skip((seq - segment.first) as usize).take(max - out.len()) {
                if let Some((topic, payload)) = line.split_once('\t') {
                    out.push(Queued { seq, topic: topic.to_string(), payload: payload.to_string() });
                }
                seq += 1;
            }
            seq = seq.max(segment.end());
        }
        Ok(out)
    }

    /// Records that every message below `seq` is acknowledged; fully acknowledged segments go
    /// (the one being written stays until it is full).
    pub fn delivered_below(&mut self, seq: u64) -> std::io::Result<()> {
        self.delivered_below = self.delivered_below.max(seq);
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.end() <= self.delivered_below) {
            self.remove_oldest()?;
        }
        Ok(())
    }

    fn remove_oldest(&mut self) -> std::io::Result<()> {
        if let Some(oldest) = self.segments.pop_front() {
            if self.segments.is_empty() {
                self.writer = None;
            }
            std::fs::remove_file(segment_path(&self.dir, oldest.index))?;
        }
        Ok(())
    }

    fn enforce_limit(&mut self) -> std::io::Result<()> {
        while self.end() - self.first() > self.limit {
            if let Some(oldest) = self.segments.front() {
                self.dropped += oldest.end() - self.delivered_below.max(oldest.first).min(oldest.end());
                self.delivered_below = self.delivered_below.max(oldest.end());
            }
            self.remove_oldest()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(spool: &Spool, from: u64) -> Vec<String> {
        spool.read(from, usize::MAX).unwrap().into_iter().map(|q| q.payload).collect()
    }

    #[test]
    fn messages_come_back_in_order_and_leave_once_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 80).unwrap();
        for i in 0..25 {
            spool.push("t/d/s", &format!("{{\"n\":{i}}}")).unwrap();
        }
        assert_eq!(spool.pending(), 25);
        let read = spool.read(3, 4).unwrap();
        assert_eq!(read.iter().map(|q| q.seq).collect::<Vec<_>>(), [3, 4, 5, 6]);
        assert_eq!(read[0].topic, "t/d/s");
        assert_eq!(read[0].payload, "{\"n\":3}");
        spool.delivered_below(21).unwrap();
        assert_eq!(spool.pending(), 4);
        // Segments of 10: the two fully delivered ones are gone.
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "jsonl"))
                .count(),
            1
        );
        assert_eq!(messages(&spool, 21), ["{\"n\":21}", "{\"n\":22}", "{\"n\":23}", "{\"n\":24}"]);
    }

    #[test]
    fn past_the_bound_the_oldest_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 16).unwrap();
        for i in 0..100 {
            spool.push("t", &i.to_string()).unwrap();
            assert!(spool.pending() <= 16);
        }
        assert_eq!(spool.dropped() + spool.pending(), 100);
        let kept = messages(&spool, 0);
        assert_eq!(kept.last().map(String::as_str), Some("99"));
        let first: u64 = kept[0].parse().unwrap();
        assert_eq!(kept, (first..100).map(|i| i.to_string()).collect::<Vec<_>>(), "the newest, in order, no gap");
    }

    #[test]
    fn a_new_process_delivers_what_an_old_one_left_and_skips_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut spool = Spool::open(dir.path(), 100).unwrap();
            for i in 0..30 {
                spool.push("t", &i.to_string()).unwrap();
            }
            spool.delivered_below(12).unwrap();
        }
        let mut last = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect::<Vec<_>>();
        last.sort();
        let mut f = OpenOptions::new().append(true).open(last.last().unwrap()).unwrap();
        f.write_all(b"t\t{\"cut").unwrap();
        let mut spool = Spool::open(dir.path(), 100).unwrap();
        // Segments of 12: the first was wholly delivered and removed; the rest come again.
        assert_eq!(messages(&spool, 0), (12..30).map(|i| i.to_string()).collect::<Vec<_>>());
        spool.push("t", "30").unwrap();
        assert_eq!(messages(&spool, 0).last().map(String::as_str), Some("30"));
    }

    #[test]
    fn a_spool_in_use_is_refused_with_its_folder_named() {
        let dir = tempfile::tempdir().unwrap();
        let _held = Spool::open(dir.path(), 10).unwrap();
        let e = Spool::open(dir.path(), 10).err().unwrap().to_string();
        assert!(e.contains("MQTT spool") && e.contains(&dir.path().display().to_string()), "{e}");
    }
}
