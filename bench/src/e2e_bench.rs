//! `exchange-bench e2e`: order entry end to end over loopback — OUCH 5.0
//! Enter Order in, Order Accepted out, through SoupBinTCP 4.0 and the
//! whole server (gateway thread, ring, sequencer and journal, engine, ring,
//! gateway thread) — against a plain TCP echo of the same message sizes,
//! measured in the same run, as the floor.
//!
//! # What runs
//!
//! 1. **Echo floor** (always, first, before any server is started so that
//!    an idle server's threads do not disturb it). An echo server thread
//!    in this process answers every SoupBinTCP frame it reads (the client's
//!    Enter Order frames, [`ENTER_ORDER_FRAME_BYTES`]) with one Sequenced
//!    Data frame carrying an Order Accepted ([`ORDER_ACCEPTED_FRAME_BYTES`])
//!    with the request's UserRefNum. Three threading styles are measured:
//!    `echo_mio`, one thread on a mio poll that blocks when nothing is
//!    ready — the style of the exchange's network thread, and the floor the
//!    ratios use; `echo_spin`, one thread passing over non-blocking sockets
//!    without end (yielding after an empty pass); `echo_blocking`, one
//!    thread per connection in blocking reads.
//! 2. **The exchange**: `exchange serve` spawned by this process (the
//!    current executable, `exchange-bench`, with its hidden `serve --config
//!    FILE`, which runs the code of `exchange serve`; FILE the embedded
//!    default configuration from `config show` with a fresh `data_dir`,
//!    free ports, the chosen journal durability and the per-session rate
//!    limit raised out of the way), or a running server (`--target`).
//!    Client `k` logs in as `DEMOk` (password `demok`).
//!
//! Against each, the same client — one thread driving every connection,
//! non-blocking `TcpStream`s with `TCP_NODELAY`, frames pre-encoded with the
//! gateway's codecs and only their UserRefNum patched per order, replies
//! framed with [`soupbin::next_frame`] and decoded with
//! [`ouch::Outbound::decode`] — runs:
//!
//! - **Latency**: one order outstanding per connection (ping-pong); the
//!   round trip is the time from the write of an Enter Order to the read
//!   that brings its Order Accepted (matched by UserRefNum), recorded in an
//!   HdrHistogram in nanoseconds (clock reads included), after a warm-up.
//! - **Throughput**: up to `--window` orders outstanding per connection for
//!   `--seconds`, after a warm-up: orders acknowledged per second, from the
//!   first write to the last acknowledgement (sending stops at the
//!   deadline, then the window drains). The round trips under that load are
//!   recorded too.
//!
//! # The order stream
//!
//! Every order is the same: buy 1 ACME at 95.0000, Time In Force IOC.
//! Nothing rests on the book and nothing sells that low, so it never
//! crosses: the exchange answers Order Accepted (state dead), then Order
//! Canceled (IOC remainder). The book never grows, the funds held are
//! released at once, and the run can last as long as wanted. UserRefNum
//! counts up from 1 on a fresh server; against `--target` it starts at the
//! Account Query Response's next UserRefNum, so runs can be repeated. An
//! Order Rejected ends the run with its reason (the figures would be of the
//! wrong path).
//!
//! The exchange sends 2 frames (67 + 23 bytes) per order where the echo
//! sends one of 67: the floor is the transport of one request and one
//! acknowledgement of the same sizes, nothing more.

use crate::cli::grouped;
use crate::machine::Machine;
use gateway::ouch::{
    self, Capacity, ClOrdId, CrossType, Display, EnterOrder, IntermarketSweep, OrderAccepted,
    OrderState, Outbound, Price, Side, Symbol, TimeInForce,
};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wire::soupbin::{self, ClientPacket, ServerPacket};

/// Bytes of an Enter Order (no appendage) in a SoupBinTCP Unsequenced Data
/// frame: 2 (length) + 1 (type) + 47.
pub(crate) const ENTER_ORDER_FRAME_BYTES: usize =
    soupbin::PACKET_LENGTH_BYTES + 1 + EnterOrder::LENGTH_MIN;

/// Bytes of an Order Accepted (no appendage) in a SoupBinTCP Sequenced Data
/// frame: 2 + 1 + 64.
pub(crate) const ORDER_ACCEPTED_FRAME_BYTES: usize = soupbin::PACKET_LENGTH_BYTES + 1 + 64;

/// Connections the default configuration can log in (DEMO1..DEMO4).
pub(crate) const EXCHANGE_CONNECTIONS_MAX: usize = LOGINS.len();

/// The price of every order: 95.0000, 5% under ACME's reference price.
pub(crate) const ORDER_PRICE: i64 = 95 * ouch::PRICE_SCALE;

/// What the report calls the order stream.
pub(crate) const ORDER_MIX: &str = "every order: Enter Order buy 1 ACME @ 95.0000 IOC, never crossing \
     (exchange: Order Accepted dead + Order Canceled; echo: one Order Accepted-sized frame)";

/// The logins of the default configuration, as (username, password).
pub(crate) const LOGINS: [(&str, &str); 4] = [
    ("DEMO1", "demo1"),
    ("DEMO2", "demo2"),
    ("DEMO3", "demo3"),
    ("DEMO4", "demo4"),
];

/// Where the UserRefNum sits in an Enter Order frame: after the 2-byte
/// length, the packet type and the message type.
const ENTER_ORDER_REF_OFFSET: usize = soupbin::PACKET_LENGTH_BYTES + 1 + 1;
/// Where the UserRefNum sits in an Order Accepted frame: after the 2-byte
/// length, the packet type, the message type and the 8-byte timestamp.
const ORDER_ACCEPTED_REF_OFFSET: usize = soupbin::PACKET_LENGTH_BYTES + 1 + 1 + 8;
/// The largest Packet Length either side accepts.
const PACKET_LENGTH_MAX: u16 = 4096;
/// Bytes each connection reads into at once.
const INPUT_BUFFER_BYTES: usize = 1 << 18;
/// The client sends a heartbeat after this much silence (the protocol asks
/// for one within 1 s).
pub(crate) const CLIENT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// A phase with orders outstanding and no reply for this long has failed.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a login or an account query may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a spawned server may take to accept connections.
pub(crate) const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// The round-trip histograms' range: 1 ns to 60 s, 3 significant digits.
const HISTOGRAM_NS_MAX: u64 = 60_000_000_000;

/// The targets of the issue, reported beside the ratios.
const TARGET_P50_RATIO_MAX: f64 = 1.5;
const TARGET_P999_RATIO_MAX: f64 = 3.0;
const TARGET_THROUGHPUT_MIN: f64 = 1_000_000.0;

/// The exchange's journal durability when this bench starts the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerDurability {
    /// Durable once in the mapped pages.
    Memory,
    /// Synced by the flusher thread in groups.
    Fsync,
}

impl ServerDurability {
    /// The name in the configuration file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ServerDurability::Memory => "memory",
            ServerDurability::Fsync => "fsync",
        }
    }
}

/// Which exchange to measure after the echo floor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServerChoice {
    /// Start `EXECUTABLE serve --config FILE` with a configuration of its
    /// own (fresh data directory, free ports), and stop it at the end.
    Spawn {
        /// A binary with `serve` and `config show` (normally the current
        /// executable, `exchange-bench`, whose hidden ones are the exchange's).
        executable: PathBuf,
        durability: ServerDurability,
    },
    /// A server already listening at this address (host:port).
    Target(String),
    /// No exchange: the echo floor only.
    EchoOnly,
}

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct E2eBenchConfig {
    /// Client connections, driven by one thread.
    pub(crate) connections: usize,
    /// Orders outstanding per connection in the throughput phase.
    pub(crate) window: u32,
    /// Timed round trips of the latency phase, over all connections.
    pub(crate) orders: u64,
    /// Length of the timed throughput phase.
    pub(crate) throughput_duration: Duration,
    /// Length of each warm-up (before the latency and the throughput
    /// phase).
    pub(crate) warm_up_duration: Duration,
    pub(crate) server: ServerChoice,
}

/// Infrastructure failures of the bench.
#[derive(Debug)]
pub(crate) enum E2eBenchError {
    /// A socket, file or process operation failed.
    Io { what: String, source: io::Error },
    /// The configuration asked for something this bench cannot do.
    Config(String),
    /// The spawned server exited before (or while) it was measured.
    ServerExited { status: String, stderr: String },
    /// The spawned server did not accept connections in time.
    ServerStartTimeout { address: SocketAddr, stderr: String },
    /// A peer broke the protocol, refused the login, rejected an order or
    /// stopped answering.
    Protocol { peer: String, problem: String },
}

impl fmt::Display for E2eBenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            E2eBenchError::Io { what, source } => write!(f, "{what}: {source}"),
            E2eBenchError::Config(problem) => write!(f, "{problem}"),
            E2eBenchError::ServerExited { status, stderr } => write!(
                f,
                "the exchange server exited ({status}) before it was measured; \
                 is `exchange serve` listening yet? Its standard error:\n{stderr}"
            ),
            E2eBenchError::ServerStartTimeout { address, stderr } => write!(
                f,
                "the exchange server did not accept connections on {address} within {} s; \
                 its standard error:\n{stderr}",
                SERVER_START_TIMEOUT.as_secs()
            ),
            E2eBenchError::Protocol { peer, problem } => write!(f, "{peer}: {problem}"),
        }
    }
}

impl std::error::Error for E2eBenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            E2eBenchError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(crate) fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> E2eBenchError {
    let what = what.into();
    move |source| E2eBenchError::Io { what, source }
}

pub(crate) fn protocol_error(peer: &str, problem: impl Into<String>) -> E2eBenchError {
    E2eBenchError::Protocol {
        peer: peer.to_owned(),
        problem: problem.into(),
    }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

/// Round-trip percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub(crate) struct RoundTripPercentiles {
    pub(crate) count: u64,
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
    pub(crate) mean: f64,
}

impl RoundTripPercentiles {
    fn of(histogram: &Histogram<u64>) -> RoundTripPercentiles {
        RoundTripPercentiles {
            count: histogram.len(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
            mean: histogram.mean(),
        }
    }
}

/// The figures of one peer: an echo server or the exchange.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PeerReport {
    /// `echo_mio`, `echo_spin`, `echo_blocking` or `exchange`.
    pub(crate) peer: &'static str,
    /// Ping-pong round trips, one order outstanding per connection.
    pub(crate) round_trip_ns: RoundTripPercentiles,
    /// Orders acknowledged per second with the window full.
    pub(crate) throughput_orders_per_sec: f64,
    pub(crate) throughput_orders: u64,
    pub(crate) throughput_seconds: f64,
    /// Round trips during the throughput phase (queueing included).
    pub(crate) loaded_round_trip_ns: RoundTripPercentiles,
}

/// How the exchange was reached.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ServerReport {
    /// `spawned` or `target`.
    pub(crate) mode: &'static str,
    pub(crate) address: String,
    /// The journal durability set by this bench (`None` for a target: its
    /// own configuration decides).
    pub(crate) durability: Option<&'static str>,
    /// The UserRefNum of each connection's first order.
    pub(crate) first_user_ref_nums: Vec<u32>,
}

/// Exchange over `echo_mio`, and whether the targets are met.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Ratios {
    pub(crate) p50: f64,
    pub(crate) p999: f64,
    pub(crate) throughput: f64,
    pub(crate) p50_ratio_max: f64,
    pub(crate) p999_ratio_max: f64,
    pub(crate) throughput_min: f64,
    pub(crate) p50_met: bool,
    pub(crate) p999_met: bool,
    pub(crate) throughput_met: bool,
}

impl Ratios {
    fn of(exchange: &PeerReport, echo: &PeerReport) -> Ratios {
        let ratio = |numerator: f64, denominator: f64| numerator / denominator.max(1e-9);
        let p50 = ratio(
            exchange.round_trip_ns.p50 as f64,
            echo.round_trip_ns.p50 as f64,
        );
        let p999 = ratio(
            exchange.round_trip_ns.p999 as f64,
            echo.round_trip_ns.p999 as f64,
        );
        Ratios {
            p50,
            p999,
            throughput: ratio(
                exchange.throughput_orders_per_sec,
                echo.throughput_orders_per_sec,
            ),
            p50_ratio_max: TARGET_P50_RATIO_MAX,
            p999_ratio_max: TARGET_P999_RATIO_MAX,
            throughput_min: TARGET_THROUGHPUT_MIN,
            p50_met: p50 <= TARGET_P50_RATIO_MAX,
            p999_met: p999 <= TARGET_P999_RATIO_MAX,
            throughput_met: exchange.throughput_orders_per_sec >= TARGET_THROUGHPUT_MIN,
        }
    }
}

/// The whole measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct E2eBenchReport {
    pub(crate) connections: usize,
    pub(crate) window: u32,
    pub(crate) orders: u64,
    pub(crate) throughput_seconds_requested: f64,
    pub(crate) warm_up_seconds: f64,
    pub(crate) enter_order_frame_bytes: usize,
    pub(crate) order_accepted_frame_bytes: usize,
    pub(crate) order_mix: &'static str,
    /// The floor: one server thread on mio, the exchange gateway's style.
    pub(crate) echo_mio: PeerReport,
    /// For reference: one server thread spinning over non-blocking sockets.
    pub(crate) echo_spin: PeerReport,
    /// For reference: blocking reads, one server thread per connection.
    pub(crate) echo_blocking: PeerReport,
    pub(crate) exchange: Option<PeerReport>,
    pub(crate) server: Option<ServerReport>,
    /// Exchange over `echo_mio`.
    pub(crate) ratios: Option<Ratios>,
}

/// The JSON object of `--json`: the report with the machine and command.
#[derive(Debug, Serialize)]
pub(crate) struct E2eJson<'a> {
    #[serde(flatten)]
    pub(crate) report: &'a E2eBenchReport,
    pub(crate) machine: &'a Machine,
    pub(crate) command: &'a str,
}

// ---------------------------------------------------------------------------
// The measurement
// ---------------------------------------------------------------------------

/// Measures the echo floor, then the exchange (unless
/// [`ServerChoice::EchoOnly`]). `progress` hears each step.
pub(crate) fn measure_e2e(
    config: &E2eBenchConfig,
    mut progress: impl FnMut(&str),
) -> Result<E2eBenchReport, E2eBenchError> {
    check_config(config)?;
    progress("echo floor: one server thread on mio (epoll)");
    let echo_mio = measure_echo(config, EchoStyle::Mio)?;
    progress("echo floor: one server thread spinning");
    let echo_spin = measure_echo(config, EchoStyle::Spin)?;
    progress("echo floor: a blocking server thread per connection");
    let echo_blocking = measure_echo(config, EchoStyle::Blocking)?;
    let (exchange, server) = match &config.server {
        ServerChoice::EchoOnly => (None, None),
        ServerChoice::Spawn {
            executable,
            durability,
        } => {
            progress("starting `exchange serve`");
            let spawned = SpawnedServer::start(executable, *durability, config.connections)?;
            progress(&format!(
                "exchange on {} (journal durability {})",
                spawned.address,
                durability.name()
            ));
            let address = spawned.address;
            let result = measure_exchange(config, address, true, Some(&spawned));
            // Stopped (killed, reaped, its directory removed) on error too.
            let stopped = spawned.stop();
            let (report, first_user_ref_nums) = result?;
            stopped?;
            let server = ServerReport {
                mode: "spawned",
                address: address.to_string(),
                durability: Some(durability.name()),
                first_user_ref_nums,
            };
            (Some(report), Some(server))
        }
        ServerChoice::Target(target) => {
            let address = resolve(target)?;
            progress(&format!("exchange at {address} (running server)"));
            let (report, first_user_ref_nums) = measure_exchange(config, address, false, None)?;
            let server = ServerReport {
                mode: "target",
                address: address.to_string(),
                durability: None,
                first_user_ref_nums,
            };
            (Some(report), Some(server))
        }
    };
    let ratios = exchange
        .as_ref()
        .map(|exchange| Ratios::of(exchange, &echo_mio));
    Ok(E2eBenchReport {
        connections: config.connections,
        window: config.window,
        orders: config.orders,
        throughput_seconds_requested: config.throughput_duration.as_secs_f64(),
        warm_up_seconds: config.warm_up_duration.as_secs_f64(),
        enter_order_frame_bytes: ENTER_ORDER_FRAME_BYTES,
        order_accepted_frame_bytes: ORDER_ACCEPTED_FRAME_BYTES,
        order_mix: ORDER_MIX,
        echo_mio,
        echo_spin,
        echo_blocking,
        exchange,
        server,
        ratios,
    })
}

fn check_config(config: &E2eBenchConfig) -> Result<(), E2eBenchError> {
    let problem = if config.connections == 0 {
        Some("at least one connection is needed".to_owned())
    } else if config.connections > EXCHANGE_CONNECTIONS_MAX
        && config.server != ServerChoice::EchoOnly
    {
        Some(format!(
            "{} connections asked for, but the default configuration has {} trading logins \
             (DEMO1..DEMO{})",
            config.connections, EXCHANGE_CONNECTIONS_MAX, EXCHANGE_CONNECTIONS_MAX
        ))
    } else if config.window == 0 || config.window > 1 << 20 {
        Some(format!("window {} outside 1..=1048576", config.window))
    } else if config.orders == 0 {
        Some("at least one latency order is needed".to_owned())
    } else if config.throughput_duration.is_zero() {
        Some("the throughput phase needs a duration".to_owned())
    } else {
        None
    };
    problem.map_or(Ok(()), |problem| Err(E2eBenchError::Config(problem)))
}

fn resolve(target: &str) -> Result<SocketAddr, E2eBenchError> {
    target
        .to_socket_addrs()
        .map_err(io_error(format!("resolving {target}")))?
        .next()
        .ok_or_else(|| E2eBenchError::Config(format!("{target} resolves to no address")))
}

/// The four phases against one peer whose connections are open.
fn measure_peer(
    peer: &'static str,
    config: &E2eBenchConfig,
    connections: &mut [Connection],
    mut alive: impl FnMut() -> Result<(), E2eBenchError>,
) -> Result<PeerReport, E2eBenchError> {
    let mut histogram = new_histogram();
    // Latency: one order outstanding per connection.
    run_phase(
        peer,
        connections,
        1,
        Stop::After(config.warm_up_duration),
        &mut histogram,
    )?;
    alive()?;
    histogram.reset();
    run_phase(
        peer,
        connections,
        1,
        Stop::AfterOrders(config.orders),
        &mut histogram,
    )?;
    let round_trip_ns = RoundTripPercentiles::of(&histogram);
    alive()?;
    // Throughput: the window full.
    histogram.reset();
    run_phase(
        peer,
        connections,
        config.window,
        Stop::After(config.warm_up_duration),
        &mut histogram,
    )?;
    alive()?;
    histogram.reset();
    let throughput = run_phase(
        peer,
        connections,
        config.window,
        Stop::After(config.throughput_duration),
        &mut histogram,
    )?;
    alive()?;
    Ok(PeerReport {
        peer,
        round_trip_ns,
        throughput_orders_per_sec: throughput.acknowledged as f64 / throughput.seconds.max(1e-9),
        throughput_orders: throughput.acknowledged,
        throughput_seconds: throughput.seconds,
        loaded_round_trip_ns: RoundTripPercentiles::of(&histogram),
    })
}

fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: 1 <= low, high >= 2 * low, sigfig <= 5.
    Histogram::new_with_bounds(1, HISTOGRAM_NS_MAX, 3).expect("valid histogram bounds")
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// One client connection: pre-encoded frames out, a framed buffer in, and
/// the send times of the outstanding orders, indexed by UserRefNum.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    /// The Enter Order frame; only its UserRefNum changes.
    order_frame: [u8; ENTER_ORDER_FRAME_BYTES],
    /// The UserRefNum of the next order to send.
    next_ref: u32,
    /// The oldest order not yet acknowledged (`next_ref` if none).
    oldest_ref: u32,
    /// Per slot (`ref & slot_mask`): acknowledged out of order.
    acknowledged: Box<[bool]>,
    /// Per slot: when the order was written.
    sent_at: Box<[Instant]>,
    slot_mask: u32,
    /// Bytes to write, from `out_written` on.
    out: Vec<u8>,
    out_written: usize,
    input: Box<[u8]>,
    input_read: usize,
    input_write: usize,
    pub(crate) last_send: Instant,
}

/// What a connection can be told by its peer, reduced to what the client
/// acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    LoginAccepted,
    LoginRejected(u8),
    Accepted(u32),
    Rejected {
        user_ref_num: u32,
        reason: u16,
    },
    AccountQuery {
        next_user_ref_num: u32,
    },
    EndOfSession,
    /// An order (of this session) executed.
    Executed {
        user_ref_num: u32,
        quantity: u32,
    },
    /// An order canceled, `reason` the OUCH Cancel Reason byte (`U` for
    /// user requested, `I` for an IOC remainder).
    Canceled {
        user_ref_num: u32,
        reason: u8,
    },
    /// An order canceled by self-match prevention.
    AiqCanceled {
        user_ref_num: u32,
    },
    /// A Cancel Order refused (the order was no longer open).
    CancelRejected {
        user_ref_num: u32,
    },
    /// Heartbeats and whatever else: not acted on.
    Other,
}

impl Connection {
    pub(crate) fn open(
        address: SocketAddr,
        slots_min: u32,
        first_ref: u32,
        peer: &str,
    ) -> Result<Connection, E2eBenchError> {
        let stream = TcpStream::connect_timeout(&address, HANDSHAKE_TIMEOUT)
            .map_err(io_error(format!("{peer}: connecting to {address}")))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_nonblocking(true))
            .map_err(io_error(format!("{peer}: socket options")))?;
        let slots = slots_min.next_power_of_two();
        let now = Instant::now();
        Ok(Connection {
            stream,
            order_frame: enter_order_frame(),
            next_ref: first_ref,
            oldest_ref: first_ref,
            acknowledged: vec![false; slots as usize].into_boxed_slice(),
            sent_at: vec![now; slots as usize].into_boxed_slice(),
            slot_mask: slots - 1,
            out: Vec::with_capacity(slots as usize * ENTER_ORDER_FRAME_BYTES + 64),
            out_written: 0,
            input: vec![0; INPUT_BUFFER_BYTES].into_boxed_slice(),
            input_read: 0,
            input_write: 0,
            last_send: now,
        })
    }

    /// Orders written and not yet acknowledged, counting from the oldest.
    pub(crate) fn in_flight(&self) -> u32 {
        self.next_ref.wrapping_sub(self.oldest_ref)
    }

    pub(crate) fn out_is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The UserRefNum the next order of [`Connection::queue_orders`]
    /// takes: after [`log_in`], the first one free on the server.
    pub(crate) fn next_user_ref_num(&self) -> u32 {
        self.next_ref
    }

    /// Restarts the UserRefNums (before any order is sent).
    fn set_next_ref(&mut self, next_ref: u32) {
        assert_eq!(
            self.in_flight(),
            0,
            "UserRefNum moved with orders in flight"
        );
        self.next_ref = next_ref;
        self.oldest_ref = next_ref;
    }

    /// Appends `count` orders to the output, stamped `now`.
    fn queue_orders(&mut self, count: u32, now: Instant) {
        debug_assert!(self.in_flight() + count <= self.slot_mask + 1);
        for _ in 0..count {
            let user_ref_num = self.next_ref;
            self.order_frame[ENTER_ORDER_REF_OFFSET..ENTER_ORDER_REF_OFFSET + 4]
                .copy_from_slice(&user_ref_num.to_be_bytes());
            self.out.extend_from_slice(&self.order_frame);
            self.sent_at[(user_ref_num & self.slot_mask) as usize] = now;
            self.next_ref = user_ref_num.wrapping_add(1);
        }
    }

    /// Appends an encoded frame as it is (for a client that sends other
    /// messages than the bench's one Enter Order).
    pub(crate) fn queue_frame(&mut self, frame: &[u8]) {
        self.out.extend_from_slice(frame);
    }

    /// Appends an encoded packet (login, heartbeat, query, logout).
    pub(crate) fn queue_packet(&mut self, packet: &ClientPacket<'_>) {
        // The packets queued here are small and fixed: encoding cannot fail.
        packet
            .encode(&mut self.out)
            .expect("a small client packet encodes");
    }

    /// Writes what the socket takes; whether anything was written.
    pub(crate) fn flush(&mut self, peer: &str) -> Result<bool, E2eBenchError> {
        let mut progress = false;
        while self.out_written < self.out.len() {
            match self.stream.write(&self.out[self.out_written..]) {
                Ok(0) => return Err(protocol_error(peer, "the connection closed while writing")),
                Ok(written) => {
                    self.out_written += written;
                    progress = true;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io_error(format!("{peer}: writing"))(error)),
            }
        }
        if progress {
            self.last_send = Instant::now();
        }
        if self.out_written == self.out.len() {
            self.out.clear();
            self.out_written = 0;
        }
        Ok(progress)
    }

    /// Reads what the socket has; how many bytes.
    pub(crate) fn fill(&mut self, peer: &str) -> Result<usize, E2eBenchError> {
        if self.input_read > 0 && self.input_read == self.input_write {
            self.input_read = 0;
            self.input_write = 0;
        } else if self.input_write == self.input.len() {
            self.input.copy_within(self.input_read..self.input_write, 0);
            self.input_write -= self.input_read;
            self.input_read = 0;
        }
        loop {
            match self.stream.read(&mut self.input[self.input_write..]) {
                Ok(0) => {
                    return Err(protocol_error(
                        peer,
                        "the connection was closed by the peer",
                    ));
                }
                Ok(read) => {
                    self.input_write += read;
                    return Ok(read);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io_error(format!("{peer}: reading"))(error)),
            }
        }
    }

    /// The next complete frame of the input as an event.
    pub(crate) fn next_event(&mut self, peer: &str) -> Result<Option<Event>, E2eBenchError> {
        let unread = &self.input[self.input_read..self.input_write];
        let Some((frame, consumed)) = soupbin::next_frame(unread, PACKET_LENGTH_MAX)
            .map_err(|error| protocol_error(peer, format!("bad SoupBinTCP framing: {error}")))?
        else {
            return Ok(None);
        };
        let packet = ServerPacket::decode(frame)
            .map_err(|error| protocol_error(peer, format!("bad SoupBinTCP packet: {error}")))?;
        let event = match packet {
            ServerPacket::SequencedData(payload) | ServerPacket::UnsequencedData(payload) => {
                match Outbound::decode(payload)
                    .map_err(|error| protocol_error(peer, format!("bad OUCH message: {error}")))?
                {
                    Outbound::OrderAccepted(accepted) => Event::Accepted(accepted.user_ref_num),
                    Outbound::OrderRejected(rejected) => Event::Rejected {
                        user_ref_num: rejected.user_ref_num,
                        reason: rejected.reason.code(),
                    },
                    Outbound::AccountQueryResponse(response) => Event::AccountQuery {
                        next_user_ref_num: response.next_user_ref_num,
                    },
                    Outbound::OrderExecuted(executed) => Event::Executed {
                        user_ref_num: executed.user_ref_num,
                        quantity: executed.quantity,
                    },
                    Outbound::OrderCanceled(canceled) => Event::Canceled {
                        user_ref_num: canceled.user_ref_num,
                        reason: canceled.reason.byte(),
                    },
                    Outbound::AiqCanceled(canceled) => Event::AiqCanceled {
                        user_ref_num: canceled.user_ref_num,
                    },
                    Outbound::CancelReject(rejected) => Event::CancelRejected {
                        user_ref_num: rejected.user_ref_num,
                    },
                    _ => Event::Other,
                }
            }
            ServerPacket::LoginAccepted { .. } => Event::LoginAccepted,
            ServerPacket::LoginRejected { reason } => Event::LoginRejected(reason.code()),
            ServerPacket::EndOfSession => Event::EndOfSession,
            ServerPacket::Debug(_) | ServerPacket::ServerHeartbeat => Event::Other,
        };
        self.input_read += consumed;
        Ok(Some(event))
    }

    /// Marks an order acknowledged; its round trip in nanoseconds, or
    /// `None` for a reply to no order in flight (a replayed message).
    fn acknowledge(&mut self, user_ref_num: u32, received: Instant) -> Option<u64> {
        if user_ref_num.wrapping_sub(self.oldest_ref) >= self.in_flight() {
            return None;
        }
        let slot = (user_ref_num & self.slot_mask) as usize;
        if self.acknowledged[slot] {
            return None;
        }
        self.acknowledged[slot] = true;
        while self.oldest_ref != self.next_ref
            && self.acknowledged[(self.oldest_ref & self.slot_mask) as usize]
        {
            self.acknowledged[(self.oldest_ref & self.slot_mask) as usize] = false;
            self.oldest_ref = self.oldest_ref.wrapping_add(1);
        }
        let round_trip = received.saturating_duration_since(self.sent_at[slot]);
        Some(u64::try_from(round_trip.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Writes and reads until `pick` accepts an event, or the deadline.
    pub(crate) fn wait_for<T>(
        &mut self,
        peer: &str,
        what: &str,
        mut pick: impl FnMut(Event) -> Result<Option<T>, E2eBenchError>,
    ) -> Result<T, E2eBenchError> {
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let mut progress = self.flush(peer)?;
            if self.fill(peer)? > 0 {
                progress = true;
                while let Some(event) = self.next_event(peer)? {
                    if let Some(found) = pick(event)? {
                        return Ok(found);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(protocol_error(
                    peer,
                    format!("no {what} within {} s", HANDSHAKE_TIMEOUT.as_secs()),
                ));
            }
            if !progress {
                std::thread::yield_now();
            }
        }
    }
}

/// The Enter Order frame every order is a copy of (UserRefNum 0).
fn enter_order_frame() -> [u8; ENTER_ORDER_FRAME_BYTES] {
    let order = EnterOrder {
        user_ref_num: 0,
        side: Side::Buy,
        quantity: 1,
        symbol: Symbol::new("ACME").expect("a valid symbol"),
        price: Price(ORDER_PRICE),
        time_in_force: TimeInForce::ImmediateOrCancel,
        display: Display::Visible,
        capacity: Capacity::Agency,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cross_type: CrossType::ContinuousMarket,
        client_order_id: ClOrdId::new("E2EBENCH").expect("a valid ClOrdID"),
        options: ouch::Options::NONE,
    };
    let mut payload = Vec::with_capacity(EnterOrder::LENGTH_MIN);
    order.encode(&mut payload);
    let mut frame = Vec::with_capacity(ENTER_ORDER_FRAME_BYTES);
    ClientPacket::UnsequencedData(&payload)
        .encode(&mut frame)
        .expect("an Enter Order fits a frame");
    frame
        .try_into()
        .expect("an Enter Order frame without appendage is 50 bytes")
}

/// The Order Accepted frame the echo servers answer with (UserRefNum 0).
fn order_accepted_frame() -> [u8; ORDER_ACCEPTED_FRAME_BYTES] {
    let accepted = Outbound::OrderAccepted(OrderAccepted {
        timestamp_ns: 0,
        user_ref_num: 0,
        side: Side::Buy,
        quantity: 1,
        symbol: Symbol::new("ACME").expect("a valid symbol"),
        price: Price(ORDER_PRICE),
        time_in_force: TimeInForce::ImmediateOrCancel,
        display: Display::Visible,
        order_reference_number: 0,
        capacity: Capacity::Agency,
        intermarket_sweep: IntermarketSweep::NotEligible,
        cross_type: CrossType::ContinuousMarket,
        order_state: OrderState::Dead,
        client_order_id: ClOrdId::new("E2EBENCH").expect("a valid ClOrdID"),
        options: ouch::Options::NONE,
    });
    let mut payload = Vec::with_capacity(64);
    accepted.encode(&mut payload);
    let mut frame = Vec::with_capacity(ORDER_ACCEPTED_FRAME_BYTES);
    ServerPacket::SequencedData(&payload)
        .encode(&mut frame)
        .expect("an Order Accepted fits a frame");
    frame
        .try_into()
        .expect("an Order Accepted frame without appendage is 67 bytes")
}

/// When a phase stops sending.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// After this many orders, over all connections.
    AfterOrders(u64),
    /// At this long after the start.
    After(Duration),
}

/// What a phase measured.
#[derive(Clone, Copy, Debug)]
struct PhaseOutcome {
    acknowledged: u64,
    /// From the first write to the last acknowledgement.
    seconds: f64,
}

/// Sends orders on every connection, at most `window` outstanding on each,
/// until `stop`; then waits for every outstanding acknowledgement. Each
/// round trip goes into `histogram`.
fn run_phase(
    peer: &str,
    connections: &mut [Connection],
    window: u32,
    stop: Stop,
    histogram: &mut Histogram<u64>,
) -> Result<PhaseOutcome, E2eBenchError> {
    let started = Instant::now();
    let (budget, deadline) = match stop {
        Stop::AfterOrders(orders) => (orders, None),
        Stop::After(duration) => (u64::MAX, Some(started + duration)),
    };
    let mut sent = 0_u64;
    let mut acknowledged = 0_u64;
    let mut last_acknowledged = started;
    let mut last_progress = started;
    loop {
        let now = Instant::now();
        let sending = sent < budget && deadline.is_none_or(|deadline| now < deadline);
        if !sending
            && connections
                .iter()
                .all(|connection| connection.in_flight() == 0 && connection.out_is_empty())
        {
            break;
        }
        let mut progress = false;
        for connection in connections.iter_mut() {
            if connection.out_is_empty() {
                let room = u64::from(window.saturating_sub(connection.in_flight()));
                let count = if sending { room.min(budget - sent) } else { 0 };
                if count > 0 {
                    // count <= window <= u32::MAX.
                    connection.queue_orders(count as u32, Instant::now());
                    sent += count;
                } else if now.duration_since(connection.last_send) >= CLIENT_HEARTBEAT_INTERVAL {
                    connection.queue_packet(&ClientPacket::ClientHeartbeat);
                }
            }
            progress |= connection.flush(peer)?;
            if connection.fill(peer)? == 0 {
                continue;
            }
            progress = true;
            let received = Instant::now();
            while let Some(event) = connection.next_event(peer)? {
                match event {
                    Event::Accepted(user_ref_num) => {
                        if let Some(round_trip_ns) = connection.acknowledge(user_ref_num, received)
                        {
                            histogram.saturating_record(round_trip_ns.max(1));
                            acknowledged += 1;
                            last_acknowledged = received;
                        }
                    }
                    Event::Rejected {
                        user_ref_num,
                        reason,
                    } => {
                        return Err(protocol_error(
                            peer,
                            format!(
                                "order {user_ref_num} rejected with reason 0x{reason:04x}; \
                                 the bench's orders must be accepted"
                            ),
                        ));
                    }
                    Event::EndOfSession => {
                        return Err(protocol_error(peer, "the server ended the session"));
                    }
                    Event::LoginAccepted
                    | Event::LoginRejected(_)
                    | Event::AccountQuery { .. }
                    | Event::Executed { .. }
                    | Event::Canceled { .. }
                    | Event::AiqCanceled { .. }
                    | Event::CancelRejected { .. }
                    | Event::Other => {}
                }
            }
        }
        if progress {
            last_progress = now;
        } else {
            if now.duration_since(last_progress) > STALL_TIMEOUT {
                return Err(protocol_error(
                    peer,
                    format!(
                        "no reply for {} s with orders outstanding",
                        STALL_TIMEOUT.as_secs()
                    ),
                ));
            }
            std::thread::yield_now();
        }
    }
    Ok(PhaseOutcome {
        acknowledged,
        seconds: last_acknowledged.duration_since(started).as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------
// The echo floor
// ---------------------------------------------------------------------------

/// How the echo server waits for input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EchoStyle {
    /// One thread, every socket registered with mio (epoll): drains what is
    /// ready, then blocks in the poll — the exchange's network thread's
    /// style (it polls without blocking only while orders are in flight
    /// through the engine, which an echo never has).
    Mio,
    /// One thread passes over every non-blocking socket without end,
    /// yielding when a pass found nothing.
    Spin,
    /// One thread per connection in a blocking read.
    Blocking,
}

impl EchoStyle {
    fn name(self) -> &'static str {
        match self {
            EchoStyle::Mio => "echo_mio",
            EchoStyle::Spin => "echo_spin",
            EchoStyle::Blocking => "echo_blocking",
        }
    }
}

fn measure_echo(config: &E2eBenchConfig, style: EchoStyle) -> Result<PeerReport, E2eBenchError> {
    let peer = style.name();
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(io_error(format!("{peer}: binding")))?;
    let address = listener
        .local_addr()
        .map_err(io_error(format!("{peer}: local address")))?;
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = Arc::clone(&stop);
        let connections = config.connections;
        std::thread::Builder::new()
            .name(peer.to_owned())
            .spawn(move || match style {
                EchoStyle::Mio => echo_mio(listener, &stop),
                EchoStyle::Spin => echo_spin(&listener, &stop),
                EchoStyle::Blocking => echo_blocking(&listener, connections, &stop),
            })
            .map_err(io_error(format!("{peer}: spawning the server thread")))?
    };
    let result = connect_and_measure(peer, config, address);
    // The client's connections are closed (dropped) by now: the blocking
    // threads see end of stream; the single-threaded servers (and a
    // blocking server still accepting after a failed connect) need the
    // flag.
    stop.store(true, Ordering::Release);
    let served = join_echo(server, peer);
    let report = result?;
    served?;
    Ok(report)
}

fn connect_and_measure(
    peer: &'static str,
    config: &E2eBenchConfig,
    address: SocketAddr,
) -> Result<PeerReport, E2eBenchError> {
    let mut connections = (0..config.connections)
        .map(|_| Connection::open(address, config.window, 1, peer))
        .collect::<Result<Vec<_>, _>>()?;
    measure_peer(peer, config, &mut connections, || Ok(()))
}

fn join_echo(server: JoinHandle<io::Result<()>>, peer: &str) -> Result<(), E2eBenchError> {
    match server.join() {
        Ok(result) => result.map_err(io_error(format!("{peer}: the server thread"))),
        Err(_) => Err(protocol_error(peer, "the server thread panicked")),
    }
}

/// One echo connection's buffers.
#[derive(Debug)]
struct EchoPeer<S> {
    stream: S,
    input: Box<[u8]>,
    input_read: usize,
    input_write: usize,
    out: Vec<u8>,
    out_written: usize,
    closed: bool,
}

impl<S: Read + Write> EchoPeer<S> {
    fn new(stream: S) -> EchoPeer<S> {
        EchoPeer {
            stream,
            input: vec![0; INPUT_BUFFER_BYTES].into_boxed_slice(),
            input_read: 0,
            input_write: 0,
            // Every complete request of a full input buffer answered.
            out: Vec::with_capacity(
                INPUT_BUFFER_BYTES / ENTER_ORDER_FRAME_BYTES * ORDER_ACCEPTED_FRAME_BYTES + 64,
            ),
            out_written: 0,
            closed: false,
        }
    }

    /// Answers every complete frame of the input: an Order Accepted frame
    /// with the request's UserRefNum for each Unsequenced Data frame
    /// (heartbeats and anything else need no answer).
    fn answer(&mut self, reply: &mut [u8; ORDER_ACCEPTED_FRAME_BYTES]) -> io::Result<()> {
        loop {
            let unread = &self.input[self.input_read..self.input_write];
            let (frame, consumed) = match soupbin::next_frame(unread, PACKET_LENGTH_MAX) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error)),
            };
            if frame.packet_type == b'U'
                && let Some(user_ref_num) = frame.payload.get(1..5)
            {
                reply[ORDER_ACCEPTED_REF_OFFSET..ORDER_ACCEPTED_REF_OFFSET + 4]
                    .copy_from_slice(user_ref_num);
                self.out.extend_from_slice(reply);
            }
            self.input_read += consumed;
        }
        if self.input_read == self.input_write {
            self.input_read = 0;
            self.input_write = 0;
        } else if self.input_write == self.input.len() {
            self.input.copy_within(self.input_read..self.input_write, 0);
            self.input_write -= self.input_read;
            self.input_read = 0;
        }
        Ok(())
    }

    /// One non-blocking pass: write what is pending, else read and answer.
    /// Whether anything moved.
    fn poll(&mut self, reply: &mut [u8; ORDER_ACCEPTED_FRAME_BYTES]) -> io::Result<bool> {
        let mut progress = false;
        while self.out_written < self.out.len() {
            match self.stream.write(&self.out[self.out_written..]) {
                Ok(written) => {
                    self.out_written += written;
                    progress = true;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(progress),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.out.clear();
        self.out_written = 0;
        match self.stream.read(&mut self.input[self.input_write..]) {
            Ok(0) => self.closed = true,
            Ok(read) => {
                self.input_write += read;
                self.answer(reply)?;
                progress = true;
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => self.closed = true,
            Err(error) => return Err(error),
        }
        Ok(progress)
    }
}

/// The mio echo server: one thread, every socket registered for read and
/// write readiness (edge-triggered: each ready socket is served until it
/// would block), blocking in the poll when nothing is ready. The poll wakes
/// at least every 2 ms (as the exchange's does) to see `stop`.
fn echo_mio(listener: TcpListener, stop: &AtomicBool) -> io::Result<()> {
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    listener.set_nonblocking(true)?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(64);
    let mut reply = order_accepted_frame();
    let mut peers: Vec<EchoPeer<mio::net::TcpStream>> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        match poll.poll(&mut events, Some(Duration::from_millis(2))) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    let mut stream = match listener.accept() {
                        Ok((stream, _)) => stream,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                        Err(error) => return Err(error),
                    };
                    stream.set_nodelay(true)?;
                    poll.registry().register(
                        &mut stream,
                        Token(peers.len()),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    peers.push(EchoPeer::new(stream));
                }
            } else if let Some(peer) = peers.get_mut(event.token().0) {
                while !peer.closed && peer.poll(&mut reply)? {}
            }
        }
    }
    Ok(())
}

/// The spinning echo server: one thread, every socket non-blocking, a
/// yield when a pass over them found nothing to do.
fn echo_spin(listener: &TcpListener, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut reply = order_accepted_frame();
    let mut peers: Vec<EchoPeer<TcpStream>> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let mut progress = false;
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                stream.set_nodelay(true)?;
                peers.push(EchoPeer::new(stream));
                progress = true;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
        for peer in peers.iter_mut().filter(|peer| !peer.closed) {
            progress |= peer.poll(&mut reply)?;
        }
        if !progress {
            std::thread::yield_now();
        }
    }
    Ok(())
}

/// The blocking echo server: accepts `connections` connections (polling
/// the listener, so that `stop` can end a wait for a client that failed to
/// connect), then one thread each in blocking reads, until the client
/// closes them.
fn echo_blocking(listener: &TcpListener, connections: usize, stop: &AtomicBool) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut threads = Vec::with_capacity(connections);
    while threads.len() < connections {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(error) => return Err(error),
        };
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        threads.push(std::thread::spawn(move || -> io::Result<()> {
            let mut reply = order_accepted_frame();
            let mut peer = EchoPeer::new(stream);
            loop {
                let read = match peer.stream.read(&mut peer.input[peer.input_write..]) {
                    Ok(0) => return Ok(()),
                    Ok(read) => read,
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                    Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                        return Ok(());
                    }
                    Err(error) => return Err(error),
                };
                peer.input_write += read;
                peer.answer(&mut reply)?;
                peer.stream.write_all(&peer.out)?;
                peer.out.clear();
            }
        }));
    }
    for thread in threads {
        thread
            .join()
            .map_err(|_| io::Error::other("an echo thread panicked"))??;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The exchange
// ---------------------------------------------------------------------------

/// Logs in, then measures; returns the report and each connection's first
/// UserRefNum. `spawned` is polled between phases for an early exit.
fn measure_exchange(
    config: &E2eBenchConfig,
    address: SocketAddr,
    fresh: bool,
    spawned: Option<&SpawnedServer>,
) -> Result<(PeerReport, Vec<u32>), E2eBenchError> {
    let peer = "exchange";
    let alive = || spawned.map_or(Ok(()), SpawnedServer::check_running);
    let mut connections = Vec::with_capacity(config.connections);
    let mut first_refs = Vec::with_capacity(config.connections);
    for &(username, password) in &LOGINS[..config.connections] {
        let connection = log_in(address, config.window, fresh, username, password)
            .map_err(|error| alive().err().unwrap_or(error))?;
        first_refs.push(connection.next_ref);
        connections.push(connection);
    }
    let report = measure_peer(peer, config, &mut connections, alive)
        .map_err(|error| alive().err().unwrap_or(error))?;
    for connection in &mut connections {
        // Best effort: the measurement is complete either way.
        connection.queue_packet(&ClientPacket::LogoutRequest);
        let _ = connection.flush(peer);
    }
    Ok((report, first_refs))
}

/// One logged-in connection, its UserRefNums starting at 1 on a fresh
/// server, else at the Account Query Response's next UserRefNum.
pub(crate) fn log_in(
    address: SocketAddr,
    window: u32,
    fresh: bool,
    username: &str,
    password: &str,
) -> Result<Connection, E2eBenchError> {
    let peer = format!("exchange ({username})");
    let mut connection = Connection::open(address, window, 1, &peer)?;
    let login = ClientPacket::LoginRequest {
        username: soupbin::alpha(username).expect("a valid username"),
        password: soupbin::alpha(password).expect("a valid password"),
        requested_session: [b' '; soupbin::SESSION_BYTES],
        // A fresh session starts at 1; on a running server, replaying old
        // replies would only be skipped: ask for new ones only.
        requested_sequence: u64::from(fresh),
    };
    connection.queue_packet(&login);
    connection.wait_for(&peer, "Login Accepted", |event| match event {
        Event::LoginAccepted => Ok(Some(())),
        Event::LoginRejected(reason) => Err(protocol_error(
            &peer,
            format!("login refused (reason '{}')", char::from(reason)),
        )),
        Event::EndOfSession => Err(protocol_error(&peer, "session ended during login")),
        _ => Ok(None),
    })?;
    if !fresh {
        let mut query = Vec::with_capacity(ouch::AccountQueryRequest::LENGTH_MIN);
        ouch::AccountQueryRequest::default().encode(&mut query);
        connection.queue_packet(&ClientPacket::UnsequencedData(&query));
        let next = connection.wait_for(&peer, "Account Query Response", |event| match event {
            Event::AccountQuery { next_user_ref_num } => Ok(Some(next_user_ref_num)),
            _ => Ok(None),
        })?;
        connection.set_next_ref(next.max(1));
    }
    Ok(connection)
}

/// How a spawned server is stopped before it is started again on the same
/// data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// SIGTERM: `serve` drains, makes the journal durable and closes it.
    Clean,
    /// SIGKILL: a crash; recovery finds whatever the journal holds.
    Crash,
}

impl StopMode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StopMode::Clean => "clean (SIGTERM)",
            StopMode::Crash => "crash (SIGKILL)",
        }
    }
}

/// `exchange serve` started by this bench, with a configuration and data
/// directory of its own; killed and cleaned up when dropped.
#[derive(Debug)]
pub(crate) struct SpawnedServer {
    /// `None` once reaped. In a cell so that the measurement can poll it
    /// through a shared reference between phases.
    child: RefCell<Option<Child>>,
    dir: PathBuf,
    /// The order-entry port.
    pub(crate) address: SocketAddr,
    /// The market-data snapshot port (TCP).
    pub(crate) md_snapshot: SocketAddr,
    executable: PathBuf,
    config_path: PathBuf,
    /// Processes started on this directory so far (each has its own logs).
    starts: u32,
}

impl SpawnedServer {
    /// Starts a server on a fresh directory under the system's temporary
    /// directory and waits until its order-entry port accepts connections.
    pub(crate) fn start(
        executable: &Path,
        durability: ServerDurability,
        connections: usize,
    ) -> Result<SpawnedServer, E2eBenchError> {
        SpawnedServer::start_with(executable, durability, connections, &|_| Ok(()))
    }

    /// As [`SpawnedServer::start`], with `patch` applied to the
    /// configuration after the bench's own changes.
    pub(crate) fn start_with(
        executable: &Path,
        durability: ServerDurability,
        connections: usize,
        patch: &dyn Fn(&mut toml::Table) -> Result<(), String>,
    ) -> Result<SpawnedServer, E2eBenchError> {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "exchange-bench-e2e-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
        // From here on, dropping `server` removes the directory.
        let mut server = SpawnedServer {
            child: RefCell::new(None),
            config_path: dir.join("exchange.toml"),
            dir,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            md_snapshot: SocketAddr::from(([127, 0, 0, 1], 0)),
            executable: executable.to_path_buf(),
            starts: 0,
        };
        let default_toml = default_configuration(executable)?;
        let [order_entry, funding, md_snapshot] = free_ports()?;
        server.address = SocketAddr::from(([127, 0, 0, 1], order_entry));
        server.md_snapshot = SocketAddr::from(([127, 0, 0, 1], md_snapshot));
        let text = patch_configuration(
            &default_toml,
            &server.dir.join("data"),
            [order_entry, funding, md_snapshot],
            durability,
            connections,
        )?;
        let mut table: toml::Table = text.parse().map_err(|error| {
            E2eBenchError::Config(format!("the patched configuration: {error}"))
        })?;
        patch(&mut table)
            .map_err(|problem| E2eBenchError::Config(format!("the configuration: {problem}")))?;
        let text = table.to_string();
        std::fs::write(&server.config_path, text).map_err(io_error(format!(
            "writing {}",
            server.config_path.display()
        )))?;
        server.spawn_child()?;
        server.wait_listening()?;
        Ok(server)
    }

    /// Starts `EXECUTABLE serve --config FILE` on this directory, its output
    /// in `stdout-N.log` and `stderr-N.log` (N counting starts from 1), and
    /// returns without waiting for it.
    fn spawn_child(&mut self) -> Result<(), E2eBenchError> {
        assert!(
            self.child.get_mut().is_none(),
            "a server is already running"
        );
        self.starts += 1;
        let stdout = std::fs::File::create(self.log_path("stdout"))
            .map_err(io_error("creating the server's stdout log"))?;
        let stderr = std::fs::File::create(self.log_path("stderr"))
            .map_err(io_error("creating the server's stderr log"))?;
        let child = Command::new(&self.executable)
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(io_error(format!(
                "starting {} serve",
                self.executable.display()
            )))?;
        *self.child.get_mut() = Some(child);
        Ok(())
    }

    fn log_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}-{}.log", self.starts))
    }

    /// The process id of the running server.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.borrow().as_ref().map(Child::id)
    }

    /// The data directory (journal, market-data log, snapshots).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// What the running (or last) server has printed on standard output.
    pub(crate) fn stdout_text(&self) -> String {
        std::fs::read_to_string(self.log_path("stdout")).unwrap_or_default()
    }

    /// Stops the server as `mode` says and waits for it to exit (at most
    /// `timeout`); how long that took. Its data directory is kept.
    pub(crate) fn stop_for_restart(
        &mut self,
        mode: StopMode,
        timeout: Duration,
    ) -> Result<Duration, E2eBenchError> {
        let started = Instant::now();
        let Some(mut child) = self.child.get_mut().take() else {
            return Err(E2eBenchError::Config("no server is running".to_owned()));
        };
        let signalled = match mode {
            StopMode::Crash => child.kill(),
            // No signal crate in the bench: kill(1) sends SIGTERM.
            StopMode::Clean => Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()
                .and_then(|status| {
                    if status.success() {
                        Ok(())
                    } else {
                        Err(io::Error::other(format!("kill -TERM: {status}")))
                    }
                }),
        };
        signalled.map_err(io_error("signalling the exchange server"))?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if mode == StopMode::Clean && !status.success() {
                        return Err(E2eBenchError::ServerExited {
                            status: status.to_string(),
                            stderr: self.stderr_tail(),
                        });
                    }
                    return Ok(started.elapsed());
                }
                Ok(None) if started.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(E2eBenchError::Config(format!(
                        "the server did not stop within {} s of {}",
                        timeout.as_secs(),
                        mode.name()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(error) => return Err(io_error("waiting for the exchange server")(error)),
            }
        }
    }

    /// Starts the server again on the same directory and configuration,
    /// without waiting for it: the caller times its start.
    pub(crate) fn respawn(&mut self) -> Result<(), E2eBenchError> {
        self.spawn_child()
    }

    /// Waits until the order-entry port accepts a connection.
    pub(crate) fn wait_listening(&mut self) -> Result<(), E2eBenchError> {
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            self.check_running()?;
            if TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(E2eBenchError::ServerStartTimeout {
                    address: self.address,
                    stderr: self.stderr_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An error if the server has exited.
    pub(crate) fn check_running(&self) -> Result<(), E2eBenchError> {
        let mut child = self.child.borrow_mut();
        let Some(running) = child.as_mut() else {
            return Ok(());
        };
        match running.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                // Reaped: nothing is left to kill or wait for.
                *child = None;
                Err(E2eBenchError::ServerExited {
                    status: status.to_string(),
                    stderr: self.stderr_tail(),
                })
            }
            Err(error) => Err(io_error("polling the exchange server")(error)),
        }
    }

    /// The last lines of the server's standard error.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path("stderr")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        if tail.is_empty() {
            "(empty)".to_owned()
        } else {
            tail
        }
    }

    /// Kills the server, waits for it and removes its directory.
    pub(crate) fn stop(mut self) -> Result<(), E2eBenchError> {
        let result = self.kill_and_wait();
        let removed = std::fs::remove_dir_all(&self.dir)
            .map_err(io_error(format!("removing {}", self.dir.display())));
        result.and(removed)
    }

    fn kill_and_wait(&mut self) -> Result<(), E2eBenchError> {
        let Some(mut child) = self.child.get_mut().take() else {
            return Ok(());
        };
        // Already exited is fine: kill reports it, wait reaps it.
        let _ = child.kill();
        child
            .wait()
            .map(|_| ())
            .map_err(io_error("waiting for the exchange server"))
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.kill_and_wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `EXECUTABLE config show`: the embedded default configuration as TOML.
fn default_configuration(executable: &Path) -> Result<String, E2eBenchError> {
    let output = Command::new(executable)
        .args(["config", "show"])
        .stdin(Stdio::null())
        .output()
        .map_err(io_error(format!(
            "running {} config show",
            executable.display()
        )))?;
    if !output.status.success() {
        return Err(E2eBenchError::Config(format!(
            "{} config show failed ({}): {}",
            executable.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| E2eBenchError::Config("config show printed non-UTF-8 text".to_owned()))
}

/// Three distinct free loopback ports (free when asked: another process
/// could take them before the server binds, which then fails loudly).
fn free_ports() -> Result<[u16; 3], E2eBenchError> {
    // All three held at once, so that they differ.
    let listeners = [(); 3].map(|()| TcpListener::bind("127.0.0.1:0"));
    let mut ports = [0; 3];
    for (port, listener) in ports.iter_mut().zip(listeners) {
        *port = listener
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .map_err(io_error("finding a free port"))?;
    }
    Ok(ports)
}

/// The default configuration with this bench's data directory, ports
/// (order entry, funding, market-data snapshots), durability, sessions and
/// rate limit.
fn patch_configuration(
    default_toml: &str,
    data_dir: &Path,
    [order_entry, funding, md_snapshot]: [u16; 3],
    durability: ServerDurability,
    connections: usize,
) -> Result<String, E2eBenchError> {
    use toml::{Table, Value};
    let bad = |problem: String| E2eBenchError::Config(format!("the configuration: {problem}"));
    let mut table: Table = default_toml
        .parse()
        .map_err(|error| bad(format!("not TOML: {error}")))?;
    table.insert(
        "data_dir".to_owned(),
        Value::String(data_dir.display().to_string()),
    );
    let journal = table
        .entry("journal")
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| bad("[journal] is not a table".to_owned()))?;
    journal.insert(
        "durability".to_owned(),
        Value::String(durability.name().to_owned()),
    );
    let server = table
        .entry("server")
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| bad("[server] is not a table".to_owned()))?;
    server.insert(
        "order_entry".to_owned(),
        Value::String(format!("127.0.0.1:{order_entry}")),
    );
    server.insert(
        "funding".to_owned(),
        Value::String(format!("127.0.0.1:{funding}")),
    );
    // Market data runs as in `serve`, its re-request port chosen by the
    // system; the snapshot port is known, so that a restart can be timed
    // until it answers.
    let marketdata = table
        .entry("marketdata")
        .or_insert_with(|| Value::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| bad("[marketdata] is not a table".to_owned()))?;
    marketdata.insert(
        "rerequest".to_owned(),
        Value::String("127.0.0.1:0".to_owned()),
    );
    marketdata.insert(
        "snapshot".to_owned(),
        Value::String(format!("127.0.0.1:{md_snapshot}")),
    );
    let server = table
        .get_mut("server")
        .and_then(Value::as_table_mut)
        .ok_or_else(|| bad("[server] is not a table".to_owned()))?;
    // Far above anything a loopback client can send: the limiter must not
    // be what is measured.
    server.insert("messages_per_second".to_owned(), Value::Integer(1 << 31));
    server.insert("messages_burst".to_owned(), Value::Integer(1 << 31));
    // The bench's connections, the readiness probe, and room to spare.
    let sessions_min = i64::try_from(connections)
        .unwrap_or(i64::MAX)
        .saturating_add(4);
    let sessions = server
        .get("sessions_max")
        .and_then(Value::as_integer)
        .unwrap_or(0)
        .max(sessions_min);
    server.insert("sessions_max".to_owned(), Value::Integer(sessions));
    Ok(table.to_string())
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

impl E2eBenchReport {
    /// A table for people.
    pub(crate) fn table(&self, machine: &Machine, command: &str) -> String {
        let mut peers = vec![&self.echo_mio, &self.echo_spin, &self.echo_blocking];
        peers.extend(self.exchange.as_ref());
        let server = match &self.server {
            Some(server) => format!(
                "{} server at {} (journal durability {}), first UserRefNums {:?}",
                server.mode,
                server.address,
                server.durability.unwrap_or("as configured there"),
                server.first_user_ref_nums
            ),
            None => "none (echo floor only)".to_owned(),
        };
        let mut text = format!(
            "exchange-bench e2e: OUCH order to acknowledgement over loopback, against a TCP echo \
             floor\n\
             machine: {machine}\n\
             command: {command}\n\
             exchange: {server}\n\
             {} connections driven by one client thread; latency: {} orders, one outstanding \
             per connection; throughput: window {} per connection for {:.1} s; {:.1} s warm-up \
             before each\n\
             frames: Enter Order {} bytes, Order Accepted {} bytes; {}\n\n",
            self.connections,
            grouped(self.orders),
            self.window,
            self.throughput_seconds_requested,
            self.warm_up_seconds,
            self.enter_order_frame_bytes,
            self.order_accepted_frame_bytes,
            self.order_mix,
        );
        let mut rows: Vec<(&str, Vec<String>, Option<String>)> = Vec::new();
        let ratio = |value: f64| Some(format!("{value:.2}x"));
        rows.push((
            "",
            peers.iter().map(|peer| peer.peer.to_owned()).collect(),
            self.ratios.map(|_| "exchange/echo".to_owned()),
        ));
        let mut figure =
            |label: &'static str, value: &dyn Fn(&PeerReport) -> String, ratio: Option<String>| {
                rows.push((label, peers.iter().map(|peer| value(peer)).collect(), ratio));
            };
        figure(
            "round trip ns: p50",
            &|peer| grouped(peer.round_trip_ns.p50),
            self.ratios.and_then(|ratios| ratio(ratios.p50)),
        );
        figure("  p90", &|peer| grouped(peer.round_trip_ns.p90), None);
        figure("  p99", &|peer| grouped(peer.round_trip_ns.p99), None);
        figure(
            "  p99.9",
            &|peer| grouped(peer.round_trip_ns.p999),
            self.ratios.and_then(|ratios| ratio(ratios.p999)),
        );
        figure("  max", &|peer| grouped(peer.round_trip_ns.max), None);
        figure(
            "  mean",
            &|peer| grouped(peer.round_trip_ns.mean.round() as u64),
            None,
        );
        figure("  samples", &|peer| grouped(peer.round_trip_ns.count), None);
        figure(
            "throughput orders/s",
            &|peer| grouped(peer.throughput_orders_per_sec.round() as u64),
            self.ratios.and_then(|ratios| ratio(ratios.throughput)),
        );
        figure("  orders", &|peer| grouped(peer.throughput_orders), None);
        figure(
            "  seconds",
            &|peer| format!("{:.3}", peer.throughput_seconds),
            None,
        );
        figure(
            "loaded round trip ns: p50",
            &|peer| grouped(peer.loaded_round_trip_ns.p50),
            None,
        );
        figure(
            "  p99",
            &|peer| grouped(peer.loaded_round_trip_ns.p99),
            None,
        );
        figure(
            "  p99.9",
            &|peer| grouped(peer.loaded_round_trip_ns.p999),
            None,
        );
        figure(
            "  max",
            &|peer| grouped(peer.loaded_round_trip_ns.max),
            None,
        );
        let label_width = rows.iter().map(|row| row.0.len()).max().unwrap_or(0);
        let value_width = rows
            .iter()
            .flat_map(|row| row.1.iter().chain(row.2.iter()).map(String::len))
            .max()
            .unwrap_or(0);
        for (label, values, ratio) in rows {
            text.push_str(&format!("{label:<label_width$}"));
            for value in values.iter().chain(ratio.iter()) {
                text.push_str(&format!("  {value:>value_width$}"));
            }
            text.push('\n');
        }
        if let Some(ratios) = self.ratios {
            let verdict = |met: bool| if met { "met" } else { "NOT met" };
            text.push_str(&format!(
                "\ntargets (exchange against echo_mio): p50 within {:.1}x: {:.2}x, {}; \
                 p99.9 within {:.1}x: {:.2}x, {}; throughput at least {}/s: {}, {}\n",
                ratios.p50_ratio_max,
                ratios.p50,
                verdict(ratios.p50_met),
                ratios.p999_ratio_max,
                ratios.p999,
                verdict(ratios.p999_met),
                grouped(ratios.throughput_min as u64),
                grouped(
                    self.exchange
                        .as_ref()
                        .map_or(0, |exchange| exchange.throughput_orders_per_sec.round()
                            as u64)
                ),
                verdict(ratios.throughput_met),
            ));
        }
        text.push_str(
            "\nround trip: write of an Enter Order to the read bringing its Order Accepted, \
             clock reads included; loaded: the same during the throughput phase (queueing \
             included); throughput: acknowledgements from the first write to the last one.",
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick_config(server: ServerChoice) -> E2eBenchConfig {
        E2eBenchConfig {
            connections: 2,
            window: 32,
            orders: 2_000,
            throughput_duration: Duration::from_millis(200),
            warm_up_duration: Duration::from_millis(50),
            server,
        }
    }

    #[test]
    fn e2e_frames_have_the_documented_layout() {
        let mut frame = enter_order_frame();
        assert_eq!(frame.len(), 50);
        frame[ENTER_ORDER_REF_OFFSET..ENTER_ORDER_REF_OFFSET + 4]
            .copy_from_slice(&0x0102_0304_u32.to_be_bytes());
        let (decoded, consumed) = soupbin::next_frame(&frame, PACKET_LENGTH_MAX)
            .unwrap()
            .unwrap();
        assert_eq!(consumed, frame.len());
        let ClientPacket::UnsequencedData(payload) = ClientPacket::decode(decoded).unwrap() else {
            panic!("not unsequenced data");
        };
        let ouch::Inbound::EnterOrder(order) = ouch::Inbound::decode(payload).unwrap() else {
            panic!("not an Enter Order");
        };
        assert_eq!(order.user_ref_num, 0x0102_0304);
        assert_eq!(order.time_in_force, TimeInForce::ImmediateOrCancel);
        assert_eq!(order.price, Price(950_000));

        let mut reply = order_accepted_frame();
        assert_eq!(reply.len(), 67);
        reply[ORDER_ACCEPTED_REF_OFFSET..ORDER_ACCEPTED_REF_OFFSET + 4]
            .copy_from_slice(&7_u32.to_be_bytes());
        let (decoded, _) = soupbin::next_frame(&reply, PACKET_LENGTH_MAX)
            .unwrap()
            .unwrap();
        let ServerPacket::SequencedData(payload) = ServerPacket::decode(decoded).unwrap() else {
            panic!("not sequenced data");
        };
        let Outbound::OrderAccepted(accepted) = Outbound::decode(payload).unwrap() else {
            panic!("not an Order Accepted");
        };
        assert_eq!(accepted.user_ref_num, 7);
        assert_eq!(accepted.order_state, OrderState::Dead);
    }

    #[test]
    fn e2e_configuration_is_patched() {
        let default_toml = include_str!("../../tools/default.toml");
        let text = patch_configuration(
            default_toml,
            Path::new("/tmp/x/data"),
            [40001, 40002, 40003],
            ServerDurability::Memory,
            4,
        )
        .unwrap();
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["data_dir"].as_str(), Some("/tmp/x/data"));
        assert_eq!(table["journal"]["durability"].as_str(), Some("memory"));
        let server = &table["server"];
        assert_eq!(server["order_entry"].as_str(), Some("127.0.0.1:40001"));
        assert_eq!(server["funding"].as_str(), Some("127.0.0.1:40002"));
        assert!(server["sessions_max"].as_integer().unwrap() >= 6);
        assert!(server["messages_per_second"].as_integer().unwrap() > 1_000_000_000);
        assert!(server["messages_burst"].as_integer().unwrap() > 1_000_000_000);
        // Everything else is kept.
        assert_eq!(
            table["logins"].as_array().map(Vec::len),
            default_toml.parse::<toml::Table>().unwrap()["logins"]
                .as_array()
                .map(Vec::len)
        );
    }

    #[test]
    fn e2e_acknowledgements_match_user_ref_nums() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut connection = Connection::open(address, 4, 10, "test").unwrap();
        let now = Instant::now();
        connection.queue_orders(3, now);
        assert_eq!(connection.in_flight(), 3);
        assert_eq!(connection.acknowledge(9, now), None, "before the window");
        assert_eq!(connection.acknowledge(13, now), None, "after the window");
        assert!(connection.acknowledge(11, now).is_some());
        assert_eq!(connection.in_flight(), 3, "10 is still outstanding");
        assert_eq!(connection.acknowledge(11, now), None, "a repeat");
        assert!(connection.acknowledge(10, now).is_some());
        assert_eq!(connection.in_flight(), 1);
        assert!(connection.acknowledge(12, now).is_some());
        assert_eq!(connection.in_flight(), 0);
        assert_eq!(connection.out.len(), 3 * ENTER_ORDER_FRAME_BYTES);
    }

    #[test]
    fn e2e_echo_floor_quick() {
        let config = quick_config(ServerChoice::EchoOnly);
        let mut steps = Vec::new();
        let report = measure_e2e(&config, |step| steps.push(step.to_owned())).unwrap();
        assert_eq!(steps.len(), 3, "{steps:?}");
        for peer in [&report.echo_mio, &report.echo_spin, &report.echo_blocking] {
            assert_eq!(peer.round_trip_ns.count, 2_000, "{peer:?}");
            assert!(peer.round_trip_ns.p50 > 0);
            assert!(peer.round_trip_ns.p50 <= peer.round_trip_ns.p999);
            assert!(peer.round_trip_ns.p999 <= peer.round_trip_ns.max);
            assert!(peer.throughput_orders > 0);
            assert!(peer.throughput_orders_per_sec > 0.0);
            assert_eq!(peer.loaded_round_trip_ns.count, peer.throughput_orders);
        }
        assert!(report.exchange.is_none() && report.ratios.is_none());

        let machine = Machine::detect();
        let table = report.table(&machine, "x");
        assert!(
            table.contains("echo_spin") && table.contains("p99.9"),
            "{table}"
        );
        let json = serde_json::to_string(&E2eJson {
            report: &report,
            machine: &machine,
            command: "x",
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        for key in ["connections", "window", "orders", "machine", "command"] {
            assert!(value.get(key).is_some(), "{key} missing from {json}");
        }
        assert!(
            value["echo_mio"]["round_trip_ns"]["p999"].is_u64(),
            "{json}"
        );
        assert!(value["exchange"].is_null(), "{json}");
    }

    #[test]
    fn e2e_a_server_that_exits_is_reported() {
        // A stand-in for `exchange`: `config show` prints the default
        // configuration, `serve` fails before listening.
        let script =
            std::env::temp_dir().join(format!("exchange-bench-e2e-test-{}.sh", std::process::id()));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ \"$1\" = config ]; then cat <<'EOF'\n{}\nEOF\nexit 0; fi\n\
                 echo 'serve: not listening' >&2\nexit 3\n",
                include_str!("../../tools/default.toml")
            ),
        )
        .unwrap();
        let made_executable = Command::new("chmod").arg("+x").arg(&script).status();
        if !made_executable.is_ok_and(|status| status.success()) {
            let _ = std::fs::remove_file(&script);
            return;
        }
        let error = SpawnedServer::start(&script, ServerDurability::Memory, 2).unwrap_err();
        let _ = std::fs::remove_file(&script);
        let text = error.to_string();
        assert!(
            matches!(error, E2eBenchError::ServerExited { .. }),
            "{text}"
        );
        assert!(text.contains("serve: not listening"), "{text}");
    }
}
