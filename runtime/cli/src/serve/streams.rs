//! The streams a service runs, by name: added and removed while the others go on, each on
//! `run`'s own stream thread (reconnects, publisher, track ids), counted for the API and the
//! metrics. A removed stream's name is taken until its thread has ended and its publisher has
//! been handed its flush.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use emoedge_publish::{PublishStats, Publisher};
use emoedge_support::sync::lock;
use gstemoedge::stats::DetectStats;
use gstreamer as gst;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::config::StreamSpec;
use super::model::LiveModel;
use super::systemd::log;
use crate::args::Input;
use crate::run::RunArgs;
use crate::run::pipeline;
use crate::run::stream::{Event, Filters, MakeFilters, Outcome, Stream};

/// Why a change to the streams was refused; the API answers with the status each one names.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{0}")]
    Invalid(String),
    #[error("stream {0} is running; DELETE /streams/{0} first")]
    Exists(String),
    #[error("stream {0} is still stopping; add it again once GET /streams no longer lists it")]
    Stopping(String),
    #[error("no stream is named {0:?}")]
    Unknown(String),
    #[error("{0} streams are running, the most this service takes (max_streams); remove one first")]
    Full(usize),
    #[error("stream {name} cannot start: {reason}")]
    Start { name: String, reason: String },
}

/// The labels of a stream's series.
pub type StreamLabels = [(&'static str, String); 1];

pub fn labels(name: &str) -> StreamLabels {
    [("stream", name.to_string())]
}

enum State {
    Running,
    /// Removed: its thread is ending.
    Stopping,
    /// Ended by itself (a file without `loop`, or a failure, with its reason).
    Ended(Option<String>),
}

/// What a stream's `emotiondetect` elements counted: the one of the current opening, and the
/// totals of the openings before it (a reopened source gets a new element).
#[derive(Default)]
struct Openings {
    current: Option<gst::Element>,
    closed: DetectTotals,
}

/// The detector's counters that the metrics show.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DetectTotals {
    /// Frames passed on without analysis (the model was busy: `async`).
    pub dropped: u64,
    pub detections: u64,
    pub detector_seconds: f64,
}

impl DetectTotals {
    fn add(mut self, stats: &DetectStats) -> Self {
        self.dropped += stats.frames.saturating_sub(stats.analyzed_frames);
        self.detections += stats.detections;
        self.detector_seconds += stats.detector_ort_ns as f64 / 1e9;
        self
    }
}

impl Openings {
    fn totals(&self) -> DetectTotals {
        let current = self.current.as_ref().and_then(|e| DetectStats::from_element(e).ok());
        current.map_or(self.closed, |stats| self.closed.add(&stats))
    }

    fn open(&mut self, element: gst::Element) {
        self.closed = self.totals();
        self.current = Some(element);
    }
}

#[derive(Default)]
struct Counts {
    frames: u64,
    faces: u64,
    results: u64,
    reconnects: u64,
    up: bool,
}

struct Entry {
    id: usize,
    spec: StreamSpec,
    state: State,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    openings: Arc<Mutex<Openings>>,
    /// The stream's publisher, held to read its counters; closed after the stream ends.
    publisher: Option<Arc<Publisher>>,
    counts: Counts,
    /// Started again with this once it has stopped (a reloaded file changed it).
    then: Option<StreamSpec>,
    /// Joins the stream's thread and closes its publisher, once the stream has ended.
    closer: Option<JoinHandle<()>>,
}

/// One stream as `GET /streams` and the metrics show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamView {
    pub name: String,
    /// The URI with any password replaced by `***`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(rename = "loop")]
    pub replay: bool,
    /// running, stopping, ended or failed.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub up: bool,
    pub frames: u64,
    pub faces: u64,
    pub results: u64,
    pub reconnects: u64,
    #[serde(flatten)]
    pub detect: DetectTotals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<PublishStats>,
}

pub struct Streams {
    entries: BTreeMap<String, Entry>,
    names: HashMap<usize, String>,
    next_id: usize,
    pub max_streams: usize,
    tx: SyncSender<(usize, Event)>,
    run: Arc<RunArgs>,
    model: Arc<LiveModel>,
    latency: Family<StreamLabels, Histogram>,
}

impl Streams {
    pub fn new(
        run: Arc<RunArgs>,
        model: Arc<LiveModel>,
        max_streams: usize,
        tx: SyncSender<(usize, Event)>,
        latency: Family<StreamLabels, Histogram>,
    ) -> Self {
        let (entries, names) = Default::default();
        Self { entries, names, next_id: 0, max_streams, tx, run, model, latency }
    }

    /// Starts `spec`, unless its name is running or stopping or the service is full.
    pub fn add(&mut self, spec: StreamSpec) -> Result<(), Refused> {
        spec.check().map_err(|e| Refused::Invalid(format!("{e:#}")))?;
        match self.entries.get(&spec.name) {
            Some(e) if matches!(e.state, State::Running) => return Err(Refused::Exists(spec.name)),
            Some(e) if Self::busy(e) => return Err(Refused::Stopping(spec.name)),
            Some(_) => drop(self.forget(&spec.name)),
            None => {}
        }
        let running = self.active();
        if running >= self.max_streams {
            return Err(Refused::Full(running));
        }
        self.start(spec)
    }

    /// Stops stream `name` (it is forgotten once its thread has ended), or forgets an ended one.
    pub fn remove(&mut self, name: &str) -> Result<(), Refused> {
        let entry = self.entries.get_mut(name).ok_or_else(|| Refused::Unknown(name.to_string()))?;
        entry.then = None;
        match entry.state {
            State::Running => {
                entry.stop.store(true, Ordering::Relaxed);
                entry.state = State::Stopping;
            }
            State::Stopping => {}
            State::Ended(_) if Self::busy(entry) => entry.state = State::Stopping,
            State::Ended(_) => drop(self.forget(name)),
        }
        Ok(())
    }

    /// Makes stream `spec.name` run `spec`: started, or restarted once it has stopped if it
    /// runs something else.
    pub fn replace(&mut self, spec: StreamSpec) -> Result<(), Refused> {
        match self.entries.get_mut(&spec.name) {
            Some(entry) if matches!(entry.state, State::Running | State::Stopping) => {
                if entry.spec != spec || matches!(entry.state, State::Stopping) {
                    entry.stop.store(true, Ordering::Relaxed);
                    entry.state = State::Stopping;
                    entry.then = Some(spec);
                }
                Ok(())
            }
            _ => self.add(spec),
        }
    }

    /// Stops every stream (the service is ending).
    pub fn stop_all(&mut self) {
        for entry in self.entries.values_mut() {
            entry.then = None;
            if matches!(entry.state, State::Running) {
                entry.stop.store(true, Ordering::Relaxed);
                entry.state = State::Stopping;
            }
        }
    }

    /// Streams running, stopping, or closing their publisher.
    pub fn active(&self) -> usize {
        self.entries.values().filter(|e| Self::busy(e)).count()
    }

    fn start(&mut self, spec: StreamSpec) -> Result<(), Refused> {
        let name = spec.name.clone();
        let refused = |e: &dyn std::fmt::Display| Refused::Start { name: name.clone(), reason: e.to_string() };
        let input = match (&spec.uri, &spec.source) {
            (Some(uri), _) => Input::Video(uri.clone()),
            (None, Some(source)) => Input::Description(source.clone()),
            (None, None) => return Err(Refused::Invalid(format!("stream {name}: give `uri` or `source`"))),
        };
        let lease = self.run.publish.lease(&self.run.out, &name).map_err(|e| refused(&format!("{e:#}")))?;
        let publisher =
            lease.as_ref().map(|l| Publisher::shared(l.config.clone())).transpose().map_err(|e| refused(&e))?;
        let openings = Arc::new(Mutex::new(Openings::default()));
        // A file plays at its own pace, as a camera would: a service is not a batch job.
        let paced = matches!(&input, Input::Video(v) if !emoedge_vision::video::is_live(v));
        let id = self.next_id;
        let stream = Stream {
            index: id,
            input,
            format: gstreamer_video::VideoFormat::Rgb,
            reconnect: self.run.reconnect(),
            publish: lease,
            replay: spec.replay,
            paced,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = stream
            .spawn(self.filters(&name, &openings), self.tx.clone(), Arc::clone(&stop))
            .map_err(|e| refused(&e))?;
        self.next_id += 1;
        self.names.insert(id, name.clone());
        let entry = Entry {
            id,
            spec,
            state: State::Running,
            stop,
            thread: Some(thread),
            openings,
            publisher,
            counts: Counts::default(),
            then: None,
            closer: None,
        };
        self.entries.insert(name.clone(), entry);
        log(format!("{name}: started"));
        Ok(())
    }

    /// Each opening's elements: `emotiondetect` on the model in use, `emotionpublish` if asked.
    fn filters(&self, name: &str, openings: &Arc<Mutex<Openings>>) -> Arc<MakeFilters> {
        let (run, model, name, openings) =
            (Arc::clone(&self.run), Arc::clone(&self.model), name.to_string(), Arc::clone(openings));
        Arc::new(move |first_track| {
            let detect = model.detect(&run, &name, first_track)?;
            lock(&openings).open(detect.clone());
            let publish = pipeline::emotionpublish(&run.publish, &run.out, &name)?;
            Ok(Filters { detect, publish })
        })
    }

    /// What stream `id`'s thread reported.
    pub fn on_event(&mut self, id: usize, event: Event) {
        let Some(name) = self.names.get(&id).cloned() else { return };
        let Some(entry) = self.entries.get_mut(&name) else { return };
        match event {
            Event::Sample { results, age, .. } => {
                let counts = &mut entry.counts;
                counts.frames += 1;
                counts.faces += results.len() as u64;
                counts.results += results.iter().filter(|a| a.fresh).count() as u64;
                counts.up = true;
                if let Some(age) = age {
                    self.latency.get_or_create(&labels(&name)).observe(age.as_secs_f64());
                }
            }
            Event::Lost { reason, retry_in } => {
                entry.counts.reconnects += 1;
                entry.counts.up = false;
                log(format!(
                    "{name} was lost ({reason}); opening it again (backing off up to every {} s)",
                    retry_in.as_secs()
                ));
            }
            Event::Reopened => log(format!("{name} is back")),
            Event::Warning(text) => log(format!("{name}: warning: {text}")),
            Event::Finished(outcome) => self.finished(id, &name, outcome),
        }
    }

    /// A stream's thread ended: its publisher is closed (given its flush) on a thread of its
    /// own, and the stream is forgotten, kept as ended, or started again with its new spec.
    fn finished(&mut self, id: usize, name: &str, outcome: Outcome) {
        self.names.remove(&id);
        let flush = std::time::Duration::from_secs(self.run.publish.publish_timeout.into());
        let Some(entry) = self.entries.get_mut(name) else { return };
        let error = outcome.error.map(|e| format!("{e:#}"));
        match &error {
            Some(e) => log(format!("{name} failed after {} frames: {e}", entry.counts.frames)),
            None => log(format!("{name} ended after {} frames, {} results", entry.counts.frames, entry.counts.results)),
        }
        entry.counts.up = false;
        let (thread, publisher, closing) = (entry.thread.take(), entry.publisher.take(), name.to_string());
        let spool = crate::run::PublishArgs::spool_dir(&self.run.out, name);
        let closer = std::thread::Builder::new().name(format!("close-{id}")).spawn(move || {
            if let Some(thread) = thread {
                let _ = thread.join();
            }
            if let Some(publisher) = publisher {
                let stats = Publisher::release(publisher, flush);
                log(format!(
                    "{closing}: {} results queued, {} delivered, {} wait in the spool for the broker",
                    stats.queued, stats.delivered, stats.pending
                ));
                // A service's streams come and go: an emptied spool is not left behind.
                if stats.pending == 0 {
                    let _ = std::fs::remove_dir_all(&spool);
                }
            }
        });
        entry.closer = closer.ok();
        if matches!(entry.state, State::Running) {
            entry.state = State::Ended(error);
        }
        self.reap();
    }

    /// Forgets the removed streams whose publisher is closed (their name and spool are free
    /// again) and starts the ones a reload changed; keeps at most `max_streams` ended streams
    /// listed (the oldest go first).
    pub fn reap(&mut self) {
        let closed = |e: &Entry| e.thread.is_none() && e.closer.as_ref().is_none_or(JoinHandle::is_finished);
        let removed: Vec<String> = self
            .entries
            .values()
            .filter(|e| matches!(e.state, State::Stopping) && closed(e))
            .map(|e| e.spec.name.clone())
            .collect();
        for name in removed {
            if let Some(then) = self.forget(&name).and_then(|e| e.then)
                && let Err(e) = self.start(then)
            {
                log(format!("{e}"));
            }
        }
        let mut ended: Vec<(usize, String)> = self
            .entries
            .values()
            .filter(|e| matches!(e.state, State::Ended(_)) && closed(e))
            .map(|e| (e.id, e.spec.name.clone()))
            .collect();
        ended.sort();
        let excess = ended.len().saturating_sub(self.max_streams);
        for (_, name) in ended.into_iter().take(excess) {
            self.forget(&name);
        }
    }

    /// Whether stream `name` holds its name: running, stopping, or closing its publisher.
    fn busy(entry: &Entry) -> bool {
        !matches!(entry.state, State::Ended(_)) || entry.closer.as_ref().is_some_and(|c| !c.is_finished())
    }

    fn forget(&mut self, name: &str) -> Option<Entry> {
        self.latency.remove(&labels(name));
        self.entries.remove(name)
    }

    pub fn views(&self) -> Vec<StreamView> {
        self.entries.values().map(Entry::view).collect()
    }
}

impl Entry {
    fn view(&self) -> StreamView {
        let (state, error) = match &self.state {
            State::Running => ("running", None),
            State::Stopping => ("stopping", None),
            State::Ended(None) => ("ended", None),
            State::Ended(Some(e)) => ("failed", Some(e.clone())),
        };
        StreamView {
            name: self.spec.name.clone(),
            uri: self.spec.uri.as_deref().map(emoedge_publish::broker::redact_text),
            source: self.spec.source.clone(),
            replay: self.spec.replay,
            state,
            error,
            up: self.counts.up,
            frames: self.counts.frames,
            faces: self.counts.faces,
            results: self.counts.results,
            reconnects: self.counts.reconnects,
            detect: lock(&self.openings).totals(),
            mqtt: self.publisher.as_ref().map(|p| p.stats()),
        }
    }
}
