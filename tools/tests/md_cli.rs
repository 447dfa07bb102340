//! The market-data acceptance scenario with the real `exchange md` tools:
//! an exchange is started (its feed on a multicast group of this test's
//! own), `exchange md listen --json --from-start` records the stream while
//! a scripted session trades, then `exchange md book ACME --once` (a late
//! joiner: snapshot plus live) must print the engine's ACME book, level by
//! level, and the listener's lines must be the session's messages numbered
//! 1, 2, 3… with the orders and executions of the script.
//!
//! Needs multicast: compiled to run when `NETNS_RUN=1` (inside
//! `.ci/netns-run`, as `.ci/run` does) or `MD_MULTICAST=1`, see
//! `build.rs`; otherwise it is ignored.

mod common;

use std::process::{Command, Stdio};

use common::{next, order, scratch, start, test_config, trader};
use engine::{InstrumentId, Side};
use gateway::ouch::{self, Outbound};

/// The script: (login, side, quantity, price in 1/10,000 USD).
const SCRIPT: &[(&str, ouch::Side, u32, i64)] = &[
    ("DEMO1", ouch::Side::Buy, 10, 1_000_000),
    ("DEMO2", ouch::Side::Sell, 10, 1_000_000),
    ("DEMO1", ouch::Side::Buy, 5, 995_000),
    ("DEMO1", ouch::Side::Buy, 7, 999_000),
    ("DEMO3", ouch::Side::Buy, 3, 999_000),
    ("DEMO2", ouch::Side::Sell, 20, 1_002_500),
    ("DEMO4", ouch::Side::Sell, 4, 1_001_000),
    ("DEMO4", ouch::Side::Sell, 2, 999_000),
];

#[test]
#[cfg_attr(
    not(multicast),
    ignore = "needs multicast: run inside .ci/netns-run (NETNS_RUN=1), as .ci/run does, or set MD_MULTICAST=1"
)]
fn md_book_once_shows_the_engine_book_and_listen_numbers_the_messages() {
    let dir = scratch("md-cli");
    let mut config = test_config(&dir);
    let port = 20_000 + (std::process::id() % 20_000) as u16 + 1;
    config.marketdata.feed_a = format!("239.255.42.3:{port}");
    let running = start(&config);
    let md = running.marketdata.clone().expect("market data is on");
    let feed_args = |command: &[&str]| {
        let mut args: Vec<String> = ["md"]
            .iter()
            .chain(command)
            .map(|arg| (*arg).to_owned())
            .collect();
        args.extend([
            "--feed-a".to_owned(),
            config.marketdata.feed_a.clone(),
            "--rerequest".to_owned(),
            md.rerequest.to_string(),
            "--snapshot".to_owned(),
            md.snapshot.to_string(),
        ]);
        args
    };

    // Genesis published System Event O and a Stock Directory per
    // instrument; the script adds 6 Add Orders and 2 Order Executed.
    let expected_messages = 1 + 3 + 8;
    let listener = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(feed_args(&[
            "listen",
            "--json",
            "--from-start",
            "--count",
            &expected_messages.to_string(),
            "--seconds",
            "20",
        ]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exchange md listen");

    for (index, &(login, side, quantity, price)) in SCRIPT.iter().enumerate() {
        let mut client = trader(&running, login, 0);
        let user_ref_num = client
            .next_user_ref_num(common::WAIT)
            .expect("next UserRefNum");
        client
            .send(&order(user_ref_num, side, quantity, "ACME", price))
            .unwrap();
        let (_, reply) = next(&mut client);
        assert!(
            matches!(reply, Outbound::OrderAccepted(_)),
            "script line {index}: {reply:?}"
        );
        client.logout().unwrap();
    }

    let book = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(feed_args(&["book", "ACME", "--once", "--levels", "5"]))
        .output()
        .expect("exchange md book");
    let book_text = String::from_utf8_lossy(&book.stdout).into_owned();
    assert!(
        book.status.success(),
        "md book failed: {book_text}\n{}",
        String::from_utf8_lossy(&book.stderr)
    );
    let listened = listener.wait_with_output().expect("md listen ends");
    let listen_text = String::from_utf8_lossy(&listened.stdout).into_owned();
    assert!(
        listened.status.success(),
        "md listen failed: {listen_text}\n{}",
        String::from_utf8_lossy(&listened.stderr)
    );
    running.stop().expect("a clean stop");

    // The engine's book, from the journal.
    let (sequencer, _) = tools::serve::boot(&config).expect("the journal replays");
    let engine = sequencer.engine();
    let acme = InstrumentId(0);
    let levels = |side| -> Vec<(i64, u64, u32)> {
        engine
            .depth(acme, side)
            .map(|(price, quantity, orders)| (price.0, quantity.0, orders))
            .collect()
    };
    let (bids, asks) = (levels(Side::Buy), levels(Side::Sell));
    sequencer.close().unwrap();
    assert_eq!(bids, [(999_000, 8, 2), (995_000, 5, 1)]);
    assert_eq!(asks, [(1_001_000, 4, 1), (1_002_500, 20, 1)]);

    // The ladder's rows: "orders size bid | ask size orders", best first.
    type Bid = (u32, u64, String);
    type Ask = (String, u64, u32);
    let rows: Vec<(Option<Bid>, Option<Ask>)> = book_text
        .lines()
        .filter(|line| line.contains('|') && !line.contains("bid"))
        .map(|line| {
            let (left, right) = line.split_once('|').unwrap();
            let left: Vec<&str> = left.split_whitespace().collect();
            let right: Vec<&str> = right.split_whitespace().collect();
            let bid = (left.len() == 3).then(|| {
                (
                    left[0].parse().unwrap(),
                    left[1].parse().unwrap(),
                    left[2].to_owned(),
                )
            });
            let ask = (right.len() == 3).then(|| {
                (
                    right[0].to_owned(),
                    right[1].parse().unwrap(),
                    right[2].parse().unwrap(),
                )
            });
            (bid, ask)
        })
        .collect();
    let price_text = |price: i64| format!("{}.{:04}", price / 10_000, price % 10_000);
    let shown_bids: Vec<Bid> = rows.iter().filter_map(|row| row.0.clone()).collect();
    let shown_asks: Vec<Ask> = rows.iter().filter_map(|row| row.1.clone()).collect();
    let engine_bids: Vec<Bid> = bids
        .iter()
        .map(|&(price, quantity, orders)| (orders, quantity, price_text(price)))
        .collect();
    let engine_asks: Vec<Ask> = asks
        .iter()
        .map(|&(price, quantity, orders)| (price_text(price), quantity, orders))
        .collect();
    assert_eq!(shown_bids, engine_bids, "md book printed:\n{book_text}");
    assert_eq!(shown_asks, engine_asks, "md book printed:\n{book_text}");

    // The listener: every message of the session, numbered from 1.
    let lines: Vec<serde_json::Value> = listen_text
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), expected_messages, "{listen_text}");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["sequence"], index as u64 + 1, "{line}");
        assert_eq!(line["session"], lines[0]["session"]);
    }
    let types: String = lines
        .iter()
        .map(|line| line["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, "SRRRAEAAAAAE", "{listen_text}");
    assert_eq!(lines[4]["price"], "100.0000");
    assert_eq!(lines[5]["executed_shares"], 10);
    std::fs::remove_dir_all(&dir).unwrap();
}
