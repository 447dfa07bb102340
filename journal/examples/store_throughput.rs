//! A quick figure for the message store: appends, random reads, a replay
//! from sequence 1 and a reopen, on one thread, with 40-byte messages (an
//! ITCH Add Order is 36 bytes).
//!
//! Run: `cargo run --release -p journal --example store_throughput [messages] [dir]`
//! (default 5,000,000 messages in the system's temporary directory). The
//! page cache is warm for the reads: this measures the store's own work
//! and the system calls, not the disk.

use std::time::Instant;

use journal::{MessageStore, StoreOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let messages: u64 = arguments
        .next()
        .map_or(Ok(5_000_000), |text| text.parse())?;
    let dir = arguments.next().map_or_else(
        || std::env::temp_dir().join(format!("store-throughput-{}", std::process::id())),
        Into::into,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let options = StoreOptions::default();
    let (mut store, _) = MessageStore::open(&dir, options)?;
    let message = [0x41u8; 40];

    let started = Instant::now();
    for origin in 1..=messages {
        store.append(origin, &message)?;
    }
    store.flush()?;
    report(
        "append (+ flush)",
        messages,
        started.elapsed().as_secs_f64(),
    );

    let reads = messages.min(1_000_000);
    let mut state = 0x5EED_u64;
    let started = Instant::now();
    for _ in 0..reads {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let sequence = 1 + (state >> 33) % messages;
        let found = store.get(sequence)?.ok_or("a stored message")?;
        assert_eq!(found.origin, sequence);
    }
    report("random get", reads, started.elapsed().as_secs_f64());

    let started = Instant::now();
    let mut reader = store.reader(1);
    let mut replayed = 0u64;
    while let Some(found) = reader.next()? {
        replayed += 1;
        debug_assert_eq!(found.sequence, replayed);
    }
    assert_eq!(replayed, messages);
    report(
        "replay from 1 (reader)",
        replayed,
        started.elapsed().as_secs_f64(),
    );
    drop(reader);
    let resident = store.resident_bytes();
    store.close()?;

    let started = Instant::now();
    let (store, recovery) = MessageStore::open(&dir, options)?;
    let opened = started.elapsed().as_secs_f64();
    assert_eq!(recovery.last_sequence, messages);
    println!(
        "reopen: {:.1} ms (checks the last segment whole); store memory {} bytes; on disk {} MB",
        opened * 1e3,
        resident,
        disk_bytes(&dir)? / 1_000_000
    );
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn report(what: &str, count: u64, seconds: f64) {
    println!(
        "{what}: {count} messages in {seconds:.3} s = {:.2} M messages/s",
        count as f64 / seconds / 1e6
    );
}

fn disk_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}
