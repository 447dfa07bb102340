//! `exchange-bench journal`: what the write-ahead journal costs — an append
//! against a plain copy of the same bytes, group commit under the `fsync`
//! policy, and replay — measured in one run, on one machine, in one
//! directory (see [`measure_journal`]).
//!
//! The method, per run (every run does all of it; per-record figures are
//! the median over runs):
//!
//! 1. **Append** ([`BODY_BYTES`]: 64, 256 and 1 024-byte bodies). A fresh
//!    journal (`Durability::Memory`, pre-faulted, one segment big enough for
//!    every record of the run, so no roll-over is timed), after its helper
//!    thread has finished preparing the next segment (so that work does not
//!    share the machine with the timed loop). A warm-up, then `records`
//!    appends between two clock reads. Its peer, timed in the same run: the
//!    same header-sized and body-sized copies (40 + body bytes) into a
//!    preallocated, pre-faulted buffer of the same total size, each record
//!    at the offset the journal would use, the sources behind
//!    [`std::hint::black_box`]. The ratio is taken per run, then the median.
//! 2. **Replay** of that journal once closed: [`Journal::open_read_only`]
//!    (which verifies every record; timed separately) and a reader from
//!    sequence 1 (which checks every record's checksum and link again),
//!    timed from the first record to the last. The pages are in the page
//!    cache (just written): this is replay from memory, not from a cold
//!    disk.
//! 3. **Group commit** (`Durability::Fsync`, 64-byte bodies, segments of
//!    the default 64 MiB, so a long run rolls over and prepares segments as
//!    a server does). One record is appended and seen durable before
//!    anything is timed (the flusher is running). Then appends paced at
//!    `rate_per_sec` on a fixed schedule (open loop), and each record's
//!    added latency taken from its *scheduled* time to the first moment
//!    [`journal::DurablePosition::sequence`] is seen to cover it. A stalled
//!    appender therefore counts against every record it delays (no
//!    coordinated omission). The thread that appends also watches the
//!    durable position, between appends: on a 2-core machine a third
//!    spinning thread would take the core the flusher needs; the watching
//!    adds at most one loop turn (tens of nanoseconds) to a latency.
//!    Latencies of all runs go into one HdrHistogram; the appending
//!    thread's page faults are counted. Then a **saturated** run: the same
//!    number of records appended as fast as one thread can, and the time
//!    until the last is durable — the most the flusher and the device can
//!    make durable per second.
//! 4. **fdatasync** (once, before the runs): a 64-byte overwrite of a
//!    preallocated file in the same directory followed by `fdatasync`, the
//!    floor under any group commit there.
//!
//! Everything happens in a fresh subdirectory of `dir` (the system's
//! temporary directory by default), removed at the end, error or not.

use crate::cli::grouped;
use crate::harness::{LatencyPercentiles, minor_page_faults};
use crate::machine::Machine;
use hdrhistogram::Histogram;
use journal::{
    Durability, Journal, JournalError, JournalOptions, Preparation, RECORD_ALIGNMENT,
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use serde_json::{Map, Value, json};
use std::fmt;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The record body sizes of the append and replay measurements.
pub const BODY_BYTES: [usize; 3] = [64, 256, 1_024];
/// The body size of the group-commit measurements (an engine command).
pub const GROUP_COMMIT_BODY_BYTES: usize = 64;
/// The flusher's idle wait in the group-commit runs. Under load the flusher
/// never idles (every sync round finds new records), so this only bounds
/// the latency of a record appended after a quiet spell.
pub const FLUSH_DELAY_US_MAX: u64 = 100;

/// The record type the benchmark appends (any non-zero value).
const RECORD_TYPE: u16 = 1;
/// Appends made before the timed ones, at most.
const WARM_UP_RECORDS_MAX: u64 = 10_000;
/// The largest latency the histograms tell apart.
const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Significant decimal digits the histograms keep (0.1% resolution).
const HISTOGRAM_DIGITS: u8 = 3;
/// How long the durable position may stand still, with records pending,
/// before the measurement gives up.
const DURABLE_STALL_MAX: Duration = Duration::from_secs(60);
/// How long the next segment's preparation may take before the
/// measurement gives up.
const PREPARATION_WAIT_MAX: Duration = Duration::from_secs(300);
/// The thread name `Journal` gives its segment preparer (Linux shows the
/// first 15 bytes of a name; this is exactly 15).
const PREPARER_THREAD_NAME: &str = "journal-prepare";
/// Bytes written before each `fdatasync` of the floor measurement.
const FDATASYNC_WRITE_BYTES: usize = 64;
/// The floor measurement stops after this long even if it has fewer
/// samples than asked for.
const FDATASYNC_SECONDS_MAX: f64 = 3.0;

/// What to measure, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalBenchConfig {
    /// The directory to work in (a fresh subdirectory of it, removed
    /// afterwards); `None` for the system's temporary directory.
    pub dir: Option<PathBuf>,
    /// Repetitions; per-record figures are the median over them.
    pub runs: u32,
    /// Timed appends of 64-byte bodies per run; larger bodies get the same
    /// body bytes (256 B: a quarter as many records, 1 KiB: a sixteenth).
    /// Also the records of each group-commit run.
    pub records: u64,
    /// The offered rate of the paced group-commit run, records per second.
    pub rate_per_sec: u64,
    /// `fdatasync` samples (fewer if they take over 3 s).
    pub fdatasync_samples: u32,
}

impl Default for JournalBenchConfig {
    fn default() -> JournalBenchConfig {
        JournalBenchConfig {
            dir: None,
            runs: 5,
            records: 1_000_000,
            rate_per_sec: 1_000_000,
            fdatasync_samples: 1_000,
        }
    }
}

impl JournalBenchConfig {
    /// The timed appends of a body size: the same body bytes as `records`
    /// 64-byte bodies, and at least one.
    pub fn records_for(&self, body_bytes: usize) -> u64 {
        (self.records * GROUP_COMMIT_BODY_BYTES as u64 / body_bytes as u64).max(1)
    }
}

/// The append and replay figures of one body size, medians over runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BodySizeReport {
    pub body_bytes: usize,
    /// Timed appends per run.
    pub records: u64,
    /// Nanoseconds per `Journal::append`.
    pub append_ns: f64,
    pub append_ns_min: f64,
    pub append_ns_max: f64,
    /// Nanoseconds per plain copy of the same bytes.
    pub copy_ns: f64,
    /// Append over copy, per run, then the median.
    pub append_to_copy_ratio: f64,
    /// Records per second of a reader from sequence 1 (warm-up records
    /// included).
    pub replay_records_per_sec: f64,
    /// Record bytes (header and body) per second of that reader.
    pub replay_bytes_per_sec: f64,
    /// Records per second verified by `Journal::open_read_only`.
    pub open_read_only_records_per_sec: f64,
    /// The most minor page faults the appending thread took in the timed
    /// appends of a run (0 when the pre-faulted segment works; `None` where
    /// the platform does not say).
    pub append_page_faults_max: Option<u64>,
}

/// The group-commit figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupCommitReport {
    pub body_bytes: usize,
    /// Records per run.
    pub records: u64,
    pub flush_delay_us_max: u64,
    /// The paced run's offered rate.
    pub offered_per_sec: u64,
    /// Records made durable per second in the paced run (records over the
    /// time from the first scheduled append to the last record seen
    /// durable), median over runs.
    pub records_per_sec: f64,
    /// From each record's scheduled append time to the moment it was seen
    /// durable, every record of every paced run.
    pub added_latency_ns: LatencyPercentiles,
    /// The furthest the appender fell behind its schedule, over all runs.
    pub appender_lag_ns_max: u64,
    /// The most minor page faults the appending thread took in a paced run
    /// (writes to pages that a sync made read-only again; `None` where the
    /// platform does not say).
    pub page_faults_max: Option<u64>,
    /// The segment size of the group-commit journals: the default (64 MiB),
    /// or less when the run's records fit a smaller one.
    pub segment_bytes: usize,
    /// Records made durable per second when appended as fast as possible,
    /// median over runs.
    pub saturated_records_per_sec: f64,
}

/// The `fdatasync` floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdatasyncReport {
    pub samples: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// What `exchange-bench journal` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct JournalBenchReport {
    pub runs: u32,
    pub records: u64,
    /// The working directory the journals were in (removed by now).
    pub dir: PathBuf,
    /// Its file system (`/proc/self/mounts`): type, device and mount point.
    pub filesystem: Option<String>,
    /// One per entry of [`BODY_BYTES`], in order.
    pub body_sizes: Vec<BodySizeReport>,
    pub group_commit: GroupCommitReport,
    pub fdatasync: FdatasyncReport,
}

/// Why a measurement could not be made.
#[derive(Debug)]
pub enum JournalBenchError {
    /// The journal failed.
    Journal(JournalError),
    /// A file operation of the benchmark's own failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The journal did not do what the benchmark asked: it lost or added
    /// records, or stopped making them durable.
    Check(String),
}

impl fmt::Display for JournalBenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalBenchError::Journal(error) => write!(f, "journal: {error}"),
            JournalBenchError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            JournalBenchError::Check(what) => write!(f, "check failed: {what}"),
        }
    }
}

impl std::error::Error for JournalBenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalBenchError::Journal(error) => Some(error),
            JournalBenchError::Io { source, .. } => Some(source),
            JournalBenchError::Check(_) => None,
        }
    }
}

impl From<JournalError> for JournalBenchError {
    fn from(error: JournalError) -> JournalBenchError {
        JournalBenchError::Journal(error)
    }
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> JournalBenchError + '_ {
    move |source| JournalBenchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Measures the journal as the module documentation describes; `progress`
/// gets a line at each step (the command line prints them on stderr).
///
/// ```
/// let config = bench::JournalBenchConfig {
///     runs: 1,
///     records: 2_000,
///     fdatasync_samples: 3,
///     ..Default::default()
/// };
/// let report = bench::measure_journal(&config, |_| {}).unwrap();
/// assert_eq!(report.body_sizes.len(), bench::BODY_BYTES.len());
/// assert!(report.group_commit.records_per_sec > 0.0);
/// assert!(!report.dir.exists(), "the working directory is removed");
/// ```
pub fn measure_journal(
    config: &JournalBenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<JournalBenchReport, JournalBenchError> {
    assert!(config.runs >= 1, "at least one run");
    assert!(config.records >= 1 && config.rate_per_sec >= 1);
    let work = WorkDir::create(config.dir.as_deref())?;
    let filesystem = filesystem_of(work.path());
    progress(&format!("working in {}", work.path().display()));

    progress("fdatasync floor");
    let fdatasync = fdatasync_floor(work.path(), config.fdatasync_samples)?;

    let mut samples: Vec<Vec<AppendSample>> = vec![Vec::new(); BODY_BYTES.len()];
    // Invariant: constant, valid bounds.
    let mut latency = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS)
        .expect("valid histogram bounds");
    let mut paced_rates = Vec::new();
    let mut saturated_rates = Vec::new();
    let mut lag_ns_max = 0;
    let mut group_faults_max: Option<u64> = None;
    for run in 1..=config.runs {
        for (index, &body_bytes) in BODY_BYTES.iter().enumerate() {
            progress(&format!(
                "run {run}/{}: append and replay, {body_bytes}-byte bodies",
                config.runs
            ));
            let dir = work.path().join(format!("append-{run}-{body_bytes}"));
            samples[index].push(append_and_replay(
                &dir,
                body_bytes,
                config.records_for(body_bytes),
            )?);
            remove_dir(&dir)?;
        }
        progress(&format!(
            "run {run}/{}: group commit paced at {} records/s",
            config.runs, config.rate_per_sec
        ));
        let dir = work.path().join(format!("group-commit-{run}"));
        let paced = group_commit_paced(&dir, config.records, config.rate_per_sec, &mut latency)?;
        remove_dir(&dir)?;
        paced_rates.push(paced.records_per_sec);
        lag_ns_max = lag_ns_max.max(paced.appender_lag_ns_max);
        group_faults_max = group_faults_max.max(paced.page_faults);
        progress(&format!(
            "run {run}/{}: group commit saturated",
            config.runs
        ));
        let dir = work.path().join(format!("saturated-{run}"));
        saturated_rates.push(group_commit_saturated(&dir, config.records)?);
        remove_dir(&dir)?;
    }

    let body_sizes = BODY_BYTES
        .iter()
        .zip(&samples)
        .map(|(&body_bytes, runs)| {
            BodySizeReport::of(body_bytes, config.records_for(body_bytes), runs)
        })
        .collect();
    let report = JournalBenchReport {
        runs: config.runs,
        records: config.records,
        dir: work.path().to_path_buf(),
        filesystem,
        body_sizes,
        group_commit: GroupCommitReport {
            body_bytes: GROUP_COMMIT_BODY_BYTES,
            records: config.records,
            flush_delay_us_max: FLUSH_DELAY_US_MAX,
            offered_per_sec: config.rate_per_sec,
            records_per_sec: median(&paced_rates),
            added_latency_ns: LatencyPercentiles::of(&latency),
            appender_lag_ns_max: lag_ns_max,
            page_faults_max: group_faults_max,
            segment_bytes: group_commit_segment_bytes(config.records + 1),
            saturated_records_per_sec: median(&saturated_rates),
        },
        fdatasync,
    };
    work.remove()?;
    Ok(report)
}

/// One run's figures for one body size.
#[derive(Clone, Copy, Debug)]
struct AppendSample {
    append_ns: f64,
    copy_ns: f64,
    replay_records_per_sec: f64,
    replay_bytes_per_sec: f64,
    open_read_only_records_per_sec: f64,
    page_faults: Option<u64>,
}

impl BodySizeReport {
    fn of(body_bytes: usize, records: u64, runs: &[AppendSample]) -> BodySizeReport {
        let field = |get: fn(&AppendSample) -> f64| runs.iter().map(get).collect::<Vec<f64>>();
        let append = field(|s| s.append_ns);
        BodySizeReport {
            body_bytes,
            records,
            append_ns: median(&append),
            append_ns_min: append.iter().copied().fold(f64::INFINITY, f64::min),
            append_ns_max: append.iter().copied().fold(0.0, f64::max),
            copy_ns: median(&field(|s| s.copy_ns)),
            append_to_copy_ratio: median(&field(|s| s.append_ns / s.copy_ns)),
            replay_records_per_sec: median(&field(|s| s.replay_records_per_sec)),
            replay_bytes_per_sec: median(&field(|s| s.replay_bytes_per_sec)),
            open_read_only_records_per_sec: median(&field(|s| s.open_read_only_records_per_sec)),
            append_page_faults_max: runs.iter().filter_map(|s| s.page_faults).max(),
        }
    }
}

/// The bytes a record of `body_bytes` takes in a segment (the journal's
/// layout: header, body, zero padding to 8).
fn footprint(body_bytes: usize) -> usize {
    (RECORD_HEADER_BYTES + body_bytes).next_multiple_of(RECORD_ALIGNMENT)
}

/// A segment that holds `records` records of `body_bytes` and a seal,
/// rounded up to whole pages.
fn segment_bytes_for(records: u64, body_bytes: usize) -> usize {
    let records = usize::try_from(records).expect("records fit memory");
    (SEGMENT_HEADER_BYTES + records * footprint(body_bytes) + RECORD_ALIGNMENT)
        .next_multiple_of(4_096)
}

/// A body of `body_bytes` varied bytes (the checksum's cost does not depend
/// on them, but a real body is not all zeros).
fn body_of(body_bytes: usize) -> Vec<u8> {
    (0..body_bytes)
        .map(|index| (index * 31 + 7) as u8)
        .collect()
}

/// The segment size of the group-commit journals: the production default,
/// so that a long run rolls over (and prepares segments) as a server does,
/// or less when `records` fit a smaller segment.
fn group_commit_segment_bytes(records: u64) -> usize {
    JournalOptions::default()
        .segment_bytes
        .min(segment_bytes_for(records, GROUP_COMMIT_BODY_BYTES))
}

/// Opens a fresh journal in `dir` with segments of `segment_bytes` and
/// waits until its next segment is prepared, so that work does not run
/// beside what is timed.
fn open_journal(
    dir: &Path,
    segment_bytes: usize,
    body_bytes: usize,
    durability: Durability,
) -> Result<Journal, JournalBenchError> {
    let options = JournalOptions {
        segment_bytes,
        record_bytes_max: body_bytes,
        durability,
        prefault: true,
        preparation: Preparation::Thread,
    };
    let (journal, report) = Journal::open(dir, options)?;
    if report.last_sequence != 0 {
        return Err(JournalBenchError::Check(format!(
            "{} was not empty (last sequence {})",
            dir.display(),
            report.last_sequence
        )));
    }
    wait_for_segment_preparation(dir)?;
    Ok(journal)
}

/// Waits until the journal's helper thread has prepared the next segment:
/// its `.next` file exists (the thread is named by then) and, on Linux, no
/// thread of this process has the preparer's name. Elsewhere, only the
/// file is waited for.
fn wait_for_segment_preparation(dir: &Path) -> Result<(), JournalBenchError> {
    let started = Instant::now();
    let prepared_file_exists = || {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().ends_with(".next"))
        })
    };
    while !prepared_file_exists() || preparer_threads() > 0 {
        if started.elapsed() > PREPARATION_WAIT_MAX {
            return Err(JournalBenchError::Check(format!(
                "the next segment in {} was not prepared within {} s",
                dir.display(),
                PREPARATION_WAIT_MAX.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Threads of this process named as the journal's segment preparer (0
/// where `/proc` does not say).
fn preparer_threads() -> usize {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.trim_end() == PREPARER_THREAD_NAME)
        })
        .count()
}

/// One run of the append measurement and its peer copy, then the replay
/// of the journal it wrote.
fn append_and_replay(
    dir: &Path,
    body_bytes: usize,
    records: u64,
) -> Result<AppendSample, JournalBenchError> {
    let warm_up = (records / 10).min(WARM_UP_RECORDS_MAX);
    let body = body_of(body_bytes);
    let copy_ns = plain_copy_ns(&body, records, warm_up);

    let segment_bytes = segment_bytes_for(warm_up + records, body_bytes);
    let mut journal = open_journal(dir, segment_bytes, body_bytes, Durability::Memory)?;
    for sequence in 0..warm_up {
        journal.append(RECORD_TYPE, sequence, black_box(&body))?;
    }
    let faults_before = minor_page_faults();
    let start = Instant::now();
    for sequence in warm_up..warm_up + records {
        journal.append(RECORD_TYPE, sequence, black_box(&body))?;
    }
    let append_ns = start.elapsed().as_nanos() as f64 / records as f64;
    let page_faults = faults_since(faults_before);
    let total = warm_up + records;
    if journal.last_sequence() != total {
        return Err(JournalBenchError::Check(format!(
            "appended {total} records, the journal ends at {}",
            journal.last_sequence()
        )));
    }
    journal.close()?;

    let start = Instant::now();
    let (journal, report) = Journal::open_read_only(dir)?;
    let open_seconds = start.elapsed().as_secs_f64();
    if report.last_sequence != total || report.torn_tail.is_some() {
        return Err(JournalBenchError::Check(format!(
            "reopened with last sequence {} and torn tail {:?}; {total} records were appended",
            report.last_sequence, report.torn_tail
        )));
    }
    let (replayed, replay_seconds) = replay(&journal, body_bytes)?;
    if replayed != total {
        return Err(JournalBenchError::Check(format!(
            "replay read {replayed} records of {total}"
        )));
    }
    let record_bytes = (RECORD_HEADER_BYTES + body_bytes) as f64;
    Ok(AppendSample {
        append_ns,
        copy_ns,
        replay_records_per_sec: total as f64 / replay_seconds,
        replay_bytes_per_sec: total as f64 * record_bytes / replay_seconds,
        open_read_only_records_per_sec: total as f64 / open_seconds,
        page_faults,
    })
}

/// Nanoseconds per record to copy a 40-byte header and `body` into a
/// preallocated, pre-faulted buffer at the offsets the journal would use:
/// what an append cannot beat.
fn plain_copy_ns(body: &[u8], records: u64, warm_up: u64) -> f64 {
    let step = footprint(body.len());
    let records = usize::try_from(records).expect("records fit memory");
    let mut buffer = vec![0u8; records * step];
    // `vec!` of zeros maps pages lazily: write one byte per page so the
    // timed copies take no page faults, as the journal's pre-faulted
    // segment does not.
    for offset in (0..buffer.len()).step_by(4_096) {
        buffer[offset] = 1;
    }
    let header = [0x5Au8; RECORD_HEADER_BYTES];
    let copy = |buffer: &mut [u8], records: usize| {
        for offset in (0..records * step).step_by(step) {
            let header = black_box(&header);
            let body = black_box(body);
            buffer[offset..offset + RECORD_HEADER_BYTES].copy_from_slice(header);
            buffer[offset + RECORD_HEADER_BYTES..offset + RECORD_HEADER_BYTES + body.len()]
                .copy_from_slice(body);
        }
    };
    copy(&mut buffer, warm_up as usize);
    let start = Instant::now();
    copy(&mut buffer, records);
    let elapsed_ns = start.elapsed().as_nanos() as f64;
    black_box(&mut buffer);
    elapsed_ns / records as f64
}

/// Reads every record from sequence 1: how many, and the seconds it took.
fn replay(journal: &Journal, body_bytes: usize) -> Result<(u64, f64), JournalBenchError> {
    let mut reader = journal.reader(1);
    let mut records = 0u64;
    let start = Instant::now();
    while let Some(record) = reader.next()? {
        if record.body.len() != body_bytes || record.record_type != RECORD_TYPE {
            return Err(JournalBenchError::Check(format!(
                "record {} has type {} and {} body bytes; {RECORD_TYPE} and {body_bytes} were \
                 appended",
                record.sequence,
                record.record_type,
                record.body.len()
            )));
        }
        black_box(record.body);
        records += 1;
    }
    Ok((records, start.elapsed().as_secs_f64()))
}

/// What a paced group-commit run measured (its latencies go into the
/// caller's histogram).
#[derive(Clone, Copy, Debug)]
struct PacedRun {
    records_per_sec: f64,
    appender_lag_ns_max: u64,
    page_faults: Option<u64>,
}

/// A fresh `fsync`-policy journal for `records` timed records, with one
/// record appended and seen durable first: the flusher has started and
/// made a sync before anything is timed. (It also keeps the flusher's
/// first round, which starts from wherever the journal then ends, from
/// covering timed records.)
fn open_group_commit_journal(dir: &Path, records: u64) -> Result<Journal, JournalBenchError> {
    let durability = Durability::Fsync {
        flush_delay_us_max: FLUSH_DELAY_US_MAX,
    };
    let segment_bytes = group_commit_segment_bytes(records + 1);
    let mut journal = open_journal(dir, segment_bytes, GROUP_COMMIT_BODY_BYTES, durability)?;
    let first = journal.append(RECORD_TYPE, 0, &body_of(GROUP_COMMIT_BODY_BYTES))?;
    if !journal.durable().wait_for(first, DURABLE_STALL_MAX) {
        return Err(JournalBenchError::Check(format!(
            "the first record was not durable within {} s",
            DURABLE_STALL_MAX.as_secs()
        )));
    }
    Ok(journal)
}

/// Appends `records` on a schedule of `rate_per_sec` under the `fsync`
/// policy, recording for each the time from its scheduled append to the
/// first sight of it durable.
fn group_commit_paced(
    dir: &Path,
    records: u64,
    rate_per_sec: u64,
    latency: &mut Histogram<u64>,
) -> Result<PacedRun, JournalBenchError> {
    let mut journal = open_group_commit_journal(dir, records)?;
    let durable = journal.durable();
    let base = journal.last_sequence();
    let body = body_of(GROUP_COMMIT_BODY_BYTES);
    let scheduled_ns = |index: u64| -> u64 {
        let ns = u128::from(index) * 1_000_000_000 / u128::from(rate_per_sec);
        u64::try_from(ns).unwrap_or(u64::MAX)
    };
    let (mut appended, mut observed) = (0u64, 0u64);
    let (mut lag_ns_max, mut progress_ns) = (0u64, 0u64);
    let start = Instant::now();
    let faults_before = minor_page_faults();
    let mut now_ns = 0;
    while observed < records {
        // The durable position first, then the clock: the time recorded is
        // never before the moment the records were durable.
        let durable_records = durable.sequence().saturating_sub(base).min(appended);
        now_ns = elapsed_ns(start);
        if durable_records > observed {
            for index in observed..durable_records {
                latency.saturating_record(now_ns.saturating_sub(scheduled_ns(index)).max(1));
            }
            observed = durable_records;
            progress_ns = now_ns;
        } else if now_ns - progress_ns > DURABLE_STALL_MAX.as_nanos() as u64 {
            return Err(JournalBenchError::Check(format!(
                "the durable position stood at {observed} of {appended} appended records for {} s",
                DURABLE_STALL_MAX.as_secs()
            )));
        }
        // Every append that is due, late ones at once (open loop).
        while appended < records && scheduled_ns(appended) <= now_ns {
            let scheduled = scheduled_ns(appended);
            journal.append(RECORD_TYPE, scheduled, &body)?;
            lag_ns_max = lag_ns_max.max(now_ns - scheduled);
            appended += 1;
        }
    }
    let page_faults = faults_since(faults_before);
    journal.close()?;
    Ok(PacedRun {
        records_per_sec: records as f64 / (now_ns.max(1) as f64 / 1e9),
        appender_lag_ns_max: lag_ns_max,
        page_faults,
    })
}

/// Appends `records` as fast as one thread can under the `fsync` policy;
/// returns records made durable per second (first append to last durable).
fn group_commit_saturated(dir: &Path, records: u64) -> Result<f64, JournalBenchError> {
    let mut journal = open_group_commit_journal(dir, records)?;
    let durable = journal.durable();
    let base = journal.last_sequence();
    let body = body_of(GROUP_COMMIT_BODY_BYTES);
    let start = Instant::now();
    for sequence in 0..records {
        journal.append(RECORD_TYPE, sequence, &body)?;
    }
    if !durable.wait_for(base + records, DURABLE_STALL_MAX) {
        return Err(JournalBenchError::Check(format!(
            "{records} records were not durable within {} s (durable: {})",
            DURABLE_STALL_MAX.as_secs(),
            durable.sequence()
        )));
    }
    let seconds = start.elapsed().as_secs_f64();
    journal.close()?;
    Ok(records as f64 / seconds)
}

/// Latency of a small overwrite and `fdatasync` of a preallocated file in
/// `dir`.
pub(crate) fn fdatasync_floor(
    dir: &Path,
    samples: u32,
) -> Result<FdatasyncReport, JournalBenchError> {
    let path = dir.join("fdatasync-probe");
    let mut file = File::create(&path).map_err(io_at(&path))?;
    file.write_all(&[0u8; 4_096]).map_err(io_at(&path))?;
    file.sync_all().map_err(io_at(&path))?;
    // Invariant: constant, valid bounds.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS)
        .expect("valid histogram bounds");
    let started = Instant::now();
    for sample in 0..samples {
        if started.elapsed().as_secs_f64() > FDATASYNC_SECONDS_MAX {
            break;
        }
        let start = Instant::now();
        file.seek(SeekFrom::Start(0)).map_err(io_at(&path))?;
        file.write_all(&[sample as u8; FDATASYNC_WRITE_BYTES])
            .map_err(io_at(&path))?;
        file.sync_data().map_err(io_at(&path))?;
        histogram.saturating_record(elapsed_ns(start).max(1));
    }
    drop(file);
    fs::remove_file(&path).map_err(io_at(&path))?;
    Ok(FdatasyncReport {
        samples: histogram.len(),
        p50_ns: histogram.value_at_quantile(0.5),
        p99_ns: histogram.value_at_quantile(0.99),
        max_ns: histogram.max(),
    })
}

/// The calling thread's minor page faults since `before`.
fn faults_since(before: Option<u64>) -> Option<u64> {
    minor_page_faults()
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before))
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The median (the upper middle one for an even count, as the engine
/// harness reports).
fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "a median of nothing");
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn remove_dir(dir: &Path) -> Result<(), JournalBenchError> {
    fs::remove_dir_all(dir).map_err(io_at(dir))
}

/// A fresh directory for one measurement, removed when dropped (so an
/// error on the way leaves nothing behind).
#[derive(Debug)]
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create(parent: Option<&Path>) -> Result<WorkDir, JournalBenchError> {
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let name = format!(
            "exchange-bench-journal-{}-{}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        let path = parent.join(name);
        fs::create_dir_all(&path).map_err(io_at(&path))?;
        Ok(WorkDir { path })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the directory, reporting a failure (dropping ignores it).
    fn remove(self) -> Result<(), JournalBenchError> {
        let result = fs::remove_dir_all(&self.path).map_err(io_at(&self.path));
        std::mem::forget(self);
        result
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The file system holding `dir`: the longest mount point of
/// `/proc/self/mounts` it is under, as "type on device (mount point)".
fn filesystem_of(dir: &Path) -> Option<String> {
    let dir = fs::canonicalize(dir).ok()?;
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(mount_point).then(|| {
                (
                    mount_point.len(),
                    format!("{kind} on {device} ({mount_point})"),
                )
            })
        })
        .max_by_key(|(length, _)| *length)
        .map(|(_, description)| description)
}

impl JournalBenchReport {
    /// The flat JSON object of `exchange-bench journal --json`: per body
    /// size `append_ns_<B>`, `copy_ns_<B>`, `append_to_copy_ratio_<B>`,
    /// `replay_records_per_sec_<B>`, `replay_bytes_per_sec_<B>`, …; the
    /// `group_commit_…` and `fdatasync_…` figures; `machine` and `command`.
    pub fn to_json(&self, machine: &Machine, command: &str) -> Value {
        let mut object = Map::new();
        let mut put = |key: String, value: Value| {
            object.insert(key, value);
        };
        put("runs".into(), json!(self.runs));
        put("records".into(), json!(self.records));
        put("dir".into(), json!(self.dir.display().to_string()));
        put("dir_filesystem".into(), json!(self.filesystem));
        for size in &self.body_sizes {
            let bytes = size.body_bytes;
            put(format!("append_records_{bytes}"), json!(size.records));
            put(format!("append_ns_{bytes}"), json!(size.append_ns));
            put(format!("append_ns_min_{bytes}"), json!(size.append_ns_min));
            put(format!("append_ns_max_{bytes}"), json!(size.append_ns_max));
            put(format!("copy_ns_{bytes}"), json!(size.copy_ns));
            put(
                format!("append_to_copy_ratio_{bytes}"),
                json!(size.append_to_copy_ratio),
            );
            put(
                format!("replay_records_per_sec_{bytes}"),
                json!(size.replay_records_per_sec),
            );
            put(
                format!("replay_bytes_per_sec_{bytes}"),
                json!(size.replay_bytes_per_sec),
            );
            put(
                format!("open_read_only_records_per_sec_{bytes}"),
                json!(size.open_read_only_records_per_sec),
            );
            put(
                format!("append_page_faults_max_{bytes}"),
                json!(size.append_page_faults_max),
            );
        }
        let group = &self.group_commit;
        put("group_commit_body_bytes".into(), json!(group.body_bytes));
        put("group_commit_records".into(), json!(group.records));
        put(
            "group_commit_flush_delay_us_max".into(),
            json!(group.flush_delay_us_max),
        );
        put(
            "group_commit_offered_per_sec".into(),
            json!(group.offered_per_sec),
        );
        put(
            "group_commit_records_per_sec".into(),
            json!(group.records_per_sec),
        );
        put(
            "group_commit_added_latency_ns".into(),
            json!(group.added_latency_ns),
        );
        put(
            "group_commit_appender_lag_ns_max".into(),
            json!(group.appender_lag_ns_max),
        );
        put(
            "group_commit_page_faults_max".into(),
            json!(group.page_faults_max),
        );
        put(
            "group_commit_segment_bytes".into(),
            json!(group.segment_bytes),
        );
        put(
            "group_commit_saturated_records_per_sec".into(),
            json!(group.saturated_records_per_sec),
        );
        put("fdatasync_samples".into(), json!(self.fdatasync.samples));
        put("fdatasync_ns_p50".into(), json!(self.fdatasync.p50_ns));
        put("fdatasync_ns_p99".into(), json!(self.fdatasync.p99_ns));
        put("fdatasync_ns_max".into(), json!(self.fdatasync.max_ns));
        put("machine".into(), json!(machine));
        put("command".into(), json!(command));
        Value::Object(object)
    }

    /// The human-readable report.
    pub fn table(&self, machine: &Machine, command: &str) -> String {
        let mut text = format!(
            "exchange-bench journal: append, group commit and replay of the journal\n\
             machine: {machine}\n\
             command: {command}\n\
             directory: {} ({})\n\n",
            self.dir.display(),
            self.filesystem.as_deref().unwrap_or("file system unknown"),
        );
        text.push_str(&self.append_table());
        let group = &self.group_commit;
        let latency = &group.added_latency_ns;
        text.push_str(&format!(
            "\ngroup commit (Durability::Fsync, flush_delay_us_max {}, {}-byte bodies, {} records \
             per run, {:.1} MiB segments):\n\
             \x20 paced at {} records/s (open loop): {} records/s made durable (median run)\n\
             \x20 added latency, scheduled append to seen durable (all runs): p50 {}  p99 {}  \
             p99.9 {}  max {}\n\
             \x20 appender behind schedule at most {}; its page faults in a run at most {} ({} \
             pages written)\n\
             \x20 as fast as possible: {} records/s made durable (median run)\n\
             fdatasync of a {FDATASYNC_WRITE_BYTES}-byte overwrite, same directory ({} samples): \
             p50 {}  p99 {}  max {}\n",
            group.flush_delay_us_max,
            group.body_bytes,
            grouped(group.records),
            group.segment_bytes as f64 / f64::from(1 << 20),
            grouped(group.offered_per_sec),
            grouped(group.records_per_sec.round() as u64),
            duration(latency.p50),
            duration(latency.p99),
            duration(latency.p999),
            duration(latency.max),
            duration(group.appender_lag_ns_max),
            group.page_faults_max.map_or("n/a".to_owned(), grouped),
            grouped(group.records * footprint(group.body_bytes) as u64 / 4_096),
            grouped(group.saturated_records_per_sec.round() as u64),
            self.fdatasync.samples,
            duration(self.fdatasync.p50_ns),
            duration(self.fdatasync.p99_ns),
            duration(self.fdatasync.max_ns),
        ));
        text.push_str(
            "\nappend: Durability::Memory, pre-faulted segment, no roll-over; copy: the same \
             header and body bytes into a pre-faulted buffer, same run. Replay: from the page \
             cache.",
        );
        text
    }

    fn append_table(&self) -> String {
        let mut rows: Vec<(&str, Vec<String>)> = Vec::new();
        let mut row = |label, value: &dyn Fn(&BodySizeReport) -> String| {
            rows.push((label, self.body_sizes.iter().map(value).collect()));
        };
        row("body bytes", &|s| s.body_bytes.to_string());
        row("timed appends per run", &|s| grouped(s.records));
        row("append ns/record (median)", &|s| {
            format!("{:.1}", s.append_ns)
        });
        row("  min .. max over runs", &|s| {
            format!("{:.1} .. {:.1}", s.append_ns_min, s.append_ns_max)
        });
        row("plain copy ns/record", &|s| format!("{:.1}", s.copy_ns));
        row("append / copy", &|s| {
            format!("{:.2}", s.append_to_copy_ratio)
        });
        row("replay records/s", &|s| {
            grouped(s.replay_records_per_sec.round() as u64)
        });
        row("replay MB/s (header + body)", &|s| {
            format!("{:.0}", s.replay_bytes_per_sec / 1e6)
        });
        row("open_read_only records/s", &|s| {
            grouped(s.open_read_only_records_per_sec.round() as u64)
        });
        row("appender page faults (max run)", &|s| {
            s.append_page_faults_max.map_or("n/a".to_owned(), grouped)
        });
        let label_width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
        let value_width = rows
            .iter()
            .flat_map(|(_, values)| values.iter().map(String::len))
            .max()
            .unwrap_or(0);
        let mut text = format!("append and replay, median of {} runs:\n", self.runs);
        for (label, values) in rows {
            text.push_str(&format!("  {label:<label_width$}"));
            for value in values {
                text.push_str(&format!("  {value:>value_width$}"));
            }
            text.push('\n');
        }
        text
    }
}

/// Nanoseconds in the unit that reads best.
fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny configuration end to end: every step runs, the journal keeps
    /// every record (the replay checks count them), the figures are
    /// present and sane, and nothing is left on disk. No timing assertions.
    #[test]
    fn a_tiny_run_measures_everything_and_cleans_up() {
        let parent =
            std::env::temp_dir().join(format!("journal-bench-test-{}", std::process::id()));
        fs::create_dir_all(&parent).unwrap();
        let config = JournalBenchConfig {
            dir: Some(parent.clone()),
            runs: 2,
            records: 4_096,
            rate_per_sec: 2_000_000,
            fdatasync_samples: 5,
        };
        let mut steps = 0;
        let report = measure_journal(&config, |_| steps += 1).unwrap();
        assert!(steps > 2 * BODY_BYTES.len());
        assert!(!report.dir.exists());
        assert!(report.dir.starts_with(&parent));
        assert_eq!(
            fs::read_dir(&parent).unwrap().count(),
            0,
            "nothing left behind"
        );
        fs::remove_dir(&parent).unwrap();

        assert_eq!((report.runs, report.records), (2, 4_096));
        let sizes: Vec<usize> = report.body_sizes.iter().map(|s| s.body_bytes).collect();
        assert_eq!(sizes, BODY_BYTES);
        assert_eq!(report.body_sizes[2].records, 256);
        for size in &report.body_sizes {
            for figure in [
                size.append_ns,
                size.copy_ns,
                size.append_to_copy_ratio,
                size.replay_records_per_sec,
                size.replay_bytes_per_sec,
                size.open_read_only_records_per_sec,
            ] {
                assert!(figure > 0.0 && figure.is_finite(), "{size:?}");
            }
            assert!(size.append_ns_min <= size.append_ns && size.append_ns <= size.append_ns_max);
        }
        let group = report.group_commit;
        assert!(group.records_per_sec > 0.0 && group.saturated_records_per_sec > 0.0);
        assert!(group.added_latency_ns.p50 > 0);
        assert!(group.added_latency_ns.is_ordered(), "{group:?}");
        assert_eq!(report.fdatasync.samples, 5);
        assert!(report.fdatasync.p50_ns <= report.fdatasync.max_ns);

        let machine = Machine::detect();
        let value = report.to_json(&machine, "x");
        for key in [
            "append_ns_64",
            "copy_ns_64",
            "append_to_copy_ratio_64",
            "append_ns_1024",
            "replay_records_per_sec_1024",
            "replay_bytes_per_sec_1024",
            "group_commit_records_per_sec",
            "group_commit_saturated_records_per_sec",
            "fdatasync_ns_p50",
            "machine",
            "command",
        ] {
            assert!(value.get(key).is_some(), "{key} missing from {value}");
        }
        for key in ["p50", "p99", "p999", "max"] {
            assert!(
                value["group_commit_added_latency_ns"][key].is_u64(),
                "{key}: {value}"
            );
        }
        let table = report.table(&machine, "x");
        assert!(
            table.contains("append / copy") && table.contains("fdatasync"),
            "{table}"
        );
    }

    #[test]
    fn segments_hold_their_records_and_medians_are_the_middle() {
        // Format version 2: a 40-byte record header.
        assert_eq!(footprint(64), 104);
        assert_eq!(footprint(1), 48);
        let bytes = segment_bytes_for(1_000, 64);
        assert!(bytes >= SEGMENT_HEADER_BYTES + 1_000 * 104 + RECORD_ALIGNMENT);
        assert_eq!(bytes % 4_096, 0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        let config = JournalBenchConfig::default();
        assert_eq!(config.records_for(64), 1_000_000);
        assert_eq!(config.records_for(1_024), 62_500);
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(duration(1_500_000), "1.50 ms");
    }
}
