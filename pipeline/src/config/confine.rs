//! Where a hosted job may read and write. `scorestream serve` takes job
//! files from anyone holding a token, and every path in one is something
//! the service would open with its own rights: the model, the feature file,
//! the drift profile and TLS files are read, the sink is written. Each must
//! lie under a root the operator allowed, judged after `..` and symbolic
//! links are resolved, and never in the service's own state. A shell user
//! running `scorestream run` owns the machine and is not confined.

use std::path::{Component, Path, PathBuf};

use scorestream_operators::features::{FeatureStoreConfig, RedisStoreConfig};
use scorestream_operators::kafka::{OptionPolicy, PATH_OPTIONS};
use scorestream_operators::sink::parquet::{ObjectUrl, OutputPath};

use super::JobConfig;
use crate::Problem;

/// One allowed directory, as the operator wrote it (normalised) and as
/// the file system resolves it: a job may name either.
#[derive(Debug, Clone)]
struct Root {
    given: PathBuf,
    real: PathBuf,
}

/// The roots a hosted job's paths must lie under, and which Kafka options
/// it may set.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    models: Vec<Root>,
    inputs: Vec<Root>,
    outputs: Vec<Root>,
    objects: Vec<ObjectUrl>,
    /// Never read or written by a job: the service's data directory (other
    /// jobs' configs, with their secrets) and its token file.
    private: Vec<PathBuf>,
    pub options: OptionPolicy,
}

/// The operator's roots, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    pub models: Vec<PathBuf>,
    pub inputs: Vec<PathBuf>,
    pub outputs: Vec<OutputPath>,
    pub private: Vec<PathBuf>,
    /// Kafka options hosted jobs may set beyond the built-in list.
    pub also_options: Vec<String>,
}

impl Confinement {
    /// Resolves the roots once; each must exist (a typo in a root would
    /// otherwise refuse every job with a puzzling message).
    pub fn new(roots: Roots) -> Result<Self, String> {
        let dirs = |list: &[PathBuf], flag: &str| -> Result<Vec<Root>, String> {
            list.iter()
                .map(|p| {
                    let real = std::fs::canonicalize(p)
                        .map_err(|e| format!("{flag} {}: {e}", p.display()))?;
                    let given = std::path::absolute(p)
                        .map(|a| lexical(&a))
                        .map_err(|e| format!("{flag} {}: {e}", p.display()))?;
                    Ok(Root { given, real })
                })
                .collect()
        };
        let mut locals = Vec::new();
        let mut objects = Vec::new();
        for o in &roots.outputs {
            match o {
                OutputPath::Local(p) => locals.push(p.clone()),
                OutputPath::Object(u) => objects.push(u.clone()),
            }
        }
        let private = roots
            .private
            .iter()
            .map(|p| {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                resolve_existing(&lexical(&abs)).unwrap_or_else(|_| lexical(&abs))
            })
            .collect();
        Ok(Self {
            models: dirs(&roots.models, "--model-root")?,
            inputs: dirs(&roots.inputs, "--input-root")?,
            outputs: dirs(&locals, "--output-root")?,
            objects,
            private,
            options: OptionPolicy::Hosted {
                also: roots.also_options,
            },
        })
    }

    /// Checks every path of `job` (already resolved against its base) and
    /// rewrites each to its real location, so the job opens exactly what
    /// was checked and two spellings of one output compare equal.
    pub fn apply(&self, job: &mut JobConfig) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut read = |key: String, p: &mut PathBuf, roots: &[Root], what: &str| match self
            .readable(&key, p, roots, what)
        {
            Ok(real) => *p = real,
            Err(e) => problems.push(e),
        };
        read(
            "model.path".into(),
            &mut job.model.path,
            &self.models,
            "model",
        );
        for (i, s) in job.model.shadows.iter_mut().enumerate() {
            read(
                format!("model.shadows[{i}].path"),
                &mut s.path,
                &self.models,
                "model",
            );
        }
        if let Some(c) = &mut job.model.canary {
            read(
                "model.canary.path".into(),
                &mut c.path,
                &self.models,
                "model",
            );
        }
        if let Some(d) = &mut job.drift {
            read(
                "drift.profile".into(),
                &mut d.profile,
                &self.inputs,
                "input",
            );
        }
        if let FeatureStoreConfig::File(f) = &mut job.features.store {
            read(
                "features.store.path".into(),
                &mut f.path,
                &self.inputs,
                "input",
            );
        }
        for key in PATH_OPTIONS {
            let Some(value) = job.source.options.get_mut(key) else {
                continue;
            };
            if key == "ssl.ca.location" && value == "probe" {
                continue;
            }
            let mut p = PathBuf::from(value.as_str());
            read(
                format!("source.options.\"{key}\""),
                &mut p,
                &self.inputs,
                "input",
            );
            *value = p.display().to_string();
        }
        if let FeatureStoreConfig::Redis(r) = &job.features.store {
            problems.extend(self.redis_socket(r));
        }
        problems.extend(self.apply_output(job));
        problems
    }

    fn apply_output(&self, job: &mut JobConfig) -> Vec<Problem> {
        let mut problems = Vec::new();
        match &mut job.sink.path {
            OutputPath::Local(p) => match self.writable("sink.path", p) {
                Ok(real) => *p = real,
                Err(e) => problems.push(e),
            },
            OutputPath::Object(u) => {
                if !self.objects.iter().any(|root| object_within(u, root)) {
                    problems.push(Problem::new(
                        "sink.path",
                        format!(
                            "`{u}` is outside the output roots this service allows ({})",
                            self.shown_outputs()
                        ),
                    ));
                }
                if job.sink.s3.endpoint.is_some() {
                    problems.push(Problem::new(
                        "sink.s3.endpoint",
                        "a hosted job writes through the service's own S3 endpoint \
                         (its AWS_ENDPOINT_URL); leave sink.s3.endpoint out",
                    ));
                }
            }
        }
        if let Some(spool) = &mut job.sink.spool_dir {
            match self.writable("sink.spool_dir", spool) {
                Ok(real) => *spool = real,
                Err(e) => problems.push(e),
            }
        }
        problems
    }

    /// A path to read: inside a root both as written and once resolved.
    /// Errors name the key and the roots, never what the file holds, and
    /// say nothing of a path outside the roots beyond that it is outside.
    fn readable(
        &self,
        key: &str,
        path: &Path,
        roots: &[Root],
        what: &str,
    ) -> Result<PathBuf, Problem> {
        let outside = || {
            Problem::new(
                key,
                format!(
                    "`{}` is outside the {what} roots this service allows ({})",
                    path.display(),
                    shown(roots)
                ),
            )
        };
        let lex = lexical(path);
        if !roots.iter().any(|r| r.contains_given(&lex)) {
            return Err(outside());
        }
        let real = std::fs::canonicalize(&lex).map_err(|e| {
            Problem::new(
                key,
                format!("`{}` cannot be opened: {}", path.display(), e.kind()),
            )
        })?;
        if !roots.iter().any(|r| real.starts_with(&r.real)) {
            return Err(Problem::new(
                key,
                format!(
                    "`{}` leads through a symbolic link out of the {what} roots this service allows ({})",
                    path.display(),
                    shown(roots)
                ),
            ));
        }
        if self.private.iter().any(|p| real.starts_with(p)) {
            return Err(Problem::new(
                key,
                format!("`{}` is in the service's own state", path.display()),
            ));
        }
        Ok(real)
    }

    /// A local output: inside an output root once its existing part is
    /// resolved, and neither inside the service's state nor holding it.
    fn writable(&self, key: &str, path: &Path) -> Result<PathBuf, Problem> {
        let lex = lexical(path);
        let outside = || {
            Problem::new(
                key,
                format!(
                    "`{}` is outside the output roots this service allows ({})",
                    path.display(),
                    self.shown_outputs()
                ),
            )
        };
        if !self.outputs.iter().any(|r| r.contains_given(&lex)) {
            return Err(outside());
        }
        let real = resolve_existing(&lex).map_err(|e| {
            Problem::new(
                key,
                format!("`{}` cannot be resolved: {}", path.display(), e.kind()),
            )
        })?;
        if !self.outputs.iter().any(|r| real.starts_with(&r.real)) {
            return Err(outside());
        }
        if self
            .private
            .iter()
            .any(|p| real.starts_with(p) || p.starts_with(&real))
        {
            return Err(Problem::new(
                key,
                format!(
                    "`{}` would write into the service's own state (its data directory)",
                    path.display()
                ),
            ));
        }
        Ok(real)
    }

    /// A Redis reached over a Unix socket is a file the service opens.
    fn redis_socket(&self, r: &RedisStoreConfig) -> Option<Problem> {
        let rest = ["unix://", "redis+unix://"]
            .iter()
            .find_map(|s| r.url.strip_prefix(s))?;
        let socket = rest.split(['?', '#']).next().unwrap_or_default();
        self.readable(
            "features.store.url",
            Path::new(socket),
            &self.inputs,
            "input",
        )
        .err()
    }

    fn shown_outputs(&self) -> String {
        let mut all: Vec<String> = self
            .outputs
            .iter()
            .map(|r| r.given.display().to_string())
            .collect();
        all.extend(self.objects.iter().map(ToString::to_string));
        if all.is_empty() {
            "none".into()
        } else {
            all.join(", ")
        }
    }
}

impl Root {
    fn contains_given(&self, p: &Path) -> bool {
        p.starts_with(&self.given) || p.starts_with(&self.real)
    }
}

fn shown(roots: &[Root]) -> String {
    if roots.is_empty() {
        return "none".into();
    }
    roots
        .iter()
        .map(|r| r.given.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s3://bucket/a/b` is within `s3://bucket/a`, not within `s3://bucket/ab`.
fn object_within(u: &ObjectUrl, root: &ObjectUrl) -> bool {
    u.bucket() == root.bucket()
        && (root.prefix().is_empty()
            || u.prefix() == root.prefix()
            || u.prefix().starts_with(&format!("{}/", root.prefix())))
}

/// `path` with `.` and `..` taken out without asking the file system (a
/// `..` at the root stays there), so a check cannot be walked around.
pub(crate) fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The real location of a path that may not exist yet: its longest
/// existing ancestor resolved (symbolic links included), the rest appended.
fn resolve_existing(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => {
                return Ok(rest.iter().rev().fold(real, |acc, c| acc.join(c)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                rest.push(name);
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
}
