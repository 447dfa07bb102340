//! The subscriber's sans-I/O core: A/B arbitration and gap recovery over
//! MoldUDP64 packets.
//!
//! [`Arbiter`] takes parsed downstream packets from any source (feed A,
//! feed B, re-request answers) with the time they were handled, and hands
//! each message of the session to the caller **exactly once and in
//! sequence order** through a [`Delivery`] callback. It owns no socket and
//! reads no clock: time comes in as an argument, so every test is
//! deterministic.
//!
//! # What it does with a packet
//!
//! * A message with the next expected sequence number is delivered at once
//!   (the common case: no copy, no buffering), followed by any buffered
//!   messages that have become contiguous.
//! * A message already delivered or already buffered is a duplicate
//!   (normal with A/B feeds: every message arrives twice) and is counted.
//! * A message ahead of the next expected one is buffered (a bounded
//!   `BTreeMap` keyed by sequence number) until the gap before it fills.
//! * Every packet, heartbeats and End of Session included, moves the
//!   *horizon*: the highest sequence number known to exist. Messages below
//!   the horizon that have not arrived form a gap.
//! * End of Session (count `0xFFFF`) is delivered once every message before
//!   it has been delivered.
//! * A packet naming a new session starts over: the new session's sequence
//!   numbers start at 1 and the caller is told to clear its books. Packets
//!   of the session just left are ignored from then on (a late copy from
//!   the slower feed must not switch back).
//!
//! # Recovery
//!
//! [`Arbiter::poll`] turns an open gap into an [`Action`]: a re-request of
//! the first missing run (at most `rerequest_messages_max` messages), sent
//! again after `rerequest_timeout` while no progress is made, or — when the
//! gap is larger than `gap_messages_max` or `rerequest_retries_max` retries
//! brought nothing — a snapshot fallback. After a fallback the arbiter
//! buffers packets until [`Arbiter::start_at`] gives it the snapshot's
//! session and next sequence number.
//!
//! The snapshot is authoritative: it resets the horizon to what it and the
//! messages still buffered after it show, so a packet or heartbeat that
//! claimed more messages than the publisher has (a stray or forged packet,
//! or a stream from before a journal truncation) leaves no gap that no
//! re-request could fill. When the answer to a re-request is a heartbeat
//! saying that the publisher has none of the messages asked for, the
//! buffered messages are dropped at the snapshot fallback as well: they
//! cannot be the publisher's. A snapshot naming a session already left is
//! stale and refused (see [`Arbiter::start_at`]): the arbiter never goes
//! back to a retired session.
//!
//! Invariants (checked with `debug_assert!`): while live, every buffered
//! sequence number is greater than the next expected one, and the next
//! expected one never exceeds the horizon.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::moldudp64::{Packet, Request, Session};

/// Limits and timers of the recovery state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArbiterConfig {
    /// Most messages asked for in one re-request (the server caps its
    /// answers at `rerequest_messages_max`, default 1024).
    pub rerequest_messages_max: u16,
    /// How long to wait for an answer before asking again.
    pub rerequest_timeout: Duration,
    /// How many times a re-request that brought nothing is repeated before
    /// the gap is declared unfillable (snapshot fallback).
    pub rerequest_retries_max: u32,
    /// A gap of more messages than this is not re-requested: a snapshot is
    /// cheaper.
    pub gap_messages_max: u64,
    /// How long a gap may stay open before it is re-requested, so that the
    /// copy of a packet lost on one feed can still arrive on the other.
    pub reorder_wait: Duration,
    /// Most messages buffered ahead of a gap; further ones are dropped (and
    /// re-requested later, since the horizon still covers them).
    pub buffered_messages_max: usize,
}

impl Default for ArbiterConfig {
    fn default() -> Self {
        Self {
            rerequest_messages_max: 1024,
            rerequest_timeout: Duration::from_millis(100),
            rerequest_retries_max: 5,
            gap_messages_max: 100_000,
            reorder_wait: Duration::from_millis(1),
            buffered_messages_max: 1 << 20,
        }
    }
}

/// What the arbiter hands to its caller, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// The next message of the session.
    Message {
        /// Session of the message.
        session: Session,
        /// Its sequence number: one more than the previous delivery's.
        sequence: u64,
        /// The message block's payload (one ITCH message).
        message: &'a [u8],
    },
    /// Every message of the session has been delivered and the publisher
    /// ended it.
    EndOfSession {
        /// The session that ended.
        session: Session,
        /// One past its last message.
        next_sequence: u64,
    },
    /// A packet of a new session arrived: everything built from the
    /// previous session (books) must be cleared; the new session's
    /// messages are delivered from sequence 1.
    SessionChanged {
        /// The session left, if any.
        previous: Option<Session>,
        /// The new session.
        session: Session,
    },
}

/// A run of missing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// First missing sequence number.
    pub first: u64,
    /// Number of missing messages in this run.
    pub count: u64,
}

/// Why the arbiter gave up on re-requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotReason {
    /// The missing messages exceed `gap_messages_max`.
    GapTooLarge {
        /// Messages known to exist, not delivered and not buffered.
        missing: u64,
    },
    /// `rerequest_retries_max` retries brought nothing.
    RetriesExhausted {
        /// The sequence number that never arrived.
        sequence: u64,
    },
}

/// What the caller must do, from [`Arbiter::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send this request to the re-request server.
    Rerequest(Request),
    /// Fetch a snapshot and call [`Arbiter::start_at`] with it; the
    /// arbiter buffers packets meanwhile.
    Snapshot(SnapshotReason),
}

/// What one packet did, from [`Arbiter::on_packet`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketOutcome {
    /// Messages of this packet seen for the first time (delivered now or
    /// buffered).
    pub accepted: u32,
    /// Messages of this packet already delivered or buffered.
    pub duplicates: u32,
    /// Set when this packet opened a gap (there was none before).
    pub gap_opened: Option<Gap>,
    /// The packet belonged to the session just left and was ignored.
    pub stale: bool,
}

/// Running totals of the arbiter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArbiterStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Duplicate messages (A/B copies, repeated re-request answers).
    pub duplicates: u64,
    /// Gaps opened.
    pub gaps: u64,
    /// Re-requests asked for (retries included).
    pub rerequests: u64,
    /// Snapshot fallbacks asked for.
    pub snapshots: u64,
    /// Messages not buffered because the buffer was full.
    pub buffer_overflows: u64,
    /// Packets of a session already left, ignored.
    pub stale_packets: u64,
}

/// Where the arbiter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Buffering until a snapshot gives the starting point.
    AwaitingSnapshot,
    /// Start at sequence 1 of the first session seen.
    FromBeginning,
    /// Delivering.
    Live,
}

/// A re-request in flight.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    sequence: u64,
    count: u16,
    deadline: Instant,
    /// Requests sent for `sequence` without it arriving.
    attempts: u32,
    /// A heartbeat arrived saying that the publisher has no message at or
    /// after `sequence` (its next sequence number is not past it).
    denied: bool,
}

/// The A/B arbitration and gap-recovery state machine (see the module
/// documentation).
///
/// ```
/// use std::time::Instant;
/// use marketdata::moldudp64::{Packet, PacketBuilder, Session};
/// use marketdata::subscriber::{Arbiter, ArbiterConfig, Delivery};
///
/// let session = Session::new("2601010001").unwrap();
/// let mut builder = PacketBuilder::new(session, 1472).unwrap();
/// builder.try_push(b"first").unwrap();
/// let bytes = builder.finish().to_vec();
///
/// let mut arbiter = Arbiter::new(ArbiterConfig::default());
/// arbiter.start_from_beginning();
/// let mut got = Vec::new();
/// let packet = Packet::parse(&bytes).unwrap();
/// for _ in 0..2 {
///     // The same packet from feed A and from feed B: delivered once.
///     arbiter.on_packet(&packet, Instant::now(), &mut |d| {
///         if let Delivery::Message { sequence, .. } = d { got.push(sequence) }
///     });
/// }
/// assert_eq!(got, [1]);
/// assert_eq!(arbiter.stats().duplicates, 1);
/// ```
#[derive(Debug)]
pub struct Arbiter {
    config: ArbiterConfig,
    phase: Phase,
    session: Option<Session>,
    /// The session left last; its packets are ignored.
    retired: Option<Session>,
    /// Next sequence number to deliver (meaningful while live).
    next_sequence: u64,
    /// One past the highest sequence number any packet of the session
    /// revealed.
    horizon: u64,
    /// Sequence number carried by the session's End of Session packet.
    end_of_session: Option<u64>,
    end_delivered: bool,
    /// Messages received ahead of `next_sequence`.
    pending: BTreeMap<u64, Box<[u8]>>,
    /// When the open gap was first seen.
    gap_since: Option<Instant>,
    outstanding: Option<Outstanding>,
    stats: ArbiterStats,
}

impl Arbiter {
    /// An arbiter waiting for a snapshot ([`start_at`](Self::start_at)) or
    /// for [`start_from_beginning`](Self::start_from_beginning); it buffers
    /// packets meanwhile.
    ///
    /// # Panics
    ///
    /// If `rerequest_messages_max` is 0 or 0xFFFF (not a valid count).
    pub fn new(config: ArbiterConfig) -> Self {
        assert!(
            config.rerequest_messages_max > 0 && config.rerequest_messages_max < u16::MAX,
            "rerequest_messages_max must be in 1..0xFFFF"
        );
        Self {
            config,
            phase: Phase::AwaitingSnapshot,
            session: None,
            retired: None,
            next_sequence: 0,
            horizon: 0,
            end_of_session: None,
            end_delivered: false,
            pending: BTreeMap::new(),
            gap_since: None,
            outstanding: None,
            stats: ArbiterStats::default(),
        }
    }

    /// Deliver the first session seen from sequence 1 (re-requesting what
    /// was missed) instead of starting from a snapshot.
    pub fn start_from_beginning(&mut self) {
        self.phase = Phase::FromBeginning;
        self.session = None;
        self.pending.clear();
        self.reset_sequences(1);
    }

    /// Goes live at `next_sequence` of `session`, as a snapshot said: drops
    /// buffered messages the snapshot covers and delivers the buffered ones
    /// that follow it. The snapshot is authoritative: the horizon becomes
    /// `next_sequence`, or one past the last message still buffered if that
    /// is further, whatever earlier packets claimed.
    ///
    /// Returns `false`, changing nothing, when the snapshot is stale: it
    /// names the session already left for a newer one (see
    /// [`is_retired`](Self::is_retired)); the caller must fetch another
    /// snapshot.
    #[must_use = "a stale snapshot must be fetched again"]
    pub fn start_at(
        &mut self,
        session: Session,
        next_sequence: u64,
        now: Instant,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) -> bool {
        assert!(next_sequence >= 1, "sequence numbers start at 1");
        if self.is_retired(session) {
            return false;
        }
        if self.session != Some(session) {
            if self.session.is_some() {
                self.retired = self.session;
            }
            self.session = Some(session);
            self.pending.clear();
            self.reset_sequences(next_sequence);
        }
        self.pending = self.pending.split_off(&next_sequence);
        self.next_sequence = next_sequence;
        // Not `max` with the old horizon: a heartbeat or packet past the
        // publisher's real end would leave a gap no re-request can fill.
        self.horizon = self
            .pending
            .last_key_value()
            .map_or(next_sequence, |(&last, _)| last + 1)
            .max(next_sequence);
        if self.end_of_session.is_some_and(|end| end < next_sequence) {
            // Contradicted by the snapshot: from an older stream.
            self.end_of_session = None;
            self.end_delivered = false;
        }
        self.phase = Phase::Live;
        self.outstanding = None;
        self.gap_since = None;
        self.drain(deliver);
        self.note_gap(now);
        true
    }

    /// Whether `session` is the session left for a newer one: its packets
    /// are ignored, and a snapshot naming it is stale.
    pub fn is_retired(&self, session: Session) -> bool {
        self.retired == Some(session)
    }

    /// Stops delivering and buffers packets until the next
    /// [`start_at`](Self::start_at): the caller's books are out of step and
    /// it is fetching a snapshot.
    pub fn await_snapshot(&mut self) {
        self.phase = Phase::AwaitingSnapshot;
        self.outstanding = None;
        self.gap_since = None;
    }

    /// Takes one packet (from either feed or a re-request answer) handled
    /// at `now`, delivering what it makes deliverable.
    pub fn on_packet(
        &mut self,
        packet: &Packet<'_>,
        now: Instant,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) -> PacketOutcome {
        let header = packet.header();
        let mut outcome = PacketOutcome::default();
        if self.session != Some(header.session) {
            if self.is_retired(header.session) {
                self.stats.stale_packets += 1;
                outcome.stale = true;
                return outcome;
            }
            self.switch_session(header.session, deliver);
        }
        let gap_was_open = self.gap_since.is_some();
        if header.is_heartbeat()
            && let Some(o) = self.outstanding.as_mut()
            && header.sequence <= o.sequence
        {
            // The publisher has none of the messages asked for (an answer
            // to the re-request, or a live heartbeat that says as much).
            o.denied = true;
        }
        self.horizon = self.horizon.max(header.next_sequence());
        if header.is_end_of_session() {
            self.end_of_session = Some(header.sequence);
        }
        for (sequence, message) in packet.messages() {
            self.take_message(sequence, message, &mut outcome, deliver);
        }
        if self.phase == Phase::Live {
            // An End of Session packet may be due with no message before it.
            self.drain(deliver);
        }
        self.note_gap(now);
        if !gap_was_open && self.gap_since.is_some() {
            outcome.gap_opened = self.missing_run();
        }
        self.stats.duplicates += u64::from(outcome.duplicates);
        outcome
    }

    /// What to do now: re-request a gap, retry one, or fall back to a
    /// snapshot. Call after each batch of packets and whenever
    /// [`next_deadline`](Self::next_deadline) passes.
    pub fn poll(&mut self, now: Instant) -> Option<Action> {
        if self.phase != Phase::Live {
            return None;
        }
        let Some(run) = self.missing_run() else {
            self.outstanding = None;
            return None;
        };
        // Buffered messages lie between the next expected one and the
        // horizon; the rest of that range is what is missing.
        let missing = self.horizon - self.next_sequence - self.pending.len() as u64;
        if missing > self.config.gap_messages_max {
            return Some(self.fall_back(SnapshotReason::GapTooLarge { missing }));
        }
        let opened = self.gap_since.unwrap_or(now);
        if now < opened + self.config.reorder_wait {
            return None;
        }
        let mut attempts = 1;
        let mut denied = false;
        if let Some(o) = self.outstanding {
            let answer_pending = run.first < o.sequence + u64::from(o.count);
            if now < o.deadline && answer_pending {
                return None;
            }
            if now >= o.deadline && o.sequence == run.first {
                if o.attempts > self.config.rerequest_retries_max {
                    if o.denied {
                        // The publisher ends before them: whatever they
                        // are, they are not its messages.
                        self.pending.clear();
                    }
                    let reason = SnapshotReason::RetriesExhausted {
                        sequence: run.first,
                    };
                    return Some(self.fall_back(reason));
                }
                attempts = o.attempts + 1;
                denied = o.denied;
            }
        }
        let session = self.session?;
        let cap = u64::from(self.config.rerequest_messages_max);
        // `cap < 0xFFFF`, so the count fits in a u16 and is never the End
        // of Session marker; `run.count >= 1` by construction.
        let count = run.count.min(cap) as u16;
        self.outstanding = Some(Outstanding {
            sequence: run.first,
            count,
            deadline: now + self.config.rerequest_timeout,
            attempts,
            denied,
        });
        self.stats.rerequests += 1;
        Some(Action::Rerequest(Request {
            session,
            sequence: run.first,
            count,
        }))
    }

    /// The next time [`poll`](Self::poll) may have something to do without
    /// a packet arriving (`None`: nothing pending).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Live {
            return None;
        }
        let opened = self.gap_since?;
        Some(match self.outstanding {
            Some(o) => o.deadline,
            None => opened + self.config.reorder_wait,
        })
    }

    /// The session being delivered (or buffered), once known.
    pub fn session(&self) -> Option<Session> {
        self.session
    }

    /// The next sequence number to deliver (0 before the start point is
    /// known).
    pub fn next_sequence(&self) -> u64 {
        match self.phase {
            Phase::Live | Phase::FromBeginning => self.next_sequence,
            Phase::AwaitingSnapshot => 0,
        }
    }

    /// Live, with no message known to be missing and nothing buffered.
    pub fn is_caught_up(&self) -> bool {
        self.phase == Phase::Live && self.next_sequence == self.horizon && self.pending.is_empty()
    }

    /// Waiting for a snapshot ([`start_at`](Self::start_at)).
    pub fn is_awaiting_snapshot(&self) -> bool {
        self.phase == Phase::AwaitingSnapshot
    }

    /// The first run of missing messages, if any (live only).
    pub fn missing_run(&self) -> Option<Gap> {
        if self.phase != Phase::Live || self.next_sequence >= self.horizon {
            return None;
        }
        let end = self
            .pending
            .keys()
            .next()
            .map_or(self.horizon, |&first| first.min(self.horizon));
        Some(Gap {
            first: self.next_sequence,
            count: end - self.next_sequence,
        })
    }

    /// Running totals.
    pub fn stats(&self) -> ArbiterStats {
        self.stats
    }

    /// Clears the per-session state for a session starting at `next`.
    fn reset_sequences(&mut self, next: u64) {
        self.next_sequence = next;
        self.horizon = next;
        self.end_of_session = None;
        self.end_delivered = false;
        self.outstanding = None;
        self.gap_since = None;
    }

    /// A packet names a session other than the current one.
    fn switch_session(&mut self, session: Session, deliver: &mut dyn FnMut(Delivery<'_>)) {
        let previous = self.session;
        if previous.is_some() {
            self.retired = previous;
        }
        self.session = Some(session);
        self.pending.clear();
        match self.phase {
            // Buffering for a snapshot: the snapshot will name the session.
            Phase::AwaitingSnapshot => self.reset_sequences(0),
            Phase::FromBeginning | Phase::Live => {
                self.phase = Phase::Live;
                self.reset_sequences(1);
                deliver(Delivery::SessionChanged { previous, session });
            }
        }
    }

    /// One message block of a packet of the current session.
    fn take_message(
        &mut self,
        sequence: u64,
        message: &[u8],
        outcome: &mut PacketOutcome,
        deliver: &mut dyn FnMut(Delivery<'_>),
    ) {
        let live = self.phase == Phase::Live;
        if live && sequence == self.next_sequence {
            outcome.accepted += 1;
            self.deliver_one(message, deliver);
            self.drain(deliver);
        } else if (live && sequence < self.next_sequence) || self.pending.contains_key(&sequence) {
            outcome.duplicates += 1;
        } else if self.pending.len() < self.config.buffered_messages_max {
            outcome.accepted += 1;
            self.pending.insert(sequence, message.into());
        } else {
            self.stats.buffer_overflows += 1;
        }
    }

    fn deliver_one(&mut self, message: &[u8], deliver: &mut dyn FnMut(Delivery<'_>)) {
        // Invariant: only called while live, when `session` is known.
        let Some(session) = self.session else { return };
        deliver(Delivery::Message {
            session,
            sequence: self.next_sequence,
            message,
        });
        self.next_sequence += 1;
        self.stats.delivered += 1;
        self.horizon = self.horizon.max(self.next_sequence);
    }

    /// Delivers buffered messages that have become contiguous, then End of
    /// Session if it is due.
    fn drain(&mut self, deliver: &mut dyn FnMut(Delivery<'_>)) {
        while let Some(entry) = self.pending.first_entry() {
            debug_assert!(*entry.key() >= self.next_sequence);
            if *entry.key() != self.next_sequence {
                break;
            }
            let message = entry.remove();
            self.deliver_one(&message, deliver);
        }
        if let (Some(end), Some(session)) = (self.end_of_session, self.session)
            && end == self.next_sequence
            && !self.end_delivered
        {
            self.end_delivered = true;
            deliver(Delivery::EndOfSession {
                session,
                next_sequence: end,
            });
        }
    }

    /// Opens or closes the gap timer and counts new gaps.
    fn note_gap(&mut self, now: Instant) {
        debug_assert!(self.phase != Phase::Live || self.next_sequence <= self.horizon);
        if self.missing_run().is_some() {
            if self.gap_since.is_none() {
                self.gap_since = Some(now);
                self.stats.gaps += 1;
            }
        } else {
            self.gap_since = None;
        }
    }

    fn fall_back(&mut self, reason: SnapshotReason) -> Action {
        self.await_snapshot();
        self.stats.snapshots += 1;
        Action::Snapshot(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moldudp64::{PacketBuilder, end_of_session, heartbeat};

    fn session(name: &str) -> Session {
        Session::new(name).unwrap()
    }

    /// A packet of `session` holding messages `first..first + count`, each
    /// message being its sequence number as 8 big-endian bytes.
    fn data(session_name: &str, first: u64, count: u64) -> Vec<u8> {
        let mut builder = PacketBuilder::new(session(session_name), 1472).unwrap();
        builder.start(first);
        for sequence in first..first + count {
            assert_eq!(builder.try_push(&sequence.to_be_bytes()), Ok(true));
        }
        builder.finish().to_vec()
    }

    fn beat(session_name: &str, next: u64) -> Vec<u8> {
        let mut out = Vec::new();
        heartbeat(session(session_name), next, &mut out);
        out
    }

    fn end(session_name: &str, next: u64) -> Vec<u8> {
        let mut out = Vec::new();
        end_of_session(session(session_name), next, &mut out);
        out
    }

    /// Records deliveries as text, checking that messages carry their own
    /// sequence number.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Log {
        fn sink(&mut self) -> impl FnMut(Delivery<'_>) + '_ {
            |delivery| match delivery {
                Delivery::Message {
                    session,
                    sequence,
                    message,
                } => {
                    assert_eq!(message, sequence.to_be_bytes());
                    self.0.push(format!("{}:{sequence}", session.as_str()));
                }
                Delivery::EndOfSession {
                    session,
                    next_sequence,
                } => self
                    .0
                    .push(format!("end {}:{next_sequence}", session.as_str())),
                Delivery::SessionChanged { previous, session } => self.0.push(format!(
                    "new {}->{}",
                    previous.map_or_else(|| "-".to_string(), |s| s.as_str().to_string()),
                    session.as_str()
                )),
            }
        }

        fn sequences(&self) -> Vec<u64> {
            self.0
                .iter()
                .filter_map(|line| line.split_once(':').and_then(|(_, n)| n.parse().ok()))
                .collect()
        }
    }

    fn feed(arbiter: &mut Arbiter, log: &mut Log, bytes: &[u8], now: Instant) -> PacketOutcome {
        let packet = Packet::parse(bytes).unwrap();
        arbiter.on_packet(&packet, now, &mut log.sink())
    }

    fn config() -> ArbiterConfig {
        ArbiterConfig {
            rerequest_messages_max: 4,
            rerequest_timeout: Duration::from_millis(10),
            rerequest_retries_max: 2,
            gap_messages_max: 100,
            reorder_wait: Duration::ZERO,
            buffered_messages_max: 1000,
        }
    }

    fn live(next: u64, now: Instant) -> Arbiter {
        let mut arbiter = Arbiter::new(config());
        assert!(arbiter.start_at(session("S1"), next, now, &mut |_| {}));
        arbiter
    }

    fn request(sequence: u64, count: u16) -> Option<Action> {
        Some(Action::Rerequest(Request {
            session: session("S1"),
            sequence,
            count,
        }))
    }

    #[test]
    fn in_order_packets_are_delivered_once_and_duplicates_counted() {
        let now = Instant::now();
        let mut arbiter = live(1, now);
        let mut log = Log::default();
        for bytes in [data("S1", 1, 3), data("S1", 1, 3), data("S1", 4, 2)] {
            feed(&mut arbiter, &mut log, &bytes, now);
        }
        assert_eq!(log.sequences(), [1, 2, 3, 4, 5]);
        assert_eq!(arbiter.stats().duplicates, 3);
        assert_eq!(arbiter.stats().gaps, 0);
        assert!(arbiter.is_caught_up());
        assert_eq!(arbiter.poll(now), None);
    }

    #[test]
    fn reordered_packets_are_buffered_then_delivered_in_order() {
        let now = Instant::now();
        let mut arbiter = live(1, now);
        let mut log = Log::default();
        let outcome = feed(&mut arbiter, &mut log, &data("S1", 4, 2), now);
        assert_eq!(outcome.gap_opened, Some(Gap { first: 1, count: 3 }));
        assert_eq!(outcome.accepted, 2);
        assert!(log.0.is_empty());
        feed(&mut arbiter, &mut log, &data("S1", 1, 3), now);
        assert_eq!(log.sequences(), [1, 2, 3, 4, 5]);
        assert!(arbiter.is_caught_up());
        assert_eq!(arbiter.poll(now), None);
    }

    #[test]
    fn a_gap_is_rerequested_in_capped_chunks() {
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 1, 1), t0);
        feed(&mut arbiter, &mut log, &data("S1", 8, 1), t0);
        // 2..=7 missing: the cap of 4 asks for 2..=5 first.
        assert_eq!(arbiter.poll(t0), request(2, 4));
        // Nothing more until the answer or the timeout.
        assert_eq!(arbiter.poll(t0), None);
        assert_eq!(
            arbiter.next_deadline(),
            Some(t0 + Duration::from_millis(10))
        );
        feed(&mut arbiter, &mut log, &data("S1", 2, 4), t0);
        // The first chunk arrived: ask for the rest at once.
        assert_eq!(arbiter.poll(t0), request(6, 2));
        feed(&mut arbiter, &mut log, &data("S1", 6, 2), t0);
        assert_eq!(log.sequences(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(arbiter.poll(t0), None);
        assert_eq!(arbiter.stats().gaps, 1);
        assert_eq!(arbiter.stats().rerequests, 2);
    }

    #[test]
    fn a_request_stops_at_the_next_buffered_message() {
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 3, 1), t0);
        feed(&mut arbiter, &mut log, &data("S1", 6, 1), t0);
        assert_eq!(arbiter.poll(t0), request(1, 2));
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        assert_eq!(arbiter.poll(t0), request(4, 2));
    }

    #[test]
    fn a_heartbeat_reveals_a_gap_at_the_tail() {
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        let outcome = feed(&mut arbiter, &mut log, &beat("S1", 5), t0);
        assert_eq!(outcome.gap_opened, Some(Gap { first: 3, count: 2 }));
        assert_eq!(arbiter.poll(t0), request(3, 2));
        // A heartbeat behind us reveals nothing.
        let outcome = feed(&mut arbiter, &mut log, &beat("S1", 2), t0);
        assert_eq!(outcome.gap_opened, None);
    }

    #[test]
    fn the_reorder_wait_gives_the_other_feed_a_chance() {
        let t0 = Instant::now();
        let mut arbiter = Arbiter::new(ArbiterConfig {
            reorder_wait: Duration::from_millis(2),
            ..config()
        });
        assert!(arbiter.start_at(session("S1"), 1, t0, &mut |_| {}));
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 2, 1), t0);
        assert_eq!(arbiter.poll(t0), None);
        assert_eq!(arbiter.next_deadline(), Some(t0 + Duration::from_millis(2)));
        assert_eq!(arbiter.poll(t0 + Duration::from_millis(2)), request(1, 1));
    }

    #[test]
    fn retries_then_snapshot_when_exhausted() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 3, 1), t0);
        assert_eq!(arbiter.poll(t0), request(1, 2));
        assert_eq!(arbiter.poll(t0 + ms(9)), None);
        // Two retries (rerequest_retries_max = 2), each after a timeout.
        assert_eq!(arbiter.poll(t0 + ms(10)), request(1, 2));
        assert_eq!(arbiter.poll(t0 + ms(20)), request(1, 2));
        assert_eq!(
            arbiter.poll(t0 + ms(30)),
            Some(Action::Snapshot(SnapshotReason::RetriesExhausted {
                sequence: 1
            }))
        );
        assert!(arbiter.is_awaiting_snapshot());
        assert_eq!(arbiter.stats().rerequests, 3);
        assert_eq!(arbiter.stats().snapshots, 1);
        // Buffering goes on; the snapshot says where to resume.
        feed(&mut arbiter, &mut log, &data("S1", 4, 2), t0 + ms(31));
        assert!(log.0.is_empty());
        assert!(arbiter.start_at(session("S1"), 4, t0 + ms(40), &mut log.sink()));
        assert_eq!(log.sequences(), [4, 5]);
        assert!(arbiter.is_caught_up());
    }

    #[test]
    fn progress_resets_the_retry_count() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &beat("S1", 5), t0);
        assert_eq!(arbiter.poll(t0), request(1, 4));
        assert_eq!(arbiter.poll(t0 + ms(10)), request(1, 4));
        // Part of the answer arrives (the rest was rate limited).
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0 + ms(11));
        assert_eq!(arbiter.poll(t0 + ms(15)), None);
        assert_eq!(arbiter.poll(t0 + ms(20)), request(3, 2));
        assert_eq!(arbiter.poll(t0 + ms(30)), request(3, 2));
        assert_eq!(arbiter.poll(t0 + ms(40)), request(3, 2));
        assert!(matches!(
            arbiter.poll(t0 + ms(50)),
            Some(Action::Snapshot(_))
        ));
    }

    #[test]
    fn a_gap_beyond_the_limit_goes_straight_to_a_snapshot() {
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &beat("S1", 102), t0);
        assert_eq!(
            arbiter.poll(t0),
            Some(Action::Snapshot(SnapshotReason::GapTooLarge {
                missing: 101
            }))
        );
        assert_eq!(arbiter.stats().rerequests, 0);
    }

    #[test]
    fn a_and_b_with_different_losses_need_no_rerequest() {
        // Seeded losses: each packet is lost on A, on B, or on neither, but
        // never on both, and B lags A by a few packets.
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        let packets: Vec<Vec<u8>> = (0..200).map(|i| data("S1", 1 + 3 * i, 3)).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut lost = Vec::new();
        for _ in &packets {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            lost.push(state % 3); // 0: lost on A, 1: lost on B, 2: neither
        }
        let lag = 5;
        for step in 0..packets.len() + lag {
            if step < packets.len() && lost[step] != 0 {
                feed(&mut arbiter, &mut log, &packets[step], t0);
            }
            if step >= lag && lost[step - lag] != 1 {
                feed(&mut arbiter, &mut log, &packets[step - lag], t0);
            }
        }
        assert_eq!(log.sequences(), (1..=600).collect::<Vec<_>>());
        assert!(arbiter.is_caught_up());
        let both = lost.iter().filter(|&&l| l == 2).count() as u64;
        assert_eq!(arbiter.stats().duplicates, 3 * both);
        // Gaps opened (A lost a packet B had not yet sent) but closed
        // before any poll: nothing was re-requested.
        assert_eq!(arbiter.poll(t0), None);
    }

    #[test]
    fn random_drops_duplicates_and_reordering_deliver_everything_once() {
        for seed in 1..=50u64 {
            let t0 = Instant::now();
            let mut arbiter = live(1, t0);
            let mut log = Log::default();
            let mut state = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let mut random = move |n: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % n
            };
            let packets: Vec<Vec<u8>> = (0..100).map(|i| data("S1", 1 + 2 * i, 2)).collect();
            // Shuffled, some dropped, some twice.
            let mut order: Vec<usize> = (0..packets.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, random(i as u64 + 1) as usize);
            }
            for &i in &order {
                match random(10) {
                    0 => {}
                    1 => {
                        feed(&mut arbiter, &mut log, &packets[i], t0);
                        feed(&mut arbiter, &mut log, &packets[i], t0);
                    }
                    _ => {
                        feed(&mut arbiter, &mut log, &packets[i], t0);
                    }
                }
            }
            feed(&mut arbiter, &mut log, &beat("S1", 201), t0);
            // Answer every re-request as a server would.
            let mut rounds = 0;
            while let Some(action) = arbiter.poll(t0) {
                let Action::Rerequest(r) = action else {
                    panic!("seed {seed}: unexpected {action:?}")
                };
                let count = u64::from(r.count).min(201 - r.sequence);
                feed(&mut arbiter, &mut log, &data("S1", r.sequence, count), t0);
                rounds += 1;
                assert!(rounds < 200, "seed {seed}: no convergence");
            }
            assert_eq!(
                log.sequences(),
                (1..=200).collect::<Vec<_>>(),
                "seed {seed}"
            );
            assert!(arbiter.is_caught_up(), "seed {seed}");
        }
    }

    #[test]
    fn end_of_session_waits_for_the_missing_messages() {
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        feed(&mut arbiter, &mut log, &end("S1", 4), t0);
        assert_eq!(log.0, ["S1:1", "S1:2"]);
        assert_eq!(arbiter.poll(t0), request(3, 1));
        feed(&mut arbiter, &mut log, &data("S1", 3, 1), t0);
        feed(&mut arbiter, &mut log, &end("S1", 4), t0);
        assert_eq!(log.0, ["S1:1", "S1:2", "S1:3", "end S1:4"]);
    }

    #[test]
    fn a_new_session_starts_over_and_the_old_one_is_ignored() {
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        feed(&mut arbiter, &mut log, &end("S1", 3), t0);
        feed(&mut arbiter, &mut log, &data("S2", 1, 1), t0);
        // A late copy of the old session from the slower feed.
        let outcome = feed(&mut arbiter, &mut log, &data("S1", 2, 1), t0);
        assert!(outcome.stale);
        feed(&mut arbiter, &mut log, &data("S2", 2, 1), t0);
        assert_eq!(
            log.0,
            ["S1:1", "S1:2", "end S1:3", "new S1->S2", "S2:1", "S2:2"]
        );
        assert_eq!(arbiter.session(), Some(session("S2")));
        assert_eq!(arbiter.next_sequence(), 3);
    }

    #[test]
    fn joining_a_new_session_late_rerequests_from_one() {
        let t0 = Instant::now();
        let mut arbiter = live(10, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S2", 3, 1), t0);
        assert_eq!(log.0, ["new S1->S2"]);
        assert_eq!(
            arbiter.poll(t0),
            Some(Action::Rerequest(Request {
                session: session("S2"),
                sequence: 1,
                count: 2
            }))
        );
    }

    #[test]
    fn from_the_beginning_rerequests_what_was_missed() {
        let t0 = Instant::now();
        let mut arbiter = Arbiter::new(config());
        arbiter.start_from_beginning();
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 3, 2), t0);
        assert_eq!(log.0, ["new -->S1"]);
        assert_eq!(arbiter.poll(t0), request(1, 2));
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        assert_eq!(log.sequences(), [1, 2, 3, 4]);
    }

    #[test]
    fn buffering_while_awaiting_a_snapshot() {
        let t0 = Instant::now();
        let mut arbiter = Arbiter::new(config());
        let mut log = Log::default();
        for first in [5, 1, 7, 3] {
            feed(&mut arbiter, &mut log, &data("S1", first, 2), t0);
        }
        assert!(log.0.is_empty());
        assert_eq!(arbiter.poll(t0), None);
        // The snapshot reflects 1..=5.
        assert!(arbiter.start_at(session("S1"), 6, t0, &mut log.sink()));
        assert_eq!(log.sequences(), [6, 7, 8]);
        // A snapshot of another session discards the buffer.
        let mut arbiter = Arbiter::new(config());
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        let mut other = Log::default();
        assert!(arbiter.start_at(session("S2"), 1, t0, &mut other.sink()));
        assert!(other.0.is_empty());
    }

    #[test]
    fn a_full_buffer_drops_and_rerequests_later() {
        let t0 = Instant::now();
        let mut arbiter = Arbiter::new(ArbiterConfig {
            buffered_messages_max: 2,
            ..config()
        });
        assert!(arbiter.start_at(session("S1"), 1, t0, &mut |_| {}));
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 2, 3), t0);
        assert_eq!(arbiter.stats().buffer_overflows, 1);
        assert_eq!(arbiter.poll(t0), request(1, 1));
        feed(&mut arbiter, &mut log, &data("S1", 1, 1), t0);
        assert_eq!(arbiter.poll(t0), request(4, 1));
        feed(&mut arbiter, &mut log, &data("S1", 4, 1), t0);
        assert_eq!(log.sequences(), [1, 2, 3, 4]);
    }

    /// Answers the arbiter's actions as a publisher holding messages
    /// `1..=published` of S1 would (a request wholly past the end gets a
    /// heartbeat; a snapshot is at `published + 1`), advancing the clock by
    /// a timeout each turn, until it asks for nothing. Returns the clock.
    fn serve(arbiter: &mut Arbiter, log: &mut Log, published: u64, mut now: Instant) -> Instant {
        for _ in 0..100 {
            match arbiter.poll(now) {
                Some(Action::Rerequest(r)) => {
                    assert_eq!(r.session, session("S1"));
                    if r.sequence > published {
                        feed(arbiter, log, &beat("S1", published + 1), now);
                    } else {
                        let count = u64::from(r.count).min(published + 1 - r.sequence);
                        feed(arbiter, log, &data("S1", r.sequence, count), now);
                    }
                }
                Some(Action::Snapshot(_)) => {
                    assert!(arbiter.start_at(session("S1"), published + 1, now, &mut log.sink()));
                }
                None if arbiter.next_deadline().is_none() => return now,
                None => {}
            }
            now += config().rerequest_timeout;
        }
        panic!("no convergence: {:?}", arbiter.stats());
    }

    #[test]
    fn a_snapshot_forgets_a_stray_heartbeat_past_the_end() {
        let t0 = Instant::now();
        let mut arbiter = Arbiter::new(config());
        let mut log = Log::default();
        // A stray (or pre-truncation) heartbeat claims 49 messages.
        feed(&mut arbiter, &mut log, &beat("S1", 50), t0);
        feed(&mut arbiter, &mut log, &data("S1", 2, 2), t0);
        // The snapshot says the publisher is at 3: only 3 is buffered past it.
        assert!(arbiter.start_at(session("S1"), 3, t0, &mut log.sink()));
        assert_eq!(log.sequences(), [3]);
        assert!(arbiter.is_caught_up());
        assert_eq!(arbiter.missing_run(), None);
        assert_eq!(arbiter.poll(t0), None);
        assert_eq!(arbiter.next_deadline(), None);
        assert_eq!(arbiter.stats().snapshots, 0);
        assert_eq!(arbiter.stats().rerequests, 0);
        // Live packets carry on from there.
        feed(&mut arbiter, &mut log, &data("S1", 4, 1), t0);
        assert_eq!(log.sequences(), [3, 4]);
        assert!(arbiter.is_caught_up());
    }

    #[test]
    fn an_unfillable_tail_ends_after_one_snapshot() {
        // The publisher has 3 messages; a stray heartbeat claims 49. The
        // re-request past the end is answered with a heartbeat below the
        // range asked for: retries, then one snapshot, then caught up.
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        feed(&mut arbiter, &mut log, &beat("S1", 50), t0);
        let now = serve(&mut arbiter, &mut log, 3, t0);
        assert!(arbiter.is_caught_up());
        assert_eq!(arbiter.next_sequence(), 4);
        assert_eq!(log.sequences(), [1, 2, 3]);
        let stats = arbiter.stats();
        assert_eq!(stats.snapshots, 1);
        // 3..=6, then 4..=7 three times (rerequest_retries_max = 2).
        assert_eq!(stats.rerequests, 4);
        // Nothing left to do, later either.
        assert_eq!(arbiter.poll(now + Duration::from_secs(1)), None);
        feed(&mut arbiter, &mut log, &data("S1", 4, 1), now);
        assert_eq!(log.sequences(), [1, 2, 3, 4]);
    }

    #[test]
    fn a_stray_packet_past_the_end_is_dropped_at_the_fallback() {
        // A message numbered 50 the publisher never sent (forged, or from
        // before a journal truncation) stays buffered; the heartbeat
        // answers show that the publisher ends before it, so the fallback
        // drops it and the snapshot leaves no gap.
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 50, 1), t0);
        serve(&mut arbiter, &mut log, 3, t0);
        assert!(arbiter.is_caught_up());
        assert_eq!(log.sequences(), [1, 2, 3]);
        assert_eq!(arbiter.stats().snapshots, 1);
    }

    #[test]
    fn a_snapshot_of_the_session_left_is_stale() {
        let t0 = Instant::now();
        let mut arbiter = live(1, t0);
        let mut log = Log::default();
        feed(&mut arbiter, &mut log, &data("S1", 1, 2), t0);
        arbiter.await_snapshot();
        // The next session begins while the snapshot is being fetched...
        feed(&mut arbiter, &mut log, &data("S2", 1, 2), t0);
        assert_eq!(arbiter.session(), Some(session("S2")));
        assert!(arbiter.is_retired(session("S1")));
        // ...and the snapshot, taken earlier, names the old one: refused.
        assert!(!arbiter.start_at(session("S1"), 3, t0, &mut log.sink()));
        assert!(arbiter.is_awaiting_snapshot());
        assert_eq!(arbiter.session(), Some(session("S2")));
        assert_eq!(arbiter.poll(t0), None);
        // A late copy of the old session is still ignored.
        assert!(feed(&mut arbiter, &mut log, &data("S1", 3, 1), t0).stale);
        assert_eq!(log.0, ["S1:1", "S1:2"]);
        // The next snapshot names the new session: its packets were kept.
        assert!(arbiter.start_at(session("S2"), 1, t0, &mut log.sink()));
        assert_eq!(log.0, ["S1:1", "S1:2", "S2:1", "S2:2"]);
        assert!(arbiter.is_caught_up());
        assert!(arbiter.is_retired(session("S1")));
    }
}
