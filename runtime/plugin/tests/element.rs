//! The `emotiondetect` element with `gst_check::Harness`: caps, properties, metas, and errors
//! on real frames of the sample videos.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bundle, gst_init, media};
use emoedge_inference::model::Precision;
use emoedge_inference::onnx::Provider;
use emoedge_vision::analyzer::FaceSource;
use emoedge_vision::video::VideoSource;
use gstemoedge::meta::Attached;
use gstemoedge::stats::DetectStats;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_check::Harness;
use gstreamer_video::VideoRegionOfInterestMeta;

/// The first `n` decoded frames of `video` as RGB buffers with 30 fps timestamps.
fn rgb_buffers(video: &str, n: usize) -> (u32, u32, Vec<gst::Buffer>) {
    let mut source = VideoSource::open(video).unwrap();
    let mut buffers = Vec::new();
    let (mut w, mut h) = (0, 0);
    while buffers.len() < n {
        let frame = source.next_frame().unwrap().expect("enough frames");
        (w, h) = frame.image.dimensions();
        let mut buffer = gst::Buffer::from_mut_slice(frame.image.into_raw());
        let i = buffers.len() as u64;
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_nseconds(i * 33_333_333));
        buffers.push(buffer);
    }
    (w, h, buffers)
}

fn harness(properties: &[(&str, &str)], w: u32, h: u32) -> Harness {
    gst_init();
    let element = gst::ElementFactory::make("emotiondetect")
        .property("model", bundle().display().to_string())
        .property_from_str("precision", "fp32")
        .property_from_str("execution-provider", "cpu")
        .build()
        .unwrap();
    for (name, value) in properties {
        element.set_property_from_str(name, value);
    }
    let mut harness = Harness::with_element(&element, Some("sink"), Some("src"));
    harness.set_src_caps_str(&format!("video/x-raw,format=RGB,width={w},height={h},framerate=30/1"));
    harness
}

#[test]
fn properties_have_documented_defaults_and_ranges() {
    gst_init();
    let element = gst::ElementFactory::make("emotiondetect").build().unwrap();
    assert_eq!(element.property::<Precision>("precision"), Precision::Auto);
    assert_eq!(element.property::<Provider>("execution-provider"), Provider::Auto);
    assert_eq!(element.property::<u32>("interval"), 1);
    assert_eq!(element.property::<u32>("detect-interval"), 5);
    assert_eq!(element.property::<u32>("clip-length"), 0);
    assert_eq!(element.property::<f64>("smoothing"), 0.5);
    assert_eq!(element.property::<u32>("min-face-size"), 40);
    assert!(!element.property::<bool>("async"));
    assert_eq!(element.property::<Option<String>>("active-provider"), None);
    let interval = element.find_property("interval").unwrap();
    let interval = interval.downcast_ref::<gst::glib::ParamSpecUInt>().unwrap();
    assert_eq!((interval.minimum(), interval.maximum()), (1, 1000));
    for spec in element.list_properties() {
        assert!(spec.blurb().is_some_and(|b| !b.is_empty()), "{} has no blurb", spec.name());
    }
    element.set_property_from_str("face-source", "upstream");
    assert_eq!(element.property::<FaceSource>("face-source"), FaceSource::Upstream);
    element.set_property_from_str("precision", "int8");
    assert_eq!(element.property::<Precision>("precision"), Precision::Int8);
    // The sink accepts packed RGB/BGR layouts only.
    let sink = element.static_pad("sink").unwrap().pad_template_caps();
    assert!(sink.can_intersect(&gst::Caps::builder("video/x-raw").field("format", "BGRx").build()));
    assert!(!sink.can_intersect(&gst::Caps::builder("video/x-raw").field("format", "I420").build()));
}

#[test]
fn attaches_face_metas_with_emotion_once_a_clip_is_full() {
    let (w, h, buffers) = rgb_buffers(&media("single_face.mp4"), 10);
    let mut harness = harness(&[], w, h);
    harness.play();
    assert_eq!(harness.element().unwrap().property::<Option<String>>("active-provider").as_deref(), Some("cpu"));
    for (i, buffer) in buffers.into_iter().enumerate() {
        let out = harness.push_and_pull(buffer).unwrap();
        let faces: Vec<_> = out
            .iter_meta::<VideoRegionOfInterestMeta>()
            .filter(|m| m.roi_type() == "face")
            .map(|m| (m.id(), m.rect()))
            .collect();
        assert_eq!(faces.len(), 1, "frame {i}: one face in single_face.mp4");
        let records = Attached::from_buffer(&out);
        if i < 7 {
            // T = 8 encodings make the first clip.
            assert!(records.is_empty(), "frame {i}: no clip yet");
        } else {
            assert_eq!(records.len(), 1, "frame {i}");
            assert!(records[0].fresh);
            let r = &records[0].record;
            assert_eq!(r.track, faces[0].0 as u64);
            assert_eq!(r.clips, (i - 6) as u64);
            assert_eq!(r.labels.len(), 7);
            assert!((r.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-3);
            assert_eq!(r.label, r.labels[emoedge_models::argmax(&r.probabilities)]);
            assert!((r.gate[0] + r.gate[1] - 1.0).abs() < 1e-4);
            assert_eq!(r.pts_ns, Some(i as u64 * 33_333_333));
        }
    }
    let stats = harness.element().unwrap().property::<Option<gst::Structure>>("stats").unwrap();
    assert_eq!(stats.get::<u64>("frames").unwrap(), 10);
    // The default window (mean of frames) classifies every encoded frame alone, as a still.
    assert_eq!(stats.get::<u64>("clips-classified").unwrap(), 10);
    assert!(stats.get::<u64>("detector-ort-ns").unwrap() > 0);
    // The default detect-interval 5: full detection on frames 0 and 5, O-Net following between.
    assert_eq!(stats.get::<u64>("detections").unwrap(), 2);
    // Every model has run, so where each one's nodes ran is known.
    let placement = stats.get::<String>("placement").unwrap();
    for model in ["pnet.onnx", "rnet.onnx", "onet.onnx", "frame.onnx", "clip.onnx"] {
        assert!(placement.contains(&format!("{model} on cpu: nodes ran ")), "{model} in {placement}");
    }
    assert!(!placement.contains("Tensorrt") && !placement.contains("CUDA"), "{placement}");
}

#[test]
fn detect_interval_1_runs_the_detector_on_every_frame() {
    let (w, h, buffers) = rgb_buffers(&media("single_face.mp4"), 6);
    let mut harness = harness(&[("detect-interval", "1")], w, h);
    harness.play();
    for buffer in buffers {
        let out = harness.push_and_pull(buffer).unwrap();
        assert_eq!(out.iter_meta::<VideoRegionOfInterestMeta>().count(), 1);
    }
    let stats = DetectStats::from_element(&harness.element().unwrap()).unwrap();
    assert_eq!(stats.detections, 6);
}

#[test]
fn interval_encodes_every_nth_frame_of_a_track() {
    let (w, h, buffers) = rgb_buffers(&media("single_face.mp4"), 18);
    let mut harness = harness(&[("interval", "2")], w, h);
    harness.play();
    let mut first_result = None;
    for (i, buffer) in buffers.into_iter().enumerate() {
        let out = harness.push_and_pull(buffer).unwrap();
        if first_result.is_none() && !Attached::from_buffer(&out).is_empty() {
            first_result = Some(i);
        }
    }
    // Encodings at frames 0, 2, …, 14: the 8th lands on frame 14.
    assert_eq!(first_result, Some(14));
    let stats = DetectStats::from_element(&harness.element().unwrap()).unwrap();
    assert_eq!(stats.faces_encoded, 9);
}

#[test]
fn upstream_face_metas_get_the_emotion_instead_of_new_metas() {
    let (w, h, buffers) = rgb_buffers(&media("single_face.mp4"), 9);
    let mut harness = harness(&[("face-source", "upstream")], w, h);
    harness.play();
    let mut last = None;
    for mut buffer in buffers {
        // What an upstream detector (facedetect, a DeepStream detector …) would attach: a box
        // below the minimum face size (skipped), then the face.
        VideoRegionOfInterestMeta::add(buffer.get_mut().unwrap(), "face", (20, 20, 12, 12));
        VideoRegionOfInterestMeta::add(buffer.get_mut().unwrap(), "face", (212, 77, 153, 213));
        last = Some(harness.push_and_pull(buffer).unwrap());
    }
    let out = last.unwrap();
    let metas: Vec<_> = out.iter_meta::<VideoRegionOfInterestMeta>().collect();
    assert_eq!(metas.len(), 2, "no new meta for a face that came with one");
    assert!(metas[0].param("emotion").is_none(), "the small box was not analysed");
    assert_eq!(metas[1].rect(), (212, 77, 153, 213));
    assert!(metas[1].param("emotion").is_some(), "the result found the box it came from");
}

#[test]
fn hostile_upstream_boxes_pass_through_without_a_panic() {
    // Any element upstream may write any `u32`s into a region-of-interest meta: boxes whose
    // far corner overflows u32 (once a panic in `roi_box`), beyond the frame, or empty.
    let (w, h, buffers) = rgb_buffers(&media("single_face.mp4"), 3);
    let mut harness = harness(&[("face-source", "upstream")], w, h);
    harness.play();
    for mut buffer in buffers {
        for rect in
            [(u32::MAX, u32::MAX, u32::MAX, u32::MAX), (u32::MAX - 5, 0, 100, 100), (w, h, 50, 50), (0, 0, 0, 0)]
        {
            VideoRegionOfInterestMeta::add(buffer.get_mut().unwrap(), "face", rect);
        }
        let out = harness.push_and_pull(buffer).expect("the frame passes, no error");
        assert_eq!(out.iter_meta::<VideoRegionOfInterestMeta>().count(), 4, "the metas are kept as they came");
    }
}

#[test]
fn a_frame_without_faces_passes_through_untouched() {
    let (w, h, buffers) = rgb_buffers(&media("no_face.mp4"), 3);
    let mut harness = harness(&[], w, h);
    harness.play();
    for buffer in buffers {
        let input = buffer.map_readable().unwrap().to_vec();
        let out = harness.push_and_pull(buffer).unwrap();
        assert_eq!(out.iter_meta::<VideoRegionOfInterestMeta>().count(), 0);
        assert_eq!(out.map_readable().unwrap().as_slice(), input.as_slice(), "pixels are never changed");
    }
}

#[test]
fn async_results_land_on_the_buffer_after_their_frame() {
    let (w, h, buffers) = rgb_buffers(&media("single_face.mp4"), 12);
    let mut harness = harness(&[("async", "true")], w, h);
    harness.play();
    let element = harness.element().unwrap();
    // The stats are atomics: reading them never waits for the inference in progress.
    let stat = |field: &str| element.property::<Option<gst::Structure>>("stats").unwrap().get::<u64>(field).unwrap();
    for (i, buffer) in buffers.into_iter().enumerate() {
        let out = harness.push_and_pull(buffer).unwrap();
        let records = Attached::from_buffer(&out);
        // Buffer i carries what the worker made of frame i − 1; frame 7 completes the first clip.
        if i < 8 {
            assert!(records.is_empty(), "buffer {i}: {records:?}");
        } else {
            assert_eq!(records.len(), 1, "buffer {i}");
            assert!(records[0].fresh && records[0].record.clips == (i - 7) as u64, "buffer {i}: {:?}", records[0]);
        }
        // Let the worker finish frame i before the next buffer, so that every frame is analysed.
        let started = std::time::Instant::now();
        while stat("analyzed-frames") <= i as u64 {
            assert!(started.elapsed().as_secs() < 60, "frame {i} not analysed within a minute");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    // Every analysed frame's face classified alone (the default window: the mean of frames).
    assert_eq!((stat("frames"), stat("analyzed-frames"), stat("clips-classified")), (12, 12, 12));
}

/// The model versions of the fresh results on `out`, and their track ids.
fn fresh_versions(out: &gst::BufferRef) -> Vec<(u64, Option<String>)> {
    Attached::from_buffer(out).into_iter().filter(|a| a.fresh).map(|a| (a.record.track, a.record.model)).collect()
}

/// Sets `model` on the playing element, then pushes `buffers`: the results' versions and
/// tracks, and the bus's warnings.
fn swap_and_push(
    harness: &mut Harness,
    bus: &gst::Bus,
    model: &std::path::Path,
    buffers: Vec<gst::Buffer>,
    wait: bool,
) -> (Vec<(u64, Option<String>)>, Vec<String>) {
    let element = harness.element().unwrap();
    element.set_property("model", model.display().to_string());
    let mut results = Vec::new();
    for buffer in buffers {
        let analysed =
            element.property::<Option<gst::Structure>>("stats").unwrap().get::<u64>("analyzed-frames").unwrap();
        results.extend(fresh_versions(&harness.push_and_pull(buffer).unwrap()));
        // In async mode, let the worker finish each frame so that every frame is analysed.
        let started = std::time::Instant::now();
        while wait
            && element.property::<Option<gst::Structure>>("stats").unwrap().get::<u64>("analyzed-frames").unwrap()
                <= analysed
        {
            assert!(started.elapsed().as_secs() < 60, "a frame not analysed within a minute");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let warnings = std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Warning]))
        .map(|m| match m.view() {
            gst::MessageView::Warning(w) => w.error().to_string(),
            _ => unreachable!(),
        })
        .collect();
    (results, warnings)
}

#[test]
fn the_model_swaps_while_playing_and_a_damaged_one_is_refused() {
    for asynchronous in ["false", "true"] {
        let (w, h, mut buffers) = rgb_buffers(&media("single_face.mp4"), 40);
        let mut harness = harness(&[("async", asynchronous)], w, h);
        let bus = gst::Bus::new();
        harness.element().unwrap().set_bus(Some(&bus));
        harness.play();
        let wait = asynchronous == "true";
        let (before, _) = swap_and_push(&mut harness, &bus, &bundle(), buffers.drain(..10).collect(), wait);
        assert!(!before.is_empty() && before.iter().all(|(_, v)| v.as_deref() == Some("default-2")), "{before:?}");
        let track = before[0].0;

        // A damaged bundle: refused with the reason, the running model classifies on.
        let damaged = common::bundle_versioned("damaged-1");
        let frame = damaged.path().join("fp32/frame.onnx");
        let mut bytes = std::fs::read(&frame).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&frame, bytes).unwrap();
        let (kept, warnings) = swap_and_push(&mut harness, &bus, damaged.path(), buffers.drain(..10).collect(), wait);
        assert_eq!(kept.len(), 10, "async={asynchronous}: the old model goes on without a pause: {kept:?}");
        assert!(kept.iter().all(|r| *r == (track, Some("default-2".to_string()))), "{kept:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("keeps model default-2")
                && warnings[0].contains(&damaged.path().display().to_string()),
            "{warnings:?}"
        );

        // A good one: the same track, its window filled again, then the new version.
        let swapped = common::bundle_versioned("swapped-7");
        let (after, warnings) = swap_and_push(&mut harness, &bus, swapped.path(), buffers.drain(..20).collect(), wait);
        assert!(warnings.is_empty(), "{warnings:?}");
        // In async mode the first buffer after the swap carries the frame before it, classified
        // by the old model (and labelled so).
        let old = after.iter().take_while(|r| **r == (track, Some("default-2".to_string()))).count();
        assert!(old <= usize::from(wait), "async={asynchronous}: {after:?}");
        assert!(
            after.len() >= 10 + old && after[old..].iter().all(|r| *r == (track, Some("swapped-7".to_string()))),
            "async={asynchronous}: {after:?}"
        );
    }
}
