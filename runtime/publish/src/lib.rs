//! # emoedge-publish
//!
//! Results delivered to an existing MQTT broker, the way fleets of edge devices report:
//! [`Broker`] (a URL, credentials, TLS), [`EmotionRecord`] (one result; one JSON [`ResultMessage`] per
//! result, topic `<prefix>/<device>/<stream>`), [`Spool`] (a bounded on-disk queue, so nothing is lost
//! while the broker is away) and [`Publisher`] (QoS 1 delivery in order, reconnecting with
//! backoff). No GStreamer here: the `emotionpublish` element and `emoedge watch` build on it.

pub mod broker;
pub mod fleet;
pub mod publisher;
pub mod record;
pub mod spool;

pub use broker::{Broker, BrokerError};
pub use fleet::{Fleet, Heard, Watch};
pub use publisher::{
    PublishError, PublishStats, Publisher, PublisherConfig, default_device, default_spool_dir, defaults, now_ms, ranges,
};
pub use record::{EmotionRecord, ResultLine, ResultMessage};
pub use spool::Spool;
