//! Committed dead letters read as a stream of small batches: DataFusion
//! scans the files one at a time, filters, and hands on a few hundred rows
//! at once, so a replay holds a batch, never the whole table.
//!
//! Files written before the `headers`, `source_timestamp` and
//! `reason_code` columns existed read under today's schema with those
//! columns null: their letters replay with value and key only, a fresh
//! timestamp, and match no `--reason`.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{
    DataFrame, Expr, ParquetReadOptions, SessionConfig, SessionContext, col, lit,
};
use futures::StreamExt;
use scorestream_schemas::{DeadLetter, KafkaHeader, ReasonCode, dead_letter_schema, headers_type};

use super::{ReplayOptions, parse_stage};
use crate::ToolError;

/// Rows DataFusion decodes at once: with dead letters of up to the default
/// 1 MiB `max_message_bytes`, a batch stays within a few hundred MiB at
/// worst and a few MiB typically.
const READ_BATCH_ROWS: usize = 256;

/// One committed dead letter as replay needs it.
pub(super) struct Stored {
    pub(super) letter: DeadLetter,
    /// `None` in files written before reason codes existed.
    pub(super) code: Option<ReasonCode>,
}

/// The dead letters under a job's `dead_letters/`, filtered, batch by batch.
pub(super) struct Letters {
    stream: SendableRecordBatchStream,
    dir: String,
}

impl Letters {
    /// Plans the scan of `dir` with the options' filters. With no files yet
    /// the table is empty but has its schema, so a bad predicate is
    /// reported anyway.
    pub(super) async fn open(dir: &Path, options: &ReplayOptions) -> Result<Self, ToolError> {
        let failed = |e: DataFusionError| ToolError::ReadDeadLetters {
            dir: dir.display().to_string(),
            reason: e.to_string(),
        };
        let has_files = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".parquet")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(ToolError::io(format!("listing {}", dir.display()), e)),
        };
        let mut config = SessionConfig::new()
            .with_batch_size(READ_BATCH_ROWS)
            .with_target_partitions(1);
        config
            .options_mut()
            .execution
            .parquet
            .schema_force_view_types = false;
        let ctx = SessionContext::new_with_config(config);
        let schema = dead_letter_schema();
        if has_files {
            let absolute = dir
                .canonicalize()
                .map_err(|e| ToolError::io(format!("resolving {}", dir.display()), e))?;
            // Files being written end in `.tmp`; the extension filter skips
            // them. Today's schema, so older files read with nulls.
            ctx.register_parquet(
                "dead_letters",
                &format!("{}/", absolute.display()),
                ParquetReadOptions::default()
                    .file_extension(".parquet")
                    .schema(&schema),
            )
            .await
            .map_err(failed)?;
        } else {
            let empty = MemTable::try_new(schema, vec![vec![]]).map_err(failed)?;
            ctx.register_table("dead_letters", Arc::new(empty))
                .map_err(failed)?;
        }
        let mut df = ctx.table("dead_letters").await.map_err(failed)?;
        for filter in filters(options) {
            df = df.filter(filter).map_err(failed)?;
        }
        if let Some(predicate) = &options.predicate {
            df = filter_sql(df, predicate)?;
        }
        let stream = df.execute_stream().await.map_err(failed)?;
        Ok(Self {
            stream,
            dir: dir.display().to_string(),
        })
    }

    /// The next batch of dead letters, or `None` at the end.
    pub(super) async fn next(&mut self) -> Result<Option<Vec<Stored>>, ToolError> {
        let failed = |reason: String| ToolError::ReadDeadLetters {
            dir: self.dir.clone(),
            reason,
        };
        loop {
            match self.stream.next().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(failed(e.to_string())),
                Some(Ok(b)) if b.num_rows() == 0 => continue,
                Some(Ok(b)) => return to_dead_letters(&b).map(Some).map_err(failed),
            }
        }
    }
}

/// The stage, reason and time filters, as DataFusion expressions.
fn filters(options: &ReplayOptions) -> Vec<Expr> {
    let at = |ms: i64| {
        lit(ScalarValue::TimestampMillisecond(
            Some(ms),
            Some(scorestream_schemas::UTC.into()),
        ))
    };
    let mut out = Vec::new();
    if let Some(stage) = options.stage {
        out.push(col("stage").eq(lit(stage.as_str())));
    }
    if let Some(code) = options.reason {
        out.push(col("reason_code").eq(lit(code.as_str())));
    }
    if let Some(ms) = options.since_ms {
        out.push(col("rejected_at").gt_eq(at(ms)));
    }
    if let Some(ms) = options.until_ms {
        out.push(col("rejected_at").lt(at(ms)));
    }
    out
}

fn filter_sql(df: DataFrame, predicate: &str) -> Result<DataFrame, ToolError> {
    let bad = |e: DataFusionError| ToolError::BadPredicate {
        predicate: predicate.to_owned(),
        reason: e.to_string(),
    };
    let expr = df.parse_sql_expr(predicate).map_err(bad)?;
    df.filter(expr).map_err(bad)
}

/// A column cast to the type the dead-letter schema gives it.
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, String> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column `{name}`: not a dead-letter file"))?;
    cast(c, to).map_err(|e| format!("column `{name}`: {e}"))
}

fn to_dead_letters(batch: &RecordBatch) -> Result<Vec<Stored>, String> {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let raw = column(batch, "raw", &DataType::Binary)?;
    let key = column(batch, "key", &DataType::Binary)?;
    let topic = column(batch, "source_topic", &DataType::Utf8)?;
    let partition = column(batch, "source_partition", &DataType::Int32)?;
    let offset = column(batch, "source_offset", &DataType::Int64)?;
    let stage = column(batch, "stage", &DataType::Utf8)?;
    let reason = column(batch, "reason", &DataType::Utf8)?;
    let rejected_at = cast(&column(batch, "rejected_at", &ts)?, &DataType::Int64)
        .map_err(|e| format!("column `rejected_at`: {e}"))?;
    let headers = column(batch, "headers", &headers_type())?;
    let source_ts = cast(&column(batch, "source_timestamp", &ts)?, &DataType::Int64)
        .map_err(|e| format!("column `source_timestamp`: {e}"))?;
    let code = column(batch, "reason_code", &DataType::Utf8)?;
    let (raw, key) = (raw.as_binary::<i32>(), key.as_binary::<i32>());
    let (topic, stage, reason, code) = (
        topic.as_string::<i32>(),
        stage.as_string::<i32>(),
        reason.as_string::<i32>(),
        code.as_string::<i32>(),
    );
    let partition = partition.as_primitive::<Int32Type>();
    let offset = offset.as_primitive::<Int64Type>();
    let rejected_at = rejected_at.as_primitive::<Int64Type>();
    let source_ts = source_ts.as_primitive::<Int64Type>();
    let headers = headers.as_list::<i32>();
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let of = || {
            format!(
                "{}/{}/{}",
                topic.value(i),
                partition.value(i),
                offset.value(i)
            )
        };
        let stage = parse_stage(stage.value(i)).map_err(|e| format!("{}: {e}", of()))?;
        let code = match code.is_null(i) {
            true => None,
            false => Some(ReasonCode::parse(code.value(i)).map_err(|e| format!("{}: {e}", of()))?),
        };
        out.push(Stored {
            letter: DeadLetter {
                raw: raw.value(i).to_vec(),
                key: (!key.is_null(i)).then(|| key.value(i).to_vec()),
                headers: match headers.is_null(i) {
                    true => Vec::new(),
                    false => headers_of(&headers.value(i)),
                },
                topic: topic.value(i).into(),
                partition: partition.value(i),
                offset: offset.value(i),
                source_timestamp_ms: (!source_ts.is_null(i)).then(|| source_ts.value(i)),
                stage,
                // Only the stage is known for older files; replay reports
                // `code`, never this guess.
                reason_code: code.unwrap_or(match stage {
                    scorestream_schemas::DeadLetterStage::Parse => ReasonCode::InvalidJson,
                    scorestream_schemas::DeadLetterStage::Schema => ReasonCode::WrongType,
                    scorestream_schemas::DeadLetterStage::Oversized => ReasonCode::Oversized,
                    scorestream_schemas::DeadLetterStage::Features => ReasonCode::FeatureMissing,
                }),
                reason: reason.value(i).to_owned(),
                rejected_at_ms: rejected_at.value(i),
            },
            code,
        });
    }
    Ok(out)
}

/// One row's headers from the `headers` list's struct entries.
fn headers_of(entries: &ArrayRef) -> Vec<KafkaHeader> {
    let entries = entries.as_struct();
    let (keys, values) = (
        entries.column(0).as_string::<i32>(),
        entries.column(1).as_binary::<i32>(),
    );
    (0..entries.len())
        .map(|j| KafkaHeader {
            key: keys.value(j).to_owned(),
            value: (!values.is_null(j)).then(|| values.value(j).to_vec()),
        })
        .collect()
}
