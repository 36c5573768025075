//! `emoedge run`: the main job — the video through the `emotiondetect` element, a live
//! per-track summary, `results.jsonl`, a timeline PNG per track and, on request, an annotated
//! video. [`args`] resolves the options, [`pipeline`] builds the elements, each [`stream`] runs
//! on a thread of its own, the [`session`] handles what they report and [`summary`] prints the
//! end.

mod annotate;
mod args;
pub mod pipeline;
mod results;
mod session;
pub mod stream;
mod summary;
mod timeline;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use emoedge_support::FolderLock;

pub use args::{PublishArgs, RunArgs};
use results::ResultsFile;
use session::Session;
use stream::{Lease, Outcome, Stream};
use summary::Summary;
use timeline::Timelines;

use crate::interrupt::Interrupts;

pub fn execute(mut args: RunArgs) -> anyhow::Result<()> {
    args.ort.load_library()?;
    args.resolve_files()?;
    emoedge_vision::video::init()?;
    gstemoedge::plugin_register_static()?;
    let inputs = args.input.inputs();
    anyhow::ensure!(
        inputs.len() == 1 || args.annotate.is_none(),
        "--annotate draws one video: give one input with it, or drop it to analyse {} streams",
        inputs.len()
    );
    // The broker URL, CA file and device name are checked here, before any video is opened.
    let leases: Vec<Option<Lease>> =
        (0..inputs.len()).map(|i| args.publish.lease(&args.out, &i.to_string())).collect::<anyhow::Result<_>>()?;
    let interrupts = Interrupts::install()?;
    // Held to the end of the run: a second run on this folder is refused, not interleaved.
    let _lock = FolderLock::acquire(&args.out)
        .with_context(|| format!("cannot use {} as the output folder", args.out.display()))?;
    let results = ResultsFile::create(&args.out)?;
    let timelines = Timelines::new(&args.out, args.interval, inputs.len());
    let names: Vec<String> = inputs.iter().map(|i| i.name().to_string()).collect();
    let mut session = Session::new(names, results, timelines, args.annotate.clone(), args.blur_faces);
    let args = Arc::new(args);
    // The annotator draws on BGRx; otherwise RGB, which the element reads without a shuffle.
    let format =
        if args.annotate.is_some() { gstreamer_video::VideoFormat::Bgrx } else { gstreamer_video::VideoFormat::Rgb };
    let reconnect = args.reconnect();
    let (tx, rx) = std::sync::mpsc::sync_channel(4 * inputs.len());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for ((index, input), publish) in inputs.into_iter().enumerate().zip(leases) {
        let stream = Stream { index, input, format, reconnect, publish, replay: false, paced: false };
        let filters = pipeline::filters(Arc::clone(&args), index.to_string());
        threads.push(stream.spawn(filters, tx.clone(), Arc::clone(&stop))?);
    }
    drop(tx);
    let started = Instant::now();
    // Streams get this long after an interrupt to end (a publisher its flush timeout more).
    let flush = if args.publish.publish.is_some() { u64::from(args.publish.publish_timeout) } else { 0 };
    let grace = Duration::from_secs(flush + 10);
    // The results' outcome; whatever it is, the results so far are written below.
    let listened = session.listen(&rx, &interrupts, &stop, grace);
    // A run that stops listening ends its streams (they see the closed channel, or the flag).
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    join(threads, &session.outcomes);
    session.clear_progress();
    let outcomes = outcomes(&mut session, grace);
    finish(session, listened, &outcomes, &args, started.elapsed())
}

/// Joins the stream threads that ended. A thread still blocked is left behind (the process
/// ends it) so that the results are written.
fn join(threads: Vec<JoinHandle<()>>, outcomes: &[Option<Outcome>]) {
    for (thread, outcome) in threads.into_iter().zip(outcomes) {
        if outcome.is_some() || thread.is_finished() {
            let _ = thread.join();
        }
    }
}

/// Every stream's outcome: one that never reported its end is a failure, never a success.
fn outcomes(session: &mut Session, grace: Duration) -> Vec<Outcome> {
    let stopping = session.stopping.is_some();
    let names = session.names.clone();
    let unreported = |i: usize| Outcome {
        error: Some(if stopping {
            anyhow::anyhow!(
                "{} did not stop within {} s of the interrupt (its source does not answer); its results so far are kept",
                names[i],
                grace.as_secs()
            )
        } else {
            anyhow::anyhow!("{} ended without reporting how (an internal error)", names[i])
        }),
        ..Outcome::default()
    };
    std::mem::take(&mut session.outcomes)
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.unwrap_or_else(|| unreported(i)))
        .collect()
}

/// Writes the results (never half: an unwritable file leaves the earlier one as it was),
/// then the timelines, the annotated video and the summary; failures are reported after.
fn finish(
    mut session: Session,
    listened: anyhow::Result<()>,
    outcomes: &[Outcome],
    args: &RunArgs,
    wall: Duration,
) -> anyhow::Result<()> {
    if session.results.failed() {
        return listened;
    }
    session.results.flush()?;
    listened?;
    let total: u64 = session.frames.iter().sum();
    let mut failures = failures(&session, outcomes);
    if total == 0 && !failures.is_empty() {
        return Err(failures.remove(0));
    }
    session.results.commit()?;
    let results_path = session.results.path().to_path_buf();
    // From here on, failures are reported but never take the results away.
    let kept = |e: anyhow::Error| {
        anyhow::anyhow!("{e:#}; the results of the {total} frames analysed are kept in {}", results_path.display())
    };
    let annotated = session.finish_annotation();
    let tracks = session.timelines.finish().map_err(kept)?;
    let summary = Summary { wall, names: &session.names, outcomes, published: args.publish.publish.as_deref() };
    summary.print(&args.out, tracks);
    if let Some(first) = failures.into_iter().next() {
        return Err(kept(first));
    }
    annotated.map_err(kept)
}

/// The streams' failures (and a broker that refused us for good), in stream order.
fn failures(session: &Session, outcomes: &[Outcome]) -> Vec<anyhow::Error> {
    let mut failures = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Some(e) = &outcome.error {
            failures.push(if outcomes.len() > 1 {
                anyhow::anyhow!("{} failed: {e:#}", session.label(i))
            } else {
                anyhow::anyhow!("{e:#}")
            });
        }
        if let Some(reason) = outcome.publish.as_ref().and_then(|p| p.error.as_ref()) {
            failures.push(anyhow::anyhow!("publishing stopped: {reason}"));
        }
    }
    failures
}
