//! Fetch: record batches from each partition asked for, sent as the log holds them
//! (the file's bytes; nothing is decoded or re-encoded on this path), within the
//! request's byte limits. When there is less than `min_bytes`, the request waits up to
//! `max_wait_ms` for any partition to get data (Kafka's DelayedFetch), then reads
//! once more. Fetch sessions (KIP-227) are not kept: every answer has session id 0,
//! which tells the client to send full fetches. A partition another broker leads is
//! NOT_LEADER_OR_FOLLOWER, and a client's `current_leader_epoch` is checked against the
//! image's (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH), as Kafka's leader checks it.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use troupe_actors::ids::{LeaderEpoch, NodeId};
use troupe_actors::partition::FetchResult;
use troupe_actors::peer_client::parse_broker_client_id;
use troupe_actors::requests::fetch::{fetch, replica_fetch, FetchRequest as Read, FollowerFetch};
use troupe_actors::storage::buffers::POOL;

use super::admin::{authorized_led_here, check_current_epoch, led_here};
use super::{error_code, throttle_ms, Session, Since};
use troupe_actors::auth::acl::Operation;
use troupe_actors::quotas::QuotaKind;

/// Kafka's FETCH_SESSION_ID_NOT_FOUND: the client drops its session and starts over.
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;

type Wanted = Vec<(TopicName, Vec<FetchPartition>)>;

/// The first Fetch version whose clients wait out a throttle themselves (KIP-219).
const KIP_219_FETCH: i16 = 8;

pub async fn handle(session: &Session, request: FetchRequest, version: i16) -> FetchResponse {
    if request.session_id != 0 {
        return FetchResponse::default().with_error_code(FETCH_SESSION_ID_NOT_FOUND);
    }
    let replica = request.replica_id.0;
    if replica >= 0 && !is_broker(session, replica) {
        return FetchResponse::default().with_error_code(CLUSTER_AUTHORIZATION_FAILED);
    }
    let reader = Reader {
        session,
        replica: (replica >= 0).then(|| NodeId::new(replica)),
        version,
    };
    let wanted: Wanted = request
        .topics
        .into_iter()
        .map(|t| (t.topic, t.partitions))
        .collect();
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0).max(1);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_wait_ms = u64::try_from(request.max_wait_ms).unwrap_or(0);
    let (mut responses, mut bytes, failed) = read_all(&reader, &wanted, max_bytes).await;
    if bytes < min_bytes.max(1) && !failed && max_wait_ms > 0 {
        log::trace!("fetch: {bytes} bytes now, waiting up to {max_wait_ms} ms");
        wait_for_data(&reader, &wanted, max_wait_ms).await;
        (responses, bytes, _) = read_all(&reader, &wanted, max_bytes).await;
    }
    // A consumer's bytes count against its fetch quota; over it, the answer waits
    // (Kafka's throttle), and says how long. Followers are brokers: never throttled.
    let throttle = match reader.replica {
        Some(_) => Duration::ZERO,
        None => session
            .engine
            .throttle(&session.context, QuotaKind::Consumer, bytes as u64),
    };
    session.mute.apply(throttle, version, KIP_219_FETCH).await;
    FetchResponse::default()
        .with_responses(responses)
        .since(version, 1, |m| {
            m.with_throttle_time_ms(throttle_ms(throttle))
        })
}

/// Reads every partition once, without waiting, in request order within
/// `max_bytes`: the responses, the bytes read, and whether any partition failed.
async fn read_all(
    reader: &Reader<'_>,
    wanted: &Wanted,
    max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let version = reader.version;
    let mut remaining = max_bytes;
    let mut total = 0;
    let mut failed = false;
    let mut responses = Vec::with_capacity(wanted.len());
    for (topic, partitions) in wanted {
        let mut answers = Vec::with_capacity(partitions.len());
        for p in partitions {
            let limit = usize::try_from(p.partition_max_bytes)
                .unwrap_or(0)
                .min(remaining);
            let answer = if limit == 0 {
                empty(p.partition, version)
            } else {
                reader.read_one(topic, p, limit, 0).await
            };
            failed |= answer.error_code != 0;
            let size = answer.records.as_ref().map_or(0, Bytes::len);
            remaining = remaining.saturating_sub(size);
            total += size;
            answers.push(answer);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(topic.clone())
                .with_partitions(answers),
        );
    }
    (responses, total, failed)
}

/// Waits, up to `max_wait_ms`, until any partition asked for has data (or fails).
async fn wait_for_data(reader: &Reader<'_>, wanted: &Wanted, max_wait_ms: u64) {
    let mut waits: FuturesUnordered<_> = wanted
        .iter()
        .flat_map(|(topic, partitions)| partitions.iter().map(move |p| (topic, p)))
        .map(|(topic, p)| reader.read_one(topic, p, 1, max_wait_ms))
        .collect();
    let any = async {
        while let Some(answer) = waits.next().await {
            if answer.error_code != 0 || answer.records.as_ref().is_some_and(|r| !r.is_empty()) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(max_wait_ms), any).await;
}

/// Who reads: a consumer, or a follower broker (`replica`).
struct Reader<'a> {
    session: &'a Session,
    replica: Option<NodeId>,
    version: i16,
}

/// Kafka's CLUSTER_AUTHORIZATION_FAILED: a replica id from a client that is not
/// that broker of this cluster.
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;

/// Whether the connection is the broker's own traffic (the inter-broker listener,
/// as a super user when there is an authorizer: Kafka's ClusterAction) and its
/// client id names broker `replica` of this cluster.
fn is_broker(session: &Session, replica: i32) -> bool {
    if !session.engine.is_broker(&session.context) {
        return false;
    }
    let cluster = session.engine.image().cluster_id.clone();
    session
        .context
        .client_id
        .as_deref()
        .and_then(parse_broker_client_id)
        .is_some_and(|(c, n)| c == cluster && n == replica)
}

impl Reader<'_> {
    async fn read_one(
        &self,
        topic: &TopicName,
        p: &FetchPartition,
        max_bytes: usize,
        max_wait_ms: u64,
    ) -> PartitionData {
        match self.replica {
            Some(replica) => {
                self.follower_read(replica, topic, p, max_bytes, max_wait_ms)
                    .await
            }
            None => read_one(self.session, topic, p, max_bytes, max_wait_ms, self.version).await,
        }
    }

    /// A follower's read: up to the leader's log end, its position recorded.
    async fn follower_read(
        &self,
        replica: NodeId,
        topic: &TopicName,
        p: &FetchPartition,
        max_bytes: usize,
        max_wait_ms: u64,
    ) -> PartitionData {
        let session = self.session;
        let image = session.engine.image();
        let led = led_here(&image, topic.0.as_str(), p.partition)
            .and_then(|led| check_current_epoch(p.current_leader_epoch, led.leader_epoch));
        if let Err(refusal) = led {
            return refused(p.partition, refusal.code, self.version);
        }
        let fetch = FollowerFetch {
            replica,
            offset: p.fetch_offset,
            leader_epoch: (p.current_leader_epoch >= 0)
                .then(|| LeaderEpoch::new(p.current_leader_epoch)),
            max_bytes,
            max_wait_ms,
        };
        let topic_name = topic.0.as_str();
        match replica_fetch(
            &session.engine,
            &session.context,
            topic_name,
            p.partition,
            fetch,
        )
        .await
        {
            Ok(fetched) => answer_with(fetched, p, self.version),
            // The follower learns where the leader's log starts: past its own end,
            // it starts again there.
            Err(e @ troupe_actors::BrokerError::OffsetOutOfRange { .. }) => {
                let start = match &e {
                    troupe_actors::BrokerError::OffsetOutOfRange {
                        log_start_offset, ..
                    } => *log_start_offset,
                    _ => -1,
                };
                refused(p.partition, error_code(e.kind()), self.version).since(
                    self.version,
                    5,
                    |m| m.with_log_start_offset(start),
                )
            }
            Err(e) => refused(p.partition, error_code(e.kind()), self.version),
        }
    }
}

async fn read_one(
    session: &Session,
    topic: &TopicName,
    p: &FetchPartition,
    max_bytes: usize,
    max_wait_ms: u64,
    version: i16,
) -> PartitionData {
    let read = Read {
        partition: p.partition,
        offset: p.fetch_offset,
        max_bytes,
        max_wait_ms,
        reset: None,
    };
    let image = session.engine.image();
    let led = authorized_led_here(
        session,
        &image,
        Operation::Read,
        topic.0.as_str(),
        p.partition,
    )
    .and_then(|led| check_current_epoch(p.current_leader_epoch, led.leader_epoch));
    if let Err(refusal) = led {
        return refused(p.partition, refusal.code, version);
    }
    match fetch(&session.engine, &session.context, topic.0.as_str(), read).await {
        Ok((_, fetched)) if max_wait_ms == 0 => {
            crate::metrics::fetched(topic.0.as_str(), &fetched.data.bytes, p.fetch_offset);
            answer_with(fetched, p, version)
        }
        // A wait's read only says whether there is data; the read after it answers.
        Ok((_, fetched)) => answer_with(fetched, p, version),
        Err(e) => refused(p.partition, error_code(e.kind()), version),
    }
}

fn answer_with(fetched: FetchResult, p: &FetchPartition, version: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(p.partition)
        .with_high_watermark(fetched.high_watermark)
        .with_last_stable_offset(fetched.high_watermark)
        .since(version, 5, |m| {
            m.with_log_start_offset(fetched.data.log_start_offset)
        })
        .with_aborted_transactions(Some(Vec::new()))
        .since(version, 11, |m| m.with_preferred_read_replica(BrokerId(-1)))
        // Back to the pool once the answer is written.
        .with_records(Some(POOL.shared(fetched.data.bytes)))
}

/// Every partition's record batches in `response`.
pub fn records(response: &FetchResponse) -> Vec<Bytes> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter_map(|p| p.records.clone())
        .filter(|r| !r.is_empty())
        .collect()
}

/// A partition answered with an error.
fn refused(partition: i32, code: i16, version: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(code)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .since(version, 5, |m| m.with_log_start_offset(-1))
        .since(version, 11, |m| m.with_preferred_read_replica(BrokerId(-1)))
        .with_records(Some(Bytes::new()))
}

/// A partition left out of this answer by the byte limit: no records, no error.
fn empty(partition: i32, version: i16) -> PartitionData {
    refused(partition, 0, version)
}
