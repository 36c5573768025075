//! The results' wire format on buffers and the bus, and reading it back (for applications and
//! `emoedge run`).

use emoedge_inference::engine::Emotion;
use emoedge_vision::analyzer::FaceResult;
use emoedge_vision::face::BBox;
use gstreamer as gst;

/// Name of the parameter structure on each "face" region-of-interest meta, and of the element
/// messages.
pub const EMOTION: &str = "emotion";

/// Region-of-interest type of the faces the element adds or reads from upstream.
pub const FACE: &str = "face";

fn doubles(values: &[f32]) -> gst::Array {
    gst::Array::new(values.iter().map(|&v| v as f64))
}

/// `emotion` structure: label, confidence, probabilities (label order), labels, gate weights,
/// track id, whether this frame computed it, and the face box.
pub fn emotion_structure(
    face: &FaceResult,
    emotion: &Emotion,
    labels: &[String],
    pts: Option<gst::ClockTime>,
) -> gst::Structure {
    let b = face.bbox;
    let mut s = gst::Structure::builder(EMOTION)
        .field("track-id", face.track.track)
        .field("label", emotion.label.as_str())
        .field("confidence", emotion.confidence as f64)
        .field("probabilities", doubles(&emotion.probabilities))
        .field("labels", gst::Array::new(labels.iter().map(String::as_str)))
        .field("gate-general", emotion.gate[0] as f64)
        .field("gate-emotion", emotion.gate[1] as f64)
        .field("clips", emotion.clips)
        .field("fresh", face.track.fresh)
        .field("x", b.x1 as f64)
        .field("y", b.y1 as f64)
        .field("width", b.width() as f64)
        .field("height", b.height() as f64)
        .build();
    if let Some(pts) = pts {
        s.set("pts", pts);
    }
    s
}

/// A result read back from an `emotion` structure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EmotionRecord {
    pub pts_ns: Option<u64>,
    pub track: u64,
    pub bbox: [f32; 4],
    pub label: String,
    pub confidence: f32,
    pub probabilities: Vec<f32>,
    pub labels: Vec<String>,
    pub gate: [f32; 2],
    pub clips: u64,
    pub fresh: bool,
}

fn floats(s: &gst::StructureRef, field: &str) -> Result<Vec<f32>, String> {
    let array = s.get::<gst::Array>(field).map_err(|e| e.to_string())?;
    array.iter().map(|v| v.get::<f64>().map(|x| x as f32).map_err(|e| e.to_string())).collect()
}

impl EmotionRecord {
    pub fn from_structure(s: &gst::StructureRef) -> Result<Self, String> {
        let f = |field: &str| s.get::<f64>(field).map(|v| v as f32).map_err(|e| e.to_string());
        let labels = s.get::<gst::Array>("labels").map_err(|e| e.to_string())?;
        Ok(Self {
            pts_ns: s.get::<gst::ClockTime>("pts").ok().map(|t| t.nseconds()),
            track: s.get::<u64>("track-id").map_err(|e| e.to_string())?,
            bbox: [f("x")?, f("y")?, f("width")?, f("height")?],
            label: s.get::<String>("label").map_err(|e| e.to_string())?,
            confidence: f("confidence")?,
            probabilities: floats(s, "probabilities")?,
            labels: labels.iter().map(|v| v.get::<String>().map_err(|e| e.to_string())).collect::<Result<_, _>>()?,
            gate: [f("gate-general")?, f("gate-emotion")?],
            clips: s.get::<u64>("clips").map_err(|e| e.to_string())?,
            fresh: s.get::<bool>("fresh").map_err(|e| e.to_string())?,
        })
    }

    /// Every `emotion` result on `buffer`'s "face" region-of-interest metas.
    pub fn from_buffer(buffer: &gst::BufferRef) -> Vec<Self> {
        buffer
            .iter_meta::<gstreamer_video::VideoRegionOfInterestMeta>()
            .filter(|m| m.roi_type() == FACE)
            .filter_map(|m| m.param(EMOTION).and_then(|s| Self::from_structure(s).ok()))
            .collect()
    }
}

/// The box of a region-of-interest meta. Upstream elements may write any `u32`s: the far
/// corner is summed wide (no overflow); a box outside the frame is clipped where it is cropped.
pub fn roi_box(rect: (u32, u32, u32, u32)) -> BBox {
    let (x, y, w, h) = rect;
    let far = |a: u32, b: u32| (u64::from(a) + u64::from(b)) as f32;
    BBox { x1: x as f32, y1: y as f32, x2: far(x, w), y2: far(y, h) }
}
