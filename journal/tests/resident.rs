//! The journal's share of the process's resident memory is the segments in
//! use, not everything appended: a sealed, durable segment's pages are
//! released by the flusher, and a reader releases the pages of each
//! segment it leaves. Its own test binary, so that no other test's pages
//! count.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use journal::{Durability, Journal, JournalOptions};

const SEGMENT_BYTES: usize = 4 << 20;
const SEGMENTS: usize = 24;

/// The file-backed resident memory of this process (`RssFile`), in bytes.
fn rss_file_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("RssFile:"))
        .expect("RssFile in /proc/self/status");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("journal-resident-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Waits (bounded) until the file-backed resident memory is below `bytes`;
/// the last reading.
fn settles_below(bytes: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resident = rss_file_bytes();
        if resident < bytes || Instant::now() > deadline {
            return resident;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn finished_segments_do_not_stay_resident() {
    let dir = scratch();
    let before = rss_file_bytes();
    let options = JournalOptions {
        segment_bytes: SEGMENT_BYTES,
        durability: Durability::Fsync {
            flush_delay_us_max: 200,
        },
        ..JournalOptions::default()
    };
    let (mut journal, _) = Journal::open(&dir, options).unwrap();
    let body = vec![0x5a; 4000];
    let records = SEGMENTS * SEGMENT_BYTES / (body.len() + 48);
    for _ in 0..records {
        journal.append(7, 1, &body).unwrap();
    }
    journal.sync().unwrap();
    // Everything appended was resident once (written, and prefaulted): far
    // more than the bound below, which is what makes the test able to fail.
    let appended = SEGMENTS * SEGMENT_BYTES;
    let bound = before + 6 * SEGMENT_BYTES;
    assert!(bound < appended / 2);
    let resident = settles_below(bound);
    assert!(
        resident < bound,
        "after appending {appended} bytes, {resident} bytes of files are resident (bound {bound})"
    );
    // A reader of the whole journal leaves it as small.
    let mut reader = journal.reader(1);
    let mut read = 0;
    while let Some(record) = reader.next().unwrap() {
        assert_eq!(record.body.len(), body.len());
        read += 1;
    }
    assert_eq!(read, records);
    let resident = settles_below(bound);
    assert!(
        resident < bound,
        "after reading {appended} bytes, {resident} bytes of files are resident (bound {bound})"
    );
    journal.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
