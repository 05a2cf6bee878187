//! `scorestream profile`: a reference profile of training (or scored
//! validation) data, computed by DataFusion over Parquet.
//!
//! Each column costs a few aggregate queries (counts, approximate quantiles,
//! bin counts or category frequencies) and one streamed scan for a
//! reservoir sample, so memory stays bounded by the sample size however
//! large the input is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;
use rand::SeedableRng;
use scorestream_operators::drift::{
    CategoricalProfile, ColumnProfile, NumericProfile, ProfileKind, ReferenceProfile, Reservoir,
};

use crate::ToolError;

const TABLE: &str = "reference";

#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// A Parquet file, or a directory of them.
    pub input: PathBuf,
    /// The columns to profile; every numeric, boolean and string column when
    /// empty.
    pub columns: Vec<String>,
    /// Quantile bins per numeric column.
    pub bins: usize,
    /// Categories kept per string column; the rest count as `other`.
    pub top: usize,
    /// Reference values kept per numeric column, for KS and Wasserstein.
    pub sample: usize,
    pub seed: u64,
}

impl ProfileOptions {
    pub fn new(input: impl Into<PathBuf>) -> Self {
        Self {
            input: input.into(),
            columns: Vec::new(),
            bins: 10,
            top: 20,
            sample: 10_000,
            seed: 0,
        }
    }
}

fn failed(input: &Path) -> impl Fn(DataFusionError) -> ToolError + '_ {
    move |e| ToolError::Profile {
        input: input.display().to_string(),
        reason: e.to_string(),
    }
}

fn quote(column: &str) -> String {
    format!("\"{}\"", column.replace('"', "\"\""))
}

/// Builds the profile of `opts.input`.
pub async fn build_profile(opts: &ProfileOptions) -> Result<ReferenceProfile, ToolError> {
    let bad = |option, reason: String| ToolError::BadOption { option, reason };
    if opts.bins < 2 {
        return Err(bad("--bins", format!("{} is fewer than 2 bins", opts.bins)));
    }
    if opts.sample == 0 || opts.top == 0 {
        return Err(bad("--sample/--top", "must be at least 1".into()));
    }
    let err = failed(&opts.input);
    // One partition: the reservoir sample then sees rows in file order, so
    // the same input and seed give the same profile.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let url = opts
        .input
        .canonicalize()
        .map_err(|e| ToolError::io(format!("reading {}", opts.input.display()), e))?;
    let mut url = url.display().to_string();
    if opts.input.is_dir() {
        url.push('/');
    }
    ctx.register_parquet(
        TABLE,
        &url,
        ParquetReadOptions::default().file_extension(".parquet"),
    )
    .await
    .map_err(&err)?;
    let schema = ctx
        .table(TABLE)
        .await
        .map_err(&err)?
        .schema()
        .as_arrow()
        .clone();

    let columns: Vec<(String, DataType)> = if opts.columns.is_empty() {
        schema
            .fields()
            .iter()
            .filter(|f| ProfileKind::of(f.data_type()).is_some())
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    } else {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for c in &opts.columns {
            match schema.field_with_name(c) {
                Ok(f) if ProfileKind::of(f.data_type()).is_some() => {
                    found.push((c.clone(), f.data_type().clone()))
                }
                Ok(f) => missing.push(format!(
                    "`{c}` is {}, not a number or string",
                    f.data_type()
                )),
                Err(_) => missing.push(format!("`{c}` is not a column")),
            }
        }
        if !missing.is_empty() {
            return Err(bad(
                "--columns",
                format!(
                    "{} (the input's columns: {})",
                    missing.join("; "),
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        found
    };
    if columns.is_empty() {
        return Err(bad(
            "--columns",
            "the input has no numeric or string column".into(),
        ));
    }

    let rows = scalar_i64(&ctx, &format!("SELECT count(*) FROM {TABLE}"), &err).await? as u64;
    let mut profiles = BTreeMap::new();
    for (name, data_type) in columns {
        let profile = match ProfileKind::of(&data_type) {
            Some(ProfileKind::Numeric) => {
                ColumnProfile::Numeric(numeric(&ctx, &name, rows, opts).await?)
            }
            _ => ColumnProfile::Categorical(categorical(&ctx, &name, rows, opts).await?),
        };
        profiles.insert(name, profile);
    }
    Ok(ReferenceProfile {
        source: opts.input.display().to_string(),
        rows,
        columns: profiles,
    })
}

async fn collect(
    ctx: &SessionContext,
    sql: &str,
    err: &impl Fn(DataFusionError) -> ToolError,
) -> Result<Vec<RecordBatch>, ToolError> {
    ctx.sql(sql)
        .await
        .map_err(err)?
        .collect()
        .await
        .map_err(err)
}

async fn scalar_i64(
    ctx: &SessionContext,
    sql: &str,
    err: &impl Fn(DataFusionError) -> ToolError,
) -> Result<i64, ToolError> {
    let batches = collect(ctx, sql, err).await?;
    Ok(batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).as_primitive::<Int64Type>().value(0))
        .unwrap_or(0))
}

async fn numeric(
    ctx: &SessionContext,
    name: &str,
    rows: u64,
    opts: &ProfileOptions,
) -> Result<NumericProfile, ToolError> {
    let err = failed(&opts.input);
    let c = format!("CAST({} AS DOUBLE)", quote(name));
    // Finite values only (NaN and infinities count as missing, as in the
    // drift operator's windows).
    let finite = format!("{c} > -1e308 AND {c} < 1e308");
    let quantiles: Vec<String> = (1..opts.bins)
        .map(|i| {
            format!(
                "approx_percentile_cont({}) WITHIN GROUP (ORDER BY {c})",
                i as f64 / opts.bins as f64
            )
        })
        .collect();
    let batches = collect(
        ctx,
        &format!(
            "SELECT {} FROM {TABLE} WHERE {finite}",
            quantiles.join(", ")
        ),
        &err,
    )
    .await?;
    let mut edges: Vec<f64> = batches
        .first()
        .map(|b| {
            b.columns()
                .iter()
                .filter(|a| a.is_valid(0))
                .map(|a| a.as_primitive::<Float64Type>().value(0))
                .filter(|v| v.is_finite())
                .collect()
        })
        .unwrap_or_default();
    edges.sort_by(f64::total_cmp);
    edges.dedup();

    // Bin i holds edges[i-1] < v <= edges[i], as the drift operator bins.
    let case: String = edges
        .iter()
        .enumerate()
        .map(|(i, e)| format!("WHEN {c} <= {e:?} THEN {i} "))
        .collect();
    let bin = if edges.is_empty() {
        "0".to_owned()
    } else {
        format!("CASE {case}ELSE {} END", edges.len())
    };
    let batches = collect(
        ctx,
        &format!(
            "SELECT CAST({bin} AS BIGINT) AS bin, count(*) AS n FROM {TABLE} \
             WHERE {finite} GROUP BY 1"
        ),
        &err,
    )
    .await?;
    let mut counts = vec![0u64; edges.len() + 1];
    let mut present = 0;
    for b in &batches {
        let (bins, n) = (
            b.column(0).as_primitive::<Int64Type>(),
            b.column(1).as_primitive::<Int64Type>(),
        );
        for i in 0..b.num_rows() {
            counts[bins.value(i) as usize] += n.value(i) as u64;
            present += n.value(i) as u64;
        }
    }

    let sample = reservoir(
        ctx,
        &format!("SELECT {c} FROM {TABLE} WHERE {finite}"),
        opts,
        &err,
    )
    .await?;
    Ok(NumericProfile {
        edges,
        counts,
        sample,
        missing: rows - present,
        total: rows,
    })
}

/// A uniform sample (algorithm R, seeded) of the query's one f64 column,
/// sorted. Memory is the sample's, whatever the input's size.
async fn reservoir(
    ctx: &SessionContext,
    sql: &str,
    opts: &ProfileOptions,
    err: &impl Fn(DataFusionError) -> ToolError,
) -> Result<Vec<f64>, ToolError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let mut sample = Reservoir::new(opts.sample);
    let mut stream = ctx
        .sql(sql)
        .await
        .map_err(err)?
        .execute_stream()
        .await
        .map_err(err)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(err)?;
        let values = batch.column(0).as_primitive::<Float64Type>();
        for v in values.iter().flatten() {
            sample.offer(v, &mut rng);
        }
    }
    let mut sample = sample.into_values();
    sample.sort_by(f64::total_cmp);
    Ok(sample)
}

async fn categorical(
    ctx: &SessionContext,
    name: &str,
    rows: u64,
    opts: &ProfileOptions,
) -> Result<CategoricalProfile, ToolError> {
    let err = failed(&opts.input);
    let c = quote(name);
    let present = scalar_i64(ctx, &format!("SELECT count({c}) FROM {TABLE}"), &err).await? as u64;
    let batches = collect(
        ctx,
        &format!(
            "SELECT CAST({c} AS VARCHAR) AS v, count(*) AS n FROM {TABLE} WHERE {c} IS NOT NULL \
             GROUP BY 1 ORDER BY n DESC, v LIMIT {}",
            opts.top
        ),
        &err,
    )
    .await?;
    let (mut categories, mut counts) = (Vec::new(), Vec::new());
    for b in &batches {
        let v =
            arrow::compute::cast(b.column(0), &DataType::Utf8).map_err(|e| ToolError::Profile {
                input: opts.input.display().to_string(),
                reason: e.to_string(),
            })?;
        let v = v.as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            categories.push(v.value(i).to_owned());
            counts.push(n.value(i) as u64);
        }
    }
    let kept: u64 = counts.iter().sum();
    Ok(CategoricalProfile {
        categories,
        counts,
        other: present - kept,
        missing: rows - present,
        total: rows,
    })
}

/// Writes the profile as pretty JSON.
pub fn save_profile(profile: &ReferenceProfile, path: &Path) -> Result<(), ToolError> {
    let json = serde_json::to_string_pretty(profile).map_err(|e| ToolError::Profile {
        input: profile.source.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(path, json + "\n")
        .map_err(|e| ToolError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests;
