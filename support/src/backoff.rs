//! The wait between attempts to reach something that is away — a broker, a camera: short at
//! first (a blink costs little), doubling up to a ceiling (an outage costs few attempts), and
//! short again once it answers.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The first wait.
    pub const FIRST: Duration = Duration::from_millis(250);

    /// Waits from [`Self::FIRST`] (or `max`, if shorter) doubling up to `max`.
    pub fn new(max: Duration) -> Self {
        Self { max, next: Self::FIRST.min(max) }
    }

    /// The wait before the next attempt; the one after is twice as long, up to the ceiling.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// What it was waiting for answered: the next wait is the first again.
    pub fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_ceiling_and_start_over_after_an_answer() {
        let mut backoff = Backoff::new(Duration::from_secs(2));
        let waits: Vec<u128> = (0..6).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), Backoff::FIRST);
        assert_eq!(Backoff::new(Duration::from_millis(100)).next_wait(), Duration::from_millis(100));
    }
}
