//! The fixed little-endian layouts of the journal: the segment header and
//! the record header. Everything here is pure byte arithmetic, so it is the
//! one place that says what the bytes on disk mean.
//!
//! ```text
//! A segment file (preallocated to `capacity` bytes, zero-filled):
//!
//!  0                                                              64
//!  +---------------------------------------------------------------+
//!  | segment header                                                |
//!  +---------------------------------------------------------------+
//!  | record | record | ... | record | SEAL or zeros ...            |
//!  +---------------------------------------------------------------+
//!
//! Segment header (64 bytes):
//!
//!  0        8        12       16                24               32
//!  +--------+--------+--------+-----------------+----------------+
//!  | magic  |version | header | segment index   | first sequence |
//!  | 8 B    | u32    | bytes  | u64             | u64            |
//!  +--------+--------+--------+-----------------+----------------+
//!  32       36       40                48                56       60       64
//!  +--------+--------+-----------------+-----------------+--------+--------+
//!  | prev   |reserved| capacity        | reserved        |reserved| header |
//!  | crc u32| u32 = 0| u64 (file size) | u64 = 0         | u32 = 0| crc u32|
//!  +--------+--------+-----------------+-----------------+--------+--------+
//!
//! Record (8-byte aligned; `length` counts header and body, not padding):
//!
//!  0        4        6        8                16               24
//!  +--------+--------+--------+----------------+----------------+
//!  | length | type   | flags  | sequence       | timestamp_ns   |
//!  | u32    | u16    | u16=0  | u64            | u64            |
//!  +--------+--------+--------+----------------+----------------+
//!  24               32       36       40
//!  +----------------+--------+--------+------------------------------+- - - - - -+
//!  | term           | prev   | crc    | body (length - 40 bytes)     | zero pad  |
//!  | u64            | crc u32| u32    |                              | to 8      |
//!  +----------------+--------+--------+------------------------------+- - - - - -+
//! ```
//!
//! - `crc` is CRC32C over bytes `0..36` of the record (length included)
//!   followed by the body. `prev` is the `crc` of the record before it (in
//!   the previous segment for a segment's first record, where it also equals
//!   the segment header's `prev crc`); the journal's very first record links
//!   to 0. A record that was cut, changed, reordered or lost breaks the
//!   checksum or the chain.
//! - `term` is the caller's epoch (a Raft term: the leader's term when the
//!   record was first appended); it never decreases along the journal.
//!   A journal that does not replicate leaves it 0.
//! - `sequence` is contiguous from 1 across segments; the segment header's
//!   `first sequence` is that of its first record.
//! - `length` is written last, with a release store, so a concurrent reader
//!   (or a process that died mid-append) sees either the whole record or a
//!   zero length.
//! - A `length` of [`SEAL`] means "this segment is finished; continue in the
//!   next one". It is written only once the next segment exists (under
//!   `fsync`, once its directory entry is durable), so a sealed segment
//!   with no successor means a segment was lost. A finished segment may
//!   also lack its seal (a stop before the flusher wrote it); then the next
//!   segment's header must continue the chain.
//! - The header crc is CRC32C over bytes `0..60` of the segment header.

#![forbid(unsafe_code)]

/// The segment header's first 8 bytes.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"EXJRNL\0\x01";
/// The format version written and accepted.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// Bytes of the segment header; records start here.
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Bytes of a record header.
pub const RECORD_HEADER_BYTES: usize = 40;
/// Records start on multiples of this.
pub const RECORD_ALIGNMENT: usize = 8;
/// The `length` value that seals a segment.
pub(crate) const SEAL: u32 = u32::MAX;

const _: () = assert!(SEGMENT_HEADER_BYTES == 64);
const _: () = assert!(RECORD_HEADER_BYTES == 40);
const _: () = assert!(SEGMENT_HEADER_BYTES.is_multiple_of(RECORD_ALIGNMENT));
const _: () = assert!(RECORD_HEADER_BYTES.is_multiple_of(RECORD_ALIGNMENT));

/// Byte offsets of the record header's fields.
pub(crate) mod record_field {
    pub(crate) const LENGTH: usize = 0;
    pub(crate) const TYPE: usize = 4;
    pub(crate) const FLAGS: usize = 6;
    pub(crate) const SEQUENCE: usize = 8;
    pub(crate) const TIMESTAMP: usize = 16;
    pub(crate) const TERM: usize = 24;
    pub(crate) const PREVIOUS: usize = 32;
    pub(crate) const CHECKSUM: usize = 36;
}

/// The bytes a record of `body_bytes` occupies, padding included.
pub(crate) const fn record_footprint(body_bytes: usize) -> usize {
    (RECORD_HEADER_BYTES + body_bytes).next_multiple_of(RECORD_ALIGNMENT)
}

/// A record header as decoded from its 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) length: u32,
    pub(crate) record_type: u16,
    pub(crate) flags: u16,
    pub(crate) sequence: u64,
    pub(crate) timestamp_ns: u64,
    pub(crate) term: u64,
    pub(crate) previous_checksum: u32,
    pub(crate) checksum: u32,
}

impl RecordHeader {
    pub(crate) fn decode(bytes: &[u8; RECORD_HEADER_BYTES]) -> RecordHeader {
        RecordHeader {
            length: read_u32(bytes, record_field::LENGTH),
            record_type: read_u16(bytes, record_field::TYPE),
            flags: read_u16(bytes, record_field::FLAGS),
            sequence: read_u64(bytes, record_field::SEQUENCE),
            timestamp_ns: read_u64(bytes, record_field::TIMESTAMP),
            term: read_u64(bytes, record_field::TERM),
            previous_checksum: read_u32(bytes, record_field::PREVIOUS),
            checksum: read_u32(bytes, record_field::CHECKSUM),
        }
    }

    /// The header's bytes. The checksum field is written as stored in
    /// `self`; [`record_checksum`] computes what it must be.
    pub(crate) fn encode(&self) -> [u8; RECORD_HEADER_BYTES] {
        let mut bytes = [0u8; RECORD_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&self.length.to_le_bytes());
        bytes[4..6].copy_from_slice(&self.record_type.to_le_bytes());
        bytes[6..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.timestamp_ns.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.term.to_le_bytes());
        bytes[32..36].copy_from_slice(&self.previous_checksum.to_le_bytes());
        bytes[36..40].copy_from_slice(&self.checksum.to_le_bytes());
        bytes
    }
}

/// The checksum of a record: CRC32C of header bytes `0..36`, then the body.
/// Computed with [`crate::checksum`], which is cheaper to call than the
/// `crc32c` crate for inputs of a record's usual size and gives the same
/// values.
#[inline]
pub(crate) fn record_checksum(header: &[u8; RECORD_HEADER_BYTES], body: &[u8]) -> u32 {
    crate::checksum::crc32c_concat(&header[..record_field::CHECKSUM], body)
}

/// A segment header as decoded from its 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) index: u64,
    pub(crate) first_sequence: u64,
    pub(crate) previous_checksum: u32,
    pub(crate) capacity: u64,
}

/// Why a segment header is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SegmentHeaderError {
    /// All 64 bytes are zero: a segment created but never given its header.
    Blank,
    Magic,
    Version(u32),
    Checksum,
    Reserved,
}

impl SegmentHeaderError {
    pub(crate) fn describe(self) -> String {
        match self {
            SegmentHeaderError::Blank => "the header was never written".to_owned(),
            SegmentHeaderError::Magic => {
                "the file does not start with the journal's magic".to_owned()
            }
            SegmentHeaderError::Version(found) => {
                format!("format version {found}, this build reads {FORMAT_VERSION}")
            }
            SegmentHeaderError::Checksum => "the header checksum does not match".to_owned(),
            SegmentHeaderError::Reserved => "a reserved header field is not zero".to_owned(),
        }
    }
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut bytes = [0u8; SEGMENT_HEADER_BYTES];
        bytes[0..8].copy_from_slice(&SEGMENT_MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(SEGMENT_HEADER_BYTES as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&self.index.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.first_sequence.to_le_bytes());
        bytes[32..36].copy_from_slice(&self.previous_checksum.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.capacity.to_le_bytes());
        let checksum = crate::checksum::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    pub(crate) fn decode(
        bytes: &[u8; SEGMENT_HEADER_BYTES],
    ) -> Result<SegmentHeader, SegmentHeaderError> {
        if bytes.iter().all(|&b| b == 0) {
            return Err(SegmentHeaderError::Blank);
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(SegmentHeaderError::Magic);
        }
        if crate::checksum::crc32c(&bytes[..60]) != read_u32(bytes, 60) {
            return Err(SegmentHeaderError::Checksum);
        }
        // After the checksum, so that a flipped bit in the version field
        // is damage; a header that checks out with another version is
        // another version of the format (every version keeps the magic,
        // the version and the header crc where version 1 had them).
        let version = read_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(SegmentHeaderError::Version(version));
        }
        let reserved_zero = read_u32(bytes, 12) as usize == SEGMENT_HEADER_BYTES
            && read_u32(bytes, 36) == 0
            && read_u64(bytes, 48) == 0
            && read_u32(bytes, 56) == 0;
        if !reserved_zero {
            return Err(SegmentHeaderError::Reserved);
        }
        Ok(SegmentHeader {
            index: read_u64(bytes, 16),
            first_sequence: read_u64(bytes, 24),
            previous_checksum: read_u32(bytes, 32),
            capacity: read_u64(bytes, 40),
        })
    }
}

pub(crate) fn read_u16(bytes: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes(bytes[offset..offset + 2].try_into().expect("2 bytes"))
}

pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_round_trips_at_fixed_offsets() {
        let header = RecordHeader {
            length: 0x0403_0201,
            record_type: 0x0605,
            flags: 0,
            sequence: 0x1817_1615_1413_1211,
            timestamp_ns: 0x2827_2625_2423_2221,
            term: 0x3837_3635_3433_3231,
            previous_checksum: 0x4443_4241,
            checksum: 0x5453_5251,
        };
        let bytes = header.encode();
        assert_eq!(
            bytes,
            [
                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x00, 0x00, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16,
                0x17, 0x18, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x31, 0x32, 0x33, 0x34,
                0x35, 0x36, 0x37, 0x38, 0x41, 0x42, 0x43, 0x44, 0x51, 0x52, 0x53, 0x54,
            ]
        );
        assert_eq!(RecordHeader::decode(&bytes), header);
    }

    #[test]
    fn checksum_covers_length_and_body_but_not_itself() {
        let mut header = RecordHeader {
            length: 48,
            record_type: 1,
            flags: 0,
            sequence: 7,
            timestamp_ns: 9,
            term: 5,
            previous_checksum: 3,
            checksum: 0,
        }
        .encode();
        let body = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let checksum = record_checksum(&header, &body);
        header[record_field::CHECKSUM] ^= 0xFF;
        assert_eq!(record_checksum(&header, &body), checksum);
        for byte in 0..record_field::CHECKSUM {
            let mut changed = header;
            changed[byte] ^= 1;
            assert_ne!(record_checksum(&changed, &body), checksum, "byte {byte}");
        }
        assert_ne!(
            record_checksum(&header, &[1, 2, 3, 4, 5, 6, 7, 9]),
            checksum
        );
    }

    #[test]
    fn record_checksum_is_the_crates_crc32c_of_header_then_body() {
        let header = RecordHeader {
            length: 0,
            record_type: 3,
            flags: 0,
            sequence: 0x0102_0304_0506_0708,
            timestamp_ns: 0x1112_1314_1516_1718,
            term: 0x2122_2324_2526_2728,
            previous_checksum: 0xDEAD_BEEF,
            checksum: 0,
        };
        for body_bytes in [0usize, 1, 7, 8, 64, 255, 256, 739, 740, 741, 1_024, 4_096] {
            let body: Vec<u8> = (0..body_bytes).map(|i| (i * 31 + 7) as u8).collect();
            let header = RecordHeader {
                length: (RECORD_HEADER_BYTES + body_bytes) as u32,
                ..header
            }
            .encode();
            let mut covered = header[..record_field::CHECKSUM].to_vec();
            covered.extend_from_slice(&body);
            assert_eq!(
                record_checksum(&header, &body),
                crc32c::crc32c(&covered),
                "body of {body_bytes} bytes"
            );
        }
    }

    #[test]
    fn segment_header_round_trips_and_rejects_any_change() {
        let header = SegmentHeader {
            index: 3,
            first_sequence: 1001,
            previous_checksum: 0xDEAD_BEEF,
            capacity: 1 << 20,
        };
        let bytes = header.encode();
        assert_eq!(read_u32(&bytes, 60), crc32c::crc32c(&bytes[..60]));
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        for byte in 0..SEGMENT_HEADER_BYTES {
            let mut changed = bytes;
            changed[byte] ^= 0x10;
            assert!(SegmentHeader::decode(&changed).is_err(), "byte {byte}");
        }
        assert_eq!(
            SegmentHeader::decode(&[0; SEGMENT_HEADER_BYTES]),
            Err(SegmentHeaderError::Blank)
        );
    }

    #[test]
    fn footprints_are_aligned() {
        assert_eq!(record_footprint(0), 40);
        assert_eq!(record_footprint(1), 48);
        assert_eq!(record_footprint(8), 48);
        assert_eq!(record_footprint(32), 72);
    }
}
