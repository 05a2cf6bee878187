use std::fmt::Write as _;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ToolError;

pub(super) const COUNTRIES: [&str; 10] =
    ["US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "JP"];
const COUNTRY_WEIGHTS: [f64; 10] = [0.30, 0.12, 0.12, 0.10, 0.07, 0.07, 0.05, 0.07, 0.06, 0.04];

/// One account and its 16 online features.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub home_country: &'static str,
    pub account_age_days: f64,
    pub avg_amount_30d: f64,
    pub std_amount_30d: f64,
    pub txn_count_1d: i64,
    pub txn_count_7d: i64,
    pub txn_count_30d: i64,
    pub chargeback_rate_90d: f64,
    pub distinct_merchants_30d: i64,
    pub distinct_countries_30d: i64,
    pub days_since_last_txn: f64,
    pub credit_limit: f64,
    pub utilization: f64,
    pub failed_logins_7d: i64,
    pub is_verified: i64,
    pub risk_segment: i64,
}

/// The accounts of the synthetic world, the same for the same seed.
#[derive(Debug, Clone)]
pub struct World {
    pub accounts: Vec<Account>,
}

pub(crate) fn normal(rng: &mut impl Rng) -> f64 {
    // Box-Muller; 1 - u keeps the log argument in (0, 1].
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// An index drawn with the given relative weights.
pub(crate) fn pick_index(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let mut x = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

pub(crate) fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T], weights: &[f64]) -> &'a T {
    &items[pick_index(rng, weights)]
}

fn poisson(rng: &mut impl Rng, mean: f64) -> i64 {
    // Knuth's method; fine for the small means used here.
    let l = (-mean).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl World {
    pub fn new(accounts: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let accounts = (0..accounts)
            .map(|i| {
                let r = &mut rng;
                let age = (r.random::<f64>().powi(2) * 3650.0).max(1.0).round();
                let avg = round2((3.6 + 0.8 * normal(r)).exp());
                let c30 = poisson(r, 25.0);
                let c7 = poisson(r, c30 as f64 / 4.3);
                let limit = *pick(
                    r,
                    &[500.0, 1000.0, 2500.0, 5000.0, 10000.0],
                    &[0.15, 0.3, 0.3, 0.17, 0.08],
                );
                Account {
                    id: format!("acc-{i:06}"),
                    home_country: COUNTRIES[pick_index(r, &COUNTRY_WEIGHTS)],
                    account_age_days: age,
                    avg_amount_30d: avg,
                    std_amount_30d: round2(avg * (0.3 + 0.5 * r.random::<f64>())),
                    txn_count_1d: poisson(r, c7 as f64 / 7.0),
                    txn_count_7d: c7,
                    txn_count_30d: c30,
                    chargeback_rate_90d: round2(
                        if r.random::<f64>() < 0.1 {
                            r.random::<f64>() * 0.12
                        } else {
                            0.0
                        } * 100.0,
                    ) / 100.0,
                    distinct_merchants_30d: poisson(r, 8.0).min(c30),
                    distinct_countries_30d: 1 + poisson(r, 0.4),
                    days_since_last_txn: round2(r.random::<f64>().powi(3) * 30.0),
                    credit_limit: limit,
                    utilization: round2(r.random::<f64>().powf(1.5)),
                    failed_logins_7d: poisson(r, 0.3),
                    is_verified: i64::from(r.random::<f64>() < 0.8),
                    risk_segment: *pick(r, &[0, 1, 2, 3], &[0.5, 0.3, 0.15, 0.05]),
                }
            })
            .collect();
        Self { accounts }
    }

    /// Writes the feature store file the demo job loads.
    pub fn write_features_csv(&self, path: &Path) -> Result<(), ToolError> {
        let mut s = String::from(
            "account_id,home_country,account_age_days,avg_amount_30d,std_amount_30d,txn_count_1d,txn_count_7d,\
             txn_count_30d,chargeback_rate_90d,distinct_merchants_30d,distinct_countries_30d,days_since_last_txn,\
             credit_limit,utilization,failed_logins_7d,is_verified,risk_segment\n",
        );
        for a in &self.accounts {
            // Writing to a String cannot fail.
            let _ = writeln!(
                s,
                "{},{},{:.1},{:.2},{:.2},{},{},{},{:.4},{},{},{:.2},{:.1},{:.2},{},{},{}",
                a.id,
                a.home_country,
                a.account_age_days,
                a.avg_amount_30d,
                a.std_amount_30d,
                a.txn_count_1d,
                a.txn_count_7d,
                a.txn_count_30d,
                a.chargeback_rate_90d,
                a.distinct_merchants_30d,
                a.distinct_countries_30d,
                a.days_since_last_txn,
                a.credit_limit,
                a.utilization,
                a.failed_logins_7d,
                a.is_verified,
                a.risk_segment
            );
        }
        std::fs::write(path, s).map_err(|e| ToolError::io(format!("writing {}", path.display()), e))
    }
}
