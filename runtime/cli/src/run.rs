//! `emoedge run`: the main job — the video through the `emotiondetect` element, a live
//! per-track summary, `results.jsonl`, a timeline PNG per track and, on request, an annotated
//! video.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use emoedge_inference::engine::EngineOptions;
use emoedge_inference::model::Precision;
use emoedge_models::{AtomicFile, FolderLock};
use emoedge_vision::analyzer::{AnalyzerSettings, FaceSource, ranges};

use gstemoedge::meta::EmotionRecord;
use gstreamer as gst;
use indicatif::{ProgressBar, ProgressStyle};

use crate::annotate::Annotator;
use crate::args::{MqttArgs, OrtArgs, StreamArgs, float_in, int_in, uint_in};
use crate::interrupt::Interrupts;
use crate::stream::{Event, Filters, Lease, MakeFilters, Outcome, Stream};
use crate::timeline::Timelines;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: StreamArgs,
    /// Output folder for results.jsonl and timeline-<track>.png.
    #[arg(long, default_value = "runs/emoedge")]
    pub out: PathBuf,
    /// A model bundle folder (default: the bundled models/default/bundle).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// auto: fp16 on TensorRT/CUDA, fp32 on the CPU.
    #[arg(long, value_enum, default_value_t = AnalyzerSettings::default().precision)]
    pub precision: Precision,
    /// Encode each track's face every N-th frame (`--interval` is an older name for it; the face
    /// detector's own interval is --detect-interval).
    #[arg(long = "encode-interval", alias = "interval", value_name = "N",
          default_value_t = EngineOptions::default().interval, value_parser = int_in(ranges::INTERVAL))]
    pub interval: u32,
    /// Run the face detector every N-th frame and follow the faces with O-Net in between
    /// (1 = detect on every frame).
    #[arg(long, default_value_t = AnalyzerSettings::default().detect_interval, value_parser = int_in(ranges::INTERVAL))]
    pub detect_interval: u32,
    /// Weight of a track's previous probabilities in the moving average (0 = none, < 1).
    #[arg(long, default_value_t = EngineOptions::default().smoothing, value_parser = float_in(ranges::SMOOTHING))]
    pub smoothing: f32,
    /// Where faces come from.
    #[arg(long, value_enum, default_value_t = AnalyzerSettings::default().face_source)]
    pub face_source: FaceSource,
    /// Infer on a worker thread (for live sources; results land on later frames).
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// Open a live source (rtsp://, --source) again when it fails, ends or sends nothing for
    /// this many seconds; attempts start 0.25 s apart and back off up to this many seconds
    /// (0: a lost live source ends its stream).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub reconnect_interval: u32,
    /// Also write this MP4 with boxes and labels drawn in (one input only).
    #[arg(long)]
    pub annotate: Option<PathBuf>,
    #[command(flatten)]
    pub ort: OrtArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
}

/// Where results also go: an MQTT broker (the `emotionpublish` element).
#[derive(Args, Debug, Clone)]
pub struct PublishArgs {
    /// Also send every result to this MQTT broker, mqtt://[USER@]HOST[:PORT]/PREFIX (mqtts:// for
    /// TLS), topic PREFIX/DEVICE/STREAM, QoS 1. While the broker is away results wait in
    /// OUT/spool and go when it is back (the password comes from $EMOEDGE_MQTT_PASSWORD).
    #[arg(long, value_name = "URL")]
    pub publish: Option<String>,
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// This device's topic level (default: the host name).
    #[arg(long, requires = "publish")]
    pub device_name: Option<String>,
    /// Most results kept for an absent broker; past it the oldest are dropped and counted.
    #[arg(long, default_value_t = emoedge_publish::defaults::SPOOL_LIMIT, requires = "publish",
          value_parser = uint_in(emoedge_publish::ranges::SPOOL_LIMIT))]
    pub spool_limit: u64,
    /// Seconds to wait at the end for the broker to acknowledge what is queued (the rest stays in
    /// OUT/spool for the next run).
    #[arg(long, default_value_t = emoedge_publish::defaults::FLUSH_TIMEOUT, requires = "publish",
          value_parser = int_in(emoedge_publish::ranges::FLUSH_TIMEOUT))]
    pub publish_timeout: u32,
}

impl PublishArgs {
    /// The publisher of stream `stream`, spooling under `out`, if asked for: what its
    /// `emotionpublish` elements share for the stream's life (checked here, before any video).
    fn lease(&self, out: &Path, stream: &str) -> anyhow::Result<Option<Lease>> {
        let Some(url) = &self.publish else { return Ok(None) };
        let device = self.device_name.clone().unwrap_or_else(emoedge_publish::default_device);
        emoedge_publish::broker::topic_level("--device-name", &device)?;
        let config = emoedge_publish::PublisherConfig {
            broker: self.mqtt.broker(url)?,
            device,
            stream: stream.to_string(),
            spool_dir: out.join("spool").join(stream),
            spool_limit: self.spool_limit,
            max_backoff: emoedge_publish::defaults::MAX_BACKOFF,
        };
        Ok(Some(Lease { config, flush_timeout: Duration::from_secs(self.publish_timeout.into()) }))
    }

    /// The `emotionpublish` element for stream `stream`, spooling under `out`, if asked for.
    fn element(&self, out: &Path, stream: &str) -> anyhow::Result<Option<gst::Element>> {
        let Some(url) = &self.publish else { return Ok(None) };
        let mut publish = gst::ElementFactory::make("emotionpublish")
            .name(format!("publish-{stream}"))
            .property("broker", url)
            .property("stream-id", stream)
            .property("spool-dir", out.join("spool").join(stream).display().to_string())
            .property("spool-limit", self.spool_limit)
            .property("flush-timeout", self.publish_timeout);
        if let Some(user) = &self.mqtt.mqtt_user {
            publish = publish.property("username", user);
        }
        if let Some(password) = MqttArgs::password() {
            publish = publish.property("password", password);
        }
        if let Some(ca) = &self.mqtt.mqtt_ca {
            publish = publish.property("ca-file", ca.display().to_string());
        }
        if let Some(device) = &self.device_name {
            publish = publish.property("device-id", device);
        }
        Ok(Some(publish.build()?))
    }
}

/// The element, set from the options (typed properties: no text is parsed).
fn emotiondetect(args: &RunArgs, stream: usize, first_track: u64) -> anyhow::Result<gst::Element> {
    let session = args.ort.session_options();
    let mut detect = gst::ElementFactory::make("emotiondetect")
        .name(format!("detect-{stream}"))
        .property("track-id-base", first_track)
        .property("precision", args.precision)
        .property("execution-provider", session.provider)
        .property("device-id", session.device_id)
        .property("interval", args.interval)
        .property("detect-interval", args.detect_interval)
        .property("smoothing", f64::from(args.smoothing))
        .property("face-source", args.face_source)
        .property("async", args.asynchronous);
    if let Some(model) = &args.model {
        detect = detect.property("model", model.display().to_string());
    }
    if let Some(dir) = &session.tensorrt.engine_cache_dir {
        detect = detect.property("engine-cache-dir", dir.display().to_string());
    }
    Ok(detect.build()?)
}

/// A message above the progress bar — or on stderr when there is no bar to show (output not a
/// terminal), where indicatif would swallow it.
fn note(bar: &ProgressBar, message: impl AsRef<str>) {
    if bar.is_hidden() {
        eprintln!("{}", message.as_ref());
    } else {
        bar.println(message);
    }
}

/// One line of `results.jsonl`: a result and the stream it belongs to.
#[derive(serde::Serialize)]
struct ResultLine<'a> {
    stream: usize,
    #[serde(flatten)]
    record: &'a EmotionRecord,
}

pub fn execute(args: RunArgs) -> anyhow::Result<()> {
    args.ort.load_library()?;
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
    let results_path = args.out.join("results.jsonl");
    let mut results =
        AtomicFile::create(&results_path).with_context(|| format!("cannot write in {}", args.out.display()))?;

    let args = Arc::new(args);
    let make = {
        let args = Arc::clone(&args);
        Arc::new(move |index: usize, first_track: u64| -> anyhow::Result<Filters> {
            let detect = emotiondetect(&args, index, first_track)?;
            let publish = args.publish.element(&args.out, &index.to_string())?;
            Ok(Filters { detect, publish })
        })
    };
    // The annotator draws on BGRx; otherwise RGB, which the element reads without a shuffle.
    let format =
        if args.annotate.is_some() { gstreamer_video::VideoFormat::Bgrx } else { gstreamer_video::VideoFormat::Rgb };
    let reconnect = (args.reconnect_interval > 0).then(|| Duration::from_secs(args.reconnect_interval.into()));
    let names: Vec<String> = inputs.iter().map(|i| i.name().to_string()).collect();
    let (tx, rx) = std::sync::mpsc::sync_channel(4 * inputs.len());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for ((index, input), publish) in inputs.into_iter().enumerate().zip(leases) {
        let make = Arc::clone(&make);
        let stream = Stream { index, input, format, reconnect, publish };
        let filters: Arc<MakeFilters> = Arc::new(move |first| make(index, first));
        threads.push(stream.spawn(filters, tx.clone(), Arc::clone(&stop))?);
    }
    drop(tx);
    let streams = names.len();
    let bar = ProgressBar::new(1000).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut timelines = Timelines::new(&args.out, args.interval, streams);
    let mut annotator: Option<Annotator> = None;
    let mut annotate_error: Option<anyhow::Error> = None;
    let mut frames = vec![0u64; streams];
    let mut progress = vec![0.0f64; streams];
    let mut outcomes: Vec<Option<Outcome>> = (0..streams).map(|_| None).collect();
    // When the run began to stop: streams get this long to end before it writes without them
    // (a source blocked in the kernel never would).
    let mut stopping: Option<Instant> = None;
    let flush = if args.publish.publish.is_some() { u64::from(args.publish.publish_timeout) } else { 0 };
    let grace = Duration::from_secs(flush + 10);
    let mut writer = BufWriter::new(results.file());
    let mut unwritable = false;
    let results_error = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot write {}: {e}; free space there or choose another --out (an earlier results.jsonl there is left as it was)",
            results_path.display()
        )
    };
    let label = |i: usize| if streams > 1 { format!("stream {i} ({})", names[i]) } else { names[i].clone() };
    // The results' outcome; whatever it is, the results so far are written below.
    let written = (|| -> anyhow::Result<()> {
        while outcomes.iter().any(Option::is_none) {
            if stopping.is_none() && interrupts.requested() {
                stopping = Some(Instant::now());
                note(&bar, "interrupted: ending the streams and writing the results (Ctrl-C again to quit at once)");
                stop.store(true, Ordering::Relaxed);
            }
            if stopping.is_some_and(|since| since.elapsed() > grace) {
                break;
            }
            let (i, event) = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(received) => received,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let (sample, fraction) = match event {
                Event::Sample { sample, progress } => (sample, progress),
                Event::Lost { reason, retry_in } => {
                    note(
                        &bar,
                        format!(
                            "{} was lost ({reason}); its tracks are closed, opening it again (backing off up to every {} s)",
                            label(i),
                            retry_in.as_secs()
                        ),
                    );
                    timelines.end_stream(i);
                    continue;
                }
                Event::Reopened => {
                    note(&bar, format!("{} is back", label(i)));
                    continue;
                }
                Event::Warning(text) => {
                    note(&bar, format!("{}: warning: {text}", label(i)));
                    continue;
                }
                Event::Finished(outcome) => {
                    if let (Some(e), true) = (&outcome.error, streams > 1) {
                        note(&bar, format!("{} failed: {e:#}; the other streams go on", label(i)));
                    }
                    timelines.end_stream(i);
                    outcomes[i] = Some(outcome);
                    continue;
                }
            };
            let Some(buffer) = sample.buffer() else { continue };
            frames[i] += 1;
            let records = EmotionRecord::from_buffer(buffer);
            for record in records.iter().filter(|r| r.fresh) {
                serde_json::to_writer(&mut writer, &ResultLine { stream: i, record })
                    .map_err(std::io::Error::from)
                    .and_then(|()| writer.write_all(b"\n"))
                    .map_err(|e| {
                        unwritable = true;
                        results_error(e)
                    })?;
                timelines.record(i, frames[i], record);
            }
            timelines.end_idle(i, frames[i]);
            if let (Some(path), None) = (&args.annotate, &annotate_error) {
                let mut annotate = || -> anyhow::Result<()> {
                    if annotator.is_none() {
                        annotator = Some(Annotator::start(path, sample.caps().context("sample without caps")?)?);
                    }
                    match annotator.as_mut() {
                        Some(a) => a.push(buffer, &records),
                        None => Ok(()),
                    }
                };
                // The annotated video is an extra: its failure stops it, not the analysis.
                if let Err(e) = annotate() {
                    note(&bar, format!("the annotated video stopped: {e:#}; the analysis goes on"));
                    annotator = None;
                    annotate_error = Some(e);
                }
            }
            if let Some(fraction) = fraction {
                progress[i] = fraction.clamp(0.0, 1.0);
                bar.set_position((1000.0 * progress.iter().sum::<f64>() / streams as f64) as u64);
            }
            let live = timelines.live();
            let total: u64 = frames.iter().sum();
            bar.set_message(if live.is_empty() { format!("{total} frames, no face yet") } else { live.join(" | ") });
        }
        Ok(())
    })();
    // A run that stops listening ends its streams (they see the closed channel, or the flag).
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    // A stream that never reported its end is a failure, never a success; a thread still
    // blocked is left behind (the process ends it) so that the results are written.
    for (thread, outcome) in threads.into_iter().zip(&outcomes) {
        if outcome.is_some() || thread.is_finished() {
            let _ = thread.join();
        }
    }
    bar.finish_and_clear();
    let unreported = |i: usize| Outcome {
        error: Some(match stopping {
            Some(_) => anyhow::anyhow!(
                "{} did not stop within {} s of the interrupt (its source does not answer); its results so far are kept",
                names[i],
                grace.as_secs()
            ),
            None => anyhow::anyhow!("{} ended without reporting how (an internal error)", names[i]),
        }),
        ..Outcome::default()
    };
    let outcomes: Vec<Outcome> =
        outcomes.into_iter().enumerate().map(|(i, o)| o.unwrap_or_else(|| unreported(i))).collect();
    let total: u64 = frames.iter().sum();
    let flushed = writer.flush();
    drop(writer);
    // Results that cannot all be written are not half-written: the temp file goes, and
    // whatever results.jsonl held before stays as it was.
    if unwritable {
        return written;
    }
    flushed.map_err(results_error)?;
    written?;
    // The streams' failures (and a broker that refused us for good), in stream order.
    let mut failures: Vec<anyhow::Error> = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Some(e) = &outcome.error {
            failures.push(if streams > 1 {
                anyhow::anyhow!("{} failed: {e:#}", label(i))
            } else {
                anyhow::anyhow!("{e:#}")
            });
        }
        if let Some(reason) = outcome.publish.as_ref().and_then(|p| p.error.as_ref()) {
            failures.push(anyhow::anyhow!("publishing stopped: {reason}"));
        }
    }
    if total == 0 && !failures.is_empty() {
        return Err(failures.remove(0));
    }
    results.commit().with_context(|| format!("cannot write {}", results_path.display()))?;
    // From here on, failures are reported but never take the results away.
    let kept = |e: anyhow::Error| {
        anyhow::anyhow!("{e:#}; the results of the {total} frames analysed are kept in {}", results_path.display())
    };
    let annotated = match annotate_error {
        Some(e) => Err(e),
        None => annotator.take().map_or(Ok(()), Annotator::finish),
    };
    let tracks = timelines.finish().map_err(kept)?;
    let summary = Summary {
        wall: started.elapsed(),
        names: &names,
        outcomes: &outcomes,
        published: args.publish.publish.as_deref(),
    };
    summary.print(&args.out, tracks);
    if let Some(first) = failures.into_iter().next() {
        return Err(kept(first));
    }
    annotated.map_err(kept)
}

struct Summary<'a> {
    wall: Duration,
    names: &'a [String],
    outcomes: &'a [Outcome],
    /// The broker, as given, when publishing.
    published: Option<&'a str>,
}

impl Summary<'_> {
    /// Sum over the streams' element statistics of `field` (u64).
    fn sum<'s>(stats: impl Iterator<Item = &'s gst::Structure>, field: &str) -> u64 {
        stats.map(|s| s.get::<u64>(field).unwrap_or(0)).sum()
    }

    fn print(&self, out: &Path, tracks: usize) {
        let seconds = self.wall.as_secs_f64();
        let frames: u64 = self.outcomes.iter().map(|o| o.frames).sum();
        let detect = || self.outcomes.iter().flat_map(|o| &o.detect_stats);
        let ns = |v: u64| v as f64 / 1e9;
        // The detectors are the streams' own; the emotion model is shared, so each stream's
        // figure is the model's total so far: the largest is the run's.
        let detector = ns(Self::sum(detect(), "detector-ort-ns"));
        let most_count = |field: &str| detect().map(|s| s.get::<u64>(field).unwrap_or(0)).max().unwrap_or(0);
        let most = |field: &str| ns(most_count(field));
        let (frame, clip) = (most("frame-model-ort-ns"), most("clip-model-ort-ns"));
        let share = |t: f64| 100.0 * t / seconds.max(1e-9);
        let detections = Self::sum(detect(), "detections");
        let provider =
            self.outcomes.iter().map(|o| o.provider.as_str()).find(|p| !p.is_empty()).unwrap_or("no provider");
        let streams = self.outcomes.len();
        let across = if streams > 1 { format!(" across {streams} streams") } else { String::new() };
        println!(
            "{frames} frames{across} in {seconds:.2} s ({:.1} frames/s) on {provider}; {tracks} track(s) with results; face detector ran on {detections} frames",
            frames as f64 / seconds.max(1e-9),
        );
        if streams > 1 {
            // The streams run side by side: their times add up to more than the wall time.
            println!(
                "time in ONNX Runtime, summed over the streams' threads: face detectors {detector:.2} s, emotion frame model {frame:.2} s, clip model {clip:.3} s"
            );
        } else {
            println!(
                "time in ONNX Runtime: face detector {detector:.2} s ({:.0}%), emotion frame model {frame:.2} s ({:.0}%), clip model {clip:.3} s ({:.1}%); the rest {:.2} s ({:.0}%: decoding, colour conversion, detector pyramid and NMS, crops, tracking, annotation)",
                share(detector),
                share(frame),
                share(clip),
                (seconds - detector - frame - clip).max(0.0),
                100.0 - share(detector) - share(frame) - share(clip)
            );
        }
        if streams > 1 {
            let calls = most_count("frame-model-calls");
            println!(
                "one emotion model for the {streams} streams: {} frame-part calls for {} faces (mean batch {:.2}), {} clip-part calls",
                calls,
                most_count("frame-model-faces"),
                most_count("frame-model-faces") as f64 / calls.max(1) as f64,
                most_count("clip-model-calls")
            );
        }
        if let Some(placement) = detect().find_map(|s| s.get::<String>("placement").ok()) {
            println!("where the nodes ran (first call of each model): {placement}");
        }
        if streams > 1 || self.outcomes.iter().any(|o| o.losses > 0) {
            for (i, (name, o)) in self.names.iter().zip(self.outcomes).enumerate() {
                let state = match (&o.error, o.losses) {
                    (Some(_), _) => "failed".to_string(),
                    (None, 0) => "ended".to_string(),
                    (None, n) => format!("ended, lost {n} time(s) and reopened"),
                };
                println!(
                    "stream {i} ({name}): {} frames ({:.1}/s), {state}",
                    o.frames,
                    o.frames as f64 / seconds.max(1e-9)
                );
            }
        }
        println!("wrote {}/results.jsonl and a timeline PNG per track", out.display());
        if let Some(url) = self.published {
            // One publisher per stream for its whole life (across reopenings).
            let publish = || self.outcomes.iter().filter_map(|o| o.publish.as_ref());
            let sum = |field: fn(&emoedge_publish::PublishStats) -> u64| publish().map(field).sum::<u64>();
            let broker =
                emoedge_publish::Broker::parse(url).map_or_else(|_| "the broker".to_string(), |b| b.to_string());
            let rejected = sum(|p| p.rejected);
            println!(
                "MQTT {broker}: {} results queued, {} delivered, {} waiting in {}/spool (sent by the next run on this folder), {} dropped (spool full){}",
                sum(|p| p.queued),
                sum(|p| p.delivered),
                sum(|p| p.pending),
                out.display(),
                sum(|p| p.dropped),
                if rejected > 0 { format!(", {rejected} rejected (can never be sent)") } else { String::new() }
            );
        }
    }
}
