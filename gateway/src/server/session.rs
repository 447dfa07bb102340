//! One client connection: its socket, SoupBinTCP framing in both
//! directions, its token-bucket rate limit, where it is in the login, and
//! the table of open sessions with their heartbeats and timeouts.
//!
//! A session never holds a copy of its stream: it keeps only the next
//! sequence number to send and pulls from the [`SessionStreams`] as its
//! socket drains (bounded per pass by [`WRITE_CHUNK`]).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use engine::AccountId;
use mio::net::TcpStream;
use wire::soupbin::{self, ClientPacket, FrameDecoder, ServerPacket};

use super::origin::Channel;
use super::streams::{SessionStreams, StreamKey};

/// The largest packet a client may send (OUCH with every option fits).
pub(super) const PACKET_LENGTH_MAX: u16 = 1024;
/// Each session's input buffer: one read brings many pipelined packets.
pub(super) const INPUT_BUFFER_BYTES: usize = 32 * 1024;
/// Bytes of stream messages queued into a socket buffer per pass.
const WRITE_CHUNK: usize = 256 * 1024;
/// How long a closing session may take to flush.
const CLOSING_FLUSH_MAX: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) enum State {
    /// Connected; the first packet must be a Login Request.
    AwaitingLogin,
    /// Its Login Request is with the authenticator; later packets wait.
    Authenticating(LoginPacket),
    LoggedIn(LoggedIn),
}

/// A session whose login was admitted.
#[derive(Clone, Copy, Debug)]
pub(super) struct LoggedIn {
    pub(super) login: usize,
    pub(super) login_name: [u8; 6],
    pub(super) account: Option<AccountId>,
    pub(super) key: StreamKey,
    /// The trading day it logged in to.
    pub(super) day: u64,
    /// The next sequence number to send.
    pub(super) next: u64,
}

#[derive(Debug)]
pub(super) struct LoginPacket {
    pub(super) username: [u8; soupbin::USERNAME_BYTES],
    pub(super) password: [u8; soupbin::PASSWORD_BYTES],
    pub(super) session: [u8; soupbin::SESSION_BYTES],
    pub(super) sequence: u64,
}

/// A client packet taken out of the decoder's buffer (a data payload is
/// copied to the loop's reused payload buffer: no allocation per message).
#[derive(Debug)]
pub(super) enum OwnedPacket {
    Login(LoginPacket),
    Data,
    Heartbeat,
    Logout,
    Debug,
}

impl OwnedPacket {
    pub(super) fn take(packet: ClientPacket<'_>, payload_buffer: &mut Vec<u8>) -> OwnedPacket {
        match packet {
            ClientPacket::LoginRequest {
                username,
                password,
                requested_session,
                requested_sequence,
            } => OwnedPacket::Login(LoginPacket {
                username,
                password,
                session: requested_session,
                sequence: requested_sequence,
            }),
            ClientPacket::UnsequencedData(payload) => {
                payload_buffer.clear();
                payload_buffer.extend_from_slice(payload);
                OwnedPacket::Data
            }
            ClientPacket::ClientHeartbeat => OwnedPacket::Heartbeat,
            ClientPacket::LogoutRequest => OwnedPacket::Logout,
            ClientPacket::Debug(_) => OwnedPacket::Debug,
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved.
#[derive(Debug)]
pub(super) struct RateLimit {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    fn new(burst: u32, now: Instant) -> RateLimit {
        RateLimit {
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Takes one token; `false` when none is left.
    pub(super) fn take(&mut self, rate: u32, burst: u32, now: Instant) -> bool {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst.max(1)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a read from the socket did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReadOutcome {
    /// Bytes went into the decoder.
    Read,
    /// The socket has nothing more for now.
    Drained,
    /// The decoder is full: handle its packets first.
    Full,
}

#[derive(Debug)]
pub(super) struct Session {
    /// Unique for the life of the loop (slots are reused).
    pub(super) id: u64,
    pub(super) socket: TcpStream,
    pub(super) channel: Channel,
    pub(super) peer: Option<SocketAddr>,
    pub(super) decoder: FrameDecoder,
    pub(super) state: State,
    out: Vec<u8>,
    out_sent: usize,
    pub(super) last_received: Instant,
    last_sent: Instant,
    /// Last time the socket took bytes, or had nothing to take.
    last_progress: Instant,
    pub(super) rate: RateLimit,
    /// The socket may have unread bytes (edge-triggered readiness).
    pub(super) readable: bool,
    /// Set when the session must be closed after flushing `out`.
    pub(super) closing: Option<String>,
    closing_since: Option<Instant>,
}

impl Session {
    pub(super) fn new(
        id: u64,
        socket: TcpStream,
        channel: Channel,
        peer: SocketAddr,
        burst: u32,
        now: Instant,
    ) -> Session {
        Session {
            id,
            socket,
            channel,
            peer: Some(peer),
            decoder: FrameDecoder::with_buffer(PACKET_LENGTH_MAX, INPUT_BUFFER_BYTES),
            state: State::AwaitingLogin,
            out: Vec::with_capacity(4096),
            out_sent: 0,
            last_received: now,
            last_sent: now,
            last_progress: now,
            rate: RateLimit::new(burst, now),
            readable: true,
            closing: None,
            closing_since: None,
        }
    }

    pub(super) fn logged_in(&self) -> Option<&LoggedIn> {
        match &self.state {
            State::LoggedIn(logged_in) => Some(logged_in),
            State::AwaitingLogin | State::Authenticating(_) => None,
        }
    }

    /// Whether its reads are worth a pass (readable, not closing, not
    /// waiting for its login's check).
    pub(super) fn wants_read(&self) -> bool {
        self.readable && self.closing.is_none() && !matches!(self.state, State::Authenticating(_))
    }

    /// Queues one packet to send.
    pub(super) fn send(&mut self, packet: &ServerPacket<'_>) {
        // Invariant: every payload comes from a stream message or a fixed
        // packet, all far below the SoupBinTCP maximum.
        packet
            .encode(&mut self.out)
            .expect("a packet within the SoupBinTCP limit");
    }

    /// Sends what is queued, then closes with `reason`.
    pub(super) fn close_after_flush(&mut self, reason: String, now: Instant) {
        self.closing = Some(reason);
        self.closing_since = Some(now);
    }

    /// Whether every queued byte went to the socket.
    pub(super) fn flushed(&self) -> bool {
        self.out_sent == self.out.len()
    }

    /// Reads once from the socket into the decoder, at most `chunk.len()`
    /// bytes. `Err` closes the session with that reason.
    pub(super) fn read(
        &mut self,
        chunk: &mut [u8],
        now: Instant,
    ) -> Result<(ReadOutcome, usize), String> {
        let room = self.decoder.capacity() - self.decoder.buffered_len();
        let want = room.min(chunk.len());
        if want == 0 {
            return Ok((ReadOutcome::Full, 0));
        }
        loop {
            match self.socket.read(&mut chunk[..want]) {
                Ok(0) => return Err("the client closed the connection".to_owned()),
                Ok(n) => {
                    self.last_received = now;
                    let fed = self.decoder.feed(&chunk[..n]);
                    debug_assert_eq!(fed, n, "room was checked");
                    return Ok((ReadOutcome::Read, n));
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok((ReadOutcome::Drained, 0));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("read failed: {error}")),
            }
        }
    }

    /// Tops the socket buffer up from the session's stream (a pass's
    /// worth at most), unless the session is closing or its day is over.
    pub(super) fn fill_from(&mut self, streams: &SessionStreams, day: u64) {
        if self.closing.is_some() {
            return;
        }
        let State::LoggedIn(logged_in) = &mut self.state else {
            return;
        };
        if logged_in.day != day {
            return;
        }
        let mut budget = WRITE_CHUNK.saturating_sub(self.out.len() - self.out_sent);
        while budget > 0 {
            let Some(message) = streams.message(logged_in.key, logged_in.next) else {
                break;
            };
            ServerPacket::SequencedData(&message)
                .encode(&mut self.out)
                .expect("a stream message within the SoupBinTCP limit");
            budget = budget.saturating_sub(message.len() + 3);
            logged_in.next += 1;
        }
    }

    /// Queues everything left of its stream (at the end of the day).
    pub(super) fn drain_stream(&mut self, streams: &SessionStreams) {
        let State::LoggedIn(logged_in) = &mut self.state else {
            return;
        };
        while let Some(message) = streams.message(logged_in.key, logged_in.next) {
            ServerPacket::SequencedData(&message)
                .encode(&mut self.out)
                .expect("a stream message within the SoupBinTCP limit");
            logged_in.next += 1;
        }
    }

    /// Bytes yet to send: its socket buffer plus its stream from its next
    /// message.
    pub(super) fn backlog(&self, streams: &SessionStreams) -> usize {
        let buffered = self.out.len() - self.out_sent;
        let stream = self.logged_in().map_or(0, |logged_in| {
            streams.bytes_from(logged_in.key, logged_in.next)
        });
        buffered + stream
    }

    /// Writes the session's buffer to its socket.
    pub(super) fn flush(&mut self, now: Instant) -> io::Result<()> {
        if self.out_sent == self.out.len() {
            self.last_progress = now;
            return Ok(());
        }
        loop {
            match self.socket.write(&self.out[self.out_sent..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
                Ok(n) => {
                    self.out_sent += n;
                    self.last_sent = now;
                    self.last_progress = now;
                    if self.out_sent == self.out.len() {
                        self.out.clear();
                        self.out_sent = 0;
                        return Ok(());
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if self.out_sent > self.out.capacity() / 2 {
                        self.out.drain(..self.out_sent);
                        self.out_sent = 0;
                    }
                    return Ok(());
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// A client that does not read: its backlog is past `backlog_max`
    /// while its socket has taken nothing for `patience`.
    pub(super) fn is_slow_consumer(
        &self,
        backlog: usize,
        backlog_max: usize,
        patience: Duration,
    ) -> bool {
        backlog > backlog_max && self.last_progress.elapsed() > patience
    }

    /// Heartbeats and timeouts: `Some(reason)` when the session must close
    /// now.
    pub(super) fn tick(
        &mut self,
        now: Instant,
        heartbeat: Duration,
        client_timeout: Duration,
    ) -> Option<String> {
        if let Some(since) = self.closing_since {
            if now.duration_since(since) > CLOSING_FLUSH_MAX {
                let reason = self.closing.clone().unwrap_or_default();
                return Some(format!("{reason} (not flushed)"));
            }
            return None;
        }
        if now.duration_since(self.last_received) > client_timeout {
            let reason = match self.state {
                State::AwaitingLogin | State::Authenticating(_) => "no Login Request in time",
                State::LoggedIn(_) => "the client sent nothing (heartbeat timeout)",
            };
            return Some(reason.to_owned());
        }
        if self.logged_in().is_some()
            && now.duration_since(self.last_sent) >= heartbeat
            && self.flushed()
        {
            self.send(&ServerPacket::ServerHeartbeat);
        }
        None
    }
}

/// The open sessions, by slot (a slot is its mio token less the first
/// session token; slots are reused).
#[derive(Debug, Default)]
pub(super) struct Sessions {
    slots: Vec<Option<Session>>,
    next_id: u64,
}

impl Sessions {
    pub(super) fn open_count(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub(super) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// A free slot, and the id its session will have.
    pub(super) fn vacancy(&mut self) -> (usize, u64) {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.next_id += 1;
        (slot, self.next_id)
    }

    pub(super) fn put(&mut self, slot: usize, session: Session) {
        assert!(self.slots[slot].is_none(), "slot {slot} is free");
        self.slots[slot] = Some(session);
    }

    pub(super) fn get(&self, slot: usize) -> Option<&Session> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    pub(super) fn get_mut(&mut self, slot: usize) -> Option<&mut Session> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    pub(super) fn take(&mut self, slot: usize) -> Option<Session> {
        self.slots.get_mut(slot).and_then(Option::take)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Session> {
        self.slots.iter().flatten()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Session> {
        self.slots.iter_mut().flatten()
    }

    /// Whether another open session is logged in on `key`.
    pub(super) fn logged_in_elsewhere(&self, slot: usize, key: StreamKey) -> bool {
        self.slots.iter().enumerate().any(|(other, session)| {
            other != slot
                && session.as_ref().is_some_and(|session| {
                    session.closing.is_none()
                        && session
                            .logged_in()
                            .is_some_and(|logged_in| logged_in.key == key)
                })
        })
    }
}
