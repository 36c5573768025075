//! `emoedge run`: the main job — the video through the `emotiondetect` element, a live
//! per-track summary, `results.jsonl`, a timeline PNG per track and, on request, an annotated
//! video.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use emoedge_inference::engine::EngineOptions;
use emoedge_inference::model::Precision;
use emoedge_models::{AtomicFile, FolderLock};
use emoedge_vision::analyzer::{AnalyzerSettings, FaceSource, ranges};
use emoedge_vision::video::{Pulled, SourceOptions, Stall};
use gstemoedge::meta::EmotionRecord;
use gstreamer as gst;
use gstreamer::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::annotate::Annotator;
use crate::args::{InputArgs, MqttArgs, OrtArgs, float_in, int_in};
use crate::interrupt::Interrupts;
use crate::timeline::Timelines;

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output folder for results.jsonl and timeline-<track>.png.
    #[arg(long, default_value = "runs/emoedge")]
    pub out: PathBuf,
    /// A model bundle folder (default: the bundled models/default/bundle).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// auto: fp16 on TensorRT/CUDA, fp32 on the CPU.
    #[arg(long, value_enum, default_value_t = AnalyzerSettings::default().precision)]
    pub precision: Precision,
    /// Encode each track's face every N-th frame.
    #[arg(long, default_value_t = EngineOptions::default().interval, value_parser = int_in(ranges::INTERVAL))]
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
    /// Also write this MP4 with boxes and labels drawn in.
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
    #[arg(long, default_value_t = emoedge_publish::defaults::SPOOL_LIMIT, requires = "publish")]
    pub spool_limit: u64,
    /// Seconds to wait at the end for the broker to acknowledge what is queued (the rest stays in
    /// OUT/spool for the next run).
    #[arg(long, default_value_t = 10, requires = "publish")]
    pub publish_timeout: u32,
}

impl PublishArgs {
    /// The `emotionpublish` element for stream `stream`, spooling under `out`, if asked for.
    fn element(&self, out: &Path, stream: &str) -> anyhow::Result<Option<gst::Element>> {
        let Some(url) = &self.publish else { return Ok(None) };
        // The URL and CA file are checked here, before any video is opened.
        self.mqtt.broker(url)?;
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
fn emotiondetect(args: &RunArgs) -> anyhow::Result<gst::Element> {
    let session = args.ort.session_options();
    let mut detect = gst::ElementFactory::make("emotiondetect")
        .name("detect")
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

pub fn execute(args: RunArgs) -> anyhow::Result<()> {
    args.ort.load_library()?;
    emoedge_vision::video::init()?;
    gstemoedge::plugin_register_static()?;
    let interrupts = Interrupts::install()?;
    // Held to the end of the run: a second run on this folder is refused, not interleaved.
    let _lock = FolderLock::acquire(&args.out)
        .with_context(|| format!("cannot use {} as the output folder", args.out.display()))?;
    let results_path = args.out.join("results.jsonl");
    let mut results =
        AtomicFile::create(&results_path).with_context(|| format!("cannot write in {}", args.out.display()))?;

    let detect = emotiondetect(&args)?;
    // The annotator draws on BGRx; otherwise RGB, which the element reads without a shuffle.
    let format =
        if args.annotate.is_some() { gstreamer_video::VideoFormat::Bgrx } else { gstreamer_video::VideoFormat::Rgb };
    let publish = args.publish.element(&args.out, "0")?;
    let filters = std::iter::once(detect.clone()).chain(publish.clone()).collect();
    let options = SourceOptions { format, filters, ..Default::default() };
    let mut video = args.input.open(options)?;
    let provider = detect.property::<Option<String>>("active-provider").unwrap_or_default();
    if provider == "tensorrt" {
        video.set_stall(Stall::ENGINE_BUILD);
    }
    let bar = ProgressBar::new(1000).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut timelines = Timelines::new(&args.out, args.interval);
    let mut annotator: Option<Annotator> = None;
    let mut annotate_error: Option<anyhow::Error> = None;
    let mut frames = 0u64;
    let mut stopping = false;
    let mut writer = BufWriter::new(results.file());
    let mut unwritable = false;
    let results_error = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot write {}: {e}; free space there or choose another --out (an earlier results.jsonl there is left as it was)",
            results_path.display()
        )
    };
    // The stream's outcome; whatever it is, the results so far are written below.
    let streamed = (|| -> anyhow::Result<()> {
        loop {
            if !stopping && interrupts.requested() {
                stopping = true;
                bar.println("interrupted: ending the stream and writing the results (Ctrl-C again to quit at once)");
                video.stop();
            }
            let sample = match video.poll()? {
                Pulled::Sample(sample) => sample,
                Pulled::End => break,
                Pulled::Idle => continue,
            };
            let Some(buffer) = sample.buffer() else { continue };
            frames += 1;
            let records = EmotionRecord::from_buffer(buffer);
            for record in records.iter().filter(|r| r.fresh) {
                serde_json::to_writer(&mut writer, record)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writer.write_all(b"\n"))
                    .map_err(|e| {
                        unwritable = true;
                        results_error(e)
                    })?;
                timelines.record(frames, record);
            }
            timelines.end_idle(frames);
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
                    bar.println(format!("the annotated video stopped: {e:#}; the analysis goes on"));
                    annotator = None;
                    annotate_error = Some(e);
                }
            }
            if let (Some(pts), Some(duration)) = (buffer.pts(), video.pipeline().query_duration::<gst::ClockTime>()) {
                bar.set_position(
                    (pts.nseconds() * 1000).checked_div(duration.nseconds().max(1)).unwrap_or(0).min(1000),
                );
            }
            let live = timelines.live();
            bar.set_message(if live.is_empty() { format!("{frames} frames, no face yet") } else { live.join(" | ") });
        }
        Ok(())
    })();
    bar.finish_and_clear();
    let mut summary =
        Summary { frames, wall: started.elapsed(), provider, stats: detect.property("stats"), published: None };
    // Stopping the pipeline gives the publisher its flush timeout; its counters are final after.
    drop(video);
    summary.published = publish.map(|p| (args.publish.publish.clone().unwrap_or_default(), p.property("stats")));
    // A broker that refused us for good fails the run (after the results are written below).
    let refused = summary.published.as_ref().and_then(|(_, stats)| stats.get::<String>("error").ok());
    let streamed = match (streamed, refused) {
        (Ok(()), Some(reason)) => Err(anyhow::anyhow!("publishing stopped: {reason}")),
        (streamed, _) => streamed,
    };
    let flushed = writer.flush();
    drop(writer);
    // Results that cannot all be written are not half-written: the temp file goes, and
    // whatever results.jsonl held before stays as it was.
    if unwritable {
        return streamed;
    }
    flushed.map_err(results_error)?;
    if streamed.is_err() && frames == 0 {
        return streamed;
    }
    results.commit().with_context(|| format!("cannot write {}", results_path.display()))?;
    // From here on, failures are reported but never take the results away.
    let kept = |e: anyhow::Error| {
        anyhow::anyhow!("{e:#}; the results of the {frames} frames analysed are kept in {}", results_path.display())
    };
    let annotated = match annotate_error {
        Some(e) => Err(e),
        None => annotator.take().map_or(Ok(()), Annotator::finish),
    };

    let tracks = timelines.finish().map_err(kept)?;
    summary.print(&args.out, tracks);
    streamed.map_err(kept)?;
    annotated.map_err(kept)
}

struct Summary {
    frames: u64,
    wall: Duration,
    provider: String,
    stats: Option<gst::Structure>,
    /// The broker (as given) and the publisher's counters.
    published: Option<(String, gst::Structure)>,
}

impl Summary {
    fn print(&self, out: &Path, tracks: usize) {
        let seconds = self.wall.as_secs_f64();
        let ns = |field: &str| self.stats.as_ref().and_then(|s| s.get::<u64>(field).ok()).unwrap_or(0) as f64 / 1e9;
        let (detector, frame, clip) = (ns("detector-ort-ns"), ns("frame-model-ort-ns"), ns("clip-model-ort-ns"));
        let share = |t: f64| 100.0 * t / seconds.max(1e-9);
        let detections = self.stats.as_ref().and_then(|s| s.get::<u64>("detections").ok()).unwrap_or(0);
        println!(
            "{} frames in {seconds:.2} s ({:.1} frames/s) on {}; {tracks} track(s) with results; face detector ran on {detections} frames",
            self.frames,
            self.frames as f64 / seconds.max(1e-9),
            self.provider
        );
        println!(
            "time in ONNX Runtime: face detector {detector:.2} s ({:.0}%), emotion frame model {frame:.2} s ({:.0}%), clip model {clip:.3} s ({:.1}%); the rest {:.2} s ({:.0}%: decoding, colour conversion, detector pyramid and NMS, crops, tracking, annotation)",
            share(detector),
            share(frame),
            share(clip),
            (seconds - detector - frame - clip).max(0.0),
            100.0 - share(detector) - share(frame) - share(clip)
        );
        if let Some(placement) = self.stats.as_ref().and_then(|s| s.get::<String>("placement").ok()) {
            println!("where the nodes ran (first call of each model): {placement}");
        }
        println!("wrote {}/results.jsonl and a timeline-<track>.png per track", out.display());
        if let Some((url, stats)) = &self.published {
            let n = |field: &str| stats.get::<u64>(field).unwrap_or(0);
            let broker =
                emoedge_publish::Broker::parse(url).map_or_else(|_| "the broker".to_string(), |b| b.to_string());
            println!(
                "MQTT {broker}: {} results queued, {} delivered, {} waiting in {}/spool (sent by the next run on this folder), {} dropped (spool full)",
                n("queued"),
                n("delivered"),
                n("pending"),
                out.display(),
                n("dropped")
            );
        }
    }
}
