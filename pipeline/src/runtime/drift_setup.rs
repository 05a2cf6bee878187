//! What a `[drift]` job compares with: the reference profile and the
//! output columns it watches, each checked to be in both.

use scorestream_operators::drift::ReferenceProfile;

use crate::Problem;
use crate::config::JobConfig;

/// The reference profile a `[drift]` job compares with, and the output
/// columns it watches.
pub(super) struct DriftSetup {
    pub(super) profile: ReferenceProfile,
    pub(super) columns: Vec<String>,
}

/// Loads the drift profile and picks the watched columns: those asked for,
/// or every profiled column the output has. Each column must be in both.
pub(super) fn drift_setup(
    config: &JobConfig,
    output: &arrow::datatypes::SchemaRef,
    problems: &mut Vec<Problem>,
) -> Option<DriftSetup> {
    let d = config.drift.as_ref()?;
    let profile = match ReferenceProfile::load(&d.profile) {
        Ok(p) => p,
        Err(e) => {
            problems.push(Problem::new("drift.profile", e.to_string()));
            return None;
        }
    };
    let in_output = |c: &str| output.index_of(c).is_ok();
    let columns: Vec<String> = if d.columns.is_empty() {
        profile
            .columns
            .keys()
            .filter(|c| in_output(c))
            .cloned()
            .collect()
    } else {
        for c in &d.columns {
            if !profile.columns.contains_key(c) {
                problems.push(Problem::new(
                    "drift.columns",
                    format!("`{c}` is not in the profile {}", d.profile.display()),
                ));
            } else if !in_output(c) {
                problems.push(Problem::new(
                    "drift.columns",
                    format!("`{c}` is not a column of the scored output"),
                ));
            }
        }
        d.columns.clone()
    };
    if columns.is_empty() {
        problems.push(Problem::new(
            "drift.profile",
            format!(
                "none of the profile's columns ({}) is in the scored output",
                profile
                    .columns
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for c in d.column_thresholds.keys() {
        if !columns.contains(c) {
            problems.push(Problem::new(
                format!("drift.column_thresholds.{c}"),
                "is not a watched column",
            ));
        }
    }
    Some(DriftSetup { profile, columns })
}
