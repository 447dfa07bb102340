//! The sequencer: it stamps each command with the next sequence number and
//! a timestamp, appends it to the journal, and only then applies it to the
//! state machine (write-ahead, then apply). Starting one is recovery: the
//! newest valid snapshot, then every journaled command after it. A command
//! may be journaled with an origin of its submitter's
//! ([`Sequencer::submit_with_origin`]), which [`Sequencer::open_observed`]
//! gives back, with each command's events, on a replay from sequence 1.
//!
//! This is the one part of `engine` that touches files; the state machine
//! itself stays pure. The capacities a journal was written with are part of
//! what its replay means (a full book rejects), so they are kept beside the
//! journal in `ENGINE_CONFIG` and a start with other capacities is refused.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use journal::{
    DurablePosition, Journal, JournalError, JournalOptions, RecoveryReport, SnapshotInfo,
    SnapshotStore,
};

use crate::codec::{self, DecodeError, RECORD_BYTES_MAX};
use crate::command::{Command, CommandHeader};
use crate::config::{ConfigError, EngineConfig};
use crate::event::{Event, EventSink, Status};
use crate::machine::{Engine, SnapshotError};
use crate::types::AccountId;

/// The file beside the journal that records the engine's capacities.
pub const ENGINE_CONFIG_FILE: &str = "ENGINE_CONFIG";

/// Why an engine could not be started from its journal.
#[derive(Debug)]
pub enum RecoveryError {
    Journal(JournalError),
    Config(ConfigError),
    /// The journal was written with other capacities.
    ConfigMismatch {
        path: PathBuf,
        journal: Box<EngineConfig>,
        requested: Box<EngineConfig>,
    },
    /// `ENGINE_CONFIG` is unreadable.
    ConfigFile {
        path: PathBuf,
        reason: String,
    },
    /// A journaled command does not decode.
    Decode {
        sequence: u64,
        error: DecodeError,
    },
    /// A snapshot does not restore, or restores to another state hash.
    Snapshot {
        path: PathBuf,
        reason: String,
    },
    /// The records after the snapshot (or from 1) are not all there.
    Gap {
        reason: String,
    },
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryError::Journal(error) => write!(f, "{error}"),
            RecoveryError::Config(error) => write!(f, "{error}"),
            RecoveryError::ConfigMismatch {
                path,
                journal,
                requested,
            } => write!(
                f,
                "the journal was written with engine capacities {journal:?} (recorded in {}), \
                 not {requested:?}: start with the same capacities",
                path.display()
            ),
            RecoveryError::ConfigFile { path, reason } => {
                write!(f, "{}: {reason}", path.display())
            }
            RecoveryError::Decode { sequence, error } => {
                write!(f, "journal record {sequence} is not a command: {error}")
            }
            RecoveryError::Snapshot { path, reason } => {
                write!(f, "snapshot {}: {reason}", path.display())
            }
            RecoveryError::Gap { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for RecoveryError {}

impl From<JournalError> for RecoveryError {
    fn from(error: JournalError) -> RecoveryError {
        RecoveryError::Journal(error)
    }
}

/// What a start from the journal found and did.
#[derive(Debug)]
pub struct Recovered {
    /// The journal's own recovery (segments, torn tail).
    pub journal: RecoveryReport,
    /// The snapshot the state started from, if any.
    pub snapshot: Option<SnapshotInfo>,
    /// Newer snapshots that failed their checks and were passed over.
    pub snapshots_skipped: Vec<String>,
    /// Commands replayed after the snapshot.
    pub replayed: u64,
    /// The state hash after recovery.
    pub state_hash: u128,
}

/// One command replayed by [`Sequencer::open_observed`], with what applying
/// it gave: what the submitter saw when it was first applied, since the
/// engine is deterministic.
#[derive(Clone, Copy, Debug)]
pub struct Applied<'a> {
    pub header: CommandHeader,
    pub command: &'a Command,
    /// The origin journaled with the command (empty if none); see
    /// [`Sequencer::submit_with_origin`].
    pub origin: &'a [u8],
    pub status: Status,
    /// The events the command wrote, in order.
    pub events: &'a [Event],
}

/// Stamps, journals and applies commands; owns the engine and the journal.
#[derive(Debug)]
pub struct Sequencer {
    engine: Engine,
    journal: Journal,
    snapshots: SnapshotStore,
    last_timestamp_ns: u64,
    buffer: [u8; RECORD_BYTES_MAX],
}

impl Sequencer {
    /// Starts from the journal in `dir` (created if empty): recovery of the
    /// journal, then the newest valid snapshot, then replay of every command
    /// after it. The state hash after a snapshot's restore must equal the
    /// one recorded with it.
    pub fn open(
        dir: &Path,
        config: EngineConfig,
        options: JournalOptions,
    ) -> Result<(Sequencer, Recovered), RecoveryError> {
        Sequencer::open_with(dir, config, options, StartFrom::Newest, None)
    }

    /// Starts from the journal in `dir` like [`Sequencer::open`], but
    /// replays every command from sequence 1, applying each with an event
    /// sink and calling `observer` with the command, its origin, its status
    /// and its events.
    ///
    /// Snapshots are ignored on purpose: a snapshot holds the engine's state
    /// but not the events that led to it, and the observer (the gateway,
    /// rebuilding its own state and the replies it sent, origin by origin)
    /// must see the events of every command since sequence 1. So the journal
    /// must still hold every record from 1: one whose first segments were
    /// removed after a snapshot gives [`RecoveryError::Gap`]. The events go
    /// to one `Vec`, cleared before each command, so the replay allocates
    /// nothing per command once it has grown to the largest.
    pub fn open_observed(
        dir: &Path,
        config: EngineConfig,
        options: JournalOptions,
        observer: &mut dyn FnMut(&Applied<'_>),
    ) -> Result<(Sequencer, Recovered), RecoveryError> {
        Sequencer::open_with(dir, config, options, StartFrom::Genesis, Some(observer))
    }

    /// As [`Sequencer::open_observed`], but starting from the snapshot at
    /// exactly sequence `from` (when the observer has its own state at that
    /// sequence: the edges' snapshot written beside it): the observer sees
    /// the commands after it. `None` starts from the empty engine, as
    /// [`Sequencer::open_observed`] does. A snapshot at `from` that is
    /// missing or does not check out is an error, never passed over: the
    /// caller chose it.
    pub fn open_observed_from(
        dir: &Path,
        config: EngineConfig,
        options: JournalOptions,
        from: Option<u64>,
        observer: &mut dyn FnMut(&Applied<'_>),
    ) -> Result<(Sequencer, Recovered), RecoveryError> {
        let start = from.map_or(StartFrom::Genesis, StartFrom::Exactly);
        Sequencer::open_with(dir, config, options, start, Some(observer))
    }

    fn open_with(
        dir: &Path,
        config: EngineConfig,
        options: JournalOptions,
        start: StartFrom,
        observer: Option<&mut dyn FnMut(&Applied<'_>)>,
    ) -> Result<(Sequencer, Recovered), RecoveryError> {
        config.validate().map_err(RecoveryError::Config)?;
        refuse_lost_journal(dir)?;
        let (journal, report) = Journal::open(dir, options)?;
        let snapshots = SnapshotStore::new(dir);
        let new_journal = journal.last_sequence() == 0 && snapshots.list()?.is_empty();
        let config = check_engine_config(dir, Some(config), true, new_journal)?;
        let rebuilt = rebuild(
            &journal,
            &snapshots,
            config,
            None,
            start,
            &mut |_, _| {},
            observer,
        )?;
        let state_hash = rebuilt.engine.state_hash();
        let sequencer = Sequencer {
            last_timestamp_ns: rebuilt.last_timestamp_ns,
            engine: rebuilt.engine,
            journal,
            snapshots,
            buffer: [0; RECORD_BYTES_MAX],
        };
        let recovered = Recovered {
            journal: report,
            snapshot: rebuilt.snapshot,
            snapshots_skipped: rebuilt.snapshots_skipped,
            replayed: rebuilt.replayed,
            state_hash,
        };
        Ok((sequencer, recovered))
    }

    /// Sequences `command` with the current time, journals it, then applies
    /// it. Nothing is applied if the journal cannot take it.
    pub fn submit<S: EventSink>(
        &mut self,
        command: &Command,
        events: &mut S,
    ) -> Result<(CommandHeader, Status), JournalError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64);
        self.submit_at(now, command, events)
    }

    /// As [`Sequencer::submit`] with a given timestamp (replaced by the
    /// previous command's if earlier: journal time never goes backwards).
    pub fn submit_at<S: EventSink>(
        &mut self,
        timestamp_ns: u64,
        command: &Command,
        events: &mut S,
    ) -> Result<(CommandHeader, Status), JournalError> {
        self.submit_with_origin(timestamp_ns, command, &[], events)
    }

    /// As [`Sequencer::submit_at`], journaling `origin` with the command
    /// (see `codec::encode_record`): up to `codec::ORIGIN_BYTES_MAX` bytes,
    /// opaque to the engine, that [`Sequencer::open_observed`] gives back
    /// with the command on replay. An empty origin journals a plain record.
    ///
    /// # Panics
    ///
    /// If `origin` is longer than `codec::ORIGIN_BYTES_MAX`.
    pub fn submit_with_origin<S: EventSink>(
        &mut self,
        timestamp_ns: u64,
        command: &Command,
        origin: &[u8],
        events: &mut S,
    ) -> Result<(CommandHeader, Status), JournalError> {
        let timestamp_ns = timestamp_ns.max(self.last_timestamp_ns);
        let (record_type, length) = codec::encode_record(command, origin, &mut self.buffer);
        let sequence = self
            .journal
            .append(record_type, timestamp_ns, &self.buffer[..length])?;
        self.last_timestamp_ns = timestamp_ns;
        let header = CommandHeader {
            sequence,
            timestamp_ns,
        };
        let status = self.engine.apply(header, command, events);
        Ok((header, status))
    }

    /// The state machine, to read.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The journal, for readers and its position.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// One step of the journal's stepped segment preparation (see
    /// [`Journal::prepare_step`]), for the appending thread's idle time;
    /// whether there was work.
    pub fn prepare_step(&mut self) -> bool {
        self.journal.prepare_step()
    }

    /// Where the edges read the durable sequence from.
    pub fn durable(&self) -> DurablePosition {
        self.journal.durable()
    }

    /// Writes a snapshot of the current state. The journal is made durable
    /// through the snapshot's sequence first, so that a snapshot is never
    /// ahead of the journal it belongs to. Blocks the caller for the
    /// serialisation and the write.
    pub fn write_snapshot(&mut self) -> Result<SnapshotInfo, JournalError> {
        self.journal.sync()?;
        let sequence = self.engine.last_sequence();
        self.snapshots.write(
            sequence,
            self.last_timestamp_ns,
            self.engine.state_hash(),
            &self.engine.snapshot(),
        )
    }

    /// Makes everything journaled durable and closes the journal.
    pub fn close(self) -> Result<(), JournalError> {
        self.journal.close()
    }
}

/// What [`replay`] rebuilt.
#[derive(Debug)]
pub struct Replayed {
    pub engine: Engine,
    pub journal: RecoveryReport,
    pub snapshot: Option<SnapshotInfo>,
    pub snapshots_skipped: Vec<String>,
    /// Commands applied after the snapshot (or from 1).
    pub replayed: u64,
    /// The timestamp of the last command applied.
    pub last_timestamp_ns: u64,
}

/// Rebuilds the state from the journal in `dir` without changing anything
/// there (the operator's replay): through sequence `to` (default: the
/// end), from the newest valid snapshot at or before it when
/// `use_snapshot`, else from sequence 1. `config` defaults to the one
/// recorded beside the journal. `progress(done, total)` is called now and
/// then.
pub fn replay(
    dir: &Path,
    config: Option<EngineConfig>,
    to: Option<u64>,
    use_snapshot: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Replayed, RecoveryError> {
    let (journal, report) = Journal::open_read_only(dir)?;
    let config = check_engine_config(dir, config, false, false)?;
    let snapshots = SnapshotStore::new(dir);
    let rebuilt = rebuild(
        &journal,
        &snapshots,
        config,
        to,
        if use_snapshot {
            StartFrom::Newest
        } else {
            StartFrom::Genesis
        },
        progress,
        None,
    )?;
    Ok(Replayed {
        engine: rebuilt.engine,
        journal: report,
        snapshot: rebuilt.snapshot,
        snapshots_skipped: rebuilt.snapshots_skipped,
        replayed: rebuilt.replayed,
        last_timestamp_ns: rebuilt.last_timestamp_ns,
    })
}

/// Writes a snapshot of `engine` beside the journal in `dir` (the
/// operator's `journal snapshot`, after a [`replay`]).
pub fn write_snapshot(
    dir: &Path,
    engine: &Engine,
    timestamp_ns: u64,
) -> Result<SnapshotInfo, JournalError> {
    SnapshotStore::new(dir).write(
        engine.last_sequence(),
        timestamp_ns,
        engine.state_hash(),
        &engine.snapshot(),
    )
}

/// The engine capacities recorded beside the journal in `dir`.
pub fn recorded_engine_config(dir: &Path) -> Result<Option<EngineConfig>, RecoveryError> {
    let path = dir.join(ENGINE_CONFIG_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(RecoveryError::ConfigFile {
                path,
                reason: error.to_string(),
            });
        }
    };
    parse_engine_config(&text)
        .map(Some)
        .map_err(|reason| RecoveryError::ConfigFile { path, reason })
}

struct Rebuilt {
    engine: Engine,
    snapshot: Option<SnapshotInfo>,
    snapshots_skipped: Vec<String>,
    replayed: u64,
    last_timestamp_ns: u64,
}

/// The newest usable snapshot (or none), then the journal after it. With an
/// `observer`, each replayed command is applied with an event sink and shown
/// to it; without one, the events are discarded.
fn rebuild(
    journal: &Journal,
    snapshots: &SnapshotStore,
    config: EngineConfig,
    to: Option<u64>,
    start: StartFrom,
    progress: &mut dyn FnMut(u64, u64),
    mut observer: Option<&mut dyn FnMut(&Applied<'_>)>,
) -> Result<Rebuilt, RecoveryError> {
    let last = journal.last_sequence();
    let to = match to {
        Some(to) if to > last => {
            return Err(RecoveryError::Gap {
                reason: format!("the journal ends at sequence {last}, before {to}"),
            });
        }
        Some(to) => to,
        None => last,
    };
    let start = match start {
        StartFrom::Newest => start_state(snapshots, config, last, to)?,
        StartFrom::Genesis => Start::genesis(config)?,
        StartFrom::Exactly(sequence) => exact_start(snapshots, config, sequence, last)?,
    };
    let snapshots_skipped = start.snapshots_skipped;
    let (mut engine, snapshot, mut last_timestamp_ns) =
        (start.engine, start.snapshot, start.last_timestamp_ns);
    let from = engine.last_sequence() + 1;
    check_journal_starts_by(journal, from, to)?;
    let total = to.saturating_sub(from - 1);
    let mut reader = journal.reader(from);
    let mut discard = Discard;
    let mut events = Vec::new();
    let mut replayed = 0;
    while engine.last_sequence() < to {
        let Some(record) = reader.next()? else {
            return Err(RecoveryError::Gap {
                reason: format!(
                    "the journal stopped at sequence {} before {to}",
                    engine.last_sequence()
                ),
            });
        };
        let (header, command, origin) = decode_command(&record)?;
        last_timestamp_ns = record.timestamp_ns;
        match observer.as_mut() {
            Some(observer) => {
                events.clear();
                let status = engine.apply(header, &command, &mut events);
                observer(&Applied {
                    header,
                    command: &command,
                    origin,
                    status,
                    events: &events,
                });
            }
            None => {
                engine.apply(header, &command, &mut discard);
            }
        }
        replayed += 1;
        if replayed % (1 << 16) == 0 {
            progress(replayed, total);
        }
    }
    progress(replayed, total);
    Ok(Rebuilt {
        engine,
        snapshot,
        snapshots_skipped,
        replayed,
        last_timestamp_ns,
    })
}

/// Where a rebuild starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StartFrom {
    /// The newest valid snapshot (newer damaged ones passed over), or the
    /// empty engine.
    Newest,
    /// The empty engine.
    Genesis,
    /// The snapshot at exactly this sequence.
    Exactly(u64),
}

/// The snapshot at exactly `sequence`, restored and checked; `last` is the
/// journal's last sequence.
pub(crate) fn exact_start(
    snapshots: &SnapshotStore,
    config: EngineConfig,
    sequence: u64,
    last: u64,
) -> Result<Start, RecoveryError> {
    let Some((info, body)) = snapshots.load_at(sequence)? else {
        return Err(RecoveryError::Gap {
            reason: format!("there is no snapshot at sequence {sequence}"),
        });
    };
    if info.sequence > last {
        return Err(RecoveryError::Gap {
            reason: format!(
                "snapshot {} is at sequence {} but the journal ends at {last}: journal \
                 records (or a segment) were lost",
                info.path.display(),
                info.sequence
            ),
        });
    }
    Ok(Start {
        engine: restore(config, &info, &body)?,
        last_timestamp_ns: info.timestamp_ns,
        snapshot: Some(info),
        snapshots_skipped: Vec::new(),
    })
}

/// The state a rebuild starts from: the newest usable snapshot, or the
/// empty engine.
pub(crate) struct Start {
    pub(crate) engine: Engine,
    pub(crate) snapshot: Option<SnapshotInfo>,
    /// Newer snapshots that failed their checks and were passed over.
    pub(crate) snapshots_skipped: Vec<String>,
    /// The timestamp of the state's last command (0 for the empty engine).
    pub(crate) last_timestamp_ns: u64,
}

impl Start {
    pub(crate) fn genesis(config: EngineConfig) -> Result<Start, RecoveryError> {
        Ok(Start {
            engine: Engine::new(config).map_err(RecoveryError::Config)?,
            snapshot: None,
            snapshots_skipped: Vec::new(),
            last_timestamp_ns: 0,
        })
    }
}

/// The newest valid snapshot at or before `to`, restored and checked, or
/// the empty engine if there is none. `last` is the journal's last
/// sequence: a snapshot after it means journal records were lost.
pub(crate) fn start_state(
    snapshots: &SnapshotStore,
    config: EngineConfig,
    last: u64,
    to: u64,
) -> Result<Start, RecoveryError> {
    let (found, skipped) = snapshots.newest_valid(u64::MAX)?;
    let snapshots_skipped = skipped.iter().map(ToString::to_string).collect();
    if let Some((info, _)) = &found
        && info.sequence > last
    {
        return Err(RecoveryError::Gap {
            reason: format!(
                "snapshot {} is at sequence {} but the journal ends at {last}: journal \
                 records (or a segment) were lost",
                info.path.display(),
                info.sequence
            ),
        });
    }
    // The operator may replay to a point before the newest snapshot.
    let start = match found {
        Some((info, _)) if info.sequence > to => snapshots.newest_valid(to)?.0,
        found => found,
    };
    match start {
        Some((info, body)) => Ok(Start {
            engine: restore(config, &info, &body)?,
            last_timestamp_ns: info.timestamp_ns,
            snapshot: Some(info),
            snapshots_skipped,
        }),
        None => Ok(Start {
            snapshots_skipped,
            ..Start::genesis(config)?
        }),
    }
}

/// Checks that `journal` still holds the record `from` (its first segments
/// may have been removed after a snapshot), if records `from..=to` are
/// needed.
pub(crate) fn check_journal_starts_by(
    journal: &Journal,
    from: u64,
    to: u64,
) -> Result<(), RecoveryError> {
    let first_present = journal
        .segments()
        .first()
        .map_or(journal.next_sequence(), |&(_, first, _)| first);
    if first_present > from && from <= to {
        return Err(RecoveryError::Gap {
            reason: format!(
                "the state needs journal records from sequence {from}, but the journal starts \
                 at {first_present}"
            ),
        });
    }
    Ok(())
}

/// A journal record as the command it journals: its header, the command
/// and the origin journaled with it.
pub(crate) fn decode_command<'a>(
    record: &journal::Record<'a>,
) -> Result<(CommandHeader, Command, &'a [u8]), RecoveryError> {
    let (command, origin) =
        codec::decode_record(record.record_type, record.body).map_err(|error| {
            RecoveryError::Decode {
                sequence: record.sequence,
                error,
            }
        })?;
    let header = CommandHeader {
        sequence: record.sequence,
        timestamp_ns: record.timestamp_ns,
    };
    Ok((header, command, origin))
}

fn restore(
    config: EngineConfig,
    info: &SnapshotInfo,
    body: &[u8],
) -> Result<Engine, RecoveryError> {
    let failed = |reason: String| RecoveryError::Snapshot {
        path: info.path.clone(),
        reason,
    };
    let engine =
        Engine::restore(config, body).map_err(|error: SnapshotError| failed(error.to_string()))?;
    if engine.last_sequence() != info.sequence {
        return Err(failed(format!(
            "the state is at sequence {}, the file says {}",
            engine.last_sequence(),
            info.sequence
        )));
    }
    let state_hash = engine.state_hash();
    if state_hash != info.state_hash {
        return Err(failed(format!(
            "restored state hash {state_hash:032x} differs from the recorded {:032x}",
            info.state_hash
        )));
    }
    Ok(engine)
}

/// Drops the events of replayed commands: their effects were released when
/// they were first applied.
struct Discard;

impl EventSink for Discard {
    #[inline]
    fn push(&mut self, _event: Event) {}
}

/// A directory whose `ENGINE_CONFIG` says it was initialised, but whose
/// journal (segments and checkpoint) is gone, lost its exchange: it is
/// refused, never begun again from genesis.
fn refuse_lost_journal(dir: &Path) -> Result<(), RecoveryError> {
    let path = dir.join(ENGINE_CONFIG_FILE);
    if path.exists() && !Journal::is_initialised(dir)? {
        return Err(RecoveryError::ConfigFile {
            path,
            reason: "present, but the journal beside it (its segments and CHECKPOINT) is gone: \
                     this data directory held an exchange whose journal was lost. Restore the \
                     journal from a copy; a new exchange starts in an empty directory"
                .to_owned(),
        });
    }
    Ok(())
}

/// Compares `requested` with the capacities recorded beside the journal,
/// recording them if there are none yet, `record` is asked and the journal
/// is new. Returns the capacities to use.
pub(crate) fn check_engine_config(
    dir: &Path,
    requested: Option<EngineConfig>,
    record: bool,
    new_journal: bool,
) -> Result<EngineConfig, RecoveryError> {
    let path = dir.join(ENGINE_CONFIG_FILE);
    match (recorded_engine_config(dir)?, requested) {
        (Some(recorded), Some(requested)) if recorded != requested => {
            Err(RecoveryError::ConfigMismatch {
                path,
                journal: Box::new(recorded),
                requested: Box::new(requested),
            })
        }
        (Some(recorded), _) => Ok(recorded),
        // A journal that already has commands or snapshots was written with
        // capacities that only this file records: recording whatever is
        // configured now would let a mismatch through.
        (None, Some(_)) if record && !new_journal => Err(RecoveryError::ConfigFile {
            path,
            reason: "missing, but the journal already has commands or snapshots: restore \
                     it from a copy (it records the capacities the journal was written with)"
                .to_owned(),
        }),
        (None, Some(requested)) => {
            if record {
                write_engine_config(&path, &requested).map_err(|error| {
                    RecoveryError::ConfigFile {
                        path: path.clone(),
                        reason: error.to_string(),
                    }
                })?;
            }
            Ok(requested)
        }
        (None, None) => Err(RecoveryError::ConfigFile {
            path,
            reason: "missing: give the engine configuration the journal was written with"
                .to_owned(),
        }),
    }
}

fn format_engine_config(config: &EngineConfig) -> String {
    format!(
        "# The engine capacities this journal was written with. Replaying it\n\
         # with others could change its outcome, so a start with others is refused.\n\
         accounts_max = {}\nassets_max = {}\ninstruments_max = {}\norders_max = {}\n\
         price_levels_max = {}\ntransfer_records_max = {}\nfee_account = {}\n",
        config.accounts_max,
        config.assets_max,
        config.instruments_max,
        config.orders_max,
        config.price_levels_max,
        config.transfer_records_max,
        config.fee_account.0
    )
}

fn parse_engine_config(text: &str) -> Result<EngineConfig, String> {
    let mut fields = [None::<u64>; 7];
    const NAMES: [&str; 7] = [
        "accounts_max",
        "assets_max",
        "instruments_max",
        "orders_max",
        "price_levels_max",
        "transfer_records_max",
        "fee_account",
    ];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| format!("not `name = value`: {line:?}"))?;
        let position = NAMES
            .iter()
            .position(|known| *known == name.trim())
            .ok_or_else(|| format!("unknown field {:?}", name.trim()))?;
        let value = value
            .trim()
            .parse()
            .map_err(|_| format!("{} is not a number: {:?}", NAMES[position], value.trim()))?;
        fields[position] = Some(value);
    }
    let field =
        |position: usize| fields[position].ok_or_else(|| format!("{} is missing", NAMES[position]));
    let narrow = |position: usize| -> Result<u32, String> {
        u32::try_from(field(position)?).map_err(|_| format!("{} is too large", NAMES[position]))
    };
    Ok(EngineConfig {
        accounts_max: narrow(0)?,
        assets_max: u16::try_from(field(1)?).map_err(|_| "assets_max is too large".to_owned())?,
        instruments_max: narrow(2)?,
        orders_max: narrow(3)?,
        price_levels_max: narrow(4)?,
        transfer_records_max: narrow(5)?,
        fee_account: AccountId(narrow(6)?),
    })
}

fn write_engine_config(path: &Path, config: &EngineConfig) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = fs::File::create(&temporary)?;
    file.write_all(format_engine_config(config).as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_config_round_trips_through_its_file_format() {
        let config = EngineConfig {
            accounts_max: 7,
            assets_max: 3,
            instruments_max: 5,
            orders_max: 1000,
            price_levels_max: 64,
            transfer_records_max: 9,
            fee_account: AccountId(2),
        };
        assert_eq!(
            parse_engine_config(&format_engine_config(&config)),
            Ok(config)
        );
        assert!(parse_engine_config("accounts_max = 1").is_err());
        assert!(parse_engine_config("bogus = 1").is_err());
    }
}
