//! The physical floors of the machine, measured in the same run as the
//! figures they bound (issue #6): what a hop between two pinned threads
//! costs, what a TCP round trip over loopback costs at our message size,
//! how fast memory copies, and how long `fdatasync` takes. Every figure of
//! `exchange-bench report` is given as a ratio to one of these, so a number
//! reads as "how close to what this machine can do" rather than as an
//! absolute that cannot be compared across machines.
//!
//! Each floor reuses the bench that already measures it (the ring bench,
//! the end-to-end bench's echo servers, the journal bench's fdatasync
//! probe); only the memory-copy floor is measured here.

use crate::e2e_bench::{E2eBenchConfig, ServerChoice, measure_e2e};
use crate::ring_bench::{RingBenchConfig, measure_ring};
use serde::Serialize;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The memory-copy floor's large buffer (64 MiB: well beyond any cache of
/// this class of machine, so it measures DRAM bandwidth).
const MEMCPY_BUFFER_BYTES: usize = 64 << 20;
/// The small copy: one cache line, the size of a ring message.
const SMALL_COPY_BYTES: usize = 64;
/// The small copies cycle through a buffer this large (fits in L1/L2), so
/// they measure the copy, not a cache miss.
const SMALL_COPY_WINDOW_BYTES: usize = 16 << 10;

/// What to measure; [`FloorsConfig::new`] gives the report's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct FloorsConfig {
    /// Messages of the ring's one throughput run.
    pub ring_messages: u64,
    /// Round trips of the ring's one latency run.
    pub ring_round_trips: u64,
    /// Timed round trips of the TCP echo (one connection).
    pub echo_round_trips: u64,
    /// The echo's pipelined throughput phase.
    pub echo_throughput_duration: Duration,
    /// Warm-up before each echo phase.
    pub echo_warm_up_duration: Duration,
    /// Bytes of the large copy's buffer.
    pub memcpy_bytes: usize,
    /// Copies of the large buffer; the fastest is reported.
    pub memcpy_repeats: u32,
    /// 64-byte copies timed together.
    pub small_copies: u64,
    /// `fdatasync` samples (the probe stops after 3 s regardless).
    pub fdatasync_samples: u32,
    /// Where to probe `fdatasync` [default: the system's temporary
    /// directory]. Point it at the journal's disk.
    pub dir: Option<PathBuf>,
}

impl FloorsConfig {
    /// The report's sizes, or tiny ones for a smoke test with `quick`.
    pub fn new(quick: bool) -> FloorsConfig {
        if quick {
            FloorsConfig {
                ring_messages: 20_000,
                ring_round_trips: 2_000,
                echo_round_trips: 500,
                echo_throughput_duration: Duration::from_millis(100),
                echo_warm_up_duration: Duration::from_millis(20),
                memcpy_bytes: 1 << 20,
                memcpy_repeats: 2,
                small_copies: 100_000,
                fdatasync_samples: 20,
                dir: None,
            }
        } else {
            FloorsConfig {
                ring_messages: 2_000_000,
                ring_round_trips: 100_000,
                echo_round_trips: 20_000,
                echo_throughput_duration: Duration::from_secs(1),
                echo_warm_up_duration: Duration::from_millis(200),
                memcpy_bytes: MEMCPY_BUFFER_BYTES,
                memcpy_repeats: 8,
                small_copies: 20_000_000,
                fdatasync_samples: 500,
                dir: None,
            }
        }
    }
}

/// The hop between two pinned threads through the engine's SPSC ring.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RingFloor {
    pub queue: &'static str,
    pub message_bytes: usize,
    /// Half a ping-pong round trip.
    pub one_way_p50_ns: u64,
    pub one_way_p99_ns: u64,
    /// One way, the consumer draining in batches.
    pub throughput_messages_per_sec: f64,
    pub ns_per_message: f64,
}

/// A plain TCP echo over loopback of an OUCH Enter Order frame answered
/// with an Order Accepted-sized frame (one mio server thread, the gateway's
/// style).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EchoFloor {
    pub request_bytes: usize,
    pub response_bytes: usize,
    pub round_trips: u64,
    pub round_trip_p50_ns: u64,
    pub round_trip_p99_ns: u64,
    pub round_trip_p999_ns: u64,
    /// Pipelined echoes per second (window of the end-to-end bench's
    /// default).
    pub throughput_per_sec: f64,
}

/// Memory-copy bandwidth and the cost of one 64-byte copy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemcpyFloor {
    pub buffer_bytes: usize,
    pub repeats: u32,
    /// Bytes copied per second by the fastest large copy, in GB/s (1e9).
    pub gigabytes_per_sec: f64,
    pub small_copy_bytes: usize,
    pub small_copies: u64,
    pub ns_per_small_copy: f64,
}

/// Latency of a 64-byte overwrite and `fdatasync` of a preallocated file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FdatasyncFloor {
    pub dir: String,
    pub samples: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Every floor, measured in one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FloorsReport {
    pub ring: RingFloor,
    pub tcp_echo: EchoFloor,
    pub memcpy: MemcpyFloor,
    pub fdatasync: FdatasyncFloor,
    pub seconds: f64,
}

/// Measure every floor; `progress` hears each step.
pub fn measure_floors(
    config: &FloorsConfig,
    mut progress: impl FnMut(&str),
) -> Result<FloorsReport, String> {
    if config.memcpy_bytes == 0 || config.memcpy_repeats == 0 || config.small_copies == 0 {
        return Err("the memory-copy floor needs a buffer, repeats and copies".to_owned());
    }
    let started = Instant::now();
    progress("ring hop between two pinned threads");
    let ring = ring_floor(config)?;
    progress("TCP echo over loopback");
    let tcp_echo = echo_floor(config)?;
    progress("memory copy");
    let memcpy = memcpy_floor(config);
    progress("fdatasync");
    let fdatasync = fdatasync_floor(config)?;
    Ok(FloorsReport {
        ring,
        tcp_echo,
        memcpy,
        fdatasync,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn ring_floor(config: &FloorsConfig) -> Result<RingFloor, String> {
    let ring_config = RingBenchConfig {
        messages: config.ring_messages.max(1),
        round_trips: config.ring_round_trips.max(1),
        runs: 1,
    };
    let report = measure_ring(&ring_config, |_| {})?;
    // The engine ring is the one the engine's input and output cross.
    let engine = report
        .queues
        .iter()
        .find(|queue| queue.queue == "engine_ring")
        .ok_or("the ring bench measured no engine_ring")?;
    Ok(RingFloor {
        queue: engine.queue,
        message_bytes: report.message_bytes,
        one_way_p50_ns: engine.one_way_ns.p50,
        one_way_p99_ns: engine.one_way_ns.p99,
        throughput_messages_per_sec: engine.throughput_messages_per_sec,
        ns_per_message: engine.throughput_ns_per_message,
    })
}

fn echo_floor(config: &FloorsConfig) -> Result<EchoFloor, String> {
    let e2e_config = E2eBenchConfig {
        connections: 1,
        window: 256,
        orders: config.echo_round_trips.max(1),
        throughput_duration: config.echo_throughput_duration,
        warm_up_duration: config.echo_warm_up_duration,
        server: ServerChoice::EchoOnly,
    };
    let report = measure_e2e(&e2e_config, |_| {}).map_err(|error| error.to_string())?;
    // echo_mio is the end-to-end bench's floor too (the gateway's style).
    let echo = &report.echo_mio;
    Ok(EchoFloor {
        request_bytes: report.enter_order_frame_bytes,
        response_bytes: report.order_accepted_frame_bytes,
        round_trips: echo.round_trip_ns.count,
        round_trip_p50_ns: echo.round_trip_ns.p50,
        round_trip_p99_ns: echo.round_trip_ns.p99,
        round_trip_p999_ns: echo.round_trip_ns.p999,
        throughput_per_sec: echo.throughput_orders_per_sec,
    })
}

fn memcpy_floor(config: &FloorsConfig) -> MemcpyFloor {
    // Both buffers written first, so the timed copies touch no fresh page.
    let source: Vec<u8> = (0..config.memcpy_bytes).map(|index| index as u8).collect();
    let mut destination = vec![1u8; config.memcpy_bytes];
    let mut best_seconds = f64::INFINITY;
    for _ in 0..config.memcpy_repeats {
        let start = Instant::now();
        destination.copy_from_slice(black_box(&source));
        black_box(&mut destination);
        best_seconds = best_seconds.min(start.elapsed().as_secs_f64());
    }
    assert_eq!(
        destination[config.memcpy_bytes - 1],
        source[config.memcpy_bytes - 1]
    );

    let window: Vec<u8> = (0..SMALL_COPY_WINDOW_BYTES)
        .map(|index| index as u8)
        .collect();
    let mut line = [0u8; SMALL_COPY_BYTES];
    let lines = SMALL_COPY_WINDOW_BYTES / SMALL_COPY_BYTES;
    let start = Instant::now();
    for copy in 0..config.small_copies {
        // Truncation is the point: cycle through the window's lines.
        let offset = (copy as usize % lines) * SMALL_COPY_BYTES;
        line.copy_from_slice(black_box(&window[offset..offset + SMALL_COPY_BYTES]));
        black_box(&mut line);
    }
    let small_seconds = start.elapsed().as_secs_f64();
    MemcpyFloor {
        buffer_bytes: config.memcpy_bytes,
        repeats: config.memcpy_repeats,
        gigabytes_per_sec: config.memcpy_bytes as f64 / best_seconds.max(1e-12) / 1e9,
        small_copy_bytes: SMALL_COPY_BYTES,
        small_copies: config.small_copies,
        ns_per_small_copy: small_seconds * 1e9 / config.small_copies as f64,
    }
}

fn fdatasync_floor(config: &FloorsConfig) -> Result<FdatasyncFloor, String> {
    let parent = config.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!("exchange-bench-floors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let result = crate::journal_bench::fdatasync_floor(&dir, config.fdatasync_samples.max(1));
    // Removed whether or not the probe worked.
    let removed = std::fs::remove_dir_all(&dir);
    let report = result.map_err(|error| error.to_string())?;
    removed.map_err(|error| format!("{}: {error}", dir.display()))?;
    Ok(FdatasyncFloor {
        dir: parent.display().to_string(),
        samples: report.samples,
        p50_ns: report.p50_ns,
        p99_ns: report.p99_ns,
        max_ns: report.max_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_floors_are_plausible() {
        let report = measure_floors(&FloorsConfig::new(true), |_| {}).unwrap();
        assert_eq!(report.ring.queue, "engine_ring");
        assert!(report.ring.one_way_p50_ns > 0);
        assert!(report.ring.throughput_messages_per_sec > 0.0);
        assert!(report.tcp_echo.round_trips >= 1);
        assert!(report.tcp_echo.round_trip_p50_ns > 0);
        assert!(report.tcp_echo.round_trip_p50_ns <= report.tcp_echo.round_trip_p99_ns);
        assert!(report.memcpy.gigabytes_per_sec > 0.0);
        assert!(report.memcpy.ns_per_small_copy > 0.0);
        assert!(report.fdatasync.samples >= 1);
        assert!(report.fdatasync.p50_ns > 0);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["memcpy"]["gigabytes_per_sec"].is_f64());
    }

    #[test]
    fn empty_copy_is_refused() {
        let config = FloorsConfig {
            memcpy_bytes: 0,
            ..FloorsConfig::new(true)
        };
        assert!(measure_floors(&config, |_| {}).is_err());
    }
}
