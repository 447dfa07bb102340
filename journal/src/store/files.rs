//! A segment's two files (records, index) and positioned reads of them
//! (`pread`): no file is mapped, so pages read for a replay are the page
//! cache's, never the process's resident memory.

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::StoreError;
use super::format::{INDEX_ENTRY_BYTES, encode_segment_header, segment_file_names};

/// The open files of one segment.
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    pub(crate) first_sequence: u64,
    pub(crate) data: File,
    pub(crate) index: File,
    pub(crate) data_path: PathBuf,
    pub(crate) index_path: PathBuf,
}

impl SegmentFiles {
    /// Creates (or empties) the segment starting at `first_sequence`, its
    /// header written.
    pub(crate) fn create(dir: &Path, first_sequence: u64) -> Result<SegmentFiles, StoreError> {
        let files = Self::open_with(dir, first_sequence, true)?;
        files
            .data
            .write_all_at(&encode_segment_header(first_sequence), 0)
            .map_err(|source| io_error(&files.data_path, source))?;
        Ok(files)
    }

    /// Opens an existing segment for reading and writing.
    pub(crate) fn open(dir: &Path, first_sequence: u64) -> Result<SegmentFiles, StoreError> {
        Self::open_with(dir, first_sequence, false)
    }

    fn open_with(
        dir: &Path,
        first_sequence: u64,
        create: bool,
    ) -> Result<SegmentFiles, StoreError> {
        let (data_name, index_name) = segment_file_names(first_sequence);
        let data_path = dir.join(data_name);
        let index_path = dir.join(index_name);
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(create)
                .open(path)
                .map_err(|source| io_error(path, source))
        };
        Ok(SegmentFiles {
            first_sequence,
            data: open(&data_path)?,
            index: open(&index_path)?,
            data_path,
            index_path,
        })
    }

    /// Reads up to `buffer.len()` bytes of the data file at `offset`;
    /// returns how many (fewer only at the end of the file).
    pub(crate) fn read_data_some(
        &self,
        buffer: &mut [u8],
        offset: u64,
    ) -> Result<usize, StoreError> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self
                .data
                .read_at(&mut buffer[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(io_error(&self.data_path, source)),
            }
        }
        Ok(filled)
    }

    /// Index entry `position` (the offset of message `first + position`).
    pub(crate) fn index_entry(&self, position: u64) -> Result<u32, StoreError> {
        let mut entry = [0u8; INDEX_ENTRY_BYTES];
        self.index
            .read_exact_at(&mut entry, position * INDEX_ENTRY_BYTES as u64)
            .map_err(|source| io_error(&self.index_path, source))?;
        Ok(u32::from_le_bytes(entry))
    }

    pub(crate) fn data_bytes(&self) -> Result<u64, StoreError> {
        file_bytes(&self.data, &self.data_path)
    }

    pub(crate) fn index_bytes(&self) -> Result<u64, StoreError> {
        file_bytes(&self.index, &self.index_path)
    }

    /// Cuts both files: the data at `data_bytes`, the index at `entries`.
    pub(crate) fn truncate(&self, data_bytes: u64, entries: u64) -> Result<(), StoreError> {
        self.data
            .set_len(data_bytes)
            .map_err(|source| io_error(&self.data_path, source))?;
        self.index
            .set_len(entries * INDEX_ENTRY_BYTES as u64)
            .map_err(|source| io_error(&self.index_path, source))
    }

    /// Removes both files.
    pub(crate) fn remove(dir: &Path, first_sequence: u64) -> Result<(), StoreError> {
        let (data_name, index_name) = segment_file_names(first_sequence);
        for path in [dir.join(data_name), dir.join(index_name)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(io_error(&path, source)),
            }
        }
        Ok(())
    }
}

fn file_bytes(file: &File, path: &Path) -> Result<u64, StoreError> {
    file.metadata()
        .map(|metadata| metadata.len())
        .map_err(|source| io_error(path, source))
}

pub(crate) fn io_error(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}
