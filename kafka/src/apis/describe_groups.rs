//! DescribeGroups: each group's state, protocol, assignor and members — each member
//! with its client id and host, and, once the group is Stable, its subscription and
//! assignment as consumer-protocol bytes (admin tools decode them). Written from the
//! engine's view, so REST and WebSocket members read as any consumer does.
//!
//! A group that does not exist is, as Kafka answers it, Dead with no error up to
//! version 5, and GROUP_ID_NOT_FOUND from version 6.

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::group::{GroupDescription, GroupError, GroupState, MemberDescription};
use troupe_actors::requests::groups;

use super::join_group::CONSUMER;
use super::{error_code, Session, Since};
use crate::consumer_protocol::{encode_assignment, encode_subscription};

/// Kafka's "not asked for" value of the authorized-operations field.
const OPERATIONS_NOT_ASKED: i32 = i32::MIN;

/// Kafka's names of the group states.
pub(super) fn state_name(state: GroupState) -> &'static str {
    match state {
        GroupState::Empty => "Empty",
        GroupState::PreparingRebalance => "PreparingRebalance",
        GroupState::CompletingRebalance => "CompletingRebalance",
        GroupState::Stable => "Stable",
        GroupState::Dead => "Dead",
    }
}

pub async fn handle(
    session: &Session,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut described = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        let found = groups::describe(&session.engine, &session.context, group_id.0.as_str()).await;
        let group = match found {
            Ok(group) => described_group(&group),
            Err(e) => refused(group_id, &e, version),
        };
        described.push(group.since(version, 3, |g| {
            g.with_authorized_operations(OPERATIONS_NOT_ASKED)
        }));
    }
    DescribeGroupsResponse::default().with_groups(described)
}

fn described_group(g: &GroupDescription) -> DescribedGroup {
    let stable = g.state == GroupState::Stable;
    let members = g.members.iter().map(|m| member(m, stable)).collect();
    DescribedGroup::default()
        .with_group_id(GroupId(StrBytes::from_string(g.group_id.clone())))
        .with_group_state(StrBytes::from_static_str(state_name(g.state)))
        .with_protocol_type(StrBytes::from_static_str(CONSUMER))
        .with_protocol_data(StrBytes::from_string(
            g.protocol.clone().unwrap_or_default(),
        ))
        .with_members(members)
}

/// Kafka shows a member's bytes only once the group is Stable (before, its
/// assignment is not settled).
fn member(m: &MemberDescription, stable: bool) -> DescribedGroupMember {
    let (metadata, assignment) = if stable {
        (
            encode_subscription(&m.topics, &m.assignment),
            encode_assignment(&m.assignment),
        )
    } else {
        (Bytes::new(), Bytes::new())
    };
    DescribedGroupMember::default()
        .with_member_id(StrBytes::from_string(m.member_id.clone()))
        .with_client_id(StrBytes::from_string(m.client_id.clone()))
        .with_client_host(StrBytes::from_string(m.client_host.clone()))
        .with_member_metadata(metadata)
        .with_member_assignment(assignment)
}

fn refused(group_id: GroupId, e: &GroupError, version: i16) -> DescribedGroup {
    let not_found = matches!(e, GroupError::GroupIdNotFound(_));
    let group = DescribedGroup::default().with_group_id(group_id);
    if not_found && version < 6 {
        return group.with_group_state(StrBytes::from_static_str(state_name(GroupState::Dead)));
    }
    group
        .with_error_code(error_code(e.kind()))
        .since(version, 6, |g| {
            g.with_error_message(Some(StrBytes::from_string(e.to_string())))
        })
}
