//! The trained weights, by parameter name, as the exporter reads them.

use std::collections::HashMap;

use emoedge_models::reference::HybridModel;
use safetensors::SafeTensors;

pub struct Weights {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Weights {
    /// All parameters of `model` (already checked against its config when it was loaded).
    pub fn of(model: &HybridModel) -> anyhow::Result<Self> {
        let bytes = model.to_safetensors()?;
        let file = SafeTensors::deserialize(&bytes)?;
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                (name, (view.shape().to_vec(), values))
            })
            .collect();
        Ok(Self { tensors })
    }

    pub fn get(&self, name: &str) -> (&[usize], &[f32]) {
        let (shape, values) = self.tensors.get(name).unwrap_or_else(|| panic!("the model has no parameter `{name}`"));
        (shape, values)
    }
}
