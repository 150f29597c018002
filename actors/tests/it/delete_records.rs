//! Deleting records on request (Kafka's DeleteRecords) and answering for leader
//! epochs (OffsetForLeaderEpoch): the log start offset moves to any committed offset,
//! even inside a segment; whole segments below it go; the new start is checkpointed
//! before anything else, so it survives a clean restart and a crash alike; offsets
//! past the high watermark are refused. Then the same through the partition actor
//! (retired files removed after `file.delete.delay.ms` on a manual clock, a compacted
//! topic refused, a panic restart keeping the start) and the request layer
//! (internal topics refused).

use std::time::{Duration, Instant};

use troupe_actors::clock::{Clock, ManualClock};
use troupe_actors::ids::LeaderEpoch;
use troupe_actors::partition::*;
use troupe_actors::requests::{delete_records, leader_epochs, RequestContext};
use troupe_actors::storage::{EpochEndOffset, Log, LogConfig, LogError};
use troupe_actors::topic_config::PartitionConfig;
use troupe_actors::BrokerError;

use crate::common::{read_all, record};
use crate::partition::{append, start, start_with, values_from};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 400,
        ..LogConfig::default()
    }
}

/// A log of `n` records (several segments), all committed.
fn committed_log(dir: &std::path::Path, n: i64) -> Log {
    let mut log = Log::open(dir, config()).unwrap();
    for i in 0..n {
        log.append_records(&[record(i, "k", &format!("v{i:03}{}", "x".repeat(60)))], 0)
            .unwrap();
    }
    let end = log.log_end_offset();
    log.set_high_watermark(end);
    log
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("log".as_ref()))
        .count()
}

#[test]
fn the_log_start_moves_inside_a_segment_and_whole_segments_below_it_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = committed_log(dir.path(), 30);
    let segments = log.segments();
    assert!(segments.len() > 4, "{segments:?}");
    // Inside the third segment: the first two go whole, the third stays.
    let third = &segments[2];
    let target = third.base_offset + 1;
    assert!(target < third.next_offset);
    let files = log.advance_log_start_offset(target).unwrap();
    assert_eq!(files.len(), 2 * 3, "two segments' .log, .index, .timeindex");
    assert!(files
        .iter()
        .all(|f| f.to_string_lossy().ends_with(".deleted")));
    assert_eq!(log.log_start_offset(), target);
    assert_eq!(log.segments()[0].base_offset, third.base_offset);
    assert_eq!(segment_files(dir.path()), segments.len() - 2);
    // Reads below the start are refused; from it, the records from it on.
    assert!(matches!(
        log.read(target - 1, 4096),
        Err(LogError::OffsetOutOfRange { log_start_offset, .. }) if log_start_offset == target
    ));
    let records = read_all(&log, 4096);
    assert_eq!(records.first().map(|r| r.offset), Some(target));
    assert_eq!(records.len() as i64, 30 - target);
    // The epoch cache starts at the new start.
    assert_eq!(log.leader_epochs().entries()[0].start_offset, target);
    // Backwards, or to where it is, changes nothing.
    assert!(log.advance_log_start_offset(target).unwrap().is_empty());
    assert!(log.advance_log_start_offset(1).unwrap().is_empty());
    assert_eq!(log.log_start_offset(), target);
}

#[test]
fn offsets_past_the_high_watermark_or_negative_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = committed_log(dir.path(), 10);
    log.set_high_watermark(6);
    for bad in [7, 10, 11, -1] {
        assert!(
            matches!(
                log.advance_log_start_offset(bad),
                Err(LogError::OffsetOutOfRange { requested, .. }) if requested == bad
            ),
            "{bad}"
        );
    }
    assert_eq!(log.log_start_offset(), 0);
    // Up to the high watermark itself is allowed: the log is then empty to readers.
    log.advance_log_start_offset(6).unwrap();
    assert_eq!(log.log_start_offset(), 6);
}

#[test]
fn the_new_start_survives_a_clean_restart_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = committed_log(dir.path(), 30);
    log.advance_log_start_offset(7).unwrap();
    log.close().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_start_offset(), 7);
    assert_eq!(read_all(&log, 4096)[0].offset, 7);
    let end = log.log_end_offset();
    log.set_high_watermark(end);
    log.advance_log_start_offset(13).unwrap();
    drop(log); // a crash: no clean-shutdown marker, recovery runs
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_start_offset(), 13);
    assert_eq!(read_all(&log, 4096)[0].offset, 13);
    assert_eq!(log.leader_epochs().entries()[0].start_offset, 13);
}

fn padded(i: usize) -> String {
    format!("value-{i:03}-{}", "x".repeat(80))
}

async fn log_start(addr: &actix::Addr<PartitionReplica>) -> i64 {
    addr.send(GetStatus).await.unwrap().log_start_offset
}

#[actix_rt::test]
async fn the_partition_deletes_up_to_an_offset_or_its_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = PartitionConfig::default();
    config.log.segment_bytes = 300;
    config.file_delete_delay_ms = 200;
    let time = ManualClock::starting_at(0);
    let addr = start_with(dir.path(), config, 5, time.clock());
    for i in 0..20 {
        append(&addr, &padded(i)).await.unwrap();
    }
    let segments_before = addr.send(GetStatus).await.unwrap().segments;
    let deleted = addr.send(DeleteRecords { offset: Some(9) }).await.unwrap();
    assert_eq!(deleted, Ok(9));
    assert_eq!(values_from(&addr, 9).await.first(), Some(&padded(9)));
    let below = addr
        .send(Fetch {
            offset: 8,
            max_bytes: 1024,
            max_wait_ms: 0,
        })
        .await
        .unwrap();
    assert!(
        matches!(
            below,
            Err(BrokerError::OffsetOutOfRange {
                log_start_offset: 9,
                ..
            })
        ),
        "{below:?}"
    );
    let earliest = addr.send(ListOffsets(OffsetSpec::Earliest)).await.unwrap();
    assert_eq!(earliest, Ok(Some((9, None))));
    let status = addr.send(GetStatus).await.unwrap();
    assert!(status.segments < segments_before, "{status:?}");
    // Files wait out file.delete.delay.ms, then go.
    let log_dir = dir.path().join("t-0");
    let set_aside = || {
        std::fs::read_dir(&log_dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".deleted")
            })
            .count()
    };
    assert!(set_aside() > 0);
    time.advance_ms(200);
    addr.send(GetStatus).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while set_aside() > 0 && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(set_aside(), 0);
    // Past the high watermark: refused, nothing moves.
    let past = addr.send(DeleteRecords { offset: Some(21) }).await.unwrap();
    assert!(
        matches!(
            past,
            Err(BrokerError::OffsetOutOfRange { requested: 21, .. })
        ),
        "{past:?}"
    );
    assert_eq!(log_start(&addr).await, 9);
    // None: up to the high watermark.
    let all = addr.send(DeleteRecords { offset: None }).await.unwrap();
    assert_eq!(all, Ok(20));
    assert!(values_from(&addr, 20).await.is_empty());
    assert_eq!(append(&addr, "after").await.unwrap().base_offset, 20);
}

#[actix_rt::test]
async fn the_start_survives_a_panic_restart_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 5);
    for i in 0..10 {
        append(&addr, &format!("v{i}")).await.unwrap();
    }
    assert_eq!(
        addr.send(DeleteRecords { offset: Some(4) }).await.unwrap(),
        Ok(4)
    );
    let injected = addr.send(InjectPanic).await.unwrap();
    assert!(matches!(
        injected,
        Err(BrokerError::PartitionRestarting { .. })
    ));
    assert_eq!(log_start(&addr).await, 4);
    assert_eq!(values_from(&addr, 4).await[0], "v4");
    addr.send(Stop(StopMode::Close)).await.unwrap().unwrap();
    let reopened = start(dir.path(), 5);
    assert_eq!(log_start(&reopened).await, 4);
    assert_eq!(
        values_from(&reopened, 4).await,
        (4..10).map(|i| format!("v{i}")).collect::<Vec<_>>()
    );
}

#[actix_rt::test]
async fn a_topic_that_is_only_compacted_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let config = PartitionConfig {
        cleanup_delete: false,
        cleanup_compact: true,
        ..PartitionConfig::default()
    };
    let addr = start_with(dir.path(), config, 5, Clock::system());
    append(&addr, "v").await.unwrap();
    let refused = addr.send(DeleteRecords { offset: None }).await.unwrap();
    assert!(
        matches!(&refused, Err(e @ BrokerError::PolicyViolation(_)) if e.kind().kafka_code() == 44),
        "{refused:?}"
    );
    assert_eq!(log_start(&addr).await, 0);
}

#[actix_rt::test]
async fn the_leader_answers_where_each_epoch_ends() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 5);
    let ask = |epoch: i32| {
        let addr = addr.clone();
        async move {
            addr.send(EndOffsetForEpoch(LeaderEpoch::new(epoch)))
                .await
                .unwrap()
                .unwrap()
        }
    };
    // Before any append, the leader's own epoch ends at the log end, as Kafka's does.
    assert_eq!(
        ask(0).await,
        Some(EpochEndOffset {
            epoch: 0,
            end_offset: 0
        })
    );
    for i in 0..5 {
        append(&addr, &format!("v{i}")).await.unwrap();
    }
    assert_eq!(
        ask(0).await,
        Some(EpochEndOffset {
            epoch: 0,
            end_offset: 5
        })
    );
    // An epoch after any the log knows, and Kafka's undefined epoch: nothing.
    assert_eq!(ask(3).await, None);
    assert_eq!(ask(-1).await, None);
}

#[actix_rt::test]
async fn the_request_layer_refuses_internal_topics_and_routes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let node = crate::groups::node_from(crate::groups::config(dir.path()), 2).await;
    let ctx = RequestContext::default();
    let engine = &node.engine;
    let internal =
        delete_records::delete_records(engine, &ctx, "__consumer_offsets", 0, None).await;
    assert!(
        matches!(internal, Err(BrokerError::TopicIsInternal(_))),
        "{internal:?}"
    );
    let unknown = delete_records::delete_records(engine, &ctx, "nope", 0, None).await;
    assert!(matches!(unknown, Err(BrokerError::UnknownTopic(_))));
    let partition = delete_records::delete_records(engine, &ctx, "t", 7, None).await;
    assert!(matches!(
        partition,
        Err(BrokerError::UnknownPartition { .. })
    ));
    assert_eq!(
        delete_records::delete_records(engine, &ctx, "t", 1, None).await,
        Ok(0)
    );
    let ends = leader_epochs::end_offset_for_epoch(engine, &ctx, "t", 1, LeaderEpoch::FIRST).await;
    assert_eq!(
        ends,
        Ok(Some(EpochEndOffset {
            epoch: 0,
            end_offset: 0
        }))
    );
    node.shutdown().await;
}
