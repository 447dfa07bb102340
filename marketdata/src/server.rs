//! The market-data thread: the engine's market-data ring in, MoldUDP64
//! packets out on the multicast feed(s), re-requests answered by unicast
//! UDP, snapshots served over TCP (SoupBinTCP, GLIMPSE-style).
//!
//! ```text
//!  [md output ring] ─▶ DurabilityGate ─▶ durable? ─▶ Publisher ─▶ packets ─▶ feed A (+ feed B)
//!                                                 │
//!                                            message log ─▶ re-request answers (UDP 9003)
//!                                            feed state  ─▶ snapshots (TCP 9004)
//! ```
//!
//! - **Durability rule**: an output is published only once its command is
//!   durable (`DurablePosition`); outputs wait in a queue until then, in
//!   order. At a clean stop the journal is closed (everything durable) and
//!   the rest is published, then End of Session.
//! - **An agent** ([`MdAgent`]): each `do_work` takes the engine's outputs,
//!   publishes the durable ones, handles the sockets' readiness without
//!   waiting and sends a heartbeat after `heartbeat` of silence. It runs
//!   alone ([`MdServer::spawn`]: its runner sleeps in `epoll` as soon as it
//!   is idle) or composed with the other I/O agents on one thread
//!   ([`MdServer::into_agent`]). Before its runner sleeps it announces the
//!   sleep on its [`Doorbell`], which the engine rings when it publishes;
//!   while outputs wait for the disk it counts that as work, so its runner
//!   does not sleep.
//! - **Re-requests** (see `docs/marketdata.md`): capped at
//!   `rerequest_messages_max` messages each; a token bucket per requester
//!   (IP address, whatever the port) allows
//!   `rerequest_messages_per_second`; malformed
//!   requests (wrong length, another session, sequence or count 0) and
//!   requests over the limit are dropped and counted, logged once each kind.
//! - **Snapshots**: Login Request (any credentials; the current session or
//!   blank) → Login Accepted, one Sequenced Data per message of the state
//!   (Stock Directory, Stock Trading Action if halted, Add Order in time
//!   priority), End of Snapshot (`'G'` + the next live sequence number),
//!   End of Session, close. Built on this thread between two commands, so it
//!   is exactly the state through the sequence number before the one it
//!   names.
//! - A send to the multicast group that fails (no multicast route, say) is
//!   counted and logged once; re-requests and snapshots keep working.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use engine::Consumer;
use engine::agent::{
    Agent, AgentError, AgentHandle, AgentRunner, EpollSleeper, IdleStrategy, RunnerConfig,
};
use engine::gate::{DurabilityGate, Release, ReleaseTee, TeeBatch};
use engine::runner::{Doorbell, Output};
use engine::{Command, CommandHeader, Event};
use journal::DurablePosition;
use mio::net::{TcpListener, TcpStream, UdpSocket as MioUdpSocket};
use mio::{Events, Interest, Poll, Token, Waker};
use wire::soupbin::{self, ClientPacket, FrameDecoder, ServerPacket};

use crate::feed::itch_timestamp;
use crate::moldudp64::{self, Request, Session};
use crate::publisher::{Publisher, end_of_snapshot};

/// Settings of the market-data thread.
#[derive(Clone, Debug)]
pub struct MdConfig {
    /// Feed A: a multicast group and port.
    pub feed_a: SocketAddrV4,
    /// Feed B: a second group sent the same packets, for arbitration.
    pub feed_b: Option<SocketAddrV4>,
    /// The interface multicast is sent on.
    pub interface: Ipv4Addr,
    /// Multicast TTL (0: this host only).
    pub ttl: u32,
    /// A heartbeat after this long without a packet.
    pub heartbeat: Duration,
    /// Where re-requests are answered (UDP).
    pub rerequest: SocketAddr,
    /// Where snapshots are served (TCP).
    pub snapshot: SocketAddr,
    /// The most messages one re-request is answered with.
    pub rerequest_messages_max: u16,
    /// Messages per second one requester may be sent (token bucket, one
    /// second of burst).
    pub rerequest_messages_per_second: u64,
    /// Snapshot connections at once; more are closed on accept.
    pub snapshot_sessions_max: usize,
    /// A snapshot client that has not logged in after this long is closed.
    pub snapshot_login_timeout: Duration,
    /// A snapshot client that has not read all of its snapshot after this
    /// long (from connecting) is closed.
    pub snapshot_write_timeout: Duration,
    /// Where the message log is written (a directory per session); `None`:
    /// memory only.
    pub log_dir: Option<PathBuf>,
    /// The core to pin the thread to.
    pub core: Option<usize>,
}

impl Default for MdConfig {
    fn default() -> MdConfig {
        MdConfig {
            feed_a: SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 1), 26400),
            feed_b: None,
            interface: Ipv4Addr::LOCALHOST,
            ttl: 0,
            heartbeat: Duration::from_secs(1),
            rerequest: SocketAddr::from(([127, 0, 0, 1], 9003)),
            snapshot: SocketAddr::from(([127, 0, 0, 1], 9004)),
            rerequest_messages_max: 1024,
            rerequest_messages_per_second: 100_000,
            snapshot_sessions_max: 16,
            snapshot_login_timeout: Duration::from_secs(5),
            snapshot_write_timeout: Duration::from_secs(60),
            log_dir: None,
            core: None,
        }
    }
}

/// What the thread did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MdStats {
    pub commands: u64,
    pub messages: u64,
    pub packets: u64,
    pub heartbeats: u64,
    pub send_errors: u64,
    pub rerequests_answered: u64,
    pub messages_resent: u64,
    pub rerequests_malformed: u64,
    pub rerequests_rate_limited: u64,
    pub snapshots_served: u64,
    pub snapshot_sessions_refused: u64,
    pub snapshot_protocol_errors: u64,
}

const WAKER: Token = Token(0);
const REREQUEST: Token = Token(1);
const SNAPSHOT_LISTENER: Token = Token(2);
const FIRST_CONNECTION: usize = 16;
/// Re-requests answered per turn of the loop.
const REREQUESTS_PER_TURN: usize = 64;

/// The bound sockets, before the thread starts.
#[derive(Debug)]
pub struct MdServer {
    config: MdConfig,
    poll: Poll,
    waker: Arc<Waker>,
    rerequest: MioUdpSocket,
    snapshot: TcpListener,
    feed_a: UdpSocket,
    feed_b: Option<UdpSocket>,
}

/// What the thread works with besides its sockets.
#[derive(Debug)]
pub struct MdParts {
    /// The publisher, with the stream regenerated from the journal.
    pub publisher: Publisher,
    pub source: MdSource,
}

/// Where market data takes the engine's outcomes from.
#[derive(Debug)]
pub enum MdSource {
    /// A ring of its own from the engine, through its own durability gate.
    Ring {
        output: Consumer<Output>,
        durable: DurablePosition,
    },
    /// What another consumer's gate released, handed over on the thread
    /// they share (the gateway's, when both run on one I/O thread): no
    /// second ring for the engine to fill and this thread to read. Only on
    /// the sender's thread: nothing wakes another when it sends.
    Tee(ReleaseTee),
}

/// [`MdSource`] in the agent.
#[derive(Debug)]
enum MdInput {
    /// Out of its slot only during `take_outputs`, which lends the rest of
    /// the agent to the publishing of what it releases.
    Ring(Option<DurabilityGate>),
    Tee {
        tee: ReleaseTee,
        /// The batch being received (empty between passes).
        batch: TeeBatch,
        /// The sender has finished: everything it released was received.
        closed: bool,
    },
}

impl MdServer {
    /// Binds the re-request and snapshot ports and makes the multicast
    /// sockets.
    pub fn bind(config: MdConfig) -> io::Result<MdServer> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut rerequest = MioUdpSocket::bind(config.rerequest)?;
        let mut snapshot = TcpListener::bind(config.snapshot)?;
        poll.registry()
            .register(&mut rerequest, REREQUEST, Interest::READABLE)?;
        poll.registry()
            .register(&mut snapshot, SNAPSHOT_LISTENER, Interest::READABLE)?;
        let feed_a = multicast_sender(&config)?;
        let feed_b = match config.feed_b {
            Some(_) => Some(multicast_sender(&config)?),
            None => None,
        };
        Ok(MdServer {
            config,
            poll,
            waker,
            rerequest,
            snapshot,
            feed_a,
            feed_b,
        })
    }

    pub fn rerequest_addr(&self) -> io::Result<SocketAddr> {
        self.rerequest.local_addr()
    }

    pub fn snapshot_addr(&self) -> io::Result<SocketAddr> {
        self.snapshot.local_addr()
    }

    /// The bell the engine rings when it publishes to the ring (give it to
    /// `engine::runner::spawn_with_background`).
    pub fn doorbell(&self) -> Arc<Doorbell> {
        let waker = Arc::clone(&self.waker);
        Arc::new(Doorbell::new(move || {
            let _ = waker.wake();
        }))
    }

    /// Starts the thread (the agent alone on a runner of its own, sleeping
    /// in its `epoll`). `doorbell` is the one given to the engine. Only
    /// with a ring of its own ([`MdSource::Ring`]): a tee's sender cannot
    /// wake another thread, so [`MdSource::Tee`] is refused
    /// (`InvalidInput`).
    pub fn spawn(self, parts: MdParts, doorbell: Arc<Doorbell>) -> io::Result<MdHandle> {
        if matches!(parts.source, MdSource::Tee(_)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "market data on a thread of its own needs a ring of its own, not a tee",
            ));
        }
        let core = self.config.core;
        let (agent, control) = self.into_agent(parts, doorbell);
        let sleeper = EpollSleeper::new(&[agent.poll.as_raw_fd()])?;
        let runner = AgentRunner::new(
            agent,
            RunnerConfig {
                core,
                idle: IdleStrategy::Park {
                    park: MdAgent::SLEEP_MAX,
                },
                ..RunnerConfig::default()
            },
        )
        .with_sleeper(Box::new(sleeper));
        let runner = runner.spawn()?;
        Ok(MdHandle { control, runner })
    }

    /// The market-data loop as an agent, to run on a runner with others;
    /// `doorbell` is the one given to the engine. The control finishes it
    /// and reads its counters.
    pub fn into_agent(self, parts: MdParts, doorbell: Arc<Doorbell>) -> (MdAgent, MdControl) {
        let control = MdControl {
            shared: Arc::new(MdShared::default()),
            waker: Arc::clone(&self.waker),
        };
        let agent = MdAgent::new(self, parts, doorbell, Arc::clone(&control.shared));
        (agent, control)
    }
}

fn multicast_sender(config: &MdConfig) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_multicast_if_v4(&config.interface)?;
    socket.set_multicast_ttl_v4(config.ttl)?;
    // Subscribers on this host (the default TTL 0 allows no other).
    socket.set_multicast_loop_v4(true)?;
    socket.bind(&SocketAddr::from((config.interface, 0)).into())?;
    Ok(socket.into())
}

#[derive(Debug, Default)]
struct MdShared {
    engine_done: AtomicBool,
    /// The counters, published by the agent at every heartbeat check and
    /// when it closes.
    stats: Mutex<MdStats>,
}

/// Finishes a market-data agent and reads its counters, from any thread.
#[derive(Clone, Debug)]
pub struct MdControl {
    shared: Arc<MdShared>,
    waker: Arc<Waker>,
}

impl MdControl {
    /// After the engine has stopped and the journal is closed: the agent
    /// publishes what is left, sends End of Session and finishes.
    pub fn engine_done(&self) {
        self.shared.engine_done.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// The counters as last published by the agent (all of them once it
    /// has closed).
    pub fn stats(&self) -> MdStats {
        *self
            .shared
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running thread.
#[derive(Debug)]
pub struct MdHandle {
    control: MdControl,
    runner: AgentHandle<MdAgent>,
}

impl MdHandle {
    pub fn is_finished(&self) -> bool {
        self.runner.is_finished()
    }

    /// After the engine has stopped and the journal is closed: publishes
    /// what is left, sends End of Session and ends the thread.
    pub fn finish(self) -> io::Result<MdStats> {
        self.control.engine_done();
        match self.runner.join() {
            (agent, Ok(())) => Ok(agent.stats),
            (_, Err(AgentError::Failed(error))) => Err(error),
            (agent, Err(AgentError::Finished)) => Ok(agent.stats),
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct SnapshotConnection {
    stream: TcpStream,
    peer: SocketAddr,
    decoder: FrameDecoder,
    /// Bytes read (before the answer).
    read: usize,
    out: Vec<u8>,
    written: usize,
    answered: bool,
    opened: Instant,
}

/// Bytes a snapshot client may send before its Login Request is answered
/// (a login is 49; heartbeats and debug packets may come first).
const SNAPSHOT_LOGIN_BYTES_MAX: usize = 4096;

/// The market-data loop as an [`Agent`] (see the module docs).
pub struct MdAgent {
    config: MdConfig,
    poll: Poll,
    rerequest: MioUdpSocket,
    snapshot: TcpListener,
    feed_a: UdpSocket,
    feed_b: Option<UdpSocket>,
    publisher: Publisher,
    /// The engine's outcomes (see [`MdSource`]).
    input: MdInput,
    doorbell: Arc<Doorbell>,
    control: Arc<MdShared>,
    poll_events: Events,
    connections: Vec<Option<SnapshotConnection>>,
    buckets: HashMap<IpAddr, Bucket>,
    /// The re-request socket may hold requests (edge-triggered readiness:
    /// set by its event, cleared when a read would block).
    rerequest_readable: bool,
    /// The last snapshot's bytes, for the session and next sequence they
    /// describe: clients that log in before anything new is published
    /// share one build.
    snapshot_cache: Option<(Session, u64, Vec<u8>)>,
    last_sent: Instant,
    /// When the sockets are polled next (see [`SOCKETS_POLL_INTERVAL`]);
    /// `None`: at the next pass (after a sleep, which their events end).
    next_sockets_poll: Option<Instant>,
    /// Something was published since the last flush.
    unflushed: bool,
    stats: MdStats,
    failed: bool,
    logged: Logged,
    scratch: Vec<u8>,
}

/// Kinds of trouble already logged (each is logged once, then counted).
#[derive(Default)]
struct Logged {
    send_error: bool,
    malformed: bool,
    rate_limited: bool,
    snapshot_error: bool,
}

impl fmt::Debug for MdAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MdAgent")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl MdAgent {
    /// The longest sleep when idle: heartbeats and snapshot timeouts are
    /// checked at least this often.
    pub const SLEEP_MAX: Duration = Duration::from_millis(100);

    fn new(
        server: MdServer,
        parts: MdParts,
        doorbell: Arc<Doorbell>,
        control: Arc<MdShared>,
    ) -> MdAgent {
        MdAgent {
            config: server.config,
            poll: server.poll,
            rerequest: server.rerequest,
            snapshot: server.snapshot,
            feed_a: server.feed_a,
            feed_b: server.feed_b,
            publisher: parts.publisher,
            input: match parts.source {
                MdSource::Ring { output, durable } => {
                    MdInput::Ring(Some(DurabilityGate::new(output, durable)))
                }
                MdSource::Tee(tee) => MdInput::Tee {
                    tee,
                    batch: TeeBatch::default(),
                    closed: false,
                },
            },
            doorbell,
            control,
            poll_events: Events::with_capacity(256),
            connections: Vec::new(),
            buckets: HashMap::new(),
            rerequest_readable: false,
            snapshot_cache: None,
            last_sent: Instant::now(),
            next_sockets_poll: None,
            unflushed: false,
            stats: MdStats::default(),
            failed: false,
            logged: Logged::default(),
            scratch: Vec::with_capacity(moldudp64::MAX_UDP_PAYLOAD),
        }
    }

    /// Takes the engine's outputs and publishes the durable ones; on the
    /// last pass after the engine stopped, ends the session. Returns the
    /// outputs taken and released, or `None` when finished.
    fn take_and_release(&mut self) -> Option<usize> {
        let finishing = self.control.engine_done.load(Ordering::Acquire);
        let (taken, released) = self.take_outputs(true);
        if self.unflushed && (released == 0 || !self.is_waiting()) {
            self.flush();
        }
        if finishing && self.input_ended() {
            // The engine has stopped and the journal is closed: what it
            // made durable was released above; anything left was never
            // durable and is not published.
            self.take_outputs(true);
            let waiting = match &self.input {
                MdInput::Ring(gate) => gate.as_ref().expect("the gate is back").waiting(),
                MdInput::Tee { .. } => 0,
            };
            if waiting > 0 {
                tracing::warn!(
                    outputs = waiting,
                    "outputs of commands the journal did not make durable are not published"
                );
            }
            self.end_of_session();
            return None;
        }
        Some(taken + released)
    }

    /// Takes a bounded number of outputs from the engine's ring through the
    /// durability gate, publishing each durable command (and, with
    /// `release_queued`, the queued ones that became durable); how many
    /// were taken and how many commands published.
    fn take_outputs(&mut self, release_queued: bool) -> (usize, usize) {
        let mut released = 0;
        match &mut self.input {
            MdInput::Ring(slot) => {
                let mut gate = slot.take().expect("the gate is back between passes");
                let taken = gate.take(&mut |release| released += self.on_release(release));
                if release_queued {
                    gate.release_durable(&mut |release| released += self.on_release(release));
                }
                self.input = MdInput::Ring(Some(gate));
                (taken, released)
            }
            MdInput::Tee { tee, batch, closed } => {
                let mut received = std::mem::take(batch);
                *closed |= tee.receive(&mut received);
                let taken = received.release_all(&mut |release| {
                    released += self.on_release(release);
                });
                if let MdInput::Tee { batch, .. } = &mut self.input {
                    // The emptied buffers, for the next pass.
                    *batch = received;
                }
                (taken, released)
            }
        }
    }

    /// Whether outputs wait for the journal (nothing wakes the agent when
    /// the durable position moves). Through a tee, the sender waits.
    fn is_waiting(&self) -> bool {
        match &self.input {
            MdInput::Ring(gate) => gate.as_ref().expect("the gate is back").is_waiting(),
            MdInput::Tee { .. } => false,
        }
    }

    /// Whether anything is left to take.
    fn has_input(&mut self) -> bool {
        match &mut self.input {
            MdInput::Ring(gate) => !gate.as_mut().expect("the gate is back").is_drained(),
            MdInput::Tee { tee, .. } => !tee.is_empty(),
        }
    }

    /// Whether nothing more can come, once the engine has stopped: its
    /// ring is empty, or the sender has finished and everything it sent
    /// was taken.
    fn input_ended(&mut self) -> bool {
        match &mut self.input {
            MdInput::Ring(gate) => gate.as_mut().expect("the gate is back").ring_is_empty(),
            MdInput::Tee { closed, .. } => *closed,
        }
    }

    /// Publishes one durable command; 1 if it was published.
    fn on_release(&mut self, release: Release<'_>) -> usize {
        match release {
            Release::Failed => {
                if !self.failed {
                    tracing::error!(
                        "the engine stopped (the journal refused a command): no more market data"
                    );
                }
                self.failed = true;
                0
            }
            Release::Command {
                header,
                command,
                events,
                ..
            } => {
                self.publish(header, command, events);
                1
            }
        }
    }

    /// Handles what the sockets have (without waiting); returns how many
    /// readiness events there were.
    fn poll_sockets(&mut self) -> io::Result<usize> {
        let mut events = std::mem::replace(&mut self.poll_events, Events::with_capacity(0));
        let polled = self.poll.poll(&mut events, Some(Duration::ZERO));
        let mut count = 0;
        if let Err(error) = polled
            && error.kind() != io::ErrorKind::Interrupted
        {
            self.poll_events = events;
            return Err(error);
        }
        for event in &events {
            count += 1;
            match event.token() {
                WAKER => {}
                REREQUEST => self.rerequest_readable = true,
                SNAPSHOT_LISTENER => self.accept_snapshots(),
                Token(token) => self.serve_snapshot(token - FIRST_CONNECTION),
            }
            // Snapshots and re-requests must not keep the engine's ring
            // from being drained (the engine waits when it is full).
            self.take_outputs(false);
        }
        self.poll_events = events;
        Ok(count)
    }

    /// A heartbeat after `heartbeat` of silence.
    fn heartbeat(&mut self) {
        if self.last_sent.elapsed() >= self.config.heartbeat {
            // Never announce (in a heartbeat's next sequence) a message
            // still in the packet in progress.
            if self.unflushed {
                self.flush();
            }
        }
        if self.last_sent.elapsed() >= self.config.heartbeat {
            let mut packet = std::mem::take(&mut self.scratch);
            self.publisher.heartbeat(&mut packet);
            self.send(&packet);
            self.scratch = packet;
            self.stats.heartbeats += 1;
            self.publish_stats();
            // A quiet feed's last messages reach the log's files too.
            self.publisher.flush_log();
        }
    }

    fn publish_stats(&self) {
        *self
            .control
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = self.stats;
    }

    /// Runs `f` on the publisher with a sender to the feeds; keeps the
    /// packet count and the time of the last packet.
    fn publishing(&mut self, f: impl FnOnce(&mut Publisher, &mut dyn FnMut(&[u8]))) {
        let before = self.publisher.stats().packets;
        let Self {
            publisher,
            feed_a,
            feed_b,
            config,
            stats,
            logged,
            ..
        } = self;
        f(publisher, &mut |packet| {
            send_feeds(feed_a, feed_b.as_ref(), config, packet, stats, logged);
        });
        let packets = self.publisher.stats().packets;
        if packets != before {
            self.last_sent = Instant::now();
        }
        self.stats.packets = packets;
    }

    fn publish(&mut self, header: CommandHeader, command: &Command, events: &[Event]) {
        let before = self.publisher.stats().messages;
        self.publishing(|publisher, send| publisher.applied(header, command, events, send));
        self.unflushed = true;
        self.stats.commands += 1;
        self.stats.messages += self.publisher.stats().messages - before;
    }

    fn flush(&mut self) {
        self.publishing(|publisher, send| publisher.flush(send));
        self.unflushed = false;
    }

    fn send(&mut self, packet: &[u8]) {
        send_feeds(
            &self.feed_a,
            self.feed_b.as_ref(),
            &self.config,
            packet,
            &mut self.stats,
            &mut self.logged,
        );
        self.last_sent = Instant::now();
    }

    /// A clean stop: the last packet, End of Session, the log marked
    /// ended.
    fn end_of_session(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        self.publishing(|publisher, send| publisher.close(now, send));
    }

    // -----------------------------------------------------------------
    // Re-requests.
    // -----------------------------------------------------------------

    /// Answers up to [`REREQUESTS_PER_TURN`] waiting requests; the rest
    /// wait for the next turn of the loop (the engine's ring is drained in
    /// between).
    fn answer_rerequests(&mut self) {
        let mut buf = [0u8; 64];
        for _ in 0..REREQUESTS_PER_TURN {
            let (len, from) = match self.rerequest.recv_from(&mut buf) {
                Ok(received) => received,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.rerequest_readable = false;
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // An ICMP error of an earlier answer, say: nothing to
                    // do but go on.
                    tracing::debug!(%error, "re-request socket");
                    return;
                }
            };
            let request = match Request::decode(&buf[..len]) {
                Ok(request)
                    if request.session == self.publisher.session()
                        && request.sequence > 0
                        && request.count > 0 =>
                {
                    request
                }
                Ok(request) => {
                    self.malformed(from, &format!("{request:?} (another session, or a zero)"));
                    continue;
                }
                Err(error) => {
                    self.malformed(from, &error.to_string());
                    continue;
                }
            };
            let cost = f64::from(request.count.min(self.config.rerequest_messages_max));
            if !self.take_tokens(from, cost) {
                self.stats.rerequests_rate_limited += 1;
                if !self.logged.rate_limited {
                    self.logged.rate_limited = true;
                    tracing::warn!(%from, "re-requests over the rate limit are dropped (logged once)");
                }
                continue;
            }
            let socket = &self.rerequest;
            let mut send_failed = false;
            let answered = self.publisher.answer(
                &request,
                self.config.rerequest_messages_max,
                &mut |packet| {
                    if socket.send_to(packet, from).is_err() {
                        send_failed = true;
                    }
                },
            );
            match answered {
                Ok(sent) => {
                    self.stats.rerequests_answered += 1;
                    self.stats.messages_resent += sent;
                }
                Err(error) => tracing::error!(%error, "answering a re-request"),
            }
            if send_failed {
                self.stats.send_errors += 1;
            }
        }
    }

    fn malformed(&mut self, from: SocketAddr, what: &str) {
        self.stats.rerequests_malformed += 1;
        if !self.logged.malformed {
            self.logged.malformed = true;
            tracing::warn!(%from, what, "malformed re-request dropped (logged once; counted)");
        }
    }

    fn take_tokens(&mut self, from: SocketAddr, cost: f64) -> bool {
        let rate = self.config.rerequest_messages_per_second as f64;
        let now = Instant::now();
        if self.buckets.len() > 4096 {
            self.buckets
                .retain(|_, bucket| now.duration_since(bucket.last) < Duration::from_secs(10));
        }
        // Keyed by address, not port: a requester cannot get a fresh bucket
        // by changing its source port.
        let bucket = self.buckets.entry(from.ip()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            true
        } else {
            false
        }
    }

    // -----------------------------------------------------------------
    // Snapshots.
    // -----------------------------------------------------------------

    fn accept_snapshots(&mut self) {
        loop {
            let (mut stream, peer) = match self.snapshot.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    tracing::warn!(%error, "accepting a snapshot connection");
                    return;
                }
            };
            let open = self.connections.iter().filter(|c| c.is_some()).count();
            if open >= self.config.snapshot_sessions_max {
                self.stats.snapshot_sessions_refused += 1;
                tracing::warn!(%peer, "snapshot connection refused: too many at once");
                continue;
            }
            let slot = match self.connections.iter().position(Option::is_none) {
                Some(slot) => slot,
                None => {
                    self.connections.push(None);
                    self.connections.len() - 1
                }
            };
            if let Err(error) = self.poll.registry().register(
                &mut stream,
                Token(FIRST_CONNECTION + slot),
                Interest::READABLE | Interest::WRITABLE,
            ) {
                tracing::warn!(%error, "registering a snapshot connection");
                continue;
            }
            let _ = stream.set_nodelay(true);
            self.connections[slot] = Some(SnapshotConnection {
                stream,
                peer,
                decoder: FrameDecoder::new(64),
                read: 0,
                out: Vec::new(),
                written: 0,
                answered: false,
                opened: Instant::now(),
            });
            // Data may have come with the connection.
            self.serve_snapshot(slot);
        }
    }

    fn serve_snapshot(&mut self, slot: usize) {
        let Some(Some(mut connection)) = self.connections.get_mut(slot).map(Option::take) else {
            return;
        };
        let keep = self.drive_snapshot(&mut connection);
        if keep {
            self.connections[slot] = Some(connection);
        } else {
            let _ = self.poll.registry().deregister(&mut connection.stream);
        }
    }

    /// Reads, answers and writes; `false` when the connection is done.
    fn drive_snapshot(&mut self, connection: &mut SnapshotConnection) -> bool {
        let mut chunk = [0u8; 512];
        // Input matters only until the Login Request is answered; after
        // that the connection only writes (a client that half-closes still
        // gets its snapshot) and ends when everything is written.
        while !connection.answered {
            match connection.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(len) => {
                    connection.read += len;
                    if connection.read > SNAPSHOT_LOGIN_BYTES_MAX {
                        self.snapshot_error(connection.peer, "too much data before login");
                        return false;
                    }
                    let mut rest = &chunk[..len];
                    while !rest.is_empty() {
                        let fed = connection.decoder.feed(rest);
                        rest = &rest[fed..];
                        if !self.snapshot_packets(connection) {
                            return false;
                        }
                        if fed == 0 {
                            break;
                        }
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        while connection.written < connection.out.len() {
            match connection
                .stream
                .write(&connection.out[connection.written..])
            {
                Ok(0) => return false,
                Ok(written) => connection.written += written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // Everything written: a served snapshot ends the connection.
        !connection.answered
    }

    /// Handles the packets decoded so far; `false` to close.
    fn snapshot_packets(&mut self, connection: &mut SnapshotConnection) -> bool {
        loop {
            let packet = match connection.decoder.next_client_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => return true,
                Err(error) => {
                    self.snapshot_error(connection.peer, &error.to_string());
                    return false;
                }
            };
            match packet {
                ClientPacket::LoginRequest {
                    requested_session, ..
                } if !connection.answered => {
                    let session = *self.publisher.session().as_bytes();
                    let blank = requested_session.iter().all(|&byte| byte == b' ');
                    let trimmed = soupbin::alpha_trimmed(&requested_session);
                    let current = soupbin::alpha_trimmed(&session);
                    // No session before the first command: nothing to
                    // describe yet.
                    if current.is_empty() || (!blank && trimmed != current) {
                        let _ = (ServerPacket::LoginRejected {
                            reason: soupbin::RejectReason::SessionNotAvailable,
                        })
                        .encode(&mut connection.out);
                        connection.answered = true;
                        continue;
                    }
                    self.write_snapshot(connection, session);
                }
                ClientPacket::ClientHeartbeat | ClientPacket::Debug(_) => {}
                ClientPacket::LogoutRequest => return false,
                ClientPacket::LoginRequest { .. } | ClientPacket::UnsequencedData(_) => {
                    if !connection.answered {
                        self.snapshot_error(connection.peer, "data before login");
                        return false;
                    }
                }
            }
        }
    }

    fn write_snapshot(&mut self, connection: &mut SnapshotConnection, session: [u8; 10]) {
        let current = (self.publisher.session(), self.publisher.next_sequence());
        let cached = self
            .snapshot_cache
            .as_ref()
            .is_some_and(|(session, next, _)| (*session, *next) == current);
        if !cached {
            let timestamp = itch_timestamp(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_nanos() as u64),
            );
            let mut messages = Vec::new();
            let next = self.publisher.snapshot(timestamp, &mut messages);
            let mut body = Vec::with_capacity(messages.len() * 40 + 64);
            let mut encoded = Vec::with_capacity(64);
            for message in &messages {
                encoded.clear();
                message.encode(&mut encoded);
                let _ = ServerPacket::SequencedData(&encoded).encode(&mut body);
            }
            let _ = ServerPacket::SequencedData(&end_of_snapshot(next)).encode(&mut body);
            let _ = ServerPacket::EndOfSession.encode(&mut body);
            self.snapshot_cache = Some((current.0, current.1, body));
        }
        let (_, next, body) = self.snapshot_cache.as_ref().expect("built above");
        let out = &mut connection.out;
        let _ = (ServerPacket::LoginAccepted {
            session,
            sequence: 1,
        })
        .encode(out);
        out.extend_from_slice(body);
        connection.answered = true;
        self.stats.snapshots_served += 1;
        tracing::debug!(peer = %connection.peer, bytes = out.len(), next, "snapshot served");
    }

    fn snapshot_error(&mut self, peer: SocketAddr, what: &str) {
        self.stats.snapshot_protocol_errors += 1;
        if !self.logged.snapshot_error {
            self.logged.snapshot_error = true;
            tracing::warn!(%peer, what, "snapshot connection closed: protocol error (logged once; counted)");
        }
    }

    /// Closes snapshot clients that do not log in within the login timeout,
    /// or do not take their snapshot within the write timeout (a client
    /// that never reads would hold its slot and its buffer for ever).
    fn expire_snapshots(&mut self) {
        let login = self.config.snapshot_login_timeout;
        let write = self.config.snapshot_write_timeout;
        for slot in 0..self.connections.len() {
            let expired = self.connections[slot].as_ref().is_some_and(|c| {
                let age = c.opened.elapsed();
                if c.answered { age > write } else { age > login }
            });
            if expired && let Some(mut connection) = self.connections[slot].take() {
                let _ = self.poll.registry().deregister(&mut connection.stream);
                tracing::debug!(
                    peer = %connection.peer,
                    answered = connection.answered,
                    "snapshot client too slow (login or reading): closed"
                );
            }
        }
    }
}

/// How often a busy market-data agent polls its sockets (re-requests,
/// snapshot sessions) and checks its heartbeat and snapshot deadlines: the
/// I/O thread runs a pass per engine batch, and a poll (a system call) per
/// pass cost order entry's share of it. A sleeping thread is woken by those
/// sockets and polls them at once.
const SOCKETS_POLL_INTERVAL: Duration = Duration::from_micros(100);

impl Agent for MdAgent {
    fn role(&self) -> &str {
        "marketdata"
    }

    fn do_work(&mut self) -> Result<usize, AgentError> {
        let Some(mut work) = self.take_and_release() else {
            return Err(AgentError::Finished);
        };
        let now = Instant::now();
        if self.next_sockets_poll.is_none_or(|next| now >= next) {
            self.next_sockets_poll = Some(now + SOCKETS_POLL_INTERVAL);
            work += self.poll_sockets()?;
            self.expire_snapshots();
            self.heartbeat();
        }
        if self.rerequest_readable {
            self.answer_rerequests();
            work += 1;
        }
        // Outputs waiting for the disk: nothing wakes this agent when the
        // durable position moves, so its runner must not sleep.
        if self.is_waiting() {
            work += 1;
        }
        Ok(work)
    }

    fn prepare_sleep(&mut self) -> bool {
        // Only an idle sleep is announced (see `do_work`): the engine rings
        // the bell after its next publication.
        self.doorbell.sleeping();
        self.has_input()
            || self.rerequest_readable
            || self.control.engine_done.load(Ordering::Acquire)
    }

    fn after_sleep(&mut self) {
        self.doorbell.awake();
        self.next_sockets_poll = None;
    }

    fn on_close(&mut self) {
        self.publish_stats();
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.poll.as_raw_fd())
    }
}

fn send_feeds(
    feed_a: &UdpSocket,
    feed_b: Option<&UdpSocket>,
    config: &MdConfig,
    packet: &[u8],
    stats: &mut MdStats,
    logged: &mut Logged,
) {
    let mut sent = |socket: &UdpSocket, group: SocketAddrV4| {
        if let Err(error) = socket.send_to(packet, group) {
            stats.send_errors += 1;
            if !logged.send_error {
                logged.send_error = true;
                tracing::warn!(
                    %error, %group,
                    "cannot send to the multicast group (logged once; counted); re-requests and \
                     snapshots still work"
                );
            }
        }
    };
    sent(feed_a, config.feed_a);
    if let (Some(socket), Some(group)) = (feed_b, config.feed_b) {
        sent(socket, group);
    }
}
