//! A broker child process for tests: started on port 0 in a temp dir (HTTP and Kafka
//! listeners both), its ports read from the "listening on" log lines, stopped with
//! SIGTERM or SIGKILL, killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub struct TestBroker {
    child: Option<Child>,
    pub port: u16,
    /// The Kafka listener's port.
    pub kafka_port: u16,
    /// Every line the broker has logged so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl TestBroker {
    pub fn start(dir: &Path) -> TestBroker {
        TestBroker::start_with(dir, &[])
    }

    pub fn start_with(dir: &Path, overrides: &[&str]) -> TestBroker {
        TestBroker::start_on(dir, 0, overrides)
    }

    /// Starts on `port` (0: an ephemeral one) — a restart on the port a browser page
    /// came from, say.
    pub fn start_on(dir: &Path, port: u16, overrides: &[&str]) -> TestBroker {
        TestBroker::start_on_ports(dir, port, 0, overrides)
    }

    /// Starts on `port` for HTTP and `kafka_port` for Kafka clients (0: ephemeral) —
    /// a restart where clients come back to the addresses they knew.
    pub fn start_on_ports(
        dir: &Path,
        port: u16,
        kafka_port: u16,
        overrides: &[&str],
    ) -> TestBroker {
        TestBroker::launch(
            Command::new(env!("CARGO_BIN_EXE_troupe")),
            dir,
            (port, kafka_port),
            overrides,
        )
    }

    /// Starts with `RLIMIT_NOFILE` set to `open_files` (soft and hard) by `prlimit`,
    /// which sets it and execs the broker (same pid).
    pub fn start_with_open_files(dir: &Path, open_files: u64, overrides: &[&str]) -> TestBroker {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={open_files}:{open_files}"))
            .arg(env!("CARGO_BIN_EXE_troupe"));
        TestBroker::launch(cmd, dir, (0, 0), overrides)
    }

    /// The broker's process id (for /proc/<pid>/…).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGSTOP (`pause: true`) or SIGCONT: the process freezes or goes on, its
    /// sockets open (a paused leader, a long GC pause).
    pub fn pause(&self, pause: bool) {
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(self.pid().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill {signal}");
    }

    fn launch(
        mut cmd: Command,
        dir: &Path,
        (port, kafka_port): (u16, u16),
        overrides: &[&str],
    ) -> TestBroker {
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kafka-listen")
            .arg(format!("127.0.0.1:{kafka_port}"));
        TestBroker::run(cmd, overrides)
    }

    /// `troupe serve` with exactly `args` (a node of a cluster, started from its
    /// config file), in `cwd`.
    pub fn serve_args(cwd: &Path, args: &[String], overrides: &[&str]) -> TestBroker {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_troupe"));
        cmd.current_dir(cwd).arg("serve").args(args);
        TestBroker::run(cmd, overrides)
    }

    fn run(mut cmd: Command, overrides: &[&str]) -> TestBroker {
        cmd.args([
            "--override",
            "shutdown.timeout.ms=1000",
            "--override",
            "http.workers=2",
        ])
        // TROUPE_TEST_RUST_LOG=debug (with TROUPE_TEST_LOG=1) to see more.
        .env(
            "RUST_LOG",
            std::env::var("TROUPE_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for o in overrides {
            cmd.args(["--override", o]);
        }
        let mut child = cmd.spawn().expect("the troupe binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            // The Kafka listener's line comes first.
            let mut kafka = 0;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // The first Kafka listener (PLAINTEXT, before SSL).
                if let Some(port) = logged_port(&line, "listening on kafka://") {
                    if kafka == 0 {
                        kafka = port;
                    }
                }
                if let Some(port) = logged_port(&line, "listening on http://")
                    .or_else(|| logged_port(&line, "listening on https://"))
                {
                    let _ = tx.send((port, kafka));
                }
                // A controller-only node opens no client listener.
                if line.contains("is a controller only") {
                    let _ = tx.send((0, 0));
                }
                if std::env::var_os("TROUPE_TEST_LOG").is_some() {
                    eprintln!("[broker] {line}");
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line);
                }
            }
        });
        let (port, kafka_port) = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(ports) => ports,
            Err(_) => {
                let _ = child.kill();
                panic!("the broker did not report its port within 60 s");
            }
        };
        TestBroker {
            child: Some(child),
            port,
            kafka_port,
            log,
        }
    }

    /// The lines logged so far that contain `needle`.
    pub fn logged(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.iter().filter(|l| l.contains(needle)).cloned().collect())
            .unwrap_or_default()
    }

    /// Whether a line containing `needle` is logged within 10 s (the log reaches the
    /// test through a pipe, a little after the broker writes it).
    pub fn logs_soon(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if !self.logged(needle).is_empty() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `bootstrap.servers` for Kafka clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// The broker's resident set size in bytes (`VmRSS` in `/proc/<pid>/status`).
    pub fn rss_bytes(&self) -> u64 {
        let Some(child) = self.child.as_ref() else {
            return 0;
        };
        std::fs::read_to_string(format!("/proc/{}/status", child.id()))
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

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            assert!(status.is_ok_and(|s| s.success()), "kill -TERM");
            let exit = wait_timeout(&mut child, Duration::from_secs(30))
                .expect("the broker exits after SIGTERM");
            assert!(exit.success(), "clean exit, got {exit:?}");
        }
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn cluster_id(&self) -> String {
        let (status, body) = get(&self.url("/v3/clusters"));
        assert_eq!(status, 200);
        body["data"][0]["cluster_id"]
            .as_str()
            .expect("a cluster id")
            .to_string()
    }

    /// A `/metrics` scrape, as Prometheus text.
    pub fn metrics(&self) -> String {
        ureq::get(&self.url("/metrics"))
            .call()
            .expect("/metrics answers")
            .into_string()
            .expect("/metrics is text")
    }

    pub fn v3(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/v3/clusters/{}{}",
            self.port,
            self.cluster_id(),
            path
        )
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

pub fn get(url: &str) -> (u16, Value) {
    answer(ureq::get(url).call())
}

pub fn get_accept(url: &str, accept: &str) -> (u16, Value) {
    answer(ureq::get(url).set("Accept", accept).call())
}

pub fn send(method: &str, url: &str, content_type: &str, body: &str) -> (u16, Value) {
    answer(
        ureq::request(method, url)
            .set("Content-Type", content_type)
            .send_string(body),
    )
}

pub fn post_json(url: &str, body: &Value) -> (u16, Value) {
    send("POST", url, "application/json", &body.to_string())
}

pub fn delete(url: &str) -> (u16, Value) {
    answer(ureq::delete(url).call())
}

/// Creates a topic and checks it was created.
pub fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let (status, body) = post_json(
        &b.v3("/topics"),
        &serde_json::json!({"topic_name": name, "partitions_count": partitions}),
    );
    assert_eq!(status, 201, "{body}");
}

/// All records of a partition, read with the direct partition read (binary format,
/// values decoded as UTF-8).
pub fn read_partition(
    b: &TestBroker,
    topic: &str,
    partition: i32,
) -> Vec<(i64, Option<String>, Option<String>)> {
    use base64::Engine;
    let decode = |v: &Value| {
        v.as_str().map(|s| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .expect("base64"),
            )
            .expect("utf-8")
        })
    };
    let mut out = Vec::new();
    let mut offset = 0i64;
    loop {
        let (status, body) = get_accept(
            &b.url(&format!(
                "/topics/{topic}/partitions/{partition}/records?offset={offset}&max_bytes=65536"
            )),
            "application/vnd.kafka.binary.v2+json",
        );
        assert_eq!(status, 200, "{body}");
        let records = body.as_array().expect("an array").clone();
        if records.is_empty() {
            return out;
        }
        for r in records {
            let o = r["offset"].as_i64().expect("offset");
            out.push((o, decode(&r["key"]), decode(&r["value"])));
            offset = o + 1;
        }
    }
}

pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Produces one v3 record (or several, as Confluent's streamed form) and checks each
/// was accepted (v3 reports failures in band, with HTTP 200).
pub fn produce_v3(b: &TestBroker, topic: &str, records: &[Value]) {
    let body: Vec<String> = records.iter().map(Value::to_string).collect();
    let (status, answer) = send(
        "POST",
        &b.v3(&format!("/topics/{topic}/records")),
        "application/json",
        &body.join("\n"),
    );
    assert_eq!(status, 200, "{answer}");
    let reports = v3_reports(&answer);
    assert_eq!(reports.len(), records.len(), "{answer}");
    for r in reports {
        assert_eq!(r["error_code"], 200, "{r}");
        if let Err(e) = crate::openapi::check_produce_report("produce report", &r) {
            panic!("not Confluent's ProduceResponse: {e}: {r}");
        }
    }
}

/// The reports of a v3 produce answer: one object, or one JSON line per record.
pub fn v3_reports(answer: &Value) -> Vec<Value> {
    match answer {
        Value::String(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("each report is JSON"))
            .collect(),
        other => vec![other.clone()],
    }
}

/// The port in a "listening on …" log line after `marker`.
fn logged_port(line: &str, marker: &str) -> Option<u16> {
    let rest = line.split(marker).nth(1)?;
    let address = rest
        .split(|c: char| !c.is_ascii_digit() && c != ':' && c != '.')
        .next()?;
    address.rsplit(':').next()?.parse().ok()
}
