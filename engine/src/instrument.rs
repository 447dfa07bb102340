//! Instruments: what is traded, in which units, within which limits, and the
//! money arithmetic that depends on them (notional, fees, holds).
//!
//! Every amount is computed with checked 64-bit arithmetic (or in 128 bits
//! where a product may pass 64) and must fit `u64`; a result that does not
//! is an `Overflow` reject at the edge, never a wrap.

use serde::{Deserialize, Serialize};

use crate::types::{AssetId, Price, Quantity, Side, Symbol, TradingStatus};

/// Basis points in one whole (100%).
pub(crate) const BPS_ONE: u64 = 10_000;

/// The definition of an instrument, fixed at creation except for the parts in
/// [`InstrumentUpdate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstrumentSpec {
    pub symbol: Symbol,
    /// The asset bought and sold.
    pub base: AssetId,
    /// The asset prices are in and that pays for the base.
    pub quote: AssetId,
    /// Base-asset minor units in one quantity unit (e.g. 100 for one EUR
    /// when EUR has 2 decimals; 1 for one share).
    pub quantity_unit: u64,
    /// Prices are multiples of this.
    pub tick_size: Price,
    /// Quantities are multiples of this.
    pub lot_size: Quantity,
    pub min_quantity: Quantity,
    pub max_quantity: Quantity,
    /// The centre of the price band.
    pub reference_price: Price,
    /// Half-width of the price band around the reference, in basis points.
    pub band_bps: u32,
    /// Fee of the resting side of a fill, in basis points of the notional.
    pub maker_fee_bps: u16,
    /// Fee of the incoming side of a fill, in basis points of the notional.
    pub taker_fee_bps: u16,
}

/// The parts of an instrument an operator may change while it trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstrumentUpdate {
    pub reference_price: Price,
    pub band_bps: u32,
    pub min_quantity: Quantity,
    pub max_quantity: Quantity,
    pub maker_fee_bps: u16,
    pub taker_fee_bps: u16,
}

/// The fee rates an order was accepted under. They are fixed for the order's
/// life so that its hold always covers the fees it can be charged, even if
/// the instrument's fees change meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FeeRates {
    pub maker_bps: u16,
    pub taker_bps: u16,
}

impl FeeRates {
    /// The larger of the two: what a buy's hold reserves.
    pub fn hold_bps(self) -> u16 {
        self.maker_bps.max(self.taker_bps)
    }
}

/// The inclusive range of prices an order may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PriceBand {
    pub low: Price,
    pub high: Price,
}

impl PriceBand {
    /// Whether `price` is within the band, ends included.
    pub fn contains(self, price: Price) -> bool {
        self.low <= price && price <= self.high
    }

    /// The number of ticks from `low` to `high` inclusive.
    pub fn levels(self, tick_size: Price) -> u64 {
        let span = self.high.0.abs_diff(self.low.0);
        span / tick_size.0.unsigned_abs() + 1
    }
}

impl InstrumentSpec {
    /// The spec with the update applied.
    pub fn updated(mut self, update: InstrumentUpdate) -> InstrumentSpec {
        self.reference_price = update.reference_price;
        self.band_bps = update.band_bps;
        self.min_quantity = update.min_quantity;
        self.max_quantity = update.max_quantity;
        self.maker_fee_bps = update.maker_fee_bps;
        self.taker_fee_bps = update.taker_fee_bps;
        self
    }

    /// Whether the spec is internally consistent (assets are checked by the
    /// engine, which knows them).
    pub fn is_valid(&self) -> bool {
        let tick = self.tick_size.0;
        let lot = self.lot_size.0;
        self.base != self.quote
            && self.quantity_unit >= 1
            && tick >= 1
            && lot >= 1
            && self.min_quantity.0 >= 1
            && self.min_quantity <= self.max_quantity
            && self.min_quantity.0.is_multiple_of(lot)
            && self.max_quantity.0.is_multiple_of(lot)
            && self.reference_price.0 >= 1
            && self.reference_price.0 % tick == 0
            && u64::from(self.band_bps) <= BPS_ONE
            && u64::from(self.maker_fee_bps) <= BPS_ONE
            && u64::from(self.taker_fee_bps) <= BPS_ONE
            && self.band().is_some()
    }

    /// The price band: `reference ± reference × band_bps / 10 000`, shrunk
    /// to whole ticks, and never below one tick. `None` if it overflows.
    pub fn band(&self) -> Option<PriceBand> {
        let reference = self.reference_price.0;
        let tick = self.tick_size.0;
        if reference < 1 || tick < 1 {
            return None;
        }
        let width = mul_div_floor(reference.unsigned_abs(), u64::from(self.band_bps), BPS_ONE)?;
        let width = i64::try_from(width).ok()?;
        let low = reference.checked_sub(width)?.max(tick);
        let high = reference.checked_add(width)?;
        // Round inward to the tick grid (multiples of the tick from zero),
        // without passing through values beyond the end result.
        let low = match low % tick {
            0 => low,
            rest => (low - rest).checked_add(tick)?,
        };
        let high = high - high % tick;
        (low <= high).then_some(PriceBand {
            low: Price(low),
            high: Price(high),
        })
    }

    /// The maker and taker rates an order accepted now gets.
    pub fn fee_rates(&self) -> FeeRates {
        FeeRates {
            maker_bps: self.maker_fee_bps,
            taker_bps: self.taker_fee_bps,
        }
    }

    /// The asset an order of `side` holds: quote for a buy, base for a sell.
    #[inline]
    pub fn held_asset(&self, side: Side) -> AssetId {
        match side {
            Side::Buy => self.quote,
            Side::Sell => self.base,
        }
    }

    /// Base-asset minor units in `quantity`.
    pub fn base_amount(&self, quantity: Quantity) -> Option<u64> {
        quantity.0.checked_mul(self.quantity_unit)
    }
}

/// `price × quantity`: the quote amount of a fill or an order.
pub(crate) fn notional(price: Price, quantity: Quantity) -> Option<u64> {
    let price = u64::try_from(price.0).ok()?;
    price.checked_mul(quantity.0)
}

/// The fee on `amount` at `bps`, rounded down. Rounding down keeps the sum of
/// the fees of an order's fills at or below the fee on the whole order, which
/// is what its hold reserved.
#[inline]
pub(crate) fn fee(amount: u64, bps: u16) -> u64 {
    // 64-bit arithmetic whenever the product fits (every realistic amount):
    // a 128-bit division is a slow library call on the matching path.
    match amount.checked_mul(u64::from(bps)) {
        Some(product) => product / BPS_ONE,
        None => {
            let fee = u128::from(amount) * u128::from(bps) / u128::from(BPS_ONE);
            // Invariant: bps <= 10 000, so the fee never exceeds the amount.
            u64::try_from(fee).expect("fee is at most the amount")
        }
    }
}

/// What an order of `side` at `price` for `quantity` must hold: the quote
/// notional plus the largest fee (buy), or the base amount (sell).
pub(crate) fn hold_required(
    spec: &InstrumentSpec,
    side: Side,
    price: Price,
    quantity: Quantity,
    rates: FeeRates,
) -> Option<u64> {
    match side {
        Side::Buy => {
            let notional = notional(price, quantity)?;
            notional.checked_add(fee(notional, rates.hold_bps()))
        }
        Side::Sell => spec.base_amount(quantity),
    }
}

fn mul_div_floor(a: u64, b: u64, divisor: u64) -> Option<u64> {
    let product = u128::from(a) * u128::from(b);
    u64::try_from(product / u128::from(divisor)).ok()
}

/// An instrument as the engine keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Instrument {
    pub(crate) spec: InstrumentSpec,
    pub(crate) band: PriceBand,
    pub(crate) status: TradingStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> InstrumentSpec {
        InstrumentSpec {
            symbol: Symbol::new("ACME").unwrap(),
            base: AssetId(1),
            quote: AssetId(0),
            quantity_unit: 1,
            tick_size: Price(100),
            lot_size: Quantity(1),
            min_quantity: Quantity(1),
            max_quantity: Quantity(1_000_000),
            reference_price: Price(1_000_000),
            band_bps: 1_000,
            maker_fee_bps: 1,
            taker_fee_bps: 3,
        }
    }

    #[test]
    fn band_is_reference_plus_minus_percent_on_ticks() {
        let band = spec().band().unwrap();
        assert_eq!(band.low, Price(900_000));
        assert_eq!(band.high, Price(1_100_000));
        assert_eq!(band.levels(Price(100)), 2_001);
        assert!(band.contains(Price(900_000)));
        assert!(!band.contains(Price(899_900)));
    }

    #[test]
    fn band_rounds_inward_and_stays_positive() {
        let mut s = spec();
        s.reference_price = Price(300);
        s.band_bps = 5_000; // width 150: 150..450, rounded inward to ticks of 100
        let band = s.band().unwrap();
        assert_eq!((band.low, band.high), (Price(200), Price(400)));
        s.band_bps = 10_000; // width 300: 0..600, low clamped to one tick
        let band = s.band().unwrap();
        assert_eq!((band.low, band.high), (Price(100), Price(600)));
    }

    #[test]
    fn band_next_to_the_largest_price_is_computed_without_overflow() {
        let mut s = spec();
        s.tick_size = Price(10);
        s.reference_price = Price(9_223_372_036_854_775_800);
        s.band_bps = 0;
        let band = s.band().unwrap();
        assert_eq!(
            (band.low, band.high),
            (s.reference_price, s.reference_price)
        );
        assert!(s.is_valid());
    }

    #[test]
    fn band_overflow_is_none() {
        let mut s = spec();
        s.tick_size = Price(1);
        s.reference_price = Price(i64::MAX - 1);
        assert!(s.band().is_none());
        assert!(!s.is_valid());
    }

    #[test]
    fn invalid_specs() {
        assert!(spec().is_valid());
        let mut s = spec();
        s.quote = s.base;
        assert!(!s.is_valid());
        let mut s = spec();
        s.reference_price = Price(1_000_050);
        assert!(!s.is_valid(), "reference off tick");
        let mut s = spec();
        s.min_quantity = Quantity(0);
        assert!(!s.is_valid());
        let mut s = spec();
        s.taker_fee_bps = 10_001;
        assert!(!s.is_valid());
    }

    #[test]
    fn fees_round_down_and_holds_cover_them() {
        assert_eq!(fee(9_999, 1), 0);
        assert_eq!(fee(10_000, 1), 1);
        assert_eq!(fee(u64::MAX, 10_000), u64::MAX);
        let exact = u64::try_from(u128::from(u64::MAX) * 3 / 10_000).unwrap();
        assert_eq!(fee(u64::MAX, 3), exact, "the 128-bit path");
        assert_eq!(fee(u64::MAX / 3, 3), (u64::MAX / 3) * 3 / 10_000);
        let s = spec();
        let rates = s.fee_rates();
        // 100.00 × 10 = 1 000.00 (10 000 000 minor units) + 3 bps = 3 000.
        assert_eq!(
            hold_required(&s, Side::Buy, Price(1_000_000), Quantity(10), rates),
            Some(10_003_000)
        );
        assert_eq!(
            hold_required(&s, Side::Sell, Price(1_000_000), Quantity(10), rates),
            Some(10)
        );
        assert_eq!(
            hold_required(&s, Side::Buy, Price(i64::MAX), Quantity(3), rates),
            None
        );
    }
}
