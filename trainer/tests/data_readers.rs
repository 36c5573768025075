//! Dataset readers on small generated fixtures, malformed rows included.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;

use emoedge_models::EMOTIONS;
use emoedge_trainer::data::digits::read_digits;
use emoedge_trainer::data::fer_csv::read_fer_csv;
use emoedge_trainer::data::folder::{ClassNames, read_folder};
use emoedge_trainer::data::manifest::read_manifest;
use emoedge_trainer::data::{DataError, Split, Target};
use image::{Rgb, RgbImage};

fn write_png(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_pixel(20, 20, Rgb([shade, shade / 2, 255 - shade])).save(path).unwrap();
}

fn emotion(name: &str) -> usize {
    EMOTIONS.iter().position(|e| *e == name).unwrap()
}

#[test]
fn folder_per_class_with_splits_and_synonyms() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("train/happy/a.png"), 10);
    write_png(&dir.path().join("train/sadness/b.png"), 20);
    write_png(&dir.path().join("train/sadness/c.png"), 30);
    write_png(&dir.path().join("val/anger/d.png"), 40);
    let examples = read_folder(dir.path(), 64, ClassNames::Emotions).unwrap();
    assert_eq!(examples.len(), 4);
    assert!(examples.iter().all(|e| e.frames[0].dimensions() == (64, 64)));
    let targets: Vec<(Split, usize)> = examples.iter().map(|e| (e.split, e.target.argmax())).collect();
    assert_eq!(
        targets,
        vec![
            (Split::Train, emotion("happy")),
            (Split::Train, emotion("sad")),
            (Split::Train, emotion("sad")),
            (Split::Val, emotion("angry")),
        ]
    );
}

#[test]
fn folder_errors_name_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("contempt/a.png"), 10);
    let err = read_folder(dir.path(), 64, ClassNames::Emotions).unwrap_err().to_string();
    assert!(err.contains("contempt") && err.contains("name each class folder after its emotion"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = read_folder(empty.path(), 64, ClassNames::Emotions).unwrap_err().to_string();
    assert!(err.contains("no images found"), "{err}");

    let broken = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(broken.path().join("happy")).unwrap();
    std::fs::write(broken.path().join("happy/x.png"), b"not a png").unwrap();
    let err = read_folder(broken.path(), 64, ClassNames::Emotions).unwrap_err().to_string();
    assert!(err.contains("x.png") && err.contains("not a readable image"), "{err}");
}

fn pixels(side: usize) -> String {
    (0..side * side).map(|i| (i % 256).to_string()).collect::<Vec<_>>().join(" ")
}

#[test]
fn fer_csv_rows_map_fer_order_onto_canonical_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fer.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "emotion,pixels,Usage").unwrap();
    writeln!(f, "0,{},Training", pixels(48)).unwrap(); // angry
    writeln!(f, "6,{},PublicTest", pixels(48)).unwrap(); // neutral
    writeln!(f, "3,{},PrivateTest", pixels(48)).unwrap(); // happy
    drop(f);
    let examples = read_fer_csv(&path, 64).unwrap();
    let got: Vec<(usize, Split)> = examples.iter().map(|e| (e.target.argmax(), e.split)).collect();
    assert_eq!(
        got,
        vec![(emotion("angry"), Split::Train), (emotion("neutral"), Split::Val), (emotion("happy"), Split::Test)]
    );
    assert_eq!(examples[0].frames[0].dimensions(), (64, 64));
}

#[test]
fn fer_csv_malformed_rows_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (format!("7,{},Training", pixels(48)), "emotion `7` is not an index 0–6"),
        ("1,1 2 3,Training".to_string(), "3 pixels do not form a square image"),
        (format!("2,{},Somewhere", pixels(4)), "Usage `Somewhere`"),
        ("2,1 2 x 4,Training".to_string(), "pixels must be integers"),
        ("2,Training".to_string(), "2 fields, the header has 3"),
    ];
    for (row, expected) in cases {
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, format!("emotion,pixels,Usage\n3,{},Training\n{row}\n", pixels(4))).unwrap();
        let err = read_fer_csv(&path, 64).unwrap_err();
        assert!(matches!(err, DataError::Row { line: 3, .. }), "{err}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("{}:3: ", path.display())) && message.contains(expected), "{message}");
    }
    let path = dir.path().join("header.csv");
    std::fs::write(&path, "label,image\n").unwrap();
    assert!(read_fer_csv(&path, 64).unwrap_err().to_string().contains("expected `emotion,pixels,Usage`"));
}

#[test]
fn manifest_lines_give_clips_with_hard_and_soft_targets() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        write_png(&dir.path().join(format!("clipa/{i:03}.png")), 50 + i);
    }
    write_png(&dir.path().join("b.png"), 9);
    let soft = [0.1, 0.6, 0.1, 0.1, 0.05, 0.03, 0.02];
    let manifest = dir.path().join("clips.jsonl");
    std::fs::write(
        &manifest,
        format!(
            "{}\n{}\n\n{}\n",
            r#"{"crop_dir": "clipa", "label": "fear", "split": "val"}"#,
            serde_json::json!({"crops": ["b.png", "b.png"], "soft": soft}),
            r#"{"video": "v.mp4", "frames": [10, 20], "label": "happy", "split": "test"}"#,
        ),
    )
    .unwrap();
    let mut asked = Vec::new();
    let mut video_crops = |path: &Path, range: Option<[u64; 2]>| {
        asked.push((path.file_name().unwrap().to_owned(), range));
        Ok(vec![RgbImage::new(64, 64); 5])
    };
    let examples = read_manifest(&manifest, 64, &mut video_crops).unwrap();
    assert_eq!(asked, vec![(std::ffi::OsString::from("v.mp4"), Some([10, 20]))]);
    assert_eq!(examples.len(), 3);
    assert_eq!((examples[0].frames.len(), examples[0].split), (3, Split::Val));
    assert_eq!(examples[0].target, Target::Hard(emotion("fear")));
    assert_eq!(examples[1].target, Target::Soft(soft.to_vec()));
    assert_eq!(examples[1].split, Split::Train);
    assert_eq!((examples[2].frames.len(), examples[2].split), (5, Split::Test));
}

#[test]
fn manifest_malformed_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 1);
    let good = r#"{"crops": ["a.png"], "label": "sad"}"#;
    let cases = [
        (
            r#"{"crops": ["a.png"], "label": "sad", "soft": [1,0,0,0,0,0,0]}"#,
            "exactly one of `label`, `soft` and `logits`",
        ),
        (r#"{"crops": ["a.png"], "logits": [1, 2]}"#, "`logits` must be 7 finite numbers"),
        (r#"{"crops": ["a.png"], "soft": [0.5, 0.5]}"#, "`soft` must be 7 probabilities"),
        (r#"{"crops": ["a.png"], "label": "bored"}"#, "unknown emotion label `bored`"),
        (r#"{"label": "sad"}"#, "exactly one of `crops`, `crop_dir` and `video`"),
        (r#"{"crops": ["missing.png"], "label": "sad"}"#, "missing.png"),
        (r#"{"crops": ["a.png"], "label": "sad", "spilt": "val"}"#, "unknown field `spilt`"),
        ("not json", "not a manifest line"),
    ];
    for (line, expected) in cases {
        let manifest = dir.path().join("m.jsonl");
        std::fs::write(&manifest, format!("{good}\n{line}\n")).unwrap();
        let mut no_video = |_: &Path, _: Option<[u64; 2]>| Err("no video expected".to_string());
        let err = read_manifest(&manifest, 64, &mut no_video).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with(&format!("{}:2: ", manifest.display())) && message.contains(expected), "{message}");
    }
}

#[test]
fn digits_are_the_real_1797_and_hold_out_a_fifth() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/digits/digits.csv.gz");
    assert!(path.is_file(), "run scripts/setup first");
    let examples = read_digits(&path, 64).unwrap();
    assert_eq!(examples.len(), 1797);
    let mut per_class = [0usize; 10];
    for e in &examples {
        per_class[e.target.argmax()] += 1;
    }
    assert!(per_class.iter().all(|&n| (170..=185).contains(&n)), "{per_class:?}");
    assert_eq!(examples.iter().filter(|e| e.split == Split::Val).count(), 359);
    assert_eq!(examples[0].frames[0].dimensions(), (64, 64));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&bad).unwrap(), flate2::Compression::default());
    gz.write_all(b"0,1,2\n").unwrap();
    gz.finish().unwrap();
    let err = read_digits(&bad, 64).unwrap_err().to_string();
    assert!(err.contains("bad.csv.gz:1") && err.contains("64 pixel values"), "{err}");
}

#[test]
fn lfw_subset_gives_its_100_faces() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/faces/lfw_subset.npy");
    let faces = emoedge_trainer::data::lfw::read_lfw_faces(&path).expect("run scripts/setup first");
    assert_eq!(faces.len(), 100);
    assert!(faces.iter().all(|f| f.dimensions() == (25, 25)));
    // Real photographs: every face has contrast.
    assert!(
        faces
            .iter()
            .all(|f| f.pixels().map(|p| p.0[0]).max().unwrap() - f.pixels().map(|p| p.0[0]).min().unwrap() > 60)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.npy");
    std::fs::write(&bad, b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}").unwrap();
    let err = emoedge_trainer::data::lfw::read_lfw_faces(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.npy"), "{err}");
}
