//! One run as it happens: what the streams report, one method per kind of event — results to
//! `results.jsonl` and the timelines, frames to the annotated video, progress to the bar.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use emoedge_publish::{EmotionRecord, ResultLine};
use gstemoedge::meta::Attached;
use gstreamer as gst;
use indicatif::{ProgressBar, ProgressStyle};

use super::annotate::Annotator;
use super::results::ResultsFile;
use super::stream::{Event, Outcome};
use super::timeline::Timelines;
use crate::interrupt::Interrupts;

/// The annotated video: an extra, whose failure stops it and not the analysis.
struct Annotation {
    path: PathBuf,
    annotator: Option<Annotator>,
    /// Faces pixelated (`--blur-faces`).
    blur: bool,
    error: Option<anyhow::Error>,
}

pub struct Session {
    /// The streams' inputs as given.
    pub names: Vec<String>,
    pub results: ResultsFile,
    pub timelines: Timelines,
    annotation: Option<Annotation>,
    /// Frames received per stream.
    pub frames: Vec<u64>,
    /// The fraction of each file done (live streams stay at 0).
    progress: Vec<f64>,
    /// How each stream ended, once it has.
    pub outcomes: Vec<Option<Outcome>>,
    /// When the run began to stop (Ctrl-C).
    pub stopping: Option<Instant>,
    bar: ProgressBar,
}

impl Session {
    pub fn new(
        names: Vec<String>,
        results: ResultsFile,
        timelines: Timelines,
        annotate: Option<PathBuf>,
        blur: bool,
    ) -> Self {
        let streams = names.len();
        let bar = ProgressBar::new(1000).with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self {
            names,
            results,
            timelines,
            annotation: annotate.map(|path| Annotation { path, annotator: None, blur, error: None }),
            frames: vec![0; streams],
            progress: vec![0.0; streams],
            outcomes: (0..streams).map(|_| None).collect(),
            stopping: None,
            bar,
        }
    }

    /// Handles the streams' events until every stream has ended, the channel closes, or `grace`
    /// has passed since an interrupt (a source blocked in the kernel never ends).
    pub fn listen(
        &mut self,
        rx: &Receiver<(usize, Event)>,
        interrupts: &Interrupts,
        stop: &AtomicBool,
        grace: Duration,
    ) -> anyhow::Result<()> {
        while self.outcomes.iter().any(Option::is_none) {
            if self.stopping.is_none() && interrupts.requested() {
                self.stopping = Some(Instant::now());
                self.note("interrupted: ending the streams and writing the results (Ctrl-C again to quit at once)");
                stop.store(true, Ordering::Relaxed);
            }
            if self.stopping.is_some_and(|since| since.elapsed() > grace) {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((i, event)) => self.handle(i, event)?,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Ok(())
    }

    fn handle(&mut self, i: usize, event: Event) -> anyhow::Result<()> {
        match event {
            Event::Sample { sample, results, progress, .. } => return self.on_sample(i, &sample, results, progress),
            Event::Lost { reason, retry_in } => self.on_lost(i, &reason, retry_in),
            Event::Reopened => self.note(format!("{} is back", self.label(i))),
            Event::Warning(text) => self.note(format!("{}: warning: {text}", self.label(i))),
            Event::Finished(outcome) => self.on_finished(i, outcome),
        }
        Ok(())
    }

    /// A frame: its fresh results to the file and the timelines, the frame to the annotation.
    fn on_sample(
        &mut self,
        i: usize,
        sample: &gst::Sample,
        results: Vec<Attached>,
        progress: Option<f64>,
    ) -> anyhow::Result<()> {
        let Some(buffer) = sample.buffer() else { return Ok(()) };
        self.frames[i] += 1;
        let mut records: Vec<EmotionRecord> = Vec::with_capacity(results.len());
        for Attached { record, fresh } in results {
            if fresh {
                self.results.write(&ResultLine { stream: i, record: record.clone() })?;
                self.timelines.record(i, self.frames[i], &record);
            }
            records.push(record);
        }
        self.timelines.end_idle(i, self.frames[i]);
        self.annotate(sample, buffer, &records);
        if let Some(fraction) = progress {
            self.progress[i] = fraction.clamp(0.0, 1.0);
            let done = self.progress.iter().sum::<f64>() / self.names.len() as f64;
            self.bar.set_position((1000.0 * done) as u64);
        }
        let live = self.timelines.live();
        let total: u64 = self.frames.iter().sum();
        self.bar.set_message(if live.is_empty() { format!("{total} frames, no face yet") } else { live.join(" | ") });
        Ok(())
    }

    fn on_lost(&mut self, i: usize, reason: &str, retry_in: Duration) {
        self.note(format!(
            "{} was lost ({reason}); its tracks are closed, opening it again (backing off up to every {} s)",
            self.label(i),
            retry_in.as_secs()
        ));
        self.timelines.end_stream(i);
    }

    fn on_finished(&mut self, i: usize, outcome: Outcome) {
        if let (Some(e), true) = (&outcome.error, self.names.len() > 1) {
            self.note(format!("{} failed: {e:#}; the other streams go on", self.label(i)));
        }
        self.timelines.end_stream(i);
        self.outcomes[i] = Some(outcome);
    }

    fn annotate(&mut self, sample: &gst::Sample, buffer: &gst::BufferRef, records: &[EmotionRecord]) {
        let Some(annotation) = self.annotation.as_mut().filter(|a| a.error.is_none()) else { return };
        let mut push = || -> anyhow::Result<()> {
            if annotation.annotator.is_none() {
                let caps = sample.caps().context("sample without caps")?;
                annotation.annotator = Some(Annotator::start(&annotation.path, caps, annotation.blur)?);
            }
            match annotation.annotator.as_mut() {
                Some(a) => a.push(buffer, records),
                None => Ok(()),
            }
        };
        if let Err(e) = push() {
            annotation.annotator = None;
            let text = format!("the annotated video stopped: {e:#}; the analysis goes on");
            annotation.error = Some(e);
            self.note(text);
        }
    }

    /// Ends the annotated video, if there is one: its error, or none.
    pub fn finish_annotation(&mut self) -> anyhow::Result<()> {
        let Some(annotation) = self.annotation.take() else { return Ok(()) };
        match annotation.error {
            Some(e) => Err(e),
            None => annotation.annotator.map_or(Ok(()), Annotator::finish),
        }
    }

    /// Stream `i` in messages: its input, with its index when there are several.
    pub fn label(&self, i: usize) -> String {
        if self.names.len() > 1 { format!("stream {i} ({})", self.names[i]) } else { self.names[i].clone() }
    }

    /// A message above the progress bar — or on stderr when there is no bar to show (output
    /// not a terminal), where indicatif would swallow it.
    fn note(&self, message: impl AsRef<str>) {
        if self.bar.is_hidden() {
            eprintln!("{}", message.as_ref());
        } else {
            self.bar.println(message);
        }
    }

    pub fn clear_progress(&self) {
        self.bar.finish_and_clear();
    }
}
