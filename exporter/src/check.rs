//! `emoedge-export check`: every variant of a bundle, loaded by the runtime's own loader in ONNX
//! Runtime, against the reference forward on the same inputs.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use emoedge_inference::model::{EmotionModel, FaceFeatures};
use emoedge_inference::onnx::{Provider, SessionOptions};
use emoedge_models::argmax;
use emoedge_models::manifest::Variant;
use emoedge_models::reference::{HybridModel, cpu};

/// The pass criteria of each variant.
pub fn criterion(variant: Variant) -> Criterion {
    match variant {
        Variant::Fp32 => Criterion { max_abs_diff: Some(1e-4), min_top1: 1.0 },
        Variant::Fp16 => Criterion { max_abs_diff: Some(1e-2), min_top1: 0.99 },
        Variant::Int8 => Criterion { max_abs_diff: None, min_top1: 0.97 },
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Criterion {
    /// Largest allowed |Δ| of any frame output and of the emotion probabilities.
    pub max_abs_diff: Option<f32>,
    /// Smallest allowed top-1 agreement with the reference.
    pub min_top1: f64,
}

/// One variant on one input set.
#[derive(Debug, Clone)]
pub struct ParityRow {
    pub variant: Variant,
    pub inputs: String,
    pub clips: usize,
    /// Largest |Δ| over the frame part's outputs.
    pub frame_diff: f32,
    /// Largest |Δ| of the emotion probabilities.
    pub probs_diff: f32,
    pub top1_agree: usize,
    pub passed: bool,
}

impl ParityRow {
    pub fn top1(&self) -> f64 {
        self.top1_agree as f64 / self.clips.max(1) as f64
    }
}

/// A named set of preprocessed clips, `[clips · T, 3, S, S]`.
pub struct Inputs {
    pub name: String,
    pub faces: Vec<f32>,
    pub clips: usize,
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The values of a reference output.
fn values(data: TensorData) -> anyhow::Result<Vec<f32>> {
    data.try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("the reference output is not f32: {e:?}"))
}

/// Compares `variant` of `bundle` with `model` on each input set, on ONNX Runtime's CPU provider.
pub fn check_variant(
    bundle: &Path,
    model: &HybridModel,
    variant: Variant,
    inputs: &[Inputs],
) -> anyhow::Result<Vec<ParityRow>> {
    let options = SessionOptions { provider: Provider::Cpu, ..Default::default() };
    let mut onnx_model = EmotionModel::load(bundle, variant, &options)?;
    let (t, s) = (onnx_model.manifest.clip_length, onnx_model.manifest.crop_size);
    let k = onnx_model.labels().len();
    let criterion = criterion(variant);
    let mut rows = Vec::new();
    for input in inputs {
        let n = input.clips * t;
        let faces = Tensor::<4>::from_data(TensorData::new(input.faces.clone(), [n, 3, s, s]), &cpu());
        let reference_frame = model.forward_frame(faces.clone());
        let reference = model.forward(faces.reshape([input.clips, t, 3, s, s]));
        let features = onnx_model.frame_features(&input.faces, n)?;
        let flat = |f: fn(&FaceFeatures) -> &Vec<f32>| {
            features.iter().flat_map(|x| f(x).iter().copied()).collect::<Vec<f32>>()
        };
        let frame_diff = [
            max_diff(&flat(|x| &x.general), &values(reference_frame.general_tokens.into_data())?),
            max_diff(&flat(|x| &x.emotion), &values(reference_frame.emotion_tokens.into_data())?),
            max_diff(&flat(|x| &x.pooled), &values(reference_frame.pooled.into_data())?),
        ]
        .into_iter()
        .fold(0.0, f32::max);
        let clips: Vec<_> = features.chunks(t).collect();
        let results = onnx_model.classify_clips(&clips)?;
        let expected = values(reference.emotion_probs.into_data())?;
        let (mut probs_diff, mut top1_agree) = (0.0f32, 0);
        for (i, result) in results.iter().enumerate() {
            let want = &expected[i * k..(i + 1) * k];
            probs_diff = probs_diff.max(max_diff(&result.emotion_probs, want));
            top1_agree += usize::from(argmax(&result.emotion_probs) == argmax(want));
        }
        let mut row = ParityRow {
            variant,
            inputs: input.name.clone(),
            clips: input.clips,
            frame_diff,
            probs_diff,
            top1_agree,
            passed: false,
        };
        row.passed = row.top1() >= criterion.min_top1
            && criterion.max_abs_diff.is_none_or(|limit| frame_diff <= limit && probs_diff <= limit);
        rows.push(row);
    }
    Ok(rows)
}

/// The parity table as text (Markdown).
pub fn table(rows: &[ParityRow]) -> String {
    let mut out = String::from(
        "| variant | inputs | clips | frame max abs diff | probs max abs diff | top-1 agreement | criterion | result |\n|---|---|---:|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let c = criterion(r.variant);
        let limit = c.max_abs_diff.map_or(String::new(), |l| format!("diff ≤ {l:.0e}, "));
        out += &format!(
            "| {} | {} | {} | {:.2e} | {:.2e} | {}/{} ({:.1}%) | {limit}top-1 ≥ {:.0}% | {} |\n",
            r.variant,
            r.inputs,
            r.clips,
            r.frame_diff,
            r.probs_diff,
            r.top1_agree,
            r.clips,
            100.0 * r.top1(),
            100.0 * c.min_top1,
            if r.passed { "pass" } else { "FAIL" }
        );
    }
    out
}
