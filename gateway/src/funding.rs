//! The project's funding messages (port 9002): a sans-I/O codec for the
//! payloads that travel inside SoupBinTCP data packets on a session whose
//! login has the `fund` entitlement.
//!
//! Source: `docs/protocol.md`, "Funding messages (port 9002)". These are the
//! project's own messages, not part of OUCH; they follow its conventions.
//!
//! # Data types
//!
//! - Integers are unsigned, big-endian binary (`u8`, `u16`, `u32`, `u64`).
//! - Amounts are in the asset's minor units (for USD, scale 4, `1` is
//!   0.0001 USD).
//! - Timestamps are nanoseconds since the Unix epoch, taken from the journal.
//! - Transfer ids are client-chosen, strictly increasing per account (the
//!   `from` account of a transfer).
//!
//! # Requests (client to server)
//!
//! ```text
//! Deposit 'D' / Withdrawal 'W' (23)    Transfer 'T' (27)             Balance Query 'B' (5)
//! off len field                        off len field                 off len field
//!   0   1 Type 'D' or 'W'                0   1 Type 'T'                0   1 Type 'B'
//!   1   8 Transfer id (u64)              1   8 Transfer id (u64)       1   4 Account (u32)
//!   9   4 Account (u32)                  9   4 From account (u32)
//!  13   2 Asset (u16)                   13   4 To account (u32)
//!  15   8 Amount (u64, > 0)             17   2 Asset (u16)
//!                                       19   8 Amount (u64)
//! ```
//!
//! # Replies (server to client)
//!
//! ```text
//! Funding Applied 'A' (41)             Funding Rejected 'J' (24)     Balance Report 'R' (16 + 18 × n)
//! off len field                        off len field                 off len field
//!   0   1 Type 'A'                       0   1 Type 'J'                0   1 Type 'R'
//!   1   8 Timestamp (u64)                1   8 Timestamp (u64)         1   8 Timestamp (u64)
//!   9   8 Transfer id (u64)              9   8 Transfer id (u64)       9   4 Account (u32)
//!  17   1 Kind 'D', 'W' or 'T'          17   1 Kind 'D', 'W' or 'T'   13   1 Status 'A' / 'S'
//!  18   1 Repeat 'N' or 'Y'             18   1 Repeat 'N' or 'Y'      14   2 Count n (u16)
//!  19   4 Account (u32; from account)   19   4 Account (u32)          16 18n per asset:
//!  23   4 To account (u32; 0 unless T)  23   1 Reason (u8)                    asset (u16)
//!  27   2 Asset (u16)                                                         available (u64)
//!  29   8 Amount (u64)                                                        held (u64)
//!  37   4 Reserved (0)
//! ```
//!
//! A payload is decoded with [`Request::decode`] or [`Reply::decode`]
//! according to who sent it; the letters of one direction are an unknown
//! message type in the other.
//!
//! # Guarantees
//!
//! Decoding never panics on any input and consumes the payload exactly: a
//! message of any length other than its type's is a
//! [`FundingError::WrongLength`] (no trailing bytes are accepted), and a
//! Balance Report whose length does not match its count is a
//! [`FundingError::BalanceCountMismatch`]. Decoding allocates nothing except
//! the list of a Balance Report. Encoding appends to a caller-owned
//! `Vec<u8>`; a server can write a Balance Report without building a list
//! with [`encode_balance_report_header`] and [`encode_asset_balance`].
//!
//! Decoding is strict about the bytes it can check: enumerated bytes (kind,
//! repeat, status) must be defined, the reserved field of Funding Applied
//! must be zero, and so must its to account unless the kind is a transfer.
//! It does not check what the engine checks: a zero amount, a transfer to
//! the same account or an unknown asset is a well-formed request that the
//! engine rejects with its own code. The reject reason is carried as the raw
//! engine code (`docs/engine.md`, "Reject codes") so that codes added later
//! still decode.

use core::fmt;

/// Length of a Deposit or Withdrawal request.
pub const FUNDING_LEN: usize = 23;
/// Length of a Transfer request.
pub const TRANSFER_LEN: usize = 27;
/// Length of a Balance Query request.
pub const BALANCE_QUERY_LEN: usize = 5;
/// Length of a Funding Applied reply.
pub const APPLIED_LEN: usize = 41;
/// Length of a Funding Rejected reply.
pub const REJECTED_LEN: usize = 24;
/// Length of a Balance Report before its per-asset entries.
pub const BALANCE_REPORT_HEADER_LEN: usize = 16;
/// Length of one per-asset entry of a Balance Report.
pub const ASSET_BALANCE_LEN: usize = 18;

/// Deposit request type byte.
pub const DEPOSIT: u8 = b'D';
/// Withdrawal request type byte.
pub const WITHDRAWAL: u8 = b'W';
/// Transfer request type byte.
pub const TRANSFER: u8 = b'T';
/// Balance Query request type byte.
pub const BALANCE_QUERY: u8 = b'B';
/// Funding Applied reply type byte.
pub const APPLIED: u8 = b'A';
/// Funding Rejected reply type byte.
pub const REJECTED: u8 = b'J';
/// Balance Report reply type byte.
pub const BALANCE_REPORT: u8 = b'R';

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a payload is not a valid funding message. Every decode failure is one
/// of these; decoding never panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FundingError {
    /// The payload is empty: there is no message type byte.
    Empty,
    /// The message type byte is not one this codec knows for the direction.
    UnknownMessageType {
        /// The type byte as received.
        message_type: u8,
    },
    /// The payload is not the length its type requires (for a Balance
    /// Report: shorter than its fixed header).
    WrongLength {
        /// The type byte of the message being decoded.
        message_type: u8,
        /// The length the type requires (the header, for a Balance Report).
        expected: usize,
        /// The payload length as received.
        got: usize,
    },
    /// An enumerated one-byte field holds a value the protocol does not
    /// define.
    InvalidCode {
        /// The field name, as in `docs/protocol.md`.
        field: &'static str,
        /// The byte as received.
        value: u8,
    },
    /// A reserved field is not zero.
    ReservedNotZero {
        /// The type byte of the message being decoded.
        message_type: u8,
        /// The reserved field as received.
        value: u32,
    },
    /// Funding Applied for a deposit or withdrawal names a to account.
    ToAccountNotZero {
        /// The kind of funding.
        kind: FundingKind,
        /// The to account as received.
        to: u32,
    },
    /// A Balance Report's length is not 16 + 18 × its count.
    BalanceCountMismatch {
        /// The count as received.
        count: u16,
        /// The payload length as received.
        length: usize,
    },
}

impl fmt::Display for FundingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => write!(f, "empty funding payload"),
            Self::UnknownMessageType { message_type } => {
                write!(f, "unknown funding message type 0x{message_type:02x}")
            }
            Self::WrongLength {
                message_type,
                expected,
                got,
            } => write!(
                f,
                "funding message '{}' has {got} bytes, expected {expected}",
                char::from(message_type)
            ),
            Self::InvalidCode { field, value } => {
                write!(f, "invalid {field} value 0x{value:02x}")
            }
            Self::ReservedNotZero {
                message_type,
                value,
            } => write!(
                f,
                "reserved field of funding message '{}' is 0x{value:08x}, not 0",
                char::from(message_type)
            ),
            Self::ToAccountNotZero { kind, to } => {
                write!(f, "to account {to} in a {kind:?} (only a transfer has one)")
            }
            Self::BalanceCountMismatch { count, length } => write!(
                f,
                "balance report of {length} bytes does not hold {count} assets"
            ),
        }
    }
}

impl std::error::Error for FundingError {}

// ---------------------------------------------------------------------------
// Field types
// ---------------------------------------------------------------------------

/// What a funding result is about: the kind byte of Funding Applied and
/// Funding Rejected (the same letters as the request types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FundingKind {
    /// Deposit, 'D'.
    Deposit,
    /// Withdrawal, 'W'.
    Withdrawal,
    /// Transfer between two accounts, 'T'.
    Transfer,
}

impl FundingKind {
    /// Every value, in declaration order.
    pub const ALL: &'static [Self] = &[Self::Deposit, Self::Withdrawal, Self::Transfer];

    /// The value for a wire byte.
    pub fn from_byte(byte: u8) -> Result<Self, FundingError> {
        match byte {
            DEPOSIT => Ok(Self::Deposit),
            WITHDRAWAL => Ok(Self::Withdrawal),
            TRANSFER => Ok(Self::Transfer),
            _ => Err(FundingError::InvalidCode {
                field: "kind",
                value: byte,
            }),
        }
    }

    /// The wire byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Deposit => DEPOSIT,
            Self::Withdrawal => WITHDRAWAL,
            Self::Transfer => TRANSFER,
        }
    }
}

fn repeat_from_byte(byte: u8) -> Result<bool, FundingError> {
    match byte {
        b'N' => Ok(false),
        b'Y' => Ok(true),
        _ => Err(FundingError::InvalidCode {
            field: "repeat",
            value: byte,
        }),
    }
}

fn repeat_byte(repeat: bool) -> u8 {
    if repeat { b'Y' } else { b'N' }
}

fn suspended_from_byte(byte: u8) -> Result<bool, FundingError> {
    match byte {
        b'A' => Ok(false),
        b'S' => Ok(true),
        _ => Err(FundingError::InvalidCode {
            field: "status",
            value: byte,
        }),
    }
}

fn status_byte(suspended: bool) -> u8 {
    if suspended { b'S' } else { b'A' }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// Deposit or Withdrawal: the body of [`Request::Deposit`] and
/// [`Request::Withdrawal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Funding {
    /// Client transfer id, strictly increasing per account.
    pub transfer_id: u64,
    /// The account credited or debited.
    pub account: u32,
    /// The asset.
    pub asset: u16,
    /// Minor units; zero is well-formed (the engine rejects it).
    pub amount: u64,
}

/// Transfer between two accounts: the body of [`Request::Transfer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransferRequest {
    /// Client transfer id, scoped to the from account.
    pub transfer_id: u64,
    /// The account debited.
    pub from: u32,
    /// The account credited.
    pub to: u32,
    /// The asset.
    pub asset: u16,
    /// Minor units; zero is well-formed (the engine rejects it).
    pub amount: u64,
}

/// A funding request (client to server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Request {
    /// Deposit 'D'.
    Deposit(Funding),
    /// Withdrawal 'W'.
    Withdrawal(Funding),
    /// Transfer 'T'.
    Transfer(TransferRequest),
    /// Balance Query 'B'.
    BalanceQuery {
        /// The account whose balances are asked for.
        account: u32,
    },
}

impl Request {
    /// Decodes one request payload, which must be exactly one message.
    pub fn decode(payload: &[u8]) -> Result<Self, FundingError> {
        let &message_type = payload.first().ok_or(FundingError::Empty)?;
        match message_type {
            DEPOSIT | WITHDRAWAL => {
                let mut r = Reader::exact(payload, FUNDING_LEN)?;
                let funding = Funding {
                    transfer_id: r.u64()?,
                    account: r.u32()?,
                    asset: r.u16()?,
                    amount: r.u64()?,
                };
                Ok(if message_type == DEPOSIT {
                    Self::Deposit(funding)
                } else {
                    Self::Withdrawal(funding)
                })
            }
            TRANSFER => {
                let mut r = Reader::exact(payload, TRANSFER_LEN)?;
                Ok(Self::Transfer(TransferRequest {
                    transfer_id: r.u64()?,
                    from: r.u32()?,
                    to: r.u32()?,
                    asset: r.u16()?,
                    amount: r.u64()?,
                }))
            }
            BALANCE_QUERY => {
                let mut r = Reader::exact(payload, BALANCE_QUERY_LEN)?;
                Ok(Self::BalanceQuery { account: r.u32()? })
            }
            _ => Err(FundingError::UnknownMessageType { message_type }),
        }
    }

    /// Appends the encoded request to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(self.message_type());
        match *self {
            Self::Deposit(ref funding) | Self::Withdrawal(ref funding) => {
                out.extend_from_slice(&funding.transfer_id.to_be_bytes());
                out.extend_from_slice(&funding.account.to_be_bytes());
                out.extend_from_slice(&funding.asset.to_be_bytes());
                out.extend_from_slice(&funding.amount.to_be_bytes());
            }
            Self::Transfer(ref transfer) => {
                out.extend_from_slice(&transfer.transfer_id.to_be_bytes());
                out.extend_from_slice(&transfer.from.to_be_bytes());
                out.extend_from_slice(&transfer.to.to_be_bytes());
                out.extend_from_slice(&transfer.asset.to_be_bytes());
                out.extend_from_slice(&transfer.amount.to_be_bytes());
            }
            Self::BalanceQuery { account } => {
                out.extend_from_slice(&account.to_be_bytes());
            }
        }
    }

    /// The type byte on the wire.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::Deposit(_) => DEPOSIT,
            Self::Withdrawal(_) => WITHDRAWAL,
            Self::Transfer(_) => TRANSFER,
            Self::BalanceQuery { .. } => BALANCE_QUERY,
        }
    }

    /// The number of bytes [`Request::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Deposit(_) | Self::Withdrawal(_) => FUNDING_LEN,
            Self::Transfer(_) => TRANSFER_LEN,
            Self::BalanceQuery { .. } => BALANCE_QUERY_LEN,
        }
    }

    /// The funding kind, `None` for a Balance Query.
    pub fn kind(&self) -> Option<FundingKind> {
        match self {
            Self::Deposit(_) => Some(FundingKind::Deposit),
            Self::Withdrawal(_) => Some(FundingKind::Withdrawal),
            Self::Transfer(_) => Some(FundingKind::Transfer),
            Self::BalanceQuery { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// Funding Applied 'A': the request took effect (or, with `repeat`, a repeat
/// of one that did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Applied {
    /// Nanoseconds since the Unix epoch, from the journal.
    pub timestamp_ns: u64,
    /// The client transfer id.
    pub transfer_id: u64,
    /// Deposit, withdrawal or transfer.
    pub kind: FundingKind,
    /// `true` ('Y') when this answers a repeat of the first request.
    pub repeat: bool,
    /// The account (the from account of a transfer).
    pub account: u32,
    /// The to account of a transfer; must be 0 for any other kind.
    pub to: u32,
    /// The asset.
    pub asset: u16,
    /// Minor units.
    pub amount: u64,
}

/// Funding Rejected 'J': the engine rejected a well-formed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rejected {
    /// Nanoseconds since the Unix epoch, from the journal.
    pub timestamp_ns: u64,
    /// The client transfer id.
    pub transfer_id: u64,
    /// Deposit, withdrawal or transfer.
    pub kind: FundingKind,
    /// `true` ('Y') when this answers a repeat of the first request.
    pub repeat: bool,
    /// The account (the from account of a transfer).
    pub account: u32,
    /// The engine's reject code (`docs/engine.md`), carried as is.
    pub reason: u8,
}

/// One asset of a Balance Report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssetBalance {
    /// The asset.
    pub asset: u16,
    /// Minor units free to use.
    pub available: u64,
    /// Minor units held for open orders.
    pub held: u64,
}

/// Balance Report 'R': an account's status and balances.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BalanceReport {
    /// Nanoseconds since the Unix epoch, from the journal.
    pub timestamp_ns: u64,
    /// The account.
    pub account: u32,
    /// `true` ('S') when the account is suspended, `false` ('A') if active.
    pub suspended: bool,
    /// At most `u16::MAX` entries, in the order sent.
    pub balances: Vec<AssetBalance>,
}

/// A funding reply (server to client).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// Funding Applied 'A'.
    Applied(Applied),
    /// Funding Rejected 'J'.
    Rejected(Rejected),
    /// Balance Report 'R'.
    BalanceReport(BalanceReport),
}

impl Reply {
    /// Decodes one reply payload, which must be exactly one message.
    pub fn decode(payload: &[u8]) -> Result<Self, FundingError> {
        let &message_type = payload.first().ok_or(FundingError::Empty)?;
        match message_type {
            APPLIED => {
                let mut r = Reader::exact(payload, APPLIED_LEN)?;
                let applied = Applied {
                    timestamp_ns: r.u64()?,
                    transfer_id: r.u64()?,
                    kind: FundingKind::from_byte(r.u8()?)?,
                    repeat: repeat_from_byte(r.u8()?)?,
                    account: r.u32()?,
                    to: r.u32()?,
                    asset: r.u16()?,
                    amount: r.u64()?,
                };
                let reserved = r.u32()?;
                if reserved != 0 {
                    return Err(FundingError::ReservedNotZero {
                        message_type,
                        value: reserved,
                    });
                }
                if applied.kind != FundingKind::Transfer && applied.to != 0 {
                    return Err(FundingError::ToAccountNotZero {
                        kind: applied.kind,
                        to: applied.to,
                    });
                }
                Ok(Self::Applied(applied))
            }
            REJECTED => {
                let mut r = Reader::exact(payload, REJECTED_LEN)?;
                Ok(Self::Rejected(Rejected {
                    timestamp_ns: r.u64()?,
                    transfer_id: r.u64()?,
                    kind: FundingKind::from_byte(r.u8()?)?,
                    repeat: repeat_from_byte(r.u8()?)?,
                    account: r.u32()?,
                    reason: r.u8()?,
                }))
            }
            BALANCE_REPORT => {
                if payload.len() < BALANCE_REPORT_HEADER_LEN {
                    return Err(FundingError::WrongLength {
                        message_type,
                        expected: BALANCE_REPORT_HEADER_LEN,
                        got: payload.len(),
                    });
                }
                let mut r = Reader::new(payload);
                let timestamp_ns = r.u64()?;
                let account = r.u32()?;
                let suspended = suspended_from_byte(r.u8()?)?;
                let count = r.u16()?;
                let entries = usize::from(count);
                if payload.len() != BALANCE_REPORT_HEADER_LEN + ASSET_BALANCE_LEN * entries {
                    return Err(FundingError::BalanceCountMismatch {
                        count,
                        length: payload.len(),
                    });
                }
                // The length check bounds the allocation by the payload.
                let mut balances = Vec::with_capacity(entries);
                for _ in 0..entries {
                    balances.push(AssetBalance {
                        asset: r.u16()?,
                        available: r.u64()?,
                        held: r.u64()?,
                    });
                }
                Ok(Self::BalanceReport(BalanceReport {
                    timestamp_ns,
                    account,
                    suspended,
                    balances,
                }))
            }
            _ => Err(FundingError::UnknownMessageType { message_type }),
        }
    }

    /// Appends the encoded reply to `out`.
    ///
    /// # Panics
    ///
    /// If a Funding Applied that is not a transfer has a nonzero `to`, or a
    /// Balance Report has more than `u16::MAX` balances: neither can be put
    /// on the wire, and either is a bug in the caller.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match self {
            Self::Applied(applied) => {
                assert!(
                    applied.kind == FundingKind::Transfer || applied.to == 0,
                    "to account in a funding applied that is not a transfer"
                );
                out.push(APPLIED);
                out.extend_from_slice(&applied.timestamp_ns.to_be_bytes());
                out.extend_from_slice(&applied.transfer_id.to_be_bytes());
                out.push(applied.kind.byte());
                out.push(repeat_byte(applied.repeat));
                out.extend_from_slice(&applied.account.to_be_bytes());
                out.extend_from_slice(&applied.to.to_be_bytes());
                out.extend_from_slice(&applied.asset.to_be_bytes());
                out.extend_from_slice(&applied.amount.to_be_bytes());
                out.extend_from_slice(&0u32.to_be_bytes());
            }
            Self::Rejected(rejected) => {
                out.push(REJECTED);
                out.extend_from_slice(&rejected.timestamp_ns.to_be_bytes());
                out.extend_from_slice(&rejected.transfer_id.to_be_bytes());
                out.push(rejected.kind.byte());
                out.push(repeat_byte(rejected.repeat));
                out.extend_from_slice(&rejected.account.to_be_bytes());
                out.push(rejected.reason);
            }
            Self::BalanceReport(report) => {
                let count = u16::try_from(report.balances.len())
                    .expect("a balance report holds at most u16::MAX balances");
                encode_balance_report_header(
                    out,
                    report.timestamp_ns,
                    report.account,
                    report.suspended,
                    count,
                );
                for balance in &report.balances {
                    encode_asset_balance(out, balance);
                }
            }
        }
    }

    /// The type byte on the wire.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::Applied(_) => APPLIED,
            Self::Rejected(_) => REJECTED,
            Self::BalanceReport(_) => BALANCE_REPORT,
        }
    }

    /// The number of bytes [`Reply::encode`] appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Applied(_) => APPLIED_LEN,
            Self::Rejected(_) => REJECTED_LEN,
            Self::BalanceReport(report) => balance_report_len(report.balances.len()),
        }
    }
}

/// The length of a Balance Report with `count` balances.
pub fn balance_report_len(count: usize) -> usize {
    BALANCE_REPORT_HEADER_LEN + ASSET_BALANCE_LEN * count
}

/// Appends the 16-byte header of a Balance Report; the caller then appends
/// exactly `count` entries with [`encode_asset_balance`]. Together they
/// write the same bytes as [`Reply::encode`] without building a list.
pub fn encode_balance_report_header(
    out: &mut Vec<u8>,
    timestamp_ns: u64,
    account: u32,
    suspended: bool,
    count: u16,
) {
    out.reserve(balance_report_len(usize::from(count)));
    out.push(BALANCE_REPORT);
    out.extend_from_slice(&timestamp_ns.to_be_bytes());
    out.extend_from_slice(&account.to_be_bytes());
    out.push(status_byte(suspended));
    out.extend_from_slice(&count.to_be_bytes());
}

/// Appends one 18-byte entry of a Balance Report.
pub fn encode_asset_balance(out: &mut Vec<u8>, balance: &AssetBalance) {
    out.extend_from_slice(&balance.asset.to_be_bytes());
    out.extend_from_slice(&balance.available.to_be_bytes());
    out.extend_from_slice(&balance.held.to_be_bytes());
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// A cursor over the fields after the type byte. Callers check the length
/// first, so a read past the end cannot happen; if it did, it would be a
/// [`FundingError::WrongLength`], never a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    message_type: u8,
    length: usize,
}

impl<'a> Reader<'a> {
    /// A reader after the type byte of a non-empty `payload`.
    fn new(payload: &'a [u8]) -> Self {
        let (message_type, bytes) = match payload.split_first() {
            Some((&message_type, bytes)) => (message_type, bytes),
            None => (0, payload),
        };
        Self {
            bytes,
            message_type,
            length: payload.len(),
        }
    }

    /// A reader over a payload that must be exactly `expected` bytes long.
    fn exact(payload: &'a [u8], expected: usize) -> Result<Self, FundingError> {
        let reader = Self::new(payload);
        if payload.len() == expected {
            Ok(reader)
        } else {
            Err(FundingError::WrongLength {
                message_type: reader.message_type,
                expected,
                got: payload.len(),
            })
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FundingError> {
        let (head, rest) =
            self.bytes
                .split_first_chunk::<N>()
                .ok_or(FundingError::WrongLength {
                    message_type: self.message_type,
                    expected: self.length + N - self.bytes.len(),
                    got: self.length,
                })?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, FundingError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, FundingError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, FundingError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, FundingError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_request(request: &Request) -> Vec<u8> {
        let mut out = Vec::new();
        request.encode(&mut out);
        assert_eq!(out.len(), request.encoded_len());
        out
    }

    fn encode_reply(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        assert_eq!(out.len(), reply.encoded_len());
        out
    }

    fn check_request(request: Request, golden: &[u8]) {
        assert_eq!(encode_request(&request), golden);
        assert_eq!(Request::decode(golden), Ok(request));
    }

    fn check_reply(reply: Reply, golden: &[u8]) {
        assert_eq!(encode_reply(&reply), golden);
        assert_eq!(Reply::decode(golden), Ok(reply));
    }

    const DEPOSIT_BYTES: [u8; 23] = [
        b'D', //
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // transfer id
        0x00, 0x00, 0x30, 0x39, // account 12345
        0x00, 0x02, // asset 2
        0x00, 0x00, 0x00, 0x00, 0x3b, 0x9a, 0xca, 0x00, // amount 1e9
    ];

    fn deposit() -> Funding {
        Funding {
            transfer_id: 0x0102_0304_0506_0708,
            account: 12345,
            asset: 2,
            amount: 1_000_000_000,
        }
    }

    const TRANSFER_BYTES: [u8; 27] = [
        b'T', //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // transfer id 7
        0x00, 0x00, 0x00, 0x0a, // from 10
        0xff, 0xff, 0xff, 0xfe, // to u32::MAX - 1
        0x01, 0x00, // asset 256
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // amount u64::MAX
    ];

    fn transfer() -> TransferRequest {
        TransferRequest {
            transfer_id: 7,
            from: 10,
            to: u32::MAX - 1,
            asset: 256,
            amount: u64::MAX,
        }
    }

    const BALANCE_QUERY_BYTES: [u8; 5] = [b'B', 0xde, 0xad, 0xbe, 0xef];

    const APPLIED_BYTES: [u8; 41] = [
        b'A', //
        0x17, 0x9a, 0x3c, 0x5d, 0x00, 0x00, 0x00, 0x01, // timestamp
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // transfer id 7
        b'T', b'Y', //
        0x00, 0x00, 0x00, 0x0a, // account 10
        0x00, 0x00, 0x00, 0x0b, // to 11
        0x00, 0x01, // asset 1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27, 0x10, // amount 10000
        0x00, 0x00, 0x00, 0x00, // reserved
    ];

    fn applied() -> Applied {
        Applied {
            timestamp_ns: 0x179a_3c5d_0000_0001,
            transfer_id: 7,
            kind: FundingKind::Transfer,
            repeat: true,
            account: 10,
            to: 11,
            asset: 1,
            amount: 10_000,
        }
    }

    const REJECTED_BYTES: [u8; 24] = [
        b'J', //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // timestamp 256
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // transfer id 3
        b'W', b'N', //
        0x00, 0x00, 0x00, 0x05, // account 5
        12,   // InsufficientFunds
    ];

    fn rejected() -> Rejected {
        Rejected {
            timestamp_ns: 256,
            transfer_id: 3,
            kind: FundingKind::Withdrawal,
            repeat: false,
            account: 5,
            reason: 12,
        }
    }

    const BALANCE_REPORT_BYTES: [u8; 52] = [
        b'R', //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // timestamp 9
        0x00, 0x00, 0x00, 0x05, // account 5
        b'S', //
        0x00, 0x02, // count 2
        0x00, 0x01, // asset 1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, // available 100
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x32, // held 50
        0x00, 0x02, // asset 2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // available 0
        0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // held 2^63
    ];

    fn balance_report() -> BalanceReport {
        BalanceReport {
            timestamp_ns: 9,
            account: 5,
            suspended: true,
            balances: vec![
                AssetBalance {
                    asset: 1,
                    available: 100,
                    held: 50,
                },
                AssetBalance {
                    asset: 2,
                    available: 0,
                    held: 1 << 63,
                },
            ],
        }
    }

    #[test]
    fn golden_requests() {
        check_request(Request::Deposit(deposit()), &DEPOSIT_BYTES);
        let mut withdrawal = DEPOSIT_BYTES;
        withdrawal[0] = b'W';
        check_request(Request::Withdrawal(deposit()), &withdrawal);
        check_request(Request::Transfer(transfer()), &TRANSFER_BYTES);
        check_request(
            Request::BalanceQuery {
                account: 0xdead_beef,
            },
            &BALANCE_QUERY_BYTES,
        );
        // A zero amount is well-formed: the engine rejects it.
        let zero = [
            b'D', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        check_request(
            Request::Deposit(Funding {
                transfer_id: 1,
                account: 1,
                asset: 1,
                amount: 0,
            }),
            &zero,
        );
    }

    #[test]
    fn golden_replies() {
        check_reply(Reply::Applied(applied()), &APPLIED_BYTES);
        let deposit_applied = [
            b'A', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, b'D', b'N', 0, 0, 0, 3, 0, 0, 0,
            0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0,
        ];
        check_reply(
            Reply::Applied(Applied {
                timestamp_ns: 1,
                transfer_id: 2,
                kind: FundingKind::Deposit,
                repeat: false,
                account: 3,
                to: 0,
                asset: 4,
                amount: 5,
            }),
            &deposit_applied,
        );
        check_reply(Reply::Rejected(rejected()), &REJECTED_BYTES);
        check_reply(
            Reply::BalanceReport(balance_report()),
            &BALANCE_REPORT_BYTES,
        );
        let empty_report = [b'R', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'A', 0, 0];
        check_reply(
            Reply::BalanceReport(BalanceReport {
                timestamp_ns: 0,
                account: 1,
                suspended: false,
                balances: Vec::new(),
            }),
            &empty_report,
        );
    }

    #[test]
    fn streamed_balance_report_matches_encode() {
        let report = balance_report();
        let mut out = Vec::new();
        encode_balance_report_header(
            &mut out,
            report.timestamp_ns,
            report.account,
            report.suspended,
            2,
        );
        for balance in &report.balances {
            encode_asset_balance(&mut out, balance);
        }
        assert_eq!(out, BALANCE_REPORT_BYTES);
        assert_eq!(balance_report_len(2), BALANCE_REPORT_BYTES.len());
    }

    #[test]
    fn every_wrong_request_length_is_rejected() {
        for (message_type, expected) in [
            (b'D', FUNDING_LEN),
            (b'W', FUNDING_LEN),
            (b'T', TRANSFER_LEN),
            (b'B', BALANCE_QUERY_LEN),
        ] {
            for got in 1..=64 {
                let mut payload = vec![0u8; got];
                payload[0] = message_type;
                let result = Request::decode(&payload);
                if got == expected {
                    assert!(result.is_ok(), "{payload:?}");
                } else {
                    assert_eq!(
                        result,
                        Err(FundingError::WrongLength {
                            message_type,
                            expected,
                            got
                        })
                    );
                }
            }
        }
    }

    #[test]
    fn every_wrong_reply_length_is_rejected() {
        for (golden, expected) in [
            (&APPLIED_BYTES[..], APPLIED_LEN),
            (&REJECTED_BYTES[..], REJECTED_LEN),
        ] {
            let message_type = golden[0];
            for got in 1..=80 {
                let mut payload = golden.to_vec();
                payload.resize(got, 0);
                let result = Reply::decode(&payload);
                if got == expected {
                    assert!(result.is_ok());
                } else {
                    assert_eq!(
                        result,
                        Err(FundingError::WrongLength {
                            message_type,
                            expected,
                            got
                        })
                    );
                }
            }
        }
        // Balance Report: shorter than the header, then not 16 + 18 × count.
        for got in 1..BALANCE_REPORT_HEADER_LEN {
            assert_eq!(
                Reply::decode(&BALANCE_REPORT_BYTES[..got]),
                Err(FundingError::WrongLength {
                    message_type: b'R',
                    expected: BALANCE_REPORT_HEADER_LEN,
                    got
                })
            );
        }
        for got in BALANCE_REPORT_HEADER_LEN..=100 {
            let mut payload = BALANCE_REPORT_BYTES.to_vec();
            payload.resize(got, 0);
            let result = Reply::decode(&payload);
            if got == BALANCE_REPORT_BYTES.len() {
                assert!(result.is_ok());
            } else {
                assert_eq!(
                    result,
                    Err(FundingError::BalanceCountMismatch {
                        count: 2,
                        length: got
                    })
                );
            }
        }
        // A count far beyond the payload is an error, not an allocation.
        let mut huge = BALANCE_REPORT_BYTES;
        huge[14] = 0xff;
        huge[15] = 0xff;
        assert_eq!(
            Reply::decode(&huge),
            Err(FundingError::BalanceCountMismatch {
                count: u16::MAX,
                length: 52
            })
        );
    }

    #[test]
    fn empty_and_unknown_types_are_rejected() {
        assert_eq!(Request::decode(&[]), Err(FundingError::Empty));
        assert_eq!(Reply::decode(&[]), Err(FundingError::Empty));
        for message_type in 0..=u8::MAX {
            let payload = [message_type; 64];
            if !b"DWTB".contains(&message_type) {
                assert_eq!(
                    Request::decode(&payload[..1]),
                    Err(FundingError::UnknownMessageType { message_type })
                );
                assert_eq!(
                    Request::decode(&payload),
                    Err(FundingError::UnknownMessageType { message_type })
                );
            }
            if !b"AJR".contains(&message_type) {
                assert_eq!(
                    Reply::decode(&payload[..1]),
                    Err(FundingError::UnknownMessageType { message_type })
                );
                assert_eq!(
                    Reply::decode(&payload),
                    Err(FundingError::UnknownMessageType { message_type })
                );
            }
        }
        // Each direction's letters are unknown in the other (those that
        // are not shared).
        assert_eq!(
            Request::decode(&APPLIED_BYTES),
            Err(FundingError::UnknownMessageType { message_type: b'A' })
        );
        assert_eq!(
            Reply::decode(&TRANSFER_BYTES),
            Err(FundingError::UnknownMessageType { message_type: b'T' })
        );
    }

    #[test]
    fn field_errors_are_typed() {
        let mut bytes = APPLIED_BYTES;
        bytes[17] = b'X';
        assert_eq!(
            Reply::decode(&bytes),
            Err(FundingError::InvalidCode {
                field: "kind",
                value: b'X'
            })
        );
        let mut bytes = REJECTED_BYTES;
        bytes[18] = b'y';
        assert_eq!(
            Reply::decode(&bytes),
            Err(FundingError::InvalidCode {
                field: "repeat",
                value: b'y'
            })
        );
        let mut bytes = BALANCE_REPORT_BYTES;
        bytes[13] = b'X';
        assert_eq!(
            Reply::decode(&bytes),
            Err(FundingError::InvalidCode {
                field: "status",
                value: b'X'
            })
        );
        let mut bytes = APPLIED_BYTES;
        bytes[40] = 1;
        assert_eq!(
            Reply::decode(&bytes),
            Err(FundingError::ReservedNotZero {
                message_type: b'A',
                value: 1
            })
        );
        let mut bytes = APPLIED_BYTES;
        bytes[17] = b'D';
        assert_eq!(
            Reply::decode(&bytes),
            Err(FundingError::ToAccountNotZero {
                kind: FundingKind::Deposit,
                to: 11
            })
        );
        // Every reason byte is carried as is.
        for reason in 0..=u8::MAX {
            let mut bytes = REJECTED_BYTES;
            bytes[23] = reason;
            let Ok(Reply::Rejected(decoded)) = Reply::decode(&bytes) else {
                panic!("reason {reason} did not decode");
            };
            assert_eq!(decoded.reason, reason);
        }
    }

    #[test]
    fn errors_display() {
        let cases = [
            (FundingError::Empty, "empty funding payload"),
            (
                FundingError::UnknownMessageType { message_type: 0x41 },
                "unknown funding message type 0x41",
            ),
            (
                FundingError::WrongLength {
                    message_type: b'D',
                    expected: 23,
                    got: 24,
                },
                "funding message 'D' has 24 bytes, expected 23",
            ),
            (
                FundingError::InvalidCode {
                    field: "kind",
                    value: b'X',
                },
                "invalid kind value 0x58",
            ),
            (
                FundingError::ReservedNotZero {
                    message_type: b'A',
                    value: 1,
                },
                "reserved field of funding message 'A' is 0x00000001, not 0",
            ),
            (
                FundingError::ToAccountNotZero {
                    kind: FundingKind::Withdrawal,
                    to: 3,
                },
                "to account 3 in a Withdrawal (only a transfer has one)",
            ),
            (
                FundingError::BalanceCountMismatch {
                    count: 2,
                    length: 17,
                },
                "balance report of 17 bytes does not hold 2 assets",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn kind_round_trips_its_bytes() {
        let mut accepted = 0;
        for value in 0..=u8::MAX {
            if let Ok(kind) = FundingKind::from_byte(value) {
                assert_eq!(kind.byte(), value);
                accepted += 1;
            }
        }
        assert_eq!(accepted, FundingKind::ALL.len());
        for &kind in FundingKind::ALL {
            assert_eq!(FundingKind::from_byte(kind.byte()), Ok(kind));
        }
        assert_eq!(
            Request::Deposit(deposit()).kind(),
            Some(FundingKind::Deposit)
        );
        assert_eq!(
            Request::Withdrawal(deposit()).kind(),
            Some(FundingKind::Withdrawal)
        );
        assert_eq!(
            Request::Transfer(transfer()).kind(),
            Some(FundingKind::Transfer)
        );
        assert_eq!(Request::BalanceQuery { account: 1 }.kind(), None);
    }

    #[test]
    #[should_panic(expected = "to account in a funding applied")]
    fn encoding_a_to_account_without_transfer_panics() {
        let applied = Applied {
            kind: FundingKind::Deposit,
            ..applied()
        };
        Reply::Applied(applied).encode(&mut Vec::new());
    }

    fn kind_strategy() -> impl Strategy<Value = FundingKind> {
        prop::sample::select(FundingKind::ALL)
    }

    fn funding_strategy() -> impl Strategy<Value = Funding> {
        (any::<u64>(), any::<u32>(), any::<u16>(), any::<u64>()).prop_map(
            |(transfer_id, account, asset, amount)| Funding {
                transfer_id,
                account,
                asset,
                amount,
            },
        )
    }

    fn request_strategy() -> impl Strategy<Value = Request> {
        prop_oneof![
            funding_strategy().prop_map(Request::Deposit),
            funding_strategy().prop_map(Request::Withdrawal),
            (
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                any::<u16>(),
                any::<u64>()
            )
                .prop_map(|(transfer_id, from, to, asset, amount)| {
                    Request::Transfer(TransferRequest {
                        transfer_id,
                        from,
                        to,
                        asset,
                        amount,
                    })
                }),
            any::<u32>().prop_map(|account| Request::BalanceQuery { account }),
        ]
    }

    fn reply_strategy() -> impl Strategy<Value = Reply> {
        let applied = (
            any::<u64>(),
            any::<u64>(),
            kind_strategy(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u64>(),
        )
            .prop_map(
                |(timestamp_ns, transfer_id, kind, repeat, account, to, asset, amount)| {
                    Reply::Applied(Applied {
                        timestamp_ns,
                        transfer_id,
                        kind,
                        repeat,
                        account,
                        to: if kind == FundingKind::Transfer { to } else { 0 },
                        asset,
                        amount,
                    })
                },
            );
        let rejected = (
            any::<u64>(),
            any::<u64>(),
            kind_strategy(),
            any::<bool>(),
            any::<u32>(),
            any::<u8>(),
        )
            .prop_map(
                |(timestamp_ns, transfer_id, kind, repeat, account, reason)| {
                    Reply::Rejected(Rejected {
                        timestamp_ns,
                        transfer_id,
                        kind,
                        repeat,
                        account,
                        reason,
                    })
                },
            );
        let balance =
            (any::<u16>(), any::<u64>(), any::<u64>()).prop_map(|(asset, available, held)| {
                AssetBalance {
                    asset,
                    available,
                    held,
                }
            });
        let report = (
            any::<u64>(),
            any::<u32>(),
            any::<bool>(),
            prop::collection::vec(balance, 0..20),
        )
            .prop_map(|(timestamp_ns, account, suspended, balances)| {
                Reply::BalanceReport(BalanceReport {
                    timestamp_ns,
                    account,
                    suspended,
                    balances,
                })
            });
        prop_oneof![applied, rejected, report]
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            // Whatever decodes re-encodes to the same bytes (exact lengths,
            // one encoding per value).
            if let Ok(request) = Request::decode(&bytes) {
                prop_assert_eq!(encode_request(&request), bytes.clone());
            }
            if let Ok(reply) = Reply::decode(&bytes) {
                prop_assert_eq!(encode_reply(&reply), bytes.clone());
            }
        }

        #[test]
        fn decode_never_panics_on_known_types(
            message_type in prop::sample::select(&b"DWTBAJR"[..]),
            // Mostly the exact body lengths of each type (and of a few
            // Balance Reports), so that the field checks are reached.
            length in prop_oneof![
                prop::sample::select(&[22usize, 26, 4, 40, 23, 15, 33, 51, 69][..]),
                0..100usize,
            ],
            seed in prop::collection::vec(any::<u8>(), 100),
            status in prop::sample::select(&b"ASX"[..]),
        ) {
            let mut bytes = vec![message_type];
            bytes.extend_from_slice(&seed[..length]);
            // Give codes a fair chance of being valid.
            if message_type == b'A' || message_type == b'J' {
                if let Some(kind) = bytes.get_mut(17) {
                    *kind = b"DWTX"[usize::from(*kind) % 4];
                }
                if let Some(repeat) = bytes.get_mut(18) {
                    *repeat = b"NYX"[usize::from(*repeat) % 3];
                }
                if message_type == b'A' && bytes.len() == APPLIED_LEN && seed[0] % 2 == 0 {
                    bytes[37..].fill(0);
                    if bytes[17] != b'T' {
                        bytes[23..27].fill(0);
                    }
                }
            }
            if message_type == b'R' && bytes.len() >= BALANCE_REPORT_HEADER_LEN {
                bytes[13] = status;
                if seed[0] % 2 == 0 {
                    let count = (bytes.len() - BALANCE_REPORT_HEADER_LEN) / ASSET_BALANCE_LEN;
                    bytes[14..16].copy_from_slice(&(count as u16).to_be_bytes());
                }
            }
            if let Ok(request) = Request::decode(&bytes) {
                prop_assert_eq!(encode_request(&request), bytes.clone());
            }
            if let Ok(reply) = Reply::decode(&bytes) {
                prop_assert_eq!(encode_reply(&reply), bytes.clone());
            }
        }

        #[test]
        fn requests_round_trip(request in request_strategy()) {
            let bytes = encode_request(&request);
            prop_assert_eq!(Request::decode(&bytes), Ok(request));
        }

        #[test]
        fn replies_round_trip(reply in reply_strategy()) {
            let bytes = encode_reply(&reply);
            prop_assert_eq!(Reply::decode(&bytes), Ok(reply));
        }
    }
}
