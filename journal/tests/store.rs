//! The message store against a model (a `Vec` of what was appended live):
//! replay from every sequence after a close and reopen, after a cut tail, a
//! flipped byte in the tail or in a closed segment, after
//! `truncate_after_origin`; the memory held stays at its bound; proptest
//! sequences of appends, reads, truncations and reopens, with and without
//! a write-behind writer (stepped between operations, or on a thread of its
//! own).
//!
//! Small segments (2 KiB) and a small cache (4 KiB) so that segments roll
//! and most reads miss the cache and go to the files.
//!
//! Run: `cargo test -p journal --test store`.

use std::fs;
use std::path::{Path, PathBuf};

use journal::{MessageStore, StoreError, StoreOptions, StoreRecovery, StoreWriter};
use proptest::prelude::*;

const RECORD_HEADER_BYTES: u64 = 32;
const SEGMENT_HEADER_BYTES: u64 = 32;

fn options() -> StoreOptions {
    StoreOptions {
        segment_bytes_max: 2048,
        message_bytes_max: 300,
        cache_bytes_max: 4096,
    }
}

/// A directory removed when the test passes (kept on failure).
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("journal-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// xorshift64*: a seeded generator, printed on failure by the callers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// What was appended: (origin, bytes) for message i + 1.
type Model = Vec<(u64, Vec<u8>)>;

/// Appends `count` messages of 0..=120 bytes (sometimes up to 300), origins
/// increasing by 0..=2.
fn append_random(store: &mut MessageStore, model: &mut Model, rng: &mut Rng, count: usize) {
    let mut origin = model.last().map_or(1, |(origin, _)| *origin);
    for _ in 0..count {
        origin += rng.below(3);
        let length = if rng.below(20) == 0 {
            rng.below(301)
        } else {
            rng.below(121)
        };
        let bytes: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
        let sequence = store.append(origin, &bytes).unwrap();
        model.push((origin, bytes));
        assert_eq!(sequence, model.len() as u64);
    }
}

/// Every message by `get`, and by a reader from every sequence (the first
/// `span` messages of each, and one reader to the end).
fn check_against(store: &MessageStore, model: &[(u64, Vec<u8>)], span: usize) {
    assert_eq!(store.last_sequence(), model.len() as u64);
    assert_eq!(
        store.last_origin(),
        model.last().map_or(0, |(origin, _)| *origin)
    );
    assert!(store.get(0).unwrap().is_none());
    assert!(store.get(model.len() as u64 + 1).unwrap().is_none());
    for (index, (origin, bytes)) in model.iter().enumerate() {
        let sequence = index as u64 + 1;
        let message = store.get(sequence).unwrap().expect("stored");
        assert_eq!(
            (message.sequence, message.origin, &*message.bytes),
            (sequence, *origin, &bytes[..]),
            "get({sequence})"
        );
    }
    for from in 1..=model.len() + 1 {
        let mut reader = store.reader(from as u64);
        let to = if from == 1 {
            model.len()
        } else {
            (from - 1 + span).min(model.len())
        };
        for expected in from..=to {
            let message = reader.next().unwrap().expect("a message");
            let (origin, bytes) = &model[expected - 1];
            assert_eq!(
                (message.sequence, message.origin, &*message.bytes),
                (expected as u64, *origin, &bytes[..]),
                "reader from {from}"
            );
        }
        if to == model.len() {
            assert!(
                reader.next().unwrap().is_none(),
                "reader from {from} past the end"
            );
        }
    }
}

fn open(dir: &Path) -> (MessageStore, StoreRecovery) {
    MessageStore::open(dir, options()).unwrap()
}

/// The data files of a store, in order.
fn data_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "msg"))
        .collect();
    files.sort();
    files
}

/// Where each message of the last segment starts, from the file's layout
/// (the record header's length field), and the segment's first sequence.
fn record_offsets(path: &Path) -> (u64, Vec<u64>) {
    let bytes = fs::read(path).unwrap();
    let first = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    let mut offsets = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES as usize;
    while offset < bytes.len() {
        offsets.push(offset as u64);
        let length = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap());
        offset += RECORD_HEADER_BYTES as usize + length as usize;
    }
    (first, offsets)
}

#[test]
fn replay_from_every_sequence_after_a_reopen_equals_what_was_appended() {
    let scratch = Scratch::new("reopen");
    let mut rng = Rng(0x5EED_0001);
    let mut model = Model::new();
    let (mut store, recovery) = open(&scratch.path);
    assert_eq!(recovery, StoreRecovery::default());
    append_random(&mut store, &mut model, &mut rng, 600);
    check_against(&store, &model, 40);
    store.close().unwrap();
    assert!(data_files(&scratch.path).len() > 10, "segments rolled");

    let (mut store, recovery) = open(&scratch.path);
    assert_eq!(recovery.last_sequence, 600);
    assert_eq!(recovery.last_origin, model[599].0);
    assert_eq!(
        (recovery.truncated_bytes, recovery.segments_removed),
        (0, 0)
    );
    assert_eq!(recovery.index_entries_rebuilt, 0);
    check_against(&store, &model, 40);
    // Appends continue after the reopen, and a drop without close flushes.
    append_random(&mut store, &mut model, &mut rng, 150);
    check_against(&store, &model, 10);
    drop(store);
    let (store, recovery) = open(&scratch.path);
    assert_eq!(recovery.last_sequence, 750);
    check_against(&store, &model, 10);
}

#[test]
fn a_cut_tail_is_truncated_to_the_last_whole_message() {
    let scratch = Scratch::new("cut");
    let mut rng = Rng(0x5EED_0002);
    let mut model = Model::new();
    let (mut store, _) = open(&scratch.path);
    append_random(&mut store, &mut model, &mut rng, 200);
    store.close().unwrap();
    let last = data_files(&scratch.path).pop().unwrap();
    let original = fs::read(&last).unwrap();
    let (first, offsets) = record_offsets(&last);
    let trial = scratch.path.with_extension("trial");
    for cut in (SEGMENT_HEADER_BYTES..original.len() as u64).step_by(7) {
        let _ = fs::remove_dir_all(&trial);
        copy_dir(&scratch.path, &trial);
        let cut_file = trial.join(last.file_name().unwrap());
        fs::OpenOptions::new()
            .write(true)
            .open(&cut_file)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let whole = offsets.iter().enumerate().filter(|(index, _)| {
            let end = offsets
                .get(index + 1)
                .copied()
                .unwrap_or(original.len() as u64);
            end <= cut
        });
        let kept = first - 1 + whole.count() as u64;
        let (store, recovery) = MessageStore::open(&trial, options()).unwrap();
        assert_eq!(recovery.last_sequence, kept, "cut at {cut}");
        assert_eq!(
            recovery.last_origin,
            model[kept as usize - 1].0,
            "cut at {cut}"
        );
        check_against(&store, &model[..kept as usize], 3);
    }
    let _ = fs::remove_dir_all(&trial);
}

#[test]
fn a_flipped_byte_in_the_tail_cuts_the_store_before_that_message() {
    let scratch = Scratch::new("flip");
    let mut rng = Rng(0x5EED_0003);
    let mut model = Model::new();
    let (mut store, _) = open(&scratch.path);
    append_random(&mut store, &mut model, &mut rng, 200);
    store.close().unwrap();
    let last = data_files(&scratch.path).pop().unwrap();
    let original = fs::read(&last).unwrap();
    let (first, offsets) = record_offsets(&last);
    let trial = scratch.path.with_extension("trial");
    for (index, &offset) in offsets.iter().enumerate() {
        let end = offsets
            .get(index + 1)
            .copied()
            .unwrap_or(original.len() as u64);
        let at = offset + rng.below(end - offset);
        let _ = fs::remove_dir_all(&trial);
        copy_dir(&scratch.path, &trial);
        let mut damaged = original.clone();
        damaged[at as usize] ^= 1 << rng.below(8);
        fs::write(trial.join(last.file_name().unwrap()), &damaged).unwrap();
        let (store, recovery) = MessageStore::open(&trial, options()).unwrap();
        let kept = first - 1 + index as u64;
        assert_eq!(recovery.last_sequence, kept, "flip at {at}");
        if index == 0 {
            // Nothing valid left in the segment: it goes.
            assert_eq!(
                (recovery.segments_removed, recovery.truncated_bytes),
                (1, 0)
            );
        } else {
            assert_eq!(recovery.truncated_bytes, original.len() as u64 - offset);
        }
        check_against(&store, &model[..kept as usize], 3);
    }
    let _ = fs::remove_dir_all(&trial);
}

#[test]
fn damage_in_a_closed_segment_makes_it_the_last() {
    let scratch = Scratch::new("closed");
    let mut rng = Rng(0x5EED_0004);
    let mut model = Model::new();
    let (mut store, _) = open(&scratch.path);
    append_random(&mut store, &mut model, &mut rng, 300);
    store.close().unwrap();
    let files = data_files(&scratch.path);
    let third = &files[2];
    let (first, offsets) = record_offsets(third);
    let mut bytes = fs::read(third).unwrap();
    let last_offset = *offsets.last().unwrap();
    let at = last_offset as usize + 33.min(bytes.len() - 1 - last_offset as usize);
    bytes[at] ^= 0x10;
    fs::write(third, &bytes).unwrap();
    let (store, recovery) = open(&scratch.path);
    let kept = first - 1 + offsets.len() as u64 - 1;
    assert_eq!(recovery.last_sequence, kept);
    assert_eq!(recovery.segments_removed, files.len() as u64 - 3);
    check_against(&store, &model[..kept as usize], 3);
    assert_eq!(data_files(&scratch.path).len(), 3);
}

#[test]
fn a_lost_or_damaged_index_is_rebuilt_from_the_records() {
    let scratch = Scratch::new("index");
    let mut rng = Rng(0x5EED_0005);
    let mut model = Model::new();
    let (mut store, _) = open(&scratch.path);
    append_random(&mut store, &mut model, &mut rng, 120);
    store.close().unwrap();
    let index = data_files(&scratch.path)
        .pop()
        .unwrap()
        .with_extension("idx");
    let entries = fs::metadata(&index).unwrap().len() / 4;
    fs::write(&index, []).unwrap();
    let (store, recovery) = open(&scratch.path);
    assert_eq!(
        (recovery.last_sequence, recovery.index_entries_rebuilt),
        (120, entries)
    );
    check_against(&store, &model, 5);
    drop(store);
    let mut bytes = fs::read(&index).unwrap();
    bytes[4] ^= 0xFF;
    fs::write(&index, &bytes).unwrap();
    let (store, recovery) = open(&scratch.path);
    assert_eq!(
        (recovery.last_sequence, recovery.index_entries_rebuilt),
        (120, entries - 1)
    );
    check_against(&store, &model, 5);
}

#[test]
fn truncate_after_origin_keeps_the_prefix_the_journal_recovered() {
    let scratch = Scratch::new("truncate");
    let mut rng = Rng(0x5EED_0006);
    let mut model = Model::new();
    let (mut store, _) = open(&scratch.path);
    append_random(&mut store, &mut model, &mut rng, 400);
    // Back to a random origin, several times, appending in between.
    for _ in 0..12 {
        let origin = model[0].0 - 1 + rng.below(model.last().unwrap().0 - model[0].0 + 3);
        let kept = model.iter().filter(|(found, _)| *found <= origin).count();
        assert_eq!(
            store.truncate_after_origin(origin).unwrap(),
            kept as u64,
            "origin {origin}"
        );
        model.truncate(kept);
        check_against(&store, &model, 2);
        let count = rng.below(60) as usize;
        append_random(&mut store, &mut model, &mut rng, count);
        if rng.below(2) == 0 {
            drop(store);
            let (reopened, recovery) = open(&scratch.path);
            assert_eq!(recovery.last_sequence, model.len() as u64);
            store = reopened;
        }
    }
    check_against(&store, &model, 5);
    assert!(matches!(
        store.truncate_after_sequence(model.len() as u64 + 1),
        Err(StoreError::TruncateBeyondEnd { .. })
    ));
    store.truncate_after_sequence(0).unwrap();
    assert!(store.is_empty());
    assert!(data_files(&scratch.path).is_empty());
    model.clear();
    append_random(&mut store, &mut model, &mut rng, 30);
    check_against(&store, &model, 5);
}

#[test]
fn an_ended_store_refuses_appends_until_a_message_is_truncated() {
    let scratch = Scratch::new("end");
    let (mut store, _) = open(&scratch.path);
    store.end().unwrap();
    drop(store);
    let (mut store, recovery) = open(&scratch.path);
    assert!(recovery.ended && store.is_ended());
    assert!(matches!(
        store.append(1, b"x"),
        Err(StoreError::Ended { .. })
    ));
    store.truncate_after_sequence(0).unwrap();
    assert!(store.is_ended(), "no message went: the end stays");
    drop(store);
    fs::remove_dir_all(&scratch.path).unwrap();

    let mut rng = Rng(0x5EED_0007);
    let mut model = Model::new();
    let (mut store, _) = open(&scratch.path);
    append_random(&mut store, &mut model, &mut rng, 50);
    store.end().unwrap();
    assert!(matches!(
        store.append(1_000, b"x"),
        Err(StoreError::Ended { .. })
    ));
    drop(store);
    let (mut store, recovery) = open(&scratch.path);
    assert_eq!((recovery.last_sequence, recovery.ended), (50, true));
    check_against(&store, &model, 5);
    store.truncate_after_sequence(49).unwrap();
    assert!(!store.is_ended());
    model.truncate(49);
    append_random(&mut store, &mut model, &mut rng, 5);
    drop(store);
    let (store, recovery) = open(&scratch.path);
    assert_eq!((recovery.last_sequence, recovery.ended), (54, false));
    check_against(&store, &model, 5);
}

#[test]
fn appends_are_checked() {
    let scratch = Scratch::new("checks");
    let (mut store, _) = open(&scratch.path);
    store.append(5, b"a").unwrap();
    assert!(matches!(
        store.append(4, b"b"),
        Err(StoreError::OriginDecreasing {
            origin: 4,
            last_origin: 5
        })
    ));
    assert!(matches!(
        store.append(5, &[0; 301]),
        Err(StoreError::MessageTooLarge {
            bytes: 301,
            bytes_max: 300
        })
    ));
    assert_eq!(store.append(5, &[7; 300]).unwrap(), 2);
    let bad = StoreOptions {
        segment_bytes_max: 10,
        ..options()
    };
    assert!(matches!(
        MessageStore::open(&scratch.path, bad),
        Err(StoreError::Options(_))
    ));
}

#[test]
fn memory_stays_at_the_configured_bound_over_a_long_run() {
    memory_stays_at_the_bound(None);
    let writer = StoreWriter::new();
    memory_stays_at_the_bound(Some(&writer));
    assert!(writer.stats().handed_off > 100);
}

/// 200,000 appends, a read every thousand; with `writer`, stepped every
/// hundred appends.
fn memory_stays_at_the_bound(writer: Option<&StoreWriter>) {
    let scratch = Scratch::new(&format!("memory-{}", writer.is_some()));
    let mut rng = Rng(0x5EED_0008);
    let options = StoreOptions {
        segment_bytes_max: 1 << 20,
        message_bytes_max: 300,
        cache_bytes_max: 64 << 10,
    };
    let (mut store, _) = match writer {
        Some(writer) => {
            MessageStore::open_with_writer(&scratch.path, options, writer.clone()).unwrap()
        }
        None => MessageStore::open(&scratch.path, options).unwrap(),
    };
    let resident = store.resident_bytes();
    assert!(resident <= options.cache_bytes_max && resident > options.cache_bytes_max / 2);
    let mut origin = 1;
    for round in 0..200_000u64 {
        origin += rng.below(2);
        let length = rng.below(60) as usize;
        let bytes = vec![round as u8; length];
        store.append(origin, &bytes).unwrap();
        if let Some(writer) = writer
            && round % 100 == 0
        {
            writer.step();
        }
        if round % 1_000 == 0 {
            let sequence = 1 + rng.below(store.last_sequence());
            let message = store.get(sequence).unwrap().expect("stored");
            assert_eq!(
                message.bytes.first(),
                (!message.bytes.is_empty()).then_some(&((sequence - 1) as u8))
            );
            assert_eq!(store.resident_bytes(), resident, "after {round} messages");
        }
    }
    assert_eq!(store.resident_bytes(), resident);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[derive(Clone, Debug)]
enum Operation {
    Append {
        origin_step: u64,
        length: usize,
    },
    Get {
        sequence: u64,
    },
    Read {
        from: u64,
        count: usize,
    },
    TruncateAfterOrigin {
        back: u64,
    },
    Flush,
    FlushBehind,
    /// Steps of the writer (none when the store has none).
    Steps {
        count: usize,
    },
    Reopen,
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        8 => (0..3u64, 0..200usize).prop_map(|(origin_step, length)| Operation::Append { origin_step, length }),
        3 => (0..400u64).prop_map(|sequence| Operation::Get { sequence }),
        2 => (0..400u64, 0..50usize).prop_map(|(from, count)| Operation::Read { from, count }),
        1 => (0..40u64).prop_map(|back| Operation::TruncateAfterOrigin { back }),
        1 => Just(Operation::Flush),
        1 => Just(Operation::FlushBehind),
        3 => (0..6usize).prop_map(|count| Operation::Steps { count }),
        1 => Just(Operation::Reopen),
    ]
}

/// Opens with `writer` if there is one.
fn open_with(dir: &Path, writer: Option<&StoreWriter>) -> (MessageStore, StoreRecovery) {
    match writer {
        Some(writer) => MessageStore::open_with_writer(dir, options(), writer.clone()).unwrap(),
        None => open(dir),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn operations_agree_with_a_vector(
        behind in any::<bool>(),
        operations in proptest::collection::vec(operation(), 1..250),
    ) {
        let scratch = Scratch::new(&format!("proptest-{:?}", std::thread::current().id()));
        let _ = fs::remove_dir_all(&scratch.path);
        let writer = behind.then(StoreWriter::new);
        let (mut store, _) = open_with(&scratch.path, writer.as_ref());
        let mut model = Model::new();
        for operation in operations {
            match operation {
                Operation::Append { origin_step, length } => {
                    let origin = model.last().map_or(1, |(origin, _)| *origin) + origin_step;
                    let bytes = vec![(model.len() % 251) as u8; length];
                    prop_assert_eq!(store.append(origin, &bytes).unwrap(), model.len() as u64 + 1);
                    model.push((origin, bytes));
                }
                Operation::Get { sequence } => {
                    let found = store.get(sequence).unwrap().map(|message| (message.origin, message.bytes.into_owned()));
                    let expected = sequence.checked_sub(1).and_then(|index| model.get(index as usize)).cloned();
                    prop_assert_eq!(found, expected);
                }
                Operation::Read { from, count } => {
                    let mut reader = store.reader(from);
                    for expected in from.max(1)..from.max(1) + count as u64 {
                        let found = reader.next().unwrap().map(|message| (message.origin, message.bytes.into_owned()));
                        prop_assert_eq!(found, model.get(expected as usize - 1).cloned());
                    }
                }
                Operation::TruncateAfterOrigin { back } => {
                    let origin = store.last_origin().saturating_sub(back);
                    let kept = model.iter().filter(|(found, _)| *found <= origin).count();
                    prop_assert_eq!(store.truncate_after_origin(origin).unwrap(), kept as u64);
                    model.truncate(kept);
                }
                Operation::Flush => store.flush().unwrap(),
                Operation::FlushBehind => store.flush_behind().unwrap(),
                Operation::Steps { count } => {
                    for _ in 0..count {
                        if let Some(writer) = &writer {
                            writer.step();
                        }
                    }
                }
                Operation::Reopen => {
                    drop(store);
                    let (reopened, recovery) = open_with(&scratch.path, writer.as_ref());
                    prop_assert_eq!(recovery.last_sequence, model.len() as u64);
                    store = reopened;
                }
            }
        }
        check_against(&store, &model, 3);
    }
}

/// Every message of `store` from 1, as (origin, bytes).
fn read_all(store: &MessageStore) -> Model {
    let mut reader = store.reader(1);
    let mut all = Vec::new();
    while let Some(message) = reader.next().unwrap() {
        all.push((message.origin, message.bytes.into_owned()));
    }
    all
}

/// A writer stepping on a thread of its own while the store appends, reads
/// and flushes: every read agrees with the model, and so does the store
/// reopened without a writer. Reads of the tail race the writer for the
/// buffer in flight (the buffers are 512 bytes); every seventh round waits
/// for the writer instead.
#[test]
fn write_behind_on_a_thread_of_its_own_keeps_every_message() {
    let scratch = Scratch::new("behind-thread");
    let mut rng = Rng(0x5EED_0011);
    let writer = StoreWriter::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stepping = {
        let (writer, stop) = (writer.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                if writer.step() == 0 {
                    std::thread::yield_now();
                }
            }
        })
    };
    let options = StoreOptions {
        segment_bytes_max: 256 << 10,
        ..options()
    };
    let (mut store, _) =
        MessageStore::open_with_writer(&scratch.path, options, writer.clone()).unwrap();
    let mut model = Model::new();
    for round in 0..40 {
        append_random(&mut store, &mut model, &mut rng, 500);
        for _ in 0..20 {
            let sequence = 1 + rng.below(model.len() as u64);
            let message = store.get(sequence).unwrap().expect("stored");
            let (origin, bytes) = &model[sequence as usize - 1];
            assert_eq!((message.origin, &*message.bytes), (*origin, &bytes[..]));
        }
        let from = 1 + rng.below(model.len() as u64);
        let mut reader = store.reader(from);
        for expected in from..(from + 300).min(model.len() as u64 + 1) {
            let message = reader.next().unwrap().expect("a message");
            assert_eq!(&*message.bytes, &model[expected as usize - 1].1[..]);
        }
        if round % 7 == 0 {
            store.flush_behind().unwrap();
            while !writer.is_idle() {
                std::thread::yield_now();
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    stepping.join().unwrap();
    check_against(&store, &model, 2);
    drop(store);
    let (store, recovery) = MessageStore::open(&scratch.path, options).unwrap();
    assert_eq!(recovery.truncated_bytes, 0, "{recovery:?}");
    check_against(&store, &model, 2);
    let stats = writer.stats();
    assert!(stats.handed_off > 100, "{stats:?}");
    assert!(stats.bytes_by_writer > 0, "{stats:?}");
}

/// A writer that never steps costs nothing but a hand-off: each store
/// writes its previous buffer itself at the next one, and at close.
#[test]
fn a_writer_that_never_steps_leaves_the_writes_to_the_store() {
    let scratch = Scratch::new("behind-idle");
    let mut rng = Rng(0x5EED_0012);
    let writer = StoreWriter::new();
    let (mut store, _) =
        MessageStore::open_with_writer(&scratch.path, options(), writer.clone()).unwrap();
    let mut model = Model::new();
    append_random(&mut store, &mut model, &mut rng, 2_000);
    assert!(!writer.is_idle(), "a buffer is waiting for a step");
    check_against(&store, &model, 3);
    store.close().unwrap();
    let stats = writer.stats();
    assert_eq!(stats.bytes_by_writer, 0, "{stats:?}");
    assert!(
        stats.handed_off > 10 && stats.bytes_by_stores > 0,
        "{stats:?}"
    );
    // Steps after the store settled find nothing left to write.
    while !writer.is_idle() {
        assert_eq!(writer.step(), 0);
    }
    let (store, recovery) = open(&scratch.path);
    assert_eq!(recovery.truncated_bytes, 0, "{recovery:?}");
    check_against(&store, &model, 3);

    // Closed: a store writes its buffers itself and hands nothing over.
    writer.close();
    drop(store);
    let (mut store, _) =
        MessageStore::open_with_writer(&scratch.path, options(), writer.clone()).unwrap();
    append_random(&mut store, &mut model, &mut rng, 500);
    store.flush_behind().unwrap();
    assert_eq!(writer.stats().handed_off, stats.handed_off);
    assert!(writer.is_idle());
    drop(store);
    let (store, _) = open(&scratch.path);
    check_against(&store, &model, 3);
}

#[test]
fn a_fork_holds_the_prefix_continues_apart_and_leaves_the_original() {
    let scratch = Scratch::new("fork");
    let (old_dir, new_dir) = (scratch.path.join("old"), scratch.path.join("new"));
    let mut rng = Rng(0xf0_4c);
    let mut model = Model::new();
    let (mut store, _) = MessageStore::open(&old_dir, options()).unwrap();
    append_random(&mut store, &mut model, &mut rng, 200);
    store.end().unwrap();
    let segments = fs::read_dir(&old_dir).unwrap().count();
    assert!(segments >= 8, "several segments: {segments} files");
    // Through a message inside a segment, at a segment's end, all, none.
    for through in [137, model.len() as u64, 0, 1] {
        let _ = fs::remove_dir_all(&new_dir);
        let mut forked = store.fork(&new_dir, through, options()).unwrap();
        assert!(!forked.is_ended());
        assert_eq!(forked.last_sequence(), through);
        assert_eq!(read_all(&forked), model[..through as usize]);
        let origin = model
            .get(through as usize)
            .map_or(9_999, |(origin, _)| *origin);
        assert_eq!(
            forked
                .append(origin.max(forked.last_origin()), b"next")
                .unwrap(),
            through + 1
        );
        drop(forked);
        let (reopened, _) = MessageStore::open(&new_dir, options()).unwrap();
        assert_eq!(reopened.last_sequence(), through + 1);
        assert_eq!(&*reopened.get(through + 1).unwrap().unwrap().bytes, b"next");
        // The original is as it was.
        let (original, _) = MessageStore::open(&old_dir, options()).unwrap();
        assert!(original.is_ended());
        assert_eq!(read_all(&original), model);
    }
    assert!(matches!(
        store.fork(&new_dir, 201, options()),
        Err(StoreError::TruncateBeyondEnd { .. })
    ));
}
