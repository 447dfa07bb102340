//! Commands journaled with an origin come back, with that origin and with
//! the status and events they had live, from `Sequencer::open_observed`.

mod common;

use common::*;
use engine::*;
use journal::{Durability, JournalOptions};

fn options() -> JournalOptions {
    JournalOptions {
        segment_bytes: 1 << 20,
        record_bytes_max: codec::RECORD_BYTES_MAX,
        durability: Durability::Memory,
        prefault: false,
        ..JournalOptions::default()
    }
}

/// What the submitter saw of one command.
#[derive(Debug, PartialEq)]
struct Seen {
    header: CommandHeader,
    command: Command,
    origin: Vec<u8>,
    status: Status,
    events: Vec<Event>,
}

fn commands() -> Vec<Command> {
    let mut commands = Vec::new();
    for (asset, symbol, scale) in [(USD, "USD", 4), (ACME, "ACME", 0)] {
        commands.push(Command::Admin(AdminCommand::CreateAsset {
            asset,
            symbol: Symbol::new(symbol).unwrap(),
            scale,
        }));
    }
    commands.push(Command::Admin(AdminCommand::CreateInstrument {
        instrument: ACME_USD,
        spec: acme_spec(),
    }));
    for (index, account) in [ALICE, BOB].into_iter().enumerate() {
        let transfer_id = index as u64 * 2;
        commands.push(Command::Admin(AdminCommand::CreateAccount { account }));
        for (asset, amount, id) in [(USD, USD_FUNDING, 1), (ACME, ACME_FUNDING, 2)] {
            commands.push(Command::Deposit(Deposit {
                account,
                asset,
                amount,
                transfer_id: TransferId(transfer_id + id),
            }));
        }
    }
    let order = |account, user_ref_num, side| {
        Command::NewOrder(NewOrder {
            account,
            user_ref_num: UserRefNum(user_ref_num),
            instrument: ACME_USD,
            side,
            price: OrderPrice::Limit(usd(100, 0)),
            quantity: Quantity(5),
            time_in_force: TimeInForce::GoodTillCancel,
            post_only: false,
            self_trade: SelfTradePrevention::None,
        })
    };
    commands.push(order(ALICE, 1, Side::Buy));
    commands.push(Command::GatewayReject(GatewayReject {
        account: BOB,
        user_ref_num: UserRefNum(1),
    }));
    commands.push(order(BOB, 1, Side::Sell)); // a duplicate now
    commands.push(order(BOB, 2, Side::Sell)); // trades
    commands.push(Command::GatewayReject(GatewayReject {
        account: ALICE,
        user_ref_num: UserRefNum(0),
    }));
    commands
}

/// The origin of the `index`th command: none for every third, else 1 to
/// `ORIGIN_BYTES_MAX` bytes.
fn origin(index: usize) -> Vec<u8> {
    if index.is_multiple_of(3) {
        return Vec::new();
    }
    let len = 1 + (index * 7) % codec::ORIGIN_BYTES_MAX;
    (0..len).map(|byte| (index * 31 + byte) as u8).collect()
}

#[test]
fn open_observed_gives_back_commands_origins_statuses_and_events() {
    let dir = std::env::temp_dir().join(format!("sequencer-origin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Exchange::new().engine.config().to_owned();

    let mut live = Vec::new();
    let state_hash = {
        let (mut sequencer, _) = Sequencer::open(&dir, config, options()).unwrap();
        for (index, command) in commands().iter().enumerate() {
            let origin = origin(index);
            let mut events = Vec::new();
            let (header, status) = sequencer
                .submit_with_origin(1_000 + index as u64, command, &origin, &mut events)
                .unwrap();
            live.push(Seen {
                header,
                command: *command,
                origin,
                status,
                events,
            });
        }
        // Snapshots are ignored by `open_observed`: the replay still starts
        // at sequence 1.
        sequencer.write_snapshot().unwrap();
        let hash = sequencer.engine().state_hash();
        sequencer.close().unwrap();
        hash
    };
    assert!(live.iter().any(|seen| seen.status == Status::Applied));
    assert!(
        live.iter()
            .any(|seen| matches!(seen.status, Status::Rejected(RejectReason::GatewayRejected)))
    );
    assert!(live.iter().any(|seen| matches!(
        seen.status,
        Status::Rejected(RejectReason::DuplicateUserRefNum)
    )));

    let mut replayed = Vec::new();
    let (mut sequencer, recovered) =
        Sequencer::open_observed(&dir, config, options(), &mut |applied: &Applied<'_>| {
            replayed.push(Seen {
                header: applied.header,
                command: *applied.command,
                origin: applied.origin.to_vec(),
                status: applied.status,
                events: applied.events.to_vec(),
            });
        })
        .unwrap();
    assert_eq!(replayed, live);
    assert!(recovered.snapshot.is_none());
    assert_eq!(recovered.replayed, live.len() as u64);
    assert_eq!(recovered.state_hash, state_hash);

    // The reopened sequencer carries on, with and without origins, and a
    // plain `open` (from the snapshot) agrees.
    let mut events = Vec::new();
    let (header, status) = sequencer
        .submit_with_origin(
            0,
            &Command::AccountQuery(AccountQuery { account: ALICE }),
            &[0xEE],
            &mut events,
        )
        .unwrap();
    assert_eq!(header.sequence, live.len() as u64 + 1);
    assert_eq!(
        header.timestamp_ns,
        live.last().unwrap().header.timestamp_ns
    );
    assert_eq!(status, Status::Applied);
    let hash = sequencer.engine().state_hash();
    sequencer.close().unwrap();
    let (sequencer, recovered) = Sequencer::open(&dir, config, options()).unwrap();
    assert!(recovered.snapshot.is_some());
    assert_eq!(recovered.replayed, 1);
    assert_eq!(sequencer.engine().state_hash(), hash);
    sequencer.close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
