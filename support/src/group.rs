//! Group commit: one model, many callers, calls batched without a timer — what DeepStream's
//! `nvstreammux` + one `nvinfer` do for a process's streams. A caller queues its work and
//! either waits while another caller's batch runs, or runs one batch for everything queued
//! meanwhile (its own included) and hands every answer out. A lone caller pays nothing; busy
//! callers fill batches by themselves.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};

use crate::sync::lock;

/// The work callers queued, and the answers not yet collected.
struct Pending<W, A> {
    next_id: u64,
    waiting: Vec<(u64, W)>,
    /// Answers by request id; `None`: the batch carrying the request ended without answering it
    /// (its run panicked), which its caller hears instead of waiting forever.
    done: HashMap<u64, Option<A>>,
    /// A caller is running a batch.
    running: bool,
}

pub struct GroupCommit<W, A> {
    pending: Mutex<Pending<W, A>>,
    finished: Condvar,
}

impl<W, A> Default for GroupCommit<W, A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W, A> GroupCommit<W, A> {
    pub fn new() -> Self {
        let pending = Pending { next_id: 0, waiting: Vec::new(), done: HashMap::new(), running: false };
        Self { pending: Mutex::new(pending), finished: Condvar::new() }
    }

    /// Queues `work` and returns its answer. When no batch is running, this caller runs `run` on
    /// every queued request (id and work) and hands out the answers it returns, by id. `None`:
    /// the batch that carried `work` did not answer it (its run panicked on another thread, or
    /// left the id out).
    pub fn submit(&self, work: W, run: impl FnOnce(Vec<(u64, W)>) -> Vec<(u64, A)>) -> Option<A> {
        let mut pending = lock(&self.pending);
        let id = pending.next_id;
        pending.next_id += 1;
        pending.waiting.push((id, work));
        let mut run = Some(run);
        loop {
            if let Some(answer) = pending.done.remove(&id) {
                return answer;
            }
            if pending.running {
                pending = self.finished.wait(pending).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // A caller leads once: the batch it runs carries its own work, so it is answered.
            let run = run.take()?;
            pending.running = true;
            let batch = std::mem::take(&mut pending.waiting);
            let ids: Vec<u64> = batch.iter().map(|(id, _)| *id).collect();
            drop(pending);
            // Whatever happens in `run`, the batch ends: its requests are answered (or told they
            // were not) and the next caller may run.
            let ending = Ending { group: self, ids };
            let answers = run(batch);
            ending.finish(answers);
            pending = lock(&self.pending);
        }
    }

    /// Requests queued and not yet taken into a batch (for tests).
    #[cfg(test)]
    fn queued(&self) -> usize {
        lock(&self.pending).waiting.len()
    }
}

/// Ends a running batch, also when its run unwinds.
struct Ending<'g, W, A> {
    group: &'g GroupCommit<W, A>,
    ids: Vec<u64>,
}

impl<W, A> Ending<'_, W, A> {
    fn finish(mut self, answers: Vec<(u64, A)>) {
        let mut pending = lock(&self.group.pending);
        for (id, answer) in answers {
            pending.done.insert(id, Some(answer));
        }
        self.close(&mut pending);
    }

    fn close(&mut self, pending: &mut Pending<W, A>) {
        for id in self.ids.drain(..) {
            pending.done.entry(id).or_insert(None);
        }
        pending.running = false;
        self.group.finished.notify_all();
    }
}

impl<W, A> Drop for Ending<'_, W, A> {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            let group = self.group;
            self.close(&mut lock(&group.pending));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn a_lone_caller_runs_its_own_work() {
        let group = GroupCommit::new();
        let answer = group.submit(3, |batch| batch.into_iter().map(|(id, w)| (id, w * 2)).collect());
        assert_eq!(answer, Some(6));
    }

    #[test]
    fn callers_that_queue_while_a_batch_runs_share_the_next_batch() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::new(GroupCommit::new());
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let started = Arc::new(Barrier::new(2));
        // The first caller's batch holds the group until the others have queued.
        let first = {
            let (group, sizes, started) = (group.clone(), sizes.clone(), started.clone());
            std::thread::spawn(move || {
                let waiting = group.clone();
                group.submit(0, |batch| {
                    started.wait();
                    while waiting.queued() < 4 {
                        std::thread::yield_now();
                    }
                    lock(&sizes).push(batch.len());
                    batch
                })
            })
        };
        started.wait();
        let others: Vec<_> = (1..=4)
            .map(|w| {
                let (group, sizes) = (group.clone(), sizes.clone());
                std::thread::spawn(move || {
                    group.submit(w, |batch| {
                        lock(&sizes).push(batch.len());
                        batch.into_iter().map(|(id, w)| (id, w * 10)).collect()
                    })
                })
            })
            .collect();
        assert_eq!(first.join().unwrap(), Some(0));
        let answers: Vec<_> = others.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(answers, [Some(10), Some(20), Some(30), Some(40)]);
        assert_eq!(*lock(&sizes), [1, 4], "the four that waited went in one batch");
    }

    #[test]
    fn a_batch_that_panics_answers_none_and_the_group_goes_on() {
        let group: Arc<GroupCommit<u32, u32>> = Arc::new(GroupCommit::new());
        let panicking = {
            let group = group.clone();
            std::thread::spawn(move || group.submit(1, |_| panic!("a model call panicked")))
        };
        assert!(panicking.join().is_err(), "the panic reaches the caller that ran the batch");
        assert_eq!(group.submit(2, |batch| batch), Some(2), "the next caller is not blocked");
        let skipped = group.submit(3, |_| Vec::new());
        assert_eq!(skipped, None, "an unanswered request hears so");
    }
}
