//! The trained weights, by parameter name, as the exporter reads them, with the INT8
//! quantization of `quant.json` when the graph is the INT8 variant.

use std::collections::HashMap;

use emoedge_models::Config;
use emoedge_models::quant::{QuantSpec, QuantizedWeight, quantize_with_scales, weight_axis};
use emoedge_models::reference::HybridModel;

pub struct Weights {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    int8: Option<Int8>,
}

struct Int8 {
    weights: HashMap<String, QuantizedWeight>,
    activations: HashMap<String, f32>,
}

impl Weights {
    /// All parameters of `model` (already checked against its config when it was loaded).
    pub fn of(model: &HybridModel) -> anyhow::Result<Self> {
        let tensors = model.named_tensors()?.into_iter().map(|(name, shape, values)| (name, (shape, values))).collect();
        Ok(Self { tensors, int8: None })
    }

    /// The same weights quantized as `spec` says; every quantizable weight needs its scales and
    /// every tap site of the forward its activation scale.
    pub fn int8(model: &HybridModel, config: &Config, spec: &QuantSpec) -> anyhow::Result<Self> {
        let redo = "quantize this run again with `emoedge-train quantize`";
        let mut weights = HashMap::new();
        for (name, shape, values) in model.named_tensors()? {
            let Some(axis) = weight_axis(&name, &shape) else { continue };
            let Some(scales) = spec.weights.get(&name) else {
                anyhow::bail!(
                    "quant.json has no scales for weight `{name}` (shape {shape:?}, {} channels on axis {axis}); {redo}",
                    shape[axis]
                );
            };
            anyhow::ensure!(
                scales.axis == axis && scales.scales.len() == shape[axis],
                "quant.json scales of `{name}` are {} on axis {}, but the weight {shape:?} needs {} on axis {axis}; {redo}",
                scales.scales.len(),
                scales.axis,
                shape[axis]
            );
            anyhow::ensure!(
                scales.scales.iter().all(|s| s.is_finite() && *s > 0.0),
                "quant.json has a non-positive scale for `{name}`; {redo}"
            );
            weights.insert(name.clone(), quantize_with_scales(&values, &shape, axis, scales.scales.clone()));
        }
        let mut activations = HashMap::new();
        for site in model.tap_sites(config) {
            let Some(a) = spec.activations.get(&site) else {
                anyhow::bail!("quant.json has no activation scale for site `{site}`; {redo}");
            };
            anyhow::ensure!(
                a.scale.is_finite() && a.scale > 0.0,
                "quant.json has a non-positive activation scale for `{site}`; {redo}"
            );
            activations.insert(site, a.scale);
        }
        let mut out = Self::of(model)?;
        out.int8 = Some(Int8 { weights, activations });
        Ok(out)
    }

    /// Whether the model has parameter `name` (a depthwise convolution has no bias).
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn get(&self, name: &str) -> (&[usize], &[f32]) {
        let (shape, values) = self.tensors.get(name).unwrap_or_else(|| panic!("the model has no parameter `{name}`"));
        (shape, values)
    }

    /// The INT8 form of weight `name`, in the INT8 variant.
    pub fn quantized(&self, name: &str) -> Option<&QuantizedWeight> {
        self.int8.as_ref()?.weights.get(name)
    }

    /// The activation scale at tap site `site`, in the INT8 variant.
    pub fn activation_scale(&self, site: &str) -> Option<f32> {
        self.int8.as_ref()?.activations.get(site).copied()
    }
}
