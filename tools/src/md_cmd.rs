//! `exchange md …`: market-data tools built on `marketdata::subscriber`.
//!
//! * `listen` prints every ITCH message of the live feed with its MoldUDP64
//!   session and sequence number, as text or one JSON object per line.
//! * `book SYMBOL` draws one instrument's depth ladder in the terminal,
//!   redrawn as the feed arrives (at most 10 times a second), or once with
//!   `--once`.
//! * `stats` prints per-second rates, recovery counters and engine-to-receipt
//!   latency percentiles, then a summary.
//!
//! Every command joins the feeds with the same options (defaults: the local
//! exchange of `docs/design.md`) and starts from a snapshot, or from
//! sequence 1 with `--from-start`. Data goes to standard output; notes
//! (snapshots, gaps, re-requests, session changes) go to standard error.
//! The formatting is in pure functions with unit tests at the bottom.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use marketdata::book::Book;
use marketdata::itch::{Message, Price, Side, Stock};
use marketdata::moldudp64::Session;
use marketdata::subscriber::{
    Start, Subscriber, SubscriberConfig, SubscriberEvent, SubscriberStats,
};
use serde_json::{Map, Value, json};

/// How long one poll of the subscriber may block, so that Ctrl-C, `--seconds`
/// and redraws are noticed promptly.
const POLL_SLICE: Duration = Duration::from_millis(50);
/// Shortest time between two redraws of the ladder (10 per second).
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);
/// `book --once`: the feed counts as caught up after this long without news.
const QUIET_PERIOD: Duration = Duration::from_millis(300);
/// `book --once`: give up waiting to catch up after this long.
const CATCH_UP_MAX: Duration = Duration::from_secs(10);
/// Latencies above this (ns) are recorded as this.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// `exchange md`: feed options and the command to run.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  exchange md listen --count 20
  exchange md listen --from-start --json
  exchange md book ACME --levels 5
  exchange md book ACME --once
  exchange md stats --seconds 10 --feed-b 239.255.42.2:26400")]
pub(crate) struct MdArgs {
    #[command(flatten)]
    feed: FeedArgs,
    #[command(subcommand)]
    command: MdCommand,
}

/// Options shared by every `md` command (accepted before or after the
/// command's name).
#[derive(Debug, Args)]
#[command(next_help_heading = "Feed options")]
struct FeedArgs {
    /// Feed A: multicast group and port.
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        default_value = "239.255.42.1:26400"
    )]
    feed_a: SocketAddrV4,
    /// Feed B (same packets as A), if the exchange publishes one.
    #[arg(long, global = true, value_name = "ADDR")]
    feed_b: Option<SocketAddrV4>,
    /// Address of the interface to join the groups on.
    #[arg(long, global = true, value_name = "IP", default_value = "127.0.0.1")]
    interface: Ipv4Addr,
    /// Re-request server (MoldUDP64 over UDP).
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        default_value = "127.0.0.1:9003"
    )]
    rerequest: SocketAddr,
    /// Snapshot service (SoupBinTCP over TCP).
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        default_value = "127.0.0.1:9004"
    )]
    snapshot: SocketAddr,
    /// Re-request the session from sequence 1 instead of starting from a
    /// snapshot.
    #[arg(long, global = true)]
    from_start: bool,
    /// Drop this share (0–1) of received feed packets on purpose, to watch
    /// gap recovery at work.
    #[arg(long, global = true, value_name = "SHARE", default_value_t = 0.0)]
    drop_share: f64,
    /// Seed of --drop-share.
    #[arg(long, global = true, value_name = "N", default_value_t = 1)]
    drop_seed: u64,
}

impl FeedArgs {
    fn config(&self) -> anyhow::Result<SubscriberConfig> {
        if !(0.0..=1.0).contains(&self.drop_share) {
            bail!("--drop-share must be between 0 and 1");
        }
        Ok(SubscriberConfig {
            feed_a: self.feed_a,
            feed_b: self.feed_b,
            interface: self.interface,
            rerequest: self.rerequest,
            snapshot: self.snapshot,
            start: if self.from_start {
                Start::Beginning
            } else {
                Start::Snapshot
            },
            drop_share: self.drop_share,
            drop_seed: self.drop_seed,
            ..SubscriberConfig::default()
        })
    }

    fn join(&self) -> anyhow::Result<Subscriber> {
        let config = self.config()?;
        Subscriber::join(config).with_context(|| {
            format!(
                "joining the feed {} (snapshot service {})",
                self.feed_a, self.snapshot
            )
        })
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
enum MdCommand {
    /// Print each ITCH message with its session and sequence number, one per
    /// line, until Ctrl-C, --count messages or --seconds.
    Listen {
        /// One JSON object per line: "session", "sequence", "type", "name"
        /// and every field (prices as 4-decimal strings and as "_raw"
        /// integers).
        #[arg(long)]
        json: bool,
        /// Stop after this many messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long, value_name = "S")]
        seconds: Option<f64>,
    },
    /// Draw SYMBOL's depth ladder (price, size, orders per level; last
    /// trade; BBO; sequence), redrawn as the feed arrives, until Ctrl-C.
    Book {
        /// The instrument, as in the Stock Directory (e.g. ACME).
        symbol: String,
        /// Price levels shown per side.
        #[arg(long, value_name = "N", default_value_t = 10)]
        levels: usize,
        /// Catch up (snapshot and live messages until the feed is quiet),
        /// print one ladder and exit.
        #[arg(long)]
        once: bool,
    },
    /// Print per-second message, packet and byte rates, gaps, re-requests,
    /// recovered messages, snapshots, A/B duplicates and engine-to-receipt
    /// latency percentiles; a summary at the end (Ctrl-C or --seconds).
    Stats {
        /// Stop after this many seconds.
        #[arg(long, value_name = "S")]
        seconds: Option<f64>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `md` command.
pub(crate) fn run(args: MdArgs) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    match args.command {
        MdCommand::Listen {
            json,
            count,
            seconds,
        } => listen(&args.feed, json, count, deadline(seconds)?, &stop),
        MdCommand::Book {
            symbol,
            levels,
            once,
        } => book(&args.feed, &symbol, levels, once, &stop),
        MdCommand::Stats { seconds, json } => stats(&args.feed, deadline(seconds)?, json, &stop),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn deadline(seconds: Option<f64>) -> anyhow::Result<Option<Instant>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map(|d| Instant::now() + d)
                .context("--seconds must be a non-negative number")
        })
        .transpose()
}

fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// A note on standard error for the events that are not data.
fn note(event: &SubscriberEvent<'_>) {
    match event {
        SubscriberEvent::Message { .. } => {}
        SubscriberEvent::Skipped { sequence, error } => {
            eprintln!("skipped message {sequence}: {error}")
        }
        SubscriberEvent::GapDetected(gap) => {
            eprintln!("gap: {} messages from {}", gap.count, gap.first)
        }
        SubscriberEvent::RerequestSent(r) => {
            eprintln!("re-request: {} messages from {}", r.count, r.sequence)
        }
        SubscriberEvent::ResyncStarted(reason) => eprintln!("resync from a snapshot: {reason:?}"),
        SubscriberEvent::SnapshotApplied {
            session,
            next_sequence,
            messages,
        } => eprintln!(
            "snapshot of session {}: {messages} messages, live from sequence {next_sequence}",
            session.as_str()
        ),
        SubscriberEvent::SnapshotFailed(error) => eprintln!("snapshot failed: {error}"),
        SubscriberEvent::EndOfSession {
            session,
            next_sequence,
        } => eprintln!(
            "end of session {} at sequence {next_sequence}",
            session.as_str()
        ),
        SubscriberEvent::SessionChanged { session, .. } => {
            eprintln!("new session {}", session.as_str())
        }
    }
}

// ---------------------------------------------------------------------------
// listen
// ---------------------------------------------------------------------------

fn listen(
    feed: &FeedArgs,
    json: bool,
    count: Option<u64>,
    deadline: Option<Instant>,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut subscriber = feed.join()?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut printed = 0u64;
    let mut write_error = None;
    while !stop.load(Ordering::Relaxed) && !expired(deadline) {
        if count.is_some_and(|c| printed >= c) {
            break;
        }
        subscriber.poll(POLL_SLICE, &mut |event| {
            let SubscriberEvent::Message {
                session,
                sequence,
                message,
                ..
            } = event
            else {
                return note(event);
            };
            if count.is_some_and(|c| printed >= c) || write_error.is_some() {
                return;
            }
            let line = if json {
                message_json(*session, *sequence, message).to_string()
            } else {
                message_text(*session, *sequence, message)
            };
            if let Err(e) = writeln!(out, "{line}") {
                write_error = Some(e);
            }
            printed += 1;
        })?;
        out.flush()?;
        if let Some(e) = write_error.take() {
            // A closed pipe (e.g. `| head`) ends the listing quietly.
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    }
    Ok(())
}

/// One field of a message, for both renderings.
#[derive(Debug, Clone, PartialEq)]
enum Field<'a> {
    Number(u64),
    Price(Price),
    Text(&'a str),
    Char(u8),
}

/// The name and fields of a message, in wire order after the common
/// header's (stock locate, tracking number, timestamp).
fn fields(message: &Message) -> (&'static str, Vec<(&'static str, Field<'_>)>) {
    use Field::{Char, Number as N, Text};
    let header = message.header();
    let mut out = vec![
        ("stock_locate", N(header.stock_locate.into())),
        ("tracking_number", N(header.tracking_number.into())),
        ("timestamp", N(header.timestamp.nanos())),
    ];
    let name = match message {
        Message::SystemEvent(m) => {
            out.push(("event_code", Char(m.event_code.byte())));
            "SystemEvent"
        }
        Message::StockDirectory(m) => {
            out.extend([
                ("stock", Text(m.stock.trimmed())),
                ("market_category", Char(m.market_category.byte())),
                (
                    "financial_status_indicator",
                    Char(m.financial_status_indicator.byte()),
                ),
                ("round_lot_size", N(m.round_lot_size.into())),
                ("round_lots_only", Char(m.round_lots_only.byte())),
                ("issue_classification", Char(m.issue_classification.byte())),
                ("issue_sub_type", Text(m.issue_sub_type.trimmed())),
                ("authenticity", Char(m.authenticity.byte())),
                (
                    "short_sale_threshold_indicator",
                    Char(m.short_sale_threshold_indicator.byte()),
                ),
                ("ipo_flag", Char(m.ipo_flag.byte())),
                (
                    "luld_reference_price_tier",
                    Char(m.luld_reference_price_tier.byte()),
                ),
                ("etp_flag", Char(m.etp_flag.byte())),
                ("etp_leverage_factor", N(m.etp_leverage_factor.into())),
                ("inverse_indicator", Char(m.inverse_indicator.byte())),
            ]);
            "StockDirectory"
        }
        Message::StockTradingAction(m) => {
            out.extend([
                ("stock", Text(m.stock.trimmed())),
                ("trading_state", Char(m.trading_state.byte())),
                ("reserved", Char(m.reserved.byte())),
                ("reason", Text(m.reason.trimmed())),
            ]);
            "StockTradingAction"
        }
        Message::AddOrder(m) => {
            out.extend([
                ("order_reference_number", N(m.order_reference_number)),
                ("side", Char(m.side.byte())),
                ("shares", N(m.shares.into())),
                ("stock", Text(m.stock.trimmed())),
                ("price", Field::Price(m.price)),
            ]);
            "AddOrder"
        }
        Message::AddOrderMpid(m) => {
            out.extend([
                ("order_reference_number", N(m.order_reference_number)),
                ("side", Char(m.side.byte())),
                ("shares", N(m.shares.into())),
                ("stock", Text(m.stock.trimmed())),
                ("price", Field::Price(m.price)),
                ("attribution", Text(m.attribution.trimmed())),
            ]);
            "AddOrderMpid"
        }
        Message::OrderExecuted(m) => {
            out.extend([
                ("order_reference_number", N(m.order_reference_number)),
                ("executed_shares", N(m.executed_shares.into())),
                ("match_number", N(m.match_number)),
            ]);
            "OrderExecuted"
        }
        Message::OrderExecutedWithPrice(m) => {
            out.extend([
                ("order_reference_number", N(m.order_reference_number)),
                ("executed_shares", N(m.executed_shares.into())),
                ("match_number", N(m.match_number)),
                ("printable", Char(m.printable.byte())),
                ("execution_price", Field::Price(m.execution_price)),
            ]);
            "OrderExecutedWithPrice"
        }
        Message::OrderCancel(m) => {
            out.extend([
                ("order_reference_number", N(m.order_reference_number)),
                ("cancelled_shares", N(m.cancelled_shares.into())),
            ]);
            "OrderCancel"
        }
        Message::OrderDelete(m) => {
            out.push(("order_reference_number", N(m.order_reference_number)));
            "OrderDelete"
        }
        Message::OrderReplace(m) => {
            out.extend([
                (
                    "original_order_reference_number",
                    N(m.original_order_reference_number),
                ),
                (
                    "new_order_reference_number",
                    N(m.new_order_reference_number),
                ),
                ("shares", N(m.shares.into())),
                ("price", Field::Price(m.price)),
            ]);
            "OrderReplace"
        }
        Message::Trade(m) => {
            out.extend([
                ("order_reference_number", N(m.order_reference_number)),
                ("side", Char(m.side.byte())),
                ("shares", N(m.shares.into())),
                ("stock", Text(m.stock.trimmed())),
                ("price", Field::Price(m.price)),
                ("match_number", N(m.match_number)),
            ]);
            "Trade"
        }
        Message::BrokenTrade(m) => {
            out.push(("match_number", N(m.match_number)));
            "BrokenTrade"
        }
    };
    (name, out)
}

/// A Price (4) as a decimal string with 4 places: `Price(1_000_100)` is
/// `"100.0100"`.
fn format_price(price: Price) -> String {
    format!("{}.{:04}", price.0 / 10_000, price.0 % 10_000)
}

/// One line of text: `SESSION SEQUENCE NAME key=value …`.
fn message_text(session: Session, sequence: u64, message: &Message) -> String {
    let (name, fields) = fields(message);
    let mut line = format!("{} {sequence} {name}", session.as_str());
    for (key, value) in fields {
        // Writing to a String cannot fail.
        let _ = match value {
            Field::Number(n) => write!(line, " {key}={n}"),
            Field::Price(p) => write!(line, " {key}={}", format_price(p)),
            Field::Text(t) => write!(line, " {key}={t:?}"),
            // A blank code (common in Stock Directory) shows as ' '.
            Field::Char(b' ') => write!(line, " {key}=' '"),
            Field::Char(c) => write!(line, " {key}={}", char::from(c)),
        };
    }
    line
}

/// One JSON object: session, sequence, type (the ITCH letter), name and
/// every field; a price both as `"key": "100.0000"` and `"key_raw":
/// 1000000`.
fn message_json(session: Session, sequence: u64, message: &Message) -> Value {
    let (name, fields) = fields(message);
    let mut object = Map::new();
    object.insert("session".into(), json!(session.as_str()));
    object.insert("sequence".into(), json!(sequence));
    object.insert(
        "type".into(),
        json!(char::from(message.message_type()).to_string()),
    );
    object.insert("name".into(), json!(name));
    for (key, value) in fields {
        let value = match value {
            Field::Number(n) => json!(n),
            Field::Price(p) => {
                object.insert(format!("{key}_raw"), json!(p.0));
                json!(format_price(p))
            }
            Field::Text(t) => json!(t),
            Field::Char(c) => json!(char::from(c).to_string()),
        };
        object.insert(key.into(), value);
    }
    Value::Object(object)
}

// ---------------------------------------------------------------------------
// book
// ---------------------------------------------------------------------------

fn book(
    feed: &FeedArgs,
    symbol: &str,
    levels: usize,
    once: bool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let stock = Stock::new(symbol)
        .with_context(|| format!("{symbol:?} is not a symbol (up to 8 ASCII characters)"))?;
    let mut subscriber = feed.join()?;
    catch_up(&mut subscriber, stop)?;
    let Some(locate) = subscriber.books().locate_of(stock) else {
        bail!(
            "symbol {symbol} is not in the directory (known: {})",
            known_symbols(&subscriber).join(", ")
        );
    };
    let draw = |subscriber: &Subscriber| {
        let book = subscriber.books().book(locate).cloned().unwrap_or_default();
        let header = LadderHeader {
            symbol,
            session: subscriber.session(),
            next_sequence: subscriber.next_sequence(),
            trading_state: subscriber.books().trading_state(locate).map(|c| c.byte()),
        };
        render_ladder(&header, &book, levels)
    };
    if once {
        print!("{}", draw(&subscriber));
        return Ok(());
    }
    let mut changed = true;
    let mut drawn_at: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if changed && drawn_at.is_none_or(|at| at.elapsed() >= REDRAW_INTERVAL) {
            // Clear the screen, cursor home, then the ladder.
            print!("\x1b[2J\x1b[H{}", draw(&subscriber));
            io::stdout().flush()?;
            drawn_at = Some(Instant::now());
            changed = false;
        }
        subscriber.poll(POLL_SLICE, &mut |event| match event {
            SubscriberEvent::Message { message, .. } => {
                changed |= message.header().stock_locate == locate;
            }
            SubscriberEvent::SnapshotApplied { .. } | SubscriberEvent::SessionChanged { .. } => {
                changed = true;
            }
            _ => {}
        })?;
    }
    Ok(())
}

/// Polls until the subscriber is caught up and the feed has been quiet for
/// a moment (or `CATCH_UP_MAX` passed).
fn catch_up(subscriber: &mut Subscriber, stop: &AtomicBool) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut quiet_since = Instant::now();
    while !stop.load(Ordering::Relaxed) && start.elapsed() < CATCH_UP_MAX {
        let mut news = false;
        subscriber.poll(POLL_SLICE, &mut |event| {
            news = true;
            note(event);
        })?;
        if news || !subscriber.is_caught_up() {
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= QUIET_PERIOD {
            return Ok(());
        }
    }
    if !subscriber.is_caught_up() {
        eprintln!("warning: not caught up after {CATCH_UP_MAX:?}; the ladder may be stale");
    }
    Ok(())
}

fn known_symbols(subscriber: &Subscriber) -> Vec<String> {
    let books = subscriber.books();
    (0..=u16::MAX)
        .filter_map(|locate| books.symbol(locate))
        .map(|stock| stock.trimmed().to_string())
        .collect()
}

/// What the ladder's title shows.
#[derive(Debug)]
struct LadderHeader<'a> {
    symbol: &'a str,
    session: Option<Session>,
    next_sequence: u64,
    trading_state: Option<u8>,
}

/// The depth ladder: a title, last trade and BBO, then `levels` rows of
/// bids (left) and asks (right), best first.
fn render_ladder(header: &LadderHeader<'_>, book: &Book, levels: usize) -> String {
    let mut out = String::new();
    let session = header.session.as_ref().map_or("-", Session::as_str);
    let state = header.trading_state.map_or('-', char::from);
    let _ = writeln!(
        out,
        "{}  session {session}  next sequence {}  trading state {state}",
        header.symbol, header.next_sequence
    );
    let side = |level: Option<(Price, u64)>| {
        level.map_or("-".to_string(), |(p, size)| {
            format!("{size} @ {}", format_price(p))
        })
    };
    let last = book.last_trade().map_or("-".to_string(), |(p, shares)| {
        format!("{shares} @ {}", format_price(p))
    });
    let _ = writeln!(
        out,
        "BBO {} / {}  last trade {last}",
        side(book.best_bid()),
        side(book.best_ask())
    );
    let _ = writeln!(
        out,
        "{:>7} {:>10} {:>12} | {:<12} {:>10} {:>7}",
        "orders", "size", "bid", "ask", "size", "orders"
    );
    let bids = book.depth(Side::Buy, levels);
    let asks = book.depth(Side::Sell, levels);
    for row in 0..bids.len().max(asks.len()) {
        let (bid_orders, bid_size, bid) = bids.get(row).map_or_else(
            || (String::new(), String::new(), String::new()),
            |&(p, size, orders)| (orders.to_string(), size.to_string(), format_price(p)),
        );
        let (ask, ask_size, ask_orders) = asks.get(row).map_or_else(
            || (String::new(), String::new(), String::new()),
            |&(p, size, orders)| (format_price(p), size.to_string(), orders.to_string()),
        );
        let _ = writeln!(
            out,
            "{bid_orders:>7} {bid_size:>10} {bid:>12} | {ask:<12} {ask_size:>10} {ask_orders:>7}"
        );
    }
    out
}

// ---------------------------------------------------------------------------
// stats
// ---------------------------------------------------------------------------

fn latency_histogram() -> Histogram<u64> {
    // Bounds and precision are constants that `new_with_bounds` accepts.
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds")
}

fn stats(
    feed: &FeedArgs,
    deadline: Option<Instant>,
    json: bool,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let mut subscriber = feed.join()?;
    let started = Instant::now();
    let mut second = latency_histogram();
    let mut total = latency_histogram();
    let mut previous = subscriber.stats();
    let mut interval_start = Instant::now();
    while !stop.load(Ordering::Relaxed) && !expired(deadline) {
        subscriber.poll(POLL_SLICE, &mut |event| {
            if let SubscriberEvent::Message { latency_ns, .. } = event {
                // A negative latency is clock skew; it counts as the least.
                let ns = u64::try_from(*latency_ns).unwrap_or(0).max(1);
                second.saturating_record(ns);
                total.saturating_record(ns);
            } else {
                note(event);
            }
        })?;
        if interval_start.elapsed() >= Duration::from_secs(1) {
            let now = subscriber.stats();
            let line = StatsLine {
                elapsed: started.elapsed(),
                interval: interval_start.elapsed(),
                delta: difference(&now, &previous),
                latency: &second,
                summary: false,
            };
            println!("{}", line.render(json));
            previous = now;
            second.reset();
            interval_start = Instant::now();
        }
    }
    let line = StatsLine {
        elapsed: started.elapsed(),
        interval: started.elapsed(),
        delta: subscriber.stats(),
        latency: &total,
        summary: true,
    };
    println!("{}", line.render(json));
    Ok(())
}

/// `now - before`, counter by counter (latency fields are not used).
fn difference(now: &SubscriberStats, before: &SubscriberStats) -> SubscriberStats {
    SubscriberStats {
        packets_a: now.packets_a - before.packets_a,
        packets_b: now.packets_b - before.packets_b,
        packets_rerequest: now.packets_rerequest - before.packets_rerequest,
        packets_dropped: now.packets_dropped - before.packets_dropped,
        packets_invalid: now.packets_invalid - before.packets_invalid,
        bytes: now.bytes - before.bytes,
        messages: now.messages - before.messages,
        messages_skipped: now.messages_skipped - before.messages_skipped,
        duplicates: now.duplicates - before.duplicates,
        gaps: now.gaps - before.gaps,
        rerequests: now.rerequests - before.rerequests,
        messages_recovered: now.messages_recovered - before.messages_recovered,
        snapshots: now.snapshots - before.snapshots,
        snapshot_failures: now.snapshot_failures - before.snapshot_failures,
        book_errors: now.book_errors - before.book_errors,
        latency_ns_total: 0,
        latency_ns_max: 0,
    }
}

/// One line of `md stats`: an interval's counters and latency (or the
/// whole run's, for the summary).
#[derive(Debug)]
struct StatsLine<'a> {
    elapsed: Duration,
    interval: Duration,
    delta: SubscriberStats,
    latency: &'a Histogram<u64>,
    summary: bool,
}

impl StatsLine<'_> {
    fn render(&self, json: bool) -> String {
        let seconds = self.interval.as_secs_f64().max(1e-9);
        let rate = |count: u64| (count as f64 / seconds).round() as u64;
        let d = &self.delta;
        let packets = d.packets_a + d.packets_b + d.packets_rerequest;
        // Percentiles in microseconds, 0 when nothing was recorded.
        let us = |q: f64| {
            if self.latency.is_empty() {
                0.0
            } else {
                self.latency.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let max_us = if self.latency.is_empty() {
            0.0
        } else {
            self.latency.max() as f64 / 1000.0
        };
        if json {
            return json!({
                "summary": self.summary,
                "elapsed_s": self.elapsed.as_secs_f64(),
                "messages": d.messages,
                "messages_per_s": rate(d.messages),
                "packets": packets,
                "packets_per_s": rate(packets),
                "bytes": d.bytes,
                "bytes_per_s": rate(d.bytes),
                "packets_a": d.packets_a,
                "packets_b": d.packets_b,
                "packets_dropped": d.packets_dropped,
                "gaps": d.gaps,
                "rerequests": d.rerequests,
                "recovered": d.messages_recovered,
                "snapshots": d.snapshots,
                "duplicates": d.duplicates,
                "latency_samples": self.latency.len(),
                "latency_us_p50": us(0.5),
                "latency_us_p99": us(0.99),
                "latency_us_p999": us(0.999),
                "latency_us_max": max_us,
            })
            .to_string();
        }
        format!(
            "{}{:>6.1}s msgs/s={} pkts/s={} bytes/s={} gaps={} rerequests={} recovered={} \
             snapshots={} duplicates={} dropped={} latency_us p50={:.1} p99={:.1} p99.9={:.1} max={:.1}",
            if self.summary { "summary " } else { "" },
            self.elapsed.as_secs_f64(),
            rate(d.messages),
            rate(packets),
            rate(d.bytes),
            d.gaps,
            d.rerequests,
            d.messages_recovered,
            d.snapshots,
            d.duplicates,
            d.packets_dropped,
            us(0.5),
            us(0.99),
            us(0.999),
            max_us,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketdata::book::Books;
    use marketdata::itch::{AddOrder, Header, OrderExecuted, Timestamp};

    fn session() -> Session {
        Session::new("2601010001").unwrap()
    }

    fn add(reference: u64, side: Side, price: u32, shares: u32) -> Message {
        Message::AddOrder(AddOrder {
            header: Header {
                stock_locate: 1,
                tracking_number: 0,
                timestamp: Timestamp::new(34_200_000_000_000).unwrap(),
            },
            order_reference_number: reference,
            side,
            shares,
            stock: Stock::new("ACME").unwrap(),
            price: Price(price),
        })
    }

    #[test]
    fn prices_have_four_decimals() {
        assert_eq!(format_price(Price(1_000_100)), "100.0100");
        assert_eq!(format_price(Price(11_000)), "1.1000");
        assert_eq!(format_price(Price(5)), "0.0005");
        assert_eq!(format_price(Price(u32::MAX)), "429496.7295");
    }

    #[test]
    fn a_message_as_text() {
        let line = message_text(session(), 17, &add(9, Side::Buy, 1_000_000, 10));
        assert_eq!(
            line,
            "2601010001 17 AddOrder stock_locate=1 tracking_number=0 \
             timestamp=34200000000000 order_reference_number=9 side=B shares=10 \
             stock=\"ACME\" price=100.0000"
        );
    }

    #[test]
    fn a_message_as_json() {
        let value = message_json(session(), 17, &add(9, Side::Sell, 1_000_100, 10));
        assert_eq!(
            value,
            json!({
                "session": "2601010001",
                "sequence": 17,
                "type": "A",
                "name": "AddOrder",
                "stock_locate": 1,
                "tracking_number": 0,
                "timestamp": 34_200_000_000_000_u64,
                "order_reference_number": 9,
                "side": "S",
                "shares": 10,
                "stock": "ACME",
                "price": "100.0100",
                "price_raw": 1_000_100,
            })
        );
    }

    #[test]
    fn an_execution_renders_its_own_fields() {
        let executed = Message::OrderExecuted(OrderExecuted {
            header: Header::default(),
            order_reference_number: 3,
            executed_shares: 2,
            match_number: 44,
        });
        let value = message_json(session(), 1, &executed);
        assert_eq!(value["type"], "E");
        assert_eq!(value["match_number"], 44);
        assert_eq!(value["executed_shares"], 2);
    }

    #[test]
    fn the_ladder_shows_levels_bbo_and_last_trade() {
        let mut books = Books::new();
        for message in [
            add(1, Side::Buy, 1_000_000, 10),
            add(2, Side::Buy, 1_000_000, 5),
            add(3, Side::Buy, 999_900, 7),
            add(4, Side::Sell, 1_000_200, 12),
            Message::OrderExecuted(OrderExecuted {
                header: Header {
                    stock_locate: 1,
                    ..Header::default()
                },
                order_reference_number: 4,
                executed_shares: 2,
                match_number: 1,
            }),
        ] {
            books.apply(&message).unwrap();
        }
        let header = LadderHeader {
            symbol: "ACME",
            session: Some(session()),
            next_sequence: 6,
            trading_state: Some(b'T'),
        };
        let ladder = render_ladder(&header, books.book(1).unwrap(), 5);
        let expected = "\
ACME  session 2601010001  next sequence 6  trading state T
BBO 15 @ 100.0000 / 10 @ 100.0200  last trade 2 @ 100.0200
 orders       size          bid | ask                size  orders
      2         15     100.0000 | 100.0200             10       1
      1          7      99.9900 |                                
";
        assert_eq!(ladder, expected);
        // One level per side when asked for one.
        assert_eq!(
            render_ladder(&header, books.book(1).unwrap(), 1)
                .lines()
                .count(),
            4
        );
    }

    #[test]
    fn stats_lines_show_rates_and_percentiles() {
        let mut latency = latency_histogram();
        for us in 1..=100u64 {
            latency.saturating_record(us * 1000);
        }
        let line = StatsLine {
            elapsed: Duration::from_secs(3),
            interval: Duration::from_secs(2),
            delta: SubscriberStats {
                messages: 200,
                packets_a: 50,
                packets_b: 50,
                bytes: 4000,
                duplicates: 200,
                ..SubscriberStats::default()
            },
            latency: &latency,
            summary: false,
        };
        let text = line.render(false);
        assert!(text.contains("msgs/s=100 pkts/s=50 bytes/s=2000"), "{text}");
        assert!(text.contains("duplicates=200"), "{text}");
        assert!(text.contains("p50=50.0"), "{text}");
        let value: Value = serde_json::from_str(&line.render(true)).unwrap();
        assert_eq!(value["messages_per_s"], 100);
        // HdrHistogram reports the top of the bucket (3 significant digits).
        let max = value["latency_us_max"].as_f64().unwrap();
        assert!((100.0..100.2).contains(&max), "{max}");
        assert_eq!(value["summary"], false);
    }

    #[test]
    fn differences_are_per_counter() {
        let before = SubscriberStats {
            messages: 5,
            gaps: 1,
            ..SubscriberStats::default()
        };
        let now = SubscriberStats {
            messages: 12,
            gaps: 3,
            ..SubscriberStats::default()
        };
        let d = difference(&now, &before);
        assert_eq!((d.messages, d.gaps), (7, 2));
    }
}
