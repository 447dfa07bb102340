//! `exchange serve`: start the exchange from its journal.
//!
//! Start-up is recovery: the journal under `data_dir/journal` is verified
//! (a torn tail truncated), the newest valid snapshot restored and every
//! command after it replayed. A journal with no commands gets the genesis
//! commands of the configuration (assets, instruments, accounts and their
//! first deposits), journaled like any other command. The order-entry,
//! funding and market-data listeners come on top of this (issues #4, #5).

use crate::config::{Config, IoAgentName, format_scaled};
use crate::edges::{self, EdgesShadow, EdgesState};
use crate::startup::{Replayed, replay_edges};
use crate::threads::{self, IoAgents, IoThreads};
use engine::agent::{AgentRunner, RunnerConfig};
use engine::runner::{EngineHandle, LoopConfig};
use engine::{Applied, Command, Engine, Recovered, Sequencer, Status};
use gateway::server::{DirectoryLogin, GatewayControl, Server, ServerConfig, ServerParts};
use std::net::SocketAddr;
use std::time::Duration;

/// The sequencer started from the journal, with the configuration's
/// genesis commands journaled if they are not all there yet, and what
/// recovery did.
pub fn boot(config: &Config) -> anyhow::Result<(Sequencer, Recovered)> {
    boot_with(config, None, None)
}

/// As [`boot`]; with an observer, the journal is replayed from the
/// snapshot at `from` (`None`: from its first command) and the observer
/// sees every command after it and its events, genesis included: the
/// edges rebuild their state from them.
pub fn boot_with(
    config: &Config,
    from: Option<u64>,
    mut observer: Option<&mut dyn FnMut(&Applied<'_>)>,
) -> anyhow::Result<(Sequencer, Recovered)> {
    let dir = config.journal_dir();
    let genesis = config.genesis()?;
    // A bad login table stops the start, before anything is journaled.
    config.logins()?;
    let (mut sequencer, recovered) = match observer.as_deref_mut() {
        Some(observer) => Sequencer::open_observed_from(
            &dir,
            config.engine_config()?,
            config.journal_options(),
            from,
            observer,
        )?,
        None => Sequencer::open(&dir, config.engine_config()?, config.journal_options())?,
    };
    let journaled = check_genesis_prefix(&sequencer, &genesis)?;
    if journaled < genesis.len() {
        let mut events = Vec::new();
        for command in &genesis[journaled..] {
            events.clear();
            let (header, status) = sequencer.submit(command, &mut events)?;
            if status != Status::Applied {
                anyhow::bail!("genesis command {command} was not applied: {status:?}");
            }
            if let Some(observer) = observer.as_deref_mut() {
                observer(&Applied {
                    header,
                    command,
                    origin: &[],
                    status,
                    events: &events,
                });
            }
        }
        let durable_through = sequencer.engine().last_sequence();
        let durable = sequencer.durable();
        sequencer.journal().sync()?;
        anyhow::ensure!(
            durable.wait_for(durable_through, std::time::Duration::from_secs(10)),
            "the journal did not make genesis durable"
        );
    }
    sequencer
        .engine()
        .check_invariants()
        .map_err(|violation| anyhow::anyhow!("invariant broken after start: {violation}"))?;
    Ok((sequencer, recovered))
}

/// How many of the genesis commands the journal already starts with. A
/// first start stopped part-way through genesis is finished by the next
/// one; a journal that starts otherwise was begun with another
/// configuration, and assets, instruments and accounts are changed by admin
/// commands, not by editing the configuration, so the start is refused.
fn check_genesis_prefix(sequencer: &Sequencer, genesis: &[Command]) -> anyhow::Result<usize> {
    let journal = sequencer.journal();
    let last = journal.last_sequence();
    let first_present = journal.segments().first().map_or(1, |&(_, first, _)| first);
    if first_present > 1 {
        // The early segments are gone (a snapshot covers them): nothing to
        // compare with, and genesis was long finished.
        return Ok(genesis.len());
    }
    let compared = genesis.len().min(usize::try_from(last)?);
    let mut reader = journal.reader(1);
    for (index, expected) in genesis[..compared].iter().enumerate() {
        let record = reader
            .next()?
            .ok_or_else(|| anyhow::anyhow!("the journal ended before record {}", index + 1))?;
        let (command, _origin) = engine::codec::decode_record(record.record_type, record.body)?;
        if command != *expected {
            anyhow::bail!(
                "journal record {} is `{command}`, but this configuration's genesis has \
                 `{expected}` there: the journal in {} was begun with another configuration",
                record.sequence,
                journal.dir().display()
            );
        }
    }
    Ok(compared)
}

/// What recovery did, for the operator.
pub fn describe_recovery(recovered: &Recovered) -> String {
    let mut text = String::new();
    if let Some(torn) = &recovered.journal.torn_tail {
        text.push_str(&format!(
            "exchange: truncated a torn tail of {} bytes at offset {} of {}: {}\n",
            torn.bytes,
            torn.offset,
            torn.segment.display(),
            torn.reason
        ));
    }
    for skipped in &recovered.snapshots_skipped {
        text.push_str(&format!(
            "exchange: passed over a bad snapshot: {skipped}\n"
        ));
    }
    match &recovered.snapshot {
        Some(snapshot) => text.push_str(&format!(
            "exchange: recovered from snapshot at sequence {} and {} journaled commands\n",
            snapshot.sequence, recovered.replayed
        )),
        None => text.push_str(&format!(
            "exchange: recovered {} journaled commands\n",
            recovered.replayed
        )),
    }
    text
}

/// A summary of the booted exchange, for the operator.
pub fn describe(config: &Config, engine: &Engine) -> String {
    let mut text = String::new();
    text.push_str(&format!(
        "exchange: at sequence {}; state hash {:032x}\n",
        engine.last_sequence(),
        engine.state_hash()
    ));
    for id in engine.instruments() {
        let view = engine.instrument(id).expect("listed instruments exist");
        let quote = engine
            .asset(view.spec.quote)
            .expect("instruments quote existing assets");
        let scale = u32::from(quote.scale);
        let price = |price: engine::Price| format_scaled(u128::from(price.0.unsigned_abs()), scale);
        text.push_str(&format!(
            "  instrument {} {}: reference {} {}, band {}..{}, tick {}, status {:?}\n",
            id,
            view.spec.symbol,
            price(view.spec.reference_price),
            quote.symbol,
            price(view.band.low),
            price(view.band.high),
            price(view.spec.tick_size),
            view.status,
        ));
    }
    for account in &config.accounts {
        text.push_str(&format!("  account {} {}:", account.id, account.name));
        for (asset_id, asset) in engine.assets() {
            let Some(balance) = engine.balance(engine::AccountId(account.id), asset_id) else {
                continue;
            };
            let available = format_scaled(u128::from(balance.available), u32::from(asset.scale));
            text.push_str(&format!(" {} {}", available, asset.symbol));
        }
        text.push('\n');
    }
    text
}

/// `exchange serve`: starts, prints where it listens, and runs until
/// SIGINT or SIGTERM.
pub fn serve(config: &Config) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let running = start(config)?;
    print!("{}", running.description);
    println!(
        "exchange: order entry (OUCH 5.0 / SoupBinTCP 4.0) listening on {}",
        running.order_entry
    );
    println!(
        "exchange: funding (SoupBinTCP 4.0) listening on {}",
        running.funding
    );
    if let Some(md) = &running.marketdata {
        match &md.feed_b {
            Some(feed_b) => println!(
                "exchange: market data (ITCH 5.0 / MoldUDP64) on {} and {feed_b}",
                md.feed_a
            ),
            None => println!(
                "exchange: market data (ITCH 5.0 / MoldUDP64) on {}",
                md.feed_a
            ),
        }
        println!(
            "exchange: market-data re-requests on {} (UDP), snapshots on {} (TCP)",
            md.rerequest, md.snapshot
        );
    }
    println!(
        "exchange: journal in {}; stop with Ctrl-C or SIGTERM",
        config.journal_dir().display()
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    while !stop.load(Ordering::Acquire) && !running.failed() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let failed = running.failed();
    println!("exchange: stopping");
    running.stop()?;
    anyhow::ensure!(
        !failed,
        "a server thread stopped on its own; see the log above"
    );
    println!("exchange: stopped cleanly (journal closed)");
    Ok(())
}

/// Where a running exchange publishes market data.
#[derive(Clone, Debug)]
pub struct MarketDataAddresses {
    pub feed_a: String,
    pub feed_b: Option<String>,
    pub rerequest: SocketAddr,
    pub snapshot: SocketAddr,
}

/// The market-data thread's settings from the configuration.
fn md_config(config: &Config) -> anyhow::Result<marketdata::server::MdConfig> {
    let section = &config.marketdata;
    let group = |text: &str, what: &str| -> anyhow::Result<std::net::SocketAddrV4> {
        let addr: std::net::SocketAddrV4 = text
            .parse()
            .map_err(|error| anyhow::anyhow!("{what} = {text:?}: {error}"))?;
        anyhow::ensure!(
            addr.ip().is_multicast(),
            "{what} = {text:?} is not a multicast group"
        );
        Ok(addr)
    };
    anyhow::ensure!(
        section.rerequest_messages_max >= 1
            && section.rerequest_messages_per_second >= u64::from(section.rerequest_messages_max),
        "marketdata.rerequest_messages_per_second ({}) must be at least \
         marketdata.rerequest_messages_max ({}, and that at least 1): a full-size re-request \
         would never be answered",
        section.rerequest_messages_per_second,
        section.rerequest_messages_max
    );
    Ok(marketdata::server::MdConfig {
        feed_a: group(&section.feed_a, "marketdata.feed_a")?,
        feed_b: if section.feed_b.is_empty() {
            None
        } else {
            Some(group(&section.feed_b, "marketdata.feed_b")?)
        },
        interface: section.interface.parse().map_err(|error| {
            anyhow::anyhow!("marketdata.interface = {:?}: {error}", section.interface)
        })?,
        ttl: section.ttl,
        heartbeat: Duration::from_millis(section.heartbeat_ms.max(1)),
        rerequest: parse_addr(&section.rerequest, "marketdata.rerequest")?,
        snapshot: parse_addr(&section.snapshot, "marketdata.snapshot")?,
        rerequest_messages_max: section.rerequest_messages_max,
        rerequest_messages_per_second: section.rerequest_messages_per_second,
        snapshot_sessions_max: section.snapshot_sessions_max as usize,
        snapshot_login_timeout: Duration::from_secs(5),
        snapshot_write_timeout: Duration::from_secs(60),
        log_dir: Some(config.marketdata_dir()),
        // Its thread is given by `server.io_threads`.
        core: None,
    })
}

/// A running exchange: the engine thread, the gateway's event loop and the
/// I/O threads (see [`threads`](crate::threads)).
#[derive(Debug)]
pub struct Running {
    engine: EngineHandle,
    edges: Edges,
    io: IoThreads,
    pub order_entry: SocketAddr,
    pub funding: SocketAddr,
    /// Where market data is published (`None` when disabled).
    pub marketdata: Option<MarketDataAddresses>,
    /// The state at start, for the operator.
    pub description: String,
}

/// Starts the exchange: recovery (or genesis) from the newest snapshot the
/// edges can resume from, the journal after it replayed through the
/// edges, the listeners bound, the engine thread and the I/O threads
/// started.
pub fn start(config: &Config) -> anyhow::Result<Running> {
    let logins = config.logins()?;
    check_server_section(config)?;
    // Read the core list once, before anything is pinned: a pinned thread
    // sees only its own core.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let engine_core = threads::engine_core(config.server.engine_core, &cores);
    // Every thread started from here on but the engine's keeps off its core.
    let _off_engine_core = threads::OffEngineCore::enter(engine_core);
    let directory_logins = edges::directory_logins(config);
    let mut replayed = replay_edges(config, &directory_logins)?;
    let mut description = describe_recovery(&replayed.recovered);
    description.push_str(&describe(config, replayed.sequencer.engine()));
    let bound = bind(config, replayed.publisher.take(), &cores, engine_core);
    let bound = match bound {
        Ok(bound) => bound,
        Err(error) => {
            replayed.sequencer.close()?;
            return Err(error);
        }
    };
    spawn(
        config,
        logins,
        &directory_logins,
        replayed,
        bound,
        description,
    )
}

/// The server section's limits that `exchange serve` needs beyond parsing.
fn check_server_section(config: &Config) -> anyhow::Result<()> {
    let section = &config.server;
    anyhow::ensure!(
        section.ring_capacity.is_power_of_two() && section.ring_capacity >= 64,
        "server.ring_capacity must be a power of two of at least 64, not {}",
        section.ring_capacity
    );
    anyhow::ensure!(
        section.stream_cache_bytes_max >= 4096,
        "server.stream_cache_bytes_max must be at least 4096, not {}",
        section.stream_cache_bytes_max
    );
    // A funding Balance Report lists every asset in one SoupBinTCP packet.
    let assets_max = (wire::soupbin::PAYLOAD_BYTES_MAX
        - gateway::funding::BALANCE_REPORT_HEADER_LEN)
        / gateway::funding::ASSET_BALANCE_LEN;
    anyhow::ensure!(
        usize::from(config.engine.assets_max) <= assets_max,
        "engine.assets_max is {}, but a balance report of more than {assets_max} assets does \
         not fit one SoupBinTCP packet",
        config.engine.assets_max
    );
    Ok(())
}

/// The listeners, bound before any thread starts, and the threads' plan.
struct Bound {
    io_plan: Vec<crate::config::IoThreadSection>,
    engine_core: Option<usize>,
    server: Server,
    order_entry: SocketAddr,
    funding: SocketAddr,
    marketdata: Option<(
        marketdata::server::MdServer,
        marketdata::publisher::Publisher,
        MarketDataAddresses,
    )>,
}

/// Plans the threads and binds order entry, funding and (with `publisher`)
/// market data; the publisher's log is attached to its directory.
fn bind(
    config: &Config,
    publisher: Option<marketdata::publisher::Publisher>,
    cores: &[core_affinity::CoreId],
    engine_core: Option<usize>,
) -> anyhow::Result<Bound> {
    let section = &config.server;
    let mut io_plan = section.io_thread_plan(|agent| match agent {
        IoAgentName::Gateway => true,
        IoAgentName::Marketdata => config.marketdata.enabled,
        IoAgentName::Snapshot => config.snapshots.enabled,
        IoAgentName::StoreWriter => true,
    })?;
    if let Some(thread) = io_plan
        .iter_mut()
        .find(|thread| thread.agents.contains(&IoAgentName::Gateway))
        && thread.core.is_none()
    {
        thread.core = threads::io_core(engine_core, cores);
    }
    let server_config = ServerConfig {
        order_entry: parse_addr(&section.order_entry, "server.order_entry")?,
        funding: parse_addr(&section.funding, "server.funding")?,
        sessions_max: section.sessions_max as usize,
        messages_per_second: section.messages_per_second,
        messages_burst: section.messages_burst,
        outbound_buffer_bytes: section.outbound_buffer_bytes,
        heartbeat: Duration::from_millis(section.heartbeat_ms),
        client_timeout: Duration::from_millis(section.client_timeout_ms),
        core: io_plan
            .iter()
            .find(|thread| thread.agents.contains(&IoAgentName::Gateway))
            .and_then(|thread| thread.core),
    };
    let server = Server::bind(server_config).map_err(|error| {
        anyhow::anyhow!(
            "cannot listen on {} and {}: {error}",
            section.order_entry,
            section.funding
        )
    })?;
    let marketdata = match publisher {
        Some(publisher) => Some(bind_marketdata(config, publisher)?),
        None => None,
    };
    Ok(Bound {
        io_plan,
        engine_core,
        order_entry: server.order_entry_addr()?,
        funding: server.funding_addr()?,
        server,
        marketdata,
    })
}

/// The market-data listeners, and the publisher writing its logs under
/// `data_dir/marketdata`.
fn bind_marketdata(
    config: &Config,
    mut publisher: marketdata::publisher::Publisher,
) -> anyhow::Result<(
    marketdata::server::MdServer,
    marketdata::publisher::Publisher,
    MarketDataAddresses,
)> {
    let section = &config.marketdata;
    let md_config = md_config(config)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    publisher.write_logs_under(&config.marketdata_dir(), now)?;
    let md_server = marketdata::server::MdServer::bind(md_config).map_err(|error| {
        anyhow::anyhow!(
            "cannot listen on {} and {} (market data): {error}",
            section.rerequest,
            section.snapshot
        )
    })?;
    let addresses = MarketDataAddresses {
        feed_a: section.feed_a.clone(),
        feed_b: (!section.feed_b.is_empty()).then(|| section.feed_b.clone()),
        rerequest: md_server.rerequest_addr()?,
        snapshot: md_server.snapshot_addr()?,
    };
    Ok((md_server, publisher, addresses))
}

/// The engine's rings: commands in, outcomes out to the gateway and (with
/// market data on a thread of its own) to the publisher. With market data,
/// the engine rings its doorbell after each batch: it wakes the thread
/// market data sleeps on.
struct Rings {
    input: engine::Producer<engine::runner::Request>,
    input_consumer: engine::Consumer<engine::runner::Request>,
    outputs: Vec<engine::Producer<engine::runner::Output>>,
    output: engine::Consumer<engine::runner::Output>,
    md_output: Option<engine::Consumer<engine::runner::Output>>,
    doorbells: Vec<std::sync::Arc<engine::runner::Doorbell>>,
}

impl Rings {
    /// `md`: market data's doorbell, and whether it takes a ring of its
    /// own (not when it shares the gateway's thread: see [`MdFeed`]).
    fn new(
        capacity: usize,
        md: Option<(std::sync::Arc<engine::runner::Doorbell>, MdFeed)>,
    ) -> Rings {
        let (input, input_consumer) = engine::ring(capacity);
        let (output_producer, output) = engine::ring(capacity);
        let mut outputs = vec![output_producer];
        let mut md_output = None;
        let mut doorbells = Vec::new();
        if let Some((doorbell, feed)) = md {
            if feed == MdFeed::OwnRing {
                let (producer, consumer) = engine::ring(capacity);
                outputs.push(producer);
                md_output = Some(consumer);
            }
            doorbells.push(doorbell);
        }
        Rings {
            input,
            input_consumer,
            outputs,
            output,
            md_output,
            doorbells,
        }
    }
}

/// How market data gets the engine's outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MdFeed {
    /// A ring of its own (it runs on another thread than the gateway).
    OwnRing,
    /// The gateway's releases, through a tee, on the thread they share:
    /// the engine fills one ring, and the shared thread reads it once. On
    /// 2 cores market data's own ring and gate cost that thread about 13%
    /// in the pipelined e2e, whose orders publish no ITCH message.
    GatewayTee,
}

impl MdFeed {
    fn for_plan(plan: &[crate::config::IoThreadSection]) -> MdFeed {
        let shared = plan.iter().any(|thread| {
            thread.agents.contains(&IoAgentName::Gateway)
                && thread.agents.contains(&IoAgentName::Marketdata)
        });
        if shared {
            MdFeed::GatewayTee
        } else {
            MdFeed::OwnRing
        }
    }
}

/// The market-data listeners with their publisher and addresses, where
/// its outcomes come from and the doorbell the engine rings for it.
type MdEdge = (
    (
        marketdata::server::MdServer,
        marketdata::publisher::Publisher,
        MarketDataAddresses,
    ),
    marketdata::server::MdSource,
    std::sync::Arc<engine::runner::Doorbell>,
);

/// The gateway's and market data's agents, added to the I/O agents.
fn edge_agents(
    io_agents: &mut IoAgents,
    server: Server,
    parts: ServerParts,
    md: Option<MdEdge>,
) -> anyhow::Result<(
    GatewayControl,
    Option<marketdata::server::MdControl>,
    Option<MarketDataAddresses>,
)> {
    let mut md_control = None;
    let mut marketdata = None;
    if let Some(((md_server, publisher, addresses), source, doorbell)) = md {
        marketdata = Some(addresses);
        let md_parts = marketdata::server::MdParts { publisher, source };
        let (agent, control) = md_server.into_agent(md_parts, doorbell);
        io_agents.add(IoAgentName::Marketdata, Box::new(agent));
        md_control = Some(control);
    }
    let (agent, gateway) = server
        .into_agent(parts)
        .map_err(|error| anyhow::anyhow!("cannot start the gateway: {error}"))?;
    io_agents.add(IoAgentName::Gateway, Box::new(agent));
    Ok((gateway, md_control, marketdata))
}

/// The rings, the snapshot agent, the engine thread, the gateway and
/// market-data agents and the I/O threads; the sequencer moves to the
/// engine thread.
fn spawn(
    config: &Config,
    logins: gateway::auth::Logins,
    directory_logins: &[DirectoryLogin],
    replayed: Replayed,
    bound: Bound,
    description: String,
) -> anyhow::Result<Running> {
    let section = &config.server;
    let Replayed {
        sequencer,
        directory,
        streams,
        first_timestamp,
        resumed,
        ..
    } = replayed;
    let md_feed = MdFeed::for_plan(&bound.io_plan);
    let rings = Rings::new(
        section.ring_capacity,
        bound
            .marketdata
            .as_ref()
            .map(|(md_server, _, _)| (md_server.doorbell(), md_feed)),
    );
    let durable = sequencer.durable();
    let mut io_agents = IoAgents::default();
    // The snapshot agent and the store writer run in the engine's idle
    // time, or on an I/O thread (`server.engine_agents`,
    // `server.io_threads`).
    let mut background: Vec<Box<dyn engine::agent::Agent + Send>> = Vec::new();
    let store_writer = streams.writer().cloned();
    if let Some(writer) = &store_writer {
        let agent = Box::new(threads::StoreWriterAgent::new(writer.clone()));
        if section.on_engine_thread(IoAgentName::StoreWriter) {
            background.push(agent);
        } else {
            io_agents.add(IoAgentName::StoreWriter, agent);
        }
    }
    let snapshot_control = if config.snapshots.enabled {
        match snapshot_agent(config, &sequencer, directory_logins, resumed) {
            Ok((agent, control)) => {
                if section.on_engine_thread(IoAgentName::Snapshot) {
                    background.push(Box::new(agent));
                } else {
                    io_agents.add(IoAgentName::Snapshot, Box::new(agent));
                }
                Some(control)
            }
            Err(error) => {
                sequencer.close()?;
                return Err(error);
            }
        }
    } else {
        None
    };
    let background: Option<Box<dyn engine::agent::Agent + Send>> = match background.len() {
        0 | 1 => background.pop(),
        _ => Some(Box::new(engine::agent::CompositeAgent::new(background))),
    };
    let engine = engine::runner::spawn_with_background(
        sequencer,
        rings.input_consumer,
        rings.outputs,
        rings.doorbells.clone(),
        LoopConfig {
            core: bound.engine_core,
            idle: threads::engine_idle(section.idle),
            batch_max: 256,
        },
        background,
    )?;
    let tee = (bound.marketdata.is_some() && md_feed == MdFeed::GatewayTee)
        .then(engine::gate::ReleaseTee::new);
    let md_source = match (&tee, rings.md_output) {
        (Some(tee), _) => Some(marketdata::server::MdSource::Tee(tee.clone())),
        (None, Some(output)) => Some(marketdata::server::MdSource::Ring {
            output,
            durable: durable.clone(),
        }),
        (None, None) => None,
    };
    let parts = ServerParts {
        logins,
        directory,
        streams,
        input: rings.input,
        output: rings.output,
        waker: engine.waker(),
        durable,
        session_prefix: wire::trading_day::yymmdd(first_timestamp.unwrap_or(0)),
        tee,
    };
    let md = bound
        .marketdata
        .zip(md_source)
        .zip(rings.doorbells.first().cloned())
        .map(|((md, source), doorbell)| (md, source, doorbell));
    let (gateway, md_control, marketdata) =
        match edge_agents(&mut io_agents, bound.server, parts, md) {
            Ok(edges) => edges,
            Err(error) => {
                engine.stop().close()?;
                return Err(error);
            }
        };
    let edges = Edges {
        gateway,
        md: md_control,
        snapshot: snapshot_control,
        store_writer,
    };
    let io = match io_agents.spawn(&bound.io_plan) {
        Ok(io) => io,
        Err(error) => {
            engine.stop().close()?;
            anyhow::bail!("cannot start the I/O threads: {error}");
        }
    };
    Ok(Running {
        engine,
        edges,
        io,
        order_entry: bound.order_entry,
        funding: bound.funding,
        marketdata,
        description,
    })
}

impl Running {
    /// Whether the engine or an I/O thread has ended on its own (a journal
    /// failure or an I/O error).
    pub fn failed(&self) -> bool {
        self.engine.is_finished()
            || self.engine.background_failure().is_some()
            || self.io.any_finished()
    }

    /// Stops cleanly: no more input, the engine drains its ring, the
    /// journal is made durable and closed, the last replies and market
    /// data are sent and the sessions closed.
    pub fn stop(self) -> anyhow::Result<()> {
        self.edges.gateway.stop_input();
        // Let commands already read reach the engine's ring.
        std::thread::sleep(Duration::from_millis(20));
        let control = self.engine.control();
        let (sequencer, background) = self.engine.stop_with_background();
        if let Some(failure) = control.failure() {
            tracing::error!(%failure, "the engine stopped on its own");
        }
        let unfinished = sequencer.journal().unfinished_roll_overs();
        if unfinished > 0 {
            tracing::warn!(
                roll_overs = unfinished,
                "the engine's idle time did not finish the journal's next segment before it was \
                 needed: the engine made the rest itself, a stall of up to about 80 ms per 64 MiB \
                 (journal.segment_preparation = \"thread\" moves the work to a helper thread)"
            );
        }
        tracing::info!(stats = ?control.stats(), "engine stopped");
        let closed = sequencer.close();
        // Both edges release only what the journal made durable (a failed
        // close leaves the rest unpublished), and both are finished even if
        // the other fails; the snapshot agent catches up with the closed
        // journal and stops: on its I/O thread, or here if it ran in the
        // engine's idle time (while the I/O threads finish on theirs).
        self.edges.engine_done();
        let background = match (control.background_failure(), background) {
            (Some(failure), _) => Err(failure),
            (None, Some(agent)) => AgentRunner::new(agent, RunnerConfig::default())
                .run()
                .1
                .map_err(|error| error.to_string()),
            (None, None) => Ok(()),
        }
        .map_err(std::io::Error::other);
        let io = self.io.join();
        if let Err(error) = &background {
            tracing::error!(%error, "an agent in the engine thread's idle time failed");
        }
        tracing::info!(stats = ?self.edges.gateway.stats(), "gateway stopped");
        if let Some(control) = &self.edges.md {
            tracing::info!(stats = ?control.stats(), "market data stopped");
        }
        if let Some(control) = &self.edges.snapshot {
            tracing::info!(
                written = control.snapshots_written(),
                last = control.last_snapshot_sequence(),
                "snapshot agent stopped"
            );
        }
        if let Some(writer) = &self.edges.store_writer {
            tracing::info!(stats = ?writer.stats(), "store writer stopped");
        }
        closed?;
        io?;
        background?;
        Ok(())
    }
}

/// The controls of the agents on the I/O threads that the engine's stop
/// concerns.
#[derive(Debug)]
struct Edges {
    gateway: GatewayControl,
    md: Option<marketdata::server::MdControl>,
    snapshot: Option<engine::SnapshotControl>,
    store_writer: Option<journal::StoreWriter>,
}

impl Edges {
    /// The engine has stopped and the journal is closed: each agent
    /// finishes what is durable and ends.
    fn engine_done(&self) {
        self.gateway.engine_done();
        if let Some(control) = &self.md {
            control.engine_done();
        }
        if let Some(control) = &self.snapshot {
            control.stop();
        }
        // The stores write what the gateway still appends themselves; the
        // writer's agent finishes once what was handed over is written.
        if let Some(writer) = &self.store_writer {
            writer.close();
        }
    }
}

/// The snapshot agent of this journal (before the sequencer moves to the
/// engine thread): its shadows of the engine and of the edges start where
/// the start-up replay started (`resumed`: the edges' snapshot it resumed
/// from), and follow the journal from there.
fn snapshot_agent(
    config: &Config,
    sequencer: &Sequencer,
    logins: &[DirectoryLogin],
    resumed: Option<EdgesState>,
) -> anyhow::Result<(engine::SnapshotAgent, engine::SnapshotControl)> {
    let options = config.snapshots.options()?;
    let payload_max = config
        .marketdata
        .enabled
        .then_some(config.marketdata.payload_max);
    let from = resumed.as_ref().map(|state| state.sequence);
    let shadow = match resumed {
        Some(state) => EdgesShadow::resume(logins, payload_max, state)?,
        None => EdgesShadow::new(logins, payload_max)?,
    };
    let (agent, control) = engine::SnapshotAgent::open_with_edges(
        &config.journal_dir(),
        config.engine_config()?,
        sequencer.journal(),
        options,
        from,
        Box::new(shadow),
    )
    .map_err(|error| anyhow::anyhow!("cannot start the snapshot agent: {error}"))?;
    tracing::info!(from = ?from, "the snapshot agent starts");
    Ok((agent, control))
}

fn parse_addr(text: &str, what: &str) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .map_err(|error| anyhow::anyhow!("{what} = {text:?}: {error}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{what} = {text:?}: no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{IoThreadSection, ServerSection};

    #[test]
    fn market_data_takes_the_gateways_releases_only_on_its_thread() {
        let plan = ServerSection::default().io_thread_plan(|_| true).unwrap();
        assert_eq!(MdFeed::for_plan(&plan), MdFeed::GatewayTee);
        let apart = [IoAgentName::Gateway, IoAgentName::Marketdata].map(|agent| IoThreadSection {
            agents: vec![agent],
            ..IoThreadSection::default()
        });
        assert_eq!(MdFeed::for_plan(&apart), MdFeed::OwnRing);
    }
}
