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
//! rest. A session whose End of Session was sent is marked ended in its
//! file (record type [`RECORD_TYPE_END`]) and never written again. The
//! publisher decides what to do with a log that has ended or that
//! disagrees with the journal (see `publisher`: the day continues under a
//! new session name).

use std::path::{Path, PathBuf};

use journal::{Durability, Journal, JournalError, JournalOptions};

/// The journal record type of an ITCH message in the log.
pub const RECORD_TYPE_ITCH: u16 = 0x0100;
/// The record that closes a session's log: its End of Session was sent.
pub const RECORD_TYPE_END: u16 = 0x0101;

/// A log on disk compared with the one in memory.
#[derive(Debug)]
pub struct OnDisk {
    /// ITCH messages in the file.
    pub messages: u64,
    /// The session was ended (End of Session sent).
    pub ended: bool,
    /// The first way the file disagrees with the log in memory.
    pub disagreement: Option<LogError>,
}

fn has_segments(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

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
    #[error("message log {dir}: the session has ended (End of Session was sent)")]
    Ended { dir: PathBuf },
    #[error(
        "message logs under {dir}: every session name of this trading day is used (a day \
         restarted more than 52 times); move them aside"
    )]
    Generations { dir: PathBuf },
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

    /// What `dir` holds compared with this log: `None` if there is no log
    /// there.
    pub fn inspect(&self, dir: &Path) -> Result<Option<OnDisk>, LogError> {
        if !dir.join("LOCK").exists() && !has_segments(dir) {
            return Ok(None);
        }
        let error = |source| LogError::Journal {
            dir: dir.to_path_buf(),
            source,
        };
        let (disk, _report) = Journal::open_read_only(dir).map_err(error)?;
        let mut on_disk = OnDisk {
            messages: 0,
            ended: false,
            disagreement: None,
        };
        let mut reader = disk.reader(1);
        while let Some(record) = reader.next().map_err(error)? {
            match record.record_type {
                RECORD_TYPE_ITCH if !on_disk.ended => {
                    on_disk.messages += 1;
                    if on_disk.disagreement.is_none()
                        && self.get(on_disk.messages) != Some(record.body)
                    {
                        on_disk.disagreement = Some(if on_disk.messages > self.len() {
                            LogError::Ahead {
                                dir: dir.to_path_buf(),
                                on_disk: on_disk.messages,
                                regenerated: self.len(),
                            }
                        } else {
                            LogError::Differs {
                                dir: dir.to_path_buf(),
                                sequence: on_disk.messages,
                            }
                        });
                    }
                }
                RECORD_TYPE_END if !on_disk.ended => on_disk.ended = true,
                _ => {
                    on_disk.disagreement.get_or_insert(LogError::Differs {
                        dir: dir.to_path_buf(),
                        sequence: on_disk.messages + 1,
                    });
                }
            }
        }
        Ok(Some(on_disk))
    }

    /// Writes the log through to the journal in `dir` from now on: what
    /// the directory holds must be a prefix of this log, not ended (see
    /// [`inspect`](Self::inspect)); the rest is appended, stamped
    /// `timestamp_ns`.
    pub fn attach(&mut self, dir: &Path, timestamp_ns: u64) -> Result<(), LogError> {
        let error = |source| LogError::Journal {
            dir: dir.to_path_buf(),
            source,
        };
        if let Some(on_disk) = self.inspect(dir)? {
            if let Some(disagreement) = on_disk.disagreement {
                return Err(disagreement);
            }
            if on_disk.ended {
                return Err(LogError::Ended {
                    dir: dir.to_path_buf(),
                });
            }
        }
        let options = JournalOptions {
            segment_bytes: 16 << 20,
            record_bytes_max: 64 << 10,
            durability: Durability::Memory,
            prefault: false,
        };
        let (mut disk, _report) = Journal::open(dir, options).map_err(error)?;
        for sequence in disk.last_sequence() + 1..=self.len() {
            let message = self.get(sequence).expect("within the log");
            disk.append(RECORD_TYPE_ITCH, timestamp_ns, message)
                .map_err(error)?;
        }
        self.disk = Some(disk);
        self.dir = Some(dir.to_path_buf());
        Ok(())
    }

    /// Marks the session ended in the file (its End of Session was sent:
    /// no message will be added to it) and closes the file.
    pub fn end(&mut self, timestamp_ns: u64) -> Result<(), LogError> {
        if let Some(disk) = self.disk.as_mut()
            && let Err(source) = disk.append(RECORD_TYPE_END, timestamp_ns, &[])
        {
            let dir = self.dir.clone().unwrap_or_default();
            self.disk = None;
            return Err(LogError::Journal { dir, source });
        }
        self.detach()
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
    fn attach_writes_through_and_inspect_compares() {
        let dir = temp_dir("attach");
        let mut log = MessageLog::new();
        assert!(log.inspect(&dir).unwrap().is_none());
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
        let on_disk = again.inspect(&dir).unwrap().unwrap();
        assert_eq!((on_disk.messages, on_disk.ended), (2, false));
        assert!(on_disk.disagreement.is_none());
        again.attach(&dir, 3).unwrap();
        again.end(3).unwrap();
        let (disk, _) = Journal::open_read_only(&dir).unwrap();
        assert_eq!(disk.last_sequence(), 4);
        drop(disk);
        let on_disk = again.inspect(&dir).unwrap().unwrap();
        assert_eq!((on_disk.messages, on_disk.ended), (3, true));
        assert!(matches!(again.attach(&dir, 4), Err(LogError::Ended { .. })));

        // One that disagrees, or is shorter than the file.
        let mut other = MessageLog::new();
        for message in [&b"one"[..], b"TWO", b"three"] {
            other.append(message, 4).unwrap();
        }
        let on_disk = other.inspect(&dir).unwrap().unwrap();
        assert!(matches!(
            on_disk.disagreement,
            Some(LogError::Differs { sequence: 2, .. })
        ));
        assert!(matches!(
            other.attach(&dir, 4),
            Err(LogError::Differs { .. })
        ));
        let mut short = MessageLog::new();
        short.append(b"one", 5).unwrap();
        assert!(matches!(
            short.inspect(&dir).unwrap().unwrap().disagreement,
            Some(LogError::Ahead { on_disk: 2, .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
