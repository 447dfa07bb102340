//! The publisher's core, without I/O: applied commands in, MoldUDP64
//! packets out, every message kept in the [`MessageLog`] (a store on disk,
//! tagged with the journal sequence of the command that caused it).
//!
//! - **Sessions.** The MoldUDP64 session is the trading day's: its name is
//!   the gateway's SoupBinTCP session name (`YYMMDD` of the journal's first
//!   command and the 4-digit day, see `wire::trading_day::session_name`), so
//!   one name identifies a day on both sides. Sequence numbers start at 1.
//!   A day published anew — after a clean stop's End of Session, or when
//!   the log on disk disagrees with the journal — continues under the next
//!   generation's name ([`session_name`], chosen by
//!   [`write_logs_under`](Publisher::write_logs_under)).
//! - The first message of a session is System Event `O` (start of
//!   messages). Day 0 then carries the directory as the engine creates
//!   instruments; a later day starts with `O` and the state carried over
//!   (Stock Directory per instrument, Stock Trading Action for a halted one,
//!   Add Order for every resting order in time priority), so each session
//!   alone rebuilds the books.
//! - An end-of-day command ends the session: its own messages (the day
//!   orders it cancels), System Event `C` (end of messages), the packet in
//!   progress, and an End of Session packet (count 0xFFFF); the next day's
//!   session begins at once.
//! - **Packets** hold as many messages as fit `payload_max` bytes. A packet
//!   is sent when the next message does not fit, or on
//!   [`flush`](Publisher::flush) (the caller flushes when it has nothing
//!   more to publish, so a quiet market does not hold a message back).
//! - The stream is a pure function of the applied commands: replaying the
//!   journal regenerates it byte for byte (the same packets too, given the
//!   same flushes — a subscriber only relies on the messages).

use std::path::{Path, PathBuf};

use engine::{AdminCommand, Command, CommandHeader, Event};

use crate::feed::{Feed, FeedState, itch_timestamp};
use crate::itch::{self, Code, Header, Message, Timestamp};
use crate::log::{LogError, MessageLog};
use crate::moldudp64::{self, MoldError, PacketBuilder, Request, Session};

/// Counters of what was published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublisherStats {
    pub messages: u64,
    pub packets: u64,
    pub bytes: u64,
    pub sessions_ended: u64,
}

/// What the publisher derived from the commands through a sequence, as an
/// edges' snapshot records it: the day's session and how many messages it
/// had, and the feed's listings and published orders.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PublisherState {
    prefix: Option<String>,
    day: u64,
    started: bool,
    messages: u64,
    feed: FeedState,
}

/// The publisher's core state.
#[derive(Debug)]
pub struct Publisher {
    feed: Feed,
    /// `YYMMDD` of the journal's first command (known from the first
    /// command applied).
    prefix: Option<String>,
    day: u64,
    log: MessageLog,
    builder: Option<PacketBuilder>,
    payload_max: usize,
    messages: Vec<Message>,
    encoded: Vec<u8>,
    started: bool,
    stats: PublisherStats,
    /// Log write failures are reported once.
    log_failed: bool,
    /// Where each session's message log is written, once live.
    log_root: Option<PathBuf>,
    /// The current day's session generation (see [`session_name`]).
    generation: u32,
    /// When the log's buffers were last written to its files.
    log_flushed_at: std::time::Instant,
}

/// How long the message log's files may lag the packets sent.
const LOG_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

impl Publisher {
    /// A publisher whose packets are at most `payload_max` bytes (header
    /// included; [`moldudp64::DEFAULT_PAYLOAD_MAX`] fits a 1,500-byte MTU).
    pub fn new(payload_max: usize) -> Result<Publisher, MoldError> {
        // Checks the size once, with a placeholder session.
        PacketBuilder::new(Session::from_bytes([b' '; 10]).expect("blank"), payload_max)?;
        Ok(Publisher {
            feed: Feed::new(),
            prefix: None,
            day: 0,
            log: MessageLog::new(),
            builder: None,
            payload_max,
            messages: Vec::new(),
            encoded: Vec::with_capacity(64),
            started: false,
            stats: PublisherStats::default(),
            log_failed: false,
            log_root: None,
            generation: 0,
            log_flushed_at: std::time::Instant::now(),
        })
    }

    /// A publisher that keeps no messages, only their numbering and the
    /// feed's state: the snapshot agent's shadow of the live one.
    pub fn counting(payload_max: usize) -> Result<Publisher, MoldError> {
        let mut publisher = Publisher::new(payload_max)?;
        publisher.log = MessageLog::counting();
        Ok(publisher)
    }

    /// What the commands so far made of the publisher.
    pub fn state(&self) -> PublisherState {
        PublisherState {
            prefix: self.prefix.clone(),
            day: self.day,
            started: self.started,
            messages: self.log.len(),
            feed: self.feed.state(),
        }
    }

    /// A shadow publisher (see [`Publisher::counting`]) in `state`.
    pub fn counting_from(
        payload_max: usize,
        state: PublisherState,
    ) -> Result<Publisher, MoldError> {
        let mut publisher = Publisher::counting(payload_max)?;
        publisher.log = MessageLog::counting_from(state.messages);
        publisher.take_state(state);
        if publisher.started {
            publisher.builder = Some(publisher.builder_at(publisher.log.next_sequence()));
        }
        Ok(publisher)
    }

    /// Puts this new publisher where the live one was at journal sequence
    /// `through`, when it was in `state`, continuing the day's message log under `root` (the
    /// newest generation's; if that one was ended, the next generation's,
    /// with the same messages): the commands after `through` are then
    /// applied to it as at start-up. A log that does not hold the day as of
    /// `through` is an error ([`LogError::NotAtSnapshot`]): the caller
    /// regenerates the day from the journal instead.
    pub fn resume(
        &mut self,
        state: PublisherState,
        root: &Path,
        through: u64,
    ) -> Result<(), LogError> {
        assert!(!self.started, "only a new publisher resumes");
        let publisher = self;
        let messages = state.messages;
        publisher.take_state(state);
        publisher.log_root = Some(root.to_path_buf());
        let Some(prefix) = publisher.prefix.clone().filter(|_| publisher.started) else {
            return Ok(());
        };
        let dir = |generation| {
            root.join(
                session_name(&prefix, publisher.day, generation)
                    .as_str()
                    .trim(),
            )
        };
        let newest = (0..=GENERATION_MAX)
            .take_while(|&generation| MessageLog::exists_in(&dir(generation)))
            .last();
        let (log, generation) = match newest {
            None if messages == 0 => {
                let mut log = MessageLog::new();
                log.attach(&dir(0))?;
                (log, 0)
            }
            None => {
                return Err(LogError::NotAtSnapshot {
                    dir: dir(0),
                    through,
                    expected: messages,
                    stored: 0,
                    origin: 0,
                });
            }
            Some(generation) if generation == GENERATION_MAX => {
                return Err(LogError::Generations {
                    dir: root.to_path_buf(),
                });
            }
            Some(generation) => {
                let (log, moved) =
                    MessageLog::resume(&dir(generation), &dir(generation + 1), messages, through)?;
                (log, generation + u32::from(moved))
            }
        };
        publisher.log = log;
        publisher.generation = generation;
        publisher.builder = Some(publisher.builder_at(messages + 1));
        Ok(())
    }

    fn take_state(&mut self, state: PublisherState) {
        self.prefix = state.prefix;
        self.day = state.day;
        self.started = state.started;
        self.feed = Feed::from_state(state.feed);
    }

    /// An empty packet of the current session whose first message is
    /// `sequence`.
    fn builder_at(&self, sequence: u64) -> PacketBuilder {
        let mut builder = PacketBuilder::new(self.session(), self.payload_max)
            .expect("payload_max was checked at creation");
        builder.start(sequence);
        builder
    }

    /// The directory names of the current trading day's sessions, every
    /// generation (what retention keeps under the log root).
    pub fn day_session_dirs(&self) -> Vec<String> {
        let Some(prefix) = &self.prefix else {
            return Vec::new();
        };
        (0..=GENERATION_MAX)
            .map(|generation| {
                session_name(prefix, self.day, generation)
                    .as_str()
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    /// The current session (blank before the first command).
    pub fn session(&self) -> Session {
        match &self.prefix {
            Some(prefix) => session_name(prefix, self.day, self.generation),
            None => Session::from_bytes([b' '; 10]).expect("blank"),
        }
    }

    /// How many times the current trading day's session was begun anew
    /// (after a clean stop, or a log that disagreed with the journal).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The trading day (end-of-day commands applied so far).
    pub fn day(&self) -> u64 {
        self.day
    }

    /// The sequence number of the next message.
    pub fn next_sequence(&self) -> u64 {
        self.log.next_sequence()
    }

    pub fn log(&self) -> &MessageLog {
        &self.log
    }

    pub fn log_mut(&mut self) -> &mut MessageLog {
        &mut self.log
    }

    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    pub fn stats(&self) -> PublisherStats {
        self.stats
    }

    pub fn payload_max(&self) -> usize {
        self.payload_max
    }

    /// Publishes one applied command's events; each packet that fills up is
    /// handed to `send`. An end-of-day command ends the session (System
    /// Event `C`, the packet in progress, End of Session, the log marked
    /// ended) and starts the next day's, whose first packet is in progress
    /// when this returns.
    pub fn applied(
        &mut self,
        header: CommandHeader,
        command: &Command,
        events: &[Event],
        send: &mut dyn FnMut(&[u8]),
    ) {
        if self.prefix.is_none() {
            self.prefix = Some(wire::trading_day::yymmdd(header.timestamp_ns));
        }
        let timestamp = itch_timestamp(header.timestamp_ns);
        if !self.started {
            self.start_session(timestamp, header.sequence, send);
        }
        let mut messages = std::mem::take(&mut self.messages);
        messages.clear();
        self.feed.applied(header, events, &mut messages);
        for message in &messages {
            self.publish(message, header.sequence, send);
        }
        self.messages = messages;
        if matches!(command, Command::Admin(AdminCommand::EndOfDay)) {
            self.end_session(timestamp, header.sequence, send);
            self.day += 1;
            self.log = self.log.fresh();
            self.builder = None;
            self.start_session(timestamp, header.sequence, send);
        }
    }

    /// From now on, writes each session's message log under `root` (a
    /// directory named after the session). For the current session — its
    /// messages regenerated from the journal — the directory of the
    /// session's name is checked: a log that is a prefix of the regenerated
    /// one and was not ended continues (a restart after a crash: the
    /// subscribers saw no End of Session). A log that was ended (a clean
    /// stop sent End of Session) or disagrees (an operator's truncation, a
    /// damaged file, another version's bytes) is left as it is, and the day
    /// continues under the next generation's session name, from sequence 1:
    /// subscribers see a new session and rebuild their books. Later days'
    /// sessions start their logs when they begin. (`_timestamp_ns` is no
    /// longer written: the store keeps origins, and ITCH messages carry
    /// their own time.)
    pub fn write_logs_under(&mut self, root: &Path, _timestamp_ns: u64) -> Result<(), LogError> {
        self.log_root = Some(root.to_path_buf());
        if !self.started || self.log.dir().is_some() {
            // Nothing yet, or already on its directory (resumed).
            return Ok(());
        }
        let before = self.session();
        self.attach_log(root)?;
        if self.session() != before {
            // The packet in progress carries the old name: start it again
            // under the new one, with the same messages.
            let first = self.builder.as_ref().map_or(1, PacketBuilder::sequence);
            let mut builder = PacketBuilder::new(self.session(), self.payload_max)
                .expect("payload_max was checked at creation");
            builder.start(first);
            if let Some(mut reader) = self.log.reader(first) {
                while let Some(message) = reader.next().map_err(|source| LogError::Store {
                    dir: root.to_path_buf(),
                    source,
                })? {
                    let pushed = builder
                        .try_push(&message.bytes)
                        .expect("an ITCH message fits");
                    debug_assert!(pushed, "the packet in progress fitted before");
                }
            }
            self.builder = Some(builder);
        }
        Ok(())
    }

    /// Chooses the current day's generation (see
    /// [`write_logs_under`](Self::write_logs_under)) and attaches its log.
    fn attach_log(&mut self, root: &Path) -> Result<(), LogError> {
        let Some(prefix) = self.prefix.clone() else {
            return Ok(());
        };
        for generation in 0..=GENERATION_MAX {
            let name = session_name(&prefix, self.day, generation);
            let dir = root.join(name.as_str().trim());
            let reason = match self.log.inspect(&dir)? {
                None => None,
                Some(on_disk) => match on_disk.disagreement {
                    Some(disagreement) => Some(disagreement.to_string()),
                    None if on_disk.ended => Some(format!(
                        "session {} was ended (End of Session sent)",
                        name.as_str()
                    )),
                    None => None,
                },
            };
            if let Some(reason) = reason {
                tracing::info!(
                    %reason,
                    "market data: the day continues under a new session name"
                );
                continue;
            }
            self.generation = generation;
            return self.log.attach(&dir);
        }
        Err(LogError::Generations {
            dir: root.to_path_buf(),
        })
    }

    /// Sends the packet in progress, if it holds anything.
    pub fn flush(&mut self, send: &mut dyn FnMut(&[u8])) {
        if let Some(builder) = self.builder.as_mut()
            && !builder.is_empty()
        {
            let next = builder.next_sequence();
            let packet = builder.finish();
            self.stats.packets += 1;
            self.stats.bytes += packet.len() as u64;
            send(packet);
            builder.start(next);
            // The log's files follow the packets sent within
            // `LOG_FLUSH_INTERVAL` (unsynced: the page cache outlives the
            // process), so a restart after a crash finds the day's log as
            // of a recent snapshot and resumes from it.
            let now = std::time::Instant::now();
            if now.duration_since(self.log_flushed_at) < LOG_FLUSH_INTERVAL {
                return;
            }
            self.flush_log();
        }
    }

    /// Writes what the log buffers to its files (a failure is logged once).
    pub fn flush_log(&mut self) {
        self.log_flushed_at = std::time::Instant::now();
        if let Err(error) = self.log.flush()
            && !self.log_failed
        {
            self.log_failed = true;
            tracing::error!(%error, "the message log on disk stopped");
        }
    }

    /// A heartbeat packet (count 0, the next sequence number).
    pub fn heartbeat(&self, out: &mut Vec<u8>) {
        out.clear();
        moldudp64::heartbeat(self.session(), self.next_sequence(), out);
    }

    /// The End of Session packet of the current session (a clean stop).
    pub fn end_of_session(&self, out: &mut Vec<u8>) {
        out.clear();
        moldudp64::end_of_session(self.session(), self.next_sequence(), out);
    }

    /// The state as ITCH messages stamped `timestamp` (see
    /// [`Feed::snapshot`]) and the sequence number of the first live message
    /// it does not reflect.
    pub fn snapshot(&self, timestamp: Timestamp, out: &mut Vec<Message>) -> u64 {
        self.feed.snapshot(timestamp, out);
        self.next_sequence()
    }

    /// Answers a re-request from the log: packets of at most `payload_max`
    /// bytes with messages `request.sequence ..` (at most `count_max` of
    /// them, and none past the end of the log), each handed to `send`. A
    /// request wholly past the end gets one heartbeat (the next sequence
    /// number). Returns the messages sent. The caller has checked the
    /// session. The messages come from the store's cache of recent
    /// messages, else from its files; a store that cannot be read ends the
    /// answer where it failed (logged).
    pub fn answer(
        &self,
        request: &Request,
        count_max: u16,
        send: &mut dyn FnMut(&[u8]),
    ) -> Result<u64, MoldError> {
        let mut builder = PacketBuilder::new(self.session(), self.payload_max)?;
        builder.start(request.sequence);
        let count = u64::from(request.count.min(count_max));
        let last = request
            .sequence
            .saturating_add(count - 1)
            .min(self.log.len());
        let mut sent = 0;
        if let Some(mut reader) = self
            .log
            .reader(request.sequence)
            .filter(|_| request.sequence <= last)
        {
            while reader.next_sequence() <= last {
                let message = match reader.next() {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::error!(%error, "reading the message log for a re-request");
                        break;
                    }
                };
                if !builder.try_push(&message.bytes)? {
                    send(builder.finish());
                    builder.start(message.sequence);
                    let pushed = builder.try_push(&message.bytes)?;
                    debug_assert!(pushed, "a message fits an empty packet");
                }
                sent += 1;
            }
        }
        if !builder.is_empty() {
            send(builder.finish());
        } else if sent == 0 {
            let mut heartbeat = Vec::with_capacity(moldudp64::HEADER_LEN);
            self.heartbeat(&mut heartbeat);
            send(&heartbeat);
        }
        Ok(sent)
    }

    /// Starts a session; its first messages are caused by the command
    /// journaled at `origin` (the first command, or the end of day).
    fn start_session(&mut self, timestamp: Timestamp, origin: u64, send: &mut dyn FnMut(&[u8])) {
        self.started = true;
        self.generation = 0;
        if let Some(root) = self.log_root.clone()
            && let Err(error) = self.attach_log(&root)
        {
            tracing::error!(%error, "the new session's message log is kept in memory only");
        }
        self.builder = Some(
            PacketBuilder::new(self.session(), self.payload_max)
                .expect("payload_max was checked at creation"),
        );
        self.publish(&system_event(b'O', timestamp), origin, send);
        if self.day > 0 {
            // The state carried over from the previous day.
            let mut messages = std::mem::take(&mut self.messages);
            messages.clear();
            self.feed.snapshot(timestamp, &mut messages);
            for message in &messages {
                self.publish(message, origin, send);
            }
            self.messages = messages;
        }
    }

    fn end_session(&mut self, timestamp: Timestamp, origin: u64, send: &mut dyn FnMut(&[u8])) {
        self.publish(&system_event(b'C', timestamp), origin, send);
        self.close(0, send);
    }

    /// A clean stop: the packet in progress is sent, then End of Session,
    /// and the log is marked ended (a restart continues the day under the
    /// next generation's name). Nothing is sent before the first command.
    /// (`_timestamp_ns` is no longer written: the store's end record carries
    /// the last origin.)
    pub fn close(&mut self, _timestamp_ns: u64, send: &mut dyn FnMut(&[u8])) {
        if !self.started {
            return;
        }
        self.flush(send);
        let mut packet = Vec::with_capacity(moldudp64::HEADER_LEN);
        self.end_of_session(&mut packet);
        self.stats.packets += 1;
        self.stats.bytes += packet.len() as u64;
        self.stats.sessions_ended += 1;
        send(&packet);
        if let Err(error) = self.log.end() {
            tracing::error!(%error, "closing the message log");
        }
    }

    /// Publishes one message caused by the command journaled at `origin`.
    fn publish(&mut self, message: &Message, origin: u64, send: &mut dyn FnMut(&[u8])) {
        self.encoded.clear();
        message.encode(&mut self.encoded);
        if let Err(error) = self.log.append(&self.encoded, origin)
            && !self.log_failed
        {
            // The numbering goes on; re-requests past here get nothing.
            self.log_failed = true;
            tracing::error!(%error, "the message log on disk stopped");
        }
        self.stats.messages += 1;
        let builder = self.builder.as_mut().expect("a session is started");
        // ITCH messages are at most 50 bytes: always fit an empty packet.
        if !builder
            .try_push(&self.encoded)
            .expect("an ITCH message fits")
        {
            let next = builder.next_sequence();
            let packet = builder.finish();
            self.stats.packets += 1;
            self.stats.bytes += packet.len() as u64;
            send(packet);
            builder.start(next);
            let pushed = builder
                .try_push(&self.encoded)
                .expect("an ITCH message fits");
            debug_assert!(pushed, "a message fits an empty packet");
        }
    }
}

/// Generations of one day's session: `A`–`Z` then `a`–`z`.
const GENERATION_LETTERS: &[u8; 52] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The last generation a day may reach.
pub const GENERATION_MAX: u32 = GENERATION_LETTERS.len() as u32;

/// The MoldUDP64 session name of trading `day`, `generation`: the
/// order-entry session's name (`YYMMDD` + the day in 4 digits) for
/// generation 0; then `YYMMDD`, the generation's letter (`A` for 1 … `z`
/// for 52) and the day in 3 digits.
pub fn session_name(prefix: &str, day: u64, generation: u32) -> Session {
    let bytes = match generation {
        0 => wire::trading_day::session_name(prefix, day),
        _ => {
            let letter = GENERATION_LETTERS[(generation.min(GENERATION_MAX) - 1) as usize] as char;
            let text = format!("{prefix:.6}{letter}{:03}", day % 1_000);
            wire::soupbin::alpha_right_justified::<10>(&text).unwrap_or([b' '; 10])
        }
    };
    Session::from_bytes(bytes).expect("session names are ASCII")
}

fn system_event(code: u8, timestamp: Timestamp) -> Message {
    Message::SystemEvent(itch::SystemEvent {
        header: Header {
            stock_locate: 0,
            tracking_number: 0,
            timestamp,
        },
        event_code: Code::new(code).expect("printable"),
    })
}

/// The End of Snapshot message of the snapshot service (GLIMPSE-style):
/// `'G'` and the sequence number of the first live message the snapshot
/// does not reflect, as 20 ASCII digits right-justified with spaces.
pub const END_OF_SNAPSHOT_TYPE: u8 = b'G';
/// Its length in bytes.
pub const END_OF_SNAPSHOT_LEN: usize = 21;

/// Encodes an End of Snapshot message.
pub fn end_of_snapshot(next_sequence: u64) -> [u8; END_OF_SNAPSHOT_LEN] {
    let mut out = [b' '; END_OF_SNAPSHOT_LEN];
    out[0] = END_OF_SNAPSHOT_TYPE;
    let digits = next_sequence.to_string();
    out[END_OF_SNAPSHOT_LEN - digits.len()..].copy_from_slice(digits.as_bytes());
    out
}

/// Decodes an End of Snapshot message: the next live sequence number.
pub fn decode_end_of_snapshot(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != END_OF_SNAPSHOT_LEN || bytes[0] != END_OF_SNAPSHOT_TYPE {
        return None;
    }
    let text = std::str::from_utf8(&bytes[1..])
        .ok()?
        .trim_start_matches(' ');
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_snapshot_bytes() {
        let bytes = end_of_snapshot(1234);
        assert_eq!(&bytes, b"G                1234");
        assert_eq!(decode_end_of_snapshot(&bytes), Some(1234));
        assert_eq!(decode_end_of_snapshot(&bytes[..20]), None);
        assert_eq!(decode_end_of_snapshot(b"G                12x4"), None);
        assert_eq!(decode_end_of_snapshot(b"G                    "), None);
        assert_eq!(decode_end_of_snapshot(b"H                1234"), None);
    }
}
