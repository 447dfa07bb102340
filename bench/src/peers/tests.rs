//! Hand-written streams whose fills are known: our engine must give
//! exactly them, and so must each peer's adapter, or the test states the
//! peer's deviation and asserts it.

use super::*;
use crate::market::{equity, limit_order, setup_commands};
use crate::workload::{WorkloadKind, generate};
use engine::{CancelOrder, OrderRef, Quantity, ReplaceOrder};

/// 100.00 in quote minor units; one tick is 0.01 = 100.
const PRICE_100: i64 = 1_000_000;
const TICK: i64 = 100;

fn price(ticks: i64) -> Price {
    Price(PRICE_100 + ticks * TICK)
}

fn gtc(account: u32, reference: u64, side: Side, ticks: i64, quantity: u64) -> Command {
    limit_order(
        AccountId(account),
        UserRefNum(reference),
        side,
        price(ticks),
        quantity,
        TimeInForce::GoodTillCancel,
    )
}

fn ioc(account: u32, reference: u64, side: Side, ticks: i64, quantity: u64) -> Command {
    limit_order(
        AccountId(account),
        UserRefNum(reference),
        side,
        price(ticks),
        quantity,
        TimeInForce::ImmediateOrCancel,
    )
}

fn cancel(account: u32, reference: u64, quantity_left: u64) -> Command {
    Command::CancelOrder(CancelOrder {
        account: AccountId(account),
        order: OrderRef::UserRef(UserRefNum(reference)),
        quantity: Quantity(quantity_left),
    })
}

fn replace(account: u32, reference: u64, new_reference: u64, ticks: i64, quantity: u64) -> Command {
    Command::ReplaceOrder(ReplaceOrder {
        account: AccountId(account),
        order: OrderRef::UserRef(UserRefNum(reference)),
        new_user_ref_num: UserRefNum(new_reference),
        price: price(ticks),
        quantity: Quantity(quantity),
    })
}

fn fill(ticks: i64, quantity: u64, taker_side: Side) -> PeerFill {
    PeerFill {
        price: price(ticks),
        quantity,
        taker_side,
    }
}

use engine::TimeInForce;

fn setup() -> Vec<Command> {
    setup_commands(&equity("ACME", Price(PRICE_100)), 4)
}

/// Our fills, matchcore's and lobster's on `stream` after the setup; each
/// record's own checks (no rejection, nothing skipped) asserted.
fn fills_of_each(stream: &[Command]) -> [FillRecord; 3] {
    let setup = setup();
    let ours = engine_fills(&setup, stream, EngineConfig::default());
    let matchcore = peer_fills(&mut MatchcorePeer::new(), &setup, stream);
    let lobster = peer_fills(&mut LobsterPeer::new(64), &setup, stream);
    assert_eq!(
        ours.rejected, 0,
        "our engine rejected a command of the stream"
    );
    for record in [&ours, &matchcore, &lobster] {
        assert_eq!(record.setup_fills, 0);
        assert_eq!(record.unsupported, 0);
    }
    [ours, matchcore, lobster]
}

#[test]
fn a_cross_at_one_level() {
    let stream = [gtc(1, 1, Side::Sell, 0, 10), gtc(2, 1, Side::Buy, 0, 4)];
    let expected = vec![fill(0, 4, Side::Buy)];
    for record in fills_of_each(&stream) {
        assert_eq!(record.fills, expected);
        assert_eq!(record.through_limit, 0);
        assert_eq!(record.rejected, 0);
    }
}

#[test]
fn a_sweep_of_two_levels_in_price_time_priority() {
    let stream = [
        gtc(1, 1, Side::Sell, 0, 3),
        gtc(2, 1, Side::Sell, 1, 5),
        // Behind account 1's order at the same price.
        gtc(3, 1, Side::Sell, 0, 4),
        gtc(4, 1, Side::Buy, 1, 10),
    ];
    let expected = vec![
        fill(0, 3, Side::Buy),
        fill(0, 4, Side::Buy),
        fill(1, 3, Side::Buy),
    ];
    for record in fills_of_each(&stream) {
        assert_eq!(record.fills, expected);
        assert_eq!(record.through_limit, 0);
    }
}

#[test]
fn a_cancelled_order_does_not_trade() {
    let stream = [
        gtc(1, 1, Side::Sell, 0, 5),
        cancel(1, 1, 0),
        // Would have crossed the cancelled order: rests instead.
        gtc(2, 1, Side::Buy, 0, 5),
        gtc(3, 1, Side::Sell, 0, 2),
    ];
    let expected = vec![fill(0, 2, Side::Sell)];
    for record in fills_of_each(&stream) {
        assert_eq!(record.fills, expected);
        assert_eq!(record.rejected, 0);
    }
}

#[test]
fn a_move_loses_priority_and_trades_at_its_new_price() {
    let stream = [
        gtc(1, 1, Side::Sell, 1, 5),
        gtc(2, 1, Side::Sell, 2, 3),
        // Move account 1's order up to account 2's level: behind it.
        replace(1, 1, 2, 2, 5),
        // An IOC that stops at its limit: 102 holds 8, it takes 4; the
        // level at 101 is empty now.
        ioc(3, 1, Side::Buy, 2, 4),
        // The moved order is named by its new reference.
        cancel(1, 2, 0),
        ioc(4, 1, Side::Buy, 2, 9),
    ];
    let expected = vec![
        fill(2, 3, Side::Buy),
        fill(2, 1, Side::Buy),
        // Nothing for the last IOC: the rest was cancelled.
    ];
    for record in fills_of_each(&stream) {
        assert_eq!(record.fills, expected);
        assert_eq!(record.rejected, 0);
    }
}

#[test]
fn an_ioc_remainder_does_not_rest() {
    let stream = [
        gtc(1, 1, Side::Sell, 0, 5),
        ioc(2, 1, Side::Buy, 0, 8),
        // Would trade with the IOC's remainder had it rested.
        gtc(3, 1, Side::Sell, 0, 1),
    ];
    let expected = vec![fill(0, 5, Side::Buy)];
    for record in fills_of_each(&stream) {
        assert_eq!(record.fills, expected);
    }
}

/// matchcore 0.4.0 matches a marketable limit order with no limit price:
/// it trades through its limit. Ours and lobster stop at the limit and
/// rest the remainder.
#[test]
fn a_marketable_limit_stops_at_its_limit_except_in_matchcore() {
    let stream = [
        gtc(1, 1, Side::Sell, 0, 5),
        gtc(2, 1, Side::Sell, 5, 5),
        gtc(3, 1, Side::Buy, 0, 8),
    ];
    let [ours, matchcore, lobster] = fills_of_each(&stream);
    let expected = vec![fill(0, 5, Side::Buy)];
    assert_eq!(ours.fills, expected);
    assert_eq!(ours.through_limit, 0);
    assert_eq!(lobster.fills, expected);
    assert_eq!(lobster.through_limit, 0);
    // The deviation: 3 more bought at 100.05 by a buy limited to 100.00.
    assert_eq!(
        matchcore.fills,
        vec![fill(0, 5, Side::Buy), fill(5, 3, Side::Buy)]
    );
    assert_eq!(matchcore.through_limit, 1);
    assert_eq!(matchcore.through_limit_examples.len(), 1);
    assert_eq!(matchcore.fill_commands, [2, 2]);
    assert_eq!(first_divergence(&matchcore.fills, &ours.fills), Some(1));
    assert_eq!(divergent_command(&matchcore, &ours), Some(2));
    assert_eq!(divergent_command(&lobster, &ours), None);
}

/// A cancel down to a quantity keeps priority in ours and in matchcore (a
/// native amend); lobster has no reduce, so the adapter re-enters the rest
/// behind the level.
#[test]
fn a_partial_cancel_keeps_priority_except_in_lobster() {
    let stream = [
        gtc(1, 1, Side::Sell, 0, 5),
        gtc(2, 1, Side::Sell, 0, 3),
        cancel(1, 1, 2),
        gtc(3, 1, Side::Buy, 0, 4),
    ];
    let [ours, matchcore, lobster] = fills_of_each(&stream);
    let expected = vec![fill(0, 2, Side::Buy), fill(0, 2, Side::Buy)];
    assert_eq!(ours.fills, expected);
    assert_eq!(matchcore.fills, expected);
    // The deviation: account 2's 3 first, then 1 of account 1's 2.
    assert_eq!(
        lobster.fills,
        vec![fill(0, 3, Side::Buy), fill(0, 1, Side::Buy)]
    );
}

#[test]
fn unknown_orders_and_non_order_commands_are_counted() {
    let setup = setup();
    let stream = [cancel(1, 99, 0), replace(2, 7, 8, 0, 1), setup[0]];
    for mut record in [
        peer_fills(&mut MatchcorePeer::new(), &setup, &stream),
        peer_fills(&mut LobsterPeer::new(64), &setup, &stream),
    ] {
        assert_eq!(record.rejected, 2);
        assert_eq!(record.first_rejected, Some(0));
        assert_eq!(record.ignored, 1);
        assert!(record.fills.is_empty());
        record.fills.push(fill(0, 1, Side::Buy));
        assert_ne!(record.hash(), fills_hash(&[]));
    }
}

#[test]
fn divergence_is_the_first_differing_fill() {
    let a = [fill(0, 1, Side::Buy), fill(1, 2, Side::Sell)];
    let b = [fill(0, 1, Side::Buy), fill(1, 3, Side::Sell)];
    assert_eq!(first_divergence(&a, &a), None);
    assert_eq!(first_divergence(&a, &b), Some(1));
    assert_eq!(first_divergence(&a, &a[..1]), Some(1));
    assert_eq!(fills_hash(&a), fills_hash(&a.clone()));
    assert_ne!(fills_hash(&a), fills_hash(&b));
}

/// On a real workload: our fills are the generator's, each peer is
/// measured, and a report says what it found.
#[test]
fn peers_are_measured_on_a_workload() {
    let workload = generate(WorkloadKind::ExchangeCore, 3, 2_000);
    let ours = engine_fills(&workload.setup, &workload.commands, EngineConfig::default());
    assert_eq!(ours.fills.len() as u64, workload.fills);
    assert_eq!(ours.through_limit, 0);
    let reports = measure_peers(&workload, 2, &ours, 1_000_000.0);
    assert_eq!(
        reports.keys().copied().collect::<Vec<_>>(),
        ["lobster", "matchcore"]
    );
    for report in reports.values() {
        assert_eq!(report.commands, 2_000);
        assert_eq!(report.fills_ours, workload.fills);
        assert!(report.throughput_per_sec > 0.0 && report.throughput_per_sec.is_finite());
        assert!(report.throughput_per_sec_min <= report.throughput_per_sec);
        assert!(report.throughput_per_sec <= report.throughput_per_sec_max);
        assert!(report.latency_ns.is_ordered(), "{:?}", report.latency_ns);
        assert_eq!(report.fills_match, report.first_fill_divergence.is_none());
        assert_eq!(
            report.fills_match,
            report.fills_hash == report.fills_hash_ours
        );
        assert_eq!(report.setup_fills, 0);
        assert!(!report.notes.is_empty());
        assert!(
            report
                .notes
                .iter()
                .all(|note| !note.contains("different number")),
            "{:?}",
            report.notes
        );
    }
}
