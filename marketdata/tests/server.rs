//! The market-data thread (`marketdata::server`) over loopback: engine
//! outputs pushed into its ring by hand, durability from a real journal,
//! re-requests over UDP and snapshots over TCP on `127.0.0.1:0`. Multicast
//! is not needed: a send to the group that fails is only counted.
//!
//! Expectations come from a second `Publisher` fed the same commands in the
//! test (the stream is a pure function of the commands).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use engine::runner::{Doorbell, Origin, Output};
use engine::{
    AccountId, AdminCommand, AssetId, CancelOrder, Command, CommandHeader, Deposit, Engine,
    EngineConfig, Event, InstrumentId, InstrumentSpec, NewOrder, OrderPrice, OrderRef, Price,
    Producer, Quantity, SelfTradePrevention, Side, Status, Symbol, TimeInForce, TransferId,
    UserRefNum,
};
use journal::{Durability, DurablePosition, Journal, JournalOptions};
use marketdata::itch::{Message, Timestamp};
use marketdata::moldudp64::{
    DEFAULT_PAYLOAD_MAX, HEADER_LEN, Packet, PacketHeader, Request, Session,
};
use marketdata::publisher::{Publisher, end_of_snapshot};
use marketdata::server::{MdConfig, MdHandle, MdParts, MdServer, MdSource};
use marketdata::subscriber::{Snapshot, fetch_snapshot};
use wire::soupbin::{self, ClientPacket, RejectReason, ServerPacket};

/// 2026-01-01T00:00:00Z: the session names start `260101`.
const T0: u64 = 1_767_225_600_000_000_000;
const WAIT: Duration = Duration::from_secs(1);

/// One command as the engine applied it.
struct Applied {
    header: CommandHeader,
    command: Command,
    status: Status,
    events: Vec<Event>,
}

/// A small day: USD and ACME, the ACME/USD book, two funded accounts, then
/// orders that rest, trade, and are cancelled (commands 1..=14).
fn stream() -> Vec<Applied> {
    const USD: AssetId = AssetId(0);
    const ACME: AssetId = AssetId(1);
    const ACME_USD: InstrumentId = InstrumentId(0);
    let (alice, bob) = (AccountId(1), AccountId(2));
    let spec = InstrumentSpec {
        symbol: Symbol::new("ACME").unwrap(),
        base: ACME,
        quote: USD,
        quantity_unit: 1,
        tick_size: Price(100),
        lot_size: Quantity(1),
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        reference_price: Price(100 * 10_000),
        band_bps: 1_000,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
    };
    let order = |account, user_ref, side, dollars: i64, quantity, time_in_force| {
        Command::NewOrder(NewOrder {
            account,
            user_ref_num: UserRefNum(user_ref),
            instrument: ACME_USD,
            side,
            price: OrderPrice::Limit(Price(dollars * 10_000)),
            quantity: Quantity(quantity),
            time_in_force,
            post_only: false,
            self_trade: SelfTradePrevention::None,
        })
    };
    let (gtc, day) = (TimeInForce::GoodTillCancel, TimeInForce::Day);
    let asset = |asset, symbol, scale| {
        Command::Admin(AdminCommand::CreateAsset {
            asset,
            symbol: Symbol::new(symbol).unwrap(),
            scale,
        })
    };
    let deposit = |account, asset, amount, id| {
        Command::Deposit(Deposit {
            account,
            asset,
            amount,
            transfer_id: TransferId(id),
        })
    };
    let commands = [
        asset(USD, "USD", 4),
        asset(ACME, "ACME", 0),
        Command::Admin(AdminCommand::CreateInstrument {
            instrument: ACME_USD,
            spec,
        }),
        Command::Admin(AdminCommand::CreateAccount { account: alice }),
        Command::Admin(AdminCommand::CreateAccount { account: bob }),
        deposit(alice, USD, 1_000_000 * 10_000, 1),
        deposit(bob, ACME, 10_000, 2),
        order(alice, 1, Side::Buy, 99, 10, gtc),
        order(alice, 2, Side::Buy, 98, 5, gtc),
        order(bob, 1, Side::Sell, 101, 7, gtc),
        order(bob, 2, Side::Sell, 99, 4, gtc),
        Command::CancelOrder(CancelOrder {
            account: alice,
            order: OrderRef::UserRef(UserRefNum(2)),
            quantity: Quantity(0),
        }),
        order(bob, 3, Side::Sell, 102, 3, day),
        order(alice, 3, Side::Buy, 97, 2, day),
    ];
    let mut engine = Engine::new(EngineConfig {
        accounts_max: 4,
        assets_max: 2,
        instruments_max: 1,
        orders_max: 64,
        price_levels_max: 4_096,
        transfer_records_max: 16,
        fee_account: AccountId(0),
    })
    .unwrap();
    (1..)
        .zip(commands)
        .map(|(sequence, command)| {
            let header = CommandHeader {
                sequence,
                timestamp_ns: T0 + sequence * 1_000_000,
            };
            let mut events = Vec::new();
            let status = engine.apply(header, &command, &mut events);
            assert_eq!(status, Status::Applied, "{command:?}: {events:?}");
            Applied {
                header,
                command,
                status,
                events,
            }
        })
        .collect()
}

/// A publisher fed `applied` (memory only): what the thread should hold.
fn reference(applied: &[Applied]) -> Publisher {
    let mut publisher = Publisher::new(DEFAULT_PAYLOAD_MAX).unwrap();
    for a in applied {
        publisher.applied(a.header, &a.command, &a.events, &mut |_| {});
    }
    publisher
}

/// Encoded messages with the timestamp (bytes 5..11) zeroed: a snapshot is
/// stamped with the time it is taken.
fn normalized(messages: &[Message]) -> Vec<Vec<u8>> {
    messages
        .iter()
        .map(|message| {
            let mut bytes = Vec::new();
            message.encode(&mut bytes);
            bytes[5..11].fill(0);
            bytes
        })
        .collect()
}

fn expected_snapshot(publisher: &Publisher) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    publisher.snapshot(Timestamp::ZERO, &mut messages);
    normalized(&messages)
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("md-server-{name}-{}-{nanos}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A command journal whose durable position the test moves by appending
/// dummy records (memory durability: appended is durable).
struct Durable {
    journal: Journal,
    _dir: TempDir,
}

impl Durable {
    fn new(name: &str) -> Durable {
        let dir = TempDir::new(name);
        let options = JournalOptions {
            segment_bytes: 1 << 16,
            record_bytes_max: 64,
            durability: Durability::Memory,
            prefault: false,
            ..JournalOptions::default()
        };
        let (journal, _) = Journal::open(&dir.path().join("journal"), options).unwrap();
        Durable { journal, _dir: dir }
    }

    fn position(&self) -> DurablePosition {
        self.journal.durable()
    }

    fn advance_to(&mut self, sequence: usize) {
        let sequence = sequence as u64;
        while self.journal.last_sequence() < sequence {
            self.journal.append(1, T0, b"command").unwrap();
        }
        assert_eq!(self.journal.durable().sequence(), sequence);
    }
}

fn config() -> MdConfig {
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    MdConfig {
        feed_a: SocketAddrV4::new(Ipv4Addr::new(239, 255, 42, 199), 26_499),
        rerequest: loopback,
        snapshot: loopback,
        ..MdConfig::default()
    }
}

/// The running thread and the test's ends of it.
struct Md {
    handle: MdHandle,
    producer: Producer<Output>,
    doorbell: Arc<Doorbell>,
    rerequest: SocketAddr,
    snapshot: SocketAddr,
    /// Snapshots fetched by `snapshot_at` (each is one served).
    fetched: u64,
}

impl Md {
    fn start(config: MdConfig, publisher: Publisher, durable: DurablePosition) -> Md {
        let server = MdServer::bind(config).unwrap();
        let rerequest = server.rerequest_addr().unwrap();
        let snapshot = server.snapshot_addr().unwrap();
        assert!(rerequest.port() != 0 && snapshot.port() != 0);
        let doorbell = server.doorbell();
        let (producer, output) = engine::ring(1024);
        let parts = MdParts {
            publisher,
            source: MdSource::Ring { output, durable },
        };
        let handle = server.spawn(parts, Arc::clone(&doorbell)).unwrap();
        Md {
            handle,
            producer,
            doorbell,
            rerequest,
            snapshot,
            fetched: 0,
        }
    }

    /// Publishes the outputs of `applied` to the ring, as the engine does.
    fn push(&mut self, applied: &[Applied]) {
        for a in applied {
            let command = Output::Command {
                header: a.header,
                command: a.command,
                origin: Origin::NONE,
                status: a.status,
                events: a.events.len() as u32,
            };
            self.producer.try_push(command).expect("room in the ring");
            for &event in &a.events {
                self.producer
                    .try_push(Output::Event(event))
                    .expect("room in the ring");
            }
        }
        self.doorbell.ring_if_sleeping();
    }

    /// Fetches snapshots until one names `next` (never one past it).
    fn snapshot_at(&mut self, next: u64) -> Snapshot {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let fetched = fetch_snapshot(self.snapshot, WAIT);
            self.fetched += 1;
            // Before the first command the session is blank, which the
            // client refuses (InvalidData): the server has not caught up.
            let snapshot = match fetched {
                Ok(snapshot) => snapshot,
                Err(error) if error.kind() == ErrorKind::InvalidData => {
                    assert!(Instant::now() < deadline, "no snapshot: {error}");
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
                Err(error) => panic!("no snapshot: {error}"),
            };
            assert!(
                snapshot.next_sequence <= next,
                "snapshot at {} is past {next}",
                snapshot.next_sequence
            );
            if snapshot.next_sequence == next {
                return snapshot;
            }
            assert!(
                Instant::now() < deadline,
                "snapshot stuck at {}, want {next}",
                snapshot.next_sequence
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The stream pushed to a thread started with `publisher`, durable through
/// command `through`: returns the reference publisher of commands
/// `1..=through`, once the thread has published them.
fn serve_with(
    name: &str,
    config: MdConfig,
    publisher: Publisher,
    through: usize,
) -> (Publisher, Durable, Md) {
    let stream = stream();
    let published = reference(&stream[..through]);
    let mut durable = Durable::new(name);
    durable.advance_to(through);
    let mut md = Md::start(config, publisher, durable.position());
    md.push(&stream);
    md.snapshot_at(published.next_sequence());
    (published, durable, md)
}

/// Everything durable and published.
fn serve(name: &str, config: MdConfig) -> (Publisher, Durable, Md) {
    let publisher = Publisher::new(DEFAULT_PAYLOAD_MAX).unwrap();
    serve_with(name, config, publisher, stream().len())
}

fn requester() -> UdpSocket {
    UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
}

fn request(publisher: &Publisher, sequence: u64, count: u16) -> Request {
    Request {
        session: publisher.session(),
        sequence,
        count,
    }
}

/// The next datagram within `timeout`, if any.
fn receive(socket: &UdpSocket, timeout: Duration) -> Option<Vec<u8>> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = vec![0u8; 65_536];
    match socket.recv_from(&mut buf) {
        Ok((len, _)) => Some(buf[..len].to_vec()),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(error) => panic!("receiving: {error}"),
    }
}

/// Sends `request` and checks the answer is, packet for packet, what
/// `publisher` answers (and nothing more); returns its messages.
fn ask(
    md: &Md,
    socket: &UdpSocket,
    publisher: &Publisher,
    request: &Request,
    count_max: u16,
) -> Vec<(u64, Vec<u8>)> {
    socket.send_to(&request.encode(), md.rerequest).unwrap();
    let mut expected = Vec::new();
    publisher
        .answer(request, count_max, &mut |packet| {
            expected.push(packet.to_vec())
        })
        .unwrap();
    let mut messages = Vec::new();
    for (index, want) in expected.iter().enumerate() {
        let got = receive(socket, WAIT).unwrap_or_else(|| panic!("no answer packet {index}"));
        assert_eq!(&got, want, "answer packet {index} to {request:?}");
        let packet = Packet::parse(&got).unwrap();
        messages.extend(packet.messages().map(|(seq, m)| (seq, m.to_vec())));
    }
    assert_eq!(receive(socket, Duration::from_millis(100)), None);
    messages
}

/// Messages `first..=last` of the publisher's log.
fn log_messages(publisher: &Publisher, first: u64, last: u64) -> Vec<(u64, Vec<u8>)> {
    (first..=last)
        .map(|seq| (seq, publisher.log().get(seq).unwrap().to_vec()))
        .collect()
}

#[test]
fn only_durable_commands_are_published() {
    let stream = stream();
    let (k, n) = (9, stream.len());
    let at_n = reference(&stream);
    let publisher = Publisher::new(DEFAULT_PAYLOAD_MAX).unwrap();
    let (at_k, mut durable, mut md) = serve_with("gating", config(), publisher, k);
    assert!(at_k.next_sequence() < at_n.next_sequence());
    assert_ne!(expected_snapshot(&at_k), expected_snapshot(&at_n));

    // The rest waits for the disk, however long.
    thread::sleep(Duration::from_millis(50));
    let snapshot = md.snapshot_at(at_k.next_sequence());
    assert_eq!(snapshot.session, at_k.session());
    assert_eq!(normalized(&snapshot.messages), expected_snapshot(&at_k));

    let socket = requester();
    let max = config().rerequest_messages_max;
    let next = at_k.next_sequence();
    // Wholly past the log: one heartbeat naming the next sequence number.
    let past = request(&at_k, next, 10);
    socket.send_to(&past.encode(), md.rerequest).unwrap();
    let heartbeat = receive(&socket, WAIT).expect("a heartbeat");
    assert_eq!(heartbeat.len(), HEADER_LEN);
    let header = PacketHeader::decode(&heartbeat).unwrap();
    assert!(header.is_heartbeat());
    assert_eq!((header.session, header.sequence), (at_k.session(), next));
    assert_eq!(receive(&socket, Duration::from_millis(100)), None);
    // Across the end: the log's last message only.
    let across = request(&at_k, next - 1, 10);
    let before = ask(&md, &socket, &at_k, &across, max);
    assert_eq!(before, log_messages(&at_k, next - 1, next - 1));

    // Durable through N: everything is published.
    durable.advance_to(n);
    let snapshot = md.snapshot_at(at_n.next_sequence());
    assert_eq!(normalized(&snapshot.messages), expected_snapshot(&at_n));
    let after = ask(&md, &socket, &at_n, &across, max);
    let last = (next + 8).min(at_n.log().len());
    assert!(last > next);
    assert_eq!(after, log_messages(&at_n, next - 1, last));

    let stats = md.handle.finish().unwrap();
    assert_eq!(stats.commands, n as u64);
    assert_eq!(stats.messages, at_n.log().len());
    assert_eq!(stats.rerequests_answered, 3);
    assert_eq!(stats.messages_resent, (before.len() + after.len()) as u64);
    assert_eq!(stats.snapshots_served, md.fetched);
}

#[test]
fn rerequests_are_answered_from_the_log_and_malformed_ones_dropped() {
    let max = 5;
    let config = MdConfig {
        rerequest_messages_max: max,
        ..config()
    };
    let (all, _durable, md) = serve("rerequests", config);
    assert!(all.log().len() > u64::from(max) + 2);
    let socket = requester();
    // Within the log: exactly those messages; more than the cap: the first
    // `max`.
    let within = ask(&md, &socket, &all, &request(&all, 2, 3), max);
    assert_eq!(within, log_messages(&all, 2, 4));
    let capped = ask(&md, &socket, &all, &request(&all, 1, 1_000), max);
    assert_eq!(capped, log_messages(&all, 1, 5));

    // Malformed: no answer. A valid request after them is answered first
    // (the thread takes requests in order), so any answer to a bad one
    // would show up before it.
    let good = request(&all, 3, 2);
    let mut long = good.encode().to_vec();
    long.push(0);
    let other = Request {
        session: Session::new("OTHER").unwrap(),
        ..good
    };
    let malformed: [&[u8]; 5] = [
        &good.encode()[..19],
        &long,
        &other.encode(),
        &request(&all, 0, 1).encode(),
        &request(&all, 1, 0).encode(),
    ];
    for bad in malformed {
        socket.send_to(bad, md.rerequest).unwrap();
    }
    assert_eq!(receive(&socket, Duration::from_millis(150)), None);
    let after = ask(&md, &socket, &all, &good, max);
    assert_eq!(after, log_messages(&all, 3, 4));

    let stats = md.handle.finish().unwrap();
    assert_eq!(stats.rerequests_malformed, 5);
    assert_eq!(stats.rerequests_answered, 3);
    assert_eq!(stats.rerequests_rate_limited, 0);
    assert_eq!(stats.messages_resent, 3 + 5 + 2);
}

#[test]
fn rerequests_over_the_rate_limit_are_dropped() {
    let config = MdConfig {
        rerequest_messages_max: 100,
        rerequest_messages_per_second: 100,
        ..config()
    };
    let (all, _durable, md) = serve("rate", config);
    // A full request (100 messages asked, the whole log sent) takes the
    // whole second of burst.
    let socket = requester();
    let full = request(&all, 1, 100);
    let answer = ask(&md, &socket, &all, &full, 100);
    assert_eq!(answer, log_messages(&all, 1, all.log().len()));
    // Right away again: dropped.
    socket.send_to(&full.encode(), md.rerequest).unwrap();
    assert_eq!(receive(&socket, Duration::from_millis(200)), None);
    // The bucket is the address's, whatever the port (docs/marketdata.md):
    // another port of this host gets no fresh one.
    let other_port = requester();
    other_port.send_to(&full.encode(), md.rerequest).unwrap();
    assert_eq!(receive(&other_port, Duration::from_millis(200)), None);

    let stats = md.handle.finish().unwrap();
    assert_eq!(stats.rerequests_answered, 1);
    assert_eq!(stats.rerequests_rate_limited, 2);
    assert_eq!(stats.rerequests_malformed, 0);
    assert_eq!(stats.messages_resent, all.log().len());
}

fn login(requested_session: [u8; 10]) -> Vec<u8> {
    let mut out = Vec::new();
    ClientPacket::LoginRequest {
        username: soupbin::alpha("MD").unwrap(),
        password: [b' '; 10],
        requested_session,
        requested_sequence: 1,
    }
    .encode(&mut out)
    .unwrap();
    out
}

/// Connects, sends `bytes`, and returns what the server sends until it
/// closes the connection: the packets other than ITCH messages (as
/// `Debug` text) and the ITCH messages.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> (Vec<String>, Vec<Message>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    read_to_close(&mut stream)
}

fn read_to_close(stream: &mut TcpStream) -> (Vec<String>, Vec<Message>) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(len) => bytes.extend_from_slice(&chunk[..len]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the server did not close the connection: {error}"),
        }
    }
    let (mut packets, mut messages) = (Vec::new(), Vec::new());
    let mut rest = &bytes[..];
    while let Some((frame, used)) = soupbin::next_frame(rest, u16::MAX).unwrap() {
        match ServerPacket::decode(frame).unwrap() {
            ServerPacket::SequencedData(payload) if payload.first() != Some(&b'G') => {
                messages.push(Message::decode(payload).unwrap());
            }
            packet => packets.push(format!("{packet:?}")),
        }
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "a partial packet at the end");
    (packets, messages)
}

#[test]
fn snapshot_logins_and_login_timeout() {
    let login_timeout = Duration::from_millis(200);
    let config = MdConfig {
        snapshot_login_timeout: login_timeout,
        ..config()
    };
    let (all, _durable, md) = serve("snapshot", config);
    let session = *all.session().as_bytes();

    // Another session: Login Rejected 'S', then closed.
    let rejected = ServerPacket::LoginRejected {
        reason: RejectReason::SessionNotAvailable,
    };
    let (packets, messages) = exchange(md.snapshot, &login(*b"OTHER     "));
    assert_eq!(packets, [format!("{rejected:?}")]);
    assert!(messages.is_empty());

    // The current session by name, after a heartbeat and a debug packet:
    // Login Accepted, the state, End of Snapshot, End of Session, closed.
    let mut hello = Vec::new();
    ClientPacket::ClientHeartbeat.encode(&mut hello).unwrap();
    ClientPacket::Debug(b"hello").encode(&mut hello).unwrap();
    hello.extend_from_slice(&login(session));
    let (packets, messages) = exchange(md.snapshot, &hello);
    let accepted = ServerPacket::LoginAccepted {
        session,
        sequence: 1,
    };
    let end = end_of_snapshot(all.next_sequence());
    let end = ServerPacket::SequencedData(&end);
    let expected = [accepted, end, ServerPacket::EndOfSession].map(|p| format!("{p:?}"));
    assert_eq!(packets, expected);
    assert_eq!(normalized(&messages), expected_snapshot(&all));

    // Never logs in: closed after the login timeout, not before.
    let start = Instant::now();
    assert_eq!(exchange(md.snapshot, b""), (vec![], vec![]));
    let waited = start.elapsed();
    assert!(
        waited >= login_timeout && waited < Duration::from_millis(1_500),
        "closed after {waited:?}"
    );

    let stats = md.handle.finish().unwrap();
    assert_eq!(stats.snapshot_protocol_errors, 0);
    assert_eq!(stats.snapshots_served, md.fetched + 1);
    assert_eq!(stats.snapshot_sessions_refused, 0);
}

#[test]
fn snapshot_protocol_errors_and_session_limit() {
    let config = MdConfig {
        snapshot_sessions_max: 2,
        ..config()
    };
    let (all, _durable, mut md) = serve("sessions", config);
    // Protocol errors: closed at once (the login timeout is 5 s) without
    // an answer, each counted.
    let mut unsequenced = Vec::new();
    ClientPacket::UnsequencedData(b"order")
        .encode(&mut unsequenced)
        .unwrap();
    let garbage: [&[u8]; 4] = [
        b"\x00\x00",             // zero length
        b"\x00\x04Qabc",         // unknown packet type
        b"\xff\xffxxxxxxxxxxxx", // longer than a login
        &unsequenced,            // data before login
    ];
    for bytes in garbage {
        let start = Instant::now();
        assert_eq!(exchange(md.snapshot, bytes), (vec![], vec![]), "{bytes:?}");
        assert!(start.elapsed() < Duration::from_secs(1), "{bytes:?}");
    }

    // Two clients hold both slots (the login timeout is 5 s); a third is
    // closed at once, having been sent nothing.
    let mut first = TcpStream::connect(md.snapshot).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _second = TcpStream::connect(md.snapshot).unwrap();
    let start = Instant::now();
    assert_eq!(exchange(md.snapshot, b""), (vec![], vec![]));
    assert!(start.elapsed() < Duration::from_secs(1));

    // The first was kept: it gets its snapshot, which frees its slot for
    // the next client.
    first.write_all(&login([b' '; 10])).unwrap();
    let (packets, messages) = read_to_close(&mut first);
    assert!(packets[0].starts_with("LoginAccepted"), "{packets:?}");
    assert_eq!(packets.last().unwrap(), "EndOfSession");
    assert_eq!(normalized(&messages), expected_snapshot(&all));
    md.snapshot_at(all.next_sequence());

    let stats = md.handle.finish().unwrap();
    assert_eq!(stats.snapshot_sessions_refused, 1);
    assert_eq!(stats.snapshots_served, md.fetched + 1);
    assert_eq!(stats.snapshot_protocol_errors, 4);
}

#[test]
fn finish_ends_the_session_log() {
    let n = stream().len();
    let root = TempDir::new("log");
    let mut publisher = Publisher::new(DEFAULT_PAYLOAD_MAX).unwrap();
    publisher.write_logs_under(root.path(), T0).unwrap();
    let config = MdConfig {
        log_dir: Some(root.path().to_path_buf()),
        ..config()
    };
    // The last command never becomes durable: it is not published.
    let (published, _durable, md) = serve_with("finish", config, publisher, n - 1);

    let finishing = Instant::now();
    let stats = md.handle.finish().unwrap();
    assert!(finishing.elapsed() < Duration::from_secs(1));
    assert_eq!(stats.commands, n as u64 - 1);
    assert_eq!(stats.messages, published.log().len());

    // The session's log holds every published message, then the end mark.
    let session = published.session();
    let dir = root.path().join(session.as_str());
    let on_disk = published.log().inspect(&dir).unwrap().expect("a log");
    assert_eq!(on_disk.messages, published.log().len());
    assert!(on_disk.ended);
    assert!(on_disk.disagreement.is_none(), "{:?}", on_disk.disagreement);

    // A restart regenerates the same stream: the ended session is not
    // continued; the day goes on under generation 1.
    let mut restarted = reference(&stream()[..n - 1]);
    restarted.write_logs_under(root.path(), T0).unwrap();
    assert_eq!(restarted.generation(), 1);
    assert_eq!(restarted.session().as_bytes()[6], b'A');
    assert_eq!(
        restarted.session().as_str(),
        format!("{}A000", &session.as_str()[..6])
    );
    drop(restarted);
}
