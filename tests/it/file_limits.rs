//! Open files (issue 12, item 6): what one request may create is bounded by what the
//! process can open, a partition's open files do not grow with its segments, and a
//! restart under the same limit always comes up and serves. The brokers here run
//! under a low `RLIMIT_NOFILE` set with `prlimit`.

use serde_json::{json, Value};

use crate::broker::{create_topic, get, post_json, produce_v3, read_partition, send, TestBroker};
use crate::mounts::Tmpfs;

/// 1024 open files, 224 of them reserved: room for (1024 - 224) / 8 = 100 partitions.
const OPEN_FILES: u64 = 1024;
const SETTINGS: &[&str] = &[
    "reserved.file.descriptors=224",
    "offsets.topic.num.partitions=1",
];
const MAX_PARTITIONS: usize = 100;

fn open_fds(b: &TestBroker) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", b.pid()))
        .expect("/proc/<pid>/fd lists")
        .count()
}

fn assert_refused_by_the_limit(answer: (u16, Value)) {
    let (status, body) = answer;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], 40002, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("RLIMIT_NOFILE 1024")
            && message.contains(&format!("at most {MAX_PARTITIONS} partitions")),
        "the error names the limit: {message}"
    );
}

#[test]
fn creates_beyond_the_open_file_limit_are_refused_and_existing_partitions_keep_serving() {
    let data = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with_open_files(data.path(), OPEN_FILES, SETTINGS);
    create_topic(&b, "existing", 10);
    produce_v3(
        &b,
        "existing",
        &[json!({"partition_id": 3, "value": {"type": "STRING", "data": "before"}})],
    );

    // One request for 10,000 partitions: refused whole, nothing created.
    assert_refused_by_the_limit(post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "huge", "partitions_count": 10000}),
    ));
    assert_eq!(get(&b.v3("/topics/huge")).0, 404);
    assert!(!data.path().join("huge-0").exists());
    // Growing a topic past the limit likewise.
    assert_refused_by_the_limit(send(
        "PATCH",
        &b.v3("/topics/existing"),
        "application/json",
        &json!({"partitions_count": 1000}).to_string(),
    ));
    // One-partition topics, up to the limit (1 offsets + 10 + 89 = 100), then refused.
    for i in 0..89 {
        create_topic(&b, &format!("small-{i}"), 1);
    }
    assert_refused_by_the_limit(post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "one-too-many", "partitions_count": 1}),
    ));

    // Everything created is online and serves.
    produce_v3(
        &b,
        "existing",
        &[json!({"partition_id": 3, "value": {"type": "STRING", "data": "after"}})],
    );
    produce_v3(
        &b,
        "small-88",
        &[json!({"value": {"type": "STRING", "data": "s"}})],
    );
    let values = |b: &TestBroker, t: &str, p: i32| -> Vec<String> {
        read_partition(b, t, p)
            .into_iter()
            .filter_map(|(_, _, v)| v)
            .collect()
    };
    assert_eq!(values(&b, "existing", 3), ["before", "after"]);
    assert_eq!(values(&b, "small-88", 0), ["s"]);
    let fds = open_fds(&b);
    assert!(fds < OPEN_FILES as usize / 2, "{fds} files open");

    // A restart under the same limit comes up and serves every partition.
    b.stop();
    let b = TestBroker::start_with_open_files(data.path(), OPEN_FILES, SETTINGS);
    assert_eq!(values(&b, "existing", 3), ["before", "after"]);
    assert_eq!(values(&b, "small-0", 0), Vec::<String>::new());
    assert_eq!(values(&b, "small-88", 0), ["s"]);
}

#[test]
fn a_restart_past_the_budget_starts_the_excess_offline_and_serves_the_rest() {
    let data = tempfile::tempdir().unwrap();
    {
        let b = TestBroker::start_with_open_files(data.path(), OPEN_FILES, SETTINGS);
        create_topic(&b, "a", 50);
        create_topic(&b, "b", 49);
        b.stop();
    }
    // The same partitions under a lower limit: 768 - 224 = 544 / 8 = 68 partitions.
    let b = TestBroker::start_with_open_files(data.path(), 768, SETTINGS);
    produce_v3(
        &b,
        "a",
        &[json!({"partition_id": 0, "value": {"type": "STRING", "data": "x"}})],
    );
    let (status, body) = get(&b.url("/topics/b/partitions/48/records?offset=0"));
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("RLIMIT_NOFILE 768")),
        "{body}"
    );
}

#[test]
fn thousands_of_segments_restart_and_serve_with_few_open_files() {
    const RECORDS: usize = 3000;
    let data = tempfile::tempdir().unwrap();
    let _tmpfs = Tmpfs::mount(data.path(), "512m");
    let b = TestBroker::start_with_open_files(data.path(), OPEN_FILES, SETTINGS);
    // Every record its own batch (max.message.bytes fits one), every batch its own
    // segment (segment.bytes is the minimum).
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "many", "partitions_count": 1, "configs": [
            {"name": "segment.bytes", "value": "14"},
            {"name": "max.message.bytes", "value": "120"}]}),
    );
    assert_eq!(status, 201, "{body}");
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| json!({"value": {"type": "STRING", "data": format!("v{i}")}}))
        .collect();
    produce_v3(&b, "many", &records);
    let segments = std::fs::read_dir(data.path().join("many-0"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count();
    assert!(segments >= RECORDS, "{segments} segments");
    let fds = open_fds(&b);
    assert!(fds < 200, "{fds} files open for {segments} segments");

    b.stop();
    let b = TestBroker::start_with_open_files(data.path(), OPEN_FILES, SETTINGS);
    let read = read_partition(&b, "many", 0);
    assert_eq!(read.len(), RECORDS);
    assert_eq!(
        read[RECORDS - 1].2.as_deref(),
        Some(format!("v{}", RECORDS - 1).as_str())
    );
    produce_v3(
        &b,
        "many",
        &[json!({"value": {"type": "STRING", "data": "after"}})],
    );
    let fds = open_fds(&b);
    assert!(
        fds < 200,
        "{fds} files open after a restart with {segments} segments"
    );

    // And after a kill -9 (recovery) too.
    b.kill9();
    let b = TestBroker::start_with_open_files(data.path(), OPEN_FILES, SETTINGS);
    assert_eq!(read_partition(&b, "many", 0).len(), RECORDS + 1);
    let fds = open_fds(&b);
    assert!(fds < 200, "{fds} files open after recovery");
}
