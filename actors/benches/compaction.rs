//! Log cleaner benchmark: `cargo bench -p troupe-actors --bench compaction`.
//!
//! Builds a log (default 1 GiB of 1 KiB records, 64 MiB segments) whose keys are 10%
//! or 90% live (the share of records that are the latest for their key), cleans it
//! fully, and prints the cleaner's throughput in MB of dirty log cleaned per second
//! beside the raw sequential read throughput of the same files measured in the same
//! run. Reading every byte once is the cleaner's floor when it keeps little; when it
//! keeps much, writing and fsyncing what it keeps is (Kafka's cleaner fsyncs its output
//! too). So the bench also measures the disk's fsync'd sequential write and prints the
//! cleaner's time against that I/O floor: read the dirty bytes once, write and fsync
//! the kept ones.
//!
//! Environment: `TROUPE_BENCH_MIB` (log size, default 1024), `TROUPE_BENCH_DIR`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use troupe_actors::storage::compaction::{clean, CompactionConfig};
use troupe_actors::storage::{FlushPolicy, Log, LogConfig, Record};

const VALUE_BYTES: usize = 1024;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        flush: FlushPolicy::NEVER,
        allow_offset_gaps: true,
        ..LogConfig::default()
    }
}

fn build(dir: &Path, total_bytes: u64, live_share: f64) -> u64 {
    let _ = std::fs::remove_dir_all(dir);
    let mut log = Log::open(dir, config()).unwrap_or_else(|e| panic!("{e}"));
    let records = total_bytes / VALUE_BYTES as u64;
    let keys = ((records as f64 * live_share) as u64).max(1);
    let mut i = 0u64;
    while i < records {
        let batch: Vec<Record> = (0..100)
            .map(|j| Record {
                timestamp_ms: 0,
                key: Some(format!("key-{:010}", (i + j) % keys).into_bytes()),
                value: Some(vec![b'v'; VALUE_BYTES]),
                headers: vec![],
            })
            .collect();
        log.append_records(&batch, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        i += 100;
    }
    log.roll().unwrap_or_else(|e| panic!("{e}"));
    let size = log.size_bytes();
    log.close().unwrap_or_else(|e| panic!("{e}"));
    size
}

fn raw_read_mb_s(dir: &Path) -> f64 {
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for path in logs {
        let mut f = File::open(path).unwrap_or_else(|e| panic!("{e}"));
        loop {
            let n = f.read(&mut buf).unwrap_or_else(|e| panic!("{e}"));
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
    }
    bytes as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Sequential writes of 256 MiB in 1 MiB blocks, then `fdatasync`, in MB/s.
fn synced_write_mb_s(dir: &Path) -> f64 {
    use std::io::Write;
    let path = dir.join("write-baseline");
    let block = vec![b'w'; 1 << 20];
    let start = Instant::now();
    let mut f = File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..256 {
        f.write_all(&block).unwrap_or_else(|e| panic!("{e}"));
    }
    f.sync_data().unwrap_or_else(|e| panic!("{e}"));
    let mb_s = (256u64 << 20) as f64 / 1e6 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    mb_s
}

fn main() {
    let mib: u64 = std::env::var("TROUPE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let root = std::env::var("TROUPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data"));
    println!("troupe log cleaner benchmark: {mib} MiB log of 1 KiB records, 64 MiB segments");
    println!("baseline = plain sequential reads of the same .log files, same run");
    println!("I/O floor = dirty MB / raw read MB/s + written MB / fsync'd write MB/s\n");
    println!(
        "{:<10} {:>9} {:>11} {:>7} {:>13} {:>14} {:>8} {:>16} {:>13}",
        "live keys",
        "dirty MB",
        "written MB",
        "passes",
        "cleaner MB/s",
        "raw read MB/s",
        "ratio",
        "fsync write MB/s",
        "÷ I/O floor"
    );
    for live in [0.10, 0.90] {
        let dir = root.join(format!("compaction-{}", (live * 100.0) as u32));
        let dirty = build(&dir, mib << 20, live);
        let raw = raw_read_mb_s(&dir);
        let mut log = Log::open(&dir, config()).unwrap_or_else(|e| panic!("{e}"));
        let compaction = CompactionConfig {
            dedupe_buffer_bytes: 128 << 20,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            log: config(),
        };
        let write = synced_write_mb_s(&dir);
        let start = Instant::now();
        let mut passes = 0;
        let mut written = 0u64;
        while let Some(outcome) =
            clean(&log.cleanable(), &compaction, 0).unwrap_or_else(|e| panic!("{e}"))
        {
            written += outcome.stats.bytes_written;
            log.install_cleaned(&outcome.manifest)
                .unwrap_or_else(|e| panic!("{e}"));
            passes += 1;
        }
        let seconds = start.elapsed().as_secs_f64();
        let cleaner = dirty as f64 / 1e6 / seconds;
        let floor = dirty as f64 / 1e6 / raw + written as f64 / 1e6 / write;
        println!(
            "{:<10} {:>9.0} {:>11.0} {:>7} {:>13.1} {:>14.1} {:>8.2} {:>16.1} {:>13.2}",
            format!("{:.0}%", live * 100.0),
            dirty as f64 / 1e6,
            written as f64 / 1e6,
            passes,
            cleaner,
            raw,
            cleaner / raw,
            write,
            floor / seconds
        );
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
