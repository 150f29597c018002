//! Partitions led by another broker, reached as Confluent's REST Proxy reaches its
//! brokers: Kafka's Produce, Fetch and ListOffsets over the listener named by
//! `inter.broker.listener.name`, with a [`PeerClient`] per broker (one pipelined
//! connection, bounded in-flight requests, a timeout on every call).
//!
//! The leader answers in Kafka's words (an error code, sometimes a message); this
//! file turns them back into the engine's errors: NOT_LEADER_OR_FOLLOWER and
//! OFFSET_OUT_OF_RANGE as their own variants (the request layer acts on them), any
//! other code as [`BrokerError::Remote`], whose kind is the code's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::{BrokerError, BrokerResult};
use crate::ids::NodeId;
use crate::metadata::MetadataImage;
use crate::partition::{Acks, AppendResult, Fetch, FetchResult, OffsetSpec};
use crate::peer_client::{broker_client_id, PeerClient, PeerError};
use crate::storage::{FetchData, RecordBatch};

/// Versions this broker speaks to its peers (every Troupe broker serves them).
const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 11;
const LIST_OFFSETS_VERSION: i16 = 5;
/// Kafka's codes the request layer acts on.
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// How this broker reaches the others.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    pub node_id: NodeId,
    /// `inter.broker.listener.name`: whose endpoint of a broker to dial.
    pub listener: String,
    /// The time limit of one call (a produce waits for the leader's fsync; a fetch
    /// long-polls up to its own wait, which is added).
    pub timeout: Duration,
    /// Requests in flight per peer.
    pub max_inflight: usize,
    /// TLS to the peers' inter-broker listener, when it is SSL.
    pub tls: Option<crate::peer_client::PeerTls>,
}

/// A partition on its leader: which broker, as the image has it.
pub struct At<'a> {
    pub image: &'a MetadataImage,
    pub node: NodeId,
    pub topic: &'a str,
    pub partition: i32,
}

/// A client per broker, made on first use and remade when its address changes.
pub struct Peers {
    settings: PeerSettings,
    clients: Mutex<HashMap<NodeId, PeerClient>>,
}

impl Peers {
    pub fn new(settings: PeerSettings) -> Self {
        Peers {
            settings,
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn node_id(&self) -> NodeId {
        self.settings.node_id
    }

    /// The client of broker `node`, at its endpoint in `image`.
    fn client(&self, image: &MetadataImage, node: NodeId) -> BrokerResult<PeerClient> {
        let listener = &self.settings.listener;
        let broker = image
            .brokers
            .get(&node)
            .ok_or_else(|| BrokerError::Unavailable(format!("broker {node} is not registered")))?;
        let endpoint = broker
            .endpoints
            .iter()
            .find(|e| e.listener.eq_ignore_ascii_case(listener))
            .ok_or_else(|| {
                BrokerError::Unavailable(format!(
                    "broker {node} has no {listener} listener registered"
                ))
            })?;
        let address = format!("{}:{}", endpoint.host, endpoint.port);
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&node).filter(|c| c.address() == address) {
            return Ok(client.clone());
        }
        let client = PeerClient::new(
            &address,
            &broker_client_id(&image.cluster_id, self.settings.node_id.get()),
            self.settings.max_inflight,
            self.settings.timeout,
            self.settings.tls.clone(),
        );
        clients.insert(node, client.clone());
        Ok(client)
    }

    /// Sends `request` in `version` to broker `node`: its answer within the usual
    /// limit, or — `Some(wait)`, a request the peer holds (a join waiting for its
    /// rebalance), sent on a connection of its own — within `wait`; or why none came.
    pub async fn call<R: kafka_protocol::protocol::Request>(
        &self,
        image: &MetadataImage,
        node: NodeId,
        request: &R,
        version: i16,
        timeout: Option<Duration>,
    ) -> BrokerResult<R::Response> {
        let client = self.client(image, node)?;
        let answer = match timeout {
            None => client.call(request, version).await,
            Some(wait) => client.call_waiting(request, version, wait).await,
        };
        answer.map_err(|e| BrokerError::Unavailable(format!("broker {node}: {e}")))
    }

    /// Appends `batch` to `topic`-`partition` on its leader `node`.
    pub async fn append(
        &self,
        at: &At<'_>,
        batch: &RecordBatch,
        acks: Acks,
    ) -> BrokerResult<AppendResult> {
        let (image, node, topic, partition) = (at.image, at.node, at.topic, at.partition);
        let client = self.client(image, node)?;
        let acks = match acks {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        };
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(self.settings.timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(Bytes::copy_from_slice(batch.as_bytes())))])]);
        let answer = client
            .call(&request, PRODUCE_VERSION)
            .await
            .map_err(|e| unreachable(node, e))?;
        let p = answer
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .ok_or_else(|| malformed(node, "a produce answer without the partition"))?;
        let message = p.error_message.as_ref().map(|m| m.to_string());
        check(p.error_code, message, node, topic, partition)?;
        let view = batch.view();
        let records = i64::from(view.records_count().max(1));
        Ok(AppendResult {
            base_offset: p.base_offset,
            last_offset: p.base_offset + records - 1,
            timestamp_ms: if p.log_append_time_ms >= 0 {
                p.log_append_time_ms
            } else {
                view.max_timestamp()
            },
            log_append_time_ms: (p.log_append_time_ms >= 0).then_some(p.log_append_time_ms),
            log_start_offset: p.log_start_offset,
            duplicate: false,
        })
    }

    /// Reads `topic`-`partition` from `offset` on its leader `node`.
    pub async fn fetch(&self, at: &At<'_>, fetch: &Fetch) -> BrokerResult<FetchResult> {
        let (image, node, topic, partition) = (at.image, at.node, at.topic, at.partition);
        let (offset, max_wait_ms) = (fetch.offset, fetch.max_wait_ms);
        let client = self.client(image, node)?;
        let max_bytes = fetch.max_bytes.min(i32::MAX as usize) as i32;
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms.min(i32::MAX as u64) as i32)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(max_bytes)])]);
        // A long poll holds its connection at the leader: not the shared one.
        let answer = if max_wait_ms > 0 {
            client
                .call_waiting(&request, FETCH_VERSION, self.settings.timeout)
                .await
        } else {
            client.call(&request, FETCH_VERSION).await
        }
        .map_err(|e| unreachable(node, e))?;
        let p = answer
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| malformed(node, "a fetch answer without the partition"))?;
        if p.error_code == OFFSET_OUT_OF_RANGE {
            return Err(BrokerError::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                requested: offset,
                log_start_offset: p.log_start_offset,
                log_end_offset: p.high_watermark,
            });
        }
        check(p.error_code, None, node, topic, partition)?;
        let bytes = p.records.as_ref().map(|r| r.to_vec()).unwrap_or_default();
        Ok(FetchResult {
            data: FetchData {
                bytes,
                log_start_offset: p.log_start_offset,
                log_end_offset: p.last_stable_offset.max(p.high_watermark),
            },
            high_watermark: p.high_watermark,
        })
    }

    /// What `spec` means in `topic`-`partition`, asked of its leader `node`:
    /// `Some((offset, timestamp))`, `None` when no record is at or after the time.
    pub async fn list_offsets(
        &self,
        at: &At<'_>,
        spec: OffsetSpec,
    ) -> BrokerResult<Option<(i64, Option<i64>)>> {
        let (image, node, topic, partition) = (at.image, at.node, at.topic, at.partition);
        let client = self.client(image, node)?;
        let timestamp = match spec {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        };
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(timestamp)])]);
        let answer = client
            .call(&request, LIST_OFFSETS_VERSION)
            .await
            .map_err(|e| unreachable(node, e))?;
        let p = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| malformed(node, "a list-offsets answer without the partition"))?;
        check(p.error_code, None, node, topic, partition)?;
        Ok((p.offset >= 0).then(|| {
            let time = (p.timestamp >= 0 && matches!(spec, OffsetSpec::Timestamp(_)))
                .then_some(p.timestamp);
            (p.offset, time)
        }))
    }
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// The leader's error code as the engine's error.
fn check(
    code: i16,
    message: Option<String>,
    node: NodeId,
    topic: &str,
    partition: i32,
) -> BrokerResult<()> {
    match code {
        NONE => Ok(()),
        // Appended there, then its leadership moved: outcome unknown, not to be sent
        // again.
        NOT_LEADER_OR_FOLLOWER
            if message
                .as_deref()
                .is_some_and(|m| m.contains(crate::error::LEADERSHIP_MOVED_MARK)) =>
        {
            Err(BrokerError::LeadershipMoved {
                topic: topic.to_string(),
                partition,
            })
        }
        NOT_LEADER_OR_FOLLOWER => Err(BrokerError::NotLeader {
            topic: topic.to_string(),
            partition,
            leader: None,
        }),
        code => Err(BrokerError::Remote {
            node,
            code,
            message: message.unwrap_or_else(|| {
                format!(
                    "{topic}-{partition}: {}",
                    crate::ErrorKind::name_of_code(code)
                )
            }),
        }),
    }
}

fn unreachable(node: NodeId, e: PeerError) -> BrokerError {
    match e {
        PeerError::NotConnected { reason, .. } => BrokerError::LeaderUnreachable { node, reason },
        e => BrokerError::Unavailable(format!("the partition's leader, broker {node}: {e}")),
    }
}

fn malformed(node: NodeId, what: &str) -> BrokerError {
    BrokerError::Internal(format!("broker {node} answered {what}"))
}

/// Shared by every route of the node.
pub type SharedPeers = Arc<Peers>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_that_appended_then_moved_is_not_taken_for_one_that_did_nothing() {
        let node = NodeId::new(2);
        let moved = BrokerError::LeadershipMoved {
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(
            check(
                NOT_LEADER_OR_FOLLOWER,
                Some(moved.to_string()),
                node,
                "t",
                0
            ),
            Err(moved)
        );
        let not_leader = check(
            NOT_LEADER_OR_FOLLOWER,
            Some("this broker does not lead t-0".into()),
            node,
            "t",
            0,
        );
        assert!(
            matches!(not_leader, Err(BrokerError::NotLeader { .. })),
            "{not_leader:?}"
        );
    }
}
