//! Every session's numbered messages for the trading day, owned by neither
//! direction: the outbound proxy appends, sessions read from where their
//! client is. A login has one stream per port ([`StreamKey`]); message 1 is
//! the first of the day, and a client that logs in again — after a restart
//! too, since the journal rebuilds the streams — resumes where it asks.
//!
//! The API is deliberately small (append, len, message, bytes_from, clear)
//! so that a disk-backed store can replace this in-memory one.

// Few keys, looked up per message, none chosen by a client: FxHash.
use rustc_hash::FxHashMap as HashMap;

use super::origin::Channel;

/// Where a stream belongs: a port and a login (by its index in the login
/// table).
pub type StreamKey = (Channel, usize);

/// One session's messages, concatenated.
#[derive(Debug, Default)]
struct Stream {
    data: Vec<u8>,
    /// `ends[i]` is where message `i + 1` ends in `data`.
    ends: Vec<usize>,
    /// The journal sequence of the command behind the last message: never
    /// decreases (messages follow the journal's order).
    origin_sequence_last: u64,
}

impl Stream {
    fn message(&self, sequence: u64) -> Option<&[u8]> {
        let index = usize::try_from(sequence.checked_sub(1)?).ok()?;
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        Some(&self.data[start..end])
    }

    fn bytes_from(&self, sequence: u64) -> usize {
        let Some(index) = sequence.checked_sub(1) else {
            return self.data.len();
        };
        match usize::try_from(index).ok().and_then(|i| i.checked_sub(1)) {
            None => self.data.len(),
            Some(before) => self
                .ends
                .get(before)
                .map_or(0, |&end| self.data.len() - end),
        }
    }
}

/// The streams of every login and port (in memory, for the trading day).
#[derive(Debug, Default)]
pub struct SessionStreams {
    streams: HashMap<StreamKey, Stream>,
}

impl SessionStreams {
    pub fn new() -> SessionStreams {
        SessionStreams::default()
    }

    /// Adds `message` to the stream of `key`, caused by the command with
    /// journal sequence `origin_sequence`; returns its sequence number.
    pub fn append(&mut self, key: StreamKey, message: &[u8], origin_sequence: u64) -> u64 {
        assert!(!message.is_empty(), "a stream message has bytes");
        let stream = self.streams.entry(key).or_default();
        debug_assert!(
            origin_sequence >= stream.origin_sequence_last,
            "messages follow the journal"
        );
        stream.origin_sequence_last = origin_sequence;
        stream.data.extend_from_slice(message);
        stream.ends.push(stream.data.len());
        stream.ends.len() as u64
    }

    /// Messages in the stream of `key` (its last sequence number).
    pub fn len(&self, key: StreamKey) -> u64 {
        self.streams
            .get(&key)
            .map_or(0, |stream| stream.ends.len() as u64)
    }

    /// Message `sequence` (from 1) of the stream of `key`.
    pub fn message(&self, key: StreamKey, sequence: u64) -> Option<&[u8]> {
        self.streams.get(&key)?.message(sequence)
    }

    /// Bytes of the messages of `key` from `sequence` on.
    pub fn bytes_from(&self, key: StreamKey, sequence: u64) -> usize {
        self.streams
            .get(&key)
            .map_or(0, |stream| stream.bytes_from(sequence))
    }

    /// Drops every stream: a new trading day starts numbering from 1.
    pub fn clear(&mut self) {
        self.streams.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: StreamKey = (Channel::OrderEntry, 0);
    const OTHER: StreamKey = (Channel::Funding, 0);

    #[test]
    fn messages_are_numbered_from_one_per_key() {
        let mut streams = SessionStreams::new();
        assert_eq!(streams.len(KEY), 0);
        assert_eq!(streams.append(KEY, b"abc", 1), 1);
        assert_eq!(streams.append(KEY, b"de", 2), 2);
        assert_eq!(streams.append(OTHER, b"f", 2), 1);
        assert_eq!(streams.len(KEY), 2);
        assert_eq!(streams.message(KEY, 0), None);
        assert_eq!(streams.message(KEY, 1), Some(&b"abc"[..]));
        assert_eq!(streams.message(KEY, 2), Some(&b"de"[..]));
        assert_eq!(streams.message(KEY, 3), None);
        assert_eq!(streams.message(OTHER, 1), Some(&b"f"[..]));
    }

    #[test]
    fn bytes_from_counts_the_unsent_tail() {
        let mut streams = SessionStreams::new();
        streams.append(KEY, b"abc", 1);
        streams.append(KEY, b"de", 1);
        assert_eq!(streams.bytes_from(KEY, 0), 5);
        assert_eq!(streams.bytes_from(KEY, 1), 5);
        assert_eq!(streams.bytes_from(KEY, 2), 2);
        assert_eq!(streams.bytes_from(KEY, 3), 0);
        assert_eq!(streams.bytes_from(OTHER, 1), 0);
    }

    #[test]
    fn clear_starts_a_new_day() {
        let mut streams = SessionStreams::new();
        streams.append(KEY, b"abc", 1);
        streams.clear();
        assert_eq!(streams.len(KEY), 0);
        assert_eq!(streams.append(KEY, b"x", 2), 1);
    }
}
