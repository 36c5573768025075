//! The `emoedge` GStreamer plugin: `libgstemoedge.so`, holding the `emotiondetect` element of
//! `emoedge-runtime`. Put its folder on `GST_PLUGIN_PATH`.

use gstreamer as gst;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    emoedge_runtime::emotiondetect::register(Some(plugin))
}

gst::plugin_define!(
    emoedge,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // GStreamer's name for the MIT licence (the crate is MIT OR Apache-2.0).
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "emoedge",
    env!("BUILD_REL_DATE")
);
