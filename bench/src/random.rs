//! The workloads' pseudo-random numbers: xoshiro256** (Blackman and Vigna,
//! "Scrambled linear pseudorandom number generators", 2018) seeded through
//! SplitMix64, as its authors recommend.
//!
//! Written here rather than taken from a crate so that a seed names the same
//! command stream for ever: a generator crate may change its algorithm or
//! its range reduction in a minor version, and a benchmark whose stream
//! silently changed is no longer comparable with its history. The tests pin
//! the reference outputs of both algorithms.

/// SplitMix64 (Steele, Lea and Flood, 2014): used only to expand a 64-bit
/// seed into xoshiro's 256-bit state.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256**: fast, 256 bits of state, good statistical quality; not
/// cryptographic, which a workload does not need.
///
/// ```
/// let mut a = bench::Random::new(7);
/// let mut b = bench::Random::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct Random {
    state: [u64; 4],
}

impl Random {
    /// The generator for `seed` (any value, zero included).
    pub fn new(seed: u64) -> Random {
        let mut seeder = SplitMix64::new(seed);
        let state = [
            seeder.next_u64(),
            seeder.next_u64(),
            seeder.next_u64(),
            seeder.next_u64(),
        ];
        // xoshiro's one forbidden state; four consecutive SplitMix64 outputs
        // are never all zero (it is a bijection of a counter), but say so.
        assert!(state != [0; 4], "xoshiro256** needs a non-zero state");
        Random { state }
    }

    /// A generator with the state given directly (for the reference vectors).
    #[cfg(test)]
    fn from_state(state: [u64; 4]) -> Random {
        assert!(state != [0; 4], "xoshiro256** needs a non-zero state");
        Random { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A number in `0..bound` (`bound` ≥ 1), by Lemire's multiply-shift
    /// reduction. Its bias is below `bound / 2^64`, far under anything a
    /// workload can show, and — unlike rejection sampling — it draws exactly
    /// one number per call, which keeps streams easy to reason about.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "an empty range has no member");
        let wide = u128::from(self.next_u64()) * u128::from(bound);
        // Invariant: the high half of a product with a u64 below 2^64 fits.
        u64::try_from(wide >> 64).expect("the high half of a 128-bit product fits u64")
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "an empty range has no member");
        low + self.below(high - low + 1)
    }

    /// True `percent` times in a hundred, on average.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// True `per_million` times in a million, on average.
    pub fn per_million(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }

    /// True or false with equal odds.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first outputs of the reference implementation (splitmix64.c)
        // from seed 0 and seed 1234567.
        let mut zero = SplitMix64::new(0);
        assert_eq!(zero.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(zero.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut other = SplitMix64::new(1_234_567);
        assert_eq!(other.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(other.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn xoshiro256starstar_matches_the_reference() {
        // xoshiro256starstar.c from the state {1, 2, 3, 4}.
        let mut random = Random::from_state([1, 2, 3, 4]);
        let outputs: Vec<u64> = (0..4).map(|_| random.next_u64()).collect();
        assert_eq!(
            outputs,
            [11_520, 0, 1_509_978_240, 1_215_971_899_390_074_240]
        );
    }

    #[test]
    fn ranges_stay_in_bounds_and_cover_them() {
        let mut random = Random::new(42);
        let mut seen = [0_u32; 7];
        for _ in 0..7_000 {
            let value = random.between(3, 9);
            assert!((3..=9).contains(&value));
            seen[(value - 3) as usize] += 1;
        }
        assert!(seen.iter().all(|&count| count > 800), "{seen:?}");
        assert_eq!(random.below(1), 0);
    }

    #[test]
    fn seeds_give_different_streams() {
        let first: Vec<u64> = {
            let mut random = Random::new(1);
            (0..8).map(|_| random.next_u64()).collect()
        };
        let second: Vec<u64> = {
            let mut random = Random::new(2);
            (0..8).map(|_| random.next_u64()).collect()
        };
        assert_ne!(first, second);
    }
}
