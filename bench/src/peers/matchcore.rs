//! The `matchcore` 0.4 adapter: our commands as matchcore `Command`s.
//!
//! matchcore is a single-instrument, price-time book with native IOC and a
//! native amend (`AmendCmd`), so every command of the workloads has a
//! direct translation:
//!
//! | ours | matchcore |
//! |---|---|
//! | limit GTC / Day | `Submit` limit, `Gtc` |
//! | limit IOC / FOK | `Submit` limit, `Ioc` / `Fok` |
//! | market with a protection price | `Submit` limit `Ioc` at that price |
//! | cancel whole | `Cancel` |
//! | cancel down to a quantity | `Amend` of the quantity (a reduction keeps priority there too) |
//! | replace | `Amend` of price and quantity (same id; a new price or more quantity loses priority, as ours) |
//! | mass cancel, funding, admin | not sent |
//!
//! matchcore numbers orders by the sequence number of the command that
//! submitted them and wants contiguous sequence numbers from 0, so the
//! adapter keeps its own sequence and a map from our (account, reference)
//! to matchcore's id. Entries of resting orders that were filled as makers
//! stay in the map (matchcore's trades do not say whether a maker is done);
//! the workloads never name a filled order again, so they are only memory.

use super::{OrderKey, Peer, PeerFill, PeerStatus, unsigned_price};
use engine::{CancelOrder, Command, NewOrder, OrderPrice, ReplaceOrder, Side, TimeInForce};
use matchcore as mc;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Our order keys to matchcore's order ids.
type OrderIds = HashMap<OrderKey, mc::OrderId, BuildHasherDefault<rustc_hash::FxHasher>>;

/// Our engine driving a `matchcore::OrderBook`.
#[derive(Debug)]
pub struct MatchcorePeer {
    book: mc::OrderBook,
    /// The next command's sequence number (matchcore wants 0, 1, 2, …).
    sequence: u64,
    orders: OrderIds,
}

impl Default for MatchcorePeer {
    fn default() -> Self {
        MatchcorePeer::new()
    }
}

impl MatchcorePeer {
    pub fn new() -> MatchcorePeer {
        MatchcorePeer {
            book: mc::OrderBook::new("ACME"),
            sequence: 0,
            orders: OrderIds::default(),
        }
    }

    /// Execute one matchcore command with the next sequence number.
    fn execute(&mut self, kind: mc::CommandKind) -> mc::CommandOutcome {
        let sequence = self.sequence;
        self.sequence += 1;
        self.book.execute(&mc::Command {
            meta: mc::CommandMeta {
                sequence_number: mc::SequenceNumber(sequence),
                // A synthetic clock, as the driver's: nothing here expires.
                timestamp: mc::Timestamp(sequence),
            },
            kind,
        })
    }

    fn new_order(&mut self, order: &NewOrder, fills: &mut Vec<PeerFill>) -> PeerStatus {
        let (price, time_in_force) = match (order.price, order.time_in_force) {
            (OrderPrice::Limit(price), TimeInForce::Day | TimeInForce::GoodTillCancel) => {
                (price, mc::TimeInForce::Gtc)
            }
            (OrderPrice::Limit(price), TimeInForce::ImmediateOrCancel) => {
                (price, mc::TimeInForce::Ioc)
            }
            (OrderPrice::Limit(price), TimeInForce::FillOrKill) => (price, mc::TimeInForce::Fok),
            (
                OrderPrice::Market {
                    protection: Some(price),
                },
                _,
            ) => (price, mc::TimeInForce::Ioc),
            (OrderPrice::Market { protection: None }, _) => return PeerStatus::Unsupported,
        };
        let Some(price) = unsigned_price(price) else {
            return PeerStatus::Unsupported;
        };
        let limit = mc::LimitOrder::new(
            mc::Price(price),
            mc::QuantityPolicy::Standard {
                quantity: mc::Quantity(order.quantity.0),
            },
            mc::OrderFlags::new(side(order.side), order.post_only, time_in_force),
        );
        let outcome = self.execute(mc::CommandKind::Submit(mc::SubmitCmd {
            order: mc::NewOrder::Limit(limit),
        }));
        let mc::CommandOutcome::Applied(mc::CommandReport::Submit(effects)) = &outcome else {
            return PeerStatus::Rejected;
        };
        let executed = push_fills(effects, order.side, fills);
        if time_in_force == mc::TimeInForce::Gtc && executed < order.quantity.0 {
            let key = OrderKey {
                account: order.account,
                user_ref_num: order.user_ref_num,
            };
            self.orders.insert(key, effects.target_order().order_id());
        }
        PeerStatus::Applied
    }

    fn cancel(&mut self, cancel: &CancelOrder) -> PeerStatus {
        let Some(key) = OrderKey::named(cancel.account, cancel.order) else {
            return PeerStatus::Unsupported;
        };
        let outcome = if cancel.quantity.0 == 0 {
            let Some(order_id) = self.orders.remove(&key) else {
                return PeerStatus::Rejected;
            };
            self.execute(mc::CommandKind::Cancel(mc::CancelCmd {
                order_id,
                order_kind: mc::OrderKind::Limit,
            }))
        } else {
            let Some(&order_id) = self.orders.get(&key) else {
                return PeerStatus::Rejected;
            };
            let patch =
                mc::LimitOrderPatch::new().with_quantity_policy(standard(cancel.quantity.0));
            self.execute(mc::CommandKind::Amend(mc::AmendCmd {
                order_id,
                patch: mc::AmendPatch::Limit(patch),
            }))
        };
        match outcome {
            mc::CommandOutcome::Applied(_) => PeerStatus::Applied,
            mc::CommandOutcome::Rejected(_) => PeerStatus::Rejected,
        }
    }

    fn replace(&mut self, replace: &ReplaceOrder, fills: &mut Vec<PeerFill>) -> PeerStatus {
        let (Some(key), Some(price)) = (
            OrderKey::named(replace.account, replace.order),
            unsigned_price(replace.price),
        ) else {
            return PeerStatus::Unsupported;
        };
        let Some(order_id) = self.orders.remove(&key) else {
            return PeerStatus::Rejected;
        };
        let patch = mc::LimitOrderPatch::new()
            .with_price(mc::Price(price))
            .with_quantity_policy(standard(replace.quantity.0));
        let outcome = self.execute(mc::CommandKind::Amend(mc::AmendCmd {
            order_id,
            patch: mc::AmendPatch::Limit(patch),
        }));
        let mc::CommandOutcome::Applied(mc::CommandReport::Amend(effects)) = &outcome else {
            return PeerStatus::Rejected;
        };
        // The taker's side is the replaced order's: the trades say it.
        let taker_side = effects
            .target_order()
            .match_result()
            .map_or(Side::Buy, |result| our_side(result.taker_side()));
        let executed = push_fills(effects, taker_side, fills);
        if executed < replace.quantity.0 {
            let key = OrderKey {
                account: replace.account,
                user_ref_num: replace.new_user_ref_num,
            };
            self.orders.insert(key, order_id);
        }
        PeerStatus::Applied
    }
}

impl Peer for MatchcorePeer {
    fn name(&self) -> &'static str {
        "matchcore"
    }

    fn version(&self) -> &'static str {
        "0.4"
    }

    fn reset(&mut self) {
        *self = MatchcorePeer::new();
    }

    #[inline]
    fn apply(&mut self, command: &Command, fills: &mut Vec<PeerFill>) -> PeerStatus {
        match command {
            Command::NewOrder(order) => self.new_order(order, fills),
            Command::CancelOrder(cancel) => self.cancel(cancel),
            Command::ReplaceOrder(replace) => self.replace(replace, fills),
            // No account index to cancel an account's orders by.
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
            "IOC and FOK are native; cancel is by matchcore's order id, so the adapter maps our \
             (account, user_ref_num) to it",
            "replace and partial cancel use the native amend: same id, a new price or more \
             quantity loses priority, a reduction keeps it, as ours",
            "known from its source (0.4.0, submit_crossable_order and amend_limit_order): a \
             marketable limit order, or an amend to a marketable price, is matched with no limit \
             price (match_order(.., None, ..)), so it can trade through its own limit; \
             fills_through_limit counts it",
            "it wants contiguous sequence numbers: the adapter numbers its commands itself",
        ]
        .iter()
        .map(|note| (*note).to_owned())
        .collect()
    }
}

/// Push the fills of `effects` (the target order's, then any triggered
/// order's) with the taker's side; returns the target's executed quantity.
fn push_fills(effects: &mc::CommandEffects, taker_side: Side, fills: &mut Vec<PeerFill>) -> u64 {
    let mut executed = 0;
    if let Some(result) = effects.target_order().match_result() {
        executed = result.executed_quantity().0;
        push_trades(result, taker_side, fills);
    }
    // Our workloads have no conditional or pegged orders, so nothing is
    // ever triggered; kept so that a fill is never lost if one is.
    for triggered in effects.triggered_orders() {
        if let Some(result) = triggered.match_result() {
            push_trades(result, our_side(result.taker_side()), fills);
        }
    }
    executed
}

fn push_trades(result: &mc::MatchResult, taker_side: Side, fills: &mut Vec<PeerFill>) {
    for trade in result.trades() {
        fills.push(PeerFill {
            // Invariant: every price the adapter sends came from a positive
            // i64, so every trade price fits one.
            price: engine::Price(i64::try_from(trade.price().0).expect("a price sent as i64")),
            quantity: trade.quantity().0,
            taker_side,
        });
    }
}

fn standard(quantity: u64) -> mc::QuantityPolicy {
    mc::QuantityPolicy::Standard {
        quantity: mc::Quantity(quantity),
    }
}

fn side(side: Side) -> mc::Side {
    match side {
        Side::Buy => mc::Side::Buy,
        Side::Sell => mc::Side::Sell,
    }
}

fn our_side(side: mc::Side) -> Side {
    match side {
        mc::Side::Buy => Side::Buy,
        mc::Side::Sell => Side::Sell,
    }
}
