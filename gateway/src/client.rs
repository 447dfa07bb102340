//! A blocking client library for the exchange's SoupBinTCP ports: order
//! entry (OUCH 5.0, `127.0.0.1:9001` by default) and funding (the project's
//! funding messages, `127.0.0.1:9002`).
//!
//! Three layers, each owning the one below:
//!
//! * [`SoupClient`]: one SoupBinTCP 4.0 session over a blocking
//!   [`TcpStream`]. It logs in, sends Unsequenced Data (one at a time or
//!   queued and flushed together, for pipelining), returns what the server
//!   sends, swallows Server Heartbeats, sends a Client Heartbeat whenever it
//!   has written nothing for [`HEARTBEAT_INTERVAL`], and numbers Sequenced
//!   Data from the Login Accepted's sequence number on.
//! * [`OuchClient`]: encodes OUCH 5.0 inbound messages and decodes the
//!   sequenced stream as [`ouch::Outbound`].
//! * [`FundingClient`]: encodes funding requests and decodes the sequenced
//!   stream as [`funding::Reply`].
//!
//! No thread, no async runtime: every call blocks for at most the timeout it
//! is given (or [`LOGIN_TIMEOUT`] / [`WRITE_TIMEOUT`]). Heartbeats are only
//! sent from inside calls, so a caller that does not call into the client
//! for 15 s is disconnected by the server; call [`SoupClient::recv`] (or
//! [`SoupClient::heartbeat_if_idle`]) at least every second while idle.
//!
//! # Example
//!
//! ```no_run
//! use gateway::client::{LoginParams, OuchClient};
//! use std::time::Duration;
//!
//! let login = LoginParams::new("DEMO1", "demo1");
//! let (mut client, accepted) = OuchClient::connect("127.0.0.1:9001", &login)?;
//! println!("session {} next sequence {}", accepted.session, accepted.sequence);
//! let next_user_ref_num = client.next_user_ref_num(Duration::from_secs(5))?;
//! println!("next UserRefNum {next_user_ref_num}");
//! client.logout()?;
//! # Ok::<(), gateway::client::ClientError>(())
//! ```

use crate::funding;
use crate::ouch;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use wire::soupbin::{self, ClientPacket, EncodeError, FrameDecoder, FrameError, ServerPacket};

/// The client sends a Client Heartbeat after this long without writing.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long [`SoupClient::connect`] waits for the TCP connection and then
/// for Login Accepted / Login Rejected.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(5);
/// A write that cannot make progress for this long fails with
/// [`ClientError::Io`] (the server has stopped reading).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After this long without a byte from the server (which heartbeats every
/// second), [`SoupClient::recv`] fails with [`ClientError::Timeout`]: the
/// same limit the server applies to its clients.
pub const SERVER_SILENCE_MAX: Duration = Duration::from_secs(15);
/// How long [`SoupClient::logout`] waits for the server to close.
const LOGOUT_LINGER: Duration = Duration::from_millis(500);
/// Bytes read from the socket at once. Reads happen only when the decoder
/// holds no complete frame, i.e. at most one partial frame, which leaves at
/// least one maximum-size frame of room: a read always fits.
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// The largest Packet Length accepted from the server: anything SoupBinTCP
/// can describe.
const PACKET_LENGTH_MAX: u16 = u16::MAX;

const _: () = assert!(READ_CHUNK_BYTES <= 2 + PACKET_LENGTH_MAX as usize);

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Everything that can go wrong in a client. After any error but
/// [`ClientError::Encode`] and [`ClientError::InvalidLogin`] the connection
/// should be considered lost.
#[derive(Debug)]
pub enum ClientError {
    /// The socket failed (connect, read or write).
    Io(io::Error),
    /// The server sent bytes that are not a valid SoupBinTCP packet.
    Frame(FrameError),
    /// The server sent a valid packet where the protocol does not allow it
    /// (e.g. Sequenced Data before Login Accepted).
    UnexpectedPacket {
        /// The packet type byte.
        packet_type: u8,
        /// What the client was doing.
        context: &'static str,
    },
    /// A payload too long for one SoupBinTCP packet (nothing was sent).
    Encode(EncodeError),
    /// A login field does not fit SoupBinTCP's Alpha field (nothing was sent).
    InvalidLogin {
        /// "username", "password" or "session".
        field: &'static str,
    },
    /// The server answered the Login Request with Login Rejected.
    LoginRejected(soupbin::RejectReason),
    /// The server sent a Sequenced Data payload that is not OUCH 5.0.
    Ouch {
        /// The sequence number of the payload.
        sequence: u64,
        /// Why it does not decode.
        error: ouch::OuchError,
    },
    /// The server sent a Sequenced Data payload that is not a funding reply.
    Funding {
        /// The sequence number of the payload.
        sequence: u64,
        /// Why it does not decode.
        error: funding::FundingError,
    },
    /// Nothing arrived in time (a login, or the server went silent).
    Timeout {
        /// What the client was waiting for.
        waiting_for: &'static str,
    },
    /// The server sent End of Session (the OUCH and funding layers report
    /// it as this error; [`SoupClient::recv`] returns it as
    /// [`Received::EndOfSession`]).
    EndOfSession,
    /// The server closed the connection.
    Disconnected,
}

impl fmt::Display for ClientError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(error) => write!(formatter, "i/o error: {error}"),
            ClientError::Frame(error) => write!(formatter, "bad packet from the server: {error}"),
            ClientError::UnexpectedPacket {
                packet_type,
                context,
            } => write!(
                formatter,
                "unexpected packet type {:?} from the server {context}",
                char::from(*packet_type)
            ),
            ClientError::Encode(error) => write!(formatter, "cannot send: {error}"),
            ClientError::InvalidLogin { field } => {
                write!(formatter, "the {field} does not fit its SoupBinTCP field")
            }
            ClientError::LoginRejected(reason) => match reason {
                soupbin::RejectReason::NotAuthorized => {
                    write!(formatter, "login rejected: not authorized (A)")
                }
                soupbin::RejectReason::SessionNotAvailable => {
                    write!(formatter, "login rejected: session not available (S)")
                }
            },
            ClientError::Ouch { sequence, error } => {
                write!(formatter, "message {sequence} is not OUCH 5.0: {error}")
            }
            ClientError::Funding { sequence, error } => {
                write!(
                    formatter,
                    "message {sequence} is not a funding reply: {error}"
                )
            }
            ClientError::Timeout { waiting_for } => {
                write!(formatter, "timed out waiting for {waiting_for}")
            }
            ClientError::EndOfSession => write!(formatter, "the server ended the session"),
            ClientError::Disconnected => write!(formatter, "the server closed the connection"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(error) => Some(error),
            ClientError::Frame(error) => Some(error),
            ClientError::Encode(error) => Some(error),
            ClientError::Ouch { error, .. } => Some(error),
            ClientError::Funding { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> Self {
        ClientError::Io(error)
    }
}

impl From<FrameError> for ClientError {
    fn from(error: FrameError) -> Self {
        ClientError::Frame(error)
    }
}

impl From<EncodeError> for ClientError {
    fn from(error: EncodeError) -> Self {
        ClientError::Encode(error)
    }
}

// ---------------------------------------------------------------------------
// SoupBinTCP session
// ---------------------------------------------------------------------------

/// What to put in the Login Request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginParams {
    /// Up to 6 printable characters.
    pub username: String,
    /// Up to 10 printable characters.
    pub password: String,
    /// Up to 10 characters; empty asks for the current session.
    pub session: String,
    /// The next sequenced message wanted; 0 asks for new messages only.
    pub sequence: u64,
}

impl LoginParams {
    /// A login to the current session, from the next message on.
    pub fn new(username: &str, password: &str) -> Self {
        LoginParams {
            username: username.to_owned(),
            password: password.to_owned(),
            session: String::new(),
            sequence: 0,
        }
    }

    fn packet(&self) -> Result<Vec<u8>, ClientError> {
        let packet = ClientPacket::LoginRequest {
            username: soupbin::alpha(&self.username)
                .ok_or(ClientError::InvalidLogin { field: "username" })?,
            password: soupbin::alpha(&self.password)
                .ok_or(ClientError::InvalidLogin { field: "password" })?,
            requested_session: soupbin::alpha_right_justified(&self.session)
                .ok_or(ClientError::InvalidLogin { field: "session" })?,
            requested_sequence: self.sequence,
        };
        let mut bytes = Vec::with_capacity(packet.encoded_len());
        packet.encode(&mut bytes)?;
        Ok(bytes)
    }
}

/// The server's Login Accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAccepted {
    /// The session name, without its padding.
    pub session: String,
    /// The sequence number of the next Sequenced Data the server sends.
    pub sequence: u64,
}

/// One packet from the server, as [`SoupClient::recv`] returns it (Server
/// Heartbeats are consumed and never returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Sequenced Data, numbered by the client from Login Accepted on.
    Sequenced {
        /// This message's sequence number.
        sequence: u64,
        /// The higher-level message.
        payload: Vec<u8>,
    },
    /// Unsequenced Data.
    Unsequenced(Vec<u8>),
    /// End of Session: no more sequenced messages will follow.
    EndOfSession,
    /// Debug text.
    Debug(Vec<u8>),
}

/// A logged-in SoupBinTCP 4.0 session (see the module docs).
#[derive(Debug)]
pub struct SoupClient {
    stream: TcpStream,
    decoder: FrameDecoder,
    read_chunk: Box<[u8]>,
    /// Encoded packets not written yet ([`queue_unsequenced`](Self::queue_unsequenced)).
    write_buffer: Vec<u8>,
    session: String,
    sequence_next: u64,
    last_write: Instant,
    last_read: Instant,
    ended: bool,
}

impl SoupClient {
    /// Connects, logs in and waits up to [`LOGIN_TIMEOUT`] for the answer.
    pub fn connect(
        addr: impl ToSocketAddrs,
        login: &LoginParams,
    ) -> Result<(SoupClient, LoginAccepted), ClientError> {
        Self::connect_timeout(addr, login, LOGIN_TIMEOUT)
    }

    /// [`connect`](Self::connect) with another timeout, which applies to
    /// the TCP connection (each address tried) and then to the login.
    pub fn connect_timeout(
        addr: impl ToSocketAddrs,
        login: &LoginParams,
        timeout: Duration,
    ) -> Result<(SoupClient, LoginAccepted), ClientError> {
        assert!(!timeout.is_zero(), "a login timeout of zero");
        let login_packet = login.packet()?;
        let stream = connect_any(addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let now = Instant::now();
        let mut client = SoupClient {
            stream,
            decoder: FrameDecoder::new(PACKET_LENGTH_MAX),
            read_chunk: vec![0; READ_CHUNK_BYTES].into_boxed_slice(),
            write_buffer: Vec::with_capacity(4096),
            session: String::new(),
            sequence_next: 0,
            last_write: now,
            last_read: now,
            ended: false,
        };
        client.write_buffer.extend_from_slice(&login_packet);
        client.flush()?;
        let accepted = client.await_login(now + timeout)?;
        client.session.clone_from(&accepted.session);
        client.sequence_next = accepted.sequence;
        Ok((client, accepted))
    }

    fn await_login(&mut self, deadline: Instant) -> Result<LoginAccepted, ClientError> {
        loop {
            if let Some(packet) = self.decoder.next_server_packet()? {
                match packet {
                    ServerPacket::LoginAccepted { session, sequence } => {
                        let session = soupbin::alpha_trimmed(&session);
                        return Ok(LoginAccepted {
                            session: String::from_utf8_lossy(session).into_owned(),
                            sequence,
                        });
                    }
                    ServerPacket::LoginRejected { reason } => {
                        return Err(ClientError::LoginRejected(reason));
                    }
                    ServerPacket::Debug(_) | ServerPacket::ServerHeartbeat => continue,
                    other => {
                        return Err(ClientError::UnexpectedPacket {
                            packet_type: other.packet_type(),
                            context: "before Login Accepted",
                        });
                    }
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClientError::Timeout {
                    waiting_for: "Login Accepted",
                });
            }
            self.read_some(remaining)?;
        }
    }

    /// The session name from Login Accepted.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The sequence number the next Sequenced Data will carry.
    pub fn sequence_next(&self) -> u64 {
        self.sequence_next
    }

    /// Sends one Unsequenced Data packet now (and anything queued before it).
    pub fn send_unsequenced(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.queue_unsequenced(payload)?;
        self.flush()
    }

    /// Sends several Unsequenced Data packets with as few writes as the
    /// socket allows (pipelining).
    pub fn send_many<'a>(
        &mut self,
        payloads: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), ClientError> {
        for payload in payloads {
            self.queue_unsequenced(payload)?;
        }
        self.flush()
    }

    /// Encodes an Unsequenced Data packet into the write buffer without
    /// sending it; [`flush`](Self::flush) sends everything queued.
    pub fn queue_unsequenced(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        ClientPacket::UnsequencedData(payload).encode(&mut self.write_buffer)?;
        Ok(())
    }

    /// Bytes queued and not yet sent.
    pub fn queued_len(&self) -> usize {
        self.write_buffer.len()
    }

    /// Writes everything queued (nothing happens if nothing is queued,
    /// except a Client Heartbeat if one is due).
    pub fn flush(&mut self) -> Result<(), ClientError> {
        if self.write_buffer.is_empty() {
            return self.heartbeat_if_idle();
        }
        let result = self.stream.write_all(&self.write_buffer);
        self.write_buffer.clear();
        result?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Sends a Client Heartbeat if nothing was written for
    /// [`HEARTBEAT_INTERVAL`]. [`recv`](Self::recv) and the send paths call
    /// it; call it yourself when doing neither for a while.
    pub fn heartbeat_if_idle(&mut self) -> Result<(), ClientError> {
        if self.last_write.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(3);
        ClientPacket::ClientHeartbeat.encode(&mut bytes)?;
        self.stream.write_all(&bytes)?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Waits up to `timeout` for the next packet from the server other
    /// than a Server Heartbeat; `Ok(None)` if none came in time. A zero
    /// timeout returns what is already buffered, without reading.
    ///
    /// Sends Client Heartbeats while it waits. Fails with
    /// [`ClientError::Disconnected`] once the server closes, and with
    /// [`ClientError::Timeout`] if the server sends nothing at all (not even
    /// a heartbeat) for [`SERVER_SILENCE_MAX`].
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Received>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.heartbeat_if_idle()?;
            if let Some(received) = self.next_buffered()? {
                return Ok(Some(received));
            }
            let now = Instant::now();
            if now.duration_since(self.last_read) >= SERVER_SILENCE_MAX {
                return Err(ClientError::Timeout {
                    waiting_for: "the server (silent too long)",
                });
            }
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                return Ok(None);
            }
            let heartbeat_due =
                (self.last_write + HEARTBEAT_INTERVAL).saturating_duration_since(now);
            let wait = remaining.min(heartbeat_due.max(Duration::from_millis(1)));
            self.read_some(wait)?;
        }
    }

    /// The next buffered packet that is not a Server Heartbeat.
    fn next_buffered(&mut self) -> Result<Option<Received>, ClientError> {
        while let Some(packet) = self.decoder.next_server_packet()? {
            let received = match packet {
                ServerPacket::ServerHeartbeat => continue,
                ServerPacket::SequencedData(payload) => {
                    let sequence = self.sequence_next;
                    self.sequence_next += 1;
                    Received::Sequenced {
                        sequence,
                        payload: payload.to_vec(),
                    }
                }
                ServerPacket::UnsequencedData(payload) => Received::Unsequenced(payload.to_vec()),
                ServerPacket::Debug(text) => Received::Debug(text.to_vec()),
                ServerPacket::EndOfSession => {
                    self.ended = true;
                    Received::EndOfSession
                }
                other @ (ServerPacket::LoginAccepted { .. }
                | ServerPacket::LoginRejected { .. }) => {
                    return Err(ClientError::UnexpectedPacket {
                        packet_type: other.packet_type(),
                        context: "after login",
                    });
                }
            };
            return Ok(Some(received));
        }
        Ok(None)
    }

    /// Reads once, waiting at most `wait` (> 0), and feeds the decoder.
    /// Returns quietly when nothing came in time.
    fn read_some(&mut self, wait: Duration) -> Result<(), ClientError> {
        debug_assert!(!wait.is_zero());
        self.stream.set_read_timeout(Some(wait))?;
        match self.stream.read(&mut self.read_chunk) {
            Ok(0) => Err(ClientError::Disconnected),
            Ok(read) => {
                self.last_read = Instant::now();
                let fed = self.decoder.feed(&self.read_chunk[..read]);
                // The decoder had no complete frame, so it has room for a
                // whole chunk (see READ_CHUNK_BYTES), unless it failed,
                // in which case next_server_packet reports why.
                debug_assert!(fed == read || self.decoder.next_frame().is_err());
                Ok(())
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(error) if is_disconnect(&error) => Err(ClientError::Disconnected),
            Err(error) => Err(ClientError::Io(error)),
        }
    }

    /// Whether the server has sent End of Session.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Sends a Logout Request (after anything queued) and waits briefly for
    /// the server to close the connection; whatever arrives meanwhile is
    /// discarded.
    pub fn logout(mut self) -> Result<(), ClientError> {
        let mut bytes = Vec::with_capacity(3);
        ClientPacket::LogoutRequest.encode(&mut bytes)?;
        self.write_buffer.extend_from_slice(&bytes);
        self.flush()?;
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LOGOUT_LINGER;
        let mut discard = [0u8; 4096];
        while let Some(wait) = nonzero(deadline.saturating_duration_since(Instant::now())) {
            self.stream.set_read_timeout(Some(wait))?;
            match self.stream.read(&mut discard) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        Ok(())
    }
}

fn nonzero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

fn is_disconnect(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Tries every address `addr` resolves to, each with `timeout`.
fn connect_any(addr: impl ToSocketAddrs, timeout: Duration) -> Result<TcpStream, ClientError> {
    let addresses: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    let mut last_error = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = error,
        }
    }
    Err(ClientError::Io(last_error))
}

// ---------------------------------------------------------------------------
// OUCH 5.0
// ---------------------------------------------------------------------------

/// An OUCH 5.0 order-entry session over [`SoupClient`].
///
/// Messages from the server come out of [`next_message`](Self::next_message)
/// in sequence order, except that [`wait_for`](Self::wait_for) takes the one
/// it waits for out of turn and keeps the others for `next_message`.
#[derive(Debug)]
pub struct OuchClient {
    soup: SoupClient,
    encoded: Vec<u8>,
    backlog: VecDeque<(u64, ouch::Outbound)>,
}

impl OuchClient {
    /// Connects and logs in (see [`SoupClient::connect`]).
    pub fn connect(
        addr: impl ToSocketAddrs,
        login: &LoginParams,
    ) -> Result<(OuchClient, LoginAccepted), ClientError> {
        let (soup, accepted) = SoupClient::connect(addr, login)?;
        Ok((OuchClient::new(soup), accepted))
    }

    /// Wraps a logged-in session.
    pub fn new(soup: SoupClient) -> Self {
        OuchClient {
            soup,
            encoded: Vec::with_capacity(128),
            backlog: VecDeque::new(),
        }
    }

    /// The session underneath.
    pub fn soup(&mut self) -> &mut SoupClient {
        &mut self.soup
    }

    /// Sends one inbound message now.
    pub fn send(&mut self, message: &ouch::Inbound) -> Result<(), ClientError> {
        self.queue(message)?;
        self.soup.flush()
    }

    /// Queues one inbound message; [`flush`](Self::flush) sends the queue.
    pub fn queue(&mut self, message: &ouch::Inbound) -> Result<(), ClientError> {
        self.encoded.clear();
        message.encode(&mut self.encoded);
        self.soup.queue_unsequenced(&self.encoded)
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.soup.flush()
    }

    /// Sends an Enter Order.
    pub fn enter_order(&mut self, order: &ouch::EnterOrder) -> Result<(), ClientError> {
        self.send(&ouch::Inbound::EnterOrder(*order))
    }

    /// Sends a Replace Order.
    pub fn replace_order(&mut self, replace: &ouch::ReplaceOrder) -> Result<(), ClientError> {
        self.send(&ouch::Inbound::ReplaceOrder(*replace))
    }

    /// Sends a Cancel Order (its quantity is what to leave open; 0 cancels).
    pub fn cancel_order(&mut self, cancel: &ouch::CancelOrder) -> Result<(), ClientError> {
        self.send(&ouch::Inbound::CancelOrder(*cancel))
    }

    /// Sends a Modify Order.
    pub fn modify_order(&mut self, modify: &ouch::ModifyOrder) -> Result<(), ClientError> {
        self.send(&ouch::Inbound::ModifyOrder(*modify))
    }

    /// Sends a Mass Cancel Request.
    pub fn mass_cancel(&mut self, request: &ouch::MassCancelRequest) -> Result<(), ClientError> {
        self.send(&ouch::Inbound::MassCancelRequest(*request))
    }

    /// Sends an Account Query Request (no options).
    pub fn account_query(&mut self) -> Result<(), ClientError> {
        self.send(&ouch::Inbound::AccountQueryRequest(
            ouch::AccountQueryRequest::default(),
        ))
    }

    /// Asks the server for the next UserRefNum it will accept (Account
    /// Query) and waits up to `timeout` for the answer; other messages that
    /// arrive meanwhile stay for [`next_message`](Self::next_message).
    pub fn next_user_ref_num(&mut self, timeout: Duration) -> Result<u32, ClientError> {
        self.account_query()?;
        match self.wait_for(timeout, |_, message| {
            matches!(message, ouch::Outbound::AccountQueryResponse(_))
        })? {
            Some((_, ouch::Outbound::AccountQueryResponse(response))) => {
                Ok(response.next_user_ref_num)
            }
            _ => Err(ClientError::Timeout {
                waiting_for: "Account Query Response",
            }),
        }
    }

    /// The next sequenced OUCH message with its sequence number, waiting up
    /// to `timeout`; `Ok(None)` if none came. Unsequenced and Debug packets
    /// are skipped; End of Session is [`ClientError::EndOfSession`].
    pub fn next_message(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(u64, ouch::Outbound)>, ClientError> {
        if let Some(message) = self.backlog.pop_front() {
            return Ok(Some(message));
        }
        self.receive(Instant::now() + timeout)
    }

    /// Waits up to `timeout` for a message for which `matches(sequence,
    /// message)` holds and returns it; `Ok(None)` if none came in time.
    /// Messages already held back are checked first. The messages that do
    /// not match are kept, in order, for [`next_message`](Self::next_message).
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut matches: impl FnMut(u64, &ouch::Outbound) -> bool,
    ) -> Result<Option<(u64, ouch::Outbound)>, ClientError> {
        if let Some(index) = self
            .backlog
            .iter()
            .position(|(sequence, message)| matches(*sequence, message))
        {
            return Ok(self.backlog.remove(index));
        }
        let deadline = Instant::now() + timeout;
        while let Some((sequence, message)) = self.receive(deadline)? {
            if matches(sequence, &message) {
                return Ok(Some((sequence, message)));
            }
            self.backlog.push_back((sequence, message));
        }
        Ok(None)
    }

    fn receive(&mut self, deadline: Instant) -> Result<Option<(u64, ouch::Outbound)>, ClientError> {
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.soup.recv(remaining)? {
                None => return Ok(None),
                Some(Received::Sequenced { sequence, payload }) => {
                    let message = ouch::Outbound::decode(&payload)
                        .map_err(|error| ClientError::Ouch { sequence, error })?;
                    return Ok(Some((sequence, message)));
                }
                Some(Received::Unsequenced(_) | Received::Debug(_)) => continue,
                Some(Received::EndOfSession) => return Err(ClientError::EndOfSession),
            }
        }
    }

    /// Logs out (see [`SoupClient::logout`]).
    pub fn logout(self) -> Result<(), ClientError> {
        self.soup.logout()
    }
}

// ---------------------------------------------------------------------------
// Funding
// ---------------------------------------------------------------------------

/// A funding session over [`SoupClient`]: requests go out as Unsequenced
/// Data, replies come back as Sequenced Data (see `docs/protocol.md`).
#[derive(Debug)]
pub struct FundingClient {
    soup: SoupClient,
    encoded: Vec<u8>,
}

impl FundingClient {
    /// Connects and logs in (see [`SoupClient::connect`]).
    pub fn connect(
        addr: impl ToSocketAddrs,
        login: &LoginParams,
    ) -> Result<(FundingClient, LoginAccepted), ClientError> {
        let (soup, accepted) = SoupClient::connect(addr, login)?;
        Ok((FundingClient::new(soup), accepted))
    }

    /// Wraps a logged-in session.
    pub fn new(soup: SoupClient) -> Self {
        FundingClient {
            soup,
            encoded: Vec::with_capacity(64),
        }
    }

    /// The session underneath.
    pub fn soup(&mut self) -> &mut SoupClient {
        &mut self.soup
    }

    /// Sends one request now.
    pub fn send(&mut self, request: &funding::Request) -> Result<(), ClientError> {
        self.encoded.clear();
        request.encode(&mut self.encoded);
        self.soup.send_unsequenced(&self.encoded)
    }

    /// Sends a Deposit.
    pub fn deposit(&mut self, deposit: funding::Funding) -> Result<(), ClientError> {
        self.send(&funding::Request::Deposit(deposit))
    }

    /// Sends a Withdrawal.
    pub fn withdraw(&mut self, withdrawal: funding::Funding) -> Result<(), ClientError> {
        self.send(&funding::Request::Withdrawal(withdrawal))
    }

    /// Sends a Transfer.
    pub fn transfer(&mut self, transfer: funding::TransferRequest) -> Result<(), ClientError> {
        self.send(&funding::Request::Transfer(transfer))
    }

    /// Sends a Balance Query.
    pub fn balance_query(&mut self, account: u32) -> Result<(), ClientError> {
        self.send(&funding::Request::BalanceQuery { account })
    }

    /// The next sequenced reply with its sequence number, waiting up to
    /// `timeout`; `Ok(None)` if none came. Unsequenced and Debug packets are
    /// skipped; End of Session is [`ClientError::EndOfSession`].
    pub fn next_reply(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(u64, funding::Reply)>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.soup.recv(remaining)? {
                None => return Ok(None),
                Some(Received::Sequenced { sequence, payload }) => {
                    let reply = funding::Reply::decode(&payload)
                        .map_err(|error| ClientError::Funding { sequence, error })?;
                    return Ok(Some((sequence, reply)));
                }
                Some(Received::Unsequenced(_) | Received::Debug(_)) => continue,
                Some(Received::EndOfSession) => return Err(ClientError::EndOfSession),
            }
        }
    }

    /// Logs out (see [`SoupClient::logout`]).
    pub fn logout(self) -> Result<(), ClientError> {
        self.soup.logout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};

    const PATIENCE: Duration = Duration::from_secs(5);

    /// A client packet as the fake server saw it, owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Got {
        Login {
            username: Vec<u8>,
            password: Vec<u8>,
            session: [u8; soupbin::SESSION_BYTES],
            sequence: u64,
        },
        Unsequenced(Vec<u8>),
        Heartbeat,
        Logout,
        Debug(Vec<u8>),
    }

    /// One accepted connection of the fake server, speaking SoupBinTCP
    /// through `wire::soupbin`.
    struct FakeSession {
        stream: TcpStream,
        decoder: FrameDecoder,
    }

    impl FakeSession {
        /// The next client packet, `None` on timeout or close.
        fn next(&mut self, timeout: Duration) -> Option<Got> {
            let deadline = Instant::now() + timeout;
            loop {
                if let Some(packet) = self.decoder.next_client_packet().expect("valid packet") {
                    return Some(match packet {
                        ClientPacket::LoginRequest {
                            username,
                            password,
                            requested_session,
                            requested_sequence,
                        } => Got::Login {
                            username: soupbin::alpha_trimmed(&username).to_vec(),
                            password: soupbin::alpha_trimmed(&password).to_vec(),
                            session: requested_session,
                            sequence: requested_sequence,
                        },
                        ClientPacket::UnsequencedData(payload) => {
                            Got::Unsequenced(payload.to_vec())
                        }
                        ClientPacket::ClientHeartbeat => Got::Heartbeat,
                        ClientPacket::LogoutRequest => Got::Logout,
                        ClientPacket::Debug(text) => Got::Debug(text.to_vec()),
                    });
                }
                let remaining = nonzero(deadline.saturating_duration_since(Instant::now()))?;
                self.stream.set_read_timeout(Some(remaining)).unwrap();
                let mut chunk = [0u8; 4096];
                match self.stream.read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(read) => assert_eq!(self.decoder.feed(&chunk[..read]), read),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return None,
                }
            }
        }

        /// The next packet that is not a heartbeat.
        fn next_data(&mut self, timeout: Duration) -> Option<Got> {
            let deadline = Instant::now() + timeout;
            loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                match self.next(remaining)? {
                    Got::Heartbeat => continue,
                    other => return Some(other),
                }
            }
        }

        fn send(&mut self, packet: ServerPacket<'_>) {
            let mut bytes = Vec::new();
            packet.encode(&mut bytes).unwrap();
            self.stream.write_all(&bytes).unwrap();
        }

        fn send_sequenced(&mut self, payload: &[u8]) {
            self.send(ServerPacket::SequencedData(payload));
        }

        /// Reads the Login Request and accepts it.
        fn accept_login(&mut self, session: &str, sequence: u64) -> Got {
            let login = self.next(PATIENCE).expect("a Login Request");
            assert!(matches!(login, Got::Login { .. }), "{login:?}");
            self.send(ServerPacket::LoginAccepted {
                session: soupbin::alpha_right_justified(session).unwrap(),
                sequence,
            });
            login
        }
    }

    /// A fake server on 127.0.0.1:0 that serves one connection with
    /// `script` on its own thread; join the handle to see its assertions.
    fn fake_server(
        script: impl FnOnce(&mut FakeSession) + Send + 'static,
    ) -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut session = FakeSession {
                stream,
                decoder: FrameDecoder::new(PACKET_LENGTH_MAX),
            };
            script(&mut session);
        });
        (address, handle)
    }

    fn demo_login() -> LoginParams {
        LoginParams::new("DEMO1", "demo1")
    }

    fn sequenced(sequence: u64, payload: &[u8]) -> Option<Received> {
        Some(Received::Sequenced {
            sequence,
            payload: payload.to_vec(),
        })
    }

    #[test]
    fn login_accepted_carries_session_and_sequence_and_sends_the_fields() {
        let (address, server) = fake_server(|session| {
            let login = session.accept_login("SESS01", 7);
            assert_eq!(
                login,
                Got::Login {
                    username: b"DEMO1".to_vec(),
                    password: b"demo1".to_vec(),
                    session: *b"        42",
                    sequence: 3,
                }
            );
            assert_eq!(session.next_data(PATIENCE), Some(Got::Logout));
        });
        let login = LoginParams {
            session: "42".to_owned(),
            sequence: 3,
            ..demo_login()
        };
        let (client, accepted) = SoupClient::connect(address, &login).unwrap();
        assert_eq!(
            accepted,
            LoginAccepted {
                session: "SESS01".to_owned(),
                sequence: 7,
            }
        );
        assert_eq!(client.session(), "SESS01");
        assert_eq!(client.sequence_next(), 7);
        client.logout().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn login_rejected_is_an_error_carrying_the_reason() {
        for reason in [
            soupbin::RejectReason::NotAuthorized,
            soupbin::RejectReason::SessionNotAvailable,
        ] {
            let (address, server) = fake_server(move |session| {
                assert!(matches!(session.next(PATIENCE), Some(Got::Login { .. })));
                session.send(ServerPacket::LoginRejected { reason });
            });
            let result = SoupClient::connect(address, &demo_login());
            match result {
                Err(ClientError::LoginRejected(got)) => assert_eq!(got, reason),
                other => panic!("expected a rejected login, got {other:?}"),
            }
            server.join().unwrap();
        }
    }

    #[test]
    fn a_silent_server_times_the_login_out() {
        let (address, server) = fake_server(|session| {
            assert!(matches!(session.next(PATIENCE), Some(Got::Login { .. })));
            // Say nothing until the client gives up and closes.
            assert_eq!(session.next(PATIENCE), None);
        });
        let started = Instant::now();
        let result =
            SoupClient::connect_timeout(address, &demo_login(), Duration::from_millis(200));
        assert!(
            matches!(result, Err(ClientError::Timeout { .. })),
            "{result:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(result);
        server.join().unwrap();
    }

    #[test]
    fn invalid_login_fields_are_refused_before_connecting() {
        let login = LoginParams::new("TOOLONGNAME", "x");
        let result = SoupClient::connect("127.0.0.1:1", &login);
        assert!(matches!(
            result,
            Err(ClientError::InvalidLogin { field: "username" })
        ));
    }

    #[test]
    fn sequenced_messages_are_numbered_from_login_accepted_and_heartbeats_hidden() {
        let (address, server) = fake_server(|session| {
            session.accept_login("S", 5);
            assert_eq!(
                session.next_data(PATIENCE),
                Some(Got::Unsequenced(b"hello".to_vec()))
            );
            session.send_sequenced(b"first");
            session.send(ServerPacket::ServerHeartbeat);
            session.send_sequenced(b"second");
            session.send(ServerPacket::UnsequencedData(b"aside"));
            session.send(ServerPacket::Debug(b"note"));
            session.send(ServerPacket::ServerHeartbeat);
            session.send_sequenced(b"third");
            session.send(ServerPacket::EndOfSession);
        });
        let (mut client, _) = SoupClient::connect(address, &demo_login()).unwrap();
        client.send_unsequenced(b"hello").unwrap();
        assert_eq!(client.recv(PATIENCE).unwrap(), sequenced(5, b"first"));
        assert_eq!(client.recv(PATIENCE).unwrap(), sequenced(6, b"second"));
        assert_eq!(
            client.recv(PATIENCE).unwrap(),
            Some(Received::Unsequenced(b"aside".to_vec()))
        );
        assert_eq!(
            client.recv(PATIENCE).unwrap(),
            Some(Received::Debug(b"note".to_vec()))
        );
        assert_eq!(client.recv(PATIENCE).unwrap(), sequenced(7, b"third"));
        assert_eq!(client.sequence_next(), 8);
        assert_eq!(client.recv(PATIENCE).unwrap(), Some(Received::EndOfSession));
        assert!(client.has_ended());
        assert!(matches!(
            client.recv(PATIENCE),
            Err(ClientError::Disconnected)
        ));
        server.join().unwrap();
    }

    #[test]
    fn recv_returns_none_on_timeout_and_zero_timeout_does_not_block() {
        let (address, server) = fake_server(|session| {
            session.accept_login("S", 1);
            assert_eq!(session.next_data(PATIENCE), Some(Got::Logout));
        });
        let (mut client, _) = SoupClient::connect(address, &demo_login()).unwrap();
        let started = Instant::now();
        assert_eq!(client.recv(Duration::ZERO).unwrap(), None);
        assert_eq!(client.recv(Duration::from_millis(100)).unwrap(), None);
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
        client.logout().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn a_heartbeat_is_sent_after_one_second_idle() {
        let (address, server) = fake_server(|session| {
            session.accept_login("S", 1);
            let logged_in = Instant::now();
            assert_eq!(session.next(PATIENCE), Some(Got::Heartbeat));
            let idle = logged_in.elapsed();
            assert!(
                idle >= Duration::from_millis(900),
                "heartbeat after {idle:?}"
            );
            assert!(
                idle < Duration::from_millis(1_900),
                "heartbeat after {idle:?}"
            );
            session.send_sequenced(b"after the heartbeat");
            assert_eq!(session.next_data(PATIENCE), Some(Got::Logout));
        });
        let (mut client, _) = SoupClient::connect(address, &demo_login()).unwrap();
        assert_eq!(
            client.recv(PATIENCE).unwrap(),
            sequenced(1, b"after the heartbeat")
        );
        client.logout().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn a_send_path_heartbeats_when_idle_but_not_while_busy() {
        let (address, server) = fake_server(|session| {
            session.accept_login("S", 1);
            // Writes every 300 ms for 1.5 s: no heartbeat in between.
            for index in 0..5u8 {
                assert_eq!(session.next(PATIENCE), Some(Got::Unsequenced(vec![index])));
            }
            // Then 1.2 s idle and a flush with nothing queued: one heartbeat.
            assert_eq!(session.next(PATIENCE), Some(Got::Heartbeat));
            assert_eq!(session.next(PATIENCE), Some(Got::Logout));
        });
        let (mut client, _) = SoupClient::connect(address, &demo_login()).unwrap();
        for index in 0..5u8 {
            thread::sleep(Duration::from_millis(300));
            client.send_unsequenced(&[index]).unwrap();
        }
        thread::sleep(Duration::from_millis(1_200));
        client.flush().unwrap();
        client.logout().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn queued_messages_go_out_in_order_on_flush() {
        let (address, server) = fake_server(|session| {
            session.accept_login("S", 1);
            for index in 0..100u32 {
                assert_eq!(
                    session.next_data(PATIENCE),
                    Some(Got::Unsequenced(index.to_be_bytes().to_vec()))
                );
            }
            assert_eq!(session.next_data(PATIENCE), Some(Got::Logout));
        });
        let (mut client, _) = SoupClient::connect(address, &demo_login()).unwrap();
        let payloads: Vec<[u8; 4]> = (0..50u32).map(u32::to_be_bytes).collect();
        client
            .send_many(payloads.iter().map(|payload| &payload[..]))
            .unwrap();
        for index in 50..100u32 {
            client.queue_unsequenced(&index.to_be_bytes()).unwrap();
        }
        assert_eq!(client.queued_len(), 50 * (2 + 1 + 4));
        client.flush().unwrap();
        assert_eq!(client.queued_len(), 0);
        client.logout().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn a_closed_connection_is_disconnected_and_garbage_is_a_frame_error() {
        let (address, server) = fake_server(|session| {
            session.accept_login("S", 1);
        });
        let (mut client, _) = SoupClient::connect(address, &demo_login()).unwrap();
        server.join().unwrap();
        assert!(matches!(
            client.recv(PATIENCE),
            Err(ClientError::Disconnected)
        ));

        let (address, server) = fake_server(|session| {
            session.accept_login("S", 1);
            session.stream.write_all(b"\x00\x00garbage").unwrap();
            let _ = session.next(Duration::from_millis(500));
        });
        let (mut client, _) = SoupClient::connect(address, &demo_login()).unwrap();
        assert!(matches!(
            client.recv(PATIENCE),
            Err(ClientError::Frame(FrameError::ZeroLength))
        ));
        drop(client);
        server.join().unwrap();
    }

    fn accepted_reply(order: &ouch::EnterOrder, reference: u64) -> ouch::Outbound {
        ouch::Outbound::OrderAccepted(ouch::OrderAccepted {
            timestamp_ns: 1,
            user_ref_num: order.user_ref_num,
            side: order.side,
            quantity: order.quantity,
            symbol: order.symbol,
            price: order.price,
            time_in_force: order.time_in_force,
            display: order.display,
            order_reference_number: reference,
            capacity: order.capacity,
            intermarket_sweep: order.intermarket_sweep,
            cross_type: order.cross_type,
            order_state: ouch::OrderState::Live,
            client_order_id: order.client_order_id,
            options: ouch::Options::NONE,
        })
    }

    fn sample_order(user_ref_num: u32) -> ouch::EnterOrder {
        ouch::EnterOrder {
            user_ref_num,
            side: ouch::Side::Buy,
            quantity: 10,
            symbol: ouch::Symbol::new("ACME").unwrap(),
            price: ouch::Price(1_000_000),
            time_in_force: ouch::TimeInForce::Day,
            display: ouch::Display::Visible,
            capacity: ouch::Capacity::Agency,
            intermarket_sweep: ouch::IntermarketSweep::NotEligible,
            cross_type: ouch::CrossType::ContinuousMarket,
            client_order_id: ouch::ClOrdId::BLANK,
            options: ouch::Options::NONE,
        }
    }

    fn encode_outbound(message: &ouch::Outbound) -> Vec<u8> {
        let mut bytes = Vec::new();
        message.encode(&mut bytes);
        bytes
    }

    #[test]
    fn ouch_client_sends_orders_and_decodes_replies_in_sequence() {
        let executed = ouch::Outbound::OrderExecuted(ouch::OrderExecuted {
            timestamp_ns: 2,
            user_ref_num: 9,
            quantity: 4,
            price: ouch::Price(995_000),
            liquidity_flag: ouch::Code::new(b'A').unwrap(),
            match_number: 77,
            options: ouch::Options::NONE,
        });
        let executed_for_server = executed;
        let (address, server) = fake_server(move |session| {
            session.accept_login("S", 11);
            // The account query first: answer after an unrelated message.
            let Some(Got::Unsequenced(query)) = session.next_data(PATIENCE) else {
                panic!("expected an Account Query");
            };
            assert!(matches!(
                ouch::Inbound::decode(&query),
                Ok(ouch::Inbound::AccountQueryRequest(_))
            ));
            session.send_sequenced(&encode_outbound(&executed_for_server));
            let response = ouch::Outbound::AccountQueryResponse(ouch::AccountQueryResponse {
                timestamp_ns: 3,
                next_user_ref_num: 12,
                options: ouch::Options::NONE,
            });
            session.send_sequenced(&encode_outbound(&response));
            // Then the order.
            let Some(Got::Unsequenced(order)) = session.next_data(PATIENCE) else {
                panic!("expected an Enter Order");
            };
            let Ok(ouch::Inbound::EnterOrder(order)) = ouch::Inbound::decode(&order) else {
                panic!("expected an Enter Order");
            };
            assert_eq!(order, sample_order(12));
            session.send_sequenced(&encode_outbound(&accepted_reply(&order, 17)));
            // A cancel, then something that is not OUCH.
            let Some(Got::Unsequenced(cancel)) = session.next_data(PATIENCE) else {
                panic!("expected a Cancel Order");
            };
            assert_eq!(
                ouch::Inbound::decode(&cancel),
                Ok(ouch::Inbound::CancelOrder(ouch::CancelOrder {
                    user_ref_num: 12,
                    quantity: 0,
                    options: ouch::Options::NONE,
                }))
            );
            session.send_sequenced(b"?");
            assert_eq!(session.next_data(PATIENCE), Some(Got::Logout));
        });
        let (mut client, _) = OuchClient::connect(address, &demo_login()).unwrap();
        assert_eq!(client.next_user_ref_num(PATIENCE).unwrap(), 12);
        client.enter_order(&sample_order(12)).unwrap();
        // The execution arrived first (11) and was held back for next_message.
        assert_eq!(client.next_message(PATIENCE).unwrap(), Some((11, executed)));
        assert_eq!(
            client.next_message(PATIENCE).unwrap(),
            Some((13, accepted_reply(&sample_order(12), 17)))
        );
        client
            .cancel_order(&ouch::CancelOrder {
                user_ref_num: 12,
                quantity: 0,
                options: ouch::Options::NONE,
            })
            .unwrap();
        assert!(matches!(
            client.next_message(PATIENCE),
            Err(ClientError::Ouch { sequence: 14, .. })
        ));
        client.logout().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn wait_for_checks_held_back_messages_first() {
        let (address, server) = fake_server(|session| {
            session.accept_login("S", 1);
            for user_ref_num in 1..=3 {
                let message = accepted_reply(&sample_order(user_ref_num), u64::from(user_ref_num));
                session.send_sequenced(&encode_outbound(&message));
            }
            assert_eq!(session.next_data(PATIENCE), Some(Got::Logout));
        });
        let (mut client, _) = OuchClient::connect(address, &demo_login()).unwrap();
        let urn_is = |wanted: u32| {
            move |_: u64, message: &ouch::Outbound| {
                matches!(message, ouch::Outbound::OrderAccepted(accepted)
                    if accepted.user_ref_num == wanted)
            }
        };
        assert_eq!(
            client.wait_for(PATIENCE, urn_is(3)).unwrap().map(|m| m.0),
            Some(3)
        );
        assert_eq!(
            client.wait_for(PATIENCE, urn_is(2)).unwrap().map(|m| m.0),
            Some(2)
        );
        assert_eq!(client.next_message(PATIENCE).unwrap().map(|m| m.0), Some(1));
        assert_eq!(
            client
                .wait_for(Duration::from_millis(50), urn_is(4))
                .unwrap(),
            None
        );
        client.logout().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn funding_client_sends_requests_and_decodes_replies() {
        let deposit = funding::Funding {
            transfer_id: 1,
            account: 2,
            asset: 3,
            amount: 4_000,
        };
        let applied = funding::Reply::Applied(funding::Applied {
            timestamp_ns: 5,
            transfer_id: 1,
            kind: funding::FundingKind::Deposit,
            repeat: false,
            account: 2,
            to: 0,
            asset: 3,
            amount: 4_000,
        });
        let report = funding::Reply::BalanceReport(funding::BalanceReport {
            timestamp_ns: 6,
            account: 2,
            suspended: false,
            balances: vec![funding::AssetBalance {
                asset: 3,
                available: 4_000,
                held: 0,
            }],
        });
        let (applied_for_server, report_for_server) = (applied.clone(), report.clone());
        let (address, server) = fake_server(move |session| {
            session.accept_login("F", 1);
            let Some(Got::Unsequenced(request)) = session.next_data(PATIENCE) else {
                panic!("expected a deposit");
            };
            assert_eq!(
                funding::Request::decode(&request),
                Ok(funding::Request::Deposit(deposit))
            );
            let mut bytes = Vec::new();
            applied_for_server.encode(&mut bytes);
            session.send_sequenced(&bytes);
            let Some(Got::Unsequenced(request)) = session.next_data(PATIENCE) else {
                panic!("expected a balance query");
            };
            assert_eq!(
                funding::Request::decode(&request),
                Ok(funding::Request::BalanceQuery { account: 2 })
            );
            bytes.clear();
            report_for_server.encode(&mut bytes);
            session.send_sequenced(&bytes);
            session.send(ServerPacket::EndOfSession);
        });
        let login = LoginParams::new("OPER1", "oper1");
        let (mut client, _) = FundingClient::connect(address, &login).unwrap();
        client.deposit(deposit).unwrap();
        assert_eq!(client.next_reply(PATIENCE).unwrap(), Some((1, applied)));
        client.balance_query(2).unwrap();
        assert_eq!(client.next_reply(PATIENCE).unwrap(), Some((2, report)));
        assert!(matches!(
            client.next_reply(PATIENCE),
            Err(ClientError::EndOfSession)
        ));
        server.join().unwrap();
    }
}
