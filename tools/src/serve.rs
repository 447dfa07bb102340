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
use crate::threads::{self, IoAgents, IoThreads};
use engine::runner::{EngineHandle, LoopConfig};
use engine::{Applied, Command, Engine, Recovered, Sequencer, Status};
use gateway::server::{
    AppliedCommand, Directory, DirectoryLogin, GatewayControl, OutboundProxy, Server, ServerConfig,
    ServerParts, SessionStreams, StreamError, StreamsConfig,
};
use marketdata::publisher::Publisher;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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

/// Starts the exchange: recovery (or genesis), the streams of every session
/// rebuilt from the journal, the listeners bound, the engine thread and the
/// gateway thread started.
pub fn start(config: &Config) -> anyhow::Result<Running> {
    let logins = config.logins()?;
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
    let md_section = &config.marketdata;
    let directory_logins = edges::directory_logins(config);
    let Replayed {
        sequencer,
        recovered,
        directory,
        streams,
        publisher,
        first_timestamp,
        resumed,
    } = replay_edges(config, &directory_logins)?;
    let mut description = describe_recovery(&recovered);
    description.push_str(&describe(config, sequencer.engine()));
    let session_prefix = wire::trading_day::yymmdd(first_timestamp.unwrap_or(0));

    // Read the core list once, before anything is pinned: a pinned thread
    // sees only its own core.
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let engine_core = threads::engine_core(section.engine_core, &cores);
    let snapshots = config.snapshots.enabled;
    let io_plan = section.io_thread_plan(|agent| match agent {
        IoAgentName::Gateway => true,
        IoAgentName::Marketdata => md_section.enabled,
        IoAgentName::Snapshot => snapshots,
    })?;
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
    let server = match Server::bind(server_config) {
        Ok(server) => server,
        Err(error) => {
            sequencer.close()?;
            anyhow::bail!(
                "cannot listen on {} and {}: {error}",
                section.order_entry,
                section.funding
            );
        }
    };
    let order_entry = server.order_entry_addr()?;
    let funding = server.funding_addr()?;
    let md = match publisher {
        Some(mut publisher) => {
            let md_config = md_config(config)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos() as u64);
            let bound = publisher
                .write_logs_under(&config.marketdata_dir(), now)
                .map_err(anyhow::Error::from)
                .and_then(|()| {
                    marketdata::server::MdServer::bind(md_config).map_err(|error| {
                        anyhow::anyhow!(
                            "cannot listen on {} and {} (market data): {error}",
                            md_section.rerequest,
                            md_section.snapshot
                        )
                    })
                })
                .and_then(|md_server| {
                    let addresses = MarketDataAddresses {
                        feed_a: md_section.feed_a.clone(),
                        feed_b: (!md_section.feed_b.is_empty()).then(|| md_section.feed_b.clone()),
                        rerequest: md_server.rerequest_addr()?,
                        snapshot: md_server.snapshot_addr()?,
                    };
                    Ok((md_server, addresses))
                });
            match bound {
                Ok((md_server, addresses)) => Some((md_server, publisher, addresses)),
                Err(error) => {
                    sequencer.close()?;
                    return Err(error);
                }
            }
        }
        None => None,
    };
    let (input, input_consumer) = engine::ring(section.ring_capacity);
    let (output_producer, output) = engine::ring(section.ring_capacity);
    let mut outputs = vec![output_producer];
    let mut doorbells = Vec::new();
    let mut md_output = None;
    if let Some((md_server, _, _)) = &md {
        let (producer, consumer) = engine::ring(section.ring_capacity);
        outputs.push(producer);
        doorbells.push(md_server.doorbell());
        md_output = Some(consumer);
    }
    let durable = sequencer.durable();
    let mut io_agents = IoAgents::default();
    let snapshot_control = if snapshots {
        match snapshot_agent(config, &sequencer, &directory_logins, resumed) {
            Ok((agent, control)) => {
                io_agents.add(IoAgentName::Snapshot, Box::new(agent));
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
    let engine = engine::runner::spawn_with_doorbells(
        sequencer,
        input_consumer,
        outputs,
        doorbells.clone(),
        LoopConfig {
            core: engine_core,
            idle: threads::engine_idle(section.idle),
            batch_max: 256,
        },
    )?;
    let parts = ServerParts {
        logins,
        directory,
        streams,
        input,
        output,
        waker: engine.waker(),
        durable: durable.clone(),
        session_prefix,
    };
    let mut md_control = None;
    let mut marketdata = None;
    if let (Some((md_server, publisher, addresses)), Some(output)) = (md, md_output) {
        marketdata = Some(addresses);
        let md_parts = marketdata::server::MdParts {
            publisher,
            output,
            durable: durable.clone(),
        };
        let (agent, control) = md_server.into_agent(md_parts, doorbells[0].clone());
        io_agents.add(IoAgentName::Marketdata, Box::new(agent));
        md_control = Some(control);
    }
    let gateway = match server.into_agent(parts) {
        Ok((agent, control)) => {
            io_agents.add(IoAgentName::Gateway, Box::new(agent));
            control
        }
        Err(error) => {
            engine.stop().close()?;
            anyhow::bail!("cannot start the gateway: {error}");
        }
    };
    let edges = Edges {
        gateway,
        md: md_control,
        snapshot: snapshot_control,
    };
    let io = match io_agents.spawn(&io_plan) {
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
        order_entry,
        funding,
        marketdata,
        description,
    })
}

/// The streams' configuration; their directory is named after the first
/// command's day.
fn streams_config(config: &Config, first_timestamp_ns: u64) -> StreamsConfig {
    StreamsConfig {
        root: config.streams_dir(),
        session_prefix: wire::trading_day::yymmdd(first_timestamp_ns),
        login_names: config
            .logins
            .iter()
            .map(|login| login.name.clone())
            .collect(),
        cache_bytes_max: config.server.stream_cache_bytes_max,
    }
}

/// The edges before the start-up replay: resumed from an edges' snapshot,
/// or new (the replay then starts at sequence 1).
struct EdgesStart {
    /// The edges' snapshot resumed from (`None`: new edges).
    resumed: Option<EdgesState>,
    directory: Directory,
    streams: Option<SessionStreams>,
    publisher: Option<Publisher>,
    first_timestamp: Option<u64>,
}

/// The newest engine snapshot with an edges' snapshot beside it whose
/// stores on disk hold the streams and the market-data log as of its
/// sequence, with the edges resumed there; new edges if there is none
/// (each one passed over is logged with the reason).
fn edges_start(config: &Config, logins: &[DirectoryLogin]) -> anyhow::Result<EdgesStart> {
    let new_publisher = || -> anyhow::Result<Option<Publisher>> {
        let section = &config.marketdata;
        if !section.enabled {
            return Ok(None);
        }
        Publisher::new(section.payload_max)
            .map(Some)
            .map_err(|error| {
                anyhow::anyhow!("marketdata.payload_max = {}: {error}", section.payload_max)
            })
    };
    let dir = config.journal_dir();
    let snapshots = if dir.exists() {
        journal::SnapshotStore::new(&dir).list()?
    } else {
        Vec::new()
    };
    let engine_snapshots = journal::SnapshotStore::new(&dir);
    for info in snapshots.into_iter().rev().flatten() {
        let sequence = info.sequence;
        // A damaged engine snapshot is passed over here, before any store
        // is touched (the body is read again by the recovery).
        let resumed = engine_snapshots
            .load(&info)
            .map_err(anyhow::Error::from)
            .and_then(|_| edges::load(&dir, sequence))
            .and_then(|state| match state {
                Some(state) => resume_edges(config, logins, state, new_publisher()?).map(Some),
                None => Ok(None),
            });
        match resumed {
            Ok(Some(mut start)) => {
                if let Err(error) = retain(config, &mut start, sequence) {
                    // What it did stands; serving matters more.
                    tracing::warn!(%error, "retention stopped");
                }
                return Ok(start);
            }
            Ok(None) => {
                tracing::info!(
                    sequence,
                    "no edges' snapshot beside the snapshot: passed over"
                );
            }
            Err(error) => tracing::warn!(sequence, %error,
                "the edges cannot resume from this snapshot: passed over"),
        }
    }
    Ok(EdgesStart {
        resumed: None,
        directory: Directory::new(logins).map_err(anyhow::Error::msg)?,
        streams: None,
        publisher: new_publisher()?,
        first_timestamp: None,
    })
}

/// Retention (`[snapshots] retention`) at a start resumed from the
/// snapshot at `through`: the stores are synced (they must hold what the
/// journal will no longer regenerate), then the journal segments wholly at
/// or before `through - retention_window_commands` and the stores of
/// earlier trading days are archived under `data_dir/archive/` or removed.
fn retain(config: &Config, start: &mut EdgesStart, through: u64) -> anyhow::Result<()> {
    use crate::config::RetentionName;
    let section = &config.snapshots;
    let archive = match section.retention {
        RetentionName::Keep => return Ok(()),
        RetentionName::Archive => Some(config.data_dir.join("archive")),
        RetentionName::Remove => None,
    };
    // Each store root with the current day's directories in it.
    let mut roots = Vec::new();
    if let Some(streams) = start.streams.as_mut() {
        streams.sync_all()?;
        roots.push((config.streams_dir(), "streams", vec![streams.day_dir()]));
    }
    if let Some(publisher) = start.publisher.as_mut() {
        publisher.log_mut().sync_all()?;
        let root = config.marketdata_dir();
        let today = publisher
            .day_session_dirs()
            .iter()
            .map(|name| root.join(name))
            .collect();
        roots.push((root, "marketdata", today));
    }
    let cut = through.saturating_sub(section.retention_window_commands);
    let archived = |what: &str| archive.as_ref().map(|archive| archive.join(what));
    let segments = journal::Journal::remove_through(
        &config.journal_dir(),
        cut,
        archived("journal").as_deref(),
    )?;
    let mut days = 0;
    for (root, what, today) in &roots {
        days += retire_days(root, today, archived(what).as_deref())?;
    }
    tracing::info!(
        segments = segments.len(),
        through = cut,
        earlier_day_directories = days,
        archive = ?archive,
        "retention"
    );
    Ok(())
}

/// Archives (moves into `archive`) or removes the directories under `root`
/// that are not in `keep`; how many.
fn retire_days(root: &Path, keep: &[PathBuf], archive: Option<&Path>) -> anyhow::Result<usize> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(0);
    };
    let mut retired = 0;
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() || keep.contains(&path) {
            continue;
        }
        match archive {
            Some(archive) => {
                std::fs::create_dir_all(archive)?;
                let target = archive.join(path.file_name().expect("a directory name"));
                std::fs::rename(&path, &target).map_err(|error| {
                    anyhow::anyhow!("moving {} to {}: {error}", path.display(), target.display())
                })?;
            }
            None => std::fs::remove_dir_all(&path)?,
        }
        retired += 1;
    }
    Ok(retired)
}

/// The edges in `state`, on the stores on disk.
fn resume_edges(
    config: &Config,
    logins: &[DirectoryLogin],
    state: EdgesState,
    mut publisher: Option<Publisher>,
) -> anyhow::Result<EdgesStart> {
    let through = state.sequence;
    let names: Vec<&str> = logins.iter().map(|login| login.name.as_str()).collect();
    anyhow::ensure!(
        state.logins == names,
        "it was taken with another login table ({:?}; the streams are kept by login)",
        state.logins
    );
    let mut directory = Directory::new(logins).map_err(anyhow::Error::msg)?;
    directory.resume(state.gateway.directory.clone());
    let streams = SessionStreams::resume(
        streams_config(config, state.first_timestamp_ns.unwrap_or(0)),
        &state.gateway.streams,
        through,
    )?;
    match (publisher.as_mut(), &state.marketdata) {
        (Some(publisher), Some(md)) => {
            publisher.resume(md.clone(), &config.marketdata_dir(), through)?;
        }
        (Some(_), None) => anyhow::bail!("it was taken with market data disabled"),
        (None, _) => {}
    }
    Ok(EdgesStart {
        first_timestamp: state.first_timestamp_ns,
        resumed: Some(state),
        directory,
        streams: Some(streams),
        publisher,
    })
}

/// The exchange after the start-up replay, with its edges' state.
struct Replayed {
    sequencer: Sequencer,
    recovered: Recovered,
    directory: Directory,
    streams: SessionStreams,
    publisher: Option<Publisher>,
    first_timestamp: Option<u64>,
    /// The edges' snapshot the replay started from.
    resumed: Option<EdgesState>,
}

/// Recovery (or genesis) with the edges following: from the newest
/// snapshot the edges can resume from, or from sequence 1; the commands
/// after it pass through the outbound proxy (the streams, onto their
/// stores) and the publisher (the feed and its log; nothing is sent).
fn replay_edges(config: &Config, logins: &[DirectoryLogin]) -> anyhow::Result<Replayed> {
    let EdgesStart {
        resumed,
        mut directory,
        mut streams,
        mut publisher,
        mut first_timestamp,
    } = edges_start(config, logins)?;
    let from = resumed.as_ref().map(|state| state.sequence);
    let mut stream_error: Option<StreamError> = None;
    let mut proxy = OutboundProxy::new();
    let mut observe = |applied: &Applied<'_>| {
        if let Some(publisher) = publisher.as_mut() {
            publisher.applied(
                applied.header,
                applied.command,
                applied.events,
                &mut |_packet| {},
            );
        }
        first_timestamp.get_or_insert(applied.header.timestamp_ns);
        if stream_error.is_some() {
            return;
        }
        let streams = streams.get_or_insert_with(|| {
            SessionStreams::new(streams_config(config, applied.header.timestamp_ns))
        });
        let routed = proxy.applied(
            &mut directory,
            streams,
            &AppliedCommand {
                header: applied.header,
                command: applied.command,
                origin: applied.origin,
                status: applied.status,
                events: applied.events,
            },
        );
        let cleared = match routed {
            Ok(routed) if routed.day_ended => streams.clear(),
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = cleared {
            stream_error = Some(error);
        }
    };
    if from.is_none()
        && let Some(first) = journal::Journal::first_sequence_on_disk(&config.journal_dir())?
        && first > 1
    {
        anyhow::bail!(
            "no snapshot can resume the edges (see the log), and the journal in {} starts at \
             sequence {first}, not 1 (retention): restore its first segments (from \
             data_dir/archive/journal if archived) or the stores of the newest snapshot",
            config.journal_dir().display()
        );
    }
    let (sequencer, recovered) = boot_with(config, from, Some(&mut observe))?;
    let mut streams = streams.unwrap_or_else(|| SessionStreams::new(streams_config(config, 0)));
    let finished = match stream_error.take() {
        Some(error) => Err(error),
        None => streams.finish_replay(),
    };
    if let Err(error) = finished {
        sequencer.close()?;
        return Err(anyhow::Error::from(error).context("rebuilding the session streams"));
    }
    Ok(Replayed {
        sequencer,
        recovered,
        directory,
        streams,
        publisher,
        first_timestamp,
        resumed,
    })
}

impl Running {
    /// Whether the engine or an I/O thread has ended on its own (a journal
    /// failure or an I/O error).
    pub fn failed(&self) -> bool {
        self.engine.is_finished() || self.io.any_finished()
    }

    /// Stops cleanly: no more input, the engine drains its ring, the
    /// journal is made durable and closed, the last replies and market
    /// data are sent and the sessions closed.
    pub fn stop(self) -> anyhow::Result<()> {
        self.edges.gateway.stop_input();
        // Let commands already read reach the engine's ring.
        std::thread::sleep(Duration::from_millis(20));
        let sequencer = self.engine.stop();
        let closed = sequencer.close();
        // Both edges release only what the journal made durable (a failed
        // close leaves the rest unpublished), and both are finished even if
        // the other fails; the snapshot agent catches up with the closed
        // journal and stops.
        self.edges.engine_done();
        let io = self.io.join();
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
        closed?;
        io?;
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

    #[test]
    fn earlier_days_are_archived_or_removed_and_today_stays() {
        let root = std::env::temp_dir().join(format!("serve-retire-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let days = root.join("streams");
        for day in ["2612070000", "2612070001", "2612070002"] {
            std::fs::create_dir_all(days.join(day).join("DEMO1")).unwrap();
        }
        std::fs::write(days.join("note.txt"), b"not a day").unwrap();
        let today = vec![days.join("2612070002")];
        let archive = root.join("archive");
        assert_eq!(retire_days(&days, &today, Some(&archive)).unwrap(), 2);
        assert!(archive.join("2612070000").join("DEMO1").is_dir());
        assert!(archive.join("2612070001").is_dir());
        assert!(days.join("2612070002").is_dir() && days.join("note.txt").is_file());
        std::fs::create_dir_all(days.join("2612070001")).unwrap();
        assert_eq!(retire_days(&days, &today, None).unwrap(), 1);
        assert!(!days.join("2612070001").exists());
        assert_eq!(retire_days(&root.join("absent"), &today, None).unwrap(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
