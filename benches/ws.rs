//! WebSocket benchmark: `cargo bench --bench ws`.
//!
//! Starts a real broker (the `troupe` binary) and real WebSocket subscribers
//! (tungstenite, one thread each) on loopback, then:
//!
//! 1. **Latency**: a producer sends REST v2 requests of 100 records at a fixed rate;
//!    every subscriber of the topic is live at its end. Each record's latency is the
//!    time from the producer receiving the REST acknowledgement of its request to a
//!    subscriber receiving it (0 when the push arrived before the acknowledgement), and,
//!    beside it, from the request being sent. p50 / p99 / p99.9 over every delivery,
//!    for 1, 100 and 1000 subscribers. The baseline is the REST produce round trip
//!    itself (send → acknowledgement), measured in the same case.
//! 2. **Fan-out throughput**: 100 subscribers, producers as fast as they go; records
//!    delivered per second in total, and the bytes on the wire ÷ a plain loopback TCP
//!    stream's throughput measured in the same run.
//!
//! 3. **Slow readers (F3 of the fault targets, small form)**: the latency case with 10
//!    subscribers at 10k records/s, first alone, then beside 20 slow readers that take
//!    one message a second (JSON text frames, as a browser would). Prints the broker's
//!    RSS growth during each run and after the slow readers are gone, and the fast
//!    subscribers' p99 with 20 slow readers ÷ with none.
//!
//! Subscribers use binary records frames (`"frames": "binary"`), so the clients' own
//! decoding stays cheap and the figures are the broker's.
//!
//! Environment: `TROUPE_BENCH_SECONDS` (per case, default 5; the slow-reader runs take
//! twice that), `TROUPE_BENCH_DIR` (default `target/bench-data`), `TROUPE_BENCH_ONLY=slow`
//! (only the slow-reader case).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

mod support;
use support::{bench_settings, cluster_id, start_broker_with, Broker};

const VALUE_BYTES: usize = 100;
const RECORDS_PER_REQUEST: usize = 100;

fn connect(port: u16) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    let request = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .unwrap_or_else(|e| panic!("{e}"));
    let (ws, _) = tungstenite::client(request, stream).unwrap_or_else(|e| panic!("{e}"));
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap_or_else(|e| panic!("{e}"));
    ws
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    fn u16(&mut self) -> usize {
        self.take(2).iter().fold(0, |n, b| (n << 8) | *b as usize)
    }
    fn i32(&mut self) -> i64 {
        i32::from_be_bytes(self.take(4).try_into().unwrap_or_default()) as i64
    }
}

/// The sequence numbers of the records in a binary records frame (layout in
/// `web/src/ws/binary.rs`): each value starts with its record's number.
fn sequence_numbers(frame: &[u8], out: &mut Vec<u32>) {
    let mut c = Cursor(frame);
    c.take(1);
    let sub = c.u16();
    c.take(sub);
    let topic = c.u16();
    c.take(topic);
    c.take(4);
    let count = c.i32();
    for _ in 0..count {
        c.take(16);
        let key = c.i32();
        c.take(key.max(0) as usize);
        let value_len = c.i32();
        let value = c.take(value_len.max(0) as usize);
        out.push(u32::from_be_bytes(
            value[..4].try_into().unwrap_or_default(),
        ));
        for _ in 0..c.u16() {
            let name = c.u16();
            c.take(name);
            let v = c.i32();
            c.take(v.max(0) as usize);
        }
    }
}

/// One subscriber thread: subscribes at the end, waits at `ready`, then records
/// (sequence number, arrival) until `stop`.
fn subscriber(
    port: u16,
    topic: String,
    ready: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    keep_arrivals: bool,
    delivered: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Vec<(u32, Instant)>> {
    std::thread::spawn(move || {
        let mut ws = connect(port);
        let subscribe = json!({"type": "subscribe", "sub": "b", "topic": topic, "from": "end", "frames": "binary"});
        ws.send(Message::text(subscribe.to_string()))
            .unwrap_or_else(|e| panic!("{e}"));
        loop {
            match ws.read() {
                Ok(Message::Text(t)) if t.as_str().contains("\"subscribed\"") => break,
                Ok(Message::Text(t)) if t.as_str().contains("\"error\"") => panic!("{t}"),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("subscribe: {e}"),
            }
        }
        ready.wait();
        let mut arrivals = Vec::new();
        let mut seqs = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match ws.read() {
                Ok(Message::Binary(frame)) => {
                    let now = Instant::now();
                    seqs.clear();
                    sequence_numbers(&frame, &mut seqs);
                    delivered.fetch_add(seqs.len() as u64, Ordering::Relaxed);
                    if keep_arrivals {
                        arrivals.extend(seqs.iter().map(|s| (*s, now)));
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("subscriber: {e}"),
            }
        }
        arrivals
    })
}

/// `n` live subscribers of `topic`, all subscribed when `start` returns.
struct Fleet {
    stop: Arc<AtomicBool>,
    delivered: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Vec<(u32, Instant)>>>,
}

impl Fleet {
    fn start(port: u16, topic: &str, n: usize, keep_arrivals: bool) -> Fleet {
        let ready = Arc::new(Barrier::new(n + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(AtomicU64::new(0));
        let threads = (0..n)
            .map(|_| {
                subscriber(
                    port,
                    topic.to_string(),
                    ready.clone(),
                    stop.clone(),
                    keep_arrivals,
                    delivered.clone(),
                )
            })
            .collect();
        ready.wait();
        Fleet {
            stop,
            delivered,
            threads,
        }
    }
}

fn request_body(first_seq: u32) -> String {
    let records: Vec<serde_json::Value> = (0..RECORDS_PER_REQUEST as u32)
        .map(|i| {
            let mut value = vec![b'v'; VALUE_BYTES];
            value[..4].copy_from_slice(&(first_seq + i).to_be_bytes());
            json!({"value": base64::engine::general_purpose::STANDARD.encode(value)})
        })
        .collect();
    json!({ "records": records }).to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One latency case: `subscribers` live on `topic`, `rate` records/s for `seconds`.
/// Returns the p99 from acknowledgement to delivery and from sending to delivery.
fn latency_case(
    base: &str,
    port: u16,
    topic: &str,
    subscribers: usize,
    rate: usize,
    seconds: Duration,
) -> (Duration, Duration) {
    let Fleet {
        stop,
        delivered,
        threads,
    } = Fleet::start(port, topic, subscribers, true);
    let agent = ureq::AgentBuilder::new().build();
    let url = format!("{base}/topics/{topic}/partitions/0");
    let interval = Duration::from_secs_f64(RECORDS_PER_REQUEST as f64 / rate as f64);
    let requests = (seconds.as_secs_f64() / interval.as_secs_f64()) as usize;
    // (sent, acknowledged) per request.
    let mut times: Vec<(Instant, Instant)> = Vec::with_capacity(requests);
    let bodies: Vec<String> = (0..requests)
        .map(|r| request_body((r * RECORDS_PER_REQUEST) as u32))
        .collect();
    let start = Instant::now();
    for (r, body) in bodies.iter().enumerate() {
        let due = start + interval * r as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = Instant::now();
        agent
            .post(&url)
            .set("Content-Type", "application/vnd.kafka.binary.v2+json")
            .send_string(body)
            .unwrap_or_else(|e| panic!("produce: {e}"));
        times.push((sent, Instant::now()));
    }
    let produced = requests * RECORDS_PER_REQUEST;
    let achieved = produced as f64 / start.elapsed().as_secs_f64();
    // Let the last pushes arrive.
    let settle = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < (produced * subscribers) as u64
        && Instant::now() < settle
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut from_ack = Vec::with_capacity(produced * subscribers);
    let mut from_send = Vec::with_capacity(produced * subscribers);
    for t in threads {
        for (seq, arrived) in t.join().unwrap_or_default() {
            let Some((sent, acked)) = times.get(seq as usize / RECORDS_PER_REQUEST) else {
                continue;
            };
            from_ack.push(arrived.saturating_duration_since(*acked));
            from_send.push(arrived.saturating_duration_since(*sent));
        }
    }
    let mut round_trips: Vec<Duration> = times.iter().map(|(s, a)| *a - *s).collect();
    from_ack.sort();
    from_send.sort();
    round_trips.sort();
    let complete = from_ack.len() as f64 / (produced * subscribers) as f64;
    println!(
        "{:>5} subs {:>7.0} rec/s | ack->ws p50 {:>6.2} p99 {:>6.2} p99.9 {:>6.2} ms | send->ws p50 {:>6.2} p99 {:>6.2} ms | REST round trip p50 {:>5.2} p99 {:>5.2} ms | delivered {:.1}%",
        subscribers,
        achieved,
        ms(percentile(&from_ack, 0.5)),
        ms(percentile(&from_ack, 0.99)),
        ms(percentile(&from_ack, 0.999)),
        ms(percentile(&from_send, 0.5)),
        ms(percentile(&from_send, 0.99)),
        ms(percentile(&round_trips, 0.5)),
        ms(percentile(&round_trips, 0.99)),
        complete * 100.0
    );
    (percentile(&from_ack, 0.99), percentile(&from_send, 0.99))
}

/// `n` slow readers of `topic`: each subscribes at the end (JSON text frames) and
/// takes one message a second until `stop`.
fn slow_readers(
    port: u16,
    topic: &str,
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<u64>> {
    let ready = Arc::new(Barrier::new(n + 1));
    let threads = (0..n)
        .map(|_| {
            let (topic, ready, stop) = (topic.to_string(), ready.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut ws = connect(port);
                let subscribe =
                    json!({"type": "subscribe", "sub": "slow", "topic": topic, "from": "end"});
                ws.send(Message::text(subscribe.to_string()))
                    .unwrap_or_else(|e| panic!("{e}"));
                loop {
                    match ws.read() {
                        Ok(Message::Text(t)) if t.as_str().contains("\"subscribed\"") => break,
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e))
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => panic!("subscribe: {e}"),
                    }
                }
                ready.wait();
                let mut messages = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match ws.read() {
                        Ok(_) => {
                            messages += 1;
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        Err(tungstenite::Error::Io(e))
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(_) => break,
                    }
                }
                messages
            })
        })
        .collect();
    ready.wait();
    threads
}

/// The broker's RSS sampled every 100 ms until `stop`; returns the peak.
fn rss_peak(broker: &Broker, stop: &AtomicBool) -> u64 {
    let mut peak = broker.rss_bytes();
    while !stop.load(Ordering::Relaxed) {
        peak = peak.max(broker.rss_bytes());
        std::thread::sleep(Duration::from_millis(100));
    }
    peak
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// F3 in small form: 10 subscribers at 10k records/s, with 0 and with 20 slow readers.
fn slow_readers_case(broker: &Broker, port: u16, cluster: &str, seconds: Duration) {
    let agent = ureq::AgentBuilder::new().build();
    // A first run warms the broker up (connections, the first segments), so the
    // run without slow readers is not the one paying for it.
    agent
        .post(&format!("{}/v3/clusters/{cluster}/topics", broker.base))
        .send_json(json!({"topic_name": "slow-warmup", "partitions_count": 1}))
        .unwrap_or_else(|e| panic!("create topic: {e}"));
    print!("warm-up:               ");
    latency_case(
        &broker.base,
        port,
        "slow-warmup",
        10,
        10_000,
        Duration::from_secs(2),
    );
    let mut p99s = Vec::new();
    for slow in [0usize, 20] {
        let topic = format!("slow{slow}");
        agent
            .post(&format!("{}/v3/clusters/{cluster}/topics", broker.base))
            .send_json(json!({"topic_name": topic, "partitions_count": 1}))
            .unwrap_or_else(|e| panic!("create topic: {e}"));
        let before = broker.rss_bytes();
        let stop_slow = Arc::new(AtomicBool::new(false));
        let readers = slow_readers(port, &topic, slow, stop_slow.clone());
        let sampling = AtomicBool::new(false);
        let (p99, peak) = std::thread::scope(|s| {
            let sampler = s.spawn(|| rss_peak(broker, &sampling));
            print!("with {slow:>2} slow readers: ");
            let p99 = latency_case(&broker.base, port, &topic, 10, 10_000, seconds);
            sampling.store(true, Ordering::Relaxed);
            (p99, sampler.join().unwrap_or(0))
        });
        stop_slow.store(true, Ordering::Relaxed);
        let messages: u64 = readers.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        // The slow connections are closed now; give the broker a moment to let go.
        std::thread::sleep(Duration::from_secs(3));
        let after = broker.rss_bytes();
        println!(
            "    RSS {:.1} MiB before, peak +{:.1} MiB, {:+.1} MiB after the slow readers left ({messages} messages read by them)",
            mib(before),
            mib(peak.saturating_sub(before)),
            mib(after) - mib(before),
        );
        p99s.push(p99);
    }
    let ratio = |with: Duration, without: Duration| ms(with) / ms(without).max(0.001);
    println!(
        "slow readers: fast subscribers' p99 with 20 slow readers / with none: ack->ws {:.2} ({:.2} / {:.2} ms), send->ws {:.2} ({:.2} / {:.2} ms)",
        ratio(p99s[1].0, p99s[0].0),
        ms(p99s[1].0),
        ms(p99s[0].0),
        ratio(p99s[1].1, p99s[0].1),
        ms(p99s[1].1),
        ms(p99s[0].1),
    );
}

/// Plain loopback TCP: one writer, one reader, 64 KiB writes (bytes/s).
fn tcp_baseline(seconds: Duration) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    let chunk = vec![7u8; 64 * 1024];
    let start = Instant::now();
    while start.elapsed() < seconds {
        s.write_all(&chunk).unwrap_or_else(|e| panic!("{e}"));
    }
    drop(s);
    let total = reader.join().unwrap_or(0);
    total as f64 / start.elapsed().as_secs_f64()
}

fn fanout_case(base: &str, port: u16, topic: &str, subscribers: usize, seconds: Duration) {
    let Fleet {
        stop,
        delivered,
        threads,
    } = Fleet::start(port, topic, subscribers, false);
    let body = Arc::new(request_body(0));
    let produced = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + seconds;
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (body, produced) = (body.clone(), produced.clone());
            let url = format!("{base}/topics/{topic}/partitions/0");
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().build();
                while Instant::now() < deadline {
                    agent
                        .post(&url)
                        .set("Content-Type", "application/vnd.kafka.binary.v2+json")
                        .send_string(&body)
                        .unwrap_or_else(|e| panic!("produce: {e}"));
                    produced.fetch_add(RECORDS_PER_REQUEST as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for p in producers {
        let _ = p.join();
    }
    let measured = delivered.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let per_s = measured as f64 / elapsed.as_secs_f64();
    // A binary records frame carries each record in 30 + value bytes.
    let wire_bytes_s = per_s * (30 + VALUE_BYTES) as f64;
    let tcp = tcp_baseline(Duration::from_secs(2));
    println!(
        "fan-out {subscribers} subs: produced {:.0} rec/s, delivered {:.0} rec/s in total ({:.1} MB/s of records) | loopback TCP {:.0} MB/s | ratio {:.3}",
        produced.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        per_s,
        wire_bytes_s / 1e6,
        tcp / 1e6,
        wire_bytes_s / tcp
    );
}

fn main() {
    let (seconds, root) = bench_settings(5);
    println!(
        "troupe WebSocket benchmark: {VALUE_BYTES} B values, {RECORDS_PER_REQUEST} records per REST request, {} s per case, default flush (fsync before ack)\n",
        seconds.as_secs()
    );
    let broker = start_broker_with(&root.join("broker"), &["websocket.max.connections=2000"]);
    let port: u16 = broker
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {}", broker.base));
    let agent = ureq::AgentBuilder::new().build();
    let cluster = cluster_id(&broker.base);
    if std::env::var("TROUPE_BENCH_ONLY").as_deref() != Ok("slow") {
        let cases = [
            (1usize, 10_000usize),
            (100, 10_000),
            (1000, 10_000),
            (1000, 1_000),
        ];
        for (i, (subscribers, rate)) in cases.into_iter().enumerate() {
            let topic = format!("latency{i}");
            agent
                .post(&format!("{}/v3/clusters/{cluster}/topics", broker.base))
                .send_json(json!({"topic_name": topic, "partitions_count": 1}))
                .unwrap_or_else(|e| panic!("create topic: {e}"));
            latency_case(&broker.base, port, &topic, subscribers, rate, seconds);
        }
        agent
            .post(&format!("{}/v3/clusters/{cluster}/topics", broker.base))
            .send_json(json!({"topic_name": "fanout", "partitions_count": 1}))
            .unwrap_or_else(|e| panic!("create topic: {e}"));
        fanout_case(&broker.base, port, "fanout", 100, seconds);
    }
    slow_readers_case(&broker, port, &cluster, seconds * 2);
    drop(broker);
    let _ = std::fs::remove_dir_all(&root);
}
