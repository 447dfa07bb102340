//! `exchange journal …`: the operator's tools for a journal directory —
//! describe (`info`), decode (`dump`), check (`verify`), rebuild
//! (`replay`), `snapshot` and `truncate`. Everything but `truncate` only
//! reads the journal, so it may run beside a live server.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;
use engine::codec;
use journal::{Journal, JournalError, SnapshotStore};
use serde_json::json;

/// The journal tools.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Segments, first and last sequence, torn tail, snapshots.
    Info {
        /// The journal directory (`data_dir/journal` of the server).
        dir: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// One decoded command per line (sequence, timestamp, command).
    Dump {
        dir: PathBuf,
        /// The first sequence to print.
        #[arg(long, value_name = "N")]
        from: Option<u64>,
        /// The last sequence to print.
        #[arg(long, value_name = "N")]
        to: Option<u64>,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every record's checksum, sequence and link, that every record
    /// decodes as a command, and every snapshot's checksums. Exit status 0:
    /// sound; 1: corrupt (the first bad sequence and offset are printed);
    /// 2: a torn tail, which the next start will truncate; 3: the journal
    /// cannot be read (no such directory, no segments, permissions).
    Verify { dir: PathBuf },
    /// Rebuild the state from the journal and print the number of commands
    /// replayed, the last sequence and the state hash.
    Replay {
        dir: PathBuf,
        /// Stop after this sequence.
        #[arg(long, value_name = "N")]
        to: Option<u64>,
        /// Replay from sequence 1 instead of starting from the newest
        /// snapshot.
        #[arg(long)]
        no_snapshot: bool,
        /// `{"commands", "last_seq", "state_hash", …}` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the state at the journal's current end and write a snapshot
    /// of it beside the journal. The server must be stopped.
    Snapshot { dir: PathBuf },
    /// Keep records 1..=N and remove everything after (later segments and
    /// snapshots). For an operator who has decided where a damaged journal
    /// ends; the server must be stopped.
    Truncate {
        dir: PathBuf,
        /// The last sequence to keep.
        #[arg(long, value_name = "N")]
        to: u64,
        /// Required: this removes journaled commands.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs one journal tool; the exit code is the tool's verdict.
pub fn run(command: JournalCommand) -> anyhow::Result<ExitCode> {
    match command {
        JournalCommand::Info { dir, json } => info(&dir, json),
        JournalCommand::Dump {
            dir,
            from,
            to,
            json,
        } => dump(&dir, from, to, json),
        JournalCommand::Verify { dir } => verify(&dir),
        JournalCommand::Replay {
            dir,
            to,
            no_snapshot,
            json,
        } => replay(&dir, to, !no_snapshot, json),
        JournalCommand::Snapshot { dir } => snapshot(&dir),
        JournalCommand::Truncate { dir, to, yes } => truncate(&dir, to, yes),
    }
}

fn info(dir: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let (journal, report) = Journal::open_read_only(dir)?;
    let segments: Vec<_> = journal
        .segments()
        .into_iter()
        .map(|(index, first, path)| {
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            json!({"index": index, "first_sequence": first, "bytes": bytes,
                   "file": path.file_name().map(|n| n.to_string_lossy().into_owned())})
        })
        .collect();
    let snapshots: Vec<_> = SnapshotStore::new(dir)
        .list()?
        .into_iter()
        .map(|entry| match entry {
            Ok(info) => json!({"sequence": info.sequence, "state_hash": format!("{:032x}", info.state_hash),
                               "bytes": info.body_bytes, "file": info.path.file_name().map(|n| n.to_string_lossy().into_owned())}),
            Err(error) => json!({"error": error.to_string()}),
        })
        .collect();
    let torn = report.torn_tail.as_ref().map(|torn| {
        json!({"segment": torn.segment, "offset": torn.offset, "bytes": torn.bytes, "reason": torn.reason})
    });
    let engine_config = engine::recorded_engine_config(dir)?.map(|c| format!("{c:?}"));
    let value = json!({
        "dir": dir,
        "first_sequence": report.first_sequence,
        "last_sequence": report.last_sequence,
        // A closed journal (or one read beside a live server) is durable
        // through its last verified record: that is all that is on disk.
        "durable_sequence": report.last_sequence,
        "torn_tail": torn,
        "segments": segments,
        "snapshots": snapshots,
        "engine_config": engine_config,
    });
    if as_json {
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("journal {}", dir.display());
    println!(
        "  records {}..={} ({} commands), verified; durable through {}",
        report.first_sequence,
        report.last_sequence,
        (report.last_sequence + 1).saturating_sub(report.first_sequence),
        report.last_sequence
    );
    if let Some(torn) = &report.torn_tail {
        println!(
            "  torn tail: {} bytes at offset {} of {} ({}); the next start truncates it",
            torn.bytes,
            torn.offset,
            torn.segment.display(),
            torn.reason
        );
    }
    for segment in &value["segments"].as_array().cloned().unwrap_or_default() {
        println!(
            "  segment {:>6}  first {:>12}  {:>12} bytes  {}",
            segment["index"],
            segment["first_sequence"],
            segment["bytes"],
            segment["file"].as_str().unwrap_or("")
        );
    }
    for snapshot in &snapshots {
        match snapshot.get("error") {
            Some(error) => println!("  snapshot (bad): {}", error.as_str().unwrap_or("")),
            None => println!(
                "  snapshot at {:>12}  hash {}  {} bytes",
                snapshot["sequence"],
                snapshot["state_hash"].as_str().unwrap_or(""),
                snapshot["bytes"]
            ),
        }
    }
    if let Some(config) = engine_config {
        println!("  engine capacities {config}");
    }
    Ok(ExitCode::SUCCESS)
}

fn dump(dir: &Path, from: Option<u64>, to: Option<u64>, as_json: bool) -> anyhow::Result<ExitCode> {
    let (journal, _) = Journal::open_read_only(dir)?;
    let mut reader = journal.reader(from.unwrap_or(1));
    let to = to.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    while let Some(record) = reader.next()? {
        if record.sequence > to {
            break;
        }
        let (command, origin) = codec::decode_record(record.record_type, record.body)
            .with_context(|| format!("record {} does not decode", record.sequence))?;
        let written = if as_json {
            let mut line = json!({
                "sequence": record.sequence,
                "timestamp_ns": record.timestamp_ns,
                "type": codec::record_type_name(record.record_type),
                "command": command,
            });
            if !origin.is_empty() {
                line["origin"] = json!(hex(origin));
            }
            writeln!(out, "{line}")
        } else if origin.is_empty() {
            writeln!(
                out,
                "{:>10} {:>20} {command}",
                record.sequence, record.timestamp_ns
            )
        } else {
            writeln!(
                out,
                "{:>10} {:>20} {command} origin={}",
                record.sequence,
                record.timestamp_ns,
                hex(origin)
            )
        };
        if let Err(error) = written {
            // A closed pipe (`| head`) ends the dump quietly.
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(error.into());
        }
    }
    out.flush().ok();
    Ok(ExitCode::SUCCESS)
}

/// Lower-case hex, two digits a byte.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn verify(dir: &Path) -> anyhow::Result<ExitCode> {
    let opened = Journal::open_read_only(dir);
    let (journal, report) = match opened {
        Ok(opened) => opened,
        // Acknowledged records lost (the journal does not reach its
        // checkpoint, or has none to vouch for it) is corruption too.
        Err(
            error @ (JournalError::Corrupt { .. }
            | JournalError::MissingSegment { .. }
            | JournalError::BehindCheckpoint { .. }
            | JournalError::Checkpoint { .. }),
        ) => {
            println!("CORRUPT: {error}");
            return Ok(ExitCode::from(1));
        }
        Err(error) => {
            println!("CANNOT READ: {error}");
            return Ok(ExitCode::from(3));
        }
    };
    // Reading every record again checks checksums and links once more and
    // that each one is a command this build understands.
    let mut reader = journal.reader(report.first_sequence);
    let mut records = 0u64;
    loop {
        match reader.next() {
            Ok(Some(record)) => {
                if let Err(error) = codec::decode_record(record.record_type, record.body) {
                    println!(
                        "CORRUPT: record {} has a valid checksum but is not a command: {error}",
                        record.sequence
                    );
                    return Ok(ExitCode::from(1));
                }
                records += 1;
            }
            Ok(None) => break,
            Err(error) => {
                println!("CORRUPT: {error}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    let store = SnapshotStore::new(dir);
    let mut bad_snapshots = 0;
    for entry in store.list()? {
        if let Err(error) = entry.and_then(|info| store.load(&info).map(|_| ())) {
            println!("bad snapshot: {error}");
            bad_snapshots += 1;
        }
    }
    println!(
        "journal {}: {records} records {}..={} verified; {} segment(s)",
        dir.display(),
        report.first_sequence,
        report.last_sequence,
        report.segments
    );
    if let Some(checkpoint) = Journal::read_checkpoint(dir)? {
        println!(
            "checkpoint: records through {} (crc {:#010x}, term {}) durable, generation {}",
            checkpoint.sequence, checkpoint.checksum, checkpoint.term, checkpoint.generation
        );
    }
    if let Some(torn) = &report.torn_tail {
        println!(
            "TORN TAIL: {} bytes at offset {} of {} ({}); the next start truncates it",
            torn.bytes,
            torn.offset,
            torn.segment.display(),
            torn.reason
        );
        return Ok(ExitCode::from(2));
    }
    if bad_snapshots > 0 {
        return Ok(ExitCode::from(1));
    }
    println!("OK");
    Ok(ExitCode::SUCCESS)
}

fn replay(
    dir: &Path,
    to: Option<u64>,
    use_snapshot: bool,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let mut bar = ProgressBar::new();
    let replayed = engine::replay(dir, None, to, use_snapshot, &mut |done, total| {
        bar.show(done, total)
    })?;
    bar.finish();
    let seconds = start.elapsed().as_secs_f64();
    let engine = &replayed.engine;
    let from_snapshot = replayed.snapshot.as_ref().map(|s| s.sequence);
    if as_json {
        let value = json!({
            "commands": replayed.replayed,
            "last_seq": engine.last_sequence(),
            "state_hash": format!("{:032x}", engine.state_hash()),
            "from_snapshot": from_snapshot,
            "seconds": seconds,
        });
        println!("{value}");
    } else {
        if let Some(sequence) = from_snapshot {
            println!("started from the snapshot at sequence {sequence}");
        }
        println!("commands replayed  {}", replayed.replayed);
        println!("last sequence      {}", engine.last_sequence());
        println!("state hash         {:032x}", engine.state_hash());
        println!("seconds            {seconds:.3}");
    }
    Ok(ExitCode::SUCCESS)
}

fn snapshot(dir: &Path) -> anyhow::Result<ExitCode> {
    // Beside a running server, the journal's end may not be durable yet: a
    // snapshot of it could be ahead of the journal after a power loss.
    if journal::writer_holds_lock(dir) {
        anyhow::bail!(
            "{} is open for writing by a running server: stop it first (a snapshot must not \
             be ahead of what is durable)",
            dir.display()
        );
    }
    let replayed = engine::replay(dir, None, None, true, &mut |_, _| {})?;
    replayed
        .engine
        .check_invariants()
        .map_err(|violation| anyhow::anyhow!("invariant broken after replay: {violation}"))?;
    let info = engine::write_snapshot(dir, &replayed.engine, replayed.last_timestamp_ns)?;
    println!(
        "wrote {} at sequence {} (state hash {:032x}, {} bytes)",
        info.path.display(),
        info.sequence,
        info.state_hash,
        info.body_bytes
    );
    Ok(ExitCode::SUCCESS)
}

fn truncate(dir: &Path, to: u64, yes: bool) -> anyhow::Result<ExitCode> {
    if !yes {
        anyhow::bail!(
            "truncate removes every journaled command after sequence {to}; add --yes to do it"
        );
    }
    // Snapshots after `to` first: a stop before the journal is truncated
    // then leaves a journal that merely has fewer snapshots.
    let mut removed = SnapshotStore::new(dir).remove_after(to)?;
    removed.extend(SnapshotStore::edges(dir).remove_after(to)?);
    let report = Journal::truncate(dir, to)?;
    println!(
        "journal {} now ends at sequence {}",
        dir.display(),
        report.last_sequence
    );
    for path in report.removed_segments.iter().chain(&removed) {
        println!("  removed {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on standard error, drawn only when it is a terminal.
struct ProgressBar {
    terminal: bool,
    drawn: bool,
}

impl ProgressBar {
    fn new() -> ProgressBar {
        ProgressBar {
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    fn show(&mut self, done: u64, total: u64) {
        if !self.terminal || total < 1_000_000 {
            return;
        }
        let width = 40;
        let filled = (done.min(total) * width / total.max(1)) as usize;
        eprint!(
            "\r[{}{}] {:>3}% {done}/{total}",
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            done * 100 / total.max(1)
        );
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_print_as_lower_case_hex() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x01, 0xA2, 0xFF, 0x00]), "01a2ff00");
    }
}
