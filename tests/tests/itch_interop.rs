//! The market-data feed read by an independent ITCH 5.0 decoder: `itchy`
//! 0.3.4 (crates.io, MIT), a nom-based parser that shares no code with ours.
//!
//! Every seeded command stream of the feed-versus-engine test is applied to
//! an engine; its events become ITCH messages (`marketdata::feed`), which our
//! codec encodes and `marketdata::moldudp64::PacketBuilder` packs into
//! MoldUDP64 packets. The packets' message blocks — the bytes a subscriber
//! receives — go to itchy, and:
//!
//! - every message itchy returns must equal, field by field, the message we
//!   encoded (type, locate, tracking number, timestamp and every body field
//!   itchy exposes);
//! - a minimal order book built here from itchy's output alone (not
//!   `marketdata::book`, not our decoder) must hold the engine's resting
//!   orders — order reference = order id, side, price, remaining shares, in
//!   time priority within a level — on every instrument whose prices ITCH
//!   can carry, every 50 commands, at the middle and at the end of the
//!   stream; so must a book that starts from the feed's snapshot at the
//!   middle and then follows the live packets.
//!
//! Framing: itchy's `MessageStream` reads messages each preceded by a
//! big-endian `u16` length, which is exactly a MoldUDP64 packet after its
//! 20-byte header. itchy reads the length but does not use it (it parses by
//! type), so decoding a whole packet in one stream also checks that each
//! block length we write is the length of itchy's layout: a wrong one would
//! misalign the next message or leave bytes over.
//!
//! Any message itchy refuses is a failure (docs/interop.md, "ITCH 5.0:
//! itchy"). Our Stock Directory carries Issue Classification `Q` and Issue
//! Sub-Type `Z `, values from the specification's lists, which itchy checks.
//!
//! LONG MODE: `ITCH_INTEROP_CASES=5000 ITCH_INTEROP_SEED=random cargo test
//! -p tests --test itch_interop -- --nocapture`; a failure prints the line
//! that reproduces it.

use std::collections::{BTreeMap, HashMap};

use engine::{CommandHeader, Engine, Side};
use itchy::{ArrayString, Body, IssueClassification, IssueSubType, Price4};
use marketdata::feed::Feed;
use marketdata::itch::{self, Message, Timestamp};
use marketdata::moldudp64::{self, PacketBuilder, Session};
use tests::{
    CommandGenerator, ReferenceModel, environment_number, environment_seed, itch_price,
    representable, run_seeds, stream_length,
};

const CASES_DEFAULT: u64 = 500;
const COMMANDS_DEFAULT: u64 = 400;
/// The live book is also compared every this many commands.
const COMPARE_EVERY_COMMANDS: u64 = 50;
/// A packet is sent when full and at least every this many commands, so
/// that packets hold several commands' messages and some fill up.
const FLUSH_EVERY_COMMANDS: u64 = 8;

// ---------------------------------------------------------------------------
// What itchy should return for each of our messages.
// ---------------------------------------------------------------------------

fn alpha<const N: usize>(bytes: &[u8; N]) -> Result<ArrayString<N>, String> {
    let text = std::str::from_utf8(bytes).map_err(|error| format!("{bytes:?}: {error}"))?;
    ArrayString::from(text).map_err(|error| format!("{text:?}: {error}"))
}

fn side(side: itch::Side) -> itchy::Side {
    match side {
        itch::Side::Buy => itchy::Side::Buy,
        itch::Side::Sell => itchy::Side::Sell,
    }
}

/// The specification's meaning of a Code we publish, as itchy names it; a
/// code this test has no expectation for is an error (extend the table).
fn code<T>(field: &str, code: itch::Code, table: &[(u8, T)]) -> Result<T, String>
where
    T: Copy,
{
    table
        .iter()
        .find(|(byte, _)| *byte == code.byte())
        .map(|(_, value)| *value)
        .ok_or_else(|| format!("no expectation for {field} {:?}", code.byte() as char))
}

fn yes_no(field: &str, value: itch::Code) -> Result<bool, String> {
    code(field, value, &[(b'Y', true), (b'N', false)])
}

fn yes_no_blank(field: &str, value: itch::Code) -> Result<Option<bool>, String> {
    code(
        field,
        value,
        &[(b'Y', Some(true)), (b'N', Some(false)), (b' ', None)],
    )
}

fn stock_directory(ours: &itch::StockDirectory) -> Result<itchy::StockDirectory, String> {
    use itchy::{FinancialStatus, LuldRefPriceTier, MarketCategory};
    let sub_type = match ours.issue_sub_type.as_bytes() {
        b"Z " => IssueSubType::NotApplicable,
        b"C " => IssueSubType::CommonShares,
        other => return Err(format!("no expectation for Issue Sub-Type {other:?}")),
    };
    Ok(itchy::StockDirectory {
        stock: alpha(ours.stock.as_bytes())?,
        market_category: code(
            "Market Category",
            ours.market_category,
            &[
                (b' ', MarketCategory::Unavailable),
                (b'Q', MarketCategory::NasdaqGlobalSelect),
            ],
        )?,
        financial_status: code(
            "Financial Status Indicator",
            ours.financial_status_indicator,
            &[
                (b' ', FinancialStatus::Unavailable),
                (b'N', FinancialStatus::Normal),
            ],
        )?,
        round_lot_size: ours.round_lot_size,
        round_lots_only: yes_no("Round Lots Only", ours.round_lots_only)?,
        issue_classification: code(
            "Issue Classification",
            ours.issue_classification,
            &[
                (b'C', IssueClassification::CommonStock),
                (b'Q', IssueClassification::OtherSecurities),
            ],
        )?,
        issue_subtype: sub_type,
        authenticity: code(
            "Authenticity",
            ours.authenticity,
            &[(b'P', true), (b'T', false)],
        )?,
        short_sale_threshold: yes_no_blank(
            "Short Sale Threshold",
            ours.short_sale_threshold_indicator,
        )?,
        ipo_flag: yes_no_blank("IPO Flag", ours.ipo_flag)?,
        luld_ref_price_tier: code(
            "LULD Reference Price Tier",
            ours.luld_reference_price_tier,
            &[
                (b' ', LuldRefPriceTier::Na),
                (b'1', LuldRefPriceTier::Tier1),
                (b'2', LuldRefPriceTier::Tier2),
            ],
        )?,
        etp_flag: yes_no_blank("ETP Flag", ours.etp_flag)?,
        etp_leverage_factor: ours.etp_leverage_factor,
        inverse_indicator: yes_no("Inverse Indicator", ours.inverse_indicator)?,
    })
}

/// The body itchy should decode from our encoding of `ours`.
fn expected_body(ours: &Message) -> Result<Body, String> {
    use itchy::{EventCode, TradingState};
    Ok(match ours {
        Message::SystemEvent(m) => Body::SystemEvent {
            event: code(
                "Event Code",
                m.event_code,
                &[
                    (b'O', EventCode::StartOfMessages),
                    (b'S', EventCode::StartOfSystemHours),
                    (b'Q', EventCode::StartOfMarketHours),
                    (b'M', EventCode::EndOfMarketHours),
                    (b'E', EventCode::EndOfSystemHours),
                    (b'C', EventCode::EndOfMessages),
                ],
            )?,
        },
        Message::StockDirectory(m) => Body::StockDirectory(stock_directory(m)?),
        Message::StockTradingAction(m) => Body::TradingAction {
            stock: alpha(m.stock.as_bytes())?,
            trading_state: code(
                "Trading State",
                m.trading_state,
                &[
                    (b'H', TradingState::Halted),
                    (b'P', TradingState::Paused),
                    (b'Q', TradingState::QuotationOnly),
                    (b'T', TradingState::Trading),
                ],
            )?,
            // itchy skips the Reserved byte.
            reason: alpha(m.reason.as_bytes())?,
        },
        Message::AddOrder(m) => Body::AddOrder(itchy::AddOrder {
            reference: m.order_reference_number,
            side: side(m.side),
            shares: m.shares,
            stock: alpha(m.stock.as_bytes())?,
            price: Price4::from(m.price.0),
            mpid: None,
        }),
        Message::AddOrderMpid(m) => Body::AddOrder(itchy::AddOrder {
            reference: m.order_reference_number,
            side: side(m.side),
            shares: m.shares,
            stock: alpha(m.stock.as_bytes())?,
            price: Price4::from(m.price.0),
            mpid: Some(alpha(m.attribution.as_bytes())?),
        }),
        Message::OrderExecuted(m) => Body::OrderExecuted {
            reference: m.order_reference_number,
            executed: m.executed_shares,
            match_number: m.match_number,
        },
        Message::OrderExecutedWithPrice(m) => Body::OrderExecutedWithPrice {
            reference: m.order_reference_number,
            executed: m.executed_shares,
            match_number: m.match_number,
            printable: yes_no("Printable", m.printable)?,
            price: Price4::from(m.execution_price.0),
        },
        Message::OrderCancel(m) => Body::OrderCancelled {
            reference: m.order_reference_number,
            cancelled: m.cancelled_shares,
        },
        Message::OrderDelete(m) => Body::DeleteOrder {
            reference: m.order_reference_number,
        },
        Message::OrderReplace(m) => Body::ReplaceOrder(itchy::ReplaceOrder {
            old_reference: m.original_order_reference_number,
            new_reference: m.new_order_reference_number,
            shares: m.shares,
            price: Price4::from(m.price.0),
        }),
        Message::Trade(m) => Body::NonCrossTrade(itchy::NonCrossTrade {
            reference: m.order_reference_number,
            side: side(m.side),
            shares: m.shares,
            stock: alpha(m.stock.as_bytes())?,
            price: Price4::from(m.price.0),
            match_number: m.match_number,
        }),
        Message::BrokenTrade(m) => Body::BrokenTrade {
            match_number: m.match_number,
        },
    })
}

/// Whether itchy's message is ours, header and body, field by field.
fn check_decoded(ours: &Message, theirs: &itchy::Message) -> Result<(), String> {
    let header = ours.header();
    let expected = itchy::Message {
        tag: ours.message_type(),
        stock_locate: header.stock_locate,
        tracking_number: header.tracking_number,
        timestamp: header.timestamp.nanos(),
        body: expected_body(ours)?,
    };
    if expected != *theirs {
        return Err(format!(
            "itchy reads {theirs:?} where we sent {ours:?} (expected {expected:?})"
        ));
    }
    Ok(())
}

/// The length of the message block at `offset`, from its MoldUDP64 length
/// prefix, checked against the bytes left.
fn block_length(blocks: &[u8], offset: usize) -> Result<usize, String> {
    let prefix = blocks
        .get(offset..offset + 2)
        .ok_or_else(|| format!("no message block at byte {offset}"))?;
    let length = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
    if offset + 2 + length > blocks.len() {
        return Err(format!(
            "block of {length} bytes at byte {offset} overruns the packet"
        ));
    }
    Ok(length)
}

/// itchy's messages from a byte stream of length-prefixed blocks, up to the
/// end or its first error (after which its stream stops).
fn itchy_read(blocks: &[u8]) -> (Vec<itchy::Message>, Option<String>) {
    let mut decoded = Vec::new();
    for result in itchy::MessageStream::from_reader(blocks) {
        match result {
            Ok(message) => decoded.push(message),
            Err(error) => return (decoded, Some(error.to_string())),
        }
    }
    (decoded, None)
}

// ---------------------------------------------------------------------------
// The subscriber: itchy, and an order book built from its output only.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct RestingOrder {
    locate: u16,
    side: itchy::Side,
    price: u32,
    shares: u32,
    /// Order of arrival on the book: time priority within a price level.
    arrival: u64,
}

/// A MoldUDP64 subscriber decoding with itchy into a minimal L3 book.
#[derive(Debug, Default)]
struct ItchySubscriber {
    symbols: HashMap<u16, itchy::ArrayString8>,
    orders: HashMap<u64, RestingOrder>,
    arrivals: u64,
    next_sequence: u64,
    /// Messages decoded and checked, by type.
    decoded: BTreeMap<u8, u64>,
}

impl ItchySubscriber {
    fn new() -> ItchySubscriber {
        ItchySubscriber {
            next_sequence: 1,
            ..ItchySubscriber::default()
        }
    }

    /// Reads one MoldUDP64 packet of `sent` messages with itchy.
    fn receive(&mut self, packet: &[u8], sent: &[Message]) -> Result<(), String> {
        let sequence = u64::from_be_bytes(packet[10..18].try_into().expect("8 bytes"));
        let count = u16::from_be_bytes(packet[18..20].try_into().expect("2 bytes"));
        if sequence != self.next_sequence || usize::from(count) != sent.len() {
            return Err(format!(
                "packet sequence {sequence} count {count}: expected {} and {}",
                self.next_sequence,
                sent.len()
            ));
        }
        self.next_sequence += u64::from(count);
        let blocks = &packet[moldudp64::HEADER_LEN..];
        // One stream over the whole packet: itchy must read every message.
        let (decoded, error) = itchy_read(blocks);
        let mut offset = 0;
        for (index, theirs) in decoded.iter().enumerate() {
            let ours = sent
                .get(index)
                .ok_or("itchy reads more messages than sent")?;
            check_decoded(ours, theirs)?;
            self.apply(theirs)?;
            *self.decoded.entry(theirs.tag).or_default() += 1;
            offset += 2 + block_length(blocks, offset)?;
        }
        if let Some(error) = error {
            return Err(match sent.get(decoded.len()) {
                Some(ours) => format!("itchy refuses {ours:?}: {error}"),
                None => format!("itchy fails after the last message: {error}"),
            });
        }
        if offset != blocks.len() || decoded.len() != sent.len() {
            return Err(format!(
                "itchy read {} of {} messages, {offset} of {} bytes",
                decoded.len(),
                sent.len(),
                blocks.len()
            ));
        }
        Ok(())
    }

    fn apply(&mut self, message: &itchy::Message) -> Result<(), String> {
        let locate = message.stock_locate;
        match &message.body {
            Body::StockDirectory(directory) => {
                self.symbols.insert(locate, directory.stock);
            }
            Body::AddOrder(add) => {
                if self.symbols.get(&locate) != Some(&add.stock) {
                    return Err(format!(
                        "Add Order {add:?} on locate {locate} not in the directory"
                    ));
                }
                self.add(locate, add.reference, add.side, add.price.raw(), add.shares)?;
            }
            Body::OrderExecuted {
                reference,
                executed,
                ..
            }
            | Body::OrderExecutedWithPrice {
                reference,
                executed,
                ..
            } => self.reduce(locate, *reference, *executed)?,
            Body::OrderCancelled {
                reference,
                cancelled,
            } => self.reduce(locate, *reference, *cancelled)?,
            Body::DeleteOrder { reference } => {
                self.remove(locate, *reference)?;
            }
            Body::ReplaceOrder(replace) => {
                // The new order keeps the side and loses time priority.
                let old = self.remove(locate, replace.old_reference)?;
                self.add(
                    locate,
                    replace.new_reference,
                    old.side,
                    replace.price.raw(),
                    replace.shares,
                )?;
            }
            // Not a change of the visible book.
            _ => {}
        }
        Ok(())
    }

    fn add(
        &mut self,
        locate: u16,
        reference: u64,
        side: itchy::Side,
        price: u32,
        shares: u32,
    ) -> Result<(), String> {
        self.arrivals += 1;
        let order = RestingOrder {
            locate,
            side,
            price,
            shares,
            arrival: self.arrivals,
        };
        match self.orders.insert(reference, order) {
            None => Ok(()),
            Some(old) => Err(format!("order {reference} added twice: {old:?}, {order:?}")),
        }
    }

    fn remove(&mut self, locate: u16, reference: u64) -> Result<RestingOrder, String> {
        match self.orders.remove(&reference) {
            Some(order) if order.locate == locate => Ok(order),
            other => Err(format!("order {reference} on locate {locate}: {other:?}")),
        }
    }

    fn reduce(&mut self, locate: u16, reference: u64, shares: u32) -> Result<(), String> {
        let order = self
            .orders
            .get_mut(&reference)
            .filter(|order| order.locate == locate && order.shares >= shares)
            .ok_or_else(|| format!("{shares} shares off order {reference} on locate {locate}"))?;
        order.shares -= shares;
        if order.shares == 0 {
            self.orders.remove(&reference);
        }
        Ok(())
    }

    /// One side of a book: (reference, price, shares), best price first,
    /// then oldest.
    fn side_orders(&self, locate: u16, side: itchy::Side) -> Vec<(u64, u32, u32)> {
        let mut orders: Vec<(u64, RestingOrder)> = self
            .orders
            .iter()
            .filter(|(_, order)| order.locate == locate && order.side == side)
            .map(|(&reference, &order)| (reference, order))
            .collect();
        orders.sort_by_key(|(_, order)| {
            let price_rank = match side {
                itchy::Side::Buy => u32::MAX - order.price,
                itchy::Side::Sell => order.price,
            };
            (price_rank, order.arrival)
        });
        orders
            .into_iter()
            .map(|(reference, order)| (reference, order.price, order.shares))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The publisher: our codec into MoldUDP64 packets.
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Publisher {
    builder: PacketBuilder,
    /// The messages of the packet being filled.
    sent: Vec<Message>,
    bytes: Vec<u8>,
}

impl Publisher {
    fn new(session: &str) -> Publisher {
        let session = Session::new(session).expect("a valid session name");
        Publisher {
            builder: PacketBuilder::new(session, moldudp64::DEFAULT_PAYLOAD_MAX)
                .expect("a valid payload size"),
            sent: Vec::new(),
            bytes: Vec::new(),
        }
    }

    /// Encodes `message` into the packet; a full packet is sent first.
    fn publish(
        &mut self,
        message: &Message,
        subscribers: &mut [ItchySubscriber],
    ) -> Result<(), String> {
        self.bytes.clear();
        message.encode(&mut self.bytes);
        let pushed = |builder: &mut PacketBuilder, bytes: &[u8]| {
            builder
                .try_push(bytes)
                .map_err(|error| format!("{message:?}: {error}"))
        };
        if !pushed(&mut self.builder, &self.bytes)? {
            self.flush(subscribers)?;
            assert!(
                pushed(&mut self.builder, &self.bytes)?,
                "a message fits in an empty packet"
            );
        }
        self.sent.push(*message);
        Ok(())
    }

    /// Sends the packet being filled, if it holds any message.
    fn flush(&mut self, subscribers: &mut [ItchySubscriber]) -> Result<(), String> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let next = self.builder.next_sequence();
        let packet = self.builder.finish();
        for subscriber in subscribers {
            subscriber.receive(packet, &self.sent)?;
        }
        self.sent.clear();
        self.builder.start(next);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The engine's books against the subscriber's.
// ---------------------------------------------------------------------------

/// Every representable book of the engine (`tests::representable`) equals
/// the book built from itchy's output, order by order; returns the
/// instruments and orders compared.
fn compare(
    engine: &Engine,
    subscriber: &ItchySubscriber,
    when: &str,
) -> Result<(usize, u64), String> {
    let (mut instruments, mut orders) = (0, 0);
    for instrument in engine.instruments() {
        if !representable(engine, instrument) {
            continue;
        }
        instruments += 1;
        let locate = u16::try_from(instrument.0 + 1).expect("few instruments");
        let symbol = engine.instrument(instrument).expect("listed").spec.symbol;
        let theirs = subscriber
            .symbols
            .get(&locate)
            .map(|stock| stock.as_bytes());
        if theirs != Some(&symbol.bytes()[..]) {
            return Err(format!(
                "{when}: locate {locate} is {theirs:?} in itchy's directory, {symbol:?} in the engine"
            ));
        }
        for (engine_side, itchy_side) in [
            (Side::Buy, itchy::Side::Buy),
            (Side::Sell, itchy::Side::Sell),
        ] {
            let expected: Vec<(u64, u32, u32)> = engine
                .book_orders(instrument, engine_side)
                .map(|order| {
                    (
                        order.order_id.0,
                        itch_price(engine, instrument, order.price).unwrap_or(u32::MAX),
                        u32::try_from(order.remaining.0).expect("quantities fit"),
                    )
                })
                .collect();
            let actual = subscriber.side_orders(locate, itchy_side);
            if expected != actual {
                return Err(format!(
                    "{when}: instrument {instrument} {engine_side:?}: engine {expected:?}, \
                     itchy's book {actual:?}"
                ));
            }
            orders += expected.len() as u64;
        }
    }
    Ok((instruments, orders))
}

// ---------------------------------------------------------------------------
// The seeded run.
// ---------------------------------------------------------------------------

/// What the streams of one worker thread compared.
#[derive(Debug, Default)]
struct Tally {
    /// Instrument books compared at the end of the streams.
    instruments: usize,
    /// Resting orders found equal, over every comparison.
    orders: u64,
    decoded: BTreeMap<u8, u64>,
}

impl Tally {
    fn add(&mut self, subscriber: &ItchySubscriber) {
        for (&tag, &count) in &subscriber.decoded {
            *self.decoded.entry(tag).or_default() += count;
        }
    }
}

/// A late joiner: the feed's snapshot, in packets of a session of its own,
/// read by itchy into an empty book, which must equal the engine's.
fn join_from_snapshot(
    feed: &Feed,
    engine: &Engine,
    tally: &mut Tally,
) -> Result<ItchySubscriber, String> {
    let mut snapshot = Vec::new();
    feed.snapshot(Timestamp::ZERO, &mut snapshot);
    let mut publisher = Publisher::new("SNAPSHOT");
    let mut joiner = [ItchySubscriber::new()];
    for message in &snapshot {
        publisher.publish(message, &mut joiner)?;
    }
    publisher.flush(&mut joiner)?;
    let [joiner] = joiner;
    tally.orders += compare(engine, &joiner, "snapshot at the middle")?.1;
    Ok(joiner)
}

fn run_case(seed: u64, commands_setting: u64, tally: &mut Tally) -> Result<(), String> {
    let mut generator = CommandGenerator::new(seed);
    let config = generator.config();
    let mut model = ReferenceModel::new(&config);
    let mut engine = Engine::new(config).expect("valid configuration");
    let mut feed = Feed::new();
    let mut publisher = Publisher::new("ITCH");
    // The live subscriber, and from the middle on the late joiner.
    let mut subscribers = vec![ItchySubscriber::new()];
    let length = stream_length(seed, commands_setting);
    let middle = length / 2;
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    for applied in 0..length {
        if applied == middle {
            publisher.flush(&mut subscribers)?;
            tally.orders += compare(&engine, &subscribers[0], "at the middle")?.1;
            let mut joiner = join_from_snapshot(&feed, &engine, tally)?;
            // The live session goes on at its next sequence number.
            joiner.next_sequence = subscribers[0].next_sequence;
            subscribers.push(joiner);
        }
        let command = generator.next_command(&model);
        let header = CommandHeader {
            sequence: applied + 1,
            timestamp_ns: 1_700_000_000_000_000_000 + applied * 1_000,
        };
        model.apply(header, &command);
        events.clear();
        engine.apply(header, &command, &mut events);
        messages.clear();
        feed.applied(header, &events, &mut messages);
        for message in &messages {
            publisher
                .publish(message, &mut subscribers)
                .map_err(|error| format!("command {} ({command}): {error}", applied + 1))?;
        }
        if applied % FLUSH_EVERY_COMMANDS == FLUSH_EVERY_COMMANDS - 1 {
            publisher
                .flush(&mut subscribers)
                .map_err(|error| format!("after command {} ({command}): {error}", applied + 1))?;
        }
        if applied % COMPARE_EVERY_COMMANDS == COMPARE_EVERY_COMMANDS - 1 {
            publisher.flush(&mut subscribers)?;
            let when = format!("after {} commands", applied + 1);
            tally.orders += compare(&engine, &subscribers[0], &when)?.1;
        }
    }
    publisher.flush(&mut subscribers)?;
    let (instruments, orders) = compare(&engine, &subscribers[0], "at the end")?;
    tally.instruments += instruments;
    tally.orders += orders;
    if let Some(joiner) = subscribers.get(1) {
        tally.orders += compare(&engine, joiner, "late joiner at the end")?.1;
    }
    for subscriber in &subscribers {
        tally.add(subscriber);
    }
    Ok(())
}

#[test]
fn itchy_rebuilds_the_engine_books_from_our_packets() {
    let cases = environment_number("ITCH_INTEROP_CASES").unwrap_or(CASES_DEFAULT);
    let commands = environment_number("ITCH_INTEROP_COMMANDS").unwrap_or(COMMANDS_DEFAULT);
    let first = environment_seed("ITCH_INTEROP_SEED", 0);
    let (tallies, failures): (Vec<Tally>, _) =
        run_seeds(cases, first, |seed, tally| run_case(seed, commands, tally));
    if let Some((seed, error)) = failures.first() {
        panic!(
            "{} of {cases} streams failed; first, seed {seed}: {error}\nreproduce: \
             ITCH_INTEROP_SEED={seed} ITCH_INTEROP_CASES=1 ITCH_INTEROP_COMMANDS={commands} \
             cargo test -p tests --test itch_interop",
            failures.len()
        );
    }
    let mut total = Tally::default();
    for tally in &tallies {
        total.instruments += tally.instruments;
        total.orders += tally.orders;
        for (&tag, &count) in &tally.decoded {
            *total.decoded.entry(tag).or_default() += count;
        }
    }
    let decoded: Vec<String> = total
        .decoded
        .iter()
        .map(|(&tag, count)| format!("{}: {count}", tag as char))
        .collect();
    println!(
        "{cases} streams; itchy decoded {}; {} instrument books compared at the end, \
         {} resting orders found equal",
        decoded.join(", "),
        total.instruments,
        total.orders
    );
    // Every type the feed publishes was read by itchy.
    for tag in [b'R', b'H', b'A', b'E', b'X', b'D'] {
        assert!(
            total.decoded.get(&tag).is_some_and(|&count| count > 0),
            "itchy decoded no {:?} message",
            tag as char
        );
    }
    assert!(
        total.instruments >= cases as usize / 2,
        "too few instruments within ITCH's price range to mean anything: {}",
        total.instruments
    );
}

// ---------------------------------------------------------------------------
// Every message type of our codec, and our Stock Directory.
// ---------------------------------------------------------------------------

fn header(locate: u16) -> itch::Header {
    itch::Header {
        stock_locate: locate,
        tracking_number: 7,
        // 23:59:59.999999999: all 6 bytes of the timestamp in use.
        timestamp: Timestamp::new(86_399_999_999_999).expect("in range"),
    }
}

fn one_of_each_type() -> Vec<Message> {
    let printable = |byte| itch::Code::new(byte).expect("printable");
    let stock = itch::Stock::new("ACME.B").expect("valid");
    vec![
        Message::SystemEvent(itch::SystemEvent {
            header: header(0),
            event_code: printable(b'Q'),
        }),
        Message::StockDirectory(itch::StockDirectory {
            header: header(3),
            stock,
            market_category: printable(b'Q'),
            financial_status_indicator: printable(b'N'),
            round_lot_size: 100,
            round_lots_only: printable(b'N'),
            issue_classification: printable(b'C'),
            issue_sub_type: itch::IssueSubType::new("Z").expect("valid"),
            authenticity: printable(b'P'),
            short_sale_threshold_indicator: printable(b'N'),
            ipo_flag: printable(b' '),
            luld_reference_price_tier: printable(b'1'),
            etp_flag: printable(b'N'),
            etp_leverage_factor: 0,
            inverse_indicator: printable(b'N'),
        }),
        Message::StockTradingAction(itch::StockTradingAction {
            header: header(3),
            stock,
            trading_state: printable(b'H'),
            reserved: printable(b' '),
            reason: itch::TradingReason::new("T1").expect("valid"),
        }),
        Message::AddOrder(itch::AddOrder {
            header: header(3),
            order_reference_number: u64::MAX - 1,
            side: itch::Side::Buy,
            shares: u32::MAX,
            stock,
            price: itch::Price(1_503_400),
        }),
        Message::AddOrderMpid(itch::AddOrderMpid {
            header: header(3),
            order_reference_number: 2,
            side: itch::Side::Sell,
            shares: 300,
            stock,
            price: itch::Price(u32::MAX),
            attribution: itch::Mpid::new("EXCH").expect("valid"),
        }),
        Message::OrderExecuted(itch::OrderExecuted {
            header: header(3),
            order_reference_number: 2,
            executed_shares: 100,
            match_number: 1 << 40,
        }),
        Message::OrderExecutedWithPrice(itch::OrderExecutedWithPrice {
            header: header(3),
            order_reference_number: 2,
            executed_shares: 100,
            match_number: (1 << 40) + 1,
            printable: printable(b'Y'),
            execution_price: itch::Price(1_503_300),
        }),
        Message::OrderCancel(itch::OrderCancel {
            header: header(3),
            order_reference_number: 2,
            cancelled_shares: 50,
        }),
        Message::OrderReplace(itch::OrderReplace {
            header: header(3),
            original_order_reference_number: 2,
            new_order_reference_number: 3,
            shares: 40,
            price: itch::Price(1_503_500),
        }),
        Message::OrderDelete(itch::OrderDelete {
            header: header(3),
            order_reference_number: 3,
        }),
        Message::Trade(itch::Trade {
            header: header(3),
            order_reference_number: 0,
            side: itch::Side::Buy,
            shares: 25,
            stock,
            price: itch::Price(1_503_400),
            match_number: (1 << 40) + 2,
        }),
        Message::BrokenTrade(itch::BrokenTrade {
            header: header(3),
            match_number: (1 << 40) + 2,
        }),
    ]
}

/// All 12 message types of our codec, in one MoldUDP64 packet, read by
/// itchy with every exposed field equal — including types the feed does not
/// publish yet (F, C, U, P, B, S) and extreme values.
#[test]
fn itchy_reads_every_message_type_of_our_codec() {
    let messages = one_of_each_type();
    let mut publisher = Publisher::new("ALLTYPES");
    let mut subscriber = [ItchySubscriber::new()];
    for message in &messages {
        publisher.publish(message, &mut subscriber).expect("fits");
    }
    assert_eq!(
        usize::from(publisher.builder.message_count()),
        messages.len(),
        "one packet"
    );
    publisher
        .flush(&mut subscriber)
        .unwrap_or_else(|error| panic!("{error}"));
    let [subscriber] = subscriber;
    let tags: Vec<u8> = subscriber.decoded.keys().copied().collect();
    assert_eq!(tags, b"ABCDEFHPRSUX", "every type decoded once");
    assert!(subscriber.decoded.values().all(|&count| count == 1));
    // The book built from them: order 2 added, 100 + 100 executed, 50
    // cancelled, replaced by 3 (40 shares), deleted; order u64::MAX - 1 rests.
    assert_eq!(
        subscriber.side_orders(3, itchy::Side::Buy),
        vec![(u64::MAX - 1, 1_503_400, u32::MAX)]
    );
    assert!(subscriber.side_orders(3, itchy::Side::Sell).is_empty());
}

/// The Stock Directory as the feed publishes it, from a seeded stream.
fn published_stock_directory() -> itch::StockDirectory {
    let mut generator = CommandGenerator::new(0);
    let config = generator.config();
    let mut model = ReferenceModel::new(&config);
    let mut engine = Engine::new(config).expect("valid configuration");
    let mut feed = Feed::new();
    let (mut events, mut messages) = (Vec::new(), Vec::new());
    for applied in 0..1_000 {
        let command = generator.next_command(&model);
        let header = CommandHeader {
            sequence: applied + 1,
            timestamp_ns: applied * 1_000,
        };
        model.apply(header, &command);
        events.clear();
        engine.apply(header, &command, &mut events);
        messages.clear();
        feed.applied(header, &events, &mut messages);
        if let Some(Message::StockDirectory(directory)) = messages
            .iter()
            .find(|message| matches!(message, Message::StockDirectory(_)))
        {
            return *directory;
        }
    }
    panic!("no Stock Directory in 1,000 commands of seed 0");
}

/// The Stock Directory the feed publishes carries listed Issue
/// Classification `Q` (Other Securities) and Issue Sub-Type `Z ` (Not
/// Applicable), and itchy reads it with every field equal.
#[test]
fn itchy_reads_our_published_stock_directory() {
    let directory = published_stock_directory();
    assert_eq!(directory.issue_classification.byte(), b'Q');
    assert_eq!(directory.issue_sub_type.as_bytes(), b"Z ");
    let mut message = Vec::new();
    Message::StockDirectory(directory).encode(&mut message);
    assert_eq!(message.len(), itch::StockDirectory::LENGTH);
    let mut block = (message.len() as u16).to_be_bytes().to_vec();
    block.extend_from_slice(&message);

    let (decoded, error) = itchy_read(&block);
    assert_eq!(error, None);
    let [theirs] = decoded.as_slice() else {
        panic!("one message: {decoded:?}");
    };
    let Body::StockDirectory(body) = &theirs.body else {
        panic!("not a Stock Directory: {theirs:?}");
    };
    assert_eq!(
        body.issue_classification,
        IssueClassification::OtherSecurities
    );
    assert_eq!(body.issue_subtype, IssueSubType::NotApplicable);
    check_decoded(&Message::StockDirectory(directory), theirs)
        .unwrap_or_else(|error| panic!("{error}"));
}
