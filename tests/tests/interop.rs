//! Interoperability with independent third-party implementations of the
//! protocols at the edge (SoupBinTCP 4.0, OUCH 5.0).
//!
//! - **SoupBinTCP session layer:** softstream-link's `soupbintcp_model` /
//!   `soupbintcp_connect` (re-exported by `ouch_connect_nonblocking`) logs in,
//!   heartbeats and carries raw OUCH payloads (`VecPayload`).
//! - **OUCH client:** `ouch_connect_nonblocking` (with `ouch_model`'s message
//!   types) logs in, replays a stream from a requested sequence number and
//!   sends an Account Query.
//! - **OUCH messages:** `slouch` encodes the Enter Order and decodes our
//!   Order Accepted and Order Executed.
//!
//! Third-party code is not the specification: where a crate deviates from
//! NASDAQ's documents (`ouch_model`'s 9-byte Symbol, `soupbintcp_model`'s
//! right-justified username and password) the tests use the parts it gets
//! right and pin the deviation, which `docs/interop-notes.md` records with
//! evidence from the crate sources.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use byteserde::prelude::{from_slice, to_bytes_stack};
use gateway::client::{LoginParams, OuchClient};
use gateway::ouch::{self, Inbound, Outbound};
use links_nonblocking::prelude::{
    ConnectionStatus, DevNullCallback, RecvNonBlocking, RecvStatus, SendNonBlocking, SendStatus,
};
use ouch_connect_nonblocking::prelude as softstream;
use softstream::{
    CltOuch, CltOuchProtocolAuto, CltSoupBinTcp, CltSoupBinTcpMsg, CltSoupBinTcpProtocolAuto,
    CltSoupBinTcpProtocolManual, SvcOuchPayload, SvcSoupBinTcpMsg,
};
use soupbintcp_model::prelude::{
    LoginRequest, Password, SPayload, SequenceNumber, SessionId, UserName, VecPayload,
};
use tools::config::{Config, DurabilityName};
use tools::serve::Running;
use wire::soupbin::{self, ClientPacket};

const WAIT: Duration = Duration::from_secs(5);
/// 100.0000 with 4 implied decimals.
const PRICE: i64 = 1_000_000;
const QUANTITY: u32 = 10;

// ---------------------------------------------------------------------------
// The exchange in-process (the lines of `tools/tests/common/mod.rs` we need).

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("interop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn test_config(dir: &Path) -> Config {
    let mut config = Config::embedded();
    config.data_dir = dir.to_owned();
    config.journal.durability = DurabilityName::Memory;
    config.journal.segment_bytes = 4 << 20;
    config.journal.prefault = false;
    config.server.order_entry = "127.0.0.1:0".to_owned();
    config.server.funding = "127.0.0.1:0".to_owned();
    config.marketdata.rerequest = "127.0.0.1:0".to_owned();
    config.marketdata.snapshot = "127.0.0.1:0".to_owned();
    config.server.engine_core = None;
    config.server.idle = tools::config::IdleName::SpinPark;
    config
}

fn our_trader(running: &Running, login: &str, sequence: u64) -> OuchClient {
    let mut params = LoginParams::new(login, &login.to_lowercase());
    params.sequence = sequence;
    OuchClient::connect(running.order_entry, &params)
        .expect("login with our client")
        .0
}

fn our_next(client: &mut OuchClient) -> Outbound {
    client
        .next_message(WAIT)
        .expect("a message")
        .expect("a message in time")
        .1
}

fn our_order(user_ref_num: u32, side: ouch::Side, client_order_id: &str) -> ouch::EnterOrder {
    ouch::EnterOrder {
        user_ref_num,
        side,
        quantity: QUANTITY,
        symbol: ouch::Symbol::new("ACME").unwrap(),
        price: ouch::Price(PRICE),
        time_in_force: ouch::TimeInForce::Day,
        display: ouch::Display::Visible,
        capacity: ouch::Capacity::Agency,
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        cross_type: ouch::CrossType::ContinuousMarket,
        client_order_id: ouch::ClOrdId::new(client_order_id).unwrap(),
        options: ouch::Options::NONE,
    }
}

// ---------------------------------------------------------------------------
// slouch: the OUCH 5.0 messages.

/// slouch has no public constructor for an arbitrary UserRefNum (by design);
/// its documented escape hatch is `UserRefNum::parse`.
fn slouch_user_ref_num(value: u32) -> slouch::types::UserRefNum {
    slouch::types::UserRefNum::parse(&value.to_be_bytes())
        .expect("4 bytes")
        .1
}

/// Buy 10 ACME at 100.0000, Day, as slouch encodes it.
fn slouch_enter_order(user_ref_num: u32, client_order_id: &str) -> Vec<u8> {
    use slouch::types::{
        Capacity, CrossType, Display, OrderToken, Price, Side, StockSymbol, TimeInForce,
    };
    let request = slouch::enter! {
        user_ref_num: slouch_user_ref_num(user_ref_num),
        side: Side::Buy,
        quantity: QUANTITY,
        symbol: StockSymbol::from("ACME").unwrap(),
        price: Price::new(PRICE as u64).unwrap(),
        time_in_force: TimeInForce::Day,
        display: Display::Visible,
        capacity: Capacity::Agency,
        intermarket_sweep: false,
        cross_type: CrossType::ContinuousMarket,
        order_token: OrderToken::from(client_order_id).unwrap(),
    };
    request.encode()
}

fn slouch_decode(payload: &[u8]) -> slouch::msg::OuchResponse {
    let (_rest, response) = slouch::msg::OuchResponse::parse(payload)
        .unwrap_or_else(|e| panic!("slouch decodes {payload:02x?}: {e:?}"));
    response
}

// ---------------------------------------------------------------------------
// softstream-link's SoupBinTCP session layer, carrying raw OUCH payloads.

type RawProtocol = CltSoupBinTcpProtocolAuto<VecPayload, VecPayload>;
type RawClt = CltSoupBinTcp<RawProtocol, DevNullCallback<RawProtocol>, 1024>;

fn credentials(login: &str) -> (UserName, Password) {
    (
        UserName::from(login),
        Password::from(login.to_lowercase().as_str()),
    )
}

/// Logs in with `soupbintcp_connect`'s automatic client protocol, which
/// sends the Login Request, expects Login Accepted and sends a Client
/// Heartbeat every `clt_max_hbeat_interval / 2.5` once split.
fn raw_login(running: &Running, login: &str, hbeat: Duration) -> RawClt {
    let (username, password) = credentials(login);
    let protocol = RawProtocol::new(
        username,
        password,
        SessionId::default(),
        SequenceNumber::default(),
        WAIT,
        hbeat,
        hbeat,
    );
    RawClt::connect(
        &running.order_entry.to_string(),
        WAIT,
        Duration::from_millis(50),
        DevNullCallback::new_ref(),
        protocol,
        Some("interop/raw"),
    )
    .expect("the third-party SoupBinTCP client logs in")
}

/// The next Sequenced Data payload, counting the Server Heartbeats skipped.
fn raw_next_sequenced<R>(recver: &mut R, heartbeats: &mut usize) -> Vec<u8>
where
    R: RecvNonBlocking<SvcSoupBinTcpMsg<VecPayload>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match recver.recv_busywait_timeout(left).expect("recv") {
            RecvStatus::Completed(Some(SvcSoupBinTcpMsg::SPayload(SPayload {
                payload, ..
            }))) => {
                return payload.payload;
            }
            RecvStatus::Completed(Some(SvcSoupBinTcpMsg::HBeat(_))) => *heartbeats += 1,
            RecvStatus::Completed(other) => panic!("expected Sequenced Data, got {other:?}"),
            RecvStatus::WouldBlock => panic!("no Sequenced Data within {WAIT:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Byte-level cross-checks (no network).

/// slouch's Enter Order is byte for byte the specification's 47-byte layout,
/// and so our codec's.
#[test]
fn slouch_enter_order_is_byte_exact() {
    let theirs = slouch_enter_order(7, "INTEROP7");
    let mut ours = Vec::new();
    Inbound::EnterOrder(our_order(7, ouch::Side::Buy, "INTEROP7")).encode(&mut ours);
    assert_eq!(theirs.len(), 47, "Enter Order is 47 bytes without options");
    assert_eq!(theirs, ours);
    // Spot checks against the specification's offsets.
    assert_eq!(theirs[0], b'O');
    assert_eq!(&theirs[1..5], &7u32.to_be_bytes());
    assert_eq!(theirs[5], b'B');
    assert_eq!(&theirs[6..10], &QUANTITY.to_be_bytes());
    assert_eq!(&theirs[10..18], b"ACME    ");
    assert_eq!(&theirs[18..26], &(PRICE as u64).to_be_bytes());
    assert_eq!(&theirs[26..31], b"0YANN");
    assert_eq!(&theirs[31..45], b"INTEROP7      ");
    assert_eq!(&theirs[45..47], &[0, 0]);
    assert_eq!(
        Inbound::decode(&theirs),
        Ok(Inbound::EnterOrder(our_order(
            7,
            ouch::Side::Buy,
            "INTEROP7"
        )))
    );
}

/// `ouch_model` 5.0.1 declares Symbol as 9 bytes
/// (`src/model/field_types.rs:66`), so its Enter Order is 48 bytes where the
/// specification has 47, and our codec refuses it. This pins the deviation;
/// if a newer `ouch_model` fixes it, update `docs/interop-notes.md`.
#[test]
fn ouch_model_enter_order_symbol_deviation_is_pinned() {
    let order = softstream::CltOuchPayload::EnterOrder(softstream::EnterOrder::default());
    let (bytes, len) = to_bytes_stack::<256, _>(&order).expect("ouch_model encodes");
    let bytes = &bytes[..len];
    assert_eq!(bytes[0], b'O');
    // Fixed part: 1 + 4 + 1 + 4 + 9 (their Symbol) + 8 + 5 + 14 + 2 = 48.
    let appendage_length = usize::from(u16::from_be_bytes([bytes[46], bytes[47]]));
    assert_eq!(
        len,
        48 + appendage_length,
        "ouch_model's Enter Order has a 9-byte Symbol (1 byte more than OUCH 5.0)"
    );
    assert!(
        Inbound::decode(bytes).is_err(),
        "our codec follows the specification and refuses the 48-byte layout"
    );
}

/// `soupbintcp_model`'s Login Request is 47 bytes as SoupBinTCP 4.0 defines
/// it, but it right-justifies Username and Password (SoupBinTCP says Alpha
/// fields are left-justified). Our decoder trims both sides, so it logs in.
#[test]
fn soupbintcp_model_login_request_decodes() {
    let (username, password) = credentials("DEMO1");
    let request: CltSoupBinTcpMsg<VecPayload> = LoginRequest::new(
        username,
        password,
        SessionId::default(),
        SequenceNumber::from(3u64),
    )
    .into();
    let (bytes, len) = to_bytes_stack::<128, _>(&request).expect("encodes");
    let bytes = &bytes[..len];
    assert_eq!(len, 49, "2-byte length + 47");
    assert_eq!(&bytes[..3], &[0, 47, b'L']);
    // The deviation: right-justified credentials.
    assert_eq!(&bytes[3..9], b" DEMO1");
    assert_eq!(&bytes[9..19], b"     demo1");
    let (frame, consumed) = soupbin::next_frame(bytes, 1024).unwrap().unwrap();
    assert_eq!(consumed, len);
    match ClientPacket::decode(frame).expect("our decoder accepts it") {
        ClientPacket::LoginRequest {
            username,
            password,
            requested_session,
            requested_sequence,
        } => {
            assert_eq!(soupbin::alpha_trimmed(&username), b"DEMO1");
            assert_eq!(soupbin::alpha_trimmed(&password), b"demo1");
            assert_eq!(requested_session, [b' '; 10]);
            assert_eq!(requested_sequence, 3);
        }
        other => panic!("expected a Login Request, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// On the wire.

/// A wrong password through the third-party session layer gets Login
/// Rejected `A`, which `soupbintcp_model` decodes.
#[test]
fn third_party_login_rejected_not_authorised() {
    let dir = scratch("reject");
    let running = tools::serve::start(&test_config(&dir)).expect("the exchange starts");

    type Manual = CltSoupBinTcpProtocolManual<VecPayload, VecPayload>;
    let mut clt = CltSoupBinTcp::<Manual, DevNullCallback<Manual>, 1024>::connect(
        &running.order_entry.to_string(),
        WAIT,
        Duration::from_millis(50),
        DevNullCallback::new_ref(),
        Manual::default(),
        Some("interop/reject"),
    )
    .expect("connects");
    let mut login: CltSoupBinTcpMsg<VecPayload> = LoginRequest::new(
        UserName::from("DEMO1"),
        Password::from("wrong"),
        SessionId::default(),
        SequenceNumber::default(),
    )
    .into();
    assert!(matches!(
        clt.send_busywait_timeout(&mut login, WAIT).unwrap(),
        SendStatus::Completed
    ));
    match clt.recv_busywait_timeout(WAIT).expect("recv") {
        RecvStatus::Completed(Some(SvcSoupBinTcpMsg::LoginRejected(rejected))) => {
            assert!(rejected.is_not_authorized(), "{rejected:?}");
        }
        other => panic!("expected Login Rejected, got {other:?}"),
    }
    drop(clt);
    running.stop().expect("the exchange stops");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The trade of the issue. DEMO2 (our client) rests a sell; DEMO1 logs in
/// through the third-party SoupBinTCP session layer, stays idle past the
/// server's client timeout on its own heartbeats, and enters a slouch-encoded
/// buy that trades. slouch, `ouch_model` (where it can) and our codec all
/// decode DEMO1's replies. Then DEMO2 logs in again through
/// `ouch_connect_nonblocking`, replays its Order Executed from a requested
/// sequence number, and sends an Account Query.
#[test]
fn third_party_clients_trade() {
    let dir = scratch("trade");
    let mut config = test_config(&dir);
    // Short enough that the third-party client must heartbeat to stay on.
    config.server.client_timeout_ms = 1_500;
    config.server.heartbeat_ms = 300;
    let running = tools::serve::start(&config).expect("the exchange starts");

    // DEMO2 rests the sell with our own client, then logs out (its order
    // stays on the book).
    let mut demo2 = our_trader(&running, "DEMO2", 0);
    demo2
        .enter_order(&our_order(1, ouch::Side::Sell, "SELL1"))
        .unwrap();
    let sell_accepted = match our_next(&mut demo2) {
        Outbound::OrderAccepted(accepted) => accepted,
        other => panic!("expected Order Accepted, got {other:?}"),
    };
    assert_eq!(sell_accepted.quantity, QUANTITY);
    assert_eq!(sell_accepted.order_state, ouch::OrderState::Live);
    demo2.logout().unwrap();

    // DEMO1 through the third-party session layer, with its heartbeat
    // thread (`into_split_ref`).
    let (mut recver, mut sender) =
        raw_login(&running, "DEMO1", Duration::from_millis(750)).into_split_ref();
    let mut heartbeats = 0;
    // Idle for twice the server's client timeout: only the third-party
    // Client Heartbeats keep the session on.
    let idle_until = Instant::now() + Duration::from_millis(3_000);
    while Instant::now() < idle_until {
        match recver
            .recv_busywait_timeout(Duration::from_millis(100))
            .expect("recv while idle")
        {
            RecvStatus::Completed(Some(SvcSoupBinTcpMsg::HBeat(_))) => heartbeats += 1,
            RecvStatus::Completed(other) => panic!("unexpected while idle: {other:?}"),
            RecvStatus::WouldBlock => {}
        }
    }
    assert!(
        heartbeats >= 2,
        "Server Heartbeats seen while idle: {heartbeats}"
    );
    assert!(
        recver.is_connected(),
        "the client's own liveness check holds"
    );

    let mut enter = CltSoupBinTcpMsg::udata(VecPayload::new(slouch_enter_order(1, "BUY1")));
    assert!(matches!(
        sender.send_busywait_timeout(&mut enter, WAIT).unwrap(),
        SendStatus::Completed
    ));

    let accepted_bytes = raw_next_sequenced(&mut recver, &mut heartbeats);
    let executed_bytes = raw_next_sequenced(&mut recver, &mut heartbeats);

    // Our codec.
    let (ours_accepted, ours_executed) = match (
        Outbound::decode(&accepted_bytes),
        Outbound::decode(&executed_bytes),
    ) {
        (Ok(Outbound::OrderAccepted(a)), Ok(Outbound::OrderExecuted(e))) => (a, e),
        other => panic!("expected Order Accepted then Order Executed, got {other:?}"),
    };
    assert_eq!(ours_accepted.user_ref_num, 1);
    assert_eq!(ours_accepted.quantity, QUANTITY);
    assert_eq!(ours_accepted.price, ouch::Price(PRICE));
    assert_eq!(ours_accepted.symbol.trimmed(), "ACME");
    assert_eq!(ours_accepted.client_order_id.trimmed(), "BUY1");
    assert_eq!(
        ours_accepted.order_state,
        ouch::OrderState::Dead,
        "filled on entry"
    );
    assert_eq!(ours_executed.user_ref_num, 1);
    assert_eq!(ours_executed.quantity, QUANTITY);
    assert_eq!(ours_executed.price, ouch::Price(PRICE));
    assert_eq!(ours_executed.liquidity_flag.byte(), b'R');

    // slouch.
    match slouch_decode(&accepted_bytes) {
        slouch::msg::OuchResponse::OrderAccepted(a) => {
            assert_eq!(a.user_ref_num().val(), 1);
            assert_eq!(a.side(), slouch::types::Side::Buy);
            assert_eq!(a.quantity(), QUANTITY);
            assert_eq!(a.symbol().to_str(), "ACME");
            assert_eq!(a.price().val(), PRICE as u64);
            assert_eq!(a.time_in_force(), slouch::types::TimeInForce::Day);
            assert_eq!(a.display(), slouch::types::Display::Visible);
            assert_eq!(a.order_ref_num(), ours_accepted.order_reference_number);
            assert_eq!(a.capacity(), slouch::types::Capacity::Agency);
            assert!(!a.intermarket_sweep());
            assert_eq!(a.cross_type(), slouch::types::CrossType::ContinuousMarket);
            assert_eq!(a.order_state(), slouch::types::OrderState::Dead);
            assert_eq!(a.order_token().to_str(), "BUY1");
            assert!(a.options().is_empty());
        }
        other => panic!("slouch: expected Order Accepted, got {other:?}"),
    }
    match slouch_decode(&executed_bytes) {
        slouch::msg::OuchResponse::OrderExecuted(e) => {
            assert_eq!(e.user_ref_num().val(), 1);
            assert_eq!(e.quantity(), QUANTITY);
            assert_eq!(e.price().val(), PRICE as u64);
            assert_eq!(e.liquidity(), slouch::types::Liquidity::Removed);
            assert_eq!(e.match_number(), ours_executed.match_number);
        }
        other => panic!("slouch: expected Order Executed, got {other:?}"),
    }

    // ouch_model decodes the Order Executed (no Symbol in it) ...
    let executed: softstream::OrderExecuted =
        from_slice(&executed_bytes).expect("ouch_model decodes Order Executed");
    assert_eq!(executed.user_ref_number, softstream::UserRefNumber::new(1));
    assert_eq!(executed.quantity, softstream::Quantity::new(QUANTITY));
    assert_eq!(executed.price, softstream::Price::new(PRICE as u64));
    assert_eq!(
        executed.liquidity_flag,
        softstream::LiquidityFlag::removed()
    );
    assert_eq!(
        executed.match_number,
        softstream::MatchNumber::new(ours_executed.match_number)
    );
    // ... but not the Order Accepted: its 9-byte Symbol shifts every later
    // field by one byte and it runs out of bytes for the Appendage Length.
    assert!(
        from_slice::<softstream::OrderAccepted>(&accepted_bytes).is_err(),
        "ouch_model decoded our Order Accepted: has its Symbol been fixed?"
    );

    drop(sender);
    drop(recver);

    // DEMO2 again, through ouch_connect_nonblocking, asking for its stream
    // from message 2 on (1 is the Order Accepted of the sell, which
    // ouch_model cannot decode): the Order Executed of the resting side.
    let (username, password) = credentials("DEMO2");
    let protocol = CltOuchProtocolAuto::new(
        username,
        password,
        SessionId::default(),
        SequenceNumber::from(2u64),
        WAIT,
        Duration::from_secs(10),
        Duration::from_secs(10),
    );
    let mut demo2 = CltOuch::connect(
        &running.order_entry.to_string(),
        WAIT,
        Duration::from_millis(50),
        DevNullCallback::new_ref(),
        protocol,
        Some("interop/ouch_connect"),
    )
    .expect("ouch_connect_nonblocking logs in");
    let replayed = loop {
        match demo2_recv(&mut demo2) {
            SvcSoupBinTcpMsg::HBeat(_) => continue,
            SvcSoupBinTcpMsg::SPayload(SPayload { payload, .. }) => break payload,
            other => panic!("expected Sequenced Data, got {other:?}"),
        }
    };
    match replayed {
        SvcOuchPayload::OrderExecuted(e) => {
            assert_eq!(e.user_ref_number, softstream::UserRefNumber::new(1));
            assert_eq!(e.quantity, softstream::Quantity::new(QUANTITY));
            assert_eq!(e.price, softstream::Price::new(PRICE as u64));
            assert_eq!(e.liquidity_flag, softstream::LiquidityFlag::added());
            assert_eq!(
                e.match_number,
                softstream::MatchNumber::new(ours_executed.match_number),
                "both sides carry the same match number"
            );
        }
        other => panic!("ouch_model: expected Order Executed, got {other:?}"),
    }
    let mut query: CltSoupBinTcpMsg<softstream::CltOuchPayload> = CltSoupBinTcpMsg::udata(
        softstream::CltOuchPayload::AccountQueryRequest(softstream::AccountQueryRequest::default()),
    );
    assert!(matches!(
        demo2.send_busywait_timeout(&mut query, WAIT).unwrap(),
        SendStatus::Completed
    ));
    loop {
        match demo2_recv(&mut demo2) {
            SvcSoupBinTcpMsg::HBeat(_) => continue,
            SvcSoupBinTcpMsg::SPayload(SPayload {
                payload: SvcOuchPayload::AccountQueryResponse(response),
                ..
            }) => {
                assert_eq!(
                    response.next_user_ref_number,
                    softstream::UserRefNumber::new(2)
                );
                break;
            }
            other => panic!("expected Account Query Response, got {other:?}"),
        }
    }
    drop(demo2);
    running.stop().expect("the exchange stops");
    let _ = std::fs::remove_dir_all(&dir);
}

fn demo2_recv<R>(clt: &mut R) -> SvcSoupBinTcpMsg<SvcOuchPayload>
where
    R: RecvNonBlocking<SvcSoupBinTcpMsg<SvcOuchPayload>>,
{
    match clt.recv_busywait_timeout(WAIT).expect("recv") {
        RecvStatus::Completed(Some(msg)) => msg,
        other => panic!("expected a packet, got {other:?}"),
    }
}
