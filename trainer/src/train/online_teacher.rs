//! fer's own classifier as an online teacher. The student's encoder *is* fer's network (frozen),
//! so fer's answer on any crop the trainer makes — flipped, warped, colour-jittered — is its
//! 7-way 3×3 convolution plus global mean over the encoder's feature map: exact targets for
//! every augmented crop, where labels computed once per source crop would go stale. This
//! distils fer's decision function (as logits, see `loss`) instead of fitting a few hundred
//! fixed labels.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{Device, Tensor, TensorData};
use emoedge_models::Teacher;

pub struct OnlineTeacher {
    classifier: Conv2d,
    /// Canonical index of each of fer's outputs.
    to_canonical: Vec<usize>,
}

impl OnlineTeacher {
    /// fer's classifier from the file `emoedge-train encoder-init` writes.
    pub fn load(path: &Path, token_dim: usize, device: &Device) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let file =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let get = |name: &str, shape: &[usize]| -> anyhow::Result<Vec<f32>> {
            let view = file.tensor(name).map_err(|_| {
                anyhow::anyhow!("{} has no `{name}`; write it again with `emoedge-train encoder-init`", path.display())
            })?;
            anyhow::ensure!(
                view.shape() == shape,
                "{}: `{name}` is {:?}, expected {shape:?}",
                path.display(),
                view.shape()
            );
            Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        };
        let classes = Teacher::Fer.labels().len();
        let weight = get("fer_classifier.weight", &[classes, token_dim, 3, 3])?;
        let bias = get("fer_classifier.bias", &[classes])?;
        let mut classifier = Conv2dConfig::new([token_dim, classes], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        classifier.weight =
            Param::from_tensor(Tensor::from_data(TensorData::new(weight, [classes, token_dim, 3, 3]), device));
        classifier.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [classes]), device)));
        let mapping = Teacher::Fer.mapping();
        Ok(Self {
            classifier: classifier.no_grad(),
            to_canonical: (0..classes).map(|i| mapping.canonical(i)).collect(),
        })
    }

    /// fer's logits, canonical order, for each crop's feature map [N, D, G, G] → N × 7.
    pub fn logits(&self, feature_map: Tensor<4>) -> Vec<[f32; 7]> {
        let out = self.classifier.forward(feature_map.detach()).mean_dim(3).mean_dim(2);
        let [n, k, _, _] = out.dims();
        let values = out.into_data().try_to_vec::<f32>().unwrap_or_default();
        (0..n)
            .map(|i| {
                let mut row = [0.0f32; 7];
                for c in 0..k {
                    row[self.to_canonical[c]] = values[i * k + c];
                }
                row
            })
            .collect()
    }
}
