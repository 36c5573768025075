//! Locks that outlive a panic: a thread that panicked while holding one (a bug, reported where
//! it happened) must not turn every later lock into a second panic — across the GStreamer FFI
//! that would be an abort. The data under these locks stays consistent at every step.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, also when a panicking thread left it poisoned.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
