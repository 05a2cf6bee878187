//! scorestream's job layer: typed job configs, the wiring of operators into a
//! running job, its shutdown, and the synthetic world the demo runs on.

pub mod bench;
pub mod config;
pub mod demo;
pub mod drift_report;
mod error;
pub mod profile;
pub mod replay;
pub mod runtime;
pub mod synth;
pub mod telemetry;

pub use error::{PipelineError, Problem};
