//! SoupBinTCP 4.0 framing and packets, sans-I/O.
//!
//! This module turns the bytes of a SoupBinTCP 4.0 TCP stream into typed
//! packets and back, exactly as NASDAQ's *SoupBinTCP* specification (version
//! 4.0, and 3.00 before it, which has the same packets) lays them out. It
//! owns no socket, clock or thread: the session layer feeds it bytes, asks
//! for packets, and writes the bytes it gets back. Heartbeat timing, login
//! checks and retransmission belong to the session, not here.
//!
//! # Logical packet
//!
//! Every packet, in both directions, is a 2-byte **big-endian** length that
//! counts the bytes *after* it (the packet type plus the payload), then a
//! 1-byte packet type, then the payload:
//!
//! ```text
//! offset  length  field
//! ------  ------  ----------------------------------------------------
//!      0       2  Packet Length  big-endian u16 = 1 + payload length
//!      2       1  Packet Type    ASCII letter, see below
//!      3       n  Payload        n = Packet Length - 1
//! ```
//!
//! The specification defines no maximum payload; a length of 0 cannot hold
//! the type byte and is an error. [`FrameDecoder`] rejects lengths above a
//! configured `packet_length_max` before reading their bodies.
//!
//! # Field types
//!
//! * **Alpha**: ASCII text padded with spaces to the field width. The
//!   specification's general rule is *left-justified, padded on the right*
//!   (username, password). The Login Accepted *Session* is described as
//!   *"left padded with spaces"*, i.e. right-justified; this module writes
//!   both session fields that way (see [`alpha_right_justified`]) and reads
//!   every alpha field back with [`alpha_trimmed`], which strips spaces on
//!   both sides, so it accepts either padding from a peer.
//! * **Numeric**: ASCII decimal digits, right-justified and padded on the
//!   left with spaces. Decoding accepts leading spaces (and, for peers that
//!   left-justify, trailing spaces) around one run of at least one digit whose
//!   value fits a `u64`; anything else is [`FrameError::BadNumeric`].
//!
//! # Packets sent by either side
//!
//! ```text
//! Debug '+'                      Packet Length = 1 + n
//! offset  length  field
//!      0       2  Packet Length
//!      2       1  Packet Type    '+'
//!      3       n  Text           free-form human-readable text
//! ```
//!
//! # Packets sent by the server ([`ServerPacket`])
//!
//! ```text
//! Login Accepted 'A'             Packet Length = 31
//! offset  length  field
//!      0       2  Packet Length  31
//!      2       1  Packet Type    'A'
//!      3      10  Session        Alpha, left padded with spaces
//!     13      20  Sequence Number  Numeric; the next Sequenced Data to be sent
//!
//! Login Rejected 'J'             Packet Length = 2
//!      0       2  Packet Length  2
//!      2       1  Packet Type    'J'
//!      3       1  Reject Reason  'A' not authorized, 'S' session not available
//!
//! Sequenced Data 'S'             Packet Length = 1 + n
//!      0       2  Packet Length
//!      2       1  Packet Type    'S'
//!      3       n  Message        higher-level protocol message (OUCH)
//!
//! Unsequenced Data 'U'           Packet Length = 1 + n
//!      0       2  Packet Length
//!      2       1  Packet Type    'U'
//!      3       n  Message
//!
//! Server Heartbeat 'H'           Packet Length = 1
//!      0       2  Packet Length  1
//!      2       1  Packet Type    'H'
//!
//! End of Session 'Z'             Packet Length = 1
//!      0       2  Packet Length  1
//!      2       1  Packet Type    'Z'
//! ```
//!
//! # Packets sent by the client ([`ClientPacket`])
//!
//! ```text
//! Login Request 'L'              Packet Length = 47
//! offset  length  field
//!      0       2  Packet Length  47
//!      2       1  Packet Type    'L'
//!      3       6  Username       Alpha, left-justified
//!      9      10  Password       Alpha, left-justified
//!     19      10  Requested Session  Alpha; all blanks = the current session
//!     29      20  Requested Sequence Number  Numeric; 0 = from the most
//!                                recently generated message on
//!
//! Unsequenced Data 'U'           Packet Length = 1 + n
//!      0       2  Packet Length
//!      2       1  Packet Type    'U'
//!      3       n  Message        higher-level protocol message (OUCH)
//!
//! Client Heartbeat 'R'           Packet Length = 1
//!      0       2  Packet Length  1
//!      2       1  Packet Type    'R'
//!
//! Logout Request 'O'             Packet Length = 1
//!      0       2  Packet Length  1
//!      2       1  Packet Type    'O'
//! ```
//!
//! # Errors and what a server does with them
//!
//! Decoding happens in two layers. [`next_frame`] (and
//! [`FrameDecoder::next_frame`]) only cuts the stream into frames; the
//! packet decoders ([`ClientPacket::decode`], [`ServerPacket::decode`]) then
//! check the type and body of one frame.
//!
//! | error | layer | stream still framed? | server answer |
//! |---|---|---|---|
//! | [`FrameError::ZeroLength`] | frame | no | disconnect |
//! | [`FrameError::TooLong`] | frame | no | disconnect |
//! | [`FrameError::UnknownType`] | packet | yes | disconnect |
//! | [`FrameError::WrongLength`] | packet | yes | disconnect |
//! | [`FrameError::BadNumeric`] | packet | yes | disconnect |
//! | [`FrameError::UnknownRejectReason`] | packet | yes | (client side only) disconnect |
//!
//! SoupBinTCP has no packet with which a server could reject a malformed
//! packet, so the recommended answer to every error is to log it once and
//! close that connection (a client that has not logged in yet simply gets
//! no Login Accepted). Frame-level errors *must* end the connection: the
//! byte stream can no longer be cut into packets, and [`FrameDecoder`]
//! keeps returning the same error. After a packet-level error the decoder
//! has already consumed the offending frame, so a lenient peer could skip
//! it and continue; this crate's server does not.
//!
//! # Example
//!
//! ```
//! use wire::soupbin::{alpha, ClientPacket, FrameDecoder};
//!
//! let login = ClientPacket::LoginRequest {
//!     username: alpha("DEMO1").unwrap(),
//!     password: alpha("demo1").unwrap(),
//!     requested_session: [b' '; 10],
//!     requested_sequence: 1,
//! };
//! let mut wire = Vec::with_capacity(64);
//! login.encode(&mut wire).unwrap();
//! ClientPacket::ClientHeartbeat.encode(&mut wire).unwrap();
//! assert_eq!(wire.len(), 2 + 47 + 2 + 1);
//!
//! // The server side: TCP may deliver the bytes in any chunks.
//! let mut decoder = FrameDecoder::new(1024);
//! assert_eq!(decoder.feed(&wire[..10]), 10);
//! assert_eq!(decoder.next_client_packet(), Ok(None)); // partial frame
//! assert_eq!(decoder.feed(&wire[10..]), wire.len() - 10);
//! assert_eq!(decoder.next_client_packet(), Ok(Some(login)));
//! assert_eq!(decoder.next_client_packet(), Ok(Some(ClientPacket::ClientHeartbeat)));
//! assert_eq!(decoder.next_client_packet(), Ok(None));
//! ```

use std::fmt;

/// Bytes of the big-endian Packet Length header in front of every packet.
pub const PACKET_LENGTH_BYTES: usize = 2;
/// Width of the Username field of a Login Request.
pub const USERNAME_BYTES: usize = 6;
/// Width of the Password field of a Login Request.
pub const PASSWORD_BYTES: usize = 10;
/// Width of the Session fields (Login Request, Login Accepted).
pub const SESSION_BYTES: usize = 10;
/// Width of the Numeric sequence number fields.
pub const SEQUENCE_NUMBER_BYTES: usize = 20;

/// Packet Length of a Login Request: type + 6 + 10 + 10 + 20.
const LOGIN_REQUEST_LENGTH: usize =
    1 + USERNAME_BYTES + PASSWORD_BYTES + SESSION_BYTES + SEQUENCE_NUMBER_BYTES;
/// Packet Length of a Login Accepted: type + 10 + 20.
const LOGIN_ACCEPTED_LENGTH: usize = 1 + SESSION_BYTES + SEQUENCE_NUMBER_BYTES;
/// Packet Length of a Login Rejected: type + reason code.
const LOGIN_REJECTED_LENGTH: usize = 2;
/// Packet Length of the packets without a payload.
const EMPTY_LENGTH: usize = 1;
/// The largest payload a 16-bit Packet Length can describe.
pub const PAYLOAD_BYTES_MAX: usize = u16::MAX as usize - 1;

const _: () = assert!(LOGIN_REQUEST_LENGTH == 47);
const _: () = assert!(LOGIN_ACCEPTED_LENGTH == 31);
// u64::MAX has 20 decimal digits, so every sequence number fits the field.
const _: () = assert!(u64::MAX / 10_u64.pow(19) < 10);

/// Packet type bytes, as ASCII letters in the specification.
mod packet_type {
    pub(super) const DEBUG: u8 = b'+';
    pub(super) const LOGIN_ACCEPTED: u8 = b'A';
    pub(super) const LOGIN_REJECTED: u8 = b'J';
    pub(super) const SEQUENCED_DATA: u8 = b'S';
    pub(super) const UNSEQUENCED_DATA: u8 = b'U';
    pub(super) const SERVER_HEARTBEAT: u8 = b'H';
    pub(super) const END_OF_SESSION: u8 = b'Z';
    pub(super) const LOGIN_REQUEST: u8 = b'L';
    pub(super) const CLIENT_HEARTBEAT: u8 = b'R';
    pub(super) const LOGOUT_REQUEST: u8 = b'O';
}

/// Why a server refused a Login Request (the Login Rejected reason code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// `'A'`: the username and password combination was invalid.
    NotAuthorized,
    /// `'S'`: the requested session was invalid or not available.
    SessionNotAvailable,
}

impl RejectReason {
    /// The reason's code byte on the wire.
    pub const fn code(self) -> u8 {
        match self {
            RejectReason::NotAuthorized => b'A',
            RejectReason::SessionNotAvailable => b'S',
        }
    }

    /// Parses a code byte; `None` for a code the specification does not define.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            b'A' => Some(RejectReason::NotAuthorized),
            b'S' => Some(RejectReason::SessionNotAvailable),
            _ => None,
        }
    }
}

/// A packet sent by the client to the server. Payloads borrow from the
/// decoded buffer, so decoding allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPacket<'a> {
    /// `'+'`: free-form human-readable text; receivers may ignore it.
    Debug(&'a [u8]),
    /// `'L'`: the first packet of every connection.
    LoginRequest {
        /// Alpha, left-justified (build with [`alpha`]).
        username: [u8; USERNAME_BYTES],
        /// Alpha, left-justified (build with [`alpha`]).
        password: [u8; PASSWORD_BYTES],
        /// Alpha; all blanks asks for the currently active session.
        requested_session: [u8; SESSION_BYTES],
        /// The next sequenced message the client wants; 0 asks for the most
        /// recently generated message on.
        requested_sequence: u64,
    },
    /// `'U'`: a higher-level message from the client (an OUCH order).
    UnsequencedData(&'a [u8]),
    /// `'R'`: the client is alive.
    ClientHeartbeat,
    /// `'O'`: the client ends the session.
    LogoutRequest,
}

/// A packet sent by the server to the client. Payloads borrow from the
/// decoded buffer, so decoding allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPacket<'a> {
    /// `'+'`: free-form human-readable text; receivers may ignore it.
    Debug(&'a [u8]),
    /// `'A'`: the login succeeded.
    LoginAccepted {
        /// Alpha, left padded with spaces (build with
        /// [`alpha_right_justified`]).
        session: [u8; SESSION_BYTES],
        /// The sequence number of the next Sequenced Data packet to be sent.
        sequence: u64,
    },
    /// `'J'`: the login failed; the server then closes the connection.
    LoginRejected {
        /// Why.
        reason: RejectReason,
    },
    /// `'S'`: one message of the sequenced stream; its number is implicit
    /// (one more than the previous one, starting from Login Accepted).
    SequencedData(&'a [u8]),
    /// `'U'`: a message outside the sequenced stream.
    UnsequencedData(&'a [u8]),
    /// `'H'`: the server is alive.
    ServerHeartbeat,
    /// `'Z'`: the session has ended; no more sequenced messages will follow.
    EndOfSession,
}

/// One frame cut from the stream: its packet type and the payload after the
/// type byte. Direction-neutral; decode it with [`ClientPacket::decode`] or
/// [`ServerPacket::decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The packet type byte (offset 2).
    pub packet_type: u8,
    /// The payload (offset 3 up to the end of the packet).
    pub payload: &'a [u8],
}

/// Malformed input. See the module docs for which of these end a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// Frame layer: a Packet Length of 0, which cannot hold the type byte.
    ZeroLength,
    /// Frame layer: a Packet Length above the configured maximum.
    TooLong {
        /// The Packet Length read from the stream.
        length: u16,
        /// The configured maximum.
        length_max: u16,
    },
    /// Packet layer: a type byte not defined for this direction.
    UnknownType {
        /// The type byte.
        packet_type: u8,
    },
    /// Packet layer: a fixed-size packet whose Packet Length is wrong.
    WrongLength {
        /// The type byte.
        packet_type: u8,
        /// The Packet Length read from the stream.
        length: usize,
        /// The Packet Length the specification gives that type.
        expected: usize,
    },
    /// Packet layer: a Numeric field that is not space-padded ASCII digits
    /// or does not fit a `u64`.
    BadNumeric {
        /// The type byte of the packet holding the field.
        packet_type: u8,
    },
    /// Packet layer: a Login Rejected reason code other than `'A'` or `'S'`.
    UnknownRejectReason {
        /// The code byte.
        code: u8,
    },
}

impl FrameError {
    /// Whether the stream can no longer be cut into packets after this
    /// error (true for the frame-layer errors). A connection must be closed
    /// after such an error.
    pub const fn is_framing_lost(&self) -> bool {
        matches!(self, FrameError::ZeroLength | FrameError::TooLong { .. })
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::ZeroLength => write!(formatter, "packet length 0"),
            FrameError::TooLong { length, length_max } => {
                write!(
                    formatter,
                    "packet length {length} above the maximum {length_max}"
                )
            }
            FrameError::UnknownType { packet_type } => {
                write!(formatter, "unknown packet type 0x{packet_type:02x}")
            }
            FrameError::WrongLength {
                packet_type,
                length,
                expected,
            } => write!(
                formatter,
                "packet type 0x{packet_type:02x} with length {length}, expected {expected}"
            ),
            FrameError::BadNumeric { packet_type } => {
                write!(
                    formatter,
                    "bad numeric field in packet type 0x{packet_type:02x}"
                )
            }
            FrameError::UnknownRejectReason { code } => {
                write!(formatter, "unknown login reject reason 0x{code:02x}")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// A packet that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// The payload is longer than a 16-bit Packet Length can describe
    /// ([`PAYLOAD_BYTES_MAX`]).
    PayloadTooLong {
        /// The payload's length.
        payload_bytes: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::PayloadTooLong { payload_bytes } => write!(
                formatter,
                "payload of {payload_bytes} bytes above the maximum {PAYLOAD_BYTES_MAX}"
            ),
        }
    }
}

impl std::error::Error for EncodeError {}

// ---------------------------------------------------------------------------
// Field helpers
// ---------------------------------------------------------------------------

/// Builds an Alpha field the specification's general way: `text`
/// left-justified and padded on the right with spaces (Username, Password).
///
/// `None` if `text` is longer than `N` or holds anything but printable,
/// non-space ASCII (a space inside would be lost when the field is trimmed).
///
/// ```
/// use wire::soupbin::alpha;
/// assert_eq!(alpha::<6>("DEMO1"), Some(*b"DEMO1 "));
/// assert_eq!(alpha::<6>(""), Some(*b"      "));
/// assert_eq!(alpha::<6>("TOOLONG"), None);
/// ```
pub fn alpha<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = checked_alpha_text::<N>(text)?;
    let mut field = [b' '; N];
    field[..bytes.len()].copy_from_slice(bytes);
    Some(field)
}

/// Builds an Alpha field right-justified, padded on the *left* with spaces,
/// as the specification describes the Login Accepted Session (and as this
/// module therefore writes the Requested Session too).
///
/// ```
/// use wire::soupbin::alpha_right_justified;
/// assert_eq!(alpha_right_justified::<10>("42"), Some(*b"        42"));
/// ```
pub fn alpha_right_justified<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = checked_alpha_text::<N>(text)?;
    let mut field = [b' '; N];
    field[N - bytes.len()..].copy_from_slice(bytes);
    Some(field)
}

fn checked_alpha_text<const N: usize>(text: &str) -> Option<&[u8]> {
    let bytes = text.as_bytes();
    let printable = bytes.iter().all(u8::is_ascii_graphic);
    (bytes.len() <= N && printable).then_some(bytes)
}

/// Reads an Alpha field back: the field without the spaces on either side,
/// so it reads left- and right-justified fields alike.
///
/// ```
/// use wire::soupbin::alpha_trimmed;
/// assert_eq!(alpha_trimmed(b"DEMO1 "), b"DEMO1");
/// assert_eq!(alpha_trimmed(b"        42"), b"42");
/// assert_eq!(alpha_trimmed(b"          "), b"");
/// ```
pub fn alpha_trimmed(field: &[u8]) -> &[u8] {
    let start = field
        .iter()
        .position(|&byte| byte != b' ')
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|&byte| byte != b' ')
        .map_or(start, |last| last + 1);
    &field[start..end]
}

/// Writes `value` as a Numeric field: ASCII digits, right-justified, padded
/// on the left with spaces.
fn numeric_encode(value: u64) -> [u8; SEQUENCE_NUMBER_BYTES] {
    let mut field = [b' '; SEQUENCE_NUMBER_BYTES];
    let mut rest = value;
    let mut index = SEQUENCE_NUMBER_BYTES;
    loop {
        index -= 1;
        // `rest % 10` is a single digit, so the cast cannot truncate.
        field[index] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    field
}

/// Reads a Numeric field: optional spaces, at least one digit, optional
/// spaces; `None` for anything else or a value above `u64::MAX`.
fn numeric_decode(field: &[u8]) -> Option<u64> {
    let digits = alpha_trimmed(field);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0_u64, |value, &byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit <= 9)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Appends the header of a packet with `payload_bytes` of payload.
fn encode_header(
    out: &mut Vec<u8>,
    packet_type: u8,
    payload_bytes: usize,
) -> Result<(), EncodeError> {
    if payload_bytes > PAYLOAD_BYTES_MAX {
        return Err(EncodeError::PayloadTooLong { payload_bytes });
    }
    // Checked above: 1 + payload_bytes <= u16::MAX.
    let length = (1 + payload_bytes) as u16;
    out.extend_from_slice(&length.to_be_bytes());
    out.push(packet_type);
    Ok(())
}

fn encode_with_payload(
    out: &mut Vec<u8>,
    packet_type: u8,
    payload: &[u8],
) -> Result<(), EncodeError> {
    encode_header(out, packet_type, payload.len())?;
    out.extend_from_slice(payload);
    Ok(())
}

impl ClientPacket<'_> {
    /// The packet type byte.
    pub const fn packet_type(&self) -> u8 {
        match self {
            ClientPacket::Debug(_) => packet_type::DEBUG,
            ClientPacket::LoginRequest { .. } => packet_type::LOGIN_REQUEST,
            ClientPacket::UnsequencedData(_) => packet_type::UNSEQUENCED_DATA,
            ClientPacket::ClientHeartbeat => packet_type::CLIENT_HEARTBEAT,
            ClientPacket::LogoutRequest => packet_type::LOGOUT_REQUEST,
        }
    }

    /// Bytes [`encode`](Self::encode) appends, header included.
    pub const fn encoded_len(&self) -> usize {
        PACKET_LENGTH_BYTES
            + match self {
                ClientPacket::Debug(payload) | ClientPacket::UnsequencedData(payload) => {
                    1 + payload.len()
                }
                ClientPacket::LoginRequest { .. } => LOGIN_REQUEST_LENGTH,
                ClientPacket::ClientHeartbeat | ClientPacket::LogoutRequest => EMPTY_LENGTH,
            }
    }

    /// Appends the packet, header included, to `out`. Nothing is appended on
    /// error. `out` only grows if its capacity is too small, so a buffer
    /// reserved at start-up makes encoding allocation-free.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let packet_type = self.packet_type();
        match self {
            ClientPacket::Debug(payload) | ClientPacket::UnsequencedData(payload) => {
                encode_with_payload(out, packet_type, payload)?;
            }
            ClientPacket::LoginRequest {
                username,
                password,
                requested_session,
                requested_sequence,
            } => {
                encode_header(out, packet_type, LOGIN_REQUEST_LENGTH - 1)?;
                out.extend_from_slice(username);
                out.extend_from_slice(password);
                out.extend_from_slice(requested_session);
                out.extend_from_slice(&numeric_encode(*requested_sequence));
            }
            ClientPacket::ClientHeartbeat | ClientPacket::LogoutRequest => {
                encode_header(out, packet_type, 0)?;
            }
        }
        debug_assert_eq!(out.len() - start, self.encoded_len());
        Ok(())
    }

    /// Decodes one frame sent by a client.
    pub fn decode(frame: Frame<'_>) -> Result<ClientPacket<'_>, FrameError> {
        let Frame {
            packet_type,
            payload,
        } = frame;
        let packet = match packet_type {
            packet_type::DEBUG => ClientPacket::Debug(payload),
            packet_type::UNSEQUENCED_DATA => ClientPacket::UnsequencedData(payload),
            packet_type::LOGIN_REQUEST => {
                let body = fixed_payload::<{ LOGIN_REQUEST_LENGTH - 1 }>(frame)?;
                let (username, rest) = split_array::<USERNAME_BYTES>(&body);
                let (password, rest) = split_array::<PASSWORD_BYTES>(rest);
                let (requested_session, sequence) = split_array::<SESSION_BYTES>(rest);
                let requested_sequence =
                    numeric_decode(sequence).ok_or(FrameError::BadNumeric { packet_type })?;
                ClientPacket::LoginRequest {
                    username,
                    password,
                    requested_session,
                    requested_sequence,
                }
            }
            packet_type::CLIENT_HEARTBEAT => {
                fixed_payload::<0>(frame)?;
                ClientPacket::ClientHeartbeat
            }
            packet_type::LOGOUT_REQUEST => {
                fixed_payload::<0>(frame)?;
                ClientPacket::LogoutRequest
            }
            _ => return Err(FrameError::UnknownType { packet_type }),
        };
        Ok(packet)
    }
}

impl ServerPacket<'_> {
    /// The packet type byte.
    pub const fn packet_type(&self) -> u8 {
        match self {
            ServerPacket::Debug(_) => packet_type::DEBUG,
            ServerPacket::LoginAccepted { .. } => packet_type::LOGIN_ACCEPTED,
            ServerPacket::LoginRejected { .. } => packet_type::LOGIN_REJECTED,
            ServerPacket::SequencedData(_) => packet_type::SEQUENCED_DATA,
            ServerPacket::UnsequencedData(_) => packet_type::UNSEQUENCED_DATA,
            ServerPacket::ServerHeartbeat => packet_type::SERVER_HEARTBEAT,
            ServerPacket::EndOfSession => packet_type::END_OF_SESSION,
        }
    }

    /// Bytes [`encode`](Self::encode) appends, header included.
    pub const fn encoded_len(&self) -> usize {
        PACKET_LENGTH_BYTES
            + match self {
                ServerPacket::Debug(payload)
                | ServerPacket::SequencedData(payload)
                | ServerPacket::UnsequencedData(payload) => 1 + payload.len(),
                ServerPacket::LoginAccepted { .. } => LOGIN_ACCEPTED_LENGTH,
                ServerPacket::LoginRejected { .. } => LOGIN_REJECTED_LENGTH,
                ServerPacket::ServerHeartbeat | ServerPacket::EndOfSession => EMPTY_LENGTH,
            }
    }

    /// Appends the packet, header included, to `out`. Nothing is appended on
    /// error. `out` only grows if its capacity is too small, so a buffer
    /// reserved at start-up makes encoding allocation-free.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let packet_type = self.packet_type();
        match self {
            ServerPacket::Debug(payload)
            | ServerPacket::SequencedData(payload)
            | ServerPacket::UnsequencedData(payload) => {
                encode_with_payload(out, packet_type, payload)?;
            }
            ServerPacket::LoginAccepted { session, sequence } => {
                encode_header(out, packet_type, LOGIN_ACCEPTED_LENGTH - 1)?;
                out.extend_from_slice(session);
                out.extend_from_slice(&numeric_encode(*sequence));
            }
            ServerPacket::LoginRejected { reason } => {
                encode_header(out, packet_type, LOGIN_REJECTED_LENGTH - 1)?;
                out.push(reason.code());
            }
            ServerPacket::ServerHeartbeat | ServerPacket::EndOfSession => {
                encode_header(out, packet_type, 0)?;
            }
        }
        debug_assert_eq!(out.len() - start, self.encoded_len());
        Ok(())
    }

    /// Decodes one frame sent by a server.
    pub fn decode(frame: Frame<'_>) -> Result<ServerPacket<'_>, FrameError> {
        let Frame {
            packet_type,
            payload,
        } = frame;
        let packet = match packet_type {
            packet_type::DEBUG => ServerPacket::Debug(payload),
            packet_type::SEQUENCED_DATA => ServerPacket::SequencedData(payload),
            packet_type::UNSEQUENCED_DATA => ServerPacket::UnsequencedData(payload),
            packet_type::LOGIN_ACCEPTED => {
                let body = fixed_payload::<{ LOGIN_ACCEPTED_LENGTH - 1 }>(frame)?;
                let (session, sequence) = split_array::<SESSION_BYTES>(&body);
                let sequence =
                    numeric_decode(sequence).ok_or(FrameError::BadNumeric { packet_type })?;
                ServerPacket::LoginAccepted { session, sequence }
            }
            packet_type::LOGIN_REJECTED => {
                let [code] = fixed_payload::<{ LOGIN_REJECTED_LENGTH - 1 }>(frame)?;
                let reason = RejectReason::from_code(code)
                    .ok_or(FrameError::UnknownRejectReason { code })?;
                ServerPacket::LoginRejected { reason }
            }
            packet_type::SERVER_HEARTBEAT => {
                fixed_payload::<0>(frame)?;
                ServerPacket::ServerHeartbeat
            }
            packet_type::END_OF_SESSION => {
                fixed_payload::<0>(frame)?;
                ServerPacket::EndOfSession
            }
            _ => return Err(FrameError::UnknownType { packet_type }),
        };
        Ok(packet)
    }
}

/// The payload of a fixed-size packet, or [`FrameError::WrongLength`].
fn fixed_payload<const N: usize>(frame: Frame<'_>) -> Result<[u8; N], FrameError> {
    <[u8; N]>::try_from(frame.payload).map_err(|_| FrameError::WrongLength {
        packet_type: frame.packet_type,
        length: 1 + frame.payload.len(),
        expected: 1 + N,
    })
}

/// Splits the first `N` bytes off as an array. Callers pass slices cut to
/// a fixed layout, so `bytes.len() >= N` is an invariant.
fn split_array<const N: usize>(bytes: &[u8]) -> ([u8; N], &[u8]) {
    let (head, rest) = bytes.split_at(N);
    let mut array = [0; N];
    array.copy_from_slice(head);
    (array, rest)
}

// ---------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------

/// Cuts the first frame off `buffer`.
///
/// * `Ok(None)`: `buffer` holds no complete frame yet (read more bytes);
/// * `Ok(Some((frame, consumed)))`: `frame` borrows from `buffer`; the next
///   frame starts at `buffer[consumed..]`;
/// * `Err`: a frame-layer error ([`FrameError::ZeroLength`],
///   [`FrameError::TooLong`]); the stream can no longer be framed. A length
///   above `packet_length_max` is reported as soon as the 2 header bytes are
///   in, without waiting for the body.
///
/// ```
/// use wire::soupbin::{next_frame, Frame};
/// let bytes = [0x00, 0x01, b'R', 0x00];
/// let (frame, consumed) = next_frame(&bytes, 1024).unwrap().unwrap();
/// assert_eq!(frame, Frame { packet_type: b'R', payload: &[] });
/// assert_eq!(consumed, 3);
/// assert_eq!(next_frame(&bytes[consumed..], 1024), Ok(None));
/// ```
pub fn next_frame(
    buffer: &[u8],
    packet_length_max: u16,
) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(&[high, low]) = buffer.first_chunk::<PACKET_LENGTH_BYTES>() else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([high, low]);
    if length == 0 {
        return Err(FrameError::ZeroLength);
    }
    if length > packet_length_max {
        return Err(FrameError::TooLong {
            length,
            length_max: packet_length_max,
        });
    }
    let consumed = PACKET_LENGTH_BYTES + usize::from(length);
    let Some(packet) = buffer.get(PACKET_LENGTH_BYTES..consumed) else {
        return Ok(None);
    };
    // `length >= 1`, so the packet holds at least its type byte; the
    // else branch is unreachable but costs nothing and cannot panic.
    let Some((&packet_type, payload)) = packet.split_first() else {
        return Err(FrameError::ZeroLength);
    };
    Ok(Some((
        Frame {
            packet_type,
            payload,
        },
        consumed,
    )))
}

/// A streaming decoder for one direction of one connection: feed it the
/// bytes TCP delivers, in whatever chunks they come, and take frames or
/// packets out.
///
/// Its buffer is allocated once, in [`new`](Self::new), and holds two
/// maximum-size frames; [`feed`](Self::feed) takes only what fits and
/// returns how much that was (back-pressure as a return value). Since the
/// buffer holds at least one whole maximum-size frame, draining packets
/// always makes room.
///
/// After a frame-layer error the decoder is failed: it accepts no more
/// bytes and returns that error from every call, so the connection must be
/// closed. After a packet-layer error the bad frame has been consumed.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: Box<[u8]>,
    /// Start of the unread bytes.
    read: usize,
    /// End of the unread bytes.
    write: usize,
    packet_length_max: u16,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder that accepts packets whose Packet Length is at most
    /// `packet_length_max` (so payloads of `packet_length_max - 1` bytes).
    ///
    /// # Panics
    ///
    /// If `packet_length_max` is below 47, the length of a Login Request,
    /// the largest fixed-size packet: such a decoder could not log in.
    pub fn new(packet_length_max: u16) -> Self {
        assert!(
            usize::from(packet_length_max) >= LOGIN_REQUEST_LENGTH,
            "packet_length_max {packet_length_max} below a Login Request ({LOGIN_REQUEST_LENGTH})"
        );
        let frame_bytes_max = PACKET_LENGTH_BYTES + usize::from(packet_length_max);
        FrameDecoder {
            buffer: vec![0; 2 * frame_bytes_max].into_boxed_slice(),
            read: 0,
            write: 0,
            packet_length_max,
            failed: None,
        }
    }

    /// As [`new`](Self::new) with a buffer of `buffer_bytes` (at least two
    /// maximum-size frames), so that one read from a socket can bring many
    /// pipelined packets.
    ///
    /// # Panics
    ///
    /// As [`new`](Self::new), and if `buffer_bytes` is below two
    /// maximum-size frames.
    pub fn with_buffer(packet_length_max: u16, buffer_bytes: usize) -> Self {
        let mut decoder = Self::new(packet_length_max);
        assert!(
            buffer_bytes >= decoder.buffer.len(),
            "a buffer of {buffer_bytes} bytes is below two frames of {packet_length_max}"
        );
        decoder.buffer = vec![0; buffer_bytes].into_boxed_slice();
        decoder
    }

    /// Bytes the buffer holds at most.
    pub fn capacity(&self) -> usize {
        self.buffer.len()
    }

    /// The configured maximum Packet Length.
    pub const fn packet_length_max(&self) -> u16 {
        self.packet_length_max
    }

    /// Bytes fed but not yet taken out as frames.
    pub const fn buffered_len(&self) -> usize {
        self.write - self.read
    }

    /// Copies as much of `chunk` as fits into the buffer and returns how
    /// many bytes that was; the caller keeps the rest and feeds it after
    /// taking frames out. Returns 0 once the decoder has failed.
    pub fn feed(&mut self, chunk: &[u8]) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        if self.read > 0 {
            // Move the unread bytes to the front: at most one partial frame
            // plus whatever the caller has not drained yet.
            self.buffer.copy_within(self.read..self.write, 0);
            self.write -= self.read;
            self.read = 0;
        }
        let accepted = chunk.len().min(self.buffer.len() - self.write);
        self.buffer[self.write..self.write + accepted].copy_from_slice(&chunk[..accepted]);
        self.write += accepted;
        debug_assert!(self.read <= self.write && self.write <= self.buffer.len());
        accepted
    }

    /// Takes the next complete frame out, `Ok(None)` if there is none yet.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        match next_frame(&self.buffer[self.read..self.write], self.packet_length_max) {
            Ok(Some((frame, consumed))) => {
                debug_assert!(consumed <= self.write - self.read);
                self.read += consumed;
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                self.failed = Some(error);
                Err(error)
            }
        }
    }

    /// Takes the next packet sent by a client out (the server's side).
    pub fn next_client_packet(&mut self) -> Result<Option<ClientPacket<'_>>, FrameError> {
        self.next_frame()?.map(ClientPacket::decode).transpose()
    }

    /// Takes the next packet sent by a server out (the client's side).
    pub fn next_server_packet(&mut self) -> Result<Option<ServerPacket<'_>>, FrameError> {
        self.next_frame()?.map(ServerPacket::decode).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u16 = 1024;

    // ---- golden bytes, hand-computed from the specification ----------------

    /// Login Request: DEMO1 / demo1, blank session, sequence 1.
    /// Packet Length 47 = 0x002F.
    fn golden_login_request() -> Vec<u8> {
        let pieces: [&[u8]; 6] = [
            b"\x00\x2f",
            b"L",
            b"DEMO1 ",               // Username, 6, left-justified
            b"demo1     ",           // Password, 10, left-justified
            b"          ",           // Requested Session, 10 blanks
            b"                   1", // Requested Sequence Number, 20
        ];
        let bytes = pieces.concat();
        assert_eq!(bytes.len(), 49);
        bytes
    }

    /// Login Accepted: session "7", next sequence 123.
    /// Packet Length 31 = 0x001F.
    fn golden_login_accepted() -> Vec<u8> {
        let pieces: [&[u8]; 4] = [
            b"\x00\x1f",
            b"A",
            b"         7",           // Session, 10, left padded
            b"                 123", // Sequence Number, 20
        ];
        let bytes = pieces.concat();
        assert_eq!(bytes.len(), 33);
        bytes
    }

    fn login_request() -> ClientPacket<'static> {
        ClientPacket::LoginRequest {
            username: alpha("DEMO1").unwrap(),
            password: alpha("demo1").unwrap(),
            requested_session: alpha("").unwrap(),
            requested_sequence: 1,
        }
    }

    fn login_accepted() -> ServerPacket<'static> {
        ServerPacket::LoginAccepted {
            session: alpha_right_justified("7").unwrap(),
            sequence: 123,
        }
    }

    fn client_golden() -> Vec<(ClientPacket<'static>, Vec<u8>)> {
        vec![
            (ClientPacket::Debug(b"hi"), b"\x00\x03+hi".to_vec()),
            (ClientPacket::Debug(b""), b"\x00\x01+".to_vec()),
            (login_request(), golden_login_request()),
            (
                ClientPacket::UnsequencedData(&[0x4f, 0x00, 0xff]),
                b"\x00\x04U\x4f\x00\xff".to_vec(),
            ),
            (ClientPacket::UnsequencedData(b""), b"\x00\x01U".to_vec()),
            (ClientPacket::ClientHeartbeat, b"\x00\x01R".to_vec()),
            (ClientPacket::LogoutRequest, b"\x00\x01O".to_vec()),
        ]
    }

    fn server_golden() -> Vec<(ServerPacket<'static>, Vec<u8>)> {
        vec![
            (ServerPacket::Debug(b"hello"), b"\x00\x06+hello".to_vec()),
            (login_accepted(), golden_login_accepted()),
            (
                ServerPacket::LoginRejected {
                    reason: RejectReason::NotAuthorized,
                },
                b"\x00\x02JA".to_vec(),
            ),
            (
                ServerPacket::LoginRejected {
                    reason: RejectReason::SessionNotAvailable,
                },
                b"\x00\x02JS".to_vec(),
            ),
            (
                ServerPacket::SequencedData(&[0x53, 0x0a, 0x00]),
                b"\x00\x04S\x53\x0a\x00".to_vec(),
            ),
            (
                ServerPacket::UnsequencedData(b"\x01"),
                b"\x00\x02U\x01".to_vec(),
            ),
            (ServerPacket::ServerHeartbeat, b"\x00\x01H".to_vec()),
            (ServerPacket::EndOfSession, b"\x00\x01Z".to_vec()),
        ]
    }

    #[test]
    fn client_packets_encode_to_golden_bytes_and_back() {
        for (packet, golden) in client_golden() {
            let mut out = vec![0xee]; // encode appends
            packet.encode(&mut out).unwrap();
            assert_eq!(&out[1..], &golden[..], "{packet:?}");
            assert_eq!(packet.encoded_len(), golden.len());
            let (frame, consumed) = next_frame(&golden, MAX).unwrap().unwrap();
            assert_eq!(consumed, golden.len());
            assert_eq!(ClientPacket::decode(frame), Ok(packet));
        }
    }

    #[test]
    fn server_packets_encode_to_golden_bytes_and_back() {
        for (packet, golden) in server_golden() {
            let mut out = Vec::new();
            packet.encode(&mut out).unwrap();
            assert_eq!(out, golden, "{packet:?}");
            assert_eq!(packet.encoded_len(), golden.len());
            let (frame, consumed) = next_frame(&golden, MAX).unwrap().unwrap();
            assert_eq!(consumed, golden.len());
            assert_eq!(ServerPacket::decode(frame), Ok(packet));
        }
    }

    #[test]
    fn round_trips_extreme_values() {
        let payload = vec![0xab; PAYLOAD_BYTES_MAX];
        for sequence in [0, 1, 9, 10, 99_999, u64::MAX - 1, u64::MAX] {
            let packet = ServerPacket::LoginAccepted {
                session: *b"ABCDEFGHIJ",
                sequence,
            };
            let mut out = Vec::new();
            packet.encode(&mut out).unwrap();
            let (frame, _) = next_frame(&out, MAX).unwrap().unwrap();
            assert_eq!(ServerPacket::decode(frame), Ok(packet));
        }
        let packet = ServerPacket::SequencedData(&payload);
        let mut out = Vec::new();
        packet.encode(&mut out).unwrap();
        assert_eq!(&out[..3], b"\xff\xffS");
        let (frame, consumed) = next_frame(&out, u16::MAX).unwrap().unwrap();
        assert_eq!(consumed, out.len());
        assert_eq!(ServerPacket::decode(frame), Ok(packet));
    }

    #[test]
    fn encode_refuses_a_payload_longer_than_the_length_field() {
        let payload = vec![0; PAYLOAD_BYTES_MAX + 1];
        let mut out = vec![1, 2];
        assert_eq!(
            ClientPacket::UnsequencedData(&payload).encode(&mut out),
            Err(EncodeError::PayloadTooLong {
                payload_bytes: PAYLOAD_BYTES_MAX + 1
            })
        );
        assert_eq!(out, [1, 2], "nothing appended on error");
    }

    #[test]
    fn u64_max_fills_the_numeric_field_exactly() {
        assert_eq!(&numeric_encode(u64::MAX), b"18446744073709551615");
        assert_eq!(&numeric_encode(0), b"                   0");
    }

    #[test]
    fn numeric_decoding_accepts_spec_padding_and_rejects_the_rest() {
        assert_eq!(numeric_decode(b"                  42"), Some(42));
        assert_eq!(numeric_decode(b"00000000000000000042"), Some(42));
        assert_eq!(numeric_decode(b"42                  "), Some(42)); // left-justified peer
        assert_eq!(numeric_decode(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(numeric_decode(b"18446744073709551616"), None); // overflow
        assert_eq!(numeric_decode(b"99999999999999999999"), None);
        assert_eq!(numeric_decode(b"                    "), None); // no digit
        assert_eq!(numeric_decode(b"              4 2   "), None); // inner space
        assert_eq!(numeric_decode(b"                 -42"), None);
        assert_eq!(numeric_decode(b"                 +42"), None);
        assert_eq!(numeric_decode(b"\x0042                 "), None);
    }

    #[test]
    fn alpha_helpers_pad_and_trim() {
        assert_eq!(alpha::<10>("demo1"), Some(*b"demo1     "));
        assert_eq!(alpha::<6>("DEMO12"), Some(*b"DEMO12"));
        assert_eq!(alpha::<6>("DEMO123"), None);
        assert_eq!(alpha::<6>("DE MO"), None);
        assert_eq!(alpha::<6>("DÉMO"), None);
        assert_eq!(alpha::<6>("A\n"), None);
        assert_eq!(alpha_right_justified::<10>("S1"), Some(*b"        S1"));
        assert_eq!(alpha_right_justified::<10>(""), Some([b' '; 10]));
        assert_eq!(alpha_right_justified::<2>("S12"), None);
        assert_eq!(alpha_trimmed(b"  S1  "), b"S1");
        assert_eq!(alpha_trimmed(b""), b"");
        assert_eq!(alpha_trimmed(&alpha::<10>("x").unwrap()), b"x");
    }

    #[test]
    fn reject_reason_codes_round_trip() {
        for reason in [
            RejectReason::NotAuthorized,
            RejectReason::SessionNotAvailable,
        ] {
            assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(RejectReason::from_code(b'X'), None);
    }

    // ---- malformed input ---------------------------------------------------

    #[test]
    fn frame_layer_errors() {
        assert_eq!(next_frame(b"\x00\x00R", MAX), Err(FrameError::ZeroLength));
        assert_eq!(
            next_frame(b"\xff\xff", MAX),
            Err(FrameError::TooLong {
                length: 0xffff,
                length_max: MAX
            })
        );
        assert_eq!(
            next_frame(b"\x04\x01", MAX),
            Err(FrameError::TooLong {
                length: 1025,
                length_max: MAX
            })
        );
        // Exactly the maximum is fine (once complete).
        assert_eq!(next_frame(b"\x04\x00S", MAX), Ok(None));
        assert!(FrameError::ZeroLength.is_framing_lost());
        assert!(!FrameError::UnknownType { packet_type: 0 }.is_framing_lost());
    }

    fn decode_client(bytes: &[u8]) -> Result<ClientPacket<'_>, FrameError> {
        let (frame, consumed) = next_frame(bytes, MAX)?.expect("complete frame");
        assert_eq!(consumed, bytes.len());
        ClientPacket::decode(frame)
    }

    fn decode_server(bytes: &[u8]) -> Result<ServerPacket<'_>, FrameError> {
        let (frame, consumed) = next_frame(bytes, MAX)?.expect("complete frame");
        assert_eq!(consumed, bytes.len());
        ServerPacket::decode(frame)
    }

    #[test]
    fn packet_layer_errors_from_clients() {
        // Server-only types are unknown from a client, and vice versa.
        for packet_type in [b'A', b'J', b'S', b'H', b'Z', b'x', 0] {
            assert_eq!(
                decode_client(&[0, 1, packet_type]),
                Err(FrameError::UnknownType { packet_type })
            );
        }
        assert_eq!(
            decode_client(b"\x00\x02RR"),
            Err(FrameError::WrongLength {
                packet_type: b'R',
                length: 2,
                expected: 1
            })
        );
        assert_eq!(
            decode_client(b"\x00\x02O "),
            Err(FrameError::WrongLength {
                packet_type: b'O',
                length: 2,
                expected: 1
            })
        );
        let mut login = golden_login_request();
        login.pop();
        login[1] = 46;
        assert_eq!(
            decode_client(&login),
            Err(FrameError::WrongLength {
                packet_type: b'L',
                length: 46,
                expected: 47
            })
        );
        // SoupBinTCP 4.1-style login with a 5-byte heartbeat timeout appended.
        let mut login = golden_login_request();
        login.extend_from_slice(b"15000");
        login[1] = 52;
        assert_eq!(
            decode_client(&login),
            Err(FrameError::WrongLength {
                packet_type: b'L',
                length: 52,
                expected: 47
            })
        );
        let mut login = golden_login_request();
        login[48] = b'x';
        assert_eq!(
            decode_client(&login),
            Err(FrameError::BadNumeric { packet_type: b'L' })
        );
    }

    #[test]
    fn packet_layer_errors_from_servers() {
        for packet_type in [b'L', b'R', b'O', b'a', 0xff] {
            assert_eq!(
                decode_server(&[0, 1, packet_type]),
                Err(FrameError::UnknownType { packet_type })
            );
        }
        assert_eq!(
            decode_server(b"\x00\x01J"),
            Err(FrameError::WrongLength {
                packet_type: b'J',
                length: 1,
                expected: 2
            })
        );
        assert_eq!(
            decode_server(b"\x00\x02JX"),
            Err(FrameError::UnknownRejectReason { code: b'X' })
        );
        assert_eq!(
            decode_server(b"\x00\x02H\x00"),
            Err(FrameError::WrongLength {
                packet_type: b'H',
                length: 2,
                expected: 1
            })
        );
        assert_eq!(
            decode_server(b"\x00\x02Z\x00"),
            Err(FrameError::WrongLength {
                packet_type: b'Z',
                length: 2,
                expected: 1
            })
        );
        let mut accepted = golden_login_accepted();
        accepted[32] = b' ';
        accepted[31] = b' ';
        accepted[30] = b' ';
        assert_eq!(
            decode_server(&accepted),
            Err(FrameError::BadNumeric { packet_type: b'A' })
        );
        let mut accepted = golden_login_accepted();
        accepted.push(b'1');
        accepted[1] = 32;
        assert_eq!(
            decode_server(&accepted),
            Err(FrameError::WrongLength {
                packet_type: b'A',
                length: 32,
                expected: 31
            })
        );
    }

    #[test]
    fn errors_display_something() {
        let errors = [
            FrameError::ZeroLength,
            FrameError::TooLong {
                length: 2,
                length_max: 1,
            },
            FrameError::UnknownType { packet_type: 1 },
            FrameError::WrongLength {
                packet_type: 1,
                length: 2,
                expected: 3,
            },
            FrameError::BadNumeric { packet_type: 1 },
            FrameError::UnknownRejectReason { code: 1 },
        ];
        for error in errors {
            assert!(!error.to_string().is_empty());
        }
        assert!(
            !EncodeError::PayloadTooLong { payload_bytes: 1 }
                .to_string()
                .is_empty()
        );
    }

    // ---- streaming ---------------------------------------------------------

    fn client_stream() -> (Vec<ClientPacket<'static>>, Vec<u8>) {
        let golden = client_golden();
        let packets = golden.iter().map(|(packet, _)| *packet).collect();
        let bytes = golden
            .iter()
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect();
        (packets, bytes)
    }

    fn server_stream() -> (Vec<ServerPacket<'static>>, Vec<u8>) {
        let golden = server_golden();
        let packets = golden.iter().map(|(packet, _)| *packet).collect();
        let bytes = golden
            .iter()
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect();
        (packets, bytes)
    }

    /// Feeds `chunks` in order, draining packets after each; returns what
    /// came out, owned so the decoder can be fed again.
    fn drain_client(decoder: &mut FrameDecoder, chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let accepted = decoder.feed(rest);
                rest = &rest[accepted..];
                while let Some(packet) = decoder.next_client_packet().unwrap() {
                    out.push(format!("{packet:?}"));
                }
            }
        }
        out
    }

    #[test]
    fn every_split_point_of_a_client_stream() {
        let (packets, bytes) = client_stream();
        let expected: Vec<String> = packets.iter().map(|packet| format!("{packet:?}")).collect();
        for split in 0..=bytes.len() {
            let mut decoder = FrameDecoder::new(MAX);
            let got = drain_client(&mut decoder, &[&bytes[..split], &bytes[split..]]);
            assert_eq!(got, expected, "split at {split}");
            assert_eq!(decoder.buffered_len(), 0);
        }
    }

    #[test]
    fn every_pair_of_split_points_of_a_server_stream() {
        let (packets, bytes) = server_stream();
        for first in 0..=bytes.len() {
            for second in first..=bytes.len() {
                let mut decoder = FrameDecoder::new(MAX);
                let mut got = Vec::new();
                for chunk in [&bytes[..first], &bytes[first..second], &bytes[second..]] {
                    assert_eq!(decoder.feed(chunk), chunk.len());
                    while let Some(packet) = decoder.next_server_packet().unwrap() {
                        got.push(format!("{packet:?}"));
                    }
                }
                let expected: Vec<String> =
                    packets.iter().map(|packet| format!("{packet:?}")).collect();
                assert_eq!(got, expected, "splits at {first} and {second}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_and_all_at_once() {
        let (packets, bytes) = client_stream();
        let expected: Vec<String> = packets.iter().map(|packet| format!("{packet:?}")).collect();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(drain_client(&mut FrameDecoder::new(MAX), &chunks), expected);
        assert_eq!(
            drain_client(&mut FrameDecoder::new(MAX), &[&bytes]),
            expected
        );
    }

    #[test]
    fn every_truncation_is_incomplete_not_an_error() {
        let client = client_golden().into_iter().map(|(_, bytes)| bytes);
        let server = server_golden().into_iter().map(|(_, bytes)| bytes);
        for golden in client.chain(server) {
            for end in 0..golden.len() {
                assert_eq!(
                    next_frame(&golden[..end], MAX),
                    Ok(None),
                    "{golden:?} cut at {end}"
                );
                let mut decoder = FrameDecoder::new(MAX);
                decoder.feed(&golden[..end]);
                assert_eq!(decoder.next_frame(), Ok(None));
                assert_eq!(decoder.buffered_len(), end);
            }
        }
    }

    #[test]
    fn feed_applies_back_pressure_and_draining_makes_room() {
        let decoder_max = 47;
        let mut decoder = FrameDecoder::new(decoder_max);
        let capacity = 2 * (2 + usize::from(decoder_max));
        let mut bytes = Vec::new();
        for _ in 0..100 {
            ClientPacket::ClientHeartbeat.encode(&mut bytes).unwrap();
        }
        assert_eq!(decoder.feed(&bytes), capacity);
        assert_eq!(decoder.feed(&bytes[capacity..]), 0);
        let mut count = 0;
        let mut offset = capacity;
        loop {
            while let Some(packet) = decoder.next_client_packet().unwrap() {
                assert_eq!(packet, ClientPacket::ClientHeartbeat);
                count += 1;
            }
            if offset == bytes.len() {
                break;
            }
            offset += decoder.feed(&bytes[offset..]);
        }
        assert_eq!(count, 100);
    }

    #[test]
    fn frame_errors_fail_the_decoder_and_packet_errors_skip_the_frame() {
        let mut decoder = FrameDecoder::new(MAX);
        decoder.feed(b"\x00\x01X\x00\x01R\x00\x00\x00\x01R");
        assert_eq!(
            decoder.next_client_packet(),
            Err(FrameError::UnknownType { packet_type: b'X' })
        );
        assert_eq!(
            decoder.next_client_packet(),
            Ok(Some(ClientPacket::ClientHeartbeat))
        );
        assert_eq!(decoder.next_client_packet(), Err(FrameError::ZeroLength));
        assert_eq!(decoder.next_client_packet(), Err(FrameError::ZeroLength));
        assert_eq!(decoder.feed(b"\x00\x01R"), 0);

        let mut decoder = FrameDecoder::new(MAX);
        decoder.feed(b"\xff\xff");
        let too_long = FrameError::TooLong {
            length: u16::MAX,
            length_max: MAX,
        };
        assert_eq!(decoder.next_server_packet(), Err(too_long));
        assert_eq!(decoder.next_frame(), Err(too_long));
    }

    #[test]
    #[should_panic(expected = "below a Login Request")]
    fn a_decoder_too_small_for_a_login_is_a_programming_error() {
        let _ = FrameDecoder::new(46);
    }

    // ---- fuzz-like ---------------------------------------------------------

    /// xorshift64*: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
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

    /// Drives both decoders over `bytes` in random chunks and checks the
    /// invariants; returns how many packets decoded.
    fn drive(rng: &mut Rng, bytes: &[u8], packet_length_max: u16) -> usize {
        let mut decoded = 0;
        for server_side in [true, false] {
            let mut decoder = FrameDecoder::new(packet_length_max);
            let mut offset = 0;
            'stream: while offset < bytes.len() {
                let chunk_end = (offset + 1 + rng.below(64)).min(bytes.len());
                let accepted = decoder.feed(&bytes[offset..chunk_end]);
                offset += accepted;
                loop {
                    let result = if server_side {
                        decoder
                            .next_client_packet()
                            .map(|packet| packet.map(|packet| packet.encoded_len()))
                    } else {
                        decoder
                            .next_server_packet()
                            .map(|packet| packet.map(|packet| packet.encoded_len()))
                    };
                    match result {
                        Ok(Some(encoded_len)) => {
                            assert!(encoded_len <= 2 + usize::from(packet_length_max));
                            decoded += 1;
                        }
                        Ok(None) => break,
                        Err(error) if error.is_framing_lost() => break 'stream,
                        Err(_) => {}
                    }
                }
                assert!(decoder.buffered_len() <= 2 * (2 + usize::from(packet_length_max)));
                if accepted == 0 && decoder.buffered_len() == 0 {
                    break;
                }
            }
        }
        decoded
    }

    #[test]
    fn random_bytes_never_panic() {
        let seed = 0x5eed_0001_u64;
        let mut rng = Rng(seed);
        for round in 0..2_000 {
            let length = rng.below(512);
            let bytes: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
            let max = [47, 64, 1024, u16::MAX][round % 4];
            drive(&mut rng, &bytes, max);
        }
    }

    #[test]
    fn mutated_valid_streams_never_panic_and_mostly_decode() {
        let seed = 0x5eed_0002_u64;
        let mut rng = Rng(seed);
        let (_, client_bytes) = client_stream();
        let (_, server_bytes) = server_stream();
        let mut decoded = 0;
        for round in 0..2_000 {
            let mut bytes = if round % 2 == 0 {
                client_bytes.clone()
            } else {
                server_bytes.clone()
            };
            for _ in 0..1 + rng.below(3) {
                let index = rng.below(bytes.len());
                bytes[index] = rng.next() as u8;
            }
            decoded += drive(&mut rng, &bytes, MAX);
        }
        assert!(
            decoded > 2_000,
            "seed {seed:#x}: only {decoded} packets decoded"
        );
    }
}
