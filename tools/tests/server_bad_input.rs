//! Bad input at the server's edge: garbage bytes, lengths of 0 and 65535,
//! truncated frames, wrong passwords, unknown symbols, cancels of another
//! account's order, floods past the rate limit and clients that never read.
//! Each gets its documented answer (`docs/protocol.md`, the server module's
//! docs) while other sessions keep trading.

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use gateway::client::{ClientError, LoginParams, OuchClient};
use gateway::ouch::{self, Inbound, Outbound};
use gateway::server::reasons;
use tools::config::Config;
use tools::serve::Running;
use wire::soupbin::{self, ClientPacket, Frame, FrameDecoder, RejectReason, ServerPacket};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// How long a bad client waits for the server to close its connection.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// A packet from the server: its type byte and payload.
type Packet = (u8, Vec<u8>);

/// A raw SoupBinTCP connection for clients that misbehave.
struct Raw {
    stream: TcpStream,
    decoder: FrameDecoder,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        Raw {
            stream,
            decoder: FrameDecoder::new(u16::MAX),
        }
    }

    /// Connects and logs in; panics unless Login Accepted comes back.
    fn login(addr: SocketAddr, username: &str, password: &str) -> Raw {
        let mut raw = Raw::connect(addr);
        raw.send(&login_request(username, password, "", 0))
            .expect("send the Login Request");
        let packet = raw.next_packet(WAIT).expect("an answer to the login");
        assert_eq!(
            packet.0,
            b'A',
            "Login Accepted expected, got {:?}",
            decode(&packet)
        );
        raw
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// The next packet other than a Server Heartbeat; `None` once the server
    /// has closed the connection (EOF or reset). Panics if neither happens
    /// within `within`.
    fn next_packet(&mut self, within: Duration) -> Option<Packet> {
        let deadline = Instant::now() + within;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            while let Some(frame) = self
                .decoder
                .next_frame()
                .expect("the server sends valid frames")
            {
                if frame.packet_type != b'H' {
                    return Some((frame.packet_type, frame.payload.to_vec()));
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            assert!(
                !remaining.is_zero(),
                "the server neither sent a packet nor closed the connection within {within:?}"
            );
            self.stream.set_read_timeout(Some(remaining)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => {
                    // Only whole frames are left out of the decoder, so a
                    // chunk always fits.
                    let fed = self.decoder.feed(&chunk[..n]);
                    assert_eq!(fed, n, "the decoder takes a whole chunk");
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    return None;
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => panic!("read failed: {error}"),
            }
        }
    }

    /// Every packet (heartbeats left out) until the server closes the
    /// connection; panics if it does not within `within`.
    fn until_closed(&mut self, within: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + within;
        let mut packets = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.next_packet(remaining.max(Duration::from_millis(1))) {
                Some(packet) => packets.push(packet),
                None => return packets,
            }
        }
    }

    /// Asserts that the server closes the connection within [`CLOSE_WAIT`]
    /// and sends nothing but heartbeats before it does.
    fn assert_closed_silently(mut self, what: &str) {
        let packets = self.until_closed(CLOSE_WAIT);
        let decoded: Vec<_> = packets.iter().map(decode).collect();
        assert!(
            packets.is_empty(),
            "{what}: expected the connection closed without a reply, got {decoded:?}"
        );
    }
}

fn decode(packet: &Packet) -> String {
    match ServerPacket::decode(Frame {
        packet_type: packet.0,
        payload: &packet.1,
    }) {
        Ok(ServerPacket::SequencedData(payload)) => match Outbound::decode(payload) {
            Ok(message) => format!("Sequenced Data {message:?}"),
            Err(error) => format!("Sequenced Data {payload:?} ({error:?})"),
        },
        Ok(packet) => format!("{packet:?}"),
        Err(error) => format!("{packet:?} ({error:?})"),
    }
}

/// A Login Request, encoded.
fn login_request(username: &str, password: &str, session: &str, sequence: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    ClientPacket::LoginRequest {
        username: soupbin::alpha(username).expect("a username"),
        password: soupbin::alpha(password).expect("a password"),
        requested_session: soupbin::alpha_right_justified(session).expect("a session"),
        requested_sequence: sequence,
    }
    .encode(&mut bytes)
    .unwrap();
    bytes
}

/// A packet by hand: `length` as given (not checked against the rest).
fn frame(length: u16, packet_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = length.to_be_bytes().to_vec();
    bytes.push(packet_type);
    bytes.extend_from_slice(payload);
    bytes
}

/// An Unsequenced Data packet carrying `payload`.
fn unsequenced(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    ClientPacket::UnsequencedData(payload)
        .encode(&mut bytes)
        .unwrap();
    bytes
}

fn ouch_bytes(message: &Inbound) -> Vec<u8> {
    let mut payload = Vec::new();
    message.encode(&mut payload);
    payload
}

/// An Enter Order with its fields changed by `change`.
fn order_with(user_ref_num: u32, change: impl FnOnce(&mut ouch::EnterOrder)) -> Inbound {
    let Inbound::EnterOrder(mut enter) = order(user_ref_num, ouch::Side::Buy, 10, "ACME", 990_000)
    else {
        unreachable!("order() makes an Enter Order");
    };
    change(&mut enter);
    Inbound::EnterOrder(enter)
}

/// A well-behaved pair still trades: DEMO2 buys 10 EURUSD at 1.1000 with
/// UserRefNum `user_ref_num`, DEMO3 sells it to them with the same
/// UserRefNum; each gets Order Accepted and Order Executed. Both log out
/// afterwards, so this may be called again with a higher `user_ref_num`.
fn assert_others_trade(running: &Running, user_ref_num: u32) {
    let mut buyer = trader(running, "DEMO2", 0);
    let mut seller = trader(running, "DEMO3", 0);
    buyer
        .send(&order(user_ref_num, ouch::Side::Buy, 10, "EURUSD", 11_000))
        .unwrap();
    let (_, accepted) = next(&mut buyer);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a)
            if a.user_ref_num == user_ref_num && a.order_state == ouch::OrderState::Live),
        "DEMO2's order accepted and resting: {accepted:?}"
    );
    seller
        .send(&order(user_ref_num, ouch::Side::Sell, 10, "EURUSD", 11_000))
        .unwrap();
    let (_, accepted) = next(&mut seller);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.user_ref_num == user_ref_num),
        "DEMO3's order accepted: {accepted:?}"
    );
    for (name, client) in [("DEMO3", &mut seller), ("DEMO2", &mut buyer)] {
        let (_, executed) = next(client);
        assert!(
            matches!(executed, Outbound::OrderExecuted(e)
                if e.user_ref_num == user_ref_num && e.quantity == 10
                    && e.price == ouch::Price(11_000)),
            "{name}'s order executed: {executed:?}"
        );
    }
    buyer.logout().unwrap();
    seller.logout().unwrap();
}

fn start_with(name: &str, change: impl FnOnce(&mut Config)) -> (Running, std::path::PathBuf) {
    // The server logs why it closes each session; the test harness shows
    // it for a failing test only.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let dir = scratch(name);
    let mut config = test_config(&dir);
    change(&mut config);
    (start(&config), dir)
}

fn finish(running: Running, dir: &std::path::Path) {
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

fn rejected_reason(message: &Outbound, user_ref_num: u32) -> Option<u16> {
    match message {
        Outbound::OrderRejected(r) if r.user_ref_num == user_ref_num => Some(r.reason.code()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Framing: the connection is closed
// ---------------------------------------------------------------------------

#[test]
fn garbage_bytes_close_the_connection() {
    let (running, dir) = start_with("bad-garbage", |_| {});
    // Before a login: an HTTP request (its first two bytes read as a length
    // of 0x4745, above the maximum), then bytes that frame as an unknown
    // type.
    let mut raw = Raw::connect(running.order_entry);
    raw.send(b"GET / HTTP/1.1\r\nHost: exchange\r\n\r\n")
        .unwrap();
    raw.assert_closed_silently("an HTTP request");
    let mut raw = Raw::connect(running.order_entry);
    raw.send(&[0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .unwrap();
    raw.assert_closed_silently("random bytes framed as an unknown type");
    // After a login.
    let mut raw = Raw::login(running.order_entry, "DEMO1", "demo1");
    raw.send(&[0x13, 0x37, 0xc0, 0xff, 0xee, 0x00, 0x01, 0x02])
        .unwrap();
    raw.assert_closed_silently("garbage after a login");
    // On the funding port.
    let mut raw = Raw::connect(running.funding);
    raw.send(b"\xff\xfe\xfd\xfc garbage").unwrap();
    raw.assert_closed_silently("garbage on the funding port");
    // The closed session may log in again.
    let demo1 = trader(&running, "DEMO1", 0);
    demo1.logout().unwrap();
    assert_others_trade(&running, 1);
    finish(running, &dir);
}

#[test]
fn lengths_of_0_and_65535_and_wrong_lengths_close_the_connection() {
    let (running, dir) = start_with("bad-lengths", |_| {});
    let login = login_request("DEMO1", "demo1", "", 0);
    let mut long_login = login.clone();
    // The 52-byte Login Request some clients send (with a heartbeat field).
    long_login.extend_from_slice(b"15000");
    long_login[..2].copy_from_slice(&52u16.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length 0", vec![0x00, 0x00]),
        ("length 0 then more", vec![0x00, 0x00, 0x00, 0x01, b'R']),
        ("length 65535", {
            let mut bytes = vec![0xff, 0xff, b'U'];
            bytes.extend_from_slice(&[0u8; 2000]);
            bytes
        }),
        ("length 1025 (above the 1024 maximum)", {
            let mut bytes = frame(1025, b'U', &[b'x'; 1024]);
            bytes.truncate(2 + 1025);
            bytes
        }),
        ("a Client Heartbeat with a payload", frame(2, b'R', &[0])),
        ("a Logout Request with a payload", frame(3, b'O', &[0, 0])),
        ("the 52-byte Login Request", long_login),
        ("a Login Request one byte short", {
            let mut bytes = login.clone();
            bytes.pop();
            bytes[..2].copy_from_slice(&46u16.to_be_bytes());
            bytes
        }),
    ];
    for (what, bytes) in &cases {
        let mut raw = Raw::connect(running.order_entry);
        raw.send(bytes).unwrap();
        raw.assert_closed_silently(&format!("before a login: {what}"));
    }
    // The same after a login (the Login Request cases are a second login).
    for (what, bytes) in &cases {
        let mut raw = Raw::login(running.order_entry, "DEMO1", "demo1");
        raw.send(bytes).unwrap();
        raw.assert_closed_silently(&format!("after a login: {what}"));
    }
    assert_others_trade(&running, 1);
    finish(running, &dir);
}

#[test]
fn unknown_packet_types_and_packets_before_the_login_close_the_connection() {
    let (running, dir) = start_with("bad-types", |_| {});
    // Unknown types, and the server's own types sent by a client.
    let unknown: Vec<(&str, Vec<u8>)> = vec![
        ("type 'Q'", frame(1, b'Q', &[])),
        ("type 0x00", frame(1, 0x00, &[])),
        ("type 0xff with a payload", frame(4, 0xff, b"abc")),
        ("Sequenced Data 'S' from a client", frame(2, b'S', b"x")),
        ("Server Heartbeat 'H' from a client", frame(1, b'H', &[])),
        ("Login Accepted 'A' from a client", frame(1, b'A', &[])),
    ];
    for (what, bytes) in &unknown {
        let mut raw = Raw::connect(running.order_entry);
        raw.send(bytes).unwrap();
        raw.assert_closed_silently(&format!("before a login: {what}"));
        let mut raw = Raw::login(running.order_entry, "DEMO1", "demo1");
        raw.send(bytes).unwrap();
        raw.assert_closed_silently(&format!("after a login: {what}"));
    }
    // Valid packets, but the first packet must be a Login Request.
    let order_payload = ouch_bytes(&order(1, ouch::Side::Buy, 1, "ACME", 990_000));
    let not_login: Vec<(&str, Vec<u8>)> = vec![
        ("a Client Heartbeat", frame(1, b'R', &[])),
        ("a Logout Request", frame(1, b'O', &[])),
        ("a Debug packet", frame(6, b'+', b"hello")),
        ("an order in Unsequenced Data", unsequenced(&order_payload)),
    ];
    for (what, bytes) in &not_login {
        let mut raw = Raw::connect(running.order_entry);
        raw.send(bytes).unwrap();
        raw.assert_closed_silently(&format!("first packet {what}"));
    }
    // The order sent before the login was not entered: UserRefNum 1 is
    // still free for DEMO1.
    let mut demo1 = trader(&running, "DEMO1", 0);
    demo1
        .send(&order(1, ouch::Side::Buy, 1, "ACME", 990_000))
        .unwrap();
    let (_, accepted) = next(&mut demo1);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.user_ref_num == 1),
        "{accepted:?}"
    );
    demo1.logout().unwrap();
    assert_others_trade(&running, 1);
    finish(running, &dir);
}

#[test]
fn a_malformed_message_inside_valid_unsequenced_data_closes_the_connection() {
    let (running, dir) = start_with("bad-ouch", |_| {});
    let enter = ouch_bytes(&order(1, ouch::Side::Buy, 1, "ACME", 990_000));
    let mut bad_side = enter.clone();
    // Type 'O', UserRefNum (4), then the side.
    bad_side[5] = b'?';
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("an empty payload", Vec::new()),
        (
            "unknown OUCH message type 'Z'",
            b"Z\x00\x00\x00\x01".to_vec(),
        ),
        ("a truncated Enter Order", enter[..20].to_vec()),
        ("an Enter Order with side '?'", bad_side),
        ("a Cancel Order of 3 bytes", b"X\x00\x00".to_vec()),
    ];
    for (what, payload) in &cases {
        let mut raw = Raw::login(running.order_entry, "DEMO1", "demo1");
        raw.send(&unsequenced(payload)).unwrap();
        raw.assert_closed_silently(what);
    }
    // A second Login Request on a logged-in session.
    let mut raw = Raw::login(running.order_entry, "DEMO1", "demo1");
    raw.send(&login_request("DEMO1", "demo1", "", 0)).unwrap();
    raw.assert_closed_silently("a second Login Request");
    // A malformed funding request on the funding port.
    let mut raw = Raw::login(running.funding, "OPER1", "oper1");
    raw.send(&unsequenced(b"D\x00\x01")).unwrap();
    raw.assert_closed_silently("a truncated Deposit");
    // Nothing malformed reached the engine: UserRefNum 1 is still free.
    let mut demo1 = trader(&running, "DEMO1", 0);
    demo1
        .send(&order(1, ouch::Side::Buy, 1, "ACME", 990_000))
        .unwrap();
    let (_, accepted) = next(&mut demo1);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.user_ref_num == 1),
        "{accepted:?}"
    );
    demo1.logout().unwrap();
    assert_others_trade(&running, 1);
    finish(running, &dir);
}

#[test]
fn a_truncated_frame_is_closed_at_the_client_timeout() {
    let (running, dir) = start_with("bad-truncated", |config| {
        config.server.client_timeout_ms = 1_000;
    });
    let enter = unsequenced(&ouch_bytes(&order(1, ouch::Side::Buy, 1, "ACME", 990_000)));
    let login = login_request("DEMO1", "demo1", "", 0);
    // Half a Login Request; half an order after a login.
    let mut half_login = Raw::connect(running.order_entry);
    half_login.send(&login[..login.len() / 2]).unwrap();
    let sent_half_login = Instant::now();
    let mut half_order = Raw::login(running.order_entry, "DEMO1", "demo1");
    half_order.send(&enter[..enter.len() / 2]).unwrap();
    let sent_half_order = Instant::now();
    // Others trade meanwhile (within the second the bad clients wait).
    assert_others_trade(&running, 1);
    for (what, mut raw, sent) in [
        ("half a Login Request", half_login, sent_half_login),
        ("half an order", half_order, sent_half_order),
    ] {
        let packets = raw.until_closed(Duration::from_secs(5));
        let closed_after = sent.elapsed();
        assert!(
            packets.is_empty(),
            "{what}: nothing expected before the close, got {:?}",
            packets.iter().map(decode).collect::<Vec<_>>()
        );
        assert!(
            closed_after >= Duration::from_millis(900),
            "{what}: closed after {closed_after:?}, before the client timeout (1 s)"
        );
        assert!(
            closed_after <= Duration::from_secs(4),
            "{what}: closed only after {closed_after:?}"
        );
    }
    assert_others_trade(&running, 2);
    finish(running, &dir);
}

// ---------------------------------------------------------------------------
// Logins
// ---------------------------------------------------------------------------

#[test]
fn bad_logins_get_login_rejected_then_close() {
    let (running, dir) = start_with("bad-logins", |_| {});
    // DEMO4 is logged in and stays so.
    let mut demo4 = trader(&running, "DEMO4", 0);
    let cases = [
        (
            "a wrong password",
            login_request("DEMO2", "wrong", "", 0),
            RejectReason::NotAuthorized,
        ),
        (
            "an unknown user",
            login_request("NOBODY", "nobody", "", 0),
            RejectReason::NotAuthorized,
        ),
        (
            "another login's password",
            login_request("DEMO3", "demo2", "", 0),
            RejectReason::NotAuthorized,
        ),
        (
            "the operator on the order-entry port",
            login_request("OPER1", "oper1", "", 0),
            RejectReason::NotAuthorized,
        ),
        (
            "a login already logged in",
            login_request("DEMO4", "demo4", "", 0),
            RejectReason::SessionNotAvailable,
        ),
        (
            "an unknown session",
            login_request("DEMO2", "demo2", "OTHER00000", 1),
            RejectReason::SessionNotAvailable,
        ),
    ];
    for (what, bytes, reason) in &cases {
        let mut raw = Raw::connect(running.order_entry);
        raw.send(bytes).unwrap();
        let packets = raw.until_closed(CLOSE_WAIT);
        let decoded: Vec<String> = packets.iter().map(decode).collect();
        assert_eq!(
            decoded,
            [format!(
                "{:?}",
                ServerPacket::LoginRejected { reason: *reason }
            )],
            "{what}: Login Rejected '{}' then close",
            reason.code() as char
        );
    }
    // A wrong password on the funding port.
    let mut raw = Raw::connect(running.funding);
    raw.send(&login_request("OPER1", "wrong", "", 0)).unwrap();
    let packets = raw.until_closed(CLOSE_WAIT);
    assert_eq!(
        packets,
        [(b'J', vec![b'A'])],
        "funding port, a wrong password"
    );
    // DEMO4's session was not disturbed.
    demo4
        .send(&order(1, ouch::Side::Buy, 1, "ACME", 990_000))
        .unwrap();
    let (_, accepted) = next(&mut demo4);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.user_ref_num == 1),
        "{accepted:?}"
    );
    demo4.logout().unwrap();
    // DEMO2 (wrong password above) logs in with the right one.
    assert_others_trade(&running, 1);
    finish(running, &dir);
}

// ---------------------------------------------------------------------------
// Orders: OUCH rejects
// ---------------------------------------------------------------------------

#[test]
fn an_order_for_an_unknown_symbol_is_rejected_and_uses_its_user_ref_num() {
    let (running, dir) = start_with("bad-symbol", |_| {});
    let mut demo1 = trader(&running, "DEMO1", 0);
    demo1
        .send(&order(1, ouch::Side::Buy, 10, "NOSUCH", 1_000_000))
        .unwrap();
    let (_, rejected) = next(&mut demo1);
    assert_eq!(
        rejected_reason(&rejected, 1),
        Some(reasons::INVALID_SYMBOL),
        "unknown symbol: {rejected:?}"
    );
    // The UserRefNum was used: the same one again is a duplicate.
    demo1
        .send(&order(1, ouch::Side::Buy, 10, "ACME", 990_000))
        .unwrap();
    let (_, rejected) = next(&mut demo1);
    assert_eq!(
        rejected_reason(&rejected, 1),
        Some(reasons::ENGINE_BASE + engine::RejectReason::DuplicateUserRefNum.code()),
        "UserRefNum 1 again: {rejected:?}"
    );
    // The session goes on.
    demo1
        .send(&order(2, ouch::Side::Buy, 10, "ACME", 990_000))
        .unwrap();
    let (_, accepted) = next(&mut demo1);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.user_ref_num == 2),
        "{accepted:?}"
    );
    assert_others_trade(&running, 1);
    demo1.logout().unwrap();
    finish(running, &dir);
}

#[test]
fn unsupported_order_features_are_rejected_with_their_reason() {
    let (running, dir) = start_with("bad-features", |_| {});
    let mut demo1 = trader(&running, "DEMO1", 0);
    let cases: Vec<(&str, Inbound, u16)> = vec![
        (
            "Time In Force 6 (GTT)",
            order_with(1, |o| o.time_in_force = ouch::TimeInForce::GoodTillTime),
            reasons::UNSUPPORTED,
        ),
        (
            "Time In Force E (after hours)",
            order_with(2, |o| o.time_in_force = ouch::TimeInForce::AfterHours),
            reasons::UNSUPPORTED,
        ),
        (
            "Display N",
            order_with(3, |o| o.display = ouch::Display::Hidden),
            reasons::INVALID_DISPLAY,
        ),
        (
            "Display A",
            order_with(4, |o| o.display = ouch::Display::Attributable),
            reasons::INVALID_DISPLAY,
        ),
        (
            "a Peg Offset",
            order_with(5, |o| o.options.peg_offset = Some(ouch::PriceOffset(100))),
            reasons::UNSUPPORTED,
        ),
        (
            "a Max Floor",
            order_with(6, |o| o.options.max_floor = Some(5)),
            reasons::UNSUPPORTED,
        ),
        (
            "an Expire Time",
            order_with(7, |o| o.options.expire_time_s = Some(60)),
            reasons::UNSUPPORTED,
        ),
        (
            "a Random Reserves",
            order_with(8, |o| o.options.random_reserves = Some(3)),
            reasons::UNSUPPORTED,
        ),
        (
            "a Min Qty below the quantity",
            order_with(9, |o| o.options.min_quantity = Some(3)),
            reasons::INVALID_MIN_QUANTITY,
        ),
        (
            "a short sale",
            order_with(10, |o| o.side = ouch::Side::SellShort),
            reasons::INVALID_SIDE,
        ),
        (
            "Cross Type O (opening cross)",
            order_with(11, |o| o.cross_type = ouch::CrossType::OpeningCross),
            reasons::INVALID_CROSS,
        ),
    ];
    for (what, message, reason) in &cases {
        let Inbound::EnterOrder(enter) = message else {
            unreachable!()
        };
        demo1.send(message).unwrap();
        let (_, answer) = next(&mut demo1);
        assert_eq!(
            rejected_reason(&answer, enter.user_ref_num),
            Some(*reason),
            "{what}: Order Rejected 0x{reason:04x} expected, got {answer:?}"
        );
    }
    // A plain order is still accepted.
    demo1.send(&order_with(12, |_| {})).unwrap();
    let (_, accepted) = next(&mut demo1);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.user_ref_num == 12),
        "{accepted:?}"
    );
    assert_others_trade(&running, 1);
    demo1.logout().unwrap();
    finish(running, &dir);
}

#[test]
fn a_cancel_of_another_accounts_order_is_rejected_and_the_order_stays() {
    let (running, dir) = start_with("bad-cancel", |_| {});
    let mut demo1 = trader(&running, "DEMO1", 0);
    let mut demo4 = trader(&running, "DEMO4", 0);
    // DEMO1's order rests with UserRefNum 7.
    demo1
        .send(&order(7, ouch::Side::Buy, 10, "ACME", 1_000_000))
        .unwrap();
    let (_, accepted) = next(&mut demo1);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a)
            if a.user_ref_num == 7 && a.order_state == ouch::OrderState::Live),
        "{accepted:?}"
    );
    // DEMO4 names UserRefNum 7 (it has none), and one nobody has.
    for user_ref_num in [7, 999] {
        demo4
            .send(&Inbound::CancelOrder(ouch::CancelOrder {
                user_ref_num,
                quantity: 0,
                options: ouch::Options::NONE,
            }))
            .unwrap();
        let (_, answer) = next(&mut demo4);
        assert!(
            matches!(answer, Outbound::CancelReject(r) if r.user_ref_num == user_ref_num),
            "a cancel of UserRefNum {user_ref_num} DEMO4 does not have: Cancel Reject \
             expected, got {answer:?}"
        );
    }
    // DEMO1 heard nothing of it, and its order still trades.
    assert_eq!(
        demo1.next_message(Duration::from_millis(200)).unwrap(),
        None,
        "DEMO1 gets nothing from DEMO4's cancels"
    );
    demo4
        .send(&order(1, ouch::Side::Sell, 10, "ACME", 1_000_000))
        .unwrap();
    let (_, accepted) = next(&mut demo4);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.user_ref_num == 1),
        "{accepted:?}"
    );
    let (_, taker) = next(&mut demo4);
    let (_, maker) = next(&mut demo1);
    assert!(
        matches!(taker, Outbound::OrderExecuted(e) if e.user_ref_num == 1 && e.quantity == 10),
        "{taker:?}"
    );
    assert!(
        matches!(maker, Outbound::OrderExecuted(e) if e.user_ref_num == 7 && e.quantity == 10),
        "DEMO1's order 7 was still there to trade: {maker:?}"
    );
    assert_others_trade(&running, 1);
    demo1.logout().unwrap();
    demo4.logout().unwrap();
    finish(running, &dir);
}

// ---------------------------------------------------------------------------
// Protection: rate limit, slow consumer
// ---------------------------------------------------------------------------

#[test]
fn a_flood_past_the_rate_limit_is_disconnected_after_the_burst() {
    let (running, dir) = start_with("bad-flood", |config| {
        config.server.messages_per_second = 200;
        config.server.messages_burst = 100;
    });
    let mut demo1 = trader(&running, "DEMO1", 0);
    for user_ref_num in 1..=1_000 {
        demo1
            .queue(&order(user_ref_num, ouch::Side::Buy, 1, "GLOBEX", 490_000))
            .unwrap();
    }
    // The server may close while the last bytes are being written.
    let _ = demo1.flush();
    let deadline = Instant::now() + WAIT;
    let ended = loop {
        match demo1.next_message(deadline.saturating_duration_since(Instant::now())) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the flooding session was not disconnected within {WAIT:?}"),
            Err(error) => break error,
        }
    };
    assert!(
        matches!(ended, ClientError::Disconnected),
        "the flooding session is disconnected: {ended:?}"
    );
    // What came before the limit was processed: its replies replay.
    let (mut again, _) = OuchClient::connect(
        running.order_entry,
        &LoginParams {
            sequence: 1,
            ..LoginParams::new("DEMO1", "demo1")
        },
    )
    .expect("DEMO1 logs in again");
    let replayed = drain(&mut again, Duration::from_millis(500));
    let accepted: Vec<u32> = replayed
        .iter()
        .filter_map(|(_, message)| match message {
            Outbound::OrderAccepted(a) => Some(a.user_ref_num),
            _ => None,
        })
        .collect();
    assert_eq!(
        accepted.len(),
        replayed.len(),
        "only Order Accepted: {replayed:?}"
    );
    assert!(
        (100..=200).contains(&accepted.len()),
        "the burst (100) and little more was processed, got {}",
        accepted.len()
    );
    let expected: Vec<u32> = (1..=accepted.len() as u32).collect();
    assert_eq!(accepted, expected, "the first messages, in order");
    again.logout().unwrap();
    assert_others_trade(&running, 1);
    finish(running, &dir);
}

#[test]
fn a_client_that_never_reads_is_disconnected_as_a_slow_consumer() {
    let (running, dir) = start_with("bad-slow", |config| {
        config.server.outbound_buffer_bytes = 65_536;
        config.server.heartbeat_ms = 200;
        config.server.messages_per_second = 10_000_000;
        config.server.messages_burst = 10_000_000;
    });
    let mut raw = Raw::login(running.order_entry, "DEMO1", "demo1");
    // 50,000 IOC orders with nothing to match: each gets Order Accepted and
    // Order Canceled, several MB the client never reads.
    let mut bytes = Vec::new();
    for user_ref_num in 1..=50_000 {
        let message = order_with(user_ref_num, |o| {
            o.time_in_force = ouch::TimeInForce::ImmediateOrCancel;
            o.quantity = 1;
        });
        bytes.extend_from_slice(&unsequenced(&ouch_bytes(&message)));
    }
    let mut writer = raw.stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    // Writes the orders, then a Client Heartbeat every 50 ms (so the
    // server's client timeout never fires), until a write fails: the
    // server has closed the connection.
    let writing = thread::spawn(move || -> Option<(Duration, io::Error)> {
        for chunk in bytes.chunks(64 * 1024) {
            if let Err(error) = writer.write_all(chunk) {
                return Some((started.elapsed(), error));
            }
        }
        while started.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(50));
            if let Err(error) = writer.write_all(&frame(1, b'R', &[])) {
                return Some((started.elapsed(), error));
            }
        }
        None
    });
    // The engine and other sessions keep going meanwhile.
    assert_others_trade(&running, 1);
    let failed = writing.join().unwrap();
    let Some((after, error)) = failed else {
        panic!("the server did not disconnect the client that never reads within 10 s");
    };
    assert!(
        matches!(
            error.kind(),
            io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
        ),
        "the write failed because the server closed the connection: {error:?}"
    );
    assert!(
        after <= Duration::from_secs(5),
        "disconnected only after {after:?}"
    );
    // Reading now finds the close after what was in flight.
    let _ = raw.until_closed(Duration::from_secs(5));
    // The session is gone: DEMO1 logs in again (not "already logged in").
    let demo1 = trader(&running, "DEMO1", 0);
    demo1.logout().unwrap();
    assert_others_trade(&running, 2);
    finish(running, &dir);
}
