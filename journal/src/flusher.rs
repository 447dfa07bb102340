//! The flusher thread of the `fsync` policy: group commit.
//!
//! Each round it reads the last appended sequence, syncs every byte
//! published up to it (msync of the mapped range, segment by segment), and
//! then publishes that sequence as durable. Everything appended while one
//! sync runs goes into the next, so the group grows with the load and a
//! sync is never paid per record. When nothing is pending it sleeps for at
//! most the configured delay, which bounds the latency it adds when idle.
//!
//! The appender leaves the seal of a finished segment to the flusher, which
//! writes it only after syncing the directory: a sealed segment on disk
//! always has its successor's directory entry on disk too.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::journal::Shared;
use crate::segment::{Segment, sync_directory};

/// Where the flusher has synced to: a position in the segment list and an
/// offset in that segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor {
    pub(crate) position: usize,
    pub(crate) flushed: usize,
}

pub(crate) fn run(shared: &Shared, delay: Duration, start: Cursor) {
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
        if let Err(error) = flush_through(shared, &mut segments, &mut cursor) {
            *shared.failure.lock() = Some(error);
            shared.failed.store(true, Ordering::Release);
            return;
        }
        durable = target;
        shared.durable.0.store(durable, Ordering::Release);
    }
}

/// Syncs everything published so far, from where the last round stopped.
/// Crossing into a new segment: the directory is synced (the new name is
/// durable), then the old segment's seal is written and synced with its
/// last bytes.
fn flush_through(
    shared: &Shared,
    segments: &mut Vec<Arc<Segment>>,
    cursor: &mut Cursor,
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
        segment
            .sync_range(cursor.flushed, end)
            .map_err(|e| format!("{}: {e}", segment.path.display()))?;
        cursor.flushed = end;
        if !has_successor {
            return Ok(());
        }
        cursor.position += 1;
        cursor.flushed = 0;
    }
}
