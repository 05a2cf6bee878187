use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// Output root: scored rows go to `<path>/scores`, dead letters to
    /// `<path>/dead_letters`. Relative paths are resolved against the working directory.
    pub path: PathBuf,
    #[serde(default)]
    pub compression: Compression,
}
