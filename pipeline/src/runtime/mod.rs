//! A running job: operators built from a [`crate::config::JobConfig`], joined
//! by row-bounded queues, each its own task, drained in order on shutdown.

mod build;
mod build_model;
mod dead_letter_guard;
mod drift_setup;
mod drift_tee;
mod models;
mod queues;
mod run;
mod stages;
mod stats;

pub use build::Job;
pub use models::ModelSwitch;
pub use run::JobReport;
pub use stats::{JobStats, StatsSnapshot};
