//! Flush policy, group commit, checkpoints and the clean-shutdown marker.

use std::sync::Arc;

use troupe_actors::clock::ManualClock;
use troupe_actors::storage::{FlushPolicy, Log, LogConfig, LogError};

use crate::common::{read_all, record};

#[test]
fn default_policy_flushes_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(!log.flush_due());
    for i in 1..=3 {
        log.append_records(&[record(1, "k", "v")], 0).unwrap();
        assert!(log.flush_due());
        assert!(log.flush_if_due().unwrap());
        assert_eq!(log.recovery_point(), i);
        assert!(!log.flush_due());
    }
    assert_eq!(log.stats().flushes, 3);
}

#[test]
fn group_commit_shares_one_fsync_among_waiting_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for _ in 0..100 {
        log.append_records(&[record(1, "k", "v")], 0).unwrap();
    }
    let ticket = log.begin_flush().unwrap().expect("appends are waiting");
    assert_eq!(ticket.up_to_offset(), 100);
    assert!(
        log.begin_flush().unwrap().is_none(),
        "one ticket covers them all"
    );
    // The fsync runs on another thread while the owner keeps appending.
    let syncing = std::thread::spawn(move || ticket.sync());
    for _ in 0..50 {
        log.append_records(&[record(1, "k", "v")], 0).unwrap();
    }
    let done = syncing.join().unwrap().unwrap();
    log.complete_flush(done).unwrap();
    assert_eq!(
        log.recovery_point(),
        100,
        "only what the ticket covered is durable"
    );
    assert!(log.flush_due());
    let ticket = log.begin_flush().unwrap().unwrap();
    assert_eq!(ticket.up_to_offset(), 150);
    log.complete_flush(ticket.sync().unwrap()).unwrap();
    assert_eq!(log.recovery_point(), 150);
    assert_eq!(log.stats().flushes, 2, "150 appends, 2 fsync rounds");
}

#[test]
fn flush_messages_and_flush_ms_policies() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(0);
    let config = LogConfig {
        flush: FlushPolicy {
            flush_messages: Some(10),
            flush_ms: Some(500),
        },
        ..LogConfig::default()
    };
    let mut log = Log::open_with_clock(dir.path(), config, Arc::new(clock.clock())).unwrap();
    log.append_records(&vec![record(1, "k", "v"); 9], 0)
        .unwrap();
    assert!(!log.flush_due(), "9 < flush.messages and no time passed");
    clock.advance_ms(499);
    assert!(!log.flush_due());
    clock.advance_ms(1);
    assert!(log.flush_due(), "flush.ms reached");
    log.flush().unwrap();
    log.append_records(&vec![record(1, "k", "v"); 10], 0)
        .unwrap();
    assert!(log.flush_due(), "flush.messages reached");

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::NEVER,
        ..LogConfig::default()
    };
    let mut log = Log::open_with_clock(dir.path(), config, Arc::new(clock.clock())).unwrap();
    log.append_records(&vec![record(1, "k", "v"); 1000], 0)
        .unwrap();
    clock.advance_ms(1 << 40);
    assert!(!log.flush_due());
}

#[test]
fn clean_shutdown_skips_the_scan_and_unclean_stop_scans() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    for i in 0..20 {
        log.append_records(&[record(i, "k", &"v".repeat(300))], 0)
            .unwrap();
    }
    log.close().unwrap();
    let marker = dir.path().join(".clean_shutdown");
    assert!(marker.exists());
    let checkpoint = std::fs::read_to_string(dir.path().join("log.checkpoint")).unwrap();
    assert_eq!(
        checkpoint,
        "0\n3\nlog_start_offset 0\nrecovery_point 20\ncleaner_offset 0\n"
    );

    // Damage the first batch. After a clean shutdown open trusts the segment and does not
    // read it; the damage shows when the batch is read.
    let path = dir.path().join("00000000000000000000.log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(!marker.exists(), "open consumes the marker");
    assert_eq!(log.log_end_offset(), 20, "no scan, no truncation");
    assert!(
        log.read(0, 1).is_err(),
        "the damaged batch is refused on read"
    );
    drop(log);

    // Without the marker the open scans from the recovery point's segment. The
    // damaged batch is below the recovery point (durable, acknowledged, and so are the
    // batches after it): it is skipped and reported, not truncated.
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(log.corrupt_batches(), 1, "the scan found it");
    assert!(matches!(
        log.read(0, 1),
        Err(LogError::CorruptBatch {
            first_offset: 0,
            last_offset: 0,
            ..
        })
    ));
    let after = log.read(1, 1 << 20).unwrap().records_from(1).unwrap();
    assert_eq!(after.len(), 19);
    let checkpoint = std::fs::read_to_string(dir.path().join("log.checkpoint")).unwrap();
    assert!(checkpoint.contains("recovery_point 20\n"));
}

#[test]
fn corrupt_checkpoint_falls_back_to_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.append_records(&[record(1, "k", "v")], 0).unwrap();
    log.close().unwrap();
    std::fs::write(dir.path().join("log.checkpoint"), "garbage").unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(read_all(&log, 100).len(), 1);
    assert_eq!(log.recovery_point(), 1);
}
