//! The Raft hard state, kept beside the journal: the node's current term,
//! the vote it cast in that term and the highest index it knows committed.
//! Raft's safety rests on a node never forgetting a term or a vote it
//! announced, so every change is synced before [`HardStateFile::store`]
//! returns, and a file with no valid copy is refused rather than read as
//! "never voted".
//!
//! The file (`RAFT_STATE`) is a `copies` file like the checkpoint: four
//! checksummed, generation-numbered copies in their own 4 KiB blocks, a
//! write going to the oldest, so a torn write loses only that write. Its
//! payload:
//!
//! ```text
//!  24               32               40               48                60
//!  +----------------+----------------+----------------+-----------------+
//!  | term u64       | vote u64       | commit u64     | reserved (12 B) |
//!  |                | (0: none)      |                | = 0             |
//!  +----------------+----------------+----------------+-----------------+
//! ```
//!
//! The journal itself keeps each entry's term (its records' own); this file
//! keeps what Raft needs beyond the log.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use crate::copies::{self, CopiesWriter, Kind, PAYLOAD_BYTES, Payload};
use crate::error::JournalError;
use crate::layout::read_u64;

/// The file's name in the journal directory.
pub const HARD_STATE_FILE: &str = "RAFT_STATE";
const HARD_STATE_VERSION: u32 = 1;

const KIND: Kind = Kind {
    file: HARD_STATE_FILE,
    what: "Raft hard state",
    magic: *b"EXRAFT\0\x01",
    version: HARD_STATE_VERSION,
};

/// What Raft must not forget across a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    /// The latest term the node has seen.
    pub term: u64,
    /// The node voted for in `term` (0: none yet).
    pub vote: u64,
    /// The highest index known committed.
    pub commit: u64,
}

impl HardState {
    fn payload(&self) -> Payload {
        let mut payload = [0u8; PAYLOAD_BYTES];
        payload[0..8].copy_from_slice(&self.term.to_le_bytes());
        payload[8..16].copy_from_slice(&self.vote.to_le_bytes());
        payload[16..24].copy_from_slice(&self.commit.to_le_bytes());
        payload
    }

    fn from_payload(payload: &Payload) -> HardState {
        HardState {
            term: read_u64(payload, 0),
            vote: read_u64(payload, 8),
            commit: read_u64(payload, 16),
        }
    }

    /// Why `next` may not follow `self`, if it may not.
    fn refuses(&self, next: &HardState) -> Option<String> {
        if next.term < self.term {
            return Some(format!(
                "the term would go back from {} to {}",
                self.term, next.term
            ));
        }
        if next.term == self.term && self.vote != 0 && next.vote != self.vote {
            return Some(format!(
                "node {} already has this node's vote in term {} (asked: {})",
                self.vote, self.term, next.vote
            ));
        }
        if next.commit < self.commit {
            return Some(format!(
                "the commit index would go back from {} to {}",
                self.commit, next.commit
            ));
        }
        None
    }
}

/// Bytes 48..60 of a copy are reserved.
fn payload_valid(payload: &Payload) -> Result<(), String> {
    copies::reserved_zero(payload, 24)
}

/// The hard state file of a journal directory, open for changes. One
/// writer: the node's consensus agent (the journal's `LOCK` keeps a second
/// process out of the directory).
#[derive(Debug)]
pub struct HardStateFile {
    copies: CopiesWriter,
    path: PathBuf,
    current: HardState,
}

impl HardStateFile {
    /// Opens the hard state of `dir`: the newest valid copy. Without a file
    /// a new one is written (every copy, the directory synced) holding the
    /// zero state: term 0, no vote, nothing committed. A file without a
    /// valid copy, or of another format version, is refused.
    pub fn open(dir: &Path) -> Result<HardStateFile, JournalError> {
        let path = dir.join(HARD_STATE_FILE);
        let (generation, current, rewrite) = match copies::read(dir, &KIND, &payload_valid)? {
            copies::Found::Missing => {
                let zero = HardState::default();
                (0, zero, Some(zero.payload()))
            }
            copies::Found::Invalid(reason) => {
                return Err(JournalError::HardState { path, reason });
            }
            copies::Found::Valid(copy) => (
                copy.generation,
                HardState::from_payload(&copy.payload),
                None,
            ),
        };
        let copies = CopiesWriter::open(dir, KIND, generation, rewrite)?;
        Ok(HardStateFile {
            copies,
            path,
            current,
        })
    }

    /// The state last stored (or read at open).
    pub fn current(&self) -> HardState {
        self.current
    }

    /// Makes `state` the hard state, synced to the device before it
    /// returns (nothing is written if it is the current one). Refused, with
    /// nothing written, if it breaks Raft's rules: a term going back, a
    /// different vote in the same term once one is cast, a commit index
    /// going back.
    pub fn store(&mut self, state: HardState) -> Result<(), JournalError> {
        if state == self.current {
            return Ok(());
        }
        if let Some(reason) = self.current.refuses(&state) {
            return Err(JournalError::HardState {
                path: self.path.clone(),
                reason,
            });
        }
        self.copies.write(state.payload())?;
        self.current = state;
        Ok(())
    }
}
