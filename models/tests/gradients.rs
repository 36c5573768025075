//! Every trainable parameter must receive a non-zero gradient: a parameter without one would
//! silently stay at its initial value during training.

// Tests and their helpers stop loudly on a failed precondition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Gradients;
use burn::tensor::Tensor;
use common::tensor;
use emoedge_models::Config;
use emoedge_models::reference::{HybridModel, cpu};

struct GradNorms<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    found: Vec<(String, Option<f32>)>,
}

impl ModuleVisitor for GradNorms<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let norm = param.val().grad(self.grads).map(|g| g.abs().sum().into_scalar::<f32>());
        self.found.push((self.path.join("."), norm));
    }
}

#[test]
fn every_trainable_parameter_receives_a_nonzero_gradient() {
    let config = Config::default();
    let device = cpu().autodiff();
    let model = HybridModel::init(&config, &device, 21).unwrap();
    let (b, t, s) = (3, config.clip_length, config.crop_size);
    let out = model.forward(tensor([b, t, 3, s, s], 22, &device));
    // Random projections of both heads reach every branch: both experts through the fused
    // tokens, the gate through its weights, both classifiers.
    let loss = (out.emotion_logits * tensor([b, 7], 23, &device)).sum()
        + (out.general_logits * tensor([b, config.general_classes], 24, &device)).sum();
    let grads = loss.backward();

    let mut visitor = GradNorms { grads: &grads, path: Vec::new(), found: Vec::new() };
    model.visit(&mut visitor);
    assert_eq!(visitor.found.len(), model.param_specs().len(), "every parameter was visited");
    let dead: Vec<_> = visitor.found.iter().filter(|(_, n)| !matches!(n, Some(v) if *v > 0.0)).collect();
    assert!(dead.is_empty(), "parameters without gradient: {dead:?}");
}
