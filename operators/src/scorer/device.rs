use std::fmt;

use candle_core::Device;
use serde::{Deserialize, Deserializer};
use tracing::{info, warn};

use super::ModelManifest;
use super::manifest::Precision;
use crate::{OperatorError, Result};

/// Where a model runs: `"auto"`, `"cpu"` or `"cuda:N"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA device 0 when this binary was built with the `cuda` feature and a
    /// GPU answers; otherwise CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| {
                    format!(
                        "unknown device \"{s}\"; expected one of: auto, cpu, cuda:N (e.g. cuda:0)"
                    )
                }),
        }
    }

    pub fn open(self) -> Result<Device> {
        let device = match self {
            Self::Cpu => Device::Cpu,
            Self::Auto => Device::cuda_if_available(0).unwrap_or(Device::Cpu),
            Self::Cuda(n) => Device::new_cuda(n).map_err(|e| {
                let hint = if cfg!(feature = "cuda") {
                    ""
                } else {
                    " (this binary was built without the `cuda` feature)"
                };
                OperatorError::Device(self.to_string(), format!("{e}{hint}"))
            })?,
        };
        info!(requested = %self, device = ?device, "model device chosen");
        Ok(device)
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The job's `model.precision`: `"auto"`, `"f32"`, `"f16"` or `"bf16"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PrecisionChoice {
    /// f32 on the CPU; on a GPU the first reduced precision the model's
    /// manifest allows, else f32.
    #[default]
    Auto,
    Exact(Precision),
}

impl PrecisionChoice {
    /// The precision a package runs in on `device`. Asking for a precision
    /// that the manifest does not allow is an error naming both.
    pub fn resolve(self, manifest: &ModelManifest, device: &Device) -> Result<Precision, String> {
        let allowed = |p: Precision| p == Precision::F32 || manifest.precisions.contains(&p);
        let chosen = match self {
            Self::Exact(p) if allowed(p) => p,
            Self::Exact(p) => {
                return Err(format!(
                    "model.precision = \"{p}\", but model `{}` version {} does not allow it \
                     (its manifest's `precisions`: [{}]; f32 is always allowed)",
                    manifest.name,
                    manifest.version,
                    manifest
                        .precisions
                        .iter()
                        .map(|p| format!("\"{p}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            Self::Auto if device.is_cpu() => Precision::F32,
            Self::Auto => manifest
                .precisions
                .iter()
                .copied()
                .find(|p| *p != Precision::F32)
                .unwrap_or(Precision::F32),
        };
        if chosen != Precision::F32 && device.is_cpu() {
            warn!(
                model = %manifest.name,
                precision = %chosen,
                "reduced precision on the CPU is slower than f32; it is meant for GPUs"
            );
        }
        Ok(chosen)
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::Exact(Precision::F32)),
            "f16" => Ok(Self::Exact(Precision::F16)),
            "bf16" => Ok(Self::Exact(Precision::Bf16)),
            _ => Err(format!(
                "unknown precision \"{s}\"; expected one of: auto, f32, f16, bf16"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for PrecisionChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
