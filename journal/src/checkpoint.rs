//! The durable checkpoint: the sequence, term and crc of the last record
//! known to be on the device, kept beside the journal so that recovery can
//! tell a torn, unacknowledged tail (beyond the checkpoint: truncated) from
//! lost acknowledged records (at or below it: refused).
//!
//! Without it, a journal whose last segment was cut exactly at a record
//! boundary, or whose segments were all deleted, looks like a shorter,
//! sound journal. In the spirit of TigerBeetle's superblock, the file holds
//! [`COPIES`] copies, each checksummed and in its own 4 KiB block, each with
//! a generation that grows by one per write. An update writes one copy (the
//! oldest: generation modulo [`COPIES`]) and syncs it, so a torn write
//! damages only that copy and the newest valid copy still bounds what is
//! durable from below, which is all recovery needs.
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

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, JournalError};
use crate::layout::{read_u32, read_u64};

/// The file's name in the journal directory.
pub(crate) const CHECKPOINT_FILE: &str = "CHECKPOINT";
/// Copies kept.
pub(crate) const COPIES: usize = 4;
/// Each copy starts a block of this many bytes, so that a torn write of one
/// (a sector or a page) cannot reach another.
const BLOCK_BYTES: usize = 4096;
const COPY_BYTES: usize = 64;
const MAGIC: [u8; 8] = *b"EXCKPT\0\x01";
/// The checkpoint's own format version.
pub(crate) const CHECKPOINT_VERSION: u32 = 1;

const _: () = assert!(COPY_BYTES == 64 && COPY_BYTES <= BLOCK_BYTES);
const _: () = assert!(COPIES >= 2);

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

impl Checkpoint {
    fn encode(&self) -> [u8; COPY_BYTES] {
        let mut bytes = [0u8; COPY_BYTES];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(COPY_BYTES as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&self.generation.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.sequence.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.term.to_le_bytes());
        bytes[40..44].copy_from_slice(&self.checksum.to_le_bytes());
        let crc = crate::checksum::crc32c(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// A copy, or why it is not one. `Err(Ok(version))`: a sound copy of
    /// another format version.
    fn decode(bytes: &[u8]) -> Result<Checkpoint, Result<u32, String>> {
        if bytes.iter().all(|&b| b == 0) {
            return Err(Err("never written".to_owned()));
        }
        if bytes[0..8] != MAGIC {
            return Err(Err("no checkpoint magic".to_owned()));
        }
        if crate::checksum::crc32c(&bytes[..60]) != read_u32(bytes, 60) {
            return Err(Err("checksum mismatch".to_owned()));
        }
        let version = read_u32(bytes, 8);
        if version != CHECKPOINT_VERSION {
            return Err(Ok(version));
        }
        let reserved_zero = read_u32(bytes, 12) as usize == COPY_BYTES
            && read_u32(bytes, 44) == 0
            && read_u64(bytes, 48) == 0
            && read_u32(bytes, 56) == 0;
        if !reserved_zero {
            return Err(Err("a reserved field is not zero".to_owned()));
        }
        Ok(Checkpoint {
            generation: read_u64(bytes, 16),
            sequence: read_u64(bytes, 24),
            term: read_u64(bytes, 32),
            checksum: read_u32(bytes, 40),
        })
    }
}

/// Reads the checkpoint of `dir`: the newest valid copy. A copy of another
/// format version is [`JournalError::IncompatibleVersion`].
pub(crate) fn read(dir: &Path) -> Result<Found, JournalError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(source) => return Err(JournalError::Io { path, source }),
    };
    let mut newest: Option<Checkpoint> = None;
    let mut reasons = Vec::new();
    for copy in 0..COPIES {
        let start = copy * BLOCK_BYTES;
        let Some(block) = bytes.get(start..start + COPY_BYTES) else {
            reasons.push(format!("copy {copy}: beyond the end of the file"));
            continue;
        };
        match Checkpoint::decode(block) {
            Ok(found) => {
                if newest.is_none_or(|newest| found.generation > newest.generation) {
                    newest = Some(found);
                }
            }
            Err(Ok(version)) => {
                return Err(JournalError::IncompatibleVersion {
                    path,
                    found: version,
                    supported: CHECKPOINT_VERSION,
                });
            }
            Err(Err(reason)) => reasons.push(format!("copy {copy}: {reason}")),
        }
    }
    Ok(match newest {
        Some(found) => Found::Valid(found),
        None => Found::Invalid(format!(
            "no valid copy of the checkpoint ({})",
            reasons.join("; ")
        )),
    })
}

/// Writes a directory's checkpoint copies. Shared by the flusher and the
/// appender's `sync` behind a lock; never on the append path.
#[derive(Debug)]
pub(crate) struct CheckpointWriter {
    file: File,
    path: PathBuf,
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
        let path = dir.join(CHECKPOINT_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let mut writer = CheckpointWriter {
            file,
            path,
            last: current,
        };
        if let Some(durable) = rewrite {
            writer
                .file
                .set_len((COPIES * BLOCK_BYTES) as u64)
                .at(&writer.path)?;
            for _ in 0..COPIES {
                writer.write(durable).at(&writer.path)?;
            }
            crate::segment::sync_directory(dir).at(dir)?;
        }
        Ok(writer)
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
        self.write(durable).at(&self.path)
    }

    /// Writes the next generation into the oldest copy's block and syncs.
    fn write(&mut self, durable: DurableRecord) -> io::Result<()> {
        let next = Checkpoint {
            generation: self.last.generation + 1,
            sequence: durable.sequence,
            term: durable.term,
            checksum: durable.checksum,
        };
        let block = (next.generation % COPIES as u64) as usize;
        self.file
            .write_all_at(&next.encode(), (block * BLOCK_BYTES) as u64)?;
        self.file.sync_data()?;
        self.last = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_round_trips_and_any_changed_byte_is_refused() {
        let checkpoint = Checkpoint {
            generation: 9,
            sequence: 1_234,
            term: 3,
            checksum: 0xDEAD_BEEF,
        };
        let bytes = checkpoint.encode();
        assert_eq!(Checkpoint::decode(&bytes), Ok(checkpoint));
        for byte in 0..COPY_BYTES {
            let mut changed = bytes;
            changed[byte] ^= 0x04;
            assert!(Checkpoint::decode(&changed).is_err(), "byte {byte}");
        }
    }

    #[test]
    fn the_newest_valid_copy_wins_and_a_torn_copy_is_survived() {
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
        assert_eq!((newest.sequence, newest.generation), (6, COPIES as u64 + 6));
        assert_eq!(read(&dir).unwrap(), Found::Valid(newest));
        // Tear the newest copy: the one before it wins.
        let path = dir.join(CHECKPOINT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let block = (newest.generation % COPIES as u64) as usize * BLOCK_BYTES;
        bytes[block + 30] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        match read(&dir).unwrap() {
            Found::Valid(found) => assert_eq!(found.sequence, 5),
            other => panic!("expected the previous copy, got {other:?}"),
        }
        // Every copy damaged: invalid, with a reason per copy.
        fs::write(&path, vec![0xA5; COPIES * BLOCK_BYTES]).unwrap();
        assert!(matches!(read(&dir).unwrap(), Found::Invalid(reason) if reason.contains("copy 3")));
        fs::remove_dir_all(&dir).unwrap();
    }
}
