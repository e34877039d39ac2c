//! A deterministic stream of deliveries: destinations drawn from a Zipf distribution by
//! a seeded generator, each delivery given to a host by the same generator.

/// splitmix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf over `n` ranks with exponent `s`: rank k (0-based) has weight 1/(k+1)^s.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 0..n {
            total += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

/// One delivery: its destination and the host that makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub destination: usize,
    pub host: usize,
}

/// The whole stream, the same for the same arguments.
pub fn stream(n: usize, destinations: usize, s: f64, hosts: usize, seed: u64) -> Vec<Delivery> {
    let z = Zipf::new(destinations, s);
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| Delivery {
            destination: z.sample(&mut rng),
            host: (rng.next_u64() % hosts as u64) as usize,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_is_deterministic_and_skewed() {
        let a = stream(5000, 1000, 1.0, 4, 7);
        assert_eq!(a, stream(5000, 1000, 1.0, 4, 7));
        let top = a.iter().filter(|d| d.destination == 0).count();
        let tail = a.iter().filter(|d| d.destination == 999).count();
        assert!(top > 300 && tail < 10, "{top} {tail}");
        assert!((0..4).all(|h| a.iter().filter(|d| d.host == h).count() > 1000));
    }
}
