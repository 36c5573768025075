//! Post-training quantization as TensorRT runs it: INT8 symmetric with zero points 0 — weights
//! per output channel in [-127, 127], activations per tensor from calibration (max or a
//! percentile of |x| over held-out samples) — and FP16 through the `half` crate. The simulation
//! taps every conv/linear input of the reference forward (see `emoedge_models::reference::tap`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::tensor::{DType, Tensor};
use emoedge_models::Config;
pub use emoedge_models::quant::{
    ActivationScale, Calibration, QuantSpec, QuantizedWeight, WeightScales, quantize_weight, weight_axis,
};
pub use emoedge_models::reference::Int8Tap;
use emoedge_models::reference::{HybridModel, Tap};
use half::f16;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// Records |x| at every site: the running max and a bounded sample for percentiles.
#[derive(Default)]
pub struct CalibrationTap {
    sites: RefCell<BTreeMap<String, (f32, Vec<f32>)>>,
}

const SAMPLE_CAP: usize = 200_000;

impl Tap for CalibrationTap {
    fn tap(&self, site: &str, x: Tensor<1>) -> Tensor<1> {
        let values = x.clone().abs().into_data().try_to_vec::<f32>().unwrap_or_default();
        let mut sites = self.sites.borrow_mut();
        let (amax, sample) = sites.entry(site.to_string()).or_default();
        *amax = values.iter().copied().fold(*amax, f32::max);
        let stride = values.len().div_ceil(SAMPLE_CAP / 8).max(1);
        sample.extend(values.iter().step_by(stride));
        if sample.len() > SAMPLE_CAP {
            let keep: Vec<f32> = sample.iter().step_by(2).copied().collect();
            *sample = keep;
        }
        x
    }
}

impl CalibrationTap {
    /// The activation range of each site under `method`.
    pub fn ranges(&self, method: Calibration) -> BTreeMap<String, f32> {
        self.sites
            .borrow()
            .iter()
            .map(|(site, (amax, sample))| {
                let range = match method {
                    Calibration::Max => *amax,
                    Calibration::Percentile { percentile } => {
                        let mut sorted = sample.clone();
                        sorted.sort_by(f32::total_cmp);
                        let rank = ((percentile / 100.0) * (sorted.len().max(1) - 1) as f64).round() as usize;
                        sorted.get(rank).copied().unwrap_or(*amax)
                    }
                };
                (site.clone(), range.max(1e-8))
            })
            .collect()
    }
}

/// Rounds each site's activation to FP16, as an FP16 engine computes.
pub struct Fp16Tap;

impl Tap for Fp16Tap {
    fn tap(&self, _site: &str, x: Tensor<1>) -> Tensor<1> {
        x.cast(DType::F16).cast(DType::F32)
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn serialize(
    tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)],
    metadata: BTreeMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| Ok((name.clone(), TensorView::new(*dtype, shape.clone(), data)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, Some(metadata.into_iter().collect()))?)
}

/// The quantized variants of a model.
pub struct Quantized {
    pub spec: QuantSpec,
    /// INT8 weights (I8) plus the float tensors that stay float (F32); scales in `spec`.
    pub int8_safetensors: Vec<u8>,
    /// Every tensor in F16.
    pub fp16_safetensors: Vec<u8>,
    /// The model with INT8-rounded weights, for simulation.
    pub int8_model: HybridModel,
    /// The model with FP16-rounded weights, for simulation.
    pub fp16_model: HybridModel,
}

pub fn quantize(
    config: &Config,
    model: &HybridModel,
    calibration: &CalibrationTap,
    method: Calibration,
    samples: usize,
) -> anyhow::Result<Quantized> {
    let device = emoedge_models::reference::cpu();
    let mut int8 = Vec::new();
    let mut int8_sim = Vec::new();
    let mut fp16 = Vec::new();
    let mut fp16_sim = Vec::new();
    let mut weight_scales = BTreeMap::new();
    for (name, shape, values) in model.named_tensors()? {
        match weight_axis(&name, &shape) {
            Some(axis) => {
                let q = quantize_weight(&values, &shape, axis);
                int8_sim.push((name.clone(), Dtype::F32, shape.clone(), f32_bytes(&q.dequantize())));
                int8.push((name.clone(), Dtype::I8, shape.clone(), q.values.iter().map(|&v| v as u8).collect()));
                weight_scales.insert(name.clone(), WeightScales { axis, scales: q.scales });
            }
            None => {
                int8_sim.push((name.clone(), Dtype::F32, shape.clone(), f32_bytes(&values)));
                int8.push((name.clone(), Dtype::F32, shape.clone(), f32_bytes(&values)));
            }
        }
        let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        fp16.push((name.clone(), Dtype::F16, shape.clone(), halves.iter().flat_map(|h| h.to_le_bytes()).collect()));
        fp16_sim.push((name, Dtype::F32, shape, f32_bytes(&halves.iter().map(|h| h.to_f32()).collect::<Vec<_>>())));
    }
    let activations = calibration
        .ranges(method)
        .into_iter()
        .map(|(site, range)| (site, ActivationScale { range, scale: range / 127.0 }))
        .collect();
    let spec = QuantSpec { calibration: method, calibration_samples: samples, weights: weight_scales, activations };
    let meta = |variant: &str| BTreeMap::from([("emoedge.variant".to_string(), variant.to_string())]);
    let rebuild = |tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)], origin: &str| -> anyhow::Result<HybridModel> {
        Ok(HybridModel::from_safetensors(config, serialize(tensors, BTreeMap::new())?, origin, &device)?)
    };
    Ok(Quantized {
        int8_safetensors: serialize(&int8, meta("int8"))?,
        fp16_safetensors: serialize(&fp16, meta("fp16"))?,
        int8_model: rebuild(&int8_sim, "int8 simulation")?,
        fp16_model: rebuild(&fp16_sim, "fp16 simulation")?,
        spec,
    })
}
