use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use scorestream_operators::config::Validate;
use scorestream_operators::decode::{Decoder, JsonDecoder};
use scorestream_operators::features::{FeatureJoin, FeatureStoreConfig, JoinPolicy, build_store};
use scorestream_operators::scorer::{ModelPackage, ModelSource, Scorer, registry_version};
use scorestream_operators::sink::parquet::PartitionSpec;
use scorestream_schemas::EventSchema;
use tokio::sync::mpsc;

use super::build_model::{Challengers, build_scorer, load_model, undeclared_features};
use super::drift_setup::{DriftSetup, drift_setup};
use super::models::{ModelLoader, ModelSwap, ModelSwitch};
use crate::config::JobConfig;
use crate::{PipelineError, Problem};

/// A job whose operators are built and whose schemas have been checked end to
/// end: event fields, features and model inputs fit together. Building does
/// not touch Kafka or the output directory, so it doubles as `validate`.
pub struct Job {
    pub(super) config: JobConfig,
    pub(super) decoder: Box<dyn Decoder>,
    pub(super) join: FeatureJoin,
    pub(super) scorer: Scorer,
    pub(super) model_source: ModelSource,
    /// Shadows' and the canary's sources, each hot-reloaded when a registry.
    pub(super) challengers: Challengers,
    /// How scored rows map to output partition directories.
    pub(super) partitions: PartitionSpec,
    pub(super) drift: Option<DriftSetup>,
    /// Model versions on their way to the scorer (registry poller and
    /// [`ModelSwitch`]); one at a time.
    pub(super) swaps: (mpsc::Sender<ModelSwap>, mpsc::Receiver<ModelSwap>),
    /// Set while the job is pinned to a version asked for by name.
    pub(super) pinned: Arc<AtomicBool>,
}

impl Job {
    pub fn build(config: JobConfig) -> Result<Self, PipelineError> {
        let mut problems = Vec::new();
        let name = format!("for job `{}`", config.job.name);
        let invalid = |problems| PipelineError::InvalidConfig {
            path: name.clone(),
            problems,
        };

        let events = match EventSchema::try_new(config.schema.fields.clone()) {
            Ok(e) => e,
            Err(e) => return Err(invalid(vec![Problem::new("schema.fields", e.to_string())])),
        };
        let decoder: Box<dyn Decoder> = Box::new(JsonDecoder::new(
            events,
            config.source.max_message_bytes.0 as usize,
        ));

        let join = feature_join(&config, decoder.output_schema(), &mut problems);
        let loaded = load_model(&config, &mut problems);
        if let Some(p) = config.sink.path.local()
            && p.is_file()
        {
            problems.push(Problem::new(
                "sink.path",
                format!("{} is a file, not a directory", p.display()),
            ));
        }
        let (Some(join), Some((device, model_source, package))) = (join, loaded) else {
            return Err(invalid(problems));
        };
        if let Some(p) = undeclared_features(&config, &package, decoder.output_schema()) {
            problems.push(p);
            return Err(invalid(problems));
        }
        let scorer = build_scorer(
            &config,
            package,
            &device,
            join.output_schema(),
            &mut problems,
        );
        let drift = scorer
            .as_ref()
            .and_then(|(s, _)| drift_setup(&config, s.output_schema(), &mut problems));
        if let Err(found) = config.sink.validate() {
            problems.extend(found.into_iter().map(|e| e.within("sink")));
        }
        let partitions = scorer
            .as_ref()
            .and_then(|(s, _)| partition_spec(&config, s.output_schema(), &mut problems));
        match (scorer, partitions) {
            (Some((scorer, challengers)), Some(partitions)) if problems.is_empty() => Ok(Self {
                config,
                decoder,
                join,
                scorer,
                model_source,
                challengers,
                partitions,
                drift,
                swaps: mpsc::channel(1),
                pinned: Arc::new(AtomicBool::new(false)),
            }),
            _ => Err(invalid(problems)),
        }
    }

    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// What loads and checks versions of this job's model.
    pub(super) fn model_loader(&self) -> ModelLoader {
        ModelLoader {
            registry: match &self.model_source {
                ModelSource::Registry { dir, .. } => Some(dir.clone()),
                ModelSource::Package(_) => None,
            },
            device: self.scorer.device().clone(),
            precision: self.config.model.precision,
            check: self.scorer.input_schema().clone(),
        }
    }

    /// A handle to swap the running job's model version by name.
    pub fn model_switch(&self) -> ModelSwitch {
        ModelSwitch {
            loader: self.model_loader(),
            to_scorer: self.swaps.0.clone(),
            pinned: self.pinned.clone(),
        }
    }

    /// Starts the job on registry version `version` instead of the highest
    /// and keeps it there (a swap by name that must survive a restart);
    /// `latest` changes nothing.
    pub fn pin_model(&mut self, version: &str) -> Result<(), PipelineError> {
        if version == "latest" {
            return Ok(());
        }
        let rejected = |reason: String| PipelineError::ModelSwap {
            version: version.to_owned(),
            reason,
        };
        let ModelSource::Registry { dir, .. } = &self.model_source else {
            return Err(rejected(
                "model.path is one model package, not a registry of versions".into(),
            ));
        };
        let dir = registry_version(dir, version).map_err(|e| rejected(e.to_string()))?;
        let package =
            ModelPackage::load_as(&dir, self.scorer.device(), self.config.model.precision)
                .map_err(|e| rejected(e.to_string()))?;
        self.scorer.swap(package).map_err(|errors| {
            rejected(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        self.pinned.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The models scoring (champion, shadows, canary).
    pub fn models(&self) -> Vec<scorestream_operators::scorer::ModelInUse> {
        self.scorer.models()
    }

    /// The columns the drift operator watches (empty without `[drift]`).
    pub fn drift_columns(&self) -> &[String] {
        self.drift.as_ref().map_or(&[], |d| d.columns.as_slice())
    }

    pub fn model_name(&self) -> &str {
        self.scorer.model_name()
    }

    pub fn model_version(&self) -> &str {
        self.scorer.model_version()
    }

    /// The schema of the scored rows (files hold all but the partition columns).
    pub fn output_schema(&self) -> &arrow::datatypes::SchemaRef {
        self.scorer.output_schema()
    }

    /// How the scored output is partitioned.
    pub fn partitions(&self) -> &PartitionSpec {
        &self.partitions
    }

    pub fn precision(&self) -> scorestream_operators::scorer::Precision {
        self.scorer.precision()
    }

    pub fn device(&self) -> String {
        match self.scorer.device().location() {
            candle_core::DeviceLocation::Cpu => "cpu".into(),
            candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
            other => format!("{other:?}"),
        }
    }
}

/// The feature store and the join onto the decoded events, or the problems
/// that stop them.
fn feature_join(
    config: &JobConfig,
    input: &SchemaRef,
    problems: &mut Vec<Problem>,
) -> Option<FeatureJoin> {
    let store_key = match config.features.store {
        FeatureStoreConfig::File(_) => "features.store.path",
        FeatureStoreConfig::Redis(_) => "features.store",
    };
    let policy = JoinPolicy::from_config(&config.features)
        .map_err(|m| problems.push(Problem::new("features.columns", m)))
        .ok();
    match (build_store(&config.features), policy) {
        (Ok(store), Some(policy)) => {
            FeatureJoin::try_new(store, input, &config.features.key, policy)
                .map_err(|m| problems.push(Problem::new("features.key", m)))
                .ok()
        }
        (Err(e), _) => {
            problems.push(Problem::new(store_key, e.to_string()));
            None
        }
        (Ok(_), None) => None,
    }
}

/// How scored rows map to output partition directories.
fn partition_spec(
    config: &JobConfig,
    output: &SchemaRef,
    problems: &mut Vec<Problem>,
) -> Option<PartitionSpec> {
    PartitionSpec::new(
        &config.sink.partition_by,
        &config.sink.partition_time,
        output,
    )
    .map_err(|ps| problems.extend(ps.into_iter().map(|(k, m)| Problem::new(k, m))))
    .ok()
}
