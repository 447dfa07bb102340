//! Large orders that clear many price levels at once, on a book that passive
//! orders keep refilling: the path a matching engine takes least often in
//! the other workloads (one taker walking dozens of levels, emptying each
//! and unlinking it).
//!
//! About 4 000 resting orders from 1 000 accounts, spread uniformly up to
//! 2 000 ticks behind the mid of a 1 000.00 stock, so most occupied levels
//! hold one or two orders and the book has some 1 800 of them. The measured
//! mix: 1% sweeps, 64% new GTC orders, 5% small IOC, 20% cancels and 10%
//! moves. A sweep picks 10 to 50 levels, reads the opposite side's depth,
//! and asks exactly what those levels hold, limited at the last of them:
//! three in four are IOC, one in four GTC asking a little more, which then
//! rests as the new best. The refill outweighs the cancels by about what the
//! sweeps take (some 40 orders each), and the generator's self-adjusting
//! aggression of GTC orders takes the excess, so the book keeps its size;
//! [`super::SweepStats`] records the levels each sweep really emptied.

use super::generator::Generator;
use super::{Workload, WorkloadKind};
use crate::market::equity;
use engine::{Price, Side, TimeInForce};

/// Trading accounts.
const ACCOUNTS: u32 = 1_000;
/// The book is filled to this many resting orders before measuring, and
/// kept near it.
const RESTING_TARGET: usize = 4_000;
/// Passive orders rest 1 to this many ticks behind the mid, uniformly: a
/// wide, thin book, so that a sweep's levels hold few orders each and the
/// refill can keep up with sweeps every hundred commands.
const DISTANCE_TICKS_MAX: u64 = 2_000;
/// How far the mid wanders from the reference, in ticks.
const DRIFT_TICKS_MAX: i64 = 100;
/// Orders are for 1 to this many shares.
const QUANTITY_MAX: u64 = 200;
/// IOC orders other than sweeps are small: they take part of the touch.
const IOC_QUANTITY_MAX: u64 = 50;
/// A sweep empties this many levels of the opposite side, at least and at
/// most (fewer only when the side holds fewer).
const SWEEP_LEVELS_MIN: u64 = 10;
const SWEEP_LEVELS_MAX: u64 = 50;
/// An aggressive order goes up to this many ticks through the best.
const THROUGH_TICKS_MAX: u64 = 2;
/// The chance of an aggressive GTC order or move at the target book size.
const AGGRESSION_BASE_PER_MILLION: u64 = 10_000;
/// A chance of one in one.
const ALWAYS: u64 = 1_000_000;

pub(super) fn generate(seed: u64, commands: usize) -> Workload {
    // 1 000.00 with a 0.01 tick: the ±10% band is 20 001 levels wide.
    let spec = equity("SWPX", Price(10_000_000));
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
        if roll < 1 {
            sweep(&mut generator);
        } else if roll < 65 {
            place_limit(
                &mut generator,
                TimeInForce::GoodTillCancel,
                aggression,
                QUANTITY_MAX,
            );
        } else if roll < 70 {
            place_limit(
                &mut generator,
                TimeInForce::ImmediateOrCancel,
                ALWAYS,
                IOC_QUANTITY_MAX,
            );
        } else {
            // Cancels and moves need an open order; an empty book gets a
            // GTC order.
            match generator.random_live_order() {
                None => place_limit(
                    &mut generator,
                    TimeInForce::GoodTillCancel,
                    aggression,
                    QUANTITY_MAX,
                ),
                Some(order) if roll < 90 => generator.cancel(order, 0),
                Some(order) => {
                    let price = draw_price(&mut generator, order.side, aggression);
                    let price = generator.moved_price(&order, price);
                    generator.replace(order, price, order.remaining.0);
                }
            }
        }
    }
    generator.finish(WorkloadKind::Sweep, seed)
}

/// A sweep of 10 to 50 levels from a random account and side.
fn sweep(generator: &mut Generator) {
    let account = generator.random_account();
    let side = generator.random_side();
    // Invariant: at most `SWEEP_LEVELS_MAX`, so the cast is exact.
    let levels = generator.random.between(SWEEP_LEVELS_MIN, SWEEP_LEVELS_MAX) as usize;
    if generator.random.below(4) == 0 {
        let rest = generator.random.between(1, QUANTITY_MAX);
        generator.sweep(account, side, levels, TimeInForce::GoodTillCancel, rest);
    } else {
        generator.sweep(account, side, levels, TimeInForce::ImmediateOrCancel, 0);
    }
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
