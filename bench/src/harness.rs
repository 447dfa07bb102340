//! The measurement harness: applies a workload's measured commands to a
//! fresh engine on one thread, the way the engine thread does, and reports
//! throughput and per-command latency.
//!
//! The method, per workload:
//!
//! 1. The timer's own cost is measured (back-to-back clock reads).
//! 2. Warm-up: the whole stream is applied once to an engine of its own and
//!    thrown away (instruction and data caches, branch predictors, the
//!    allocator, the command vector's pages).
//! 3. `runs` times: a **throughput pass** — a fresh engine, set up untimed,
//!    then every measured command applied with one clock read before the
//!    first and one after the last; and a **latency pass** — another fresh
//!    engine, the same stream, with a clock read before and after each
//!    command, the difference recorded in an HdrHistogram. Timing each
//!    command costs two clock reads (see `timer_overhead_ns`, included in
//!    every latency) and perturbs the pipeline, which is why throughput
//!    comes from the untimed pass.
//! 4. The reported run is the median run by throughput (the upper middle
//!    one for an even count), with its own latency pass; every run is kept
//!    in `run_results`.
//!
//! Events go into one `Vec<Event>` cleared before each command — the
//! realistic sink: the engine loop hands each command's events on. Every
//! pass must end with the state hash, event count and rejection count the
//! generator saw, or the harness fails: a benchmark that did different work
//! than it claims is worse than none.
//!
//! This is a closed loop: the next command starts when the last one ends,
//! so a stall delays the commands behind it without being counted against
//! them (coordinated omission). It measures the state machine's service
//! time, not a queueing system's response time; the end-to-end benchmarks
//! with an arrival schedule belong with the gateway.

use crate::market::header;
use crate::workload::{BookShape, CommandMix, Workload};
use engine::{Command, ConfigError, Engine, EngineConfig, Event, RejectReason, Sequencer, Status};
use hdrhistogram::Histogram;
use journal::JournalOptions;
use serde::Serialize;
use std::fmt;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The largest latency the histogram tells apart; longer ones count as
/// this (60 s: nothing a single command does should come near it).
const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Significant decimal digits the histogram keeps (0.1% resolution).
const HISTOGRAM_DIGITS: u8 = 3;
/// Back-to-back clock reads taken to estimate the timer's cost.
const TIMER_SAMPLES: u32 = 100_000;

/// Per-command latency percentiles, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencyPercentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl LatencyPercentiles {
    pub(crate) fn of(histogram: &Histogram<u64>) -> LatencyPercentiles {
        LatencyPercentiles {
            p50: histogram.value_at_quantile(0.5),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            p9999: histogram.value_at_quantile(0.9999),
            max: histogram.max(),
        }
    }

    /// Whether each percentile is at most the next, up to the maximum.
    pub fn is_ordered(&self) -> bool {
        self.p50 <= self.p99
            && self.p99 <= self.p999
            && self.p999 <= self.p9999
            && self.p9999 <= self.max
    }
}

/// One repetition: a throughput pass and a latency pass.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RunReport {
    /// Wall time of the throughput pass.
    pub seconds: f64,
    /// Measured commands per second in the throughput pass.
    pub throughput_per_sec: f64,
    /// Minor page faults during the throughput pass (`None` where the
    /// platform does not say).
    pub page_faults: Option<u64>,
    /// Per-command latency from the latency pass.
    pub latency_ns: LatencyPercentiles,
    pub latency_mean_ns: f64,
    /// Wall time of the latency pass, timer reads included.
    pub latency_pass_seconds: f64,
}

/// What `exchange-bench engine` reports for one workload.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadReport {
    pub workload: &'static str,
    pub seed: u64,
    /// Measured commands.
    pub commands: u64,
    /// Commands applied, untimed, before each pass.
    pub setup_commands: u64,
    pub runs: u32,
    /// The engine's `orders_max`, which sizes its order tables.
    pub orders_max: u32,
    /// The median run's throughput pass.
    pub seconds: f64,
    pub throughput_per_sec: f64,
    pub throughput_per_sec_min: f64,
    pub throughput_per_sec_max: f64,
    /// The median run's latency pass.
    pub latency_ns: LatencyPercentiles,
    pub latency_mean_ns: f64,
    /// The median of back-to-back clock reads: the timer's share of every
    /// latency above.
    pub timer_overhead_ns: u64,
    pub page_faults: Option<u64>,
    /// Events the measured commands produced (every pass, checked).
    pub events: u64,
    pub fills: u64,
    pub rejected: u64,
    /// `Engine::state_hash` after the last command (every pass, checked).
    pub state_hash: String,
    pub accounts: u32,
    pub mix: CommandMix,
    pub book_start: BookShape,
    pub book_mean: BookShape,
    pub book_end: BookShape,
    /// Time to generate the workload (not part of any measurement); set by
    /// the caller that generated it.
    pub generation_seconds: f64,
    /// With `--journal`: where the last run's journal is, and its policy.
    pub journal_dir: Option<String>,
    pub durability: Option<&'static str>,
    pub run_results: Vec<RunReport>,
}

/// Why a measurement could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HarnessError {
    /// The engine configuration is invalid.
    Config(ConfigError),
    /// A setup command was rejected.
    SetupRejected { index: usize, reason: RejectReason },
    /// A pass did not end where the generator's engine did: the engine is
    /// not deterministic, or the stream was not what it was said to be.
    Diverged {
        pass: &'static str,
        expected: PassSummary,
        actual: PassSummary,
    },
    /// The journal could not be opened, written or removed.
    Journal(String),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Config(error) => write!(f, "{error}"),
            HarnessError::SetupRejected { index, reason } => {
                write!(f, "setup command {index} was rejected: {reason:?}")
            }
            HarnessError::Diverged {
                pass,
                expected,
                actual,
            } => write!(
                f,
                "the {pass} pass diverged: expected {expected:?}, got {actual:?}"
            ),
            HarnessError::Journal(error) => write!(f, "journal: {error}"),
        }
    }
}

impl std::error::Error for HarnessError {}

/// What a pass must agree on with the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassSummary {
    pub events: u64,
    pub rejected: u64,
    pub state_hash: u128,
}

/// Measure `workload` over `runs` repetitions (see the module documentation
/// for the method).
///
/// ```
/// let workload = bench::generate(bench::WorkloadKind::ExchangeCore, 1, 2_000);
/// let report = bench::measure(&workload, 1).unwrap();
/// assert_eq!(report.commands, 2_000);
/// assert!(report.throughput_per_sec > 0.0);
/// ```
pub fn measure(workload: &Workload, runs: u32) -> Result<WorkloadReport, HarnessError> {
    measure_with_config(workload, runs, EngineConfig::default())
}

/// [`measure`] with engine capacities other than the default (production)
/// ones; the capacities size the engine's tables, so they change how much
/// memory each command touches.
pub fn measure_with_config(
    workload: &Workload,
    runs: u32,
    config: EngineConfig,
) -> Result<WorkloadReport, HarnessError> {
    measure_subject(workload, runs, config, &mut |_pass, _run| {
        prepared_engine(workload, config)
    })
}

/// Where `exchange-bench engine --journal DIR` writes: every command goes
/// through [`Sequencer::submit`] (stamped with the clock, appended to a
/// real journal, then applied), so the figures are the engine's and the
/// journal's together.
#[derive(Clone, Debug)]
pub struct JournalTarget {
    /// Must hold no journal. Every pass writes a fresh journal; the last
    /// run's throughput pass leaves its journal here (setup and measured
    /// commands, so `exchange journal replay DIR` ends at the reported state
    /// hash). The other passes write to scratch directories inside it, each
    /// removed after its pass.
    pub dir: PathBuf,
    pub options: JournalOptions,
}

/// [`measure_with_config`] with every command journaled (see
/// [`JournalTarget`]).
pub fn measure_journaled(
    workload: &Workload,
    runs: u32,
    config: EngineConfig,
    target: &JournalTarget,
) -> Result<WorkloadReport, HarnessError> {
    std::fs::create_dir_all(&target.dir)
        .map_err(|error| HarnessError::Journal(format!("{}: {error}", target.dir.display())))?;
    let holds_journal = std::fs::read_dir(&target.dir)
        .map_err(|error| HarnessError::Journal(format!("{}: {error}", target.dir.display())))?
        .filter_map(Result::ok)
        .any(|entry| entry.file_name().to_string_lossy().starts_with("segment-"));
    if holds_journal {
        return Err(HarnessError::Journal(format!(
            "{} already holds a journal: give an empty directory",
            target.dir.display()
        )));
    }
    let mut scratch: Option<PathBuf> = None;
    let report = measure_subject(workload, runs, config, &mut |pass, run| {
        // The previous pass's sequencer is dropped (journal closed) by now.
        if let Some(dir) = scratch.take() {
            remove_journal_dir(&dir)?;
        }
        let dir = if pass == "throughput" && run + 1 == runs {
            target.dir.clone()
        } else {
            let dir = target.dir.join(format!(".bench-{pass}-{run}"));
            scratch = Some(dir.clone());
            dir
        };
        prepared_sequencer(workload, config, &dir, target.options)
    });
    if let Some(dir) = scratch.take() {
        remove_journal_dir(&dir)?;
    }
    report
}

fn remove_journal_dir(dir: &Path) -> Result<(), HarnessError> {
    std::fs::remove_dir_all(dir)
        .map_err(|error| HarnessError::Journal(format!("{}: {error}", dir.display())))
}

/// The method of the module docs, for any subject: `fresh(pass, run)`
/// gives a subject with the workload's setup applied.
fn measure_subject<S: Subject>(
    workload: &Workload,
    runs: u32,
    config: EngineConfig,
    fresh: &mut dyn FnMut(&'static str, u32) -> Result<S, HarnessError>,
) -> Result<WorkloadReport, HarnessError> {
    assert!(runs >= 1, "at least one run");
    let expected = PassSummary {
        events: workload.events,
        rejected: workload.rejected,
        state_hash: workload.state_hash,
    };
    let timer_overhead_ns = timer_overhead_ns();
    let mut events = Vec::with_capacity(1_024);

    let mut subject = fresh("warm-up", 0)?;
    let warm_up = throughput_pass(&mut subject, workload, &mut events)?;
    check("warm-up", expected, warm_up.summary(&subject))?;
    drop(subject);

    let mut results = Vec::with_capacity(runs as usize);
    for run in 0..runs {
        let mut subject = fresh("latency", run)?;
        // Invariant: constant, valid bounds.
        let mut histogram = Histogram::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS)
            .expect("valid histogram bounds");
        let latency = latency_pass(&mut subject, workload, &mut events, &mut histogram)?;
        check("latency", expected, latency.summary(&subject))?;
        drop(subject);

        let mut subject = fresh("throughput", run)?;
        let faults_before = minor_page_faults();
        let pass = throughput_pass(&mut subject, workload, &mut events)?;
        let page_faults = minor_page_faults()
            .zip(faults_before)
            .map(|(after, before)| after.saturating_sub(before));
        check("throughput", expected, pass.summary(&subject))?;
        drop(subject);

        let seconds = pass.elapsed.as_secs_f64();
        results.push(RunReport {
            seconds,
            throughput_per_sec: workload.commands.len() as f64 / seconds,
            page_faults,
            latency_ns: LatencyPercentiles::of(&histogram),
            latency_mean_ns: histogram.mean(),
            latency_pass_seconds: latency.elapsed.as_secs_f64(),
        });
    }
    Ok(report(workload, runs, config, timer_overhead_ns, results))
}

/// What the passes apply commands to: the bare state machine, or the
/// sequencer (clock, journal, state machine).
trait Subject {
    fn apply(&mut self, command: &Command, events: &mut Vec<Event>)
    -> Result<Status, HarnessError>;
    fn state_hash(&self) -> u128;
}

/// The state machine alone, with headers numbered as the sequencer would.
struct Bare {
    engine: Engine,
}

impl Subject for Bare {
    #[inline]
    fn apply(
        &mut self,
        command: &Command,
        events: &mut Vec<Event>,
    ) -> Result<Status, HarnessError> {
        let sequence = self.engine.last_sequence() + 1;
        Ok(self.engine.apply(header(sequence), command, events))
    }

    fn state_hash(&self) -> u128 {
        self.engine.state_hash()
    }
}

impl Subject for Sequencer {
    #[inline]
    fn apply(
        &mut self,
        command: &Command,
        events: &mut Vec<Event>,
    ) -> Result<Status, HarnessError> {
        match self.submit(command, events) {
            Ok((_, status)) => Ok(status),
            Err(error) => Err(HarnessError::Journal(error.to_string())),
        }
    }

    fn state_hash(&self) -> u128 {
        self.engine().state_hash()
    }
}

fn report(
    workload: &Workload,
    runs: u32,
    config: EngineConfig,
    timer_overhead_ns: u64,
    results: Vec<RunReport>,
) -> WorkloadReport {
    let mut by_throughput: Vec<&RunReport> = results.iter().collect();
    by_throughput.sort_by(|a, b| a.throughput_per_sec.total_cmp(&b.throughput_per_sec));
    let median = *by_throughput[by_throughput.len() / 2];
    WorkloadReport {
        workload: workload.kind.name(),
        seed: workload.seed,
        commands: workload.commands.len() as u64,
        setup_commands: workload.setup.len() as u64,
        runs,
        orders_max: config.orders_max,
        seconds: median.seconds,
        throughput_per_sec: median.throughput_per_sec,
        throughput_per_sec_min: by_throughput[0].throughput_per_sec,
        throughput_per_sec_max: by_throughput[by_throughput.len() - 1].throughput_per_sec,
        latency_ns: median.latency_ns,
        latency_mean_ns: median.latency_mean_ns,
        timer_overhead_ns,
        page_faults: median.page_faults,
        events: workload.events,
        fills: workload.fills,
        rejected: workload.rejected,
        state_hash: format!("{:032x}", workload.state_hash),
        accounts: workload.accounts,
        mix: workload.mix,
        book_start: workload.book_start,
        book_mean: workload.book_mean,
        book_end: workload.book_end,
        generation_seconds: 0.0,
        journal_dir: None,
        durability: None,
        run_results: results,
    }
}

fn check(
    pass: &'static str,
    expected: PassSummary,
    actual: PassSummary,
) -> Result<(), HarnessError> {
    if expected == actual {
        Ok(())
    } else {
        Err(HarnessError::Diverged {
            pass,
            expected,
            actual,
        })
    }
}

/// A fresh engine with the workload's setup applied.
fn prepared_engine(workload: &Workload, config: EngineConfig) -> Result<Bare, HarnessError> {
    let mut bare = Bare {
        engine: Engine::new(config).map_err(HarnessError::Config)?,
    };
    apply_setup(&mut bare, workload)?;
    Ok(bare)
}

/// A sequencer on a fresh journal in `dir`, with the workload's setup
/// journaled and applied.
fn prepared_sequencer(
    workload: &Workload,
    config: EngineConfig,
    dir: &Path,
    options: JournalOptions,
) -> Result<Sequencer, HarnessError> {
    let (mut sequencer, _) = Sequencer::open(dir, config, options)
        .map_err(|error| HarnessError::Journal(error.to_string()))?;
    apply_setup(&mut sequencer, workload)?;
    Ok(sequencer)
}

fn apply_setup(subject: &mut impl Subject, workload: &Workload) -> Result<(), HarnessError> {
    let mut events = Vec::new();
    for (index, command) in workload.setup.iter().enumerate() {
        events.clear();
        if let Status::Rejected(reason) = subject.apply(command, &mut events)? {
            return Err(HarnessError::SetupRejected { index, reason });
        }
    }
    Ok(())
}

/// What one pass did.
#[derive(Clone, Copy, Debug)]
struct PassOutcome {
    elapsed: Duration,
    events: u64,
    rejected: u64,
}

impl PassOutcome {
    fn summary(&self, subject: &impl Subject) -> PassSummary {
        PassSummary {
            events: self.events,
            rejected: self.rejected,
            state_hash: subject.state_hash(),
        }
    }
}

/// Apply the measured commands with one clock read at each end.
fn throughput_pass(
    subject: &mut impl Subject,
    workload: &Workload,
    events: &mut Vec<Event>,
) -> Result<PassOutcome, HarnessError> {
    let commands: &[Command] = &workload.commands;
    let mut produced = 0_u64;
    let mut rejected = 0_u64;
    let start = Instant::now();
    for command in commands {
        events.clear();
        let status = subject.apply(command, events)?;
        // The sink's consumer reads the events: keep the compiler from
        // deciding nobody does.
        black_box(&*events);
        produced += events.len() as u64;
        rejected += u64::from(matches!(status, Status::Rejected(_)));
    }
    Ok(PassOutcome {
        elapsed: start.elapsed(),
        events: produced,
        rejected,
    })
}

/// Apply the measured commands, timing each one.
fn latency_pass(
    subject: &mut impl Subject,
    workload: &Workload,
    events: &mut Vec<Event>,
    histogram: &mut Histogram<u64>,
) -> Result<PassOutcome, HarnessError> {
    let commands: &[Command] = &workload.commands;
    let mut produced = 0_u64;
    let mut rejected = 0_u64;
    let pass_start = Instant::now();
    for command in commands {
        let start = Instant::now();
        events.clear();
        let status = subject.apply(command, events)?;
        black_box(&*events);
        let latency_ns = start.elapsed().as_nanos();
        histogram.saturating_record(u64::try_from(latency_ns).unwrap_or(u64::MAX));
        produced += events.len() as u64;
        rejected += u64::from(matches!(status, Status::Rejected(_)));
    }
    Ok(PassOutcome {
        elapsed: pass_start.elapsed(),
        events: produced,
        rejected,
    })
}

/// The median time between two back-to-back clock reads, as the latency
/// pass takes them.
fn timer_overhead_ns() -> u64 {
    // Invariant: constant, valid bounds.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS)
        .expect("valid histogram bounds");
    for _ in 0..TIMER_SAMPLES {
        let start = Instant::now();
        let elapsed_ns = start.elapsed().as_nanos();
        histogram.saturating_record(u64::try_from(elapsed_ns).unwrap_or(u64::MAX).max(1));
    }
    histogram.value_at_quantile(0.5)
}

/// The calling thread's minor page faults so far (Linux:
/// `/proc/thread-self/stat` field 10), `None` elsewhere. The thread's, not
/// the process's: with a journal, its helper thread pre-faults the next
/// segment while a pass runs.
pub(crate) fn minor_page_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces;
    // fields 3 onwards follow the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(7)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{WorkloadKind, generate};

    #[test]
    fn smoke_report_is_sane() {
        for kind in WorkloadKind::ALL {
            let workload = generate(kind, 5, 3_000);
            let report = measure(&workload, 3).unwrap();
            assert_eq!(report.workload, kind.name());
            assert_eq!(report.commands, 3_000);
            assert_eq!(report.runs, 3);
            assert_eq!(report.run_results.len(), 3);
            assert!(report.seconds > 0.0);
            assert!(report.throughput_per_sec > 0.0 && report.throughput_per_sec.is_finite());
            assert!(report.throughput_per_sec_min <= report.throughput_per_sec);
            assert!(report.throughput_per_sec <= report.throughput_per_sec_max);
            assert!(report.latency_ns.p50 > 0, "{:?}", report.latency_ns);
            assert!(report.latency_ns.is_ordered(), "{:?}", report.latency_ns);
            assert!(
                report
                    .run_results
                    .iter()
                    .all(|run| run.latency_ns.is_ordered())
            );
            assert!(
                report.events >= report.commands,
                "every command has an event"
            );
            assert_eq!(report.state_hash, format!("{:032x}", workload.state_hash));
            assert_eq!(report.state_hash.len(), 32);
        }
    }

    #[test]
    fn a_stream_that_does_not_match_its_claims_fails() {
        let mut workload = generate(WorkloadKind::ExchangeCore, 5, 500);
        workload.state_hash ^= 1;
        let error = measure(&workload, 1).unwrap_err();
        assert!(
            matches!(
                error,
                HarnessError::Diverged {
                    pass: "warm-up",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut histogram =
            Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS).unwrap();
        for value in 1..=10_000 {
            histogram.record(value).unwrap();
        }
        let percentiles = LatencyPercentiles::of(&histogram);
        assert!(percentiles.is_ordered());
        assert!(
            (4_990..=5_010).contains(&percentiles.p50),
            "{percentiles:?}"
        );
        assert!(
            (9_890..=9_910).contains(&percentiles.p99),
            "{percentiles:?}"
        );
        assert!(
            (9_995..=10_010).contains(&percentiles.max),
            "{percentiles:?}"
        );
    }

    #[test]
    fn page_faults_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(minor_page_faults().is_some());
        }
    }
}
