//! Proves that the sequencer's hot path — stamp, encode, journal append,
//! apply — allocates nothing once warm. Allocations are counted on the
//! test's own thread only: the journal's helper thread prepares the next
//! segment meanwhile, and that is allowed to allocate.

// A global allocator is an unsafe trait; this test binary needs `unsafe` for
// it alone.
#![allow(unsafe_code)]

mod common;

use common::*;
use engine::*;
use journal::{Durability, JournalOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count_if_watched() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_if_watched();
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_if_watched();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn setup() -> Vec<Command> {
    let mut commands = Vec::new();
    for (asset, symbol, scale) in [(USD, "USD", 4), (ACME, "ACME", 0)] {
        let symbol = Symbol::new(symbol).unwrap();
        commands.push(Command::Admin(AdminCommand::CreateAsset {
            asset,
            symbol,
            scale,
        }));
    }
    commands.push(Command::Admin(AdminCommand::CreateInstrument {
        instrument: ACME_USD,
        spec: acme_spec(),
    }));
    for account in [ALICE, BOB] {
        commands.push(Command::Admin(AdminCommand::CreateAccount { account }));
        for (asset, amount, transfer) in [(USD, USD_FUNDING, 1), (ACME, ACME_FUNDING, 2)] {
            commands.push(Command::Deposit(Deposit {
                account,
                asset,
                amount,
                transfer_id: TransferId(transfer),
            }));
        }
    }
    commands
}

fn order(account: AccountId, user_ref_num: u64, side: Side, quantity: u64) -> Command {
    Command::NewOrder(NewOrder {
        account,
        user_ref_num: UserRefNum(user_ref_num),
        instrument: ACME_USD,
        side,
        price: OrderPrice::Limit(usd(100, 0)),
        quantity: Quantity(quantity),
        time_in_force: TimeInForce::GoodTillCancel,
        post_only: false,
        self_trade: SelfTradePrevention::None,
    })
}

/// Rounds of: a resting buy, a sell that fills half of it, a cancel of the
/// rest, and a balance query, Alice and Bob taking turns to buy (so neither
/// runs out). Returns the commands applied.
fn rounds(sequencer: &mut Sequencer, first: u64, count: u64, events: &mut Vec<Event>) -> u64 {
    for round in first..first + count {
        let (buyer, seller) = if round % 2 == 0 {
            (ALICE, BOB)
        } else {
            (BOB, ALICE)
        };
        let commands = [
            order(buyer, round, Side::Buy, 10),
            order(seller, round, Side::Sell, 5),
            Command::CancelOrder(CancelOrder {
                account: buyer,
                order: OrderRef::UserRef(UserRefNum(round)),
                quantity: Quantity(0),
            }),
            Command::AccountQuery(AccountQuery { account: seller }),
        ];
        for command in &commands {
            events.clear();
            let (_, status) = sequencer.submit(command, events).expect("journaled");
            assert_eq!(status, Status::Applied, "{command}");
        }
    }
    count * 4
}

#[test]
fn journaling_and_applying_allocates_nothing_once_warmed_up() {
    let dir = std::env::temp_dir().join(format!("no-alloc-sequencer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = JournalOptions {
        // Large enough that the measured rounds do not roll over (a
        // roll-over hands a segment between threads: not per command).
        segment_bytes: 64 << 20,
        record_bytes_max: codec::COMMAND_BYTES_MAX,
        durability: Durability::Memory,
        prefault: true,
        ..JournalOptions::default()
    };
    let config = Exchange::new().engine.config().to_owned();
    let (mut sequencer, _) = Sequencer::open(&dir, config, options).unwrap();
    let mut events = Vec::with_capacity(64);
    for command in setup() {
        events.clear();
        let (_, status) = sequencer.submit(&command, &mut events).unwrap();
        assert_eq!(status, Status::Applied, "{command}");
    }
    rounds(&mut sequencer, 1, 1_000, &mut events);

    COUNTING.with(|counting| counting.set(true));
    let applied = rounds(&mut sequencer, 1_001, 20_000, &mut events);
    COUNTING.with(|counting| counting.set(false));

    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "allocations while journaling and applying {applied} commands"
    );
    assert_eq!(sequencer.journal().segments().len(), 1, "no roll-over");
    sequencer.engine().check_invariants().unwrap();
    sequencer.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
