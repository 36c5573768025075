//! `emoedge-train train`: one stage as a run folder — `metrics.jsonl` per epoch, a resumable
//! `checkpoint/`, and at the end `weights.safetensors` + `config.json`, `curves.png`,
//! `confusion.png` and `summary.json`.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use emoedge_models::reference::{HybridModel, Routing, cpu};
use emoedge_models::{Config, EMOTIONS};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::digits::{DIGIT_LABELS, read_digits};
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
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
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

/// Crops for a manifest's `video` lines, through the runtime's face capture (loaded on first use).
pub fn manifest_videos() -> impl FnMut(&Path, Option<[u64; 2]>) -> Result<Vec<image::RgbImage>, String> {
    let mut capture: Option<FaceCapture> = None;
    move |video, range| {
        let capture = match &mut capture {
            Some(capture) => capture,
            None => {
                let options = CaptureOptions::new(Config::default().crop_size as u32);
                capture.insert(FaceCapture::open(&options).map_err(|e| e.to_string())?)
            }
        };
        video_crops(capture, video, range)
    }
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

pub fn train_stage(spec: &RunSpec) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(&spec.out)?;
    let (config, model) = load_model(spec.init.as_deref(), spec.pretrained_encoder.as_deref(), spec.seed)?;
    let size = config.crop_size as u32;
    let general = match &spec.general {
        Some(path) => read_digits(path, size)?,
        None => Vec::new(),
    };
    let emotion = match &spec.emotion {
        Some(path) => read_manifest(path, size, &mut manifest_videos())?,
        None => Vec::new(),
    };
    let pick = |examples: &[Example], task, train: bool| -> Vec<(Task, usize)> {
        (0..examples.len()).filter(|&i| (examples[i].split == Split::Train) == train).map(|i| (task, i)).collect()
    };
    let mut train_refs = Vec::new();
    if spec.stage.uses_general_data() {
        anyhow::ensure!(!general.is_empty(), "stage {:?} trains on the general task: give --general", spec.stage);
        train_refs.extend(pick(&general, Task::General, true));
    }
    if spec.stage.uses_emotion_data() {
        anyhow::ensure!(!emotion.is_empty(), "stage {:?} trains on emotion data: give --emotion", spec.stage);
        train_refs.extend(balanced(pick(&emotion, Task::Emotion, true), &emotion));
    }
    let mut val_refs = pick(&general, Task::General, false);
    val_refs.extend(pick(&emotion, Task::Emotion, false));
    let item = |(task, i): (Task, usize)| Item {
        task,
        example: if task == Task::General { &general[i] } else { &emotion[i] },
    };
    let val: Vec<Item> = val_refs.iter().copied().map(item).collect();

    let steps_per_epoch = train_refs.len().div_ceil(spec.batch_size);
    let options = TrainOptions {
        batch_size: spec.batch_size,
        lr: spec.lr,
        seed: spec.seed,
        encoder_modules: spec.encoder_modules,
        augment: spec.augment,
        online_teacher: spec.online_teacher.clone(),
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
    let mut metrics = std::fs::OpenOptions::new().create(true).append(true).open(&metrics_path)?;
    let mut curve: Vec<(f64, f64)> = Vec::new();
    let mut val_curve: Vec<(f64, f64)> = Vec::new();
    let mut last_report = EvalReport::default();
    let start = std::time::Instant::now();
    let first_epoch = trainer.step / steps_per_epoch.max(1);
    for epoch in first_epoch..spec.epochs {
        let mut order = train_refs.clone();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(spec.seed.wrapping_add(epoch as u64)));
        let bar = ProgressBar::new(steps_per_epoch as u64).with_style(
            ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, spec.epochs));
        let skip = trainer.step - epoch * steps_per_epoch;
        let mut losses = Vec::new();
        for batch in order.chunks(spec.batch_size).skip(skip) {
            let items: Vec<Item> = batch.iter().copied().map(item).collect();
            let loss = trainer.train_step(&items);
            losses.push(loss as f64);
            curve.push((trainer.step as f64, loss as f64));
            bar.set_position((trainer.step - epoch * steps_per_epoch) as u64);
            bar.set_message(format!("loss {loss:.4}"));
        }
        bar.finish_and_clear();
        let report = validate(&trainer.model, &config, &val, spec.stage);
        let train_loss = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
        let line = serde_json::json!({
            "epoch": epoch + 1, "step": trainer.step, "lr": trainer.schedule().lr(trainer.step.saturating_sub(1)),
            "train_loss": train_loss,
            "val_general_accuracy": report.general.as_ref().map(|c| c.war()),
            "val_emotion_war": report.emotion.as_ref().map(|c| c.war()),
            "val_emotion_uar": report.emotion.as_ref().map(|c| c.uar()),
            "val_teacher_agreement": report.teacher_agreement,
            "gate_on_general": report.gate_on_general, "gate_on_emotion": report.gate_on_emotion,
        });
        writeln!(metrics, "{line}")?;
        metrics.flush()?;
        let headline = report.teacher_agreement.or(report.general.as_ref().map(|c| c.war()));
        if let Some(value) = headline {
            val_curve.push((trainer.step as f64, value));
        }
        eprintln!("epoch {}/{}: train loss {train_loss:.4}, val {}", epoch + 1, spec.epochs, describe(&report));
        trainer.save_checkpoint(&checkpoint)?;
        last_report = report;
    }
    let seconds_per_epoch = start.elapsed().as_secs_f64() / (spec.epochs - first_epoch).max(1) as f64;

    let final_model = trainer.model.valid();
    final_model.save_safetensors(spec.out.join("weights.safetensors"))?;
    emoedge_support::write_atomic(&spec.out.join("config.json"), config.to_json().as_bytes())?;
    plot::curves(
        &spec.out.join("curves.png"),
        &format!("{:?} stage", spec.stage),
        "step",
        &[Series { name: "train loss", points: curve }, Series { name: "val agreement / accuracy", points: val_curve }],
    )?;
    if let Some(confusion) = &last_report.emotion {
        plot::confusion(&spec.out.join("confusion.png"), "emotion (val)", &EMOTIONS, confusion)?;
    } else if let Some(confusion) = &last_report.general {
        plot::confusion(&spec.out.join("confusion.png"), "general task (val)", &DIGIT_LABELS, confusion)?;
    }
    let general_accuracy = last_report.general.as_ref().map(|c| c.war());
    let summary =
        Summary { stage: spec.stage, steps: trainer.step, seconds_per_epoch, val: last_report, general_accuracy };
    emoedge_support::write_atomic(&spec.out.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
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
/// general items gated after the joint stage and on the general path otherwise (an emotion-only
/// route says nothing about the general task).
pub fn validate(model: &HybridModel, config: &Config, val: &[Item], stage: Stage) -> EvalReport {
    let of = |task: Task| -> Vec<Item> { val.iter().copied().filter(|i| i.task == task).collect() };
    let general_routing = if stage == Stage::Joint { Routing::Gated } else { Routing::GeneralOnly };
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
