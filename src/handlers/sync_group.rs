//! SyncGroup (key 14): the leader hands out the assignment; every member gets its share
//! once the group's metadata is persisted.

use bytes::Bytes;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::group::messages::SyncGroup;

use super::{group_error_code, to_coordinator, Context};

/// Answers a SyncGroup request.
pub async fn handle(ctx: &Context, version: i16, request: SyncGroupRequest) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    let msg = SyncGroup {
        group_id: group_id.clone(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        protocol_type: request.protocol_type.map(|s| s.to_string()),
        protocol_name: request.protocol_name.map(|s| s.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment.to_vec()))
            .collect(),
    };
    match to_coordinator(ctx, &group_id, msg).await {
        Ok(r) => {
            let mut response =
                SyncGroupResponse::default().with_assignment(Bytes::from(r.assignment));
            if version >= 5 {
                response.protocol_type = r.protocol_type.map(StrBytes::from_string);
                response.protocol_name = r.protocol_name.map(StrBytes::from_string);
            }
            response
        }
        Err(e) => SyncGroupResponse::default().with_error_code(group_error_code(&e)),
    }
}
