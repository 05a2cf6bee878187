use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::manifest::{OutputKind, Precision};
use super::model::Model;
use super::{Architecture, Mlp, ModelManifest, PrecisionChoice};
use crate::{OperatorError, Result};

pub(super) const MANIFEST_FILE: &str = "manifest.json";
pub(super) const WEIGHTS_FILE: &str = "model.safetensors";

/// A loaded, validated model package.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    pub dir: PathBuf,
    pub manifest: ModelManifest,
    /// The network, on its device (see [`Model`]).
    pub network: Arc<dyn Model>,
    /// The precision its weights were loaded in.
    pub precision: Precision,
}

impl ModelPackage {
    /// Scores in `[0, 1]` for `x` (`[rows, inputs]`, f32, on the package's
    /// device), shape `[rows]`, f32.
    pub fn predict(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let out = self.network.forward(x)?;
        // The sigmoid in f32, whatever precision the network ran in.
        let out = out.to_dtype(DType::F32)?;
        match self.manifest.output.kind {
            OutputKind::Logit => candle_nn::ops::sigmoid(&out),
            OutputKind::Probability => Ok(out),
        }
    }
}

impl ModelPackage {
    pub(crate) fn read_manifest(dir: &Path) -> Result<ModelManifest> {
        let err = |reason: String| OperatorError::ModelPackage {
            path: dir.to_owned(),
            reason,
        };
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err(format!("cannot read {MANIFEST_FILE}: {e}")))?;
        let manifest: ModelManifest = serde_json::from_str(&text)
            .map_err(|e| err(format!("{MANIFEST_FILE} is invalid: {e}")))?;
        let problems = manifest.problems();
        if !problems.is_empty() {
            return Err(err(format!("{MANIFEST_FILE}: {}", problems.join("; "))));
        }
        Ok(manifest)
    }

    /// Loads the package in f32, or the precision its manifest prefers on a
    /// GPU.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_as(dir, device, PrecisionChoice::Auto)
    }

    /// Loads the manifest and weights and checks that every weight has the
    /// shape the manifest implies, so a mismatch fails at start, not mid-stream.
    pub fn load_as(dir: &Path, device: &Device, precision: PrecisionChoice) -> Result<Self> {
        let manifest = Self::read_manifest(dir)?;
        let err = |reason: String| OperatorError::ModelPackage {
            path: dir.to_owned(),
            reason,
        };
        let precision = precision.resolve(&manifest, device).map_err(err)?;
        let network: Arc<dyn Model> = match &manifest.architecture {
            Architecture::Mlp { activation, .. } => Arc::new(Self::load_mlp(
                dir,
                &manifest,
                *activation,
                device,
                precision,
            )?),
            #[cfg(feature = "onnx")]
            Architecture::Onnx { file } => Arc::new(
                super::onnx::OnnxNetwork::load(
                    &dir.join(file),
                    manifest.inputs.len(),
                    &manifest.output,
                    device,
                )
                .map_err(err)?,
            ),
            #[cfg(not(feature = "onnx"))]
            Architecture::Onnx { .. } => {
                return Err(err(
                    "an ONNX model needs a scorestream built with the `onnx` feature \
                     (cargo build --release --features onnx)"
                        .into(),
                ));
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            manifest,
            network,
            precision,
        })
    }

    fn load_mlp(
        dir: &Path,
        manifest: &ModelManifest,
        activation: super::Activation,
        device: &Device,
        precision: Precision,
    ) -> Result<Mlp> {
        let err = |reason: String| OperatorError::ModelPackage {
            path: dir.to_owned(),
            reason,
        };
        let mut weights = candle_core::safetensors::load(dir.join(WEIGHTS_FILE), device)
            .map_err(|e| err(format!("cannot read {WEIGHTS_FILE}: {e}")))?;
        let widths = manifest.layer_widths();
        let mut layers = Vec::with_capacity(widths.len() - 1);
        for (i, pair) in widths.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let mut take = |name: String, shape: &[usize]| -> Result<Tensor> {
                let t = weights
                    .remove(&name)
                    .ok_or_else(|| err(format!("{WEIGHTS_FILE} has no tensor `{name}`")))?;
                if t.dims() != shape {
                    return Err(err(format!(
                        "tensor `{name}` has shape {:?} but the manifest implies {shape:?} ({} inputs, hidden {:?})",
                        t.dims(),
                        manifest.inputs.len(),
                        &widths[1..widths.len() - 1],
                    )));
                }
                Ok(t.to_dtype(precision.dtype())?)
            };
            let w = take(format!("layers.{i}.weight"), &[fan_out, fan_in])?;
            let b = take(format!("layers.{i}.bias"), &[fan_out])?;
            layers.push((w, b));
        }
        if let Some(extra) = weights.keys().next() {
            return Err(err(format!(
                "{WEIGHTS_FILE} has tensor `{extra}` that the manifest's architecture does not use"
            )));
        }
        Ok(Mlp::new(layers, activation))
    }

    /// Writes a package: the manifest as pretty JSON and the weights.
    pub fn save(
        dir: &Path,
        manifest: &ModelManifest,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| OperatorError::io(format!("creating {}", dir.display()), e))?;
        let json =
            serde_json::to_string_pretty(manifest).map_err(|e| OperatorError::ModelPackage {
                path: dir.to_owned(),
                reason: e.to_string(),
            })?;
        std::fs::write(dir.join(MANIFEST_FILE), json + "\n").map_err(|e| {
            OperatorError::io(format!("writing {}", dir.join(MANIFEST_FILE).display()), e)
        })?;
        candle_core::safetensors::save(tensors, dir.join(WEIGHTS_FILE))?;
        Ok(())
    }
}
