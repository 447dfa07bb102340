//! exchange-core's throughput mix: 9% GTC limit orders, 3% IOC, 6% cancels
//! and 82% moves (a replace to a new price that loses priority, keeping the
//! size), as its `TestOrdersGenerator` draws them, on a book held near 1 000
//! resting orders from 2 000 accounts.
//!
//! Passive prices are drawn uniformly up to `DISTANCE_TICKS_MAX` ticks
//! behind a wandering mid, which spreads the 1 000 orders over roughly 750
//! occupied levels, as in exchange-core's published runs. IOCs go through
//! the opposite best; GTC orders and moves do so with the generator's
//! self-adjusting chance, which is what keeps the book at its size.

use super::generator::Generator;
use super::{Workload, WorkloadKind};
use crate::market::equity;
use engine::{Price, Side, TimeInForce};

/// Trading accounts.
pub(super) const ACCOUNTS: u32 = 2_000;
/// The book is filled to this many resting orders before measuring, and
/// kept near it.
const RESTING_TARGET: usize = 1_000;
/// Passive orders rest 1 to this many ticks behind the mid.
const DISTANCE_TICKS_MAX: u64 = 800;
/// How far the mid wanders from the reference, in ticks.
const DRIFT_TICKS_MAX: i64 = 150;
/// Orders are for 1 to this many shares.
const QUANTITY_MAX: u64 = 100;
/// An aggressive order goes up to this many ticks through the best.
const THROUGH_TICKS_MAX: u64 = 2;
/// The chance of an aggressive GTC order or move at the target book size.
const AGGRESSION_BASE_PER_MILLION: u64 = 10_000;

pub(super) fn generate(seed: u64, commands: usize) -> Workload {
    let mut generator = start(seed, commands);
    for _ in 0..commands {
        trade(&mut generator);
    }
    generator.finish(WorkloadKind::ExchangeCore, seed)
}

/// A generator on ACME with the book filled to its target, measuring.
pub(super) fn start(seed: u64, commands: usize) -> Generator {
    let spec = equity("ACME", Price(1_000_000));
    let mut generator = Generator::new(seed, &spec, ACCOUNTS, DRIFT_TICKS_MAX, commands);
    // Passive orders never trade, so each adds one resting order.
    while generator.live_orders() < RESTING_TARGET {
        place_limit(&mut generator, TimeInForce::GoodTillCancel, 0);
    }
    generator.start_measuring();
    generator
}

/// One command of the mix (and a step of the mid).
pub(super) fn trade(generator: &mut Generator) {
    generator.walk_mid();
    let aggression = generator.aggression_per_million(AGGRESSION_BASE_PER_MILLION, RESTING_TARGET);
    let roll = generator.random.below(100);
    if roll < 9 {
        place_limit(generator, TimeInForce::GoodTillCancel, aggression);
    } else if roll < 12 {
        place_limit(generator, TimeInForce::ImmediateOrCancel, ALWAYS);
    } else {
        // Cancels and moves need an open order; an empty book (which the
        // feedback makes all but impossible) gets a GTC order.
        match generator.random_live_order() {
            None => place_limit(generator, TimeInForce::GoodTillCancel, aggression),
            Some(order) if roll < 18 => generator.cancel(order, 0),
            Some(order) => {
                let price = draw_price(generator, order.side, aggression);
                let price = generator.moved_price(&order, price);
                generator.replace(order, price, order.remaining.0);
            }
        }
    }
}

/// A chance of one in one.
const ALWAYS: u64 = 1_000_000;

fn place_limit(generator: &mut Generator, time_in_force: TimeInForce, aggression_per_million: u64) {
    let account = generator.random_account();
    let side = generator.random_side();
    let quantity = generator.random.between(1, QUANTITY_MAX);
    let price = draw_price(generator, side, aggression_per_million);
    generator.place(account, side, price, quantity, time_in_force);
}

/// Through the opposite best with the given chance, else passive.
fn draw_price(generator: &mut Generator, side: Side, aggression_per_million: u64) -> Price {
    if generator.random.per_million(aggression_per_million) {
        let through = generator.random.below(THROUGH_TICKS_MAX + 1);
        generator.aggressive_price(side, through)
    } else {
        let distance = generator.random.between(1, DISTANCE_TICKS_MAX);
        generator.passive_price(side, distance)
    }
}
