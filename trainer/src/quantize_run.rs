//! `emoedge-train quantize`: calibrate a finished run on training samples, write its INT8 and
//! FP16 variants with `quant.json`, and report how far each drifts from FP32 on held-out
//! samples — calibration and report never share a sample. (`emoedge-train eval --bundle
//! --variant int8` scores the exported variants on the evaluation sets.)

use std::path::{Path, PathBuf};

use emoedge_models::reference::Routing;

use crate::data::digits::read_digits;
use crate::data::{Example, Split};
use crate::quant::{Calibration, CalibrationTap, Fp16Tap, Int8Tap, quantize};
use crate::run::load_model;
use crate::train::{EvalReport, Item, Task, evaluate_tapped};

pub struct QuantizeSpec {
    pub run: PathBuf,
    pub general: Option<PathBuf>,
    pub emotion: Option<PathBuf>,
    pub calibration: Calibration,
    pub samples: usize,
    /// The face detector that cuts the manifest's video lines, if one was found.
    pub detector_dir: Option<PathBuf>,
}

/// One variant's results on the held-out items.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VariantReport {
    pub variant: String,
    pub emotion_top1_agreement_with_fp32: f64,
    pub general_top1_agreement_with_fp32: Option<f64>,
    pub teacher_agreement: Option<f64>,
    pub general_accuracy: Option<f64>,
}

pub fn quantize_run(spec: &QuantizeSpec) -> anyhow::Result<Vec<VariantReport>> {
    let size = emoedge_models::Config::load(spec.run.join("config.json"))?.crop_size as u32;
    let general: Vec<Example> = match &spec.general {
        Some(p) => read_digits(p, size)?,
        None => Vec::new(),
    };
    let emotion: Vec<Example> = match &spec.emotion {
        Some(p) => crate::run::read_emotion(p, size, spec.detector_dir.clone())?,
        None => Vec::new(),
    };
    quantize_examples(&spec.run, &general, &emotion, spec.calibration, spec.samples)
}

/// [`quantize_run`] on examples read already: calibrates on up to `samples` training items of
/// `emotion` and `general`, checks on their held-out items.
pub fn quantize_examples(
    run: &Path,
    general: &[Example],
    emotion: &[Example],
    calibration_rule: Calibration,
    samples: usize,
) -> anyhow::Result<Vec<VariantReport>> {
    let (config, model) = load_model(Some(run), None, 0)?;
    fn items(examples: &[Example], task: Task, train: bool) -> Vec<Item<'_>> {
        examples.iter().filter(|e| (e.split == Split::Train) == train).map(|example| Item { task, example }).collect()
    }
    let (emotion_items, general_items) = (items(emotion, Task::Emotion, false), items(general, Task::General, false));
    anyhow::ensure!(
        !emotion_items.is_empty(),
        "quantization is checked on held-out faces: the emotion set has no val or test split"
    );

    // Calibrate on up to `samples` training faces and digits, through the gated route, spread
    // over the training split (every k-th) so that no source dominates.
    fn spread(pool: Vec<Item<'_>>, n: usize) -> Vec<Item<'_>> {
        let step = (pool.len() / n.max(1)).max(1);
        pool.into_iter().step_by(step).take(n).collect()
    }
    let (emotion_pool, general_pool) = (items(emotion, Task::Emotion, true), items(general, Task::General, true));
    anyhow::ensure!(
        !emotion_pool.is_empty(),
        "quantization is calibrated on training faces: the emotion set has no train split"
    );
    let n_general = general_pool.len().min(samples / 2);
    let n_emotion = emotion_pool.len().min(samples - n_general);
    let mut calibration_items = spread(emotion_pool, n_emotion);
    calibration_items.extend(spread(general_pool, n_general));
    let calibration = CalibrationTap::default();
    evaluate_tapped(&model, &config, &calibration_items, Routing::Gated, config.general_classes, Some(&calibration));
    let quantized = quantize(&config, &model, &calibration, calibration_rule, calibration_items.len())?;

    emoedge_support::write_atomic(&run.join("quant.json"), serde_json::to_string_pretty(&quantized.spec)?.as_bytes())?;
    emoedge_support::write_atomic(&run.join("weights-int8.safetensors"), &quantized.int8_safetensors)?;
    emoedge_support::write_atomic(&run.join("weights-fp16.safetensors"), &quantized.fp16_safetensors)?;

    let score = |m, tap: Option<&dyn emoedge_models::reference::Tap>, items: &[Item]| -> EvalReport {
        evaluate_tapped(m, &config, items, Routing::Gated, config.general_classes, tap)
    };
    let fp32 = (score(&model, None, &emotion_items), score(&model, None, &general_items));
    let int8_tap = Int8Tap::from_spec(&quantized.spec);
    let variants: [(&'static str, (EvalReport, EvalReport)); 3] = [
        ("fp32", fp32.clone()),
        (
            "fp16",
            (
                score(&quantized.fp16_model, Some(&Fp16Tap), &emotion_items),
                score(&quantized.fp16_model, Some(&Fp16Tap), &general_items),
            ),
        ),
        (
            "int8",
            (
                score(&quantized.int8_model, Some(&int8_tap), &emotion_items),
                score(&quantized.int8_model, Some(&int8_tap), &general_items),
            ),
        ),
    ];
    let agreement =
        |a: &[usize], b: &[usize]| a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len().max(1) as f64;
    let reports: Vec<VariantReport> = variants
        .into_iter()
        .map(|(variant, (emotion, general))| VariantReport {
            variant: variant.to_string(),
            emotion_top1_agreement_with_fp32: agreement(&emotion.predicted, &fp32.0.predicted),
            general_top1_agreement_with_fp32: (!general.predicted.is_empty())
                .then(|| agreement(&general.predicted, &fp32.1.predicted)),
            teacher_agreement: emotion.teacher_agreement,
            general_accuracy: general.general.map(|c| c.war()),
        })
        .collect();
    emoedge_support::write_atomic(&run.join("quant-report.json"), serde_json::to_string_pretty(&reports)?.as_bytes())?;
    Ok(reports)
}
