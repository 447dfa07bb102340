//! Sequential reads of a store: a chunk of a segment's data file read at
//! once (`pread`), records parsed and checked out of it; and the
//! [`StoreReader`] that replays a store from any sequence with it.

#![forbid(unsafe_code)]

use std::borrow::Cow;

use super::files::SegmentFiles;
use super::format::{RecordKind, STORE_RECORD_HEADER_BYTES, StoreRecordHeader};
use super::{MessageStore, StoreError, StoredMessage};

/// Bytes read at once by a sequential reader, beyond room for one record.
pub(crate) const READ_CHUNK_BYTES: usize = 64 << 10;

/// What the bytes at a record's position hold.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// A record whose header and checksum are right.
    Valid(StoreRecordHeader, &'a [u8]),
    /// The bytes end before the record does.
    Cut,
    /// Not a record: the reason.
    Invalid(&'static str),
}

/// Parses the record at the start of `bytes`.
pub(crate) fn parse_record(bytes: &[u8], message_bytes_max: usize) -> Parsed<'_> {
    let Some(header_bytes) = bytes.first_chunk::<STORE_RECORD_HEADER_BYTES>() else {
        return Parsed::Cut;
    };
    let Some(header) = StoreRecordHeader::decode(header_bytes) else {
        return Parsed::Invalid("bad record header");
    };
    let length = header.length as usize;
    if length > message_bytes_max {
        return Parsed::Invalid("record length over the maximum");
    }
    let Some(body) = bytes.get(STORE_RECORD_HEADER_BYTES..STORE_RECORD_HEADER_BYTES + length)
    else {
        return Parsed::Cut;
    };
    if !header.verify(header_bytes, body) {
        return Parsed::Invalid("record checksum mismatch");
    }
    Parsed::Valid(header, body)
}

/// A window on a data file, refilled as records are read past it.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// Allocated at the first read (a reader served from the cache needs
    /// none).
    bytes: Vec<u8>,
    bytes_max: usize,
    /// File offset of `bytes[0]`.
    offset: u64,
    /// The segment the bytes are from.
    segment: u64,
    message_bytes_max: usize,
}

impl Chunk {
    pub(crate) fn new(message_bytes_max: usize) -> Chunk {
        Chunk {
            bytes: Vec::new(),
            bytes_max: READ_CHUNK_BYTES + STORE_RECORD_HEADER_BYTES + message_bytes_max,
            offset: 0,
            segment: 0,
            message_bytes_max,
        }
    }

    /// The record at `offset` of `files`' data, whose valid bytes end at
    /// `end`.
    pub(crate) fn record_at(
        &mut self,
        files: &SegmentFiles,
        offset: u64,
        end: u64,
    ) -> Result<Parsed<'_>, StoreError> {
        let held = self.segment == files.first_sequence
            && offset >= self.offset
            && offset < self.offset + self.bytes.len() as u64;
        let refill = !held || {
            // Read again from `offset` when the record goes past the bytes
            // held and the file has more.
            let at = (offset - self.offset) as usize;
            let available = self.bytes.len() - at;
            let wanted = match self.bytes[at..].first_chunk::<4>() {
                Some(length) => STORE_RECORD_HEADER_BYTES + u32::from_le_bytes(*length) as usize,
                None => STORE_RECORD_HEADER_BYTES,
            };
            available < wanted.min(STORE_RECORD_HEADER_BYTES + self.message_bytes_max)
                && self.offset + (self.bytes.len() as u64) < end
        };
        if refill {
            let wanted = (end.saturating_sub(offset)).min(self.bytes_max as u64) as usize;
            self.bytes.resize(wanted, 0);
            let read = files.read_data_some(&mut self.bytes, offset)?;
            self.bytes.truncate(read);
            self.offset = offset;
            self.segment = files.first_sequence;
        }
        let at = (offset - self.offset) as usize;
        Ok(parse_record(&self.bytes[at..], self.message_bytes_max))
    }
}

/// Replays a store from a sequence: the messages in order, each checked
/// (header, checksum, sequence). Messages still in the recent-message cache
/// are not read from disk. Holds one chunk buffer (64 KiB plus room for
/// the largest message) and, while reading an older segment, its files.
#[derive(Debug)]
pub struct StoreReader<'s> {
    store: &'s MessageStore,
    next: u64,
    chunk: Chunk,
    /// The next record's segment and offset, while reading sequentially.
    position: Option<(u64, u64)>,
    /// An older segment being read, and the length of its data file.
    older: Option<(SegmentFiles, u64)>,
}

impl<'s> StoreReader<'s> {
    pub(crate) fn new(store: &'s MessageStore, from_sequence: u64) -> StoreReader<'s> {
        StoreReader {
            store,
            next: from_sequence.max(1),
            chunk: Chunk::new(store.options.message_bytes_max),
            position: None,
            older: None,
        }
    }

    /// The sequence of the message the next call returns.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// The next message, or `None` past the store's last.
    #[allow(clippy::should_implement_trait)] // Lends from the reader: not an `Iterator`.
    pub fn next(&mut self) -> Result<Option<StoredMessage<'_>>, StoreError> {
        let sequence = self.next;
        if sequence > self.store.last_sequence {
            return Ok(None);
        }
        self.next += 1;
        if let Some((origin, bytes)) = self.store.cache.get(sequence) {
            self.position = None;
            return Ok(Some(StoredMessage {
                sequence,
                origin,
                bytes,
            }));
        }
        let segment = self.store.segment_first(sequence);
        let offset = match self.position {
            Some((at_segment, offset)) if at_segment == segment => offset,
            _ => self.locate(segment, sequence)?,
        };
        self.read_at(segment, offset, sequence)
    }

    fn locate(&mut self, segment: u64, sequence: u64) -> Result<u64, StoreError> {
        let tail = self
            .store
            .tail
            .as_ref()
            .expect("a store with messages has a tail");
        if tail.first_sequence == segment {
            self.older = None;
            return self.store.tail_offset(sequence);
        }
        if self.older.as_ref().map(|(files, _)| files.first_sequence) != Some(segment) {
            let files = SegmentFiles::open(&self.store.dir, segment)?;
            let data_bytes = files.data_bytes()?;
            self.older = Some((files, data_bytes));
        }
        let (files, _) = self.older.as_ref().expect("just opened");
        Ok(u64::from(files.index_entry(sequence - segment)?))
    }

    fn read_at(
        &mut self,
        segment: u64,
        offset: u64,
        sequence: u64,
    ) -> Result<Option<StoredMessage<'_>>, StoreError> {
        let store = self.store;
        let tail = store
            .tail
            .as_ref()
            .expect("a store with messages has a tail");
        let (files, end) = if tail.first_sequence == segment {
            if offset >= store.tail_data_on_file {
                let message = store.buffered_record(offset, sequence)?;
                self.position = Some((segment, offset + message.footprint));
                return Ok(Some(message.message));
            }
            store.settle()?;
            (&**tail, store.tail_data_on_file)
        } else {
            let (files, data_bytes) = self.older.as_ref().expect("located");
            (files, *data_bytes)
        };
        let parsed = self.chunk.record_at(files, offset, end)?;
        let (header, body) = checked_message(parsed, sequence)
            .map_err(|reason| store.corrupt(files, offset, sequence, reason))?;
        self.position = Some((segment, offset + header.footprint()));
        Ok(Some(StoredMessage {
            sequence,
            origin: header.origin,
            bytes: Cow::Borrowed(body),
        }))
    }
}

/// The message `parsed` must be: message `sequence`.
pub(crate) fn checked_message(
    parsed: Parsed<'_>,
    sequence: u64,
) -> Result<(StoreRecordHeader, &[u8]), &'static str> {
    match parsed {
        Parsed::Valid(header, body)
            if header.kind == RecordKind::Message && header.sequence == sequence =>
        {
            Ok((header, body))
        }
        Parsed::Valid(..) => Err("the index points at another record"),
        Parsed::Cut => Err("the record is cut short"),
        Parsed::Invalid(reason) => Err(reason),
    }
}
