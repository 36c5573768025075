//! `emoedge-train eval`: scores a run (the burn reference, gated) or an exported bundle variant
//! (ONNX Runtime) on the recipe's named evaluation sets of people never trained on, beside
//! the teachers on the very same clips. Writes `eval.md` (accuracy, UAR, per-class recall),
//! `eval.json` and a confusion matrix PNG per set.
//!
//! Sets are captured by `emoedge-train data --recipe` into `DATA/eval/`: a still is one crop
//! (repeated T times, as the runtime's first result on a face sees it); a video contributes
//! every window of T consecutive frames of its subject that lies inside one labelled segment —
//! what the runtime classifies on each frame once a track has T encodings. A teacher's answer
//! for a clip is its probabilities averaged over the clip's frames, so teachers and student
//! are compared on the same frames.

use std::io::Write;
use std::path::{Path, PathBuf};

use emoedge_inference::model::EmotionModel;
use emoedge_inference::onnx::SessionOptions;
use emoedge_models::manifest::Variant;
use emoedge_models::reference::Routing;
use emoedge_models::{EMOTIONS, Preprocessing};
use emoedge_vision::capture::FaceCapture;

use crate::data::manifest::read_manifest;
use crate::data::{Example, Split};
use crate::metrics::Confusion;
use crate::prepare::{Row, Source, capture_sources, most_seen, windows_every};
use crate::recipe::EvalSet;
use crate::teachers::{ENSEMBLE, Teachers};
use crate::train::{Item, Task, evaluate};

/// Where an evaluation set's files live under `DATA/eval/`.
pub fn set_manifest(eval_dir: &Path, set: &str) -> PathBuf {
    eval_dir.join(format!("{set}.jsonl"))
}

fn set_teachers(eval_dir: &Path, set: &str) -> PathBuf {
    eval_dir.join(format!("{set}-teachers.jsonl"))
}

/// Every face crop of `set` with the label the recipe gives it (stills: the one face; video:
/// the subject's frames inside a labelled segment), cut by the runtime's face capture.
pub fn capture_set(
    set: &EvalSet,
    assets: &Path,
    out: &Path,
    capture: &mut FaceCapture,
    size: u32,
) -> anyhow::Result<Vec<(Row, String)>> {
    let mut labelled = Vec::new();
    for (image, label) in &set.images {
        let source = Source { path: assets.join(image), split: Split::Test };
        let mut rows = capture_sources(std::slice::from_ref(&source), out, 1, capture, size)?;
        anyhow::ensure!(rows.len() == 1, "{}: expected one face, found {}", source.path.display(), rows.len());
        labelled.push((rows.remove(0), label.clone()));
    }
    if let Some(video) = &set.video {
        let source = Source { path: assets.join(video), split: Split::Test };
        let rows = capture_sources(std::slice::from_ref(&source), out, 1, capture, size)?;
        let subject = most_seen(rows.iter().filter_map(|r| r.track.map(|(track, _)| track)));
        for row in rows.into_iter().filter(|r| r.track.map(|(t, _)| t) == subject) {
            if let Some(label) = row.seconds.and_then(|s| set.label_at(s)) {
                let label = label.to_string();
                labelled.push((row, label));
            }
        }
    }
    Ok(labelled)
}

/// Captures `set` into `eval_dir` and writes its clip manifest and the teachers' answers.
pub fn prepare_set(
    set: &EvalSet,
    assets: &Path,
    eval_dir: &Path,
    capture: &mut FaceCapture,
    size: u32,
    clip_length: usize,
    teachers: &Teachers,
) -> anyhow::Result<usize> {
    let folder = eval_dir.join(&set.name);
    let labelled = capture_set(set, assets, &folder, capture, size)?;
    let (rows, labels): (Vec<Row>, Vec<String>) = labelled.into_iter().unzip();
    // capture_set puts the stills first, one face each.
    let mut clips: Vec<Vec<usize>> = (0..set.images.len()).map(|i| vec![i]).collect();
    // Windows of the video's frames that stay inside one labelled segment.
    clips.extend(
        windows_every(&rows, clip_length, 1).into_iter().filter(|w| w.iter().all(|&i| labels[i] == labels[w[0]])),
    );
    let answers = teachers.label(&rows.iter().map(|r| r.teacher.clone()).collect::<Vec<_>>())?;
    let (mut lines, mut teacher_lines) = (Vec::new(), Vec::new());
    for clip in &clips {
        let crops: Vec<PathBuf> = clip
            .iter()
            .map(|&i| rows[i].student.strip_prefix(eval_dir).unwrap_or(&rows[i].student).to_path_buf())
            .collect();
        lines.push(serde_json::json!({ "crops": crops, "label": labels[clip[0]], "split": "test" }).to_string());
        let mean = |pick: &dyn Fn(usize) -> [f32; 7]| -> [f32; 7] {
            std::array::from_fn(|k| clip.iter().map(|&i| pick(i)[k]).sum::<f32>() / clip.len() as f32)
        };
        let mut line = serde_json::json!({ "ensemble": mean(&|i| answers[i].ensemble) });
        for (t, (_, name)) in ENSEMBLE.iter().enumerate() {
            line[*name] = serde_json::json!(mean(&|i| answers[i].teachers[t]));
        }
        teacher_lines.push(line.to_string());
    }
    write_lines(&set_manifest(eval_dir, &set.name), &lines)?;
    write_lines(&set_teachers(eval_dir, &set.name), &teacher_lines)?;
    Ok(clips.len())
}

fn write_lines(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    emoedge_support::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// What is scored: a training run (reference forward) or a bundle variant (ONNX Runtime).
pub enum Scored {
    Run(PathBuf),
    Bundle { dir: PathBuf, variant: Variant },
}

/// One set's result for one predictor.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Score {
    pub predictor: String,
    pub confusion: Confusion,
    pub accuracy: f64,
    pub uar: f64,
    /// Distinct labels predicted over the set.
    pub distinct_predictions: usize,
}

impl Score {
    fn of(predictor: &str, truth: &[usize], predicted: &[usize]) -> Self {
        let mut confusion = Confusion::new(EMOTIONS.len());
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion.add(t, p);
        }
        let distinct = predicted.iter().collect::<std::collections::BTreeSet<_>>().len();
        Self {
            predictor: predictor.into(),
            accuracy: confusion.war(),
            uar: confusion.uar(),
            confusion,
            distinct_predictions: distinct,
        }
    }

    /// Recall of each class that occurs, as `label recall%`.
    fn recalls(&self) -> String {
        let rows = self.confusion.counts.iter().enumerate().filter(|(_, row)| row.iter().sum::<u64>() > 0);
        rows.map(|(i, row)| format!("{} {:.0}%", EMOTIONS[i], 100.0 * row[i] as f64 / row.iter().sum::<u64>() as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SetResult {
    pub set: String,
    pub about: String,
    pub people: usize,
    pub clips: usize,
    /// The scored model first, then each teacher and the ensemble.
    pub scores: Vec<Score>,
    /// The scored model's top-1 per clip, in manifest order.
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
        Scored::Bundle { dir, variant } => {
            let mut model = EmotionModel::load(dir, *variant, &SessionOptions::default())?;
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

/// Scores `scored` on each set captured in `eval_dir`, writes `out/eval.md`, `out/eval.json` and
/// `out/confusion-<set>.png`, and returns the results.
pub fn evaluate_sets(
    scored: &Scored,
    sets: &[EvalSet],
    eval_dir: &Path,
    out: &Path,
    name: &str,
) -> anyhow::Result<Vec<SetResult>> {
    std::fs::create_dir_all(out)?;
    let size = emoedge_models::Config::default().crop_size as u32;
    let mut results = Vec::new();
    for set in sets {
        let manifest = set_manifest(eval_dir, &set.name);
        anyhow::ensure!(
            manifest.is_file(),
            "{} is missing: capture the evaluation sets with `emoedge-train data --recipe`",
            manifest.display()
        );
        let examples = read_manifest(&manifest, size, &mut |_, _| Err("evaluation manifests hold crops only".into()))?;
        let truth: Vec<usize> = examples.iter().map(|e| e.target.argmax()).collect();
        let predicted = predict(scored, &examples)?;
        let mut scores = vec![Score::of(name, &truth, &predicted)];
        let teacher_text = std::fs::read_to_string(set_teachers(eval_dir, &set.name))?;
        let teacher_rows: Vec<serde_json::Value> =
            teacher_text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
        anyhow::ensure!(
            teacher_rows.len() == examples.len(),
            "{}: teacher answers do not match the clips; capture the set again",
            set.name
        );
        for teacher in ENSEMBLE.iter().map(|(_, n)| *n).chain(["ensemble"]) {
            let top: Vec<usize> = teacher_rows
                .iter()
                .map(|row| {
                    let p: Vec<f32> = serde_json::from_value(row[teacher].clone()).unwrap_or_default();
                    emoedge_models::argmax(&p)
                })
                .collect();
            scores.push(Score::of(teacher, &truth, &top));
        }
        crate::plot::confusion(
            &out.join(format!("confusion-{}.png", set.name)),
            &format!("{name} on {}", set.name),
            &EMOTIONS,
            &scores[0].confusion,
        )?;
        results.push(SetResult {
            set: set.name.clone(),
            about: set.about.clone(),
            people: set.people,
            clips: examples.len(),
            scores,
            predicted,
        });
    }
    emoedge_support::write_atomic(&out.join("eval.json"), serde_json::to_string_pretty(&results)?.as_bytes())?;
    emoedge_support::write_atomic(&out.join("eval.md"), table(&results).as_bytes())?;
    Ok(results)
}

/// The results as a Markdown table, one row per set and predictor.
pub fn table(results: &[SetResult]) -> String {
    let mut text = Vec::new();
    let _ = writeln!(text, "| set (people, clips) | predictor | accuracy | UAR | distinct labels | recall per class |");
    let _ = writeln!(text, "|---|---|---:|---:|---:|---|");
    for r in results {
        for s in &r.scores {
            let _ = writeln!(
                text,
                "| {} ({}, {}) | {} | {:.1}% | {:.1}% | {} | {} |",
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
    }
    String::from_utf8_lossy(&text).into_owned()
}
