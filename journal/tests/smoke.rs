use journal::*;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("journal-smoke-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn append_roll_reopen_read() {
    let dir = scratch("basic");
    let options = JournalOptions {
        segment_bytes: 4096,
        record_bytes_max: 512,
        prefault: false,
        ..Default::default()
    };
    {
        let (mut journal, report) = Journal::open(&dir, options).unwrap();
        assert_eq!(report.last_sequence, 0);
        for i in 1..=500u64 {
            let body = vec![i as u8; (i % 200) as usize];
            assert_eq!(
                journal.append(1 + (i % 3) as u16, i * 10, &body).unwrap(),
                i
            );
        }
        journal.close().unwrap();
    }
    let (mut journal, report) = Journal::open(&dir, options).unwrap();
    assert_eq!(report.last_sequence, 500, "{report:?}");
    assert!(report.torn_tail.is_none());
    assert!(report.segments > 10);
    assert_eq!(journal.append(1, 0, b"x").unwrap(), 501);
    let mut reader = journal.reader(1);
    let mut n = 0;
    while let Some(r) = reader.next().unwrap() {
        n += 1;
        assert_eq!(r.sequence, n);
        if n <= 500 {
            assert_eq!(r.body.len(), (n % 200) as usize);
            assert_eq!(r.timestamp_ns, n * 10);
        }
    }
    assert_eq!(n, 501);
    let mut reader = journal.reader(250);
    assert_eq!(reader.next().unwrap().unwrap().sequence, 250);
    drop(journal);
    let (ro, report) = Journal::open_read_only(&dir).unwrap();
    assert_eq!(report.last_sequence, 501);
    drop(ro);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fsync_policy_makes_records_durable() {
    let dir = scratch("fsync");
    let options = JournalOptions {
        segment_bytes: 1 << 16,
        durability: Durability::Fsync {
            flush_delay_us_max: 200,
        },
        record_bytes_max: 1024,
        prefault: false,
        ..JournalOptions::default()
    };
    let (mut journal, _) = Journal::open(&dir, options).unwrap();
    let durable = journal.durable();
    for i in 1..=3000u64 {
        journal.append(1, i, &[7u8; 48]).unwrap();
    }
    assert!(durable.wait_for(3000, std::time::Duration::from_secs(10)));
    journal.close().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
