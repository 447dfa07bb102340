//! The write-ahead journal: segmented, preallocated, memory-mapped,
//! checksummed records; readers that tail it; snapshot files; recovery that
//! truncates only a torn tail and refuses to guess about corruption
//! anywhere else.
//!
//! The crate is generic: a record is a `u16` type, a timestamp and a body of
//! bytes, numbered by a contiguous sequence from 1. What the bytes mean is
//! the caller's (the engine journals its commands).
//!
//! - **Layout**: see the `layout` module docs (also `docs/journal.md`) for
//!   the byte diagrams of segment and record headers.
//! - **Append** ([`Journal::append`]): one copy of header and body into the
//!   mapped pages and a release store of the record's length, which
//!   publishes it. No system call, no allocation; a segment is prepared
//!   (allocated, mapped, pre-faulted) by a helper thread before it is needed.
//! - **Durability** ([`Durability`]): `Memory` (durable once in the mapped
//!   pages; survives a crash of the process) or `Fsync` (a flusher thread
//!   syncs in groups and publishes the durable sequence,
//!   [`DurablePosition`]).
//! - **Recovery** ([`Journal::open`]): every record is verified; the rules
//!   are in the `recovery` module docs. A durable [`Checkpoint`] (the last
//!   record known to be on the device, in several checksummed copies) lets
//!   it refuse a journal that lost acknowledged records.
//! - **Followers** ([`Journal::append_replicated`]): a record that already
//!   carries its sequence, term and checksum chain is written as it is.
//! - **Snapshots** ([`SnapshotStore`]): a state's bytes with its sequence and
//!   state hash, checksummed, written atomically (temporary file, sync,
//!   rename).

// `unsafe` is needed only where mapped memory is read and written: the
// segment's accessors and their callers, each block with its SAFETY
// argument. Everything else forbids it, except `checksum`, whose one
// `unsafe` is the call of its SSE 4.2 code once the CPU is known to have it.
mod checkpoint;
#[allow(unsafe_code)]
mod checksum;
mod copies;
#[allow(unsafe_code)]
pub mod cpus;
mod error;
mod flusher;
mod hard_state;
#[allow(unsafe_code)]
mod journal;
mod layout;
#[allow(unsafe_code)]
mod reader;
#[allow(unsafe_code)]
mod recovery;
#[allow(unsafe_code)]
mod segment;
mod snapshot;
mod store;

pub use checkpoint::Checkpoint;
pub use error::JournalError;
pub use hard_state::{HARD_STATE_FILE, HardState, HardStateFile};
pub use journal::{
    Durability, DurablePosition, Journal, JournalOptions, Preparation, TruncateReport,
    writer_holds_lock,
};
pub use layout::{RECORD_ALIGNMENT, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
pub use reader::{JournalReader, Record};
pub use recovery::{RecoveryReport, TornTail};
pub use snapshot::{SnapshotInfo, SnapshotStore};
pub use store::{
    MessageStore, StoreError, StoreOptions, StoreReader, StoreRecovery, StoreWriter,
    StoreWriterStats, StoredMessage, WRITE_STEP_BYTES_MAX,
};
