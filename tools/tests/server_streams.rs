//! The per-login streams are stores on disk (`data_dir/streams`): after a
//! restart, a login from any sequence number gets exactly the bytes that
//! were sent live from there, read from the store (a small per-stream
//! cache, so most of them come from the files).

mod common;

use common::*;
use gateway::client::OuchClient;
use gateway::ouch;

/// Two logins cross orders on ACME; returns each one's live stream.
fn trade(running: &tools::serve::Running, logins: [&str; 2]) -> Vec<Vec<(u64, Vec<u8>)>> {
    let mut clients: Vec<OuchClient> = logins.iter().map(|l| trader(running, l, 0)).collect();
    let mut dice = Dice(0x57_2e_a5);
    for round in 1..=400u32 {
        for (index, client) in clients.iter_mut().enumerate() {
            let side = if index == 0 {
                ouch::Side::Buy
            } else {
                ouch::Side::Sell
            };
            let price = 1_000_000 + (dice.next(5) as i64 - 2) * 100;
            let quantity = 1 + dice.next(10) as u32;
            client
                .queue(&order(round, side, quantity, "ACME", price))
                .unwrap();
        }
        if round % 40 == 0 {
            for client in &mut clients {
                client.flush().unwrap();
            }
        }
    }
    for client in &mut clients {
        client.flush().unwrap();
    }
    clients.iter_mut().map(raw_stream).collect()
}

#[test]
fn a_login_from_any_sequence_after_a_restart_gets_the_live_bytes() {
    let dir = scratch("streams");
    let mut config = test_config(&dir);
    // Small: most of a replay comes from the files.
    config.server.stream_cache_bytes_max = 4096;
    let logins = ["DEMO1", "DEMO2"];
    let running = start(&config);
    let live = trade(&running, logins);
    running.stop().unwrap();
    for (index, login) in logins.iter().enumerate() {
        assert!(
            live[index].len() > 400,
            "{login} got its answers and fills ({})",
            live[index].len()
        );
        for (position, (sequence, _)) in live[index].iter().enumerate() {
            assert_eq!(*sequence, position as u64 + 1, "{login} numbering");
        }
    }
    let streams = dir.join("streams");
    assert!(
        streams.is_dir(),
        "the streams are on disk under {streams:?}"
    );

    // Twice: the first restart finds the stores written live, the second
    // the stores the first one kept.
    for _restart in 0..2 {
        let running = start(&config);
        for (index, login) in logins.iter().enumerate() {
            let last = live[index].len() as u64;
            for from in [1, 2, last / 3, last / 2 + 1, last, last + 1] {
                let mut client = trader(&running, login, from);
                let replayed = raw_stream(&mut client);
                let expected = &live[index][(from - 1) as usize..];
                assert_eq!(replayed.len(), expected.len(), "{login} from {from}");
                assert!(replayed == expected, "{login} from {from}: the same bytes");
            }
        }
        running.stop().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restart_regenerates_a_store_that_lost_its_files() {
    let dir = scratch("streams-lost");
    let config = test_config(&dir);
    let logins = ["DEMO1", "DEMO2"];
    let running = start(&config);
    let live = trade(&running, logins);
    running.stop().unwrap();
    // The derived stores are gone: the journal rebuilds them.
    std::fs::remove_dir_all(dir.join("streams")).unwrap();
    let running = start(&config);
    for (index, login) in logins.iter().enumerate() {
        let mut client = trader(&running, login, 1);
        assert!(raw_stream(&mut client) == live[index], "{login} rebuilt");
    }
    running.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
