//! Client quotas (issue 16): set over REST (`/v3/clusters/{c}/client-quotas`) and
//! Kafka's AlterClientQuotas, read back over both; a producer above its byte rate is
//! slowed to it and told its throttle time (confluent-kafka's `throttle_cb`), on the
//! Kafka protocol and over REST, while another user is not; a consumer above its
//! fetch quota is slowed likewise; `/metrics` shows the throttling.

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use crate::auth::{
    call, cluster_id, create_topic_as_admin, create_user, secured_broker_with, ADMIN,
};
use crate::broker::{get, TestBroker};
use crate::kafka::python;
use crate::kafka_admin::ask;

/// Sets `quotas` (`{"producer_byte_rate": N}`) for `entity` as the admin.
fn set_quota(b: &TestBroker, cluster: &str, entity: Value, quotas: Value) {
    let (status, body, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/client-quotas")),
        Some(ADMIN),
        Some(&json!({"entity": entity, "quotas": quotas})),
    );
    assert_eq!(status, 204, "{body}");
}

/// 10 KB/s. Kafka measures a rate over a window of 10 s at least, so a client may
/// send up to 100 KB at once before it is held back: the test's volumes go past it.
const QUOTA: f64 = 10_000.0;
const WINDOW_SECONDS: f64 = 10.0;

#[test]
fn a_producer_and_a_consumer_above_their_quotas_are_slowed_to_them_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let b = secured_broker_with(dir.path(), &["super.users=User:admin"]);
    let cluster = cluster_id(&b);
    create_user(&b, &cluster, "alice", "alice-pw");
    create_user(&b, &cluster, "bob", "bob-pw");
    create_user(&b, &cluster, "carol", "carol-pw");
    create_topic_as_admin(&b, &cluster, "q");
    for user in ["alice", "carol"] {
        set_quota(
            &b,
            &cluster,
            json!({ "user": user }),
            json!({"producer_byte_rate": QUOTA as u64, "consumer_byte_rate": QUOTA as u64}),
        );
    }
    let (status, body, _) = call(
        "GET",
        &b.url(&format!("/v3/clusters/{cluster}/client-quotas")),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["data"][0]["entity"],
        json!({"user": "alice"}),
        "{body}"
    );
    assert_eq!(
        body["data"][0]["quotas"]["producer_byte_rate"], QUOTA as u64,
        "{body}"
    );
    // Quotas are the super users' to set: alice may not lift her own.
    let (status, body, _) = call(
        "POST",
        &b.url(&format!("/v3/clusters/{cluster}/client-quotas")),
        Some(("alice", "alice-pw")),
        Some(&json!({"entity": {"user": "alice"}, "quotas": {"producer_byte_rate": null}})),
    );
    assert_eq!(status, 403, "{body}");

    // Each user produces 1 KiB records as fast as it can for a few seconds.
    let out = python(
        &b,
        r#"
import time
from confluent_kafka import Producer, Consumer, TopicPartition
def conf(user):
    return {'bootstrap.servers': BOOTSTRAP, 'security.protocol': 'SASL_PLAINTEXT',
            'sasl.mechanisms': 'SCRAM-SHA-256', 'sasl.username': user,
            'sasl.password': user + '-pw'}
result = {}
for user in ['alice', 'bob']:
    throttles = []
    acked = [0]
    def done(err, msg):
        if err is None: acked[0] += 1
    # A short queue: what is produced waits in the client only briefly.
    p = Producer({**conf(user), 'linger.ms': 5, 'queue.buffering.max.messages': 20,
                  'throttle_cb': lambda e: throttles.append(e.throttle_time)})
    value = b'x' * 1024
    start = time.monotonic()
    while time.monotonic() - start < 6:
        try:
            p.produce('q', value, partition=0, on_delivery=done)
        except BufferError:
            pass
        p.poll(0.001)
    left = p.flush(60)
    elapsed = time.monotonic() - start
    result[user] = {'bytes': acked[0] * 1024, 'elapsed': elapsed, 'throttles': len(throttles), 'left': left}
# Reading back 150 KiB in fetches of 16 KiB: alice at her fetch quota, bob at will.
for user in ['alice', 'bob']:
    c = Consumer({**conf(user), 'group.id': 'g-' + user, 'max.partition.fetch.bytes': 16384, 'message.max.bytes': 16384,
                  'fetch.max.bytes': 16384})
    c.assign([TopicPartition('q', 0, 0)])
    got, start = 0, time.monotonic()
    while got < 150 and time.monotonic() - start < 60:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
    result[user]['read_seconds'] = time.monotonic() - start
    result[user]['read'] = got
    c.close()
print(json.dumps(result))
"#,
    );
    eprintln!("quotas: {out}");
    // Within the quota, give or take a window: Kafka's rate is an average over
    // the last window, so a client may be a window's worth ahead of it.
    let alice = out["alice"]["bytes"].as_f64().unwrap();
    let elapsed = out["alice"]["elapsed"].as_f64().unwrap();
    let allowed = QUOTA * (elapsed + WINDOW_SECONDS + 1.0) * 1.3;
    assert!(
        alice <= allowed,
        "alice produced {alice:.0} B in {elapsed:.1}s over a {QUOTA} B/s quota: {out}"
    );
    let bob = out["bob"]["bytes"].as_f64().unwrap();
    assert!(
        out["alice"]["throttles"].as_u64().unwrap() > 0,
        "alice's client was never told of a throttle: {out}"
    );
    assert!(
        bob >= allowed * 2.0,
        "bob, with no quota, produced only {bob:.0} B: {out}"
    );
    assert_eq!(out["bob"]["throttles"], 0, "{out}");
    assert_eq!(out["alice"]["read"], 150, "{out}");
    let alice_read = out["alice"]["read_seconds"].as_f64().unwrap();
    let bob_read = out["bob"]["read_seconds"].as_f64().unwrap();
    // 150 KiB at 10 KB/s, past the window's 100 KB: held back seconds, where bob
    // reads at once.
    assert!(
        alice_read >= 3.0,
        "alice read 150 KiB in {alice_read:.1}s: {out}"
    );
    assert!(bob_read * 2.0 < alice_read, "{out}");

    // Over REST the same quota holds: 8 posts of 20 KiB take seconds for carol
    // (alice's window is full of her Kafka client's bytes).
    let records = b.url(&format!("/v3/clusters/{cluster}/topics/q/records"));
    let post = |user: (&str, &str)| {
        let started = Instant::now();
        for _ in 0..8 {
            let (status, body, _) = call(
                "POST",
                &records,
                Some(user),
                Some(&json!({"value": {"type": "BINARY", "data": "A".repeat(27_300)}})),
            );
            assert_eq!(status, 200, "{body}");
        }
        started.elapsed()
    };
    let carol_rest = post(("carol", "carol-pw"));
    let bob_rest = post(("bob", "bob-pw"));
    assert!(
        carol_rest >= Duration::from_secs(2),
        "carol's 160 KiB over REST took {carol_rest:?}"
    );
    assert!(bob_rest * 2 < carol_rest, "{bob_rest:?} vs {carol_rest:?}");

    let text = ureq::get(&b.url("/metrics"))
        .set("Authorization", &crate::auth::basic(ADMIN))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let throttled: f64 = text
        .lines()
        .find(|l| {
            l.starts_with("troupe_quota_throttle_seconds_total{kind=\"produce\",user=\"alice\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no produce throttle for alice in /metrics:\n{text}"));
    assert!(throttled > 1.0, "{throttled}");
    assert!(
        !text.contains("user=\"bob\""),
        "bob has no quota, so no sensor"
    );
}

#[test]
fn kafka_client_quota_apis_set_and_describe_what_rest_lists() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let entity = |kind: &str, name: Option<&str>| {
        alter_client_quotas_request::EntityData::default()
            .with_entity_type(StrBytes::from_string(kind.into()))
            .with_entity_name(name.map(|n| StrBytes::from_string(n.into())))
    };
    let op = |key: &str, value: f64, remove: bool| {
        alter_client_quotas_request::OpData::default()
            .with_key(StrBytes::from_string(key.into()))
            .with_value(value)
            .with_remove(remove)
    };
    let request = AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![entity("client-id", Some("etl"))])
            .with_ops(vec![op("producer_byte_rate", 2048.0, false)]),
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![entity("user", None)])
            .with_ops(vec![op("consumer_byte_rate", 4096.0, false)]),
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![entity("user", Some("x"))])
            .with_ops(vec![op("request_percentage", 50.0, false)]),
    ]);
    let answer: AlterClientQuotasResponse = ask(&b, ApiKey::AlterClientQuotas, 1, &request);
    let codes: Vec<i16> = answer.entries.iter().map(|e| e.error_code).collect();
    assert_eq!(codes, [0, 0, 42], "{answer:?}");

    let described: DescribeClientQuotasResponse = ask(
        &b,
        ApiKey::DescribeClientQuotas,
        1,
        &DescribeClientQuotasRequest::default().with_components(vec![
            describe_client_quotas_request::ComponentData::default()
                .with_entity_type(StrBytes::from_static_str("user"))
                .with_match_type(1),
        ]),
    );
    assert_eq!(described.error_code, 0);
    let entries = described.entries.unwrap_or_default();
    assert_eq!(entries.len(), 1, "only the default user's: {entries:?}");
    assert_eq!(entries[0].entity[0].entity_name, None);
    assert_eq!(entries[0].values[0].value, 4096.0);

    let (status, body) = get(&b.v3("/client-quotas"));
    assert_eq!(status, 200);
    let mut listed: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| format!("{} {}", q["entity"], q["quotas"]))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            r#"{"client_id":"etl"} {"producer_byte_rate":2048}"#,
            r#"{"user":"<default>"} {"consumer_byte_rate":4096}"#
        ]
    );
    // Removing over Kafka's API; REST sees it gone.
    let removal = AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![entity("client-id", Some("etl"))])
            .with_ops(vec![op("producer_byte_rate", 0.0, true)]),
    ]);
    let answer: AlterClientQuotasResponse = ask(&b, ApiKey::AlterClientQuotas, 0, &removal);
    assert_eq!(answer.entries[0].error_code, 0);
    let (_, body) = get(&b.v3("/client-quotas"));
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
}
