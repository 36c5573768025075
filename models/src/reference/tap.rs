//! Taps on the activations entering each convolution and linear layer — the places where an
//! INT8 engine quantizes. Calibration observes them, quantization simulation rewrites them, and
//! the exporter puts its Q/DQ pairs at the same sites. A site is named by its layer's parameter
//! path (`encoder.blocks.0.pointwise`, `gate.attention` for the attention's shared q/k/v input).

use burn::tensor::Tensor;

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
