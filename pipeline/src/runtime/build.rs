use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::datatypes::SchemaRef;
use candle_core::Device;
use scorestream_operators::config::Validate;
use scorestream_operators::decode::{Decoder, JsonDecoder};
use scorestream_operators::drift::ReferenceProfile;
use scorestream_operators::features::{FeatureJoin, FeatureStoreConfig, JoinPolicy, build_store};
use scorestream_operators::scorer::{ModelPackage, ModelSource, Scorer, registry_version};
use scorestream_operators::sink::parquet::PartitionSpec;
use scorestream_schemas::EventSchema;
use tokio::sync::mpsc;

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
    /// How scored rows map to output partition directories.
    pub(super) partitions: PartitionSpec,
    pub(super) drift: Option<DriftSetup>,
    /// Model versions on their way to the scorer (registry poller and
    /// [`ModelSwitch`]); one at a time.
    pub(super) swaps: (mpsc::Sender<ModelSwap>, mpsc::Receiver<ModelSwap>),
    /// Set while the job is pinned to a version asked for by name.
    pub(super) pinned: Arc<AtomicBool>,
}

/// The reference profile a `[drift]` job compares with, and the output
/// columns it watches.
pub(super) struct DriftSetup {
    pub(super) profile: ReferenceProfile,
    pub(super) columns: Vec<String>,
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
            .and_then(|s| drift_setup(&config, s.output_schema(), &mut problems));
        if let Err(found) = config.sink.validate() {
            problems.extend(found.into_iter().map(|e| e.within("sink")));
        }
        let partitions = scorer
            .as_ref()
            .and_then(|s| partition_spec(&config, s.output_schema(), &mut problems));
        match (scorer, partitions) {
            (Some(scorer), Some(partitions)) if problems.is_empty() => Ok(Self {
                config,
                decoder,
                join,
                scorer,
                model_source,
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

/// The device and the champion's package, loaded onto it.
fn load_model(
    config: &JobConfig,
    problems: &mut Vec<Problem>,
) -> Option<(Device, ModelSource, ModelPackage)> {
    let device = config
        .model
        .device
        .open()
        .map_err(|e| problems.push(Problem::new("model.device", e.to_string())))
        .ok()?;
    ModelSource::resolve(&config.model.path)
        .and_then(|source| {
            let package =
                ModelPackage::load_as(source.package_dir(), &device, config.model.precision)?;
            Ok((source, package))
        })
        .map_err(|e| problems.push(Problem::new("model.path", e.to_string())))
        .ok()
        .map(|(source, package)| (device, source, package))
}

/// The scorer with its champion bound to the joined schema, and its shadows
/// and canary.
fn build_scorer(
    config: &JobConfig,
    package: ModelPackage,
    device: &Device,
    input: &SchemaRef,
    problems: &mut Vec<Problem>,
) -> Option<Scorer> {
    match Scorer::new(package, device.clone(), input).and_then(|s| challengers(s, config, device)) {
        Ok(s) => Some(s),
        Err(errors) => {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| Problem::new("model", e.to_string())),
            );
            None
        }
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

/// The columns the model reads that are neither event fields nor features
/// the store declares, as one problem naming them and what is declared
/// (by Feast view where there are views).
fn undeclared_features(
    config: &JobConfig,
    package: &ModelPackage,
    events: &arrow::datatypes::SchemaRef,
) -> Option<Problem> {
    use scorestream_operators::scorer::Transform;
    let declared: Vec<&str> = config
        .features
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    if declared.is_empty() {
        // A feature file without declared columns provides whatever it
        // holds; the scorer reports inputs it lacks, one by one.
        return None;
    }
    let mut missing: Vec<&str> = Vec::new();
    for input in &package.manifest.inputs {
        let mut needed = vec![input.column.as_str()];
        if let Transform::SameAs { other } = &input.transform {
            needed.push(other);
        }
        for c in needed {
            if events.field_with_name(c).is_err() && !declared.contains(&c) && !missing.contains(&c)
            {
                missing.push(c);
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let mut views: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for c in &config.features.columns {
        views
            .entry(c.view.as_deref().unwrap_or(""))
            .or_default()
            .push(&c.name);
    }
    let provided: Vec<String> = views
        .iter()
        .map(|(v, names)| {
            if v.is_empty() {
                names.join(", ")
            } else {
                format!("view `{v}`: {}", names.join(", "))
            }
        })
        .collect();
    Some(Problem::new(
        "features.columns",
        format!(
            "the model needs {} that the feature store does not provide: {} (declared: {})",
            if missing.len() == 1 {
                "a feature"
            } else {
                "features"
            },
            missing.join(", "),
            provided.join("; ")
        ),
    ))
}

/// Adds the configured shadow and canary models to the champion's scorer.
fn challengers(
    mut scorer: Scorer,
    config: &JobConfig,
    device: &candle_core::Device,
) -> Result<Scorer, Vec<scorestream_operators::OperatorError>> {
    let load = |path: &std::path::Path| {
        ModelPackage::load_as(path, device, config.model.precision).map_err(|e| vec![e])
    };
    for s in &config.model.shadows {
        scorer = scorer.with_shadow(load(&s.path)?)?;
    }
    if let Some(c) = &config.model.canary {
        if !(0.0..=1.0).contains(&c.fraction) {
            return Err(vec![scorestream_operators::OperatorError::ModelInput {
                input: "model.canary.fraction".into(),
                reason: format!("{} is not between 0 and 1", c.fraction),
            }]);
        }
        let key = c.key.as_deref().unwrap_or(&config.features.key);
        scorer = scorer.with_canary(load(&c.path)?, c.fraction, key)?;
    }
    Ok(scorer)
}

/// Loads the drift profile and picks the watched columns: those asked for,
/// or every profiled column the output has. Each column must be in both.
fn drift_setup(
    config: &JobConfig,
    output: &arrow::datatypes::SchemaRef,
    problems: &mut Vec<Problem>,
) -> Option<DriftSetup> {
    let d = config.drift.as_ref()?;
    let profile = match scorestream_operators::drift::ReferenceProfile::load(&d.profile) {
        Ok(p) => p,
        Err(e) => {
            problems.push(Problem::new("drift.profile", e.to_string()));
            return None;
        }
    };
    let in_output = |c: &str| output.index_of(c).is_ok();
    let columns: Vec<String> = if d.columns.is_empty() {
        profile
            .columns
            .keys()
            .filter(|c| in_output(c))
            .cloned()
            .collect()
    } else {
        for c in &d.columns {
            if !profile.columns.contains_key(c) {
                problems.push(Problem::new(
                    "drift.columns",
                    format!("`{c}` is not in the profile {}", d.profile.display()),
                ));
            } else if !in_output(c) {
                problems.push(Problem::new(
                    "drift.columns",
                    format!("`{c}` is not a column of the scored output"),
                ));
            }
        }
        d.columns.clone()
    };
    if columns.is_empty() {
        problems.push(Problem::new(
            "drift.profile",
            format!(
                "none of the profile's columns ({}) is in the scored output",
                profile
                    .columns
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for c in d.column_thresholds.keys() {
        if !columns.contains(c) {
            problems.push(Problem::new(
                format!("drift.column_thresholds.{c}"),
                "is not a watched column",
            ));
        }
    }
    Some(DriftSetup { profile, columns })
}
