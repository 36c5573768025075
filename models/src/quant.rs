//! The quantization contract between trainer and exporter (`quant.json`): INT8 symmetric with
//! zero points 0 — weights per output channel in [-127, 127], activations per tensor at the
//! named tap sites (see `reference::tap`). The trainer calibrates and writes it; the exporter
//! turns it into QuantizeLinear/DequantizeLinear pairs.

use std::collections::BTreeMap;
use std::path::Path;

/// How activation ranges are chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "method")]
pub enum Calibration {
    Max,
    /// `percentile` of |x| (e.g. 99.99), which ignores rare outliers.
    Percentile {
        percentile: f64,
    },
}

/// Everything the quantized variants need, as written to `quant.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QuantSpec {
    pub calibration: Calibration,
    pub calibration_samples: usize,
    /// Per weight: output-channel axis and scales.
    pub weights: BTreeMap<String, WeightScales>,
    /// Per activation site: range and scale (= range / 127), zero point 0.
    pub activations: BTreeMap<String, ActivationScale>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WeightScales {
    pub axis: usize,
    pub scales: Vec<f32>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ActivationScale {
    pub range: f32,
    pub scale: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum QuantSpecError {
    #[error("cannot read {path}: {source}; run `emoedge-train quantize --run <RUN>` to write it")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid quant.json: {source}; write it again with `emoedge-train quantize`")]
    Parse { path: String, source: serde_json::Error },
}

impl QuantSpec {
    pub fn load(path: impl AsRef<Path>) -> Result<Self, QuantSpecError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| QuantSpecError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// Parses a quant.json's text; `origin` names it in errors. Whether its scales fit a model
    /// is checked where they meet the model (the exporter).
    pub fn parse(text: &str, origin: &str) -> Result<Self, QuantSpecError> {
        serde_json::from_str(text).map_err(|source| QuantSpecError::Parse { path: origin.into(), source })
    }
}

/// Output-channel axis of a weight that INT8 quantizes, or `None` for tensors that stay float
/// (biases, norms, embeddings, the head's query). Convolutions are `[out, in/g, k, k]` (axis 0),
/// linear weights `[in, out]` (axis 1, burn's row layout).
pub fn weight_axis(name: &str, shape: &[usize]) -> Option<usize> {
    if !name.ends_with(".weight") || name.contains("norm") {
        return None;
    }
    match shape.len() {
        4 => Some(0),
        2 => Some(1),
        _ => None,
    }
}

/// One weight tensor in symmetric per-channel INT8.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedWeight {
    pub shape: Vec<usize>,
    pub axis: usize,
    pub scales: Vec<f32>,
    pub values: Vec<i8>,
}

/// Index of the channel along `axis` that flat element `i` of a row-major `shape` belongs to.
fn channel_of(i: usize, shape: &[usize], axis: usize) -> usize {
    let inner: usize = shape[axis + 1..].iter().product();
    (i / inner) % shape[axis]
}

/// Quantizes with scales from the channels' absolute maxima.
pub fn quantize_weight(data: &[f32], shape: &[usize], axis: usize) -> QuantizedWeight {
    let mut amax = vec![0.0f32; shape[axis]];
    for (i, v) in data.iter().enumerate() {
        let c = channel_of(i, shape, axis);
        amax[c] = amax[c].max(v.abs());
    }
    // An all-zero channel keeps scale 1 so that dequantization stays exact (0 · 1 = 0).
    let scales = amax.iter().map(|&a| if a > 0.0 { a / 127.0 } else { 1.0 }).collect();
    quantize_with_scales(data, shape, axis, scales)
}

/// Quantizes with given per-channel `scales` (one per index along `axis`).
pub fn quantize_with_scales(data: &[f32], shape: &[usize], axis: usize, scales: Vec<f32>) -> QuantizedWeight {
    assert_eq!(scales.len(), shape[axis], "one scale per channel");
    let values = data
        .iter()
        .enumerate()
        .map(|(i, v)| (v / scales[channel_of(i, shape, axis)]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    QuantizedWeight { shape: shape.to_vec(), axis, scales, values }
}

impl QuantizedWeight {
    pub fn dequantize(&self) -> Vec<f32> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.scales[channel_of(i, &self.shape, self.axis)])
            .collect()
    }
}
