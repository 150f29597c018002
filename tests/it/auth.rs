//! Authentication (issue 16): users with SCRAM credentials in the cluster metadata,
//! managed over REST (`/v3/clusters/{c}/users`); SASL/SCRAM-SHA-256/512 and PLAIN on a
//! `SASL_PLAINTEXT` Kafka listener, with confluent-kafka and kafka-python; HTTP Basic
//! (`authentication.method=BASIC`) on every path but `/health`, the WebSocket
//! upgrade included; failures slowed down; secrets never answered or logged.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::{base64_encode, TestBroker};
use crate::kafka::python;
use crate::ws::WsClient;

pub const ADMIN: (&str, &str) = ("admin", "admin-secret");

/// A broker whose HTTP listener wants Basic and whose only Kafka listener is
/// SASL_PLAINTEXT, with `admin` made at startup (`--add-scram`).
pub fn secured_broker(dir: &Path) -> TestBroker {
    secured_broker_with(dir, &[])
}

/// [`secured_broker`] with more `--override`s.
pub fn secured_broker_with(dir: &Path, overrides: &[&str]) -> TestBroker {
    let data = dir.join("data");
    let args = vec![
        "--data-dir".to_string(),
        data.display().to_string(),
        "--add-scram".to_string(),
        format!("SCRAM-SHA-256=[name={},password={}]", ADMIN.0, ADMIN.1),
        "--add-scram".to_string(),
        format!("SCRAM-SHA-512=[name={},password={}]", ADMIN.0, ADMIN.1),
    ];
    let mut all = vec![
        "listeners=http://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "authentication.method=BASIC",
    ];
    all.extend_from_slice(overrides);
    TestBroker::serve_args(dir, &args, &all)
}

pub fn basic((user, password): (&str, &str)) -> String {
    format!(
        "Basic {}",
        base64_encode(format!("{user}:{password}").as_bytes())
    )
}

/// A request with `user`'s credentials (none: `None`): status and JSON body.
pub fn call(
    method: &str,
    url: &str,
    user: Option<(&str, &str)>,
    body: Option<&Value>,
) -> (u16, Value, Option<String>) {
    call_typed(method, url, user, body, "application/json")
}

/// [`call`] with a body of `content_type`.
pub fn call_typed(
    method: &str,
    url: &str,
    user: Option<(&str, &str)>,
    body: Option<&Value>,
    content_type: &str,
) -> (u16, Value, Option<String>) {
    let mut request = ureq::request(method, url).timeout(Duration::from_secs(30));
    if let Some(user) = user {
        request = request.set("Authorization", &basic(user));
    }
    let result = match body {
        Some(b) => request
            .set("Content-Type", content_type)
            .send_string(&b.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let challenge = response.header("WWW-Authenticate").map(str::to_string);
    let text = response.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        challenge,
    )
}

fn users_url(b: &TestBroker, cluster: &str, rest: &str) -> String {
    b.url(&format!("/v3/clusters/{cluster}/users{rest}"))
}

pub fn cluster_id(b: &TestBroker) -> String {
    let (status, body, _) = call("GET", &b.url("/v3/clusters"), Some(ADMIN), None);
    assert_eq!(status, 200, "{body}");
    body["data"][0]["cluster_id"]
        .as_str()
        .expect("a cluster id")
        .to_string()
}

pub fn create_user(b: &TestBroker, cluster: &str, name: &str, password: &str) {
    let (status, body, _) = call(
        "POST",
        &users_url(b, cluster, ""),
        Some(ADMIN),
        Some(&json!({ "user_name": name, "password": password })),
    );
    assert_eq!(status, 201, "{body}");
}

pub fn create_topic_as_admin(b: &TestBroker, cluster: &str, name: &str) {
    let (status, body, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/topics")),
        Some(ADMIN),
        Some(&json!({ "topic_name": name, "partitions_count": 1 })),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn kafka_clients_authenticate_with_scram_and_plain_and_wrong_passwords_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = secured_broker(dir.path());
    let cluster = cluster_id(&b);
    create_user(&b, &cluster, "alice", "alice-pw");
    create_topic_as_admin(&b, &cluster, "secured");

    // confluent-kafka: produce with SCRAM-SHA-512, read back with SCRAM-SHA-256;
    // a wrong password gets an authentication error and nothing else.
    let out = python(
        &b,
        r#"
from confluent_kafka import Producer, Consumer, KafkaException
def conf(mechanism, password):
    return {'bootstrap.servers': BOOTSTRAP, 'security.protocol': 'SASL_PLAINTEXT',
            'sasl.mechanisms': mechanism, 'sasl.username': 'alice', 'sasl.password': password}
p = Producer(conf('SCRAM-SHA-512', 'alice-pw'))
for i in range(5):
    p.produce('secured', value=f'v{i}'.encode())
left = p.flush(30)
c = Consumer({**conf('SCRAM-SHA-256', 'alice-pw'), 'group.id': 'g1', 'auto.offset.reset': 'earliest'})
c.subscribe(['secured'])
got = []
import time
deadline = time.time() + 30
while len(got) < 5 and time.time() < deadline:
    m = c.poll(1)
    if m is not None and m.error() is None:
        got.append(m.value().decode())
c.close()
errors = []
bad = Producer({**conf('SCRAM-SHA-256', 'wrong'), 'error_cb': lambda e: errors.append(str(e))})
bad.produce('secured', value=b'never')
bad.poll(3)
unsent = bad.flush(2)
print(json.dumps({'left': left, 'got': got, 'errors': errors, 'unsent': unsent}))
"#,
    );
    assert_eq!(out["left"], 0, "{out}");
    assert_eq!(out["got"], json!(["v0", "v1", "v2", "v3", "v4"]), "{out}");
    assert_eq!(
        out["unsent"], 1,
        "the wrong password's record stays unsent: {out}"
    );
    assert!(
        out["errors"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains("uthentication")))),
        "{out}"
    );

    // kafka-python: PLAIN and SCRAM-SHA-256, each reading what is there.
    let out = python(
        &b,
        r#"
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
result = {}
for mechanism in ['PLAIN', 'SCRAM-SHA-256']:
    args = dict(bootstrap_servers=BOOTSTRAP, security_protocol='SASL_PLAINTEXT',
                sasl_mechanism=mechanism, sasl_plain_username='alice', sasl_plain_password='alice-pw')
    producer = KafkaProducer(**args)
    producer.send('secured', f'from {mechanism}'.encode()).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer('secured', auto_offset_reset='earliest', consumer_timeout_ms=5000, **args)
    result[mechanism] = [m.value.decode() for m in consumer]
    consumer.close()
try:
    KafkaProducer(bootstrap_servers=BOOTSTRAP, security_protocol='SASL_PLAINTEXT', sasl_mechanism='PLAIN',
                  sasl_plain_username='alice', sasl_plain_password='nope', max_block_ms=5000)
    result['wrong'] = 'connected'
except Exception as e:
    result['wrong'] = type(e).__name__
print(json.dumps(result))
"#,
    );
    assert_eq!(
        out["PLAIN"],
        json!(["v0", "v1", "v2", "v3", "v4", "from PLAIN"]),
        "{out}"
    );
    assert_eq!(
        out["SCRAM-SHA-256"],
        json!([
            "v0",
            "v1",
            "v2",
            "v3",
            "v4",
            "from PLAIN",
            "from SCRAM-SHA-256"
        ]),
        "{out}"
    );
    assert_ne!(out["wrong"], "connected", "{out}");

    assert!(b.logs_soon("authenticated as User:alice"));
    assert!(b.logs_soon("authentication failed"));
    // No password reaches the log, not even a wrong one.
    for secret in ["alice-pw", "admin-secret", "nope"] {
        assert!(b.logged(secret).is_empty(), "{secret} was logged");
    }
}

/// A raw Kafka frame: length, API key, version, correlation id, client id, body.
fn frame(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut inner = Vec::new();
    inner.extend_from_slice(&key.to_be_bytes());
    inner.extend_from_slice(&version.to_be_bytes());
    inner.extend_from_slice(&7i32.to_be_bytes());
    inner.extend_from_slice(&(-1i16).to_be_bytes());
    inner.extend_from_slice(body);
    let mut out = (inner.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&inner);
    out
}

/// Whether the broker closed the connection (EOF) within a few seconds.
fn closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout set");
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_sasl_listener_serves_nothing_before_authentication_and_caps_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let b = secured_broker(dir.path());
    let addr = b.bootstrap();

    // ApiVersions is answered before authenticating.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&frame(18, 0, &[])).unwrap();
    let mut length = [0u8; 4];
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.read_exact(&mut length).unwrap();
    assert!(i32::from_be_bytes(length) > 8);

    // Metadata v1 (all topics) before authenticating: the connection is closed.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&frame(3, 1, &(-1i32).to_be_bytes())).unwrap();
    assert!(
        closed(&mut s),
        "Metadata before SASL must close the connection"
    );

    // A frame above 512 KiB before authenticating: closed on its length alone,
    // before its bytes are read (none of them is sent).
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&(600 * 1024i32).to_be_bytes()).unwrap();
    assert!(
        closed(&mut s),
        "an oversized pre-authentication frame must close it"
    );
    assert!(
        b.logs_soon("sasl.server.max.receive.size, before authenticating"),
        "the reason is logged"
    );

    // SaslAuthenticate before SaslHandshake: ILLEGAL_SASL_STATE, then closed.
    let mut s = TcpStream::connect(&addr).unwrap();
    // v0 body: auth_bytes (INT32 length + bytes).
    let mut body = 3i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"abc");
    s.write_all(&frame(36, 0, &body)).unwrap();
    s.read_exact(&mut length).unwrap();
    let mut answer = vec![0u8; i32::from_be_bytes(length) as usize];
    s.read_exact(&mut answer).unwrap();
    // correlation id, then error_code.
    assert_eq!(
        i16::from_be_bytes([answer[4], answer[5]]),
        34,
        "ILLEGAL_SASL_STATE"
    );
    assert!(closed(&mut s));

    // The broker still serves.
    let (status, _, _) = call("GET", &b.url("/v3/clusters"), Some(ADMIN), None);
    assert_eq!(status, 200);
}

#[test]
fn http_basic_guards_every_path_but_health_and_slows_repeated_failures() {
    let dir = tempfile::tempdir().unwrap();
    let b = secured_broker(dir.path());
    let cluster = cluster_id(&b);
    for path in [
        "/v3/clusters".to_string(),
        format!("/v3/clusters/{cluster}/topics"),
        format!("/v3/clusters/{cluster}/users"),
        "/topics".to_string(),
        "/metrics".to_string(),
        "/".to_string(),
    ] {
        let (status, body, challenge) = call("GET", &b.url(&path), None, None);
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error_code"], 40101, "{path}: {body}");
        assert!(
            challenge.is_some_and(|c| c.starts_with("Basic")),
            "{path}: a Basic challenge"
        );
        let (status, _, _) = call("GET", &b.url(&path), Some(ADMIN), None);
        assert_eq!(status, 200, "{path} with the admin's credentials");
    }
    let (status, _, _) = call("GET", &b.url("/health"), None, None);
    assert_eq!(status, 200, "/health is open");
    // A write without credentials changes nothing.
    let (status, _, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/topics")),
        None,
        Some(&json!({ "topic_name": "sneaky" })),
    );
    assert_eq!(status, 401);
    let (_, topics, _) = call(
        "GET",
        &b.url(&format!("/v3/clusters/{cluster}/topics")),
        Some(ADMIN),
        None,
    );
    assert!(!topics.to_string().contains("sneaky"));

    // The WebSocket upgrade: refused without credentials, served with them.
    match WsClient::try_connect_with(&b, &[]) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        Err(e) => panic!("expected a 401, got {e}"),
        Ok(_) => panic!("the upgrade was served without credentials"),
    }
    let auth = basic(ADMIN);
    let mut ws = WsClient::try_connect_with(&b, &[("Authorization", &auth)])
        .expect("the upgrade with credentials");
    create_topic_as_admin(&b, &cluster, "live");
    ws.send(json!({"type": "subscribe", "sub": "s", "topic": "live", "from": "beginning"}));
    ws.expect("subscribed", Instant::now() + Duration::from_secs(10));
    let (status, body, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/topics/live/records")),
        Some(ADMIN),
        Some(&json!({"value": {"type": "JSON", "data": "hello"}})),
    );
    assert_eq!(status, 200, "{body}");
    let received = ws.collect(
        "s",
        1,
        Instant::now() + Duration::from_secs(10),
        &mut Vec::new(),
    );
    assert_eq!(received.values().map(Vec::len).sum::<usize>(), 1);

    // Wrong passwords from one address: each answer waits longer (100 ms, 200 ms,
    // 400 ms, 800 ms); the right one is answered at once and resets the count.
    let wrong = ("admin", "not-it");
    let mut waits = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let (status, _, _) = call("GET", &b.url("/v3/clusters"), Some(wrong), None);
        assert_eq!(status, 401);
        waits.push(started.elapsed());
    }
    assert!(waits[0] >= Duration::from_millis(100), "{waits:?}");
    assert!(waits[3] >= Duration::from_millis(800), "{waits:?}");
    assert!(waits[3] > waits[0] * 4, "{waits:?}");
    let started = Instant::now();
    let (status, _, _) = call("GET", &b.url("/v3/clusters"), Some(ADMIN), None);
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(500));
    // A success does not reset the pace (one account must not help guess another's).
    let started = Instant::now();
    call("GET", &b.url("/v3/clusters"), Some(wrong), None);
    let after_success = started.elapsed();
    assert!(
        after_success >= Duration::from_millis(1600),
        "the fifth failure waits 1.6 s: {after_success:?}"
    );
    assert!(b.logged("not-it").is_empty(), "a wrong password was logged");
}

#[test]
fn users_are_managed_over_rest_and_the_cli_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = secured_broker(dir.path());
    let cluster = cluster_id(&b);
    let url = |rest: &str| users_url(&b, &cluster, rest);

    let (status, created, _) = call(
        "POST",
        &url(""),
        Some(ADMIN),
        Some(
            &json!({"user_name": "bob", "password": "bob-pw", "mechanisms": ["SCRAM-SHA-512"], "iterations": 8192}),
        ),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "KafkaUser");
    assert_eq!(
        created["credentials"],
        json!([{"mechanism": "SCRAM-SHA-512", "iterations": 8192}])
    );
    // Nothing of the password or the keys comes back.
    let text = created.to_string();
    for secret in ["bob-pw", "salt", "stored_key", "server_key", "password"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    // bob can use it.
    let (status, _, _) = call("GET", &b.url("/v3/clusters"), Some(("bob", "bob-pw")), None);
    assert_eq!(status, 200);

    // Refusals: a second bob, bad iterations, an empty password, a name with ':',
    // an unknown mechanism, malformed JSON, an unknown user.
    let refusals = [
        (json!({"user_name": "bob", "password": "x"}), 409, 40908),
        (
            json!({"user_name": "carol", "password": "x", "iterations": 100}),
            400,
            40002,
        ),
        (json!({"user_name": "carol", "password": ""}), 400, 40002),
        (json!({"user_name": "ca:rol", "password": "x"}), 400, 40002),
        (
            json!({"user_name": "carol", "password": "x", "mechanisms": ["MD5"]}),
            400,
            40002,
        ),
        (
            json!({"user_name": "carol", "password": "x", "salt": "y"}),
            400,
            40002,
        ),
    ];
    for (body, status, code) in refusals {
        let (got, answer, _) = call("POST", &url(""), Some(ADMIN), Some(&body));
        assert_eq!(
            (got, answer["error_code"].as_i64()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    let (status, answer) = {
        let r = ureq::post(&url(""))
            .set("Authorization", &basic(ADMIN))
            .set("Content-Type", "application/json")
            .send_string("{\"user_name\": ");
        match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                (r.status(), r.into_json::<Value>().unwrap_or(Value::Null))
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(status, 400, "{answer}");
    let (status, answer, _) = call("GET", &url("/carol"), Some(ADMIN), None);
    assert_eq!((status, answer["error_code"].as_i64()), (404, Some(40404)));
    let (_, listed, _) = call("GET", &url(""), Some(ADMIN), None);
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["user_name"].as_str())
        .collect();
    assert_eq!(names, ["admin", "bob"]);

    // A new password: the old one stops working at once.
    let (status, _, _) = call(
        "PUT",
        &url("/bob"),
        Some(ADMIN),
        Some(&json!({"password": "bob-new"})),
    );
    assert_eq!(status, 200);
    let (status, _, _) = call("GET", &b.url("/v3/clusters"), Some(("bob", "bob-pw")), None);
    assert_eq!(status, 401);
    let (status, _, _) = call(
        "GET",
        &b.url("/v3/clusters"),
        Some(("bob", "bob-new")),
        None,
    );
    assert_eq!(status, 200);

    // The CLI: list and describe show mechanisms, never secrets; create reads the
    // password from stdin.
    let troupe = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_troupe"))
            .args(["--bootstrap-server", &b.url("")])
            .args(args)
            .env("TROUPE_USER", format!("{}:{}", ADMIN.0, ADMIN.1))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("troupe runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = troupe(
        &["users", "create", "dave", "--password-stdin"],
        "dave-pw\n",
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, _) = troupe(&["users", "list"], "");
    assert_eq!(code, Some(0));
    assert!(
        out.contains("dave") && out.contains("SCRAM-SHA-256 (iterations 4096)"),
        "{out}"
    );
    assert!(!out.contains("dave-pw"));
    let (status, _, _) = call(
        "GET",
        &b.url("/v3/clusters"),
        Some(("dave", "dave-pw")),
        None,
    );
    assert_eq!(status, 200, "the CLI's user can log in");
    let (code, _, err) = troupe(&["users", "create", "dave", "--password", "x"], "");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("40908"), "{err}");

    // Deleting one mechanism, then the user.
    let (status, _, _) = call(
        "DELETE",
        &url("/dave?mechanism=SCRAM-SHA-512"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 204);
    let (_, dave, _) = call("GET", &url("/dave"), Some(ADMIN), None);
    assert_eq!(
        dave["credentials"],
        json!([{"mechanism": "SCRAM-SHA-256", "iterations": 4096}])
    );
    let (code, _, err) = troupe(&["users", "delete", "dave"], "");
    assert_eq!(code, Some(0), "{err}");
    let (status, _, _) = call(
        "GET",
        &b.url("/v3/clusters"),
        Some(("dave", "dave-pw")),
        None,
    );
    assert_eq!(status, 401, "a deleted user is refused");
    let (status, _, _) = call("DELETE", &url("/dave"), Some(ADMIN), None);
    assert_eq!(status, 404);

    // Users are metadata: they survive a restart, and --add-scram does not reset a
    // password changed since.
    let (status, _, _) = call(
        "PUT",
        &url("/admin"),
        Some(ADMIN),
        Some(&json!({"password": "admin-rotated"})),
    );
    assert_eq!(status, 200);
    b.stop();
    let b = secured_broker(dir.path());
    let (status, _, _) = call(
        "GET",
        &b.url("/v3/clusters"),
        Some(("bob", "bob-new")),
        None,
    );
    assert_eq!(status, 200, "bob survives the restart");
    let (status, _, _) = call("GET", &b.url("/v3/clusters"), Some(ADMIN), None);
    assert_eq!(status, 401, "the bootstrap password does not come back");
    let (status, _, _) = call(
        "GET",
        &b.url("/v3/clusters"),
        Some(("admin", "admin-rotated")),
        None,
    );
    assert_eq!(status, 200);
    for secret in ["bob-pw", "bob-new", "dave-pw", "admin-rotated"] {
        assert!(b.logged(secret).is_empty(), "{secret} was logged");
    }
}

/// Kafka's own user APIs (KIP-554), through confluent-kafka's AdminClient over SASL:
/// describe, create with the client's salted password, log in as the new user,
/// delete; and the per-user refusals.
#[test]
fn kafka_admin_clients_describe_and_alter_scram_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let b = secured_broker(dir.path());
    let out = python(
        &b,
        r#"
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
    UserScramCredentialUpsertion, UserScramCredentialDeletion)
from confluent_kafka import Producer
base = {'bootstrap.servers': BOOTSTRAP, 'security.protocol': 'SASL_PLAINTEXT',
        'sasl.mechanisms': 'SCRAM-SHA-512', 'sasl.username': 'admin', 'sasl.password': 'admin-secret'}
a = AdminClient(base)
def outcome(futures):
    out = {}
    for user, f in futures.items():
        try:
            r = f.result(30)
            out[user] = 'ok' if r is None else sorted([str(c.mechanism).split('.')[-1], c.iterations] for c in r.scram_credential_infos)
        except Exception as e:
            out[user] = e.args[0].name() if e.args and hasattr(e.args[0], 'name') else str(e)
    return out
result = {}
result['admin'] = outcome(a.describe_user_scram_credentials(['admin']))
result['create'] = outcome(a.alter_user_scram_credentials([UserScramCredentialUpsertion(
    'carol', ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b'carol-pw')]))
result['carol'] = outcome(a.describe_user_scram_credentials(['carol']))
p = Producer({**base, 'sasl.mechanisms': 'SCRAM-SHA-256', 'sasl.username': 'carol', 'sasl.password': 'carol-pw'})
md = p.list_topics(timeout=10)
result['carol_connected'] = len(md.brokers) > 0
result['bad'] = outcome(a.alter_user_scram_credentials([
    UserScramCredentialUpsertion('dave', ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b'x'),
    UserScramCredentialDeletion('nobody', ScramMechanism.SCRAM_SHA_512)]))
result['delete'] = outcome(a.alter_user_scram_credentials([UserScramCredentialDeletion('carol', ScramMechanism.SCRAM_SHA_256)]))
result['gone'] = outcome(a.describe_user_scram_credentials(['carol']))
print(json.dumps(result))
"#,
    );
    assert_eq!(
        out["admin"]["admin"],
        json!([["SCRAM_SHA_256", 4096], ["SCRAM_SHA_512", 4096]]),
        "{out}"
    );
    assert_eq!(out["create"]["carol"], "ok", "{out}");
    assert_eq!(
        out["carol"]["carol"],
        json!([["SCRAM_SHA_256", 8192]]),
        "{out}"
    );
    assert_eq!(out["carol_connected"], true, "{out}");
    assert!(b.logs_soon("authenticated as User:carol"));
    assert_eq!(out["bad"]["dave"], "UNACCEPTABLE_CREDENTIAL", "{out}");
    assert_eq!(out["bad"]["nobody"], "RESOURCE_NOT_FOUND", "{out}");
    assert_eq!(out["delete"]["carol"], "ok", "{out}");
    assert_eq!(out["gone"]["carol"], "RESOURCE_NOT_FOUND", "{out}");
    // The REST view agrees.
    let cluster = cluster_id(&b);
    let (status, _, _) = call("GET", &users_url(&b, &cluster, "/carol"), Some(ADMIN), None);
    assert_eq!(status, 404);
}

/// Until the authorizer decides everything, users and ACLs are managed only by
/// authenticated users, and only by `super.users` when it is set: an
/// unauthenticated PLAINTEXT Kafka listener (or the inter-broker one) cannot reset a
/// password or touch ACLs, nor can a user who is not a super user.
#[test]
fn only_super_users_manage_users_and_acls_and_never_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let args = vec![
        "--data-dir".to_string(),
        dir.path().join("data").display().to_string(),
        "--add-scram".to_string(),
        format!("SCRAM-SHA-256=[name={},password={}]", ADMIN.0, ADMIN.1),
    ];
    let b = TestBroker::serve_args(
        dir.path(),
        &args,
        &[
            "listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            "authentication.method=BASIC",
            "super.users=User:admin",
        ],
    );
    let cluster = cluster_id(&b);
    create_user(&b, &cluster, "alice", "alice-pw");
    // Over PLAINTEXT (no authentication): refused, nothing changes.
    let out = python(
        &b,
        r#"
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
    UserScramCredentialUpsertion, AclBinding, ResourceType, ResourcePatternType, AclOperation,
    AclPermissionType)
a = AdminClient({'bootstrap.servers': BOOTSTRAP})
def code(f):
    try:
        f.result(30); return 'ok'
    except Exception as e:
        return e.args[0].name() if e.args and hasattr(e.args[0], 'name') else str(e)
reset = [code(f) for f in a.alter_user_scram_credentials([UserScramCredentialUpsertion(
    'admin', ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b'owned')]).values()]
acl = [code(f) for f in a.create_acls([AclBinding(ResourceType.TOPIC, 't', ResourcePatternType.LITERAL,
    'User:x', '*', AclOperation.READ, AclPermissionType.ALLOW)]).values()]
print(json.dumps({'reset': reset, 'acl': acl}))
"#,
    );
    assert_eq!(
        out["reset"],
        json!(["CLUSTER_AUTHORIZATION_FAILED"]),
        "{out}"
    );
    assert_eq!(out["acl"], json!(["CLUSTER_AUTHORIZATION_FAILED"]), "{out}");
    let (status, _, _) = call("GET", &b.url("/v3/clusters"), Some(ADMIN), None);
    assert_eq!(status, 200, "the admin's password is unchanged");
    // alice is authenticated but not a super user.
    let alice = ("alice", "alice-pw");
    let (status, body, _) = call("GET", &users_url(&b, &cluster, ""), Some(alice), None);
    assert_eq!(
        (status, body["error_code"].as_i64()),
        (403, Some(40301)),
        "{body}"
    );
    let (status, _, _) = call(
        "PUT",
        &users_url(&b, &cluster, "/admin"),
        Some(alice),
        Some(&json!({"password": "owned"})),
    );
    assert_eq!(status, 403);
    let acls = b.url(&format!("/v3/clusters/{cluster}/acls"));
    assert_eq!(call("GET", &acls, Some(alice), None).0, 403);
    assert_eq!(call("GET", &acls, Some(ADMIN), None).0, 200);
    // alice may still do what every authenticated user may (no ACLs are enforced yet).
    assert_eq!(
        call("GET", &b.url("/v3/clusters"), Some(alice), None).0,
        200
    );
}

/// A dashboard session ends when its user's password changes.
#[test]
fn a_new_password_ends_the_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let b = secured_broker(dir.path());
    let cluster = cluster_id(&b);
    create_user(&b, &cluster, "sam", "sam-pw");
    let login = ureq::post(&b.url("/login"))
        .set("Content-Type", "application/json")
        .send_string(r#"{"user":"sam","password":"sam-pw"}"#)
        .expect("logged in");
    let cookie = login
        .header("Set-Cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let with_cookie = || match ureq::get(&b.url("/v3/clusters"))
        .set("Cookie", &cookie)
        .call()
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(with_cookie(), 200);
    let (status, _, _) = call(
        "PUT",
        &users_url(&b, &cluster, "/sam"),
        Some(ADMIN),
        Some(&json!({"password": "sam-new"})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        with_cookie(),
        401,
        "the old session ended with the password"
    );
}
