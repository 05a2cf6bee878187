//! A window of live rows, accumulated per profiled column in bounded memory.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::profile::{ColumnProfile, ReferenceProfile};
use super::reservoir::Reservoir;
use super::stats::DriftStats;

/// One column's share of a window.
#[derive(Debug)]
enum Acc {
    /// Finite values (NaN and infinities count as missing); beyond `cap` a
    /// uniform reservoir of them.
    Numeric(Reservoir),
    /// Counts per category slot (the profile's categories, then `other`).
    Categorical { counts: Vec<u64> },
}

#[derive(Debug)]
struct ColumnWindow {
    name: String,
    profile: ColumnProfile,
    acc: Acc,
    missing: u64,
    total: u64,
}

/// The profiled columns of one window: per numeric column at most `cap`
/// values (a uniform sample beyond), per categorical column one counter
/// per category. Memory does not depend on the window's length.
#[derive(Debug)]
pub struct Window {
    columns: Vec<ColumnWindow>,
    rng: ChaCha8Rng,
    /// Rows added.
    pub rows: u64,
    /// Rows of batches that were skipped while this window was open.
    pub skipped: u64,
}

impl Window {
    /// A window over `columns` (each must be in `profile`).
    pub fn new(profile: &ReferenceProfile, columns: &[String], cap: usize, seed: u64) -> Self {
        let columns = columns
            .iter()
            .filter_map(|name| {
                let profile = profile.columns.get(name)?.clone();
                let acc = match &profile {
                    ColumnProfile::Numeric(_) => Acc::Numeric(Reservoir::new(cap.max(1))),
                    ColumnProfile::Categorical(c) => Acc::Categorical {
                        counts: vec![0; c.categories.len() + 1],
                    },
                };
                Some(ColumnWindow {
                    name: name.clone(),
                    profile,
                    acc,
                    missing: 0,
                    total: 0,
                })
            })
            .collect();
        Self {
            columns,
            rng: ChaCha8Rng::seed_from_u64(seed),
            rows: 0,
            skipped: 0,
        }
    }

    /// Adds the batch's rows `[from, to)`. A column the batch lacks counts
    /// its rows as missing.
    pub fn add(&mut self, batch: &RecordBatch, from: usize, to: usize) {
        let n = (to - from) as u64;
        self.rows += n;
        for c in &mut self.columns {
            c.total += n;
            let Some(array) = batch.column_by_name(&c.name) else {
                c.missing += n;
                continue;
            };
            let array = array.slice(from, to - from);
            match &mut c.acc {
                Acc::Numeric(sample) => {
                    let Ok(as_f64) = cast(&array, &DataType::Float64) else {
                        c.missing += n;
                        continue;
                    };
                    let as_f64 = as_f64.as_primitive::<Float64Type>();
                    for v in as_f64.iter() {
                        match v {
                            Some(v) if v.is_finite() => sample.offer(v, &mut self.rng),
                            _ => c.missing += 1,
                        }
                    }
                }
                Acc::Categorical { counts } => {
                    let ColumnProfile::Categorical(p) = &c.profile else {
                        continue;
                    };
                    let Ok(strings) = cast(&array, &DataType::Utf8) else {
                        c.missing += n;
                        continue;
                    };
                    for v in strings.as_string::<i32>().iter() {
                        match v {
                            Some(v) => counts[p.slot(v)] += 1,
                            None => c.missing += 1,
                        }
                    }
                }
            }
        }
    }

    /// Each column's statistics against the reference, and the window's
    /// counts per bin or category (for the report's histograms).
    pub fn close(self) -> Vec<ColumnStats> {
        self.columns
            .into_iter()
            .map(|c| {
                let (stats, counts) = match (c.profile, c.acc) {
                    (ColumnProfile::Numeric(p), Acc::Numeric(sample)) => {
                        let mut values = sample.into_values();
                        let counts = p.bin_counts(&values);
                        (p.compare(&mut values, c.missing, c.total), counts)
                    }
                    (ColumnProfile::Categorical(p), Acc::Categorical { counts }) => {
                        (p.compare(&counts, c.missing, c.total), counts)
                    }
                    _ => (DriftStats::default(), Vec::new()),
                };
                ColumnStats {
                    column: c.name,
                    stats,
                    counts,
                    rows: c.total,
                }
            })
            .collect()
    }
}

/// A column's statistics for one window.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    pub column: String,
    pub stats: DriftStats,
    /// The window's counts per reference bin or category slot.
    pub counts: Vec<u64>,
    pub rows: u64,
}
