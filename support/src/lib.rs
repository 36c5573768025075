//! # emoedge-support
//!
//! The helpers every layer of emoedge shares and none owns: files and folders written so that
//! readers see the old content or the whole new one ([`AtomicFile`], [`AtomicDir`],
//! [`write_atomic`]), an output folder held by one process at a time ([`FolderLock`]), folders
//! private to this user ([`private_dir`]), locks that outlive a panic ([`sync::lock`]), calls
//! of many threads batched into one ([`GroupCommit`]) and the wait between attempts to reach
//! something that is away ([`Backoff`]). No model, no GStreamer,
//! no network: any crate may use it.

pub mod backoff;
mod fsutil;
mod group;
pub mod sync;

pub use backoff::Backoff;
pub use fsutil::{AtomicDir, AtomicFile, FolderLock, effective_uid, private_dir, write_atomic};
pub use group::GroupCommit;

/// `text` safe to print on a terminal: control characters (escape sequences, bells, line
/// breaks) are shown escaped, never sent.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}
