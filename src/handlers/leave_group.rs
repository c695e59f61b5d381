//! LeaveGroup (key 13): members leave (one member id up to v2, a batch of members from v3,
//! each with its own error code).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::group::messages::{LeaveGroup, LeavingMember};

use super::{code, group_error_code, to_coordinator, Context};

/// Answers a LeaveGroup request.
pub async fn handle(ctx: &Context, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group_id = request.group_id.0.to_string();
    let members: Vec<LeavingMember> = if version >= 3 {
        request
            .members
            .into_iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|s| s.to_string()),
                reason: m.reason.map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: request.member_id.to_string(),
            group_instance_id: None,
            reason: None,
        }]
    };
    let msg = LeaveGroup {
        group_id: group_id.clone(),
        members,
    };
    match to_coordinator(ctx, &group_id, msg).await {
        Ok(results) if version >= 3 => LeaveGroupResponse::default().with_members(
            results
                .into_iter()
                .map(|(m, r)| {
                    MemberResponse::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_group_instance_id(m.group_instance_id.map(StrBytes::from_string))
                        .with_error_code(r.map_or_else(|e| group_error_code(&e), |()| code::NONE))
                })
                .collect(),
        ),
        // One member: its result is the response's.
        Ok(results) => LeaveGroupResponse::default().with_error_code(
            results.into_iter().next().map_or(code::NONE, |(_, r)| {
                r.map_or_else(|e| group_error_code(&e), |()| code::NONE)
            }),
        ),
        Err(e) => LeaveGroupResponse::default().with_error_code(group_error_code(&e)),
    }
}
