//! The fixed little-endian layout of every [`Command`] in the body of a
//! journal record.
//!
//! The journal is generic: each record carries a `u16` record type and a
//! byte body. This module chooses one record type per kind of command (each
//! [`AdminCommand`] variant has its own) and lays the command's fields out at
//! fixed offsets. [`encode`] writes a command into a caller-owned buffer of
//! [`COMMAND_BYTES_MAX`] bytes without allocating (a `NewOrder` is encoded
//! before every apply); [`decode`] checks everything it reads and returns a
//! [`DecodeError`] rather than panicking, whatever the bytes.
//!
//! The [`CommandHeader`](crate::CommandHeader) (sequence and timestamp) is not
//! part of the body: it belongs to the journal record that carries it.
//!
//! A record may also carry an *origin* after the command: a few bytes that
//! whoever submitted the command (the gateway) journals with it, opaque to
//! the engine (see [Origin](#origin)). [`encode_record`] and
//! [`decode_record`] handle records with or without one; [`encode`] and
//! [`decode`] handle the plain command body.
//!
//! # Compatibility
//!
//! **The layouts below are a compatibility promise: journals written today
//! must replay tomorrow.** A record type's layout never changes once
//! released: not an offset, a size, a code or the meaning of a field. A
//! command that needs a different layout gets a new record type, and the old
//! one stays decodable. Record type 0 is never used, and types stay within
//! `1..=0x0FFF`.
//!
//! The origin came later and changed nothing of the above: a record without
//! an origin (its type without [`ORIGIN_FLAG`]) is exactly the plain record
//! it always was, and one with an origin is that same body followed by the
//! origin bytes.
//!
//! # Origin
//!
//! A record type with the bit [`ORIGIN_FLAG`] (`0x8000`) set carries a
//! command *and an origin*: `record_type & !ORIGIN_FLAG` is the command's
//! record type, the body starts with the command's body at its exact length
//! for that type, and the rest, 1 to [`ORIGIN_BYTES_MAX`] bytes, is the
//! origin. The engine neither reads nor checks the origin: it exists so that
//! the submitter (the gateway: which channel and login sent the command,
//! the client's own order id, ...) can regenerate, from a replay of the
//! journal, exactly the replies it sent. A command without an origin is
//! written as a plain record (no flag), never as a flagged one with an empty
//! origin, so a record has one encoding only.
//!
//! ```text
//! record type 0x8001 (NewOrder with origin), body of 38 + n bytes:
//!   offset 0 .. 38       the NewOrder body, as for record type 0x0001
//!   offset 38 .. 38 + n  the origin, 1 <= n <= ORIGIN_BYTES_MAX
//! ```
//!
//! # Rules common to every layout
//!
//! - Integers are little-endian, at the offsets given, with every field at an
//!   offset that is a multiple of its size (natural alignment).
//! - A body is exactly as long as its table says; there is no trailing
//!   padding, and a shorter or longer body is rejected
//!   ([`DecodeError::Length`]).
//! - `reserved` bytes are written as zero and a non-zero one is rejected.
//! - An enum is one `u8` code from the tables below; code 0 is never a valid
//!   enum code, so a zero-filled body never decodes as an order.
//! - A `bool` is one byte, 0 (false) or 1 (true).
//! - An `Option<T>` is a presence byte (0 absent, 1 present) and a value
//!   field; an absent value is written as zero and a non-zero one is
//!   rejected.
//! - A [`Symbol`] is its 8 space-padded ASCII bytes, which must be what
//!   [`Symbol::new`] would produce (1 to 8 printable characters, left-aligned,
//!   padded with spaces).
//! - Business rules are not checked here: a price off the tick, a zero
//!   quantity or an unknown account decode fine, because the journal keeps
//!   every sequenced command, rejected ones included. Only what the types
//!   cannot represent is a decode error. So a body decodes if and only if it
//!   is exactly what [`encode`] writes for some command.
//!
//! # Record types
//!
//! ```text
//! type    name              body bytes
//! 0x0001  NewOrder                 38
//! 0x0002  CancelOrder              24
//! 0x0003  ReplaceOrder             40
//! 0x0004  MassCancel               12
//! 0x0005  GatewayReject            16
//! 0x0010  Deposit                  24
//! 0x0011  Withdrawal               24
//! 0x0012  Transfer                 32
//! 0x0020  AccountQuery              4
//! 0x0100  CreateAsset              12
//! 0x0101  CreateAccount             4
//! 0x0102  SetAccountStatus          5
//! 0x0103  CreateInstrument         72   (= COMMAND_BYTES_MAX)
//! 0x0104  UpdateInstrument         36
//! 0x0105  SetTradingStatus          5
//! 0x0106  EndOfDay                  0
//! ```
//!
//! # Enum codes
//!
//! ```text
//! Side                 1 Buy   2 Sell
//! order_type           1 Limit   2 Market                  (OrderPrice)
//! TimeInForce          1 Day   2 GoodTillCancel   3 ImmediateOrCancel   4 FillOrKill
//! SelfTradePrevention  1 None   2 CancelNewest   3 CancelOldest   4 CancelBoth
//!                      5 DecrementAndCancel
//! order_ref_kind       1 UserRef (by UserRefNum)   2 Id (by OrderId)   (OrderRef)
//! AccountStatus        1 Active   2 Suspended
//! TradingStatus        1 Open   2 Halted
//! ```
//!
//! # Layouts
//!
//! Offsets and sizes are in bytes. In the diagrams each cell is one byte
//! and a row is 8 bytes.
//!
//! ## NewOrder — 0x0001 — 38 bytes
//!
//! ```text
//!     0   1   2   3   4   5   6   7
//!   +---+---+---+---+---+---+---+---+
//!  0|    account    |  instrument   |
//!   +---+---+---+---+---+---+---+---+
//!  8|         user_ref_num          |
//!   +---+---+---+---+---+---+---+---+
//! 16|           quantity            |
//!   +---+---+---+---+---+---+---+---+
//! 24|             price             |
//!   +---+---+---+---+---+---+---+---+
//! 32|sd |ot |pp |tif|po |stp|
//!   +---+---+---+---+---+---+
//!
//! offset size type field               meaning
//!      0    4 u32  account             AccountId
//!      4    4 u32  instrument          InstrumentId
//!      8    8 u64  user_ref_num        UserRefNum
//!     16    8 u64  quantity            Quantity
//!     24    8 i64  price               Limit: the limit price.
//!                                      Market: the protection price, 0 if absent
//!     32    1 u8   side                Side code
//!     33    1 u8   order_type          1 Limit, 2 Market
//!     34    1 u8   protection_present  Market: 0 absent, 1 present. Limit: 0
//!     35    1 u8   time_in_force       TimeInForce code
//!     36    1 u8   post_only           bool
//!     37    1 u8   self_trade          SelfTradePrevention code
//! ```
//!
//! ## CancelOrder — 0x0002 — 24 bytes
//!
//! ```text
//!     0   1   2   3   4   5   6   7
//!   +---+---+---+---+---+---+---+---+
//!  0|    account    |ork| reserved  |
//!   +---+---+---+---+---+---+---+---+
//!  8|             order             |
//!   +---+---+---+---+---+---+---+---+
//! 16|           quantity            |
//!   +---+---+---+---+---+---+---+---+
//!
//! offset size type field           meaning
//!      0    4 u32  account         AccountId
//!      4    1 u8   order_ref_kind  1 UserRef, 2 Id
//!      5    3      reserved        zero
//!      8    8 u64  order           the UserRefNum or the OrderId
//!     16    8 u64  quantity        Quantity left open (0 cancels whole)
//! ```
//!
//! ## ReplaceOrder — 0x0003 — 40 bytes
//!
//! ```text
//! offset size type field             meaning
//!      0    4 u32  account           AccountId
//!      4    1 u8   order_ref_kind    1 UserRef, 2 Id
//!      5    3      reserved          zero
//!      8    8 u64  order             the UserRefNum or the OrderId
//!     16    8 u64  new_user_ref_num  UserRefNum
//!     24    8 i64  price             Price
//!     32    8 u64  quantity          Quantity (new open quantity)
//! ```
//!
//! ## MassCancel — 0x0004 — 12 bytes
//!
//! ```text
//! offset size type field               meaning
//!      0    4 u32  account             AccountId
//!      4    1 u8   instrument_present  0 every instrument, 1 one instrument
//!      5    3      reserved            zero
//!      8    4 u32  instrument          InstrumentId, 0 if absent
//! ```
//!
//! ## GatewayReject — 0x0005 — 16 bytes
//!
//! ```text
//!     0   1   2   3   4   5   6   7
//!   +---+---+---+---+---+---+---+---+
//!  0|    account    |   reserved    |
//!   +---+---+---+---+---+---+---+---+
//!  8|         user_ref_num          |
//!   +---+---+---+---+---+---+---+---+
//!
//! offset size type field         meaning
//!      0    4 u32  account       AccountId
//!      4    4      reserved      zero
//!      8    8 u64  user_ref_num  UserRefNum (0: the message carried none)
//! ```
//!
//! ## Deposit — 0x0010, Withdrawal — 0x0011 — 24 bytes each
//!
//! ```text
//! offset size type field        meaning
//!      0    4 u32  account      AccountId
//!      4    2 u16  asset        AssetId
//!      6    2      reserved     zero
//!      8    8 u64  amount       minor units of the asset
//!     16    8 u64  transfer_id  TransferId
//! ```
//!
//! ## Transfer — 0x0012 — 32 bytes
//!
//! ```text
//! offset size type field        meaning
//!      0    4 u32  from         AccountId debited
//!      4    4 u32  to           AccountId credited
//!      8    2 u16  asset        AssetId
//!     10    6      reserved     zero
//!     16    8 u64  amount       minor units of the asset
//!     24    8 u64  transfer_id  TransferId (scoped to `from`)
//! ```
//!
//! ## AccountQuery — 0x0020, CreateAccount — 0x0101 — 4 bytes each
//!
//! ```text
//! offset size type field    meaning
//!      0    4 u32  account  AccountId
//! ```
//!
//! ## CreateAsset — 0x0100 — 12 bytes
//!
//! ```text
//! offset size type    field     meaning
//!      0    2 u16     asset     AssetId
//!      2    1 u8      scale     decimal places of one minor unit
//!      3    1         reserved  zero
//!      4    8 [u8; 8] symbol    Symbol
//! ```
//!
//! ## SetAccountStatus — 0x0102 — 5 bytes
//!
//! ```text
//! offset size type field    meaning
//!      0    4 u32  account  AccountId
//!      4    1 u8   status   AccountStatus code
//! ```
//!
//! ## CreateInstrument — 0x0103 — 72 bytes
//!
//! ```text
//! offset size type    field            meaning
//!      0    4 u32     instrument       InstrumentId
//!      4    2 u16     base             AssetId
//!      6    2 u16     quote            AssetId
//!      8    8 [u8; 8] symbol           Symbol
//!     16    8 u64     quantity_unit    base minor units per quantity unit
//!     24    8 i64     tick_size        Price
//!     32    8 u64     lot_size         Quantity
//!     40    8 u64     min_quantity     Quantity
//!     48    8 u64     max_quantity     Quantity
//!     56    8 i64     reference_price  Price
//!     64    4 u32     band_bps         basis points
//!     68    2 u16     maker_fee_bps    basis points
//!     70    2 u16     taker_fee_bps    basis points
//! ```
//!
//! ## UpdateInstrument — 0x0104 — 36 bytes
//!
//! ```text
//! offset size type field            meaning
//!      0    4 u32  instrument       InstrumentId
//!      4    4 u32  band_bps         basis points
//!      8    8 i64  reference_price  Price
//!     16    8 u64  min_quantity     Quantity
//!     24    8 u64  max_quantity     Quantity
//!     32    2 u16  maker_fee_bps    basis points
//!     34    2 u16  taker_fee_bps    basis points
//! ```
//!
//! ## SetTradingStatus — 0x0105 — 5 bytes
//!
//! ```text
//! offset size type field       meaning
//!      0    4 u32  instrument  InstrumentId
//!      4    1 u8   status      TradingStatus code
//! ```
//!
//! ## EndOfDay — 0x0106 — 0 bytes
//!
//! An empty body.

use std::fmt;

use crate::command::{
    AccountQuery, AdminCommand, CancelOrder, Command, Deposit, GatewayReject, MassCancel, NewOrder,
    OrderPrice, OrderRef, ReplaceOrder, Transfer, Withdrawal,
};
use crate::instrument::{InstrumentSpec, InstrumentUpdate};
use crate::types::{
    AccountId, AccountStatus, AssetId, InstrumentId, OrderId, Price, Quantity, SelfTradePrevention,
    Side, Symbol, TimeInForce, TradingStatus, TransferId, UserRefNum,
};

// Record types. Grouped by role so that a hex dump reads at a glance:
// 0x000_ orders, 0x001_ funding, 0x002_ queries, 0x01__ admin.
const NEW_ORDER: u16 = 0x0001;
const CANCEL_ORDER: u16 = 0x0002;
const REPLACE_ORDER: u16 = 0x0003;
const MASS_CANCEL: u16 = 0x0004;
const GATEWAY_REJECT: u16 = 0x0005;
const DEPOSIT: u16 = 0x0010;
const WITHDRAWAL: u16 = 0x0011;
const TRANSFER: u16 = 0x0012;
const ACCOUNT_QUERY: u16 = 0x0020;
const CREATE_ASSET: u16 = 0x0100;
const CREATE_ACCOUNT: u16 = 0x0101;
const SET_ACCOUNT_STATUS: u16 = 0x0102;
const CREATE_INSTRUMENT: u16 = 0x0103;
const UPDATE_INSTRUMENT: u16 = 0x0104;
const SET_TRADING_STATUS: u16 = 0x0105;
const END_OF_DAY: u16 = 0x0106;

// Body sizes, one per record type (Deposit and Withdrawal share a layout, as
// do AccountQuery and CreateAccount).
const NEW_ORDER_BYTES: usize = 38;
const CANCEL_ORDER_BYTES: usize = 24;
const REPLACE_ORDER_BYTES: usize = 40;
const MASS_CANCEL_BYTES: usize = 12;
const GATEWAY_REJECT_BYTES: usize = 16;
const FUNDING_BYTES: usize = 24;
const TRANSFER_BYTES: usize = 32;
const ACCOUNT_BYTES: usize = 4;
const CREATE_ASSET_BYTES: usize = 12;
const SET_ACCOUNT_STATUS_BYTES: usize = 5;
const CREATE_INSTRUMENT_BYTES: usize = 72;
const UPDATE_INSTRUMENT_BYTES: usize = 36;
const SET_TRADING_STATUS_BYTES: usize = 5;
const END_OF_DAY_BYTES: usize = 0;

/// Largest encoded body of any command (a `CreateInstrument`).
pub const COMMAND_BYTES_MAX: usize = 72;

/// The bit of a record type that says the body carries an origin after the
/// command (see [Origin](self#origin)).
pub const ORIGIN_FLAG: u16 = 0x8000;

/// Largest origin a record may carry.
pub const ORIGIN_BYTES_MAX: usize = 40;

/// Largest body of any record: a command and an origin.
pub const RECORD_BYTES_MAX: usize = COMMAND_BYTES_MAX + ORIGIN_BYTES_MAX;

const BODY_BYTES_ALL: [usize; 14] = [
    NEW_ORDER_BYTES,
    CANCEL_ORDER_BYTES,
    REPLACE_ORDER_BYTES,
    MASS_CANCEL_BYTES,
    GATEWAY_REJECT_BYTES,
    FUNDING_BYTES,
    TRANSFER_BYTES,
    ACCOUNT_BYTES,
    CREATE_ASSET_BYTES,
    SET_ACCOUNT_STATUS_BYTES,
    CREATE_INSTRUMENT_BYTES,
    UPDATE_INSTRUMENT_BYTES,
    SET_TRADING_STATUS_BYTES,
    END_OF_DAY_BYTES,
];

const fn max_of(values: &[usize]) -> usize {
    let mut max = 0;
    let mut index = 0;
    while index < values.len() {
        if values[index] > max {
            max = values[index];
        }
        index += 1;
    }
    max
}

const _: () = assert!(COMMAND_BYTES_MAX == max_of(&BODY_BYTES_ALL));

/// Why a record body is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The record type is not one of this module's.
    UnknownType(u16),
    /// The body is not the exact length of the record type's layout.
    Length {
        record_type: u16,
        expected: usize,
        actual: usize,
    },
    /// A field holds a value its type cannot have: an unknown enum code, a
    /// flag other than 0 or 1, an absent option with a non-zero value, a
    /// malformed symbol (its 8 bytes as a little-endian `u64`) or a non-zero
    /// reserved byte.
    BadField {
        record_type: u16,
        field: &'static str,
        value: u64,
    },
    /// A record with [`ORIGIN_FLAG`] whose origin (what follows the
    /// command's body) is empty or longer than [`ORIGIN_BYTES_MAX`].
    Origin { record_type: u16, length: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::UnknownType(record_type) => {
                write!(f, "unknown record type {record_type:#06x}")
            }
            DecodeError::Length {
                record_type,
                expected,
                actual,
            } => write!(
                f,
                "record type {record_type:#06x} ({}): body of {actual} bytes, expected {expected}",
                record_type_name(record_type).unwrap_or("?"),
            ),
            DecodeError::BadField {
                record_type,
                field,
                value,
            } => write!(
                f,
                "record type {record_type:#06x} ({}): bad {field} {value:#x}",
                record_type_name(record_type).unwrap_or("?"),
            ),
            DecodeError::Origin {
                record_type,
                length,
            } => write!(
                f,
                "record type {record_type:#06x} ({}): origin of {length} bytes, expected 1 to \
                 {ORIGIN_BYTES_MAX}",
                record_type_name(record_type).unwrap_or("?"),
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The name of a record type (`"NewOrder"`, `"CreateInstrument"`, …), or
/// `None` if it is not a command's. [`ORIGIN_FLAG`] is ignored: a record
/// with an origin is named after its command.
///
/// ```
/// assert_eq!(engine::codec::record_type_name(1), Some("NewOrder"));
/// assert_eq!(engine::codec::record_type_name(0x8001), Some("NewOrder"));
/// assert_eq!(engine::codec::record_type_name(0), None);
/// ```
pub fn record_type_name(record_type: u16) -> Option<&'static str> {
    let name = match record_type & !ORIGIN_FLAG {
        NEW_ORDER => "NewOrder",
        CANCEL_ORDER => "CancelOrder",
        REPLACE_ORDER => "ReplaceOrder",
        MASS_CANCEL => "MassCancel",
        GATEWAY_REJECT => "GatewayReject",
        DEPOSIT => "Deposit",
        WITHDRAWAL => "Withdrawal",
        TRANSFER => "Transfer",
        ACCOUNT_QUERY => "AccountQuery",
        CREATE_ASSET => "CreateAsset",
        CREATE_ACCOUNT => "CreateAccount",
        SET_ACCOUNT_STATUS => "SetAccountStatus",
        CREATE_INSTRUMENT => "CreateInstrument",
        UPDATE_INSTRUMENT => "UpdateInstrument",
        SET_TRADING_STATUS => "SetTradingStatus",
        END_OF_DAY => "EndOfDay",
        _ => return None,
    };
    Some(name)
}

// ---------------------------------------------------------------------------
// Encoding.
// ---------------------------------------------------------------------------

/// Encodes `command`; returns its record type (`1..=0x0FFF`, never 0) and the
/// body length written to `out[..len]`. Bytes of `out` past `len` are left
/// as they were. Does not allocate.
///
/// ```
/// use engine::codec::{COMMAND_BYTES_MAX, decode, encode};
/// use engine::{AccountId, AccountQuery, Command};
///
/// let command = Command::AccountQuery(AccountQuery { account: AccountId(7) });
/// let mut body = [0u8; COMMAND_BYTES_MAX];
/// let (record_type, len) = encode(&command, &mut body);
/// assert_eq!((record_type, &body[..len]), (0x0020, &[7, 0, 0, 0][..]));
/// assert_eq!(decode(record_type, &body[..len]), Ok(command));
/// ```
pub fn encode(command: &Command, out: &mut [u8; COMMAND_BYTES_MAX]) -> (u16, usize) {
    let (record_type, len) = match command {
        Command::NewOrder(order) => (NEW_ORDER, encode_new_order(order, out)),
        Command::CancelOrder(cancel) => (CANCEL_ORDER, encode_cancel_order(cancel, out)),
        Command::ReplaceOrder(replace) => (REPLACE_ORDER, encode_replace_order(replace, out)),
        Command::MassCancel(cancel) => (MASS_CANCEL, encode_mass_cancel(cancel, out)),
        Command::GatewayReject(reject) => (GATEWAY_REJECT, encode_gateway_reject(reject, out)),
        Command::Deposit(deposit) => (
            DEPOSIT,
            encode_funding(
                deposit.account,
                deposit.asset,
                deposit.amount,
                deposit.transfer_id,
                out,
            ),
        ),
        Command::Withdrawal(withdrawal) => (
            WITHDRAWAL,
            encode_funding(
                withdrawal.account,
                withdrawal.asset,
                withdrawal.amount,
                withdrawal.transfer_id,
                out,
            ),
        ),
        Command::Transfer(transfer) => (TRANSFER, encode_transfer(transfer, out)),
        Command::AccountQuery(query) => (ACCOUNT_QUERY, encode_account(query.account, out)),
        Command::Admin(admin) => encode_admin(admin, out),
    };
    debug_assert!(record_type != 0 && record_type <= 0x0FFF);
    debug_assert!(len <= COMMAND_BYTES_MAX);
    // Check the record before it is written, as the reader will check it
    // after: what is encoded must decode to the same command.
    debug_assert_eq!(decode(record_type, &out[..len]), Ok(*command));
    (record_type, len)
}

/// Encodes `command` followed by `origin` (see [Origin](self#origin));
/// returns the record type and the body length written to `out[..len]`.
/// With an empty origin this is exactly what [`encode`] writes (a plain
/// record type, no flag); otherwise the record type has [`ORIGIN_FLAG`] set.
/// Does not allocate.
///
/// # Panics
///
/// If `origin` is longer than [`ORIGIN_BYTES_MAX`]: the submitter's origin
/// is of its own making, and a longer one is a bug there.
///
/// ```
/// use engine::codec::{RECORD_BYTES_MAX, decode_record, encode_record};
/// use engine::{AccountId, AccountQuery, Command};
///
/// let command = Command::AccountQuery(AccountQuery { account: AccountId(7) });
/// let mut body = [0u8; RECORD_BYTES_MAX];
/// let (record_type, len) = encode_record(&command, &[0xAB, 0xCD], &mut body);
/// assert_eq!((record_type, &body[..len]), (0x8020, &[7, 0, 0, 0, 0xAB, 0xCD][..]));
/// assert_eq!(decode_record(record_type, &body[..len]), Ok((command, &[0xAB, 0xCD][..])));
/// ```
pub fn encode_record(
    command: &Command,
    origin: &[u8],
    out: &mut [u8; RECORD_BYTES_MAX],
) -> (u16, usize) {
    assert!(
        origin.len() <= ORIGIN_BYTES_MAX,
        "an origin of {} bytes is longer than ORIGIN_BYTES_MAX ({ORIGIN_BYTES_MAX})",
        origin.len()
    );
    let command_bytes = out
        .first_chunk_mut::<COMMAND_BYTES_MAX>()
        .expect("RECORD_BYTES_MAX >= COMMAND_BYTES_MAX");
    let (record_type, len) = encode(command, command_bytes);
    if origin.is_empty() {
        return (record_type, len);
    }
    // The origin follows the command's body directly.
    out[len..len + origin.len()].copy_from_slice(origin);
    (record_type | ORIGIN_FLAG, len + origin.len())
}

fn encode_admin(admin: &AdminCommand, out: &mut [u8; COMMAND_BYTES_MAX]) -> (u16, usize) {
    match *admin {
        AdminCommand::CreateAsset {
            asset,
            symbol,
            scale,
        } => {
            let body = zeroed(out, CREATE_ASSET_BYTES);
            put_u16(body, 0, asset.0);
            body[2] = scale;
            body[4..12].copy_from_slice(&symbol.bytes());
            (CREATE_ASSET, CREATE_ASSET_BYTES)
        }
        AdminCommand::CreateAccount { account } => (CREATE_ACCOUNT, encode_account(account, out)),
        AdminCommand::SetAccountStatus { account, status } => {
            let body = zeroed(out, SET_ACCOUNT_STATUS_BYTES);
            put_u32(body, 0, account.0);
            body[4] = account_status_code(status);
            (SET_ACCOUNT_STATUS, SET_ACCOUNT_STATUS_BYTES)
        }
        AdminCommand::CreateInstrument { instrument, spec } => (
            CREATE_INSTRUMENT,
            encode_create_instrument(instrument, &spec, out),
        ),
        AdminCommand::UpdateInstrument { instrument, update } => (
            UPDATE_INSTRUMENT,
            encode_update_instrument(instrument, &update, out),
        ),
        AdminCommand::SetTradingStatus { instrument, status } => {
            let body = zeroed(out, SET_TRADING_STATUS_BYTES);
            put_u32(body, 0, instrument.0);
            body[4] = trading_status_code(status);
            (SET_TRADING_STATUS, SET_TRADING_STATUS_BYTES)
        }
        AdminCommand::EndOfDay => (END_OF_DAY, END_OF_DAY_BYTES),
    }
}

fn encode_new_order(order: &NewOrder, out: &mut [u8; COMMAND_BYTES_MAX]) -> usize {
    let (order_type, protection_present, price) = match order.price {
        OrderPrice::Limit(limit) => (ORDER_TYPE_LIMIT, 0, limit.0),
        OrderPrice::Market { protection: None } => (ORDER_TYPE_MARKET, 0, 0),
        OrderPrice::Market {
            protection: Some(protection),
        } => (ORDER_TYPE_MARKET, 1, protection.0),
    };
    let body = zeroed(out, NEW_ORDER_BYTES);
    put_u32(body, 0, order.account.0);
    put_u32(body, 4, order.instrument.0);
    put_u64(body, 8, order.user_ref_num.0);
    put_u64(body, 16, order.quantity.0);
    put_i64(body, 24, price);
    body[32] = side_code(order.side);
    body[33] = order_type;
    body[34] = protection_present;
    body[35] = time_in_force_code(order.time_in_force);
    body[36] = u8::from(order.post_only);
    body[37] = self_trade_code(order.self_trade);
    NEW_ORDER_BYTES
}

fn encode_cancel_order(cancel: &CancelOrder, out: &mut [u8; COMMAND_BYTES_MAX]) -> usize {
    let body = zeroed(out, CANCEL_ORDER_BYTES);
    put_u32(body, 0, cancel.account.0);
    put_order_ref(body, cancel.order);
    put_u64(body, 16, cancel.quantity.0);
    CANCEL_ORDER_BYTES
}

fn encode_replace_order(replace: &ReplaceOrder, out: &mut [u8; COMMAND_BYTES_MAX]) -> usize {
    let body = zeroed(out, REPLACE_ORDER_BYTES);
    put_u32(body, 0, replace.account.0);
    put_order_ref(body, replace.order);
    put_u64(body, 16, replace.new_user_ref_num.0);
    put_i64(body, 24, replace.price.0);
    put_u64(body, 32, replace.quantity.0);
    REPLACE_ORDER_BYTES
}

/// The order reference shared by CancelOrder and ReplaceOrder: kind at 4,
/// value at 8.
fn put_order_ref(body: &mut [u8], order: OrderRef) {
    let (kind, value) = match order {
        OrderRef::UserRef(user_ref_num) => (ORDER_REF_USER_REF, user_ref_num.0),
        OrderRef::Id(order_id) => (ORDER_REF_ID, order_id.0),
    };
    body[4] = kind;
    put_u64(body, 8, value);
}

fn encode_mass_cancel(cancel: &MassCancel, out: &mut [u8; COMMAND_BYTES_MAX]) -> usize {
    let body = zeroed(out, MASS_CANCEL_BYTES);
    put_u32(body, 0, cancel.account.0);
    if let Some(instrument) = cancel.instrument {
        body[4] = 1;
        put_u32(body, 8, instrument.0);
    }
    MASS_CANCEL_BYTES
}

fn encode_gateway_reject(reject: &GatewayReject, out: &mut [u8; COMMAND_BYTES_MAX]) -> usize {
    let body = zeroed(out, GATEWAY_REJECT_BYTES);
    put_u32(body, 0, reject.account.0);
    put_u64(body, 8, reject.user_ref_num.0);
    GATEWAY_REJECT_BYTES
}

fn encode_funding(
    account: AccountId,
    asset: AssetId,
    amount: u64,
    transfer_id: TransferId,
    out: &mut [u8; COMMAND_BYTES_MAX],
) -> usize {
    let body = zeroed(out, FUNDING_BYTES);
    put_u32(body, 0, account.0);
    put_u16(body, 4, asset.0);
    put_u64(body, 8, amount);
    put_u64(body, 16, transfer_id.0);
    FUNDING_BYTES
}

fn encode_transfer(transfer: &Transfer, out: &mut [u8; COMMAND_BYTES_MAX]) -> usize {
    let body = zeroed(out, TRANSFER_BYTES);
    put_u32(body, 0, transfer.from.0);
    put_u32(body, 4, transfer.to.0);
    put_u16(body, 8, transfer.asset.0);
    put_u64(body, 16, transfer.amount);
    put_u64(body, 24, transfer.transfer_id.0);
    TRANSFER_BYTES
}

fn encode_account(account: AccountId, out: &mut [u8; COMMAND_BYTES_MAX]) -> usize {
    let body = zeroed(out, ACCOUNT_BYTES);
    put_u32(body, 0, account.0);
    ACCOUNT_BYTES
}

fn encode_create_instrument(
    instrument: InstrumentId,
    spec: &InstrumentSpec,
    out: &mut [u8; COMMAND_BYTES_MAX],
) -> usize {
    let body = zeroed(out, CREATE_INSTRUMENT_BYTES);
    put_u32(body, 0, instrument.0);
    put_u16(body, 4, spec.base.0);
    put_u16(body, 6, spec.quote.0);
    body[8..16].copy_from_slice(&spec.symbol.bytes());
    put_u64(body, 16, spec.quantity_unit);
    put_i64(body, 24, spec.tick_size.0);
    put_u64(body, 32, spec.lot_size.0);
    put_u64(body, 40, spec.min_quantity.0);
    put_u64(body, 48, spec.max_quantity.0);
    put_i64(body, 56, spec.reference_price.0);
    put_u32(body, 64, spec.band_bps);
    put_u16(body, 68, spec.maker_fee_bps);
    put_u16(body, 70, spec.taker_fee_bps);
    CREATE_INSTRUMENT_BYTES
}

fn encode_update_instrument(
    instrument: InstrumentId,
    update: &InstrumentUpdate,
    out: &mut [u8; COMMAND_BYTES_MAX],
) -> usize {
    let body = zeroed(out, UPDATE_INSTRUMENT_BYTES);
    put_u32(body, 0, instrument.0);
    put_u32(body, 4, update.band_bps);
    put_i64(body, 8, update.reference_price.0);
    put_u64(body, 16, update.min_quantity.0);
    put_u64(body, 24, update.max_quantity.0);
    put_u16(body, 32, update.maker_fee_bps);
    put_u16(body, 34, update.taker_fee_bps);
    UPDATE_INSTRUMENT_BYTES
}

/// The first `len` bytes of `out`, zeroed, so that reserved bytes and absent
/// values are zero whatever the buffer held before.
#[inline]
fn zeroed(out: &mut [u8; COMMAND_BYTES_MAX], len: usize) -> &mut [u8] {
    let body = &mut out[..len];
    body.fill(0);
    body
}

#[inline]
fn put_u16(body: &mut [u8], offset: usize, value: u16) {
    body[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

#[inline]
fn put_u32(body: &mut [u8], offset: usize, value: u32) {
    body[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

#[inline]
fn put_u64(body: &mut [u8], offset: usize, value: u64) {
    body[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

#[inline]
fn put_i64(body: &mut [u8], offset: usize, value: i64) {
    body[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
}

// ---------------------------------------------------------------------------
// Decoding.
// ---------------------------------------------------------------------------

/// Decodes a body; validates everything (exact length for the type, enum
/// codes, symbol bytes, option flags, reserved bytes zero) and never panics
/// on any input. A body decodes if and only if it is exactly what [`encode`]
/// writes for the command returned.
///
/// ```
/// use engine::codec::{DecodeError, decode};
///
/// assert_eq!(decode(0, &[]), Err(DecodeError::UnknownType(0)));
/// assert_eq!(
///     decode(0x0020, &[7, 0, 0]),
///     Err(DecodeError::Length { record_type: 0x0020, expected: 4, actual: 3 }),
/// );
/// ```
pub fn decode(record_type: u16, body: &[u8]) -> Result<Command, DecodeError> {
    let command = match record_type {
        NEW_ORDER => Command::NewOrder(decode_new_order(&Body::new(
            record_type,
            body,
            NEW_ORDER_BYTES,
        )?)?),
        CANCEL_ORDER => {
            let body = Body::new(record_type, body, CANCEL_ORDER_BYTES)?;
            body.reserved(5, 3)?;
            Command::CancelOrder(CancelOrder {
                account: AccountId(body.u32(0)),
                order: body.order_ref()?,
                quantity: Quantity(body.u64(16)),
            })
        }
        REPLACE_ORDER => {
            let body = Body::new(record_type, body, REPLACE_ORDER_BYTES)?;
            body.reserved(5, 3)?;
            Command::ReplaceOrder(ReplaceOrder {
                account: AccountId(body.u32(0)),
                order: body.order_ref()?,
                new_user_ref_num: UserRefNum(body.u64(16)),
                price: Price(body.i64(24)),
                quantity: Quantity(body.u64(32)),
            })
        }
        MASS_CANCEL => {
            let body = Body::new(record_type, body, MASS_CANCEL_BYTES)?;
            body.reserved(5, 3)?;
            let instrument = body.u32(8);
            let present = body.flag(4, "instrument_present")?;
            Command::MassCancel(MassCancel {
                account: AccountId(body.u32(0)),
                instrument: body
                    .option(present, "instrument", u64::from(instrument))?
                    .then_some(InstrumentId(instrument)),
            })
        }
        GATEWAY_REJECT => {
            let body = Body::new(record_type, body, GATEWAY_REJECT_BYTES)?;
            body.reserved(4, 4)?;
            Command::GatewayReject(GatewayReject {
                account: AccountId(body.u32(0)),
                user_ref_num: UserRefNum(body.u64(8)),
            })
        }
        DEPOSIT => {
            let (account, asset, amount, transfer_id) = decode_funding(record_type, body)?;
            Command::Deposit(Deposit {
                account,
                asset,
                amount,
                transfer_id,
            })
        }
        WITHDRAWAL => {
            let (account, asset, amount, transfer_id) = decode_funding(record_type, body)?;
            Command::Withdrawal(Withdrawal {
                account,
                asset,
                amount,
                transfer_id,
            })
        }
        TRANSFER => {
            let body = Body::new(record_type, body, TRANSFER_BYTES)?;
            body.reserved(10, 6)?;
            Command::Transfer(Transfer {
                from: AccountId(body.u32(0)),
                to: AccountId(body.u32(4)),
                asset: AssetId(body.u16(8)),
                amount: body.u64(16),
                transfer_id: TransferId(body.u64(24)),
            })
        }
        ACCOUNT_QUERY => {
            let body = Body::new(record_type, body, ACCOUNT_BYTES)?;
            Command::AccountQuery(AccountQuery {
                account: AccountId(body.u32(0)),
            })
        }
        _ => Command::Admin(decode_admin(record_type, body)?),
    };
    Ok(command)
}

/// Decodes a record written by [`encode_record`]: the command and its origin
/// (empty for a plain record, which is decoded by [`decode`]). A record type
/// with [`ORIGIN_FLAG`] must have a body of the command's exact length
/// followed by 1 to [`ORIGIN_BYTES_MAX`] origin bytes; the command is
/// checked as [`decode`] checks it, the origin not at all. Never panics.
///
/// ```
/// use engine::codec::{DecodeError, decode_record};
///
/// assert_eq!(
///     decode_record(0x8020, &[7, 0, 0, 0]),
///     Err(DecodeError::Origin { record_type: 0x8020, length: 0 }),
/// );
/// ```
pub fn decode_record(record_type: u16, body: &[u8]) -> Result<(Command, &[u8]), DecodeError> {
    if record_type & ORIGIN_FLAG == 0 {
        return Ok((decode(record_type, body)?, &[]));
    }
    let command_type = record_type & !ORIGIN_FLAG;
    let expected = body_bytes(command_type).ok_or(DecodeError::UnknownType(record_type))?;
    if body.len() < expected {
        return Err(DecodeError::Length {
            record_type,
            expected,
            actual: body.len(),
        });
    }
    let (command, origin) = body.split_at(expected);
    if origin.is_empty() || origin.len() > ORIGIN_BYTES_MAX {
        return Err(DecodeError::Origin {
            record_type,
            length: origin.len(),
        });
    }
    let command = decode(command_type, command).map_err(|error| match error {
        // Report the record type as journaled.
        DecodeError::BadField { field, value, .. } => DecodeError::BadField {
            record_type,
            field,
            value,
        },
        other => other,
    })?;
    Ok((command, origin))
}

/// The exact body length of a command's record type, `None` if the type is
/// not a command's.
fn body_bytes(record_type: u16) -> Option<usize> {
    let bytes = match record_type {
        NEW_ORDER => NEW_ORDER_BYTES,
        CANCEL_ORDER => CANCEL_ORDER_BYTES,
        REPLACE_ORDER => REPLACE_ORDER_BYTES,
        MASS_CANCEL => MASS_CANCEL_BYTES,
        GATEWAY_REJECT => GATEWAY_REJECT_BYTES,
        DEPOSIT | WITHDRAWAL => FUNDING_BYTES,
        TRANSFER => TRANSFER_BYTES,
        ACCOUNT_QUERY | CREATE_ACCOUNT => ACCOUNT_BYTES,
        CREATE_ASSET => CREATE_ASSET_BYTES,
        SET_ACCOUNT_STATUS => SET_ACCOUNT_STATUS_BYTES,
        CREATE_INSTRUMENT => CREATE_INSTRUMENT_BYTES,
        UPDATE_INSTRUMENT => UPDATE_INSTRUMENT_BYTES,
        SET_TRADING_STATUS => SET_TRADING_STATUS_BYTES,
        END_OF_DAY => END_OF_DAY_BYTES,
        _ => return None,
    };
    Some(bytes)
}

fn decode_admin(record_type: u16, body: &[u8]) -> Result<AdminCommand, DecodeError> {
    let admin = match record_type {
        CREATE_ASSET => {
            let body = Body::new(record_type, body, CREATE_ASSET_BYTES)?;
            body.reserved(3, 1)?;
            AdminCommand::CreateAsset {
                asset: AssetId(body.u16(0)),
                scale: body.bytes[2],
                symbol: body.symbol(4)?,
            }
        }
        CREATE_ACCOUNT => {
            let body = Body::new(record_type, body, ACCOUNT_BYTES)?;
            AdminCommand::CreateAccount {
                account: AccountId(body.u32(0)),
            }
        }
        SET_ACCOUNT_STATUS => {
            let body = Body::new(record_type, body, SET_ACCOUNT_STATUS_BYTES)?;
            AdminCommand::SetAccountStatus {
                account: AccountId(body.u32(0)),
                status: body.code(4, "status", account_status_from_code)?,
            }
        }
        CREATE_INSTRUMENT => {
            let body = Body::new(record_type, body, CREATE_INSTRUMENT_BYTES)?;
            decode_create_instrument(&body)?
        }
        UPDATE_INSTRUMENT => {
            let body = Body::new(record_type, body, UPDATE_INSTRUMENT_BYTES)?;
            AdminCommand::UpdateInstrument {
                instrument: InstrumentId(body.u32(0)),
                update: InstrumentUpdate {
                    band_bps: body.u32(4),
                    reference_price: Price(body.i64(8)),
                    min_quantity: Quantity(body.u64(16)),
                    max_quantity: Quantity(body.u64(24)),
                    maker_fee_bps: body.u16(32),
                    taker_fee_bps: body.u16(34),
                },
            }
        }
        SET_TRADING_STATUS => {
            let body = Body::new(record_type, body, SET_TRADING_STATUS_BYTES)?;
            AdminCommand::SetTradingStatus {
                instrument: InstrumentId(body.u32(0)),
                status: body.code(4, "status", trading_status_from_code)?,
            }
        }
        END_OF_DAY => {
            Body::new(record_type, body, END_OF_DAY_BYTES)?;
            AdminCommand::EndOfDay
        }
        _ => return Err(DecodeError::UnknownType(record_type)),
    };
    Ok(admin)
}

fn decode_new_order(body: &Body<'_>) -> Result<NewOrder, DecodeError> {
    let side = body.code(32, "side", side_from_code)?;
    let order_type = body.bytes[33];
    let protection_present = body.flag(34, "protection_present")?;
    let price = body.i64(24);
    let price = match order_type {
        ORDER_TYPE_LIMIT if protection_present => {
            return Err(body.bad("protection_present", 1));
        }
        ORDER_TYPE_LIMIT => OrderPrice::Limit(Price(price)),
        ORDER_TYPE_MARKET => OrderPrice::Market {
            protection: body
                .option(protection_present, "price", price.cast_unsigned())?
                .then_some(Price(price)),
        },
        other => return Err(body.bad("order_type", u64::from(other))),
    };
    Ok(NewOrder {
        account: AccountId(body.u32(0)),
        user_ref_num: UserRefNum(body.u64(8)),
        instrument: InstrumentId(body.u32(4)),
        side,
        price,
        quantity: Quantity(body.u64(16)),
        time_in_force: body.code(35, "time_in_force", time_in_force_from_code)?,
        post_only: body.flag(36, "post_only")?,
        self_trade: body.code(37, "self_trade", self_trade_from_code)?,
    })
}

fn decode_funding(
    record_type: u16,
    body: &[u8],
) -> Result<(AccountId, AssetId, u64, TransferId), DecodeError> {
    let body = Body::new(record_type, body, FUNDING_BYTES)?;
    body.reserved(6, 2)?;
    Ok((
        AccountId(body.u32(0)),
        AssetId(body.u16(4)),
        body.u64(8),
        TransferId(body.u64(16)),
    ))
}

fn decode_create_instrument(body: &Body<'_>) -> Result<AdminCommand, DecodeError> {
    Ok(AdminCommand::CreateInstrument {
        instrument: InstrumentId(body.u32(0)),
        spec: InstrumentSpec {
            base: AssetId(body.u16(4)),
            quote: AssetId(body.u16(6)),
            symbol: body.symbol(8)?,
            quantity_unit: body.u64(16),
            tick_size: Price(body.i64(24)),
            lot_size: Quantity(body.u64(32)),
            min_quantity: Quantity(body.u64(40)),
            max_quantity: Quantity(body.u64(48)),
            reference_price: Price(body.i64(56)),
            band_bps: body.u32(64),
            maker_fee_bps: body.u16(68),
            taker_fee_bps: body.u16(70),
        },
    })
}

/// A body whose length has been checked against its record type's layout,
/// so that every read at an offset of that layout is in bounds.
struct Body<'a> {
    record_type: u16,
    bytes: &'a [u8],
}

impl<'a> Body<'a> {
    fn new(record_type: u16, bytes: &'a [u8], expected: usize) -> Result<Body<'a>, DecodeError> {
        if bytes.len() != expected {
            return Err(DecodeError::Length {
                record_type,
                expected,
                actual: bytes.len(),
            });
        }
        Ok(Body { record_type, bytes })
    }

    fn array<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut array = [0; N];
        array.copy_from_slice(&self.bytes[offset..offset + N]);
        array
    }

    fn u16(&self, offset: usize) -> u16 {
        u16::from_le_bytes(self.array(offset))
    }

    fn u32(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.array(offset))
    }

    fn u64(&self, offset: usize) -> u64 {
        u64::from_le_bytes(self.array(offset))
    }

    fn i64(&self, offset: usize) -> i64 {
        i64::from_le_bytes(self.array(offset))
    }

    fn bad(&self, field: &'static str, value: u64) -> DecodeError {
        DecodeError::BadField {
            record_type: self.record_type,
            field,
            value,
        }
    }

    /// The enum whose `u8` code is at `offset`.
    fn code<T>(
        &self,
        offset: usize,
        field: &'static str,
        from_code: fn(u8) -> Option<T>,
    ) -> Result<T, DecodeError> {
        let code = self.bytes[offset];
        from_code(code).ok_or_else(|| self.bad(field, u64::from(code)))
    }

    /// The `bool` (or presence byte) at `offset`.
    fn flag(&self, offset: usize, field: &'static str) -> Result<bool, DecodeError> {
        match self.bytes[offset] {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.bad(field, u64::from(other))),
        }
    }

    /// Whether an option is present; an absent one must have a zero value.
    fn option(&self, present: bool, field: &'static str, value: u64) -> Result<bool, DecodeError> {
        if !present && value != 0 {
            return Err(self.bad(field, value));
        }
        Ok(present)
    }

    /// Checks that the `len` (at most 8) reserved bytes at `offset` are zero.
    fn reserved(&self, offset: usize, len: usize) -> Result<(), DecodeError> {
        debug_assert!(len <= 8);
        let bytes = &self.bytes[offset..offset + len];
        if bytes.iter().all(|&byte| byte == 0) {
            return Ok(());
        }
        let mut value = [0; 8];
        value[..len].copy_from_slice(bytes);
        Err(self.bad("reserved", u64::from_le_bytes(value)))
    }

    fn symbol(&self, offset: usize) -> Result<Symbol, DecodeError> {
        let bytes = self.array::<8>(offset);
        let symbol = Symbol::from_bytes(bytes)
            .ok_or_else(|| self.bad("symbol", u64::from_le_bytes(bytes)))?;
        // `from_bytes` accepts only the canonical padding, so the symbol
        // re-encodes to the same bytes.
        debug_assert_eq!(symbol.bytes(), bytes);
        Ok(symbol)
    }

    /// The order reference shared by CancelOrder and ReplaceOrder.
    fn order_ref(&self) -> Result<OrderRef, DecodeError> {
        let value = self.u64(8);
        match self.bytes[4] {
            ORDER_REF_USER_REF => Ok(OrderRef::UserRef(UserRefNum(value))),
            ORDER_REF_ID => Ok(OrderRef::Id(OrderId(value))),
            other => Err(self.bad("order_ref_kind", u64::from(other))),
        }
    }
}

// ---------------------------------------------------------------------------
// Enum codes. Code 0 is never valid.
// ---------------------------------------------------------------------------

const ORDER_TYPE_LIMIT: u8 = 1;
const ORDER_TYPE_MARKET: u8 = 2;
const ORDER_REF_USER_REF: u8 = 1;
const ORDER_REF_ID: u8 = 2;

fn side_code(side: Side) -> u8 {
    match side {
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

fn side_from_code(code: u8) -> Option<Side> {
    match code {
        1 => Some(Side::Buy),
        2 => Some(Side::Sell),
        _ => None,
    }
}

fn time_in_force_code(time_in_force: TimeInForce) -> u8 {
    match time_in_force {
        TimeInForce::Day => 1,
        TimeInForce::GoodTillCancel => 2,
        TimeInForce::ImmediateOrCancel => 3,
        TimeInForce::FillOrKill => 4,
    }
}

fn time_in_force_from_code(code: u8) -> Option<TimeInForce> {
    match code {
        1 => Some(TimeInForce::Day),
        2 => Some(TimeInForce::GoodTillCancel),
        3 => Some(TimeInForce::ImmediateOrCancel),
        4 => Some(TimeInForce::FillOrKill),
        _ => None,
    }
}

fn self_trade_code(self_trade: SelfTradePrevention) -> u8 {
    match self_trade {
        SelfTradePrevention::None => 1,
        SelfTradePrevention::CancelNewest => 2,
        SelfTradePrevention::CancelOldest => 3,
        SelfTradePrevention::CancelBoth => 4,
        SelfTradePrevention::DecrementAndCancel => 5,
    }
}

fn self_trade_from_code(code: u8) -> Option<SelfTradePrevention> {
    match code {
        1 => Some(SelfTradePrevention::None),
        2 => Some(SelfTradePrevention::CancelNewest),
        3 => Some(SelfTradePrevention::CancelOldest),
        4 => Some(SelfTradePrevention::CancelBoth),
        5 => Some(SelfTradePrevention::DecrementAndCancel),
        _ => None,
    }
}

fn account_status_code(status: AccountStatus) -> u8 {
    match status {
        AccountStatus::Active => 1,
        AccountStatus::Suspended => 2,
    }
}

fn account_status_from_code(code: u8) -> Option<AccountStatus> {
    match code {
        1 => Some(AccountStatus::Active),
        2 => Some(AccountStatus::Suspended),
        _ => None,
    }
}

fn trading_status_code(status: TradingStatus) -> u8 {
    match status {
        TradingStatus::Open => 1,
        TradingStatus::Halted => 2,
    }
}

fn trading_status_from_code(code: u8) -> Option<TradingStatus> {
    match code {
        1 => Some(TradingStatus::Open),
        2 => Some(TradingStatus::Halted),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// One line per command, for logs and the journal dump tool.
// ---------------------------------------------------------------------------

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "Buy",
        Side::Sell => "Sell",
    }
}

fn time_in_force_name(time_in_force: TimeInForce) -> &'static str {
    match time_in_force {
        TimeInForce::Day => "Day",
        TimeInForce::GoodTillCancel => "GoodTillCancel",
        TimeInForce::ImmediateOrCancel => "ImmediateOrCancel",
        TimeInForce::FillOrKill => "FillOrKill",
    }
}

fn self_trade_name(self_trade: SelfTradePrevention) -> &'static str {
    match self_trade {
        SelfTradePrevention::None => "None",
        SelfTradePrevention::CancelNewest => "CancelNewest",
        SelfTradePrevention::CancelOldest => "CancelOldest",
        SelfTradePrevention::CancelBoth => "CancelBoth",
        SelfTradePrevention::DecrementAndCancel => "DecrementAndCancel",
    }
}

fn account_status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Active => "Active",
        AccountStatus::Suspended => "Suspended",
    }
}

fn trading_status_name(status: TradingStatus) -> &'static str {
    match status {
        TradingStatus::Open => "Open",
        TradingStatus::Halted => "Halted",
    }
}

/// `urn=7` or `order_id=42`.
struct OrderRefText(OrderRef);

impl fmt::Display for OrderRefText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            OrderRef::UserRef(user_ref_num) => write!(f, "urn={user_ref_num}"),
            OrderRef::Id(order_id) => write!(f, "order_id={order_id}"),
        }
    }
}

/// One stable line that shows every field, starting with the record type's
/// name:
///
/// ```text
/// NewOrder account=1 urn=7 instrument=0 Buy Limit(1000000) qty=10 Day post_only=false stp=None
/// NewOrder account=1 urn=8 instrument=0 Sell Market(protection=none) qty=5 ImmediateOrCancel post_only=false stp=CancelNewest
/// CancelOrder account=1 order_id=42 qty=0
/// MassCancel account=1 instrument=all
/// GatewayReject account=1 urn=7
/// Transfer from=1 to=2 asset=0 amount=500 transfer_id=3
/// ```
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::NewOrder(order) => {
                write!(
                    f,
                    "NewOrder account={} urn={} instrument={} {} ",
                    order.account,
                    order.user_ref_num,
                    order.instrument,
                    side_name(order.side)
                )?;
                match order.price {
                    OrderPrice::Limit(price) => write!(f, "Limit({price})")?,
                    OrderPrice::Market { protection: None } => {
                        f.write_str("Market(protection=none)")?;
                    }
                    OrderPrice::Market {
                        protection: Some(price),
                    } => write!(f, "Market(protection={price})")?,
                }
                write!(
                    f,
                    " qty={} {} post_only={} stp={}",
                    order.quantity,
                    time_in_force_name(order.time_in_force),
                    order.post_only,
                    self_trade_name(order.self_trade)
                )
            }
            Command::CancelOrder(cancel) => write!(
                f,
                "CancelOrder account={} {} qty={}",
                cancel.account,
                OrderRefText(cancel.order),
                cancel.quantity
            ),
            Command::ReplaceOrder(replace) => write!(
                f,
                "ReplaceOrder account={} {} new_urn={} price={} qty={}",
                replace.account,
                OrderRefText(replace.order),
                replace.new_user_ref_num,
                replace.price,
                replace.quantity
            ),
            Command::MassCancel(cancel) => match cancel.instrument {
                None => write!(f, "MassCancel account={} instrument=all", cancel.account),
                Some(instrument) => write!(
                    f,
                    "MassCancel account={} instrument={instrument}",
                    cancel.account
                ),
            },
            Command::Deposit(deposit) => write!(
                f,
                "Deposit account={} asset={} amount={} transfer_id={}",
                deposit.account, deposit.asset, deposit.amount, deposit.transfer_id
            ),
            Command::Withdrawal(withdrawal) => write!(
                f,
                "Withdrawal account={} asset={} amount={} transfer_id={}",
                withdrawal.account, withdrawal.asset, withdrawal.amount, withdrawal.transfer_id
            ),
            Command::Transfer(transfer) => write!(
                f,
                "Transfer from={} to={} asset={} amount={} transfer_id={}",
                transfer.from, transfer.to, transfer.asset, transfer.amount, transfer.transfer_id
            ),
            Command::AccountQuery(query) => write!(f, "AccountQuery account={}", query.account),
            Command::GatewayReject(reject) => write!(
                f,
                "GatewayReject account={} urn={}",
                reject.account, reject.user_ref_num
            ),
            Command::Admin(admin) => fmt_admin(admin, f),
        }
    }
}

fn fmt_admin(admin: &AdminCommand, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match *admin {
        AdminCommand::CreateAsset {
            asset,
            symbol,
            scale,
        } => write!(f, "CreateAsset asset={asset} symbol={symbol} scale={scale}"),
        AdminCommand::CreateAccount { account } => write!(f, "CreateAccount account={account}"),
        AdminCommand::SetAccountStatus { account, status } => write!(
            f,
            "SetAccountStatus account={account} status={}",
            account_status_name(status)
        ),
        AdminCommand::CreateInstrument { instrument, spec } => write!(
            f,
            "CreateInstrument instrument={instrument} symbol={} base={} quote={} \
             quantity_unit={} tick={} lot={} min_qty={} max_qty={} reference={} \
             band_bps={} maker_bps={} taker_bps={}",
            spec.symbol,
            spec.base,
            spec.quote,
            spec.quantity_unit,
            spec.tick_size,
            spec.lot_size,
            spec.min_quantity,
            spec.max_quantity,
            spec.reference_price,
            spec.band_bps,
            spec.maker_fee_bps,
            spec.taker_fee_bps
        ),
        AdminCommand::UpdateInstrument { instrument, update } => write!(
            f,
            "UpdateInstrument instrument={instrument} reference={} band_bps={} min_qty={} \
             max_qty={} maker_bps={} taker_bps={}",
            update.reference_price,
            update.band_bps,
            update.min_quantity,
            update.max_quantity,
            update.maker_fee_bps,
            update.taker_fee_bps
        ),
        AdminCommand::SetTradingStatus { instrument, status } => write!(
            f,
            "SetTradingStatus instrument={instrument} status={}",
            trading_status_name(status)
        ),
        AdminCommand::EndOfDay => f.write_str("EndOfDay"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const RECORD_TYPES_ALL: [u16; 16] = [
        NEW_ORDER,
        CANCEL_ORDER,
        REPLACE_ORDER,
        MASS_CANCEL,
        GATEWAY_REJECT,
        DEPOSIT,
        WITHDRAWAL,
        TRANSFER,
        ACCOUNT_QUERY,
        CREATE_ASSET,
        CREATE_ACCOUNT,
        SET_ACCOUNT_STATUS,
        CREATE_INSTRUMENT,
        UPDATE_INSTRUMENT,
        SET_TRADING_STATUS,
        END_OF_DAY,
    ];

    fn encoded(command: &Command) -> (u16, Vec<u8>) {
        // Start from a dirty buffer: encode must zero what it does not set.
        let mut out = [0xA5; COMMAND_BYTES_MAX];
        let (record_type, len) = encode(command, &mut out);
        (record_type, out[..len].to_vec())
    }

    fn symbol(text: &str) -> Symbol {
        Symbol::new(text).unwrap()
    }

    fn limit_order() -> NewOrder {
        NewOrder {
            account: AccountId(1),
            user_ref_num: UserRefNum(7),
            instrument: InstrumentId(0),
            side: Side::Buy,
            price: OrderPrice::Limit(Price(1_000_000)),
            quantity: Quantity(10),
            time_in_force: TimeInForce::Day,
            post_only: false,
            self_trade: SelfTradePrevention::None,
        }
    }

    fn spec() -> InstrumentSpec {
        InstrumentSpec {
            symbol: symbol("ACME"),
            base: AssetId(2),
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

    /// One command of every record type (and of both order prices), with
    /// non-zero fields wherever the layout allows.
    fn samples() -> Vec<Command> {
        let market = NewOrder {
            side: Side::Sell,
            price: OrderPrice::Market { protection: None },
            time_in_force: TimeInForce::ImmediateOrCancel,
            self_trade: SelfTradePrevention::CancelNewest,
            ..limit_order()
        };
        let protected = NewOrder {
            price: OrderPrice::Market {
                protection: Some(Price(990_000)),
            },
            post_only: true,
            ..market
        };
        vec![
            Command::NewOrder(limit_order()),
            Command::NewOrder(market),
            Command::NewOrder(protected),
            Command::CancelOrder(CancelOrder {
                account: AccountId(3),
                order: OrderRef::UserRef(UserRefNum(9)),
                quantity: Quantity(4),
            }),
            Command::ReplaceOrder(ReplaceOrder {
                account: AccountId(3),
                order: OrderRef::Id(OrderId(77)),
                new_user_ref_num: UserRefNum(10),
                price: Price(-5),
                quantity: Quantity(6),
            }),
            Command::MassCancel(MassCancel {
                account: AccountId(3),
                instrument: None,
            }),
            Command::MassCancel(MassCancel {
                account: AccountId(3),
                instrument: Some(InstrumentId(2)),
            }),
            Command::Deposit(Deposit {
                account: AccountId(4),
                asset: AssetId(1),
                amount: 1_000,
                transfer_id: TransferId(1),
            }),
            Command::Withdrawal(Withdrawal {
                account: AccountId(4),
                asset: AssetId(1),
                amount: 500,
                transfer_id: TransferId(2),
            }),
            Command::Transfer(Transfer {
                from: AccountId(4),
                to: AccountId(5),
                asset: AssetId(1),
                amount: 250,
                transfer_id: TransferId(3),
            }),
            Command::AccountQuery(AccountQuery {
                account: AccountId(4),
            }),
            Command::Admin(AdminCommand::CreateAsset {
                asset: AssetId(1),
                symbol: symbol("EUR"),
                scale: 2,
            }),
            Command::Admin(AdminCommand::CreateAccount {
                account: AccountId(6),
            }),
            Command::Admin(AdminCommand::SetAccountStatus {
                account: AccountId(6),
                status: AccountStatus::Suspended,
            }),
            Command::Admin(AdminCommand::CreateInstrument {
                instrument: InstrumentId(1),
                spec: spec(),
            }),
            Command::Admin(AdminCommand::UpdateInstrument {
                instrument: InstrumentId(1),
                update: InstrumentUpdate {
                    reference_price: Price(1_000_100),
                    band_bps: 500,
                    min_quantity: Quantity(2),
                    max_quantity: Quantity(2_000),
                    maker_fee_bps: 0,
                    taker_fee_bps: 4,
                },
            }),
            Command::Admin(AdminCommand::SetTradingStatus {
                instrument: InstrumentId(1),
                status: TradingStatus::Halted,
            }),
            Command::Admin(AdminCommand::EndOfDay),
            Command::GatewayReject(GatewayReject {
                account: AccountId(1),
                user_ref_num: UserRefNum(7),
            }),
        ]
    }

    /// Asserts that a body decoded from arbitrary bytes is canonical: it is
    /// exactly what encoding the decoded command gives.
    fn assert_canonical(record_type: u16, body: &[u8]) {
        if let Ok(command) = decode(record_type, body) {
            assert_eq!(
                encoded(&command),
                (record_type, body.to_vec()),
                "{command} decoded from a body it does not encode to"
            );
        }
    }

    #[test]
    fn golden_new_order_limit() {
        let (record_type, body) = encoded(&Command::NewOrder(limit_order()));
        assert_eq!(record_type, 0x0001);
        #[rustfmt::skip]
        let expected = [
            1, 0, 0, 0,               // account
            0, 0, 0, 0,               // instrument
            7, 0, 0, 0, 0, 0, 0, 0,   // user_ref_num
            10, 0, 0, 0, 0, 0, 0, 0,  // quantity
            0x40, 0x42, 0x0F, 0, 0, 0, 0, 0, // price 1 000 000
            1,                        // side Buy
            1,                        // order_type Limit
            0,                        // protection_present
            1,                        // time_in_force Day
            0,                        // post_only
            1,                        // self_trade None
        ];
        assert_eq!(body, expected);
    }

    #[test]
    fn golden_new_order_market() {
        let order = NewOrder {
            account: AccountId(0x0102_0304),
            user_ref_num: UserRefNum(u64::MAX),
            instrument: InstrumentId(3),
            side: Side::Sell,
            price: OrderPrice::Market {
                protection: Some(Price(-2)),
            },
            quantity: Quantity(0x0100),
            time_in_force: TimeInForce::FillOrKill,
            post_only: true,
            self_trade: SelfTradePrevention::DecrementAndCancel,
        };
        let (record_type, body) = encoded(&Command::NewOrder(order));
        assert_eq!(record_type, 0x0001);
        #[rustfmt::skip]
        let expected = [
            4, 3, 2, 1,
            3, 0, 0, 0,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
            0, 1, 0, 0, 0, 0, 0, 0,
            0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // protection -2
            2, 2, 1, 4, 1, 5,
        ];
        assert_eq!(body, expected);

        let unprotected = NewOrder {
            price: OrderPrice::Market { protection: None },
            ..order
        };
        let (_, body) = encoded(&Command::NewOrder(unprotected));
        assert_eq!(&body[24..], &[0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 4, 1, 5]);
    }

    #[test]
    fn golden_cancel_order() {
        let by_user_ref = CancelOrder {
            account: AccountId(5),
            order: OrderRef::UserRef(UserRefNum(0x0A0B)),
            quantity: Quantity(0),
        };
        let (record_type, body) = encoded(&Command::CancelOrder(by_user_ref));
        assert_eq!(record_type, 0x0002);
        #[rustfmt::skip]
        assert_eq!(body, [
            5, 0, 0, 0, 1, 0, 0, 0,
            0x0B, 0x0A, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0,
        ]);

        let by_id = CancelOrder {
            account: AccountId(5),
            order: OrderRef::Id(OrderId(42)),
            quantity: Quantity(3),
        };
        let (record_type, body) = encoded(&Command::CancelOrder(by_id));
        assert_eq!(record_type, 0x0002);
        #[rustfmt::skip]
        assert_eq!(body, [
            5, 0, 0, 0, 2, 0, 0, 0,
            42, 0, 0, 0, 0, 0, 0, 0,
            3, 0, 0, 0, 0, 0, 0, 0,
        ]);
    }

    #[test]
    fn golden_transfer() {
        let transfer = Transfer {
            from: AccountId(1),
            to: AccountId(2),
            asset: AssetId(0x0304),
            amount: 1_000,
            transfer_id: TransferId(9),
        };
        let (record_type, body) = encoded(&Command::Transfer(transfer));
        assert_eq!(record_type, 0x0012);
        #[rustfmt::skip]
        assert_eq!(body, [
            1, 0, 0, 0, 2, 0, 0, 0,
            4, 3, 0, 0, 0, 0, 0, 0,
            0xE8, 0x03, 0, 0, 0, 0, 0, 0,
            9, 0, 0, 0, 0, 0, 0, 0,
        ]);
    }

    #[test]
    fn golden_gateway_reject() {
        let command = Command::GatewayReject(GatewayReject {
            account: AccountId(0x0102_0304),
            user_ref_num: UserRefNum(0x0A0B_0C0D),
        });
        let (record_type, body) = encoded(&command);
        assert_eq!(record_type, 0x0005);
        #[rustfmt::skip]
        assert_eq!(body, [
            4, 3, 2, 1, 0, 0, 0, 0,           // account, reserved
            0x0D, 0x0C, 0x0B, 0x0A, 0, 0, 0, 0, // user_ref_num
        ]);
        assert_eq!(record_type_name(record_type), Some("GatewayReject"));
    }

    fn encoded_record(command: &Command, origin: &[u8]) -> (u16, Vec<u8>) {
        // Start from a dirty buffer, as for `encoded`.
        let mut out = [0xA5; RECORD_BYTES_MAX];
        let (record_type, len) = encode_record(command, origin, &mut out);
        (record_type, out[..len].to_vec())
    }

    #[test]
    fn golden_record_with_origin() {
        let command = Command::GatewayReject(GatewayReject {
            account: AccountId(1),
            user_ref_num: UserRefNum(7),
        });
        let origin = [0x01, 0xA2, 0x33];
        let (record_type, body) = encoded_record(&command, &origin);
        assert_eq!(record_type, 0x8005);
        #[rustfmt::skip]
        assert_eq!(body, [
            1, 0, 0, 0, 0, 0, 0, 0,           // account, reserved
            7, 0, 0, 0, 0, 0, 0, 0,           // user_ref_num
            0x01, 0xA2, 0x33,                 // origin
        ]);
        assert_eq!(record_type_name(record_type), Some("GatewayReject"));
        assert_eq!(
            decode_record(record_type, &body),
            Ok((command, &origin[..]))
        );
        // Plain `decode` does not know flagged types.
        assert_eq!(
            decode(record_type, &body),
            Err(DecodeError::UnknownType(0x8005))
        );
    }

    #[test]
    fn a_record_without_origin_is_the_plain_record() {
        for command in samples() {
            let plain = encoded(&command);
            assert_eq!(encoded_record(&command, &[]), plain, "{command}");
            assert_eq!(decode_record(plain.0, &plain.1), Ok((command, &[][..])));
            let longest = [0x5A; ORIGIN_BYTES_MAX];
            let (record_type, body) = encoded_record(&command, &longest);
            assert_eq!(record_type, plain.0 | ORIGIN_FLAG);
            assert_eq!(body.len(), plain.1.len() + ORIGIN_BYTES_MAX);
            assert_eq!(
                decode_record(record_type, &body),
                Ok((command, &longest[..]))
            );
        }
    }

    #[test]
    #[should_panic(expected = "longer than ORIGIN_BYTES_MAX")]
    fn encode_record_refuses_a_long_origin() {
        encoded_record(&samples()[0], &[1; ORIGIN_BYTES_MAX + 1]);
    }

    #[test]
    fn decode_record_errors() {
        let command = Command::AccountQuery(AccountQuery {
            account: AccountId(7),
        });
        let flagged = ACCOUNT_QUERY | ORIGIN_FLAG;
        // A flagged record must carry an origin.
        assert_eq!(
            decode_record(flagged, &[7, 0, 0, 0]),
            Err(DecodeError::Origin {
                record_type: flagged,
                length: 0
            })
        );
        // ... of at most ORIGIN_BYTES_MAX bytes.
        let mut body = vec![7, 0, 0, 0];
        body.extend([9; ORIGIN_BYTES_MAX]);
        assert_eq!(
            decode_record(flagged, &body),
            Ok((command, &[9; ORIGIN_BYTES_MAX][..]))
        );
        body.push(9);
        assert_eq!(
            decode_record(flagged, &body),
            Err(DecodeError::Origin {
                record_type: flagged,
                length: ORIGIN_BYTES_MAX + 1
            })
        );
        // A body shorter than the command's.
        assert_eq!(
            decode_record(flagged, &[7, 0, 0]),
            Err(DecodeError::Length {
                record_type: flagged,
                expected: 4,
                actual: 3
            })
        );
        // A plain record is decoded strictly: no room for an origin.
        assert_eq!(
            decode_record(ACCOUNT_QUERY, &[7, 0, 0, 0, 9]),
            Err(DecodeError::Length {
                record_type: ACCOUNT_QUERY,
                expected: 4,
                actual: 5
            })
        );
        // The command is checked as `decode` checks it.
        let mut bad = encoded_record(&samples()[18], &[1]).1;
        bad[4] = 1;
        assert_eq!(
            decode_record(GATEWAY_REJECT | ORIGIN_FLAG, &bad),
            Err(DecodeError::BadField {
                record_type: GATEWAY_REJECT | ORIGIN_FLAG,
                field: "reserved",
                value: 1
            })
        );
        // Unknown command types, flagged or not.
        assert_eq!(
            decode_record(ORIGIN_FLAG, &[1]),
            Err(DecodeError::UnknownType(ORIGIN_FLAG))
        );
        assert_eq!(
            decode_record(0x8FFF, &[1]),
            Err(DecodeError::UnknownType(0x8FFF))
        );
        assert_eq!(
            DecodeError::Origin {
                record_type: flagged,
                length: 0
            }
            .to_string(),
            "record type 0x8020 (AccountQuery): origin of 0 bytes, expected 1 to 40"
        );
    }

    #[test]
    fn golden_create_instrument() {
        let command = Command::Admin(AdminCommand::CreateInstrument {
            instrument: InstrumentId(1),
            spec: spec(),
        });
        let (record_type, body) = encoded(&command);
        assert_eq!(record_type, 0x0103);
        #[rustfmt::skip]
        let expected = [
            1, 0, 0, 0, 2, 0, 0, 0,                   // instrument, base, quote
            b'A', b'C', b'M', b'E', b' ', b' ', b' ', b' ', // symbol
            1, 0, 0, 0, 0, 0, 0, 0,                   // quantity_unit
            100, 0, 0, 0, 0, 0, 0, 0,                 // tick_size
            1, 0, 0, 0, 0, 0, 0, 0,                   // lot_size
            1, 0, 0, 0, 0, 0, 0, 0,                   // min_quantity
            0x40, 0x42, 0x0F, 0, 0, 0, 0, 0,          // max_quantity
            0x40, 0x42, 0x0F, 0, 0, 0, 0, 0,          // reference_price
            0xE8, 0x03, 0, 0, 1, 0, 3, 0,             // band, maker, taker
        ];
        assert_eq!(body, expected);
        assert_eq!(body.len(), COMMAND_BYTES_MAX);
    }

    #[test]
    fn golden_small_bodies() {
        let cases: [(Command, u16, &[u8]); 5] = [
            (
                Command::MassCancel(MassCancel {
                    account: AccountId(1),
                    instrument: Some(InstrumentId(0)),
                }),
                0x0004,
                &[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            ),
            (
                Command::Admin(AdminCommand::CreateAsset {
                    asset: AssetId(1),
                    symbol: symbol("EUR"),
                    scale: 2,
                }),
                0x0100,
                &[1, 0, 2, 0, b'E', b'U', b'R', b' ', b' ', b' ', b' ', b' '],
            ),
            (
                Command::Admin(AdminCommand::SetAccountStatus {
                    account: AccountId(6),
                    status: AccountStatus::Suspended,
                }),
                0x0102,
                &[6, 0, 0, 0, 2],
            ),
            (
                Command::Admin(AdminCommand::SetTradingStatus {
                    instrument: InstrumentId(1),
                    status: TradingStatus::Open,
                }),
                0x0105,
                &[1, 0, 0, 0, 1],
            ),
            (Command::Admin(AdminCommand::EndOfDay), 0x0106, &[]),
        ];
        for (command, record_type, body) in cases {
            assert_eq!(encoded(&command), (record_type, body.to_vec()), "{command}");
        }
    }

    #[test]
    fn samples_cover_every_record_type_and_round_trip() {
        let mut seen = Vec::new();
        for command in samples() {
            let (record_type, body) = encoded(&command);
            assert_eq!(decode(record_type, &body), Ok(command));
            if !seen.contains(&record_type) {
                seen.push(record_type);
            }
        }
        seen.sort_unstable();
        let mut all = RECORD_TYPES_ALL.to_vec();
        all.sort_unstable();
        assert_eq!(seen, all);
    }

    #[test]
    fn record_types_are_distinct_named_and_in_range() {
        for (index, &record_type) in RECORD_TYPES_ALL.iter().enumerate() {
            assert!((1..=0x0FFF).contains(&record_type));
            assert!(!RECORD_TYPES_ALL[..index].contains(&record_type));
            assert!(record_type_name(record_type).is_some());
        }
        for command in samples() {
            let (record_type, _) = encoded(&command);
            let name = record_type_name(record_type).unwrap();
            assert!(
                command.to_string().starts_with(&format!("{name} ")) || command.to_string() == name,
                "{command} does not start with {name}"
            );
        }
        for record_type in 0..=u16::MAX {
            let known = RECORD_TYPES_ALL.contains(&(record_type & !ORIGIN_FLAG));
            assert_eq!(record_type_name(record_type).is_some(), known);
            assert_eq!(
                record_type_name(record_type),
                record_type_name(record_type & !ORIGIN_FLAG)
            );
            if !RECORD_TYPES_ALL.contains(&record_type) {
                assert_eq!(
                    decode(record_type, &[]),
                    Err(DecodeError::UnknownType(record_type))
                );
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_is_a_length_error() {
        for command in samples() {
            let (record_type, body) = encoded(&command);
            let expected = body.len();
            for actual in 0..expected {
                assert_eq!(
                    decode(record_type, &body[..actual]),
                    Err(DecodeError::Length {
                        record_type,
                        expected,
                        actual
                    }),
                    "{command} truncated to {actual}"
                );
            }
            let mut longer = body.clone();
            for _ in 0..=COMMAND_BYTES_MAX {
                longer.push(0);
                assert_eq!(
                    decode(record_type, &longer),
                    Err(DecodeError::Length {
                        record_type,
                        expected,
                        actual: longer.len()
                    }),
                    "{command} extended to {}",
                    longer.len()
                );
            }
        }
    }

    #[test]
    fn every_invalid_enum_code_and_flag_is_rejected() {
        // (sample, offset, field, codes that decode)
        let market = Command::NewOrder(NewOrder {
            price: OrderPrice::Market { protection: None },
            ..limit_order()
        });
        let cases: [(Command, usize, &str, &[u8]); 12] = [
            (Command::NewOrder(limit_order()), 32, "side", &[1, 2]),
            // The market sample has a zero price, so either order type fits.
            (market, 33, "order_type", &[1, 2]),
            (
                Command::NewOrder(limit_order()),
                34,
                "protection_present",
                &[0],
            ),
            (market, 34, "protection_present", &[0, 1]),
            (
                Command::NewOrder(limit_order()),
                35,
                "time_in_force",
                &[1, 2, 3, 4],
            ),
            (Command::NewOrder(limit_order()), 36, "post_only", &[0, 1]),
            (
                Command::NewOrder(limit_order()),
                37,
                "self_trade",
                &[1, 2, 3, 4, 5],
            ),
            (samples()[3], 4, "order_ref_kind", &[1, 2]),
            (samples()[4], 4, "order_ref_kind", &[1, 2]),
            (samples()[5], 4, "instrument_present", &[0, 1]),
            (samples()[13], 4, "status", &[1, 2]),
            (samples()[16], 4, "status", &[1, 2]),
        ];
        for (command, offset, field, valid) in cases {
            let (record_type, body) = encoded(&command);
            for code in 0..=u8::MAX {
                let mut mutated = body.clone();
                mutated[offset] = code;
                let decoded = decode(record_type, &mutated);
                if valid.contains(&code) {
                    assert!(decoded.is_ok(), "{command}: {field} {code}: {decoded:?}");
                } else {
                    assert_eq!(
                        decoded,
                        Err(DecodeError::BadField {
                            record_type,
                            field,
                            value: u64::from(code)
                        }),
                        "{command}: {field} {code}"
                    );
                }
            }
        }
    }

    #[test]
    fn absent_options_must_be_zero() {
        let market = Command::NewOrder(NewOrder {
            price: OrderPrice::Market { protection: None },
            ..limit_order()
        });
        let (record_type, mut body) = encoded(&market);
        body[24] = 5;
        assert_eq!(
            decode(record_type, &body),
            Err(DecodeError::BadField {
                record_type,
                field: "price",
                value: 5
            })
        );
        let all = Command::MassCancel(MassCancel {
            account: AccountId(1),
            instrument: None,
        });
        let (record_type, mut body) = encoded(&all);
        body[11] = 1;
        assert_eq!(
            decode(record_type, &body),
            Err(DecodeError::BadField {
                record_type,
                field: "instrument",
                value: 1 << 24
            })
        );
    }

    #[test]
    fn reserved_bytes_must_be_zero() {
        // (sample index, reserved offsets)
        let cases: [(usize, &[usize]); 8] = [
            (3, &[5, 6, 7]),
            (4, &[5, 6, 7]),
            (5, &[5, 6, 7]),
            (7, &[6, 7]),
            (8, &[6, 7]),
            (9, &[10, 11, 12, 13, 14, 15]),
            (11, &[3]),
            (18, &[4, 5, 6, 7]),
        ];
        let samples = samples();
        for (index, offsets) in cases {
            let (record_type, body) = encoded(&samples[index]);
            for &offset in offsets {
                assert_eq!(body[offset], 0);
                let mut mutated = body.clone();
                mutated[offset] = 0x80;
                match decode(record_type, &mutated) {
                    Err(DecodeError::BadField {
                        field: "reserved",
                        value,
                        ..
                    }) => assert_ne!(value, 0),
                    other => panic!("{}: reserved byte {offset}: {other:?}", samples[index]),
                }
            }
        }
    }

    #[test]
    fn malformed_symbols_are_rejected() {
        let (record_type, body) = encoded(&samples()[14]);
        for bad in [
            *b"        ",
            *b" ACME   ",
            *b"AC ME   ",
            *b"ACME\0\0\0\0",
            *b"ACM\xC3\xA9   ",
            *b"ACME\t   ",
        ] {
            let mut mutated = body.clone();
            mutated[8..16].copy_from_slice(&bad);
            assert_eq!(
                decode(record_type, &mutated),
                Err(DecodeError::BadField {
                    record_type,
                    field: "symbol",
                    value: u64::from_le_bytes(bad)
                })
            );
        }
    }

    #[test]
    fn every_single_byte_change_is_rejected_or_canonical() {
        for command in samples() {
            let (record_type, body) = encoded(&command);
            for offset in 0..body.len() {
                for value in 0..=u8::MAX {
                    let mut mutated = body.clone();
                    mutated[offset] = value;
                    assert_canonical(record_type, &mutated);
                }
            }
        }
    }

    #[test]
    fn display_is_one_line_per_command() {
        let lines: Vec<String> = samples().iter().map(Command::to_string).collect();
        let expected = [
            "NewOrder account=1 urn=7 instrument=0 Buy Limit(1000000) qty=10 Day post_only=false stp=None",
            "NewOrder account=1 urn=7 instrument=0 Sell Market(protection=none) qty=10 ImmediateOrCancel post_only=false stp=CancelNewest",
            "NewOrder account=1 urn=7 instrument=0 Sell Market(protection=990000) qty=10 ImmediateOrCancel post_only=true stp=CancelNewest",
            "CancelOrder account=3 urn=9 qty=4",
            "ReplaceOrder account=3 order_id=77 new_urn=10 price=-5 qty=6",
            "MassCancel account=3 instrument=all",
            "MassCancel account=3 instrument=2",
            "Deposit account=4 asset=1 amount=1000 transfer_id=1",
            "Withdrawal account=4 asset=1 amount=500 transfer_id=2",
            "Transfer from=4 to=5 asset=1 amount=250 transfer_id=3",
            "AccountQuery account=4",
            "CreateAsset asset=1 symbol=EUR scale=2",
            "CreateAccount account=6",
            "SetAccountStatus account=6 status=Suspended",
            "CreateInstrument instrument=1 symbol=ACME base=2 quote=0 quantity_unit=1 tick=100 lot=1 min_qty=1 max_qty=1000000 reference=1000000 band_bps=1000 maker_bps=1 taker_bps=3",
            "UpdateInstrument instrument=1 reference=1000100 band_bps=500 min_qty=2 max_qty=2000 maker_bps=0 taker_bps=4",
            "SetTradingStatus instrument=1 status=Halted",
            "EndOfDay",
            "GatewayReject account=1 urn=7",
        ];
        assert_eq!(lines, expected);
    }

    #[test]
    fn decode_errors_display() {
        assert_eq!(
            DecodeError::UnknownType(0x0FFF).to_string(),
            "unknown record type 0x0fff"
        );
        assert_eq!(
            DecodeError::Length {
                record_type: NEW_ORDER,
                expected: 38,
                actual: 3
            }
            .to_string(),
            "record type 0x0001 (NewOrder): body of 3 bytes, expected 38"
        );
        assert_eq!(
            DecodeError::BadField {
                record_type: CANCEL_ORDER,
                field: "order_ref_kind",
                value: 3
            }
            .to_string(),
            "record type 0x0002 (CancelOrder): bad order_ref_kind 0x3"
        );
    }

    fn arbitrary_symbol() -> impl Strategy<Value = Symbol> {
        "[!-~]{1,8}".prop_map(|text| Symbol::new(&text).unwrap())
    }

    fn arbitrary_new_order() -> impl Strategy<Value = NewOrder> {
        let price = prop_oneof![
            any::<i64>().prop_map(|price| OrderPrice::Limit(Price(price))),
            any::<Option<i64>>().prop_map(|protection| OrderPrice::Market {
                protection: protection.map(Price)
            }),
        ];
        let side = prop_oneof![Just(Side::Buy), Just(Side::Sell)];
        let time_in_force = prop_oneof![
            Just(TimeInForce::Day),
            Just(TimeInForce::GoodTillCancel),
            Just(TimeInForce::ImmediateOrCancel),
            Just(TimeInForce::FillOrKill),
        ];
        let self_trade = prop_oneof![
            Just(SelfTradePrevention::None),
            Just(SelfTradePrevention::CancelNewest),
            Just(SelfTradePrevention::CancelOldest),
            Just(SelfTradePrevention::CancelBoth),
            Just(SelfTradePrevention::DecrementAndCancel),
        ];
        (
            any::<(u32, u64, u32, u64, bool)>(),
            side,
            price,
            time_in_force,
            self_trade,
        )
            .prop_map(
                |(
                    (account, user_ref_num, instrument, quantity, post_only),
                    side,
                    price,
                    time_in_force,
                    self_trade,
                )| {
                    NewOrder {
                        account: AccountId(account),
                        user_ref_num: UserRefNum(user_ref_num),
                        instrument: InstrumentId(instrument),
                        side,
                        price,
                        quantity: Quantity(quantity),
                        time_in_force,
                        post_only,
                        self_trade,
                    }
                },
            )
    }

    fn arbitrary_order_ref() -> impl Strategy<Value = OrderRef> {
        prop_oneof![
            any::<u64>().prop_map(|value| OrderRef::UserRef(UserRefNum(value))),
            any::<u64>().prop_map(|value| OrderRef::Id(OrderId(value))),
        ]
    }

    fn arbitrary_spec() -> impl Strategy<Value = InstrumentSpec> {
        (
            arbitrary_symbol(),
            any::<(u16, u16, u64, i64, u64, u64, u64, i64)>(),
            any::<(u32, u16, u16)>(),
        )
            .prop_map(
                |(
                    symbol,
                    (base, quote, quantity_unit, tick, lot, min, max, reference),
                    (band_bps, maker_fee_bps, taker_fee_bps),
                )| InstrumentSpec {
                    symbol,
                    base: AssetId(base),
                    quote: AssetId(quote),
                    quantity_unit,
                    tick_size: Price(tick),
                    lot_size: Quantity(lot),
                    min_quantity: Quantity(min),
                    max_quantity: Quantity(max),
                    reference_price: Price(reference),
                    band_bps,
                    maker_fee_bps,
                    taker_fee_bps,
                },
            )
    }

    fn arbitrary_admin() -> impl Strategy<Value = AdminCommand> {
        prop_oneof![
            (any::<u16>(), arbitrary_symbol(), any::<u8>()).prop_map(|(asset, symbol, scale)| {
                AdminCommand::CreateAsset {
                    asset: AssetId(asset),
                    symbol,
                    scale,
                }
            }),
            any::<u32>().prop_map(|account| AdminCommand::CreateAccount {
                account: AccountId(account)
            }),
            (any::<u32>(), any::<bool>()).prop_map(|(account, suspended)| {
                AdminCommand::SetAccountStatus {
                    account: AccountId(account),
                    status: if suspended {
                        AccountStatus::Suspended
                    } else {
                        AccountStatus::Active
                    },
                }
            }),
            (any::<u32>(), arbitrary_spec()).prop_map(|(instrument, spec)| {
                AdminCommand::CreateInstrument {
                    instrument: InstrumentId(instrument),
                    spec,
                }
            }),
            (any::<u32>(), any::<(i64, u32, u64, u64, u16, u16)>()).prop_map(
                |(instrument, (reference, band_bps, min, max, maker_fee_bps, taker_fee_bps))| {
                    AdminCommand::UpdateInstrument {
                        instrument: InstrumentId(instrument),
                        update: InstrumentUpdate {
                            reference_price: Price(reference),
                            band_bps,
                            min_quantity: Quantity(min),
                            max_quantity: Quantity(max),
                            maker_fee_bps,
                            taker_fee_bps,
                        },
                    }
                }
            ),
            (any::<u32>(), any::<bool>()).prop_map(|(instrument, halted)| {
                AdminCommand::SetTradingStatus {
                    instrument: InstrumentId(instrument),
                    status: if halted {
                        TradingStatus::Halted
                    } else {
                        TradingStatus::Open
                    },
                }
            }),
            Just(AdminCommand::EndOfDay),
        ]
    }

    fn arbitrary_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            arbitrary_new_order().prop_map(Command::NewOrder),
            (any::<u32>(), arbitrary_order_ref(), any::<u64>()).prop_map(
                |(account, order, quantity)| Command::CancelOrder(CancelOrder {
                    account: AccountId(account),
                    order,
                    quantity: Quantity(quantity),
                })
            ),
            (
                any::<u32>(),
                arbitrary_order_ref(),
                any::<(u64, i64, u64)>()
            )
                .prop_map(|(account, order, (new_user_ref_num, price, quantity))| {
                    Command::ReplaceOrder(ReplaceOrder {
                        account: AccountId(account),
                        order,
                        new_user_ref_num: UserRefNum(new_user_ref_num),
                        price: Price(price),
                        quantity: Quantity(quantity),
                    })
                }),
            (any::<u32>(), any::<Option<u32>>()).prop_map(|(account, instrument)| {
                Command::MassCancel(MassCancel {
                    account: AccountId(account),
                    instrument: instrument.map(InstrumentId),
                })
            }),
            any::<(u32, u16, u64, u64)>().prop_map(|(account, asset, amount, transfer_id)| {
                Command::Deposit(Deposit {
                    account: AccountId(account),
                    asset: AssetId(asset),
                    amount,
                    transfer_id: TransferId(transfer_id),
                })
            }),
            any::<(u32, u16, u64, u64)>().prop_map(|(account, asset, amount, transfer_id)| {
                Command::Withdrawal(Withdrawal {
                    account: AccountId(account),
                    asset: AssetId(asset),
                    amount,
                    transfer_id: TransferId(transfer_id),
                })
            }),
            any::<(u32, u32, u16, u64, u64)>().prop_map(
                |(from, to, asset, amount, transfer_id)| Command::Transfer(Transfer {
                    from: AccountId(from),
                    to: AccountId(to),
                    asset: AssetId(asset),
                    amount,
                    transfer_id: TransferId(transfer_id),
                })
            ),
            any::<u32>().prop_map(|account| Command::AccountQuery(AccountQuery {
                account: AccountId(account)
            })),
            any::<(u32, u64)>().prop_map(|(account, user_ref_num)| Command::GatewayReject(
                GatewayReject {
                    account: AccountId(account),
                    user_ref_num: UserRefNum(user_ref_num),
                }
            )),
            arbitrary_admin().prop_map(Command::Admin),
        ]
    }

    /// A record type that is usually one of ours, sometimes not.
    fn arbitrary_record_type() -> impl Strategy<Value = u16> {
        prop_oneof![
            4 => proptest::sample::select(RECORD_TYPES_ALL.to_vec()),
            1 => any::<u16>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn encode_then_decode_is_identity(command in arbitrary_command()) {
            let (record_type, body) = encoded(&command);
            prop_assert!((1..=0x0FFF).contains(&record_type));
            prop_assert!(body.len() <= COMMAND_BYTES_MAX);
            prop_assert_eq!(decode(record_type, &body), Ok(command));
            let line = command.to_string();
            prop_assert!(!line.contains('\n'));
            prop_assert!(line.starts_with(record_type_name(record_type).unwrap()));
        }

        #[test]
        fn encode_record_then_decode_record_is_identity(
            command in arbitrary_command(),
            origin in proptest::collection::vec(any::<u8>(), 0..=ORIGIN_BYTES_MAX),
        ) {
            let (record_type, body) = encoded_record(&command, &origin);
            prop_assert_eq!(record_type & ORIGIN_FLAG != 0, !origin.is_empty());
            prop_assert!(body.len() <= RECORD_BYTES_MAX);
            prop_assert_eq!(decode_record(record_type, &body), Ok((command, &origin[..])));
        }

        #[test]
        fn random_records_never_panic_and_decode_only_canonically(
            record_type in arbitrary_record_type(),
            flagged in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..=RECORD_BYTES_MAX + 8),
        ) {
            let record_type = if flagged { record_type | ORIGIN_FLAG } else { record_type };
            if let Ok((command, origin)) = decode_record(record_type, &body) {
                prop_assert_eq!(encoded_record(&command, origin), (record_type, body.clone()));
            }
        }

        #[test]
        fn random_bodies_never_panic_and_decode_only_canonically(
            record_type in arbitrary_record_type(),
            body in proptest::collection::vec(any::<u8>(), 0..=COMMAND_BYTES_MAX + 8),
        ) {
            assert_canonical(record_type, &body);
        }

        #[test]
        fn random_bodies_of_the_right_length_never_panic(
            record_type in proptest::sample::select(RECORD_TYPES_ALL.to_vec()),
            bytes in proptest::collection::vec(prop_oneof![3 => 0u8..=5, 1 => any::<u8>()], COMMAND_BYTES_MAX),
        ) {
            // A body of the right length gets past the length check, so the
            // field checks are what this exercises; small byte values make
            // valid codes, flags and zero reserved bytes likely.
            let len = match decode(record_type, &[]) {
                Err(DecodeError::Length { expected, .. }) => expected,
                Ok(_) => 0,
                Err(other) => panic!("{other:?}"),
            };
            assert_canonical(record_type, &bytes[..len]);
        }
    }
}
