//! A model registry: a directory whose subdirectories are versions of one
//! model (`v1/`, `v2/`, `2026-11-23/` ...), each a model package. The job
//! scores with the highest version and picks up a higher one when it
//! appears, without a restart.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::package::MANIFEST_FILE;
use crate::{OperatorError, Result};

/// Where `model.path` points: one package, or a registry of versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Package(PathBuf),
    Registry {
        dir: PathBuf,
        /// The version to start with: the highest one.
        latest: PathBuf,
    },
}

impl ModelSource {
    pub fn resolve(path: &Path) -> Result<Self> {
        if path.join(MANIFEST_FILE).is_file() {
            return Ok(Self::Package(path.to_owned()));
        }
        let versions = versions(path)?;
        match versions.last() {
            Some(latest) => Ok(Self::Registry {
                dir: path.to_owned(),
                latest: latest.clone(),
            }),
            None => Err(OperatorError::ModelPackage {
                path: path.to_owned(),
                reason: format!(
                    "has no {MANIFEST_FILE}, and no subdirectory with one: point model.path at a model package, or at a registry directory of versions (v1/, v2/, ...)"
                ),
            }),
        }
    }

    /// The package to load now.
    pub fn package_dir(&self) -> &Path {
        match self {
            Self::Package(p) => p,
            Self::Registry { latest, .. } => latest,
        }
    }
}

/// The package directory of version `version` in the registry `dir`, or
/// its highest version for `latest`. Only versions the registry lists are
/// found, so a name cannot reach outside `dir` (`../x` is not listed).
pub fn registry_version(dir: &Path, version: &str) -> Result<PathBuf> {
    let all = versions(dir)?;
    let found = if version == "latest" {
        all.last().cloned()
    } else {
        all.iter().find(|v| name(v) == version).cloned()
    };
    found.ok_or_else(|| OperatorError::ModelPackage {
        path: dir.join(version),
        reason: format!(
            "no such version in the registry {}; it has: {}",
            dir.display(),
            all.iter().map(|v| name(v)).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// Subdirectories of `dir` holding a manifest, lowest version first.
fn versions(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| OperatorError::io(format!("reading model directory {}", dir.display()), e))?;
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            !hidden && p.join(MANIFEST_FILE).is_file()
        })
        .collect();
    out.sort_by(|a, b| version_order(&name(a), &name(b)));
    Ok(out)
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Orders names with their digit runs compared as numbers: `v2 < v10`,
/// `1.9 < 1.10`.
pub(super) fn version_order(a: &str, b: &str) -> Ordering {
    fn runs(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ra, rb) = (runs(a), runs(b));
    for ((da, xa), (db, xb)) in ra.iter().zip(&rb) {
        let o = match (da, db) {
            (true, true) => {
                let (ta, tb) = (xa.trim_start_matches('0'), xb.trim_start_matches('0'));
                ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
            }
            _ => xa.cmp(xb),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    ra.len().cmp(&rb.len())
}

/// Watches a registry for a version higher than the one in use.
pub struct RegistryWatcher {
    dir: PathBuf,
    current: String,
    /// Versions that failed to load, with their files' state then: not
    /// tried again until the files change (a copy still in progress, say).
    rejected: HashMap<PathBuf, Fingerprint>,
}

type Fingerprint = Vec<(std::ffi::OsString, Option<SystemTime>, u64)>;

/// Name, mtime and size of every file in a version directory: whatever the
/// package holds (safetensors, ONNX, a manifest fixed later) counts.
fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files: Fingerprint = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file()
                .then(|| (e.file_name(), m.modified().ok(), m.len()))
        })
        .collect();
    files.sort();
    files
}

impl RegistryWatcher {
    pub fn new(dir: &Path, current: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            current: name(current),
            rejected: HashMap::new(),
        }
    }

    /// The highest version above the current one that has not been
    /// rejected as it is now.
    pub fn newer(&self) -> Result<Option<PathBuf>> {
        Ok(versions(&self.dir)?.into_iter().rev().find(|v| {
            version_order(&name(v), &self.current) == Ordering::Greater
                && self.rejected.get(v).is_none_or(|at| *at != fingerprint(v))
        }))
    }

    pub fn accepted(&mut self, version: &Path) {
        self.current = name(version);
    }

    pub fn rejected(&mut self, version: &Path) {
        self.rejected
            .insert(version.to_owned(), fingerprint(version));
    }
}
