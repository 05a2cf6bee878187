//! The receipt a sink hands back for each call: what became durable, so
//! the pipeline can count it and the source can commit its offsets.

use std::path::PathBuf;

use scorestream_schemas::DeadLetterCounts;

use crate::{Coverage, Result};

/// What became durable (and readable) in one call.
#[derive(Debug, Default)]
pub struct Committed {
    pub rows: usize,
    pub dead_letters: usize,
    /// `dead_letters` by the stage that rejected them and reason code.
    pub dead_letter_stages: DeadLetterCounts,
    /// Where each committed file now is: a path, or an object's URL.
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// The offsets now committed to the output: safe to commit to Kafka.
    pub coverage: Coverage,
    /// Time from each committed row's Kafka timestamp to its commit (its
    /// freshness), as (milliseconds, rows).
    pub latencies_ms: Vec<(u64, u64)>,
}

impl Committed {
    /// Kafka messages accounted for (rows plus dead letters).
    pub fn messages(&self) -> u64 {
        (self.rows + self.dead_letters) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.coverage.is_empty()
    }

    pub(crate) fn absorb(&mut self, other: Committed) -> Result<()> {
        self.rows += other.rows;
        self.dead_letters += other.dead_letters;
        add_stages(&mut self.dead_letter_stages, &other.dead_letter_stages);
        self.files.extend(other.files);
        self.bytes += other.bytes;
        self.coverage.merge(other.coverage)?;
        self.latencies_ms.extend(other.latencies_ms);
        Ok(())
    }
}

pub(crate) fn add_stages(to: &mut DeadLetterCounts, from: &DeadLetterCounts) {
    to.absorb(from);
}
