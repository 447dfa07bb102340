//! A whole exchange on loopback for the server tests: the embedded default
//! configuration with its data in a scratch directory and its ports chosen
//! by the system.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gateway::client::{FundingClient, LoginParams, OuchClient, Received};
use gateway::ouch::{self, Inbound, Outbound};
use tools::config::{Config, DurabilityName};
use tools::serve::Running;

pub const WAIT: Duration = Duration::from_secs(5);

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("server-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The default configuration on `dir`, listening on free ports, journaling
/// to memory in small segments (fast to create in tests).
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::embedded();
    config.data_dir = dir.to_owned();
    config.journal.durability = DurabilityName::Memory;
    config.journal.segment_bytes = 4 << 20;
    config.journal.prefault = false;
    config.server.order_entry = "127.0.0.1:0".to_owned();
    config.server.funding = "127.0.0.1:0".to_owned();
    config.marketdata.rerequest = "127.0.0.1:0".to_owned();
    config.marketdata.snapshot = "127.0.0.1:0".to_owned();
    // Two test threads share two cores: spinning on a pinned core would
    // starve them.
    config.server.engine_core = None;
    config.server.idle = tools::config::IdleName::SpinPark;
    config
}

pub fn start(config: &Config) -> Running {
    tools::serve::start(config).expect("the exchange starts")
}

pub fn trader(running: &Running, login: &str, sequence: u64) -> OuchClient {
    let mut params = LoginParams::new(login, &login.to_lowercase());
    params.sequence = sequence;
    OuchClient::connect(running.order_entry, &params)
        .expect("login")
        .0
}

pub fn operator(running: &Running) -> FundingClient {
    FundingClient::connect(running.funding, &LoginParams::new("OPER1", "oper1"))
        .expect("operator login")
        .0
}

pub fn symbol(text: &str) -> ouch::Symbol {
    ouch::Symbol::new(text).expect("a symbol")
}

/// A Day limit order with no options.
pub fn order(
    user_ref_num: u32,
    side: ouch::Side,
    quantity: u32,
    symbol_text: &str,
    price: i64,
) -> Inbound {
    Inbound::EnterOrder(ouch::EnterOrder {
        user_ref_num,
        side,
        quantity,
        symbol: symbol(symbol_text),
        price: ouch::Price(price),
        time_in_force: ouch::TimeInForce::Day,
        display: ouch::Display::Visible,
        capacity: ouch::Capacity::Agency,
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        cross_type: ouch::CrossType::ContinuousMarket,
        client_order_id: ouch::ClOrdId::new(&format!("C{user_ref_num}")).expect("a ClOrdID"),
        options: ouch::Options::NONE,
    })
}

/// The next sequenced message, or a panic after [`WAIT`].
pub fn next(client: &mut OuchClient) -> (u64, Outbound) {
    client
        .next_message(WAIT)
        .expect("a message")
        .expect("a message in time")
}

/// Every message that arrives within `quiet` of the previous one.
pub fn drain(client: &mut OuchClient, quiet: Duration) -> Vec<(u64, Outbound)> {
    let mut messages = Vec::new();
    while let Some(message) = client.next_message(quiet).expect("a message") {
        messages.push(message);
    }
    messages
}

/// A small deterministic generator (no dependency for a test's dice).
#[derive(Debug, Clone)]
pub struct Dice(pub u64);

impl Dice {
    /// A number below `below`.
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// A stream is read to its end when nothing more comes for this long.
pub const QUIET: Duration = Duration::from_millis(500);

/// Every Sequenced Data payload that arrives within `QUIET` of the last.
pub fn raw_stream(client: &mut OuchClient) -> Vec<(u64, Vec<u8>)> {
    let mut messages = Vec::new();
    while let Some(received) = client.soup().recv(QUIET).expect("a message") {
        if let Received::Sequenced { sequence, payload } = received {
            messages.push((sequence, payload));
        }
    }
    messages
}
