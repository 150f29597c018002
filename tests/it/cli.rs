//! The CLI against a real broker: topics create/list/describe/alter/delete, the console
//! producer and consumer, and exit codes a shell can act on.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::broker::*;

pub(crate) fn troupe(b: Option<&TestBroker>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
    cmd.args(args);
    match b {
        Some(b) => cmd.args(["--bootstrap-server", &format!("127.0.0.1:{}", b.port)]),
        None => cmd.args(["--bootstrap-server", "127.0.0.1:1"]),
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("troupe runs");
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("stdin written");
        }
    }
    child.wait_with_output().expect("troupe finishes")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn topics_produce_consume_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let out = troupe(
        Some(&b),
        &[
            "topics",
            "create",
            "--topic",
            "cli",
            "--partitions",
            "2",
            "--config",
            "retention.ms=60000",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout(&troupe(Some(&b), &["topics", "list"], None)).trim(),
        "__consumer_offsets\ncli"
    );
    assert_eq!(
        stdout(&troupe(
            Some(&b),
            &["topics", "list", "--exclude-internal"],
            None
        ))
        .trim(),
        "cli"
    );
    let described = stdout(&troupe(
        Some(&b),
        &["topics", "describe", "--topic", "cli"],
        None,
    ));
    assert!(
        described.contains("PartitionCount: 2") && described.contains("retention.ms=60000"),
        "{described}"
    );

    let out = troupe(
        Some(&b),
        &["produce", "--topic", "cli", "--key-separator", ":"],
        Some("a:first\nb:second\nc:third\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = troupe(
        Some(&b),
        &[
            "consume",
            "--topic",
            "cli",
            "--from-beginning",
            "--max-messages",
            "3",
            "--format",
            "key-value",
            "--timeout-ms",
            "10000",
        ],
        None,
    );
    assert!(out.status.success());
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(lines, vec!["a\tfirst", "b\tsecond", "c\tthird"]);

    // A file with a progress bar, to one partition; then read that partition by offset.
    let file = dir.path().join("input.txt");
    std::fs::write(
        &file,
        (0..1000).map(|i| format!("line {i}\n")).collect::<String>(),
    )
    .unwrap();
    let out = troupe(
        Some(&b),
        &[
            "produce",
            "--topic",
            "cli",
            "--partition",
            "1",
            "--file",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = read_partition(&b, "cli", 1).len() as i64;
    assert!(before >= 1000);
    let start = (before - 2).to_string();
    let out = troupe(
        Some(&b),
        &[
            "consume",
            "--topic",
            "cli",
            "--partition",
            "1",
            "--offset",
            &start,
            "--max-messages",
            "2",
            "--timeout-ms",
            "10000",
        ],
        None,
    );
    assert_eq!(stdout(&out), "line 998\nline 999\n");

    let out = troupe(
        Some(&b),
        &[
            "topics",
            "alter",
            "--topic",
            "cli",
            "--partitions",
            "4",
            "--config",
            "segment.bytes=1048576",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&troupe(
        Some(&b),
        &["topics", "describe", "--topic", "cli"],
        None
    ))
    .contains("PartitionCount: 4"));
    assert!(
        troupe(Some(&b), &["topics", "delete", "--topic", "cli"], None)
            .status
            .success()
    );
    assert_eq!(
        stdout(&troupe(
            Some(&b),
            &["topics", "list", "--exclude-internal"],
            None
        ))
        .trim(),
        ""
    );
}

#[test]
fn consume_as_a_group_member_and_manage_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let run = |args: &[&str]| {
        let out = troupe(Some(&b), args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    run(&["topics", "create", "--topic", "x", "--partitions", "1"]);
    let input: String = (1..=10).map(|i| format!("{i}\n")).collect();
    let out = troupe(Some(&b), &["produce", "--topic", "x"], Some(&input));
    assert!(out.status.success());
    // The first member reads four records and commits exactly those.
    let first = run(&[
        "consume",
        "--topic",
        "x",
        "--group",
        "cg",
        "--from-beginning",
        "--max-messages",
        "4",
    ]);
    assert_eq!(first.lines().collect::<Vec<_>>(), vec!["1", "2", "3", "4"]);
    let described = run(&["groups", "describe", "--group", "cg"]);
    let lag_line = described
        .lines()
        .find(|l| l.starts_with("x "))
        .expect("a lag line for x");
    let fields: Vec<&str> = lag_line.split_whitespace().collect();
    assert_eq!(&fields[..5], &["x", "0", "4", "10", "6"], "{described}");
    assert!(run(&["groups", "list"])
        .lines()
        .any(|l| l.starts_with("cg ") && l.contains("EMPTY")));
    // The next member of the group goes on where the first stopped.
    let rest = run(&[
        "consume",
        "--topic",
        "x",
        "--group",
        "cg",
        "--timeout-ms",
        "1500",
    ]);
    assert_eq!(
        rest.lines().collect::<Vec<_>>(),
        vec!["5", "6", "7", "8", "9", "10"]
    );
    let reset = run(&[
        "groups",
        "reset",
        "--group",
        "cg",
        "--topic",
        "x",
        "--to-offset",
        "7",
    ]);
    assert!(reset
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["x", "0", "7"]));
    let again = run(&[
        "consume",
        "--topic",
        "x",
        "--group",
        "cg",
        "--max-messages",
        "1",
    ]);
    assert_eq!(again.trim(), "8");
    run(&["groups", "delete", "--group", "cg"]);
    assert!(!run(&["groups", "list"]).contains("cg "));
    let out = troupe(Some(&b), &["groups", "describe", "--group", "cg"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("40405"));
}

#[test]
fn errors_have_messages_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let out = troupe(
        Some(&b),
        &["topics", "describe", "--topic", "missing"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("40403"));
    troupe(Some(&b), &["topics", "create", "--topic", "dup"], None);
    let out = troupe(Some(&b), &["topics", "create", "--topic", "dup"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = troupe(None, &["topics", "list"], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the broker"));
    let out = troupe(Some(&b), &["topics", "frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
    // A bad configuration stops `serve` at startup with the key named.
    let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args([
            "serve",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--override",
            "log.segmnet.bytes=5",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log.segmnet.bytes"));
}

#[test]
fn serve_help_lists_every_key_of_the_readme_table() {
    let help = |flag: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_troupe"))
            .args(["serve", flag])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let long = help("--help");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let keys: Vec<&str> = readme
        .split("<!-- config-table:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- config-table:end -->").next())
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .collect();
    assert!(keys.len() > 50, "{keys:?}");
    for key in keys {
        assert!(
            long.contains(&format!("\n  {key} = ")),
            "{key} is not in --help"
        );
    }
    assert!(long.contains("log.segment.bytes = 1073741824  (int, [14, ...])"));
    // -h stays a summary.
    assert!(!help("-h").contains("log.segment.bytes"));
}

/// `troupe cluster describe` and the `quorum` resource behind it, and the same facts
/// in `/metrics`: on one node, one alive broker that is the active controller and
/// leads a quorum of one; a restart registers it again, alive, with the metadata
/// log further on.
#[test]
fn cluster_describe_names_the_brokers_the_controller_and_the_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let (status, d) = get(&b.v3("/quorum"));
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["controller_id"], 1);
    assert_eq!(d["quorum"]["leader"], 1);
    assert_eq!(d["quorum"]["role"], "leader");
    assert_eq!(d["brokers"][0]["id"], 1);
    assert_eq!(d["brokers"][0]["state"], "alive");
    let endpoints = d["brokers"][0]["endpoints"].to_string();
    assert!(
        endpoints.contains(&format!(":{}", b.kafka_port)),
        "{endpoints}"
    );
    let offset = d["metadata_offset"].as_u64().unwrap();
    assert!(offset > 0, "{d}");

    let out = troupe(Some(&b), &["cluster", "describe"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("ActiveController:       1"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with('1') && l.contains("alive")),
        "{text}"
    );

    let metrics = b.metrics();
    assert!(
        metrics.contains("troupe_cluster_brokers{state=\"alive\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("troupe_cluster_active_controller_id 1"),
        "{metrics}"
    );

    b.stop();
    let b = TestBroker::start(dir.path());
    let (_, d) = get(&b.v3("/quorum"));
    assert_eq!(d["brokers"][0]["state"], "alive");
    assert!(d["metadata_offset"].as_u64().unwrap() > offset, "{d}");
}
