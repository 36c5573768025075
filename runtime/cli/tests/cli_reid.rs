//! People, not tracks (issue 24), end to end as a user feeds stills: a PNG sequence of the
//! sample media's people, each shown, then gone for a second of empty frames, then back with
//! another frame or expression, through `emoedge run --source "multifilesrc … ! pngdec"`.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use emoedge_tests::media;
use emoedge_vision::video::VideoSource;
use image::{RgbImage, imageops};

const W: u32 = 960;
const H: u32 = 640;
/// Frames of one appearance and of the empty gap after it (the tracker lets a track go after
/// 15 missed frames).
const SHOWN: u64 = 20;
const GAP: u64 = 25;

/// Frame `index` of the sample video (or the still, frame 0) `name`.
fn video_frame(name: &str, index: u64) -> RgbImage {
    let mut source = VideoSource::open(&media(name)).unwrap();
    loop {
        let frame = source.next_frame().unwrap().expect("the video has that frame");
        if frame.index == index {
            return frame.image;
        }
    }
}

fn still(name: &str) -> RgbImage {
    video_frame(name, 0)
}

/// `picture` scaled by `scale` of what fits the canvas, placed with its left edge at `left`
/// (a fraction of the free width).
fn canvas(picture: &RgbImage, scale: f32, left: f32) -> RgbImage {
    let fit = (W as f32 / picture.width() as f32).min(H as f32 / picture.height() as f32) * scale;
    let (w, h) = ((picture.width() as f32 * fit) as u32, (picture.height() as f32 * fit) as u32);
    let resized = imageops::resize(picture, w, h, imageops::FilterType::Triangle);
    let mut out = RgbImage::new(W, H);
    imageops::replace(&mut out, &resized, ((W - w) as f32 * left) as i64, ((H - h) / 2) as i64);
    out
}

/// The appearances, in order: (who, picture). The five of multi_face.jpg are one appearance.
fn appearances() -> Vec<(&'static str, RgbImage)> {
    let five = still("multi_face.jpg");
    vec![
        ("man", canvas(&still("single_face.jpg"), 0.8, 0.5)),
        ("woman", canvas(&video_frame("WolfgangLanger_Pexels.mp4", 25), 1.0, 0.5)),
        ("five", canvas(&five, 1.0, 0.5)),
        ("man", canvas(&video_frame("face_noface.mov", 40), 1.0, 0.5)),
        ("woman", canvas(&video_frame("WolfgangLanger_Pexels.mp4", 400), 1.0, 0.5)),
        ("five", canvas(&five, 0.9, 0.2)),
        ("unseen", canvas(&still("0-f1-su-ph.jpg"), 0.8, 0.5)),
    ]
}

/// Writes the sequence as numbered PNGs; returns the first frame of each appearance.
fn write_sequence(dir: &Path) -> Vec<(&'static str, u64)> {
    let (mut index, mut starts) = (0u64, Vec::new());
    let black = RgbImage::new(W, H);
    for (who, picture) in appearances() {
        starts.push((who, index));
        for frame in 0..SHOWN + GAP {
            let image = if frame < SHOWN { &picture } else { &black };
            image.save(dir.join(format!("{index:05}.png"))).unwrap();
            index += 1;
        }
    }
    starts
}

/// The persons of each appearance, from `results.jsonl`: per face (left to right), the set of
/// person ids its lines carried.
fn persons(results: &str, starts: &[(&str, u64)]) -> Vec<Vec<BTreeSet<u64>>> {
    let mut seen: Vec<BTreeMap<u64, (f64, BTreeSet<u64>)>> = vec![BTreeMap::new(); starts.len()];
    for line in results.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let frame = v["pts_ns"].as_u64().unwrap() / 40_000_000;
        let appearance = starts.iter().rposition(|&(_, start)| start <= frame).unwrap();
        let Some(person) = v["person"].as_u64() else { continue };
        let entry = seen[appearance].entry(v["track"].as_u64().unwrap()).or_insert((f64::MAX, BTreeSet::new()));
        entry.0 = entry.0.min(v["bbox"][0].as_f64().unwrap());
        entry.1.insert(person);
    }
    seen.into_iter()
        .map(|tracks| {
            let mut faces: Vec<(f64, BTreeSet<u64>)> = tracks.into_values().collect();
            faces.sort_by(|a, b| a.0.total_cmp(&b.0));
            faces.into_iter().map(|(_, persons)| persons).collect()
        })
        .collect()
}

/// The one person of each face of an appearance (a face whose tracks carried two ids fails).
fn single(appearance: &[BTreeSet<u64>], what: &str) -> Vec<u64> {
    appearance
        .iter()
        .map(|ids| {
            assert_eq!(ids.len(), 1, "{what}: one face got person ids {ids:?}");
            ids.iter().copied().next().unwrap()
        })
        .collect()
}

#[test]
fn every_return_takes_its_earlier_person_id_and_no_two_people_share_one() {
    let frames = tempfile::tempdir().unwrap();
    let starts = write_sequence(frames.path());
    let out = tempfile::tempdir().unwrap();
    let source = format!(
        "multifilesrc location={}/%05d.png index=0 caps=image/png,framerate=25/1 ! pngdec ! videoconvert",
        frames.path().display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_emoedge"))
        .args([
            "run",
            "--source",
            &source,
            "--out",
            out.path().to_str().unwrap(),
            "--execution-provider",
            "cpu",
            "--reid",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let results = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
    let found = persons(&results, &starts);
    let ids: Vec<Vec<u64>> = found.iter().zip(&starts).map(|(a, (who, _))| single(a, who)).collect();
    assert_eq!(ids.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 5, 1, 1, 5, 1], "faces per appearance: {ids:?}");
    assert_eq!(ids[3], ids[0], "the man returns as himself: {ids:?}");
    assert_eq!(ids[4], ids[1], "the woman returns as herself: {ids:?}");
    assert_eq!(ids[5], ids[2], "each of the five returns as themself, in the same order: {ids:?}");
    let distinct: BTreeSet<u64> = ids[..3].iter().flatten().chain(&ids[6]).copied().collect();
    assert_eq!(distinct.len(), 8, "eight people, eight ids: {ids:?}");
    for person in &distinct {
        assert!(out.path().join(format!("timeline-person-{person}.png")).is_file(), "person {person}'s timeline");
    }
}

fn emoedge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_emoedge")).args(args).output().unwrap()
}

fn succeeded(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The person ids of each stream's lines in `out`'s results.
fn persons_per_stream(out: &Path) -> BTreeMap<u64, BTreeSet<u64>> {
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let mut persons: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for line in results.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(person) = v["person"].as_u64() {
            persons.entry(v["stream"].as_u64().unwrap()).or_default().insert(person);
        }
    }
    persons
}

/// Every file under `dir`, read whole.
fn every_file(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(every_file(&path));
        } else {
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

#[test]
fn one_person_on_two_cameras_keeps_one_id_and_a_kept_gallery_stays_private_until_forgotten() {
    let out = tempfile::tempdir().unwrap();
    let private = tempfile::tempdir().unwrap();
    let gallery = private.path().join("people.json");
    let (out_dir, gallery_file) = (out.path().to_str().unwrap(), gallery.to_str().unwrap());
    // The man on two streams of one run: one person.
    let stdout = succeeded(&emoedge(&[
        "run",
        &media("face_noface.mov"),
        &media("noface_face.mov"),
        "--out",
        out_dir,
        "--reid",
        "--gallery",
        gallery_file,
    ]));
    let persons = persons_per_stream(out.path());
    assert_eq!(persons.len(), 2, "both streams identified him: {persons:?}");
    assert_eq!(persons[&0], persons[&1], "one person across the cameras: {persons:?}");
    assert_eq!(persons[&0].len(), 1, "{persons:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&gallery).unwrap().permissions().mode() & 0o777, 0o600);

    // The embeddings the gallery keeps appear in no output of the run: not as bytes, not as text.
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&gallery).unwrap()).unwrap();
    let embedding: Vec<f32> =
        stored["persons"][0]["embeddings"][0].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    let bytes: Vec<u8> = embedding[..8].iter().flat_map(|v| v.to_le_bytes()).collect();
    let texts: Vec<String> = embedding[..16].iter().filter(|v| v.abs() > 1e-3).map(|v| v.to_string()).collect();
    let mut outputs = every_file(out.path());
    outputs.push(("stdout".into(), stdout.into_bytes()));
    for (name, content) in &outputs {
        assert!(!content.windows(bytes.len()).any(|w| w == bytes), "{name} holds embedding bytes");
        let text = String::from_utf8_lossy(content);
        for value in &texts {
            assert!(!text.contains(value.as_str()), "{name} holds the embedding value {value}");
        }
    }

    // The next run knows him by the same id; `forget` deletes the file and refuses others.
    let again = tempfile::tempdir().unwrap();
    succeeded(&emoedge(&[
        "run",
        &media("noface_face.mov"),
        "--out",
        again.path().to_str().unwrap(),
        "--reid",
        "--gallery",
        gallery_file,
    ]));
    assert_eq!(persons_per_stream(again.path())[&0], persons[&0], "the kept gallery holds his id across runs");
    let not_a_gallery = private.path().join("notes.txt");
    std::fs::write(&not_a_gallery, "keep me").unwrap();
    let refused = emoedge(&["forget", not_a_gallery.to_str().unwrap()]);
    assert!(!refused.status.success() && not_a_gallery.is_file(), "only galleries are forgotten");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nothing was deleted"));
    let forgot = succeeded(&emoedge(&["forget", gallery_file]));
    assert!(forgot.contains("forgot 1 people") && !gallery.exists(), "{forgot}");
}

/// Mean absolute difference of two images inside `b` ([x, y, w, h]).
fn difference(a: &RgbImage, b: &RgbImage, r: [f64; 4]) -> f64 {
    let (x0, y0, x1, y1) = (r[0] as u32, r[1] as u32, (r[0] + r[2]) as u32, (r[1] + r[3]) as u32);
    let pixels: Vec<f64> = (y0..y1.min(a.height()))
        .flat_map(|y| (x0..x1.min(a.width())).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            (0..3).map(move |c| (f64::from(a.get_pixel(x, y)[c]) - f64::from(b.get_pixel(x, y)[c])).abs())
        })
        .collect();
    pixels.iter().sum::<f64>() / pixels.len() as f64
}

#[test]
fn blur_faces_leaves_nothing_of_the_face_in_the_annotated_video() {
    let mut changed = Vec::new();
    for blur in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let video = out.path().join("annotated.mp4");
        let mut args = vec!["run", "--out", out.path().to_str().unwrap(), "--annotate", video.to_str().unwrap()];
        let input = media("single_face.mp4");
        args.insert(1, &input);
        if blur {
            args.push("--blur-faces");
        }
        succeeded(&emoedge(&args));
        let results = std::fs::read_to_string(out.path().join("results.jsonl")).unwrap();
        let line: serde_json::Value = serde_json::from_str(results.lines().nth(20).unwrap()).unwrap();
        let b: Vec<f64> = line["bbox"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        // The annotated video's frame at the input frame the line belongs to.
        let mut source = VideoSource::open(&input).unwrap();
        let original = loop {
            let frame = source.next_frame().unwrap().expect("the input has the line's frame");
            if frame.pts_ns == line["pts_ns"].as_u64() {
                break frame;
            }
        };
        let index = original.index;
        let mut annotated = VideoSource::open(video.to_str().unwrap()).unwrap();
        let frame = loop {
            let frame = annotated.next_frame().unwrap().expect("the annotated video has every frame");
            if frame.index == index {
                break frame;
            }
        };
        // Inside the drawn box's border: the face as it was, or not.
        let inside = [b[0] + 6.0, b[1] + 6.0, b[2] - 12.0, b[3] - 12.0];
        changed.push(difference(&frame.image, &original.image, inside));
    }
    assert!(changed[0] < 10.0, "unblurred, the face is the input's but for encoding: {changed:?}");
    assert!(changed[1] > 2.0 * changed[0], "blurred, little of the face is left: {changed:?}");
}
