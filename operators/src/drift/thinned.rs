//! A window's sample of a numeric column for KS and Wasserstein, which need
//! values, not bins: a Bernoulli sample whose rate halves whenever it would
//! exceed its cap.
//!
//! Rows can arrive already sampled (the drift queue was full, so the tee
//! kept one row in `2^k`, each standing for `2^k`): such a row enters with
//! probability `rate * 2^k`, so every scored row ends up in the sample with
//! the same probability, `rate`, and the sample stays uniform over the
//! window whatever the load was. Rates are powers of two so both sides
//! compose exactly.

use rand::Rng;

#[derive(Debug, Clone)]
pub(crate) struct Thinned {
    cap: usize,
    values: Vec<f64>,
    /// The sampling rate is `2^-level`.
    level: u32,
}

/// `true` with probability `2^-bits`.
pub(super) fn coin(bits: u32, rng: &mut impl Rng) -> bool {
    bits == 0 || (bits < 64 && rng.next_u64() & ((1u64 << bits) - 1) == 0)
}

impl Thinned {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            values: Vec::new(),
            level: 0,
        }
    }

    /// Offers a value that stands for `2^weight_log2` scored rows (it was
    /// kept with probability `2^-weight_log2` upstream).
    pub(crate) fn offer(&mut self, v: f64, weight_log2: u32, rng: &mut impl Rng) {
        if weight_log2 > self.level {
            self.thin_to(weight_log2, rng);
        }
        if coin(self.level - weight_log2, rng) {
            self.values.push(v);
            while self.values.len() > self.cap {
                self.thin_to(self.level + 1, rng);
            }
        }
    }

    fn thin_to(&mut self, level: u32, rng: &mut impl Rng) {
        let bits = level - self.level;
        self.values.retain(|_| coin(bits, rng));
        self.level = level;
    }

    /// The sample, in no particular order.
    pub(crate) fn into_values(self) -> Vec<f64> {
        self.values
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn keeps_everything_up_to_cap_then_a_bounded_uniform_sample() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut s = Thinned::new(100);
        (0..100).for_each(|i| s.offer(f64::from(i), 0, &mut rng));
        assert_eq!(s.clone().into_values().len(), 100);

        // 0..10,000 at weight 1, then 10,000 rows of 20,000.0 arriving as a
        // 1-in-8 sample (1,250 rows of weight 8): both halves are half the
        // scored rows, so each is about half the sample.
        let (mut low, mut total) = (0usize, 0usize);
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut s = Thinned::new(100);
            (0..10_000).for_each(|i| s.offer(f64::from(i), 0, &mut rng));
            (0..1_250).for_each(|_| s.offer(20_000.0, 3, &mut rng));
            let v = s.into_values();
            assert!((50..=100).contains(&v.len()), "{}", v.len());
            low += v.iter().filter(|&&x| x < 10_000.0).count();
            total += v.len();
        }
        let share = low as f64 / total as f64;
        assert!((share - 0.5).abs() < 0.05, "{share}");
    }
}
