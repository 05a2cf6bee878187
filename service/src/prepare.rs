//! A submitted config turned into a job the service may run: parsed under
//! the service's Kafka option policy, its paths resolved and confined, its
//! secrets kept out of any error about it.

use std::path::Path;

use scorestream_pipeline::config::{Confinement, JobConfig, Redactor, load_str_as};
use scorestream_pipeline::runtime::Job;

use crate::ServiceError;

/// A config as the service runs it: parsed under the service's Kafka
/// option policy, every relative path resolved against `base`, and every
/// path confined to the operator's roots (and rewritten to where it really
/// leads).
pub(crate) fn prepare(
    toml: &str,
    base: &Path,
    confinement: &Confinement,
) -> Result<JobConfig, ServiceError> {
    let mut config = load_str_as(toml, &confinement.options)
        .map_err(|problems| ServiceError::InvalidJob { problems })?;
    config.resolve_every_path(base);
    let problems = confinement.apply(&mut config);
    if !problems.is_empty() {
        return Err(ServiceError::InvalidJob { problems });
    }
    Ok(config)
}

/// Builds a job from its config text: loading the model and features reads
/// files, so callers run this off the async threads.
pub(crate) fn build(
    toml: &str,
    base: &Path,
    pin: Option<&str>,
    confinement: &Confinement,
) -> Result<Job, ServiceError> {
    let mut job = Job::build(prepare(toml, base, confinement)?)?;
    if let Some(v) = pin {
        job.pin_model(v)?;
    }
    Ok(job)
}

/// Whether two jobs' outputs would mix: the same location, or one inside
/// the other (locations are already resolved, so spellings do not matter).
pub(crate) fn overlapping(a: &str, b: &str) -> bool {
    let within =
        |x: &str, y: &str| x == y || x.starts_with(&format!("{}/", y.trim_end_matches('/')));
    !a.is_empty() && !b.is_empty() && (within(a, b) || within(b, a))
}

/// Takes the config's secrets out of an error before anyone sees it.
pub(crate) fn redact_error(e: ServiceError, r: &Redactor) -> ServiceError {
    match e {
        ServiceError::InvalidJob { problems } => ServiceError::InvalidJob {
            problems: problems
                .into_iter()
                .map(|p| scorestream_pipeline::Problem::new(r.redact(&p.key), r.redact(&p.message)))
                .collect(),
        },
        other => ServiceError::Internal(r.redact(&other.to_string())),
    }
}
