//! An agent in the engine thread's idle time
//! ([`engine::runner::EngineAgent::with_background`]): it gets a turn only
//! after a pass that found no command, its failure is kept while the
//! engine goes on, and it comes back unclosed from a stop; the snapshot
//! agent run there follows the live engine and snapshots it. The same idle
//! passes make the journal's next segment a page at a time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use engine::agent::{Agent, AgentError, AgentRunner, IdleStrategy, RunnerConfig};
use engine::runner::{EngineAgent, EngineControl, EngineHandle, LoopConfig, Output, Request};
use engine::{Command, Engine, Sequencer, SnapshotAgent, SnapshotOptions};
use journal::{Durability, Preparation, SnapshotStore};
use tests::{CommandGenerator, ReferenceModel};

fn scratch(name: &str) -> PathBuf {
    tests::scratch_dir("engine-background", name)
}

/// What a probe saw, shared with the test.
#[derive(Default)]
struct Seen {
    turns: AtomicUsize,
    /// A turn found a command waiting in the engine's input ring.
    turn_with_input: AtomicBool,
    closed: AtomicBool,
}

/// A background agent that counts its turns, looks at the engine's input
/// ring on each, and ends as told after `end_after` turns.
struct Probe {
    seen: Arc<Seen>,
    waiting: Arc<AtomicUsize>,
    end_after: Option<(usize, fn() -> AgentError)>,
}

impl Agent for Probe {
    fn role(&self) -> &str {
        "probe"
    }

    fn do_work(&mut self) -> Result<usize, AgentError> {
        let turns = self.seen.turns.fetch_add(1, Ordering::AcqRel) + 1;
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.seen.turn_with_input.store(true, Ordering::Release);
        }
        match self.end_after {
            Some((after, ended)) if turns >= after => Err(ended()),
            _ => Ok(1),
        }
    }

    fn on_close(&mut self) {
        self.seen.closed.store(true, Ordering::Release);
    }
}

/// A sequencer on a fresh journal (16 KiB segments, not prefaulted, the
/// next one made as `preparation` says), with its command generator and
/// its directory.
fn open(name: &str, preparation: Preparation) -> (Sequencer, CommandGenerator, PathBuf) {
    let generator = CommandGenerator::new(7);
    let dir = scratch(name);
    let options = journal::JournalOptions {
        preparation,
        ..tests::small_journal_options(Durability::Memory)
    };
    let (sequencer, _) = Sequencer::open(&dir, generator.config(), options).unwrap();
    (sequencer, generator, dir)
}

/// An engine agent on rings of its own, for a test that drives its passes
/// itself (batches of 8).
struct Driven {
    agent: EngineAgent,
    control: EngineControl,
    input: engine::Producer<Request>,
    output: engine::Consumer<Output>,
    generator: CommandGenerator,
    model: ReferenceModel,
    dir: PathBuf,
}

fn driven(name: &str, preparation: Preparation) -> Driven {
    let (sequencer, generator, dir) = open(name, preparation);
    let model = ReferenceModel::new(&generator.config());
    let (input, input_consumer) = engine::ring::<Request>(64);
    let (output, output_consumer) = engine::ring::<Output>(4096);
    let (agent, control) = EngineAgent::new(sequencer, input_consumer, vec![output], vec![], 8);
    Driven {
        agent,
        control,
        input,
        output: output_consumer,
        generator,
        model,
        dir,
    }
}

/// Queues `count` generated commands.
fn push_commands(
    input: &mut engine::Producer<Request>,
    generator: &mut CommandGenerator,
    model: &ReferenceModel,
    count: usize,
) {
    for _ in 0..count {
        let command: Command = generator.next_command(model);
        let request = Request {
            command,
            origin: engine::runner::Origin::NONE,
        };
        assert!(input.try_push(request).is_ok());
    }
}

/// The journal files in `dir` whose names end with `suffix`.
fn files_ending(dir: &std::path::Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(suffix)
        })
        .count()
}

#[test]
fn the_background_agent_gets_a_turn_only_when_no_command_waits() {
    let Driven {
        agent,
        mut input,
        output: mut output_consumer,
        mut generator,
        model,
        ..
    } = driven("turns", Preparation::Thread);
    let seen = Arc::new(Seen::default());
    let waiting = Arc::new(AtomicUsize::new(0));
    let probe = Probe {
        seen: Arc::clone(&seen),
        waiting: Arc::clone(&waiting),
        end_after: None,
    };
    let mut agent = agent.with_background(Box::new(probe));
    agent.on_start().unwrap();
    // Idle: each pass is one turn of the background agent.
    assert_eq!(agent.do_work().unwrap(), 1);
    assert_eq!(agent.do_work().unwrap(), 1);
    assert_eq!(seen.turns.load(Ordering::Acquire), 2);
    // 20 commands waiting, taken 8 per pass: no turn until all are taken.
    push_commands(&mut input, &mut generator, &model, 20);
    waiting.store(20, Ordering::Release);
    for taken in [8, 8, 4] {
        assert_eq!(agent.do_work().unwrap(), taken);
        waiting.fetch_sub(taken, Ordering::AcqRel);
    }
    assert_eq!(seen.turns.load(Ordering::Acquire), 2);
    assert_eq!(agent.do_work().unwrap(), 1);
    assert_eq!(seen.turns.load(Ordering::Acquire), 3);
    assert!(!seen.turn_with_input.load(Ordering::Acquire));
    let mut published = 0;
    while output_consumer.try_pop().is_some() {
        published += 1;
    }
    assert!(published >= 20, "every command published ({published})");
    assert!(!seen.closed.load(Ordering::Acquire));
}

#[test]
fn the_engines_idle_passes_make_the_journals_next_segment() {
    let Driven {
        agent,
        mut input,
        output: mut output_consumer,
        mut generator,
        model,
        dir,
        ..
    } = driven("prepare", Preparation::Steps);
    let seen = Arc::new(Seen::default());
    let probe = Probe {
        seen: Arc::clone(&seen),
        waiting: Arc::new(AtomicUsize::new(0)),
        end_after: None,
    };
    let mut agent = agent.with_background(Box::new(probe));
    agent.on_start().unwrap();
    // Each idle pass: a step of the next segment (16 KiB, not prefaulted:
    // four pages of zeros, then the mapping), then a turn of the probe.
    for _ in 0..5 {
        assert_eq!(agent.do_work().unwrap(), 2);
    }
    assert_eq!(agent.do_work().unwrap(), 1, "the segment is made");
    // Batches of commands across roll-overs, each followed by idle passes
    // until the next segment is made again: every roll-over finds it ready.
    while files_ending(&dir, ".journal") < 4 {
        push_commands(&mut input, &mut generator, &model, 8);
        assert_eq!(agent.do_work().unwrap(), 8);
        while output_consumer.try_pop().is_some() {}
        while agent.do_work().unwrap() > 1 {}
    }
    let sequencer = agent.into_sequencer();
    assert_eq!(sequencer.journal().unfinished_roll_overs(), 0);
    sequencer.close().unwrap();
}

/// The journal refuses a command (its next segment could not be made):
/// the engine fails with the journal's reason, and its control keeps it.
#[test]
fn a_refused_command_stops_the_engine_with_the_journals_reason() {
    let Driven {
        mut agent,
        control,
        mut input,
        output: mut output_consumer,
        mut generator,
        model,
        dir,
    } = driven("refused", Preparation::Steps);
    agent.on_start().unwrap();
    // The zeros of the 16 KiB segment, then the file cut to an odd length
    // before the step that maps it.
    for _ in 0..4 {
        assert_eq!(agent.do_work().unwrap(), 1);
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("segment-00000002.next"))
        .unwrap()
        .set_len(100)
        .unwrap();
    assert_eq!(agent.do_work().unwrap(), 1, "the failed step");
    assert_eq!(agent.do_work().unwrap(), 0);
    assert!(control.failure().is_none());
    let failure = loop {
        push_commands(&mut input, &mut generator, &model, 8);
        match agent.do_work() {
            Ok(taken) => assert_eq!(taken, 8),
            Err(AgentError::Failed(error)) => break error.to_string(),
            Err(other) => panic!("{other:?}"),
        }
        while output_consumer.try_pop().is_some() {}
    };
    assert!(failure.contains("100 bytes"), "{failure}");
    assert_eq!(control.failure().as_deref(), Some(failure.as_str()));
    agent.into_sequencer().close().unwrap();
}

fn failed() -> AgentError {
    AgentError::Failed(std::io::Error::other("the probe gave up"))
}

/// An engine thread on a fresh journal, with a probe in its idle time and
/// no output ring; the producer of its (empty) input ring.
fn spawn_with_probe(
    name: &str,
    end_after: Option<(usize, fn() -> AgentError)>,
) -> (EngineHandle, Arc<Seen>, engine::Producer<Request>) {
    let (sequencer, _, _) = open(name, Preparation::Thread);
    let (input, input_consumer) = engine::ring::<Request>(64);
    let seen = Arc::new(Seen::default());
    let probe = Probe {
        seen: Arc::clone(&seen),
        waiting: Arc::new(AtomicUsize::new(0)),
        end_after,
    };
    let handle = engine::runner::spawn_with_background(
        sequencer,
        input_consumer,
        Vec::new(),
        Vec::new(),
        LoopConfig::default(),
        Some(Box::new(probe)),
    )
    .unwrap();
    (handle, seen, input)
}

#[test]
fn a_failed_background_agent_is_closed_and_kept_while_the_engine_goes_on() {
    let (handle, seen, _input) = spawn_with_probe("failed", Some((3, failed)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while handle.background_failure().is_none() {
        assert!(Instant::now() < deadline, "the failure was not kept");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        handle.background_failure().as_deref(),
        Some("the probe gave up")
    );
    assert!(seen.closed.load(Ordering::Acquire));
    assert!(!handle.is_finished(), "the engine goes on");
    let (sequencer, background) = handle.stop_with_background();
    assert!(background.is_none());
    assert_eq!(seen.turns.load(Ordering::Acquire), 3);
    sequencer.close().unwrap();
}

#[test]
fn a_stop_gives_the_background_agent_back_unclosed() {
    let (handle, seen, _input) = spawn_with_probe("stop", None);
    while seen.turns.load(Ordering::Acquire) < 10 {
        std::thread::yield_now();
    }
    let (sequencer, background) = handle.stop_with_background();
    assert!(background.is_some());
    assert!(!seen.closed.load(Ordering::Acquire));
    assert!(handle_closes(background.unwrap(), &seen));
    sequencer.close().unwrap();
}

fn handle_closes(mut background: Box<dyn Agent + Send>, seen: &Seen) -> bool {
    background.on_close();
    seen.closed.load(Ordering::Acquire)
}

/// Drains an output ring on a thread of its own (the engine waits for a
/// full ring's consumer), until told to stop.
fn drain(
    mut consumer: engine::Consumer<Output>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Acquire) {
            if consumer.try_pop().is_none() {
                std::thread::yield_now();
            }
        }
    })
}

#[test]
fn the_snapshot_agent_in_the_engine_threads_idle_time_snapshots_the_live_state() {
    let dir = scratch("snapshots");
    let mut generator = CommandGenerator::new(11);
    let config = generator.config();
    let options = tests::small_journal_options(Durability::Memory);
    let (sequencer, _) = Sequencer::open(&dir, config, options).unwrap();
    let snapshot_options = SnapshotOptions {
        snapshot_every_commands: 100,
        snapshot_interval: None,
        snapshots_kept: 2,
        records_per_pass_max: 4,
    };
    let (agent, control, _) =
        SnapshotAgent::open(&dir, config, sequencer.journal(), snapshot_options).unwrap();
    let (mut input, input_consumer) = engine::ring::<Request>(1024);
    let (output, output_consumer) = engine::ring::<Output>(1 << 14);
    let stop_draining = Arc::new(AtomicBool::new(false));
    let drainer = drain(output_consumer, Arc::clone(&stop_draining));
    let handle = engine::runner::spawn_with_background(
        sequencer,
        input_consumer,
        vec![output],
        Vec::new(),
        LoopConfig {
            idle: IdleStrategy::BusySpin,
            ..LoopConfig::default()
        },
        Some(Box::new(agent)),
    )
    .unwrap();
    // The model only guides the generator (its timestamps are not the
    // engine's; a command it misjudges is rejected by the engine, which is
    // still a command journaled and followed).
    let mut model = ReferenceModel::new(&config);
    let commands = 1_000u64;
    for sequence in 1..=commands {
        let command: Command = generator.next_command(&model);
        model.apply(
            engine::CommandHeader {
                sequence,
                timestamp_ns: 0,
            },
            &command,
        );
        let mut request = Request {
            command,
            origin: engine::runner::Origin::NONE,
        };
        loop {
            match input.try_push(request) {
                Ok(()) => break,
                Err(back) => request = back,
            }
            std::thread::yield_now();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while control.applied_sequence() < commands {
        assert!(Instant::now() < deadline, "the agent fell behind");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (sequencer, background) = handle.stop_with_background();
    stop_draining.store(true, Ordering::Release);
    drainer.join().unwrap();
    let live_hash = sequencer.engine().state_hash();
    let last = sequencer.engine().last_sequence();
    assert_eq!(last, commands);
    sequencer.close().unwrap();
    // Finish it where it stands, as `serve` does after the engine stops.
    control.stop();
    let background = background.expect("the agent is still running");
    let (_, ended) = AgentRunner::new(background, RunnerConfig::default()).run();
    ended.unwrap();
    assert!(control.last_error().is_none());
    assert!(control.snapshots_written() >= 2);
    assert_eq!(control.applied_sequence(), last);
    let snapshots = SnapshotStore::new(&dir);
    let newest = snapshots
        .list()
        .unwrap()
        .into_iter()
        .flatten()
        .last()
        .unwrap();
    assert_eq!(newest.sequence, 1_000);
    let (info, body) = snapshots.load_at(newest.sequence).unwrap().unwrap();
    let restored = Engine::restore(config, &body).unwrap();
    assert_eq!(restored.state_hash(), live_hash);
    assert_eq!(info.state_hash, live_hash);
}
