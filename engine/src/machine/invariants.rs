//! `check_invariants()`: a full audit of the state, run by tests after every
//! command (it walks everything, so it is never called on the hot path).
//!
//! 1. Conservation, per asset: Σ available + Σ held over all accounts (the
//!    fee account included) = Σ deposits − Σ withdrawals.
//! 2. No book is crossed: best bid < best ask.
//! 3. Every account's held amount of every asset equals what its open orders
//!    require (a buy: limit × open quantity plus the largest fee; a sell: the
//!    base amount of its open quantity).
//! 4. Every level's quantity and count equal the sum over its FIFO queue;
//!    each order sits on the right book, side and price, with quantity > 0.
//! 5. Both order indexes hold exactly the open orders; each account's order
//!    list holds exactly its open orders; no open order has a user reference
//!    above its account's last one.

use super::Engine;
use crate::instrument::hold_required;
use crate::types::{AccountId, AssetId, Side};
use std::collections::BTreeMap;

impl Engine {
    /// Audit the whole state; the first violation found, described.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_books()?;
        self.check_holds()?;
        self.check_conservation()?;
        self.check_indexes()
    }

    fn check_conservation(&self) -> Result<(), String> {
        for (asset, _) in self.assets() {
            let mut sum = 0_u128;
            for account in self.accounts() {
                let balance = self.ledger.balance(account, asset);
                sum += u128::from(balance.available) + u128::from(balance.held);
            }
            let supply = self.ledger.totals(asset).supply();
            if sum != supply {
                return Err(format!(
                    "asset {asset}: balances sum to {sum}, deposits − withdrawals = {supply}"
                ));
            }
        }
        Ok(())
    }

    fn check_books(&self) -> Result<(), String> {
        for instrument in self.instruments() {
            if let (Some(bid), Some(ask)) = (self.best_bid(instrument), self.best_ask(instrument))
                && bid.0 >= ask.0
            {
                return Err(format!(
                    "instrument {instrument}: crossed, bid {} ≥ ask {}",
                    bid.0, ask.0
                ));
            }
            for side in [Side::Buy, Side::Sell] {
                let mut levels = BTreeMap::<i64, (u64, u32)>::new();
                for order in self.book_orders(instrument, side) {
                    if order.instrument != instrument
                        || order.side != side
                        || order.remaining.0 == 0
                    {
                        return Err(format!(
                            "order {} misplaced or empty: {order:?}",
                            order.order_id
                        ));
                    }
                    let level = levels.entry(order.price.0).or_default();
                    level.0 += order.remaining.0;
                    level.1 += 1;
                }
                let depth: BTreeMap<i64, (u64, u32)> = self
                    .depth(instrument, side)
                    .map(|(price, quantity, orders)| (price.0, (quantity.0, orders)))
                    .collect();
                if depth != levels {
                    return Err(format!(
                        "instrument {instrument} {side:?}: level totals differ from their orders"
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_holds(&self) -> Result<(), String> {
        let mut required = BTreeMap::<(AccountId, AssetId), u128>::new();
        for instrument in self.instruments() {
            let spec = self.market(instrument).expect("listed").instrument.spec;
            for side in [Side::Buy, Side::Sell] {
                for order in self.book_orders(instrument, side) {
                    let slot = self
                        .orders
                        .by_id(order.order_id)
                        .ok_or("booked order not indexed")?;
                    let fees = self.orders.node(slot).fees;
                    let amount = hold_required(&spec, side, order.price, order.remaining, fees)
                        .ok_or("hold of a resting order overflows")?;
                    let asset = spec.held_asset(side);
                    *required.entry((order.account, asset)).or_default() += u128::from(amount);
                }
            }
        }
        for account in self.accounts() {
            for (asset, _) in self.assets() {
                let held = u128::from(self.ledger.balance(account, asset).held);
                let needed = required.get(&(account, asset)).copied().unwrap_or(0);
                if held != needed {
                    return Err(format!(
                        "account {account} asset {asset}: held {held}, open orders require {needed}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_indexes(&self) -> Result<(), String> {
        let open = self.orders.open_orders() as usize;
        let mut booked = 0_usize;
        for instrument in self.instruments() {
            for side in [Side::Buy, Side::Sell] {
                booked += self.book_orders(instrument, side).count();
            }
        }
        let (by_id, by_user_ref) = self.orders.index_sizes();
        if booked != open || by_id != open || by_user_ref != open {
            return Err(format!(
                "{open} open orders, {booked} booked, {by_id} by id, {by_user_ref} by user reference"
            ));
        }
        let mut listed = 0_usize;
        for account in self.accounts() {
            let last = self.last_user_ref_num(account).expect("listed");
            for order in self.account_orders(account) {
                listed += 1;
                if order.account != account || order.user_ref_num > last {
                    return Err(format!("account {account} lists order {order:?} wrongly"));
                }
                let by_ref = self.order(
                    account,
                    crate::command::OrderRef::UserRef(order.user_ref_num),
                );
                if by_ref != Some(order) {
                    return Err(format!(
                        "order {} not found by its user reference",
                        order.order_id
                    ));
                }
            }
        }
        if listed != open {
            return Err(format!("{open} open orders, {listed} in account lists"));
        }
        Ok(())
    }
}
