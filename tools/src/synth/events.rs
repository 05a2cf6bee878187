use std::fmt::Write as _;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::World;
use super::world::{COUNTRIES, normal, pick_index};

const MCC: [&str; 8] = [
    "grocery",
    "restaurants",
    "travel",
    "electronics",
    "fuel",
    "entertainment",
    "gift_cards",
    "crypto",
];
const MCC_WEIGHTS: [f64; 8] = [0.30, 0.20, 0.06, 0.08, 0.15, 0.13, 0.05, 0.03];
const MCC_RISK: [f64; 8] = [-0.5, -0.3, 0.5, 1.0, 0.0, 0.2, 1.8, 2.0];
const CHANNELS: [&str; 3] = ["pos", "web", "mobile"];
const CHANNEL_WEIGHTS: [f64; 3] = [0.5, 0.3, 0.2];
const CHANNEL_RISK: [f64; 3] = [-0.4, 0.7, 0.1];

/// What an upstream service might send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A well-formed event for a known account; `fraud` is the hidden label.
    Good { fraud: bool },
    /// Well-formed, but for an account the feature store has never seen.
    UnknownAccount,
    /// Broken in one of the ways real producers break events.
    Malformed,
}

#[derive(Debug, Clone)]
pub struct GenOptions {
    pub seed: u64,
    /// Share of events that are malformed (dead letters by design).
    pub malformed_rate: f64,
    /// Share of events for accounts missing from the feature store.
    pub unknown_account_rate: f64,
    /// `event_time` of the first event, in epoch ms; later events advance ~1 ms.
    pub start_ms: i64,
    /// Sequence number of the first event (its id is `evt-<seq>`), so
    /// several generators can produce disjoint ids.
    pub first_seq: u64,
    /// Multiplies every amount: a known shift, for drift tests and demos.
    pub amount_factor: f64,
}

impl Default for GenOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            malformed_rate: 0.002,
            unknown_account_rate: 0.002,
            start_ms: 1_767_225_600_000,
            first_seq: 0,
            amount_factor: 1.0,
        }
    }
}

/// Generates transactions as JSON, deterministically for a seed.
pub struct EventGen<'w> {
    world: &'w World,
    rng: ChaCha8Rng,
    opts: GenOptions,
    seq: u64,
}

impl<'w> EventGen<'w> {
    pub fn new(world: &'w World, opts: GenOptions) -> Self {
        Self {
            world,
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            seq: opts.first_seq,
            opts,
        }
    }

    /// The id the next event will carry.
    pub fn event_id(seq: u64) -> String {
        format!("evt-{seq:012}")
    }

    /// Writes the next event's bytes into `buf` (cleared first) and its Kafka
    /// key into `key`; returns what kind of event it is.
    pub fn next_into(&mut self, buf: &mut String, key: &mut String) -> EventKind {
        buf.clear();
        key.clear();
        let seq = self.seq;
        self.seq += 1;
        let r = &mut self.rng;
        let unknown = r.random::<f64>() < self.opts.unknown_account_rate;
        let malformed = r.random::<f64>() < self.opts.malformed_rate;
        let acct = &self.world.accounts[r.random_range(0..self.world.accounts.len())];
        let account_id = if unknown {
            format!("acc-9{:05}", seq % 100_000)
        } else {
            acct.id.clone()
        };
        let amount = ((acct.avg_amount_30d
            * (0.6 * normal(r)).exp()
            * if r.random::<f64>() < 0.03 { 6.0 } else { 1.0 })
            * 100.0)
            .round()
            / 100.0;
        let amount = (amount * self.opts.amount_factor * 100.0).round() / 100.0;
        let amount = amount.max(0.5);
        let m = pick_index(r, &MCC_WEIGHTS);
        let c = pick_index(r, &CHANNEL_WEIGHTS);
        let country = if r.random::<f64>() < 0.92 {
            acct.home_country
        } else {
            COUNTRIES[r.random_range(0..COUNTRIES.len())]
        };
        let ts = self.opts.start_ms + seq as i64 + r.random_range(0..5);
        let time = chrono::DateTime::from_timestamp_millis(ts)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default();

        let z = -5.4
            + 1.3 * (amount / acct.avg_amount_30d).ln()
            + 2.2 * f64::from(country != acct.home_country)
            + MCC_RISK[m]
            + CHANNEL_RISK[c]
            + 14.0 * acct.chargeback_rate_90d
            + 0.35 * acct.failed_logins_7d as f64
            - 0.9 * acct.is_verified as f64
            + 0.8 * f64::from(acct.account_age_days < 30.0)
            + 0.25 * acct.distinct_countries_30d as f64;
        let fraud = r.random::<f64>() < 1.0 / (1.0 + (-z).exp());
        let variant = r.random_range(0..4u8);

        key.push_str(&account_id);
        let id = Self::event_id(seq);
        // Writing to a String cannot fail.
        let _ = write!(
            buf,
            r#"{{"event_id":"{id}","account_id":"{account_id}","amount":{amount:.2},"merchant_category":"{}","country":"{country}","channel":"{}","event_time":"{time}"}}"#,
            MCC[m], CHANNELS[c]
        );
        if malformed {
            match variant {
                0 => buf.truncate(buf.len() * 3 / 5),
                1 => {
                    *buf = buf.replacen(&format!("\"amount\":{amount:.2}"), "\"amount\":\"N/A\"", 1)
                }
                2 => *buf = buf.replacen(&format!("\"account_id\":\"{account_id}\","), "", 1),
                _ => {
                    buf.clear();
                    let _ = write!(buf, "event_id={id};account={account_id};amount={amount:.2}");
                }
            }
            EventKind::Malformed
        } else if unknown {
            EventKind::UnknownAccount
        } else {
            EventKind::Good { fraud }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_events_and_rates_are_as_asked() {
        let w = World::new(500, 1);
        let opts = GenOptions {
            malformed_rate: 0.05,
            unknown_account_rate: 0.05,
            ..Default::default()
        };
        let (mut a, mut b) = (EventGen::new(&w, opts.clone()), EventGen::new(&w, opts));
        let (mut ba, mut bb, mut ka, mut kb) =
            (String::new(), String::new(), String::new(), String::new());
        let mut kinds = [0usize; 3];
        let mut fraud = 0;
        for _ in 0..20_000 {
            let k = a.next_into(&mut ba, &mut ka);
            assert_eq!(k, b.next_into(&mut bb, &mut kb));
            assert_eq!(ba, bb);
            match k {
                EventKind::Good { fraud: f } => {
                    kinds[0] += 1;
                    fraud += usize::from(f);
                    assert!(
                        serde_json::from_str::<serde_json::Value>(&ba).is_ok(),
                        "{ba}"
                    );
                }
                EventKind::UnknownAccount => kinds[1] += 1,
                EventKind::Malformed => kinds[2] += 1,
            }
            assert!(ba.contains("evt-"), "every event carries its id: {ba}");
        }
        assert!((800..1200).contains(&kinds[2]), "{kinds:?}");
        assert!((700..1200).contains(&kinds[1]), "{kinds:?}");
        let rate = fraud as f64 / kinds[0] as f64;
        assert!((0.005..0.08).contains(&rate), "fraud rate {rate}");
    }
}
