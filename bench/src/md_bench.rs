//! `exchange-bench md`: the market-data path — the publisher turning the
//! engine's events into ITCH 5.0 messages in MoldUDP64 packets, a
//! subscriber rebuilding L3 books from those packets, and the two joined by
//! UDP through real threads.
//!
//! The engine is not measured here. A seeded workload (setup included: it
//! creates the instrument and the starting book) is applied once, first,
//! and every command's header, command and events are kept in memory
//! ([`Recording`]). Then, all in one run:
//!
//! 1. **Publish.** `Publisher::applied` over every recorded command, with
//!    `Publisher::flush` after every `flush_every` commands
//!    ([`FLUSH_EVERY_COMMANDS`] by default) and at the end. A live publisher
//!    flushes when the engine has nothing more for it; flushing every few
//!    commands stands in for the engine's batches under load (and a packet
//!    of exchange-core's mix fills up in about that many commands anyway).
//!    The publisher's in-memory message log — what re-requests are answered
//!    from — is part of the cost, as it is live. Two sends:
//!    (a) the packets are only counted: encode + packetize;
//!    (b) each packet is sent with a UDP socket to a destination on this
//!    host: the multicast group [`MULTICAST_GROUP`] on 127.0.0.1 inside
//!    `netns-run` (environment `NETNS_RUN=1`), otherwise a socket the bench
//!    binds on 127.0.0.1. Nobody reads that socket during (b): the figure
//!    is the sender's cost, the kernel drops what overflows the buffer.
//! 2. **Book building.** The packets of (a), captured once beforehand
//!    (untimed), through the subscriber's loop: `Packet::parse`, then each
//!    message `Message::decode` and `Books::apply`. A decode-only pass
//!    (parse + decode, no books) in the same run is the floor. Every book
//!    built is compared, order by order, with the publisher's own view of
//!    the book (`Feed::orders`); a difference fails the command.
//! 3. **Latency.** A subscriber thread receives the packets over UDP (the
//!    transport of (b)), decodes them and applies them to books. The
//!    publisher thread replays the recording from the start, open loop at
//!    `rate_per_sec` commands per second for `latency_duration` (or until
//!    the recording ends), re-stamping each header with the wall clock just
//!    before `applied`. It flushes as a live publisher does: when its input
//!    is drained (the next command is not due yet), and at the latest every
//!    `flush_every` commands when it has fallen behind.
//!    Latency of a message = the subscriber's wall clock when its packet
//!    arrived minus the message's ITCH timestamp (both nanoseconds since
//!    midnight UTC). How late the publisher started each command against
//!    its schedule is reported beside it, so stalls of the publisher show.
//!    When no message was lost, the subscriber's books must equal the
//!    publisher's feed.
//!
//! Throughput figures are the median of `runs` runs, with min and max; the
//! four throughput passes are interleaved run by run so drift hits all alike.

use crate::machine::Machine;
use crate::market::EngineDriver;
use crate::workload::{Workload, WorkloadKind, generate};
use engine::{Command, CommandHeader, EngineConfig, Event, Status};
use hdrhistogram::Histogram;
use marketdata::book::{BookError, Books};
use marketdata::feed::Feed;
use marketdata::itch::{ItchError, Message};
use marketdata::moldudp64::{DEFAULT_PAYLOAD_MAX, MoldError, Packet, PacketHeader};
use marketdata::publisher::Publisher;
use serde::Serialize;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Commands between two flushes in the publish passes, by default.
pub const FLUSH_EVERY_COMMANDS: u32 = 16;

/// The multicast group and port of the feed inside `netns-run`.
pub const MULTICAST_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 1), 26_400);

/// The target for publishing, ITCH messages per second.
pub const PUBLISH_TARGET_MESSAGES_PER_SEC: f64 = 5_000_000.0;

/// The target for book building, ITCH messages per second.
pub const BOOK_TARGET_MESSAGES_PER_SEC: f64 = 10_000_000.0;

/// The receiving socket's buffer (the kernel caps it at `rmem_max`): room
/// for a few milliseconds of the subscriber being descheduled.
const RECEIVE_BUFFER_BYTES: usize = 4 << 20;

/// How long the subscriber waits for a packet before looking whether the
/// publisher is done.
const RECEIVE_TIMEOUT: Duration = Duration::from_millis(100);

/// The largest datagram the subscriber reads.
const DATAGRAM_BYTES_MAX: usize = 65_536;

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// How the packets of the UDP passes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// To a socket the bench binds on 127.0.0.1.
    Unicast,
    /// To [`MULTICAST_GROUP`] on the interface 127.0.0.1 (needs a multicast
    /// route: `netns-run` makes one).
    Multicast,
}

impl Transport {
    /// Multicast when run inside `netns-run` (`NETNS_RUN=1`), else unicast.
    pub fn from_environment() -> Transport {
        if std::env::var_os("NETNS_RUN").is_some_and(|value| value == "1") {
            Transport::Multicast
        } else {
            Transport::Unicast
        }
    }
}

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct MdBenchConfig {
    pub workload: WorkloadKind,
    pub seed: u64,
    /// Measured commands of the workload (its setup comes on top).
    pub commands: usize,
    /// Repetitions of each throughput pass; figures are their median.
    pub runs: u32,
    /// Commands between two flushes in the publish passes.
    pub flush_every: u32,
    /// The publisher's largest packet, header included.
    pub payload_max: usize,
    /// The offered rate of the latency phase, commands per second.
    pub rate_per_sec: u64,
    /// The length of the latency phase (shorter if the recording ends).
    pub latency_duration: Duration,
    pub transport: Transport,
}

impl MdBenchConfig {
    /// The defaults of `exchange-bench md` (`quick`: those of `--quick`).
    pub fn new(quick: bool) -> MdBenchConfig {
        MdBenchConfig {
            workload: WorkloadKind::ExchangeCore,
            seed: 1,
            commands: if quick { 20_000 } else { 1_000_000 },
            runs: if quick { 2 } else { 5 },
            flush_every: FLUSH_EVERY_COMMANDS,
            payload_max: DEFAULT_PAYLOAD_MAX,
            rate_per_sec: 100_000,
            latency_duration: Duration::from_secs_f64(if quick { 0.3 } else { 3.0 }),
            transport: Transport::from_environment(),
        }
    }
}

/// Why the measurement failed.
#[derive(Debug)]
pub enum MdBenchError {
    /// A configuration value out of range.
    Config(&'static str),
    /// A socket could not be set up or used.
    Io {
        what: &'static str,
        error: std::io::Error,
    },
    /// A setup command of the workload was not applied.
    Setup { index: usize, status: Status },
    /// A packet did not parse (or `payload_max` is out of range).
    Packet(MoldError),
    /// A message did not decode.
    Message { sequence: u64, error: ItchError },
    /// A message did not apply to the books.
    Book { sequence: u64, error: BookError },
    /// The subscriber's books differ from the publisher's feed.
    Mismatch(String),
    /// The subscriber thread panicked.
    SubscriberPanicked,
}

impl fmt::Display for MdBenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MdBenchError::Config(what) => write!(f, "configuration: {what}"),
            MdBenchError::Io { what, error } => write!(f, "{what}: {error}"),
            MdBenchError::Setup { index, status } => {
                write!(f, "setup command {index} was not applied: {status:?}")
            }
            MdBenchError::Packet(error) => write!(f, "packet: {error}"),
            MdBenchError::Message { sequence, error } => {
                write!(f, "message {sequence} does not decode: {error}")
            }
            MdBenchError::Book { sequence, error } => {
                write!(f, "message {sequence} does not apply to the books: {error}")
            }
            MdBenchError::Mismatch(what) => {
                write!(f, "the subscriber's books differ from the feed: {what}")
            }
            MdBenchError::SubscriberPanicked => f.write_str("the subscriber thread panicked"),
        }
    }
}

impl std::error::Error for MdBenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MdBenchError::Io { error, .. } => Some(error),
            MdBenchError::Packet(error) => Some(error),
            MdBenchError::Message { error, .. } => Some(error),
            MdBenchError::Book { error, .. } => Some(error),
            _ => None,
        }
    }
}

fn io_error(what: &'static str) -> impl FnOnce(std::io::Error) -> MdBenchError {
    move |error| MdBenchError::Io { what, error }
}

/// Percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MdPercentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl MdPercentiles {
    fn of(histogram: &Histogram<u64>) -> MdPercentiles {
        MdPercentiles {
            p50: histogram.value_at_quantile(0.50),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// One throughput pass over the runs: the median run, with min and max.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RateFigures {
    /// ITCH messages per second of the median run.
    pub messages_per_sec: f64,
    pub messages_per_sec_min: f64,
    pub messages_per_sec_max: f64,
    /// MoldUDP64 packets and their bytes per second, median run.
    pub packets_per_sec: f64,
    pub bytes_per_sec: f64,
    /// `1e9 / messages_per_sec`.
    pub ns_per_message: f64,
    /// The median run's length.
    pub seconds: f64,
}

impl RateFigures {
    /// From each run's seconds; every run handles the same messages.
    fn of(seconds: &mut [f64], messages: u64, packets: u64, bytes: u64) -> RateFigures {
        assert!(!seconds.is_empty(), "at least one run");
        seconds.sort_unstable_by(f64::total_cmp);
        let median = seconds[seconds.len() / 2].max(1e-9);
        let fastest = seconds[0].max(1e-9);
        let slowest = seconds[seconds.len() - 1].max(1e-9);
        // Reporting only: counts far below 2^53 convert exactly.
        let rate = |count: u64, seconds: f64| count as f64 / seconds;
        RateFigures {
            messages_per_sec: rate(messages, median),
            messages_per_sec_min: rate(messages, slowest),
            messages_per_sec_max: rate(messages, fastest),
            packets_per_sec: rate(packets, median),
            bytes_per_sec: rate(bytes, median),
            ns_per_message: median * 1e9 / (messages.max(1) as f64),
            seconds: median,
        }
    }
}

/// The engine-to-subscriber phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LatencyReport {
    /// The offered rate, commands per second.
    pub rate_per_sec: u64,
    /// Commands published (the recording from its start).
    pub commands: u64,
    /// From the first command's schedule to the last packet's send.
    pub seconds: f64,
    /// What the publisher sent.
    pub messages_sent: u64,
    pub packets_sent: u64,
    pub send_errors: u64,
    /// What the subscriber received and decoded.
    pub messages_received: u64,
    pub packets_received: u64,
    /// `messages_sent - messages_received`.
    pub lost_messages: u64,
    /// Messages the books rejected (only after a loss).
    pub book_errors: u64,
    /// Receive wall clock minus ITCH timestamp, every message received.
    pub latency_ns: MdPercentiles,
    /// How late each command started against its schedule.
    pub publisher_lag_ns: MdPercentiles,
    /// Whether the subscriber's books equal the publisher's feed (compared
    /// only when nothing was lost; a difference then fails the command).
    pub books_match_feed: bool,
}

/// One target of the issue.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetReport {
    pub name: &'static str,
    pub target_messages_per_sec: f64,
    pub measured_messages_per_sec: f64,
    /// measured / target.
    pub ratio: f64,
    pub met: bool,
}

impl TargetReport {
    fn new(name: &'static str, target: f64, measured: f64) -> TargetReport {
        TargetReport {
            name,
            target_messages_per_sec: target,
            measured_messages_per_sec: measured,
            ratio: measured / target,
            met: measured >= target,
        }
    }
}

/// The whole measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MdBenchReport {
    pub workload: &'static str,
    pub seed: u64,
    /// Measured commands of the workload, and its setup commands; both are
    /// published.
    pub commands: u64,
    pub setup_commands: u64,
    /// Engine events recorded, and the seconds the recording took (the
    /// engine's work, untimed here).
    pub events: u64,
    pub recording_seconds: f64,
    pub runs: u32,
    pub flush_every_commands: u32,
    pub payload_max: usize,
    /// Where the UDP passes send, in words.
    pub transport: String,
    /// What one publish pass produces.
    pub messages: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Resting orders at the end (publisher's feed = subscriber's books).
    pub resting_orders_end: u64,
    /// (a) encode + packetize, packets only counted.
    pub publish: RateFigures,
    /// (b) the same, each packet sent over UDP.
    pub publish_udp: RateFigures,
    pub publish_udp_send_errors: u64,
    /// Parse + decode + `Books::apply`.
    pub book_building: RateFigures,
    /// Parse + decode only.
    pub decode_only: RateFigures,
    /// Decode-only rate over book-building rate: what the books cost.
    pub book_building_slowdown: f64,
    pub latency: LatencyReport,
    pub targets: Vec<TargetReport>,
}

/// The engine's output for a workload, recorded once: command `i` has
/// `headers[i]`, `commands[i]` and `events[event_ends[i - 1]..event_ends[i]]`.
#[derive(Debug)]
struct Recording {
    headers: Vec<CommandHeader>,
    commands: Vec<Command>,
    event_ends: Vec<usize>,
    events: Vec<Event>,
}

impl Recording {
    /// Applies the setup and the measured commands to a fresh engine.
    fn record(workload: &Workload) -> Result<Recording, MdBenchError> {
        let mut driver = EngineDriver::new(EngineConfig::default())
            .map_err(|_| MdBenchError::Config("the engine's default configuration"))?;
        let total = workload.setup.len() + workload.commands.len();
        let mut recording = Recording {
            headers: Vec::with_capacity(total),
            commands: Vec::with_capacity(total),
            event_ends: Vec::with_capacity(total),
            events: Vec::with_capacity(total * 3),
        };
        for (index, command) in workload.setup.iter().enumerate() {
            let status = driver.apply(command);
            if status != Status::Applied {
                return Err(MdBenchError::Setup { index, status });
            }
            recording.push(&driver, command);
        }
        for command in &workload.commands {
            // Rejections are recorded too: the feed ignores their events.
            driver.apply(command);
            recording.push(&driver, command);
        }
        Ok(recording)
    }

    fn push(&mut self, driver: &EngineDriver, command: &Command) {
        self.headers
            .push(crate::market::header(driver.last_sequence()));
        self.commands.push(*command);
        self.events.extend_from_slice(driver.events());
        self.event_ends.push(self.events.len());
    }

    fn len(&self) -> usize {
        self.commands.len()
    }

    #[inline]
    fn command(&self, index: usize) -> (CommandHeader, &Command, &[Event]) {
        let start = if index == 0 {
            0
        } else {
            self.event_ends[index - 1]
        };
        (
            self.headers[index],
            &self.commands[index],
            &self.events[start..self.event_ends[index]],
        )
    }
}

/// Packets kept back to back in one buffer.
#[derive(Debug, Default)]
struct CapturedPackets {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl CapturedPackets {
    fn push(&mut self, packet: &[u8]) {
        self.bytes.extend_from_slice(packet);
        self.ends.push(self.bytes.len());
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }
}

/// One publish pass: a fresh publisher over the whole recording, flushed
/// every `flush_every` commands and at the end. The publisher is returned
/// (its drop is not timed) with the pass's length.
fn publish(
    recording: &Recording,
    config: &MdBenchConfig,
    send: &mut dyn FnMut(&[u8]),
) -> (Publisher, Duration) {
    let mut publisher =
        Publisher::new(config.payload_max).expect("payload_max was checked before the passes");
    let flush_every = config.flush_every as usize;
    let started = Instant::now();
    for index in 0..recording.len() {
        let (header, command, events) = recording.command(index);
        publisher.applied(header, command, events, send);
        if (index + 1) % flush_every == 0 {
            publisher.flush(send);
        }
    }
    publisher.flush(send);
    (publisher, started.elapsed())
}

/// The subscriber's step: one packet parsed, each message decoded, handed
/// to `each` and applied to `books`. Returns the packet's header.
#[inline]
fn apply_packet(
    bytes: &[u8],
    books: &mut Books,
    mut each: impl FnMut(&Message),
) -> Result<PacketHeader, MdBenchError> {
    let packet = Packet::parse(bytes).map_err(MdBenchError::Packet)?;
    for (sequence, block) in packet.messages() {
        let message =
            Message::decode(block).map_err(|error| MdBenchError::Message { sequence, error })?;
        each(&message);
        books
            .apply(&message)
            .map_err(|error| MdBenchError::Book { sequence, error })?;
    }
    Ok(*packet.header())
}

/// Book building over captured packets: the books and the pass's length.
fn build_books(packets: &CapturedPackets) -> Result<(Books, u64, Duration), MdBenchError> {
    let mut books = Books::new();
    let mut messages = 0u64;
    let started = Instant::now();
    for packet in packets.iter() {
        let header = apply_packet(packet, &mut books, |_| {})?;
        messages += u64::from(header.message_count());
    }
    Ok((books, messages, started.elapsed()))
}

/// The floor of book building: parse and decode only.
fn decode_only(packets: &CapturedPackets) -> Result<(u64, Duration), MdBenchError> {
    let mut messages = 0u64;
    let started = Instant::now();
    for bytes in packets.iter() {
        let packet = Packet::parse(bytes).map_err(MdBenchError::Packet)?;
        for (sequence, block) in packet.messages() {
            let message = Message::decode(block)
                .map_err(|error| MdBenchError::Message { sequence, error })?;
            // Keeps the decoded message alive as the books would use it.
            std::hint::black_box(&message);
            messages += 1;
        }
    }
    Ok((messages, started.elapsed()))
}

/// The books must hold exactly the orders the feed published, with the
/// same book, side, price and open shares.
fn compare_books(feed: &Feed, books: &Books) -> Result<u64, MdBenchError> {
    let mut orders = 0u64;
    for (order_id, published) in feed.orders() {
        orders += 1;
        let Some(order) = books.order(order_id.0) else {
            return Err(MdBenchError::Mismatch(format!(
                "order {} is missing",
                order_id.0
            )));
        };
        let expected = (
            published.locate,
            published.side,
            published.price,
            published.shares,
        );
        let actual = (order.locate, order.side, order.price, order.shares);
        if expected != actual {
            return Err(MdBenchError::Mismatch(format!(
                "order {}: feed {expected:?}, books {actual:?}",
                order_id.0
            )));
        }
    }
    if orders != books.order_count() as u64 {
        return Err(MdBenchError::Mismatch(format!(
            "{} orders in the books, {orders} in the feed",
            books.order_count()
        )));
    }
    Ok(orders)
}

/// A sender and a receiver on this host.
#[derive(Debug)]
struct UdpLink {
    sender: UdpSocket,
    receiver: UdpSocket,
    description: String,
}

impl UdpLink {
    fn open(transport: Transport) -> Result<UdpLink, MdBenchError> {
        use socket2::{Domain, Protocol, Socket, Type};
        let new_socket = || {
            Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
                .map_err(io_error("creating a UDP socket"))
        };
        let receiver = new_socket()?;
        receiver
            .set_recv_buffer_size(RECEIVE_BUFFER_BYTES)
            .map_err(io_error("sizing the receive buffer"))?;
        let sender = new_socket()?;
        let destination = match transport {
            Transport::Unicast => {
                receiver
                    .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
                    .map_err(io_error("binding the receiver on 127.0.0.1"))?;
                receiver
                    .local_addr()
                    .map_err(io_error("the receiver's address"))?
                    .as_socket()
                    .ok_or(MdBenchError::Config("the receiver is not an IP socket"))?
            }
            Transport::Multicast => {
                // Several subscribers may share the group's port.
                receiver
                    .set_reuse_address(true)
                    .map_err(io_error("SO_REUSEADDR"))?;
                receiver
                    .bind(&SocketAddr::V4(MULTICAST_GROUP).into())
                    .map_err(io_error("binding the receiver to the group's port"))?;
                receiver
                    .join_multicast_v4(MULTICAST_GROUP.ip(), &Ipv4Addr::LOCALHOST)
                    .map_err(io_error("joining the multicast group on 127.0.0.1"))?;
                sender
                    .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
                    .map_err(io_error("IP_MULTICAST_IF 127.0.0.1"))?;
                sender
                    .set_multicast_loop_v4(true)
                    .map_err(io_error("IP_MULTICAST_LOOP"))?;
                sender
                    .set_multicast_ttl_v4(1)
                    .map_err(io_error("IP_MULTICAST_TTL"))?;
                SocketAddr::V4(MULTICAST_GROUP)
            }
        };
        sender
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .map_err(io_error("binding the sender on 127.0.0.1"))?;
        sender
            .connect(&destination.into())
            .map_err(io_error("connecting the sender"))?;
        let receiver: UdpSocket = receiver.into();
        receiver
            .set_read_timeout(Some(RECEIVE_TIMEOUT))
            .map_err(io_error("the receive timeout"))?;
        let description = match transport {
            Transport::Unicast => {
                format!("unicast to {destination} (a socket bound by the bench)")
            }
            Transport::Multicast => {
                format!("multicast to {destination} on 127.0.0.1 (NETNS_RUN=1)")
            }
        };
        Ok(UdpLink {
            sender: sender.into(),
            receiver,
            description,
        })
    }
}

/// Nanoseconds since the Unix epoch, from the wall clock.
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// What the subscriber thread saw.
#[derive(Debug)]
struct SubscriberOutcome {
    books: Books,
    latency: Histogram<u64>,
    messages: u64,
    packets: u64,
    book_errors: u64,
}

/// The subscriber thread: receive, decode, apply, until the End of Session
/// packet (or, should it be lost, a quiet receive timeout after `done`).
fn subscribe(receiver: &UdpSocket, done: &AtomicBool) -> Result<SubscriberOutcome, MdBenchError> {
    let mut outcome = SubscriberOutcome {
        books: Books::new(),
        latency: new_histogram(),
        messages: 0,
        packets: 0,
        book_errors: 0,
    };
    let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX];
    let mut next_sequence = 1u64;
    loop {
        let length = match receiver.recv(&mut buffer) {
            Ok(length) => length,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if done.load(Ordering::Acquire) {
                    return Ok(outcome);
                }
                continue;
            }
            Err(error) => {
                return Err(MdBenchError::Io {
                    what: "receiving",
                    error,
                });
            }
        };
        let received_ns = unix_ns() % DAY_NS;
        let bytes = &buffer[..length];
        let header = Packet::parse(bytes).map_err(MdBenchError::Packet)?;
        let header = *header.header();
        if header.is_end_of_session() {
            return Ok(outcome);
        }
        if header.sequence < next_sequence {
            // A duplicate (or another publisher on the group): not ours.
            continue;
        }
        next_sequence = header.next_sequence();
        outcome.packets += 1;
        let histogram = &mut outcome.latency;
        let mut record = |message: &Message| {
            let stamped_ns = message.header().timestamp.nanos();
            // Modulo a day: a packet that crosses midnight stays positive.
            let latency_ns = (received_ns + DAY_NS - stamped_ns) % DAY_NS;
            histogram.saturating_record(latency_ns.max(1));
        };
        match apply_packet(bytes, &mut outcome.books, &mut record) {
            Ok(_) => outcome.messages += u64::from(header.message_count()),
            // After a loss the books cannot follow; counted, not fatal.
            Err(MdBenchError::Book { .. }) => outcome.book_errors += 1,
            Err(error) => return Err(error),
        }
    }
}

/// The latency phase (see the module documentation).
fn measure_latency(
    recording: &Recording,
    config: &MdBenchConfig,
) -> Result<(LatencyReport, String), MdBenchError> {
    let link = UdpLink::open(config.transport)?;
    let UdpLink {
        sender,
        receiver,
        description,
    } = link;
    let done = Arc::new(AtomicBool::new(false));
    let subscriber = {
        let done = Arc::clone(&done);
        std::thread::Builder::new()
            .name("md-subscriber".to_owned())
            .spawn(move || subscribe(&receiver, &done))
            .map_err(io_error("spawning the subscriber thread"))?
    };
    let wanted = (config.latency_duration.as_secs_f64() * config.rate_per_sec as f64).ceil();
    // Reporting only: the float is a small positive count.
    let commands = (wanted as usize).clamp(1, recording.len());
    let mut publisher =
        Publisher::new(config.payload_max).expect("payload_max was checked before the passes");
    let mut lag = new_histogram();
    let mut send_errors = 0u64;
    let mut send = |packet: &[u8]| {
        if sender.send(packet).is_err() {
            send_errors += 1;
        }
    };
    let rate_per_sec = u128::from(config.rate_per_sec);
    let schedule = |index: usize| {
        Duration::from_nanos(
            u64::try_from(index as u128 * 1_000_000_000 / rate_per_sec).unwrap_or(u64::MAX),
        )
    };
    let flush_every = config.flush_every as usize;
    let mut unflushed = 0usize;
    let started = Instant::now();
    for index in 0..commands {
        let scheduled = schedule(index);
        let mut now = started.elapsed();
        while now < scheduled {
            std::hint::spin_loop();
            now = started.elapsed();
        }
        lag.saturating_record(
            u64::try_from((now - scheduled).as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        let (mut header, command, events) = recording.command(index);
        header.timestamp_ns = unix_ns();
        publisher.applied(header, command, events, &mut send);
        unflushed += 1;
        // As live: flush once the input is drained (the next command is
        // not due yet), and at the latest every `flush_every` commands.
        if unflushed >= flush_every || started.elapsed() < schedule(index + 1) {
            publisher.flush(&mut send);
            unflushed = 0;
        }
    }
    publisher.flush(&mut send);
    let seconds = started.elapsed().as_secs_f64();
    let mut end = Vec::new();
    publisher.end_of_session(&mut end);
    send(&end);
    done.store(true, Ordering::Release);
    let outcome = subscriber
        .join()
        .map_err(|_| MdBenchError::SubscriberPanicked)??;
    let stats = publisher.stats();
    let lost_messages = stats.messages.saturating_sub(outcome.messages);
    let books_match_feed = if lost_messages == 0 && outcome.book_errors == 0 {
        compare_books(publisher.feed(), &outcome.books)?;
        true
    } else {
        false
    };
    let report = LatencyReport {
        rate_per_sec: config.rate_per_sec,
        commands: commands as u64,
        seconds,
        messages_sent: stats.messages,
        packets_sent: stats.packets,
        send_errors,
        messages_received: outcome.messages,
        packets_received: outcome.packets,
        lost_messages,
        book_errors: outcome.book_errors,
        latency_ns: MdPercentiles::of(&outcome.latency),
        publisher_lag_ns: MdPercentiles::of(&lag),
        books_match_feed,
    };
    Ok((report, description))
}

/// Each run's seconds of the four throughput passes.
#[derive(Debug, Default)]
struct PassSeconds {
    publish: Vec<f64>,
    publish_udp: Vec<f64>,
    book_building: Vec<f64>,
    decode_only: Vec<f64>,
}

/// Measure the market-data path; `progress` hears of each step.
pub fn measure_md(
    config: &MdBenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<MdBenchReport, MdBenchError> {
    if config.runs == 0 || config.commands == 0 || config.flush_every == 0 {
        return Err(MdBenchError::Config(
            "runs, commands and flush_every must be positive",
        ));
    }
    if config.rate_per_sec == 0 || config.latency_duration.is_zero() {
        return Err(MdBenchError::Config(
            "the latency phase needs a rate and a duration",
        ));
    }
    Publisher::new(config.payload_max).map_err(MdBenchError::Packet)?;

    progress(&format!(
        "{}: generating {} commands from seed {}",
        config.workload, config.commands, config.seed
    ));
    let workload = generate(config.workload, config.seed, config.commands);
    progress("recording the engine's events (untimed)");
    let recording_started = Instant::now();
    let recording = Recording::record(&workload)?;
    let recording_seconds = recording_started.elapsed().as_secs_f64();

    // The capture pass: the packets book building reads, the reference
    // counts, and a warm-up of the publisher.
    progress("capturing the packets (untimed)");
    let mut captured = CapturedPackets::default();
    let (reference, _) = publish(&recording, config, &mut |packet| captured.push(packet));
    let stats = reference.stats();
    let resting_orders_end = reference.feed().orders().count() as u64;

    let link = UdpLink::open(config.transport)?;
    let mut seconds = PassSeconds::default();
    let mut udp_send_errors = 0u64;
    for run in 1..=config.runs {
        progress(&format!(
            "run {run}/{}: publish, publish + UDP, books, decode",
            config.runs
        ));
        let mut bytes = 0u64;
        let (publisher, elapsed) = publish(&recording, config, &mut |packet| {
            bytes += packet.len() as u64;
        });
        assert_eq!(
            (publisher.stats(), bytes),
            (stats, stats.bytes),
            "a deterministic publisher"
        );
        seconds.publish.push(elapsed.as_secs_f64());
        drop(publisher);

        let (publisher, elapsed) = publish(&recording, config, &mut |packet| {
            if link.sender.send(packet).is_err() {
                udp_send_errors += 1;
            }
        });
        assert_eq!(publisher.stats(), stats, "a deterministic publisher");
        seconds.publish_udp.push(elapsed.as_secs_f64());
        drop(publisher);

        let (books, messages, elapsed) = build_books(&captured)?;
        assert_eq!(messages, stats.messages, "every message applied");
        seconds.book_building.push(elapsed.as_secs_f64());
        compare_books(reference.feed(), &books)?;
        drop(books);

        let (messages, elapsed) = decode_only(&captured)?;
        assert_eq!(messages, stats.messages, "every message decoded");
        seconds.decode_only.push(elapsed.as_secs_f64());
    }
    drop(link);

    progress(&format!(
        "latency: {} commands/s for {:.1} s through a subscriber thread",
        config.rate_per_sec,
        config.latency_duration.as_secs_f64()
    ));
    let (latency, transport) = measure_latency(&recording, config)?;

    let figures =
        |pass: &mut Vec<f64>| RateFigures::of(pass, stats.messages, stats.packets, stats.bytes);
    let publish_figures = figures(&mut seconds.publish);
    let publish_udp = figures(&mut seconds.publish_udp);
    let book_building = figures(&mut seconds.book_building);
    let decode_only = figures(&mut seconds.decode_only);
    let targets = vec![
        TargetReport::new(
            "publishing (encode + packetize)",
            PUBLISH_TARGET_MESSAGES_PER_SEC,
            publish_figures.messages_per_sec,
        ),
        TargetReport::new(
            "publishing + UDP send",
            PUBLISH_TARGET_MESSAGES_PER_SEC,
            publish_udp.messages_per_sec,
        ),
        TargetReport::new(
            "book building",
            BOOK_TARGET_MESSAGES_PER_SEC,
            book_building.messages_per_sec,
        ),
    ];
    Ok(MdBenchReport {
        workload: config.workload.name(),
        seed: config.seed,
        commands: workload.commands.len() as u64,
        setup_commands: workload.setup.len() as u64,
        events: recording.events.len() as u64,
        recording_seconds,
        runs: config.runs,
        flush_every_commands: config.flush_every,
        payload_max: config.payload_max,
        transport,
        messages: stats.messages,
        packets: stats.packets,
        bytes: stats.bytes,
        resting_orders_end,
        publish: publish_figures,
        publish_udp,
        publish_udp_send_errors: udp_send_errors,
        book_building,
        decode_only,
        book_building_slowdown: decode_only.messages_per_sec
            / book_building.messages_per_sec.max(1e-9),
        latency,
        targets,
    })
}

/// The JSON of `exchange-bench md --json`.
#[derive(Debug, Serialize)]
pub(crate) struct MdJson<'a> {
    #[serde(flatten)]
    pub(crate) report: &'a MdBenchReport,
    pub(crate) machine: &'a Machine,
    pub(crate) command: &'a str,
}

impl MdBenchReport {
    /// A table for people.
    pub fn table(&self, machine: &Machine, command: &str) -> String {
        let mut text = format!(
            "exchange-bench md: ITCH 5.0 in MoldUDP64 — publishing, book building, \
             engine-to-subscriber latency\n\
             machine: {machine}\n\
             command: {command}\n\
             workload {} (seed {}): {} measured + {} setup commands, {} engine events \
             (recorded once, untimed, {:.2} s)\n\
             every pass: {} ITCH messages in {} packets, {} bytes (payload_max {}, flush every \
             {} commands); median of {} runs\n\n",
            self.workload,
            self.seed,
            grouped(self.commands),
            grouped(self.setup_commands),
            grouped(self.events),
            self.recording_seconds,
            grouped(self.messages),
            grouped(self.packets),
            grouped(self.bytes),
            self.payload_max,
            self.flush_every_commands,
            self.runs,
        );
        text.push_str(&format!(
            "{:<36} {:>12} {:>27} {:>11} {:>8} {:>7}\n",
            "pass", "messages/s", "min .. max messages/s", "packets/s", "MB/s", "ns/msg"
        ));
        for (name, figures) in [
            ("publish: encode + packetize", &self.publish),
            ("publish + UDP send", &self.publish_udp),
            ("books: parse + decode + apply", &self.book_building),
            ("decode only: parse + decode", &self.decode_only),
        ] {
            text.push_str(&format!(
                "{name:<36} {:>12} {:>27} {:>11} {:>8.1} {:>7.1}\n",
                rate(figures.messages_per_sec),
                format!(
                    "{} .. {}",
                    rate(figures.messages_per_sec_min),
                    rate(figures.messages_per_sec_max)
                ),
                rate(figures.packets_per_sec),
                figures.bytes_per_sec / 1e6,
                figures.ns_per_message,
            ));
        }
        text.push_str(&format!(
            "\nUDP: {}; send errors {}\n\
             books: decode alone is {:.2}x as fast as book building; {} resting orders at \
             the end, the same as the feed's (checked every run)\n",
            self.transport,
            self.publish_udp_send_errors,
            self.book_building_slowdown,
            grouped(self.resting_orders_end),
        ));
        text.push_str(&self.latency.table());
        text.push_str("\ntargets (the issue's):\n");
        for target in &self.targets {
            text.push_str(&format!(
                "  {:<34} >= {:>10}/s: {:>12}/s = {:.2}x  {}\n",
                target.name,
                rate(target.target_messages_per_sec),
                rate(target.measured_messages_per_sec),
                target.ratio,
                if target.met { "met" } else { "MISSED" },
            ));
        }
        text.push_str(
            "\npublish passes: one thread, the engine's events recorded beforehand; the \
             publisher keeps every message in its in-memory re-request log, as live.\n\
             The UDP receiver is not read during the publish + UDP pass (sender cost only).",
        );
        text
    }
}

impl LatencyReport {
    fn table(&self) -> String {
        format!(
            "\nlatency, engine to subscriber (wall clock at receipt - ITCH timestamp), {} \
             commands at {}/s open loop, flushed when drained, {:.2} s:\n  \
             ns: p50 {}  p99 {}  p99.9 {}  max {}\n  \
             publisher lag behind schedule, ns: p50 {}  p99 {}  max {}\n  \
             sent {} messages in {} packets ({} send errors); received {} in {} packets; \
             lost {}; books {}\n  \
             note: 2 threads on a shared machine — the latency includes scheduling (and the \
             wake-up of the blocked subscriber), not only the code path.\n",
            grouped(self.commands),
            grouped(self.rate_per_sec),
            self.seconds,
            grouped(self.latency_ns.p50),
            grouped(self.latency_ns.p99),
            grouped(self.latency_ns.p999),
            grouped(self.latency_ns.max),
            grouped(self.publisher_lag_ns.p50),
            grouped(self.publisher_lag_ns.p99),
            grouped(self.publisher_lag_ns.max),
            grouped(self.messages_sent),
            grouped(self.packets_sent),
            self.send_errors,
            grouped(self.messages_received),
            grouped(self.packets_received),
            grouped(self.lost_messages),
            if self.books_match_feed {
                "equal the feed's".to_owned()
            } else {
                format!(
                    "not compared ({} book errors after the loss)",
                    self.book_errors
                )
            },
        )
    }
}

fn grouped(value: u64) -> String {
    crate::cli::grouped(value)
}

fn rate(value: f64) -> String {
    // Reporting only: a rate rounded to a whole number per second.
    grouped(value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick_config() -> MdBenchConfig {
        MdBenchConfig {
            commands: 3_000,
            runs: 2,
            // Enough to play the whole recording (setup included) in 0.2 s.
            rate_per_sec: 50_000,
            latency_duration: Duration::from_millis(300),
            // Fixed: a multicast group is shared with whatever else runs.
            transport: Transport::Unicast,
            ..MdBenchConfig::new(true)
        }
    }

    #[test]
    fn a_quick_run_measures_and_checks_the_books() {
        let report = measure_md(&quick_config(), |_| {}).unwrap();
        assert!(report.messages > report.commands, "{report:?}");
        assert!(report.packets > 0 && report.bytes > report.messages);
        for figures in [
            &report.publish,
            &report.publish_udp,
            &report.book_building,
            &report.decode_only,
        ] {
            assert!(figures.messages_per_sec > 0.0, "{figures:?}");
            assert!(figures.messages_per_sec_min <= figures.messages_per_sec);
            assert!(figures.messages_per_sec <= figures.messages_per_sec_max);
            assert!(figures.packets_per_sec > 0.0 && figures.ns_per_message > 0.0);
        }
        assert!(report.resting_orders_end > 0);
        let latency = &report.latency;
        assert_eq!(latency.send_errors, 0, "{latency:?}");
        assert_eq!(latency.lost_messages, 0, "{latency:?}");
        assert!(latency.books_match_feed, "{latency:?}");
        assert!(latency.messages_received > 0 && latency.latency_ns.p50 >= 1);
        assert!(latency.latency_ns.p50 <= latency.latency_ns.max);
        assert_eq!(report.targets.len(), 3);

        let machine = Machine::detect();
        let json = serde_json::to_string(&MdJson {
            report: &report,
            machine: &machine,
            command: "x",
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for key in [
            "messages",
            "publish",
            "book_building",
            "latency",
            "targets",
            "machine",
        ] {
            assert!(value.get(key).is_some(), "{key} missing from {json}");
        }
        assert!(value["latency"]["latency_ns"]["p999"].is_u64(), "{json}");
        let table = report.table(&machine, "x");
        assert!(
            table.contains("book building") && table.contains("p99.9"),
            "{table}"
        );
    }

    #[test]
    fn books_that_differ_from_the_feed_are_caught() {
        let config = quick_config();
        let workload = generate(config.workload, config.seed, 500);
        let recording = Recording::record(&workload).unwrap();
        let mut captured = CapturedPackets::default();
        let (publisher, _) = publish(&recording, &config, &mut |packet| captured.push(packet));
        let (mut books, messages, _) = build_books(&captured).unwrap();
        assert_eq!(messages, publisher.stats().messages);
        let orders = compare_books(publisher.feed(), &books).unwrap();
        assert!(orders > 0);
        // Drop the last packet: the books miss its changes.
        let mut short = CapturedPackets::default();
        let packets: Vec<&[u8]> = captured.iter().collect();
        for packet in &packets[..packets.len() - 1] {
            short.push(packet);
        }
        books = build_books(&short).unwrap().0;
        assert!(compare_books(publisher.feed(), &books).is_err());
    }

    #[test]
    fn rates_are_the_median_run() {
        let figures = RateFigures::of(&mut [2.0, 1.0, 4.0], 100, 10, 1_000);
        assert_eq!(figures.messages_per_sec, 50.0);
        assert_eq!(
            (figures.messages_per_sec_min, figures.messages_per_sec_max),
            (25.0, 100.0)
        );
        assert_eq!(
            (figures.packets_per_sec, figures.bytes_per_sec),
            (5.0, 500.0)
        );
        assert_eq!(figures.ns_per_message, 2e7);
    }
}
