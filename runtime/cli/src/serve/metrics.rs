//! `GET /metrics`: the Prometheus text format (prometheus-client). Each scrape reads the
//! streams, the model and the process as they are; only the latency histogram is kept between
//! scrapes.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::Service;
use super::streams::{StreamLabels, StreamView, labels};

/// End-to-end latency buckets (seconds): a live frame's entry into the pipeline to its results.
const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The latency histograms, one per stream, fed by the service's event loop.
pub fn latency_family() -> Family<StreamLabels, Histogram> {
    Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS))
}

/// The registry `GET /metrics` encodes.
pub fn registry(service: Arc<Service>, latency: Family<StreamLabels, Histogram>) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "emoedge_latency_seconds",
        "Time from a frame entering the pipeline (a live or paced source's capture) to its results leaving emotiondetect",
        latency,
    );
    registry.register_collector(Box::new(Scrape(service)));
    registry
}

/// Encodes the registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

#[derive(Debug)]
struct Scrape(Arc<Service>);

/// A per-stream series: name, help, and how to read it.
type PerStream = (&'static str, &'static str, fn(&StreamView) -> f64);

const STREAM_COUNTERS: [PerStream; 7] = [
    ("emoedge_frames", "Frames that came through the stream's pipeline", |s| s.frames as f64),
    ("emoedge_frames_dropped", "Frames passed on without analysis because the model was busy (async)", |s| {
        s.detect.dropped as f64
    }),
    ("emoedge_faces", "Faces on the frames (one per track per frame)", |s| s.faces as f64),
    ("emoedge_results", "Fresh emotion results", |s| s.results as f64),
    ("emoedge_reconnects", "Times the source was lost and opened again", |s| s.reconnects as f64),
    ("emoedge_detections", "Frames the face detector ran on", |s| s.detect.detections as f64),
    ("emoedge_detector_seconds", "Seconds inside ONNX Runtime in the face detector", |s| s.detect.detector_seconds),
];

const STREAM_GAUGES: [PerStream; 1] =
    [("emoedge_up", "1 while the stream delivers frames, 0 when lost or ended", |s| f64::from(u8::from(s.up)))];

const MQTT_COUNTERS: [PerStream; 4] = [
    ("emoedge_mqtt_queued", "Results handed to the MQTT publisher", |s| mqtt(s, |m| m.queued)),
    ("emoedge_mqtt_delivered", "Results the MQTT broker acknowledged", |s| mqtt(s, |m| m.delivered)),
    ("emoedge_mqtt_dropped", "Results dropped because the spool was full", |s| mqtt(s, |m| m.dropped)),
    ("emoedge_mqtt_rejected", "Results that can never be sent (too large, or damaged spool lines)", |s| {
        mqtt(s, |m| m.rejected)
    }),
];

const MQTT_GAUGES: [PerStream; 1] =
    [("emoedge_mqtt_spooled", "Results waiting in the spool for the broker's acknowledgement", |s| {
        mqtt(s, |m| m.pending)
    })];

fn mqtt(stream: &StreamView, read: fn(&emoedge_publish::PublishStats) -> u64) -> f64 {
    stream.mqtt.as_ref().map_or(0.0, |m| read(m) as f64)
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let streams = self.0.stream_views();
        let publishing = streams.iter().any(|s| s.mqtt.is_some());
        let mqtt: &[PerStream] = if publishing { &MQTT_COUNTERS } else { &[] };
        for (name, help, read) in STREAM_COUNTERS.iter().chain(mqtt) {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for stream in &streams {
                ConstCounter::new(read(stream)).encode(family.encode_family(&labels(&stream.name))?)?;
            }
        }
        let gauges: &[PerStream] = if publishing { &MQTT_GAUGES } else { &[] };
        for (name, help, read) in STREAM_GAUGES.iter().chain(gauges) {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for stream in &streams {
                ConstGauge::new(read(stream)).encode(family.encode_family(&labels(&stream.name))?)?;
            }
        }
        let running = streams.iter().filter(|s| s.state == "running").count();
        ConstGauge::new(running as i64).encode(encoder.encode_descriptor(
            "emoedge_streams",
            "Streams running",
            None,
            MetricType::Gauge,
        )?)?;
        self.encode_model(&mut encoder)?;
        if let Some(bytes) = resident_bytes() {
            let help = "Resident memory of the process in bytes";
            ConstGauge::new(bytes as i64).encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}

impl Scrape {
    /// The model in use: its version and provider (an info series), calls, items and seconds.
    fn encode_model(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let model = self.0.model.view();
        let info = [("model", model.version.clone()), ("provider", model.provider.clone())];
        ConstGauge::new(1i64).encode(
            encoder
                .encode_descriptor(
                    "emoedge_model_info",
                    "The emotion model in use and its provider",
                    None,
                    MetricType::Gauge,
                )?
                .encode_family(&info)?,
        )?;
        let series: [(&str, &str, f64, f64); 3] = [
            (
                "emoedge_model_calls",
                "Calls of the model's part (a call carries a batch)",
                model.frame_calls as f64,
                model.clip_calls as f64,
            ),
            (
                "emoedge_model_batch_items",
                "Faces (frame part) or clips (clip part) the calls carried",
                model.faces as f64,
                model.clips as f64,
            ),
            ("emoedge_model_seconds", "Seconds inside ONNX Runtime", model.frame_seconds, model.clip_seconds),
        ];
        for (name, help, frame, clip) in series {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (part, value) in [("frame", frame), ("clip", clip)] {
                let labels = [("model", model.version.clone()), ("part", part.to_string())];
                ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The process's resident set (`VmRSS` of /proc/self/status).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
