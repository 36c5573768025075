//! The training loop's promises: it learns, it freezes what a stage freezes, and a resumed run
//! continues exactly where it stopped.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, cpu};
use emoedge_trainer::data::digits::read_digits;
use emoedge_trainer::data::{Example, Split, Target};
use emoedge_trainer::train::{Item, Stage, Task, TrainOptions, Trainer};
use image::{Rgb, RgbImage};

fn digits(n: usize) -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/digits/digits.csv.gz");
    read_digits(&path, 64).expect("run scripts/setup first").into_iter().take(n).collect()
}

/// Clips whose colour tells the soft label: learnable, and soft like teacher labels.
fn emotion_clips(n: usize) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let class = i % 3;
            let frames = (0..4)
                .map(|f| {
                    let shade = [40u8, 140, 240][class];
                    Arc::new(RgbImage::from_pixel(64, 64, Rgb([shade, 255 - shade, (f * 30) as u8])))
                })
                .collect();
            let mut soft = vec![0.02f32; 7];
            soft[class] = 0.88;
            Example { frames, target: Target::Soft(soft), split: Split::Train, source: format!("clip-{i}") }
        })
        .collect()
}

fn options(stage: Stage, steps: usize) -> TrainOptions {
    TrainOptions { batch_size: 8, lr: 3e-3, warmup_steps: 1, ..TrainOptions::new(stage, steps) }
}

fn items(examples: &[Example], task: Task) -> Vec<Item<'_>> {
    examples.iter().map(|example| Item { task, example }).collect()
}

#[test]
fn a_few_steps_lower_the_loss() {
    let config = Config::default();
    let model = HybridModel::init(&config, &cpu(), 1).unwrap();
    let data = digits(8);
    let batch = items(&data, Task::General);
    let mut trainer = Trainer::new(&config, model, TrainOptions { augment: false, ..options(Stage::General, 40) });
    let losses: Vec<f32> = (0..40).map(|_| trainer.train_step(&batch)).collect();
    let (first, last) = (losses[..3].iter().sum::<f32>() / 3.0, losses[37..].iter().sum::<f32>() / 3.0);
    assert!(last < first * 0.7, "loss {first} → {last}: {losses:?}");
}

#[test]
fn distillation_lowers_the_loss_on_soft_labels() {
    let config = Config::default();
    let model = HybridModel::init(&config, &cpu(), 2).unwrap();
    let data = emotion_clips(9);
    let batch = items(&data, Task::Emotion);
    let mut trainer = Trainer::new(&config, model, options(Stage::Emotion, 12));
    let losses: Vec<f32> = (0..12).map(|_| trainer.train_step(&batch)).collect();
    assert!(losses[11] < losses[0] * 0.7, "{losses:?}");
}

struct Values(Vec<(String, Vec<f32>)>, Vec<String>);

impl ModuleVisitor for Values {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.1.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.1.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push((self.1.join("."), param.val().into_data().try_to_vec::<f32>().unwrap()));
    }
}

fn values(model: &HybridModel) -> Vec<(String, Vec<f32>)> {
    let mut v = Values(Vec::new(), Vec::new());
    model.visit(&mut v);
    v.0
}

#[test]
fn each_stage_leaves_its_frozen_parameters_bit_identical() {
    let config = Config::default();
    let general = digits(8);
    let emotion = emotion_clips(8);
    let mut mixed = items(&general[..4], Task::General);
    mixed.extend(items(&emotion[..4], Task::Emotion));
    // (stage, encoder modules trained, must stay bit-identical, must change)
    let frozen: [(Stage, usize, &[&str], &[&str]); 6] = [
        (
            Stage::General,
            1,
            &["encoder.stem.", "encoder.modules.0.", "encoder.modules.2.", "emotion_expert.", "gate.", "head.emotion."],
            &["encoder.modules.3.", "general_expert.", "head.general."],
        ),
        (
            Stage::General,
            0,
            &["encoder.", "emotion_expert.", "gate.", "head.emotion."],
            &["general_expert.", "head.general."],
        ),
        (
            Stage::Emotion,
            1,
            &[
                "encoder.stem.",
                "encoder.modules.0.",
                "encoder.modules.2.",
                "general_expert.",
                "gate.",
                "head.general.",
                "head.key.",
                "head.query",
            ],
            &["emotion_expert.", "head.emotion.", "encoder.modules.3."],
        ),
        (Stage::Joint, 1, &["encoder."], &["gate.", "general_expert.", "emotion_expert.", "head."]),
        (
            Stage::Adapt,
            1,
            &["encoder.", "general_expert.", "head.general.", "head.key.", "head.query", "head.norm."],
            &["gate.", "emotion_expert.", "head.emotion."],
        ),
        (
            Stage::Baseline,
            1,
            &["encoder.stem.", "encoder.modules.0.", "emotion_expert.", "gate."],
            &["encoder.modules.3.", "general_expert.", "head.emotion.", "head.general."],
        ),
    ];
    for (stage, encoder_modules, must_stay, must_move) in frozen {
        let model = HybridModel::init(&config, &cpu(), 3).unwrap();
        let before = values(&model);
        let batch: Vec<Item> = match stage {
            Stage::General => items(&general, Task::General),
            Stage::Emotion => items(&emotion, Task::Emotion),
            Stage::Joint | Stage::Baseline | Stage::Adapt => mixed.clone(),
        };
        let mut trainer = Trainer::new(&config, model, TrainOptions { encoder_modules, ..options(stage, 1) });
        trainer.train_step(&batch);
        let after = values(&trainer.model);
        for ((name, a), (_, b)) in before.iter().zip(&after) {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            if must_stay.iter().any(|p| name.starts_with(p)) {
                assert!(same, "{stage:?} changed frozen `{name}`");
            }
            if must_move.iter().any(|p| name.starts_with(p)) && name.ends_with("weight") {
                assert!(!same, "{stage:?} did not train `{name}`");
            }
        }
    }
}

#[test]
fn resuming_a_checkpoint_takes_the_same_next_step() {
    let config = Config::default();
    let data = digits(8);
    let batch = items(&data, Task::General);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("ckpt");

    let model = HybridModel::init(&config, &cpu(), 4).unwrap();
    let mut trainer = Trainer::new(&config, model, options(Stage::General, 6));
    for _ in 0..3 {
        trainer.train_step(&batch);
    }
    trainer.save_checkpoint(&checkpoint).unwrap();
    let uninterrupted = trainer.train_step(&batch);
    let uninterrupted_weights = trainer.model.valid().to_safetensors().unwrap();

    let mut resumed = Trainer::resume(&checkpoint).unwrap();
    assert_eq!(resumed.step, 3);
    let next = resumed.train_step(&batch);
    assert_eq!(next.to_bits(), uninterrupted.to_bits(), "loss {next} vs {uninterrupted}");
    let resumed_weights = resumed.model.valid().to_safetensors().unwrap();
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&uninterrupted_weights).unwrap(),
        safetensors::SafeTensors::deserialize(&resumed_weights).unwrap(),
    );
    for name in a.names() {
        assert!(a.tensor(name).unwrap().data() == b.tensor(name).unwrap().data(), "`{name}` differs after resuming");
    }
    // Saving again replaces the checkpoint in one piece.
    resumed.save_checkpoint(&checkpoint).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&checkpoint).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["optimizer.bpk", "state.json", "weights.safetensors"]);
}
