//! Produce, for every protocol: choose each record's partition (explicit, Kafka's
//! murmur2 for keyed records, sticky per request for keyless ones), group the records
//! of one request into one batch per partition (split to respect
//! `max.message.bytes`), append the batches — in order within a partition, in
//! parallel across partitions — and report each record's partition and offset.
//!
//! A client that encodes its own batches (the Kafka protocol) hands them in whole
//! ([`append_batch`]): checked, then stored as they came, idempotent producer's
//! fields and all.

use crate::quotas::QuotaKind;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::join_all;

use super::{Engine, RequestContext, TopicRoute};
use crate::clock::Clock;
use crate::error::{BrokerError, BrokerResult};
use crate::partition::{Acks, Append, AppendResult};
use crate::partitioner::partition_for_key;
use crate::storage::{
    convert_message_set, records_magic, BatchError, Record, RecordBatch, RecordHeader,
    TimestampType, BATCH_HEADER_BYTES,
};

/// A record as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceRecord {
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<RecordHeader>,
    pub timestamp_ms: Option<i64>,
}

/// Where one record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// A topic routed for one produce request: its keyless records go to
/// `sticky_partition`; the next request gets the next partition (Kafka's sticky
/// partitioner moves on per batch; a REST request is our batch).
#[derive(Clone)]
pub struct ProduceTarget {
    pub route: TopicRoute,
    /// To find a partition's leader again when it moves mid-request.
    pub routes: super::Routes,
    pub sticky_partition: i32,
    /// Stamps records that come without a timestamp.
    pub clock: Clock,
    /// Who produces, for their produce quota.
    engine: Engine,
    ctx: RequestContext,
}

impl std::ops::Deref for ProduceTarget {
    type Target = TopicRoute;
    fn deref(&self) -> &TopicRoute {
        &self.route
    }
}

/// Each topic's next sticky partition. Topics no longer in the image are dropped
/// when the map has grown past twice the topics there are.
#[derive(Default)]
pub struct StickyPartitioner {
    next: Mutex<HashMap<String, i32>>,
}

impl StickyPartitioner {
    fn take(&self, engine: &Engine, topic: &str, partitions: i32) -> i32 {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let count = partitions.max(1);
        let entry = next.entry(topic.to_string()).or_insert(0);
        let sticky = *entry % count;
        *entry = (sticky + 1) % count;
        // Only a map grown past a few topics is checked against the image: produce
        // requests pay no image read.
        if next.len() > 16 {
            let image = engine.image();
            if next.len() > 2 * image.topics.len() + 16 {
                next.retain(|t, _| image.topics.contains_key(t));
            }
        }
        sticky
    }
}

/// Looks the topic up for producing: unknown topics, internal topics and topics
/// being deleted are refused.
/// Write on the topic.
pub fn target(engine: &Engine, ctx: &RequestContext, topic: &str) -> BrokerResult<ProduceTarget> {
    engine.authorize_topic(ctx, crate::auth::acl::Operation::Write, topic)?;
    let route = writable_route(engine, topic)?;
    let sticky_partition = engine
        .sticky
        .take(engine, topic, route.partition_count() as i32);
    Ok(ProduceTarget {
        route,
        routes: engine.routes.clone(),
        sticky_partition,
        clock: engine.clock.clone(),
        engine: engine.clone(),
        ctx: ctx.clone(),
    })
}

/// The topic's route, unless clients may not write to it (internal, or being
/// deleted).
fn writable_route(engine: &Engine, topic: &str) -> BrokerResult<TopicRoute> {
    let route = engine.route(topic)?;
    if route.internal {
        return Err(BrokerError::TopicIsInternal(topic.to_string()));
    }
    if route.deleting {
        return Err(BrokerError::InvalidRequest(format!(
            "topic '{topic}' is being deleted"
        )));
    }
    Ok(route)
}

/// An upper estimate of a record's encoded size (varint lengths and deltas included).
fn estimated_bytes(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[RecordHeader]) -> usize {
    let headers: usize = headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len) + 10)
        .sum();
    key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + headers + 30
}

/// Produces `records` to the target with the producer's `acks`; each record gets its
/// own result, in order.
pub async fn produce(
    target: &ProduceTarget,
    records: Vec<ProduceRecord>,
    acks: Acks,
) -> Vec<BrokerResult<Produced>> {
    produce_in_order(target, records, acks, &mut PartitionFailures::new()).await
}

/// Partitions of one request whose append failed, with the error: a request produced
/// in several windows carries it from one window to the next, so nothing is appended
/// to such a partition after the failure (a client retrying the failures must not
/// see them reordered).
pub type PartitionFailures = BTreeMap<i32, BrokerError>;

/// [`produce`], for one window of a request: partitions that failed in an earlier
/// window (`failures`) take no more records, and failures of this one are added.
pub async fn produce_in_order(
    target: &ProduceTarget,
    records: Vec<ProduceRecord>,
    acks: Acks,
    failures: &mut PartitionFailures,
) -> Vec<BrokerResult<Produced>> {
    let max_message_bytes = target.max_message_bytes;
    let partitions = target.partition_count() as i32;
    let now = target.clock.now_ms();
    let mut results: Vec<Option<BrokerResult<Produced>>> = vec![None; records.len()];
    // partition -> [(index in request, record)]
    let mut groups: BTreeMap<i32, Vec<(usize, Record)>> = BTreeMap::new();
    let mut request_bytes = 0u64;
    for (i, r) in records.into_iter().enumerate() {
        let partition = match r.partition {
            Some(p) if p < 0 || p >= partitions => {
                results[i] = Some(Err(BrokerError::UnknownPartition {
                    topic: target.name.clone(),
                    partition: p,
                }));
                continue;
            }
            Some(p) => p,
            None => match &r.key {
                Some(key) => partition_for_key(key, partitions),
                None => target.sticky_partition,
            },
        };
        let record = Record {
            timestamp_ms: r.timestamp_ms.unwrap_or(now),
            key: r.key,
            value: r.value,
            headers: r.headers,
        };
        let size = estimated_bytes(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        ) + BATCH_HEADER_BYTES;
        request_bytes += size as u64;
        if size > max_message_bytes {
            results[i] = Some(Err(BrokerError::RecordTooLarge {
                size_bytes: size,
                max_message_bytes,
            }));
            continue;
        }
        groups.entry(partition).or_default().push((i, record));
    }
    let sends = groups.into_iter().map(|(partition, group)| {
        let (routes, route) = (&target.routes, &target.route);
        // Too few in-sync replicas for acks=all: refused before anything is appended.
        let earlier = failures
            .get(&partition)
            .cloned()
            .or_else(|| target.route.check_min_insync(partition, acks).err());
        async move {
            let mut out = Vec::with_capacity(group.len());
            // After a failed batch, later ones of the same partition are not sent: a
            // client retrying the failures must not see them reordered.
            let mut failed: Option<BrokerError> = earlier;
            for chunk in split_by_size(group, max_message_bytes) {
                let indexes: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
                let recs: Vec<Record> = chunk.into_iter().map(|(_, r)| r).collect();
                let encoded = match &failed {
                    Some(e) => Err(e.clone()),
                    None => RecordBatch::encode(&recs, TimestampType::CreateTime).map_err(|e| {
                        BrokerError::InvalidRequest(format!("cannot encode records: {e}"))
                    }),
                };
                let appended = match encoded {
                    Ok(batch) => {
                        routes
                            .on_leader(route, partition, |leader| {
                                leader.append(batch.clone(), acks)
                            })
                            .await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = &appended {
                    failed.get_or_insert_with(|| e.clone());
                }
                for (n, (index, record)) in indexes.into_iter().zip(recs).enumerate() {
                    let result = appended.as_ref().map_err(Clone::clone).map(|a| Produced {
                        partition,
                        offset: a.base_offset + n as i64,
                        timestamp_ms: a.log_append_time_ms.unwrap_or(record.timestamp_ms),
                    });
                    out.push((index, result));
                }
            }
            (partition, failed, out)
        }
    });
    for (partition, failed, group) in join_all(sends).await {
        if let Some(e) = failed {
            failures.insert(partition, e);
        }
        for (index, result) in group {
            results[index] = Some(result);
        }
    }
    // Over its produce quota, the client's answer waits (Kafka's throttle).
    let throttle = target
        .engine
        .throttle(&target.ctx, QuotaKind::Producer, request_bytes);
    if !throttle.is_zero() {
        target.clock.sleep(throttle).await;
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(BrokerError::Internal("record was not produced".into()))))
        .collect()
}

/// Appends one record batch a client encoded to `topic`-`partition`, stored as it
/// came (the log sets only its base offset and leader epoch, and its time under
/// LogAppendTime). Refused before anything is written when the topic takes no writes,
/// the batch is larger than `max.message.bytes`, or it fails its checks. An idempotent
/// producer's batch is checked against its state in the partition: the answer's
/// `duplicate` says it was a retry of a batch the partition holds, answered with the
/// earlier offsets; `BrokerError::OutOfOrderSequence` and
/// `BrokerError::InvalidProducerEpoch` refuse it unwritten.
///
/// The append is queued at the partition before this returns: batches handed in one
/// after another are appended in that order, whenever their futures are awaited. The
/// future answers once `acks` is met.
pub fn append_batch(
    engine: &Engine,
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    bytes: Vec<u8>,
    acks: Acks,
) -> BrokerResult<impl std::future::Future<Output = BrokerResult<AppendResult>> + use<>> {
    engine.authorize_topic(ctx, crate::auth::acl::Operation::Write, topic)?;
    let route = writable_route(engine, topic)?;
    let addr = route.partition(partition)?.clone();
    route.check_min_insync(partition, acks)?;
    if bytes.len() > route.max_message_bytes {
        return Err(BrokerError::RecordTooLarge {
            size_bytes: bytes.len(),
            max_message_bytes: route.max_message_bytes,
        });
    }
    // An old client's v0/v1 message set is converted to one v2 batch on the way in
    // (Kafka refuses those in Produce v3+; taking them costs nothing here).
    let batch = match records_magic(&bytes) {
        Some(magic) if magic < 2 => convert_message_set(&bytes).map(|c| c.batch),
        _ => RecordBatch::from_bytes(bytes),
    };
    let batch = batch.map_err(|e| {
        let (topic, reason) = (topic.to_string(), e.to_string());
        match e {
            BatchError::CrcMismatch { .. } => BrokerError::CorruptBatch {
                topic,
                partition,
                reason,
            },
            _ => BrokerError::InvalidRecord {
                topic,
                partition,
                reason,
            },
        }
    })?;
    let appended = addr.send(Append { batch, acks });
    Ok(async move { appended.await.map_err(BrokerError::mailbox)? })
}

/// The first record of a request too large for `max.message.bytes`, as the error
/// that refuses the whole request (so nothing of it is written).
pub fn oversized(records: &[ProduceRecord], max_message_bytes: usize) -> Option<BrokerError> {
    records.iter().find_map(|r| {
        let size =
            estimated_bytes(r.key.as_deref(), r.value.as_deref(), &r.headers) + BATCH_HEADER_BYTES;
        (size > max_message_bytes).then_some(BrokerError::RecordTooLarge {
            size_bytes: size,
            max_message_bytes,
        })
    })
}

/// Consecutive runs of records whose batch stays within `max_bytes` (estimated).
fn split_by_size(group: Vec<(usize, Record)>, max_bytes: usize) -> Vec<Vec<(usize, Record)>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut size = BATCH_HEADER_BYTES;
    for (i, r) in group {
        let n = estimated_bytes(r.key.as_deref(), r.value.as_deref(), &r.headers);
        if !current.is_empty() && size + n > max_bytes {
            chunks.push(std::mem::take(&mut current));
            size = BATCH_HEADER_BYTES;
        }
        size += n;
        current.push((i, r));
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}
