//! Opening a store: its segments listed, each closed segment checked at
//! its end (header, index length, last record), the last one read whole.
//! A torn or damaged tail is cut — the store is derived data, so cutting
//! costs only a regeneration from the journal, never a refusal — and the
//! last segment's index is rebuilt from its records where it disagrees.
//!
//! Rules, in order:
//! 1. A closed segment whose header, index length or last record is wrong
//!    becomes the last segment: the ones after it are removed.
//! 2. The last segment's records are read from its header on; the first
//!    that is cut, fails its checksum, is out of sequence, has a smaller
//!    origin, or follows an end record ends the valid part, and the file is
//!    cut there.
//! 3. A last segment with no valid message (and no end record) is removed
//!    and the one before becomes the last.

#![forbid(unsafe_code)]

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::files::{SegmentFiles, io_error};
use super::format::{
    INDEX_ENTRY_BYTES, RecordKind, STORE_SEGMENT_HEADER_BYTES, decode_segment_header,
    parse_segment_file_name,
};
use super::reader::{Chunk, Parsed};
use super::{StoreError, StoreOptions, StoreRecovery};

/// The recovered last segment.
pub(crate) struct RecoveredTail {
    pub(crate) files: SegmentFiles,
    pub(crate) data_bytes: u64,
    pub(crate) entries: u64,
}

pub(crate) struct Recovered {
    pub(crate) sealed: Vec<u64>,
    pub(crate) tail: Option<RecoveredTail>,
    pub(crate) report: StoreRecovery,
}

/// Recovers the store in `dir` (created if missing).
pub(crate) fn recover(dir: &Path, options: &StoreOptions) -> Result<Recovered, StoreError> {
    std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    let mut segments = list_segments(dir)?;
    let mut report = StoreRecovery::default();
    let whole = count_whole_segments(dir, &segments, options)?;
    let keep = (whole + 1).min(segments.len());
    for &first in &segments[keep..] {
        SegmentFiles::remove(dir, first)?;
        report.segments_removed += 1;
    }
    segments.truncate(keep);
    while let Some(&first) = segments.last() {
        if let Some(tail) = scan_tail(dir, first, options, &mut report)? {
            segments.pop();
            return Ok(Recovered {
                sealed: segments,
                tail: Some(tail),
                report,
            });
        }
        SegmentFiles::remove(dir, first)?;
        report.segments_removed += 1;
        segments.pop();
    }
    Ok(Recovered {
        sealed: Vec::new(),
        tail: None,
        report: StoreRecovery {
            last_sequence: 0,
            last_origin: 0,
            ended: false,
            ..report
        },
    })
}

/// First sequences of the segments in `dir`, ascending.
fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        if let Some(first) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            segments.push(first);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// How many segments, from the first, are whole closed segments (each
/// checked at its end against the next one's first sequence).
fn count_whole_segments(
    dir: &Path,
    segments: &[u64],
    options: &StoreOptions,
) -> Result<usize, StoreError> {
    for (position, pair) in segments.windows(2).enumerate() {
        if !closed_segment_is_whole(dir, pair[0], pair[1], options)? {
            return Ok(position);
        }
    }
    Ok(segments.len().saturating_sub(1))
}

fn closed_segment_is_whole(
    dir: &Path,
    first: u64,
    next_first: u64,
    options: &StoreOptions,
) -> Result<bool, StoreError> {
    let files = SegmentFiles::open(dir, first)?;
    let count = next_first - first;
    if files.index_bytes()? != count * INDEX_ENTRY_BYTES as u64 || !header_names(&files, first)? {
        return Ok(false);
    }
    let offset = u64::from(files.index_entry(count - 1)?);
    let data_bytes = files.data_bytes()?;
    let mut chunk = Chunk::new(options.message_bytes_max);
    Ok(match chunk.record_at(&files, offset, data_bytes)? {
        Parsed::Valid(header, _) => {
            header.kind == RecordKind::Message
                && header.sequence == next_first - 1
                && offset + header.footprint() == data_bytes
        }
        Parsed::Cut | Parsed::Invalid(_) => false,
    })
}

fn header_names(files: &SegmentFiles, first: u64) -> Result<bool, StoreError> {
    let mut header = [0u8; STORE_SEGMENT_HEADER_BYTES];
    if files.read_data_some(&mut header, 0)? < STORE_SEGMENT_HEADER_BYTES {
        return Ok(false);
    }
    Ok(decode_segment_header(&header) == Ok(first))
}

/// What a scan of the last segment found.
#[derive(Default)]
struct Scan {
    valid_end: u64,
    messages: u64,
    last_origin: u64,
    ended: bool,
    /// The first message whose index entry is missing or wrong, and its
    /// record's offset.
    unindexed: Option<(u64, u64)>,
}

/// Reads the last segment whole, cuts what is not valid, rebuilds its
/// index; `None` if it holds nothing valid.
fn scan_tail(
    dir: &Path,
    first: u64,
    options: &StoreOptions,
    report: &mut StoreRecovery,
) -> Result<Option<RecoveredTail>, StoreError> {
    let files = SegmentFiles::open(dir, first)?;
    if !header_names(&files, first)? {
        return Ok(None);
    }
    let data_bytes = files.data_bytes()?;
    let scan = scan_records(&files, data_bytes, options)?;
    if scan.messages == 0 && !scan.ended {
        return Ok(None);
    }
    report.truncated_bytes += data_bytes - scan.valid_end;
    if let Some((position, offset)) = scan.unindexed {
        report.index_entries_rebuilt +=
            rebuild_index(&files, position, offset, scan.messages, options)?;
    }
    files.truncate(scan.valid_end, scan.messages)?;
    report.last_sequence = first + scan.messages - 1;
    report.last_origin = scan.last_origin;
    report.ended = scan.ended;
    Ok(Some(RecoveredTail {
        files,
        data_bytes: scan.valid_end,
        entries: scan.messages,
    }))
}

/// Reads the records of `files` from the header on, checking each and the
/// index entry that points at it.
fn scan_records(
    files: &SegmentFiles,
    data_bytes: u64,
    options: &StoreOptions,
) -> Result<Scan, StoreError> {
    let first = files.first_sequence;
    let index_entries = files.index_bytes()? / INDEX_ENTRY_BYTES as u64;
    let mut index = BufReader::with_capacity(64 << 10, &files.index);
    let mut chunk = Chunk::new(options.message_bytes_max);
    let mut scan = Scan {
        valid_end: STORE_SEGMENT_HEADER_BYTES as u64,
        ..Scan::default()
    };
    while scan.valid_end < data_bytes && !scan.ended {
        let offset = scan.valid_end;
        let header = match chunk.record_at(files, offset, data_bytes)? {
            Parsed::Valid(header, _) => header,
            Parsed::Cut | Parsed::Invalid(_) => break,
        };
        let expected = first + scan.messages;
        let in_order = header.origin >= scan.last_origin || scan.messages == 0;
        match header.kind {
            RecordKind::Message if header.sequence == expected && in_order => {
                if scan.unindexed.is_none()
                    && !entry_matches(&mut index, files, scan.messages, index_entries, offset)?
                {
                    scan.unindexed = Some((scan.messages, offset));
                }
                scan.messages += 1;
            }
            RecordKind::End if header.sequence + 1 == expected && header.length == 0 => {
                scan.ended = true;
            }
            _ => break,
        }
        scan.last_origin = header.origin;
        scan.valid_end = offset + header.footprint();
    }
    Ok(scan)
}

/// Whether index entry `position` (read in order) is `offset`.
fn entry_matches(
    index: &mut impl Read,
    files: &SegmentFiles,
    position: u64,
    index_entries: u64,
    offset: u64,
) -> Result<bool, StoreError> {
    if position >= index_entries {
        return Ok(false);
    }
    let mut entry = [0u8; INDEX_ENTRY_BYTES];
    index
        .read_exact(&mut entry)
        .map_err(|source| io_error(&files.index_path, source))?;
    Ok(u64::from(u32::from_le_bytes(entry)) == offset)
}

/// Writes index entries `position..messages` again from the records,
/// starting with the one at `offset`; returns how many.
fn rebuild_index(
    files: &SegmentFiles,
    position: u64,
    offset: u64,
    messages: u64,
    options: &StoreOptions,
) -> Result<u64, StoreError> {
    files
        .index
        .set_len(position * INDEX_ENTRY_BYTES as u64)
        .map_err(|source| io_error(&files.index_path, source))?;
    // The scan read the index through the file's cursor: write from the
    // entry named.
    let mut cursor = &files.index;
    cursor
        .seek(SeekFrom::Start(position * INDEX_ENTRY_BYTES as u64))
        .map_err(|source| io_error(&files.index_path, source))?;
    let mut writer = BufWriter::with_capacity(64 << 10, cursor);
    let data_bytes = files.data_bytes()?;
    let mut chunk = Chunk::new(options.message_bytes_max);
    let mut offset = offset;
    for _ in position..messages {
        let footprint = match chunk.record_at(files, offset, data_bytes)? {
            Parsed::Valid(header, _) => header.footprint(),
            parsed => {
                // The scan accepted this record a moment ago.
                return Err(StoreError::Corrupt {
                    path: files.data_path.clone(),
                    offset,
                    sequence: files.first_sequence + position,
                    reason: match parsed {
                        Parsed::Invalid(reason) => reason,
                        _ => "the record was cut during recovery",
                    },
                });
            }
        };
        let entry = u32::try_from(offset).expect("segments are at most u32::MAX bytes");
        writer
            .write_all(&entry.to_le_bytes())
            .map_err(|source| io_error(&files.index_path, source))?;
        offset += footprint;
    }
    writer
        .flush()
        .map_err(|source| io_error(&files.index_path, source))?;
    Ok(messages - position)
}
