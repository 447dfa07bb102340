//! A blocking client of the snapshot service (GLIMPSE-style, SoupBinTCP
//! 4.0 over TCP; the contract is in `docs/marketdata.md`).
//!
//! The client logs in (any username, blank password, the current session,
//! sequence 1), then reads one Sequenced Data packet per ITCH message until
//! the End of Snapshot message (`'G'` + the next live sequence number as 20
//! right-justified ASCII digits) and the server's End of Session. The whole
//! exchange must finish within the caller's timeout.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use wire::soupbin::{self, ClientPacket, FrameDecoder, ServerPacket};

use crate::itch::Message;
use crate::moldudp64::Session;

/// Type byte of the End of Snapshot message.
const END_OF_SNAPSHOT_TYPE: u8 = b'G';
/// Length of the End of Snapshot message: type + 20 digits.
const END_OF_SNAPSHOT_LEN: usize = 21;
/// Largest SoupBinTCP packet accepted: ITCH messages are at most 44 bytes,
/// so this is generous; it must be at least a Login Request (47).
const PACKET_LENGTH_MAX: u16 = 1024;
/// Bound on the messages of one snapshot (about 0.5 GB of `Message`s), so a
/// misbehaving server cannot exhaust memory.
const SNAPSHOT_MESSAGES_MAX: usize = 10_000_000;
/// Username sent at login (market data is public; any name is accepted).
const USERNAME: &str = "MD";

/// A snapshot of every book: apply `messages` to empty books, then live
/// messages from `next_sequence` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The MoldUDP64 session the snapshot belongs to.
    pub session: Session,
    /// Stock Directory, Stock Trading Action and Add Order messages.
    pub messages: Vec<Message>,
    /// Sequence number of the first live message not reflected in it.
    pub next_sequence: u64,
}

/// Connects to the snapshot service at `addr`, reads a whole snapshot and
/// returns it. Everything (connect, login, transfer) must finish within
/// `timeout`; errors are `io::Error`s (`TimedOut`, `InvalidData` for a
/// protocol violation, `ConnectionRefused` for a rejected login,
/// `UnexpectedEof` when the server closes early).
pub fn fetch_snapshot(addr: SocketAddr, timeout: Duration) -> io::Result<Snapshot> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(timeout))?;
    let mut login = Vec::with_capacity(64);
    ClientPacket::LoginRequest {
        username: soupbin::alpha(USERNAME).unwrap_or([b' '; soupbin::USERNAME_BYTES]),
        password: [b' '; soupbin::PASSWORD_BYTES],
        requested_session: [b' '; soupbin::SESSION_BYTES],
        requested_sequence: 1,
    }
    .encode(&mut login)
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    stream.write_all(&login)?;

    let mut reader = SnapshotReader::default();
    let mut decoder = FrameDecoder::new(PACKET_LENGTH_MAX);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "snapshot not complete in time",
            ));
        }
        stream.set_read_timeout(Some(remaining))?;
        let read = match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "snapshot server closed the connection before the end",
                ));
            }
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut fed = 0;
        while fed < read {
            fed += decoder.feed(&chunk[fed..read]);
            while let Some(packet) = decoder.next_server_packet().map_err(invalid)? {
                if let Some(snapshot) = reader.take(packet)? {
                    return Ok(snapshot);
                }
            }
        }
    }
}

fn invalid(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// The state of one snapshot transfer, fed packet by packet.
#[derive(Debug, Default)]
struct SnapshotReader {
    session: Option<Session>,
    messages: Vec<Message>,
    next_sequence: Option<u64>,
}

impl SnapshotReader {
    /// Takes one server packet; `Some` once the snapshot is complete.
    fn take(&mut self, packet: ServerPacket<'_>) -> io::Result<Option<Snapshot>> {
        match packet {
            ServerPacket::LoginAccepted { session, .. } => {
                let name = std::str::from_utf8(soupbin::alpha_trimmed(&session)).ok();
                let session = name.and_then(Session::new).ok_or_else(|| {
                    invalid("Login Accepted carries no valid MoldUDP64 session name")
                })?;
                self.session = Some(session);
            }
            ServerPacket::LoginRejected { reason } => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    format!("snapshot login rejected ({reason:?})"),
                ));
            }
            ServerPacket::SequencedData(payload) => self.take_data(payload)?,
            ServerPacket::EndOfSession => {
                let (Some(session), Some(next_sequence)) = (self.session, self.next_sequence)
                else {
                    return Err(invalid("End of Session before the End of Snapshot message"));
                };
                return Ok(Some(Snapshot {
                    session,
                    messages: std::mem::take(&mut self.messages),
                    next_sequence,
                }));
            }
            ServerPacket::Debug(_) | ServerPacket::UnsequencedData(_) => {}
            ServerPacket::ServerHeartbeat => {}
        }
        Ok(None)
    }

    fn take_data(&mut self, payload: &[u8]) -> io::Result<()> {
        if self.session.is_none() {
            return Err(invalid("Sequenced Data before Login Accepted"));
        }
        if self.next_sequence.is_some() {
            return Err(invalid("data after the End of Snapshot message"));
        }
        if payload.first() == Some(&END_OF_SNAPSHOT_TYPE) {
            let next = parse_end_of_snapshot(payload)
                .ok_or_else(|| invalid("malformed End of Snapshot message"))?;
            self.next_sequence = Some(next);
            return Ok(());
        }
        if self.messages.len() >= SNAPSHOT_MESSAGES_MAX {
            return Err(invalid("snapshot larger than the client's limit"));
        }
        self.messages
            .push(Message::decode(payload).map_err(invalid)?);
        Ok(())
    }
}

/// The next sequence number of an End of Snapshot message: `'G'` then 20
/// ASCII digits, right-justified and padded with spaces on the left.
/// `None` unless well formed and at least 1.
fn parse_end_of_snapshot(payload: &[u8]) -> Option<u64> {
    let (&kind, digits) = payload.split_first()?;
    if kind != END_OF_SNAPSHOT_TYPE || payload.len() != END_OF_SNAPSHOT_LEN {
        return None;
    }
    let digits = std::str::from_utf8(digits).ok()?.trim_start_matches(' ');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&next| next >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_snapshot_digits() {
        assert_eq!(parse_end_of_snapshot(b"G                  42"), Some(42));
        assert_eq!(parse_end_of_snapshot(b"G00000000000000000001"), Some(1));
        assert_eq!(parse_end_of_snapshot(b"G                   0"), None);
        assert_eq!(parse_end_of_snapshot(b"G                 4 2"), None);
        assert_eq!(parse_end_of_snapshot(b"G                    "), None);
        assert_eq!(parse_end_of_snapshot(b"G42"), None);
        assert_eq!(parse_end_of_snapshot(b"H                  42"), None);
    }

    #[test]
    fn reader_rejects_out_of_order_packets() {
        let mut reader = SnapshotReader::default();
        assert!(reader.take(ServerPacket::SequencedData(b"x")).is_err());
        let mut reader = SnapshotReader::default();
        assert!(reader.take(ServerPacket::EndOfSession).is_err());
        let mut reader = SnapshotReader::default();
        let session = soupbin::alpha_right_justified("2601010001").unwrap();
        let accepted = ServerPacket::LoginAccepted {
            session,
            sequence: 1,
        };
        assert!(reader.take(accepted).unwrap().is_none());
        let end = ServerPacket::SequencedData(b"G                   7");
        assert!(reader.take(end).unwrap().is_none());
        assert!(reader.take(ServerPacket::SequencedData(b"x")).is_err());
        let snapshot = reader.take(ServerPacket::EndOfSession).unwrap().unwrap();
        assert_eq!(snapshot.session.as_str(), "2601010001");
        assert_eq!(snapshot.next_sequence, 7);
        assert!(snapshot.messages.is_empty());
    }
}
