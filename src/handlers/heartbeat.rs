//! Heartbeat (key 12): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
//! rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use sluice_actors::group::messages::Heartbeat;

use super::{code, group_error_code, to_coordinator, Context};

/// Answers a Heartbeat request.
pub async fn handle(ctx: &Context, _version: i16, request: HeartbeatRequest) -> HeartbeatResponse {
    let group_id = request.group_id.0.to_string();
    let msg = Heartbeat {
        group_id: group_id.clone(),
        generation_id: request.generation_id,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
    };
    let error_code = match to_coordinator(ctx, &group_id, msg).await {
        Ok(()) => code::NONE,
        Err(e) => group_error_code(&e),
    };
    HeartbeatResponse::default().with_error_code(error_code)
}
