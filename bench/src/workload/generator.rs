//! The machinery the workloads share: a scratch engine that applies every
//! command as it is generated (so the generator knows which orders rest and
//! where the touch is), the account and reference bookkeeping, a mid price
//! that random-walks, and prices placed relative to it.
//!
//! Every command is applied to the scratch engine before the next is drawn,
//! so what the stream asks for is always possible: a cancel names an order
//! that is open at that point of the stream, a passive order never crosses.
//! The harness, applying the same commands to a fresh engine, goes through
//! exactly the same states and must end with the same state hash.

use super::live::{LiveOrder, LiveOrders};
use super::{BookShape, CommandKind, CommandMix, FundingStats, SweepStats, Workload, WorkloadKind};
use crate::market::{EngineDriver, INSTRUMENT, limit_order, setup_commands};
use crate::random::Random;
use engine::{
    AccountId, CancelOrder, Command, Engine, EngineConfig, Event, InstrumentSpec, OrderRef, Price,
    PriceBand, Quantity, ReplaceOrder, Side, Status, TimeInForce, UserRefNum,
};

/// The book is sampled (resting orders, occupied levels) this often.
const SAMPLE_EVERY_COMMANDS: usize = 1_024;

/// How the mid price wanders: every command it steps one tick up or down
/// with this chance, and it stays within `drift_ticks_max` of the reference.
const MID_STEP_PER_MILLION: u64 = 62_500;

pub(crate) struct Generator {
    pub(crate) random: Random,
    driver: EngineDriver,
    live: LiveOrders,
    accounts: u32,
    /// The last `user_ref_num` used, by account id.
    last_user_ref_nums: Vec<u64>,
    tick: i64,
    band: PriceBand,
    reference: i64,
    mid: i64,
    drift_max: i64,
    measuring: bool,
    setup: Vec<Command>,
    commands: Vec<Command>,
    mix: CommandMix,
    fills: u64,
    rejected: u64,
    events: u64,
    book_start: BookShape,
    samples: Vec<BookShape>,
    sweeps: SweepStats,
    funding: FundingStats,
    /// The largest order the instrument accepts, in lots.
    quantity_max: u64,
}

impl Generator {
    /// A generator on a fresh exchange built by [`setup_commands`].
    pub(crate) fn new(
        seed: u64,
        spec: &InstrumentSpec,
        accounts: u32,
        drift_ticks_max: i64,
        commands_capacity: usize,
    ) -> Generator {
        // Invariant: the default configuration is valid.
        let driver = EngineDriver::new(EngineConfig::default()).expect("a valid configuration");
        // Invariant: `equity` specs are valid, so their band exists.
        let band = spec.band().expect("a valid instrument spec");
        let mut generator = Generator {
            random: Random::new(seed),
            driver,
            live: LiveOrders::default(),
            accounts,
            last_user_ref_nums: vec![0; accounts as usize + 1],
            tick: spec.tick_size.0,
            band,
            reference: spec.reference_price.0,
            mid: spec.reference_price.0,
            drift_max: drift_ticks_max * spec.tick_size.0,
            measuring: false,
            setup: Vec::new(),
            commands: Vec::with_capacity(commands_capacity),
            mix: CommandMix::default(),
            fills: 0,
            rejected: 0,
            events: 0,
            book_start: BookShape::default(),
            samples: Vec::new(),
            sweeps: SweepStats::default(),
            funding: FundingStats::default(),
            quantity_max: spec.max_quantity.0,
        };
        assert!(
            generator.mid - generator.drift_max > band.low.0
                && generator.mid + generator.drift_max < band.high.0,
            "the mid stays inside the band"
        );
        for command in setup_commands(spec, accounts) {
            generator.emit(command, None, UserRefNum(0));
        }
        generator
    }

    /// From here on, commands are the measured stream.
    pub(crate) fn start_measuring(&mut self) {
        self.measuring = true;
        self.book_start = self.book_shape();
    }

    /// Apply a command to the scratch engine, learn from its events, and
    /// record it.
    fn emit(
        &mut self,
        command: Command,
        kind: Option<CommandKind>,
        user_ref_num: UserRefNum,
    ) -> Status {
        let status = self.driver.apply(&command);
        let observed = self.live.observe(self.driver.events(), user_ref_num);
        if self.measuring {
            if let Some(kind) = kind {
                self.mix.count(kind);
            }
            self.fills += observed.fills;
            self.events += self.driver.events().len() as u64;
            self.rejected += u64::from(matches!(status, Status::Rejected(_)));
            self.commands.push(command);
            if self.commands.len().is_multiple_of(SAMPLE_EVERY_COMMANDS) {
                let shape = self.book_shape();
                self.samples.push(shape);
            }
        } else {
            // The setup must build exactly what the stream assumes.
            assert_eq!(
                status,
                Status::Applied,
                "setup command rejected: {command:?}"
            );
            self.setup.push(command);
        }
        status
    }

    /// The scratch engine, in the state the stream has reached.
    pub(crate) fn engine(&self) -> &Engine {
        self.driver.engine()
    }

    pub(crate) fn random_account(&mut self) -> AccountId {
        // Invariant: below `accounts`, a u32, so the cast is exact.
        AccountId(1 + self.random.below(u64::from(self.accounts)) as u32)
    }

    pub(crate) fn random_side(&mut self) -> Side {
        if self.random.coin() {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn next_user_ref_num(&mut self, account: AccountId) -> UserRefNum {
        let last = &mut self.last_user_ref_nums[account.0 as usize];
        *last += 1;
        UserRefNum(*last)
    }

    /// The mid takes a step of one tick now and then, reflected at the edge
    /// of its range.
    pub(crate) fn walk_mid(&mut self) {
        if !self.random.per_million(MID_STEP_PER_MILLION) {
            return;
        }
        let step = if self.random.coin() {
            self.tick
        } else {
            -self.tick
        };
        let mid = self.mid + step;
        self.mid = if (mid - self.reference).abs() > self.drift_max {
            self.mid - step
        } else {
            mid
        };
    }

    /// A price `distance_ticks` (≥ 1) behind the mid on `side`'s side,
    /// never crossing the opposite best, inside the band.
    pub(crate) fn passive_price(&self, side: Side, distance_ticks: u64) -> Price {
        let distance = self.ticks(distance_ticks);
        let engine = self.driver.engine();
        let price = match side {
            Side::Buy => {
                let behind = self.mid - distance;
                let below_ask = engine
                    .best_ask(INSTRUMENT)
                    .map_or(behind, |(ask, _)| ask.0 - self.tick);
                behind.min(below_ask)
            }
            Side::Sell => {
                let behind = self.mid + distance;
                let above_bid = engine
                    .best_bid(INSTRUMENT)
                    .map_or(behind, |(bid, _)| bid.0 + self.tick);
                behind.max(above_bid)
            }
        };
        self.clamp(price)
    }

    /// A price `through_ticks` (≥ 0) beyond the opposite best (or one tick
    /// past the mid when that side is empty): it trades on arrival.
    pub(crate) fn aggressive_price(&self, side: Side, through_ticks: u64) -> Price {
        let through = self.ticks(through_ticks);
        let engine = self.driver.engine();
        let price = match side {
            Side::Buy => {
                engine
                    .best_ask(INSTRUMENT)
                    .map_or(self.mid + self.tick, |(ask, _)| ask.0)
                    + through
            }
            Side::Sell => {
                engine
                    .best_bid(INSTRUMENT)
                    .map_or(self.mid - self.tick, |(bid, _)| bid.0)
                    - through
            }
        };
        self.clamp(price)
    }

    /// `ticks` ticks as a price difference.
    fn ticks(&self, ticks: u64) -> i64 {
        // Invariant: workloads move prices by a few thousand ticks at most.
        i64::try_from(ticks).expect("a small tick count") * self.tick
    }

    fn clamp(&self, price: i64) -> Price {
        Price(price.clamp(self.band.low.0, self.band.high.0))
    }

    /// The chance, per million, that an order placed now is aggressive: the
    /// workloads' one feedback. More resting orders than the target make
    /// orders more aggressive (their fills take resting orders away), fewer
    /// make them passive, so the book hovers around its target size without
    /// touching the mix of command types.
    pub(crate) fn aggression_per_million(&self, base: u64, target: usize) -> u64 {
        // Invariant: the counts are at most `orders_max` (a u32) and the base
        // at most a million, so every cast below is exact.
        let (live, target) = (self.live.len() as i64, target.max(1) as i64);
        // Each 1% of the target above it adds 5 percentage points.
        let adjusted = base as i64 + (live - target) * 5_000_000 / target;
        adjusted.clamp(0, 500_000) as u64
    }

    /// Enter a limit order.
    pub(crate) fn place(
        &mut self,
        account: AccountId,
        side: Side,
        price: Price,
        quantity: u64,
        time_in_force: TimeInForce,
    ) {
        let user_ref_num = self.next_user_ref_num(account);
        let command = limit_order(account, user_ref_num, side, price, quantity, time_in_force);
        let kind = if time_in_force.rests() {
            CommandKind::LimitGtc
        } else {
            CommandKind::LimitIoc
        };
        self.emit(command, Some(kind), user_ref_num);
    }

    /// A marketable order on `side` sized to empty the first `levels` levels
    /// of the opposite side (all of them when it has fewer), limited at the
    /// last of them; a good-till-cancel sweep asks `rest` more, which rests
    /// there. The levels it really emptied go into the sweep statistics.
    pub(crate) fn sweep(
        &mut self,
        account: AccountId,
        side: Side,
        levels: usize,
        time_in_force: TimeInForce,
        rest: u64,
    ) {
        assert!(levels > 0, "a sweep clears at least one level");
        let opposite = side.opposite();
        // Generation is not measured: a small vector per sweep is fine.
        let targeted: Vec<(Price, u64)> = self
            .engine()
            .depth(INSTRUMENT, opposite)
            .take(levels)
            .map(|(price, open, _)| (price, open.0))
            .collect();
        // An empty opposite side: the order goes one tick through the mid
        // and is cancelled (IOC) or rests (GTC).
        let limit = targeted
            .last()
            .map_or_else(|| self.aggressive_price(side, 0), |&(price, _)| price);
        let quantity = targeted.iter().map(|&(_, open)| open).sum::<u64>() + rest;
        let quantity = quantity.clamp(1, self.quantity_max);
        self.place(account, side, limit, quantity, time_in_force);
        // Nothing lands on the opposite side while the order trades, so the
        // targeted levels better than its best now are the ones emptied.
        let best_after = match opposite {
            Side::Buy => self.engine().best_bid(INSTRUMENT),
            Side::Sell => self.engine().best_ask(INSTRUMENT),
        };
        let cleared = targeted
            .iter()
            .filter(|&&(price, _)| match (best_after, opposite) {
                (None, _) => true,
                (Some((best, _)), Side::Buy) => price > best,
                (Some((best, _)), Side::Sell) => price < best,
            })
            .count() as u64;
        let fills = self
            .driver
            .events()
            .iter()
            .filter(|event| matches!(event, Event::Fill { .. }))
            .count() as u64;
        if self.measuring {
            self.sweeps.record(cleared, fills);
        }
    }

    /// Apply a funding command (`kind` is what was drawn) and count what the
    /// engine made of it.
    pub(crate) fn fund(&mut self, command: Command, kind: CommandKind) -> Status {
        debug_assert!(matches!(
            command,
            Command::Deposit(_) | Command::Withdrawal(_) | Command::Transfer(_)
        ));
        let status = self.emit(command, Some(kind), UserRefNum(0));
        if !self.measuring {
            return status;
        }
        let stats = &mut self.funding;
        match status {
            Status::Rejected(_) => stats.rejected += 1,
            Status::Duplicate => stats.duplicates += 1,
            Status::Applied => {
                let counter = match command {
                    Command::Deposit(_) => &mut stats.deposits_applied,
                    Command::Withdrawal(_) => &mut stats.withdrawals_applied,
                    _ => &mut stats.transfers_applied,
                };
                *counter += 1;
            }
        }
        status
    }

    /// Cancel an open order down to `quantity` (0: whole).
    pub(crate) fn cancel(&mut self, order: LiveOrder, quantity: u64) {
        debug_assert!(quantity < order.remaining.0);
        let command = Command::CancelOrder(CancelOrder {
            account: order.account,
            order: OrderRef::UserRef(order.user_ref_num),
            quantity: Quantity(quantity),
        });
        let kind = if quantity == 0 {
            CommandKind::Cancel
        } else {
            CommandKind::PartialCancel
        };
        self.emit(command, Some(kind), UserRefNum(0));
    }

    /// Replace an open order (priority is kept only at the same price with
    /// no more quantity).
    pub(crate) fn replace(&mut self, order: LiveOrder, price: Price, quantity: u64) {
        let new_user_ref_num = self.next_user_ref_num(order.account);
        let command = Command::ReplaceOrder(ReplaceOrder {
            account: order.account,
            order: OrderRef::UserRef(order.user_ref_num),
            new_user_ref_num,
            price,
            quantity: Quantity(quantity),
        });
        let kind = if price == order.price && quantity <= order.remaining.0 {
            CommandKind::ReplacePriorityKept
        } else {
            CommandKind::ReplacePriorityLost
        };
        self.emit(command, Some(kind), new_user_ref_num);
    }

    /// A uniformly drawn open order.
    pub(crate) fn random_live_order(&mut self) -> Option<LiveOrder> {
        if self.live.is_empty() {
            return None;
        }
        let position = self.random.below(self.live.len() as u64) as usize;
        Some(self.live.at(position))
    }

    /// A price for moving `order`: `price` unless that is where it already
    /// is, then one tick further from the opposite side (or nearer, at the
    /// band's edge), so that the move really changes the price.
    pub(crate) fn moved_price(&self, order: &LiveOrder, price: Price) -> Price {
        if price != order.price {
            return price;
        }
        let away = match order.side {
            Side::Buy => -self.tick,
            Side::Sell => self.tick,
        };
        let further = order.price.0 + away;
        if self.band.contains(Price(further)) {
            Price(further)
        } else {
            Price(order.price.0 - away)
        }
    }

    pub(crate) fn live_orders(&self) -> usize {
        self.live.len()
    }

    fn book_shape(&self) -> BookShape {
        let engine = self.driver.engine();
        let levels = engine.depth(INSTRUMENT, Side::Buy).count()
            + engine.depth(INSTRUMENT, Side::Sell).count();
        BookShape {
            resting_orders: u64::from(engine.open_orders()),
            price_levels: levels as u64,
        }
    }

    pub(crate) fn finish(self, kind: WorkloadKind, seed: u64) -> Workload {
        let book_end = self.book_shape();
        let book_mean = BookShape::mean(&self.samples).unwrap_or(book_end);
        Workload {
            kind,
            seed,
            setup: self.setup,
            commands: self.commands,
            mix: self.mix,
            fills: self.fills,
            rejected: self.rejected,
            events: self.events,
            book_start: self.book_start,
            book_mean,
            book_end,
            state_hash: self.driver.engine().state_hash(),
            accounts: self.accounts,
            sweeps: self.sweeps,
            funding: self.funding,
        }
    }
}
