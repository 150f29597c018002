//! Browser safety over the real binary: what a hostile web page can make the
//! operator's browser send — a cross-site form post, a no-preflight `text/plain`
//! produce, a DNS-rebinding request under the attacker's own host name, a WebSocket
//! from such a page — is refused before anything changes, while clients that are not
//! browsers (no `Origin`) and the broker's own pages keep working. A broker listening
//! beyond loopback says so loudly, in its log and to the dashboard.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::broker::*;

/// A request as a browser would send it: any headers, Host included. Returns the
/// status and the body parsed as JSON (or a string).
fn raw(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        request.push_str("Connection: close\r\n");
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).expect("read the answer");
        assert!(n > 0, "the connection closed before the headers ended");
        answer.extend_from_slice(&chunk[..n]);
    }
    let status: u16 = String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    // An accepted upgrade stays open: its status line is the answer.
    if status != 101 {
        stream.read_to_end(&mut answer).expect("read the body");
    }
    let text = String::from_utf8_lossy(&answer);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, body)
}

fn assert_refused(answer: (u16, Value), status: u16, code: i64) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error_code"], code, "{}", answer.1);
}

fn topic_names(b: &TestBroker) -> Vec<String> {
    let (status, body) = get(&b.v3("/topics"));
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["topic_name"].as_str().expect("topic_name").to_string())
        .collect()
}

fn v3_path(b: &TestBroker, path: &str) -> String {
    format!("/v3/clusters/{}{path}", b.cluster_id())
}

#[test]
fn a_cross_site_form_post_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "kept", 1);
    produce_v3(
        &b,
        "kept",
        &[json!({"value": {"type": "STRING", "data": "a"}})],
    );
    let evil = "http://evil.example";
    let form = "application/x-www-form-urlencoded";
    let create = v3_path(&b, "/topics");
    let body = r#"{"topic_name": "planted", "partitions_count": 1}"#;

    // What a plain HTML form on another site sends.
    assert_refused(
        raw(
            b.port,
            "POST",
            &create,
            &[("Origin", evil), ("Content-Type", form)],
            body,
        ),
        403,
        40301,
    );
    // Its fetch() twin, marked cross-site by the browser, and a JSON type.
    assert_refused(
        raw(
            b.port,
            "POST",
            &create,
            &[
                ("Sec-Fetch-Site", "cross-site"),
                ("Content-Type", "application/json"),
            ],
            body,
        ),
        403,
        40301,
    );
    // A sandboxed frame's opaque origin.
    assert_refused(
        raw(
            b.port,
            "POST",
            &create,
            &[("Origin", "null"), ("Content-Type", "application/json")],
            body,
        ),
        403,
        40301,
    );
    // A form with no Origin at all still sends a form type, which no route takes.
    assert_refused(
        raw(
            b.port,
            "POST",
            &create,
            &[("Content-Type", "text/plain")],
            body,
        ),
        415,
        41501,
    );
    assert_refused(
        raw(b.port, "POST", &create, &[("Content-Type", form)], body),
        415,
        41501,
    );
    assert!(!topic_names(&b).contains(&"planted".to_string()));

    // Retention cut to 1 ms, a group's offsets reset, a topic deleted: all refused.
    let config = v3_path(&b, "/topics/kept/configs/retention.ms");
    assert_refused(
        raw(
            b.port,
            "PUT",
            &config,
            &[("Origin", evil), ("Content-Type", "text/plain")],
            r#"{"value": "1"}"#,
        ),
        403,
        40301,
    );
    let (_, configs) = get(&b.v3("/topics/kept/configs/retention.ms"));
    assert_eq!(configs["value"], "604800000", "{configs}");
    assert_refused(
        raw(
            b.port,
            "POST",
            &v3_path(&b, "/consumer-groups/g/offsets:reset"),
            &[("Origin", evil), ("Content-Type", "text/plain")],
            r#"{"topic_name": "kept", "to": "latest"}"#,
        ),
        403,
        40301,
    );
    assert_refused(
        raw(
            b.port,
            "DELETE",
            &v3_path(&b, "/topics/kept"),
            &[("Origin", evil)],
            "",
        ),
        403,
        40301,
    );
    assert_refused(
        raw(
            b.port,
            "DELETE",
            &v3_path(&b, "/topics/kept"),
            &[("Sec-Fetch-Site", "same-site")],
            "",
        ),
        403,
        40301,
    );
    assert!(topic_names(&b).contains(&"kept".to_string()));
    assert_eq!(read_partition(&b, "kept", 0).len(), 1);

    // Reads stay open to the browser's same-origin policy (it keeps the answer from
    // the page); the broker's own pages write as before.
    let (status, _) = raw(
        b.port,
        "GET",
        &v3_path(&b, "/topics"),
        &[("Origin", evil)],
        "",
    );
    assert_eq!(status, 200);
    let own = format!("http://127.0.0.1:{}", b.port);
    let (status, created) = raw(
        b.port,
        "POST",
        &create,
        &[
            ("Origin", &own),
            ("Sec-Fetch-Site", "same-origin"),
            ("Content-Type", "application/json"),
        ],
        r#"{"topic_name": "from-the-dashboard", "partitions_count": 1}"#,
    );
    assert_eq!(status, 201, "{created}");
}

#[test]
fn a_text_plain_v2_produce_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "t", 1);
    let body = r#"{"records": [{"value": {"planted": true}}]}"#;
    // The no-preflight type a page can send, dressed up to look like the real one.
    for content_type in [
        "text/plain; x=vnd.kafka.json.v2+json",
        "text/plain; x=application/vnd.kafka.json.v2+json",
        "application/x-www-form-urlencoded; a=vnd.kafka.binary.v2+json",
        "application/json",
    ] {
        assert_refused(
            send("POST", &b.url("/topics/t"), content_type, body),
            415,
            41501,
        );
        assert_refused(
            send("POST", &b.url("/topics/t/partitions/0"), content_type, body),
            415,
            41501,
        );
    }
    // The right type from another site's page.
    assert_refused(
        raw(
            b.port,
            "POST",
            "/topics/t",
            &[
                ("Origin", "http://evil.example"),
                ("Content-Type", "application/vnd.kafka.json.v2+json"),
            ],
            body,
        ),
        403,
        40301,
    );
    assert!(read_partition(&b, "t", 0).is_empty());
    let (_, offsets) = get(&b.url("/topics/t/partitions/0/offsets"));
    assert_eq!(offsets["end_offset"], 0, "{offsets}");

    // A script with the exact type is fine.
    let (status, answer) = send(
        "POST",
        &b.url("/topics/t"),
        "application/vnd.kafka.json.v2+json",
        body,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(read_partition(&b, "t", 0).len(), 1);
}

#[test]
fn a_dns_rebinding_host_is_refused_for_http_and_the_websocket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(dir.path(), &["http.allowed.hosts=broker.internal"]);
    let evil_host = format!("evil.example:{}", b.port);
    let evil_origin = format!("http://{evil_host}");
    // The page's own name resolves to 127.0.0.1: to the browser it is same-origin.
    assert_refused(
        raw(b.port, "GET", "/v3/clusters", &[("Host", &evil_host)], ""),
        403,
        40302,
    );
    assert_refused(
        raw(
            b.port,
            "POST",
            &v3_path(&b, "/topics"),
            &[
                ("Host", &evil_host),
                ("Origin", &evil_origin),
                ("Content-Type", "application/json"),
            ],
            r#"{"topic_name": "planted"}"#,
        ),
        403,
        40302,
    );
    let upgrade = |host: &str, origin: &str| {
        raw(
            b.port,
            "GET",
            "/ws",
            &[
                ("Host", host),
                ("Origin", origin),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            "",
        )
    };
    assert_refused(upgrade(&evil_host, &evil_origin), 403, 40302);
    assert!(!topic_names(&b).contains(&"planted".to_string()));

    // The names the broker answers to.
    let port = b.port;
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("broker.internal:{port}"),
    ] {
        let (status, body) = raw(port, "GET", "/v3/clusters", &[("Host", &host)], "");
        assert_eq!(status, 200, "{host}: {body}");
    }
    let local = format!("localhost:{port}");
    let (status, _) = upgrade(&local, &format!("http://{local}"));
    assert_eq!(status, 101, "the dashboard's own WebSocket");
}

#[test]
fn clients_that_are_not_browsers_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start_with(dir.path(), &["http.allowed.origins=https://ops.example"]);
    // curl, scripts, the CLI: no Origin, exact types.
    create_topic(&b, "t", 1);
    let (status, body) = send(
        "POST",
        &b.v3("/topics/t/records"),
        "application/json; charset=utf-8",
        r#"{"value": {"type": "STRING", "data": "x"}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_refused(
        send(
            "POST",
            &b.v3("/topics/t/records"),
            "application/json; charset=iso-8859-1",
            r#"{"value": {"type": "STRING", "data": "y"}}"#,
        ),
        400,
        40002,
    );
    let (status, body) = send(
        "POST",
        &b.url("/topics/t"),
        "application/vnd.kafka.binary.v2+json",
        r#"{"records": [{"value": "eA=="}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    // No Content-Type at all is read as JSON, as Confluent's proxy does.
    let (status, body) = raw(
        b.port,
        "POST",
        &v3_path(&b, "/topics"),
        &[],
        r#"{"topic_name": "untyped", "partitions_count": 1}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, _) = delete(&b.v3("/topics/untyped"));
    assert_eq!(status, 204);
    // An origin the operator allowed.
    let (status, body) = raw(
        b.port,
        "POST",
        "/topics/t",
        &[
            ("Origin", "https://ops.example"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Content-Type", "application/vnd.kafka.binary.v2+json"),
        ],
        r#"{"records": [{"value": "eQ=="}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(read_partition(&b, "t", 0).len(), 3);
}

/// Starts the binary listening on `host`, returning its stderr lines up to the
/// "listening on" line and its port; the child is killed on drop.
pub struct Listening {
    child: std::process::Child,
    pub port: u16,
    log: Vec<String>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn listen_on(dir: &std::path::Path, host: &str) -> Listening {
    let mut child = Command::new(env!("CARGO_BIN_EXE_troupe"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--listen", &format!("{host}:0")])
        .args(["--kafka-listen", "127.0.0.1:0"])
        .args(["--override", "shutdown.timeout.ms=1000"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the troupe binary starts");
    let stderr = child.stderr.take();
    // Owned from here on, so a panic below still kills the child.
    let mut listening = Listening {
        child,
        port: 0,
        log: Vec::new(),
    };
    let stderr = stderr.expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while listening.port == 0 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the broker reports its port within 30 s");
        listening.port = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(0);
        listening.log.push(line);
    }
    listening
}

#[test]
fn listening_beyond_loopback_warns_in_the_log_and_on_the_dashboard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exposed = listen_on(dir.path(), "0.0.0.0");
    assert!(
        exposed
            .log
            .iter()
            .any(|l| l.contains("WARN") && l.contains("NO AUTHENTICATION")),
        "{:#?}",
        exposed.log
    );
    let (status, body) = get(&format!(
        "http://127.0.0.1:{}/dashboard/status",
        exposed.port
    ));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["exposed"], true, "{body}");
    drop(exposed);

    let dir = tempfile::tempdir().expect("tempdir");
    let local = listen_on(dir.path(), "127.0.0.1");
    assert!(
        !local.log.iter().any(|l| l.contains("NO AUTHENTICATION")),
        "{:#?}",
        local.log
    );
    let (_, body) = get(&format!("http://127.0.0.1:{}/dashboard/status", local.port));
    assert_eq!(body["exposed"], false, "{body}");
}

/// A request's status and header block (lowercased), as a browser would send it.
fn raw_headers(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let head = answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head)
}

/// CORS is closed by default (no page elsewhere can read an answer), and open to
/// exactly the origins `http.cors.allowed.origins` lists: their preflights are
/// answered, their reads and writes carry the CORS headers; others get none and
/// still may not write.
#[test]
fn cors_stays_closed_unless_an_origin_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let closed = TestBroker::start(dir.path());
    let app = "https://app.example";
    let (status, head) = raw_headers(closed.port, "GET", "/v3/clusters", &[("Origin", app)]);
    assert_eq!(status, 200);
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let (_, head) = raw_headers(
        closed.port,
        "OPTIONS",
        "/v3/clusters",
        &[("Origin", app), ("Access-Control-Request-Method", "POST")],
    );
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    drop(closed);

    let dir = tempfile::tempdir().unwrap();
    let open = TestBroker::start_with(
        dir.path(),
        &["http.cors.allowed.origins=https://app.example"],
    );
    let (status, head) = raw_headers(
        open.port,
        "OPTIONS",
        "/v3/clusters",
        &[
            ("Origin", app),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    );
    assert_eq!(status, 204, "{head}");
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    assert!(head.contains("access-control-allow-methods:"), "{head}");
    assert!(
        head.contains("access-control-allow-headers: authorization, content-type"),
        "{head}"
    );
    let (status, head) = raw_headers(open.port, "GET", "/v3/clusters", &[("Origin", app)]);
    assert_eq!(status, 200);
    assert!(
        head.contains("access-control-allow-origin: https://app.example"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-credentials: true"),
        "{head}"
    );
    // The listed origin may write (its browser says cross-site); another may not, and
    // hears nothing of CORS.
    let cluster = open.cluster_id();
    let body = r#"{"topic_name":"from-app"}"#;
    let (status, _) = raw(
        open.port,
        "POST",
        &format!("/v3/clusters/{cluster}/topics"),
        &[
            ("Origin", app),
            ("Sec-Fetch-Site", "cross-site"),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert_eq!(status, 201);
    let (status, answer) = raw(
        open.port,
        "POST",
        &format!("/v3/clusters/{cluster}/topics"),
        &[
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Content-Type", "application/json"),
        ],
        r#"{"topic_name":"from-evil"}"#,
    );
    assert_eq!(status, 403, "{answer}");
    let (_, head) = raw_headers(
        open.port,
        "GET",
        "/v3/clusters",
        &[("Origin", "https://evil.example")],
    );
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    let (_, topics) = get(&open.v3("/topics"));
    let names = topics.to_string();
    assert!(
        names.contains("from-app") && !names.contains("from-evil"),
        "{names}"
    );
    drop(open);

    // `*`: any page may read, without credentials, and write nothing.
    let dir = tempfile::tempdir().unwrap();
    let any = TestBroker::start_with(dir.path(), &["http.cors.allowed.origins=*"]);
    let (_, head) = raw_headers(
        any.port,
        "GET",
        "/v3/clusters",
        &[("Origin", "https://x.example")],
    );
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(!head.contains("access-control-allow-credentials"), "{head}");
    let cluster = any.cluster_id();
    let (status, _) = raw(
        any.port,
        "POST",
        &format!("/v3/clusters/{cluster}/topics"),
        &[
            ("Origin", "https://x.example"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Content-Type", "application/json"),
        ],
        r#"{"topic_name":"from-anywhere"}"#,
    );
    assert_eq!(status, 403);
}
