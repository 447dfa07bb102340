//! Business rejections: one stable numeric reason per rejected command.
//!
//! A rejected command changes no state except, where noted in
//! `docs/engine.md`, consuming the client reference it carried (so a resend
//! can never be applied later) and, for a funding command that consumed its
//! transfer id, recording the rejection so that a repeat gets it back. When several reasons apply, the command is
//! rejected with the first in the precedence order of its kind, which the
//! engine checks in exactly that order:
//!
//! | command | precedence |
//! |---|---|
//! | new order | `UnknownAccount`, `DuplicateUserRefNum`, `AccountSuspended`, `UnknownInstrument`, `InstrumentHalted`, `InvalidOrderAttributes`, `PriceOffTick`, `PriceOutsideBand`, `QuantityOffLot`, `QuantityOutOfRange`, `Overflow`, `InsufficientFunds`, `WouldTakeLiquidity`, `BookFull` |
//! | cancel | `UnknownAccount`, `UnknownOrder`, `NotYourOrder`, `QuantityOffLot`, `QuantityNotReduced` |
//! | replace | `UnknownAccount`, `DuplicateUserRefNum`, `AccountSuspended`, `UnknownOrder`, `NotYourOrder`, `InstrumentHalted`, `PriceOffTick`, `PriceOutsideBand`, `QuantityOffLot`, `QuantityOutOfRange`, `Overflow`, `InsufficientFunds`, `WouldTakeLiquidity` |
//! | mass cancel | `UnknownAccount`, `UnknownInstrument` |
//! | deposit, withdrawal | `UnknownAccount`, `TransferIdMismatch` / `TransferIdNotIncreasing`, `AccountSuspended`, `UnknownAsset`, `InvalidAmount`, `Overflow` (deposit), `InsufficientFunds` (withdrawal) |
//! | transfer | `UnknownAccount` (from), `TransferIdMismatch` / `TransferIdNotIncreasing`, `AccountSuspended` (from), `UnknownAccount` (to), `SameAccount`, `AccountSuspended` (to), `UnknownAsset`, `InvalidAmount`, `InsufficientFunds` |
//! | account query | `UnknownAccount` |
//! | gateway reject | `UnknownAccount`, `DuplicateUserRefNum`, `GatewayRejected` |
//! | admin | `CapacityExceeded`, `AlreadyExists`, then the checks of the spec (`UnknownAsset`, `InvalidSpec`, `BandTooWide`), `UnknownAccount` / `UnknownInstrument` for changes |

use std::fmt;

/// Why a command was rejected. The numeric value is stable: it is written to
/// journals and wire replies, and a code is never reused for another meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum RejectReason {
    /// The account does not exist.
    UnknownAccount = 1,
    /// The order's `user_ref_num` is not greater than the account's last one.
    DuplicateUserRefNum = 2,
    /// The account is suspended.
    AccountSuspended = 3,
    /// The instrument does not exist.
    UnknownInstrument = 4,
    /// The instrument is halted.
    InstrumentHalted = 5,
    /// The order's attributes contradict each other: a market order that may
    /// rest (Day/GTC), a post-only order that may not rest (market, IOC, FOK).
    InvalidOrderAttributes = 6,
    /// The limit price is not a multiple of the tick size.
    PriceOffTick = 7,
    /// The price is not positive, or outside the instrument's price band.
    PriceOutsideBand = 8,
    /// The quantity is not a multiple of the lot size.
    QuantityOffLot = 9,
    /// The quantity is zero, below the minimum or above the maximum.
    QuantityOutOfRange = 10,
    /// An amount the command implies does not fit 64 bits.
    Overflow = 11,
    /// The account's available balance does not cover the hold or debit.
    InsufficientFunds = 12,
    /// A post-only order would have traded on arrival.
    WouldTakeLiquidity = 13,
    /// The order would rest but the order store is full (`orders_max`).
    BookFull = 14,
    /// No open order has that reference for this account.
    UnknownOrder = 15,
    /// The order belongs to another account.
    NotYourOrder = 16,
    /// A cancel asked to leave at least the order's open quantity.
    QuantityNotReduced = 17,
    /// The asset does not exist.
    UnknownAsset = 18,
    /// A funding amount of zero.
    InvalidAmount = 19,
    /// A repeated transfer id with different fields than the original.
    TransferIdMismatch = 20,
    /// A transfer id not above the account's last one, with no record of it.
    TransferIdNotIncreasing = 21,
    /// A transfer from an account to itself.
    SameAccount = 22,
    /// An admin command creating something that already exists.
    AlreadyExists = 23,
    /// An admin command with an invalid specification.
    InvalidSpec = 24,
    /// An id at or above a configured capacity.
    CapacityExceeded = 25,
    /// A price band needs more price levels than `price_levels_max`.
    BandTooWide = 26,
    /// The gateway turned the client's message away for a reason of its own
    /// (a `GatewayReject` command, which is always rejected).
    GatewayRejected = 27,
}

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: [RejectReason; 27] = [
        RejectReason::UnknownAccount,
        RejectReason::DuplicateUserRefNum,
        RejectReason::AccountSuspended,
        RejectReason::UnknownInstrument,
        RejectReason::InstrumentHalted,
        RejectReason::InvalidOrderAttributes,
        RejectReason::PriceOffTick,
        RejectReason::PriceOutsideBand,
        RejectReason::QuantityOffLot,
        RejectReason::QuantityOutOfRange,
        RejectReason::Overflow,
        RejectReason::InsufficientFunds,
        RejectReason::WouldTakeLiquidity,
        RejectReason::BookFull,
        RejectReason::UnknownOrder,
        RejectReason::NotYourOrder,
        RejectReason::QuantityNotReduced,
        RejectReason::UnknownAsset,
        RejectReason::InvalidAmount,
        RejectReason::TransferIdMismatch,
        RejectReason::TransferIdNotIncreasing,
        RejectReason::SameAccount,
        RejectReason::AlreadyExists,
        RejectReason::InvalidSpec,
        RejectReason::CapacityExceeded,
        RejectReason::BandTooWide,
        RejectReason::GatewayRejected,
    ];

    /// The stable numeric code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// The reason with this code, if there is one.
    ///
    /// ```
    /// use engine::RejectReason;
    /// assert_eq!(RejectReason::from_code(12), Some(RejectReason::InsufficientFunds));
    /// assert_eq!(RejectReason::from_code(0), None);
    /// ```
    pub fn from_code(code: u16) -> Option<RejectReason> {
        RejectReason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dense_unique_and_round_trip() {
        for (index, reason) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(reason.code()), index + 1);
            assert_eq!(RejectReason::from_code(reason.code()), Some(*reason));
        }
        assert_eq!(RejectReason::from_code(28), None);
    }
}
