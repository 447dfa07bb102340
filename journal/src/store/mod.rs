//! The message store: one sequenced stream of messages on disk (sequence
//! 1, 2, 3 …), each message bytes plus an *origin* — the journal sequence
//! of the command that caused it — so a store derived from the journal can
//! be cut back to what the journal recovered
//! ([`MessageStore::truncate_after_origin`]).
//!
//! Why a store beside the journal: the per-login SoupBinTCP streams and the
//! market-data message log are replayed from any point (a re-login, a
//! re-request), all day. Kept in memory they grow with the day; here they
//! are files, read back with `pread`, and memory is a fixed budget.
//!
//! - **Files** (layouts in the `format` module, `docs/store.md`): a store
//!   is a directory of segments, each a `.msg` file of checksummed records
//!   and an `.idx` file of one 4-byte offset per message. A segment is
//!   closed for appends once it reaches `segment_bytes_max`.
//! - **Reads** ([`MessageStore::get`], [`MessageStore::reader`]): the
//!   recent-message cache, else the index entry (one `pread`) and the record
//!   (one more): no scan, whatever the position. The reader continues
//!   sequentially in 64 KiB chunks. Every record read is checked (sequence,
//!   checksum).
//! - **Memory** ([`StoreOptions::cache_bytes_max`]): the write buffer, the
//!   index buffer and the recent-message cache are allocated when the store
//!   opens and never grow; [`MessageStore::resident_bytes`] is their sum and
//!   is at most `cache_bytes_max`. Besides that a store holds its directory
//!   path, two open files and 8 bytes per closed segment (a segment of 64
//!   MiB holds about 930,000 40-byte messages). Nothing is memory-mapped.
//! - **Durability**: the store is derived data. Appends reach the files
//!   when the write buffer fills or on [`MessageStore::flush`] (the
//!   operating system's page cache: a crash of the process loses only the
//!   buffer); [`MessageStore::sync`] also syncs them. Recovery
//!   ([`MessageStore::open`]) checks every record of the last segment and
//!   the last record of each other one, cuts a torn or damaged tail and
//!   reports how far the store is valid ([`StoreRecovery::last_origin`]); the
//!   owner regenerates the rest from the journal.
//! - **End**: [`MessageStore::end`] marks the stream finished (an end
//!   record): no message may follow, and it is still so after a reopen.
//! - **Write-behind** ([`MessageStore::open_with_writer`], the `behind`
//!   module): a full write buffer is handed to a [`StoreWriter`] that
//!   writes it from another thread's idle time while appends fill a second
//!   buffer (the two share the write buffer's quarter of the budget).
//!
//! One writer: the store is owned by the thread that appends (the journal's
//! `LOCK` keeps a second process away from the data directory).

#![forbid(unsafe_code)]

mod behind;
mod cache;
mod files;
mod format;
mod reader;
mod recovery;

use std::borrow::Cow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use behind::Behind;
pub use behind::{StoreWriter, StoreWriterStats, WRITE_STEP_BYTES_MAX};

use cache::{CACHE_SLOT_BYTES, RecentCache};
use files::{SegmentFiles, io_error};
use format::{
    INDEX_ENTRY_BYTES, RecordKind, STORE_RECORD_HEADER_BYTES, STORE_SEGMENT_HEADER_BYTES,
    StoreRecordHeader,
};
pub use reader::StoreReader;
use reader::{checked_message, parse_record};

/// Older segments whose files `get` keeps open (two files each), so
/// random reads across the day do not open files each time.
const OLDER_SEGMENTS_OPEN_MAX: usize = 8;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record that recovery accepted (or that was just written) does not
    /// read back as it must: the store must be regenerated from its source.
    #[error("message store corrupt in {} at offset {offset} (message {sequence}): {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        sequence: u64,
        reason: &'static str,
    },
    /// A message is larger than [`StoreOptions::message_bytes_max`].
    #[error("a message of {bytes} bytes is over the store's maximum of {bytes_max}")]
    MessageTooLarge { bytes: usize, bytes_max: usize },
    /// Origins never decrease along a stream.
    #[error("origin {origin} is below the store's last origin {last_origin}")]
    OriginDecreasing { origin: u64, last_origin: u64 },
    /// The stream was ended ([`MessageStore::end`]).
    #[error("the message store {} was ended: no message may follow", dir.display())]
    Ended { dir: PathBuf },
    /// A truncation asked to keep messages the store does not have.
    #[error("the store ends at message {last}; cannot keep messages through {requested}")]
    TruncateBeyondEnd { requested: u64, last: u64 },
    /// The options cannot work.
    #[error("invalid store options: {0}")]
    Options(String),
}

/// How a store is laid out and how much memory it may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// A segment is closed for appends once its `.msg` file would pass this
    /// (it always takes at least one message). At most `u32::MAX`.
    pub segment_bytes_max: u64,
    /// The largest message accepted.
    pub message_bytes_max: usize,
    /// Every byte the store holds in memory for its data: the write buffer
    /// (a quarter; two of an eighth each under write-behind), the index
    /// buffer (a thirty-second; two of a sixty-fourth) and the
    /// recent-message cache (the rest). [`MessageStore::resident_bytes`] is
    /// at most this, whatever the number of messages.
    pub cache_bytes_max: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            segment_bytes_max: 64 << 20,
            message_bytes_max: 64 << 10,
            cache_bytes_max: 1 << 20,
        }
    }
}

impl StoreOptions {
    fn validate(&self) -> Result<(), StoreError> {
        let segment_min = (STORE_SEGMENT_HEADER_BYTES + STORE_RECORD_HEADER_BYTES) as u64;
        if self.segment_bytes_max < segment_min || self.segment_bytes_max > u64::from(u32::MAX) {
            return Err(StoreError::Options(format!(
                "segment_bytes_max {} is outside {segment_min}..={}",
                self.segment_bytes_max,
                u32::MAX
            )));
        }
        if self.message_bytes_max > u32::MAX as usize - STORE_RECORD_HEADER_BYTES {
            return Err(StoreError::Options(format!(
                "message_bytes_max {} is over 4 GiB",
                self.message_bytes_max
            )));
        }
        Ok(())
    }

    /// How `cache_bytes_max` is shared: write buffer, index buffer (each
    /// twice under write-behind: `buffers` 2), cache ring bytes, cache
    /// slots.
    fn budget(&self, buffers: usize) -> Budget {
        let write_buffer_bytes = self.cache_bytes_max / 4 / buffers;
        let index_buffer_bytes =
            (self.cache_bytes_max / 32 / buffers) / INDEX_ENTRY_BYTES * INDEX_ENTRY_BYTES;
        let cache = self.cache_bytes_max - buffers * (write_buffer_bytes + index_buffer_bytes);
        Budget {
            write_buffer_bytes,
            index_buffer_bytes,
            ring_bytes: cache / 2,
            slots_max: (cache / 2) / CACHE_SLOT_BYTES,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Budget {
    write_buffer_bytes: usize,
    index_buffer_bytes: usize,
    ring_bytes: usize,
    slots_max: usize,
}

/// One message read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage<'a> {
    pub sequence: u64,
    pub origin: u64,
    /// Borrowed from the cache or the reader's chunk where it can be.
    pub bytes: Cow<'a, [u8]>,
}

/// What [`MessageStore::open`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreRecovery {
    /// The last valid message (0: none).
    pub last_sequence: u64,
    /// Its origin (0: none): the journal must be replayed after it to
    /// regenerate what the store lacks.
    pub last_origin: u64,
    /// The stream was ended.
    pub ended: bool,
    /// Bytes cut from the end of the last segment (torn or damaged).
    pub truncated_bytes: u64,
    /// Segments removed: after a damaged one, or holding no valid message.
    pub segments_removed: u64,
    /// Index entries written again from the records.
    pub index_entries_rebuilt: u64,
}

/// One sequenced stream of messages on disk. See the module docs.
///
/// ```
/// use journal::{MessageStore, StoreOptions};
/// let dir = std::env::temp_dir().join(format!("store-doc-{}", std::process::id()));
/// let (mut store, recovery) = MessageStore::open(&dir, StoreOptions::default())?;
/// assert_eq!(recovery.last_sequence, 0);
/// assert_eq!(store.append(10, b"hello")?, 1);
/// assert_eq!(store.append(12, b"world")?, 2);
/// store.close()?;
/// let (store, recovery) = MessageStore::open(&dir, StoreOptions::default())?;
/// assert_eq!((recovery.last_sequence, recovery.last_origin), (2, 12));
/// let message = store.get(2)?.expect("stored");
/// assert_eq!((message.origin, &*message.bytes), (12, &b"world"[..]));
/// let mut reader = store.reader(1);
/// assert_eq!(&*reader.next()?.expect("first").bytes, b"hello");
/// # drop(reader);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), journal::StoreError>(())
/// ```
#[derive(Debug)]
pub struct MessageStore {
    dir: PathBuf,
    options: StoreOptions,
    /// First sequences of the segments before the tail, ascending.
    sealed: Vec<u64>,
    /// The segment appended to (`None` while the store is empty); shared
    /// with a buffer in flight to the writer.
    tail: Option<Arc<SegmentFiles>>,
    /// Bytes of the tail's data file written to it (or in flight to the
    /// writer); the write buffer continues from here.
    tail_data_on_file: u64,
    /// Index entries of the tail written to its index file (or in flight).
    tail_entries_on_file: u64,
    write_buffer: Vec<u8>,
    index_buffer: Vec<u8>,
    /// Write-behind: the writer, and the buffers in flight to it.
    behind: Option<Behind>,
    cache: RecentCache,
    last_sequence: u64,
    last_origin: u64,
    ended: bool,
    /// The files of the older segments read last by `get`, most recent
    /// first (at most [`OLDER_SEGMENTS_OPEN_MAX`]).
    older: Mutex<Vec<SegmentFiles>>,
}

/// A message read out of the write buffer, and its record's bytes.
struct Buffered<'a> {
    message: StoredMessage<'a>,
    footprint: u64,
}

impl MessageStore {
    /// Opens (creating if need be) the store in `dir`, recovering it: see
    /// the module docs and [`StoreRecovery`].
    pub fn open(
        dir: &Path,
        options: StoreOptions,
    ) -> Result<(MessageStore, StoreRecovery), StoreError> {
        Self::open_behind(dir, options, None)
    }

    /// [`open`](Self::open), handing full write buffers to `writer` (see
    /// the `behind` module): the appending thread copies records into one
    /// buffer while the writer writes the other.
    pub fn open_with_writer(
        dir: &Path,
        options: StoreOptions,
        writer: StoreWriter,
    ) -> Result<(MessageStore, StoreRecovery), StoreError> {
        Self::open_behind(dir, options, Some(writer))
    }

    fn open_behind(
        dir: &Path,
        options: StoreOptions,
        writer: Option<StoreWriter>,
    ) -> Result<(MessageStore, StoreRecovery), StoreError> {
        options.validate()?;
        let recovered = recovery::recover(dir, &options)?;
        let budget = options.budget(if writer.is_some() { 2 } else { 1 });
        let report = recovered.report;
        let (tail, tail_data_on_file, tail_entries_on_file) = match recovered.tail {
            Some(tail) => (Some(Arc::new(tail.files)), tail.data_bytes, tail.entries),
            None => (None, 0, 0),
        };
        let store = MessageStore {
            dir: dir.to_path_buf(),
            options,
            sealed: recovered.sealed,
            tail,
            tail_data_on_file,
            tail_entries_on_file,
            write_buffer: Vec::with_capacity(budget.write_buffer_bytes),
            index_buffer: Vec::with_capacity(budget.index_buffer_bytes),
            behind: writer.map(|writer| {
                Behind::new(
                    writer,
                    Vec::with_capacity(budget.write_buffer_bytes),
                    Vec::with_capacity(budget.index_buffer_bytes),
                )
            }),
            cache: RecentCache::new(
                budget.ring_bytes,
                budget.slots_max,
                report.last_sequence + 1,
            ),
            last_sequence: report.last_sequence,
            last_origin: report.last_origin,
            ended: report.ended,
            older: Mutex::new(Vec::with_capacity(OLDER_SEGMENTS_OPEN_MAX)),
        };
        Ok((store, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last message's sequence (0: none); also the message count.
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// The sequence the next message gets.
    pub fn next_sequence(&self) -> u64 {
        self.last_sequence + 1
    }

    /// The last message's origin (0: none).
    pub fn last_origin(&self) -> u64 {
        self.last_origin
    }

    pub fn is_empty(&self) -> bool {
        self.last_sequence == 0
    }

    /// Whether the stream was ended ([`end`](Self::end)).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Bytes held in memory for the data (buffers and cache): fixed when
    /// the store opens, at most [`StoreOptions::cache_bytes_max`].
    pub fn resident_bytes(&self) -> usize {
        let buffers = if self.behind.is_some() { 2 } else { 1 };
        buffers * (self.write_buffer.capacity() + self.index_buffer.capacity())
            + self.cache.resident_bytes()
    }

    /// Appends a message caused by the command journaled at `origin`;
    /// returns its sequence.
    pub fn append(&mut self, origin: u64, message: &[u8]) -> Result<u64, StoreError> {
        if self.ended {
            return Err(StoreError::Ended {
                dir: self.dir.clone(),
            });
        }
        if message.len() > self.options.message_bytes_max {
            return Err(StoreError::MessageTooLarge {
                bytes: message.len(),
                bytes_max: self.options.message_bytes_max,
            });
        }
        if origin < self.last_origin {
            return Err(StoreError::OriginDecreasing {
                origin,
                last_origin: self.last_origin,
            });
        }
        let sequence = self.last_sequence + 1;
        let header = StoreRecordHeader::new(RecordKind::Message, sequence, origin, message);
        self.make_room(header.footprint())?;
        let offset = self.tail_data_on_file + self.write_buffer.len() as u64;
        let offset = u32::try_from(offset).expect("segments are at most u32::MAX bytes");
        self.write_record(&header, message)?;
        self.push_index_entry(offset)?;
        self.cache.push(sequence, origin, message);
        self.last_sequence = sequence;
        self.last_origin = origin;
        Ok(sequence)
    }

    /// Ends the stream: an end record is written and flushed; appends are
    /// refused from now on (also after a reopen).
    pub fn end(&mut self) -> Result<(), StoreError> {
        if self.ended {
            return Ok(());
        }
        let header =
            StoreRecordHeader::new(RecordKind::End, self.last_sequence, self.last_origin, &[]);
        if self.tail.is_none() {
            self.make_room(header.footprint())?;
        }
        self.write_record(&header, &[])?;
        self.ended = true;
        self.flush()
    }

    /// Message `sequence`, or `None` if the store does not have it.
    pub fn get(&self, sequence: u64) -> Result<Option<StoredMessage<'_>>, StoreError> {
        if sequence == 0 || sequence > self.last_sequence {
            return Ok(None);
        }
        if let Some((origin, bytes)) = self.cache.get(sequence) {
            return Ok(Some(StoredMessage {
                sequence,
                origin,
                bytes,
            }));
        }
        let segment = self.segment_first(sequence);
        let tail = self
            .tail
            .as_ref()
            .expect("a store with messages has a tail");
        if tail.first_sequence == segment {
            let offset = self.tail_offset(sequence)?;
            if offset >= self.tail_data_on_file {
                return Ok(Some(self.buffered_record(offset, sequence)?.message));
            }
            self.settle()?;
            return self.read_record(tail, offset, sequence).map(Some);
        }
        let mut older = self.older.lock();
        match older
            .iter()
            .position(|files| files.first_sequence == segment)
        {
            Some(position) => older[..=position].rotate_right(1),
            None => {
                if older.len() == OLDER_SEGMENTS_OPEN_MAX {
                    older.pop();
                }
                older.insert(0, SegmentFiles::open(&self.dir, segment)?);
            }
        }
        let files = &older[0];
        let offset = u64::from(files.index_entry(sequence - segment)?);
        self.read_record(files, offset, sequence).map(Some)
    }

    /// A reader of the messages from `from_sequence` on (see
    /// [`StoreReader`]).
    pub fn reader(&self, from_sequence: u64) -> StoreReader<'_> {
        StoreReader::new(self, from_sequence)
    }

    /// Hands the buffers to the writer ([`open_with_writer`]), or, without
    /// one (or once it is closed), writes them to the files as
    /// [`flush`](Self::flush) does. For regular flushes that need not wait.
    ///
    /// [`open_with_writer`]: Self::open_with_writer
    pub fn flush_behind(&mut self) -> Result<(), StoreError> {
        let Some(behind) = self.behind.as_ref().filter(|behind| behind.is_open()) else {
            return self.flush();
        };
        let Some(tail) = self.tail.as_ref() else {
            return Ok(());
        };
        if self.write_buffer.is_empty() && self.index_buffer.is_empty() {
            return Ok(());
        }
        let (data, index) = behind.reclaim()?;
        let data = std::mem::replace(&mut self.write_buffer, data);
        let index = std::mem::replace(&mut self.index_buffer, index);
        let (data_at, index_at) = (
            self.tail_data_on_file,
            self.tail_entries_on_file * INDEX_ENTRY_BYTES as u64,
        );
        self.tail_data_on_file += data.len() as u64;
        self.tail_entries_on_file += (index.len() / INDEX_ENTRY_BYTES) as u64;
        behind.hand_off(Arc::clone(tail), (data, data_at), (index, index_at));
        Ok(())
    }

    /// Write-behind's buffers in flight are written (see the `behind`
    /// module): the tail's files hold everything before the buffers.
    fn settle(&self) -> Result<(), StoreError> {
        match self.behind.as_ref() {
            Some(behind) => behind.settle(),
            None => Ok(()),
        }
    }

    /// Writes the buffers to the files (the operating system's cache), and
    /// any in flight to the writer before them.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.settle()?;
        let Some(tail) = self.tail.as_ref() else {
            return Ok(());
        };
        if self.write_buffer.is_empty() && self.index_buffer.is_empty() {
            return Ok(());
        }
        // Records before the index entries that point at them.
        tail.data
            .write_all_at(&self.write_buffer, self.tail_data_on_file)
            .map_err(|source| io_error(&tail.data_path, source))?;
        self.tail_data_on_file += self.write_buffer.len() as u64;
        self.write_buffer.clear();
        tail.index
            .write_all_at(
                &self.index_buffer,
                self.tail_entries_on_file * INDEX_ENTRY_BYTES as u64,
            )
            .map_err(|source| io_error(&tail.index_path, source))?;
        self.tail_entries_on_file += (self.index_buffer.len() / INDEX_ENTRY_BYTES) as u64;
        self.index_buffer.clear();
        Ok(())
    }

    /// Flushes, then syncs the tail's files to the disk.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        if let Some(tail) = self.tail.as_ref() {
            tail.data
                .sync_data()
                .map_err(|source| io_error(&tail.data_path, source))?;
            tail.index
                .sync_data()
                .map_err(|source| io_error(&tail.index_path, source))?;
        }
        Ok(())
    }

    /// Flushes, then syncs every file of the store (sealed segments too,
    /// which are never synced otherwise) and its directory: what it holds
    /// survives the machine. For retention, before the journal the store
    /// was derived from is removed.
    pub fn sync_all(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        let entries = std::fs::read_dir(&self.dir).map_err(|source| io_error(&self.dir, source))?;
        for entry in entries {
            let path = entry.map_err(|source| io_error(&self.dir, source))?.path();
            if path.is_file() {
                std::fs::File::open(&path)
                    .and_then(|file| file.sync_all())
                    .map_err(|source| io_error(&path, source))?;
            }
        }
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| io_error(&self.dir, source))
    }

    /// A new store in `new_dir` (empty or absent) holding this store's
    /// messages `1..=through`, not ended, to be appended to: the sealed
    /// segments wholly at or before `through` are hard-linked (they are
    /// never written again; copied where links are not possible), the one
    /// holding `through` is copied and cut after it. Cheap whatever the
    /// length: for a stream that continues under another name (a
    /// market-data session begun anew after it was ended).
    pub fn fork(
        &mut self,
        new_dir: &Path,
        through: u64,
        options: StoreOptions,
    ) -> Result<MessageStore, StoreError> {
        if through > self.last_sequence {
            return Err(StoreError::TruncateBeyondEnd {
                requested: through,
                last: self.last_sequence,
            });
        }
        self.flush()?;
        std::fs::create_dir_all(new_dir).map_err(|source| io_error(new_dir, source))?;
        let mut segments = self.sealed.clone();
        segments.extend(self.tail.as_ref().map(|tail| tail.first_sequence));
        let keep = segments.partition_point(|&first| first <= through);
        for (position, &first) in segments[..keep].iter().enumerate() {
            let (data, index) = format::segment_file_names(first);
            for name in [data, index] {
                let (from, to) = (self.dir.join(&name), new_dir.join(&name));
                let _ = std::fs::remove_file(&to);
                let last_kept = position + 1 == keep;
                if last_kept || std::fs::hard_link(&from, &to).is_err() {
                    std::fs::copy(&from, &to).map_err(|source| io_error(&to, source))?;
                }
            }
        }
        let (mut forked, _recovery) = MessageStore::open(new_dir, options)?;
        if forked.last_sequence() > through || forked.is_ended() {
            forked.cut_after(through)?;
        }
        Ok(forked)
    }

    /// Flushes and closes the store.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.flush()
    }

    /// Keeps the messages whose origin is at most `origin` (origins never
    /// decrease, so they are a prefix) and removes the rest; returns the
    /// last sequence kept. The end record stays only if no message goes.
    pub fn truncate_after_origin(&mut self, origin: u64) -> Result<u64, StoreError> {
        if origin >= self.last_origin {
            return Ok(self.last_sequence);
        }
        // The largest sequence whose origin is at most `origin`, in
        // `low..high` (0 stands for "none").
        let (mut low, mut high) = (0, self.last_sequence);
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            let found = self.get(middle)?.expect("within the store").origin;
            if found <= origin {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        self.truncate_after_sequence(low)?;
        Ok(low)
    }

    /// Keeps messages `1..=sequence` and removes the rest (and the end
    /// record, if a message goes).
    pub fn truncate_after_sequence(&mut self, sequence: u64) -> Result<(), StoreError> {
        if sequence > self.last_sequence {
            return Err(StoreError::TruncateBeyondEnd {
                requested: sequence,
                last: self.last_sequence,
            });
        }
        if sequence == self.last_sequence {
            return Ok(());
        }
        self.cut_after(sequence)
    }

    /// Keeps messages `1..=sequence` (at most the last) and removes the
    /// rest, the end record included even if no message goes.
    fn cut_after(&mut self, sequence: u64) -> Result<(), StoreError> {
        self.flush()?;
        self.older.lock().clear();
        let mut segments = std::mem::take(&mut self.sealed);
        segments.extend(self.tail.take().map(|tail| tail.first_sequence));
        let keep = segments.partition_point(|&first| first <= sequence);
        for &first in &segments[keep..] {
            SegmentFiles::remove(&self.dir, first)?;
        }
        segments.truncate(keep);
        self.ended = false;
        self.last_sequence = sequence;
        self.cache.truncate_after(sequence);
        let Some(tail_first) = segments.pop() else {
            (
                self.tail_data_on_file,
                self.tail_entries_on_file,
                self.last_origin,
            ) = (0, 0, 0);
            return Ok(());
        };
        let tail = Arc::new(SegmentFiles::open(&self.dir, tail_first)?);
        let offset = u64::from(tail.index_entry(sequence - tail_first)?);
        let header = self.read_record(&tail, offset, sequence)?;
        let entries = sequence - tail_first + 1;
        let end = offset + STORE_RECORD_HEADER_BYTES as u64 + header.bytes.len() as u64;
        self.last_origin = header.origin;
        tail.truncate(end, entries)?;
        (self.tail_data_on_file, self.tail_entries_on_file) = (end, entries);
        self.sealed = segments;
        self.tail = Some(tail);
        Ok(())
    }

    /// The first sequence of the segment that holds `sequence`.
    fn segment_first(&self, sequence: u64) -> u64 {
        match self.tail.as_ref() {
            Some(tail) if sequence >= tail.first_sequence => tail.first_sequence,
            _ => {
                let after = self.sealed.partition_point(|&first| first <= sequence);
                assert!(after > 0, "sequence {sequence} is before the first segment");
                self.sealed[after - 1]
            }
        }
    }

    /// The offset of message `sequence` of the tail: from the index file or
    /// the index buffer.
    fn tail_offset(&self, sequence: u64) -> Result<u64, StoreError> {
        let tail = self
            .tail
            .as_ref()
            .expect("a store with messages has a tail");
        let position = sequence - tail.first_sequence;
        if position < self.tail_entries_on_file {
            self.settle()?;
            return Ok(u64::from(tail.index_entry(position)?));
        }
        let at = (position - self.tail_entries_on_file) as usize * INDEX_ENTRY_BYTES;
        Ok(u64::from(format::read_u32(&self.index_buffer, at)))
    }

    /// Message `sequence`, whose record is in the write buffer at `offset`.
    fn buffered_record(&self, offset: u64, sequence: u64) -> Result<Buffered<'_>, StoreError> {
        let at = (offset - self.tail_data_on_file) as usize;
        let parsed = parse_record(&self.write_buffer[at..], self.options.message_bytes_max);
        let tail = self
            .tail
            .as_ref()
            .expect("a store with messages has a tail");
        let (header, body) = checked_message(parsed, sequence)
            .map_err(|reason| self.corrupt(tail, offset, sequence, reason))?;
        Ok(Buffered {
            message: StoredMessage {
                sequence,
                origin: header.origin,
                bytes: Cow::Borrowed(body),
            },
            footprint: header.footprint(),
        })
    }

    /// Reads and checks message `sequence` at `offset` of `files`.
    fn read_record(
        &self,
        files: &SegmentFiles,
        offset: u64,
        sequence: u64,
    ) -> Result<StoredMessage<'static>, StoreError> {
        // One read for the usual small message, two for a larger one.
        let mut record = vec![0u8; STORE_RECORD_HEADER_BYTES + 256];
        let read = files.read_data_some(&mut record, offset)?;
        record.truncate(read);
        if let Some(length) = record.first_chunk::<4>() {
            let wanted = STORE_RECORD_HEADER_BYTES + u32::from_le_bytes(*length) as usize;
            if wanted > record.len()
                && wanted <= STORE_RECORD_HEADER_BYTES + self.options.message_bytes_max
            {
                let held = record.len();
                record.resize(wanted, 0);
                let more = files.read_data_some(&mut record[held..], offset + held as u64)?;
                record.truncate(held + more);
            }
        }
        let (header, body) = checked_message(
            parse_record(&record, self.options.message_bytes_max),
            sequence,
        )
        .map_err(|reason| self.corrupt(files, offset, sequence, reason))?;
        let body = body.to_vec();
        Ok(StoredMessage {
            sequence,
            origin: header.origin,
            bytes: Cow::Owned(body),
        })
    }

    fn corrupt(
        &self,
        files: &SegmentFiles,
        offset: u64,
        sequence: u64,
        reason: &'static str,
    ) -> StoreError {
        StoreError::Corrupt {
            path: files.data_path.clone(),
            offset,
            sequence,
            reason,
        }
    }

    /// Makes sure the tail can take a record of `footprint` bytes: creates
    /// the first segment, or closes a full tail and starts the next.
    fn make_room(&mut self, footprint: u64) -> Result<(), StoreError> {
        let Some(tail) = self.tail.as_ref() else {
            self.start_segment(self.last_sequence + 1)?;
            return Ok(());
        };
        let data_end = self.tail_data_on_file + self.write_buffer.len() as u64;
        let holds_a_message = self.last_sequence >= tail.first_sequence;
        if holds_a_message && data_end + footprint > self.options.segment_bytes_max {
            self.flush()?;
            let previous = self.tail.take().expect("checked").first_sequence;
            self.sealed.push(previous);
            self.start_segment(self.last_sequence + 1)?;
        }
        Ok(())
    }

    fn start_segment(&mut self, first_sequence: u64) -> Result<(), StoreError> {
        debug_assert!(self.write_buffer.is_empty() && self.index_buffer.is_empty());
        self.tail = Some(Arc::new(SegmentFiles::create(&self.dir, first_sequence)?));
        self.tail_data_on_file = STORE_SEGMENT_HEADER_BYTES as u64;
        self.tail_entries_on_file = 0;
        Ok(())
    }

    /// Adds a record to the write buffer (flushing it first if it is full);
    /// one larger than the buffer goes to the file directly.
    fn write_record(&mut self, header: &StoreRecordHeader, body: &[u8]) -> Result<(), StoreError> {
        let footprint = header.footprint() as usize;
        if self.write_buffer.len() + footprint > self.write_buffer.capacity() {
            self.flush_behind()?;
        }
        if footprint > self.write_buffer.capacity() {
            let tail = self.tail.as_ref().expect("make_room made a tail");
            let mut record = Vec::with_capacity(footprint);
            record.extend_from_slice(&header.encode());
            record.extend_from_slice(body);
            tail.data
                .write_all_at(&record, self.tail_data_on_file)
                .map_err(|source| io_error(&tail.data_path, source))?;
            self.tail_data_on_file += footprint as u64;
            return Ok(());
        }
        let capacity = self.write_buffer.capacity();
        self.write_buffer.extend_from_slice(&header.encode());
        self.write_buffer.extend_from_slice(body);
        debug_assert_eq!(
            self.write_buffer.capacity(),
            capacity,
            "the buffer never grows"
        );
        Ok(())
    }

    fn push_index_entry(&mut self, offset: u32) -> Result<(), StoreError> {
        if self.index_buffer.len() + INDEX_ENTRY_BYTES > self.index_buffer.capacity() {
            self.flush_behind()?;
        }
        if self.index_buffer.capacity() < INDEX_ENTRY_BYTES {
            // No index buffer: the record was flushed above, the entry goes
            // straight to the file.
            let tail = self.tail.as_ref().expect("make_room made a tail");
            tail.index
                .write_all_at(
                    &offset.to_le_bytes(),
                    self.tail_entries_on_file * INDEX_ENTRY_BYTES as u64,
                )
                .map_err(|source| io_error(&tail.index_path, source))?;
            self.tail_entries_on_file += 1;
            return Ok(());
        }
        self.index_buffer.extend_from_slice(&offset.to_le_bytes());
        Ok(())
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        // Best effort: what is lost here is regenerated after the reopen.
        let _ = self.flush();
    }
}
