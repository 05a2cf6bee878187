//! `scorestream replay`: re-submits a job's committed dead letters to Kafka
//! once whatever rejected them is fixed (a schema change, a feature-store
//! backfill), so the job scores them like any other event.
//!
//! Each run records what it re-submitted in a replay log under
//! `<sink.path>/_scorestream/replays/`, and later runs skip what any log
//! lists, so running it twice does not score an event twice. The log is
//! written only after every delivery succeeded: a run that fails part-way
//! records nothing, and the next run re-sends everything it selected
//! (at-least-once, like the dead-letter topic). The `scorestream.replay.of`
//! header lets consumers deduplicate such re-sends.

mod log;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext, col, lit};
use rdkafka::message::{Header, OwnedHeaders};
use scorestream_operators::sink::dead_letter_topic::{Outgoing, RawProducer, check_topic_name};
use scorestream_operators::sink::parquet::DEAD_LETTERS_DIR;
use scorestream_operators::source::kafka::KafkaSourceConfig;
use scorestream_schemas::{DeadLetter, DeadLetterStage, dead_letter_schema};
use serde::{Deserialize, Serialize};

pub use log::{REPLAYS_DIR, ReplayLog};

use crate::ToolError;

/// Header on a re-submitted event: `topic/partition/offset` of the message
/// whose dead letter it re-submits.
pub const REPLAY_OF_HEADER: &str = "scorestream.replay.of";
/// Header on a re-submitted event: why it was dead-lettered.
pub const REPLAY_REASON_HEADER: &str = "scorestream.replay.reason";

/// How long the brokers get to answer before the replay gives up, so an
/// unreachable cluster is an error in seconds rather than a delivery timeout
/// after minutes.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

const STAGES: [DeadLetterStage; 4] = [
    DeadLetterStage::Parse,
    DeadLetterStage::Schema,
    DeadLetterStage::Oversized,
    DeadLetterStage::Features,
];

/// A stage by the name dead letters carry (`parse`, `schema`, `oversized`,
/// `features`).
pub fn parse_stage(s: &str) -> Result<DeadLetterStage, String> {
    STAGES
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<_> = STAGES.iter().map(|st| st.as_str()).collect();
            format!("unknown stage `{s}`; expected one of {}", names.join(", "))
        })
}

/// What to replay and where to.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Only dead letters rejected at this stage.
    pub stage: Option<DeadLetterStage>,
    /// Only dead letters for which this SQL expression over the
    /// `dead_letters` columns is true, e.g. `source_offset > 1000`.
    pub predicate: Option<String>,
    /// Send everything to this topic instead of each one's source topic.
    pub to: Option<String>,
    /// Select and report, but send nothing and write no log.
    pub dry_run: bool,
    /// Also re-send dead letters an earlier replay already re-submitted.
    pub again: bool,
}

/// The Kafka message a dead letter came from: what identifies it across
/// files, replays and re-sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Provenance {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Provenance {
    pub fn of(d: &DeadLetter) -> Self {
        Self {
            topic: d.topic.to_string(),
            partition: d.partition,
            offset: d.offset,
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// Per-stage tallies of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageCounts {
    pub found: usize,
    pub already_replayed: usize,
    pub resubmitted: usize,
}

/// One dead letter selected for re-submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resubmission {
    pub of: Provenance,
    pub stage: DeadLetterStage,
    /// The topic it is (or in a dry run, would be) produced to.
    pub to: String,
    /// Size of its raw bytes.
    pub bytes: usize,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Distinct dead letters that matched the filters (an event dead-lettered
    /// twice, by a run that crashed before committing its offsets, counts once).
    pub found: usize,
    /// Of those, skipped because a replay log lists them.
    pub already_replayed: usize,
    /// Delivered to Kafka; 0 in a dry run.
    pub resubmitted: usize,
    pub per_stage: BTreeMap<&'static str, StageCounts>,
    /// What was re-submitted or, in a dry run, would be.
    pub selected: Vec<Resubmission>,
    /// The replay log written, when something was sent.
    pub log: Option<PathBuf>,
}

/// Re-submits the committed dead letters under `output` (a job's
/// `sink.path`) that match `options`, on the source's brokers with its client
/// settings, and records them in a new replay log.
pub async fn replay(
    source: &KafkaSourceConfig,
    output: &Path,
    options: &ReplayOptions,
) -> Result<ReplayReport, ToolError> {
    if let Some(to) = &options.to {
        check_topic_name(to).map_err(|reason| ToolError::BadOption {
            option: "--to",
            reason,
        })?;
    }
    if !output.is_dir() {
        return Err(ToolError::NoOutput(output.display().to_string()));
    }
    let letters = read_dead_letters(&output.join(DEAD_LETTERS_DIR), options).await?;
    let replays_dir = output.join(REPLAYS_DIR);
    let done = if options.again {
        HashSet::new()
    } else {
        log::replayed(&replays_dir)?
    };

    let mut report = ReplayReport::default();
    let mut seen = HashSet::new();
    let mut chosen = Vec::new();
    for d in letters {
        let of = Provenance::of(&d);
        if !seen.insert(of.clone()) {
            continue;
        }
        let counts = report.per_stage.entry(d.stage.as_str()).or_default();
        counts.found += 1;
        report.found += 1;
        if done.contains(&of) {
            counts.already_replayed += 1;
            report.already_replayed += 1;
            continue;
        }
        report.selected.push(Resubmission {
            to: options.to.clone().unwrap_or_else(|| of.topic.clone()),
            of,
            stage: d.stage,
            bytes: d.raw.len(),
            reason: d.reason.clone(),
        });
        chosen.push(d);
    }
    if options.dry_run || chosen.is_empty() {
        return Ok(report);
    }

    let producer = RawProducer::build(source)?;
    producer.check_brokers(BROKER_TIMEOUT).await?;
    let messages = chosen
        .iter()
        .zip(&report.selected)
        .map(|(d, r)| Outgoing {
            topic: &r.to,
            letter: d,
            headers: replay_headers(&r.of, &r.reason),
            timestamp_ms: None,
        })
        .collect();
    producer.produce(messages).await?;

    for r in &report.selected {
        report
            .per_stage
            .entry(r.stage.as_str())
            .or_default()
            .resubmitted += 1;
    }
    report.resubmitted = report.selected.len();
    let entry = ReplayLog {
        replayed_at_ms: scorestream_operators::now_ms(),
        to: options.to.clone(),
        stage: options.stage.map(|s| s.as_str().to_owned()),
        predicate: options.predicate.clone(),
        dead_letters: report.selected.iter().map(|r| r.of.clone()).collect(),
    };
    report.log = Some(log::write(&replays_dir, &entry)?);
    Ok(report)
}

fn replay_headers(of: &Provenance, reason: &str) -> OwnedHeaders {
    let of = of.to_string();
    OwnedHeaders::new_with_capacity(2)
        .insert(Header {
            key: REPLAY_OF_HEADER,
            value: Some(&of),
        })
        .insert(Header {
            key: REPLAY_REASON_HEADER,
            value: Some(reason),
        })
}

/// Every committed dead letter in `dir` that matches the stage and the
/// predicate, ordered by where it came from. With no files yet the table is
/// empty but still has its schema, so a bad predicate is reported anyway.
async fn read_dead_letters(
    dir: &Path,
    options: &ReplayOptions,
) -> Result<Vec<DeadLetter>, ToolError> {
    let failed = |reason: String| ToolError::ReadDeadLetters {
        dir: dir.display().to_string(),
        reason,
    };
    let df_failed = |e: DataFusionError| failed(e.to_string());
    let has_files = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".parquet")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(ToolError::io(format!("listing {}", dir.display()), e)),
    };
    let ctx = SessionContext::new();
    if has_files {
        let absolute = dir
            .canonicalize()
            .map_err(|e| ToolError::io(format!("resolving {}", dir.display()), e))?;
        // Files being written end in `.tmp`; the extension filter skips them.
        ctx.register_parquet(
            "dead_letters",
            &format!("{}/", absolute.display()),
            ParquetReadOptions::default().file_extension(".parquet"),
        )
        .await
        .map_err(df_failed)?;
    } else {
        let empty = MemTable::try_new(dead_letter_schema(), vec![vec![]]).map_err(df_failed)?;
        ctx.register_table("dead_letters", Arc::new(empty))
            .map_err(df_failed)?;
    }
    let mut df = ctx.table("dead_letters").await.map_err(df_failed)?;
    if let Some(stage) = options.stage {
        df = df
            .filter(col("stage").eq(lit(stage.as_str())))
            .map_err(df_failed)?;
    }
    if let Some(predicate) = &options.predicate {
        df = filter_sql(df, predicate)?;
    }
    let df = df
        .sort(vec![
            col("source_topic").sort(true, false),
            col("source_partition").sort(true, false),
            col("source_offset").sort(true, false),
            col("rejected_at").sort(true, false),
        ])
        .map_err(df_failed)?;
    let batches = df.collect().await.map_err(df_failed)?;
    let mut letters = Vec::new();
    for b in &batches {
        to_dead_letters(b, &mut letters).map_err(failed)?;
    }
    Ok(letters)
}

fn filter_sql(df: DataFrame, predicate: &str) -> Result<DataFrame, ToolError> {
    let bad = |e: DataFusionError| ToolError::BadPredicate {
        predicate: predicate.to_owned(),
        reason: e.to_string(),
    };
    let expr = df.parse_sql_expr(predicate).map_err(bad)?;
    df.filter(expr).map_err(bad)
}

/// A column cast to the type the dead-letter schema gives it (DataFusion may
/// read strings and binaries back as view types).
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, String> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column `{name}`: not a dead-letter file"))?;
    cast(c, to).map_err(|e| format!("column `{name}`: {e}"))
}

fn to_dead_letters(batch: &RecordBatch, out: &mut Vec<DeadLetter>) -> Result<(), String> {
    let raw = column(batch, "raw", &DataType::Binary)?;
    let key = column(batch, "key", &DataType::Binary)?;
    let topic = column(batch, "source_topic", &DataType::Utf8)?;
    let partition = column(batch, "source_partition", &DataType::Int32)?;
    let offset = column(batch, "source_offset", &DataType::Int64)?;
    let stage = column(batch, "stage", &DataType::Utf8)?;
    let reason = column(batch, "reason", &DataType::Utf8)?;
    let rejected_at = column(batch, "rejected_at", &DataType::Int64)?;
    let (raw, key) = (raw.as_binary::<i32>(), key.as_binary::<i32>());
    let (topic, stage, reason) = (
        topic.as_string::<i32>(),
        stage.as_string::<i32>(),
        reason.as_string::<i32>(),
    );
    let partition = partition.as_primitive::<Int32Type>();
    let offset = offset.as_primitive::<Int64Type>();
    let rejected_at = rejected_at.as_primitive::<Int64Type>();
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
        out.push(DeadLetter {
            raw: raw.value(i).to_vec(),
            key: (!key.is_null(i)).then(|| key.value(i).to_vec()),
            topic: topic.value(i).into(),
            partition: partition.value(i),
            offset: offset.value(i),
            stage,
            reason: reason.value(i).to_owned(),
            rejected_at_ms: rejected_at.value(i),
        });
    }
    Ok(())
}
