//! DeleteGroups (key 42): removes empty groups (their offsets and metadata get tombstones
//! in `__consumer_offsets`); a group with members is NON_EMPTY_GROUP.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use sluice_actors::group::messages::DeleteGroup;

use super::{code, group_error_code, to_coordinator, Context};

/// Answers a DeleteGroups request.
pub async fn handle(
    ctx: &Context,
    _version: i16,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let id = group_id.0.to_string();
        let error = match to_coordinator(
            ctx,
            &id,
            DeleteGroup {
                group_id: id.clone(),
            },
        )
        .await
        {
            Ok(()) => code::NONE,
            Err(e) => group_error_code(&e),
        };
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(error),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
