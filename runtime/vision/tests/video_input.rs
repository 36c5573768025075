//! GStreamer video input: files, live sources, and what goes wrong with them.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_tests::media;
use emoedge_vision::video::{Frame, VideoError, VideoSource};
use proptest::prelude::*;

#[test]
fn file_frames_are_rgb_with_increasing_timestamps() {
    let mut source = VideoSource::open(&media("single_face.mp4")).unwrap();
    let mut last = None;
    let mut count = 0;
    while let Some(frame) = source.next_frame().unwrap() {
        assert_eq!(frame.image.dimensions(), (640, 360));
        assert_eq!(frame.index, count);
        let pts = frame.pts_ns.expect("files carry timestamps");
        assert!(last.is_none_or(|l| pts > l));
        last = Some(pts);
        count += 1;
    }
    assert_eq!(count, 72);
}

#[test]
fn frames_read_into_one_buffer_are_the_frames_read_fresh() {
    let (mut fresh, mut reused) =
        (VideoSource::open(&media("single_face.mp4")).unwrap(), VideoSource::open(&media("single_face.mp4")).unwrap());
    let mut frame = Frame::default();
    let mut buffer = None;
    while let Some(expected) = fresh.next_frame().unwrap() {
        assert!(reused.next_frame_into(&mut frame).unwrap(), "frame {} missing", expected.index);
        assert_eq!((frame.index, frame.pts_ns), (expected.index, expected.pts_ns));
        assert!(frame.image == expected.image, "frame {} differs", expected.index);
        let pixels = frame.image.as_ptr();
        assert!(buffer.is_none_or(|b| b == pixels), "frame {}: a new pixel buffer", frame.index);
        buffer = Some(pixels);
    }
    assert!(!reused.next_frame_into(&mut frame).unwrap(), "both end together");
    assert_eq!(frame.index, 71, "the last frame stays in the buffer");
}

#[test]
fn live_source_runs_until_its_end() {
    let mut source = VideoSource::from_description(
        "videotestsrc is-live=true num-buffers=6 ! capsfilter caps=video/x-raw,width=160,height=120",
    )
    .unwrap();
    let mut count = 0;
    while let Some(frame) = source.next_frame().unwrap() {
        assert_eq!(frame.image.dimensions(), (160, 120));
        count += 1;
    }
    assert_eq!(count, 6);
}

#[test]
fn missing_file_is_named() {
    let err = VideoSource::open("/nonexistent/clip.mp4").err().unwrap();
    assert!(matches!(err, VideoError::Missing(_)) && err.to_string().contains("/nonexistent/clip.mp4"));
}

#[test]
fn non_video_file_is_a_decode_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.mp4");
    std::fs::write(&path, "these are notes, not a video\n").unwrap();
    let mut source = VideoSource::open(path.to_str().unwrap()).unwrap();
    let err = source.next_frame().expect_err("no frame from a text file");
    assert!(matches!(err, VideoError::Decode { .. }), "{err}");
    assert!(err.to_string().contains("notes.mp4"));
}

#[test]
fn truncated_videos_are_errors_not_short_videos() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(media("WolfgangLanger_Pexels.mp4")).unwrap();
    // Its index is at the front: the demuxer plays the first part and then stops quietly.
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &whole[..whole.len() * 2 / 5]).unwrap();
    let mut source = VideoSource::open(cut.to_str().unwrap()).unwrap();
    let err = loop {
        match source.next_frame() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a truncated file must not end like a complete one"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, VideoError::Truncated { .. }), "{err}");

    // This one's index is at the end: nothing is playable.
    let whole = std::fs::read(media("face_noface.mov")).unwrap();
    let cut = dir.path().join("cut.mov");
    std::fs::write(&cut, &whole[..whole.len() / 4]).unwrap();
    let mut source = VideoSource::open(cut.to_str().unwrap()).unwrap();
    assert!(matches!(source.next_frame(), Err(VideoError::Decode { .. })));
}

#[test]
fn unknown_live_element_is_a_source_error() {
    let err = VideoSource::from_description("nosuchvideosrc").err().unwrap();
    assert!(matches!(err, VideoError::Source { .. }) && err.to_string().contains("nosuchvideosrc"), "{err}");
}

proptest! {
    // Fuzzing the input names end to end (the unit tests fuzz the name → URI step): each case
    // starts a real decoding pipeline. Here, not among the unit tests, because the aarch64
    // check runs those in a sysroot without an H.264 decoder.
    #![proptest_config(emoedge_tests::fuzz::config(12))]

    #[test]
    fn a_real_video_under_any_name_decodes(name in "[^/\u{0}]{1,40}".prop_filter("not . or ..", |n| n != "." && n != "..")) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(&name);
        std::fs::copy(media("single_face.mp4"), &path).unwrap();
        let mut video = VideoSource::open(path.to_str().unwrap()).unwrap();
        prop_assert!(video.next_frame().unwrap().is_some());
    }
}

#[test]
fn an_unreachable_camera_is_a_live_source_error_that_says_what_to_do() {
    let mut source = VideoSource::open("rtsp://127.0.0.1:1/cam").unwrap();
    let err = source.next_frame().expect_err("nothing listens on port 1");
    assert!(matches!(err, VideoError::Live { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("rtsp://127.0.0.1:1/cam") && text.contains("--reconnect-interval"), "{text}");
}

#[test]
fn a_described_source_with_a_demuxer_decodes() {
    // gst-parse's ghosting of unlinked pads took h264parse's sink: the demuxer could not link.
    let description = format!("filesrc location={} ! qtdemux ! h264parse ! avdec_h264", media("single_face.mp4"));
    let mut source = VideoSource::from_description(&description).unwrap();
    let mut frames = 0;
    while source.next_frame().unwrap().is_some() {
        frames += 1;
    }
    assert_eq!(frames, 72);
}
