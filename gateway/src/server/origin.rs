//! The origin record: the bytes journaled after each command a session
//! sends, so that replaying the journal rebuilds every session's stream
//! byte for byte. It names the port and login the command came from and
//! keeps the OUCH fields the engine does not (the ClOrdID, the UserRefNums
//! as the client numbered them, a gateway refusal's reason).
//!
//! # Layout (version 1, 36 bytes, integers big-endian as in OUCH)
//!
//! ```text
//!  0        1        2                                8        9
//!  +--------+--------+--------+--------+--------+------+--------+
//!  |version | channel|  login name (6, space padded)   | type   |
//!  +--------+--------+--------+--------+--------+------+--------+
//!  9                          13                         17
//!  +--------+--------+--------+--------+--------+--------+--------+--------+
//!  |   UserRefNum (u32 BE)             | original UserRefNum (u32 BE)      |
//!  +--------+--------+--------+--------+--------+--------+--------+--------+
//!  17                                                   31
//!  +----------------------------------------------------+
//!  |   ClOrdID (14)                                     |
//!  +----------------------------------------------------+
//!  31         32         33         35         36
//!  +----------+----------+----------+----------+
//!  | Capacity | ISO      | reason   | TIF      |
//!  |          |          | (u16 BE) |          |
//!  +----------+----------+----------+----------+
//!
//!  version   1 (this layout)
//!  channel   'O' order entry (OUCH), 'F' funding
//!  type      the client message's type ('O','U','X','M','C','Q'; 'D','W','T','B')
//!  UserRefNum           of the message (for U the replacement's)
//!  original UserRefNum  U: the replaced order's; X, M: the order's
//!  ClOrdID   O, U; C: firm (4) + symbol (8) + 2 spaces; else spaces
//!  Capacity  O, else space
//!  ISO       Intermarket Sweep of O and U, else space
//!  reason    OUCH reject reason of a gateway refusal, else 0
//!  TIF       Time In Force asked for (O, U), else space
//! ```
//!
//! Journals written before the version byte hold the same fields without
//! it (35 bytes, first byte 'O' or 'F'); they decode as version 0. Any
//! other version is refused with [`OriginError::UnknownVersion`]: a record
//! from a newer gateway must not be half-understood.

use std::fmt;

/// The version this code writes.
pub const ORIGIN_VERSION: u8 = 1;

/// The port a message came in on.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Channel {
    OrderEntry,
    Funding,
}

impl Channel {
    fn byte(self) -> u8 {
        match self {
            Channel::OrderEntry => b'O',
            Channel::Funding => b'F',
        }
    }

    fn from_byte(byte: u8) -> Option<Channel> {
        match byte {
            b'O' => Some(Channel::OrderEntry),
            b'F' => Some(Channel::Funding),
            _ => None,
        }
    }
}

/// Why journaled origin bytes are not an origin record this code reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginError {
    /// A version this gateway does not know (a newer gateway wrote it).
    UnknownVersion(u8),
    /// The version's length is not the record's.
    Length { version: u8, bytes: usize },
    /// The channel byte is neither 'O' nor 'F'.
    Channel(u8),
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OriginError::UnknownVersion(version) => write!(
                f,
                "origin record version {version} is unknown (this gateway reads 0 and \
                 {ORIGIN_VERSION}): was the journal written by a newer gateway?"
            ),
            OriginError::Length { version, bytes } => {
                write!(f, "origin record version {version} of {bytes} bytes")
            }
            OriginError::Channel(byte) => {
                write!(
                    f,
                    "origin record channel {byte:#04x} is neither 'O' nor 'F'"
                )
            }
        }
    }
}

impl std::error::Error for OriginError {}

/// Where a command came from, and the OUCH fields the engine does not keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OriginRecord {
    pub channel: Channel,
    pub login: [u8; 6],
    pub message_type: u8,
    pub user_ref_num: u32,
    pub original_user_ref_num: u32,
    pub client_order_id: [u8; 14],
    pub capacity: u8,
    pub intermarket_sweep: u8,
    pub gateway_reason: u16,
    pub time_in_force: u8,
}

/// The fields after the version byte.
const FIELDS_BYTES: usize = 35;

impl OriginRecord {
    /// Encoded length of the current version.
    pub const BYTES: usize = 1 + FIELDS_BYTES;

    /// A record with every optional field blank.
    pub fn new(channel: Channel, login: [u8; 6], message_type: u8) -> OriginRecord {
        OriginRecord {
            channel,
            login,
            message_type,
            user_ref_num: 0,
            original_user_ref_num: 0,
            client_order_id: [b' '; 14],
            capacity: b' ',
            intermarket_sweep: b' ',
            gateway_reason: 0,
            time_in_force: b' ',
        }
    }

    pub fn encode(&self) -> [u8; OriginRecord::BYTES] {
        let mut out = [0u8; OriginRecord::BYTES];
        out[0] = ORIGIN_VERSION;
        let fields = &mut out[1..];
        fields[0] = self.channel.byte();
        fields[1..7].copy_from_slice(&self.login);
        fields[7] = self.message_type;
        fields[8..12].copy_from_slice(&self.user_ref_num.to_be_bytes());
        fields[12..16].copy_from_slice(&self.original_user_ref_num.to_be_bytes());
        fields[16..30].copy_from_slice(&self.client_order_id);
        fields[30] = self.capacity;
        fields[31] = self.intermarket_sweep;
        fields[32..34].copy_from_slice(&self.gateway_reason.to_be_bytes());
        fields[34] = self.time_in_force;
        debug_assert_eq!(OriginRecord::decode(&out), Ok(Some(*self)));
        out
    }

    /// `Ok(None)` for a command with no origin (genesis, admin tools);
    /// otherwise the record, or why these bytes are not one this gateway
    /// reads.
    pub fn decode(bytes: &[u8]) -> Result<Option<OriginRecord>, OriginError> {
        let Some(&first) = bytes.first() else {
            return Ok(None);
        };
        let (version, fields) = match first {
            ORIGIN_VERSION => (ORIGIN_VERSION, &bytes[1..]),
            // Before the version byte: the channel came first.
            b'O' | b'F' => (0, bytes),
            version => return Err(OriginError::UnknownVersion(version)),
        };
        let fields: &[u8; FIELDS_BYTES] = fields.try_into().map_err(|_| OriginError::Length {
            version,
            bytes: bytes.len(),
        })?;
        Ok(Some(OriginRecord::decode_fields(fields)?))
    }

    fn decode_fields(fields: &[u8; FIELDS_BYTES]) -> Result<OriginRecord, OriginError> {
        let u32_at = |at: usize| {
            u32::from_be_bytes([fields[at], fields[at + 1], fields[at + 2], fields[at + 3]])
        };
        let array = |from: usize| -> [u8; 14] {
            let mut out = [0; 14];
            out.copy_from_slice(&fields[from..from + 14]);
            out
        };
        let mut login = [0; 6];
        login.copy_from_slice(&fields[1..7]);
        Ok(OriginRecord {
            channel: Channel::from_byte(fields[0]).ok_or(OriginError::Channel(fields[0]))?,
            login,
            message_type: fields[7],
            user_ref_num: u32_at(8),
            original_user_ref_num: u32_at(12),
            client_order_id: array(16),
            capacity: fields[30],
            intermarket_sweep: fields[31],
            gateway_reason: u16::from_be_bytes([fields[32], fields[33]]),
            time_in_force: fields[34],
        })
    }
}

/// A login's name as the 6 space-padded bytes of the origin record.
pub fn login_field(name: &str) -> [u8; 6] {
    let mut field = [b' '; 6];
    for (slot, byte) in field.iter_mut().zip(name.bytes()) {
        *slot = byte.to_ascii_uppercase();
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> OriginRecord {
        OriginRecord {
            channel: Channel::OrderEntry,
            login: *b"ALICE ",
            message_type: b'U',
            user_ref_num: 0x0102_0304,
            original_user_ref_num: 7,
            client_order_id: *b"CLORD-00000001",
            capacity: b'A',
            intermarket_sweep: b'N',
            gateway_reason: 0x01FF,
            time_in_force: b'0',
        }
    }

    #[test]
    fn golden_bytes_of_version_1() {
        let bytes = sample().encode();
        let mut expected = vec![1, b'O'];
        expected.extend_from_slice(b"ALICE U");
        expected.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 7]);
        expected.extend_from_slice(b"CLORD-00000001AN");
        expected.extend_from_slice(&[0x01, 0xFF, b'0']);
        assert_eq!(bytes.as_slice(), expected.as_slice());
        assert_eq!(OriginRecord::decode(&bytes), Ok(Some(sample())));
    }

    #[test]
    fn unversioned_records_decode_as_version_0() {
        let bytes = sample().encode();
        let legacy = &bytes[1..];
        assert_eq!(legacy.len(), 35);
        assert_eq!(OriginRecord::decode(legacy), Ok(Some(sample())));
        let funding = OriginRecord::new(Channel::Funding, login_field("bob"), b'D');
        assert_eq!(
            OriginRecord::decode(&funding.encode()[1..]),
            Ok(Some(funding))
        );
    }

    #[test]
    fn no_origin_is_none() {
        assert_eq!(OriginRecord::decode(&[]), Ok(None));
    }

    #[test]
    fn unknown_versions_and_bad_records_are_refused() {
        let mut bytes = sample().encode();
        bytes[0] = 2;
        let error = OriginRecord::decode(&bytes).unwrap_err();
        assert_eq!(error, OriginError::UnknownVersion(2));
        assert!(error.to_string().contains("version 2 is unknown"));
        assert_eq!(
            OriginRecord::decode(&sample().encode()[..20]),
            Err(OriginError::Length {
                version: 1,
                bytes: 20
            })
        );
        let mut bad_channel = sample().encode();
        bad_channel[1] = b'Z';
        assert_eq!(
            OriginRecord::decode(&bad_channel),
            Err(OriginError::Channel(b'Z'))
        );
    }

    #[test]
    fn login_fields_are_upper_case_and_padded() {
        assert_eq!(login_field("bob"), *b"BOB   ");
        assert_eq!(login_field("toolongname"), *b"TOOLON");
    }
}
