//! The flusher thread of the `fsync` policy: group commit.
//!
//! Each round it reads the last appended sequence, syncs every byte
//! published up to it (msync of the mapped range, segment by segment), and
//! then publishes that sequence as durable. Everything appended while one
//! sync runs goes into the next, so the group grows with the load and a
//! sync is never paid per record. When nothing is pending it sleeps for at
//! most the configured delay, which bounds the latency it adds when idle.
//!
//! After each group it also hands the last record it synced (found by
//! walking the record headers of the range it synced) to the checkpointer
//! thread ([`run_checkpointer`]), which advances the durable checkpoint
//! (the `checkpoint` module). The checkpoint's own `fdatasync` is thus
//! neither on the append path nor between two groups: the next group's
//! sync starts at once. Under the `memory` policy the flusher runs
//! paced, one round per [`MEMORY_CHECKPOINT_INTERVAL`]: it syncs what was
//! appended and advances the checkpoint, so that the checkpoint follows
//! what is on the device (under `memory`, acknowledged records that were
//! not synced yet can be lost by a crash of the machine, as that policy
//! says; the checkpoint never claims them).
//!
//! The appender leaves the seal of a finished segment to the flusher, which
//! writes it only after syncing the directory: a sealed segment on disk
//! always has its successor's directory entry on disk too.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::checkpoint::DurableRecord;
use crate::journal::Shared;
use crate::layout::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES, record_footprint};
use crate::segment::{Segment, sync_directory};

/// How often the flusher of a `memory` journal syncs and advances the
/// checkpoint.
pub(crate) const MEMORY_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Where the flusher has synced to: a position in the segment list and an
/// offset in that segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    pub(crate) position: usize,
    pub(crate) flushed: usize,
}

/// The flusher's loop. `paced`: sleep `delay` after every round, not only
/// when idle (the `memory` policy, whose acknowledgements do not wait).
pub(crate) fn run(shared: &Shared, delay: Duration, start: Cursor, paced: bool) {
    let mut segments: Vec<Arc<Segment>> = Vec::new();
    let mut cursor = start;
    let mut durable = shared.durable.0.load(Ordering::Acquire);
    loop {
        let stopping = shared.stop.load(Ordering::Acquire);
        let target = shared.appended.0.load(Ordering::Acquire);
        if target == durable {
            if stopping {
                return;
            }
            std::thread::park_timeout(delay);
            continue;
        }
        let mut last = None;
        if let Err(error) = flush_through(shared, &mut segments, &mut cursor, &mut last, paced) {
            fail(shared, error);
            return;
        }
        durable = target;
        shared.durable.0.store(durable, Ordering::Release);
        if let Some(last) = last {
            *shared.checkpoint_due.lock() = Some(last);
            shared.checkpoint_wake.notify_one();
        }
        if paced && !stopping {
            std::thread::park_timeout(delay);
        }
    }
}

/// The checkpointer thread: writes each synced record the flusher hands
/// it (the newest only, when several came during one write) into the
/// checkpoint, until the journal stops.
pub(crate) fn run_checkpointer(shared: &Shared) {
    loop {
        let due = {
            let mut due = shared.checkpoint_due.lock();
            loop {
                if let Some(record) = due.take() {
                    break Some(record);
                }
                if shared.stop.load(Ordering::Acquire) {
                    break None;
                }
                shared.checkpoint_wake.wait(&mut due);
            }
        };
        let Some(record) = due else {
            return;
        };
        if let Some(writer) = shared.checkpoint.lock().as_mut()
            && let Err(error) = writer.advance(record)
        {
            fail(shared, error.to_string());
            return;
        }
    }
}

fn fail(shared: &Shared, error: String) {
    *shared.failure.lock() = Some(error);
    shared.failed.store(true, Ordering::Release);
}

/// The last record published in `from..end` of a segment, if any, into
/// `last`. `from` is a record boundary (where the previous round stopped).
fn last_record_in(segment: &Segment, from: usize, end: usize, last: &mut Option<DurableRecord>) {
    let mut offset = from.max(SEGMENT_HEADER_BYTES);
    while offset < end {
        let Some(header) = segment.published_header(offset) else {
            return;
        };
        *last = Some(DurableRecord {
            sequence: header.sequence,
            term: header.term,
            checksum: header.checksum,
        });
        offset += record_footprint(header.length as usize - RECORD_HEADER_BYTES);
    }
}

/// Syncs everything published so far, from where the last round stopped,
/// and finds the last record it synced.
/// Crossing into a new segment: the directory is synced (the new name is
/// durable), then the old segment's seal is written and synced with its
/// last bytes.
///
/// `release_first` (the paced rounds of the `memory` policy): the whole
/// pages of each range are released before it is synced (see
/// [`Segment::release_written_pages`]). A paced round syncs a second of
/// appends at once; synced page by page while mapped, that was one TLB
/// shootdown interrupt per page on every core of the process (half of
/// the flusher's time in `smp_call_function_many_cond`, and a quarter of
/// the end-to-end throughput, measured on a 2-vCPU machine). Group commit
/// (`fsync`) syncs ranges just appended, which readers have not read yet:
/// there the release would move the cost to their page faults.
fn flush_through(
    shared: &Shared,
    segments: &mut Vec<Arc<Segment>>,
    cursor: &mut Cursor,
    last: &mut Option<DurableRecord>,
    release_first: bool,
) -> Result<(), String> {
    {
        let all = shared.segments.read();
        segments.extend(all[segments.len()..].iter().cloned());
    }
    loop {
        let segment = &segments[cursor.position];
        let has_successor = cursor.position + 1 < segments.len();
        if has_successor {
            sync_directory(&shared.dir).map_err(|e| format!("{}: {e}", shared.dir.display()))?;
            segment.write_pending_seal();
        }
        let end = segment.published_end();
        // Found before the release (the walk reads every record header of
        // the range), used by the caller only once the sync succeeded.
        last_record_in(segment, cursor.flushed, end, last);
        if release_first {
            segment.release_written_pages(cursor.flushed, end);
        }
        segment
            .sync_range(cursor.flushed, end)
            .map_err(|e| format!("{}: {e}", segment.path.display()))?;
        cursor.flushed = end;
        if !has_successor {
            return Ok(());
        }
        // Sealed and durable: nothing of it is written again.
        segment.release_resident_pages();
        cursor.position += 1;
        cursor.flushed = 0;
    }
}
