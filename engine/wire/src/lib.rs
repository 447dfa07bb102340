//! What both edges of the exchange speak: the order-entry gateway
//! (`gateway`) and the market-data publisher (`marketdata`) share these, so
//! neither edge depends on the other.
//!
//! - [`soupbin`]: SoupBinTCP 4.0 framing (order entry and the market-data
//!   snapshot service).
//! - [`alpha`]: the NASDAQ alpha field (OUCH and ITCH).
//! - [`trading_day`]: the trading day's session name (`YYMMDD` + day) and
//!   time of day, the same on every port.
//! - [`catalogue`]: the instruments as the edges see them, and the one
//!   conversion between the protocols' 4-implied-decimal prices and engine
//!   ticks.

#![forbid(unsafe_code)]

pub mod alpha;
pub mod catalogue;
pub mod soupbin;
pub mod trading_day;

pub use catalogue::{Catalogue, Listing, PriceScale};
