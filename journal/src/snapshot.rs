//! Snapshot files: a state's bytes with the sequence number it follows and
//! its state hash, checksummed, written so that a crash never leaves half a
//! snapshot under a snapshot's name.
//!
//! ```text
//! snapshot-<sequence, 20 digits>.snapshot
//!
//!  0        8        12       16               24               32
//!  +--------+--------+--------+----------------+----------------+
//!  | magic  |version | header | sequence       | timestamp_ns   |
//!  | 8 B    | u32    | bytes  | u64            | u64            |
//!  +--------+--------+--------+----------------+----------------+
//!  32                                  48               56       60       64
//!  +-----------------------------------+----------------+--------+--------+
//!  | state hash (u128)                 | body bytes     | body   | header |
//!  |                                   | u64            | crc u32| crc u32|
//!  +-----------------------------------+----------------+--------+--------+
//!  64
//!  +---------------------------------------------------------------------+
//!  | body: the state (the engine's own format)                           |
//!  +---------------------------------------------------------------------+
//! ```
//!
//! Both checksums are CRC32C: the body's over the body, the header's over
//! header bytes `0..60`. Writing goes to `<name>.tmp`, which is synced and
//! then renamed into place, and the directory is synced.

#![forbid(unsafe_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, JournalError};
use crate::layout::{read_u32, read_u64};
use crate::segment::sync_directory;

const SNAPSHOT_MAGIC: [u8; 8] = *b"EXSNAP\0\x01";
const SNAPSHOT_VERSION: u32 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 64;

/// A snapshot file's header, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub path: PathBuf,
    /// The last sequence number the state includes.
    pub sequence: u64,
    /// The timestamp of that command.
    pub timestamp_ns: u64,
    /// The state hash the state had when written.
    pub state_hash: u128,
    pub body_bytes: u64,
}

/// The snapshots of one directory (the journal's), of one kind: the
/// engine's state (`snapshot-<sequence>.snapshot`) or the edges' state
/// beside it (`edges-<sequence>.snapshot`, see [`SnapshotStore::edges`]).
/// Both kinds share the file format.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    kind: &'static str,
}

impl SnapshotStore {
    /// The engine's snapshots in `dir`.
    pub fn new(dir: &Path) -> SnapshotStore {
        SnapshotStore {
            dir: dir.to_path_buf(),
            kind: "snapshot",
        }
    }

    /// The edges' snapshots in `dir`: what the gateway and market data
    /// derived from the commands through a sequence (their streams'
    /// lengths, the trading day, the published orders), written beside the
    /// engine's snapshot of the same sequence so that a restart resumes
    /// them there too.
    pub fn edges(dir: &Path) -> SnapshotStore {
        SnapshotStore {
            dir: dir.to_path_buf(),
            kind: "edges",
        }
    }

    /// The file name of the engine's snapshot at `sequence`.
    pub fn file_name(sequence: u64) -> String {
        file_name("snapshot", sequence)
    }

    /// The path of this store's snapshot at `sequence` (whether it exists
    /// or not).
    pub fn path_of(&self, sequence: u64) -> PathBuf {
        self.dir.join(file_name(self.kind, sequence))
    }

    /// This store's snapshot at exactly `sequence`, checked: `Ok(None)` if
    /// there is no file of that name.
    pub fn load_at(&self, sequence: u64) -> Result<Option<(SnapshotInfo, Vec<u8>)>, JournalError> {
        let path = self.path_of(sequence);
        if !path.exists() {
            return Ok(None);
        }
        let info = read_header(&path, self.kind)?;
        let body = self.load(&info)?;
        Ok(Some((info, body)))
    }

    /// Writes a snapshot atomically (temporary file, sync, rename, directory
    /// sync) and returns its header.
    pub fn write(
        &self,
        sequence: u64,
        timestamp_ns: u64,
        state_hash: u128,
        body: &[u8],
    ) -> Result<SnapshotInfo, JournalError> {
        let path = self.path_of(sequence);
        let temporary = path.with_extension("snapshot.tmp");
        let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
        header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
        header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(SNAPSHOT_HEADER_BYTES as u32).to_le_bytes());
        header[16..24].copy_from_slice(&sequence.to_le_bytes());
        header[24..32].copy_from_slice(&timestamp_ns.to_le_bytes());
        header[32..48].copy_from_slice(&state_hash.to_le_bytes());
        header[48..56].copy_from_slice(&(body.len() as u64).to_le_bytes());
        header[56..60].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
        let header_checksum = crc32c::crc32c(&header[..60]);
        header[60..64].copy_from_slice(&header_checksum.to_le_bytes());
        let mut file = File::create(&temporary).at(&temporary)?;
        file.write_all(&header).at(&temporary)?;
        file.write_all(body).at(&temporary)?;
        file.sync_all().at(&temporary)?;
        drop(file);
        fs::rename(&temporary, &path).at(&path)?;
        sync_directory(&self.dir).at(&self.dir)?;
        Ok(SnapshotInfo {
            path,
            sequence,
            timestamp_ns,
            state_hash,
            body_bytes: body.len() as u64,
        })
    }

    /// Every snapshot file of the directory in sequence order, each with its
    /// header checked (the body is checked by [`SnapshotStore::load`]).
    /// Leftover temporary files are ignored, and so is a file removed
    /// between the listing and the read of its header (retention retiring
    /// an old snapshot meanwhile: the directory has it no more).
    pub fn list(&self) -> Result<Vec<Result<SnapshotInfo, JournalError>>, JournalError> {
        let mut paths = Vec::new();
        for entry in fs::read_dir(&self.dir).at(&self.dir)? {
            let path = entry.at(&self.dir)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with(self.kind)
                && name[self.kind.len()..].starts_with('-')
                && name.ends_with(".snapshot")
            {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|path| read_header(&path, self.kind))
            .filter(|read| {
                !matches!(read, Err(JournalError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound)
            })
            .collect())
    }

    /// Reads a snapshot's body and checks it against the header.
    pub fn load(&self, info: &SnapshotInfo) -> Result<Vec<u8>, JournalError> {
        let bytes = fs::read(&info.path).at(&info.path)?;
        let invalid = |reason: &str| JournalError::Snapshot {
            path: info.path.clone(),
            reason: reason.to_owned(),
        };
        let header = check_header(&info.path, &bytes, self.kind)?;
        if header != *info {
            return Err(invalid("the file changed since its header was read"));
        }
        let body = &bytes[SNAPSHOT_HEADER_BYTES..];
        if body.len() as u64 != info.body_bytes {
            return Err(invalid(&format!(
                "the body is {} bytes, the header says {}",
                body.len(),
                info.body_bytes
            )));
        }
        if crc32c::crc32c(body) != read_u32(&bytes, 56) {
            return Err(invalid("the body checksum does not match"));
        }
        Ok(body.to_vec())
    }

    /// The newest snapshot whose header and body check out, at or below
    /// `sequence_max`, with the errors of any newer ones that did not. A
    /// snapshot of another format version is an error
    /// ([`JournalError::IncompatibleVersion`]), not skipped.
    #[allow(clippy::type_complexity)]
    pub fn newest_valid(
        &self,
        sequence_max: u64,
    ) -> Result<(Option<(SnapshotInfo, Vec<u8>)>, Vec<JournalError>), JournalError> {
        let mut skipped = Vec::new();
        for entry in self.list()?.into_iter().rev() {
            let loaded = entry.and_then(|info| {
                let body = self.load(&info)?;
                Ok((info, body))
            });
            match loaded {
                Ok((info, _)) if info.sequence > sequence_max => {}
                Ok(found) => return Ok((Some(found), skipped)),
                // Another build's snapshot is not damage to pass over.
                Err(error @ JournalError::IncompatibleVersion { .. }) => return Err(error),
                Err(error) => skipped.push(error),
            }
        }
        Ok((None, skipped))
    }

    /// Removes the snapshots after `sequence` (after the operator truncated
    /// the journal there, they describe states that no longer follow from
    /// it).
    pub fn remove_after(&self, sequence: u64) -> Result<Vec<PathBuf>, JournalError> {
        let mut removed = Vec::new();
        for info in self.list()?.into_iter().flatten() {
            if info.sequence > sequence {
                fs::remove_file(&info.path).at(&info.path)?;
                removed.push(info.path);
            }
        }
        if !removed.is_empty() {
            sync_directory(&self.dir).at(&self.dir)?;
        }
        Ok(removed)
    }
}

fn file_name(kind: &str, sequence: u64) -> String {
    format!("{kind}-{sequence:020}.snapshot")
}

fn read_header(path: &Path, kind: &str) -> Result<SnapshotInfo, JournalError> {
    let mut file = File::open(path).at(path)?;
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    std::io::Read::read_exact(&mut file, &mut header).map_err(|_| JournalError::Snapshot {
        path: path.to_path_buf(),
        reason: "shorter than a snapshot header".to_owned(),
    })?;
    check_header(path, &header, kind)
}

fn check_header(path: &Path, bytes: &[u8], kind: &str) -> Result<SnapshotInfo, JournalError> {
    let invalid = |reason: String| JournalError::Snapshot {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err(invalid("shorter than a snapshot header".to_owned()));
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err(invalid("not a snapshot file (magic)".to_owned()));
    }
    if crc32c::crc32c(&bytes[..60]) != read_u32(bytes, 60) {
        return Err(invalid("the header checksum does not match".to_owned()));
    }
    // After the checksum: a flipped bit in the version field is damage (a
    // damaged snapshot is passed over); a header that checks out with
    // another version was written by another build, and is never taken
    // for damage.
    let version = read_u32(bytes, 8);
    if version != SNAPSHOT_VERSION {
        return Err(JournalError::IncompatibleVersion {
            path: path.to_path_buf(),
            found: version,
            supported: SNAPSHOT_VERSION,
        });
    }
    if read_u32(bytes, 12) as usize != SNAPSHOT_HEADER_BYTES {
        return Err(invalid(format!(
            "the header says {} header bytes, not {SNAPSHOT_HEADER_BYTES}",
            read_u32(bytes, 12)
        )));
    }
    let sequence = read_u64(bytes, 16);
    let expected_name = file_name(kind, sequence);
    if path.file_name().and_then(|n| n.to_str()) != Some(expected_name.as_str()) {
        return Err(invalid(format!("the header says sequence {sequence}")));
    }
    Ok(SnapshotInfo {
        path: path.to_path_buf(),
        sequence,
        timestamp_ns: read_u64(bytes, 24),
        state_hash: u128::from_le_bytes(bytes[32..48].try_into().expect("16 bytes")),
        body_bytes: read_u64(bytes, 48),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("snapshot-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn newest_valid_skips_a_damaged_snapshot_and_any_past_the_limit() {
        let dir = scratch("newest");
        let store = SnapshotStore::new(&dir);
        store.write(10, 1, 0xAA, b"ten").unwrap();
        let twenty = store.write(20, 2, 0xBB, b"twenty").unwrap();
        store.write(30, 3, 0xCC, b"thirty").unwrap();
        let (found, skipped) = store.newest_valid(u64::MAX).unwrap();
        assert_eq!(found.unwrap().1, b"thirty");
        assert!(skipped.is_empty());

        let mut bytes = fs::read(dir.join(SnapshotStore::file_name(30))).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(dir.join(SnapshotStore::file_name(30)), bytes).unwrap();
        let (found, skipped) = store.newest_valid(u64::MAX).unwrap();
        let (info, body) = found.unwrap();
        assert_eq!((info.clone(), body), (twenty, b"twenty".to_vec()));
        assert_eq!(info.state_hash, 0xBB);
        assert_eq!(skipped.len(), 1);

        let (found, _) = store.newest_valid(15).unwrap();
        assert_eq!(found.unwrap().0.sequence, 10);
        assert_eq!(store.remove_after(10).unwrap().len(), 2);
        assert_eq!(store.list().unwrap().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_header_byte_is_checked() {
        let dir = scratch("header");
        let store = SnapshotStore::new(&dir);
        let info = store.write(5, 9, 7, b"state").unwrap();
        let original = fs::read(&info.path).unwrap();
        for byte in 0..original.len() {
            let mut changed = original.clone();
            changed[byte] ^= 0x04;
            fs::write(&info.path, &changed).unwrap();
            let result = read_header(&info.path, "snapshot").and_then(|header| store.load(&header));
            assert!(result.is_err(), "byte {byte} changed unnoticed");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
