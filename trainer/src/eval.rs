//! `emoedge-train eval`: scores a run (the burn reference, gated) or exported bundle variants
//! (ONNX Runtime) on labelled faces — the recipe's evaluation sets of people never trained on
//! (with `--teachers`, beside the teachers on the very same clips), or the user's own labelled
//! faces (`--images`, see [`crate::labelled`]). Writes `eval.json` (per set and predictor:
//! accuracy with a 95% bootstrap interval, UAR, recall and count per class, faces not found),
//! `eval.md` and a confusion matrix PNG per set.
//!
//! A recipe set is captured when it is scored, by the runtime's face capture: a still is one
//! crop (repeated T times, as the runtime's first result on a face sees it); a video contributes
//! every window of T consecutive frames of its subject that lies inside one labelled segment —
//! what the runtime classifies on each frame once a track has T encodings. A teacher's answer
//! for a clip is its probabilities averaged over the clip's frames. The bootstrap resamples
//! whole stills and whole seconds of video (overlapping windows are not independent evidence).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use emoedge_inference::model::EmotionModel;
use emoedge_inference::onnx::SessionOptions;
use emoedge_models::manifest::Variant;
use emoedge_models::reference::Routing;
use emoedge_models::{EMOTIONS, Preprocessing};
use emoedge_vision::capture::FaceCapture;

use crate::data::{Example, Split, Target, load_crop};
use crate::metrics::{Confusion, bootstrap_accuracy};
use crate::prepare::{Row, Source, capture_sources, most_seen, windows_every};
use crate::recipe::EvalSet;
use crate::teachers::{ENSEMBLE, Teachers};
use crate::train::batch::{Sampling, pick_frames};
use crate::train::{Item, Task, evaluate};

/// A recipe set's captured faces: crops on disk, each with its label.
pub struct CapturedSet {
    /// The stills' faces first (one each), then the video's.
    pub rows: Vec<Row>,
    /// How many of `rows` are stills.
    pub stills: usize,
    pub labels: Vec<String>,
    /// Stills in which no face was found.
    pub not_found: Vec<String>,
}

/// Every face crop of `set` with the label the recipe gives it (stills: the largest face;
/// video: the subject's frames inside a labelled segment), cut by the runtime's face capture
/// into `out`. A still without a face is listed, not fatal.
pub fn capture_set(
    set: &EvalSet,
    assets: &Path,
    out: &Path,
    capture: &mut FaceCapture,
    size: u32,
) -> anyhow::Result<CapturedSet> {
    let mut captured = CapturedSet { rows: Vec::new(), stills: 0, labels: Vec::new(), not_found: Vec::new() };
    for (image, label) in &set.images {
        let source = Source { path: assets.join(image), split: Split::Test };
        let rows = capture_sources(std::slice::from_ref(&source), out, 1, capture, size)?;
        // The label describes the still's subject: its largest face.
        match rows.into_iter().max_by(|a, b| a.side.total_cmp(&b.side)) {
            Some(row) => {
                captured.rows.push(row);
                captured.labels.push(label.clone());
            }
            None => captured.not_found.push(format!("{}: no face found", image.display())),
        }
    }
    captured.stills = captured.rows.len();
    if let Some(video) = &set.video {
        let source = Source { path: assets.join(video), split: Split::Test };
        let rows = capture_sources(std::slice::from_ref(&source), out, 1, capture, size)?;
        let subject = most_seen(rows.iter().filter_map(|r| r.track.map(|(track, _)| track)));
        for row in rows.into_iter().filter(|r| r.track.map(|(t, _)| t) == subject) {
            if let Some(label) = row.seconds.and_then(|s| set.label_at(s)) {
                captured.labels.push(label.to_string());
                captured.rows.push(row);
            }
        }
    }
    Ok(captured)
}

/// Labelled examples, ready to score: what one row of `eval.json` is computed on.
pub struct LabelledSet {
    pub name: String,
    pub about: String,
    pub people: usize,
    pub examples: Vec<Example>,
    /// Per example, the unit the bootstrap resamples (a person, a still, a second of video).
    pub groups: Vec<String>,
    pub not_found: Vec<String>,
    /// Teachers' top-1 per example, by teacher name (empty unless asked for).
    pub teachers: Vec<(String, Vec<usize>)>,
}

/// Captures `set` and cuts it into clips (stills first, then the video's windows inside one
/// labelled segment), with the teachers' answers when `teachers` is given.
pub fn recipe_set(
    set: &EvalSet,
    assets: &Path,
    capture: &mut FaceCapture,
    clip_length: usize,
    teachers: Option<&Teachers>,
) -> anyhow::Result<LabelledSet> {
    let scratch = tempfile::tempdir()?;
    let size = emoedge_models::Config::default().crop_size as u32;
    let CapturedSet { rows, stills, labels, not_found } = capture_set(set, assets, scratch.path(), capture, size)?;
    let mut clips: Vec<Vec<usize>> = (0..stills).map(|i| vec![i]).collect();
    clips.extend(
        windows_every(&rows[stills..], clip_length, 1)
            .into_iter()
            .map(|w| w.into_iter().map(|i| i + stills).collect::<Vec<_>>())
            .filter(|w| w.iter().all(|&i| labels[i] == labels[w[0]])),
    );
    let mut examples = Vec::with_capacity(clips.len());
    for clip in &clips {
        let frames = clip.iter().map(|&i| load_crop(&rows[i].student, size).map(Arc::new)).collect::<Result<_, _>>()?;
        let target = Target::Hard(emoedge_models::labels::canonical_index(&labels[clip[0]])?);
        examples.push(Example { frames, target, split: Split::Test, source: rows[clip[0]].source.clone() });
    }
    let groups = clips
        .iter()
        .map(|clip| match rows[clip[0]].seconds {
            Some(seconds) if clip.len() > 1 => format!("{}@{}s", rows[clip[0]].source, seconds.floor()),
            _ => rows[clip[0]].source.clone(),
        })
        .collect();
    let teachers = match teachers {
        Some(teachers) => teacher_answers(teachers, &rows, &clips)?,
        None => Vec::new(),
    };
    Ok(LabelledSet {
        name: set.name.clone(),
        about: set.about.clone(),
        people: set.people,
        examples,
        groups,
        not_found,
        teachers,
    })
}

/// Each teacher's (and the ensemble's) top-1 per clip, from its probabilities averaged over the
/// clip's frames.
fn teacher_answers(
    teachers: &Teachers,
    rows: &[Row],
    clips: &[Vec<usize>],
) -> anyhow::Result<Vec<(String, Vec<usize>)>> {
    let answers = teachers.label(&rows.iter().map(|r| r.teacher.clone()).collect::<Vec<_>>())?;
    let top = |pick: &dyn Fn(usize) -> [f32; 7]| -> Vec<usize> {
        clips
            .iter()
            .map(|clip| {
                let mean: [f32; 7] = std::array::from_fn(|k| clip.iter().map(|&i| pick(i)[k]).sum::<f32>());
                emoedge_models::argmax(&mean)
            })
            .collect()
    };
    let mut out: Vec<(String, Vec<usize>)> = ENSEMBLE
        .iter()
        .enumerate()
        .map(|(t, (_, name))| (name.to_string(), top(&|i| answers[i].teachers[t])))
        .collect();
    out.push(("ensemble".into(), top(&|i| answers[i].ensemble)));
    Ok(out)
}

/// What is scored: a training run (reference forward) or a bundle variant (ONNX Runtime).
pub enum Scored {
    Run(PathBuf),
    /// A run's frame model alone: each of a window's T frames classified as a still (the frame
    /// repeated), their log-probabilities averaged — the simplest use of time, against which
    /// the clip head has to earn its place.
    RunFrameMean(PathBuf),
    Bundle {
        dir: PathBuf,
        variant: Variant,
    },
}

impl Scored {
    /// The predictor's name in tables: `student`, or `student fp16` for a bundle variant.
    pub fn name(&self) -> String {
        match self {
            Scored::Run(_) => "student".into(),
            Scored::RunFrameMean(_) => "student, mean of frames".into(),
            Scored::Bundle { variant, .. } => format!("student {}", variant.name()),
        }
    }
}

/// One set's result for one predictor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    pub predictor: String,
    pub accuracy: f64,
    /// 95% percentile-bootstrap interval on `accuracy`, resampling whole groups (people,
    /// stills, seconds of video); seeded, so it reproduces.
    pub accuracy_ci95: Option<[f64; 2]>,
    pub uar: f64,
    /// Recall of each class that occurs, by canonical name.
    pub recall: BTreeMap<String, f64>,
    /// Examples of each class that occurs, by canonical name.
    pub count: BTreeMap<String, u64>,
    /// Distinct labels predicted over the set.
    pub distinct_predictions: usize,
    pub confusion: Confusion,
}

impl Score {
    fn of(predictor: &str, truth: &[usize], predicted: &[usize], groups: &[String]) -> Self {
        let mut confusion = Confusion::new(EMOTIONS.len());
        let mut by_group: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for ((&t, &p), group) in truth.iter().zip(predicted).zip(groups) {
            confusion.add(t, p);
            let tally = by_group.entry(group).or_default();
            tally.0 += u64::from(t == p);
            tally.1 += 1;
        }
        let occurring = || confusion.counts.iter().enumerate().filter(|(_, row)| row.iter().sum::<u64>() > 0);
        let recall = occurring()
            .map(|(i, row)| (EMOTIONS[i].to_string(), row[i] as f64 / row.iter().sum::<u64>() as f64))
            .collect();
        let count = occurring().map(|(i, row)| (EMOTIONS[i].to_string(), row.iter().sum())).collect();
        let groups: Vec<(u64, u64)> = by_group.into_values().collect();
        Self {
            predictor: predictor.into(),
            accuracy: confusion.war(),
            accuracy_ci95: bootstrap_accuracy(&groups, 0),
            uar: confusion.uar(),
            recall,
            count,
            distinct_predictions: predicted.iter().collect::<std::collections::BTreeSet<_>>().len(),
            confusion,
        }
    }

    /// Recall of each class that occurs, in canonical order, as `label recall% (n)`.
    fn recalls(&self) -> String {
        EMOTIONS
            .iter()
            .filter_map(|label| {
                let recall = self.recall.get(*label)?;
                Some(format!("{label} {:.0}% ({})", 100.0 * recall, self.count.get(*label).copied().unwrap_or(0)))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SetResult {
    pub set: String,
    pub about: String,
    pub people: usize,
    pub clips: usize,
    /// Inputs that gave no face (stills, photos), each with why: counted, not scored.
    #[serde(default)]
    pub not_found: Vec<String>,
    /// The scored models first, then each teacher and the ensemble.
    pub scores: Vec<Score>,
    /// The first scored model's top-1 per clip, in set order.
    pub predicted: Vec<usize>,
}

/// The model's top-1 for each example.
fn predict(scored: &Scored, examples: &[Example]) -> anyhow::Result<Vec<usize>> {
    match scored {
        Scored::Run(run) => {
            let (config, model) = crate::run::load_model(Some(run), None, 0)?;
            let items: Vec<Item> = examples.iter().map(|example| Item { task: Task::Emotion, example }).collect();
            Ok(evaluate(&model, &config, &items, Routing::Gated, config.general_classes).predicted)
        }
        Scored::RunFrameMean(run) => frame_mean(run, examples),
        Scored::Bundle { dir, variant } => {
            let mut model = EmotionModel::load(dir, *variant, &SessionOptions::offline())?;
            let (t, s) = (model.manifest.clip_length, model.manifest.config.crop_size);
            let pre = Preprocessing::default();
            let plane = 3 * s * s;
            let mut out = Vec::with_capacity(examples.len());
            for example in examples {
                // The runtime's view: T frames evenly spaced over the clip (a still repeated).
                let mut faces = vec![0.0f32; t * plane];
                for (k, chunk) in faces.chunks_exact_mut(plane).enumerate() {
                    pre.rgb8_to_planar(example.frames[k * example.frames.len() / t].as_raw(), s, chunk);
                }
                let result = model.classify(&faces, 1)?;
                out.push(emoedge_models::argmax(&result[0].emotion_probs));
            }
            Ok(out)
        }
    }
}

/// [`Scored::RunFrameMean`]'s top-1 for each example: its T frames picked as the clip model
/// picks them, each scored as a still (all of them in one pass), mean log-probability.
fn frame_mean(run: &Path, examples: &[Example]) -> anyhow::Result<Vec<usize>> {
    let (config, model) = crate::run::load_model(Some(run), None, 0)?;
    let t = config.clip_length;
    let stills: Vec<Example> = examples
        .iter()
        .flat_map(|example| {
            let picks = pick_frames::<rand_chacha::ChaCha8Rng>(example.frames.len(), t, &mut Sampling::Eval);
            picks.into_iter().map(|i| Example { frames: vec![example.frames[i].clone()], ..example.clone() })
        })
        .collect();
    let items: Vec<Item> = stills.iter().map(|example| Item { task: Task::Emotion, example }).collect();
    let probs = evaluate(&model, &config, &items, Routing::Gated, config.general_classes).emotion_probs;
    let mean_log = |window: &[[f32; 7]]| emoedge_models::mean_log_probs(window.iter().map(|p| p.as_slice()), 7);
    Ok(probs.chunks_exact(t).map(|window| emoedge_models::argmax(&mean_log(window))).collect())
}

/// Scores every predictor of `scored` (then the set's teachers) on `set`.
pub fn score_set(scored: &[Scored], set: &LabelledSet) -> anyhow::Result<SetResult> {
    anyhow::ensure!(!scored.is_empty(), "nothing to score: give --run RUN or --bundle DIR");
    let truth: Vec<usize> = set.examples.iter().map(|e| e.target.argmax()).collect();
    let mut scores = Vec::new();
    let mut first = None;
    for predictor in scored {
        let predicted = predict(predictor, &set.examples)?;
        scores.push(Score::of(&predictor.name(), &truth, &predicted, &set.groups));
        first.get_or_insert(predicted);
    }
    for (name, top) in &set.teachers {
        scores.push(Score::of(name, &truth, top, &set.groups));
    }
    Ok(SetResult {
        set: set.name.clone(),
        about: set.about.clone(),
        people: set.people,
        clips: set.examples.len(),
        not_found: set.not_found.clone(),
        scores,
        predicted: first.unwrap_or_default(),
    })
}

/// Writes `out/eval.json`, `out/eval.md` and a `confusion-<set>.png` per set (the first
/// predictor's).
pub fn write_results(out: &Path, results: &[SetResult]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    for result in results {
        if let Some(score) = result.scores.first() {
            crate::plot::confusion(
                &out.join(format!("confusion-{}.png", result.set)),
                &format!("{} on {}", score.predictor, result.set),
                &EMOTIONS,
                &score.confusion,
            )?;
        }
    }
    emoedge_support::write_atomic(&out.join("eval.json"), serde_json::to_string_pretty(results)?.as_bytes())?;
    emoedge_support::write_atomic(&out.join("eval.md"), table(results).as_bytes())?;
    Ok(())
}

/// Reads an `eval.json` that [`write_results`] wrote.
pub fn read_results(path: &Path) -> anyhow::Result<Vec<SetResult>> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not an eval.json: {e}", path.display()))
}

/// The results as a Markdown table, one row per set and predictor.
pub fn table(results: &[SetResult]) -> String {
    let mut text = Vec::new();
    let _ = writeln!(
        text,
        "| set (people, clips) | predictor | accuracy (95% interval) | UAR | distinct labels | recall per class (clips) |"
    );
    let _ = writeln!(text, "|---|---|---:|---:|---:|---|");
    for r in results {
        for s in &r.scores {
            let interval =
                s.accuracy_ci95.map_or(String::new(), |[lo, hi]| format!(" ({:.0}–{:.0}%)", 100.0 * lo, 100.0 * hi));
            let _ = writeln!(
                text,
                "| {} ({}, {}) | {} | {:.1}%{interval} | {:.1}% | {} | {} |",
                r.set,
                r.people,
                r.clips,
                s.predictor,
                100.0 * s.accuracy,
                100.0 * s.uar,
                s.distinct_predictions,
                s.recalls()
            );
        }
        if !r.not_found.is_empty() {
            let _ = writeln!(text, "| {} | no face found: {} | | | | |", r.set, r.not_found.len());
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}
