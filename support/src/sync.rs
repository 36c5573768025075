//! Locks that outlive a panic: a thread that panicked while holding one (a bug, reported where
//! it happened) must not turn every later lock into a second panic — across the GStreamer FFI
//! that would be an abort. The data under these locks stays consistent at every step.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// The text a panic was raised with, when it was a string: for the error that reports a worker
/// thread's panic as a failure.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Locks `mutex`, also when a panicking thread left it poisoned.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Values shared by key while anyone holds them (the emotion model, the face embedder and the
/// gallery that a process's streams share): a second request for a key gets the first one's
/// value, and a value nobody holds any more is dropped, not kept for a later request.
pub struct WeakRegistry<K, V> {
    entries: Mutex<Vec<(K, std::sync::Weak<V>)>>,
}

impl<K: PartialEq, V> Default for WeakRegistry<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: PartialEq, V> WeakRegistry<K, V> {
    pub const fn new() -> Self {
        Self { entries: Mutex::new(Vec::new()) }
    }

    /// The value held under `key`, or a new one from `open` (called under the registry's lock,
    /// so two streams asking at once open it once).
    pub fn get_or_open<E>(&self, key: K, open: impl FnOnce() -> Result<V, E>) -> Result<std::sync::Arc<V>, E> {
        let mut entries = lock(&self.entries);
        entries.retain(|(_, held)| held.strong_count() > 0);
        if let Some(found) = entries.iter().find(|(k, _)| *k == key).and_then(|(_, held)| held.upgrade()) {
            return Ok(found);
        }
        let made = std::sync::Arc::new(open()?);
        entries.push((key, std::sync::Arc::downgrade(&made)));
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_key_shares_one_value_while_held_and_a_dropped_value_is_opened_again() {
        let registry: WeakRegistry<&str, u32> = WeakRegistry::new();
        let mut opened = 0;
        let mut open = |v| {
            opened += 1;
            Ok::<_, ()>(v)
        };
        let a = registry.get_or_open("a", || open(1)).unwrap();
        let again = registry.get_or_open("a", || open(2)).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &again));
        let b = registry.get_or_open("b", || open(3)).unwrap();
        assert_eq!((*a, *b), (1, 3));
        drop((a, again));
        assert_eq!(*registry.get_or_open("a", || open(4)).unwrap(), 4, "nobody held it: opened anew");
        assert_eq!(opened, 3);
        assert!(registry.get_or_open("c", || Err(())).is_err());
    }
}
