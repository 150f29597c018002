//! `troupe consume`: the console consumer. Reads one partition or all of them from the
//! end (default), the beginning, an offset, or a timestamp, and follows new records
//! until Ctrl-C, `--max-messages` or `--timeout-ms` of silence. Each partition is
//! long-polled by its own thread over the direct partition read API.
//!
//! With `--group`, it is a member of a consumer group instead: a REST consumer
//! instance subscribed to the topic, reading the partitions the group assigns it
//! from the group's committed offsets, and committing what it has printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::client::{CliError, Client};
use troupe_web::records::{decode_base64, BINARY_V2, V2};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// The value only.
    Value,
    /// key<TAB>value.
    KeyValue,
    /// One JSON object per record with partition, offset, timestamp, key and value.
    Json,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[arg(long)]
    pub topic: String,
    /// Consume as a member of this consumer group (from its committed offsets).
    #[arg(long, conflicts_with_all = ["offset", "timestamp", "partition"])]
    pub group: Option<String>,
    /// Start at the log start of each partition (with --group: where the group has
    /// no committed offset).
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", conflicts_with = "timestamp")]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time (ms since the epoch or ISO-8601).
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Read only this partition (default: all).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit after this long without a record.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    #[arg(long, value_enum, default_value = "value")]
    pub format: OutputFormat,
}

/// How long each poll waits on the broker for new data.
const POLL_WAIT_MS: u64 = 1000;

enum Start {
    Beginning,
    End,
    Offset(i64),
    Timestamp(String),
}

pub fn run(client: &Client, args: ConsumeArgs) -> Result<(), CliError> {
    if let Some(group) = args.group.clone() {
        return run_in_group(client, &group, &args);
    }
    let partitions: Vec<i32> = match args.partition {
        Some(p) => vec![p],
        None => {
            let list = client.get(&format!("/topics/{}/partitions", args.topic))?;
            list.as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["partition"].as_i64().map(|p| p as i32))
                .collect()
        }
    };
    let start = match (&args.offset, &args.timestamp, args.from_beginning) {
        (Some(o), _, _) => Start::Offset(*o),
        (_, Some(t), _) => Start::Timestamp(t.clone()),
        (_, _, true) => Start::Beginning,
        _ => Start::End,
    };
    let (tx, rx) =
        mpsc::sync_channel::<Result<(i32, Vec<Value>), CliError>>(partitions.len().max(1) * 2);
    for partition in partitions {
        let offset = resolve(client, &args.topic, partition, &start)?;
        let tx = tx.clone();
        let topic = args.topic.clone();
        let client = client.clone();
        std::thread::spawn(move || poll_partition(client, topic, partition, offset, tx));
    }
    drop(tx);
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    loop {
        if args.max_messages.is_some_and(|m| printed >= m) {
            return Ok(());
        }
        if let Some(t) = args.timeout_ms {
            if last_record.elapsed() >= Duration::from_millis(t) {
                return Ok(());
            }
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok((partition, records))) => {
                for r in records {
                    if args.max_messages.is_some_and(|m| printed >= m) {
                        return Ok(());
                    }
                    if print_record(&mut stdout, partition, &r, args.format).is_err() {
                        return Ok(());
                    }
                    printed += 1;
                    last_record = Instant::now();
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// The offset to start reading `partition` at.
fn resolve(client: &Client, topic: &str, partition: i32, start: &Start) -> Result<i64, CliError> {
    let offsets = client.get(&format!("/topics/{topic}/partitions/{partition}/offsets"))?;
    let (beginning, end) = (
        offsets["beginning_offset"].as_i64().unwrap_or(0),
        offsets["end_offset"].as_i64().unwrap_or(0),
    );
    match start {
        Start::Beginning => Ok(beginning),
        Start::End => Ok(end),
        Start::Offset(o) => Ok(*o),
        Start::Timestamp(t) => {
            let found = client.get_accept(
                &format!("/topics/{topic}/partitions/{partition}/records?timestamp={}&timeout=0&max_bytes=1", t.replace('+', "%2B")),
                BINARY_V2,
            )?;
            Ok(found[0]["offset"].as_i64().unwrap_or(end))
        }
    }
}

fn poll_partition(
    client: Client,
    topic: String,
    partition: i32,
    mut offset: i64,
    tx: mpsc::SyncSender<Result<(i32, Vec<Value>), CliError>>,
) {
    loop {
        let path = format!(
            "/topics/{topic}/partitions/{partition}/records?offset={offset}&timeout={POLL_WAIT_MS}"
        );
        match client.get_accept(&path, BINARY_V2) {
            Ok(Value::Array(records)) => {
                if let Some(last) = records.last().and_then(|r| r["offset"].as_i64()) {
                    offset = last + 1;
                }
                if !records.is_empty() && tx.send(Ok((partition, records))).is_err() {
                    return;
                }
            }
            Ok(other) => {
                let _ = tx.send(Err(CliError::Input(format!("unexpected answer: {other}"))));
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

/// Set by Ctrl-C or SIGTERM, so a group member can leave its group cleanly.
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        });
        set.store(true, Ordering::SeqCst);
    });
    flag
}

fn run_in_group(client: &Client, group: &str, args: &ConsumeArgs) -> Result<(), CliError> {
    let reset = if args.from_beginning {
        "earliest"
    } else {
        "latest"
    };
    let created = client
        .send_json(
            "POST",
            &format!("/consumers/{group}"),
            V2,
            &json!({"format": "binary", "auto.offset.reset": reset}),
        )?
        .unwrap_or(Value::Null);
    let instance = created["instance_id"]
        .as_str()
        .ok_or_else(|| CliError::Input("the broker named no consumer instance".into()))?
        .to_string();
    let base = format!("/consumers/{group}/instances/{instance}");
    let stop = stop_flag();
    let outcome = consume_in_group(client, &base, args, &stop);
    // Leave the group whatever happened, so its partitions move on at once.
    let left = client.delete(&base);
    outcome.and(left.map(|_| ()))
}

fn consume_in_group(
    client: &Client,
    base: &str,
    args: &ConsumeArgs,
    stop: &AtomicBool,
) -> Result<(), CliError> {
    client.send_json(
        "POST",
        &format!("{base}/subscription"),
        V2,
        &json!({"topics": [args.topic]}),
    )?;
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if args.max_messages.is_some_and(|m| printed >= m) {
            break;
        }
        if args
            .timeout_ms
            .is_some_and(|t| last_record.elapsed() >= Duration::from_millis(t))
        {
            break;
        }
        let records =
            client.get_accept(&format!("{base}/records?timeout={POLL_WAIT_MS}"), BINARY_V2)?;
        let mut done: BTreeMap<(String, i64), i64> = BTreeMap::new();
        for r in records.as_array().into_iter().flatten() {
            if args.max_messages.is_some_and(|m| printed >= m) {
                break;
            }
            let partition = r["partition"].as_i64().unwrap_or(0);
            if print_record(&mut stdout, partition as i32, r, args.format).is_err() {
                return Ok(());
            }
            printed += 1;
            last_record = Instant::now();
            done.insert(
                (args.topic.clone(), partition),
                r["offset"].as_i64().unwrap_or(0),
            );
        }
        if !done.is_empty() {
            // What was printed, and no more: the rest of a batch cut short by
            // --max-messages is left for the group's next reader.
            let offsets: Vec<Value> = done
                .iter()
                .map(|((topic, partition), offset)| {
                    json!({"topic": topic, "partition": partition, "offset": offset})
                })
                .collect();
            client.send_json(
                "POST",
                &format!("{base}/offsets"),
                V2,
                &json!({ "offsets": offsets }),
            )?;
        }
    }
    Ok(())
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .and_then(|s| decode_base64(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Writes one record; a closed stdout (`| head`) ends the consumer quietly.
fn print_record(
    out: &mut impl Write,
    partition: i32,
    r: &Value,
    format: OutputFormat,
) -> std::io::Result<()> {
    let key = text(&r["key"]);
    let value = text(&r["value"]);
    let (key, value) = (
        key.as_deref().unwrap_or("null"),
        value.as_deref().unwrap_or("null"),
    );
    match format {
        OutputFormat::Value => writeln!(out, "{value}")?,
        OutputFormat::KeyValue => writeln!(out, "{key}\t{value}")?,
        OutputFormat::Json => {
            let line = json!({
                "partition": partition,
                "offset": r["offset"],
                "timestamp": r["timestamp"],
                "key": text(&r["key"]),
                "value": text(&r["value"]),
            });
            writeln!(out, "{line}")?
        }
    }
    out.flush()
}
