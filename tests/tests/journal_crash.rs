//! Crash tests that really kill a process: a child
//! (`src/bin/journal_crash_child.rs`) appends to a journal under load and
//! is killed with SIGKILL at a random moment, over and over, on the same
//! journal. After every kill this test recovers the journal and requires:
//!
//! - recovery succeeds (a kill only ever leaves a torn tail or the
//!   leftovers of a roll-over, never corruption);
//! - the records are contiguous from 1 and each one's body, type and
//!   timestamp are those the child derives from its sequence;
//! - nothing the child reported durable (`durable N` on its stdout) is
//!   lost, nor anything an earlier round verified.
//!
//! Then the next child recovers the same journal and appends to it, so
//! recovery followed by appending is exercised once per round. Each round
//! picks the durability policy (`memory` or `fsync`) and either kills the
//! child during its start-up (while it recovers) or after it has opened
//! the journal, after a random delay.
//!
//! Run (6 to 14 s on two cores, 80 rounds, depending on load):
//!   cargo test -p tests --test journal_crash -- --nocapture
//! Longer, or to reproduce the choices of a failed run (the kill times are
//! real time, so a rerun is similar, not identical):
//!   JOURNAL_CRASH_ROUNDS=500 JOURNAL_CRASH_SEED=<seed> \
//!     cargo test -p tests --test journal_crash -- --nocapture
//!
//! Environment variables: `JOURNAL_CRASH_ROUNDS` (default 80),
//! `JOURNAL_CRASH_SEED` (default: drawn from the clock; always printed).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use journal::{Durability, Journal};
use tests::{SimulationRng, environment_number};

// The record contents and options are the child's own functions, shared
// by including its source rather than duplicated.
#[path = "../src/bin/journal_crash_child.rs"]
#[allow(dead_code)]
mod child;

const ROUNDS_DEFAULT: u64 = 80;
/// How long a child may take to recover before the test calls it stuck.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// What a child printed before it died.
#[derive(Debug, Default)]
struct ChildReport {
    opened: Option<u64>,
    durable_max: u64,
    durable_lines: u64,
}

impl ChildReport {
    fn take(&mut self, line: &str) {
        let (word, number) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("unexpected child output {line:?}"));
        let number: u64 = number
            .parse()
            .unwrap_or_else(|_| panic!("unexpected child output {line:?}"));
        match word {
            "opened" => self.opened = Some(number),
            "durable" => {
                assert!(number > self.durable_max, "durable went back: {line:?}");
                self.durable_max = number;
                self.durable_lines += 1;
            }
            _ => panic!("unexpected child output {line:?}"),
        }
    }
}

/// Forwards the child's stdout lines to a channel until it closes.
fn forward_lines(stdout: ChildStdout) -> (Receiver<String>, std::thread::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    (receiver, handle)
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    text
}

/// Runs one child on `dir` and kills it; returns what it printed.
fn run_child(dir: &Path, policy: &str, rng: &mut SimulationRng, context: &str) -> ChildReport {
    // One child in three appends flat out, and is killed within a few
    // milliseconds (it appends hundreds of megabytes a second).
    let flat_out = rng.chance(33);
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal_crash_child"))
        .arg(dir)
        .arg(policy)
        .arg(if flat_out { "flat-out" } else { "paced" })
        .arg(rng.next_u64().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let (lines, forwarder) = forward_lines(child.stdout.take().expect("piped"));
    let mut report = ChildReport::default();
    // One round in six kills the child while it starts (and recovers).
    let during_startup = rng.chance(16);
    if !during_startup {
        let started = Instant::now();
        while report.opened.is_none() {
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => report.take(&line),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(status) = child.try_wait().expect("poll the child") {
                        panic!(
                            "{context}: the child exited ({status}): {}",
                            stderr_of(&mut child)
                        );
                    }
                    assert!(
                        started.elapsed() < STARTUP_TIMEOUT,
                        "{context}: the child is stuck"
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait for the child");
                    panic!(
                        "{context}: the child exited ({status}): {}",
                        stderr_of(&mut child)
                    );
                }
            }
        }
    }
    let delay_us = if during_startup {
        rng.below(15_000)
    } else if flat_out {
        rng.below(5_000)
    } else {
        rng.below(60_000)
    };
    std::thread::sleep(Duration::from_micros(delay_us));
    if let Some(status) = child.try_wait().expect("poll the child") {
        panic!(
            "{context}: the child exited on its own ({status}): {}",
            stderr_of(&mut child)
        );
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "{context}: killed, yet {status}");
    forwarder.join().expect("the stdout forwarder");
    for line in lines.try_iter() {
        report.take(&line);
    }
    report
}

/// Recovers the journal and checks every record; returns the last sequence
/// and whether recovery found a torn tail / removed a segment.
fn recover_and_verify(dir: &Path, context: &str) -> (u64, bool, bool) {
    let (journal, report) = Journal::open(dir, child::options(Durability::Memory))
        .unwrap_or_else(|error| panic!("{context}: recovery failed: {error}"));
    if report.last_sequence > 0 {
        assert_eq!(report.first_sequence, 1, "{context}: {report:?}");
    }
    let mut reader = journal.reader(1);
    let mut expected = 1;
    while let Some(record) = reader
        .next()
        .unwrap_or_else(|error| panic!("{context}: reading {expected}: {error}"))
    {
        assert_eq!(record.sequence, expected, "{context}");
        assert_eq!(
            record.record_type,
            child::record_type(expected),
            "{context}: type of {expected}"
        );
        assert_eq!(
            record.timestamp_ns,
            child::record_timestamp_ns(expected),
            "{context}: timestamp of {expected}"
        );
        assert!(
            record.body == child::record_body(expected),
            "{context}: body of {expected}"
        );
        expected += 1;
    }
    assert_eq!(expected - 1, report.last_sequence, "{context}: {report:?}");
    let removed_segment = report
        .removed
        .iter()
        .any(|path| path.extension().is_some_and(|e| e == "journal"));
    journal
        .close()
        .unwrap_or_else(|error| panic!("{context}: close: {error}"));
    (
        report.last_sequence,
        report.torn_tail.is_some(),
        removed_segment,
    )
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("journal kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn killed_appenders_lose_nothing_durable_and_recovery_then_append_repeats() {
    let rounds = environment_number("JOURNAL_CRASH_ROUNDS").unwrap_or(ROUNDS_DEFAULT);
    let seed = environment_number("JOURNAL_CRASH_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.expect("a clock after 1970").as_nanos() as u64
    });
    println!("journal_crash: JOURNAL_CRASH_SEED={seed} JOURNAL_CRASH_ROUNDS={rounds}");
    let scratch =
        Scratch(std::env::temp_dir().join(format!("journal-crash-{seed}-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let dir = scratch.0.as_path();
    let mut rng = SimulationRng::new(seed);
    let started = Instant::now();
    let (mut verified_last, mut torn_tails, mut removed_segments) = (0u64, 0u64, 0u64);
    let (mut killed_appending, mut durable_lines) = (0u64, 0u64);
    for round in 0..rounds {
        let policy = if rng.chance(50) { "fsync" } else { "memory" };
        let context = format!("seed {seed} round {round} ({policy})");
        let child = run_child(dir, policy, &mut rng, &context);
        let (last, torn, removed) = recover_and_verify(dir, &context);
        if let Some(opened) = child.opened {
            assert!(
                opened >= verified_last,
                "{context}: the child recovered {opened}"
            );
        }
        assert!(
            last >= verified_last.max(child.durable_max),
            "{context}: recovered through {last}; verified before {verified_last}, the child \
             reported {} durable",
            child.durable_max
        );
        println!(
            "{context}: child opened at {:?}, durable {}, recovered {last}{}{}",
            child.opened,
            child.durable_max,
            if torn { ", torn tail" } else { "" },
            if removed {
                ", removed an empty segment"
            } else {
                ""
            }
        );
        killed_appending += u64::from(last > verified_last);
        durable_lines += child.durable_lines;
        torn_tails += u64::from(torn);
        removed_segments += u64::from(removed);
        verified_last = last;
    }
    println!(
        "journal_crash: {rounds} rounds in {:.1?}: {verified_last} records, {killed_appending} \
         rounds appended, {durable_lines} durable reports, {torn_tails} torn tails, \
         {removed_segments} empty segments removed",
        started.elapsed()
    );
    // The kills must have landed while the child was appending, or the
    // test tested nothing.
    assert!(
        killed_appending * 2 >= rounds,
        "too few rounds appended anything"
    );
    assert!(durable_lines > 0);
}
