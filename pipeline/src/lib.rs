//! scorestream's job runtime: typed job configs, the wiring of operators
//! into a running job, its run loop, shutdown and telemetry. The command
//! tools (demo, bench, profile, replay, drift report) live in
//! `scorestream-tools`, which a running job never needs.

pub mod config;
mod error;
pub mod runtime;
pub mod telemetry;

pub use error::{PipelineError, Problem};
