//! Market data end to end: a running exchange (`tools::serve::start`)
//! publishes ITCH 5.0 over MoldUDP64 multicast on feeds A and B while two
//! OUCH clients trade. Two subscribers listen over the network:
//!
//! - an early one on feed A only that starts from sequence 1 (re-requesting
//!   what was published before it joined) and drops a seeded 5% of the
//!   packets, so it must detect gaps and re-request;
//! - a late one on feeds A and B that joins midway from a snapshot and
//!   drops 5% of each feed's packets (different ones), so it must
//!   arbitrate.
//!
//! Halfway the exchange is stopped cleanly (End of Session) and restarted:
//! it continues the trading day under the next session name, which both
//! subscribers must follow. After the trading both must hold exactly the
//! engine's books (rebuilt by replaying the journal after the stop), order
//! by order.
//!
//! Needs multicast: compiled to run when `NETNS_RUN=1` (inside
//! `.ci/netns-run`, as `.ci/run` does) or `MD_MULTICAST=1` (a
//! host whose loopback carries multicast), see `build.rs`; otherwise it is
//! ignored, and the harness reports it as such.

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gateway::client::{LoginParams, OuchClient};
use gateway::ouch::{self, Outbound};
use marketdata::subscriber::{Start, Subscriber, SubscriberConfig};
use tests::{SimulationRng, compare_books};
use tools::config::{Config, DurabilityName};

const WAIT: Duration = Duration::from_secs(10);

fn test_config(dir: &std::path::Path, port: u16) -> Config {
    let mut config = Config::embedded();
    config.data_dir = dir.to_owned();
    config.journal.durability = DurabilityName::Memory;
    config.journal.segment_bytes = 4 << 20;
    config.journal.prefault = false;
    config.server.order_entry = "127.0.0.1:0".to_owned();
    config.server.funding = "127.0.0.1:0".to_owned();
    config.server.engine_core = None;
    config.server.idle = tools::config::IdleName::SpinPark;
    config.marketdata.feed_a = format!("239.255.42.1:{port}");
    config.marketdata.feed_b = format!("239.255.42.2:{port}");
    config.marketdata.rerequest = "127.0.0.1:0".to_owned();
    config.marketdata.snapshot = "127.0.0.1:0".to_owned();
    config
}

/// A subscriber polled on its own thread until `stop`; gives it back.
fn run_subscriber(config: SubscriberConfig, stop: Arc<AtomicBool>) -> JoinHandle<Subscriber> {
    std::thread::spawn(move || {
        let mut subscriber = Subscriber::join(config).expect("the subscriber joins");
        while !stop.load(Ordering::Acquire) {
            subscriber
                .poll(Duration::from_millis(5), &mut |_| {})
                .expect("the subscriber polls");
        }
        subscriber
    })
}

fn order(user_ref_num: u32, rng: &mut SimulationRng, symbol: &str) -> ouch::EnterOrder {
    ouch::EnterOrder {
        user_ref_num,
        side: if rng.chance(50) {
            ouch::Side::Buy
        } else {
            ouch::Side::Sell
        },
        quantity: 1 + rng.below(40) as u32,
        symbol: ouch::Symbol::new(symbol).unwrap(),
        // 99.00 ..= 101.00 (ACME) or 49.50 ..= 50.50 (GLOBEX), in cents.
        price: ouch::Price(if symbol == "ACME" {
            990_000 + rng.below(201) as i64 * 100
        } else {
            495_000 + rng.below(101) as i64 * 100
        }),
        time_in_force: ouch::TimeInForce::Day,
        display: ouch::Display::Visible,
        capacity: ouch::Capacity::Agency,
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        cross_type: ouch::CrossType::ContinuousMarket,
        client_order_id: ouch::ClOrdId::new(&format!("E2E{user_ref_num}")).unwrap(),
        options: ouch::Options::NONE,
    }
}

/// One trader: sends `batch` orders (and cancels of some earlier ones),
/// then reads until every order has its Accepted or Rejected.
struct Trader {
    client: OuchClient,
    next_ref: u32,
    sent: Vec<u32>,
    answered: usize,
}

impl Trader {
    fn login(running: &tools::serve::Running, login: &str) -> Trader {
        let params = LoginParams::new(login, &login.to_lowercase());
        let (mut client, _) = OuchClient::connect(running.order_entry, &params).expect("login");
        let next_ref = client.next_user_ref_num(WAIT).expect("the next UserRefNum");
        Trader {
            client,
            next_ref,
            sent: Vec::new(),
            answered: 0,
        }
    }

    fn send_batch(&mut self, rng: &mut SimulationRng, batch: usize) {
        for _ in 0..batch {
            if !self.sent.is_empty() && rng.chance(20) {
                let target = self.sent[rng.below(self.sent.len() as u64) as usize];
                let cancel = ouch::Inbound::CancelOrder(ouch::CancelOrder {
                    user_ref_num: target,
                    quantity: if rng.chance(50) { 0 } else { 1 },
                    options: ouch::Options::NONE,
                });
                self.client.queue(&cancel).unwrap();
                continue;
            }
            let symbol = if rng.chance(70) { "ACME" } else { "GLOBEX" };
            let enter = ouch::Inbound::EnterOrder(order(self.next_ref, rng, symbol));
            self.client.queue(&enter).unwrap();
            self.sent.push(self.next_ref);
            self.next_ref += 1;
        }
        self.client.flush().unwrap();
    }

    fn await_answers(&mut self) {
        let deadline = Instant::now() + WAIT;
        while self.answered < self.sent.len() {
            assert!(Instant::now() < deadline, "orders were not all answered");
            let Some((_, message)) = self
                .client
                .next_message(Duration::from_millis(100))
                .expect("a message")
            else {
                continue;
            };
            if matches!(
                message,
                Outbound::OrderAccepted(_) | Outbound::OrderRejected(_)
            ) {
                self.answered += 1;
            }
        }
    }
}

#[test]
#[cfg_attr(
    not(multicast),
    ignore = "needs multicast: run inside .ci/netns-run (NETNS_RUN=1), as .ci/run does, or set MD_MULTICAST=1"
)]
fn subscribers_rebuild_the_books_with_drops_and_a_late_start() {
    let dir = std::env::temp_dir().join(format!("md-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A port of its own, so parallel runs do not hear each other; fixed
    // re-request and snapshot ports, so the subscribers find the exchange
    // again after its restart.
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let mut config = test_config(&dir, port);
    let [rerequest, snapshot] = free_ports();
    config.marketdata.rerequest = format!("127.0.0.1:{rerequest}");
    config.marketdata.snapshot = format!("127.0.0.1:{snapshot}");
    let subscriber_config = |start, seed, both: bool| SubscriberConfig {
        feed_a: config.marketdata.feed_a.parse::<SocketAddrV4>().unwrap(),
        feed_b: both.then(|| config.marketdata.feed_b.parse::<SocketAddrV4>().unwrap()),
        rerequest: config.marketdata.rerequest.parse().unwrap(),
        snapshot: config.marketdata.snapshot.parse().unwrap(),
        start,
        drop_share: 0.05,
        drop_seed: seed,
        ..SubscriberConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut rng = SimulationRng::new(42);

    // Day 0, first run: the early subscriber from sequence 1, the late one
    // from a snapshot halfway.
    let running = tools::serve::start(&config).expect("the exchange starts");
    let early = run_subscriber(
        subscriber_config(Start::Beginning, 7, false),
        Arc::clone(&stop),
    );
    let late = trade(&running, &mut rng, 60, || {
        run_subscriber(
            subscriber_config(Start::Snapshot, 11, true),
            Arc::clone(&stop),
        )
    });
    // A clean stop sends End of Session; the restarted exchange continues
    // the day under a new session name, which both subscribers follow.
    running.stop().expect("a clean stop");
    let running = tools::serve::start(&config).expect("the exchange restarts");
    trade(&running, &mut rng, 60, || ());
    // Past a heartbeat: the subscribers learn of any loss at the tail.
    std::thread::sleep(Duration::from_millis(2_500));
    stop.store(true, Ordering::Release);
    let early = early.join().expect("the early subscriber");
    let late = late.join().expect("the late subscriber");
    running.stop().expect("a clean stop");

    // The engine's books: the journal replayed.
    let (sequencer, _) = tools::serve::boot(&config).expect("the journal replays");
    let engine = sequencer.engine();
    let (instruments, orders) = compare_books(engine, early.books(), "early subscriber")
        .unwrap_or_else(|error| panic!("{error}\nearly subscriber stats: {:?}", early.stats()));
    compare_books(engine, late.books(), "late subscriber")
        .unwrap_or_else(|error| panic!("{error}\nlate subscriber stats: {:?}", late.stats()));
    sequencer.close().unwrap();
    let (early_stats, late_stats) = (early.stats(), late.stats());
    println!("early: {early_stats:?}\nlate: {late_stats:?}\n{instruments} books, {orders} orders");
    assert!(instruments >= 2 && orders > 20, "too little was compared");
    assert!(
        early_stats.packets_dropped > 0 && early_stats.gaps > 0,
        "{early_stats:?}"
    );
    assert!(early_stats.messages_recovered > 0, "{early_stats:?}");
    assert!(early_stats.messages > 1_000, "{early_stats:?}");
    assert!(late_stats.duplicates > 0, "A and B: {late_stats:?}");
    assert!(late_stats.snapshots >= 1, "{late_stats:?}");
    // Both moved to the restarted exchange's session (generation `A`).
    let second = early.session().expect("a session");
    assert_eq!(late.session(), Some(second));
    assert_eq!(second.as_str().as_bytes()[6], b'A', "{}", second.as_str());
    assert!(early.is_caught_up() && late.is_caught_up());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two traders send `batches` batches of 8 orders (and cancels) each;
/// halfway, `halfway` is called.
fn trade<T>(
    running: &tools::serve::Running,
    rng: &mut SimulationRng,
    batches: usize,
    halfway: impl FnOnce() -> T,
) -> T {
    let mut traders = [
        Trader::login(running, "DEMO1"),
        Trader::login(running, "DEMO2"),
    ];
    let mut halfway = Some(halfway);
    let mut called = None;
    for batch in 0..batches {
        for trader in &mut traders {
            trader.send_batch(rng, 8);
        }
        for trader in &mut traders {
            trader.await_answers();
        }
        if batch == batches / 2 {
            called = halfway.take().map(|f| f());
        }
    }
    for trader in traders {
        let _ = trader.client.logout();
    }
    called.expect("halfway was reached")
}

fn free_ports() -> [u16; 2] {
    let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    [
        first.local_addr().unwrap().port(),
        second.local_addr().unwrap().port(),
    ]
}
