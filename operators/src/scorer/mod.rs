//! Scoring with candle models.
//!
//! A model package is a directory holding `manifest.json` (what the model is
//! and which inputs it takes, in order, with their transforms) and
//! `model.safetensors` (its weights). The same code path runs on CPU and CUDA:
//! only the [`candle_core::Device`] differs.

mod device;
#[cfg(test)]
mod fixture_tests;
mod input;
mod manifest;
mod mixed;
mod mlp;
mod model;
#[cfg(feature = "onnx")]
mod onnx;
mod operator;
mod package;
mod registry;
mod role;
#[cfg(test)]
mod tests;
pub mod train;

pub use device::{DeviceChoice, PrecisionChoice};
pub use input::InputMatrix;
pub use manifest::{
    Activation, Architecture, InputDType, InputSpec, ModelManifest, OutputKind, OutputSpec,
    Precision, Transform,
};
pub use mlp::Mlp;
pub use model::Model;
pub use operator::{CanaryConfig, Scorer, ScorerConfig, ShadowConfig};
pub use package::ModelPackage;
pub use registry::{ModelSource, RegistryWatcher, registry_version};
pub use role::{ModelInUse, ModelRole};
