//! Matching and settlement on one instrument: the walk of an incoming order
//! through the opposite side of the book, self-trade prevention, fills and
//! their settlement, and the holds that orders place and release.
//!
//! Price-time priority: the best price first, and at one price the oldest
//! order first; a fill is at the resting order's price. Every fill settles at
//! once: quote from the buyer's hold to the seller, base from the seller's
//! hold to the buyer, fees of both sides to the fee account, and the part of
//! the buyer's hold no longer needed (price improvement, a lower maker fee)
//! back to the buyer's available balance.

use super::Engine;
use crate::book::{Book, NIL, OrderNode, OrderStore, Slot};
use crate::event::{CancelReason, Event, EventSink};
use crate::instrument::{FeeRates, InstrumentSpec, fee, hold_required, notional};
use crate::ledger::Ledger;
use crate::types::{
    AccountId, AssetId, Balance, InstrumentId, MatchNumber, OrderId, Price, Quantity,
    SelfTradePrevention, Side, TimeInForce, UserRefNum,
};

/// The incoming order while it matches.
#[derive(Clone, Copy, Debug)]
pub(super) struct Taker {
    pub(super) order_id: OrderId,
    pub(super) account: AccountId,
    pub(super) user_ref_num: UserRefNum,
    pub(super) side: Side,
    /// The limit price, or a market order's effective protection price.
    pub(super) limit: Price,
    pub(super) remaining: Quantity,
    pub(super) fees: FeeRates,
    pub(super) time_in_force: TimeInForce,
    pub(super) self_trade: SelfTradePrevention,
    pub(super) post_only: bool,
}

/// How the walk of a taker through the book ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WalkEnd {
    /// Filled, or no more resting orders within its limit.
    Exhausted,
    /// Self-trade prevention cancels the taker's rest.
    SelfTrade,
}

/// What self-trade prevention leaves of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterSelfTrade {
    /// The taker goes on to the next resting order.
    KeepWalking,
    /// The taker's rest is to be cancelled.
    StopTaker,
}

/// Mutable access to one instrument's book and the ledger, for the length of
/// one command.
#[derive(Debug)]
pub(super) struct Matcher<'a> {
    pub(super) instrument: InstrumentId,
    pub(super) spec: &'a InstrumentSpec,
    pub(super) book: &'a mut Book,
    pub(super) orders: &'a mut OrderStore,
    pub(super) ledger: &'a mut Ledger,
    fee_account: AccountId,
    next_match_number: &'a mut u64,
}

impl Engine {
    /// The matcher of an instrument that exists.
    pub(super) fn matcher(&mut self, instrument: InstrumentId) -> Matcher<'_> {
        let market = self.markets[instrument.0 as usize]
            .as_mut()
            .expect("caller checked the instrument exists");
        Matcher {
            instrument,
            spec: &market.instrument.spec,
            book: &mut market.book,
            orders: &mut self.orders,
            ledger: &mut self.ledger,
            fee_account: self.config.fee_account,
            next_match_number: &mut self.next_match_number,
        }
    }
}

/// Whether a `side` order limited at `limit` trades with a resting order at
/// `resting`.
#[inline]
pub(super) fn crosses(side: Side, limit: Price, resting: Price) -> bool {
    match side {
        Side::Buy => resting <= limit,
        Side::Sell => resting >= limit,
    }
}

/// Whose hold an order is: what its hold is computed from besides the open
/// quantity.
#[derive(Clone, Copy, Debug)]
pub(super) struct Holder {
    pub(super) account: AccountId,
    pub(super) side: Side,
    /// The limit (or effective protection) price.
    pub(super) price: Price,
    pub(super) fees: FeeRates,
}

impl Holder {
    pub(super) fn of_node(node: &OrderNode) -> Holder {
        Holder {
            account: node.account,
            side: node.side,
            price: node.price,
            fees: node.fees,
        }
    }

    fn of_taker(taker: &Taker) -> Holder {
        Holder {
            account: taker.account,
            side: taker.side,
            price: taker.limit,
            fees: taker.fees,
        }
    }
}

/// One side of a fill, as settlement sees it.
#[derive(Clone, Copy, Debug)]
struct Party {
    account: AccountId,
    limit: Price,
    /// Open quantity before the fill.
    remaining: Quantity,
    fees: FeeRates,
    /// The rate this side pays on this fill (maker or taker).
    fee_bps: u16,
}

impl Matcher<'_> {
    /// What an order must hold; it fit 64 bits when the order was accepted,
    /// and holds only shrink with the quantity.
    #[inline]
    fn required(&self, side: Side, price: Price, quantity: Quantity, fees: FeeRates) -> u64 {
        hold_required(self.spec, side, price, quantity, fees).expect("checked at acceptance")
    }

    /// Whether a `side` order at `limit` would trade on arrival.
    pub(super) fn would_cross(&self, side: Side, limit: Price) -> bool {
        self.book
            .side(side.opposite())
            .best_price()
            .is_some_and(|(best, _)| crosses(side, limit, best))
    }

    /// Move `amount` of the `side` asset from available to held.
    pub(super) fn hold(
        &mut self,
        account: AccountId,
        side: Side,
        amount: u64,
        events: &mut impl EventSink,
    ) {
        if amount > 0 {
            let asset = self.spec.held_asset(side);
            let balance = self.ledger.hold(account, asset, amount);
            events.push(balance_changed(account, asset, balance));
        }
    }

    /// Change what an order holds from `from` to `to` (a replace).
    pub(super) fn adjust_hold(
        &mut self,
        account: AccountId,
        side: Side,
        from: u64,
        to: u64,
        events: &mut impl EventSink,
    ) {
        if to > from {
            self.hold(account, side, to - from, events);
        } else if from > to {
            let asset = self.spec.held_asset(side);
            let balance = self.ledger.release(account, asset, from - to);
            events.push(balance_changed(account, asset, balance));
        }
    }

    /// Release what an order holds beyond what `to` open quantity requires.
    pub(super) fn release_to(
        &mut self,
        holder: Holder,
        from: Quantity,
        to: Quantity,
        events: &mut impl EventSink,
    ) {
        let Holder {
            account,
            side,
            price,
            fees,
        } = holder;
        let amount = self.required(side, price, from, fees) - self.required(side, price, to, fees);
        if amount > 0 {
            let asset = self.spec.held_asset(side);
            let balance = self.ledger.release(account, asset, amount);
            events.push(balance_changed(account, asset, balance));
        }
    }

    /// Whether `taker` can be filled whole right now (fill or kill). Resting
    /// orders of its own account count only if self-trades are allowed; with
    /// cancel-oldest they would be cancelled and are skipped; any other mode
    /// would stop or shrink the taker, so it cannot fill whole.
    pub(super) fn can_fill_whole(&self, taker: &Taker) -> bool {
        let ladder = self.book.side(taker.side.opposite());
        let mut needed = taker.remaining.0;
        let mut level = ladder.best();
        while let Some(index) = level {
            if !crosses(taker.side, taker.limit, ladder.price(index)) {
                return false;
            }
            let mut slot = ladder.level(index).head;
            while slot != NIL {
                let node = self.orders.node(slot);
                if node.account == taker.account && taker.self_trade != SelfTradePrevention::None {
                    if taker.self_trade != SelfTradePrevention::CancelOldest {
                        return false;
                    }
                } else {
                    if node.remaining.0 >= needed {
                        return true;
                    }
                    needed -= node.remaining.0;
                }
                slot = node.next;
            }
            level = ladder.next_worse(index);
        }
        false
    }

    /// Trade `taker` against the opposite side until it is filled, the next
    /// resting price is beyond its limit, or self-trade prevention ends it.
    pub(super) fn walk(&mut self, taker: &mut Taker, events: &mut impl EventSink) -> WalkEnd {
        let maker_side = taker.side.opposite();
        while taker.remaining.0 > 0 {
            let ladder = self.book.side(maker_side);
            let Some(index) = ladder.best() else {
                break;
            };
            if !crosses(taker.side, taker.limit, ladder.price(index)) {
                break;
            }
            let slot = ladder.level(index).head;
            let maker = *self.orders.node(slot);
            if maker.account == taker.account && taker.self_trade != SelfTradePrevention::None {
                if self.prevent_self_trade(taker, slot, events) == AfterSelfTrade::StopTaker {
                    return WalkEnd::SelfTrade;
                }
                continue;
            }
            self.fill(taker, slot, events);
        }
        WalkEnd::Exhausted
    }

    fn prevent_self_trade(
        &mut self,
        taker: &mut Taker,
        slot: Slot,
        events: &mut impl EventSink,
    ) -> AfterSelfTrade {
        let reason = CancelReason::SelfTrade;
        match taker.self_trade {
            SelfTradePrevention::None => unreachable!("self-trades are allowed"),
            SelfTradePrevention::CancelNewest => AfterSelfTrade::StopTaker,
            SelfTradePrevention::CancelOldest => {
                self.cancel_resting(slot, reason, events);
                AfterSelfTrade::KeepWalking
            }
            SelfTradePrevention::CancelBoth => {
                self.cancel_resting(slot, reason, events);
                AfterSelfTrade::StopTaker
            }
            SelfTradePrevention::DecrementAndCancel => {
                let decrement = taker.remaining.min(self.orders.node(slot).remaining);
                self.reduce_resting(slot, decrement, reason, events);
                self.reduce_taker(taker, decrement, reason, events);
                AfterSelfTrade::KeepWalking
            }
        }
    }

    /// One fill of the taker against the head order at `slot`.
    fn fill(&mut self, taker: &mut Taker, slot: Slot, events: &mut impl EventSink) {
        let maker = *self.orders.node(slot);
        let quantity = taker.remaining.min(maker.remaining);
        let match_number = MatchNumber(*self.next_match_number);
        *self.next_match_number += 1;
        events.push(Event::Fill {
            match_number,
            instrument: self.instrument,
            price: maker.price,
            quantity,
            taker_side: taker.side,
            maker_order_id: maker.id,
            maker_account: maker.account,
            maker_user_ref_num: maker.user_ref_num,
            taker_order_id: taker.order_id,
            taker_account: taker.account,
            taker_user_ref_num: taker.user_ref_num,
        });
        let maker_party = Party {
            account: maker.account,
            limit: maker.price,
            remaining: maker.remaining,
            fees: maker.fees,
            fee_bps: maker.fees.maker_bps,
        };
        let taker_party = Party {
            account: taker.account,
            limit: taker.limit,
            remaining: taker.remaining,
            fees: taker.fees,
            fee_bps: taker.fees.taker_bps,
        };
        let (buyer, seller) = match taker.side {
            Side::Buy => (taker_party, maker_party),
            Side::Sell => (maker_party, taker_party),
        };
        self.settle(buyer, seller, maker.price, quantity, events);

        if quantity == maker.remaining {
            self.book
                .side_mut(maker.side)
                .unlink(self.orders.nodes_mut(), slot);
            self.orders.remove(slot);
        } else {
            self.orders.node_mut(slot).remaining = Quantity(maker.remaining.0 - quantity.0);
            self.book.side_mut(maker.side).reduce(maker.price, quantity);
        }
        taker.remaining = Quantity(taker.remaining.0 - quantity.0);
    }

    /// Settle one fill. Events, in order: the buyer's quote, the buyer's
    /// base, the seller's base, the seller's quote, the fee account's quote
    /// (each only if it changed).
    fn settle(
        &mut self,
        buyer: Party,
        seller: Party,
        price: Price,
        quantity: Quantity,
        events: &mut impl EventSink,
    ) {
        let (base, quote) = (self.spec.base, self.spec.quote);
        // Invariant: the buy side's hold covered its limit × quantity in 64
        // bits, and the fill is at or below that limit and quantity.
        let notional = notional(price, quantity).expect("bounded by the buyer's hold");
        let base_amount = self
            .spec
            .base_amount(quantity)
            .expect("bounded by the seller's hold");
        let buyer_fee = fee(notional, buyer.fee_bps);
        let seller_fee = fee(notional, seller.fee_bps);

        let before = self.required(Side::Buy, buyer.limit, buyer.remaining, buyer.fees);
        let after_quantity = Quantity(buyer.remaining.0 - quantity.0);
        let after = self.required(Side::Buy, buyer.limit, after_quantity, buyer.fees);
        let paid = notional + buyer_fee;
        let released = (before - after)
            .checked_sub(paid)
            .expect("a hold covers the fills of its quantity");

        let balance = self
            .ledger
            .settle_held(buyer.account, quote, paid, released);
        events.push(balance_changed(buyer.account, quote, balance));
        let balance = self.ledger.credit(buyer.account, base, base_amount);
        events.push(balance_changed(buyer.account, base, balance));
        let balance = self
            .ledger
            .settle_held(seller.account, base, base_amount, 0);
        events.push(balance_changed(seller.account, base, balance));
        let proceeds = notional - seller_fee;
        if proceeds > 0 {
            let balance = self.ledger.credit(seller.account, quote, proceeds);
            events.push(balance_changed(seller.account, quote, balance));
        }
        let fees = buyer_fee + seller_fee;
        if fees > 0 {
            let balance = self.ledger.credit(self.fee_account, quote, fees);
            events.push(balance_changed(self.fee_account, quote, balance));
        }
    }

    /// Cancel a resting order whole, releasing its hold.
    pub(super) fn cancel_resting(
        &mut self,
        slot: Slot,
        reason: CancelReason,
        events: &mut impl EventSink,
    ) {
        let node = *self.orders.node(slot);
        self.book
            .side_mut(node.side)
            .unlink(self.orders.nodes_mut(), slot);
        self.orders.remove(slot);
        events.push(canceled(&node, node.remaining, Quantity(0), reason));
        self.release_to(Holder::of_node(&node), node.remaining, Quantity(0), events);
    }

    /// Take `by` off a resting order, keeping its priority; all of it cancels
    /// the order.
    pub(super) fn reduce_resting(
        &mut self,
        slot: Slot,
        by: Quantity,
        reason: CancelReason,
        events: &mut impl EventSink,
    ) {
        let node = *self.orders.node(slot);
        if by == node.remaining {
            self.cancel_resting(slot, reason, events);
            return;
        }
        let left = Quantity(node.remaining.0 - by.0);
        self.orders.node_mut(slot).remaining = left;
        self.book.side_mut(node.side).reduce(node.price, by);
        events.push(canceled(&node, by, left, reason));
        self.release_to(Holder::of_node(&node), node.remaining, left, events);
    }

    fn reduce_taker(
        &mut self,
        taker: &mut Taker,
        by: Quantity,
        reason: CancelReason,
        events: &mut impl EventSink,
    ) {
        let left = Quantity(taker.remaining.0 - by.0);
        events.push(Event::OrderCanceled {
            order_id: taker.order_id,
            account: taker.account,
            user_ref_num: taker.user_ref_num,
            instrument: self.instrument,
            side: taker.side,
            canceled: by,
            remaining: left,
            reason,
        });
        self.release_to(Holder::of_taker(taker), taker.remaining, left, events);
        taker.remaining = left;
    }

    /// After the walk: book what is left of a taker that may rest, cancel it
    /// otherwise.
    pub(super) fn finish(&mut self, taker: &mut Taker, end: WalkEnd, events: &mut impl EventSink) {
        if taker.remaining.0 == 0 {
            return;
        }
        match end {
            WalkEnd::SelfTrade => {
                self.reduce_taker(taker, taker.remaining, CancelReason::SelfTrade, events)
            }
            WalkEnd::Exhausted if taker.time_in_force.rests() => self.book_taker(taker, events),
            WalkEnd::Exhausted => {
                debug_assert!(taker.time_in_force != TimeInForce::FillOrKill);
                self.reduce_taker(
                    taker,
                    taker.remaining,
                    CancelReason::ImmediateOrCancel,
                    events,
                );
            }
        }
    }

    fn book_taker(&mut self, taker: &Taker, events: &mut impl EventSink) {
        let slot = self.orders.insert(OrderNode {
            id: taker.order_id,
            account: taker.account,
            instrument: self.instrument,
            user_ref_num: taker.user_ref_num,
            price: taker.limit,
            remaining: taker.remaining,
            fees: taker.fees,
            side: taker.side,
            time_in_force: taker.time_in_force,
            self_trade: taker.self_trade,
            post_only: taker.post_only,
            previous: NIL,
            next: NIL,
            account_previous: NIL,
            account_next: NIL,
        });
        self.book
            .side_mut(taker.side)
            .push_back(self.orders.nodes_mut(), slot);
        events.push(Event::OrderBooked {
            order_id: taker.order_id,
            account: taker.account,
            instrument: self.instrument,
            side: taker.side,
            price: taker.limit,
            quantity: taker.remaining,
        });
    }
}

#[inline]
pub(super) fn balance_changed(account: AccountId, asset: AssetId, balance: Balance) -> Event {
    Event::BalanceChanged {
        account,
        asset,
        available: balance.available,
        held: balance.held,
    }
}

fn canceled(
    node: &OrderNode,
    canceled: Quantity,
    remaining: Quantity,
    reason: CancelReason,
) -> Event {
    Event::OrderCanceled {
        order_id: node.id,
        account: node.account,
        user_ref_num: node.user_ref_num,
        instrument: node.instrument,
        side: node.side,
        canceled,
        remaining,
        reason,
    }
}
