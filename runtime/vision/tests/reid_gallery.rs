//! The re-identification gallery: matching with a margin, ids never given twice, the window
//! that forgets, and the opt-in gallery file (private, and refused clearly when damaged).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use emoedge_tests::fuzz::{apply_json, config, edits};
use emoedge_vision::reid::{Gallery, MatchSettings};
use proptest::prelude::*;

const SIZE: usize = 8;
const EMBEDDER: &str = "test-embedder";

fn settings() -> MatchSettings {
    MatchSettings { threshold: 0.9, margin: 0.01, window: Duration::from_secs(60) }
}

/// A unit vector along axis `axis`, tilted towards the next axis by `tilt`.
fn face(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = [0.0; SIZE];
    v[axis] = 1.0;
    v[(axis + 1) % SIZE] = tilt;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

#[test]
fn a_return_takes_its_id_a_stranger_gets_a_new_one_and_ids_are_never_reused() {
    let mut gallery = Gallery::new(settings(), EMBEDDER);
    let t0 = Instant::now();
    let alice = gallery.identify(face(0, 0.0), (1, 1), &[], t0);
    let bob = gallery.identify(face(2, 0.0), (1, 2), &[], t0);
    assert_ne!(alice, bob);
    gallery.end_track(alice, (1, 1), t0);
    assert_eq!(gallery.identify(face(0, 0.1), (1, 3), &[], t0), alice, "alice returns, another frame");
    assert_eq!(gallery.identify(face(0, 0.1), (2, 1), &[alice], t0), 3, "on screen beside alice: not alice");
    // Past the window, with no track showing them, people are forgotten, ids and all.
    for (person, track) in [(alice, (1, 3)), (bob, (1, 2)), (3, (2, 1))] {
        gallery.end_track(person, track, t0);
    }
    gallery.expire(t0 + Duration::from_secs(59));
    assert_eq!(gallery.persons(), [alice, bob, 3]);
    gallery.expire(t0 + Duration::from_secs(61));
    assert!(gallery.persons().is_empty());
    assert_eq!(gallery.identify(face(0, 0.0), (1, 4), &[], t0), 4, "a forgotten face is a new person with a new id");
}

#[test]
fn a_face_between_two_people_is_neither() {
    let mut gallery = Gallery::new(settings(), EMBEDDER);
    let t0 = Instant::now();
    let a = gallery.identify(face(0, 0.0), (1, 1), &[], t0);
    let b = gallery.identify(face(0, 1.0), (1, 2), &[], t0);
    assert_ne!(a, b, "45° apart: two people");
    // Equally like both (cos 0.92 to each): the margin refuses to pick.
    let between = face(0, 0.41);
    let id = gallery.identify(between, (1, 3), &[], t0);
    assert!(id != a && id != b, "ambiguous faces get a new id, got {id}");
}

#[test]
fn a_gallery_file_is_private_comes_back_whole_and_holds_ids_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.json");
    let t0 = Instant::now();
    let mut gallery = Gallery::open(settings(), EMBEDDER, &file, SIZE).unwrap();
    let alice = gallery.identify(face(0, 0.0), (1, 1), &[], t0);
    gallery.save().unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let mut again = Gallery::open(settings(), EMBEDDER, &file, SIZE).unwrap();
    assert_eq!(again.persons(), [alice]);
    assert_eq!(again.identify(face(0, 0.05), (9, 1), &[], t0), alice, "the next run knows alice");
    assert_eq!(again.identify(face(4, 0.0), (9, 2), &[], t0), alice + 1);
    // Another embedder's gallery is refused, naming the file and the way out.
    let e = Gallery::open(settings(), "another", &file, SIZE).err().unwrap().to_string();
    assert!(e.contains("people.json") && e.contains("emoedge forget"), "{e}");
}

proptest! {
    #![proptest_config(config(64))]
    #[test]
    fn a_damaged_gallery_file_is_an_error_naming_it_never_a_panic(edits in edits()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("people.json");
        let mut gallery = Gallery::open(settings(), EMBEDDER, &file, SIZE).unwrap();
        for axis in 0..3 {
            gallery.identify(face(axis * 2, 0.0), (1, axis as u64), &[], Instant::now());
        }
        gallery.save().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, apply_json(&text, &edits)).unwrap();
        if let Err(e) = Gallery::open(settings(), EMBEDDER, &file, SIZE) {
            prop_assert!(e.to_string().contains("people.json"), "{}", e);
        }
    }
}
