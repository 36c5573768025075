//! `emotiondetect`: an in-place video filter that finds faces, follows them as tracks, runs the
//! emotion model per track and attaches the results to the buffers as
//! `GstVideoRegionOfInterestMeta` "face" with an `emotion` parameter structure, and posts an
//! `emotion` element message per new result.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod imp;
mod worker;

glib::wrapper! {
    pub struct EmotionDetect(ObjectSubclass<imp::EmotionDetect>)
        @extends gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // The enum properties' types are part of the plugin's documented API.
    #[cfg(feature = "doc")]
    {
        use emoedge_inference::model::Precision;
        use emoedge_inference::onnx::Provider;
        use emoedge_vision::analyzer::FaceSource;
        Precision::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        Provider::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
        FaceSource::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    }
    gst::Element::register(Some(plugin), "emotiondetect", gst::Rank::NONE, EmotionDetect::static_type())
}
