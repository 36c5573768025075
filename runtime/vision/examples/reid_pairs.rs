//! How well a face embedder tells the people of the sample media apart (issue 24): the cosine
//! distributions of same-person and different-person pairs, and the cost per face.
//!
//! ```text
//! cargo run -p emoedge-exporter -- embedder --tfjs assets/reid/tfjs --net mobilefacenet --out /tmp/mobilefacenet
//! cargo run -p emoedge-vision --example reid_pairs -- /tmp/mobilefacenet
//! ```
//! Who is who: the man of `face_noface.mov`, `noface_face.mov` and `single_face.jpg`; the
//! woman of `WolfgangLanger_Pexels.mp4`; the five of `multi_face.jpg`; the four people of the
//! `*-ph.jpg` portraits; the person of `BWPictureHuman.jpg`; the faces of each face-api group
//! photo (different people within a photo; pairs across those photos are not labelled and
//! not counted).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use emoedge_inference::embedder::{Embedding, FaceEmbedder, cosine};
use emoedge_inference::model::Precision;
use emoedge_inference::onnx::SessionOptions;
use emoedge_vision::capture::{CaptureOptions, FaceCapture};
use emoedge_vision::face::identity_crop;
use emoedge_vision::reid::quality::{FaceQuality, QualityGate};
use emoedge_vision::video::VideoSource;

/// A labelled face: who, and the group in which unlabelled pairs are not compared.
struct Sample {
    person: String,
    group: String,
    embedding: Embedding,
    good: bool,
}

/// (file, person label or `None` = each face its own person, frame step).
const MEDIA: &[(&str, Option<&str>, u64)] = &[
    ("face_noface.mov", Some("man"), 10),
    ("noface_face.mov", Some("man"), 10),
    ("single_face.jpg", Some("man"), 1),
    ("WolfgangLanger_Pexels.mp4", Some("woman"), 20),
    ("multi_face.jpg", None, 1),
    ("0-f1-su-ph.jpg", Some("f1"), 1),
    ("0-f15-hao-ph.jpg", Some("f15"), 1),
    ("15-f13-anc-ph.jpg", Some("f13"), 1),
    ("45-m7-di-ph.jpg", Some("m7"), 1),
    ("BWPictureHuman.jpg", Some("bw"), 1),
    ("faceapi-sample1.jpg", None, 1),
    ("faceapi-sample2.jpg", None, 1),
    ("faceapi-sample3.jpg", None, 1),
    ("faceapi-sample4.jpg", None, 1),
    ("faceapi-sample5.jpg", None, 1),
    ("faceapi-sample6.jpg", None, 1),
];

fn summary(name: &str, mut values: Vec<f32>) {
    values.sort_by(f32::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:>18}: n={:6}  min {:.3}  p1 {:.3}  p5 {:.3}  median {:.3}  p95 {:.3}  p99 {:.3}  max {:.3}",
        values.len(),
        at(0.0),
        at(0.01),
        at(0.05),
        at(0.5),
        at(0.95),
        at(0.99),
        at(1.0)
    );
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: reid_pairs EMBEDDER_DIR");
    let assets = emoedge_tests::assets();
    let mut embedder = FaceEmbedder::open(Path::new(&dir), Precision::Fp32, &SessionOptions::default()).unwrap();
    let mut capture = FaceCapture::open(&CaptureOptions::new(assets.join("detectors/mtcnn"), 64)).unwrap();
    let (side, template) = (embedder.side() as u32, embedder.template());
    let (mut samples, mut busy, mut faces) = (Vec::new(), Duration::ZERO, 0u32);
    for &(file, label, step) in MEDIA {
        let mut source = VideoSource::open(&assets.join("media").join(file).display().to_string()).unwrap();
        while let Some(frame) = source.next_frame().unwrap() {
            let found = capture.process(&frame).unwrap();
            if frame.index % step != 0 {
                continue;
            }
            for (k, face) in found.iter().enumerate() {
                let crop = identity_crop(&frame.image, &face.face, &template, side);
                let quality = FaceQuality::of(&face.face, &crop);
                let good = quality.passes(&QualityGate::default());
                println!("{file} frame {} face {k}: {quality:?} good {good}", frame.index);
                let pixels: Vec<f32> = crop.as_raw().iter().map(|&p| p as f32).collect();
                let start = Instant::now();
                let embedding = embedder.embed(&pixels, 1).unwrap().remove(0);
                busy += start.elapsed();
                faces += 1;
                let person = label.map_or_else(|| format!("{file}#{k}"), str::to_string);
                let group = if label.is_some() { "labelled".to_string() } else { file.to_string() };
                samples.push(Sample { person, group, embedding, good });
            }
        }
    }
    println!("{dir}: {} faces, {:.2} ms per face (FP32, CPU, batch 1)", faces, busy.as_secs_f64() * 1e3 / faces as f64);
    pairs("all faces", &samples);
    let good: Vec<Sample> = samples.into_iter().filter(|s| s.good).collect();
    pairs(&format!("{} faces passing the quality gate", good.len()), &good);
}

fn pairs(title: &str, samples: &[Sample]) {
    println!("{title}");
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            let c = cosine(&a.embedding, &b.embedding);
            if a.person == b.person {
                same.push(c);
            } else if a.group == b.group || a.group == "labelled" || b.group == "labelled" {
                different.push(c);
            }
        }
    }
    summary("same person", same);
    if std::env::var_os("REID_PAIRS_WORST").is_some() {
        let mut worst: Vec<(f32, &str, &str)> = Vec::new();
        for (i, a) in samples.iter().enumerate() {
            for b in &samples[i + 1..] {
                if a.person != b.person && (a.group == b.group || a.group == "labelled" || b.group == "labelled") {
                    worst.push((cosine(&a.embedding, &b.embedding), &a.person, &b.person));
                }
            }
        }
        worst.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("closest different people: {:?}", &worst[..worst.len().min(12)]);
    }
    let mut people: Vec<&str> = samples.iter().map(|s| s.person.as_str()).collect();
    people.dedup();
    for person in people {
        let faces: Vec<&Sample> = samples.iter().filter(|s| s.person == person).collect();
        let within: Vec<f32> = faces
            .iter()
            .enumerate()
            .flat_map(|(i, a)| faces[i + 1..].iter().map(|b| cosine(&a.embedding, &b.embedding)))
            .collect();
        if within.len() > 1 {
            summary(&format!("same: {person}"), within);
        }
    }
    summary("different people", different);
}
