//! MoldUDP64 packets: downstream packets, heartbeats, end of session, and
//! re-request packets (NASDAQ MoldUDP64 Protocol Specification 1.00).
//!
//! Sans-I/O: this module only turns messages into datagram payloads and
//! back. Sockets, timers and retransmission live elsewhere.
//!
//! # Byte layouts
//!
//! All integers are unsigned big-endian. Offsets are in bytes.
//!
//! Downstream packet (server → subscribers, multicast or a re-request reply):
//!
//! ```text
//! offset  len  field
//!      0   10  Session          Alpha, space padded on the right
//!     10    8  Sequence Number  sequence number of the first message
//!     18    2  Message Count    number of message blocks that follow
//!     20    …  Message Block × Message Count
//!
//! Message Block:
//!      0    2  Message Length   length of Message Data (not counting itself)
//!      2    …  Message Data
//! ```
//!
//! The message in block `i` (0-based) has sequence number
//! `Sequence Number + i`.
//!
//! Special downstream packets (header only, 20 bytes, no blocks):
//!
//! * Heartbeat: Message Count `0`, Sequence Number = the next sequence
//!   number the subscriber should expect.
//! * End of Session: Message Count `0xFFFF`, Sequence Number = the next
//!   sequence number (one past the last message of the session).
//!
//! Request packet (subscriber → re-request server), exactly 20 bytes:
//!
//! ```text
//! offset  len  field
//!      0   10  Session
//!     10    8  Sequence Number          first sequence number wanted
//!     18    2  Requested Message Count  number of messages wanted
//! ```
//!
//! # Payload size
//!
//! [`DEFAULT_PAYLOAD_MAX`] is 1472 bytes: an Ethernet MTU of 1500 bytes minus
//! a 20-byte IPv4 header minus an 8-byte UDP header, so a full packet never
//! fragments. [`PacketBuilder`] never produces a packet longer than its
//! configured maximum.

use std::fmt;
use std::iter::FusedIterator;

/// Length of the downstream packet header and of a request packet.
pub const HEADER_LEN: usize = 20;

/// Length of the Session field.
pub const SESSION_LEN: usize = 10;

/// Length of the Message Length prefix of a message block.
pub const BLOCK_PREFIX_LEN: usize = 2;

/// Message Count value that marks an End of Session packet.
pub const END_OF_SESSION_COUNT: u16 = 0xFFFF;

/// Default maximum UDP payload: 1500-byte Ethernet MTU − 20-byte IPv4
/// header − 8-byte UDP header = 1472 bytes, so packets never fragment.
pub const DEFAULT_PAYLOAD_MAX: usize = 1472;

/// Largest UDP payload over IPv4 (65535 − 20 − 8); the upper bound on a
/// builder's `payload_max`.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Errors from building or parsing MoldUDP64 packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoldError {
    /// The packet is shorter than the 20-byte header.
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The Session field is not printable ASCII.
    InvalidSession,
    /// Message block `index` (0-based) runs past the end of the packet:
    /// either its length prefix or its data is cut off (the Message Count
    /// claims more blocks than the packet holds).
    TruncatedBlock {
        /// 0-based index of the block.
        index: u16,
    },
    /// Bytes remain after the last block the Message Count announces (or
    /// after the header of a heartbeat / end-of-session packet).
    TrailingBytes {
        /// Number of unexpected bytes.
        len: usize,
    },
    /// `Sequence Number + Message Count` does not fit in a `u64`.
    SequenceOverflow,
    /// A request packet is not exactly 20 bytes.
    WrongLength {
        /// Bytes given.
        len: usize,
    },
    /// A message can never fit in one packet with this builder's payload
    /// maximum (or is longer than a `u16` length prefix allows).
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// Largest message this builder accepts.
        max: usize,
    },
    /// A builder's payload maximum is below 22 bytes (header plus one empty
    /// block) or above [`MAX_UDP_PAYLOAD`].
    InvalidPayloadMax {
        /// The rejected value.
        payload_max: usize,
    },
}

impl fmt::Display for MoldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } => {
                write!(
                    f,
                    "packet of {len} bytes is shorter than the {HEADER_LEN}-byte header"
                )
            }
            Self::InvalidSession => f.write_str("session is not printable ASCII"),
            Self::TruncatedBlock { index } => {
                write!(f, "message block {index} runs past the end of the packet")
            }
            Self::TrailingBytes { len } => {
                write!(f, "{len} bytes after the last message block")
            }
            Self::SequenceOverflow => f.write_str("sequence number + message count overflows u64"),
            Self::WrongLength { len } => {
                write!(f, "request packet is {len} bytes, expected {HEADER_LEN}")
            }
            Self::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the maximum of {max}")
            }
            Self::InvalidPayloadMax { payload_max } => write!(
                f,
                "payload maximum {payload_max} is outside {}..={MAX_UDP_PAYLOAD}",
                HEADER_LEN + BLOCK_PREFIX_LEN
            ),
        }
    }
}

impl std::error::Error for MoldError {}

/// A MoldUDP64 session name: 10 bytes of printable ASCII (0x20..=0x7E),
/// space padded on the right.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Session([u8; SESSION_LEN]);

impl Session {
    /// Builds a session from 1–10 printable ASCII characters, padding with
    /// spaces. Returns `None` for an empty, too long or non-printable name.
    pub fn new(name: &str) -> Option<Self> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > SESSION_LEN || !bytes.iter().all(|&b| is_printable(b))
        {
            return None;
        }
        let mut out = [b' '; SESSION_LEN];
        out[..bytes.len()].copy_from_slice(bytes);
        Some(Self(out))
    }

    /// Takes the 10 raw bytes of a Session field. Returns `None` unless
    /// every byte is printable ASCII.
    pub fn from_bytes(bytes: [u8; SESSION_LEN]) -> Option<Self> {
        bytes
            .iter()
            .all(|&b| is_printable(b))
            .then_some(Self(bytes))
    }

    /// The 10 bytes as sent on the wire (padding included).
    pub const fn as_bytes(&self) -> &[u8; SESSION_LEN] {
        &self.0
    }

    /// The name without the right-hand space padding.
    pub fn as_str(&self) -> &str {
        // Invariant: every byte is printable ASCII, hence valid UTF-8.
        std::str::from_utf8(&self.0)
            .unwrap_or_default()
            .trim_end_matches(' ')
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Session({:?})",
            std::str::from_utf8(&self.0).unwrap_or_default()
        )
    }
}

const fn is_printable(b: u8) -> bool {
    matches!(b, 0x20..=0x7E)
}

/// The 20-byte header of a downstream packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// Session the packet belongs to.
    pub session: Session,
    /// Sequence number of the first message (heartbeat / end of session:
    /// the next expected sequence number).
    pub sequence: u64,
    /// Message Count (`0` heartbeat, `0xFFFF` end of session).
    pub count: u16,
}

impl PacketHeader {
    /// A heartbeat: no messages.
    pub const fn is_heartbeat(&self) -> bool {
        self.count == 0
    }

    /// The end-of-session marker (Message Count `0xFFFF`).
    pub const fn is_end_of_session(&self) -> bool {
        self.count == END_OF_SESSION_COUNT
    }

    /// Number of message blocks that follow the header (`0` for heartbeats
    /// and end of session).
    pub const fn message_count(&self) -> u16 {
        if self.is_end_of_session() {
            0
        } else {
            self.count
        }
    }

    /// The sequence number expected after this packet: `sequence + count`
    /// for data packets, `sequence` for heartbeat and end of session.
    /// Saturates at `u64::MAX` (parsed packets never overflow).
    pub const fn next_sequence(&self) -> u64 {
        self.sequence.saturating_add(self.message_count() as u64)
    }

    /// The 20 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        encode_header(&self.session, self.sequence, self.count)
    }

    /// Reads the first 20 bytes of `bytes` as a header (trailing bytes are
    /// not examined).
    pub fn decode(bytes: &[u8]) -> Result<Self, MoldError> {
        let (session, sequence, count) = decode_header(bytes)?;
        Ok(Self {
            session,
            sequence,
            count,
        })
    }
}

fn encode_header(session: &Session, sequence: u64, count: u16) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..10].copy_from_slice(session.as_bytes());
    out[10..18].copy_from_slice(&sequence.to_be_bytes());
    out[18..20].copy_from_slice(&count.to_be_bytes());
    out
}

fn decode_header(bytes: &[u8]) -> Result<(Session, u64, u16), MoldError> {
    let Some(h) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(MoldError::TooShort { len: bytes.len() });
    };
    let mut session = [0u8; SESSION_LEN];
    session.copy_from_slice(&h[..10]);
    let session = Session::from_bytes(session).ok_or(MoldError::InvalidSession)?;
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[10..18]);
    let count = u16::from_be_bytes([h[18], h[19]]);
    Ok((session, u64::from_be_bytes(seq), count))
}

/// Writes a heartbeat (Message Count 0) into `out`, replacing its contents.
/// `next_sequence` is the sequence number of the next message to be sent.
/// Does not allocate when `out` has capacity for 20 bytes.
pub fn heartbeat(session: Session, next_sequence: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&encode_header(&session, next_sequence, 0));
}

/// Writes an End of Session packet (Message Count 0xFFFF) into `out`,
/// replacing its contents. `next_sequence` is one past the last message of
/// the session. Does not allocate when `out` has capacity for 20 bytes.
pub fn end_of_session(session: Session, next_sequence: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&encode_header(
        &session,
        next_sequence,
        END_OF_SESSION_COUNT,
    ));
}

/// Builds downstream packets into a buffer it owns, allocated once in
/// [`PacketBuilder::new`] with capacity `payload_max`; building packets
/// never allocates.
///
/// Usage: [`start`](Self::start) a packet at a sequence number,
/// [`try_push`](Self::try_push) messages until one does not fit,
/// [`finish`](Self::finish) and send the bytes, then `start` the next
/// packet at [`next_sequence`](Self::next_sequence) and push the message
/// that did not fit.
#[derive(Debug)]
pub struct PacketBuilder {
    session: Session,
    payload_max: usize,
    buf: Vec<u8>,
    sequence: u64,
    count: u16,
}

impl PacketBuilder {
    /// A builder whose packets never exceed `payload_max` bytes (header
    /// included). `payload_max` must be in `22..=MAX_UDP_PAYLOAD`; use
    /// [`DEFAULT_PAYLOAD_MAX`] unless the path MTU says otherwise.
    ///
    /// The builder starts a packet at sequence number 1 (the first sequence
    /// number of a session).
    pub fn new(session: Session, payload_max: usize) -> Result<Self, MoldError> {
        if !(HEADER_LEN + BLOCK_PREFIX_LEN..=MAX_UDP_PAYLOAD).contains(&payload_max) {
            return Err(MoldError::InvalidPayloadMax { payload_max });
        }
        let mut b = Self {
            session,
            payload_max,
            buf: Vec::with_capacity(payload_max),
            sequence: 1,
            count: 0,
        };
        b.start(1);
        Ok(b)
    }

    /// The session written into every packet.
    pub const fn session(&self) -> Session {
        self.session
    }

    /// The maximum packet length in bytes.
    pub const fn payload_max(&self) -> usize {
        self.payload_max
    }

    /// The longest message that fits in a packet on its own:
    /// `payload_max − 20 − 2`.
    pub const fn max_message_len(&self) -> usize {
        self.payload_max - HEADER_LEN - BLOCK_PREFIX_LEN
    }

    /// Discards any packet in progress and starts a new, empty one whose
    /// first message gets sequence number `sequence`.
    pub fn start(&mut self, sequence: u64) {
        self.sequence = sequence;
        self.count = 0;
        self.buf.clear();
        self.buf
            .extend_from_slice(&encode_header(&self.session, sequence, 0));
    }

    /// Appends `message` as the next message block.
    ///
    /// * `Ok(true)`: appended.
    /// * `Ok(false)`: the packet is full (no room for the block, the Message
    ///   Count would reach 0xFFFF, or the next sequence number would
    ///   overflow); nothing was written. Finish and send this packet, start
    ///   the next one and push again.
    /// * `Err(MessageTooLarge)`: the message is longer than
    ///   [`max_message_len`](Self::max_message_len) and fits in no packet.
    pub fn try_push(&mut self, message: &[u8]) -> Result<bool, MoldError> {
        let max = self.max_message_len();
        if message.len() > max {
            return Err(MoldError::MessageTooLarge {
                len: message.len(),
                max,
            });
        }
        let fits = self.buf.len() + BLOCK_PREFIX_LEN + message.len() <= self.payload_max;
        let count_ok = self.count < END_OF_SESSION_COUNT - 1;
        let seq_ok = self
            .sequence
            .checked_add(u64::from(self.count) + 1)
            .is_some();
        if !(fits && count_ok && seq_ok) {
            return Ok(false);
        }
        // `max <= MAX_UDP_PAYLOAD < 65536`, so the length fits in a u16.
        let len = message.len() as u16;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(message);
        self.count += 1;
        Ok(true)
    }

    /// Number of messages in the packet in progress.
    pub const fn message_count(&self) -> u16 {
        self.count
    }

    /// Sequence number of the first message of the packet in progress.
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The sequence number after the last message pushed: where the next
    /// packet starts.
    pub const fn next_sequence(&self) -> u64 {
        self.sequence + self.count as u64
    }

    /// Current length in bytes of the packet in progress.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no message has been pushed since [`start`](Self::start).
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Writes the Message Count into the header and returns the packet
    /// bytes. With no messages pushed this is a heartbeat for
    /// `sequence()`. The packet stays in the builder until the next
    /// [`start`](Self::start).
    pub fn finish(&mut self) -> &[u8] {
        self.buf[18..20].copy_from_slice(&self.count.to_be_bytes());
        &self.buf
    }
}

/// A parsed downstream packet borrowing its bytes.
///
/// [`Packet::parse`] validates the whole packet, so iterating
/// [`messages`](Packet::messages) cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    header: PacketHeader,
    blocks: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses and validates a downstream packet (zero-copy).
    ///
    /// Strict: the Message Count blocks must exactly fill the packet. A
    /// count larger than the blocks present gives
    /// [`MoldError::TruncatedBlock`], a smaller one (or any body after a
    /// heartbeat / end-of-session header) gives
    /// [`MoldError::TrailingBytes`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MoldError> {
        let header = PacketHeader::decode(bytes)?;
        let blocks = &bytes[HEADER_LEN..];
        let count = header.message_count();
        if header.sequence.checked_add(u64::from(count)).is_none() {
            return Err(MoldError::SequenceOverflow);
        }
        let mut rest = blocks;
        for index in 0..count {
            let Some((len, after)) = rest.split_first_chunk::<BLOCK_PREFIX_LEN>() else {
                return Err(MoldError::TruncatedBlock { index });
            };
            let len = usize::from(u16::from_be_bytes(*len));
            if after.len() < len {
                return Err(MoldError::TruncatedBlock { index });
            }
            rest = &after[len..];
        }
        if !rest.is_empty() {
            return Err(MoldError::TrailingBytes { len: rest.len() });
        }
        Ok(Self { header, blocks })
    }

    /// The packet header.
    pub const fn header(&self) -> &PacketHeader {
        &self.header
    }

    /// The messages with their sequence numbers, in order.
    pub fn messages(&self) -> Messages<'a> {
        Messages {
            rest: self.blocks,
            sequence: self.header.sequence,
            remaining: self.header.message_count(),
        }
    }
}

/// Iterator over the `(sequence, message)` pairs of a [`Packet`].
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
    sequence: u64,
    remaining: u16,
}

impl<'a> Iterator for Messages<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // `Packet::parse` validated every block; the checks only guard the
        // invariant without panicking.
        let (len, after) = self.rest.split_first_chunk::<BLOCK_PREFIX_LEN>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if after.len() < len {
            self.remaining = 0;
            return None;
        }
        let (message, rest) = after.split_at(len);
        let item = (self.sequence, message);
        self.rest = rest;
        self.sequence = self.sequence.wrapping_add(1);
        self.remaining -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Messages<'_> {}
impl FusedIterator for Messages<'_> {}

/// A re-request packet: subscriber asks for `count` messages starting at
/// `sequence`. Exactly 20 bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Session the messages belong to.
    pub session: Session,
    /// First sequence number wanted.
    pub sequence: u64,
    /// Requested Message Count.
    pub count: u16,
}

impl Request {
    /// The 20 bytes of the request.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        encode_header(&self.session, self.sequence, self.count)
    }

    /// Decodes a request; `bytes` must be exactly 20 bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, MoldError> {
        if bytes.len() != HEADER_LEN {
            return Err(MoldError::WrongLength { len: bytes.len() });
        }
        let (session, sequence, count) = decode_header(bytes)?;
        Ok(Self {
            session,
            sequence,
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn session() -> Session {
        Session::new("SESS01").unwrap()
    }

    #[test]
    fn session_rules() {
        assert_eq!(session().as_bytes(), b"SESS01    ");
        assert_eq!(session().as_str(), "SESS01");
        assert_eq!(
            Session::new("ABCDEFGHIJ").unwrap().as_bytes(),
            b"ABCDEFGHIJ"
        );
        assert!(Session::new("").is_none());
        assert!(Session::new("ABCDEFGHIJK").is_none());
        assert!(Session::new("AB\tC").is_none());
        assert!(Session::new("é").is_none());
        assert!(Session::from_bytes(*b"ABC\0\0\0\0\0\0\0").is_none());
        assert_eq!(Session::from_bytes(*b"SESS01    "), Some(session()));
    }

    const GOLDEN_TWO: [u8; 32] = [
        b'S', b'E', b'S', b'S', b'0', b'1', b' ', b' ', b' ', b' ', // session
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, // sequence 258
        0x00, 0x02, // count 2
        0x00, 0x03, b'a', b'b', b'c', // block 1
        0x00, 0x05, b'h', b'e', b'l', b'l', b'o', // block 2
    ];

    #[test]
    fn golden_two_messages() {
        let mut b = PacketBuilder::new(session(), DEFAULT_PAYLOAD_MAX).unwrap();
        b.start(258);
        assert_eq!(b.try_push(b"abc"), Ok(true));
        assert_eq!(b.try_push(b"hello"), Ok(true));
        assert_eq!(b.message_count(), 2);
        assert_eq!(b.next_sequence(), 260);
        assert_eq!(b.finish(), &GOLDEN_TWO[..]);

        let p = Packet::parse(&GOLDEN_TWO).unwrap();
        assert_eq!(
            *p.header(),
            PacketHeader {
                session: session(),
                sequence: 258,
                count: 2
            }
        );
        assert!(!p.header().is_heartbeat());
        assert!(!p.header().is_end_of_session());
        assert_eq!(p.header().next_sequence(), 260);
        let msgs: Vec<_> = p.messages().collect();
        assert_eq!(msgs, vec![(258, &b"abc"[..]), (259, &b"hello"[..])]);
        assert_eq!(p.messages().len(), 2);
    }

    #[test]
    fn golden_heartbeat() {
        let expected: [u8; 20] = [
            b'S', b'E', b'S', b'S', b'0', b'1', b' ', b' ', b' ', b' ', //
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
            0x00, 0x00,
        ];
        let mut out = Vec::new();
        heartbeat(session(), 0x0102_0304_0506_0708, &mut out);
        assert_eq!(out, expected);
        let p = Packet::parse(&out).unwrap();
        assert!(p.header().is_heartbeat());
        assert!(!p.header().is_end_of_session());
        assert_eq!(p.header().next_sequence(), 0x0102_0304_0506_0708);
        assert_eq!(p.messages().count(), 0);

        // An empty builder packet is the same heartbeat.
        let mut b = PacketBuilder::new(session(), DEFAULT_PAYLOAD_MAX).unwrap();
        b.start(0x0102_0304_0506_0708);
        assert_eq!(b.finish(), &expected[..]);
    }

    #[test]
    fn golden_end_of_session() {
        let expected: [u8; 20] = [
            b'S', b'E', b'S', b'S', b'0', b'1', b' ', b' ', b' ', b' ', //
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A, //
            0xFF, 0xFF,
        ];
        let mut out = vec![9; 50];
        end_of_session(session(), 42, &mut out);
        assert_eq!(out, expected);
        let p = Packet::parse(&out).unwrap();
        assert!(p.header().is_end_of_session());
        assert!(!p.header().is_heartbeat());
        assert_eq!(p.header().message_count(), 0);
        assert_eq!(p.header().next_sequence(), 42);
        assert_eq!(p.messages().count(), 0);
    }

    #[test]
    fn golden_request() {
        let expected: [u8; 20] = [
            b'S', b'E', b'S', b'S', b'0', b'1', b' ', b' ', b' ', b' ', //
            0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, //
            0x01, 0x00,
        ];
        let r = Request {
            session: session(),
            sequence: 65_536,
            count: 256,
        };
        assert_eq!(r.encode(), expected);
        assert_eq!(Request::decode(&expected), Ok(r));
        assert_eq!(
            Request::decode(&expected[..19]),
            Err(MoldError::WrongLength { len: 19 })
        );
        let mut long = expected.to_vec();
        long.push(0);
        assert_eq!(
            Request::decode(&long),
            Err(MoldError::WrongLength { len: 21 })
        );
        let mut bad = expected;
        bad[0] = 0x7F;
        assert_eq!(Request::decode(&bad), Err(MoldError::InvalidSession));
    }

    #[test]
    fn builder_fills_payload_max_exactly() {
        // 20 header + 3 × (2 + 10) = 56 bytes.
        let mut b = PacketBuilder::new(session(), 56).unwrap();
        assert_eq!(b.max_message_len(), 34);
        b.start(7);
        for _ in 0..3 {
            assert_eq!(b.try_push(&[0xAB; 10]), Ok(true));
        }
        assert_eq!(b.len(), 56);
        assert_eq!(b.try_push(&[]), Ok(false));
        assert_eq!(b.message_count(), 3);
        assert_eq!(b.finish().len(), 56);
        let next = b.next_sequence();
        assert_eq!(next, 10);
        b.start(next);
        assert!(b.is_empty());
        assert_eq!(b.try_push(&[0xCD; 34]), Ok(true));
        assert_eq!(b.len(), 56);
        assert_eq!(b.try_push(&[]), Ok(false));
        let p = Packet::parse(b.finish()).unwrap();
        assert_eq!(
            p.messages().collect::<Vec<_>>(),
            vec![(10, &[0xCD; 34][..])]
        );
    }

    #[test]
    fn builder_default_mtu_fills_exactly() {
        let mut b = PacketBuilder::new(session(), DEFAULT_PAYLOAD_MAX).unwrap();
        assert_eq!(b.max_message_len(), 1450);
        // 1472 − 20 = 1452 = 2 × (2 + 724).
        assert_eq!(b.try_push(&[1; 724]), Ok(true));
        assert_eq!(b.try_push(&[2; 725]), Ok(false));
        assert_eq!(b.try_push(&[2; 724]), Ok(true));
        assert_eq!(b.finish().len(), DEFAULT_PAYLOAD_MAX);
        assert_eq!(b.try_push(&[]), Ok(false));
    }

    #[test]
    fn builder_rejects_oversized_message_and_bad_config() {
        let mut b = PacketBuilder::new(session(), DEFAULT_PAYLOAD_MAX).unwrap();
        assert_eq!(b.sequence(), 1);
        assert_eq!(
            b.try_push(&[0; 1451]),
            Err(MoldError::MessageTooLarge {
                len: 1451,
                max: 1450
            })
        );
        assert_eq!(b.message_count(), 0);
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(b.try_push(&[0; 1450]), Ok(true));
        assert_eq!(b.finish().len(), DEFAULT_PAYLOAD_MAX);

        assert_eq!(
            PacketBuilder::new(session(), 21).unwrap_err(),
            MoldError::InvalidPayloadMax { payload_max: 21 }
        );
        assert!(PacketBuilder::new(session(), 22).is_ok());
        assert!(PacketBuilder::new(session(), MAX_UDP_PAYLOAD).is_ok());
        assert!(PacketBuilder::new(session(), MAX_UDP_PAYLOAD + 1).is_err());
        // A 22-byte packet holds exactly one empty message.
        let mut tiny = PacketBuilder::new(session(), 22).unwrap();
        assert_eq!(tiny.try_push(&[]), Ok(true));
        assert_eq!(tiny.try_push(&[]), Ok(false));
        assert_eq!(
            tiny.try_push(&[0]),
            Err(MoldError::MessageTooLarge { len: 1, max: 0 })
        );
    }

    #[test]
    fn builder_refuses_sequence_overflow() {
        let mut b = PacketBuilder::new(session(), DEFAULT_PAYLOAD_MAX).unwrap();
        b.start(u64::MAX - 1);
        assert_eq!(b.try_push(b"x"), Ok(true));
        assert_eq!(b.try_push(b"y"), Ok(false));
        assert_eq!(b.next_sequence(), u64::MAX);
        assert!(Packet::parse(b.finish()).is_ok());
    }

    #[test]
    fn parse_errors() {
        // Too short.
        for len in 0..HEADER_LEN {
            assert_eq!(
                Packet::parse(&GOLDEN_TWO[..len]),
                Err(MoldError::TooShort { len })
            );
        }
        // Truncated first block: the header says 2 blocks, none present.
        assert_eq!(
            Packet::parse(&GOLDEN_TWO[..20]),
            Err(MoldError::TruncatedBlock { index: 0 })
        );
        // Half a length prefix.
        assert_eq!(
            Packet::parse(&GOLDEN_TWO[..21]),
            Err(MoldError::TruncatedBlock { index: 0 })
        );
        // Block data cut off.
        assert_eq!(
            Packet::parse(&GOLDEN_TWO[..24]),
            Err(MoldError::TruncatedBlock { index: 0 })
        );
        // Second block missing / cut at every point.
        for len in 25..GOLDEN_TWO.len() {
            assert_eq!(
                Packet::parse(&GOLDEN_TWO[..len]),
                Err(MoldError::TruncatedBlock { index: 1 }),
                "len {len}"
            );
        }
        // Trailing bytes.
        let mut long = GOLDEN_TWO.to_vec();
        long.extend_from_slice(&[0, 0]);
        assert_eq!(
            Packet::parse(&long),
            Err(MoldError::TrailingBytes { len: 2 })
        );
        // Count too small: one block left over.
        let mut small = GOLDEN_TWO;
        small[19] = 1;
        assert_eq!(
            Packet::parse(&small),
            Err(MoldError::TrailingBytes { len: 7 })
        );
        // Count too large.
        let mut big = GOLDEN_TWO;
        big[19] = 3;
        assert_eq!(
            Packet::parse(&big),
            Err(MoldError::TruncatedBlock { index: 2 })
        );
        // Heartbeat / end of session with a body.
        let mut hb = Vec::new();
        heartbeat(session(), 5, &mut hb);
        hb.push(0);
        assert_eq!(Packet::parse(&hb), Err(MoldError::TrailingBytes { len: 1 }));
        let mut eos = Vec::new();
        end_of_session(session(), 5, &mut eos);
        eos.extend_from_slice(&[0, 0]);
        assert_eq!(
            Packet::parse(&eos),
            Err(MoldError::TrailingBytes { len: 2 })
        );
        // Bad session.
        let mut bad = GOLDEN_TWO;
        bad[9] = 0;
        assert_eq!(Packet::parse(&bad), Err(MoldError::InvalidSession));
        // Sequence overflow.
        let mut over = GOLDEN_TWO;
        over[10..18].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(Packet::parse(&over), Err(MoldError::SequenceOverflow));
        // Heartbeat and end of session at u64::MAX are fine.
        let mut hb = Vec::new();
        heartbeat(session(), u64::MAX, &mut hb);
        assert!(Packet::parse(&hb).is_ok());
        end_of_session(session(), u64::MAX, &mut hb);
        assert!(Packet::parse(&hb).is_ok());
    }

    #[test]
    fn errors_display() {
        let e = MoldError::MessageTooLarge {
            len: 2000,
            max: 1450,
        };
        assert_eq!(
            e.to_string(),
            "message of 2000 bytes exceeds the maximum of 1450"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Packet::parse(&bytes) {
                let n = p.messages().count();
                prop_assert_eq!(n, usize::from(p.header().message_count()));
                let total: usize = p.messages().map(|(_, m)| m.len() + 2).sum();
                prop_assert_eq!(total + HEADER_LEN, bytes.len());
            }
        }

        #[test]
        fn parse_never_panics_with_valid_header(
            count in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = encode_header(&session(), 1, count).to_vec();
            bytes.extend_from_slice(&body);
            let _ = Packet::parse(&bytes);
        }

        #[test]
        fn builder_parse_round_trip(
            messages in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..120), 0..40),
            payload_max in 22usize..400,
            first in 1u64..1_000_000,
        ) {
            let mut b = PacketBuilder::new(session(), payload_max).unwrap();
            b.start(first);
            let mut decoded: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut expected: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut next = first;
            let flush = |b: &mut PacketBuilder, decoded: &mut Vec<(u64, Vec<u8>)>| {
                let start = b.sequence();
                let n = b.message_count();
                let bytes = b.finish().to_vec();
                assert!(bytes.len() <= payload_max);
                let p = Packet::parse(&bytes).unwrap();
                assert_eq!(p.header().sequence, start);
                assert_eq!(p.header().count, n);
                decoded.extend(p.messages().map(|(s, m)| (s, m.to_vec())));
                let nx = b.next_sequence();
                b.start(nx);
            };
            for m in &messages {
                match b.try_push(m) {
                    Ok(true) => {}
                    Ok(false) => {
                        prop_assert!(!b.is_empty());
                        flush(&mut b, &mut decoded);
                        prop_assert_eq!(b.try_push(m), Ok(true));
                    }
                    Err(e) => {
                        prop_assert_eq!(
                            e,
                            MoldError::MessageTooLarge { len: m.len(), max: payload_max - 22 }
                        );
                        continue;
                    }
                }
                expected.push((next, m.clone()));
                next += 1;
            }
            flush(&mut b, &mut decoded);
            prop_assert_eq!(b.sequence(), next);
            prop_assert_eq!(decoded, expected);
        }

        #[test]
        fn request_round_trip(seq in any::<u64>(), count in any::<u16>()) {
            let r = Request { session: session(), sequence: seq, count };
            prop_assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
    }
}
