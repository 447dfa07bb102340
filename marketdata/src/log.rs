//! The message log: every ITCH message of the current MoldUDP64 session,
//! by sequence number, so any of them can be sent again (re-requests).
//!
//! The log lives in memory (one contiguous buffer and an index of where
//! each message ends) and, when given a directory, is also written through
//! to a journal on disk (`journal` crate, one record per message; record
//! sequence = MoldUDP64 sequence) — the published stream as a file that
//! operators can read and that outlives the process.
//!
//! The stream is a pure function of the command journal (see `feed`), so
//! at start-up the publisher regenerates the session's messages by
//! replaying the command journal; [`MessageLog::attach`] then checks that
//! the log on disk is a prefix of what was regenerated and appends the
//! rest. The command journal is the authority: a log that disagrees with
//! it (which the durability rule rules out short of an operator's
//! `journal truncate` or a damaged log file) is moved aside, kept for
//! inspection, and written anew — reported, never silently.

use std::path::{Path, PathBuf};

use journal::{Durability, Journal, JournalError, JournalOptions};

/// The journal record type of an ITCH message in the log.
pub const RECORD_TYPE_ITCH: u16 = 0x0100;

/// Why a log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("message log {dir}: {source}")]
    Journal {
        dir: PathBuf,
        #[source]
        source: JournalError,
    },
    #[error(
        "message log {dir} has {on_disk} messages but the command journal regenerates only \
         {regenerated}: the log is ahead of the journal it was published from"
    )]
    Ahead {
        dir: PathBuf,
        on_disk: u64,
        regenerated: u64,
    },
    #[error(
        "message log {dir}: message {sequence} differs from the one the command journal \
         regenerates"
    )]
    Differs { dir: PathBuf, sequence: u64 },
}

/// The messages of one MoldUDP64 session.
#[derive(Debug, Default)]
pub struct MessageLog {
    bytes: Vec<u8>,
    /// `ends[i]`: where message `i + 1` ends in `bytes`.
    ends: Vec<usize>,
    disk: Option<Journal>,
    dir: Option<PathBuf>,
}

impl MessageLog {
    /// An empty log in memory only.
    pub fn new() -> MessageLog {
        MessageLog::default()
    }

    /// The sequence number the next message gets.
    pub fn next_sequence(&self) -> u64 {
        self.ends.len() as u64 + 1
    }

    /// How many messages the log holds.
    pub fn len(&self) -> u64 {
        self.ends.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes held in memory.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Appends an encoded message; returns its sequence number.
    pub fn append(&mut self, message: &[u8], timestamp_ns: u64) -> Result<u64, LogError> {
        self.bytes.extend_from_slice(message);
        self.ends.push(self.bytes.len());
        if let Some(disk) = self.disk.as_mut()
            && let Err(source) = disk.append(RECORD_TYPE_ITCH, timestamp_ns, message)
        {
            // Memory stays the source for re-requests; the file stops here.
            let dir = self.dir.clone().unwrap_or_default();
            self.disk = None;
            return Err(LogError::Journal { dir, source });
        }
        Ok(self.len())
    }

    /// Message `sequence` (from 1).
    pub fn get(&self, sequence: u64) -> Option<&[u8]> {
        let index = usize::try_from(sequence.checked_sub(1)?).ok()?;
        let end = *self.ends.get(index)?;
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        Some(&self.bytes[start..end])
    }

    /// Writes the log through to the journal in `dir` from now on, after
    /// checking what the directory already holds is a prefix of this log
    /// and appending the rest of it. `timestamp_ns` stamps the appended
    /// records. A directory that disagrees is renamed
    /// `<dir>.diverged-<n>` and a new log written; the disagreement and the
    /// new name are returned.
    pub fn attach(
        &mut self,
        dir: &Path,
        timestamp_ns: u64,
    ) -> Result<Option<(LogError, PathBuf)>, LogError> {
        match self.attach_checked(dir, timestamp_ns) {
            Ok(()) => Ok(None),
            Err(disagreement @ (LogError::Ahead { .. } | LogError::Differs { .. })) => {
                let aside = (1..)
                    .map(|n| PathBuf::from(format!("{}.diverged-{n}", dir.display())))
                    .find(|path| !path.exists())
                    .expect("a free name");
                std::fs::rename(dir, &aside).map_err(|source| LogError::Journal {
                    dir: dir.to_path_buf(),
                    source: JournalError::Io {
                        path: dir.to_path_buf(),
                        source,
                    },
                })?;
                self.attach_checked(dir, timestamp_ns)?;
                Ok(Some((disagreement, aside)))
            }
            Err(error) => Err(error),
        }
    }

    fn attach_checked(&mut self, dir: &Path, timestamp_ns: u64) -> Result<(), LogError> {
        let error = |source| LogError::Journal {
            dir: dir.to_path_buf(),
            source,
        };
        let options = JournalOptions {
            segment_bytes: 16 << 20,
            record_bytes_max: 64 << 10,
            durability: Durability::Memory,
            prefault: false,
        };
        let (mut disk, _report) = Journal::open(dir, options).map_err(error)?;
        let on_disk = disk.last_sequence();
        if on_disk > self.len() {
            return Err(LogError::Ahead {
                dir: dir.to_path_buf(),
                on_disk,
                regenerated: self.len(),
            });
        }
        {
            let mut reader = disk.reader(1);
            while let Some(record) = reader.next().map_err(error)? {
                if record.record_type != RECORD_TYPE_ITCH
                    || self.get(record.sequence) != Some(record.body)
                {
                    return Err(LogError::Differs {
                        dir: dir.to_path_buf(),
                        sequence: record.sequence,
                    });
                }
            }
        }
        for sequence in on_disk + 1..=self.len() {
            let message = self.get(sequence).expect("within the log");
            disk.append(RECORD_TYPE_ITCH, timestamp_ns, message)
                .map_err(error)?;
        }
        self.disk = Some(disk);
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }

    /// Closes the file (if any), keeping the messages in memory.
    pub fn detach(&mut self) -> Result<(), LogError> {
        match self.disk.take() {
            Some(disk) => disk.close().map_err(|source| LogError::Journal {
                dir: self.dir.clone().unwrap_or_default(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// The directory written through to, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "md-log-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn messages_by_sequence() {
        let mut log = MessageLog::new();
        assert_eq!(log.next_sequence(), 1);
        assert_eq!(log.get(0), None);
        assert_eq!(log.get(1), None);
        assert_eq!(log.append(b"abc", 0).unwrap(), 1);
        assert_eq!(log.append(b"", 0).unwrap(), 2);
        assert_eq!(log.append(b"defg", 0).unwrap(), 3);
        assert_eq!(log.get(1), Some(&b"abc"[..]));
        assert_eq!(log.get(2), Some(&b""[..]));
        assert_eq!(log.get(3), Some(&b"defg"[..]));
        assert_eq!(log.get(4), None);
        assert_eq!(log.next_sequence(), 4);
        assert_eq!(log.bytes(), 7);
    }

    #[test]
    fn attach_writes_through_and_checks_the_prefix_on_reopen() {
        let dir = temp_dir("attach");
        let mut log = MessageLog::new();
        log.append(b"one", 1).unwrap();
        log.attach(&dir, 1).unwrap();
        log.append(b"two", 2).unwrap();
        log.detach().unwrap();

        // A regenerated log that continues the one on disk: accepted, and
        // the rest appended.
        let mut again = MessageLog::new();
        for message in [&b"one"[..], b"two", b"three"] {
            again.append(message, 3).unwrap();
        }
        again.attach(&dir, 3).unwrap();
        again.detach().unwrap();
        let (disk, _) = Journal::open_read_only(&dir).unwrap();
        assert_eq!(disk.last_sequence(), 3);
        drop(disk);

        // One that disagrees: the file is moved aside and written anew.
        let mut other = MessageLog::new();
        for message in [&b"one"[..], b"TWO", b"three"] {
            other.append(message, 4).unwrap();
        }
        let (why, aside) = other.attach(&dir, 4).unwrap().expect("moved aside");
        assert!(
            matches!(why, LogError::Differs { sequence: 2, .. }),
            "{why}"
        );
        assert_eq!(
            aside,
            PathBuf::from(format!("{}.diverged-1", dir.display()))
        );
        other.detach().unwrap();
        let (kept, _) = Journal::open_read_only(&aside).unwrap();
        assert_eq!(kept.last_sequence(), 3);
        drop(kept);
        let (rewritten, _) = Journal::open_read_only(&dir).unwrap();
        let mut reader = rewritten.reader(2);
        assert_eq!(reader.next().unwrap().unwrap().body, b"TWO");
        drop(rewritten);
        // One shorter than the file: the same, under the next free name.
        let mut short = MessageLog::new();
        short.append(b"one", 5).unwrap();
        let (why, aside2) = short.attach(&dir, 5).unwrap().expect("moved aside");
        assert!(matches!(why, LogError::Ahead { on_disk: 3, .. }), "{why}");
        assert_eq!(
            aside2,
            PathBuf::from(format!("{}.diverged-2", dir.display()))
        );
        short.detach().unwrap();
        for path in [&dir, &aside, &aside2] {
            std::fs::remove_dir_all(path).unwrap();
        }
    }
}
