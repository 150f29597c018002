//! Storage engine benchmark: `cargo bench -p troupe-actors --bench storage`.
//!
//! Prints, in one run and on one disk: append throughput for 100 B and 1 KiB records in
//! batches of 1, 100 and 1000, with flush disabled and with the default (durable)
//! policy; group commit with concurrent producers; sequential read throughput; and the
//! baselines they are divided by — plain buffered writes (`BufWriter`) of the very same
//! bytes, and plain sequential reads of the same files. Machines here are noisy, so
//! every figure is the median of three runs and the ratio is what to compare.
//!
//! Environment: `TROUPE_BENCH_MIB` (bytes per case, default 128),
//! `TROUPE_BENCH_DIR` (where to write, default `target/bench-data`),
//! `TROUPE_BENCH_FSYNC_SECONDS` (time cap of each fsync-per-append case, default 2).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use troupe_actors::storage::{FlushPolicy, Log, LogConfig, Record, RecordBatch, TimestampType};

const RUNS: usize = 3;

struct Env {
    dir: PathBuf,
    bytes_per_case: u64,
    fsync_cap: Duration,
}

#[derive(Clone, Copy)]
struct Throughput {
    bytes: u64,
    records: u64,
    elapsed: Duration,
}

impl Throughput {
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
    fn records_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

fn median(mut runs: Vec<Throughput>) -> Throughput {
    runs.sort_by(|a, b| a.mb_s().total_cmp(&b.mb_s()));
    runs[runs.len() / 2]
}

fn batch_of(record_bytes: usize, records: usize) -> RecordBatch {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            timestamp_ms: 1_700_000_000_000 + i as i64,
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(vec![b'x'; record_bytes]),
            headers: vec![],
        })
        .collect();
    match RecordBatch::encode(&records, TimestampType::CreateTime) {
        Ok(batch) => batch,
        Err(e) => panic!("encoding the benchmark batch: {e}"),
    }
}

fn fresh_dir(env: &Env, name: &str) -> PathBuf {
    let dir = env.dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// The baseline: the same bytes, written with a plain `BufWriter` (no fsync).
fn raw_write(env: &Env, batch: &RecordBatch) -> Throughput {
    let dir = fresh_dir(env, "raw");
    let path = dir.join("raw.bin");
    let start = Instant::now();
    let mut out = BufWriter::new(File::create(&path).unwrap());
    let mut written = 0u64;
    let mut batches = 0u64;
    while written < env.bytes_per_case {
        out.write_all(batch.as_bytes()).unwrap();
        written += batch.as_bytes().len() as u64;
        batches += 1;
    }
    out.flush().unwrap();
    drop(out);
    let elapsed = start.elapsed();
    Throughput {
        bytes: written,
        records: batches * batch.view().records_count() as u64,
        elapsed,
    }
}

fn append(env: &Env, batch: &RecordBatch, flush: FlushPolicy) -> Throughput {
    let dir = fresh_dir(env, "log");
    let config = LogConfig {
        flush,
        max_message_bytes: 4 << 20,
        ..LogConfig::default()
    };
    let mut log = Log::open(&dir, config).unwrap();
    let mut batch = batch.clone();
    let cap = if flush == FlushPolicy::NEVER {
        Duration::MAX
    } else {
        env.fsync_cap
    };
    let start = Instant::now();
    let mut written = 0u64;
    let mut records = 0u64;
    while written < env.bytes_per_case && start.elapsed() < cap {
        let info = log.append(&mut batch, 0).unwrap();
        log.flush_if_due().unwrap();
        written += info.size_bytes as u64;
        records += info.record_count as u64;
    }
    let elapsed = start.elapsed();
    drop(log);
    Throughput {
        bytes: written,
        records,
        elapsed,
    }
}

/// `producers` threads each send one-record batches and wait until theirs is durable;
/// the log's owner appends whatever has queued, then fsyncs once for all of it.
fn group_commit(env: &Env, producers: usize, record_bytes: usize) -> (Throughput, f64) {
    let dir = fresh_dir(env, "group");
    let mut log = Log::open(&dir, LogConfig::default()).unwrap();
    type Request = (RecordBatch, mpsc::Sender<i64>);
    let (tx, rx) = mpsc::sync_channel::<Request>(producers * 2);
    let deadline = Instant::now() + env.fsync_cap;
    let template = batch_of(record_bytes, 1);
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            let template = template.clone();
            std::thread::spawn(move || {
                let (ack_tx, ack_rx) = mpsc::channel();
                let mut acked = 0u64;
                while Instant::now() < deadline {
                    if tx.send((template.clone(), ack_tx.clone())).is_err() {
                        break;
                    }
                    if ack_rx.recv().is_err() {
                        break;
                    }
                    acked += 1;
                }
                acked
            })
        })
        .collect();
    drop(tx);
    let start = Instant::now();
    let mut bytes = 0u64;
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        let mut acks = Vec::with_capacity(waiting.len());
        for (mut batch, ack) in waiting {
            let info = log.append(&mut batch, 0).unwrap();
            bytes += info.size_bytes as u64;
            acks.push((info.base_offset, ack));
        }
        log.flush().unwrap();
        for (offset, ack) in acks {
            let _ = ack.send(offset);
        }
    }
    let elapsed = start.elapsed();
    let records: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let per_fsync = records as f64 / log.stats().flushes.max(1) as f64;
    (
        Throughput {
            bytes,
            records,
            elapsed,
        },
        per_fsync,
    )
}

fn read_back(env: &Env) -> (Throughput, Throughput) {
    let dir = fresh_dir(env, "read");
    let config = LogConfig {
        flush: FlushPolicy::NEVER,
        ..LogConfig::default()
    };
    let mut log = Log::open(&dir, config.clone()).unwrap();
    let mut batch = batch_of(1024, 100);
    while log.size_bytes() < env.bytes_per_case {
        log.append(&mut batch, 0).unwrap();
    }
    log.close().unwrap();
    let log = Log::open(&dir, config).unwrap();
    let mut runs = Vec::new();
    let mut raw_runs = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let (mut offset, mut bytes, mut records) = (0i64, 0u64, 0u64);
        while offset < log.log_end_offset() {
            let fetched = log.read(offset, 1 << 20).unwrap();
            for b in fetched.batches() {
                records += b.records_count() as u64;
                offset = b.next_offset();
            }
            bytes += fetched.bytes.len() as u64;
        }
        runs.push(Throughput {
            bytes,
            records,
            elapsed: start.elapsed(),
        });
        raw_runs.push(raw_read(&dir));
    }
    (median(runs), median(raw_runs))
}

fn raw_read(dir: &Path) -> Throughput {
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    for path in logs {
        let mut f = File::open(path).unwrap();
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
    }
    Throughput {
        bytes,
        records: 0,
        elapsed: start.elapsed(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let mib: u64 = std::env::var("TROUPE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let fsync_seconds: u64 = std::env::var("TROUPE_BENCH_FSYNC_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let dir = std::env::var("TROUPE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data"));
    let env = Env {
        dir,
        bytes_per_case: mib << 20,
        fsync_cap: Duration::from_secs(fsync_seconds),
    };
    println!(
        "troupe storage benchmark: {} MiB per case, median of {RUNS} runs, data in {}",
        mib,
        env.dir.display()
    );
    println!("baseline = plain BufWriter writes of the same bytes, same disk, same run\n");
    println!(
        "{:<34} {:>10} {:>13} {:>13} {:>8}",
        "case", "MB/s", "records/s", "baseline MB/s", "ratio"
    );
    for record_bytes in [100usize, 1024] {
        for batch_records in [1usize, 100, 1000] {
            let batch = batch_of(record_bytes, batch_records);
            for (flush_name, flush) in [
                ("flush disabled", FlushPolicy::NEVER),
                ("default flush (fsync/append)", FlushPolicy::EVERY_APPEND),
            ] {
                let mut appends = Vec::new();
                let mut raws = Vec::new();
                for _ in 0..RUNS {
                    raws.push(raw_write(&env, &batch));
                    appends.push(append(&env, &batch, flush));
                }
                let (a, r) = (median(appends), median(raws));
                println!(
                    "{:<34} {:>10.1} {:>13.0} {:>13.1} {:>8.2}",
                    format!("append {record_bytes}B x{batch_records}, {flush_name}"),
                    a.mb_s(),
                    a.records_s(),
                    r.mb_s(),
                    a.mb_s() / r.mb_s()
                );
            }
        }
    }
    let sequential = append(&env, &batch_of(1024, 1), FlushPolicy::EVERY_APPEND);
    for producers in [8usize, 64] {
        let (g, per_fsync) = group_commit(&env, producers, 1024);
        println!(
            "{:<34} {:>10.1} {:>13.0} {:>13} {:>8.2}   ({per_fsync:.1} appends per fsync; ratio vs one producer)",
            format!("group commit 1KiB x1, {producers} producers"),
            g.mb_s(),
            g.records_s(),
            "-",
            g.records_s() / sequential.records_s()
        );
    }
    let (read, raw) = read_back(&env);
    println!(
        "{:<34} {:>10.1} {:>13.0} {:>13.1} {:>8.2}   (baseline = plain 1 MiB file reads)",
        "sequential read 1KiB x100, 1 MiB",
        read.mb_s(),
        read.records_s(),
        raw.mb_s(),
        read.mb_s() / raw.mb_s()
    );
    let _ = std::fs::remove_dir_all(&env.dir);
}
