//! Readers that walk a journal from a sequence number and keep up with it
//! as it grows (market-data retransmission, replication, replay).
//!
//! A reader sees a record once its `length` word is published (acquire
//! load) and its sequence is at or below the journal's last appended one,
//! so it never sees half a record, nor the torn tail of a journal opened
//! read-only. It checks every record's checksum, sequence and link again
//! after reading it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::JournalError;
use crate::journal::Shared;
use crate::layout::{
    RECORD_HEADER_BYTES, RecordHeader, SEAL, SEGMENT_HEADER_BYTES, record_checksum,
    record_footprint,
};
use crate::segment::Segment;

/// One record as read from the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub sequence: u64,
    pub timestamp_ns: u64,
    pub record_type: u16,
    /// The epoch the record was appended in (see [`crate::Journal::set_term`]).
    pub term: u64,
    pub body: &'a [u8],
    /// The whole record as stored (header and body, without padding): what
    /// a follower passes to [`crate::Journal::append_replicated`].
    pub bytes: &'a [u8],
}

/// Walks the journal's records in order from a starting sequence.
#[derive(Debug)]
pub struct JournalReader {
    shared: Arc<Shared>,
    /// The segment being read and its position in the shared list.
    segment: Option<Arc<Segment>>,
    position: usize,
    offset: usize,
    /// The sequence the next record must have (once the first is seen).
    expected: Option<(u64, u32)>,
    /// Records before this are skipped.
    start: u64,
}

impl JournalReader {
    pub(crate) fn new(shared: Arc<Shared>, from_sequence: u64) -> JournalReader {
        let mut reader = JournalReader {
            shared,
            segment: None,
            position: 0,
            offset: SEGMENT_HEADER_BYTES,
            expected: None,
            start: from_sequence.max(1),
        };
        // Start in the last segment that begins at or before `start`.
        let segments = reader.shared.segments.read();
        if let Some(position) = segments
            .iter()
            .rposition(|segment| segment.first_sequence <= reader.start)
        {
            reader.position = position;
        }
        drop(segments);
        reader
    }

    /// The sequence of the next record this reader returns.
    pub fn next_sequence(&self) -> u64 {
        match self.expected {
            Some((sequence, _)) => sequence.max(self.start),
            None => self.start,
        }
    }

    /// The next record, or `None` when the reader has caught up with the
    /// journal (call again later to tail it). An error means a record failed
    /// its checks after it was read.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record<'_>>, JournalError> {
        loop {
            let Some((offset, length, header)) = self.peek()? else {
                return Ok(None);
            };
            self.check(offset, length, &header)?;
            self.offset = offset + record_footprint(length - RECORD_HEADER_BYTES);
            self.expected = Some((header.sequence + 1, header.checksum));
            if header.sequence < self.start {
                continue;
            }
            let segment = self.segment.as_ref().expect("peek found a segment");
            // SAFETY: the record is published (its length was loaded with
            // acquire ordering) and published bytes are never written again
            // while the segment is shared.
            let bytes = unsafe { segment.bytes(offset, length) };
            return Ok(Some(Record {
                sequence: header.sequence,
                timestamp_ns: header.timestamp_ns,
                record_type: header.record_type,
                term: header.term,
                body: &bytes[RECORD_HEADER_BYTES..],
                bytes,
            }));
        }
    }

    /// Checks the checksum and the link of the record at `offset`.
    fn check(
        &self,
        offset: usize,
        length: usize,
        header: &RecordHeader,
    ) -> Result<(), JournalError> {
        let segment = self.segment.as_ref().expect("peek found a segment");
        // SAFETY: published (see `next`).
        let bytes = unsafe { segment.bytes(offset, length) };
        let (header_bytes, body) = bytes.split_at(RECORD_HEADER_BYTES);
        let header_bytes: &[u8; RECORD_HEADER_BYTES] =
            header_bytes.try_into().expect("a record header");
        let linked = self.expected.is_none_or(|(sequence, link)| {
            header.sequence == sequence && header.previous_checksum == link
        });
        if record_checksum(header_bytes, body) != header.checksum || !linked {
            return Err(JournalError::Corrupt {
                segment: segment.path.clone(),
                offset: offset as u64,
                sequence: self.next_sequence(),
                reason: "a record failed its checksum or link when read".to_owned(),
            });
        }
        Ok(())
    }

    /// Finds the next published record: its offset, length and header.
    fn peek(&mut self) -> Result<Option<(usize, usize, RecordHeader)>, JournalError> {
        loop {
            if self.segment.is_none() {
                let segments = self.shared.segments.read();
                let Some(segment) = segments.get(self.position) else {
                    return Ok(None);
                };
                self.segment = Some(Arc::clone(segment));
                self.offset = SEGMENT_HEADER_BYTES;
            }
            let segment = self.segment.as_ref().expect("set above");
            let length = if self.offset < segment.capacity() {
                segment.load_length(self.offset)
            } else {
                SEAL
            };
            if length == SEAL {
                if self.shared.segment_count.load(Ordering::Acquire) <= self.position + 1 {
                    return Ok(None);
                }
                self.position += 1;
                self.segment = None;
                continue;
            }
            if length == 0 {
                // Under `fsync` the seal comes later than the successor (the
                // flusher writes it): a successor in the list means the
                // appender moved on. Look again once the list says so, for a
                // record published just before the roll-over.
                if self.shared.segment_count.load(Ordering::Acquire) <= self.position + 1 {
                    return Ok(None);
                }
                if segment.load_length(self.offset) == 0 {
                    self.position += 1;
                    self.segment = None;
                }
                continue;
            }
            // Whether the record here is announced is decided by the sequence
            // it must have, not by any of its bytes: past a read-only open's
            // verified end (a torn tail) they may say anything.
            let sequence = self
                .expected
                .map_or(segment.first_sequence, |(sequence, _)| sequence);
            if sequence > self.shared.appended.0.load(Ordering::Acquire) {
                return Ok(None);
            }
            let bad = |reason: &str| JournalError::Corrupt {
                segment: segment.path.clone(),
                offset: self.offset as u64,
                sequence: self.next_sequence(),
                reason: reason.to_owned(),
            };
            let length = length as usize;
            if length < RECORD_HEADER_BYTES
                || self.offset + record_footprint(length - RECORD_HEADER_BYTES) > segment.capacity()
            {
                return Err(bad("a record's length does not fit its segment"));
            }
            // SAFETY: published (see `next`).
            let header_bytes = unsafe { segment.bytes(self.offset, RECORD_HEADER_BYTES) };
            let header = RecordHeader::decode(header_bytes.try_into().expect("a record header"));
            return Ok(Some((self.offset, length, header)));
        }
    }
}
