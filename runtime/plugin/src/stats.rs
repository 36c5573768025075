//! The elements' `stats` properties, typed: each element writes its record as a structure and
//! applications read it back with `from_element`, never a field by its name.

use emoedge_inference::onnx::ActiveProvider;
use emoedge_publish::PublishStats;
use gstreamer as gst;
use gstreamer::prelude::*;

use crate::structure::{from_structure, to_structure};

/// What an `emotiondetect` element has done since it started: frames seen and analysed, work
/// done and time inside ONNX Runtime.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetectStats {
    /// The provider the emotion model runs on (none before the element starts).
    pub provider: Option<ActiveProvider>,
    pub frames: u64,
    pub analyzed_frames: u64,
    pub faces_encoded: u64,
    pub clips_classified: u64,
    /// Frames the face detector ran on.
    pub detections: u64,
    pub detector_ort_ns: u64,
    /// The emotion model's totals: it is shared by the process's streams, so these count every
    /// stream's calls.
    pub frame_model_ort_ns: u64,
    pub clip_model_ort_ns: u64,
    pub frame_model_calls: u64,
    pub frame_model_faces: u64,
    pub clip_model_calls: u64,
    /// Face embeddings computed for re-identification (this stream) and their time.
    pub embeddings: u64,
    pub embedder_ort_ns: u64,
    /// Where each session's nodes ran (after its first call), `; `-separated.
    pub placement: String,
}

impl DetectStats {
    pub const NAME: &str = "emotiondetect-stats";

    pub fn to_structure(&self) -> gst::Structure {
        to_structure(Self::NAME, self)
    }

    /// The statistics of an `emotiondetect` element.
    pub fn from_element(element: &gst::Element) -> Result<Self, String> {
        read(element)
    }
}

/// The `emotionpublish` element's statistics: its publisher's counters.
pub const PUBLISH_STATS: &str = "emotionpublish-stats";

pub fn publish_structure(stats: &PublishStats) -> gst::Structure {
    to_structure(PUBLISH_STATS, stats)
}

/// The statistics of an `emotionpublish` element.
pub fn publish_stats(element: &gst::Element) -> Result<PublishStats, String> {
    read(element)
}

fn read<T: serde::de::DeserializeOwned>(element: &gst::Element) -> Result<T, String> {
    let name = element.name();
    element
        .find_property("stats")
        .and_then(|_| element.property::<Option<gst::Structure>>("stats"))
        .ok_or_else(|| format!("{name} has no statistics"))
        .and_then(|s| from_structure(&s))
}
