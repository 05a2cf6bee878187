//! scorestream's command tools: what the `demo`, `bench`, `profile`,
//! `drift`, `replay` and `train` commands do beyond running a job. A running
//! job never calls into this crate; it is kept apart from `pipeline` so the
//! runtime does not carry DataFusion, the synthetic world or report
//! rendering.

pub mod bench;
pub mod demo;
pub mod drift_report;
mod error;
pub mod profile;
pub mod replay;
pub mod synth;

pub use error::ToolError;
