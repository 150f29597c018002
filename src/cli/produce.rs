//! `troupe produce`: the console producer. One record per line of stdin (or of
//! `--file`, with a progress bar), optionally `key<separator>value`; lines are sent in
//! batches over the v2 produce API (binary embedded format, so any bytes survive).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use super::client::{CliError, Client};
use troupe_web::records::{encode_base64, BINARY_V2};

/// Records per request, and bytes per request, before a batch is sent.
const BATCH_RECORDS: usize = 500;
const BATCH_BYTES: usize = 512 * 1024;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[arg(long)]
    pub topic: String,
    /// Split each line at the first occurrence of this into key and value.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Send every record to this partition (default: by key, or spread).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Read records from this file instead of stdin, showing progress.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

struct Totals {
    sent: u64,
    failed: u64,
}

pub fn run(client: &Client, args: ProduceArgs) -> Result<(), CliError> {
    let path = match args.partition {
        Some(p) => format!("/topics/{}/partitions/{p}", args.topic),
        None => format!("/topics/{}", args.topic),
    };
    let (reader, progress): (Box<dyn Read>, Option<ProgressBar>) = match &args.file {
        Some(file) => {
            let f = File::open(file)
                .map_err(|e| CliError::Input(format!("cannot open {}: {e}", file.display())))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            (Box::new(bar.wrap_read(f)), Some(bar))
        }
        None => (Box::new(std::io::stdin()), None),
    };
    let mut totals = Totals { sent: 0, failed: 0 };
    let mut batch: Vec<Value> = Vec::new();
    let mut batch_bytes = 0;
    for line in BufReader::new(reader).split(b'\n') {
        let mut line = line.map_err(|e| CliError::Input(format!("cannot read input: {e}")))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let (key, value) = split_key(&line, args.key_separator.as_deref());
        batch_bytes += line.len();
        let mut record = json!({ "value": encode_base64(value) });
        if let Some(key) = key {
            record["key"] = json!(encode_base64(key));
        }
        batch.push(record);
        if batch.len() >= BATCH_RECORDS || batch_bytes >= BATCH_BYTES {
            send(client, &path, std::mem::take(&mut batch), &mut totals)?;
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        send(client, &path, batch, &mut totals)?;
    }
    if let Some(bar) = progress {
        bar.finish_with_message(format!("{} records", totals.sent));
    }
    if totals.failed > 0 {
        return Err(CliError::Api {
            status: 500,
            code: 50002,
            message: format!(
                "{} of {} records failed",
                totals.failed,
                totals.sent + totals.failed
            ),
        });
    }
    Ok(())
}

fn split_key<'a>(line: &'a [u8], separator: Option<&str>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = separator.map(str::as_bytes).filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (Some(&line[..i]), &line[i + sep.len()..]),
        None => (None, line),
    }
}

fn send(
    client: &Client,
    path: &str,
    records: Vec<Value>,
    totals: &mut Totals,
) -> Result<(), CliError> {
    let answer = client
        .send_json("POST", path, BINARY_V2, &json!({ "records": records }))?
        .unwrap_or(Value::Null);
    for offset in answer["offsets"].as_array().into_iter().flatten() {
        if offset["error_code"].is_null() {
            totals.sent += 1;
        } else {
            totals.failed += 1;
            eprintln!(
                "troupe: record failed: {} ({})",
                offset["error"].as_str().unwrap_or("?"),
                offset["error_code"]
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn splits_at_the_first_separator() {
        assert_eq!(
            split_key(b"k:v:w", Some(":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(split_key(b"nokey", Some(":")), (None, &b"nokey"[..]));
        assert_eq!(split_key(b"a::b", Some("::")), (Some(&b"a"[..]), &b"b"[..]));
        assert_eq!(split_key(b"k:v", None), (None, &b"k:v"[..]));
    }
}
