//! What a follower asks of its log: copying a leader's batches at their offsets,
//! truncating to an offset, the leader-epoch cache, and the high-watermark
//! checkpoint — and a property test in which two logs trade leadership, the way two
//! replicas would, and always converge byte for byte.

use proptest::prelude::*;
use troupe_actors::storage::{
    EpochEntry, FetchData, Log, LogConfig, LogError, Record, RecordBatch, TimestampType,
};

use crate::common::{read_all, record, small_config};

/// The batches a read of the whole log returns, as a follower's fetch would get them.
fn batches_from(log: &Log, offset: i64) -> Vec<RecordBatch> {
    let data = log.read(offset, usize::MAX).unwrap();
    split(&data)
}

fn split(data: &FetchData) -> Vec<RecordBatch> {
    data.batches()
        .map(|b| RecordBatch::from_bytes(b.as_bytes().to_vec()).unwrap())
        .collect()
}

fn all_bytes(log: &Log) -> Vec<u8> {
    log.read(log.log_start_offset(), usize::MAX).unwrap().bytes
}

fn append(log: &mut Log, n: usize, epoch: i32) {
    let records: Vec<Record> = (0..n).map(|i| record(i as i64, "k", "v")).collect();
    log.append_records(&records, epoch).unwrap();
}

fn entry(epoch: i32, start_offset: i64) -> EpochEntry {
    EpochEntry {
        epoch,
        start_offset,
    }
}

#[test]
fn a_follower_copies_the_leaders_batches_byte_for_byte() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = Log::open(ld.path(), small_config()).unwrap();
    let mut follower = Log::open(fd.path(), small_config()).unwrap();
    for i in 0..40 {
        append(&mut leader, 1 + i % 3, if i < 25 { 0 } else { 2 });
    }
    let copied = follower
        .append_as_follower(&batches_from(&leader, 0))
        .unwrap()
        .unwrap();
    assert_eq!(
        (copied.base_offset, copied.last_offset + 1),
        (0, leader.log_end_offset())
    );
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    assert!(
        follower.segments().len() > 1,
        "the follower rolls as it copies"
    );
    assert_eq!(
        follower.leader_epochs().entries(),
        leader.leader_epochs().entries()
    );
    assert_eq!(
        leader.leader_epochs().entries(),
        &[entry(0, 0), entry(2, 49)]
    );
    // The cache and the log survive a crash.
    drop(follower);
    let follower = Log::open(fd.path(), small_config()).unwrap();
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    assert_eq!(
        follower.leader_epochs().entries(),
        leader.leader_epochs().entries()
    );
    assert_eq!(
        follower.end_offset_for_epoch(0).map(|e| e.end_offset),
        Some(49)
    );
    assert_eq!(
        follower
            .end_offset_for_epoch(1)
            .map(|e| (e.epoch, e.end_offset)),
        Some((0, 49))
    );
}

#[test]
fn overlaps_and_gaps_in_a_log_that_is_not_compacted_are_refused_before_anything_is_written() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = Log::open(ld.path(), LogConfig::default()).unwrap();
    let mut follower = Log::open(fd.path(), LogConfig::default()).unwrap();
    for _ in 0..4 {
        append(&mut leader, 2, 1);
    }
    let batches = batches_from(&leader, 0);
    follower.append_as_follower(&batches[..2]).unwrap();
    for (attempt, expected_base) in [(&batches[1..3], 2), (&batches[3..], 6), (&batches[..1], 0)] {
        match follower.append_as_follower(attempt) {
            Err(LogError::NonContiguousAppend {
                base_offset,
                expected_offset,
            }) => assert_eq!((base_offset, expected_offset), (expected_base, 4)),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // Good batches ahead of a bad one are not written either.
    let mixed = [batches[2].clone(), batches[2].clone()];
    assert!(follower.append_as_follower(&mixed).is_err());
    assert_eq!(follower.log_end_offset(), 4);
    assert_eq!(follower.append_as_follower(&[]).unwrap(), None);
    follower.append_as_follower(&batches[2..]).unwrap();
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
}

#[test]
fn a_gap_in_a_compacted_leaders_log_starts_a_new_segment_that_recovery_keeps() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = Log::open(ld.path(), LogConfig::default()).unwrap();
    for _ in 0..4 {
        append(&mut leader, 2, 1);
    }
    let batches = batches_from(&leader, 0);
    let compacted = LogConfig {
        allow_offset_gaps: true,
        ..LogConfig::default()
    };
    let mut follower = Log::open(fd.path(), compacted.clone()).unwrap();
    // Offsets 2..6 compacted away: batches at 0 and 6 only.
    let gappy = [batches[0].clone(), batches[3].clone()];
    follower.append_as_follower(&gappy).unwrap();
    assert_eq!(follower.log_end_offset(), 8);
    let segments: Vec<i64> = follower.segments().iter().map(|s| s.base_offset).collect();
    assert_eq!(segments, vec![0, 6], "the gap starts a segment");
    follower.flush().unwrap();
    drop(follower);
    // A crash (no clean close): recovery keeps both segments and the gap.
    let reopened = Log::open(fd.path(), compacted).unwrap();
    assert_eq!(reopened.log_end_offset(), 8);
    let copied: Vec<u8> = gappy.iter().flat_map(|b| b.as_bytes().to_vec()).collect();
    assert_eq!(all_bytes(&reopened), copied);
}

#[test]
fn truncation_drops_whole_batches_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..150 {
        let records: Vec<Record> = (0..3).map(|j| record(i * 10 + j, "k", "value")).collect();
        log.append_records(&records, 0).unwrap();
    }
    log.flush().unwrap();
    let before = read_all(&log, 1 << 20);
    let segments_before = log.segments().len();
    assert!(segments_before > 4);
    // Offset 100 is inside the batch 99..=101: that batch goes whole.
    assert!(log.truncate_to(100).unwrap());
    assert_eq!(log.log_end_offset(), 99);
    assert_eq!(log.recovery_point(), 99);
    assert!(log.segments().len() < segments_before);
    assert!(log.segments().last().unwrap().is_active);
    let after = read_all(&log, 300);
    assert_eq!(after, before[..99]);
    // The indexes of the cut segment answer for what is left, and nothing more.
    let last = &after[98];
    assert_eq!(
        log.offset_for_timestamp(last.record.timestamp_ms)
            .unwrap()
            .map(|f| f.offset),
        Some(98)
    );
    assert_eq!(
        log.offset_for_timestamp(last.record.timestamp_ms + 1)
            .unwrap(),
        None
    );
    // Appends go on from the new end, and the log reopens as it is, clean or not.
    append(&mut log, 2, 1);
    assert_eq!(log.log_end_offset(), 101);
    assert!(
        !log.truncate_to(101).unwrap(),
        "at the log end there is nothing to drop"
    );
    let expected = read_all(&log, 1 << 20);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log, 1 << 20), expected);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log, 1 << 20), expected);
    assert_eq!(log.leader_epochs().entries(), &[entry(0, 0), entry(1, 99)]);
}

#[test]
fn truncation_to_the_log_start_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..100 {
        append(&mut log, 2, i / 20);
    }
    log.flush().unwrap();
    let mut taken = 0;
    log.delete_oldest_segments(|_| {
        taken += 1;
        taken <= 2
    })
    .unwrap();
    let start = log.log_start_offset();
    assert!(start > 0);
    log.set_high_watermark(70);
    assert!(log.truncate_to(start + 1).unwrap());
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (start, start)
    );
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.high_watermark(), start);
    assert!(log.leader_epochs().entries().is_empty());
    append(&mut log, 1, 3);
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(
        (log.log_start_offset(), log.log_end_offset()),
        (start, start + 1)
    );
    assert_eq!(log.leader_epochs().entries(), &[entry(3, start)]);
}

#[test]
fn the_high_watermark_reopens_where_it_was_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        recovery_point_checkpoint_interval_ms: 0,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    assert_eq!(
        log.high_watermark(),
        0,
        "nothing checkpointed: the log start"
    );
    append(&mut log, 10, 0);
    assert_eq!(log.set_high_watermark(25), 10, "clamped to the log end");
    log.set_high_watermark(6);
    log.flush().unwrap();
    // A crash keeps what the periodic checkpoint wrote, not what was set after it.
    log.set_high_watermark(8);
    drop(log);
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    assert_eq!((log.high_watermark(), log.log_end_offset()), (6, 10));
    log.set_high_watermark(9);
    log.close().unwrap();
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    assert_eq!(log.high_watermark(), 9, "close checkpoints it");
    // A checkpoint past a log that lost its tail is clamped to what is there.
    log.set_high_watermark(10);
    log.close().unwrap();
    let active = dir.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&active).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    std::fs::remove_file(dir.path().join(".clean_shutdown")).unwrap();
    std::fs::write(
        dir.path().join("log.checkpoint"),
        "0\n2\nlog_start_offset 0\nrecovery_point 0\n",
    )
    .unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 0, "the one batch was torn");
    assert_eq!(log.high_watermark(), 0);
}

#[derive(Debug, Clone)]
enum Step {
    /// The leader appends `n` batches.
    Produce(usize),
    /// The follower copies up to `n` batches.
    Replicate(usize),
    /// The follower becomes the leader, with a new epoch, before it has caught up.
    SwapLeaders,
    /// One of the two crashes (unflushed data and all) and reopens.
    Crash { leader: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1usize..4).prop_map(Step::Produce),
        3 => (0usize..5).prop_map(Step::Replicate),
        2 => Just(Step::SwapLeaders),
        1 => any::<bool>().prop_map(|leader| Step::Crash { leader }),
    ]
}

/// The follower finds where its log and the leader's part (Kafka's KIP-101 and
/// KIP-279: ask the leader where the follower's latest epoch ends there, and truncate
/// to the smaller of that and where that epoch ends here), then copies the rest.
fn reconcile(leader: &Log, follower: &mut Log, max_batches: usize) {
    while let Some(latest) = follower.leader_epochs().latest_epoch() {
        let Some(theirs) = leader.end_offset_for_epoch(latest) else {
            follower.truncate_to(follower.log_start_offset()).unwrap();
            break;
        };
        let ours = follower
            .end_offset_for_epoch(theirs.epoch)
            .map_or(follower.log_start_offset(), |e| e.end_offset);
        let target = theirs.end_offset.min(ours);
        if !follower.truncate_to(target).unwrap() {
            break;
        }
    }
    let from = follower.log_end_offset();
    if from >= leader.log_end_offset() {
        return;
    }
    let batches: Vec<RecordBatch> = batches_from(leader, from)
        .into_iter()
        .take(max_batches)
        .collect();
    follower.append_as_follower(&batches).unwrap();
}

fn trade_leadership(steps: Vec<Step>) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let config = small_config();
    let mut logs = [
        Some(Log::open(dirs[0].path(), config.clone()).unwrap()),
        Some(Log::open(dirs[1].path(), config.clone()).unwrap()),
    ];
    let (mut leader, mut epoch) = (0usize, 0i32);
    let mut produced = 0;
    for step in steps {
        match step {
            Step::Produce(n) => {
                for _ in 0..n {
                    let value = format!("v{produced}");
                    produced += 1;
                    let log = logs[leader].as_mut().unwrap();
                    log.append_records(&[record(produced, "k", &value)], epoch)
                        .unwrap();
                    log.flush().unwrap();
                }
            }
            Step::Replicate(n) => {
                let [a, b] = &mut logs;
                let (l, f) = if leader == 0 { (a, b) } else { (b, a) };
                reconcile(l.as_ref().unwrap(), f.as_mut().unwrap(), n);
            }
            Step::SwapLeaders => {
                leader = 1 - leader;
                epoch += 1;
            }
            Step::Crash { leader: which } => {
                let i = if which { leader } else { 1 - leader };
                drop(logs[i].take());
                logs[i] = Some(Log::open(dirs[i].path(), config.clone()).unwrap());
            }
        }
    }
    // However the history went, a follower that catches up holds the leader's log.
    let [a, b] = &mut logs;
    let (l, f) = if leader == 0 { (a, b) } else { (b, a) };
    let (l, f) = (l.as_ref().unwrap(), f.as_mut().unwrap());
    reconcile(l, f, usize::MAX);
    assert_eq!(all_bytes(f), all_bytes(l));
    assert_eq!(f.log_end_offset(), l.log_end_offset());
    assert_eq!(f.leader_epochs().entries(), l.leader_epochs().entries());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn replicas_trading_leadership_converge(steps in proptest::collection::vec(step(), 1..40)) {
        trade_leadership(steps);
    }
}

#[test]
fn a_copy_keeps_the_leaders_timestamps_and_append_times() {
    let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut leader = Log::open(ld.path(), LogConfig::default()).unwrap();
    let mut follower = Log::open(fd.path(), LogConfig::default()).unwrap();
    let mut batch = RecordBatch::encode(
        &[record(7, "a", "b"), record(9, "c", "d")],
        TimestampType::CreateTime,
    )
    .unwrap();
    leader.append(&mut batch, 4).unwrap();
    let copied = follower
        .append_as_follower(&batches_from(&leader, 0))
        .unwrap()
        .unwrap();
    assert_eq!((copied.max_timestamp_ms, copied.record_count), (9, 2));
    assert_eq!(read_all(&follower, 100), read_all(&leader, 100));
}

#[test]
fn a_follower_behind_its_leaders_log_start_starts_again_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut follower = Log::open(dir.path(), LogConfig::default()).unwrap();
    for _ in 0..3 {
        append(&mut follower, 2, 1);
    }
    // The leader's log now starts at 100: everything here is gone from it.
    follower.truncate_fully_and_start_at(100).unwrap();
    assert_eq!(
        (
            follower.log_start_offset(),
            follower.log_end_offset(),
            follower.high_watermark()
        ),
        (100, 100, 100)
    );
    assert_eq!(follower.leader_epochs().latest_epoch(), None);
    drop(follower);
    let reopened = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(
        (reopened.log_start_offset(), reopened.log_end_offset()),
        (100, 100)
    );
    assert!(reopened.read(100, 1024).unwrap().bytes.is_empty());
}
