//! The consumer group APIs answered by a real engine (a node on a temp dir, in
//! process) at every version [`super::SUPPORTED`] advertises for them: each request
//! encoded as a client of that version writes it, handled by [`super::handle`], and
//! its response decoded as that client reads it. The codec refuses a field set in a
//! version that lacks it, so a field set for the wrong versions fails here, at
//! versions the real clients of the integration tests never pick.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use troupe_actors::broker_config::{BrokerConfig, GroupConfig};
use troupe_actors::group::TopicPartition;
use troupe_actors::node::Node;
use troupe_actors::requests::topics::{self, NewTopic};
use troupe_actors::requests::RequestContext;
use troupe_actors::ErrorKind;

use super::{handle, supported, Request, Session};
use crate::consumer_protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};
use crate::ListenerConfig;

const CLIENT_ID: &str = "test-client";

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn code(kind: ErrorKind) -> i16 {
    kind.kafka_code()
}

/// Sends `request` as a client of `version` would and reads the answer as it would.
async fn call<Q: Encodable, R: Decodable + HeaderVersion>(
    session: &Session,
    key: ApiKey,
    version: i16,
    request: &Q,
) -> R {
    let (min, max) = supported(key).expect("served");
    assert!((min..=max).contains(&version), "{key:?} v{version}");
    let mut body = BytesMut::new();
    request
        .encode(&mut body, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version} request: {e}"));
    let request = Request {
        key,
        version,
        correlation_id: 7,
        body: body.freeze(),
    };
    let reply = handle(session, request).await.expect("handled");
    let frame = reply.await.expect("encoded").expect("answered");
    let mut frame: Bytes = frame.to_bytes().slice(4..);
    let header = ResponseHeader::decode(&mut frame, R::header_version(version)).expect("header");
    assert_eq!(header.correlation_id, 7);
    let response = R::decode(&mut frame, version)
        .unwrap_or_else(|e| panic!("{key:?} v{version} response: {e}"));
    assert!(
        !frame.has_remaining(),
        "{key:?} v{version}: bytes left over"
    );
    response
}

async fn session(dir: &std::path::Path) -> (Node, Session) {
    let config = BrokerConfig {
        log_dir: dir.to_path_buf(),
        cleaner_enable: false,
        groups: GroupConfig {
            offsets_topic_partitions: 2,
            ..GroupConfig::default()
        },
        ..BrokerConfig::default()
    };
    let node = Node::start(config).await.expect("a node");
    let context = RequestContext::kafka("127.0.0.1:40000".parse().ok(), Some(CLIENT_ID.into()));
    let topic = NewTopic {
        name: "t".into(),
        partitions: Some(2),
        ..Default::default()
    };
    topics::create(&node.engine, &context, topic)
        .await
        .expect("topic t");
    let session = Session {
        engine: node.engine.clone(),
        context,
        config: Arc::new(ListenerConfig::default()),
        auth: Default::default(),
        mute: Default::default(),
    };
    (node, session)
}

/// The version of `key` for round `round`: every served one comes up.
fn version(key: ApiKey, round: i16) -> i16 {
    let (min, max) = supported(key).expect("served");
    round.clamp(min, max)
}

#[actix_rt::test]
async fn one_member_joins_syncs_commits_and_leaves_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (node, session) = session(dir.path()).await;
    let rounds = (0..=9).map(|r| version(ApiKey::JoinGroup, r));
    for round in rounds {
        let group = format!("g{round}");
        one_member(&session, &group, round).await;
    }
    node.shutdown().await;
}

async fn one_member(session: &Session, group: &str, round: i16) {
    let at = |key| version(key, round);
    let subscription = encode_subscription(&["t".to_string()], &[]);
    let v = at(ApiKey::JoinGroup);
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(if v >= 1 { 10_000 } else { -1 })
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(subscription.clone())])
        .with_reason((v >= 8).then(|| s("testing")));
    let joined: JoinGroupResponse = call(session, ApiKey::JoinGroup, v, &join).await;
    assert_eq!(joined.error_code, 0, "v{v}");
    let member_id = joined.member_id.clone();
    assert!(member_id.starts_with(CLIENT_ID), "v{v}: {member_id:?}");
    assert_eq!(joined.leader, member_id, "v{v}");
    assert_eq!(joined.protocol_name.as_deref(), Some("range"), "v{v}");
    if v >= 7 {
        assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
    }
    assert_eq!(joined.members.len(), 1);
    let seen = decode_subscription(&joined.members[0].metadata).unwrap();
    assert_eq!(seen.topics, vec!["t".to_string()]);
    let generation = joined.generation_id;

    // The leader assigns itself both partitions.
    let mine = vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
    let v = at(ApiKey::SyncGroup);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(member_id.clone())
        .with_protocol_type((v >= 5).then(|| s("consumer")))
        .with_protocol_name((v >= 5).then(|| s("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(member_id.clone())
            .with_assignment(encode_assignment(&mine))]);
    let synced: SyncGroupResponse = call(session, ApiKey::SyncGroup, v, &sync).await;
    assert_eq!(synced.error_code, 0, "v{v}");
    assert_eq!(decode_assignment(&synced.assignment).unwrap(), mine);
    if v >= 5 {
        assert_eq!(synced.protocol_name.as_deref(), Some("range"));
    }

    let v = at(ApiKey::Heartbeat);
    let beat = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(member_id.clone());
    let beaten: HeartbeatResponse = call(session, ApiKey::Heartbeat, v, &beat).await;
    assert_eq!(beaten.error_code, 0, "v{v}");

    // A commit of one partition, and of one the topic does not have.
    let v = at(ApiKey::OffsetCommit);
    let partition = |p: i32| {
        OffsetCommitRequestPartition::default()
            .with_partition_index(p)
            .with_committed_offset(5)
            .with_committed_leader_epoch(if v >= 6 { 0 } else { -1 })
            .with_committed_metadata(Some(s("m")))
    };
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member_id.clone())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![partition(0), partition(9)])]);
    let committed: OffsetCommitResponse = call(session, ApiKey::OffsetCommit, v, &commit).await;
    let codes: Vec<i16> = committed.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, code(ErrorKind::UnknownTopic)], "v{v}");

    assert_eq!(
        fetch_offsets(session, group, at(ApiKey::OffsetFetch)).await,
        vec![(0, 5, "m".into())]
    );

    let v = at(ApiKey::DescribeGroups);
    let describe = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(s(group)), GroupId(s("nope"))])
        .with_include_authorized_operations(v >= 3);
    let described: DescribeGroupsResponse =
        call(session, ApiKey::DescribeGroups, v, &describe).await;
    let (g, nope) = (&described.groups[0], &described.groups[1]);
    assert_eq!(
        (g.error_code, g.group_state.as_str()),
        (0, "Stable"),
        "v{v}"
    );
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol_data.as_str()),
        ("consumer", "range")
    );
    let m = &g.members[0];
    assert_eq!(
        (m.member_id.as_str(), m.client_id.as_str()),
        (member_id.as_str(), CLIENT_ID)
    );
    assert_eq!(m.client_host.as_str(), "/127.0.0.1");
    assert_eq!(decode_assignment(&m.member_assignment).unwrap(), mine);
    assert_eq!(decode_subscription(&m.member_metadata).unwrap().owned, mine);
    if v >= 6 {
        assert_eq!(nope.error_code, code(ErrorKind::GroupIdNotFound));
    } else {
        assert_eq!((nope.error_code, nope.group_state.as_str()), (0, "Dead"));
    }

    let v = at(ApiKey::ListGroups);
    let list = ListGroupsRequest::default().with_states_filter(if v >= 4 {
        vec![s("stable")]
    } else {
        vec![]
    });
    let listed: ListGroupsResponse = call(session, ApiKey::ListGroups, v, &list).await;
    let mine_listed = listed.groups.iter().find(|l| l.group_id.as_str() == group);
    assert!(mine_listed.is_some(), "v{v}: {listed:?}");
    if v >= 4 {
        assert!(listed
            .groups
            .iter()
            .all(|l| l.group_state.as_str() == "Stable"));
    }

    // Offsets of a subscribed topic stay while the group has members.
    let delete_offsets = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let refused: OffsetDeleteResponse =
        call(session, ApiKey::OffsetDelete, 0, &delete_offsets).await;
    assert_eq!(
        refused.topics[0].partitions[0].error_code,
        code(ErrorKind::GroupSubscribedToTopic)
    );

    let v = at(ApiKey::LeaveGroup);
    let leave = if v >= 3 {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_members(vec![MemberIdentity::default()
                .with_member_id(member_id.clone())
                .with_reason((v >= 5).then(|| s("done")))])
    } else {
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(member_id.clone())
    };
    let left: LeaveGroupResponse = call(session, ApiKey::LeaveGroup, v, &leave).await;
    assert_eq!(left.error_code, 0, "v{v}");
    if v >= 3 {
        assert_eq!(left.members[0].error_code, 0);
    }
    let beaten: HeartbeatResponse =
        call(session, ApiKey::Heartbeat, at(ApiKey::Heartbeat), &beat).await;
    assert_eq!(beaten.error_code, code(ErrorKind::UnknownMemberId));

    // Empty now: its offsets go, then the group.
    let deleted: OffsetDeleteResponse =
        call(session, ApiKey::OffsetDelete, 0, &delete_offsets).await;
    assert_eq!(
        (
            deleted.error_code,
            deleted.topics[0].partitions[0].error_code
        ),
        (0, 0)
    );
    assert_eq!(
        fetch_offsets(session, group, at(ApiKey::OffsetFetch)).await,
        vec![]
    );
    let v = at(ApiKey::DeleteGroups);
    let delete = DeleteGroupsRequest::default()
        .with_groups_names(vec![GroupId(s(group)), GroupId(s("nope"))]);
    let deleted: DeleteGroupsResponse = call(session, ApiKey::DeleteGroups, v, &delete).await;
    let codes: Vec<i16> = deleted.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![0, code(ErrorKind::GroupIdNotFound)], "v{v}");
}

/// The group's committed offsets of topic `t` that exist: (partition, offset, metadata).
async fn fetch_offsets(session: &Session, group: &str, v: i16) -> Vec<(i32, i64, String)> {
    let found: Vec<(i32, i64, String)> = if v >= 8 {
        // Every partition the group committed (topics: null).
        let fetch =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(None)]);
        let fetched: OffsetFetchResponse = call(session, ApiKey::OffsetFetch, v, &fetch).await;
        let g = &fetched.groups[0];
        assert_eq!(g.error_code, 0);
        g.topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.metadata.as_deref().unwrap_or("").to_string(),
                )
            })
            .collect()
    } else {
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0, 1])]));
        let fetched: OffsetFetchResponse = call(session, ApiKey::OffsetFetch, v, &fetch).await;
        assert_eq!(fetched.error_code, 0);
        let partitions = &fetched.topics[0].partitions;
        assert_eq!(partitions.len(), 2, "v{v}: both asked for");
        partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.committed_offset,
                    p.metadata.as_deref().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    found
        .into_iter()
        .filter(|(_, offset, _)| *offset >= 0)
        .collect()
}

#[actix_rt::test]
async fn joins_the_group_cannot_serve_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (node, session) = session(dir.path()).await;
    let subscription = encode_subscription(&["t".to_string()], &[]);
    let join = |protocol_type: &str, metadata: Bytes| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s(protocol_type))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(metadata)])
    };
    let refusals = [
        (
            join("connect", subscription.clone()),
            code(ErrorKind::InconsistentGroupProtocol),
        ),
        (
            join("consumer", Bytes::from_static(b"\x00")),
            code(ErrorKind::InconsistentGroupProtocol),
        ),
        (
            join("consumer", subscription.clone()).with_session_timeout_ms(1),
            code(ErrorKind::InvalidSessionTimeout),
        ),
        (
            join("consumer", subscription.clone()).with_group_id(GroupId(s(""))),
            code(ErrorKind::InvalidGroupId),
        ),
        (
            join("consumer", subscription.clone()).with_group_instance_id(Some(s("static-1"))),
            super::api_versions::UNSUPPORTED_VERSION,
        ),
        (
            join("consumer", subscription).with_member_id(s("stranger")),
            code(ErrorKind::UnknownMemberId),
        ),
    ];
    for (request, expected) in refusals {
        let answer: JoinGroupResponse = call(&session, ApiKey::JoinGroup, 9, &request).await;
        assert_eq!(answer.error_code, expected, "{request:?}");
    }
    node.shutdown().await;
}
