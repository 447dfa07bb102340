//! A shadow engine: a copy of the state machine kept up to date from the
//! journal, apart from the engine thread that writes it.
//!
//! The engine is deterministic, so applying the journaled commands in order
//! to a copy restored from a snapshot gives exactly the live state at the
//! same sequence. That copy can then be snapshotted without pausing the live
//! engine ([`crate::snapshotter::SnapshotAgent`]), and the same code is what
//! a follower replica runs on the records it receives. The policy (which
//! records may be applied, when to snapshot) is the caller's: this type only
//! starts a state and applies records to it.

use std::path::Path;

use journal::{Journal, Record, SnapshotInfo, SnapshotStore};

use crate::config::EngineConfig;
use crate::event::{Event, EventSink};
use crate::machine::Engine;
use crate::sequencer::{
    Applied, RecoveryError, Start, check_engine_config, check_journal_starts_by, decode_command,
    exact_start, start_state,
};

/// A copy of the engine fed journal records in sequence order.
#[derive(Debug)]
pub struct ShadowEngine {
    engine: Engine,
    /// The timestamp of the last command applied (a snapshot records it).
    last_timestamp_ns: u64,
}

/// Drops the events of applied commands: the live engine released them.
struct Discard;

impl EventSink for Discard {
    #[inline]
    fn push(&mut self, _event: Event) {}
}

impl ShadowEngine {
    /// Starts from the newest valid snapshot in the journal directory `dir`
    /// at or before `sequence_max` (the durable sequence, say: a shadow must
    /// not start ahead of what it may apply), else from the empty engine,
    /// exactly as [`crate::Sequencer::open`]'s recovery starts. `config`
    /// must agree with the capacities recorded beside the journal, and
    /// `journal` must still hold the records after the starting state.
    /// Returns the snapshot it started from, if any.
    pub fn open(
        dir: &Path,
        config: EngineConfig,
        journal: &Journal,
        sequence_max: u64,
    ) -> Result<(ShadowEngine, Option<SnapshotInfo>), RecoveryError> {
        config.validate().map_err(RecoveryError::Config)?;
        let config = check_engine_config(dir, Some(config), false, false)?;
        let snapshots = SnapshotStore::new(dir);
        let last = journal.last_sequence().max(sequence_max);
        let start: Start = start_state(&snapshots, config, last, sequence_max)?;
        let from = start.engine.last_sequence() + 1;
        check_journal_starts_by(journal, from, journal.last_sequence())?;
        let shadow = ShadowEngine {
            engine: start.engine,
            last_timestamp_ns: start.last_timestamp_ns,
        };
        Ok((shadow, start.snapshot))
    }

    /// As [`ShadowEngine::open`], but from the snapshot at exactly sequence
    /// `from` (`None`: the empty engine): the shadow of a state whose edges
    /// start there too.
    pub fn open_from(
        dir: &Path,
        config: EngineConfig,
        journal: &Journal,
        from: Option<u64>,
    ) -> Result<(ShadowEngine, Option<SnapshotInfo>), RecoveryError> {
        config.validate().map_err(RecoveryError::Config)?;
        let config = check_engine_config(dir, Some(config), false, false)?;
        let start = match from {
            Some(sequence) => exact_start(
                &SnapshotStore::new(dir),
                config,
                sequence,
                journal.last_sequence(),
            )?,
            None => Start::genesis(config)?,
        };
        check_journal_starts_by(
            journal,
            start.engine.last_sequence() + 1,
            journal.last_sequence(),
        )?;
        let shadow = ShadowEngine {
            engine: start.engine,
            last_timestamp_ns: start.last_timestamp_ns,
        };
        Ok((shadow, start.snapshot))
    }

    /// A shadow of a state already built (a follower's first snapshot,
    /// received rather than read from disk).
    pub fn from_engine(engine: Engine, last_timestamp_ns: u64) -> ShadowEngine {
        ShadowEngine {
            engine,
            last_timestamp_ns,
        }
    }

    /// The sequence of the next record to apply.
    pub fn next_sequence(&self) -> u64 {
        self.engine.last_sequence() + 1
    }

    /// The last sequence applied (0 for the empty engine).
    pub fn last_sequence(&self) -> u64 {
        self.engine.last_sequence()
    }

    /// The timestamp of the last command applied.
    pub fn last_timestamp_ns(&self) -> u64 {
        self.last_timestamp_ns
    }

    /// The state, to read, hash or snapshot.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Gives the state up.
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Applies one journaled command, which must be the next in sequence.
    /// Its events are dropped. Allocates nothing.
    pub fn apply_record(&mut self, record: &Record<'_>) -> Result<(), RecoveryError> {
        let (header, command, _origin) = self.decode_next(record)?;
        self.engine.apply(header, &command, &mut Discard);
        self.last_timestamp_ns = header.timestamp_ns;
        Ok(())
    }

    /// As [`ShadowEngine::apply_record`], collecting the command's events
    /// in `events` (cleared first) and showing `observer` the command as
    /// the live engine applied it: what the edges' shadows follow.
    pub fn apply_record_observed(
        &mut self,
        record: &Record<'_>,
        events: &mut Vec<Event>,
        observer: &mut dyn FnMut(&Applied<'_>),
    ) -> Result<(), RecoveryError> {
        let (header, command, origin) = self.decode_next(record)?;
        events.clear();
        let status = self.engine.apply(header, &command, events);
        self.last_timestamp_ns = header.timestamp_ns;
        observer(&Applied {
            header,
            command: &command,
            origin,
            status,
            events,
        });
        Ok(())
    }

    fn decode_next<'r>(
        &self,
        record: &Record<'r>,
    ) -> Result<(crate::CommandHeader, crate::Command, &'r [u8]), RecoveryError> {
        if record.sequence != self.next_sequence() {
            return Err(RecoveryError::Gap {
                reason: format!(
                    "the shadow engine needs record {} but was given {}",
                    self.next_sequence(),
                    record.sequence
                ),
            });
        }
        decode_command(record)
    }
}
