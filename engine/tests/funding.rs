//! Rule tests for funding (exactly-once deposits, withdrawals and transfers),
//! the account query, admin commands and the state hash — including the
//! mistakes a careless wallet makes.

mod common;

use common::*;
use engine::*;

fn deposit(account: AccountId, asset: AssetId, amount: u64, id: u64) -> Command {
    Command::Deposit(Deposit {
        account,
        asset,
        amount,
        transfer_id: TransferId(id),
    })
}

fn withdrawal(account: AccountId, asset: AssetId, amount: u64, id: u64) -> Command {
    Command::Withdrawal(Withdrawal {
        account,
        asset,
        amount,
        transfer_id: TransferId(id),
    })
}

fn transfer(from: AccountId, to: AccountId, asset: AssetId, amount: u64, id: u64) -> Command {
    Command::Transfer(Transfer {
        from,
        to,
        asset,
        amount,
        transfer_id: TransferId(id),
    })
}

/// An exchange whose transfer ids so far are below 1 000.
fn exchange() -> Exchange {
    Exchange::new()
}

#[test]
fn deposit_withdraw_and_transfer_move_available_funds() {
    let mut x = exchange();
    let events = x.ok(deposit(ALICE, USD, 500, 1_000));
    assert_eq!(
        events,
        [
            Event::FundingApplied {
                kind: FundingKind::Deposit,
                transfer_id: TransferId(1_000),
                account: ALICE,
                to: ALICE,
                asset: USD,
                amount: 500,
            },
            Event::BalanceChanged {
                account: ALICE,
                asset: USD,
                available: USD_FUNDING + 500,
                held: 0
            },
        ]
    );
    x.ok(withdrawal(ALICE, USD, 200, 1_001));
    let events = x.ok(transfer(ALICE, BOB, USD, 300, 1_002));
    assert_eq!(
        events[1..],
        [
            Event::BalanceChanged {
                account: ALICE,
                asset: USD,
                available: USD_FUNDING,
                held: 0
            },
            Event::BalanceChanged {
                account: BOB,
                asset: USD,
                available: USD_FUNDING + 300,
                held: 0
            },
        ]
    );
    let totals = x.engine.asset_totals(USD).unwrap();
    assert_eq!(totals.supply(), 4 * u128::from(USD_FUNDING) + 300);
}

#[test]
fn a_transfer_moves_only_its_own_asset() {
    // A careless wallet keys balances by account only, so moving USD also
    // moves EUR (or moves "units" between different assets).
    let mut x = exchange();
    x.ok(transfer(ALICE, BOB, EUR, 12_345, 1_000));
    assert_eq!(x.balance(ALICE, EUR).available, EUR_FUNDING - 12_345);
    assert_eq!(x.balance(BOB, EUR).available, EUR_FUNDING + 12_345);
    for asset in [USD, ACME] {
        for account in [ALICE, BOB] {
            let funding = if asset == USD {
                USD_FUNDING
            } else {
                ACME_FUNDING
            };
            assert_eq!(
                x.balance(account, asset).available,
                funding,
                "{account} {asset}"
            );
        }
    }
}

#[test]
fn a_repeated_transfer_is_applied_once() {
    let mut x = exchange();
    let command = transfer(ALICE, BOB, USD, 1_000, 1_000);
    x.ok(command);
    let hash = x.engine.state_hash();
    let (status, events) = x.run(command);
    assert_eq!(status, Status::Duplicate);
    assert_eq!(
        events,
        [Event::FundingDuplicate {
            kind: FundingKind::Transfer,
            transfer_id: TransferId(1_000),
            account: ALICE,
            original: None,
        }]
    );
    assert_eq!(x.engine.state_hash(), hash, "a duplicate changes nothing");
    assert_eq!(x.balance(BOB, USD).available, USD_FUNDING + 1_000);
    // The same id with another amount is not a repeat: it is refused.
    x.rejected(
        transfer(ALICE, BOB, USD, 2_000, 1_000),
        RejectReason::TransferIdMismatch,
    );
    x.rejected(
        transfer(ALICE, CAROL, USD, 1_000, 1_000),
        RejectReason::TransferIdMismatch,
    );
    x.rejected(
        withdrawal(ALICE, USD, 1_000, 1_000),
        RejectReason::TransferIdMismatch,
    );
    assert_eq!(x.engine.state_hash(), hash);
}

#[test]
fn a_repeat_of_a_rejected_command_returns_the_original_rejection() {
    let mut x = exchange();
    let command = withdrawal(ALICE, USD, USD_FUNDING + 1, 1_000);
    x.rejected(command, RejectReason::InsufficientFunds);
    // Money arrives meanwhile; the repeat still is not applied.
    x.ok(deposit(ALICE, USD, 10, 1_001));
    let (status, events) = x.run(command);
    assert_eq!(status, Status::Duplicate);
    assert!(matches!(
        events[0],
        Event::FundingDuplicate {
            original: Some(RejectReason::InsufficientFunds),
            ..
        }
    ));
    assert_eq!(x.balance(ALICE, USD).available, USD_FUNDING + 10);
}

#[test]
fn transfer_ids_are_strictly_increasing_per_account_and_old_ones_are_refused() {
    let mut x = Exchange::with_config(EngineConfig {
        accounts_max: 8,
        assets_max: 4,
        instruments_max: 4,
        orders_max: 100,
        price_levels_max: 100_000,
        transfer_records_max: 2,
        fee_account: FEES,
    });
    x.ok(deposit(ALICE, USD, 1, 1_000));
    x.ok(deposit(ALICE, USD, 1, 1_001));
    x.ok(deposit(ALICE, USD, 1, 1_002));
    // 1_000's record is gone, but it can never be applied again.
    x.rejected(
        deposit(ALICE, USD, 1, 1_000),
        RejectReason::TransferIdNotIncreasing,
    );
    // An unused id below the last is refused too.
    x.rejected(
        deposit(ALICE, USD, 1, 999),
        RejectReason::TransferIdNotIncreasing,
    );
    assert_eq!(x.run(deposit(ALICE, USD, 1, 1_002)).0, Status::Duplicate);
    // Ids are per account: Bob may use 1_001 although Alice did.
    x.ok(deposit(BOB, USD, 1, 1_001));
    assert_eq!(x.balance(ALICE, USD).available, USD_FUNDING + 3);
}

#[test]
fn a_withdrawal_larger_than_the_available_balance_is_refused() {
    let mut x = exchange();
    x.rejected(
        withdrawal(ALICE, ACME, ACME_FUNDING + 1, 1_000),
        RejectReason::InsufficientFunds,
    );
    // Held funds are not available: an order holds 10 shares.
    let order = x.limit(
        ALICE,
        Side::Sell,
        usd(100, 0),
        10,
        TimeInForce::GoodTillCancel,
    );
    x.ok(Command::NewOrder(order));
    x.rejected(
        withdrawal(ALICE, ACME, ACME_FUNDING - 9, 1_001),
        RejectReason::InsufficientFunds,
    );
    x.rejected(
        transfer(ALICE, BOB, ACME, ACME_FUNDING - 9, 1_002),
        RejectReason::InsufficientFunds,
    );
    x.ok(withdrawal(ALICE, ACME, ACME_FUNDING - 10, 1_003));
    assert_eq!(
        x.balance(ALICE, ACME),
        Balance {
            available: 0,
            held: 10
        }
    );
}

#[test]
fn an_amount_that_would_overflow_is_refused() {
    let mut x = exchange();
    // The supply of USD is 4 × USD_FUNDING: a deposit that takes it past
    // u64::MAX is refused, and so no balance can ever wrap.
    let room = u64::MAX - 4 * USD_FUNDING;
    x.rejected(deposit(ALICE, USD, room + 1, 1_000), RejectReason::Overflow);
    x.rejected(deposit(BOB, USD, u64::MAX, 1_000), RejectReason::Overflow);
    x.ok(deposit(ALICE, USD, room, 1_001));
    assert_eq!(x.balance(ALICE, USD).available, USD_FUNDING + room);
    x.rejected(deposit(BOB, USD, 1, 1_002), RejectReason::Overflow);
    // Trading still works at the limit: credits inside the ledger are
    // bounded by the supply.
    let order = x.limit(BOB, Side::Sell, usd(100, 0), 1, TimeInForce::GoodTillCancel);
    x.ok(Command::NewOrder(order));
    let order = x.limit(
        ALICE,
        Side::Buy,
        usd(100, 0),
        1,
        TimeInForce::GoodTillCancel,
    );
    x.ok(Command::NewOrder(order));
    x.ok(withdrawal(
        ALICE,
        USD,
        x.balance(ALICE, USD).available,
        1_003,
    ));
}

#[test]
fn funding_rejects_in_precedence_order() {
    let mut x = exchange();
    x.rejected(
        deposit(AccountId(7), USD, 1, 1_000),
        RejectReason::UnknownAccount,
    );
    x.rejected(
        deposit(ALICE, AssetId(3), 0, 1_000),
        RejectReason::UnknownAsset,
    );
    x.rejected(deposit(ALICE, USD, 0, 1_001), RejectReason::InvalidAmount);
    x.rejected(
        transfer(ALICE, AccountId(7), AssetId(3), 0, 1_002),
        RejectReason::UnknownAccount,
    );
    x.rejected(
        transfer(ALICE, ALICE, AssetId(3), 0, 1_003),
        RejectReason::SameAccount,
    );
    x.rejected(
        transfer(ALICE, BOB, AssetId(3), 0, 1_004),
        RejectReason::UnknownAsset,
    );
    x.rejected(
        transfer(ALICE, BOB, USD, 0, 1_005),
        RejectReason::InvalidAmount,
    );
    let suspend = |account| {
        Command::Admin(AdminCommand::SetAccountStatus {
            account,
            status: AccountStatus::Suspended,
        })
    };
    x.ok(suspend(BOB));
    x.rejected(
        transfer(ALICE, BOB, USD, 1, 1_006),
        RejectReason::AccountSuspended,
    );
    x.rejected(deposit(BOB, USD, 1, 1_000), RejectReason::AccountSuspended);
    x.rejected(
        withdrawal(BOB, USD, 1, 1_001),
        RejectReason::AccountSuspended,
    );
    x.rejected(
        transfer(BOB, ALICE, USD, 1, 1_002),
        RejectReason::AccountSuspended,
    );
    // Rejections after the id check consumed the id.
    assert_eq!(x.engine.last_transfer_id(ALICE), Some(TransferId(1_006)));
}

#[test]
fn account_query_reports_status_references_and_every_balance() {
    let mut x = exchange();
    let order = x.limit(
        ALICE,
        Side::Sell,
        usd(100, 0),
        10,
        TimeInForce::GoodTillCancel,
    );
    x.ok(Command::NewOrder(order));
    let hash = x.engine.state_hash();
    let events = x.ok(Command::AccountQuery(AccountQuery { account: ALICE }));
    assert_eq!(
        events,
        [
            Event::AccountState {
                account: ALICE,
                status: AccountStatus::Active,
                last_user_ref_num: UserRefNum(1),
                last_transfer_id: x.engine.last_transfer_id(ALICE).unwrap(),
            },
            Event::BalanceReport {
                account: ALICE,
                asset: USD,
                available: USD_FUNDING,
                held: 0
            },
            Event::BalanceReport {
                account: ALICE,
                asset: ACME,
                available: ACME_FUNDING - 10,
                held: 10
            },
            Event::BalanceReport {
                account: ALICE,
                asset: EUR,
                available: EUR_FUNDING,
                held: 0
            },
        ]
    );
    assert_eq!(x.engine.state_hash(), hash, "a query changes nothing");
    x.rejected(
        Command::AccountQuery(AccountQuery {
            account: AccountId(5),
        }),
        RejectReason::UnknownAccount,
    );
}

#[test]
fn admin_rejects() {
    let mut x = exchange();
    let admin = Command::Admin;
    x.rejected(
        admin(AdminCommand::CreateAccount {
            account: AccountId(8),
        }),
        RejectReason::CapacityExceeded,
    );
    x.rejected(
        admin(AdminCommand::CreateAccount { account: ALICE }),
        RejectReason::AlreadyExists,
    );
    let symbol = Symbol::new("GBP").unwrap();
    x.rejected(
        admin(AdminCommand::CreateAsset {
            asset: AssetId(4),
            symbol,
            scale: 2,
        }),
        RejectReason::CapacityExceeded,
    );
    x.rejected(
        admin(AdminCommand::CreateAsset {
            asset: USD,
            symbol,
            scale: 2,
        }),
        RejectReason::AlreadyExists,
    );
    let usd_symbol = Symbol::new("USD").unwrap();
    x.rejected(
        admin(AdminCommand::CreateAsset {
            asset: AssetId(3),
            symbol: usd_symbol,
            scale: 2,
        }),
        RejectReason::AlreadyExists,
    );
    x.rejected(
        admin(AdminCommand::CreateAsset {
            asset: AssetId(3),
            symbol,
            scale: 19,
        }),
        RejectReason::InvalidSpec,
    );
    x.ok(admin(AdminCommand::CreateAsset {
        asset: AssetId(3),
        symbol,
        scale: 2,
    }));

    let create = |instrument, spec| admin(AdminCommand::CreateInstrument { instrument, spec });
    let mut spec = acme_spec();
    spec.symbol = Symbol::new("NEW").unwrap();
    x.rejected(
        create(InstrumentId(4), spec),
        RejectReason::CapacityExceeded,
    );
    x.rejected(create(ACME_USD, spec), RejectReason::AlreadyExists);
    x.rejected(
        create(InstrumentId(2), acme_spec()),
        RejectReason::AlreadyExists,
    );
    let mut unknown = spec;
    unknown.base = AssetId(5);
    x.rejected(create(InstrumentId(2), unknown), RejectReason::UnknownAsset);
    let mut invalid = spec;
    invalid.min_quantity = Quantity(10);
    invalid.max_quantity = Quantity(5);
    x.rejected(create(InstrumentId(2), invalid), RejectReason::InvalidSpec);
    let mut wide = spec;
    wide.tick_size = Price(1);
    x.rejected(create(InstrumentId(2), wide), RejectReason::BandTooWide);
    x.ok(create(InstrumentId(2), spec));

    let update = InstrumentUpdate {
        reference_price: usd(100, 0),
        band_bps: 1_000,
        min_quantity: Quantity(1),
        max_quantity: Quantity(10),
        maker_fee_bps: 10_001,
        taker_fee_bps: 0,
    };
    let update_command =
        |instrument, update| admin(AdminCommand::UpdateInstrument { instrument, update });
    x.rejected(
        update_command(InstrumentId(3), update),
        RejectReason::UnknownInstrument,
    );
    x.rejected(update_command(ACME_USD, update), RejectReason::InvalidSpec);
    let wide_band = InstrumentUpdate {
        maker_fee_bps: 0,
        band_bps: 10_000,
        reference_price: usd(10_000, 0),
        ..update
    };
    x.rejected(
        update_command(ACME_USD, wide_band),
        RejectReason::BandTooWide,
    );
    let status = AdminCommand::SetTradingStatus {
        instrument: InstrumentId(3),
        status: TradingStatus::Halted,
    };
    x.rejected(admin(status), RejectReason::UnknownInstrument);
    let account_status = AdminCommand::SetAccountStatus {
        account: AccountId(6),
        status: AccountStatus::Active,
    };
    x.rejected(admin(account_status), RejectReason::UnknownAccount);
}

#[test]
fn the_state_hash_is_deterministic_and_sensitive() {
    let run = |extra: bool| {
        let mut x = exchange();
        x.gtc(ALICE, Side::Buy, usd(100, 0), 10);
        x.gtc(BOB, Side::Sell, usd(99, 0), 4);
        if extra {
            x.ok(deposit(CAROL, EUR, 1, 1_000));
        }
        x.engine.state_hash()
    };
    assert_eq!(run(false), run(false));
    assert_ne!(run(false), run(true));
}

#[test]
fn every_reject_code_is_produced_by_some_command() {
    // The rule tests above and in orders.rs reach each code; this collects
    // one command per code in one place so that a new code without a test
    // fails here.
    let mut x = Exchange::with_config(EngineConfig {
        accounts_max: 8,
        assets_max: 4,
        instruments_max: 4,
        orders_max: 3,
        price_levels_max: 100_000,
        transfer_records_max: 100,
        fee_account: FEES,
    });
    let mut seen = std::collections::BTreeSet::new();
    let mut expect = |x: &mut Exchange, command: Command, reason: RejectReason| {
        x.rejected(command, reason);
        seen.insert(reason.code());
    };
    let order = |x: &mut Exchange, change: &dyn Fn(&mut NewOrder)| {
        let mut order = x.limit(
            ALICE,
            Side::Buy,
            usd(100, 0),
            1,
            TimeInForce::GoodTillCancel,
        );
        change(&mut order);
        Command::NewOrder(order)
    };
    let command = order(&mut x, &|o| o.account = AccountId(7));
    expect(&mut x, command, RejectReason::UnknownAccount);
    let command = order(&mut x, &|o| o.user_ref_num = UserRefNum(0));
    expect(&mut x, command, RejectReason::DuplicateUserRefNum);
    let command = order(&mut x, &|o| o.instrument = InstrumentId(3));
    expect(&mut x, command, RejectReason::UnknownInstrument);
    let command = order(&mut x, &|o| o.post_only = true);
    let command = match command {
        Command::NewOrder(mut o) => {
            o.time_in_force = TimeInForce::ImmediateOrCancel;
            Command::NewOrder(o)
        }
        _ => unreachable!(),
    };
    expect(&mut x, command, RejectReason::InvalidOrderAttributes);
    let command = order(&mut x, &|o| o.price = OrderPrice::Limit(Price(1_000_050)));
    expect(&mut x, command, RejectReason::PriceOffTick);
    let command = order(&mut x, &|o| o.price = OrderPrice::Limit(usd(50, 0)));
    expect(&mut x, command, RejectReason::PriceOutsideBand);
    let command = order(&mut x, &|o| o.quantity = Quantity(2_000_000));
    expect(&mut x, command, RejectReason::QuantityOutOfRange);
    let command = order(&mut x, &|o| o.quantity = Quantity(999_999));
    expect(&mut x, command, RejectReason::InsufficientFunds);
    let command = order(&mut x, &|o| {
        o.quantity = Quantity(1_000_000);
        o.price = OrderPrice::Market { protection: None };
        o.time_in_force = TimeInForce::ImmediateOrCancel;
        o.side = Side::Sell;
    });
    expect(&mut x, command, RejectReason::InsufficientFunds);
    x.gtc(BOB, Side::Sell, usd(100, 0), 1);
    let command = order(&mut x, &|o| o.post_only = true);
    expect(&mut x, command, RejectReason::WouldTakeLiquidity);
    let bobs = x
        .engine
        .book_orders(ACME_USD, Side::Sell)
        .next()
        .unwrap()
        .order_id;
    let cancel = |order, quantity| {
        Command::CancelOrder(CancelOrder {
            account: ALICE,
            order,
            quantity: Quantity(quantity),
        })
    };
    expect(
        &mut x,
        cancel(OrderRef::UserRef(UserRefNum(99)), 0),
        RejectReason::UnknownOrder,
    );
    expect(
        &mut x,
        cancel(OrderRef::Id(bobs), 0),
        RejectReason::NotYourOrder,
    );
    let alices = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(99, 0), 1));
    expect(
        &mut x,
        cancel(OrderRef::Id(alices), 1),
        RejectReason::QuantityNotReduced,
    );
    expect(
        &mut x,
        deposit(ALICE, AssetId(3), 1, 2_000),
        RejectReason::UnknownAsset,
    );
    expect(
        &mut x,
        deposit(ALICE, USD, 0, 2_001),
        RejectReason::InvalidAmount,
    );
    expect(
        &mut x,
        deposit(ALICE, USD, 1, 2_001),
        RejectReason::TransferIdMismatch,
    );
    expect(
        &mut x,
        deposit(ALICE, USD, 1, 1_500),
        RejectReason::TransferIdNotIncreasing,
    );
    expect(
        &mut x,
        transfer(ALICE, ALICE, USD, 1, 2_002),
        RejectReason::SameAccount,
    );
    expect(
        &mut x,
        deposit(ALICE, USD, u64::MAX, 2_003),
        RejectReason::Overflow,
    );
    let admin = Command::Admin;
    expect(
        &mut x,
        admin(AdminCommand::CreateAccount { account: ALICE }),
        RejectReason::AlreadyExists,
    );
    expect(
        &mut x,
        admin(AdminCommand::CreateAccount {
            account: AccountId(9),
        }),
        RejectReason::CapacityExceeded,
    );
    let symbol = Symbol::new("X").unwrap();
    expect(
        &mut x,
        admin(AdminCommand::CreateAsset {
            asset: AssetId(3),
            symbol,
            scale: 99,
        }),
        RejectReason::InvalidSpec,
    );
    let mut wide = acme_spec();
    wide.symbol = symbol;
    wide.tick_size = Price(1);
    expect(
        &mut x,
        admin(AdminCommand::CreateInstrument {
            instrument: InstrumentId(3),
            spec: wide,
        }),
        RejectReason::BandTooWide,
    );
    let mut lot5 = acme_spec();
    lot5.symbol = Symbol::new("LOT5").unwrap();
    lot5.lot_size = Quantity(5);
    lot5.min_quantity = Quantity(5);
    lot5.max_quantity = Quantity(1_000);
    x.ok(admin(AdminCommand::CreateInstrument {
        instrument: InstrumentId(2),
        spec: lot5,
    }));
    let command = order(&mut x, &|o| {
        o.instrument = InstrumentId(2);
        o.quantity = Quantity(3);
    });
    expect(&mut x, command, RejectReason::QuantityOffLot);
    // orders_max is 3: Bob's ask, Alice's bid, and one more fill the store.
    x.gtc(CAROL, Side::Buy, usd(98, 0), 1);
    let command = order(&mut x, &|o| o.price = OrderPrice::Limit(usd(97, 0)));
    expect(&mut x, command, RejectReason::BookFull);
    let halt = AdminCommand::SetTradingStatus {
        instrument: ACME_USD,
        status: TradingStatus::Halted,
    };
    x.ok(admin(halt));
    let command = order(&mut x, &|_| {});
    expect(&mut x, command, RejectReason::InstrumentHalted);
    let suspend = AdminCommand::SetAccountStatus {
        account: ALICE,
        status: AccountStatus::Suspended,
    };
    x.ok(admin(suspend));
    let command = order(&mut x, &|_| {});
    expect(&mut x, command, RejectReason::AccountSuspended);
    let gateway_reject = Command::GatewayReject(GatewayReject {
        account: BOB,
        user_ref_num: UserRefNum(0),
    });
    expect(&mut x, gateway_reject, RejectReason::GatewayRejected);
    let all: std::collections::BTreeSet<u16> = RejectReason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(seen, all);
}

#[test]
fn the_state_hash_ignores_how_the_price_ladder_was_sized() {
    // The ladder's range depends on the history of band updates, which no
    // command can observe: equal states must hash equal.
    let band = |band_bps| InstrumentUpdate {
        reference_price: usd(100, 0),
        band_bps,
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        maker_fee_bps: 10,
        taker_fee_bps: 20,
    };
    let update = |update| {
        Command::Admin(AdminCommand::UpdateInstrument {
            instrument: ACME_USD,
            update,
        })
    };
    let mut widened = exchange();
    widened.ok(update(band(2_000)));
    widened.ok(update(band(500)));
    let mut direct = exchange();
    direct.ok(update(band(500)));
    direct.ok(update(band(500)));
    assert_eq!(
        widened.engine.instrument(ACME_USD),
        direct.engine.instrument(ACME_USD)
    );
    assert_eq!(widened.engine.state_hash(), direct.engine.state_hash());
}
