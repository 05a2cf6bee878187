//! The Redis store's settings and their checks. Which settings apply depends
//! on the layout, so the checks are split the same way: those every Redis
//! store shares, then those of the hash or the Feast layout.

use serde::Deserialize;

use crate::config::{ConfigError, HumanDuration};
use crate::features::FeatureColumn;

/// How entities are laid out in Redis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisLayout {
    /// One hash per entity at `key_template`, one field per feature, values
    /// as text.
    #[default]
    Hash,
    /// Feast's Redis online store, as `feast materialize` writes it.
    Feast,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisStoreConfig {
    /// `redis://[:password@]host:port[/db]` (or `rediss://` for TLS). A
    /// password here is never printed.
    pub url: String,
    #[serde(default)]
    pub layout: RedisLayout,
    /// Hash layout: the key of an entity's hash, `{key}` standing for the
    /// entity key, e.g. `"account:{key}"`.
    #[serde(default)]
    pub key_template: Option<String>,
    /// Hash layout: a field holding when the hash was written (epoch
    /// seconds, epoch milliseconds or RFC 3339), for `max_age`.
    #[serde(default)]
    pub timestamp_field: Option<String>,
    /// Feast layout: the Feast project (`project` in feature_store.yaml).
    #[serde(default)]
    pub project: Option<String>,
    /// Feast layout: the entity's join key (defaults to `features.key`).
    #[serde(default)]
    pub join_key: Option<String>,
    /// Feast layout: `entity_key_serialization_version` in
    /// feature_store.yaml.
    #[serde(default = "default_serialization_version")]
    pub entity_key_serialization_version: u32,
    /// How long one round trip may take before the store counts as
    /// unavailable.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// Keys per pipelined round trip.
    #[serde(default = "default_pipeline_keys")]
    pub pipeline_keys: usize,
}

fn default_serialization_version() -> u32 {
    3
}

fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(2))
}

fn default_pipeline_keys() -> usize {
    2048
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &redact_url(&self.url))
            .field("layout", &self.layout)
            .field("key_template", &self.key_template)
            .field("timestamp_field", &self.timestamp_field)
            .field("project", &self.project)
            .field("join_key", &self.join_key)
            .field(
                "entity_key_serialization_version",
                &self.entity_key_serialization_version,
            )
            .field("timeout", &self.timeout)
            .field("pipeline_keys", &self.pipeline_keys)
            .finish()
    }
}

/// `url` with any password replaced, for logs and errors.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let host_start = rest.find('/').unwrap_or(rest.len());
    match rest[..host_start].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!(
                "{}{user}:{}@{}",
                &url[..scheme_end + 3],
                scorestream_schemas::REDACTED,
                &rest[at + 1..]
            )
        }
        None => url.to_owned(),
    }
}

impl RedisStoreConfig {
    /// Each problem's key is inside `[features.store]`; the caller adds the
    /// prefix, as it does for the file store.
    pub(in crate::features) fn problems(&self, columns: &[FeatureColumn]) -> Vec<ConfigError> {
        let mut p = Vec::new();
        if !(self.url.starts_with("redis://")
            || self.url.starts_with("rediss://")
            || self.url.starts_with("redis+unix://")
            || self.url.starts_with("unix://"))
        {
            p.push(ConfigError::new(
                "url",
                format!(
                    "\"{}\" is not a Redis URL; write redis://host:port/db",
                    redact_url(&self.url)
                ),
            ));
        }
        if columns.is_empty() {
            p.push(ConfigError::new(
                "kind",
                "a Redis store needs the features it should read, as [[features.columns]] with name and type"));
        }
        if self.pipeline_keys == 0 {
            p.push(ConfigError::new("pipeline_keys", "must be at least 1"));
        }
        match self.layout {
            RedisLayout::Hash => self.hash_problems(columns, &mut p),
            RedisLayout::Feast => self.feast_problems(columns, &mut p),
        }
        p
    }

    fn hash_problems(&self, columns: &[FeatureColumn], p: &mut Vec<ConfigError>) {
        match &self.key_template {
            None => p.push(ConfigError::new(
                "key_template",
                "is required for layout = \"hash\", e.g. \"account:{key}\"",
            )),
            Some(t) if !t.contains("{key}") => p.push(ConfigError::new(
                "key_template",
                format!("\"{t}\" has no `{{key}}` placeholder for the entity key"),
            )),
            Some(_) => {}
        }
        if self.project.is_some() {
            p.push(other_layout("project", "feast"));
        }
        if self.join_key.is_some() {
            p.push(other_layout("join_key", "feast"));
        }
        if let Some(c) = columns.iter().find(|c| c.view.is_some()) {
            p.push(ConfigError::new(
                "layout",
                format!(
                    "feature `{}` names a view, which only applies to layout = \"feast\"",
                    c.name
                ),
            ));
        }
        if self.timestamp_field.is_none()
            && let Some(c) = columns.iter().find(|c| c.max_age.is_some())
        {
            p.push(ConfigError::new(
                "timestamp_field",
                format!(
                    "feature `{}` has a max_age, so the hashes need a timestamp field to compare it with",
                    c.name
                )));
        }
    }

    fn feast_problems(&self, columns: &[FeatureColumn], p: &mut Vec<ConfigError>) {
        if self.project.is_none() {
            p.push(ConfigError::new(
                "project",
                "is required for layout = \"feast\": the `project` of feature_store.yaml",
            ));
        }
        if self.key_template.is_some() {
            p.push(other_layout("key_template", "hash"));
        }
        if self.timestamp_field.is_some() {
            p.push(other_layout("timestamp_field", "hash"));
        }
        if !(2..=3).contains(&self.entity_key_serialization_version) {
            p.push(ConfigError::new(
                "entity_key_serialization_version",
                format!(
                    "{} is not supported; Feast writes version 2 or 3",
                    self.entity_key_serialization_version
                ),
            ));
        }
        let without: Vec<_> = columns
            .iter()
            .filter(|c| c.view.is_none())
            .map(|c| c.name.as_str())
            .collect();
        if !without.is_empty() {
            p.push(ConfigError::new(
                "layout",
                format!(
                    "with layout = \"feast\" every feature names its feature view (`view`); none for: {}",
                    without.join(", ")
                )));
        }
    }
}

/// A setting the other layout reads: rejected rather than silently ignored.
fn other_layout(key: &str, layout: &str) -> ConfigError {
    ConfigError::new(key, format!("only applies to layout = \"{layout}\""))
}
