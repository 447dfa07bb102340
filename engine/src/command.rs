//! The commands the state machine applies, in the order the sequencer stamps
//! them. Every change of state, admin changes included, is a command, so the
//! journal of commands rebuilds the exact state.

use serde::{Deserialize, Serialize};

use crate::instrument::{InstrumentSpec, InstrumentUpdate};
use crate::types::{
    AccountId, AccountStatus, AssetId, InstrumentId, OrderId, Price, Quantity, SelfTradePrevention,
    Side, Symbol, TimeInForce, TradingStatus, TransferId, UserRefNum,
};

/// What the sequencer stamps on every command before it is journaled and
/// applied. Time comes from here only: the state machine reads no clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandHeader {
    /// Contiguous from 1.
    pub sequence: u64,
    /// Nanoseconds since the Unix epoch, as stamped by the sequencer.
    pub timestamp_ns: u64,
}

/// One command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Enter an order (OUCH Enter Order).
    NewOrder(NewOrder),
    /// Cancel an order whole or down to a quantity (OUCH Cancel Order).
    CancelOrder(CancelOrder),
    /// Cancel-replace an order (OUCH Replace Order).
    ReplaceOrder(ReplaceOrder),
    /// Cancel all of an account's orders, or those on one instrument.
    MassCancel(MassCancel),
    /// Funds enter the exchange.
    Deposit(Deposit),
    /// Funds leave the exchange.
    Withdrawal(Withdrawal),
    /// Funds move between two accounts.
    Transfer(Transfer),
    /// Report an account's state and balances.
    AccountQuery(AccountQuery),
    /// The gateway turned a client message away for a reason of its own.
    GatewayReject(GatewayReject),
    /// The operator's commands.
    Admin(AdminCommand),
}

/// The price of a new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderPrice {
    /// Trades at this price or better; rests at it.
    Limit(Price),
    /// Trades at any price up to the protection price (a buy) or down to it (a
    /// sell), and never beyond the price band; never rests. Without a
    /// protection price the band's edge is the protection.
    Market { protection: Option<Price> },
}

/// Enter an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    /// The account the order trades for.
    pub account: AccountId,
    /// Must be above the account's last one.
    pub user_ref_num: UserRefNum,
    pub instrument: InstrumentId,
    pub side: Side,
    pub price: OrderPrice,
    /// In quantity units; a multiple of the lot within the limits.
    pub quantity: Quantity,
    pub time_in_force: TimeInForce,
    /// Rejected rather than trade on arrival.
    pub post_only: bool,
    /// What happens if it would trade with the same account's order.
    pub self_trade: SelfTradePrevention,
}

/// How a command names an existing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderRef {
    /// By the client's reference, within the commanding account.
    UserRef(UserRefNum),
    /// By the engine's order id, which may belong to any account.
    Id(OrderId),
}

/// Cancel an order down to `quantity` open (OUCH semantics: 0 cancels it
/// whole; a partial cancel keeps time priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrder {
    pub account: AccountId,
    pub order: OrderRef,
    /// The open quantity to leave; must be below the current open quantity.
    pub quantity: Quantity,
}

/// Cancel-replace: the order gets a new `user_ref_num`, price and open
/// quantity. The same price with no more quantity keeps time priority and
/// the order id; otherwise the order gets a new id at the back of the queue
/// (and may trade on arrival, like a new order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceOrder {
    pub account: AccountId,
    pub order: OrderRef,
    pub new_user_ref_num: UserRefNum,
    pub price: Price,
    /// The new open quantity.
    pub quantity: Quantity,
}

/// Cancel every open order of an account, or those on one instrument (a kill
/// switch). Allowed for a suspended account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassCancel {
    pub account: AccountId,
    pub instrument: Option<InstrumentId>,
}

/// Credit an account from outside the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub account: AccountId,
    pub asset: AssetId,
    pub amount: u64,
    pub transfer_id: TransferId,
}

/// Debit an account's available balance to outside the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    pub account: AccountId,
    pub asset: AssetId,
    pub amount: u64,
    pub transfer_id: TransferId,
}

/// Move an amount of one asset from one account's available balance to
/// another's. The transfer id is scoped to `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: AccountId,
    pub to: AccountId,
    pub asset: AssetId,
    pub amount: u64,
    pub transfer_id: TransferId,
}

/// Report an account's status, last `user_ref_num` and every balance. Changes
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountQuery {
    pub account: AccountId,
}

/// The gateway turned a client message away for a reason of its own (for
/// example an unsupported OUCH option or an unknown symbol); journaling it
/// keeps the reply in the replayable record and consumes the client's
/// reference. Always rejected (`GatewayRejected`), after consuming a non-zero
/// `user_ref_num` that is above the account's last one (a suspended account
/// consumes too); a zero `user_ref_num` consumes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayReject {
    pub account: AccountId,
    /// The client's reference, 0 if the message carried none.
    pub user_ref_num: UserRefNum,
}

/// The operator's commands. They are ordinary commands: journaled and
/// replayed like any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminCommand {
    CreateAsset {
        asset: AssetId,
        symbol: Symbol,
        /// Decimal places of one minor unit (USD with 4: one unit is 0.0001).
        scale: u8,
    },
    CreateAccount {
        account: AccountId,
    },
    SetAccountStatus {
        account: AccountId,
        status: AccountStatus,
    },
    CreateInstrument {
        instrument: InstrumentId,
        spec: InstrumentSpec,
    },
    /// Change the reference price, band, quantity limits or fees. Tick, lot,
    /// quantity unit and assets never change.
    UpdateInstrument {
        instrument: InstrumentId,
        update: InstrumentUpdate,
    },
    SetTradingStatus {
        instrument: InstrumentId,
        status: TradingStatus,
    },
    /// Cancel every Day order on every instrument.
    EndOfDay,
}

impl Command {
    /// The account whose own order or funds the command acts on, if any (the
    /// `from` account of a transfer).
    pub fn account(&self) -> Option<AccountId> {
        match self {
            Command::NewOrder(c) => Some(c.account),
            Command::CancelOrder(c) => Some(c.account),
            Command::ReplaceOrder(c) => Some(c.account),
            Command::MassCancel(c) => Some(c.account),
            Command::Deposit(c) => Some(c.account),
            Command::Withdrawal(c) => Some(c.account),
            Command::Transfer(c) => Some(c.from),
            Command::AccountQuery(c) => Some(c.account),
            Command::GatewayReject(c) => Some(c.account),
            Command::Admin(_) => None,
        }
    }
}
