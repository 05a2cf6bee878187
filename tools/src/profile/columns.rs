//! The queries that profile one column: a numeric column's quantile bins,
//! counts and sample, a string column's top categories.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use rand::SeedableRng;
use scorestream_operators::drift::{CategoricalProfile, NumericProfile, Reservoir};

use super::{ProfileOptions, TABLE, failed, quote};
use crate::ToolError;

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

pub(super) async fn scalar_i64(
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

/// A numeric column's profile; `integer` columns get integer edges.
pub(super) async fn numeric(
    ctx: &SessionContext,
    name: &str,
    rows: u64,
    integer: bool,
    opts: &ProfileOptions,
) -> Result<NumericProfile, ToolError> {
    let err = failed(&opts.input);
    let c = format!("CAST({} AS DOUBLE)", quote(name));
    // Finite values only (NaN and infinities count as missing, as in the
    // drift operator's windows).
    let finite = format!("{c} > -1e308 AND {c} < 1e308");
    let mut edges = bin_edges(ctx, &c, &finite, opts.bins, &err).await?;
    if integer {
        // Bin `i` holds `edges[i-1] < v <= edges[i]`: for integers `v`,
        // `v <= e` is `v <= floor(e)`, so the bins hold the same values.
        edges.iter_mut().for_each(|e| *e = e.floor());
        edges.dedup();
    }
    let (counts, present) = bin_counts(ctx, &c, &finite, &edges, &err).await?;
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

/// Approximate quantiles as bin edges, sorted and without duplicates, so a
/// column with few distinct values gets fewer (never empty) bins.
async fn bin_edges(
    ctx: &SessionContext,
    c: &str,
    finite: &str,
    bins: usize,
    err: &impl Fn(DataFusionError) -> ToolError,
) -> Result<Vec<f64>, ToolError> {
    let quantiles: Vec<String> = (1..bins)
        .map(|i| {
            format!(
                "approx_percentile_cont({}) WITHIN GROUP (ORDER BY {c})",
                i as f64 / bins as f64
            )
        })
        .collect();
    let batches = collect(
        ctx,
        &format!(
            "SELECT {} FROM {TABLE} WHERE {finite}",
            quantiles.join(", ")
        ),
        err,
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
    Ok(edges)
}

/// Exact counts per bin and the number of finite values they add up to.
async fn bin_counts(
    ctx: &SessionContext,
    c: &str,
    finite: &str,
    edges: &[f64],
    err: &impl Fn(DataFusionError) -> ToolError,
) -> Result<(Vec<u64>, u64), ToolError> {
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
        err,
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
    Ok((counts, present))
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

pub(super) async fn categorical(
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
