//! Ctrl-C and SIGTERM for the commands that stream video: the first ends the stream cleanly
//! (end-of-stream), so that everything so far is written; a second quits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

/// Interrupts received so far, counted by the handler this installs.
#[derive(Clone)]
pub struct Interrupts(Arc<AtomicU32>);

impl Interrupts {
    /// Installs the handler (once per process).
    pub fn install() -> anyhow::Result<Self> {
        let count = Arc::new(AtomicU32::new(0));
        let counter = count.clone();
        ctrlc::set_handler(move || {
            if counter.fetch_add(1, Ordering::SeqCst) >= 1 {
                std::process::exit(130);
            }
        })
        .context("cannot install the Ctrl-C handler")?;
        Ok(Self(count))
    }

    /// Whether the user asked to stop.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}
