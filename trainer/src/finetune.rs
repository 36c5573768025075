//! `emoedge-train finetune`: adapts a finished model to a site's labelled faces. The people of
//! the labelled set are split in two: some are held out (scored, never trained on, calibrated
//! on or looked at during training), the others train the emotion path and the gate
//! ([`Stage::Adapt`]) with their hard labels mixed with the online teacher's logits and replayed
//! digits. Then the run is quantized (calibrated on the trained people's faces), exported as a
//! bundle, and scored before and after on both parts of the set:
//!
//! ```text
//! OUT/run/     the adapted run (weights, quant.json, curves.png, summary.json, checkpoint/)
//! OUT/bundle/  the bundle for `emoedge run --model OUT/bundle`
//! OUT/eval/    eval.json, eval.md, confusion PNGs: before and after, held-out and trained people
//! OUT/finetune.json  who was held out, the general task's accuracy before and after
//! ```
//!
//! OUT is private to the user (0700). No face crop is written; the crops live in memory for
//! the run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use emoedge_exporter::bundle::{TrainedRun, write_bundle};
use emoedge_models::manifest::Variant;
use emoedge_models::reference::Routing;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::data::digits::read_digits;
use crate::data::{Example, Split};
use crate::eval::{LabelledSet, Scored, SetResult, score_set, write_results};
use crate::labelled::LabelledFaces;
use crate::quant::Calibration;
use crate::quantize_run::{VariantReport, quantize_examples};
use crate::run::{RunSpec, Summary, load_model, train_stage};
use crate::train::{Item, Stage, Task, evaluate};

/// Which people are held out.
#[derive(Debug, Clone)]
pub enum Holdout {
    /// These people (as `--split-by` names them).
    People(Vec<String>),
    /// This share of the people (at least one, never all), drawn with the seed.
    Share(f64),
}

pub struct FinetuneSpec {
    pub faces: LabelledFaces,
    pub holdout: Holdout,
    /// The finished run to adapt (e.g. `models/default`).
    pub init: PathBuf,
    /// fer's classifier (`encoder-init`'s file) as the online teacher; without it the labels are
    /// the whole target.
    pub online_teacher: Option<PathBuf>,
    pub label_weight: f32,
    /// The general task's digits, replayed so that the gate keeps routing them.
    pub general: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    pub model_version: String,
    pub out: PathBuf,
}

/// What `finetune.json` records.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub init: PathBuf,
    pub held_out_people: Vec<String>,
    pub trained_people: Vec<String>,
    pub trained_faces: usize,
    pub label_weight: f32,
    pub online_teacher: bool,
    /// Digits (the general task) through the gate, validation split, before and after.
    pub general_accuracy_before: Option<f64>,
    pub general_accuracy_after: Option<f64>,
    pub quantization: Vec<VariantReport>,
}

pub struct Finetuned {
    pub report: Report,
    pub summary: Summary,
    pub results: Vec<SetResult>,
    pub bundle: PathBuf,
}

pub fn finetune(spec: FinetuneSpec) -> anyhow::Result<Finetuned> {
    // Weights learnt from a site's faces and the names of its people: the user's alone.
    emoedge_support::private_dir(&spec.out)?;
    let (held, trained) = split_people(&spec.faces.people, &spec.holdout, spec.seed)?;
    let mut examples = spec.faces.examples.clone();
    for (example, person) in examples.iter_mut().zip(&spec.faces.people) {
        example.split = if held.contains(person) { Split::Test } else { Split::Train };
    }
    let run_dir = spec.out.join("run");
    let run = RunSpec {
        stage: Stage::Adapt,
        out: run_dir.clone(),
        init: Some(spec.init.clone()),
        pretrained_encoder: None,
        encoder_modules: 0,
        augment: true,
        online_teacher: spec.online_teacher.clone(),
        general: Some(spec.general.clone()),
        emotion: None,
        emotion_examples: examples.clone(),
        label_weight: spec.label_weight,
        epochs: spec.epochs,
        batch_size: spec.batch_size,
        lr: spec.lr,
        seed: spec.seed,
        detector_dir: None,
    };
    let summary = train_stage(&run)?;
    let config = emoedge_models::Config::load(run_dir.join("config.json"))?;
    let digits = read_digits(&spec.general, config.crop_size as u32)?;
    let quantization = quantize_examples(&run_dir, &digits, &examples, Calibration::Max, 128)?;
    let bundle = spec.out.join("bundle");
    write_bundle(&TrainedRun::load(&run_dir)?, &spec.model_version, &bundle)?;

    let sets = [("held-out", &held, "people held out of fine-tuning"), ("trained", &trained, "people fine-tuned on")];
    let mut results = Vec::new();
    for (name, people, about) in sets {
        results.push(before_after(&spec, name, about, people, &run_dir, &bundle)?);
    }
    write_results(&spec.out.join("eval"), &results)?;
    let report = Report {
        init: spec.init.clone(),
        held_out_people: held.into_iter().collect(),
        trained_people: trained.into_iter().collect(),
        trained_faces: examples.iter().filter(|e| e.split == Split::Train).count(),
        label_weight: spec.label_weight,
        online_teacher: spec.online_teacher.is_some(),
        general_accuracy_before: general_accuracy(&spec.init, &digits)?,
        general_accuracy_after: summary.general_accuracy,
        quantization,
    };
    emoedge_support::write_atomic(&spec.out.join("finetune.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(Finetuned { report, summary, results, bundle })
}

/// The people held out and the people trained on, each sorted.
fn split_people(
    people: &[String],
    holdout: &Holdout,
    seed: u64,
) -> anyhow::Result<(BTreeSet<String>, BTreeSet<String>)> {
    let all: BTreeSet<String> = people.iter().cloned().collect();
    anyhow::ensure!(
        all.len() >= 2,
        "fine-tuning holds out whole people to score on, so it needs faces of at least two people; \
         put each person's photos in a folder (DIR/<emotion>/<person>/<photo>) or name them PERSON_N.jpg with --split-by prefix"
    );
    let held: BTreeSet<String> = match holdout {
        Holdout::People(names) => {
            let unknown: Vec<&String> = names.iter().filter(|n| !all.contains(*n)).collect();
            anyhow::ensure!(
                unknown.is_empty(),
                "--holdout-people names no face of the set: {}; the people are {}",
                emoedge_support::printable(&format!("{unknown:?}")),
                emoedge_support::printable(&format!("{all:?}"))
            );
            names.iter().cloned().collect()
        }
        Holdout::Share(share) => {
            anyhow::ensure!(*share > 0.0 && *share < 1.0, "--holdout {share} is not a share in (0, 1) such as 0.25");
            let mut order: Vec<String> = all.iter().cloned().collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            let n = ((all.len() as f64 * share).round() as usize).clamp(1, all.len() - 1);
            order.into_iter().take(n).collect()
        }
    };
    anyhow::ensure!(held.len() < all.len(), "--holdout-people names every person: nobody is left to fine-tune on");
    let trained = all.difference(&held).cloned().collect();
    Ok((held, trained))
}

/// `people`'s faces scored by the model before (`init`), after (the run, and its bundle as
/// `emoedge run` loads it, FP32 and INT8).
fn before_after(
    spec: &FinetuneSpec,
    name: &str,
    about: &str,
    people: &BTreeSet<String>,
    run: &Path,
    bundle: &Path,
) -> anyhow::Result<SetResult> {
    let (examples, groups): (Vec<Example>, Vec<String>) = spec
        .faces
        .examples
        .iter()
        .zip(&spec.faces.people)
        .filter(|(_, person)| people.contains(*person))
        .map(|(e, p)| (e.clone(), p.clone()))
        .unzip();
    let set = LabelledSet {
        name: name.to_string(),
        about: about.to_string(),
        people: people.len(),
        examples,
        groups,
        not_found: Vec::new(),
        teachers: Vec::new(),
    };
    let scored = [
        Scored::Run(spec.init.clone()),
        Scored::Run(run.to_path_buf()),
        Scored::Bundle { dir: bundle.to_path_buf(), variant: Variant::Fp32 },
        Scored::Bundle { dir: bundle.to_path_buf(), variant: Variant::Int8 },
    ];
    let mut result = score_set(&scored, &set)?;
    for (score, predictor) in result.scores.iter_mut().zip(["before", "after", "after fp32", "after int8"]) {
        score.predictor = predictor.to_string();
    }
    Ok(result)
}

/// The general task's validation accuracy of the run in `dir`, through the gate.
fn general_accuracy(dir: &Path, digits: &[Example]) -> anyhow::Result<Option<f64>> {
    let (config, model) = load_model(Some(dir), None, 0)?;
    let items: Vec<Item> = digits
        .iter()
        .filter(|e| e.split != Split::Train)
        .map(|example| Item { task: Task::General, example })
        .collect();
    let report = evaluate(&model, &config, &items, Routing::Gated, config.general_classes);
    Ok(report.general.map(|c| c.war()))
}
