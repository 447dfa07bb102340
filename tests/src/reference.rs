//! A naive reference model of the engine, written from `docs/engine.md`
//! alone (not from the engine's code), so that property tests can feed the
//! engine and the model the same commands and compare them event for event.
//!
//! It is slow and plain on purpose:
//! - the resting orders of an instrument sit unsorted in one `Vec`, found by
//!   linear scan and sorted by (price priority, arrival) whenever an order of
//!   priority is needed;
//! - balances live in a `BTreeMap` keyed by (account, asset), and every
//!   change goes through one function that works in `i128` and checks that
//!   the result is a valid `u64`;
//! - the money rules (price band, spec validity, holds, fees) are written
//!   again here, from the spec, with `u128`/`i128` arithmetic. The engine's
//!   own helpers (`hold_required`, `fee`, `notional`, `InstrumentSpec::band`,
//!   `InstrumentSpec::is_valid`) are deliberately not called, so a mistake in
//!   them shows up as a disagreement instead of being shared.
//!
//! Every handler runs its checks in the spec's order before it changes
//! anything (except consuming a `user_ref_num` or transfer id, which the
//! spec says happens as soon as that check passes), so a rejection leaves
//! the rest of the state untouched by construction.
//!
//! Invariants, checked by [`ReferenceModel::check_invariants`]: per asset
//! Σ available + Σ held = Σ deposits − Σ withdrawals; no book is crossed;
//! every account's held amount of an asset equals the sum of the holds its
//! open orders require; at most `orders_max` orders rest; balances are
//! `u64`, and the model panics rather than let one go negative.

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};

use engine::{
    AccountId, AccountQuery, AccountStatus, AdminCommand, Asset, AssetId, AssetTotals, Balance,
    CancelOrder, CancelReason, Command, CommandHeader, Deposit, EngineConfig, Event, FeeRates,
    FundingKind, GatewayReject, InstrumentId, InstrumentSpec, InstrumentUpdate, InstrumentView,
    MassCancel, MatchNumber, NewOrder, OrderId, OrderPrice, OrderRef, OrderView, Price, PriceBand,
    Quantity, RejectReason, ReplaceOrder, SelfTradePrevention, Side, Status, Symbol, TimeInForce,
    TradingStatus, Transfer, TransferId, UserRefNum, Withdrawal,
};

/// Basis points in one whole.
const BASIS_POINTS_ONE: u128 = 10_000;

/// The highest scale an asset may have.
const ASSET_SCALE_MAX: u8 = 18;

// ---------------------------------------------------------------------------
// The money rules, re-derived from the spec.
// ---------------------------------------------------------------------------

/// `fee(amount, bps) = floor(amount × bps / 10 000)`.
fn fee(amount: u64, basis_points: u16) -> u64 {
    let fee = u128::from(amount) * u128::from(basis_points) / BASIS_POINTS_ONE;
    // Invariant: rates come from valid specs, so bps ≤ 10 000 and the fee is
    // at most the amount, which is a u64.
    u64::try_from(fee).expect("a fee at ≤ 10 000 bps is at most its amount")
}

/// What an order must hold with `open` quantity at `limit`: for a buy
/// `limit × open + floor(limit × open × max(maker, taker) / 10 000)` of the
/// quote asset, for a sell `open × quantity_unit` of the base asset. `None`
/// when the amount does not fit 64 bits (an `Overflow`).
fn hold(
    spec: &InstrumentSpec,
    side: Side,
    limit: Price,
    open: u64,
    rates: FeeRates,
) -> Option<u64> {
    let amount: u128 = match side {
        Side::Buy => {
            // Invariant: the limit of an accepted buy is at least one tick,
            // and an effective protection price is at least 1.
            let limit = u128::try_from(limit.0).expect("a buy's limit is positive");
            let notional = limit * u128::from(open);
            let basis_points = u128::from(rates.maker_bps.max(rates.taker_bps));
            // If notional × bps does not even fit u128, the hold is far above
            // u64::MAX: an overflow either way.
            notional + notional.checked_mul(basis_points)? / BASIS_POINTS_ONE
        }
        Side::Sell => u128::from(open) * u128::from(spec.quantity_unit),
    };
    u64::try_from(amount).ok()
}

/// The asset an order of `side` holds: quote for a buy, base for a sell.
fn held_asset(spec: &InstrumentSpec, side: Side) -> AssetId {
    match side {
        Side::Buy => spec.quote,
        Side::Sell => spec.base,
    }
}

/// The price band: `width = floor(reference × band_bps / 10 000)`, the band
/// `[max(reference − width, tick), reference + width]` with the low end
/// rounded up and the high end rounded down to multiples of the tick.
/// `None` when it does not compute (a non-positive reference or tick, or an
/// end that does not fit a `Price`).
fn band(spec: &InstrumentSpec) -> Option<PriceBand> {
    let reference = i128::from(spec.reference_price.0);
    let tick = i128::from(spec.tick_size.0);
    if reference < 1 || tick < 1 {
        return None;
    }
    let width = reference * i128::from(spec.band_bps) / 10_000;
    let low = (reference - width).max(tick);
    let high = reference + width;
    // Both ends are positive here, so integer division is floor division.
    let low = (low + tick - 1) / tick * tick;
    let high = high / tick * tick;
    let low = i64::try_from(low).ok()?;
    let high = i64::try_from(high).ok()?;
    (low <= high).then_some(PriceBand {
        low: Price(low),
        high: Price(high),
    })
}

/// The number of price levels from the band's low to its high end.
fn band_levels(band: PriceBand, tick: Price) -> u128 {
    let span = i128::from(band.high.0) - i128::from(band.low.0);
    // Invariant: a band exists only for a tick ≥ 1 and has low ≤ high.
    let span = u128::try_from(span).expect("a band has low ≤ high");
    span / u128::from(tick.0.unsigned_abs()) + 1
}

/// The spec's list of what a valid instrument spec has.
fn spec_is_valid(spec: &InstrumentSpec) -> bool {
    let tick = spec.tick_size.0;
    let lot = spec.lot_size.0;
    let fee_limit = BASIS_POINTS_ONE as u64;
    spec.base != spec.quote
        && spec.quantity_unit >= 1
        && tick >= 1
        && lot >= 1
        && spec.min_quantity.0 >= 1
        && spec.min_quantity.0 <= spec.max_quantity.0
        && spec.min_quantity.0.is_multiple_of(lot)
        && spec.max_quantity.0.is_multiple_of(lot)
        && spec.reference_price.0 >= 1
        && spec.reference_price.0 % tick == 0
        && u64::from(spec.band_bps) <= fee_limit
        && u64::from(spec.maker_fee_bps) <= fee_limit
        && u64::from(spec.taker_fee_bps) <= fee_limit
        && band(spec).is_some()
}

/// The spec with the parts an update may change replaced.
fn spec_with_update(spec: &InstrumentSpec, update: &InstrumentUpdate) -> InstrumentSpec {
    InstrumentSpec {
        reference_price: update.reference_price,
        band_bps: update.band_bps,
        min_quantity: update.min_quantity,
        max_quantity: update.max_quantity,
        maker_fee_bps: update.maker_fee_bps,
        taker_fee_bps: update.taker_fee_bps,
        ..*spec
    }
}

fn rates_of(spec: &InstrumentSpec) -> FeeRates {
    FeeRates {
        maker_bps: spec.maker_fee_bps,
        taker_bps: spec.taker_fee_bps,
    }
}

/// Whether a resting order at `resting_price` crosses the limit of an
/// incoming order of `incoming_side`: a buy takes asks at or below its
/// limit, a sell takes bids at or above it.
fn crosses(incoming_side: Side, limit: Price, resting_price: Price) -> bool {
    match incoming_side {
        Side::Buy => resting_price <= limit,
        Side::Sell => resting_price >= limit,
    }
}

/// Priority within one side: best price first (highest bid, lowest ask),
/// then the order that arrived first.
fn priority(side: Side, a: &ModelOrder, b: &ModelOrder) -> Ordering {
    let by_price = match side {
        Side::Buy => b.price.cmp(&a.price),
        Side::Sell => a.price.cmp(&b.price),
    };
    by_price.then(a.arrival.cmp(&b.arrival))
}

// ---------------------------------------------------------------------------
// State.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AccountRecord {
    status: AccountStatus,
    last_user_ref_num: u64,
    last_transfer_id: u64,
}

/// An order: resting on a book, or the incoming order of a command (then
/// `price` is its limit or effective protection price and `arrival` is not
/// yet set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ModelOrder {
    order_id: OrderId,
    account: AccountId,
    user_ref_num: UserRefNum,
    instrument: InstrumentId,
    side: Side,
    price: Price,
    open: u64,
    time_in_force: TimeInForce,
    post_only: bool,
    self_trade: SelfTradePrevention,
    rates: FeeRates,
    /// When the order joined the book: its place in the time priority.
    arrival: u64,
}

impl ModelOrder {
    fn view(&self) -> OrderView {
        OrderView {
            order_id: self.order_id,
            account: self.account,
            user_ref_num: self.user_ref_num,
            instrument: self.instrument,
            side: self.side,
            price: self.price,
            remaining: Quantity(self.open),
            time_in_force: self.time_in_force,
            self_trade: self.self_trade,
            post_only: self.post_only,
        }
    }

    fn canceled_event(&self, canceled: u64, remaining: u64, reason: CancelReason) -> Event {
        Event::OrderCanceled {
            order_id: self.order_id,
            account: self.account,
            user_ref_num: self.user_ref_num,
            instrument: self.instrument,
            side: self.side,
            canceled: Quantity(canceled),
            remaining: Quantity(remaining),
            reason,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct InstrumentRecord {
    spec: InstrumentSpec,
    status: TradingStatus,
    /// Resting orders of both sides, in no particular order.
    orders: Vec<ModelOrder>,
}

/// The fields of a funding command that a repeat must match, and its
/// result (`None`: applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FundingRecord {
    request: FundingRequest,
    result: Option<RejectReason>,
}

/// A deposit, withdrawal or transfer, reduced to common fields. `account`
/// is the account the transfer id is scoped to (a transfer's `from`); `to`
/// is the account credited by a transfer and `account` otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FundingRequest {
    kind: FundingKind,
    account: AccountId,
    to: AccountId,
    asset: AssetId,
    amount: u64,
    transfer_id: u64,
}

impl FundingRequest {
    fn same_fields(&self, other: &FundingRequest) -> bool {
        self.kind == other.kind
            && self.account == other.account
            && self.to == other.to
            && self.asset == other.asset
            && self.amount == other.amount
    }
}

/// The part of the model's state that commands change and that the engine
/// exposes, for telling whether a command changed anything. Zero balances
/// are left out, so that touching a balance without changing it is no
/// change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSnapshot {
    assets: BTreeMap<AssetId, Asset>,
    accounts: BTreeMap<AccountId, AccountRecord>,
    balances: BTreeMap<(AccountId, AssetId), Balance>,
    instruments: BTreeMap<InstrumentId, InstrumentRecord>,
    totals: BTreeMap<AssetId, AssetTotals>,
}

/// The reference model: see the module documentation.
#[derive(Clone, Debug)]
pub struct ReferenceModel {
    config: EngineConfig,
    assets: BTreeMap<AssetId, Asset>,
    accounts: BTreeMap<AccountId, AccountRecord>,
    balances: BTreeMap<(AccountId, AssetId), Balance>,
    instruments: BTreeMap<InstrumentId, InstrumentRecord>,
    totals: BTreeMap<AssetId, AssetTotals>,
    /// The most recent funding commands that consumed a transfer id, oldest
    /// first, at most `transfer_records_max`.
    funding_records: VecDeque<FundingRecord>,
    next_order_id: u64,
    next_match_number: u64,
    next_arrival: u64,
    last_sequence: u64,
}

/// What a new order's checks established.
#[derive(Clone, Copy, Debug)]
struct Admission {
    /// The limit price, or a market order's effective protection price.
    limit: Price,
    market: bool,
    rates: FeeRates,
    hold_amount: u64,
    asset: AssetId,
}

/// What a replace's checks established.
#[derive(Clone, Copy, Debug)]
struct ReplacePlan {
    order: ModelOrder,
    priority_kept: bool,
    /// The rates the order will have: its own if it keeps priority, the
    /// instrument's current ones otherwise.
    rates: FeeRates,
    asset: AssetId,
    /// New hold − old hold (negative: a release).
    hold_increase: i128,
}

/// What a handler returns: its status, or the reason it was rejected (the
/// caller writes the single `Rejected` event).
type Handled = Result<Status, RejectReason>;

impl ReferenceModel {
    /// An empty exchange with only the fee account.
    pub fn new(config: &EngineConfig) -> ReferenceModel {
        let mut accounts = BTreeMap::new();
        accounts.insert(config.fee_account, AccountRecord::new());
        ReferenceModel {
            config: *config,
            assets: BTreeMap::new(),
            accounts,
            balances: BTreeMap::new(),
            instruments: BTreeMap::new(),
            totals: BTreeMap::new(),
            funding_records: VecDeque::new(),
            next_order_id: 1,
            next_match_number: 1,
            next_arrival: 1,
            last_sequence: 0,
        }
    }

    /// Applies one command: its status and its events, in order.
    pub fn apply(&mut self, header: CommandHeader, command: &Command) -> (Status, Vec<Event>) {
        assert_eq!(
            header.sequence,
            self.last_sequence + 1,
            "sequence numbers are contiguous"
        );
        self.last_sequence = header.sequence;
        let mut events = Vec::new();
        let handled = match command {
            Command::NewOrder(order) => self.new_order(order, &mut events),
            Command::CancelOrder(cancel) => self.cancel_order(cancel, &mut events),
            Command::ReplaceOrder(replace) => self.replace_order(replace, &mut events),
            Command::MassCancel(mass_cancel) => self.mass_cancel(mass_cancel, &mut events),
            Command::Deposit(deposit) => {
                self.funding(FundingRequest::deposit(deposit), &mut events)
            }
            Command::Withdrawal(withdrawal) => {
                self.funding(FundingRequest::withdrawal(withdrawal), &mut events)
            }
            Command::Transfer(transfer) => {
                self.funding(FundingRequest::transfer(transfer), &mut events)
            }
            Command::AccountQuery(query) => self.account_query(query, &mut events),
            Command::GatewayReject(reject) => self.gateway_reject(reject),
            Command::Admin(admin) => self.admin(admin, &mut events),
        };
        match handled {
            Ok(status) => (status, events),
            Err(reason) => {
                assert!(
                    events.is_empty(),
                    "a rejected command writes no other event"
                );
                let rejected = Event::Rejected {
                    account: command.account(),
                    reference: reference_of(command),
                    reason,
                };
                (Status::Rejected(reason), vec![rejected])
            }
        }
    }

    // -----------------------------------------------------------------------
    // New order, the walk, settlement.
    // -----------------------------------------------------------------------

    fn new_order(&mut self, command: &NewOrder, events: &mut Vec<Event>) -> Handled {
        let Admission {
            limit,
            market,
            rates,
            hold_amount,
            asset,
        } = self.check_new_order(command)?;
        let order = ModelOrder {
            order_id: self.take_order_id(),
            account: command.account,
            user_ref_num: command.user_ref_num,
            instrument: command.instrument,
            side: command.side,
            price: limit,
            open: command.quantity.0,
            time_in_force: command.time_in_force,
            post_only: command.post_only,
            self_trade: command.self_trade,
            rates,
            arrival: 0,
        };
        events.push(Event::OrderAccepted {
            order_id: order.order_id,
            account: order.account,
            user_ref_num: order.user_ref_num,
            instrument: order.instrument,
            side: order.side,
            price: limit,
            quantity: command.quantity,
            time_in_force: order.time_in_force,
            market,
            post_only: order.post_only,
            self_trade: order.self_trade,
        });
        if command.time_in_force == TimeInForce::FillOrKill && !self.can_fill_whole(&order) {
            events.push(order.canceled_event(order.open, 0, CancelReason::FillOrKill));
            return Ok(Status::Applied);
        }
        let hold_amount = i128::from(hold_amount);
        self.change_balance(order.account, asset, -hold_amount, hold_amount, events);
        self.walk_and_rest(order, events);
        Ok(Status::Applied)
    }

    /// A new order's checks, in the spec's order (consuming the
    /// `user_ref_num` once it passes its check).
    fn check_new_order(&mut self, command: &NewOrder) -> Result<Admission, RejectReason> {
        let account = self.consume_user_ref_num(command.account, command.user_ref_num)?;
        if account.status == AccountStatus::Suspended {
            return Err(RejectReason::AccountSuspended);
        }
        let record = self
            .instruments
            .get(&command.instrument)
            .ok_or(RejectReason::UnknownInstrument)?;
        if record.status == TradingStatus::Halted {
            return Err(RejectReason::InstrumentHalted);
        }
        let spec = record.spec;
        let market = matches!(command.price, OrderPrice::Market { .. });
        let rests = command.time_in_force.rests();
        let market_that_would_rest = market && rests;
        let post_only_that_cannot_rest = command.post_only && (market || !rests);
        if market_that_would_rest || post_only_that_cannot_rest {
            return Err(RejectReason::InvalidOrderAttributes);
        }
        // Invariant: only valid specs are stored, and a valid spec has a band.
        let band = band(&spec).expect("a stored spec has a band");
        let limit = match command.price {
            OrderPrice::Limit(price) => {
                check_limit_price(&spec, band, price)?;
                price
            }
            OrderPrice::Market { protection } => {
                effective_protection(command.side, band, protection)?
            }
        };
        check_quantity(&spec, command.quantity)?;
        let rates = rates_of(&spec);
        let hold_amount = hold(&spec, command.side, limit, command.quantity.0, rates)
            .ok_or(RejectReason::Overflow)?;
        let asset = held_asset(&spec, command.side);
        if hold_amount > self.available(command.account, asset) {
            return Err(RejectReason::InsufficientFunds);
        }
        if command.post_only
            && self
                .best_crossing(command.instrument, command.side, limit)
                .is_some()
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        if rests && self.open_order_count() >= u64::from(self.config.orders_max) {
            return Err(RejectReason::BookFull);
        }
        Ok(Admission {
            limit,
            market,
            rates,
            hold_amount,
            asset,
        })
    }

    /// Steps 4 and 5 of a new order (and of a replace that loses priority):
    /// the walk through the opposite side, then what is left is booked or
    /// cancelled.
    fn walk_and_rest(&mut self, mut taker: ModelOrder, events: &mut Vec<Event>) {
        let stopped_by_self_trade = self.walk(&mut taker, events);
        if taker.open == 0 {
            return;
        }
        let rest = taker.open;
        if stopped_by_self_trade {
            self.reduce_incoming(&mut taker, rest, CancelReason::SelfTrade, events);
        } else if taker.time_in_force.rests() {
            self.book(taker, events);
        } else {
            self.reduce_incoming(&mut taker, rest, CancelReason::ImmediateOrCancel, events);
        }
    }

    /// The walk. Returns whether self-trade prevention ended it.
    fn walk(&mut self, taker: &mut ModelOrder, events: &mut Vec<Event>) -> bool {
        // Each pass fills or cancels at least one unit of a maker's or the
        // taker's quantity, so the loop ends.
        while taker.open > 0 {
            let Some(maker) = self.best_crossing(taker.instrument, taker.side, taker.price) else {
                return false;
            };
            if maker.account == taker.account && taker.self_trade != SelfTradePrevention::None {
                match taker.self_trade {
                    SelfTradePrevention::None => unreachable!("handled above"),
                    SelfTradePrevention::CancelNewest => return true,
                    SelfTradePrevention::CancelOldest => {
                        self.reduce_resting(
                            maker.order_id,
                            maker.open,
                            CancelReason::SelfTrade,
                            events,
                        );
                    }
                    SelfTradePrevention::CancelBoth => {
                        self.reduce_resting(
                            maker.order_id,
                            maker.open,
                            CancelReason::SelfTrade,
                            events,
                        );
                        return true;
                    }
                    SelfTradePrevention::DecrementAndCancel => {
                        let decrement = taker.open.min(maker.open);
                        self.reduce_resting(
                            maker.order_id,
                            decrement,
                            CancelReason::SelfTrade,
                            events,
                        );
                        self.reduce_incoming(taker, decrement, CancelReason::SelfTrade, events);
                    }
                }
                continue;
            }
            self.fill(taker, maker, events);
        }
        false
    }

    /// Fill or kill: whether the walk could fill the whole order now.
    fn can_fill_whole(&self, taker: &ModelOrder) -> bool {
        let mut fillable: u128 = 0;
        for maker in self.sorted_side(taker.instrument, taker.side.opposite()) {
            if !crosses(taker.side, taker.price, maker.price) {
                break;
            }
            if maker.account == taker.account {
                match taker.self_trade {
                    SelfTradePrevention::None => {}
                    SelfTradePrevention::CancelOldest => continue,
                    SelfTradePrevention::CancelNewest
                    | SelfTradePrevention::CancelBoth
                    | SelfTradePrevention::DecrementAndCancel => return false,
                }
            }
            fillable += u128::from(maker.open);
            if fillable >= u128::from(taker.open) {
                return true;
            }
        }
        false
    }

    /// One fill between the taker and the maker, at the maker's price, and
    /// its settlement, in the spec's order of events.
    fn fill(&mut self, taker: &mut ModelOrder, maker: ModelOrder, events: &mut Vec<Event>) {
        let spec = self.spec(taker.instrument);
        let quantity = taker.open.min(maker.open);
        let match_number = MatchNumber(self.next_match_number);
        self.next_match_number += 1;
        events.push(Event::Fill {
            match_number,
            instrument: taker.instrument,
            price: maker.price,
            quantity: Quantity(quantity),
            taker_side: taker.side,
            maker_order_id: maker.order_id,
            maker_account: maker.account,
            maker_user_ref_num: maker.user_ref_num,
            taker_order_id: taker.order_id,
            taker_account: taker.account,
            taker_user_ref_num: taker.user_ref_num,
        });

        let (buyer, seller, buyer_fee_bps, seller_fee_bps) = match taker.side {
            Side::Buy => (*taker, maker, taker.rates.taker_bps, maker.rates.maker_bps),
            Side::Sell => (maker, *taker, maker.rates.maker_bps, taker.rates.taker_bps),
        };
        taker.open -= quantity;
        self.set_resting_open(maker.order_id, maker.open - quantity);

        // Invariant: the buyer's hold covers the notional and the seller's
        // the base amount, and both holds fit u64.
        let notional = u64::try_from(i128::from(maker.price.0) * i128::from(quantity))
            .expect("a fill's notional is covered by a hold");
        let base_amount = u64::try_from(u128::from(quantity) * u128::from(spec.quantity_unit))
            .expect("a fill's base amount is covered by a hold");
        let buyer_fee = fee(notional, buyer_fee_bps);
        let seller_fee = fee(notional, seller_fee_bps);
        let hold_before = hold(&spec, Side::Buy, buyer.price, buyer.open, buyer.rates)
            .expect("an accepted order's hold fits");
        let hold_after = hold(
            &spec,
            Side::Buy,
            buyer.price,
            buyer.open - quantity,
            buyer.rates,
        )
        .expect("a smaller hold fits");
        let released = i128::from(hold_before) - i128::from(hold_after);
        let buyer_refund = released - i128::from(notional) - i128::from(buyer_fee);
        let seller_proceeds = i128::from(notional) - i128::from(seller_fee);
        let fees = i128::from(buyer_fee) + i128::from(seller_fee);
        let base_amount = i128::from(base_amount);

        self.change_balance(buyer.account, spec.quote, buyer_refund, -released, events);
        self.change_balance(buyer.account, spec.base, base_amount, 0, events);
        self.change_balance(seller.account, spec.base, 0, -base_amount, events);
        if seller_proceeds > 0 {
            self.change_balance(seller.account, spec.quote, seller_proceeds, 0, events);
        }
        if fees > 0 {
            self.change_balance(self.config.fee_account, spec.quote, fees, 0, events);
        }
    }

    /// Cancels `canceled` of a resting order's open quantity: the
    /// `OrderCanceled` event, then the release of what it no longer holds.
    /// The order leaves the book at 0 and keeps its priority otherwise.
    fn reduce_resting(
        &mut self,
        order_id: OrderId,
        canceled: u64,
        reason: CancelReason,
        events: &mut Vec<Event>,
    ) {
        // Invariant: callers name an order they just found on a book.
        let order = self.resting(order_id).expect("the order rests");
        assert!(canceled >= 1 && canceled <= order.open, "cancels 1..=open");
        let remaining = order.open - canceled;
        self.set_resting_open(order_id, remaining);
        events.push(order.canceled_event(canceled, remaining, reason));
        self.release(&order, remaining, events);
    }

    /// Cancels `canceled` of the incoming order's open quantity.
    fn reduce_incoming(
        &mut self,
        taker: &mut ModelOrder,
        canceled: u64,
        reason: CancelReason,
        events: &mut Vec<Event>,
    ) {
        assert!(canceled >= 1 && canceled <= taker.open, "cancels 1..=open");
        let before = *taker;
        taker.open -= canceled;
        events.push(before.canceled_event(canceled, taker.open, reason));
        self.release(&before, taker.open, events);
    }

    /// Releases the hold of `order` (at its open quantity) down to what it
    /// needs with `open_after` open.
    fn release(&mut self, order: &ModelOrder, open_after: u64, events: &mut Vec<Event>) {
        let spec = self.spec(order.instrument);
        let before = hold(&spec, order.side, order.price, order.open, order.rates)
            .expect("an accepted order's hold fits");
        let after = hold(&spec, order.side, order.price, open_after, order.rates)
            .expect("a smaller hold fits");
        let released = i128::from(before) - i128::from(after);
        let asset = held_asset(&spec, order.side);
        self.change_balance(order.account, asset, released, -released, events);
    }

    /// Puts the order at the back of its price level.
    fn book(&mut self, mut order: ModelOrder, events: &mut Vec<Event>) {
        order.arrival = self.next_arrival;
        self.next_arrival += 1;
        events.push(Event::OrderBooked {
            order_id: order.order_id,
            account: order.account,
            instrument: order.instrument,
            side: order.side,
            price: order.price,
            quantity: Quantity(order.open),
        });
        self.record_mut(order.instrument).orders.push(order);
    }

    // -----------------------------------------------------------------------
    // Cancel, replace, mass cancel.
    // -----------------------------------------------------------------------

    fn cancel_order(&mut self, command: &CancelOrder, events: &mut Vec<Event>) -> Handled {
        if !self.accounts.contains_key(&command.account) {
            return Err(RejectReason::UnknownAccount);
        }
        let order = self.find_named_order(command.account, command.order)?;
        let spec = self.spec(order.instrument);
        if !command.quantity.0.is_multiple_of(spec.lot_size.0) {
            return Err(RejectReason::QuantityOffLot);
        }
        if command.quantity.0 >= order.open {
            return Err(RejectReason::QuantityNotReduced);
        }
        let canceled = order.open - command.quantity.0;
        self.reduce_resting(order.order_id, canceled, CancelReason::Requested, events);
        Ok(Status::Applied)
    }

    fn replace_order(&mut self, command: &ReplaceOrder, events: &mut Vec<Event>) -> Handled {
        let plan = self.check_replace(command)?;
        let order = plan.order;
        let new_order_id = if plan.priority_kept {
            order.order_id
        } else {
            self.take_order_id()
        };
        events.push(Event::OrderReplaced {
            old_order_id: order.order_id,
            new_order_id,
            account: order.account,
            old_user_ref_num: order.user_ref_num,
            new_user_ref_num: command.new_user_ref_num,
            instrument: order.instrument,
            side: order.side,
            price: command.price,
            quantity: command.quantity,
            priority_kept: plan.priority_kept,
        });
        let increase = plan.hold_increase;
        if plan.priority_kept {
            let resting = self.resting_mut(order.order_id);
            resting.user_ref_num = command.new_user_ref_num;
            resting.open = command.quantity.0;
            if increase < 0 {
                self.change_balance(order.account, plan.asset, -increase, increase, events);
            }
            return Ok(Status::Applied);
        }
        self.record_mut(order.instrument)
            .orders
            .retain(|resting| resting.order_id != order.order_id);
        if increase != 0 {
            self.change_balance(order.account, plan.asset, -increase, increase, events);
        }
        let reentering = ModelOrder {
            order_id: new_order_id,
            user_ref_num: command.new_user_ref_num,
            price: command.price,
            open: command.quantity.0,
            rates: plan.rates,
            arrival: 0,
            ..order
        };
        self.walk_and_rest(reentering, events);
        Ok(Status::Applied)
    }

    /// A replace's checks, in the spec's order (consuming the new
    /// `user_ref_num` once it passes its check).
    fn check_replace(&mut self, command: &ReplaceOrder) -> Result<ReplacePlan, RejectReason> {
        let account = self.consume_user_ref_num(command.account, command.new_user_ref_num)?;
        if account.status == AccountStatus::Suspended {
            return Err(RejectReason::AccountSuspended);
        }
        let order = self.find_named_order(command.account, command.order)?;
        let record = &self.instruments[&order.instrument];
        if record.status == TradingStatus::Halted {
            return Err(RejectReason::InstrumentHalted);
        }
        let spec = record.spec;
        let band = band(&spec).expect("a stored spec has a band");
        check_limit_price(&spec, band, command.price)?;
        check_quantity(&spec, command.quantity)?;
        let priority_kept = command.price == order.price && command.quantity.0 <= order.open;
        let rates = if priority_kept {
            order.rates
        } else {
            rates_of(&spec)
        };
        let new_hold = hold(&spec, order.side, command.price, command.quantity.0, rates)
            .ok_or(RejectReason::Overflow)?;
        let old_hold = hold(&spec, order.side, order.price, order.open, order.rates)
            .expect("an accepted order's hold fits");
        let asset = held_asset(&spec, order.side);
        let hold_increase = i128::from(new_hold) - i128::from(old_hold);
        if hold_increase > i128::from(self.available(order.account, asset)) {
            return Err(RejectReason::InsufficientFunds);
        }
        if !priority_kept
            && order.post_only
            && self
                .best_crossing(order.instrument, order.side, command.price)
                .is_some()
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        Ok(ReplacePlan {
            order,
            priority_kept,
            rates,
            asset,
            hold_increase,
        })
    }

    fn mass_cancel(&mut self, command: &MassCancel, events: &mut Vec<Event>) -> Handled {
        if !self.accounts.contains_key(&command.account) {
            return Err(RejectReason::UnknownAccount);
        }
        if let Some(instrument) = command.instrument
            && !self.instruments.contains_key(&instrument)
        {
            return Err(RejectReason::UnknownInstrument);
        }
        let targets: Vec<ModelOrder> = self
            .account_orders_oldest_first(command.account)
            .into_iter()
            .filter(|order| {
                command
                    .instrument
                    .is_none_or(|named| order.instrument == named)
            })
            .collect();
        for order in &targets {
            self.reduce_resting(order.order_id, order.open, CancelReason::MassCancel, events);
        }
        events.push(Event::MassCanceled {
            account: command.account,
            instrument: command.instrument,
            count: count_u32(targets.len()),
        });
        Ok(Status::Applied)
    }

    /// The open order a cancel or replace names: by user reference within
    /// the account, or by id (which must then be the account's).
    fn find_named_order(
        &self,
        account: AccountId,
        named: OrderRef,
    ) -> Result<ModelOrder, RejectReason> {
        match named {
            OrderRef::UserRef(user_ref_num) => self
                .all_resting()
                .find(|order| order.account == account && order.user_ref_num == user_ref_num)
                .copied()
                .ok_or(RejectReason::UnknownOrder),
            OrderRef::Id(order_id) => {
                let order = self.resting(order_id).ok_or(RejectReason::UnknownOrder)?;
                if order.account != account {
                    return Err(RejectReason::NotYourOrder);
                }
                Ok(order)
            }
        }
    }

    // -----------------------------------------------------------------------
    // Funding and account query.
    // -----------------------------------------------------------------------

    fn funding(&mut self, request: FundingRequest, events: &mut Vec<Event>) -> Handled {
        let account = *self
            .accounts
            .get(&request.account)
            .ok_or(RejectReason::UnknownAccount)?;
        if request.transfer_id <= account.last_transfer_id {
            let original = self.funding_records.iter().find(|record| {
                record.request.account == request.account
                    && record.request.transfer_id == request.transfer_id
            });
            return match original {
                Some(record) if record.request.same_fields(&request) => {
                    events.push(Event::FundingDuplicate {
                        kind: request.kind,
                        transfer_id: TransferId(request.transfer_id),
                        account: request.account,
                        original: record.result,
                    });
                    Ok(Status::Duplicate)
                }
                Some(_) => Err(RejectReason::TransferIdMismatch),
                None => Err(RejectReason::TransferIdNotIncreasing),
            };
        }
        self.account_mut(request.account).last_transfer_id = request.transfer_id;
        let result = self.funding_checks(&request, account.status);
        self.funding_records.push_back(FundingRecord {
            request,
            result: result.err(),
        });
        if self.funding_records.len() > self.config.transfer_records_max as usize {
            self.funding_records.pop_front();
        }
        result?;

        events.push(Event::FundingApplied {
            kind: request.kind,
            transfer_id: TransferId(request.transfer_id),
            account: request.account,
            to: request.to,
            asset: request.asset,
            amount: request.amount,
        });
        let amount = i128::from(request.amount);
        match request.kind {
            FundingKind::Deposit => {
                self.totals.entry(request.asset).or_default().deposited +=
                    u128::from(request.amount);
                self.change_balance(request.account, request.asset, amount, 0, events);
            }
            FundingKind::Withdrawal => {
                self.totals.entry(request.asset).or_default().withdrawn +=
                    u128::from(request.amount);
                self.change_balance(request.account, request.asset, -amount, 0, events);
            }
            FundingKind::Transfer => {
                self.change_balance(request.account, request.asset, -amount, 0, events);
                self.change_balance(request.to, request.asset, amount, 0, events);
            }
        }
        Ok(Status::Applied)
    }

    /// The checks after the transfer id was consumed.
    fn funding_checks(
        &self,
        request: &FundingRequest,
        status: AccountStatus,
    ) -> Result<(), RejectReason> {
        if status == AccountStatus::Suspended {
            return Err(RejectReason::AccountSuspended);
        }
        if request.kind == FundingKind::Transfer {
            let to = self
                .accounts
                .get(&request.to)
                .ok_or(RejectReason::UnknownAccount)?;
            if request.to == request.account {
                return Err(RejectReason::SameAccount);
            }
            if to.status == AccountStatus::Suspended {
                return Err(RejectReason::AccountSuspended);
            }
        }
        if !self.assets.contains_key(&request.asset) {
            return Err(RejectReason::UnknownAsset);
        }
        if request.amount == 0 {
            return Err(RejectReason::InvalidAmount);
        }
        match request.kind {
            FundingKind::Deposit => {
                let supply = self
                    .totals
                    .get(&request.asset)
                    .map_or(0, AssetTotals::supply);
                if supply + u128::from(request.amount) > u128::from(u64::MAX) {
                    return Err(RejectReason::Overflow);
                }
            }
            FundingKind::Withdrawal | FundingKind::Transfer => {
                if request.amount > self.available(request.account, request.asset) {
                    return Err(RejectReason::InsufficientFunds);
                }
            }
        }
        Ok(())
    }

    /// `UnknownAccount`; then, for a non-zero reference, `DuplicateUserRefNum`
    /// or the reference consumed (whatever the account's status); then
    /// always `GatewayRejected`.
    fn gateway_reject(&mut self, command: &GatewayReject) -> Handled {
        if !self.accounts.contains_key(&command.account) {
            return Err(RejectReason::UnknownAccount);
        }
        if command.user_ref_num.0 != 0 {
            self.consume_user_ref_num(command.account, command.user_ref_num)?;
        }
        Err(RejectReason::GatewayRejected)
    }

    fn account_query(&mut self, command: &AccountQuery, events: &mut Vec<Event>) -> Handled {
        let account = *self
            .accounts
            .get(&command.account)
            .ok_or(RejectReason::UnknownAccount)?;
        events.push(Event::AccountState {
            account: command.account,
            status: account.status,
            last_user_ref_num: UserRefNum(account.last_user_ref_num),
            last_transfer_id: TransferId(account.last_transfer_id),
        });
        for asset in self.assets.keys() {
            let balance = self
                .balances
                .get(&(command.account, *asset))
                .copied()
                .unwrap_or_default();
            events.push(Event::BalanceReport {
                account: command.account,
                asset: *asset,
                available: balance.available,
                held: balance.held,
            });
        }
        Ok(Status::Applied)
    }

    // -----------------------------------------------------------------------
    // Admin.
    // -----------------------------------------------------------------------

    fn admin(&mut self, command: &AdminCommand, events: &mut Vec<Event>) -> Handled {
        match *command {
            AdminCommand::CreateAsset {
                asset,
                symbol,
                scale,
            } => {
                self.create_asset(asset, symbol, scale)?;
                events.push(Event::AssetCreated {
                    asset,
                    symbol,
                    scale,
                });
            }
            AdminCommand::CreateAccount { account } => {
                if account.0 >= self.config.accounts_max {
                    return Err(RejectReason::CapacityExceeded);
                }
                if self.accounts.contains_key(&account) {
                    return Err(RejectReason::AlreadyExists);
                }
                self.accounts.insert(account, AccountRecord::new());
                events.push(Event::AccountCreated { account });
            }
            AdminCommand::SetAccountStatus { account, status } => {
                self.accounts
                    .get_mut(&account)
                    .ok_or(RejectReason::UnknownAccount)?
                    .status = status;
                events.push(Event::AccountStatusChanged { account, status });
            }
            AdminCommand::CreateInstrument { instrument, spec } => {
                self.create_instrument(instrument, spec)?;
                events.push(Event::InstrumentCreated { instrument, spec });
            }
            AdminCommand::UpdateInstrument { instrument, update } => {
                let record = self
                    .instruments
                    .get(&instrument)
                    .ok_or(RejectReason::UnknownInstrument)?;
                let spec = spec_with_update(&record.spec, &update);
                self.check_spec(&spec)?;
                self.check_ladder_span(instrument, &spec)?;
                self.record_mut(instrument).spec = spec;
                events.push(Event::InstrumentUpdated { instrument, update });
            }
            AdminCommand::SetTradingStatus { instrument, status } => {
                self.instruments
                    .get_mut(&instrument)
                    .ok_or(RejectReason::UnknownInstrument)?
                    .status = status;
                events.push(Event::TradingStatusChanged { instrument, status });
            }
            AdminCommand::EndOfDay => self.end_of_day(events),
        }
        Ok(Status::Applied)
    }

    fn create_asset(
        &mut self,
        asset: AssetId,
        symbol: Symbol,
        scale: u8,
    ) -> Result<(), RejectReason> {
        if asset.0 >= self.config.assets_max {
            return Err(RejectReason::CapacityExceeded);
        }
        if self.assets.contains_key(&asset)
            || self.assets.values().any(|known| known.symbol == symbol)
        {
            return Err(RejectReason::AlreadyExists);
        }
        if scale > ASSET_SCALE_MAX {
            return Err(RejectReason::InvalidSpec);
        }
        self.assets.insert(asset, Asset { symbol, scale });
        self.totals.insert(asset, AssetTotals::default());
        Ok(())
    }

    fn create_instrument(
        &mut self,
        instrument: InstrumentId,
        spec: InstrumentSpec,
    ) -> Result<(), RejectReason> {
        if instrument.0 >= self.config.instruments_max {
            return Err(RejectReason::CapacityExceeded);
        }
        if self.instruments.contains_key(&instrument)
            || self
                .instruments
                .values()
                .any(|known| known.spec.symbol == spec.symbol)
        {
            return Err(RejectReason::AlreadyExists);
        }
        if !self.assets.contains_key(&spec.base) || !self.assets.contains_key(&spec.quote) {
            return Err(RejectReason::UnknownAsset);
        }
        self.check_spec(&spec)?;
        self.instruments.insert(
            instrument,
            InstrumentRecord {
                spec,
                status: TradingStatus::Open,
                orders: Vec::new(),
            },
        );
        Ok(())
    }

    /// `InvalidSpec`, then `BandTooWide`.
    fn check_spec(&self, spec: &InstrumentSpec) -> Result<(), RejectReason> {
        if !spec_is_valid(spec) {
            return Err(RejectReason::InvalidSpec);
        }
        let band = band(spec).expect("a valid spec has a band");
        if band_levels(band, spec.tick_size) > u128::from(self.config.price_levels_max) {
            return Err(RejectReason::BandTooWide);
        }
        Ok(())
    }

    /// `BandTooWide` when the new band and every resting order's price span
    /// more than `price_levels_max` levels (the book's one ladder must cover
    /// them all).
    fn check_ladder_span(
        &self,
        instrument: InstrumentId,
        spec: &InstrumentSpec,
    ) -> Result<(), RejectReason> {
        let band = band(spec).expect("a valid spec has a band");
        let prices = [Side::Buy, Side::Sell]
            .into_iter()
            .flat_map(|side| self.book_orders(instrument, side))
            .map(|order| order.price);
        let low = prices.clone().fold(band.low, Price::min);
        let high = prices.fold(band.high, Price::max);
        let span = PriceBand { low, high };
        if band_levels(span, spec.tick_size) > u128::from(self.config.price_levels_max) {
            return Err(RejectReason::BandTooWide);
        }
        Ok(())
    }

    /// Cancels every Day order: instruments in id order, bids then asks,
    /// best price first, oldest first.
    fn end_of_day(&mut self, events: &mut Vec<Event>) {
        let mut count = 0;
        let instruments: Vec<InstrumentId> = self.instruments.keys().copied().collect();
        for instrument in instruments {
            for side in [Side::Buy, Side::Sell] {
                for order in self.sorted_side(instrument, side) {
                    if order.time_in_force == TimeInForce::Day {
                        self.reduce_resting(
                            order.order_id,
                            order.open,
                            CancelReason::EndOfDay,
                            events,
                        );
                        count += 1;
                    }
                }
            }
        }
        events.push(Event::EndOfDay {
            count: count_u32(count),
        });
    }

    // -----------------------------------------------------------------------
    // Small helpers over the state.
    // -----------------------------------------------------------------------

    /// `UnknownAccount`, then `DuplicateUserRefNum`; consumes the reference
    /// when it passes. Returns the account as it was before.
    fn consume_user_ref_num(
        &mut self,
        account: AccountId,
        user_ref_num: UserRefNum,
    ) -> Result<AccountRecord, RejectReason> {
        let record = *self
            .accounts
            .get(&account)
            .ok_or(RejectReason::UnknownAccount)?;
        if user_ref_num.0 <= record.last_user_ref_num {
            return Err(RejectReason::DuplicateUserRefNum);
        }
        self.account_mut(account).last_user_ref_num = user_ref_num.0;
        Ok(record)
    }

    fn take_order_id(&mut self) -> OrderId {
        let order_id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        order_id
    }

    /// Adds the deltas to a balance (checking it stays a valid `u64`) and
    /// writes the `BalanceChanged` event with the new values.
    fn change_balance(
        &mut self,
        account: AccountId,
        asset: AssetId,
        available_delta: i128,
        held_delta: i128,
        events: &mut Vec<Event>,
    ) {
        assert!(
            self.accounts.contains_key(&account),
            "balance of an existing account"
        );
        assert!(
            self.assets.contains_key(&asset),
            "balance of an existing asset"
        );
        let balance = self.balances.entry((account, asset)).or_default();
        let available = i128::from(balance.available) + available_delta;
        let held = i128::from(balance.held) + held_delta;
        // Invariant (the spec's): balances never go negative, and supply fits
        // u64 so no balance can pass it.
        balance.available = u64::try_from(available).unwrap_or_else(|_| {
            panic!("model: available of {account:?}/{asset:?} became {available}")
        });
        balance.held = u64::try_from(held)
            .unwrap_or_else(|_| panic!("model: held of {account:?}/{asset:?} became {held}"));
        events.push(Event::BalanceChanged {
            account,
            asset,
            available: balance.available,
            held: balance.held,
        });
    }

    fn available(&self, account: AccountId, asset: AssetId) -> u64 {
        self.balances
            .get(&(account, asset))
            .map_or(0, |balance| balance.available)
    }

    fn account_mut(&mut self, account: AccountId) -> &mut AccountRecord {
        // Invariant: callers checked the account exists.
        self.accounts.get_mut(&account).expect("the account exists")
    }

    fn spec(&self, instrument: InstrumentId) -> InstrumentSpec {
        // Invariant: orders exist only on existing instruments.
        self.instruments[&instrument].spec
    }

    fn record_mut(&mut self, instrument: InstrumentId) -> &mut InstrumentRecord {
        // Invariant: callers name an existing instrument.
        self.instruments
            .get_mut(&instrument)
            .expect("the instrument exists")
    }

    fn all_resting(&self) -> impl Iterator<Item = &ModelOrder> + '_ {
        self.instruments
            .values()
            .flat_map(|record| record.orders.iter())
    }

    fn resting(&self, order_id: OrderId) -> Option<ModelOrder> {
        self.all_resting()
            .find(|order| order.order_id == order_id)
            .copied()
    }

    fn resting_mut(&mut self, order_id: OrderId) -> &mut ModelOrder {
        self.instruments
            .values_mut()
            .flat_map(|record| record.orders.iter_mut())
            .find(|order| order.order_id == order_id)
            // Invariant: callers name an order they found resting.
            .expect("the order rests")
    }

    /// Sets a resting order's open quantity; at 0 it leaves the book.
    fn set_resting_open(&mut self, order_id: OrderId, open: u64) {
        if open > 0 {
            self.resting_mut(order_id).open = open;
            return;
        }
        for record in self.instruments.values_mut() {
            record.orders.retain(|order| order.order_id != order_id);
        }
    }

    fn open_order_count(&self) -> u64 {
        self.all_resting().count() as u64
    }

    /// One side of a book in priority order.
    fn sorted_side(&self, instrument: InstrumentId, side: Side) -> Vec<ModelOrder> {
        let Some(record) = self.instruments.get(&instrument) else {
            return Vec::new();
        };
        let mut orders: Vec<ModelOrder> = record
            .orders
            .iter()
            .filter(|order| order.side == side)
            .copied()
            .collect();
        orders.sort_by(|a, b| priority(side, a, b));
        orders
    }

    /// The first order in priority on the side opposite `incoming_side`, if
    /// it crosses `limit`.
    fn best_crossing(
        &self,
        instrument: InstrumentId,
        incoming_side: Side,
        limit: Price,
    ) -> Option<ModelOrder> {
        let best = self
            .sorted_side(instrument, incoming_side.opposite())
            .into_iter()
            .next()?;
        crosses(incoming_side, limit, best.price).then_some(best)
    }

    fn account_orders_oldest_first(&self, account: AccountId) -> Vec<ModelOrder> {
        let mut orders: Vec<ModelOrder> = self
            .all_resting()
            .filter(|order| order.account == account)
            .copied()
            .collect();
        orders.sort_by_key(|order| order.arrival);
        orders
    }

    // -----------------------------------------------------------------------
    // Read access, mirroring the engine's public views.
    // -----------------------------------------------------------------------

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Every asset, in id order.
    pub fn assets(&self) -> Vec<(AssetId, Asset)> {
        self.assets
            .iter()
            .map(|(id, asset)| (*id, *asset))
            .collect()
    }

    pub fn asset(&self, asset: AssetId) -> Option<Asset> {
        self.assets.get(&asset).copied()
    }

    pub fn asset_totals(&self, asset: AssetId) -> Option<AssetTotals> {
        self.assets
            .contains_key(&asset)
            .then(|| self.totals.get(&asset).copied().unwrap_or_default())
    }

    /// Every account, in id order.
    pub fn accounts(&self) -> Vec<AccountId> {
        self.accounts.keys().copied().collect()
    }

    pub fn account_status(&self, account: AccountId) -> Option<AccountStatus> {
        self.accounts.get(&account).map(|record| record.status)
    }

    pub fn last_user_ref_num(&self, account: AccountId) -> Option<UserRefNum> {
        self.accounts
            .get(&account)
            .map(|record| UserRefNum(record.last_user_ref_num))
    }

    pub fn last_transfer_id(&self, account: AccountId) -> Option<TransferId> {
        self.accounts
            .get(&account)
            .map(|record| TransferId(record.last_transfer_id))
    }

    /// An account's balance of an asset, if both exist.
    pub fn balance(&self, account: AccountId, asset: AssetId) -> Option<Balance> {
        if !self.accounts.contains_key(&account) || !self.assets.contains_key(&asset) {
            return None;
        }
        Some(
            self.balances
                .get(&(account, asset))
                .copied()
                .unwrap_or_default(),
        )
    }

    /// Every instrument, in id order.
    pub fn instruments(&self) -> Vec<InstrumentId> {
        self.instruments.keys().copied().collect()
    }

    pub fn instrument(&self, instrument: InstrumentId) -> Option<InstrumentView> {
        let record = self.instruments.get(&instrument)?;
        Some(InstrumentView {
            spec: record.spec,
            band: band(&record.spec).expect("a stored spec has a band"),
            status: record.status,
        })
    }

    /// One side of a book in priority order: best price first, then oldest.
    pub fn book_orders(&self, instrument: InstrumentId, side: Side) -> Vec<OrderView> {
        self.sorted_side(instrument, side)
            .iter()
            .map(ModelOrder::view)
            .collect()
    }

    /// One side of a book by price level, best first: (price, open quantity,
    /// number of orders).
    pub fn depth(&self, instrument: InstrumentId, side: Side) -> Vec<(Price, Quantity, u32)> {
        let mut levels: Vec<(Price, Quantity, u32)> = Vec::new();
        for order in self.sorted_side(instrument, side) {
            match levels.last_mut() {
                Some((price, quantity, count)) if *price == order.price => {
                    quantity.0 += order.open;
                    *count += 1;
                }
                _ => levels.push((order.price, Quantity(order.open), 1)),
            }
        }
        levels
    }

    pub fn best_bid(&self, instrument: InstrumentId) -> Option<(Price, Quantity)> {
        self.depth(instrument, Side::Buy)
            .first()
            .map(|(price, quantity, _)| (*price, *quantity))
    }

    pub fn best_ask(&self, instrument: InstrumentId) -> Option<(Price, Quantity)> {
        self.depth(instrument, Side::Sell)
            .first()
            .map(|(price, quantity, _)| (*price, *quantity))
    }

    /// An account's open orders, oldest first.
    pub fn account_orders(&self, account: AccountId) -> Vec<OrderView> {
        self.account_orders_oldest_first(account)
            .iter()
            .map(ModelOrder::view)
            .collect()
    }

    /// Every open order, by instrument then arrival.
    pub fn open_order_views(&self) -> Vec<OrderView> {
        let mut orders: Vec<&ModelOrder> = self.all_resting().collect();
        orders.sort_by_key(|order| (order.instrument, order.arrival));
        orders.into_iter().map(ModelOrder::view).collect()
    }

    pub fn open_orders(&self) -> u32 {
        count_u32(self.all_resting().count())
    }

    pub fn order_by_id(&self, order_id: OrderId) -> Option<OrderView> {
        self.resting(order_id).map(|order| order.view())
    }

    /// An open order of `account`, by its user reference.
    pub fn order_by_user_ref(
        &self,
        account: AccountId,
        user_ref_num: UserRefNum,
    ) -> Option<OrderView> {
        self.all_resting()
            .find(|order| order.account == account && order.user_ref_num == user_ref_num)
            .map(ModelOrder::view)
    }

    /// The state commands change, for telling whether one changed anything.
    pub fn snapshot(&self) -> ModelSnapshot {
        let balances = self
            .balances
            .iter()
            .filter(|(_, balance)| **balance != Balance::default())
            .map(|(key, balance)| (*key, *balance))
            .collect();
        ModelSnapshot {
            assets: self.assets.clone(),
            accounts: self.accounts.clone(),
            balances,
            instruments: self.instruments.clone(),
            totals: self.totals.clone(),
        }
    }

    /// Audits the model's own state against the spec's invariants.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_supply()?;
        self.check_holds()?;
        for (instrument, record) in &self.instruments {
            if let (Some((bid, _)), Some((ask, _))) =
                (self.best_bid(*instrument), self.best_ask(*instrument))
                && bid >= ask
            {
                return Err(format!(
                    "book {instrument:?} crossed: bid {bid:?} ≥ ask {ask:?}"
                ));
            }
            if let Some(order) = record.orders.iter().find(|order| order.open == 0) {
                return Err(format!(
                    "order {:?} rests with nothing open",
                    order.order_id
                ));
            }
        }
        if self.open_order_count() > u64::from(self.config.orders_max) {
            return Err(format!(
                "{} orders rest, above orders_max",
                self.open_order_count()
            ));
        }
        Ok(())
    }

    /// Per asset, Σ available + Σ held = Σ deposits − Σ withdrawals.
    fn check_supply(&self) -> Result<(), String> {
        for asset in self.assets.keys() {
            let held_by_accounts: u128 = self
                .balances
                .iter()
                .filter(|((_, balance_asset), _)| balance_asset == asset)
                .map(|(_, balance)| u128::from(balance.available) + u128::from(balance.held))
                .sum();
            let supply = self.totals.get(asset).map_or(0, AssetTotals::supply);
            if held_by_accounts != supply {
                return Err(format!(
                    "asset {asset:?}: balances sum to {held_by_accounts}, supply is {supply}"
                ));
            }
        }
        Ok(())
    }

    /// Every account's held amount equals the holds of its open orders.
    fn check_holds(&self) -> Result<(), String> {
        let mut required: BTreeMap<(AccountId, AssetId), u128> = BTreeMap::new();
        for order in self.all_resting() {
            let spec = self.spec(order.instrument);
            let amount = hold(&spec, order.side, order.price, order.open, order.rates)
                .ok_or_else(|| format!("order {:?}: hold overflows", order.order_id))?;
            *required
                .entry((order.account, held_asset(&spec, order.side)))
                .or_default() += u128::from(amount);
        }
        for (key, balance) in &self.balances {
            let expected = required.get(key).copied().unwrap_or(0);
            if u128::from(balance.held) != expected {
                return Err(format!(
                    "{key:?}: held {} but open orders require {expected}",
                    balance.held
                ));
            }
        }
        if let Some(key) = required.keys().find(|key| !self.balances.contains_key(key)) {
            return Err(format!(
                "{key:?}: orders require a hold but nothing is held"
            ));
        }
        Ok(())
    }
}

impl AccountRecord {
    fn new() -> AccountRecord {
        AccountRecord {
            status: AccountStatus::Active,
            last_user_ref_num: 0,
            last_transfer_id: 0,
        }
    }
}

impl FundingRequest {
    fn deposit(command: &Deposit) -> FundingRequest {
        FundingRequest {
            kind: FundingKind::Deposit,
            account: command.account,
            to: command.account,
            asset: command.asset,
            amount: command.amount,
            transfer_id: command.transfer_id.0,
        }
    }

    fn withdrawal(command: &Withdrawal) -> FundingRequest {
        FundingRequest {
            kind: FundingKind::Withdrawal,
            account: command.account,
            to: command.account,
            asset: command.asset,
            amount: command.amount,
            transfer_id: command.transfer_id.0,
        }
    }

    fn transfer(command: &Transfer) -> FundingRequest {
        FundingRequest {
            kind: FundingKind::Transfer,
            account: command.from,
            to: command.to,
            asset: command.asset,
            amount: command.amount,
            transfer_id: command.transfer_id.0,
        }
    }
}

/// `PriceOffTick`, then `PriceOutsideBand`.
fn check_limit_price(
    spec: &InstrumentSpec,
    band: PriceBand,
    price: Price,
) -> Result<(), RejectReason> {
    if price.0 % spec.tick_size.0 != 0 {
        return Err(RejectReason::PriceOffTick);
    }
    if price < band.low || price > band.high {
        return Err(RejectReason::PriceOutsideBand);
    }
    Ok(())
}

/// A market order's limit: the protection price clamped to the band's far
/// edge, or that edge. A protection price below 1 is `PriceOutsideBand`.
fn effective_protection(
    side: Side,
    band: PriceBand,
    protection: Option<Price>,
) -> Result<Price, RejectReason> {
    if let Some(price) = protection
        && price.0 < 1
    {
        return Err(RejectReason::PriceOutsideBand);
    }
    Ok(match (side, protection) {
        (Side::Buy, Some(price)) => price.min(band.high),
        (Side::Buy, None) => band.high,
        (Side::Sell, Some(price)) => price.max(band.low),
        (Side::Sell, None) => band.low,
    })
}

/// `QuantityOffLot`, then `QuantityOutOfRange`.
fn check_quantity(spec: &InstrumentSpec, quantity: Quantity) -> Result<(), RejectReason> {
    if !quantity.0.is_multiple_of(spec.lot_size.0) {
        return Err(RejectReason::QuantityOffLot);
    }
    if quantity < spec.min_quantity || quantity > spec.max_quantity {
        return Err(RejectReason::QuantityOutOfRange);
    }
    Ok(())
}

/// The `reference` of a command's `Rejected` event.
fn reference_of(command: &Command) -> u64 {
    match command {
        Command::NewOrder(order) => order.user_ref_num.0,
        Command::CancelOrder(cancel) => match cancel.order {
            OrderRef::UserRef(user_ref_num) => user_ref_num.0,
            OrderRef::Id(order_id) => order_id.0,
        },
        Command::ReplaceOrder(replace) => replace.new_user_ref_num.0,
        Command::Deposit(deposit) => deposit.transfer_id.0,
        Command::Withdrawal(withdrawal) => withdrawal.transfer_id.0,
        Command::Transfer(transfer) => transfer.transfer_id.0,
        Command::GatewayReject(reject) => reject.user_ref_num.0,
        Command::MassCancel(_) | Command::AccountQuery(_) | Command::Admin(_) => 0,
    }
}

fn count_u32(count: usize) -> u32 {
    // Invariant: counts are of resting orders, at most orders_max (a u32).
    u32::try_from(count).expect("a count of orders fits u32")
}

#[cfg(test)]
mod tests {
    //! The model against examples worked out by hand from `docs/engine.md`,
    //! so that a misreading of the spec shared by the model and the engine
    //! would still be caught here.

    use super::*;

    const USD: AssetId = AssetId(0);
    const ACME: AssetId = AssetId(1);
    const FEES: AccountId = AccountId(0);
    const ALICE: AccountId = AccountId(1);
    const BOB: AccountId = AccountId(2);
    const BOOK: InstrumentId = InstrumentId(0);

    struct Harness {
        model: ReferenceModel,
        sequence: u64,
    }

    impl Harness {
        /// USD (scale 4) and ACME (scale 0); Alice with 100 000 USD minor
        /// units, Bob with 50 ACME; ACME/USD with tick 5, band ±10 % around
        /// 1 000, maker 10 bps and taker 25 bps.
        fn new(transfer_records_max: u32) -> Harness {
            let config = EngineConfig {
                accounts_max: 4,
                assets_max: 2,
                instruments_max: 1,
                orders_max: 8,
                price_levels_max: 100,
                transfer_records_max,
                fee_account: FEES,
            };
            let mut harness = Harness {
                model: ReferenceModel::new(&config),
                sequence: 0,
            };
            let spec = InstrumentSpec {
                symbol: Symbol::new("ACME").unwrap(),
                base: ACME,
                quote: USD,
                quantity_unit: 1,
                tick_size: Price(5),
                lot_size: Quantity(1),
                min_quantity: Quantity(1),
                max_quantity: Quantity(100),
                reference_price: Price(1_000),
                band_bps: 1_000,
                maker_fee_bps: 10,
                taker_fee_bps: 25,
            };
            for command in [
                AdminCommand::CreateAsset {
                    asset: USD,
                    symbol: Symbol::new("USD").unwrap(),
                    scale: 4,
                },
                AdminCommand::CreateAsset {
                    asset: ACME,
                    symbol: Symbol::new("ACME").unwrap(),
                    scale: 0,
                },
                AdminCommand::CreateAccount { account: ALICE },
                AdminCommand::CreateAccount { account: BOB },
                AdminCommand::CreateInstrument {
                    instrument: BOOK,
                    spec,
                },
            ] {
                assert_eq!(harness.apply(Command::Admin(command)).0, Status::Applied);
            }
            harness.deposit(ALICE, USD, 100_000, 1);
            harness.deposit(BOB, ACME, 50, 1);
            harness
        }

        fn apply(&mut self, command: Command) -> (Status, Vec<Event>) {
            self.sequence += 1;
            let header = CommandHeader {
                sequence: self.sequence,
                timestamp_ns: 0,
            };
            let outcome = self.model.apply(header, &command);
            self.model.check_invariants().unwrap();
            outcome
        }

        fn deposit(
            &mut self,
            account: AccountId,
            asset: AssetId,
            amount: u64,
            transfer_id: u64,
        ) -> (Status, Vec<Event>) {
            self.apply(Command::Deposit(Deposit {
                account,
                asset,
                amount,
                transfer_id: TransferId(transfer_id),
            }))
        }

        /// A limit order; `terms` are (side, price, quantity).
        fn order(
            &mut self,
            account: AccountId,
            user_ref_num: u64,
            terms: (Side, i64, u64),
            time_in_force: TimeInForce,
            self_trade: SelfTradePrevention,
        ) -> (Status, Vec<Event>) {
            let (side, price, quantity) = terms;
            self.apply(Command::NewOrder(NewOrder {
                account,
                user_ref_num: UserRefNum(user_ref_num),
                instrument: BOOK,
                side,
                price: OrderPrice::Limit(Price(price)),
                quantity: Quantity(quantity),
                time_in_force,
                post_only: false,
                self_trade,
            }))
        }
    }

    fn changed(account: AccountId, asset: AssetId, available: u64, held: u64) -> Event {
        Event::BalanceChanged {
            account,
            asset,
            available,
            held,
        }
    }

    #[test]
    fn band_rounds_inward_and_never_below_one_tick() {
        let mut spec = InstrumentSpec {
            symbol: Symbol::new("X").unwrap(),
            base: ACME,
            quote: USD,
            quantity_unit: 1,
            tick_size: Price(100),
            lot_size: Quantity(1),
            min_quantity: Quantity(1),
            max_quantity: Quantity(1),
            reference_price: Price(300),
            band_bps: 5_000,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
        };
        // width 150: [150, 450] rounded inward to ticks of 100.
        assert_eq!(
            band(&spec),
            Some(PriceBand {
                low: Price(200),
                high: Price(400)
            })
        );
        // width 300: [0, 600], the low end clamped to one tick.
        spec.band_bps = 10_000;
        assert_eq!(
            band(&spec),
            Some(PriceBand {
                low: Price(100),
                high: Price(600)
            })
        );
        assert_eq!(band_levels(band(&spec).unwrap(), spec.tick_size), 6);
        spec.reference_price = Price(i64::MAX / 100 * 100);
        assert_eq!(band(&spec), None, "the high end passes i64::MAX");
        assert!(!spec_is_valid(&spec));
    }

    #[test]
    fn holds_and_fees_round_down() {
        let rates = FeeRates {
            maker_bps: 10,
            taker_bps: 25,
        };
        let spec = InstrumentSpec {
            symbol: Symbol::new("X").unwrap(),
            base: ACME,
            quote: USD,
            quantity_unit: 7,
            tick_size: Price(1),
            lot_size: Quantity(1),
            min_quantity: Quantity(1),
            max_quantity: Quantity(1),
            reference_price: Price(1),
            band_bps: 0,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
        };
        // 1 010 × 4 = 4 040, plus floor(4 040 × 25 / 10 000) = 10.
        assert_eq!(hold(&spec, Side::Buy, Price(1_010), 4, rates), Some(4_050));
        assert_eq!(hold(&spec, Side::Sell, Price(1_010), 4, rates), Some(28));
        assert_eq!(hold(&spec, Side::Buy, Price(i64::MAX), 3, rates), None);
        assert_eq!(fee(3_999, 25), 9);
        assert_eq!(fee(u64::MAX, 10_000), u64::MAX);
    }

    #[test]
    fn buy_taker_settles_as_in_the_spec_table() {
        let mut harness = Harness::new(4);
        let (status, _) = harness.order(
            BOB,
            1,
            (Side::Sell, 1_000, 10),
            TimeInForce::GoodTillCancel,
            SelfTradePrevention::None,
        );
        assert_eq!(status, Status::Applied);
        let (status, events) = harness.order(
            ALICE,
            1,
            (Side::Buy, 1_010, 4),
            TimeInForce::ImmediateOrCancel,
            SelfTradePrevention::None,
        );
        assert_eq!(status, Status::Applied);
        // Hold 4 050 (see above). Fill 4 at the maker's 1 000: N = 4 000, the
        // buyer (taker) pays floor(4 000 × 25 / 10 000) = 10, the seller
        // (maker) floor(4 000 × 10 / 10 000) = 4. The buyer gets back
        // 4 050 − 4 000 − 10 = 40.
        assert_eq!(
            events[1..],
            [
                changed(ALICE, USD, 95_950, 4_050),
                Event::Fill {
                    match_number: MatchNumber(1),
                    instrument: BOOK,
                    price: Price(1_000),
                    quantity: Quantity(4),
                    taker_side: Side::Buy,
                    maker_order_id: OrderId(1),
                    maker_account: BOB,
                    maker_user_ref_num: UserRefNum(1),
                    taker_order_id: OrderId(2),
                    taker_account: ALICE,
                    taker_user_ref_num: UserRefNum(1),
                },
                changed(ALICE, USD, 95_990, 0),
                changed(ALICE, ACME, 4, 0),
                changed(BOB, ACME, 40, 6),
                changed(BOB, USD, 3_996, 0),
                changed(FEES, USD, 14, 0),
            ]
        );
        assert!(matches!(
            events[0],
            Event::OrderAccepted {
                order_id: OrderId(2),
                market: false,
                ..
            }
        ));
        assert_eq!(
            harness.model.book_orders(BOOK, Side::Sell)[0].remaining,
            Quantity(6)
        );
    }

    #[test]
    fn fill_or_kill_meeting_an_own_order_is_killed_before_any_hold() {
        let mut harness = Harness::new(4);
        harness.deposit(BOB, USD, 100_000, 2);
        harness.order(
            BOB,
            1,
            (Side::Sell, 1_000, 10),
            TimeInForce::Day,
            SelfTradePrevention::None,
        );
        let (status, events) = harness.order(
            BOB,
            2,
            (Side::Buy, 1_000, 5),
            TimeInForce::FillOrKill,
            SelfTradePrevention::CancelNewest,
        );
        assert_eq!(status, Status::Applied);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            Event::OrderCanceled {
                order_id: OrderId(2),
                account: BOB,
                user_ref_num: UserRefNum(2),
                instrument: BOOK,
                side: Side::Buy,
                canceled: Quantity(5),
                remaining: Quantity(0),
                reason: CancelReason::FillOrKill,
            }
        );
        assert_eq!(
            harness.model.balance(BOB, USD),
            Some(Balance {
                available: 100_000,
                held: 0
            })
        );
        // With CancelOldest its own order is skipped: nothing else sells.
        let (_, events) = harness.order(
            BOB,
            3,
            (Side::Buy, 1_000, 5),
            TimeInForce::FillOrKill,
            SelfTradePrevention::CancelOldest,
        );
        assert!(matches!(
            events[1],
            Event::OrderCanceled {
                reason: CancelReason::FillOrKill,
                ..
            }
        ));
    }

    #[test]
    fn decrement_and_cancel_trades_nothing() {
        let mut harness = Harness::new(4);
        harness.deposit(BOB, USD, 100_000, 2);
        harness.order(
            BOB,
            1,
            (Side::Sell, 1_000, 5),
            TimeInForce::Day,
            SelfTradePrevention::None,
        );
        let (_, events) = harness.order(
            BOB,
            2,
            (Side::Buy, 1_000, 3),
            TimeInForce::Day,
            SelfTradePrevention::DecrementAndCancel,
        );
        // Hold 3 000 + floor(3 000 × 25 / 10 000) = 3 007.
        let maker = |canceled, remaining| Event::OrderCanceled {
            order_id: OrderId(1),
            account: BOB,
            user_ref_num: UserRefNum(1),
            instrument: BOOK,
            side: Side::Sell,
            canceled: Quantity(canceled),
            remaining: Quantity(remaining),
            reason: CancelReason::SelfTrade,
        };
        assert_eq!(
            events[1..],
            [
                changed(BOB, USD, 96_993, 3_007),
                maker(3, 2),
                changed(BOB, ACME, 48, 2),
                Event::OrderCanceled {
                    order_id: OrderId(2),
                    account: BOB,
                    user_ref_num: UserRefNum(2),
                    instrument: BOOK,
                    side: Side::Buy,
                    canceled: Quantity(3),
                    remaining: Quantity(0),
                    reason: CancelReason::SelfTrade,
                },
                changed(BOB, USD, 100_000, 0),
            ]
        );
        assert_eq!(
            harness.model.book_orders(BOOK, Side::Sell)[0].remaining,
            Quantity(2)
        );
    }

    #[test]
    fn rejected_order_still_consumes_its_user_ref_num() {
        let mut harness = Harness::new(4);
        let (status, events) = harness.order(
            ALICE,
            7,
            (Side::Buy, 1_002, 1),
            TimeInForce::Day,
            SelfTradePrevention::None,
        );
        assert_eq!(status, Status::Rejected(RejectReason::PriceOffTick));
        assert_eq!(
            events,
            [Event::Rejected {
                account: Some(ALICE),
                reference: 7,
                reason: RejectReason::PriceOffTick
            }]
        );
        assert_eq!(harness.model.last_user_ref_num(ALICE), Some(UserRefNum(7)));
        let (status, _) = harness.order(
            ALICE,
            7,
            (Side::Buy, 1_000, 1),
            TimeInForce::Day,
            SelfTradePrevention::None,
        );
        assert_eq!(status, Status::Rejected(RejectReason::DuplicateUserRefNum));
    }

    #[test]
    fn replace_keeps_priority_only_at_the_same_price_without_more_quantity() {
        let mut harness = Harness::new(4);
        harness.deposit(ALICE, ACME, 50, 2);
        harness.order(
            BOB,
            1,
            (Side::Sell, 1_000, 5),
            TimeInForce::Day,
            SelfTradePrevention::None,
        );
        harness.order(
            ALICE,
            1,
            (Side::Sell, 1_000, 5),
            TimeInForce::Day,
            SelfTradePrevention::None,
        );
        let replace = |order, new_user_ref_num, quantity| {
            Command::ReplaceOrder(ReplaceOrder {
                account: BOB,
                order,
                new_user_ref_num: UserRefNum(new_user_ref_num),
                price: Price(1_000),
                quantity: Quantity(quantity),
            })
        };
        let (_, events) = harness.apply(replace(OrderRef::UserRef(UserRefNum(1)), 2, 3));
        assert!(matches!(
            events[0],
            Event::OrderReplaced {
                priority_kept: true,
                new_order_id: OrderId(1),
                ..
            }
        ));
        assert_eq!(events[1], changed(BOB, ACME, 47, 3));
        assert_eq!(
            harness.model.book_orders(BOOK, Side::Sell)[0].order_id,
            OrderId(1)
        );
        let (_, events) = harness.apply(replace(OrderRef::Id(OrderId(1)), 3, 4));
        assert!(matches!(
            events[0],
            Event::OrderReplaced {
                priority_kept: false,
                new_order_id: OrderId(3),
                ..
            }
        ));
        assert_eq!(events[1], changed(BOB, ACME, 46, 4));
        let queue: Vec<OrderId> = harness
            .model
            .book_orders(BOOK, Side::Sell)
            .iter()
            .map(|order| order.order_id)
            .collect();
        assert_eq!(queue, [OrderId(2), OrderId(3)]);
    }

    #[test]
    fn funding_repeats_are_answered_from_the_records() {
        let mut harness = Harness::new(1);
        assert_eq!(harness.deposit(ALICE, USD, 5, 2).0, Status::Applied);
        let (status, events) = harness.deposit(ALICE, USD, 5, 2);
        assert_eq!(status, Status::Duplicate);
        assert_eq!(
            events,
            [Event::FundingDuplicate {
                kind: FundingKind::Deposit,
                transfer_id: TransferId(2),
                account: ALICE,
                original: None
            }]
        );
        assert_eq!(
            harness.deposit(ALICE, USD, 6, 2).0,
            Status::Rejected(RejectReason::TransferIdMismatch)
        );
        // Only one record is kept, so id 1 (Alice's setup deposit) is gone.
        assert_eq!(
            harness.deposit(ALICE, USD, 100_000, 1).0,
            Status::Rejected(RejectReason::TransferIdNotIncreasing)
        );
        let withdrawal = Command::Withdrawal(Withdrawal {
            account: ALICE,
            asset: USD,
            amount: 1 << 40,
            transfer_id: TransferId(3),
        });
        assert_eq!(
            harness.apply(withdrawal).0,
            Status::Rejected(RejectReason::InsufficientFunds)
        );
        let (status, events) = harness.apply(withdrawal);
        assert_eq!(status, Status::Duplicate);
        assert!(matches!(
            events[0],
            Event::FundingDuplicate {
                original: Some(RejectReason::InsufficientFunds),
                ..
            }
        ));
        assert_eq!(
            harness.model.balance(ALICE, USD),
            Some(Balance {
                available: 100_005,
                held: 0
            })
        );
    }
}
