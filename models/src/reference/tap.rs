//! Taps on the activations entering each convolution and linear layer — the places where an
//! INT8 engine quantizes. Calibration observes them, quantization simulation rewrites them, and
//! the exporter puts its Q/DQ pairs at the same sites. A site is named by its layer's parameter
//! path (`encoder.modules.0.separable.0.pointwise`, `gate.attention` for the attention's shared q/k/v input).

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::tensor::Tensor;

use crate::quant::QuantSpec;

/// Observes or rewrites an activation (flattened) at a named site.
pub trait Tap {
    fn tap(&self, site: &str, x: Tensor<1>) -> Tensor<1>;
}

/// Where in the model a block runs, and the tap to call, if any. Without a tap it costs nothing.
#[derive(Clone)]
pub struct Taps<'a> {
    tap: Option<&'a dyn Tap>,
    prefix: String,
}

impl<'a> Taps<'a> {
    pub fn none() -> Self {
        Self { tap: None, prefix: String::new() }
    }

    pub fn new(tap: &'a dyn Tap) -> Self {
        Self { tap: Some(tap), prefix: String::new() }
    }

    /// The taps of a sub-block named `name`.
    pub fn scope(&self, name: &str) -> Self {
        match self.tap {
            None => Self::none(),
            Some(tap) if self.prefix.is_empty() => Self { tap: Some(tap), prefix: name.to_string() },
            Some(tap) => Self { tap: Some(tap), prefix: format!("{}.{name}", self.prefix) },
        }
    }

    /// `x` as it enters the layer `name` of this block.
    pub fn at<const D: usize>(&self, name: &str, x: Tensor<D>) -> Tensor<D> {
        let Some(tap) = self.tap else { return x };
        let shape = x.dims();
        let site = if self.prefix.is_empty() { name.to_string() } else { format!("{}.{name}", self.prefix) };
        tap.tap(&site, x.reshape([shape.iter().product::<usize>()])).reshape(shape)
    }
}

/// Fake-quantizes each site's activation to INT8 (scale from calibration, zero point 0), as
/// an INT8 engine computes.
pub struct Int8Tap {
    pub scales: BTreeMap<String, f32>,
}

impl Int8Tap {
    /// The tap that simulates `spec`'s INT8 activations.
    pub fn from_spec(spec: &QuantSpec) -> Self {
        Self { scales: spec.activations.iter().map(|(site, a)| (site.clone(), a.scale)).collect() }
    }
}

impl Tap for Int8Tap {
    fn tap(&self, site: &str, x: Tensor<1>) -> Tensor<1> {
        match self.scales.get(site) {
            Some(&s) => x.div_scalar(s).round().clamp(-127.0, 127.0).mul_scalar(s),
            None => x,
        }
    }
}

/// Records the names of the sites a forward passes, in order.
#[derive(Default)]
pub struct SiteRecorder {
    pub sites: RefCell<Vec<String>>,
}

impl Tap for SiteRecorder {
    fn tap(&self, site: &str, x: Tensor<1>) -> Tensor<1> {
        self.sites.borrow_mut().push(site.to_string());
        x
    }
}
