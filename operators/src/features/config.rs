use std::path::PathBuf;

use serde::Deserialize;

/// What to do with an event whose key the store does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// Keep the event with null features and `features_missing = true`; the
    /// model imputes each missing input with its training mean.
    #[default]
    Null,
    /// Send the event to the dead letters.
    DeadLetter,
    /// Stop the job: missing features mean the store is broken.
    Fail,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// The event field holding the entity key (a string field).
    pub key: String,
    #[serde(default)]
    pub on_missing: OnMissing,
    pub store: FeatureStoreConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureStoreConfig {
    /// A CSV file loaded into memory at start.
    File(FileStoreConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStoreConfig {
    /// CSV with a header row; relative paths are resolved against the job file.
    pub path: PathBuf,
    /// The column holding the entity key.
    pub key_column: String,
}
