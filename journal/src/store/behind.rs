//! Write-behind: a store hands its full write buffer to a [`StoreWriter`],
//! whose [`step`](StoreWriter::step)s write it to the file a chunk at a
//! time from another thread's idle time (the engine thread's, in `serve`),
//! while the appending thread goes on with a second buffer.
//!
//! - **One buffer in flight per store.** The next hand-off of the same
//!   store first takes the previous one back; if the writer has not written
//!   it yet, the store writes the rest itself. Memory stays the store's:
//!   two write buffers and two index buffers, inside its
//!   [`cache_bytes_max`](super::StoreOptions::cache_bytes_max).
//! - **Reads never see a hole.** Before a store reads its tail's files, or
//!   flushes, syncs, cuts, forks or closes, it *settles*: it writes what is
//!   still in flight itself (or waits for the chunk the writer is writing).
//! - **Errors are the store's.** A write that fails in the writer is left
//!   in flight; the store retries it when it settles and reports the error
//!   to its own caller, as it would have without a writer.
//! - **Never waited for.** Nothing ever waits for the writer's turn: a
//!   writer that never runs (a busy engine) only means the stores write
//!   their buffers themselves, one hand-off later. Once
//!   [`closed`](StoreWriter::close), hand-offs are written at once by their
//!   stores.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::StoreError;
use super::files::{SegmentFiles, io_error};

/// The most bytes one [`StoreWriter::step`] writes: a few pages, so a
/// command arriving during a step waits a few microseconds at most.
pub const WRITE_STEP_BYTES_MAX: usize = 16 << 10;

/// Writes the buffers that stores hand over, a step at a time. Cloned into
/// every store that hands its buffers to it
/// ([`MessageStore::open_with_writer`](super::MessageStore::open_with_writer))
/// and into the agent that calls [`step`](Self::step).
#[derive(Clone, Debug, Default)]
pub struct StoreWriter {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Stores with a buffer in flight, oldest hand-off first; each at most
    /// once (its `queued` flag).
    queue: Mutex<VecDeque<Arc<InFlight>>>,
    /// `queue`'s length, read without the lock by an idle step.
    queued: AtomicUsize,
    closed: AtomicBool,
    stats: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    handed_off: AtomicU64,
    bytes_by_writer: AtomicU64,
    bytes_by_stores: AtomicU64,
}

/// What a [`StoreWriter`] has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreWriterStats {
    /// Buffers handed over by the stores.
    pub handed_off: u64,
    /// Bytes the writer's steps wrote.
    pub bytes_by_writer: u64,
    /// Bytes of handed-over buffers that their stores wrote themselves
    /// (the writer had not got to them before the store settled or handed
    /// over the next).
    pub bytes_by_stores: u64,
}

impl StoreWriter {
    pub fn new() -> StoreWriter {
        StoreWriter::default()
    }

    /// Writes up to [`WRITE_STEP_BYTES_MAX`] of the oldest buffer handed
    /// over; returns the bytes written (0: nothing was waiting). A write
    /// that fails is left to its store (see the module docs).
    pub fn step(&self) -> usize {
        if self.shared.queued.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let Some(in_flight) = self.shared.queue.lock().front().cloned() else {
            return 0;
        };
        let mut slot = in_flight.slot.lock();
        let (written, finished) = match slot.job.as_mut() {
            // The store wrote it itself.
            None => (0, true),
            Some(job) => match job.write(WRITE_STEP_BYTES_MAX) {
                Ok(written) => (written, job.is_done()),
                // Left in flight: the store retries it and reports.
                Err(_) => (0, true),
            },
        };
        self.shared
            .stats
            .bytes_by_writer
            .fetch_add(written as u64, Ordering::Relaxed);
        if finished {
            slot.finish_job();
            slot.queued = false;
            // Only this method pops, and hand-offs push at the back: the
            // front is still `in_flight`.
            let mut queue = self.shared.queue.lock();
            let front = queue.pop_front();
            debug_assert!(front.is_some_and(|front| Arc::ptr_eq(&front, &in_flight)));
            self.shared.queued.store(queue.len(), Ordering::Release);
        }
        written
    }

    /// No buffer is waiting for a step.
    pub fn is_idle(&self) -> bool {
        self.shared.queued.load(Ordering::Acquire) == 0
    }

    /// From now on stores write their buffers themselves when they fill:
    /// for when nothing will call [`step`](Self::step) any more. Buffers
    /// already handed over are written by their stores when they settle.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> StoreWriterStats {
        let stats = &self.shared.stats;
        StoreWriterStats {
            handed_off: stats.handed_off.load(Ordering::Relaxed),
            bytes_by_writer: stats.bytes_by_writer.load(Ordering::Relaxed),
            bytes_by_stores: stats.bytes_by_stores.load(Ordering::Relaxed),
        }
    }
}

/// A store's side of write-behind: its writer and its buffer in flight.
#[derive(Debug)]
pub(crate) struct Behind {
    writer: StoreWriter,
    in_flight: Arc<InFlight>,
}

#[derive(Debug, Default)]
struct InFlight {
    slot: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    /// The buffers handed over and not yet all written.
    job: Option<Job>,
    /// The buffers of the last job written, emptied, for the next swap.
    spare: Option<(Vec<u8>, Vec<u8>)>,
    /// In the writer's queue.
    queued: bool,
}

impl Slot {
    fn finish_job(&mut self) {
        if let Some(job) = self.job.take_if(|job| job.is_done()) {
            let (mut data, mut index) = (job.data, job.index);
            data.clear();
            index.clear();
            self.spare = Some((data, index));
        }
    }
}

/// Records, then the index entries that point at them.
#[derive(Debug)]
struct Job {
    files: Arc<SegmentFiles>,
    data: Vec<u8>,
    data_at: u64,
    data_written: usize,
    index: Vec<u8>,
    index_at: u64,
    index_written: bool,
}

impl Job {
    fn is_done(&self) -> bool {
        self.data_written == self.data.len() && self.index_written
    }

    /// Writes up to `bytes_max` of the records, or the index entries once
    /// the records are written; returns the bytes written.
    fn write(&mut self, bytes_max: usize) -> Result<usize, StoreError> {
        if self.data_written < self.data.len() {
            let end = self.data.len().min(self.data_written + bytes_max);
            let chunk = &self.data[self.data_written..end];
            write_at(
                &self.files.data,
                &self.files.data_path,
                chunk,
                self.data_at + self.data_written as u64,
            )?;
            self.data_written = end;
            return Ok(chunk.len());
        }
        if !self.index_written {
            write_at(
                &self.files.index,
                &self.files.index_path,
                &self.index,
                self.index_at,
            )?;
            self.index_written = true;
            return Ok(self.index.len());
        }
        Ok(0)
    }

    /// Writes what is left; returns the bytes written.
    fn write_rest(&mut self) -> Result<usize, StoreError> {
        let mut written = 0;
        while !self.is_done() {
            written += self.write(usize::MAX)?;
        }
        Ok(written)
    }
}

fn write_at(file: &File, path: &Path, bytes: &[u8], offset: u64) -> Result<(), StoreError> {
    if bytes.is_empty() {
        return Ok(());
    }
    file.write_all_at(bytes, offset)
        .map_err(|source: io::Error| io_error(path, source))
}

impl Behind {
    /// `data` and `index`: the second write buffer and index buffer.
    pub(crate) fn new(writer: StoreWriter, data: Vec<u8>, index: Vec<u8>) -> Behind {
        let slot = Slot {
            spare: Some((data, index)),
            ..Slot::default()
        };
        Behind {
            writer,
            in_flight: Arc::new(InFlight {
                slot: Mutex::new(slot),
            }),
        }
    }

    /// Whether hand-offs go to the writer (it is not closed).
    pub(crate) fn is_open(&self) -> bool {
        !self.writer.is_closed()
    }

    /// Writes what is still in flight (the rest of it, if the writer is
    /// writing it: after its step). An error leaves it in flight.
    pub(crate) fn settle(&self) -> Result<(), StoreError> {
        let mut slot = self.in_flight.slot.lock();
        if let Some(job) = slot.job.as_mut() {
            let written = job.write_rest()?;
            self.writer
                .shared
                .stats
                .bytes_by_stores
                .fetch_add(written as u64, Ordering::Relaxed);
            slot.finish_job();
        }
        Ok(())
    }

    /// Settles, then gives back the other buffers (empty) for the store to
    /// fill next.
    pub(crate) fn reclaim(&self) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        self.settle()?;
        Ok(self
            .in_flight
            .slot
            .lock()
            .spare
            .take()
            .expect("a store has its second buffers back once settled"))
    }

    /// Hands `data` (records for `files`' data file at `data_at`) and
    /// `index` (their entries, at `index_at` of the index file) to the
    /// writer. The previous hand-off must have been reclaimed.
    pub(crate) fn hand_off(
        &self,
        files: Arc<SegmentFiles>,
        (data, data_at): (Vec<u8>, u64),
        (index, index_at): (Vec<u8>, u64),
    ) {
        let mut slot = self.in_flight.slot.lock();
        debug_assert!(slot.job.is_none(), "reclaimed first");
        slot.job = Some(Job {
            files,
            data,
            data_at,
            data_written: 0,
            index,
            index_at,
            index_written: false,
        });
        let shared = &self.writer.shared;
        shared.stats.handed_off.fetch_add(1, Ordering::Relaxed);
        if !slot.queued {
            slot.queued = true;
            let mut queue = shared.queue.lock();
            queue.push_back(Arc::clone(&self.in_flight));
            shared.queued.store(queue.len(), Ordering::Release);
        }
    }
}
