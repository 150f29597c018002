//! The Kafka listener's admin APIs with real clients. kafka-python's
//! `KafkaAdminClient` creates topics (and is refused as Kafka refuses), describes
//! topic and broker configs, grows a topic, alters its configs both ways, describes
//! the cluster and deletes topics — and REST sees each result. kafka-python and
//! confluent-kafka (librdkafka) delete records, and the log start they set survives
//! a broker restart. What no client library sends on its own (OffsetForLeaderEpoch
//! with chosen epochs, DeleteTopics by topic id, a whole-set AlterConfigs, the oldest
//! and newest versions of each API) is encoded here from Kafka's schemas (the
//! `kafka-protocol` crate) and sent over a plain socket. The clients are installed
//! by `.ci/run`; a missing one fails the test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::{json, Value};

use crate::broker::{create_topic, get, post_json, produce_v3, TestBroker};
use crate::kafka::python;

/// Sends one request of `version` on a new connection and decodes its response.
pub fn ask<Req: Encodable, Resp: Decodable>(
    b: &TestBroker,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    KafkaConn::connect(b).ask(key, version, request)
}

/// A Kafka connection that sends requests encoded from Kafka's schemas, one at a time.
pub struct KafkaConn {
    stream: TcpStream,
    correlation_id: i32,
}

impl KafkaConn {
    pub fn connect(b: &TestBroker) -> KafkaConn {
        let stream = TcpStream::connect(("127.0.0.1", b.kafka_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        KafkaConn {
            stream,
            correlation_id: 0,
        }
    }

    /// Authenticates with SASL/PLAIN (a SASL listener's handshake and exchange).
    pub fn sasl_plain(&mut self, user: &str, password: &str) {
        let handshake: SaslHandshakeResponse = self.ask(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        assert_eq!(handshake.error_code, 0, "{handshake:?}");
        let token = format!("\0{user}\0{password}");
        let done: SaslAuthenticateResponse = self.ask(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.into_bytes())),
        );
        assert_eq!(done.error_code, 0, "{done:?}");
    }

    /// Sends `request` as `version` and decodes its response.
    pub fn ask<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        request: &Req,
    ) -> Resp {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("kafka-admin-test")));
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, key.request_header_version(version))
            .unwrap();
        request.encode(&mut frame, version).unwrap();
        let s = &mut self.stream;
        s.write_all(&(frame.len() as i32).to_be_bytes()).unwrap();
        s.write_all(&frame).unwrap();
        let mut length = [0u8; 4];
        s.read_exact(&mut length)
            .unwrap_or_else(|e| panic!("{key:?} v{version}: no response ({e})"));
        let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
        s.read_exact(&mut body).unwrap();
        let mut body = Bytes::from(body);
        let header =
            ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation_id);
        Resp::decode(&mut body, version).unwrap()
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// A topic's overrides, as REST lists them (configs set on the topic).
fn overrides(b: &TestBroker, topic: &str) -> Vec<(String, String)> {
    let (status, body) = get(&b.v3(&format!("/topics/{topic}/configs")));
    assert_eq!(status, 200, "{body}");
    let mut set: Vec<(String, String)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"] == "DYNAMIC_TOPIC_CONFIG")
        .map(|c| {
            let value = c["value"].as_str().unwrap_or_default().to_string();
            (c["name"].as_str().unwrap().to_string(), value)
        })
        .collect();
    set.sort();
    set
}

fn partitions_count(b: &TestBroker, topic: &str) -> Option<i64> {
    let (status, body) = get(&b.v3(&format!("/topics/{topic}")));
    (status == 200).then(|| body["partitions_count"].as_i64().unwrap())
}

const ADMIN_SCRIPT: &str = r#"
from kafka.admin import KafkaAdminClient, ConfigResource
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=20000)
out = {}

def codes(response):
    return {t['name']: t['error_code'] for t in response['topics']}

created = admin.create_topics({
    'adm': {'num_partitions': 2, 'replication_factor': 1,
            'configs': {'retention.ms': '3600000'}},
    'adm-default': {},
})
out['created'] = {
    t['name']: {
        'error_code': t['error_code'],
        'num_partitions': t['num_partitions'],
        'replication_factor': t['replication_factor'],
        'retention': t['configs']['retention.ms']['value'],
        'retention_source': t['configs']['retention.ms']['config_source'],
    } for t in created['topics']
}
out['refused'] = codes(admin.create_topics({
    'adm': {'num_partitions': 1},
    'zero': {'num_partitions': 0},
    'rf3': {'replication_factor': 3},
    'badcfg': {'configs': {'retention.ms': 'soon'}},
    'unknowncfg': {'configs': {'no.such.config': '1'}},
    'bad name': {},
}, raise_errors=False))
admin.create_topics({'only-validated': {'num_partitions': 3}}, validate_only=True)

def described(topic, config_filter='all'):
    return admin.describe_configs([ConfigResource('TOPIC', topic)], include_synonyms=True,
                                  config_filter=config_filter)['topic'][topic]

d = described('adm')
out['described'] = {
    k: {'value': v['value'], 'source': v['config_source'], 'read_only': v['read_only'],
        'synonyms': [s['source'] for s in v['synonyms']]}
    for k, v in d.items() if k in ('retention.ms', 'segment.bytes', 'cleanup.policy')
}
out['described_count'] = len(d)
broker = admin.describe_configs([ConfigResource('BROKER', '1')], config_filter='all')['broker']['1']
out['broker'] = {k: {'value': v['value'], 'read_only': v['read_only'], 'source': v['config_source']}
                 for k, v in broker.items() if k in ('log.retention.ms', 'log.cleanup.policy')}

admin.create_partitions({'adm': 4})
shrink = admin.create_partitions({'adm': 3}, raise_errors=False).to_dict()
out['shrink'] = [r['error_code'] for r in shrink['results']]

out['incremental'] = admin.alter_configs([ConfigResource('TOPIC', 'adm', {
    'cleanup.policy': ('APPEND', 'compact'),
    'retention.ms': ('DELETE', None),
    'segment.ms': '100000',
})])['topic']['adm']
out['after_incremental'] = {k: v['value'] for k, v in described('adm', 'modified').items()}
out['append_to_a_number'] = admin.alter_configs(
    [ConfigResource('TOPIC', 'adm', {'retention.ms': ('APPEND', '1')})])['topic']['adm']
out['legacy'] = admin.alter_configs(
    [ConfigResource('TOPIC', 'adm', {'retention.ms': '7200000'})], incremental=False)['topic']['adm']
out['broker_alter'] = admin.alter_configs(
    [ConfigResource('BROKER', '1', {'log.retention.ms': '1000'})], raise_on_unknown=False)['broker']['1']

cluster = admin.describe_cluster()
out['cluster'] = {
    'cluster_id': cluster['cluster_id'],
    'controller_id': cluster['controller_id'],
    'brokers': [[x['broker_id'], x['host'], x['port']] for x in cluster['brokers']],
}

admin.delete_topics(['adm-default'])
again = admin.delete_topics(['adm-default'], raise_errors=False)
out['deleted_again'] = [t['error_code'] for t in again['topics']]
out['topics_after'] = sorted(t for t in admin.list_topics() if not t.startswith('__'))
admin.close()
print(json.dumps(out))
"#;

#[test]
fn kafka_python_admin_manages_topics_and_configs_and_rest_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let out = python(&b, ADMIN_SCRIPT);

    let created = &out["created"];
    assert_eq!(created["adm"]["error_code"], 0, "{out}");
    assert_eq!(created["adm"]["num_partitions"], 2);
    assert_eq!(created["adm"]["replication_factor"], 1);
    assert_eq!(created["adm"]["retention"], "3600000");
    assert_eq!(created["adm"]["retention_source"], "DYNAMIC_TOPIC_CONFIG");
    // -1 and -1: the broker's num.partitions and default.replication.factor.
    assert_eq!(created["adm-default"]["num_partitions"], 1);
    assert_eq!(created["adm-default"]["replication_factor"], 1);
    assert_eq!(created["adm-default"]["retention_source"], "DEFAULT_CONFIG");
    assert_eq!(
        out["refused"],
        json!({"adm": 36, "zero": 37, "rf3": 38, "badcfg": 40, "unknowncfg": 40, "bad name": 17}),
        "TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_CONFIG, INVALID_TOPIC_EXCEPTION"
    );

    let described = &out["described"];
    assert_eq!(described["retention.ms"]["value"], "3600000", "{out}");
    assert_eq!(described["retention.ms"]["source"], "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(
        described["retention.ms"]["synonyms"],
        json!(["DYNAMIC_TOPIC_CONFIG", "DEFAULT_CONFIG"])
    );
    assert_eq!(described["retention.ms"]["read_only"], false);
    assert_eq!(described["segment.bytes"]["source"], "DEFAULT_CONFIG");
    assert_eq!(described["cleanup.policy"]["value"], "delete");
    assert!(out["described_count"].as_i64().unwrap() >= 18, "{out}");
    assert_eq!(out["broker"]["log.retention.ms"]["read_only"], true);
    assert_eq!(out["broker"]["log.cleanup.policy"]["value"], "delete");

    assert_eq!(out["shrink"], json!([37]), "a partition count never falls");
    assert_eq!(out["incremental"], "OK", "{out}");
    assert_eq!(
        out["after_incremental"],
        json!({"cleanup.policy": "delete,compact", "segment.ms": "100000"})
    );
    let refusal = out["append_to_a_number"].as_str().unwrap();
    assert!(refusal.contains("InvalidConfiguration"), "{refusal}");
    assert_eq!(out["legacy"], "OK", "{out}");
    let refusal = out["broker_alter"].as_str().unwrap();
    assert!(refusal.contains("InvalidRequest"), "{refusal}");

    let cluster = &out["cluster"];
    assert_eq!(cluster["cluster_id"], b.cluster_id());
    assert_eq!(cluster["controller_id"], 1);
    assert_eq!(cluster["brokers"], json!([[1, "127.0.0.1", b.kafka_port]]));
    assert_eq!(out["deleted_again"], json!([3]));
    assert_eq!(out["topics_after"], json!(["adm"]));

    // REST sees every change.
    assert_eq!(partitions_count(&b, "adm"), Some(4));
    assert_eq!(partitions_count(&b, "adm-default"), None, "deleted");
    assert_eq!(
        partitions_count(&b, "only-validated"),
        None,
        "only validated"
    );
    assert_eq!(partitions_count(&b, "zero"), None);
    // kafka-python's legacy AlterConfigs sends the other modified configs along.
    assert_eq!(
        overrides(&b, "adm"),
        vec![
            ("cleanup.policy".to_string(), "delete,compact".to_string()),
            ("retention.ms".to_string(), "7200000".to_string()),
            ("segment.ms".to_string(), "100000".to_string()),
        ]
    );
    b.stop();
}

const DELETE_RECORDS_SCRIPT: &str = r#"
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient
from confluent_kafka import TopicPartition as LibTopicPartition
from confluent_kafka.admin import AdminClient
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=20000)
out = {}

def delete(topic, offset):
    try:
        r = admin.delete_records({TopicPartition(topic, 0): offset})
        return r[TopicPartition(topic, 0)]['low_watermark']
    except Exception as e:
        return type(e).__name__

out['to4'] = delete('dr', 4)
librdkafka = AdminClient({'bootstrap.servers': BOOTSTRAP})
futures = librdkafka.delete_records([LibTopicPartition('dr', 0, 6)], request_timeout=20)
out['to6'] = list(futures.values())[0].result(timeout=20).low_watermark
out['backwards'] = delete('dr', 2)
out['past'] = delete('dr', 11)
out['compacted'] = delete('cmp', 0)
out['internal'] = delete('__consumer_offsets', 0)
admin.close()
print(json.dumps(out))
"#;

fn beginning_offset(b: &TestBroker, topic: &str) -> i64 {
    let (status, body) = get(&b.url(&format!("/topics/{topic}/partitions/0/offsets")));
    assert_eq!(status, 200, "{body}");
    body["beginning_offset"].as_i64().unwrap()
}

#[test]
fn python_clients_delete_records_and_the_log_start_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "dr", 1);
    let records: Vec<Value> = (0..10)
        .map(|i| json!({"value": {"type": "STRING", "data": format!("v{i}")}}))
        .collect();
    produce_v3(&b, "dr", &records);
    let (status, body) = post_json(
        &b.v3("/topics"),
        &json!({"topic_name": "cmp", "partitions_count": 1,
                "configs": [{"name": "cleanup.policy", "value": "compact"}]}),
    );
    assert_eq!(status, 201, "{body}");

    let out = python(&b, DELETE_RECORDS_SCRIPT);
    assert_eq!(out["to4"], 4, "{out}");
    assert_eq!(out["to6"], 6, "librdkafka: {out}");
    assert_eq!(out["backwards"], 6, "the log start never moves back");
    assert_eq!(out["past"], "OffsetOutOfRangeError");
    assert_eq!(out["compacted"], "PolicyViolationError");
    assert_eq!(out["internal"], "InvalidTopicError");
    assert_eq!(beginning_offset(&b, "dr"), 6);

    b.stop();
    let b = TestBroker::start(dir.path());
    assert_eq!(
        beginning_offset(&b, "dr"),
        6,
        "the log start is checkpointed"
    );
    let (status, body) = get(&b.url("/topics/dr/partitions/0/records?offset=5"));
    assert_eq!(status, 416, "below the log start: {body}");
    // -1: everything up to the high watermark.
    let everything = ask::<_, DeleteRecordsResponse>(
        &b,
        ApiKey::DeleteRecords,
        2,
        &DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(name("dr"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(-1),
                ]),
        ]),
    );
    let p = &everything.topics[0].partitions[0];
    assert_eq!((p.error_code, p.low_watermark), (0, 10));
    assert_eq!(beginning_offset(&b, "dr"), 10);
    b.stop();
}

fn epoch_request(
    topic: &str,
    partition: i32,
    current: i32,
    asked: i32,
) -> OffsetForLeaderEpochRequest {
    OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(partition)
                        .with_current_leader_epoch(current)
                        .with_leader_epoch(asked),
                ]),
        ])
}

#[test]
fn offset_for_leader_epoch_answers_from_the_epoch_cache_and_checks_the_current_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    create_topic(&b, "ep", 1);
    let records: Vec<Value> = (0..5)
        .map(|i| json!({"value": {"type": "STRING", "data": format!("v{i}")}}))
        .collect();
    produce_v3(&b, "ep", &records);
    // (error code, epoch, end offset) for each question, at the oldest and newest
    // versions (v3 added replica_id).
    for version in [2, 4] {
        let answer = |topic: &str, partition, current, asked| {
            let mut request = epoch_request(topic, partition, current, asked);
            if version < 3 {
                request.replica_id = BrokerId(-2);
            }
            let r: OffsetForLeaderEpochResponse =
                ask(&b, ApiKey::OffsetForLeaderEpoch, version, &request);
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.leader_epoch, p.end_offset)
        };
        assert_eq!(answer("ep", 0, -1, 0), (0, 0, 5), "v{version}");
        assert_eq!(answer("ep", 0, 0, 0), (0, 0, 5));
        // An epoch after any the log knows: no error, nothing known.
        assert_eq!(answer("ep", 0, 0, 7), (0, -1, -1));
        assert_eq!(answer("ep", 0, 1, 0), (75, -1, -1), "UNKNOWN_LEADER_EPOCH");
        assert_eq!(answer("ep", 0, -2, 0), (74, -1, -1), "FENCED_LEADER_EPOCH");
        assert_eq!(answer("ep", 3, -1, 0).0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(answer("nope", 0, -1, 0).0, 3);
    }
    b.stop();
}

#[test]
fn topic_ids_whole_set_alters_endpoint_types_and_every_version_encode() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    let creatable = |topic: &str| {
        create_topics_request::CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_configs(vec![
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(str_bytes("retention.ms"))
                    .with_value(Some(str_bytes("5000"))),
                create_topics_request::CreatableTopicConfig::default()
                    .with_name(str_bytes("segment.ms"))
                    .with_value(Some(str_bytes("60000"))),
            ])
    };
    // Every version of CreateTopics encodes its answer; v7 carries the topic id.
    let mut ids = Vec::new();
    for version in 2..=7 {
        let topic = format!("v{version}");
        let r: CreateTopicsResponse = ask(
            &b,
            ApiKey::CreateTopics,
            version,
            &CreateTopicsRequest::default()
                .with_topics(vec![creatable(&topic)])
                .with_timeout_ms(5000),
        );
        let t = &r.topics[0];
        assert_eq!(t.error_code, 0, "v{version}: {t:?}");
        if version >= 5 {
            assert_eq!((t.num_partitions, t.replication_factor), (1, 1));
            let configs = t.configs.as_ref().unwrap();
            let retention = configs
                .iter()
                .find(|c| c.name.as_str() == "retention.ms")
                .unwrap();
            assert_eq!(retention.value.as_deref(), Some("5000"));
            assert_eq!(retention.config_source, 1, "TOPIC_CONFIG");
        }
        ids.push(t.topic_id);
    }
    assert!(ids[..5].iter().all(|id| id.is_nil()));
    let v7_id = ids[5];
    assert!(!v7_id.is_nil(), "v7 answers the topic id");

    // Whole-set AlterConfigs: the overrides become exactly the ones given.
    let alter: AlterConfigsResponse = ask(
        &b,
        ApiKey::AlterConfigs,
        2,
        &AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes("v6"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(str_bytes("cleanup.policy"))
                    .with_value(Some(str_bytes("compact")))]),
        ]),
    );
    assert_eq!(alter.responses[0].error_code, 0, "{alter:?}");
    assert_eq!(
        overrides(&b, "v6"),
        vec![("cleanup.policy".to_string(), "compact".to_string())]
    );

    // DescribeConfigs at its oldest and newest versions; documentation from v3.
    for version in [1, 4] {
        let r: DescribeConfigsResponse = ask(
            &b,
            ApiKey::DescribeConfigs,
            version,
            &DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_include_documentation(version >= 3)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(str_bytes("v6"))
                        .with_configuration_keys(Some(vec![str_bytes("cleanup.policy")])),
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(str_bytes("2"))
                        .with_configuration_keys(None),
                ]),
        );
        let topic = &r.results[0];
        assert_eq!(topic.error_code, 0, "v{version}: {topic:?}");
        assert_eq!(topic.configs.len(), 1, "only the key asked for");
        let policy = &topic.configs[0];
        assert_eq!(policy.value.as_deref(), Some("compact"));
        assert_eq!(policy.synonyms.len(), 2);
        if version >= 3 {
            assert_eq!(policy.config_type, 7, "LIST");
            assert!(policy.documentation.as_ref().is_some_and(|d| !d.is_empty()));
        }
        assert_eq!(r.results[1].error_code, 42, "another broker's id");
    }

    // DeleteTopics v6 by topic id, then the id is unknown; name and id together are
    // refused; v1 by name.
    let delete = |version: i16, state: delete_topics_request::DeleteTopicState| {
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(5000);
        if version >= 6 {
            request.topics = vec![state];
        } else {
            request.topic_names = state.name.into_iter().collect();
        }
        let r: DeleteTopicsResponse = ask(&b, ApiKey::DeleteTopics, version, &request);
        r.responses[0].clone()
    };
    let by_id = delete(
        6,
        delete_topics_request::DeleteTopicState::default().with_topic_id(v7_id),
    );
    assert_eq!(by_id.error_code, 0, "{by_id:?}");
    assert_eq!(by_id.name.as_ref().map(|n| n.0.as_str()), Some("v7"));
    let again = delete(
        6,
        delete_topics_request::DeleteTopicState::default().with_topic_id(v7_id),
    );
    assert_eq!(again.error_code, 100, "UNKNOWN_TOPIC_ID");
    let both = delete(
        6,
        delete_topics_request::DeleteTopicState::default()
            .with_name(Some(name("v6")))
            .with_topic_id(v7_id),
    );
    assert_eq!(both.error_code, 42);
    let v1 = delete(
        1,
        delete_topics_request::DeleteTopicState::default().with_name(Some(name("v2"))),
    );
    assert_eq!(v1.error_code, 0);
    assert_eq!(partitions_count(&b, "v7"), None);
    assert_eq!(partitions_count(&b, "v2"), None);
    assert_eq!(partitions_count(&b, "v6"), Some(1));

    // DescribeCluster: brokers at v0; the controllers' endpoint is not this one.
    let cluster: DescribeClusterResponse = ask(
        &b,
        ApiKey::DescribeCluster,
        0,
        &DescribeClusterRequest::default(),
    );
    assert_eq!(cluster.error_code, 0);
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].port, i32::from(b.kafka_port));
    let controllers: DescribeClusterResponse = ask(
        &b,
        ApiKey::DescribeCluster,
        2,
        &DescribeClusterRequest::default().with_endpoint_type(2),
    );
    assert_eq!(controllers.error_code, 114, "MISMATCHED_ENDPOINT_TYPE");

    // CreatePartitions with an assignment naming a broker that does not exist.
    let grow: CreatePartitionsResponse = ask(
        &b,
        ApiKey::CreatePartitions,
        3,
        &CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("v6"))
                .with_count(2)
                .with_assignments(Some(vec![
                    create_partitions_request::CreatePartitionsAssignment::default()
                        .with_broker_ids(vec![BrokerId(9)]),
                ])),
        ]),
    );
    assert_eq!(grow.results[0].error_code, 39, "INVALID_REPLICA_ASSIGNMENT");
    assert_eq!(partitions_count(&b, "v6"), Some(1));
    b.stop();
}
