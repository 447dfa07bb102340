//! The fixed little-endian layouts of the message store: the segment
//! header, the record header and the index entry. Pure byte arithmetic, so
//! it is the one place that says what the store's bytes mean (the diagram
//! is also in `docs/store.md`).
//!
//! ```text
//! <first sequence, 20 digits>.msg — a segment's records, appended:
//!
//!  0        8        12       16               24       28       32
//!  +--------+--------+--------+----------------+--------+--------+
//!  | magic  |version | header | first sequence |reserved| header |
//!  | 8 B    | u32    | bytes  | u64            | u32 = 0| crc u32|
//!  +--------+--------+--------+----------------+--------+--------+
//!  | record | record | ... (no padding, no preallocation)        |
//!  +-------------------------------------------------------------+
//!
//! Record (32-byte header, then the body):
//!
//!  0        4        6        8                16               24
//!  +--------+--------+--------+----------------+----------------+
//!  | length | kind   |reserved| sequence       | origin         |
//!  | u32    | u16    | u16 = 0| u64            | u64            |
//!  +--------+--------+--------+----------------+----------------+
//!  24       28       32
//!  +--------+--------+------------------------------+
//!  |reserved| crc    | body (length bytes)          |
//!  | u32 = 0| u32    |                              |
//!  +--------+--------+------------------------------+
//!
//! <first sequence, 20 digits>.idx — one entry per message of the segment:
//!
//!  0        4        8
//!  +--------+--------+-- ...
//!  | offset | offset |       entry i: where message first + i starts
//!  | u32    | u32    |       in the .msg file
//!  +--------+--------+-- ...
//! ```
//!
//! - `crc` is CRC32C over record bytes `0..28` followed by the body; the
//!   header crc is CRC32C over segment header bytes `0..28`.
//! - `kind` 1 is a message; kind 2 is the *end* marker (the stream was
//!   ended: no message follows), with an empty body and the sequence of the
//!   last message. Only messages have index entries.
//! - `sequence` is contiguous from 1 across segments; `origin` (the caller's
//!   tag, the journal sequence of the command that caused the message) never
//!   decreases.
//! - The index is derived from the records: recovery rebuilds the last
//!   segment's from a scan, and every read checks the record it points to.

#![forbid(unsafe_code)]

use crate::checksum::{crc32c, crc32c_concat};

/// The segment header's first 8 bytes.
pub(crate) const STORE_MAGIC: [u8; 8] = *b"EXMSGS\0\x01";
/// The store format version written and accepted.
pub(crate) const STORE_FORMAT_VERSION: u32 = 1;
/// Bytes of a segment header; records start here.
pub(crate) const STORE_SEGMENT_HEADER_BYTES: usize = 32;
/// Bytes of a record header.
pub(crate) const STORE_RECORD_HEADER_BYTES: usize = 32;
/// Bytes of an index entry.
pub(crate) const INDEX_ENTRY_BYTES: usize = 4;

const _: () = assert!(STORE_SEGMENT_HEADER_BYTES == 32);
const _: () = assert!(STORE_RECORD_HEADER_BYTES == 32);
const _: () = assert!(INDEX_ENTRY_BYTES == size_of::<u32>());

/// What a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    Message = 1,
    End = 2,
}

impl RecordKind {
    fn from_u16(value: u16) -> Option<RecordKind> {
        match value {
            1 => Some(RecordKind::Message),
            2 => Some(RecordKind::End),
            _ => None,
        }
    }
}

/// A record header as decoded (and checked for its reserved fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoreRecordHeader {
    pub(crate) length: u32,
    pub(crate) kind: RecordKind,
    pub(crate) sequence: u64,
    pub(crate) origin: u64,
    pub(crate) checksum: u32,
}

impl StoreRecordHeader {
    /// The header of a record with `body`, its checksum computed.
    pub(crate) fn new(kind: RecordKind, sequence: u64, origin: u64, body: &[u8]) -> Self {
        let length = u32::try_from(body.len()).expect("bodies are checked against the maximum");
        let mut header = StoreRecordHeader {
            length,
            kind,
            sequence,
            origin,
            checksum: 0,
        };
        header.checksum = crc32c_concat(&header.encode()[..28], body);
        header
    }

    pub(crate) fn encode(&self) -> [u8; STORE_RECORD_HEADER_BYTES] {
        let mut bytes = [0u8; STORE_RECORD_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&self.length.to_le_bytes());
        bytes[4..6].copy_from_slice(&(self.kind as u16).to_le_bytes());
        bytes[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.origin.to_le_bytes());
        bytes[28..32].copy_from_slice(&self.checksum.to_le_bytes());
        bytes
    }

    /// Decodes a header; `None` if a reserved field is not zero or the kind
    /// is unknown (the body's checksum is checked by [`Self::verify`]).
    pub(crate) fn decode(bytes: &[u8; STORE_RECORD_HEADER_BYTES]) -> Option<Self> {
        if read_u16(bytes, 6) != 0 || read_u32(bytes, 24) != 0 {
            return None;
        }
        Some(StoreRecordHeader {
            length: read_u32(bytes, 0),
            kind: RecordKind::from_u16(read_u16(bytes, 4))?,
            sequence: read_u64(bytes, 8),
            origin: read_u64(bytes, 16),
            checksum: read_u32(bytes, 28),
        })
    }

    /// Whether `body` is this header's body.
    pub(crate) fn verify(
        &self,
        header_bytes: &[u8; STORE_RECORD_HEADER_BYTES],
        body: &[u8],
    ) -> bool {
        body.len() == self.length as usize
            && crc32c_concat(&header_bytes[..28], body) == self.checksum
    }

    /// Bytes of the record, header included.
    pub(crate) fn footprint(&self) -> u64 {
        STORE_RECORD_HEADER_BYTES as u64 + u64::from(self.length)
    }
}

/// A segment header: only its first sequence varies.
pub(crate) fn encode_segment_header(first_sequence: u64) -> [u8; STORE_SEGMENT_HEADER_BYTES] {
    let mut bytes = [0u8; STORE_SEGMENT_HEADER_BYTES];
    bytes[0..8].copy_from_slice(&STORE_MAGIC);
    bytes[8..12].copy_from_slice(&STORE_FORMAT_VERSION.to_le_bytes());
    bytes[12..16].copy_from_slice(&(STORE_SEGMENT_HEADER_BYTES as u32).to_le_bytes());
    bytes[16..24].copy_from_slice(&first_sequence.to_le_bytes());
    let checksum = crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&checksum.to_le_bytes());
    bytes
}

/// The first sequence a segment header names, or why it is not one.
pub(crate) fn decode_segment_header(
    bytes: &[u8; STORE_SEGMENT_HEADER_BYTES],
) -> Result<u64, String> {
    if bytes[0..8] != STORE_MAGIC {
        return Err("not a message store segment (bad magic)".to_owned());
    }
    if crc32c(&bytes[..28]) != read_u32(bytes, 28) {
        return Err("segment header checksum mismatch".to_owned());
    }
    let version = read_u32(bytes, 8);
    if version != STORE_FORMAT_VERSION {
        return Err(format!(
            "incompatible store format version {version}, this build reads {STORE_FORMAT_VERSION}"
        ));
    }
    if read_u32(bytes, 12) as usize != STORE_SEGMENT_HEADER_BYTES || read_u32(bytes, 24) != 0 {
        return Err("segment header fields out of range".to_owned());
    }
    Ok(read_u64(bytes, 16))
}

/// The file names of the segment whose first message is `first_sequence`.
pub(crate) fn segment_file_names(first_sequence: u64) -> (String, String) {
    (
        format!("{first_sequence:020}.msg"),
        format!("{first_sequence:020}.idx"),
    )
}

/// The first sequence a data file's name gives, if it is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".msg")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_round_trip_and_checksum() {
        let header = StoreRecordHeader::new(RecordKind::Message, 7, 42, b"body");
        let bytes = header.encode();
        let decoded = StoreRecordHeader::decode(&bytes).expect("valid");
        assert_eq!(decoded, header);
        assert!(decoded.verify(&bytes, b"body"));
        assert!(!decoded.verify(&bytes, b"bodY"));
        assert_eq!(decoded.footprint(), 36);
        let mut reserved = bytes;
        reserved[6] = 1;
        assert!(StoreRecordHeader::decode(&reserved).is_none());
        let mut kind = bytes;
        kind[4] = 9;
        assert!(StoreRecordHeader::decode(&kind).is_none());
    }

    #[test]
    fn segment_header_round_trip_and_damage() {
        let bytes = encode_segment_header(1001);
        assert_eq!(decode_segment_header(&bytes), Ok(1001));
        let mut flipped = bytes;
        flipped[17] ^= 1;
        assert!(decode_segment_header(&flipped).is_err());
        assert_eq!(
            parse_segment_file_name(&segment_file_names(1001).0),
            Some(1001)
        );
        assert_eq!(parse_segment_file_name("00000000000000001001.idx"), None);
        assert_eq!(parse_segment_file_name("1001.msg"), None);
    }
}
