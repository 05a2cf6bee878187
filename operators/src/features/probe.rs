//! What `validate` and a dry run ask the feature store before a job starts.
//! A lookup cannot tell a misspelled project, view or feature from an
//! unknown entity (both answer nothing), so the job would score on nulls;
//! reading a bounded sample of what the store holds tells them apart.

use super::values::FeatureValue;

/// What a probe found.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    /// One line on what was looked at, for a passing check.
    pub summary: String,
    /// Each with its key inside `[features]` (`store.project`,
    /// `columns[2].view`): what matched nothing, or disagrees.
    pub problems: Vec<(String, String)>,
    /// What a bounded sample could not settle; not failures.
    pub notes: Vec<String>,
}

/// The type a stored value has, as the job config would spell it.
pub(crate) fn value_type_name(v: &FeatureValue) -> &'static str {
    match v {
        FeatureValue::Float64(_) => "float64",
        FeatureValue::Float32(_) => "float32",
        FeatureValue::Int64(_) => "int64",
        FeatureValue::Int32(_) => "int32",
        FeatureValue::String(_) => "string",
        FeatureValue::Bool(_) => "bool",
    }
}
