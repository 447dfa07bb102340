//! Comparing a market-data subscriber's books with the engine's.

use engine::{Engine, InstrumentId, Side};
use marketdata::book::Books;
use marketdata::itch;

/// The engine's price in ITCH units (4 implied decimals), if it has one:
/// ITCH's `Price(4)` is a `u32` (at most 429,496.7295).
pub fn itch_price(engine: &Engine, instrument: InstrumentId, price: engine::Price) -> Option<u32> {
    let view = engine.instrument(instrument)?;
    let scale = engine.asset(view.spec.quote)?.scale;
    let itch = if scale >= 4 {
        price
            .0
            .checked_div(10i64.checked_pow(u32::from(scale - 4))?)?
    } else {
        price
            .0
            .checked_mul(10i64.checked_pow(u32::from(4 - scale))?)?
    };
    u32::try_from(itch).ok()
}

/// Whether every price of the instrument's band has an exact ITCH price
/// (the generator draws quote scales and prices far beyond ITCH's range;
/// the feed publishes such instruments with clamped prices, which no
/// subscriber can rebuild exactly, so they are left out of the comparison).
pub fn representable(engine: &Engine, instrument: InstrumentId) -> bool {
    let Some(view) = engine.instrument(instrument) else {
        return false;
    };
    let Some(scale) = engine.asset(view.spec.quote).map(|asset| asset.scale) else {
        return false;
    };
    let exact = |price: engine::Price| {
        scale < 4
            || 10i64
                .checked_pow(u32::from(scale - 4))
                .is_some_and(|unit| price.0 % unit == 0)
    };
    itch_price(engine, instrument, view.band.high).is_some()
        && exact(view.spec.tick_size)
        && exact(view.band.low)
}

/// Every book of the engine equals the subscriber's, order by order in
/// time priority, on every instrument whose prices ITCH can carry.
/// Returns the instruments and the orders compared.
pub fn compare_books(engine: &Engine, books: &Books, when: &str) -> Result<(usize, u64), String> {
    let mut compared = 0;
    let mut orders = 0;
    for instrument in engine.instruments() {
        if !representable(engine, instrument) {
            continue;
        }
        compared += 1;
        let locate = u16::try_from(instrument.0 + 1).expect("few instruments");
        for (side, itch_side) in [(Side::Buy, itch::Side::Buy), (Side::Sell, itch::Side::Sell)] {
            let expected: Vec<(u64, u32, u32)> = engine
                .book_orders(instrument, side)
                .map(|order| {
                    (
                        order.order_id.0,
                        itch_price(engine, instrument, order.price).unwrap_or(u32::MAX),
                        u32::try_from(order.remaining.0).expect("quantities fit"),
                    )
                })
                .collect();
            let book = books.book(locate);
            let actual: Vec<(u64, u32, u32)> = match book {
                None => Vec::new(),
                Some(book) => book
                    .depth(itch_side, usize::MAX)
                    .into_iter()
                    .flat_map(|(price, _, _)| {
                        book.orders_at(itch_side, price)
                            .map(move |(reference, shares)| (reference, price.0, shares))
                    })
                    .collect(),
            };
            orders += expected.len() as u64;
            if expected != actual {
                return Err(format!(
                    "{when}: instrument {instrument} {side:?}: engine {expected:?}, subscriber {actual:?}"
                ));
            }
        }
    }
    Ok((compared, orders))
}
