//! Every session's numbered messages for the trading day, owned by neither
//! direction: the outbound proxy appends, sessions read from where their
//! client is. A login has one stream per port ([`StreamKey`]); message 1 is
//! the first of the day, and a client that logs in again — after a restart
//! too — resumes where it asks.
//!
//! Why on disk: a stream is replayed from any point all day, so kept in
//! memory it grows with the day's volume. Each stream is a
//! [`journal::MessageStore`] under `root/<session name>/<login>/<port>/`
//! (`root` is `data_dir/streams`), with a small fixed memory budget
//! ([`StreamsConfig::cache_bytes_max`]): recent messages come from its
//! cache, older ones from the files, and nothing else grows with the
//! messages. A store is opened when its stream gets its first message of
//! the run (opening is cheap) and stays open for the day.
//!
//! The stores are derived from the journal, like the streams were: a
//! message is sent only once its command is durable in the journal, so the
//! store is never synced. At start-up the journal is replayed through the
//! outbound proxy as before, but a message the store already holds (by
//! position; its origin checked) is not written again: only the missing
//! tail is appended, and [`SessionStreams::finish_replay`] cuts what the
//! store holds beyond the journal. A re-login after a crash therefore gets
//! the bytes the journal implies, as it did when the streams were rebuilt
//! in memory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use journal::{MessageStore, StoreError, StoreOptions, StoreWriter};
// Few keys, looked up per message, none chosen by a client: FxHash.
use rustc_hash::FxHashMap as HashMap;

use super::origin::Channel;
use crate::ouch::Outbound;

/// Where a stream belongs: a port and a login (by its index in the login
/// table).
pub type StreamKey = (Channel, usize);

/// Where the streams live and how much memory each may hold.
#[derive(Clone, Debug)]
pub struct StreamsConfig {
    /// `data_dir/streams`: one directory per trading day's session name.
    pub root: PathBuf,
    /// The first part of the session names (see
    /// [`wire::trading_day::session_name`]).
    pub session_prefix: String,
    /// The login table's names, by index (a stream's directory).
    pub login_names: Vec<String>,
    /// Each open stream's memory budget (its store's
    /// [`StoreOptions::cache_bytes_max`]).
    pub cache_bytes_max: usize,
    /// Write-behind: the stores hand their full write buffers to this
    /// writer (see [`journal::StoreWriter`]; `serve` steps it in the engine
    /// thread's idle time); `None`: the gateway's thread writes them.
    pub writer: Option<StoreWriter>,
}

/// Why a stream could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("stream store: {0}")]
    Store(#[from] StoreError),
    /// The store on disk does not hold the stream as it was at the edges'
    /// snapshot a restart resumes from (its unsynced tail was lost with the
    /// machine, or it was removed): the streams are rebuilt from sequence 1.
    #[error(
        "the stream store {} does not hold the stream as of journal sequence {through} \
         ({expected} messages expected, {stored} stored, the last's origin {origin})",
        dir.display()
    )]
    NotAtSnapshot {
        dir: PathBuf,
        through: u64,
        expected: u64,
        stored: u64,
        origin: u64,
    },
    /// The store on disk holds, at `sequence`, a message of another command
    /// than the journal replay produces: it was not derived from this
    /// journal. Remove the day's directory to regenerate it.
    #[error(
        "the stream store {} disagrees with the journal at message {sequence} \
         (stored origin {stored}, journal {journal}); remove it to regenerate",
        dir.display()
    )]
    Disagrees {
        dir: PathBuf,
        sequence: u64,
        stored: u64,
        journal: u64,
    },
}

/// Where the outbound proxy puts each session's messages: the streams on
/// disk ([`SessionStreams`]), or only their lengths ([`StreamCounts`], what
/// the snapshot agent's shadow of the gateway keeps).
pub trait StreamSink {
    /// Adds `message` to the stream of `key`, caused by the command with
    /// journal sequence `origin_sequence`; returns its sequence number.
    fn append(
        &mut self,
        key: StreamKey,
        message: &[u8],
        origin_sequence: u64,
    ) -> Result<u64, StreamError>;

    /// Adds an OUCH message: encoded into `scratch`, then appended (a sink
    /// that keeps only lengths need not encode it).
    fn append_ouch(
        &mut self,
        key: StreamKey,
        message: &Outbound,
        scratch: &mut Vec<u8>,
        origin_sequence: u64,
    ) -> Result<u64, StreamError> {
        scratch.clear();
        message.encode(scratch);
        self.append(key, scratch, origin_sequence)
    }
}

impl StreamSink for SessionStreams {
    fn append(
        &mut self,
        key: StreamKey,
        message: &[u8],
        origin_sequence: u64,
    ) -> Result<u64, StreamError> {
        SessionStreams::append(self, key, message, origin_sequence)
    }
}

/// One stream's length, as an edges' snapshot records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamLength {
    pub channel: Channel,
    /// The login's index in the login table.
    pub login: u32,
    /// Messages in the stream.
    pub len: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// The streams of the trading day as lengths only: what the streams were
/// at a sequence, for an edges' snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StreamsState {
    /// End-of-day commands applied (the day's directory).
    pub day: u64,
    /// Every stream with a message, in key order.
    pub streams: Vec<StreamLength>,
}

/// The lengths of every stream of the day, without their messages.
#[derive(Debug, Default)]
pub struct StreamCounts {
    day: u64,
    lengths: HashMap<StreamKey, (u64, u64)>,
}

impl StreamCounts {
    pub fn new() -> StreamCounts {
        StreamCounts::default()
    }

    /// The counts of `state`.
    pub fn from_state(state: &StreamsState) -> StreamCounts {
        StreamCounts {
            day: state.day,
            lengths: state
                .streams
                .iter()
                .map(|stream| {
                    (
                        (stream.channel, stream.login as usize),
                        (stream.len, stream.bytes),
                    )
                })
                .collect(),
        }
    }

    /// The trading day ended: the next day's streams start empty.
    pub fn clear(&mut self) {
        self.lengths.clear();
        self.day += 1;
    }

    /// One more message of `bytes` in the stream of `key`; its sequence
    /// number.
    fn count(&mut self, key: StreamKey, bytes: usize) -> u64 {
        let (len, total) = self.lengths.entry(key).or_default();
        *len += 1;
        *total += bytes as u64;
        *len
    }

    pub fn state(&self) -> StreamsState {
        let mut streams: Vec<StreamLength> = self
            .lengths
            .iter()
            .map(|(&(channel, login), &(len, bytes))| StreamLength {
                channel,
                login: login as u32,
                len,
                bytes,
            })
            .collect();
        streams.sort_by_key(|stream| (stream.channel, stream.login));
        StreamsState {
            day: self.day,
            streams,
        }
    }
}

impl StreamSink for StreamCounts {
    fn append(
        &mut self,
        key: StreamKey,
        message: &[u8],
        _origin_sequence: u64,
    ) -> Result<u64, StreamError> {
        Ok(self.count(key, message.len()))
    }

    fn append_ouch(
        &mut self,
        key: StreamKey,
        message: &Outbound,
        _scratch: &mut Vec<u8>,
        _origin_sequence: u64,
    ) -> Result<u64, StreamError> {
        Ok(self.count(key, message.encoded_len()))
    }
}

/// One stream: its store and how many of its messages this run has seen.
#[derive(Debug)]
struct Stream {
    store: MessageStore,
    /// Messages of the stream so far (what `len` reports). Below the store's
    /// last sequence only during the start-up replay, while it walks
    /// messages the store already holds.
    len: u64,
    /// Bytes of messages `1..=len`.
    bytes: u64,
}

/// The streams of every login and port of the current trading day.
#[derive(Debug)]
pub struct SessionStreams {
    config: StreamsConfig,
    day: u64,
    streams: HashMap<StreamKey, Stream>,
    /// Removed on drop (the tests' streams).
    temporary: bool,
}

impl SessionStreams {
    /// The streams of trading day 0 (the first of the journal); nothing is
    /// opened or created until a stream gets a message.
    pub fn new(config: StreamsConfig) -> SessionStreams {
        SessionStreams {
            config,
            day: 0,
            streams: HashMap::default(),
            temporary: false,
        }
    }

    /// The streams as they were at journal sequence `through` (an edges'
    /// snapshot's `state`), on the stores of `config`'s directory: each
    /// store must hold its stream's messages through `through` (it may
    /// hold more; a replay of the commands after `through` goes over them
    /// as after a crash). A store that does not is
    /// [`StreamError::NotAtSnapshot`].
    pub fn resume(
        config: StreamsConfig,
        state: &StreamsState,
        through: u64,
    ) -> Result<SessionStreams, StreamError> {
        let mut streams = SessionStreams::new(config);
        streams.day = state.day;
        for length in &state.streams {
            let stream = streams.stream_mut((length.channel, length.login as usize))?;
            let stored = stream.store.last_sequence();
            let origin_at = |sequence: u64| -> Result<u64, StreamError> {
                Ok(stream
                    .store
                    .get(sequence)?
                    .map_or(0, |message| message.origin))
            };
            let origin = if length.len == 0 {
                0
            } else {
                origin_at(length.len)?
            };
            let next_origin = if stored > length.len {
                origin_at(length.len + 1)?
            } else {
                u64::MAX
            };
            if stored < length.len || origin > through || next_origin <= through {
                return Err(StreamError::NotAtSnapshot {
                    dir: stream.store.dir().to_owned(),
                    through,
                    expected: length.len,
                    stored,
                    origin,
                });
            }
            stream.len = length.len;
            stream.bytes = length.bytes;
        }
        Ok(streams)
    }

    /// Streams in a fresh directory under the system's temporary one,
    /// removed when dropped, with a write-behind writer (for tests).
    #[cfg(test)]
    pub(crate) fn temporary(login_names: Vec<String>) -> SessionStreams {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "exchange-streams-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut streams = SessionStreams::new(StreamsConfig {
            root,
            session_prefix: "700101".to_owned(),
            login_names,
            cache_bytes_max: 64 << 10,
            // Never stepped: every hand-off is written by its store at the
            // next one (or when it reads its tail), so the tests cover
            // write-behind's hand-offs and settling.
            writer: Some(StoreWriter::new()),
        });
        streams.temporary = true;
        streams
    }

    /// Adds `message` to the stream of `key`, caused by the command with
    /// journal sequence `origin_sequence`; returns its sequence number.
    /// During the start-up replay a message the store already holds is
    /// checked (its origin: every one in debug builds, the last one
    /// otherwise) and not written again.
    pub fn append(
        &mut self,
        key: StreamKey,
        message: &[u8],
        origin_sequence: u64,
    ) -> Result<u64, StreamError> {
        assert!(!message.is_empty(), "a stream message has bytes");
        let stream = self.stream_mut(key)?;
        let sequence = stream.len + 1;
        if sequence <= stream.store.last_sequence() {
            let check = cfg!(debug_assertions) || sequence == stream.store.last_sequence();
            if check {
                let stored = stream
                    .store
                    .get(sequence)?
                    .map_or(0, |stored| stored.origin);
                if stored != origin_sequence {
                    return Err(StreamError::Disagrees {
                        dir: stream.store.dir().to_owned(),
                        sequence,
                        stored,
                        journal: origin_sequence,
                    });
                }
            }
        } else {
            stream.store.append(origin_sequence, message)?;
        }
        stream.len = sequence;
        stream.bytes += message.len() as u64;
        Ok(sequence)
    }

    /// The start-up replay is over: a store holding more than the journal
    /// implies (a journal cut back further than the store) is cut to it.
    pub fn finish_replay(&mut self) -> Result<(), StreamError> {
        for stream in self.streams.values_mut() {
            if stream.store.last_sequence() > stream.len {
                tracing::warn!(dir = %stream.store.dir().display(), kept = stream.len,
                    stored = stream.store.last_sequence(),
                    "stream store ahead of the journal: cut back");
                stream.store.truncate_after_sequence(stream.len)?;
            }
        }
        // Stores on disk that the replay never reached hold nothing the
        // journal implies.
        for index in 0..self.config.login_names.len() {
            for channel in [Channel::OrderEntry, Channel::Funding] {
                let key = (channel, index);
                if !self.streams.contains_key(&key) && self.dir(key).exists() {
                    self.stream_mut(key)?;
                    if let Some(stream) = self.streams.get_mut(&key) {
                        stream.store.truncate_after_sequence(0)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes what the open stores buffer to their files (not synced: the
    /// page cache outlives the process), or hands it to the writer
    /// ([`StreamsConfig::writer`]), which writes it soon. The gateway does
    /// so every tick, so that a restart after a crash finds the streams on
    /// disk as of a recent snapshot and resumes from it (see
    /// `tools::edges`).
    pub fn flush(&mut self) -> Result<(), StreamError> {
        for stream in self.streams.values_mut() {
            stream.store.flush_behind()?;
        }
        Ok(())
    }

    /// The writer the stores hand their buffers to, if any.
    pub fn writer(&self) -> Option<&StoreWriter> {
        self.config.writer.as_ref()
    }

    /// Makes every open store durable (all its files): see
    /// [`journal::MessageStore::sync_all`].
    pub fn sync_all(&mut self) -> Result<(), StreamError> {
        for stream in self.streams.values_mut() {
            stream.store.sync_all()?;
        }
        Ok(())
    }

    /// The current trading day's directory (every stream of the day is
    /// under it).
    pub fn day_dir(&self) -> PathBuf {
        let session = wire::trading_day::session_name(&self.config.session_prefix, self.day);
        day_dir(&self.config.root, &session)
    }

    /// Messages in the stream of `key` (its last sequence number).
    pub fn len(&self, key: StreamKey) -> u64 {
        self.streams.get(&key).map_or(0, |stream| stream.len)
    }

    /// Message `sequence` (from 1) of the stream of `key`: from the store's
    /// cache if recent, else read from its files. A store that fails to
    /// read is logged and the message reported missing (the session waits).
    pub fn message(&self, key: StreamKey, sequence: u64) -> Option<Cow<'_, [u8]>> {
        let stream = self.streams.get(&key)?;
        if sequence > stream.len {
            return None;
        }
        match stream.store.get(sequence) {
            Ok(message) => message.map(|message| message.bytes),
            Err(error) => {
                tracing::error!(%error, sequence, "stream store read failed");
                None
            }
        }
    }

    /// Bytes of the messages of `key` from `sequence` on: exact for the
    /// whole stream and for an empty tail, otherwise the number of
    /// messages times their mean size (the stream keeps no per-message
    /// lengths in memory). It decides only whether a client is too far
    /// behind.
    pub fn bytes_from(&self, key: StreamKey, sequence: u64) -> usize {
        let Some(stream) = self.streams.get(&key) else {
            return 0;
        };
        let first = sequence.max(1);
        if first > stream.len {
            return 0;
        }
        if first == 1 {
            return stream.bytes as usize;
        }
        let messages = u128::from(stream.len - first + 1);
        (messages * u128::from(stream.bytes) / u128::from(stream.len)) as usize
    }

    /// Memory the open stores hold for their data: at most the open
    /// streams (two per login at most) times `cache_bytes_max`.
    pub fn resident_bytes(&self) -> usize {
        self.streams
            .values()
            .map(|stream| stream.store.resident_bytes())
            .sum()
    }

    /// Streams open (each holding at most `cache_bytes_max`).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The current trading day ends: its stores are flushed and closed (they
    /// stay on disk); the next day's streams number from 1 in the next
    /// session name's directory.
    pub fn clear(&mut self) -> Result<(), StreamError> {
        self.finish_replay()?;
        for (_, stream) in self.streams.drain() {
            stream.store.close()?;
        }
        self.day += 1;
        Ok(())
    }

    /// The directory of `key`'s store for the current day.
    pub fn dir(&self, (channel, index): StreamKey) -> PathBuf {
        let session = wire::trading_day::session_name(&self.config.session_prefix, self.day);
        let login = self
            .config
            .login_names
            .get(index)
            .filter(|name| safe_file_name(name))
            .cloned()
            .unwrap_or_else(|| format!("login-{index}"));
        let port = match channel {
            Channel::OrderEntry => "ouch",
            Channel::Funding => "funding",
        };
        day_dir(&self.config.root, &session).join(login).join(port)
    }

    fn stream_mut(&mut self, key: StreamKey) -> Result<&mut Stream, StreamError> {
        if !self.streams.contains_key(&key) {
            let options = StoreOptions {
                cache_bytes_max: self.config.cache_bytes_max,
                ..StoreOptions::default()
            };
            let dir = self.dir(key);
            let (store, recovery) = match &self.config.writer {
                Some(writer) => MessageStore::open_with_writer(&dir, options, writer.clone())?,
                None => MessageStore::open(&dir, options)?,
            };
            if recovery.truncated_bytes > 0 || recovery.segments_removed > 0 {
                tracing::warn!(dir = %store.dir().display(), ?recovery,
                    "stream store recovered: its tail is regenerated from the journal");
            }
            let stream = Stream {
                store,
                len: 0,
                bytes: 0,
            };
            self.streams.insert(key, stream);
        }
        Ok(self
            .streams
            .get_mut(&key)
            .expect("inserted above if missing"))
    }
}

impl Drop for SessionStreams {
    fn drop(&mut self) {
        if self.temporary {
            self.streams.clear();
            let _ = std::fs::remove_dir_all(&self.config.root);
        }
    }
}

/// `root/<session name>` (the name's padding spaces dropped).
fn day_dir(root: &Path, session: &[u8]) -> PathBuf {
    root.join(String::from_utf8_lossy(session).trim())
}

/// A login name usable as a directory name as it is.
fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: StreamKey = (Channel::OrderEntry, 0);
    const OTHER: StreamKey = (Channel::Funding, 0);

    fn streams() -> SessionStreams {
        SessionStreams::temporary(vec!["alice".to_owned()])
    }

    fn message(streams: &SessionStreams, key: StreamKey, sequence: u64) -> Option<Vec<u8>> {
        streams
            .message(key, sequence)
            .map(|bytes| bytes.into_owned())
    }

    #[test]
    fn messages_are_numbered_from_one_per_key() {
        let mut streams = streams();
        assert_eq!(streams.len(KEY), 0);
        assert_eq!(streams.append(KEY, b"abc", 1).unwrap(), 1);
        assert_eq!(streams.append(KEY, b"de", 2).unwrap(), 2);
        assert_eq!(streams.append(OTHER, b"f", 2).unwrap(), 1);
        assert_eq!(streams.len(KEY), 2);
        assert_eq!(message(&streams, KEY, 0), None);
        assert_eq!(message(&streams, KEY, 1).as_deref(), Some(&b"abc"[..]));
        assert_eq!(message(&streams, KEY, 2).as_deref(), Some(&b"de"[..]));
        assert_eq!(message(&streams, KEY, 3), None);
        assert_eq!(message(&streams, OTHER, 1).as_deref(), Some(&b"f"[..]));
    }

    #[test]
    fn bytes_from_counts_the_unsent_tail() {
        let mut streams = streams();
        streams.append(KEY, b"abc", 1).unwrap();
        streams.append(KEY, b"de", 1).unwrap();
        assert_eq!(streams.bytes_from(KEY, 0), 5);
        assert_eq!(streams.bytes_from(KEY, 1), 5);
        assert_eq!(streams.bytes_from(KEY, 2), 2);
        assert_eq!(streams.bytes_from(KEY, 3), 0);
        assert_eq!(streams.bytes_from(OTHER, 1), 0);
    }

    #[test]
    fn clear_starts_a_new_day() {
        let mut streams = streams();
        streams.append(KEY, b"abc", 1).unwrap();
        let first_day = streams.dir(KEY);
        streams.clear().unwrap();
        assert_eq!(streams.len(KEY), 0);
        assert_eq!(streams.append(KEY, b"x", 2).unwrap(), 1);
        assert_ne!(streams.dir(KEY), first_day);
        assert!(first_day.exists(), "an old day stays on disk");
    }

    /// Appends `count` messages as a replay of the same journal would.
    fn replay(streams: &mut SessionStreams, count: u64) {
        for origin in 1..=count {
            let bytes = format!("message {origin}");
            assert_eq!(
                streams.append(KEY, bytes.as_bytes(), origin).unwrap(),
                origin
            );
        }
    }

    fn reopened(streams: &SessionStreams) -> SessionStreams {
        let mut config = streams.config.clone();
        config.cache_bytes_max = 4096;
        SessionStreams::new(config)
    }

    #[test]
    fn a_restart_skips_what_the_store_holds_and_appends_the_rest() {
        let mut first = streams();
        replay(&mut first, 100);
        let mut second = reopened(&first);
        first.streams.clear(); // drop (flush) the first run's stores
        replay(&mut second, 150);
        second.finish_replay().unwrap();
        assert_eq!(second.len(KEY), 150);
        for sequence in [1, 50, 100, 101, 150] {
            let expected = format!("message {sequence}");
            assert_eq!(
                message(&second, KEY, sequence).as_deref(),
                Some(expected.as_bytes())
            );
        }
        drop(second);
    }

    #[test]
    fn a_store_ahead_of_the_journal_is_cut_back() {
        let mut first = streams();
        replay(&mut first, 100);
        let mut second = reopened(&first);
        first.streams.clear();
        replay(&mut second, 60);
        second.finish_replay().unwrap();
        assert_eq!(second.len(KEY), 60);
        assert_eq!(message(&second, KEY, 61), None);
        assert_eq!(second.append(KEY, b"new", 61).unwrap(), 61);
        assert_eq!(message(&second, KEY, 61).as_deref(), Some(&b"new"[..]));
    }

    /// The streams' lengths after `count` replayed messages, as a shadow
    /// counting the same appends has them.
    fn counted(count: u64) -> StreamsState {
        let mut counts = StreamCounts::new();
        for origin in 1..=count {
            let bytes = format!("message {origin}");
            counts.append(KEY, bytes.as_bytes(), origin).unwrap();
        }
        counts.state()
    }

    #[test]
    fn counts_follow_the_streams_and_restart_each_day() {
        let mut streams = streams();
        replay(&mut streams, 40);
        let state = counted(40);
        assert_eq!(state.day, 0);
        assert_eq!(
            state.streams,
            vec![StreamLength {
                channel: Channel::OrderEntry,
                login: 0,
                len: 40,
                bytes: streams.bytes_from(KEY, 1) as u64,
            }]
        );
        let mut counts = StreamCounts::from_state(&state);
        assert_eq!(counts.state(), state, "a round trip");
        counts.clear();
        assert_eq!(counts.state().day, 1);
        assert!(counts.state().streams.is_empty());
    }

    #[test]
    fn a_resumed_stream_continues_from_the_snapshot() {
        let mut first = streams();
        replay(&mut first, 100);
        let mut config = first.config.clone();
        config.cache_bytes_max = 4096;
        first.streams.clear();
        // Resumed as of sequence 60: the replay of 61.. goes over what the
        // store holds, then appends; what it no longer implies is cut.
        let mut second = SessionStreams::resume(config, &counted(60), 60).unwrap();
        assert_eq!(second.len(KEY), 60);
        assert_eq!(second.bytes_from(KEY, 1), {
            (1..=60)
                .map(|n| format!("message {n}").len())
                .sum::<usize>()
        });
        for origin in 61..=80 {
            let bytes = format!("message {origin}");
            assert_eq!(
                second.append(KEY, bytes.as_bytes(), origin).unwrap(),
                origin
            );
        }
        second.finish_replay().unwrap();
        assert_eq!(second.len(KEY), 80);
        assert_eq!(message(&second, KEY, 81), None);
        assert_eq!(
            message(&second, KEY, 80).as_deref(),
            Some(&b"message 80"[..])
        );
    }

    #[test]
    fn a_store_short_of_the_snapshot_is_not_resumed() {
        let mut first = streams();
        replay(&mut first, 30);
        let config = first.config.clone();
        first.streams.clear();
        // The snapshot says 50 messages by sequence 50; the store has 30.
        let error = SessionStreams::resume(config.clone(), &counted(50), 50).unwrap_err();
        assert!(
            matches!(
                error,
                StreamError::NotAtSnapshot {
                    expected: 50,
                    stored: 30,
                    ..
                }
            ),
            "{error}"
        );
        // A snapshot whose lengths put message 31 before its sequence: the
        // store's message 31 would have to have an origin above it.
        let error = SessionStreams::resume(config, &counted(20), 25).unwrap_err();
        assert!(
            matches!(error, StreamError::NotAtSnapshot { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_store_of_another_journal_is_refused() {
        let mut first = streams();
        replay(&mut first, 10);
        let mut second = reopened(&first);
        first.streams.clear();
        let error = second.append(KEY, b"other", 7).unwrap_err();
        assert!(
            matches!(error, StreamError::Disagrees { sequence: 1, .. }),
            "{error}"
        );
    }

    #[test]
    fn memory_stays_within_the_budget_whatever_the_volume() {
        let names = (0..4).map(|index| format!("login{index}")).collect();
        let mut streams = SessionStreams::temporary(names);
        let budget = streams.config.cache_bytes_max;
        // Logins × ports: the documented bound.
        let bound = 4 * 2 * budget;
        let mut seed = 0x5eed_u64;
        let mut dice = |below: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % below
        };
        let mut expected: Vec<(StreamKey, u64, Vec<u8>)> = Vec::new();
        for origin in 1..=200_000u64 {
            let channel = if dice(4) == 0 {
                Channel::Funding
            } else {
                Channel::OrderEntry
            };
            let key = (channel, dice(4) as usize);
            let bytes = vec![origin as u8; 1 + dice(120) as usize];
            let sequence = streams.append(key, &bytes, origin).unwrap();
            if origin % 1_000 == 0 {
                expected.push((key, sequence, bytes));
                assert!(streams.resident_bytes() <= bound);
            }
        }
        assert_eq!(streams.open_streams(), 8);
        assert!(streams.resident_bytes() <= bound);
        for (key, sequence, bytes) in &expected {
            assert_eq!(message(&streams, *key, *sequence).as_ref(), Some(bytes));
        }
    }
}
