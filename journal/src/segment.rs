//! One segment file: preallocated, zero-filled, mapped shared, and accessed
//! by one writer and any number of readers.
//!
//! The memory is shared between threads through raw pointers, so this is
//! where the crate's `unsafe` lives. The discipline that makes it sound:
//!
//! - Exactly one writer (the [`crate::Journal`], through `&mut self`) writes
//!   record bytes, and only at or beyond the segment's published end.
//! - A record becomes visible when its `length` word is stored with release
//!   ordering, after every other byte of it; readers load `length` with
//!   acquire ordering and read only the bytes of records they have seen
//!   published, which nobody writes again while the segment is shared.
//! - Recovery and the operator's truncation change published bytes only
//!   before the segment is shared (single-threaded, at open).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::layout::{
    RECORD_ALIGNMENT, RECORD_HEADER_BYTES, RecordHeader, SEAL, SEGMENT_HEADER_BYTES,
};

/// A segment's file name: `segment-<index, 8 digits>-first-<first sequence,
/// 20 digits>.journal`, so that names sort in journal order and say where
/// each one starts.
pub(crate) fn segment_file_name(index: u64, first_sequence: u64) -> String {
    format!("segment-{index:08}-first-{first_sequence:020}.journal")
}

/// The index and first sequence a segment's file name states.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("segment-")?.strip_suffix(".journal")?;
    let (index, first) = rest.split_once("-first-")?;
    if index.len() < 8 || first.len() != 20 {
        return None;
    }
    Some((index.parse().ok()?, first.parse().ok()?))
}

/// A segment prepared ahead of need is called this until it gets its header.
pub(crate) fn pending_file_name(index: u64) -> String {
    format!("segment-{index:08}.next")
}

/// A mapped segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) index: u64,
    pub(crate) first_sequence: u64,
    pub(crate) path: PathBuf,
    /// The file is not kept open: the mapping outlives the descriptor, and
    /// a long-running journal must not use one descriptor per segment.
    map: MmapRaw,
    capacity: usize,
    writable: bool,
    /// The end of the last published record (or of the seal). The flusher
    /// syncs up to here.
    published_end: AtomicUsize,
    /// Under the `fsync` policy, where the flusher must write this
    /// segment's seal once its successor's directory entry is durable
    /// (`usize::MAX`: none pending).
    pending_seal: AtomicUsize,
}

impl Segment {
    /// Maps an existing segment file (whole), for writing or read-only.
    pub(crate) fn open(
        path: &Path,
        index: u64,
        first_sequence: u64,
        writable: bool,
    ) -> io::Result<Segment> {
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        let length = file.metadata()?.len();
        // Read-only, a file cut to an odd length (its writer's recovery
        // restores it) is read up to its last whole word: the cut record is
        // a torn tail like any other.
        let whole_words = !writable || length.is_multiple_of(RECORD_ALIGNMENT as u64);
        if length < SEGMENT_HEADER_BYTES as u64 || !whole_words {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {length} bytes: not a whole number of 8-byte words after a header",
                    path.display()
                ),
            ));
        }
        let map = if writable {
            MmapOptions::new().map_raw(&file)?
        } else {
            MmapOptions::new().map_raw_read_only(&file)?
        };
        Ok(Segment {
            index,
            first_sequence,
            path: path.to_path_buf(),
            capacity: map.len() / RECORD_ALIGNMENT * RECORD_ALIGNMENT,
            map,
            writable,
            published_end: AtomicUsize::new(SEGMENT_HEADER_BYTES),
            pending_seal: AtomicUsize::new(usize::MAX),
        })
    }

    /// The file's size in whole words: where records must end.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn published_end(&self) -> usize {
        self.published_end.load(Ordering::Acquire)
    }

    pub(crate) fn set_published_end(&self, end: usize) {
        debug_assert!(end <= self.capacity());
        self.published_end.store(end, Ordering::Release);
    }

    /// The `length` word of the record at `offset`, loaded with acquire
    /// ordering: when it is non-zero, every byte of the record is visible.
    pub(crate) fn load_length(&self, offset: usize) -> u32 {
        assert!(offset.is_multiple_of(RECORD_ALIGNMENT) && offset + 4 <= self.capacity());
        let address = self.map.as_mut_ptr().wrapping_add(offset).cast::<u32>();
        if !self.writable {
            // A read-only mapping is not valid for writes, which an atomic
            // needs; its writer, if any, is another process, outside this
            // program's memory model. A volatile load, then an acquire
            // fence for the bytes read after it.
            // SAFETY: in bounds (asserted) of a mapping that lives as long
            // as `self`, and 4-aligned (page-aligned mapping, offset a
            // multiple of 8).
            let length = unsafe { address.read_volatile() };
            std::sync::atomic::fence(Ordering::Acquire);
            return length;
        }
        // SAFETY: the mapping is live for `self`'s lifetime and writable,
        // `offset + 4` is inside it (asserted), and the address is 4-aligned
        // because the mapping is page-aligned and `offset` is a multiple of
        // 8. The word is only ever written through `store_length`
        // (atomically) or before the segment is shared.
        let word = unsafe { AtomicU32::from_ptr(address) };
        word.load(Ordering::Acquire)
    }

    /// Publishes the record at `offset` by storing its `length` with release
    /// ordering, after all its other bytes were written.
    pub(crate) fn store_length(&self, offset: usize, length: u32) {
        assert!(self.writable);
        assert!(offset.is_multiple_of(RECORD_ALIGNMENT) && offset + 4 <= self.capacity());
        // SAFETY: as in `load_length`; the mapping is writable (asserted).
        let word = unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(offset).cast::<u32>()) };
        word.store(length, Ordering::Release);
    }

    /// The header of the published record at `offset` (a record boundary
    /// below the published end), or `None` at a seal or a zero length.
    pub(crate) fn published_header(&self, offset: usize) -> Option<RecordHeader> {
        assert!(offset >= SEGMENT_HEADER_BYTES);
        if offset + RECORD_HEADER_BYTES > self.published_end() {
            return None;
        }
        let length = self.load_length(offset);
        if length == 0 || length == SEAL {
            return None;
        }
        // SAFETY: the record is published (its length was loaded with
        // acquire ordering, below the published end) and published bytes
        // are never written again while the segment is shared.
        let bytes = unsafe { self.bytes(offset, RECORD_HEADER_BYTES) };
        Some(RecordHeader::decode(
            bytes.try_into().expect("a record header"),
        ))
    }

    /// Bytes `offset..offset + length` of the segment.
    ///
    /// # Safety
    ///
    /// Nobody may write these bytes while the slice lives: they belong to
    /// records published before (seen through [`Segment::load_length`]), or
    /// the segment is not shared with a writer.
    pub(crate) unsafe fn bytes(&self, offset: usize, length: usize) -> &[u8] {
        assert!(
            offset
                .checked_add(length)
                .is_some_and(|end| end <= self.capacity())
        );
        // SAFETY: in bounds (asserted) of a mapping that lives as long as
        // `self`; the caller guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset), length) }
    }

    /// Copies `bytes` to `offset`.
    ///
    /// # Safety
    ///
    /// Only the journal's single writer may call this, and only for bytes no
    /// reader reads: at or beyond the published end, or before the segment
    /// is shared.
    pub(crate) unsafe fn write(&self, offset: usize, bytes: &[u8]) {
        assert!(self.writable);
        assert!(
            offset
                .checked_add(bytes.len())
                .is_some_and(|end| end <= self.capacity())
        );
        // SAFETY: in bounds (asserted) of a live writable mapping; the caller
        // guarantees that nobody reads or writes these bytes concurrently.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.map.as_mut_ptr().add(offset),
                bytes.len(),
            );
        }
    }

    /// Fills `offset..end` with zeros (recovery's truncation of a torn tail,
    /// the operator's truncation).
    ///
    /// # Safety
    ///
    /// As for [`Segment::write`]: the segment is not shared.
    pub(crate) unsafe fn zero(&self, offset: usize, end: usize) {
        assert!(offset <= end && end <= self.capacity());
        assert!(self.writable);
        // SAFETY: in bounds (asserted) of a live writable mapping that the
        // caller guarantees nobody else touches.
        unsafe { std::ptr::write_bytes(self.map.as_mut_ptr().add(offset), 0, end - offset) };
    }

    /// Makes `offset..end` durable (msync).
    pub(crate) fn sync_range(&self, offset: usize, end: usize) -> io::Result<()> {
        if end > offset {
            self.map.flush_range(offset, end - offset)?;
        }
        Ok(())
    }

    /// Makes the whole file durable. Its size never changes after it is
    /// prepared (and synced), so syncing the mapped data is enough.
    pub(crate) fn sync_all(&self) -> io::Result<()> {
        self.map.flush()
    }

    /// Drops this process's resident pages of a finished segment: the bytes
    /// stay in the file and the page cache, and a later read through the
    /// mapping faults them back in. Called once a segment is sealed and
    /// synced (the flusher) and when a reader leaves it, so that the
    /// journal's share of the resident memory is the segments in use, not
    /// the day's volume. Best effort: a refusal leaves the pages resident.
    pub(crate) fn release_resident_pages(&self) {
        // SAFETY: the mapping is shared and file-backed (never private or
        // anonymous), so MADV_DONTNEED only removes this process's page-table
        // entries; the bytes, dirty ones included, stay in the page cache and
        // the file, and every later access through the mapping (a reader
        // still holding a record's slice, an msync) sees the same bytes.
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// Drops this process's page-table entries for the whole pages of
    /// `offset..end` (rounded inward at the end, outward at the start: the
    /// page holding `end` may still be written). Before an msync of the same
    /// range: writing back a page that is mapped writable write-protects its
    /// entry, and each write-protection flushes the TLB of every core
    /// running this process with an interrupt (one per page; in a virtual
    /// machine each costs an exit on both sides). Zapped first, the entries
    /// go in one batched flush and the write-back finds none; the dirty
    /// bytes stay in the page cache and are written back all the same, and a
    /// later access through the mapping faults them back in. Best effort.
    pub(crate) fn release_written_pages(&self, offset: usize, end: usize) {
        let end = end.min(self.capacity()) / RELEASE_PAGE_BYTES * RELEASE_PAGE_BYTES;
        let offset = offset / RELEASE_PAGE_BYTES * RELEASE_PAGE_BYTES;
        if end <= offset {
            return;
        }
        // SAFETY: as for `release_resident_pages` (a shared, file-backed
        // mapping: only this process's page-table entries go; the bytes,
        // dirty ones included, stay in the page cache and the file); the
        // range is in bounds.
        let _ = unsafe {
            self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                offset,
                end - offset,
            )
        };
    }

    /// Seals the segment at `offset`: readers and recovery continue in the
    /// next segment from there.
    pub(crate) fn seal(&self, offset: usize) {
        if offset < self.capacity() {
            self.store_length(offset, SEAL);
            self.set_published_end((offset + RECORD_ALIGNMENT).min(self.capacity()));
        }
    }

    /// Leaves the seal at `offset` to the flusher.
    pub(crate) fn defer_seal(&self, offset: usize) {
        self.pending_seal.store(offset, Ordering::Release);
    }

    /// Writes the seal the appender left to the flusher, if any.
    pub(crate) fn write_pending_seal(&self) {
        let offset = self.pending_seal.swap(usize::MAX, Ordering::AcqRel);
        if offset != usize::MAX {
            self.seal(offset);
        }
    }
}

/// Bytes of each `write` of zeros that preallocates a segment: one page
/// (see [`SegmentBuilder`]).
const ZERO_WRITE_BYTES: usize = 4096;

/// The page size [`Segment::release_written_pages`] rounds to. Where pages
/// are larger the kernel rounds the range's end up, and the page holding
/// the append position may be zapped too: the appender then takes one
/// fault on it, nothing worse.
const RELEASE_PAGE_BYTES: usize = 4096;

/// A [`PreparedSegment`] being made, a page per [`SegmentBuilder::step`]:
/// so its owner can spread the work over its own idle time (the engine
/// thread's, on a machine whose other cores are busy) rather than hand it
/// to a thread that competes for them.
///
/// It writes `segment-<index>.next` full of zeros, one page per `write`,
/// then (with `prefault`) maps it and touches every page for writing.
/// Writing the zeros (rather than `set_len`, which leaves a hole) fills the
/// page cache and has the kernel allocate the blocks in the background, off
/// the appending thread; touching the pages means appends take no
/// first-write faults.
///
/// One page per `write`, not bigger chunks: the page cache may keep the
/// file in folios as large as each write (ext4 did: 1 MiB folios for 1 MiB
/// writes), and an msync of a small range writes back and write-protects
/// every page of the folios it touches, so under the `fsync` policy the
/// appender took a write fault on nearly every page it wrote. Written a
/// page at a time, the folios are single pages and a sync write-protects
/// only the pages of the range it syncs.
///
/// The zeros are not synced here. Syncing the whole segment at every
/// roll-over saturated the device for about 130 ms and made group commit's
/// p99: 55-87 ms with it, 6-10 ms without (`exchange bench journal`, three
/// alternating runs each; p50 0.3 ms with it, 0.4-0.7 ms without). Nothing
/// depends on the zeros being on disk: the flusher's msync of a range is an
/// fdatasync of it, which also commits what is needed to read it back
/// (size, allocation), and a range never synced reads back as zeros (ext4
/// in its default `data=ordered` mode never exposes stale blocks) or a torn
/// tail.
#[derive(Debug)]
pub(crate) struct SegmentBuilder {
    path: PathBuf,
    index: u64,
    segment_bytes: usize,
    prefault: bool,
    /// Open while zeros are being written; `None` once they all are.
    file: Option<File>,
    zeros_written: usize,
    /// Mapped once the zeros are written.
    segment: Option<Segment>,
    pages_touched: usize,
}

impl SegmentBuilder {
    /// Creates the (empty) file; the steps fill it.
    pub(crate) fn start(
        dir: &Path,
        index: u64,
        segment_bytes: usize,
        prefault: bool,
    ) -> io::Result<SegmentBuilder> {
        assert!(
            segment_bytes.is_multiple_of(RECORD_ALIGNMENT) && segment_bytes > SEGMENT_HEADER_BYTES
        );
        let path = dir.join(pending_file_name(index));
        let file = File::create(&path)?;
        Ok(SegmentBuilder {
            path,
            index,
            segment_bytes,
            prefault,
            file: Some(file),
            zeros_written: 0,
            segment: None,
            pages_touched: 0,
        })
    }

    /// Whether every step is done ([`SegmentBuilder::finish`] then only
    /// hands the segment over).
    pub(crate) fn is_done(&self) -> bool {
        self.segment.as_ref().is_some_and(|segment| {
            !self.prefault || self.pages_touched * PREFAULT_PAGE_BYTES >= segment.capacity()
        })
    }

    /// One page of work: a page of zeros written, the file mapped, or one
    /// page touched. Nothing once done.
    pub(crate) fn step(&mut self) -> io::Result<()> {
        if let Some(file) = self.file.as_mut() {
            let chunk = (self.segment_bytes - self.zeros_written).min(ZERO_WRITE_BYTES);
            file.write_all(&ZERO_PAGE[..chunk])?;
            self.zeros_written += chunk;
            if self.zeros_written == self.segment_bytes {
                self.file = None;
            }
            return Ok(());
        }
        let Some(segment) = self.segment.as_ref() else {
            self.segment = Some(Segment::open(&self.path, self.index, 0, true)?);
            return Ok(());
        };
        let offset = self.pages_touched * PREFAULT_PAGE_BYTES;
        if self.prefault && offset < segment.capacity() {
            // SAFETY: the segment is not shared yet.
            unsafe { segment.write(offset, &[0]) };
            self.pages_touched += 1;
        }
        Ok(())
    }

    /// Does the steps left and hands the segment over.
    pub(crate) fn finish(mut self) -> io::Result<PreparedSegment> {
        while !self.is_done() {
            self.step()?;
        }
        let segment = self.segment.take().expect("a done builder has mapped it");
        Ok(PreparedSegment { segment })
    }

    /// Removes the file (a builder abandoned at close: the next open would
    /// remove it anyway).
    pub(crate) fn discard(self) -> io::Result<()> {
        let path = self.path.clone();
        drop(self);
        fs::remove_file(path)
    }
}

/// A page of zeros for [`SegmentBuilder::step`].
static ZERO_PAGE: [u8; ZERO_WRITE_BYTES] = [0; ZERO_WRITE_BYTES];

/// The stride of the prefault's touches.
const PREFAULT_PAGE_BYTES: usize = 4096;

/// A segment file made ahead of need (zero-filled, allocated, mapped and
/// optionally pre-faulted) so that rolling over costs a header write and a
/// rename.
#[derive(Debug)]
pub(crate) struct PreparedSegment {
    segment: Segment,
}

impl PreparedSegment {
    /// Creates `segment-<index>.next` of `segment_bytes` zeros, all at once
    /// (see [`SegmentBuilder`], which does the same a page at a time).
    pub(crate) fn create(
        dir: &Path,
        index: u64,
        segment_bytes: usize,
        prefault: bool,
    ) -> io::Result<Self> {
        SegmentBuilder::start(dir, index, segment_bytes, prefault)?.finish()
    }

    /// Gives the segment its header and its final name. The header is
    /// written before the rename, so a segment under its final name always
    /// has one.
    pub(crate) fn activate(
        self,
        dir: &Path,
        header: &[u8; SEGMENT_HEADER_BYTES],
        first_sequence: u64,
    ) -> io::Result<Segment> {
        let mut segment = self.segment;
        // SAFETY: the segment is not shared yet.
        unsafe { segment.write(0, header) };
        let path = dir.join(segment_file_name(segment.index, first_sequence));
        fs::rename(&segment.path, &path)?;
        segment.path = path;
        segment.first_sequence = first_sequence;
        Ok(segment)
    }

    pub(crate) fn index(&self) -> u64 {
        self.segment.index
    }

    /// Removes the file of a segment that was never used (at close: the next
    /// open would remove it anyway, and it holds a segment's worth of disk).
    pub(crate) fn discard(self) -> io::Result<()> {
        let path = self.segment.path.clone();
        drop(self);
        fs::remove_file(path)
    }
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_in_order_and_parse_back() {
        let a = segment_file_name(2, 1_000);
        let b = segment_file_name(10, 50_000);
        assert_eq!(a, "segment-00000002-first-00000000000000001000.journal");
        assert!(a < b);
        assert_eq!(parse_segment_file_name(&a), Some((2, 1_000)));
        assert_eq!(parse_segment_file_name(&b), Some((10, 50_000)));
        assert_eq!(parse_segment_file_name("segment-00000002.next"), None);
        assert_eq!(parse_segment_file_name("snapshot-1.snapshot"), None);
    }
}
