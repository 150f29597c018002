//! Checks v3 answers against Confluent REST Proxy's published v3 schema.
//!
//! The tables below are derived from Confluent's `api/v3/openapi.yaml` in
//! confluentinc/kafka-rest ("REST Admin API", `info.version: 3.0.0`, the
//! `components/schemas` section), plus the fields Confluent's own v3 entities have
//! added since (`ConsumerGroupData.type` and `is_mixed_consumer_group`;
//! `PartitionWithOffsetsData` of `GET …/partitions/{p}/offset`). Each resource
//! kind lists the fields the spec requires and the optional ones whose type it
//! fixes; fields beyond the spec (Troupe's extras) are allowed, as a JSON client
//! ignores them. This is the check, not a copy of the document.

use serde_json::{Map, Value};

/// A field's type in the spec.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    /// `type: string, nullable: true`
    NullStr,
    Int,
    /// `type: integer, nullable: true`
    NullInt,
    Bool,
    /// `Relationship`: `{"related": string}`
    Rel,
    IntArray,
    StrArray,
    /// `ConfigSynonymData` items: `name`, `source` required, `value` nullable.
    Synonyms,
    /// One of the listed strings (the spec's enum / x-extensible-enum).
    OneOf(&'static [&'static str]),
}

const CONFIG_SOURCES: &[&str] = &[
    "DYNAMIC_CLUSTER_LINK_CONFIG",
    "DYNAMIC_TOPIC_CONFIG",
    "DYNAMIC_BROKER_LOGGER_CONFIG",
    "DYNAMIC_BROKER_CONFIG",
    "DYNAMIC_DEFAULT_BROKER_CONFIG",
    "STATIC_BROKER_CONFIG",
    "DEFAULT_CONFIG",
    "UNKNOWN",
];
const GROUP_STATES: &[&str] = &[
    "UNKNOWN",
    "PREPARING_REBALANCE",
    "COMPLETING_REBALANCE",
    "STABLE",
    "DEAD",
    "EMPTY",
];
const GROUP_TYPES: &[&str] = &["UNKNOWN", "CLASSIC", "CONSUMER", "SHARE"];

/// (field, type, required)
type Fields = &'static [(&'static str, Ty, bool)];

const ABSTRACT_CONFIG: Fields = &[
    ("cluster_id", Ty::Str, true),
    ("name", Ty::Str, true),
    ("value", Ty::NullStr, false),
    ("is_default", Ty::Bool, true),
    ("is_read_only", Ty::Bool, true),
    ("is_sensitive", Ty::Bool, true),
    ("source", Ty::OneOf(CONFIG_SOURCES), true),
    ("synonyms", Ty::Synonyms, true),
];

/// The schema of a single resource, by its `kind`: its own fields, then those of
/// the schema it extends (`allOf`), if any.
fn resource_fields(kind: &str) -> Option<(Fields, Fields)> {
    use Ty::*;
    let none: Fields = &[];
    Some(match kind {
        "KafkaCluster" => (
            &[
                ("cluster_id", Str, true),
                ("controller", Rel, false),
                ("acls", Rel, true),
                ("brokers", Rel, true),
                ("broker_configs", Rel, true),
                ("consumer_groups", Rel, true),
                ("topics", Rel, true),
                ("partition_reassignments", Rel, true),
            ],
            none,
        ),
        "KafkaBroker" => (
            &[
                ("cluster_id", Str, true),
                ("broker_id", Int, true),
                ("host", NullStr, false),
                ("port", NullInt, false),
                ("rack", NullStr, false),
                ("configs", Rel, true),
                ("partition_replicas", Rel, true),
            ],
            none,
        ),
        "KafkaTopic" => (
            &[
                ("cluster_id", Str, true),
                ("topic_name", Str, true),
                ("is_internal", Bool, true),
                ("replication_factor", Int, true),
                ("partitions_count", Int, true),
                ("partitions", Rel, true),
                ("configs", Rel, true),
                ("partition_reassignments", Rel, true),
                ("authorized_operations", StrArray, false),
            ],
            none,
        ),
        "KafkaPartition" => (
            &[
                ("cluster_id", Str, true),
                ("topic_name", Str, true),
                ("partition_id", Int, true),
                ("leader", Rel, false),
                ("replicas", Rel, true),
                ("reassignment", Rel, true),
            ],
            none,
        ),
        "KafkaPartitionWithOffsets" => (
            &[
                ("cluster_id", Str, true),
                ("topic_name", Str, true),
                ("partition_id", Int, true),
                ("earliest_offset", Int, true),
                ("latest_offset", Int, true),
            ],
            none,
        ),
        "KafkaReplica" => (
            &[
                ("cluster_id", Str, true),
                ("topic_name", Str, true),
                ("partition_id", Int, true),
                ("broker_id", Int, true),
                ("is_leader", Bool, true),
                ("is_in_sync", Bool, true),
                ("broker", Rel, true),
            ],
            none,
        ),
        "KafkaReassignment" => (
            &[
                ("cluster_id", Str, true),
                ("topic_name", Str, true),
                ("partition_id", Int, true),
                ("adding_replicas", IntArray, true),
                ("removing_replicas", IntArray, true),
                ("replicas", Rel, true),
            ],
            none,
        ),
        "KafkaTopicConfig" => (&[("topic_name", Str, true)], ABSTRACT_CONFIG),
        "KafkaBrokerConfig" => (&[("broker_id", Int, true)], ABSTRACT_CONFIG),
        "KafkaClusterConfig" => (&[("config_type", Str, true)], ABSTRACT_CONFIG),
        "KafkaAcl" => (
            &[
                ("cluster_id", Str, true),
                ("resource_type", Str, true),
                ("resource_name", Str, true),
                ("pattern_type", Str, true),
                ("principal", Str, true),
                ("host", Str, true),
                ("operation", Str, true),
                ("permission", Str, true),
            ],
            none,
        ),
        "KafkaConsumerGroup" => (
            &[
                ("cluster_id", Str, true),
                ("consumer_group_id", Str, true),
                ("is_simple", Bool, true),
                ("partition_assignor", Str, true),
                ("state", OneOf(GROUP_STATES), true),
                ("type", OneOf(GROUP_TYPES), true),
                ("is_mixed_consumer_group", Bool, true),
                ("coordinator", Rel, true),
                ("consumers", Rel, true),
                ("lag_summary", Rel, true),
            ],
            none,
        ),
        "KafkaConsumer" => (
            &[
                ("cluster_id", Str, true),
                ("consumer_group_id", Str, true),
                ("consumer_id", Str, true),
                ("instance_id", NullStr, false),
                ("client_id", Str, true),
                ("assignments", Rel, true),
            ],
            none,
        ),
        "KafkaConsumerAssignment" => (
            &[
                ("cluster_id", Str, true),
                ("consumer_group_id", Str, true),
                ("consumer_id", Str, true),
                ("topic_name", Str, true),
                ("partition_id", Int, true),
                ("partition", Rel, true),
                ("lag", Rel, true),
            ],
            none,
        ),
        "KafkaConsumerLag" => (
            &[
                ("cluster_id", Str, true),
                ("consumer_group_id", Str, true),
                ("topic_name", Str, true),
                ("partition_id", Int, true),
                ("current_offset", Int, true),
                ("log_end_offset", Int, true),
                ("lag", Int, true),
                ("consumer_id", Str, true),
                ("instance_id", NullStr, false),
                ("client_id", Str, true),
            ],
            none,
        ),
        "KafkaConsumerGroupLagSummary" => (
            &[
                ("cluster_id", Str, true),
                ("consumer_group_id", Str, true),
                ("max_lag_consumer_id", Str, true),
                ("max_lag_instance_id", NullStr, false),
                ("max_lag_client_id", Str, true),
                ("max_lag_topic_name", Str, true),
                ("max_lag_partition_id", Int, true),
                ("max_lag", Int, true),
                ("total_lag", Int, true),
                ("max_lag_consumer", Rel, true),
                ("max_lag_partition", Rel, true),
            ],
            none,
        ),
        _ => return None,
    })
}

/// The item kind of a collection kind (`KafkaTopicList` holds `KafkaTopic`s).
fn list_item_kind(kind: &str) -> Option<&str> {
    let item = kind.strip_suffix("List")?;
    resource_fields(item).map(|_| item)
}

fn check_type(path: &str, v: &Value, ty: Ty) -> Result<(), String> {
    let fail = |what: &str| Err(format!("{path}: expected {what}, got {v}"));
    let is_int = |v: &Value| v.is_i64() || v.is_u64();
    match ty {
        Ty::Str if v.is_string() => Ok(()),
        Ty::Str => fail("a string"),
        Ty::NullStr if v.is_string() || v.is_null() => Ok(()),
        Ty::NullStr => fail("a string or null"),
        Ty::Int if is_int(v) => Ok(()),
        Ty::Int => fail("an integer"),
        Ty::NullInt if is_int(v) || v.is_null() => Ok(()),
        Ty::NullInt => fail("an integer or null"),
        Ty::Bool if v.is_boolean() => Ok(()),
        Ty::Bool => fail("a boolean"),
        Ty::Rel => match v.get("related") {
            Some(Value::String(_)) if v.is_object() => Ok(()),
            _ => fail("a relationship {\"related\": string}"),
        },
        Ty::IntArray => match v.as_array() {
            Some(items) if items.iter().all(is_int) => Ok(()),
            _ => fail("an array of integers"),
        },
        Ty::StrArray => match v.as_array() {
            Some(items) if items.iter().all(Value::is_string) => Ok(()),
            _ => fail("an array of strings"),
        },
        Ty::Synonyms => {
            let Some(items) = v.as_array() else {
                return fail("an array of config synonyms");
            };
            for (i, s) in items.iter().enumerate() {
                let at = format!("{path}[{i}]");
                check_fields(
                    &at,
                    s,
                    &[
                        ("name", Ty::Str, true),
                        ("value", Ty::NullStr, false),
                        ("source", Ty::OneOf(CONFIG_SOURCES), true),
                    ],
                )?;
            }
            Ok(())
        }
        Ty::OneOf(choices) => match v.as_str() {
            Some(s) if choices.contains(&s) => Ok(()),
            _ => fail(&format!("one of {choices:?}")),
        },
    }
}

fn check_fields(path: &str, v: &Value, fields: &[(&str, Ty, bool)]) -> Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("{path}: expected an object, got {v}"));
    };
    for (name, ty, required) in fields {
        match obj.get(*name) {
            Some(value) => check_type(&format!("{path}.{name}"), value, *ty)?,
            None if *required => return Err(format!("{path}: required field {name} missing")),
            None => {}
        }
    }
    Ok(())
}

fn check_metadata(path: &str, obj: &Map<String, Value>, collection: bool) -> Result<(), String> {
    let Some(meta) = obj.get("metadata") else {
        return Err(format!("{path}: required field metadata missing"));
    };
    let extra = if collection {
        ("next", Ty::NullStr, false)
    } else {
        ("resource_name", Ty::NullStr, false)
    };
    check_fields(
        &format!("{path}.metadata"),
        meta,
        &[("self", Ty::Str, true), extra],
    )
}

/// Checks a v3 resource or collection (anything with a `kind`) against the spec.
pub fn check_resource(path: &str, v: &Value) -> Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("{path}: expected an object, got {v}"));
    };
    let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
        return Err(format!(
            "{path}: required field kind missing or not a string"
        ));
    };
    if let Some(item_kind) = list_item_kind(kind) {
        check_metadata(path, obj, true)?;
        let Some(items) = obj.get("data").and_then(Value::as_array) else {
            return Err(format!("{path}: a {kind} needs a data array"));
        };
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}.data[{i}]");
            if item.get("kind").and_then(Value::as_str) != Some(item_kind) {
                return Err(format!("{at}: a {kind} holds {item_kind}s, got {item}"));
            }
            check_resource(&at, item)?;
        }
        return Ok(());
    }
    let Some((own, base)) = resource_fields(kind) else {
        return Err(format!(
            "{path}: kind {kind} is not in Confluent's v3 schema"
        ));
    };
    check_metadata(path, obj, false)?;
    check_fields(path, v, base)?;
    check_fields(path, v, own)
}

/// Confluent's `Error`: `error_code` (int32) and `message` (string or null).
pub fn check_error(path: &str, v: &Value) -> Result<(), String> {
    check_fields(
        path,
        v,
        &[
            ("error_code", Ty::Int, true),
            ("message", Ty::NullStr, true),
        ],
    )
}

/// Confluent's `ProduceResponse` (one delivery report).
pub fn check_produce_report(path: &str, v: &Value) -> Result<(), String> {
    check_fields(
        path,
        v,
        &[
            ("error_code", Ty::Int, true),
            ("cluster_id", Ty::Str, true),
            ("topic_name", Ty::Str, true),
            ("partition_id", Ty::Int, true),
            ("offset", Ty::Int, true),
            ("timestamp", Ty::NullStr, false),
        ],
    )?;
    for side in ["key", "value"] {
        match v.get(side) {
            None | Some(Value::Null) => {}
            Some(data) => check_fields(
                &format!("{path}.{side}"),
                data,
                &[("size", Ty::Int, true), ("type", Ty::NullStr, false)],
            )?,
        }
    }
    Ok(())
}

/// Checks any v3 answer by its status: an error body below, a resource or
/// collection for 200 and 201; 204 has no body.
pub fn assert_v3_answer(what: &str, status: u16, body: &Value) {
    let checked = match status {
        204 => {
            assert!(body.is_null(), "{what}: 204 with a body {body}");
            Ok(())
        }
        200 | 201 => check_resource(what, body),
        _ => check_error(what, body),
    };
    if let Err(e) = checked {
        panic!("{what} (HTTP {status}) does not match Confluent's v3 schema: {e}\n{body}");
    }
}

#[test]
fn the_checker_refuses_what_the_spec_refuses() {
    let rel = serde_json::json!({"related": "http://x"});
    let topic = serde_json::json!({
        "kind": "KafkaTopic",
        "metadata": {"self": "http://x", "resource_name": "crn:///kafka=c/topic=t"},
        "cluster_id": "c", "topic_name": "t", "is_internal": false,
        "replication_factor": 1, "partitions_count": 1,
        "partitions": rel, "configs": rel, "partition_reassignments": rel,
    });
    assert_eq!(check_resource("topic", &topic), Ok(()));
    let mut missing = topic.clone();
    missing.as_object_mut().unwrap().remove("partitions");
    assert!(check_resource("topic", &missing).is_err());
    let mut wrong = topic.clone();
    wrong["partitions_count"] = serde_json::json!("1");
    assert!(check_resource("topic", &wrong).is_err());
    let mut null_in_required = topic.clone();
    null_in_required["topic_name"] = Value::Null;
    assert!(check_resource("topic", &null_in_required).is_err());
    let list = serde_json::json!({"kind": "KafkaTopicList", "metadata": {"self": "x", "next": null}, "data": [topic]});
    assert_eq!(check_resource("list", &list), Ok(()));
    let mixed = serde_json::json!({"kind": "KafkaTopicList", "metadata": {"self": "x"}, "data": [{"kind": "KafkaBroker"}]});
    assert!(check_resource("list", &mixed).is_err());
    assert!(check_resource(
        "x",
        &serde_json::json!({"kind": "KafkaNothing", "metadata": {"self": "x"}})
    )
    .is_err());
    assert!(check_error("e", &serde_json::json!({"error_code": 404})).is_err());
}
