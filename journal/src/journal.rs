//! The journal: one appender, a flusher thread under the `fsync` policy,
//! and tailing readers, sharing segments through [`Shared`].

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::checkpoint::{self, Checkpoint, CheckpointWriter, DurableRecord, Found};
use crate::cpus::CpuMask;
use crate::error::{IoContext, JournalError};
use crate::flusher;
use crate::layout::{
    RECORD_ALIGNMENT, RECORD_HEADER_BYTES, RecordHeader, SEGMENT_HEADER_BYTES, SegmentHeader,
    record_checksum, record_field, record_footprint,
};
use crate::reader::JournalReader;
use crate::recovery::{self, RecoveryReport, SegmentEnd};
use crate::segment::{PreparedSegment, Segment, SegmentBuilder, pending_file_name, sync_directory};

/// When an appended record counts as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// In the mapped pages: survives a crash of the process (the kernel
    /// owns the pages), not of the machine.
    Memory,
    /// Synced to the device by the flusher thread, in groups: it syncs
    /// whatever was appended since its last sync, and when idle looks again
    /// after at most `flush_delay_us_max` microseconds.
    Fsync { flush_delay_us_max: u64 },
}

/// Where a journal makes its next segment: zeros written and pages
/// touched, a page at a time, about 80 ms of work for 64 MiB here (3 µs a
/// page written, 1.7 µs a page touched at the median; a few dozen steps in
/// each segment take over 20 µs, the longest up to 0.3 ms, when the kernel
/// makes the writer wait for its dirty pages or for memory). Measured by
/// the ignored test `step_timings_of_a_64_mib_segment`
/// (`journal/tests/preparation.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Preparation {
    /// On a helper thread started at each roll-over, on the CPUs of the
    /// thread that opened the journal.
    #[default]
    Thread,
    /// A page at a time in the appender's own idle time: its owner calls
    /// [`Journal::prepare_step`] when it has nothing else to do. A roll-over
    /// that finds the segment unfinished finishes it there and then (see
    /// [`Journal::unfinished_roll_overs`]). For an appender pinned to a core
    /// it does not fill, on a machine whose other cores are busy: the
    /// helper thread would compete with them.
    Steps,
}

/// How a journal is laid out and made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// The size of each segment file, a multiple of 8 (default 64 MiB).
    pub segment_bytes: usize,
    /// The largest record body accepted (default 64 KiB); must fit an empty
    /// segment.
    pub record_bytes_max: usize,
    pub durability: Durability,
    /// Touch every page of a prepared segment before it is used, so appends
    /// take no page faults (default on).
    pub prefault: bool,
    /// Where the next segment is made (default: a helper thread).
    pub preparation: Preparation,
}

impl Default for JournalOptions {
    fn default() -> JournalOptions {
        JournalOptions {
            segment_bytes: 64 << 20,
            record_bytes_max: 64 << 10,
            durability: Durability::Memory,
            prefault: true,
            preparation: Preparation::Thread,
        }
    }
}

impl JournalOptions {
    fn validate(&self) -> Result<(), JournalError> {
        let fits =
            SEGMENT_HEADER_BYTES + record_footprint(self.record_bytes_max) + RECORD_ALIGNMENT;
        if !self.segment_bytes.is_multiple_of(RECORD_ALIGNMENT) || self.segment_bytes < fits {
            return Err(JournalError::Options(format!(
                "segment_bytes {} must be a multiple of 8 and at least {fits} to hold a record of \
                 record_bytes_max {} bytes",
                self.segment_bytes, self.record_bytes_max
            )));
        }
        if self.record_bytes_max > (u32::MAX as usize - RECORD_HEADER_BYTES - 8) {
            return Err(JournalError::Options(
                "record_bytes_max is over 4 GiB".to_owned(),
            ));
        }
        if let Durability::Fsync { flush_delay_us_max } = self.durability
            && !(1..=1_000_000).contains(&flush_delay_us_max)
        {
            return Err(JournalError::Options(
                "flush_delay_us_max must be 1 to 1,000,000 microseconds".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A sequence number padded to its own cache lines, so the appender's
/// stores do not slow readers of neighbouring data.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct PaddedSequence(pub(crate) AtomicU64);

/// What the appender, the flusher and readers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    /// Every open segment, in order. Written on roll-over only.
    pub(crate) segments: RwLock<Vec<Arc<Segment>>>,
    /// `segments.len()`, stored after each push: readers poll it.
    pub(crate) segment_count: AtomicUsize,
    /// The last appended (published) sequence.
    pub(crate) appended: PaddedSequence,
    /// The last durable sequence (`fsync` policy; under `memory` durable
    /// means appended).
    pub(crate) durable: PaddedSequence,
    pub(crate) memory_policy: bool,
    pub(crate) stop: AtomicBool,
    pub(crate) failure: Mutex<Option<String>>,
    pub(crate) failed: AtomicBool,
    /// The durable checkpoint, advanced by the flusher after each group
    /// and by [`Journal::sync`]; `None` read-only.
    pub(crate) checkpoint: Mutex<Option<CheckpointWriter>>,
    /// The last record the flusher synced and the checkpointer has not
    /// written yet, and the checkpointer's wake-up.
    pub(crate) checkpoint_due: Mutex<Option<DurableRecord>>,
    pub(crate) checkpoint_wake: Condvar,
}

impl Shared {
    fn new(dir: &Path, last_sequence: u64, memory_policy: bool, stopped: bool) -> Shared {
        Shared {
            dir: dir.to_path_buf(),
            segments: RwLock::new(Vec::new()),
            segment_count: AtomicUsize::new(0),
            appended: PaddedSequence(AtomicU64::new(last_sequence)),
            durable: PaddedSequence(AtomicU64::new(last_sequence)),
            memory_policy,
            stop: AtomicBool::new(stopped),
            failure: Mutex::new(None),
            failed: AtomicBool::new(false),
            checkpoint: Mutex::new(None),
            checkpoint_due: Mutex::new(None),
            checkpoint_wake: Condvar::new(),
        }
    }

    pub(crate) fn durable_sequence(&self) -> u64 {
        if self.memory_policy {
            self.appended.0.load(Ordering::Acquire)
        } else {
            self.durable.0.load(Ordering::Acquire)
        }
    }
}

/// The durable position of a journal, for the edges that must not release
/// anything caused by a command before it is durable. Cheap to clone and
/// read from any thread.
#[derive(Clone, Debug)]
pub struct DurablePosition {
    shared: Arc<Shared>,
}

impl DurablePosition {
    /// The last durable sequence number (0 before any record).
    pub fn sequence(&self) -> u64 {
        self.shared.durable_sequence()
    }

    /// Waits (spinning, then yielding) until `sequence` is durable or the
    /// timeout passes; returns whether it is durable.
    pub fn wait_for(&self, sequence: u64, timeout: Duration) -> bool {
        let start = Instant::now();
        let mut spins = 0u32;
        while self.sequence() < sequence {
            if self.shared.failed.load(Ordering::Acquire) || start.elapsed() > timeout {
                return false;
            }
            spins += 1;
            if spins < 1_000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        true
    }
}

/// The write-ahead journal: one appender (`&mut self`), any number of
/// readers ([`Journal::reader`]) and, under [`Durability::Fsync`], a flusher
/// thread.
///
/// ```
/// use journal::{Journal, JournalOptions};
///
/// let dir = std::env::temp_dir().join(format!("journal-doc-{}", std::process::id()));
/// let options = JournalOptions { segment_bytes: 1 << 20, prefault: false, ..Default::default() };
/// let (mut journal, report) = Journal::open(&dir, options).unwrap();
/// assert_eq!(report.last_sequence, 0);
/// assert_eq!(journal.append(7, 1_000, b"hello").unwrap(), 1);
/// let mut reader = journal.reader(1);
/// let record = reader.next().unwrap().expect("one record");
/// assert_eq!((record.sequence, record.record_type, record.body), (1, 7, &b"hello"[..]));
/// journal.close().unwrap();
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    options: JournalOptions,
    read_only: bool,
    /// The segment appends go to.
    current: Arc<Segment>,
    /// Where the next record goes in `current`.
    offset: usize,
    next_sequence: u64,
    last_checksum: u32,
    /// The term of the last record, and of the next [`Journal::append`].
    term: u64,
    /// The next segment, being made ahead of need.
    preparing: Option<Preparing>,
    /// Roll-overs that found the stepped preparation unfinished.
    unfinished_roll_overs: u64,
    /// Where the preparer runs: the CPUs of the thread that opened the
    /// journal (the appender may be pinned to a core of its own).
    helper_cpus: Option<CpuMask>,
    flusher: Option<JoinHandle<()>>,
    checkpointer: Option<JoinHandle<()>>,
    /// Held (locked) while the journal is open for writing.
    _lock: Option<DirectoryLock>,
}

/// The next segment, being made.
#[derive(Debug)]
enum Preparing {
    Thread(JoinHandle<std::io::Result<PreparedSegment>>),
    /// `Err` once a step failed: the roll-over reports it.
    Steps(std::io::Result<SegmentBuilder>),
}

const LOCK_FILE: &str = "LOCK";

/// A writer's locks: `flock` on the `LOCK` file and on the directory
/// itself. Deleting `LOCK` cannot defeat the second: a directory cannot be
/// removed while it holds a journal, and a new `LOCK` file is a new lock.
#[derive(Debug)]
struct DirectoryLock {
    _file: File,
    _dir: File,
}

impl Journal {
    /// Opens (creating if need be) the journal in `dir` for appending, after
    /// recovery: every record is verified, a torn tail is truncated and
    /// reported, corruption elsewhere is an error (see the `recovery`
    /// module's rules).
    pub fn open(
        dir: &Path,
        options: JournalOptions,
    ) -> Result<(Journal, RecoveryReport), JournalError> {
        options.validate()?;
        fs::create_dir_all(dir).at(dir)?;
        let lock = lock_directory(dir)?;
        let restored = restore_cut_file(dir)?;
        let found = checkpoint::read(dir)?;
        let mut scan = recovery::scan_directory(dir, true, None, false, found.valid())?;
        require_checkpoint(dir, &found, &scan.report)?;
        for path in &scan.report.removed {
            fs::remove_file(path).at(path)?;
        }
        report_restored_file(&mut scan, restored);
        let offset = match scan.end {
            SegmentEnd::Open(offset) => Some(offset),
            SegmentEnd::Torn {
                offset,
                nonzero_end,
                ..
            } => {
                let segment = scan.segments.last().expect("torn in a segment");
                // SAFETY: the segment is not shared yet.
                unsafe { segment.zero(offset, nonzero_end) };
                segment.sync_range(offset, nonzero_end).at(&segment.path)?;
                Some(offset)
            }
            _ => None,
        };
        sync_directory(dir).at(dir)?;
        let last_sequence = scan.chain.next_sequence - 1;
        let shared = Arc::new(Shared::new(
            dir,
            last_sequence,
            options.durability == Durability::Memory,
            false,
        ));
        let mut journal = match (offset, scan.segments.last()) {
            (Some(offset), Some(_)) => {
                let current = Arc::new(scan.segments.pop().expect("a last segment"));
                current.set_published_end(offset);
                Journal::assemble(shared, options, current, offset, &scan.chain, Some(lock))
            }
            _ => {
                // No segments yet: the first one starts the journal. (Every
                // other way a scan can end with segments is an error above.)
                assert!(
                    scan.segments.is_empty(),
                    "a journal with segments has an end"
                );
                let current = Arc::new(first_segment(dir, &options, &scan.chain)?);
                Journal::assemble(
                    shared,
                    options,
                    current,
                    SEGMENT_HEADER_BYTES,
                    &scan.chain,
                    Some(lock),
                )
            }
        };
        {
            let mut segments = journal.shared.segments.write();
            for segment in scan.segments {
                segment.set_published_end(segment.capacity());
                segments.push(Arc::new(segment));
            }
            segments.push(Arc::clone(&journal.current));
            journal
                .shared
                .segment_count
                .store(segments.len(), Ordering::Release);
        }
        // A new checkpoint only once the first segment exists: a checkpoint
        // without segments means they were lost.
        let writer = match found {
            Found::Valid(current) => CheckpointWriter::open(dir, current, None)?,
            Found::Missing | Found::Invalid(_) => {
                CheckpointWriter::open(dir, Checkpoint::default(), Some(journal.last_record()))?
            }
        };
        *journal.shared.checkpoint.lock() = Some(writer);
        // What recovery found may be only in the page cache (the process that
        // wrote it crashed): make it durable (and the checkpoint follow)
        // before it counts as such. Under `memory` nothing waits for that:
        // the flusher's first round syncs it (it starts from the first
        // segment) before the checkpoint claims anything after it.
        if !journal.shared.memory_policy {
            journal.sync()?;
        }
        journal.start_flusher();
        journal.prepare_next();
        Ok((journal, scan.report))
    }

    /// Opens the journal in `dir` for reading only: verifies it as
    /// [`Journal::open`] does but changes nothing (a torn tail is reported,
    /// not truncated). Appending to it returns [`JournalError::ReadOnly`].
    pub fn open_read_only(dir: &Path) -> Result<(Journal, RecoveryReport), JournalError> {
        // Read before the segments: beside a live writer it only grows, so
        // the journal scanned after it reaches it.
        let found = checkpoint::read(dir)?;
        let scan = scan_beside_writer(dir, found.valid())?;
        require_checkpoint(dir, &found, &scan.report)?;
        let last_sequence = scan.chain.next_sequence - 1;
        let shared = Arc::new(Shared::new(dir, last_sequence, true, true));
        let segments: Vec<Arc<Segment>> = scan.segments.into_iter().map(Arc::new).collect();
        for segment in &segments {
            segment.set_published_end(segment.capacity());
        }
        let current = match segments.last() {
            Some(last) => Arc::clone(last),
            None => {
                return Err(JournalError::Io {
                    path: dir.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no journal segments in this directory",
                    ),
                });
            }
        };
        shared
            .segment_count
            .store(segments.len(), Ordering::Release);
        *shared.segments.write() = segments;
        let mut journal = Journal::assemble(
            shared,
            JournalOptions::default(),
            current,
            0,
            &scan.chain,
            None,
        );
        journal.read_only = true;
        Ok((journal, scan.report))
    }

    fn assemble(
        shared: Arc<Shared>,
        options: JournalOptions,
        current: Arc<Segment>,
        offset: usize,
        chain: &recovery::Chain,
        lock: Option<DirectoryLock>,
    ) -> Journal {
        Journal {
            shared,
            options,
            read_only: false,
            current,
            offset,
            next_sequence: chain.next_sequence,
            last_checksum: chain.last_checksum,
            term: chain.last_term,
            preparing: None,
            unfinished_roll_overs: 0,
            helper_cpus: CpuMask::of_current_thread(),
            flusher: None,
            checkpointer: None,
            _lock: lock,
        }
    }

    /// Starts the flusher: group commit under `fsync`; under `memory`, a
    /// paced sync that keeps the checkpoint following what is on the
    /// device (see the `flusher` module).
    fn start_flusher(&mut self) {
        let (delay, paced) = match self.options.durability {
            Durability::Fsync { flush_delay_us_max } => {
                (Duration::from_micros(flush_delay_us_max), false)
            }
            Durability::Memory => (flusher::MEMORY_CHECKPOINT_INTERVAL, true),
        };
        // Under `fsync`, everything before the current write position was
        // synced by `open`; the flusher takes over from exactly there. Under
        // `memory`, from the start.
        let start = if paced {
            flusher::Cursor {
                position: 0,
                flushed: 0,
            }
        } else {
            flusher::Cursor {
                position: self.shared.segment_count.load(Ordering::Acquire) - 1,
                flushed: self.offset,
            }
        };
        let shared = Arc::clone(&self.shared);
        self.flusher = Some(
            std::thread::Builder::new()
                .name("journal-flusher".to_owned())
                .spawn(move || flusher::run(&shared, delay, start, paced))
                .expect("spawn the journal flusher"),
        );
        let shared = Arc::clone(&self.shared);
        self.checkpointer = Some(
            std::thread::Builder::new()
                .name("journal-checkpoint".to_owned())
                .spawn(move || flusher::run_checkpointer(&shared))
                .expect("spawn the journal checkpointer"),
        );
    }

    fn prepare_next(&mut self) {
        if self.preparing.is_some() {
            return;
        }
        let dir = self.shared.dir.clone();
        let index = self.current.index + 1;
        let (bytes, prefault) = (self.options.segment_bytes, self.options.prefault);
        if self.options.preparation == Preparation::Steps {
            // A failure to start is reported at the roll-over, as a failed
            // step or a failed thread is.
            self.preparing = Some(Preparing::Steps(SegmentBuilder::start(
                &dir, index, bytes, prefault,
            )));
            return;
        }
        let cpus = self.helper_cpus;
        self.preparing = Some(Preparing::Thread(
            std::thread::Builder::new()
                .name("journal-prepare".to_owned())
                .spawn(move || {
                    // Refused: it runs where its spawner may.
                    if let Some(cpus) = cpus {
                        cpus.apply_to_current_thread();
                    }
                    PreparedSegment::create(&dir, index, bytes, prefault)
                })
                .expect("spawn the segment preparer"),
        ));
    }

    /// One step of the next segment's stepped preparation
    /// ([`Preparation::Steps`]): a page of zeros written or a page touched,
    /// a few microseconds. Returns whether there was work (`false` when the
    /// segment is ready, when the journal prepares on a thread, and after a
    /// failed step, which the roll-over reports).
    pub fn prepare_step(&mut self) -> bool {
        let Some(Preparing::Steps(Ok(builder))) = self.preparing.as_mut() else {
            return false;
        };
        if builder.is_done() {
            return false;
        }
        if let Err(error) = builder.step() {
            self.preparing = Some(Preparing::Steps(Err(error)));
        }
        true
    }

    /// How many roll-overs found the stepped preparation unfinished and
    /// finished it on the appending thread (its owner had too little idle
    /// time for it).
    pub fn unfinished_roll_overs(&self) -> u64 {
        self.unfinished_roll_overs
    }

    /// Appends a record and publishes it to readers; returns its sequence
    /// number. `record_type` is the caller's and must not be 0.
    pub fn append(
        &mut self,
        record_type: u16,
        timestamp_ns: u64,
        body: &[u8],
    ) -> Result<u64, JournalError> {
        assert!(record_type != 0, "record type 0 is reserved");
        self.check_writable()?;
        if body.len() > self.options.record_bytes_max {
            return Err(JournalError::RecordTooLarge {
                bytes: body.len(),
                bytes_max: self.options.record_bytes_max,
            });
        }
        let mut header = RecordHeader {
            length: (RECORD_HEADER_BYTES + body.len()) as u32,
            record_type,
            flags: 0,
            sequence: self.next_sequence,
            timestamp_ns,
            term: self.term,
            previous_checksum: self.last_checksum,
            checksum: 0,
        }
        .encode();
        let checksum = record_checksum(&header, body);
        header[record_field::CHECKSUM..].copy_from_slice(&checksum.to_le_bytes());
        self.write_record(&header, body, checksum)
    }

    /// Appends a record that already carries its sequence, term, link and
    /// checksum (a follower writing the leader's records): `record` is the
    /// record's header and body as stored, [`crate::Record::bytes`] of the
    /// leader's reader. It is refused unless its checksum holds, its
    /// sequence is [`Journal::next_sequence`], it links to this journal's
    /// last record, its term is not below [`Journal::term`] and its type and
    /// flags are valid. The journal then holds exactly the leader's bytes;
    /// its term becomes the record's.
    pub fn append_replicated(&mut self, record: &[u8]) -> Result<u64, JournalError> {
        self.check_writable()?;
        let refuse = |reason: String| JournalError::ReplicatedRecord {
            expected: self.next_sequence,
            reason,
        };
        let Some((header_bytes, body)) = record.split_first_chunk::<RECORD_HEADER_BYTES>() else {
            return Err(refuse(format!(
                "{} bytes are shorter than a record header",
                record.len()
            )));
        };
        let header = RecordHeader::decode(header_bytes);
        if header.length as usize != record.len() {
            return Err(refuse(format!(
                "its length field says {} bytes, {} were given",
                header.length,
                record.len()
            )));
        }
        if body.len() > self.options.record_bytes_max {
            return Err(JournalError::RecordTooLarge {
                bytes: body.len(),
                bytes_max: self.options.record_bytes_max,
            });
        }
        if record_checksum(header_bytes, body) != header.checksum {
            return Err(refuse("checksum mismatch".to_owned()));
        }
        if header.record_type == 0 || header.flags != 0 {
            return Err(refuse(format!(
                "record type {} with flags {:#06x}",
                header.record_type, header.flags
            )));
        }
        if header.sequence != self.next_sequence {
            return Err(refuse(format!("it has sequence {}", header.sequence)));
        }
        if header.previous_checksum != self.last_checksum {
            return Err(refuse(format!(
                "it links to {:#010x}, this journal's last record has crc {:#010x}",
                header.previous_checksum, self.last_checksum
            )));
        }
        if header.term < self.term {
            return Err(refuse(format!(
                "its term {} is below this journal's {}",
                header.term, self.term
            )));
        }
        self.term = header.term;
        self.write_record(header_bytes, body, header.checksum)
    }

    /// Sets the term of the records appended from now on (a new leader's
    /// term). Terms never decrease along a journal.
    pub fn set_term(&mut self, term: u64) -> Result<(), JournalError> {
        if term < self.term {
            return Err(JournalError::Options(format!(
                "term {term} is below the journal's current term {}",
                self.term
            )));
        }
        self.term = term;
        Ok(())
    }

    /// The term of the last record (and of the next [`Journal::append`]).
    pub fn term(&self) -> u64 {
        self.term
    }

    fn check_writable(&self) -> Result<(), JournalError> {
        if self.read_only {
            return Err(JournalError::ReadOnly);
        }
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(JournalError::Flusher(self.failure()));
        }
        Ok(())
    }

    /// Copies a complete record (header with its checksum, and body) to
    /// the write position and publishes it.
    fn write_record(
        &mut self,
        header: &[u8; RECORD_HEADER_BYTES],
        body: &[u8],
        checksum: u32,
    ) -> Result<u64, JournalError> {
        let footprint = record_footprint(body.len());
        // A record always leaves room for the seal, so every finished
        // segment is sealed and a lost successor is always detected.
        if self.offset + footprint + RECORD_ALIGNMENT > self.current.capacity() {
            self.roll()?;
        }
        let sequence = self.next_sequence;
        let length = (RECORD_HEADER_BYTES + body.len()) as u32;
        let offset = self.offset;
        // SAFETY: `&mut self` makes this the only writer; readers read only
        // published records and this record is published by the length
        // store below, after these writes. Padding bytes are already zero:
        // segments start zero-filled and recovery zeroes a torn tail.
        unsafe {
            self.current.write(offset + 4, &header[4..]);
            self.current.write(offset + RECORD_HEADER_BYTES, body);
        }
        self.current.store_length(offset, length);
        self.offset = offset + footprint;
        self.current.set_published_end(self.offset);
        self.shared.appended.0.store(sequence, Ordering::Release);
        self.next_sequence = sequence + 1;
        self.last_checksum = checksum;
        Ok(sequence)
    }

    /// Moves appends to the next segment: the prepared one gets its header
    /// and name, then the current one is sealed (so a sealed segment always
    /// has a successor on disk), then readers and the flusher see it.
    fn roll(&mut self) -> Result<(), JournalError> {
        let dir = self.shared.dir.clone();
        let prepared = match self.preparing.take() {
            Some(Preparing::Thread(handle)) => {
                handle.join().expect("the segment preparer panicked")
            }
            Some(Preparing::Steps(builder)) => builder.and_then(|builder| {
                if !builder.is_done() {
                    self.unfinished_roll_overs += 1;
                }
                builder.finish()
            }),
            None => PreparedSegment::create(
                &dir,
                self.current.index + 1,
                self.options.segment_bytes,
                self.options.prefault,
            ),
        }
        .at(&dir)?;
        assert_eq!(prepared.index(), self.current.index + 1);
        let header = SegmentHeader {
            index: prepared.index(),
            first_sequence: self.next_sequence,
            previous_checksum: self.last_checksum,
            capacity: self.options.segment_bytes as u64,
        };
        let next = prepared
            .activate(&dir, &header.encode(), self.next_sequence)
            .at(&dir)?;
        next.set_published_end(SEGMENT_HEADER_BYTES);
        // The seal says "a successor exists". Under `fsync` it must not
        // reach the disk before the successor's directory entry does, so the
        // flusher writes it after syncing the directory; until then readers
        // move on when they see the successor in the list.
        if self.shared.memory_policy {
            self.current.seal(self.offset);
        } else {
            self.current.defer_seal(self.offset);
        }
        let next = Arc::new(next);
        {
            let mut segments = self.shared.segments.write();
            segments.push(Arc::clone(&next));
            self.shared
                .segment_count
                .store(segments.len(), Ordering::Release);
        }
        self.current = next;
        self.offset = SEGMENT_HEADER_BYTES;
        self.prepare_next();
        Ok(())
    }

    /// Makes every appended record durable now, whatever the policy: msync
    /// of every segment's published bytes. For the rare moments that need
    /// it (before a snapshot is written, at shutdown), not per record.
    pub fn sync(&self) -> Result<(), JournalError> {
        if self.read_only {
            return Ok(());
        }
        let segments: Vec<Arc<Segment>> = self.shared.segments.read().clone();
        for segment in &segments {
            segment
                .sync_range(0, segment.published_end())
                .at(&segment.path)?;
        }
        // The names of segments created since the last directory sync.
        sync_directory(&self.shared.dir).at(&self.shared.dir)?;
        match self.shared.checkpoint.lock().as_mut() {
            Some(writer) => writer.advance(self.last_record()),
            None => Ok(()),
        }
    }

    /// The last record appended, as a checkpoint records it.
    fn last_record(&self) -> DurableRecord {
        DurableRecord {
            sequence: self.last_sequence(),
            term: self.term,
            checksum: self.last_checksum,
        }
    }

    /// The journal's durable checkpoint: the last record known to be on
    /// the device (`None` read-only).
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.shared
            .checkpoint
            .lock()
            .as_ref()
            .map(CheckpointWriter::current)
    }

    /// The checkpoint recorded in `dir`, without opening the journal:
    /// `Ok(None)` when there is none or no copy of it is valid.
    pub fn read_checkpoint(dir: &Path) -> Result<Option<Checkpoint>, JournalError> {
        Ok(checkpoint::read(dir)?.valid())
    }

    /// Whether `dir` holds a journal that was ever opened for writing (a
    /// checkpoint or a segment file): one that is gone is not a new one.
    pub fn is_initialised(dir: &Path) -> Result<bool, JournalError> {
        if dir.join(checkpoint::CHECKPOINT_FILE).exists() {
            return Ok(true);
        }
        if !dir.exists() {
            return Ok(false);
        }
        Ok(!recovery::list_segments(dir)?.segments.is_empty())
    }

    /// The sequence the next record will get.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The last appended sequence (0 when empty).
    pub fn last_sequence(&self) -> u64 {
        self.next_sequence - 1
    }

    /// The handle the edges read the durable position from.
    pub fn durable(&self) -> DurablePosition {
        DurablePosition {
            shared: Arc::clone(&self.shared),
        }
    }

    /// A reader positioned at `from_sequence` (clamped to the first record
    /// present), which tails the journal as it grows.
    pub fn reader(&self, from_sequence: u64) -> JournalReader {
        JournalReader::new(Arc::clone(&self.shared), from_sequence)
    }

    /// The directory of the journal.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The segment files in use, in order: (index, first sequence, path).
    pub fn segments(&self) -> Vec<(u64, u64, PathBuf)> {
        self.shared
            .segments
            .read()
            .iter()
            .map(|segment| (segment.index, segment.first_sequence, segment.path.clone()))
            .collect()
    }

    fn failure(&self) -> String {
        self.shared
            .failure
            .lock()
            .clone()
            .unwrap_or_else(|| "unknown failure".to_owned())
    }

    /// Makes everything appended durable, stops the flusher and releases the
    /// directory. Dropping a journal does the same, ignoring errors.
    pub fn close(mut self) -> Result<(), JournalError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), JournalError> {
        if self.read_only {
            return Ok(());
        }
        match self.preparing.take() {
            Some(Preparing::Thread(handle)) => {
                if let Ok(Ok(prepared)) = handle.join() {
                    let _ = prepared.discard();
                }
            }
            Some(Preparing::Steps(Ok(builder))) => {
                let _ = builder.discard();
            }
            Some(Preparing::Steps(Err(_))) => {
                // A failed step may have left the file half made.
                let next = self.current.index + 1;
                let _ = fs::remove_file(self.shared.dir.join(pending_file_name(next)));
            }
            None => {}
        }
        self.shared.stop.store(true, Ordering::Release);
        if let Some(handle) = self.flusher.take() {
            handle.thread().unpark();
            handle.join().expect("the journal flusher panicked");
        }
        if let Some(handle) = self.checkpointer.take() {
            // Under the lock the checkpointer checks `stop` under: it is
            // waiting (and woken) or has yet to look.
            drop(self.shared.checkpoint_due.lock());
            self.shared.checkpoint_wake.notify_all();
            handle.join().expect("the journal checkpointer panicked");
        }
        if self.shared.failed.load(Ordering::Acquire) {
            return Err(JournalError::Flusher(self.failure()));
        }
        self.sync()?;
        self.read_only = true;
        Ok(())
    }

    /// The operator's truncation: keeps records `1..=keep_through` and
    /// removes every later one (later segments are deleted). Records up to
    /// `keep_through` must verify; what follows is not read. Snapshots are
    /// the caller's concern. The checkpoint is rewritten (every copy) to
    /// the record kept last before anything is removed: a deliberate act
    /// lowers it, and a stop part-way leaves a journal that reaches it.
    pub fn truncate(dir: &Path, keep_through: u64) -> Result<TruncateReport, JournalError> {
        let _lock = lock_directory(dir)?;
        let listing = recovery::list_segments(dir)?;
        let current = checkpoint::read(dir)?.valid().unwrap_or_default();
        let mut removed = Vec::new();
        if keep_through == 0 {
            CheckpointWriter::open(dir, current, Some(DurableRecord::default()))?;
            for (_, _, path) in listing.segments.iter().rev() {
                fs::remove_file(path).at(path)?;
                removed.push(path.clone());
            }
            sync_directory(dir).at(dir)?;
            return Ok(TruncateReport {
                last_sequence: 0,
                removed_segments: removed,
            });
        }
        let scan = recovery::scan_directory(dir, true, Some(keep_through), false, None)?;
        let SegmentEnd::Stopped(offset) = scan.end else {
            unreachable!("a scan with stop_after ends Stopped or fails")
        };
        let kept = DurableRecord {
            sequence: keep_through,
            term: scan.chain.last_term,
            checksum: scan.chain.last_checksum,
        };
        CheckpointWriter::open(dir, current, Some(kept))?;
        // The kept tail first, then the later segments: a stop in between
        // leaves a journal whose start is refused (its chain breaks at the
        // next segment) and a second truncation finishes the job.
        let last = scan
            .segments
            .last()
            .expect("keep_through >= 1 is in a segment");
        // SAFETY: the directory is locked and the segment not shared.
        unsafe { last.zero(offset, last.capacity()) };
        last.sync_all().at(&last.path)?;
        for (_, _, path) in listing.segments.iter().skip(scan.segments.len()).rev() {
            fs::remove_file(path).at(path)?;
            removed.push(path.clone());
        }
        sync_directory(dir).at(dir)?;
        Ok(TruncateReport {
            last_sequence: keep_through,
            removed_segments: removed,
        })
    }
}

impl Journal {
    /// The first sequence of the journal's first segment file in `dir` (by
    /// its name; `None` without segments or directory): above 1 once
    /// retention removed the early segments.
    pub fn first_sequence_on_disk(dir: &Path) -> Result<Option<u64>, JournalError> {
        if !dir.exists() {
            return Ok(None);
        }
        let listing = recovery::list_segments(dir)?;
        Ok(listing.segments.first().map(|&(_, first, _)| first))
    }

    /// Retention: removes the segments whose records all come at or before
    /// `sequence` (a snapshot covers them), or with `archive` moves them
    /// into that directory; the last segment always stays. Oldest first, so
    /// a stop part-way leaves a journal that merely starts later. The
    /// journal must not be open (the directory is locked meanwhile).
    /// Recovery then starts from a snapshot at or after the journal's new
    /// first record; one before it is refused as a gap.
    pub fn remove_through(
        dir: &Path,
        sequence: u64,
        archive: Option<&Path>,
    ) -> Result<Vec<PathBuf>, JournalError> {
        let _lock = lock_directory(dir)?;
        let listing = recovery::list_segments(dir)?;
        let mut removed = Vec::new();
        for pair in listing.segments.windows(2) {
            let ((_, _, path), (_, next_first, _)) = (&pair[0], &pair[1]);
            if *next_first > sequence.saturating_add(1) {
                break;
            }
            match archive {
                Some(archive) => {
                    fs::create_dir_all(archive).at(archive)?;
                    let target = archive.join(path.file_name().expect("a segment file name"));
                    if fs::rename(path, &target).is_err() {
                        // Another file system: copy, sync, then remove.
                        fs::copy(path, &target).at(&target)?;
                        File::open(&target)
                            .and_then(|file| file.sync_all())
                            .at(&target)?;
                        fs::remove_file(path).at(path)?;
                    }
                    sync_directory(archive).at(archive)?;
                }
                None => fs::remove_file(path).at(path)?,
            }
            removed.push(path.clone());
        }
        if !removed.is_empty() {
            sync_directory(dir).at(dir)?;
        }
        Ok(removed)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// What [`Journal::truncate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncateReport {
    /// The journal's last sequence now.
    pub last_sequence: u64,
    pub removed_segments: Vec<PathBuf>,
}

/// A read-only scan. Beside a live writer (it holds the lock), its tail is
/// a moving end, and it may finish a segment and start the next between
/// this scan's listing and its reading: a scan that finds a finished last
/// segment is taken again, a few times, before the error stands.
fn scan_beside_writer(
    dir: &Path,
    checkpoint: Option<Checkpoint>,
) -> Result<recovery::Scan, JournalError> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        let live = writer_holds_lock(dir);
        match recovery::scan_directory(dir, false, None, live, checkpoint) {
            Err(JournalError::MissingSegment { .. }) if live && attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// Whether a process has the journal in `dir` open for writing (it holds
/// the directory's lock, or that of its `LOCK` file).
pub fn writer_holds_lock(dir: &Path) -> bool {
    let held = |path: PathBuf| {
        File::open(path)
            .is_ok_and(|file| matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock)))
    };
    held(dir.to_path_buf()) || held(dir.join(LOCK_FILE))
}

/// Takes the writer's locks: the `LOCK` file's (what earlier builds took)
/// and the directory's own, which deleting a file cannot defeat (`flock`
/// locks belong to the open file description, so a second open in this
/// process is refused too).
fn lock_directory(dir: &Path) -> Result<DirectoryLock, JournalError> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)?;
    try_lock(&file, &path)?;
    let dir_handle = File::open(dir).at(dir)?;
    try_lock(&dir_handle, dir)?;
    Ok(DirectoryLock {
        _file: file,
        _dir: dir_handle,
    })
}

fn try_lock(file: &File, path: &Path) -> Result<(), JournalError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(fs::TryLockError::WouldBlock) => Err(JournalError::Locked {
            path: path.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(JournalError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A journal with records needs a valid checkpoint: without one, lost
/// acknowledged records could not be told from a torn tail. A journal with
/// none (new, or a first open that stopped before writing it) gets one.
fn require_checkpoint(
    dir: &Path,
    found: &Found,
    report: &RecoveryReport,
) -> Result<(), JournalError> {
    let what = match found {
        Found::Valid(_) => return Ok(()),
        Found::Missing => "missing".to_owned(),
        Found::Invalid(reason) => reason.clone(),
    };
    if report.last_sequence < report.first_sequence {
        return Ok(());
    }
    Err(JournalError::Checkpoint {
        path: dir.join(checkpoint::CHECKPOINT_FILE),
        reason: format!(
            "{what}, but the journal holds records {}..={}: without the checkpoint, lost \
             acknowledged records cannot be told from an unfinished append. Restore it from a \
             copy, or accept the journal as it is with `exchange journal truncate {} --to {} \
             --yes`",
            report.first_sequence,
            report.last_sequence,
            dir.display(),
            report.last_sequence
        ),
    })
}

/// The first segment of a journal that has none, with its header and
/// final name, its directory entry durable.
fn first_segment(
    dir: &Path,
    options: &JournalOptions,
    chain: &recovery::Chain,
) -> Result<Segment, JournalError> {
    let index = 1;
    let prepared =
        PreparedSegment::create(dir, index, options.segment_bytes, options.prefault).at(dir)?;
    let header = SegmentHeader {
        index,
        first_sequence: chain.next_sequence,
        previous_checksum: chain.last_checksum,
        capacity: options.segment_bytes as u64,
    };
    let segment = prepared
        .activate(dir, &header.encode(), chain.next_sequence)
        .at(dir)?;
    sync_directory(dir).at(dir)?;
    segment.set_published_end(SEGMENT_HEADER_BYTES);
    Ok(segment)
}

/// A last segment file whose length [`restore_cut_file`] gave back is
/// reported as a torn tail (if recovery found no other).
fn report_restored_file(scan: &mut recovery::Scan, restored: Option<(PathBuf, u64)>) {
    if let Some((path, length)) = restored
        && scan.report.torn_tail.is_none()
        && scan.segments.last().is_some_and(|last| last.path == path)
    {
        scan.report.torn_tail = Some(recovery::TornTail {
            segment: path,
            offset: length,
            bytes: 0,
            reason: format!(
                "the file was {length} bytes, shorter than its header says; its length was \
                 restored"
            ),
        });
    }
}

/// A last segment file shorter than its header says (copied or cut short,
/// at any byte) gets its zero-filled length back before recovery reads it,
/// so that a cut record is a torn tail like any other and appends continue
/// in the file. Returns the file and the length it had. Only an intact
/// header that names this file is believed; recovery reports any other.
fn restore_cut_file(dir: &Path) -> Result<Option<(PathBuf, u64)>, JournalError> {
    let listing = recovery::list_segments(dir)?;
    let Some((index, first, path)) = listing.segments.last() else {
        return Ok(None);
    };
    let mut file = File::options().read(true).write(true).open(path).at(path)?;
    let length = file.metadata().at(path)?.len();
    if length < SEGMENT_HEADER_BYTES as u64 {
        return Ok(None);
    }
    let mut bytes = [0u8; SEGMENT_HEADER_BYTES];
    file.read_exact(&mut bytes).at(path)?;
    let Ok(header) = SegmentHeader::decode(&bytes) else {
        return Ok(None);
    };
    if header.index != *index || header.first_sequence != *first || header.capacity <= length {
        return Ok(None);
    }
    file.set_len(header.capacity).at(path)?;
    file.sync_all().at(path)?;
    Ok(Some((path.clone(), length)))
}
