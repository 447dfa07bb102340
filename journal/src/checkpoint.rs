//! The durable checkpoint: the sequence, term and crc of the last record
//! known to be on the device, kept beside the journal so that recovery can
//! tell a torn, unacknowledged tail (beyond the checkpoint: truncated) from
//! lost acknowledged records (at or below it: refused).
//!
//! Without it, a journal whose last segment was cut exactly at a record
//! boundary, or whose segments were all deleted, looks like a shorter,
//! sound journal. The file is a `copies` file (in the spirit of TigerBeetle's
//! superblock: four checksummed copies, each in its own 4 KiB block, each
//! with a generation that grows by one per write). An update writes one
//! copy (the oldest) and syncs it, so a torn write damages only that copy
//! and the newest valid copy still bounds what is durable from below,
//! which is all recovery needs.
//!
//! ```text
//! CHECKPOINT: 4 blocks of 4096 bytes; a copy in the first 64 bytes of
//! each, the rest zero.
//!
//!  0        8        12       16                24               32
//!  +--------+--------+--------+-----------------+----------------+
//!  | magic  |version | copy   | generation      | sequence       |
//!  | 8 B    | u32    | bytes  | u64             | u64            |
//!  +--------+--------+--------+-----------------+----------------+
//!  32                40       44       48                56       60       64
//!  +-----------------+--------+--------+-----------------+--------+--------+
//!  | term            | record |reserved| reserved        |reserved| copy   |
//!  | u64             | crc u32| u32 = 0| u64 = 0         | u32 = 0| crc u32|
//!  +-----------------+--------+--------+-----------------+--------+--------+
//! ```
//!
//! `sequence`, `term` and `record crc` are those of the last durable record
//! (0, 0, 0 before any); `copy crc` is CRC32C over bytes `0..60`.

#![forbid(unsafe_code)]

use std::path::Path;

use crate::copies::{self, CopiesWriter, Kind, PAYLOAD_BYTES, Payload};
use crate::error::JournalError;
use crate::layout::{read_u32, read_u64};

/// The file's name in the journal directory.
pub(crate) const CHECKPOINT_FILE: &str = "CHECKPOINT";
/// The checkpoint's own format version.
pub(crate) const CHECKPOINT_VERSION: u32 = 1;

const KIND: Kind = Kind {
    file: CHECKPOINT_FILE,
    what: "checkpoint",
    magic: *b"EXCKPT\0\x01",
    version: CHECKPOINT_VERSION,
};

/// The last record known to be durable, as the checkpoint records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Grows by one with every write of a copy; the newest valid copy wins.
    pub generation: u64,
    /// The last durable record's sequence (0: none).
    pub sequence: u64,
    pub term: u64,
    /// The last durable record's crc (0: none).
    pub checksum: u32,
}

/// The durable position a checkpoint write records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DurableRecord {
    pub(crate) sequence: u64,
    pub(crate) term: u64,
    pub(crate) checksum: u32,
}

impl DurableRecord {
    /// Bytes 24..60 of a copy: sequence, term, record crc, reserved zeros.
    fn payload(&self) -> Payload {
        let mut payload = [0u8; PAYLOAD_BYTES];
        payload[0..8].copy_from_slice(&self.sequence.to_le_bytes());
        payload[8..16].copy_from_slice(&self.term.to_le_bytes());
        payload[16..20].copy_from_slice(&self.checksum.to_le_bytes());
        payload
    }
}

/// Bytes 44..60 of a copy are reserved.
fn payload_valid(payload: &Payload) -> Result<(), String> {
    copies::reserved_zero(payload, 20)
}

fn checkpoint(copy: &copies::Stored) -> Checkpoint {
    Checkpoint {
        generation: copy.generation,
        sequence: read_u64(&copy.payload, 0),
        term: read_u64(&copy.payload, 8),
        checksum: read_u32(&copy.payload, 16),
    }
}

/// What a directory's checkpoint file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// No file.
    Missing,
    /// A file, but no valid copy in it (why, copy by copy).
    Invalid(String),
    Valid(Checkpoint),
}

impl Found {
    pub(crate) fn valid(&self) -> Option<Checkpoint> {
        match self {
            Found::Valid(checkpoint) => Some(*checkpoint),
            _ => None,
        }
    }
}

/// Reads the checkpoint of `dir`: the newest valid copy. A copy of another
/// format version is [`JournalError::IncompatibleVersion`].
pub(crate) fn read(dir: &Path) -> Result<Found, JournalError> {
    Ok(match copies::read(dir, &KIND, &payload_valid)? {
        copies::Found::Missing => Found::Missing,
        copies::Found::Invalid(reason) => Found::Invalid(reason),
        copies::Found::Valid(copy) => Found::Valid(checkpoint(&copy)),
    })
}

/// Writes a directory's checkpoint copies. Shared by the flusher and the
/// appender's `sync` behind a lock; never on the append path.
#[derive(Debug)]
pub(crate) struct CheckpointWriter {
    copies: CopiesWriter,
    last: Checkpoint,
}

impl CheckpointWriter {
    /// Opens (creating) the file of `dir`. With `rewrite`, every copy is
    /// written now with `durable` (a new checkpoint, or the operator's
    /// truncation, which lowers it deliberately); otherwise `current` is
    /// the newest valid copy on disk and later writes continue from it.
    pub(crate) fn open(
        dir: &Path,
        current: Checkpoint,
        rewrite: Option<DurableRecord>,
    ) -> Result<CheckpointWriter, JournalError> {
        let copies = CopiesWriter::open(
            dir,
            KIND,
            current.generation,
            rewrite.map(|durable| durable.payload()),
        )?;
        let last = match rewrite {
            Some(durable) => Checkpoint {
                generation: copies.generation(),
                sequence: durable.sequence,
                term: durable.term,
                checksum: durable.checksum,
            },
            None => current,
        };
        Ok(CheckpointWriter { copies, last })
    }

    /// The newest copy written (or read at open).
    pub(crate) fn current(&self) -> Checkpoint {
        self.last
    }

    /// Records `durable` if it is ahead of the checkpoint; the checkpoint
    /// never goes back (except by [`CheckpointWriter::open`]'s rewrite).
    pub(crate) fn advance(&mut self, durable: DurableRecord) -> Result<(), JournalError> {
        if durable.sequence <= self.last.sequence {
            return Ok(());
        }
        let generation = self.copies.write(durable.payload())?;
        self.last = Checkpoint {
            generation,
            sequence: durable.sequence,
            term: durable.term,
            checksum: durable.checksum,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn the_newest_checkpoint_is_read_back_and_never_goes_back() {
        let dir = std::env::temp_dir().join(format!("checkpoint-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir).unwrap(), Found::Missing);
        let at = |sequence| DurableRecord {
            sequence,
            term: 1,
            checksum: sequence as u32 * 7,
        };
        let mut writer = CheckpointWriter::open(&dir, Checkpoint::default(), Some(at(0))).unwrap();
        for sequence in 1..=6 {
            writer.advance(at(sequence)).unwrap();
        }
        writer.advance(at(3)).unwrap();
        let newest = writer.current();
        assert_eq!((newest.sequence, newest.term, newest.checksum), (6, 1, 42));
        assert_eq!(newest.generation, copies::COPIES as u64 + 6);
        assert_eq!(read(&dir).unwrap(), Found::Valid(newest));
        // Reopened without a rewrite, writes continue from the newest.
        let mut writer = CheckpointWriter::open(&dir, newest, None).unwrap();
        writer.advance(at(7)).unwrap();
        assert_eq!(read(&dir).unwrap().valid().map(|c| c.sequence), Some(7));
        // A reserved byte set (its crc made right): that copy is refused, the
        // one before wins.
        let path = dir.join(CHECKPOINT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let block =
            ((newest.generation + 1) % copies::COPIES as u64) as usize * copies::BLOCK_BYTES;
        bytes[block + 50] = 1;
        let crc = crate::checksum::crc32c(&bytes[block..block + 60]);
        bytes[block + 60..block + 64].copy_from_slice(&crc.to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&dir).unwrap().valid().map(|c| c.sequence), Some(6));
        fs::remove_dir_all(&dir).unwrap();
    }
}
