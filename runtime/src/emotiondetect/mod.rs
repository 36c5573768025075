//! `emotiondetect`: an in-place video filter that finds faces, follows them as tracks, runs the
//! emotion model per track and attaches the results to the buffers as
//! `GstVideoRegionOfInterestMeta` "face" with an `emotion` parameter structure, and posts an
//! `emotion` element message per new result.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod imp;
pub mod meta;

glib::wrapper! {
    pub struct EmotionDetect(ObjectSubclass<imp::EmotionDetect>)
        @extends gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

/// Where the element takes its faces from.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstEmotionDetectFaceSource")]
pub enum FaceSourceProperty {
    #[default]
    #[enum_value(name = "Built-in MTCNN detector and IoU tracker", nick = "builtin")]
    Builtin = 0,
    #[enum_value(name = "Upstream GstVideoRegionOfInterestMeta of type \"face\"", nick = "upstream")]
    Upstream = 1,
    #[enum_value(name = "The whole frame is one face", nick = "full-frame")]
    FullFrame = 2,
}

/// Registers `emotiondetect` with `plugin`, or process-wide with `None` (an application that
/// links the runtime, such as `emoedge run`).
pub fn register(plugin: Option<&gst::Plugin>) -> Result<(), glib::BoolError> {
    gst::Element::register(plugin, "emotiondetect", gst::Rank::NONE, EmotionDetect::static_type())
}
