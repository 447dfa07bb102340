//! The generator's view of which orders rest, kept from the scratch engine's
//! events so that cancels and replaces name orders that really are open.
//!
//! Orders sit in a vector (so one can be drawn uniformly in O(1)) with an
//! index from order id to position; removal swaps the last order into the
//! hole. The index is a hash map that is only looked up, never iterated, so
//! its random seed cannot change the stream.

use engine::{AccountId, Event, OrderId, Price, Quantity, Side, UserRefNum};
use std::collections::HashMap;

/// An open order as the generator knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LiveOrder {
    pub(crate) order_id: OrderId,
    pub(crate) account: AccountId,
    pub(crate) user_ref_num: UserRefNum,
    pub(crate) side: Side,
    pub(crate) price: Price,
    pub(crate) remaining: Quantity,
}

#[derive(Debug, Default)]
pub(crate) struct LiveOrders {
    orders: Vec<LiveOrder>,
    positions: HashMap<OrderId, usize>,
}

/// What one command's events did, as the generator counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    pub(crate) fills: u64,
    pub(crate) rejected: bool,
}

impl LiveOrders {
    pub(crate) fn len(&self) -> usize {
        self.orders.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    pub(crate) fn at(&self, position: usize) -> LiveOrder {
        self.orders[position]
    }

    /// Update from the events of one command. `user_ref_num` is the
    /// reference the command gave its (new) order: `OrderBooked` does not
    /// carry it.
    pub(crate) fn observe(&mut self, events: &[Event], user_ref_num: UserRefNum) -> Observed {
        let mut observed = Observed::default();
        for event in events {
            match *event {
                Event::OrderBooked {
                    order_id,
                    account,
                    side,
                    price,
                    quantity,
                    ..
                } => self.insert(LiveOrder {
                    order_id,
                    account,
                    user_ref_num,
                    side,
                    price,
                    remaining: quantity,
                }),
                Event::Fill {
                    maker_order_id,
                    quantity,
                    ..
                } => {
                    observed.fills += 1;
                    let remaining = self.remaining(maker_order_id) - quantity.0;
                    self.set_remaining(maker_order_id, Quantity(remaining));
                }
                // The rest of an IOC taker was never booked: not ours.
                Event::OrderCanceled {
                    order_id,
                    remaining,
                    ..
                } if self.positions.contains_key(&order_id) => {
                    self.set_remaining(order_id, remaining);
                }
                Event::OrderReplaced {
                    old_order_id,
                    new_user_ref_num,
                    quantity,
                    priority_kept,
                    ..
                } => {
                    if priority_kept {
                        let position = self.position(old_order_id);
                        self.orders[position].user_ref_num = new_user_ref_num;
                        self.orders[position].remaining = quantity;
                    } else {
                        // The new order id is booked by its own event.
                        self.remove(old_order_id);
                    }
                }
                Event::Rejected { .. } => observed.rejected = true,
                _ => {}
            }
        }
        observed
    }

    fn position(&self, order_id: OrderId) -> usize {
        // Invariant: the engine only reports on orders it booked, and every
        // booking passed through `insert`.
        *self
            .positions
            .get(&order_id)
            .expect("the generator saw this order booked")
    }

    fn remaining(&self, order_id: OrderId) -> u64 {
        self.orders[self.position(order_id)].remaining.0
    }

    fn set_remaining(&mut self, order_id: OrderId, remaining: Quantity) {
        if remaining.0 == 0 {
            self.remove(order_id);
        } else {
            let position = self.position(order_id);
            self.orders[position].remaining = remaining;
        }
    }

    fn insert(&mut self, order: LiveOrder) {
        let previous = self.positions.insert(order.order_id, self.orders.len());
        assert!(previous.is_none(), "order ids are never reused");
        self.orders.push(order);
    }

    fn remove(&mut self, order_id: OrderId) {
        let position = self.position(order_id);
        self.positions.remove(&order_id);
        self.orders.swap_remove(position);
        if let Some(moved) = self.orders.get(position) {
            self.positions.insert(moved.order_id, position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{CancelReason, InstrumentId};

    fn booked(order_id: u64, quantity: u64) -> Event {
        Event::OrderBooked {
            order_id: OrderId(order_id),
            account: AccountId(1),
            instrument: InstrumentId(0),
            side: Side::Buy,
            price: Price(100),
            quantity: Quantity(quantity),
        }
    }

    #[test]
    fn follows_bookings_fills_and_cancels() {
        let mut live = LiveOrders::default();
        live.observe(&[booked(1, 10)], UserRefNum(5));
        live.observe(&[booked(2, 20)], UserRefNum(6));
        assert_eq!(live.len(), 2);
        assert_eq!(live.at(0).user_ref_num, UserRefNum(5));
        let fill = Event::Fill {
            match_number: engine::MatchNumber(1),
            instrument: InstrumentId(0),
            price: Price(100),
            quantity: Quantity(10),
            taker_side: Side::Sell,
            maker_order_id: OrderId(1),
            maker_account: AccountId(1),
            maker_user_ref_num: UserRefNum(5),
            taker_order_id: OrderId(3),
            taker_account: AccountId(2),
            taker_user_ref_num: UserRefNum(1),
        };
        let observed = live.observe(&[fill], UserRefNum(1));
        assert_eq!(observed.fills, 1);
        assert_eq!(live.len(), 1);
        assert_eq!(live.at(0).order_id, OrderId(2));
        let canceled = Event::OrderCanceled {
            order_id: OrderId(2),
            account: AccountId(1),
            user_ref_num: UserRefNum(6),
            instrument: InstrumentId(0),
            side: Side::Buy,
            canceled: Quantity(5),
            remaining: Quantity(15),
            reason: CancelReason::Requested,
        };
        live.observe(&[canceled], UserRefNum(0));
        assert_eq!(live.at(0).remaining, Quantity(15));
    }
}
