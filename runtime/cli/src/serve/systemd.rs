//! The journal (a log line on stderr) and systemd's `Type=notify` protocol (sd-notify): READY
//! once the service answers, WATCHDOG from the event loop while it turns (a hung loop gets the
//! service restarted), STOPPING at the end. Without `$NOTIFY_SOCKET` (not under systemd) every
//! notification does nothing.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// A line on stderr (the journal under systemd), user text escaped.
pub fn log(message: impl AsRef<str>) {
    eprintln!("emoedge serve: {}", emoedge_support::printable(message.as_ref()));
}

/// Tells systemd `state`; a failure is logged, never fatal.
pub fn notify(state: NotifyState) {
    if let Err(e) = sd_notify::notify(&[state]) {
        log(format!("cannot notify systemd: {e}"));
    }
}

/// The watchdog's keep-alive, sent at half the interval systemd asked for.
pub struct Watchdog {
    every: Option<Duration>,
    last: Instant,
}

impl Watchdog {
    pub fn from_env() -> Self {
        Self { every: sd_notify::watchdog_enabled().map(|interval| interval / 2), last: Instant::now() }
    }

    /// Sends the keep-alive if it is due.
    pub fn tick(&mut self) {
        if self.every.is_some_and(|every| self.last.elapsed() >= every) {
            notify(NotifyState::Watchdog);
            self.last = Instant::now();
        }
    }
}
