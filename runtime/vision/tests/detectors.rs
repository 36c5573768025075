//! The lighter face detectors against MTCNN on every sample medium (issue 26): BlazeFace
//! proposing faces for MTCNN's O-Net must find the faces MTCNN finds — per image and per video
//! frame — with the same boxes. The table it measures is the README's (`docs/figures/
//! detectors.md`); `EMOEDGE_WRITE_FIGURES=1` rewrites it, otherwise a difference fails.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use emoedge_inference::onnx::SessionOptions;
use emoedge_tests::{media, workspace_root};
use emoedge_vision::face::{Detector, DetectorOptions, Face, FaceDetector};
use emoedge_vision::video::VideoSource;
use image::RgbImage;

/// MTCNN's detections that are not faces, seen by eye: they are not counted as faces a lighter
/// detector must find. faceapi-sample3.jpg: the box over the blonde woman's chest and her glass
/// (O-Net 0.94), below her real face (which every detector finds).
const NOT_FACES: [(&str, [f32; 4]); 1] = [("faceapi-sample3.jpg", [480.0, 528.0, 840.0, 948.0])];

const STILLS: [&str; 13] = [
    "multi_face.jpg",
    "faceapi-sample1.jpg",
    "faceapi-sample2.jpg",
    "faceapi-sample3.jpg",
    "faceapi-sample4.jpg",
    "faceapi-sample5.jpg",
    "faceapi-sample6.jpg",
    "single_face.jpg",
    "BWPictureHuman.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
];
const VIDEOS: [&str; 5] =
    ["WolfgangLanger_Pexels.mp4", "single_face.mp4", "face_noface.mov", "noface_face.mov", "no_face.mp4"];
/// Every n-th video frame is compared (MTCNN on every frame of every video takes a while).
const EVERY: usize = 2;

fn open(detector: Detector) -> FaceDetector {
    let dir = workspace_root().join(detector.folder());
    FaceDetector::load(&dir, &SessionOptions::default(), DetectorOptions::default()).expect("scripts/setup wrote it")
}

/// One medium's comparison of a detector with MTCNN.
#[derive(Debug, Default)]
struct Tally {
    /// Faces MTCNN finds (known non-faces left out), and of them the ones the detector finds too.
    mtcnn: usize,
    found: usize,
    /// Faces the detector finds that MTCNN does not.
    extra: usize,
    iou_sum: f32,
    /// Longer side of the smallest face each finds.
    smallest_mtcnn: Option<f32>,
    smallest_found: Option<f32>,
    /// What was missed: medium, frame, box.
    missed: Vec<String>,
}

fn side(face: &Face) -> f32 {
    face.bbox.width().max(face.bbox.height())
}

fn smaller(a: Option<f32>, b: f32) -> Option<f32> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Tally {
    fn add(&mut self, medium: &str, frame: usize, mtcnn: &[Face], other: &[Face]) {
        let not_face = |f: &Face| {
            NOT_FACES
                .iter()
                .any(|(m, b)| *m == medium && (f.bbox.x1 - b[0]).abs() < 20.0 && (f.bbox.y1 - b[1]).abs() < 20.0)
        };
        let mut matched = vec![false; other.len()];
        for face in mtcnn.iter().filter(|f| !not_face(f)) {
            self.mtcnn += 1;
            self.smallest_mtcnn = smaller(self.smallest_mtcnn, side(face));
            let best = (0..other.len())
                .max_by(|&a, &b| face.bbox.iou(&other[a].bbox).total_cmp(&face.bbox.iou(&other[b].bbox)));
            match best.filter(|&j| face.bbox.iou(&other[j].bbox) >= 0.5 && !matched[j]) {
                Some(j) => {
                    matched[j] = true;
                    self.found += 1;
                    self.iou_sum += face.bbox.iou(&other[j].bbox);
                    self.smallest_found = smaller(self.smallest_found, side(&other[j]));
                }
                None => self.missed.push(format!("{medium} frame {frame}: {:?}", face.bbox)),
            }
        }
        self.extra += matched.iter().filter(|m| !**m).count();
    }
}

fn rgb(path: &str) -> RgbImage {
    image::open(path).unwrap().to_rgb8()
}

/// Each medium's frames (a still is one).
fn frames(medium: &str, mut each: impl FnMut(usize, &RgbImage)) {
    if medium.ends_with(".jpg") {
        return each(0, &rgb(&media(medium)));
    }
    let mut source = VideoSource::open(&media(medium)).unwrap();
    let mut index = 0;
    while let Some(frame) = source.next_frame().unwrap() {
        if index % EVERY == 0 {
            each(index, &frame.image);
        }
        index += 1;
    }
}

fn measure(detectors: &mut [(Detector, FaceDetector)]) -> Vec<(String, Vec<Tally>)> {
    let mut mtcnn = open(Detector::Mtcnn);
    let mut rows = Vec::new();
    for medium in STILLS.iter().chain(&VIDEOS) {
        let mut tallies: Vec<Tally> = detectors.iter().map(|_| Tally::default()).collect();
        let mut count = 0;
        frames(medium, |index, image| {
            count += 1;
            let reference = mtcnn.detect(image).unwrap();
            for ((_, detector), tally) in detectors.iter_mut().zip(&mut tallies) {
                tally.add(medium, index, &reference, &detector.detect(image).unwrap());
            }
        });
        let name = if medium.ends_with(".jpg") { medium.to_string() } else { format!("{medium} ({count} frames)") };
        rows.push((name, tallies));
    }
    rows
}

fn table(detectors: &[Detector], rows: &[(String, Vec<Tally>)]) -> String {
    let name = |d: &Detector| format!("{d:?}").to_lowercase().replace("blazeface", "blazeface-");
    let mut text = String::from("| medium | MTCNN: faces (smallest, px) |");
    for d in detectors {
        text += &format!(" {}: found (smallest, px) | box IoU | extra |", name(d));
    }
    text += "\n|---|---:|";
    text += &"---:|---:|---:|".repeat(detectors.len());
    text += "\n";
    let px = |v: Option<f32>| v.map_or("–".into(), |v| format!("{v:.0}"));
    for (medium, tallies) in rows {
        text += &format!("| {medium} | {} ({}) |", tallies[0].mtcnn, px(tallies[0].smallest_mtcnn));
        for t in tallies {
            let iou = if t.found > 0 { format!("{:.2}", t.iou_sum / t.found as f32) } else { "–".into() };
            text += &format!(" {} ({}) | {iou} | {} |", t.found, px(t.smallest_found), t.extra);
        }
        text += "\n";
    }
    text
}

#[test]
fn blazeface_finds_every_face_mtcnn_finds_on_every_sample_medium() {
    let kinds = [Detector::BlazefaceBack, Detector::BlazefaceFront];
    let mut detectors: Vec<(Detector, FaceDetector)> = kinds.iter().map(|&k| (k, open(k))).collect();
    let rows = measure(&mut detectors);
    let measured = table(&kinds, &rows);
    println!("{measured}");
    for (medium, tallies) in &rows {
        let back = &tallies[0];
        assert!(back.missed.is_empty(), "blazeface-back lost faces MTCNN finds in {medium}: {:?}", back.missed);
    }
    let published = workspace_root().join("docs/figures/detectors.md");
    if std::env::var_os("EMOEDGE_WRITE_FIGURES").is_some() {
        std::fs::write(&published, &measured).unwrap();
    }
    let text = std::fs::read_to_string(&published).unwrap_or_default();
    assert!(
        same_figures(&text, &measured),
        "{} differs from this measurement; re-run with EMOEDGE_WRITE_FIGURES=1\n{measured}",
        published.display()
    );
}

/// A table's text with its numbers taken out, and the numbers, each with how far another CPU's
/// floating point may move it: counts not at all, box IoU (decimals) by 0.01, a pixel size (in
/// parentheses) by 1.
fn split_numbers(text: &str) -> (String, Vec<(f64, f64)>) {
    let (mut shape, mut numbers, mut number) = (String::new(), Vec::new(), String::new());
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '.' && !number.is_empty()) {
            number.push(c);
            continue;
        }
        if !number.is_empty() {
            let slack = if number.contains('.') {
                0.0101
            } else if shape.ends_with('(') {
                1.0
            } else {
                0.0
            };
            numbers.push((number.parse().unwrap(), slack));
            number.clear();
            shape.push('#');
        }
        shape.push(c);
    }
    (shape, numbers)
}

fn same_figures(published: &str, measured: &str) -> bool {
    let ((a, x), (b, y)) = (split_numbers(published), split_numbers(measured));
    a == b && x.len() == y.len() && x.iter().zip(&y).all(|((p, slack), (m, _))| (p - m).abs() <= *slack)
}

#[test]
fn figures_compare_exactly_in_counts_and_within_rounding_in_iou_and_pixels() {
    let table = "| a.jpg | 5 (93) | 5 (94) | 0.93 | 0 |";
    assert!(same_figures(table, "| a.jpg | 5 (93) | 5 (95) | 0.94 | 0 |"));
    assert!(!same_figures(table, "| a.jpg | 5 (93) | 4 (94) | 0.93 | 0 |"), "a lost face is drift");
    assert!(!same_figures(table, "| a.jpg | 5 (93) | 5 (94) | 0.91 | 0 |"), "so is a box moved");
    assert!(!same_figures(table, "| a.jpg | 5 (93) | 5 (94) | 0.93 | 1 |"), "and an extra face");
    assert!(!same_figures(table, "| b.jpg | 5 (93) | 5 (94) | 0.93 | 0 |"));
}
