//! Fault injection against the journal's recovery rules (the `recovery`
//! module docs), through the public API plus raw edits of the files.
//!
//! Each test builds a small journal (4 KiB segments, so it rolls often),
//! closes it, damages the bytes the way a crash, a lost write or a flipped
//! bit would, and requires exactly the documented outcome: a torn tail is
//! truncated and reported and appends continue; damage anywhere else is
//! `Corrupt` naming the segment, the offset and the sequence; a missing
//! segment is `MissingSegment`; nothing is repaired by guessing.
//!
//! Where a record is in a file is found by walking the files with the byte
//! layout of `layout.rs` (`record_spots`), never by repeating the
//! appender's placement rules, so a test of the roll-over checks those rules
//! rather than restating them.
//!
//! Run: `cargo test -p journal --test recovery` (2 to 6 s on two cores).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use journal::{
    Durability, Journal, JournalError, JournalOptions, RECORD_ALIGNMENT, RECORD_HEADER_BYTES,
    RecoveryReport, SEGMENT_HEADER_BYTES,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The `length` that seals a segment (layout.rs: `SEAL`, not exported).
const SEAL: u32 = u32::MAX;
const SEGMENT_BYTES: usize = 4096;
const RECORD_BYTES_MAX: usize = 1024;

fn options() -> JournalOptions {
    JournalOptions {
        segment_bytes: SEGMENT_BYTES,
        record_bytes_max: RECORD_BYTES_MAX,
        durability: Durability::Memory,
        prefault: false,
        ..JournalOptions::default()
    }
}

/// A directory removed when the test passes (kept on failure, to look at).
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("journal-recovery-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }

    /// A sibling directory for one trial, emptied first.
    fn trial(&self, name: &str) -> PathBuf {
        let path = self.path.join(name);
        let _ = fs::remove_dir_all(&path);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Every record's body, type and timestamp are functions of its sequence,
/// so any record read back can be checked on its own. Bodies are 1..=150
/// bytes, none of them zero, so zeroing any body byte changes the record;
/// lengths vary so that padding of every size occurs.
fn body_for(sequence: u64) -> Vec<u8> {
    let length = 1 + (sequence.wrapping_mul(37) % 150) as usize;
    (0..length)
        .map(|i| {
            (sequence as u8)
                .wrapping_mul(31)
                .wrapping_add((i as u8).wrapping_mul(7))
                | 1
        })
        .collect()
}

fn type_for(sequence: u64) -> u16 {
    1 + (sequence % 5) as u16
}

fn timestamp_for(sequence: u64) -> u64 {
    sequence * 1_000 + 7
}

fn append_next(journal: &mut Journal) -> u64 {
    let sequence = journal.next_sequence();
    let body = body_for(sequence);
    let appended = journal
        .append(type_for(sequence), timestamp_for(sequence), &body)
        .unwrap();
    assert_eq!(appended, sequence);
    sequence
}

/// A journal of `records` records in `dir`, closed.
fn build(dir: &Path, records: u64, options: JournalOptions) {
    let (mut journal, report) = Journal::open(dir, options).unwrap();
    assert_eq!(report.last_sequence, 0);
    for _ in 0..records {
        append_next(&mut journal);
    }
    journal.close().unwrap();
}

/// Reads every record from 1 and checks it; returns how many there were.
fn check_contents(journal: &Journal) -> u64 {
    let mut reader = journal.reader(1);
    let mut expected = 1;
    while let Some(record) = reader.next().unwrap() {
        assert_eq!(record.sequence, expected);
        assert_eq!(record.record_type, type_for(expected), "type of {expected}");
        assert_eq!(
            record.timestamp_ns,
            timestamp_for(expected),
            "timestamp of {expected}"
        );
        assert_eq!(record.body, &body_for(expected)[..], "body of {expected}");
        expected += 1;
    }
    assert_eq!(expected - 1, journal.last_sequence());
    expected - 1
}

/// Opens (recovering), appends one record, checks everything, closes, and
/// reopens to check that the recovered journal is clean.
fn recover_and_continue(dir: &Path, last_expected: u64) -> RecoveryReport {
    let (mut journal, report) = Journal::open(dir, options()).unwrap();
    assert_eq!(report.last_sequence, last_expected, "{report:?}");
    assert_eq!(report.first_sequence, 1);
    assert_eq!(journal.last_sequence(), last_expected);
    assert_eq!(append_next(&mut journal), last_expected + 1);
    assert_eq!(check_contents(&journal), last_expected + 1);
    journal.close().unwrap();
    let (journal, again) = Journal::open(dir, options()).unwrap();
    assert_eq!(again.last_sequence, last_expected + 1, "{again:?}");
    assert!(again.torn_tail.is_none(), "{again:?}");
    assert_eq!(check_contents(&journal), last_expected + 1);
    report
}

/// Segment files of `dir` in order.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort();
    files
}

fn pending_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "next"))
        .collect();
    files.sort();
    files
}

/// Where a record is, read from the files.
#[derive(Clone, Debug)]
struct Spot {
    path: PathBuf,
    offset: usize,
    length: usize,
    footprint: usize,
    sequence: u64,
}

/// Where a segment's records end, and whether a seal is there.
#[derive(Clone, Debug)]
struct SegmentEnd {
    path: PathBuf,
    end: usize,
    sealed: bool,
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}

/// Walks every segment's records by their `length` words.
fn record_spots(dir: &Path) -> (Vec<Spot>, Vec<SegmentEnd>) {
    let mut spots = Vec::new();
    let mut ends = Vec::new();
    for path in segment_files(dir) {
        let bytes = fs::read(&path).unwrap();
        let mut offset = SEGMENT_HEADER_BYTES;
        let mut sealed = false;
        while offset + 4 <= bytes.len() {
            let length = u32_at(&bytes, offset);
            if length == SEAL {
                sealed = true;
                break;
            }
            if length == 0 {
                break;
            }
            let length = length as usize;
            let footprint = length.next_multiple_of(RECORD_ALIGNMENT);
            spots.push(Spot {
                path: path.clone(),
                offset,
                length,
                footprint,
                sequence: u64_at(&bytes, offset + 8),
            });
            offset += footprint;
        }
        ends.push(SegmentEnd {
            path,
            end: offset,
            sealed,
        });
    }
    for (position, spot) in spots.iter().enumerate() {
        assert_eq!(spot.sequence, position as u64 + 1, "walked {spot:?}");
    }
    (spots, ends)
}

fn edit(path: &Path, change: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).unwrap();
    change(&mut bytes);
    fs::write(path, &bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The path in `dir` of the file `path` names in another directory.
fn moved(path: &Path, dir: &Path) -> PathBuf {
    dir.join(path.file_name().unwrap())
}

#[track_caller]
fn assert_corrupt(
    result: Result<RecoveryReport, JournalError>,
    spot: (&Path, u64, u64),
    what: &str,
) {
    let (path, offset, sequence) = spot;
    match result {
        Err(JournalError::Corrupt {
            segment,
            offset: found_offset,
            sequence: found_sequence,
            reason,
        }) => {
            assert_eq!(
                (segment.as_path(), found_offset, found_sequence),
                (path, offset, sequence),
                "{what}: {reason}"
            );
        }
        other => {
            panic!("{what}: expected Corrupt at {path:?} {offset} seq {sequence}, got {other:?}")
        }
    }
}

fn open_report(dir: &Path) -> Result<RecoveryReport, JournalError> {
    Journal::open(dir, options()).map(|(_, report)| report)
}

fn open_read_only_report(dir: &Path) -> Result<RecoveryReport, JournalError> {
    Journal::open_read_only(dir).map(|(_, report)| report)
}

/// Rewrites `dir`'s checkpoint (every copy, with the layout of
/// `checkpoint.rs`) so that only records through `sequence` count as
/// acknowledged: the state of a journal whose later records were appended
/// but never reported durable before the process or machine stopped. Tests
/// of a torn, unacknowledged tail damage only records beyond it.
fn acknowledge_only_through(dir: &Path, sequence: u64) {
    let (term, crc) = match record_spots(dir).0.iter().find(|s| s.sequence == sequence) {
        Some(spot) => {
            let bytes = fs::read(&spot.path).unwrap();
            let header = spot.offset;
            (
                u64_at(&bytes, header + 24),
                u32_at(&bytes, header + RECORD_HEADER_BYTES - 4),
            )
        }
        None => {
            assert_eq!(sequence, 0, "no record {sequence} in {dir:?}");
            (0, 0)
        }
    };
    let mut file = vec![0u8; 4 * 4096];
    for copy in 0..4u64 {
        let block = &mut file[copy as usize * 4096..][..64];
        block[0..8].copy_from_slice(b"EXCKPT\0\x01");
        block[8..12].copy_from_slice(&1u32.to_le_bytes());
        block[12..16].copy_from_slice(&64u32.to_le_bytes());
        block[16..24].copy_from_slice(&(1_000 + copy).to_le_bytes());
        block[24..32].copy_from_slice(&sequence.to_le_bytes());
        block[32..40].copy_from_slice(&term.to_le_bytes());
        block[40..44].copy_from_slice(&crc.to_le_bytes());
        let crc = crc32c::crc32c(&block[..60]);
        block[60..64].copy_from_slice(&crc.to_le_bytes());
    }
    fs::write(dir.join("CHECKPOINT"), file).unwrap();
    assert_eq!(
        Journal::read_checkpoint(dir).unwrap().map(|c| c.sequence),
        Some(sequence)
    );
}

// ---------------------------------------------------------------------------
// Torn tails
// ---------------------------------------------------------------------------

/// The last record cut at every byte: the shape of a process that died
/// mid-append (everything from byte `k` on never written, the length word
/// written last) and the shape of a lost page under a present length word.
#[test]
fn torn_last_record_cut_at_every_byte_is_truncated_and_appends_continue() {
    let scratch = Scratch::new("torn-every-byte");
    let pristine = scratch.trial("pristine");
    // 120 records span several segments; the last one has padding.
    let records = 120;
    build(&pristine, records, options());
    // The last record was appended, never acknowledged.
    acknowledge_only_through(&pristine, records - 1);
    let (spots, _) = record_spots(&pristine);
    let last = spots.last().unwrap().clone();
    assert!(segment_files(&pristine).len() >= 3);
    assert!(
        last.footprint > last.length,
        "the last record should have padding: {last:?}"
    );
    let pristine_bytes = fs::read(&last.path).unwrap();
    let mut torn_reports = 0;
    for keep_length_word in [false, true] {
        for cut in 0..last.footprint {
            let what = format!("cut at byte {cut}, length word kept: {keep_length_word}");
            let dir = scratch.trial("trial");
            copy_dir(&pristine, &dir);
            let path = moved(&last.path, &dir);
            let from = if keep_length_word { cut.max(4) } else { cut };
            edit(&path, |bytes| {
                bytes[last.offset + from..last.offset + last.footprint].fill(0)
            });
            let bytes = fs::read(&path).unwrap();
            let changed = bytes != pristine_bytes;
            let left = &bytes[last.offset..last.offset + last.footprint];
            let torn_expected = changed && left.iter().any(|&b| b != 0);
            let last_expected = if changed { records - 1 } else { records };

            // Read-only: reported, not truncated; readers stop before it.
            let (journal, report) = Journal::open_read_only(&dir).unwrap();
            assert_eq!(report.last_sequence, last_expected, "{what}: {report:?}");
            assert_eq!(
                report.torn_tail.is_some(),
                torn_expected,
                "{what}: {report:?}"
            );
            assert_eq!(check_contents(&journal), last_expected, "{what}");
            drop(journal);
            assert_eq!(
                fs::read(&path).unwrap(),
                bytes,
                "{what}: read-only changed the file"
            );

            let report = recover_and_continue(&dir, last_expected);
            match &report.torn_tail {
                Some(torn) => {
                    assert!(torn_expected, "{what}: {report:?}");
                    assert_eq!(torn.segment, path, "{what}");
                    assert_eq!(torn.offset, last.offset as u64, "{what}");
                    assert!(
                        torn.bytes > 0 && torn.bytes <= last.footprint as u64,
                        "{what}: {torn:?}"
                    );
                    torn_reports += 1;
                }
                None => assert!(!torn_expected, "{what}: {report:?}"),
            }
        }
    }
    // Every cut inside the header or body is a torn tail, except cutting
    // the whole record (nothing is left to tear): `length - 1` cuts without
    // the length word, `length` with it (cuts 0..4 all keep bytes 0..4).
    assert_eq!(torn_reports, 2 * last.length - 1);
}

/// The last segment's file cut short (a copy that stopped, a lost extent):
/// its length is given back, the cut record is a torn tail.
#[test]
fn truncated_last_segment_file_gets_its_length_back() {
    let scratch = Scratch::new("cut-file");
    let pristine = scratch.trial("pristine");
    let records = 40;
    build(&pristine, records, options());
    // The last record was appended, never acknowledged.
    acknowledge_only_through(&pristine, records - 1);
    let (spots, ends) = record_spots(&pristine);
    let last = spots.last().unwrap().clone();
    let end = ends.last().unwrap().end;
    assert_eq!(end, last.offset + last.footprint);
    let cuts = [
        (last.offset + 8, records - 1),
        (last.offset + 13, records - 1),
        (last.offset + last.length - 1, records - 1),
        (last.offset, records - 1),
        (end, records),
        (end + 3, records),
        (end + 64, records),
        (SEGMENT_BYTES - 8, records),
    ];
    for (cut, last_expected) in cuts {
        let dir = scratch.trial("trial");
        copy_dir(&pristine, &dir);
        let path = moved(&last.path, &dir);
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        // Read-only, the cut file is read as it is, whatever its length.
        let (journal, report) = Journal::open_read_only(&dir).unwrap();
        assert_eq!(report.last_sequence, last_expected, "cut at {cut}");
        assert_eq!(check_contents(&journal), last_expected);
        drop(journal);
        let report = recover_and_continue(&dir, last_expected);
        assert!(
            report.torn_tail.is_some(),
            "cut at {cut}: a restored file is reported"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            SEGMENT_BYTES as u64,
            "cut at {cut}"
        );
    }
}

/// Bytes after the last record that are zero are the normal end; anything
/// else there is an unfinished append, unless a valid later record follows.
#[test]
fn the_tail_after_the_last_record_zero_garbage_or_a_later_record() {
    let scratch = Scratch::new("tail");
    let pristine = scratch.trial("pristine");
    let records = 40;
    build(&pristine, records, options());
    let (spots, ends) = record_spots(&pristine);
    let last_end = ends.last().unwrap().clone();

    // Zeros after the last record: a clean open.
    let dir = scratch.trial("zeros");
    copy_dir(&pristine, &dir);
    let report = recover_and_continue(&dir, records);
    assert!(report.torn_tail.is_none(), "{report:?}");

    // Garbage after a zero length word, near and far: a torn tail from the
    // zero word to the end of the garbage, zeroed.
    for (at, garbage_bytes) in [
        (4, 20),
        (4, 1),
        (600, 100),
        (SEGMENT_BYTES - last_end.end - 3, 3),
    ] {
        let dir = scratch.trial("garbage");
        copy_dir(&pristine, &dir);
        let path = moved(&last_end.path, &dir);
        let start = last_end.end + at;
        edit(&path, |bytes| {
            for (i, byte) in bytes[start..start + garbage_bytes].iter_mut().enumerate() {
                *byte = 0xA5 ^ i as u8;
            }
        });
        let report = recover_and_continue(&dir, records);
        let torn = report.torn_tail.expect("garbage is a torn tail");
        assert_eq!(
            (torn.segment, torn.offset),
            (path.clone(), last_end.end as u64)
        );
        let garbage_end = (start + garbage_bytes).next_multiple_of(RECORD_ALIGNMENT);
        assert_eq!(
            torn.bytes,
            (garbage_end - last_end.end) as u64,
            "garbage at +{at}"
        );
        let bytes = fs::read(&path).unwrap();
        let appended_end = last_end.end
            + (RECORD_HEADER_BYTES + body_for(records + 1).len())
                .next_multiple_of(RECORD_ALIGNMENT);
        if appended_end <= start {
            assert!(
                bytes[start..].iter().all(|&b| b == 0),
                "garbage at +{at} not zeroed"
            );
        }
    }

    // A copy of an earlier record after the end is not a later record: a
    // torn tail (stale bytes), not corruption.
    let dir = scratch.trial("stale-copy");
    copy_dir(&pristine, &dir);
    let path = moved(&last_end.path, &dir);
    let first_in_last = spots
        .iter()
        .find(|s| s.path == last_end.path)
        .unwrap()
        .clone();
    assert!(last_end.end + 8 + first_in_last.footprint <= SEGMENT_BYTES);
    edit(&path, |bytes| {
        let copy =
            bytes[first_in_last.offset..first_in_last.offset + first_in_last.footprint].to_vec();
        bytes[last_end.end + 8..last_end.end + 8 + copy.len()].copy_from_slice(&copy);
    });
    let report = recover_and_continue(&dir, records);
    assert_eq!(
        report
            .torn_tail
            .expect("stale bytes are a torn tail")
            .offset,
        last_end.end as u64
    );

    // A damaged record with a valid record after it, in the last segment:
    // corruption, and the files are left exactly as they were.
    let victim = spots[spots.len() - 2].clone();
    assert_eq!(
        victim.path, last_end.path,
        "the last two records share a segment"
    );
    for (name, damage) in [
        ("unpublished", 0usize),
        ("flipped body", RECORD_HEADER_BYTES),
    ] {
        let dir = scratch.trial("damaged-before-valid");
        copy_dir(&pristine, &dir);
        let path = moved(&victim.path, &dir);
        edit(&path, |bytes| {
            if damage == 0 {
                bytes[victim.offset..victim.offset + 4].fill(0);
            } else {
                bytes[victim.offset + damage] ^= 0x40;
            }
        });
        let before = fs::read(&path).unwrap();
        let spot = (path.as_path(), victim.offset as u64, victim.sequence);
        assert_corrupt(open_report(&dir), spot, name);
        assert_corrupt(open_read_only_report(&dir), spot, name);
        assert_eq!(
            fs::read(&path).unwrap(),
            before,
            "{name}: the open changed the file"
        );
    }
}

// ---------------------------------------------------------------------------
// Corruption in the middle
// ---------------------------------------------------------------------------

/// Every bit of a record in the middle of the journal (header, body,
/// padding), in a segment that is not the last and in the last segment
/// with records after it: `Corrupt` naming the record, from both opens.
#[test]
fn a_flipped_bit_anywhere_in_a_middle_record_is_corruption_named_exactly() {
    let scratch = Scratch::new("flip-record");
    let pristine = scratch.trial("pristine");
    build(&pristine, 150, options());
    let (spots, _) = record_spots(&pristine);
    let files = segment_files(&pristine);
    assert!(files.len() >= 4, "{files:?}");
    let last_file = files.last().unwrap();
    let padded = |s: &&Spot| s.footprint > s.length && s.footprint - s.length >= 3;
    let in_middle_segment = spots
        .iter()
        .filter(|s| s.path == files[1])
        .filter(padded)
        .nth(1)
        .expect("a padded record in the middle of segment 2")
        .clone();
    let in_last = spots
        .iter()
        .filter(|s| s.path == *last_file)
        .collect::<Vec<_>>();
    assert!(in_last.len() >= 3, "the last segment holds a few records");
    let in_last_segment = in_last[1].clone();
    let dir = scratch.trial("trial");
    copy_dir(&pristine, &dir);
    let mut trials = 0;
    for victim in [in_middle_segment, in_last_segment] {
        let path = moved(&victim.path, &dir);
        let pristine_bytes = fs::read(&path).unwrap();
        let spot = (path.as_path(), victim.offset as u64, victim.sequence);
        for byte in 0..victim.footprint {
            for bit in 0..8 {
                let mut bytes = pristine_bytes.clone();
                bytes[victim.offset + byte] ^= 1 << bit;
                fs::write(&path, &bytes).unwrap();
                let what = format!("seq {} byte {byte} bit {bit}", victim.sequence);
                assert_corrupt(open_read_only_report(&dir), spot, &what);
                assert_corrupt(open_report(&dir), spot, &what);
                assert_eq!(
                    fs::read(&path).unwrap(),
                    bytes,
                    "{what}: the open changed the file"
                );
                trials += 1;
            }
        }
        fs::write(&path, &pristine_bytes).unwrap();
    }
    assert!(trials > 2 * 8 * 40);
    // Restored, it opens clean: the trials damaged nothing else.
    recover_and_continue(&dir, 150);
}

/// Every bit of the header of a segment that is not the last (the first
/// and one in the middle), and of the last one: `Corrupt` at offset 0 with
/// the segment's first sequence. A damaged header is never taken for the
/// blank header of a segment whose creation was interrupted.
#[test]
fn a_flipped_bit_in_a_segment_header_is_corruption() {
    let scratch = Scratch::new("flip-header");
    let pristine = scratch.trial("pristine");
    build(&pristine, 150, options());
    let (spots, _) = record_spots(&pristine);
    let files = segment_files(&pristine);
    assert!(files.len() >= 4);
    let dir = scratch.trial("trial");
    copy_dir(&pristine, &dir);
    for file in [&files[0], &files[1], files.last().unwrap()] {
        let first = spots.iter().find(|s| s.path == *file).unwrap().sequence;
        let path = moved(file, &dir);
        let pristine_bytes = fs::read(&path).unwrap();
        for byte in 0..SEGMENT_HEADER_BYTES {
            for bit in 0..8 {
                let mut bytes = pristine_bytes.clone();
                bytes[byte] ^= 1 << bit;
                fs::write(&path, &bytes).unwrap();
                let what = format!("{} header byte {byte} bit {bit}", path.display());
                let spot = (path.as_path(), 0, first);
                assert_corrupt(open_read_only_report(&dir), spot, &what);
                assert_corrupt(open_report(&dir), spot, &what);
            }
        }
        fs::write(&path, &pristine_bytes).unwrap();
    }
    recover_and_continue(&dir, 150);
}

// ---------------------------------------------------------------------------
// Missing and left-over segments
// ---------------------------------------------------------------------------

#[test]
fn missing_segments_are_errors_and_leftovers_of_a_roll_over_are_removed() {
    let scratch = Scratch::new("segments");
    let pristine = scratch.trial("pristine");
    let records = 150;
    build(&pristine, records, options());
    let (spots, ends) = record_spots(&pristine);
    let files = segment_files(&pristine);
    let count = files.len();
    assert!(count >= 4);
    assert!(ends[..count - 1].iter().all(|end| end.sealed), "{ends:?}");

    // A segment in the middle is gone.
    let dir = scratch.trial("middle");
    copy_dir(&pristine, &dir);
    fs::remove_file(moved(&files[1], &dir)).unwrap();
    for result in [open_report(&dir), open_read_only_report(&dir)] {
        match result {
            Err(JournalError::MissingSegment {
                index, dir: found, ..
            }) => {
                assert_eq!((index, found), (2, dir.clone()));
            }
            other => panic!("expected MissingSegment 2, got {other:?}"),
        }
    }

    // The last segment is gone: its predecessor's seal says it existed.
    let dir = scratch.trial("last");
    copy_dir(&pristine, &dir);
    fs::remove_file(moved(&files[count - 1], &dir)).unwrap();
    for result in [open_report(&dir), open_read_only_report(&dir)] {
        match result {
            Err(JournalError::MissingSegment { index, .. }) => assert_eq!(index, count as u64),
            other => panic!("expected MissingSegment {count}, got {other:?}"),
        }
    }

    // A stop during roll-over: the new segment has its header and name but
    // no records, and the seal of the one before it was never written.
    let dir = scratch.trial("rolling");
    copy_dir(&pristine, &dir);
    let last = moved(&files[count - 1], &dir);
    let before_last = moved(&files[count - 2], &dir);
    let first_in_last = spots
        .iter()
        .find(|s| s.path == files[count - 1])
        .unwrap()
        .sequence;
    // The last segment's records were never acknowledged (the process
    // stopped as it rolled over, before appending them).
    acknowledge_only_through(&dir, first_in_last - 1);
    edit(&last, |bytes| bytes[SEGMENT_HEADER_BYTES..].fill(0));
    let seal_at = ends[count - 2].end;
    edit(&before_last, |bytes| bytes[seal_at..seal_at + 4].fill(0));
    let (journal, report) = Journal::open_read_only(&dir).unwrap();
    assert_eq!(report.last_sequence, first_in_last - 1);
    assert!(report.removed.contains(&last), "{report:?}");
    assert_eq!(check_contents(&journal), first_in_last - 1);
    drop(journal);
    assert!(last.exists(), "read-only removes nothing");
    let report = recover_and_continue(&dir, first_in_last - 1);
    assert!(report.removed.contains(&last), "{report:?}");
    assert_eq!(report.segments, count - 1, "{report:?}");

    // The same stop, with the new segment's header page lost too.
    let dir = scratch.trial("blank");
    copy_dir(&pristine, &dir);
    acknowledge_only_through(&dir, first_in_last - 1);
    let last = moved(&files[count - 1], &dir);
    edit(&last, |bytes| bytes.fill(0));
    edit(&moved(&files[count - 2], &dir), |bytes| {
        bytes[seal_at..seal_at + 4].fill(0)
    });
    let report = recover_and_continue(&dir, first_in_last - 1);
    assert!(report.removed.contains(&last), "{report:?}");

    // A blank last segment after a sealed one: the seal reached the disk,
    // the new segment's header did not (the two pages are written back in
    // no particular order). The blank segment held nothing.
    let dir = scratch.trial("blank-after-seal");
    copy_dir(&pristine, &dir);
    acknowledge_only_through(&dir, first_in_last - 1);
    let last = moved(&files[count - 1], &dir);
    edit(&last, |bytes| bytes.fill(0));
    let report = recover_and_continue(&dir, first_in_last - 1);
    assert!(report.removed.contains(&last), "{report:?}");
    assert_eq!(
        segment_files(&dir).len(),
        count,
        "one new segment, no duplicate index"
    );

    // An empty last segment after a *sealed* one is the normal state just
    // after a roll-over: kept.
    let dir = scratch.trial("empty-after-seal");
    copy_dir(&pristine, &dir);
    acknowledge_only_through(&dir, first_in_last - 1);
    let last = moved(&files[count - 1], &dir);
    edit(&last, |bytes| bytes[SEGMENT_HEADER_BYTES..].fill(0));
    let report = recover_and_continue(&dir, first_in_last - 1);
    assert!(report.removed.iter().all(|p| *p != last), "{report:?}");
    assert_eq!(report.segments, count, "{report:?}");

    // Prepared segments (`.next`) hold no records: a clean close removes
    // its own, and an open removes any a killed process left, whatever the
    // index.
    let dir = scratch.trial("pending");
    copy_dir(&pristine, &dir);
    assert_eq!(
        pending_files(&dir).len(),
        0,
        "close removes the prepared segment"
    );
    let next_index = segment_files(&dir).len() + 1;
    let left = dir.join(format!("segment-{next_index:08}.next"));
    let stray = dir.join("segment-00000099.next");
    for path in [&left, &stray] {
        fs::write(path, vec![0u8; SEGMENT_BYTES]).unwrap();
    }
    let report = recover_and_continue(&dir, records);
    assert!(
        report.removed.contains(&stray) && report.removed.contains(&left),
        "{report:?}"
    );
    assert!(!stray.exists());
}

/// Journals whose early segments were removed (after a snapshot) start
/// later than 1; a reader asked for 1 starts at the first record present.
#[test]
fn a_segment_whose_seal_never_reached_the_disk_is_continued_by_the_next() {
    // The flusher seals a segment only after its successor's directory
    // entry is durable; a stop in between leaves records, zeros, and a
    // successor that continues the chain.
    let scratch = Scratch::new("unsealed");
    let dir = scratch.trial("journal");
    build(&dir, 200, options());
    let (_, ends) = record_spots(&dir);
    assert!(ends.len() >= 3 && ends[0].sealed && ends[1].sealed);
    for end in &ends[..2] {
        edit(&end.path, |bytes| bytes[end.end..end.end + 4].fill(0));
    }
    let (journal, report) = Journal::open_read_only(&dir).unwrap();
    assert_eq!(report.last_sequence, 200);
    assert_eq!(check_contents(&journal), 200);
    drop(journal);
    recover_and_continue(&dir, 200);

    // Without the seal, a successor that does not continue the chain is
    // corruption named at the end of the records, not a missing seal.
    let first = segment_files(&dir)[0].clone();
    let end = record_spots_end(&fs::read(&first).unwrap());
    edit(&first, |bytes| bytes[end..end + 4].fill(0));
    edit(&segment_files(&dir)[1], |bytes| bytes[24] ^= 1);
    match Journal::open_read_only(&dir).unwrap_err() {
        JournalError::Corrupt {
            segment, offset, ..
        } => assert_eq!((segment, offset), (first, end as u64)),
        other => panic!("{other}"),
    }
}

/// The end of the records of one segment's bytes (where a seal would be).
fn record_spots_end(bytes: &[u8]) -> usize {
    let mut offset = SEGMENT_HEADER_BYTES;
    loop {
        let length = u32_at(bytes, offset);
        if length == 0 || length == SEAL {
            return offset;
        }
        offset += (length as usize).next_multiple_of(RECORD_ALIGNMENT);
    }
}

#[test]
fn a_journal_without_its_first_segments_starts_later() {
    let scratch = Scratch::new("head");
    let dir = scratch.trial("journal");
    build(&dir, 150, options());
    let (spots, _) = record_spots(&dir);
    let files = segment_files(&dir);
    fs::remove_file(&files[0]).unwrap();
    let first = spots.iter().find(|s| s.path == files[1]).unwrap().sequence;
    let (journal, report) = Journal::open(&dir, options()).unwrap();
    assert_eq!((report.first_sequence, report.last_sequence), (first, 150));
    let mut reader = journal.reader(1);
    assert_eq!(reader.next().unwrap().unwrap().sequence, first);
}

// ---------------------------------------------------------------------------
// Roll-over
// ---------------------------------------------------------------------------

/// The offset where the next record goes in the last segment.
fn tail_end(dir: &Path) -> (PathBuf, usize) {
    let (_, ends) = record_spots(dir);
    let last = ends.last().unwrap();
    assert!(!last.sealed);
    (last.path.clone(), last.end)
}

/// Appends a record whose body has `body_bytes` bytes, closes, reopens
/// (which must be clean) and returns the segment file the record is in.
fn append_sized_and_reopen(dir: &Path, body_bytes: usize) -> PathBuf {
    let (mut journal, _) = Journal::open(dir, options()).unwrap();
    let sequence = journal.next_sequence();
    let body = vec![0x5A; body_bytes];
    assert_eq!(journal.append(9, sequence, &body).unwrap(), sequence);
    journal.close().unwrap();
    let (journal, report) = Journal::open(dir, options()).unwrap();
    assert_eq!(report.last_sequence, sequence, "{report:?}");
    assert!(report.torn_tail.is_none(), "{report:?}");
    let mut reader = journal.reader(sequence);
    let record = reader.next().unwrap().unwrap();
    assert_eq!((record.sequence, record.body.len()), (sequence, body_bytes));
    drop(journal);
    let (spots, _) = record_spots(dir);
    spots.last().unwrap().path.clone()
}

/// Appends records to the last segment until at most `ROOM_MAX` bytes are
/// left in it, so that any record of up to `RECORD_BYTES_MAX` bytes can
/// be aimed at the space that is left; returns the segment and its end.
fn fill_segment(dir: &Path) -> (PathBuf, usize) {
    const ROOM_MAX: usize = RECORD_HEADER_BYTES + RECORD_BYTES_MAX + RECORD_ALIGNMENT;
    let (path, mut end) = tail_end(dir);
    while SEGMENT_BYTES - end > ROOM_MAX {
        let body = (SEGMENT_BYTES - end - ROOM_MAX).min(800);
        assert_eq!(append_sized_and_reopen(dir, body), path);
        (_, end) = tail_end(dir);
    }
    (path, end)
}

#[test]
fn records_fill_segments_to_the_seal_and_roll_when_they_do_not_fit() {
    let scratch = Scratch::new("roll");
    let dir = scratch.trial("journal");
    build(&dir, 3, options());
    // Bodies for a record ending `leave` bytes before the segment's end.
    let body_leaving = |end: usize, leave: usize| SEGMENT_BYTES - end - leave - RECORD_HEADER_BYTES;

    // A record that leaves exactly the seal's word stays; then even an
    // empty record does not fit, and the segment is sealed in that word.
    let (path, end) = fill_segment(&dir);
    assert_eq!(
        append_sized_and_reopen(&dir, body_leaving(end, RECORD_ALIGNMENT)),
        path
    );
    assert_eq!(
        tail_end(&dir),
        (path.clone(), SEGMENT_BYTES - RECORD_ALIGNMENT)
    );
    let next = append_sized_and_reopen(&dir, 0);
    assert_ne!(next, path);
    let (_, ends) = record_spots(&dir);
    let sealed = &ends[ends.len() - 2];
    assert!(
        sealed.sealed && sealed.end == SEGMENT_BYTES - RECORD_ALIGNMENT,
        "{sealed:?}"
    );

    // A record that would fill the segment to its last byte leaves no room
    // for the seal: it goes to the next segment, and the one it left is
    // sealed, so every finished segment says that a successor exists.
    let (path, end) = fill_segment(&dir);
    assert_eq!(path, next);
    let next = append_sized_and_reopen(&dir, body_leaving(end, 0));
    assert_ne!(next, path);
    let (_, ends) = record_spots(&dir);
    let sealed = &ends[ends.len() - 2];
    assert_eq!(
        (&sealed.path, sealed.end, sealed.sealed),
        (&path, end, true)
    );

    // A record a word larger than the space left goes to the next segment;
    // one that leaves two words stays, and a record of 0 bytes then rolls.
    let (path, end) = fill_segment(&dir);
    let next = append_sized_and_reopen(&dir, body_leaving(end, 0) + RECORD_ALIGNMENT);
    assert_ne!(next, path);
    let (path, end) = fill_segment(&dir);
    assert_eq!(
        append_sized_and_reopen(&dir, body_leaving(end, 2 * RECORD_ALIGNMENT)),
        path
    );
    assert_ne!(append_sized_and_reopen(&dir, 0), path);

    // Everything reads back across the segments, from every start.
    let (journal, report) = Journal::open(&dir, options()).unwrap();
    assert!(report.segments >= 5, "{report:?}");
    let last = journal.last_sequence();
    for from in 1..=last {
        let mut reader = journal.reader(from);
        let mut expected = from;
        while let Some(record) = reader.next().unwrap() {
            assert_eq!(record.sequence, expected);
            expected += 1;
        }
        assert_eq!(expected, last + 1);
    }
}

#[test]
fn the_largest_record_fits_an_empty_segment_and_one_byte_more_is_refused() {
    let scratch = Scratch::new("largest");
    // The largest record_bytes_max a 4 KiB segment allows: header, record
    // and seal fill it exactly.
    let largest = SEGMENT_BYTES - SEGMENT_HEADER_BYTES - RECORD_HEADER_BYTES - RECORD_ALIGNMENT;
    let options = JournalOptions {
        record_bytes_max: largest,
        ..options()
    };
    let too_big = JournalOptions {
        record_bytes_max: largest + 1,
        ..options
    };
    let dir = scratch.trial("journal");
    assert!(matches!(
        Journal::open(&dir, too_big),
        Err(JournalError::Options(_))
    ));

    let (mut journal, _) = Journal::open(&dir, options).unwrap();
    let big = |sequence: u64| vec![sequence as u8 | 1; largest];
    assert_eq!(journal.append(1, 0, &big(1)).unwrap(), 1);
    assert_eq!(journal.append(1, 0, b"small").unwrap(), 2);
    assert_eq!(journal.append(1, 0, &big(3)).unwrap(), 3);
    match journal.append(1, 0, &vec![7; largest + 1]) {
        Err(JournalError::RecordTooLarge { bytes, bytes_max }) => {
            assert_eq!((bytes, bytes_max), (largest + 1, largest));
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(
        journal.append(1, 0, &big(4)).unwrap(),
        4,
        "a refused record takes no sequence"
    );
    assert_eq!(journal.segments().len(), 4);
    journal.close().unwrap();
    let (journal, report) = Journal::open(&dir, options).unwrap();
    assert_eq!(report.last_sequence, 4);
    assert!(report.torn_tail.is_none());
    let mut reader = journal.reader(1);
    for sequence in 1..=4 {
        let record = reader.next().unwrap().unwrap();
        assert_eq!(record.sequence, sequence);
        if sequence == 2 {
            assert_eq!(record.body, b"small");
        } else {
            assert_eq!(record.body, &big(sequence)[..]);
        }
    }
    assert!(reader.next().unwrap().is_none());
}

// ---------------------------------------------------------------------------
// The operator's truncation
// ---------------------------------------------------------------------------

#[test]
fn truncate_keeps_exactly_the_records_asked_for() {
    let scratch = Scratch::new("truncate");
    let pristine = scratch.trial("pristine");
    let records = 150;
    build(&pristine, records, options());
    let (spots, _) = record_spots(&pristine);
    let files = segment_files(&pristine);
    let first_of = |file: &PathBuf| spots.iter().find(|s| s.path == *file).unwrap().sequence;
    let second_first = first_of(&files[1]);
    let keeps = [
        0,
        1,
        second_first - 1, // the last record of a sealed segment
        second_first,     // the first record of a segment
        second_first + 3,
        records - 1,
        records,
    ];
    for keep in keeps {
        let dir = scratch.trial("trial");
        copy_dir(&pristine, &dir);
        let report = Journal::truncate(&dir, keep).unwrap();
        assert_eq!(report.last_sequence, keep);
        let kept_files: Vec<PathBuf> = files
            .iter()
            .filter(|file| first_of(file) <= keep.max(1))
            .map(|file| moved(file, &dir))
            .collect();
        let expected_removed = if keep == 0 {
            files.len()
        } else {
            files.len() - kept_files.len()
        };
        assert_eq!(
            report.removed_segments.len(),
            expected_removed,
            "keep {keep}: {report:?}"
        );
        assert!(report.removed_segments.iter().all(|p| !p.exists()));
        if keep > 0 {
            assert_eq!(segment_files(&dir), kept_files, "keep {keep}");
        }
        let recovery = recover_and_continue(&dir, keep);
        assert!(recovery.torn_tail.is_none(), "keep {keep}: {recovery:?}");
        // Truncate again, through the journal's new end, with it reopened.
        assert_eq!(
            Journal::truncate(&dir, keep + 1).unwrap().last_sequence,
            keep + 1
        );
    }

    // Past the end.
    let dir = scratch.trial("past");
    copy_dir(&pristine, &dir);
    match Journal::truncate(&dir, records + 1) {
        Err(JournalError::TruncateBeyondEnd { requested, last }) => {
            assert_eq!((requested, last), (records + 1, records));
        }
        other => panic!("expected TruncateBeyondEnd, got {other:?}"),
    }
    recover_and_continue(&dir, records);
}

#[test]
fn truncate_works_when_the_journal_is_corrupt_after_the_point_kept() {
    let scratch = Scratch::new("truncate-corrupt");
    let pristine = scratch.trial("pristine");
    build(&pristine, 150, options());
    let (spots, _) = record_spots(&pristine);
    let files = segment_files(&pristine);
    let dir = scratch.trial("trial");
    copy_dir(&pristine, &dir);
    let keep = spots.iter().find(|s| s.path == files[1]).unwrap().sequence + 2;
    // A record after `keep` in the same segment and a later segment header.
    let victim = spots[keep as usize + 1].clone();
    assert_eq!(victim.path, files[1]);
    edit(&moved(&victim.path, &dir), |bytes| {
        bytes[victim.offset + RECORD_HEADER_BYTES] ^= 1
    });
    edit(&moved(&files[2], &dir), |bytes| bytes[20] ^= 1);
    assert!(matches!(
        open_report(&dir),
        Err(JournalError::Corrupt { .. })
    ));
    let report = Journal::truncate(&dir, keep).unwrap();
    assert_eq!(report.last_sequence, keep);
    recover_and_continue(&dir, keep);
    // Corrupt at or before `keep` is still refused.
    let dir = scratch.trial("before");
    copy_dir(&pristine, &dir);
    let victim = spots[keep as usize - 1].clone();
    edit(&moved(&victim.path, &dir), |bytes| {
        bytes[victim.offset + 9] ^= 1
    });
    assert!(matches!(
        Journal::truncate(&dir, keep),
        Err(JournalError::Corrupt { .. })
    ));
}

// ---------------------------------------------------------------------------
// Lock, readers, durability
// ---------------------------------------------------------------------------

#[test]
fn a_second_writer_is_locked_out() {
    let scratch = Scratch::new("lock");
    let dir = scratch.trial("journal");
    let (mut journal, _) = Journal::open(&dir, options()).unwrap();
    append_next(&mut journal);
    match Journal::open(&dir, options()) {
        Err(JournalError::Locked { path }) => assert_eq!(path, dir.join("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(
        Journal::truncate(&dir, 0),
        Err(JournalError::Locked { .. })
    ));
    // A read-only open takes no lock.
    let (mut read_only, report) = Journal::open_read_only(&dir).unwrap();
    assert_eq!(report.last_sequence, 1);
    assert!(matches!(
        read_only.append(1, 0, b"x"),
        Err(JournalError::ReadOnly)
    ));
    drop(read_only);
    drop(journal);
    let (journal, report) = Journal::open(&dir, options()).unwrap();
    assert_eq!(report.last_sequence, 1);
    assert_eq!(check_contents(&journal), 1);
}

struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Readers on other threads tail the journal while it appends and rolls:
/// each sees every record once, in order, intact.
#[test]
fn tailing_readers_see_every_record_once_while_the_writer_rolls() {
    // Under `fsync` the flusher, not the appender, seals finished segments:
    // readers must cross unsealed boundaries too.
    for durability in [
        Durability::Memory,
        Durability::Fsync {
            flush_delay_us_max: 100,
        },
    ] {
        tailing_readers_under(durability);
    }
}

fn tailing_readers_under(durability: Durability) {
    let scratch = Scratch::new("tail-readers");
    let dir = scratch.trial("journal");
    let records: u64 = 30_000;
    let options = JournalOptions {
        segment_bytes: 32 << 10,
        durability,
        ..options()
    };
    let (mut journal, _) = Journal::open(&dir, options).unwrap();
    let done = AtomicBool::new(false);
    let starts = [1, 1, 12_345];
    let mut readers: Vec<_> = starts.iter().map(|&from| journal.reader(from)).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .iter_mut()
            .zip(starts)
            .map(|(reader, from)| {
                let done = &done;
                scope.spawn(move || {
                    let mut expected = from;
                    // `None` polls after the writer finished: the first may
                    // have raced the last append, a second may not.
                    let mut idle_after_done = 0;
                    while expected <= records {
                        match reader.next().unwrap() {
                            Some(record) => {
                                assert_eq!(record.sequence, expected);
                                assert_eq!(record.record_type, type_for(expected));
                                assert_eq!(record.timestamp_ns, timestamp_for(expected));
                                assert_eq!(record.body, &body_for(expected)[..]);
                                expected += 1;
                            }
                            None => {
                                if done.load(Ordering::Acquire) {
                                    idle_after_done += 1;
                                    assert!(idle_after_done < 2, "stuck before {expected}");
                                }
                                std::thread::yield_now();
                            }
                        }
                    }
                    assert!(reader.next().unwrap().is_none(), "nothing after the last");
                })
            })
            .collect();
        // Set on drop, so that a failing writer stops the readers too
        // instead of leaving them waiting for records that never come.
        let writer_done = SetOnDrop(&done);
        for sequence in 1..=records {
            assert_eq!(append_next(&mut journal), sequence);
            if sequence % 512 == 0 {
                std::thread::yield_now();
            }
        }
        drop(writer_done);
        for handle in handles {
            handle.join().unwrap();
        }
    });
    assert!(
        journal.segments().len() > 20,
        "the writer rolled while they read"
    );
}

#[test]
fn durable_position_follows_the_policy() {
    let scratch = Scratch::new("durable");
    // Memory: durable once appended.
    let dir = scratch.trial("memory");
    let (mut journal, _) = Journal::open(&dir, options()).unwrap();
    let durable = journal.durable();
    assert_eq!(durable.sequence(), 0);
    for _ in 0..200 {
        let sequence = append_next(&mut journal);
        assert_eq!(durable.sequence(), sequence);
    }
    journal.close().unwrap();

    // Fsync: durable follows, never leads, and reaches the last record,
    // across roll-overs and across a reopen.
    let dir = scratch.trial("fsync");
    let fsync = JournalOptions {
        durability: Durability::Fsync {
            flush_delay_us_max: 200,
        },
        ..options()
    };
    for round in 0..2u64 {
        let (mut journal, report) = Journal::open(&dir, fsync).unwrap();
        let durable = journal.durable();
        assert_eq!(
            durable.sequence(),
            report.last_sequence,
            "recovered records are durable"
        );
        let mut last = 0;
        for _ in 0..300 {
            last = append_next(&mut journal);
            assert!(durable.sequence() <= last);
        }
        assert_eq!(last, 300 * (round + 1));
        assert!(
            durable.wait_for(last, Duration::from_secs(10)),
            "round {round}"
        );
        assert_eq!(durable.sequence(), last);
        assert!(!durable.wait_for(last + 1, Duration::from_millis(5)));
        assert!(journal.segments().len() > 5);
        journal.close().unwrap();
    }
}

#[test]
fn read_only_opens_beside_a_live_writer_see_a_sound_journal() {
    // The operator's tools open the journal read-only while the server
    // appends: the moving tail must read as the end, never as damage, and a
    // roll-over between listing and reading must not look like a lost
    // segment.
    let scratch = Scratch::new("live-read");
    let dir = scratch.trial("journal");
    let options = JournalOptions {
        segment_bytes: 256 << 10,
        ..options()
    };
    let (mut journal, _) = Journal::open(&dir, options).unwrap();
    // At least this many records, and more until the reader has opened the
    // journal a few times while it grew (a loaded machine may give the
    // reader little time), up to a bound.
    let records_min: u64 = 60_000;
    let records_max: u64 = 20 * records_min;
    let opens_min = 4;
    let done = AtomicBool::new(false);
    let opens_seen = std::sync::atomic::AtomicU64::new(0);
    let mut written = 0;
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let _done = SetOnDrop(&done);
            let mut appended = 0;
            while appended < records_max
                && (appended < records_min || opens_seen.load(Ordering::Acquire) < opens_min)
            {
                append_next(&mut journal);
                appended += 1;
            }
            appended
        });
        let mut opens = 0;
        while !done.load(Ordering::Acquire) {
            match Journal::open_read_only(&dir) {
                Ok((reader_journal, report)) => {
                    assert!(report.torn_tail.is_none(), "{report:?}");
                    assert_eq!(check_contents(&reader_journal), report.last_sequence);
                }
                // Before the first segment exists.
                Err(JournalError::Io { .. }) if opens == 0 => {}
                Err(error) => panic!("a live journal read as {error}"),
            }
            opens += 1;
            opens_seen.store(opens, Ordering::Release);
        }
        written = writer.join().unwrap();
        assert!(
            opens >= opens_min,
            "only {opens} read-only opens while the writer ran ({written} records)"
        );
    });
    drop(journal);
    let (_, report) = Journal::open_read_only(&dir).unwrap();
    assert_eq!(report.last_sequence, written);
}

// ---------------------------------------------------------------------------
// The durable checkpoint: lost acknowledged records are refused
// ---------------------------------------------------------------------------

/// The refusal of a journal that lost acknowledged records, with the
/// checkpoint's values and a description of what the journal has instead.
#[track_caller]
fn assert_behind_checkpoint(
    result: Result<RecoveryReport, JournalError>,
    sequence: u64,
    found_names: &[&str],
    what: &str,
) {
    match result {
        Err(error @ JournalError::BehindCheckpoint { .. }) => {
            let JournalError::BehindCheckpoint {
                sequence: checkpoint_sequence,
                ref found,
                ..
            } = error
            else {
                unreachable!()
            };
            assert_eq!(checkpoint_sequence, sequence, "{what}: {error}");
            for name in found_names {
                assert!(found.contains(name), "{what}: {found:?} should name {name}");
            }
            let message = error.to_string();
            assert!(
                message.contains("lost durable records")
                    && message.contains(&format!("records sequence {sequence}")),
                "{what}: {message}"
            );
        }
        other => panic!("{what}: expected BehindCheckpoint at {sequence}, got {other:?}"),
    }
}

#[test]
fn a_closed_journal_is_checkpointed_through_its_last_record() {
    let scratch = Scratch::new("checkpoint-close");
    let dir = scratch.trial("journal");
    build(&dir, 40, options());
    let checkpoint = Journal::read_checkpoint(&dir).unwrap().unwrap();
    assert_eq!(checkpoint.sequence, 40);
    let (spots, _) = record_spots(&dir);
    let last = spots.last().unwrap();
    let bytes = fs::read(&last.path).unwrap();
    assert_eq!(
        checkpoint.checksum,
        u32_at(&bytes, last.offset + RECORD_HEADER_BYTES - 4)
    );
    let (journal, _) = Journal::open(&dir, options()).unwrap();
    assert_eq!(journal.checkpoint(), Some(checkpoint));
}

#[test]
fn all_segments_deleted_is_refused() {
    let scratch = Scratch::new("checkpoint-no-segments");
    let dir = scratch.trial("journal");
    build(&dir, 40, options());
    for path in segment_files(&dir) {
        fs::remove_file(path).unwrap();
    }
    for (name, result) in [
        ("read-write", open_report(&dir)),
        ("read-only", open_read_only_report(&dir)),
    ] {
        assert_behind_checkpoint(result, 40, &["no journal segments"], name);
    }
    assert!(segment_files(&dir).is_empty(), "no new journal was begun");
}

/// The last segment cut exactly where a record starts (its bytes zeroed,
/// or the file cut there): a sound, shorter journal, but the checkpoint
/// says the records after the cut were acknowledged.
#[test]
fn a_journal_cut_at_a_record_boundary_is_refused() {
    let scratch = Scratch::new("checkpoint-cut");
    let pristine = scratch.trial("pristine");
    let records = 40;
    build(&pristine, records, options());
    let (spots, _) = record_spots(&pristine);
    for keep in [records - 1, records - 3] {
        let first_lost = &spots[keep as usize];
        for file_cut in [false, true] {
            let what = format!("records after {keep} lost, file cut: {file_cut}");
            let dir = scratch.trial("trial");
            copy_dir(&pristine, &dir);
            let path = moved(&first_lost.path, &dir);
            if file_cut {
                fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(first_lost.offset as u64)
                    .unwrap();
            } else {
                edit(&path, |bytes| bytes[first_lost.offset..].fill(0));
            }
            let name = path.file_name().unwrap().to_str().unwrap();
            let ends_at = format!("ends at sequence {keep}");
            let before = fs::read(&path).unwrap();
            assert_behind_checkpoint(
                open_read_only_report(&dir),
                records,
                &[name, &ends_at],
                &what,
            );
            assert_behind_checkpoint(open_report(&dir), records, &[name, &ends_at], &what);
            if !file_cut {
                assert_eq!(fs::read(&path).unwrap(), before, "{what}: changed");
            }
        }
    }
}

/// A flipped bit in the last record, which is acknowledged: with nothing
/// valid after it, it would look like a torn tail, but it is refused, and
/// nothing is truncated.
#[test]
fn a_flipped_bit_in_an_acknowledged_last_record_is_refused() {
    let scratch = Scratch::new("checkpoint-flip");
    let pristine = scratch.trial("pristine");
    let records = 40;
    build(&pristine, records, options());
    let (spots, _) = record_spots(&pristine);
    let last = spots.last().unwrap().clone();
    for byte in [0, 9, RECORD_HEADER_BYTES + 1, last.length - 1] {
        let dir = scratch.trial("trial");
        copy_dir(&pristine, &dir);
        let path = moved(&last.path, &dir);
        edit(&path, |bytes| bytes[last.offset + byte] ^= 0x10);
        let before = fs::read(&path).unwrap();
        let offset = format!("at offset {}", last.offset);
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let what = format!("byte {byte}");
        assert_behind_checkpoint(
            open_read_only_report(&dir),
            records,
            &[&name, &offset],
            &what,
        );
        assert_behind_checkpoint(open_report(&dir), records, &[&name, &offset], &what);
        assert_eq!(fs::read(&path).unwrap(), before, "{what}: truncated");
    }
}

/// The same damage to a record beyond the checkpoint (appended, never
/// acknowledged) is a torn tail, truncated as before.
#[test]
fn an_unacknowledged_torn_tail_beyond_the_checkpoint_is_truncated() {
    let scratch = Scratch::new("checkpoint-torn");
    let dir = scratch.trial("journal");
    let records = 40;
    build(&dir, records, options());
    acknowledge_only_through(&dir, records - 2);
    let (spots, _) = record_spots(&dir);
    let last = spots.last().unwrap().clone();
    edit(&last.path, |bytes| bytes[last.offset + 9] ^= 0x10);
    let report = recover_and_continue(&dir, records - 1);
    let torn = report.torn_tail.expect("a torn tail");
    assert_eq!((torn.segment, torn.offset), (last.path, last.offset as u64));
    assert_eq!(
        Journal::read_checkpoint(&dir).unwrap().unwrap().sequence,
        records,
        "the close checkpointed the records appended after recovery"
    );
}

#[test]
fn a_missing_or_unreadable_checkpoint_is_refused_once_there_are_records() {
    let scratch = Scratch::new("checkpoint-missing");
    let pristine = scratch.trial("pristine");
    build(&pristine, 40, options());
    for damage in ["deleted", "every copy damaged"] {
        let dir = scratch.trial("trial");
        copy_dir(&pristine, &dir);
        let path = dir.join("CHECKPOINT");
        if damage == "deleted" {
            fs::remove_file(&path).unwrap();
        } else {
            edit(&path, |bytes| {
                for block in bytes.chunks_mut(4096) {
                    block[20] ^= 1;
                }
            });
        }
        for result in [open_report(&dir), open_read_only_report(&dir)] {
            match result {
                Err(JournalError::Checkpoint {
                    path: found,
                    reason,
                }) => {
                    assert_eq!(found, path, "{damage}");
                    assert!(reason.contains("records 1..=40"), "{damage}: {reason}");
                }
                other => panic!("{damage}: expected a Checkpoint error, got {other:?}"),
            }
        }
        // The operator accepts the journal as it is: a deliberate act.
        assert_eq!(Journal::truncate(&dir, 40).unwrap().last_sequence, 40);
        assert_eq!(
            Journal::read_checkpoint(&dir).unwrap().unwrap().sequence,
            40
        );
        recover_and_continue(&dir, 40);
    }
    // A journal with no records yet has nothing to lose: it gets one.
    let dir = scratch.trial("empty");
    build(&dir, 0, options());
    fs::remove_file(dir.join("CHECKPOINT")).unwrap();
    recover_and_continue(&dir, 0);
}

#[test]
fn the_operators_truncation_lowers_the_checkpoint() {
    let scratch = Scratch::new("checkpoint-truncate");
    let dir = scratch.trial("journal");
    build(&dir, 60, options());
    let before = Journal::read_checkpoint(&dir).unwrap().unwrap();
    Journal::truncate(&dir, 25).unwrap();
    let after = Journal::read_checkpoint(&dir).unwrap().unwrap();
    assert_eq!(after.sequence, 25);
    assert!(after.generation > before.generation);
    recover_and_continue(&dir, 25);
    Journal::truncate(&dir, 0).unwrap();
    assert_eq!(Journal::read_checkpoint(&dir).unwrap().unwrap().sequence, 0);
    recover_and_continue(&dir, 0);
}

/// The flusher advances the checkpoint as durability advances, under
/// either policy, while the journal is open.
#[test]
fn the_checkpoint_follows_durability_while_open() {
    let scratch = Scratch::new("checkpoint-live");
    for durability in [
        Durability::Fsync {
            flush_delay_us_max: 200,
        },
        Durability::Memory,
    ] {
        let dir = scratch.trial("journal");
        let options = JournalOptions {
            durability,
            ..options()
        };
        let (mut journal, _) = Journal::open(&dir, options).unwrap();
        for _ in 0..50 {
            append_next(&mut journal);
        }
        assert!(journal.durable().wait_for(50, Duration::from_secs(10)));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Journal::read_checkpoint(&dir).unwrap().unwrap().sequence < 50 {
            assert!(
                std::time::Instant::now() < deadline,
                "{durability:?}: the checkpoint stays at {:?}",
                journal.checkpoint()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(journal.checkpoint().unwrap().sequence, 50);
        journal.close().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Format versions
// ---------------------------------------------------------------------------

/// Sets a little-endian u32 at `offset` and recomputes the header crc over
/// `0..60` into `60..64` (segment and snapshot headers, checkpoint copies).
fn set_version_and_reseal(bytes: &mut [u8], version: u32) {
    bytes[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..60]);
    bytes[60..64].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn another_format_version_is_incompatible_not_corrupt() {
    let scratch = Scratch::new("version");
    let pristine = scratch.trial("pristine");
    build(&pristine, 40, options());
    let files = segment_files(&pristine);
    for (name, version) in [("older", 1u32), ("newer", 3)] {
        let dir = scratch.trial("trial");
        copy_dir(&pristine, &dir);
        let first = moved(&files[0], &dir);
        edit(&first, |bytes| set_version_and_reseal(bytes, version));
        for result in [open_report(&dir), open_read_only_report(&dir)] {
            match result {
                Err(error @ JournalError::IncompatibleVersion { .. }) => {
                    assert!(
                        error.to_string().contains(&format!(
                            "incompatible journal version {version}, this build reads 2"
                        )),
                        "{name}: {error}"
                    );
                }
                other => panic!("{name}: expected IncompatibleVersion, got {other:?}"),
            }
        }
        // A checkpoint of another version is refused the same way.
        let dir = scratch.trial("checkpoint");
        copy_dir(&pristine, &dir);
        edit(&dir.join("CHECKPOINT"), |bytes| {
            set_version_and_reseal(&mut bytes[..64], version + 1)
        });
        assert!(matches!(
            open_report(&dir),
            Err(JournalError::IncompatibleVersion { found, supported: 1, .. }) if found == version + 1
        ));
    }
    // A snapshot of another version is not a damaged snapshot passed over.
    let dir = scratch.trial("snapshot");
    copy_dir(&pristine, &dir);
    let store = journal::SnapshotStore::new(&dir);
    let info = store.write(40, 40_007, 0xABCD, b"state").unwrap();
    edit(&info.path, |bytes| set_version_and_reseal(bytes, 9));
    match store.newest_valid(u64::MAX) {
        Err(error @ JournalError::IncompatibleVersion { found: 9, .. }) => {
            assert!(error.to_string().contains("incompatible journal version 9"));
        }
        other => panic!("expected IncompatibleVersion, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The lock
// ---------------------------------------------------------------------------

/// Deleting `LOCK` while a writer lives does not let a second one in: the
/// directory itself is locked (`flock` locks belong to the open file
/// description, so a second open in this process is refused as a second
/// process would be; `tools/tests/journal_cli.rs` tries one).
#[test]
fn a_deleted_lock_file_does_not_let_a_second_writer_in() {
    let scratch = Scratch::new("lock-deleted");
    let dir = scratch.trial("journal");
    let (mut journal, _) = Journal::open(&dir, options()).unwrap();
    append_next(&mut journal);
    fs::remove_file(dir.join("LOCK")).unwrap();
    match Journal::open(&dir, options()) {
        Err(error @ JournalError::Locked { .. }) => {
            let JournalError::Locked { ref path } = error else {
                unreachable!()
            };
            assert_eq!(path, &dir);
            assert!(error.to_string().contains("open for writing"), "{error}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(
        Journal::truncate(&dir, 0),
        Err(JournalError::Locked { .. })
    ));
    assert!(journal::writer_holds_lock(&dir));
    drop(journal);
    assert!(!journal::writer_holds_lock(&dir));
    let (journal, report) = Journal::open(&dir, options()).unwrap();
    assert_eq!(report.last_sequence, 1);
    assert_eq!(check_contents(&journal), 1);
}

// ---------------------------------------------------------------------------
// Followers: the pre-sequenced append
// ---------------------------------------------------------------------------

/// A follower copies the leader's journal record by record, terms
/// included: the two journals hold the same records and the same bytes.
#[test]
fn a_replicated_copy_is_byte_identical_and_a_broken_chain_is_refused() {
    let scratch = Scratch::new("replicated");
    let leader_dir = scratch.trial("leader");
    let follower_dir = scratch.trial("follower");
    let records = 150;
    let (mut leader, _) = Journal::open(&leader_dir, options()).unwrap();
    for sequence in 1..=records {
        if sequence % 40 == 0 {
            leader.set_term(sequence / 40).unwrap();
        }
        append_next(&mut leader);
    }
    assert_eq!(leader.term(), 3);
    assert!(leader.set_term(2).is_err(), "terms never go back");
    let (mut follower, _) = Journal::open(&follower_dir, options()).unwrap();
    let mut reader = leader.reader(1);
    let mut copied = Vec::new();
    while let Some(record) = reader.next().unwrap() {
        assert_eq!(record.term, record.sequence / 40, "{}", record.sequence);
        assert_eq!(
            follower.append_replicated(record.bytes).unwrap(),
            record.sequence
        );
        copied.push(record.bytes.to_vec());
    }
    assert_eq!(follower.term(), 3);
    assert_eq!(check_contents(&follower), records);

    let next_bytes = |leader: &mut Journal| {
        append_next(leader);
        let mut reader = leader.reader(leader.last_sequence());
        reader.next().unwrap().unwrap().bytes.to_vec()
    };
    let next = next_bytes(&mut leader);
    let refused = |follower: &mut Journal, bytes: &[u8], what: &str| match follower
        .append_replicated(bytes)
    {
        Err(JournalError::ReplicatedRecord { expected, reason }) => {
            assert_eq!(expected, records + 1, "{what}: {reason}");
        }
        other => panic!("{what}: expected ReplicatedRecord, got {other:?}"),
    };
    // A record already there (wrong sequence), a changed byte (checksum),
    // cut short, and a record of another history (its link is wrong).
    refused(&mut follower, &copied[10], "an old record");
    let mut flipped = next.clone();
    flipped[RECORD_HEADER_BYTES] ^= 1;
    refused(&mut follower, &flipped, "a flipped body bit");
    refused(&mut follower, &next[..next.len() - 1], "cut short");
    let other_dir = scratch.trial("other");
    let (mut other, _) = Journal::open(&other_dir, options()).unwrap();
    for bytes in &copied[..records as usize - 1] {
        other.append_replicated(bytes).unwrap();
    }
    other.append(9, 1, b"another history").unwrap();
    let mut other_reader = other.reader(records);
    let foreign = other_reader.next().unwrap().unwrap().bytes.to_vec();
    drop(other_reader);
    other.append(9, 2, b"its next record").unwrap();
    let mut other_reader = other.reader(records + 1);
    let foreign_next = other_reader.next().unwrap().unwrap().bytes.to_vec();
    assert_ne!(foreign, copied[records as usize - 1]);
    refused(&mut follower, &foreign_next, "another history's record");
    // Refusals changed nothing: the right record still goes in.
    assert_eq!(follower.append_replicated(&next).unwrap(), records + 1);
    leader.close().unwrap();
    follower.close().unwrap();

    let leader_files = segment_files(&leader_dir);
    let follower_files = segment_files(&follower_dir);
    assert_eq!(leader_files.len(), follower_files.len());
    for (a, b) in leader_files.iter().zip(&follower_files) {
        assert_eq!(a.file_name(), b.file_name());
        assert!(
            fs::read(a).unwrap() == fs::read(b).unwrap(),
            "{a:?} differs"
        );
    }
    assert_eq!(
        Journal::read_checkpoint(&leader_dir)
            .unwrap()
            .map(|c| (c.sequence, c.checksum, c.term)),
        Journal::read_checkpoint(&follower_dir)
            .unwrap()
            .map(|c| (c.sequence, c.checksum, c.term)),
    );
}

// ---------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------

#[test]
fn retention_removes_or_archives_whole_segments_before_a_sequence() {
    let scratch = Scratch::new("retention");
    let dir = scratch.trial("journal");
    build(&dir, 300, options());
    let before = segment_files(&dir);
    assert!(before.len() >= 4, "{} segments", before.len());
    let first_sequence = |path: &Path| -> u64 {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        name.trim_end_matches(".journal")
            .rsplit('-')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // Through sequence 150: the segments wholly at or before it go; the
    // one holding 150 and 151 stays.
    let archive = scratch.trial("archive");
    let removed = Journal::remove_through(&dir, 150, Some(&archive)).unwrap();
    assert!(!removed.is_empty());
    let after = segment_files(&dir);
    assert_eq!(removed.len() + after.len(), before.len());
    let first_left = first_sequence(&after[0]);
    assert!(first_left <= 151, "the segment of 151 stays: {after:?}");
    for path in &removed {
        assert!(archive.join(path.file_name().unwrap()).exists(), "archived");
    }
    // The journal opens, starts later, holds the rest and appends on.
    let (mut journal, _) = Journal::open(&dir, options()).unwrap();
    assert_eq!(journal.last_sequence(), 300);
    let mut reader = journal.reader(1);
    let first = reader.next().unwrap().unwrap().sequence;
    assert_eq!(first, first_left);
    assert_eq!(append_next(&mut journal), 301);
    journal.close().unwrap();
    // Removing through the end keeps the last segment.
    Journal::remove_through(&dir, u64::MAX, None).unwrap();
    assert_eq!(segment_files(&dir).len(), 1);
    let (journal, _) = Journal::open(&dir, options()).unwrap();
    assert_eq!(journal.last_sequence(), 301);
    journal.close().unwrap();
}

/// The term of record `sequence` (Raft's consistency check compares it).
fn term_at(journal: &Journal, sequence: u64) -> u64 {
    let mut reader = journal.reader(sequence);
    reader.next().unwrap().expect("a record").term
}

/// Raft's log repair, done with the journal's own operations: a deposed
/// leader holds records of its term that never reached a majority; the new
/// leader's records conflict with them from the first uncommitted one. The
/// follower finds the last record whose term matches, closes, truncates
/// after it, reopens and copies the new leader's records: both journals
/// then hold the same bytes, and the new term.
#[test]
fn a_deposed_leaders_uncommitted_suffix_is_cut_and_the_new_leaders_records_follow() {
    let scratch = Scratch::new("raft-repair");
    let old_dir = scratch.trial("old-leader");
    let new_dir = scratch.trial("new-leader");
    let committed = 80;
    // The old leader, term 1: records 1..=80 reach the new leader (a
    // majority), 81..=90 stay its own.
    let (mut old, _) = Journal::open(&old_dir, options()).unwrap();
    old.set_term(1).unwrap();
    for _ in 1..=committed {
        append_next(&mut old);
    }
    let (mut new, _) = Journal::open(&new_dir, options()).unwrap();
    let mut reader = old.reader(1);
    while let Some(record) = reader.next().unwrap() {
        new.append_replicated(record.bytes).unwrap();
    }
    drop(reader);
    for sequence in committed + 1..=committed + 10 {
        let body = format!("uncommitted {sequence}");
        old.append(9, timestamp_for(sequence), body.as_bytes())
            .unwrap();
    }
    // The new leader, term 2, appends its own 81..=95.
    new.set_term(2).unwrap();
    for _ in committed + 1..=committed + 15 {
        append_next(&mut new);
    }
    // The consistency check: the terms agree at 80 and differ from 81.
    assert_eq!(term_at(&old, committed), term_at(&new, committed));
    assert_eq!(
        (term_at(&old, committed + 1), term_at(&new, committed + 1)),
        (1, 2)
    );
    let mut leader_reader = new.reader(committed + 1);
    let first = leader_reader.next().unwrap().unwrap().bytes.to_vec();
    drop(leader_reader);
    assert!(
        old.append_replicated(&first).is_err(),
        "a conflicting record is refused while the suffix is there"
    );
    // The repair.
    old.close().unwrap();
    let report = Journal::truncate(&old_dir, committed).unwrap();
    assert_eq!(report.last_sequence, committed);
    let (mut old, recovery) = Journal::open(&old_dir, options()).unwrap();
    assert_eq!(recovery.last_sequence, committed);
    assert_eq!(old.term(), 1);
    let mut reader = new.reader(committed + 1);
    while let Some(record) = reader.next().unwrap() {
        assert_eq!(
            old.append_replicated(record.bytes).unwrap(),
            record.sequence
        );
    }
    drop(reader);
    assert_eq!(old.term(), 2);
    assert_eq!(check_contents(&old), committed + 15);
    old.close().unwrap();
    new.close().unwrap();
    let (old_files, new_files) = (segment_files(&old_dir), segment_files(&new_dir));
    assert_eq!(old_files.len(), new_files.len());
    for (a, b) in old_files.iter().zip(&new_files) {
        assert!(
            fs::read(a).unwrap() == fs::read(b).unwrap(),
            "{a:?} differs"
        );
    }
}
