//! Metadata: the brokers (each with its endpoint on the listener the client came
//! through) and the topics asked for, each partition with its leader, leader epoch,
//! replicas and ISR — all read from the metadata image, so that in a cluster it lists
//! every broker and leader with no change here. A topic that does not exist is
//! UNKNOWN_TOPIC_OR_PARTITION (topics are not created by asking for them).

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::auth::acl::{Operation, ResourceType};
use troupe_actors::metadata::{MetadataImage, TopicImage};
use troupe_actors::ErrorKind;

use super::{advertised_brokers, error_code, Session, Since};

/// Kafka's "not asked for" value of the authorized-operations fields.
const OPERATIONS_NOT_ASKED: i32 = i32::MIN;

pub fn handle(session: &Session, request: MetadataRequest, version: i16) -> MetadataResponse {
    let image = session.engine.image();
    let brokers = advertised_brokers(session, &image)
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(id)
                .with_host(host)
                .with_port(port)
        })
        .collect();
    // v0: an empty list means every topic; v1 on: null does, and empty means none.
    let asked: Option<Vec<String>> = match request.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(
            list.into_iter()
                .filter_map(|t| t.name.map(|n| n.0.to_string()))
                .collect(),
        ),
    };
    let engine = &session.engine;
    let ctx = &session.context;
    let topics = match asked {
        // Every topic the client may describe.
        None => image
            .topics
            .values()
            .filter(|t| engine.may(ctx, Operation::Describe, ResourceType::Topic, &t.name))
            .map(|t| topic(&image, t, version))
            .collect(),
        Some(names) => names
            .into_iter()
            .map(|name| {
                let found = engine
                    .authorize_topic(ctx, Operation::Describe, &name)
                    .map_err(|denied| denied.kind())
                    .and_then(|()| image.topic(&name).map_err(|e| e.kind()));
                match found {
                    Ok(t) => topic(&image, t, version),
                    Err(kind) => MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name))))
                        .with_error_code(error_code(kind))
                        .since(version, 8, |m| {
                            m.with_topic_authorized_operations(OPERATIONS_NOT_ASKED)
                        }),
                }
            })
            .collect(),
    };
    MetadataResponse::default()
        .with_brokers(brokers)
        .since(version, 2, |m| {
            m.with_cluster_id(Some(StrBytes::from_string(image.cluster_id.clone())))
        })
        .since(version, 1, |m| {
            m.with_controller_id(BrokerId(image.controller_id.get()))
        })
        .with_topics(topics)
        .since(version, 8, |m| {
            // Asked for in 8 to 10; from 11 on, DescribeCluster answers it.
            if version <= 10 {
                m.with_cluster_authorized_operations(OPERATIONS_NOT_ASKED)
            } else {
                m
            }
        })
}

fn topic(image: &MetadataImage, t: &TopicImage, version: i16) -> MetadataResponseTopic {
    let ids = |nodes: &[troupe_actors::ids::NodeId]| -> Vec<BrokerId> {
        nodes.iter().map(|n| BrokerId(n.get())).collect()
    };
    let partitions = t
        .partitions
        .iter()
        .map(|p| {
            let leader_known = image.brokers.contains_key(&p.leader);
            MetadataResponsePartition::default()
                .with_partition_index(p.partition.get())
                .with_error_code(if leader_known {
                    0
                } else {
                    error_code(ErrorKind::Unavailable)
                })
                .with_leader_id(BrokerId(p.leader.get()))
                .since(version, 7, |m| m.with_leader_epoch(p.leader_epoch.get()))
                .with_replica_nodes(ids(&p.replicas))
                .with_isr_nodes(ids(&p.isr))
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .since(version, 10, |m| {
            m.with_topic_id(crate::topic_id(&t.topic_id))
        })
        .since(version, 1, |m| m.with_is_internal(t.internal))
        .with_partitions(partitions)
        .since(version, 8, |m| {
            m.with_topic_authorized_operations(OPERATIONS_NOT_ASKED)
        })
}
