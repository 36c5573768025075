//! # gst-plugin-emoedge
//!
//! The `emoedge` GStreamer plugin (`libgstemoedge.so`, put its folder on `GST_PLUGIN_PATH`)
//! with the `emotiondetect` and `emotionpublish` elements, and [`meta`], the results' format on buffers and the bus.
//! Applications that link this crate register the element with [`plugin_register_static`].

// Each element's imp.rs opens with its documentation block (`element-NAME:`, a description and a
// launch line), as gst-plugins-rs does; it stands before the first `use`, where rustc calls it unused.
#![allow(unused_doc_comments)]

use gstreamer as gst;

// No panic crosses into GStreamer: gstreamer-rs wraps every element virtual method in
// `catch_unwind` and turns a panic into an element error on the bus, the async worker catches
// its own, and the property handlers panic only on a value of the wrong type, which GObject
// refuses before they run. All of it needs unwinding.
#[cfg(panic = "abort")]
compile_error!("gst-plugin-emoedge needs panic = \"unwind\": a panic must become an element error, not an abort");

pub mod emotiondetect;
pub mod emotionpublish;
pub mod meta;
pub mod stats;
mod structure;

// The elements' state stays usable after a panic, which is reported as an element error.
pub(crate) use emoedge_support::sync::lock;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    emotiondetect::register(plugin)?;
    emotionpublish::register(plugin)
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
