//! ITCH 5.0 messages (NASDAQ TotalView-ITCH 5.0): a sans-I/O encoder and
//! decoder for the messages this exchange publishes.
//!
//! Source: NASDAQ, *Nasdaq TotalView-ITCH 5.0* specification. Each message is
//! one MoldUDP64 message block payload; the block's length framing is not part
//! of the message and is handled by `moldudp64`.
//!
//! # Data types
//!
//! - Integers are unsigned, big-endian binary (`u16`, `u32`, `u64`).
//! - Alpha fields are ASCII, left-justified and padded on the right with
//!   spaces. This codec accepts printable ASCII (0x20..=0x7E) only.
//! - Price (4) is a `u32` with 4 implied decimal places (`$150.34` is
//!   `1503400`), see [`Price`].
//! - Timestamp is 6 bytes, big-endian nanoseconds since midnight, see
//!   [`Timestamp`]. A value of 2^48 or more cannot be represented: the
//!   [`Timestamp::new`] constructor returns `None` for it, so encoding never
//!   has to fail or truncate.
//!
//! # Common header (every message)
//!
//! ```text
//! off len field
//!   0   1 Message Type
//!   1   2 Stock Locate
//!   3   2 Tracking Number
//!   5   6 Timestamp
//! ```
//!
//! # Messages
//!
//! ```text
//! System Event 'S' (12)            Stock Directory 'R' (39)
//! off len field                    off len field
//!   0  11 header                     0  11 header
//!  11   1 Event Code                11   8 Stock
//!                                   19   1 Market Category
//! Stock Trading Action 'H' (25)     20   1 Financial Status Indicator
//!   0  11 header                    21   4 Round Lot Size
//!  11   8 Stock                     25   1 Round Lots Only
//!  19   1 Trading State             26   1 Issue Classification
//!  20   1 Reserved                  27   2 Issue Sub-Type
//!  21   4 Reason                    29   1 Authenticity
//!                                   30   1 Short Sale Threshold Indicator
//! Order Delete 'D' (19)             31   1 IPO Flag
//!   0  11 header                    32   1 LULD Reference Price Tier
//!  11   8 Order Reference Number    33   1 ETP Flag
//!                                   34   4 ETP Leverage Factor
//! Broken Trade 'B' (19)             38   1 Inverse Indicator
//!   0  11 header
//!  11   8 Match Number
//!
//! Add Order 'A' (36)               Add Order with MPID 'F' (40)
//!   0  11 header                     0  11 header
//!  11   8 Order Reference Number    11   8 Order Reference Number
//!  19   1 Buy/Sell Indicator        19   1 Buy/Sell Indicator
//!  20   4 Shares                    20   4 Shares
//!  24   8 Stock                     24   8 Stock
//!  32   4 Price (4)                 32   4 Price (4)
//!                                   36   4 Attribution
//!
//! Order Executed 'E' (31)          Order Executed With Price 'C' (36)
//!   0  11 header                     0  11 header
//!  11   8 Order Reference Number    11   8 Order Reference Number
//!  19   4 Executed Shares           19   4 Executed Shares
//!  23   8 Match Number              23   8 Match Number
//!                                   31   1 Printable
//! Order Cancel 'X' (23)             32   4 Execution Price (4)
//!   0  11 header
//!  11   8 Order Reference Number   Order Replace 'U' (35)
//!  19   4 Cancelled Shares           0  11 header
//!                                   11   8 Original Order Reference Number
//! Trade (non-cross) 'P' (44)        19   8 New Order Reference Number
//!   0  11 header                    27   4 Shares
//!  11   8 Order Reference Number    31   4 Price (4)
//!  19   1 Buy/Sell Indicator
//!  20   4 Shares
//!  24   8 Stock
//!  32   4 Price (4)
//!  36   8 Match Number
//! ```
//!
//! Enumerated one-byte fields other than Buy/Sell Indicator (Event Code,
//! Market Category, Financial Status Indicator, Trading State, Printable,
//! ...) are carried as a [`Code`]: any printable-ASCII byte, passed through
//! as is. Checking them against the specification's value lists is left to
//! the publisher and subscriber.
//!
//! # Decoding
//!
//! [`Message::decode`] takes exactly one message: the slice length must equal
//! the type's length ([`ItchError::Length`] otherwise). It allocates nothing
//! and never panics on any input. A message type this codec does not cover
//! (e.g. 'L', 'I', 'Q', 'Y', 'V', 'W', 'K', 'J', 'h', 'N', 'O') is
//! [`ItchError::UnknownMessageType`], which carries the type byte and the
//! payload length so that a subscriber reading MoldUDP64 blocks can skip it
//! and carry on. Because every field is kept verbatim, a decoded message
//! encodes back to the very same bytes.
//!
//! # Encoding
//!
//! [`Message::encode`] appends to a caller-owned `Vec<u8>` and cannot fail:
//! every field type admits only encodable values.

use core::fmt;

/// Prices on the wire carry this many units per dollar (4 implied decimals).
pub const PRICE_SCALE: u32 = 10_000;

/// Length of the common header (type, stock locate, tracking number,
/// timestamp).
pub const HEADER_LENGTH: usize = 11;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a payload is not a valid ITCH 5.0 message this codec covers. Every
/// decode failure is one of these; decoding never panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItchError {
    /// The payload is empty: there is no message type byte.
    Empty,
    /// The message type is not one this codec covers. Not necessarily
    /// malformed: a subscriber may skip it.
    UnknownMessageType {
        /// The type byte as received.
        message_type: u8,
        /// The payload length, type byte included.
        length: usize,
    },
    /// The payload length is not the length of its message type.
    Length {
        /// The type byte as received.
        message_type: u8,
        /// The length the specification gives for the type.
        expected: usize,
        /// The length received.
        actual: usize,
    },
    /// An enumerated one-byte field holds an undefined or non-printable
    /// value.
    InvalidCode {
        /// The field name, as in the specification.
        field: &'static str,
        /// The byte as received.
        value: u8,
    },
    /// An alpha field holds a byte outside printable ASCII.
    InvalidAlpha {
        /// The field name, as in the specification.
        field: &'static str,
    },
}

impl fmt::Display for ItchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => write!(f, "empty ITCH payload"),
            Self::UnknownMessageType {
                message_type,
                length,
            } => write!(
                f,
                "unknown ITCH message type 0x{message_type:02x} ({length} bytes)"
            ),
            Self::Length {
                message_type,
                expected,
                actual,
            } => write!(
                f,
                "ITCH message '{}' is {actual} bytes, expected {expected}",
                char::from(message_type)
            ),
            Self::InvalidCode { field, value } => {
                write!(f, "invalid {field} value 0x{value:02x}")
            }
            Self::InvalidAlpha { field } => write!(f, "non-printable byte in {field}"),
        }
    }
}

impl std::error::Error for ItchError {}

// ---------------------------------------------------------------------------
// Field types
// ---------------------------------------------------------------------------

use wire::alpha::is_printable;

pub use wire::alpha::Alpha;

/// Stock symbol: 8 bytes.
pub type Stock = Alpha<8>;
/// Market participant identifier (Attribution): 4 bytes.
pub type Mpid = Alpha<4>;
/// Issue Sub-Type: 2 bytes.
pub type IssueSubType = Alpha<2>;
/// Stock Trading Action reason: 4 bytes (blank when none).
pub type TradingReason = Alpha<4>;

/// A single printable-ASCII code whose value set this codec does not
/// enumerate (Event Code, Market Category, Trading State, Printable, ...):
/// it is carried through as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Code(u8);

impl Code {
    /// `None` unless `byte` is printable ASCII (space included).
    pub fn new(byte: u8) -> Option<Self> {
        is_printable(byte).then_some(Self(byte))
    }

    /// The byte on the wire.
    pub fn byte(self) -> u8 {
        self.0
    }

    fn decode(byte: u8, field: &'static str) -> Result<Self, ItchError> {
        Self::new(byte).ok_or(ItchError::InvalidCode { field, value: byte })
    }
}

/// Buy/Sell Indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy order ('B').
    Buy,
    /// Sell order ('S').
    Sell,
}

impl Side {
    /// The value for a wire byte.
    pub fn from_byte(byte: u8) -> Result<Self, ItchError> {
        match byte {
            b'B' => Ok(Self::Buy),
            b'S' => Ok(Self::Sell),
            _ => Err(ItchError::InvalidCode {
                field: "Buy/Sell Indicator",
                value: byte,
            }),
        }
    }

    /// The wire byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Buy => b'B',
            Self::Sell => b'S',
        }
    }
}

/// A Price (4): `u32` with 4 implied decimals (`Price(1_503_400)` is
/// $150.34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price(pub u32);

/// Nanoseconds since midnight, 6 bytes on the wire: at most 2^48 - 1.
///
/// The bound is enforced at construction, so a message always encodes.
///
/// ```
/// use marketdata::itch::Timestamp;
/// assert_eq!(Timestamp::new(Timestamp::MAX).unwrap().nanos(), (1 << 48) - 1);
/// assert!(Timestamp::new(1 << 48).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The largest value 6 bytes hold.
    pub const MAX: u64 = (1 << 48) - 1;
    /// Midnight.
    pub const ZERO: Self = Self(0);

    /// `None` if `nanos` does not fit in 6 bytes (`nanos > MAX`).
    pub fn new(nanos: u64) -> Option<Self> {
        (nanos <= Self::MAX).then_some(Self(nanos))
    }

    /// Nanoseconds since midnight.
    pub fn nanos(self) -> u64 {
        self.0
    }

    fn to_bytes(self) -> [u8; 6] {
        let b = self.0.to_be_bytes();
        [b[2], b[3], b[4], b[5], b[6], b[7]]
    }

    fn from_bytes(b: [u8; 6]) -> Self {
        Self(u64::from_be_bytes([
            0, 0, b[0], b[1], b[2], b[3], b[4], b[5],
        ]))
    }
}

/// The fields after Message Type that every message starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Locate code identifying the security.
    pub stock_locate: u16,
    /// Nasdaq internal tracking number.
    pub tracking_number: u16,
    /// Nanoseconds since midnight.
    pub timestamp: Timestamp,
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// System Event 'S'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SystemEvent {
    /// Common header.
    pub header: Header,
    /// Event Code ('O', 'S', 'Q', 'M', 'E', 'C').
    pub event_code: Code,
}

impl SystemEvent {
    /// Message type byte.
    pub const TYPE: u8 = b'S';
    /// Length on the wire.
    pub const LENGTH: usize = 12;
}

/// Stock Directory 'R'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StockDirectory {
    /// Common header.
    pub header: Header,
    /// Stock symbol.
    pub stock: Stock,
    /// Market Category.
    pub market_category: Code,
    /// Financial Status Indicator.
    pub financial_status_indicator: Code,
    /// Round Lot Size.
    pub round_lot_size: u32,
    /// Round Lots Only ('Y' / 'N').
    pub round_lots_only: Code,
    /// Issue Classification.
    pub issue_classification: Code,
    /// Issue Sub-Type.
    pub issue_sub_type: IssueSubType,
    /// Authenticity ('P' / 'T').
    pub authenticity: Code,
    /// Short Sale Threshold Indicator ('Y' / 'N' / ' ').
    pub short_sale_threshold_indicator: Code,
    /// IPO Flag ('Y' / 'N' / ' ').
    pub ipo_flag: Code,
    /// LULD Reference Price Tier ('1' / '2' / ' ').
    pub luld_reference_price_tier: Code,
    /// ETP Flag ('Y' / 'N' / ' ').
    pub etp_flag: Code,
    /// ETP Leverage Factor.
    pub etp_leverage_factor: u32,
    /// Inverse Indicator ('Y' / 'N').
    pub inverse_indicator: Code,
}

impl StockDirectory {
    /// Message type byte.
    pub const TYPE: u8 = b'R';
    /// Length on the wire.
    pub const LENGTH: usize = 39;
}

/// Stock Trading Action 'H'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StockTradingAction {
    /// Common header.
    pub header: Header,
    /// Stock symbol.
    pub stock: Stock,
    /// Trading State ('H', 'P', 'Q', 'T').
    pub trading_state: Code,
    /// Reserved (normally a space).
    pub reserved: Code,
    /// Trading action reason.
    pub reason: TradingReason,
}

impl StockTradingAction {
    /// Message type byte.
    pub const TYPE: u8 = b'H';
    /// Length on the wire.
    pub const LENGTH: usize = 25;
}

/// Add Order (no MPID attribution) 'A'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddOrder {
    /// Common header.
    pub header: Header,
    /// Order Reference Number, unique for the day.
    pub order_reference_number: u64,
    /// Buy/Sell Indicator.
    pub side: Side,
    /// Shares.
    pub shares: u32,
    /// Stock symbol.
    pub stock: Stock,
    /// Display price.
    pub price: Price,
}

impl AddOrder {
    /// Message type byte.
    pub const TYPE: u8 = b'A';
    /// Length on the wire.
    pub const LENGTH: usize = 36;
}

/// Add Order with MPID Attribution 'F'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddOrderMpid {
    /// Common header.
    pub header: Header,
    /// Order Reference Number, unique for the day.
    pub order_reference_number: u64,
    /// Buy/Sell Indicator.
    pub side: Side,
    /// Shares.
    pub shares: u32,
    /// Stock symbol.
    pub stock: Stock,
    /// Display price.
    pub price: Price,
    /// Attribution (MPID).
    pub attribution: Mpid,
}

impl AddOrderMpid {
    /// Message type byte.
    pub const TYPE: u8 = b'F';
    /// Length on the wire.
    pub const LENGTH: usize = 40;
}

/// Order Executed 'E'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderExecuted {
    /// Common header.
    pub header: Header,
    /// Order Reference Number of the resting order.
    pub order_reference_number: u64,
    /// Executed Shares.
    pub executed_shares: u32,
    /// Match Number.
    pub match_number: u64,
}

impl OrderExecuted {
    /// Message type byte.
    pub const TYPE: u8 = b'E';
    /// Length on the wire.
    pub const LENGTH: usize = 31;
}

/// Order Executed With Price 'C'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderExecutedWithPrice {
    /// Common header.
    pub header: Header,
    /// Order Reference Number of the resting order.
    pub order_reference_number: u64,
    /// Executed Shares.
    pub executed_shares: u32,
    /// Match Number.
    pub match_number: u64,
    /// Printable ('Y' / 'N').
    pub printable: Code,
    /// Execution Price.
    pub execution_price: Price,
}

impl OrderExecutedWithPrice {
    /// Message type byte.
    pub const TYPE: u8 = b'C';
    /// Length on the wire.
    pub const LENGTH: usize = 36;
}

/// Order Cancel 'X' (partial cancellation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderCancel {
    /// Common header.
    pub header: Header,
    /// Order Reference Number.
    pub order_reference_number: u64,
    /// Cancelled Shares.
    pub cancelled_shares: u32,
}

impl OrderCancel {
    /// Message type byte.
    pub const TYPE: u8 = b'X';
    /// Length on the wire.
    pub const LENGTH: usize = 23;
}

/// Order Delete 'D'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderDelete {
    /// Common header.
    pub header: Header,
    /// Order Reference Number.
    pub order_reference_number: u64,
}

impl OrderDelete {
    /// Message type byte.
    pub const TYPE: u8 = b'D';
    /// Length on the wire.
    pub const LENGTH: usize = 19;
}

/// Order Replace 'U'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrderReplace {
    /// Common header.
    pub header: Header,
    /// Original Order Reference Number.
    pub original_order_reference_number: u64,
    /// New Order Reference Number.
    pub new_order_reference_number: u64,
    /// Shares.
    pub shares: u32,
    /// Price.
    pub price: Price,
}

impl OrderReplace {
    /// Message type byte.
    pub const TYPE: u8 = b'U';
    /// Length on the wire.
    pub const LENGTH: usize = 35;
}

/// Trade (non-cross) 'P': an execution against a non-displayed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trade {
    /// Common header.
    pub header: Header,
    /// Order Reference Number (0 since 2010 at Nasdaq).
    pub order_reference_number: u64,
    /// Buy/Sell Indicator of the non-displayed order.
    pub side: Side,
    /// Shares.
    pub shares: u32,
    /// Stock symbol.
    pub stock: Stock,
    /// Price.
    pub price: Price,
    /// Match Number.
    pub match_number: u64,
}

impl Trade {
    /// Message type byte.
    pub const TYPE: u8 = b'P';
    /// Length on the wire.
    pub const LENGTH: usize = 44;
}

/// Broken Trade 'B'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BrokenTrade {
    /// Common header.
    pub header: Header,
    /// Match Number of the broken execution.
    pub match_number: u64,
}

impl BrokenTrade {
    /// Message type byte.
    pub const TYPE: u8 = b'B';
    /// Length on the wire.
    pub const LENGTH: usize = 19;
}

/// One ITCH 5.0 message of the types this codec covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Message {
    /// 'S'
    SystemEvent(SystemEvent),
    /// 'R'
    StockDirectory(StockDirectory),
    /// 'H'
    StockTradingAction(StockTradingAction),
    /// 'A'
    AddOrder(AddOrder),
    /// 'F'
    AddOrderMpid(AddOrderMpid),
    /// 'E'
    OrderExecuted(OrderExecuted),
    /// 'C'
    OrderExecutedWithPrice(OrderExecutedWithPrice),
    /// 'X'
    OrderCancel(OrderCancel),
    /// 'D'
    OrderDelete(OrderDelete),
    /// 'U'
    OrderReplace(OrderReplace),
    /// 'P'
    Trade(Trade),
    /// 'B'
    BrokenTrade(BrokenTrade),
}

/// The length on the wire of a covered message type, `None` otherwise.
pub fn message_length(message_type: u8) -> Option<usize> {
    Some(match message_type {
        SystemEvent::TYPE => SystemEvent::LENGTH,
        StockDirectory::TYPE => StockDirectory::LENGTH,
        StockTradingAction::TYPE => StockTradingAction::LENGTH,
        AddOrder::TYPE => AddOrder::LENGTH,
        AddOrderMpid::TYPE => AddOrderMpid::LENGTH,
        OrderExecuted::TYPE => OrderExecuted::LENGTH,
        OrderExecutedWithPrice::TYPE => OrderExecutedWithPrice::LENGTH,
        OrderCancel::TYPE => OrderCancel::LENGTH,
        OrderDelete::TYPE => OrderDelete::LENGTH,
        OrderReplace::TYPE => OrderReplace::LENGTH,
        Trade::TYPE => Trade::LENGTH,
        BrokenTrade::TYPE => BrokenTrade::LENGTH,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Reads fields in order from a payload whose length has been checked.
struct Reader<'a> {
    rest: &'a [u8],
    message_type: u8,
    expected: usize,
    actual: usize,
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ItchError> {
        match self.rest.split_first_chunk::<N>() {
            Some((head, tail)) => {
                self.rest = tail;
                Ok(*head)
            }
            // Unreachable after the length check; an error, not a panic.
            None => Err(ItchError::Length {
                message_type: self.message_type,
                expected: self.expected,
                actual: self.actual,
            }),
        }
    }

    fn u8(&mut self) -> Result<u8, ItchError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ItchError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ItchError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ItchError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn price(&mut self) -> Result<Price, ItchError> {
        Ok(Price(self.u32()?))
    }

    fn side(&mut self) -> Result<Side, ItchError> {
        Side::from_byte(self.u8()?)
    }

    fn code(&mut self, field: &'static str) -> Result<Code, ItchError> {
        Code::decode(self.u8()?, field)
    }

    fn alpha<const N: usize>(&mut self, field: &'static str) -> Result<Alpha<N>, ItchError> {
        Alpha::from_bytes(self.array()?).ok_or(ItchError::InvalidAlpha { field })
    }

    fn header(&mut self) -> Result<Header, ItchError> {
        Ok(Header {
            stock_locate: self.u16()?,
            tracking_number: self.u16()?,
            timestamp: Timestamp::from_bytes(self.array()?),
        })
    }
}

impl Message {
    /// Decodes exactly one message from `bytes` (a whole MoldUDP64 message
    /// block payload). See the module documentation for the error cases.
    pub fn decode(bytes: &[u8]) -> Result<Self, ItchError> {
        let (&message_type, rest) = bytes.split_first().ok_or(ItchError::Empty)?;
        let expected = message_length(message_type).ok_or(ItchError::UnknownMessageType {
            message_type,
            length: bytes.len(),
        })?;
        if bytes.len() != expected {
            return Err(ItchError::Length {
                message_type,
                expected,
                actual: bytes.len(),
            });
        }
        let mut r = Reader {
            rest,
            message_type,
            expected,
            actual: bytes.len(),
        };
        let header = r.header()?;
        let message = match message_type {
            SystemEvent::TYPE => Self::SystemEvent(SystemEvent {
                header,
                event_code: r.code("Event Code")?,
            }),
            StockDirectory::TYPE => Self::StockDirectory(StockDirectory {
                header,
                stock: r.alpha("Stock")?,
                market_category: r.code("Market Category")?,
                financial_status_indicator: r.code("Financial Status Indicator")?,
                round_lot_size: r.u32()?,
                round_lots_only: r.code("Round Lots Only")?,
                issue_classification: r.code("Issue Classification")?,
                issue_sub_type: r.alpha("Issue Sub-Type")?,
                authenticity: r.code("Authenticity")?,
                short_sale_threshold_indicator: r.code("Short Sale Threshold Indicator")?,
                ipo_flag: r.code("IPO Flag")?,
                luld_reference_price_tier: r.code("LULD Reference Price Tier")?,
                etp_flag: r.code("ETP Flag")?,
                etp_leverage_factor: r.u32()?,
                inverse_indicator: r.code("Inverse Indicator")?,
            }),
            StockTradingAction::TYPE => Self::StockTradingAction(StockTradingAction {
                header,
                stock: r.alpha("Stock")?,
                trading_state: r.code("Trading State")?,
                reserved: r.code("Reserved")?,
                reason: r.alpha("Reason")?,
            }),
            AddOrder::TYPE => Self::AddOrder(AddOrder {
                header,
                order_reference_number: r.u64()?,
                side: r.side()?,
                shares: r.u32()?,
                stock: r.alpha("Stock")?,
                price: r.price()?,
            }),
            AddOrderMpid::TYPE => Self::AddOrderMpid(AddOrderMpid {
                header,
                order_reference_number: r.u64()?,
                side: r.side()?,
                shares: r.u32()?,
                stock: r.alpha("Stock")?,
                price: r.price()?,
                attribution: r.alpha("Attribution")?,
            }),
            OrderExecuted::TYPE => Self::OrderExecuted(OrderExecuted {
                header,
                order_reference_number: r.u64()?,
                executed_shares: r.u32()?,
                match_number: r.u64()?,
            }),
            OrderExecutedWithPrice::TYPE => Self::OrderExecutedWithPrice(OrderExecutedWithPrice {
                header,
                order_reference_number: r.u64()?,
                executed_shares: r.u32()?,
                match_number: r.u64()?,
                printable: r.code("Printable")?,
                execution_price: r.price()?,
            }),
            OrderCancel::TYPE => Self::OrderCancel(OrderCancel {
                header,
                order_reference_number: r.u64()?,
                cancelled_shares: r.u32()?,
            }),
            OrderDelete::TYPE => Self::OrderDelete(OrderDelete {
                header,
                order_reference_number: r.u64()?,
            }),
            OrderReplace::TYPE => Self::OrderReplace(OrderReplace {
                header,
                original_order_reference_number: r.u64()?,
                new_order_reference_number: r.u64()?,
                shares: r.u32()?,
                price: r.price()?,
            }),
            Trade::TYPE => Self::Trade(Trade {
                header,
                order_reference_number: r.u64()?,
                side: r.side()?,
                shares: r.u32()?,
                stock: r.alpha("Stock")?,
                price: r.price()?,
                match_number: r.u64()?,
            }),
            BrokenTrade::TYPE => Self::BrokenTrade(BrokenTrade {
                header,
                match_number: r.u64()?,
            }),
            // `message_length` covers exactly the arms above.
            _ => {
                return Err(ItchError::UnknownMessageType {
                    message_type,
                    length: bytes.len(),
                });
            }
        };
        Ok(message)
    }

    /// The message type byte.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::SystemEvent(_) => SystemEvent::TYPE,
            Self::StockDirectory(_) => StockDirectory::TYPE,
            Self::StockTradingAction(_) => StockTradingAction::TYPE,
            Self::AddOrder(_) => AddOrder::TYPE,
            Self::AddOrderMpid(_) => AddOrderMpid::TYPE,
            Self::OrderExecuted(_) => OrderExecuted::TYPE,
            Self::OrderExecutedWithPrice(_) => OrderExecutedWithPrice::TYPE,
            Self::OrderCancel(_) => OrderCancel::TYPE,
            Self::OrderDelete(_) => OrderDelete::TYPE,
            Self::OrderReplace(_) => OrderReplace::TYPE,
            Self::Trade(_) => Trade::TYPE,
            Self::BrokenTrade(_) => BrokenTrade::TYPE,
        }
    }

    /// The length on the wire.
    pub fn length(&self) -> usize {
        match self {
            Self::SystemEvent(_) => SystemEvent::LENGTH,
            Self::StockDirectory(_) => StockDirectory::LENGTH,
            Self::StockTradingAction(_) => StockTradingAction::LENGTH,
            Self::AddOrder(_) => AddOrder::LENGTH,
            Self::AddOrderMpid(_) => AddOrderMpid::LENGTH,
            Self::OrderExecuted(_) => OrderExecuted::LENGTH,
            Self::OrderExecutedWithPrice(_) => OrderExecutedWithPrice::LENGTH,
            Self::OrderCancel(_) => OrderCancel::LENGTH,
            Self::OrderDelete(_) => OrderDelete::LENGTH,
            Self::OrderReplace(_) => OrderReplace::LENGTH,
            Self::Trade(_) => Trade::LENGTH,
            Self::BrokenTrade(_) => BrokenTrade::LENGTH,
        }
    }

    /// The common header.
    pub fn header(&self) -> &Header {
        match self {
            Self::SystemEvent(m) => &m.header,
            Self::StockDirectory(m) => &m.header,
            Self::StockTradingAction(m) => &m.header,
            Self::AddOrder(m) => &m.header,
            Self::AddOrderMpid(m) => &m.header,
            Self::OrderExecuted(m) => &m.header,
            Self::OrderExecutedWithPrice(m) => &m.header,
            Self::OrderCancel(m) => &m.header,
            Self::OrderDelete(m) => &m.header,
            Self::OrderReplace(m) => &m.header,
            Self::Trade(m) => &m.header,
            Self::BrokenTrade(m) => &m.header,
        }
    }

    /// Appends the message (exactly [`Message::length`] bytes) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.length());
        out.push(self.message_type());
        let h = self.header();
        out.extend_from_slice(&h.stock_locate.to_be_bytes());
        out.extend_from_slice(&h.tracking_number.to_be_bytes());
        out.extend_from_slice(&h.timestamp.to_bytes());
        match self {
            Self::SystemEvent(m) => out.push(m.event_code.byte()),
            Self::StockDirectory(m) => {
                out.extend_from_slice(m.stock.as_bytes());
                out.push(m.market_category.byte());
                out.push(m.financial_status_indicator.byte());
                out.extend_from_slice(&m.round_lot_size.to_be_bytes());
                out.push(m.round_lots_only.byte());
                out.push(m.issue_classification.byte());
                out.extend_from_slice(m.issue_sub_type.as_bytes());
                out.push(m.authenticity.byte());
                out.push(m.short_sale_threshold_indicator.byte());
                out.push(m.ipo_flag.byte());
                out.push(m.luld_reference_price_tier.byte());
                out.push(m.etp_flag.byte());
                out.extend_from_slice(&m.etp_leverage_factor.to_be_bytes());
                out.push(m.inverse_indicator.byte());
            }
            Self::StockTradingAction(m) => {
                out.extend_from_slice(m.stock.as_bytes());
                out.push(m.trading_state.byte());
                out.push(m.reserved.byte());
                out.extend_from_slice(m.reason.as_bytes());
            }
            Self::AddOrder(m) => {
                out.extend_from_slice(&m.order_reference_number.to_be_bytes());
                out.push(m.side.byte());
                out.extend_from_slice(&m.shares.to_be_bytes());
                out.extend_from_slice(m.stock.as_bytes());
                out.extend_from_slice(&m.price.0.to_be_bytes());
            }
            Self::AddOrderMpid(m) => {
                out.extend_from_slice(&m.order_reference_number.to_be_bytes());
                out.push(m.side.byte());
                out.extend_from_slice(&m.shares.to_be_bytes());
                out.extend_from_slice(m.stock.as_bytes());
                out.extend_from_slice(&m.price.0.to_be_bytes());
                out.extend_from_slice(m.attribution.as_bytes());
            }
            Self::OrderExecuted(m) => {
                out.extend_from_slice(&m.order_reference_number.to_be_bytes());
                out.extend_from_slice(&m.executed_shares.to_be_bytes());
                out.extend_from_slice(&m.match_number.to_be_bytes());
            }
            Self::OrderExecutedWithPrice(m) => {
                out.extend_from_slice(&m.order_reference_number.to_be_bytes());
                out.extend_from_slice(&m.executed_shares.to_be_bytes());
                out.extend_from_slice(&m.match_number.to_be_bytes());
                out.push(m.printable.byte());
                out.extend_from_slice(&m.execution_price.0.to_be_bytes());
            }
            Self::OrderCancel(m) => {
                out.extend_from_slice(&m.order_reference_number.to_be_bytes());
                out.extend_from_slice(&m.cancelled_shares.to_be_bytes());
            }
            Self::OrderDelete(m) => {
                out.extend_from_slice(&m.order_reference_number.to_be_bytes());
            }
            Self::OrderReplace(m) => {
                out.extend_from_slice(&m.original_order_reference_number.to_be_bytes());
                out.extend_from_slice(&m.new_order_reference_number.to_be_bytes());
                out.extend_from_slice(&m.shares.to_be_bytes());
                out.extend_from_slice(&m.price.0.to_be_bytes());
            }
            Self::Trade(m) => {
                out.extend_from_slice(&m.order_reference_number.to_be_bytes());
                out.push(m.side.byte());
                out.extend_from_slice(&m.shares.to_be_bytes());
                out.extend_from_slice(m.stock.as_bytes());
                out.extend_from_slice(&m.price.0.to_be_bytes());
                out.extend_from_slice(&m.match_number.to_be_bytes());
            }
            Self::BrokenTrade(m) => {
                out.extend_from_slice(&m.match_number.to_be_bytes());
            }
        }
    }
}

#[cfg(test)]
// Golden arrays are written one field per line with its offset.
#[allow(clippy::byte_char_slices)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Header used by every golden test: locate 0x0102, tracking 0x0304,
    /// timestamp 0x1122_3344_5566.
    fn header() -> Header {
        Header {
            stock_locate: 0x0102,
            tracking_number: 0x0304,
            timestamp: Timestamp::new(0x1122_3344_5566).unwrap(),
        }
    }

    /// The golden header bytes after the type byte (offsets 1..11).
    const H: [u8; 10] = [0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

    fn code(b: u8) -> Code {
        Code::new(b).unwrap()
    }

    fn golden(type_byte: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![type_byte];
        v.extend_from_slice(&H);
        v.extend_from_slice(body);
        v
    }

    fn check(message: Message, expected: &[u8]) {
        assert_eq!(expected.len(), message.length());
        let mut out = Vec::new();
        message.encode(&mut out);
        assert_eq!(out, expected, "encode {message:?}");
        assert_eq!(Message::decode(expected), Ok(message));
    }

    #[test]
    fn golden_system_event() {
        let expected = golden(
            b'S',
            &[
                b'O', // 11 Event Code
            ],
        );
        check(
            Message::SystemEvent(SystemEvent {
                header: header(),
                event_code: code(b'O'),
            }),
            &expected,
        );
        assert_eq!(expected.len(), 12);
    }

    #[test]
    fn golden_stock_directory() {
        let expected = golden(
            b'R',
            &[
                b'A', b'C', b'M', b'E', b' ', b' ', b' ', b' ', // 11 Stock
                b'Q', // 19 Market Category
                b'N', // 20 Financial Status Indicator
                0x00, 0x00, 0x00, 0x64, // 21 Round Lot Size = 100
                b'N', // 25 Round Lots Only
                b'C', // 26 Issue Classification
                b'Z', b' ', // 27 Issue Sub-Type
                b'P', // 29 Authenticity
                b'N', // 30 Short Sale Threshold Indicator
                b'N', // 31 IPO Flag
                b'1', // 32 LULD Reference Price Tier
                b'N', // 33 ETP Flag
                0x00, 0x00, 0x00, 0x02, // 34 ETP Leverage Factor = 2
                b'N', // 38 Inverse Indicator
            ],
        );
        assert_eq!(expected.len(), 39);
        check(
            Message::StockDirectory(StockDirectory {
                header: header(),
                stock: Stock::new("ACME").unwrap(),
                market_category: code(b'Q'),
                financial_status_indicator: code(b'N'),
                round_lot_size: 100,
                round_lots_only: code(b'N'),
                issue_classification: code(b'C'),
                issue_sub_type: IssueSubType::new("Z").unwrap(),
                authenticity: code(b'P'),
                short_sale_threshold_indicator: code(b'N'),
                ipo_flag: code(b'N'),
                luld_reference_price_tier: code(b'1'),
                etp_flag: code(b'N'),
                etp_leverage_factor: 2,
                inverse_indicator: code(b'N'),
            }),
            &expected,
        );
    }

    #[test]
    fn golden_stock_trading_action() {
        let expected = golden(
            b'H',
            &[
                b'A', b'C', b'M', b'E', b' ', b' ', b' ', b' ', // 11 Stock
                b'H', // 19 Trading State
                b' ', // 20 Reserved
                b'L', b'U', b'D', b'P', // 21 Reason
            ],
        );
        assert_eq!(expected.len(), 25);
        check(
            Message::StockTradingAction(StockTradingAction {
                header: header(),
                stock: Stock::new("ACME").unwrap(),
                trading_state: code(b'H'),
                reserved: code(b' '),
                reason: TradingReason::new("LUDP").unwrap(),
            }),
            &expected,
        );
    }

    #[test]
    fn golden_add_order() {
        let expected = golden(
            b'A',
            &[
                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 11 Order Reference Number
                b'B', // 19 Buy/Sell Indicator
                0x00, 0x00, 0x01, 0x2c, // 20 Shares = 300
                b'A', b'C', b'M', b'E', b' ', b' ', b' ', b' ', // 24 Stock
                0x00, 0x16, 0xf0, 0x38, // 32 Price = 1_503_288 ($150.3288)
            ],
        );
        assert_eq!(expected.len(), 36);
        check(
            Message::AddOrder(AddOrder {
                header: header(),
                order_reference_number: 0x0102_0304_0506_0708,
                side: Side::Buy,
                shares: 300,
                stock: Stock::new("ACME").unwrap(),
                price: Price(0x0016_f038),
            }),
            &expected,
        );
        assert_eq!(0x0016_f038, 1_503_288);
    }

    #[test]
    fn golden_add_order_mpid() {
        let expected = golden(
            b'F',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x2a, // 11 Order Reference Number = 42
                b'S', // 19 Buy/Sell Indicator
                0x00, 0x00, 0x00, 0x64, // 20 Shares = 100
                b'Z', b'V', b'Z', b'Z', b'T', b' ', b' ', b' ', // 24 Stock
                0x00, 0x01, 0x86, 0xa0, // 32 Price = 100_000 ($10.0000)
                b'N', b'S', b'D', b'Q', // 36 Attribution
            ],
        );
        assert_eq!(expected.len(), 40);
        check(
            Message::AddOrderMpid(AddOrderMpid {
                header: header(),
                order_reference_number: 42,
                side: Side::Sell,
                shares: 100,
                stock: Stock::new("ZVZZT").unwrap(),
                price: Price(10 * PRICE_SCALE),
                attribution: Mpid::new("NSDQ").unwrap(),
            }),
            &expected,
        );
    }

    #[test]
    fn golden_order_executed() {
        let expected = golden(
            b'E',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x2a, // 11 Order Reference Number = 42
                0x00, 0x00, 0x00, 0x0a, // 19 Executed Shares = 10
                0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, // 23 Match Number
            ],
        );
        assert_eq!(expected.len(), 31);
        check(
            Message::OrderExecuted(OrderExecuted {
                header: header(),
                order_reference_number: 42,
                executed_shares: 10,
                match_number: 0xffee_ddcc_bbaa_9988,
            }),
            &expected,
        );
    }

    #[test]
    fn golden_order_executed_with_price() {
        let expected = golden(
            b'C',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x2a, // 11 Order Reference Number = 42
                0x00, 0x00, 0x00, 0x0a, // 19 Executed Shares = 10
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // 23 Match Number = 7
                b'Y', // 31 Printable
                0xff, 0xff, 0xff, 0xff, // 32 Execution Price = u32::MAX
            ],
        );
        assert_eq!(expected.len(), 36);
        check(
            Message::OrderExecutedWithPrice(OrderExecutedWithPrice {
                header: header(),
                order_reference_number: 42,
                executed_shares: 10,
                match_number: 7,
                printable: code(b'Y'),
                execution_price: Price(u32::MAX),
            }),
            &expected,
        );
    }

    #[test]
    fn golden_order_cancel() {
        let expected = golden(
            b'X',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x2a, // 11 Order Reference Number = 42
                0x00, 0x01, 0x00, 0x00, // 19 Cancelled Shares = 65_536
            ],
        );
        assert_eq!(expected.len(), 23);
        check(
            Message::OrderCancel(OrderCancel {
                header: header(),
                order_reference_number: 42,
                cancelled_shares: 65_536,
            }),
            &expected,
        );
    }

    #[test]
    fn golden_order_delete() {
        let expected = golden(
            b'D',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x2a, // 11 Order Reference Number = 42
            ],
        );
        assert_eq!(expected.len(), 19);
        check(
            Message::OrderDelete(OrderDelete {
                header: header(),
                order_reference_number: 42,
            }),
            &expected,
        );
    }

    #[test]
    fn golden_order_replace() {
        let expected = golden(
            b'U',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // 11 Original Order Ref = 42
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2b, // 19 New Order Ref = 43
                0x00, 0x00, 0x00, 0xc8, // 27 Shares = 200
                0x00, 0x01, 0x86, 0xa1, // 31 Price = 100_001
            ],
        );
        assert_eq!(expected.len(), 35);
        check(
            Message::OrderReplace(OrderReplace {
                header: header(),
                original_order_reference_number: 42,
                new_order_reference_number: 43,
                shares: 200,
                price: Price(100_001),
            }),
            &expected,
        );
    }

    #[test]
    fn golden_trade() {
        let expected = golden(
            b'P',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, // 11 Order Reference Number = 0
                b'B', // 19 Buy/Sell Indicator
                0x00, 0x00, 0x00, 0x05, // 20 Shares = 5
                b'A', b'B', b'C', b'D', b'E', b'F', b'G', b'H', // 24 Stock (full 8)
                0x00, 0x00, 0x27, 0x10, // 32 Price = 10_000 ($1.0000)
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // 36 Match Number = 256
            ],
        );
        assert_eq!(expected.len(), 44);
        check(
            Message::Trade(Trade {
                header: header(),
                order_reference_number: 0,
                side: Side::Buy,
                shares: 5,
                stock: Stock::new("ABCDEFGH").unwrap(),
                price: Price(PRICE_SCALE),
                match_number: 256,
            }),
            &expected,
        );
    }

    #[test]
    fn golden_broken_trade() {
        let expected = golden(
            b'B',
            &[
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // 11 Match Number = 256
            ],
        );
        assert_eq!(expected.len(), 19);
        check(
            Message::BrokenTrade(BrokenTrade {
                header: header(),
                match_number: 256,
            }),
            &expected,
        );
    }

    #[test]
    fn golden_realistic_timestamp() {
        // 09:30:00.000000000 = 34_200_000_000_000 ns = 0x1F1A_CED9_F000.
        let message = Message::SystemEvent(SystemEvent {
            header: Header {
                stock_locate: 0,
                tracking_number: 0,
                timestamp: Timestamp::new(34_200_000_000_000).unwrap(),
            },
            event_code: code(b'Q'),
        });
        let expected = [
            b'S', // 0 Message Type
            0x00, 0x00, // 1 Stock Locate
            0x00, 0x00, // 3 Tracking Number
            0x1f, 0x1a, 0xce, 0xd9, 0xf0, 0x00, // 5 Timestamp
            b'Q', // 11 Event Code
        ];
        check(message, &expected);
    }

    #[test]
    fn timestamp_bounds() {
        assert_eq!(Timestamp::new(0), Some(Timestamp::ZERO));
        let max = Timestamp::new(Timestamp::MAX).unwrap();
        assert_eq!(max.nanos(), (1 << 48) - 1);
        assert!(Timestamp::new(1 << 48).is_none());
        assert!(Timestamp::new(u64::MAX).is_none());
        let message = Message::BrokenTrade(BrokenTrade {
            header: Header {
                stock_locate: u16::MAX,
                tracking_number: u16::MAX,
                timestamp: max,
            },
            match_number: u64::MAX,
        });
        let mut out = Vec::new();
        message.encode(&mut out);
        assert_eq!(&out[5..11], &[0xff; 6]);
        assert_eq!(out, [&[b'B'][..], &[0xff; 18][..]].concat());
        assert_eq!(Message::decode(&out), Ok(message));
    }

    #[test]
    fn wrong_lengths_rejected() {
        for t in *b"SRHAFECXDUPB" {
            let len = message_length(t).unwrap();
            let mut bytes = vec![b'A'; len + 1];
            bytes[0] = t;
            assert_eq!(
                Message::decode(&bytes),
                Err(ItchError::Length {
                    message_type: t,
                    expected: len,
                    actual: len + 1
                })
            );
            for short in 1..len {
                assert_eq!(
                    Message::decode(&bytes[..short]),
                    Err(ItchError::Length {
                        message_type: t,
                        expected: len,
                        actual: short
                    })
                );
            }
        }
    }

    #[test]
    fn empty_and_unknown_types() {
        assert_eq!(Message::decode(&[]), Err(ItchError::Empty));
        // 'L' (Market Participant Position, 26 bytes) is a real ITCH 5.0
        // type this codec does not cover.
        assert_eq!(
            Message::decode(&[b'L'; 26]),
            Err(ItchError::UnknownMessageType {
                message_type: b'L',
                length: 26
            })
        );
        assert_eq!(
            Message::decode(&[0x00]),
            Err(ItchError::UnknownMessageType {
                message_type: 0,
                length: 1
            })
        );
        for t in 0..=u8::MAX {
            if message_length(t).is_none() {
                assert!(matches!(
                    Message::decode(&[t, 1, 2, 3]),
                    Err(ItchError::UnknownMessageType { .. })
                ));
            }
        }
    }

    #[test]
    fn invalid_fields_rejected() {
        let mut add = golden(
            b'A',
            &[
                0, 0, 0, 0, 0, 0, 0, 1, b'B', 0, 0, 0, 1, b'A', b' ', b' ', b' ', b' ', b' ', b' ',
                b' ', 0, 0, 0, 1,
            ],
        );
        assert!(Message::decode(&add).is_ok());
        add[19] = b'T';
        assert_eq!(
            Message::decode(&add),
            Err(ItchError::InvalidCode {
                field: "Buy/Sell Indicator",
                value: b'T'
            })
        );
        add[19] = b'S';
        add[25] = 0x00;
        assert_eq!(
            Message::decode(&add),
            Err(ItchError::InvalidAlpha { field: "Stock" })
        );
        let event = golden(b'S', &[0x7f]);
        assert_eq!(
            Message::decode(&event),
            Err(ItchError::InvalidCode {
                field: "Event Code",
                value: 0x7f
            })
        );
    }

    #[test]
    fn alpha_and_code_constructors() {
        assert_eq!(Stock::new("").unwrap(), Stock::BLANK);
        assert!(Stock::new("ABCDEFGHI").is_none());
        assert!(Stock::new("AB\u{7f}").is_none());
        assert!(Stock::new("é").is_none());
        assert_eq!(Mpid::new("GS").unwrap().as_bytes(), b"GS  ");
        assert_eq!(format!("{:?}", Stock::new("ACME").unwrap()), "\"ACME\"");
        assert!(Code::new(b'\n').is_none());
        assert_eq!(Code::new(b' ').unwrap().byte(), b' ');
        assert_eq!(Side::from_byte(Side::Buy.byte()), Ok(Side::Buy));
        assert_eq!(Side::from_byte(Side::Sell.byte()), Ok(Side::Sell));
        assert!(!ItchError::Empty.to_string().is_empty());
    }

    // -- property tests ----------------------------------------------------

    fn arb_alpha<const N: usize>() -> impl Strategy<Value = Alpha<N>> {
        proptest::array::uniform::<_, N>(0x20u8..=0x7e)
            .prop_map(|bytes| Alpha::from_bytes(bytes).expect("printable"))
    }

    fn arb_code() -> impl Strategy<Value = Code> {
        (0x20u8..=0x7e).prop_map(Code)
    }

    fn arb_side() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }

    fn arb_header() -> impl Strategy<Value = Header> {
        (any::<u16>(), any::<u16>(), 0..=Timestamp::MAX).prop_map(|(l, t, ts)| Header {
            stock_locate: l,
            tracking_number: t,
            timestamp: Timestamp(ts),
        })
    }

    fn arb_price() -> impl Strategy<Value = Price> {
        any::<u32>().prop_map(Price)
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (arb_header(), arb_code()).prop_map(|(header, event_code)| {
                Message::SystemEvent(SystemEvent { header, event_code })
            }),
            (
                (
                    arb_header(),
                    arb_alpha(),
                    arb_code(),
                    arb_code(),
                    any::<u32>()
                ),
                (arb_code(), arb_code(), arb_alpha(), arb_code(), arb_code()),
                (arb_code(), arb_code(), arb_code(), any::<u32>(), arb_code()),
            )
                .prop_map(
                    |((h, s, mc, fs, rl), (rlo, ic, ist, au, ss), (ipo, luld, etp, lev, inv))| {
                        Message::StockDirectory(StockDirectory {
                            header: h,
                            stock: s,
                            market_category: mc,
                            financial_status_indicator: fs,
                            round_lot_size: rl,
                            round_lots_only: rlo,
                            issue_classification: ic,
                            issue_sub_type: ist,
                            authenticity: au,
                            short_sale_threshold_indicator: ss,
                            ipo_flag: ipo,
                            luld_reference_price_tier: luld,
                            etp_flag: etp,
                            etp_leverage_factor: lev,
                            inverse_indicator: inv,
                        })
                    }
                ),
            (
                arb_header(),
                arb_alpha(),
                arb_code(),
                arb_code(),
                arb_alpha()
            )
                .prop_map(|(header, stock, trading_state, reserved, reason)| {
                    Message::StockTradingAction(StockTradingAction {
                        header,
                        stock,
                        trading_state,
                        reserved,
                        reason,
                    })
                }),
            (
                arb_header(),
                any::<u64>(),
                arb_side(),
                any::<u32>(),
                arb_alpha(),
                arb_price()
            )
                .prop_map(
                    |(header, order_reference_number, side, shares, stock, price)| {
                        Message::AddOrder(AddOrder {
                            header,
                            order_reference_number,
                            side,
                            shares,
                            stock,
                            price,
                        })
                    }
                ),
            (
                arb_header(),
                any::<u64>(),
                arb_side(),
                any::<u32>(),
                arb_alpha(),
                arb_price(),
                arb_alpha()
            )
                .prop_map(
                    |(header, order_reference_number, side, shares, stock, price, attribution)| {
                        Message::AddOrderMpid(AddOrderMpid {
                            header,
                            order_reference_number,
                            side,
                            shares,
                            stock,
                            price,
                            attribution,
                        })
                    }
                ),
            (arb_header(), any::<u64>(), any::<u32>(), any::<u64>()).prop_map(
                |(header, order_reference_number, executed_shares, match_number)| {
                    Message::OrderExecuted(OrderExecuted {
                        header,
                        order_reference_number,
                        executed_shares,
                        match_number,
                    })
                }
            ),
            (
                arb_header(),
                any::<u64>(),
                any::<u32>(),
                any::<u64>(),
                arb_code(),
                arb_price()
            )
                .prop_map(|(header, o, e, m, printable, execution_price)| {
                    Message::OrderExecutedWithPrice(OrderExecutedWithPrice {
                        header,
                        order_reference_number: o,
                        executed_shares: e,
                        match_number: m,
                        printable,
                        execution_price,
                    })
                }),
            (arb_header(), any::<u64>(), any::<u32>()).prop_map(
                |(header, order_reference_number, cancelled_shares)| {
                    Message::OrderCancel(OrderCancel {
                        header,
                        order_reference_number,
                        cancelled_shares,
                    })
                }
            ),
            (arb_header(), any::<u64>()).prop_map(|(header, order_reference_number)| {
                Message::OrderDelete(OrderDelete {
                    header,
                    order_reference_number,
                })
            }),
            (
                arb_header(),
                any::<u64>(),
                any::<u64>(),
                any::<u32>(),
                arb_price()
            )
                .prop_map(|(header, o, n, shares, price)| {
                    Message::OrderReplace(OrderReplace {
                        header,
                        original_order_reference_number: o,
                        new_order_reference_number: n,
                        shares,
                        price,
                    })
                }),
            (
                arb_header(),
                any::<u64>(),
                arb_side(),
                any::<u32>(),
                arb_alpha(),
                arb_price(),
                any::<u64>()
            )
                .prop_map(|(header, o, side, shares, stock, price, match_number)| {
                    Message::Trade(Trade {
                        header,
                        order_reference_number: o,
                        side,
                        shares,
                        stock,
                        price,
                        match_number,
                    })
                }),
            (arb_header(), any::<u64>()).prop_map(|(header, match_number)| {
                Message::BrokenTrade(BrokenTrade {
                    header,
                    match_number,
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_is_canonical(
            bytes in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            if let Ok(message) = Message::decode(&bytes) {
                let mut out = Vec::new();
                message.encode(&mut out);
                prop_assert_eq!(out, bytes);
            }
        }

        #[test]
        fn decode_never_panics_on_known_types_of_exact_length(
            bytes in prop::sample::select(b"SRHAFECXDUPB".to_vec()).prop_flat_map(|t| {
                let len = message_length(t).unwrap_or(1);
                proptest::collection::vec(any::<u8>(), len..=len).prop_map(move |mut v| {
                    v[0] = t;
                    v
                })
            })
        ) {
            if let Ok(message) = Message::decode(&bytes) {
                let mut out = Vec::new();
                message.encode(&mut out);
                prop_assert_eq!(out, bytes);
            }
        }

        #[test]
        fn valid_messages_round_trip(message in arb_message()) {
            let mut out = vec![0xaa];
            message.encode(&mut out);
            prop_assert_eq!(out.len(), 1 + message.length());
            prop_assert_eq!(out[1], message.message_type());
            prop_assert_eq!(Message::decode(&out[1..]), Ok(message));
            // One byte short or long is rejected.
            prop_assert!(Message::decode(&out[1..out.len() - 1]).is_err());
            out.push(0);
            prop_assert!(Message::decode(&out[1..]).is_err());
        }
    }
}
