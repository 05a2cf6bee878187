//! The model side of building a job: the device, the champion's package
//! and its challengers, and the model's inputs checked against what the job
//! declares, so a missing feature is named before anything runs.

use arrow::datatypes::SchemaRef;
use candle_core::Device;
use scorestream_operators::scorer::{ModelPackage, ModelRole, ModelSource, Scorer};

use crate::Problem;
use crate::config::JobConfig;

/// The device and the champion's package, loaded onto it.
pub(super) fn load_model(
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

/// A challenger's role and where its versions come from (a registry of
/// them is watched for new ones, as the champion's is).
pub(super) type Challengers = Vec<(ModelRole, ModelSource)>;

/// The scorer with its champion bound to the joined schema, and its shadows
/// and canary.
pub(super) fn build_scorer(
    config: &JobConfig,
    package: ModelPackage,
    device: &Device,
    input: &SchemaRef,
    problems: &mut Vec<Problem>,
) -> Option<(Scorer, Challengers)> {
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

/// The columns the model reads that are neither event fields nor features
/// the store declares, as one problem naming them and what is declared
/// (by Feast view where there are views).
pub(super) fn undeclared_features(
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
/// Each path is a package or a registry of versions, like `model.path`.
pub(super) fn challengers(
    mut scorer: Scorer,
    config: &JobConfig,
    device: &candle_core::Device,
) -> Result<(Scorer, Challengers), Vec<scorestream_operators::OperatorError>> {
    let load = |path: &std::path::Path| {
        let source = ModelSource::resolve(path).map_err(|e| vec![e])?;
        let package = ModelPackage::load_as(source.package_dir(), device, config.model.precision)
            .map_err(|e| vec![e])?;
        Ok::<_, Vec<_>>((source, package))
    };
    let mut sources = Vec::new();
    for (i, s) in config.model.shadows.iter().enumerate() {
        let (source, package) = load(&s.path)?;
        scorer = scorer.with_shadow(package)?;
        sources.push((ModelRole::Shadow(i), source));
    }
    if let Some(c) = &config.model.canary {
        if !(0.0..=1.0).contains(&c.fraction) {
            return Err(vec![scorestream_operators::OperatorError::ModelInput {
                input: "model.canary.fraction".into(),
                reason: format!("{} is not between 0 and 1", c.fraction),
            }]);
        }
        let key = c.key.as_deref().unwrap_or(&config.features.key);
        let (source, package) = load(&c.path)?;
        scorer = scorer.with_canary(package, c.fraction, key)?;
        sources.push((ModelRole::Canary, source));
    }
    Ok((scorer, sources))
}
