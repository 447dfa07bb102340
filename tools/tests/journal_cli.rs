//! The operator's journal tools, run as the operator runs them: the
//! `exchange` binary on a journal written by `exchange serve`. (On a journal
//! written by `exchange-bench engine --journal`: bench/tests/journal_cli.rs.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn exchange(arguments: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(arguments)
        .current_dir(cwd)
        .output()
        .expect("run exchange")
}

/// Runs `exchange serve --config CONFIG` in `cwd` until it listens, then
/// stops it with SIGTERM; what it printed and its exit status. A start that
/// fails exits by itself.
fn serve(cwd: &Path, config: &Path) -> Output {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_exchange"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run exchange serve");
    let pid = child.id().to_string();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.contains("funding (SoupBinTCP 4.0) listening on") {
                let stopped = Command::new("kill").args(["-TERM", &pid]).status();
                assert!(stopped.unwrap().success(), "kill -TERM {pid}");
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut output = child.wait_with_output().expect("exchange serve ends");
    output.stdout = reader.join().unwrap().into_bytes();
    output
}

/// The embedded configuration with its listeners on ports the system
/// chooses (tests run in parallel, and a developer's server may hold the
/// default ones), written to `dir/serve.toml`.
fn free_port_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("serve.toml");
    let text = text
        .replace("127.0.0.1:9001", "127.0.0.1:0")
        .replace("127.0.0.1:9002", "127.0.0.1:0")
        .replace("127.0.0.1:9003", "127.0.0.1:0")
        .replace("127.0.0.1:9004", "127.0.0.1:0");
    std::fs::write(&path, text).unwrap();
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("journal-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[test]
fn serve_journals_genesis_and_the_tools_read_it() {
    let work = scratch("serve");
    let shown = exchange(&["config", "show"], &work);
    let default_text = String::from_utf8_lossy(&shown.stdout).into_owned();
    let config = free_port_config(&work, &default_text);
    let first = serve(&work, &config);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let dir = work.join("data/journal");
    let dir_text = dir.to_str().unwrap();

    let info = json_of(&exchange(&["journal", "info", dir_text, "--json"], &work));
    let last = info["last_sequence"].as_u64().unwrap();
    assert!(last > 10, "{info}");
    assert!(info["torn_tail"].is_null());

    let dump = exchange(
        &[
            "journal", "dump", dir_text, "--json", "--from", "2", "--to", "4",
        ],
        &work,
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&dump.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["sequence"], 2);
    assert_eq!(lines[0]["type"], "CreateAsset");
    let text = exchange(&["journal", "dump", dir_text, "--to", "1"], &work);
    assert!(String::from_utf8_lossy(&text.stdout).contains("CreateAsset asset=0 symbol=USD"));

    // A restart recovers the same state and journals nothing new.
    let before = json_of(&exchange(&["journal", "replay", dir_text, "--json"], &work));
    let second = serve(&work, &config);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("stopped cleanly"));
    assert!(
        String::from_utf8_lossy(&second.stdout)
            .contains(&format!("recovered {last} journaled commands"))
    );
    let after = json_of(&exchange(&["journal", "replay", dir_text, "--json"], &work));
    assert_eq!(before["state_hash"], after["state_hash"]);
    assert_eq!(after["last_seq"], last);

    // A snapshot, then a start beside it. The server replays the journal
    // from its first command all the same: the sessions' streams need
    // every command's replies (docs/server.md); the operator's replay uses
    // the snapshot.
    let snapshot = exchange(&["journal", "snapshot", dir_text], &work);
    assert!(snapshot.status.success());
    let third = serve(&work, &config);
    assert!(third.status.success());
    assert!(
        String::from_utf8_lossy(&third.stdout)
            .contains(&format!("recovered {last} journaled commands"))
    );
    let from_snapshot = exchange(&["journal", "replay", dir_text], &work);
    assert!(
        String::from_utf8_lossy(&from_snapshot.stdout).contains("snapshot"),
        "{}",
        String::from_utf8_lossy(&from_snapshot.stdout)
    );

    // The operator's truncation, which needs --yes.
    let refused = exchange(&["journal", "truncate", dir_text, "--to", "5"], &work);
    assert!(!refused.status.success());
    let truncated = exchange(
        &["journal", "truncate", dir_text, "--to", "5", "--yes"],
        &work,
    );
    assert!(truncated.status.success());
    let info = json_of(&exchange(&["journal", "info", dir_text, "--json"], &work));
    assert_eq!(info["last_sequence"], 5);
    assert_eq!(info["snapshots"].as_array().unwrap().len(), 0);

    // A first start stopped part-way through genesis (here: cut back to 5
    // commands) is finished by the next start, to the same state.
    let resumed = serve(&work, &config);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let after = json_of(&exchange(&["journal", "replay", dir_text, "--json"], &work));
    assert_eq!(after["last_seq"], last);
    assert_eq!(after["state_hash"], before["state_hash"]);

    // A journal begun with another configuration is refused, not mixed.
    let text = default_text.replace("DEMO4", "OTHER4");
    let text = text
        .replace("id = 4", "id = 5")
        .replace("account = 4", "account = 5");
    let other = free_port_config(&work, &text);
    let refused = serve(&work, &other);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("another configuration"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// Each record's offset and footprint in a segment's bytes.
fn record_spans(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut offset = 64;
    while offset + 4 <= segment.len() {
        let length = u32::from_le_bytes(segment[offset..offset + 4].try_into().unwrap()) as usize;
        if length == 0 || length == u32::MAX as usize {
            break;
        }
        let footprint = length.next_multiple_of(8);
        spans.push((offset, footprint));
        offset += footprint;
    }
    spans
}

fn segments_of(dir: &Path) -> Vec<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "journal"))
        .collect();
    segments.sort();
    segments
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Acknowledged records lost without a trace of damage (a clean cut at a
/// record boundary, deleted segments, a deleted journal beside its
/// ENGINE_CONFIG) are refused by `verify` and by `serve`, never taken for
/// a shorter journal or a new exchange; and a second process cannot write
/// beside a live writer even after `LOCK` was deleted.
#[test]
fn lost_acknowledged_records_and_a_deleted_lock_are_refused() {
    let work = scratch("lost");
    let shown = exchange(&["config", "show"], &work);
    let config = free_port_config(&work, &text(&shown.stdout));
    let first = serve(&work, &config);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let dir = work.join("data/journal");
    let dir_text = dir.to_str().unwrap();
    let info = json_of(&exchange(&["journal", "info", dir_text, "--json"], &work));
    let last = info["last_sequence"].as_u64().unwrap();
    assert!(last > 10, "{info}");

    // A second process, with LOCK deleted while this one writes.
    {
        let options = journal::JournalOptions {
            segment_bytes: 1 << 20,
            prefault: false,
            ..Default::default()
        };
        let (writer, _) = journal::Journal::open(&dir, options).unwrap();
        std::fs::remove_file(dir.join("LOCK")).unwrap();
        let second = exchange(
            &["journal", "truncate", dir_text, "--to", "5", "--yes"],
            &work,
        );
        assert!(!second.status.success());
        assert!(
            text(&second.stderr).contains("open for writing"),
            "{}",
            text(&second.stderr)
        );
        let started = serve(&work, &config);
        assert!(!started.status.success(), "{}", text(&started.stdout));
        writer.close().unwrap();
    }

    // The last segment cut exactly where its last two records start: a
    // sound journal, two records short of its checkpoint.
    let cut_dir = work.join("cut");
    std::fs::create_dir_all(&cut_dir).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), cut_dir.join(entry.file_name())).unwrap();
    }
    let segment = segments_of(&cut_dir).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let spans = record_spans(&bytes);
    let (cut_at, _) = spans[spans.len() - 2];
    bytes[cut_at..].fill(0);
    std::fs::write(&segment, &bytes).unwrap();
    let verify = exchange(&["journal", "verify", cut_dir.to_str().unwrap()], &work);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify.stdout));
    let said = text(&verify.stdout);
    assert!(
        said.contains("lost durable records")
            && said.contains(&format!("ends at sequence {}", last - 2))
            && said.contains(&format!("records sequence {last}")),
        "{said}"
    );

    // Every segment deleted: the checkpoint says what was lost.
    for path in segments_of(&dir) {
        std::fs::remove_file(path).unwrap();
    }
    let refused = serve(&work, &config);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("no journal segments"),
        "{}",
        text(&refused.stderr)
    );
    // The checkpoint deleted too: ENGINE_CONFIG still says an exchange
    // lived here. Never a new genesis.
    std::fs::remove_file(dir.join("CHECKPOINT")).unwrap();
    let refused = serve(&work, &config);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("journal was lost"),
        "{}",
        text(&refused.stderr)
    );
    assert!(segments_of(&dir).is_empty(), "no journal was begun");
    std::fs::remove_dir_all(&work).unwrap();
}
