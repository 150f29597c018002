//! CreateTopics: each topic with its partition count and replication factor (-1:
//! the broker's `num.partitions` and `default.replication.factor`), or a manual
//! replica assignment, and its config overrides — created by the topic registry
//! (`requests::topics::create`), which checks all of it; `validate_only` checks
//! without creating. Each topic gets its own answer, as Kafka's does:
//! TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
//! INVALID_CONFIG, INVALID_TOPIC_EXCEPTION, INVALID_REQUEST (a name given twice,
//! both a count and an assignment). From v5 the answer carries what was created:
//! partition count, replication factor and effective configs; from v7 its topic id.
//!
//! `timeout_ms` is not waited on: on one node a topic exists, on disk and in the
//! metadata image, before the registry answers, so there is nothing to wait for.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::broker::TopicMetadata;
use troupe_actors::ids::{NodeId, PartitionId};
use troupe_actors::requests::configs;
use troupe_actors::requests::topics::{self, NewTopic};
use troupe_actors::ErrorKind;

use super::admin::{named_twice, outcome, repeated, source_id, Refusal};
use super::{Session, Since};

pub async fn handle(
    session: &Session,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let names: Vec<String> = request
        .topics
        .iter()
        .map(|t| t.name.0.to_string())
        .collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for (topic, twice) in request.topics.into_iter().zip(repeated(&names)) {
        let name = topic.name.clone();
        let created = if twice {
            Err(named_twice("the topic"))
        } else {
            create(session, topic, request.validate_only).await
        };
        let (code, message) = outcome(&created);
        let result = CreatableTopicResult::default()
            .with_name(name)
            .with_error_code(code)
            .with_error_message(message);
        results.push(match created {
            Ok(done) => with_details(session, result, done, request.validate_only, version).await,
            Err(_) => result.since(version, 5, |m| m.with_configs(None)),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create(
    session: &Session,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<TopicMetadata, Refusal> {
    let name = topic.name.0.to_string();
    let mut configs = BTreeMap::new();
    let mut nulls = Vec::new();
    for config in &topic.configs {
        let key = config.name.to_string();
        let Some(value) = &config.value else {
            nulls.push(key);
            continue;
        };
        if configs.insert(key.clone(), value.to_string()).is_some() {
            return Err(Refusal::invalid_request(format!(
                "config {key} is given more than once"
            )));
        }
    }
    if !nulls.is_empty() {
        return Err(Refusal::of_kind(
            ErrorKind::InvalidConfig,
            format!(
                "null value not supported for topic configs: {}",
                nulls.join(",")
            ),
        ));
    }
    let replicas_assignments = topic
        .assignments
        .iter()
        .map(|a| {
            let brokers = a.broker_ids.iter().map(|b| NodeId::new(b.0)).collect();
            (PartitionId::new(a.partition_index), brokers)
        })
        .collect();
    let new = NewTopic {
        name,
        partitions: Some(topic.num_partitions),
        replication_factor: Some(topic.replication_factor),
        replicas_assignments,
        configs,
        validate_only,
    };
    Ok(topics::create(&session.engine, &session.context, new).await?)
}

/// What v5 and later report of a created (or validated) topic.
async fn with_details(
    session: &Session,
    result: CreatableTopicResult,
    done: TopicMetadata,
    validate_only: bool,
    version: i16,
) -> CreatableTopicResult {
    if version < 5 {
        return result;
    }
    let described =
        configs::configs_with_overrides(&session.engine, &session.context, done.configs).await;
    let result = result
        .with_num_partitions(done.partitions)
        .with_replication_factor(done.replication_factor)
        .since(version, 7, |m| {
            // A topic only validated has no id: it does not exist.
            if validate_only {
                m
            } else {
                m.with_topic_id(crate::topic_id(&done.topic_id))
            }
        });
    match described {
        Ok(entries) => result.with_configs(Some(
            entries
                .into_iter()
                .map(|e| {
                    CreatableTopicConfigs::default()
                        .with_name(StrBytes::from_string(e.name))
                        .with_value(Some(StrBytes::from_string(e.value)))
                        .with_config_source(source_id(e.source))
                })
                .collect(),
        )),
        // The topic is created; only its configs could not be read (Kafka's
        // topic_config_error_code says exactly that).
        Err(e) => result
            .with_configs(None)
            .with_topic_config_error_code(super::error_code(e.kind())),
    }
}
