//! The operator's journal tools on a journal written by `exchange-bench
//! engine --journal`: a replay reaches the bench's state hash and `verify`
//! catches every changed byte of a record. The journal tools are the
//! `exchange journal` code, run here as `exchange-bench journal-tool` (the
//! same `tools::journal_tool`), since a test sees only its own package's
//! binaries. (Moved from tools/tests/journal_cli.rs when the benchmarks left
//! the `exchange` binary.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn exchange_bench(arguments: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exchange-bench"))
        .args(arguments)
        .current_dir(cwd)
        .output()
        .expect("run exchange-bench")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bench-journal-cli-{name}-{}", std::process::id()));
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

/// The offsets and lengths (with padding) of the records of a segment file.
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

fn first_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "journal"))
        .collect();
    segments.sort();
    segments.remove(0)
}

#[test]
fn bench_journal_replays_to_the_same_hash_and_verify_catches_every_changed_byte() {
    let work = scratch("bench");
    let dir = work.join("journal");
    let bench = json_of(&exchange_bench(
        &[
            "engine",
            "--journal",
            dir.to_str().unwrap(),
            "--commands",
            "3000",
            "--runs",
            "1",
            "--orders-max",
            "65536",
            "--json",
        ],
        &work,
    ));
    let expected = bench["state_hash"].as_str().expect("state_hash").to_owned();

    for extra in [&[][..], &["--no-snapshot"][..]] {
        let mut arguments = vec!["journal-tool", "replay", dir.to_str().unwrap(), "--json"];
        arguments.extend_from_slice(extra);
        let replay = json_of(&exchange_bench(&arguments, &work));
        assert_eq!(replay["state_hash"].as_str(), Some(expected.as_str()));
        assert_eq!(replay["last_seq"], replay["commands"]);
    }
    let verify = exchange_bench(&["journal-tool", "verify", dir.to_str().unwrap()], &work);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // Any single byte of a record in the middle, changed, is caught.
    let segment = first_segment(&dir);
    let pristine = std::fs::read(&segment).unwrap();
    let spans = record_spans(&pristine);
    assert!(spans.len() > 100, "{} records", spans.len());
    let (offset, footprint) = spans[spans.len() / 2];
    for byte in offset..offset + footprint {
        let mut changed = pristine.clone();
        changed[byte] ^= 0x20;
        std::fs::write(&segment, &changed).unwrap();
        let verify = exchange_bench(&["journal-tool", "verify", dir.to_str().unwrap()], &work);
        assert_eq!(
            verify.status.code(),
            Some(1),
            "byte {} of the record at {offset}: {}",
            byte - offset,
            String::from_utf8_lossy(&verify.stdout)
        );
    }
    std::fs::write(&segment, &pristine).unwrap();
    assert_eq!(
        exchange_bench(&["journal-tool", "verify", dir.to_str().unwrap()], &work)
            .status
            .code(),
        Some(0)
    );
    std::fs::remove_dir_all(&work).unwrap();
}
