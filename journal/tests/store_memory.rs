//! The process's resident memory while a store takes a million messages
//! and answers random reads: it must not grow with the messages (nothing
//! is mapped; the page cache is not the process's). Alone in its own test
//! binary so no other test's allocations count.
//!
//! Run: `cargo test -p journal --test store_memory`.

use journal::{MessageStore, StoreOptions};

/// Resident set size, from `/proc/self/statm` (pages × 4 KiB).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .expect("resident")
        .parse()
        .expect("a number");
    pages * 4096
}

#[test]
fn resident_memory_does_not_grow_with_the_messages() {
    let dir = std::env::temp_dir().join(format!("journal-store-rss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = StoreOptions {
        cache_bytes_max: 1 << 20,
        ..StoreOptions::default()
    };
    let (mut store, _) = MessageStore::open(&dir, options).unwrap();
    // Warm up: the first segment and the allocator's arenas.
    let message = [0x42u8; 40];
    for origin in 1..=10_000 {
        store.append(origin, &message).unwrap();
    }
    let before = resident_bytes();
    let mut state = 0x5EED_u64;
    for origin in 10_001..=1_000_000 {
        store.append(origin, &message).unwrap();
        if origin % 50 == 0 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let sequence = 1 + (state >> 33) % store.last_sequence();
            let found = store.get(sequence).unwrap().expect("stored");
            assert_eq!(found.origin, sequence);
        }
    }
    let mut reader = store.reader(1);
    let mut replayed = 0u64;
    while let Some(found) = reader.next().unwrap() {
        replayed += 1;
        assert_eq!(found.sequence, replayed);
    }
    drop(reader);
    let after = resident_bytes();
    let grown = after.saturating_sub(before);
    // A million 40-byte messages: 72 MB of records and 4 MB of index on
    // disk; 40 MB if they were held in memory. Allow 8 MiB of noise.
    eprintln!(
        "resident before {before} B, after {after} B, grown {grown} B; store holds {} B",
        store.resident_bytes()
    );
    assert_eq!(replayed, 1_000_000);
    assert!(grown < 8 << 20, "resident memory grew by {grown} bytes");
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
