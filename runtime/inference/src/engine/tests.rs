//! The engine's bookkeeping — windowing, interval, smoothing, forgetting — against a fake model
//! whose outputs follow from its inputs.

use super::*;
use crate::model::{ClipResult, FaceFeatures};
use emoedge_models::Preprocessing;

/// Crops are 2×2; a crop's grey level `v` encodes to `pooled = [v]`; a clip's probabilities
/// are `[m, 1 − m]` with `m` the mean of its encodings (in [0, 1]).
struct Fake {
    labels: Vec<String>,
    preprocessing: Preprocessing,
    frame_calls: Vec<usize>,
    clip_calls: Vec<usize>,
}

impl Fake {
    fn new() -> Self {
        let preprocessing = Preprocessing { mean: [0.0; 3], std: [1.0; 3], ..Preprocessing::default() };
        Self { labels: vec!["up".into(), "down".into()], preprocessing, frame_calls: vec![], clip_calls: vec![] }
    }
}

impl EmotionBackend for Fake {
    fn crop_size(&self) -> usize {
        2
    }
    fn clip_length(&self) -> usize {
        3
    }
    fn labels(&self) -> &[String] {
        &self.labels
    }
    fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }
    fn frame_features(&mut self, faces: &[f32], n: usize) -> Result<Vec<FaceFeatures>, OnnxError> {
        self.frame_calls.push(n);
        Ok(faces
            .chunks(12)
            .map(|planar| FaceFeatures { general: vec![], emotion: vec![], pooled: vec![planar[0]] })
            .collect())
    }
    fn classify_clips(&mut self, clips: &[&[FaceFeatures]]) -> Result<Vec<ClipResult>, OnnxError> {
        self.clip_calls.push(clips.len());
        Ok(clips
            .iter()
            .map(|clip| {
                let m = clip.iter().map(|f| f.pooled[0]).sum::<f32>() / clip.len() as f32;
                ClipResult {
                    emotion_probs: vec![m, 1.0 - m],
                    emotion_logits: vec![],
                    gate: [0.5, 0.5],
                    general_logits: vec![],
                }
            })
            .collect())
    }
    fn busy(&self) -> (Duration, Duration) {
        (Duration::ZERO, Duration::ZERO)
    }
}

fn grey(level: u8) -> RgbImage {
    RgbImage::from_pixel(2, 2, image::Rgb([level; 3]))
}

fn engine(options: EngineOptions) -> EmotionEngine<Fake> {
    EmotionEngine::new(Fake::new(), options)
}

/// The clip head's window: the fake's probabilities are the mean of the window's encodings.
fn clip_head() -> EngineOptions {
    EngineOptions { window: Window::ClipHead, ..Default::default() }
}

fn probability(result: &TrackEmotion) -> Option<f32> {
    result.emotion.as_ref().map(|e| e.probabilities[0])
}

#[test]
fn a_track_has_an_emotion_once_its_window_is_full_and_the_window_slides() {
    let mut e = engine(EngineOptions { smoothing: 0.0, ..clip_head() });
    let (white, black) = (grey(255), grey(0));
    let mut seen = Vec::new();
    for (frame, crop) in [&white, &white, &white, &black].into_iter().enumerate() {
        let out = e.process(frame as u64, &[TrackedCrop { track: 7, crop }]).unwrap();
        seen.push((out[0].fresh, probability(&out[0])));
    }
    assert_eq!(seen[..2], [(false, None), (false, None)], "no clip before T = 3 encodings");
    assert_eq!(seen[2], (true, Some(1.0)));
    let slid = seen[3].1.unwrap();
    assert!((slid - 2.0 / 3.0).abs() < 1e-6, "the oldest encoding left the window: {slid}");
    assert_eq!(e.backend().frame_calls, vec![1; 4]);
    assert_eq!(e.stats().clips_classified, 2);
}

#[test]
fn interval_encodes_every_nth_appearance_and_carries_the_emotion_over() {
    let mut e = engine(EngineOptions { interval: 2, smoothing: 0.0, ..clip_head() });
    let crop = grey(255);
    let fresh: Vec<bool> =
        (0..8).map(|f| e.process(f, &[TrackedCrop { track: 1, crop: &crop }]).unwrap()[0].fresh).collect();
    assert_eq!(e.stats().faces_encoded, 4, "frames 0, 2, 4, 6");
    assert_eq!(fresh, [false, false, false, false, true, false, true, false]);
    let carried = e.process(8, &[TrackedCrop { track: 1, crop: &crop }]).unwrap();
    assert!(carried[0].emotion.is_some());
}

#[test]
fn smoothing_blends_the_previous_probabilities() {
    let mut e = engine(EngineOptions { smoothing: 0.5, ..clip_head() });
    let (white, black) = (grey(255), grey(0));
    let mut last = None;
    for (frame, crop) in [&white, &white, &white, &black, &black, &black].into_iter().enumerate() {
        last = probability(&e.process(frame as u64, &[TrackedCrop { track: 3, crop }]).unwrap()[0]);
    }
    // Clips: 1, 2/3, 1/3, 0 → smoothed 1, 5/6, 7/12, 7/24.
    let p = last.unwrap();
    assert!((p - 7.0 / 24.0).abs() < 1e-6, "{p}");
}

#[test]
fn faces_of_one_frame_share_calls_and_unseen_tracks_are_forgotten() {
    let mut e = engine(EngineOptions { smoothing: 0.0, forget_after: 2, ..clip_head() });
    let crop = grey(128);
    let both = [TrackedCrop { track: 1, crop: &crop }, TrackedCrop { track: 2, crop: &crop }];
    for frame in 0..3 {
        let out = e.process(frame, &both).unwrap();
        assert_eq!(out.iter().map(|r| r.track).collect::<Vec<_>>(), vec![1, 2], "results follow the input order");
    }
    assert_eq!(e.backend().frame_calls, vec![2, 2, 2]);
    assert_eq!(e.backend().clip_calls, vec![2], "both windows in one clip call");
    // Track 1 is away for 3 frames (> forget_after): it starts over; track 2 keeps its window.
    for frame in 3..6 {
        e.process(frame, &both[1..]).unwrap();
    }
    let back = e.process(6, &both).unwrap();
    assert_eq!(back[0].emotion, None, "track 1 was forgotten");
    assert!(back[1].emotion.is_some());
}

#[test]
fn a_crop_of_the_wrong_size_is_an_error_not_a_panic() {
    let mut e = engine(clip_head());
    let big = RgbImage::new(3, 3);
    let error = e.process(0, &[TrackedCrop { track: 1, crop: &big }]).unwrap_err();
    assert!(error.to_string().contains("3×3 crop"), "{error}");
}

#[test]
fn the_mean_of_frames_classifies_each_frame_alone_and_averages_their_log_probabilities() {
    let mut e = engine(EngineOptions { smoothing: 0.0, ..Default::default() });
    assert_eq!(EngineOptions::default().window, Window::MeanOfFrames, "the default");
    // Grey levels 204, 204, 51 encode to 0.8, 0.8, 0.2: alone, [0.8, 0.2] twice and [0.2, 0.8].
    let (light, dark) = (grey(204), grey(51));
    let mut seen = Vec::new();
    for (frame, crop) in [&light, &light, &dark].into_iter().enumerate() {
        let out = e.process(frame as u64, &[TrackedCrop { track: 4, crop }]).unwrap();
        seen.push((out[0].fresh, probability(&out[0])));
    }
    assert_eq!(seen[..2], [(false, None), (false, None)], "no result before T = 3 frames");
    // Mean log-probabilities differ by ln(4)/3 between the labels: p = 4^(1/3) / (4^(1/3) + 1).
    let expected = 4f32.powf(1.0 / 3.0) / (4f32.powf(1.0 / 3.0) + 1.0);
    let p = seen[2].1.unwrap();
    assert!(seen[2].0 && (p - expected).abs() < 1e-4, "{p} vs {expected}");
    assert_eq!(e.backend().clip_calls, vec![1, 1, 1], "every frame is classified, as a still, as it comes");
    assert_eq!(e.stats().clips_classified, 3);
}
