//! One input of `emoedge run` on its own thread: its pipeline (source → `emotiondetect` →
//! [`emotionpublish`] → appsink) sends its frames to the run; a live source that fails, ends
//! or goes quiet is opened again after `--reconnect-interval`, its track ids continuing where
//! they stopped. Streams' `emotiondetect` elements share one model, so their inference calls
//! are batched together while each stream decodes and tracks on its own thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use emoedge_inference::onnx::ActiveProvider;
use emoedge_publish::{PublishStats, Publisher, PublisherConfig};
use emoedge_support::Backoff;
use emoedge_support::sync::panic_message;
use emoedge_vision::video::{Pulled, SourceOptions, Stall, VideoSource};
use gstemoedge::meta::Attached;
use gstemoedge::stats::DetectStats;
use gstreamer as gst;
use gstreamer::prelude::*;

use crate::args::Input;

/// The elements one opening of a stream runs its frames through.
pub struct Filters {
    pub detect: gst::Element,
    pub publish: Option<gst::Element>,
}

/// Builds a stream's filters; the argument is the first track id the new opening may use.
pub type MakeFilters = dyn Fn(u64) -> anyhow::Result<Filters> + Send + Sync;

/// What a stream tells the run.
pub enum Event {
    /// A frame with its results (read once, here); `progress`: the fraction of a file done.
    Sample {
        sample: gst::Sample,
        results: Vec<Attached>,
        progress: Option<f64>,
        /// How long ago the frame entered the pipeline (live and paced sources).
        age: Option<Duration>,
    },
    /// A live source was lost: its tracks are over, and it is opened again, first after 0.25 s,
    /// then waiting twice as long each time up to `retry_in`.
    Lost {
        reason: String,
        retry_in: Duration,
    },
    /// A lost source gave a frame again.
    Reopened,
    /// An element's warning (the spool overflowing, a message that can never be sent).
    Warning(String),
    Finished(Outcome),
}

/// The stream's publisher, held for its whole life: the `emotionpublish` element of each
/// opening shares it (one session, one acknowledgement mark, nothing sent twice), and the
/// stream closes it at its end, giving the broker `flush_timeout` to acknowledge the rest.
pub struct Lease {
    pub config: PublisherConfig,
    pub flush_timeout: Duration,
}

/// How a stream ended, with its elements' final statistics (one per opening).
#[derive(Default)]
pub struct Outcome {
    pub frames: u64,
    pub provider: Option<ActiveProvider>,
    pub detect_stats: Vec<DetectStats>,
    /// The publisher's final counters, when publishing.
    pub publish: Option<PublishStats>,
    /// Times a live source was lost and opened again.
    pub losses: u64,
    pub error: Option<anyhow::Error>,
}

pub struct Stream {
    pub index: usize,
    pub input: Input,
    pub format: gstreamer_video::VideoFormat,
    /// For live sources: reopen after a loss, waiting this long (also how long a quiet source
    /// may send nothing before it counts as lost).
    pub reconnect: Option<Duration>,
    pub publish: Option<Lease>,
    /// A file starts again at its end, forever (`emoedge serve`'s `loop`); its track ids go on.
    pub replay: bool,
    /// Frames are released at their own pace, as from a camera (`emoedge serve` plays files so).
    pub paced: bool,
}

/// How long a stopping stream may pass nothing on before it counts as ended.
const STOP_QUIET: Duration = Duration::from_secs(3);

/// Sends to the run; false once the run has stopped listening.
fn send(tx: &SyncSender<(usize, Event)>, index: usize, event: Event) -> bool {
    tx.send((index, event)).is_ok()
}

impl Stream {
    /// Runs the stream on a thread until it ends, fails for good, or `stop` is set; its last
    /// event is always [`Event::Finished`], with a panic reported as the stream's failure.
    pub fn spawn(
        self,
        make: Arc<MakeFilters>,
        tx: SyncSender<(usize, Event)>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name(format!("stream-{}", self.index)).spawn(move || {
            let run = std::panic::AssertUnwindSafe(|| self.run(&*make, &tx, &stop));
            let outcome = std::panic::catch_unwind(run).unwrap_or_else(|panic| Outcome {
                error: Some(anyhow::anyhow!("the stream's thread failed: {}", panic_message(&*panic))),
                ..Outcome::default()
            });
            send(&tx, self.index, Event::Finished(outcome));
        })
    }

    /// The stream with its publisher held from first opening to last.
    fn run(&self, make: &MakeFilters, tx: &SyncSender<(usize, Event)>, stop: &AtomicBool) -> Outcome {
        let publisher = match self.publish.as_ref().map(|lease| Publisher::shared(lease.config.clone())).transpose() {
            Ok(publisher) => publisher,
            Err(e) => return Outcome { error: Some(e.into()), ..Outcome::default() },
        };
        let mut outcome = self.work(make, tx, stop);
        if let (Some(publisher), Some(lease)) = (publisher, &self.publish) {
            outcome.publish = Some(Publisher::release(publisher, lease.flush_timeout));
        }
        outcome
    }

    fn work(&self, make: &MakeFilters, tx: &SyncSender<(usize, Event)>, stop: &AtomicBool) -> Outcome {
        let mut outcome = Outcome::default();
        let mut last_track = 0u64;
        // Whether the run was told of the current loss (one message however many attempts).
        let mut told = false;
        // The wait before the next attempt: short at first, doubling up to the interval.
        let mut backoff = Backoff::new(self.reconnect.unwrap_or_default());
        let live = match &self.input {
            Input::Video(name) => emoedge_vision::video::is_live(name),
            Input::Description(_) => true,
        };
        loop {
            let opened_frames = outcome.frames;
            let result = self.open_once(make, tx, stop, &mut outcome, &mut last_track);
            let stopped = stop.load(Ordering::Relaxed);
            // A file that gave frames starts again; one that gave none ends (no busy loop).
            if self.replay && !stopped && matches!(result, Ok(Opening::Ended)) && outcome.frames > opened_frames {
                continue;
            }
            let Some(retry_in) = self.reconnect.filter(|_| live && !stopped) else {
                // An opening the user interrupted before its first frame did not fail.
                if let Err(e) = result
                    && !(stopped && outcome.frames == opened_frames)
                {
                    outcome.error = Some(e);
                }
                return outcome;
            };
            let reason = match result {
                Ok(Opening::Ended) => "the source ended".to_string(),
                Ok(Opening::Quiet) => format!("no frame for {:.0} s", retry_in.as_secs_f64()),
                Ok(Opening::Unheard) => return outcome,
                Err(e) => format!("{e:#}"),
            };
            if outcome.frames > opened_frames {
                told = false;
                backoff.reset();
            }
            let pause = backoff.next_wait();
            if !told {
                outcome.losses += 1;
                told = true;
                if !send(tx, self.index, Event::Lost { reason, retry_in }) {
                    return outcome;
                }
            }
            let wait = Instant::now();
            while wait.elapsed() < pause {
                if stop.load(Ordering::Relaxed) {
                    return outcome;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// One opening of the source, until it ends, fails, goes quiet, or the run stops.
    fn open_once(
        &self,
        make: &MakeFilters,
        tx: &SyncSender<(usize, Event)>,
        stop: &AtomicBool,
        outcome: &mut Outcome,
        last_track: &mut u64,
    ) -> anyhow::Result<Opening> {
        let filters = make(*last_track)?;
        let elements = std::iter::once(filters.detect.clone()).chain(filters.publish.clone()).collect();
        let options = SourceOptions { format: self.format, filters: elements, paced: self.paced, ..Default::default() };
        // Whatever happens to this opening, its detector's statistics go into the outcome.
        let stats = || DetectStats::from_element(&filters.detect).map_err(anyhow::Error::msg);
        let mut video = match self.input.open(options) {
            Ok(video) => video,
            Err(e) => {
                outcome.detect_stats.extend(stats().ok());
                return Err(e);
            }
        };
        outcome.provider = stats()?.provider;
        if outcome.provider == Some(ActiveProvider::TensorRt) {
            video.set_stall(Stall::ENGINE_BUILD);
        }
        let reopened = outcome.losses > 0;
        let result = self.pull(&mut video, tx, stop, outcome, last_track, reopened);
        // Stopping the pipeline gives the publisher its flush timeout; the counters are final after.
        drop(video);
        let last = stats();
        outcome.detect_stats.extend(last.as_ref().ok().cloned());
        result.and_then(|opening| last.map(|_| opening))
    }

    fn pull(
        &self,
        video: &mut VideoSource,
        tx: &SyncSender<(usize, Event)>,
        stop: &AtomicBool,
        outcome: &mut Outcome,
        last_track: &mut u64,
        mut reopened: bool,
    ) -> anyhow::Result<Opening> {
        let mut stopping: Option<Instant> = None;
        let mut last_frame = Instant::now();
        let first = outcome.frames;
        loop {
            if stopping.is_none() && stop.load(Ordering::Relaxed) {
                stopping = Some(Instant::now());
                video.stop();
            }
            let sample = match video.poll()? {
                Pulled::Sample(sample) => sample,
                Pulled::End => return Ok(Opening::Ended),
                // A source still opening (a camera that does not answer) never passes the
                // end-of-stream on: once nothing has come for a while, the stream is over.
                Pulled::Idle if stopping.is_some_and(|s| s.elapsed().min(last_frame.elapsed()) > STOP_QUIET) => {
                    return Ok(Opening::Ended);
                }
                Pulled::Idle => {
                    // The first frame of an opening may take longer (negotiation, engine builds).
                    let quiet = self
                        .reconnect
                        .map(|r| if outcome.frames == first { r.max(Duration::from_secs(30)) } else { r });
                    if stopping.is_none() && quiet.is_some_and(|q| last_frame.elapsed() > q) {
                        return Ok(Opening::Quiet);
                    }
                    continue;
                }
            };
            last_frame = Instant::now();
            outcome.frames += 1;
            for warning in video.warnings() {
                if !send(tx, self.index, Event::Warning(warning)) {
                    return Ok(Opening::Unheard);
                }
            }
            if reopened {
                reopened = false;
                if !send(tx, self.index, Event::Reopened) {
                    return Ok(Opening::Unheard);
                }
            }
            let progress =
                match (sample.buffer().and_then(|b| b.pts()), video.pipeline().query_duration::<gst::ClockTime>()) {
                    (Some(pts), Some(duration)) if video.is_file() => {
                        Some(pts.nseconds() as f64 / duration.nseconds().max(1) as f64)
                    }
                    _ => None,
                };
            let results = sample.buffer().map(Attached::from_buffer).unwrap_or_default();
            *last_track = results.iter().map(|a| a.record.track).fold(*last_track, u64::max);
            let age = video.age(&sample);
            if !send(tx, self.index, Event::Sample { sample, results, progress, age }) {
                return Ok(Opening::Unheard);
            }
        }
    }
}

/// How one opening of a source ended without an error.
enum Opening {
    Ended,
    /// A live source sent nothing for the reconnect interval.
    Quiet,
    /// The run stopped listening.
    Unheard,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_stream_thread_that_panics_reports_a_failure_not_an_end() {
        gst::init().unwrap();
        let stream = Stream {
            index: 3,
            input: Input::Video("never-opened.mp4".into()),
            format: gstreamer_video::VideoFormat::Rgb,
            reconnect: None,
            publish: None,
            replay: false,
            paced: false,
        };
        let make: Arc<MakeFilters> = Arc::new(|_| panic!("an element refused a property"));
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let thread = stream.spawn(make, tx, Arc::new(AtomicBool::new(false))).unwrap();
        thread.join().unwrap();
        match rx.recv().unwrap() {
            (3, Event::Finished(outcome)) => {
                let e = format!("{:#}", outcome.error.expect("a failure"));
                assert!(e.contains("thread failed") && e.contains("an element refused a property"), "{e}");
            }
            _ => panic!("the last event is Finished"),
        }
    }
}
