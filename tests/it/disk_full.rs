//! A full disk (issue 12, item 7), on a 16 MiB tmpfs the test mounts and fills:
//! produce is refused at once with HTTP 507 / 50701 naming the file it could not
//! grow, reads of stored records go on, writes work again as soon as space is freed
//! (no restart), and a restart on the full disk — clean or after kill -9 — comes up
//! serving reads. Never a crash.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::{post_json, read_partition, send, TestBroker};
use crate::mounts::Tmpfs;

const SETTINGS: &[&str] = &["offsets.topic.num.partitions=1"];

/// Writes `path` until the file system refuses (ENOSPC), then writes smaller
/// pieces until not even a page is left. Appends, so it can top up a full disk that
/// the broker freed a little of (a restart trims the active segment's reserved index
/// blocks and removes temporary files).
fn fill(path: &Path) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the filler file");
    for chunk in [1 << 20, 4096] {
        let buf = vec![7u8; chunk];
        loop {
            match file.write_all(&buf) {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "filling stops at ENOSPC: {e}");
                    break;
                }
            }
        }
    }
}

fn produce(b: &TestBroker, value: &str) -> (u16, Value) {
    send(
        "POST",
        &b.v3("/topics/full/records"),
        "application/json",
        &json!({"value": {"type": "STRING", "data": value}}).to_string(),
    )
}

/// Refused for a full disk: HTTP 507 with 50701, or (a report inside a 200, as
/// Confluent reports per-record failures) the same code in band.
fn assert_disk_full((status, body): (u16, Value)) {
    let code = body["error_code"].as_i64();
    let refused = (status == 507 && code == Some(50701)) || (status == 200 && code == Some(50701));
    assert!(refused, "{status} {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("No space left on device") && message.contains("full-0"),
        "the message names the disk condition and the file: {message}"
    );
}

fn values(b: &TestBroker) -> Vec<String> {
    read_partition(b, "full", 0)
        .into_iter()
        .filter_map(|(_, _, v)| v)
        .collect()
}

/// Produces until accepted, within `limit` (space was just freed).
fn produce_accepted(b: &TestBroker, value: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = produce(b, value);
        if status == 200 && body["error_code"] == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "still refused: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_refuses_writes_keeps_reads_and_recovers_without_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let _tmpfs = Tmpfs::mount(data.path(), "16m");
    let logs = data.path().join("logs");
    let filler = data.path().join("filler");
    let b = TestBroker::start_with(&logs, SETTINGS);
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "full", "partitions_count": 1, "configs": [
            {"name": "segment.bytes", "value": "65536"}]}),
    );
    assert_eq!(status, 201, "{body}");
    let stored: Vec<String> = (0..40)
        .map(|i| format!("{i}-{}", "r".repeat(1000)))
        .collect();
    for v in &stored {
        produce_accepted(&b, v, Duration::ZERO);
    }

    fill(&filler);
    // Larger than a page, so it cannot slip into the tail of one already allocated.
    let big = "b".repeat(16 * 1024);
    for _ in 0..3 {
        let started = Instant::now();
        let answer = produce(&b, &big);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "refused at once"
        );
        assert_disk_full(answer);
    }
    assert_eq!(values(&b), stored, "reads go on while the disk is full");

    std::fs::remove_file(&filler).unwrap();
    produce_accepted(&b, "after-space", Duration::from_secs(5));
    let mut expected = stored.clone();
    expected.push("after-space".into());
    assert_eq!(values(&b), expected);

    // A clean restart on a full disk comes up and serves reads; writes are refused.
    fill(&filler);
    b.stop();
    let b = TestBroker::start_with(&logs, SETTINGS);
    assert_eq!(values(&b), expected);
    fill(&filler);
    assert_disk_full(produce(&b, &big));

    // So does one after a kill -9 (recovery on a full disk).
    b.kill9();
    let b = TestBroker::start_with(&logs, SETTINGS);
    assert_eq!(values(&b), expected);
    fill(&filler);
    assert_disk_full(produce(&b, &big));

    std::fs::remove_file(&filler).unwrap();
    produce_accepted(&b, "after-restart", Duration::from_secs(5));
    expected.push("after-restart".into());
    assert_eq!(values(&b), expected);
}
