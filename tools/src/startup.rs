//! The start-up replay of `exchange serve`: the edges (the gateway's
//! directory and streams, the market-data publisher) resumed from the newest
//! snapshot they can resume from, or new, then the journal after it replayed
//! through them; and retention (see `docs/design.md`, "Start-up").

use std::path::{Path, PathBuf};

use engine::{Applied, Recovered, Sequencer};
use gateway::server::{
    AppliedCommand, Directory, DirectoryLogin, OutboundProxy, SessionStreams, StreamError,
    StreamsConfig,
};
use marketdata::publisher::Publisher;

use crate::config::{Config, IoAgentName};
use crate::edges::{self, EdgesState};
use crate::serve::boot_with;

/// The streams' configuration; their directory is named after the first
/// command's day.
fn streams_config(config: &Config, first_timestamp_ns: u64) -> StreamsConfig {
    StreamsConfig {
        root: config.streams_dir(),
        session_prefix: wire::trading_day::yymmdd(first_timestamp_ns),
        login_names: config
            .logins
            .iter()
            .map(|login| login.name.clone())
            .collect(),
        cache_bytes_max: config.server.stream_cache_bytes_max,
        writer: config
            .server
            .placed(IoAgentName::StoreWriter)
            .then(journal::StoreWriter::new),
    }
}

/// The edges before the start-up replay: resumed from an edges' snapshot,
/// or new (the replay then starts at sequence 1).
struct EdgesStart {
    /// The edges' snapshot resumed from (`None`: new edges).
    resumed: Option<EdgesState>,
    directory: Directory,
    streams: Option<SessionStreams>,
    publisher: Option<Publisher>,
    first_timestamp: Option<u64>,
}

/// The newest engine snapshot with an edges' snapshot beside it whose
/// stores on disk hold the streams and the market-data log as of its
/// sequence, with the edges resumed there; new edges if there is none
/// (each one passed over is logged with the reason).
fn edges_start(config: &Config, logins: &[DirectoryLogin]) -> anyhow::Result<EdgesStart> {
    let new_publisher = || -> anyhow::Result<Option<Publisher>> {
        let section = &config.marketdata;
        if !section.enabled {
            return Ok(None);
        }
        Publisher::new(section.payload_max)
            .map(Some)
            .map_err(|error| {
                anyhow::anyhow!("marketdata.payload_max = {}: {error}", section.payload_max)
            })
    };
    let dir = config.journal_dir();
    let snapshots = if dir.exists() {
        journal::SnapshotStore::new(&dir).list()?
    } else {
        Vec::new()
    };
    let engine_snapshots = journal::SnapshotStore::new(&dir);
    for info in snapshots.into_iter().rev().flatten() {
        let sequence = info.sequence;
        // A damaged engine snapshot is passed over here, before any store
        // is touched (the body is read again by the recovery).
        let resumed = engine_snapshots
            .load(&info)
            .map_err(anyhow::Error::from)
            .and_then(|_| edges::load(&dir, sequence))
            .and_then(|state| match state {
                Some(state) => resume_edges(config, logins, state, new_publisher()?).map(Some),
                None => Ok(None),
            });
        match resumed {
            Ok(Some(mut start)) => {
                if let Err(error) = retain(config, &mut start, sequence) {
                    // What it did stands; serving matters more.
                    tracing::warn!(%error, "retention stopped");
                }
                return Ok(start);
            }
            Ok(None) => {
                tracing::info!(
                    sequence,
                    "no edges' snapshot beside the snapshot: passed over"
                );
            }
            Err(error) => tracing::warn!(sequence, %error,
                "the edges cannot resume from this snapshot: passed over"),
        }
    }
    Ok(EdgesStart {
        resumed: None,
        directory: Directory::new(logins).map_err(anyhow::Error::msg)?,
        streams: None,
        publisher: new_publisher()?,
        first_timestamp: None,
    })
}

/// Retention (`[snapshots] retention`) at a start resumed from the
/// snapshot at `through`: the stores are synced (they must hold what the
/// journal will no longer regenerate), then the journal segments wholly at
/// or before `through - retention_window_commands` and the stores of
/// earlier trading days are archived under `data_dir/archive/` or removed.
fn retain(config: &Config, start: &mut EdgesStart, through: u64) -> anyhow::Result<()> {
    use crate::config::RetentionName;
    let section = &config.snapshots;
    let archive = match section.retention {
        RetentionName::Keep => return Ok(()),
        RetentionName::Archive => Some(config.data_dir.join("archive")),
        RetentionName::Remove => None,
    };
    // Each store root with the current day's directories in it.
    let mut roots = Vec::new();
    if let Some(streams) = start.streams.as_mut() {
        streams.sync_all()?;
        roots.push((config.streams_dir(), "streams", vec![streams.day_dir()]));
    }
    if let Some(publisher) = start.publisher.as_mut() {
        publisher.log_mut().sync_all()?;
        let root = config.marketdata_dir();
        let today = publisher
            .day_session_dirs()
            .iter()
            .map(|name| root.join(name))
            .collect();
        roots.push((root, "marketdata", today));
    }
    let cut = through.saturating_sub(section.retention_window_commands);
    let archived = |what: &str| archive.as_ref().map(|archive| archive.join(what));
    let segments = journal::Journal::remove_through(
        &config.journal_dir(),
        cut,
        archived("journal").as_deref(),
    )?;
    let mut days = 0;
    for (root, what, today) in &roots {
        days += retire_days(root, today, archived(what).as_deref())?;
    }
    tracing::info!(
        segments = segments.len(),
        through = cut,
        earlier_day_directories = days,
        archive = ?archive,
        "retention"
    );
    Ok(())
}

/// Archives (moves into `archive`) or removes the directories under `root`
/// that are not in `keep`; how many.
fn retire_days(root: &Path, keep: &[PathBuf], archive: Option<&Path>) -> anyhow::Result<usize> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(0);
    };
    let mut retired = 0;
    for entry in entries {
        let path = entry?.path();
        if !path.is_dir() || keep.contains(&path) {
            continue;
        }
        match archive {
            Some(archive) => {
                std::fs::create_dir_all(archive)?;
                let target = archive.join(path.file_name().expect("a directory name"));
                std::fs::rename(&path, &target).map_err(|error| {
                    anyhow::anyhow!("moving {} to {}: {error}", path.display(), target.display())
                })?;
            }
            None => std::fs::remove_dir_all(&path)?,
        }
        retired += 1;
    }
    Ok(retired)
}

/// The edges in `state`, on the stores on disk.
fn resume_edges(
    config: &Config,
    logins: &[DirectoryLogin],
    state: EdgesState,
    mut publisher: Option<Publisher>,
) -> anyhow::Result<EdgesStart> {
    let through = state.sequence;
    let names: Vec<&str> = logins.iter().map(|login| login.name.as_str()).collect();
    anyhow::ensure!(
        state.logins == names,
        "it was taken with another login table ({:?}; the streams are kept by login)",
        state.logins
    );
    let mut directory = Directory::new(logins).map_err(anyhow::Error::msg)?;
    directory.resume(state.gateway.directory.clone());
    let streams = SessionStreams::resume(
        streams_config(config, state.first_timestamp_ns.unwrap_or(0)),
        &state.gateway.streams,
        through,
    )?;
    match (publisher.as_mut(), &state.marketdata) {
        (Some(publisher), Some(md)) => {
            publisher.resume(md.clone(), &config.marketdata_dir(), through)?;
        }
        (Some(_), None) => anyhow::bail!("it was taken with market data disabled"),
        (None, _) => {}
    }
    Ok(EdgesStart {
        first_timestamp: state.first_timestamp_ns,
        resumed: Some(state),
        directory,
        streams: Some(streams),
        publisher,
    })
}

/// The exchange after the start-up replay, with its edges' state.
pub(crate) struct Replayed {
    pub(crate) sequencer: Sequencer,
    pub(crate) recovered: Recovered,
    pub(crate) directory: Directory,
    pub(crate) streams: SessionStreams,
    pub(crate) publisher: Option<Publisher>,
    pub(crate) first_timestamp: Option<u64>,
    /// The edges' snapshot the replay started from.
    pub(crate) resumed: Option<EdgesState>,
}

/// Recovery (or genesis) with the edges following: from the newest
/// snapshot the edges can resume from, or from sequence 1; the commands
/// after it pass through the outbound proxy (the streams, onto their
/// stores) and the publisher (the feed and its log; nothing is sent).
pub(crate) fn replay_edges(config: &Config, logins: &[DirectoryLogin]) -> anyhow::Result<Replayed> {
    let start = edges_start(config, logins)?;
    let from = start.resumed.as_ref().map(|state| state.sequence);
    if from.is_none()
        && let Some(first) = journal::Journal::first_sequence_on_disk(&config.journal_dir())?
        && first > 1
    {
        anyhow::bail!(
            "no snapshot can resume the edges (see the log), and the journal in {} starts at \
             sequence {first}, not 1 (retention): restore its first segments (from \
             data_dir/archive/journal if archived) or the stores of the newest snapshot",
            config.journal_dir().display()
        );
    }
    let mut replay = EdgesReplay {
        config,
        start,
        proxy: OutboundProxy::new(),
        error: None,
    };
    let (sequencer, recovered) =
        boot_with(config, from, Some(&mut |applied| replay.applied(applied)))?;
    let EdgesReplay { start, error, .. } = replay;
    let mut streams = start
        .streams
        .unwrap_or_else(|| SessionStreams::new(streams_config(config, 0)));
    let finished = match error {
        Some(error) => Err(error),
        None => streams.finish_replay(),
    };
    if let Err(error) = finished {
        sequencer.close()?;
        return Err(anyhow::Error::from(error).context("rebuilding the session streams"));
    }
    Ok(Replayed {
        sequencer,
        recovered,
        directory: start.directory,
        streams,
        publisher: start.publisher,
        first_timestamp: start.first_timestamp,
        resumed: start.resumed,
    })
}

/// The edges following the start-up replay.
struct EdgesReplay<'c> {
    config: &'c Config,
    start: EdgesStart,
    proxy: OutboundProxy,
    /// The first failure of a stream's store (the replay then only counts).
    error: Option<StreamError>,
}

impl EdgesReplay<'_> {
    /// One replayed command: the publisher regenerates its messages (and
    /// state; nothing is sent) and the outbound proxy its streams'.
    fn applied(&mut self, applied: &Applied<'_>) {
        let start = &mut self.start;
        if let Some(publisher) = start.publisher.as_mut() {
            publisher.applied(
                applied.header,
                applied.command,
                applied.events,
                &mut |_packet| {},
            );
        }
        start
            .first_timestamp
            .get_or_insert(applied.header.timestamp_ns);
        if self.error.is_some() {
            return;
        }
        let config = self.config;
        let streams = start.streams.get_or_insert_with(|| {
            SessionStreams::new(streams_config(config, applied.header.timestamp_ns))
        });
        let routed = self.proxy.applied(
            &mut start.directory,
            streams,
            &AppliedCommand {
                header: applied.header,
                command: applied.command,
                origin: applied.origin,
                status: applied.status,
                events: applied.events,
            },
        );
        let cleared = match routed {
            Ok(routed) if routed.day_ended => streams.clear(),
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = cleared {
            self.error = Some(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_days_are_archived_or_removed_and_today_stays() {
        let root = std::env::temp_dir().join(format!("serve-retire-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let days = root.join("streams");
        for day in ["2612070000", "2612070001", "2612070002"] {
            std::fs::create_dir_all(days.join(day).join("DEMO1")).unwrap();
        }
        std::fs::write(days.join("note.txt"), b"not a day").unwrap();
        let today = vec![days.join("2612070002")];
        let archive = root.join("archive");
        assert_eq!(retire_days(&days, &today, Some(&archive)).unwrap(), 2);
        assert!(archive.join("2612070000").join("DEMO1").is_dir());
        assert!(archive.join("2612070001").is_dir());
        assert!(days.join("2612070002").is_dir() && days.join("note.txt").is_file());
        std::fs::create_dir_all(days.join("2612070001")).unwrap();
        assert_eq!(retire_days(&days, &today, None).unwrap(), 1);
        assert!(!days.join("2612070001").exists());
        assert_eq!(retire_days(&root.join("absent"), &today, None).unwrap(), 0);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
