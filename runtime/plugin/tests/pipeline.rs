//! `emotiondetect` in real GStreamer pipelines on the real sample videos, and every kind of
//! bad input as an error message on the bus followed by a clean shutdown.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bundle, bundle_copy, gst_init, media};
use gstemoedge::meta::{Attached, EmotionRecord};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app::AppSink;

struct Outcome {
    /// Fresh results, in stream order.
    results: Vec<EmotionRecord>,
    frames: usize,
    error: Option<String>,
}

/// Runs `filesrc ! decodebin ! videoconvert ! <element> ! appsink` to EOS or the first error,
/// then shuts down.
fn play(video: &str, element: &str) -> Outcome {
    play_with_sink(video, element, "appsink name=sink sync=false")
}

fn play_with_sink(video: &str, element: &str, sink: &str) -> Outcome {
    gst_init();
    let description = format!("filesrc location=\"{video}\" ! decodebin ! videoconvert ! {element} ! {sink}");
    let pipeline = gst::parse::launch(&description).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<AppSink>().unwrap();
    let bus = pipeline.bus().unwrap();
    let mut outcome = Outcome { results: Vec::new(), frames: 0, error: None };
    if pipeline.set_state(gst::State::Playing).is_ok() {
        loop {
            if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(50)) {
                outcome.frames += 1;
                outcome.results.extend(Attached::fresh_on(sample.buffer().unwrap()));
                continue;
            }
            if sink.is_eos() || bus.peek().is_some_and(|m| m.type_() == gst::MessageType::Error) {
                break;
            }
            if let Some(m) = bus.pop()
                && let gst::MessageView::Error(_) = m.view()
            {
                outcome.error = error_text(&m);
                break;
            }
        }
    }
    while outcome.error.is_none() {
        let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) else { break };
        outcome.error = error_text(&m);
    }
    assert_eq!(pipeline.set_state(gst::State::Null), Ok(gst::StateChangeSuccess::Success), "clean shutdown");
    outcome
}

fn error_text(m: &gst::Message) -> Option<String> {
    match m.view() {
        gst::MessageView::Error(e) => Some(format!("{} {}", e.error(), e.debug().unwrap_or_default())),
        _ => None,
    }
}

fn detect(extra: &str) -> String {
    format!("emotiondetect model=\"{}\" precision=fp32 execution-provider=cpu {extra}", bundle().display())
}

#[test]
fn every_track_of_the_sample_video_gets_results() {
    let outcome = play(&media("WolfgangLanger_Pexels.mp4"), &detect(""));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.frames, 472);
    // One woman, one track, a result on every frame from the 8th encoding on.
    assert_eq!(outcome.results.len(), 472 - 7);
    assert!(outcome.results.iter().all(|r| r.track == 1));
    let mut pts: Vec<_> = outcome.results.iter().map(|r| r.pts_ns.unwrap()).collect();
    pts.dedup();
    assert_eq!(pts.len(), outcome.results.len(), "each result lands on its own frame");
}

#[test]
fn the_multi_face_still_gives_a_track_per_face() {
    // A still image as a 10-frame video: five faces, five tracks, each with a result.
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! imagefreeze num-buffers=10 ! videoconvert ! {} ! appsink name=sink sync=false",
        media("multi_face.jpg"),
        detect("")
    );
    gst_init();
    let pipeline = gst::parse::launch(&description).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut tracks = std::collections::BTreeSet::new();
    while let Ok(sample) = sink.pull_sample() {
        tracks.extend(Attached::from_buffer(sample.buffer().unwrap()).into_iter().map(|a| a.record.track));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(tracks.len(), 5, "{tracks:?}");
}

#[test]
fn no_face_video_yields_no_results_and_no_error() {
    let outcome = play(&media("no_face.mp4"), &detect(""));
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.frames, 96);
    assert!(outcome.results.is_empty());
}

#[test]
fn async_mode_delivers_results_on_later_frames_without_dropping_buffers() {
    // Played in real time (a synchronised sink), as a live source would be: the worker keeps
    // up with every few frames and its results are attached to the frames that follow.
    let outcome = play_with_sink(&media("single_face.mp4"), &detect("async=true"), "appsink name=sink sync=true");
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.frames, 72, "async never drops a buffer, it skips analysing frames");
    assert!(!outcome.results.is_empty());
    assert!(outcome.results.iter().all(|r| r.track == 1));
}

#[test]
fn a_missing_bundle_is_an_error_naming_it() {
    let outcome = play(&media("single_face.mp4"), "emotiondetect model=/nonexistent/bundle");
    let error = outcome.error.expect("an error on the bus");
    assert!(error.contains("/nonexistent/bundle/manifest.json") && error.contains("emoedge-export build"), "{error}");
    assert_eq!(outcome.frames, 0);
}

#[test]
fn the_detector_dir_property_names_the_detector_and_its_errors_name_the_folder() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    let outcome = play(&media("single_face.mp4"), &format!("emotiondetect detector-dir=\"{dir}\""));
    let error = outcome.error.expect("an error on the bus");
    assert!(error.contains(&format!("{dir}/pnet.onnx")), "{error}");
    let detector = emoedge_tests::detector_dir().display().to_string();
    let outcome = play(&media("single_face.mp4"), &format!("emotiondetect detector-dir=\"{detector}\""));
    assert!(outcome.error.is_none() && !outcome.results.is_empty(), "{:?}", outcome.error);
}

#[test]
fn a_wrong_precision_name_is_refused_when_the_pipeline_is_built() {
    gst_init();
    // An enum property: the parser itself refuses a value that is not one of its nicks.
    let error = gst::parse::launch("videotestsrc ! videoconvert ! emotiondetect precision=fp64 ! fakesink")
        .expect_err("fp64 is not a precision")
        .to_string();
    assert!(error.contains("precision") && error.contains("fp64"), "{error}");
}

#[test]
fn a_corrupt_onnx_file_is_an_error_naming_the_file() {
    let copy = bundle_copy();
    // Garbage with a matching checksum: ONNX Runtime itself must refuse it.
    let garbage = b"this is not an onnx model";
    std::fs::write(copy.path().join("fp32/frame.onnx"), garbage).unwrap();
    let manifest_path = copy.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let digest = emoedge_models::manifest::sha256_hex(&garbage[..]).unwrap();
    manifest["variants"]["fp32"]["frame"]["sha256"] = digest.into();
    manifest["variants"]["fp32"]["frame"]["bytes"] = garbage.len().into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let outcome = play(
        &media("single_face.mp4"),
        &format!("emotiondetect model=\"{}\" precision=fp32 execution-provider=cpu", copy.path().display()),
    );
    let error = outcome.error.expect("an error on the bus");
    assert!(error.contains("fp32/frame.onnx") && error.contains("not a valid ONNX model"), "{error}");

    // A damaged file (same size) with the old checksum is caught before ONNX Runtime sees it.
    let copy = bundle_copy();
    let clip = copy.path().join("fp32/clip.onnx");
    let size = std::fs::metadata(&clip).unwrap().len() as usize;
    std::fs::write(&clip, vec![0u8; size]).unwrap();
    let outcome = play(
        &media("single_face.mp4"),
        &format!("emotiondetect model=\"{}\" precision=fp32 execution-provider=cpu", copy.path().display()),
    );
    let error = outcome.error.expect("an error on the bus");
    assert!(error.contains("fp32/clip.onnx") && error.contains("sha256"), "{error}");
}

#[test]
fn a_model_that_disagrees_with_its_manifest_is_refused_at_start() {
    let copy = bundle_copy();
    let manifest_path = copy.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["labels"].as_array_mut().unwrap().pop();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let outcome = play(
        &media("single_face.mp4"),
        &format!("emotiondetect model=\"{}\" precision=fp32 execution-provider=cpu", copy.path().display()),
    );
    let error = outcome.error.expect("an error on the bus");
    assert!(
        error.contains("clip.onnx does not match the bundle's manifest") && error.contains("emotion_logits"),
        "{error}"
    );
}

#[test]
fn a_manifest_that_contradicts_itself_is_a_bus_error_in_async_mode_too() {
    // Issue 14: `clip_length: 4` under a config of 8 ran to the end with async=true — exit 0, no
    // results, the worker's panic unseen. It is refused when the element starts.
    let copy = bundle_copy();
    let manifest_path = copy.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["clip_length"] = 4.into();
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    for mode in ["async=true", "async=false"] {
        let outcome = play(
            &media("single_face.mp4"),
            &format!("emotiondetect model=\"{}\" precision=fp32 execution-provider=cpu {mode}", copy.path().display()),
        );
        let error = outcome.error.expect("an error on the bus");
        assert!(error.contains("clip_length is 4 but its config says 8"), "{mode}: {error}");
        assert!(outcome.results.is_empty(), "{mode}");
    }
}

#[test]
fn a_clip_length_other_than_the_models_is_refused() {
    let outcome = play(&media("single_face.mp4"), &detect("clip-length=16"));
    let error = outcome.error.expect("an error on the bus");
    assert!(error.contains("clip-length is 16") && error.contains("clips of 8 frames"), "{error}");
}

#[test]
fn unsupported_caps_fail_negotiation_with_an_error() {
    gst_init();
    // Linked directly, the pipeline cannot even be built, and says why.
    let direct = format!("videotestsrc num-buffers=3 ! video/x-raw,format=I420 ! {} ! fakesink", detect(""));
    let error = gst::parse::launch(&direct).expect_err("I420 cannot link").to_string();
    assert!(error.contains("emotiondetect") && error.contains("I420"), "{error}");
    // Linked without a caps check (as a dynamic pipeline may be), negotiation fails at run
    // time: a bus error, not a crash.
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=I420 ! identity name=last {} name=detect ! fakesink",
        detect("")
    ))
    .unwrap();
    let bin = pipeline.clone().downcast::<gst::Bin>().unwrap();
    let (last, detect) = (bin.by_name("last").unwrap(), bin.by_name("detect").unwrap());
    last.static_pad("src").unwrap().link_full(&detect.static_pad("sink").unwrap(), gst::PadLinkCheck::empty()).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(30), &[gst::MessageType::Error, gst::MessageType::Eos])
        .unwrap();
    let error = error_text(&message).expect("an error, not EOS");
    assert!(error.contains("not-negotiated") || error.contains("not negotiated"), "{error}");
    assert_eq!(pipeline.set_state(gst::State::Null), Ok(gst::StateChangeSuccess::Success));
}
