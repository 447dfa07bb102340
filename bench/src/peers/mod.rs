//! Peers measured in the same run as our engine (issue #6): the order-book
//! crates `matchcore` 0.4 and `lobster` 0.7 from crates.io, each driven with
//! the exact command stream our engine is measured on.
//!
//! A [`Peer`] is an adapter: it translates one of our [`Command`]s into its
//! crate's API and reports the fills that caused. Each adapter's
//! [`Peer::notes`] says what it cannot express the way we do (no accounts,
//! no funds check, no self-trade prevention, emulated IOC, emulated
//! priority-keeping reductions, …); commands it cannot express at all are
//! counted, never silently dropped.
//!
//! The method mirrors the harness (`harness.rs`):
//!
//! 1. A **check pass** (untimed, and the warm-up): a fresh book, the
//!    workload's setup, then every measured command, keeping every fill.
//!    Each fill's price is checked against the aggressor's limit (a buy
//!    never pays more than its limit, a sell never receives less); fills
//!    beyond it are counted in `fills_through_limit`.
//! 2. `runs` times: a **latency pass** (a clock read around every command,
//!    HdrHistogram percentiles) and a **throughput pass** (one clock read at
//!    each end of the stream), each on a fresh book with the setup applied
//!    untimed.
//! 3. The reported run is the median by throughput, as for ours.
//!
//! What is compared is only what is comparable: the sequence of fills
//! (order, price, quantity, taker side), as an xxh3 hash, against the fills
//! our engine's `Event::Fill`s give on the same stream. Where the hashes
//! differ, `first_fill_divergence` is the index of the first fill that
//! differs: every later fill is downstream of that difference.
//!
//! Throughput is not like for like even where fills agree: our engine also
//! does risk holds, fees, balances, price-band and tick checks per command,
//! which neither peer does. The ratio `throughput_ratio_ours_to_peer` is
//! ours divided by the peer's (above 1: ours is faster).

mod lobster;
mod matchcore;

pub use self::lobster::LobsterPeer;
pub use self::matchcore::MatchcorePeer;

use crate::harness::LatencyPercentiles;
use crate::market::EngineDriver;
use crate::workload::Workload;
use engine::{
    AccountId, Command, EngineConfig, Event, OrderPrice, OrderRef, Price, Side, Status, UserRefNum,
};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The largest latency the histogram tells apart (the harness's bound).
const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Significant decimal digits the histogram keeps (as the harness).
const HISTOGRAM_DIGITS: u8 = 3;
/// The smallest order capacity a peer's book is built with.
const ORDERS_CAPACITY_MIN: usize = 10_000;
/// Notes name at most this many examples of a fill beyond its limit.
const THROUGH_LIMIT_EXAMPLES_MAX: usize = 3;

/// One fill, as our engine or a peer reports it: what is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerFill {
    /// The maker's price, in our units (quote minor units per share).
    pub price: Price,
    pub quantity: u64,
    pub taker_side: Side,
}

/// What a peer did with one of our commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerStatus {
    /// Translated and applied.
    Applied,
    /// Not an order command (funding, accounts, admin): peers have none.
    Ignored,
    /// An order command the peer cannot express (see its notes).
    Unsupported,
    /// The peer refused it (an order it does not know, an invalid order).
    Rejected,
}

/// An order book from another crate, driven with our commands.
pub trait Peer {
    /// The crate's name, as in the reports.
    fn name(&self) -> &'static str;
    /// The crate's version.
    fn version(&self) -> &'static str;
    /// Drop every order: a fresh, empty book.
    fn reset(&mut self);
    /// Apply one of our commands, appending the fills it caused to `fills`
    /// in the order they happened.
    fn apply(&mut self, command: &Command, fills: &mut Vec<PeerFill>) -> PeerStatus;
    /// How this peer's semantics differ from ours, and how the adapter
    /// bridges the difference (known from the crate's source).
    fn notes(&self) -> Vec<String>;
}

/// What `exchange-bench engine` reports for one peer on one workload.
#[derive(Clone, Debug, Serialize)]
pub struct PeerReport {
    pub peer: &'static str,
    pub version: &'static str,
    /// Measured commands (the same stream as ours).
    pub commands: u64,
    pub runs: u32,
    /// The median run's throughput pass.
    pub seconds: f64,
    pub throughput_per_sec: f64,
    pub throughput_per_sec_min: f64,
    pub throughput_per_sec_max: f64,
    /// Our throughput divided by this peer's (above 1: ours is faster).
    pub throughput_ratio_ours_to_peer: f64,
    /// The median run's latency pass.
    pub latency_ns: LatencyPercentiles,
    pub latency_mean_ns: f64,
    /// Measured commands that are not orders (skipped: no accounts, no
    /// funds).
    pub ignored_commands: u64,
    /// Measured order commands the peer cannot express.
    pub unsupported_commands: u64,
    /// Measured commands the peer refused.
    pub rejected_commands: u64,
    /// Fills on the measured commands: the peer's and ours.
    pub fills: u64,
    pub fills_ours: u64,
    /// xxh3 of the fills in order (price, quantity, taker side): the peer's
    /// and ours.
    pub fills_hash: String,
    pub fills_hash_ours: String,
    pub fills_match: bool,
    /// The index of the first fill that differs from ours, if any, and the
    /// measured command (index) that made it (the peer's, else ours).
    pub first_fill_divergence: Option<u64>,
    pub first_divergent_command: Option<u64>,
    /// The first measured command the peer refused, if any.
    pub first_rejected_command: Option<u64>,
    /// Fills at a price beyond the aggressor's limit (a buy paying more than
    /// its limit, a sell receiving less): a matching bug where not zero.
    pub fills_through_limit: u64,
    /// Setup commands that caused fills in the peer (the starting book must
    /// not cross).
    pub setup_fills: u64,
    /// Semantic differences: the adapter's and what this run found.
    pub notes: Vec<String>,
}

/// Every fill of a stream's measured commands, with what checking them
/// found.
#[derive(Clone, Debug, Default)]
pub struct FillRecord {
    pub fills: Vec<PeerFill>,
    /// The measured command each fill came from (its index).
    pub fill_commands: Vec<u64>,
    /// Fills caused by the setup commands (excluded from `fills`).
    pub setup_fills: u64,
    /// Fills beyond the aggressor's limit, and a few of them described.
    pub through_limit: u64,
    pub through_limit_examples: Vec<String>,
    pub ignored: u64,
    pub unsupported: u64,
    pub rejected: u64,
    /// The first measured command refused.
    pub first_rejected: Option<u64>,
}

impl FillRecord {
    /// xxh3 of the fills, in order.
    pub fn hash(&self) -> u64 {
        fills_hash(&self.fills)
    }

    /// Check one command's fills against its limit and keep them.
    fn record(&mut self, index: usize, command: &Command, fills: &[PeerFill]) {
        for fill in fills {
            let beyond = match aggressor_limit(command) {
                Some(limit) => match fill.taker_side {
                    Side::Buy => fill.price > limit,
                    Side::Sell => fill.price < limit,
                },
                // A fill on a cancel, or on an order without a limit to
                // hold it to, is beyond anything the command allowed.
                None => !matches!(
                    command,
                    Command::NewOrder(engine::NewOrder {
                        price: OrderPrice::Market { protection: None },
                        ..
                    })
                ),
            };
            if beyond {
                self.through_limit += 1;
                if self.through_limit_examples.len() < THROUGH_LIMIT_EXAMPLES_MAX {
                    self.through_limit_examples.push(format!(
                        "measured command {index}: a {:?} taker limited to {} filled {} at {}",
                        fill.taker_side,
                        aggressor_limit(command).map_or("nothing".to_owned(), |p| p.0.to_string()),
                        fill.quantity,
                        fill.price.0
                    ));
                }
            }
        }
        self.fills.extend_from_slice(fills);
        self.fill_commands
            .extend(std::iter::repeat_n(index as u64, fills.len()));
    }

    /// Count a refused measured command.
    fn reject(&mut self, index: usize) {
        self.rejected += 1;
        self.first_rejected.get_or_insert(index as u64);
    }

    /// The measured command of fill `fill`, if there is such a fill.
    fn command_of(&self, fill: u64) -> Option<u64> {
        usize::try_from(fill)
            .ok()
            .and_then(|fill| self.fill_commands.get(fill).copied())
    }
}

/// The price an aggressor may trade up to (a buy) or down to (a sell).
fn aggressor_limit(command: &Command) -> Option<Price> {
    match command {
        Command::NewOrder(order) => match order.price {
            OrderPrice::Limit(price) => Some(price),
            OrderPrice::Market { protection } => protection,
        },
        Command::ReplaceOrder(replace) => Some(replace.price),
        _ => None,
    }
}

/// xxh3 of fills in order: price, quantity and taker side, little-endian.
pub fn fills_hash(fills: &[PeerFill]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for fill in fills {
        hasher.update(&fill.price.0.to_le_bytes());
        hasher.update(&fill.quantity.to_le_bytes());
        hasher.update(&[u8::from(fill.taker_side == Side::Sell)]);
    }
    hasher.digest()
}

/// The index of the first fill where `a` and `b` differ (a missing fill
/// counts), `None` if they are the same.
pub fn first_divergence(a: &[PeerFill], b: &[PeerFill]) -> Option<u64> {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    (common < a.len().max(b.len())).then_some(common as u64)
}

/// The key of one of our orders: its account and client reference, which
/// is how every cancel and replace of the workloads names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OrderKey {
    pub(crate) account: AccountId,
    pub(crate) user_ref_num: UserRefNum,
}

impl OrderKey {
    /// The key of an order a command names; `None` for a reference by our
    /// engine's order id, which no peer knows (the workloads never use it).
    pub(crate) fn named(account: AccountId, order: OrderRef) -> Option<OrderKey> {
        match order {
            OrderRef::UserRef(user_ref_num) => Some(OrderKey {
                account,
                user_ref_num,
            }),
            OrderRef::Id(_) => None,
        }
    }
}

/// Our engine's fills on `setup` then `commands` (only the latter's are
/// kept), checked like a peer's.
pub fn engine_fills(setup: &[Command], commands: &[Command], config: EngineConfig) -> FillRecord {
    // Invariant: callers pass a configuration the harness already used.
    let mut driver = EngineDriver::new(config).expect("a valid engine configuration");
    let mut record = FillRecord::default();
    let mut fills = Vec::new();
    for command in setup {
        driver.apply(command);
        record.setup_fills += fills_of(driver.events(), &mut fills);
    }
    for (index, command) in commands.iter().enumerate() {
        if let Status::Rejected(_) = driver.apply(command) {
            record.reject(index);
        }
        fills.clear();
        fills_of(driver.events(), &mut fills);
        record.record(index, command, &fills);
    }
    record
}

/// Append the fills among `events`; returns how many.
fn fills_of(events: &[Event], fills: &mut Vec<PeerFill>) -> u64 {
    let before = fills.len();
    for event in events {
        if let Event::Fill {
            price,
            quantity,
            taker_side,
            ..
        } = *event
        {
            fills.push(PeerFill {
                price,
                quantity: quantity.0,
                taker_side,
            });
        }
    }
    (fills.len() - before) as u64
}

/// A peer's fills on `setup` then `commands`, from a fresh book.
///
/// ```
/// use bench::peers::{LobsterPeer, engine_fills, peer_fills};
/// let workload = bench::generate(bench::WorkloadKind::ExchangeCore, 1, 1_000);
/// let peer = peer_fills(&mut LobsterPeer::new(10_000), &workload.setup, &workload.commands);
/// let ours = engine_fills(&workload.setup, &workload.commands, engine::EngineConfig::default());
/// assert_eq!(ours.fills.len() as u64, workload.fills);
/// // lobster stops at the limit price, as ours does.
/// assert_eq!(peer.through_limit, 0);
/// ```
pub fn peer_fills(peer: &mut impl Peer, setup: &[Command], commands: &[Command]) -> FillRecord {
    peer.reset();
    let mut record = FillRecord::default();
    let mut fills = Vec::new();
    for command in setup {
        fills.clear();
        peer.apply(command, &mut fills);
        record.setup_fills += fills.len() as u64;
    }
    for (index, command) in commands.iter().enumerate() {
        fills.clear();
        match peer.apply(command, &mut fills) {
            PeerStatus::Applied => {}
            PeerStatus::Ignored => record.ignored += 1,
            PeerStatus::Unsupported => record.unsupported += 1,
            PeerStatus::Rejected => record.reject(index),
        }
        record.record(index, command, &fills);
    }
    record
}

/// Every peer, each on `workload` (see the module documentation), keyed by
/// name. `ours` is our engine's fills on the same stream and
/// `ours_throughput_per_sec` our measured throughput.
pub fn measure_peers(
    workload: &Workload,
    runs: u32,
    ours: &FillRecord,
    ours_throughput_per_sec: f64,
) -> BTreeMap<&'static str, PeerReport> {
    let orders_capacity = orders_capacity(workload);
    let mut reports = BTreeMap::new();
    let mut matchcore = MatchcorePeer::new();
    let report = measure_peer(
        &mut matchcore,
        workload,
        runs,
        ours,
        ours_throughput_per_sec,
    );
    reports.insert(report.peer, report);
    let mut lobster = LobsterPeer::new(orders_capacity);
    let report = measure_peer(&mut lobster, workload, runs, ours, ours_throughput_per_sec);
    reports.insert(report.peer, report);
    reports
}

/// Room for the largest book the workload reaches, twice over.
fn orders_capacity(workload: &Workload) -> usize {
    let resting = workload
        .book_start
        .resting_orders
        .max(workload.book_end.resting_orders);
    usize::try_from(resting.saturating_mul(2))
        .unwrap_or(usize::MAX)
        .max(ORDERS_CAPACITY_MIN)
}

/// One peer on one workload: check pass, then `runs` latency and
/// throughput passes.
pub fn measure_peer(
    peer: &mut impl Peer,
    workload: &Workload,
    runs: u32,
    ours: &FillRecord,
    ours_throughput_per_sec: f64,
) -> PeerReport {
    assert!(runs >= 1, "at least one run");
    let checked = peer_fills(peer, &workload.setup, &workload.commands);
    let fills_expected = checked.fills.len() as u64;
    let mut deterministic = true;
    let mut results: Vec<PeerRun> = Vec::with_capacity(runs as usize);
    let mut fills = Vec::with_capacity(1_024);
    for _ in 0..runs {
        // Invariant: constant, valid bounds.
        let mut histogram = Histogram::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_DIGITS)
            .expect("valid histogram bounds");
        prepare(peer, workload, &mut fills);
        let latency_fills = latency_pass(peer, &workload.commands, &mut fills, &mut histogram);
        prepare(peer, workload, &mut fills);
        let (elapsed, throughput_fills) = throughput_pass(peer, &workload.commands, &mut fills);
        deterministic &= latency_fills == fills_expected && throughput_fills == fills_expected;
        results.push(PeerRun {
            seconds: elapsed.as_secs_f64(),
            throughput_per_sec: workload.commands.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            latency_ns: LatencyPercentiles::of(&histogram),
            latency_mean_ns: histogram.mean(),
        });
    }
    results.sort_by(|a, b| a.throughput_per_sec.total_cmp(&b.throughput_per_sec));
    let median = results[results.len() / 2];

    let mut notes = peer.notes();
    notes.extend(run_notes(&checked, ours, deterministic));
    let fills_hash = checked.hash();
    let fills_hash_ours = ours.hash();
    let divergence = first_divergence(&checked.fills, &ours.fills);
    PeerReport {
        peer: peer.name(),
        version: peer.version(),
        commands: workload.commands.len() as u64,
        runs,
        seconds: median.seconds,
        throughput_per_sec: median.throughput_per_sec,
        throughput_per_sec_min: results[0].throughput_per_sec,
        throughput_per_sec_max: results[results.len() - 1].throughput_per_sec,
        throughput_ratio_ours_to_peer: ours_throughput_per_sec / median.throughput_per_sec,
        latency_ns: median.latency_ns,
        latency_mean_ns: median.latency_mean_ns,
        ignored_commands: checked.ignored,
        unsupported_commands: checked.unsupported,
        rejected_commands: checked.rejected,
        fills: fills_expected,
        fills_ours: ours.fills.len() as u64,
        fills_hash: format!("{fills_hash:016x}"),
        fills_hash_ours: format!("{fills_hash_ours:016x}"),
        fills_match: fills_hash == fills_hash_ours && checked.fills == ours.fills,
        first_fill_divergence: divergence,
        first_divergent_command: divergent_command(&checked, ours),
        first_rejected_command: checked.first_rejected,
        fills_through_limit: checked.through_limit,
        setup_fills: checked.setup_fills,
        notes,
    }
}

/// The measured command that made the first fill differing from ours: the
/// peer's fill there, or ours where the peer has none.
fn divergent_command(checked: &FillRecord, ours: &FillRecord) -> Option<u64> {
    let fill = first_divergence(&checked.fills, &ours.fills)?;
    match (checked.command_of(fill), ours.command_of(fill)) {
        (Some(peer), Some(our)) => Some(peer.min(our)),
        (peer, our) => peer.or(our),
    }
}

/// What this run found, as notes.
fn run_notes(checked: &FillRecord, ours: &FillRecord, deterministic: bool) -> Vec<String> {
    let mut notes = Vec::new();
    if checked.through_limit > 0 {
        notes.push(format!(
            "found: {} fills beyond the aggressor's limit price (ours: {}), e.g. {}",
            checked.through_limit,
            ours.through_limit,
            checked.through_limit_examples.join("; ")
        ));
    }
    if checked.rejected > 0 {
        notes.push(format!(
            "found: the peer refused {} measured commands our engine applied (ours refused {})",
            checked.rejected, ours.rejected
        ));
    }
    if checked.unsupported > 0 {
        notes.push(format!(
            "found: {} measured order commands the peer cannot express were skipped",
            checked.unsupported
        ));
    }
    if checked.ignored > 0 {
        notes.push(format!(
            "found: {} measured non-order commands were skipped",
            checked.ignored
        ));
    }
    if checked.setup_fills > 0 {
        notes.push(format!(
            "found: the setup caused {} fills in the peer (ours: {})",
            checked.setup_fills, ours.setup_fills
        ));
    }
    if let Some(index) = first_divergence(&checked.fills, &ours.fills) {
        let command = divergent_command(checked, ours).unwrap_or(0);
        notes.push(format!(
            "found: fills differ from ours from fill {index} (measured command {command}) on \
             (peer {} fills, ours {}); every later fill is downstream of that difference",
            checked.fills.len(),
            ours.fills.len()
        ));
        if let Some(rejected) = checked.first_rejected {
            notes.push(if rejected > command {
                format!(
                    "found: the peer's first refusal (measured command {rejected}) comes after \
                     the fills diverged: it names an order the peer no longer has"
                )
            } else {
                format!(
                    "found: the peer refused measured command {rejected} before the fills \
                     diverged: an adapter or peer difference, not a consequence"
                )
            });
        }
    }
    if !deterministic {
        notes.push(
            "found: a timed pass produced a different number of fills than the check pass"
                .to_owned(),
        );
    }
    notes
}

/// One repetition's figures.
#[derive(Clone, Copy, Debug)]
struct PeerRun {
    seconds: f64,
    throughput_per_sec: f64,
    latency_ns: LatencyPercentiles,
    latency_mean_ns: f64,
}

/// A fresh book with the workload's setup applied (untimed).
fn prepare(peer: &mut impl Peer, workload: &Workload, fills: &mut Vec<PeerFill>) {
    peer.reset();
    for command in &workload.setup {
        fills.clear();
        peer.apply(command, fills);
    }
}

/// Apply the measured commands with one clock read at each end; returns
/// the time and the fills.
fn throughput_pass(
    peer: &mut impl Peer,
    commands: &[Command],
    fills: &mut Vec<PeerFill>,
) -> (Duration, u64) {
    let mut produced = 0_u64;
    let start = Instant::now();
    for command in commands {
        fills.clear();
        black_box(peer.apply(command, fills));
        black_box(&*fills);
        produced += fills.len() as u64;
    }
    (start.elapsed(), produced)
}

/// Apply the measured commands, timing each one; returns the fills.
fn latency_pass(
    peer: &mut impl Peer,
    commands: &[Command],
    fills: &mut Vec<PeerFill>,
    histogram: &mut Histogram<u64>,
) -> u64 {
    let mut produced = 0_u64;
    for command in commands {
        let start = Instant::now();
        fills.clear();
        black_box(peer.apply(command, fills));
        black_box(&*fills);
        let latency_ns = start.elapsed().as_nanos();
        histogram.saturating_record(u64::try_from(latency_ns).unwrap_or(u64::MAX));
        produced += fills.len() as u64;
    }
    produced
}

/// Our price (quote minor units, positive on every book we build) as a
/// peer's unsigned price; `None` for a price no peer can hold.
fn unsigned_price(price: Price) -> Option<u64> {
    u64::try_from(price.0).ok().filter(|&price| price > 0)
}

#[cfg(test)]
mod tests;
