//! A window of live rows, accumulated per profiled column in bounded memory.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::profile::{ColumnProfile, ReferenceProfile};
use super::stats::{DriftStats, bin_index};
use super::thinned::Thinned;

/// One column's share of a window.
#[derive(Debug)]
enum Acc {
    /// Finite values (NaN and infinities count as missing): counted per
    /// reference bin, every one of them, and sampled for KS and Wasserstein.
    Numeric { counts: Vec<u64>, sample: Thinned },
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

/// The profiled columns of one window: per numeric column one counter per
/// reference bin and at most `cap` values (a uniform sample beyond), per
/// categorical column one counter per category. Memory does not depend on
/// the window's length.
#[derive(Debug)]
pub struct Window {
    columns: Vec<ColumnWindow>,
    rng: ChaCha8Rng,
    /// Scored rows the window holds (those that arrived sampled count for
    /// the rows they stand for).
    pub rows: u64,
    /// Of `rows`, those represented by a sample rather than seen one by one
    /// (the drift queue was full): counts and statistics are then estimates.
    pub sampled: u64,
}

impl Window {
    /// A window over `columns` (each must be in `profile`).
    pub fn new(profile: &ReferenceProfile, columns: &[String], cap: usize, seed: u64) -> Self {
        let columns = columns
            .iter()
            .filter_map(|name| {
                let profile = profile.columns.get(name)?.clone();
                let acc = match &profile {
                    ColumnProfile::Numeric(n) => Acc::Numeric {
                        counts: vec![0; n.edges.len() + 1],
                        sample: Thinned::new(cap),
                    },
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
            sampled: 0,
        }
    }

    /// Adds the batch's rows `[from, to)`, each standing for
    /// `2^weight_log2` scored rows (0 unless the tee sampled them). A column
    /// the batch lacks counts its rows as missing.
    pub fn add(&mut self, batch: &RecordBatch, from: usize, to: usize, weight_log2: u32) {
        let w = 1u64 << weight_log2;
        let n = (to - from) as u64 * w;
        self.rows += n;
        if weight_log2 > 0 {
            self.sampled += n;
        }
        for c in &mut self.columns {
            c.total += n;
            let Some(array) = batch.column_by_name(&c.name) else {
                c.missing += n;
                continue;
            };
            let array = array.slice(from, to - from);
            match &mut c.acc {
                Acc::Numeric { counts, sample } => {
                    let (Ok(as_f64), ColumnProfile::Numeric(p)) =
                        (cast(&array, &DataType::Float64), &c.profile)
                    else {
                        c.missing += n;
                        continue;
                    };
                    let as_f64 = as_f64.as_primitive::<Float64Type>();
                    for v in as_f64.iter() {
                        match v {
                            Some(v) if v.is_finite() => {
                                counts[bin_index(&p.edges, v)] += w;
                                sample.offer(v, weight_log2, &mut self.rng);
                            }
                            _ => c.missing += w,
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
                            Some(v) => counts[p.slot(v)] += w,
                            None => c.missing += w,
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
                    (ColumnProfile::Numeric(p), Acc::Numeric { counts, sample }) => {
                        let mut values = sample.into_values();
                        (p.compare(&counts, &mut values, c.missing, c.total), counts)
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
    /// The window's counts per reference bin or category slot, over every
    /// row of the window (not the sample).
    pub counts: Vec<u64>,
    pub rows: u64,
}
