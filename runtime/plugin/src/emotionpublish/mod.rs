//! `emotionpublish`: a pass-through element placed downstream of `emotiondetect` (like
//! DeepStream's `nvmsgbroker`) that sends every fresh result on the buffers' "face" metas to an
//! MQTT broker, one JSON message each, through an on-disk spool that survives the broker's
//! absence (see `emoedge-publish`).

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod imp;

glib::wrapper! {
    pub struct EmotionPublish(ObjectSubclass<imp::EmotionPublish>)
        @extends gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "emotionpublish", gst::Rank::NONE, EmotionPublish::static_type())
}
