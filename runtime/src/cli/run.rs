//! `emoedge run`: the main job — a GStreamer pipeline with the `emotiondetect` element over a
//! video, a live per-track summary, `results.jsonl`, a timeline PNG per track and, on request,
//! an annotated video.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use emoedge_runtime::emotion::Precision;
use emoedge_runtime::emotiondetect::meta::EmotionRecord;
use emoedge_runtime::plot::{Series, curves};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use indicatif::{ProgressBar, ProgressStyle};

use super::OrtArgs;
use super::annotate::Annotator;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A video file or URI (file://, rtsp://, http://).
    pub input: String,
    /// Output folder for results.jsonl and timeline-<track>.png.
    #[arg(long, default_value = "runs/emoedge")]
    pub out: PathBuf,
    /// A model bundle folder (default: the bundled models/default/bundle).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// auto (fp16 on TensorRT/CUDA, fp32 on CPU), fp32, fp16 or int8.
    #[arg(long, default_value = "auto", value_parser = |s: &str| s.parse::<Precision>().map(|_| s.to_string()))]
    pub precision: String,
    /// Encode each track's face every N-th frame.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub interval: u32,
    /// Weight of a track's previous probabilities in the moving average (0 = none, < 1).
    #[arg(long, default_value_t = 0.5)]
    pub smoothing: f64,
    /// Where faces come from.
    #[arg(long, value_enum, default_value_t = FaceSourceArg::Builtin)]
    pub face_source: FaceSourceArg,
    /// Infer on a worker thread (for live sources; results land on later frames).
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// Also write this MP4 with boxes and labels drawn in.
    #[arg(long)]
    pub annotate: Option<PathBuf>,
    /// TensorRT engine cache folder.
    #[arg(long)]
    pub engine_cache_dir: Option<PathBuf>,
    #[command(flatten)]
    pub ort: OrtArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FaceSourceArg {
    Builtin,
    FullFrame,
}

fn uri(input: &str) -> anyhow::Result<String> {
    if input.contains("://") {
        return Ok(input.to_string());
    }
    let path = Path::new(input);
    anyhow::ensure!(path.is_file(), "video {input} does not exist; give a video file or a URI");
    let absolute = path.canonicalize()?;
    Ok(gst::glib::filename_to_uri(&absolute, None)?.to_string())
}

/// The first error on the bus, as one line with GStreamer's debug detail.
fn bus_error(bus: &gst::Bus) -> Option<String> {
    while let Some(message) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = message.view() {
            let debug = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
            return Some(format!("{}{debug}", e.error()));
        }
    }
    None
}

/// One track's results over time.
#[derive(Default)]
struct TrackLog {
    /// The model's labels, in probability order.
    names: Vec<String>,
    points: Vec<(f64, Vec<f32>)>,
    labels: Vec<(f64, String)>,
    last: Option<(String, f32)>,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!((0.0..1.0).contains(&args.smoothing), "--smoothing must be in [0, 1), got {}", args.smoothing);
    if let Some(lib) = &args.ort.ort_lib {
        emoedge_runtime::onnx::environment(Some(lib))?;
    }
    gst::init()?;
    emoedge_runtime::emotiondetect::register(None)?;
    // The first Ctrl-C (or SIGTERM) ends the stream cleanly so that everything so far is written;
    // a second one quits at once.
    let interrupts = Arc::new(AtomicU32::new(0));
    let counter = interrupts.clone();
    ctrlc::set_handler(move || {
        if counter.fetch_add(1, Ordering::SeqCst) >= 1 {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")?;
    let description = format!(
        "uridecodebin uri=\"{}\" ! videoconvert ! video/x-raw,format=BGRx ! emotiondetect name=detect ! appsink name=sink sync=false max-buffers=8",
        uri(&args.input)?
    );
    let pipeline =
        gst::parse::launch(&description)?.downcast::<gst::Pipeline>().map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let detect = pipeline.by_name("detect").context("emotiondetect missing")?;
    if let Some(model) = &args.model {
        detect.set_property("model", model.display().to_string());
    }
    detect.set_property("precision", &args.precision);
    detect.set_property("execution-provider", args.ort.execution_provider.to_string());
    detect.set_property("device-id", args.ort.device_id);
    detect.set_property("interval", args.interval);
    detect.set_property("smoothing", args.smoothing);
    detect.set_property_from_str(
        "face-source",
        match args.face_source {
            FaceSourceArg::Builtin => "builtin",
            FaceSourceArg::FullFrame => "full-frame",
        },
    );
    detect.set_property("async", args.asynchronous);
    if let Some(dir) = &args.engine_cache_dir {
        detect.set_property("engine-cache-dir", dir.display().to_string());
    }
    let sink = pipeline
        .by_name("sink")
        .context("appsink missing")?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| anyhow::anyhow!("not an appsink"))?;
    let bus = pipeline.bus().context("pipeline without a bus")?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}; check the path and permissions", args.out.display()))?;
    let results_path = args.out.join("results.jsonl");
    let partial = args.out.join(".results.jsonl.partial");
    let mut results =
        BufWriter::new(File::create(&partial).with_context(|| format!("cannot write in {}", args.out.display()))?);

    let outcome = (|| -> anyhow::Result<(Summary, BTreeMap<u64, TrackLog>)> {
        if pipeline.set_state(gst::State::Playing).is_err() {
            bail!("{}", bus_error(&bus).unwrap_or_else(|| "the pipeline did not start".into()));
        }
        let provider = detect.property::<Option<String>>("active-provider").unwrap_or_default();
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent:>3}% {msg}")
                .expect("valid template"),
        );
        let started = Instant::now();
        let mut tracks: BTreeMap<u64, TrackLog> = BTreeMap::new();
        let mut annotator: Option<Annotator> = None;
        let mut frames = 0u64;
        let is_file = !args.input.contains("://") || args.input.starts_with("file://");
        let mut last_progress = Instant::now();
        let mut stopping = false;
        loop {
            if let Some(error) = bus_error(&bus) {
                bail!("{error}");
            }
            if !stopping && interrupts.load(Ordering::SeqCst) > 0 {
                stopping = true;
                bar.println("interrupted: ending the stream and writing the results (Ctrl-C again to quit at once)");
                pipeline.send_event(gst::event::Eos::new());
            }
            let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
                if sink.is_eos() {
                    break;
                }
                // A damaged file can leave the demuxer waiting forever without an error.
                if is_file && last_progress.elapsed() > Duration::from_secs(30) {
                    bail!(
                        "decoding {} stalled: no frame, error or end of stream for 30 s; the file is damaged",
                        args.input
                    );
                }
                continue;
            };
            last_progress = Instant::now();
            let Some(buffer) = sample.buffer() else { continue };
            frames += 1;
            let pts = buffer.pts().map(|t| t.nseconds());
            let records = EmotionRecord::from_buffer(buffer);
            for record in records.iter().filter(|r| r.fresh) {
                serde_json::to_writer(&mut results, record)?;
                results.write_all(b"\n")?;
                let log = tracks.entry(record.track).or_default();
                if log.names.is_empty() {
                    log.names = record.labels.clone();
                }
                let seconds = record.pts_ns.unwrap_or(0) as f64 / 1e9;
                log.points.push((seconds, record.probabilities.clone()));
                log.labels.push((seconds, record.label.clone()));
                log.last = Some((record.label.clone(), record.confidence));
            }
            if let Some(path) = &args.annotate {
                if annotator.is_none() {
                    annotator = Some(Annotator::start(path, sample.caps().context("sample without caps")?)?);
                }
                if let Some(a) = annotator.as_mut() {
                    a.push(buffer, &records)?;
                }
            }
            if let (Some(pts), Some(duration)) = (pts, pipeline.query_duration::<gst::ClockTime>()) {
                bar.set_position((pts * 1000).checked_div(duration.nseconds().max(1)).unwrap_or(0).min(1000));
            }
            let live: Vec<String> = tracks
                .iter()
                .filter_map(|(id, log)| {
                    log.last.as_ref().map(|(label, p)| format!("track {id}: {label} {:.0}%", p * 100.0))
                })
                .collect();
            bar.set_message(if live.is_empty() { format!("{frames} frames, no face yet") } else { live.join(" | ") });
        }
        bar.finish_and_clear();
        let wall = started.elapsed();
        let stats = detect.property::<Option<gst::Structure>>("stats");
        if let Some(a) = annotator.take() {
            a.finish()?;
        }
        Ok((Summary { frames, wall, provider, stats }, tracks))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    let (summary, tracks) = match outcome {
        Ok(done) => done,
        Err(e) => {
            drop(results);
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    results.flush()?;
    drop(results);
    std::fs::rename(&partial, &results_path)?;

    for (id, log) in &tracks {
        let series: Vec<Series> = log
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| Series { name, points: log.points.iter().map(|(t, p)| (*t, p[i] as f64)).collect() })
            .collect();
        curves(
            &args.out.join(format!("timeline-{id}.png")),
            &format!("track {id}: emotion probabilities"),
            "seconds",
            &series,
        )?;
    }
    print_timeline(&tracks);
    summary.print(&args.out, tracks.len());
    Ok(())
}

struct Summary {
    frames: u64,
    wall: Duration,
    provider: String,
    stats: Option<gst::Structure>,
}

impl Summary {
    fn print(&self, out: &Path, tracks: usize) {
        let seconds = self.wall.as_secs_f64();
        let ns = |field: &str| self.stats.as_ref().and_then(|s| s.get::<u64>(field).ok()).unwrap_or(0) as f64 / 1e9;
        let (detector, frame, clip) = (ns("detector-ort-ns"), ns("frame-model-ort-ns"), ns("clip-model-ort-ns"));
        let share = |t: f64| 100.0 * t / seconds.max(1e-9);
        println!(
            "{} frames in {seconds:.2} s ({:.1} frames/s) on {}; {tracks} track(s) with results",
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
        println!("wrote {}/results.jsonl and a timeline-<track>.png per track", out.display());
    }
}

/// Each track's emotion as segments of the same (smoothed) label: the timeline in text.
fn print_timeline(tracks: &BTreeMap<u64, TrackLog>) {
    if tracks.is_empty() {
        println!("no face was found long enough for a result");
    }
    for (id, log) in tracks {
        let mut segments: Vec<(f64, f64, &str)> = Vec::new();
        for (t, label) in &log.labels {
            match segments.last_mut() {
                Some((_, end, current)) if *current == label.as_str() => *end = *t,
                _ => segments.push((*t, *t, label.as_str())),
            }
        }
        let text: Vec<String> =
            segments.iter().map(|(start, end, label)| format!("{start:.1}–{end:.1} s {label}")).collect();
        println!("track {id}: {}", text.join(", "));
    }
}
