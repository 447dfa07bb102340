//! The Raft hard state beside the journal (`journal::HardStateFile`):
//! what is stored survives a reopen, Raft's rules are enforced before
//! anything is written, a torn newest copy loses only the last change, a
//! file with no valid copy is refused, and the journal and the hard state
//! share their directory.
//!
//! Run: `cargo test -p journal --test hard_state`.

use std::fs;
use std::path::PathBuf;

use journal::{
    Durability, HARD_STATE_FILE, HardState, HardStateFile, Journal, JournalError, JournalOptions,
};

/// A directory removed when the test passes (kept on failure).
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("journal-hard-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Scratch { path }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn state(term: u64, vote: u64, commit: u64) -> HardState {
    HardState { term, vote, commit }
}

#[test]
fn stored_states_survive_a_reopen_and_raft_rules_are_enforced() {
    let scratch = Scratch::new("rules");
    let mut file = HardStateFile::open(&scratch.path).unwrap();
    assert_eq!(file.current(), HardState::default());
    file.store(state(1, 2, 0)).unwrap();
    file.store(state(1, 2, 5)).unwrap();
    // A second vote in term 1, a term going back, a commit going back.
    for refused in [state(1, 3, 5), state(0, 0, 5), state(1, 2, 4)] {
        match file.store(refused) {
            Err(JournalError::HardState { reason, .. }) => assert!(!reason.is_empty()),
            other => panic!("{refused:?}: expected a refusal, got {other:?}"),
        }
        assert_eq!(
            file.current(),
            state(1, 2, 5),
            "{refused:?} changed nothing"
        );
    }
    // A new term: no vote yet, then a vote for another node.
    file.store(state(2, 0, 5)).unwrap();
    file.store(state(2, 3, 7)).unwrap();
    drop(file);
    let mut file = HardStateFile::open(&scratch.path).unwrap();
    assert_eq!(file.current(), state(2, 3, 7));
    // Writes continue from the newest copy after a reopen.
    file.store(state(3, 1, 9)).unwrap();
    drop(file);
    assert_eq!(
        HardStateFile::open(&scratch.path).unwrap().current(),
        state(3, 1, 9)
    );
}

#[test]
fn a_torn_newest_copy_loses_only_the_last_change_and_no_valid_copy_is_refused() {
    let scratch = Scratch::new("torn");
    let mut file = HardStateFile::open(&scratch.path).unwrap();
    // Four copies written at creation (generation 4), then three stores:
    // the newest is generation 7, in block 7 % 4.
    file.store(state(1, 1, 0)).unwrap();
    file.store(state(2, 0, 3)).unwrap();
    file.store(state(2, 2, 4)).unwrap();
    drop(file);
    let path = scratch.path.join(HARD_STATE_FILE);
    let mut bytes = fs::read(&path).unwrap();
    bytes[3 * 4096 + 30] ^= 0xFF;
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        HardStateFile::open(&scratch.path).unwrap().current(),
        state(2, 0, 3)
    );
    // Nothing valid: refused, not taken for "never voted".
    fs::write(&path, vec![0x5A; 4 * 4096]).unwrap();
    match HardStateFile::open(&scratch.path) {
        Err(JournalError::HardState { reason, .. }) => {
            assert!(reason.contains("no valid copy"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_journal_and_the_hard_state_share_a_directory() {
    let scratch = Scratch::new("beside");
    let options = JournalOptions {
        segment_bytes: 1 << 20,
        durability: Durability::Memory,
        prefault: false,
        ..JournalOptions::default()
    };
    let (mut journal, _) = Journal::open(&scratch.path, options).unwrap();
    let mut file = HardStateFile::open(&scratch.path).unwrap();
    journal.set_term(4).unwrap();
    for sequence in 1..=20u64 {
        journal.append(1, sequence, b"command").unwrap();
    }
    file.store(state(4, 1, 20)).unwrap();
    journal.close().unwrap();
    drop(file);
    let (journal, report) = Journal::open(&scratch.path, options).unwrap();
    assert_eq!((report.last_sequence, journal.term()), (20, 4));
    assert_eq!(
        HardStateFile::open(&scratch.path).unwrap().current(),
        state(4, 1, 20)
    );
    journal.close().unwrap();
}
