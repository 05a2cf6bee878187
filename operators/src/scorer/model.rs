//! The model extension point: what a loaded network must do for the
//! scorer. MLP (`mlp.rs`) and ONNX (`onnx.rs`) implement it today; another
//! model kind (a gradient-boosted tree ensemble) is a new file implementing
//! [`Model`] and a branch where packages are loaded (`package.rs`).

use std::fmt;

use candle_core::Tensor;

/// At most this many rows per forward pass on the CPU.
pub(super) const CPU_SLICE_ROWS: usize = 8_192;

/// candle splits an elementwise op over its own worker threads from 64Ki
/// values (`PAR_ELEMWISE_MIN` in candle-core); CPU slices stay under it.
pub(crate) const CANDLE_PARALLEL_VALUES: usize = 64 * 1024;

/// Rows per CPU slice for a network whose widest layer is `widest` values.
pub(crate) fn slice_rows_for(widest: usize) -> usize {
    ((CANDLE_PARALLEL_VALUES - 1) / widest.max(1)).clamp(16, CPU_SLICE_ROWS)
}

/// A network a model package holds, on its device. It turns model inputs
/// into one raw output per row: a logit or a probability, as the
/// manifest's `output.kind` says (the package applies the sigmoid, in f32,
/// whatever precision the network ran in).
pub trait Model: Send + Sync + fmt::Debug {
    /// `x` is `[rows, inputs]`, f32, on the package's device; the result
    /// has shape `[rows]`, in any float dtype.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor>;

    /// Rows per forward pass on the CPU: few enough that no activation
    /// reaches candle's parallel threshold, so the pass runs on one thread
    /// (see `Scorer::new`); at most [`CPU_SLICE_ROWS`], whose activations
    /// stay in cache (`cargo bench --bench scorer`: 64-256-256-1 at 65,536
    /// rows in one pass is 2x slower per row than in 8,192-row slices).
    fn cpu_slice_rows(&self) -> usize {
        CPU_SLICE_ROWS
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::scorer::{Activation, Mlp};

    #[test]
    fn cpu_slices_keep_every_activation_under_candles_parallel_threshold() {
        let layer = |out: usize, inputs: usize| {
            (
                Tensor::zeros((out, inputs), candle_core::DType::F32, &Device::Cpu).expect("w"),
                Tensor::zeros(out, candle_core::DType::F32, &Device::Cpu).expect("b"),
            )
        };
        let demo = Mlp::new(
            vec![layer(64, 20), layer(32, 64), layer(1, 32)],
            Activation::Relu,
        );
        let large = Mlp::new(
            vec![layer(256, 64), layer(256, 256), layer(1, 256)],
            Activation::Relu,
        );
        assert_eq!((demo.widest(), large.widest()), (64, 256));
        for widest in [1, 4, 20, 64, 256, 1000, 100_000] {
            let rows = slice_rows_for(widest);
            assert!((16..=CPU_SLICE_ROWS).contains(&rows), "{widest}: {rows}");
            if widest <= 4096 {
                assert!(rows * widest < CANDLE_PARALLEL_VALUES, "{widest}: {rows}");
            }
        }
        assert_eq!(slice_rows_for(64), 1023);
        assert_eq!(slice_rows_for(4), CPU_SLICE_ROWS);
    }
}
