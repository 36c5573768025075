//! One training run: AdamW with gradient clipping and a cosine schedule over the stage's
//! trainable parameters, mixed hard/soft targets, resumable checkpoints.

use std::path::Path;

use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, Routing, Tap, Taps};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::batch::{Sampling, clip_features, make_batch};
use super::loss::mixed_loss;
use super::online_teacher::OnlineTeacher;
use super::schedule::CosineSchedule;
use super::stage::Stage;
use crate::augment::Augment;
use crate::data::{Example, Target};
use crate::metrics::Confusion;

/// Which head an example trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Task {
    General,
    Emotion,
}

#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub task: Task,
    pub example: &'a Example,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainOptions {
    pub stage: Stage,
    pub batch_size: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
    pub weight_decay: f32,
    /// Gradients are clipped to this global L2 norm.
    pub grad_clip: f32,
    /// Distillation temperature for soft targets.
    pub temperature: f32,
    pub seed: u64,
    /// Encoder modules (from the top) that the general, emotion and baseline stages train;
    /// 0 keeps a pretrained encoder as it is (see [`Stage::freeze`]).
    pub encoder_modules: usize,
    /// Weight of the router's task-label loss in the joint stage (general → g_general,
    /// emotion → g_emotion), which teaches the gate what each expert is for.
    pub gate_supervision: f32,
    /// Flip, affine and colour jitter on training crops.
    pub augment: bool,
    /// fer's classifier (`emoedge-train encoder-init`'s file) as the online teacher of emotion
    /// items: their targets become fer's logits on the very crops of the step.
    pub online_teacher: Option<std::path::PathBuf>,
    /// With an online teacher: the share of the loss of a hard-labelled emotion item that its
    /// label carries (the teacher's logits carry the rest). 0 lets the teacher decide alone, as
    /// the default model was trained; fine-tuning on a site's labelled faces mixes both.
    #[serde(default)]
    pub label_weight: f32,
}

impl TrainOptions {
    pub fn new(stage: Stage, total_steps: usize) -> Self {
        Self {
            stage,
            batch_size: 32,
            lr: 2e-3,
            min_lr: 2e-5,
            warmup_steps: (total_steps / 20).max(1),
            total_steps,
            weight_decay: 1e-4,
            grad_clip: 1.0,
            temperature: 2.0,
            seed: 0,
            encoder_modules: 0,
            gate_supervision: 0.1,
            augment: true,
            online_teacher: None,
            label_weight: 0.0,
        }
    }
}

pub struct Trainer {
    pub model: HybridModel,
    online_teacher: Option<OnlineTeacher>,
    optimizer: ModuleOptimizer,
    pub step: usize,
    pub options: TrainOptions,
    config: Config,
    device: Device,
    augment: Augment,
}

impl Trainer {
    /// Starts training `model` (any device) for `options.stage`; loads the online teacher the
    /// options name.
    pub fn with_teacher(config: &Config, model: HybridModel, options: TrainOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(
            options.online_teacher.is_none() || options.encoder_modules == 0,
            "the online teacher reads fer's classifier off the encoder's features, so the encoder must stay fer's: \
             use --encoder-modules 0 with --online-teacher"
        );
        let mut trainer = Self::new(config, model, options);
        if let Some(path) = &trainer.options.online_teacher {
            trainer.online_teacher = Some(OnlineTeacher::load(path, config.token_dim, &trainer.device)?);
        }
        Ok(trainer)
    }

    /// Starts training `model` (any device) for `options.stage`, without an online teacher.
    pub fn new(config: &Config, model: HybridModel, options: TrainOptions) -> Self {
        let device = emoedge_models::reference::cpu().autodiff();
        let model = options.stage.freeze(model.set_require_grad(true).train().fork(&device), options.encoder_modules);
        let optimizer = AdamWConfig::new()
            .with_weight_decay(options.weight_decay)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(options.grad_clip)))
            .init();
        let augment = if options.augment { Augment::default() } else { Augment::NONE };
        Self { model, online_teacher: None, optimizer, step: 0, options, config: config.clone(), device, augment }
    }

    pub fn schedule(&self) -> CosineSchedule {
        CosineSchedule {
            base_lr: self.options.lr,
            min_lr: self.options.min_lr,
            warmup_steps: self.options.warmup_steps,
            total_steps: self.options.total_steps,
        }
    }

    /// One optimisation step on `items`; returns the loss before the update. The step's
    /// randomness (frame sampling, augmentation) depends only on the seed and the step number,
    /// so a resumed run takes exactly the steps an uninterrupted one would.
    pub fn train_step(&mut self, items: &[Item]) -> f32 {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.options.seed ^ (self.step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let examples: Vec<&Example> = items.iter().map(|i| i.example).collect();
        let batch = make_batch(
            &examples,
            self.config.clip_length,
            &mut Sampling::Train { rng: &mut rng, augment: &self.augment },
            &self.device,
        );
        let targets = match &self.online_teacher {
            Some(teacher) if items.iter().any(|i| i.task == Task::Emotion) => {
                let per_crop = teacher.logits(self.model.encoder.feature_map(batch.frames.clone(), &Taps::none()));
                let t = self.config.clip_length;
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item.task {
                        Task::General => batch.targets[i].clone(),
                        Task::Emotion => {
                            let rows = &batch.rows[i * t..(i + 1) * t];
                            Target::Logits(
                                (0..7).map(|k| rows.iter().map(|&r| per_crop[r][k]).sum::<f32>() / t as f32).collect(),
                            )
                        }
                    })
                    .collect()
            }
            _ => batch.targets.clone(),
        };
        let features = clip_features(&self.model, &batch, &Taps::none());
        let out = self.model.forward_clip_routed(features, self.options.stage.routing());
        let loss = self.loss(items, [&targets, &batch.targets], out.emotion_logits, out.general_logits, out.gate);
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let lr = self.schedule().lr(self.step);
        self.model = self.optimizer.step(lr, self.model.clone(), grads);
        self.step += 1;
        value
    }

    /// The step's loss. `[targets, labels]`: each item's training target (the online teacher's
    /// logits for emotion items when there is one) and its own target as the data gave it; a
    /// hard label differing from its target is mixed in with `label_weight`.
    #[allow(clippy::expect_used, reason = "batches are built non-empty, so one term is always added")]
    fn loss(
        &self,
        items: &[Item],
        [targets, labels]: [&[Target]; 2],
        emotion_logits: Tensor<2>,
        general_logits: Tensor<2>,
        gate: Tensor<2>,
    ) -> Tensor<1> {
        let rows = |task: Task| -> Vec<usize> { (0..items.len()).filter(|&i| items[i].task == task).collect() };
        let pick = |logits: Tensor<2>, rows: &[usize]| {
            let index: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
            logits.select(0, Tensor::<1, Int>::from_data(TensorData::new(index, [rows.len()]), &self.device))
        };
        let targets_of = |rows: &[usize]| -> Vec<Target> { rows.iter().map(|&r| targets[r].clone()).collect() };
        let mut total: Option<Tensor<1>> = None;
        let mut add = |part: Tensor<1>, share: f32| {
            let part = part.mul_scalar(share);
            total = Some(match total.take() {
                Some(t) => t + part,
                None => part,
            });
        };
        let n = items.len() as f32;
        let (emotion, general) = (rows(Task::Emotion), rows(Task::General));
        let w = self.options.label_weight;
        let (mixed, plain): (Vec<usize>, Vec<usize>) =
            emotion.iter().partition(|&&r| w > 0.0 && matches!(labels[r], Target::Hard(_)) && labels[r] != targets[r]);
        let emotion_loss = |rows: &[usize], targets: &[Target]| {
            let chosen: Vec<Target> = rows.iter().map(|&r| targets[r].clone()).collect();
            mixed_loss(pick(emotion_logits.clone(), rows), &chosen, self.options.temperature, &self.device)
        };
        if !plain.is_empty() {
            add(emotion_loss(&plain, targets), plain.len() as f32 / n);
        }
        if !mixed.is_empty() {
            let share = mixed.len() as f32 / n;
            add(emotion_loss(&mixed, targets), share * (1.0 - w));
            add(emotion_loss(&mixed, labels), share * w);
        }
        if !general.is_empty() {
            let loss = mixed_loss(pick(general_logits, &general), &targets_of(&general), 1.0, &self.device);
            add(loss, general.len() as f32 / n);
        }
        if self.options.stage.routing() == Routing::Gated && self.options.gate_supervision > 0.0 {
            // log of the gate's probabilities are log-softmax values: cross-entropy on the route.
            let route: Vec<Target> =
                items.iter().map(|i| Target::Hard(if i.task == Task::General { 0 } else { 1 })).collect();
            add(mixed_loss(gate.clamp_min(1e-6).log(), &route, 1.0, &self.device), self.options.gate_supervision);
        }
        total.expect("a batch has at least one item")
    }

    /// Writes weights, optimizer state and progress to `dir`, replacing it atomically.
    pub fn save_checkpoint(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = emoedge_support::AtomicDir::create(dir)?;
        self.model.valid().save_safetensors(tmp.path().join("weights.safetensors"))?;
        self.optimizer
            .save(tmp.path().join("optimizer.bpk"))
            .map_err(|e| anyhow::anyhow!("saving optimizer state: {e:?}"))?;
        let state = serde_json::json!({ "step": self.step, "options": self.options, "config": self.config });
        std::fs::write(tmp.path().join("state.json"), serde_json::to_string_pretty(&state)?)?;
        tmp.commit()?;
        Ok(())
    }

    /// Continues the run saved in `dir`.
    pub fn resume(dir: &Path) -> anyhow::Result<Self> {
        let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("state.json"))?)?;
        let config: Config = serde_json::from_value(state["config"].clone())?;
        let options: TrainOptions = serde_json::from_value(state["options"].clone())?;
        let model =
            HybridModel::load_safetensors(&config, dir.join("weights.safetensors"), &emoedge_models::reference::cpu())?;
        let mut trainer = Self::with_teacher(&config, model, options)?;
        trainer.optimizer = trainer
            .optimizer
            .load(dir.join("optimizer.bpk"))
            .map_err(|e| anyhow::anyhow!("loading optimizer state from {}: {e:?}", dir.display()))?;
        trainer.step = state["step"].as_u64().unwrap_or(0) as usize;
        Ok(trainer)
    }
}

/// Results on a set of items, per task.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct EvalReport {
    pub emotion: Option<Confusion>,
    pub general: Option<Confusion>,
    /// Share of soft-labelled emotion items whose top-1 equals the teacher's.
    pub teacher_agreement: Option<f64>,
    /// Mean (g_general, g_emotion) over emotion items and over general items.
    pub gate_on_emotion: Option<[f64; 2]>,
    pub gate_on_general: Option<[f64; 2]>,
    /// Top-1 prediction per item, in order.
    #[serde(skip)]
    pub predicted: Vec<usize>,
    /// Emotion probabilities per emotion item, in order.
    #[serde(skip)]
    pub emotion_probs: Vec<[f32; 7]>,
}

/// Evaluates `model` (inference mode) on `items` with `routing`.
pub fn evaluate(
    model: &HybridModel,
    config: &Config,
    items: &[Item],
    routing: Routing,
    general_classes: usize,
) -> EvalReport {
    evaluate_tapped(model, config, items, routing, general_classes, None)
}

/// [`evaluate`] with a tap on every conv/linear input (quantization simulation).
pub fn evaluate_tapped(
    model: &HybridModel,
    config: &Config,
    items: &[Item],
    routing: Routing,
    general_classes: usize,
    tap: Option<&dyn Tap>,
) -> EvalReport {
    let taps = tap.map_or_else(Taps::none, Taps::new);
    let model = model.valid();
    let device = emoedge_models::reference::cpu();
    let model = model.fork(&device);
    let mut report = EvalReport::default();
    let (mut agree, mut soft) = (0usize, 0usize);
    let mut gates = [[0.0f64; 2]; 2];
    let mut gate_counts = [0usize; 2];
    for chunk in items.chunks(32) {
        let examples: Vec<&Example> = chunk.iter().map(|i| i.example).collect();
        let batch = make_batch::<ChaCha8Rng>(&examples, config.clip_length, &mut Sampling::Eval, &device);
        let out = model.forward_clip_tapped(clip_features(&model, &batch, &taps), routing, &taps);
        let emotion = out.emotion_probs.into_data().try_to_vec::<f32>().unwrap_or_default();
        let general = out.general_logits.into_data().try_to_vec::<f32>().unwrap_or_default();
        let gate = out.gate.into_data().try_to_vec::<f32>().unwrap_or_default();
        for (i, item) in chunk.iter().enumerate() {
            let truth = item.example.target.argmax();
            let (scores, k, confusion) = match item.task {
                Task::Emotion => (&emotion[i * 7..(i + 1) * 7], 7, &mut report.emotion),
                Task::General => {
                    (&general[i * general_classes..(i + 1) * general_classes], general_classes, &mut report.general)
                }
            };
            if item.task == Task::Emotion {
                report.emotion_probs.push(std::array::from_fn(|k| scores[k]));
            }
            let predicted = emoedge_models::argmax(scores);
            report.predicted.push(predicted);
            confusion.get_or_insert_with(|| Confusion::new(k)).add(truth, predicted);
            if matches!(item.example.target, Target::Soft(_) | Target::Logits(_)) {
                soft += 1;
                agree += usize::from(predicted == truth);
            }
            let t = usize::from(item.task == Task::Emotion);
            gates[t][0] += gate[2 * i] as f64;
            gates[t][1] += gate[2 * i + 1] as f64;
            gate_counts[t] += 1;
        }
    }
    if soft > 0 {
        report.teacher_agreement = Some(agree as f64 / soft as f64);
    }
    let mean = |t: usize| (gate_counts[t] > 0).then(|| gates[t].map(|g| g / gate_counts[t] as f64));
    report.gate_on_general = mean(0);
    report.gate_on_emotion = mean(1);
    report
}
