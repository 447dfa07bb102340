//! Seeded, realistic command streams for measuring the engine.
//!
//! A [`Workload`] is generated whole before anything is measured: the setup
//! (assets, the instrument, funded accounts, and the resting book the stream
//! starts from) and the measured commands, with what generating them saw
//! (the mix actually drawn, fills, the book's shape) and the state hash the
//! engine must reach. The same kind, seed and length always give the same
//! commands and the same hash, on any machine and with any version of the
//! crates (the random numbers come from [`crate::Random`], written here).
//!
//! The workloads:
//!
//! - [`WorkloadKind::ExchangeCore`]: the mix exchange-core publishes for its
//!   throughput tests — 9% GTC limit orders, 3% IOC, 6% cancels, 82% moves
//!   (a replace to a new price, losing priority) — on a book of about 1 000
//!   resting orders from 2 000 accounts, on ACME at 100.00.
//! - [`WorkloadKind::DeepBook`]: a deep book, cancel-heavy like real order
//!   flow — about 100 000 resting orders over some 5 000 levels of a
//!   1 000.00 stock, with 35% new GTC orders, 15% IOC, 25% cancels, 5%
//!   partial cancels, 15% moves and 5% size reductions that keep priority.
//!
//! - [`WorkloadKind::Sweep`]: large orders that clear many price levels —
//!   a thin book of about 4 000 resting orders over some 1 800 levels,
//!   refilled by passive orders, and 1% of commands a marketable order sized
//!   to clear 10 to 50 levels of the opposite side at once ([`SweepStats`]
//!   says how many it really cleared).
//! - [`WorkloadKind::Funding`]: funding interleaved with trading — the
//!   exchange-core mix for 80% of commands and 20% deposits, withdrawals and
//!   transfers with exactly-once transfer ids, one in ten of them a repeat
//!   of a recent one ([`FundingStats`] says what the engine made of them).
//!
//! In all, a mid price random-walks; passive orders go behind it (never
//! crossing), and with a small, self-adjusting chance an order or a move is
//! placed through the opposite best, so the book keeps its size and some
//! commands trade.

mod deep_book;
mod exchange_core;
mod funding;
mod generator;
mod live;
mod sweep;

use engine::Command;
use serde::Serialize;
use std::fmt;

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    ExchangeCore,
    DeepBook,
    Sweep,
    Funding,
}

impl WorkloadKind {
    /// Every workload, in the order `--workload all` runs them.
    pub const ALL: [WorkloadKind; 4] = [
        WorkloadKind::ExchangeCore,
        WorkloadKind::DeepBook,
        WorkloadKind::Sweep,
        WorkloadKind::Funding,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::ExchangeCore => "exchange-core",
            WorkloadKind::DeepBook => "deep-book",
            WorkloadKind::Sweep => "sweep",
            WorkloadKind::Funding => "funding",
        }
    }

    /// The number of measured commands when none is given.
    pub fn commands_default(self) -> usize {
        match self {
            WorkloadKind::ExchangeCore => 1_000_000,
            WorkloadKind::DeepBook => 1_000_000,
            WorkloadKind::Sweep => 1_000_000,
            WorkloadKind::Funding => 1_000_000,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of measured command a workload draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// A good-till-cancel limit order (it may trade on arrival, then rests).
    LimitGtc,
    /// An immediate-or-cancel limit order.
    LimitIoc,
    /// A cancel of the whole order.
    Cancel,
    /// A cancel down to a smaller open quantity (keeps priority).
    PartialCancel,
    /// A replace to a new price (a move): the order loses its priority.
    ReplacePriorityLost,
    /// A replace at the same price to a smaller quantity: priority kept.
    ReplacePriorityKept,
    /// A deposit with a new transfer id.
    Deposit,
    /// A withdrawal with a new transfer id.
    Withdrawal,
    /// A transfer between two accounts with a new transfer id.
    Transfer,
    /// A funding command sent again unchanged (same transfer id and fields):
    /// the engine must answer `Duplicate` and change nothing.
    FundingRepeat,
}

/// How many measured commands of each kind a workload holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommandMix {
    pub limit_gtc: u64,
    pub limit_ioc: u64,
    pub cancel: u64,
    pub partial_cancel: u64,
    pub replace_priority_lost: u64,
    pub replace_priority_kept: u64,
    pub deposit: u64,
    pub withdrawal: u64,
    pub transfer: u64,
    pub funding_repeat: u64,
}

impl CommandMix {
    pub fn total(&self) -> u64 {
        self.limit_gtc
            + self.limit_ioc
            + self.cancel
            + self.partial_cancel
            + self.replace_priority_lost
            + self.replace_priority_kept
            + self.deposit
            + self.withdrawal
            + self.transfer
            + self.funding_repeat
    }

    /// The counts with their names, in a fixed order.
    pub fn entries(&self) -> [(&'static str, u64); 10] {
        [
            ("limit_gtc", self.limit_gtc),
            ("limit_ioc", self.limit_ioc),
            ("cancel", self.cancel),
            ("partial_cancel", self.partial_cancel),
            ("replace_priority_lost", self.replace_priority_lost),
            ("replace_priority_kept", self.replace_priority_kept),
            ("deposit", self.deposit),
            ("withdrawal", self.withdrawal),
            ("transfer", self.transfer),
            ("funding_repeat", self.funding_repeat),
        ]
    }

    fn count(&mut self, kind: CommandKind) {
        let counter = match kind {
            CommandKind::LimitGtc => &mut self.limit_gtc,
            CommandKind::LimitIoc => &mut self.limit_ioc,
            CommandKind::Cancel => &mut self.cancel,
            CommandKind::PartialCancel => &mut self.partial_cancel,
            CommandKind::ReplacePriorityLost => &mut self.replace_priority_lost,
            CommandKind::ReplacePriorityKept => &mut self.replace_priority_kept,
            CommandKind::Deposit => &mut self.deposit,
            CommandKind::Withdrawal => &mut self.withdrawal,
            CommandKind::Transfer => &mut self.transfer,
            CommandKind::FundingRepeat => &mut self.funding_repeat,
        };
        *counter += 1;
    }
}

/// The size of the book: resting orders and occupied price levels (both
/// sides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BookShape {
    pub resting_orders: u64,
    pub price_levels: u64,
}

impl BookShape {
    /// The mean of samples, rounded down; `None` without samples.
    fn mean(samples: &[BookShape]) -> Option<BookShape> {
        let count = samples.len() as u64;
        (count > 0).then(|| BookShape {
            resting_orders: samples.iter().map(|s| s.resting_orders).sum::<u64>() / count,
            price_levels: samples.iter().map(|s| s.price_levels).sum::<u64>() / count,
        })
    }
}

/// What the sweeps of the measured stream did (all zero in workloads without
/// sweeps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SweepStats {
    /// Orders sized to clear several levels of the opposite side.
    pub sweeps: u64,
    /// Price levels the sweeps emptied, in total, and the fewest and most
    /// one sweep emptied.
    pub levels_cleared: u64,
    pub levels_cleared_min: u64,
    pub levels_cleared_max: u64,
    /// `levels_cleared / sweeps` (0 without sweeps): a report figure, not
    /// money, so a float is fine here.
    pub levels_cleared_mean: f64,
    /// Fills the sweeps caused.
    pub fills: u64,
}

impl SweepStats {
    fn record(&mut self, levels_cleared: u64, fills: u64) {
        self.levels_cleared_min = if self.sweeps == 0 {
            levels_cleared
        } else {
            self.levels_cleared_min.min(levels_cleared)
        };
        self.levels_cleared_max = self.levels_cleared_max.max(levels_cleared);
        self.sweeps += 1;
        self.levels_cleared += levels_cleared;
        self.fills += fills;
        self.levels_cleared_mean = self.levels_cleared as f64 / self.sweeps as f64;
    }
}

/// What the engine made of the measured funding commands, from their events
/// (all zero in workloads without funding).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FundingStats {
    pub deposits_applied: u64,
    pub withdrawals_applied: u64,
    pub transfers_applied: u64,
    /// Repeats answered `Duplicate` (nothing changed).
    pub duplicates: u64,
    /// Funding commands rejected (the generator aims for none).
    pub rejected: u64,
}

/// A generated workload.
#[derive(Clone, Debug)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub seed: u64,
    /// Applied before measuring: assets, the instrument, accounts, deposits
    /// and the starting book. All are applied without rejection.
    pub setup: Vec<Command>,
    /// The measured stream.
    pub commands: Vec<Command>,
    /// The measured commands by kind.
    pub mix: CommandMix,
    /// Fills the measured commands caused.
    pub fills: u64,
    /// Measured commands the engine rejected (the generator aims for none).
    pub rejected: u64,
    /// Events the measured commands produced.
    pub events: u64,
    /// The book when measuring starts, on average while it runs (sampled
    /// every 1 024 commands), and at the end.
    pub book_start: BookShape,
    pub book_mean: BookShape,
    pub book_end: BookShape,
    /// `Engine::state_hash` after the setup and the measured commands.
    pub state_hash: u128,
    /// Trading accounts (ids `1..=accounts`).
    pub accounts: u32,
    /// What the sweeps did ([`WorkloadKind::Sweep`]).
    pub sweeps: SweepStats,
    /// What the funding commands did ([`WorkloadKind::Funding`]).
    pub funding: FundingStats,
}

/// Generate `commands` measured commands of `kind` from `seed`.
///
/// ```
/// use bench::{WorkloadKind, generate};
/// let workload = generate(WorkloadKind::ExchangeCore, 7, 1_000);
/// assert_eq!(workload.commands.len(), 1_000);
/// assert_eq!(workload.mix.total(), 1_000);
/// assert_eq!(workload.state_hash, generate(WorkloadKind::ExchangeCore, 7, 1_000).state_hash);
/// ```
pub fn generate(kind: WorkloadKind, seed: u64, commands: usize) -> Workload {
    match kind {
        WorkloadKind::ExchangeCore => exchange_core::generate(seed, commands),
        WorkloadKind::DeepBook => deep_book::generate(seed, commands),
        WorkloadKind::Sweep => sweep::generate(seed, commands),
        WorkloadKind::Funding => funding::generate(seed, commands),
    }
}

#[cfg(test)]
mod tests;
