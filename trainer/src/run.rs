//! `emoedge-train train`: one stage as a run folder — `metrics.jsonl` per epoch, a resumable
//! `checkpoint/`, and at the end `weights.safetensors` + `config.json`, `curves.png`,
//! `confusion.png` and `summary.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::module::Module;
use emoedge_models::reference::{HybridModel, Routing, cpu};
use emoedge_models::{Config, EMOTIONS};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::digits::{DIGIT_LABELS, read_digits};
use crate::data::fer_csv::read_fer_csv;
use crate::data::folder::{ClassNames, read_folder};
use crate::data::manifest::read_manifest;
use crate::data::{Example, Split};
use crate::plot::{self, Series};
use crate::prepare::video_crops;
use crate::train::{EvalReport, Item, Stage, Task, TrainOptions, Trainer, evaluate};
use emoedge_vision::capture::{CaptureOptions, FaceCapture};

pub struct RunSpec {
    pub stage: Stage,
    pub out: PathBuf,
    /// A finished run (its `weights.safetensors` + `config.json`) to start from.
    pub init: Option<PathBuf>,
    /// Pretrained encoder weights for a fresh model (`emoedge-train encoder-init`).
    pub pretrained_encoder: Option<PathBuf>,
    /// Encoder modules (from the top) this stage trains; see `Stage::freeze`.
    pub encoder_modules: usize,
    /// Flip, affine and colour jitter on training crops.
    pub augment: bool,
    /// fer's classifier as the online teacher of emotion items (see `train::online_teacher`).
    pub online_teacher: Option<PathBuf>,
    pub general: Option<PathBuf>,
    pub emotion: Option<PathBuf>,
    /// Emotion examples read already (a site's labelled faces for `finetune`), beside `emotion`.
    pub emotion_examples: Vec<Example>,
    /// See [`TrainOptions::label_weight`].
    pub label_weight: f32,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    /// The face detector that cuts a manifest's video lines, if one was found.
    pub detector_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub stage: Stage,
    pub steps: usize,
    pub seconds_per_epoch: f64,
    pub val: EvalReport,
    /// The general task's validation accuracy as [`validate`] routes it: the forgetting figure.
    pub general_accuracy: Option<f64>,
}

/// Crops for a manifest's `video` lines, through the runtime's face capture with the detector
/// in `detector_dir` (loaded on first use: a manifest without video needs none).
pub fn manifest_videos(
    detector_dir: Option<PathBuf>,
) -> impl FnMut(&Path, Option<[u64; 2]>) -> Result<Vec<image::RgbImage>, String> {
    let mut capture: Option<FaceCapture> = None;
    move |video, range| {
        let capture = match &mut capture {
            Some(capture) => capture,
            None => {
                let dir = detector_dir.clone().ok_or(
                    "cutting a manifest's video lines needs the face detector: run scripts/setup, or pass --assets DIR",
                )?;
                let options = CaptureOptions::new(dir, Config::default().crop_size as u32);
                capture.insert(FaceCapture::open(&options).map_err(|e| e.to_string())?)
            }
        };
        video_crops(capture, video, range)
    }
}

/// An emotion set in any of the formats the trainer reads, by its path: a folder per class
/// (`DIR/<emotion>/*.png`, or with `train`/`val`/`test` splits), a FER2013-style CSV (`.csv`),
/// or a clip manifest (JSON lines, as `emoedge-train data` writes; video lines are cut with the
/// face detector in `detector_dir`).
pub fn read_emotion(path: &Path, size: u32, detector_dir: Option<PathBuf>) -> anyhow::Result<Vec<Example>> {
    let examples = if path.is_dir() {
        read_folder(path, size, ClassNames::Emotions)?
    } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        read_fer_csv(path, size)?
    } else {
        read_manifest(path, size, &mut manifest_videos(detector_dir))?
    };
    Ok(examples)
}

/// Loads a finished run's model, or a fresh one (with a pretrained encoder if given).
pub fn load_model(
    init: Option<&Path>,
    pretrained_encoder: Option<&Path>,
    seed: u64,
) -> anyhow::Result<(Config, HybridModel)> {
    match (init, pretrained_encoder) {
        (Some(_), Some(_)) => {
            anyhow::bail!("give either --init (a finished run) or --pretrained-encoder (for a fresh model), not both")
        }
        (Some(dir), None) => {
            let config = Config::load(dir.join("config.json"))?;
            let model = HybridModel::load_safetensors(&config, dir.join("weights.safetensors"), &cpu())?;
            Ok((config, model))
        }
        (None, encoder) => {
            let config = Config::default();
            let mut model = HybridModel::init(&config, &cpu(), seed)?;
            if let Some(path) = encoder {
                model = model.with_pretrained_encoder(&config, path, &cpu())?;
            }
            Ok((config, model))
        }
    }
}

/// A stage's examples, and which of them it trains and validates on.
struct StageData {
    general: Vec<Example>,
    emotion: Vec<Example>,
    train: Vec<(Task, usize)>,
    val: Vec<(Task, usize)>,
}

impl StageData {
    fn load(spec: &RunSpec, size: u32) -> anyhow::Result<Self> {
        let general = match &spec.general {
            Some(path) => read_digits(path, size)?,
            None => Vec::new(),
        };
        let mut emotion = match &spec.emotion {
            Some(path) => read_emotion(path, size, spec.detector_dir.clone())?,
            None => Vec::new(),
        };
        emotion.extend(spec.emotion_examples.iter().cloned());
        let pick = |examples: &[Example], task, train: bool| -> Vec<(Task, usize)> {
            (0..examples.len()).filter(|&i| (examples[i].split == Split::Train) == train).map(|i| (task, i)).collect()
        };
        if spec.stage.uses_general_data() {
            anyhow::ensure!(!general.is_empty(), "stage {:?} trains on the general task: give --general", spec.stage);
        }
        let mut faces = Vec::new();
        if spec.stage.uses_emotion_data() {
            anyhow::ensure!(!emotion.is_empty(), "stage {:?} trains on emotion data: give --emotion", spec.stage);
            faces = balanced(pick(&emotion, Task::Emotion, true), &emotion);
        }
        let mut train = Vec::new();
        if spec.stage.uses_general_data() {
            train = pick(&general, Task::General, true);
            if spec.stage == Stage::Adapt {
                // A site's few faces would drown in the digits: replay as many digits as faces.
                train.shuffle(&mut ChaCha8Rng::seed_from_u64(spec.seed));
                train.truncate(faces.len().max(spec.batch_size));
            }
        }
        train.extend(faces);
        // Validation reads the val split only: a test split (a fine-tuning's held-out people)
        // must stay unseen until the run is finished.
        let val_of = |examples: &[Example], task| -> Vec<(Task, usize)> {
            (0..examples.len()).filter(|&i| examples[i].split == Split::Val).map(|i| (task, i)).collect()
        };
        let mut val = val_of(&general, Task::General);
        val.extend(val_of(&emotion, Task::Emotion));
        Ok(Self { general, emotion, train, val })
    }

    fn item(&self, (task, i): (Task, usize)) -> Item<'_> {
        Item { task, example: if task == Task::General { &self.general[i] } else { &self.emotion[i] } }
    }
}

/// What the epochs leave for the outputs: the loss and validation curves, the last report.
#[derive(Default)]
struct Progress {
    curve: Vec<(f64, f64)>,
    val_curve: Vec<(f64, f64)>,
    last_report: EvalReport,
    seconds_per_epoch: f64,
}

pub fn train_stage(spec: &RunSpec) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&spec.out).with_context(|| format!("cannot create {}", spec.out.display()))?;
    let (config, model) = load_model(spec.init.as_deref(), spec.pretrained_encoder.as_deref(), spec.seed)?;
    let data = StageData::load(spec, config.crop_size as u32)?;
    let steps_per_epoch = data.train.len().div_ceil(spec.batch_size);
    let options = TrainOptions {
        batch_size: spec.batch_size,
        lr: spec.lr,
        seed: spec.seed,
        encoder_modules: spec.encoder_modules,
        augment: spec.augment,
        online_teacher: spec.online_teacher.clone(),
        label_weight: spec.label_weight,
        ..TrainOptions::new(spec.stage, steps_per_epoch * spec.epochs)
    };
    let checkpoint = spec.out.join("checkpoint");
    let metrics_path = spec.out.join("metrics.jsonl");
    let mut trainer = if checkpoint.join("state.json").is_file() {
        let trainer = Trainer::resume(&checkpoint)?;
        eprintln!("resuming {} from step {}", checkpoint.display(), trainer.step);
        trainer
    } else {
        let _ = std::fs::remove_file(&metrics_path);
        Trainer::with_teacher(&config, model, options)?
    };
    let progress = epochs(spec, &config, &data, &mut trainer, steps_per_epoch)?;
    outputs(spec, &config, &trainer, progress)
}

/// Trains the epochs left (all, or those after a checkpoint), appending each epoch's metrics
/// to `metrics.jsonl` and saving a checkpoint after it.
fn epochs(
    spec: &RunSpec,
    config: &Config,
    data: &StageData,
    trainer: &mut Trainer,
    steps_per_epoch: usize,
) -> anyhow::Result<Progress> {
    let metrics_path = spec.out.join("metrics.jsonl");
    let cannot_write = || format!("cannot write {}", metrics_path.display());
    let mut metrics =
        std::fs::OpenOptions::new().create(true).append(true).open(&metrics_path).with_context(cannot_write)?;
    let val: Vec<Item> = data.val.iter().map(|&r| data.item(r)).collect();
    let mut progress = Progress::default();
    let start = std::time::Instant::now();
    let first_epoch = trainer.step / steps_per_epoch.max(1);
    for epoch in first_epoch..spec.epochs {
        let train_loss = epoch_steps(spec, data, trainer, epoch, steps_per_epoch, &mut progress.curve);
        let report = validate(&trainer.model, config, &val, spec.stage);
        let line = serde_json::json!({
            "epoch": epoch + 1, "step": trainer.step, "lr": trainer.schedule().lr(trainer.step.saturating_sub(1)),
            "train_loss": train_loss,
            "val_general_accuracy": report.general.as_ref().map(|c| c.war()),
            "val_emotion_war": report.emotion.as_ref().map(|c| c.war()),
            "val_emotion_uar": report.emotion.as_ref().map(|c| c.uar()),
            "val_teacher_agreement": report.teacher_agreement,
            "gate_on_general": report.gate_on_general, "gate_on_emotion": report.gate_on_emotion,
        });
        writeln!(metrics, "{line}").and_then(|()| metrics.flush()).with_context(cannot_write)?;
        let headline = report.teacher_agreement.or(report.general.as_ref().map(|c| c.war()));
        if let Some(value) = headline {
            progress.val_curve.push((trainer.step as f64, value));
        }
        eprintln!("epoch {}/{}: train loss {train_loss:.4}, val {}", epoch + 1, spec.epochs, describe(&report));
        let checkpoint = spec.out.join("checkpoint");
        trainer.save_checkpoint(&checkpoint).with_context(|| format!("cannot write {}", checkpoint.display()))?;
        progress.last_report = report;
    }
    progress.seconds_per_epoch = start.elapsed().as_secs_f64() / (spec.epochs - first_epoch).max(1) as f64;
    Ok(progress)
}

/// One epoch's steps (those after a checkpoint's, when resuming) with a progress bar; the
/// epoch's mean training loss.
fn epoch_steps(
    spec: &RunSpec,
    data: &StageData,
    trainer: &mut Trainer,
    epoch: usize,
    steps_per_epoch: usize,
    curve: &mut Vec<(f64, f64)>,
) -> f64 {
    let mut order = data.train.clone();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(spec.seed.wrapping_add(epoch as u64)));
    let bar = ProgressBar::new(steps_per_epoch as u64).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, spec.epochs));
    let skip = trainer.step - epoch * steps_per_epoch;
    let mut losses = Vec::new();
    for batch in order.chunks(spec.batch_size).skip(skip) {
        let items: Vec<Item> = batch.iter().map(|&r| data.item(r)).collect();
        let loss = trainer.train_step(&items);
        losses.push(loss as f64);
        curve.push((trainer.step as f64, loss as f64));
        bar.set_position((trainer.step - epoch * steps_per_epoch) as u64);
        bar.set_message(format!("loss {loss:.4}"));
    }
    bar.finish_and_clear();
    losses.iter().sum::<f64>() / losses.len().max(1) as f64
}

/// The run folder's outputs: the weights, the config, the curves, the confusion matrix and
/// the summary.
fn outputs(spec: &RunSpec, config: &Config, trainer: &Trainer, progress: Progress) -> anyhow::Result<Summary> {
    let path = |name: &str| spec.out.join(name);
    let cannot_write = |name: &str| format!("cannot write {}", path(name).display());
    trainer
        .model
        .valid()
        .save_safetensors(path("weights.safetensors"))
        .with_context(|| cannot_write("weights.safetensors"))?;
    emoedge_support::write_atomic(&path("config.json"), config.to_json().as_bytes())
        .with_context(|| cannot_write("config.json"))?;
    let series = [
        Series { name: "train loss", points: progress.curve },
        Series { name: "val agreement / accuracy", points: progress.val_curve },
    ];
    plot::curves(&path("curves.png"), &format!("{:?} stage", spec.stage), "step", &series)
        .with_context(|| cannot_write("curves.png"))?;
    let report = progress.last_report;
    if let Some(confusion) = &report.emotion {
        plot::confusion(&path("confusion.png"), "emotion (val)", &EMOTIONS, confusion)
    } else if let Some(confusion) = &report.general {
        plot::confusion(&path("confusion.png"), "general task (val)", &DIGIT_LABELS, confusion)
    } else {
        Ok(())
    }
    .with_context(|| cannot_write("confusion.png"))?;
    let general_accuracy = report.general.as_ref().map(|c| c.war());
    let summary = Summary {
        stage: spec.stage,
        steps: trainer.step,
        seconds_per_epoch: progress.seconds_per_epoch,
        val: report,
        general_accuracy,
    };
    let json = serde_json::to_string_pretty(&summary)?;
    emoedge_support::write_atomic(&path("summary.json"), json.as_bytes())
        .with_context(|| cannot_write("summary.json"))?;
    Ok(summary)
}

/// Most faces reachable here are happy or neutral; repeats each emotion example by how rare
/// its (teacher) top label is, up to [`MAX_REPEAT`]×, so that every emotion weighs in training
/// (unbalanced, the student called most crying frames neutral: its head had seen 21 sad faces
/// against 155 happy ones).
fn balanced(refs: Vec<(Task, usize)>, examples: &[Example]) -> Vec<(Task, usize)> {
    let mut counts = [0usize; EMOTIONS.len()];
    for &(_, i) in &refs {
        counts[examples[i].target.argmax()] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(0);
    refs.into_iter()
        .flat_map(|r| {
            let repeat = (most / counts[examples[r.1].target.argmax()].max(1)).clamp(1, MAX_REPEAT);
            std::iter::repeat_n(r, repeat)
        })
        .collect()
}

const MAX_REPEAT: usize = 8;

/// Validation as the product would run after `stage`: emotion items with the stage's routing,
/// general items gated after the gated stages (joint, adapt) and on the general path otherwise (an emotion-only
/// route says nothing about the general task).
pub fn validate(model: &HybridModel, config: &Config, val: &[Item], stage: Stage) -> EvalReport {
    let of = |task: Task| -> Vec<Item> { val.iter().copied().filter(|i| i.task == task).collect() };
    let general_routing = if stage.routing() == Routing::Gated { Routing::Gated } else { Routing::GeneralOnly };
    let general = evaluate(model, config, &of(Task::General), general_routing, config.general_classes);
    let emotion = evaluate(model, config, &of(Task::Emotion), stage.routing(), config.general_classes);
    EvalReport { general: general.general, gate_on_general: general.gate_on_general, ..emotion }
}

pub fn describe(report: &EvalReport) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &report.general {
        parts.push(format!("general acc {:.1}%", 100.0 * c.war()));
    }
    if let Some(c) = &report.emotion {
        parts.push(format!("emotion WAR {:.1}% UAR {:.1}%", 100.0 * c.war(), 100.0 * c.uar()));
    }
    if let Some(a) = report.teacher_agreement {
        parts.push(format!("teacher agreement {:.1}%", 100.0 * a));
    }
    if let Some(g) = report.gate_on_emotion {
        parts.push(format!("gate on faces ({:.2}, {:.2})", g[0], g[1]));
    }
    if let Some(g) = report.gate_on_general {
        parts.push(format!("gate on digits ({:.2}, {:.2})", g[0], g[1]));
    }
    parts.join(", ")
}
