//! A small state that must survive a torn write, kept as [`COPIES`]
//! checksummed copies in one file (in the spirit of TigerBeetle's
//! superblock): the journal's checkpoint and the Raft hard state.
//!
//! Each copy is 64 bytes at the start of its own 4 KiB block, so a torn
//! write of one (a sector or a page) cannot reach another, and carries a
//! generation that grows by one per write. A write goes to the oldest copy
//! (generation modulo [`COPIES`]) and is synced; the newest valid copy is
//! the state, so a torn write loses at most that write.
//!
//! ```text
//!  0        8        12       16                24                          60       64
//!  +--------+--------+--------+-----------------+---------------------------+--------+
//!  | magic  |version | copy   | generation      | payload (36 bytes, the    | copy   |
//!  | 8 B    | u32    | bytes  | u64             | state's own layout)       | crc u32|
//!  +--------+--------+--------+-----------------+---------------------------+--------+
//! ```
//!
//! `copy crc` is CRC32C over bytes `0..60`; an all-zero block was never
//! written.

#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, JournalError};
use crate::layout::{read_u32, read_u64};

/// Copies kept.
pub(crate) const COPIES: usize = 4;
/// Each copy starts a block of this many bytes.
pub(crate) const BLOCK_BYTES: usize = 4096;
const COPY_BYTES: usize = 64;
const PAYLOAD_START: usize = 24;
const CRC_AT: usize = 60;
/// The bytes of a copy that are the state's own.
pub(crate) const PAYLOAD_BYTES: usize = CRC_AT - PAYLOAD_START;

const _: () = assert!(COPY_BYTES <= BLOCK_BYTES);
const _: () = assert!(COPIES >= 2);

pub(crate) type Payload = [u8; PAYLOAD_BYTES];

/// Which state a file holds: its name in the directory, magic and version.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kind {
    pub(crate) file: &'static str,
    /// For messages: "checkpoint", "Raft hard state".
    pub(crate) what: &'static str,
    pub(crate) magic: [u8; 8],
    pub(crate) version: u32,
}

/// One valid copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) generation: u64,
    pub(crate) payload: Payload,
}

/// What a file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// No file.
    Missing,
    /// A file, but no valid copy in it (why, copy by copy).
    Invalid(String),
    Valid(Stored),
}

/// The usual check of a payload: its bytes from `start` on are reserved and
/// zero.
pub(crate) fn reserved_zero(payload: &Payload, start: usize) -> Result<(), String> {
    if payload[start..].iter().all(|&b| b == 0) {
        Ok(())
    } else {
        Err("a reserved field is not zero".to_owned())
    }
}

fn encode(kind: &Kind, copy: &Stored) -> [u8; COPY_BYTES] {
    let mut bytes = [0u8; COPY_BYTES];
    bytes[0..8].copy_from_slice(&kind.magic);
    bytes[8..12].copy_from_slice(&kind.version.to_le_bytes());
    bytes[12..16].copy_from_slice(&(COPY_BYTES as u32).to_le_bytes());
    bytes[16..24].copy_from_slice(&copy.generation.to_le_bytes());
    bytes[PAYLOAD_START..CRC_AT].copy_from_slice(&copy.payload);
    let crc = crate::checksum::crc32c(&bytes[..CRC_AT]);
    bytes[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// A copy, or why it is not one. `Err(Ok(version))`: a sound copy of
/// another format version. `payload_valid` checks the state's own fields
/// (reserved bytes zero, …).
fn decode(
    kind: &Kind,
    bytes: &[u8],
    payload_valid: &dyn Fn(&Payload) -> Result<(), String>,
) -> Result<Stored, Result<u32, String>> {
    if bytes.iter().all(|&b| b == 0) {
        return Err(Err("never written".to_owned()));
    }
    if bytes[0..8] != kind.magic {
        return Err(Err(format!("no {} magic", kind.what)));
    }
    if crate::checksum::crc32c(&bytes[..CRC_AT]) != read_u32(bytes, CRC_AT) {
        return Err(Err("checksum mismatch".to_owned()));
    }
    let version = read_u32(bytes, 8);
    if version != kind.version {
        return Err(Ok(version));
    }
    if read_u32(bytes, 12) as usize != COPY_BYTES {
        return Err(Err("a reserved field is not zero".to_owned()));
    }
    let payload: Payload = bytes[PAYLOAD_START..CRC_AT]
        .try_into()
        .expect("the payload's length");
    payload_valid(&payload).map_err(Err)?;
    Ok(Stored {
        generation: read_u64(bytes, 16),
        payload,
    })
}

/// Reads the newest valid copy of `kind`'s file in `dir`. A copy of another
/// format version is [`JournalError::IncompatibleVersion`].
pub(crate) fn read(
    dir: &Path,
    kind: &Kind,
    payload_valid: &dyn Fn(&Payload) -> Result<(), String>,
) -> Result<Found, JournalError> {
    let path = dir.join(kind.file);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(source) => return Err(JournalError::Io { path, source }),
    };
    let mut newest: Option<Stored> = None;
    let mut reasons = Vec::new();
    for index in 0..COPIES {
        let start = index * BLOCK_BYTES;
        let Some(block) = bytes.get(start..start + COPY_BYTES) else {
            reasons.push(format!("copy {index}: beyond the end of the file"));
            continue;
        };
        match decode(kind, block, payload_valid) {
            Ok(found) => {
                if newest.is_none_or(|newest| found.generation > newest.generation) {
                    newest = Some(found);
                }
            }
            Err(Ok(version)) => {
                return Err(JournalError::IncompatibleVersion {
                    path,
                    found: version,
                    supported: kind.version,
                });
            }
            Err(Err(reason)) => reasons.push(format!("copy {index}: {reason}")),
        }
    }
    Ok(match newest {
        Some(found) => Found::Valid(found),
        None => Found::Invalid(format!(
            "no valid copy of the {} ({})",
            kind.what,
            reasons.join("; ")
        )),
    })
}

/// Writes the copies of one file.
#[derive(Debug)]
pub(crate) struct CopiesWriter {
    kind: Kind,
    file: File,
    path: PathBuf,
    /// The generation of the newest copy.
    generation: u64,
}

impl CopiesWriter {
    /// Opens (creating) `kind`'s file in `dir`. With `rewrite`, every copy
    /// is written now with that payload (a new file, or a deliberate reset)
    /// and the directory synced; otherwise `generation` is the newest valid
    /// copy's and later writes continue from it.
    pub(crate) fn open(
        dir: &Path,
        kind: Kind,
        generation: u64,
        rewrite: Option<Payload>,
    ) -> Result<CopiesWriter, JournalError> {
        let path = dir.join(kind.file);
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let mut writer = CopiesWriter {
            kind,
            file,
            path,
            generation,
        };
        if let Some(payload) = rewrite {
            writer
                .file
                .set_len((COPIES * BLOCK_BYTES) as u64)
                .at(&writer.path)?;
            for _ in 0..COPIES {
                writer.write(payload)?;
            }
            crate::segment::sync_directory(dir).at(dir)?;
        }
        Ok(writer)
    }

    /// The generation of the newest copy written (or read at open).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Writes the next generation into the oldest copy's block and syncs
    /// it; returns that generation.
    pub(crate) fn write(&mut self, payload: Payload) -> Result<u64, JournalError> {
        let next = Stored {
            generation: self.generation + 1,
            payload,
        };
        let block = (next.generation % COPIES as u64) as usize;
        self.file
            .write_all_at(&encode(&self.kind, &next), (block * BLOCK_BYTES) as u64)
            .at(&self.path)?;
        self.file.sync_data().at(&self.path)?;
        self.generation = next.generation;
        Ok(next.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: Kind = Kind {
        file: "TEST_COPIES",
        what: "test state",
        magic: *b"EXTEST\0\x01",
        version: 1,
    };

    fn any(_: &Payload) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn a_copy_round_trips_and_any_changed_byte_is_refused() {
        let mut payload = [0u8; PAYLOAD_BYTES];
        payload[..8].copy_from_slice(&1_234u64.to_le_bytes());
        let copy = Stored {
            generation: 9,
            payload,
        };
        let bytes = encode(&KIND, &copy);
        assert_eq!(decode(&KIND, &bytes, &any), Ok(copy));
        for byte in 0..COPY_BYTES {
            let mut changed = bytes;
            changed[byte] ^= 0x04;
            assert!(decode(&KIND, &changed, &any).is_err(), "byte {byte}");
        }
        // The state's own check is applied.
        let refuse = |_: &Payload| Err("no".to_owned());
        assert_eq!(decode(&KIND, &bytes, &refuse), Err(Err("no".to_owned())));
    }

    #[test]
    fn the_newest_valid_copy_wins_and_a_torn_copy_is_survived() {
        let dir = std::env::temp_dir().join(format!("copies-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir, &KIND, &any).unwrap(), Found::Missing);
        let payload = |value: u8| [value; PAYLOAD_BYTES];
        let mut writer = CopiesWriter::open(&dir, KIND, 0, Some(payload(0))).unwrap();
        for value in 1..=6 {
            writer.write(payload(value)).unwrap();
        }
        let newest = Stored {
            generation: COPIES as u64 + 6,
            payload: payload(6),
        };
        assert_eq!(writer.generation(), newest.generation);
        assert_eq!(read(&dir, &KIND, &any).unwrap(), Found::Valid(newest));
        // Tear the newest copy: the one before it wins.
        let path = dir.join(KIND.file);
        let mut bytes = fs::read(&path).unwrap();
        let block = (newest.generation % COPIES as u64) as usize * BLOCK_BYTES;
        bytes[block + 30] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        match read(&dir, &KIND, &any).unwrap() {
            Found::Valid(found) => assert_eq!(found.payload, payload(5)),
            other => panic!("expected the previous copy, got {other:?}"),
        }
        // Every copy damaged: invalid, with a reason per copy.
        fs::write(&path, vec![0xA5; COPIES * BLOCK_BYTES]).unwrap();
        assert!(matches!(
            read(&dir, &KIND, &any).unwrap(),
            Found::Invalid(reason) if reason.contains("copy 3") && reason.contains("test state")
        ));
        // Another version: refused as such.
        let mut other = KIND;
        other.version = 2;
        CopiesWriter::open(&dir, other, 0, Some(payload(1))).unwrap();
        assert!(matches!(
            read(&dir, &KIND, &any),
            Err(JournalError::IncompatibleVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
