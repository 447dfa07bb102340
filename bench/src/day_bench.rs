//! `exchange-bench day`: the resident memory of `exchange serve` against
//! the orders of one trading day, and the time a restart takes against the
//! length of the journal it recovers.
//!
//! Why: a real venue sees hundreds of millions of messages a day, and a
//! server whose memory grows with each one (per-session streams, the
//! market-data log) falls over before the close; a server that replays its
//! whole journal at every start is down for as long as the day was long.
//! This command is the instrument for both (issue #12, Measure), built to
//! be run unchanged before and after the store and snapshot work.
//!
//! # What runs
//!
//! 1. `exchange serve` is started as `exchange-bench e2e` starts it (the
//!    hidden `serve` of this executable, the default configuration with a
//!    fresh data directory under the system's temporary directory, free
//!    ports, `--durability`, the rate limit out of the way).
//! 2. `--connections` logins (DEMO1..DEMO4) send orders as fast as the
//!    server takes them, at most `--window` requests outstanding each, until
//!    the next checkpoint of `--orders` (counted in Enter Orders over all
//!    connections); then every outstanding reply is awaited and the
//!    server's memory sampled from `/proc/PID/status`: VmRSS, VmHWM, and
//!    RssAnon apart from RssFile (mapped journal and log pages count as
//!    RssFile and the kernel can drop them; RssAnon is the heap).
//! 3. The restart: the server is stopped (`--restart clean`: SIGTERM, it
//!    closes its journal; `crash`: SIGKILL) and started again on the same
//!    directory. Timed from the spawn: until the order-entry port accepts a
//!    TCP connection, until the market-data snapshot port does, and until a
//!    login is accepted and an Account Query answered (the server takes
//!    orders). The journal's length is the sequence the restarted server
//!    reports at start (`exchange: at sequence N`).
//!
//! # The orders
//!
//! Each connection repeats a cycle of four requests on ACME (reference
//! 100.00, quantity 1 throughout):
//!
//! - a Day buy at 98.51..99.00 and a Day sell at 101.00..101.49 (the price
//!   walks over 50 ticks), both resting;
//! - an IOC order that crosses the spread (buy at 102.00 or sell at 98.00)
//!   and trades with the best resting order of the other side; its side
//!   reduces the connection's position (from its Order Executed messages),
//!   alternating when flat, so no account runs out of shares or dollars;
//! - a Cancel Order of the connection's oldest open resting order (orders
//!   already traded away are passed over), repeated before the next cycle
//!   while more than `--resting-max` are open.
//!
//! The logins' self-trade prevention is set to `cancel-oldest`: an IOC that
//! meets its own account's resting order cancels that order and trades on.
//! So the book, the per-session streams and the market-data log all grow as
//! a day's would (accepts, executions, cancels), while the resting orders
//! stay far below the engine's `orders_max` (1,048,576 in the default
//! configuration): `--connections` × `--resting-max` at most.

use crate::cli::grouped;
use crate::e2e_bench::{
    CLIENT_HEARTBEAT_INTERVAL, Connection, E2eBenchError, Event, LOGINS, STALL_TIMEOUT,
    ServerDurability, SpawnedServer, StopMode, log_in, protocol_error,
};
use crate::machine::Machine;
use gateway::ouch::{
    self, CancelOrder, Capacity, ClOrdId, CrossType, Display, EnterOrder, IntermarketSweep, Price,
    Side, Symbol, TimeInForce,
};
use serde::Serialize;
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wire::soupbin::ClientPacket;

/// The price ticks the resting orders walk over (0.01 each).
const RESTING_PRICE_STEPS: u32 = 50;
/// One tick of ACME (0.01) in OUCH price units (4 decimals).
const TICK: i64 = ouch::PRICE_SCALE / 100;
/// The best resting buy: 99.00.
const BUY_PRICE_TOP: i64 = 99 * ouch::PRICE_SCALE;
/// The best resting sell: 101.00.
const SELL_PRICE_BOTTOM: i64 = 101 * ouch::PRICE_SCALE;
/// The IOC buy: 102.00, above every resting sell.
const CROSSING_BUY_PRICE: i64 = 102 * ouch::PRICE_SCALE;
/// The IOC sell: 98.00, below every resting buy.
const CROSSING_SELL_PRICE: i64 = 98 * ouch::PRICE_SCALE;
/// Order states kept per connection, indexed by UserRefNum modulo this:
/// more than the UserRefNums an open order can lag behind the newest.
const ORDER_SLOTS: usize = 1 << 16;
/// The largest `resting_max`: an open order is canceled at most
/// 1.5 × `resting_max` UserRefNums after its own, well inside the slots.
pub(crate) const RESTING_MAX_LIMIT: u32 = 8_192;
/// The largest window: with the resting orders' lag, inside the slots.
pub(crate) const WINDOW_MAX: u32 = 16_384;
const _: () = assert!(3 * RESTING_MAX_LIMIT as usize / 2 + WINDOW_MAX as usize + 4 < ORDER_SLOTS);
/// How long a restarted server may take to take orders.
const RESTART_TIMEOUT: Duration = Duration::from_secs(1_800);
/// How long a clean stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the market-data snapshot port is waited for once the server
/// takes orders (it is absent when market data is disabled).
const MD_SNAPSHOT_GRACE: Duration = Duration::from_secs(60);
/// How often a restarting server's ports are tried.
const PROBE_INTERVAL: Duration = Duration::from_millis(2);
/// What the report calls the order stream.
pub(crate) const ORDER_MIX: &str = "per connection, a cycle of: Day buy 1 ACME at 98.51..99.00 \
     (rests), Day sell 1 at 101.00..101.49 (rests), IOC 1 crossing the spread (trades; its side \
     reduces the position), Cancel Order of the oldest open order (again while more than \
     --resting-max are open); self-trade prevention cancel-oldest";

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DayBenchConfig {
    /// Enter Orders over all connections at which memory is sampled,
    /// ascending; the last ends the day.
    pub(crate) checkpoints: Vec<u64>,
    /// Client connections (DEMO1..).
    pub(crate) connections: usize,
    /// Requests outstanding per connection.
    pub(crate) window: u32,
    /// Open resting orders per connection before the oldest is canceled.
    pub(crate) resting_max: u32,
    /// A binary with `serve` and `config show` (normally this one).
    pub(crate) executable: PathBuf,
    pub(crate) durability: ServerDurability,
    /// How to stop the server before the restart; `None`: no restart.
    pub(crate) restart: Option<StopMode>,
}

/// Memory of a process, from `/proc/PID/status`, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct MemorySample {
    /// Resident set size.
    pub(crate) vm_rss_kib: u64,
    /// Peak resident set size.
    pub(crate) vm_hwm_kib: u64,
    /// Resident anonymous memory (heap, stacks).
    pub(crate) rss_anon_kib: u64,
    /// Resident file-backed memory (mapped journal and logs, the binary).
    pub(crate) rss_file_kib: u64,
    /// Resident shared memory.
    pub(crate) rss_shmem_kib: u64,
}

impl MemorySample {
    /// Reads `/proc/PID/status`.
    pub(crate) fn of_process(pid: u32) -> Result<MemorySample, E2eBenchError> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path)
            .map_err(crate::e2e_bench::io_error(format!("reading {path}")))?;
        Ok(MemorySample::parse(&text))
    }

    /// The fields of a `/proc/PID/status` text (absent ones 0).
    fn parse(text: &str) -> MemorySample {
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        MemorySample {
            vm_rss_kib: field("VmRSS"),
            vm_hwm_kib: field("VmHWM"),
            rss_anon_kib: field("RssAnon"),
            rss_file_kib: field("RssFile"),
            rss_shmem_kib: field("RssShmem"),
        }
    }
}

/// The server at one checkpoint of the day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Checkpoint {
    /// Enter Orders sent and answered so far, over all connections.
    pub(crate) orders: u64,
    /// Cancel Orders sent so far.
    pub(crate) cancels: u64,
    /// Executions reported to the connections (both sides of a trade).
    pub(crate) executions: u64,
    /// Seconds since the first order.
    pub(crate) seconds: f64,
    /// Enter Orders per second since the previous checkpoint.
    pub(crate) orders_per_sec: f64,
    pub(crate) memory: MemorySample,
}

/// The restart after the day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RestartReport {
    pub(crate) mode: &'static str,
    /// The sequence the restarted server reported at start (`exchange: at
    /// sequence N`), else the journal's last sequence on disk: the commands
    /// journaled (`None` if neither is known).
    pub(crate) journal_commands: Option<u64>,
    /// What the restarted server said about its recovery.
    pub(crate) recovery: Option<String>,
    /// From the signal to the process's exit.
    pub(crate) stop_seconds: f64,
    /// From the spawn until the order-entry port accepted a connection.
    pub(crate) order_entry_listening_seconds: f64,
    /// From the spawn until the market-data snapshot port accepted one.
    pub(crate) md_snapshot_listening_seconds: Option<f64>,
    /// From the spawn until a login was accepted and an Account Query
    /// answered.
    pub(crate) serving_seconds: f64,
    /// The restarted server's memory once it serves.
    pub(crate) memory: MemorySample,
    /// Bytes under the data directory at the restart.
    pub(crate) data_dir_bytes: u64,
    /// The journal as read from disk between the stop and the restart
    /// (`None` if it could not be read: see `journal_error`).
    pub(crate) journal: Option<JournalOnDisk>,
    pub(crate) journal_error: Option<String>,
}

/// What the journal directory holds, read with the journal crate while no
/// server runs: how long the journal is, and whether a snapshot would let
/// a start skip most of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct JournalOnDisk {
    pub(crate) first_sequence: u64,
    pub(crate) last_sequence: u64,
    pub(crate) segments: usize,
    /// The newest snapshot that reads back whole, by its sequence.
    pub(crate) newest_snapshot_sequence: Option<u64>,
}

impl JournalOnDisk {
    /// Reads `dir` (the server's `data_dir/journal`) without writing to it.
    fn read(dir: &Path) -> Result<JournalOnDisk, String> {
        let (journal, report) =
            journal::Journal::open_read_only(dir).map_err(|error| error.to_string())?;
        let newest_snapshot_sequence = journal::SnapshotStore::new(dir)
            .list()
            .map_err(|error| error.to_string())?
            .into_iter()
            .flatten()
            .map(|snapshot| snapshot.sequence)
            .max();
        Ok(JournalOnDisk {
            first_sequence: report.first_sequence,
            last_sequence: report.last_sequence,
            segments: journal.segments().len(),
            newest_snapshot_sequence,
        })
    }
}

/// The whole measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct DayBenchReport {
    pub(crate) connections: usize,
    pub(crate) window: u32,
    pub(crate) resting_max: u32,
    pub(crate) durability: &'static str,
    pub(crate) order_mix: &'static str,
    /// The sequence the fresh server reported at start (its genesis).
    pub(crate) genesis_commands: Option<u64>,
    /// The server's memory after start, before any order.
    pub(crate) memory_at_start: MemorySample,
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// Enter Orders the server rejected (0 unless the workload is wrong).
    pub(crate) orders_rejected: u64,
    /// Cancel Orders refused (the order traded while its cancel was on the
    /// way).
    pub(crate) cancels_rejected: u64,
    /// Resting orders canceled by self-match prevention (an IOC of the
    /// same account met them).
    pub(crate) self_match_canceled: u64,
    /// IOC orders (or their remainders) canceled for want of liquidity.
    pub(crate) ioc_unfilled: u64,
    pub(crate) restart: Option<RestartReport>,
}

/// The JSON object of `--json`: the report with the machine and command.
#[derive(Debug, Serialize)]
pub(crate) struct DayJson<'a> {
    #[serde(flatten)]
    pub(crate) report: &'a DayBenchReport,
    pub(crate) machine: &'a Machine,
    pub(crate) command: &'a str,
}

// ---------------------------------------------------------------------------
// The measurement
// ---------------------------------------------------------------------------

/// Runs the day and the restart. `progress` hears each step.
pub(crate) fn measure_day(
    config: &DayBenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<DayBenchReport, E2eBenchError> {
    check_config(config)?;
    progress("starting `exchange serve` on a fresh data directory");
    let mut server = SpawnedServer::start_with(
        &config.executable,
        config.durability,
        config.connections,
        &cancel_oldest_on_self_match,
    )?;
    let result = run_day(config, &mut server, &mut progress);
    // Stopped (killed, reaped, its directory removed) on error too.
    let stopped = server.stop();
    let report = result?;
    stopped?;
    Ok(report)
}

/// Sets `self_trade = "cancel-oldest"` on every login: an IOC that meets
/// its own account's resting order at the top of the book cancels that
/// order and trades on with the next, as a market maker's port would be
/// set. (With the default, `cancel-newest`, the IOC itself is canceled,
/// and most of them would not trade: a connection's own orders are often
/// the oldest at the best price.)
fn cancel_oldest_on_self_match(table: &mut toml::Table) -> Result<(), String> {
    let logins = table
        .get_mut("logins")
        .and_then(toml::Value::as_array_mut)
        .ok_or("no [[logins]]")?;
    for login in logins {
        let login = login
            .as_table_mut()
            .ok_or("a [[logins]] entry is not a table")?;
        login.insert(
            "self_trade".to_owned(),
            toml::Value::String("cancel-oldest".to_owned()),
        );
    }
    Ok(())
}

fn check_config(config: &DayBenchConfig) -> Result<(), E2eBenchError> {
    let ascending = config.checkpoints.windows(2).all(|pair| pair[0] < pair[1]);
    let problem = if config.checkpoints.is_empty() || config.checkpoints[0] == 0 || !ascending {
        Some("the checkpoints must be ascending counts of orders, the first above 0".to_owned())
    } else if config.connections == 0 || config.connections > LOGINS.len() {
        Some(format!("connections must be 1..={}", LOGINS.len()))
    } else if config.window == 0 || config.window > WINDOW_MAX {
        Some(format!("window {} outside 1..={WINDOW_MAX}", config.window))
    } else if config.resting_max < 2 || config.resting_max > RESTING_MAX_LIMIT {
        Some(format!("resting-max must be 2..={RESTING_MAX_LIMIT}"))
    } else {
        None
    };
    problem.map_or(Ok(()), |problem| Err(E2eBenchError::Config(problem)))
}

fn run_day(
    config: &DayBenchConfig,
    server: &mut SpawnedServer,
    progress: &mut impl FnMut(&str),
) -> Result<DayBenchReport, E2eBenchError> {
    let pid = server.pid().expect("a started server has a process");
    let genesis_commands = wait_for_sequence(server);
    let memory_at_start = MemorySample::of_process(pid)?;
    progress(&format!(
        "exchange on {} (pid {pid}, journal durability {}); {} KiB resident",
        server.address,
        config.durability.name(),
        grouped(memory_at_start.vm_rss_kib)
    ));
    let mut traders = Vec::with_capacity(config.connections);
    for &(username, password) in &LOGINS[..config.connections] {
        let connection = log_in(server.address, config.window, true, username, password)?;
        traders.push(Trader::new(connection, username, config.resting_max));
    }
    let mut day = DayTotals::default();
    let mut checkpoints = Vec::with_capacity(config.checkpoints.len());
    let started = Instant::now();
    let mut previous = (0_u64, started);
    for &orders in &config.checkpoints {
        drive(&mut traders, config.window, orders, server, &mut day)?;
        let now = Instant::now();
        let memory = MemorySample::of_process(pid)?;
        let segment_seconds = now.duration_since(previous.1).as_secs_f64().max(1e-9);
        checkpoints.push(Checkpoint {
            orders: day.orders,
            cancels: day.cancels,
            executions: day.executions,
            seconds: now.duration_since(started).as_secs_f64(),
            orders_per_sec: (day.orders - previous.0) as f64 / segment_seconds,
            memory,
        });
        previous = (day.orders, now);
        progress(&format!(
            "{} orders: {} KiB resident ({} KiB anonymous, {} KiB file)",
            grouped(day.orders),
            grouped(memory.vm_rss_kib),
            grouped(memory.rss_anon_kib),
            grouped(memory.rss_file_kib)
        ));
    }
    for trader in &mut traders {
        // Best effort: the day is measured either way.
        trader.connection.queue_packet(&ClientPacket::LogoutRequest);
        let _ = trader.connection.flush(&trader.peer);
    }
    drop(traders);
    let restart = match config.restart {
        Some(mode) => Some(measure_restart(server, mode, config.window, progress)?),
        None => None,
    };
    Ok(DayBenchReport {
        connections: config.connections,
        window: config.window,
        resting_max: config.resting_max,
        durability: config.durability.name(),
        order_mix: ORDER_MIX,
        genesis_commands,
        memory_at_start,
        checkpoints,
        orders_rejected: day.orders_rejected,
        cancels_rejected: day.cancels_rejected,
        self_match_canceled: day.self_match_canceled,
        ioc_unfilled: day.ioc_unfilled,
        restart,
    })
}

/// Stops the server, starts it again on the same directory and times it
/// until it serves.
fn measure_restart(
    server: &mut SpawnedServer,
    mode: StopMode,
    window: u32,
    progress: &mut impl FnMut(&str),
) -> Result<RestartReport, E2eBenchError> {
    progress(&format!("stopping the server: {}", mode.name()));
    let stop_seconds = server.stop_for_restart(mode, STOP_TIMEOUT)?.as_secs_f64();
    let data_dir_bytes = directory_bytes(&server.data_dir());
    let journal_read = JournalOnDisk::read(&server.data_dir().join("journal"));
    progress(&format!(
        "restarting on the same data directory ({} bytes)",
        grouped(data_dir_bytes)
    ));
    let spawned = Instant::now();
    server.respawn()?;
    let md_probe = probe_in_background(server.md_snapshot, spawned);
    let served = wait_for_order_entry(server, spawned)
        .and_then(|order_entry| Ok((order_entry, log_in_when_serving(server, window, spawned)?)));
    let grace = if served.is_ok() {
        MD_SNAPSHOT_GRACE
    } else {
        Duration::ZERO
    };
    let md_snapshot = md_probe.finish(grace);
    let (order_entry, serving) = served?;
    let pid = server.pid().expect("a started server has a process");
    let memory = MemorySample::of_process(pid)?;
    let journal_commands = wait_for_sequence(server).or_else(|| {
        journal_read
            .as_ref()
            .ok()
            .map(|journal| journal.last_sequence)
    });
    let recovery = server
        .stdout_text()
        .lines()
        .find(|line| line.contains("recovered"))
        .map(str::to_owned);
    progress(&format!(
        "serving {:.3} s after the spawn (journal of {} commands)",
        serving.as_secs_f64(),
        journal_commands.map_or("?".to_owned(), grouped)
    ));
    Ok(RestartReport {
        mode: mode.name(),
        journal_commands,
        recovery,
        stop_seconds,
        order_entry_listening_seconds: order_entry.as_secs_f64(),
        md_snapshot_listening_seconds: md_snapshot.map(|seconds| seconds.as_secs_f64()),
        serving_seconds: serving.as_secs_f64(),
        memory,
        data_dir_bytes,
        journal_error: journal_read.as_ref().err().cloned(),
        journal: journal_read.ok(),
    })
}

/// A thread trying a port until it accepts a TCP connection.
struct PortProbe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Option<Duration>>,
}

/// Tries `address` every [`PROBE_INTERVAL`] on a thread of its own (the
/// market-data snapshot port opens on its own schedule, independently of
/// order entry); the time from `spawned` at which it accepted.
fn probe_in_background(address: SocketAddr, spawned: Instant) -> PortProbe {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stopped = std::sync::Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !stopped.load(Ordering::Acquire) {
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                return Some(spawned.elapsed());
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
        None
    });
    PortProbe { stop, thread }
}

impl PortProbe {
    /// Waits at most `grace` more for the port (it may be disabled), then
    /// stops the probe.
    fn finish(self, grace: Duration) -> Option<Duration> {
        let deadline = Instant::now() + grace;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(PROBE_INTERVAL);
        }
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        self.thread.join().ok().flatten()
    }
}

/// Tries the order-entry port until it accepts a connection; the time from
/// `spawned`.
fn wait_for_order_entry(
    server: &SpawnedServer,
    spawned: Instant,
) -> Result<Duration, E2eBenchError> {
    loop {
        server.check_running()?;
        if TcpStream::connect_timeout(&server.address, Duration::from_millis(100)).is_ok() {
            return Ok(spawned.elapsed());
        }
        if spawned.elapsed() > RESTART_TIMEOUT {
            return Err(E2eBenchError::Config(format!(
                "the restarted server did not listen within {} s",
                RESTART_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(PROBE_INTERVAL);
    }
}

/// Logs in as DEMO1 (new messages only) until a login is accepted and an
/// Account Query answered: the listener opens before the gateway's thread
/// runs, so early attempts may time out. The time from `spawned`.
fn log_in_when_serving(
    server: &SpawnedServer,
    window: u32,
    spawned: Instant,
) -> Result<Duration, E2eBenchError> {
    let (username, password) = LOGINS[0];
    loop {
        match log_in(server.address, window, false, username, password) {
            Ok(_connection) => return Ok(spawned.elapsed()),
            Err(error) => {
                server.check_running()?;
                if spawned.elapsed() > RESTART_TIMEOUT {
                    return Err(error);
                }
                std::thread::sleep(PROBE_INTERVAL);
            }
        }
    }
}

/// The sequence in the server's `exchange: at sequence N` line, waiting up
/// to 5 s for the line (it is printed as the listeners open).
fn wait_for_sequence(server: &SpawnedServer) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = server.stdout_text().lines().find_map(|line| {
            let rest = line.strip_prefix("exchange: at sequence ")?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        });
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bytes of the files under `dir` (0 for what cannot be read).
fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |metadata| metadata.len()),
            Err(_) => 0,
        })
        .sum()
}

// ---------------------------------------------------------------------------
// The traders
// ---------------------------------------------------------------------------

/// Counts over every connection.
#[derive(Clone, Copy, Debug, Default)]
struct DayTotals {
    orders: u64,
    cancels: u64,
    executions: u64,
    orders_rejected: u64,
    cancels_rejected: u64,
    self_match_canceled: u64,
    ioc_unfilled: u64,
}

/// What a connection knows of one of its orders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct OrderSlot {
    side: Option<Side>,
    /// Resting on the book as far as the connection knows.
    open: bool,
}

/// The request a trader sends next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    Enter {
        side: Side,
        price: i64,
        time_in_force: TimeInForce,
    },
    Cancel {
        user_ref_num: u32,
    },
}

/// One connection and the orders it has sent.
struct Trader {
    connection: Connection,
    peer: String,
    next_ref: u32,
    /// Requests without their final reply yet.
    in_flight: u32,
    slots: Box<[OrderSlot]>,
    /// UserRefNums of resting orders, oldest first (some may be closed).
    resting: VecDeque<u32>,
    resting_max: u32,
    /// Shares bought minus shares sold.
    position: i64,
    /// Where in the cycle of requests the trader is.
    step: u64,
    /// Encoding scratch space.
    payload: Vec<u8>,
    frame: Vec<u8>,
}

impl Trader {
    fn new(connection: Connection, username: &str, resting_max: u32) -> Trader {
        let next_ref = connection.next_user_ref_num();
        Trader {
            connection,
            peer: format!("exchange ({username})"),
            next_ref,
            in_flight: 0,
            slots: vec![OrderSlot::default(); ORDER_SLOTS].into_boxed_slice(),
            resting: VecDeque::with_capacity(resting_max as usize + 2),
            resting_max,
            position: 0,
            step: 0,
            payload: Vec::with_capacity(64),
            frame: Vec::with_capacity(64),
        }
    }

    fn slot(&mut self, user_ref_num: u32) -> &mut OrderSlot {
        &mut self.slots[user_ref_num as usize % ORDER_SLOTS]
    }

    /// The next request of the cycle; `None` when the cycle's cancel has
    /// nothing to cancel (the step moves on either way).
    fn next_request(&mut self) -> Option<Request> {
        let step = self.step;
        self.step += 1;
        let walk = i64::from((step / 4 % u64::from(RESTING_PRICE_STEPS)) as u32);
        match step % 4 {
            0 => Some(Request::Enter {
                side: Side::Buy,
                price: BUY_PRICE_TOP - walk * TICK,
                time_in_force: TimeInForce::Day,
            }),
            1 => Some(Request::Enter {
                side: Side::Sell,
                price: SELL_PRICE_BOTTOM + walk * TICK,
                time_in_force: TimeInForce::Day,
            }),
            2 => {
                let buy = match self.position {
                    0 => (step / 4).is_multiple_of(2),
                    position => position < 0,
                };
                let (side, price) = if buy {
                    (Side::Buy, CROSSING_BUY_PRICE)
                } else {
                    (Side::Sell, CROSSING_SELL_PRICE)
                };
                Some(Request::Enter {
                    side,
                    price,
                    time_in_force: TimeInForce::ImmediateOrCancel,
                })
            }
            _ => {
                let cancel = self.oldest_open();
                if cancel.is_some() && self.resting.len() > self.resting_max as usize {
                    // Still too many open: cancel again before the next
                    // cycle, so that they stay bounded even if nothing
                    // trades.
                    self.step -= 1;
                }
                cancel
            }
        }
    }

    /// A cancel of the oldest open resting order, if any; closed ones are
    /// dropped on the way.
    fn oldest_open(&mut self) -> Option<Request> {
        while let Some(user_ref_num) = self.resting.pop_front() {
            if self.slot(user_ref_num).open {
                return Some(Request::Cancel { user_ref_num });
            }
        }
        None
    }

    /// Encodes `request` into the connection's output; whether it is an
    /// Enter Order.
    fn queue(&mut self, request: Request) -> bool {
        self.payload.clear();
        self.frame.clear();
        let is_order = match request {
            Request::Enter {
                side,
                price,
                time_in_force,
            } => {
                let user_ref_num = self.next_ref;
                self.next_ref = user_ref_num.wrapping_add(1);
                let resting = time_in_force == TimeInForce::Day;
                *self.slot(user_ref_num) = OrderSlot {
                    side: Some(side),
                    open: resting,
                };
                if resting {
                    self.resting.push_back(user_ref_num);
                }
                enter_order(user_ref_num, side, price, time_in_force).encode(&mut self.payload);
                true
            }
            Request::Cancel { user_ref_num } => {
                CancelOrder {
                    user_ref_num,
                    quantity: 0,
                    options: ouch::Options::NONE,
                }
                .encode(&mut self.payload);
                false
            }
        };
        ClientPacket::UnsequencedData(&self.payload)
            .encode(&mut self.frame)
            .expect("an Enter Order or a Cancel Order fits a frame");
        self.connection.queue_frame(&self.frame);
        self.in_flight += 1;
        is_order
    }

    /// A request's final reply has come.
    fn close_request(&mut self) -> Result<(), E2eBenchError> {
        self.in_flight = self
            .in_flight
            .checked_sub(1)
            .ok_or_else(|| protocol_error(&self.peer, "a final reply to no outstanding request"))?;
        Ok(())
    }

    /// Acts on one event from the server.
    fn handle(&mut self, event: Event, day: &mut DayTotals) -> Result<(), E2eBenchError> {
        match event {
            Event::Accepted(_) => self.close_request()?,
            Event::Rejected { user_ref_num, .. } => {
                self.close_request()?;
                self.slot(user_ref_num).open = false;
                day.orders_rejected += 1;
            }
            Event::Executed {
                user_ref_num,
                quantity,
            } => {
                let slot = self.slot(user_ref_num);
                slot.open = false;
                let shares = i64::from(quantity);
                self.position += match slot.side {
                    Some(Side::Buy) => shares,
                    _ => -shares,
                };
                day.executions += 1;
            }
            Event::Canceled {
                user_ref_num,
                reason,
            } => {
                self.slot(user_ref_num).open = false;
                if reason == ouch::CancelReason::UserRequested.byte() {
                    self.close_request()?;
                } else if reason == ouch::CancelReason::ImmediateOrCancel.byte() {
                    day.ioc_unfilled += 1;
                } else if reason == ouch::CancelReason::SelfMatchPrevention.byte() {
                    day.self_match_canceled += 1;
                }
            }
            Event::AiqCanceled { user_ref_num } => {
                self.slot(user_ref_num).open = false;
                day.self_match_canceled += 1;
            }
            Event::CancelRejected { .. } => {
                self.close_request()?;
                day.cancels_rejected += 1;
            }
            Event::EndOfSession => {
                return Err(protocol_error(&self.peer, "the server ended the session"));
            }
            Event::LoginAccepted
            | Event::LoginRejected(_)
            | Event::AccountQuery { .. }
            | Event::Other => {}
        }
        Ok(())
    }

    /// Queues requests up to the window while orders remain to be sent.
    fn fill_window(&mut self, window: u32, orders_left: &mut u64, day: &mut DayTotals) {
        while self.in_flight < window && *orders_left > 0 {
            if let Some(request) = self.next_request() {
                if self.queue(request) {
                    *orders_left -= 1;
                    day.orders += 1;
                } else {
                    day.cancels += 1;
                }
            }
        }
    }

    /// One pass: send what the window allows, read and handle replies.
    /// Whether anything moved.
    fn poll(
        &mut self,
        window: u32,
        orders_left: &mut u64,
        day: &mut DayTotals,
    ) -> Result<bool, E2eBenchError> {
        if self.connection.out_is_empty() {
            self.fill_window(window, orders_left, day);
            if self.connection.out_is_empty()
                && self.connection.last_send.elapsed() >= CLIENT_HEARTBEAT_INTERVAL
            {
                self.connection.queue_packet(&ClientPacket::ClientHeartbeat);
            }
        }
        let mut progress = self.connection.flush(&self.peer)?;
        if self.connection.fill(&self.peer)? > 0 {
            progress = true;
            while let Some(event) = self.connection.next_event(&self.peer)? {
                self.handle(event, day)?;
            }
        }
        Ok(progress)
    }
}

/// An Enter Order of 1 ACME.
fn enter_order(
    user_ref_num: u32,
    side: Side,
    price: i64,
    time_in_force: TimeInForce,
) -> EnterOrder {
    EnterOrder {
        user_ref_num,
        side,
        quantity: 1,
        symbol: Symbol::new("ACME").expect("a valid symbol"),
        price: Price(price),
        time_in_force,
        display: Display::Visible,
        capacity: Capacity::Agency,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cross_type: CrossType::ContinuousMarket,
        client_order_id: ClOrdId::new("DAYBENCH").expect("a valid ClOrdID"),
        options: ouch::Options::NONE,
    }
}

/// Sends orders on every connection until `day.orders` reaches `target`,
/// then waits for every outstanding reply.
fn drive(
    traders: &mut [Trader],
    window: u32,
    target: u64,
    server: &SpawnedServer,
    day: &mut DayTotals,
) -> Result<(), E2eBenchError> {
    let mut orders_left = target.saturating_sub(day.orders);
    let mut last_progress = Instant::now();
    let mut passes = 0_u32;
    loop {
        let mut progress = false;
        for trader in traders.iter_mut() {
            progress |= trader.poll(window, &mut orders_left, day)?;
        }
        let drained = traders
            .iter()
            .all(|trader| trader.in_flight == 0 && trader.connection.out_is_empty());
        if orders_left == 0 && drained {
            return Ok(());
        }
        passes = passes.wrapping_add(1);
        if progress {
            last_progress = Instant::now();
        } else {
            if passes.is_multiple_of(1024) {
                server.check_running()?;
            }
            if last_progress.elapsed() > STALL_TIMEOUT {
                return Err(protocol_error(
                    "exchange",
                    format!(
                        "no reply for {} s with requests outstanding",
                        STALL_TIMEOUT.as_secs()
                    ),
                ));
            }
            std::thread::yield_now();
        }
    }
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// KiB as MiB with one decimal.
fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

impl DayBenchReport {
    /// A table for people.
    pub(crate) fn table(&self, machine: &Machine, command: &str) -> String {
        let mut text = format!(
            "exchange-bench day: resident memory of `exchange serve` against orders in one \
             trading day, and the restart against the journal's length\n\
             machine: {machine}\n\
             command: {command}\n\
             {} connections, window {} requests each, at most {} open resting orders each; \
             journal durability {}; genesis {} commands\n\
             orders: {}\n\n",
            self.connections,
            self.window,
            self.resting_max,
            self.durability,
            self.genesis_commands.map_or("?".to_owned(), grouped),
            self.order_mix,
        );
        text.push_str(&format!(
            "{:>12} {:>12} {:>12} {:>9} {:>11} {:>10} {:>10} {:>10} {:>10}\n",
            "orders",
            "cancels",
            "executions",
            "seconds",
            "orders/s",
            "RSS MiB",
            "HWM MiB",
            "anon MiB",
            "file MiB"
        ));
        let start = Checkpoint {
            orders: 0,
            cancels: 0,
            executions: 0,
            seconds: 0.0,
            orders_per_sec: 0.0,
            memory: self.memory_at_start,
        };
        for checkpoint in std::iter::once(&start).chain(&self.checkpoints) {
            let memory = &checkpoint.memory;
            text.push_str(&format!(
                "{:>12} {:>12} {:>12} {:>9.1} {:>11} {:>10} {:>10} {:>10} {:>10}\n",
                grouped(checkpoint.orders),
                grouped(checkpoint.cancels),
                grouped(checkpoint.executions),
                checkpoint.seconds,
                grouped(checkpoint.orders_per_sec.round() as u64),
                mib(memory.vm_rss_kib),
                mib(memory.vm_hwm_kib),
                mib(memory.rss_anon_kib),
                mib(memory.rss_file_kib),
            ));
        }
        text.push_str(&format!(
            "orders rejected: {}; cancels refused (order traded first): {}; resting orders \
             canceled by self-match prevention: {}; IOCs unfilled: {}\n",
            grouped(self.orders_rejected),
            grouped(self.cancels_rejected),
            grouped(self.self_match_canceled),
            grouped(self.ioc_unfilled)
        ));
        if let Some(restart) = &self.restart {
            text.push_str(&restart.table());
        }
        text
    }
}

impl RestartReport {
    fn table(&self) -> String {
        let md = self
            .md_snapshot_listening_seconds
            .map_or("did not answer".to_owned(), |seconds| {
                format!("{seconds:.3} s")
            });
        let memory = &self.memory;
        let on_disk = match (&self.journal, &self.journal_error) {
            (Some(journal), _) => format!(
                "journal on disk: sequences {}..={} in {} segments; newest snapshot: {}\n",
                grouped(journal.first_sequence),
                grouped(journal.last_sequence),
                journal.segments,
                journal
                    .newest_snapshot_sequence
                    .map_or("none".to_owned(), grouped)
            ),
            (None, Some(error)) => format!("journal on disk: not read ({error})\n"),
            (None, None) => String::new(),
        };
        format!(
            "\nrestart, {}, journal of {} commands ({} bytes in the data directory):\n\
             {}{on_disk}\
             stop: {:.3} s; from the spawn: order entry listening {:.3} s, market-data \
             snapshots listening {md}, login accepted and account query answered {:.3} s\n\
             memory once serving: RSS {} MiB (anon {} MiB, file {} MiB), HWM {} MiB\n",
            self.mode,
            self.journal_commands.map_or("?".to_owned(), grouped),
            grouped(self.data_dir_bytes),
            self.recovery
                .as_ref()
                .map_or(String::new(), |line| format!("server: {line}\n")),
            self.stop_seconds,
            self.order_entry_listening_seconds,
            self.serving_seconds,
            mib(memory.vm_rss_kib),
            mib(memory.rss_anon_kib),
            mib(memory.rss_file_kib),
            mib(memory.vm_hwm_kib),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_memory_fields_are_read_from_proc_status() {
        let text = "Name:\texchange-bench\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n\
                    RssAnon:\t   81920 kB\nRssFile:\t   20480 kB\nRssShmem:\t       0 kB\n";
        let sample = MemorySample::parse(text);
        assert_eq!(sample.vm_rss_kib, 102_400);
        assert_eq!(sample.vm_hwm_kib, 204_800);
        assert_eq!(sample.rss_anon_kib, 81_920);
        assert_eq!(sample.rss_file_kib, 20_480);
        let own = MemorySample::of_process(std::process::id()).unwrap();
        assert!(
            own.vm_rss_kib > 0 && own.vm_hwm_kib >= own.vm_rss_kib,
            "{own:?}"
        );
    }

    fn trader(resting_max: u32) -> Trader {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let connection = Connection::open(listener.local_addr().unwrap(), 4, 1, "test").unwrap();
        Trader::new(connection, "DEMO1", resting_max)
    }

    #[test]
    fn day_cycle_rests_crosses_and_cancels_the_oldest() {
        let mut trader = trader(2);
        let mut day = DayTotals::default();
        let mut orders_left = 8;
        trader.fill_window(1_000, &mut orders_left, &mut day);
        // Two cycles of 2 resting + 1 IOC, then 2 resting; the second
        // cycle's cancel step finds 4 resting orders queued, 2 more than
        // allowed, and cancels the 2 oldest.
        assert_eq!(day.orders, 8);
        assert_eq!(day.cancels, 2, "{day:?}");
        assert_eq!(trader.in_flight, 10);
        assert_eq!(Vec::from(trader.resting.clone()), vec![4, 5, 7, 8]);
        // The first order (a resting buy) traded: no cancel goes for it.
        let first = trader.resting.front().copied();
        if let Some(first) = first {
            trader
                .handle(
                    Event::Executed {
                        user_ref_num: first,
                        quantity: 1,
                    },
                    &mut day,
                )
                .unwrap();
            assert!(!trader.slot(first).open);
        }
        // An IOC's side follows the position: long, so sell.
        trader.position = 5;
        trader.step = 2;
        assert!(matches!(
            trader.next_request(),
            Some(Request::Enter {
                side: Side::Sell,
                time_in_force: TimeInForce::ImmediateOrCancel,
                ..
            })
        ));
        trader.position = -5;
        trader.step = 2;
        assert!(matches!(
            trader.next_request(),
            Some(Request::Enter {
                side: Side::Buy,
                price: CROSSING_BUY_PRICE,
                ..
            })
        ));
        // Replies close requests: accepted, user-requested cancel, refused
        // cancel; an IOC remainder's cancel does not.
        let before = trader.in_flight;
        trader.handle(Event::Accepted(1), &mut day).unwrap();
        trader
            .handle(
                Event::Canceled {
                    user_ref_num: 2,
                    reason: b'I',
                },
                &mut day,
            )
            .unwrap();
        trader
            .handle(
                Event::Canceled {
                    user_ref_num: 2,
                    reason: b'U',
                },
                &mut day,
            )
            .unwrap();
        trader
            .handle(Event::CancelRejected { user_ref_num: 3 }, &mut day)
            .unwrap();
        assert_eq!(trader.in_flight, before - 3);
        assert_eq!(day.cancels_rejected, 1);
    }

    #[test]
    fn day_prices_stay_inside_the_band_and_do_not_cross_at_rest() {
        let mut trader = trader(8);
        for _ in 0..4 * RESTING_PRICE_STEPS * 2 {
            if let Some(Request::Enter {
                side,
                price,
                time_in_force,
            }) = trader.next_request()
            {
                assert!((90 * ouch::PRICE_SCALE..=110 * ouch::PRICE_SCALE).contains(&price));
                assert_eq!(price % TICK, 0);
                if time_in_force == TimeInForce::Day {
                    match side {
                        Side::Buy => {
                            assert!(price < SELL_PRICE_BOTTOM && price > CROSSING_SELL_PRICE)
                        }
                        _ => assert!(price > BUY_PRICE_TOP && price < CROSSING_BUY_PRICE),
                    }
                }
            }
        }
    }

    #[test]
    fn day_configuration_is_checked() {
        let good = DayBenchConfig {
            checkpoints: vec![10, 20],
            connections: 2,
            window: 16,
            resting_max: 64,
            executable: PathBuf::from("/nonexistent"),
            durability: ServerDurability::Memory,
            restart: Some(StopMode::Clean),
        };
        assert!(check_config(&good).is_ok());
        for bad in [
            DayBenchConfig {
                checkpoints: vec![20, 10],
                ..good.clone()
            },
            DayBenchConfig {
                checkpoints: vec![],
                ..good.clone()
            },
            DayBenchConfig {
                connections: 5,
                ..good.clone()
            },
            DayBenchConfig {
                resting_max: RESTING_MAX_LIMIT + 1,
                ..good.clone()
            },
            DayBenchConfig {
                window: 0,
                ..good.clone()
            },
        ] {
            assert!(check_config(&bad).is_err(), "{bad:?}");
        }
    }
}
