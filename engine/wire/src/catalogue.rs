//! The instruments as the edges see them, and the one conversion between
//! the NASDAQ protocols' prices and the engine's.
//!
//! OUCH and ITCH prices carry 4 implied decimals. The engine counts a price
//! in minor units of the instrument's quote asset, whose scale (decimals)
//! the asset's creation set. So an engine price is the protocol price
//! × 10^(scale − 4) when the scale is 4 or more, or ÷ 10^(4 − scale) — and
//! then only when the division is exact — below 4.
//!
//! Both edges keep a [`Catalogue`] fed with the engine's events
//! ([`Catalogue::observe`]): the gateway to turn symbols into instruments
//! and convert prices both ways, the market-data feed to publish prices.
//! The state is a pure function of the events, so replaying the journal
//! rebuilds it exactly.

// Small keys looked up per message, none chosen by a client unchecked:
// FxHash, not SipHash.
use rustc_hash::FxHashMap as HashMap;

use engine::{AssetId, Event, InstrumentId, InstrumentSpec, Price, Quantity};

/// The protocols' implied decimals.
pub const WIRE_DECIMALS: u8 = 4;
/// The largest asset scale the engine admits (10^18 fits a `u64`).
pub const SCALE_MAX: u8 = 18;

/// How an instrument's engine prices relate to 4-implied-decimal prices:
/// engine = wire × `multiplier` ÷ `divisor`, one of which is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PriceScale {
    multiplier: i64,
    divisor: i64,
}

impl PriceScale {
    /// A quote asset with 4 decimals: prices are the same numbers.
    pub const IDENTITY: PriceScale = PriceScale {
        multiplier: 1,
        divisor: 1,
    };

    /// The scale of instruments quoted in an asset of `scale` decimals;
    /// `None` past [`SCALE_MAX`] (the engine refuses such assets).
    ///
    /// ```
    /// use wire::PriceScale;
    /// let cents = PriceScale::for_quote_scale(2).unwrap();
    /// assert_eq!(cents.engine_price(1_2300), Some(engine::Price(123)));
    /// assert_eq!(cents.engine_price(1_2345), None); // finer than a cent
    /// assert_eq!(cents.wire_price(engine::Price(123)), 1_2300);
    /// ```
    pub fn for_quote_scale(scale: u8) -> Option<PriceScale> {
        if scale > SCALE_MAX {
            return None;
        }
        let (multiplier, divisor) = if scale >= WIRE_DECIMALS {
            (10i64.checked_pow(u32::from(scale - WIRE_DECIMALS))?, 1)
        } else {
            (1, 10i64.checked_pow(u32::from(WIRE_DECIMALS - scale))?)
        };
        Some(PriceScale {
            multiplier,
            divisor,
        })
    }

    /// The engine price of a 4-implied-decimal price: `None` when it is
    /// finer than the quote asset's minor unit or overflows.
    pub fn engine_price(self, wire_price: i64) -> Option<Price> {
        if wire_price % self.divisor != 0 {
            return None;
        }
        (wire_price / self.divisor)
            .checked_mul(self.multiplier)
            .map(Price)
    }

    /// The 4-implied-decimal price of an engine price. Exact for every
    /// price [`engine_price`](Self::engine_price) produced; a price set by
    /// another path (finer than 4 decimals) is truncated toward zero, and
    /// one too large saturates.
    pub fn wire_price(self, price: Price) -> i64 {
        (price.0 / self.multiplier).saturating_mul(self.divisor)
    }
}

/// A protocol quantity (`u32`) of an engine quantity: every order entered
/// over OUCH fits; larger ones (other paths) are capped at `u32::MAX`.
pub fn wire_quantity(quantity: Quantity) -> u32 {
    u32::try_from(quantity.0).unwrap_or(u32::MAX)
}

/// An instrument as the edges see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Listing {
    pub id: InstrumentId,
    /// The engine's symbol, space padded (an OUCH Symbol, an ITCH Stock).
    pub symbol: [u8; 8],
    pub price_scale: PriceScale,
    pub lot_size: Quantity,
}

/// Every listed instrument, by symbol and by id, and the quote assets'
/// scales they were listed with.
/// Kept in the edges' snapshots (serde, as sorted lists: the same
/// catalogue gives the same bytes whatever the maps' history).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "CatalogueState", from = "CatalogueState")]
pub struct Catalogue {
    asset_scales: HashMap<AssetId, u8>,
    by_symbol: HashMap<[u8; 8], InstrumentId>,
    by_id: HashMap<InstrumentId, Listing>,
}

/// A catalogue as sorted lists (its serialised form).
#[derive(serde::Serialize, serde::Deserialize)]
struct CatalogueState {
    asset_scales: Vec<(AssetId, u8)>,
    listings: Vec<Listing>,
}

impl From<Catalogue> for CatalogueState {
    fn from(catalogue: Catalogue) -> CatalogueState {
        let mut asset_scales: Vec<(AssetId, u8)> = catalogue.asset_scales.into_iter().collect();
        asset_scales.sort_unstable();
        let mut listings: Vec<Listing> = catalogue.by_id.into_values().collect();
        listings.sort_unstable_by_key(|listing| listing.id);
        CatalogueState {
            asset_scales,
            listings,
        }
    }
}

impl From<CatalogueState> for Catalogue {
    fn from(state: CatalogueState) -> Catalogue {
        Catalogue {
            asset_scales: state.asset_scales.into_iter().collect(),
            by_symbol: state
                .listings
                .iter()
                .map(|listing| (listing.symbol, listing.id))
                .collect(),
            by_id: state
                .listings
                .into_iter()
                .map(|listing| (listing.id, listing))
                .collect(),
        }
    }
}

impl Catalogue {
    pub fn new() -> Catalogue {
        Catalogue::default()
    }

    /// Takes in one engine event; returns the listing when it listed an
    /// instrument. Other events change nothing.
    pub fn observe(&mut self, event: &Event) -> Option<Listing> {
        match *event {
            Event::AssetCreated { asset, scale, .. } => {
                self.asset_scales.insert(asset, scale);
                None
            }
            Event::InstrumentCreated { instrument, spec } => Some(self.list(instrument, &spec)),
            _ => None,
        }
    }

    fn list(&mut self, id: InstrumentId, spec: &InstrumentSpec) -> Listing {
        // An unknown quote (not possible: the engine refuses an instrument
        // whose assets do not exist) is taken as 4 decimals.
        let price_scale = self
            .asset_scales
            .get(&spec.quote)
            .and_then(|&scale| PriceScale::for_quote_scale(scale))
            .unwrap_or(PriceScale::IDENTITY);
        let listing = Listing {
            id,
            symbol: spec.symbol.bytes(),
            price_scale,
            lot_size: spec.lot_size,
        };
        self.by_symbol.insert(listing.symbol, id);
        self.by_id.insert(id, listing);
        listing
    }

    pub fn by_symbol(&self, symbol: &[u8; 8]) -> Option<&Listing> {
        self.by_id.get(self.by_symbol.get(symbol)?)
    }

    pub fn by_id(&self, id: InstrumentId) -> Option<&Listing> {
        self.by_id.get(&id)
    }

    /// The price scale every listing shares; `None` when there are none or
    /// they differ. (An OUCH Replace names no instrument, so its price can
    /// be converted only when this is `Some`.)
    pub fn common_price_scale(&self) -> Option<PriceScale> {
        let mut scales = self.by_id.values().map(|listing| listing.price_scale);
        let first = scales.next()?;
        scales.all(|other| other == first).then_some(first)
    }

    /// The 4-implied-decimal price of an engine price of `instrument`; an
    /// unknown instrument's price is passed through unchanged.
    pub fn wire_price(&self, instrument: InstrumentId, price: Price) -> i64 {
        self.by_id
            .get(&instrument)
            .map_or(price.0, |listing| listing.price_scale.wire_price(price))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Symbol;
    use proptest::prelude::*;

    fn spec(symbol: &str, quote: u16) -> InstrumentSpec {
        InstrumentSpec {
            symbol: Symbol::new(symbol).unwrap(),
            base: AssetId(0),
            quote: AssetId(quote),
            quantity_unit: 1,
            tick_size: Price(1),
            lot_size: Quantity(1),
            min_quantity: Quantity(1),
            max_quantity: Quantity(1_000),
            reference_price: Price(100),
            band_bps: 1_000,
            maker_fee_bps: 0,
            taker_fee_bps: 0,
        }
    }

    fn asset(id: u16, scale: u8) -> Event {
        Event::AssetCreated {
            asset: AssetId(id),
            symbol: Symbol::new("X").unwrap(),
            scale,
        }
    }

    #[test]
    fn scales_above_and_below_four_decimals() {
        let fine = PriceScale::for_quote_scale(6).unwrap();
        assert_eq!(fine.engine_price(1_0000), Some(Price(1_000_000)));
        assert_eq!(fine.wire_price(Price(1_000_000)), 1_0000);
        // Finer than 4 decimals: truncated on the way out.
        assert_eq!(fine.wire_price(Price(1_000_099)), 1_0000);
        let coarse = PriceScale::for_quote_scale(0).unwrap();
        assert_eq!(coarse.engine_price(5_0000), Some(Price(5)));
        assert_eq!(coarse.engine_price(5_0001), None);
        assert_eq!(coarse.wire_price(Price(5)), 5_0000);
        assert_eq!(PriceScale::for_quote_scale(4), Some(PriceScale::IDENTITY));
        assert_eq!(PriceScale::for_quote_scale(SCALE_MAX + 1), None);
    }

    #[test]
    fn overflow_is_refused_inbound_and_saturates_outbound() {
        let finest = PriceScale::for_quote_scale(SCALE_MAX).unwrap();
        assert_eq!(finest.engine_price(i64::MAX), None);
        let coarse = PriceScale::for_quote_scale(0).unwrap();
        assert_eq!(coarse.wire_price(Price(i64::MAX)), i64::MAX);
        assert_eq!(wire_quantity(Quantity(u64::MAX)), u32::MAX);
        assert_eq!(wire_quantity(Quantity(7)), 7);
    }

    #[test]
    fn catalogue_lists_with_the_quote_scale() {
        let mut catalogue = Catalogue::new();
        assert_eq!(catalogue.observe(&asset(1, 2)), None);
        let listed = Event::InstrumentCreated {
            instrument: InstrumentId(3),
            spec: spec("ACME", 1),
        };
        let listing = catalogue.observe(&listed).unwrap();
        assert_eq!(listing.price_scale, PriceScale::for_quote_scale(2).unwrap());
        assert_eq!(
            catalogue.by_symbol(b"ACME    ").map(|l| l.id),
            Some(InstrumentId(3))
        );
        assert_eq!(catalogue.by_id(InstrumentId(3)), Some(&listing));
        assert!(catalogue.by_symbol(b"OTHER   ").is_none());
        assert_eq!(catalogue.wire_price(InstrumentId(3), Price(123)), 1_2300);
        assert_eq!(catalogue.wire_price(InstrumentId(9), Price(123)), 123);
    }

    #[test]
    fn common_scale_only_when_all_agree() {
        let mut catalogue = Catalogue::new();
        assert_eq!(catalogue.common_price_scale(), None);
        catalogue.observe(&asset(1, 2));
        catalogue.observe(&asset(2, 6));
        for (id, symbol, quote) in [(0, "A", 1), (1, "B", 1)] {
            catalogue.observe(&Event::InstrumentCreated {
                instrument: InstrumentId(id),
                spec: spec(symbol, quote),
            });
        }
        assert_eq!(
            catalogue.common_price_scale(),
            PriceScale::for_quote_scale(2)
        );
        catalogue.observe(&Event::InstrumentCreated {
            instrument: InstrumentId(2),
            spec: spec("C", 2),
        });
        assert_eq!(catalogue.common_price_scale(), None);
    }

    proptest! {
        #[test]
        fn engine_prices_round_trip(scale in 0u8..=SCALE_MAX, wire in -1_000_000_000i64..1_000_000_000) {
            let price_scale = PriceScale::for_quote_scale(scale).unwrap();
            if let Some(price) = price_scale.engine_price(wire) {
                prop_assert_eq!(price_scale.wire_price(price), wire);
            } else {
                // Refused only when finer than a minor unit, or too large.
                let finer = scale < WIRE_DECIMALS && wire % 10i64.pow(u32::from(WIRE_DECIMALS - scale)) != 0;
                let overflows = scale > WIRE_DECIMALS
                    && wire.checked_mul(10i64.pow(u32::from(scale - WIRE_DECIMALS))).is_none();
                prop_assert!(finer || overflows);
            }
        }
    }
}
