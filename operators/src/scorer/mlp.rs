use candle_core::{D, Module, Tensor};
use candle_nn::Linear;

use super::Activation;
use super::model::{Model, slice_rows_for};

/// A multi-layer perceptron ending in one logit.
#[derive(Debug, Clone)]
pub struct Mlp {
    layers: Vec<Linear>,
    activation: Activation,
}

impl Mlp {
    /// `layers` as `(weight [out, in], bias [out])`, first layer first.
    pub fn new(layers: Vec<(Tensor, Tensor)>, activation: Activation) -> Self {
        Self {
            layers: layers
                .into_iter()
                .map(|(w, b)| Linear::new(w, Some(b)))
                .collect(),
            activation,
        }
    }

    /// The widest layer's width: how many values one row holds at most.
    pub(crate) fn widest(&self) -> usize {
        self.layers
            .iter()
            .filter_map(|l| l.weight().dims2().ok())
            .map(|(out, inputs)| out.max(inputs))
            .max()
            .unwrap_or(1)
    }

    /// Logits, shape `[rows]`.
    pub fn logits(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i < last {
                h = match self.activation {
                    Activation::Relu => h.relu()?,
                    Activation::Tanh => h.tanh()?,
                    // The exact (erf) GELU: PyTorch's `nn.GELU()` default.
                    Activation::Gelu => h.gelu_erf()?,
                    Activation::Sigmoid => candle_nn::ops::sigmoid(&h)?,
                };
            }
        }
        h.squeeze(D::Minus1)
    }

    /// Probabilities in `[0, 1]`, shape `[rows]`.
    pub fn predict(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::sigmoid(&self.logits(x)?)
    }
}

impl Model for Mlp {
    /// Logits, in the precision the weights were loaded in.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.layers.first() {
            Some(first) => self.logits(&x.to_dtype(first.weight().dtype())?),
            None => self.logits(x),
        }
    }

    fn cpu_slice_rows(&self) -> usize {
        slice_rows_for(self.widest())
    }
}
