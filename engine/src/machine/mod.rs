//! The state machine: `apply(header, command) -> status`, writing events to a
//! sink.
//!
//! Pure and deterministic: no clock, no randomness, no I/O, no iteration over
//! hash maps. Everything is allocated in [`Engine::new`]; applying a command
//! allocates nothing (admin commands that create an instrument or move its
//! band excepted), which a counting-allocator test checks.
//!
//! The handlers live in sibling modules by kind: `trading` (orders),
//! `matching` (the book walk and settlement of fills), `money` (funding),
//! `admin`, plus read-only `view`, `hash` and `invariants`.

mod admin;
mod hash;
mod invariants;
mod matching;
mod money;
mod snapshot;
mod trading;
mod view;

pub use snapshot::SnapshotError;
pub use view::{InstrumentView, OrderView};

use crate::book::{Book, OrderStore};
use crate::command::{Command, CommandHeader};
use crate::config::{ConfigError, EngineConfig};
use crate::event::{Event, EventSink, Status};
use crate::funding::TransferLog;
use crate::instrument::Instrument;
use crate::ledger::Ledger;
use crate::reject::RejectReason;
use crate::types::{AccountId, InstrumentId, Symbol};

/// An asset as the engine keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    pub symbol: Symbol,
    /// Decimal places of one minor unit.
    pub scale: u8,
}

/// An instrument with its book.
#[derive(Debug)]
struct Market {
    instrument: Instrument,
    book: Book,
}

/// The matching and settlement state machine.
///
/// ```
/// use engine::*;
///
/// let mut engine = Engine::new(EngineConfig::default()).unwrap();
/// let mut events = Vec::new();
/// let header = CommandHeader { sequence: 1, timestamp_ns: 0 };
/// let command = Command::Admin(AdminCommand::CreateAccount { account: AccountId(1) });
/// assert_eq!(engine.apply(header, &command, &mut events), Status::Applied);
/// assert_eq!(events, [Event::AccountCreated { account: AccountId(1) }]);
/// ```
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    assets: Vec<Option<Asset>>,
    markets: Vec<Option<Market>>,
    ledger: Ledger,
    orders: OrderStore,
    transfers: TransferLog,
    /// The id the next accepted order gets.
    next_order_id: u64,
    /// The match number of the next fill.
    next_match_number: u64,
    last_sequence: u64,
}

impl Engine {
    /// An empty exchange: no assets, no instruments, and only the fee account.
    pub fn new(config: EngineConfig) -> Result<Engine, ConfigError> {
        config.validate()?;
        let mut ledger = Ledger::new(config.accounts_max, config.assets_max);
        ledger.create_account(config.fee_account);
        let mut markets = Vec::new();
        markets.resize_with(config.instruments_max as usize, || None);
        Ok(Engine {
            config,
            assets: vec![None; usize::from(config.assets_max)],
            markets,
            ledger,
            orders: OrderStore::new(config.orders_max, config.accounts_max),
            transfers: TransferLog::new(config.transfer_records_max),
            next_order_id: 1,
            next_match_number: 1,
            last_sequence: 0,
        })
    }

    /// The capacities the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The sequence number of the last command applied (0: none).
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Apply one command. `header.sequence` must follow the last one applied:
    /// the sequencer numbers commands contiguously, and a gap is a bug.
    pub fn apply<S: EventSink>(
        &mut self,
        header: CommandHeader,
        command: &Command,
        events: &mut S,
    ) -> Status {
        assert_eq!(
            header.sequence,
            self.last_sequence + 1,
            "commands are applied in sequence"
        );
        self.last_sequence = header.sequence;
        let result = match command {
            Command::NewOrder(c) => self.new_order(c, events),
            Command::CancelOrder(c) => self.cancel_order(c, events),
            Command::ReplaceOrder(c) => self.replace_order(c, events),
            Command::MassCancel(c) => self.mass_cancel(c, events),
            Command::Deposit(c) => self.deposit(c, events),
            Command::Withdrawal(c) => self.withdrawal(c, events),
            Command::Transfer(c) => self.transfer(c, events),
            Command::AccountQuery(c) => self.account_query(c.account, events),
            Command::GatewayReject(c) => self.gateway_reject(c),
            Command::Admin(c) => self.admin(c, events),
        };
        match result {
            Ok(status) => status,
            Err(rejection) => {
                events.push(Event::Rejected {
                    account: rejection.account,
                    reference: rejection.reference,
                    reason: rejection.reason,
                });
                Status::Rejected(rejection.reason)
            }
        }
    }

    fn market(&self, instrument: InstrumentId) -> Option<&Market> {
        self.markets.get(instrument.0 as usize)?.as_ref()
    }
}

/// A command's rejection, before it becomes an event.
#[derive(Clone, Copy, Debug)]
struct Rejection {
    account: Option<AccountId>,
    reference: u64,
    reason: RejectReason,
}

type Handled = Result<Status, Rejection>;

/// Builds the rejections of one command, which share account and reference.
#[derive(Clone, Copy, Debug)]
struct Rejecter {
    account: Option<AccountId>,
    reference: u64,
}

impl Rejecter {
    fn new(account: AccountId, reference: u64) -> Rejecter {
        Rejecter {
            account: Some(account),
            reference,
        }
    }

    fn admin() -> Rejecter {
        Rejecter {
            account: None,
            reference: 0,
        }
    }

    fn reject(self, reason: RejectReason) -> Rejection {
        Rejection {
            account: self.account,
            reference: self.reference,
            reason,
        }
    }

    /// `Err(reason)` when `failed`.
    fn check(self, failed: bool, reason: RejectReason) -> Result<(), Rejection> {
        if failed {
            Err(self.reject(reason))
        } else {
            Ok(())
        }
    }
}
