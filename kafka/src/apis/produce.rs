//! Produce: each partition's record batch, as the producer encoded it, handed to the
//! request layer (`append_batch`: checked, then stored as it came) in request order,
//! answered once `acks` is met — or not at all for `acks=0`, as Kafka does.
//! Transactional produce is refused: transactions are a later issue.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::metadata::MetadataImage;
use troupe_actors::partition::{Acks, AppendResult};
use troupe_actors::requests::produce::append_batch;
use troupe_actors::storage::buffers::POOL;
use troupe_actors::{BrokerResult, ErrorKind};

use super::admin::authorized_led_here;
use super::throttle_ms;
use super::{error_code, Session, Since};
use crate::metrics;
use troupe_actors::auth::acl::Operation;
use troupe_actors::quotas::QuotaKind;

/// Kafka's INVALID_REQUIRED_ACKS and INVALID_REQUEST.
const INVALID_REQUIRED_ACKS: i16 = 21;
const INVALID_REQUEST: i16 = 42;

type Pending = Pin<Box<dyn Future<Output = BrokerResult<AppendResult>> + Send>>;

pub enum Answer {
    /// The response, once every append is acknowledged.
    Later(Pin<Box<dyn Future<Output = ProduceResponse> + Send>>),
    /// `acks=0`: no response; the future ends when the appends are done.
    None(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// Hands one partition's batch to the request layer, unless another broker leads
/// the partition (NOT_LEADER_OR_FOLLOWER, read from the image).
fn append(
    session: &Session,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: Acks,
) -> Outcome {
    if let Err(refusal) = authorized_led_here(session, image, Operation::Write, topic, partition) {
        return Outcome::Refused(refusal.code, refusal.message);
    }
    let size = metrics::batch_size(&records);
    // Into a kept buffer (see troupe_actors::storage::buffers), which the partition
    // gives back once the batch is written.
    let mut bytes = POOL.take(records.len());
    bytes.extend_from_slice(&records);
    match append_batch(
        &session.engine,
        &session.context,
        topic,
        partition,
        bytes,
        acks,
    ) {
        Ok(pending) => Outcome::Appending(Box::pin(pending), size),
        Err(e) => Outcome::Refused(error_code(e.kind()), e.to_string()),
    }
}

/// One partition's outcome: refused up front, or appending.
enum Outcome {
    Refused(i16, String),
    /// With the batch's records and bytes, counted once it is acknowledged.
    Appending(Pending, (u64, u64)),
}

/// The first Produce version whose clients wait out a throttle themselves (KIP-219).
const KIP_219_PRODUCE: i16 = 6;

pub fn handle(session: &Session, request: ProduceRequest, version: i16) -> Answer {
    let acks = match request.acks {
        0 => Some(Acks::None),
        1 => Some(Acks::Leader),
        -1 => Some(Acks::All),
        _ => None,
    };
    let refusal = match (acks, &request.transactional_id) {
        (None, _) => Some((
            INVALID_REQUIRED_ACKS,
            format!("acks={} (expected 0, 1 or -1)", request.acks),
        )),
        (_, Some(_)) => Some((
            error_code(ErrorKind::TransactionsUnsupported),
            "transactions are not supported yet".to_string(),
        )),
        _ => None,
    };
    let image = session.engine.image();
    // The request's bytes count against the client's produce quota; over it, the
    // answer waits (Kafka's throttle), and says how long.
    let bytes: u64 = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len() as u64))
        .sum();
    let throttle = session
        .engine
        .throttle(&session.context, QuotaKind::Producer, bytes);
    let mute = session.mute.clone();
    let topics: Vec<_> = request
        .topic_data
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions: Vec<(i32, Outcome)> = topic
                .partition_data
                .into_iter()
                .map(|p| {
                    let outcome = match (&refusal, acks, p.records) {
                        (Some((code, message)), _, _) => Outcome::Refused(*code, message.clone()),
                        (_, _, None) => Outcome::Refused(INVALID_REQUEST, "no records".to_string()),
                        (None, Some(acks), Some(records)) => {
                            append(session, &image, &name, p.index, records, acks)
                        }
                        (None, None, Some(_)) => {
                            Outcome::Refused(INVALID_REQUIRED_ACKS, String::new())
                        }
                    };
                    (p.index, outcome)
                })
                .collect();
            (topic.name, partitions)
        })
        .collect();
    let answered = async move {
        let topics = topics.into_iter().map(|(name, partitions)| async move {
            let topic = name.0.to_string();
            let topic = &topic;
            let responses = join_all(partitions.into_iter().map(|(index, outcome)| async move {
                let answer = PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .since(version, 5, |m| m.with_log_start_offset(-1));
                let refused = |code: i16, message: String| {
                    answer.clone().with_error_code(code).since(version, 8, |m| {
                        m.with_error_message(Some(StrBytes::from_string(message)))
                    })
                };
                match outcome {
                    Outcome::Refused(code, message) => refused(code, message),
                    Outcome::Appending(pending, size) => match pending.await {
                        Ok(done) => {
                            metrics::produced(topic, size);
                            answer
                                .clone()
                                .with_base_offset(done.base_offset)
                                .with_log_append_time_ms(done.log_append_time_ms.unwrap_or(-1))
                                .since(version, 5, |m| {
                                    m.with_log_start_offset(done.log_start_offset)
                                })
                        }
                        Err(e) => refused(error_code(e.kind()), e.to_string()),
                    },
                }
            }))
            .await;
            TopicProduceResponse::default()
                .with_name(name)
                .with_partition_responses(responses)
        });
        let response = ProduceResponse::default().with_responses(join_all(topics).await);
        mute.apply(throttle, version, KIP_219_PRODUCE).await;
        response.since(version, 1, |m| {
            m.with_throttle_time_ms(throttle_ms(throttle))
        })
    };
    if acks == Some(Acks::None) {
        return Answer::None(Box::pin(async move {
            answered.await;
        }));
    }
    Answer::Later(Box::pin(answered))
}
