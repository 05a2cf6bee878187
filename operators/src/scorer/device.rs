use std::fmt;

use candle_core::Device;
use serde::{Deserialize, Deserializer};
use tracing::info;

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
