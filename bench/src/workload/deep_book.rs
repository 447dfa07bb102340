//! A deep book with cancel-heavy flow, in the spirit of the public
//! cross-engine order-book benchmarks (replays of ITCH-like flow, where most
//! orders are cancelled, not filled): about 100 000 resting orders over some
//! 5 000 occupied levels of a 1 000.00 stock, 2 000 accounts.
//!
//! The measured mix: 35% new GTC orders, 15% IOC, 25% cancels, 5% partial
//! cancels (down to a smaller size, keeping priority), 15% moves (a replace
//! to a new price, losing priority) and 5% size reductions by replace at the
//! same price (keeping priority). Orders are for 1 to 500 shares, IOCs for 1
//! to 100 (so they mostly take part of the orders at the touch, and cancels
//! rather than fills take most orders off the book). GTC orders and moves go
//! through the opposite best with the generator's self-adjusting chance.
//! Distances behind the mid are the smaller of two uniform draws up to 2 500
//! ticks, so the book is densest near the touch and thins out with
//! distance, as real books do.

use super::generator::Generator;
use super::{Workload, WorkloadKind};
use crate::market::equity;
use engine::{Price, Side, TimeInForce};

/// Trading accounts.
const ACCOUNTS: u32 = 2_000;
/// The book is filled to this many resting orders before measuring, and
/// kept near it.
const RESTING_TARGET: usize = 100_000;
/// Passive orders rest at most this many ticks behind the mid.
const DISTANCE_TICKS_MAX: u64 = 2_500;
/// How far the mid wanders from the reference, in ticks.
const DRIFT_TICKS_MAX: i64 = 200;
/// Orders are for 1 to this many shares.
const QUANTITY_MAX: u64 = 500;
/// IOC orders are smaller: mostly partial fills of the orders at the touch,
/// so that cancels, not fills, are what takes most orders off the book.
const IOC_QUANTITY_MAX: u64 = 100;
/// An aggressive order goes up to this many ticks through the best.
const THROUGH_TICKS_MAX: u64 = 2;
/// The chance of an aggressive GTC order at the target book size.
const AGGRESSION_BASE_PER_MILLION: u64 = 10_000;
/// A chance of one in one.
const ALWAYS: u64 = 1_000_000;

pub(super) fn generate(seed: u64, commands: usize) -> Workload {
    // 1 000.00 with a 0.01 tick: the ±10% band is 20 001 levels wide.
    let spec = equity("MEGA", Price(10_000_000));
    let mut generator = Generator::new(seed, &spec, ACCOUNTS, DRIFT_TICKS_MAX, commands);
    // Passive orders never trade, so each adds one resting order.
    while generator.live_orders() < RESTING_TARGET {
        place_limit(&mut generator, TimeInForce::GoodTillCancel, 0, QUANTITY_MAX);
    }
    generator.start_measuring();
    for _ in 0..commands {
        generator.walk_mid();
        let aggression =
            generator.aggression_per_million(AGGRESSION_BASE_PER_MILLION, RESTING_TARGET);
        let roll = generator.random.below(100);
        if roll < 35 {
            place_limit(
                &mut generator,
                TimeInForce::GoodTillCancel,
                aggression,
                QUANTITY_MAX,
            );
            continue;
        }
        if roll < 50 {
            place_limit(
                &mut generator,
                TimeInForce::ImmediateOrCancel,
                ALWAYS,
                IOC_QUANTITY_MAX,
            );
            continue;
        }
        // The rest act on an open order; an empty book gets a GTC order.
        let Some(order) = generator.random_live_order() else {
            place_limit(
                &mut generator,
                TimeInForce::GoodTillCancel,
                aggression,
                QUANTITY_MAX,
            );
            continue;
        };
        let reducible = order.remaining.0 >= 2;
        if roll < 75 || (roll < 80 && !reducible) {
            generator.cancel(order, 0);
        } else if roll < 80 {
            let left = generator.random.between(1, order.remaining.0 - 1);
            generator.cancel(order, left);
        } else if roll < 95 || !reducible {
            let price = draw_price(&mut generator, order.side, aggression);
            let price = generator.moved_price(&order, price);
            generator.replace(order, price, order.remaining.0);
        } else {
            let left = generator.random.between(1, order.remaining.0 - 1);
            generator.replace(order, order.price, left);
        }
    }
    generator.finish(WorkloadKind::DeepBook, seed)
}

fn place_limit(
    generator: &mut Generator,
    time_in_force: TimeInForce,
    aggression_per_million: u64,
    quantity_max: u64,
) {
    let account = generator.random_account();
    let side = generator.random_side();
    let quantity = generator.random.between(1, quantity_max);
    let price = draw_price(generator, side, aggression_per_million);
    generator.place(account, side, price, quantity, time_in_force);
}

/// Through the opposite best with the given chance, else passive, nearer
/// the touch more often than not.
fn draw_price(generator: &mut Generator, side: Side, aggression_per_million: u64) -> Price {
    if generator.random.per_million(aggression_per_million) {
        let through = generator.random.below(THROUGH_TICKS_MAX + 1);
        generator.aggressive_price(side, through)
    } else {
        let first = generator.random.below(DISTANCE_TICKS_MAX);
        let second = generator.random.below(DISTANCE_TICKS_MAX);
        generator.passive_price(side, 1 + first.min(second))
    }
}
