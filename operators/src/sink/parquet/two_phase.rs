//! The Parquet sink's commit, in the phases that make it exactly once:
//! files are finished under temporary names, each Kafka partition's entry
//! is created in the commit log (the commit point: an entry that loses to
//! another writer's fences this one off), and only then are the files
//! renamed to their final, readable names. A crash between the phases is
//! finished or undone by `CommitLog::recover` on the next start.

use std::path::PathBuf;

use super::commit_log::{CommitEntry, CommitLog, CommittedFile};
use super::open_set::OpenSet;
use super::store::{Store, split};
use crate::sink::{Committed, add_stages};
use crate::{OperatorError, Result};

type Staged = Vec<(OpenSet, CommitEntry)>;

/// Finishes every file of `sets` and writes the entry each set will be
/// committed as, in (topic, partition) order.
pub(super) fn stage(mut sets: Vec<OpenSet>, writer: &str, now_ms: i64) -> Result<Staged> {
    sets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut staged = Vec::with_capacity(sets.len());
    for mut s in sets {
        let mut files = Vec::new();
        for f in s.scores.values_mut().chain(s.dead.as_mut()) {
            f.finish()?;
            files.push(CommittedFile {
                path: f.rel.clone(),
                rows: f.rows,
                bytes: f.bytes,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let entry = CommitEntry {
            topic: s.topic.to_string(),
            partition: s.partition,
            start: s.range.start,
            end: s.range.end,
            writer: writer.to_owned(),
            committed_at_ms: now_ms,
            files,
        };
        staged.push((s, entry));
    }
    Ok(staged)
}

/// Creates each entry in the commit log; the sets whose entry another
/// writer created first are discarded, and the first such loss is
/// returned as [`OperatorError::Fenced`] beside the sets that won.
pub(super) fn claim(log: &CommitLog, staged: Staged) -> Result<(Staged, Option<OperatorError>)> {
    let mut fenced = None;
    let mut won = Vec::with_capacity(staged.len());
    for (s, entry) in staged {
        match log.try_create(&entry)? {
            None => won.push((s, entry)),
            Some(other) => lose(s, &entry, other, &mut fenced)?,
        }
    }
    log.sync()?;
    let won = drop_superseded(log, won, &mut fenced)?;
    Ok((won, fenced))
}

/// Entries that a checkpoint has already committed out of existence were
/// created by a stalled writer after their namesakes were compacted away:
/// they are removed with their files, and the writer is fenced (see
/// [`super::checkpoint`]).
fn drop_superseded(
    log: &CommitLog,
    won: Staged,
    fenced: &mut Option<OperatorError>,
) -> Result<Staged> {
    if won.is_empty() {
        return Ok(won);
    }
    let Some(ck) = log.checkpoint()? else {
        return Ok(won);
    };
    let mut kept = Vec::with_capacity(won.len());
    let mut removed = false;
    for (s, entry) in won {
        let Some(end) = ck.supersedes(&entry.topic, entry.partition, entry.start) else {
            kept.push((s, entry));
            continue;
        };
        log.remove_entry(&entry)?;
        removed = true;
        let other = format!(
            "checkpoint {} of the commit log holds offsets up to {end}",
            ck.seq
        );
        lose(s, &entry, other, fenced)?;
    }
    if removed {
        log.sync()?;
    }
    Ok(kept)
}

/// Discards a set that lost its claim to `other` and records the first
/// such loss as the writer being fenced.
fn lose(
    s: OpenSet,
    entry: &CommitEntry,
    other: String,
    fenced: &mut Option<OperatorError>,
) -> Result<()> {
    for f in s.scores.into_values().chain(s.dead) {
        f.discard()?;
    }
    fenced.get_or_insert(OperatorError::Fenced {
        topic: entry.topic.clone(),
        partition: entry.partition,
        offset: entry.start,
        other,
    });
    Ok(())
}

/// Renames the committed sets' files to their final names, syncs their
/// directories, and adds what they hold to `c`.
pub(super) fn publish(
    store: &Store,
    won: &Staged,
    now_ms: i64,
    bucket_ms: i64,
    c: &mut Committed,
) -> Result<()> {
    let mut dirs: Vec<&str> = Vec::new();
    for (s, entry) in won {
        for f in s.files() {
            store.publish(&f.tmp_rel, &f.rel)?;
            let d = split(&f.rel).0;
            if !dirs.contains(&d) {
                dirs.push(d);
            }
            c.files.push(PathBuf::from(store.describe(&f.rel)));
        }
        c.rows += s.rows;
        c.dead_letters += s.dead_letters;
        add_stages(&mut c.dead_letter_stages, &s.dead_letter_stages);
        c.bytes += entry.files.iter().map(|f| f.bytes).sum::<u64>();
        c.coverage
            .extend(&s.topic, s.partition, entry.start..entry.end)?;
        for (bucket, n) in &s.ingest {
            let age = now_ms.saturating_sub(bucket * bucket_ms).max(0) as u64;
            c.latencies_ms.push((age, *n));
        }
    }
    for d in dirs {
        store.sync_dir(d)?;
    }
    Ok(())
}
