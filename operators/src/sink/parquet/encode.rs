//! Encoding a batch's files side by side.
//!
//! Parquet encoding (dictionaries, statistics, zstd) is the costliest stage
//! of a job, and one batch splits into one file per Kafka partition and
//! partition directory. Files are independent, so they are encoded on
//! several threads at once; otherwise the whole pipeline runs at the pace of
//! one core while the others wait on a full queue in front of the sink.
//! Threads are scoped to the call: nothing spins between batches, which
//! matters when the other stages need the cores (see the scorer's
//! single-threaded CPU passes).

use std::cmp::Reverse;
use std::thread;
use std::time::Instant;

use arrow::array::RecordBatch;

use super::open_file::OpenFile;
use crate::{OperatorError, Result};

/// Rows bound for one open file, in arrival order.
pub(super) type FileRows<'a> = (&'a mut OpenFile, Vec<RecordBatch>);

/// Writes every file's rows, spread over at most `threads` threads (the
/// calling one among them), largest files first to balance the shares.
pub(super) fn encode_files(
    mut work: Vec<FileRows<'_>>,
    threads: usize,
    now: Instant,
) -> Result<()> {
    let threads = threads.min(work.len()).max(1);
    if threads == 1 {
        return write_all(work, now);
    }
    work.sort_by_key(|(_, b)| Reverse(rows(b)));
    let mut shares: Vec<Vec<FileRows<'_>>> = (0..threads).map(|_| Vec::new()).collect();
    let mut load = vec![0usize; threads];
    for w in work {
        let i = (0..threads).min_by_key(|&i| load[i]).unwrap_or(0);
        load[i] += rows(&w.1);
        shares[i].push(w);
    }
    let own = shares.pop().unwrap_or_default();
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(shares.len());
        let mut res = Ok(());
        for share in shares {
            match thread::Builder::new()
                .name("parquet-encode".into())
                .spawn_scoped(s, move || write_all(share, now))
            {
                Ok(h) => handles.push(h),
                Err(e) => {
                    res = Err(OperatorError::io("starting a Parquet encoding thread", e));
                    break;
                }
            }
        }
        if res.is_ok() {
            res = write_all(own, now);
        }
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(OperatorError::Internal(
                    "a Parquet encoding thread panicked".into(),
                ))
            });
            res = res.and(r);
        }
        res
    })
}

fn write_all(work: Vec<FileRows<'_>>, now: Instant) -> Result<()> {
    for (file, batches) in work {
        for b in &batches {
            file.write(b, now)?;
        }
    }
    Ok(())
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}
