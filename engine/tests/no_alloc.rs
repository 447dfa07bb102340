//! Proves that applying commands allocates nothing once the engine is warmed
//! up: a counting global allocator, a warm-up pass over a mixed workload
//! (orders of every kind, fills, partial and whole cancels, replaces both
//! ways, self-trade prevention, mass cancel, funding, queries, rejects), then
//! the same workload again with the allocation counter watched.
//!
//! A second phase churns far more open orders than the order maps start
//! with (enter a new order, cancel the oldest, hundreds of thousands of
//! times), which is where a hash map whose deletes leave tombstones would
//! reallocate.
//!
//! This file is its own test binary with a single test, so no other test
//! thread allocates while it counts.

// A global allocator is an unsafe trait; this test binary is the one place in
// the engine that needs `unsafe`.
#![allow(unsafe_code)]

mod common;

use common::*;
use engine::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// One round of a mixed workload; user references and transfer ids start
/// above `base` so that rounds do not collide.
fn round(engine: &mut Engine, sequence: &mut u64, base: u64, events: &mut Vec<Event>) -> u64 {
    let mut applied = 0;
    let mut run = |engine: &mut Engine, command: Command| {
        *sequence += 1;
        events.clear();
        let header = CommandHeader {
            sequence: *sequence,
            timestamp_ns: *sequence,
        };
        if engine.apply(header, &command, events) == Status::Applied {
            applied += 1;
        }
    };
    let order = |account, offset: u64, side, price: Price, quantity, time_in_force, self_trade| {
        Command::NewOrder(NewOrder {
            account,
            user_ref_num: UserRefNum(base + offset),
            instrument: ACME_USD,
            side,
            price: OrderPrice::Limit(price),
            quantity: Quantity(quantity),
            time_in_force,
            post_only: false,
            self_trade,
        })
    };
    use SelfTradePrevention as Stp;
    use TimeInForce::*;
    for step in 0..200_u64 {
        let o = step * 10;
        let price = usd(99, 0).0 + i64::try_from(step % 20).unwrap() * 100;
        let price = Price(price);
        run(
            engine,
            order(ALICE, o + 1, Side::Buy, price, 5, GoodTillCancel, Stp::None),
        );
        run(
            engine,
            Command::ReplaceOrder(ReplaceOrder {
                account: ALICE,
                order: OrderRef::UserRef(UserRefNum(base + o + 1)),
                new_user_ref_num: UserRefNum(base + o + 3),
                price: Price(price.0 - 100),
                quantity: Quantity(8),
            }),
        );
        run(
            engine,
            Command::ReplaceOrder(ReplaceOrder {
                account: ALICE,
                order: OrderRef::UserRef(UserRefNum(base + o + 3)),
                new_user_ref_num: UserRefNum(base + o + 4),
                price: Price(price.0 - 100),
                quantity: Quantity(2),
            }),
        );
        run(
            engine,
            Command::CancelOrder(CancelOrder {
                account: ALICE,
                order: OrderRef::UserRef(UserRefNum(base + o + 4)),
                quantity: Quantity(1),
            }),
        );
        run(
            engine,
            order(BOB, o + 1, Side::Sell, price, 3, Day, Stp::None),
        );
        run(
            engine,
            order(
                CAROL,
                o + 1,
                Side::Sell,
                Price(price.0 + 100),
                4,
                ImmediateOrCancel,
                Stp::None,
            ),
        );
        run(
            engine,
            order(
                ALICE,
                o + 2,
                Side::Sell,
                price,
                4,
                GoodTillCancel,
                Stp::DecrementAndCancel,
            ),
        );
        run(
            engine,
            order(
                DAVE,
                o + 1,
                Side::Buy,
                Price(price.0 + 200),
                6,
                FillOrKill,
                Stp::CancelOldest,
            ),
        );
        run(
            engine,
            Command::NewOrder(NewOrder {
                account: BOB,
                user_ref_num: UserRefNum(base + o + 2),
                instrument: ACME_USD,
                side: Side::Sell,
                price: OrderPrice::Market {
                    protection: Some(usd(95, 0)),
                },
                quantity: Quantity(2),
                time_in_force: ImmediateOrCancel,
                post_only: false,
                self_trade: Stp::None,
            }),
        );
        // A reject (off tick) and a funding round trip.
        run(
            engine,
            order(
                CAROL,
                o + 2,
                Side::Buy,
                Price(price.0 + 1),
                1,
                Day,
                Stp::None,
            ),
        );
        let transfer_id = TransferId(base + step);
        run(
            engine,
            Command::Transfer(Transfer {
                from: DAVE,
                to: CAROL,
                asset: USD,
                amount: 7,
                transfer_id,
            }),
        );
        run(
            engine,
            Command::Transfer(Transfer {
                from: DAVE,
                to: CAROL,
                asset: USD,
                amount: 7,
                transfer_id,
            }),
        );
        run(
            engine,
            Command::AccountQuery(AccountQuery { account: CAROL }),
        );
        if step % 50 == 49 {
            for account in [ALICE, BOB, CAROL, DAVE] {
                run(
                    engine,
                    Command::MassCancel(MassCancel {
                        account,
                        instrument: None,
                    }),
                );
            }
        }
    }
    run(engine, Command::Admin(AdminCommand::EndOfDay));
    applied
}

#[test]
fn applying_commands_allocates_nothing_once_warmed_up() {
    let mut exchange = Exchange::new();
    let mut sequence = exchange.sequence;
    let mut events = Vec::with_capacity(1_024);
    let engine = &mut exchange.engine;
    let warm = round(engine, &mut sequence, 1_000_000, &mut events);
    // The counter sees allocations (so a zero below means something).
    let probe_before = ALLOCATIONS.load(Ordering::Relaxed);
    std::hint::black_box(Vec::<u64>::with_capacity(4));
    assert!(ALLOCATIONS.load(Ordering::Relaxed) > probe_before);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let applied = round(engine, &mut sequence, 2_000_000, &mut events);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations in {applied} applied commands"
    );
    assert_eq!(applied, warm, "the measured round did the same work");
    assert!(
        applied > 2_000,
        "the workload does real work: {applied} applied"
    );
    engine.check_invariants().unwrap();

    churn_above_the_initial_map_size();
}
/// Keep `OPEN` orders resting while replacing the oldest with a new one.
fn churn_above_the_initial_map_size() {
    const OPEN: u64 = 12_000;
    const STEPS_WARM_UP: u64 = 20_000;
    const STEPS_MEASURED: u64 = 200_000;
    let mut exchange = Exchange::with_config(EngineConfig {
        accounts_max: 8,
        assets_max: 4,
        instruments_max: 4,
        orders_max: 20_000,
        price_levels_max: 100_000,
        transfer_records_max: 100,
        fee_account: FEES,
    });
    let mut churn = Churn {
        open: VecDeque::with_capacity(OPEN as usize + 1),
        open_max: OPEN,
        events: Vec::with_capacity(64),
        sequence: exchange.sequence,
    };
    let engine = &mut exchange.engine;
    for index in 0..OPEN + STEPS_WARM_UP {
        churn.step(engine, index);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for index in OPEN + STEPS_WARM_UP..OPEN + STEPS_WARM_UP + STEPS_MEASURED {
        churn.step(engine, index);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations while churning {OPEN} open orders"
    );
    assert_eq!(u64::from(engine.open_orders()), OPEN);
    engine.check_invariants().unwrap();
}

struct Churn {
    /// The open orders, oldest first.
    open: VecDeque<(AccountId, OrderId)>,
    open_max: u64,
    events: Vec<Event>,
    sequence: u64,
}

impl Churn {
    fn apply(&mut self, engine: &mut Engine, command: Command) {
        self.sequence += 1;
        self.events.clear();
        let header = CommandHeader {
            sequence: self.sequence,
            timestamp_ns: self.sequence,
        };
        let status = engine.apply(header, &command, &mut self.events);
        assert_eq!(status, Status::Applied, "{command:?}");
    }

    /// Enter the `index`th order; cancel the oldest beyond `open_max`.
    fn step(&mut self, engine: &mut Engine, index: u64) {
        let account = [ALICE, BOB, CAROL, DAVE][usize::try_from(index % 4).unwrap()];
        // Bids from 95.00 to 98.99: nothing crosses.
        let price = Price(950_000 + i64::try_from(index % 400).unwrap() * 100);
        let order = NewOrder {
            account,
            user_ref_num: UserRefNum(index + 1),
            instrument: ACME_USD,
            side: Side::Buy,
            price: OrderPrice::Limit(price),
            quantity: Quantity(1),
            time_in_force: TimeInForce::GoodTillCancel,
            post_only: false,
            self_trade: SelfTradePrevention::None,
        };
        self.apply(engine, Command::NewOrder(order));
        self.open
            .push_back((account, Exchange::accepted_id(&self.events)));
        if self.open.len() as u64 > self.open_max {
            let (account, order_id) = self.open.pop_front().unwrap();
            let order = OrderRef::Id(order_id);
            let cancel = CancelOrder {
                account,
                order,
                quantity: Quantity(0),
            };
            self.apply(engine, Command::CancelOrder(cancel));
        }
    }
}
