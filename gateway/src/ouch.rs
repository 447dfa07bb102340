//! OUCH 5.0 order-entry messages: a sans-I/O codec for the payloads that
//! travel inside SoupBinTCP sequenced / unsequenced data packets.
//!
//! Source: NASDAQ, *OUCH 5.0 Order Entry Specification*
//! (<https://www.nasdaqtrader.com/content/technicalsupport/specifications/TradingProducts/OUCH5.0.pdf>),
//! cross-checked against the Orchestra rendering of that document
//! (<https://orchimate.org/r/atomicwire/nasdaq-ouch/5.0/messages>, which
//! gives the field order of every message and the data types) and against the
//! optional-field table (tag, value size) in its Appendix A. Third-party code
//! (`slouch`, `ouch_model`) was read only to cross-check; where it differs
//! from the specification (e.g. `ouch_model` 5.0.1 encodes Symbol in 9 bytes)
//! the specification wins.
//!
//! # Data types
//!
//! - Integers are unsigned, big-endian binary (`u8`, `u16`, `u32`, `u64`).
//! - Alpha fields are ASCII, left-justified and padded on the right with
//!   spaces. This codec accepts printable ASCII (0x20..=0x7E) only.
//! - Price is 8 bytes with 4 implied decimal places (`$150.34` is `1503400`).
//!   The specification calls it unsigned unless designated otherwise; it is
//!   held as an `i64` (two's complement on the wire) so that one type serves
//!   both, and the gateway maps it to engine ticks (see `DESIGN.md`,
//!   "Numbers and identities").
//! - Signed Price (Peg Offset, Discretion Peg Offset) is 4 bytes, signed,
//!   4 implied decimals.
//! - Timestamp is 8 bytes: nanoseconds since midnight.
//! - UserRefNum is a `u32`, day-unique and strictly increasing per account.
//!
//! # Optional appendage
//!
//! Most messages end with an Appendage Length (2 bytes) followed by that many
//! bytes of TagValue elements. Each element is:
//!
//! ```text
//! +--------+-----+-------------------------------+
//! | length | tag | value (length - 1 bytes)      |
//! | 1 byte | 1 B | size fixed per tag            |
//! +--------+-----+-------------------------------+
//! ```
//!
//! `length` counts the tag byte and the value. Tags and value sizes
//! (Appendix A): 1 SecondaryOrdRefNum u64, 2 Firm alpha 4, 3 MinQty u32,
//! 4 CustomerType alpha 1, 5 MaxFloor u32, 6 PriceType alpha 1, 7 PegOffset
//! signed price 4, 9 DiscretionPrice price 8, 10 DiscretionPriceType alpha 1,
//! 11 DiscretionPegOffset signed price 4, 12 PostOnly alpha 1, 13
//! RandomReserves u32, 14 Route alpha 4, 15 ExpireTime u32 (seconds), 16
//! TradeNow alpha 1, 17 HandleInst alpha 1, 18 BBO Weight Indicator alpha 1,
//! 22 DisplayQuantity u32, 23 DisplayPrice price 8, 24 GroupID u16, 25
//! SharesLocated alpha 1, 26 LocateBroker alpha 4, 27 Side alpha 1, 28
//! UserRefIdx u8, 29 AIQStrategy alpha 1, 30 AIQGroupID alpha 2.
//!
//! Decoding is strict: an unknown tag, a tag the message does not list among
//! its available options, a repeated tag, or a value of the wrong size is a
//! typed [`OuchError`], so the server can reject the order with a clear
//! reason instead of ignoring a field. Encoding writes the present options in
//! ascending tag order (the order is not significant on decode).
//!
//! Where the specification marks Appendage Length as optional (Cancel Order,
//! Modify Order, Account Query Request; Order Canceled, AIQ Canceled, Broken
//! Trade, Order Rejected, Cancel Pending, Cancel Reject, Order Priority
//! Update, Order Modified, Account Query Response) the decoder also accepts
//! the message without it (meaning: no options). The encoder always writes
//! it, `0` when there are no options, which the specification describes as
//! "Zero (0) if no appendage follows".
//!
//! # Inbound messages (client to server)
//!
//! ```text
//! Enter Order 'O' (47 + appendage)       Replace Order 'U' (40 + appendage)
//! off len field                          off len field
//!   0   1 Type 'O'                         0   1 Type 'U'
//!   1   4 UserRefNum                       1   4 OrigUserRefNum
//!   5   1 Side                             5   4 UserRefNum
//!   6   4 Quantity                         9   4 Quantity
//!  10   8 Symbol                          13   8 Price
//!  18   8 Price                           21   1 Time In Force
//!  26   1 Time In Force                   22   1 Display
//!  27   1 Display                         23   1 Intermarket Sweep Elig.
//!  28   1 Capacity                        24  14 ClOrdID
//!  29   1 Intermarket Sweep Elig.         38   2 Appendage Length
//!  30   1 Cross Type                      40   n Optional Appendage
//!  31  14 ClOrdID
//!  45   2 Appendage Length
//!  47   n Optional Appendage
//!
//! Cancel Order 'X' (11 + app.)   Modify Order 'M' (12 + app.)
//!   0   1 Type 'X'                 0   1 Type 'M'
//!   1   4 UserRefNum               1   4 UserRefNum
//!   5   4 Quantity (0 = all)       5   1 Side
//!   9   2 Appendage Length         6   4 Quantity
//!  11   n Optional Appendage      10   2 Appendage Length
//!                                 12   n Optional Appendage
//!
//! Mass Cancel Request 'C' (19 + app.)   Account Query Request 'Q' (3 + app.)
//!   0   1 Type 'C'                        0   1 Type 'Q'
//!   1   4 UserRefNum                      1   2 Appendage Length
//!   5   4 Firm                            3   n Optional Appendage
//!   9   8 Symbol (spaces = all)
//!  17   2 Appendage Length
//!  19   n Optional Appendage
//! ```
//!
//! # Outbound messages (server to client)
//!
//! ```text
//! System Event 'S' (10)          Order Accepted 'A' (64 + app.)   Order Replaced 'U' (68 + app.)
//!   0   1 Type 'S'                 0   1 Type 'A'                   0   1 Type 'U'
//!   1   8 Timestamp                1   8 Timestamp                  1   8 Timestamp
//!   9   1 Event Code               9   4 UserRefNum                 9   4 OrigUserRefNum
//!                                 13   1 Side                      13   4 UserRefNum
//!                                 14   4 Quantity                  17   1 Side
//!                                 18   8 Symbol                    18   4 Quantity
//!                                 26   8 Price                     22   8 Symbol
//!                                 34   1 Time In Force             30   8 Price
//!                                 35   1 Display                   38   1 Time In Force
//!                                 36   8 Order Reference Number    39   1 Display
//!                                 44   1 Capacity                  40   8 Order Reference Number
//!                                 45   1 Intermarket Sweep Elig.   48   1 Capacity
//!                                 46   1 Cross Type                49   1 Intermarket Sweep Elig.
//!                                 47   1 Order State               50   1 Cross Type
//!                                 48  14 ClOrdID                   51   1 Order State
//!                                 62   2 Appendage Length          52  14 ClOrdID
//!                                 64   n Optional Appendage        66   2 Appendage Length
//!                                                                  68   n Optional Appendage
//!
//! Order Canceled 'C' (20 + app.)  AIQ Canceled 'D' (34 + app.)     Order Executed 'E' (36 + app.)
//!   0   1 Type 'C'                  0   1 Type 'D'                   0   1 Type 'E'
//!   1   8 Timestamp                 1   8 Timestamp                  1   8 Timestamp
//!   9   4 UserRefNum                9   4 UserRefNum                 9   4 UserRefNum
//!  13   4 Quantity (decrement)     13   4 Decrement Shares          13   4 Quantity (executed)
//!  17   1 Reason                   17   1 Reason                    17   8 Price
//!  18   2 Appendage Length         18   4 Quantity Prevented        25   1 Liquidity Flag
//!  20   n Optional Appendage       22   8 Execution Price           26   8 Match Number
//!                                  30   1 Liquidity Flag            34   2 Appendage Length
//!                                  31   1 AIQ Strategy              36   n Optional Appendage
//!                                  32   2 Appendage Length
//!                                  34   n Optional Appendage
//!
//! Broken Trade 'B' (38 + app.)    Order Rejected 'J' (31 + app.)   Cancel Pending 'P' / Cancel Reject 'I' (15 + app.)
//!   0   1 Type 'B'                  0   1 Type 'J'                   0   1 Type 'P' or 'I'
//!   1   8 Timestamp                 1   8 Timestamp                  1   8 Timestamp
//!   9   4 UserRefNum                9   4 UserRefNum                 9   4 UserRefNum
//!  13   8 Match Number             13   2 Reason (integer)          13   2 Appendage Length
//!  21   1 Reason                   15  14 ClOrdID                   15   n Optional Appendage
//!  22  14 ClOrdID                  29   2 Appendage Length
//!  36   2 Appendage Length         31   n Optional Appendage
//!  38   n Optional Appendage
//!
//! Order Priority Update 'T' (32+)  Order Modified 'M' (20 + app.)   Order Restated 'R' (16 + app.)
//!   0   1 Type 'T'                  0   1 Type 'M'                   0   1 Type 'R'
//!   1   8 Timestamp                 1   8 Timestamp                  1   8 Timestamp
//!   9   4 UserRefNum                9   4 UserRefNum                 9   4 UserRefNum
//!  13   8 Price                    13   1 Side                      13   1 Reason
//!  21   1 Display                  14   4 Quantity                  14   2 Appendage Length
//!  22   8 Order Reference Number   18   2 Appendage Length          16   n Optional Appendage
//!  30   2 Appendage Length         20   n Optional Appendage
//!  32   n Optional Appendage
//!
//! Mass Cancel Response 'X' (27 + app.)   Account Query Response 'Q' (15 + app.)
//!   0   1 Type 'X'                         0   1 Type 'Q'
//!   1   8 Timestamp                        1   8 Timestamp
//!   9   4 UserRefNum                       9   4 Next UserRefNum
//!  13   4 Firm                            13   2 Appendage Length
//!  17   8 Symbol                          15   n Optional Appendage
//!  25   2 Appendage Length
//!  27   n Optional Appendage
//! ```
//!
//! Type letters overlap between directions ('U', 'C', 'X', 'M', 'Q'), so a
//! payload is decoded with [`Inbound::decode`] or [`Outbound::decode`]
//! according to who sent it.
//!
//! # Guarantees
//!
//! Decoding allocates nothing, never panics on any input, and consumes the
//! payload exactly: trailing bytes after the appendage are an error, and so
//! is every truncation of a message whose Appendage Length is required.
//! Encoding appends to a caller-owned `Vec<u8>` (reuse it to stay free of
//! allocation once warmed up).
//!
//! # Not covered
//!
//! Disable / Enable Order Entry (inbound 'D' / 'E') and their responses
//! (outbound 'G' / 'K') are not decoded: they are an unknown message type
//! here. The codec does not check cross-field rules (e.g. ExpireTime only with
//! Time In Force GTT); that belongs to the order-entry logic.

use core::fmt;

/// Prices on the wire carry this many units per dollar (4 implied decimals).
pub const PRICE_SCALE: i64 = 10_000;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a payload is not a valid OUCH 5.0 message. Every decode failure is one
/// of these; decoding never panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuchError {
    /// The payload is empty: there is no message type byte.
    Empty,
    /// The message type byte is not one this codec knows for the direction.
    UnknownMessageType {
        /// The type byte as received.
        message_type: u8,
    },
    /// The payload ends before the message (or its appendage) does.
    Truncated {
        /// The type byte of the message being decoded.
        message_type: u8,
    },
    /// Bytes follow the end of the message.
    TrailingBytes {
        /// The type byte of the message being decoded.
        message_type: u8,
        /// How many bytes are left over.
        count: usize,
    },
    /// An enumerated one-byte field holds a value the specification does not
    /// define.
    InvalidCode {
        /// The field name, as in the specification.
        field: &'static str,
        /// The byte as received.
        value: u8,
    },
    /// The Order Rejected reason is not an assigned code.
    InvalidRejectReason {
        /// The code as received.
        value: u16,
    },
    /// An alpha field holds a byte outside printable ASCII.
    InvalidAlpha {
        /// The field name, as in the specification.
        field: &'static str,
    },
    /// A TagValue element carries a tag Appendix A does not define.
    UnknownOptionTag {
        /// The tag as received.
        tag: u8,
    },
    /// A known tag that this message does not list among its options.
    OptionNotAllowed {
        /// The type byte of the message being decoded.
        message_type: u8,
        /// The tag as received.
        tag: u8,
    },
    /// A TagValue element whose length does not match its tag's value size.
    OptionLength {
        /// The tag as received (0 when the length byte itself is 0).
        tag: u8,
        /// The length byte as received (tag plus value).
        length: u8,
    },
    /// The same tag appears twice in one appendage.
    DuplicateOption {
        /// The repeated tag.
        tag: u8,
    },
}

impl fmt::Display for OuchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => write!(f, "empty OUCH payload"),
            Self::UnknownMessageType { message_type } => {
                write!(f, "unknown OUCH message type 0x{message_type:02x}")
            }
            Self::Truncated { message_type } => {
                write!(f, "truncated OUCH message '{}'", char::from(message_type))
            }
            Self::TrailingBytes {
                message_type,
                count,
            } => write!(
                f,
                "{count} trailing bytes after OUCH message '{}'",
                char::from(message_type)
            ),
            Self::InvalidCode { field, value } => {
                write!(f, "invalid {field} value 0x{value:02x}")
            }
            Self::InvalidRejectReason { value } => {
                write!(f, "unassigned reject reason 0x{value:04x}")
            }
            Self::InvalidAlpha { field } => write!(f, "non-printable byte in {field}"),
            Self::UnknownOptionTag { tag } => write!(f, "unknown appendage tag {tag}"),
            Self::OptionNotAllowed { message_type, tag } => write!(
                f,
                "appendage tag {tag} is not an option of message '{}'",
                char::from(message_type)
            ),
            Self::OptionLength { tag, length } => {
                write!(f, "appendage tag {tag} has wrong length {length}")
            }
            Self::DuplicateOption { tag } => write!(f, "appendage tag {tag} repeated"),
        }
    }
}

impl std::error::Error for OuchError {}

// ---------------------------------------------------------------------------
// Field types
// ---------------------------------------------------------------------------

pub use wire::alpha::Alpha;
use wire::alpha::is_printable;

/// Symbol: 8 bytes (not 9, whatever some third-party crates do).
pub type Symbol = Alpha<8>;
/// Client order identifier (ClOrdID): 14 bytes.
pub type ClOrdId = Alpha<14>;
/// A four-letter participant code: Firm, Route, Locate Broker.
pub type Mpid = Alpha<4>;
/// AIQ Group ID: 2 bytes.
pub type AiqGroupId = Alpha<2>;

/// A price with 4 implied decimals (`Price(1_503_400)` is $150.34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub i64);

/// A signed 4-byte price offset with 4 implied decimals (Peg Offset,
/// Discretion Peg Offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PriceOffset(pub i32);

/// A single printable-ASCII code whose full value set this codec does not
/// enumerate (Liquidity Flag, AIQ Strategy): it is carried through as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(u8);

impl Code {
    /// `None` unless `byte` is printable ASCII.
    pub fn new(byte: u8) -> Option<Self> {
        is_printable(byte).then_some(Self(byte))
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        self.0
    }

    fn decode(byte: u8, field: &'static str) -> Result<Self, OuchError> {
        Self::new(byte).ok_or(OuchError::InvalidCode { field, value: byte })
    }
}

/// Order Rejected reason: a 2-byte integer code. The specification assigns
/// 0x0001..=0x0033, and this exchange adds 0x0100..=0x01FF; anything else is
/// [`OuchError::InvalidRejectReason`].
/// Named constants are given for the codes whose meaning was cross-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RejectReason(u16);

impl RejectReason {
    /// The highest assigned code.
    pub const CODE_MAX: u16 = 0x0033;
    /// Test mode.
    pub const TEST: Self = Self(0x0018);
    /// Late LOC too aggressive.
    pub const LATE_LOC_TOO_AGGRESSIVE: Self = Self(0x0019);
    /// Retail not allowed.
    pub const RETAIL_NOT_ALLOWED: Self = Self(0x001a);
    /// Invalid midpoint post-only price.
    pub const INVALID_MIDPOINT_POST_ONLY_PRICE: Self = Self(0x001b);
    /// Invalid destination.
    pub const INVALID_DESTINATION: Self = Self(0x001c);
    /// Invalid price.
    pub const INVALID_PRICE: Self = Self(0x001d);
    /// Shares exceed threshold.
    pub const SHARES_EXCEED_THRESHOLD: Self = Self(0x001e);
    /// Exceeds maximum allowed notional value.
    pub const EXCEEDS_MAXIMUM_NOTIONAL_VALUE: Self = Self(0x001f);
    /// Risk: aggregate exposure exceeded.
    pub const RISK_AGGREGATE_EXPOSURE_EXCEEDED: Self = Self(0x0020);
    /// Risk: restricted stock.
    pub const RISK_RESTRICTED_STOCK: Self = Self(0x0022);
    /// Risk: fat finger.
    pub const RISK_FAT_FINGER: Self = Self(0x0026);
    /// Risk: port message rate restriction.
    pub const RISK_PORT_MESSAGE_RATE: Self = Self(0x0029);
    /// Risk: short sell not allowed.
    pub const RISK_SHORT_SELL_NOT_ALLOWED: Self = Self(0x002b);
    /// Risk: market order not allowed.
    pub const RISK_MARKET_ORDER_NOT_ALLOWED: Self = Self(0x002c);
    /// Risk: single order notional exceeded.
    pub const RISK_SINGLE_ORDER_NOTIONAL_EXCEEDED: Self = Self(0x0030);
    /// Risk: max quantity exceeded.
    pub const RISK_MAX_QUANTITY_EXCEEDED: Self = Self(0x0031);

    /// The first code of this exchange's extension: `0x0100 + n` carries
    /// the engine's reject code `n` where OUCH has no equivalent, and
    /// `0x01FF` an OUCH feature the exchange does not support (see
    /// `docs/protocol.md`).
    pub const EXTENSION_MIN: u16 = 0x0100;
    /// The last code of the extension.
    pub const EXTENSION_MAX: u16 = 0x01FF;

    /// `None` unless `code` is assigned (0x0001..=0x0033) or in this
    /// exchange's extension (0x0100..=0x01FF).
    pub fn new(code: u16) -> Option<Self> {
        ((1..=Self::CODE_MAX).contains(&code)
            || (Self::EXTENSION_MIN..=Self::EXTENSION_MAX).contains(&code))
        .then_some(Self(code))
    }

    /// The code on the wire.
    pub fn code(self) -> u16 {
        self.0
    }
}

/// Declares a one-byte enumerated field: the enum, its wire byte, and a
/// decoder that turns an undefined byte into [`OuchError::InvalidCode`].
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $field:literal {
            $($(#[$variant_meta:meta])* $variant:ident = $byte:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The value for a wire byte.
            pub fn from_byte(byte: u8) -> Result<Self, OuchError> {
                match byte {
                    $($byte => Ok(Self::$variant),)+
                    _ => Err(OuchError::InvalidCode { field: $field, value: byte }),
                }
            }

            /// The wire byte.
            pub fn byte(self) -> u8 {
                match self {
                    $(Self::$variant => $byte,)+
                }
            }
        }
    };
}

code_enum! {
    /// Side of an order.
    Side, "Side" {
        /// Buy.
        Buy = b'B',
        /// Sell.
        Sell = b'S',
        /// Sell short.
        SellShort = b'T',
        /// Sell short exempt.
        SellShortExempt = b'E',
    }
}

code_enum! {
    /// Time In Force.
    TimeInForce, "Time In Force" {
        /// Day (market hours).
        Day = b'0',
        /// Immediate or cancel.
        ImmediateOrCancel = b'3',
        /// Good till extended hours.
        GoodTillExtendedHours = b'5',
        /// Good till time (ExpireTime option).
        GoodTillTime = b'6',
        /// After hours.
        AfterHours = b'E',
    }
}

code_enum! {
    /// Display.
    Display, "Display" {
        /// Visible.
        Visible = b'Y',
        /// Hidden.
        Hidden = b'N',
        /// Attributable.
        Attributable = b'A',
        /// Conformant (outbound only).
        Conformant = b'Z',
    }
}

code_enum! {
    /// Capacity.
    Capacity, "Capacity" {
        /// Agency.
        Agency = b'A',
        /// Principal.
        Principal = b'P',
        /// Riskless principal.
        Riskless = b'R',
        /// Other.
        Other = b'O',
    }
}

code_enum! {
    /// Intermarket Sweep Eligibility.
    IntermarketSweep, "Intermarket Sweep Eligibility" {
        /// Eligible.
        Eligible = b'Y',
        /// Not eligible.
        NotEligible = b'N',
    }
}

code_enum! {
    /// Cross Type.
    CrossType, "Cross Type" {
        /// Continuous market.
        ContinuousMarket = b'N',
        /// Opening cross.
        OpeningCross = b'O',
        /// Closing cross.
        ClosingCross = b'C',
        /// Halt / IPO cross.
        HaltIpo = b'H',
        /// Supplemental order.
        Supplemental = b'S',
        /// Retail.
        Retail = b'R',
        /// Extended life.
        ExtendedLife = b'E',
        /// After-hours close.
        AfterHoursClose = b'A',
    }
}

code_enum! {
    /// Order State.
    OrderState, "Order State" {
        /// Live on the book (or routed).
        Live = b'L',
        /// Dead on arrival.
        Dead = b'D',
    }
}

code_enum! {
    /// System Event code.
    EventCode, "Event Code" {
        /// Start of day.
        StartOfDay = b'S',
        /// End of day.
        EndOfDay = b'E',
    }
}

code_enum! {
    /// Order Canceled / AIQ Canceled reason.
    CancelReason, "Cancel Reason" {
        /// Regulatory restriction.
        RegulatoryRestriction = b'D',
        /// Day order received after the close.
        Closed = b'E',
        /// Post-only order would have been price-slid for NMS.
        PostOnlyNms = b'F',
        /// Post-only order would have been price-slid by a displayed contra order.
        PostOnlyDisplayed = b'G',
        /// Halted.
        Halted = b'H',
        /// Immediate or cancel.
        ImmediateOrCancel = b'I',
        /// Market collars.
        MarketCollars = b'K',
        /// Self-match prevention.
        SelfMatchPrevention = b'Q',
        /// Supervisory.
        Supervisory = b'S',
        /// Time in force expired.
        Timeout = b'T',
        /// User requested.
        UserRequested = b'U',
        /// Opening price protection.
        OpenProtection = b'X',
        /// System cancel.
        System = b'Z',
        /// Direct listing capital raise: exceeds allowable shares.
        ExceedsAllowableShares = b'e',
    }
}

code_enum! {
    /// Broken Trade reason.
    BrokenTradeReason, "Broken Trade Reason" {
        /// Erroneous.
        Erroneous = b'E',
        /// Consent.
        Consent = b'C',
        /// Supervisory.
        Supervisory = b'S',
        /// External.
        External = b'X',
    }
}

code_enum! {
    /// Order Restated reason.
    RestateReason, "Restate Reason" {
        /// Refresh of display (reserve replenishment).
        Refresh = b'R',
        /// Update of displayed price.
        PriceUpdate = b'P',
    }
}

code_enum! {
    /// Customer Type option.
    CustomerType, "Customer Type" {
        /// Retail designated.
        Retail = b'R',
        /// Not retail designated.
        NotRetail = b'N',
        /// Port default.
        PortDefault = b' ',
    }
}

code_enum! {
    /// Price Type option.
    PriceType, "Price Type" {
        /// Limit.
        Limit = b'L',
        /// Market peg.
        MarketPeg = b'P',
        /// Midpoint peg.
        MidpointPeg = b'M',
        /// Primary peg.
        PrimaryPeg = b'R',
        /// Market maker peg.
        MarketMakerPeg = b'Q',
        /// Midpoint (no peg).
        Midpoint = b'm',
    }
}

code_enum! {
    /// Discretion Price Type option.
    DiscretionPriceType, "Discretion Price Type" {
        /// Limit.
        Limit = b'L',
        /// Market peg.
        MarketPeg = b'P',
        /// Midpoint peg.
        MidpointPeg = b'M',
        /// Primary peg.
        PrimaryPeg = b'R',
    }
}

code_enum! {
    /// Post Only option.
    PostOnly, "Post Only" {
        /// Post only.
        PostOnly = b'P',
        /// Not post only.
        No = b'N',
    }
}

code_enum! {
    /// Trade Now option.
    TradeNow, "Trade Now" {
        /// Yes.
        Yes = b'Y',
        /// No.
        No = b'N',
        /// Port default.
        PortDefault = b' ',
    }
}

code_enum! {
    /// Handle Instructions option.
    HandleInst, "Handle Inst" {
        /// Imbalance only.
        ImbalanceOnly = b'I',
        /// Retail order type 1.
        RetailOrderType1 = b'O',
        /// Retail order type 2.
        RetailOrderType2 = b'T',
        /// Retail price improvement.
        RetailPriceImprovement = b'Q',
        /// Extended life continuous.
        ExtendedLifeContinuous = b'B',
        /// Direct listing capital raise.
        DirectListingCapitalRaise = b'D',
        /// No instructions.
        None = b' ',
    }
}

code_enum! {
    /// BBO Weight Indicator option.
    BboWeightIndicator, "BBO Weight Indicator" {
        /// 0 - 0.2 %.
        Range0To02 = b'0',
        /// 0.2 - 1 %.
        Range02To1 = b'1',
        /// 1 - 2 %.
        Range1To2 = b'2',
        /// More than 2 %.
        Above2 = b'3',
        /// Unspecified.
        Unspecified = b' ',
        /// Sets the QBBO while joining the NBBO.
        SetsQbbo = b'S',
        /// Improves the NBBO on entry.
        ImprovesNbbo = b'N',
    }
}

code_enum! {
    /// Shares Located option.
    SharesLocated, "Shares Located" {
        /// Yes.
        Yes = b'Y',
        /// No.
        No = b'N',
    }
}

// ---------------------------------------------------------------------------
// Reading and writing
// ---------------------------------------------------------------------------

/// Whether a message may omit its Appendage Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppendageRule {
    Required,
    Optional,
}

use AppendageRule::{Optional, Required};

/// A cursor over one payload. Every read is bounds-checked and returns
/// [`OuchError::Truncated`] rather than panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    message_type: u8,
}

impl<'a> Reader<'a> {
    fn new(message_type: u8, bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            message_type,
        }
    }

    fn truncated(&self) -> OuchError {
        OuchError::Truncated {
            message_type: self.message_type,
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], OuchError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated())?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, OuchError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, OuchError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, OuchError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, OuchError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn price(&mut self) -> Result<Price, OuchError> {
        Ok(Price(i64::from_be_bytes(self.array()?)))
    }

    fn alpha<const N: usize>(&mut self, field: &'static str) -> Result<Alpha<N>, OuchError> {
        Alpha::from_bytes(self.array()?).ok_or(OuchError::InvalidAlpha { field })
    }

    fn code(&mut self, field: &'static str) -> Result<Code, OuchError> {
        Code::decode(self.u8()?, field)
    }

    fn appendage(&mut self, rule: AppendageRule, allowed: u32) -> Result<Options, OuchError> {
        if self.bytes.is_empty() && rule == AppendageRule::Optional {
            return Ok(Options::default());
        }
        let length = usize::from(self.u16()?);
        if self.bytes.len() < length {
            return Err(self.truncated());
        }
        let (body, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Options::decode(body, self.message_type, allowed)
    }

    fn finish(self) -> Result<(), OuchError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(OuchError::TrailingBytes {
                message_type: self.message_type,
                count: self.bytes.len(),
            })
        }
    }
}

/// Where an outbound message is written: its bytes ([`Vec<u8>`]), or only
/// their count ([`ByteCount`]): one encoder gives both, so a length never
/// disagrees with the bytes.
trait Put {
    fn push(&mut self, byte: u8);
    fn extend_from_slice(&mut self, bytes: &[u8]);
}

impl Put for Vec<u8> {
    #[inline]
    fn push(&mut self, byte: u8) {
        Vec::push(self, byte);
    }

    #[inline]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes);
    }
}

/// Counts what would be written.
#[derive(Default)]
struct ByteCount(usize);

impl Put for ByteCount {
    #[inline]
    fn push(&mut self, _byte: u8) {
        self.0 += 1;
    }

    #[inline]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

fn put_u16(out: &mut impl Put, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u32(out: &mut impl Put, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u64(out: &mut impl Put, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_price(out: &mut impl Put, price: Price) {
    out.extend_from_slice(&price.0.to_be_bytes());
}

// ---------------------------------------------------------------------------
// Optional appendage
// ---------------------------------------------------------------------------

/// Appendix A tags.
mod tag {
    pub(super) const SECONDARY_ORDER_REFERENCE_NUMBER: u8 = 1;
    pub(super) const FIRM: u8 = 2;
    pub(super) const MIN_QUANTITY: u8 = 3;
    pub(super) const CUSTOMER_TYPE: u8 = 4;
    pub(super) const MAX_FLOOR: u8 = 5;
    pub(super) const PRICE_TYPE: u8 = 6;
    pub(super) const PEG_OFFSET: u8 = 7;
    pub(super) const DISCRETION_PRICE: u8 = 9;
    pub(super) const DISCRETION_PRICE_TYPE: u8 = 10;
    pub(super) const DISCRETION_PEG_OFFSET: u8 = 11;
    pub(super) const POST_ONLY: u8 = 12;
    pub(super) const RANDOM_RESERVES: u8 = 13;
    pub(super) const ROUTE: u8 = 14;
    pub(super) const EXPIRE_TIME: u8 = 15;
    pub(super) const TRADE_NOW: u8 = 16;
    pub(super) const HANDLE_INST: u8 = 17;
    pub(super) const BBO_WEIGHT_INDICATOR: u8 = 18;
    pub(super) const DISPLAY_QUANTITY: u8 = 22;
    pub(super) const DISPLAY_PRICE: u8 = 23;
    pub(super) const GROUP_ID: u8 = 24;
    pub(super) const SHARES_LOCATED: u8 = 25;
    pub(super) const LOCATE_BROKER: u8 = 26;
    pub(super) const SIDE: u8 = 27;
    pub(super) const USER_REF_INDEX: u8 = 28;
    pub(super) const AIQ_STRATEGY: u8 = 29;
    pub(super) const AIQ_GROUP_ID: u8 = 30;

    /// Value size for a tag, `None` for a tag Appendix A does not define.
    pub(super) fn value_length(tag: u8) -> Option<usize> {
        match tag {
            SECONDARY_ORDER_REFERENCE_NUMBER | DISCRETION_PRICE | DISPLAY_PRICE => Some(8),
            FIRM
            | MIN_QUANTITY
            | MAX_FLOOR
            | PEG_OFFSET
            | DISCRETION_PEG_OFFSET
            | RANDOM_RESERVES
            | ROUTE
            | EXPIRE_TIME
            | DISPLAY_QUANTITY
            | LOCATE_BROKER => Some(4),
            GROUP_ID | AIQ_GROUP_ID => Some(2),
            CUSTOMER_TYPE
            | PRICE_TYPE
            | DISCRETION_PRICE_TYPE
            | POST_ONLY
            | TRADE_NOW
            | HANDLE_INST
            | BBO_WEIGHT_INDICATOR
            | SHARES_LOCATED
            | SIDE
            | USER_REF_INDEX
            | AIQ_STRATEGY => Some(1),
            _ => None,
        }
    }

    /// A set of tags as a bit mask (every tag is below 32).
    pub(super) const fn mask(tags: &[u8]) -> u32 {
        let mut mask = 0u32;
        let mut index = 0;
        while index < tags.len() {
            mask |= 1 << tags[index];
            index += 1;
        }
        mask
    }
}

/// The optional fields of one message (its appendage). `None` means absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// 1: secondary order reference number (market-data identity).
    pub secondary_order_reference_number: Option<u64>,
    /// 2: firm.
    pub firm: Option<Mpid>,
    /// 3: minimum quantity.
    pub min_quantity: Option<u32>,
    /// 4: customer type.
    pub customer_type: Option<CustomerType>,
    /// 5: max floor (displayed portion of a reserve order).
    pub max_floor: Option<u32>,
    /// 6: price type.
    pub price_type: Option<PriceType>,
    /// 7: peg offset.
    pub peg_offset: Option<PriceOffset>,
    /// 9: discretion price.
    pub discretion_price: Option<Price>,
    /// 10: discretion price type.
    pub discretion_price_type: Option<DiscretionPriceType>,
    /// 11: discretion peg offset.
    pub discretion_peg_offset: Option<PriceOffset>,
    /// 12: post only.
    pub post_only: Option<PostOnly>,
    /// 13: random reserves.
    pub random_reserves: Option<u32>,
    /// 14: route.
    pub route: Option<Mpid>,
    /// 15: expire time, seconds to live (below 86 400).
    pub expire_time_s: Option<u32>,
    /// 16: trade now.
    pub trade_now: Option<TradeNow>,
    /// 17: handle instructions.
    pub handle_inst: Option<HandleInst>,
    /// 18: BBO weight indicator.
    pub bbo_weight_indicator: Option<BboWeightIndicator>,
    /// 22: display quantity (Order Restated).
    pub display_quantity: Option<u32>,
    /// 23: display price (Order Restated).
    pub display_price: Option<Price>,
    /// 24: group id.
    pub group_id: Option<u16>,
    /// 25: shares located.
    pub shares_located: Option<SharesLocated>,
    /// 26: locate broker.
    pub locate_broker: Option<Mpid>,
    /// 27: side.
    pub side: Option<Side>,
    /// 28: user reference index (order flow channel).
    pub user_ref_index: Option<u8>,
    /// 29: AIQ strategy.
    pub aiq_strategy: Option<Code>,
    /// 30: AIQ group id.
    pub aiq_group_id: Option<AiqGroupId>,
}

/// The largest appendage [`Options::encode`] can write: every tag once.
const OPTIONS_ENCODED_LENGTH_MAX: usize = 26 * 2 + 3 * 8 + 10 * 4 + 2 * 2 + 11;
const _: () = assert!(OPTIONS_ENCODED_LENGTH_MAX <= u16::MAX as usize);

impl Options {
    /// No options.
    pub const NONE: Self = Self {
        secondary_order_reference_number: None,
        firm: None,
        min_quantity: None,
        customer_type: None,
        max_floor: None,
        price_type: None,
        peg_offset: None,
        discretion_price: None,
        discretion_price_type: None,
        discretion_peg_offset: None,
        post_only: None,
        random_reserves: None,
        route: None,
        expire_time_s: None,
        trade_now: None,
        handle_inst: None,
        bbo_weight_indicator: None,
        display_quantity: None,
        display_price: None,
        group_id: None,
        shares_located: None,
        locate_broker: None,
        side: None,
        user_ref_index: None,
        aiq_strategy: None,
        aiq_group_id: None,
    };

    /// The tags present, as a bit mask.
    fn tags_present(&self) -> u32 {
        let flags = [
            (
                tag::SECONDARY_ORDER_REFERENCE_NUMBER,
                self.secondary_order_reference_number.is_some(),
            ),
            (tag::FIRM, self.firm.is_some()),
            (tag::MIN_QUANTITY, self.min_quantity.is_some()),
            (tag::CUSTOMER_TYPE, self.customer_type.is_some()),
            (tag::MAX_FLOOR, self.max_floor.is_some()),
            (tag::PRICE_TYPE, self.price_type.is_some()),
            (tag::PEG_OFFSET, self.peg_offset.is_some()),
            (tag::DISCRETION_PRICE, self.discretion_price.is_some()),
            (
                tag::DISCRETION_PRICE_TYPE,
                self.discretion_price_type.is_some(),
            ),
            (
                tag::DISCRETION_PEG_OFFSET,
                self.discretion_peg_offset.is_some(),
            ),
            (tag::POST_ONLY, self.post_only.is_some()),
            (tag::RANDOM_RESERVES, self.random_reserves.is_some()),
            (tag::ROUTE, self.route.is_some()),
            (tag::EXPIRE_TIME, self.expire_time_s.is_some()),
            (tag::TRADE_NOW, self.trade_now.is_some()),
            (tag::HANDLE_INST, self.handle_inst.is_some()),
            (
                tag::BBO_WEIGHT_INDICATOR,
                self.bbo_weight_indicator.is_some(),
            ),
            (tag::DISPLAY_QUANTITY, self.display_quantity.is_some()),
            (tag::DISPLAY_PRICE, self.display_price.is_some()),
            (tag::GROUP_ID, self.group_id.is_some()),
            (tag::SHARES_LOCATED, self.shares_located.is_some()),
            (tag::LOCATE_BROKER, self.locate_broker.is_some()),
            (tag::SIDE, self.side.is_some()),
            (tag::USER_REF_INDEX, self.user_ref_index.is_some()),
            (tag::AIQ_STRATEGY, self.aiq_strategy.is_some()),
            (tag::AIQ_GROUP_ID, self.aiq_group_id.is_some()),
        ];
        flags
            .iter()
            .filter(|(_, present)| *present)
            .fold(0, |mask, (tag, _)| mask | 1 << tag)
    }

    fn decode(mut bytes: &[u8], message_type: u8, allowed: u32) -> Result<Self, OuchError> {
        let mut options = Self::NONE;
        let mut seen = 0u32;
        while let Some((&length, rest)) = bytes.split_first() {
            if length == 0 {
                return Err(OuchError::OptionLength { tag: 0, length });
            }
            let element = rest
                .get(..usize::from(length))
                .ok_or(OuchError::Truncated { message_type })?;
            bytes = &rest[element.len()..];
            let (&tag, value) = element
                .split_first()
                .ok_or(OuchError::OptionLength { tag: 0, length })?;
            let value_length = tag::value_length(tag).ok_or(OuchError::UnknownOptionTag { tag })?;
            if value.len() != value_length {
                return Err(OuchError::OptionLength { tag, length });
            }
            let bit = 1u32 << tag;
            if allowed & bit == 0 {
                return Err(OuchError::OptionNotAllowed { message_type, tag });
            }
            if seen & bit != 0 {
                return Err(OuchError::DuplicateOption { tag });
            }
            seen |= bit;
            options.set(tag, value)?;
        }
        Ok(options)
    }

    /// Stores one element whose value has the size `tag::value_length` gives.
    fn set(&mut self, tag: u8, value: &[u8]) -> Result<(), OuchError> {
        let mut reader = Reader::new(0, value);
        let first = value.first().copied().unwrap_or(0);
        match tag {
            tag::SECONDARY_ORDER_REFERENCE_NUMBER => {
                self.secondary_order_reference_number = Some(reader.u64()?);
            }
            tag::FIRM => self.firm = Some(reader.alpha("Firm")?),
            tag::MIN_QUANTITY => self.min_quantity = Some(reader.u32()?),
            tag::CUSTOMER_TYPE => self.customer_type = Some(CustomerType::from_byte(first)?),
            tag::MAX_FLOOR => self.max_floor = Some(reader.u32()?),
            tag::PRICE_TYPE => self.price_type = Some(PriceType::from_byte(first)?),
            tag::PEG_OFFSET => {
                self.peg_offset = Some(PriceOffset(i32::from_be_bytes(reader.array()?)));
            }
            tag::DISCRETION_PRICE => self.discretion_price = Some(reader.price()?),
            tag::DISCRETION_PRICE_TYPE => {
                self.discretion_price_type = Some(DiscretionPriceType::from_byte(first)?);
            }
            tag::DISCRETION_PEG_OFFSET => {
                self.discretion_peg_offset = Some(PriceOffset(i32::from_be_bytes(reader.array()?)));
            }
            tag::POST_ONLY => self.post_only = Some(PostOnly::from_byte(first)?),
            tag::RANDOM_RESERVES => self.random_reserves = Some(reader.u32()?),
            tag::ROUTE => self.route = Some(reader.alpha("Route")?),
            tag::EXPIRE_TIME => self.expire_time_s = Some(reader.u32()?),
            tag::TRADE_NOW => self.trade_now = Some(TradeNow::from_byte(first)?),
            tag::HANDLE_INST => self.handle_inst = Some(HandleInst::from_byte(first)?),
            tag::BBO_WEIGHT_INDICATOR => {
                self.bbo_weight_indicator = Some(BboWeightIndicator::from_byte(first)?);
            }
            tag::DISPLAY_QUANTITY => self.display_quantity = Some(reader.u32()?),
            tag::DISPLAY_PRICE => self.display_price = Some(reader.price()?),
            tag::GROUP_ID => self.group_id = Some(reader.u16()?),
            tag::SHARES_LOCATED => self.shares_located = Some(SharesLocated::from_byte(first)?),
            tag::LOCATE_BROKER => self.locate_broker = Some(reader.alpha("Locate Broker")?),
            tag::SIDE => self.side = Some(Side::from_byte(first)?),
            tag::USER_REF_INDEX => self.user_ref_index = Some(first),
            tag::AIQ_STRATEGY => self.aiq_strategy = Some(Code::decode(first, "AIQ Strategy")?),
            tag::AIQ_GROUP_ID => self.aiq_group_id = Some(reader.alpha("AIQ Group ID")?),
            _ => return Err(OuchError::UnknownOptionTag { tag }),
        }
        Ok(())
    }

    /// Appends Appendage Length and the elements, in ascending tag order.
    fn encode(&self, out: &mut impl Put, allowed: u32) {
        // A programmer error: the peer would reject the message.
        assert!(
            self.tags_present() & !allowed == 0,
            "options not allowed on this message: {:#x}",
            self.tags_present() & !allowed
        );
        if self.tags_present() == 0 {
            // The common case: an empty appendage, its length alone.
            put_u16(out, 0);
            return;
        }
        let mut length = 0;
        self.for_each_element(|_, value| length += 2 + value.len());
        debug_assert!(length <= OPTIONS_ENCODED_LENGTH_MAX);
        // Bounded by OPTIONS_ENCODED_LENGTH_MAX, asserted above to fit a u16.
        put_u16(out, length as u16);
        self.for_each_element(|tag, value| {
            // Values are at most 8 bytes, so the length byte cannot overflow.
            out.push(value.len() as u8 + 1);
            out.push(tag);
            out.extend_from_slice(value);
        });
    }

    /// Calls `put` with the tag and value of every element, in ascending
    /// tag order.
    fn for_each_element(&self, mut put: impl FnMut(u8, &[u8])) {
        if let Some(v) = self.secondary_order_reference_number {
            put(tag::SECONDARY_ORDER_REFERENCE_NUMBER, &v.to_be_bytes());
        }
        if let Some(v) = self.firm {
            put(tag::FIRM, v.as_bytes());
        }
        if let Some(v) = self.min_quantity {
            put(tag::MIN_QUANTITY, &v.to_be_bytes());
        }
        if let Some(v) = self.customer_type {
            put(tag::CUSTOMER_TYPE, &[v.byte()]);
        }
        if let Some(v) = self.max_floor {
            put(tag::MAX_FLOOR, &v.to_be_bytes());
        }
        if let Some(v) = self.price_type {
            put(tag::PRICE_TYPE, &[v.byte()]);
        }
        if let Some(v) = self.peg_offset {
            put(tag::PEG_OFFSET, &v.0.to_be_bytes());
        }
        if let Some(v) = self.discretion_price {
            put(tag::DISCRETION_PRICE, &v.0.to_be_bytes());
        }
        if let Some(v) = self.discretion_price_type {
            put(tag::DISCRETION_PRICE_TYPE, &[v.byte()]);
        }
        if let Some(v) = self.discretion_peg_offset {
            put(tag::DISCRETION_PEG_OFFSET, &v.0.to_be_bytes());
        }
        if let Some(v) = self.post_only {
            put(tag::POST_ONLY, &[v.byte()]);
        }
        if let Some(v) = self.random_reserves {
            put(tag::RANDOM_RESERVES, &v.to_be_bytes());
        }
        if let Some(v) = self.route {
            put(tag::ROUTE, v.as_bytes());
        }
        if let Some(v) = self.expire_time_s {
            put(tag::EXPIRE_TIME, &v.to_be_bytes());
        }
        if let Some(v) = self.trade_now {
            put(tag::TRADE_NOW, &[v.byte()]);
        }
        if let Some(v) = self.handle_inst {
            put(tag::HANDLE_INST, &[v.byte()]);
        }
        if let Some(v) = self.bbo_weight_indicator {
            put(tag::BBO_WEIGHT_INDICATOR, &[v.byte()]);
        }
        if let Some(v) = self.display_quantity {
            put(tag::DISPLAY_QUANTITY, &v.to_be_bytes());
        }
        if let Some(v) = self.display_price {
            put(tag::DISPLAY_PRICE, &v.0.to_be_bytes());
        }
        if let Some(v) = self.group_id {
            put(tag::GROUP_ID, &v.to_be_bytes());
        }
        if let Some(v) = self.shares_located {
            put(tag::SHARES_LOCATED, &[v.byte()]);
        }
        if let Some(v) = self.locate_broker {
            put(tag::LOCATE_BROKER, v.as_bytes());
        }
        if let Some(v) = self.side {
            put(tag::SIDE, &[v.byte()]);
        }
        if let Some(v) = self.user_ref_index {
            put(tag::USER_REF_INDEX, &[v]);
        }
        if let Some(v) = self.aiq_strategy {
            put(tag::AIQ_STRATEGY, &[v.byte()]);
        }
        if let Some(v) = self.aiq_group_id {
            put(tag::AIQ_GROUP_ID, v.as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------
// Inbound messages
// ---------------------------------------------------------------------------

/// Options each message lists ("The available options supported on this
/// message are ..."), transcribed per message section of the specification.
#[rustfmt::skip]
mod allowed {
    use super::tag::*;

    pub(super) const ENTER_ORDER: u32 = mask(&[
        FIRM, MIN_QUANTITY, CUSTOMER_TYPE, MAX_FLOOR, PRICE_TYPE, PEG_OFFSET, DISCRETION_PRICE,
        DISCRETION_PRICE_TYPE, DISCRETION_PEG_OFFSET, POST_ONLY, RANDOM_RESERVES, EXPIRE_TIME,
        TRADE_NOW, HANDLE_INST, GROUP_ID, SHARES_LOCATED, LOCATE_BROKER, USER_REF_INDEX,
        AIQ_STRATEGY, AIQ_GROUP_ID,
    ]);
    pub(super) const REPLACE_ORDER: u32 = mask(&[
        MIN_QUANTITY, MAX_FLOOR, PRICE_TYPE, POST_ONLY, EXPIRE_TIME, TRADE_NOW, HANDLE_INST,
        RANDOM_RESERVES, PEG_OFFSET, DISCRETION_PRICE, DISCRETION_PRICE_TYPE, DISCRETION_PEG_OFFSET,
        SHARES_LOCATED, LOCATE_BROKER, USER_REF_INDEX, SIDE, AIQ_STRATEGY, AIQ_GROUP_ID,
    ]);
    pub(super) const USER_REF_INDEX_ONLY: u32 = mask(&[USER_REF_INDEX]);
    pub(super) const MODIFY: u32 = mask(&[USER_REF_INDEX, SHARES_LOCATED, LOCATE_BROKER]);
    pub(super) const MASS_CANCEL: u32 = mask(&[SIDE, GROUP_ID, USER_REF_INDEX]);
    pub(super) const ORDER_ACCEPTED: u32 = mask(&[
        FIRM, MIN_QUANTITY, CUSTOMER_TYPE, MAX_FLOOR, PRICE_TYPE, PEG_OFFSET, DISCRETION_PRICE,
        DISCRETION_PRICE_TYPE, DISCRETION_PEG_OFFSET, POST_ONLY, RANDOM_RESERVES, ROUTE,
        EXPIRE_TIME, TRADE_NOW, HANDLE_INST, BBO_WEIGHT_INDICATOR, GROUP_ID, SHARES_LOCATED,
        USER_REF_INDEX, AIQ_STRATEGY, AIQ_GROUP_ID,
    ]);
    pub(super) const ORDER_REPLACED: u32 = mask(&[
        FIRM, MIN_QUANTITY, MAX_FLOOR, PRICE_TYPE, POST_ONLY, EXPIRE_TIME, TRADE_NOW, HANDLE_INST,
        BBO_WEIGHT_INDICATOR, USER_REF_INDEX, AIQ_STRATEGY, AIQ_GROUP_ID,
    ]);
    pub(super) const ORDER_RESTATED: u32 = mask(&[
        DISPLAY_QUANTITY, DISPLAY_PRICE, SECONDARY_ORDER_REFERENCE_NUMBER, USER_REF_INDEX,
    ]);
}

/// Enter Order 'O': a new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnterOrder {
    /// Day-unique, strictly increasing per account.
    pub user_ref_num: u32,
    /// Side.
    pub side: Side,
    /// Quantity in shares.
    pub quantity: u32,
    /// Symbol.
    pub symbol: Symbol,
    /// Limit price.
    pub price: Price,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Display.
    pub display: Display,
    /// Capacity.
    pub capacity: Capacity,
    /// Intermarket sweep eligibility.
    pub intermarket_sweep: IntermarketSweep,
    /// Cross type.
    pub cross_type: CrossType,
    /// Client order id (not checked for uniqueness).
    pub client_order_id: ClOrdId,
    /// Optional fields.
    pub options: Options,
}

impl EnterOrder {
    /// Type byte.
    pub const MESSAGE_TYPE: u8 = b'O';
    /// Length with an empty appendage.
    pub const LENGTH_MIN: usize = 47;

    fn decode(reader: &mut Reader<'_>) -> Result<Self, OuchError> {
        Ok(Self {
            user_ref_num: reader.u32()?,
            side: Side::from_byte(reader.u8()?)?,
            quantity: reader.u32()?,
            symbol: reader.alpha("Symbol")?,
            price: reader.price()?,
            time_in_force: TimeInForce::from_byte(reader.u8()?)?,
            display: Display::from_byte(reader.u8()?)?,
            capacity: Capacity::from_byte(reader.u8()?)?,
            intermarket_sweep: IntermarketSweep::from_byte(reader.u8()?)?,
            cross_type: CrossType::from_byte(reader.u8()?)?,
            client_order_id: reader.alpha("ClOrdID")?,
            options: reader.appendage(AppendageRule::Required, allowed::ENTER_ORDER)?,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(Self::MESSAGE_TYPE);
        put_u32(out, self.user_ref_num);
        out.push(self.side.byte());
        put_u32(out, self.quantity);
        out.extend_from_slice(self.symbol.as_bytes());
        put_price(out, self.price);
        out.push(self.time_in_force.byte());
        out.push(self.display.byte());
        out.push(self.capacity.byte());
        out.push(self.intermarket_sweep.byte());
        out.push(self.cross_type.byte());
        out.extend_from_slice(self.client_order_id.as_bytes());
        self.options.encode(out, allowed::ENTER_ORDER);
    }
}

/// Replace Order 'U': cancel-replace an order under a new UserRefNum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceOrder {
    /// The order being replaced.
    pub original_user_ref_num: u32,
    /// The replacement's own, new UserRefNum.
    pub user_ref_num: u32,
    /// New quantity.
    pub quantity: u32,
    /// New price.
    pub price: Price,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Display.
    pub display: Display,
    /// Intermarket sweep eligibility.
    pub intermarket_sweep: IntermarketSweep,
    /// Client order id.
    pub client_order_id: ClOrdId,
    /// Optional fields.
    pub options: Options,
}

impl ReplaceOrder {
    /// Type byte.
    pub const MESSAGE_TYPE: u8 = b'U';
    /// Length with an empty appendage.
    pub const LENGTH_MIN: usize = 40;

    fn decode(reader: &mut Reader<'_>) -> Result<Self, OuchError> {
        Ok(Self {
            original_user_ref_num: reader.u32()?,
            user_ref_num: reader.u32()?,
            quantity: reader.u32()?,
            price: reader.price()?,
            time_in_force: TimeInForce::from_byte(reader.u8()?)?,
            display: Display::from_byte(reader.u8()?)?,
            intermarket_sweep: IntermarketSweep::from_byte(reader.u8()?)?,
            client_order_id: reader.alpha("ClOrdID")?,
            options: reader.appendage(AppendageRule::Required, allowed::REPLACE_ORDER)?,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(Self::MESSAGE_TYPE);
        put_u32(out, self.original_user_ref_num);
        put_u32(out, self.user_ref_num);
        put_u32(out, self.quantity);
        put_price(out, self.price);
        out.push(self.time_in_force.byte());
        out.push(self.display.byte());
        out.push(self.intermarket_sweep.byte());
        out.extend_from_slice(self.client_order_id.as_bytes());
        self.options.encode(out, allowed::REPLACE_ORDER);
    }
}

/// Cancel Order 'X': reduce an order to `quantity` shares (0 cancels it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelOrder {
    /// The order.
    pub user_ref_num: u32,
    /// Shares to leave on the order; 0 cancels it.
    pub quantity: u32,
    /// Optional fields (UserRefIdx only).
    pub options: Options,
}

impl CancelOrder {
    /// Type byte.
    pub const MESSAGE_TYPE: u8 = b'X';
    /// Length with an empty appendage.
    pub const LENGTH_MIN: usize = 11;

    fn decode(reader: &mut Reader<'_>) -> Result<Self, OuchError> {
        Ok(Self {
            user_ref_num: reader.u32()?,
            quantity: reader.u32()?,
            options: reader.appendage(AppendageRule::Optional, allowed::USER_REF_INDEX_ONLY)?,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(Self::MESSAGE_TYPE);
        put_u32(out, self.user_ref_num);
        put_u32(out, self.quantity);
        self.options.encode(out, allowed::USER_REF_INDEX_ONLY);
    }
}

/// Modify Order 'M': change side (e.g. sell to sell short) and/or reduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModifyOrder {
    /// The order.
    pub user_ref_num: u32,
    /// New side.
    pub side: Side,
    /// New quantity.
    pub quantity: u32,
    /// Optional fields.
    pub options: Options,
}

impl ModifyOrder {
    /// Type byte.
    pub const MESSAGE_TYPE: u8 = b'M';
    /// Length with an empty appendage.
    pub const LENGTH_MIN: usize = 12;

    fn decode(reader: &mut Reader<'_>) -> Result<Self, OuchError> {
        Ok(Self {
            user_ref_num: reader.u32()?,
            side: Side::from_byte(reader.u8()?)?,
            quantity: reader.u32()?,
            options: reader.appendage(AppendageRule::Optional, allowed::MODIFY)?,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(Self::MESSAGE_TYPE);
        put_u32(out, self.user_ref_num);
        out.push(self.side.byte());
        put_u32(out, self.quantity);
        self.options.encode(out, allowed::MODIFY);
    }
}

/// Mass Cancel Request 'C': cancel every order of a firm, optionally for one
/// symbol (blank = all), side or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassCancelRequest {
    /// Day-unique, strictly increasing per account.
    pub user_ref_num: u32,
    /// Firm.
    pub firm: Mpid,
    /// Symbol, or blank for all symbols.
    pub symbol: Symbol,
    /// Optional criteria (Side, GroupID, UserRefIdx).
    pub options: Options,
}

impl MassCancelRequest {
    /// Type byte.
    pub const MESSAGE_TYPE: u8 = b'C';
    /// Length with an empty appendage.
    pub const LENGTH_MIN: usize = 19;

    fn decode(reader: &mut Reader<'_>) -> Result<Self, OuchError> {
        Ok(Self {
            user_ref_num: reader.u32()?,
            firm: reader.alpha("Firm")?,
            symbol: reader.alpha("Symbol")?,
            options: reader.appendage(AppendageRule::Required, allowed::MASS_CANCEL)?,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(Self::MESSAGE_TYPE);
        put_u32(out, self.user_ref_num);
        out.extend_from_slice(self.firm.as_bytes());
        out.extend_from_slice(self.symbol.as_bytes());
        self.options.encode(out, allowed::MASS_CANCEL);
    }
}

/// Account Query Request 'Q': asks for the next UserRefNum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountQueryRequest {
    /// Optional fields (UserRefIdx only).
    pub options: Options,
}

impl AccountQueryRequest {
    /// Type byte.
    pub const MESSAGE_TYPE: u8 = b'Q';
    /// Length with an empty appendage.
    pub const LENGTH_MIN: usize = 3;

    fn decode(reader: &mut Reader<'_>) -> Result<Self, OuchError> {
        Ok(Self {
            options: reader.appendage(AppendageRule::Optional, allowed::USER_REF_INDEX_ONLY)?,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(Self::MESSAGE_TYPE);
        self.options.encode(out, allowed::USER_REF_INDEX_ONLY);
    }
}

/// A message from client to server.
// Variants differ in size; boxing the large ones would allocate per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// 'O'.
    EnterOrder(EnterOrder),
    /// 'U'.
    ReplaceOrder(ReplaceOrder),
    /// 'X'.
    CancelOrder(CancelOrder),
    /// 'M'.
    ModifyOrder(ModifyOrder),
    /// 'C'.
    MassCancelRequest(MassCancelRequest),
    /// 'Q'.
    AccountQueryRequest(AccountQueryRequest),
}

impl Inbound {
    /// Decodes one SoupBinTCP payload sent by a client.
    ///
    /// ```
    /// use gateway::ouch::{Inbound, CancelOrder, Options};
    /// let cancel = Inbound::CancelOrder(CancelOrder { user_ref_num: 7, quantity: 0, options: Options::NONE });
    /// let mut bytes = Vec::new();
    /// cancel.encode(&mut bytes);
    /// assert_eq!(bytes, b"X\0\0\0\x07\0\0\0\0\0\0");
    /// assert_eq!(Inbound::decode(&bytes), Ok(cancel));
    /// assert!(Inbound::decode(&bytes[..5]).is_err());
    /// ```
    pub fn decode(payload: &[u8]) -> Result<Self, OuchError> {
        let (&message_type, body) = payload.split_first().ok_or(OuchError::Empty)?;
        let mut reader = Reader::new(message_type, body);
        let message = match message_type {
            EnterOrder::MESSAGE_TYPE => Self::EnterOrder(EnterOrder::decode(&mut reader)?),
            ReplaceOrder::MESSAGE_TYPE => Self::ReplaceOrder(ReplaceOrder::decode(&mut reader)?),
            CancelOrder::MESSAGE_TYPE => Self::CancelOrder(CancelOrder::decode(&mut reader)?),
            ModifyOrder::MESSAGE_TYPE => Self::ModifyOrder(ModifyOrder::decode(&mut reader)?),
            MassCancelRequest::MESSAGE_TYPE => {
                Self::MassCancelRequest(MassCancelRequest::decode(&mut reader)?)
            }
            AccountQueryRequest::MESSAGE_TYPE => {
                Self::AccountQueryRequest(AccountQueryRequest::decode(&mut reader)?)
            }
            _ => return Err(OuchError::UnknownMessageType { message_type }),
        };
        reader.finish()?;
        Ok(message)
    }

    /// Appends the message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::EnterOrder(message) => message.encode(out),
            Self::ReplaceOrder(message) => message.encode(out),
            Self::CancelOrder(message) => message.encode(out),
            Self::ModifyOrder(message) => message.encode(out),
            Self::MassCancelRequest(message) => message.encode(out),
            Self::AccountQueryRequest(message) => message.encode(out),
        }
    }

    /// The type byte.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::EnterOrder(_) => EnterOrder::MESSAGE_TYPE,
            Self::ReplaceOrder(_) => ReplaceOrder::MESSAGE_TYPE,
            Self::CancelOrder(_) => CancelOrder::MESSAGE_TYPE,
            Self::ModifyOrder(_) => ModifyOrder::MESSAGE_TYPE,
            Self::MassCancelRequest(_) => MassCancelRequest::MESSAGE_TYPE,
            Self::AccountQueryRequest(_) => AccountQueryRequest::MESSAGE_TYPE,
        }
    }
}

// ---------------------------------------------------------------------------
// Outbound messages
// ---------------------------------------------------------------------------

/// System Event 'S' (no appendage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemEvent {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The event.
    pub event_code: EventCode,
}

/// Order Accepted 'A'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAccepted {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The client's UserRefNum.
    pub user_ref_num: u32,
    /// Side.
    pub side: Side,
    /// Accepted quantity.
    pub quantity: u32,
    /// Symbol.
    pub symbol: Symbol,
    /// Accepted price.
    pub price: Price,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Display.
    pub display: Display,
    /// Exchange-assigned order reference number (as on the market-data feed).
    pub order_reference_number: u64,
    /// Capacity.
    pub capacity: Capacity,
    /// Intermarket sweep eligibility.
    pub intermarket_sweep: IntermarketSweep,
    /// Cross type.
    pub cross_type: CrossType,
    /// Live or dead.
    pub order_state: OrderState,
    /// Client order id.
    pub client_order_id: ClOrdId,
    /// Optional fields.
    pub options: Options,
}

/// Order Replaced 'U'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderReplaced {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The replaced order.
    pub original_user_ref_num: u32,
    /// The replacement.
    pub user_ref_num: u32,
    /// Side.
    pub side: Side,
    /// Quantity.
    pub quantity: u32,
    /// Symbol.
    pub symbol: Symbol,
    /// Price.
    pub price: Price,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Display.
    pub display: Display,
    /// Order reference number of the replacement.
    pub order_reference_number: u64,
    /// Capacity.
    pub capacity: Capacity,
    /// Intermarket sweep eligibility.
    pub intermarket_sweep: IntermarketSweep,
    /// Cross type.
    pub cross_type: CrossType,
    /// Live or dead.
    pub order_state: OrderState,
    /// Client order id.
    pub client_order_id: ClOrdId,
    /// Optional fields.
    pub options: Options,
}

/// Order Canceled 'C'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCanceled {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// Shares just removed (incremental, not cumulative).
    pub quantity: u32,
    /// Why.
    pub reason: CancelReason,
    /// Optional fields.
    pub options: Options,
}

/// AIQ Canceled 'D': canceled by anti-internalization (self-match prevention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AiqCanceled {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// Shares just removed.
    pub decrement_shares: u32,
    /// Why (self-match prevention).
    pub reason: CancelReason,
    /// Shares that would have executed.
    pub quantity_prevented_from_trading: u32,
    /// Price at which they would have executed.
    pub execution_price: Price,
    /// Liquidity flag.
    pub liquidity_flag: Code,
    /// AIQ strategy used.
    pub aiq_strategy: Code,
    /// Optional fields.
    pub options: Options,
}

/// Order Executed 'E'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderExecuted {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// Shares executed (incremental).
    pub quantity: u32,
    /// Execution price.
    pub price: Price,
    /// Liquidity flag (added, removed, ...).
    pub liquidity_flag: Code,
    /// Match number, shared by both sides.
    pub match_number: u64,
    /// Optional fields.
    pub options: Options,
}

/// Broken Trade 'B'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokenTrade {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// The execution being broken.
    pub match_number: u64,
    /// Why.
    pub reason: BrokenTradeReason,
    /// Client order id.
    pub client_order_id: ClOrdId,
    /// Optional fields.
    pub options: Options,
}

/// Order Rejected 'J'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRejected {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The rejected message's UserRefNum.
    pub user_ref_num: u32,
    /// Why.
    pub reason: RejectReason,
    /// Client order id.
    pub client_order_id: ClOrdId,
    /// Optional fields.
    pub options: Options,
}

/// Cancel Pending 'P' or Cancel Reject 'I': acknowledgements of a cancel that
/// cannot complete now (pending) or at all (reject).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelAcknowledgement {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// Optional fields.
    pub options: Options,
}

/// Order Priority Update 'T'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderPriorityUpdate {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// New price.
    pub price: Price,
    /// Display.
    pub display: Display,
    /// New order reference number.
    pub order_reference_number: u64,
    /// Optional fields.
    pub options: Options,
}

/// Order Modified 'M'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderModified {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// Side now.
    pub side: Side,
    /// Quantity now.
    pub quantity: u32,
    /// Optional fields.
    pub options: Options,
}

/// Order Restated 'R': the exchange changed a displayed attribute; the new
/// values are in the options (Display Quantity, Display Price, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRestated {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The order.
    pub user_ref_num: u32,
    /// Why.
    pub reason: RestateReason,
    /// The restated values.
    pub options: Options,
}

/// Mass Cancel Response 'X': echoes an accepted Mass Cancel Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassCancelResponse {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The request's UserRefNum.
    pub user_ref_num: u32,
    /// Firm.
    pub firm: Mpid,
    /// Symbol, or blank for all.
    pub symbol: Symbol,
    /// Optional fields.
    pub options: Options,
}

/// Account Query Response 'Q'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountQueryResponse {
    /// Nanoseconds since midnight.
    pub timestamp_ns: u64,
    /// The next UserRefNum the account may use.
    pub next_user_ref_num: u32,
    /// Optional fields.
    pub options: Options,
}

/// A message from server to client.
// Variants differ in size; boxing the large ones would allocate per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// 'S'.
    SystemEvent(SystemEvent),
    /// 'A'.
    OrderAccepted(OrderAccepted),
    /// 'U'.
    OrderReplaced(OrderReplaced),
    /// 'C'.
    OrderCanceled(OrderCanceled),
    /// 'D'.
    AiqCanceled(AiqCanceled),
    /// 'E'.
    OrderExecuted(OrderExecuted),
    /// 'B'.
    BrokenTrade(BrokenTrade),
    /// 'J'.
    OrderRejected(OrderRejected),
    /// 'P'.
    CancelPending(CancelAcknowledgement),
    /// 'I'.
    CancelReject(CancelAcknowledgement),
    /// 'T'.
    OrderPriorityUpdate(OrderPriorityUpdate),
    /// 'M'.
    OrderModified(OrderModified),
    /// 'R'.
    OrderRestated(OrderRestated),
    /// 'X'.
    MassCancelResponse(MassCancelResponse),
    /// 'Q'.
    AccountQueryResponse(AccountQueryResponse),
}

impl Outbound {
    /// Decodes one SoupBinTCP payload sent by the server.
    ///
    /// ```
    /// use gateway::ouch::{Outbound, SystemEvent, EventCode};
    /// let event = Outbound::SystemEvent(SystemEvent { timestamp_ns: 1, event_code: EventCode::StartOfDay });
    /// let mut bytes = Vec::new();
    /// event.encode(&mut bytes);
    /// assert_eq!(bytes, b"S\0\0\0\0\0\0\0\x01S");
    /// assert_eq!(Outbound::decode(&bytes), Ok(event));
    /// ```
    pub fn decode(payload: &[u8]) -> Result<Self, OuchError> {
        let (&message_type, body) = payload.split_first().ok_or(OuchError::Empty)?;
        let mut r = Reader::new(message_type, body);
        let message = match message_type {
            b'S' => Self::SystemEvent(SystemEvent {
                timestamp_ns: r.u64()?,
                event_code: EventCode::from_byte(r.u8()?)?,
            }),
            b'A' => Self::OrderAccepted(decode_order_accepted(&mut r)?),
            b'U' => Self::OrderReplaced(decode_order_replaced(&mut r)?),
            b'C' => Self::OrderCanceled(OrderCanceled {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                quantity: r.u32()?,
                reason: CancelReason::from_byte(r.u8()?)?,
                options: r.appendage(Optional, allowed::USER_REF_INDEX_ONLY)?,
            }),
            b'D' => Self::AiqCanceled(AiqCanceled {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                decrement_shares: r.u32()?,
                reason: CancelReason::from_byte(r.u8()?)?,
                quantity_prevented_from_trading: r.u32()?,
                execution_price: r.price()?,
                liquidity_flag: r.code("Liquidity Flag")?,
                aiq_strategy: r.code("AIQ Strategy")?,
                options: r.appendage(Optional, allowed::USER_REF_INDEX_ONLY)?,
            }),
            b'E' => Self::OrderExecuted(OrderExecuted {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                quantity: r.u32()?,
                price: r.price()?,
                liquidity_flag: r.code("Liquidity Flag")?,
                match_number: r.u64()?,
                options: r.appendage(Required, allowed::USER_REF_INDEX_ONLY)?,
            }),
            b'B' => Self::BrokenTrade(BrokenTrade {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                match_number: r.u64()?,
                reason: BrokenTradeReason::from_byte(r.u8()?)?,
                client_order_id: r.alpha("ClOrdID")?,
                options: r.appendage(Optional, allowed::USER_REF_INDEX_ONLY)?,
            }),
            b'J' => Self::OrderRejected(decode_order_rejected(&mut r)?),
            b'P' => Self::CancelPending(decode_cancel_acknowledgement(&mut r)?),
            b'I' => Self::CancelReject(decode_cancel_acknowledgement(&mut r)?),
            b'T' => Self::OrderPriorityUpdate(OrderPriorityUpdate {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                price: r.price()?,
                display: Display::from_byte(r.u8()?)?,
                order_reference_number: r.u64()?,
                options: r.appendage(Optional, allowed::USER_REF_INDEX_ONLY)?,
            }),
            b'M' => Self::OrderModified(OrderModified {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                side: Side::from_byte(r.u8()?)?,
                quantity: r.u32()?,
                options: r.appendage(Optional, allowed::MODIFY)?,
            }),
            b'R' => Self::OrderRestated(OrderRestated {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                reason: RestateReason::from_byte(r.u8()?)?,
                options: r.appendage(Required, allowed::ORDER_RESTATED)?,
            }),
            b'X' => Self::MassCancelResponse(MassCancelResponse {
                timestamp_ns: r.u64()?,
                user_ref_num: r.u32()?,
                firm: r.alpha("Firm")?,
                symbol: r.alpha("Symbol")?,
                options: r.appendage(Required, allowed::MASS_CANCEL)?,
            }),
            b'Q' => Self::AccountQueryResponse(AccountQueryResponse {
                timestamp_ns: r.u64()?,
                next_user_ref_num: r.u32()?,
                options: r.appendage(Optional, allowed::USER_REF_INDEX_ONLY)?,
            }),
            _ => return Err(OuchError::UnknownMessageType { message_type }),
        };
        r.finish()?;
        Ok(message)
    }

    /// Appends the message to `out`. Appendage Length is always written.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.write(out);
    }

    /// The length of the message [`Outbound::encode`] writes, without
    /// writing it.
    pub fn encoded_len(&self) -> usize {
        let mut count = ByteCount::default();
        self.write(&mut count);
        count.0
    }

    fn write(&self, out: &mut impl Put) {
        out.push(self.message_type());
        match self {
            Self::SystemEvent(m) => {
                put_u64(out, m.timestamp_ns);
                out.push(m.event_code.byte());
            }
            Self::OrderAccepted(m) => encode_order_accepted(m, out),
            Self::OrderReplaced(m) => encode_order_replaced(m, out),
            Self::OrderCanceled(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                put_u32(out, m.quantity);
                out.push(m.reason.byte());
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
            Self::AiqCanceled(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                put_u32(out, m.decrement_shares);
                out.push(m.reason.byte());
                put_u32(out, m.quantity_prevented_from_trading);
                put_price(out, m.execution_price);
                out.push(m.liquidity_flag.byte());
                out.push(m.aiq_strategy.byte());
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
            Self::OrderExecuted(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                put_u32(out, m.quantity);
                put_price(out, m.price);
                out.push(m.liquidity_flag.byte());
                put_u64(out, m.match_number);
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
            Self::BrokenTrade(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                put_u64(out, m.match_number);
                out.push(m.reason.byte());
                out.extend_from_slice(m.client_order_id.as_bytes());
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
            Self::OrderRejected(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                put_u16(out, m.reason.code());
                out.extend_from_slice(m.client_order_id.as_bytes());
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
            Self::CancelPending(m) | Self::CancelReject(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
            Self::OrderPriorityUpdate(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                put_price(out, m.price);
                out.push(m.display.byte());
                put_u64(out, m.order_reference_number);
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
            Self::OrderModified(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                out.push(m.side.byte());
                put_u32(out, m.quantity);
                m.options.encode(out, allowed::MODIFY);
            }
            Self::OrderRestated(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                out.push(m.reason.byte());
                m.options.encode(out, allowed::ORDER_RESTATED);
            }
            Self::MassCancelResponse(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.user_ref_num);
                out.extend_from_slice(m.firm.as_bytes());
                out.extend_from_slice(m.symbol.as_bytes());
                m.options.encode(out, allowed::MASS_CANCEL);
            }
            Self::AccountQueryResponse(m) => {
                put_u64(out, m.timestamp_ns);
                put_u32(out, m.next_user_ref_num);
                m.options.encode(out, allowed::USER_REF_INDEX_ONLY);
            }
        }
    }

    /// The type byte.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::SystemEvent(_) => b'S',
            Self::OrderAccepted(_) => b'A',
            Self::OrderReplaced(_) => b'U',
            Self::OrderCanceled(_) => b'C',
            Self::AiqCanceled(_) => b'D',
            Self::OrderExecuted(_) => b'E',
            Self::BrokenTrade(_) => b'B',
            Self::OrderRejected(_) => b'J',
            Self::CancelPending(_) => b'P',
            Self::CancelReject(_) => b'I',
            Self::OrderPriorityUpdate(_) => b'T',
            Self::OrderModified(_) => b'M',
            Self::OrderRestated(_) => b'R',
            Self::MassCancelResponse(_) => b'X',
            Self::AccountQueryResponse(_) => b'Q',
        }
    }
}

fn decode_order_accepted(r: &mut Reader<'_>) -> Result<OrderAccepted, OuchError> {
    Ok(OrderAccepted {
        timestamp_ns: r.u64()?,
        user_ref_num: r.u32()?,
        side: Side::from_byte(r.u8()?)?,
        quantity: r.u32()?,
        symbol: r.alpha("Symbol")?,
        price: r.price()?,
        time_in_force: TimeInForce::from_byte(r.u8()?)?,
        display: Display::from_byte(r.u8()?)?,
        order_reference_number: r.u64()?,
        capacity: Capacity::from_byte(r.u8()?)?,
        intermarket_sweep: IntermarketSweep::from_byte(r.u8()?)?,
        cross_type: CrossType::from_byte(r.u8()?)?,
        order_state: OrderState::from_byte(r.u8()?)?,
        client_order_id: r.alpha("ClOrdID")?,
        options: r.appendage(Required, allowed::ORDER_ACCEPTED)?,
    })
}

fn encode_order_accepted(m: &OrderAccepted, out: &mut impl Put) {
    put_u64(out, m.timestamp_ns);
    put_u32(out, m.user_ref_num);
    out.push(m.side.byte());
    put_u32(out, m.quantity);
    out.extend_from_slice(m.symbol.as_bytes());
    put_price(out, m.price);
    out.push(m.time_in_force.byte());
    out.push(m.display.byte());
    put_u64(out, m.order_reference_number);
    out.push(m.capacity.byte());
    out.push(m.intermarket_sweep.byte());
    out.push(m.cross_type.byte());
    out.push(m.order_state.byte());
    out.extend_from_slice(m.client_order_id.as_bytes());
    m.options.encode(out, allowed::ORDER_ACCEPTED);
}

fn decode_order_replaced(r: &mut Reader<'_>) -> Result<OrderReplaced, OuchError> {
    Ok(OrderReplaced {
        timestamp_ns: r.u64()?,
        original_user_ref_num: r.u32()?,
        user_ref_num: r.u32()?,
        side: Side::from_byte(r.u8()?)?,
        quantity: r.u32()?,
        symbol: r.alpha("Symbol")?,
        price: r.price()?,
        time_in_force: TimeInForce::from_byte(r.u8()?)?,
        display: Display::from_byte(r.u8()?)?,
        order_reference_number: r.u64()?,
        capacity: Capacity::from_byte(r.u8()?)?,
        intermarket_sweep: IntermarketSweep::from_byte(r.u8()?)?,
        cross_type: CrossType::from_byte(r.u8()?)?,
        order_state: OrderState::from_byte(r.u8()?)?,
        client_order_id: r.alpha("ClOrdID")?,
        options: r.appendage(Required, allowed::ORDER_REPLACED)?,
    })
}

fn encode_order_replaced(m: &OrderReplaced, out: &mut impl Put) {
    put_u64(out, m.timestamp_ns);
    put_u32(out, m.original_user_ref_num);
    put_u32(out, m.user_ref_num);
    out.push(m.side.byte());
    put_u32(out, m.quantity);
    out.extend_from_slice(m.symbol.as_bytes());
    put_price(out, m.price);
    out.push(m.time_in_force.byte());
    out.push(m.display.byte());
    put_u64(out, m.order_reference_number);
    out.push(m.capacity.byte());
    out.push(m.intermarket_sweep.byte());
    out.push(m.cross_type.byte());
    out.push(m.order_state.byte());
    out.extend_from_slice(m.client_order_id.as_bytes());
    m.options.encode(out, allowed::ORDER_REPLACED);
}

fn decode_order_rejected(r: &mut Reader<'_>) -> Result<OrderRejected, OuchError> {
    let timestamp_ns = r.u64()?;
    let user_ref_num = r.u32()?;
    let code = r.u16()?;
    let reason = RejectReason::new(code).ok_or(OuchError::InvalidRejectReason { value: code })?;
    Ok(OrderRejected {
        timestamp_ns,
        user_ref_num,
        reason,
        client_order_id: r.alpha("ClOrdID")?,
        options: r.appendage(Optional, allowed::USER_REF_INDEX_ONLY)?,
    })
}

fn decode_cancel_acknowledgement(r: &mut Reader<'_>) -> Result<CancelAcknowledgement, OuchError> {
    Ok(CancelAcknowledgement {
        timestamp_ns: r.u64()?,
        user_ref_num: r.u32()?,
        options: r.appendage(Optional, allowed::USER_REF_INDEX_ONLY)?,
    })
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    /// Timestamp used by the golden vectors: 09:30:00.000000123.
    const TIMESTAMP_NS: u64 = 34_200_000_000_123;

    fn alpha<const N: usize>(text: &str) -> Alpha<N> {
        Alpha::new(text).expect("test alpha")
    }

    fn encode_inbound(message: &Inbound) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode(&mut out);
        out
    }

    fn encode_outbound(message: &Outbound) -> Vec<u8> {
        let mut out = Vec::new();
        message.encode(&mut out);
        assert_eq!(message.encoded_len(), out.len(), "{message:?}");
        out
    }

    /// Hand-assembled bytes, field by field.
    #[derive(Default)]
    struct Bytes(Vec<u8>);

    impl Bytes {
        fn ch(mut self, c: u8) -> Self {
            self.0.push(c);
            self
        }
        fn be16(mut self, v: u16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn be32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn be64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn text(mut self, t: &str, width: usize) -> Self {
            assert!(t.len() <= width);
            self.0.extend_from_slice(t.as_bytes());
            self.0.resize(self.0.len() + width - t.len(), b' ');
            self
        }
        fn raw(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
    }

    fn enter_order(options: Options) -> EnterOrder {
        EnterOrder {
            user_ref_num: 1,
            side: Side::Buy,
            quantity: 100,
            symbol: alpha("AAPL"),
            price: Price(1_503_400),
            time_in_force: TimeInForce::Day,
            display: Display::Visible,
            capacity: Capacity::Agency,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ContinuousMarket,
            client_order_id: alpha("CLORD1"),
            options,
        }
    }

    fn enter_order_fixed_bytes() -> Bytes {
        Bytes::default()
            .ch(b'O') // 0: type
            .be32(1) // 1: UserRefNum
            .ch(b'B') // 5: side
            .be32(100) // 6: quantity
            .text("AAPL", 8) // 10: symbol
            .be64(1_503_400) // 18: price $150.34
            .ch(b'0') // 26: time in force, day
            .ch(b'Y') // 27: display
            .ch(b'A') // 28: capacity
            .ch(b'N') // 29: intermarket sweep
            .ch(b'N') // 30: cross type
            .text("CLORD1", 14) // 31: ClOrdID
    }

    #[test]
    fn golden_enter_order_without_appendage() {
        let expected = enter_order_fixed_bytes().be16(0).0;
        assert_eq!(expected.len(), EnterOrder::LENGTH_MIN);
        let message = Inbound::EnterOrder(enter_order(Options::NONE));
        assert_eq!(encode_inbound(&message), expected);
        assert_eq!(Inbound::decode(&expected), Ok(message));
    }

    #[test]
    fn golden_enter_order_with_appendage() {
        let expected = enter_order_fixed_bytes()
            .be16(21) // 45: appendage length
            .raw(&[0x05, 0x02, b'F', b'I', b'R', b'M']) // Firm "FIRM"
            .raw(&[0x05, 0x03, 0x00, 0x00, 0x00, 0xc8]) // MinQty 200
            .raw(&[0x05, 0x07, 0xff, 0xff, 0xff, 0x9c]) // PegOffset -100
            .raw(&[0x02, 0x0c, b'P']) // PostOnly
            .0;
        assert_eq!(expected.len(), 47 + 21);
        let options = Options {
            firm: Some(alpha("FIRM")),
            min_quantity: Some(200),
            peg_offset: Some(PriceOffset(-100)),
            post_only: Some(PostOnly::PostOnly),
            ..Options::NONE
        };
        let message = Inbound::EnterOrder(enter_order(options));
        assert_eq!(encode_inbound(&message), expected);
        assert_eq!(Inbound::decode(&expected), Ok(message));
    }

    #[test]
    fn golden_enter_order_user_ref_index() {
        // Option order on the wire is free; a lone UserRefIdx 5 is 02 1C 05.
        let expected = enter_order_fixed_bytes().be16(3).raw(&[0x02, 0x1c, 0x05]).0;
        let Ok(Inbound::EnterOrder(order)) = Inbound::decode(&expected) else {
            panic!("enter order expected");
        };
        assert_eq!(order.options.user_ref_index, Some(5));
    }

    #[test]
    fn golden_cancel_order() {
        let expected = Bytes::default().ch(b'X').be32(77).be32(0).be16(0).0;
        let message = Inbound::CancelOrder(CancelOrder {
            user_ref_num: 77,
            quantity: 0,
            options: Options::NONE,
        });
        assert_eq!(encode_inbound(&message), expected);
        assert_eq!(Inbound::decode(&expected), Ok(message));
        // The specification lets a client leave out Appendage Length here.
        assert_eq!(Inbound::decode(&expected[..9]), Ok(message));
    }

    #[test]
    fn golden_replace_order() {
        let expected = Bytes::default()
            .ch(b'U')
            .be32(1) // 1: original UserRefNum
            .be32(2) // 5: UserRefNum
            .be32(500) // 9: quantity
            .be64(1_503_500) // 13: price
            .ch(b'6') // 21: GTT
            .ch(b'A') // 22: display attributable
            .ch(b'N') // 23: intermarket sweep
            .text("REPL-2", 14) // 24: ClOrdID
            .be16(9) // 38: appendage length
            .raw(&[0x05, 0x0f, 0x00, 0x00, 0x0e, 0x10]) // ExpireTime 3600
            .raw(&[0x02, 0x19, b'N']) // SharesLocated N
            .0;
        assert_eq!(expected.len(), ReplaceOrder::LENGTH_MIN + 9);
        let message = Inbound::ReplaceOrder(ReplaceOrder {
            original_user_ref_num: 1,
            user_ref_num: 2,
            quantity: 500,
            price: Price(1_503_500),
            time_in_force: TimeInForce::GoodTillTime,
            display: Display::Attributable,
            intermarket_sweep: IntermarketSweep::NotEligible,
            client_order_id: alpha("REPL-2"),
            options: Options {
                expire_time_s: Some(3600),
                shares_located: Some(SharesLocated::No),
                ..Options::NONE
            },
        });
        assert_eq!(encode_inbound(&message), expected);
        assert_eq!(Inbound::decode(&expected), Ok(message));
    }

    #[test]
    fn golden_order_accepted() {
        let expected = Bytes::default()
            .ch(b'A')
            .be64(TIMESTAMP_NS) // 1
            .be32(1) // 9: UserRefNum
            .ch(b'B') // 13: side
            .be32(100) // 14: quantity
            .text("AAPL", 8) // 18: symbol
            .be64(1_503_400) // 26: price
            .ch(b'0') // 34: time in force
            .ch(b'Y') // 35: display
            .be64(123_456_789) // 36: order reference number
            .ch(b'A') // 44: capacity
            .ch(b'N') // 45: intermarket sweep
            .ch(b'C') // 46: cross type closing
            .ch(b'L') // 47: order state live
            .text("CLORD1", 14) // 48: ClOrdID
            .be16(9) // 62: appendage length
            .raw(&[0x05, 0x0e, b'R', b'T', b'E', b'1']) // Route "RTE1"
            .raw(&[0x02, 0x12, b'2']) // BBO weight indicator 2
            .0;
        assert_eq!(expected.len(), 64 + 9);
        let message = Outbound::OrderAccepted(OrderAccepted {
            timestamp_ns: TIMESTAMP_NS,
            user_ref_num: 1,
            side: Side::Buy,
            quantity: 100,
            symbol: alpha("AAPL"),
            price: Price(1_503_400),
            time_in_force: TimeInForce::Day,
            display: Display::Visible,
            order_reference_number: 123_456_789,
            capacity: Capacity::Agency,
            intermarket_sweep: IntermarketSweep::NotEligible,
            cross_type: CrossType::ClosingCross,
            order_state: OrderState::Live,
            client_order_id: alpha("CLORD1"),
            options: Options {
                route: Some(alpha("RTE1")),
                bbo_weight_indicator: Some(BboWeightIndicator::Range1To2),
                ..Options::NONE
            },
        });
        assert_eq!(encode_outbound(&message), expected);
        assert_eq!(Outbound::decode(&expected), Ok(message));
    }

    #[test]
    fn golden_order_executed() {
        let expected = Bytes::default()
            .ch(b'E')
            .be64(TIMESTAMP_NS) // 1
            .be32(1) // 9: UserRefNum
            .be32(100) // 13: quantity
            .be64(1_503_400) // 17: price
            .ch(b'A') // 25: liquidity flag
            .be64(987_654_321) // 26: match number
            .be16(0) // 34: appendage length
            .0;
        assert_eq!(expected.len(), 36);
        let message = Outbound::OrderExecuted(OrderExecuted {
            timestamp_ns: TIMESTAMP_NS,
            user_ref_num: 1,
            quantity: 100,
            price: Price(1_503_400),
            liquidity_flag: Code::new(b'A').expect("printable"),
            match_number: 987_654_321,
            options: Options::NONE,
        });
        assert_eq!(encode_outbound(&message), expected);
        assert_eq!(Outbound::decode(&expected), Ok(message));
        // Appendage Length is required on Order Executed.
        assert_eq!(
            Outbound::decode(&expected[..34]),
            Err(OuchError::Truncated { message_type: b'E' })
        );
    }

    #[test]
    fn golden_order_rejected() {
        let expected = Bytes::default()
            .ch(b'J')
            .be64(TIMESTAMP_NS) // 1
            .be32(9) // 9: UserRefNum
            .be16(0x001d) // 13: reason, invalid price
            .text("BADPX", 14) // 15: ClOrdID
            .be16(3) // 29: appendage length
            .raw(&[0x02, 0x1c, 0x02]) // UserRefIdx 2
            .0;
        assert_eq!(expected.len(), 31 + 3);
        let message = Outbound::OrderRejected(OrderRejected {
            timestamp_ns: TIMESTAMP_NS,
            user_ref_num: 9,
            reason: RejectReason::INVALID_PRICE,
            client_order_id: alpha("BADPX"),
            options: Options {
                user_ref_index: Some(2),
                ..Options::NONE
            },
        });
        assert_eq!(encode_outbound(&message), expected);
        assert_eq!(Outbound::decode(&expected), Ok(message));
    }

    #[test]
    fn golden_order_canceled() {
        let expected = Bytes::default()
            .ch(b'C')
            .be64(TIMESTAMP_NS) // 1
            .be32(2) // 9: UserRefNum
            .be32(100) // 13: quantity
            .ch(b'U') // 17: reason, user requested
            .be16(0) // 18: appendage length
            .0;
        assert_eq!(expected.len(), 20);
        let message = Outbound::OrderCanceled(OrderCanceled {
            timestamp_ns: TIMESTAMP_NS,
            user_ref_num: 2,
            quantity: 100,
            reason: CancelReason::UserRequested,
            options: Options::NONE,
        });
        assert_eq!(encode_outbound(&message), expected);
        assert_eq!(Outbound::decode(&expected), Ok(message));
        // Optional Appendage Length: 18 bytes also decode.
        assert_eq!(Outbound::decode(&expected[..18]), Ok(message));
    }

    #[test]
    fn golden_system_event_and_mass_cancel() {
        let event = Bytes::default().ch(b'S').be64(TIMESTAMP_NS).ch(b'E').0;
        assert_eq!(
            Outbound::decode(&event),
            Ok(Outbound::SystemEvent(SystemEvent {
                timestamp_ns: TIMESTAMP_NS,
                event_code: EventCode::EndOfDay,
            }))
        );
        let request = Bytes::default()
            .ch(b'C')
            .be32(10)
            .text("FIRM", 4)
            .text("", 8)
            .be16(7)
            .raw(&[0x03, 0x18, 0x00, 0x07]) // GroupID 7
            .raw(&[0x02, 0x1b, b'S']) // Side S
            .0;
        let message = Inbound::MassCancelRequest(MassCancelRequest {
            user_ref_num: 10,
            firm: alpha("FIRM"),
            symbol: Symbol::BLANK,
            options: Options {
                group_id: Some(7),
                side: Some(Side::Sell),
                ..Options::NONE
            },
        });
        assert_eq!(encode_inbound(&message), request);
        assert_eq!(Inbound::decode(&request), Ok(message));
    }

    fn all_options_for(allowed: u32) -> Options {
        let every = Options {
            secondary_order_reference_number: Some(0x0102_0304_0506_0708),
            firm: Some(alpha("ABCD")),
            min_quantity: Some(200),
            customer_type: Some(CustomerType::Retail),
            max_floor: Some(100),
            price_type: Some(PriceType::MidpointPeg),
            peg_offset: Some(PriceOffset(-100)),
            discretion_price: Some(Price(1_500_000)),
            discretion_price_type: Some(DiscretionPriceType::MarketPeg),
            discretion_peg_offset: Some(PriceOffset(-1)),
            post_only: Some(PostOnly::PostOnly),
            random_reserves: Some(300),
            route: Some(alpha("RTE1")),
            expire_time_s: Some(3600),
            trade_now: Some(TradeNow::Yes),
            handle_inst: Some(HandleInst::ImbalanceOnly),
            bbo_weight_indicator: Some(BboWeightIndicator::Above2),
            display_quantity: Some(100),
            display_price: Some(Price(1_503_400)),
            group_id: Some(513),
            shares_located: Some(SharesLocated::Yes),
            locate_broker: Some(alpha("LCTB")),
            side: Some(Side::SellShort),
            user_ref_index: Some(5),
            aiq_strategy: Code::new(b'O'),
            aiq_group_id: Some(alpha("AB")),
        };
        // Keep only the tags the message allows.
        let mut bytes = Vec::new();
        every.encode(&mut bytes, u32::MAX);
        let mut filtered = Vec::new();
        let mut rest = &bytes[2..];
        while let [length, tag, ..] = *rest {
            let element = &rest[..usize::from(length) + 1];
            if allowed & (1 << tag) != 0 {
                filtered.extend_from_slice(element);
            }
            rest = &rest[element.len()..];
        }
        Options::decode(&filtered, 0, allowed).expect("filtered options decode")
    }

    fn inbound_samples() -> Vec<Inbound> {
        let mut samples = Vec::new();
        for full in [false, true] {
            let options = |allowed| {
                if full {
                    all_options_for(allowed)
                } else {
                    Options::NONE
                }
            };
            samples.push(Inbound::EnterOrder(EnterOrder {
                side: Side::SellShortExempt,
                price: Price(0x7fff_ffff),
                time_in_force: TimeInForce::ImmediateOrCancel,
                options: options(allowed::ENTER_ORDER),
                ..enter_order(Options::NONE)
            }));
            samples.push(Inbound::ReplaceOrder(ReplaceOrder {
                original_user_ref_num: 3,
                user_ref_num: 4,
                quantity: 10,
                price: Price(1),
                time_in_force: TimeInForce::AfterHours,
                display: Display::Hidden,
                intermarket_sweep: IntermarketSweep::Eligible,
                client_order_id: alpha("R"),
                options: options(allowed::REPLACE_ORDER),
            }));
            samples.push(Inbound::CancelOrder(CancelOrder {
                user_ref_num: 5,
                quantity: 25,
                options: options(allowed::USER_REF_INDEX_ONLY),
            }));
            samples.push(Inbound::ModifyOrder(ModifyOrder {
                user_ref_num: 6,
                side: Side::SellShort,
                quantity: 50,
                options: options(allowed::MODIFY),
            }));
            samples.push(Inbound::MassCancelRequest(MassCancelRequest {
                user_ref_num: 7,
                firm: alpha("FIRM"),
                symbol: alpha("MSFT"),
                options: options(allowed::MASS_CANCEL),
            }));
            samples.push(Inbound::AccountQueryRequest(AccountQueryRequest {
                options: options(allowed::USER_REF_INDEX_ONLY),
            }));
        }
        samples
    }

    fn outbound_samples() -> Vec<Outbound> {
        let mut samples = vec![Outbound::SystemEvent(SystemEvent {
            timestamp_ns: TIMESTAMP_NS,
            event_code: EventCode::StartOfDay,
        })];
        let flag = |b| Code::new(b).expect("printable");
        for full in [false, true] {
            let options = |allowed| {
                if full {
                    all_options_for(allowed)
                } else {
                    Options::NONE
                }
            };
            let ts = TIMESTAMP_NS;
            samples.extend([
                Outbound::OrderAccepted(OrderAccepted {
                    timestamp_ns: ts,
                    user_ref_num: 1,
                    side: Side::Buy,
                    quantity: 100,
                    symbol: alpha("AAPL"),
                    price: Price(1_503_400),
                    time_in_force: TimeInForce::Day,
                    display: Display::Conformant,
                    order_reference_number: 42,
                    capacity: Capacity::Riskless,
                    intermarket_sweep: IntermarketSweep::Eligible,
                    cross_type: CrossType::HaltIpo,
                    order_state: OrderState::Live,
                    client_order_id: alpha("C1"),
                    options: options(allowed::ORDER_ACCEPTED),
                }),
                Outbound::OrderReplaced(OrderReplaced {
                    timestamp_ns: ts,
                    original_user_ref_num: 1,
                    user_ref_num: 2,
                    side: Side::Sell,
                    quantity: 400,
                    symbol: alpha("MSFT"),
                    price: Price(4_000_000),
                    time_in_force: TimeInForce::ImmediateOrCancel,
                    display: Display::Hidden,
                    order_reference_number: 43,
                    capacity: Capacity::Principal,
                    intermarket_sweep: IntermarketSweep::NotEligible,
                    cross_type: CrossType::ContinuousMarket,
                    order_state: OrderState::Dead,
                    client_order_id: alpha("C2"),
                    options: options(allowed::ORDER_REPLACED),
                }),
                Outbound::OrderCanceled(OrderCanceled {
                    timestamp_ns: ts,
                    user_ref_num: 2,
                    quantity: 100,
                    reason: CancelReason::Timeout,
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::AiqCanceled(AiqCanceled {
                    timestamp_ns: ts,
                    user_ref_num: 4,
                    decrement_shares: 100,
                    reason: CancelReason::SelfMatchPrevention,
                    quantity_prevented_from_trading: 60,
                    execution_price: Price(1_503_400),
                    liquidity_flag: flag(b'R'),
                    aiq_strategy: flag(b'O'),
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::OrderExecuted(OrderExecuted {
                    timestamp_ns: ts,
                    user_ref_num: 1,
                    quantity: 10,
                    price: Price(1_000_000),
                    liquidity_flag: flag(b'R'),
                    match_number: 77,
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::BrokenTrade(BrokenTrade {
                    timestamp_ns: ts,
                    user_ref_num: 1,
                    match_number: 77,
                    reason: BrokenTradeReason::Erroneous,
                    client_order_id: alpha("C1"),
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::OrderRejected(OrderRejected {
                    timestamp_ns: ts,
                    user_ref_num: 9,
                    reason: RejectReason::new(1).expect("assigned"),
                    client_order_id: alpha("C9"),
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::CancelPending(CancelAcknowledgement {
                    timestamp_ns: ts,
                    user_ref_num: 5,
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::CancelReject(CancelAcknowledgement {
                    timestamp_ns: ts,
                    user_ref_num: 6,
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::OrderPriorityUpdate(OrderPriorityUpdate {
                    timestamp_ns: ts,
                    user_ref_num: 7,
                    price: Price(1_503_300),
                    display: Display::Visible,
                    order_reference_number: 555,
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
                Outbound::OrderModified(OrderModified {
                    timestamp_ns: ts,
                    user_ref_num: 3,
                    side: Side::SellShortExempt,
                    quantity: 50,
                    options: options(allowed::MODIFY),
                }),
                Outbound::OrderRestated(OrderRestated {
                    timestamp_ns: ts,
                    user_ref_num: 8,
                    reason: RestateReason::Refresh,
                    options: options(allowed::ORDER_RESTATED),
                }),
                Outbound::MassCancelResponse(MassCancelResponse {
                    timestamp_ns: ts,
                    user_ref_num: 10,
                    firm: alpha("FIRM"),
                    symbol: Symbol::BLANK,
                    options: options(allowed::MASS_CANCEL),
                }),
                Outbound::AccountQueryResponse(AccountQueryResponse {
                    timestamp_ns: ts,
                    next_user_ref_num: 13,
                    options: options(allowed::USER_REF_INDEX_ONLY),
                }),
            ]);
        }
        samples
    }

    #[test]
    fn samples_cover_every_message_type_with_and_without_options() {
        let inbound: std::collections::BTreeSet<u8> = inbound_samples()
            .iter()
            .map(Inbound::message_type)
            .collect();
        assert_eq!(inbound, b"CMOQUX".iter().copied().collect());
        let outbound: std::collections::BTreeSet<u8> = outbound_samples()
            .iter()
            .map(Outbound::message_type)
            .collect();
        assert_eq!(outbound, b"ABCDEIJMPQRSTUX".iter().copied().collect());
        // The full sample of Enter Order carries all 20 of its options.
        let full = encode_inbound(&inbound_samples()[6]);
        assert_eq!(allowed::ENTER_ORDER.count_ones(), 20);
        assert!(full.len() > EnterOrder::LENGTH_MIN + 20 * 3);
    }

    #[test]
    fn every_inbound_message_round_trips() {
        for message in inbound_samples() {
            let bytes = encode_inbound(&message);
            assert_eq!(Inbound::decode(&bytes), Ok(message), "{message:?}");
            assert_eq!(bytes[0], message.message_type());
        }
    }

    #[test]
    fn every_outbound_message_round_trips() {
        for message in outbound_samples() {
            let bytes = encode_outbound(&message);
            assert_eq!(Outbound::decode(&bytes), Ok(message), "{message:?}");
            assert_eq!(bytes[0], message.message_type());
        }
    }

    /// Length of the fixed part of a message whose Appendage Length may be
    /// left out: that one prefix is a complete message without options.
    fn optional_boundary(outbound: bool, message_type: u8) -> Option<usize> {
        match (outbound, message_type) {
            (false, b'X') => Some(9),
            (false, b'M') => Some(10),
            (false, b'Q') => Some(1),
            (true, b'C') | (true, b'M') => Some(18),
            (true, b'D') => Some(32),
            (true, b'B') => Some(36),
            (true, b'J') => Some(29),
            (true, b'P') | (true, b'I') | (true, b'Q') => Some(13),
            (true, b'T') => Some(30),
            _ => None,
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut checked = 0;
        for message in inbound_samples() {
            let bytes = encode_inbound(&message);
            let boundary = optional_boundary(false, message.message_type());
            for length in 0..bytes.len() {
                let decoded = Inbound::decode(&bytes[..length]);
                if Some(length) == boundary {
                    let options = match decoded {
                        Ok(Inbound::CancelOrder(m)) => m.options,
                        Ok(Inbound::ModifyOrder(m)) => m.options,
                        Ok(Inbound::AccountQueryRequest(m)) => m.options,
                        other => panic!("{other:?}"),
                    };
                    assert_eq!(options, Options::NONE);
                } else {
                    assert!(decoded.is_err(), "{message:?} cut to {length}");
                }
                checked += 1;
            }
        }
        for message in outbound_samples() {
            let bytes = encode_outbound(&message);
            let boundary = optional_boundary(true, message.message_type());
            for length in 0..bytes.len() {
                let decoded = Outbound::decode(&bytes[..length]);
                if Some(length) == boundary {
                    assert!(decoded.is_ok(), "{message:?} without appendage length");
                } else {
                    assert!(decoded.is_err(), "{message:?} cut to {length}");
                }
                checked += 1;
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        for message in inbound_samples() {
            let mut bytes = encode_inbound(&message);
            bytes.push(0);
            assert!(matches!(
                Inbound::decode(&bytes),
                Err(OuchError::TrailingBytes { count: 1, .. } | OuchError::Truncated { .. })
            ));
        }
        let mut event = encode_outbound(&outbound_samples()[0]);
        event.push(b' ');
        assert_eq!(
            Outbound::decode(&event),
            Err(OuchError::TrailingBytes {
                message_type: b'S',
                count: 1
            })
        );
    }

    fn enter_order_with_appendage(appendage: &[u8]) -> Vec<u8> {
        let length = u16::try_from(appendage.len()).expect("short");
        enter_order_fixed_bytes().be16(length).raw(appendage).0
    }

    #[test]
    fn appendage_errors_are_typed() {
        let decode = |appendage: &[u8]| Inbound::decode(&enter_order_with_appendage(appendage));
        assert_eq!(
            decode(&[0x02, 0x08, 0x00]),
            Err(OuchError::UnknownOptionTag { tag: 8 })
        );
        assert_eq!(
            decode(&[0x02, 0xff, 0x00]),
            Err(OuchError::UnknownOptionTag { tag: 0xff })
        );
        assert_eq!(
            decode(&[0x02, 0x12, b'2']),
            Err(OuchError::OptionNotAllowed {
                message_type: b'O',
                tag: 18
            })
        );
        assert_eq!(
            decode(&[0x02, 0x1c, 0x01, 0x02, 0x1c, 0x02]),
            Err(OuchError::DuplicateOption { tag: 28 })
        );
        assert_eq!(
            decode(&[0x03, 0x1c, 0x01, 0x02]),
            Err(OuchError::OptionLength { tag: 28, length: 3 })
        );
        assert_eq!(
            decode(&[0x00]),
            Err(OuchError::OptionLength { tag: 0, length: 0 })
        );
        assert_eq!(
            decode(&[0x05, 0x03, 0x00]),
            Err(OuchError::Truncated { message_type: b'O' })
        );
        assert_eq!(
            decode(&[0x02, 0x0c, b'X']),
            Err(OuchError::InvalidCode {
                field: "Post Only",
                value: b'X'
            })
        );
        assert_eq!(
            decode(&[0x05, 0x02, b'A', 0x00, b'B', b'C']),
            Err(OuchError::InvalidAlpha { field: "Firm" })
        );
        // Appendage Length longer than what follows.
        let mut bytes = enter_order_with_appendage(&[0x02, 0x1c, 0x01]);
        bytes.truncate(bytes.len() - 1);
        assert_eq!(
            Inbound::decode(&bytes),
            Err(OuchError::Truncated { message_type: b'O' })
        );
    }

    #[test]
    fn field_errors_are_typed() {
        assert_eq!(Inbound::decode(&[]), Err(OuchError::Empty));
        assert_eq!(Outbound::decode(&[]), Err(OuchError::Empty));
        assert_eq!(
            Inbound::decode(b"A"),
            Err(OuchError::UnknownMessageType { message_type: b'A' })
        );
        assert_eq!(
            Outbound::decode(b"O"),
            Err(OuchError::UnknownMessageType { message_type: b'O' })
        );
        let mut bytes = enter_order_fixed_bytes().be16(0).0;
        bytes[5] = b'Z';
        assert_eq!(
            Inbound::decode(&bytes),
            Err(OuchError::InvalidCode {
                field: "Side",
                value: b'Z'
            })
        );
        let mut bytes = enter_order_fixed_bytes().be16(0).0;
        bytes[12] = 0x80;
        assert_eq!(
            Inbound::decode(&bytes),
            Err(OuchError::InvalidAlpha { field: "Symbol" })
        );
        let rejected = Bytes::default()
            .ch(b'J')
            .be64(0)
            .be32(1)
            .be16(0x0034)
            .text("", 14)
            .be16(0)
            .0;
        assert_eq!(
            Outbound::decode(&rejected),
            Err(OuchError::InvalidRejectReason { value: 0x34 })
        );
        assert!(RejectReason::new(0).is_none());
        assert_eq!(RejectReason::new(0x33).map(RejectReason::code), Some(0x33));
    }

    #[test]
    fn code_enums_round_trip_their_bytes() {
        fn check<T: Copy + PartialEq + fmt::Debug>(
            all: &[T],
            byte: fn(T) -> u8,
            from: fn(u8) -> Result<T, OuchError>,
        ) {
            let mut accepted = 0;
            for value in 0..=u8::MAX {
                if let Ok(decoded) = from(value) {
                    assert_eq!(byte(decoded), value);
                    accepted += 1;
                }
            }
            assert_eq!(accepted, all.len());
            for &value in all {
                assert_eq!(from(byte(value)), Ok(value));
            }
        }
        check(Side::ALL, Side::byte, Side::from_byte);
        check(TimeInForce::ALL, TimeInForce::byte, TimeInForce::from_byte);
        check(Display::ALL, Display::byte, Display::from_byte);
        check(Capacity::ALL, Capacity::byte, Capacity::from_byte);
        check(
            IntermarketSweep::ALL,
            IntermarketSweep::byte,
            IntermarketSweep::from_byte,
        );
        check(CrossType::ALL, CrossType::byte, CrossType::from_byte);
        check(OrderState::ALL, OrderState::byte, OrderState::from_byte);
        check(EventCode::ALL, EventCode::byte, EventCode::from_byte);
        check(
            CancelReason::ALL,
            CancelReason::byte,
            CancelReason::from_byte,
        );
        check(
            BrokenTradeReason::ALL,
            BrokenTradeReason::byte,
            BrokenTradeReason::from_byte,
        );
        check(
            RestateReason::ALL,
            RestateReason::byte,
            RestateReason::from_byte,
        );
        check(
            CustomerType::ALL,
            CustomerType::byte,
            CustomerType::from_byte,
        );
        check(PriceType::ALL, PriceType::byte, PriceType::from_byte);
        check(
            DiscretionPriceType::ALL,
            DiscretionPriceType::byte,
            DiscretionPriceType::from_byte,
        );
        check(PostOnly::ALL, PostOnly::byte, PostOnly::from_byte);
        check(TradeNow::ALL, TradeNow::byte, TradeNow::from_byte);
        check(HandleInst::ALL, HandleInst::byte, HandleInst::from_byte);
        check(
            BboWeightIndicator::ALL,
            BboWeightIndicator::byte,
            BboWeightIndicator::from_byte,
        );
        check(
            SharesLocated::ALL,
            SharesLocated::byte,
            SharesLocated::from_byte,
        );
    }

    #[test]
    fn alpha_pads_trims_and_rejects() {
        let symbol: Symbol = alpha("ACME");
        assert_eq!(symbol.as_bytes(), b"ACME    ");
        assert_eq!(symbol.trimmed(), "ACME");
        assert_eq!(format!("{symbol:?}"), "\"ACME\"");
        assert!(Symbol::new("NINECHARS").is_none());
        assert!(Symbol::new("AC\u{e9}").is_none());
        assert_eq!(Symbol::BLANK.trimmed(), "");
    }

    #[test]
    fn every_tag_encodes_to_its_appendix_a_element() {
        // (hand-assembled element, the option it carries)
        let cases: [(&[u8], Options); 26] = [
            (
                &[9, 1, 1, 2, 3, 4, 5, 6, 7, 8],
                Options {
                    secondary_order_reference_number: Some(0x0102_0304_0506_0708),
                    ..Options::NONE
                },
            ),
            (
                &[5, 2, b'A', b'B', b'C', b'D'],
                Options {
                    firm: Some(alpha("ABCD")),
                    ..Options::NONE
                },
            ),
            (
                &[5, 3, 0, 0, 0, 0xc8],
                Options {
                    min_quantity: Some(200),
                    ..Options::NONE
                },
            ),
            (
                &[2, 4, b'R'],
                Options {
                    customer_type: Some(CustomerType::Retail),
                    ..Options::NONE
                },
            ),
            (
                &[5, 5, 0, 0, 0, 0x64],
                Options {
                    max_floor: Some(100),
                    ..Options::NONE
                },
            ),
            (
                &[2, 6, b'M'],
                Options {
                    price_type: Some(PriceType::MidpointPeg),
                    ..Options::NONE
                },
            ),
            (
                &[5, 7, 0xff, 0xff, 0xff, 0x9c],
                Options {
                    peg_offset: Some(PriceOffset(-100)),
                    ..Options::NONE
                },
            ),
            (
                &[9, 9, 0, 0, 0, 0, 0, 0x16, 0xe3, 0x60],
                Options {
                    discretion_price: Some(Price(1_500_000)),
                    ..Options::NONE
                },
            ),
            (
                &[2, 10, b'P'],
                Options {
                    discretion_price_type: Some(DiscretionPriceType::MarketPeg),
                    ..Options::NONE
                },
            ),
            (
                &[5, 11, 0xff, 0xff, 0xff, 0xff],
                Options {
                    discretion_peg_offset: Some(PriceOffset(-1)),
                    ..Options::NONE
                },
            ),
            (
                &[2, 12, b'P'],
                Options {
                    post_only: Some(PostOnly::PostOnly),
                    ..Options::NONE
                },
            ),
            (
                &[5, 13, 0, 0, 1, 0x2c],
                Options {
                    random_reserves: Some(300),
                    ..Options::NONE
                },
            ),
            (
                &[5, 14, b'R', b'T', b'E', b'1'],
                Options {
                    route: Some(alpha("RTE1")),
                    ..Options::NONE
                },
            ),
            (
                &[5, 15, 0, 0, 0x0e, 0x10],
                Options {
                    expire_time_s: Some(3600),
                    ..Options::NONE
                },
            ),
            (
                &[2, 16, b'Y'],
                Options {
                    trade_now: Some(TradeNow::Yes),
                    ..Options::NONE
                },
            ),
            (
                &[2, 17, b'I'],
                Options {
                    handle_inst: Some(HandleInst::ImbalanceOnly),
                    ..Options::NONE
                },
            ),
            (
                &[2, 18, b'2'],
                Options {
                    bbo_weight_indicator: Some(BboWeightIndicator::Range1To2),
                    ..Options::NONE
                },
            ),
            (
                &[5, 22, 0, 0, 0, 0x64],
                Options {
                    display_quantity: Some(100),
                    ..Options::NONE
                },
            ),
            (
                &[9, 23, 0, 0, 0, 0, 0, 0x16, 0xf0, 0xa8],
                Options {
                    display_price: Some(Price(1_503_400)),
                    ..Options::NONE
                },
            ),
            (
                &[3, 24, 0x02, 0x01],
                Options {
                    group_id: Some(513),
                    ..Options::NONE
                },
            ),
            (
                &[2, 25, b'Y'],
                Options {
                    shares_located: Some(SharesLocated::Yes),
                    ..Options::NONE
                },
            ),
            (
                &[5, 26, b'L', b'C', b'T', b'B'],
                Options {
                    locate_broker: Some(alpha("LCTB")),
                    ..Options::NONE
                },
            ),
            (
                &[2, 27, b'T'],
                Options {
                    side: Some(Side::SellShort),
                    ..Options::NONE
                },
            ),
            (
                &[2, 28, 5],
                Options {
                    user_ref_index: Some(5),
                    ..Options::NONE
                },
            ),
            (
                &[2, 29, b'O'],
                Options {
                    aiq_strategy: Code::new(b'O'),
                    ..Options::NONE
                },
            ),
            (
                &[3, 30, b'A', b'B'],
                Options {
                    aiq_group_id: Some(alpha("AB")),
                    ..Options::NONE
                },
            ),
        ];
        for (element, options) in cases {
            let mut encoded = Vec::new();
            options.encode(&mut encoded, u32::MAX);
            assert_eq!(&encoded[2..], element);
            assert_eq!(
                usize::from(u16::from_be_bytes([encoded[0], encoded[1]])),
                element.len()
            );
            assert_eq!(Options::decode(element, 0, u32::MAX), Ok(options));
        }
    }

    #[test]
    #[should_panic(expected = "options not allowed")]
    fn encoding_an_option_the_message_does_not_allow_panics() {
        let cancel = CancelOrder {
            user_ref_num: 1,
            quantity: 0,
            options: Options {
                firm: Some(alpha("FIRM")),
                ..Options::NONE
            },
        };
        cancel.encode(&mut Vec::new());
    }

    /// xorshift64*: a tiny seeded generator, so a failure can be replayed.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    /// Whatever decodes must re-encode to something that decodes to the same.
    fn check_payload(payload: &[u8]) {
        if let Ok(message) = Inbound::decode(payload) {
            assert_eq!(Inbound::decode(&encode_inbound(&message)), Ok(message));
        }
        if let Ok(message) = Outbound::decode(payload) {
            assert_eq!(Outbound::decode(&encode_outbound(&message)), Ok(message));
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        const SEED: u64 = 0x5eed_0c0d_ec0d_e5ed;
        const ITERATIONS: usize = 200_000;
        let mut random = Random(SEED);
        let letters = b"OUXMCQSAUCDEBJPITMRX";
        let mut payload = Vec::with_capacity(128);
        for iteration in 0..ITERATIONS {
            payload.clear();
            let length = random.below(100);
            for _ in 0..length {
                payload.push(random.next() as u8);
            }
            if let Some(first) = payload.first_mut()
                && iteration % 2 == 0
            {
                *first = letters[random.below(letters.len())];
            }
            check_payload(&payload);
        }
    }

    #[test]
    fn mutated_messages_never_panic() {
        const SEED: u64 = 0x0dd_ba11_cafe;
        let mut random = Random(SEED);
        let mut encodings: Vec<Vec<u8>> = inbound_samples().iter().map(encode_inbound).collect();
        encodings.extend(outbound_samples().iter().map(encode_outbound));
        let mut decoded_count = 0usize;
        for _ in 0..100_000 {
            let mut payload = encodings[random.below(encodings.len())].clone();
            for _ in 0..=random.below(3) {
                let index = random.below(payload.len());
                payload[index] = random.next() as u8;
            }
            if Inbound::decode(&payload).is_ok() || Outbound::decode(&payload).is_ok() {
                decoded_count += 1;
            }
            check_payload(&payload);
        }
        // Many mutations hit timestamps, prices and quantities and stay valid.
        assert!(decoded_count > 1000);
    }
}
