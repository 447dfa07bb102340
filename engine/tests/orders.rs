//! Rule tests for orders: every order type and time in force, matching,
//! settlement and fees, cancel, replace, mass cancel, end of day and
//! self-trade prevention. Every command also passes the full invariant audit
//! (see `common::Exchange::run`).

mod common;

use common::*;
use engine::*;

fn bc(account: AccountId, asset: AssetId, available: u64, held: u64) -> Event {
    Event::BalanceChanged {
        account,
        asset,
        available,
        held,
    }
}

#[test]
fn a_resting_buy_holds_notional_plus_the_largest_fee() {
    let mut x = Exchange::new();
    let order = x.limit(
        ALICE,
        Side::Buy,
        usd(100, 0),
        10,
        TimeInForce::GoodTillCancel,
    );
    let events = x.ok(Command::NewOrder(order));
    let id = Exchange::accepted_id(&events);
    // 10 × 100.00 = 10_000_000 minor units, + 20 bps (the taker fee, larger).
    assert_eq!(
        events[1..],
        [
            bc(ALICE, USD, USD_FUNDING - 10_020_000, 10_020_000),
            Event::OrderBooked {
                order_id: id,
                account: ALICE,
                instrument: ACME_USD,
                side: Side::Buy,
                price: usd(100, 0),
                quantity: Quantity(10),
            },
        ]
    );
    assert_eq!(
        x.engine.best_bid(ACME_USD),
        Some((usd(100, 0), Quantity(10)))
    );
}

#[test]
fn a_fill_settles_both_sides_and_both_fees_at_the_makers_price() {
    let mut x = Exchange::new();
    let maker = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(100, 0), 10));
    let order = x.limit(BOB, Side::Sell, usd(99, 0), 4, TimeInForce::GoodTillCancel);
    let events = x.ok(Command::NewOrder(order));
    let taker = Exchange::accepted_id(&events);
    assert_eq!(
        events[1..],
        [
            bc(BOB, ACME, ACME_FUNDING - 4, 4),
            Event::Fill {
                match_number: MatchNumber(1),
                instrument: ACME_USD,
                price: usd(100, 0),
                quantity: Quantity(4),
                taker_side: Side::Sell,
                maker_order_id: maker,
                maker_account: ALICE,
                maker_user_ref_num: UserRefNum(1),
                taker_order_id: taker,
                taker_account: BOB,
                taker_user_ref_num: UserRefNum(1),
            },
            // Alice's hold falls from 10_020_000 to 6_012_000: 4_000_000
            // paid, a 10 bps maker fee of 4_000, and 4_000 of the reserved
            // taker fee released.
            bc(ALICE, USD, USD_FUNDING - 10_020_000 + 4_000, 6_012_000),
            bc(ALICE, ACME, ACME_FUNDING + 4, 0),
            bc(BOB, ACME, ACME_FUNDING - 4, 0),
            // Bob receives 4_000_000 less his 20 bps taker fee.
            bc(BOB, USD, USD_FUNDING + 3_992_000, 0),
            bc(FEES, USD, 12_000, 0),
        ]
    );
    assert_eq!(x.queue(Side::Buy), [(maker, 6)]);
}

#[test]
fn a_buy_taker_gets_price_improvement_released() {
    let mut x = Exchange::new();
    x.gtc(BOB, Side::Sell, usd(100, 0), 1);
    let events = x.gtc(ALICE, Side::Buy, usd(101, 0), 1);
    // Held 1_010_000 + 2_020; paid 1_000_000 + 2_000 (taker fee on the
    // fill's notional); 10_020 released.
    assert!(events.contains(&bc(ALICE, USD, USD_FUNDING - 1_002_000, 0)));
    assert_eq!(x.balance(ALICE, ACME).available, ACME_FUNDING + 1);
    assert!(x.queue(Side::Buy).is_empty() && x.queue(Side::Sell).is_empty());
}

#[test]
fn fees_round_down() {
    let mut x = Exchange::new();
    // EUR/USD has no fees; make ACME's rounding visible: one share at 1.00
    // after moving the band there.
    let update = InstrumentUpdate {
        reference_price: usd(1, 0),
        band_bps: 1_000,
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        maker_fee_bps: 10,
        taker_fee_bps: 20,
    };
    x.ok(Command::Admin(AdminCommand::UpdateInstrument {
        instrument: ACME_USD,
        update,
    }));
    x.gtc(ALICE, Side::Buy, usd(1, 0), 1);
    x.gtc(BOB, Side::Sell, usd(1, 0), 1);
    // Notional 10_000: maker fee 10 bps = 10, taker fee 20 bps = 20.
    assert_eq!(x.balance(FEES, USD).available, 30);
    // 2 shares at 0.99 = 19_800: 10 bps = 19.8 → 19.
    x.gtc(ALICE, Side::Buy, usd(0, 99), 2);
    x.gtc(BOB, Side::Sell, usd(0, 99), 2);
    assert_eq!(x.balance(FEES, USD).available, 30 + 19 + 39);
}

#[test]
fn price_time_priority_best_price_then_oldest() {
    let mut x = Exchange::new();
    let first = Exchange::accepted_id(&x.gtc(ALICE, Side::Sell, usd(100, 0), 5));
    let second = Exchange::accepted_id(&x.gtc(BOB, Side::Sell, usd(100, 0), 5));
    let better = Exchange::accepted_id(&x.gtc(CAROL, Side::Sell, usd(99, 50), 5));
    let events = x.gtc(DAVE, Side::Buy, usd(100, 0), 12);
    let taker = Exchange::accepted_id(&events);
    assert_eq!(
        Exchange::fills(&events),
        [
            (usd(99, 50), 5, better, taker),
            (usd(100, 0), 5, first, taker),
            (usd(100, 0), 2, second, taker)
        ]
    );
    assert_eq!(x.queue(Side::Sell), [(second, 3)]);
    let match_numbers: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Fill { match_number, .. } => Some(match_number.0),
            _ => None,
        })
        .collect();
    assert_eq!(match_numbers, [1, 2, 3]);
}

#[test]
fn a_partly_filled_gtc_rests_with_its_remainder() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Sell, usd(100, 0), 3);
    let events = x.gtc(BOB, Side::Buy, usd(100, 0), 5);
    let id = Exchange::accepted_id(&events);
    assert!(matches!(
        events.last(),
        Some(Event::OrderBooked {
            quantity: Quantity(2),
            ..
        })
    ));
    assert_eq!(x.queue(Side::Buy), [(id, 2)]);
}

#[test]
fn ioc_trades_what_it_can_and_cancels_the_rest() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Sell, usd(100, 0), 3);
    let order = x.limit(
        BOB,
        Side::Buy,
        usd(100, 0),
        5,
        TimeInForce::ImmediateOrCancel,
    );
    let events = x.ok(Command::NewOrder(order));
    assert_eq!(Exchange::fills(&events).len(), 1);
    let id = Exchange::accepted_id(&events);
    assert!(events.contains(&Event::OrderCanceled {
        order_id: id,
        account: BOB,
        user_ref_num: order.user_ref_num,
        instrument: ACME_USD,
        side: Side::Buy,
        canceled: Quantity(2),
        remaining: Quantity(0),
        reason: CancelReason::ImmediateOrCancel,
    }));
    assert_eq!(x.balance(BOB, USD).held, 0);
    assert!(x.queue(Side::Buy).is_empty());
    // An IOC that cannot trade at all is cancelled whole.
    let order = x.limit(
        BOB,
        Side::Buy,
        usd(99, 0),
        5,
        TimeInForce::ImmediateOrCancel,
    );
    let events = x.ok(Command::NewOrder(order));
    assert!(Exchange::fills(&events).is_empty());
    assert!(matches!(
        events.last(),
        Some(Event::BalanceChanged { held: 0, .. })
    ));
}

#[test]
fn fok_fills_whole_or_not_at_all() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Sell, usd(100, 0), 3);
    x.gtc(CAROL, Side::Sell, usd(100, 50), 3);
    let before = x.engine.state_hash();
    let order = x.limit(BOB, Side::Buy, usd(100, 50), 7, TimeInForce::FillOrKill);
    let events = x.ok(Command::NewOrder(order));
    let id = Exchange::accepted_id(&events);
    assert_eq!(
        events[1..],
        [Event::OrderCanceled {
            order_id: id,
            account: BOB,
            user_ref_num: order.user_ref_num,
            instrument: ACME_USD,
            side: Side::Buy,
            canceled: Quantity(7),
            remaining: Quantity(0),
            reason: CancelReason::FillOrKill,
        }]
    );
    assert_eq!(x.queue(Side::Sell).len(), 2);
    assert_ne!(
        x.engine.state_hash(),
        before,
        "the order id and user reference were consumed"
    );
    let order = x.limit(BOB, Side::Buy, usd(100, 50), 6, TimeInForce::FillOrKill);
    let events = x.ok(Command::NewOrder(order));
    assert_eq!(Exchange::fills(&events).len(), 2);
    assert!(x.queue(Side::Sell).is_empty());
    assert_eq!(x.balance(BOB, USD).held, 0);
}

#[test]
fn fok_counts_own_orders_by_self_trade_mode() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Sell, usd(100, 0), 3);
    x.gtc(BOB, Side::Sell, usd(100, 0), 3);
    let mut order = x.limit(ALICE, Side::Buy, usd(100, 0), 3, TimeInForce::FillOrKill);
    order.self_trade = SelfTradePrevention::CancelNewest;
    let events = x.ok(Command::NewOrder(order));
    assert!(
        Exchange::fills(&events).is_empty(),
        "its own order is first: killed"
    );
    order.user_ref_num = x.next_user_ref(ALICE);
    order.self_trade = SelfTradePrevention::CancelOldest;
    let events = x.ok(Command::NewOrder(order));
    assert_eq!(
        Exchange::fills(&events).len(),
        1,
        "its own order is cancelled, Bob's fills it"
    );
    assert!(x.queue(Side::Sell).is_empty());
}

#[test]
fn a_market_order_never_trades_through_its_protection_price() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Sell, usd(100, 0), 2);
    x.gtc(ALICE, Side::Sell, usd(101, 0), 2);
    x.gtc(ALICE, Side::Sell, usd(102, 0), 2);
    let order = NewOrder {
        account: BOB,
        user_ref_num: x.next_user_ref(BOB),
        instrument: ACME_USD,
        side: Side::Buy,
        price: OrderPrice::Market {
            protection: Some(usd(101, 0)),
        },
        quantity: Quantity(10),
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
        self_trade: SelfTradePrevention::None,
    };
    let events = x.ok(Command::NewOrder(order));
    let prices: Vec<Price> = Exchange::fills(&events).iter().map(|f| f.0).collect();
    assert_eq!(prices, [usd(100, 0), usd(101, 0)]);
    assert!(matches!(
        events.last(),
        Some(Event::BalanceChanged {
            account: BOB,
            held: 0,
            ..
        })
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OrderCanceled {
            canceled: Quantity(6),
            reason: CancelReason::ImmediateOrCancel,
            ..
        }
    )));
    assert_eq!(
        x.engine.best_ask(ACME_USD),
        Some((usd(102, 0), Quantity(2)))
    );
}

#[test]
fn a_market_order_without_protection_stops_at_the_band() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Buy, usd(95, 0), 2);
    // Move the band up: the resting bid at 95.00 is now below it.
    let update = InstrumentUpdate {
        reference_price: usd(110, 0),
        band_bps: 500,
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        maker_fee_bps: 10,
        taker_fee_bps: 20,
    };
    x.ok(Command::Admin(AdminCommand::UpdateInstrument {
        instrument: ACME_USD,
        update,
    }));
    let order = NewOrder {
        account: BOB,
        user_ref_num: x.next_user_ref(BOB),
        instrument: ACME_USD,
        side: Side::Sell,
        price: OrderPrice::Market { protection: None },
        quantity: Quantity(2),
        time_in_force: TimeInForce::ImmediateOrCancel,
        post_only: false,
        self_trade: SelfTradePrevention::None,
    };
    let events = x.ok(Command::NewOrder(order));
    assert!(
        matches!(events[0], Event::OrderAccepted { price, market: true, .. } if price == usd(104, 50))
    );
    assert!(
        Exchange::fills(&events).is_empty(),
        "95.00 is beyond the band's low of 104.50"
    );
}

#[test]
fn market_and_post_only_attribute_rules() {
    let mut x = Exchange::new();
    let mut order = x.limit(ALICE, Side::Buy, usd(100, 0), 1, TimeInForce::Day);
    order.price = OrderPrice::Market { protection: None };
    x.rejected(
        Command::NewOrder(order),
        RejectReason::InvalidOrderAttributes,
    );
    let mut order = x.limit(
        ALICE,
        Side::Buy,
        usd(100, 0),
        1,
        TimeInForce::ImmediateOrCancel,
    );
    order.post_only = true;
    x.rejected(
        Command::NewOrder(order),
        RejectReason::InvalidOrderAttributes,
    );
    let mut order = x.limit(
        ALICE,
        Side::Buy,
        usd(100, 0),
        1,
        TimeInForce::ImmediateOrCancel,
    );
    order.price = OrderPrice::Market {
        protection: Some(Price(0)),
    };
    x.rejected(Command::NewOrder(order), RejectReason::PriceOutsideBand);
}

#[test]
fn post_only_rests_or_is_rejected_if_it_would_take() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Sell, usd(100, 0), 1);
    let mut order = x.limit(BOB, Side::Buy, usd(99, 99), 1, TimeInForce::Day);
    order.post_only = true;
    let events = x.ok(Command::NewOrder(order));
    assert!(matches!(events.last(), Some(Event::OrderBooked { .. })));
    let mut order = x.limit(BOB, Side::Buy, usd(100, 0), 1, TimeInForce::Day);
    order.post_only = true;
    x.rejected(Command::NewOrder(order), RejectReason::WouldTakeLiquidity);
}

#[test]
fn cancel_whole_and_partial_keeping_priority() {
    let mut x = Exchange::new();
    let first = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(100, 0), 10));
    let second = Exchange::accepted_id(&x.gtc(BOB, Side::Buy, usd(100, 0), 10));
    let events = x.ok(Command::CancelOrder(CancelOrder {
        account: ALICE,
        order: OrderRef::UserRef(UserRefNum(1)),
        quantity: Quantity(4),
    }));
    assert_eq!(
        events,
        [
            Event::OrderCanceled {
                order_id: first,
                account: ALICE,
                user_ref_num: UserRefNum(1),
                instrument: ACME_USD,
                side: Side::Buy,
                canceled: Quantity(6),
                remaining: Quantity(4),
                reason: CancelReason::Requested,
            },
            bc(ALICE, USD, USD_FUNDING - 4_008_000, 4_008_000),
        ]
    );
    assert_eq!(
        x.queue(Side::Buy),
        [(first, 4), (second, 10)],
        "priority kept"
    );
    x.ok(Command::CancelOrder(CancelOrder {
        account: ALICE,
        order: OrderRef::Id(first),
        quantity: Quantity(0),
    }));
    assert_eq!(x.queue(Side::Buy), [(second, 10)]);
    assert_eq!(
        x.balance(ALICE, USD),
        Balance {
            available: USD_FUNDING,
            held: 0
        }
    );
}

#[test]
fn cancel_rejects() {
    let mut x = Exchange::new();
    let bobs = Exchange::accepted_id(&x.gtc(BOB, Side::Buy, usd(100, 0), 10));
    let cancel = |account, order, quantity| {
        Command::CancelOrder(CancelOrder {
            account,
            order,
            quantity: Quantity(quantity),
        })
    };
    x.rejected(
        cancel(AccountId(7), OrderRef::Id(bobs), 0),
        RejectReason::UnknownAccount,
    );
    x.rejected(
        cancel(ALICE, OrderRef::Id(OrderId(999)), 0),
        RejectReason::UnknownOrder,
    );
    // Another account's order: by id it is named and refused; by user
    // reference it is simply not one of Alice's.
    x.rejected(
        cancel(ALICE, OrderRef::Id(bobs), 0),
        RejectReason::NotYourOrder,
    );
    x.rejected(
        cancel(ALICE, OrderRef::UserRef(UserRefNum(1)), 0),
        RejectReason::UnknownOrder,
    );
    x.rejected(
        cancel(BOB, OrderRef::Id(bobs), 10),
        RejectReason::QuantityNotReduced,
    );
    x.rejected(
        cancel(BOB, OrderRef::Id(bobs), 11),
        RejectReason::QuantityNotReduced,
    );
    assert_eq!(x.queue(Side::Buy), [(bobs, 10)]);
}

#[test]
fn cancel_to_a_quantity_off_the_lot_is_rejected() {
    let mut x = Exchange::new();
    // ACME's lot is 1; an instrument with a lot of 5 shows the rule.
    let mut spec = acme_spec();
    spec.symbol = Symbol::new("LOT5").unwrap();
    spec.lot_size = Quantity(5);
    spec.min_quantity = Quantity(5);
    spec.max_quantity = Quantity(1_000);
    x.ok(Command::Admin(AdminCommand::CreateInstrument {
        instrument: InstrumentId(2),
        spec,
    }));
    let mut order = x.limit(ALICE, Side::Buy, usd(100, 0), 10, TimeInForce::Day);
    order.instrument = InstrumentId(2);
    x.ok(Command::NewOrder(order));
    x.rejected(
        Command::CancelOrder(CancelOrder {
            account: ALICE,
            order: OrderRef::UserRef(order.user_ref_num),
            quantity: Quantity(3),
        }),
        RejectReason::QuantityOffLot,
    );
    x.ok(Command::CancelOrder(CancelOrder {
        account: ALICE,
        order: OrderRef::UserRef(order.user_ref_num),
        quantity: Quantity(5),
    }));
}

fn replace(
    account: AccountId,
    old: UserRefNum,
    new: UserRefNum,
    price: Price,
    quantity: u64,
) -> Command {
    Command::ReplaceOrder(ReplaceOrder {
        account,
        order: OrderRef::UserRef(old),
        new_user_ref_num: new,
        price,
        quantity: Quantity(quantity),
    })
}

#[test]
fn replace_keeps_priority_for_the_same_price_and_less_quantity() {
    let mut x = Exchange::new();
    let first = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(100, 0), 10));
    let second = Exchange::accepted_id(&x.gtc(BOB, Side::Buy, usd(100, 0), 10));
    let new_ref = x.next_user_ref(ALICE);
    let events = x.ok(replace(ALICE, UserRefNum(1), new_ref, usd(100, 0), 7));
    assert!(matches!(
        events[0],
        Event::OrderReplaced { old_order_id, new_order_id, priority_kept: true, quantity: Quantity(7), .. }
            if old_order_id == first && new_order_id == first
    ));
    assert_eq!(
        events[1],
        bc(ALICE, USD, USD_FUNDING - 7_014_000, 7_014_000)
    );
    assert_eq!(x.queue(Side::Buy), [(first, 7), (second, 10)]);
    let view = x.engine.order(ALICE, OrderRef::UserRef(new_ref)).unwrap();
    assert_eq!(view.order_id, first);
    assert!(
        x.engine
            .order(ALICE, OrderRef::UserRef(UserRefNum(1)))
            .is_none()
    );
}

#[test]
fn replace_to_more_quantity_or_another_price_loses_priority() {
    let mut x = Exchange::new();
    let first = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(100, 0), 10));
    let second = Exchange::accepted_id(&x.gtc(BOB, Side::Buy, usd(100, 0), 10));
    let new_ref = x.next_user_ref(ALICE);
    let events = x.ok(replace(ALICE, UserRefNum(1), new_ref, usd(100, 0), 11));
    let Event::OrderReplaced {
        new_order_id,
        priority_kept: false,
        ..
    } = events[0]
    else {
        panic!("{events:?}");
    };
    assert!(new_order_id > second);
    assert_eq!(
        events[1],
        bc(ALICE, USD, USD_FUNDING - 11_022_000, 11_022_000)
    );
    assert_eq!(x.queue(Side::Buy), [(second, 10), (new_order_id, 11)]);
    assert!(x.engine.order_by_id(first).is_none());
}

#[test]
fn replace_to_a_crossing_price_trades_like_a_new_order() {
    let mut x = Exchange::new();
    let ask = Exchange::accepted_id(&x.gtc(BOB, Side::Sell, usd(101, 0), 4));
    x.gtc(ALICE, Side::Buy, usd(100, 0), 10);
    let new_ref = x.next_user_ref(ALICE);
    let events = x.ok(replace(ALICE, UserRefNum(1), new_ref, usd(101, 0), 10));
    let Event::OrderReplaced { new_order_id, .. } = events[0] else {
        panic!()
    };
    assert_eq!(
        Exchange::fills(&events),
        [(usd(101, 0), 4, ask, new_order_id)]
    );
    assert!(matches!(
        events.last(),
        Some(Event::OrderBooked {
            quantity: Quantity(6),
            ..
        })
    ));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::OrderAccepted { .. }))
    );
}

#[test]
fn replace_rejects_in_precedence_order() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Buy, usd(100, 0), 10);
    x.rejected(
        replace(ALICE, UserRefNum(1), UserRefNum(1), usd(100, 0), 5),
        RejectReason::DuplicateUserRefNum,
    );
    x.rejected(
        replace(ALICE, UserRefNum(9), UserRefNum(2), usd(100, 0), 5),
        RejectReason::UnknownOrder,
    );
    x.rejected(
        replace(ALICE, UserRefNum(1), UserRefNum(3), Price(1_000_050), 5),
        RejectReason::PriceOffTick,
    );
    x.rejected(
        replace(ALICE, UserRefNum(1), UserRefNum(4), usd(120, 0), 5),
        RejectReason::PriceOutsideBand,
    );
    x.rejected(
        replace(ALICE, UserRefNum(1), UserRefNum(5), usd(100, 0), 0),
        RejectReason::QuantityOutOfRange,
    );
    x.rejected(
        replace(ALICE, UserRefNum(1), UserRefNum(6), usd(100, 0), 999_999),
        RejectReason::InsufficientFunds,
    );
    let halt = AdminCommand::SetTradingStatus {
        instrument: ACME_USD,
        status: TradingStatus::Halted,
    };
    x.ok(Command::Admin(halt));
    x.rejected(
        replace(ALICE, UserRefNum(1), UserRefNum(7), usd(100, 0), 5),
        RejectReason::InstrumentHalted,
    );
    // Every rejected replace consumed its new user reference.
    assert_eq!(x.engine.last_user_ref_num(ALICE), Some(UserRefNum(7)));
    assert_eq!(
        x.engine
            .order(ALICE, OrderRef::UserRef(UserRefNum(1)))
            .unwrap()
            .remaining,
        Quantity(10)
    );
}

#[test]
fn a_post_only_replace_that_would_cross_is_rejected() {
    let mut x = Exchange::new();
    x.gtc(BOB, Side::Sell, usd(101, 0), 1);
    let mut order = x.limit(
        ALICE,
        Side::Buy,
        usd(100, 0),
        1,
        TimeInForce::GoodTillCancel,
    );
    order.post_only = true;
    x.ok(Command::NewOrder(order));
    let new_ref = x.next_user_ref(ALICE);
    x.rejected(
        replace(ALICE, order.user_ref_num, new_ref, usd(101, 0), 1),
        RejectReason::WouldTakeLiquidity,
    );
}

#[test]
fn mass_cancel_all_or_one_instrument_even_when_suspended() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Buy, usd(99, 0), 1);
    x.gtc(ALICE, Side::Sell, usd(101, 0), 1);
    let eur = NewOrder {
        account: ALICE,
        user_ref_num: x.next_user_ref(ALICE),
        instrument: EUR_USD,
        side: Side::Buy,
        price: OrderPrice::Limit(Price(11_000)),
        quantity: Quantity(100),
        time_in_force: TimeInForce::GoodTillCancel,
        post_only: false,
        self_trade: SelfTradePrevention::None,
    };
    x.ok(Command::NewOrder(eur));
    let bobs = Exchange::accepted_id(&x.gtc(BOB, Side::Buy, usd(99, 0), 1));
    let suspend = AdminCommand::SetAccountStatus {
        account: ALICE,
        status: AccountStatus::Suspended,
    };
    x.ok(Command::Admin(suspend));
    let events = x.ok(Command::MassCancel(MassCancel {
        account: ALICE,
        instrument: Some(ACME_USD),
    }));
    assert_eq!(
        events.last(),
        Some(&Event::MassCanceled {
            account: ALICE,
            instrument: Some(ACME_USD),
            count: 2
        })
    );
    let reasons = events.iter().filter(|e| {
        matches!(
            e,
            Event::OrderCanceled {
                reason: CancelReason::MassCancel,
                ..
            }
        )
    });
    assert_eq!(reasons.count(), 2);
    assert_eq!(x.engine.account_orders(ALICE).count(), 1);
    let events = x.ok(Command::MassCancel(MassCancel {
        account: ALICE,
        instrument: None,
    }));
    assert_eq!(
        events.last(),
        Some(&Event::MassCanceled {
            account: ALICE,
            instrument: None,
            count: 1
        })
    );
    assert_eq!(
        x.queue(Side::Buy),
        [(bobs, 1)],
        "other accounts are untouched"
    );
    assert_eq!(x.balance(ALICE, USD).held, 0);
    x.rejected(
        Command::MassCancel(MassCancel {
            account: ALICE,
            instrument: Some(InstrumentId(3)),
        }),
        RejectReason::UnknownInstrument,
    );
}

#[test]
fn end_of_day_cancels_day_orders_only() {
    let mut x = Exchange::new();
    let day = x.limit(ALICE, Side::Buy, usd(99, 0), 1, TimeInForce::Day);
    x.ok(Command::NewOrder(day));
    let gtc = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(98, 0), 1));
    let ask = x.limit(BOB, Side::Sell, usd(101, 0), 1, TimeInForce::Day);
    x.ok(Command::NewOrder(ask));
    let events = x.ok(Command::Admin(AdminCommand::EndOfDay));
    let canceled: Vec<(AccountId, CancelReason)> = events
        .iter()
        .filter_map(|e| match e {
            Event::OrderCanceled {
                account, reason, ..
            } => Some((*account, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        canceled,
        [
            (ALICE, CancelReason::EndOfDay),
            (BOB, CancelReason::EndOfDay)
        ]
    );
    assert_eq!(events.last(), Some(&Event::EndOfDay { count: 2 }));
    assert_eq!(x.queue(Side::Buy), [(gtc, 1)]);
    assert!(x.queue(Side::Sell).is_empty());
}

/// Alice rests a sell of 5 at 100.00 (and Bob one behind it), then buys
/// `quantity` at 100.00 with `mode`.
fn self_cross(
    mode: SelfTradePrevention,
    quantity: u64,
) -> (Exchange, Vec<Event>, OrderId, OrderId) {
    let mut x = Exchange::new();
    let alices = Exchange::accepted_id(&x.gtc(ALICE, Side::Sell, usd(100, 0), 5));
    let bobs = Exchange::accepted_id(&x.gtc(BOB, Side::Sell, usd(100, 0), 5));
    let mut order = x.limit(
        ALICE,
        Side::Buy,
        usd(100, 0),
        quantity,
        TimeInForce::GoodTillCancel,
    );
    order.self_trade = mode;
    let events = x.ok(Command::NewOrder(order));
    (x, events, alices, bobs)
}

fn cancels(events: &[Event]) -> Vec<(OrderId, u64, u64, CancelReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderCanceled {
                order_id,
                canceled,
                remaining,
                reason,
                ..
            } => Some((*order_id, canceled.0, remaining.0, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn self_trade_allowed_without_a_mode() {
    let (x, events, alices, _) = self_cross(SelfTradePrevention::None, 5);
    let taker = Exchange::accepted_id(&events);
    assert_eq!(Exchange::fills(&events), [(usd(100, 0), 5, alices, taker)]);
    // Alice paid herself, and the fee account both fees.
    assert_eq!(x.balance(ALICE, ACME).available, ACME_FUNDING);
    assert_eq!(
        x.balance(ALICE, USD).available,
        USD_FUNDING - 5_000 - 10_000
    );
}

#[test]
fn self_trade_cancel_newest() {
    let (x, events, alices, bobs) = self_cross(SelfTradePrevention::CancelNewest, 7);
    let taker = Exchange::accepted_id(&events);
    assert!(Exchange::fills(&events).is_empty());
    assert_eq!(cancels(&events), [(taker, 7, 0, CancelReason::SelfTrade)]);
    assert_eq!(x.queue(Side::Sell), [(alices, 5), (bobs, 5)]);
}

#[test]
fn self_trade_cancel_oldest() {
    let (x, events, alices, bobs) = self_cross(SelfTradePrevention::CancelOldest, 7);
    let taker = Exchange::accepted_id(&events);
    assert_eq!(cancels(&events), [(alices, 5, 0, CancelReason::SelfTrade)]);
    assert_eq!(Exchange::fills(&events), [(usd(100, 0), 5, bobs, taker)]);
    assert_eq!(x.queue(Side::Buy), [(taker, 2)]);
}

#[test]
fn self_trade_cancel_both() {
    let (x, events, alices, bobs) = self_cross(SelfTradePrevention::CancelBoth, 7);
    let taker = Exchange::accepted_id(&events);
    assert_eq!(
        cancels(&events),
        [
            (alices, 5, 0, CancelReason::SelfTrade),
            (taker, 7, 0, CancelReason::SelfTrade)
        ]
    );
    assert!(Exchange::fills(&events).is_empty());
    assert_eq!(x.queue(Side::Sell), [(bobs, 5)]);
    assert!(x.queue(Side::Buy).is_empty());
}

#[test]
fn self_trade_decrement_and_cancel() {
    // The taker is larger: the resting order goes, the taker shrinks and
    // then trades with Bob.
    let (x, events, alices, bobs) = self_cross(SelfTradePrevention::DecrementAndCancel, 7);
    let taker = Exchange::accepted_id(&events);
    assert_eq!(
        cancels(&events),
        [
            (alices, 5, 0, CancelReason::SelfTrade),
            (taker, 5, 2, CancelReason::SelfTrade)
        ]
    );
    assert_eq!(Exchange::fills(&events), [(usd(100, 0), 2, bobs, taker)]);
    assert_eq!(x.queue(Side::Sell), [(bobs, 3)]);
    // The taker is smaller: the resting order shrinks in place, the taker
    // is gone, nothing trades.
    let (x, events, alices, bobs) = self_cross(SelfTradePrevention::DecrementAndCancel, 3);
    let taker = Exchange::accepted_id(&events);
    assert_eq!(
        cancels(&events),
        [
            (alices, 3, 2, CancelReason::SelfTrade),
            (taker, 3, 0, CancelReason::SelfTrade)
        ]
    );
    assert!(Exchange::fills(&events).is_empty());
    assert_eq!(x.queue(Side::Sell), [(alices, 2), (bobs, 5)]);
}

#[test]
fn user_ref_nums_are_strictly_increasing_and_consumed_by_rejects() {
    let mut x = Exchange::new();
    let order = x.limit(ALICE, Side::Buy, Price(1_000_050), 1, TimeInForce::Day);
    x.rejected(Command::NewOrder(order), RejectReason::PriceOffTick);
    let mut resend = order;
    resend.price = OrderPrice::Limit(usd(100, 0));
    x.rejected(Command::NewOrder(resend), RejectReason::DuplicateUserRefNum);
    resend.user_ref_num = UserRefNum(order.user_ref_num.0 + 10);
    x.ok(Command::NewOrder(resend));
    let mut lower = resend;
    lower.user_ref_num = UserRefNum(order.user_ref_num.0 + 5);
    x.rejected(Command::NewOrder(lower), RejectReason::DuplicateUserRefNum);
    // Each account has its own sequence.
    let mut bobs = resend;
    bobs.account = BOB;
    x.ok(Command::NewOrder(bobs));
}

#[test]
fn halted_instruments_take_cancels_but_not_orders() {
    let mut x = Exchange::new();
    let resting = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(100, 0), 1));
    let halt = AdminCommand::SetTradingStatus {
        instrument: ACME_USD,
        status: TradingStatus::Halted,
    };
    x.ok(Command::Admin(halt));
    let order = x.limit(BOB, Side::Sell, usd(100, 0), 1, TimeInForce::Day);
    x.rejected(Command::NewOrder(order), RejectReason::InstrumentHalted);
    x.ok(Command::CancelOrder(CancelOrder {
        account: ALICE,
        order: OrderRef::Id(resting),
        quantity: Quantity(0),
    }));
    let resume = AdminCommand::SetTradingStatus {
        instrument: ACME_USD,
        status: TradingStatus::Open,
    };
    x.ok(Command::Admin(resume));
    x.gtc(BOB, Side::Sell, usd(100, 0), 1);
}

#[test]
fn suspended_accounts_cannot_trade_but_can_cancel() {
    let mut x = Exchange::new();
    let resting = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(100, 0), 1));
    let suspend = AdminCommand::SetAccountStatus {
        account: ALICE,
        status: AccountStatus::Suspended,
    };
    x.ok(Command::Admin(suspend));
    let order = x.limit(ALICE, Side::Buy, usd(100, 0), 1, TimeInForce::Day);
    x.rejected(Command::NewOrder(order), RejectReason::AccountSuspended);
    let new_ref = x.next_user_ref(ALICE);
    x.rejected(
        replace(ALICE, UserRefNum(1), new_ref, usd(99, 0), 1),
        RejectReason::AccountSuspended,
    );
    x.ok(Command::CancelOrder(CancelOrder {
        account: ALICE,
        order: OrderRef::Id(resting),
        quantity: Quantity(0),
    }));
}

#[test]
fn new_order_rejects_in_precedence_order() {
    let mut x = Exchange::new();
    let base = x.limit(ALICE, Side::Buy, usd(100, 0), 1, TimeInForce::Day);
    let mut n = 100;
    let mut with = |change: &dyn Fn(&mut NewOrder)| {
        n += 1;
        let mut order = base;
        order.user_ref_num = UserRefNum(n);
        change(&mut order);
        Command::NewOrder(order)
    };
    let cases: Vec<(Command, RejectReason)> = vec![
        // Several faults at once: the earliest in the precedence wins.
        (
            with(&|o| {
                o.account = AccountId(7);
                o.instrument = InstrumentId(9);
            }),
            RejectReason::UnknownAccount,
        ),
        (
            with(&|o| {
                o.instrument = InstrumentId(9);
                o.quantity = Quantity(0);
            }),
            RejectReason::UnknownInstrument,
        ),
        (
            with(&|o| {
                o.price = OrderPrice::Limit(Price(1_000_050));
                o.quantity = Quantity(0);
            }),
            RejectReason::PriceOffTick,
        ),
        (
            with(&|o| {
                o.price = OrderPrice::Limit(usd(200, 0));
                o.quantity = Quantity(0);
            }),
            RejectReason::PriceOutsideBand,
        ),
        (
            with(&|o| o.price = OrderPrice::Limit(Price(-100))),
            RejectReason::PriceOutsideBand,
        ),
        (
            with(&|o| o.quantity = Quantity(0)),
            RejectReason::QuantityOutOfRange,
        ),
        (
            with(&|o| o.quantity = Quantity(1_000_001)),
            RejectReason::QuantityOutOfRange,
        ),
        (
            with(&|o| o.quantity = Quantity(100_000)),
            RejectReason::InsufficientFunds,
        ),
        (
            with(&|o| {
                o.side = Side::Sell;
                o.quantity = Quantity(ACME_FUNDING + 1);
            }),
            RejectReason::InsufficientFunds,
        ),
    ];
    for (command, reason) in cases {
        x.rejected(command, reason);
    }
}

#[test]
fn an_order_whose_hold_overflows_is_rejected() {
    let mut x = Exchange::new();
    let mut spec = acme_spec();
    spec.symbol = Symbol::new("HUGE").unwrap();
    spec.max_quantity = Quantity(u64::MAX);
    spec.tick_size = Price(1);
    spec.band_bps = 0;
    spec.reference_price = Price(i64::MAX / 4);
    x.ok(Command::Admin(AdminCommand::CreateInstrument {
        instrument: InstrumentId(2),
        spec,
    }));
    // 9 × (2^61 − 1) does not fit 64 bits.
    let mut order = x.limit(ALICE, Side::Buy, Price(i64::MAX / 4), 9, TimeInForce::Day);
    order.instrument = InstrumentId(2);
    x.rejected(Command::NewOrder(order), RejectReason::Overflow);
}

#[test]
fn book_full_rejects_only_orders_that_may_rest() {
    let mut x = Exchange::with_config(EngineConfig {
        accounts_max: 8,
        assets_max: 4,
        instruments_max: 4,
        orders_max: 2,
        price_levels_max: 100_000,
        transfer_records_max: 100,
        fee_account: FEES,
    });
    x.gtc(ALICE, Side::Sell, usd(100, 0), 1);
    x.gtc(ALICE, Side::Sell, usd(101, 0), 1);
    let order = x.limit(BOB, Side::Buy, usd(99, 0), 1, TimeInForce::Day);
    x.rejected(Command::NewOrder(order), RejectReason::BookFull);
    let order = x.limit(
        BOB,
        Side::Buy,
        usd(100, 0),
        1,
        TimeInForce::ImmediateOrCancel,
    );
    let events = x.ok(Command::NewOrder(order));
    assert_eq!(Exchange::fills(&events).len(), 1);
    x.gtc(BOB, Side::Buy, usd(99, 0), 1);
}

#[test]
fn fee_rates_are_fixed_when_an_order_is_accepted() {
    let mut x = Exchange::new();
    x.gtc(ALICE, Side::Buy, usd(100, 0), 10);
    let update = InstrumentUpdate {
        reference_price: usd(100, 0),
        band_bps: 1_000,
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        maker_fee_bps: 100,
        taker_fee_bps: 200,
    };
    x.ok(Command::Admin(AdminCommand::UpdateInstrument {
        instrument: ACME_USD,
        update,
    }));
    x.gtc(BOB, Side::Sell, usd(100, 0), 10);
    // Alice, the maker, pays her 10 bps of 10_000_000; Bob 200 bps.
    assert_eq!(x.balance(FEES, USD).available, 10_000 + 200_000);
    assert_eq!(
        x.balance(ALICE, USD),
        Balance {
            available: USD_FUNDING - 10_010_000,
            held: 0
        }
    );
}

#[test]
fn a_band_moved_away_keeps_resting_orders_tradeable() {
    let mut x = Exchange::new();
    let low = Exchange::accepted_id(&x.gtc(ALICE, Side::Buy, usd(91, 0), 1));
    let update = InstrumentUpdate {
        reference_price: usd(150, 0),
        band_bps: 5_000,
        min_quantity: Quantity(1),
        max_quantity: Quantity(1_000_000),
        maker_fee_bps: 10,
        taker_fee_bps: 20,
    };
    x.ok(Command::Admin(AdminCommand::UpdateInstrument {
        instrument: ACME_USD,
        update,
    }));
    let view = x.engine.instrument(ACME_USD).unwrap();
    assert_eq!((view.band.low, view.band.high), (usd(75, 0), usd(225, 0)));
    x.gtc(BOB, Side::Sell, usd(220, 0), 1);
    let events = x.gtc(CAROL, Side::Sell, usd(91, 0), 1);
    assert_eq!(Exchange::fills(&events)[0].2, low);
}

#[test]
fn eur_usd_settles_base_in_its_own_minor_units() {
    let mut x = Exchange::new();
    let order = |account, user_ref_num, side| NewOrder {
        account,
        user_ref_num,
        instrument: EUR_USD,
        side,
        price: OrderPrice::Limit(Price(11_000)),
        quantity: Quantity(1_000),
        time_in_force: TimeInForce::GoodTillCancel,
        post_only: false,
        self_trade: SelfTradePrevention::None,
    };
    let buy = order(ALICE, x.next_user_ref(ALICE), Side::Buy);
    x.ok(Command::NewOrder(buy));
    let sell = order(BOB, x.next_user_ref(BOB), Side::Sell);
    x.ok(Command::NewOrder(sell));
    // 1 000 EUR at 1.1000 = 1 100.0000 USD; EUR has 2 decimals.
    assert_eq!(x.balance(ALICE, EUR).available, EUR_FUNDING + 100_000);
    assert_eq!(x.balance(ALICE, USD).available, USD_FUNDING - 11_000_000);
    assert_eq!(x.balance(BOB, EUR).available, EUR_FUNDING - 100_000);
    assert_eq!(x.balance(BOB, USD).available, USD_FUNDING + 11_000_000);
}

fn gateway_reject(account: AccountId, user_ref_num: u64) -> Command {
    Command::GatewayReject(GatewayReject {
        account,
        user_ref_num: UserRefNum(user_ref_num),
    })
}

#[test]
fn a_gateway_reject_consumes_a_new_reference_and_is_always_rejected() {
    let mut x = Exchange::new();
    let rejected = |account, reference, reason| {
        vec![Event::Rejected {
            account: Some(account),
            reference,
            reason,
        }]
    };

    // An unknown account.
    let unknown = AccountId(7);
    assert_eq!(
        x.run(gateway_reject(unknown, 5)),
        (
            Status::Rejected(RejectReason::UnknownAccount),
            rejected(unknown, 5, RejectReason::UnknownAccount)
        )
    );
    assert_eq!(gateway_reject(unknown, 5).account(), Some(unknown));

    // Reference 0: nothing consumed, nothing changed.
    let hash = x.engine.state_hash();
    assert_eq!(
        x.run(gateway_reject(ALICE, 0)),
        (
            Status::Rejected(RejectReason::GatewayRejected),
            rejected(ALICE, 0, RejectReason::GatewayRejected)
        )
    );
    assert_eq!(x.engine.last_user_ref_num(ALICE), Some(UserRefNum(0)));
    assert_eq!(x.engine.state_hash(), hash);

    // A new reference is consumed: a later order with it is a duplicate.
    assert_eq!(
        x.run(gateway_reject(ALICE, 3)),
        (
            Status::Rejected(RejectReason::GatewayRejected),
            rejected(ALICE, 3, RejectReason::GatewayRejected)
        )
    );
    assert_eq!(x.engine.last_user_ref_num(ALICE), Some(UserRefNum(3)));
    let mut order = x.limit(ALICE, Side::Buy, usd(100, 0), 1, TimeInForce::Day);
    order.user_ref_num = UserRefNum(3);
    x.rejected(Command::NewOrder(order), RejectReason::DuplicateUserRefNum);

    // An old (or the same) reference is a duplicate and consumes nothing.
    for old in [1, 3] {
        assert_eq!(
            x.run(gateway_reject(ALICE, old)),
            (
                Status::Rejected(RejectReason::DuplicateUserRefNum),
                rejected(ALICE, old, RejectReason::DuplicateUserRefNum)
            )
        );
    }
    assert_eq!(x.engine.last_user_ref_num(ALICE), Some(UserRefNum(3)));

    // A suspended account still consumes.
    x.ok(Command::Admin(AdminCommand::SetAccountStatus {
        account: BOB,
        status: AccountStatus::Suspended,
    }));
    x.rejected(gateway_reject(BOB, 9), RejectReason::GatewayRejected);
    assert_eq!(x.engine.last_user_ref_num(BOB), Some(UserRefNum(9)));
    x.rejected(gateway_reject(BOB, 9), RejectReason::DuplicateUserRefNum);
    // (`Exchange::run` checked every invariant after each command.)
    x.engine.check_invariants().unwrap();
}

#[test]
fn a_gateway_reject_changes_the_state_hash_by_its_reference_only() {
    // Two exchanges: one consumes Carol's reference 4 by a gateway reject,
    // the other by an order rejected for an unknown instrument (which
    // consumes its reference and changes nothing else).
    let mut gateway = Exchange::new();
    let mut order = Exchange::new();
    assert_eq!(gateway.engine.state_hash(), order.engine.state_hash());
    let before = gateway.engine.state_hash();
    gateway.rejected(gateway_reject(CAROL, 4), RejectReason::GatewayRejected);
    assert_ne!(gateway.engine.state_hash(), before);
    let mut unknown = order.limit(CAROL, Side::Sell, usd(100, 0), 1, TimeInForce::Day);
    unknown.user_ref_num = UserRefNum(4);
    unknown.instrument = InstrumentId(3);
    order.rejected(Command::NewOrder(unknown), RejectReason::UnknownInstrument);
    assert_eq!(gateway.engine.state_hash(), order.engine.state_hash());
}
