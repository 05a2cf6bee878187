//! What the join does with absent, stale and unreachable features: the
//! job's `[features]` policies, resolved once when the job is built.

use std::collections::HashMap;
use std::time::Duration;

use super::config::{FeaturesConfig, OnMissing, OnUnavailable};
use super::values::FeatureValue;
use super::watch::MissingCheckConfig;

/// How the join treats absent, stale and unreachable features.
#[derive(Debug, Clone, Default)]
pub struct JoinPolicy {
    pub on_missing: OnMissing,
    pub on_stale: OnMissing,
    pub on_unavailable: OnUnavailable,
    /// By feature name: its max age and default, where configured.
    pub features: HashMap<String, FeaturePolicy>,
    pub missing_check: MissingCheckConfig,
}

#[derive(Debug, Clone, Default)]
pub struct FeaturePolicy {
    pub max_age: Option<Duration>,
    pub default: Option<FeatureValue>,
    /// Feast: the feature's view, a label of its missing-feature metrics.
    pub view: Option<String>,
}

impl JoinPolicy {
    /// Only a missing-feature policy; the rest default.
    pub fn on_missing(on_missing: OnMissing) -> Self {
        Self {
            on_missing,
            ..Self::default()
        }
    }

    pub fn from_config(c: &FeaturesConfig) -> Result<Self, String> {
        let mut features = HashMap::new();
        for col in &c.columns {
            let default = col
                .default
                .as_ref()
                .map(|d| FeatureValue::from_default(d, col.kind))
                .transpose()
                .map_err(|e| format!("feature `{}`: {e}", col.name))?;
            features.insert(
                col.name.clone(),
                FeaturePolicy {
                    max_age: col.max_age.map(|d| d.0),
                    default,
                    view: col.view.clone(),
                },
            );
        }
        Ok(Self {
            on_missing: c.on_missing,
            on_stale: c.on_stale,
            on_unavailable: c.on_unavailable,
            features,
            missing_check: c.missing_check.clone(),
        })
    }
}
