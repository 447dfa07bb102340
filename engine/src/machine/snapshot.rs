//! Snapshots of the whole state: recovery is the newest snapshot plus a
//! replay of the journal after its `last_sequence`.
//!
//! A snapshot is a logical record of the state, not a memory image: no slab
//! slot, free list, hash map or level bit set is written. [`Engine::restore`]
//! builds an empty engine with [`Engine::new`] (so everything is
//! preallocated exactly as for a fresh start) and re-inserts the state
//! through the same methods commands use, so the ladders, level sets and
//! indexes are rebuilt consistently by construction.
//!
//! ```text
//!  0                                                      n-8          n
//!  +----------------+-----------------------------------+--------------+
//!  | version        | the state                         | checksum     |
//!  | u32, postcard  | StateRecord, postcard             | xxh3-64 of   |
//!  | varint         | (fields in declaration order)     | 0..n-8, u64  |
//!  |                |                                   | little-endian|
//!  +----------------+-----------------------------------+--------------+
//! ```
//!
//! The version is decoded on its own first, so a snapshot of another
//! version is reported as such rather than as garbage. The checksum is the
//! engine's own, beside whatever framing the store adds: a damaged
//! `last_sequence` would otherwise restore cleanly and make recovery replay
//! the journal from the wrong place, since the state hash does not cover it.
//!
//! The state, in this order: the fee account; the last sequence number,
//! next order id and next match number; the writer's `state_hash`; how many
//! open orders the order maps had room for (so a restored engine is as warmed
//! up as its writer); assets in id order (symbol, scale, Σ deposits,
//! Σ withdrawals); accounts in id order (status, last user reference, last
//! transfer id, one balance per asset in asset order, open order ids in the
//! account's list order, which mass cancel follows and the hash covers);
//! instruments in id order (spec, band, trading status, the range the
//! ladders cover, and per side the price levels best first, each with its
//! orders oldest first); the funding records oldest first. Everything is
//! iterated in a fixed order, so the same state gives the same bytes. Two
//! fields are state the hash leaves out because they depend on history, not
//! on outcomes: the ladder range and the maps' room. Engines with equal
//! hashes reached by different histories may differ there (and so in their
//! bytes); a restored engine equals its writer in both.
//!
//! Restoring checks everything a command would have guaranteed (ids within
//! the capacities, unique symbols, valid specs, prices on the tick grid and
//! within the ladder, no order listed twice or missing, transfer ids
//! consumed, the supply bound), then runs `check_invariants` and requires
//! the writer's `state_hash`. The checksum catches a damaged file before any
//! of that; the checks catch a snapshot that decodes but could not have been
//! written by an engine, so that nothing is restored silently wrong and
//! nothing panics on any input.

use super::{Asset, Engine, Market};
use crate::book::{Book, Ladder, NIL, OrderNode};
use crate::config::EngineConfig;
use crate::event::FundingKind;
use crate::funding::{TransferFields, TransferRecord};
use crate::instrument::{FeeRates, Instrument, InstrumentSpec, PriceBand};
use crate::ledger::AssetTotals;
use crate::reject::RejectReason;
use crate::types::{
    AccountId, AccountStatus, AssetId, Balance, InstrumentId, OrderId, Price, Quantity,
    SelfTradePrevention, Side, Symbol, TimeInForce, TradingStatus, TransferId, UserRefNum,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use xxhash_rust::xxh3::xxh3_64;

/// The format written by [`Engine::snapshot`]; a change to the records
/// below is a new version.
const SNAPSHOT_VERSION: u32 = 1;

/// Bytes of the trailing checksum.
const CHECKSUM_SIZE: usize = 8;

/// The largest asset scale, as `CreateAsset` checks it.
const SCALE_MAX: u8 = 18;

/// Basis points a fee rate may reach (100 %).
const FEE_BPS_MAX: u16 = 10_000;

/// Why a snapshot could not be restored.
#[derive(Debug)]
pub enum SnapshotError {
    /// The bytes are damaged (checksum, truncation) or are not a snapshot.
    Decode(String),
    /// A snapshot of another format version.
    Version { found: u32, expected: u32 },
    /// The configuration cannot hold the state: the capacity named is too
    /// small (or, for a configuration invalid in itself, its
    /// [`crate::ConfigError`] message).
    Capacity(&'static str),
    /// The snapshot was written by an engine with another fee account.
    FeeAccount {
        found: AccountId,
        expected: AccountId,
    },
    /// The snapshot decodes but describes a state no engine could be in.
    Inconsistent(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Decode(reason) => write!(f, "snapshot does not decode: {reason}"),
            SnapshotError::Version { found, expected } => write!(
                f,
                "snapshot format version {found}, this engine reads version {expected}"
            ),
            SnapshotError::Capacity(capacity) => write!(
                f,
                "the engine configuration cannot hold the snapshot: {capacity}"
            ),
            SnapshotError::FeeAccount { found, expected } => write!(
                f,
                "snapshot fee account {found}, configured fee account {expected}"
            ),
            SnapshotError::Inconsistent(reason) => write!(f, "snapshot is inconsistent: {reason}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

fn inconsistent(reason: impl Into<String>) -> SnapshotError {
    SnapshotError::Inconsistent(reason.into())
}

// ---------------------------------------------------------------------------
// The records: the format of version 1. Private, so they can change with the
// version without touching the public API.
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct StateRecord {
    fee_account: AccountId,
    last_sequence: u64,
    next_order_id: u64,
    next_match_number: u64,
    /// The writer's `state_hash`, required of the restored engine.
    state_hash: u128,
    /// The order maps' room (see `OrderStore::reserve_maps_for`); not part
    /// of the hash, only of the allocation behaviour.
    order_maps_reserved_for: u32,
    assets: Vec<AssetRecord>,
    accounts: Vec<AccountRecord>,
    instruments: Vec<InstrumentRecord>,
    transfers: Vec<FundingRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AssetRecord {
    id: AssetId,
    symbol: Symbol,
    scale: u8,
    deposited: u128,
    withdrawn: u128,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccountRecord {
    id: AccountId,
    status: AccountStatus,
    last_user_ref_num: UserRefNum,
    last_transfer_id: TransferId,
    /// One per asset of `StateRecord::assets`, in that order.
    balances: Vec<Balance>,
    /// The account's open orders in its list order (oldest first).
    orders: Vec<OrderId>,
}

#[derive(Debug, Serialize, Deserialize)]
struct InstrumentRecord {
    id: InstrumentId,
    spec: InstrumentSpec,
    /// Derived from the spec; written for readers of the snapshot and
    /// checked against the spec on restore.
    band: PriceBand,
    status: TradingStatus,
    /// The prices both ladders cover: the band and every resting order,
    /// possibly more (it depends on the history of band updates). Kept so
    /// that a restored engine reallocates its ladders exactly when its
    /// writer would have.
    ladder_range: PriceBand,
    /// Best (highest) price first.
    bids: Vec<LevelRecord>,
    /// Best (lowest) price first.
    asks: Vec<LevelRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LevelRecord {
    price: Price,
    /// Oldest first: time priority.
    orders: Vec<RestingOrder>,
}

/// An order on a level; its instrument, side and price are the level's.
#[derive(Debug, Serialize, Deserialize)]
struct RestingOrder {
    id: OrderId,
    account: AccountId,
    user_ref_num: UserRefNum,
    remaining: Quantity,
    fees: FeeRates,
    time_in_force: TimeInForce,
    self_trade: SelfTradePrevention,
    post_only: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct FundingRecord {
    transfer_id: TransferId,
    kind: FundingKindRecord,
    account: AccountId,
    to: AccountId,
    asset: AssetId,
    amount: u64,
    /// `None`: applied; otherwise the reject code.
    result: Option<u16>,
}

/// `FundingKind`, which is not serialisable itself.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
enum FundingKindRecord {
    Deposit,
    Withdrawal,
    Transfer,
}

impl From<FundingKind> for FundingKindRecord {
    fn from(kind: FundingKind) -> FundingKindRecord {
        match kind {
            FundingKind::Deposit => FundingKindRecord::Deposit,
            FundingKind::Withdrawal => FundingKindRecord::Withdrawal,
            FundingKind::Transfer => FundingKindRecord::Transfer,
        }
    }
}

impl From<FundingKindRecord> for FundingKind {
    fn from(kind: FundingKindRecord) -> FundingKind {
        match kind {
            FundingKindRecord::Deposit => FundingKind::Deposit,
            FundingKindRecord::Withdrawal => FundingKind::Withdrawal,
            FundingKindRecord::Transfer => FundingKind::Transfer,
        }
    }
}

// ---------------------------------------------------------------------------
// Writing.
// ---------------------------------------------------------------------------

impl Engine {
    /// The whole state as bytes (see the module documentation for the
    /// layout). Deterministic: the same state gives the same bytes.
    /// A control-plane operation: it walks and copies everything.
    ///
    /// ```
    /// use engine::*;
    ///
    /// let engine = Engine::new(EngineConfig::default()).unwrap();
    /// let bytes = engine.snapshot();
    /// let restored = Engine::restore(EngineConfig::default(), &bytes).unwrap();
    /// assert_eq!(restored.state_hash(), engine.state_hash());
    /// assert_eq!(restored.snapshot(), bytes);
    /// ```
    pub fn snapshot(&self) -> Vec<u8> {
        let state = self.state_record();
        // Invariant: postcard fails only on types it cannot encode (maps
        // without a length, for instance); these records have none.
        let mut bytes = postcard::to_stdvec(&(SNAPSHOT_VERSION, &state))
            .expect("the snapshot records always encode");
        let checksum = xxh3_64(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    fn state_record(&self) -> StateRecord {
        let maps_reserved_for = u32::try_from(self.orders.maps_reserved_for())
            .expect("the maps reserve for at most orders_max entries");
        StateRecord {
            fee_account: self.config.fee_account,
            last_sequence: self.last_sequence,
            next_order_id: self.next_order_id,
            next_match_number: self.next_match_number,
            state_hash: self.state_hash(),
            order_maps_reserved_for: maps_reserved_for,
            assets: self
                .assets()
                .map(|(id, asset)| {
                    let totals = self.ledger.totals(id);
                    AssetRecord {
                        id,
                        symbol: asset.symbol,
                        scale: asset.scale,
                        deposited: totals.deposited,
                        withdrawn: totals.withdrawn,
                    }
                })
                .collect(),
            accounts: self
                .ledger
                .accounts()
                .map(|(id, account)| AccountRecord {
                    id,
                    status: account.status,
                    last_user_ref_num: account.last_user_ref_num,
                    last_transfer_id: account.last_transfer_id,
                    balances: self
                        .assets()
                        .map(|(asset, _)| self.ledger.balance(id, asset))
                        .collect(),
                    orders: self
                        .account_orders(id)
                        .map(|order| order.order_id)
                        .collect(),
                })
                .collect(),
            instruments: self
                .instruments()
                .map(|id| self.instrument_record(id))
                .collect(),
            transfers: self
                .transfers
                .iter()
                .map(|record| FundingRecord {
                    transfer_id: record.transfer_id,
                    kind: record.fields.kind.into(),
                    account: record.fields.account,
                    to: record.fields.to,
                    asset: record.fields.asset,
                    amount: record.fields.amount,
                    result: record.result.map(RejectReason::code),
                })
                .collect(),
        }
    }

    fn instrument_record(&self, id: InstrumentId) -> InstrumentRecord {
        let market = self.market(id).expect("listed instruments exist");
        InstrumentRecord {
            id,
            spec: market.instrument.spec,
            band: market.instrument.band,
            status: market.instrument.status,
            ladder_range: market.book.range(),
            bids: self.level_records(&market.book.bids),
            asks: self.level_records(&market.book.asks),
        }
    }

    /// A ladder's levels, best first, each oldest first.
    fn level_records(&self, ladder: &Ladder) -> Vec<LevelRecord> {
        ladder
            .occupied_levels()
            .map(|index| {
                let level = ladder.level(index);
                let mut orders = Vec::with_capacity(level.orders as usize);
                let mut slot = level.head;
                while slot != NIL {
                    let node = self.orders.node(slot);
                    orders.push(RestingOrder {
                        id: node.id,
                        account: node.account,
                        user_ref_num: node.user_ref_num,
                        remaining: node.remaining,
                        fees: node.fees,
                        time_in_force: node.time_in_force,
                        self_trade: node.self_trade,
                        post_only: node.post_only,
                    });
                    slot = node.next;
                }
                debug_assert_eq!(orders.len(), level.orders as usize);
                LevelRecord {
                    price: ladder.price(index),
                    orders,
                }
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Reading.
// ---------------------------------------------------------------------------

/// The state record of `bytes`, once the checksum, the version and the
/// framing are right.
fn decode(bytes: &[u8]) -> Result<StateRecord, SnapshotError> {
    let payload_size = bytes
        .len()
        .checked_sub(CHECKSUM_SIZE)
        .ok_or_else(|| SnapshotError::Decode(format!("{} bytes is too short", bytes.len())))?;
    let (payload, trailer) = bytes.split_at(payload_size);
    let stored = u64::from_le_bytes(trailer.try_into().expect("the trailer is 8 bytes"));
    let computed = xxh3_64(payload);
    if stored != computed {
        return Err(SnapshotError::Decode(format!(
            "checksum {stored:#018x} stored, {computed:#018x} computed"
        )));
    }
    decode_payload(payload)
}

fn decode_payload(payload: &[u8]) -> Result<StateRecord, SnapshotError> {
    let decode_error = |error: postcard::Error| SnapshotError::Decode(error.to_string());
    let (version, rest) = postcard::take_from_bytes::<u32>(payload).map_err(decode_error)?;
    if version != SNAPSHOT_VERSION {
        return Err(SnapshotError::Version {
            found: version,
            expected: SNAPSHOT_VERSION,
        });
    }
    let (state, rest) = postcard::take_from_bytes::<StateRecord>(rest).map_err(decode_error)?;
    if !rest.is_empty() {
        return Err(SnapshotError::Decode(format!(
            "{} bytes after the state",
            rest.len()
        )));
    }
    Ok(state)
}

/// Orders read from the books, waiting to be inserted in their accounts'
/// list order.
type PendingOrders = BTreeMap<OrderId, OrderNode>;

impl Engine {
    /// Rebuilds an engine from [`Engine::snapshot`] bytes under `config`.
    /// The capacities may differ from the writer's if they hold the state;
    /// the fee account must be the writer's. The restored engine has the
    /// writer's `state_hash` and `last_sequence`, passes
    /// `check_invariants`, and answers every later command exactly as the
    /// writer would (with the writer's capacities).
    pub fn restore(config: EngineConfig, bytes: &[u8]) -> Result<Engine, SnapshotError> {
        config
            .validate()
            .map_err(|error| SnapshotError::Capacity(error.0))?;
        let state = decode(bytes)?;
        Engine::from_state(config, &state)
    }

    fn from_state(config: EngineConfig, state: &StateRecord) -> Result<Engine, SnapshotError> {
        if state.fee_account != config.fee_account {
            return Err(SnapshotError::FeeAccount {
                found: state.fee_account,
                expected: config.fee_account,
            });
        }
        if state.next_order_id == 0 || state.next_match_number == 0 {
            return Err(inconsistent("order ids and match numbers start at 1"));
        }
        let mut engine = Engine::new(config).map_err(|error| SnapshotError::Capacity(error.0))?;
        engine.last_sequence = state.last_sequence;
        engine.next_order_id = state.next_order_id;
        engine.next_match_number = state.next_match_number;
        engine.restore_assets(&state.assets)?;
        engine.restore_accounts(&state.accounts, state.assets.len())?;
        let mut pending = PendingOrders::new();
        for instrument in &state.instruments {
            engine.restore_instrument(instrument, &mut pending)?;
        }
        if pending.len() > config.orders_max as usize {
            return Err(SnapshotError::Capacity("orders_max"));
        }
        let reserved = state.order_maps_reserved_for.min(config.orders_max);
        engine.orders.reserve_maps_for(reserved as usize);
        engine.restore_account_orders(&state.accounts, pending)?;
        engine.link_books(&state.instruments);
        engine.restore_transfers(&state.transfers)?;
        engine
            .check_invariants()
            .map_err(SnapshotError::Inconsistent)?;
        let hash = engine.state_hash();
        if hash != state.state_hash {
            return Err(inconsistent(format!(
                "state hash {hash:#034x} restored, {:#034x} written",
                state.state_hash
            )));
        }
        Ok(engine)
    }

    fn restore_assets(&mut self, assets: &[AssetRecord]) -> Result<(), SnapshotError> {
        let mut previous: Option<AssetId> = None;
        let mut symbols = BTreeSet::new();
        for record in assets {
            if previous.is_some_and(|previous| record.id <= previous) {
                return Err(inconsistent("assets out of id order"));
            }
            previous = Some(record.id);
            if record.id.0 >= self.config.assets_max {
                return Err(SnapshotError::Capacity("assets_max"));
            }
            if !symbols.insert(record.symbol) || record.scale > SCALE_MAX {
                return Err(inconsistent(format!(
                    "asset {}: symbol or scale",
                    record.id
                )));
            }
            let totals = AssetTotals {
                deposited: record.deposited,
                withdrawn: record.withdrawn,
            };
            if totals.withdrawn > totals.deposited || totals.supply() > u128::from(u64::MAX) {
                return Err(inconsistent(format!("asset {}: totals", record.id)));
            }
            self.assets[usize::from(record.id.0)] = Some(Asset {
                symbol: record.symbol,
                scale: record.scale,
            });
            self.ledger.restore_totals(record.id, totals);
        }
        Ok(())
    }

    fn restore_accounts(
        &mut self,
        accounts: &[AccountRecord],
        asset_count: usize,
    ) -> Result<(), SnapshotError> {
        let assets: Vec<AssetId> = self.assets().map(|(id, _)| id).collect();
        debug_assert_eq!(assets.len(), asset_count);
        let mut previous: Option<AccountId> = None;
        let mut fee_account_seen = false;
        for record in accounts {
            if previous.is_some_and(|previous| record.id <= previous) {
                return Err(inconsistent("accounts out of id order"));
            }
            previous = Some(record.id);
            if record.id.0 >= self.config.accounts_max {
                return Err(SnapshotError::Capacity("accounts_max"));
            }
            if record.balances.len() != asset_count {
                return Err(inconsistent(format!(
                    "account {}: {} balances for {asset_count} assets",
                    record.id,
                    record.balances.len()
                )));
            }
            if record.id == self.config.fee_account {
                fee_account_seen = true;
            } else {
                self.ledger.create_account(record.id);
            }
            let account = self.ledger.account_mut(record.id).expect("created above");
            account.status = record.status;
            account.last_user_ref_num = record.last_user_ref_num;
            account.last_transfer_id = record.last_transfer_id;
            for (asset, balance) in assets.iter().zip(&record.balances) {
                self.ledger.restore_balance(record.id, *asset, *balance);
            }
        }
        if !fee_account_seen {
            return Err(inconsistent("the fee account is missing"));
        }
        Ok(())
    }

    /// An instrument and its book's ladders, empty; its orders go to
    /// `pending`.
    fn restore_instrument(
        &mut self,
        record: &InstrumentRecord,
        pending: &mut PendingOrders,
    ) -> Result<(), SnapshotError> {
        let id = record.id;
        if self.instruments().last().is_some_and(|last| id <= last) {
            return Err(inconsistent("instruments out of id order"));
        }
        if id.0 >= self.config.instruments_max {
            return Err(SnapshotError::Capacity("instruments_max"));
        }
        let spec = record.spec;
        let symbol_taken = self
            .markets
            .iter()
            .flatten()
            .any(|market| market.instrument.spec.symbol == spec.symbol);
        if symbol_taken
            || !spec.is_valid()
            || self.asset(spec.base).is_none()
            || self.asset(spec.quote).is_none()
            || spec.band() != Some(record.band)
        {
            return Err(inconsistent(format!("instrument {id}: spec or band")));
        }
        let range = record.ladder_range;
        let tick = spec.tick_size.0;
        let covers_band = range.contains(record.band.low) && range.contains(record.band.high);
        if range.low.0 % tick != 0 || range.high.0 % tick != 0 || !covers_band {
            return Err(inconsistent(format!("instrument {id}: ladder range")));
        }
        if range.levels(spec.tick_size) > u64::from(self.config.price_levels_max) {
            return Err(SnapshotError::Capacity("price_levels_max"));
        }
        for (side, levels) in [(Side::Buy, &record.bids), (Side::Sell, &record.asks)] {
            self.collect_side(id, spec, range, side, levels, pending)?;
        }
        self.markets[id.0 as usize] = Some(Market {
            instrument: Instrument {
                spec,
                band: record.band,
                status: record.status,
            },
            book: Book::new(range, spec.tick_size),
        });
        Ok(())
    }

    /// Checks one side's levels and moves their orders to `pending`.
    fn collect_side(
        &self,
        instrument: InstrumentId,
        spec: InstrumentSpec,
        range: PriceBand,
        side: Side,
        levels: &[LevelRecord],
        pending: &mut PendingOrders,
    ) -> Result<(), SnapshotError> {
        let mut previous: Option<Price> = None;
        for level in levels {
            let price = level.price;
            let in_order = previous.is_none_or(|previous| match side {
                Side::Buy => price < previous,
                Side::Sell => price > previous,
            });
            previous = Some(price);
            if !in_order
                || !range.contains(price)
                || price.0 % spec.tick_size.0 != 0
                || level.orders.is_empty()
            {
                return Err(inconsistent(format!(
                    "instrument {instrument} {side:?}: level at {price}"
                )));
            }
            let mut quantity = 0_u64;
            for order in &level.orders {
                quantity = quantity
                    .checked_add(order.remaining.0)
                    .ok_or_else(|| inconsistent(format!("level at {price} overflows")))?;
                let node = self.resting_node(instrument, side, price, order)?;
                if pending.insert(order.id, node).is_some() {
                    return Err(inconsistent(format!("order {} booked twice", order.id)));
                }
            }
        }
        Ok(())
    }

    /// The node of a resting order, checked on its own.
    fn resting_node(
        &self,
        instrument: InstrumentId,
        side: Side,
        price: Price,
        order: &RestingOrder,
    ) -> Result<OrderNode, SnapshotError> {
        let account = self.ledger.account(order.account);
        let valid = order.id.0 >= 1
            && order.id.0 < self.next_order_id
            && order.remaining.0 > 0
            && order.fees.maker_bps <= FEE_BPS_MAX
            && order.fees.taker_bps <= FEE_BPS_MAX
            && order.time_in_force.rests()
            && account.is_some_and(|account| order.user_ref_num <= account.last_user_ref_num);
        if !valid {
            return Err(inconsistent(format!("order {}: {order:?}", order.id)));
        }
        Ok(OrderNode {
            id: order.id,
            account: order.account,
            instrument,
            user_ref_num: order.user_ref_num,
            price,
            remaining: order.remaining,
            fees: order.fees,
            side,
            time_in_force: order.time_in_force,
            self_trade: order.self_trade,
            post_only: order.post_only,
            previous: NIL,
            next: NIL,
            account_previous: NIL,
            account_next: NIL,
        })
    }

    /// Inserts the booked orders into the store in their accounts' list
    /// order, which rebuilds the account lists and the indexes.
    fn restore_account_orders(
        &mut self,
        accounts: &[AccountRecord],
        mut pending: PendingOrders,
    ) -> Result<(), SnapshotError> {
        for record in accounts {
            for order_id in &record.orders {
                let node = pending.remove(order_id).ok_or_else(|| {
                    inconsistent(format!(
                        "account {} lists order {order_id}, not booked or listed twice",
                        record.id
                    ))
                })?;
                if node.account != record.id
                    || self
                        .orders
                        .by_user_ref(node.account, node.user_ref_num)
                        .is_some()
                {
                    return Err(inconsistent(format!(
                        "order {order_id}: account or user reference"
                    )));
                }
                self.orders.insert(node);
            }
        }
        if let Some(order_id) = pending.keys().next() {
            return Err(inconsistent(format!(
                "order {order_id} is booked but in no account's list"
            )));
        }
        Ok(())
    }

    /// Links every stored order into its level, oldest first.
    fn link_books(&mut self, instruments: &[InstrumentRecord]) {
        for record in instruments {
            let market = self.markets[record.id.0 as usize]
                .as_mut()
                .expect("restored above");
            for (side, levels) in [(Side::Buy, &record.bids), (Side::Sell, &record.asks)] {
                let ladder = market.book.side_mut(side);
                for order in levels.iter().flat_map(|level| &level.orders) {
                    let slot = self.orders.by_id(order.id).expect("inserted above");
                    ladder.push_back(self.orders.nodes_mut(), slot);
                }
            }
        }
    }

    fn restore_transfers(&mut self, transfers: &[FundingRecord]) -> Result<(), SnapshotError> {
        if transfers.len() > self.config.transfer_records_max as usize {
            return Err(SnapshotError::Capacity("transfer_records_max"));
        }
        // Per account, the transfer id recorded last: ids are consumed, and
        // so recorded, in increasing order.
        let mut last_recorded = BTreeMap::<AccountId, TransferId>::new();
        for record in transfers {
            let last_consumed = self
                .ledger
                .account(record.account)
                .map(|account| account.last_transfer_id);
            let previous = last_recorded.insert(record.account, record.transfer_id);
            let valid = record.transfer_id.0 >= 1
                && last_consumed.is_some_and(|last| record.transfer_id <= last)
                && previous.is_none_or(|previous| previous < record.transfer_id);
            let result = record
                .result
                .map(|code| RejectReason::from_code(code).ok_or(code))
                .transpose();
            let (true, Ok(result)) = (valid, result) else {
                return Err(inconsistent(format!("funding record {record:?}")));
            };
            self.transfers.record(TransferRecord {
                transfer_id: record.transfer_id,
                fields: TransferFields {
                    kind: record.kind.into(),
                    account: record.account,
                    to: record.to,
                    asset: record.asset,
                    amount: record.amount,
                },
                result,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{
        AdminCommand, CancelOrder, Command, CommandHeader, Deposit, NewOrder, OrderPrice, OrderRef,
        ReplaceOrder, Transfer, Withdrawal,
    };
    use crate::event::{Event, Status};

    const USD: AssetId = AssetId(0);
    const ACME: AssetId = AssetId(1);
    const ACME_USD: InstrumentId = InstrumentId(0);
    const FEES: AccountId = AccountId(0);
    const ALICE: AccountId = AccountId(1);
    const BOB: AccountId = AccountId(2);

    fn config() -> EngineConfig {
        EngineConfig {
            accounts_max: 8,
            assets_max: 4,
            instruments_max: 4,
            orders_max: 64,
            price_levels_max: 4_096,
            transfer_records_max: 4,
            fee_account: FEES,
        }
    }

    fn spec() -> InstrumentSpec {
        InstrumentSpec {
            symbol: Symbol::new("ACME").unwrap(),
            base: ACME,
            quote: USD,
            quantity_unit: 1,
            tick_size: Price(100),
            lot_size: Quantity(1),
            min_quantity: Quantity(1),
            max_quantity: Quantity(1_000),
            reference_price: Price(10_000),
            band_bps: 2_000,
            maker_fee_bps: 10,
            taker_fee_bps: 25,
        }
    }

    /// An engine fed commands with contiguous sequence numbers.
    struct Driver {
        engine: Engine,
        user_ref_num: u64,
    }

    impl Driver {
        fn apply(&mut self, command: Command) -> (Status, Vec<Event>) {
            apply(&mut self.engine, &command)
        }

        fn order(&mut self, account: AccountId, side: Side, price: i64, quantity: u64) -> Status {
            self.user_ref_num += 1;
            self.apply(Command::NewOrder(NewOrder {
                account,
                user_ref_num: UserRefNum(self.user_ref_num),
                instrument: ACME_USD,
                side,
                price: OrderPrice::Limit(Price(price)),
                quantity: Quantity(quantity),
                time_in_force: TimeInForce::GoodTillCancel,
                post_only: false,
                self_trade: SelfTradePrevention::None,
            }))
            .0
        }
    }

    fn apply(engine: &mut Engine, command: &Command) -> (Status, Vec<Event>) {
        let header = CommandHeader {
            sequence: engine.last_sequence() + 1,
            timestamp_ns: 0,
        };
        let mut events = Vec::new();
        let status = engine.apply(header, command, &mut events);
        (status, events)
    }

    fn deposit(account: AccountId, asset: AssetId, amount: u64, id: u64) -> Command {
        Command::Deposit(Deposit {
            account,
            asset,
            amount,
            transfer_id: TransferId(id),
        })
    }

    /// Assets, an instrument, two traders, resting orders at several levels
    /// (some partly filled), an order whose priority was kept by a replace,
    /// funding records of applied and rejected commands.
    fn scenario() -> Driver {
        let mut driver = Driver {
            engine: Engine::new(config()).unwrap(),
            user_ref_num: 0,
        };
        let setup = [
            Command::Admin(AdminCommand::CreateAsset {
                asset: USD,
                symbol: Symbol::new("USD").unwrap(),
                scale: 4,
            }),
            Command::Admin(AdminCommand::CreateAsset {
                asset: ACME,
                symbol: Symbol::new("ACME").unwrap(),
                scale: 0,
            }),
            Command::Admin(AdminCommand::CreateAccount { account: ALICE }),
            Command::Admin(AdminCommand::CreateAccount { account: BOB }),
            Command::Admin(AdminCommand::CreateInstrument {
                instrument: ACME_USD,
                spec: spec(),
            }),
            deposit(ALICE, USD, 10_000_000, 1),
            deposit(ALICE, ACME, 500, 2),
            deposit(BOB, USD, 10_000_000, 1),
            deposit(BOB, ACME, 500, 2),
        ];
        for command in setup {
            assert_eq!(driver.apply(command).0, Status::Applied);
        }
        for (price, quantity) in [(10_200, 5), (10_300, 7), (10_200, 4), (10_500, 3)] {
            assert_eq!(
                driver.order(ALICE, Side::Sell, price, quantity),
                Status::Applied
            );
        }
        for (price, quantity) in [(9_900, 6), (9_800, 2), (9_900, 1)] {
            assert_eq!(
                driver.order(BOB, Side::Buy, price, quantity),
                Status::Applied
            );
        }
        // Partial fills: 8 at 10 200 (the first order whole, 3 of the
        // second), then 1 at 10 200 and 1 at 10 300.
        assert_eq!(driver.order(BOB, Side::Buy, 10_200, 8), Status::Applied);
        assert_eq!(driver.order(BOB, Side::Buy, 10_300, 2), Status::Applied);
        let (status, _) = driver.apply(Command::ReplaceOrder(ReplaceOrder {
            account: BOB,
            order: OrderRef::UserRef(UserRefNum(5)),
            new_user_ref_num: UserRefNum(100),
            price: Price(9_900),
            quantity: Quantity(4),
        }));
        assert_eq!(status, Status::Applied);
        driver.user_ref_num = 100;
        let (status, _) = driver.apply(Command::CancelOrder(CancelOrder {
            account: ALICE,
            order: OrderRef::UserRef(UserRefNum(4)),
            quantity: Quantity(1),
        }));
        assert_eq!(status, Status::Applied);
        let funding = [
            Command::Withdrawal(Withdrawal {
                account: ALICE,
                asset: USD,
                amount: u64::MAX,
                transfer_id: TransferId(3),
            }),
            Command::Transfer(Transfer {
                from: BOB,
                to: ALICE,
                asset: USD,
                amount: 1_000,
                transfer_id: TransferId(3),
            }),
            deposit(ALICE, USD, 5, 4),
        ];
        for command in funding {
            driver.apply(command);
        }
        driver.engine.check_invariants().unwrap();
        driver
    }

    /// Commands after the snapshot: fills across levels, a repeat of an
    /// applied and of a rejected funding command, a mass cancel.
    fn continuation() -> Vec<Command> {
        let order = |account, user_ref_num, side, price, quantity, time_in_force| {
            Command::NewOrder(NewOrder {
                account,
                user_ref_num: UserRefNum(user_ref_num),
                instrument: ACME_USD,
                side,
                price: OrderPrice::Limit(Price(price)),
                quantity: Quantity(quantity),
                time_in_force,
                post_only: false,
                self_trade: SelfTradePrevention::CancelOldest,
            })
        };
        vec![
            order(
                BOB,
                200,
                Side::Buy,
                10_500,
                9,
                TimeInForce::ImmediateOrCancel,
            ),
            order(ALICE, 201, Side::Sell, 9_800, 10, TimeInForce::Day),
            order(BOB, 202, Side::Buy, 9_700, 3, TimeInForce::Day),
            deposit(ALICE, USD, 5, 4),
            Command::Withdrawal(Withdrawal {
                account: ALICE,
                asset: USD,
                amount: u64::MAX,
                transfer_id: TransferId(3),
            }),
            deposit(ALICE, USD, 6, 4),
            Command::MassCancel(crate::command::MassCancel {
                account: ALICE,
                instrument: None,
            }),
            Command::Admin(AdminCommand::EndOfDay),
        ]
    }

    #[test]
    fn restore_gives_the_same_state_and_the_same_future() {
        let mut live = scenario();
        let bytes = live.engine.snapshot();
        let mut restored = Engine::restore(config(), &bytes).unwrap();
        assert_eq!(restored.state_hash(), live.engine.state_hash());
        assert_eq!(restored.last_sequence(), live.engine.last_sequence());
        assert_eq!(restored.snapshot(), bytes);
        assert!(live.engine.open_orders() >= 5);
        let mut saw_duplicate = false;
        for command in continuation() {
            let (live_status, live_events) = live.apply(command);
            let (status, events) = apply(&mut restored, &command);
            assert_eq!(
                (status, &events),
                (live_status, &live_events),
                "{command:?}"
            );
            assert_eq!(restored.state_hash(), live.engine.state_hash());
            saw_duplicate |= status == Status::Duplicate;
        }
        assert!(saw_duplicate, "the funding records were restored");
        assert_eq!(restored.snapshot(), live.engine.snapshot());
    }

    #[test]
    fn larger_capacities_restore_and_smaller_ones_are_refused() {
        let live = scenario();
        let bytes = live.engine.snapshot();
        let larger = EngineConfig {
            orders_max: 1_000,
            accounts_max: 100,
            ..config()
        };
        let restored = Engine::restore(larger, &bytes).unwrap();
        assert_eq!(restored.state_hash(), live.engine.state_hash());

        let open = live.engine.open_orders();
        let cases = [
            (
                EngineConfig {
                    orders_max: open - 1,
                    ..config()
                },
                "orders_max",
            ),
            (
                EngineConfig {
                    accounts_max: 2,
                    ..config()
                },
                "accounts_max",
            ),
            (
                EngineConfig {
                    assets_max: 1,
                    ..config()
                },
                "assets_max",
            ),
            (
                EngineConfig {
                    price_levels_max: 10,
                    ..config()
                },
                "price_levels_max",
            ),
            (
                EngineConfig {
                    transfer_records_max: 1,
                    ..config()
                },
                "transfer_records_max",
            ),
        ];
        for (config, capacity) in cases {
            match Engine::restore(config, &bytes) {
                Err(SnapshotError::Capacity(named)) => assert_eq!(named, capacity),
                other => panic!("{capacity}: {other:?}"),
            }
        }
        let other_fees = EngineConfig {
            fee_account: BOB,
            ..config()
        };
        assert!(matches!(
            Engine::restore(other_fees, &bytes),
            Err(SnapshotError::FeeAccount {
                found: FEES,
                expected: BOB
            })
        ));
    }

    #[test]
    fn damaged_bytes_are_refused() {
        let bytes = scenario().engine.snapshot();
        for length in [0, 7, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(
                Engine::restore(config(), &bytes[..length]),
                Err(SnapshotError::Decode(_))
            ));
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Engine::restore(config(), &longer).is_err());
        for bit in (0..bytes.len() * 8).step_by(7) {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(
                Engine::restore(config(), &flipped),
                Err(SnapshotError::Decode(_))
            ));
        }
        let mut other_version = postcard::to_stdvec(&(SNAPSHOT_VERSION + 1, 0_u8)).unwrap();
        let checksum = xxh3_64(&other_version);
        other_version.extend_from_slice(&checksum.to_le_bytes());
        assert!(matches!(
            Engine::restore(config(), &other_version),
            Err(SnapshotError::Version {
                found: 2,
                expected: 1
            })
        ));
    }

    /// Past the checksum: every bit flip of the payload, resealed with a
    /// valid checksum, is refused or restores a state that passes every
    /// check; none panics.
    #[test]
    fn resealed_corruption_never_panics_nor_restores_silently_wrong() {
        let live = scenario();
        let bytes = live.engine.snapshot();
        let payload = &bytes[..bytes.len() - CHECKSUM_SIZE];
        let mut accepted = 0;
        for bit in 0..payload.len() * 8 {
            let mut flipped = payload.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let Ok(state) = decode_payload(&flipped) else {
                continue;
            };
            if let Ok(engine) = Engine::from_state(config(), &state) {
                // Only what the hash does not cover can differ.
                accepted += 1;
                assert_eq!(engine.state_hash(), live.engine.state_hash());
                engine.check_invariants().unwrap();
            }
        }
        // The last sequence number, the ladder range, the maps' room: a flip
        // of a low bit of each restores (and says nothing wrong about the
        // hashed state).
        assert!(accepted > 0 && accepted < payload.len(), "{accepted}");
    }

    /// Records that decode and pass the checksum but no engine could write.
    #[test]
    fn inconsistent_records_are_refused() {
        let live = scenario();
        let good = || live.engine.state_record();
        let refused = |state: StateRecord| {
            let error = Engine::from_state(config(), &state).unwrap_err();
            assert!(matches!(error, SnapshotError::Inconsistent(_)), "{error}");
        };
        let mut state = good();
        state.accounts[1].orders.pop();
        refused(state);
        let mut state = good();
        let moved = state.accounts[1].orders.pop().unwrap();
        state.accounts[2].orders.push(moved);
        refused(state);
        let mut state = good();
        state.instruments[0].asks[0].orders[0].remaining = Quantity(0);
        refused(state);
        let mut state = good();
        state.instruments[0].asks.reverse();
        refused(state);
        let mut state = good();
        state.instruments[0].bids[0].price = Price(99_900);
        refused(state);
        let mut state = good();
        state.instruments[0].ladder_range.high = Price(10_050);
        refused(state);
        let mut state = good();
        state.instruments[0].asks[0].orders[0].fees.taker_bps = u16::MAX;
        refused(state);
        let mut state = good();
        state.assets[0].withdrawn = state.assets[0].deposited + 1;
        refused(state);
        let mut state = good();
        state.transfers[0].transfer_id = TransferId(99);
        refused(state);
        let mut state = good();
        state.transfers.swap(1, 3);
        refused(state);
        let mut state = good();
        state.accounts[1].balances[0].available += 1;
        refused(state);
        let mut state = good();
        state.next_match_number += 1;
        refused(state);
        let mut state = good();
        state.accounts.remove(0);
        refused(state);
        // Only the balances are wrong: the invariants notice, before the hash.
        let mut state = good();
        state.accounts[1].balances[0].held += 1;
        state.assets[0].deposited += 1;
        refused(state);
    }
}
