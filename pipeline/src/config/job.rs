use std::fmt;
use std::path::{Path, PathBuf};

use scorestream_operators::batch::BatchConfig;
use scorestream_operators::config::{ConfigError, Validate};
use scorestream_operators::drift::DriftConfig;
use scorestream_operators::features::{FeatureStoreConfig, FeaturesConfig};
use scorestream_operators::kafka::PATH_OPTIONS;
use scorestream_operators::scorer::ScorerConfig;
use scorestream_operators::sink::dead_letter_topic::DeadLettersConfig;
use scorestream_operators::sink::parquet::{OutputPath, ParquetSinkConfig};
use scorestream_operators::source::kafka::KafkaSourceConfig;
use scorestream_schemas::FieldSpec;
use serde::{Deserialize, Deserializer};

/// A whole scoring job, as written in its TOML file.
#[derive(Debug, Clone)]
pub struct JobConfig {
    pub job: JobSection,
    pub source: KafkaSourceConfig,
    pub schema: SchemaSection,
    pub features: FeaturesConfig,
    pub batch: BatchConfig,
    pub model: ScorerConfig,
    pub sink: ParquetSinkConfig,
    /// `[dead_letters]`, optional: Parquet only unless a topic is named.
    pub dead_letters: DeadLettersConfig,
    pub queues: QueueConfig,
    /// `[drift]`, optional: drift detection against a reference profile.
    pub drift: Option<DriftConfig>,
}

impl JobConfig {
    /// Resolves the paths a job file gives relative to itself (feature file,
    /// model package) against the file's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.model.path);
        for s in &mut self.model.shadows {
            fix(&mut s.path);
        }
        if let Some(c) = &mut self.model.canary {
            fix(&mut c.path);
        }
        if let Some(d) = &mut self.drift {
            fix(&mut d.profile);
        }
        match &mut self.features.store {
            FeatureStoreConfig::File(f) => fix(&mut f.path),
            FeatureStoreConfig::Redis(_) => {}
        }
    }

    /// Resolves every relative path against `base`: the inputs as
    /// [`resolve_paths`](Self::resolve_paths) does, and the output, its
    /// spool and the TLS files of `source.options` too. A service uses this
    /// (its `--base-dir`), so where a job writes never depends on the
    /// directory the service happened to start in; `scorestream run` keeps
    /// `sink.path` relative to the working directory, as documented.
    pub fn resolve_every_path(&mut self, base: &Path) {
        self.resolve_paths(base);
        if let OutputPath::Local(p) = &mut self.sink.path
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
        if let Some(p) = &mut self.sink.spool_dir
            && p.is_relative()
        {
            *p = base.join(&*p);
        }
        for key in PATH_OPTIONS {
            if let Some(v) = self.source.options.get_mut(key)
                && v != "probe"
                && Path::new(v.as_str()).is_relative()
            {
                *v = base.join(v.as_str()).display().to_string();
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSection {
    pub name: JobName,
}

/// A job name: used in file names, metrics and logs, so restricted to
/// `[A-Za-z0-9_-]`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobName(String);

impl JobName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "invalid job name \"{s}\": use 1 to 64 letters, digits, '-' or '_'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        JobName::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaSection {
    pub fields: Vec<FieldSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Rows each queue between two operators may hold.
    #[serde(default = "default_capacity_rows")]
    pub capacity_rows: usize,
}

impl Validate for QueueConfig {
    fn validate(&self) -> Result<(), Vec<ConfigError>> {
        if self.capacity_rows == 0 {
            return Err(vec![ConfigError::new(
                "capacity_rows",
                "must be at least 1",
            )]);
        }
        Ok(())
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity_rows: default_capacity_rows(),
        }
    }
}

/// Two full batches at the default `batch.max_rows`: enough to keep every
/// stage busy. Measured in `scorestream bench` once the source kept up:
/// 262,144 held the large-model run at 1,081 MiB peak RSS, 131,072 at 942
/// MiB with no loss of throughput, and shorter queues wait less.
fn default_capacity_rows() -> usize {
    131_072
}
