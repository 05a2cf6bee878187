use std::path::PathBuf;

use serde::Deserialize;

use scorestream_schemas::ColumnType;

use super::RedisStoreConfig;
use super::values::{FeatureValue, toml_value};
use crate::config::{ConfigError, HumanDuration, Validate, found};

/// What to do with a feature the store cannot give a usable value for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// Keep the event with a null feature, named in `missing_features` (or
    /// `stale_features`); the model imputes each null input with its
    /// training mean.
    #[default]
    Null,
    /// Use the feature's configured `default`, and still name it in
    /// `missing_features` / `stale_features`.
    Default,
    /// Send the event to the dead letters.
    DeadLetter,
    /// Stop the job: missing features mean the store is broken.
    Fail,
}

/// What to do while the store cannot be reached at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Retry with backoff and hold the batch; the pipeline fills up and the
    /// source pauses, so nothing is scored without its features.
    #[default]
    Wait,
    /// Score with each feature's `default` (null where none is set) and flag
    /// the rows with `features_unavailable = true`.
    Defaults,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// The event field holding the entity key (a string field).
    pub key: String,
    /// Per row: the entity, or one of its features, is absent from the
    /// store. (`missing_check` watches the share of such rows.)
    #[serde(default)]
    pub on_missing: OnMissing,
    /// A feature is older than its `max_age`.
    #[serde(default)]
    pub on_stale: OnMissing,
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    pub store: FeatureStoreConfig,
    /// The features to read, in output order. Required for Redis (the store
    /// cannot be asked what it holds); optional for a file, where it can add
    /// defaults and checks to the CSV's columns.
    #[serde(default)]
    pub columns: Vec<FeatureColumn>,
    /// In-process cache in front of a networked store.
    #[serde(default)]
    pub cache: CacheConfig,
    /// Alerts when a feature is missing for (nearly) every key.
    #[serde(default)]
    pub missing_check: super::watch::MissingCheckConfig,
}

/// The types a feature may have: every column type but timestamp (the
/// last), which are Feast's scalar value types. A store's timestamps are
/// its own `_ts`/`timestamp_field`, not features.
pub const FEATURE_TYPES: &[ColumnType] = ColumnType::ALL.split_at(ColumnType::ALL.len() - 1).0;

/// One feature the job reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureColumn {
    /// The feature's name: its output column, its hash field (Redis hash
    /// layout) or its name inside `view` (Feast layout).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// Feast layout: the feature view it belongs to.
    #[serde(default)]
    pub view: Option<String>,
    /// Older than this, the feature is stale: by the hash's
    /// `timestamp_field`, or for Feast by the view's `_ts` (the event time of
    /// the materialized row, not when it was written).
    #[serde(default)]
    pub max_age: Option<HumanDuration>,
    /// Used by the `default` policies and while the store is unavailable.
    #[serde(default)]
    pub default: Option<toml_value::Scalar>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureStoreConfig {
    /// A CSV file loaded into memory at start.
    File(FileStoreConfig),
    /// A Redis server: plain hashes, or what `feast materialize` wrote.
    Redis(RedisStoreConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStoreConfig {
    /// CSV with a header row; relative paths are resolved against the job file.
    pub path: PathBuf,
    /// The column holding the entity key.
    pub key_column: String,
}

/// The cache in front of a networked store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// How long an answer (including "no such entity") is served without
    /// asking the store again; "0s" turns the cache off.
    #[serde(default = "default_cache_ttl")]
    pub ttl: HumanDuration,
    /// After `ttl`, for this long the old answer is still served while it is
    /// refreshed in the background.
    #[serde(default)]
    pub stale_while_revalidate: Option<HumanDuration>,
    /// Most entities kept; the least recently used go first.
    #[serde(default = "default_cache_entries")]
    pub max_entries: u64,
}

fn default_cache_ttl() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(30))
}

fn default_cache_entries() -> u64 {
    100_000
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: default_cache_ttl(),
            stale_while_revalidate: None,
            max_entries: default_cache_entries(),
        }
    }
}

/// Problems beyond syntax, each with its key inside `[features]`.
impl Validate for FeaturesConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut p: Vec<ConfigError> = self
            .missing_check
            .problems()
            .into_iter()
            .map(|e| e.within("missing_check"))
            .collect();
        p.extend(self.column_problems());
        let needs_default = |policy: OnMissing| policy == OnMissing::Default;
        if needs_default(self.on_missing) || needs_default(self.on_stale) {
            let without: Vec<_> = self
                .columns
                .iter()
                .filter(|c| c.default.is_none())
                .map(|c| c.name.as_str())
                .collect();
            if self.columns.is_empty() || !without.is_empty() {
                p.push(ConfigError::new(
                    "columns",
                    format!(
                        "the \"default\" policy needs a `default` for every feature in [[features.columns]]; none for: {}",
                        if without.is_empty() {
                            "(no columns declared)".to_owned()
                        } else {
                            without.join(", ")
                        }
                    )));
            }
        }
        if self.on_stale != OnMissing::Null && !self.columns.iter().any(|c| c.max_age.is_some()) {
            p.push(ConfigError::new(
                "on_stale",
                "is set but no feature has a `max_age`, so nothing can be stale",
            ));
        }
        match &self.store {
            FeatureStoreConfig::File(_) => {
                if let Some(c) = self.columns.iter().find(|c| c.max_age.is_some()) {
                    p.push(ConfigError::new(
                        format!("columns.{}.max_age", c.name),
                        "a feature file has no write timestamps; max_age needs a Redis store",
                    ));
                }
            }
            FeatureStoreConfig::Redis(r) => p.extend(
                r.problems(&self.columns)
                    .into_iter()
                    .map(|e| e.within("store")),
            ),
        }
        found(p)
    }
}

impl FeaturesConfig {
    /// Keyed by the entry's index in `[[features.columns]]`, not its name: a
    /// name may be listed twice, so it cannot say which entry is meant.
    fn column_problems(&self) -> Vec<ConfigError> {
        let mut p = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let at = |k: &str| format!("columns[{i}].{k}");
            if !seen.insert(c.name.as_str()) {
                p.push(ConfigError::new(
                    at("name"),
                    format!("feature `{}` is listed twice", c.name),
                ));
            }
            if !FEATURE_TYPES.contains(&c.kind) {
                p.push(ConfigError::new(
                    at("type"),
                    format!(
                        "feature `{}` has type {}; features take {}",
                        c.name,
                        c.kind,
                        ColumnType::names(FEATURE_TYPES)
                    ),
                ));
            } else if let Some(d) = &c.default
                && let Err(e) = FeatureValue::from_default(d, c.kind)
            {
                p.push(ConfigError::new(at("default"), e));
            }
        }
        p
    }
}
