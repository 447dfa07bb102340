//! The snapshot agent against the live engine: an engine restored from a
//! snapshot the agent took of its shadow, then fed the rest of the journal,
//! has the live engine's state hash at every sequence; the agent applies
//! (and so snapshots) nothing beyond the durable position, does bounded work
//! per pass, keeps the newest `snapshots_kept` files, and a restart of the
//! sequencer starts from its newest snapshot and replays only the tail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use engine::agent::{Agent, AgentError, AgentRunner, IdleStrategy, RunnerConfig};
use engine::{
    Applied, Command, Engine, EngineConfig, Event, RecoveryError, Sequencer, ShadowEdges,
    ShadowEngine, SnapshotAgent, SnapshotOptions,
};
use journal::{Durability, JournalOptions, SnapshotInfo, SnapshotStore};
use tests::{CommandGenerator, ReferenceModel, SimulationRng};

fn scratch(name: &str) -> PathBuf {
    tests::scratch_dir("snapshotter", name)
}

fn options(durability: Durability) -> JournalOptions {
    tests::small_journal_options(durability)
}

/// A seeded stream through the sequencer, recording the live state hash at
/// every sequence (`hashes[n]` after command `n`).
struct Live {
    sequencer: Sequencer,
    generator: CommandGenerator,
    model: ReferenceModel,
    hashes: Vec<u128>,
    /// `events[n]`: how many events command `n` wrote.
    events: Vec<u64>,
    config: EngineConfig,
}

impl Live {
    fn open(dir: &Path, seed: u64, durability: Durability) -> Live {
        let generator = CommandGenerator::new(seed);
        let config = generator.config();
        let (sequencer, _) = Sequencer::open(dir, config, options(durability)).unwrap();
        Live {
            sequencer,
            generator,
            model: ReferenceModel::new(&config),
            hashes: vec![Engine::new(config).unwrap().state_hash()],
            events: vec![0],
            config,
        }
    }

    fn drive(&mut self, commands: usize) {
        let mut events: Vec<Event> = Vec::new();
        for _ in 0..commands {
            let command: Command = self.generator.next_command(&self.model);
            events.clear();
            let (header, _) = self.sequencer.submit(&command, &mut events).unwrap();
            self.model.apply(header, &command);
            self.hashes.push(self.sequencer.engine().state_hash());
            self.events.push(events.len() as u64);
        }
    }

    fn last_sequence(&self) -> u64 {
        self.sequencer.engine().last_sequence()
    }
}

fn snapshot_files(dir: &Path) -> Vec<SnapshotInfo> {
    let list = SnapshotStore::new(dir).list().unwrap();
    list.into_iter().map(Result::unwrap).collect()
}

/// Restores `info` and replays the rest of the live journal, checking the
/// state hash against the live one at the snapshot and after every record.
fn check_restore_and_replay(live: &Live, info: &SnapshotInfo) {
    let body = SnapshotStore::new(info.path.parent().unwrap())
        .load(info)
        .unwrap();
    let engine = Engine::restore(live.config, &body).unwrap();
    assert_eq!(engine.last_sequence(), info.sequence);
    let hash = live.hashes[info.sequence as usize];
    assert_eq!(info.state_hash, hash, "snapshot {}", info.sequence);
    assert_eq!(engine.state_hash(), hash, "restored {}", info.sequence);
    let mut shadow = ShadowEngine::from_engine(engine, info.timestamp_ns);
    let mut reader = live.sequencer.journal().reader(info.sequence + 1);
    while let Some(record) = reader.next().unwrap() {
        shadow.apply_record(&record).unwrap();
        assert_eq!(
            shadow.engine().state_hash(),
            live.hashes[record.sequence as usize],
            "from snapshot {}, at sequence {}",
            info.sequence,
            record.sequence
        );
    }
    assert_eq!(shadow.last_sequence(), live.last_sequence());
}

/// Passes until the agent finishes; how many it took.
fn finish(agent: &mut SnapshotAgent) -> usize {
    for pass in 1..100_000 {
        match agent.do_work() {
            Ok(_) => std::thread::sleep(Duration::from_micros(50)),
            Err(AgentError::Finished) => return pass,
            Err(error) => panic!("{error}"),
        }
    }
    panic!("the agent did not finish");
}

#[test]
fn snapshots_of_the_shadow_restore_to_the_live_state_and_stay_durable() {
    for seed in [21, 22, 23] {
        let dir = scratch(&format!("live{seed}"));
        let mut live = Live::open(&dir, seed, Durability::Memory);
        let durable = Arc::new(AtomicU64::new(0));
        let snapshot_options = SnapshotOptions {
            snapshot_every_commands: 97,
            snapshot_interval: None,
            snapshots_kept: 1_000,
            records_per_pass_max: 16,
        };
        let (mut agent, control, started) = SnapshotAgent::open_with_durable(
            &dir,
            live.config,
            live.sequencer.journal(),
            snapshot_options,
            Arc::clone(&durable),
        )
        .unwrap();
        assert!(started.is_none());
        let mut rng = SimulationRng::new(seed);
        for _ in 0..120 {
            live.drive(rng.below(40) as usize);
            // The durable position lags the journal by a random amount.
            let end = live.last_sequence();
            let lag = rng.below(30).min(end);
            let durable_now = durable.load(Ordering::Relaxed).max(end - lag);
            durable.store(durable_now, Ordering::Release);
            for _ in 0..rng.below(4) {
                let before = control.applied_sequence();
                let work = agent.do_work().unwrap();
                let after = control.applied_sequence();
                assert!(after - before <= 16, "bounded: {before} -> {after}");
                assert!(work <= 16 + 2, "work {work}");
                assert!(
                    after <= durable_now,
                    "applied {after} past durable {durable_now}"
                );
                for info in snapshot_files(&dir) {
                    assert!(info.sequence <= durable_now, "snapshot {}", info.sequence);
                }
            }
            // Time for a snapshot in flight to be written.
            std::thread::sleep(Duration::from_micros(300));
        }
        durable.store(live.last_sequence(), Ordering::Release);
        control.stop();
        finish(&mut agent);
        agent.on_close();
        assert_eq!(control.applied_sequence(), live.last_sequence());
        assert_eq!(control.last_error(), None);
        let files = snapshot_files(&dir);
        eprintln!("seed {seed}: {} snapshots", files.len());
        assert!(files.len() >= 2, "seed {seed}: {} snapshots", files.len());
        assert_eq!(files.len() as u64, control.snapshots_written());
        for info in &files {
            check_restore_and_replay(&live, info);
        }
        live.sequencer.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn on_a_runner_thread_it_keeps_the_newest_and_a_restart_replays_only_the_tail() {
    let dir = scratch("runner");
    let durability = Durability::Fsync {
        flush_delay_us_max: 200,
    };
    let mut live = Live::open(&dir, 31, durability);
    live.drive(50);
    let snapshot_options = SnapshotOptions {
        snapshot_every_commands: 60,
        snapshot_interval: Some(Duration::from_millis(5)),
        snapshots_kept: 2,
        records_per_pass_max: 32,
    };
    let (agent, control, _) = SnapshotAgent::open(
        &dir,
        live.config,
        live.sequencer.journal(),
        snapshot_options,
    )
    .unwrap();
    let runner_config = RunnerConfig {
        core: None,
        idle: IdleStrategy::SpinPark {
            park: Duration::from_millis(1),
        },
        ..RunnerConfig::default()
    };
    let handle = AgentRunner::new(agent, runner_config).spawn().unwrap();
    for _ in 0..30 {
        live.drive(40);
        std::thread::sleep(Duration::from_millis(2));
        // Whatever was snapshotted was durable first (the position only
        // grows, so it is read after the snapshots).
        let newest_file = snapshot_files(&dir).last().map_or(0, |info| info.sequence);
        let newest_written = control.last_snapshot_sequence();
        let durable = live.sequencer.durable().sequence();
        assert!(newest_file <= durable, "{newest_file} > {durable}");
        assert!(newest_written <= durable, "{newest_written} > {durable}");
    }
    let end = live.last_sequence();
    assert!(
        live.sequencer
            .durable()
            .wait_for(end, Duration::from_secs(10))
    );
    control.stop();
    let (agent, result) = handle.join();
    assert!(
        matches!(result, Ok(()) | Err(AgentError::Finished)),
        "{result:?}"
    );
    assert_eq!(agent.shadow().last_sequence(), end);
    assert_eq!(
        agent.shadow().engine().state_hash(),
        live.hashes[end as usize]
    );
    assert_eq!(control.last_error(), None);
    assert!(
        control.snapshots_written() >= 3,
        "{}",
        control.snapshots_written()
    );

    let files = snapshot_files(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    let newest = files[1].sequence;
    assert_eq!(newest, control.last_snapshot_sequence());
    for info in &files {
        check_restore_and_replay(&live, info);
    }
    live.drive(25);
    let end = live.last_sequence();
    let live_hash = live.hashes[end as usize];
    let config = live.config;
    live.sequencer.close().unwrap();

    let (sequencer, recovered) = Sequencer::open(&dir, config, options(durability)).unwrap();
    assert_eq!(recovered.snapshot.map(|info| info.sequence), Some(newest));
    assert_eq!(recovered.replayed, end - newest);
    assert_eq!(recovered.state_hash, live_hash);
    sequencer.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_restarted_agent_starts_from_the_newest_snapshot() {
    let dir = scratch("restart");
    let mut live = Live::open(&dir, 41, Durability::Memory);
    live.drive(300);
    let snapshot = live.sequencer.write_snapshot().unwrap();
    live.drive(100);
    let (mut agent, control, started) = SnapshotAgent::open(
        &dir,
        live.config,
        live.sequencer.journal(),
        SnapshotOptions {
            snapshot_every_commands: 1_000,
            ..SnapshotOptions::default()
        },
    )
    .unwrap();
    assert_eq!(started, Some(snapshot.clone()));
    assert_eq!(control.applied_sequence(), 300);
    control.stop();
    finish(&mut agent);
    assert_eq!(agent.shadow().last_sequence(), 400);
    assert_eq!(agent.shadow().engine().state_hash(), live.hashes[400]);
    // No snapshot was due.
    assert_eq!(snapshot_files(&dir), vec![snapshot.clone()]);

    // With the durable position before that snapshot, the shadow does not
    // start from it.
    let (agent, _, started) = SnapshotAgent::open_with_durable(
        &dir,
        live.config,
        live.sequencer.journal(),
        SnapshotOptions::default(),
        Arc::new(AtomicU64::new(250)),
    )
    .unwrap();
    assert_eq!(started, None);
    assert_eq!(agent.shadow().last_sequence(), 0);

    // A shadow takes records in sequence only.
    let mut shadow = ShadowEngine::from_engine(Engine::new(live.config).unwrap(), 0);
    let mut reader = live.sequencer.journal().reader(2);
    let record = reader.next().unwrap().unwrap();
    let error = shadow.apply_record(&record).unwrap_err();
    assert!(matches!(error, RecoveryError::Gap { .. }), "{error}");
    assert_eq!(shadow.last_sequence(), 0);
    live.sequencer.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Edges that record how many events each command they saw wrote: their
/// snapshot is those counts, from sequence 1.
struct Recorder {
    events: Vec<u64>,
}

impl ShadowEdges for Recorder {
    fn applied(&mut self, applied: &Applied<'_>) -> Result<(), String> {
        assert_eq!(
            applied.header.sequence,
            self.events.len() as u64 + 1,
            "in order"
        );
        self.events.push(applied.events.len() as u64);
        Ok(())
    }

    fn snapshot(&mut self) -> Vec<u8> {
        self.events.iter().flat_map(|n| n.to_le_bytes()).collect()
    }
}

fn recorded(body: &[u8]) -> Vec<u64> {
    body.chunks(8)
        .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap()))
        .collect()
}

#[test]
fn the_edges_follow_every_command_and_are_snapshotted_beside_the_engine() {
    let dir = scratch("edges");
    let mut live = Live::open(&dir, 31, Durability::Memory);
    let snapshot_options = SnapshotOptions {
        snapshot_every_commands: 50,
        snapshot_interval: None,
        snapshots_kept: 1_000,
        records_per_pass_max: 16,
    };
    let run = |live: &mut Live, from: Option<u64>, commands: usize| {
        let events = match from {
            None => Vec::new(),
            Some(sequence) => {
                let (_, body) = SnapshotStore::edges(&dir)
                    .load_at(sequence)
                    .unwrap()
                    .unwrap();
                recorded(&body)
            }
        };
        let (mut agent, control) = SnapshotAgent::open_with_edges(
            &dir,
            live.config,
            live.sequencer.journal(),
            snapshot_options,
            from,
            Box::new(Recorder { events }),
        )
        .unwrap();
        assert_eq!(control.applied_sequence(), from.unwrap_or(0));
        live.drive(commands);
        live.sequencer.journal().sync().unwrap();
        control.stop();
        finish(&mut agent);
        agent.on_close();
        assert_eq!(control.last_error(), None);
    };
    run(&mut live, None, 170);
    let first: Vec<u64> = SnapshotStore::edges(&dir)
        .list()
        .unwrap()
        .into_iter()
        .map(|info| info.unwrap().sequence)
        .collect();
    let engine: Vec<u64> = snapshot_files(&dir)
        .iter()
        .map(|info| info.sequence)
        .collect();
    assert_eq!(
        first, engine,
        "an edges' snapshot beside every engine snapshot"
    );
    assert!(first.len() >= 2, "{first:?}");
    // A second agent resumes the edges from the oldest one.
    run(&mut live, Some(first[0]), 120);
    let all = SnapshotStore::edges(&dir).list().unwrap();
    assert!(all.len() > first.len());
    for info in all.into_iter().map(Result::unwrap) {
        let (_, body) = SnapshotStore::edges(&dir)
            .load_at(info.sequence)
            .unwrap()
            .unwrap();
        assert_eq!(
            recorded(&body),
            live.events[1..=info.sequence as usize],
            "the edges at {} saw every command's events",
            info.sequence
        );
        assert_eq!(info.state_hash, live.hashes[info.sequence as usize]);
    }
    // A shadow from an edges' snapshot that is not there is refused.
    let missing = SnapshotAgent::open_with_edges(
        &dir,
        live.config,
        live.sequencer.journal(),
        snapshot_options,
        Some(7),
        Box::new(Recorder { events: Vec::new() }),
    );
    assert!(matches!(missing, Err(RecoveryError::Gap { .. })));
    live.sequencer.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
