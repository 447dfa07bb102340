//! The exchange end to end over loopback: SoupBinTCP logins, OUCH orders
//! that trade, funding, restart with replay of the sessions' streams, and
//! conservation of value checked on the journal afterwards.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::*;
use gateway::client::{ClientError, LoginParams, OuchClient, SoupClient};
use gateway::funding::{self, Reply};
use gateway::ouch::{self, Inbound, Outbound};

#[test]
fn demo1_buys_and_demo2_sells_ten_acme_at_100() {
    let dir = scratch("acceptance");
    let config = test_config(&dir);
    let running = start(&config);
    let mut demo1 = trader(&running, "DEMO1", 0);
    let mut demo2 = trader(&running, "DEMO2", 0);

    demo1
        .send(&order(1, ouch::Side::Buy, 10, "ACME", 1_000_000))
        .unwrap();
    let (sequence, accepted) = next(&mut demo1);
    assert_eq!(sequence, 1);
    let Outbound::OrderAccepted(accepted) = accepted else {
        panic!("expected Order Accepted, got {accepted:?}");
    };
    assert_eq!(accepted.user_ref_num, 1);
    assert_eq!(accepted.side, ouch::Side::Buy);
    assert_eq!(accepted.quantity, 10);
    assert_eq!(accepted.symbol, symbol("ACME"));
    assert_eq!(accepted.price, ouch::Price(1_000_000));
    assert_eq!(accepted.time_in_force, ouch::TimeInForce::Day);
    assert_eq!(accepted.order_state, ouch::OrderState::Live);
    assert_eq!(accepted.client_order_id.trimmed(), "C1");

    demo2
        .send(&order(1, ouch::Side::Sell, 10, "ACME", 1_000_000))
        .unwrap();
    let (_, sell_accepted) = next(&mut demo2);
    assert!(
        matches!(sell_accepted, Outbound::OrderAccepted(a) if a.order_state == ouch::OrderState::Dead),
        "{sell_accepted:?}"
    );
    let (_, taker) = next(&mut demo2);
    let (_, maker) = next(&mut demo1);
    let (Outbound::OrderExecuted(taker), Outbound::OrderExecuted(maker)) = (taker, maker) else {
        panic!("expected two Order Executed");
    };
    assert_eq!((maker.quantity, maker.price), (10, ouch::Price(1_000_000)));
    assert_eq!((taker.quantity, taker.price), (10, ouch::Price(1_000_000)));
    assert_eq!(maker.match_number, taker.match_number);
    assert_eq!(maker.liquidity_flag.byte(), b'A');
    assert_eq!(taker.liquidity_flag.byte(), b'R');
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clients_trade_every_instrument_and_replay_after_restart() {
    let dir = scratch("trading");
    let config = test_config(&dir);
    let running = start(&config);
    let logins = ["DEMO1", "DEMO2", "DEMO3", "DEMO4"];
    let mut clients: Vec<OuchClient> = logins.iter().map(|l| trader(&running, l, 0)).collect();
    // (symbol, reference price, tick) in OUCH units (4 decimals).
    let instruments = [
        ("ACME", 1_000_000, 100),
        ("GLOBEX", 500_000, 100),
        ("EURUSD", 11_000, 1),
    ];
    let mut dice = Dice(0x5eed);
    let orders_per_client = 300u32;
    let mut sent: Vec<HashMap<u32, Inbound>> = vec![HashMap::new(); clients.len()];
    for round in 1..=orders_per_client {
        for (index, client) in clients.iter_mut().enumerate() {
            let (name, reference, tick) = instruments[dice.next(3) as usize];
            // Within ±2% of the reference, on the tick.
            let offset = (dice.next(41) as i64 - 20) * reference / 1000 / tick * tick;
            let side = if dice.next(2) == 0 {
                ouch::Side::Buy
            } else {
                ouch::Side::Sell
            };
            let quantity = 1 + dice.next(20) as u32;
            let message = match dice.next(10) {
                0 if round > 2 => Inbound::CancelOrder(ouch::CancelOrder {
                    user_ref_num: round - 1 - dice.next(2) as u32,
                    quantity: 0,
                    options: ouch::Options::NONE,
                }),
                _ => order(round, side, quantity, name, reference + offset),
            };
            if let Inbound::EnterOrder(_) = message {
                sent[index].insert(round, message);
            }
            client.queue(&message).unwrap();
        }
        if round % 50 == 0 {
            for client in &mut clients {
                client.flush().unwrap();
            }
        }
    }
    for client in &mut clients {
        client.flush().unwrap();
    }
    let live: Vec<Vec<(u64, Outbound)>> = clients
        .iter_mut()
        .map(|client| drain(client, Duration::from_millis(700)))
        .collect();

    // Every stream is numbered from 1 without gaps; every order was
    // answered once; both sides of every match agree.
    let mut executions: BTreeMap<u64, Vec<(u32, ouch::Price)>> = BTreeMap::new();
    for (index, messages) in live.iter().enumerate() {
        for (position, (sequence, _)) in messages.iter().enumerate() {
            assert_eq!(
                *sequence,
                position as u64 + 1,
                "{} stream numbering",
                logins[index]
            );
        }
        let mut answered: HashMap<u32, usize> = HashMap::new();
        for (_, message) in messages {
            match message {
                Outbound::OrderAccepted(a) => *answered.entry(a.user_ref_num).or_default() += 1,
                Outbound::OrderRejected(r) => *answered.entry(r.user_ref_num).or_default() += 1,
                Outbound::OrderExecuted(e) => executions
                    .entry(e.match_number)
                    .or_default()
                    .push((e.quantity, e.price)),
                _ => {}
            }
        }
        for user_ref_num in sent[index].keys() {
            assert_eq!(
                answered.get(user_ref_num),
                Some(&1),
                "{} order {user_ref_num} answered once",
                logins[index]
            );
        }
    }
    assert!(
        executions.len() > 20,
        "the flow trades ({} matches)",
        executions.len()
    );
    for (match_number, sides) in &executions {
        assert_eq!(
            sides.len(),
            2,
            "match {match_number} reported to both sides"
        );
        assert_eq!(sides[0], sides[1], "match {match_number}: both sides agree");
    }

    // Restart: every login gets its whole stream again, byte for byte.
    running.stop().unwrap();
    let running = start(&config);
    for (index, login) in logins.iter().enumerate() {
        let mut client = trader(&running, login, 1);
        let replayed = drain(&mut client, Duration::from_millis(500));
        assert_eq!(replayed, live[index], "{login} replay after restart");
        // A UserRefNum already used is refused.
        client
            .send(&order(5, ouch::Side::Buy, 1, "ACME", 1_000_000))
            .unwrap();
        let (_, rejected) = next(&mut client);
        assert!(
            matches!(rejected, Outbound::OrderRejected(r) if r.user_ref_num == 5
                && r.reason.code() == 0x0100 + engine::RejectReason::DuplicateUserRefNum.code()),
            "{rejected:?}"
        );
    }
    running.stop().unwrap();

    // The journal: replayed, every invariant (conservation of every asset
    // included) holds.
    let replayed = engine::replay(&config.journal_dir(), None, None, false, &mut |_, _| {})
        .expect("the journal replays");
    replayed.engine.check_invariants().expect("invariants hold");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_login_resumes_from_its_sequence_number() {
    let dir = scratch("resume");
    let config = test_config(&dir);
    let running = start(&config);
    let mut demo3 = trader(&running, "DEMO3", 0);
    for user_ref_num in 1..=5 {
        demo3
            .send(&order(user_ref_num, ouch::Side::Buy, 1, "GLOBEX", 490_000))
            .unwrap();
        next(&mut demo3);
    }
    demo3.logout().unwrap();
    // From 3: messages 3, 4 and 5, then the new ones.
    let (mut again, accepted) = OuchClient::connect(
        running.order_entry,
        &LoginParams {
            sequence: 3,
            ..LoginParams::new("DEMO3", "demo3")
        },
    )
    .unwrap();
    assert_eq!(accepted.sequence, 3);
    let resumed = drain(&mut again, Duration::from_millis(300));
    let numbers: Vec<u64> = resumed.iter().map(|(sequence, _)| *sequence).collect();
    assert_eq!(numbers, [3, 4, 5]);
    // 0 asks for new messages only; a session name other than today's is
    // not available.
    drop(again);
    std::thread::sleep(Duration::from_millis(100));
    let (_, accepted) =
        SoupClient::connect(running.order_entry, &LoginParams::new("DEMO3", "demo3")).unwrap();
    assert_eq!(accepted.sequence, 6);
    let refused = SoupClient::connect(
        running.order_entry,
        &LoginParams {
            session: "OTHER00000".to_owned(),
            ..LoginParams::new("DEMO4", "demo4")
        },
    );
    assert!(
        matches!(refused, Err(ClientError::LoginRejected(_))),
        "{refused:?}"
    );
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_operator_funds_accounts_and_only_the_operator() {
    let dir = scratch("funding");
    let config = test_config(&dir);
    let running = start(&config);
    let mut oper = operator(&running);
    let deposit = funding::Funding {
        transfer_id: 1_000,
        account: 3,
        asset: 0,
        amount: 5_000_000,
    };
    oper.deposit(deposit).unwrap();
    let (sequence, reply) = oper.next_reply(WAIT).unwrap().unwrap();
    assert_eq!(sequence, 1);
    assert!(
        matches!(reply, Reply::Applied(a) if !a.repeat && a.amount == 5_000_000 && a.account == 3),
        "{reply:?}"
    );
    // A repeat gets the first result, marked as a repeat.
    oper.deposit(deposit).unwrap();
    let (_, reply) = oper.next_reply(WAIT).unwrap().unwrap();
    assert!(matches!(reply, Reply::Applied(a) if a.repeat), "{reply:?}");
    // A withdrawal beyond the balance is rejected with the engine's code.
    oper.withdraw(funding::Funding {
        transfer_id: 1_001,
        account: 3,
        asset: 0,
        amount: u64::MAX / 2,
    })
    .unwrap();
    let (_, reply) = oper.next_reply(WAIT).unwrap().unwrap();
    assert!(
        matches!(reply, Reply::Rejected(r) if r.reason as u16 == engine::RejectReason::InsufficientFunds.code()),
        "{reply:?}"
    );
    oper.transfer(funding::TransferRequest {
        transfer_id: 1_002,
        from: 3,
        to: 4,
        asset: 0,
        amount: 1_000_000,
    })
    .unwrap();
    let (_, reply) = oper.next_reply(WAIT).unwrap().unwrap();
    assert!(matches!(reply, Reply::Applied(a) if a.to == 4), "{reply:?}");
    oper.balance_query(3).unwrap();
    let (_, reply) = oper.next_reply(WAIT).unwrap().unwrap();
    let Reply::BalanceReport(report) = reply else {
        panic!("expected a balance report, got {reply:?}");
    };
    let usd = report.balances.iter().find(|b| b.asset == 0).unwrap();
    // 1,000,000 USD at scale 4, + 500 USD − 100 USD.
    assert_eq!(usd.available, 10_000_000_000 + 5_000_000 - 1_000_000);

    // A trader cannot use the funding port; the operator cannot trade.
    let refused = SoupClient::connect(running.funding, &LoginParams::new("DEMO1", "demo1"));
    assert!(
        matches!(refused, Err(ClientError::LoginRejected(_))),
        "{refused:?}"
    );
    let refused = SoupClient::connect(running.order_entry, &LoginParams::new("OPER1", "oper1"));
    assert!(
        matches!(refused, Err(ClientError::LoginRejected(_))),
        "{refused:?}"
    );
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replace_modify_mass_cancel_and_time_in_force() {
    let dir = scratch("amend");
    let config = test_config(&dir);
    let running = start(&config);
    let mut demo1 = trader(&running, "DEMO1", 0);
    let mut gtx = order(1, ouch::Side::Buy, 10, "ACME", 990_000);
    if let Inbound::EnterOrder(order) = &mut gtx {
        order.time_in_force = ouch::TimeInForce::GoodTillExtendedHours;
    }
    demo1.send(&gtx).unwrap();
    let (_, accepted) = next(&mut demo1);
    assert!(
        matches!(accepted, Outbound::OrderAccepted(a) if a.time_in_force
            == ouch::TimeInForce::GoodTillExtendedHours && a.order_state == ouch::OrderState::Live),
        "{accepted:?}"
    );
    let replace = |original: u32, user_ref_num: u32, time_in_force| {
        Inbound::ReplaceOrder(ouch::ReplaceOrder {
            original_user_ref_num: original,
            user_ref_num,
            quantity: 5,
            price: ouch::Price(995_000),
            time_in_force,
            display: ouch::Display::Visible,
            intermarket_sweep: ouch::IntermarketSweep::NotEligible,
            client_order_id: ouch::ClOrdId::new("R").unwrap(),
            options: ouch::Options::NONE,
        })
    };
    demo1.send(&replace(1, 2, ouch::TimeInForce::Day)).unwrap();
    let (_, replaced) = next(&mut demo1);
    assert!(
        matches!(replaced, Outbound::OrderReplaced(r) if r.original_user_ref_num == 1
            && r.user_ref_num == 2 && r.quantity == 5 && r.price == ouch::Price(995_000)
            && r.order_state == ouch::OrderState::Live),
        "{replaced:?}"
    );
    // A replace cannot make a resting order IOC: refused, its UserRefNum
    // consumed.
    demo1
        .send(&replace(2, 3, ouch::TimeInForce::ImmediateOrCancel))
        .unwrap();
    let (_, refused) = next(&mut demo1);
    assert!(
        matches!(refused, Outbound::OrderRejected(r) if r.user_ref_num == 3 && r.reason.code() == 0x01FF),
        "{refused:?}"
    );
    // Modify: a reduction; a short-sale side is refused.
    let modify = |side| {
        Inbound::ModifyOrder(ouch::ModifyOrder {
            user_ref_num: 2,
            side,
            quantity: 3,
            options: ouch::Options::NONE,
        })
    };
    demo1.send(&modify(ouch::Side::Buy)).unwrap();
    let (_, modified) = next(&mut demo1);
    assert!(
        matches!(modified, Outbound::OrderModified(m) if m.user_ref_num == 2 && m.quantity == 3),
        "{modified:?}"
    );
    demo1.send(&modify(ouch::Side::SellShort)).unwrap();
    let (_, rejected) = next(&mut demo1);
    assert!(
        matches!(rejected, Outbound::CancelReject(c) if c.user_ref_num == 2),
        "{rejected:?}"
    );
    // Mass cancel of everything: the order, then the response.
    demo1
        .send(&Inbound::MassCancelRequest(ouch::MassCancelRequest {
            user_ref_num: 4,
            firm: ouch::Mpid::BLANK,
            symbol: ouch::Symbol::BLANK,
            options: ouch::Options::NONE,
        }))
        .unwrap();
    let (_, canceled) = next(&mut demo1);
    assert!(
        matches!(canceled, Outbound::OrderCanceled(c) if c.user_ref_num == 2 && c.quantity == 3),
        "{canceled:?}"
    );
    let (_, response) = next(&mut demo1);
    assert!(
        matches!(response, Outbound::MassCancelResponse(r) if r.user_ref_num == 4),
        "{response:?}"
    );
    // 1, 2 and 3 are used; a mass cancel consumes none.
    assert_eq!(demo1.next_user_ref_num(WAIT).unwrap(), 4);
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
