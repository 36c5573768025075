//! The options the `emoedge` commands share: inputs, ONNX Runtime, MQTT login, and parsers
//! that refuse out-of-range values as the elements do.

use std::ops::RangeInclusive;
use std::path::PathBuf;

use clap::Args;
use emoedge_inference::assets;
use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_vision::analyzer::ranges;
use emoedge_vision::face::Detector;
use emoedge_vision::video::{SourceOptions, VideoSource};

/// One video input: a file or URI, or a live source the user describes.
#[derive(Debug, Clone)]
pub enum Input {
    Video(String),
    /// A gst-launch description (the user's own pipeline; a video name is never parsed as one).
    Description(String),
}

impl Input {
    /// Opens the input through `options`' filters.
    pub fn open(&self, options: SourceOptions) -> anyhow::Result<VideoSource> {
        Ok(match self {
            Input::Video(video) => VideoSource::open_with(video, options)?,
            Input::Description(source) => VideoSource::from_description_with(source, options)?,
        })
    }

    /// How the input was given, for messages.
    pub fn name(&self) -> &str {
        match self {
            Input::Video(name) | Input::Description(name) => name,
        }
    }
}

/// The video to analyse: a file or URI, or a live source the user describes.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// A video file or URI (file://, rtsp://, http://).
    #[arg(required_unless_present = "source")]
    pub video: Option<String>,
    /// A live source as a gst-launch description instead of VIDEO, e.g. "v4l2src device=/dev/video0"
    /// (the description is the user's own pipeline; a VIDEO is never parsed as one).
    #[arg(long, conflicts_with = "video")]
    pub source: Option<String>,
}

impl InputArgs {
    pub fn input(&self) -> anyhow::Result<Input> {
        match (&self.video, &self.source) {
            (Some(video), _) => Ok(Input::Video(video.clone())),
            (None, Some(source)) => Ok(Input::Description(source.clone())),
            (None, None) => anyhow::bail!("give a VIDEO or --source"),
        }
    }

    /// Opens the video through `options`' filters.
    pub fn open(&self, options: SourceOptions) -> anyhow::Result<VideoSource> {
        self.input()?.open(options)
    }
}

/// The videos `emoedge run` analyses together, one stream each (ids 0, 1, … in the order given:
/// VIDEOs first, then --source descriptions).
#[derive(Args, Debug, Clone)]
pub struct StreamArgs {
    /// Video files or URIs (file://, rtsp://, http://); several are analysed together.
    #[arg(required_unless_present = "source")]
    pub videos: Vec<String>,
    /// A live source as a gst-launch description, e.g. "v4l2src device=/dev/video0"; repeat for
    /// more (the description is the user's own pipeline; a VIDEO is never parsed as one).
    #[arg(long)]
    pub source: Vec<String>,
}

impl StreamArgs {
    pub fn inputs(&self) -> Vec<Input> {
        let videos = self.videos.iter().cloned().map(Input::Video);
        videos.chain(self.source.iter().cloned().map(Input::Description)).collect()
    }
}

/// The emotion model bundle, resolved here: the libraries and the element get its path.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A model bundle folder (default: the bundled models/default/bundle).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

impl ModelArgs {
    pub fn bundle(&self) -> anyhow::Result<PathBuf> {
        Ok(assets::given_or(self.model.as_deref(), assets::default_bundle, "pass --model DIR")?)
    }
}

/// The face detector and its folder, resolved here.
#[derive(Args, Debug, Clone)]
pub struct DetectorArgs {
    /// The face detector: MTCNN, or BlazeFace proposing faces for MTCNN's O-Net (blazeface-back,
    /// full range, faster on large frames and many faces; blazeface-front, close-ups only).
    #[arg(long, value_enum, default_value_t = Detector::default())]
    pub detector: Detector,
    /// The detector's folder (default: the one scripts/setup writes for --detector): MTCNN's
    /// pnet.onnx, rnet.onnx, onet.onnx, or one `emoedge-export detector` wrote.
    #[arg(long, value_name = "DIR")]
    pub detector_dir: Option<PathBuf>,
}

impl DetectorArgs {
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        let find = |fix: &str| assets::detector_dir(self.detector.folder(), fix);
        Ok(assets::given_or(self.detector_dir.as_deref(), find, "pass --detector-dir DIR")?)
    }
}

/// Re-identification: a person id per track, across the tracks and streams of a run.
#[derive(Args, Debug, Clone)]
pub struct ReidArgs {
    /// Re-identification: each track also gets a person id, the same on all of that person's
    /// tracks and on every stream of the run (face embeddings stay in memory). Off by default:
    /// it made the sample video's run 17–20% slower (README, Speed).
    #[arg(long)]
    pub reid: bool,
    /// Seconds a person nobody sees is remembered; after it a return is a new person.
    #[arg(long, requires = "reid", value_name = "SECONDS", default_value_t = emoedge_vision::reid::DEFAULT_WINDOW.as_secs() as u32,
          value_parser = int_in(ranges::REID_WINDOW))]
    pub reid_window: u32,
    /// Cosine similarity a new track's face must reach to take a remembered person's id.
    #[arg(long, requires = "reid", default_value_t = emoedge_vision::reid::DEFAULT_THRESHOLD,
          value_parser = float_in(ranges::REID_THRESHOLD))]
    pub reid_threshold: f32,
    /// Keep the people's face embeddings in FILE (mode 0600) so ids last across runs; without it
    /// they live in memory only. `emoedge forget FILE` deletes it.
    #[arg(long, requires = "reid", value_name = "FILE")]
    pub gallery: Option<PathBuf>,
    /// The face embedder folder (default: assets/reid/embedder from scripts/setup).
    #[arg(long, requires = "reid", value_name = "DIR")]
    pub embedder: Option<PathBuf>,
}

impl ReidArgs {
    /// The embedder folder, found where not given (when re-identification is on).
    pub fn resolve(&mut self) -> anyhow::Result<()> {
        if self.reid {
            self.embedder =
                Some(assets::given_or(self.embedder.as_deref(), assets::embedder_dir, "pass --embedder DIR")?);
        }
        Ok(())
    }
}

/// How to log in to an MQTT broker, beside its URL.
#[derive(Args, Debug, Clone)]
pub struct MqttArgs {
    /// MQTT user name (instead of one in the URL); the password comes from $EMOEDGE_MQTT_PASSWORD.
    #[arg(long)]
    pub mqtt_user: Option<String>,
    /// PEM file of the CA certificates an mqtts:// broker is checked against (default: the system's).
    #[arg(long)]
    pub mqtt_ca: Option<PathBuf>,
}

impl MqttArgs {
    /// The environment variable that holds the MQTT password (never a command-line argument,
    /// which any user of the machine can read in `ps`).
    pub const PASSWORD_ENV: &str = "EMOEDGE_MQTT_PASSWORD";

    pub fn password() -> Option<String> {
        std::env::var(Self::PASSWORD_ENV).ok().filter(|p| !p.is_empty())
    }

    /// The broker at `url` with these credentials and CA.
    pub fn broker(&self, url: &str) -> anyhow::Result<emoedge_publish::Broker> {
        Ok(emoedge_publish::Broker::with_login(url, self.mqtt_user.clone(), Self::password(), self.mqtt_ca.clone())?)
    }
}

/// Where ONNX Runtime comes from and which execution provider runs the models.
#[derive(Args, Debug, Clone)]
pub struct OrtArgs {
    /// libonnxruntime.so to load (default: $EMOEDGE_ORT_LIB, then assets/onnxruntime from scripts/setup).
    #[arg(long)]
    pub ort_lib: Option<PathBuf>,
    /// auto: TensorRT, then CUDA, then CPU.
    #[arg(long, value_enum, default_value_t = SessionOptions::default().provider)]
    pub execution_provider: Provider,
    /// GPU index for CUDA and TensorRT.
    #[arg(long, default_value_t = SessionOptions::default().device_id, value_parser = int_in(ranges::DEVICE_ID))]
    pub device_id: i32,
    /// TensorRT engine cache folder (engines are built on the first run: keep them).
    #[arg(long)]
    pub engine_cache_dir: Option<PathBuf>,
}

impl OrtArgs {
    /// Loads the ONNX Runtime library asked for (before anything else loads the default one).
    pub fn load_library(&self) -> anyhow::Result<()> {
        emoedge_inference::onnx::environment(self.ort_lib.as_deref())?;
        Ok(())
    }

    pub fn session_options(&self) -> SessionOptions {
        let mut options = SessionOptions {
            provider: self.execution_provider,
            device_id: self.device_id,
            ..SessionOptions::default()
        };
        options.tensorrt.cache_in(self.engine_cache_dir.clone());
        options
    }
}

/// A clap parser for integers in `range` (one of [`ranges`]): out-of-range values are refused
/// with the range named, as the element refuses them.
pub fn int_in<T>(range: RangeInclusive<T>) -> clap::builder::RangedI64ValueParser<T>
where
    T: Copy + Into<i64> + TryFrom<i64> + Clone + Send + Sync + 'static,
    <T as TryFrom<i64>>::Error: std::error::Error + Send + Sync + 'static,
{
    clap::builder::RangedI64ValueParser::<T>::new().range((*range.start()).into()..=(*range.end()).into())
}

/// A clap parser for unsigned 64-bit integers in `range` (one of `emoedge_publish::ranges`).
pub fn uint_in(range: RangeInclusive<u64>) -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::<u64>::new().range(range)
}

/// A clap parser for a number in `range`, which says the range when a value is outside it.
pub fn float_in(range: RangeInclusive<f64>) -> impl Fn(&str) -> Result<f32, String> + Clone {
    move |text| {
        let value: f64 = text.parse().map_err(|e| format!("`{text}` is not a number: {e}"))?;
        if range.contains(&value) {
            Ok(value as f32)
        } else {
            Err(format!("{value} is not in {}..={}", range.start(), range.end()))
        }
    }
}
