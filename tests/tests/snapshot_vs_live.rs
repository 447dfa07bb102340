//! Snapshots against the live engine, on the seeded command streams of the
//! engine-versus-reference test.
//!
//! LONG MODE (not run by default):
//!   SNAPSHOT_SIM_CASES=20000 SNAPSHOT_SIM_SEED=random \
//!     cargo test -p tests --test snapshot_vs_live -- --nocapture
//! Reproduce a failing stream (the failure message prints this line):
//!   SNAPSHOT_SIM_SEED=<seed> SNAPSHOT_SIM_CASES=1 SNAPSHOT_SIM_COMMANDS=<n> \
//!     cargo test -p tests --test snapshot_vs_live
//!
//! Environment variables:
//! - `SNAPSHOT_SIM_CASES`: number of streams (seeds), default 2 000 (about 8 s on two cores);
//! - `SNAPSHOT_SIM_COMMANDS`: commands per stream, default 400 (streams of
//!   every seed ≡ 19 mod 20 are ten times longer, to reach evicted funding
//!   records and drifted bands);
//! - `SNAPSHOT_SIM_SEED`: first seed, a number or `random` (drawn from the
//!   clock and printed), default 0; stream `i` uses seed `first + i`.
//!
//! Each stream is applied to a live engine (the reference model only drives
//! the generator). At a few seeded points, including sometimes the very
//! start and the very end, the live engine is snapshotted and restored; the
//! restored engine must have the live `state_hash` and `last_sequence`, pass
//! `check_invariants`, and snapshot to the same bytes. From then on it runs
//! in lockstep with the live engine: the same status, the same events and
//! the same `state_hash` after every command, and the same snapshot bytes at
//! the end. Each snapshot is also damaged (truncated, bit-flipped,
//! extended) and restored: that must never panic, and may succeed only by
//! restoring exactly the undamaged state. Restoring under larger capacities
//! gives the same hash; under too small an `orders_max`, or another fee
//! account, a typed error.

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use engine::{
    AccountId, Command, CommandHeader, Engine, EngineConfig, Event, SnapshotError, Status,
};
use tests::{
    CommandGenerator, ReferenceModel, SimulationRng, environment_number, environment_seed,
    run_seeds, stream_length,
};

const CASES_DEFAULT: u64 = 2_000;
const COMMANDS_DEFAULT: u64 = 400;
/// Snapshot points drawn per stream (fewer if two draws coincide).
const SNAPSHOTS_PER_STREAM: u64 = 4;
/// Damaged copies restored per snapshot.
const DAMAGES_PER_SNAPSHOT: u64 = 12;
/// Mixed into the stream's seed for the choices of this test, so that they
/// do not repeat the generator's.
const CHOICE_SEED_MIX: u64 = 0x5A17_5A17_5A17_5A17;

/// A restored engine running beside the live one.
struct Follower {
    engine: Engine,
    /// The number of commands applied when the snapshot was taken.
    taken_after: u64,
}

/// Generates the stream of `seed` and checks every snapshot taken of it;
/// the number of snapshots taken.
fn run_case(seed: u64, commands_setting: u64) -> Result<u64, String> {
    let mut generator = CommandGenerator::new(seed);
    let config = generator.config();
    let mut model = ReferenceModel::new(&config);
    let mut live = Engine::new(config).expect("the generator's configuration is valid");
    let mut rng = SimulationRng::new(seed ^ CHOICE_SEED_MIX);
    let length = stream_length(seed, commands_setting);
    let points: BTreeSet<u64> = (0..SNAPSHOTS_PER_STREAM)
        .map(|_| rng.below(length + 1))
        .collect();
    let mut followers: Vec<Follower> = Vec::new();
    for applied in 0..=length {
        if points.contains(&applied) {
            followers.push(snapshot_and_restore(&live, config, &mut rng, applied)?);
        }
        if applied == length {
            break;
        }
        let command = generator.next_command(&model);
        let header = CommandHeader {
            sequence: applied + 1,
            timestamp_ns: 1_700_000_000_000_000_000 + applied * 1_000,
        };
        model.apply(header, &command);
        let mut events = Vec::new();
        let status = live.apply(header, &command, &mut events);
        let hash = live.state_hash();
        for follower in &mut followers {
            follow(follower, header, &command, (status, &events), hash)?;
        }
    }
    let bytes = live.snapshot();
    for follower in &followers {
        follower.engine.check_invariants().map_err(|violation| {
            format!(
                "restored after {}: invariant violated at the end: {violation}",
                follower.taken_after
            )
        })?;
        if follower.engine.snapshot() != bytes {
            return Err(format!(
                "restored after {}: its snapshot at the end differs from the live engine's",
                follower.taken_after
            ));
        }
    }
    Ok(followers.len() as u64)
}

/// One command on a restored engine, which must answer as the live one did.
fn follow(
    follower: &mut Follower,
    header: CommandHeader,
    command: &Command,
    live: (Status, &[Event]),
    live_hash: u128,
) -> Result<(), String> {
    let mut events = Vec::new();
    let status = follower.engine.apply(header, command, &mut events);
    if status != live.0 || events != live.1 {
        return Err(format!(
            "restored after {} disagrees on command {} {command:?}:\n\
             live     {:?} {:?}\nrestored {status:?} {events:?}",
            follower.taken_after, header.sequence, live.0, live.1
        ));
    }
    if follower.engine.state_hash() != live_hash {
        return Err(format!(
            "restored after {}: state_hash differs after command {} {command:?}",
            follower.taken_after, header.sequence
        ));
    }
    Ok(())
}

/// Snapshots `live`, checks the restored engine and damaged copies, and
/// returns the restored engine to follow the rest of the stream.
fn snapshot_and_restore(
    live: &Engine,
    config: EngineConfig,
    rng: &mut SimulationRng,
    applied: u64,
) -> Result<Follower, String> {
    let context = |text: String| format!("snapshot after {applied} commands: {text}");
    let bytes = live.snapshot();
    if live.snapshot() != bytes {
        return Err(context("two snapshots of one state differ".to_string()));
    }
    let engine = restore_guarded(config, &bytes)
        .map_err(context)?
        .map_err(|error| context(format!("restore failed: {error}")))?;
    if engine.state_hash() != live.state_hash() || engine.last_sequence() != live.last_sequence() {
        return Err(context(
            "restored hash or last sequence differs".to_string(),
        ));
    }
    engine
        .check_invariants()
        .map_err(|violation| context(format!("restored invariant violated: {violation}")))?;
    if engine.snapshot() != bytes {
        return Err(context("snapshot(restore(x)) != x".to_string()));
    }
    check_damaged(live, config, rng, &bytes).map_err(context)?;
    check_capacities(live, config, &bytes).map_err(context)?;
    Ok(Follower {
        engine,
        taken_after: applied,
    })
}

/// `Engine::restore`, with a panic turned into a failure.
fn restore_guarded(
    config: EngineConfig,
    bytes: &[u8],
) -> Result<Result<Engine, SnapshotError>, String> {
    catch_unwind(AssertUnwindSafe(|| Engine::restore(config, bytes)))
        .map_err(|_| format!("restore panicked on {} bytes", bytes.len()))
}

/// Truncated, bit-flipped and extended copies: an error, or exactly the
/// undamaged state.
fn check_damaged(
    live: &Engine,
    config: EngineConfig,
    rng: &mut SimulationRng,
    bytes: &[u8],
) -> Result<(), String> {
    let size = bytes.len() as u64;
    for damage in 0..DAMAGES_PER_SNAPSHOT {
        let mut damaged = bytes.to_vec();
        let description = match damage % 4 {
            0 => {
                damaged.truncate(rng.below(size) as usize);
                format!("truncated to {}", damaged.len())
            }
            1 => {
                damaged.push(rng.below(256) as u8);
                "one byte appended".to_string()
            }
            _ => {
                let bit = rng.below(size * 8);
                damaged[(bit / 8) as usize] ^= 1 << (bit % 8);
                format!("bit {bit} flipped")
            }
        };
        if let Ok(restored) = restore_guarded(config, &damaged)? {
            let same = restored.state_hash() == live.state_hash()
                && restored.last_sequence() == live.last_sequence()
                && restored.snapshot() == bytes;
            if !same {
                return Err(format!(
                    "{description}: restored a state other than the snapshot's"
                ));
            }
        }
    }
    Ok(())
}

/// Larger capacities restore the same state; too small an `orders_max`, or
/// another fee account, is refused with its typed error.
fn check_capacities(live: &Engine, config: EngineConfig, bytes: &[u8]) -> Result<(), String> {
    let larger = EngineConfig {
        accounts_max: config.accounts_max * 2,
        orders_max: config.orders_max * 4,
        price_levels_max: config.price_levels_max * 2,
        transfer_records_max: config.transfer_records_max * 2,
        ..config
    };
    match restore_guarded(larger, bytes)? {
        Ok(restored) if restored.state_hash() == live.state_hash() => {}
        Ok(_) => return Err("larger capacities restore another hash".to_string()),
        Err(error) => return Err(format!("larger capacities refused: {error}")),
    }
    let open = live.open_orders();
    if open > 1 {
        let smaller = EngineConfig {
            orders_max: open - 1,
            ..config
        };
        match restore_guarded(smaller, bytes)? {
            Err(SnapshotError::Capacity("orders_max")) => {}
            other => return Err(format!("orders_max {}: {other:?}", open - 1)),
        }
    }
    let other_fee_account = AccountId(if config.fee_account.0 == 0 { 1 } else { 0 });
    let other = EngineConfig {
        fee_account: other_fee_account,
        ..config
    };
    match restore_guarded(other, bytes)? {
        Err(SnapshotError::FeeAccount { found, expected })
            if found == config.fee_account && expected == other_fee_account => {}
        other => return Err(format!("another fee account: {other:?}")),
    }
    Ok(())
}

#[test]
fn restored_snapshots_follow_the_live_engine() {
    let cases = environment_number("SNAPSHOT_SIM_CASES").unwrap_or(CASES_DEFAULT);
    let commands = environment_number("SNAPSHOT_SIM_COMMANDS").unwrap_or(COMMANDS_DEFAULT);
    let first = environment_seed("SNAPSHOT_SIM_SEED", 0);
    let started = Instant::now();
    let (taken, failures) = run_seeds(cases, first, |seed, taken: &mut u64| {
        let count = catch_unwind(AssertUnwindSafe(|| run_case(seed, commands)))
            .unwrap_or_else(|_| Err("panicked (see the message above)".to_string()))?;
        *taken += count;
        Ok::<(), String>(())
    });
    if let Some((seed, message)) = failures.into_iter().next() {
        panic!(
            "seed {seed} failed.\nReproduce: SNAPSHOT_SIM_SEED={seed} SNAPSHOT_SIM_CASES=1 \
             SNAPSHOT_SIM_COMMANDS={commands} cargo test -p tests --test snapshot_vs_live\n\n\
             {message}"
        );
    }
    let snapshots: u64 = taken.into_iter().sum();
    eprintln!(
        "{cases} streams of {commands} commands from seed {first}: {snapshots} snapshots \
         restored and followed ({:.1?})",
        started.elapsed()
    );
    assert!(
        snapshots >= cases,
        "only {snapshots} snapshots in {cases} streams"
    );
}
