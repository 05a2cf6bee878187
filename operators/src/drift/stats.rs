//! Two-sample drift statistics, with scipy's definitions.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Bin shares below this count as this, so an empty bin on one side gives a
/// large but finite PSI (the usual convention; scipy has no PSI).
pub(super) const PSI_FLOOR: f64 = 1e-4;

/// The statistics a window gets against its reference column; those that do
/// not apply to the column's kind, or need values the window lacks, are
/// `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftStats {
    pub psi: Option<f64>,
    pub js_distance: Option<f64>,
    pub ks: Option<f64>,
    pub wasserstein: Option<f64>,
    pub chi_square: Option<f64>,
    pub chi_square_p: Option<f64>,
    pub missing_rate_change: Option<f64>,
}

/// A statistic's name, as thresholds and the drift table spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    Psi,
    JsDistance,
    Ks,
    Wasserstein,
    ChiSquare,
    ChiSquareP,
    MissingRateChange,
}

impl Statistic {
    pub const ALL: [Statistic; 7] = [
        Self::Psi,
        Self::JsDistance,
        Self::Ks,
        Self::Wasserstein,
        Self::ChiSquare,
        Self::ChiSquareP,
        Self::MissingRateChange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Psi => "psi",
            Self::JsDistance => "js_distance",
            Self::Ks => "ks",
            Self::Wasserstein => "wasserstein",
            Self::ChiSquare => "chi_square",
            Self::ChiSquareP => "chi_square_p",
            Self::MissingRateChange => "missing_rate_change",
        }
    }
}

impl DriftStats {
    pub fn get_mut(&mut self, s: Statistic) -> &mut Option<f64> {
        match s {
            Statistic::Psi => &mut self.psi,
            Statistic::JsDistance => &mut self.js_distance,
            Statistic::Ks => &mut self.ks,
            Statistic::Wasserstein => &mut self.wasserstein,
            Statistic::ChiSquare => &mut self.chi_square,
            Statistic::ChiSquareP => &mut self.chi_square_p,
            Statistic::MissingRateChange => &mut self.missing_rate_change,
        }
    }

    pub fn get(&self, s: Statistic) -> Option<f64> {
        let mut copy = *self;
        *copy.get_mut(s)
    }
}

/// The bin of `v` given sorted interior `edges`: bin `i` holds
/// `edges[i-1] < v <= edges[i]` (numpy's `searchsorted(edges, v, "left")`).
pub(super) fn bin_index(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|e| *e < v)
}

fn shares(counts: &[u64]) -> impl Iterator<Item = f64> + '_ {
    let n = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(move |&c| c as f64 / n)
}

/// Population stability index: `sum((c - r) * ln(c / r))` over bins, with
/// both shares floored at [`PSI_FLOOR`].
pub fn psi(reference: &[u64], window: &[u64]) -> f64 {
    shares(reference)
        .zip(shares(window))
        .map(|(r, c)| {
            let (r, c) = (r.max(PSI_FLOOR), c.max(PSI_FLOOR));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// Jensen-Shannon distance (the square root of the divergence, natural
/// log), as `scipy.spatial.distance.jensenshannon` on the two count vectors.
pub fn js_distance(a: &[u64], b: &[u64]) -> f64 {
    let rel_entr = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let divergence: f64 = shares(a)
        .zip(shares(b))
        .map(|(p, q)| {
            let m = (p + q) / 2.0;
            rel_entr(p, m) + rel_entr(q, m)
        })
        .sum::<f64>()
        / 2.0;
    divergence.max(0.0).sqrt()
}

/// The two-sample Kolmogorov-Smirnov statistic of two sorted samples: the
/// largest gap between their empirical CDFs (`scipy.stats.ks_2samp`).
pub(super) fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    cdf_gaps(a, b).map(|(gap, _)| gap).fold(0.0, f64::max)
}

/// The first Wasserstein distance of two sorted samples: the area between
/// their empirical CDFs (`scipy.stats.wasserstein_distance`).
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    cdf_gaps(a, b).map(|(gap, width)| gap * width).sum()
}

/// Walks the merged distinct values of two sorted samples, yielding at each
/// value `|F_a - F_b|` (both CDFs taken right-continuous there) and the
/// distance to the next value (0 after the last).
fn cdf_gaps<'a>(a: &'a [f64], b: &'a [f64]) -> impl Iterator<Item = (f64, f64)> + 'a {
    let (na, nb) = (a.len().max(1) as f64, b.len().max(1) as f64);
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let x = match (a.get(i), b.get(j)) {
            (None, None) => return None,
            (Some(&x), None) | (None, Some(&x)) => x,
            (Some(&x), Some(&y)) => x.min(y),
        };
        while a.get(i).is_some_and(|&v| v <= x) {
            i += 1;
        }
        while b.get(j).is_some_and(|&v| v <= x) {
            j += 1;
        }
        let next = match (a.get(i), b.get(j)) {
            (None, None) => x,
            (Some(&v), None) | (None, Some(&v)) => v,
            (Some(&v), Some(&w)) => v.min(w),
        };
        Some(((i as f64 / na - j as f64 / nb).abs(), next - x))
    })
}

/// Pearson's chi-square of `observed` counts against the reference's
/// shares, smoothed by half a count per category so a category the
/// reference never saw has a finite expectation. Returns the statistic and
/// its p-value (`scipy.stats.chisquare`, `k - 1` degrees of freedom).
pub fn chi_square(observed: &[u64], reference: &[u64]) -> (f64, f64) {
    let k = observed.len() as f64;
    let n = observed.iter().sum::<u64>() as f64;
    let ref_total = reference.iter().sum::<u64>() as f64 + 0.5 * k;
    let statistic: f64 = observed
        .iter()
        .zip(reference)
        .map(|(&o, &r)| {
            let expected = n * (r as f64 + 0.5) / ref_total;
            (o as f64 - expected).powi(2) / expected
        })
        .sum();
    let p = ChiSquared::new(k - 1.0).map_or(f64::NAN, |d| d.sf(statistic));
    (statistic, p)
}
