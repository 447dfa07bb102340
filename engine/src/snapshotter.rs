//! The snapshotter: snapshots taken while the exchange runs, without pausing
//! the engine thread.
//!
//! [`SnapshotAgent`] owns a [`ShadowEngine`] and tails the journal with a
//! reader of its own. It applies only records that are durable (at or below
//! the journal's [`DurablePosition`]), so a snapshot is never ahead of what
//! recovery will find in the journal, and every `snapshot_every_commands`
//! commands (or every `snapshot_interval`, if there were any) it snapshots
//! its own copy:
//!
//! ```text
//!  engine thread:   Sequencer ──append──▶ journal ──flusher──▶ durable
//!                                            │                   │
//!  snapshot agent:            JournalReader ─┴─▶ ShadowEngine ◀──┘ (≤ durable)
//!                                                   │ every N commands
//!                              lent to the writer ──┴──▶ writer thread: hash,
//!                              serialise, give back; file, sync, rename,
//!                              drop the oldest beyond `snapshots_kept`
//! ```
//!
//! A pass applies at most `records_per_pass_max` records, and no pass does
//! work proportional to the state, so the agent may share a thread whose
//! other work must not wait long (the engine thread's idle time, in
//! `exchange serve`'s default layout):
//!
//! - a snapshot lends the shadow (and the edges' shadow) to a short-lived
//!   writer thread, which hashes and serialises it (both proportional to
//!   the state: see `docs/journal.md` for figures), hands it back, then
//!   writes the file and its syncs, one snapshot at a time. The agent
//!   applies nothing while the shadow is lent and catches up afterwards;
//! - an agent opened from a snapshot restores it on a thread of its own.
//!
//! Those threads run on the CPUs of the thread that opened the agent, not
//! on the (possibly pinned) core of the thread that runs it. A failed write
//! is reported through [`SnapshotControl::last_error`] and the next snapshot
//! is tried when it is due: a full disk must not stop whatever shares the
//! agent's thread.
//!
//! The agent never appends, so it needs no writer lock: it reads the live
//! journal's segments through a [`JournalReader`] made from the journal the
//! engine writes (the same process).

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use journal::cpus::CpuMask;
use journal::{DurablePosition, Journal, JournalError, JournalReader, SnapshotInfo, SnapshotStore};

use crate::agent::{Agent, AgentError};
use crate::config::EngineConfig;
use crate::event::Event;
use crate::sequencer::{Applied, RecoveryError};
use crate::shadow::ShadowEngine;

/// When the snapshot agent snapshots and what it keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// A snapshot after this many commands applied since the last one.
    pub snapshot_every_commands: u64,
    /// Also a snapshot once this much time has passed since the last one,
    /// if any command was applied since (`None`: by count only).
    pub snapshot_interval: Option<Duration>,
    /// The snapshot files kept in the directory (the newest; at least 1).
    /// Older ones are removed after each snapshot the agent writes.
    pub snapshots_kept: usize,
    /// The most journal records applied in one `do_work`.
    pub records_per_pass_max: usize,
}

impl Default for SnapshotOptions {
    fn default() -> SnapshotOptions {
        SnapshotOptions {
            snapshot_every_commands: 1_000_000,
            snapshot_interval: None,
            snapshots_kept: 3,
            records_per_pass_max: 4_096,
        }
    }
}

/// The edges' side of the shadow: what the gateway and market data derive
/// from each applied command and its events (the streams' lengths, the
/// trading day, the published orders), kept by the snapshot agent beside
/// its shadow engine and written as an edges snapshot
/// ([`SnapshotStore::edges`]) just before the engine's snapshot of the same
/// sequence, so that a restart resumes the edges there too instead of
/// replaying the journal from sequence 1. The engine crate does not know
/// the edges' state: `tools` composes it.
pub trait ShadowEdges: Send {
    /// One command as the live engine applied it, with its events. An
    /// error stops the agent (the edges' state no longer follows).
    fn applied(&mut self, applied: &Applied<'_>) -> Result<(), String>;
    /// The state after the last command applied, as bytes.
    fn snapshot(&mut self) -> Vec<u8>;
}

/// Where the agent reads how far it may apply: the journal's durable
/// sequence, or (for a follower, or a test) another source of it.
pub trait DurableSequence: Send {
    /// The last sequence that may be applied.
    fn durable_sequence(&self) -> u64;
}

impl DurableSequence for DurablePosition {
    fn durable_sequence(&self) -> u64 {
        self.sequence()
    }
}

impl DurableSequence for Arc<AtomicU64> {
    fn durable_sequence(&self) -> u64 {
        self.load(Ordering::Acquire)
    }
}

/// What the agent and its control handle share.
#[derive(Debug, Default)]
struct ControlShared {
    stop: AtomicBool,
    applied: AtomicU64,
    snapshot_sequence: AtomicU64,
    snapshots_written: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ControlShared {
    fn set_error(&self, error: String) {
        // A poisoned lock only means a panic elsewhere: the text is whole.
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}

/// Controls and watches a [`SnapshotAgent`] from another thread.
#[derive(Clone, Debug)]
pub struct SnapshotControl {
    shared: Arc<ControlShared>,
}

impl SnapshotControl {
    /// Asks the agent to finish once it has applied everything durable at
    /// the time it sees the request and its snapshot in flight is written.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
    }

    /// The last sequence the shadow engine applied.
    pub fn applied_sequence(&self) -> u64 {
        self.shared.applied.load(Ordering::Acquire)
    }

    /// The sequence of the last snapshot the agent wrote (0: none yet).
    pub fn last_snapshot_sequence(&self) -> u64 {
        self.shared.snapshot_sequence.load(Ordering::Acquire)
    }

    /// How many snapshots the agent has written.
    pub fn snapshots_written(&self) -> u64 {
        self.shared.snapshots_written.load(Ordering::Acquire)
    }

    /// The last snapshot write that failed, if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The restore of an agent opened from a snapshot, on a thread of its own.
type Restoring = JoinHandle<Result<ShadowEngine, RecoveryError>>;

/// The shadows lent to a snapshot's writer thread, given back once it has
/// serialised them.
type Lent = (ShadowEngine, Option<Box<dyn ShadowEdges>>);

/// What the writer thread of one snapshot gives back.
type Writing = JoinHandle<Result<SnapshotInfo, JournalError>>;

/// Tails the journal into a shadow engine and snapshots it: see the module
/// documentation.
pub struct SnapshotAgent {
    /// `None` while it is restored ([`SnapshotAgent::restoring`]) or lent
    /// to a snapshot's writer thread ([`SnapshotAgent::lent`]).
    shadow: Option<ShadowEngine>,
    /// The snapshot the shadow is being restored from (an agent opened with
    /// edges from a snapshot): a restore takes as long as the state is
    /// large, so it runs on a thread of its own, neither on the thread that
    /// starts the exchange nor on the agent's.
    restoring: Option<Restoring>,
    /// Where the shadows come back from the writer thread.
    lent: Option<mpsc::Receiver<Lent>>,
    /// The edges followed beside the engine, if any (lent with the shadow),
    /// and their commands' events.
    edges: Option<Box<dyn ShadowEdges>>,
    events: Vec<Event>,
    edges_store: SnapshotStore,
    reader: JournalReader,
    durable: Box<dyn DurableSequence>,
    store: SnapshotStore,
    options: SnapshotOptions,
    control: Arc<ControlShared>,
    /// The CPUs of the thread that opened the agent, for its helper threads.
    cpus: Option<CpuMask>,
    /// The last sequence applied (the shadow's, also while it is away).
    applied: u64,
    /// Commands applied since the last snapshot was started.
    since_snapshot: u64,
    last_snapshot_at: Instant,
    writing: Option<Writing>,
    /// Once asked to stop: the durable sequence to reach first.
    stop_at: Option<u64>,
}

impl fmt::Debug for SnapshotAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotAgent")
            .field("applied", &self.applied)
            .field("options", &self.options)
            .field("writing", &self.writing.is_some())
            .finish()
    }
}

impl SnapshotAgent {
    /// An agent for the journal `journal` in `dir`, written by a
    /// [`crate::Sequencer`] of this process (`sequencer.journal()`): its
    /// shadow starts from the newest valid snapshot at or before the durable
    /// sequence (else from the empty engine) and tails the journal from
    /// there. Returns the agent, its control handle and the snapshot the
    /// shadow started from.
    pub fn open(
        dir: &Path,
        config: EngineConfig,
        journal: &Journal,
        options: SnapshotOptions,
    ) -> Result<(SnapshotAgent, SnapshotControl, Option<SnapshotInfo>), RecoveryError> {
        SnapshotAgent::open_with_durable(dir, config, journal, options, journal.durable())
    }

    /// As [`SnapshotAgent::open`], reading how far it may apply from
    /// `durable` instead of the journal's durable position.
    pub fn open_with_durable<D: DurableSequence + 'static>(
        dir: &Path,
        config: EngineConfig,
        journal: &Journal,
        options: SnapshotOptions,
        durable: D,
    ) -> Result<(SnapshotAgent, SnapshotControl, Option<SnapshotInfo>), RecoveryError> {
        let sequence_max = durable.durable_sequence();
        let (shadow, started_from) = ShadowEngine::open(dir, config, journal, sequence_max)?;
        let (agent, control) = SnapshotAgent::new(dir, shadow, journal, options, Box::new(durable));
        Ok((agent, control, started_from))
    }

    /// An agent that also follows the edges: its shadow engine starts from
    /// the snapshot at exactly sequence `from` (`None`: the empty engine),
    /// where `edges` must be too (restored from the edges' snapshot of that
    /// sequence, or new), and every snapshot it writes has an edges'
    /// snapshot beside it.
    pub fn open_with_edges(
        dir: &Path,
        config: EngineConfig,
        journal: &Journal,
        options: SnapshotOptions,
        from: Option<u64>,
        edges: Box<dyn ShadowEdges>,
    ) -> Result<(SnapshotAgent, SnapshotControl), RecoveryError> {
        // Checked now, restored on a thread of its own (see `restoring`).
        config.validate().map_err(RecoveryError::Config)?;
        let config = crate::sequencer::check_engine_config(dir, Some(config), false, false)?;
        let empty = crate::Engine::new(config).map_err(RecoveryError::Config)?;
        let shadow = ShadowEngine::from_engine(empty, 0);
        let from_sequence = from.unwrap_or(0);
        crate::sequencer::check_journal_starts_by(
            journal,
            from_sequence + 1,
            journal.last_sequence(),
        )?;
        let snapshots = SnapshotStore::new(dir);
        if let Some(sequence) = from
            && !snapshots.path_of(sequence).exists()
        {
            return Err(RecoveryError::Gap {
                reason: format!("there is no snapshot at sequence {sequence}"),
            });
        }
        let (mut agent, control) =
            SnapshotAgent::new(dir, shadow, journal, options, Box::new(journal.durable()));
        agent.edges = Some(edges);
        if let Some(sequence) = from {
            agent.reader = journal.reader(sequence + 1);
            agent.applied = sequence;
            agent.control.applied.store(sequence, Ordering::Release);
            let last = journal.last_sequence();
            let path = snapshots.path_of(sequence);
            agent.shadow = None;
            agent.restoring = Some(
                std::thread::Builder::new()
                    .name("snapshot-restore".to_owned())
                    .spawn(move || {
                        let start =
                            crate::sequencer::exact_start(&snapshots, config, sequence, last)?;
                        Ok(ShadowEngine::from_engine(
                            start.engine,
                            start.last_timestamp_ns,
                        ))
                    })
                    .map_err(|error| RecoveryError::Snapshot {
                        path,
                        reason: format!("cannot start a thread to restore it: {error}"),
                    })?,
            );
        }
        Ok((agent, control))
    }

    fn new(
        dir: &Path,
        shadow: ShadowEngine,
        journal: &Journal,
        options: SnapshotOptions,
        durable: Box<dyn DurableSequence>,
    ) -> (SnapshotAgent, SnapshotControl) {
        assert!(options.snapshots_kept >= 1, "keep at least one snapshot");
        assert!(options.snapshot_every_commands >= 1, "snapshot every >= 1");
        assert!(options.records_per_pass_max >= 1, "apply >= 1 per pass");
        let reader = journal.reader(shadow.next_sequence());
        let control = Arc::new(ControlShared::default());
        let applied = shadow.last_sequence();
        control.applied.store(applied, Ordering::Release);
        let agent = SnapshotAgent {
            shadow: Some(shadow),
            restoring: None,
            lent: None,
            edges: None,
            events: Vec::new(),
            edges_store: SnapshotStore::edges(dir),
            reader,
            durable,
            store: SnapshotStore::new(dir),
            options,
            control: Arc::clone(&control),
            cpus: CpuMask::of_current_thread(),
            applied,
            since_snapshot: 0,
            last_snapshot_at: Instant::now(),
            writing: None,
            stop_at: None,
        };
        (agent, SnapshotControl { shared: control })
    }

    /// The shadow engine, to read. Panics while it is away: being restored
    /// (an agent opened with edges from a snapshot, until a pass sees the
    /// restore finished) or lent to a snapshot's writer thread (until a
    /// pass takes it back). After [`Agent::on_close`] it is always here.
    pub fn shadow(&self) -> &ShadowEngine {
        self.shadow
            .as_ref()
            .expect("the shadow is being restored or serialised")
    }

    /// Takes the shadow back from its restore or its writer thread when it
    /// is done (with `wait`, waits for it); whether it came back.
    fn take_back(&mut self, wait: bool) -> Result<bool, AgentError> {
        if let Some(restoring) = self
            .restoring
            .take_if(|handle| wait || handle.is_finished())
        {
            let shadow = restoring
                .join()
                .map_err(|_| failed("the snapshot restore panicked"))?
                .map_err(failed)?;
            self.shadow = Some(shadow);
            return Ok(true);
        }
        let Some(lent) = &self.lent else {
            return Ok(false);
        };
        let back = if wait {
            lent.recv().ok()
        } else {
            match lent.try_recv() {
                Ok(back) => Some(back),
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => None,
            }
        };
        self.lent = None;
        let (shadow, edges) = back.ok_or_else(|| failed("the snapshot writer panicked"))?;
        self.shadow = Some(shadow);
        self.edges = edges;
        Ok(true)
    }

    /// Applies up to `records_per_pass_max` durable records; how many.
    fn apply_durable(&mut self, durable: u64) -> Result<usize, AgentError> {
        let Some(shadow) = self.shadow.as_mut() else {
            return Ok(0);
        };
        let mut applied = 0;
        while applied < self.options.records_per_pass_max && shadow.next_sequence() <= durable {
            let Some(record) = self.reader.next().map_err(failed)? else {
                break;
            };
            match self.edges.as_mut() {
                Some(edges) => {
                    let mut followed = Ok(());
                    shadow
                        .apply_record_observed(&record, &mut self.events, &mut |command| {
                            followed = edges.applied(command);
                        })
                        .map_err(failed)?;
                    followed.map_err(failed)?;
                }
                None => shadow.apply_record(&record).map_err(failed)?,
            }
            applied += 1;
        }
        if applied > 0 {
            self.since_snapshot += applied as u64;
            self.applied = shadow.last_sequence();
            self.control.applied.store(self.applied, Ordering::Release);
        }
        Ok(applied)
    }

    fn snapshot_due(&self) -> bool {
        if self.writing.is_some() || self.shadow.is_none() || self.since_snapshot == 0 {
            return false;
        }
        self.since_snapshot >= self.options.snapshot_every_commands
            || self
                .options
                .snapshot_interval
                .is_some_and(|interval| self.last_snapshot_at.elapsed() >= interval)
    }

    /// Lends the shadows to a writer thread, which hashes and serialises
    /// them, gives them back, writes the files and then applies the
    /// retention.
    fn start_snapshot(&mut self) -> Result<(), AgentError> {
        let shadow = self.shadow.take().expect("checked by snapshot_due");
        let edges = self.edges.take();
        let (give_back, lent) = mpsc::sync_channel::<Lent>(1);
        let store = self.store.clone();
        let edges_store = self.edges_store.clone();
        let kept = self.options.snapshots_kept;
        let cpus = self.cpus;
        let spawned = std::thread::Builder::new()
            .name("snapshot-write".to_owned())
            .spawn(move || {
                if let Some(cpus) = cpus {
                    // Refused: it runs where its spawner may, slower for
                    // whatever shares that core, not wrong.
                    cpus.apply_to_current_thread();
                }
                let mut edges = edges;
                let engine = shadow.engine();
                let sequence = engine.last_sequence();
                let timestamp_ns = shadow.last_timestamp_ns();
                let state_hash = engine.state_hash();
                let body = engine.snapshot();
                let edges_body = edges.as_mut().map(|edges| edges.snapshot());
                // The agent gone (dropped without closing): nothing waits.
                let _ = give_back.send((shadow, edges));
                // The edges first: an engine snapshot with edges beside it
                // is complete; a crash between the two leaves an edges'
                // snapshot that nothing uses.
                if let Some(edges_body) = edges_body {
                    edges_store.write(sequence, timestamp_ns, state_hash, &edges_body)?;
                }
                let info = store.write(sequence, timestamp_ns, state_hash, &body)?;
                drop(body);
                remove_oldest(&store, kept)?;
                remove_oldest(&edges_store, kept)?;
                Ok(info)
            });
        // A thread the system refused leaves nothing lent: the shadows are
        // dropped with the closure, and the agent fails.
        self.writing = Some(spawned?);
        self.lent = Some(lent);
        self.since_snapshot = 0;
        self.last_snapshot_at = Instant::now();
        Ok(())
    }

    /// Collects a finished write (or, with `wait`, waits for it); whether
    /// one was collected.
    fn collect_write(&mut self, wait: bool) -> bool {
        let Some(handle) = self.writing.take_if(|handle| wait || handle.is_finished()) else {
            return false;
        };
        match handle.join() {
            Ok(Ok(info)) => {
                self.control
                    .snapshot_sequence
                    .store(info.sequence, Ordering::Release);
                self.control
                    .snapshots_written
                    .fetch_add(1, Ordering::AcqRel);
            }
            Ok(Err(error)) => self.control.set_error(error.to_string()),
            Err(_) => self
                .control
                .set_error("the snapshot writer panicked".to_owned()),
        }
        true
    }
}

impl Agent for SnapshotAgent {
    fn role(&self) -> &str {
        "snapshot"
    }

    fn do_work(&mut self) -> Result<usize, AgentError> {
        let mut work = usize::from(self.take_back(false)?);
        work += usize::from(self.collect_write(false));
        let durable = self.durable.durable_sequence();
        work += self.apply_durable(durable)?;
        if self.snapshot_due() {
            self.start_snapshot()?;
            work += 1;
        }
        if self.control.stop.load(Ordering::Acquire) {
            let stop_at = *self.stop_at.get_or_insert(durable);
            if self.shadow.is_some() && self.applied >= stop_at && self.writing.is_none() {
                return Err(AgentError::Finished);
            }
            // Waiting for a helper thread cannot wake the runner.
            work = work.max(1);
        }
        Ok(work)
    }

    fn on_close(&mut self) {
        // A failed restore or writer leaves the shadow away: `shadow` says so.
        let _ = self.take_back(true);
        self.collect_write(true);
    }
}

fn failed(error: impl fmt::Display) -> AgentError {
    AgentError::Failed(io::Error::other(format!("snapshot agent: {error}")))
}

/// Removes the oldest snapshot files of `store` beyond the newest `kept`
/// (those whose header checks out; others are left for the operator).
fn remove_oldest(store: &SnapshotStore, kept: usize) -> Result<(), JournalError> {
    let valid: Vec<SnapshotInfo> = store.list()?.into_iter().flatten().collect();
    let excess = valid.len().saturating_sub(kept);
    for info in &valid[..excess] {
        fs::remove_file(&info.path).map_err(|source| JournalError::Io {
            path: info.path.clone(),
            source,
        })?;
    }
    if excess > 0
        && let Some(dir) = valid[0].path.parent()
    {
        fs::File::open(dir)
            .and_then(|file| file.sync_all())
            .map_err(|source| JournalError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}
