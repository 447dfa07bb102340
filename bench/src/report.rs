//! `exchange-bench report`: every bench of the suite in one run, at sizes
//! that fit a few minutes on a small machine, written to
//! `OUT/BENCHMARKS.md` with the plots in `OUT/benchmarks/*.svg` (issue #6).
//!
//! Every figure is put beside the physical floor that bounds it, measured
//! in the same run ([`crate::floors`]): the engine's time per command
//! against a ring hop, the end-to-end round trip against a TCP echo, the
//! journal against `fdatasync`; and the engine against the peer order books
//! on the same command stream. The targets close the report, each
//! marked met or missed. Nothing in the markdown is written by hand: run
//! the command again to refresh it.

use crate::day_bench::DayBenchReport;
use crate::floors::{FloorsConfig, FloorsReport, measure_floors};
use crate::harness::{WorkloadReport, measure_with_config};
use crate::journal_bench::{JournalBenchConfig, JournalBenchReport, measure_journal};
use crate::machine::Machine;
use crate::md_bench::{MdBenchConfig, MdBenchReport, measure_md};
use crate::open_loop::{
    OpenLoopConfig, OpenLoopReport, StopReason, TARGET_P99_NS_MAX, run_open_loop,
};
use crate::peers::{PeerReport, engine_fills, measure_peers};
use crate::workload::{WorkloadKind, generate};
use clap::Args;
use engine::EngineConfig;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The sections of `BENCHMARKS.md`, in order (the smoke test checks each).
pub const SECTIONS: [&str; 9] = [
    "## Machine and command",
    "## Physical floors",
    "## Engine against peers",
    "## Open-loop latency",
    "## Journal",
    "## Market data",
    "## End to end",
    "## Memory and restart",
    "## Targets",
];

/// A line after which `BENCHMARKS.md` is written by hand (recorded runs of
/// the longer commands, figures of other builds): the report keeps
/// everything from it on when it rewrites the file.
pub const KEPT_MARKER: &str = "<!-- Everything below this line is kept by `exchange-bench report` when it rewrites the file. -->";

/// The plots, under `OUT/benchmarks/`.
pub const PLOTS: [&str; 3] = [
    "latency_percentiles.svg",
    "latency_vs_rate.svg",
    "throughput_vs_peers.svg",
];

/// The engine target: ours over the faster peer, on every workload.
const TARGET_PEER_RATIO_MIN: f64 = 2.0;
/// The end-to-end target: p50 round trip over the TCP echo's.
const TARGET_E2E_P50_RATIO_MAX: f64 = 1.5;

/// Arguments of `exchange-bench report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write BENCHMARKS.md (and the plots, in OUT/benchmarks/).
    #[arg(long, value_name = "OUT", default_value = "docs")]
    pub out: PathBuf,

    /// Tiny sizes, for a smoke test (the figures mean little).
    #[arg(long)]
    pub quick: bool,

    /// Skip the end-to-end section (which starts `exchange serve`).
    #[arg(long)]
    pub no_e2e: bool,
}

/// What to run, and how much of it.
#[derive(Clone, Debug)]
pub struct ReportConfig {
    /// BENCHMARKS.md goes here, the plots in `out/benchmarks/`.
    pub out: PathBuf,
    /// The command line shown in the report.
    pub command: String,
    pub floors: FloorsConfig,
    pub seed: u64,
    /// Measured commands per workload of the engine section.
    pub engine_commands: usize,
    pub engine_runs: u32,
    /// Measured commands per step of the open-loop curve.
    pub open_loop_commands: usize,
    pub open_loop_rates_per_sec: Vec<u64>,
    pub journal: JournalBenchConfig,
    pub md: MdBenchConfig,
    /// The `exchange` binary to start for the end-to-end section; `None`
    /// skips the section.
    pub e2e_executable: Option<PathBuf>,
    pub e2e_orders: u64,
    pub e2e_seconds: f64,
    /// Enter Orders at which the memory section samples `serve` (it runs
    /// when `e2e_executable` is set).
    pub day_checkpoints: Vec<u64>,
}

impl ReportConfig {
    /// The report's sizes (about three minutes on two cores), or tiny ones
    /// with `quick`.
    pub fn new(out: PathBuf, quick: bool) -> ReportConfig {
        let mut md = MdBenchConfig::new(true);
        if quick {
            md.commands = 2_000;
            md.runs = 1;
            md.latency_duration = Duration::from_millis(100);
        } else {
            md.commands = 200_000;
            md.runs = 3;
            md.latency_duration = Duration::from_secs(1);
        }
        ReportConfig {
            out,
            command: std::env::args().collect::<Vec<_>>().join(" "),
            floors: FloorsConfig::new(quick),
            seed: 1,
            engine_commands: if quick { 2_000 } else { 300_000 },
            engine_runs: if quick { 1 } else { 3 },
            open_loop_commands: if quick { 2_000 } else { 200_000 },
            open_loop_rates_per_sec: if quick {
                vec![50_000, 100_000]
            } else {
                vec![100_000, 250_000, 500_000, 1_000_000, 2_000_000, 4_000_000]
            },
            journal: JournalBenchConfig {
                runs: if quick { 1 } else { 3 },
                records: if quick { 2_000 } else { 200_000 },
                rate_per_sec: if quick { 100_000 } else { 1_000_000 },
                fdatasync_samples: if quick { 20 } else { 500 },
                ..JournalBenchConfig::default()
            },
            md,
            e2e_executable: None,
            e2e_orders: if quick { 500 } else { 20_000 },
            e2e_seconds: if quick { 0.2 } else { 1.0 },
            day_checkpoints: if quick {
                vec![2_000, 4_000]
            } else {
                vec![300_000, 1_000_000]
            },
        }
    }
}

/// One workload of the engine section: ours and the peers'.
#[derive(Debug)]
struct EngineResult {
    ours: WorkloadReport,
    peers: BTreeMap<&'static str, PeerReport>,
}

/// The end-to-end section's figures (the spawned exchange against its
/// echo floor, both from the end-to-end bench).
#[derive(Debug)]
struct E2eResult {
    exchange_p50_ns: u64,
    exchange_p99_ns: u64,
    exchange_p999_ns: u64,
    exchange_throughput_per_sec: f64,
    echo_p50_ns: u64,
    echo_p999_ns: u64,
}

/// Everything measured.
#[derive(Debug)]
struct Measured {
    machine: Machine,
    commit: String,
    floors: FloorsReport,
    engine: Vec<EngineResult>,
    open_loop: OpenLoopReport,
    journal: JournalBenchReport,
    md: MdBenchReport,
    e2e: Option<Result<E2eResult, String>>,
    day: Option<Result<DayBenchReport, String>>,
    seconds: f64,
}

/// Run every bench and write the report; returns the markdown's path.
pub fn write_report(
    config: &ReportConfig,
    mut progress: impl FnMut(&str),
) -> Result<PathBuf, String> {
    let measured = measure_all(config, &mut progress)?;
    let plots_dir = config.out.join("benchmarks");
    std::fs::create_dir_all(&plots_dir)
        .map_err(|error| format!("{}: {error}", plots_dir.display()))?;
    progress("plots");
    plot_latency_percentiles(&plots_dir.join(PLOTS[0]), &measured.engine)?;
    plot_latency_vs_rate(&plots_dir.join(PLOTS[1]), &measured.open_loop)?;
    plot_throughput_vs_peers(&plots_dir.join(PLOTS[2]), &measured.engine)?;
    let path = config.out.join("BENCHMARKS.md");
    let kept = kept_tail(&std::fs::read_to_string(&path).unwrap_or_default());
    std::fs::write(&path, markdown(config, &measured) + &kept)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(path)
}

/// The hand-written end of an existing report, from [`KEPT_MARKER`] on
/// (empty if it has none).
fn kept_tail(existing: &str) -> String {
    existing
        .find(KEPT_MARKER)
        .map_or(String::new(), |start| format!("\n{}", &existing[start..]))
}

fn measure_all(config: &ReportConfig, progress: &mut impl FnMut(&str)) -> Result<Measured, String> {
    let started = Instant::now();
    let machine = Machine::detect();
    progress("floors");
    let floors = measure_floors(&config.floors, |step| progress(&format!("floors: {step}")))?;

    let engine_config = EngineConfig::default();
    let mut engine = Vec::new();
    for kind in WorkloadKind::ALL {
        progress(&format!("engine: {kind} and its peers"));
        let workload = generate(kind, config.seed, config.engine_commands);
        let ours = measure_with_config(&workload, config.engine_runs, engine_config)
            .map_err(|error| format!("engine on {kind}: {error}"))?;
        let fills = engine_fills(&workload.setup, &workload.commands, engine_config);
        let peers = measure_peers(
            &workload,
            config.engine_runs,
            &fills,
            ours.throughput_per_sec,
        );
        engine.push(EngineResult { ours, peers });
    }

    progress("open-loop latency");
    let workload = generate(
        WorkloadKind::ExchangeCore,
        config.seed,
        config.open_loop_commands,
    );
    let open_loop = run_open_loop(
        &workload,
        OpenLoopConfig {
            rates_per_sec: config.open_loop_rates_per_sec.clone(),
            ..OpenLoopConfig::default()
        },
    )
    .map_err(|error| format!("open-loop latency: {error}"))?;

    progress("journal");
    let journal =
        measure_journal(&config.journal, |_| {}).map_err(|error| format!("journal: {error}"))?;

    progress("market data");
    let md = measure_md(&config.md, |_| {}).map_err(|error| format!("market data: {error}"))?;

    let e2e = config.e2e_executable.as_ref().map(|executable| {
        progress("end to end (exchange serve)");
        measure_e2e_section(config, executable)
    });
    let day = config.e2e_executable.as_ref().map(|executable| {
        progress("memory and restart (exchange serve)");
        measure_day_section(config, executable)
    });
    Ok(Measured {
        machine,
        commit: commit(),
        floors,
        engine,
        open_loop,
        journal,
        md,
        e2e,
        day,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn measure_e2e_section(config: &ReportConfig, executable: &Path) -> Result<E2eResult, String> {
    use crate::e2e_bench::{E2eBenchConfig, ServerChoice, ServerDurability, measure_e2e};
    let e2e_config = E2eBenchConfig {
        connections: 1,
        window: 256,
        orders: config.e2e_orders,
        throughput_duration: Duration::from_secs_f64(config.e2e_seconds),
        warm_up_duration: Duration::from_secs_f64(config.e2e_seconds / 4.0),
        server: ServerChoice::Spawn {
            executable: executable.to_path_buf(),
            durability: ServerDurability::Memory,
        },
    };
    let report = measure_e2e(&e2e_config, |_| {}).map_err(|error| error.to_string())?;
    let exchange = report
        .exchange
        .as_ref()
        .ok_or("the end-to-end bench measured no exchange")?;
    Ok(E2eResult {
        exchange_p50_ns: exchange.round_trip_ns.p50,
        exchange_p99_ns: exchange.round_trip_ns.p99,
        exchange_p999_ns: exchange.round_trip_ns.p999,
        exchange_throughput_per_sec: exchange.throughput_orders_per_sec,
        echo_p50_ns: report.echo_mio.round_trip_ns.p50,
        echo_p999_ns: report.echo_mio.round_trip_ns.p999,
    })
}

fn measure_day_section(config: &ReportConfig, executable: &Path) -> Result<DayBenchReport, String> {
    use crate::day_bench::{DayBenchConfig, measure_day};
    use crate::e2e_bench::{ServerDurability, StopMode};
    let day_config = DayBenchConfig {
        checkpoints: config.day_checkpoints.clone(),
        connections: 4,
        window: 256,
        resting_max: 2_000,
        executable: executable.to_path_buf(),
        durability: ServerDurability::Memory,
        restart: Some(StopMode::Clean),
    };
    measure_day(&day_config, |_| {}).map_err(|error| error.to_string())
}

/// `git rev-parse --short HEAD`, `-dirty` when the tree has changes;
/// "unknown" outside a repository.
fn commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.is_empty());
            if dirty { format!("{hash}-dirty") } else { hash }
        }
        _ => "unknown".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------

fn ns(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} ms", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.2} µs", value / 1e3)
    } else {
        format!("{value:.1} ns")
    }
}

fn rate(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M/s", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k/s", value / 1e3)
    } else {
        format!("{value:.0}/s")
    }
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}×", numerator / denominator)
    } else {
        "n/a".to_owned()
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "**met**",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

/// A markdown table from a header and rows.
fn table(text: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(text, "| {} |", header.join(" | "));
    let _ = writeln!(
        text,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for row in rows {
        let _ = writeln!(text, "| {} |", row.join(" | "));
    }
    text.push('\n');
}

fn markdown(config: &ReportConfig, measured: &Measured) -> String {
    let mut text = String::new();
    let floors = &measured.floors;
    let machine = &measured.machine;
    let _ = writeln!(
        text,
        "# Benchmarks\n\n\
         Generated by `exchange-bench report`; do not edit by hand (except after the marker \
         line at the end, which the report keeps), run the command again. \
         Every figure was measured in the same run as the physical floors it is compared \
         with, on the machine below. The whole run took {:.0} s.\n",
        measured.seconds
    );

    let _ = writeln!(text, "{}\n", SECTIONS[0]);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(
        |_| "unknown".to_owned(),
        |release| release.trim().to_owned(),
    );
    table(
        &mut text,
        &["", ""],
        &[
            vec!["CPU model".into(), machine.cpu_model.clone()],
            vec!["cores available".into(), machine.cores.to_string()],
            vec![
                "kernel".into(),
                format!("{} {} {kernel}", machine.os, machine.arch),
            ],
            vec![
                "clock source".into(),
                machine.clock_source.clone().unwrap_or("unknown".into()),
            ],
            vec![
                "debug assertions".into(),
                if machine.debug_assertions {
                    "ON: figures not comparable".into()
                } else {
                    "off (release build)".into()
                },
            ],
            vec!["commit".into(), format!("`{}`", measured.commit)],
            vec!["command".into(), format!("`{}`", config.command)],
        ],
    );

    let _ = writeln!(
        text,
        "{}\n\nWhat this machine can do at all; the ratios below divide by these.\n",
        SECTIONS[1]
    );
    table(
        &mut text,
        &["floor", "figure", "detail"],
        &[
            vec![
                "ring hop, one way (p50)".into(),
                ns(floors.ring.one_way_p50_ns as f64),
                format!(
                    "the engine's SPSC ring between two pinned threads, {}-byte messages; p99 {}",
                    floors.ring.message_bytes,
                    ns(floors.ring.one_way_p99_ns as f64)
                ),
            ],
            vec![
                "ring throughput".into(),
                rate(floors.ring.throughput_messages_per_sec),
                format!(
                    "{} per message, consumer draining in batches",
                    ns(floors.ring.ns_per_message)
                ),
            ],
            vec![
                "TCP echo over loopback, round trip (p50)".into(),
                ns(floors.tcp_echo.round_trip_p50_ns as f64),
                format!(
                    "{}-byte request, {}-byte reply (our OUCH frames), one mio thread; p99 {}, \
                     p99.9 {}; pipelined {}",
                    floors.tcp_echo.request_bytes,
                    floors.tcp_echo.response_bytes,
                    ns(floors.tcp_echo.round_trip_p99_ns as f64),
                    ns(floors.tcp_echo.round_trip_p999_ns as f64),
                    rate(floors.tcp_echo.throughput_per_sec)
                ),
            ],
            vec![
                "memcpy bandwidth".into(),
                format!("{:.2} GB/s", floors.memcpy.gigabytes_per_sec),
                format!(
                    "fastest of {} copies of {} MiB",
                    floors.memcpy.repeats,
                    floors.memcpy.buffer_bytes >> 20
                ),
            ],
            vec![
                "64-byte copy".into(),
                ns(floors.memcpy.ns_per_small_copy),
                format!("mean of {} copies, in cache", floors.memcpy.small_copies),
            ],
            vec![
                "fdatasync (p50)".into(),
                ns(floors.fdatasync.p50_ns as f64),
                format!(
                    "64-byte overwrite + fdatasync in {}; p99 {}, {} samples",
                    floors.fdatasync.dir,
                    ns(floors.fdatasync.p99_ns as f64),
                    floors.fdatasync.samples
                ),
            ],
        ],
    );

    engine_section(&mut text, config, measured);
    open_loop_section(&mut text, measured);
    journal_section(&mut text, measured);
    md_section(&mut text, measured);
    e2e_section(&mut text, measured);
    day_section(&mut text, measured);
    targets_section(&mut text, measured);

    let _ = writeln!(text, "## Plots\n");
    for (plot, title) in PLOTS.iter().zip([
        "Engine latency percentiles per workload",
        "Open-loop latency against offered rate",
        "Throughput per workload against peers",
    ]) {
        let _ = writeln!(text, "![{title}](benchmarks/{plot})\n");
    }
    text
}

fn engine_section(text: &mut String, config: &ReportConfig, measured: &Measured) {
    let ring_ns = measured.floors.ring.one_way_p50_ns as f64;
    let _ = writeln!(
        text,
        "{}\n\nThe state machine alone on one thread, {} measured commands per workload \
         (setup untimed), the median of {} runs; the peers get the exact same stream in the \
         same run. ns/command is the throughput pass's; latency percentiles come from a \
         separate pass timing each command (timer included).\n",
        SECTIONS[2], config.engine_commands, config.engine_runs
    );
    let mut header = vec!["figure"];
    header.extend(measured.engine.iter().map(|result| result.ours.workload));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |label: &str, cell: &dyn Fn(&EngineResult) -> String| {
        let mut cells = vec![label.to_owned()];
        cells.extend(measured.engine.iter().map(cell));
        rows.push(cells);
    };
    let ns_per_command = |r: &EngineResult| 1e9 / r.ours.throughput_per_sec.max(1e-9);
    row("ours: commands/s", &|r| rate(r.ours.throughput_per_sec));
    row("ours: ns/command", &|r| ns(ns_per_command(r)));
    row("ns/command ÷ ring hop (one way p50)", &|r| {
        ratio(ns_per_command(r), ring_ns)
    });
    row("ours: latency p50", &|r| ns(r.ours.latency_ns.p50 as f64));
    row("ours: p99", &|r| ns(r.ours.latency_ns.p99 as f64));
    row("ours: p99.9", &|r| ns(r.ours.latency_ns.p999 as f64));
    row("ours: p99.99", &|r| ns(r.ours.latency_ns.p9999 as f64));
    row("ours: max", &|r| ns(r.ours.latency_ns.max as f64));
    row("final state hash", &|r| format!("`{}`", r.ours.state_hash));
    let names: Vec<&'static str> = measured
        .engine
        .iter()
        .flat_map(|r| r.peers.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for name in &names {
        let peer = |r: &EngineResult, cell: &dyn Fn(&PeerReport) -> String| {
            r.peers.get(name).map_or("-".to_owned(), cell)
        };
        row(&format!("{name}: commands/s"), &|r| {
            peer(r, &|p| rate(p.throughput_per_sec))
        });
        row(&format!("ours ÷ {name} throughput"), &|r| {
            peer(r, &|p| format!("{:.2}×", p.throughput_ratio_ours_to_peer))
        });
        row(&format!("{name}: latency p50 / p99"), &|r| {
            peer(r, &|p| {
                format!(
                    "{} / {}",
                    ns(p.latency_ns.p50 as f64),
                    ns(p.latency_ns.p99 as f64)
                )
            })
        });
        row(&format!("{name}: fills match ours"), &|r| {
            peer(r, &|p| {
                if p.fills_match {
                    format!("yes ({})", p.fills)
                } else {
                    format!("no ({} vs our {})", p.fills, p.fills_ours)
                }
            })
        });
        row(&format!("{name}: fills beyond the limit"), &|r| {
            peer(r, &|p| p.fills_through_limit.to_string())
        });
        row(&format!("{name}: skipped / refused commands"), &|r| {
            peer(r, &|p| {
                format!(
                    "{} / {}",
                    p.ignored_commands + p.unsupported_commands,
                    p.rejected_commands
                )
            })
        });
    }
    table(text, &header, &rows);
    // Each peer's notes once; findings per workload.
    let mut noted = std::collections::BTreeSet::new();
    let mut notes = String::new();
    for result in &measured.engine {
        for (name, peer) in &result.peers {
            for note in &peer.notes {
                if note.starts_with("found:") {
                    let _ = writeln!(notes, "- {name} on {}: {note}", result.ours.workload);
                } else if noted.insert((*name, note.clone())) {
                    let _ = writeln!(notes, "- {name}: {note}");
                }
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(
            text,
            "Where the peers' semantics differ from ours (compare only what is comparable):\n\n\
             {notes}"
        );
    }
}

fn open_loop_section(text: &mut String, measured: &Measured) {
    let report = &measured.open_loop;
    let ring_ns = measured.floors.ring.one_way_p50_ns as f64;
    let _ = writeln!(
        text,
        "{}\n\nA pinned producer issues the {} workload's {} commands at a constant rate into \
         the engine's ring; latency runs from each command's intended send time to its \
         completion (free of coordinated omission). The curve stops when the median exceeds \
         {} or the producer falls behind (stopped: {:?}).\n",
        SECTIONS[3],
        report.workload,
        report.commands_per_step,
        ns(report.median_bound_ns as f64),
        report.stop_reason
    );
    let rows: Vec<Vec<String>> = report
        .steps
        .iter()
        .map(|step| {
            vec![
                rate(step.offered_per_sec as f64),
                rate(step.achieved_per_sec),
                ns(step.latency_ns.p50 as f64),
                ns(step.latency_ns.p90 as f64),
                ns(step.latency_ns.p99 as f64),
                ns(step.latency_ns.p999 as f64),
                ns(step.latency_ns.max as f64),
                ratio(step.latency_ns.p50 as f64, ring_ns),
            ]
        })
        .collect();
    table(
        text,
        &[
            "offered",
            "achieved",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "p50 ÷ ring hop",
        ],
        &rows,
    );
}

fn journal_section(text: &mut String, measured: &Measured) {
    let report = &measured.journal;
    let fdatasync_ns = measured.floors.fdatasync.p50_ns as f64;
    let _ = writeln!(
        text,
        "{}\n\nAppends against a plain copy of the same bytes, replay, and group commit under \
         the fsync policy against the fdatasync floor ({} records per run, median of {} \
         runs).\n",
        SECTIONS[4], report.records, report.runs
    );
    let rows: Vec<Vec<String>> = report
        .body_sizes
        .iter()
        .map(|body| {
            vec![
                format!("{} B", body.body_bytes),
                ns(body.append_ns),
                ns(body.copy_ns),
                format!("{:.2}×", body.append_to_copy_ratio),
                rate(body.replay_records_per_sec),
            ]
        })
        .collect();
    table(
        text,
        &[
            "body",
            "append",
            "plain copy",
            "append ÷ copy",
            "replay records",
        ],
        &rows,
    );
    let group = &report.group_commit;
    table(
        text,
        &["group commit (fsync)", "figure", "÷ fdatasync p50"],
        &[
            vec![
                format!(
                    "durable records at {} offered",
                    rate(group.offered_per_sec as f64)
                ),
                rate(group.records_per_sec),
                "".into(),
            ],
            vec![
                "added latency p50".into(),
                ns(group.added_latency_ns.p50 as f64),
                ratio(group.added_latency_ns.p50 as f64, fdatasync_ns),
            ],
            vec![
                "added latency p99".into(),
                ns(group.added_latency_ns.p99 as f64),
                ratio(group.added_latency_ns.p99 as f64, fdatasync_ns),
            ],
            vec![
                "saturated durable records".into(),
                rate(group.saturated_records_per_sec),
                format!(
                    "{:.0} records per fdatasync",
                    group.saturated_records_per_sec * fdatasync_ns / 1e9
                ),
            ],
        ],
    );
}

fn md_section(text: &mut String, measured: &Measured) {
    let report = &measured.md;
    let small_copy_ns = measured.floors.memcpy.ns_per_small_copy;
    let _ = writeln!(
        text,
        "{}\n\nThe publisher (engine events to ITCH 5.0 in MoldUDP64), book building by a \
         subscriber, and engine-to-subscriber latency over UDP ({}; {} commands of {}, median \
         of {} runs).\n",
        SECTIONS[5], report.transport, report.commands, report.workload, report.runs
    );
    let figure = |name: &str, figures: &crate::RateFigures| {
        vec![
            name.to_owned(),
            rate(figures.messages_per_sec),
            ns(figures.ns_per_message),
            ratio(figures.ns_per_message, small_copy_ns),
        ]
    };
    table(
        text,
        &["stage", "messages/s", "ns/message", "÷ one 64-byte copy"],
        &[
            figure("publish (packets counted)", &report.publish),
            figure("publish over UDP", &report.publish_udp),
            figure("book building", &report.book_building),
            figure("decode only", &report.decode_only),
        ],
    );
    let latency = &report.latency;
    let _ = writeln!(
        text,
        "Latency at {}: p50 {}, p99 {}, p99.9 {}, max {}; {} lost messages; books match the \
         feed: {}.\n",
        rate(latency.rate_per_sec as f64),
        ns(latency.latency_ns.p50 as f64),
        ns(latency.latency_ns.p99 as f64),
        ns(latency.latency_ns.p999 as f64),
        ns(latency.latency_ns.max as f64),
        latency.lost_messages,
        if latency.books_match_feed {
            "yes"
        } else {
            "no"
        }
    );
}

fn e2e_section(text: &mut String, measured: &Measured) {
    let _ = writeln!(text, "{}\n", SECTIONS[6]);
    match &measured.e2e {
        None => {
            let _ = writeln!(
                text,
                "Not measured in this run (`--no-e2e`, or no `exchange` binary to start).\n"
            );
        }
        Some(Err(error)) => {
            let _ = writeln!(text, "Failed: {error}\n");
        }
        Some(Ok(e2e)) => {
            let _ = writeln!(
                text,
                "OUCH Enter Order to Order Accepted through a spawned `exchange serve` (memory \
                 durability), one connection, against the TCP echo of the same frame sizes \
                 measured in the same bench.\n"
            );
            let floor_ns = measured.floors.tcp_echo.round_trip_p50_ns as f64;
            table(
                text,
                &["figure", "exchange", "echo (same bench)", "ratio"],
                &[
                    vec![
                        "round trip p50".into(),
                        ns(e2e.exchange_p50_ns as f64),
                        ns(e2e.echo_p50_ns as f64),
                        ratio(e2e.exchange_p50_ns as f64, e2e.echo_p50_ns as f64),
                    ],
                    vec![
                        "round trip p99".into(),
                        ns(e2e.exchange_p99_ns as f64),
                        "".into(),
                        "".into(),
                    ],
                    vec![
                        "round trip p99.9".into(),
                        ns(e2e.exchange_p999_ns as f64),
                        ns(e2e.echo_p999_ns as f64),
                        ratio(e2e.exchange_p999_ns as f64, e2e.echo_p999_ns as f64),
                    ],
                    vec![
                        "round trip p50 ÷ floors' TCP echo p50".into(),
                        ns(e2e.exchange_p50_ns as f64),
                        ns(floor_ns),
                        ratio(e2e.exchange_p50_ns as f64, floor_ns),
                    ],
                    vec![
                        "pipelined orders/s".into(),
                        rate(e2e.exchange_throughput_per_sec),
                        rate(measured.floors.tcp_echo.throughput_per_sec),
                        ratio(
                            e2e.exchange_throughput_per_sec,
                            measured.floors.tcp_echo.throughput_per_sec,
                        ),
                    ],
                ],
            );
        }
    }
}

fn day_section(text: &mut String, measured: &Measured) {
    let _ = writeln!(text, "{}\n", SECTIONS[7]);
    let day = match &measured.day {
        None => {
            let _ = writeln!(
                text,
                "Not measured in this run (`--no-e2e`, or no `exchange` binary to start).\n"
            );
            return;
        }
        Some(Err(error)) => {
            let _ = writeln!(text, "Failed: {error}\n");
            return;
        }
        Some(Ok(day)) => day,
    };
    let _ = writeln!(
        text,
        "`exchange-bench day` at the report's size: a spawned `exchange serve` (memory \
         durability) driven by {} connections ({}), its memory read from /proc/PID/status \
         once every reply is in. RSS file is the mapped journal and logs; RSS anon the heap. \
         Longer days: `exchange-bench day --orders 1000000,3000000,10000000` (see the recorded \
         runs below).\n",
        day.connections, day.order_mix
    );
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let mut rows = vec![vec![
        "0 (after start)".to_owned(),
        String::new(),
        mib(day.memory_at_start.vm_rss_kib),
        mib(day.memory_at_start.rss_anon_kib),
        mib(day.memory_at_start.rss_file_kib),
    ]];
    for checkpoint in &day.checkpoints {
        rows.push(vec![
            crate::cli::grouped(checkpoint.orders),
            rate(checkpoint.orders_per_sec),
            mib(checkpoint.memory.vm_rss_kib),
            mib(checkpoint.memory.rss_anon_kib),
            mib(checkpoint.memory.rss_file_kib),
        ]);
    }
    table(
        text,
        &[
            "orders in the day",
            "orders/s",
            "RSS",
            "RSS anon",
            "RSS file",
        ],
        &rows,
    );
    if let Some(restart) = &day.restart {
        let _ = writeln!(
            text,
            "Restart ({}) on a journal of {} commands: order entry listening {:.3} s after \
             the spawn, a login accepted {:.3} s after it; RSS then {}.\n",
            restart.mode,
            restart
                .journal_commands
                .map_or("?".to_owned(), crate::cli::grouped),
            restart.order_entry_listening_seconds,
            restart.serving_seconds,
            mib(restart.memory.vm_rss_kib)
        );
    }
}

fn targets_section(text: &mut String, measured: &Measured) {
    let _ = writeln!(text, "{}\n", SECTIONS[8]);
    let mut rows = Vec::new();
    for result in &measured.engine {
        // Only a peer whose fills equal ours did the same work: the verdict
        // is against the faster of those; a faster peer whose fills differ
        // is shown beside it, not counted.
        let fastest = |comparable: bool| {
            result
                .peers
                .values()
                .filter(|peer| !comparable || peer.fills_match)
                .max_by(|a, b| a.throughput_per_sec.total_cmp(&b.throughput_per_sec))
        };
        let ratio =
            |peer: &PeerReport| result.ours.throughput_per_sec / peer.throughput_per_sec.max(1e-9);
        let (mut figure, met) = match fastest(true) {
            Some(peer) => (
                format!(
                    "{:.2}× {} ({}), whose fills equal ours",
                    ratio(peer),
                    peer.peer,
                    rate(peer.throughput_per_sec)
                ),
                Some(ratio(peer) >= TARGET_PEER_RATIO_MIN),
            ),
            None if result.peers.is_empty() => ("no peer ran".to_owned(), None),
            None => ("no peer's fills equal ours".to_owned(), None),
        };
        if let Some(peer) = fastest(true).filter(|peer| peer.ignored_commands > 0) {
            figure.push_str(&format!(
                " (it skipped {} funding and admin commands ours applied)",
                peer.ignored_commands
            ));
        }
        if let Some(peer) = fastest(false).filter(|peer| !peer.fills_match) {
            figure.push_str(&format!(
                "; {:.2}× {} ({}), not comparable: its fills differ from ours",
                ratio(peer),
                peer.peer,
                rate(peer.throughput_per_sec)
            ));
        }
        rows.push(vec![
            format!(
                "engine ≥ {TARGET_PEER_RATIO_MIN}× the faster comparable peer: {}",
                result.ours.workload
            ),
            figure,
            verdict(met).to_owned(),
        ]);
    }
    let target = &measured.open_loop.target;
    rows.push(vec![
        format!(
            "open loop: p99 < {} at {} offered",
            ns(TARGET_P99_NS_MAX as f64),
            rate(target.offered_per_sec as f64)
        ),
        target
            .measured_p99_ns
            .map_or("rate not reached".to_owned(), |p99| ns(p99 as f64)),
        // Missed only when the engine itself could not hold a rate below
        // the target's (its median passed the bound); a producer that fell
        // behind, or rates that never reached it, measured nothing.
        verdict(target.met.or({
            let last = measured
                .open_loop
                .steps
                .last()
                .map_or(0, |step| step.offered_per_sec);
            (measured.open_loop.stop_reason == StopReason::MedianAboveBound
                && last <= target.offered_per_sec)
                .then_some(false)
        }))
        .to_owned(),
    ]);
    let (figure, met) = match &measured.e2e {
        Some(Ok(e2e)) => {
            let floor_ns = measured.floors.tcp_echo.round_trip_p50_ns as f64;
            let over = e2e.exchange_p50_ns as f64 / floor_ns.max(1e-9);
            (
                format!(
                    "{over:.2}× ({} vs {})",
                    ns(e2e.exchange_p50_ns as f64),
                    ns(floor_ns)
                ),
                Some(over <= TARGET_E2E_P50_RATIO_MAX),
            )
        }
        _ => ("not measured".to_owned(), None),
    };
    rows.push(vec![
        format!("end to end: p50 ≤ {TARGET_E2E_P50_RATIO_MAX}× the TCP echo floor"),
        figure,
        verdict(met).to_owned(),
    ]);
    for md in &measured.md.targets {
        rows.push(vec![
            format!(
                "market data: {} ≥ {}",
                md.name,
                rate(md.target_messages_per_sec)
            ),
            rate(md.measured_messages_per_sec),
            verdict(Some(md.met)).to_owned(),
        ]);
    }
    table(text, &["target", "measured", "verdict"], &rows);
}

// ---------------------------------------------------------------------------
// Plots
// ---------------------------------------------------------------------------

fn plot_error(error: impl std::fmt::Display) -> String {
    format!("plotting: {error}")
}

const PERCENTILE_LABELS: [&str; 5] = ["p50", "p99", "p99.9", "p99.99", "max"];

fn plot_latency_percentiles(path: &Path, engine: &[EngineResult]) -> Result<(), String> {
    let series: Vec<(&str, [f64; 5])> = engine
        .iter()
        .map(|result| {
            let l = &result.ours.latency_ns;
            (
                result.ours.workload,
                [l.p50, l.p99, l.p999, l.p9999, l.max].map(|value| value.max(1) as f64),
            )
        })
        .collect();
    let y_max = series
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(10.0, f64::max)
        * 2.0;
    let y_min = series
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .fold(f64::INFINITY, f64::min)
        .min(y_max / 20.0)
        / 2.0;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Engine latency per command, by percentile (log scale)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.2f64..4.2f64, (y_min..y_max).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| percentile_label(*x))
        .y_desc("nanoseconds")
        .x_desc("percentile")
        .draw()
        .map_err(plot_error)?;
    for (index, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .map(|(x, y)| (x as f64, *y))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|point| Circle::new(*point, 4, color.filled())),
            )
            .map_err(plot_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

fn percentile_label(x: f64) -> String {
    let index = x.round();
    if (x - index).abs() < 0.05 && (0.0..5.0).contains(&index) {
        // In range by the check above.
        PERCENTILE_LABELS[index as usize].to_owned()
    } else {
        String::new()
    }
}

fn plot_latency_vs_rate(path: &Path, report: &OpenLoopReport) -> Result<(), String> {
    let p50: Vec<(f64, f64)> = report
        .steps
        .iter()
        .map(|step| {
            (
                step.offered_per_sec as f64,
                step.latency_ns.p50.max(1) as f64,
            )
        })
        .collect();
    let p99: Vec<(f64, f64)> = report
        .steps
        .iter()
        .map(|step| {
            (
                step.offered_per_sec as f64,
                step.latency_ns.p99.max(1) as f64,
            )
        })
        .collect();
    let x_min = p50.iter().map(|(x, _)| *x).fold(f64::INFINITY, f64::min);
    let x_max = p50.iter().map(|(x, _)| *x).fold(1.0, f64::max);
    let (x_min, x_max) = if x_min.is_finite() && x_min < x_max {
        (x_min / 1.5, x_max * 1.5)
    } else {
        (x_max / 2.0, x_max * 2.0)
    };
    let y_max = p99
        .iter()
        .map(|(_, y)| *y)
        .fold(TARGET_P99_NS_MAX as f64, f64::max)
        * 2.0;
    let y_min = p50.iter().map(|(_, y)| *y).fold(y_max / 20.0, f64::min) / 2.0;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Open-loop latency vs offered rate ({}, log-log)",
                report.workload
            ),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("offered commands per second")
        .y_desc("latency from intended send, ns")
        .x_label_formatter(&|x| rate(*x))
        .draw()
        .map_err(plot_error)?;
    for (index, (name, points)) in [("p50", p50), ("p99", p99)].into_iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(plot_error)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|point| Circle::new(*point, 4, color.filled())),
            )
            .map_err(plot_error)?;
    }
    // The target: p99 under 1 µs at 1 M/s.
    chart
        .draw_series(LineSeries::new(
            [
                (x_min, TARGET_P99_NS_MAX as f64),
                (x_max, TARGET_P99_NS_MAX as f64),
            ],
            RED.mix(0.5),
        ))
        .map_err(plot_error)?
        .label("target p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.mix(0.5)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

fn plot_throughput_vs_peers(path: &Path, engine: &[EngineResult]) -> Result<(), String> {
    const SERIES: [&str; 3] = ["ours", "matchcore", "lobster"];
    let throughput = |result: &EngineResult, series: &str| -> f64 {
        if series == "ours" {
            result.ours.throughput_per_sec
        } else {
            result
                .peers
                .get(series)
                .map_or(0.0, |peer| peer.throughput_per_sec)
        }
    };
    let y_max = engine
        .iter()
        .flat_map(|result| SERIES.map(|series| throughput(result, series)))
        .fold(1.0, f64::max)
        * 1.15;
    let names: Vec<&'static str> = engine.iter().map(|result| result.ours.workload).collect();
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput per workload: ours against the peers (same stream, same run)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(names.len() as f64 - 0.5), 0f64..y_max)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(names.len().max(1))
        .x_label_formatter(&|x| {
            let index = x.round();
            if (x - index).abs() < 0.05 && index >= 0.0 {
                // Non-negative and rounded: a whole index.
                names
                    .get(index as usize)
                    .map_or(String::new(), |name| (*name).to_owned())
            } else {
                String::new()
            }
        })
        .y_desc("commands per second")
        .y_label_formatter(&|y| rate(*y))
        .draw()
        .map_err(plot_error)?;
    let bar = 0.26;
    for (series_index, series) in SERIES.iter().enumerate() {
        let color = Palette99::pick(series_index).to_rgba();
        let offset = (series_index as f64 - 1.0) * bar;
        chart
            .draw_series(engine.iter().enumerate().map(|(index, result)| {
                let center = index as f64 + offset;
                Rectangle::new(
                    [
                        (center - bar / 2.0 + 0.01, 0.0),
                        (center + bar / 2.0 - 0.01, throughput(result, series)),
                    ],
                    color.filled(),
                )
            }))
            .map_err(plot_error)?
            .label(*series)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_report_has_every_section_and_plot() {
        let out = std::env::temp_dir().join(format!("bench-report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let mut config = ReportConfig::new(out.clone(), true);
        config.command = "exchange-bench report --quick".to_owned();
        let path = write_report(&config, |_| {}).unwrap();
        let markdown = std::fs::read_to_string(&path).unwrap();
        for section in SECTIONS {
            assert!(markdown.contains(section), "{section} missing:\n{markdown}");
        }
        for needle in [
            "ring hop",
            "TCP echo",
            "memcpy",
            "fdatasync",
            "matchcore",
            "lobster",
            "ours ÷ matchcore throughput",
            "exchange-bench report --quick",
        ] {
            assert!(markdown.contains(needle), "{needle} missing:\n{markdown}");
        }
        for plot in PLOTS {
            assert!(markdown.contains(&format!("(benchmarks/{plot})")), "{plot}");
            let svg = std::fs::read_to_string(out.join("benchmarks").join(plot)).unwrap();
            assert!(
                svg.starts_with("<svg"),
                "{plot}: {}",
                &svg[..svg.len().min(80)]
            );
        }
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn the_hand_written_tail_is_kept() {
        let existing = format!("# Benchmarks\nold figures\n{KEPT_MARKER}\n## Recorded\nkept\n");
        let tail = kept_tail(&existing);
        assert!(tail.contains("## Recorded\nkept") && tail.contains(KEPT_MARKER));
        assert!(!tail.contains("old figures"));
        assert_eq!(kept_tail("# Benchmarks\nno marker\n"), "");
    }

    #[test]
    fn labels_land_on_whole_indexes() {
        assert_eq!(percentile_label(0.0), "p50");
        assert_eq!(percentile_label(4.0), "max");
        assert_eq!(percentile_label(1.5), "");
        assert_eq!(percentile_label(7.0), "");
    }
}
