//! One result, written once: [`EmotionRecord`] is what the `emotiondetect` element attaches
//! to a frame, what `emoedge run` writes to `results.jsonl` ([`ResultLine`]: the record and
//! its stream) and what goes to the broker ([`ResultMessage`]: an envelope around the record).

use serde::{Deserialize, Serialize};

/// The emotion of one face track on one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmotionRecord {
    /// Track id, unique within its stream.
    pub track: u64,
    /// The person the track shows (re-identification): the same id on every track and stream
    /// of the run that shows them; absent until the track's face was identified, and with
    /// re-identification off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<u64>,
    /// Presentation time of the frame in its stream, when it has one.
    pub pts_ns: Option<u64>,
    pub label: String,
    pub confidence: f32,
    /// Probabilities in `labels` order.
    pub probabilities: Vec<f32>,
    pub labels: Vec<String>,
    /// Router weights of the general and the emotion expert.
    pub gate: [f32; 2],
    /// Face box in the frame: x, y, width, height (pixels).
    pub bbox: [f32; 4],
    /// Clips of this track classified so far (absent from messages of earlier versions, which
    /// may still wait in a spool).
    #[serde(default)]
    pub clips: u64,
    /// The `model_version` of the bundle that produced it (a model swapped while a stream runs
    /// shows here); absent from messages of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One line of `results.jsonl`: a record and the stream (0, 1, … in the order the inputs were
/// given) it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultLine {
    pub stream: usize,
    #[serde(flatten)]
    pub record: EmotionRecord,
}

/// The payload of one MQTT message (topic `<prefix>/<device>/<stream>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultMessage {
    /// Unique per message: `<session>-<seq>`. A message delivered twice (at-least-once) keeps its
    /// id, so consumers drop duplicates by it; `seq` counts up by one within a session, so a gap
    /// is visible.
    pub id: String,
    pub session: String,
    pub seq: u64,
    pub device: String,
    pub stream: String,
    /// Wall-clock time the result was produced, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Wall-clock time its frame entered the pipeline (live sources; milliseconds since the
    /// Unix epoch): a consumer's arrival time minus this is the frame-to-message delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_time_ms: Option<u64>,
    #[serde(flatten)]
    pub record: EmotionRecord,
}
