//! Recovery: find the segments, verify every record, and decide what the
//! journal's end is.
//!
//! The rules:
//!
//! 1. Segment indexes are contiguous; each segment's header is intact and
//!    agrees with its file name; each segment's first sequence and link
//!    continue the previous segment's last record.
//! 2. Every record's checksum, sequence (previous + 1) and link (previous
//!    record's checksum) hold.
//! 3. Every segment but the last ends with a seal, or in zeros with the next
//!    segment continuing the chain (under `fsync` the flusher writes the seal
//!    after the successor's directory entry is durable, so a stop can come
//!    between). A sealed last segment means its successor is missing: an
//!    error, since the seal is only written once the successor exists. The
//!    appender leaves room for a seal after every record, so a last segment
//!    that its records fill exactly is an error too.
//! 4. At the end of the last segment, bytes that do not form a valid record
//!    are a *torn tail* — an append that did not finish — if and only if no
//!    valid later record follows them. A torn tail is zeroed (truncated) and
//!    reported. A bad record with a valid record after it is corruption in
//!    the middle: the start stops with an error naming the segment, the
//!    offset and the sequence number.
//! 5. A last segment with no records whose predecessor is not sealed (a stop
//!    between the successor's creation and the seal) is removed and
//!    reported; appends continue in the predecessor. So is a blank last
//!    segment (its header never reached the disk); if its predecessor's
//!    seal did, that seal is a torn tail.
//! 6. With `stop_after`, the operator's truncation: records after that
//!    sequence are neither checked nor kept.
//! 7. With a checkpoint (see the `checkpoint` module), every record at or
//!    below its sequence was acknowledged as durable: the journal must
//!    reach it, with the crc it recorded. Bad bytes there are never a torn
//!    tail, and a journal that ends before it (a cut at a record boundary,
//!    deleted segments) is refused with [`JournalError::BehindCheckpoint`].
//!    Only what lies beyond the checkpoint is torn-tail territory.
//! 8. A read-only scan beside a live writer (one that holds the lock) takes
//!    the first zero length of the last segment as the end: what follows is
//!    an append in progress, or appends published since the scan read that
//!    length.

use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::{IoContext, JournalError};
use crate::layout::{
    FORMAT_VERSION, RECORD_ALIGNMENT, RECORD_HEADER_BYTES, RecordHeader, SEAL,
    SEGMENT_HEADER_BYTES, SegmentHeader, SegmentHeaderError, record_checksum, record_footprint,
};
use crate::segment::{Segment, parse_segment_file_name, segment_file_name};

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files in use after recovery.
    pub segments: usize,
    /// The sequence of the first record present (a journal whose early
    /// segments were removed after a snapshot starts later than 1).
    pub first_sequence: u64,
    /// The last valid record's sequence; `first_sequence - 1` when there are
    /// none.
    pub last_sequence: u64,
    /// A torn tail that was (or, read-only, would be) truncated.
    pub torn_tail: Option<TornTail>,
    /// Files recovery removed (or, read-only, would remove): segments
    /// prepared ahead and never used, an empty last segment left by a stop
    /// during roll-over.
    pub removed: Vec<PathBuf>,
}

/// The unfinished append at the end of a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Where the torn record starts: the new end of the journal.
    pub offset: u64,
    /// Bytes from `offset` that were not zero.
    pub bytes: u64,
    /// Why the bytes there are not a record.
    pub reason: String,
}

/// The segment files of a directory, in index order, and the prepared
/// (`.next`) files, which hold no records.
pub(crate) struct Listing {
    pub(crate) segments: Vec<(u64, u64, PathBuf)>,
    pub(crate) pending: Vec<PathBuf>,
}

pub(crate) fn list_segments(dir: &Path) -> Result<Listing, JournalError> {
    let mut segments = Vec::new();
    let mut pending = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((index, first)) = parse_segment_file_name(name) {
            segments.push((index, first, entry.path()));
        } else if name.starts_with("segment-") && name.ends_with(".next") {
            pending.push(entry.path());
        }
    }
    segments.sort_by_key(|&(index, _, _)| index);
    for pair in segments.windows(2) {
        let (before, after) = (pair[0].0, pair[1].0);
        if after != before + 1 {
            return Err(JournalError::MissingSegment {
                dir: dir.to_path_buf(),
                index: before + 1,
                reason: format!("segments {before} and {after} are both present"),
            });
        }
    }
    pending.sort();
    Ok(Listing { segments, pending })
}

/// Where a segment's records end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SegmentEnd {
    /// Ends with a seal at this offset.
    Sealed(usize),
    /// Records fill the file exactly.
    Full,
    /// Zeros from this offset on: appends continue here.
    Open(usize),
    /// The bytes `offset..nonzero_end` are an unfinished append (last segment
    /// only: no valid record follows them).
    Torn {
        offset: usize,
        nonzero_end: usize,
        reason: String,
    },
    /// The operator's truncation point: the record `stop_after` ends here.
    Stopped(usize),
}

/// The running state of a scan across segments.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    /// The sequence the next record must have.
    pub(crate) next_sequence: u64,
    /// The checksum the next record must link to.
    pub(crate) last_checksum: u32,
    /// The last record's term (the next may not have a smaller one).
    pub(crate) last_term: u64,
    /// The checkpoint the scan holds the journal to, if any.
    pub(crate) checkpoint: Option<Checkpoint>,
    /// The crc of the record at the checkpoint's sequence, once seen.
    pub(crate) checkpoint_record: Option<u32>,
}

impl Chain {
    pub(crate) fn empty() -> Chain {
        Chain {
            next_sequence: 1,
            last_checksum: 0,
            last_term: 0,
            checkpoint: None,
            checkpoint_record: None,
        }
    }

    /// Whether the next record is at or below the checkpoint: acknowledged.
    fn next_is_acknowledged(&self) -> bool {
        self.checkpoint
            .is_some_and(|checkpoint| self.next_sequence <= checkpoint.sequence)
    }

    /// Takes in a valid record.
    fn advance(&mut self, header: &RecordHeader) {
        if self
            .checkpoint
            .is_some_and(|checkpoint| checkpoint.sequence == header.sequence)
        {
            self.checkpoint_record = Some(header.checksum);
        }
        self.next_sequence += 1;
        self.last_checksum = header.checksum;
        self.last_term = header.term;
    }
}

/// The refusal of a journal that does not reach its checkpoint.
pub(crate) fn behind_checkpoint(
    dir: &Path,
    checkpoint: &Checkpoint,
    found: String,
) -> JournalError {
    JournalError::BehindCheckpoint {
        dir: dir.to_path_buf(),
        found,
        generation: checkpoint.generation,
        sequence: checkpoint.sequence,
        checksum: checkpoint.checksum,
    }
}

/// Checks a segment's header against its name and the chain, starting the
/// chain at the first segment.
pub(crate) fn check_segment_header(
    segment: &Segment,
    chain: &mut Option<Chain>,
    is_last: bool,
) -> Result<(), JournalError> {
    let expected_sequence = chain.map_or(segment.first_sequence, |c| c.next_sequence);
    let corrupt = |reason: String| JournalError::Corrupt {
        segment: segment.path.clone(),
        offset: 0,
        sequence: expected_sequence,
        reason,
    };
    // SAFETY: recovery runs before the segment is shared with a writer.
    let bytes = unsafe { segment.bytes(0, SEGMENT_HEADER_BYTES) };
    let header =
        SegmentHeader::decode(bytes.try_into().expect("64 bytes")).map_err(
            |error| match error {
                SegmentHeaderError::Version(found) => JournalError::IncompatibleVersion {
                    path: segment.path.clone(),
                    found,
                    supported: FORMAT_VERSION,
                },
                _ => corrupt(format!("segment header: {}", error.describe())),
            },
        )?;
    if header.index != segment.index || header.first_sequence != segment.first_sequence {
        return Err(corrupt(format!(
            "the header says segment {} from sequence {}, the file name segment {} from {}",
            header.index, header.first_sequence, segment.index, segment.first_sequence
        )));
    }
    let capacity = segment.capacity() as u64;
    if header.capacity != capacity && !(is_last && capacity < header.capacity) {
        return Err(corrupt(format!(
            "the header says {} bytes, the file has {capacity}",
            header.capacity
        )));
    }
    match chain {
        None => {
            *chain = Some(Chain {
                next_sequence: header.first_sequence,
                last_checksum: header.previous_checksum,
                ..Chain::empty()
            })
        }
        Some(chain) => {
            if header.first_sequence != chain.next_sequence
                || header.previous_checksum != chain.last_checksum
            {
                return Err(corrupt(format!(
                    "the segment starts at sequence {} linking to {:#010x}; the previous segment \
                     ends before {} with checksum {:#010x}",
                    header.first_sequence,
                    header.previous_checksum,
                    chain.next_sequence,
                    chain.last_checksum
                )));
            }
        }
    }
    Ok(())
}

/// Why the record at `offset` is not the next valid record of the chain,
/// or `None` when it is (its header is returned through `valid`).
fn check_record(
    segment: &Segment,
    offset: usize,
    length: u32,
    chain: &Chain,
    valid: &mut Option<RecordHeader>,
) -> Option<String> {
    let capacity = segment.capacity();
    let length_bytes = length as usize;
    if length_bytes < RECORD_HEADER_BYTES {
        return Some(format!("length {length} is shorter than a record header"));
    }
    let body_bytes = length_bytes - RECORD_HEADER_BYTES;
    if offset + record_footprint(body_bytes) > capacity {
        return Some(format!("length {length} runs past the end of the segment"));
    }
    // SAFETY: recovery and verification read segments nobody writes.
    let header_bytes = unsafe { segment.bytes(offset, RECORD_HEADER_BYTES) };
    let header_bytes: &[u8; RECORD_HEADER_BYTES] = header_bytes.try_into().expect("32 bytes");
    let header = RecordHeader::decode(header_bytes);
    // SAFETY: as above.
    let body = unsafe { segment.bytes(offset + RECORD_HEADER_BYTES, body_bytes) };
    if record_checksum(header_bytes, body) != header.checksum {
        return Some("checksum mismatch".to_owned());
    }
    if header.record_type == 0 || header.flags != 0 {
        return Some(format!(
            "record type {} with flags {:#06x}",
            header.record_type, header.flags
        ));
    }
    if header.sequence != chain.next_sequence {
        return Some(format!("sequence {} out of order", header.sequence));
    }
    if header.term < chain.last_term {
        return Some(format!(
            "term {} is below the previous record's {}",
            header.term, chain.last_term
        ));
    }
    if header.previous_checksum != chain.last_checksum {
        return Some(format!(
            "links to {:#010x}, the previous record's checksum is {:#010x}",
            header.previous_checksum, chain.last_checksum
        ));
    }
    // SAFETY: as above.
    let padding = unsafe {
        segment.bytes(
            offset + length_bytes,
            record_footprint(body_bytes) - length_bytes,
        )
    };
    if padding.iter().any(|&b| b != 0) {
        return Some("padding after the record is not zero".to_owned());
    }
    *valid = Some(header);
    None
}

/// Walks a segment's records from the header on, extending `chain`.
pub(crate) fn scan_segment(
    segment: &Segment,
    chain: &mut Chain,
    is_last: bool,
    stop_after: Option<u64>,
    live_writer: bool,
) -> Result<SegmentEnd, JournalError> {
    let capacity = segment.capacity();
    let mut offset = SEGMENT_HEADER_BYTES;
    loop {
        if stop_after.is_some_and(|stop| chain.next_sequence > stop) {
            return Ok(SegmentEnd::Stopped(offset));
        }
        if offset == capacity {
            return Ok(SegmentEnd::Full);
        }
        let length = segment.load_length(offset);
        if length == SEAL {
            return Ok(SegmentEnd::Sealed(offset));
        }
        let reason = if length == 0 {
            // A writer that holds the journal open publishes records in
            // order and each one's length last: a zero length in its last
            // segment is its end, and the bytes after it are an append in
            // progress (or appends published since this scan read the
            // length), not damage.
            if live_writer && is_last {
                return Ok(SegmentEnd::Open(offset));
            }
            let nonzero_end = nonzero_end(segment, offset);
            if nonzero_end == offset {
                return Ok(SegmentEnd::Open(offset));
            }
            "an append that never published its length".to_owned()
        } else {
            let mut header = None;
            match check_record(segment, offset, length, chain, &mut header) {
                None => {
                    let header = header.expect("a valid record has a header");
                    chain.advance(&header);
                    offset += record_footprint(length as usize - RECORD_HEADER_BYTES);
                    continue;
                }
                Some(reason) => reason,
            }
        };
        let corrupt = |reason: String| JournalError::Corrupt {
            segment: segment.path.clone(),
            offset: offset as u64,
            sequence: chain.next_sequence,
            reason,
        };
        if stop_after.is_some() || !is_last {
            return Err(corrupt(reason));
        }
        if let Some(later) = valid_record_after(segment, offset, chain.next_sequence) {
            return Err(corrupt(format!(
                "{reason}, and a valid record (sequence {}) follows at offset {later}",
                later_sequence(segment, later)
            )));
        }
        // Bad bytes where an acknowledged record must be are never a torn
        // tail.
        if let Some(checkpoint) = chain.checkpoint.filter(|_| chain.next_is_acknowledged()) {
            let dir = segment.path.parent().unwrap_or(Path::new("."));
            return Err(behind_checkpoint(
                dir,
                &checkpoint,
                format!(
                    "{reason} in {} at offset {offset}, where the acknowledged record {} must be",
                    segment.path.display(),
                    chain.next_sequence
                ),
            ));
        }
        return Ok(SegmentEnd::Torn {
            offset,
            nonzero_end: nonzero_end(segment, offset),
            reason,
        });
    }
}

/// The end of the non-zero bytes from `offset` on, rounded up to a word.
fn nonzero_end(segment: &Segment, offset: usize) -> usize {
    // SAFETY: recovery reads segments nobody writes.
    let rest = unsafe { segment.bytes(offset, segment.capacity() - offset) };
    match rest.iter().rposition(|&b| b != 0) {
        None => offset,
        Some(last) => (offset + last + 1).next_multiple_of(RECORD_ALIGNMENT),
    }
}

/// The offset of a checksum-valid record with a sequence at or after
/// `sequence_min`, somewhere after `offset`.
fn valid_record_after(segment: &Segment, offset: usize, sequence_min: u64) -> Option<usize> {
    let capacity = segment.capacity();
    let mut candidate = offset + RECORD_ALIGNMENT;
    while candidate + RECORD_HEADER_BYTES <= capacity {
        // SAFETY: recovery reads segments nobody writes.
        let header_bytes = unsafe { segment.bytes(candidate, RECORD_HEADER_BYTES) };
        let header_bytes: &[u8; RECORD_HEADER_BYTES] = header_bytes.try_into().expect("32 bytes");
        let header = RecordHeader::decode(header_bytes);
        let length = header.length as usize;
        let plausible = header.length != 0
            && header.length != SEAL
            && length >= RECORD_HEADER_BYTES
            && candidate + length <= capacity
            && header.sequence >= sequence_min;
        if plausible {
            // SAFETY: as above; in bounds by `plausible`.
            let body = unsafe {
                segment.bytes(
                    candidate + RECORD_HEADER_BYTES,
                    length - RECORD_HEADER_BYTES,
                )
            };
            if record_checksum(header_bytes, body) == header.checksum {
                return Some(candidate);
            }
        }
        candidate += RECORD_ALIGNMENT;
    }
    None
}

fn later_sequence(segment: &Segment, offset: usize) -> u64 {
    // SAFETY: recovery reads segments nobody writes.
    let header_bytes = unsafe { segment.bytes(offset, RECORD_HEADER_BYTES) };
    RecordHeader::decode(header_bytes.try_into().expect("32 bytes")).sequence
}

/// Whether a segment holds no records at all.
pub(crate) fn segment_is_empty(segment: &Segment) -> bool {
    nonzero_end(segment, SEGMENT_HEADER_BYTES) == SEGMENT_HEADER_BYTES
}

/// The result of scanning a whole directory.
pub(crate) struct Scan {
    pub(crate) segments: Vec<Segment>,
    pub(crate) chain: Chain,
    /// How the last segment ends.
    pub(crate) end: SegmentEnd,
    pub(crate) report: RecoveryReport,
}

/// Opens and verifies every segment of `dir` (see the module docs). Changes
/// nothing on disk: the caller applies the truncation the scan decided on.
pub(crate) fn scan_directory(
    dir: &Path,
    writable: bool,
    stop_after: Option<u64>,
    live_writer: bool,
    checkpoint: Option<Checkpoint>,
) -> Result<Scan, JournalError> {
    let listing = list_segments(dir)?;
    let mut report = RecoveryReport {
        removed: listing.pending.clone(),
        ..RecoveryReport::default()
    };
    let mut segments = Vec::with_capacity(listing.segments.len());
    for (index, first, path) in &listing.segments {
        segments.push(Segment::open(path, *index, *first, writable).at(path)?);
    }
    let mut chain: Option<Chain> = None;
    let mut end = SegmentEnd::Open(SEGMENT_HEADER_BYTES);
    let mut position = 0;
    while position < segments.len() {
        let is_last = position + 1 == segments.len();
        let segment = &segments[position];
        if let Err(error) = check_segment_header(segment, &mut chain, is_last) {
            if is_last && stop_after.is_none() && blank_last_segment(segment) {
                report.removed.push(segment.path.clone());
                segments.pop();
                // The predecessor's seal promised the segment just removed:
                // it is the unfinished part of that roll-over, a torn tail.
                if let SegmentEnd::Sealed(offset) = end {
                    end = SegmentEnd::Torn {
                        offset,
                        nonzero_end: offset + RECORD_ALIGNMENT,
                        reason: "a seal whose successor never got its header".to_owned(),
                    };
                }
                break;
            }
            return Err(error);
        }
        let chain = chain.as_mut().expect("set by the first header");
        if position == 0 {
            report.first_sequence = chain.next_sequence;
            chain.checkpoint = checkpoint;
            if checkpoint.is_some_and(|c| c.sequence + 1 == chain.next_sequence) {
                chain.checkpoint_record = Some(chain.last_checksum);
            }
        }
        end = scan_segment(segment, chain, is_last, stop_after, live_writer)?;
        if is_last && end == SegmentEnd::Full && cut_short(segment) {
            // Read-only, a last file cut short is read up to its end, which
            // is where its records stop, not a finished segment.
            end = SegmentEnd::Open(segment.capacity());
        }
        match &end {
            SegmentEnd::Stopped(_) => {
                segments.truncate(position + 1);
                break;
            }
            // Beside a live writer, the segment was finished after the
            // listing: its successor exists now, and this scan ends here, at
            // a record boundary (a read-only view of a moving journal).
            SegmentEnd::Sealed(_) | SegmentEnd::Full
                if is_last
                    && live_writer
                    && dir
                        .join(segment_file_name(segment.index + 1, chain.next_sequence))
                        .exists() =>
            {
                break;
            }
            // The appender leaves room for a seal after every record, so a
            // full segment, like a sealed one, was finished: its successor
            // must exist.
            SegmentEnd::Sealed(_) | SegmentEnd::Full if is_last => {
                return Err(JournalError::MissingSegment {
                    dir: dir.to_path_buf(),
                    index: segment.index + 1,
                    reason: format!(
                        "segment {} is finished (sealed or full), and its successor is created \
                         before a segment is finished",
                        segment.index
                    ),
                });
            }
            SegmentEnd::Open(offset) if !is_last => {
                let offset = *offset;
                let next = &segments[position + 1];
                let next_is_empty_last = position + 2 == segments.len()
                    && (blank_last_segment(next)
                        || check_segment_header(next, &mut Some(*chain), true).is_ok()
                            && segment_is_empty(next));
                if next_is_empty_last {
                    report.removed.push(next.path.clone());
                    segments.pop();
                    break;
                }
                // The appender rolled over and the flusher had not written
                // the seal yet: fine if the next segment continues the chain.
                if let Err(error) =
                    check_segment_header(next, &mut Some(*chain), position + 2 == segments.len())
                {
                    return Err(JournalError::Corrupt {
                        segment: segment.path.clone(),
                        offset: offset as u64,
                        sequence: chain.next_sequence,
                        reason: format!(
                            "the records end here without a seal, and the next segment does not \
                             continue them ({error})"
                        ),
                    });
                }
            }
            _ => {}
        }
        position += 1;
    }
    let chain = chain.unwrap_or_else(Chain::empty);
    if let Some(checkpoint) = &checkpoint {
        check_against_checkpoint(dir, &segments, &chain, &end, checkpoint)?;
    }
    if stop_after.is_some_and(|stop| stop >= chain.next_sequence) {
        return Err(JournalError::TruncateBeyondEnd {
            requested: stop_after.expect("checked"),
            last: chain.next_sequence - 1,
        });
    }
    if segments.is_empty() {
        report.first_sequence = chain.next_sequence;
    }
    report.segments = segments.len();
    report.last_sequence = chain.next_sequence - 1;
    if let SegmentEnd::Torn {
        offset,
        nonzero_end,
        reason,
    } = &end
    {
        report.torn_tail = Some(TornTail {
            segment: segments.last().expect("torn in a segment").path.clone(),
            offset: *offset as u64,
            bytes: (nonzero_end - offset) as u64,
            reason: reason.clone(),
        });
    }
    Ok(Scan {
        segments,
        chain,
        end,
        report,
    })
}

/// A journal must reach its checkpoint, with the crc it recorded there.
fn check_against_checkpoint(
    dir: &Path,
    segments: &[Segment],
    chain: &Chain,
    end: &SegmentEnd,
    checkpoint: &Checkpoint,
) -> Result<(), JournalError> {
    let Some(last_segment) = segments.last() else {
        if checkpoint.sequence == 0 {
            return Ok(());
        }
        return Err(behind_checkpoint(
            dir,
            checkpoint,
            "there are no journal segments at all".to_owned(),
        ));
    };
    let last = chain.next_sequence - 1;
    if last < checkpoint.sequence {
        let at = match end {
            SegmentEnd::Open(offset) | SegmentEnd::Torn { offset, .. } => {
                format!(" at offset {offset}")
            }
            _ => String::new(),
        };
        return Err(behind_checkpoint(
            dir,
            checkpoint,
            format!(
                "the journal ends at sequence {last}, in {}{at}",
                last_segment.path.display()
            ),
        ));
    }
    match chain.checkpoint_record {
        Some(checksum) if checksum != checkpoint.checksum => Err(behind_checkpoint(
            dir,
            checkpoint,
            format!(
                "record {} has crc {checksum:#010x}: another journal's record",
                checkpoint.sequence
            ),
        )),
        // Present and matching, or before the first segment present (removed
        // after a snapshot covered it).
        _ => Ok(()),
    }
}

/// Whether a segment's file is shorter than its header says.
fn cut_short(segment: &Segment) -> bool {
    // SAFETY: recovery reads segments nobody writes.
    let header = unsafe { segment.bytes(0, SEGMENT_HEADER_BYTES) };
    SegmentHeader::decode(header.try_into().expect("64 bytes"))
        .is_ok_and(|header| header.capacity > segment.capacity() as u64)
}

/// A last segment whose header never reached the disk and that holds
/// nothing: created at roll-over by a process that stopped, with the page
/// holding the header lost.
fn blank_last_segment(segment: &Segment) -> bool {
    // SAFETY: recovery reads segments nobody writes.
    let header = unsafe { segment.bytes(0, SEGMENT_HEADER_BYTES) };
    SegmentHeader::decode(header.try_into().expect("64 bytes")) == Err(SegmentHeaderError::Blank)
        && segment_is_empty(segment)
}
