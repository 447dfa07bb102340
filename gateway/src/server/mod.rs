//! The order-entry and funding server: one mio event loop on one thread,
//! serving SoupBinTCP 4.0 sessions on two ports, feeding the engine's input
//! ring and answering from its output ring.
//!
//! ```text
//!  sockets ─▶ frames ─▶ login / OUCH / funding ─▶ Request ─▶ [input ring] ─▶ engine
//!  sockets ◀─ sessions pull from their stream ◀─ Translator ◀─ durable ◀─ [output ring]
//! ```
//!
//! - **Durability.** Outcomes from the engine wait in a queue until their
//!   command is durable (`DurablePosition`); only then are they translated
//!   into the streams, so no message leaves before its cause is durable.
//! - **Streams.** Each login has a stream of sequenced messages per port,
//!   kept in memory for the trading day (rebuilt from the journal at
//!   start-up). A session sends from its stream: a client logging in with a
//!   sequence number gets every message from it on, after a restart too.
//!   A session never holds a copy of its backlog: it pulls from the stream
//!   as its socket drains.
//! - **Protection.** A malformed frame or message ends its session (logged
//!   once); other sessions and the engine are untouched. Each session has a
//!   token-bucket rate limit (past it: disconnected), the number of sessions
//!   is capped, and a session whose unsent backlog passes the outbound limit
//!   while its socket takes nothing is disconnected (it may log in again
//!   and resume). When the engine's input ring is full, the loop stops
//!   reading sockets (back-pressure to TCP).
//! - **Threads.** The loop spins (non-blocking polls) while commands are in
//!   flight and blocks in `epoll` for at most a few milliseconds when there
//!   is nothing to do.

pub mod translate;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use engine::runner::{Origin, Output, PendingOutputs, Released, Request, Waker};
use engine::{AccountId, Command, CommandHeader, Consumer, Event, Producer, Status};
use journal::DurablePosition;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::auth::{Entitlement, Logins};
use crate::funding;
use crate::ouch::Inbound;
pub use translate::{Channel, StreamKey, Translator, TranslatorLogin};
use wire::soupbin::{self, ClientPacket, FrameDecoder, FrameError, ServerPacket};
use wire::trading_day::session_name;

/// The largest packet a client may send (OUCH with every option fits).
const PACKET_LENGTH_MAX: u16 = 1024;
/// Bytes read from one socket per pass, for fairness between sessions.
const READ_BYTES_PER_PASS: usize = 64 * 1024;
/// Each session's input buffer: one read brings many pipelined packets.
const INPUT_BUFFER_BYTES: usize = 32 * 1024;
/// Commands sent to the engine and not yet answered past which the loop
/// stops reading sockets: while the journal cannot make them durable (a
/// stalled disk), their outcomes wait here, and this bounds that memory by
/// pushing back on the clients' TCP connections instead.
const IN_FLIGHT_MAX: u64 = 1 << 18;
/// Bytes of stream messages queued into a socket buffer per pass.
const WRITE_CHUNK: usize = 256 * 1024;

const ORDER_ENTRY_LISTENER: Token = Token(0);
const FUNDING_LISTENER: Token = Token(1);
/// The authenticator's wake-up of the loop.
const AUTHENTICATED: Token = Token(usize::MAX);
/// Login Requests waiting for the authenticator; past it a login is
/// rejected at once (a flood of logins cannot queue without bound).
const AUTH_QUEUE_MAX: usize = 256;
const FIRST_SESSION: usize = 2;

/// The server's settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub order_entry: SocketAddr,
    pub funding: SocketAddr,
    pub sessions_max: usize,
    pub messages_per_second: u32,
    pub messages_burst: u32,
    pub outbound_buffer_bytes: usize,
    pub heartbeat: Duration,
    pub client_timeout: Duration,
    /// The core to pin the loop's thread to.
    pub core: Option<usize>,
}

/// The listeners, bound; [`Server::spawn`] starts the loop.
#[derive(Debug)]
pub struct Server {
    order_entry: TcpListener,
    funding: TcpListener,
    config: ServerConfig,
}

impl Server {
    /// Binds both ports.
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let order_entry = TcpListener::bind(config.order_entry)?;
        let funding = TcpListener::bind(config.funding)?;
        Ok(Server {
            order_entry,
            funding,
            config,
        })
    }

    /// Where the order-entry port listens (with the port chosen when 0 was
    /// asked).
    pub fn order_entry_addr(&self) -> io::Result<SocketAddr> {
        self.order_entry.local_addr()
    }

    pub fn funding_addr(&self) -> io::Result<SocketAddr> {
        self.funding.local_addr()
    }

    /// Starts the loop on its own thread.
    pub fn spawn(self, parts: ServerParts) -> io::Result<ServerHandle> {
        let shared = Arc::new(Control {
            stop_input: AtomicBool::new(false),
            engine_done: AtomicBool::new(false),
        });
        let control = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("gateway".to_owned())
            .spawn(move || {
                if let Some(core) = self.config.core {
                    let _ = core_affinity_pin(core);
                }
                let mut event_loop = EventLoop::new(self, parts, control)?;
                event_loop.run()?;
                Ok(event_loop.stats)
            })?;
        Ok(ServerHandle { shared, thread })
    }
}

fn core_affinity_pin(core: usize) -> bool {
    engine::runner::pin_current_thread(core)
}

/// What the loop works with besides its sockets.
#[derive(Debug)]
pub struct ServerParts {
    pub logins: Logins,
    pub translator: Translator,
    pub input: Producer<Request>,
    pub output: Consumer<Output>,
    pub waker: Waker,
    pub durable: DurablePosition,
    /// The SoupBinTCP session name of the current trading day's first
    /// part (see [`wire::trading_day::session_name`]).
    pub session_prefix: String,
}

#[derive(Debug)]
struct Control {
    stop_input: AtomicBool,
    engine_done: AtomicBool,
}

/// Counters, returned when the loop ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerStats {
    pub sessions_accepted: u64,
    pub sessions_refused: u64,
    pub logins_rejected: u64,
    pub commands: u64,
    pub protocol_errors: u64,
    pub rate_limited: u64,
    pub slow_consumers: u64,
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<Control>,
    thread: JoinHandle<io::Result<ServerStats>>,
}

impl ServerHandle {
    /// Stops taking messages from clients (sessions stay open to receive
    /// replies). Then stop the engine, close the journal and [`finish`].
    ///
    /// [`finish`]: ServerHandle::finish
    pub fn stop_input(&self) {
        self.shared.stop_input.store(true, Ordering::Release);
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// After the engine has stopped and the journal is durable: sends what
    /// is left, closes every session and ends the loop.
    pub fn finish(self) -> io::Result<ServerStats> {
        self.shared.stop_input.store(true, Ordering::Release);
        self.shared.engine_done.store(true, Ordering::Release);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[derive(Debug)]
enum State {
    /// Connected; the first packet must be a Login Request.
    AwaitingLogin,
    /// Its Login Request is with the authenticator; later packets wait.
    Authenticating(LoginPacket),
    LoggedIn {
        login: usize,
        login_name: [u8; 6],
        account: Option<AccountId>,
        key: StreamKey,
        day: u64,
        /// The next sequence number to send.
        next: u64,
    },
}

#[derive(Debug)]
struct Session {
    /// Unique for the life of the loop (slots are reused).
    id: u64,
    socket: TcpStream,
    channel: Channel,
    peer: Option<SocketAddr>,
    decoder: FrameDecoder,
    state: State,
    out: Vec<u8>,
    out_sent: usize,
    last_received: Instant,
    last_sent: Instant,
    /// Last time the socket took bytes, or had nothing to take.
    last_progress: Instant,
    tokens: f64,
    tokens_at: Instant,
    /// The socket may have unread bytes (edge-triggered readiness).
    readable: bool,
    /// Set when the session must be closed after flushing `out`.
    closing: Option<String>,
    closing_since: Option<Instant>,
}

/// A command taken from the output ring, waiting for the rest of its
/// events.
#[derive(Debug)]
struct Assembling {
    header: CommandHeader,
    command: Command,
    origin: Origin,
    status: Status,
    events_left: u32,
}

struct EventLoop {
    poll: Poll,
    order_entry: TcpListener,
    funding: TcpListener,
    config: ServerConfig,
    parts: ServerParts,
    control: Arc<Control>,
    sessions: Vec<Option<Session>>,
    /// Engine outputs waiting for durability.
    pending: PendingOutputs,
    /// A durable command whose events are being taken (see
    /// [`EventLoop::take_outputs`]); its events gather in `events`.
    assembling: Option<Assembling>,
    /// A request the full input ring did not take yet.
    stalled: Option<Request>,
    /// The payload of the packet being handled.
    payload: Vec<u8>,
    /// Where sockets are read into.
    chunk: Vec<u8>,
    /// Events of the command being assembled.
    events: Vec<Event>,
    touched: Vec<StreamKey>,
    in_flight: u64,
    stats: ServerStats,
    last_tick: Instant,
    /// The clock, read once per pass.
    now: Instant,
    /// The session read first in this pass.
    read_start: usize,
    next_session_id: u64,
    authenticator: Authenticator,
    failed: bool,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").finish_non_exhaustive()
    }
}

impl EventLoop {
    fn new(server: Server, parts: ServerParts, control: Arc<Control>) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let Server {
            mut order_entry,
            mut funding,
            config,
        } = server;
        poll.registry()
            .register(&mut order_entry, ORDER_ENTRY_LISTENER, Interest::READABLE)?;
        poll.registry()
            .register(&mut funding, FUNDING_LISTENER, Interest::READABLE)?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), AUTHENTICATED)?);
        let authenticator = Authenticator::spawn(parts.logins.clone(), waker)?;
        Ok(EventLoop {
            poll,
            order_entry,
            funding,
            config,
            parts,
            control,
            sessions: Vec::new(),
            pending: PendingOutputs::new(),
            assembling: None,
            stalled: None,
            payload: Vec::with_capacity(usize::from(PACKET_LENGTH_MAX)),
            chunk: vec![0; INPUT_BUFFER_BYTES],
            events: Vec::new(),
            touched: Vec::new(),
            in_flight: 0,
            stats: ServerStats::default(),
            last_tick: Instant::now(),
            now: Instant::now(),
            read_start: 0,
            next_session_id: 0,
            authenticator,
            failed: false,
        })
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        // Busy passes in a row that found nothing to do: past a few hundred
        // the loop yields its core between passes (the engine or a client
        // may share it on a small machine).
        let mut idle_passes = 0u32;
        loop {
            let busy = self.in_flight > 0 || !self.pending.is_empty() || self.any_readable();
            let timeout = if busy {
                Some(Duration::ZERO)
            } else {
                Some(Duration::from_millis(2))
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
            self.now = Instant::now();
            for event in &events {
                match event.token() {
                    ORDER_ENTRY_LISTENER => self.accept(Channel::OrderEntry),
                    FUNDING_LISTENER => self.accept(Channel::Funding),
                    AUTHENTICATED => {}
                    Token(token) => {
                        if let Some(Some(session)) = self.sessions.get_mut(token - FIRST_SESSION)
                            && (event.is_readable() || event.is_read_closed() || event.is_error())
                        {
                            session.readable = true;
                        }
                    }
                }
            }
            self.complete_logins();
            if !self.control.stop_input.load(Ordering::Acquire) {
                self.read_sessions();
            }
            let collected = self.take_outputs();
            self.release_durable();
            self.write_sessions();
            if busy && collected == 0 && events.is_empty() {
                idle_passes = idle_passes.saturating_add(1);
                if idle_passes > 256 {
                    thread::yield_now();
                }
            } else {
                idle_passes = 0;
            }
            let now = self.now;
            if now.duration_since(self.last_tick) >= Duration::from_millis(50) {
                self.last_tick = now;
                self.tick(now);
            }
            if self.control.engine_done.load(Ordering::Acquire) {
                return self.finish();
            }
        }
    }

    fn any_readable(&self) -> bool {
        self.sessions.iter().flatten().any(|session| {
            session.readable
                && session.closing.is_none()
                && !matches!(session.state, State::Authenticating(_))
        })
    }

    fn accept(&mut self, channel: Channel) {
        loop {
            let listener = match channel {
                Channel::OrderEntry => &self.order_entry,
                Channel::Funding => &self.funding,
            };
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    return;
                }
            };
            let open = self.sessions.iter().flatten().count();
            if open >= self.config.sessions_max || self.control.stop_input.load(Ordering::Acquire) {
                self.stats.sessions_refused += 1;
                tracing::warn!(%peer, open, "session refused: sessions_max reached");
                drop(socket);
                continue;
            }
            let _ = socket.set_nodelay(true);
            let slot = match self.sessions.iter().position(Option::is_none) {
                Some(slot) => slot,
                None => {
                    self.sessions.push(None);
                    self.sessions.len() - 1
                }
            };
            if let Err(error) = self.poll.registry().register(
                &mut socket,
                Token(slot + FIRST_SESSION),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!(%peer, %error, "cannot register a session");
                continue;
            }
            let now = Instant::now();
            self.stats.sessions_accepted += 1;
            tracing::info!(%peer, ?channel, "connected");
            self.next_session_id += 1;
            self.sessions[slot] = Some(Session {
                id: self.next_session_id,
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
                tokens: f64::from(self.config.messages_burst),
                tokens_at: now,
                readable: true,
                closing: None,
                closing_since: None,
            });
        }
    }

    // -----------------------------------------------------------------
    // Input.
    // -----------------------------------------------------------------

    fn read_sessions(&mut self) {
        let mut pushed = false;
        if let Some(request) = self.stalled.take() {
            if let Err(request) = self.parts.input.try_push(request) {
                self.stalled = Some(request);
                return;
            }
            pushed = true;
        }
        if self.in_flight >= IN_FLIGHT_MAX {
            if pushed {
                self.parts.waker.wake();
            }
            return;
        }
        // Start from a different session each pass, so that when the ring
        // frees up little room the same sessions are not always first.
        let count = self.sessions.len();
        self.read_start = if count == 0 {
            0
        } else {
            (self.read_start + 1) % count
        };
        for offset in 0..count {
            let slot = (self.read_start + offset) % count;
            let Some(session) = self.sessions[slot].as_mut() else {
                continue;
            };
            if !session.readable || session.closing.is_some() {
                continue;
            }
            match self.read_session(slot) {
                Ok(any) => pushed |= any,
                Err(reason) => self.close(slot, reason),
            }
        }
        if pushed {
            self.parts.waker.wake();
        }
    }

    /// Reads what one socket has (up to a pass's worth) and handles its
    /// packets. `Err` closes the session with that reason.
    fn read_session(&mut self, slot: usize) -> Result<bool, String> {
        // The read buffer is the loop's, reused (not zeroed per call).
        let mut chunk = std::mem::take(&mut self.chunk);
        let result = self.read_session_into(slot, &mut chunk);
        self.chunk = chunk;
        result
    }

    fn read_session_into(&mut self, slot: usize, chunk: &mut [u8]) -> Result<bool, String> {
        let mut pushed = false;
        let mut read_total = 0;
        loop {
            // First the packets already buffered (left when the input ring
            // was full).
            pushed |= self.handle_packets(slot)?;
            let Some(session) = self.sessions[slot].as_mut() else {
                return Ok(pushed);
            };
            if session.closing.is_some() {
                return Ok(pushed);
            }
            if self.stalled.is_some() {
                // Back-pressure: leave the bytes in the socket.
                return Ok(pushed);
            }
            if read_total >= READ_BYTES_PER_PASS {
                return Ok(pushed);
            }
            let room = session.decoder.capacity() - session.decoder.buffered_len();
            let want = room.min(chunk.len());
            if want == 0 {
                return Ok(pushed);
            }
            match session.socket.read(&mut chunk[..want]) {
                Ok(0) => return Err("the client closed the connection".to_owned()),
                Ok(n) => {
                    read_total += n;
                    session.last_received = self.now;
                    let fed = session.decoder.feed(&chunk[..n]);
                    debug_assert_eq!(fed, n, "room was checked");
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    session.readable = false;
                    pushed |= self.handle_packets(slot)?;
                    return Ok(pushed);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(format!("read failed: {error}")),
            }
        }
    }

    /// Handles the buffered packets of a session while the input ring has
    /// room.
    fn handle_packets(&mut self, slot: usize) -> Result<bool, String> {
        let mut pushed = false;
        loop {
            let Some(session) = self.sessions[slot].as_mut() else {
                return Ok(pushed);
            };
            if session.closing.is_some()
                || self.stalled.is_some()
                || matches!(session.state, State::Authenticating(_))
            {
                return Ok(pushed);
            }
            let packet = match session.decoder.next_client_packet() {
                Ok(Some(packet)) => OwnedPacket::take(packet, &mut self.payload),
                Ok(None) => return Ok(pushed),
                Err(error) => {
                    self.stats.protocol_errors += 1;
                    return Err(frame_error_reason(&error));
                }
            };
            pushed |= self.handle_packet(slot, packet)?;
        }
    }

    fn handle_packet(&mut self, slot: usize, packet: OwnedPacket) -> Result<bool, String> {
        let session = self.sessions[slot].as_mut().expect("open session");
        match (&session.state, packet) {
            (State::AwaitingLogin, OwnedPacket::Login(login)) => {
                let request = AuthRequest {
                    session_id: session.id,
                    slot,
                    username: login.username,
                    password: login.password,
                };
                match self.authenticator.requests.try_send(request) {
                    Ok(()) => session.state = State::Authenticating(login),
                    Err(_) => {
                        tracing::warn!(peer = ?session.peer,
                            "login rejected: {AUTH_QUEUE_MAX} logins already wait for their check");
                        self.reject_login(slot, soupbin::RejectReason::NotAuthorized);
                    }
                }
                Ok(false)
            }
            (State::Authenticating(_), _) => {
                // `handle_packets` holds a session's packets while its login
                // is checked; reaching this is a bug, and costs the session.
                Err("a packet while the login was being checked".to_owned())
            }
            (State::AwaitingLogin, _) => {
                self.stats.protocol_errors += 1;
                Err("the first packet was not a Login Request".to_owned())
            }
            (State::LoggedIn { .. }, OwnedPacket::Login(_)) => {
                self.stats.protocol_errors += 1;
                Err("a second Login Request".to_owned())
            }
            (State::LoggedIn { .. }, OwnedPacket::Heartbeat | OwnedPacket::Debug) => Ok(false),
            (State::LoggedIn { .. }, OwnedPacket::Logout) => {
                Err("the client logged out".to_owned())
            }
            (State::LoggedIn { .. }, OwnedPacket::Data) => {
                if !take_token(session, &self.config, self.now) {
                    self.stats.rate_limited += 1;
                    return Err(format!(
                        "message rate above {} per second (burst {})",
                        self.config.messages_per_second, self.config.messages_burst
                    ));
                }
                let payload = std::mem::take(&mut self.payload);
                let result = self.submit(slot, &payload);
                self.payload = payload;
                result
            }
        }
    }

    /// Takes the authenticator's answers and finishes those logins.
    fn complete_logins(&mut self) {
        while let Ok(result) = self.authenticator.results.try_recv() {
            let Some(session) = self.sessions.get_mut(result.slot).and_then(Option::as_mut) else {
                continue;
            };
            if session.id != result.session_id {
                // The connection closed while its login was checked.
                continue;
            }
            let state = std::mem::replace(&mut session.state, State::AwaitingLogin);
            let State::Authenticating(request) = state else {
                session.state = state;
                continue;
            };
            // Packets sent after the Login Request wait in its buffer.
            session.readable = true;
            match result.outcome {
                Ok(index) => self.login(result.slot, &request, index),
                Err(why) => {
                    tracing::warn!(peer = ?session.peer, %why, "login rejected");
                    self.reject_login(result.slot, soupbin::RejectReason::NotAuthorized);
                }
            }
        }
    }

    /// Finishes a login whose password checked out (`index` in the login
    /// table): its rights on this port, the session name, one session per
    /// login and port, and where its stream resumes.
    fn login(&mut self, slot: usize, request: &LoginPacket, index: usize) {
        let session = self.sessions[slot].as_mut().expect("open session");
        let channel = session.channel;
        let entitlement = match channel {
            Channel::OrderEntry => Entitlement::Trade,
            Channel::Funding => Entitlement::Fund,
        };
        let Some(login) = self.parts.logins.iter().nth(index) else {
            self.reject_login(slot, soupbin::RejectReason::NotAuthorized);
            return;
        };
        if !login.may(entitlement) {
            tracing::warn!(peer = ?session.peer, login = %login.name, ?channel,
                "login rejected: no {} entitlement", entitlement.name());
            self.reject_login(slot, soupbin::RejectReason::NotAuthorized);
            return;
        }
        let name = login.name.clone();
        let account = login.account.map(AccountId);
        let day = self.parts.translator.day();
        let session_name = session_name(&self.parts.session_prefix, day);
        let requested = request.session;
        let key = (channel, index);
        let already = self.sessions.iter().enumerate().any(|(other, s)| {
            other != slot
                && s.as_ref().is_some_and(|s| {
                    s.closing.is_none()
                        && matches!(s.state, State::LoggedIn { key: k, .. } if k == key)
                })
        });
        if requested != [b' '; soupbin::SESSION_BYTES] && requested != session_name {
            tracing::warn!(login = %name, requested = %String::from_utf8_lossy(&requested),
                "login rejected: no such session");
            self.reject_login(slot, soupbin::RejectReason::SessionNotAvailable);
            return;
        }
        if already {
            tracing::warn!(login = %name, ?channel, "login rejected: already logged in");
            self.reject_login(slot, soupbin::RejectReason::SessionNotAvailable);
            return;
        }
        let stream_len = self.parts.translator.stream(key).map_or(0, |s| s.len());
        let next = match request.sequence {
            0 => stream_len + 1,
            n => n.min(stream_len + 1),
        };
        let session = self.sessions[slot].as_mut().expect("open session");
        tracing::info!(peer = ?session.peer, login = %name, ?channel, next, "logged in");
        session.state = State::LoggedIn {
            login: index,
            login_name: translate::login_field(&name),
            account,
            key,
            day,
            next,
        };
        encode_packet(
            &mut session.out,
            &ServerPacket::LoginAccepted {
                session: session_name,
                sequence: next,
            },
        );
    }

    fn reject_login(&mut self, slot: usize, reason: soupbin::RejectReason) {
        self.stats.logins_rejected += 1;
        let session = self.sessions[slot].as_mut().expect("open session");
        encode_packet(&mut session.out, &ServerPacket::LoginRejected { reason });
        session.closing = Some(format!("login rejected ({})", reason.code() as char));
        session.closing_since = Some(Instant::now());
    }

    /// One message from a logged-in session to the engine.
    fn submit(&mut self, slot: usize, payload: &[u8]) -> Result<bool, String> {
        let session = self.sessions[slot].as_ref().expect("open session");
        let State::LoggedIn {
            login,
            login_name,
            account,
            ..
        } = session.state
        else {
            unreachable!("checked by the caller");
        };
        let (command, origin) = match session.channel {
            Channel::OrderEntry => {
                let message = Inbound::decode(payload).map_err(|error| {
                    self.stats.protocol_errors += 1;
                    format!("malformed OUCH message: {error}")
                })?;
                let Some(account) = account else {
                    return Err("a trading login without an account".to_owned());
                };
                let (command, origin, refusal) = self
                    .parts
                    .translator
                    .order_entry(login, login_name, account, &message);
                if let Some(refusal) = refusal {
                    tracing::info!(login = %String::from_utf8_lossy(&login_name),
                        reason = refusal.reason, what = refusal.what, "order refused at the gateway");
                }
                (command, origin)
            }
            Channel::Funding => {
                let request = funding::Request::decode(payload).map_err(|error| {
                    self.stats.protocol_errors += 1;
                    format!("malformed funding message: {error}")
                })?;
                self.parts.translator.funding(login_name, &request)
            }
        };
        let origin = Origin::new(&origin.encode()).expect("an origin record fits");
        if let Err(request) = self.parts.input.try_push(Request { command, origin }) {
            // The ring is full: keep it, stop reading until it is taken.
            self.stalled = Some(request);
        }
        self.in_flight += 1;
        self.stats.commands += 1;
        Ok(true)
    }

    // -----------------------------------------------------------------
    // Output.
    // -----------------------------------------------------------------

    /// Takes the engine's outputs: while everything is durable and nothing
    /// waits in the queue, each command is translated as soon as its last
    /// event is taken (no copy through the queue); from the first output
    /// that is not durable yet, the rest go to the queue, in order, for
    /// [`release_durable`](Self::release_durable). Returns how many were
    /// taken.
    fn take_outputs(&mut self) -> usize {
        let mut taken = 0;
        let mut durable = None;
        while self.pending.is_empty() && taken < 4096 {
            let Some(output) = self.parts.output.try_pop() else {
                return taken;
            };
            taken += 1;
            match (output, self.assembling.take()) {
                (Output::Event(event), Some(mut assembling)) => {
                    self.events.push(event);
                    assembling.events_left -= 1;
                    self.assembling = Some(assembling);
                }
                (
                    Output::Command {
                        header,
                        command,
                        origin,
                        status,
                        events,
                    },
                    None,
                ) if header.sequence
                    <= *durable.get_or_insert_with(|| self.parts.durable.sequence()) =>
                {
                    self.events.clear();
                    self.assembling = Some(Assembling {
                        header,
                        command,
                        origin,
                        status,
                        events_left: events,
                    });
                }
                (output, None) => {
                    // Not durable yet, or the engine's failure: the queue
                    // takes over from here.
                    self.pending.push(output);
                }
                (output, Some(assembling)) => {
                    // The engine publishes a command's events right after
                    // it; anything else is a bug there.
                    debug_assert!(false, "expected an event, got {output:?}");
                    self.assembling = Some(assembling);
                }
            }
            if let Some(assembling) = self.assembling.take_if(|a| a.events_left == 0) {
                self.release(
                    assembling.header,
                    &assembling.command,
                    assembling.origin,
                    assembling.status,
                );
            }
        }
        if self.assembling.is_some() {
            // A command's events are still coming: they must follow it, so
            // nothing goes to the queue before they are in.
            return taken;
        }
        taken + self.collect_outputs()
    }

    /// Moves the engine's outputs to the queue; returns how many.
    fn collect_outputs(&mut self) -> usize {
        self.pending.take_from(&mut self.parts.output, 4096)
    }

    /// Translates every complete, durable command at the front of the
    /// queue into the streams.
    fn release_durable(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let durable = self.parts.durable.sequence();
        let mut events = std::mem::take(&mut self.events);
        while let Some(released) = self.pending.pop_durable(durable, &mut events) {
            match released {
                Released::Failed => {
                    if !self.failed {
                        tracing::error!(
                            "the engine stopped: the journal refused a command; no more \
                             commands are accepted"
                        );
                    }
                    self.failed = true;
                    self.control.stop_input.store(true, Ordering::Release);
                }
                Released::Command {
                    header,
                    command,
                    origin,
                    status,
                } => {
                    self.events = std::mem::take(&mut events);
                    self.release(header, &command, origin, status);
                    events = std::mem::take(&mut self.events);
                }
            }
        }
        self.events = events;
    }

    fn release(
        &mut self,
        header: CommandHeader,
        command: &Command,
        origin: Origin,
        status: Status,
    ) {
        if OriginRecordProbe::is_session(origin.as_bytes()) {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        self.touched.clear();
        let events = std::mem::take(&mut self.events);
        self.parts.translator.applied(
            header,
            command,
            origin.as_bytes(),
            status,
            &events,
            &mut self.touched,
        );
        self.events = events;
        if self.parts.translator.take_day_ended() {
            self.end_of_day();
        }
    }

    /// The trading day ended: every session gets what is left of its
    /// stream, then End of Session; new logins start the next day's
    /// session.
    fn end_of_day(&mut self) {
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].as_mut() else {
                continue;
            };
            if let State::LoggedIn {
                key, ref mut next, ..
            } = session.state
            {
                if let Some(stream) = self.parts.translator.stream(key) {
                    while let Some(message) = stream.message(*next) {
                        encode_packet(&mut session.out, &ServerPacket::SequencedData(message));
                        *next += 1;
                    }
                }
                encode_packet(&mut session.out, &ServerPacket::EndOfSession);
                session.closing = Some("end of the trading day".to_owned());
                session.closing_since = Some(Instant::now());
            }
        }
        self.parts.translator.clear_streams();
    }

    fn write_sessions(&mut self) {
        let outbound_max = self.config.outbound_buffer_bytes;
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].as_mut() else {
                continue;
            };
            // Top up the socket buffer from the stream.
            if session.closing.is_none()
                && let State::LoggedIn {
                    key,
                    ref mut next,
                    day,
                    ..
                } = session.state
                && day == self.parts.translator.day()
                && let Some(stream) = self.parts.translator.stream(key)
            {
                let unsent = session.out.len() - session.out_sent;
                let mut budget = WRITE_CHUNK.saturating_sub(unsent);
                while budget > 0 {
                    let Some(message) = stream.message(*next) else {
                        break;
                    };
                    encode_packet(&mut session.out, &ServerPacket::SequencedData(message));
                    budget = budget.saturating_sub(message.len() + 3);
                    *next += 1;
                }
            }
            match flush(session, self.now) {
                Ok(()) => {}
                Err(error) => {
                    let reason = format!("write failed: {error}");
                    self.close(slot, reason);
                    continue;
                }
            }
            let session = self.sessions[slot].as_mut().expect("open session");
            if session.closing.is_some() && session.out_sent == session.out.len() {
                let reason = session.closing.clone().unwrap_or_default();
                self.close(slot, reason);
                continue;
            }
            // A client that does not read: its backlog grows while its
            // socket takes nothing.
            let backlog = self.backlog(slot);
            let session = self.sessions[slot].as_ref().expect("open session");
            if backlog > outbound_max && session.last_progress.elapsed() > self.config.heartbeat {
                self.stats.slow_consumers += 1;
                self.close(
                    slot,
                    format!("slow consumer: {backlog} bytes unsent and the client is not reading"),
                );
            }
        }
    }

    /// Bytes a session has yet to send: its socket buffer plus its stream
    /// from its next message.
    fn backlog(&self, slot: usize) -> usize {
        let Some(session) = self.sessions[slot].as_ref() else {
            return 0;
        };
        let buffered = session.out.len() - session.out_sent;
        let stream = match session.state {
            State::LoggedIn { key, next, .. } => self
                .parts
                .translator
                .stream(key)
                .map_or(0, |stream| stream.bytes_from(next)),
            State::AwaitingLogin | State::Authenticating(_) => 0,
        };
        buffered + stream
    }

    /// Heartbeats and timeouts.
    fn tick(&mut self, now: Instant) {
        // While the loop is not reading (back-pressure, stopping), a
        // client's silence is the loop's doing, not the client's.
        let reading = self.stalled.is_none()
            && self.in_flight < IN_FLIGHT_MAX
            && !self.control.stop_input.load(Ordering::Acquire);
        if !reading {
            for session in self.sessions.iter_mut().flatten() {
                session.last_received = now;
            }
        }
        for slot in 0..self.sessions.len() {
            let Some(session) = self.sessions[slot].as_mut() else {
                continue;
            };
            if let Some(since) = session.closing_since {
                if now.duration_since(since) > Duration::from_secs(1) {
                    let reason = session.closing.clone().unwrap_or_default();
                    self.close(slot, format!("{reason} (not flushed)"));
                }
                continue;
            }
            if now.duration_since(session.last_received) > self.config.client_timeout {
                let reason = match session.state {
                    State::AwaitingLogin | State::Authenticating(_) => "no Login Request in time",
                    State::LoggedIn { .. } => "the client sent nothing (heartbeat timeout)",
                };
                self.close(slot, reason.to_owned());
                continue;
            }
            if matches!(session.state, State::LoggedIn { .. })
                && now.duration_since(session.last_sent) >= self.config.heartbeat
                && session.out_sent == session.out.len()
            {
                encode_packet(&mut session.out, &ServerPacket::ServerHeartbeat);
            }
        }
    }

    fn close(&mut self, slot: usize, reason: String) {
        let Some(mut session) = self.sessions[slot].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut session.socket);
        let login = match session.state {
            State::LoggedIn { login_name, .. } => {
                String::from_utf8_lossy(&login_name).trim().to_owned()
            }
            State::AwaitingLogin | State::Authenticating(_) => String::new(),
        };
        tracing::info!(peer = ?session.peer, login = %login, reason = %reason, "session closed");
    }

    /// The engine has stopped and the journal is closed (durable): release
    /// everything, flush for at most a second, close.
    fn finish(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            self.now = Instant::now();
            self.take_outputs();
            self.release_durable();
            self.write_sessions();
            let unsent = self
                .sessions
                .iter()
                .flatten()
                .any(|session| session.out_sent < session.out.len())
                || (0..self.sessions.len()).any(|slot| self.backlog(slot) > 0)
                || !self.pending.is_empty()
                || self.assembling.is_some()
                || !self.parts.output.is_empty();
            if !unsent || Instant::now() > deadline {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        for slot in 0..self.sessions.len() {
            self.close(slot, "the server is shutting down".to_owned());
        }
        Ok(())
    }
}

/// Writes a session's buffer to its socket.
fn flush(session: &mut Session, now: Instant) -> io::Result<()> {
    if session.out_sent == session.out.len() {
        session.last_progress = now;
        return Ok(());
    }
    loop {
        match session.socket.write(&session.out[session.out_sent..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
            Ok(n) => {
                session.out_sent += n;
                session.last_sent = now;
                session.last_progress = now;
                if session.out_sent == session.out.len() {
                    session.out.clear();
                    session.out_sent = 0;
                    return Ok(());
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if session.out_sent > session.out.capacity() / 2 {
                    session.out.drain(..session.out_sent);
                    session.out_sent = 0;
                }
                return Ok(());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn take_token(session: &mut Session, config: &ServerConfig, now: Instant) -> bool {
    let elapsed = now.duration_since(session.tokens_at).as_secs_f64();
    session.tokens_at = now;
    session.tokens = (session.tokens + elapsed * f64::from(config.messages_per_second))
        .min(f64::from(config.messages_burst.max(1)));
    if session.tokens >= 1.0 {
        session.tokens -= 1.0;
        true
    } else {
        false
    }
}

fn encode_packet(out: &mut Vec<u8>, packet: &ServerPacket<'_>) {
    // Invariant: every payload comes from a stream message or a fixed
    // packet, all far below the SoupBinTCP maximum.
    packet
        .encode(out)
        .expect("a packet within the SoupBinTCP limit");
}

fn frame_error_reason(error: &FrameError) -> String {
    format!("malformed SoupBinTCP frame: {error}")
}

/// A client packet taken out of the decoder's buffer (a data payload is
/// copied to the loop's reused payload buffer: no allocation per message).
#[derive(Debug)]
enum OwnedPacket {
    Login(LoginPacket),
    Data,
    Heartbeat,
    Logout,
    Debug,
}

#[derive(Debug)]
struct LoginPacket {
    username: [u8; soupbin::USERNAME_BYTES],
    password: [u8; soupbin::PASSWORD_BYTES],
    session: [u8; soupbin::SESSION_BYTES],
    sequence: u64,
}

impl OwnedPacket {
    fn take(packet: ClientPacket<'_>, payload_buffer: &mut Vec<u8>) -> OwnedPacket {
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

/// Whether an origin came from a session (counts against `in_flight`).
struct OriginRecordProbe;

impl OriginRecordProbe {
    fn is_session(origin: &[u8]) -> bool {
        translate::OriginRecord::decode(origin).is_some()
    }
}

/// A Login Request for the authenticator.
#[derive(Debug)]
struct AuthRequest {
    session_id: u64,
    slot: usize,
    username: [u8; soupbin::USERNAME_BYTES],
    password: [u8; soupbin::PASSWORD_BYTES],
}

/// Its answer: the login's index in the table, or why not.
#[derive(Debug)]
struct AuthResult {
    session_id: u64,
    slot: usize,
    outcome: Result<usize, String>,
}

/// Checks passwords on a thread of its own: an Argon2id check takes
/// milliseconds, which the event loop must not spend while sessions trade.
/// It wakes the loop through a mio waker when an answer is ready.
#[derive(Debug)]
struct Authenticator {
    requests: std::sync::mpsc::SyncSender<AuthRequest>,
    results: std::sync::mpsc::Receiver<AuthResult>,
}

impl Authenticator {
    fn spawn(logins: Logins, waker: Arc<mio::Waker>) -> io::Result<Authenticator> {
        let (requests, requests_in) = std::sync::mpsc::sync_channel::<AuthRequest>(AUTH_QUEUE_MAX);
        let (results_out, results) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name("authenticator".to_owned())
            .spawn(move || {
                // Ends when the loop drops its sender.
                while let Ok(request) = requests_in.recv() {
                    let outcome = logins
                        .authenticate(&request.username, &request.password)
                        .map_err(|error| error.to_string())
                        .and_then(|login| {
                            logins
                                .iter()
                                .position(|candidate| std::ptr::eq(candidate, login))
                                .ok_or_else(|| "not in the login table".to_owned())
                        });
                    let result = AuthResult {
                        session_id: request.session_id,
                        slot: request.slot,
                        outcome,
                    };
                    if results_out.send(result).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Authenticator { requests, results })
    }
}
