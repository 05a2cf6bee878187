use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::{Architecture, Mlp, ModelManifest};
use crate::{OperatorError, Result};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A loaded, validated model package.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    pub dir: PathBuf,
    pub manifest: ModelManifest,
    pub mlp: Mlp,
}

impl ModelPackage {
    pub fn read_manifest(dir: &Path) -> Result<ModelManifest> {
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

    /// Loads the manifest and weights and checks that every weight has the
    /// shape the manifest implies, so a mismatch fails at start, not mid-stream.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let manifest = Self::read_manifest(dir)?;
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
                Ok(t.to_dtype(DType::F32)?)
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
        let Architecture::Mlp { activation, .. } = manifest.architecture;
        Ok(Self {
            dir: dir.to_owned(),
            mlp: Mlp::new(layers, activation),
            manifest,
        })
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
