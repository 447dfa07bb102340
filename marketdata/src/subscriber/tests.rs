//! Tests of the networking subscriber against a fake exchange in the test:
//! a snapshot server (TCP), a re-request server (UDP) and a live feed sent
//! by unicast UDP to 127.0.0.1, so they run on any host. The multicast
//! test runs only inside `.ci/netns-run` (`NETNS_RUN=1`).

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use wire::soupbin::{self, ServerPacket};

use crate::book::Books;
use crate::itch::{
    AddOrder, Code, Header, IssueSubType, OrderDelete, Price, Side, Stock, StockDirectory,
};
use crate::moldudp64::{PacketBuilder, heartbeat};

const SESSION: &str = "2601010001";

fn session() -> Session {
    Session::new(SESSION).unwrap()
}

fn code(byte: u8) -> Code {
    Code::new(byte).unwrap()
}

/// The test stream: ACME's directory entry, then adds with a delete of an
/// older order every fourth message.
fn stream(len: usize) -> Vec<Message> {
    let header = Header {
        stock_locate: 1,
        ..Header::default()
    };
    let mut messages = vec![Message::StockDirectory(StockDirectory {
        header,
        stock: Stock::new("ACME").unwrap(),
        market_category: code(b'Q'),
        financial_status_indicator: code(b'N'),
        round_lot_size: 1,
        round_lots_only: code(b'N'),
        issue_classification: code(b'C'),
        issue_sub_type: IssueSubType::new("Z").unwrap(),
        authenticity: code(b'P'),
        short_sale_threshold_indicator: code(b'N'),
        ipo_flag: code(b'N'),
        luld_reference_price_tier: code(b'1'),
        etp_flag: code(b'N'),
        etp_leverage_factor: 0,
        inverse_indicator: code(b'N'),
    })];
    for i in 1..len as u64 {
        messages.push(if i % 4 == 0 && i > 8 {
            Message::OrderDelete(OrderDelete {
                header,
                order_reference_number: i - 5,
            })
        } else {
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            let offset = 100 * (i % 7) as u32;
            let price = match side {
                Side::Buy => 990_000 - offset,
                Side::Sell => 1_010_000 + offset,
            };
            Message::AddOrder(AddOrder {
                header,
                order_reference_number: i,
                side,
                shares: 10 + i as u32,
                stock: Stock::new("ACME").unwrap(),
                price: Price(price),
            })
        });
    }
    messages
}

fn encoded(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

/// Downstream packets holding sequence numbers `first..=last`, `per` a
/// packet.
fn packets(messages: &[Message], first: u64, last: u64, per: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut builder = PacketBuilder::new(session(), 1472).unwrap();
    let mut sequence = first;
    while sequence <= last {
        builder.start(sequence);
        while sequence <= last && u64::from(builder.message_count()) < per {
            let bytes = encoded(&messages[sequence as usize - 1]);
            assert_eq!(builder.try_push(&bytes), Ok(true));
            sequence += 1;
        }
        out.push(builder.finish().to_vec());
    }
    out
}

/// A snapshot server that serves `messages[..upto]` (any message types:
/// applied to empty books they give the books through `upto`).
fn snapshot_server(messages: Arc<Vec<Message>>, upto: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut login = [0u8; 49];
            if stream.read_exact(&mut login).is_err() {
                continue;
            }
            let upto = upto.load(Ordering::SeqCst);
            let mut out = Vec::new();
            let accepted = ServerPacket::LoginAccepted {
                session: soupbin::alpha_right_justified(SESSION).unwrap(),
                sequence: 1,
            };
            accepted.encode(&mut out).unwrap();
            for message in &messages[..upto] {
                let bytes = encoded(message);
                ServerPacket::SequencedData(&bytes)
                    .encode(&mut out)
                    .unwrap();
            }
            let end = format!("G{:>20}", upto + 1);
            ServerPacket::SequencedData(end.as_bytes())
                .encode(&mut out)
                .unwrap();
            ServerPacket::EndOfSession.encode(&mut out).unwrap();
            let _ = stream.write_all(&out);
        }
    });
    addr
}

/// A re-request server answering from `messages[..published]` while
/// `answer` is set.
fn rerequest_server(
    messages: Arc<Vec<Message>>,
    published: Arc<AtomicUsize>,
    answer: Arc<AtomicBool>,
) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buffer = [0u8; 64];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buffer) else {
                return;
            };
            let Ok(request) = Request::decode(&buffer[..len]) else {
                continue;
            };
            if !answer.load(Ordering::SeqCst) {
                continue;
            }
            let published = published.load(Ordering::SeqCst) as u64;
            let last = (request.sequence + u64::from(request.count) - 1).min(published);
            for packet in packets(&messages, request.sequence, last, 20) {
                socket.send_to(&packet, from).unwrap();
            }
        }
    });
    addr
}

fn heartbeat_packet(next: u64) -> Vec<u8> {
    let mut out = Vec::new();
    heartbeat(session(), next, &mut out);
    out
}

fn reference_books(messages: &[Message]) -> Books {
    let mut books = Books::new();
    for message in messages {
        books.apply(message).unwrap();
    }
    books
}

/// The books hold the same orders at the same levels in the same order.
fn assert_same_books(actual: &Books, expected: &Books) {
    assert_eq!(actual.order_count(), expected.order_count());
    let (a, e) = (actual.book(1).unwrap(), expected.book(1).unwrap());
    for side in [Side::Buy, Side::Sell] {
        let levels = e.depth(side, usize::MAX);
        assert_eq!(a.depth(side, usize::MAX), levels);
        for (price, _, _) in levels {
            assert!(a.orders_at(side, price).eq(e.orders_at(side, price)));
        }
    }
    assert_eq!(actual.locate_of(Stock::new("ACME").unwrap()), Some(1));
}

/// A fake exchange publishing `messages`.
struct Fake {
    messages: Arc<Vec<Message>>,
    snapshot_upto: Arc<AtomicUsize>,
    answer: Arc<AtomicBool>,
    snapshot: SocketAddr,
    rerequest: SocketAddr,
}

impl Fake {
    fn new(len: usize, snapshot_upto: usize) -> Self {
        let messages = Arc::new(stream(len));
        let snapshot_upto = Arc::new(AtomicUsize::new(snapshot_upto));
        let answer = Arc::new(AtomicBool::new(true));
        let published = Arc::new(AtomicUsize::new(len));
        Self {
            snapshot: snapshot_server(Arc::clone(&messages), Arc::clone(&snapshot_upto)),
            rerequest: rerequest_server(Arc::clone(&messages), published, Arc::clone(&answer)),
            messages,
            snapshot_upto,
            answer,
        }
    }

    fn config(&self, start: Start) -> SubscriberConfig {
        SubscriberConfig {
            feed_a: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            rerequest: self.rerequest,
            snapshot: self.snapshot,
            start,
            arbiter: ArbiterConfig {
                rerequest_timeout: Duration::from_millis(20),
                reorder_wait: Duration::ZERO,
                ..ArbiterConfig::default()
            },
            snapshot_timeout: Duration::from_secs(2),
            snapshot_retry_interval: Duration::from_millis(50),
            ..SubscriberConfig::default()
        }
    }
}

/// Polls, sending a heartbeat for `next` to `to` each turn as an idle
/// publisher would, until the subscriber has delivered everything before
/// `next`. Returns the events seen, as text.
fn run_until(subscriber: &mut Subscriber, to: SocketAddr, next: u64) -> Vec<String> {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = Vec::new();
    let mut expected = 0;
    while !(subscriber.is_caught_up() && subscriber.next_sequence() == next) {
        assert!(Instant::now() < deadline, "stuck: {:?}", subscriber.stats());
        sender.send_to(&heartbeat_packet(next), to).unwrap();
        subscriber
            .poll(Duration::from_millis(5), &mut |event| {
                if let SubscriberEvent::Message { sequence, .. } = event {
                    // Deliveries are in order with no repeat (a resync may
                    // restart further on).
                    assert!(*sequence > expected, "{sequence} after {expected}");
                    expected = *sequence;
                } else {
                    log.push(format!("{event:?}"));
                }
            })
            .unwrap();
    }
    log
}

#[test]
fn snapshot_then_live_with_drops_recovers_every_message() {
    let fake = Fake::new(400, 100);
    let mut config = fake.config(Start::Snapshot);
    config.drop_share = 0.3;
    config.drop_seed = 7;
    let mut subscriber = Subscriber::join(config).unwrap();
    let (feed, _) = subscriber.feed_local_addrs().unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The live feed overlaps the snapshot (sent from 90 on).
    for packet in packets(&fake.messages, 90, 400, 3) {
        sender.send_to(&packet, feed).unwrap();
    }
    let log = run_until(&mut subscriber, feed, 401);
    assert_same_books(subscriber.books(), &reference_books(&fake.messages));
    let stats = subscriber.stats();
    assert!(stats.packets_dropped > 0, "{stats:?}");
    assert!(
        stats.rerequests > 0 && stats.messages_recovered > 0,
        "{stats:?}"
    );
    assert_eq!(stats.snapshots, 1);
    assert_eq!(stats.messages, 300);
    assert!(log[0].starts_with("SnapshotApplied"), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("GapDetected")));
    assert_eq!(subscriber.session(), Some(session()));
}

#[test]
fn from_the_beginning_rerequests_the_start_of_the_session() {
    let fake = Fake::new(120, 0);
    let mut subscriber = Subscriber::join(fake.config(Start::Beginning)).unwrap();
    let (feed, _) = subscriber.feed_local_addrs().unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for packet in packets(&fake.messages, 50, 120, 5) {
        sender.send_to(&packet, feed).unwrap();
    }
    let log = run_until(&mut subscriber, feed, 121);
    assert_same_books(subscriber.books(), &reference_books(&fake.messages));
    let stats = subscriber.stats();
    assert_eq!(stats.messages, 120);
    assert_eq!(stats.messages_recovered, 49);
    assert_eq!(stats.snapshots, 0);
    assert!(log[0].starts_with("SessionChanged"), "{log:?}");
    assert!(
        log.iter().any(|l| l.contains("sequence: 1, count: 49")),
        "{log:?}"
    );
}

#[test]
fn an_unfillable_gap_falls_back_to_a_snapshot() {
    let fake = Fake::new(60, 10);
    fake.answer.store(false, Ordering::SeqCst);
    let mut config = fake.config(Start::Snapshot);
    config.arbiter.rerequest_retries_max = 1;
    let mut subscriber = Subscriber::join(config).unwrap();
    // The next snapshot will be more recent than the lost messages.
    fake.snapshot_upto.store(40, Ordering::SeqCst);
    let (feed, _) = subscriber.feed_local_addrs().unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let live = packets(&fake.messages, 11, 60, 1);
    for (i, packet) in live.iter().enumerate() {
        // Sequence numbers 21..=30 are lost and never re-sent.
        if !(10..20).contains(&i) {
            sender.send_to(packet, feed).unwrap();
        }
    }
    let log = run_until(&mut subscriber, feed, 61);
    assert_same_books(subscriber.books(), &reference_books(&fake.messages));
    let stats = subscriber.stats();
    assert_eq!(stats.snapshots, 2, "{log:?}");
    assert_eq!(stats.rerequests, 2);
    assert!(
        log.iter()
            .any(|l| l.contains("RetriesExhausted { sequence: 21 }")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.contains("next_sequence: 41")),
        "{log:?}"
    );
}

#[test]
fn a_stray_heartbeat_past_the_end_is_forgotten_after_one_snapshot() {
    let fake = Fake::new(60, 40);
    let mut config = fake.config(Start::Snapshot);
    config.arbiter.rerequest_retries_max = 1;
    let mut subscriber = Subscriber::join(config).unwrap();
    fake.snapshot_upto.store(60, Ordering::SeqCst);
    let (feed, _) = subscriber.feed_local_addrs().unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A stray heartbeat claims 499 messages; the publisher has 60, so
    // re-requests past 60 bring nothing.
    sender.send_to(&heartbeat_packet(500), feed).unwrap();
    for packet in packets(&fake.messages, 41, 60, 4) {
        sender.send_to(&packet, feed).unwrap();
    }
    let log = run_until(&mut subscriber, feed, 61);
    assert_same_books(subscriber.books(), &reference_books(&fake.messages));
    // The fallback snapshot (at 61) resets the horizon: no further one.
    assert_eq!(subscriber.stats().snapshots, 2, "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("RetriesExhausted { sequence: 61 }")),
        "{log:?}"
    );
}

#[test]
fn a_snapshot_of_the_session_left_is_refused() {
    let fake = Fake::new(20, 10);
    let mut config = fake.config(Start::Snapshot);
    config.arbiter.rerequest_retries_max = 0;
    let mut subscriber = Subscriber::join(config).unwrap();
    let (feed, _) = subscriber.feed_local_addrs().unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The next session begins with a gap; the fake still serves only the
    // old one, so re-requests fail and every snapshot names the old one.
    let next = Session::new("2601010002").unwrap();
    let mut builder = PacketBuilder::new(next, 1472).unwrap();
    builder.start(3);
    assert_eq!(builder.try_push(&encoded(&fake.messages[0])), Ok(true));
    sender.send_to(builder.finish(), feed).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut log = Vec::new();
    while log.iter().filter(|l: &&String| l.contains("stale")).count() < 2 {
        assert!(Instant::now() < deadline, "{log:?}");
        subscriber
            .poll(Duration::from_millis(5), &mut |event| {
                if let SubscriberEvent::Message { session, .. } = event {
                    assert_eq!(*session, next, "a message of the session left");
                }
                log.push(format!("{event:?}"));
            })
            .unwrap();
    }
    assert_eq!(subscriber.session(), Some(next));
    assert!(!subscriber.is_caught_up());
    assert_eq!(subscriber.stats().snapshots, 1, "{log:?}");
    assert!(subscriber.stats().snapshot_failures >= 2);
    assert!(
        log.iter().any(|l| l.starts_with("SessionChanged")),
        "{log:?}"
    );
    assert!(
        !log.iter().skip(1).any(|l| l.starts_with("SnapshotApplied")),
        "{log:?}"
    );
}

#[test]
fn an_unreachable_snapshot_service_fails_the_join() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = SubscriberConfig {
        feed_a: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
        snapshot: addr,
        snapshot_timeout: Duration::from_millis(500),
        ..SubscriberConfig::default()
    };
    assert!(Subscriber::join(config).is_err());
}

#[test]
fn latency_wraps_around_midnight() {
    assert_eq!(latency_ns(1_000, 400), 600);
    assert_eq!(latency_ns(100, DAY_NS as u64 - 900), 1_000);
    assert_eq!(latency_ns(DAY_NS - 100, 900), -1_000);
}

#[test]
fn deliberate_drops_follow_the_share_and_the_seed() {
    let count = |share: f64, seed: u64| {
        let mut dropper = Dropper { share, state: seed };
        (0..10_000).filter(|_| dropper.should_drop()).count()
    };
    assert_eq!(count(0.0, 1), 0);
    assert_eq!(count(1.0, 1), 10_000);
    let quarter = count(0.25, 1);
    assert!((2_300..2_700).contains(&quarter), "{quarter}");
    assert_eq!(count(0.25, 1), quarter);
    assert_ne!(count(0.25, 2), quarter);
}

/// Two subscribers on one host join the same groups (A and B) and each
/// gets every message once; feed B covers the packets lost on A.
#[test]
#[cfg_attr(
    not(multicast),
    ignore = "needs multicast: run inside .ci/netns-run (NETNS_RUN=1), as .ci/run does, or set MD_MULTICAST=1"
)]
fn multicast_a_and_b_feeds_to_two_subscribers() {
    let fake = Fake::new(200, 0);
    let feed_a = SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 11), 26411);
    let feed_b = SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 12), 26411);
    let config = SubscriberConfig {
        feed_a,
        feed_b: Some(feed_b),
        ..fake.config(Start::Beginning)
    };
    let mut first = Subscriber::join(config.clone()).unwrap();
    let mut second = Subscriber::join(config).unwrap();
    let sender = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    sender.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    sender.set_multicast_loop_v4(true).unwrap();
    let sender: UdpSocket = sender.into();
    for (i, packet) in packets(&fake.messages, 1, 200, 4).iter().enumerate() {
        if i % 5 != 0 {
            sender.send_to(packet, feed_a).unwrap();
        }
        if i % 7 != 0 {
            sender.send_to(packet, feed_b).unwrap();
        }
    }
    for subscriber in [&mut first, &mut second] {
        run_until(subscriber, SocketAddr::V4(feed_a), 201);
        assert_same_books(subscriber.books(), &reference_books(&fake.messages));
        let stats = subscriber.stats();
        assert_eq!(stats.messages, 200);
        assert!(stats.packets_a > 0 && stats.packets_b > 0, "{stats:?}");
        assert!(stats.duplicates > 0, "{stats:?}");
        // Packets 0, 35 (lost on both) are re-requested; no others.
        assert_eq!(stats.messages_recovered, 8, "{stats:?}");
    }
}
