//! The order-entry and funding server: one mio event loop on one thread,
//! serving SoupBinTCP 4.0 sessions on two ports, feeding the engine's input
//! ring and answering from its output ring.
//!
//! ```text
//!  sockets ─▶ session (framing, rate limit) ─▶ inbound adapter ─▶ submit path ─▶ [input ring] ─▶ engine
//!  sockets ◀─ session pulls ◀─ SessionStreams ◀─ outbound proxy ◀─ durability gate ◀─ [output ring]
//! ```
//!
//! The parts, one concern each:
//! - `admission`: listeners, the authenticator thread, the login rules.
//! - `session`: one connection's socket, framing, rate limit, heartbeats.
//! - [`inbound`]: the adapters, OUCH / funding message → engine command
//!   and [`origin`] record (or a refusal).
//! - `submit`: the input ring with back-pressure.
//! - `durability`: outputs wait until their command is durable.
//! - [`outbound`]: the proxy, engine outcome → messages in the
//!   [`SessionStreams`] (`streams`), read by the sessions.
//! - `directory`: logins, the instrument catalogue and the trading day,
//!   read by both directions.
//! - `agent`: the loop as an [`engine::agent::Agent`].
//!
//! Behaviour:
//! - **Durability.** No message leaves before its cause is durable.
//! - **Streams.** Each login has a stream of sequenced messages per port,
//!   kept for the trading day in a message store on disk (a fixed memory
//!   budget each; completed from the journal at start-up). A
//!   client logging in with a sequence number gets every message from it
//!   on, after a restart too.
//! - **Protection.** A malformed frame or message ends its session (logged
//!   once); other sessions and the engine are untouched. Each session has a
//!   token-bucket rate limit (past it: disconnected), the number of sessions
//!   is capped, and a session whose unsent backlog passes the outbound limit
//!   while its socket takes nothing is disconnected (it may log in again
//!   and resume). When the engine's input ring is full, the loop stops
//!   reading sockets (back-pressure to TCP).
//! - **Threads.** The loop is an agent ([`GatewayAgent`], see `agent`):
//!   its passes never block; it keeps its runner polling while commands
//!   are in flight, and lets it sleep in the loop's `epoll` (at most 2 ms
//!   under [`Server::spawn`]) when there is nothing to do.

mod admission;
mod agent;
mod directory;
pub mod inbound;
pub mod origin;
pub mod outbound;
pub mod reasons;
mod session;
mod shadow;
mod streams;
mod submit;
#[cfg(test)]
mod test_support;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::{Duration, Instant};

use engine::agent::{
    AgentError, AgentHandle, AgentRunner, EpollSleeper, IdleStrategy, RunnerConfig,
};
use engine::runner::{Output, Request, Waker};
use engine::{Consumer, Producer};
use journal::DurablePosition;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use wire::soupbin::{FrameError, RejectReason, ServerPacket};

use crate::auth::Logins;
use crate::funding;
use crate::ouch::Inbound;
use admission::{Accepted, Admission, Authenticator, FIRST_SESSION, awaiting_answer};
use engine::gate::{DurabilityGate, Release, ReleaseTee, TeeBatch};
use session::{OwnedPacket, ReadOutcome, Session, Sessions, State};
use submit::SubmitPath;

pub use agent::{GatewayAgent, GatewayControl};
pub use directory::{Directory, DirectoryLogin, DirectoryState};
pub use origin::{Channel, OriginError, OriginRecord};
pub use outbound::{AppliedCommand, OutboundProxy, Routed};
pub use reasons::Refusal;
pub use shadow::{GatewayShadow, GatewayState};
pub use streams::{
    SessionStreams, StreamCounts, StreamError, StreamKey, StreamLength, StreamSink, StreamsConfig,
    StreamsState,
};

/// Bytes read from one socket per pass, for fairness between sessions.
const READ_BYTES_PER_PASS: usize = 64 * 1024;
/// Heartbeats and timeouts are checked this often.
const TICK: Duration = Duration::from_millis(50);
/// The longest the loop blocks in `epoll` when there is nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(2);

const ORDER_ENTRY_LISTENER: Token = Token(0);
const FUNDING_LISTENER: Token = Token(1);
/// The authenticator's wake-up of the loop.
const AUTHENTICATED: Token = Token(usize::MAX);

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

    /// Starts the loop on its own thread: the [`GatewayAgent`] alone on a
    /// runner that sleeps in the loop's `epoll` for at most 2 ms when there
    /// is nothing to do.
    pub fn spawn(self, parts: ServerParts) -> io::Result<ServerHandle> {
        let core = self.config.core;
        let (agent, control) = self.into_agent(parts)?;
        let sleeper = EpollSleeper::new(&[agent.wake_fd_raw()])?;
        let runner = AgentRunner::new(
            agent,
            RunnerConfig {
                core,
                idle: IdleStrategy::Park { park: IDLE_POLL },
                ..RunnerConfig::default()
            },
        )
        .with_sleeper(Box::new(sleeper))
        .spawn()?;
        Ok(ServerHandle { control, runner })
    }

    /// The loop as an agent, to run on a runner with others (sleeping in
    /// an `epoll` over [`Agent::wake_fd`](engine::agent::Agent::wake_fd)),
    /// and the control that stops and finishes it. Starts the
    /// authenticator thread.
    pub fn into_agent(self, parts: ServerParts) -> io::Result<(GatewayAgent, GatewayControl)> {
        let shared = Arc::new(agent::Shared::default());
        let (event_loop, waker) = EventLoop::new(self, parts, Arc::clone(&shared))?;
        let control = GatewayControl {
            shared: Arc::clone(&shared),
            waker,
        };
        Ok((GatewayAgent::new(event_loop, shared), control))
    }
}

/// What the loop works with besides its sockets.
#[derive(Debug)]
pub struct ServerParts {
    pub logins: Logins,
    /// Logins, instruments and the trading day (rebuilt from the journal).
    pub directory: Directory,
    /// The day's streams so far (on disk, completed from the journal).
    pub streams: SessionStreams,
    pub input: Producer<Request>,
    pub output: Consumer<Output>,
    pub waker: Waker,
    pub durable: DurablePosition,
    /// The SoupBinTCP session name of the current trading day's first
    /// part (see [`wire::trading_day::session_name`]).
    pub session_prefix: String,
    /// Where to hand a copy of every command released, for market data
    /// running on this loop's thread (`None`: it has a ring of its own).
    pub tee: Option<ReleaseTee>,
}

#[derive(Debug, Default)]
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

/// A running server: its agent on a thread of its own.
#[derive(Debug)]
pub struct ServerHandle {
    control: GatewayControl,
    runner: AgentHandle<GatewayAgent>,
}

impl ServerHandle {
    /// Stops taking messages from clients (sessions stay open to receive
    /// replies). Then stop the engine, close the journal and [`finish`].
    ///
    /// [`finish`]: ServerHandle::finish
    pub fn stop_input(&self) {
        self.control.stop_input();
    }

    pub fn is_finished(&self) -> bool {
        self.runner.is_finished()
    }

    /// After the engine has stopped and the journal is durable: sends what
    /// is left, closes every session and ends the loop.
    pub fn finish(self) -> io::Result<ServerStats> {
        self.control.engine_done();
        let (agent, result) = self.runner.join();
        match result {
            Ok(()) | Err(AgentError::Finished) => Ok(agent.stats()),
            Err(AgentError::Failed(error)) => Err(error),
        }
    }
}

/// Reused buffers of the input side.
#[derive(Debug)]
struct Buffers {
    /// The payload of the packet being handled.
    payload: Vec<u8>,
    /// Where sockets are read into (reused, not zeroed per read).
    chunk: Vec<u8>,
}

/// The loop's clock, read once per pass.
#[derive(Debug)]
struct Clock {
    now: Instant,
    last_tick: Instant,
    /// The session read first in this pass (rotates for fairness).
    read_start: usize,
}

/// The loop: composes the parts and moves work between them.
#[derive(Debug)]
struct EventLoop {
    poll: Poll,
    config: ServerConfig,
    shared: Arc<agent::Shared>,
    sessions: Sessions,
    admission: Admission,
    submit: SubmitPath,
    gate: DurabilityGate,
    /// Market data's share of what the gate releases, and the batch of
    /// this pass.
    tee: Option<(ReleaseTee, TeeBatch)>,
    proxy: OutboundProxy,
    directory: Directory,
    streams: SessionStreams,
    buffers: Buffers,
    clock: Clock,
    stats: ServerStats,
    failed: bool,
    /// A failed write of the streams' files was logged.
    stream_flush_failed: bool,
}

impl EventLoop {
    /// The loop and the waker of its `epoll`.
    fn new(
        server: Server,
        parts: ServerParts,
        shared: Arc<agent::Shared>,
    ) -> io::Result<(EventLoop, Arc<mio::Waker>)> {
        let poll = Poll::new()?;
        let Server {
            mut order_entry,
            mut funding,
            config,
        } = server;
        let registry = poll.registry();
        registry.register(&mut order_entry, ORDER_ENTRY_LISTENER, Interest::READABLE)?;
        registry.register(&mut funding, FUNDING_LISTENER, Interest::READABLE)?;
        let waker = Arc::new(mio::Waker::new(registry, AUTHENTICATED)?);
        let authenticator = Authenticator::spawn(parts.logins.clone(), Arc::clone(&waker))?;
        let admission = Admission::new(
            order_entry,
            funding,
            authenticator,
            parts.logins,
            parts.session_prefix,
        );
        let now = Instant::now();
        let event_loop = EventLoop {
            poll,
            config,
            shared,
            sessions: Sessions::default(),
            admission,
            submit: SubmitPath::new(parts.input, parts.waker),
            gate: DurabilityGate::new(parts.output, parts.durable),
            tee: parts.tee.map(|tee| (tee, TeeBatch::default())),
            proxy: OutboundProxy::new(),
            directory: parts.directory,
            streams: parts.streams,
            buffers: Buffers {
                payload: Vec::with_capacity(usize::from(session::PACKET_LENGTH_MAX)),
                chunk: vec![0; session::INPUT_BUFFER_BYTES],
            },
            clock: Clock {
                now,
                last_tick: now,
                read_start: 0,
            },
            stats: ServerStats::default(),
            failed: false,
            stream_flush_failed: false,
        };
        Ok((event_loop, waker))
    }

    /// Whether work is under way that the loop must poll for without
    /// blocking: commands in flight, outputs waiting for durability, or a
    /// session with bytes left to read.
    fn is_busy(&self) -> bool {
        self.submit.in_flight() > 0
            || self.gate.is_waiting()
            || self.sessions.iter().any(Session::wants_read)
    }

    /// One pass: poll (at most `timeout`), accept, read, submit, release,
    /// write, and now and then heartbeats. Returns the readiness events
    /// plus the engine outputs taken.
    fn pass(&mut self, events: &mut Events, timeout: Duration) -> io::Result<usize> {
        match self.poll.poll(events, Some(timeout)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        self.clock.now = Instant::now();
        let mut work = 0;
        for event in events.iter() {
            work += 1;
            match event.token() {
                ORDER_ENTRY_LISTENER => self.accept(Channel::OrderEntry),
                FUNDING_LISTENER => self.accept(Channel::Funding),
                AUTHENTICATED => {}
                Token(token) => {
                    if let Some(session) = self.sessions.get_mut(token - FIRST_SESSION)
                        && (event.is_readable() || event.is_read_closed() || event.is_error())
                    {
                        session.readable = true;
                    }
                }
            }
        }
        self.complete_logins();
        if !self.stopping_input() {
            self.read_sessions();
        }
        work += self.take_outputs();
        self.release_durable();
        self.write_sessions();
        let now = self.clock.now;
        if now.duration_since(self.clock.last_tick) >= TICK {
            self.clock.last_tick = now;
            self.tick(now);
        }
        Ok(work)
    }

    fn stopping_input(&self) -> bool {
        self.shared.control.stop_input.load(Ordering::Acquire)
    }

    fn accept(&mut self, channel: Channel) {
        loop {
            let open =
                self.sessions.open_count() < self.config.sessions_max && !self.stopping_input();
            let registry = self.poll.registry();
            let burst = self.config.messages_burst;
            match self
                .admission
                .accept_one(channel, &mut self.sessions, registry, open, burst)
            {
                Accepted::Opened => self.stats.sessions_accepted += 1,
                Accepted::Refused => self.stats.sessions_refused += 1,
                Accepted::Failed => {}
                Accepted::Done => return,
            }
        }
    }

    fn close(&mut self, slot: usize, reason: String) {
        let Some(mut session) = self.sessions.take(slot) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut session.socket);
        let login = session.logged_in().map_or(String::new(), |logged_in| {
            String::from_utf8_lossy(&logged_in.login_name)
                .trim()
                .to_owned()
        });
        tracing::info!(peer = ?session.peer, login = %login, reason = %reason, "session closed");
    }

    // -----------------------------------------------------------------
    // Logins.
    // -----------------------------------------------------------------

    /// Takes the authenticator's answers and finishes those logins.
    fn complete_logins(&mut self) {
        while let Some(result) = self.admission.authenticator.result() {
            let Some(session) = self.sessions.get_mut(result.slot) else {
                continue;
            };
            let Some(request) = awaiting_answer(session, result.session_id) else {
                continue;
            };
            let admitted = match result.outcome {
                Ok(index) => self.admission.admit(
                    &self.sessions,
                    &self.streams,
                    result.slot,
                    &request,
                    index,
                    self.directory.day(),
                ),
                Err(why) => {
                    tracing::warn!(peer = ?session.peer, %why, "login rejected");
                    Err(RejectReason::NotAuthorized)
                }
            };
            match admitted {
                Ok((logged_in, accepted)) => {
                    let session = self.sessions.get_mut(result.slot).expect("open session");
                    session.state = State::LoggedIn(logged_in);
                    session.send(&accepted);
                }
                Err(reason) => self.reject_login(result.slot, reason),
            }
        }
    }

    fn reject_login(&mut self, slot: usize, reason: RejectReason) {
        self.stats.logins_rejected += 1;
        let session = self.sessions.get_mut(slot).expect("open session");
        session.send(&ServerPacket::LoginRejected { reason });
        let why = format!("login rejected ({})", reason.code() as char);
        session.close_after_flush(why, Instant::now());
    }

    // -----------------------------------------------------------------
    // Input.
    // -----------------------------------------------------------------

    fn read_sessions(&mut self) {
        if !self.submit.retry_stalled() {
            return;
        }
        if self.submit.accepts() {
            // Start from a different session each pass, so that when the
            // ring frees up little room the same sessions are not always
            // first.
            let count = self.sessions.slot_count();
            self.clock.read_start = if count == 0 {
                0
            } else {
                (self.clock.read_start + 1) % count
            };
            for offset in 0..count {
                let slot = (self.clock.read_start + offset) % count;
                let Some(session) = self.sessions.get(slot) else {
                    continue;
                };
                if !session.readable || session.closing.is_some() {
                    continue;
                }
                if let Err(reason) = self.read_session(slot) {
                    self.close(slot, reason);
                }
            }
        }
        self.submit.wake_engine();
    }

    /// Reads what one socket has (up to a pass's worth) and handles its
    /// packets. `Err` closes the session with that reason.
    fn read_session(&mut self, slot: usize) -> Result<(), String> {
        let mut chunk = std::mem::take(&mut self.buffers.chunk);
        let result = self.read_session_into(slot, &mut chunk);
        self.buffers.chunk = chunk;
        result
    }

    fn read_session_into(&mut self, slot: usize, chunk: &mut [u8]) -> Result<(), String> {
        let mut read_total = 0;
        loop {
            // First the packets already buffered (left when the input ring
            // was full).
            self.handle_packets(slot)?;
            let Some(session) = self.sessions.get_mut(slot) else {
                return Ok(());
            };
            if session.closing.is_some() || self.submit.is_stalled() {
                // Back-pressure: leave the bytes in the socket.
                return Ok(());
            }
            if read_total >= READ_BYTES_PER_PASS {
                return Ok(());
            }
            match session.read(chunk, self.clock.now)? {
                (ReadOutcome::Read, bytes) => read_total += bytes,
                (ReadOutcome::Drained, _) => return self.handle_packets(slot),
                (ReadOutcome::Full, _) => return Ok(()),
            }
        }
    }

    /// Handles the buffered packets of a session while the input ring has
    /// room.
    fn handle_packets(&mut self, slot: usize) -> Result<(), String> {
        loop {
            let Some(session) = self.sessions.get_mut(slot) else {
                return Ok(());
            };
            if session.closing.is_some()
                || self.submit.is_stalled()
                || matches!(session.state, State::Authenticating(_))
            {
                return Ok(());
            }
            let packet = match session.decoder.next_client_packet() {
                Ok(Some(packet)) => OwnedPacket::take(packet, &mut self.buffers.payload),
                Ok(None) => return Ok(()),
                Err(error) => {
                    self.stats.protocol_errors += 1;
                    return Err(frame_error_reason(&error));
                }
            };
            self.handle_packet(slot, packet)?;
        }
    }

    fn handle_packet(&mut self, slot: usize, packet: OwnedPacket) -> Result<(), String> {
        let session = self.sessions.get_mut(slot).expect("open session");
        match (&session.state, packet) {
            (State::AwaitingLogin, OwnedPacket::Login(login)) => {
                if self.admission.authenticator.submit(session, slot, &login) {
                    session.state = State::Authenticating(login);
                } else {
                    tracing::warn!(peer = ?session.peer, "login rejected: {} logins already \
                        wait for their check", admission::AUTH_QUEUE_MAX);
                    self.reject_login(slot, RejectReason::NotAuthorized);
                }
                Ok(())
            }
            // `handle_packets` holds a session's packets while its login is
            // checked; reaching this is a bug, and costs the session.
            (State::Authenticating(_), _) => {
                Err("a packet while the login was being checked".to_owned())
            }
            (State::AwaitingLogin, _) => {
                self.stats.protocol_errors += 1;
                Err("the first packet was not a Login Request".to_owned())
            }
            (State::LoggedIn(_), OwnedPacket::Login(_)) => {
                self.stats.protocol_errors += 1;
                Err("a second Login Request".to_owned())
            }
            (State::LoggedIn(_), OwnedPacket::Heartbeat | OwnedPacket::Debug) => Ok(()),
            (State::LoggedIn(_), OwnedPacket::Logout) => Err("the client logged out".to_owned()),
            (State::LoggedIn(_), OwnedPacket::Data) => {
                let (rate, burst) = (self.config.messages_per_second, self.config.messages_burst);
                if !session.rate.take(rate, burst, self.clock.now) {
                    self.stats.rate_limited += 1;
                    return Err(format!(
                        "message rate above {rate} per second (burst {burst})"
                    ));
                }
                self.submit_payload(slot)
            }
        }
    }

    /// One message from a logged-in session to the engine.
    fn submit_payload(&mut self, slot: usize) -> Result<(), String> {
        let session = self.sessions.get(slot).expect("open session");
        let logged_in = *session.logged_in().expect("checked by the caller");
        let payload = &self.buffers.payload;
        let (command, origin) = match session.channel {
            Channel::OrderEntry => {
                let message = match Inbound::decode(payload) {
                    Ok(message) => message,
                    Err(error) => {
                        self.stats.protocol_errors += 1;
                        return Err(format!("malformed OUCH message: {error}"));
                    }
                };
                let Some(account) = logged_in.account else {
                    return Err("a trading login without an account".to_owned());
                };
                let admitted = inbound::order_entry(
                    &self.directory,
                    logged_in.login,
                    logged_in.login_name,
                    account,
                    &message,
                );
                if let Some(refusal) = admitted.refusal {
                    tracing::info!(login = %String::from_utf8_lossy(&logged_in.login_name),
                        reason = refusal.reason, what = refusal.what, "order refused at the gateway");
                }
                (admitted.command, admitted.origin)
            }
            Channel::Funding => match funding::Request::decode(payload) {
                Ok(request) => inbound::funding(logged_in.login_name, &request),
                Err(error) => {
                    self.stats.protocol_errors += 1;
                    return Err(format!("malformed funding message: {error}"));
                }
            },
        };
        self.submit.submit(command, &origin);
        self.stats.commands += 1;
        Ok(())
    }

    // -----------------------------------------------------------------
    // Output.
    // -----------------------------------------------------------------

    fn router(&mut self) -> (&mut DurabilityGate, Router<'_>) {
        let router = Router {
            tee: self.tee.as_mut().map(|(_, batch)| batch),
            submit: &mut self.submit,
            proxy: &mut self.proxy,
            directory: &mut self.directory,
            streams: &mut self.streams,
            sessions: &mut self.sessions,
            control: &self.shared.control,
            failed: &mut self.failed,
            now: self.clock.now,
        };
        (&mut self.gate, router)
    }

    /// Takes the engine's outputs; returns how many.
    fn take_outputs(&mut self) -> usize {
        let (gate, mut router) = self.router();
        let taken = gate.take(&mut |release| router.route(release));
        self.send_tee();
        taken
    }

    fn release_durable(&mut self) {
        let (gate, mut router) = self.router();
        gate.release_durable(&mut |release| router.route(release));
        self.send_tee();
    }

    /// Hands market data what this pass released.
    fn send_tee(&mut self) {
        if let Some((tee, batch)) = self.tee.as_mut() {
            tee.send(batch);
        }
    }

    /// Tells market data that nothing more will come (the loop ends).
    fn close_tee(&mut self) {
        self.send_tee();
        if let Some((tee, _)) = self.tee.as_ref() {
            tee.close();
        }
    }

    fn write_sessions(&mut self) {
        for slot in 0..self.sessions.slot_count() {
            if let Some(reason) = self.write_session(slot) {
                self.close(slot, reason);
            }
        }
    }

    /// Tops up and flushes one session; `Some(reason)` to close it.
    fn write_session(&mut self, slot: usize) -> Option<String> {
        let session = self.sessions.get_mut(slot)?;
        session.fill_from(&self.streams, self.directory.day());
        if let Err(error) = session.flush(self.clock.now) {
            return Some(format!("write failed: {error}"));
        }
        if session.closing.is_some() && session.flushed() {
            return Some(session.closing.clone().unwrap_or_default());
        }
        // A client that does not read: its backlog grows while its socket
        // takes nothing.
        let backlog = session.backlog(&self.streams);
        if session.is_slow_consumer(
            backlog,
            self.config.outbound_buffer_bytes,
            self.config.heartbeat,
        ) {
            self.stats.slow_consumers += 1;
            return Some(format!(
                "slow consumer: {backlog} bytes unsent and the client is not reading"
            ));
        }
        None
    }

    /// Heartbeats and timeouts.
    fn tick(&mut self, now: Instant) {
        if let Err(error) = self.streams.flush()
            && !self.stream_flush_failed
        {
            // Replays read the store's cache; a restart regenerates what
            // the files lack from the journal.
            self.stream_flush_failed = true;
            tracing::error!(%error, "writing the session streams to their files failed");
        }
        // While the loop is not reading (back-pressure, stopping), a
        // client's silence is the loop's doing, not the client's.
        if !self.submit.accepts() || self.stopping_input() {
            for session in self.sessions.iter_mut() {
                session.last_received = now;
            }
        }
        let (heartbeat, timeout) = (self.config.heartbeat, self.config.client_timeout);
        for slot in 0..self.sessions.slot_count() {
            let Some(session) = self.sessions.get_mut(slot) else {
                continue;
            };
            if let Some(reason) = session.tick(now, heartbeat, timeout) {
                self.close(slot, reason);
            }
        }
    }

    /// Whether anything is left to send: bytes in a socket buffer, a
    /// stream not yet pulled, or engine outputs not yet released.
    fn unsent(&mut self) -> bool {
        self.sessions
            .iter()
            .any(|session| !session.flushed() || session.backlog(&self.streams) > 0)
            || !self.gate.is_drained()
    }

    fn close_all(&mut self, reason: &str) {
        for slot in 0..self.sessions.slot_count() {
            self.close(slot, reason.to_owned());
        }
    }
}

/// What releasing a durable command touches: the proxy writes the streams,
/// the submit path counts the answer, the day's end reaches the sessions.
struct Router<'a> {
    tee: Option<&'a mut TeeBatch>,
    submit: &'a mut SubmitPath,
    proxy: &'a mut OutboundProxy,
    directory: &'a mut Directory,
    streams: &'a mut SessionStreams,
    sessions: &'a mut Sessions,
    control: &'a Control,
    failed: &'a mut bool,
    now: Instant,
}

impl Router<'_> {
    fn route(&mut self, release: Release<'_>) {
        if let Some(batch) = self.tee.as_deref_mut() {
            batch.push(&release);
        }
        let Release::Command {
            header,
            command,
            origin,
            status,
            events,
        } = release
        else {
            if !*self.failed {
                tracing::error!(
                    "the engine stopped: the journal refused a command; no more commands are \
                     accepted"
                );
            }
            *self.failed = true;
            self.control.stop_input.store(true, Ordering::Release);
            return;
        };
        if matches!(OriginRecord::decode(origin.as_bytes()), Ok(Some(_))) {
            // From a session: it counted against the in-flight limit.
            self.submit.answered();
        }
        let applied = AppliedCommand {
            header,
            command,
            origin: origin.as_bytes(),
            status,
            events,
        };
        match self.proxy.applied(self.directory, self.streams, &applied) {
            Ok(routed) if routed.day_ended => self.end_of_day(),
            Ok(_) => {}
            Err(error) => self.stream_failed(&error),
        }
    }

    /// A stream's store failed: its sessions could no longer be told what
    /// the journal holds, so no more commands are accepted (as when the
    /// journal refuses one); the journal keeps what was done.
    fn stream_failed(&mut self, error: &StreamError) {
        if !*self.failed {
            tracing::error!(%error, "a session stream failed; no more commands are accepted");
        }
        *self.failed = true;
        self.control.stop_input.store(true, Ordering::Release);
    }

    /// The trading day ended: every session gets what is left of its
    /// stream, then End of Session; new logins start the next day's
    /// session.
    fn end_of_day(&mut self) {
        for session in self.sessions.iter_mut() {
            if session.logged_in().is_none() {
                continue;
            }
            session.drain_stream(self.streams);
            session.send(&ServerPacket::EndOfSession);
            session.close_after_flush("end of the trading day".to_owned(), self.now);
        }
        if let Err(error) = self.streams.clear() {
            self.stream_failed(&error);
        }
    }
}

impl std::fmt::Debug for Router<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

fn frame_error_reason(error: &FrameError) -> String {
    format!("malformed SoupBinTCP frame: {error}")
}
