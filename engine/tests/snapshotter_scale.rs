//! What the snapshot agent buys at scale: a journal of `SNAPSHOTTER_COMMANDS`
//! commands (1 M by default) that leaves about a million orders resting; the
//! shadow agent catches up and snapshots at 90 %; then a restart from its
//! snapshot plus the tail is timed against a replay from sequence 1.
//!
//! Not run by default (it takes a while and a few hundred MB of disk):
//!
//! ```text
//! cargo test --release -p engine --test snapshotter_scale -- --ignored --nocapture
//! SNAPSHOTTER_COMMANDS=10000000 cargo test --release -p engine --test snapshotter_scale -- --ignored --nocapture
//! ```
//!
//! After the first million commands (all resting orders) the stream
//! alternates a new order and the cancel of the oldest one still resting,
//! so the book stays at about a million orders however long the stream.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use engine::agent::{Agent, AgentError};
use engine::*;
use journal::{Durability, JournalOptions, SnapshotStore};

const USD: AssetId = AssetId(0);
const ACME: AssetId = AssetId(1);
const ACME_USD: InstrumentId = InstrumentId(0);
const ACCOUNTS: u32 = 1_000;
const RESTING_MAX: u64 = 1_000_000;

fn config() -> EngineConfig {
    EngineConfig {
        accounts_max: ACCOUNTS + 1,
        assets_max: 2,
        instruments_max: 1,
        orders_max: RESTING_MAX as u32 + 1_024,
        price_levels_max: 1 << 14,
        transfer_records_max: 1 << 12,
        fee_account: AccountId(0),
    }
}

fn setup() -> Vec<Command> {
    let mut commands = Vec::new();
    for (asset, symbol, scale) in [(USD, "USD", 4), (ACME, "ACME", 0)] {
        let symbol = Symbol::new(symbol).expect("constant");
        commands.push(Command::Admin(AdminCommand::CreateAsset {
            asset,
            symbol,
            scale,
        }));
    }
    let spec = InstrumentSpec {
        symbol: Symbol::new("ACME").expect("constant"),
        base: ACME,
        quote: USD,
        quantity_unit: 1,
        tick_size: Price(100),
        lot_size: Quantity(1),
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000),
        reference_price: Price(100 * 10_000),
        band_bps: 1_000,
        maker_fee_bps: 0,
        taker_fee_bps: 0,
    };
    commands.push(Command::Admin(AdminCommand::CreateInstrument {
        instrument: ACME_USD,
        spec,
    }));
    for index in 1..=ACCOUNTS {
        let account = AccountId(index);
        commands.push(Command::Admin(AdminCommand::CreateAccount { account }));
        for (asset, amount) in [(USD, 1u64 << 50), (ACME, 1 << 30)] {
            commands.push(Command::Deposit(Deposit {
                account,
                asset,
                amount,
                transfer_id: TransferId(u64::from(index) * 2 + asset.0 as u64),
            }));
        }
    }
    commands
}

/// Order `n` (from 0): round-robin over the accounts, buys below 100 and
/// sells above, on 900 price levels a side, never crossing.
fn order(n: u64) -> Command {
    let account = AccountId((n % u64::from(ACCOUNTS)) as u32 + 1);
    let user_ref_num = UserRefNum(n / u64::from(ACCOUNTS) + 1);
    let (side, ticks) = if n.is_multiple_of(2) {
        (Side::Buy, -1 - (n / 2 % 900) as i64)
    } else {
        (Side::Sell, 1 + (n / 2 % 900) as i64)
    };
    Command::NewOrder(NewOrder {
        account,
        user_ref_num,
        instrument: ACME_USD,
        side,
        price: OrderPrice::Limit(Price(100 * 10_000 + ticks * 100)),
        quantity: Quantity(1 + n % 7),
        time_in_force: TimeInForce::GoodTillCancel,
        post_only: false,
        self_trade: SelfTradePrevention::None,
    })
}

/// Cancels order `n` by its user reference.
fn cancel(n: u64) -> Command {
    Command::CancelOrder(CancelOrder {
        account: AccountId((n % u64::from(ACCOUNTS)) as u32 + 1),
        order: OrderRef::UserRef(UserRefNum(n / u64::from(ACCOUNTS) + 1)),
        quantity: Quantity(0),
    })
}

/// Command `index` of the stream after the setup.
fn command(index: u64) -> Command {
    if index < RESTING_MAX {
        return order(index);
    }
    let past = index - RESTING_MAX;
    if past.is_multiple_of(2) {
        cancel(past / 2)
    } else {
        order(RESTING_MAX + past / 2)
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

#[test]
#[ignore = "scale measurement: run by hand with --release"]
fn restart_from_the_agents_snapshot_against_replay_from_one() {
    let commands: u64 = std::env::var("SNAPSHOTTER_COMMANDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("snapshotter-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = JournalOptions {
        segment_bytes: 64 << 20,
        record_bytes_max: codec::RECORD_BYTES_MAX,
        durability: Durability::Memory,
        prefault: true,
        ..JournalOptions::default()
    };
    let (mut sequencer, _) = Sequencer::open(&dir, config(), options).unwrap();
    let started = Instant::now();
    let mut discard: Vec<Event> = Vec::new();
    let setup = setup();
    let total = setup.len() as u64 + commands;
    for (index, command) in setup.into_iter().enumerate() {
        sequencer
            .submit_at(index as u64, &command, &mut discard)
            .unwrap();
    }
    for index in 0..commands {
        discard.clear();
        let (_, status) = sequencer
            .submit_at(index, &command(index), &mut discard)
            .unwrap();
        assert_eq!(status, Status::Applied, "command {index}");
    }
    let live_hash = sequencer.engine().state_hash();
    println!(
        "journaled {total} commands in {}; {} orders resting",
        seconds(started.elapsed()),
        sequencer.engine().open_orders()
    );

    // A multiple of the records a pass applies, so the snapshot lands on it.
    let snapshot_at = total / 10 * 9 / 4_096 * 4_096;
    let snapshot_options = SnapshotOptions {
        snapshot_every_commands: snapshot_at,
        snapshot_interval: None,
        snapshots_kept: 2,
        records_per_pass_max: 4_096,
    };
    let (mut agent, control, _) =
        SnapshotAgent::open(&dir, config(), sequencer.journal(), snapshot_options).unwrap();
    let started = Instant::now();
    let mut pass_max = Duration::ZERO;
    // Where the shadow stood after the longest pass.
    let mut pass_max_at = 0;
    let mut passes = 0u64;
    control.stop();
    loop {
        let pass = Instant::now();
        match agent.do_work() {
            Ok(_) => {}
            Err(AgentError::Finished) => break,
            Err(error) => panic!("{error}"),
        }
        if pass.elapsed() > pass_max {
            pass_max = pass.elapsed();
            pass_max_at = control.applied_sequence();
        }
        passes += 1;
    }
    agent.on_close();
    let caught_up = started.elapsed();
    assert_eq!(agent.shadow().engine().state_hash(), live_hash);
    let written = control.last_snapshot_sequence();
    assert_eq!(written, snapshot_at);
    let info = SnapshotStore::new(&dir)
        .list()
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    println!(
        "shadow agent: {total} records applied and a snapshot at {written} ({} MB) in {} \
         ({passes} passes, the longest {} ending at record {pass_max_at}; the writer thread \
         hashes and serialises)",
        info.body_bytes >> 20,
        seconds(caught_up),
        seconds(pass_max)
    );

    let engine = agent.shadow().engine();
    let timed = Instant::now();
    let hash = engine.state_hash();
    let hash_time = timed.elapsed();
    let timed = Instant::now();
    let body = engine.snapshot();
    let serialise_time = timed.elapsed();
    let timed = Instant::now();
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    SnapshotStore::new(&scratch)
        .write(engine.last_sequence(), 0, hash, &body)
        .unwrap();
    let write_time = timed.elapsed();
    std::fs::remove_dir_all(&scratch).unwrap();
    println!(
        "snapshot of {} orders: state_hash {}, serialise {} ({} MB), write + sync {}",
        engine.open_orders(),
        seconds(hash_time),
        seconds(serialise_time),
        body.len() >> 20,
        seconds(write_time)
    );
    let timed = Instant::now();
    let restored = Engine::restore(config(), &body).unwrap();
    let restore_time = timed.elapsed();
    let timed = Instant::now();
    restored.check_invariants().unwrap();
    let invariants_time = timed.elapsed();
    println!(
        "Engine::restore of that snapshot {} (of which check_invariants about {} and \
         state_hash about {})",
        seconds(restore_time),
        seconds(invariants_time),
        seconds(hash_time)
    );
    drop((body, restored));
    drop(agent);
    sequencer.close().unwrap();

    let timed = Instant::now();
    let (sequencer, recovered) = Sequencer::open(&dir, config(), options).unwrap();
    let restart_time = timed.elapsed();
    assert_eq!(recovered.state_hash, live_hash);
    assert_eq!(recovered.replayed, total - snapshot_at);
    drop(sequencer);
    println!(
        "restart (Sequencer::open) from the snapshot at {snapshot_at} + {} records: {}",
        recovered.replayed,
        seconds(restart_time)
    );
    let timed = Instant::now();
    let replayed = replay(&dir, None, None, false, &mut |_, _| {}).unwrap();
    let from_one_time = timed.elapsed();
    assert_eq!(replayed.engine.state_hash(), live_hash);
    assert_eq!(replayed.replayed, total);
    drop(replayed);
    let timed = Instant::now();
    let replayed = replay(&dir, None, None, true, &mut |_, _| {}).unwrap();
    let from_snapshot_time = timed.elapsed();
    assert_eq!(replayed.engine.state_hash(), live_hash);
    println!(
        "read-only replay: from sequence 1 ({total} records) {}, from the snapshot ({} \
         records) {}",
        seconds(from_one_time),
        replayed.replayed,
        seconds(from_snapshot_time)
    );
    drop(replayed);
    std::fs::remove_dir_all(&dir).unwrap();
}
