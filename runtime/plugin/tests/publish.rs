//! The `emotionpublish` element with `gst_check::Harness` downstream of `emotiondetect`, on real
//! frames, publishing to a real Mosquitto read by `mosquitto_sub`.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{bundle, gst_init, media};
use emoedge_tests::mqtt::{Mosquitto, Subscriber};
use emoedge_vision::video::VideoSource;
use gstemoedge::meta::Attached;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_check::Harness;

#[test]
fn fresh_results_go_to_the_broker_and_buffers_pass_through_unchanged() {
    gst_init();
    let broker = Mosquitto::start();
    let mut subscriber = Subscriber::start(&broker, "site/#", None);
    let spool = tempfile::tempdir().unwrap();
    let detect = gst::ElementFactory::make("emotiondetect")
        .property("model", bundle().display().to_string())
        .property_from_str("precision", "fp32")
        .property_from_str("execution-provider", "cpu")
        .build()
        .unwrap();
    let publish = gst::ElementFactory::make("emotionpublish")
        .property("broker", broker.url("site"))
        .property("device-id", "rig")
        .property("stream-id", "cam-2")
        .property("spool-dir", spool.path().display().to_string())
        .build()
        .unwrap();
    let bin = gst::Bin::new();
    bin.add_many([&detect, &publish]).unwrap();
    detect.link(&publish).unwrap();
    bin.add_pad(&gst::GhostPad::with_target(&detect.static_pad("sink").unwrap()).unwrap()).unwrap();
    bin.add_pad(&gst::GhostPad::with_target(&publish.static_pad("src").unwrap()).unwrap()).unwrap();
    let mut harness = Harness::with_element(&bin, Some("sink"), Some("src"));

    let mut source = VideoSource::open(&media("single_face.mp4")).unwrap();
    let mut fresh = 0;
    for i in 0..12u64 {
        let frame = source.next_frame().unwrap().unwrap();
        let (w, h) = frame.image.dimensions();
        if i == 0 {
            harness.set_src_caps_str(&format!("video/x-raw,format=RGB,width={w},height={h},framerate=30/1"));
        }
        let bytes = frame.image.into_raw();
        let mut buffer = gst::Buffer::from_slice(bytes.clone());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_nseconds(i * 33_333_333));
        let out = harness.push_and_pull(buffer).unwrap();
        assert_eq!(out.map_readable().unwrap().as_slice(), bytes.as_slice(), "pixels unchanged");
        fresh += Attached::fresh_on(&out).count();
    }
    assert_eq!(fresh, 5, "frames 8–12 each complete a clip");
    subscriber.until(Duration::from_secs(10), |m| m.len() >= 5);
    assert_eq!(subscriber.messages.len(), 5);
    assert!(subscriber.messages.iter().all(|(topic, _)| topic == "site/rig/cam-2"));
    let stats = publish.property::<gst::Structure>("stats");
    assert_eq!(stats.get::<u64>("queued").unwrap(), 5, "{stats}");
    drop(harness);
    let stats = gstemoedge::stats::publish_stats(&publish).unwrap();
    assert_eq!((stats.delivered, stats.pending, stats.error.as_deref()), (5, 0, None), "{stats:?}");
}

#[test]
fn the_password_cannot_be_read_back_and_a_missing_broker_is_a_clear_error() {
    gst_init();
    let publish = gst::ElementFactory::make("emotionpublish").property("password", "hunter2").build().unwrap();
    let password = publish.find_property("password").unwrap();
    assert!(!password.flags().contains(gst::glib::ParamFlags::READABLE), "write-only");
    for spec in publish.list_properties() {
        assert!(spec.blurb().is_some_and(|b| !b.is_empty()), "{} has no blurb", spec.name());
    }
    let pipeline = gst::Pipeline::new();
    pipeline.add(&publish).unwrap();
    assert!(pipeline.set_state(gst::State::Paused).is_err(), "an element without a broker does not start");
    let message = pipeline.bus().unwrap().pop_filtered(&[gst::MessageType::Error]).unwrap();
    let gst::MessageView::Error(error) = message.view() else { unreachable!() };
    let text = error.error().to_string();
    let _ = pipeline.set_state(gst::State::Null);
    assert!(text.contains("set the broker property"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn the_default_spool_folder_is_private_to_this_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    gst_init();
    let stream = format!("private-{}", std::process::id());
    let publish = gst::ElementFactory::make("emotionpublish")
        .property("broker", "mqtt://127.0.0.1:9/site")
        .property("device-id", "rig")
        .property("stream-id", &stream)
        .build()
        .unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&publish).unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let uid = std::fs::metadata("/proc/self").unwrap().uid();
    let parent = std::env::temp_dir().join(format!("emoedge-{uid}"));
    let spool = parent.join(format!("spool-rig-{stream}"));
    for folder in [&parent, &spool] {
        let meta = std::fs::metadata(folder).unwrap();
        assert_eq!((meta.permissions().mode() & 0o777, meta.uid()), (0o700, uid), "{}", folder.display());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    std::fs::remove_dir_all(&spool).unwrap();
}

#[test]
fn track_ids_can_never_wrap_onto_each_other() {
    gst_init();
    let detect = gst::ElementFactory::make("emotiondetect").build().unwrap();
    let spec = detect.find_property("track-id-base").unwrap();
    let spec = spec.downcast::<gst::glib::ParamSpecUInt64>().unwrap();
    // Above the highest base stay more ids than any stream can use.
    assert!(u64::MAX - spec.maximum() >= 1 << 62, "{}", spec.maximum());
}
