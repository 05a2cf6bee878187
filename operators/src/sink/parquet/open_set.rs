//! The files one Kafka partition has open: committed together, with the
//! offsets they cover, as one commit-log entry.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use scorestream_schemas::DeadLetterCounts;

use super::RollConfig;
use super::open_file::OpenFile;
use crate::TopicPartition;

/// What one Kafka partition has written since its last commit: one open file
/// per partition directory it has rows for, and one for its dead letters.
/// They are committed together with the offsets they cover, as one entry.
pub(super) struct OpenSet {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) range: Range<i64>,
    pub(super) opened: Instant,
    pub(super) last_write: Instant,
    pub(super) scores: HashMap<String, OpenFile>,
    pub(super) dead: Option<OpenFile>,
    pub(super) rows: usize,
    pub(super) dead_letters: usize,
    pub(super) dead_letter_stages: DeadLetterCounts,
    /// Kafka timestamps of the rows, in `LATENCY_BUCKET_MS` buckets (sink.rs).
    pub(super) ingest: BTreeMap<i64, u64>,
}

impl OpenSet {
    /// An empty set for a partition whose next offset is `start`.
    pub(super) fn new(tp: &TopicPartition, start: i64, now: Instant) -> Self {
        Self {
            topic: tp.0.clone(),
            partition: tp.1,
            range: start..start,
            opened: now,
            last_write: now,
            scores: HashMap::new(),
            dead: None,
            rows: 0,
            dead_letters: 0,
            dead_letter_stages: DeadLetterCounts::default(),
            ingest: BTreeMap::new(),
        }
    }

    pub(super) fn files(&self) -> impl Iterator<Item = &OpenFile> {
        self.scores.values().chain(self.dead.as_ref())
    }

    pub(super) fn open_files(&self) -> usize {
        self.scores.len() + usize::from(self.dead.is_some())
    }

    /// When time alone closes this set: the roll interval after it opened,
    /// or the inactivity timeout after any of its files last took rows.
    pub(super) fn deadline(&self, roll: &RollConfig) -> Instant {
        let idle = self
            .files()
            .map(|f| f.last_write)
            .min()
            .unwrap_or(self.last_write);
        (self.opened + roll.interval.0).min(idle + roll.inactivity.0)
    }

    pub(super) fn full(&self, roll: &RollConfig) -> bool {
        self.files()
            .any(|f| f.rows >= roll.max_rows || f.size() >= roll.max_bytes.0)
    }
}
