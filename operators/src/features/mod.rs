//! Online features: a [`FeatureStore`] answers one lookup per batch, and
//! [`FeatureJoin`] appends the answers to the batch as columns.

mod config;
mod file;
mod join;
#[cfg(test)]
mod tests;

use arrow::array::{ArrayRef, BooleanArray, StringArray};
use arrow::datatypes::SchemaRef;
use futures::future::BoxFuture;

pub use config::{FeatureStoreConfig, FeaturesConfig, FileStoreConfig, OnMissing};
pub use file::FileFeatureStore;
pub use join::FeatureJoin;

use crate::Result;

/// Features for a batch of entity keys, aligned with the keys.
#[derive(Debug)]
pub struct FeatureRows {
    /// One array per column of [`FeatureStore::schema`], null where not found.
    pub columns: Vec<ArrayRef>,
    /// Whether the store had the key at all.
    pub found: BooleanArray,
}

/// Where online features come from. Lookups take a whole batch of keys so a
/// networked store can deduplicate and pipeline them.
pub trait FeatureStore: Send + Sync {
    /// The feature columns this store provides (the key excluded).
    fn schema(&self) -> SchemaRef;

    fn lookup<'a>(&'a self, keys: &'a StringArray) -> BoxFuture<'a, Result<FeatureRows>>;
}

/// Builds the store a job's config names.
pub fn build_store(config: &FeatureStoreConfig) -> Result<std::sync::Arc<dyn FeatureStore>> {
    match config {
        FeatureStoreConfig::File(c) => Ok(std::sync::Arc::new(FileFeatureStore::load(
            &c.path,
            &c.key_column,
        )?)),
    }
}
