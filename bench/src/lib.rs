//! The benchmarks of the exchange core: seeded, realistic workloads, the
//! harness that measures the engine on them (behind `exchange-bench`), and
//! criterion benches of single operations (`benches/engine.rs`).
//!
//! Workloads are generated in full before anything is timed, from a seed
//! and this crate's own random numbers, so the same arguments give the same
//! commands and the same final state hash everywhere. See [`generate`] and
//! [`WorkloadKind`] for what each stream contains and [`measure`] for how it
//! is timed.

#![forbid(unsafe_code)]

pub mod cli;
mod day_bench;
mod e2e_bench;
mod floors;
mod harness;
mod journal_bench;
mod machine;
mod market;
mod md_bench;
pub mod open_loop;
pub mod peers;
mod random;
mod report;
mod ring_bench;
mod workload;

pub use floors::{
    EchoFloor, FdatasyncFloor, FloorsConfig, FloorsReport, MemcpyFloor, RingFloor, measure_floors,
};
pub use harness::{
    HarnessError, JournalTarget, LatencyPercentiles, RunReport, WorkloadReport, measure,
    measure_journaled, measure_with_config,
};
pub use journal_bench::{
    BODY_BYTES, BodySizeReport, FLUSH_DELAY_US_MAX, FdatasyncReport, GROUP_COMMIT_BODY_BYTES,
    GroupCommitReport, JournalBenchConfig, JournalBenchError, JournalBenchReport, measure_journal,
};
pub use machine::Machine;
pub use market::{
    BASE_ASSET, BASE_DEPOSIT, EngineDriver, INSTRUMENT, QUOTE_ASSET, QUOTE_DEPOSIT, QUOTE_SCALE,
    equity, header, limit_order, setup_commands, trading_accounts,
};
pub use md_bench::{
    BOOK_TARGET_MESSAGES_PER_SEC, FLUSH_EVERY_COMMANDS, LatencyReport, MULTICAST_GROUP,
    MdBenchConfig, MdBenchError, MdBenchReport, MdPercentiles, PUBLISH_TARGET_MESSAGES_PER_SEC,
    RateFigures, TargetReport, Transport, measure_md,
};
pub use random::{Random, SplitMix64};
pub use report::{KEPT_MARKER, PLOTS, ReportArgs, ReportConfig, SECTIONS, write_report};
pub use ring_bench::{
    BATCH_MAX, HopPercentiles, QueueReport, RING_CAPACITY, RingBenchConfig, RingBenchReport,
    RingMessage, measure_ring,
};
pub use workload::{BookShape, CommandKind, CommandMix, Workload, WorkloadKind, generate};
