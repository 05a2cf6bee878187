//! `scorestream replay`: re-submits a job's committed dead letters to Kafka
//! once whatever rejected them is fixed (a schema change, a feature-store
//! backfill), so the job scores them like any other event. Each goes out as
//! the producer sent it: value, key, headers (then `scorestream.replay.*`
//! ones) and, when the broker had one, its original timestamp.
//!
//! It streams: dead letters are read a few hundred at a time, produced in
//! small batches each awaited before the next, and forgotten, so memory
//! does not grow with their size; what it keeps per letter is the
//! ~24-byte identity that de-duplicates them.
//!
//! Each run records what it re-submitted in replay logs under
//! `<sink.path>/_scorestream/replays/` (one per 10,000 delivered, and one
//! at the end or at a failure, listing what was delivered before it), and
//! later runs skip what any log lists, so running it twice does not score
//! an event twice. Letters of a batch whose delivery failed are not logged
//! and are re-sent by the next run (at-least-once, like the dead-letter
//! topic). The `scorestream.replay.of` header lets consumers deduplicate
//! such re-sends.

mod log;
mod read;
mod send;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use scorestream_operators::sink::dead_letter_topic::check_topic_name;
use scorestream_operators::sink::parquet::DEAD_LETTERS_DIR;
use scorestream_operators::source::kafka::KafkaSourceConfig;
use scorestream_schemas::{DeadLetter, DeadLetterStage, ReasonCode};
use serde::{Deserialize, Serialize};

pub use log::{REPLAYS_DIR, ReplayLog};

use crate::ToolError;
use log::ProvenanceSet;
use read::Letters;
use send::Sender;

/// Header on a re-submitted event: `topic/partition/offset` of the message
/// whose dead letter it re-submits.
pub const REPLAY_OF_HEADER: &str = "scorestream.replay.of";
/// Header on a re-submitted event: why it was dead-lettered.
pub const REPLAY_REASON_HEADER: &str = "scorestream.replay.reason";

/// A stage by the name dead letters carry (`parse`, `schema`, `oversized`,
/// `features`).
pub fn parse_stage(s: &str) -> Result<DeadLetterStage, String> {
    DeadLetterStage::ALL
        .into_iter()
        .find(|st| st.as_str() == s)
        .ok_or_else(|| {
            let names: Vec<_> = DeadLetterStage::ALL.iter().map(|st| st.as_str()).collect();
            format!("unknown stage `{s}`; expected one of {}", names.join(", "))
        })
}

/// An RFC 3339 time (`--since`, `--until`) as milliseconds since the epoch.
pub fn rfc3339_ms(s: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("`{s}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z: {e}"))
}

/// What to replay and where to.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Only dead letters rejected at this stage.
    pub stage: Option<DeadLetterStage>,
    /// Only dead letters with this reason code.
    pub reason: Option<ReasonCode>,
    /// Only dead letters rejected at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only dead letters rejected before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only dead letters for which this SQL expression over the
    /// `dead_letters` columns is true, e.g. `source_offset > 1000`.
    pub predicate: Option<String>,
    /// Send everything to this topic instead of each one's source topic.
    pub to: Option<String>,
    /// Select and report, but send nothing and write no log.
    pub dry_run: bool,
    /// Also re-send dead letters an earlier replay already re-submitted.
    pub again: bool,
    /// At most this many messages per second (a positive number).
    pub rate: Option<f64>,
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
    /// `None` for dead letters written before reason codes existed.
    pub code: Option<ReasonCode>,
    /// The topic it is (or in a dry run, would be) produced to.
    pub to: String,
    /// Size of its raw bytes.
    pub bytes: usize,
    pub reason: String,
}

#[derive(Debug, Default, Clone)]
pub struct ReplayReport {
    /// Distinct dead letters that matched the filters (an event dead-lettered
    /// twice, by a run that crashed before committing its offsets, counts once).
    pub found: usize,
    /// Of those, skipped because a replay log lists them.
    pub already_replayed: usize,
    /// Selected for re-submission (in a dry run, what would be sent).
    pub selected: usize,
    /// Delivered to Kafka; 0 in a dry run.
    pub resubmitted: usize,
    pub per_stage: BTreeMap<&'static str, StageCounts>,
    /// The replay logs written, when something was sent.
    pub logs: Vec<PathBuf>,
}

/// What a replay tells its caller as it goes.
pub enum Progress<'a> {
    /// A dead letter was selected (sent soon, or in a dry run, not).
    Selected(&'a Resubmission),
    /// A batch is done: the counts so far.
    Batch(&'a ReplayReport),
}

/// Re-submits the committed dead letters under `output` (a job's
/// `sink.path`) that match `options`, on the source's brokers with its client
/// settings, recording them in replay logs; `progress` hears of each one
/// selected and of each batch done.
pub async fn replay(
    source: &KafkaSourceConfig,
    output: &Path,
    options: &ReplayOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<ReplayReport, ToolError> {
    check_options(options)?;
    if !output.is_dir() {
        return Err(ToolError::NoOutput(output.display().to_string()));
    }
    let mut letters = Letters::open(&output.join(DEAD_LETTERS_DIR), options).await?;
    let replays_dir = output.join(REPLAYS_DIR);
    let done = match options.again {
        true => ProvenanceSet::default(),
        false => log::replayed(&replays_dir)?,
    };
    let mut report = ReplayReport::default();
    let mut seen = ProvenanceSet::default();
    let mut sender: Option<Sender> = None;
    while let Some(batch) = letters.next().await? {
        let mut chosen = Vec::new();
        for stored in batch {
            let d = stored.letter;
            if !seen.insert(&d.topic, d.partition, d.offset) {
                continue;
            }
            let counts = report.per_stage.entry(d.stage.as_str()).or_default();
            counts.found += 1;
            report.found += 1;
            if done.contains(&d.topic, d.partition, d.offset) {
                counts.already_replayed += 1;
                report.already_replayed += 1;
                continue;
            }
            let r = Resubmission {
                of: Provenance::of(&d),
                to: options.to.clone().unwrap_or_else(|| d.topic.to_string()),
                stage: d.stage,
                code: stored.code,
                bytes: d.raw.len(),
                reason: d.reason.clone(),
            };
            report.selected += 1;
            progress(Progress::Selected(&r));
            chosen.push((d, r));
        }
        if !options.dry_run && !chosen.is_empty() {
            let s = match &mut sender {
                Some(s) => s,
                None => sender.insert(Sender::connect(source, &replays_dir, options).await?),
            };
            s.send(&chosen).await?;
            for (d, _) in &chosen {
                report
                    .per_stage
                    .entry(d.stage.as_str())
                    .or_default()
                    .resubmitted += 1;
            }
            report.resubmitted = s.delivered;
        }
        progress(Progress::Batch(&report));
    }
    if let Some(mut s) = sender {
        s.finish()?;
        report.logs = s.logs;
    }
    Ok(report)
}

/// Checks the options a user typed, each error naming its flag.
fn check_options(options: &ReplayOptions) -> Result<(), ToolError> {
    let bad = |option, reason: String| Err(ToolError::BadOption { option, reason });
    if let Some(to) = &options.to {
        check_topic_name(to).or_else(|reason| bad("--to", reason))?;
    }
    if let Some(rate) = options.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return bad(
            "--rate",
            format!("must be a positive number of messages per second, not {rate}"),
        );
    }
    if let (Some(since), Some(until)) = (options.since_ms, options.until_ms)
        && since >= until
    {
        return bad(
            "--since",
            "must be before --until (--since is inclusive, --until exclusive)".into(),
        );
    }
    Ok(())
}
