//! `exchange-bench ring`: the cost of handing a message from one thread to
//! another, for the engine's own SPSC ring ([`engine::ring`]) and its peers
//! `crossbeam::queue::ArrayQueue` and `crossbeam::channel::bounded`, measured
//! in the same run, interleaved run by run so drift hits all alike.
//!
//! Two threads, pinned to two different cores when the machine has them
//! (the core list is read once, on the calling thread, before anything is
//! pinned: `core_affinity::get_core_ids()` reports the *calling thread's*
//! allowed cores). Messages are 64 bytes (`[u64; 8]`), sequence-numbered;
//! every run checks that each arrives once and in order.
//!
//! - Throughput: one way, the producer pushing one message at a time
//!   (spinning while the queue is full), the consumer draining up to
//!   [`BATCH_MAX`] per call; messages per second from the release of both
//!   threads to the arrival of the last message.
//! - Latency: ping-pong through two queues; each round trip timed by the
//!   pinging thread into an HdrHistogram (the clock read is included), and
//!   halved for the one-way figure.
//!
//! Each figure is the median over `--runs` runs.

use crate::machine::Machine;
use crossbeam::queue::ArrayQueue;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A 64-byte message: the sequence number in the first word.
pub type RingMessage = [u64; 8];

/// Slots of every queue measured.
pub const RING_CAPACITY: usize = 1024;

/// The most messages a consumer takes per drain call.
pub const BATCH_MAX: usize = 256;

/// Round trips before the timed ones of each latency run.
const WARM_UP_ROUND_TRIPS: u64 = 10_000;

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingBenchConfig {
    /// Messages per throughput run.
    pub messages: u64,
    /// Timed round trips per latency run.
    pub round_trips: u64,
    /// Runs per queue; figures are their median.
    pub runs: u32,
}

/// The queues compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QueueKind {
    EngineRing,
    CrossbeamArrayQueue,
    CrossbeamChannel,
}

impl QueueKind {
    const ALL: [QueueKind; 3] = [
        QueueKind::EngineRing,
        QueueKind::CrossbeamArrayQueue,
        QueueKind::CrossbeamChannel,
    ];

    fn name(self) -> &'static str {
        match self {
            QueueKind::EngineRing => "engine_ring",
            QueueKind::CrossbeamArrayQueue => "crossbeam_array_queue",
            QueueKind::CrossbeamChannel => "crossbeam_channel_bounded",
        }
    }
}

/// Percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct HopPercentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The figures of one queue (medians over the runs).
#[derive(Clone, Debug, Serialize)]
pub struct QueueReport {
    pub queue: &'static str,
    pub throughput_messages_per_sec: f64,
    pub throughput_messages_per_sec_min: f64,
    pub throughput_messages_per_sec_max: f64,
    /// `1e9 / throughput_messages_per_sec`: the amortised cost of a message.
    pub throughput_ns_per_message: f64,
    pub round_trip_ns: HopPercentiles,
    /// `round_trip_ns / 2`.
    pub one_way_ns: HopPercentiles,
}

/// The whole measurement.
#[derive(Clone, Debug, Serialize)]
pub struct RingBenchReport {
    pub messages: u64,
    pub round_trips: u64,
    pub runs: u32,
    pub message_bytes: usize,
    pub capacity: usize,
    pub batch_max: usize,
    /// The cores the two threads were pinned to, or `None` if unpinned.
    pub cores: Option<[usize; 2]>,
    pub queues: Vec<QueueReport>,
    /// The queue with the highest median throughput.
    pub winner_throughput: &'static str,
    /// The queue with the lowest median round-trip p50.
    pub winner_latency_p50: &'static str,
}

/// Sending side of a measured queue.
trait HopSender: Send + 'static {
    fn try_send(&mut self, message: RingMessage) -> Result<(), RingMessage>;
}

/// Receiving side of a measured queue.
trait HopReceiver: Send + 'static {
    /// Take up to `max` messages; returns how many.
    fn drain(&mut self, max: usize, consume: impl FnMut(RingMessage)) -> usize;
}

impl HopSender for engine::Producer<RingMessage> {
    fn try_send(&mut self, message: RingMessage) -> Result<(), RingMessage> {
        self.try_push(message)
    }
}

impl HopReceiver for engine::Consumer<RingMessage> {
    fn drain(&mut self, max: usize, consume: impl FnMut(RingMessage)) -> usize {
        engine::Consumer::drain(self, max, consume)
    }
}

/// Either end of an `ArrayQueue` (it is multi-producer, multi-consumer).
struct ArrayQueueEnd(Arc<ArrayQueue<RingMessage>>);

impl HopSender for ArrayQueueEnd {
    fn try_send(&mut self, message: RingMessage) -> Result<(), RingMessage> {
        self.0.push(message)
    }
}

impl HopReceiver for ArrayQueueEnd {
    fn drain(&mut self, max: usize, mut consume: impl FnMut(RingMessage)) -> usize {
        let mut count = 0;
        while count < max {
            let Some(message) = self.0.pop() else { break };
            consume(message);
            count += 1;
        }
        count
    }
}

impl HopSender for crossbeam::channel::Sender<RingMessage> {
    fn try_send(&mut self, message: RingMessage) -> Result<(), RingMessage> {
        crossbeam::channel::Sender::try_send(self, message).map_err(|error| error.into_inner())
    }
}

impl HopReceiver for crossbeam::channel::Receiver<RingMessage> {
    fn drain(&mut self, max: usize, mut consume: impl FnMut(RingMessage)) -> usize {
        let mut count = 0;
        while count < max {
            let Ok(message) = self.try_recv() else { break };
            consume(message);
            count += 1;
        }
        count
    }
}

fn array_queue_pair() -> (ArrayQueueEnd, ArrayQueueEnd) {
    let queue = Arc::new(ArrayQueue::new(RING_CAPACITY));
    (ArrayQueueEnd(Arc::clone(&queue)), ArrayQueueEnd(queue))
}

/// Pins the calling thread to `core`, if there is one.
fn pin(core: Option<core_affinity::CoreId>) {
    if let Some(core) = core {
        // Best effort: an unpinned thread still measures, less steadily.
        let _ = core_affinity::set_for_current(core);
    }
}

fn message(sequence: u64) -> RingMessage {
    [sequence, 1, 2, 3, 4, 5, 6, 7]
}

/// One throughput run: `messages` one way; returns messages per second.
fn throughput_run<S: HopSender, R: HopReceiver>(
    (mut sender, mut receiver): (S, R),
    messages: u64,
    cores: [Option<core_affinity::CoreId>; 2],
) -> Result<f64, String> {
    let go = Arc::new(AtomicBool::new(false));
    let producer_go = Arc::clone(&go);
    let producer = std::thread::spawn(move || {
        pin(cores[0]);
        while !producer_go.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        for sequence in 0..messages {
            let mut pending = message(sequence);
            while let Err(back) = sender.try_send(pending) {
                pending = back;
                std::hint::spin_loop();
            }
        }
    });
    let consumer_go = Arc::clone(&go);
    let consumer = std::thread::spawn(move || {
        pin(cores[1]);
        while !consumer_go.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        let mut expected = 0u64;
        let mut out_of_order = None;
        while expected < messages {
            let taken = receiver.drain(BATCH_MAX, |message| {
                if message[0] != expected && out_of_order.is_none() {
                    out_of_order = Some((expected, message[0]));
                }
                expected += 1;
            });
            if taken == 0 {
                std::hint::spin_loop();
            }
        }
        (Instant::now(), out_of_order)
    });
    // Let both threads reach their spin before the clock starts.
    std::thread::sleep(Duration::from_millis(5));
    let started = Instant::now();
    go.store(true, Ordering::Release);
    producer.join().map_err(|_| "producer panicked")?;
    let (finished, out_of_order) = consumer.join().map_err(|_| "consumer panicked")?;
    if let Some((expected, got)) = out_of_order {
        return Err(format!("message {got} arrived where {expected} was due"));
    }
    let seconds = finished.duration_since(started).as_secs_f64();
    Ok(messages as f64 / seconds.max(1e-9))
}

/// One latency run: `round_trips` ping-pongs through two queues; returns
/// the round-trip histogram in nanoseconds.
fn latency_run<S: HopSender, R: HopReceiver>(
    (mut ping_sender, mut ping_receiver): (S, R),
    (mut pong_sender, mut pong_receiver): (S, R),
    round_trips: u64,
    cores: [Option<core_affinity::CoreId>; 2],
) -> Result<Histogram<u64>, String> {
    let total = WARM_UP_ROUND_TRIPS + round_trips;
    let echo = std::thread::spawn(move || {
        pin(cores[1]);
        let mut echoed = 0u64;
        while echoed < total {
            let mut reply = None;
            if ping_receiver.drain(1, |message| reply = Some(message)) == 0 {
                std::hint::spin_loop();
                continue;
            }
            let mut pending = reply.expect("drain said one message");
            while let Err(back) = pong_sender.try_send(pending) {
                pending = back;
                std::hint::spin_loop();
            }
            echoed += 1;
        }
    });
    let pinger = std::thread::spawn(move || {
        pin(cores[0]);
        let mut histogram =
            Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds");
        let mut mismatch = None;
        for sequence in 0..total {
            let started = Instant::now();
            let mut pending = message(sequence);
            while let Err(back) = ping_sender.try_send(pending) {
                pending = back;
                std::hint::spin_loop();
            }
            let mut answer = None;
            while pong_receiver.drain(1, |message| answer = Some(message)) == 0 {
                std::hint::spin_loop();
            }
            let nanoseconds = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            // Keep going on a mismatch: the echo thread waits for `total`.
            if answer.map(|message| message[0]) != Some(sequence) && mismatch.is_none() {
                mismatch = Some(format!("round trip {sequence} came back as {answer:?}"));
            }
            if sequence >= WARM_UP_ROUND_TRIPS {
                histogram.saturating_record(nanoseconds.max(1));
            }
        }
        mismatch.map_or(Ok(histogram), Err)
    });
    echo.join().map_err(|_| "echo thread panicked")?;
    pinger.join().map_err(|_| "pinging thread panicked")?
}

fn percentiles(histogram: &Histogram<u64>) -> HopPercentiles {
    HopPercentiles {
        p50: histogram.value_at_quantile(0.50),
        p99: histogram.value_at_quantile(0.99),
        p999: histogram.value_at_quantile(0.999),
        max: histogram.max(),
    }
}

fn median_u64(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The runs of one queue, collected before their medians are taken.
#[derive(Default)]
struct QueueRuns {
    throughputs: Vec<f64>,
    round_trips: Vec<HopPercentiles>,
}

fn measure_once(
    kind: QueueKind,
    config: &RingBenchConfig,
    cores: [Option<core_affinity::CoreId>; 2],
    runs: &mut QueueRuns,
) -> Result<(), String> {
    let (throughput, histogram) = match kind {
        QueueKind::EngineRing => (
            throughput_run(engine::ring(RING_CAPACITY), config.messages, cores)?,
            latency_run(
                engine::ring(RING_CAPACITY),
                engine::ring(RING_CAPACITY),
                config.round_trips,
                cores,
            )?,
        ),
        QueueKind::CrossbeamArrayQueue => (
            throughput_run(array_queue_pair(), config.messages, cores)?,
            latency_run(
                array_queue_pair(),
                array_queue_pair(),
                config.round_trips,
                cores,
            )?,
        ),
        QueueKind::CrossbeamChannel => (
            throughput_run(
                crossbeam::channel::bounded(RING_CAPACITY),
                config.messages,
                cores,
            )?,
            latency_run(
                crossbeam::channel::bounded(RING_CAPACITY),
                crossbeam::channel::bounded(RING_CAPACITY),
                config.round_trips,
                cores,
            )?,
        ),
    };
    runs.throughputs.push(throughput);
    runs.round_trips.push(percentiles(&histogram));
    Ok(())
}

fn summarise(kind: QueueKind, runs: &mut QueueRuns) -> QueueReport {
    let throughput = median_f64(&mut runs.throughputs);
    let field = |pick: fn(&HopPercentiles) -> u64| {
        median_u64(&mut runs.round_trips.iter().map(pick).collect::<Vec<_>>())
    };
    let round_trip_ns = HopPercentiles {
        p50: field(|p| p.p50),
        p99: field(|p| p.p99),
        p999: field(|p| p.p999),
        max: field(|p| p.max),
    };
    QueueReport {
        queue: kind.name(),
        throughput_messages_per_sec: throughput,
        throughput_messages_per_sec_min: runs.throughputs[0],
        throughput_messages_per_sec_max: runs.throughputs[runs.throughputs.len() - 1],
        throughput_ns_per_message: 1e9 / throughput.max(1e-9),
        round_trip_ns,
        one_way_ns: HopPercentiles {
            p50: round_trip_ns.p50 / 2,
            p99: round_trip_ns.p99 / 2,
            p999: round_trip_ns.p999 / 2,
            max: round_trip_ns.max / 2,
        },
    }
}

/// Measure every queue `config.runs` times; `progress` hears of each run.
pub fn measure_ring(
    config: &RingBenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<RingBenchReport, String> {
    assert!(config.runs >= 1 && config.messages >= 1 && config.round_trips >= 1);
    // Read once, here, before any thread is pinned (see the module docs).
    let core_ids = core_affinity::get_core_ids().unwrap_or_default();
    let cores = match core_ids.as_slice() {
        [first, second, ..] => [Some(*first), Some(*second)],
        _ => [None, None],
    };
    let mut all_runs: Vec<QueueRuns> = QueueKind::ALL
        .iter()
        .map(|_| QueueRuns::default())
        .collect();
    for run in 1..=config.runs {
        for (kind, runs) in QueueKind::ALL.iter().zip(all_runs.iter_mut()) {
            progress(&format!("run {run}/{}: {}", config.runs, kind.name()));
            measure_once(*kind, config, cores, runs)?;
        }
    }
    let queues: Vec<QueueReport> = QueueKind::ALL
        .iter()
        .zip(all_runs.iter_mut())
        .map(|(kind, runs)| summarise(*kind, runs))
        .collect();
    let winner_throughput = queues
        .iter()
        .max_by(|a, b| {
            a.throughput_messages_per_sec
                .total_cmp(&b.throughput_messages_per_sec)
        })
        .map_or("none", |queue| queue.queue);
    let winner_latency_p50 = queues
        .iter()
        .min_by_key(|queue| queue.round_trip_ns.p50)
        .map_or("none", |queue| queue.queue);
    Ok(RingBenchReport {
        messages: config.messages,
        round_trips: config.round_trips,
        runs: config.runs,
        message_bytes: std::mem::size_of::<RingMessage>(),
        capacity: RING_CAPACITY,
        batch_max: BATCH_MAX,
        cores: match cores {
            [Some(first), Some(second)] => Some([first.id, second.id]),
            _ => None,
        },
        queues,
        winner_throughput,
        winner_latency_p50,
    })
}

/// The JSON of `exchange-bench ring --json`.
#[derive(Debug, Serialize)]
pub(crate) struct RingJson<'a> {
    #[serde(flatten)]
    pub(crate) report: &'a RingBenchReport,
    pub(crate) machine: &'a Machine,
    pub(crate) command: &'a str,
}

impl RingBenchReport {
    /// A table for people.
    pub fn table(&self, machine: &Machine, command: &str) -> String {
        let mut text = format!(
            "exchange-bench ring: one message ({} bytes) between two threads, {}\n\
             machine: {machine}\n\
             command: {command}\n\
             capacity {}, consumer batch up to {}, {} messages per throughput run, \
             {} round trips per latency run, median of {} runs\n\n",
            self.message_bytes,
            match self.cores {
                Some([first, second]) => format!("pinned to cores {first} and {second}"),
                None => "unpinned (fewer than two cores)".to_owned(),
            },
            self.capacity,
            self.batch_max,
            self.messages,
            self.round_trips,
            self.runs,
        );
        text.push_str(&format!(
            "{:<26} {:>14} {:>9} {:>24}  {:>9} {:>9} {:>9}  {:>9}\n",
            "queue",
            "messages/s",
            "ns/msg",
            "min .. max messages/s",
            "rt p50",
            "rt p99",
            "rt p99.9",
            "1-way p50"
        ));
        for queue in &self.queues {
            text.push_str(&format!(
                "{:<26} {:>14} {:>9.2} {:>24}  {:>9} {:>9} {:>9}  {:>9}\n",
                queue.queue,
                rounded(queue.throughput_messages_per_sec),
                queue.throughput_ns_per_message,
                format!(
                    "{} .. {}",
                    rounded(queue.throughput_messages_per_sec_min),
                    rounded(queue.throughput_messages_per_sec_max)
                ),
                queue.round_trip_ns.p50,
                queue.round_trip_ns.p99,
                queue.round_trip_ns.p999,
                queue.one_way_ns.p50,
            ));
        }
        text.push_str(&format!(
            "\nhighest throughput: {}; lowest round-trip p50: {}\n\
             latencies in ns, round trip through two queues timed by the pinging thread \
             (clock read included); one way = round trip / 2.",
            self.winner_throughput, self.winner_latency_p50
        ));
        text
    }
}

fn rounded(value: f64) -> String {
    // Reporting only: a rate rounded to a whole number per second.
    crate::cli::grouped(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_run_reports_every_queue() {
        let config = RingBenchConfig {
            messages: 5_000,
            round_trips: 200,
            runs: 2,
        };
        let report = measure_ring(&config, |_| {}).unwrap();
        assert_eq!(report.queues.len(), 3);
        for queue in &report.queues {
            assert!(queue.throughput_messages_per_sec > 0.0, "{queue:?}");
            assert!(queue.throughput_messages_per_sec_min <= queue.throughput_messages_per_sec);
            assert!(queue.round_trip_ns.p50 >= 1, "{queue:?}");
            assert!(queue.round_trip_ns.p50 <= queue.round_trip_ns.p999);
            assert_eq!(queue.one_way_ns.p50, queue.round_trip_ns.p50 / 2);
        }
        let machine = Machine::detect();
        let json = serde_json::to_string(&RingJson {
            report: &report,
            machine: &machine,
            command: "x",
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for key in [
            "messages",
            "runs",
            "message_bytes",
            "winner_throughput",
            "winner_latency_p50",
            "machine",
            "command",
        ] {
            assert!(value.get(key).is_some(), "{key} missing from {json}");
        }
        assert_eq!(value["message_bytes"], 64);
        assert_eq!(value["queues"][0]["queue"], "engine_ring");
        assert!(
            value["queues"][1]["round_trip_ns"]["p999"].is_u64(),
            "{json}"
        );
        assert!(
            report
                .table(&machine, "x")
                .contains("crossbeam_array_queue")
        );
    }
}
