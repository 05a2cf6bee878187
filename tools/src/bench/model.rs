//! The large bench model: the demo model's inputs widened to 64, two hidden
//! layers of 256, seeded random weights. Its scores mean nothing; its cost
//! is that of a real 64-256-256-1 network on the same events.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use scorestream_operators::OperatorError;
use scorestream_operators::scorer::{Architecture, ModelPackage};

use crate::ToolError;

const WIDTH: usize = 64;
const HIDDEN: [usize; 2] = [256, 256];

/// Writes the large package to `dir`, its inputs taken round-robin from
/// the package at `small` (so it binds to the same job).
pub fn write_large_model(small: &Path, dir: &Path, seed: u64) -> Result<(), ToolError> {
    let base = ModelPackage::load(small, &Device::Cpu)?;
    let mut manifest = base.manifest.clone();
    let activation = match &manifest.architecture {
        Architecture::Mlp { activation, .. } => *activation,
        other => {
            return Err(ToolError::Incomplete(format!(
                "the bench's large model widens an MLP, not {other:?}"
            )));
        }
    };
    let inputs = manifest.inputs.clone();
    manifest.inputs = (0..WIDTH)
        .map(|i| {
            let mut spec = inputs[i % inputs.len()].clone();
            spec.name = format!("{}#{i}", spec.name);
            spec
        })
        .collect();
    manifest.name = format!("{}-large", manifest.name);
    manifest.architecture = Architecture::Mlp {
        hidden: HIDDEN.to_vec(),
        activation,
    };
    manifest.precisions.clear();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut tensors = HashMap::new();
    let mut fan_in = WIDTH;
    for (i, out) in HIDDEN.iter().copied().chain([1]).enumerate() {
        let scale = (1.0 / fan_in as f32).sqrt();
        let w: Vec<f32> = (0..out * fan_in)
            .map(|_| rng.random_range(-scale..scale))
            .collect();
        tensors.insert(
            format!("layers.{i}.weight"),
            Tensor::from_vec(w, (out, fan_in), &Device::Cpu).map_err(OperatorError::from)?,
        );
        tensors.insert(
            format!("layers.{i}.bias"),
            Tensor::zeros(out, DType::F32, &Device::Cpu).map_err(OperatorError::from)?,
        );
        fan_in = out;
    }
    ModelPackage::save(dir, &manifest, &tensors)?;
    Ok(())
}
