//! The process `tests/journal_crash.rs` kills: it opens (recovers) the
//! journal in the directory it is given and appends to it until it is
//! killed, reporting on stdout how far the journal is durable.
//!
//! Usage: `journal_crash_child <dir> <memory|fsync> <flat-out|paced> <seed>`
//!
//! Output, one line each, flushed at once:
//! - `opened <last sequence>` after recovery;
//! - `durable <sequence>` whenever the durable position has advanced (the
//!   test requires every such record to survive the kill).
//!
//! Every record's body, type and timestamp are functions of its sequence
//! (`record_body` and friends, which the test shares by including this
//! file), so whatever survives can be checked record by record. Bodies vary
//! from empty to `RECORD_BYTES_MAX`, and segments are small, so the child
//! rolls over often and a kill lands in every phase of an append and of a
//! roll-over. `flat-out` appends without pause (a kill then lands inside an
//! append or a roll-over, not between them); `paced` appends in batches
//! with pauses, so a journal grows slowly over many rounds. The seed drives
//! only the pacing (batch sizes and pauses).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use journal::{Durability, Journal, JournalOptions};
use tests::SimulationRng;

/// Small segments, so that a round rolls over several times — but not so
/// small that preparing the next one (a synced, zero-filled file) takes
/// most of the child's time: a kill should often land inside an append.
pub(crate) const SEGMENT_BYTES: usize = 1 << 20;
pub(crate) const RECORD_BYTES_MAX: usize = 4 << 10;

pub(crate) fn options(durability: Durability) -> JournalOptions {
    JournalOptions {
        segment_bytes: SEGMENT_BYTES,
        record_bytes_max: RECORD_BYTES_MAX,
        durability,
        prefault: true,
        ..JournalOptions::default()
    }
}

/// A 64-bit mix of the sequence (splitmix64's finaliser).
fn mix(sequence: u64) -> u64 {
    let mut z = sequence.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The body of record `sequence`: mostly short, sometimes a few hundred
/// bytes, now and then close to the maximum; empty one time in a hundred.
pub(crate) fn record_body(sequence: u64) -> Vec<u8> {
    let hash = mix(sequence);
    let size_class = hash % 100;
    let spread = (hash >> 8) as usize;
    let bytes = match size_class {
        0 => 0,
        1..=79 => spread % 120,
        80..=97 => spread % 1_000,
        _ => RECORD_BYTES_MAX - spread % 64,
    };
    let mut state = hash | 1;
    (0..bytes)
        .map(|_| {
            // xorshift64: cheap bytes that differ from record to record.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub(crate) fn record_type(sequence: u64) -> u16 {
    1 + (mix(sequence ^ 0x5555) % 1_000) as u16
}

pub(crate) fn record_timestamp_ns(sequence: u64) -> u64 {
    sequence.wrapping_mul(1_000_003)
}

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let [_, dir, policy, pace, seed] = &arguments[..] else {
        eprintln!("usage: journal_crash_child <dir> <memory|fsync> <flat-out|paced> <seed>");
        std::process::exit(2);
    };
    let flat_out = match pace.as_str() {
        "flat-out" => true,
        "paced" => false,
        other => {
            eprintln!("unknown pace {other:?}");
            std::process::exit(2);
        }
    };
    let durability = match policy.as_str() {
        "memory" => Durability::Memory,
        "fsync" => Durability::Fsync {
            flush_delay_us_max: 200,
        },
        other => {
            eprintln!("unknown durability policy {other:?}");
            std::process::exit(2);
        }
    };
    let seed: u64 = seed.parse().expect("the seed is a number");
    if let Err(error) = run(&PathBuf::from(dir), durability, flat_out, seed) {
        eprintln!("journal_crash_child: {error}");
        std::process::exit(1);
    }
}

fn run(
    dir: &std::path::Path,
    durability: Durability,
    flat_out: bool,
    seed: u64,
) -> Result<(), String> {
    let mut rng = SimulationRng::new(seed);
    let (mut journal, report) =
        Journal::open(dir, options(durability)).map_err(|e| format!("open: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    let mut say = |line: String| {
        // The parent may be gone; then so should this process be.
        if writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            std::process::exit(3);
        }
    };
    say(format!("opened {}", report.last_sequence));
    let durable = journal.durable();
    let mut durable_said = report.last_sequence;
    // Until killed. The bound only stops a child whose parent lost track of
    // it from filling the disk.
    while journal.next_sequence() < report.last_sequence + 50_000_000 {
        let batch = 1 + rng.below(64);
        for _ in 0..batch {
            let sequence = journal.next_sequence();
            let appended = journal
                .append(
                    record_type(sequence),
                    record_timestamp_ns(sequence),
                    &record_body(sequence),
                )
                .map_err(|e| format!("append {sequence}: {e}"))?;
            assert_eq!(appended, sequence);
        }
        let now = durable.sequence();
        if now > durable_said {
            durable_said = now;
            say(format!("durable {now}"));
        }
        if flat_out {
            continue;
        }
        // Bursts with no pause, short pauses, and now and then a long one
        // (in which the fsync flusher catches up).
        match rng.below(100) {
            0..=39 => {}
            40..=94 => std::thread::sleep(Duration::from_micros(rng.below(1_500))),
            _ => std::thread::sleep(Duration::from_millis(1 + rng.below(4))),
        }
    }
    Ok(())
}
