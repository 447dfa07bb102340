//! The exchange's configuration: the embedded default (`tools/default.toml`)
//! or a file given with `--config`, and its translation into the engine's
//! capacities and the genesis commands (assets, instruments, accounts and
//! their first deposits) that every fresh journal starts with.
//!
//! Human-facing amounts are decimal strings in whole units; they are turned
//! into the engine's integer units exactly (no floating point), and a value
//! that cannot be represented exactly is a configuration error.
//!
//! Logins (`[[logins]]`) carry Argon2id password hashes in the PHC string
//! format, never plain text; `exchange config hash-password` makes one (see
//! `gateway::auth`).

use engine::{
    AccountId, AdminCommand, AssetId, Command, Deposit, EngineConfig, InstrumentId, InstrumentSpec,
    Price, Quantity, Symbol, TransferId,
};
use gateway::auth::{AuthError, Entitlement, Login, Logins};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The embedded default configuration, as text.
pub const DEFAULT_CONFIG: &str = include_str!("../default.toml");

/// A configuration that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("{0}")]
    Engine(#[from] engine::ConfigError),
    #[error("{0}")]
    Login(#[from] AuthError),
    #[error("{what}: {problem}")]
    Invalid { what: String, problem: String },
}

fn invalid(what: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        what: what.into(),
        problem: problem.into(),
    }
}

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where journals and snapshots are kept.
    pub data_dir: PathBuf,
    pub engine: EngineSection,
    pub journal: JournalSection,
    pub assets: Vec<AssetConfig>,
    pub instruments: Vec<InstrumentConfig>,
    pub accounts: Vec<AccountConfig>,
    /// Who may log in, with which rights, on which account. A file without
    /// any has no logins (nobody can open a session).
    #[serde(default)]
    pub logins: Vec<LoginConfig>,
    /// The listeners, sessions and threads of `exchange serve`.
    #[serde(default)]
    pub server: ServerSection,
    /// The market-data feed of `exchange serve`.
    #[serde(default)]
    pub marketdata: MarketDataSection,
    /// Snapshots taken while `exchange serve` runs.
    #[serde(default)]
    pub snapshots: SnapshotsSection,
}

/// The snapshot agent of `exchange serve`: a shadow engine fed the durable
/// journal, off the engine thread, whose state is written as a snapshot
/// every so often; a restart begins from the newest one. Every field has a
/// default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotsSection {
    /// Whether `exchange serve` runs the snapshot agent.
    pub enabled: bool,
    /// A snapshot after this many commands since the last one.
    pub every_commands: u64,
    /// Also a snapshot after this many seconds, if anything was applied
    /// since the last one (0: by count only).
    pub interval_s: u64,
    /// The newest snapshot files kept (at least 1).
    pub kept: usize,
    /// The most commands one turn of the agent applies (at least 1): on
    /// the engine thread, what a command arriving meanwhile may wait for.
    pub records_per_pass: usize,
    /// What a start that resumed from a snapshot does with the journal
    /// segments wholly before it (less `retention_window_commands`) and
    /// with the stores of earlier trading days.
    pub retention: RetentionName,
    /// Commands kept in the journal before the snapshot a start resumed
    /// from, beyond what it needs.
    pub retention_window_commands: u64,
}

/// What retention does with what a snapshot made unnecessary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionName {
    /// Nothing: the journal keeps every command from sequence 1.
    Keep,
    /// Moved under `data_dir/archive/` (journal segments, earlier days'
    /// streams and market-data logs).
    Archive,
    /// Deleted.
    Remove,
}

impl Default for SnapshotsSection {
    fn default() -> SnapshotsSection {
        SnapshotsSection {
            enabled: true,
            every_commands: 1_000_000,
            interval_s: 0,
            kept: 3,
            records_per_pass: 16,
            retention: RetentionName::Keep,
            retention_window_commands: 1_000_000,
        }
    }
}

impl SnapshotsSection {
    /// The agent's options; refuses values it cannot run with.
    pub fn options(&self) -> Result<engine::SnapshotOptions, ConfigError> {
        if self.every_commands == 0 {
            return Err(invalid("snapshots.every_commands", "must be at least 1"));
        }
        if self.kept == 0 {
            return Err(invalid("snapshots.kept", "must be at least 1"));
        }
        if self.records_per_pass == 0 {
            return Err(invalid("snapshots.records_per_pass", "must be at least 1"));
        }
        Ok(engine::SnapshotOptions {
            snapshot_every_commands: self.every_commands,
            snapshot_interval: (self.interval_s > 0)
                .then(|| std::time::Duration::from_secs(self.interval_s)),
            snapshots_kept: self.kept,
            records_per_pass_max: self.records_per_pass,
        })
    }
}

/// The market-data publisher: ITCH 5.0 over MoldUDP64 multicast, the
/// re-request server and the snapshot service. Every field has a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketDataSection {
    /// Whether `exchange serve` publishes market data at all.
    pub enabled: bool,
    /// Feed A: multicast group and port.
    pub feed_a: String,
    /// Feed B (the same packets, for arbitration); empty for none.
    pub feed_b: String,
    /// The interface multicast is sent on (an IPv4 address).
    pub interface: String,
    /// Multicast TTL (0: this host only).
    pub ttl: u32,
    /// The most bytes in a MoldUDP64 packet (1472 fits a 1500-byte MTU).
    pub payload_max: usize,
    /// A heartbeat packet after this much silence.
    pub heartbeat_ms: u64,
    /// The MoldUDP64 re-request server (UDP).
    pub rerequest: String,
    /// The most messages one re-request is answered with.
    pub rerequest_messages_max: u16,
    /// Messages per second one requester may be re-sent.
    pub rerequest_messages_per_second: u64,
    /// The snapshot service (SoupBinTCP over TCP).
    pub snapshot: String,
    /// Snapshot connections at once.
    pub snapshot_sessions_max: u32,
}

impl Default for MarketDataSection {
    fn default() -> MarketDataSection {
        MarketDataSection {
            enabled: true,
            feed_a: "239.255.42.1:26400".to_owned(),
            feed_b: String::new(),
            interface: "127.0.0.1".to_owned(),
            ttl: 0,
            payload_max: 1472,
            heartbeat_ms: 1_000,
            rerequest: "127.0.0.1:9003".to_owned(),
            rerequest_messages_max: 1024,
            rerequest_messages_per_second: 100_000,
            snapshot: "127.0.0.1:9004".to_owned(),
            snapshot_sessions_max: 16,
        }
    }
}

/// The listeners, session limits and threads of `exchange serve`. Every
/// field has a default, so the section may be left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// OUCH 5.0 over SoupBinTCP 4.0.
    pub order_entry: String,
    /// The funding messages over SoupBinTCP 4.0 (logins with `fund`).
    pub funding: String,
    /// Sessions open at once, over both ports (connections not yet logged
    /// in included).
    pub sessions_max: u32,
    /// Each session's sustained message rate; a session past it plus the
    /// burst is disconnected.
    pub messages_per_second: u32,
    /// Messages a session may send at once above the sustained rate.
    pub messages_burst: u32,
    /// Bytes queued for a session that does not read; past it the session
    /// is disconnected (it may log in again and replay).
    pub outbound_buffer_bytes: usize,
    /// The server sends a heartbeat after this much silence.
    pub heartbeat_ms: u64,
    /// A client silent this long is disconnected.
    pub client_timeout_ms: u64,
    /// The core the engine thread is pinned to (default: the last core the
    /// process may use; with a single core, not pinned). The engine agent
    /// always has a thread of its own: it waits for its consumers when an
    /// output ring is full, so it must not share their thread.
    pub engine_core: Option<usize>,
    /// What the engine thread does when its input is empty: `busy-spin`,
    /// `spin-yield`, `spin-park` or `park`.
    pub idle: IdleName,
    /// The agents run in the engine thread's idle time: one bounded turn
    /// after each pass of the engine that found no command. Only
    /// `snapshot` and `store-writer` may be here (the others consume the
    /// engine's output rings, and the engine waits for those consumers).
    /// Default: `["snapshot", "store-writer"]`, which puts the shadow's
    /// work and the session streams' file writes on the cycles the
    /// spinning engine leaves, not on the cores order entry and the
    /// clients need.
    pub engine_agents: Vec<IoAgentName>,
    /// The threads of the I/O agents (`gateway`: order entry and funding;
    /// `marketdata`; `snapshot` and `store-writer` unless on the engine
    /// thread), each running the agents it names in turn. Every agent is
    /// on exactly one thread, except `store-writer`, which may be on none:
    /// the gateway's thread then writes the streams' files itself.
    /// Default: one thread with the gateway and market data.
    pub io_threads: Vec<IoThreadSection>,
    /// Slots of each ring between the threads (a power of two).
    pub ring_capacity: usize,
    /// Memory each session stream (a login's port, for the trading day)
    /// may hold: its store's write buffer and recent-message cache. The
    /// streams hold at most (logins × 2) × this; older messages are read
    /// from `data_dir/streams` (see docs/store.md).
    pub stream_cache_bytes_max: usize,
}

impl Default for ServerSection {
    fn default() -> ServerSection {
        ServerSection {
            order_entry: "127.0.0.1:9001".to_owned(),
            funding: "127.0.0.1:9002".to_owned(),
            sessions_max: 64,
            messages_per_second: 200_000,
            messages_burst: 50_000,
            outbound_buffer_bytes: 16 << 20,
            heartbeat_ms: 1_000,
            client_timeout_ms: 15_000,
            engine_core: None,
            idle: IdleName::SpinYield,
            engine_agents: vec![IoAgentName::Snapshot, IoAgentName::StoreWriter],
            io_threads: vec![IoThreadSection::default()],
            ring_capacity: 65_536,
            stream_cache_bytes_max: 64 << 10,
        }
    }
}

/// The idle strategies of a thread by name (see `engine::agent::IdleStrategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdleName {
    /// Spin: the core always busy.
    BusySpin,
    /// Spin a while, then yield the core between passes.
    SpinYield,
    /// Spin, yield, then sleep until woken.
    SpinPark,
    /// Sleep at once until woken (for I/O: in `epoll` on the agents'
    /// sockets; the engine wakes the thread when it publishes).
    Park,
}

/// The I/O agents by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IoAgentName {
    /// Order entry and funding (both SoupBinTCP ports).
    Gateway,
    /// The market-data publisher, re-request server and snapshot service.
    Marketdata,
    /// The snapshot agent (see `[snapshots]`).
    Snapshot,
    /// Writes the session streams' full buffers to their files
    /// (write-behind: `journal::StoreWriter`), so the gateway's thread
    /// only copies messages into memory.
    StoreWriter,
}

impl std::fmt::Display for IoAgentName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IoAgentName::Gateway => "gateway",
            IoAgentName::Marketdata => "marketdata",
            IoAgentName::Snapshot => "snapshot",
            IoAgentName::StoreWriter => "store-writer",
        })
    }
}

/// One thread of I/O agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IoThreadSection {
    /// The agents the thread runs, each pass one bounded turn of each.
    pub agents: Vec<IoAgentName>,
    /// The core the thread is pinned to. Default: the thread that runs
    /// the gateway takes the last core the process may use other than the
    /// engine's (when there are two or more); the others are not pinned.
    pub core: Option<usize>,
    /// What the thread does when no agent had work.
    pub idle: IdleName,
    /// The longest sleep, in microseconds (`park` and `spin-park`):
    /// timers (heartbeats, timeouts) are looked at least this often.
    pub park_us: u64,
    /// The thread's nice value, -20..=19 (0: the default priority, every
    /// thread's by default). A niced background agent's thread gives a busy
    /// machine's cores to order entry first, and falls behind meanwhile.
    pub nice: i32,
}

impl Default for IoThreadSection {
    fn default() -> IoThreadSection {
        IoThreadSection {
            agents: vec![IoAgentName::Gateway, IoAgentName::Marketdata],
            core: None,
            idle: IdleName::Park,
            park_us: 2_000,
            nice: 0,
        }
    }
}

impl ServerSection {
    /// Whether `agent` runs in the engine thread's idle time.
    pub fn on_engine_thread(&self, agent: IoAgentName) -> bool {
        self.engine_agents.contains(&agent)
    }

    /// Whether `agent` runs on the engine thread or an I/O thread.
    pub fn placed(&self, agent: IoAgentName) -> bool {
        self.on_engine_thread(agent)
            || self
                .io_threads
                .iter()
                .any(|thread| thread.agents.contains(&agent))
    }

    /// The I/O threads to start: each agent that runs (`runs` says which)
    /// on exactly one thread, or in the engine's idle time; a thread left
    /// with no agent is not started.
    pub fn io_thread_plan(
        &self,
        runs: impl Fn(IoAgentName) -> bool,
    ) -> Result<Vec<IoThreadSection>, ConfigError> {
        let mut seen = Vec::new();
        for agent in &self.engine_agents {
            if !matches!(agent, IoAgentName::Snapshot | IoAgentName::StoreWriter) {
                return Err(invalid(
                    "server.engine_agents",
                    format!(
                        "{agent} cannot run on the engine thread (it consumes the engine's \
                         output; only snapshot and store-writer can)"
                    ),
                ));
            }
            if seen.contains(agent) {
                return Err(invalid(
                    "server.engine_agents",
                    format!("{agent} is named twice"),
                ));
            }
            seen.push(*agent);
        }
        let mut plan = Vec::new();
        for (index, thread) in self.io_threads.iter().enumerate() {
            let what = format!("server.io_threads[{index}]");
            if thread.park_us == 0 {
                return Err(invalid(what, "park_us must be at least 1"));
            }
            if !(-20..=19).contains(&thread.nice) {
                return Err(invalid(what, "nice must be within -20..=19"));
            }
            let mut kept = thread.clone();
            kept.agents.clear();
            for agent in &thread.agents {
                if self.engine_agents.contains(agent) {
                    return Err(invalid(
                        what,
                        format!(
                            "{agent} is also in server.engine_agents (the engine thread's idle \
                             time, its default): name it in one of them (engine_agents = [] \
                             to give it this thread)"
                        ),
                    ));
                }
                if seen.contains(agent) {
                    return Err(invalid(what, format!("{agent} is on two threads")));
                }
                seen.push(*agent);
                if runs(*agent) {
                    kept.agents.push(*agent);
                }
            }
            if !kept.agents.is_empty() {
                plan.push(kept);
            }
        }
        for agent in [
            IoAgentName::Gateway,
            IoAgentName::Marketdata,
            IoAgentName::Snapshot,
        ] {
            if runs(agent) && !seen.contains(&agent) {
                return Err(invalid(
                    "server.io_threads",
                    format!("{agent} is on no thread"),
                ));
            }
        }
        Ok(plan)
    }
}

/// The engine's capacities (see `engine::EngineConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    pub accounts_max: u32,
    pub assets_max: u16,
    pub instruments_max: u32,
    pub orders_max: u32,
    pub price_levels_max: u32,
    pub transfer_records_max: u32,
    pub fee_account: u32,
}

/// How the journal (under `data_dir/journal`) is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalSection {
    /// `memory` (durable once in the mapped pages: survives a crash of the
    /// process) or `fsync` (synced to the device in groups by the flusher).
    pub durability: DurabilityName,
    /// Under `fsync`, the longest the flusher waits before looking for new
    /// records when idle.
    pub flush_delay_us_max: u64,
    /// The size of each preallocated segment file.
    pub segment_bytes: usize,
    /// Touch every page of a new segment before use (no page faults on
    /// append).
    pub prefault: bool,
    /// Where the next segment is made: `engine` (default: a page at a time
    /// in the engine thread's idle passes) or `thread` (a helper thread off
    /// the engine's core).
    #[serde(default)]
    pub segment_preparation: PreparationName,
}

/// Where the journal's next segment is made, by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PreparationName {
    /// In the engine thread's idle passes ([`journal::Preparation::Steps`]).
    #[default]
    Engine,
    /// On a helper thread ([`journal::Preparation::Thread`]).
    Thread,
}

/// The journal's durability policies by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DurabilityName {
    Memory,
    Fsync,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    pub id: u16,
    pub symbol: String,
    /// Decimal places of the minor unit.
    pub scale: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstrumentConfig {
    pub id: u32,
    pub symbol: String,
    /// Symbol of the base asset.
    pub base: String,
    /// Symbol of the quote asset.
    pub quote: String,
    /// One unit of quantity, in whole base units (e.g. "1", "0.001").
    pub quantity_unit: String,
    /// In whole quote units per whole base unit.
    pub tick_size: String,
    /// In units of quantity.
    pub lot_size: u64,
    pub min_quantity: u64,
    pub max_quantity: u64,
    /// In whole quote units per whole base unit.
    pub reference_price: String,
    pub band_bps: u32,
    pub maker_fee_bps: u16,
    pub taker_fee_bps: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub id: u32,
    pub name: String,
    /// Asset symbol → whole units deposited at first start.
    #[serde(default)]
    pub funding: BTreeMap<String, String>,
}

/// A login (see `gateway::auth::Login`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// The SoupBinTCP username: 1 to 6 printable ASCII characters, no
    /// spaces; unique (ignoring ASCII case).
    pub name: String,
    /// The account the login acts on: one of `accounts`, required with the
    /// `trade` entitlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<u32>,
    /// `trade` (order entry on its account) and/or `fund` (the funding port,
    /// the operator).
    pub entitlements: Vec<EntitlementName>,
    /// An Argon2id PHC string, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`, as
    /// printed by `exchange config hash-password`.
    pub password_hash: String,
    /// What happens when this login's order would trade with an order of the
    /// same account (OUCH 5.0 has no field for it): `none`, `cancel-newest`,
    /// `cancel-oldest`, `cancel-both` or `decrement-and-cancel`.
    #[serde(default)]
    pub self_trade: SelfTradeName,
}

/// Self-trade prevention by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelfTradeName {
    None,
    #[default]
    CancelNewest,
    CancelOldest,
    CancelBoth,
    DecrementAndCancel,
}

impl From<SelfTradeName> for engine::SelfTradePrevention {
    fn from(name: SelfTradeName) -> engine::SelfTradePrevention {
        use engine::SelfTradePrevention as Stp;
        match name {
            SelfTradeName::None => Stp::None,
            SelfTradeName::CancelNewest => Stp::CancelNewest,
            SelfTradeName::CancelOldest => Stp::CancelOldest,
            SelfTradeName::CancelBoth => Stp::CancelBoth,
            SelfTradeName::DecrementAndCancel => Stp::DecrementAndCancel,
        }
    }
}

/// Login entitlements by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntitlementName {
    Trade,
    Fund,
}

impl From<EntitlementName> for Entitlement {
    fn from(name: EntitlementName) -> Entitlement {
        match name {
            EntitlementName::Trade => Entitlement::Trade,
            EntitlementName::Fund => Entitlement::Fund,
        }
    }
}

impl Config {
    /// The embedded default.
    pub fn embedded() -> Config {
        // Invariant: the embedded file is checked by a test.
        Config::parse(DEFAULT_CONFIG).expect("the embedded configuration parses")
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// The file at `path`, or the embedded default without one.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Ok(Config::embedded()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::parse(&text)
            }
        }
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        // Invariant: every field is a plain string, integer, table or array.
        toml::to_string(self).expect("the configuration serialises")
    }

    pub fn engine_config(&self) -> Result<EngineConfig, ConfigError> {
        let section = &self.engine;
        let config = EngineConfig {
            accounts_max: section.accounts_max,
            assets_max: section.assets_max,
            instruments_max: section.instruments_max,
            orders_max: section.orders_max,
            price_levels_max: section.price_levels_max,
            transfer_records_max: section.transfer_records_max,
            fee_account: AccountId(section.fee_account),
        };
        config.validate()?;
        Ok(config)
    }

    /// Where the journal and its snapshots live.
    /// Where the market-data message logs are kept (a directory per
    /// MoldUDP64 session).
    pub fn marketdata_dir(&self) -> PathBuf {
        self.data_dir.join("marketdata")
    }

    /// The session streams' stores: `streams/<session name>/<login>/<port>/`.
    pub fn streams_dir(&self) -> PathBuf {
        self.data_dir.join("streams")
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.data_dir.join("journal")
    }

    /// The journal's options. Records are commands, each with an optional
    /// origin: at most `engine::codec::RECORD_BYTES_MAX` bytes.
    pub fn journal_options(&self) -> journal::JournalOptions {
        let section = &self.journal;
        journal::JournalOptions {
            segment_bytes: section.segment_bytes,
            record_bytes_max: engine::codec::RECORD_BYTES_MAX,
            durability: match section.durability {
                DurabilityName::Memory => journal::Durability::Memory,
                DurabilityName::Fsync => journal::Durability::Fsync {
                    flush_delay_us_max: section.flush_delay_us_max,
                },
            },
            prefault: section.prefault,
            preparation: match section.segment_preparation {
                PreparationName::Engine => journal::Preparation::Steps,
                PreparationName::Thread => journal::Preparation::Thread,
            },
        }
    }

    /// The login table, checked: valid and unique names, an account for
    /// every trading login and only configured accounts, usable password
    /// hashes.
    pub fn logins(&self) -> Result<Logins, ConfigError> {
        let mut logins = Vec::with_capacity(self.logins.len());
        for login in &self.logins {
            if let Some(account) = login.account
                && !self
                    .accounts
                    .iter()
                    .any(|configured| configured.id == account)
            {
                return Err(invalid(
                    format!("login {:?}", login.name),
                    format!("no account {account}"),
                ));
            }
            let mut entitlements: Vec<Entitlement> =
                login.entitlements.iter().map(|&name| name.into()).collect();
            entitlements.sort_unstable();
            entitlements.dedup();
            logins.push(Login {
                name: login.name.clone(),
                account: login.account,
                entitlements,
                password_hash: login.password_hash.clone(),
            });
        }
        Ok(Logins::new(logins)?)
    }

    fn asset(&self, symbol: &str, what: &str) -> Result<&AssetConfig, ConfigError> {
        self.assets
            .iter()
            .find(|asset| asset.symbol == symbol)
            .ok_or_else(|| invalid(what, format!("no asset {symbol}")))
    }

    /// The commands that create everything the configuration describes and
    /// fund its accounts, in this order: assets, instruments, accounts, then
    /// each account's deposits in asset order (transfer ids 1, 2, …).
    pub fn genesis(&self) -> Result<Vec<Command>, ConfigError> {
        let mut commands = Vec::new();
        for asset in &self.assets {
            let symbol = symbol(&asset.symbol, "asset")?;
            commands.push(Command::Admin(AdminCommand::CreateAsset {
                asset: AssetId(asset.id),
                symbol,
                scale: asset.scale,
            }));
        }
        for instrument in &self.instruments {
            let spec = self.instrument_spec(instrument)?;
            commands.push(Command::Admin(AdminCommand::CreateInstrument {
                instrument: InstrumentId(instrument.id),
                spec,
            }));
        }
        for account in &self.accounts {
            commands.push(Command::Admin(AdminCommand::CreateAccount {
                account: AccountId(account.id),
            }));
        }
        for account in &self.accounts {
            let what = format!("account {}", account.name);
            for symbol in account.funding.keys() {
                self.asset(symbol, &what)?;
            }
            let mut transfer_id = 0;
            for asset in &self.assets {
                let Some(amount) = account.funding.get(&asset.symbol) else {
                    continue;
                };
                let amount = scaled(amount, u32::from(asset.scale))
                    .and_then(|amount| u64::try_from(amount).ok())
                    .ok_or_else(|| {
                        invalid(&what, format!("bad {} amount {amount}", asset.symbol))
                    })?;
                transfer_id += 1;
                commands.push(Command::Deposit(Deposit {
                    account: AccountId(account.id),
                    asset: AssetId(asset.id),
                    amount,
                    transfer_id: TransferId(transfer_id),
                }));
            }
        }
        Ok(commands)
    }

    fn instrument_spec(
        &self,
        instrument: &InstrumentConfig,
    ) -> Result<InstrumentSpec, ConfigError> {
        let what = format!("instrument {}", instrument.symbol);
        let base = self.asset(&instrument.base, &what)?;
        let quote = self.asset(&instrument.quote, &what)?;
        let base_scale = u32::from(base.scale);
        let quantity_unit = scaled(&instrument.quantity_unit, base_scale)
            .and_then(|unit| u64::try_from(unit).ok())
            .filter(|&unit| unit > 0)
            .ok_or_else(|| {
                invalid(
                    &what,
                    "quantity_unit is not a whole number of base minor units",
                )
            })?;
        let units = Units {
            base_scale,
            quote_scale: u32::from(quote.scale),
            quantity_unit,
        };
        let price = |text: &str, field: &str| {
            units
                .price(text)
                .ok_or_else(|| invalid(&what, format!("{field} {text} is not a whole number of quote minor units per quantity unit")))
        };
        Ok(InstrumentSpec {
            symbol: symbol(&instrument.symbol, &what)?,
            base: AssetId(base.id),
            quote: AssetId(quote.id),
            quantity_unit,
            tick_size: price(&instrument.tick_size, "tick_size")?,
            lot_size: Quantity(instrument.lot_size),
            min_quantity: Quantity(instrument.min_quantity),
            max_quantity: Quantity(instrument.max_quantity),
            reference_price: price(&instrument.reference_price, "reference_price")?,
            band_bps: instrument.band_bps,
            maker_fee_bps: instrument.maker_fee_bps,
            taker_fee_bps: instrument.taker_fee_bps,
        })
    }
}

fn symbol(text: &str, what: &str) -> Result<Symbol, ConfigError> {
    Symbol::new(text).ok_or_else(|| {
        invalid(
            what,
            format!("bad symbol {text:?} (1-8 printable ASCII characters)"),
        )
    })
}

/// How an instrument's human prices map to engine prices.
struct Units {
    base_scale: u32,
    quote_scale: u32,
    /// Base minor units per quantity unit.
    quantity_unit: u64,
}

impl Units {
    /// A price in whole quote units per whole base unit → quote minor units
    /// per quantity unit: `price × 10^quote_scale × quantity_unit /
    /// 10^base_scale`, which must be a positive integer.
    fn price(&self, text: &str) -> Option<Price> {
        let per_base_minor = scaled(text, self.quote_scale + self.base_scale)?;
        let numerator = per_base_minor.checked_mul(u128::from(self.quantity_unit))?;
        let divisor = 10_u128.checked_pow(2 * self.base_scale)?;
        if numerator == 0 || numerator % divisor != 0 {
            return None;
        }
        i64::try_from(numerator / divisor).ok().map(Price)
    }
}

/// `text`, a non-negative decimal such as "100.00", times `10^scale`, when
/// that is an integer.
///
/// ```
/// assert_eq!(tools::config::scaled("100.00", 4), Some(1_000_000));
/// assert_eq!(tools::config::scaled("0.001", 2), None);
/// assert_eq!(tools::config::scaled("1.50", 1), Some(15));
/// ```
pub fn scaled(text: &str, scale: u32) -> Option<u128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let fraction = fraction.trim_end_matches('0');
    let fraction_digits = u32::try_from(fraction.len()).ok()?;
    if fraction_digits > scale {
        return None;
    }
    let mut value = whole.parse::<u128>().ok()?;
    value = value.checked_mul(10_u128.checked_pow(scale)?)?;
    if !fraction.is_empty() {
        let fraction_value = fraction.parse::<u128>().ok()?;
        value = value.checked_add(
            fraction_value.checked_mul(10_u128.checked_pow(scale - fraction_digits)?)?,
        )?;
    }
    Some(value)
}

/// `value` minor units of an asset with `scale` decimals, as a decimal.
///
/// ```
/// assert_eq!(tools::config::format_scaled(1_000_000, 4), "100.0000");
/// assert_eq!(tools::config::format_scaled(5, 0), "5");
/// ```
pub fn format_scaled(value: u128, scale: u32) -> String {
    if scale == 0 {
        return value.to_string();
    }
    let divisor = 10_u128.pow(scale);
    let width = scale as usize;
    format!("{}.{:0width$}", value / divisor, value % divisor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{CommandHeader, Engine, Status};
    use gateway::auth::{AuthError, Entitlement};

    #[test]
    fn the_embedded_configuration_boots_the_documented_exchange() {
        let config = Config::embedded();
        let mut engine = Engine::new(config.engine_config().unwrap()).unwrap();
        let mut events = Vec::new();
        for (index, command) in config.genesis().unwrap().iter().enumerate() {
            let header = CommandHeader {
                sequence: index as u64 + 1,
                timestamp_ns: 0,
            };
            assert_eq!(
                engine.apply(header, command, &mut events),
                Status::Applied,
                "{command:?}"
            );
        }
        engine.check_invariants().unwrap();
        let acme = engine.instrument(InstrumentId(0)).unwrap();
        assert_eq!(acme.spec.reference_price, Price(1_000_000));
        assert_eq!(acme.spec.tick_size, Price(100));
        assert_eq!(
            (acme.band.low, acme.band.high),
            (Price(900_000), Price(1_100_000))
        );
        let eurusd = engine.instrument(InstrumentId(2)).unwrap();
        assert_eq!(eurusd.spec.reference_price, Price(11_000));
        assert_eq!(eurusd.spec.tick_size, Price(1));
        assert_eq!(eurusd.spec.quantity_unit, 100);
        // DEMO1..DEMO4: 1,000,000 USD and EUR, 10,000 ACME and GLOBEX.
        for account in 1..=4 {
            let balance = |asset| {
                engine
                    .balance(AccountId(account), AssetId(asset))
                    .unwrap()
                    .available
            };
            assert_eq!(balance(0), 1_000_000 * 10_000);
            assert_eq!(balance(1), 1_000_000 * 100);
            assert_eq!(balance(2), 10_000);
            assert_eq!(balance(3), 10_000);
        }
    }

    #[test]
    fn the_configuration_round_trips_through_toml() {
        let config = Config::embedded();
        assert_eq!(Config::parse(&config.to_toml()).unwrap(), config);
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(scaled("1.1000", 4), Some(11_000));
        assert_eq!(scaled("7", 2), Some(700));
        assert_eq!(scaled("0.0001", 4), Some(1));
        assert_eq!(scaled("0.00001", 4), None);
        assert_eq!(scaled("-1", 4), None);
        assert_eq!(scaled("", 4), None);
        assert_eq!(scaled(".5", 4), None);
        assert_eq!(scaled("1e5", 4), None);
        assert_eq!(format_scaled(11_000, 4), "1.1000");
    }

    #[test]
    fn prices_map_to_quote_minor_units_per_quantity_unit() {
        // A coin with 8 decimals traded in lots of 0.001, quoted in USD with
        // 2 decimals: 60 000.00 USD per coin is 6 000 cents per lot.
        let units = Units {
            base_scale: 8,
            quote_scale: 2,
            quantity_unit: 100_000,
        };
        assert_eq!(units.price("60000.00"), Some(Price(6_000)));
        assert_eq!(
            units.price("0.01"),
            None,
            "a cent per coin is not a whole cent per lot"
        );
        assert_eq!(units.price("10"), Some(Price(1)));
    }

    #[test]
    fn references_to_unknown_assets_are_errors() {
        let mut config = Config::embedded();
        config.instruments[0].quote = "JPY".into();
        let error = config.genesis().unwrap_err().to_string();
        assert!(error.contains("no asset JPY"), "{error}");
        let mut config = Config::embedded();
        config.accounts[0].funding.insert("JPY".into(), "1".into());
        assert!(config.genesis().is_err());
        let mut config = Config::embedded();
        config.accounts[0]
            .funding
            .insert("USD".into(), "0.00001".into());
        assert!(config.genesis().is_err());
    }

    /// `text` left-justified in an `N`-byte field padded with spaces, as a
    /// SoupBinTCP Login Request carries it.
    fn field<const N: usize>(text: &str) -> [u8; N] {
        let mut field = [b' '; N];
        field[..text.len()].copy_from_slice(text.as_bytes());
        field
    }

    #[test]
    fn the_embedded_logins_are_the_documented_ones() {
        let logins = Config::embedded().logins().unwrap();
        for n in 1..=4 {
            let login = logins
                .authenticate(&field(&format!("DEMO{n}")), &field(&format!("demo{n}")))
                .unwrap();
            assert_eq!(login.account, Some(n));
            assert_eq!(login.entitlements, [Entitlement::Trade]);
        }
        let operator = logins
            .authenticate(&field("OPER1"), &field("oper1"))
            .unwrap();
        assert_eq!(operator.entitlements, [Entitlement::Fund]);
        assert_eq!(
            logins.authenticate(&field("DEMO1"), &field("demo2")),
            Err(AuthError::WrongPassword)
        );
        assert_eq!(
            logins.authenticate(&field("OPER1"), &field("")),
            Err(AuthError::WrongPassword)
        );
        assert_eq!(
            logins.authenticate(&field("NOBODY"), &field("demo1")),
            Err(AuthError::UnknownUser)
        );
        // No plain-text password at rest.
        for login in &Config::embedded().logins {
            assert!(login.password_hash.starts_with("$argon2id$"));
        }
    }

    #[test]
    fn bad_logins_are_refused() {
        let check = |change: &dyn Fn(&mut Config)| {
            let mut config = Config::embedded();
            change(&mut config);
            config.logins().unwrap_err().to_string()
        };
        let error = check(&|c| c.logins[0].account = Some(99));
        assert!(error.contains("no account 99"), "{error}");
        let error = check(&|c| c.logins[0].account = None);
        assert!(error.contains("names no account"), "{error}");
        let error = check(&|c| c.logins[1].name = "DEMO1".into());
        assert!(error.contains("twice"), "{error}");
        let error = check(&|c| c.logins[1].name = "DEMO123".into());
        assert!(error.contains("printable"), "{error}");
        let error = check(&|c| c.logins[0].password_hash = "demo1".into());
        assert!(error.contains("password_hash"), "{error}");
        let text = DEFAULT_CONFIG.replace(r#"["fund"]"#, r#"["admin"]"#);
        assert!(Config::parse(&text).is_err());
        let text = DEFAULT_CONFIG.replace("password_hash", "password");
        assert!(Config::parse(&text).is_err());
    }

    #[test]
    fn the_segment_preparation_defaults_to_the_engines_idle_time() {
        let embedded = Config::embedded();
        assert_eq!(
            embedded.journal_options().preparation,
            journal::Preparation::Steps
        );
        // A file written before the field existed gets the same.
        let without = DEFAULT_CONFIG.replace("segment_preparation = \"engine\"\n", "");
        assert_ne!(without, DEFAULT_CONFIG);
        let parsed = Config::parse(&without).unwrap();
        assert_eq!(parsed.journal.segment_preparation, PreparationName::Engine);
        let thread = DEFAULT_CONFIG.replace(
            "segment_preparation = \"engine\"",
            "segment_preparation = \"thread\"",
        );
        let parsed = Config::parse(&thread).unwrap();
        assert_eq!(
            parsed.journal_options().preparation,
            journal::Preparation::Thread
        );
        let bad = DEFAULT_CONFIG.replace(
            "segment_preparation = \"engine\"",
            "segment_preparation = \"idle\"",
        );
        assert!(Config::parse(&bad).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = DEFAULT_CONFIG.replace("data_dir", "data_directory");
        assert!(Config::parse(&text).is_err());
    }

    #[test]
    fn the_store_writer_runs_in_the_engines_idle_time_on_an_io_thread_or_nowhere() {
        let mut server = ServerSection::default();
        let all = |_| true;
        assert!(server.on_engine_thread(IoAgentName::StoreWriter));
        assert!(server.placed(IoAgentName::StoreWriter));
        assert_eq!(server.io_thread_plan(all).unwrap().len(), 1);
        // On no thread: not an error; the gateway writes the files itself.
        server.engine_agents = vec![IoAgentName::Snapshot];
        assert!(!server.placed(IoAgentName::StoreWriter));
        assert_eq!(server.io_thread_plan(all).unwrap().len(), 1);
        // On a thread of its own.
        server.io_threads.push(IoThreadSection {
            agents: vec![IoAgentName::StoreWriter],
            ..IoThreadSection::default()
        });
        assert!(server.placed(IoAgentName::StoreWriter));
        let plan = server.io_thread_plan(all).unwrap();
        assert_eq!(plan[1].agents, [IoAgentName::StoreWriter]);
        // Not in both places.
        server.engine_agents.push(IoAgentName::StoreWriter);
        let error = server.io_thread_plan(all).unwrap_err().to_string();
        assert!(
            error.contains("store-writer is also in server.engine_agents"),
            "{error}"
        );
        // Its name in the configuration file.
        let text = DEFAULT_CONFIG.replace(
            "engine_agents = [\"snapshot\", \"store-writer\"]",
            "engine_agents = [\"store-writer\"]",
        );
        let config = Config::parse(&text).unwrap();
        assert_eq!(config.server.engine_agents, [IoAgentName::StoreWriter]);
    }

    #[test]
    fn every_io_agent_runs_on_exactly_one_thread() {
        let mut server = ServerSection::default();
        let all = |_| true;
        let plan = server.io_thread_plan(all).unwrap();
        // By default the snapshot agent runs in the engine's idle time.
        assert_eq!(plan.len(), 1);
        assert_eq!(
            plan[0].agents,
            [IoAgentName::Gateway, IoAgentName::Marketdata]
        );
        assert!(server.on_engine_thread(IoAgentName::Snapshot));
        // Only the snapshot agent may: the others consume the engine's
        // output, and it waits for them.
        server.engine_agents = vec![IoAgentName::Snapshot, IoAgentName::Marketdata];
        let error = server.io_thread_plan(all).unwrap_err().to_string();
        assert!(
            error.contains("marketdata cannot run on the engine thread")
                && error.contains("only snapshot and store-writer can"),
            "{error}"
        );
        // On the engine thread and on an I/O thread: refused.
        server.engine_agents = vec![IoAgentName::Snapshot];
        server.io_threads.push(IoThreadSection {
            agents: vec![IoAgentName::Snapshot],
            ..IoThreadSection::default()
        });
        let error = server.io_thread_plan(all).unwrap_err().to_string();
        assert!(
            error.contains("snapshot is also in server.engine_agents"),
            "{error}"
        );
        // On a thread of its own instead.
        server.engine_agents.clear();
        let plan = server.io_thread_plan(all).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[1].agents, [IoAgentName::Snapshot]);
        assert!(!server.on_engine_thread(IoAgentName::Snapshot));
        let no_marketdata = |agent| agent != IoAgentName::Marketdata;
        // Market data disabled: it is left out, and a thread left empty is
        // not started.
        server.io_threads = vec![
            IoThreadSection {
                agents: vec![IoAgentName::Gateway],
                core: Some(0),
                ..IoThreadSection::default()
            },
            IoThreadSection {
                agents: vec![IoAgentName::Marketdata, IoAgentName::Snapshot],
                ..IoThreadSection::default()
            },
        ];
        assert_eq!(server.io_thread_plan(all).unwrap().len(), 2);
        let only_gateway = |agent| agent == IoAgentName::Gateway;
        let plan = server.io_thread_plan(only_gateway).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].core, Some(0));
        // Twice, or not at all: refused with the reason.
        server.io_threads[1].agents.push(IoAgentName::Gateway);
        let error = server.io_thread_plan(all).unwrap_err().to_string();
        assert!(error.contains("gateway is on two threads"), "{error}");
        server.io_threads.remove(0);
        server.io_threads[0].agents = vec![IoAgentName::Marketdata];
        let error = server
            .io_thread_plan(no_marketdata)
            .unwrap_err()
            .to_string();
        assert!(error.contains("gateway is on no thread"), "{error}");
        // The engine is not an I/O agent.
        let text = DEFAULT_CONFIG.replace(
            "agents = [\"gateway\", \"marketdata\"]",
            "agents = [\"engine\", \"gateway\", \"marketdata\"]",
        );
        assert!(toml::from_str::<Config>(&text).is_err());
    }
}
