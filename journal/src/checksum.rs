//! CRC32C (Castagnoli) for the record checksum, cheap to call for the small
//! inputs an append checksums: bit-identical to the `crc32c` crate's
//! [`crc32c::crc32c`] and [`crc32c::crc32c_append`].
//!
//! Why not the crate alone: a record's checksum covers 28 header bytes and a
//! body of typically tens to hundreds of bytes, and for inputs that small
//! the crate's fixed cost per call dominates. Its SSE 4.2 code is a
//! separate, non-inlinable `target_feature` function that splits the input
//! at 8-byte alignment and sets up its interleaved loops before the first
//! `crc32` instruction, and the record checksum made two such calls (header,
//! then body). `perf` had put 65–78% of `Journal::append` (44 ns for a
//! 64-byte body, against 5 ns for a plain copy of the same bytes) in
//! CRC32C. Measured on the benchmark machine (an AMD EPYC VM), a record of
//! 28 + 64 bytes took 17.5 ns through the crate and 9 ns here, and the
//! share of CRC32C in a 64-byte append fell from about 29 ns to about 14.
//! Here the dispatch is an inlined load of a cached flag and a predictable
//! branch, then one direct call to a loop of `crc32` instructions, 8 bytes
//! per step. What remains is the latency of that dependent chain (3 cycles
//! per 8 bytes), which consecutive appends cannot overlap: each record's
//! header holds the previous record's checksum.
//!
//! For inputs of [`LARGE_BYTES`] or more the crate is faster: it splits the
//! data into three streams so that three `crc32` instructions are in flight
//! at once (their latency is 3 cycles, their throughput 1 per cycle), then
//! combines them with tables. Those inputs are handed to it, as is
//! everything on a CPU without SSE 4.2 and on other architectures.

/// From this many bytes on, the crate's three-way interleaved
/// implementation beats the single chain of `crc32` instructions here. The
/// crate interleaves blocks of 768 bytes (3 × 256); below that it runs the
/// same single chain as this module plus its fixed cost, and from there on
/// it is about twice as fast (measured on the benchmark machine, an AMD
/// EPYC VM: 768 bytes in 37 ns against 78 ns here; at 740 bytes both take
/// 77–79 ns; for a record of 28 + 64 bytes, 9 ns here against 17 ns for
/// the crate's two calls).
pub(crate) const LARGE_BYTES: usize = 768;

/// The CRC32C of `data`: the same as [`crc32c::crc32c`].
#[inline]
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c_append(0, data)
}

/// The CRC32C of the bytes that gave `crc` followed by `data`: the same as
/// [`crc32c::crc32c_append`].
#[inline]
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if data.len() < LARGE_BYTES && x86_64::has_sse42() {
            // SAFETY: the CPU supports SSE 4.2 (just checked), the only
            // requirement of the `target_feature` function.
            return unsafe { x86_64::crc32c_append(crc, data) };
        }
    }
    by_crate::crc32c_append(crc, data)
}

/// The CRC32C of `first` followed by `second`: the same as
/// `crc32c_append(crc32c(first), second)`, in one dispatch.
#[inline]
pub(crate) fn crc32c_concat(first: &[u8], second: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if first.len() + second.len() < LARGE_BYTES && x86_64::has_sse42() {
            // SAFETY: the CPU supports SSE 4.2 (just checked), the only
            // requirement of the `target_feature` function.
            return unsafe { x86_64::crc32c_concat(first, second) };
        }
    }
    by_crate::crc32c_concat(first, second)
}

/// The `crc32c` crate's functions, kept out of line so that the dispatch
/// above stays small enough to inline.
mod by_crate {
    #[inline(never)]
    pub(super) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
        crc32c::crc32c_append(crc, data)
    }

    #[inline(never)]
    pub(super) fn crc32c_concat(first: &[u8], second: &[u8]) -> u32 {
        crc32c::crc32c_append(crc32c::crc32c(first), second)
    }
}

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u16, _mm_crc32_u32, _mm_crc32_u64};
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Whether the CPU has SSE 4.2: [`UNKNOWN`] until the first call of
    /// [`has_sse42`], then [`ABSENT`] or [`PRESENT`] for good.
    static SSE42: AtomicU8 = AtomicU8::new(UNKNOWN);
    const UNKNOWN: u8 = 0;
    const ABSENT: u8 = 1;
    const PRESENT: u8 = 2;

    /// Whether the CPU has SSE 4.2. Known at compile time when the build
    /// targets it; otherwise one relaxed load (the value never changes
    /// once set, and it guards nothing but itself) and a branch that
    /// always goes the same way.
    #[inline]
    pub(super) fn has_sse42() -> bool {
        if cfg!(target_feature = "sse4.2") {
            return true;
        }
        match SSE42.load(Ordering::Relaxed) {
            PRESENT => true,
            ABSENT => false,
            _ => detect(),
        }
    }

    #[cold]
    #[inline(never)]
    fn detect() -> bool {
        let present = std::arch::is_x86_feature_detected!("sse4.2");
        SSE42.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
        present
    }

    /// CRC32C continued from `crc` over `data`, with the `crc32`
    /// instruction: 8 bytes per step, then 4, 2 and 1 for the tail.
    #[target_feature(enable = "sse4.2")]
    pub(super) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
        !update(!crc, data)
    }

    /// CRC32C of `first` followed by `second`.
    #[target_feature(enable = "sse4.2")]
    pub(super) fn crc32c_concat(first: &[u8], second: &[u8]) -> u32 {
        !update(update(!0, first), second)
    }

    /// Runs the (pre- and post-inverted) CRC register `state` over `data`.
    #[inline]
    #[target_feature(enable = "sse4.2")]
    fn update(state: u32, data: &[u8]) -> u32 {
        let mut state = u64::from(state);
        let mut words = data.chunks_exact(8);
        for word in &mut words {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            state = _mm_crc32_u64(state, word);
        }
        // `_mm_crc32_u64` leaves the upper 32 bits zero.
        let mut state = state as u32;
        let mut tail = words.remainder();
        if let Some((word, rest)) = tail.split_first_chunk::<4>() {
            state = _mm_crc32_u32(state, u32::from_le_bytes(*word));
            tail = rest;
        }
        if let Some((word, rest)) = tail.split_first_chunk::<2>() {
            state = _mm_crc32_u16(state, u16::from_le_bytes(*word));
            tail = rest;
        }
        if let Some(&byte) = tail.first() {
            state = _mm_crc32_u8(state, byte);
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small deterministic generator (SplitMix64), so that failures
    /// reproduce.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn bytes(&mut self, length: usize) -> Vec<u8> {
            (0..length).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn known_answers() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b"Hello world!"), 0x7B98_E751);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn matches_the_crate_on_every_length_to_300() {
        let mut random = SplitMix64(0x00C0_FFEE);
        for length in 0..=300 {
            for _ in 0..8 {
                let data = random.bytes(length);
                // Every alignment of the start, not only the allocator's.
                let offset = (random.next() % 8) as usize;
                let mut shifted = vec![0u8; offset];
                shifted.extend_from_slice(&data);
                let data = &shifted[offset..];
                let seed = random.next() as u32;
                assert_eq!(crc32c(data), crc32c::crc32c(data), "length {length}");
                assert_eq!(
                    crc32c_append(seed, data),
                    crc32c::crc32c_append(seed, data),
                    "length {length}, seed {seed:#x}"
                );
                let split = (random.next() % (length as u64 + 1)) as usize;
                let (first, second) = data.split_at(split);
                assert_eq!(
                    crc32c_append(crc32c(first), second),
                    crc32c::crc32c(data),
                    "length {length} split at {split}"
                );
                assert_eq!(
                    crc32c_concat(first, second),
                    crc32c::crc32c(data),
                    "length {length} split at {split}"
                );
                // The paths taken on other machines and for large inputs.
                assert_eq!(by_crate::crc32c_concat(first, second), crc32c::crc32c(data));
                assert_eq!(
                    by_crate::crc32c_append(seed, data),
                    crc32c::crc32c_append(seed, data)
                );
            }
        }
    }

    #[test]
    fn matches_the_crate_around_the_large_threshold() {
        let mut random = SplitMix64(7);
        for length in LARGE_BYTES - 40..LARGE_BYTES + 40 {
            let data = random.bytes(length);
            let seed = random.next() as u32;
            assert_eq!(
                crc32c_append(seed, &data),
                crc32c::crc32c_append(seed, &data)
            );
            for split in [0, 28, length / 2, length] {
                let (first, second) = data.split_at(split);
                assert_eq!(crc32c_concat(first, second), crc32c::crc32c(&data));
            }
        }
    }

    proptest! {
        #[test]
        fn matches_the_crate(
            data in proptest::collection::vec(any::<u8>(), 0..2_000),
            seed in any::<u32>(),
            split in any::<prop::sample::Index>(),
        ) {
            prop_assert_eq!(crc32c(&data), crc32c::crc32c(&data));
            prop_assert_eq!(crc32c_append(seed, &data), crc32c::crc32c_append(seed, &data));
            let (first, second) = data.split_at(split.index(data.len() + 1));
            prop_assert_eq!(crc32c_concat(first, second), crc32c::crc32c(&data));
            prop_assert_eq!(
                crc32c_append(crc32c_append(seed, first), second),
                crc32c::crc32c_append(seed, &data)
            );
        }
    }
}
