//! # emoedge-support
//!
//! The helpers every layer of emoedge shares and none owns: files and folders written so that
//! readers see the old content or the whole new one ([`AtomicFile`], [`AtomicDir`],
//! [`write_atomic`]), an output folder held by one process at a time ([`FolderLock`]), folders
//! private to this user ([`private_dir`]), locks that outlive a panic ([`sync::lock`]) and the
//! wait between attempts to reach something that is away ([`Backoff`]). No model, no GStreamer,
//! no network: any crate may use it.

pub mod backoff;
mod fsutil;
pub mod sync;

pub use backoff::Backoff;
pub use fsutil::{AtomicDir, AtomicFile, FolderLock, effective_uid, private_dir, write_atomic};
