use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use emoedge_models::manifest::Variant;
use emoedge_trainer::data::Split;
use emoedge_trainer::eval::{LabelledSet, Scored, recipe_set, score_set, write_results};
use emoedge_trainer::finetune::{FinetuneSpec, Holdout, finetune};
use emoedge_trainer::labelled::{Faces, LabelNames, LabelledFaces, LabelledOptions, SplitBy, read_labelled};
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

/// A bundle variant, as `--variant` names it.
#[derive(Clone, Copy, ValueEnum)]
enum VariantArg {
    Fp32,
    Fp16,
    Int8,
}

impl From<VariantArg> for Variant {
    fn from(arg: VariantArg) -> Self {
        match arg {
            VariantArg::Fp32 => Variant::Fp32,
            VariantArg::Fp16 => Variant::Fp16,
            VariantArg::Int8 => Variant::Int8,
        }
    }
}

impl From<StageArg> for Stage {
    fn from(arg: StageArg) -> Self {
        match arg {
            StageArg::General => Stage::General,
            StageArg::Emotion => Stage::Emotion,
            StageArg::Joint => Stage::Joint,
            StageArg::SinglePath => Stage::Baseline,
        }
    }
}

/// `--calibration`: `max`, or a percentile of |x| in (50, 100] such as 99.99.
fn calibration(text: &str) -> Result<Calibration, String> {
    if text == "max" {
        return Ok(Calibration::Max);
    }
    match text.parse::<f64>() {
        Ok(percentile) if percentile > 50.0 && percentile <= 100.0 => Ok(Calibration::Percentile { percentile }),
        _ => Err(format!("`{text}` is neither `max` nor a percentile in (50, 100]")),
    }
}

/// What one training run starts from, trains on and for how long.
#[derive(Args)]
struct RunOptions {
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
    /// The emotion set: a clip manifest (JSON lines, as `data` writes), a FER2013-style CSV
    /// (`emotion,pixels,Usage`), or a folder per class (`DIR/<emotion>/*.png`, optionally under
    /// `train/`, `val/`, `test/`).
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
    /// The folder scripts/setup filled, for the face detector that cuts a manifest's video
    /// lines (default: `assets/` of the checkout).
    #[arg(long)]
    assets: Option<PathBuf>,
}

impl RunOptions {
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
            emotion_examples: Vec::new(),
            label_weight: 0.0,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
            detector_dir: detector_dir(self.assets),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Capture faces of videos/stills with the runtime's face capture and label them with the
    /// teacher ensemble: DIR/faces.jsonl (a clip manifest) and DIR/teachers.jsonl.
    Data(DataArgs),
    /// Train one stage into a run folder (resumes if the folder holds a checkpoint).
    Train(TrainArgs),
    /// Score a run or bundle variants on labelled faces — the recipe's evaluation sets (people
    /// never trained on; `--teachers` adds the teachers) or your own (`--images`):
    /// OUT/eval.json, eval.md, confusion-<set>.png.
    Eval(EvalArgs),
    /// Adapt a finished model to your labelled faces (a folder per class): trains the emotion
    /// path and the gate on some people, scores before and after on the people held out, and
    /// writes a bundle for `emoedge run --model OUT/bundle`.
    Finetune(FinetuneArgs),
    /// Render the README's and the model card's evaluation tables from their committed
    /// eval.json files (`--check`: fail if a document differs).
    Figures(FiguresArgs),
    /// Write fer's pretrained mini-XCEPTION (batch norm folded) as encoder weights for
    /// `train --pretrained-encoder`.
    EncoderInit(EncoderInitArgs),
    /// Print a finished run's emotion for each face of some images.
    Predict(PredictArgs),
    /// Calibrate a finished run and write its INT8 and FP16 variants (quant.json,
    /// weights-int8.safetensors, weights-fp16.safetensors), reporting agreement with FP32.
    Quantize(QuantizeArgs),
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

/// The trainer's one asset rule: `--assets DIR`, else the `assets/` folder scripts/setup
/// filled, found from the current folder or the executable as the runtime finds its files.
fn assets_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir),
        None => emoedge_inference::assets::find(std::path::Path::new("assets")).context(
            "the assets folder (assets/) was not found in the current folder, the folders above it or above the executable; run scripts/setup, or pass --assets DIR",
        ),
    }
}

/// The face detector under the assets, when they are found (needed only to cut video).
fn detector_dir(assets: Option<PathBuf>) -> Option<PathBuf> {
    assets_dir(assets).ok().map(|assets| mtcnn_dir(&assets))
}

/// MTCNN as the runtime opens it (`emoedge-export mtcnn`, run by scripts/setup): training crops
/// are cut by the detector that inference uses.
fn mtcnn_dir(assets: &std::path::Path) -> PathBuf {
    assets.join("detectors/mtcnn")
}

/// The runtime's face capture with the detector that scripts/setup put under `assets`.
fn face_capture(assets: &std::path::Path) -> anyhow::Result<FaceCapture> {
    let size = emoedge_models::Config::default().crop_size as u32;
    Ok(FaceCapture::open(&CaptureOptions::new(mtcnn_dir(assets), size))?)
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Data(args) => args.execute(),
        Command::Train(args) => args.execute(),
        Command::Eval(args) => args.execute(),
        Command::Finetune(args) => args.execute(),
        Command::Figures(args) => args.execute(),
        Command::EncoderInit(args) => args.execute(),
        Command::Predict(args) => args.execute(),
        Command::Quantize(args) => args.execute(),
    }
}

#[derive(Args)]
struct DataArgs {
    /// Videos or stills for training (and lfw_subset.npy).
    #[arg(required_unless_present = "recipe")]
    inputs: Vec<PathBuf>,
    /// A data recipe (trainer/recipes/default.json): its train and val sources (its evaluation
    /// sets are captured by `emoedge-train eval` when it scores them).
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
    /// The folder scripts/setup filled (default: `assets/` of the checkout).
    #[arg(long)]
    assets: Option<PathBuf>,
}

impl DataArgs {
    fn execute(self) -> anyhow::Result<()> {
        let Self { inputs, recipe, val, out, every, assets } = self;
        let assets = assets_dir(assets)?;
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
        Ok(())
    }
}

#[derive(Args)]
struct TrainArgs {
    /// `single-path` is the baseline that trains the general path alone on faces and
    /// replayed digits, for measuring forgetting.
    #[arg(long, value_enum)]
    stage: StageArg,
    #[command(flatten)]
    run: RunOptions,
}

impl TrainArgs {
    fn execute(self) -> anyhow::Result<()> {
        let Self { stage, run: args } = self;
        let stage = Stage::from(stage);
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
        Ok(())
    }
}

/// How `--images` is read (eval and finetune).
#[derive(Args)]
struct LabelledArgs {
    /// Class folder names → emotions, for folders not named after them: `glad=happy,calm=neutral`.
    #[arg(long, requires = "images")]
    labels: Option<LabelNames>,
    /// Whether the folder holds photos (faces found by the detector) or face crops.
    #[arg(long, value_enum, default_value_t = Faces::Detect)]
    faces: Faces,
    /// Where a face's person is read from (the bootstrap resamples whole people, fine-tuning
    /// holds them out); default: a person folder if there is one, else each photo is its own.
    #[arg(long, value_enum, requires = "images")]
    split_by: Option<SplitBy>,
}

impl LabelledArgs {
    fn read(&self, images: &std::path::Path, assets: &std::path::Path) -> anyhow::Result<LabelledFaces> {
        let options = LabelledOptions {
            faces: self.faces,
            labels: self.labels.clone().unwrap_or_default(),
            split_by: self.split_by,
            detector_dir: Some(mtcnn_dir(assets)),
            size: emoedge_models::Config::default().crop_size as u32,
        };
        read_labelled(images, &options)
    }
}

#[derive(Args)]
struct EvalArgs {
    /// A finished run folder (scored with the burn reference, gated).
    #[arg(long, required_unless_present = "bundle", conflicts_with = "bundle")]
    run: Option<PathBuf>,
    /// An exported bundle (scored in ONNX Runtime, as `emoedge run` runs it).
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// The bundle variants to score, each a row (`fp32,fp16,int8`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "fp32")]
    variant: Vec<VariantArg>,
    /// Your labelled faces instead of the recipe's sets: a folder per class
    /// (`DIR/<emotion>/<photo>` or `DIR/<emotion>/<person>/<photo>`), a FER2013-style `.csv`,
    /// or a clip manifest (`.jsonl`). Faces not found are listed, not fatal.
    #[arg(long)]
    images: Option<PathBuf>,
    #[command(flatten)]
    labelled: LabelledArgs,
    /// With --run: also score the frame model alone, each window's frames as stills with their
    /// log-probabilities averaged (row `student, mean of frames`), against the clip head.
    #[arg(long, requires = "run")]
    frame_mean: bool,
    /// Also score the teachers (fer, face-api, facex, their ensemble) on the recipe's sets, on
    /// the same clips (needs the teachers' Python, which scripts/setup installs).
    #[arg(long, conflicts_with = "images")]
    teachers: bool,
    #[arg(long, default_value_os_t = emoedge_trainer::recipe::Recipe::default_path(), conflicts_with = "images")]
    recipe: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// The folder scripts/setup filled (default: `assets/` of the checkout).
    #[arg(long)]
    assets: Option<PathBuf>,
}

impl EvalArgs {
    fn scored(&self) -> Vec<Scored> {
        match (&self.run, &self.bundle) {
            (Some(run), _) if self.frame_mean => vec![Scored::Run(run.clone()), Scored::RunFrameMean(run.clone())],
            (Some(run), _) => vec![Scored::Run(run.clone())],
            (None, Some(dir)) => {
                self.variant.iter().map(|&v| Scored::Bundle { dir: dir.clone(), variant: v.into() }).collect()
            }
            (None, None) => Vec::new(),
        }
    }

    /// The sets to score: the user's labelled faces, or the recipe's evaluation sets.
    fn sets(&self, assets: &std::path::Path) -> anyhow::Result<Vec<LabelledSet>> {
        let config = emoedge_models::Config::default();
        if let Some(images) = &self.images {
            let faces = self.labelled.read(images, assets)?;
            let name = images.file_stem().map_or("images".into(), |n| n.to_string_lossy().into_owned());
            let people = faces.people.iter().collect::<std::collections::BTreeSet<_>>().len();
            let about = format!(
                "{} ({} faces with several found: the largest taken)",
                images.display(),
                faces.several_faces.len()
            );
            return Ok(vec![LabelledSet {
                name,
                about,
                people,
                examples: faces.examples,
                groups: faces.people,
                not_found: faces.not_found,
                teachers: Vec::new(),
            }]);
        }
        let recipe = Recipe::load(&self.recipe)?;
        let teachers = self.teachers.then(|| Teachers::from_assets(assets)).transpose()?;
        let mut capture = face_capture(assets)?;
        recipe
            .eval
            .iter()
            .map(|set| recipe_set(set, assets, &mut capture, config.clip_length, teachers.as_ref()))
            .collect()
    }

    fn execute(self) -> anyhow::Result<()> {
        let assets = assets_dir(self.assets.clone())?;
        let scored = self.scored();
        let mut results = Vec::new();
        for set in self.sets(&assets)? {
            anyhow::ensure!(
                !set.examples.is_empty(),
                "{}: no labelled face to score ({} inputs without a face found)",
                set.name,
                set.not_found.len()
            );
            results.push(score_set(&scored, &set)?);
        }
        write_results(&self.out, &results)?;
        print!("{}", emoedge_trainer::eval::table(&results));
        for result in &results {
            for missing in &result.not_found {
                println!("{}: not scored, {}", result.set, emoedge_support::printable(missing));
            }
        }
        println!("wrote {}/eval.json, eval.md and a confusion-<set>.png per set", self.out.display());
        Ok(())
    }
}

#[derive(Args)]
struct FinetuneArgs {
    /// Your labelled faces: a folder per class (`DIR/<emotion>/<person>/<photo>`, or with
    /// `--split-by prefix` `DIR/<emotion>/<person>_<n>.jpg`), a FER2013-style `.csv` or a clip
    /// manifest.
    #[arg(long)]
    images: PathBuf,
    #[command(flatten)]
    labelled: LabelledArgs,
    /// These people are held out (never trained on) and scored before and after:
    /// `--holdout-people anna,ben`.
    #[arg(long, value_delimiter = ',', conflicts_with = "holdout")]
    holdout_people: Vec<String>,
    /// Else this share of the people, drawn with `--seed`.
    #[arg(long, default_value_t = 0.25)]
    holdout: f64,
    /// The finished run to adapt (default: the checkout's `models/default`).
    #[arg(long)]
    init: Option<PathBuf>,
    /// fer's classifier (`encoder-init`'s file) as the online teacher; by default it is written
    /// into OUT with the teachers' Python (scripts/setup installs it). Not needed with
    /// `--label-weight 1`.
    #[arg(long)]
    online_teacher: Option<PathBuf>,
    /// The share of a labelled face's loss that its label carries; the online teacher's
    /// logits carry the rest (they keep what the model knows of faces you have few of).
    #[arg(long, default_value_t = 0.5)]
    label_weight: f32,
    /// The general task's digits, replayed so that the gate keeps its routes.
    #[arg(long)]
    general: Option<PathBuf>,
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Recorded in the bundle's manifest and in every result it gives.
    #[arg(long, default_value = "finetuned")]
    model_version: String,
    #[arg(long)]
    out: PathBuf,
    /// The folder scripts/setup filled (default: `assets/` of the checkout).
    #[arg(long)]
    assets: Option<PathBuf>,
}

impl FinetuneArgs {
    fn execute(self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.label_weight),
            "--label-weight {} is not in [0, 1]",
            self.label_weight
        );
        let assets = assets_dir(self.assets.clone())?;
        let faces = self.labelled.read(&self.images, &assets)?;
        for missing in &faces.not_found {
            println!("not used, {}", emoedge_support::printable(missing));
        }
        let online_teacher = match (&self.online_teacher, self.label_weight < 1.0) {
            (Some(file), _) => Some(file.clone()),
            (None, false) => None,
            (None, true) => {
                let file = self.out.join("fer-encoder.safetensors");
                emoedge_support::private_dir(&self.out)?;
                Teachers::from_assets(&assets)?.export_fer_encoder(&file).context(
                    "the online teacher is written with the teachers' Python: run scripts/setup, or give --online-teacher FILE or --label-weight 1",
                )?;
                Some(file)
            }
        };
        let holdout = if self.holdout_people.is_empty() {
            Holdout::Share(self.holdout)
        } else {
            Holdout::People(self.holdout_people)
        };
        let init = match self.init {
            Some(dir) => dir,
            None => emoedge_inference::assets::find(std::path::Path::new("models/default"))
                .context("the default model (models/default) was not found from here; pass --init RUN")?,
        };
        let spec = FinetuneSpec {
            faces,
            holdout,
            init,
            online_teacher,
            label_weight: self.label_weight,
            general: self.general.unwrap_or_else(|| assets.join("digits/digits.csv.gz")),
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: self.seed,
            model_version: self.model_version,
            out: self.out.clone(),
        };
        let done = finetune(spec)?;
        print!("{}", emoedge_trainer::eval::table(&done.results));
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", 100.0 * v));
        println!(
            "held out: {}; digits through the gate {} → {}",
            emoedge_support::printable(&done.report.held_out_people.join(", ")),
            pct(done.report.general_accuracy_before),
            pct(done.report.general_accuracy_after)
        );
        println!(
            "wrote {0}/run, {0}/eval, {0}/finetune.json; run it with `emoedge run --model {1}`",
            self.out.display(),
            done.bundle.display()
        );
        Ok(())
    }
}

#[derive(Args)]
struct FiguresArgs {
    /// Report documents whose tables differ from their eval.json, and fail; write nothing.
    #[arg(long)]
    check: bool,
    /// The checkout (default: the one this program was built from).
    #[arg(long, default_value_os_t = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))]
    root: PathBuf,
}

impl FiguresArgs {
    fn execute(self) -> anyhow::Result<()> {
        let root = std::fs::canonicalize(&self.root)
            .map_err(|e| anyhow::anyhow!("checkout {} not found ({e}); pass --root DIR", self.root.display()))?;
        let stale = emoedge_trainer::figures::publish(&root, self.check)?;
        let names: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
        match (self.check, stale.is_empty()) {
            (_, true) => println!("every published table matches its eval.json"),
            (true, false) => anyhow::bail!(
                "{} differ from their eval.json: run `emoedge-train figures` (or re-run the eval that wrote it)",
                names.join(", ")
            ),
            (false, false) => println!("rewrote the tables of {}", names.join(", ")),
        }
        Ok(())
    }
}

#[derive(Args)]
struct EncoderInitArgs {
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    assets: Option<PathBuf>,
}

impl EncoderInitArgs {
    fn execute(self) -> anyhow::Result<()> {
        let Self { out, assets } = self;
        Teachers::from_assets(&assets_dir(assets)?)?.export_fer_encoder(&out)?;
        println!("wrote fer's mini-XCEPTION encoder (batch norm folded) → {}", out.display());
        Ok(())
    }
}

#[derive(Args)]
struct PredictArgs {
    #[arg(long)]
    run: PathBuf,
    images: Vec<PathBuf>,
    #[arg(long)]
    assets: Option<PathBuf>,
}

impl PredictArgs {
    fn execute(self) -> anyhow::Result<()> {
        let Self { run, images, assets } = self;
        let assets = assets_dir(assets)?;
        let mut capture = face_capture(&assets)?;
        for p in predict(&run, &images, &mut capture)? {
            println!("{} face {}: {}", p.image.display(), p.face, p.label);
        }
        Ok(())
    }
}

#[derive(Args)]
struct QuantizeArgs {
    /// The run folder (weights.safetensors + config.json).
    #[arg(long)]
    run: PathBuf,
    #[arg(long)]
    general: Option<PathBuf>,
    /// The emotion set (any format `train --emotion` reads) whose splits calibrate and check the
    /// variants.
    #[arg(long)]
    emotion: PathBuf,
    /// max, or a percentile of |x| in (50, 100] such as 99.99.
    #[arg(long, default_value = "max", value_parser = calibration)]
    calibration: Calibration,
    /// Held-out samples to calibrate on.
    #[arg(long, default_value_t = 128)]
    samples: usize,
    /// The folder scripts/setup filled, for the face detector that cuts the manifest's
    /// video lines (default: `assets/` of the checkout).
    #[arg(long)]
    assets: Option<PathBuf>,
}

impl QuantizeArgs {
    fn execute(self) -> anyhow::Result<()> {
        let Self { run, general, emotion, calibration, samples, assets } = self;
        let detector_dir = detector_dir(assets);
        let spec =
            QuantizeSpec { run: run.clone(), general, emotion: Some(emotion), calibration, samples, detector_dir };
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
        Ok(())
    }
}
