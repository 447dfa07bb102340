//! The journal's one error type. Business outcomes never come here: these
//! are failures of storage or of the journal's own integrity.

#![forbid(unsafe_code)]

use std::io;
use std::path::PathBuf;

/// Why a journal or snapshot operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record or segment header failed its checks somewhere other than at
    /// the journal's tail. Recovery refuses to guess: an operator must look,
    /// and may truncate at a named sequence number.
    #[error(
        "journal corrupt in {} at offset {offset} (expected sequence {sequence}): {reason}",
        segment.display()
    )]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        sequence: u64,
        reason: String,
    },
    /// A segment between two others, or after a sealed one, is not there.
    #[error("segment {index} is missing from {}: {reason}", dir.display())]
    MissingSegment {
        dir: PathBuf,
        index: u64,
        reason: String,
    },
    /// A file written by another version of the format: not damage, and
    /// never taken for it.
    #[error("{}: incompatible journal version {found}, this build reads {supported}", path.display())]
    IncompatibleVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The journal does not reach what its checkpoint recorded as durable:
    /// acknowledged records were lost (deleted segments, a cut file, a
    /// damaged record). Refused; never truncated.
    #[error(
        "journal in {} has lost durable records: {found}; the checkpoint (generation \
         {generation}) records sequence {sequence} (crc {checksum:#010x}) as durable",
        dir.display()
    )]
    BehindCheckpoint {
        dir: PathBuf,
        /// What the journal has instead, naming the segment and sequence.
        found: String,
        generation: u64,
        sequence: u64,
        checksum: u32,
    },
    /// The checkpoint cannot vouch for the journal: no copy of it is valid.
    #[error("{}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    /// A pre-sequenced (replicated) record does not continue this journal.
    #[error("replicated record refused (this journal expects sequence {expected}): {reason}")]
    ReplicatedRecord { expected: u64, reason: String },
    /// A record body is larger than the configured maximum.
    #[error("a record body of {bytes} bytes is over the maximum of {bytes_max}")]
    RecordTooLarge { bytes: usize, bytes_max: usize },
    /// The options cannot work.
    #[error("invalid journal options: {0}")]
    Options(String),
    /// Another process has the journal open for writing.
    #[error("{} is locked by another process that has the journal open for writing", path.display())]
    Locked { path: PathBuf },
    /// The journal was opened read-only.
    #[error("the journal is open read-only")]
    ReadOnly,
    /// The flusher could not make records durable; nothing after the last
    /// durable sequence may be acknowledged.
    #[error("the journal's flusher failed: {0}")]
    Flusher(String),
    /// An operator truncation asked for a sequence the journal does not
    /// reach.
    #[error("the journal ends at sequence {last}; cannot keep records through {requested}")]
    TruncateBeyondEnd { requested: u64, last: u64 },
    /// A snapshot file is unreadable or inconsistent.
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot { path: PathBuf, reason: String },
    /// The Raft hard state cannot be read (no valid copy), or a change of
    /// it would break Raft's rules (a term going back, a second vote in a
    /// term, a commit index going back).
    #[error("Raft hard state {}: {reason}", path.display())]
    HardState { path: PathBuf, reason: String },
}

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, JournalError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, JournalError> {
        self.map_err(|source| JournalError::Io {
            path: path.into(),
            source,
        })
    }
}
