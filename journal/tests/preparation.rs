//! The next segment made a page at a time in the appender's idle time
//! ([`Preparation::Steps`]): the steps are bounded and finish, a roll-over
//! after them finds the segment ready, one before them finishes it there
//! (and counts it), and either way the journal reads back as written.

use std::path::{Path, PathBuf};

use journal::{Journal, JournalOptions, Preparation};

const SEGMENT_BYTES: usize = 16 << 10;
const PAGE: usize = 4096;

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("journal-preparation-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(prefault: bool) -> JournalOptions {
    JournalOptions {
        segment_bytes: SEGMENT_BYTES,
        record_bytes_max: 512,
        prefault,
        preparation: Preparation::Steps,
        ..JournalOptions::default()
    }
}

/// Steps until there is no more work; how many there were.
fn prepare(journal: &mut Journal) -> usize {
    let mut steps = 0;
    while journal.prepare_step() {
        steps += 1;
        assert!(steps <= 10 * SEGMENT_BYTES / PAGE, "the steps never end");
    }
    steps
}

/// Appends 100-byte records until the journal has `segments` segments.
fn append_until(journal: &mut Journal, dir: &Path, segments: usize, next: &mut u64) {
    while segment_files(dir) < segments {
        assert_eq!(
            journal.append(1, *next, &[*next as u8; 100]).unwrap(),
            *next
        );
        *next += 1;
    }
}

fn segment_files(dir: &Path) -> usize {
    names(dir)
        .iter()
        .filter(|name| name.ends_with(".journal"))
        .count()
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn read_back(dir: &Path, last: u64) {
    let (journal, report) = Journal::open_read_only(dir).unwrap();
    assert_eq!(report.last_sequence, last);
    let mut reader = journal.reader(1);
    let mut sequence = 0;
    while let Some(record) = reader.next().unwrap() {
        sequence += 1;
        assert_eq!(record.sequence, sequence);
        assert_eq!(record.timestamp_ns, sequence);
        assert_eq!(record.body, &[sequence as u8; 100][..]);
    }
    assert_eq!(sequence, last);
}

#[test]
fn idle_steps_make_the_next_segment_a_page_at_a_time() {
    for prefault in [false, true] {
        let dir = scratch(&format!("steps-{prefault}"));
        let (mut journal, _) = Journal::open(&dir, options(prefault)).unwrap();
        // A page of zeros per step, one step to map it, and (prefaulted) a
        // step per page touched.
        let pages = SEGMENT_BYTES / PAGE;
        let expected = pages + 1 + if prefault { pages } else { 0 };
        assert_eq!(prepare(&mut journal), expected);
        assert!(!journal.prepare_step(), "a ready segment takes no step");
        let mut next = 1;
        for segments in 2..=4 {
            append_until(&mut journal, &dir, segments, &mut next);
            assert_eq!(
                prepare(&mut journal),
                expected,
                "after roll-over {segments}"
            );
        }
        assert_eq!(journal.unfinished_roll_overs(), 0);
        journal.close().unwrap();
        assert!(
            names(&dir).iter().all(|name| !name.ends_with(".next")),
            "the close removes the prepared segment: {:?}",
            names(&dir)
        );
        read_back(&dir, next - 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_roll_over_before_the_steps_finish_finishes_the_segment_itself() {
    let dir = scratch("unfinished");
    let (mut journal, _) = Journal::open(&dir, options(true)).unwrap();
    let mut next = 1;
    // No step at all before the first roll-over; two steps before the second.
    append_until(&mut journal, &dir, 2, &mut next);
    assert_eq!(journal.unfinished_roll_overs(), 1);
    assert!(journal.prepare_step());
    assert!(journal.prepare_step());
    append_until(&mut journal, &dir, 3, &mut next);
    assert_eq!(journal.unfinished_roll_overs(), 2);
    // Half-made when closed: the file is removed all the same.
    assert!(journal.prepare_step());
    journal.close().unwrap();
    assert!(names(&dir).iter().all(|name| !name.ends_with(".next")));
    read_back(&dir, next - 1);
    // Reopened, it goes on.
    let (mut journal, _) = Journal::open(&dir, options(false)).unwrap();
    prepare(&mut journal);
    append_until(&mut journal, &dir, 4, &mut next);
    assert_eq!(journal.unfinished_roll_overs(), 0);
    journal.close().unwrap();
    read_back(&dir, next - 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_journal_that_prepares_on_a_thread_takes_no_steps() {
    let dir = scratch("thread");
    let options = JournalOptions {
        preparation: Preparation::Thread,
        ..options(false)
    };
    let (mut journal, _) = Journal::open(&dir, options).unwrap();
    assert!(!journal.prepare_step());
    let mut next = 1;
    append_until(&mut journal, &dir, 3, &mut next);
    assert!(!journal.prepare_step());
    assert_eq!(journal.unfinished_roll_overs(), 0);
    journal.close().unwrap();
    read_back(&dir, next - 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Zeros written for segment `index`'s file, which is then cut to an odd
/// length, so that the step that maps it fails.
fn fail_the_mapping_step(journal: &mut Journal, dir: &Path, index: u64) {
    for _ in 0..SEGMENT_BYTES / PAGE {
        assert!(journal.prepare_step());
    }
    let next = dir.join(format!("segment-{index:08}.next"));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&next)
        .unwrap()
        .set_len(100)
        .unwrap();
    assert!(journal.prepare_step(), "the failed step was work");
    assert!(!journal.prepare_step(), "nothing more until the roll-over");
}

#[test]
fn a_failed_step_is_reported_at_the_roll_over_and_its_file_removed_at_close() {
    let dir = scratch("failed");
    let (mut journal, _) = Journal::open(&dir, options(false)).unwrap();
    fail_the_mapping_step(&mut journal, &dir, 2);
    let mut next = 1;
    let error = loop {
        match journal.append(1, next, &[next as u8; 100]) {
            Ok(sequence) => {
                assert_eq!(sequence, next);
                next += 1;
            }
            Err(error) => break error.to_string(),
        }
    };
    assert!(error.contains("100 bytes"), "{error}");
    assert_eq!(segment_files(&dir), 1, "no roll-over");
    // The next append tries again, with a segment made there and then.
    append_until(&mut journal, &dir, 2, &mut next);
    // A failed step before a close: the half-made file goes with the close.
    fail_the_mapping_step(&mut journal, &dir, 3);
    journal.close().unwrap();
    assert!(
        names(&dir).iter().all(|name| !name.ends_with(".next")),
        "{:?}",
        names(&dir)
    );
    read_back(&dir, next - 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The cost of each step of a default-sized (64 MiB, prefaulted) segment,
/// for `docs/journal.md`: per segment, the total and the median, p99,
/// p99.9 and longest step of each phase (zeros written, pages touched),
/// and the steps over 20 µs. Times on a shared machine: run by hand.
#[test]
#[ignore = "timing measurement: run by hand with --release --nocapture"]
fn step_timings_of_a_64_mib_segment() {
    let dir = scratch("timings");
    let options = JournalOptions {
        preparation: Preparation::Steps,
        ..JournalOptions::default()
    };
    let pages = options.segment_bytes / PAGE;
    let (mut journal, _) = Journal::open(&dir, options).unwrap();
    let mut next = 1;
    for segment in 2..=5 {
        let mut steps = Vec::with_capacity(2 * pages + 1);
        loop {
            let started = std::time::Instant::now();
            if !journal.prepare_step() {
                break;
            }
            steps.push(started.elapsed().as_nanos() as u64);
        }
        assert_eq!(steps.len(), 2 * pages + 1, "zeros, the mapping, touches");
        let (zeros, touches) = (&steps[..pages], &steps[pages + 1..]);
        let total_ms = steps.iter().sum::<u64>() as f64 / 1e6;
        println!("segment {segment}: {total_ms:.1} ms of steps");
        for (phase, times) in [("zeros", zeros), ("touches", touches)] {
            let mut sorted = times.to_vec();
            sorted.sort_unstable();
            let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize] as f64 / 1e3;
            println!(
                "  {phase}: median {:.1} us, p99 {:.1} us, p99.9 {:.1} us, longest {:.1} us, \
                 {} over 20 us",
                at(0.5),
                at(0.99),
                at(0.999),
                at(1.0),
                sorted.iter().filter(|&&ns| ns > 20_000).count()
            );
        }
        append_until(&mut journal, &dir, segment, &mut next);
        assert_eq!(journal.unfinished_roll_overs(), 0);
    }
    journal.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
