//! The market-data subscriber: joins the MoldUDP64 feeds, arbitrates A/B,
//! recovers gaps, and keeps [`Books`] in step with the exchange.
//!
//! Two layers:
//!
//! * [`Arbiter`] (sans-I/O, `subscriber/arbiter.rs`): packets in, each
//!   message out exactly once and in order, plus [`Action`]s (re-request a
//!   gap, fall back to a snapshot). All the recovery logic and its tests
//!   live there.
//! * [`Subscriber`] (this file): the sockets around it. Feed A (and B) are
//!   multicast groups joined on one interface with `SO_REUSEADDR` and
//!   `SO_REUSEPORT`, so several subscribers on one host each get every
//!   packet; re-requests go by unicast UDP from a socket of their own,
//!   which also receives the answers; snapshots come from the TCP snapshot
//!   service ([`fetch_snapshot`], blocking with a timeout). A `mio` poll
//!   waits on the three UDP sockets.
//!
//! # Start and resync
//!
//! With [`Start::Snapshot`] the subscriber joins the groups first (so the
//! kernel buffers live packets), then fetches a snapshot, applies it to
//! empty books and delivers live messages from the snapshot's next
//! sequence number on. With [`Start::Beginning`] it re-requests the session
//! from sequence 1. Whenever a gap cannot be filled, or a message does not
//! fit the books, the books are cleared and rebuilt from a new snapshot
//! while live packets are buffered. A new session (the next trading day)
//! clears the books and starts at its sequence 1.
//!
//! # Latency
//!
//! Each delivered message's latency is the receive wall clock (the system
//! clock, read once per packet) minus the ITCH timestamp (nanoseconds since
//! midnight UTC, stamped by the engine), wrapped into ±12 h so that
//! midnight does not show as a day. Buffered messages are measured when they
//! are delivered. Both clocks are the same host's in the local setup; across
//! hosts the figure includes their clock offset.

mod arbiter;
mod snapshot;

pub use arbiter::{
    Action, Arbiter, ArbiterConfig, ArbiterStats, Delivery, Gap, PacketOutcome, SnapshotReason,
};
pub use snapshot::{Snapshot, fetch_snapshot};

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::book::{BookError, BookEvent, Books};
use crate::itch::{ItchError, Message};
use crate::moldudp64::{Packet, Request, Session};

/// Nanoseconds in a day.
const DAY_NS: i64 = 86_400_000_000_000;
/// Largest UDP datagram read (a MoldUDP64 packet never exceeds it).
const DATAGRAM_BYTES_MAX: usize = 65_536;

const TOKEN_A: Token = Token(0);
const TOKEN_B: Token = Token(1);
const TOKEN_REREQUEST: Token = Token(2);

/// Where the subscriber starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From a snapshot of the books, then the live feed.
    Snapshot,
    /// From sequence 1 of the session, re-requesting what was missed.
    Beginning,
}

/// Addresses, limits and test knobs of a [`Subscriber`]. `Default` is the
/// local exchange of `docs/design.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriberConfig {
    /// Feed A: a multicast group and port, or (for tests on hosts without
    /// multicast) a local unicast address to bind, port 0 for any.
    pub feed_a: SocketAddrV4,
    /// Feed B, carrying the same packets as A, if any.
    pub feed_b: Option<SocketAddrV4>,
    /// The interface whose address the groups are joined on.
    pub interface: Ipv4Addr,
    /// The re-request server (MoldUDP64 requests over UDP).
    pub rerequest: SocketAddr,
    /// The snapshot service (SoupBinTCP over TCP).
    pub snapshot: SocketAddr,
    /// Where to start.
    pub start: Start,
    /// Recovery limits and timers (re-request cap, timeout, retries, the
    /// largest gap worth re-requesting).
    pub arbiter: ArbiterConfig,
    /// Bound on one snapshot transfer (connect, login, all messages).
    pub snapshot_timeout: Duration,
    /// How long to wait before trying a failed snapshot again.
    pub snapshot_retry_interval: Duration,
    /// `SO_RCVBUF` asked for on the feed sockets: room for the live packets
    /// that arrive while a snapshot is being fetched.
    pub receive_buffer_bytes: usize,
    /// Most datagrams read per socket in one turn of [`Subscriber::poll`].
    pub packets_per_poll_max: usize,
    /// Share (0.0–1.0) of received feed packets dropped on purpose, to
    /// exercise recovery in tests and demonstrations. Re-request answers are
    /// never dropped.
    pub drop_share: f64,
    /// Seed of the deliberate drops, so a run can be repeated.
    pub drop_seed: u64,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        Self {
            feed_a: SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 1), 26400),
            feed_b: None,
            interface: Ipv4Addr::LOCALHOST,
            rerequest: SocketAddr::from((Ipv4Addr::LOCALHOST, 9003)),
            snapshot: SocketAddr::from((Ipv4Addr::LOCALHOST, 9004)),
            start: Start::Snapshot,
            arbiter: ArbiterConfig::default(),
            snapshot_timeout: Duration::from_secs(5),
            snapshot_retry_interval: Duration::from_secs(1),
            receive_buffer_bytes: 8 << 20,
            packets_per_poll_max: 256,
            drop_share: 0.0,
            drop_seed: 1,
        }
    }
}

/// Why the books are being rebuilt from a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// A gap could not be filled by re-requests.
    Gap(SnapshotReason),
    /// A message did not fit the books (they are out of step).
    Book {
        /// Sequence number of the message.
        sequence: u64,
        /// What did not fit.
        error: BookError,
    },
}

/// What [`Subscriber::poll`] reports, in order.
#[derive(Debug)]
pub enum SubscriberEvent<'a> {
    /// A message applied to the books, in sequence order.
    Message {
        /// MoldUDP64 session.
        session: Session,
        /// Its sequence number.
        sequence: u64,
        /// The decoded message.
        message: &'a Message,
        /// What it changed in the books.
        book_events: &'a [BookEvent],
        /// Receive wall clock minus the message's timestamp (see the module
        /// documentation).
        latency_ns: i64,
    },
    /// A message that is not a covered ITCH message; skipped.
    Skipped {
        /// Its sequence number.
        sequence: u64,
        /// Why it could not be decoded.
        error: ItchError,
    },
    /// Messages are missing.
    GapDetected(Gap),
    /// A re-request was sent.
    RerequestSent(Request),
    /// The books are being rebuilt from a snapshot.
    ResyncStarted(ResyncReason),
    /// A snapshot was applied; live messages follow from `next_sequence`.
    SnapshotApplied {
        /// Session of the snapshot.
        session: Session,
        /// First live sequence number not in it.
        next_sequence: u64,
        /// Messages it held.
        messages: usize,
    },
    /// Fetching a snapshot failed; it is tried again later.
    SnapshotFailed(&'a io::Error),
    /// The publisher ended the session and every message was delivered.
    EndOfSession {
        /// The session.
        session: Session,
        /// One past its last message.
        next_sequence: u64,
    },
    /// A new session began; the books were cleared.
    SessionChanged {
        /// The session left, if any.
        previous: Option<Session>,
        /// The new one.
        session: Session,
    },
}

/// Running totals of a [`Subscriber`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Packets received on feed A (deliberate drops included).
    pub packets_a: u64,
    /// Packets received on feed B (deliberate drops included).
    pub packets_b: u64,
    /// Re-request answer packets received.
    pub packets_rerequest: u64,
    /// Feed packets dropped on purpose (`drop_share`).
    pub packets_dropped: u64,
    /// Datagrams that were not valid MoldUDP64 packets.
    pub packets_invalid: u64,
    /// Bytes of every datagram received.
    pub bytes: u64,
    /// Messages delivered in order (applied or skipped).
    pub messages: u64,
    /// Messages that could not be decoded and were skipped.
    pub messages_skipped: u64,
    /// Messages received more than once (A/B copies, repeated answers).
    pub duplicates: u64,
    /// Gaps detected.
    pub gaps: u64,
    /// Re-requests sent.
    pub rerequests: u64,
    /// Messages first received in a re-request answer.
    pub messages_recovered: u64,
    /// Snapshots applied (the first one included).
    pub snapshots: u64,
    /// Snapshot fetches that failed.
    pub snapshot_failures: u64,
    /// Messages that did not fit the books (each caused a resync).
    pub book_errors: u64,
    /// Sum of the latencies of delivered messages, in nanoseconds.
    pub latency_ns_total: i64,
    /// Largest latency of a delivered message, in nanoseconds.
    pub latency_ns_max: i64,
}

/// Which socket a datagram came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    A,
    B,
    Rerequest,
}

/// A deterministic drop decision per packet (splitmix64).
#[derive(Debug)]
struct Dropper {
    share: f64,
    state: u64,
}

impl Dropper {
    fn should_drop(&mut self) -> bool {
        if self.share <= 0.0 {
            return false;
        }
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits as a uniform number in [0, 1).
        ((z >> 11) as f64 / (1u64 << 53) as f64) < self.share
    }
}

/// Applies delivered messages to the books and reports them: everything of
/// the subscriber the arbiter's delivery callback needs, apart from the
/// arbiter itself.
#[derive(Debug)]
struct Applier {
    books: Books,
    book_events: Vec<BookEvent>,
    stats: SubscriberStats,
    /// Set when a message did not fit the books; later deliveries are
    /// ignored until the resync.
    out_of_step: Option<ResyncReason>,
    /// Receive wall clock of the packet being handled, ns since midnight.
    receive_ns: i64,
}

impl Applier {
    fn deliver(&mut self, delivery: Delivery<'_>, on_event: &mut dyn FnMut(&SubscriberEvent<'_>)) {
        match delivery {
            Delivery::Message {
                session,
                sequence,
                message,
            } => self.apply(session, sequence, message, on_event),
            Delivery::EndOfSession {
                session,
                next_sequence,
            } => on_event(&SubscriberEvent::EndOfSession {
                session,
                next_sequence,
            }),
            Delivery::SessionChanged { previous, session } => {
                self.books.clear();
                self.out_of_step = None;
                on_event(&SubscriberEvent::SessionChanged { previous, session });
            }
        }
    }

    fn apply(
        &mut self,
        session: Session,
        sequence: u64,
        bytes: &[u8],
        on_event: &mut dyn FnMut(&SubscriberEvent<'_>),
    ) {
        self.stats.messages += 1;
        if self.out_of_step.is_some() {
            return;
        }
        let message = match Message::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                self.stats.messages_skipped += 1;
                on_event(&SubscriberEvent::Skipped { sequence, error });
                return;
            }
        };
        self.book_events.clear();
        if let Err(error) = self
            .books
            .apply_with_events(&message, &mut self.book_events)
        {
            self.stats.book_errors += 1;
            self.out_of_step = Some(ResyncReason::Book { sequence, error });
            return;
        }
        let latency_ns = latency_ns(self.receive_ns, message.header().timestamp.nanos());
        self.stats.latency_ns_total = self.stats.latency_ns_total.saturating_add(latency_ns);
        self.stats.latency_ns_max = self.stats.latency_ns_max.max(latency_ns);
        on_event(&SubscriberEvent::Message {
            session,
            sequence,
            message: &message,
            book_events: &self.book_events,
            latency_ns,
        });
    }
}

/// Wall clock now, in nanoseconds since midnight UTC.
fn wall_ns_since_midnight() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // The remainder is below one day, which fits an i64.
    (since_epoch.as_nanos() % DAY_NS as u128) as i64
}

/// `receive_ns - stamp_ns`, both since midnight, wrapped into ±12 h.
fn latency_ns(receive_ns: i64, stamp_ns: u64) -> i64 {
    // A valid timestamp is below 2^48, which fits an i64.
    let mut latency = receive_ns - stamp_ns.min(1 << 48) as i64;
    if latency > DAY_NS / 2 {
        latency -= DAY_NS;
    } else if latency < -DAY_NS / 2 {
        latency += DAY_NS;
    }
    latency
}

/// A UDP socket for a feed: a multicast group joined on `interface`, or a
/// unicast address bound as is (tests).
fn feed_socket(
    addr: SocketAddrV4,
    interface: Ipv4Addr,
    receive_buffer_bytes: usize,
) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.ip().is_multicast() {
        // Several subscribers on one host bind the same group and port;
        // each receives every packet.
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
    }
    // A smaller buffer than asked for is not an error: the kernel caps it.
    let _ = socket.set_recv_buffer_size(receive_buffer_bytes);
    // Binding the group address (not INADDR_ANY) keeps other groups on the
    // same port out of this socket.
    socket.bind(&SocketAddr::V4(addr).into())?;
    if addr.ip().is_multicast() {
        socket.join_multicast_v4(addr.ip(), &interface)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The networking subscriber (see the module documentation).
#[derive(Debug)]
pub struct Subscriber {
    config: SubscriberConfig,
    poll: Poll,
    events: Events,
    feed_a: mio::net::UdpSocket,
    feed_b: Option<mio::net::UdpSocket>,
    rerequest: mio::net::UdpSocket,
    arbiter: Arbiter,
    applier: Applier,
    dropper: Dropper,
    datagram: Box<[u8]>,
    /// The snapshot fetched by `join`, applied by the first `poll` (so
    /// that its events are reported).
    initial_snapshot: Option<Snapshot>,
    /// When to try a failed snapshot again.
    snapshot_retry_at: Option<Instant>,
}

impl Subscriber {
    /// Joins the feeds and, with [`Start::Snapshot`], fetches the first
    /// snapshot (an error if the snapshot service cannot be reached).
    /// Nothing is delivered before the first [`poll`](Self::poll).
    pub fn join(config: SubscriberConfig) -> io::Result<Self> {
        assert!(
            (0.0..=1.0).contains(&config.drop_share),
            "drop_share must be within 0..=1"
        );
        let poll = Poll::new()?;
        let bytes = config.receive_buffer_bytes;
        let mut feed_a =
            mio::net::UdpSocket::from_std(feed_socket(config.feed_a, config.interface, bytes)?);
        poll.registry()
            .register(&mut feed_a, TOKEN_A, Interest::READABLE)?;
        let mut feed_b = match config.feed_b {
            Some(addr) => Some(mio::net::UdpSocket::from_std(feed_socket(
                addr,
                config.interface,
                bytes,
            )?)),
            None => None,
        };
        if let Some(socket) = feed_b.as_mut() {
            poll.registry()
                .register(socket, TOKEN_B, Interest::READABLE)?;
        }
        let mut rerequest =
            mio::net::UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
        poll.registry()
            .register(&mut rerequest, TOKEN_REREQUEST, Interest::READABLE)?;

        let mut arbiter = Arbiter::new(config.arbiter);
        let initial_snapshot = match config.start {
            Start::Snapshot => Some(fetch_snapshot(config.snapshot, config.snapshot_timeout)?),
            Start::Beginning => {
                arbiter.start_from_beginning();
                None
            }
        };
        Ok(Self {
            dropper: Dropper {
                share: config.drop_share,
                state: config.drop_seed,
            },
            config,
            poll,
            events: Events::with_capacity(8),
            feed_a,
            feed_b,
            rerequest,
            arbiter,
            applier: Applier {
                books: Books::new(),
                book_events: Vec::with_capacity(8),
                stats: SubscriberStats::default(),
                out_of_step: None,
                receive_ns: 0,
            },
            datagram: vec![0; DATAGRAM_BYTES_MAX].into_boxed_slice(),
            initial_snapshot,
            snapshot_retry_at: None,
        })
    }

    /// Waits up to `timeout` for packets, handles a bounded batch of them
    /// (at most `packets_per_poll_max` per socket), sends re-requests and
    /// fetches snapshots as needed, reporting everything to `on_event`.
    /// Returns after the first batch that held packets, or at `timeout`.
    pub fn poll(
        &mut self,
        timeout: Duration,
        on_event: &mut dyn FnMut(&SubscriberEvent<'_>),
    ) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        if let Some(snapshot) = self.initial_snapshot.take() {
            self.apply_snapshot(snapshot, on_event);
        }
        loop {
            let mut packets = self.receive(Source::A, on_event)?;
            if self.feed_b.is_some() {
                packets += self.receive(Source::B, on_event)?;
            }
            packets += self.receive(Source::Rerequest, on_event)?;
            self.act(on_event)?;
            let now = Instant::now();
            if packets > 0 || now >= deadline {
                return Ok(());
            }
            let mut wake = deadline;
            if let Some(at) = self.arbiter.next_deadline() {
                wake = wake.min(at);
            }
            if let Some(at) = self.snapshot_retry_at {
                wake = wake.min(at);
            }
            match self
                .poll
                .poll(&mut self.events, Some(wake.saturating_duration_since(now)))
            {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The books as built so far.
    pub fn books(&self) -> &Books {
        &self.applier.books
    }

    /// Running totals.
    pub fn stats(&self) -> SubscriberStats {
        let arbiter = self.arbiter.stats();
        SubscriberStats {
            duplicates: arbiter.duplicates,
            gaps: arbiter.gaps,
            ..self.applier.stats
        }
    }

    /// The next sequence number to be delivered (0 while waiting for a
    /// snapshot).
    pub fn next_sequence(&self) -> u64 {
        self.arbiter.next_sequence()
    }

    /// The session being followed, once known.
    pub fn session(&self) -> Option<Session> {
        self.arbiter.session()
    }

    /// Live, with no message known to be missing: the books reflect every
    /// message the feeds have shown so far.
    pub fn is_caught_up(&self) -> bool {
        self.initial_snapshot.is_none()
            && self.applier.out_of_step.is_none()
            && self.arbiter.is_caught_up()
    }

    /// Local addresses of the feed sockets (useful with unicast feeds bound
    /// to port 0).
    pub fn feed_local_addrs(&self) -> io::Result<(SocketAddr, Option<SocketAddr>)> {
        let b = match &self.feed_b {
            Some(socket) => Some(socket.local_addr()?),
            None => None,
        };
        Ok((self.feed_a.local_addr()?, b))
    }

    /// Reads up to `packets_per_poll_max` datagrams from one socket.
    fn receive(
        &mut self,
        source: Source,
        on_event: &mut dyn FnMut(&SubscriberEvent<'_>),
    ) -> io::Result<usize> {
        let mut handled = 0;
        while handled < self.config.packets_per_poll_max {
            let socket = match source {
                Source::A => &self.feed_a,
                Source::B => match &self.feed_b {
                    Some(socket) => socket,
                    None => return Ok(handled),
                },
                Source::Rerequest => &self.rerequest,
            };
            let len = match socket.recv_from(&mut self.datagram) {
                Ok((len, _)) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // An ICMP error from an earlier re-request (server down)
                // surfaces here; the retry timer deals with it.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            handled += 1;
            self.handle_datagram(len, source, on_event);
        }
        Ok(handled)
    }

    fn handle_datagram(
        &mut self,
        len: usize,
        source: Source,
        on_event: &mut dyn FnMut(&SubscriberEvent<'_>),
    ) {
        let stats = &mut self.applier.stats;
        stats.bytes += len as u64;
        match source {
            Source::A => stats.packets_a += 1,
            Source::B => stats.packets_b += 1,
            Source::Rerequest => stats.packets_rerequest += 1,
        }
        if source != Source::Rerequest && self.dropper.should_drop() {
            stats.packets_dropped += 1;
            return;
        }
        let Ok(packet) = Packet::parse(&self.datagram[..len]) else {
            stats.packets_invalid += 1;
            return;
        };
        self.applier.receive_ns = wall_ns_since_midnight();
        let applier = &mut self.applier;
        let outcome = self
            .arbiter
            .on_packet(&packet, Instant::now(), &mut |delivery| {
                applier.deliver(delivery, on_event)
            });
        if source == Source::Rerequest {
            self.applier.stats.messages_recovered += u64::from(outcome.accepted);
        }
        if let Some(gap) = outcome.gap_opened {
            on_event(&SubscriberEvent::GapDetected(gap));
        }
    }

    /// Carries out what the arbiter asks for, and resyncs books that fell
    /// out of step.
    fn act(&mut self, on_event: &mut dyn FnMut(&SubscriberEvent<'_>)) -> io::Result<()> {
        // Each turn either sends one request (after which the arbiter waits)
        // or resyncs; two turns suffice, the bound only guards the loop.
        for _ in 0..4 {
            if let Some(reason) = self.applier.out_of_step.take() {
                self.arbiter.await_snapshot();
                self.start_resync(reason, on_event);
                continue;
            }
            match self.arbiter.poll(Instant::now()) {
                Some(Action::Rerequest(request)) => {
                    match self
                        .rerequest
                        .send_to(&request.encode(), self.config.rerequest)
                    {
                        Ok(_) => {}
                        // Lost like any datagram: the timeout retries it.
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                        Err(e) => return Err(e),
                    }
                    self.applier.stats.rerequests += 1;
                    on_event(&SubscriberEvent::RerequestSent(request));
                }
                Some(Action::Snapshot(reason)) => {
                    self.start_resync(ResyncReason::Gap(reason), on_event);
                }
                None => break,
            }
        }
        if let Some(at) = self.snapshot_retry_at
            && Instant::now() >= at
        {
            self.try_snapshot(on_event);
        }
        Ok(())
    }

    fn start_resync(
        &mut self,
        reason: ResyncReason,
        on_event: &mut dyn FnMut(&SubscriberEvent<'_>),
    ) {
        on_event(&SubscriberEvent::ResyncStarted(reason));
        self.try_snapshot(on_event);
    }

    /// Fetches and applies a snapshot; on failure, schedules another try.
    fn try_snapshot(&mut self, on_event: &mut dyn FnMut(&SubscriberEvent<'_>)) {
        self.snapshot_retry_at = None;
        match fetch_snapshot(self.config.snapshot, self.config.snapshot_timeout) {
            Ok(snapshot) => self.apply_snapshot(snapshot, on_event),
            Err(error) => {
                self.applier.stats.snapshot_failures += 1;
                on_event(&SubscriberEvent::SnapshotFailed(&error));
                self.snapshot_retry_at = Some(Instant::now() + self.config.snapshot_retry_interval);
            }
        }
    }

    /// Rebuilds the books from `snapshot` and resumes live delivery after
    /// it.
    fn apply_snapshot(
        &mut self,
        snapshot: Snapshot,
        on_event: &mut dyn FnMut(&SubscriberEvent<'_>),
    ) {
        if self.arbiter.is_retired(snapshot.session) {
            // Taken before the session the feed has moved on to: useless.
            self.stale_snapshot(snapshot.session, on_event);
            return;
        }
        let books = &mut self.applier.books;
        books.clear();
        for message in &snapshot.messages {
            if let Err(error) = books.apply(message) {
                // An inconsistent snapshot: try another one later.
                books.clear();
                self.applier.stats.snapshot_failures += 1;
                let error = io::Error::new(io::ErrorKind::InvalidData, error);
                on_event(&SubscriberEvent::SnapshotFailed(&error));
                self.snapshot_retry_at = Some(Instant::now() + self.config.snapshot_retry_interval);
                return;
            }
        }
        self.applier.stats.snapshots += 1;
        self.applier.out_of_step = None;
        on_event(&SubscriberEvent::SnapshotApplied {
            session: snapshot.session,
            next_sequence: snapshot.next_sequence,
            messages: snapshot.messages.len(),
        });
        self.applier.receive_ns = wall_ns_since_midnight();
        let applier = &mut self.applier;
        let started = self.arbiter.start_at(
            snapshot.session,
            snapshot.next_sequence,
            Instant::now(),
            &mut |delivery| applier.deliver(delivery, on_event),
        );
        // Checked above: the snapshot's session is not retired.
        debug_assert!(started, "stale snapshot started");
    }

    /// A snapshot named the session already left: reported as a failed
    /// snapshot and tried again later.
    fn stale_snapshot(&mut self, session: Session, on_event: &mut dyn FnMut(&SubscriberEvent<'_>)) {
        self.applier.stats.snapshot_failures += 1;
        let error = io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "stale snapshot of session {}, already left",
                session.as_str()
            ),
        );
        on_event(&SubscriberEvent::SnapshotFailed(&error));
        self.snapshot_retry_at = Some(Instant::now() + self.config.snapshot_retry_interval);
    }
}

#[cfg(test)]
mod tests;
