//! `exchange-bench latency`: open-loop latency of the engine against offered
//! load, free of coordinated omission — the latency-versus-throughput curve.
//!
//! ```text
//!  producer thread (core A)                     engine thread (core B)
//!  t_i = start + i / rate                       drain ≤ BATCH_MAX requests
//!  busy-wait until t_i, then push ──[ring]──▶   Engine::apply, then stamp
//!  (late: push at once, t_i kept)               completion[i] = now
//! ```
//!
//! The method, per offered rate (the rates in ascending order):
//!
//! 1. Untimed, on the engine thread: a fresh engine with the workload's
//!    setup applied, the measured commands applied once closed-loop to warm
//!    caches and branch predictors (and checked against the generator's
//!    state hash), then another fresh engine with the setup applied: the
//!    one measured.
//! 2. The producer issues every measured command into the engine's input
//!    ring (an [`engine::ring`] of [`Request`]s, the capacity and batch of
//!    `exchange serve`) on a fixed schedule: command `i` is *intended* for
//!    `t_i = start + i / rate`. It busy-waits until `t_i` and pushes; when
//!    it is late (the engine fell behind and the ring was full, or it was
//!    descheduled) it pushes at once, but `t_i` stays the command's time.
//! 3. The engine thread applies each command and writes the clock into a
//!    preallocated slot for it; no clock is shared or sent between threads
//!    while measuring. Both threads read the same monotonic clock
//!    (`Instant`), so after the step the latency of command `i` is
//!    `completion_i − t_i`, recorded in an HdrHistogram (ns). A stall
//!    delays every command behind it, and each of them counts it: that is
//!    what a closed loop (`exchange-bench engine`) does not see.
//! 4. The step ends the curve when its median exceeds the bound (the
//!    method exchange-core uses for its latency tests) or when the producer
//!    could not keep the schedule (commands issued per second below a
//!    fraction, 95% by default, of the offered rate).
//!
//! The engine thread is a plain loop over [`Engine::apply`], not
//! [`engine::runner::spawn`]: the runner needs a [`engine::Sequencer`],
//! whose journal append (encode, checksum, copy into mapped pages) would be
//! most of every figure and is measured by `exchange-bench journal`, and
//! output rings, whose draining needs a third busy thread that this
//! two-core machine does not have. The loop drains, applies and hands the
//! events on as the runner does; headers are numbered as the sequencer
//! would, with the workload's synthetic clock, so the final state hash is
//! the generator's and is checked after every step.

use crate::cli::{WorkloadChoice, grouped};
use crate::harness::minor_page_faults;
use crate::machine::Machine;
use crate::market::header;
use crate::workload::{Workload, WorkloadKind, generate};
use clap::{Args, ValueEnum};
use engine::runner::{Origin, Request, pin_current_thread};
use engine::{Command, ConfigError, Consumer, Engine, EngineConfig, Event, Producer, Status};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt;
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Slots of the input ring: `exchange serve`'s default `ring_capacity`.
pub const RING_CAPACITY: usize = 65_536;
/// Requests the engine thread takes per drain: `exchange serve`'s batch.
pub const BATCH_MAX: usize = 256;
/// The offered rates without `--rates`, commands per second.
pub const RATES_PER_SEC_DEFAULT: [u64; 9] = [
    100_000, 200_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000, 7_000_000, 10_000_000,
];
/// The offered rates with `--quick`.
pub const RATES_PER_SEC_QUICK: [u64; 4] = [100_000, 500_000, 1_000_000, 2_000_000];
/// Measured commands per step without `--step-commands`.
pub const STEP_COMMANDS_DEFAULT: u64 = 500_000;
/// Measured commands per step with `--quick`.
pub const STEP_COMMANDS_QUICK: u64 = 20_000;
/// The target of issue #6: p99 below this at [`TARGET_RATE_PER_SEC`].
pub const TARGET_P99_NS_MAX: u64 = 1_000;
/// The offered rate the target is stated at.
pub const TARGET_RATE_PER_SEC: u64 = 1_000_000;
/// A send this much after its intended time counts as late.
const LATE_SEND_NS: u64 = 1_000;
/// Time between the release of both threads and the first intended send,
/// so the engine thread is back from the barrier and spinning.
const START_LEAD: Duration = Duration::from_millis(1);
/// The largest latency the histogram tells apart (60 s).
const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Significant decimal digits the histogram keeps (0.1% resolution).
const HISTOGRAM_DIGITS: u8 = 3;
/// Back-to-back clock reads taken to estimate a read's cost.
const CLOCK_SAMPLES: u32 = 100_000;

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenLoopConfig {
    /// Offered rates, commands per second, strictly ascending. Every step
    /// issues all of the workload's measured commands.
    pub rates_per_sec: Vec<u64>,
    /// The curve ends after the first step whose median exceeds this.
    pub median_bound_ns: u64,
    /// The curve ends after the first step whose producer issued fewer than
    /// this fraction of the offered rate (it could not keep up).
    pub achieved_fraction_min: f64,
    /// Capacities of the engine measured.
    pub engine: EngineConfig,
    /// Pin the producer and the engine thread to the first two cores this
    /// process may use (when there are two).
    pub pin: bool,
}

impl Default for OpenLoopConfig {
    fn default() -> OpenLoopConfig {
        OpenLoopConfig {
            rates_per_sec: RATES_PER_SEC_DEFAULT.to_vec(),
            median_bound_ns: 10_000,
            achieved_fraction_min: 0.95,
            engine: EngineConfig::default(),
            pin: true,
        }
    }
}

/// Latency percentiles of one step, in nanoseconds from the intended send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpenLoopPercentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl OpenLoopPercentiles {
    fn of(histogram: &Histogram<u64>) -> OpenLoopPercentiles {
        OpenLoopPercentiles {
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            p9999: histogram.value_at_quantile(0.9999),
            max: histogram.max(),
        }
    }

    /// Whether each percentile is at most the next, up to the maximum.
    pub fn is_ordered(&self) -> bool {
        self.p50 <= self.p90
            && self.p90 <= self.p99
            && self.p99 <= self.p999
            && self.p999 <= self.p9999
            && self.p9999 <= self.max
    }
}

/// One offered rate.
#[derive(Clone, Debug, Serialize)]
pub struct StepReport {
    pub offered_per_sec: u64,
    /// Commands issued per second: `(commands − 1)` over the time from the
    /// first intended send to the last push.
    pub achieved_per_sec: f64,
    /// Commands completed per second: `commands` over the time from the
    /// first intended send to the last completion.
    pub completed_per_sec: f64,
    pub commands: u64,
    /// Commands whose busy-wait ended more than 1 µs after their intended
    /// time (the producer was descheduled or behind).
    pub late_sends: u64,
    /// Commands that found the input ring full (the engine was behind).
    pub ring_full_sends: u64,
    /// Minor page faults of the engine thread while measuring (`None`
    /// where the platform does not say): first touches of the engine's
    /// tables, each microseconds long on a virtual machine.
    pub engine_page_faults: Option<u64>,
    /// Times the scheduler took the core from the engine thread and from
    /// the producer while measuring (involuntary context switches; `None`
    /// where the platform does not say). Each is a stall of a time slice,
    /// milliseconds, that every command behind it waits out.
    pub engine_preemptions: Option<u64>,
    pub producer_preemptions: Option<u64>,
    pub latency_ns: OpenLoopPercentiles,
    pub latency_mean_ns: f64,
    /// Events and rejections of the measured commands, and the engine's
    /// state hash after them: checked against the generator's.
    pub events: u64,
    pub rejected: u64,
    pub state_hash: String,
}

/// Why the curve ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The last step's median exceeded the bound.
    MedianAboveBound,
    /// The last step's producer fell below the fraction of its rate.
    ProducerBehind,
    /// Every rate was measured.
    RatesExhausted,
}

/// The target of issue #6 and what was measured there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TargetVerdict {
    pub offered_per_sec: u64,
    pub p99_ns_max: u64,
    /// `None` when that rate was not measured (not in the list, or the
    /// curve ended below it).
    pub measured_p99_ns: Option<u64>,
    pub met: Option<bool>,
}

/// What `exchange-bench latency` reports.
#[derive(Clone, Debug, Serialize)]
pub struct OpenLoopReport {
    pub workload: &'static str,
    pub seed: u64,
    pub commands_per_step: u64,
    pub setup_commands: u64,
    pub ring_capacity: usize,
    pub batch_max: usize,
    /// The cores of the producer and of the engine thread, `None` unpinned.
    pub cores: Option<[usize; 2]>,
    pub median_bound_ns: u64,
    pub achieved_fraction_min: f64,
    /// The median cost of one clock read; the engine thread pays one per
    /// command (its completion stamp), inside every latency.
    pub clock_read_ns: u64,
    pub steps: Vec<StepReport>,
    pub stop_reason: StopReason,
    pub target: TargetVerdict,
}

/// Why a measurement could not be made.
#[derive(Clone, Debug, PartialEq)]
pub enum OpenLoopError {
    /// The rates or the workload do not make a curve.
    InvalidConfig(String),
    /// The engine configuration is invalid.
    Config(ConfigError),
    /// A setup command was rejected.
    SetupRejected { index: usize },
    /// The engine did not end where the generator's did.
    Diverged {
        pass: &'static str,
        offered_per_sec: u64,
        expected: (u64, u64, u128),
        actual: (u64, u64, u128),
    },
    /// A thread of the step panicked, or the producer stopped early.
    Thread(&'static str),
}

impl fmt::Display for OpenLoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenLoopError::InvalidConfig(why) => f.write_str(why),
            OpenLoopError::Config(error) => write!(f, "{error}"),
            OpenLoopError::SetupRejected { index } => {
                write!(f, "setup command {index} was rejected")
            }
            OpenLoopError::Diverged {
                pass,
                offered_per_sec,
                expected,
                actual,
            } => write!(
                f,
                "the {pass} pass at {offered_per_sec}/s diverged: expected (events, rejected, \
                 hash) {expected:?}, got {actual:?}"
            ),
            OpenLoopError::Thread(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for OpenLoopError {}

/// Measure the curve of `workload` (see the module documentation).
///
/// ```
/// let workload = bench::generate(bench::WorkloadKind::ExchangeCore, 1, 2_000);
/// let config = bench::open_loop::OpenLoopConfig {
///     rates_per_sec: vec![50_000],
///     pin: false,
///     ..Default::default()
/// };
/// let report = bench::open_loop::run_open_loop(&workload, config).unwrap();
/// assert_eq!(report.steps[0].commands, 2_000);
/// ```
pub fn run_open_loop(
    workload: &Workload,
    config: OpenLoopConfig,
) -> Result<OpenLoopReport, OpenLoopError> {
    validate(workload, &config)?;
    // Read once, before any thread is pinned: a pinned thread's children
    // see only its core.
    let cores = match core_affinity::get_core_ids().unwrap_or_default().as_slice() {
        [first, second, ..] if config.pin => Some([first.id, second.id]),
        _ => None,
    };
    let clock_read_ns = clock_read_ns();
    let mut steps = Vec::with_capacity(config.rates_per_sec.len());
    let mut stop_reason = StopReason::RatesExhausted;
    for &rate_per_sec in &config.rates_per_sec {
        let step = run_step(workload, &config, rate_per_sec, cores)?;
        let median_above = step.latency_ns.p50 > config.median_bound_ns;
        let behind = step.achieved_per_sec < config.achieved_fraction_min * rate_per_sec as f64;
        steps.push(step);
        if median_above {
            stop_reason = StopReason::MedianAboveBound;
            break;
        }
        if behind {
            stop_reason = StopReason::ProducerBehind;
            break;
        }
    }
    let measured_p99_ns = steps
        .iter()
        .find(|step| step.offered_per_sec == TARGET_RATE_PER_SEC)
        .map(|step| step.latency_ns.p99);
    Ok(OpenLoopReport {
        workload: workload.kind.name(),
        seed: workload.seed,
        commands_per_step: workload.commands.len() as u64,
        setup_commands: workload.setup.len() as u64,
        ring_capacity: RING_CAPACITY,
        batch_max: BATCH_MAX,
        cores,
        median_bound_ns: config.median_bound_ns,
        achieved_fraction_min: config.achieved_fraction_min,
        clock_read_ns,
        steps,
        stop_reason,
        target: TargetVerdict {
            offered_per_sec: TARGET_RATE_PER_SEC,
            p99_ns_max: TARGET_P99_NS_MAX,
            measured_p99_ns,
            met: measured_p99_ns.map(|p99| p99 < TARGET_P99_NS_MAX),
        },
    })
}

fn validate(workload: &Workload, config: &OpenLoopConfig) -> Result<(), OpenLoopError> {
    let invalid = |why: &str| Err(OpenLoopError::InvalidConfig(why.to_owned()));
    if workload.commands.is_empty() {
        return invalid("the workload has no measured commands");
    }
    if config.rates_per_sec.is_empty() || config.rates_per_sec.contains(&0) {
        return invalid("give at least one rate, each above 0 commands/s");
    }
    if !config
        .rates_per_sec
        .windows(2)
        .all(|pair| pair[0] < pair[1])
    {
        return invalid("the rates must be strictly ascending");
    }
    if !(0.0..=1.0).contains(&config.achieved_fraction_min) {
        return invalid("achieved_fraction_min must be in [0, 1]");
    }
    config.engine.validate().map_err(OpenLoopError::Config)
}

/// What the engine thread saw in one step.
struct EngineOutcome {
    completions: Vec<Instant>,
    events: u64,
    rejected: u64,
    state_hash: u128,
    page_faults: Option<u64>,
    preemptions: Option<u64>,
}

/// What the producer saw in one step.
struct ProducerOutcome {
    start: Instant,
    last_push: Instant,
    late_sends: u64,
    ring_full_sends: u64,
    preemptions: Option<u64>,
}

/// Set on drop, so the engine thread stops waiting for a producer that
/// ended early (panicked, or saw the engine fail).
struct DoneOnDrop<'a>(&'a AtomicBool);

impl Drop for DoneOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn run_step(
    workload: &Workload,
    config: &OpenLoopConfig,
    rate_per_sec: u64,
    cores: Option<[usize; 2]>,
) -> Result<StepReport, OpenLoopError> {
    let (mut producer, mut consumer) = engine::ring::<Request>(RING_CAPACITY);
    prefault(&mut producer, &mut consumer, workload);
    let ready = Barrier::new(2);
    let engine_failed = AtomicBool::new(false);
    let producer_done = AtomicBool::new(false);
    let (engine_result, producer_result) = std::thread::scope(|scope| {
        let engine_thread = scope.spawn(|| {
            engine_side(
                workload,
                config.engine,
                rate_per_sec,
                consumer,
                (&ready, &engine_failed, &producer_done),
                cores.map(|[_, core]| core),
            )
        });
        let producer_thread = scope.spawn(|| {
            producer_side(
                &workload.commands,
                rate_per_sec,
                producer,
                (&ready, &engine_failed, &producer_done),
                cores.map(|[core, _]| core),
            )
        });
        (engine_thread.join(), producer_thread.join())
    });
    let engine =
        engine_result.map_err(|_| OpenLoopError::Thread("the engine thread panicked"))??;
    let producer = producer_result
        .map_err(|_| OpenLoopError::Thread("the producer thread panicked"))?
        .ok_or(OpenLoopError::Thread("the producer stopped early"))?;
    let expected = (workload.events, workload.rejected, workload.state_hash);
    let actual = (engine.events, engine.rejected, engine.state_hash);
    if expected != actual {
        return Err(OpenLoopError::Diverged {
            pass: "measured",
            offered_per_sec: rate_per_sec,
            expected,
            actual,
        });
    }
    Ok(step_report(rate_per_sec, &engine, &producer))
}

/// Write every slot of the ring once (push and drain a full ring), so no
/// page of it is first touched while measuring: a long-running server's
/// ring has been round many times.
fn prefault(
    producer: &mut Producer<Request>,
    consumer: &mut Consumer<Request>,
    workload: &Workload,
) {
    let Some(command) = workload.commands.first() else {
        return;
    };
    let request = Request {
        command: *command,
        origin: Origin::NONE,
    };
    let pushed = producer.push_batch(&mut std::iter::repeat_n(request, RING_CAPACITY));
    let drained = consumer.drain(RING_CAPACITY, drop);
    assert_eq!((pushed, drained), (RING_CAPACITY, RING_CAPACITY));
}

/// Thread-meeting state of a step: the barrier both pass once set up, the
/// engine's "setup failed" flag and the producer's "done" flag.
type Meeting<'a> = (&'a Barrier, &'a AtomicBool, &'a AtomicBool);

/// The engine thread of a step: prepare (untimed), then apply every
/// measured command as it arrives, stamping its completion.
fn engine_side(
    workload: &Workload,
    engine_config: EngineConfig,
    rate_per_sec: u64,
    mut input: Consumer<Request>,
    (ready, engine_failed, producer_done): Meeting<'_>,
    core: Option<usize>,
) -> Result<EngineOutcome, OpenLoopError> {
    if let Some(core) = core {
        // Best effort: unpinned measures too, less steadily.
        let _ = pin_current_thread(core);
    }
    let prepared = warm_up(workload, engine_config, rate_per_sec)
        .and_then(|()| prepared_engine(workload, engine_config));
    let commands = workload.commands.len();
    // Written before the run so no page is first touched while measuring.
    let mut completions = vec![Instant::now(); commands];
    let mut events: Vec<Event> = Vec::with_capacity(1_024);
    engine_failed.store(prepared.is_err(), Ordering::Release);
    ready.wait();
    let mut engine = prepared?;

    let faults_before = minor_page_faults();
    let preemptions_before = preemptions();
    let mut applied = 0usize;
    let mut produced = 0u64;
    let mut rejected = 0u64;
    while applied < commands {
        let taken = input.drain(BATCH_MAX, |request| {
            events.clear();
            let sequence = engine.last_sequence() + 1;
            let status = engine.apply(header(sequence), &request.command, &mut events);
            completions[applied] = Instant::now();
            // The output side reads the events: keep them observable.
            black_box(&events);
            applied += 1;
            produced += events.len() as u64;
            rejected += u64::from(matches!(status, Status::Rejected(_)));
        });
        if taken == 0 {
            if producer_done.load(Ordering::Acquire) && input.is_empty() {
                return Err(OpenLoopError::Thread("the producer stopped early"));
            }
            std::hint::spin_loop();
        }
    }
    let page_faults = minor_page_faults()
        .zip(faults_before)
        .map(|(after, before)| after.saturating_sub(before));
    let preemptions = preemptions()
        .zip(preemptions_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(EngineOutcome {
        completions,
        events: produced,
        rejected,
        state_hash: engine.state_hash(),
        page_faults,
        preemptions,
    })
}

/// The producer of a step: every command at its intended time.
fn producer_side(
    commands: &[Command],
    rate_per_sec: u64,
    mut input: Producer<Request>,
    (ready, engine_failed, producer_done): Meeting<'_>,
    core: Option<usize>,
) -> Option<ProducerOutcome> {
    let _done = DoneOnDrop(producer_done);
    if let Some(core) = core {
        let _ = pin_current_thread(core);
    }
    ready.wait();
    if engine_failed.load(Ordering::Acquire) {
        return None;
    }
    let preemptions_before = preemptions();
    let start = Instant::now() + START_LEAD;
    let mut late_sends = 0u64;
    let mut ring_full_sends = 0u64;
    for (index, command) in commands.iter().enumerate() {
        let intended = start + Duration::from_nanos(intended_ns(index, rate_per_sec));
        let mut now = Instant::now();
        while now < intended {
            std::hint::spin_loop();
            now = Instant::now();
        }
        late_sends += u64::from(now.duration_since(intended).as_nanos() > LATE_SEND_NS.into());
        let mut pending = Request {
            command: *command,
            origin: Origin::NONE,
        };
        if let Err(back) = input.try_push(pending) {
            ring_full_sends += 1;
            pending = back;
            // The engine is behind: wait for a slot; the command keeps its
            // intended time, so the wait is counted in its latency.
            while let Err(back) = input.try_push(pending) {
                pending = back;
                std::hint::spin_loop();
            }
        }
    }
    let last_push = Instant::now();
    Some(ProducerOutcome {
        start,
        last_push,
        preemptions: preemptions()
            .zip(preemptions_before)
            .map(|(after, before)| after.saturating_sub(before)),
        late_sends,
        ring_full_sends,
    })
}

/// Nanoseconds from the start to command `index`'s intended send.
fn intended_ns(index: usize, rate_per_sec: u64) -> u64 {
    debug_assert!(rate_per_sec > 0);
    let nanoseconds = index as u128 * 1_000_000_000 / u128::from(rate_per_sec);
    u64::try_from(nanoseconds).unwrap_or(u64::MAX)
}

/// Apply the setup and every measured command once, closed-loop, to an
/// engine thrown away after: caches, predictors, the allocator. Its end
/// state is checked too.
fn warm_up(
    workload: &Workload,
    engine_config: EngineConfig,
    rate_per_sec: u64,
) -> Result<(), OpenLoopError> {
    let mut engine = prepared_engine(workload, engine_config)?;
    let mut events = Vec::with_capacity(1_024);
    let mut produced = 0u64;
    let mut rejected = 0u64;
    for command in &workload.commands {
        events.clear();
        let sequence = engine.last_sequence() + 1;
        let status = engine.apply(header(sequence), command, &mut events);
        produced += events.len() as u64;
        rejected += u64::from(matches!(status, Status::Rejected(_)));
    }
    let expected = (workload.events, workload.rejected, workload.state_hash);
    let actual = (produced, rejected, engine.state_hash());
    if expected != actual {
        return Err(OpenLoopError::Diverged {
            pass: "warm-up",
            offered_per_sec: rate_per_sec,
            expected,
            actual,
        });
    }
    Ok(())
}

/// A fresh engine with the workload's setup applied.
fn prepared_engine(
    workload: &Workload,
    engine_config: EngineConfig,
) -> Result<Engine, OpenLoopError> {
    let mut engine = Engine::new(engine_config).map_err(OpenLoopError::Config)?;
    let mut events = Vec::new();
    for (index, command) in workload.setup.iter().enumerate() {
        events.clear();
        let sequence = engine.last_sequence() + 1;
        if let Status::Rejected(_) = engine.apply(header(sequence), command, &mut events) {
            return Err(OpenLoopError::SetupRejected { index });
        }
    }
    Ok(engine)
}

/// The step's figures, computed after both threads have ended.
fn step_report(
    rate_per_sec: u64,
    engine: &EngineOutcome,
    producer: &ProducerOutcome,
) -> StepReport {
    // Invariant: constant, valid bounds.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS)
        .expect("valid histogram bounds");
    for (index, completion) in engine.completions.iter().enumerate() {
        let intended = producer.start + Duration::from_nanos(intended_ns(index, rate_per_sec));
        let latency_ns = completion.saturating_duration_since(intended).as_nanos();
        histogram.saturating_record(u64::try_from(latency_ns).unwrap_or(u64::MAX).max(1));
    }
    let commands = engine.completions.len();
    let issued_seconds = producer
        .last_push
        .saturating_duration_since(producer.start)
        .as_secs_f64();
    let last_completion = engine.completions.last().copied().unwrap_or(producer.start);
    let completed_seconds = last_completion
        .saturating_duration_since(producer.start)
        .as_secs_f64();
    StepReport {
        offered_per_sec: rate_per_sec,
        // One command is issued at time 0: n commands span n − 1 periods.
        achieved_per_sec: if commands > 1 {
            (commands - 1) as f64 / issued_seconds.max(1e-9)
        } else {
            rate_per_sec as f64
        },
        completed_per_sec: commands as f64 / completed_seconds.max(1e-9),
        commands: commands as u64,
        late_sends: producer.late_sends,
        ring_full_sends: producer.ring_full_sends,
        engine_page_faults: engine.page_faults,
        engine_preemptions: engine.preemptions,
        producer_preemptions: producer.preemptions,
        latency_ns: OpenLoopPercentiles::of(&histogram),
        latency_mean_ns: histogram.mean(),
        events: engine.events,
        rejected: engine.rejected,
        state_hash: format!("{:032x}", engine.state_hash),
    }
}

/// The calling thread's involuntary context switches so far (Linux:
/// `nonvoluntary_ctxt_switches` of `/proc/thread-self/status`), `None`
/// elsewhere.
fn preemptions() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("nonvoluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()
}

/// The median time between two back-to-back clock reads.
fn clock_read_ns() -> u64 {
    // Invariant: constant, valid bounds.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS)
        .expect("valid histogram bounds");
    for _ in 0..CLOCK_SAMPLES {
        let start = Instant::now();
        let elapsed_ns = start.elapsed().as_nanos();
        histogram.saturating_record(u64::try_from(elapsed_ns).unwrap_or(u64::MAX).max(1));
    }
    histogram.value_at_quantile(0.5)
}

/// Arguments of `exchange-bench latency`.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    /// The workload whose measured commands are issued (`all` is refused).
    #[arg(long, value_enum, default_value_t = WorkloadChoice::ExchangeCore)]
    pub workload: WorkloadChoice,

    /// Offered rates, commands per second, ascending, comma-separated
    /// [default: 100000,200000,500000,1000000,2000000,3000000,5000000,
    /// 7000000,10000000; 100000,500000,1000000,2000000 with --quick].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub rates: Option<Vec<u64>>,

    /// Measured commands per step (the workload's length; its setup is
    /// applied untimed) [default: 500000, 20000 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub step_commands: Option<u64>,

    /// The curve ends after the first step whose median latency exceeds
    /// this, in microseconds.
    #[arg(long, default_value_t = 10.0, value_parser = microseconds_positive)]
    pub median_bound_us: f64,

    /// Seed of the workload generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// A short run for a smoke test (the defaults above in brackets).
    #[arg(long)]
    pub quick: bool,

    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn microseconds_positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(us) if us > 0.0 && us <= 60_000_000.0 => Ok(us),
        _ => Err(format!(
            "{text} is not a number of microseconds in (0, 6e7]"
        )),
    }
}

/// The JSON of `exchange-bench latency`: the report, the machine, the
/// command.
#[derive(Debug, Serialize)]
struct LatencyJson<'a> {
    #[serde(flatten)]
    report: &'a OpenLoopReport,
    machine: &'a Machine,
    command: &'a str,
}

/// Run `exchange-bench latency` (progress on stderr); returns what to print
/// on stdout.
pub fn run_command(arguments: &LatencyArgs) -> Result<String, OpenLoopError> {
    let machine = Machine::detect();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    // By name, so a workload added to the command line's list is measured
    // here too; `all` names no single workload.
    let choice = arguments.workload.to_possible_value();
    let kind = WorkloadKind::ALL
        .into_iter()
        .find(|kind| {
            choice
                .as_ref()
                .is_some_and(|value| value.get_name() == kind.name())
        })
        .ok_or_else(|| {
            OpenLoopError::InvalidConfig("bench latency measures one workload at a time".to_owned())
        })?;
    let (rates, commands) = if arguments.quick {
        (RATES_PER_SEC_QUICK.to_vec(), STEP_COMMANDS_QUICK)
    } else {
        (RATES_PER_SEC_DEFAULT.to_vec(), STEP_COMMANDS_DEFAULT)
    };
    let commands = usize::try_from(arguments.step_commands.unwrap_or(commands))
        .map_err(|_| OpenLoopError::InvalidConfig("--step-commands is too large".to_owned()))?;
    let config = OpenLoopConfig {
        rates_per_sec: arguments.rates.clone().unwrap_or(rates),
        // Reporting bound, not money: rounded to whole nanoseconds.
        median_bound_ns: (arguments.median_bound_us * 1_000.0).round() as u64,
        ..OpenLoopConfig::default()
    };
    eprintln!(
        "latency: generating {commands} {kind} commands from seed {}",
        arguments.seed
    );
    let workload = generate(kind, arguments.seed, commands);
    eprintln!(
        "latency: {} rates, each after an untimed setup and warm-up",
        config.rates_per_sec.len()
    );
    let report = run_open_loop(&workload, config)?;
    if arguments.json {
        serde_json::to_string(&LatencyJson {
            report: &report,
            machine: &machine,
            command: &command,
        })
        .map_err(|error| OpenLoopError::InvalidConfig(format!("JSON: {error}")))
    } else {
        Ok(report.table(&machine, &command))
    }
}

impl OpenLoopReport {
    /// A human-readable table, one row per step.
    pub fn table(&self, machine: &Machine, command: &str) -> String {
        let mut text = format!(
            "exchange-bench latency: open loop, latency from each command's intended send \
             to its completion on the engine thread\n\
             machine: {machine}\n\
             command: {command}\n\
             workload: {} (seed {}), {} commands per step after {} untimed setup commands; \
             ring {} slots, batch {}; cores {}; clock read {} ns (one per command, included)\n\n",
            self.workload,
            self.seed,
            grouped(self.commands_per_step),
            grouped(self.setup_commands),
            self.ring_capacity,
            self.batch_max,
            self.cores.map_or("unpinned".to_owned(), |[a, b]| format!(
                "{a} (producer), {b} (engine)"
            )),
            self.clock_read_ns,
        );
        text.push_str(&format!(
            "{:>12} {:>12} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9} {:>9} {:>8} {:>11}\n",
            "offered/s",
            "issued/s",
            "completed/s",
            "p50 ns",
            "p90 ns",
            "p99 ns",
            "p99.9 ns",
            "p99.99 ns",
            "max ns",
            "late",
            "ring full",
            "faults",
            "preempted"
        ));
        for step in &self.steps {
            let latency = step.latency_ns;
            text.push_str(&format!(
                "{:>12} {:>12} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10} {:>9} {:>9} {:>8} {:>11}\n",
                grouped(step.offered_per_sec),
                grouped(step.achieved_per_sec.round() as u64),
                grouped(step.completed_per_sec.round() as u64),
                grouped(latency.p50),
                grouped(latency.p90),
                grouped(latency.p99),
                grouped(latency.p999),
                grouped(latency.p9999),
                grouped(latency.max),
                grouped(step.late_sends),
                grouped(step.ring_full_sends),
                step.engine_page_faults.map_or("n/a".to_owned(), grouped),
                match (step.engine_preemptions, step.producer_preemptions) {
                    (Some(engine), Some(producer)) => format!("{engine}+{producer}"),
                    _ => "n/a".to_owned(),
                },
            ));
        }
        let stop = match self.stop_reason {
            StopReason::MedianAboveBound => "the last step's median exceeded the bound",
            StopReason::ProducerBehind => "the last step's producer fell behind its schedule",
            StopReason::RatesExhausted => "every rate was measured",
        };
        text.push_str(&format!(
            "\nstopped: {stop} (median bound {} ns, issued ≥ {:.0}% of offered)\n",
            grouped(self.median_bound_ns),
            self.achieved_fraction_min * 100.0
        ));
        let target = self.target;
        text.push_str(&match (target.measured_p99_ns, target.met) {
            (Some(p99), Some(met)) => format!(
                "target: p99 < {} ns at {} commands/s offered: {} (p99 {} ns)",
                target.p99_ns_max,
                grouped(target.offered_per_sec),
                if met { "MET" } else { "NOT MET" },
                grouped(p99)
            ),
            _ => format!(
                "target: p99 < {} ns at {} commands/s offered: not measured (rate not reached)",
                target.p99_ns_max,
                grouped(target.offered_per_sec)
            ),
        });
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn lenient(rates_per_sec: Vec<u64>) -> OpenLoopConfig {
        OpenLoopConfig {
            rates_per_sec,
            // A shared test machine: never stop early, the shape is checked.
            median_bound_ns: u64::MAX,
            achieved_fraction_min: 0.0,
            pin: false,
            ..OpenLoopConfig::default()
        }
    }

    #[test]
    fn quick_curve_is_ordered_and_measures_the_right_work() {
        let workload = generate(WorkloadKind::ExchangeCore, 3, 5_000);
        let report = run_open_loop(&workload, lenient(vec![25_000, 50_000, 100_000])).unwrap();
        assert!(report.steps.len() >= 2, "{report:?}");
        assert_eq!(report.stop_reason, StopReason::RatesExhausted);
        assert_eq!(report.commands_per_step, 5_000);
        for step in &report.steps {
            assert!(step.latency_ns.is_ordered(), "{step:?}");
            assert!(step.latency_ns.p50 >= 1, "{step:?}");
            assert_eq!(step.commands, 5_000);
            assert_eq!(step.state_hash, format!("{:032x}", workload.state_hash));
            assert_eq!(
                (step.events, step.rejected),
                (workload.events, workload.rejected)
            );
            assert!(step.achieved_per_sec > 0.0 && step.completed_per_sec > 0.0);
            // The schedule is never beaten: n commands take n − 1 periods.
            assert!(
                step.achieved_per_sec <= step.offered_per_sec as f64 * 1.01,
                "{step:?}"
            );
        }
        assert_eq!(report.target.measured_p99_ns, None);
        let text = report.table(&Machine::detect(), "test");
        assert!(text.contains("offered/s"), "{text}");
    }

    #[test]
    fn a_stream_that_does_not_match_its_claims_fails() {
        let mut workload = generate(WorkloadKind::ExchangeCore, 3, 500);
        workload.state_hash ^= 1;
        let error = run_open_loop(&workload, lenient(vec![50_000])).unwrap_err();
        assert!(
            matches!(
                error,
                OpenLoopError::Diverged {
                    pass: "warm-up",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn the_curve_stops_at_the_median_bound() {
        let workload = generate(WorkloadKind::ExchangeCore, 3, 1_000);
        let mut config = lenient(vec![50_000, 100_000]);
        // Every median exceeds 1 ns.
        config.median_bound_ns = 1;
        let report = run_open_loop(&workload, config).unwrap();
        assert_eq!(report.steps.len(), 1);
        assert_eq!(report.stop_reason, StopReason::MedianAboveBound);
    }

    #[test]
    fn rates_must_ascend() {
        let workload = generate(WorkloadKind::ExchangeCore, 3, 10);
        for rates in [vec![], vec![0], vec![2, 1], vec![1, 1]] {
            assert!(matches!(
                run_open_loop(&workload, lenient(rates)),
                Err(OpenLoopError::InvalidConfig(_))
            ));
        }
    }

    #[test]
    fn preemptions_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(preemptions().is_some());
        }
    }

    #[test]
    fn intended_times_follow_the_rate() {
        assert_eq!(intended_ns(0, 1_000_000), 0);
        assert_eq!(intended_ns(1, 1_000_000), 1_000);
        assert_eq!(intended_ns(3, 3_000_000), 1_000);
        assert_eq!(intended_ns(500_000, 100_000), 5_000_000_000);
    }

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(flatten)]
        arguments: LatencyArgs,
    }

    #[test]
    fn arguments_parse() {
        let cli = TestCli::try_parse_from(["latency"]).unwrap();
        assert_eq!(cli.arguments.rates, None);
        assert_eq!(cli.arguments.median_bound_us, 10.0);
        let cli = TestCli::try_parse_from([
            "latency",
            "--rates",
            "1000,2000",
            "--step-commands",
            "50",
            "--median-bound-us",
            "2.5",
            "--quick",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.arguments.rates, Some(vec![1_000, 2_000]));
        assert_eq!(cli.arguments.step_commands, Some(50));
        assert!(cli.arguments.quick && cli.arguments.json);
        assert!(TestCli::try_parse_from(["latency", "--median-bound-us", "0"]).is_err());
        assert!(TestCli::try_parse_from(["latency", "--rates", "0"]).is_err());
    }
}
