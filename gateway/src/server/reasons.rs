//! The OUCH reject reasons this gateway sends, and the refusal of an
//! inbound message that never reaches the engine as an order. Read by both
//! directions: the adapter refuses with a code, the proxy maps engine
//! rejections to codes (`docs/protocol.md` lists them).

use engine::RejectReason;

// Codes from NASDAQ's OUCH 5.0 table where one means the same;
// `0x0100 + engine code` where none does (documented in `docs/protocol.md`).
/// Invalid display type.
pub const INVALID_DISPLAY: u16 = 0x0003;
/// Halted.
pub const HALTED: u16 = 0x0007;
/// Intermarket sweep not allowed.
pub const ISO_NOT_ALLOWED: u16 = 0x0008;
/// Invalid side.
pub const INVALID_SIDE: u16 = 0x0009;
/// Firm not authorised (unknown or suspended account).
pub const FIRM_NOT_AUTHORIZED: u16 = 0x000C;
/// Invalid minimum quantity.
pub const INVALID_MIN_QUANTITY: u16 = 0x000D;
/// Other.
pub const OTHER: u16 = 0x000F;
/// Invalid quantity.
pub const INVALID_QUANTITY: u16 = 0x0013;
/// Invalid cross order.
pub const INVALID_CROSS: u16 = 0x0014;
/// Invalid symbol.
pub const INVALID_SYMBOL: u16 = 0x0017;
/// Invalid price.
pub const INVALID_PRICE: u16 = 0x001D;
/// Exceeds maximum allowed notional value.
pub const EXCEEDS_NOTIONAL: u16 = 0x001F;
/// Our extension: the engine's reject code plus this.
pub const ENGINE_BASE: u16 = 0x0100;
/// An OUCH feature this exchange does not support (time in force,
/// option, order type): our extension.
pub const UNSUPPORTED: u16 = 0x01FF;

/// The OUCH reason for an engine rejection.
pub fn ouch_reason(reason: RejectReason) -> u16 {
    use RejectReason as R;
    match reason {
        R::UnknownAccount | R::AccountSuspended => FIRM_NOT_AUTHORIZED,
        R::UnknownInstrument => INVALID_SYMBOL,
        R::InstrumentHalted => HALTED,
        R::PriceOffTick | R::PriceOutsideBand => INVALID_PRICE,
        R::QuantityOffLot | R::QuantityOutOfRange | R::QuantityNotReduced => INVALID_QUANTITY,
        R::Overflow => EXCEEDS_NOTIONAL,
        other => ENGINE_BASE + other.code(),
    }
}

/// Why an inbound message became a gateway reject rather than an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: u16,
    pub what: &'static str,
}

pub(super) fn refuse(reason: u16, what: &'static str) -> Refusal {
    Refusal { reason, what }
}
