//! Changing the model a running job scores with: new registry versions
//! picked up by polling, and versions asked for by name (the service's
//! `PUT /v1/jobs/{name}/model`), which pin the job to that version until
//! `latest` is asked for again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use candle_core::Device;
use metrics::counter;
use scorestream_operators::OperatorError;
use scorestream_operators::scorer::{
    InputMatrix, ModelPackage, ModelRole, PrecisionChoice, RegistryWatcher, registry_version,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::PipelineError;

/// A loaded, checked model version on its way to the scorer, with whom to
/// tell once it scores (or why the scorer refused it).
pub(super) struct ModelSwap {
    /// Which of the scorer's models the version replaces.
    pub(super) role: ModelRole,
    pub(super) package: ModelPackage,
    pub(super) done: Option<oneshot::Sender<Result<(), String>>>,
}

/// What loading a version needs: where versions live and what they must
/// fit. Shared by the registry poller and [`ModelSwitch`].
#[derive(Clone)]
pub(super) struct ModelLoader {
    /// The registry directory; `None` when `model.path` is one package.
    pub(super) registry: Option<PathBuf>,
    pub(super) device: Device,
    pub(super) precision: PrecisionChoice,
    /// The schema batches reach the scorer with: a version whose inputs do
    /// not bind to it is rejected before it gets near the scorer.
    pub(super) check: SchemaRef,
}

impl ModelLoader {
    /// Loads the package at `dir` and checks its inputs bind, off the
    /// async threads (loading reads weights and may take a while).
    async fn load(&self, dir: PathBuf) -> Result<ModelPackage, String> {
        let (device, check, precision) = (self.device.clone(), self.check.clone(), self.precision);
        tokio::task::spawn_blocking(move || {
            let package =
                ModelPackage::load_as(&dir, &device, precision).map_err(|e| e.to_string())?;
            InputMatrix::bind(&package.manifest.inputs, &check).map_err(|errors| {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            Ok(package)
        })
        .await
        .map_err(|e| format!("model loading task failed: {e}"))?
    }
}

/// Swaps a running job's champion model to a named registry version.
/// Cloneable; it does not keep the job alive.
#[derive(Clone)]
pub struct ModelSwitch {
    pub(super) loader: ModelLoader,
    pub(super) to_scorer: mpsc::Sender<ModelSwap>,
    /// Set while a version asked for by name is in use: the registry
    /// poller then leaves the job on it.
    pub(super) pinned: Arc<AtomicBool>,
}

impl std::fmt::Debug for ModelSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSwitch")
            .field("registry", &self.loader.registry)
            .finish_non_exhaustive()
    }
}

impl ModelSwitch {
    /// Loads `version` (a directory name in the job's registry, or `latest`
    /// for the highest, which also resumes following new versions), checks
    /// it fits the job's batches, and returns once the scorer uses it: the
    /// next batch is scored with it.
    pub async fn swap(&self, version: &str) -> Result<String, PipelineError> {
        let rejected = |reason: String| PipelineError::ModelSwap {
            version: version.to_owned(),
            reason,
        };
        let Some(registry) = &self.loader.registry else {
            return Err(rejected(
                "model.path is one model package, not a registry of versions: only a job whose model.path is a registry directory (v1/, v2/, ...) can swap versions".into(),
            ));
        };
        let dir = registry_version(registry, version).map_err(|e| rejected(e.to_string()))?;
        let package = self.loader.load(dir).await.map_err(rejected)?;
        let now = package.manifest.version.clone();
        let (done, outcome) = oneshot::channel();
        self.to_scorer
            .send(ModelSwap {
                role: ModelRole::Champion,
                package,
                done: Some(done),
            })
            .await
            .map_err(|_| rejected("the job is not running".into()))?;
        outcome
            .await
            .map_err(|_| rejected("the job stopped before the swap".into()))?
            .map_err(rejected)?;
        self.pinned.store(version != "latest", Ordering::Relaxed);
        Ok(now)
    }
}

/// Polls one model's registry and hands each new, valid version to the
/// scorer, unless the job is pinned to a version. The champion, each shadow
/// and the canary whose path is a registry each have one.
pub(super) struct RegistryWatch {
    pub(super) role: ModelRole,
    pub(super) watcher: RegistryWatcher,
    pub(super) every: std::time::Duration,
    pub(super) loader: ModelLoader,
    /// Set while the champion is pinned by name; challengers are never
    /// pinned (theirs stays false).
    pub(super) pinned: Arc<AtomicBool>,
}

impl RegistryWatch {
    pub(super) async fn run(
        mut self,
        to_scorer: mpsc::Sender<ModelSwap>,
        cancel: CancellationToken,
    ) -> Result<(), OperatorError> {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            if self.pinned.load(Ordering::Relaxed) {
                continue;
            }
            let version = match self.watcher.newer() {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, "cannot read the model registry");
                    continue;
                }
            };
            match self.loader.load(version.clone()).await {
                Ok(package) => {
                    info!(
                        role = %self.role,
                        path = %version.display(),
                        version = %package.manifest.version,
                        "new model version loaded; swapping it in at the next batch"
                    );
                    self.watcher.accepted(&version);
                    let swap = ModelSwap {
                        role: self.role,
                        package,
                        done: None,
                    };
                    if to_scorer.send(swap).await.is_err() {
                        return Ok(());
                    }
                }
                Err(reason) => {
                    counter!("scorestream_model_reload_failures_total", "role" => self.role.as_str())
                        .increment(1);
                    error!(
                        role = %self.role,
                        path = %version.display(),
                        reason = %reason,
                        "new model version rejected; the current one keeps scoring"
                    );
                    self.watcher.rejected(&version);
                }
            }
        }
    }
}
