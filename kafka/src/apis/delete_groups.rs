//! DeleteGroups: deletes groups without members, with their committed offsets
//! (tombstones in `__consumer_offsets`). Each group is answered on its own:
//! NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if there is no such group.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use troupe_actors::requests::groups;

use super::{error_code, Session};

pub async fn handle(
    session: &Session,
    request: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let deleted = groups::delete(&session.engine, &session.context, group_id.0.as_str()).await;
        let code = match deleted {
            Ok(()) => 0,
            Err(e) => {
                log::debug!("kafka: deleting group {}: {e}", group_id.0.as_str());
                error_code(e.kind())
            }
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
