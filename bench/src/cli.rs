//! `exchange-bench …`: the command-line face of the harness. The
//! `exchange-bench` binary (`src/bin/exchange-bench.rs`) mounts
//! [`BenchCommand`] and calls [`run`]. This is
//! the one module of the crate that uses `anyhow`: it only reports errors to
//! a person.
//!
//! Output: a table for people, or with `--json` exactly one JSON object on
//! stdout (progress goes to stderr). For one workload the object is flat —
//! `{"workload", "commands", "seconds", "throughput_per_sec", "latency_ns":
//! {"p50", "p99", "p999", "p9999", "max"}, …, "machine", "command"}`; for
//! `--workload all` it is `{"workloads": {NAME: {…}, …}, "machine",
//! "command"}` with the same object per workload. `bench engine` also
//! measures the peer order books on the same stream unless `--no-peers`:
//! each workload's object then holds `"peers": {"matchcore": {…},
//! "lobster": {…}}` (see [`crate::peers`]), and the table a block of rows
//! per peer with the throughput ratio ours / peer.

use crate::harness::{JournalTarget, WorkloadReport, measure_journaled, measure_with_config};
use crate::machine::Machine;
use crate::peers::{PeerReport, engine_fills, measure_peers};
use crate::workload::{WorkloadKind, generate};
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use engine::EngineConfig;
use journal::{Durability, JournalOptions};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Benchmarks of the exchange core.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Measure the matching and settlement state machine alone, on one
    /// thread, with seeded realistic workloads.
    ///
    /// Each workload is generated in full first (not timed), then applied to
    /// an engine of its own once to warm up, then `--runs` times: a
    /// throughput pass (fresh engine, setup untimed, one clock read at each
    /// end of the stream) and a latency pass (fresh engine, a clock read
    /// before and after every command, percentiles from an HdrHistogram;
    /// every latency includes the reported timer overhead). The run with the
    /// median throughput is reported. Every pass must reach the generator's
    /// final state hash, event count and reject count, or the command fails.
    Engine(EngineArgs),
    /// Measure the write-ahead journal: append cost against a plain copy of
    /// the same bytes (64, 256, 1024-byte bodies), group commit under the
    /// fsync policy (paced open loop: records/s made durable and the added
    /// latency from each record's scheduled append; then as fast as
    /// possible), replay (open_read_only and a reader: records/s, MB/s),
    /// and the raw fdatasync latency of the directory as the floor.
    ///
    /// Per-record figures are the median of `--runs` runs; group-commit
    /// latencies are percentiles over every record of every run.
    Journal(JournalArgs),
    /// Measure the hop between two threads pinned to two cores: the
    /// engine's SPSC ring against crossbeam's ArrayQueue and bounded
    /// channel, 64-byte messages: one-way throughput (consumer draining in
    /// batches) and ping-pong round-trip percentiles (halved for one way).
    /// Figures are medians of `--runs` runs, the queues interleaved.
    Ring(RingArgs),
    /// Measure order entry end to end over loopback: OUCH Enter Order to
    /// Order Accepted through `exchange serve`, against a plain TCP echo of
    /// the same frame sizes measured in the same run as the floor.
    ///
    /// The echo floor comes first (one server thread on mio, the gateway's
    /// style and the floor of the ratios; then a spinning thread and
    /// blocking threads for reference), then the exchange: started by this
    /// command (`serve --config FILE`: the default configuration with a
    /// fresh data directory, free ports, `--durability`, the rate limit
    /// raised) and stopped at the end, or a running server (`--target`). Connection k
    /// logs in as DEMOk. One client thread drives every connection: a
    /// ping-pong latency phase (`--orders` round trips, one order
    /// outstanding per connection, HdrHistogram percentiles) and a
    /// pipelined throughput phase (`--window` orders outstanding per
    /// connection for `--seconds`), each after `--warmup-seconds` of the
    /// same. Every order is an IOC buy of 1 ACME at 95.0000 that never
    /// crosses (accepted dead, then canceled), so the book stays empty.
    E2e(E2eArgs),
    /// Measure the resident memory of `exchange serve` against the orders
    /// of one trading day, then the time a restart takes against the
    /// journal's length.
    ///
    /// The server is started as `e2e` starts it (a fresh data directory
    /// under the temporary directory, free ports, `--durability`).
    /// `--connections` logins send, as fast as the server answers and with
    /// `--window` requests outstanding each, a cycle of a resting buy, a
    /// resting sell, an IOC that crosses the spread and trades, and a
    /// cancel of the oldest open order (repeated while more than
    /// `--resting-max` are open; self-trade prevention `cancel-oldest`). At each count
    /// of `--orders` (Enter Orders over all connections) the replies are
    /// awaited and VmRSS, VmHWM, RssAnon and RssFile read from
    /// /proc/PID/status. Then the server is stopped (`--restart`) and
    /// started again on the same directory, timed from the spawn until
    /// order entry and the market-data snapshot port listen and until a
    /// login is accepted. The data directory is removed at the end.
    Day(DayArgs),
    /// Measure market data: the publisher (engine events to ITCH 5.0 in
    /// MoldUDP64 packets), book building by a subscriber, and the latency
    /// from engine to subscriber through UDP and two threads.
    ///
    /// The workload's engine events are recorded first (untimed). Then, in
    /// each of `--runs` runs: publishing every recorded command (a flush
    /// every `--flush-every` commands) with packets only counted, then
    /// with each sent over UDP (multicast 239.255.42.1:26400 on 127.0.0.1
    /// when NETNS_RUN=1, i.e. inside netns-run; else unicast to a socket on
    /// 127.0.0.1); book building from the packets (parse, decode,
    /// Books::apply) and decode alone. Figures are medians with min and
    /// max. Last, a subscriber thread receives the feed over UDP while the
    /// publisher replays the recording at `--rate` commands/s for
    /// `--seconds`, each header stamped with the wall clock: latency =
    /// receipt minus ITCH timestamp, HdrHistogram percentiles. Every book
    /// built must equal the publisher's feed.
    Md(MdArgs),
    /// Measure open-loop latency against offered load: a pinned producer
    /// issues the workload's commands into the engine's input ring at a
    /// fixed rate (command i intended for start + i/rate; a late one is
    /// sent at once but keeps its intended time), a pinned engine thread
    /// applies them; latency = completion minus intended time
    /// (HdrHistogram), free of coordinated omission. The rate is stepped
    /// up until the median exceeds `--median-bound-us` or the producer
    /// falls behind; the report gives the curve and the p99 at 1 M/s.
    Latency(crate::open_loop::LatencyArgs),
    /// Run every bench at modest sizes (a few minutes) with the physical
    /// floors measured in the same run, and write OUT/BENCHMARKS.md (the
    /// machine, the commit, the command, a table per section with ratios to
    /// the floors and the peers, the targets met or missed) and its
    /// plots in OUT/benchmarks/*.svg. Use a release build.
    Report(crate::report::ReportArgs),
}

/// Arguments of `exchange-bench md`.
#[derive(Debug, Args)]
pub struct MdArgs {
    /// The workload whose engine events are published (`all` is refused).
    #[arg(long, value_enum, default_value_t = WorkloadChoice::ExchangeCore)]
    pub workload: WorkloadChoice,

    /// Measured commands of the workload, its setup on top [default:
    /// 1000000, 20000 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub commands: Option<u64>,

    /// Seed of the workload generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Repetitions of the throughput passes; figures are their median
    /// [default: 5, 2 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub runs: Option<u32>,

    /// Commands between two flushes of the publisher in the throughput
    /// passes (a live publisher flushes when its input is drained).
    #[arg(long, default_value_t = crate::FLUSH_EVERY_COMMANDS, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub flush_every: u32,

    /// The offered rate of the latency phase, commands per second.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub rate: u64,

    /// Length of the latency phase (shorter if the recording ends first)
    /// [default: 3, 0.3 with --quick].
    #[arg(long, value_parser = seconds_positive)]
    pub seconds: Option<f64>,

    /// A tiny run for a smoke test (the defaults above in brackets).
    #[arg(long)]
    pub quick: bool,

    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `exchange-bench e2e`.
#[derive(Debug, Args)]
pub struct E2eArgs {
    /// Client connections (logins DEMO1..DEMO4 with the default
    /// configuration).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub connections: u32,

    /// Orders outstanding per connection in the throughput phase.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub window: u32,

    /// Length of the throughput phase [default: 5, 0.5 with --quick].
    #[arg(long, value_parser = seconds_positive)]
    pub seconds: Option<f64>,

    /// Warm-up before the latency and before the throughput phase
    /// [default: 1, 0.2 with --quick].
    #[arg(long, value_parser = seconds_non_negative)]
    pub warmup_seconds: Option<f64>,

    /// Round trips timed in the latency phase, over all connections
    /// [default: 100000, 2000 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub orders: Option<u64>,

    /// Measure a running server at ADDR (host:port of its order-entry
    /// port) instead of starting one. Its configuration must have the demo
    /// logins; UserRefNums continue from its Account Query Response.
    #[arg(long, value_name = "ADDR", conflicts_with = "echo_only")]
    pub target: Option<String>,

    /// The journal durability of the server this command starts.
    #[arg(long, value_enum, default_value_t = DurabilityChoice::Memory, conflicts_with = "target")]
    pub durability: DurabilityChoice,

    /// Measure the echo floor only (no exchange).
    #[arg(long)]
    pub echo_only: bool,

    /// A tiny run for a smoke test (the defaults above in brackets).
    #[arg(long)]
    pub quick: bool,

    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `exchange-bench day`.
#[derive(Debug, Args)]
pub struct DayArgs {
    /// Enter Orders (over all connections) at which memory is sampled,
    /// ascending, comma-separated; the last ends the day [default:
    /// 1000000,3000000; 10000,20000 with --quick].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub orders: Vec<u64>,

    /// Client connections (logins DEMO1..DEMO4 with the default
    /// configuration) [default: 4, 2 with --quick].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub connections: Option<u32>,

    /// Requests outstanding per connection.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::day_bench::WINDOW_MAX)))]
    pub window: u32,

    /// Open resting orders per connection past which the oldest is
    /// canceled.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(2..=i64::from(crate::day_bench::RESTING_MAX_LIMIT)))]
    pub resting_max: u32,

    /// The journal durability of the server.
    #[arg(long, value_enum, default_value_t = DurabilityChoice::Memory)]
    pub durability: DurabilityChoice,

    /// How the server is stopped before the restart.
    #[arg(long, value_enum, default_value_t = RestartChoice::Clean)]
    pub restart: RestartChoice,

    /// Start the server from this binary instead of this executable's
    /// hidden `serve`: any binary with `serve --config FILE` and `config
    /// show` (an `exchange` or `exchange-bench` of another build), so that
    /// an old build and a new one are measured by the same bench.
    #[arg(long, value_name = "PATH")]
    pub server_binary: Option<std::path::PathBuf>,

    /// A small run for a smoke test (the defaults above in brackets).
    #[arg(long)]
    pub quick: bool,

    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// How `day` stops the server before it restarts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RestartChoice {
    /// SIGTERM: the server closes its journal cleanly.
    Clean,
    /// SIGKILL: a crash.
    Crash,
    /// No restart.
    None,
}

fn seconds_positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!("{text} is not a number of seconds in (0, 86400]")),
    }
}

fn seconds_non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.0..=86_400.0).contains(&seconds) => Ok(seconds),
        _ => Err(format!("{text} is not a number of seconds in [0, 86400]")),
    }
}

/// Arguments of `exchange-bench ring`.
#[derive(Debug, Args)]
pub struct RingArgs {
    /// Messages per throughput run; each latency run times a tenth as many
    /// round trips (at least 1).
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub messages: u64,

    /// Repetitions; figures are their median.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub runs: u32,

    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `exchange-bench journal`.
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// Where to put the journals: a fresh subdirectory of DIR, removed
    /// afterwards [default: the system's temporary directory]. Point it at
    /// the disk to measure.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,

    /// Repetitions; per-record figures are their median.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub runs: u32,

    /// Timed appends of 64-byte bodies per run, and the records of each
    /// group-commit run; larger bodies get the same body bytes (1 KiB
    /// bodies: a sixteenth as many records).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(16..=100_000_000))]
    pub records: u64,

    /// The offered rate of the paced group-commit run, records per second.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub rate: u64,

    /// Print exactly one flat JSON object on stdout instead of a report.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `exchange-bench engine`.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// The workload to run.
    #[arg(long, value_enum, default_value_t = WorkloadChoice::ExchangeCore)]
    pub workload: WorkloadChoice,

    /// Measured commands per pass [default: 1000000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub commands: Option<u64>,

    /// Seed of the workload generator: the same seed and length give the
    /// same commands and the same final state hash on any machine.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Repetitions (each a throughput pass and a latency pass); the median
    /// run by throughput is reported, with min and max throughput.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub runs: u32,

    /// The engine's `orders_max` (resting orders across all books) [default:
    /// the engine's default, 1048576]. The engine sizes its order slab from
    /// it (its order indexes grow with the open orders instead).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=(u32::MAX as i64 - 1)))]
    pub orders_max: Option<u32>,

    /// Journal every command: each goes through the sequencer (clock stamp,
    /// append to a real journal in DIR, then apply), so the figures are the
    /// engine's and the journal's together. DIR must hold no journal; the
    /// last run's journal is left there (DIR/<workload> with `--workload
    /// all`), so `exchange journal replay DIR` ends at the same state hash.
    #[arg(long, value_name = "DIR")]
    pub journal: Option<std::path::PathBuf>,

    /// The journal's durability policy with `--journal` (the engine never
    /// waits for it either way: `fsync` adds the flusher's work beside it).
    #[arg(long, value_enum, default_value_t = DurabilityChoice::Memory, requires = "journal")]
    pub durability: DurabilityChoice,

    /// Print exactly one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Also measure the peer order books (matchcore, lobster) on the same
    /// stream in the same run, and compare their fills with ours (the
    /// default).
    #[arg(long, overrides_with = "no_peers")]
    pub peers: bool,

    /// Skip the peers.
    #[arg(long, overrides_with = "peers")]
    pub no_peers: bool,
}

/// The `--durability` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurabilityChoice {
    /// Durable once in the mapped pages.
    Memory,
    /// Synced by the flusher thread in groups (200 µs idle delay).
    Fsync,
}

impl DurabilityChoice {
    fn options(self) -> JournalOptions {
        JournalOptions {
            durability: match self {
                DurabilityChoice::Memory => Durability::Memory,
                DurabilityChoice::Fsync => Durability::Fsync {
                    flush_delay_us_max: 200,
                },
            },
            record_bytes_max: engine::codec::COMMAND_BYTES_MAX,
            ..JournalOptions::default()
        }
    }

    fn name(self) -> &'static str {
        match self {
            DurabilityChoice::Memory => "memory",
            DurabilityChoice::Fsync => "fsync",
        }
    }
}

/// The `--workload` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WorkloadChoice {
    /// exchange-core's mix: 9% GTC, 3% IOC, 6% cancel, 82% move; ~1 000
    /// resting orders over ~750 levels, 2 000 accounts.
    ExchangeCore,
    /// A deep book, cancel-heavy: ~100 000 resting orders over ~5 000
    /// levels; 35% GTC, 15% IOC, 25% cancel, 5% partial cancel, 15% move,
    /// 5% replace keeping priority.
    DeepBook,
    /// Large orders that clear 10-50 price levels (1% of commands) on a
    /// ~4 000-order book over ~1 800 levels, refilled by passive orders.
    Sweep,
    /// The exchange-core mix with 20% funding: deposits, withdrawals and
    /// transfers with exactly-once ids, one in ten a repeat.
    Funding,
    /// Every workload, one after the other (JSON: {"workloads": {...}}).
    All,
}

impl WorkloadChoice {
    fn kinds(self) -> Vec<WorkloadKind> {
        match self {
            WorkloadChoice::ExchangeCore => vec![WorkloadKind::ExchangeCore],
            WorkloadChoice::DeepBook => vec![WorkloadKind::DeepBook],
            WorkloadChoice::Sweep => vec![WorkloadKind::Sweep],
            WorkloadChoice::Funding => vec![WorkloadKind::Funding],
            WorkloadChoice::All => WorkloadKind::ALL.to_vec(),
        }
    }
}

/// Run a bench command.
pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Engine(arguments) => run_engine(&arguments),
        BenchCommand::Journal(arguments) => run_journal(&arguments),
        BenchCommand::Ring(arguments) => run_ring(&arguments),
        BenchCommand::E2e(arguments) => run_e2e(&arguments),
        BenchCommand::Day(arguments) => run_day(&arguments),
        BenchCommand::Md(arguments) => run_md(&arguments),
        BenchCommand::Latency(arguments) => {
            let output =
                crate::open_loop::run_command(&arguments).context("measuring open-loop latency")?;
            println!("{output}");
            Ok(())
        }
        BenchCommand::Report(arguments) => run_report(&arguments),
    }
}

fn run_report(arguments: &crate::report::ReportArgs) -> anyhow::Result<()> {
    let mut config = crate::report::ReportConfig::new(arguments.out.clone(), arguments.quick);
    if !arguments.no_e2e {
        config.e2e_executable =
            Some(std::env::current_exe().context("finding the exchange-bench executable")?);
    }
    let path = crate::report::write_report(&config, |step| eprintln!("report: {step}"))
        .map_err(anyhow::Error::msg)
        .context("writing the benchmark report")?;
    println!("{}", path.display());
    Ok(())
}

fn run_md(arguments: &MdArgs) -> anyhow::Result<()> {
    let machine = Machine::detect();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut config = crate::MdBenchConfig::new(arguments.quick);
    config.workload = match arguments.workload {
        WorkloadChoice::ExchangeCore => WorkloadKind::ExchangeCore,
        WorkloadChoice::DeepBook => WorkloadKind::DeepBook,
        WorkloadChoice::Sweep => WorkloadKind::Sweep,
        WorkloadChoice::Funding => WorkloadKind::Funding,
        WorkloadChoice::All => anyhow::bail!("bench md measures one workload at a time"),
    };
    if let Some(commands) = arguments.commands {
        config.commands = usize::try_from(commands).context("--commands does not fit memory")?;
    }
    config.seed = arguments.seed;
    config.runs = arguments.runs.unwrap_or(config.runs);
    config.flush_every = arguments.flush_every;
    config.rate_per_sec = arguments.rate;
    if let Some(seconds) = arguments.seconds {
        config.latency_duration = std::time::Duration::from_secs_f64(seconds);
    }
    let report = crate::measure_md(&config, |step| eprintln!("md: {step}"))
        .context("measuring market data")?;
    let output = if arguments.json {
        serde_json::to_string(&crate::md_bench::MdJson {
            report: &report,
            machine: &machine,
            command: &command,
        })?
    } else {
        report.table(&machine, &command)
    };
    println!("{output}");
    Ok(())
}

fn run_e2e(arguments: &E2eArgs) -> anyhow::Result<()> {
    use crate::e2e_bench::{E2eBenchConfig, E2eJson, ServerChoice, ServerDurability};
    let machine = Machine::detect();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let (seconds, warm_up_seconds, orders) = if arguments.quick {
        (0.5, 0.2, 2_000)
    } else {
        (5.0, 1.0, 100_000)
    };
    let server = if arguments.echo_only {
        ServerChoice::EchoOnly
    } else if let Some(target) = &arguments.target {
        ServerChoice::Target(target.clone())
    } else {
        ServerChoice::Spawn {
            executable: std::env::current_exe().context("finding the exchange-bench executable")?,
            durability: match arguments.durability {
                DurabilityChoice::Memory => ServerDurability::Memory,
                DurabilityChoice::Fsync => ServerDurability::Fsync,
            },
        }
    };
    let config = E2eBenchConfig {
        // At most 4 (clap's range).
        connections: arguments.connections as usize,
        window: arguments.window,
        orders: arguments.orders.unwrap_or(orders),
        throughput_duration: std::time::Duration::from_secs_f64(
            arguments.seconds.unwrap_or(seconds),
        ),
        warm_up_duration: std::time::Duration::from_secs_f64(
            arguments.warmup_seconds.unwrap_or(warm_up_seconds),
        ),
        server,
    };
    let report = crate::e2e_bench::measure_e2e(&config, |step| eprintln!("e2e: {step}"))
        .context("measuring order entry end to end")?;
    let output = if arguments.json {
        serde_json::to_string(&E2eJson {
            report: &report,
            machine: &machine,
            command: &command,
        })?
    } else {
        report.table(&machine, &command)
    };
    println!("{output}");
    Ok(())
}

fn run_day(arguments: &DayArgs) -> anyhow::Result<()> {
    use crate::day_bench::{DayBenchConfig, DayJson};
    use crate::e2e_bench::{ServerDurability, StopMode};
    let machine = Machine::detect();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let (checkpoints, connections) = if arguments.quick {
        (vec![10_000, 20_000], 2)
    } else {
        (vec![1_000_000, 3_000_000], 4)
    };
    let config = DayBenchConfig {
        checkpoints: if arguments.orders.is_empty() {
            checkpoints
        } else {
            arguments.orders.clone()
        },
        // At most 4 (clap's range).
        connections: arguments
            .connections
            .map_or(connections, |count| count as usize),
        window: arguments.window,
        resting_max: arguments.resting_max,
        executable: match &arguments.server_binary {
            Some(path) => path.clone(),
            None => std::env::current_exe().context("finding the exchange-bench executable")?,
        },
        durability: match arguments.durability {
            DurabilityChoice::Memory => ServerDurability::Memory,
            DurabilityChoice::Fsync => ServerDurability::Fsync,
        },
        restart: match arguments.restart {
            RestartChoice::Clean => Some(StopMode::Clean),
            RestartChoice::Crash => Some(StopMode::Crash),
            RestartChoice::None => None,
        },
    };
    let report = crate::day_bench::measure_day(&config, |step| eprintln!("day: {step}"))
        .context("measuring a trading day of `exchange serve`")?;
    let output = if arguments.json {
        serde_json::to_string(&DayJson {
            report: &report,
            machine: &machine,
            command: &command,
        })?
    } else {
        report.table(&machine, &command)
    };
    println!("{output}");
    Ok(())
}

fn run_ring(arguments: &RingArgs) -> anyhow::Result<()> {
    let machine = Machine::detect();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let config = crate::RingBenchConfig {
        messages: arguments.messages,
        round_trips: (arguments.messages / 10).max(1),
        runs: arguments.runs,
    };
    let report = crate::measure_ring(&config, |step| eprintln!("ring: {step}"))
        .map_err(anyhow::Error::msg)
        .context("measuring the ring hop")?;
    let output = if arguments.json {
        serde_json::to_string(&crate::ring_bench::RingJson {
            report: &report,
            machine: &machine,
            command: &command,
        })?
    } else {
        report.table(&machine, &command)
    };
    println!("{output}");
    Ok(())
}

fn run_journal(arguments: &JournalArgs) -> anyhow::Result<()> {
    let machine = Machine::detect();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let config = crate::JournalBenchConfig {
        dir: arguments.dir.clone(),
        runs: arguments.runs,
        records: arguments.records,
        rate_per_sec: arguments.rate,
        ..Default::default()
    };
    let report = crate::measure_journal(&config, |step| eprintln!("journal: {step}"))
        .context("measuring the journal")?;
    let output = if arguments.json {
        serde_json::to_string(&report.to_json(&machine, &command))?
    } else {
        report.table(&machine, &command)
    };
    println!("{output}");
    Ok(())
}

/// The peers' reports on one workload, by peer name.
type PeerReports = BTreeMap<&'static str, PeerReport>;

/// One workload's report, with `"peers": {NAME: {…}}` when they ran.
#[derive(Debug, Serialize)]
struct WorkloadJson<'a> {
    #[serde(flatten)]
    report: &'a WorkloadReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<&'a PeerReports>,
}

/// The JSON of one workload: its report with the machine and the command.
#[derive(Debug, Serialize)]
struct SingleJson<'a> {
    #[serde(flatten)]
    report: WorkloadJson<'a>,
    machine: &'a Machine,
    command: &'a str,
}

/// The JSON of `--workload all`.
#[derive(Debug, Serialize)]
struct AllJson<'a> {
    workloads: BTreeMap<&'static str, WorkloadJson<'a>>,
    machine: &'a Machine,
    command: &'a str,
}

fn run_engine(arguments: &EngineArgs) -> anyhow::Result<()> {
    let machine = Machine::detect();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut config = EngineConfig::default();
    if let Some(orders_max) = arguments.orders_max {
        config.orders_max = orders_max;
    }
    config.validate().context("--orders-max")?;
    let mut reports = Vec::new();
    // Empty with `--no-peers`; else one entry per report.
    let mut peers: Vec<PeerReports> = Vec::new();
    for kind in arguments.workload.kinds() {
        let commands = match arguments.commands {
            Some(commands) => {
                usize::try_from(commands).context("--commands does not fit memory")?
            }
            None => kind.commands_default(),
        };
        eprintln!(
            "{kind}: generating {commands} commands from seed {}",
            arguments.seed
        );
        let started = Instant::now();
        let workload = generate(kind, arguments.seed, commands);
        let generation_seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "{kind}: {} setup commands; measuring: warm-up, then {} runs",
            workload.setup.len(),
            arguments.runs
        );
        let mut report = match &arguments.journal {
            None => measure_with_config(&workload, arguments.runs, config),
            Some(dir) => {
                let dir = match arguments.workload {
                    WorkloadChoice::All => dir.join(kind.name()),
                    _ => dir.clone(),
                };
                let target = JournalTarget {
                    dir,
                    options: arguments.durability.options(),
                };
                measure_journaled(&workload, arguments.runs, config, &target).map(|mut report| {
                    report.journal_dir = Some(target.dir.display().to_string());
                    report.durability = Some(arguments.durability.name());
                    report
                })
            }
        }
        .with_context(|| format!("measuring {kind}"))?;
        report.generation_seconds = generation_seconds;
        if arguments.journal.is_some() && !arguments.no_peers {
            // Ours journaled against peers in memory would not compare.
            eprintln!("{kind}: with --journal the peers are not run (they keep no journal)");
        } else if !arguments.no_peers {
            eprintln!(
                "{kind}: the peers on the same stream: check pass, then {} runs each",
                arguments.runs
            );
            let ours = engine_fills(&workload.setup, &workload.commands, config);
            peers.push(measure_peers(
                &workload,
                arguments.runs,
                &ours,
                report.throughput_per_sec,
            ));
        }
        reports.push(report);
    }

    let output = if arguments.json {
        json(arguments.workload, &reports, &peers, &machine, &command)?
    } else {
        table(&reports, &peers, &machine, &command)
    };
    println!("{output}");
    Ok(())
}

/// `peers` is empty (no peers ran) or holds one entry per report.
fn json(
    choice: WorkloadChoice,
    reports: &[WorkloadReport],
    peers: &[PeerReports],
    machine: &Machine,
    command: &str,
) -> anyhow::Result<String> {
    assert!(peers.is_empty() || peers.len() == reports.len());
    let with_peers = |index: usize, report| WorkloadJson {
        report,
        peers: peers.get(index),
    };
    let text = match (choice, reports) {
        (
            WorkloadChoice::ExchangeCore
            | WorkloadChoice::DeepBook
            | WorkloadChoice::Sweep
            | WorkloadChoice::Funding,
            [report],
        ) => serde_json::to_string(&SingleJson {
            report: with_peers(0, report),
            machine,
            command,
        })?,
        _ => serde_json::to_string(&AllJson {
            workloads: reports
                .iter()
                .enumerate()
                .map(|(index, report)| (report.workload, with_peers(index, report)))
                .collect(),
            machine,
            command,
        })?,
    };
    Ok(text)
}

/// A human-readable table, one column per workload; `peers` as for
/// [`json`].
fn table(
    reports: &[WorkloadReport],
    peers: &[PeerReports],
    machine: &Machine,
    command: &str,
) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, value: &dyn Fn(&WorkloadReport) -> String| {
        rows.push((label.to_owned(), reports.iter().map(value).collect()));
    };
    row("workload", &|r| r.workload.to_owned());
    row("seed", &|r| r.seed.to_string());
    row("measured commands", &|r| grouped(r.commands));
    row("setup commands (untimed)", &|r| grouped(r.setup_commands));
    row("runs (median run shown)", &|r| r.runs.to_string());
    row("engine orders_max", &|r| grouped(u64::from(r.orders_max)));
    row("journal", &|r| match (&r.journal_dir, r.durability) {
        (Some(dir), Some(durability)) => format!("{dir} ({durability})"),
        _ => "none (state machine alone)".to_owned(),
    });
    row("throughput pass: commands/s", &|r| {
        grouped_float(r.throughput_per_sec)
    });
    row("  min .. max over runs", &|r| {
        format!(
            "{} .. {}",
            grouped_float(r.throughput_per_sec_min),
            grouped_float(r.throughput_per_sec_max)
        )
    });
    row("  seconds", &|r| format!("{:.3}", r.seconds));
    row("  minor page faults", &|r| {
        r.page_faults.map_or("n/a".to_owned(), grouped)
    });
    row("latency pass, ns: p50", &|r| grouped(r.latency_ns.p50));
    row("  p99", &|r| grouped(r.latency_ns.p99));
    row("  p99.9", &|r| grouped(r.latency_ns.p999));
    row("  p99.99", &|r| grouped(r.latency_ns.p9999));
    row("  max", &|r| grouped(r.latency_ns.max));
    row("  mean", &|r| format!("{:.1}", r.latency_mean_ns));
    row("  timer overhead (in each)", &|r| {
        grouped(r.timer_overhead_ns)
    });
    row("events", &|r| grouped(r.events));
    row("fills", &|r| grouped(r.fills));
    row("rejected", &|r| grouped(r.rejected));
    row("book: resting orders (mean)", &|r| {
        grouped(r.book_mean.resting_orders)
    });
    row("book: price levels (mean)", &|r| {
        grouped(r.book_mean.price_levels)
    });
    for (index, name) in [
        "limit_gtc",
        "limit_ioc",
        "cancel",
        "partial_cancel",
        "replace_priority_lost",
        "replace_priority_kept",
    ]
    .iter()
    .enumerate()
    {
        row(&format!("mix: {name} %"), &|r| {
            let (_, count) = r.mix.entries()[index];
            format!("{:.2}", 100.0 * count as f64 / r.mix.total().max(1) as f64)
        });
    }
    row("generation seconds", &|r| {
        format!("{:.2}", r.generation_seconds)
    });
    row("final state hash", &|r| r.state_hash.clone());
    rows.extend(peer_rows(reports.len(), peers));

    let label_width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .flat_map(|(_, values)| values.iter().map(String::len))
        .max()
        .unwrap_or(0);
    let mut text = format!(
        "exchange-bench engine: the state machine on one thread (see the journal row)\n\
         machine: {machine}\n\
         command: {command}\n\n"
    );
    for (label, values) in rows {
        text.push_str(&format!("{label:<label_width$}"));
        for value in values {
            text.push_str(&format!("  {value:>value_width$}"));
        }
        text.push('\n');
    }
    text.push_str(
        "\nthroughput: untimed pass (clock read at each end of the stream); latency: a separate \
         pass timing every command.",
    );
    text.push_str(&peer_notes(reports, peers));
    text
}

/// The peers' rows of the table: one block per peer, a column per
/// workload ("-" where the peer did not run).
fn peer_rows(columns: usize, peers: &[PeerReports]) -> Vec<(String, Vec<String>)> {
    let names: std::collections::BTreeSet<&'static str> = peers
        .iter()
        .flat_map(|by_name| by_name.keys().copied())
        .collect();
    let mut rows = Vec::new();
    for name in names {
        let cells = |value: &dyn Fn(&PeerReport) -> String| -> Vec<String> {
            (0..columns)
                .map(|index| {
                    peers
                        .get(index)
                        .and_then(|by_name| by_name.get(name))
                        .map_or("-".to_owned(), value)
                })
                .collect()
        };
        let version = peers
            .iter()
            .find_map(|by_name| by_name.get(name))
            .map_or("", |report| report.version);
        rows.push((
            format!("peer {name} {version}: commands/s"),
            cells(&|p| grouped_float(p.throughput_per_sec)),
        ));
        rows.push((
            "  ours / peer throughput".to_owned(),
            cells(&|p| format!("{:.2}", p.throughput_ratio_ours_to_peer)),
        ));
        rows.push((
            "  latency ns: p50".to_owned(),
            cells(&|p| grouped(p.latency_ns.p50)),
        ));
        rows.push(("  p99".to_owned(), cells(&|p| grouped(p.latency_ns.p99))));
        rows.push(("  p99.9".to_owned(), cells(&|p| grouped(p.latency_ns.p999))));
        rows.push((
            "  fills (peer / ours)".to_owned(),
            cells(&|p| format!("{} / {}", grouped(p.fills), grouped(p.fills_ours))),
        ));
        rows.push((
            "  fills match ours".to_owned(),
            cells(&|p| match (p.fills_match, p.first_fill_divergence) {
                (true, _) => "yes".to_owned(),
                (false, Some(index)) => format!("no (from fill {})", grouped(index)),
                (false, None) => "no".to_owned(),
            }),
        ));
        rows.push((
            "  fills beyond the limit".to_owned(),
            cells(&|p| grouped(p.fills_through_limit)),
        ));
        rows.push((
            "  skipped / refused commands".to_owned(),
            cells(&|p| {
                format!(
                    "{} / {}",
                    grouped(p.ignored_commands + p.unsupported_commands),
                    grouped(p.rejected_commands)
                )
            }),
        ));
    }
    rows
}

/// The peers' notes under the table: each peer's standing notes once,
/// then what each workload's run found.
fn peer_notes(reports: &[WorkloadReport], peers: &[PeerReports]) -> String {
    let mut text = String::new();
    let mut noted = std::collections::BTreeSet::new();
    for (report, by_name) in reports.iter().zip(peers) {
        for (name, peer) in by_name {
            for note in &peer.notes {
                let found = note.starts_with("found:");
                if found {
                    text.push_str(&format!("\n{name} on {}: {note}", report.workload));
                } else if noted.insert((*name, note.as_str())) {
                    text.push_str(&format!("\n{name}: {note}"));
                }
            }
        }
    }
    if !text.is_empty() {
        text.insert_str(
            0,
            "\n\npeers: the same stream in the same run, setup untimed; fills compared in order \
             (price, quantity, taker side). Notes:",
        );
    }
    text
}

/// `1234567` as `1,234,567`.
pub(crate) fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

fn grouped_float(value: f64) -> String {
    // Reporting only: a rate rounded to a whole number per second.
    grouped(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::measure;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: BenchCommand,
    }

    #[test]
    fn arguments_parse_with_defaults() {
        TestCli::command().debug_assert();
        let cli = TestCli::try_parse_from(["bench", "engine"]).unwrap();
        let BenchCommand::Engine(arguments) = cli.command else {
            panic!("not engine")
        };
        assert_eq!(arguments.workload, WorkloadChoice::ExchangeCore);
        assert_eq!(
            (
                arguments.commands,
                arguments.seed,
                arguments.runs,
                arguments.json
            ),
            (None, 1, 5, false)
        );
        let cli = TestCli::try_parse_from([
            "bench",
            "engine",
            "--workload",
            "deep-book",
            "--commands",
            "10",
            "--seed",
            "9",
            "--runs",
            "2",
            "--json",
        ])
        .unwrap();
        let BenchCommand::Engine(arguments) = cli.command else {
            panic!("not engine")
        };
        assert_eq!(arguments.workload, WorkloadChoice::DeepBook);
        assert_eq!(
            (
                arguments.commands,
                arguments.seed,
                arguments.runs,
                arguments.json
            ),
            (Some(10), 9, 2, true)
        );
        assert!(TestCli::try_parse_from(["bench", "engine", "--workload", "all"]).is_ok());
        assert!(TestCli::try_parse_from(["bench", "engine", "--runs", "0"]).is_err());
        assert!(TestCli::try_parse_from(["bench", "engine", "--commands", "0"]).is_err());
    }

    #[test]
    fn journal_arguments_parse_with_defaults() {
        let cli = TestCli::try_parse_from(["bench", "journal"]).unwrap();
        let BenchCommand::Journal(arguments) = cli.command else {
            panic!("not journal")
        };
        assert_eq!(
            (
                arguments.dir,
                arguments.runs,
                arguments.records,
                arguments.rate,
                arguments.json
            ),
            (None, 5, 1_000_000, 1_000_000, false)
        );
        let cli = TestCli::try_parse_from([
            "bench",
            "journal",
            "--dir",
            "/mnt/disk",
            "--runs",
            "3",
            "--records",
            "5000",
            "--rate",
            "200000",
            "--json",
        ])
        .unwrap();
        let BenchCommand::Journal(arguments) = cli.command else {
            panic!("not journal")
        };
        assert_eq!(
            (
                arguments.dir,
                arguments.runs,
                arguments.records,
                arguments.rate,
                arguments.json
            ),
            (Some("/mnt/disk".into()), 3, 5_000, 200_000, true)
        );
        assert!(TestCli::try_parse_from(["bench", "journal", "--runs", "0"]).is_err());
        assert!(TestCli::try_parse_from(["bench", "journal", "--records", "1"]).is_err());
    }

    #[test]
    fn json_shapes() {
        let workload = generate(WorkloadKind::ExchangeCore, 1, 500);
        let report = measure(&workload, 1).unwrap();
        let machine = Machine::detect();
        let single = json(
            WorkloadChoice::ExchangeCore,
            std::slice::from_ref(&report),
            &[],
            &machine,
            "x",
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&single).unwrap();
        assert!(value.get("peers").is_none(), "no peers ran: {single}");
        for key in [
            "commands",
            "seconds",
            "throughput_per_sec",
            "events",
            "state_hash",
            "machine",
            "seed",
            "runs",
        ] {
            assert!(value.get(key).is_some(), "{key} missing from {single}");
        }
        for key in ["p50", "p99", "p999", "p9999", "max"] {
            assert!(
                value["latency_ns"][key].is_u64(),
                "{key} missing from {single}"
            );
        }
        assert_eq!(value["commands"], 500);
        let ours = crate::peers::engine_fills(
            &workload.setup,
            &workload.commands,
            EngineConfig::default(),
        );
        let peers = [measure_peers(
            &workload,
            1,
            &ours,
            report.throughput_per_sec,
        )];
        let all = json(
            WorkloadChoice::All,
            std::slice::from_ref(&report),
            &peers,
            &machine,
            "x",
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert!(
            value["workloads"]["exchange-core"]["latency_ns"]["p99"].is_u64(),
            "{all}"
        );
        for name in ["matchcore", "lobster"] {
            let peer = &value["workloads"]["exchange-core"]["peers"][name];
            assert!(peer["throughput_per_sec"].is_f64(), "{all}");
            assert!(peer["latency_ns"]["p99"].is_u64(), "{all}");
            assert!(peer["fills_match"].is_boolean(), "{all}");
            assert!(peer["notes"].is_array(), "{all}");
        }
        let text = table(&[report], &peers, &machine, "x");
        assert!(text.contains("peer matchcore 0.4: commands/s"), "{text}");
        assert!(text.contains("ours / peer throughput"), "{text}");
        assert!(text.contains("lobster: no IOC"), "{text}");
    }

    #[test]
    fn peers_are_on_unless_no_peers() {
        let cli = TestCli::try_parse_from(["bench", "engine"]).unwrap();
        let BenchCommand::Engine(arguments) = cli.command else {
            panic!("not engine");
        };
        assert!(!arguments.no_peers);
        let cli = TestCli::try_parse_from(["bench", "engine", "--no-peers"]).unwrap();
        let BenchCommand::Engine(arguments) = cli.command else {
            panic!("not engine");
        };
        assert!(arguments.no_peers);
        let cli = TestCli::try_parse_from(["bench", "engine", "--no-peers", "--peers"]).unwrap();
        let BenchCommand::Engine(arguments) = cli.command else {
            panic!("not engine");
        };
        assert!(!arguments.no_peers, "the last of the two wins");
    }

    #[test]
    fn md_arguments_parse_with_defaults() {
        let cli = TestCli::try_parse_from(["bench", "md"]).unwrap();
        let BenchCommand::Md(arguments) = cli.command else {
            panic!("not md")
        };
        assert_eq!(
            (
                arguments.workload,
                arguments.commands,
                arguments.runs,
                arguments.flush_every,
                arguments.rate,
                arguments.quick,
                arguments.json
            ),
            (
                WorkloadChoice::ExchangeCore,
                None,
                None,
                16,
                100_000,
                false,
                false
            )
        );
        let cli = TestCli::try_parse_from([
            "bench",
            "md",
            "--commands",
            "5000",
            "--runs",
            "3",
            "--flush-every",
            "1",
            "--rate",
            "1000",
            "--seconds",
            "0.5",
            "--quick",
            "--json",
        ])
        .unwrap();
        let BenchCommand::Md(arguments) = cli.command else {
            panic!("not md")
        };
        assert_eq!(
            (
                arguments.commands,
                arguments.runs,
                arguments.flush_every,
                arguments.rate,
                arguments.seconds,
                arguments.quick,
                arguments.json
            ),
            (Some(5_000), Some(3), 1, 1_000, Some(0.5), true, true)
        );
        assert!(TestCli::try_parse_from(["bench", "md", "--flush-every", "0"]).is_err());
        assert!(TestCli::try_parse_from(["bench", "md", "--seconds", "0"]).is_err());
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
