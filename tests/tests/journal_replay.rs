//! Replay of a journal gives the state of the live engine that wrote it:
//! after a restart (recovery from the journal, with and without a snapshot
//! in between), by the operator's read-only replay from sequence 1 or from a
//! snapshot, and at any point `to` in between.

use std::path::PathBuf;

use engine::{Command, Engine, Event, Sequencer, replay};
use journal::{Durability, JournalOptions};
use tests::{CommandGenerator, ReferenceModel};

fn scratch(name: &str) -> PathBuf {
    tests::scratch_dir("journal-replay", name)
}

fn options(durability: Durability) -> JournalOptions {
    tests::small_journal_options(durability)
}

/// Drives a seeded stream through a sequencer; returns the state hash after
/// every command (index 0: before any).
fn drive(
    sequencer: &mut Sequencer,
    generator: &mut CommandGenerator,
    model: &mut ReferenceModel,
    commands: usize,
    hashes: &mut Vec<u128>,
) {
    let mut events: Vec<Event> = Vec::new();
    for _ in 0..commands {
        let command: Command = generator.next_command(model);
        events.clear();
        let (header, _) = sequencer.submit(&command, &mut events).expect("journaled");
        model.apply(header, &command);
        hashes.push(sequencer.engine().state_hash());
    }
}

#[test]
fn replay_and_restart_give_the_live_state_hash() {
    for (seed, durability) in [
        (11, Durability::Memory),
        (
            12,
            Durability::Fsync {
                flush_delay_us_max: 100,
            },
        ),
        (13, Durability::Memory),
    ] {
        let dir = scratch(&format!("seed{seed}"));
        let mut generator = CommandGenerator::new(seed);
        let config = generator.config();
        let mut model = ReferenceModel::new(&config);
        let mut hashes = vec![Engine::new(config).unwrap().state_hash()];

        let (mut sequencer, recovered) =
            Sequencer::open(&dir, config, options(durability)).unwrap();
        assert_eq!(recovered.replayed, 0);
        drive(&mut sequencer, &mut generator, &mut model, 700, &mut hashes);
        let snapshot = sequencer.write_snapshot().unwrap();
        assert_eq!(snapshot.sequence, 700);
        drive(&mut sequencer, &mut generator, &mut model, 600, &mut hashes);
        let live = sequencer.engine().state_hash();
        sequencer.close().unwrap();

        // A restart starts from the snapshot and replays the rest.
        let (mut sequencer, recovered) =
            Sequencer::open(&dir, config, options(durability)).unwrap();
        assert_eq!(recovered.state_hash, live, "seed {seed}");
        assert_eq!(recovered.snapshot.as_ref().map(|s| s.sequence), Some(700));
        assert_eq!(recovered.replayed, 600);
        // ...and goes on where it stopped.
        drive(&mut sequencer, &mut generator, &mut model, 200, &mut hashes);
        let live = sequencer.engine().state_hash();
        sequencer.close().unwrap();

        // The operator's replay, from 1 and from the snapshot, to the end and
        // to points before and after the snapshot.
        for use_snapshot in [false, true] {
            let replayed = replay(&dir, None, None, use_snapshot, &mut |_, _| {}).unwrap();
            assert_eq!(replayed.engine.state_hash(), live);
            assert_eq!(replayed.engine.last_sequence(), 1500);
            for to in [1, 350, 700, 701, 1499] {
                let replayed = replay(&dir, None, Some(to), use_snapshot, &mut |_, _| {}).unwrap();
                assert_eq!(replayed.engine.state_hash(), hashes[to as usize], "to {to}");
            }
        }
        // Removing the snapshot changes nothing but the work.
        std::fs::remove_file(&snapshot.path).unwrap();
        let (sequencer, recovered) = Sequencer::open(&dir, config, options(durability)).unwrap();
        assert_eq!(recovered.replayed, 1500);
        assert_eq!(recovered.state_hash, live);
        drop(sequencer);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_start_with_other_capacities_is_refused() {
    let dir = scratch("capacities");
    let generator = CommandGenerator::new(3);
    let config = generator.config();
    let (sequencer, _) = Sequencer::open(&dir, config, options(Durability::Memory)).unwrap();
    sequencer.close().unwrap();
    let mut other = config;
    other.orders_max += 1;
    let error = Sequencer::open(&dir, other, options(Durability::Memory)).unwrap_err();
    assert!(error.to_string().contains("capacities"), "{error}");

    // Without the file, a journal that has commands does not take whatever
    // is configured.
    let (mut sequencer, _) = Sequencer::open(&dir, config, options(Durability::Memory)).unwrap();
    let mut generator = CommandGenerator::new(3);
    let mut model = ReferenceModel::new(&config);
    drive(
        &mut sequencer,
        &mut generator,
        &mut model,
        10,
        &mut Vec::new(),
    );
    sequencer.close().unwrap();
    std::fs::remove_file(dir.join(engine::ENGINE_CONFIG_FILE)).unwrap();
    let error = Sequencer::open(&dir, other, options(Durability::Memory)).unwrap_err();
    assert!(error.to_string().contains("missing"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_snapshot_ahead_of_the_journal_is_refused() {
    let dir = scratch("ahead");
    let mut generator = CommandGenerator::new(5);
    let config = generator.config();
    let mut model = ReferenceModel::new(&config);
    let (mut sequencer, _) = Sequencer::open(&dir, config, options(Durability::Memory)).unwrap();
    let mut hashes = Vec::new();
    drive(&mut sequencer, &mut generator, &mut model, 300, &mut hashes);
    sequencer.write_snapshot().unwrap();
    sequencer.close().unwrap();
    journal::Journal::truncate(&dir, 200).unwrap();
    let error = Sequencer::open(&dir, config, options(Durability::Memory)).unwrap_err();
    assert!(error.to_string().contains("journal ends at 200"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
