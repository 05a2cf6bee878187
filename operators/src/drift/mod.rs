//! Drift detection: reference profiles of a model's inputs and score, and
//! the statistics that compare a window of live rows against them.
//!
//! A profile keeps, per numeric column, quantile bin edges with counts and a
//! sorted sample, and per categorical column its top categories with counts;
//! missing rates for both. That is enough for every statistic here (PSI,
//! Jensen-Shannon, Kolmogorov-Smirnov, Wasserstein, chi-square, missing-rate
//! change) to be computed from a bounded window without the training data.
//! The definitions follow scipy's, and `tests/fixtures/drift/` holds values
//! scipy and numpy computed for them.

mod alerts;
mod config;
mod deliver;
mod health;
mod operator;
#[cfg(test)]
mod operator_tests;
mod overflow;
mod profile;
mod recent;
mod report;
mod reservoir;
mod stats;
mod table;
#[cfg(test)]
mod tests;
mod thinned;
mod window;

pub use alerts::AlertProducer;
pub use config::{DriftConfig, WindowConfig, breaches};
pub use health::{DriftDegraded, DriftFailure, DriftHealth};
pub use operator::{DriftBatch, DriftOperator};
pub use overflow::Overflow;
pub use profile::{
    CategoricalProfile, ColumnProfile, NumericProfile, ProfileKind, ReferenceProfile,
};
pub use recent::RecentAlerts;
pub use report::{DriftAlert, WindowReport};
pub use reservoir::Reservoir;
pub use stats::{DriftStats, Statistic, chi_square, js_distance, psi, wasserstein};
pub use table::{DRIFT_DIR, DriftTable};
pub use window::{ColumnStats, Window};
