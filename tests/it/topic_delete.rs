//! Topic deletion happens whole or not at all (issue 12, item 3): a 249-character
//! topic (whose `-delete` directory name would exceed 255 bytes under the old naming)
//! is deleted, re-created empty, and its old directory goes; a delete whose rename
//! fails is refused and the topic keeps serving.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::broker::{create_topic, delete, get, produce_v3, read_partition, TestBroker};
use crate::mounts::BindMount;

fn values(b: &TestBroker, topic: &str) -> Vec<String> {
    read_partition(b, topic, 0)
        .into_iter()
        .filter_map(|(_, _, v)| v)
        .collect()
}

/// Directories in the data dir whose name starts with `prefix`.
fn dirs_starting(data: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(data)
        .expect("the data dir lists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect()
}

#[test]
fn a_249_character_topic_is_deleted_whole_and_recreated_empty() {
    let data = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with(data.path(), &["offsets.topic.num.partitions=1"]);
    let topic = "t".repeat(249);
    create_topic(&b, &topic, 1);
    produce_v3(
        &b,
        &topic,
        &[json!({"value": {"type": "STRING", "data": "old-1"}})],
    );
    produce_v3(
        &b,
        &topic,
        &[json!({"value": {"type": "STRING", "data": "old-2"}})],
    );
    assert_eq!(values(&b, &topic), ["old-1", "old-2"]);

    let (status, body) = delete(&b.v3(&format!("/topics/{topic}")));
    assert_eq!(status, 204, "{body}");
    assert!(
        !data.path().join(format!("{topic}-0")).exists(),
        "the partition directory was moved away before the delete was acknowledged"
    );
    let (status, _) = get(&b.v3(&format!("/topics/{topic}")));
    assert_eq!(status, 404);

    create_topic(&b, &topic, 1);
    assert!(
        values(&b, &topic).is_empty(),
        "the re-created topic starts empty"
    );
    produce_v3(
        &b,
        &topic,
        &[json!({"value": {"type": "STRING", "data": "new-1"}})],
    );
    assert_eq!(values(&b, &topic), ["new-1"]);

    // The renamed directory (truncated name, `-delete` suffix) is removed in the
    // background: only the live partition directory is left.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = dirs_starting(data.path(), "ttttt");
        if left == [data.path().join(format!("{topic}-0"))] {
            break;
        }
        assert!(Instant::now() < deadline, "old directories left: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // And a restart still serves the new topic's records only.
    b.stop();
    let b = TestBroker::start_with(data.path(), &["offsets.topic.num.partitions=1"]);
    assert_eq!(values(&b, &topic), ["new-1"]);
}

#[test]
fn a_directory_a_delete_could_not_move_is_never_served_as_a_new_topic() {
    let data = tempfile::tempdir().unwrap();
    let b = TestBroker::start_with(data.path(), &["offsets.topic.num.partitions=1"]);
    create_topic(&b, "pinned", 2);
    produce_v3(
        &b,
        "pinned",
        &[json!({"partition_id": 1, "value": {"type": "STRING", "data": "old"}})],
    );
    let mount = BindMount::on_itself(&data.path().join("pinned-1"));

    // The delete is committed in the metadata log: it holds, whatever the disk says.
    let (status, body) = delete(&b.v3("/topics/pinned"));
    assert_eq!(status, 204, "{body}");
    let (status, _) = get(&b.v3("/topics/pinned"));
    assert_eq!(status, 404);
    // pinned-0 goes; pinned-1, a mount point, cannot be renamed and stays.
    let deadline = Instant::now() + Duration::from_secs(20);
    while data.path().join("pinned-0").exists() {
        assert!(Instant::now() < deadline, "pinned-0 was not moved away");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(data.path().join("pinned-1").is_dir());

    // A new topic of that name is a new topic id: the old directory is moved away
    // before its partition opens, and none of the old records is served.
    drop(mount);
    create_topic(&b, "pinned", 2);
    let partition_1 = |b: &TestBroker| -> Vec<String> {
        read_partition(b, "pinned", 1)
            .into_iter()
            .filter_map(|(_, _, v)| v)
            .collect()
    };
    assert!(partition_1(&b).is_empty(), "the new topic starts empty");
    produce_v3(
        &b,
        "pinned",
        &[json!({"partition_id": 1, "value": {"type": "STRING", "data": "new"}})],
    );
    assert_eq!(partition_1(&b), ["new"]);
}
