/**
 * element-emotionpublish:
 *
 * Sends every fresh result on the buffers' "face" metas (from `emotiondetect`) to an MQTT
 * broker, one JSON message each on `PREFIX/DEVICE/STREAM`, QoS 1, through a private on-disk
 * spool (`spool-dir`) that keeps results while the broker is away and remembers what it
 * acknowledged, so nothing is lost and nothing acknowledged is sent twice. Buffers pass through
 * unchanged. The password property is write-only and never printed.
 *
 * ## Example launch line
 *
 * ```sh
 * GST_PLUGIN_PATH=target/release gst-launch-1.0 \
 *   filesrc location=assets/media/single_face.mp4 ! decodebin ! videoconvert ! \
 *   emotiondetect execution-provider=cpu ! \
 *   emotionpublish broker=mqtt://127.0.0.1:1883/site device-id=cam-7 stream-id=0 \
 *     spool-dir=/var/lib/emoedge/spool-0 ! fakesink
 * ```
 *
 * Elements of one process on the same spool folder share one publisher; `stats` counts queued,
 * delivered, dropped (spool full), rejected (can never be sent) and pending results.
 */
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use emoedge_publish::{
    Broker, PublishStats, Publisher, PublisherConfig, default_device, default_spool_dir, defaults, ranges,
};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::prelude::*;
use gstreamer_base::subclass::prelude::*;

use crate::lock;
use crate::meta::Attached;
use crate::stats::publish_structure;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("emotionpublish", gst::DebugColorFlags::empty(), Some("emoedge results to MQTT"))
});

#[derive(Debug, Clone)]
struct Settings {
    broker: Option<String>,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<PathBuf>,
    device_id: String,
    stream_id: String,
    spool_dir: Option<PathBuf>,
    spool_limit: u64,
    max_backoff: u32,
    flush_timeout: u32,
}

/// The stream id when none is set.
const DEFAULT_STREAM: &str = "0";

impl Default for Settings {
    fn default() -> Self {
        Self {
            broker: None,
            username: None,
            password: None,
            ca_file: None,
            device_id: default_device(),
            stream_id: DEFAULT_STREAM.to_string(),
            spool_dir: None,
            spool_limit: defaults::SPOOL_LIMIT,
            max_backoff: defaults::MAX_BACKOFF.as_secs() as u32,
            flush_timeout: defaults::FLUSH_TIMEOUT,
        }
    }
}

impl Settings {
    /// The publisher's configuration, or the error a user can act on.
    fn config(&self) -> Result<PublisherConfig, String> {
        let url = self.broker.as_deref().ok_or("set the broker property to mqtt://HOST:PORT/PREFIX")?;
        let broker = Broker::with_login(url, self.username.clone(), self.password.clone(), self.ca_file.clone())
            .map_err(|e| e.to_string())?;
        let spool_dir = match &self.spool_dir {
            Some(dir) => dir.clone(),
            None => default_spool_dir(&self.device_id, &self.stream_id)
                .map_err(|e| format!("no private spool folder: {e}; set spool-dir"))?,
        };
        Ok(PublisherConfig {
            broker,
            device: self.device_id.clone(),
            stream: self.stream_id.clone(),
            spool_dir,
            spool_limit: self.spool_limit,
            max_backoff: Duration::from_secs(self.max_backoff.into()),
        })
    }
}

struct State {
    /// Shared with any other element (or application) on the same spool folder.
    publisher: Arc<Publisher>,
}

#[derive(Default)]
pub struct EmotionPublish {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// The counters of the last publisher and why it stopped delivering, if it did; kept after
    /// stop for the application's summary.
    last_stats: Mutex<PublishStats>,
}

#[glib::object_subclass]
impl ObjectSubclass for EmotionPublish {
    const NAME: &'static str = "GstEmotionPublish";
    type Type = super::EmotionPublish;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for EmotionPublish {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("broker")
                    .nick("Broker")
                    .blurb("MQTT broker URL mqtt://[USER@]HOST[:PORT][/PREFIX] (mqtts:// for TLS); results go to PREFIX/DEVICE/STREAM")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("username")
                    .nick("User name")
                    .blurb("MQTT user name (overrides one in the URL)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("password")
                    .nick("Password")
                    .blurb("MQTT password (write-only: never read back or printed)")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("ca-file")
                    .nick("CA certificates")
                    .blurb("PEM file of the CA certificates an mqtts:// broker is checked against (default: the system's)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("device-id")
                    .nick("Device id")
                    .blurb("This device's topic level (letters, digits, '-', '_', '.')")
                    .default_value(Some(d.device_id.as_str()))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("stream-id")
                    .nick("Stream id")
                    .blurb("This stream's topic level (letters, digits, '-', '_', '.')")
                    .default_value(Some(DEFAULT_STREAM))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("spool-dir")
                    .nick("Spool folder")
                    .blurb("Where results wait for the broker (a private folder; elements of one process on the same folder share one publisher); empty = <temp dir>/emoedge-<uid>/spool-<device>-<stream>")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("spool-limit")
                    .nick("Spool limit")
                    .blurb("Most results kept while the broker is away; past it the oldest are dropped and counted")
                    .minimum(*ranges::SPOOL_LIMIT.start())
                    .maximum(*ranges::SPOOL_LIMIT.end())
                    .default_value(d.spool_limit)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("max-backoff")
                    .nick("Longest backoff")
                    .blurb("Longest wait in seconds between attempts to reach the broker (attempts start at 0.25 s and double)")
                    .minimum(*ranges::MAX_BACKOFF.start())
                    .maximum(*ranges::MAX_BACKOFF.end())
                    .default_value(d.max_backoff)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("flush-timeout")
                    .nick("Flush timeout")
                    .blurb("Seconds to wait at stop for the broker to acknowledge queued results (the rest stay in the spool)")
                    .minimum(*ranges::FLUSH_TIMEOUT.start())
                    .maximum(*ranges::FLUSH_TIMEOUT.end())
                    .default_value(d.flush_timeout)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("queued, delivered, dropped (spool full), rejected (can never be sent), pending (in the spool), connected, connections")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    #[allow(clippy::expect_used, reason = "GObject checks a value's type against the property's before set_property")]
    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        let text = || value.get::<Option<String>>().expect("type checked upstream").filter(|v| !v.is_empty());
        match pspec.name() {
            "broker" => s.broker = text(),
            "username" => s.username = text(),
            "password" => s.password = text(),
            "ca-file" => s.ca_file = text().map(PathBuf::from),
            "device-id" => s.device_id = text().unwrap_or_else(default_device),
            "stream-id" => s.stream_id = text().unwrap_or_else(|| DEFAULT_STREAM.to_string()),
            "spool-dir" => s.spool_dir = text().map(PathBuf::from),
            "spool-limit" => s.spool_limit = value.get().expect("type checked upstream"),
            "max-backoff" => s.max_backoff = value.get().expect("type checked upstream"),
            "flush-timeout" => s.flush_timeout = value.get().expect("type checked upstream"),
            other => gst::warning!(CAT, imp = self, "no writable property `{other}`"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        match pspec.name() {
            "broker" => s.broker.to_value(),
            "username" => s.username.to_value(),
            "ca-file" => path(&s.ca_file).to_value(),
            "device-id" => s.device_id.to_value(),
            "stream-id" => s.stream_id.to_value(),
            "spool-dir" => path(&s.spool_dir).to_value(),
            "spool-limit" => s.spool_limit.to_value(),
            "max-backoff" => s.max_backoff.to_value(),
            "flush-timeout" => s.flush_timeout.to_value(),
            "stats" => {
                let live = lock(&self.state).as_ref().map(|st| st.publisher.stats());
                publish_structure(&live.unwrap_or_else(|| lock(&self.last_stats).clone())).to_value()
            }
            // Write-only (the password) or unknown: nothing to read.
            _ => None::<String>.to_value(),
        }
    }
}

impl GstObjectImpl for EmotionPublish {}

impl ElementImpl for EmotionPublish {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Emotion results publisher",
                "Sink/Network/Metadata",
                "Sends each new emotion result of the \"face\" metas (from emotiondetect) to an MQTT broker as JSON, \
                 QoS 1, through an on-disk spool kept while the broker is away; buffers pass through unchanged",
                "emoedge developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::new_any();
            [("src", gst::PadDirection::Src), ("sink", gst::PadDirection::Sink)]
                .into_iter()
                .filter_map(|(name, direction)| {
                    gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps).ok()
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }
}

impl EmotionPublish {
    /// How long ago `buffer` entered the pipeline: the running time now minus the buffer's
    /// (for a live source, its capture); `None` without a clock or a timestamp.
    fn age(&self, buffer: &gst::BufferRef) -> Option<Duration> {
        let obj = self.obj();
        emoedge_vision::video::age(obj.upcast_ref(), &obj.segment(), buffer.pts())
    }
}

impl BaseTransformImpl for EmotionPublish {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let config = lock(&self.settings)
            .config()
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("emotionpublish cannot start: {}", e)))?;
        gst::info!(
            CAT,
            imp = self,
            "publishing to {} as {}/{}, spool {}",
            config.broker,
            config.device,
            config.stream,
            config.spool_dir.display()
        );
        let publisher = Publisher::shared(config)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenWrite, ("emotionpublish cannot start: {}", e)))?;
        *lock(&self.state) = Some(State { publisher });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let timeout = Duration::from_secs(lock(&self.settings).flush_timeout.into());
        if let Some(state) = lock(&self.state).take() {
            let stats = Publisher::release(state.publisher, timeout);
            gst::info!(CAT, imp = self, "stopped: {stats:?}");
            *lock(&self.last_stats) = stats;
        }
        Ok(())
    }

    fn transform_ip_passthrough(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ["emotionpublish received data before starting"]
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let age = self.age(buffer);
        for record in Attached::fresh_on(buffer) {
            if let Err(e) = state.publisher.publish(record, age) {
                // The message (not only the debug text) names the problem: applications show it.
                gst::element_imp_error!(self, gst::ResourceError::Write, ("emotionpublish: {}", e));
                return Err(gst::FlowError::Error);
            }
        }
        for warning in state.publisher.warnings() {
            gst::element_imp_warning!(self, gst::ResourceError::Write, ("emotionpublish: {}", warning));
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
