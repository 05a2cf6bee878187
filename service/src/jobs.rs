//! The jobs a service hosts: each built from its submitted config, run as
//! its own task, stoppable, swappable, and persisted so a restart of the
//! service resumes what was running.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use scorestream_pipeline::config::{Confinement, JobConfig, Redactor, redacted_toml};
use scorestream_pipeline::runtime::{Job, JobStats};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use crate::ServiceError;
use crate::entry::{Entry, Live, RunState, run_entry};
use crate::prepare::{build, overlapping, prepare, redact_error};
use crate::status::{self, JobStatus};
use crate::store::{Desired, JobState, JobStore, Persisted};

pub struct Jobs {
    store: JobStore,
    /// What relative paths in submitted configs resolve against.
    base_dir: PathBuf,
    /// Where submitted jobs may read and write, and which Kafka options
    /// they may set.
    confinement: Arc<Confinement>,
    entries: Mutex<BTreeMap<String, Arc<Entry>>>,
    tracker: TaskTracker,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Jobs {
    pub fn new(store: JobStore, base_dir: PathBuf, confinement: Confinement) -> Self {
        Self {
            store,
            base_dir,
            confinement: Arc::new(confinement),
            entries: Mutex::new(BTreeMap::new()),
            tracker: TaskTracker::new(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, name: &str) -> Result<Arc<Entry>, ServiceError> {
        self.entries()
            .get(name)
            .cloned()
            .ok_or_else(|| ServiceError::NoSuchJob(name.to_owned()))
    }

    /// Checks and builds a config without starting it (dry runs, and the
    /// first half of a submission).
    pub async fn build(&self, toml: String, pin: Option<String>) -> Result<Job, ServiceError> {
        self.build_in(toml, self.base_dir.clone(), pin).await
    }

    async fn build_in(
        &self,
        toml: String,
        base: PathBuf,
        pin: Option<String>,
    ) -> Result<Job, ServiceError> {
        let redactor = Redactor::from_toml(&toml);
        let confinement = self.confinement.clone();
        tokio::task::spawn_blocking(move || build(&toml, &base, pin.as_deref(), &confinement))
            .await
            .map_err(|e| ServiceError::Internal(format!("building the job: {e}")))?
            .map_err(|e| redact_error(e, &redactor))
    }

    /// Validates, persists and starts a new job; its relative paths resolve
    /// against `base` (default: the service's base directory).
    pub async fn submit(
        &self,
        toml: String,
        base: Option<PathBuf>,
    ) -> Result<JobStatus, ServiceError> {
        let base = base.unwrap_or_else(|| self.base_dir.clone());
        let job = self.build_in(toml.clone(), base.clone(), None).await?;
        let name = job.config().job.name.to_string();
        let entry = Arc::new(self.entry(
            &name,
            toml,
            job.config(),
            JobState {
                desired: Desired::Running,
                model_version: None,
                submitted_at: now(),
                base_dir: base,
            },
        )?);
        {
            let mut entries = self.entries();
            if entries.contains_key(&name) {
                return Err(ServiceError::Conflict(format!(
                    "a job named `{name}` exists; stop and delete it first, or choose another [job] name"
                )));
            }
            if let Some(other) = entries
                .values()
                .find(|e| overlapping(&e.output, &entry.output))
            {
                return Err(ServiceError::Conflict(format!(
                    "job `{}` already writes to {} (sink.path): two jobs cannot share an output, nor nest one in the other",
                    other.name, other.output
                )));
            }
            entries.insert(name.clone(), entry.clone());
        }
        let persisted = Persisted {
            name: name.clone(),
            toml: entry.toml.clone(),
            state: self.live(&entry).state.clone(),
        };
        if let Err(e) = self.store.save(&persisted) {
            self.entries().remove(&name);
            return Err(e);
        }
        info!(job = %name, output = %entry.output, "job submitted");
        self.launch(&entry, Some(job));
        Ok(status::of(&entry, false))
    }

    fn entry(
        &self,
        name: &str,
        toml: String,
        c: &JobConfig,
        state: JobState,
    ) -> Result<Entry, ServiceError> {
        Ok(Entry {
            name: name.to_owned(),
            shown_toml: redacted_toml(&toml).map_err(ServiceError::BadRequest)?,
            redactor: Redactor::from_toml(&toml),
            toml,
            output: c.sink.path.to_string(),
            source: (
                c.source.brokers.clone(),
                c.source.topics.clone(),
                c.source.group_id.clone(),
            ),
            run: watch::Sender::new(RunState::Starting),
            live: Mutex::new(Live::idle(state)),
        })
    }

    pub(crate) fn live<'a>(&self, entry: &'a Entry) -> std::sync::MutexGuard<'a, Live> {
        entry.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the job (built already, or built here from its config) as a
    /// tracked task, in a span naming it.
    fn launch(&self, entry: &Arc<Entry>, built: Option<Job>) {
        let stop = CancellationToken::new();
        let stats = Arc::new(JobStats::default());
        let (pin, base) = {
            let mut live = self.live(entry);
            live.stop = Some(stop.clone());
            live.stats = stats.clone();
            live.started_at = Some(now());
            live.switch = None;
            (
                live.state.model_version.clone(),
                live.state.base_dir.clone(),
            )
        };
        entry.run.send_replace(RunState::Starting);
        let entry = entry.clone();
        let confinement = self.confinement.clone();
        // Built here when started again from the persisted config.
        let span = info_span!("job", job = %entry.name);
        self.tracker.spawn(
            async move {
                let job = match built {
                    Some(job) => Ok(job),
                    None => {
                        let toml = entry.toml.clone();
                        tokio::task::spawn_blocking(move || {
                            build(&toml, &base, pin.as_deref(), &confinement)
                        })
                        .await
                        .unwrap_or_else(|e| Err(ServiceError::Internal(e.to_string())))
                    }
                };
                run_entry(&entry, job, stop, stats).await;
            }
            .instrument(span),
        );
    }

    /// Loads every persisted job and starts those that were running, on
    /// the model version they were pinned to.
    pub async fn resume(&self) -> Result<usize, ServiceError> {
        let mut resumed = 0;
        for p in self.store.load_all()? {
            let config = match prepare(&p.toml, &p.state.base_dir, &self.confinement) {
                Ok(c) => c,
                Err(e) => {
                    // Valid when it was submitted: a newer scorestream may
                    // read it differently, or the operator narrowed the
                    // roots. The job is listed as failed with the reason;
                    // the other jobs resume.
                    let redactor = Redactor::from_toml(&p.toml);
                    let error = redact_error(e, &redactor).to_string();
                    warn!(job = %p.name, %error, "a persisted job's config no longer loads");
                    let entry = Entry::failed(&p, redactor, error);
                    self.entries().insert(p.name.clone(), Arc::new(entry));
                    continue;
                }
            };
            let entry = Arc::new(self.entry(&p.name, p.toml.clone(), &config, p.state.clone())?);
            self.entries().insert(p.name.clone(), entry.clone());
            if p.state.desired == Desired::Stopped {
                entry.run.send_replace(RunState::Stopped);
                continue;
            }
            let (toml, base, pin) = (
                p.toml.clone(),
                p.state.base_dir.clone(),
                p.state.model_version.clone(),
            );
            match self.build_in(toml, base, pin).await {
                Ok(job) => {
                    info!(job = %p.name, "resuming a persisted job");
                    self.launch(&entry, Some(job));
                    resumed += 1;
                }
                Err(e) => {
                    warn!(job = %p.name, error = %e, "a persisted job cannot start");
                    entry.run.send_replace(RunState::Failed {
                        error: e.to_string(),
                    });
                }
            }
        }
        Ok(resumed)
    }

    pub fn list(&self) -> Vec<JobStatus> {
        let entries: Vec<Arc<Entry>> = self.entries().values().cloned().collect();
        entries.iter().map(|e| status::of(e, false)).collect()
    }

    pub fn status(&self, name: &str) -> Result<JobStatus, ServiceError> {
        let entry = self.get(name)?;
        Ok(status::of(&entry, true))
    }

    /// Stops a job for good (until started again): it drains, flushes and
    /// commits; returns once it has, or at once when `wait` is false.
    pub async fn stop(&self, name: &str, wait: bool) -> Result<JobStatus, ServiceError> {
        let entry = self.get(name)?;
        let stop = {
            let mut live = self.live(&entry);
            live.state.desired = Desired::Stopped;
            self.store.save_state(name, &live.state)?;
            live.stop.clone()
        };
        if let Some(stop) = stop {
            info!(job = %name, "stopping: draining, flushing and committing");
            entry.run.send_if_modified(|s| {
                let running = matches!(s, RunState::Running | RunState::Starting);
                if running {
                    *s = RunState::Stopping;
                }
                running
            });
            stop.cancel();
        }
        if wait {
            let mut rx = entry.run.subscribe();
            let _ = rx.wait_for(RunState::is_final).await;
        }
        Ok(status::of(&entry, true))
    }

    /// Starts a stopped or failed job again, from its persisted config.
    pub fn start(&self, name: &str) -> Result<JobStatus, ServiceError> {
        let entry = self.get(name)?;
        if !entry.run.borrow().is_final() {
            return Err(ServiceError::Conflict(format!(
                "job `{name}` is {}; stop it first",
                status::state_name(&entry.run.borrow())
            )));
        }
        {
            let mut live = self.live(&entry);
            live.state.desired = Desired::Running;
            self.store.save_state(name, &live.state)?;
        }
        info!(job = %name, "starting");
        self.launch(&entry, None);
        Ok(status::of(&entry, true))
    }

    /// Scores the job with registry version `version` from the next batch
    /// on, and keeps it there across restarts (`latest` follows the
    /// registry again).
    pub async fn swap_model(&self, name: &str, version: &str) -> Result<JobStatus, ServiceError> {
        let entry = self.get(name)?;
        let switch = self.live(&entry).switch.clone().ok_or_else(|| {
            ServiceError::Conflict(format!(
                "job `{name}` is {}: a model can be swapped only while it runs",
                status::state_name(&entry.run.borrow())
            ))
        })?;
        let now_scoring = switch
            .swap(version)
            .await
            .map_err(|source| ServiceError::ModelSwap {
                job: name.to_owned(),
                source: Box::new(source),
            })?;
        {
            let mut live = self.live(&entry);
            live.state.model_version = (version != "latest").then(|| version.to_owned());
            self.store.save_state(name, &live.state)?;
        }
        info!(job = %name, version = %now_scoring, "model version swapped");
        Ok(status::of(&entry, true))
    }

    /// Forgets a stopped job (its output stays where it is).
    pub fn delete(&self, name: &str) -> Result<(), ServiceError> {
        let entry = self.get(name)?;
        if !entry.run.borrow().is_final() {
            return Err(ServiceError::Conflict(format!(
                "job `{name}` is {}; stop it before deleting it",
                status::state_name(&entry.run.borrow())
            )));
        }
        self.store.remove(name)?;
        self.entries().remove(name);
        info!(job = %name, "job deleted");
        Ok(())
    }

    /// Stops every job for the service's shutdown (they stay persisted as
    /// they were, so the next start resumes them) and waits for each to
    /// drain, flush and commit.
    pub async fn shutdown(&self) {
        let entries: Vec<Arc<Entry>> = self.entries().values().cloned().collect();
        for e in &entries {
            if let Some(stop) = self.live(e).stop.clone() {
                stop.cancel();
            }
        }
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Counts of jobs by state, for readiness.
    pub fn failed(&self) -> Vec<String> {
        self.entries()
            .values()
            .filter(|e| matches!(*e.run.borrow(), RunState::Failed { .. }))
            .map(|e| e.name.clone())
            .collect()
    }
}
