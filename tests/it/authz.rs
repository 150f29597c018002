//! Authorization (issue 16): with `authorizer.class.name` set, every path asks the
//! ACLs — REST v3 and v2, consumer instances, WebSocket subscriptions and produce
//! frames, and the Kafka protocol (confluent-kafka) — and a denied request gets
//! 403 / 40301 or Kafka's TOPIC_/GROUP_AUTHORIZATION_FAILED with nothing done. DENY
//! wins over ALLOW, PREFIXED patterns match, super users may do anything, and
//! `allow.everyone.if.no.acl.found` opens only resources no ACL covers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::auth::{
    basic, call, call_typed, cluster_id, create_topic_as_admin, create_user, secured_broker_with,
    ADMIN,
};
use crate::broker::TestBroker;
use crate::kafka::python;
use crate::ws::{Incoming, WsClient};

const ALICE: (&str, &str) = ("alice", "alice-pw");
const BOB: (&str, &str) = ("bob", "bob-pw");

fn acl(kind: &str, name: &str, pattern: &str, principal: &str, op: &str, perm: &str) -> Value {
    json!({"resource_type": kind, "resource_name": name, "pattern_type": pattern,
           "principal": principal, "host": "*", "operation": op, "permission": perm})
}

/// A secured broker with the ACL authorizer and `admin` as its super user; users
/// alice and bob; topics orders, pay-in, pay-secret and secret; and alice's ACLs:
/// Read and Write on orders, Write on every `pay-` topic but pay-secret (DENY All
/// there), Read on group g1.
fn authorized_broker(dir: &std::path::Path, extra: &[&str]) -> (TestBroker, String) {
    let mut overrides = vec!["authorizer.class.name=acl", "super.users=User:admin"];
    overrides.extend_from_slice(extra);
    let b = secured_broker_with(dir, &overrides);
    let cluster = cluster_id(&b);
    create_user(&b, &cluster, ALICE.0, ALICE.1);
    create_user(&b, &cluster, BOB.0, BOB.1);
    for topic in ["orders", "pay-in", "pay-secret", "secret"] {
        create_topic_as_admin(&b, &cluster, topic);
    }
    let (status, body, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/acls:batch")),
        Some(ADMIN),
        Some(&json!({"data": [
            acl("TOPIC", "orders", "LITERAL", "User:alice", "READ", "ALLOW"),
            acl("TOPIC", "orders", "LITERAL", "User:alice", "WRITE", "ALLOW"),
            acl("TOPIC", "pay-", "PREFIXED", "User:alice", "WRITE", "ALLOW"),
            acl("TOPIC", "pay-secret", "LITERAL", "User:alice", "ALL", "DENY"),
            acl("GROUP", "g1", "LITERAL", "User:alice", "READ", "ALLOW"),
        ]})),
    );
    assert_eq!(status, 204, "{body}");
    (b, cluster)
}

fn topic_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["data"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|t| t["topic_name"].as_str().map(str::to_string))
        .filter(|t| !t.starts_with("__"))
        .collect();
    names.sort();
    names
}

fn produce(b: &TestBroker, cluster: &str, user: (&str, &str), topic: &str) -> (u16, Value) {
    let (status, body, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/topics/{topic}/records")),
        Some(user),
        Some(&json!({"value": {"type": "JSON", "data": "x"}})),
    );
    (status, body)
}

/// The end offset of partition 0, as the super user sees it.
fn end_offset(b: &TestBroker, cluster: &str, topic: &str) -> i64 {
    let (status, body, _) = call(
        "GET",
        &b.url(&format!(
            "/v3/clusters/{cluster}/topics/{topic}/partitions/0/offset"
        )),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["latest_offset"]
        .as_i64()
        .unwrap_or_else(|| panic!("no end offset in {body}"))
}

/// A v2 request (its own content type) with `user`'s credentials.
fn v2_call(method: &str, url: &str, user: (&str, &str), body: Option<&Value>) -> (u16, Value) {
    let (status, body, _) = call_typed(
        method,
        url,
        Some(user),
        body,
        "application/vnd.kafka.v2+json",
    );
    (status, body)
}

fn assert_denied(status: u16, body: &Value) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error_code"], 40301, "{body}");
}

#[test]
fn rest_paths_follow_the_acls_deny_wins_and_prefixes_match() {
    let dir = tempfile::tempdir().unwrap();
    let (b, cluster) = authorized_broker(dir.path(), &[]);
    let topics = b.url(&format!("/v3/clusters/{cluster}/topics"));

    // Each user sees only what they may describe; the super user sees everything.
    let (_, body, _) = call("GET", &topics, Some(ALICE), None);
    assert_eq!(topic_names(&body), ["orders", "pay-in"], "{body}");
    let (_, body, _) = call("GET", &topics, Some(BOB), None);
    assert!(topic_names(&body).is_empty(), "{body}");
    let (_, body, _) = call("GET", &topics, Some(ADMIN), None);
    assert_eq!(topic_names(&body).len(), 4, "{body}");
    let (status, body, _) = call("GET", &format!("{topics}/secret"), Some(ALICE), None);
    assert_denied(status, &body);
    // Unknown or forbidden look the same to whoever may not describe them.
    let (status, body, _) = call("GET", &format!("{topics}/nowhere"), Some(ALICE), None);
    assert_denied(status, &body);

    // Writes: allowed by the literal and the prefixed ACL; refused by DENY (which
    // wins over the prefix's ALLOW) and for lack of an ACL — and nothing written.
    assert_eq!(produce(&b, &cluster, ALICE, "orders").0, 200);
    assert_eq!(produce(&b, &cluster, ALICE, "pay-in").0, 200);
    let (status, body) = produce(&b, &cluster, ALICE, "pay-secret");
    assert_denied(status, &body);
    let (status, body) = produce(&b, &cluster, BOB, "orders");
    assert_denied(status, &body);
    assert_eq!(end_offset(&b, &cluster, "pay-secret"), 0);
    assert_eq!(end_offset(&b, &cluster, "orders"), 1);

    // Admin operations need their own ACLs: nothing happens without them.
    let (status, body, _) = call("DELETE", &format!("{topics}/orders"), Some(ALICE), None);
    assert_denied(status, &body);
    let (status, body, _) = call(
        "POST",
        &topics,
        Some(ALICE),
        Some(&json!({"topic_name": "mine", "partitions_count": 1})),
    );
    assert_denied(status, &body);
    let (_, body, _) = call("GET", &topics, Some(ADMIN), None);
    assert_eq!(
        topic_names(&body),
        ["orders", "pay-in", "pay-secret", "secret"]
    );
    let (status, body, _) = call(
        "GET",
        &b.url(&format!("/v3/clusters/{cluster}/acls")),
        Some(ALICE),
        None,
    );
    assert_denied(status, &body);
    let (status, body, _) = call("GET", &b.url("/metrics"), Some(ALICE), None);
    assert_eq!(status, 403, "{body}");

    // A Create ACL on a prefix lets alice create topics there, and only there.
    let (status, body, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/acls")),
        Some(ADMIN),
        Some(&acl(
            "TOPIC",
            "alice-",
            "PREFIXED",
            "User:alice",
            "ALL",
            "ALLOW",
        )),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body, _) = call(
        "POST",
        &topics,
        Some(ALICE),
        Some(&json!({"topic_name": "alice-own", "partitions_count": 1})),
    );
    assert_eq!(status, 201, "{body}");

    // v2: the same decisions.
    let v2 = |path: &str, user| call("GET", &b.url(path), Some(user), None);
    let (status, body, _) = v2("/topics", ALICE);
    assert_eq!(status, 200);
    let mut listed: Vec<String> = serde_json::from_value(body).unwrap();
    listed.sort();
    assert_eq!(listed, ["alice-own", "orders", "pay-in"]);
    let (status, body, _) = v2("/topics/secret/partitions/0", ALICE);
    assert_denied(status, &body);

    // Consumer instances: the group needs Read, and so does every topic.
    let instance = |group: &str, user| {
        v2_call(
            "POST",
            &b.url(&format!("/consumers/{group}")),
            user,
            Some(&json!({"name": "c1", "format": "json", "auto.offset.reset": "earliest"})),
        )
    };
    let (status, body) = instance("g2", ALICE);
    assert_denied(status, &body);
    let (status, body) = instance("g1", ALICE);
    assert_eq!(status, 200, "{body}");
    let subscription = b.url("/consumers/g1/instances/c1/subscription");
    let (status, body) = v2_call(
        "POST",
        &subscription,
        ALICE,
        Some(&json!({"topics": ["orders", "secret"]})),
    );
    assert_denied(status, &body);
    let (status, body) = v2_call("GET", &subscription, BOB, None);
    assert_denied(status, &body);
    let (status, body) = v2_call(
        "POST",
        &subscription,
        ALICE,
        Some(&json!({"topics": ["orders"]})),
    );
    assert_eq!(status, 204, "{body}");
    let records = b.url("/consumers/g1/instances/c1/records?timeout=500");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = v2_call("GET", &records, ALICE, None);
        assert_eq!(status, 200, "{body}");
        if body.as_array().is_some_and(|r| !r.is_empty()) {
            assert_eq!(body[0]["topic"], "orders");
            break;
        }
        assert!(Instant::now() < deadline, "alice's consumer read nothing");
    }
}

#[test]
fn websocket_subscriptions_and_produce_frames_follow_the_acls() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _) = authorized_broker(dir.path(), &[]);
    let auth = basic(ALICE);
    let mut ws = WsClient::try_connect_with(&b, &[("Authorization", &auth)]).expect("upgrade");
    let deadline = || Instant::now() + Duration::from_secs(10);
    ws.send(json!({"type": "subscribe", "sub": "s1", "topic": "secret", "from": "beginning"}));
    let refused = ws.expect("error", deadline());
    assert_eq!(refused["error_code"], 40301, "{refused}");
    ws.send(json!({"type": "subscribe", "sub": "s2", "group": "g2", "topics": ["orders"], "from": "beginning"}));
    let refused = ws.expect("error", deadline());
    assert_eq!(refused["error_code"], 40301, "{refused}");
    ws.send(
        json!({"type": "produce", "id": 1, "topic": "secret", "records": [
        {"value": {"type": "STRING", "data": "never"}}]}),
    );
    // Refused whole (an error frame) or per record (an ack of errors): 40301.
    let text = match ws.next(deadline()) {
        Some(Incoming::Json(answer)) => answer.to_string(),
        _ => panic!("no answer to the produce frame"),
    };
    assert!(text.contains("40301"), "{text}");
    ws.send(
        json!({"type": "produce", "id": 2, "topic": "orders", "records": [
        {"value": {"type": "STRING", "data": "fine"}}]}),
    );
    let ack = ws.expect("ack", deadline());
    assert_eq!(ack["results"][0]["offset"], 0, "{ack}");
    ws.send(json!({"type": "subscribe", "sub": "s3", "group": "g1", "topics": ["orders"], "from": "beginning"}));
    ws.expect("subscribed", deadline());
}

#[test]
fn kafka_clients_get_kafka_authorization_errors_and_see_only_their_topics() {
    let dir = tempfile::tempdir().unwrap();
    let (b, cluster) = authorized_broker(dir.path(), &[]);
    let out = python(
        &b,
        r#"
import time
from confluent_kafka import Producer, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
def conf(user, password):
    return {'bootstrap.servers': BOOTSTRAP, 'security.protocol': 'SASL_PLAINTEXT',
            'sasl.mechanisms': 'SCRAM-SHA-256', 'sasl.username': user, 'sasl.password': password}
result = {}
admin = AdminClient(conf('alice', 'alice-pw'))
result['topics'] = sorted(t for t in admin.list_topics(timeout=10).topics)
reports = {}
def report(err, msg):
    reports[msg.topic()] = err.name() if err else 'ok'
p = Producer({**conf('alice', 'alice-pw'), 'message.timeout.ms': 10000})
for topic in ['orders', 'pay-in', 'pay-secret', 'secret']:
    p.produce(topic, value=b'k', on_delivery=report)
p.flush(20)
result['produce'] = reports
def consume(group, topic):
    errors = []
    c = Consumer({**conf('alice', 'alice-pw'), 'group.id': group, 'auto.offset.reset': 'earliest'})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 15
    while time.time() < deadline and not got and not errors:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            errors.append(m.error().name())
        else:
            got.append(m.value().decode())
    c.close()
    return {'got': got, 'errors': errors}
result['g1'] = consume('g1', 'orders')
result['g2'] = consume('g2', 'orders')
print(json.dumps(result))
"#,
    );
    assert_eq!(out["topics"], json!(["orders", "pay-in"]), "{out}");
    assert_eq!(out["produce"]["orders"], "ok", "{out}");
    assert_eq!(out["produce"]["pay-in"], "ok", "{out}");
    assert_eq!(
        out["produce"]["pay-secret"], "TOPIC_AUTHORIZATION_FAILED",
        "{out}"
    );
    assert_eq!(
        out["produce"]["secret"], "TOPIC_AUTHORIZATION_FAILED",
        "{out}"
    );
    assert_eq!(out["g1"]["got"], json!(["k"]), "{out}");
    assert_eq!(
        out["g2"]["errors"][0], "GROUP_AUTHORIZATION_FAILED",
        "{out}"
    );
    assert_eq!(end_offset(&b, &cluster, "secret"), 0);
    assert_eq!(end_offset(&b, &cluster, "pay-secret"), 0);
}

#[test]
fn allow_everyone_if_no_acl_found_opens_only_uncovered_resources() {
    let dir = tempfile::tempdir().unwrap();
    let (b, cluster) = authorized_broker(dir.path(), &["allow.everyone.if.no.acl.found=true"]);
    // No ACL covers `secret`: anyone may use it. ACLs cover `orders`: only alice.
    assert_eq!(produce(&b, &cluster, BOB, "secret").0, 200);
    let (status, body) = produce(&b, &cluster, BOB, "orders");
    assert_denied(status, &body);
    assert_eq!(end_offset(&b, &cluster, "orders"), 0);
}
