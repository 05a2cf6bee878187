//! `scorestream profile`: a reference profile of training (or scored
//! validation) data, computed by DataFusion over Parquet.
//!
//! Each column costs a few aggregate queries (counts, approximate quantiles,
//! bin counts or category frequencies) and one streamed scan for a
//! reservoir sample, so memory stays bounded by the sample size however
//! large the input is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::datatypes::{DataType, Schema};
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use scorestream_operators::drift::{ColumnProfile, ProfileKind, ReferenceProfile};

use crate::ToolError;

mod columns;

use columns::{categorical, numeric, scalar_i64};

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
    check_options(opts)?;
    let err = failed(&opts.input);
    let (ctx, schema) = register(opts).await?;
    let columns = select_columns(opts, &schema)?;
    let rows = scalar_i64(&ctx, &format!("SELECT count(*) FROM {TABLE}"), &err).await? as u64;
    let mut profiles = BTreeMap::new();
    for (name, data_type) in columns {
        let profile = match ProfileKind::of(&data_type) {
            Some(ProfileKind::Numeric) => {
                // Integers (and booleans) get integer edges: a fractional
                // edge between two integers bins them as its floor does,
                // and reads as if the column held fractions.
                let integer = data_type.is_integer() || data_type == DataType::Boolean;
                ColumnProfile::Numeric(numeric(&ctx, &name, rows, integer, opts).await?)
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

fn bad_option(option: &'static str, reason: String) -> ToolError {
    ToolError::BadOption { option, reason }
}

/// Rejects settings that would give an empty or meaningless profile before
/// any data is read.
fn check_options(opts: &ProfileOptions) -> Result<(), ToolError> {
    if opts.bins < 2 {
        return Err(bad_option(
            "--bins",
            format!("{} is fewer than 2 bins", opts.bins),
        ));
    }
    if opts.sample == 0 || opts.top == 0 {
        return Err(bad_option("--sample/--top", "must be at least 1".into()));
    }
    Ok(())
}

/// A session with the input registered as [`TABLE`], and the input's schema.
async fn register(opts: &ProfileOptions) -> Result<(SessionContext, Schema), ToolError> {
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
    Ok((ctx, schema))
}

/// The columns to profile: the ones asked for, or every profilable one.
fn select_columns(
    opts: &ProfileOptions,
    schema: &Schema,
) -> Result<Vec<(String, DataType)>, ToolError> {
    let columns: Vec<(String, DataType)> = if opts.columns.is_empty() {
        schema
            .fields()
            .iter()
            .filter(|f| ProfileKind::of(f.data_type()).is_some())
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    } else {
        named_columns(&opts.columns, schema)?
    };
    if columns.is_empty() {
        return Err(bad_option(
            "--columns",
            "the input has no numeric or string column".into(),
        ));
    }
    Ok(columns)
}

/// Every named column that cannot be profiled is reported at once, with the
/// input's column names, so one retry can fix the list.
fn named_columns(names: &[String], schema: &Schema) -> Result<Vec<(String, DataType)>, ToolError> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for c in names {
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
        return Err(bad_option(
            "--columns",
            format!(
                "{} (the input's columns: {})",
                missing.join("; "),
                scorestream_schemas::column_names(schema)
            ),
        ));
    }
    Ok(found)
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
