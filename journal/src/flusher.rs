//! The flusher thread of the `fsync` policy: group commit.
//!
//! Each round it reads the last appended sequence, syncs every byte
//! published up to it (msync of the mapped range, segment by segment), and
//! then publishes that sequence as durable. Everything appended while one
//! sync runs goes into the next, so the group grows with the load and a
//! sync is never paid per record. When nothing is pending it sleeps for at
//! most the configured delay, which bounds the latency it adds when idle.
//!
//! A new segment's directory entry is synced before the seal of the segment
//! before it, so a sealed segment on disk always has its successor.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::journal::Shared;
use crate::segment::{Segment, sync_directory};

pub(crate) fn run(shared: &Shared, delay: Duration) {
    let mut segments: Vec<Arc<Segment>> = Vec::new();
    // The segment being flushed (a position in `segments`) and how far.
    let mut position = 0;
    let mut flushed = 0usize;
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
        if let Err(error) = flush_through(shared, &mut segments, &mut position, &mut flushed) {
            *shared.failure.lock() = Some(error);
            shared.failed.store(true, Ordering::Release);
            return;
        }
        durable = target;
        shared.durable.0.store(durable, Ordering::Release);
    }
}

/// Syncs everything published so far, from where the last round stopped.
fn flush_through(
    shared: &Shared,
    segments: &mut Vec<Arc<Segment>>,
    position: &mut usize,
    flushed: &mut usize,
) -> Result<(), String> {
    {
        let all = shared.segments.read();
        if segments.is_empty() {
            // Start at the segment appends go to: what came before was made
            // durable when the journal was opened.
            *position = all.len() - 1;
            *flushed = all[*position].published_end();
        }
        segments.extend(all[segments.len()..].iter().cloned());
    }
    loop {
        let segment = &segments[*position];
        let has_successor = *position + 1 < segments.len();
        if has_successor {
            sync_directory(&shared.dir).map_err(|e| format!("{}: {e}", shared.dir.display()))?;
        }
        let end = segment.published_end();
        segment
            .sync_range(*flushed, end)
            .map_err(|e| format!("{}: {e}", segment.path.display()))?;
        *flushed = end;
        if !has_successor {
            return Ok(());
        }
        *position += 1;
        *flushed = 0;
    }
}
