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
use crate::kafka_admin::KafkaConn;
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
    // Her Read on orders revoked, the instance she subscribed reads no more, nor
    // commits or seeks there (each request is checked, as Kafka checks each Fetch).
    let (status, body, _) = call(
        "DELETE",
        &b.url(&format!(
            "/v3/clusters/{cluster}/acls?resource_type=TOPIC&resource_name=orders&pattern_type=LITERAL&principal=User:alice&host=*&operation=READ&permission=ALLOW"
        )),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = v2_call("GET", &records, ALICE, None);
    assert_denied(status, &body);
    let at_orders = json!({"offsets": [{"topic": "orders", "partition": 0, "offset": 0}]});
    for path in ["offsets", "positions"] {
        let url = b.url(&format!("/consumers/g1/instances/c1/{path}"));
        let (status, body) = v2_call("POST", &url, ALICE, Some(&at_orders));
        assert_denied(status, &body);
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

/// What a user with no ACL gets from an endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Without {
    /// Served to any authenticated user (the cluster, its brokers): 2xx.
    Open,
    /// Refused: 403 / 40301.
    Denied,
    /// Answered, with nothing in it: 200 and an empty list.
    Nothing,
}

#[test]
fn every_endpoint_wants_credentials_and_an_acl_and_the_super_user_passes() {
    use Without::{Denied, Nothing, Open};
    let dir = tempfile::tempdir().unwrap();
    let (b, cluster) = authorized_broker(dir.path(), &[]);
    create_user(&b, &cluster, "nobody", "nobody-pw");
    const NOBODY: (&str, &str) = ("nobody", "nobody-pw");
    // A group with an instance, made by the super user.
    let (status, body) = v2_call(
        "POST",
        &b.url("/consumers/g1"),
        ADMIN,
        Some(&json!({"name": "c1", "format": "json"})),
    );
    assert_eq!(status, 200, "{body}");
    let (_, brokers, _) = call(
        "GET",
        &b.url(&format!("/v3/clusters/{cluster}/brokers")),
        Some(ADMIN),
        None,
    );
    let node = brokers["data"][0]["broker_id"]
        .as_i64()
        .expect("a broker id");
    let c = format!("/v3/clusters/{cluster}");
    let t = format!("{c}/topics/orders");
    let g = format!("{c}/consumer-groups/g1");
    let i = "/consumers/g1/instances/c1";
    const V3: &str = "application/json";
    const V2: &str = "application/vnd.kafka.v2+json";
    const V2_JSON: &str = "application/vnd.kafka.json.v2+json";
    let acl_body = acl("TOPIC", "x", "LITERAL", "User:nobody", "READ", "ALLOW");
    let record = json!({"value": {"type": "JSON", "data": 1}});
    let v2_records = json!({"records": [{"value": 1}]});
    let rows: Vec<(&str, String, Option<Value>, &str, Without)> = vec![
        ("GET", "/v3/clusters".into(), None, V3, Open),
        ("GET", c.clone(), None, V3, Open),
        ("GET", format!("{c}/quorum"), None, V3, Denied),
        ("GET", format!("{c}/brokers"), None, V3, Open),
        ("GET", format!("{c}/brokers/{node}"), None, V3, Open),
        (
            "GET",
            format!("{c}/brokers/{node}/configs"),
            None,
            V3,
            Denied,
        ),
        (
            "GET",
            format!("{c}/brokers/{node}/configs/log.retention.ms"),
            None,
            V3,
            Denied,
        ),
        (
            "GET",
            format!("{c}/brokers/{node}/partition-replicas"),
            None,
            V3,
            Nothing,
        ),
        ("GET", format!("{c}/broker-configs"), None, V3, Denied),
        ("GET", format!("{c}/acls"), None, V3, Denied),
        (
            "POST",
            format!("{c}/acls"),
            Some(acl_body.clone()),
            V3,
            Denied,
        ),
        (
            "POST",
            format!("{c}/acls:batch"),
            Some(json!({"data": [acl_body]})),
            V3,
            Denied,
        ),
        (
            "DELETE",
            format!("{c}/acls?resource_type=ANY"),
            None,
            V3,
            Denied,
        ),
        ("GET", format!("{c}/client-quotas"), None, V3, Denied),
        (
            "POST",
            format!("{c}/client-quotas"),
            Some(json!({"entity": {"user": "nobody"}, "quotas": {"producer_byte_rate": null}})),
            V3,
            Denied,
        ),
        ("GET", format!("{c}/users"), None, V3, Denied),
        (
            "POST",
            format!("{c}/users"),
            Some(json!({"user_name": "x", "password": "y"})),
            V3,
            Denied,
        ),
        ("GET", format!("{c}/users/alice"), None, V3, Denied),
        (
            "PUT",
            format!("{c}/users/alice"),
            Some(json!({"password": "z"})),
            V3,
            Denied,
        ),
        ("DELETE", format!("{c}/users/alice"), None, V3, Denied),
        ("GET", format!("{c}/topics"), None, V3, Nothing),
        (
            "POST",
            format!("{c}/topics"),
            Some(json!({"topic_name": "n"})),
            V3,
            Denied,
        ),
        ("GET", format!("{c}/topics/-/configs"), None, V3, Nothing),
        (
            "GET",
            format!("{c}/topics/-/partitions/-/reassignment"),
            None,
            V3,
            Denied,
        ),
        ("GET", t.clone(), None, V3, Denied),
        (
            "PATCH",
            t.clone(),
            Some(json!({"partitions_count": 4})),
            V3,
            Denied,
        ),
        ("DELETE", t.clone(), None, V3, Denied),
        ("GET", format!("{t}/partitions"), None, V3, Denied),
        (
            "GET",
            format!("{t}/partitions/-/reassignment"),
            None,
            V3,
            Denied,
        ),
        ("GET", format!("{t}/partitions/0"), None, V3, Denied),
        (
            "GET",
            format!("{t}/partitions/0/replicas"),
            None,
            V3,
            Denied,
        ),
        (
            "GET",
            format!("{t}/partitions/0/replicas/{node}"),
            None,
            V3,
            Denied,
        ),
        (
            "GET",
            format!("{t}/partitions/0/reassignment"),
            None,
            V3,
            Denied,
        ),
        (
            "POST",
            format!("{t}/partitions/0/reassignment"),
            Some(json!({ "replica_ids": [node] })),
            V3,
            Denied,
        ),
        ("GET", format!("{t}/partitions/0/offset"), None, V3, Denied),
        ("GET", format!("{t}/configs"), None, V3, Denied),
        (
            "POST",
            format!("{t}/configs:alter"),
            Some(json!({"data": [{"name": "retention.ms", "value": "1000"}]})),
            V3,
            Denied,
        ),
        ("GET", format!("{t}/configs/retention.ms"), None, V3, Denied),
        (
            "PUT",
            format!("{t}/configs/retention.ms"),
            Some(json!({"value": "1000"})),
            V3,
            Denied,
        ),
        (
            "DELETE",
            format!("{t}/configs/retention.ms"),
            None,
            V3,
            Denied,
        ),
        (
            "POST",
            format!("{t}/records"),
            Some(record.clone()),
            V3,
            Denied,
        ),
        (
            "POST",
            format!("{t}/records:batch"),
            Some(json!({"entries": [record]})),
            V3,
            Denied,
        ),
        ("GET", format!("{c}/consumer-groups"), None, V3, Nothing),
        ("GET", g.clone(), None, V3, Denied),
        ("DELETE", g.clone(), None, V3, Denied),
        ("GET", format!("{g}/consumers"), None, V3, Denied),
        ("GET", format!("{g}/consumers/x"), None, V3, Denied),
        (
            "GET",
            format!("{g}/consumers/x/assignments"),
            None,
            V3,
            Denied,
        ),
        (
            "GET",
            format!("{g}/consumers/x/assignments/orders/partitions/0"),
            None,
            V3,
            Denied,
        ),
        ("GET", format!("{g}/lags"), None, V3, Denied),
        (
            "GET",
            format!("{g}/lags/orders/partitions/0"),
            None,
            V3,
            Denied,
        ),
        ("GET", format!("{g}/lag-summary"), None, V3, Denied),
        (
            "POST",
            format!("{g}/offsets:reset"),
            Some(json!({"topic_name": "orders", "to": "earliest"})),
            V3,
            Denied,
        ),
        ("GET", "/brokers".into(), None, V2, Open),
        ("GET", "/topics".into(), None, V2, Nothing),
        ("GET", "/topics/orders".into(), None, V2, Denied),
        (
            "POST",
            "/topics/orders".into(),
            Some(v2_records.clone()),
            V2_JSON,
            Denied,
        ),
        ("GET", "/topics/orders/partitions".into(), None, V2, Denied),
        (
            "GET",
            "/topics/orders/partitions/0".into(),
            None,
            V2,
            Denied,
        ),
        (
            "POST",
            "/topics/orders/partitions/0".into(),
            Some(v2_records),
            V2_JSON,
            Denied,
        ),
        (
            "GET",
            "/topics/orders/partitions/0/offsets".into(),
            None,
            V2,
            Denied,
        ),
        (
            "GET",
            "/topics/orders/partitions/0/records?offset=0".into(),
            None,
            V2,
            Denied,
        ),
        (
            "POST",
            "/consumers/g1".into(),
            Some(json!({"name": "c2"})),
            V2,
            Denied,
        ),
        (
            "POST",
            format!("{i}/subscription"),
            Some(json!({"topics": ["orders"]})),
            V2,
            Denied,
        ),
        ("GET", format!("{i}/subscription"), None, V2, Denied),
        ("DELETE", format!("{i}/subscription"), None, V2, Denied),
        (
            "POST",
            format!("{i}/assignments"),
            Some(json!({"partitions": [{"topic": "orders", "partition": 0}]})),
            V2,
            Denied,
        ),
        ("GET", format!("{i}/assignments"), None, V2, Denied),
        ("GET", format!("{i}/records"), None, V2, Denied),
        ("POST", format!("{i}/offsets"), Some(json!({})), V2, Denied),
        (
            "GET",
            format!("{i}/offsets"),
            Some(json!({"partitions": []})),
            V2,
            Denied,
        ),
        (
            "POST",
            format!("{i}/positions"),
            Some(json!({"offsets": [{"topic": "orders", "partition": 0, "offset": 0}]})),
            V2,
            Denied,
        ),
        (
            "POST",
            format!("{i}/positions/beginning"),
            Some(json!({"partitions": [{"topic": "orders", "partition": 0}]})),
            V2,
            Denied,
        ),
        (
            "POST",
            format!("{i}/positions/end"),
            Some(json!({"partitions": [{"topic": "orders", "partition": 0}]})),
            V2,
            Denied,
        ),
        ("DELETE", i.to_string(), None, V2, Denied),
        ("GET", "/metrics".into(), None, V3, Denied),
        ("GET", "/dashboard/status".into(), None, V3, Open),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, content_type, without) in &rows {
        let url = b.url(path);
        let (status, _, _) = call_typed(method, &url, None, body.as_ref(), content_type);
        if status != 401 {
            wrong.push(format!("{method} {path} without credentials: {status}"));
        }
        let (status, answer, _) =
            call_typed(method, &url, Some(NOBODY), body.as_ref(), content_type);
        let empty = |v: &Value| {
            v.as_array()
                .or_else(|| v["data"].as_array())
                .is_some_and(Vec::is_empty)
        };
        let as_expected = match without {
            Open => (200..300).contains(&status),
            Denied => status == 403 && answer["error_code"] == 40301,
            Nothing => status == 200 && empty(&answer),
        };
        if !as_expected {
            wrong.push(format!(
                "{method} {path} as nobody: {status} {answer} (want {without:?})"
            ));
        }
        // The super user gets past the authorizer (reads only: the writes would change
        // what the next rows see).
        if *method == "GET" {
            let (status, answer, _) =
                call_typed(method, &url, Some(ADMIN), body.as_ref(), content_type);
            if status == 401 || status == 403 {
                wrong.push(format!(
                    "{method} {path} as the super user: {status} {answer}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Kafka's codes for a refusal by the authorizer.
const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;

#[test]
fn every_kafka_api_answers_its_authorization_error_to_a_user_without_an_acl() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let dir = tempfile::tempdir().unwrap();
    let (b, cluster) = authorized_broker(dir.path(), &[]);
    create_user(&b, &cluster, "nobody", "nobody-pw");
    let s = |text: &str| StrBytes::from_string(text.to_string());
    let topic = || TopicName(s("orders"));
    let group = || GroupId(s("g1"));
    let mut conn = KafkaConn::connect(&b);
    conn.sasl_plain("nobody", "nobody-pw");
    let mut codes: Vec<(&str, i16, i16)> = Vec::new();
    let mut check = |name: &'static str, want: i16, got: i16| codes.push((name, want, got));

    let all: MetadataResponse = conn.ask(ApiKey::Metadata, 12, &MetadataRequest::default());
    check(
        "Metadata (all topics): none listed",
        0,
        all.topics.len() as i16,
    );
    let named: MetadataResponse = conn.ask(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
        ])),
    );
    check(
        "Metadata (orders)",
        TOPIC_DENIED,
        named.topics[0].error_code,
    );
    let produced: ProduceResponse = conn.ask(
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(bytes::Bytes::from_static(&[0u8; 70]))),
                ])]),
    );
    check(
        "Produce",
        TOPIC_DENIED,
        produced.responses[0].partition_responses[0].error_code,
    );
    let fetched: FetchResponse = conn.ask(
        ApiKey::Fetch,
        12,
        &FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(1 << 20)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(topic())
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(-1)
                    .with_partition_max_bytes(1 << 20)])]),
    );
    check(
        "Fetch",
        TOPIC_DENIED,
        fetched.responses[0].partitions[0].error_code,
    );
    let listed: ListOffsetsResponse = conn.ask(
        ApiKey::ListOffsets,
        6,
        &ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic())
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                ])]),
    );
    check(
        "ListOffsets",
        TOPIC_DENIED,
        listed.topics[0].partitions[0].error_code,
    );
    let committed: OffsetCommitResponse = conn.ask(
        ApiKey::OffsetCommit,
        8,
        &OffsetCommitRequest::default()
            .with_group_id(group())
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default(),
                    ]),
            ]),
    );
    check(
        "OffsetCommit",
        GROUP_DENIED,
        committed.topics[0].partitions[0].error_code,
    );
    let fetched_offsets: OffsetFetchResponse = conn.ask(
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default().with_group_id(group()),
    );
    check("OffsetFetch", GROUP_DENIED, fetched_offsets.error_code);
    let coordinator: FindCoordinatorResponse = conn.ask(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default().with_key(s("g1")),
    );
    check("FindCoordinator", GROUP_DENIED, coordinator.error_code);
    let joined: JoinGroupResponse = conn.ask(
        ApiKey::JoinGroup,
        5,
        &JoinGroupRequest::default()
            .with_group_id(group())
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))]),
    );
    check("JoinGroup", GROUP_DENIED, joined.error_code);
    let synced: SyncGroupResponse = conn.ask(
        ApiKey::SyncGroup,
        3,
        &SyncGroupRequest::default()
            .with_group_id(group())
            .with_member_id(s("m")),
    );
    check("SyncGroup", GROUP_DENIED, synced.error_code);
    let beat: HeartbeatResponse = conn.ask(
        ApiKey::Heartbeat,
        3,
        &HeartbeatRequest::default()
            .with_group_id(group())
            .with_member_id(s("m")),
    );
    check("Heartbeat", GROUP_DENIED, beat.error_code);
    let left: LeaveGroupResponse = conn.ask(
        ApiKey::LeaveGroup,
        3,
        &LeaveGroupRequest::default()
            .with_group_id(group())
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(s("m"))
            ]),
    );
    check("LeaveGroup", GROUP_DENIED, left.error_code);
    let described: DescribeGroupsResponse = conn.ask(
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default().with_groups(vec![group()]),
    );
    check(
        "DescribeGroups",
        GROUP_DENIED,
        described.groups[0].error_code,
    );
    let groups: ListGroupsResponse = conn.ask(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
    check("ListGroups: none listed", 0, groups.groups.len() as i16);
    let deleted_groups: DeleteGroupsResponse = conn.ask(
        ApiKey::DeleteGroups,
        2,
        &DeleteGroupsRequest::default().with_groups_names(vec![group()]),
    );
    check(
        "DeleteGroups",
        GROUP_DENIED,
        deleted_groups.results[0].error_code,
    );
    let offsets_deleted: OffsetDeleteResponse = conn.ask(
        ApiKey::OffsetDelete,
        0,
        &OffsetDeleteRequest::default()
            .with_group_id(group())
            .with_topics(vec![
                offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default(),
                    ]),
            ]),
    );
    check("OffsetDelete", GROUP_DENIED, offsets_deleted.error_code);
    let created: CreateTopicsResponse = conn.ask(
        ApiKey::CreateTopics,
        5,
        &CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(TopicName(s("new")))
                .with_num_partitions(1)
                .with_replication_factor(1)]),
    );
    check("CreateTopics", TOPIC_DENIED, created.topics[0].error_code);
    let deleted: DeleteTopicsResponse = conn.ask(
        ApiKey::DeleteTopics,
        5,
        &DeleteTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topic_names(vec![topic()]),
    );
    check(
        "DeleteTopics",
        TOPIC_DENIED,
        deleted.responses[0].error_code,
    );
    let grown: CreatePartitionsResponse = conn.ask(
        ApiKey::CreatePartitions,
        3,
        &CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(topic())
                    .with_count(3),
            ]),
    );
    check(
        "CreatePartitions",
        TOPIC_DENIED,
        grown.results[0].error_code,
    );
    let configs: DescribeConfigsResponse = conn.ask(
        ApiKey::DescribeConfigs,
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("orders")),
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s(&b_node(&b))),
        ]),
    );
    check(
        "DescribeConfigs (topic)",
        TOPIC_DENIED,
        configs.results[0].error_code,
    );
    check(
        "DescribeConfigs (broker)",
        CLUSTER_DENIED,
        configs.results[1].error_code,
    );
    let altered: IncrementalAlterConfigsResponse = conn.ask(
        ApiKey::IncrementalAlterConfigs,
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("orders"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000"))),
                ]),
        ]),
    );
    check(
        "IncrementalAlterConfigs",
        TOPIC_DENIED,
        altered.responses[0].error_code,
    );
    let records_deleted: DeleteRecordsResponse = conn.ask(
        ApiKey::DeleteRecords,
        2,
        &DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic())
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default().with_offset(-1),
                ])]),
    );
    check(
        "DeleteRecords",
        TOPIC_DENIED,
        records_deleted.topics[0].partitions[0].error_code,
    );
    let epochs: OffsetForLeaderEpochResponse = conn.ask(
        ApiKey::OffsetForLeaderEpoch,
        4,
        &OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![
                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_current_leader_epoch(-1),
                    ]),
            ]),
    );
    check(
        "OffsetForLeaderEpoch",
        TOPIC_DENIED,
        epochs.topics[0].partitions[0].error_code,
    );
    let producer: InitProducerIdResponse = conn.ask(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    check("InitProducerId", CLUSTER_DENIED, producer.error_code);
    let acls: DescribeAclsResponse = conn.ask(
        ApiKey::DescribeAcls,
        1,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1),
    );
    check("DescribeAcls", CLUSTER_DENIED, acls.error_code);
    let users: DescribeUserScramCredentialsResponse = conn.ask(
        ApiKey::DescribeUserScramCredentials,
        0,
        &DescribeUserScramCredentialsRequest::default(),
    );
    check(
        "DescribeUserScramCredentials",
        CLUSTER_DENIED,
        users.error_code,
    );
    let quotas: DescribeClientQuotasResponse = conn.ask(
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default(),
    );
    check("DescribeClientQuotas", CLUSTER_DENIED, quotas.error_code);
    let cluster_described: DescribeClusterResponse = conn.ask(
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default(),
    );
    check("DescribeCluster (open)", 0, cluster_described.error_code);

    let wrong: Vec<String> = codes
        .iter()
        .filter(|(_, want, got)| want != got)
        .map(|(name, want, got)| format!("{name}: {got}, want {want}"))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        end_offset(&b, &cluster, "orders"),
        0,
        "nothing was produced"
    );
}

/// The broker's node id, as a config resource names it.
fn b_node(b: &TestBroker) -> String {
    let cluster = cluster_id(b);
    let (_, brokers, _) = call(
        "GET",
        &b.url(&format!("/v3/clusters/{cluster}/brokers")),
        Some(ADMIN),
        None,
    );
    brokers["data"][0]["broker_id"].to_string()
}
