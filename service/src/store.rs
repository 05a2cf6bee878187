//! Submitted jobs on disk, so they survive a restart of the service:
//! `<data-dir>/jobs/<name>/job.toml` as submitted (it may hold secrets, so
//! only the service's user can read it) and `state.json`, what the job
//! should be doing. Every write goes to a temporary file that is renamed
//! into place, so a crash leaves the old version or the new, never half.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ServiceError;

/// Whether a job should run when the service (re)starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobState {
    pub desired: Desired,
    /// A model version asked for by name; `None` follows the registry.
    pub model_version: Option<String>,
    /// RFC 3339.
    pub submitted_at: String,
    /// What the config's relative paths resolve against: the service's
    /// `--base-dir` for API submissions, the file's directory for
    /// `--submit FILE` (as `scorestream run FILE` does).
    pub base_dir: PathBuf,
}

/// One job as persisted.
#[derive(Debug, Clone)]
pub struct Persisted {
    pub name: String,
    pub toml: String,
    pub state: JobState,
}

/// The service's data directory. Holding it also holds an exclusive lock
/// on it: two services resuming the same jobs would run each twice.
#[derive(Debug)]
pub struct JobStore {
    dir: PathBuf,
    _lock: File,
}

impl JobStore {
    pub fn open(data_dir: &Path) -> Result<Self, ServiceError> {
        let jobs = data_dir.join("jobs");
        std::fs::create_dir_all(&jobs)
            .map_err(|e| ServiceError::io(format!("creating {}", jobs.display()), e))?;
        let lock_path = data_dir.join("service.lock");
        let lock = File::create(&lock_path)
            .map_err(|e| ServiceError::io(format!("creating {}", lock_path.display()), e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| {
                ServiceError::Setup(format!(
                    "another scorestream service is using the data directory {} (it holds {})",
                    data_dir.display(),
                    lock_path.display()
                ))
            },
        )?;
        Ok(Self {
            dir: jobs,
            _lock: lock,
        })
    }

    /// `name` must already be a valid job name (`[A-Za-z0-9_-]{1,64}`), so
    /// it cannot name a path outside the data directory.
    fn job_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn save(&self, job: &Persisted) -> Result<(), ServiceError> {
        let dir = self.job_dir(&job.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| ServiceError::io(format!("creating {}", dir.display()), e))?;
        write_atomic(&dir.join("job.toml"), job.toml.as_bytes())?;
        self.save_state(&job.name, &job.state)
    }

    pub fn save_state(&self, name: &str, state: &JobState) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec_pretty(state)
            .map_err(|e| ServiceError::Internal(format!("encoding job state: {e}")))?;
        write_atomic(&self.job_dir(name).join("state.json"), &bytes)
    }

    pub fn remove(&self, name: &str) -> Result<(), ServiceError> {
        let dir = self.job_dir(name);
        std::fs::remove_dir_all(&dir)
            .map_err(|e| ServiceError::io(format!("removing {}", dir.display()), e))
    }

    /// Every persisted job, by name. A directory without both files is a
    /// submission that crashed half way and is skipped; a state file that
    /// cannot be read is an error naming it, not a job silently lost.
    pub fn load_all(&self) -> Result<Vec<Persisted>, ServiceError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| ServiceError::io(format!("reading {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if scorestream_pipeline::config::JobName::parse(&name).is_err() {
                continue;
            }
            let (toml_path, state_path) = (
                entry.path().join("job.toml"),
                entry.path().join("state.json"),
            );
            let (Ok(toml), Ok(state)) = (
                std::fs::read_to_string(&toml_path),
                std::fs::read(&state_path),
            ) else {
                continue;
            };
            let state = serde_json::from_slice(&state).map_err(|e| ServiceError::Persisted {
                path: state_path.display().to_string(),
                reason: e.to_string(),
            })?;
            out.push(Persisted { name, toml, state });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ServiceError> {
    let tmp = path.with_extension("tmp");
    let io = |e| ServiceError::io(format!("writing {}", path.display()), e);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> Persisted {
        Persisted {
            name: name.into(),
            toml: "[job]\nname = \"x\"\n\"sasl.password\" = \"pw\"\n".into(),
            state: JobState {
                desired: Desired::Running,
                model_version: Some("v2".into()),
                submitted_at: "2026-12-02T00:00:00Z".into(),
                base_dir: "/jobs".into(),
            },
        }
    }

    #[test]
    fn jobs_round_trip_and_only_the_owner_reads_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = JobStore::open(dir.path()).expect("open");
        store.save(&job("b")).expect("save");
        store.save(&job("a")).expect("save");
        let mut stopped = job("a").state;
        stopped.desired = Desired::Stopped;
        store.save_state("a", &stopped).expect("state");
        // A half-written submission is skipped.
        std::fs::create_dir_all(dir.path().join("jobs/half")).expect("mkdir");
        let all = store.load_all().expect("load");
        assert_eq!(
            all.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(all[0].state, stopped);
        assert_eq!(all[1].state.model_version.as_deref(), Some("v2"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jobs/a/job.toml"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.remove("b").expect("remove");
        assert_eq!(store.load_all().expect("load").len(), 1);
    }

    #[test]
    fn a_second_service_on_the_same_data_dir_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let _first = JobStore::open(dir.path()).expect("open");
        let second = JobStore::open(dir.path()).expect_err("locked");
        assert!(
            second.to_string().contains("another scorestream service"),
            "{second}"
        );
    }

    #[test]
    fn an_unreadable_state_file_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = JobStore::open(dir.path()).expect("open");
        store.save(&job("a")).expect("save");
        std::fs::write(dir.path().join("jobs/a/state.json"), "{").expect("write");
        let e = store.load_all().expect_err("bad state");
        assert!(e.to_string().contains("state.json"), "{e}");
    }
}
