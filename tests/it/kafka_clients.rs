//! Real Kafka clients for tests: Python scripts in `kafka_clients/` (confluent-kafka,
//! which is librdkafka, and kafka-python — the clients people point at a broker) run
//! as child processes. A script reports on stdout in JSON lines and takes commands on
//! stdin the same way; a test waits for the reports it needs, each with a deadline,
//! and the script is killed if the test ends first. Its stderr is kept (the last
//! lines go into a failure's message) and echoed with `TROUPE_TEST_LOG=1`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Lines of a script's stderr kept for a failure's message.
const STDERR_LINES_KEPT: usize = 40;

pub struct Script {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    reports: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Script {
    /// Runs `kafka_clients/{name}` with `args`.
    pub fn start(name: &str, args: &[&str]) -> Script {
        let path = format!(
            "{}/tests/it/kafka_clients/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 {path}: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let (tx, reports) = mpsc::channel();
        let label = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str(&line) {
                    Ok(report) => {
                        if tx.send(report).is_err() {
                            return;
                        }
                    }
                    Err(_) => eprintln!("[{label}] not a report: {line}"),
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let kept = stderr.clone();
        let label = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                if std::env::var_os("TROUPE_TEST_LOG").is_some() {
                    eprintln!("[{label}] {line}");
                }
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == STDERR_LINES_KEPT {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        Script {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child: Some(child),
            reports,
            stderr,
        }
    }

    /// Sends one command line.
    pub fn send(&mut self, command: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: {e}{}", self.name, self.stderr_tail()));
    }

    /// The first report (in order, dropping those before it) that `wanted` accepts,
    /// within `limit`.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        mut wanted: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        let mut last = Value::Null;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(report) if wanted(&report) => return report,
                Ok(report) => last = report,
                Err(e) => panic!(
                    "{}: no report of {what} within {limit:?} ({e}); last report {last}{}",
                    self.name,
                    self.stderr_tail()
                ),
            }
        }
    }

    /// The reports that have come and not been taken yet, without waiting.
    pub fn drain(&self) -> Vec<Value> {
        self.reports.try_iter().collect()
    }

    /// The next report of `event`, within `limit`.
    pub fn event(&self, event: &str, limit: Duration) -> Value {
        self.wait_for(event, limit, |r| r["event"] == event)
    }

    /// Closes stdin and waits (up to `limit`) for the script to exit with success.
    pub fn finish(mut self, limit: Duration) {
        drop(self.stdin.take());
        let mut child = self.child.take().expect("still running");
        let exit = crate::broker::wait_timeout(&mut child, limit);
        if exit.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(
            exit.is_some_and(|s| s.success()),
            "{} exited with {exit:?}{}",
            self.name,
            self.stderr_tail()
        );
    }

    fn stderr_tail(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        if kept.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = kept.iter().map(String::as_str).collect();
        format!("\n--- its stderr, last lines ---\n{}", lines.join("\n"))
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
