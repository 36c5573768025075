//! The arguments of `emoedge run`, resolved here: its publisher is checked before any video.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use emoedge_inference::engine::{EngineOptions, Window};
use emoedge_inference::model::Precision;
use emoedge_vision::analyzer::{AnalyzerSettings, FaceSource, ranges};

use super::stream::Lease;
use crate::args::{DetectorArgs, ModelArgs, MqttArgs, OrtArgs, ReidArgs, StreamArgs, float_in, int_in, uint_in};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: StreamArgs,
    /// Output folder for results.jsonl and timeline-<track>.png.
    #[arg(long, default_value = "runs/emoedge")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub detector: DetectorArgs,
    #[command(flatten)]
    pub reid: ReidArgs,
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
    /// How a track's window of T frames becomes one result: each frame classified alone and
    /// their log-probabilities averaged, or the clip head over the T encodings.
    #[arg(long, value_enum, default_value_t = EngineOptions::default().window)]
    pub window: Window,
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
    /// Blur every face in the --annotate video (boxes and labels stay).
    #[arg(long, requires = "annotate")]
    pub blur_faces: bool,
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

impl RunArgs {
    /// Finds the model and, for the built-in face source, the detector where they are not
    /// given (the errors name --model and --detector-dir), so that the elements get paths.
    pub fn resolve_files(&mut self) -> anyhow::Result<()> {
        self.model.model = Some(self.model.bundle()?);
        if self.face_source == FaceSource::Builtin {
            self.detector.detector_dir = Some(self.detector.dir()?);
        }
        self.reid.resolve()
    }

    /// How long a lost live source waits before it is opened again (none: it ends its stream).
    pub fn reconnect(&self) -> Option<Duration> {
        (self.reconnect_interval > 0).then(|| Duration::from_secs(self.reconnect_interval.into()))
    }
}

impl PublishArgs {
    /// The publisher of stream `stream`, spooling under `out`, if asked for: what its
    /// `emotionpublish` elements share for the stream's life (checked here, before any video).
    pub fn lease(&self, out: &Path, stream: &str) -> anyhow::Result<Option<Lease>> {
        let Some(url) = &self.publish else { return Ok(None) };
        let device = self.device_name.clone().unwrap_or_else(emoedge_publish::default_device);
        emoedge_publish::broker::topic_level("--device-name", &device)?;
        let config = emoedge_publish::PublisherConfig {
            broker: self.mqtt.broker(url)?,
            device,
            stream: stream.to_string(),
            spool_dir: Self::spool_dir(out, stream),
            spool_limit: self.spool_limit,
            max_backoff: emoedge_publish::defaults::MAX_BACKOFF,
        };
        Ok(Some(Lease { config, flush_timeout: Duration::from_secs(self.publish_timeout.into()) }))
    }

    /// Where stream `stream`'s results wait for the broker.
    pub fn spool_dir(out: &Path, stream: &str) -> PathBuf {
        out.join("spool").join(stream)
    }
}
