//! What the admin APIs (topics, partitions, configs, records, leader epochs) share:
//! a refusal as Kafka answers one (an error code with its message), the check that a
//! partition is led here, and Kafka's numbering of config resources, config sources
//! and config types, which its clients decode by number.

use kafka_protocol::protocol::StrBytes;
use troupe_actors::auth::acl::Operation;
use troupe_actors::metadata::{MetadataImage, PartitionImage};
use troupe_actors::topic_config::{topic_config_def, ConfigSource, ConfigType, TOPIC_CONFIGS};
use troupe_actors::{BrokerError, ErrorKind};

use super::error_code;

/// Kafka's NOT_LEADER_OR_FOLLOWER: the partition is led by another broker.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// Kafka's `ConfigResource.Type` numbers for the resources served.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// A request (or a part of one) refused: Kafka's error code, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i16,
    pub message: String,
}

impl Refusal {
    pub fn new(code: i16, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Refusal {
        Refusal::new(error_code(kind), message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Refusal {
        Refusal::of_kind(ErrorKind::InvalidRequest, message)
    }

    /// The message as the responses carry it.
    pub fn message(&self) -> Option<StrBytes> {
        Some(StrBytes::from_string(self.message.clone()))
    }
}

impl From<BrokerError> for Refusal {
    fn from(e: BrokerError) -> Refusal {
        Refusal::of_kind(e.kind(), e.to_string())
    }
}

/// The error code and message of an outcome: `(0, None)` for success.
pub fn outcome<T>(result: &Result<T, Refusal>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(_) => (0, None),
        Err(refusal) => (refusal.code, refusal.message()),
    }
}

/// For each item of a request, whether its key is given more than once: Kafka
/// refuses every copy (a topic in CreateTopics, a resource in AlterConfigs, …).
pub fn repeated<K: Ord>(keys: &[K]) -> Vec<bool> {
    let mut counts = std::collections::BTreeMap::new();
    for key in keys {
        *counts.entry(key).or_insert(0usize) += 1;
    }
    keys.iter()
        .map(|k| counts.get(k).is_some_and(|n| *n > 1))
        .collect()
}

/// The refusal of every copy of `what`, named more than once in a request.
pub fn named_twice(what: &str) -> Refusal {
    Refusal::invalid_request(format!("{what} is named more than once in the request"))
}

/// Refuses config names given more than once for one resource, as Kafka does.
pub fn refuse_repeated_configs<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), Refusal> {
    let names: Vec<&str> = names.into_iter().collect();
    let mut twice: Vec<&str> = names
        .iter()
        .zip(repeated(&names))
        .filter(|(_, repeated)| *repeated)
        .map(|(name, _)| *name)
        .collect();
    twice.sort_unstable();
    twice.dedup();
    if twice.is_empty() {
        return Ok(());
    }
    Err(Refusal::invalid_request(format!(
        "config(s) given more than once: {}",
        twice.join(", ")
    )))
}

/// One config resource's answer to an AlterConfigs or IncrementalAlterConfigs
/// request (each has its own response type, of these same fields).
pub struct ResourceAnswer {
    pub resource_type: i8,
    pub resource_name: StrBytes,
    pub error_code: i16,
    pub error_message: Option<StrBytes>,
}

/// Alters each config resource of an AlterConfigs or IncrementalAlterConfigs
/// request with `alter`, all at once, every copy of a resource named twice refused;
/// answers each resource in request order.
pub async fn alter_each<R, Fut>(
    resources: Vec<R>,
    key: impl Fn(&R) -> (i8, StrBytes),
    alter: impl Fn(R) -> Fut,
) -> Vec<ResourceAnswer>
where
    Fut: std::future::Future<Output = Result<(), Refusal>>,
{
    let keys: Vec<(i8, StrBytes)> = resources.iter().map(key).collect();
    let twice = repeated(&keys);
    let alter = &alter;
    let answers = resources.into_iter().zip(keys).zip(twice).map(
        |((resource, (resource_type, resource_name)), twice)| async move {
            let altered = if twice {
                Err(named_twice("the resource"))
            } else {
                alter(resource).await
            };
            let (error_code, error_message) = outcome(&altered);
            ResourceAnswer {
                resource_type,
                resource_name,
                error_code,
                error_message,
            }
        },
    );
    futures::future::join_all(answers).await
}

/// The topic whose configs an alter request changes. Broker resources are refused:
/// Kafka's dynamic broker configs have no counterpart in Troupe, whose broker
/// settings are read at startup; other resources as [`ConfigResource::parse`]
/// refuses them.
pub fn topic_to_alter(
    image: &MetadataImage,
    resource_type: i8,
    name: &str,
) -> Result<String, Refusal> {
    match ConfigResource::parse(image, resource_type, name)? {
        ConfigResource::Topic(topic) => Ok(topic),
        ConfigResource::ThisBroker | ConfigResource::BrokerDefaults => Err(Refusal::invalid_request(
            "broker configs cannot be altered while the broker runs: set them in its configuration file (or --override) and restart it",
        )),
    }
}

/// `topic`-`partition` as the image has it, if this broker leads it: what only a
/// leader answers (deleting records, where an epoch ends) is refused elsewhere with
/// NOT_LEADER_OR_FOLLOWER, so the client asks the leader the image names.
pub fn led_here<'a>(
    image: &'a MetadataImage,
    topic: &str,
    partition: i32,
) -> Result<&'a PartitionImage, Refusal> {
    let p = image
        .topic(topic)?
        .partition(troupe_actors::ids::PartitionId::new(partition))?;
    if p.leader != image.node_id {
        return Err(Refusal::new(
            NOT_LEADER_OR_FOLLOWER,
            format!(
                "{topic}-{partition} is led by broker {}, not this one ({})",
                p.leader, image.node_id
            ),
        ));
    }
    Ok(p)
}

/// [`led_here`] for a client that may do `operation` on the topic: refused first
/// otherwise, so a topic it may not use is not told apart from one that does not
/// exist (Kafka's order).
pub fn authorized_led_here<'a>(
    session: &super::Session,
    image: &'a MetadataImage,
    operation: Operation,
    topic: &str,
    partition: i32,
) -> Result<&'a PartitionImage, Refusal> {
    session
        .engine
        .authorize_topic(&session.context, operation, topic)
        .map_err(BrokerError::from)?;
    led_here(image, topic, partition)
}

/// Kafka's FENCED_LEADER_EPOCH and UNKNOWN_LEADER_EPOCH.
pub const FENCED_LEADER_EPOCH: i16 = 74;
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
/// Kafka's `RecordBatch.NO_PARTITION_LEADER_EPOCH`: the client gave no epoch.
const NO_EPOCH: i32 = -1;

/// A client's `current_leader_epoch` (-1: not given) against the partition's epoch in
/// the image, as Kafka's leader checks it: older is FENCED_LEADER_EPOCH (the client's
/// metadata is stale), newer UNKNOWN_LEADER_EPOCH (this broker's is).
pub fn check_current_epoch(
    given: i32,
    current: troupe_actors::ids::LeaderEpoch,
) -> Result<(), Refusal> {
    let current = current.get();
    if given == NO_EPOCH || given == current {
        return Ok(());
    }
    if given < current {
        return Err(Refusal::new(
            FENCED_LEADER_EPOCH,
            format!("leader epoch {given} is older than the current {current}"),
        ));
    }
    Err(Refusal::new(
        UNKNOWN_LEADER_EPOCH,
        format!("leader epoch {given} is newer than the current {current}"),
    ))
}

/// A config resource, as the admin APIs name it, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    /// This broker, named by its node id.
    ThisBroker,
    /// Kafka's cluster-wide broker defaults (an empty broker name).
    BrokerDefaults,
}

impl ConfigResource {
    /// Checks a resource's type and name as Kafka's brokers do: a topic by a valid
    /// topic name; a broker by this broker's node id, or the empty name for the
    /// cluster-wide defaults. Other types are not served.
    pub fn parse(
        image: &MetadataImage,
        resource_type: i8,
        name: &str,
    ) -> Result<ConfigResource, Refusal> {
        match resource_type {
            RESOURCE_TOPIC => {
                troupe_actors::broker::validate_topic_name(name)?;
                Ok(ConfigResource::Topic(name.to_string()))
            }
            RESOURCE_BROKER if name.is_empty() => Ok(ConfigResource::BrokerDefaults),
            RESOURCE_BROKER => match name.parse::<i32>() {
                Ok(id) if id == image.node_id.get() => Ok(ConfigResource::ThisBroker),
                Ok(_) => Err(Refusal::invalid_request(format!(
                    "unexpected broker id {name}: this is broker {}, and it answers for itself or the empty name",
                    image.node_id
                ))),
                Err(_) => Err(Refusal::invalid_request(format!(
                    "broker id must be an integer, but it is '{name}'"
                ))),
            },
            other => Err(Refusal::invalid_request(format!(
                "unsupported resource type {other}: topics ({RESOURCE_TOPIC}) and brokers ({RESOURCE_BROKER}) are served"
            ))),
        }
    }
}

/// Kafka's `DescribeConfigsResponse.ConfigSource` number of a source.
pub fn source_id(source: ConfigSource) -> i8 {
    match source {
        ConfigSource::DynamicTopicConfig => 1,
        ConfigSource::StaticBrokerConfig => 4,
        ConfigSource::DefaultConfig => 5,
    }
}

/// Kafka's `DescribeConfigsResponse.ConfigType` number (0 unknown, 2 string, 3 int,
/// 5 long, 6 double, 7 list) of a topic config or of the broker key behind one;
/// `None` for a name that is neither.
pub fn config_type(name: &str) -> Option<i8> {
    let def =
        topic_config_def(name).or_else(|| TOPIC_CONFIGS.iter().find(|d| d.broker_key == name))?;
    Some(match def.kind {
        ConfigType::Long { max, .. } if max <= i64::from(i32::MAX) => 3,
        ConfigType::Long { .. } => 5,
        ConfigType::Double { .. } => 6,
        ConfigType::Enum(_) => 2,
        ConfigType::List(_) => 7,
    })
}

/// The documentation of a topic config, or of the broker key behind one.
pub fn documentation(name: &str) -> Option<&'static str> {
    topic_config_def(name)
        .or_else(|| TOPIC_CONFIGS.iter().find(|d| d.broker_key == name))
        .map(|d| d.doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_actors::ids::NodeId;

    #[test]
    fn resources_are_checked_as_kafka_checks_them() {
        let image = MetadataImage::single_node("c".into(), NodeId::new(1));
        let parse = |t, n: &str| ConfigResource::parse(&image, t, n);
        assert_eq!(
            parse(RESOURCE_TOPIC, "t"),
            Ok(ConfigResource::Topic("t".into()))
        );
        assert_eq!(parse(RESOURCE_TOPIC, "a b").map_err(|r| r.code), Err(17));
        assert_eq!(parse(RESOURCE_BROKER, "1"), Ok(ConfigResource::ThisBroker));
        assert_eq!(
            parse(RESOURCE_BROKER, ""),
            Ok(ConfigResource::BrokerDefaults)
        );
        for (t, n) in [
            (RESOURCE_BROKER, "2"),
            (RESOURCE_BROKER, "x"),
            (8, "1"),
            (32, "g"),
        ] {
            assert_eq!(parse(t, n).map_err(|r| r.code), Err(42), "{t} {n}");
        }
    }

    #[test]
    fn config_types_and_docs_come_from_the_topic_config_table() {
        assert_eq!(config_type("segment.bytes"), Some(3));
        assert_eq!(config_type("log.segment.bytes"), Some(3));
        assert_eq!(config_type("retention.ms"), Some(5));
        assert_eq!(config_type("cleanup.policy"), Some(7));
        assert_eq!(config_type("compression.type"), Some(2));
        assert_eq!(config_type("min.cleanable.dirty.ratio"), Some(6));
        assert_eq!(config_type("no.such.key"), None);
        assert!(documentation("log.retention.ms").is_some());
    }

    #[test]
    fn every_copy_of_a_repeated_key_is_marked() {
        assert_eq!(
            repeated(&["a", "b", "a", "c"]),
            vec![true, false, true, false]
        );
        assert!(refuse_repeated_configs(["x", "y"]).is_ok());
        let refused = refuse_repeated_configs(["x", "y", "x", "x"]).unwrap_err();
        assert_eq!(refused.code, 42);
        assert!(refused.message.ends_with(": x"), "{}", refused.message);
    }

    #[test]
    fn only_topics_are_altered() {
        let image = MetadataImage::single_node("c".into(), NodeId::new(1));
        assert_eq!(topic_to_alter(&image, RESOURCE_TOPIC, "t"), Ok("t".into()));
        for (t, n) in [(RESOURCE_BROKER, "1"), (RESOURCE_BROKER, ""), (8, "1")] {
            assert_eq!(topic_to_alter(&image, t, n).map_err(|r| r.code), Err(42));
        }
    }
}
