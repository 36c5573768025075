#![allow(dead_code, unused_imports)]
// Test helpers stop the test loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub use emoedge_tests::{bundle_copy, bundle_versioned, default_bundle as bundle, media};

/// GStreamer initialised with the plugin registered in-process, as applications link it.
pub fn gst_init() {
    gstreamer::init().unwrap();
    let _ = emoedge_inference::onnx::environment(None).expect("scripts/setup provides ONNX Runtime");
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| gstemoedge::plugin_register_static().unwrap());
}
