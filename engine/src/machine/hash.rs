//! `state_hash()`: a 128-bit XXH3 digest of the whole state, fed in a fixed
//! order with fixed little-endian encodings, so that the same command
//! sequence always yields the same hash on every machine, and a snapshot plus
//! replay can be checked against a straight replay.
//!
//! Covered: counters (next order id, next match number), assets,
//! instruments (spec and status), every book in priority order with every
//! field of every order, every account (status, last user reference, last
//! transfer id, every balance, its open orders in list order), per-asset
//! totals, and the funding records oldest first.
//!
//! Not covered, because never observable: slab slot numbers, the free list
//! and the ranges of the price ladders (which depend on the history of band
//! updates). Nor the last sequence number, which is the journal's business
//! (a snapshot records it beside the hash): a command that changes nothing —
//! a query, a duplicate, a reject that consumes no reference — leaves the
//! hash as it was.

use super::Engine;
use crate::book::OrderNode;
use crate::event::FundingKind;
use crate::types::{
    AccountStatus, InstrumentId, SelfTradePrevention, Side, TimeInForce, TradingStatus,
};
use xxhash_rust::xxh3::Xxh3;

struct StateHasher(Xxh3);

impl StateHasher {
    fn u8(&mut self, value: u8) {
        self.0.update(&[value]);
    }
    fn u16(&mut self, value: u16) {
        self.0.update(&value.to_le_bytes());
    }
    fn u32(&mut self, value: u32) {
        self.0.update(&value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.0.update(&value.to_le_bytes());
    }
    fn i64(&mut self, value: i64) {
        self.0.update(&value.to_le_bytes());
    }
    fn u128(&mut self, value: u128) {
        self.0.update(&value.to_le_bytes());
    }
    fn bytes(&mut self, value: &[u8]) {
        self.0.update(value);
    }

    fn order(&mut self, node: &OrderNode) {
        self.u64(node.id.0);
        self.u32(node.account.0);
        self.u32(node.instrument.0);
        self.u64(node.user_ref_num.0);
        self.i64(node.price.0);
        self.u64(node.remaining.0);
        self.u16(node.fees.maker_bps);
        self.u16(node.fees.taker_bps);
        self.u8(side_code(node.side));
        self.u8(time_in_force_code(node.time_in_force));
        self.u8(self_trade_code(node.self_trade));
        self.u8(u8::from(node.post_only));
    }
}

impl Engine {
    /// A digest of the whole state (see the module documentation for what it
    /// covers).
    pub fn state_hash(&self) -> u128 {
        let mut h = StateHasher(Xxh3::new());
        h.bytes(b"exchange-engine-state-v1");
        h.u64(self.next_order_id);
        h.u64(self.next_match_number);
        for (id, asset) in self.assets() {
            h.u16(id.0);
            h.bytes(&asset.symbol.bytes());
            h.u8(asset.scale);
            let totals = self.ledger.totals(id);
            h.u128(totals.deposited);
            h.u128(totals.withdrawn);
        }
        for id in self.instruments() {
            self.hash_instrument(&mut h, id);
        }
        for (id, account) in self.ledger.accounts() {
            h.u32(id.0);
            h.u8(match account.status {
                AccountStatus::Active => 0,
                AccountStatus::Suspended => 1,
            });
            h.u64(account.last_user_ref_num.0);
            h.u64(account.last_transfer_id.0);
            for (asset, _) in self.assets() {
                let balance = self.ledger.balance(id, asset);
                h.u64(balance.available);
                h.u64(balance.held);
            }
            for order in self.account_orders(id) {
                h.u64(order.order_id.0);
            }
        }
        for record in self.transfers.iter() {
            h.u64(record.transfer_id.0);
            h.u8(match record.fields.kind {
                FundingKind::Deposit => 0,
                FundingKind::Withdrawal => 1,
                FundingKind::Transfer => 2,
            });
            h.u32(record.fields.account.0);
            h.u32(record.fields.to.0);
            h.u16(record.fields.asset.0);
            h.u64(record.fields.amount);
            h.u16(record.result.map_or(0, |reason| reason.code()));
        }
        h.0.digest128()
    }

    /// An instrument's spec, status and book. The ladder's range is left out:
    /// it depends on the history of band updates, never on an outcome.
    fn hash_instrument(&self, h: &mut StateHasher, id: InstrumentId) {
        let market = self.market(id).expect("listed instruments exist");
        let spec = market.instrument.spec;
        h.u32(id.0);
        h.bytes(&spec.symbol.bytes());
        h.u16(spec.base.0);
        h.u16(spec.quote.0);
        h.u64(spec.quantity_unit);
        h.i64(spec.tick_size.0);
        h.u64(spec.lot_size.0);
        h.u64(spec.min_quantity.0);
        h.u64(spec.max_quantity.0);
        h.i64(spec.reference_price.0);
        h.u32(spec.band_bps);
        h.u16(spec.maker_fee_bps);
        h.u16(spec.taker_fee_bps);
        h.u8(match market.instrument.status {
            TradingStatus::Open => 0,
            TradingStatus::Halted => 1,
        });
        for side in [Side::Buy, Side::Sell] {
            h.u8(side_code(side));
            for order in self.book_orders(id, side) {
                let slot = self
                    .orders
                    .by_id(order.order_id)
                    .expect("booked orders are indexed");
                h.order(self.orders.node(slot));
            }
        }
    }
}

fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

fn time_in_force_code(time_in_force: TimeInForce) -> u8 {
    match time_in_force {
        TimeInForce::Day => 0,
        TimeInForce::GoodTillCancel => 1,
        TimeInForce::ImmediateOrCancel => 2,
        TimeInForce::FillOrKill => 3,
    }
}

fn self_trade_code(mode: SelfTradePrevention) -> u8 {
    match mode {
        SelfTradePrevention::None => 0,
        SelfTradePrevention::CancelNewest => 1,
        SelfTradePrevention::CancelOldest => 2,
        SelfTradePrevention::CancelBoth => 3,
        SelfTradePrevention::DecrementAndCancel => 4,
    }
}
