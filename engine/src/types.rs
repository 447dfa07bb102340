//! Newtypes for every identity and number the engine handles.
//!
//! Units (see `docs/engine.md`):
//! - a balance or an amount is a `u64` count of an asset's *minor units*
//!   (`10^-scale` of one whole unit);
//! - a [`Quantity`] counts an instrument's *quantity units*; one quantity unit
//!   is `quantity_unit` minor units of the base asset;
//! - a [`Price`] is a count of the quote asset's minor units paid for one
//!   quantity unit, so `price × quantity` is the quote amount exactly, with no
//!   rounding anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id_newtype!(
    /// An account: a dense index below `EngineConfig::accounts_max`.
    AccountId(u32)
);
id_newtype!(
    /// An asset (a currency or a security): a dense index below `assets_max`.
    AssetId(u16)
);
id_newtype!(
    /// An instrument (an order book): a dense index below `instruments_max`;
    /// market data uses it as the ITCH stock locate code.
    InstrumentId(u32)
);
id_newtype!(
    /// The engine's identity of an accepted order, unique for the life of the
    /// exchange and assigned in acceptance order starting at 1 (the ITCH order
    /// reference number).
    OrderId(u64)
);
id_newtype!(
    /// The client's reference of an order (OUCH `UserRefNum`), strictly
    /// increasing per account for the life of the account.
    UserRefNum(u64)
);
id_newtype!(
    /// The client's identity of a funding command, strictly increasing per
    /// account (the account debited, or credited for a deposit).
    TransferId(u64)
);
id_newtype!(
    /// The identity of one fill, unique for the life of the exchange, starting
    /// at 1.
    MatchNumber(u64)
);
id_newtype!(
    /// Quote-asset minor units per quantity unit. Signed so that the type can
    /// carry any wire value; the engine accepts only positive prices.
    Price(i64)
);
id_newtype!(
    /// A count of an instrument's quantity units.
    Quantity(u64)
);

/// Which side of the book an order is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Side {
    /// Buys base, pays quote.
    Buy,
    /// Sells base, receives quote.
    Sell,
}

impl Side {
    /// The side an order of this side trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// How long an order may rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeInForce {
    /// Rests until cancelled or until the next end-of-day command.
    Day,
    /// Good till cancelled: rests until cancelled, across end-of-day.
    GoodTillCancel,
    /// Immediate or cancel: trades what it can now, the rest is cancelled.
    ImmediateOrCancel,
    /// Fill or kill: trades its whole quantity now, or nothing at all.
    FillOrKill,
}

impl TimeInForce {
    /// Whether an order with this time in force may rest on the book.
    pub fn rests(self) -> bool {
        matches!(self, TimeInForce::Day | TimeInForce::GoodTillCancel)
    }
}

/// What happens when an incoming order would trade with a resting order of
/// the same account. The incoming order's mode decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SelfTradePrevention {
    /// Self-trades are allowed.
    None,
    /// Cancel the incoming (newest) order's remaining quantity.
    CancelNewest,
    /// Cancel the resting (oldest) order and keep matching.
    CancelOldest,
    /// Cancel both the resting order and the incoming order.
    CancelBoth,
    /// Reduce both by the smaller remaining quantity; an order left with no
    /// quantity is cancelled. Nothing trades.
    DecrementAndCancel,
}

/// Whether an instrument accepts new orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TradingStatus {
    /// Accepts orders.
    Open,
    /// New orders and replaces are rejected; cancels are accepted.
    Halted,
}

/// Whether an account may act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccountStatus {
    Active,
    /// Cannot place or replace orders, nor deposit, withdraw or transfer;
    /// may still cancel its orders.
    Suspended,
}

/// An ASCII symbol of up to 8 characters, right-padded with spaces (the ITCH
/// layout of a stock symbol).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol([u8; 8]);

impl Symbol {
    /// The symbol of `text`, which must be 1 to 8 printable ASCII characters
    /// without spaces.
    ///
    /// ```
    /// let acme = engine::Symbol::new("ACME").unwrap();
    /// assert_eq!(acme.as_str(), "ACME");
    /// assert_eq!(acme.bytes(), *b"ACME    ");
    /// assert!(engine::Symbol::new("TOO LONG!").is_none());
    /// ```
    pub fn new(text: &str) -> Option<Symbol> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > 8 {
            return None;
        }
        if !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut padded = [b' '; 8];
        padded[..bytes.len()].copy_from_slice(bytes);
        Some(Symbol(padded))
    }

    /// The symbol from its 8 padded bytes, as carried on the wire.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Symbol> {
        let text = std::str::from_utf8(&bytes).ok()?;
        Symbol::new(text.trim_end_matches(' '))
    }

    /// The 8 space-padded bytes.
    pub fn bytes(&self) -> [u8; 8] {
        self.0
    }

    /// The symbol without its padding.
    pub fn as_str(&self) -> &str {
        // Invariant: built only from printable ASCII by `new`.
        std::str::from_utf8(&self.0)
            .expect("symbol bytes are ASCII")
            .trim_end_matches(' ')
    }
}

impl TryFrom<String> for Symbol {
    type Error = String;

    fn try_from(text: String) -> Result<Symbol, String> {
        Symbol::new(&text)
            .ok_or_else(|| format!("not a symbol of 1 to 8 printable ASCII characters: {text:?}"))
    }
}

impl From<Symbol> for String {
    fn from(symbol: Symbol) -> String {
        symbol.as_str().to_owned()
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account's holding of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Balance {
    /// Free to trade, withdraw or transfer.
    pub available: u64,
    /// Reserved for open orders.
    pub held: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_rejects_spaces_and_empty() {
        assert!(Symbol::new("").is_none());
        assert!(Symbol::new("A B").is_none());
        assert!(Symbol::new("ABCDEFGH").is_some());
        assert_eq!(Symbol::from_bytes(*b"EURUSD  ").unwrap().as_str(), "EURUSD");
        assert!(Symbol::from_bytes(*b" EURUSD ").is_none());
    }

    #[test]
    fn opposite_side() {
        assert_eq!(Side::Buy.opposite(), Side::Sell);
        assert_eq!(Side::Sell.opposite(), Side::Buy);
    }
}
