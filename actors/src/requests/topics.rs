//! Topics: list and describe (reads of the metadata image), create, delete and grow
//! (decisions of the topic registry — on one node the `Broker`, the controller's part —
//! which persists each before answering and publishes the new image before its
//! answer, so a client reads its own change).

use std::collections::BTreeMap;

use super::{Engine, RequestContext};
use crate::auth::acl::{Operation, ResourceType};
use crate::broker::{CreatePartitions, CreateTopic, DeleteTopic, ReassignPartition, TopicMetadata};
use crate::error::BrokerResult;
use crate::ids::{NodeId, PartitionId};
use crate::metadata::TopicImage;

/// A topic to create, as CreateTopics asks for it (and as the controller is asked,
/// locally or over the controller listener).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NewTopic {
    pub name: String,
    /// `None` (or -1) takes `num.partitions`.
    pub partitions: Option<i32>,
    /// `None` (or -1) takes `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Kafka's manual replica assignment, `(partition, broker ids)`: when not empty it
    /// sets the partition count and replication factor, and neither may be given.
    /// Each partition's replicas, by broker (the first preferred as leader).
    pub replicas_assignments: Vec<(PartitionId, Vec<NodeId>)>,
    pub configs: BTreeMap<String, String>,
    pub validate_only: bool,
}

/// What the image says of a topic, as the admin requests answer it.
pub fn metadata(topic: &TopicImage) -> TopicMetadata {
    TopicMetadata {
        name: topic.name.clone(),
        topic_id: topic.topic_id.clone(),
        partitions: topic.partitions.len() as i32,
        replication_factor: topic.replication_factor,
        internal: topic.internal,
        configs: topic.overrides.clone(),
    }
}

/// Every topic `ctx` may describe, by name.
pub fn list(engine: &Engine, ctx: &RequestContext) -> Vec<TopicMetadata> {
    let image = engine.image();
    image
        .topics
        .values()
        .filter(|t| engine.may(ctx, Operation::Describe, ResourceType::Topic, &t.name))
        .map(|t| metadata(t))
        .collect()
}

/// A topic (Describe on it: refused whether or not it exists, as Kafka does).
pub fn describe(engine: &Engine, ctx: &RequestContext, name: &str) -> BrokerResult<TopicMetadata> {
    engine.authorize_topic(ctx, Operation::Describe, name)?;
    let image = engine.image();
    image.topic(name).map(|t| metadata(t))
}

/// Creates a topic (Create on the cluster or on the topic).
pub async fn create(
    engine: &Engine,
    ctx: &RequestContext,
    topic: NewTopic,
) -> BrokerResult<TopicMetadata> {
    engine.authorize_create_topic(ctx, &topic.name)?;
    engine.ask_broker(CreateTopic(topic)).await
}

/// Deletes a topic (Delete on it).
pub async fn delete(engine: &Engine, ctx: &RequestContext, name: &str) -> BrokerResult<()> {
    engine.authorize_topic(ctx, Operation::Delete, name)?;
    engine
        .ask_broker(DeleteTopic {
            name: name.to_string(),
        })
        .await
}

/// Raises the partition count to `count` (Kafka never lowers it; Alter on the topic).
pub async fn create_partitions(
    engine: &Engine,
    ctx: &RequestContext,
    name: &str,
    count: i32,
    validate_only: bool,
) -> BrokerResult<TopicMetadata> {
    engine.authorize_topic(ctx, Operation::Alter, name)?;
    engine
        .ask_broker(CreatePartitions {
            name: name.to_string(),
            count,
            validate_only,
        })
        .await
}

/// Starts moving `topic`-`partition` to `replicas` (the first preferred as leader):
/// new replicas catch up as followers, then the ones left out are dropped. Answers
/// once the move has begun; [`reassignments`] shows it until it completes.
pub async fn reassign(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    replicas: Vec<NodeId>,
) -> BrokerResult<()> {
    engine.authorize_cluster(ctx, Operation::Alter)?;
    engine
        .ask_broker(ReassignPartition {
            topic: topic.to_string(),
            partition,
            replicas,
        })
        .await
}

/// A partition's reassignment in progress, as the image has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    /// Every replica now (the target ones, then those being removed).
    pub replicas: Vec<NodeId>,
    pub adding: Vec<NodeId>,
    pub removing: Vec<NodeId>,
}

/// The reassignments in progress, of `topic` or of every topic; an unknown topic
/// is an error.
pub fn reassignments(
    engine: &Engine,
    ctx: &RequestContext,
    topic: Option<&str>,
) -> BrokerResult<Vec<Reassignment>> {
    engine.authorize_cluster(ctx, Operation::Describe)?;
    let image = engine.image();
    if let Some(name) = topic {
        image.topic(name)?;
    }
    Ok(image
        .topics
        .values()
        .filter(|t| topic.is_none_or(|name| t.name == name))
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| !p.adding.is_empty() || !p.removing.is_empty())
                .map(|p| Reassignment {
                    topic: t.name.clone(),
                    partition: p.partition.get(),
                    replicas: p.replicas.clone(),
                    adding: p.adding.clone(),
                    removing: p.removing.clone(),
                })
        })
        .collect())
}
