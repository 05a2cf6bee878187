//! Samples Redis for [`crate::features::probe_store`]: keys of the
//! configured layout, then one pipelined read of the configured fields of a
//! few of them (see [`super::sample`] for the bounds).

use super::sample::{SAMPLE_KEYS, Sampler};
use super::{RedisLayout, RedisStoreConfig};
use crate::Result;
use crate::features::FeatureColumn;
use crate::features::probe::ProbeReport;
use crate::features::values::FeatureValue;

/// Probes a Redis store for the job's features.
pub(crate) async fn probe(
    config: &RedisStoreConfig,
    job_key: &str,
    columns: &[FeatureColumn],
) -> Result<ProbeReport> {
    let mut s = Sampler::connect(config).await?;
    match config.layout {
        RedisLayout::Hash => probe_hash(&mut s, config, columns).await,
        RedisLayout::Feast => {
            let join_key = config.join_key.as_deref().unwrap_or(job_key);
            super::feast_probe::probe(&mut s, config, join_key, columns).await
        }
    }
}

/// `SCAN MATCH` treats these as pattern characters.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn probe_hash(
    s: &mut Sampler,
    config: &RedisStoreConfig,
    columns: &[FeatureColumn],
) -> Result<ProbeReport> {
    let template = config.key_template.as_deref().unwrap_or("{key}");
    let (prefix, suffix) = template.split_once("{key}").unwrap_or((template, ""));
    let pattern = format!("{}*{}", glob_escape(prefix), glob_escape(suffix));
    let mut keys = Vec::new();
    let scanned = s
        .scan(Some(&pattern), |k| {
            keys.push(k);
            keys.len() >= SAMPLE_KEYS
        })
        .await?;
    if keys.is_empty() {
        let m = format!(
            "no key in Redis {} matches `{template}` ({})",
            s.name,
            scanned.describe()
        );
        return Ok(scanned.nothing_found("store.key_template", m));
    }
    let mut fields: Vec<Vec<u8>> = columns
        .iter()
        .map(|c| c.name.clone().into_bytes())
        .collect();
    if let Some(ts) = &config.timestamp_field {
        fields.push(ts.clone().into_bytes());
    }
    let replies = s.hmget(&keys, &fields).await?;
    let n = keys.len();
    let mut report = ProbeReport::default();
    for (j, c) in columns.iter().enumerate() {
        let values: Vec<&[u8]> = replies
            .iter()
            .filter_map(|r| r.get(j).and_then(Option::as_deref))
            .collect();
        report
            .problems
            .extend(field_problem(j, c, &values, n, template));
    }
    if let Some(ts) = &config.timestamp_field
        && replies
            .iter()
            .all(|r| r.get(columns.len()).is_none_or(Option::is_none))
    {
        report.problems.push((
            "store.timestamp_field".into(),
            format!("none of {n} sampled hashes `{template}` has a field `{ts}`"),
        ));
    }
    report.summary = format!(
        "Redis at {}: {n} sampled hashes `{template}` hold the {} declared features",
        s.name,
        columns.len()
    );
    Ok(report)
}

/// Column `j`'s field in the `n` sampled hashes. An absent field is the
/// only problem named for it: with no values there is no type to check.
fn field_problem(
    j: usize,
    c: &FeatureColumn,
    values: &[&[u8]],
    n: usize,
    template: &str,
) -> Option<(String, String)> {
    if values.is_empty() {
        return Some((
            format!("columns[{j}].name"),
            format!(
                "none of {n} sampled hashes `{template}` has a field `{}`",
                c.name
            ),
        ));
    }
    let bad: Vec<String> = values
        .iter()
        .filter_map(|v| {
            let text = String::from_utf8_lossy(v);
            FeatureValue::parse(&text, c.kind).err()
        })
        .collect();
    let first = bad.first()?;
    Some((
        format!("columns[{j}].type"),
        format!(
            "feature `{}` is declared {}, but {} of {} sampled values are not: {first}",
            c.name,
            c.kind.name(),
            bad.len(),
            values.len()
        ),
    ))
}
