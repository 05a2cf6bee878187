//! Reference profiles: what a model's inputs and score looked like in the
//! data it was trained or validated on.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use super::stats::{self, DriftStats};
use crate::OperatorError;

/// Per-column reference distributions, saved as JSON next to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceProfile {
    /// Where the reference rows came from (a file, a query).
    pub source: String,
    pub rows: u64,
    pub columns: BTreeMap<String, ColumnProfile>,
}

impl ReferenceProfile {
    /// Reads a profile written by `scorestream profile`, checking that each
    /// column is usable, so a bad profile fails the job at start rather than
    /// the first window.
    pub fn load(path: &Path) -> Result<Self, OperatorError> {
        let bad = |reason: String| OperatorError::Profile {
            input: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| OperatorError::io(format!("reading {}", path.display()), e))?;
        let profile: ReferenceProfile = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a reference profile: {e}")))?;
        let problems: Vec<String> = profile
            .columns
            .iter()
            .flat_map(|(name, c)| {
                let p = match c {
                    ColumnProfile::Numeric(n) => n.problems(),
                    ColumnProfile::Categorical(c) => c.problems(),
                };
                p.into_iter().map(move |p| format!("column `{name}`: {p}"))
            })
            .collect();
        if problems.is_empty() {
            Ok(profile)
        } else {
            Err(bad(problems.join("; ")))
        }
    }
}

/// How drift measures a column: numbers (and booleans) in bins, strings by
/// category. Not a column type: a reference file may hold any Arrow type
/// (uint8, large strings), and the job's declared types map onto these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    Numeric,
    Categorical,
}

impl ProfileKind {
    /// How a column of type `t` is profiled, if it can be.
    pub fn of(t: &DataType) -> Option<Self> {
        if t.is_numeric() || t == &DataType::Boolean {
            Some(Self::Numeric)
        } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            Some(Self::Categorical)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ColumnProfile {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

/// A numeric column: quantile bins for PSI and Jensen-Shannon, a sorted
/// sample for Kolmogorov-Smirnov and Wasserstein.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericProfile {
    /// Sorted, distinct interior edges: bin `i` holds
    /// `edges[i-1] < v <= edges[i]`, so there are `edges.len() + 1` bins.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
    /// Sorted non-null values, a uniform sample of the reference.
    pub sample: Vec<f64>,
    pub missing: u64,
    pub total: u64,
}

/// A categorical column: its most frequent categories, the rest as `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalProfile {
    pub categories: Vec<String>,
    pub counts: Vec<u64>,
    pub other: u64,
    pub missing: u64,
    pub total: u64,
}

fn missing_rate_change(
    window_missing: u64,
    window_total: u64,
    ref_missing: u64,
    ref_total: u64,
) -> Option<f64> {
    (window_total > 0).then(|| {
        window_missing as f64 / window_total as f64 - ref_missing as f64 / ref_total.max(1) as f64
    })
}

impl NumericProfile {
    /// Problems that make the profile unusable, each naming what is wrong.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.counts.len() != self.edges.len() + 1 {
            p.push(format!(
                "{} edges need {} counts, found {}",
                self.edges.len(),
                self.edges.len() + 1,
                self.counts.len()
            ));
        }
        if !self.edges.windows(2).all(|w| w[0] < w[1]) || self.edges.iter().any(|e| !e.is_finite())
        {
            p.push("edges must be finite and strictly increasing".into());
        }
        if !self.sample.windows(2).all(|w| w[0] <= w[1]) {
            p.push("sample must be sorted".into());
        }
        p
    }

    /// Statistics of a window: `counts` its finite values per bin (every
    /// one of them: PSI and Jensen-Shannon), `sample` its finite values or
    /// a uniform sample of them (sorted here: KS and Wasserstein), `missing`
    /// and `total` its row counts.
    pub fn compare(
        &self,
        counts: &[u64],
        sample: &mut [f64],
        missing: u64,
        total: u64,
    ) -> DriftStats {
        let mut out = DriftStats {
            missing_rate_change: missing_rate_change(missing, total, self.missing, self.total),
            ..DriftStats::default()
        };
        if counts.iter().sum::<u64>() > 0 {
            out.psi = Some(stats::psi(&self.counts, counts));
            out.js_distance = Some(stats::js_distance(&self.counts, counts));
        }
        if !sample.is_empty() {
            sample.sort_unstable_by(f64::total_cmp);
            out.ks = Some(stats::ks_statistic(&self.sample, sample));
            out.wasserstein = Some(stats::wasserstein(&self.sample, sample));
        }
        out
    }

    /// Counts of `values` per bin of this profile.
    pub fn bin_counts(&self, values: &[f64]) -> Vec<u64> {
        let mut counts = vec![0u64; self.edges.len() + 1];
        for &v in values {
            counts[stats::bin_index(&self.edges, v)] += 1;
        }
        counts
    }
}

impl CategoricalProfile {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.counts.len() != self.categories.len() {
            p.push(format!(
                "{} categories but {} counts",
                self.categories.len(),
                self.counts.len()
            ));
        }
        p
    }

    /// The index of `value` in `categories`, or `categories.len()` for
    /// `other`.
    pub fn slot(&self, value: &str) -> usize {
        self.categories
            .iter()
            .position(|c| c == value)
            .unwrap_or(self.categories.len())
    }

    /// Statistics of a window given its counts per slot (categories, then
    /// other) and its row counts.
    pub fn compare(&self, counts: &[u64], missing: u64, total: u64) -> DriftStats {
        let mut out = DriftStats {
            missing_rate_change: missing_rate_change(missing, total, self.missing, self.total),
            ..DriftStats::default()
        };
        if counts.iter().sum::<u64>() == 0 {
            return out;
        }
        let reference: Vec<u64> = self.counts.iter().copied().chain([self.other]).collect();
        out.psi = Some(stats::psi(&reference, counts));
        out.js_distance = Some(stats::js_distance(&reference, counts));
        let (chi, p) = stats::chi_square(counts, &reference);
        out.chi_square = Some(chi);
        out.chi_square_p = Some(p);
        out
    }
}
