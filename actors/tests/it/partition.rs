//! The partition actor: appends and reads through messages, long-poll wake-ups, group
//! commit across concurrent producers, and supervision — a panic inside the actor
//! fails in-flight requests with an error and the actor comes back from disk.
//! Timeouts (a read's `max_wait_ms`, `file.delete.delay.ms`) run on a manual clock
//! the test advances.

use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::join_all;
use troupe_actors::clock::{Clock, ManualClock};
use troupe_actors::ids::LeaderEpoch;
use troupe_actors::partition::*;
use troupe_actors::storage::{RecordBatch, TimestampType};
use troupe_actors::supervision::RestartPolicy;
use troupe_actors::topic_config::PartitionConfig;
use troupe_actors::BrokerError;

use crate::common::record;

fn limits(max_restarts: usize) -> PartitionLimits {
    PartitionLimits {
        mailbox_capacity: 64,
        max_waiting_fetches: 16,
        restart_policy: RestartPolicy {
            max_restarts,
            window: Duration::from_secs(60),
        },
        retention_check_interval: Duration::from_secs(3600),
        tail_buffer_chunks: 8,
        tail_chunk_max_bytes: 64 * 1024,
        producer_id_expiration_ms: 86_400_000,
    }
}

pub(crate) fn start(dir: &std::path::Path, max_restarts: usize) -> Addr<PartitionReplica> {
    start_with(
        dir,
        PartitionConfig::default(),
        max_restarts,
        Clock::system(),
    )
}

fn start_with(
    dir: &std::path::Path,
    config: PartitionConfig,
    max_restarts: usize,
    clock: Clock,
) -> Addr<PartitionReplica> {
    PartitionReplica::new("t", 0, dir.join("t-0"), config, limits(max_restarts), clock)
        .start_supervised(&Arbiter::current())
}

/// A partition holding the values `v0` .. `v{n-1}`.
async fn start_with_values(dir: &std::path::Path, n: usize) -> Addr<PartitionReplica> {
    let addr = start(dir, 5);
    for i in 0..n {
        append(&addr, &format!("v{i}")).await.unwrap();
    }
    addr
}

fn batch(value: &str) -> RecordBatch {
    RecordBatch::encode(&[record(1, "k", value)], TimestampType::CreateTime).unwrap()
}

pub(crate) async fn append(
    addr: &Addr<PartitionReplica>,
    value: &str,
) -> Result<AppendResult, BrokerError> {
    addr.send(Append {
        batch: batch(value),
        acks: Acks::All,
    })
    .await
    .unwrap()
}

pub(crate) async fn values_from(addr: &Addr<PartitionReplica>, offset: i64) -> Vec<String> {
    let fetched = addr
        .send(Fetch {
            offset,
            max_bytes: 1 << 20,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .unwrap();
    fetched
        .data
        .records_from(offset)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.record.value.unwrap()).unwrap())
        .collect()
}

#[actix_rt::test]
async fn a_panic_restarts_the_partition_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 5);
    for i in 0..10 {
        assert_eq!(
            append(&addr, &format!("v{i}")).await.unwrap().base_offset,
            i
        );
    }
    let injected = addr.send(InjectPanic).await.unwrap();
    assert!(
        matches!(injected, Err(BrokerError::PartitionRestarting { .. })),
        "{injected:?}"
    );
    let values = values_from(&addr, 0).await;
    assert_eq!(values, (0..10).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let status = addr.send(GetStatus).await.unwrap();
    assert!(status.online);
    assert_eq!(status.restarts, 1);
    assert_eq!((status.log_end_offset, status.high_watermark), (10, 10));
    assert_eq!(append(&addr, "after").await.unwrap().base_offset, 10);
}

#[actix_rt::test]
async fn a_leader_commits_its_recovered_log_even_when_the_high_watermark_checkpoint_lags() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_with_values(dir.path(), 10).await;
    addr.send(Stop(StopMode::Close)).await.unwrap().unwrap();
    let checkpoint = dir.path().join("t-0/high-watermark-checkpoint");
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    assert_eq!(text, "0\n1\nhigh_watermark 10\n", "close checkpoints it");
    // As if the process died before the periodic checkpoint caught up.
    std::fs::write(&checkpoint, "0\n1\nhigh_watermark 3\n").unwrap();
    let addr = start(dir.path(), 5);
    let status = addr.send(GetStatus).await.unwrap();
    assert_eq!((status.log_end_offset, status.high_watermark), (10, 10));
    assert_eq!(values_from(&addr, 0).await.len(), 10);
    assert_eq!(status.leader_epoch, LeaderEpoch::FIRST);
}

#[actix_rt::test]
async fn a_parked_read_gets_an_error_not_a_hang_when_the_partition_fails() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 5);
    let parked = addr.send(Fetch {
        offset: 0,
        max_bytes: 1024,
        max_wait_ms: 30_000,
    });
    let started = Instant::now();
    let (parked, injected) = futures::join!(parked, addr.send(InjectPanic));
    assert!(injected.unwrap().is_err());
    assert!(matches!(
        parked.unwrap(),
        Err(BrokerError::PartitionRestarting { .. })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the parked read was answered at once"
    );
    assert_eq!(append(&addr, "x").await.unwrap().base_offset, 0);
}

#[actix_rt::test]
async fn too_many_failures_leave_the_partition_offline() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 2);
    append(&addr, "kept").await.unwrap();
    for _ in 0..3 {
        let _ = addr.send(InjectPanic).await.unwrap();
    }
    let status = addr.send(GetStatus).await.unwrap();
    assert!(!status.online);
    assert!(status.offline_reason.unwrap().contains("restarts"));
    assert!(matches!(
        append(&addr, "refused").await,
        Err(BrokerError::PartitionOffline { .. })
    ));
    // The data is still on disk for the next start.
    drop(addr);
    let again = start(dir.path(), 2);
    assert_eq!(values_from(&again, 0).await, vec!["kept"]);
}

#[actix_rt::test]
async fn a_long_poll_wakes_when_data_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let time = ManualClock::starting_at(0);
    let addr = start_with(dir.path(), PartitionConfig::default(), 5, time.clock());
    // The mailbox takes the read first: it parks, and the append wakes it.
    let waiting = addr.send(Fetch {
        offset: 0,
        max_bytes: 1024,
        max_wait_ms: 20_000,
    });
    let (fetched, _) = futures::join!(waiting, append(&addr, "hello"));
    let fetched = fetched.unwrap().unwrap();
    assert_eq!(fetched.data.records_from(0).unwrap().len(), 1);
    assert_eq!(
        time.elapsed(),
        Duration::ZERO,
        "woken by the data, not a timer"
    );
    // With no data, the wait ends at its timeout with an empty answer, not before.
    let mut empty = Box::pin(addr.send(Fetch {
        offset: 1,
        max_bytes: 1024,
        max_wait_ms: 200,
    }));
    addr.send(GetStatus).await.unwrap();
    time.advance_ms(199);
    addr.send(GetStatus).await.unwrap();
    assert!(
        futures::poll!(empty.as_mut()).is_pending(),
        "answered before max_wait_ms"
    );
    time.advance_ms(1);
    let empty = tokio::time::timeout(Duration::from_secs(10), empty)
        .await
        .expect("answered once max_wait_ms passed")
        .unwrap()
        .unwrap();
    assert!(empty.data.bytes.is_empty());
}

#[actix_rt::test]
async fn concurrent_appends_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 5);
    let results = join_all((0..200).map(|i| {
        let addr = addr.clone();
        async move { append(&addr, &format!("{i}")).await.unwrap().base_offset }
    }))
    .await;
    let mut offsets = results.clone();
    offsets.sort_unstable();
    assert_eq!(
        offsets,
        (0..200).collect::<Vec<i64>>(),
        "every append got its own offset"
    );
    let status = addr.send(GetStatus).await.unwrap();
    assert_eq!(status.high_watermark, 200);
    assert!(
        status.flushes < 200,
        "group commit: {} fsyncs for 200 appends",
        status.flushes
    );
}

#[actix_rt::test]
async fn reads_out_of_range_carry_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 5);
    append(&addr, "a").await.unwrap();
    let err = addr
        .send(Fetch {
            offset: 5,
            max_bytes: 1024,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .unwrap_err();
    match err {
        BrokerError::OffsetOutOfRange {
            requested,
            log_start_offset,
            log_end_offset,
            ..
        } => assert_eq!((requested, log_start_offset, log_end_offset), (5, 0, 1)),
        other => panic!("{other:?}"),
    }
    let latest = addr
        .send(ListOffsets(OffsetSpec::Latest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest, Some((1, None)));
}

#[actix_rt::test]
async fn retention_deletes_old_segments_and_removes_their_files_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = PartitionConfig::default();
    config.log.segment_bytes = 300;
    config.retention.retention_bytes = Some(600);
    config.retention.retention_ms = None; // the records carry timestamp 1: by time all would go
    config.file_delete_delay_ms = 200;
    let time = ManualClock::starting_at(0);
    let addr = start_with(dir.path(), config, 5, time.clock());
    for i in 0..20 {
        append(&addr, &format!("value-{i:03}-{}", "x".repeat(80)))
            .await
            .unwrap();
    }
    let before = addr.send(GetStatus).await.unwrap();
    assert!(before.segments > 5);
    let retired = addr.send(ApplyRetention).await.unwrap().unwrap();
    assert!(retired > 0);
    let after = addr.send(GetStatus).await.unwrap();
    assert!(
        after.size_bytes >= 600 && after.size_bytes < before.size_bytes,
        "{after:?}"
    );
    assert!(after.log_start_offset > 0);
    assert_eq!(after.retention_deleted_segments, retired as u64);
    let log_dir = dir.path().join("t-0");
    let deleted_files = || {
        std::fs::read_dir(&log_dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".deleted")
            })
            .count()
    };
    time.advance_ms(199);
    addr.send(GetStatus).await.unwrap();
    assert_eq!(
        deleted_files(),
        retired * 3,
        "files wait out file.delete.delay.ms"
    );
    time.advance_ms(1);
    // Removed on a blocking thread once the delay has passed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while deleted_files() > 0 && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(deleted_files(), 0);
    // Reads below the new start are refused with the bounds; from the start they work.
    let err = addr
        .send(Fetch {
            offset: 0,
            max_bytes: 1024,
            max_wait_ms: 0,
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::OffsetOutOfRange { log_start_offset, .. } if log_start_offset == after.log_start_offset)
    );
    let values = values_from(&addr, after.log_start_offset).await;
    assert_eq!(values.len() as i64, 20 - after.log_start_offset);
    assert!(values.last().unwrap().starts_with("value-019"));
}

/// Reads `n` records from a feed: (offset, value) in delivery order.
async fn feed_values(feed: &mut PartitionFeed, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed delivers within 10 s");
        let (chunk, from) = next.unwrap();
        for r in chunk.records().unwrap().iter().filter(|r| r.offset >= from) {
            out.push((
                r.offset,
                String::from_utf8(r.record.value.clone().unwrap()).unwrap(),
            ));
        }
    }
    out
}

#[actix_rt::test]
async fn a_feed_catches_up_then_is_pushed_each_record_once_across_ring_lag_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_with_values(dir.path(), 20).await;
    let mut feed = PartitionFeed::new(addr.clone(), 5, 256);
    // Catch-up from the log: small reads, from offset 5.
    let got = feed_values(&mut feed, 15).await;
    assert_eq!(got.first().map(|r| r.0), Some(5));
    // Live: pushed as they commit.
    for i in 20..25 {
        append(&addr, &format!("v{i}")).await.unwrap();
    }
    let live = feed_values(&mut feed, 5).await;
    // The ring holds 8 chunks: 30 commits while the feed is not reading overrun it,
    // and the feed reads the gap from the log.
    for i in 25..55 {
        append(&addr, &format!("v{i}")).await.unwrap();
    }
    let lagged = feed_values(&mut feed, 30).await;
    // A crash of the partition closes the ring; the feed subscribes again to the
    // restarted actor (recovered from disk) and goes on.
    assert!(addr.send(InjectPanic).await.unwrap().is_err());
    for i in 55..60 {
        loop {
            match append(&addr, &format!("v{i}")).await {
                Ok(_) => break,
                Err(BrokerError::PartitionRestarting { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    let after = feed_values(&mut feed, 5).await;
    let all: Vec<(i64, String)> = [got, live, lagged, after].concat();
    let want: Vec<(i64, String)> = (5..60).map(|i| (i, format!("v{i}"))).collect();
    assert_eq!(all, want, "every record once, in order");
    assert_eq!(feed.position(), 60);
    let status = addr.send(GetStatus).await.unwrap();
    assert!(status.tail_chunks > 0, "live records came from the ring");
}

#[actix_rt::test]
async fn a_feed_past_the_log_end_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start(dir.path(), 5);
    append(&addr, "v0").await.unwrap();
    let mut feed = PartitionFeed::new(addr.clone(), 7, 1024);
    match feed.next().await {
        Err(BrokerError::OffsetOutOfRange { requested, .. }) => assert_eq!(requested, 7),
        other => panic!("expected out of range, got {other:?}"),
    }
}
