//! The results' wire format on buffers and the bus, and reading it back (for applications and
//! `emoedge run`).

pub use emoedge_publish::EmotionRecord;
use emoedge_vision::analyzer::FaceResult;
use emoedge_vision::face::BBox;
use gstreamer as gst;

use crate::structure::{from_structure, to_structure};

/// Name of the parameter structure on each "face" region-of-interest meta, and of the element
/// messages.
pub const EMOTION: &str = "emotion";

/// Region-of-interest type of the faces the element adds or reads from upstream.
pub const FACE: &str = "face";

/// A result as the element attaches it to a frame: the record, and whether this frame computed
/// it (a new clip) or carries the track's latest result over. Its structure (`emotion`) has
/// the record's fields in kebab case — `track`, `pts-ns`, `label`, `confidence`,
/// `probabilities`, `labels`, `gate`, `bbox`, `clips`, `model` — and `fresh`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attached {
    #[serde(flatten)]
    pub record: EmotionRecord,
    pub fresh: bool,
}

/// What a result says about the model that computed it: its labels and version.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTag {
    pub labels: Vec<String>,
    pub version: String,
}

impl ModelTag {
    pub fn of(model: &emoedge_inference::shared::SharedModel) -> Self {
        model.with(|m| Self { labels: m.labels().to_vec(), version: m.manifest.model_version.clone() })
    }
}

impl Attached {
    /// The result of `face`'s track on the frame at `pts`, if the track has one yet.
    pub fn of_face(face: &FaceResult, model: &ModelTag, pts: Option<gst::ClockTime>) -> Option<Self> {
        let emotion = face.track.emotion.as_ref()?;
        let b = face.bbox;
        let record = EmotionRecord {
            track: face.track.track,
            person: face.person,
            pts_ns: pts.map(gst::ClockTime::nseconds),
            label: emotion.label.clone(),
            confidence: emotion.confidence,
            probabilities: emotion.probabilities.clone(),
            labels: model.labels.clone(),
            gate: emotion.gate,
            bbox: [b.x1, b.y1, b.width(), b.height()],
            clips: emotion.clips,
            model: Some(model.version.clone()),
        };
        Some(Self { record, fresh: face.track.fresh })
    }

    /// The `emotion` structure of this result.
    pub fn to_structure(&self) -> gst::Structure {
        to_structure(EMOTION, self)
    }

    pub fn from_structure(s: &gst::StructureRef) -> Result<Self, String> {
        from_structure(s)
    }

    /// Every result on `buffer`'s "face" region-of-interest metas.
    pub fn from_buffer(buffer: &gst::BufferRef) -> Vec<Self> {
        buffer
            .iter_meta::<gstreamer_video::VideoRegionOfInterestMeta>()
            .filter(|m| m.roi_type() == FACE)
            .filter_map(|m| m.param(EMOTION).and_then(|s| Self::from_structure(s).ok()))
            .collect()
    }

    /// The records computed on `buffer`'s frame (what `results.jsonl` and the broker receive).
    pub fn fresh_on(buffer: &gst::BufferRef) -> impl Iterator<Item = EmotionRecord> {
        Self::from_buffer(buffer).into_iter().filter(|a| a.fresh).map(|a| a.record)
    }
}

/// The box of a region-of-interest meta. Upstream elements may write any `u32`s: the far
/// corner is summed wide (no overflow); a box outside the frame is clipped where it is cropped.
pub fn roi_box(rect: (u32, u32, u32, u32)) -> BBox {
    let (x, y, w, h) = rect;
    let far = |a: u32, b: u32| (u64::from(a) + u64::from(b)) as f32;
    BBox { x1: x as f32, y1: y as f32, x2: far(x, w), y2: far(y, h) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use emoedge_publish::{ResultLine, ResultMessage};
    use serde_json::Value;

    use super::*;

    fn record() -> EmotionRecord {
        EmotionRecord {
            track: 3,
            person: Some(2),
            pts_ns: Some(41_708_333),
            label: "happy".into(),
            confidence: 0.7,
            probabilities: vec![0.7, 0.3],
            labels: vec!["happy".into(), "sad".into()],
            gate: [0.25, 0.75],
            bbox: [10.0, 20.0, 64.5, 80.0],
            clips: 2,
            model: Some("default-2".into()),
        }
    }

    /// The record's fields and values as JSON, whatever carries them.
    fn fields(value: Value, envelope: &[&str]) -> serde_json::Map<String, Value> {
        let Value::Object(mut fields) = value else { panic!("an object") };
        fields.retain(|k, _| !envelope.contains(&k.as_str()));
        fields
    }

    #[test]
    fn one_record_is_the_structure_the_results_line_and_the_mqtt_message() {
        gst::init().unwrap();
        let record = record();
        let expected = fields(serde_json::to_value(&record).unwrap(), &[]);
        assert_eq!(expected.len(), 11, "{expected:?}");

        let attached = Attached { record: record.clone(), fresh: true };
        let structure = attached.to_structure();
        assert_eq!(structure.name(), EMOTION);
        let names: Vec<String> = structure.fields().map(|f| f.replace('-', "_")).collect();
        let mut want: Vec<String> = expected.keys().cloned().chain(["fresh".to_string()]).collect();
        want.sort();
        let mut got = names.clone();
        got.sort();
        assert_eq!(got, want, "the structure has the record's fields and `fresh`");
        assert_eq!(structure.get::<u64>("track").unwrap(), 3);
        assert_eq!(Attached::from_structure(&structure).unwrap(), attached);

        let line = serde_json::to_value(ResultLine { stream: 1, record: record.clone() }).unwrap();
        assert_eq!(fields(line, &["stream"]), expected, "results.jsonl");

        let message = ResultMessage {
            id: "s-0".into(),
            session: "s".into(),
            seq: 0,
            device: "d".into(),
            stream: "1".into(),
            time_ms: 1,
            frame_time_ms: None,
            record,
        };
        let envelope = ["id", "session", "seq", "device", "stream", "time_ms", "frame_time_ms"];
        assert_eq!(fields(serde_json::to_value(&message).unwrap(), &envelope), expected, "MQTT");
    }

    #[test]
    fn a_mistyped_structure_is_refused_naming_the_field() {
        gst::init().unwrap();
        let mut s = Attached { record: record(), fresh: false }.to_structure();
        s.set("track", "three");
        let e = Attached::from_structure(&s).unwrap_err();
        assert!(e.contains("emotion") && e.contains("three"), "{e}");
        s.remove_field("track");
        assert!(Attached::from_structure(&s).unwrap_err().contains("track"));
    }
}
