//! The message log: every ITCH message of the current MoldUDP64 session,
//! by sequence number, so any of them can be sent again (re-requests).
//!
//! The log is a [`MessageStore`] (`journal` crate): the messages are on
//! disk, one record per message (record sequence = MoldUDP64 sequence,
//! origin = the journal sequence of the command that caused it), with an
//! index by sequence number, and memory is the store's fixed budget
//! ([`LOG_CACHE_BYTES_MAX`]) whatever the day's volume. Attached to its
//! session's directory (`data_dir/marketdata/<session>/`), the store *is*
//! the published stream as a file that outlives the process. Before it is
//! attached (while the publisher regenerates the stream from the command
//! journal at start-up, before it knows where the logs go) the log is a
//! store in a scratch directory under the system's temporary directory,
//! removed when the log is attached or dropped.
//!
//! The stream is a pure function of the command journal (see `feed`), so
//! at start-up the publisher regenerates the session's messages by
//! replaying the command journal; [`MessageLog::attach`] then checks that
//! the log on disk is a prefix of what was regenerated — the same bytes
//! and the same origins, message by message — and appends the rest. A
//! session whose End of Session was sent is marked ended in its store (the
//! store's end record) and never written again. The publisher decides what
//! to do with a log that has ended or that disagrees with the journal (see
//! `publisher`: the day continues under a new session name).
//!
//! If the store fails (a full disk), the log keeps counting the messages
//! published (the stream's numbering does not change) but holds only those
//! before the failure: re-requests past it get nothing.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use journal::{MessageStore, StoreError, StoreOptions, StoreReader};

/// The memory a session's log holds, whatever its length: the store's
/// write buffer, index buffer and cache of recent messages (about 40,000
/// recent ITCH messages, so re-requests of recent packets read no file).
pub const LOG_CACHE_BYTES_MAX: usize = 4 << 20;

/// The store options of a session's log.
pub fn log_store_options() -> StoreOptions {
    StoreOptions {
        segment_bytes_max: 64 << 20,
        // ITCH messages are at most 50 bytes.
        message_bytes_max: 1 << 10,
        cache_bytes_max: LOG_CACHE_BYTES_MAX,
    }
}

/// A log on disk compared with this one.
#[derive(Debug)]
pub struct OnDisk {
    /// ITCH messages in the store.
    pub messages: u64,
    /// The session was ended (End of Session sent).
    pub ended: bool,
    /// The first way the store disagrees with this log.
    pub disagreement: Option<LogError>,
}

/// Why a log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("message log {dir}: {source}")]
    Store {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error(
        "message log {dir} has message {on_disk} but the command journal regenerates only \
         {regenerated}: the log is ahead of the journal it was published from"
    )]
    Ahead {
        dir: PathBuf,
        on_disk: u64,
        regenerated: u64,
    },
    #[error(
        "message log {dir}: message {sequence} differs from the one the command journal \
         regenerates"
    )]
    Differs { dir: PathBuf, sequence: u64 },
    #[error(
        "message log {dir} holds files that are not a message store (a log of an older \
         format?)"
    )]
    Foreign { dir: PathBuf },
    #[error(
        "message log {dir} does not hold the session as of journal sequence {through} \
         ({expected} messages expected, {stored} stored, the last's origin {origin})"
    )]
    NotAtSnapshot {
        dir: PathBuf,
        through: u64,
        expected: u64,
        stored: u64,
        origin: u64,
    },
    #[error("message log {dir}: the session has ended (End of Session was sent)")]
    Ended { dir: PathBuf },
    #[error(
        "message logs under {dir}: every session name of this trading day is used (a day \
         restarted more than 52 times); move them aside"
    )]
    Generations { dir: PathBuf },
}

/// The messages of one MoldUDP64 session.
#[derive(Debug)]
pub struct MessageLog {
    /// `None` until the first message or the attach.
    store: Option<MessageStore>,
    /// Messages published (the store holds them all unless it failed).
    count: u64,
    /// The scratch directory the store is in until it is attached.
    scratch: Option<PathBuf>,
    /// The session's directory, once attached.
    dir: Option<PathBuf>,
    options: StoreOptions,
    /// Messages are counted, not kept (the snapshot agent's shadow).
    counting: bool,
}

impl Default for MessageLog {
    fn default() -> MessageLog {
        MessageLog::new()
    }
}

impl MessageLog {
    /// An empty log (nothing on disk until the first message).
    pub fn new() -> MessageLog {
        MessageLog::with_options(log_store_options())
    }

    /// An empty log whose store has `options`.
    pub fn with_options(options: StoreOptions) -> MessageLog {
        MessageLog {
            store: None,
            count: 0,
            scratch: None,
            dir: None,
            options,
            counting: false,
        }
    }

    /// A log that only counts its messages (for a shadow of the publisher,
    /// which needs the numbering but not the bytes).
    pub fn counting() -> MessageLog {
        let mut log = MessageLog::new();
        log.counting = true;
        log
    }

    /// A counting log that already counted `count` messages.
    pub fn counting_from(count: u64) -> MessageLog {
        let mut log = MessageLog::counting();
        log.count = count;
        log
    }

    /// An empty log of the same kind (the next session's).
    pub fn fresh(&self) -> MessageLog {
        let mut log = MessageLog::with_options(self.options);
        log.counting = self.counting;
        log
    }

    /// Whether `dir` holds a message store.
    pub fn exists_in(dir: &Path) -> bool {
        matches!(store_files(dir), Files::Store)
    }

    /// The log of a session as it was at journal sequence `through`, when
    /// it held `count` messages, continued on the store in `dir`: the store
    /// must hold those messages (it may hold more, which a replay of the
    /// commands after `through` writes again and are cut here), else
    /// [`LogError::NotAtSnapshot`]. A store that was ended (a clean stop
    /// sent End of Session) is not written again: its first `count`
    /// messages are copied to a new store in `next_dir`, where the session
    /// continues under the next name. Returns the log and whether it moved
    /// to `next_dir`.
    pub fn resume(
        dir: &Path,
        next_dir: &Path,
        count: u64,
        through: u64,
    ) -> Result<(MessageLog, bool), LogError> {
        let options = log_store_options();
        let error = |dir: &Path| {
            let dir = dir.to_path_buf();
            move |source| LogError::Store { dir, source }
        };
        let (mut store, _recovery) = MessageStore::open(dir, options).map_err(error(dir))?;
        let stored = store.last_sequence();
        let origin_at = |store: &MessageStore, sequence: u64| -> Result<u64, LogError> {
            Ok(store
                .get(sequence)
                .map_err(error(dir))?
                .map_or(0, |message| message.origin))
        };
        let origin = if count == 0 {
            0
        } else {
            origin_at(&store, count)?
        };
        let next_origin = if stored > count {
            origin_at(&store, count + 1)?
        } else {
            u64::MAX
        };
        if stored < count || origin > through || next_origin <= through {
            return Err(LogError::NotAtSnapshot {
                dir: dir.to_path_buf(),
                through,
                expected: count,
                stored,
                origin,
            });
        }
        let moved = store.is_ended();
        if moved {
            // The day continues under the next name, with the same
            // messages: a fork links the segments wholly before `count`.
            let _ = std::fs::remove_dir_all(next_dir);
            store = store
                .fork(next_dir, count, options)
                .map_err(error(next_dir))?;
        } else if stored > count {
            store.truncate_after_sequence(count).map_err(error(dir))?;
        }
        let log = MessageLog {
            store: Some(store),
            count,
            scratch: None,
            dir: Some(if moved { next_dir } else { dir }.to_path_buf()),
            options,
            counting: false,
        };
        Ok((log, moved))
    }

    /// The sequence number the next message gets.
    pub fn next_sequence(&self) -> u64 {
        self.count + 1
    }

    /// How many messages the log holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes held in memory: the store's fixed budget (0 before the first
    /// message), never more than [`StoreOptions::cache_bytes_max`].
    pub fn bytes(&self) -> usize {
        self.store.as_ref().map_or(0, MessageStore::resident_bytes)
    }

    /// Appends an encoded message caused by the command journaled at
    /// `origin`; returns its sequence number. An error means the store
    /// stopped: the message is counted but not kept.
    pub fn append(&mut self, message: &[u8], origin: u64) -> Result<u64, LogError> {
        self.count += 1;
        if self.counting {
            return Ok(self.count);
        }
        if self.store.is_none() && self.count == 1 {
            let (store, scratch) = self.open_scratch()?;
            self.store = Some(store);
            self.scratch = Some(scratch);
        }
        let Some(store) = self.store.as_mut() else {
            return Ok(self.count);
        };
        if store.last_sequence() + 1 != self.count {
            // The store stopped earlier; nothing after the gap is kept.
            return Ok(self.count);
        }
        match store.append(origin, message) {
            Ok(_) => Ok(self.count),
            Err(source) => Err(LogError::Store {
                dir: store.dir().to_path_buf(),
                source,
            }),
        }
    }

    /// Message `sequence` (from 1), if the log holds it.
    pub fn get(&self, sequence: u64) -> Option<Cow<'_, [u8]>> {
        let message = self.store.as_ref()?.get(sequence).ok()??;
        Some(message.bytes)
    }

    /// The messages from `sequence` on, in order (see [`StoreReader`]).
    pub fn reader(&self, sequence: u64) -> Option<StoreReader<'_>> {
        Some(self.store.as_ref()?.reader(sequence))
    }

    /// What `dir` holds compared with this log — the same messages with
    /// the same origins, as a prefix: `None` if there is no log there.
    pub fn inspect(&self, dir: &Path) -> Result<Option<OnDisk>, LogError> {
        if let Some(store) = self
            .store
            .as_ref()
            .filter(|_| self.dir.as_deref() == Some(dir))
        {
            // This log's own directory: the store open here is the file.
            return Ok(Some(OnDisk {
                messages: store.last_sequence(),
                ended: store.is_ended(),
                disagreement: None,
            }));
        }
        match store_files(dir) {
            Files::None => return Ok(None),
            Files::Foreign => {
                return Ok(Some(OnDisk {
                    messages: 0,
                    ended: false,
                    disagreement: Some(LogError::Foreign {
                        dir: dir.to_path_buf(),
                    }),
                }));
            }
            Files::Store => {}
        }
        let error = |source| LogError::Store {
            dir: dir.to_path_buf(),
            source,
        };
        let (disk, _recovery) = MessageStore::open(dir, self.options).map_err(error)?;
        let disagreement = self.compare(&disk, dir).map_err(error)?;
        Ok(Some(OnDisk {
            messages: disk.last_sequence(),
            ended: disk.is_ended(),
            disagreement,
        }))
    }

    /// The first way `disk` is not a prefix of this log, in the order of
    /// the messages.
    fn compare(&self, disk: &MessageStore, dir: &Path) -> Result<Option<LogError>, StoreError> {
        let mut theirs = disk.reader(1);
        let mut ours = self.store.as_ref().map(|store| store.reader(1));
        while let Some(on_disk) = theirs.next()? {
            if on_disk.sequence > self.count {
                return Ok(Some(LogError::Ahead {
                    dir: dir.to_path_buf(),
                    on_disk: on_disk.sequence,
                    regenerated: self.count,
                }));
            }
            let regenerated = match ours.as_mut() {
                Some(ours) => ours.next()?,
                None => None,
            };
            let same = regenerated.is_some_and(|regenerated| {
                (regenerated.origin, &*regenerated.bytes) == (on_disk.origin, &*on_disk.bytes)
            });
            if !same {
                return Ok(Some(LogError::Differs {
                    dir: dir.to_path_buf(),
                    sequence: on_disk.sequence,
                }));
            }
        }
        Ok(None)
    }

    /// Writes the log to the store in `dir` from now on: what the
    /// directory holds must be a prefix of this log, not ended (see
    /// [`inspect`](Self::inspect)); the rest is appended.
    pub fn attach(&mut self, dir: &Path) -> Result<(), LogError> {
        if let Some(on_disk) = self.inspect(dir)? {
            if let Some(disagreement) = on_disk.disagreement {
                return Err(disagreement);
            }
            if on_disk.ended {
                return Err(LogError::Ended {
                    dir: dir.to_path_buf(),
                });
            }
        }
        if self.dir.as_deref() == Some(dir) {
            return Ok(());
        }
        let error = |source| LogError::Store {
            dir: dir.to_path_buf(),
            source,
        };
        let (mut disk, _recovery) = MessageStore::open(dir, self.options).map_err(error)?;
        if let Some(store) = self.store.as_ref() {
            let mut reader = store.reader(disk.next_sequence());
            while let Some(message) = reader.next().map_err(error)? {
                disk.append(message.origin, &message.bytes).map_err(error)?;
            }
        }
        disk.flush().map_err(error)?;
        self.replace_store(disk);
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }

    /// Marks the session ended in its store (its End of Session was sent:
    /// no message will be added to it). A log not attached has no file to
    /// mark.
    pub fn end(&mut self) -> Result<(), LogError> {
        match (self.store.as_mut(), self.dir.as_ref()) {
            (Some(store), Some(dir)) => store.end().map_err(|source| LogError::Store {
                dir: dir.clone(),
                source,
            }),
            _ => Ok(()),
        }
    }

    /// Writes what the store buffers to its files.
    pub fn flush(&mut self) -> Result<(), LogError> {
        match self.store.as_mut() {
            Some(store) => store.flush().map_err(|source| LogError::Store {
                dir: store.dir().to_path_buf(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Makes the store durable, all its files (see
    /// [`MessageStore::sync_all`]).
    pub fn sync_all(&mut self) -> Result<(), LogError> {
        match self.store.as_mut() {
            Some(store) => store.sync_all().map_err(|source| LogError::Store {
                dir: store.dir().to_path_buf(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// The directory written to, once attached.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn open_scratch(&self) -> Result<(MessageStore, PathBuf), LogError> {
        static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);
        let scratch = std::env::temp_dir().join(format!(
            "exchange-md-log-{}-{}",
            std::process::id(),
            SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&scratch);
        let (store, _recovery) =
            MessageStore::open(&scratch, self.options).map_err(|source| LogError::Store {
                dir: scratch.clone(),
                source,
            })?;
        Ok((store, scratch))
    }

    fn replace_store(&mut self, store: MessageStore) {
        drop(self.store.replace(store));
        self.remove_scratch();
    }

    fn remove_scratch(&mut self) {
        if let Some(scratch) = self.scratch.take()
            && let Err(error) = std::fs::remove_dir_all(&scratch)
        {
            tracing::warn!(%error, dir = %scratch.display(), "removing a scratch message log");
        }
    }
}

impl Drop for MessageLog {
    fn drop(&mut self) {
        if self.scratch.is_some() {
            drop(self.store.take());
            self.remove_scratch();
        }
    }
}

/// What a session's directory holds.
enum Files {
    None,
    Store,
    Foreign,
}

/// Whether `dir` holds a store, nothing, or files a store does not make
/// (an older format's journal segments and `LOCK`).
fn store_files(dir: &Path) -> Files {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Files::None;
    };
    let mut found = Files::None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".msg") || name.ends_with(".idx") {
            found = Files::Store;
        } else {
            return Files::Foreign;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "md-log-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn messages_by_sequence() {
        let mut log = MessageLog::new();
        assert_eq!(log.next_sequence(), 1);
        assert_eq!(log.get(0), None);
        assert_eq!(log.get(1), None);
        assert_eq!(log.append(b"abc", 0).unwrap(), 1);
        assert_eq!(log.append(b"", 0).unwrap(), 2);
        assert_eq!(log.append(b"defg", 0).unwrap(), 3);
        assert_eq!(log.get(1).as_deref(), Some(&b"abc"[..]));
        assert_eq!(log.get(2).as_deref(), Some(&b""[..]));
        assert_eq!(log.get(3).as_deref(), Some(&b"defg"[..]));
        assert_eq!(log.get(4), None);
        assert_eq!(log.next_sequence(), 4);
        assert!(log.bytes() > 0 && log.bytes() <= LOG_CACHE_BYTES_MAX);
    }

    #[test]
    fn attach_writes_through_and_inspect_compares() {
        let dir = temp_dir("attach");
        let mut log = MessageLog::new();
        assert!(log.inspect(&dir).unwrap().is_none());
        log.append(b"one", 1).unwrap();
        log.attach(&dir).unwrap();
        log.append(b"two", 2).unwrap();
        drop(log);

        // A regenerated log that continues the one on disk: accepted, and
        // the rest appended.
        let mut again = MessageLog::new();
        for (origin, message) in [(1, &b"one"[..]), (2, b"two"), (3, b"three")] {
            again.append(message, origin).unwrap();
        }
        let on_disk = again.inspect(&dir).unwrap().unwrap();
        assert_eq!((on_disk.messages, on_disk.ended), (2, false));
        assert!(on_disk.disagreement.is_none());
        again.attach(&dir).unwrap();
        again.end().unwrap();
        let (disk, recovery) = MessageStore::open(&dir, log_store_options()).unwrap();
        assert_eq!((recovery.last_sequence, recovery.ended), (3, true));
        drop(disk);
        let on_disk = again.inspect(&dir).unwrap().unwrap();
        assert_eq!((on_disk.messages, on_disk.ended), (3, true));
        assert!(matches!(again.attach(&dir), Err(LogError::Ended { .. })));

        // One that disagrees (in a message or in its origin), or is
        // shorter than the file.
        let mut other = MessageLog::new();
        for (origin, message) in [(1, &b"one"[..]), (2, b"TWO"), (3, b"three")] {
            other.append(message, origin).unwrap();
        }
        let on_disk = other.inspect(&dir).unwrap().unwrap();
        assert!(matches!(
            on_disk.disagreement,
            Some(LogError::Differs { sequence: 2, .. })
        ));
        assert!(matches!(other.attach(&dir), Err(LogError::Differs { .. })));
        let mut origins = MessageLog::new();
        for (origin, message) in [(1, &b"one"[..]), (1, b"two"), (3, b"three")] {
            origins.append(message, origin).unwrap();
        }
        assert!(matches!(
            origins.inspect(&dir).unwrap().unwrap().disagreement,
            Some(LogError::Differs { sequence: 2, .. })
        ));
        let mut short = MessageLog::new();
        short.append(b"one", 1).unwrap();
        assert!(matches!(
            short.inspect(&dir).unwrap().unwrap().disagreement,
            Some(LogError::Ahead { on_disk: 2, .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_is_the_store_budget_whatever_the_length() {
        let mut log = MessageLog::new();
        log.append(b"first", 1).unwrap();
        let resident = log.bytes();
        assert!(resident <= LOG_CACHE_BYTES_MAX);
        for origin in 2..=300_000u64 {
            log.append(&origin.to_le_bytes().repeat(4), origin).unwrap();
        }
        assert_eq!(log.bytes(), resident);
        // The oldest come back from the files, the newest from the cache.
        assert_eq!(log.get(1).as_deref(), Some(&b"first"[..]));
        for sequence in [2, 150_000, 300_000] {
            assert_eq!(
                log.get(sequence).as_deref(),
                Some(&sequence.to_le_bytes().repeat(4)[..])
            );
        }
    }

    #[test]
    fn after_a_crash_the_regenerated_log_continues_the_store() {
        let dir = temp_dir("crash");
        let message = |origin: u64| origin.to_le_bytes().repeat(3);
        let mut log = MessageLog::new();
        log.attach(&dir).unwrap();
        for origin in 1..=100_000 {
            log.append(&message(origin), origin).unwrap();
        }
        // A crash: what the store still buffered is lost.
        std::mem::forget(log);
        let mut again = MessageLog::new();
        for origin in 1..=120_000 {
            again.append(&message(origin), origin).unwrap();
        }
        let on_disk = again.inspect(&dir).unwrap().unwrap();
        assert!(on_disk.messages > 0 && on_disk.messages < 100_000);
        assert!(on_disk.disagreement.is_none() && !on_disk.ended);
        again.attach(&dir).unwrap();
        drop(again);
        let (disk, recovery) = MessageStore::open(&dir, log_store_options()).unwrap();
        assert_eq!(
            (recovery.last_sequence, recovery.last_origin),
            (120_000, 120_000)
        );
        let mut reader = disk.reader(1);
        while let Some(stored) = reader.next().unwrap() {
            assert_eq!(&*stored.bytes, &message(stored.sequence)[..]);
        }
        drop(reader);
        drop(disk);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A log of `count` messages in `dir`, message n caused by command 2n.
    fn written(dir: &Path, count: u64, ended: bool) {
        let mut log = MessageLog::new();
        log.attach(dir).unwrap();
        for n in 1..=count {
            log.append(&n.to_le_bytes(), 2 * n).unwrap();
        }
        if ended {
            log.end().unwrap();
        }
        log.flush().unwrap();
    }

    fn read_all(dir: &Path) -> Vec<(u64, Vec<u8>)> {
        let (store, _) = MessageStore::open(dir, log_store_options()).unwrap();
        let mut reader = store.reader(1);
        let mut all = Vec::new();
        while let Some(message) = reader.next().unwrap() {
            all.push((message.origin, message.bytes.into_owned()));
        }
        all
    }

    #[test]
    fn a_resumed_log_continues_its_store_or_the_next_one_if_ended() {
        let (dir, next) = (temp_dir("resume"), temp_dir("resume-next"));
        written(&dir, 50, false);
        // As of command 61: 30 messages (origins 2..=60); 31.. are cut.
        let (mut log, moved) = MessageLog::resume(&dir, &next, 30, 61).unwrap();
        assert!(!moved);
        assert_eq!(log.next_sequence(), 31);
        assert_eq!(log.append(b"new", 62).unwrap(), 31);
        drop(log);
        let all = read_all(&dir);
        assert_eq!(all.len(), 31);
        assert_eq!(all[29], (60, 30u64.to_le_bytes().to_vec()));
        assert_eq!(all[30], (62, b"new".to_vec()));
        assert!(!next.exists());

        // An ended session is copied up to the snapshot into the next one.
        let ended = temp_dir("resume-ended");
        written(&ended, 50, true);
        let (mut log, moved) = MessageLog::resume(&ended, &next, 20, 41).unwrap();
        assert!(moved);
        assert_eq!(log.dir(), Some(next.as_path()));
        assert_eq!(log.append(b"more", 42).unwrap(), 21);
        drop(log);
        let copied = read_all(&next);
        assert_eq!(copied[..20], read_all(&ended)[..20]);
        assert_eq!(copied[20], (42, b"more".to_vec()));
        assert_eq!(
            read_all(&ended).len(),
            50,
            "the ended log is left as it was"
        );
        for dir in [dir, next, ended] {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn a_log_short_of_the_snapshot_is_not_resumed() {
        let (dir, next) = (temp_dir("short"), temp_dir("short-next"));
        written(&dir, 10, false);
        // 20 messages expected by command 40; 10 stored.
        let error = MessageLog::resume(&dir, &next, 20, 40).unwrap_err();
        assert!(
            matches!(
                error,
                LogError::NotAtSnapshot {
                    expected: 20,
                    stored: 10,
                    ..
                }
            ),
            "{error}"
        );
        // 5 messages by command 12: the store's 6th (origin 12) says
        // otherwise.
        let error = MessageLog::resume(&dir, &next, 5, 12).unwrap_err();
        assert!(matches!(error, LogError::NotAtSnapshot { .. }), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_counting_log_numbers_without_a_store() {
        let mut log = MessageLog::counting();
        assert_eq!(log.append(b"a", 1).unwrap(), 1);
        assert_eq!(log.append(b"b", 1).unwrap(), 2);
        assert_eq!(log.get(1), None);
        assert!(log.scratch.is_none() && log.store.is_none());
        let fresh = log.fresh();
        assert!(fresh.counting && fresh.is_empty());
    }

    #[test]
    fn a_directory_of_another_format_is_foreign_and_scratch_is_removed() {
        let dir = temp_dir("foreign");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("LOCK"), b"").unwrap();
        let mut log = MessageLog::new();
        log.append(b"one", 1).unwrap();
        let scratch = log.scratch.clone().expect("a scratch store");
        assert!(scratch.exists());
        assert!(matches!(
            log.inspect(&dir).unwrap().unwrap().disagreement,
            Some(LogError::Foreign { .. })
        ));
        drop(log);
        assert!(!scratch.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
