//! A uniform sample of a stream of numbers in bounded memory, shared by
//! the drift windows and `scorestream profile` so the live side and the
//! reference side sample alike.

use rand::Rng;

/// Vitter's algorithm R: the first `cap` values are kept, then the `n`-th
/// replaces a kept one with probability `cap / n`. Memory is `cap` values,
/// whatever the stream's length. The caller owns the random source, so a
/// seeded one gives the same sample every run.
#[derive(Debug, Clone, Default)]
pub struct Reservoir {
    cap: usize,
    values: Vec<f64>,
    seen: u64,
}

impl Reservoir {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            values: Vec::new(),
            seen: 0,
        }
    }

    /// Offers one value of the stream.
    pub fn offer(&mut self, v: f64, rng: &mut impl Rng) {
        self.seen += 1;
        if self.values.len() < self.cap {
            self.values.push(v);
        } else {
            let j = rng.random_range(0..self.seen);
            if (j as usize) < self.cap {
                self.values[j as usize] = v;
            }
        }
    }

    /// Values offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The sample, in no particular order.
    pub fn into_values(self) -> Vec<f64> {
        self.values
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn keeps_everything_up_to_cap_then_a_uniform_sample() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut r = Reservoir::new(100);
        (0..50).for_each(|i| r.offer(f64::from(i), &mut rng));
        assert_eq!(
            r.clone().into_values(),
            (0..50).map(f64::from).collect::<Vec<_>>()
        );

        // 1,000 draws of a 100-value sample from 0..10,000: each value is
        // kept with probability 1/100, so the sample's mean sits near the
        // stream's (4,999.5) and both halves of the stream are represented.
        let mut means = 0.0;
        for seed in 0..1_000 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut r = Reservoir::new(100);
            (0..10_000).for_each(|i| r.offer(f64::from(i), &mut rng));
            assert_eq!(r.seen(), 10_000);
            let v = r.into_values();
            assert_eq!(v.len(), 100);
            assert!(v.iter().any(|&x| x < 5_000.0) && v.iter().any(|&x| x >= 5_000.0));
            means += v.iter().sum::<f64>() / 100.0;
        }
        let mean = means / 1_000.0;
        assert!((mean - 4_999.5).abs() < 100.0, "{mean}");
    }
}
