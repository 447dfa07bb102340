//! A restart resumes from a snapshot, the edges included: the snapshot
//! agent writes the edges' state (streams' lengths, the feed) beside each
//! engine snapshot, and `serve` replays only the commands after the newest
//! one whose stores hold the streams as of its sequence. A re-login from
//! any sequence then gets exactly the bytes sent live, and the day's
//! market-data log continues with exactly the messages a replay from
//! sequence 1 regenerates.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use gateway::client::OuchClient;
use gateway::ouch;
use journal::{MessageStore, SnapshotStore};
use tools::config::Config;

const LOGINS: [&str; 2] = ["DEMO1", "DEMO2"];

/// The two logins cross `rounds` orders each on ACME, from order token
/// `first_token`.
fn trade(running: &tools::serve::Running, first_token: u32, rounds: u32) {
    let mut clients: Vec<OuchClient> = LOGINS.iter().map(|l| trader(running, l, 0)).collect();
    let mut dice = Dice(0x5e_ed ^ u64::from(first_token));
    for round in first_token..first_token + rounds {
        for (index, client) in clients.iter_mut().enumerate() {
            let side = if index == 0 {
                ouch::Side::Buy
            } else {
                ouch::Side::Sell
            };
            let price = 1_000_000 + (dice.next(5) as i64 - 2) * 100;
            let quantity = 1 + dice.next(10) as u32;
            client
                .queue(&order(round, side, quantity, "ACME", price))
                .unwrap();
        }
        if round % 40 == 0 {
            for client in &mut clients {
                client.flush().unwrap();
            }
        }
    }
    for client in &mut clients {
        client.flush().unwrap();
        raw_stream(client);
    }
}

/// Each login's whole stream, read by a login from sequence 1.
fn streams(running: &tools::serve::Running) -> Vec<Vec<(u64, Vec<u8>)>> {
    LOGINS
        .iter()
        .map(|login| raw_stream(&mut trader(running, login, 1)))
        .collect()
}

/// The sequences of the edges' snapshots in the journal directory.
fn edges_snapshots(config: &Config) -> Vec<u64> {
    SnapshotStore::edges(&config.journal_dir())
        .list()
        .unwrap()
        .into_iter()
        .flatten()
        .map(|info| info.sequence)
        .collect()
}

fn wait_for_edges_snapshot(config: &Config, after: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(&newest) = edges_snapshots(config).last()
            && newest > after
        {
            return newest;
        }
        assert!(
            Instant::now() < deadline,
            "the snapshot agent wrote an edges' snapshot after {after}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The day's market-data session directories, in name order.
fn md_sessions(config: &Config) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(config.marketdata_dir())
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Every message of the market-data log in `dir`, with its origin.
fn md_messages(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let (store, _) = MessageStore::open(dir, marketdata::log::log_store_options()).unwrap();
    let mut reader = store.reader(1);
    let mut messages = Vec::new();
    while let Some(message) = reader.next().unwrap() {
        messages.push((message.origin, message.bytes.into_owned()));
    }
    messages
}

fn resume_config(dir: &Path) -> Config {
    let mut config = test_config(dir);
    config.snapshots.every_commands = 150;
    // Small: most of a re-login's replay comes from the files.
    config.server.stream_cache_bytes_max = 4096;
    config
}

#[test]
fn a_restart_resumes_the_streams_and_the_feed_from_a_snapshot() {
    let dir = scratch("resume");
    let config = resume_config(&dir);
    let running = start(&config);
    trade(&running, 1, 300);
    let snapshot = wait_for_edges_snapshot(&config, 0);
    let live = streams(&running);
    running.stop().unwrap();
    for sequence in edges_snapshots(&config) {
        check_edges_against_a_replay(&config, sequence);
    }
    assert!(
        live.iter().all(|stream| stream.len() > 300),
        "answers and fills"
    );
    let sessions = md_sessions(&config);
    let md_enabled = config.marketdata.enabled;
    let published = sessions.last().map(|dir| md_messages(dir));

    // Twice: the second restart resumes from what the first one wrote.
    for restart in 0..2 {
        let running = start(&config);
        assert!(
            running
                .description
                .contains("recovered from snapshot at sequence"),
            "restart {restart} starts from a snapshot: {}",
            running.description
        );
        assert!(snapshot > 0);
        for (index, login) in LOGINS.iter().enumerate() {
            let last = live[index].len() as u64;
            for from in [1, 2, last / 3, last / 2 + 1, last, last + 1] {
                let replayed = raw_stream(&mut trader(&running, login, from));
                let expected = &live[index][(from - 1) as usize..];
                assert!(
                    replayed == expected,
                    "restart {restart}: {login} from {from}: the bytes sent live"
                );
            }
        }
        running.stop().unwrap();
        if md_enabled {
            // A clean stop ended the session: the day continues under the
            // next generation's name, with the same messages.
            let now = md_sessions(&config);
            assert_eq!(now.len(), sessions.len() + restart + 1, "{now:?}");
            let newest = md_messages(now.last().unwrap());
            assert!(
                Some(&newest) == published.as_ref(),
                "restart {restart}: the market-data log equals the one published live"
            );
        }
    }

    // More trading after a resumed start, then a restart from sequence 1
    // (no snapshots) agrees with one from the newest snapshot.
    let running = start(&config);
    trade(&running, 1_000, 200);
    wait_for_edges_snapshot(&config, snapshot);
    let resumed_live = streams(&running);
    running.stop().unwrap();
    // Those snapshots were written by an agent whose edges resumed from an
    // edges' snapshot: they too equal a replay from sequence 1.
    for sequence in edges_snapshots(&config) {
        check_edges_against_a_replay(&config, sequence);
    }
    let copy = scratch("resume-copy");
    copy_dir(&dir, &copy);
    for path in std::fs::read_dir(copy.join("journal")).unwrap().flatten() {
        if path.file_name().to_string_lossy().ends_with(".snapshot") {
            std::fs::remove_file(path.path()).unwrap();
        }
    }
    let mut from_one = resume_config(&copy);
    from_one.snapshots.enabled = false;
    let running = start(&from_one);
    assert!(
        !running.description.contains("from snapshot"),
        "{}",
        running.description
    );
    assert!(
        streams(&running) == resumed_live,
        "a replay from sequence 1 agrees"
    );
    running.stop().unwrap();
    let running = start(&config);
    assert!(
        running
            .description
            .contains("recovered from snapshot at sequence")
    );
    assert!(
        streams(&running) == resumed_live,
        "and so does a resumed start"
    );
    running.stop().unwrap();
    if md_enabled {
        let a = md_messages(md_sessions(&config).last().unwrap());
        let b = md_messages(md_sessions(&from_one).last().unwrap());
        assert!(
            a == b,
            "the market-data logs agree ({} and {} messages)",
            a.len(),
            b.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&copy);
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

/// The snapshot agent on an I/O thread of its own (`engine_agents = []`)
/// instead of the engine's idle time: its snapshots, too, equal a replay,
/// and a restart resumes from them.
#[test]
fn a_snapshot_agent_on_its_own_thread_snapshots_and_a_restart_resumes() {
    let dir = scratch("resume-own-thread");
    let mut config = resume_config(&dir);
    config.server.engine_agents.clear();
    config
        .server
        .io_threads
        .push(tools::config::IoThreadSection {
            agents: vec![tools::config::IoAgentName::Snapshot],
            park_us: 100_000,
            ..tools::config::IoThreadSection::default()
        });
    let running = start(&config);
    // A new thread names itself once it runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !thread_names().iter().any(|name| name == "snapshot") {
        assert!(
            Instant::now() < deadline,
            "a thread of its own: {:?}",
            thread_names()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    trade(&running, 1, 300);
    assert!(wait_for_edges_snapshot(&config, 0) > 0);
    let live = streams(&running);
    running.stop().unwrap();
    for sequence in edges_snapshots(&config) {
        check_edges_against_a_replay(&config, sequence);
    }
    let running = start(&config);
    assert!(
        running
            .description
            .contains("recovered from snapshot at sequence"),
        "{}",
        running.description
    );
    assert!(streams(&running) == live, "the streams resume");
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Market data on an I/O thread of its own reads a ring of its own from
/// the engine (sharing the gateway's thread, the default, it takes the
/// gateway's releases through a tee instead): what it publishes live equals
/// what a restart regenerates from the journal, as in the default layout
/// (`a_restart_resumes_the_streams_and_the_feed_from_a_snapshot`).
#[test]
fn market_data_on_its_own_thread_publishes_what_the_journal_regenerates() {
    use tools::config::{IoAgentName, IoThreadSection};
    let dir = scratch("md-own-thread");
    let mut config = resume_config(&dir);
    config.server.io_threads = vec![
        IoThreadSection {
            agents: vec![IoAgentName::Gateway],
            ..IoThreadSection::default()
        },
        IoThreadSection {
            agents: vec![IoAgentName::Marketdata],
            ..IoThreadSection::default()
        },
    ];
    let running = start(&config);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !thread_names().iter().any(|name| name == "marketdata") {
        assert!(
            Instant::now() < deadline,
            "a thread of its own: {:?}",
            thread_names()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    trade(&running, 1, 200);
    running.stop().unwrap();
    let sessions = md_sessions(&config);
    let published = md_messages(sessions.last().unwrap());
    assert!(published.len() > 200, "{} messages", published.len());
    let running = start(&config);
    running.stop().unwrap();
    let now = md_sessions(&config);
    assert_eq!(now.len(), sessions.len() + 1, "{now:?}");
    assert!(
        md_messages(now.last().unwrap()) == published,
        "the market-data log equals the one published live"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_store_that_lost_its_files_sends_the_restart_back_to_sequence_1() {
    let dir = scratch("resume-lost");
    let config = resume_config(&dir);
    let running = start(&config);
    trade(&running, 1, 200);
    wait_for_edges_snapshot(&config, 0);
    let live = streams(&running);
    running.stop().unwrap();
    // The derived stores are gone: no snapshot can resume them, the
    // journal rebuilds them from sequence 1.
    std::fs::remove_dir_all(dir.join("streams")).unwrap();
    let running = start(&config);
    assert!(
        !running.description.contains("from snapshot"),
        "{}",
        running.description
    );
    assert!(streams(&running) == live, "rebuilt");
    running.stop().unwrap();
    // And the next restart resumes again.
    let running = start(&config);
    assert!(
        running
            .description
            .contains("recovered from snapshot at sequence")
    );
    assert!(streams(&running) == live, "resumed");
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The edges' snapshot at `sequence` equals the state of edges that
/// followed the journal from sequence 1 through it.
fn check_edges_against_a_replay(config: &Config, sequence: u64) {
    let dir = config.journal_dir();
    let saved = tools::edges::load(&dir, sequence).unwrap().unwrap();
    let (journal, _) = journal::Journal::open_read_only(&dir).unwrap();
    let (mut shadow, _) =
        engine::ShadowEngine::open_from(&dir, config.engine_config().unwrap(), &journal, None)
            .unwrap();
    let payload_max = config
        .marketdata
        .enabled
        .then_some(config.marketdata.payload_max);
    let mut edges =
        tools::edges::EdgesShadow::new(&tools::edges::directory_logins(config), payload_max)
            .unwrap();
    let mut reader = journal.reader(1);
    let mut events = Vec::new();
    while shadow.last_sequence() < sequence {
        let record = reader.next().unwrap().unwrap();
        shadow
            .apply_record_observed(&record, &mut events, &mut |applied| {
                engine::ShadowEdges::applied(&mut edges, applied).unwrap();
            })
            .unwrap();
    }
    let replayed = edges.state();
    assert!(
        !saved.gateway.streams.streams.is_empty(),
        "the snapshot at {sequence} has streams"
    );
    assert_eq!(
        postcard::to_allocvec(&replayed).unwrap(),
        postcard::to_allocvec(&saved).unwrap(),
        "the edges' snapshot at {sequence} is what a replay from sequence 1 gives"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn retention_archives_what_the_snapshot_covers_and_the_restart_resumes_without_it() {
    let dir = scratch("resume-retention");
    let mut config = resume_config(&dir);
    // Small segments, so that the early ones are wholly before a snapshot.
    config.journal.segment_bytes = 16 << 10;
    config.snapshots.retention = tools::config::RetentionName::Archive;
    config.snapshots.retention_window_commands = 100;
    let running = start(&config);
    trade(&running, 1, 300);
    let snapshot = wait_for_edges_snapshot(&config, 300);
    let live = streams(&running);
    running.stop().unwrap();
    let journal_dir = config.journal_dir();
    assert_eq!(
        journal::Journal::first_sequence_on_disk(&journal_dir).unwrap(),
        Some(1)
    );

    // The start resumes from a snapshot and archives the segments wholly
    // before it (less the window).
    let running = start(&config);
    assert!(
        running
            .description
            .contains("recovered from snapshot at sequence")
    );
    let first = journal::Journal::first_sequence_on_disk(&journal_dir)
        .unwrap()
        .unwrap();
    assert!(
        first > 1 && first <= snapshot,
        "the journal starts at {first} (snapshots up to {snapshot})"
    );
    let archived = std::fs::read_dir(dir.join("archive").join("journal"))
        .unwrap()
        .count();
    assert!(archived >= 1, "segments archived");
    assert!(streams(&running) == live, "the streams as sent live");
    running.stop().unwrap();

    // Again: it resumes; without the stores it cannot, and without the
    // early segments it cannot replay from sequence 1 either: refused.
    let running = start(&config);
    assert!(streams(&running) == live, "the streams as sent live");
    running.stop().unwrap();
    std::fs::remove_dir_all(dir.join("streams")).unwrap();
    let error = tools::serve::start(&config).unwrap_err().to_string();
    assert!(
        error.contains("no snapshot can resume the edges")
            && error.contains(&format!("starts at sequence {first}")),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
