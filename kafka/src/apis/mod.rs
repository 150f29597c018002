//! The APIs the listener serves, one file per API key, each a translator between
//! Kafka's messages and the engine's request layer (`troupe_actors::requests`), as
//! REST and WebSocket are. [`SUPPORTED`] is the one list of keys and versions: it
//! routes requests, and ApiVersions advertises exactly it.
//!
//! A request is handled in two phases, so that a connection keeps Kafka's order and
//! still pipelines: [`handle`] runs in request order — it decodes, routes and queues
//! the work at the actors (a produce's appends are in the partitions' mailboxes when
//! it returns) — and yields a [`Reply`], a future the connection awaits in the same
//! order to write the response. Only waiting for acknowledgements overlaps.

mod acls;
mod admin;
mod alter_configs;
pub mod api_versions;
mod client_quotas;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod fetch;
mod find_coordinator;
#[cfg(test)]
mod group_tests;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
pub mod sasl;
mod sync_group;
mod user_scram_credentials;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use troupe_actors::group::TopicPartition;
use troupe_actors::requests::membership::PartitionOutcomes;
use troupe_actors::requests::{Engine, RequestContext};

use crate::codec::{decode_body, encode_response, encode_response_sharing, CodecError, Frame};
use crate::ListenerConfig;

/// Every API key served, with the versions served: `(key, min, max)`. Minimums are
/// the crate's (Kafka 4's); maximums stop before versions that need what Troupe does
/// not have yet (topic ids in Produce and Fetch from v13; the consumer group protocol
/// of KIP-848, whose member epochs OffsetCommit v9 and OffsetFetch v9 carry).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    // The admin APIs, each at every version the crate has (Kafka 4's).
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::InitProducerId, 0, 4),
    // SASL. The handshake's v0 is advertised because librdkafka (before 2.x's later
    // releases) checks for it before any SCRAM; after either version the exchange
    // goes in SaslAuthenticate requests (v0's raw tokens, from clients older than
    // Kafka 1.0, are not served: such a connection is closed).
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

/// The versions of `key` served, if it is served.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// What a connection's requests share: the engine, who is asking, the listener's
/// settings, and where the connection is in authenticating.
pub struct Session {
    pub engine: Engine,
    pub context: RequestContext,
    pub config: Arc<ListenerConfig>,
    pub auth: sasl::AuthState,
    /// Until when the connection's next request waits: a client over its quota.
    pub mute: Mute,
}

/// A connection muted while its client is throttled (KIP-219): the answer that
/// earned the throttle goes at once, saying how long, and the connection's next
/// request is not handled before the time is up — so a client that ignores the
/// throttle time gains nothing. Shared with the reply futures that decide it.
#[derive(Debug, Clone, Default)]
pub struct Mute(Arc<std::sync::Mutex<Option<tokio::time::Instant>>>);

impl Mute {
    /// Mutes the connection for `throttle` from now (or longer, if it already is).
    pub fn extend(&self, throttle: std::time::Duration) {
        if throttle.is_zero() {
            return;
        }
        let until = tokio::time::Instant::now() + throttle;
        let mut muted = match self.0.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        *muted = Some(muted.map_or(until, |m| m.max(until)));
    }

    /// Waits out the mute, if any.
    pub async fn wait(&self) {
        let until = match self.0.lock() {
            Ok(mut m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    /// A throttle applied as the request's `version` wants it: from `since_version`
    /// on (KIP-219) the answer goes at once and the connection is muted; before, the
    /// answer itself waits. The throttle is what the answer reports either way.
    pub async fn apply(&self, throttle: std::time::Duration, version: i16, since_version: i16) {
        if throttle.is_zero() {
            return;
        }
        if version >= since_version {
            self.extend(throttle);
        } else {
            tokio::time::sleep(throttle).await;
        }
    }
}

/// SaslHandshake and SaslAuthenticate, which change the connection's state (every
/// other request is [`handle`]d).
pub async fn handle_sasl(session: &mut Session, mut request: Request) -> Result<Reply, CodecError> {
    Ok(if request.key == ApiKey::SaslHandshake {
        let body = decode(&mut request)?;
        ready(&request, sasl::handshake(session, body))
    } else {
        let body = decode(&mut request)?;
        let response = sasl::authenticate(session, body, request.version).await;
        ready(&request, response)
    })
}

/// The response frame, once the work behind it is done; `None` when Kafka sends no
/// response (a produce with `acks=0`).
pub type Reply = Pin<Box<dyn Future<Output = Result<Option<Frame>, CodecError>> + Send>>;

/// One decoded request, ready to handle.
pub struct Request {
    pub key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub body: Bytes,
}

/// Decodes the body of `request` as `T`.
fn decode<T: Decodable>(request: &mut Request) -> Result<T, CodecError> {
    decode_body(
        &mut request.body,
        request.version,
        &format!("{:?}", request.key),
    )
}

/// A throttle as Kafka's responses carry it: whole milliseconds.
pub fn throttle_ms(throttle: std::time::Duration) -> i32 {
    i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX)
}

/// A reply that is ready now.
fn ready<R: Encodable + HeaderVersion>(request: &Request, response: R) -> Reply {
    ready_sharing(request, response, &[])
}

/// A reply that is ready now, referencing `shared` rather than copying it (see
/// [`encode_response_sharing`]).
fn ready_sharing<R: Encodable + HeaderVersion>(
    request: &Request,
    response: R,
    shared: &[Bytes],
) -> Reply {
    let encoded = encode_response_sharing(
        request.correlation_id,
        request.version,
        &response,
        &format!("{:?}", request.key),
        shared,
    );
    Box::pin(async move { encoded.map(Some) })
}

/// A reply once `response` resolves.
fn later<R, F>(request: &Request, response: F) -> Reply
where
    R: Encodable + HeaderVersion,
    F: Future<Output = R> + Send + 'static,
{
    let (correlation_id, version) = (request.correlation_id, request.version);
    let what = format!("{:?}", request.key);
    Box::pin(async move {
        let response = response.await;
        encode_response(correlation_id, version, &response, &what).map(Some)
    })
}

/// A reply once `answer` has answered the decoded body — in the first phase, so the
/// connection reads nothing more meanwhile: group requests park until the group lets
/// them through (a join until the rebalance's members have joined), and Kafka too
/// handles one request of a connection at a time (clients talk to the coordinator on
/// a connection of their own).
async fn answered<T, R, F>(
    mut request: Request,
    answer: impl FnOnce(T) -> F,
) -> Result<Reply, CodecError>
where
    T: Decodable,
    R: Encodable + HeaderVersion,
    F: Future<Output = R>,
{
    let body = decode(&mut request)?;
    let response = answer(body).await;
    Ok(ready(&request, response))
}

/// Handles one request of a served key and version (the connection checked both).
pub async fn handle(session: &Session, mut request: Request) -> Result<Reply, CodecError> {
    let version = request.version;
    Ok(match request.key {
        ApiKey::ApiVersions => {
            let body = decode(&mut request)?;
            ready(&request, api_versions::handle(&body, version))
        }
        ApiKey::Metadata => {
            let body = decode(&mut request)?;
            ready(&request, metadata::handle(session, body, version))
        }
        ApiKey::Produce => {
            let body = decode(&mut request)?;
            match produce::handle(session, body, version) {
                produce::Answer::Later(f) => later(&request, f),
                produce::Answer::None(f) => Box::pin(async move {
                    f.await;
                    Ok(None)
                }),
            }
        }
        ApiKey::Fetch => {
            let body = decode(&mut request)?;
            let response = fetch::handle(session, body, version).await;
            // The records go out as the log read them, with no copy into the frame.
            let records = fetch::records(&response);
            ready_sharing(&request, response, &records)
        }
        ApiKey::ListOffsets => {
            let body = decode(&mut request)?;
            let response = list_offsets::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::FindCoordinator => {
            let body = decode(&mut request)?;
            let response = find_coordinator::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::CreateTopics => {
            let body = decode(&mut request)?;
            let response = create_topics::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::DeleteTopics => {
            let body = decode(&mut request)?;
            let response = delete_topics::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::CreatePartitions => {
            let body = decode(&mut request)?;
            let response = create_partitions::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::DescribeConfigs => {
            let body = decode(&mut request)?;
            let response = describe_configs::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::AlterConfigs => {
            let body = decode(&mut request)?;
            let response = alter_configs::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::IncrementalAlterConfigs => {
            let body = decode(&mut request)?;
            let response = incremental_alter_configs::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::DescribeCluster => {
            let body = decode(&mut request)?;
            ready(&request, describe_cluster::handle(session, body, version))
        }
        ApiKey::DeleteRecords => {
            let body = decode(&mut request)?;
            let response = delete_records::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let body = decode(&mut request)?;
            let response = offset_for_leader_epoch::handle(session, body, version).await;
            ready(&request, response)
        }
        ApiKey::JoinGroup => answered(request, |b| join_group::handle(session, b, version)).await?,
        ApiKey::SyncGroup => answered(request, |b| sync_group::handle(session, b, version)).await?,
        ApiKey::Heartbeat => answered(request, |b| heartbeat::handle(session, b, version)).await?,
        ApiKey::LeaveGroup => {
            answered(request, |b| leave_group::handle(session, b, version)).await?
        }
        ApiKey::OffsetCommit => {
            answered(request, |b| offset_commit::handle(session, b, version)).await?
        }
        ApiKey::OffsetFetch => {
            answered(request, |b| offset_fetch::handle(session, b, version)).await?
        }
        ApiKey::OffsetDelete => {
            answered(request, |b| offset_delete::handle(session, b, version)).await?
        }
        ApiKey::ListGroups => {
            answered(request, |b| list_groups::handle(session, b, version)).await?
        }
        ApiKey::DescribeGroups => {
            answered(request, |b| describe_groups::handle(session, b, version)).await?
        }
        ApiKey::DeleteGroups => {
            answered(request, |b| delete_groups::handle(session, b, version)).await?
        }
        ApiKey::DescribeAcls => {
            let body = decode(&mut request)?;
            ready(&request, acls::describe(session, body))
        }
        ApiKey::CreateAcls => {
            let body = decode(&mut request)?;
            let response = acls::create(session, body).await;
            ready(&request, response)
        }
        ApiKey::DeleteAcls => {
            let body = decode(&mut request)?;
            let response = acls::delete(session, body).await;
            ready(&request, response)
        }
        ApiKey::DescribeUserScramCredentials => {
            let body = decode(&mut request)?;
            ready(&request, user_scram_credentials::describe(session, body))
        }
        ApiKey::DescribeClientQuotas => {
            let body = decode(&mut request)?;
            ready(&request, client_quotas::describe(session, body))
        }
        ApiKey::AlterClientQuotas => {
            let body = decode(&mut request)?;
            let response = client_quotas::alter(session, body).await;
            ready(&request, response)
        }
        ApiKey::AlterUserScramCredentials => {
            let body = decode(&mut request)?;
            let response = user_scram_credentials::alter(session, body).await;
            ready(&request, response)
        }
        ApiKey::InitProducerId => {
            let body = decode(&mut request)?;
            let response = init_producer_id::handle(session, body, version).await;
            ready(&request, response)
        }
        other => {
            return Err(CodecError::Decode {
                what: format!("{other:?}"),
                reason: "not served".into(),
            })
        }
    })
}

/// Sets a field that exists from version `first` on; before it the field keeps its
/// default (the codec refuses a field set where the version has none).
pub trait Since: Sized {
    fn since(self, version: i16, first: i16, set: impl FnOnce(Self) -> Self) -> Self {
        if version >= first {
            set(self)
        } else {
            self
        }
    }
}

impl<T> Since for T {}

/// Every broker of `image` with an endpoint on the listener this session came
/// through, as `(id, host, port)`: what Metadata and DescribeCluster list.
pub fn advertised_brokers<'a>(
    session: &'a Session,
    image: &'a troupe_actors::metadata::MetadataImage,
) -> impl Iterator<
    Item = (
        kafka_protocol::messages::BrokerId,
        kafka_protocol::protocol::StrBytes,
        i32,
    ),
> + 'a {
    image.brokers.values().filter_map(|b| {
        let endpoint = b.endpoint(&session.config.listener_name)?;
        Some((
            kafka_protocol::messages::BrokerId(b.id.get()),
            kafka_protocol::protocol::StrBytes::from_string(endpoint.host.clone()),
            i32::from(endpoint.port),
        ))
    })
}

/// Kafka's code for an engine error.
pub fn error_code(kind: troupe_actors::ErrorKind) -> i16 {
    kind.mapping().kafka_code
}

/// Each partition's Kafka error code (0: done), to answer a request's partitions in
/// the request's own order (OffsetCommit, OffsetDelete).
struct PartitionCodes(HashMap<TopicPartition, i16>);

impl PartitionCodes {
    fn new(outcomes: PartitionOutcomes) -> PartitionCodes {
        let codes = outcomes
            .into_iter()
            .map(|(tp, outcome)| (tp, outcome.map_or_else(|e| error_code(e.kind()), |()| 0)))
            .collect();
        PartitionCodes(codes)
    }

    /// The code of `partition` of `topic`; one the engine did not answer (a bug) is
    /// UNKNOWN_SERVER_ERROR rather than a success.
    fn of(&self, topic: &str, partition: i32) -> i16 {
        self.0
            .get(&TopicPartition::new(topic, partition))
            .copied()
            .unwrap_or(error_code(troupe_actors::ErrorKind::Internal))
    }
}

#[cfg(test)]
mod tests {
    //! Every request decoder the listener uses, fed random and mutated bytes: each
    //! answers `Ok` or `Err` — never a panic, and never an allocation sized by a
    //! declared length rather than by the bytes that came.

    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use proptest::prelude::*;

    /// Decodes `body` as the request type of `key`, as [`handle`] would.
    fn decode_as(key: ApiKey, version: i16, body: &[u8]) -> Result<(), CodecError> {
        let mut b = Bytes::copy_from_slice(body);
        let what = "fuzz";
        match key {
            ApiKey::Produce => decode_body::<ProduceRequest>(&mut b, version, what).map(drop),
            ApiKey::Fetch => decode_body::<FetchRequest>(&mut b, version, what).map(drop),
            ApiKey::ListOffsets => {
                decode_body::<ListOffsetsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::Metadata => decode_body::<MetadataRequest>(&mut b, version, what).map(drop),
            ApiKey::FindCoordinator => {
                decode_body::<FindCoordinatorRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::ApiVersions => {
                decode_body::<ApiVersionsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::InitProducerId => {
                decode_body::<InitProducerIdRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::CreateTopics => {
                decode_body::<CreateTopicsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DeleteTopics => {
                decode_body::<DeleteTopicsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::CreatePartitions => {
                decode_body::<CreatePartitionsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DescribeConfigs => {
                decode_body::<DescribeConfigsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::AlterConfigs => {
                decode_body::<AlterConfigsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::IncrementalAlterConfigs => {
                decode_body::<IncrementalAlterConfigsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DescribeCluster => {
                decode_body::<DescribeClusterRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DeleteRecords => {
                decode_body::<DeleteRecordsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::OffsetForLeaderEpoch => {
                decode_body::<OffsetForLeaderEpochRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::JoinGroup => decode_body::<JoinGroupRequest>(&mut b, version, what).map(drop),
            ApiKey::SyncGroup => decode_body::<SyncGroupRequest>(&mut b, version, what).map(drop),
            ApiKey::Heartbeat => decode_body::<HeartbeatRequest>(&mut b, version, what).map(drop),
            ApiKey::LeaveGroup => decode_body::<LeaveGroupRequest>(&mut b, version, what).map(drop),
            ApiKey::OffsetCommit => {
                decode_body::<OffsetCommitRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::OffsetFetch => {
                decode_body::<OffsetFetchRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::OffsetDelete => {
                decode_body::<OffsetDeleteRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::ListGroups => decode_body::<ListGroupsRequest>(&mut b, version, what).map(drop),
            ApiKey::DescribeGroups => {
                decode_body::<DescribeGroupsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DeleteGroups => {
                decode_body::<DeleteGroupsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DescribeAcls => {
                decode_body::<DescribeAclsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::CreateAcls => decode_body::<CreateAclsRequest>(&mut b, version, what).map(drop),
            ApiKey::DeleteAcls => decode_body::<DeleteAclsRequest>(&mut b, version, what).map(drop),
            ApiKey::SaslHandshake => {
                decode_body::<SaslHandshakeRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::SaslAuthenticate => {
                decode_body::<SaslAuthenticateRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DescribeUserScramCredentials => {
                decode_body::<DescribeUserScramCredentialsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::AlterUserScramCredentials => {
                decode_body::<AlterUserScramCredentialsRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::DescribeClientQuotas => {
                decode_body::<DescribeClientQuotasRequest>(&mut b, version, what).map(drop)
            }
            ApiKey::AlterClientQuotas => {
                decode_body::<AlterClientQuotasRequest>(&mut b, version, what).map(drop)
            }
            other => panic!("{other:?} is served but not fuzzed: add it here"),
        }
    }

    /// A few well-formed request bodies to mutate.
    fn seeds() -> Vec<(ApiKey, i16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut push = |key: ApiKey, version: i16, encode: &dyn Fn(&mut bytes::BytesMut)| {
            let mut buf = bytes::BytesMut::new();
            encode(&mut buf);
            out.push((key, version, buf.to_vec()));
        };
        for version in [1, 9, 12] {
            push(ApiKey::Metadata, version, &|b| {
                MetadataRequest::default()
                    .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                    )
                    .with_name(Some(TopicName(StrBytes::from_static_str("t"))))]))
                    .encode(b, version)
                    .unwrap()
            });
        }
        for version in [3, 9, 12] {
            push(ApiKey::Produce, version, &|b| {
                let partition = produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from_static(&[0u8; 70])));
                ProduceRequest::default()
                    .with_acks(-1)
                    .with_topic_data(vec![produce_request::TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_static_str("t")))
                        .with_partition_data(vec![partition])])
                    .encode(b, version)
                    .unwrap()
            });
        }
        for version in [1, 5, 9] {
            push(ApiKey::JoinGroup, version, &|b| {
                JoinGroupRequest::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("g")))
                    .with_protocol_type(StrBytes::from_static_str("consumer"))
                    .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                    )
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(Bytes::from_static(
                        b"\0\x01\0\0\0\x01\0\x01t\xff\xff\xff\xff\0\0\0\0",
                    ))])
                    .encode(b, version)
                    .unwrap()
            });
        }
        for version in [2, 8] {
            push(ApiKey::OffsetCommit, version, &|b| {
                OffsetCommitRequest::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("g")))
                    .with_topics(vec![
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(TopicName(StrBytes::from_static_str("t")))
                            .with_partitions(vec![
                                offset_commit_request::OffsetCommitRequestPartition::default(),
                            ]),
                    ])
                    .encode(b, version)
                    .unwrap()
            });
        }
        for version in [4, 11, 12] {
            push(ApiKey::Fetch, version, &|b| {
                FetchRequest::default()
                    .with_topics(vec![fetch_request::FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_static_str("t")))
                        .with_partitions(vec![fetch_request::FetchPartition::default()])])
                    .encode(b, version)
                    .unwrap()
            });
        }
        admin_seeds(&mut push);
        out
    }

    /// The admin APIs' seeds: a request of each at its oldest and newest versions.
    fn admin_seeds(push: &mut impl FnMut(ApiKey, i16, &dyn Fn(&mut bytes::BytesMut))) {
        let name = || TopicName(StrBytes::from_static_str("t"));
        let text = |s: &'static str| StrBytes::from_static_str(s);
        for version in [2, 7] {
            push(ApiKey::CreateTopics, version, &|b| {
                let config = create_topics_request::CreatableTopicConfig::default()
                    .with_name(text("retention.ms"))
                    .with_value(Some(text("1000")));
                CreateTopicsRequest::default()
                    .with_topics(vec![create_topics_request::CreatableTopic::default()
                        .with_name(name())
                        .with_configs(vec![config])])
                    .encode(b, version)
                    .unwrap()
            });
        }
        for version in [1, 4] {
            push(ApiKey::DescribeConfigs, version, &|b| {
                DescribeConfigsRequest::default()
                    .with_resources(vec![
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(text("t"))
                            .with_configuration_keys(Some(vec![text("retention.ms")])),
                    ])
                    .encode(b, version)
                    .unwrap()
            });
        }
        push(ApiKey::IncrementalAlterConfigs, 1, &|b| {
            let config = incremental_alter_configs_request::AlterableConfig::default()
                .with_name(text("cleanup.policy"))
                .with_config_operation(2)
                .with_value(Some(text("compact")));
            IncrementalAlterConfigsRequest::default()
                .with_resources(vec![
                    incremental_alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(text("t"))
                        .with_configs(vec![config]),
                ])
                .encode(b, 1)
                .unwrap()
        });
        push(ApiKey::DeleteRecords, 2, &|b| {
            DeleteRecordsRequest::default()
                .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                    .with_name(name())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default().with_offset(-1),
                    ])])
                .encode(b, 2)
                .unwrap()
        });
        push(ApiKey::OffsetForLeaderEpoch, 4, &|b| {
            OffsetForLeaderEpochRequest::default()
                .with_topics(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                        .with_topic(name())
                        .with_partitions(vec![
                            offset_for_leader_epoch_request::OffsetForLeaderPartition::default(),
                        ]),
                ])
                .encode(b, 4)
                .unwrap()
        });
    }

    proptest! {
        #[test]
        fn random_bodies_decode_or_fail_cleanly(
            index in 0..SUPPORTED.len(),
            pick in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let (key, min, max) = SUPPORTED[index];
            let version = min + (pick % (max - min + 1) as u16) as i16;
            let _ = decode_as(key, version, &body);
        }

        #[test]
        fn mutated_requests_decode_or_fail_cleanly(
            seed in any::<usize>(),
            at in any::<usize>(),
            how in 0..3u8,
            byte in any::<u8>(),
        ) {
            let seeds = seeds();
            let (key, version, mut body) = seeds[seed % seeds.len()].clone();
            let at = at % body.len().max(1);
            match how {
                // A length or count field set to the largest int32.
                0 => {
                    for (i, b) in [0x7f, 0xff, 0xff, 0xff].into_iter().enumerate() {
                        if let Some(slot) = body.get_mut(at + i) {
                            *slot = b;
                        }
                    }
                }
                1 => body.truncate(at),
                _ => {
                    if let Some(slot) = body.get_mut(at) {
                        *slot ^= byte | 1;
                    }
                }
            }
            let _ = decode_as(key, version, &body);
        }
    }

    #[test]
    fn the_seeds_decode_before_they_are_mutated() {
        for (key, version, body) in seeds() {
            decode_as(key, version, &body).unwrap();
        }
    }
}
