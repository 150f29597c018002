//! What the benchmark binaries share: a real broker (the `troupe` binary) started on
//! a temp directory and an ephemeral port, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub mod cluster;

pub struct Broker {
    child: Child,
    pub base: String,
    /// The Kafka listener's `host:port`.
    #[allow(dead_code)] // the Kafka bench's
    pub kafka: String,
}

impl Broker {
    #[allow(dead_code)] // the WebSocket bench's, not the REST one's
    /// The broker's resident set size in bytes (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or(0, |kb| kb * 1024)
    }
}

impl Broker {
    #[allow(dead_code)] // the Kafka bench's
    /// CPU-seconds (user and system) the broker has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.child.id())
    }
}

/// CPU-seconds (user and system) process `pid` has used, from `/proc/<pid>/stat`
/// (in clock ticks of 1/100 s, Linux's USER_HZ).
#[allow(dead_code)] // the Kafka bench's
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a broker with `overrides` (`key=value`) on top of the defaults.
#[allow(dead_code)] // every bench's but the replication one's
pub fn start_broker_with(dir: &Path, overrides: &[&str]) -> Broker {
    start_node(dir, &[], overrides)
}

/// A broker with `args` after `serve` (a cluster node's `--controller-listen`, say).
pub fn start_node(dir: &Path, args: &[String], overrides: &[&str]) -> Broker {
    // TROUPE_BENCH_BINARY runs another build (say, the previous commit's) against the
    // same bench code, for a before/after comparison in one session.
    let binary = std::env::var_os("TROUPE_BENCH_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_troupe").into());
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kafka-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .args(overrides.iter().flat_map(|o| ["--override", o]))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting troupe: {e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The Kafka listener's line comes first.
        let mut kafka = String::new();
        let echo = std::env::var_os("TROUPE_BENCH_LOG").is_some();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("[broker] {line}");
            }
            // The first Kafka listener (in `listeners` order).
            if let Some(rest) = line.split("listening on kafka://").nth(1) {
                if kafka.is_empty() {
                    kafka = rest.split_whitespace().next().unwrap_or("").to_string();
                }
            }
            for scheme in ["http", "https"] {
                if let Some(rest) = line.split(&format!("listening on {scheme}://")).nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send((format!("{scheme}://{addr}"), kafka.clone()));
                }
            }
        }
    });
    let (base, kafka) = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the broker did not start"));
    Broker { child, base, kafka }
}

pub fn cluster_id(base: &str) -> String {
    let clusters: Value = ureq::get(&format!("{base}/v3/clusters"))
        .call()
        .unwrap_or_else(|e| panic!("{e}"))
        .into_json()
        .unwrap_or_else(|e| panic!("{e}"));
    clusters["data"][0]["cluster_id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `TROUPE_BENCH_SECONDS` per case (default `default_seconds`) and a fresh
/// `TROUPE_BENCH_DIR` (default `target/bench-data`).
pub fn bench_settings(default_seconds: u64) -> (Duration, PathBuf) {
    let seconds = Duration::from_secs(
        std::env::var("TROUPE_BENCH_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_seconds),
    );
    let root = std::env::var("TROUPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
    (seconds, root)
}

/// Runs `script` in Python with `ARGS` (a JSON value) set, after `preamble` (more
/// variables); its stdout as JSON.
#[allow(dead_code)] // the Kafka and security benches'
pub fn python_json(preamble: &str, script: &str, args: &Value) -> Value {
    let program = format!(
        "import json, sys, time\n{preamble}ARGS = json.loads({:?})\n{script}",
        args.to_string()
    );
    let out = Command::new("python3")
        .args(["-c", &program])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    if !out.status.success() {
        panic!(
            "the client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"))
}
