//! The on-disk queue between the producer of results and the broker: append-only segment files
//! `<index>.jsonl` in one locked, private (0700) folder, one message payload per line (the topic
//! is never stored: the publisher derives it from its configuration). Messages are delivered
//! oldest first; a segment goes once all its messages are acknowledged, and the acknowledgement
//! mark inside the oldest segment is kept in the file `acked`, so that nothing acknowledged is
//! sent again by a later publisher on the folder. The queue holds at most `limit` messages: past
//! it the oldest segment is dropped and its undelivered messages counted. A segment that cannot
//! be read is set aside (renamed `*.unreadable`) and named, never fatal.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use emoedge_support::FolderLock;

/// One queued message; `seq` is its position in this process's view of the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub seq: u64,
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

/// The file that records how many messages of the oldest segment are acknowledged.
const ACKED: &str = "acked";
/// A segment larger than this is not ours (the largest we write is about 1024 results).
const MAX_SEGMENT_BYTES: u64 = 64 << 20;

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
    /// Segments found unreadable at opening, renamed aside: what happened to each.
    set_aside: Vec<String>,
    _lock: FolderLock,
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:020}.jsonl"))
}

/// The complete lines of a segment (a line cut by a crash is not a message), as text (a damaged
/// byte becomes U+FFFD: the publisher then refuses that message, and only that one). Lines of an
/// older spool format, `topic<TAB>payload`, give their payload: JSON never holds a raw tab.
fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() || meta.len() > MAX_SEGMENT_BYTES {
        return Err(std::io::Error::other(format!(
            "not a spool segment (a regular file of at most {MAX_SEGMENT_BYTES} bytes)"
        )));
    }
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Ok(bytes[..complete]
        .split(|&b| b == b'\n')
        .take(bytes[..complete].iter().filter(|&&b| b == b'\n').count())
        .map(|line| {
            let line = String::from_utf8_lossy(line);
            line.split_once('\t').map_or(line.as_ref(), |(_, payload)| payload).to_string()
        })
        .collect())
}

/// The acknowledgement mark `acked` holds: (segment index, messages of it acknowledged).
fn read_mark(dir: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(dir.join(ACKED)).ok()?;
    let (index, count) = text.trim().split_once(' ')?;
    Some((index.parse().ok()?, count.parse().ok()?))
}

impl Spool {
    /// Opens (creating, private to this user) the queue in `dir`, holding at most `limit`
    /// messages; an error naming the folder when another process uses it or another user owns it.
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<Self> {
        let named = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("cannot use {} as the MQTT spool: {e}", dir.display()))
        };
        emoedge_support::private_dir(dir).map_err(named)?;
        let lock = FolderLock::acquire(dir).map_err(named)?;
        let limit = limit.max(1);
        let mut indices: Vec<u64> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".jsonl")?.parse().ok())
            .collect();
        indices.sort_unstable();
        let mut segments = VecDeque::new();
        let mut set_aside = Vec::new();
        let mut next = 0;
        for index in indices {
            let path = segment_path(dir, index);
            match read_lines(&path) {
                Ok(lines) => {
                    let len = lines.len() as u64;
                    segments.push_back(Segment { index, first: next, len });
                    next += len;
                }
                Err(e) => {
                    let aside = path.with_extension("jsonl.unreadable");
                    std::fs::rename(&path, &aside).map_err(named)?;
                    set_aside.push(format!(
                        "{} could not be read ({e}) and was set aside as {}",
                        path.display(),
                        aside.display()
                    ));
                }
            }
        }
        let delivered_below = match (read_mark(dir), segments.front()) {
            (Some((index, count)), Some(_)) => match segments.iter().find(|s| s.index == index) {
                Some(s) => s.first + count.min(s.len),
                // The marked segment is gone (wholly acknowledged) or the mark is from a spool
                // that no longer exists: everything before the first later segment is done.
                None => segments.iter().find(|s| s.index > index).map_or(next, |s| s.first),
            },
            _ => 0,
        };
        let mut spool = Self {
            dir: dir.to_path_buf(),
            limit,
            // Drops happen a segment at a time: small segments keep them close to the bound.
            segment_len: (limit / 8).clamp(1, 1024),
            segments,
            writer: None,
            delivered_below,
            dropped: 0,
            set_aside,
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
        self.end() - self.acknowledged()
    }

    /// Messages dropped past the bound since the queue was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Every message below this sequence number is acknowledged (or dropped): where sending
    /// starts, after an opening or a reconnection.
    pub fn acknowledged(&self) -> u64 {
        self.delivered_below.max(self.first())
    }

    /// What was found unreadable at opening and set aside, one sentence each.
    pub fn set_aside(&self) -> &[String] {
        &self.set_aside
    }

    /// The oldest sequence number still stored.
    pub fn first(&self) -> u64 {
        self.segments.front().map_or(self.delivered_below, |s| s.first)
    }

    /// Appends a message (one line of JSON); it is on disk (in the kernel's cache) when this
    /// returns.
    pub fn push(&mut self, payload: &str) -> std::io::Result<()> {
        if payload.contains(['\n', '\t']) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a spooled message is one line of JSON"));
        }
        let full = self.segments.back().is_none_or(|s| s.len >= self.segment_len);
        if full || self.writer.is_none() {
            let index = self.segments.back().map_or(0, |s| s.index + 1);
            let first = self.end();
            let file = OpenOptions::new().create_new(true).append(true).open(segment_path(&self.dir, index))?;
            self.segments.push_back(Segment { index, first, len: 0 });
            self.writer = Some(file);
        }
        if let (Some(writer), Some(last)) = (self.writer.as_mut(), self.segments.back_mut()) {
            writer.write_all(format!("{payload}\n").as_bytes())?;
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
            for payload in lines.into_iter().skip((seq - segment.first) as usize).take(max - out.len()) {
                out.push(Queued { seq, payload });
                seq += 1;
            }
            seq = seq.max(segment.end());
        }
        Ok(out)
    }

    /// Records that every message below `seq` is acknowledged (persisted in `acked`, so a later
    /// publisher does not send them again); fully acknowledged segments go (the one being
    /// written stays until it is full).
    pub fn delivered_below(&mut self, seq: u64) -> std::io::Result<()> {
        if seq <= self.delivered_below {
            return Ok(());
        }
        self.delivered_below = seq;
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.end() <= self.delivered_below) {
            self.remove_oldest()?;
        }
        self.save_mark()
    }

    /// Writes the mark within the oldest segment: a new file renamed over the old, so a crash
    /// leaves one or the other (without a sync: after a power cut, at worst some acknowledged
    /// messages go again, which at-least-once allows).
    fn save_mark(&self) -> std::io::Result<()> {
        let Some(oldest) = self.segments.front() else { return Ok(()) };
        let count = self.delivered_below.saturating_sub(oldest.first).min(oldest.len);
        let temp = self.dir.join(format!("{ACKED}.new"));
        std::fs::write(&temp, format!("{} {count}\n", oldest.index))?;
        std::fs::rename(&temp, self.dir.join(ACKED))
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
        let mut removed = false;
        while self.end() - self.first() > self.limit {
            if let Some(oldest) = self.segments.front() {
                self.dropped += oldest.end() - self.delivered_below.max(oldest.first).min(oldest.end());
                self.delivered_below = self.delivered_below.max(oldest.end());
            }
            self.remove_oldest()?;
            removed = true;
        }
        if removed { self.save_mark() } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests;
