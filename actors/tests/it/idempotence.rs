//! The idempotent producer, end to end in the engine: Kafka's sequence rules on a real
//! log (in order, a retry of each of the last five batches answered with its first
//! offsets and nothing written, older retries, gaps, fenced epochs, the wrap at
//! `i32::MAX`); the producer state surviving a clean close, a crash and a partition
//! restart through its snapshots, which appear on each roll, go with retention and
//! truncation, and are passed over when damaged; InitProducerId's ids unique across a
//! node restart; and the request layer's `append_batch` beside REST's produce.

use std::path::Path;
use std::sync::Arc;

use futures::future::join_all;
use troupe_actors::broker::{CreateTopic, NewTopic};
use troupe_actors::clock::ManualClock;
use troupe_actors::error_kind::ErrorKind;
use troupe_actors::node::Node;
use troupe_actors::partition::{
    Acks, Append, AppendResult, GetStatus, InjectPanic, PartitionReplica, Stop, StopMode,
};
use troupe_actors::requests::produce::{append_batch, produce, target, ProduceRecord};
use troupe_actors::requests::producer_ids::init_producer_id;
use troupe_actors::requests::RequestContext;
use troupe_actors::storage::producer_snapshot::{list_snapshots, snapshot_file};
use troupe_actors::storage::{
    AppendInfo, Log, LogConfig, LogError, ProducerError, Record, RecordBatch, TimestampType,
};
use troupe_actors::BrokerError;

use crate::common::{init_logging, read_all, record, small_config};
use crate::groups::config;

const PID: i64 = 4242;

/// A batch of `records` records from producer `pid` in `epoch`, its first record at
/// sequence `first`; the values say which batch it is (`tag`).
fn batch_of(pid: i64, epoch: i16, first: i32, records: usize, tag: &str) -> RecordBatch {
    let records: Vec<Record> = (0..records)
        .map(|i| record(1_000 + i as i64, "k", &format!("{tag}-{i}")))
        .collect();
    let mut batch = RecordBatch::encode(&records, TimestampType::CreateTime).unwrap();
    batch.set_producer(pid, epoch, first);
    batch
}

/// Batch `n` of producer [`PID`] in epoch 0: two records, sequences `2n` and `2n+1`.
fn nth(n: i32) -> RecordBatch {
    batch_of(PID, 0, 2 * n, 2, &format!("b{n}"))
}

fn append(log: &mut Log, mut batch: RecordBatch) -> Result<AppendInfo, LogError> {
    log.append(&mut batch, 0)
}

/// Appends batches `from..to` of [`PID`], each written (no duplicate).
fn append_range(log: &mut Log, from: i32, to: i32) -> Vec<AppendInfo> {
    (from..to)
        .map(|n| {
            let info = append(log, nth(n)).unwrap();
            assert!(!info.duplicate, "batch {n} is new");
            info
        })
        .collect()
}

/// A retry of each of `firsts` (batches `from..`) is a duplicate with their offsets,
/// and writes nothing.
fn assert_retries_are_duplicates(log: &mut Log, from: i32, firsts: &[AppendInfo]) {
    let end = log.log_end_offset();
    for (n, first) in (from..).zip(firsts) {
        let retry = append(log, nth(n)).unwrap();
        assert!(retry.duplicate, "batch {n} is a retry");
        assert_eq!(
            (retry.base_offset, retry.last_offset, retry.max_timestamp_ms),
            (first.base_offset, first.last_offset, first.max_timestamp_ms),
            "batch {n}"
        );
    }
    assert_eq!(log.log_end_offset(), end, "a retry writes nothing");
}

fn out_of_order(result: Result<AppendInfo, LogError>) -> i32 {
    match result {
        Err(LogError::Producer(ProducerError::OutOfOrderSequence {
            expected_sequence, ..
        })) => expected_sequence,
        other => panic!("expected out of order, got {other:?}"),
    }
}

/// Small segments, so that a dozen batches roll several times.
fn rolling_config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        ..small_config()
    }
}

#[test]
fn a_log_takes_each_batch_once_in_sequence_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let firsts = append_range(&mut log, 0, 7);
    assert_eq!(firsts[6].base_offset, 12);
    assert_retries_are_duplicates(&mut log, 2, &firsts[2..]);
    // Older than the last five: no longer told apart from a reordering.
    assert_eq!(out_of_order(append(&mut log, nth(1))), 14);
    // A gap, and a batch overlapping the last one without matching it.
    assert_eq!(out_of_order(append(&mut log, nth(8))), 14);
    assert_eq!(
        out_of_order(append(&mut log, batch_of(PID, 0, 13, 2, "overlap"))),
        14
    );
    // Other producers and the broker's own (producer id -1) are not affected.
    assert!(
        !append(&mut log, batch_of(PID + 1, 0, 0, 1, "other"))
            .unwrap()
            .duplicate
    );
    let rest = log.append_records(&[record(1, "k", "rest")], 0).unwrap();
    assert!(!rest.duplicate);
    let rest_again = log.append_records(&[record(1, "k", "rest")], 0).unwrap();
    assert_eq!(
        rest_again.base_offset,
        rest.base_offset + 1,
        "no sequence, no dedup"
    );
    // An older epoch is fenced; a newer one must start at sequence 0.
    assert!(!append(&mut log, nth(7)).unwrap().duplicate);
    assert!(matches!(
        append(&mut log, batch_of(PID, -1, 16, 1, "no epoch")),
        Err(LogError::Producer(ProducerError::InvalidSequence { .. }))
    ));
    assert_eq!(
        out_of_order(append(&mut log, batch_of(PID, 1, 16, 1, "e1"))),
        0
    );
    assert!(
        !append(&mut log, batch_of(PID, 1, 0, 1, "e1"))
            .unwrap()
            .duplicate
    );
    assert!(matches!(
        append(&mut log, batch_of(PID, 0, 16, 1, "zombie")),
        Err(LogError::Producer(ProducerError::InvalidEpoch {
            producer_epoch: 0,
            current_epoch: 1,
            ..
        }))
    ));
    // Each record is in the log once: 8 batches of 2, then 1 + 2 + 1.
    let values: Vec<String> = read_all(&log, 1 << 20)
        .into_iter()
        .map(|r| String::from_utf8(r.record.value.unwrap()).unwrap())
        .collect();
    assert_eq!(values.len(), 20);
    assert_eq!(values.iter().filter(|v| v.starts_with("b2-")).count(), 2);
}

#[test]
fn sequences_wrap_at_i32_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    // Sequences i32::MAX - 1, i32::MAX and 0.
    let last = append(&mut log, batch_of(PID, 3, i32::MAX - 1, 3, "wraps")).unwrap();
    assert_eq!(
        out_of_order(append(&mut log, batch_of(PID, 3, 2, 1, "gap"))),
        1
    );
    assert!(
        append(&mut log, batch_of(PID, 3, i32::MAX - 1, 3, "wraps"))
            .unwrap()
            .duplicate
    );
    let next = append(&mut log, batch_of(PID, 3, 1, 1, "after")).unwrap();
    assert_eq!(next.base_offset, last.last_offset + 1);
}

#[test]
fn a_retry_under_log_append_time_gets_the_first_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(1_700_000_000_000);
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        ..small_config()
    };
    let mut log = Log::open_with_clock(dir.path(), config, Arc::new(time.clock())).unwrap();
    let first = append(&mut log, nth(0)).unwrap();
    assert_eq!(first.log_append_time_ms, Some(1_700_000_000_000));
    time.advance_ms(5_000);
    let retry = append(&mut log, nth(0)).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.log_append_time_ms, first.log_append_time_ms);
    assert_eq!(retry.max_timestamp_ms, first.max_timestamp_ms);
}

#[test]
fn the_last_five_batches_are_known_after_a_clean_close_and_after_a_crash() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    let mut firsts = append_range(&mut log, 0, 12);
    assert!(log.segments().len() > 2, "the batches span segments");
    log.close().unwrap();

    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    assert_retries_are_duplicates(&mut log, 7, &firsts[7..]);
    assert_eq!(out_of_order(append(&mut log, nth(6))), 24);
    firsts.extend(append_range(&mut log, 12, 15));
    log.flush().unwrap();
    drop(log); // a crash: no snapshot at the end, no clean-shutdown marker

    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    assert_retries_are_duplicates(&mut log, 10, &firsts[10..]);
    assert_eq!(out_of_order(append(&mut log, nth(9))), 30);
    assert_eq!(
        append(&mut log, nth(15)).unwrap().base_offset,
        firsts[14].last_offset + 1
    );
}

/// Snapshot offsets in `dir`.
fn snapshots(dir: &Path) -> Vec<i64> {
    list_snapshots(dir).unwrap()
}

#[test]
fn a_snapshot_is_taken_at_each_roll_and_at_close_and_strays_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    assert!(snapshots(dir.path()).is_empty());
    append_range(&mut log, 0, 12);
    let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
    assert_eq!(
        snapshots(dir.path()),
        bases[1..],
        "one per roll, at the new base"
    );
    let end = log.log_end_offset();
    log.close().unwrap();
    let mut expected = bases[1..].to_vec();
    expected.push(end);
    assert_eq!(snapshots(dir.path()), expected, "and one at close");

    // Once a newer one exists, a snapshot that is no segment's base (a close's,
    // mid-segment) is a stray, removed at the next open.
    // (The records' 1970 timestamps must not make the reopened segment old enough
    // to roll.)
    let config = LogConfig {
        segment_ms: i64::MAX,
        ..small_config()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    append_range(&mut log, 0, 3);
    log.close().unwrap();
    assert_eq!(snapshots(dir.path()), vec![6]);
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    append_range(&mut log, 3, 6);
    log.roll().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
    assert_eq!(bases, vec![0, 12]);
    assert_eq!(snapshots(dir.path()), vec![12]);
}

#[test]
fn a_damaged_snapshot_is_passed_over_and_the_state_rebuilt_from_the_log() {
    init_logging();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    let firsts = append_range(&mut log, 0, 12);
    let end = log.log_end_offset();
    log.close().unwrap();
    let newest = snapshot_file(dir.path(), end);
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();

    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    assert!(!newest.exists(), "the damaged snapshot is deleted");
    assert_retries_are_duplicates(&mut log, 7, &firsts[7..]);
    log.close().unwrap();

    // Every snapshot damaged: the last two segments are replayed, which hold the
    // last five batches here.
    for offset in snapshots(dir.path()) {
        std::fs::write(snapshot_file(dir.path(), offset), b"garbage").unwrap();
    }
    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    assert!(snapshots(dir.path()).is_empty());
    let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset).collect();
    let replayed_from = bases[bases.len() - 2];
    let known: Vec<i32> = (0..12)
        .filter(|n| firsts[*n as usize].base_offset >= replayed_from)
        .collect();
    assert!(known.len() >= 2, "{known:?}");
    let from = known[known.len().saturating_sub(5)];
    assert_retries_are_duplicates(&mut log, from, &firsts[from as usize..]);
}

#[test]
fn retention_removes_old_snapshots_but_not_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    let firsts = append_range(&mut log, 0, 12);
    // Another producer whose only batch goes with the deleted segments.
    let early = log
        .append(&mut batch_of(PID + 1, 0, 0, 1, "early"), 0)
        .unwrap();
    append_range(&mut log, 12, 13);
    log.roll().unwrap();
    let deleted = log.delete_oldest_segments(|_| true).unwrap();
    assert!(!deleted.is_empty());
    let start = log.log_start_offset();
    assert_eq!(
        snapshots(dir.path()),
        vec![start],
        "only the new first segment's"
    );
    drop(log);

    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    assert_retries_are_duplicates(&mut log, 8, &firsts[8..]);
    let again = log
        .append(&mut batch_of(PID + 1, 0, 0, 1, "early"), 0)
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.base_offset, early.base_offset);
}

#[test]
fn truncation_forgets_the_batches_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    let firsts = append_range(&mut log, 0, 12);
    let cut = firsts[8].base_offset;
    assert!(log.truncate_to(cut).unwrap());
    assert!(snapshots(dir.path()).iter().all(|o| *o <= cut));
    // Batches 0..8 remain: 3..8 are duplicates, 8 is the next batch again.
    assert_retries_are_duplicates(&mut log, 3, &firsts[3..8]);
    let rewritten = append(&mut log, nth(8)).unwrap();
    assert!(!rewritten.duplicate);
    assert_eq!(rewritten.base_offset, cut);
    drop(log);
    let mut log = Log::open(dir.path(), rolling_config()).unwrap();
    assert!(append(&mut log, nth(8)).unwrap().duplicate);
}

#[test]
fn expired_producers_are_forgotten_and_may_start_again_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    append_range(&mut log, 0, 3); // record timestamps 1000 and 1001
    assert_eq!(log.remove_expired_producers(2_000, 1_000), 0);
    assert_eq!(log.remove_expired_producers(2_001, 1_000), 1);
    assert!(log.producer_state().is_empty());
    // As after retention: no state, so any sequence is taken, and from there on
    // the rules hold again.
    assert!(!append(&mut log, nth(9)).unwrap().duplicate);
    assert_eq!(out_of_order(append(&mut log, nth(2))), 20);
    assert!(append(&mut log, nth(9)).unwrap().duplicate);
}

// The partition actor.

async fn send(
    addr: &actix::Addr<PartitionReplica>,
    batch: RecordBatch,
) -> Result<AppendResult, BrokerError> {
    addr.send(Append {
        batch,
        acks: Acks::All,
    })
    .await
    .unwrap()
}

#[actix_rt::test]
async fn a_partition_recognises_a_retry_after_a_crash_and_after_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addr = crate::partition::start(dir.path(), 5);
    let mut firsts = Vec::new();
    for n in 0..6 {
        let result = send(&addr, nth(n)).await.unwrap();
        assert!(!result.duplicate);
        firsts.push(result);
    }
    let retry = send(&addr, nth(5)).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, firsts[5].base_offset);

    // A crash inside the partition: the log is dropped and reopened from disk.
    let injected = addr.send(InjectPanic).await.unwrap();
    assert!(matches!(
        injected,
        Err(BrokerError::PartitionRestarting { .. })
    ));
    assert_eq!(addr.send(GetStatus).await.unwrap().restarts, 1);
    for n in 1..6 {
        let retry = send(&addr, nth(n)).await.unwrap();
        assert!(retry.duplicate, "batch {n} after the crash");
        assert_eq!(
            (retry.base_offset, retry.last_offset),
            (
                firsts[n as usize].base_offset,
                firsts[n as usize].last_offset
            )
        );
    }
    let refused = send(&addr, nth(0)).await.unwrap_err();
    assert!(
        matches!(
            refused,
            BrokerError::OutOfOrderSequence {
                producer_id: PID,
                first_sequence: 0,
                expected_sequence: 12,
                ..
            }
        ),
        "{refused:?}"
    );
    assert_eq!(refused.kind().kafka_code(), 45);
    assert!(!refused.is_retriable());

    // A clean stop and a new actor on the same directory.
    addr.send(Stop(StopMode::Close)).await.unwrap().unwrap();
    let addr = crate::partition::start(dir.path(), 5);
    let retry = send(&addr, nth(5)).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.base_offset, firsts[5].base_offset);
    let next = send(&addr, batch_of(PID, 0, 12, 1, "next")).await.unwrap();
    assert!(!next.duplicate);
    let newer = send(&addr, batch_of(PID, 1, 0, 1, "e1")).await.unwrap();
    let zombie = send(&addr, batch_of(PID, 0, 13, 1, "zombie"))
        .await
        .unwrap_err();
    assert_eq!(zombie.kind(), ErrorKind::InvalidProducerEpoch);
    assert_eq!(zombie.kind().kafka_code(), 47);
    assert_eq!(newer.base_offset, next.base_offset + 1);
}

#[actix_rt::test]
async fn a_retry_sent_while_its_original_waits_for_its_fsync_is_answered_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let addr = crate::partition::start(dir.path(), 5);
    for round in 0..20 {
        // Sent together: the second arrives while the first may still be parked.
        let answers = join_all([send(&addr, nth(round)), send(&addr, nth(round))]).await;
        let [first, second] = [&answers[0], &answers[1]].map(|a| a.clone().unwrap());
        assert!(!first.duplicate && second.duplicate);
        assert_eq!(first.base_offset, second.base_offset);
        let status = addr.send(GetStatus).await.unwrap();
        assert!(status.high_watermark > second.last_offset);
    }
    assert_eq!(addr.send(GetStatus).await.unwrap().log_end_offset, 40);
}

// Through the request layer, on a node.

async fn node_with_topic(dir: &Path) -> Node {
    let node = Node::start(config(dir)).await.unwrap();
    node.engine
        .broker
        .send(CreateTopic(NewTopic {
            name: "t".into(),
            partitions: Some(2),
            ..Default::default()
        }))
        .await
        .unwrap()
        .unwrap();
    node
}

#[actix_rt::test]
async fn producer_ids_are_unique_across_a_node_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = RequestContext::default();
    let node = Node::start(config(dir.path())).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (id, epoch) = init_producer_id(&node.engine, &ctx, None, None)
            .await
            .unwrap();
        assert_eq!(epoch, 0);
        ids.push(id);
    }
    // A KIP-360 client asking again with its id and epoch gets a new id.
    let (again, epoch) = init_producer_id(&node.engine, &ctx, None, Some((ids[2], 0)))
        .await
        .unwrap();
    assert_eq!(epoch, 0);
    ids.push(again);
    node.shutdown().await;
    drop(node);

    let node = Node::start(config(dir.path())).await.unwrap();
    let (after, _) = init_producer_id(&node.engine, &ctx, None, None)
        .await
        .unwrap();
    ids.push(after);
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    assert!(ids.iter().all(|id| *id >= 0));
    assert!(after > ids[3], "{ids:?}");

    let refused = init_producer_id(&node.engine, &ctx, Some("txn-1"), None)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::TransactionsUnsupported);
    assert_eq!(
        refused.kind().kafka_name(),
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"
    );
    let empty = init_producer_id(&node.engine, &ctx, Some(""), None)
        .await
        .unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidRequest);
    node.shutdown().await;
}

#[actix_rt::test]
async fn a_kafka_producers_batches_are_deduplicated_beside_rest_produce() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = RequestContext::default();
    let node = node_with_topic(dir.path()).await;
    let engine = &node.engine;
    let (pid, epoch) = init_producer_id(engine, &ctx, None, None).await.unwrap();
    let ctx_ref = &ctx;
    let to = |partition, batch: RecordBatch| async move {
        append_batch(
            engine,
            ctx_ref,
            "t",
            partition,
            batch.into_bytes(),
            Acks::All,
        )?
        .await
    };
    let first = to(1, batch_of(pid, epoch, 0, 3, "a")).await.unwrap();
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (0, 2, false)
    );
    // REST produce to the same partition: no producer id, never deduplicated.
    let rest = || ProduceRecord {
        partition: Some(1),
        key: None,
        value: Some(b"rest".to_vec()),
        headers: vec![],
        timestamp_ms: Some(7),
    };
    let target = target(engine, &ctx, "t").unwrap();
    let produced = produce(&target, vec![rest(), rest()], Acks::All).await;
    let offsets: Vec<i64> = produced.into_iter().map(|p| p.unwrap().offset).collect();
    assert_eq!(offsets, vec![3, 4]);
    let retry = to(1, batch_of(pid, epoch, 0, 3, "a")).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (0, 2));
    let next = to(1, batch_of(pid, epoch, 3, 1, "b")).await.unwrap();
    assert_eq!((next.base_offset, next.duplicate), (5, false));
    // Sequences are per partition.
    let other = to(0, batch_of(pid, epoch, 0, 1, "c")).await.unwrap();
    assert_eq!((other.base_offset, other.duplicate), (0, false));
    let gap = to(0, batch_of(pid, epoch, 5, 1, "d")).await.unwrap_err();
    assert_eq!(gap.kind(), ErrorKind::OutOfOrderSequence);
    let missing = to(2, batch_of(pid, epoch, 0, 1, "e")).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::UnknownPartition);
    node.shutdown().await;
}
