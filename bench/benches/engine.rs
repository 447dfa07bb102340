//! Criterion benches of single engine operations on a standing book:
//! inserting a resting order, cancelling one whole or in part, replacing one
//! (losing and keeping priority), and an aggressive order that sweeps 1, 10
//! or 100 price levels.
//!
//! Every iteration does the same work on the same kind of state. The engine
//! lives in a `RefCell` shared by criterion's setup and routine closures:
//! the setup prepares what the next timed command needs (the order it
//! cancels, the levels it sweeps) by applying untimed commands, and at the
//! start of each batch undoes what the previous batch left behind (orders it
//! rested, money it moved), so the book never drifts. Within a batch all
//! setups run before the timed routines, which is why a sweep's levels are
//! laid out one batch's worth deep, each iteration's N levels behind the
//! previous one's.
//!
//! The engine has the default (production) capacities.
//!
//! `cargo bench -p bench` measures; `cargo test --benches` runs each once.

use bench::{BASE_ASSET, EngineDriver, QUOTE_ASSET, equity, limit_order, setup_commands};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::{
    AccountId, CancelOrder, Command, Deposit, EngineConfig, Event, OrderRef, Price, Quantity,
    ReplaceOrder, Side, Status, TimeInForce, TransferId, UserRefNum,
};
use std::cell::RefCell;
use std::hint::black_box;

/// The reference (and mid) price: 100.00.
const MID: i64 = 1_000_000;
const TICK: i64 = 100;
/// Accounts `1..=MAKERS` own the standing book and the swept levels.
const MAKERS: u32 = 10;
/// The account whose orders the benches insert, cancel and replace.
const TRADER: AccountId = AccountId(MAKERS + 1);
/// The account that sweeps.
const TAKER: AccountId = AccountId(MAKERS + 2);
/// Standing book: this many levels a side, each with this many orders.
const LEVELS: i64 = 100;
const ORDERS_PER_LEVEL: u32 = 10;
/// The size of every resting order.
const QUANTITY: u64 = 100;
/// Inserted orders rotate over this many levels at the top of the bids.
const INSERT_LEVELS: i64 = 10;
/// Orders placed, then undone, per batch of insert/cancel/replace benches.
const BATCH_ITERATIONS: u64 = 1_000;
/// The ask side has this many ticks above the mid inside the ±10% band.
const ASK_TICKS: u64 = 1_000;
/// A balance below this is topped up between batches.
const TOP_UP_BELOW: u64 = 10_000_000_000_000;

/// An exchange with a standing book and what must be undone later.
struct Fixture {
    driver: EngineDriver,
    last_user_ref_nums: Vec<u64>,
    last_transfer_ids: Vec<u64>,
    /// Commands that put the book back as it was, applied at the start of
    /// the next batch.
    undo: Vec<Command>,
    /// Set by the routine: the next setup call starts a batch.
    routine_ran: bool,
    /// Iterations set up in the current batch.
    batch_position: u64,
    /// The trader's last `user_ref_num` when the batch began.
    batch_first_user_ref_num: u64,
    /// The highest `user_ref_num` handed to a timed replace.
    reserved_user_ref_num_max: u64,
    counter: i64,
}

impl Fixture {
    /// The exchange with `LEVELS` levels of bids, and of asks if `asks`.
    fn new(asks: bool) -> Fixture {
        let accounts = MAKERS + 2;
        let mut fixture = Fixture {
            driver: EngineDriver::new(EngineConfig::default())
                .expect("the default configuration is valid"),
            last_user_ref_nums: vec![0; accounts as usize + 1],
            // The setup's deposits used transfer ids 1 and 2.
            last_transfer_ids: vec![2; accounts as usize + 1],
            undo: Vec::new(),
            routine_ran: false,
            batch_position: 0,
            batch_first_user_ref_num: 0,
            reserved_user_ref_num_max: 0,
            counter: 0,
        };
        for command in setup_commands(&equity("ACME", Price(MID)), accounts) {
            fixture.apply_ok(&command);
        }
        let sides: &[Side] = if asks {
            &[Side::Buy, Side::Sell]
        } else {
            &[Side::Buy]
        };
        for &side in sides {
            for level in 1..=LEVELS {
                for order in 0..ORDERS_PER_LEVEL {
                    let maker = AccountId(1 + order % MAKERS);
                    let command = fixture.new_order(
                        maker,
                        side,
                        passive(side, level),
                        QUANTITY,
                        TimeInForce::GoodTillCancel,
                    );
                    fixture.apply_ok(&command);
                }
            }
        }
        fixture
    }

    fn apply_ok(&mut self, command: &Command) {
        assert_eq!(self.driver.apply(command), Status::Applied, "{command:?}");
    }

    /// Called first by every setup: at the start of a batch, undo the last
    /// one and refill balances.
    fn begin_iteration(&mut self) {
        if self.routine_ran {
            self.routine_ran = false;
            self.batch_position = 0;
            for command in std::mem::take(&mut self.undo) {
                self.apply_ok(&command);
            }
            self.top_up();
        }
        if self.batch_position == 0 {
            let last = &mut self.last_user_ref_nums[TRADER.0 as usize];
            *last = (*last).max(self.reserved_user_ref_num_max);
            self.batch_first_user_ref_num = *last;
        }
        self.batch_position += 1;
        self.counter += 1;
    }

    /// Sweeps move money and shares from the taker to the makers and back:
    /// deposit where a balance runs low, so no order is ever refused.
    fn top_up(&mut self) {
        for account in 1..=MAKERS + 2 {
            for (asset, amount) in [
                (QUOTE_ASSET, bench::QUOTE_DEPOSIT),
                (BASE_ASSET, bench::BASE_DEPOSIT),
            ] {
                let account = AccountId(account);
                let available = self
                    .driver
                    .engine()
                    .balance(account, asset)
                    .map_or(0, |b| b.available);
                if available < TOP_UP_BELOW.min(amount / 2) {
                    let transfer_id = self.next_transfer_id(account);
                    self.apply_ok(&Command::Deposit(Deposit {
                        account,
                        asset,
                        amount,
                        transfer_id,
                    }));
                }
            }
        }
    }

    fn next_user_ref_num(&mut self, account: AccountId) -> UserRefNum {
        let last = &mut self.last_user_ref_nums[account.0 as usize];
        *last += 1;
        UserRefNum(*last)
    }

    /// The new `user_ref_num` of a timed replace. References must rise in
    /// the order commands are applied, and a batch applies all its setups
    /// (whose resting orders take the trader's next references) before its
    /// replaces: so replaces take references above the whole batch's
    /// setups, in iteration order.
    fn reserve_user_ref_num(&mut self) -> UserRefNum {
        assert!(
            self.batch_position <= BATCH_ITERATIONS,
            "replace benches run in batches of BATCH_ITERATIONS"
        );
        let reserved = self.batch_first_user_ref_num + BATCH_ITERATIONS + self.batch_position;
        self.reserved_user_ref_num_max = self.reserved_user_ref_num_max.max(reserved);
        UserRefNum(reserved)
    }

    fn next_transfer_id(&mut self, account: AccountId) -> TransferId {
        let last = &mut self.last_transfer_ids[account.0 as usize];
        *last += 1;
        TransferId(*last)
    }

    fn new_order(
        &mut self,
        account: AccountId,
        side: Side,
        price: Price,
        quantity: u64,
        time_in_force: TimeInForce,
    ) -> Command {
        let user_ref_num = self.next_user_ref_num(account);
        limit_order(account, user_ref_num, side, price, quantity, time_in_force)
    }

    /// Rest a trader's buy at one of the top bid levels (untimed) and return
    /// its reference and price.
    fn rest_trader_order(&mut self) -> (UserRefNum, Price) {
        let price = self.insert_price();
        let command = self.new_order(
            TRADER,
            Side::Buy,
            price,
            QUANTITY,
            TimeInForce::GoodTillCancel,
        );
        self.apply_ok(&command);
        (
            UserRefNum(self.last_user_ref_nums[TRADER.0 as usize]),
            price,
        )
    }

    fn insert_price(&self) -> Price {
        passive(Side::Buy, 1 + self.counter % INSERT_LEVELS)
    }

    fn undo_cancel(&mut self, user_ref_num: UserRefNum) {
        self.undo.push(cancel(user_ref_num, 0));
    }
}

/// The price `level` ticks behind the mid on `side`.
fn passive(side: Side, level: i64) -> Price {
    match side {
        Side::Buy => Price(MID - level * TICK),
        Side::Sell => Price(MID + level * TICK),
    }
}

fn cancel(user_ref_num: UserRefNum, quantity: u64) -> Command {
    Command::CancelOrder(CancelOrder {
        account: TRADER,
        order: OrderRef::UserRef(user_ref_num),
        quantity: Quantity(quantity),
    })
}

/// Run `setup` then time `apply` of the command it returns, batch after
/// batch, on the shared fixture.
fn bench_command(
    criterion: &mut Criterion,
    name: &str,
    fixture: &RefCell<Fixture>,
    batch_iterations: u64,
    mut setup: impl FnMut(&mut Fixture) -> Command,
) {
    criterion.bench_function(name, |bencher| {
        bencher.iter_batched(
            || {
                let mut fixture = fixture.borrow_mut();
                fixture.begin_iteration();
                setup(&mut fixture)
            },
            |command| {
                let mut fixture = fixture.borrow_mut();
                fixture.routine_ran = true;
                let status = fixture.driver.apply(black_box(&command));
                debug_assert_eq!(status, Status::Applied);
                black_box(fixture.driver.events());
                status
            },
            BatchSize::NumIterations(batch_iterations),
        );
    });
}

fn resting_order_benches(criterion: &mut Criterion) {
    let fixture = RefCell::new(Fixture::new(true));

    bench_command(
        criterion,
        "insert_resting",
        &fixture,
        BATCH_ITERATIONS,
        |fixture| {
            let price = fixture.insert_price();
            let command = fixture.new_order(
                TRADER,
                Side::Buy,
                price,
                QUANTITY,
                TimeInForce::GoodTillCancel,
            );
            let user_ref_num = UserRefNum(fixture.last_user_ref_nums[TRADER.0 as usize]);
            fixture.undo_cancel(user_ref_num);
            command
        },
    );

    bench_command(criterion, "cancel", &fixture, BATCH_ITERATIONS, |fixture| {
        let (user_ref_num, _) = fixture.rest_trader_order();
        cancel(user_ref_num, 0)
    });

    bench_command(
        criterion,
        "partial_cancel",
        &fixture,
        BATCH_ITERATIONS,
        |fixture| {
            let (user_ref_num, _) = fixture.rest_trader_order();
            fixture.undo_cancel(user_ref_num);
            cancel(user_ref_num, QUANTITY / 2)
        },
    );

    bench_command(
        criterion,
        "replace_priority_lost",
        &fixture,
        BATCH_ITERATIONS,
        |fixture| {
            let (user_ref_num, price) = fixture.rest_trader_order();
            let new_user_ref_num = fixture.reserve_user_ref_num();
            fixture.undo_cancel(new_user_ref_num);
            // To another of the top levels: a move.
            let new_price = Price(price.0 - (INSERT_LEVELS / 2) * TICK);
            Command::ReplaceOrder(ReplaceOrder {
                account: TRADER,
                order: OrderRef::UserRef(user_ref_num),
                new_user_ref_num,
                price: new_price,
                quantity: Quantity(QUANTITY),
            })
        },
    );

    bench_command(
        criterion,
        "replace_priority_kept",
        &fixture,
        BATCH_ITERATIONS,
        |fixture| {
            let (user_ref_num, price) = fixture.rest_trader_order();
            let new_user_ref_num = fixture.reserve_user_ref_num();
            fixture.undo_cancel(new_user_ref_num);
            // Same price, smaller size.
            Command::ReplaceOrder(ReplaceOrder {
                account: TRADER,
                order: OrderRef::UserRef(user_ref_num),
                new_user_ref_num,
                price,
                quantity: Quantity(QUANTITY / 2),
            })
        },
    );
}

fn sweep_benches(criterion: &mut Criterion) {
    let fixture = RefCell::new(Fixture::new(false));
    let mut group = criterion.benchmark_group("sweep_levels");
    for levels in [1_u64, 10, 100] {
        group.throughput(Throughput::Elements(levels));
        // A batch's levels are laid out one behind another on the ask side.
        let batch_iterations = ASK_TICKS / levels;
        group.bench_function(BenchmarkId::from_parameter(levels), |bencher| {
            bencher.iter_batched(
                || {
                    let mut fixture = fixture.borrow_mut();
                    fixture.begin_iteration();
                    sweep_setup(&mut fixture, levels)
                },
                |command| {
                    let mut fixture = fixture.borrow_mut();
                    fixture.routine_ran = true;
                    let status = fixture.driver.apply(black_box(&command));
                    debug_assert_eq!(status, Status::Applied);
                    debug_assert_eq!(fills(fixture.driver.events()), levels, "swept every level");
                    black_box(fixture.driver.events());
                    status
                },
                BatchSize::NumIterations(batch_iterations),
            );
        });
    }
    group.finish();
}

/// Lay `levels` ask levels of one order each behind the previous iteration's
/// and return the IOC buy that takes exactly them.
fn sweep_setup(fixture: &mut Fixture, levels: u64) -> Command {
    let first = (fixture.batch_position - 1) * levels + 1;
    let last = first + levels - 1;
    assert!(last <= ASK_TICKS, "the batch's levels fit inside the band");
    for tick in first..=last {
        let maker = AccountId(1 + (tick % u64::from(MAKERS)) as u32);
        let command = fixture.new_order(
            maker,
            Side::Sell,
            passive(Side::Sell, tick as i64),
            QUANTITY,
            TimeInForce::GoodTillCancel,
        );
        fixture.apply_ok(&command);
    }
    fixture.new_order(
        TAKER,
        Side::Buy,
        passive(Side::Sell, last as i64),
        levels * QUANTITY,
        TimeInForce::ImmediateOrCancel,
    )
}

/// The fills among `events`.
fn fills(events: &[Event]) -> u64 {
    events
        .iter()
        .filter(|event| matches!(event, Event::Fill { .. }))
        .count() as u64
}

criterion_group!(benches, resting_order_benches, sweep_benches);
criterion_main!(benches);
