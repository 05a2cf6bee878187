//! Online features: a [`FeatureStore`] answers one lookup per batch, and
//! [`FeatureJoin`] appends the answers to the batch as columns, applying the
//! job's policies for missing, stale and unreachable features.

mod config;
mod file;
mod join;
mod join_rows;
mod policy;
mod probe;
mod redis;
#[cfg(test)]
mod tests;
mod values;
mod watch;

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray};
use arrow::datatypes::SchemaRef;
use futures::future::BoxFuture;

pub use config::{
    CacheConfig, FEATURE_TYPES, FeatureColumn, FeatureStoreConfig, FeaturesConfig, FileStoreConfig,
    OnMissing, OnUnavailable,
};
pub use file::FileFeatureStore;
pub use join::FeatureJoin;
pub use policy::{FeaturePolicy, JoinPolicy};
pub use probe::ProbeReport;
pub use redis::{RedisLayout, RedisStoreConfig, feast_entity_key, feast_field};
pub(crate) use values::EntityFeatures;
pub use values::{FeatureValue, toml_value};
pub use watch::{MissingAction, MissingCheckConfig};

use crate::Result;

/// Features for a batch of entity keys, aligned with the keys.
#[derive(Debug)]
pub struct FeatureRows {
    /// One array per column of [`FeatureStore::schema`], null where not found.
    pub columns: Vec<ArrayRef>,
    /// Whether the store had the key at all.
    pub found: BooleanArray,
    /// Per column, when each value was written (epoch ms), for stores that
    /// record it; empty or `None` when the store keeps no write times.
    pub written_at_ms: Vec<Option<Int64Array>>,
}

/// Where online features come from. Lookups take a whole batch of keys so a
/// networked store can deduplicate and pipeline them.
pub trait FeatureStore: Send + Sync {
    /// The feature columns this store provides (the key excluded).
    fn schema(&self) -> SchemaRef;

    /// Fails with [`crate::OperatorError::FeatureStoreUnavailable`] when the
    /// store cannot be reached, so the join can apply `on_unavailable`.
    fn lookup<'a>(&'a self, keys: &'a StringArray) -> BoxFuture<'a, Result<FeatureRows>>;
}

/// Builds the store a job's config names. A Redis store does not connect
/// here (so `validate` works offline); it connects on its first lookup.
pub fn build_store(config: &FeaturesConfig) -> Result<Arc<dyn FeatureStore>> {
    match &config.store {
        FeatureStoreConfig::File(c) => Ok(Arc::new(
            FileFeatureStore::load(&c.path, &c.key_column)?.select(&config.columns)?,
        )),
        FeatureStoreConfig::Redis(c) => Ok(Arc::new(redis::RedisFeatureStore::new(
            c,
            &config.key,
            &config.columns,
            &config.cache,
        )?)),
    }
}

/// Samples the store the config names. Fails (password redacted) when a
/// networked store cannot be reached or refuses the credentials.
pub async fn probe_store(config: &FeaturesConfig) -> Result<ProbeReport> {
    match &config.store {
        FeatureStoreConfig::File(f) => Ok(ProbeReport {
            summary: format!("{} (read in full when the job is built)", f.path.display()),
            ..ProbeReport::default()
        }),
        FeatureStoreConfig::Redis(r) => redis::probe::probe(r, &config.key, &config.columns).await,
    }
}
