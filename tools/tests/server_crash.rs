//! Crash and restart of the real `exchange serve` process: clients trade
//! (pipelined, crossing orders on ACME and GLOBEX) while the server is
//! killed with SIGKILL at a seeded random moment, several times over; each
//! restart recovers from the journal. Afterwards every login's stream, read
//! again from sequence 1, begins with exactly what the client received
//! before each crash (nothing acknowledged lost or changed); a login with
//! the last sequence number received plus one gets what was missed; no
//! order is answered twice and every fill is reported once to each side;
//! a UserRefNum used before a crash is refused; and the journal verifies
//! and replays with every invariant holding.
//!
//! The memory-journal run snapshots every 500 commands, and each of its
//! restarts must resume from a snapshot (the edges included) rather than
//! replay from sequence 1.
//!
//! The seed can be set with `CRASH_SEED=<u64>` to repeat a run.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::*;
use gateway::client::{ClientError, LoginParams, OuchClient};
use gateway::ouch::{self, Inbound, Outbound};
use tools::config::{Config, DurabilityName};

const LOGINS: [&str; 4] = ["DEMO1", "DEMO2", "DEMO3", "DEMO4"];
/// Start-up (recovery included) on a noisy machine.
const STARTUP: Duration = Duration::from_secs(10);
/// A stream is read to its end when nothing more comes for this long.
const QUIET: Duration = Duration::from_millis(700);
/// Kill/restart cycles per test.
const CRASHES: usize = 3;
/// Enter Orders a client may have unanswered at once.
const WINDOW: usize = 400;
/// Messages a client queues before it writes them.
const BATCH: usize = 16;
/// The time between two batches of a client: about 5,000 messages a second
/// each, a steady flow that leaves the accounts funded for the whole run.
const PACE: Duration = Duration::from_micros(3_200);
/// Enter Orders a client sends to one server process at most.
const SESSION_ORDERS: usize = 4_000;
/// The duplicate-UserRefNum reject: OUCH's engine range (0x0100) plus the
/// engine's code.
const DUPLICATE_REJECT: u16 = 0x0100 + 2;

/// `exchange serve` as a child process, with where it listens.
#[derive(Debug)]
struct Server {
    child: Child,
    order_entry: SocketAddr,
    /// The rest of its standard output, line by line.
    stdout: mpsc::Receiver<String>,
    log: PathBuf,
    /// It said it recovered from a snapshot (not from sequence 1).
    from_snapshot: bool,
}

fn spawn_server(config_file: &Path, log: &Path) -> Server {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the server log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["serve", "--config", config_file.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("spawn exchange serve");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + STARTUP;
    let mut order_entry = None;
    let mut funding = None;
    let mut seen = Vec::new();
    while order_entry.is_none() || funding.is_none() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = match receiver.recv_timeout(remaining) {
            Ok(line) => line,
            Err(error) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "exchange serve did not start ({error}; {status:?}); stdout:\n{}\nlog:\n{}",
                    seen.join("\n"),
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
        };
        let address = |prefix: &str| {
            line.strip_prefix(prefix)
                .map(|rest| rest.trim().parse::<SocketAddr>().expect("an address"))
        };
        if let Some(address) =
            address("exchange: order entry (OUCH 5.0 / SoupBinTCP 4.0) listening on ")
        {
            order_entry = Some(address);
        }
        if let Some(address) = address("exchange: funding (SoupBinTCP 4.0) listening on ") {
            funding = Some(address);
        }
        seen.push(line);
    }
    let from_snapshot = seen
        .iter()
        .any(|line| line.contains("recovered from snapshot at sequence"));
    Server {
        child,
        order_entry: order_entry.unwrap(),
        stdout: receiver,
        log: log.to_owned(),
        from_snapshot,
    }
}

/// A test that fails part-way leaves no server running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// SIGKILL, and the process reaped.
    fn crash(mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// SIGTERM; the server must stop cleanly within [`STARTUP`].
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + STARTUP;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not stop within {STARTUP:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output: Vec<String> = self.stdout.try_iter().collect();
        assert!(
            status.success(),
            "the server stopped with {status}; stdout:\n{}\nlog:\n{}",
            output.join("\n"),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        assert!(
            output.iter().any(|line| line.contains("stopped cleanly")),
            "{output:?}"
        );
    }
}

/// One login's side of the whole run.
#[derive(Debug)]
struct Trader {
    login: &'static str,
    /// Every sequenced message received, over every session: its position
    /// is its sequence number minus one.
    history: Vec<(u64, Outbound)>,
    /// How much of `history` had arrived before each crash.
    before_crash: Vec<usize>,
    /// The next UserRefNum to send (strictly increasing over the run).
    next_user_ref_num: u32,
    /// Enter Orders sent, by UserRefNum.
    sent: HashMap<u32, Inbound>,
    dice: Dice,
}

impl Trader {
    fn expected_next(&self) -> u64 {
        self.history.len() as u64 + 1
    }

    fn record(&mut self, sequence: u64, message: Outbound) {
        assert_eq!(
            sequence,
            self.expected_next(),
            "{}: the stream is numbered without gaps",
            self.login
        );
        self.history.push((sequence, message));
    }

    /// A crossing order near the reference of ACME or GLOBEX (within five
    /// ticks either side), or now and then a cancel of a recent order.
    fn next_message(&mut self, first_of_session: u32) -> Inbound {
        let recent = self.next_user_ref_num - first_of_session;
        if recent > 4 && self.dice.next(10) == 0 {
            let user_ref_num = self.next_user_ref_num - 1 - self.dice.next(4) as u32;
            return Inbound::CancelOrder(ouch::CancelOrder {
                user_ref_num,
                quantity: 0,
                options: ouch::Options::NONE,
            });
        }
        let (name, reference) =
            [("ACME", 1_000_000i64), ("GLOBEX", 500_000)][self.dice.next(2) as usize];
        let offset = (self.dice.next(11) as i64 - 5) * 100;
        let side = if self.dice.next(2) == 0 {
            ouch::Side::Buy
        } else {
            ouch::Side::Sell
        };
        let quantity = 1 + self.dice.next(10) as u32;
        let user_ref_num = self.next_user_ref_num;
        self.next_user_ref_num += 1;
        let message = order(user_ref_num, side, quantity, name, reference + offset);
        self.sent.insert(user_ref_num, message);
        message
    }
}

fn login_params(login: &str, sequence: u64) -> LoginParams {
    LoginParams {
        sequence,
        ..LoginParams::new(login, &login.to_lowercase())
    }
}

/// A login from `sequence` on, retried while the server still holds a
/// previous session of the same login.
fn connect(addr: SocketAddr, login: &str, sequence: u64) -> (OuchClient, u64) {
    let deadline = Instant::now() + STARTUP;
    loop {
        match OuchClient::connect(addr, &login_params(login, sequence)) {
            Ok((client, accepted)) => return (client, accepted.sequence),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => panic!("{login}: login at {sequence}: {error}"),
        }
    }
}

/// Whether an error is the connection going away (the server was killed),
/// as opposed to the server sending something wrong.
fn is_lost_connection(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Io(_) | ClientError::Disconnected | ClientError::Timeout { .. }
    )
}

/// Trades until the server goes away: logs in with the last sequence
/// number received plus one, pipelines orders, records every message.
fn trade(mut trader: Trader, addr: SocketAddr, logged_in: &AtomicUsize) -> Trader {
    let login = trader.login;
    let wanted = trader.expected_next();
    let mut client = match OuchClient::connect(addr, &login_params(login, wanted)) {
        Ok((client, accepted)) => {
            assert_eq!(
                accepted.sequence, wanted,
                "{login}: the restarted server resumes the stream where the client left it \
                 (a lower number means acknowledged messages were lost)"
            );
            logged_in.fetch_add(1, Ordering::AcqRel);
            client
        }
        // Killed before this login got in.
        Err(error) if is_lost_connection(&error) => return trader,
        Err(error) => panic!("{login}: login: {error}"),
    };
    let first_of_session = trader.next_user_ref_num;
    let mut entered = 0usize;
    let mut answered = 0usize;
    // A safety net: the server is killed long before this.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next_batch = Instant::now();
    'session: while Instant::now() < deadline {
        if entered.saturating_sub(answered) < WINDOW
            && entered < SESSION_ORDERS
            && Instant::now() >= next_batch
        {
            next_batch = Instant::now() + PACE;
            for _ in 0..BATCH {
                let message = trader.next_message(first_of_session);
                if matches!(message, Inbound::EnterOrder(_)) {
                    entered += 1;
                }
                if let Err(error) = client.queue(&message) {
                    panic!("{login}: queue: {error}");
                }
            }
            match client.flush() {
                Ok(()) => {}
                Err(error) if is_lost_connection(&error) => break 'session,
                Err(error) => panic!("{login}: send: {error}"),
            }
        }
        // Read until the next batch is due (at least a millisecond).
        let mut wait = next_batch
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        loop {
            match client.next_message(wait) {
                Ok(Some((sequence, message))) => {
                    if let Outbound::OrderAccepted(ouch::OrderAccepted { user_ref_num, .. })
                    | Outbound::OrderRejected(ouch::OrderRejected { user_ref_num, .. }) =
                        &message
                        && *user_ref_num >= first_of_session
                    {
                        answered += 1;
                    }
                    trader.record(sequence, message);
                    wait = Duration::ZERO;
                }
                Ok(None) => break,
                Err(error) if is_lost_connection(&error) => break 'session,
                Err(error) => panic!("{login}: receive: {error}"),
            }
        }
    }
    trader
}

fn exchange(arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(arguments)
        .output()
        .expect("run exchange")
}

fn verify_journal(journal: &Path, allowed: &[i32]) {
    let verify = exchange(&["journal", "verify", journal.to_str().unwrap()]);
    assert!(
        verify
            .status
            .code()
            .is_some_and(|code| allowed.contains(&code)),
        "journal verify exited with {:?} (expected one of {allowed:?}):\n{}{}",
        verify.status.code(),
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// What the last restart gave one login: the messages it missed (from its
/// last sequence number plus one) and its whole stream (from 1).
#[derive(Debug)]
struct Final {
    trader: Trader,
    resumed_from: u64,
    resumed: Vec<(u64, Outbound)>,
    full: Vec<(u64, Outbound)>,
}

fn resume_and_read_all(mut trader: Trader, addr: SocketAddr) -> Final {
    let login = trader.login;
    let resumed_from = trader.expected_next();
    let (mut client, accepted) = connect(addr, login, resumed_from);
    assert_eq!(
        accepted, resumed_from,
        "{login}: login with the last sequence number received plus one"
    );
    let resumed = drain(&mut client, QUIET);
    for (sequence, message) in resumed.clone() {
        trader.record(sequence, message);
    }
    client.logout().expect("logout");
    let (mut client, accepted) = connect(addr, login, 1);
    assert_eq!(accepted, 1, "{login}: login from sequence 1");
    let full = drain(&mut client, QUIET);

    // A UserRefNum used before a crash is refused (checked after the whole
    // stream is read, so that its reject is not part of it). The last
    // order accepted before the last crash, and the first of the run.
    let accepted_urns: Vec<u32> = trader.history[..*trader.before_crash.last().unwrap()]
        .iter()
        .filter_map(|(_, message)| match message {
            Outbound::OrderAccepted(accepted) => Some(accepted.user_ref_num),
            _ => None,
        })
        .collect();
    let mut used = vec![
        *accepted_urns
            .last()
            .expect("an order accepted before the crash"),
    ];
    used.push(accepted_urns[0]);
    for user_ref_num in used {
        client
            .send(&order(user_ref_num, ouch::Side::Buy, 1, "ACME", 1_000_000))
            .unwrap();
        let (_, answer) = next(&mut client);
        assert!(
            matches!(&answer, Outbound::OrderRejected(r)
                if r.user_ref_num == user_ref_num && r.reason.code() == DUPLICATE_REJECT),
            "{login}: an order with UserRefNum {user_ref_num}, used before the crash, \
             must be rejected as a duplicate (0x{DUPLICATE_REJECT:04x}); got {answer:?}"
        );
    }
    // A new UserRefNum is not taken for a duplicate (at a price that
    // trades with nothing: 5% under the reference; the account may lack
    // the funds after all that trading, which is a fair answer).
    let fresh = trader.next_user_ref_num;
    client
        .send(&order(fresh, ouch::Side::Buy, 1, "ACME", 950_000))
        .unwrap();
    let (_, answer) = next(&mut client);
    assert!(
        match &answer {
            Outbound::OrderAccepted(a) => a.user_ref_num == fresh,
            Outbound::OrderRejected(r) =>
                r.user_ref_num == fresh && r.reason.code() != DUPLICATE_REJECT,
            _ => false,
        },
        "{login}: a new UserRefNum after the restart: {answer:?}"
    );
    client.logout().expect("logout");
    Final {
        trader,
        resumed_from,
        resumed,
        full,
    }
}

/// With `snapshot_every`, the snapshot agent snapshots that often, and
/// every restart after the first crash must resume from a snapshot, the
/// streams included, instead of replaying from sequence 1.
fn crash_and_restart(
    name: &str,
    durability: DurabilityName,
    default_seed: u64,
    snapshot_every: Option<u64>,
) {
    let started = Instant::now();
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default_seed);
    eprintln!("{name}: seed {seed} (CRASH_SEED to repeat)");
    let mut dice = Dice(seed);
    let dir = scratch(name);
    let data = dir.join("data");
    let mut config: Config = test_config(&data);
    config.journal.durability = durability;
    if let Some(every) = snapshot_every {
        config.snapshots.every_commands = every;
    }
    let mut resumed_starts = 0;
    let config_file = dir.join("exchange.toml");
    std::fs::write(&config_file, config.to_toml()).unwrap();
    let journal = config.journal_dir();
    let log = dir.join("serve.log");

    let mut traders: Vec<Trader> = LOGINS
        .iter()
        .enumerate()
        .map(|(index, login)| Trader {
            login,
            history: Vec::new(),
            before_crash: Vec::new(),
            next_user_ref_num: 1,
            sent: HashMap::new(),
            dice: Dice(seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        })
        .collect();

    for crash in 0..CRASHES {
        let server = spawn_server(&config_file, &log);
        resumed_starts += usize::from(server.from_snapshot);
        let addr = server.order_entry;
        let logged_in = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = traders
            .drain(..)
            .map(|trader| {
                let logged_in = Arc::clone(&logged_in);
                std::thread::spawn(move || trade(trader, addr, &logged_in))
            })
            .collect();
        // The random moment is counted from when every client trades.
        let deadline = Instant::now() + STARTUP;
        while logged_in.load(Ordering::Acquire) < LOGINS.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = Duration::from_millis(250 + dice.next(400));
        std::thread::sleep(delay);
        server.crash();
        traders = handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        for trader in &mut traders {
            trader.before_crash.push(trader.history.len());
        }
        eprintln!(
            "{name}: crash {} after {delay:?}: received {:?}",
            crash + 1,
            traders
                .iter()
                .map(|t| (t.login, t.history.len()))
                .collect::<Vec<_>>()
        );
        // The killed server's journal: sound, or with a torn tail the next
        // start truncates.
        verify_journal(&journal, &[0, 2]);
    }

    // The last restart: what each login missed, and its whole stream.
    let server = spawn_server(&config_file, &log);
    resumed_starts += usize::from(server.from_snapshot);
    if snapshot_every.is_some() {
        assert_eq!(
            resumed_starts,
            CRASHES,
            "every restart after a crash resumed from a snapshot; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let addr = server.order_entry;
    let handles: Vec<_> = traders
        .drain(..)
        .map(|trader| std::thread::spawn(move || resume_and_read_all(trader, addr)))
        .collect();
    let finals: Vec<Final> = handles
        .into_iter()
        .map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
        .collect();
    server.stop();

    let mut executions: BTreeMap<u64, Vec<(&str, u32, ouch::Price, u8)>> = BTreeMap::new();
    for done in &finals {
        let login = done.trader.login;
        let history = &done.trader.history;
        // (1) The whole stream begins with exactly what was received before
        // each crash, and (2) the resumed session is its suffix from the
        // last sequence number plus one: together, the whole stream is
        // what the client holds.
        for (index, &received) in done.trader.before_crash.iter().enumerate() {
            assert!(
                done.full.len() >= received,
                "{login}: the stream after the restart has {} messages, but {received} were \
                 received before crash {}",
                done.full.len(),
                index + 1
            );
        }
        if let Some(position) = done
            .full
            .iter()
            .zip(history)
            .position(|(full, held)| full != held)
        {
            let crash = done
                .trader
                .before_crash
                .iter()
                .position(|&received| position < received);
            panic!(
                "{login}: message {} differs (received before crash {crash:?}):\n  held:     \
                 {:?}\n  replayed: {:?}",
                position + 1,
                history[position],
                done.full[position]
            );
        }
        assert_eq!(
            done.full.len(),
            history.len(),
            "{login}: the whole stream and the messages received (the resumed session \
             from {} brought {})",
            done.resumed_from,
            done.resumed.len()
        );
        assert_eq!(
            &done.full[done.resumed_from as usize - 1..],
            &done.resumed[..],
            "{login}: the resumed session is the stream's suffix"
        );

        // (3) Every order answered at most once; only orders that were sent.
        let mut answers: HashMap<u32, usize> = HashMap::new();
        for (_, message) in &done.full {
            match message {
                Outbound::OrderAccepted(ouch::OrderAccepted { user_ref_num, .. })
                | Outbound::OrderRejected(ouch::OrderRejected { user_ref_num, .. }) => {
                    *answers.entry(*user_ref_num).or_default() += 1;
                }
                Outbound::OrderExecuted(e) => executions.entry(e.match_number).or_default().push((
                    login,
                    e.quantity,
                    e.price,
                    e.liquidity_flag.byte(),
                )),
                _ => {}
            }
        }
        for (user_ref_num, count) in &answers {
            assert_eq!(
                *count, 1,
                "{login}: order {user_ref_num} answered {count} times"
            );
            assert!(
                done.trader.sent.contains_key(user_ref_num),
                "{login}: an answer to order {user_ref_num}, which was never sent"
            );
        }
        let before: usize = *done.trader.before_crash.first().unwrap();
        assert!(
            before > 0,
            "{login}: nothing received before the first crash"
        );
    }
    // (3) Every fill reported exactly once to each side, and both agree.
    assert!(
        executions.len() > 20,
        "the flow trades ({} matches)",
        executions.len()
    );
    for (match_number, sides) in &executions {
        assert_eq!(
            sides.len(),
            2,
            "match {match_number} reported {} times: {sides:?}",
            sides.len()
        );
        let (a, b) = (sides[0], sides[1]);
        assert_ne!(a.0, b.0, "match {match_number}: one side each: {sides:?}");
        assert_eq!(
            (a.1, a.2),
            (b.1, b.2),
            "match {match_number}: quantity and price agree"
        );
        let mut flags = [a.3, b.3];
        flags.sort_unstable();
        assert_eq!(flags, *b"AR", "match {match_number}: a maker and a taker");
    }

    // (5) The journal after a clean stop: sound, replays with the CLI and
    // in process, every invariant (conservation of every asset) holding.
    verify_journal(&journal, &[0]);
    let replay = exchange(&["journal", "replay", journal.to_str().unwrap(), "--json"]);
    assert!(
        replay.status.success(),
        "journal replay: {}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let replay: serde_json::Value = serde_json::from_slice(&replay.stdout).expect("JSON");
    let replayed =
        engine::replay(&journal, None, None, false, &mut |_, _| {}).expect("the journal replays");
    replayed.engine.check_invariants().expect("invariants hold");
    assert_eq!(
        replay["last_seq"].as_u64(),
        Some(replayed.engine.last_sequence())
    );
    assert_eq!(
        replay["state_hash"].as_str(),
        Some(format!("{:032x}", replayed.engine.state_hash()).as_str())
    );
    eprintln!(
        "{name}: {} matches, {} journaled commands, streams {:?}, in {:?}",
        executions.len(),
        replayed.engine.last_sequence(),
        finals
            .iter()
            .map(|f| (f.trader.login, f.full.len(), f.resumed.len()))
            .collect::<Vec<_>>(),
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_killed_while_trading_restarts_from_its_fsync_journal() {
    crash_and_restart("crash-fsync", DurabilityName::Fsync, 0xc4a5_4001, None);
}

#[test]
fn a_server_killed_while_trading_restarts_from_its_memory_journal() {
    // Snapshots every 500 commands: each restart resumes from one, the
    // streams included.
    crash_and_restart(
        "crash-memory",
        DurabilityName::Memory,
        0xc4a5_4002,
        Some(500),
    );
}
