//! Order commands: new order, cancel (whole or partial), cancel-replace and
//! mass cancel. Each handler checks in the documented precedence order (see
//! `reject.rs`) and changes nothing until every check has passed, except for
//! consuming a valid `user_ref_num`, which happens as soon as it is known to
//! be new so that a resend of a rejected order is never applied later.

use super::matching::{Holder, Taker};
use super::{Engine, Handled, Rejecter, Rejection};
use crate::book::{NIL, OrderNode, Slot};
use crate::command::{
    CancelOrder, GatewayReject, MassCancel, NewOrder, OrderPrice, OrderRef, ReplaceOrder,
};
use crate::event::{CancelReason, Event, EventSink, Status};
use crate::instrument::{FeeRates, InstrumentSpec, PriceBand, hold_required};
use crate::reject::RejectReason;
use crate::types::{
    AccountId, AccountStatus, InstrumentId, OrderId, Price, Quantity, Side, TimeInForce,
    TradingStatus, UserRefNum,
};

impl Engine {
    pub(super) fn new_order(&mut self, order: &NewOrder, events: &mut impl EventSink) -> Handled {
        let checked = self.check_new_order(order)?;
        let order_id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        events.push(Event::OrderAccepted {
            order_id,
            account: order.account,
            user_ref_num: order.user_ref_num,
            instrument: order.instrument,
            side: order.side,
            price: checked.limit,
            quantity: order.quantity,
            time_in_force: order.time_in_force,
            market: matches!(order.price, OrderPrice::Market { .. }),
            post_only: order.post_only,
            self_trade: order.self_trade,
        });
        let mut taker = Taker {
            order_id,
            account: order.account,
            user_ref_num: order.user_ref_num,
            side: order.side,
            limit: checked.limit,
            remaining: order.quantity,
            fees: checked.fees,
            time_in_force: order.time_in_force,
            self_trade: order.self_trade,
            post_only: order.post_only,
        };
        let mut matcher = self.matcher(order.instrument);
        if order.time_in_force == TimeInForce::FillOrKill && !matcher.can_fill_whole(&taker) {
            events.push(Event::OrderCanceled {
                order_id,
                account: order.account,
                user_ref_num: order.user_ref_num,
                instrument: order.instrument,
                side: order.side,
                canceled: order.quantity,
                remaining: Quantity(0),
                reason: CancelReason::FillOrKill,
            });
            return Ok(Status::Applied);
        }
        matcher.hold(order.account, order.side, checked.required, events);
        let end = matcher.walk(&mut taker, events);
        matcher.finish(&mut taker, end, events);
        Ok(Status::Applied)
    }

    /// Every check of a new order, in precedence order; consumes its
    /// `user_ref_num` once that check passes.
    fn check_new_order(&mut self, order: &NewOrder) -> Result<CheckedOrder, Rejection> {
        let rejecter = Rejecter::new(order.account, order.user_ref_num.0);
        self.consume_user_ref_num(order.account, order.user_ref_num, rejecter)?;
        let market = self
            .market(order.instrument)
            .ok_or(rejecter.reject(RejectReason::UnknownInstrument))?;
        let instrument = &market.instrument;
        rejecter.check(
            instrument.status == TradingStatus::Halted,
            RejectReason::InstrumentHalted,
        )?;
        let market_order = matches!(order.price, OrderPrice::Market { .. });
        let rests = order.time_in_force.rests();
        // A market order never rests; a post-only order must be able to.
        let contradictory = if market_order {
            rests || order.post_only
        } else {
            order.post_only && !rests
        };
        rejecter.check(contradictory, RejectReason::InvalidOrderAttributes)?;
        let limit = match order.price {
            OrderPrice::Limit(price) => {
                check_price(&instrument.spec, instrument.band, price, rejecter)?;
                price
            }
            OrderPrice::Market { protection } => {
                protection_price(order.side, protection, instrument.band, rejecter)?
            }
        };
        check_quantity(&instrument.spec, order.quantity, rejecter)?;
        let fees = instrument.spec.fee_rates();
        let required = hold_required(&instrument.spec, order.side, limit, order.quantity, fees)
            .ok_or(rejecter.reject(RejectReason::Overflow))?;
        let asset = instrument.spec.held_asset(order.side);
        let available = self.ledger.balance(order.account, asset).available;
        rejecter.check(required > available, RejectReason::InsufficientFunds)?;
        let matcher = self.matcher(order.instrument);
        rejecter.check(
            order.post_only && matcher.would_cross(order.side, limit),
            RejectReason::WouldTakeLiquidity,
        )?;
        rejecter.check(rests && matcher.orders.is_full(), RejectReason::BookFull)?;
        Ok(CheckedOrder {
            limit,
            fees,
            required,
        })
    }

    pub(super) fn cancel_order(
        &mut self,
        cancel: &CancelOrder,
        events: &mut impl EventSink,
    ) -> Handled {
        let rejecter = Rejecter::new(cancel.account, order_ref_value(cancel.order));
        rejecter.check(
            self.ledger.account(cancel.account).is_none(),
            RejectReason::UnknownAccount,
        )?;
        let slot = self.resolve_order(cancel.account, cancel.order, rejecter)?;
        let node = *self.orders.node(slot);
        let spec = &self
            .market(node.instrument)
            .expect("orders rest on instruments")
            .instrument
            .spec;
        rejecter.check(
            !cancel.quantity.0.is_multiple_of(spec.lot_size.0),
            RejectReason::QuantityOffLot,
        )?;
        rejecter.check(
            cancel.quantity >= node.remaining,
            RejectReason::QuantityNotReduced,
        )?;
        let by = Quantity(node.remaining.0 - cancel.quantity.0);
        self.matcher(node.instrument)
            .reduce_resting(slot, by, CancelReason::Requested, events);
        Ok(Status::Applied)
    }

    pub(super) fn replace_order(
        &mut self,
        replace: &ReplaceOrder,
        events: &mut impl EventSink,
    ) -> Handled {
        let checked = self.check_replace(replace)?;
        let (slot, node) = (checked.slot, checked.node);
        let mut matcher = self.matcher(node.instrument);
        if checked.priority_kept {
            let by = Quantity(node.remaining.0 - replace.quantity.0);
            if by.0 > 0 {
                matcher.orders.node_mut(slot).remaining = replace.quantity;
                matcher.book.side_mut(node.side).reduce(node.price, by);
            }
            matcher.orders.rename(slot, replace.new_user_ref_num);
            events.push(replaced(&node, node.id, replace, true));
            let holder = Holder::of_node(&node);
            matcher.release_to(holder, node.remaining, replace.quantity, events);
            return Ok(Status::Applied);
        }

        // Priority lost: out of the book, and in again as a new order.
        matcher
            .book
            .side_mut(node.side)
            .unlink(matcher.orders.nodes_mut(), slot);
        matcher.orders.remove(slot);
        let order_id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        events.push(replaced(&node, order_id, replace, false));
        let mut matcher = self.matcher(node.instrument);
        matcher.adjust_hold(
            node.account,
            node.side,
            checked.held,
            checked.required,
            events,
        );
        let mut taker = Taker {
            order_id,
            account: node.account,
            user_ref_num: replace.new_user_ref_num,
            side: node.side,
            limit: replace.price,
            remaining: replace.quantity,
            fees: checked.fees,
            time_in_force: node.time_in_force,
            self_trade: node.self_trade,
            post_only: node.post_only,
        };
        let end = matcher.walk(&mut taker, events);
        matcher.finish(&mut taker, end, events);
        Ok(Status::Applied)
    }

    /// Every check of a replace, in precedence order; consumes the new
    /// `user_ref_num` once that check passes.
    fn check_replace(&mut self, replace: &ReplaceOrder) -> Result<CheckedReplace, Rejection> {
        let rejecter = Rejecter::new(replace.account, replace.new_user_ref_num.0);
        self.consume_user_ref_num(replace.account, replace.new_user_ref_num, rejecter)?;
        let slot = self.resolve_order(replace.account, replace.order, rejecter)?;
        let node = *self.orders.node(slot);
        let instrument = &self
            .market(node.instrument)
            .expect("orders rest on instruments")
            .instrument;
        let spec = &instrument.spec;
        rejecter.check(
            instrument.status == TradingStatus::Halted,
            RejectReason::InstrumentHalted,
        )?;
        check_price(spec, instrument.band, replace.price, rejecter)?;
        check_quantity(spec, replace.quantity, rejecter)?;
        let priority_kept = replace.price == node.price && replace.quantity <= node.remaining;
        // A replace that keeps priority is the same order and keeps its fee
        // rates; one that loses it is a new order at today's rates.
        let fees = if priority_kept {
            node.fees
        } else {
            spec.fee_rates()
        };
        let required = hold_required(spec, node.side, replace.price, replace.quantity, fees)
            .ok_or(rejecter.reject(RejectReason::Overflow))?;
        let held = hold_required(spec, node.side, node.price, node.remaining, node.fees)
            .expect("checked at acceptance");
        let asset = spec.held_asset(node.side);
        let available = self.ledger.balance(replace.account, asset).available;
        rejecter.check(
            required.saturating_sub(held) > available,
            RejectReason::InsufficientFunds,
        )?;
        let matcher = self.matcher(node.instrument);
        rejecter.check(
            node.post_only && !priority_kept && matcher.would_cross(node.side, replace.price),
            RejectReason::WouldTakeLiquidity,
        )?;
        Ok(CheckedReplace {
            slot,
            node,
            priority_kept,
            fees,
            required,
            held,
        })
    }

    pub(super) fn mass_cancel(
        &mut self,
        mass: &MassCancel,
        events: &mut impl EventSink,
    ) -> Handled {
        let rejecter = Rejecter::new(mass.account, 0);
        rejecter.check(
            self.ledger.account(mass.account).is_none(),
            RejectReason::UnknownAccount,
        )?;
        if let Some(instrument) = mass.instrument {
            rejecter.check(
                self.market(instrument).is_none(),
                RejectReason::UnknownInstrument,
            )?;
        }
        let mut count = 0_u32;
        let mut slot = self.orders.account_orders(mass.account).head;
        while slot != NIL {
            let node = *self.orders.node(slot);
            if mass
                .instrument
                .is_none_or(|instrument| instrument == node.instrument)
            {
                self.matcher(node.instrument).cancel_resting(
                    slot,
                    CancelReason::MassCancel,
                    events,
                );
                count += 1;
            }
            slot = node.account_next;
        }
        events.push(Event::MassCanceled {
            account: mass.account,
            instrument: mass.instrument,
            count,
        });
        Ok(Status::Applied)
    }

    /// A message the gateway turned away: `UnknownAccount`, then (for a
    /// non-zero reference) `DuplicateUserRefNum` or the reference consumed,
    /// suspended account or not; then always `GatewayRejected`.
    pub(super) fn gateway_reject(&mut self, reject: &GatewayReject) -> Handled {
        let rejecter = Rejecter::new(reject.account, reject.user_ref_num.0);
        let state = self
            .ledger
            .account_mut(reject.account)
            .ok_or(rejecter.reject(RejectReason::UnknownAccount))?;
        if reject.user_ref_num.0 != 0 {
            rejecter.check(
                reject.user_ref_num <= state.last_user_ref_num,
                RejectReason::DuplicateUserRefNum,
            )?;
            state.last_user_ref_num = reject.user_ref_num;
        }
        Err(rejecter.reject(RejectReason::GatewayRejected))
    }

    /// Check that the account exists and `user_ref_num` is above its last one
    /// and consume it; then that the account is active.
    fn consume_user_ref_num(
        &mut self,
        account: AccountId,
        user_ref_num: UserRefNum,
        rejecter: Rejecter,
    ) -> Result<(), Rejection> {
        let state = self
            .ledger
            .account_mut(account)
            .ok_or(rejecter.reject(RejectReason::UnknownAccount))?;
        rejecter.check(
            user_ref_num <= state.last_user_ref_num,
            RejectReason::DuplicateUserRefNum,
        )?;
        state.last_user_ref_num = user_ref_num;
        rejecter.check(
            state.status == AccountStatus::Suspended,
            RejectReason::AccountSuspended,
        )
    }

    /// The slot of an open order the account may act on.
    fn resolve_order(
        &self,
        account: AccountId,
        order: OrderRef,
        rejecter: Rejecter,
    ) -> Result<Slot, Rejection> {
        let slot = self
            .orders
            .find(account, order)
            .ok_or(rejecter.reject(RejectReason::UnknownOrder))?;
        rejecter.check(
            self.orders.node(slot).account != account,
            RejectReason::NotYourOrder,
        )?;
        Ok(slot)
    }

    /// Cancel every Day order, instrument by instrument, bids then asks, best
    /// price first, oldest first.
    pub(super) fn end_of_day(&mut self, events: &mut impl EventSink) -> u32 {
        let mut count = 0_u32;
        for index in 0..self.markets.len() {
            if self.markets[index].is_none() {
                continue;
            }
            let instrument = InstrumentId(u32::try_from(index).expect("instruments_max fits u32"));
            let mut matcher = self.matcher(instrument);
            for side in [Side::Buy, Side::Sell] {
                let mut level = matcher.book.side(side).best();
                while let Some(level_index) = level {
                    let mut slot = matcher.book.side(side).level(level_index).head;
                    while slot != NIL {
                        let node = *matcher.orders.node(slot);
                        if node.time_in_force == TimeInForce::Day {
                            matcher.cancel_resting(slot, CancelReason::EndOfDay, events);
                            count += 1;
                        }
                        slot = node.next;
                    }
                    level = matcher.book.side(side).next_worse(level_index);
                }
            }
        }
        count
    }
}

/// A new order that passed every check.
#[derive(Clone, Copy, Debug)]
struct CheckedOrder {
    /// The limit price, or a market order's effective protection.
    limit: Price,
    fees: FeeRates,
    /// What it holds on acceptance.
    required: u64,
}

/// A replace that passed every check.
#[derive(Clone, Copy, Debug)]
struct CheckedReplace {
    slot: Slot,
    /// The order as it was.
    node: OrderNode,
    priority_kept: bool,
    fees: FeeRates,
    /// What the replaced order must hold.
    required: u64,
    /// What the order held before.
    held: u64,
}

fn check_price(
    spec: &InstrumentSpec,
    band: PriceBand,
    price: Price,
    rejecter: Rejecter,
) -> Result<(), Rejection> {
    rejecter.check(price.0 % spec.tick_size.0 != 0, RejectReason::PriceOffTick)?;
    rejecter.check(!band.contains(price), RejectReason::PriceOutsideBand)
}

/// A market order's effective protection: its own, bounded by the band, or
/// the band's edge.
fn protection_price(
    side: Side,
    protection: Option<Price>,
    band: PriceBand,
    rejecter: Rejecter,
) -> Result<Price, Rejection> {
    if let Some(price) = protection {
        rejecter.check(price.0 < 1, RejectReason::PriceOutsideBand)?;
    }
    Ok(match side {
        Side::Buy => protection.map_or(band.high, |price| price.min(band.high)),
        Side::Sell => protection.map_or(band.low, |price| price.max(band.low)),
    })
}

fn check_quantity(
    spec: &InstrumentSpec,
    quantity: Quantity,
    rejecter: Rejecter,
) -> Result<(), Rejection> {
    rejecter.check(
        !quantity.0.is_multiple_of(spec.lot_size.0),
        RejectReason::QuantityOffLot,
    )?;
    rejecter.check(
        quantity < spec.min_quantity || quantity > spec.max_quantity,
        RejectReason::QuantityOutOfRange,
    )
}

fn order_ref_value(order: OrderRef) -> u64 {
    match order {
        OrderRef::UserRef(user_ref_num) => user_ref_num.0,
        OrderRef::Id(order_id) => order_id.0,
    }
}

fn replaced(
    node: &OrderNode,
    new_order_id: OrderId,
    replace: &ReplaceOrder,
    priority_kept: bool,
) -> Event {
    Event::OrderReplaced {
        old_order_id: node.id,
        new_order_id,
        account: node.account,
        old_user_ref_num: node.user_ref_num,
        new_user_ref_num: replace.new_user_ref_num,
        instrument: node.instrument,
        side: node.side,
        price: replace.price,
        quantity: replace.quantity,
        priority_kept,
    }
}
