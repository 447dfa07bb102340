//! The deterministic matching and settlement state machine of the exchange
//! core.
//!
//! [`Engine::apply`] takes a sequenced [`Command`] and writes the
//! [`Event`]s it caused to an [`EventSink`], returning a [`Status`]. It reads
//! no clock, draws no random numbers, does no I/O and iterates no hash map,
//! so the same commands always give the same events and the same
//! [`Engine::state_hash`]. Everything is integer arithmetic, checked where an
//! input could overflow it; a business rejection is data (one
//! [`RejectReason`] per rejected command), never a panic.
//!
//! The rules (units, holds, matching, settlement, fees, funding, the order of
//! events and the precedence of rejections) are specified in
//! `docs/engine.md`.

#![deny(unsafe_code)]
#![deny(clippy::float_arithmetic)]

pub mod agent;
mod book;
pub mod codec;
mod command;
mod config;
mod event;
mod funding;
pub mod gate;
mod instrument;
mod ledger;
mod machine;
mod reject;
// The SPSC ring shares slots between threads through `UnsafeCell`; it and
// the thread-priority call are the modules of this crate allowed `unsafe`,
// each block with a SAFETY note.
#[allow(unsafe_code)]
pub mod priority;
#[allow(unsafe_code)]
mod ring;
pub mod runner;
mod sequencer;
mod shadow;
pub mod snapshotter;
mod types;

pub use command::{
    AccountQuery, AdminCommand, CancelOrder, Command, CommandHeader, Deposit, GatewayReject,
    MassCancel, NewOrder, OrderPrice, OrderRef, ReplaceOrder, Transfer, Withdrawal,
};
pub use config::{ConfigError, EngineConfig};
pub use event::{CancelReason, Event, EventSink, FundingKind, Status};
pub use instrument::{FeeRates, InstrumentSpec, InstrumentUpdate, PriceBand};
pub use ledger::AssetTotals;
pub use machine::SnapshotError;
pub use machine::{Asset, Engine, InstrumentView, OrderView};
pub use reject::RejectReason;
pub use ring::{Consumer, Producer, ring};
pub use sequencer::{
    Applied, ENGINE_CONFIG_FILE, Recovered, RecoveryError, Replayed, Sequencer,
    recorded_engine_config, replay, write_snapshot,
};
pub use shadow::ShadowEngine;
pub use snapshotter::{ShadowEdges, SnapshotAgent, SnapshotControl, SnapshotOptions};
pub use types::{
    AccountId, AccountStatus, AssetId, Balance, InstrumentId, MatchNumber, OrderId, Price,
    Quantity, SelfTradePrevention, Side, Symbol, TimeInForce, TradingStatus, TransferId,
    UserRefNum,
};
