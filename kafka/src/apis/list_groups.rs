//! ListGroups: every group this broker coordinates, with its protocol type, its
//! state (v4+) and its type (v5+) — optionally only those in the states or of the
//! types asked for (case-insensitive, as Kafka compares them). Every Troupe group is a
//! "classic" one: the classic group protocol is the only one served.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use troupe_actors::requests::groups;

use super::describe_groups::state_name;
use super::join_group::CONSUMER;
use super::{error_code, Session, Since};

/// Kafka's name for a group of the classic protocol.
const CLASSIC: &str = "classic";

pub async fn handle(
    session: &Session,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let listed = match groups::list(&session.engine, &session.context).await {
        Ok(listed) => listed,
        Err(e) => return ListGroupsResponse::default().with_error_code(error_code(e.kind())),
    };
    let asked = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let groups = listed
        .into_iter()
        .filter(|g| asked(&request.states_filter, state_name(g.state)))
        .filter(|_| asked(&request.types_filter, CLASSIC))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_static_str(CONSUMER))
                .since(version, 4, |l| {
                    l.with_group_state(StrBytes::from_static_str(state_name(g.state)))
                })
                .since(version, 5, |l| {
                    l.with_group_type(StrBytes::from_static_str(CLASSIC))
                })
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
