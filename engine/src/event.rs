//! What applying a command produced: a status, and events in a fixed order.
//!
//! The events of one command are enough for the gateway to build its replies
//! (OUCH accepted / executed / canceled / replaced / rejected), for market
//! data to build ITCH (add, execute, cancel, delete, replace, directory,
//! trading action), and for an auditor to rebuild every balance: each change
//! of an `(account, asset)` balance is followed by a [`Event::BalanceChanged`]
//! carrying the new values. The order of events is part of the contract and
//! is specified in `docs/engine.md`.

use crate::instrument::{InstrumentSpec, InstrumentUpdate};
use crate::reject::RejectReason;
use crate::types::{
    AccountId, AccountStatus, AssetId, InstrumentId, MatchNumber, OrderId, Price, Quantity,
    SelfTradePrevention, Side, Symbol, TimeInForce, TradingStatus, TransferId, UserRefNum,
};

/// The result of one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The command was applied (an order may still have been cancelled at
    /// once, as an unfilled IOC or FOK is).
    Applied,
    /// A repeat of a funding command already applied or rejected with the
    /// same fields: nothing changed; the original result is in the event.
    Duplicate,
    /// Nothing changed, except that a valid client reference may have been
    /// consumed (and a funding rejection recorded for repeats).
    Rejected(RejectReason),
}

/// Why an open order was cancelled in whole or in part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The account asked (cancel or partial cancel).
    Requested,
    /// The rest of an IOC or market order.
    ImmediateOrCancel,
    /// An FOK order that could not fill whole.
    FillOrKill,
    /// Self-trade prevention.
    SelfTrade,
    /// A mass cancel of the account.
    MassCancel,
    /// The end-of-day command cancelled a Day order.
    EndOfDay,
}

/// Which funding command a funding event answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FundingKind {
    Deposit,
    Withdrawal,
    Transfer,
}

/// One thing that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The command was rejected. `reference` is the command's client
    /// reference (new `user_ref_num`, order reference, or transfer id), or 0.
    Rejected {
        /// The account the command acted for (`None` for admin commands).
        account: Option<AccountId>,
        reference: u64,
        reason: RejectReason,
    },
    /// A new order passed every check. For a market order `price` is its
    /// effective protection price.
    OrderAccepted {
        order_id: OrderId,
        account: AccountId,
        user_ref_num: UserRefNum,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        quantity: Quantity,
        time_in_force: TimeInForce,
        market: bool,
        post_only: bool,
        self_trade: SelfTradePrevention,
    },
    /// An order joined the book at the back of its price level with
    /// `quantity` open (after any fills on arrival).
    OrderBooked {
        order_id: OrderId,
        account: AccountId,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        quantity: Quantity,
    },
    /// A trade between a resting (maker) and an incoming (taker) order, at
    /// the maker's price.
    Fill {
        match_number: MatchNumber,
        instrument: InstrumentId,
        price: Price,
        quantity: Quantity,
        taker_side: Side,
        maker_order_id: OrderId,
        maker_account: AccountId,
        maker_user_ref_num: UserRefNum,
        taker_order_id: OrderId,
        taker_account: AccountId,
        taker_user_ref_num: UserRefNum,
    },
    /// `canceled` quantity of an order was cancelled; `remaining` is left open
    /// (0: the order is gone).
    OrderCanceled {
        order_id: OrderId,
        account: AccountId,
        user_ref_num: UserRefNum,
        instrument: InstrumentId,
        side: Side,
        canceled: Quantity,
        remaining: Quantity,
        reason: CancelReason,
    },
    /// An order was replaced. With `priority_kept` it stays in place with the
    /// same id and `quantity` open; otherwise it left the book and re-enters
    /// as `new_order_id` (followed by fills and `OrderBooked` as a new order).
    OrderReplaced {
        old_order_id: OrderId,
        new_order_id: OrderId,
        account: AccountId,
        old_user_ref_num: UserRefNum,
        new_user_ref_num: UserRefNum,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        quantity: Quantity,
        priority_kept: bool,
    },
    /// A mass cancel finished; `count` orders were cancelled.
    MassCanceled {
        account: AccountId,
        instrument: Option<InstrumentId>,
        count: u32,
    },
    /// An account's balance of an asset changed to these values.
    BalanceChanged {
        account: AccountId,
        asset: AssetId,
        available: u64,
        held: u64,
    },
    /// An account's balance of an asset, as reported by an account query
    /// (nothing changed).
    BalanceReport {
        account: AccountId,
        asset: AssetId,
        available: u64,
        held: u64,
    },
    /// A funding command was applied. `to` is the account credited by a
    /// transfer (equal to `account` otherwise).
    FundingApplied {
        kind: FundingKind,
        transfer_id: TransferId,
        account: AccountId,
        to: AccountId,
        asset: AssetId,
        amount: u64,
    },
    /// A repeat of a funding command with identical fields: nothing changed.
    /// `original` is the first result (`None`: it was applied).
    FundingDuplicate {
        kind: FundingKind,
        transfer_id: TransferId,
        account: AccountId,
        original: Option<RejectReason>,
    },
    /// The answer to an account query (followed by one `BalanceReport` per
    /// existing asset, in asset order).
    AccountState {
        account: AccountId,
        status: AccountStatus,
        last_user_ref_num: UserRefNum,
        last_transfer_id: TransferId,
    },
    /// An admin command created an asset.
    AssetCreated {
        asset: AssetId,
        symbol: Symbol,
        scale: u8,
    },
    /// An admin command created an account.
    AccountCreated { account: AccountId },
    /// An account was suspended or reactivated.
    AccountStatusChanged {
        account: AccountId,
        status: AccountStatus,
    },
    /// An admin command created an instrument (market data: a stock
    /// directory entry).
    InstrumentCreated {
        instrument: InstrumentId,
        spec: InstrumentSpec,
    },
    /// An instrument's reference, band, limits or fees changed.
    InstrumentUpdated {
        instrument: InstrumentId,
        update: InstrumentUpdate,
    },
    /// An instrument was halted or reopened (market data: a trading
    /// action).
    TradingStatusChanged {
        instrument: InstrumentId,
        status: TradingStatus,
    },
    /// The end-of-day command finished; `count` Day orders were cancelled.
    EndOfDay { count: u32 },
}

/// Where the engine writes events. Implemented for `Vec<Event>`; the engine
/// loop implements it over its output ring.
///
/// Writing cannot fail, and the number of events of one command grows with
/// the orders it touches: at most 7 per fill (the fill and its balance
/// changes), 2 per order cancelled or reduced (mass cancel and end of day
/// touch every matching order), and a few more per command. A sink over a
/// bounded ring must therefore drain while a command is being applied, or
/// stage a command's events elsewhere.
pub trait EventSink {
    /// Take one event, in order.
    fn push(&mut self, event: Event);
}

impl EventSink for Vec<Event> {
    #[inline]
    fn push(&mut self, event: Event) {
        Vec::push(self, event);
    }
}
