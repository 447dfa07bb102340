//! The `lobster` 0.7 adapter: our commands as lobster `OrderType`s.
//!
//! lobster has limit, market and cancel orders and nothing else, so some of
//! ours are emulated:
//!
//! | ours | lobster |
//! |---|---|
//! | limit GTC / Day | `Limit` |
//! | limit IOC | `Limit`, then `Cancel` of whatever rested (emulated) |
//! | market with a protection price | as IOC at that price (emulated) |
//! | cancel whole | `Cancel` |
//! | cancel down to a quantity | `Cancel`, then `Limit` of the rest at the same price: priority is lost (ours keeps it) |
//! | replace | `Cancel`, then `Limit` at the new price and quantity (no native modify; priority is lost, as ours for a move, but also where ours keeps it) |
//! | FOK, post-only, market without protection, mass cancel | not expressible: counted as unsupported |
//! | funding, admin | not sent |
//!
//! lobster takes the caller's order ids (`u128`), so ours are encoded
//! directly: account in the high 64 bits, client reference in the low. The
//! adapter keeps each resting order's side and price (a replace names
//! neither the side, nor a partial cancel the price) and forgets an order
//! when lobster reports it completely filled.

use super::{OrderKey, Peer, PeerFill, PeerStatus, unsigned_price};
use engine::{
    AccountId, CancelOrder, Command, NewOrder, OrderPrice, Price, ReplaceOrder, Side, TimeInForce,
    UserRefNum,
};
use lobster as lb;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// lobster's default for the orders one price level holds before growing.
const QUEUE_CAPACITY: usize = 10;

/// What the adapter remembers of a resting order.
#[derive(Clone, Copy, Debug)]
struct Resting {
    side: Side,
    price: u64,
}

type RestingOrders = HashMap<OrderKey, Resting, BuildHasherDefault<rustc_hash::FxHasher>>;

/// Our engine driving a `lobster::OrderBook`.
#[derive(Debug)]
pub struct LobsterPeer {
    book: lb::OrderBook,
    /// Orders preallocated in lobster's arena, and the adapter's map.
    orders_capacity: usize,
    resting: RestingOrders,
}

impl LobsterPeer {
    /// A peer whose book preallocates `orders_capacity` orders.
    pub fn new(orders_capacity: usize) -> LobsterPeer {
        let mut resting = RestingOrders::default();
        resting.reserve(orders_capacity);
        LobsterPeer {
            book: lb::OrderBook::new(orders_capacity, QUEUE_CAPACITY, false),
            orders_capacity,
            resting,
        }
    }

    /// Enter a limit order; if `immediate`, cancel whatever of it rested.
    fn limit(
        &mut self,
        key: OrderKey,
        side: Side,
        price: u64,
        quantity: u64,
        immediate: bool,
        fills: &mut Vec<PeerFill>,
    ) {
        let id = order_id(key);
        let event = self.book.execute(lb::OrderType::Limit {
            id,
            side: lobster_side(side),
            qty: quantity,
            price,
        });
        let rested = match &event {
            lb::OrderEvent::Placed { .. } => true,
            lb::OrderEvent::PartiallyFilled { fills: made, .. } => {
                self.push_fills(made, fills);
                true
            }
            lb::OrderEvent::Filled { fills: made, .. } => {
                self.push_fills(made, fills);
                false
            }
            // Not answers to a limit order.
            lb::OrderEvent::Unfilled { .. } | lb::OrderEvent::Canceled { .. } => false,
        };
        if rested {
            if immediate {
                self.book.execute(lb::OrderType::Cancel { id });
            } else {
                self.resting.insert(key, Resting { side, price });
            }
        }
    }

    fn push_fills(&mut self, made: &[lb::FillMetadata], fills: &mut Vec<PeerFill>) {
        for fill in made {
            if fill.total_fill {
                self.resting.remove(&order_key(fill.order_2));
            }
            fills.push(PeerFill {
                // Invariant: every price the adapter sends came from a
                // positive i64, so every fill price fits one.
                price: Price(i64::try_from(fill.price).expect("a price sent as i64")),
                quantity: fill.qty,
                taker_side: match fill.taker_side {
                    lb::Side::Bid => Side::Buy,
                    lb::Side::Ask => Side::Sell,
                },
            });
        }
    }

    fn new_order(&mut self, order: &NewOrder, fills: &mut Vec<PeerFill>) -> PeerStatus {
        let (price, immediate) = match (order.price, order.time_in_force) {
            (OrderPrice::Limit(price), TimeInForce::Day | TimeInForce::GoodTillCancel) => {
                (price, false)
            }
            (OrderPrice::Limit(price), TimeInForce::ImmediateOrCancel) => (price, true),
            (
                OrderPrice::Market {
                    protection: Some(price),
                },
                _,
            ) => (price, true),
            (OrderPrice::Limit(_), TimeInForce::FillOrKill)
            | (OrderPrice::Market { protection: None }, _) => return PeerStatus::Unsupported,
        };
        let Some(price) = unsigned_price(price).filter(|_| !order.post_only) else {
            return PeerStatus::Unsupported;
        };
        let key = OrderKey {
            account: order.account,
            user_ref_num: order.user_ref_num,
        };
        self.limit(key, order.side, price, order.quantity.0, immediate, fills);
        PeerStatus::Applied
    }

    fn cancel(&mut self, cancel: &CancelOrder, fills: &mut Vec<PeerFill>) -> PeerStatus {
        let Some(key) = OrderKey::named(cancel.account, cancel.order) else {
            return PeerStatus::Unsupported;
        };
        let Some(resting) = self.resting.remove(&key) else {
            // lobster answers `Canceled` even for an order it does not
            // have: the adapter's map is what knows.
            return PeerStatus::Rejected;
        };
        self.book
            .execute(lb::OrderType::Cancel { id: order_id(key) });
        if cancel.quantity.0 > 0 {
            // No reduce-in-place: re-enter the rest, behind its level.
            self.limit(
                key,
                resting.side,
                resting.price,
                cancel.quantity.0,
                false,
                fills,
            );
        }
        PeerStatus::Applied
    }

    fn replace(&mut self, replace: &ReplaceOrder, fills: &mut Vec<PeerFill>) -> PeerStatus {
        let (Some(key), Some(price)) = (
            OrderKey::named(replace.account, replace.order),
            unsigned_price(replace.price),
        ) else {
            return PeerStatus::Unsupported;
        };
        let Some(resting) = self.resting.remove(&key) else {
            return PeerStatus::Rejected;
        };
        self.book
            .execute(lb::OrderType::Cancel { id: order_id(key) });
        let new_key = OrderKey {
            account: replace.account,
            user_ref_num: replace.new_user_ref_num,
        };
        self.limit(
            new_key,
            resting.side,
            price,
            replace.quantity.0,
            false,
            fills,
        );
        PeerStatus::Applied
    }
}

impl Peer for LobsterPeer {
    fn name(&self) -> &'static str {
        "lobster"
    }

    fn version(&self) -> &'static str {
        "0.7"
    }

    fn reset(&mut self) {
        *self = LobsterPeer::new(self.orders_capacity);
    }

    #[inline]
    fn apply(&mut self, command: &Command, fills: &mut Vec<PeerFill>) -> PeerStatus {
        match command {
            Command::NewOrder(order) => self.new_order(order, fills),
            Command::CancelOrder(cancel) => self.cancel(cancel, fills),
            Command::ReplaceOrder(replace) => self.replace(replace, fills),
            Command::MassCancel(_) => PeerStatus::Unsupported,
            Command::Deposit(_)
            | Command::Withdrawal(_)
            | Command::Transfer(_)
            | Command::AccountQuery(_)
            | Command::GatewayReject(_)
            | Command::Admin(_) => PeerStatus::Ignored,
        }
    }

    fn notes(&self) -> Vec<String> {
        [
            "one instrument, no accounts, balances or funds check (no risk holds, no fees): \
             funding and admin commands are not sent",
            "no self-trade prevention (the workloads ask for none)",
            "no price band, tick or lot checks",
            "no IOC: emulated as a limit order, then a cancel of whatever rested (two calls, \
             both timed)",
            "cancel is by the caller's id (ours encoded in its u128), but it answers Canceled \
             even for an id it does not hold: the adapter's map decides",
            "no native modify: replace is cancel + new order (loses priority, like our move; \
             ours keeps priority for a same-price reduction), and a cancel down to a quantity \
             is cancel + re-entry, which loses the priority ours keeps",
            "no FOK, post-only, or market order without a protection price: such commands are \
             counted as unsupported",
            "known from its source (0.7.0): empty price levels are never removed from its \
             BTreeMaps, and every match and cancel rescans them for the best price; a fully \
             filled maker is never freed from its arena's id map",
        ]
        .iter()
        .map(|note| (*note).to_owned())
        .collect()
    }
}

/// Our order key as lobster's id: account high, client reference low.
fn order_id(key: OrderKey) -> u128 {
    (u128::from(key.account.0) << 64) | u128::from(key.user_ref_num.0)
}

/// The inverse of [`order_id`].
fn order_key(id: u128) -> OrderKey {
    OrderKey {
        // Invariant: ids are only ever made by `order_id`, so the high half
        // holds a u32 and the low half is the reference; the casts take
        // exactly those bits.
        account: AccountId((id >> 64) as u32),
        user_ref_num: UserRefNum(id as u64),
    }
}

fn lobster_side(side: Side) -> lb::Side {
    match side {
        Side::Buy => lb::Side::Bid,
        Side::Sell => lb::Side::Ask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_round_trip() {
        for (account, reference) in [(0, 0), (1, 1), (u32::MAX, u64::MAX), (2_000, 123_456)] {
            let key = OrderKey {
                account: AccountId(account),
                user_ref_num: UserRefNum(reference),
            };
            assert_eq!(order_key(order_id(key)), key);
        }
    }
}
