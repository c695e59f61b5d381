//! JoinGroup (key 11): joins (or rejoins) a group; answered when the rebalance's join phase
//! completes. v0 has no rebalance timeout (the session timeout is used); v4+ asks a new
//! member to rejoin with the member id it is given (MEMBER_ID_REQUIRED, KIP-394).

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::group::messages::JoinGroup;
use sluice_actors::group::GroupError;

use super::{group_error_code, to_coordinator, Context};

/// Answers a JoinGroup request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    client_id: &str,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    let msg = JoinGroup {
        group_id: group_id.clone(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: client_id.to_string(),
        client_host: ctx
            .peer
            .map_or_else(String::new, |p| format!("/{}", p.ip())),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata.to_vec()))
            .collect(),
        require_known_member_id: version >= 4,
        reason: request.reason.map(|s| s.to_string()),
    };
    // Before v7 the protocol name is a non-null string.
    let empty_name = |name: Option<String>| match (name, version >= 7) {
        (Some(n), _) => Some(StrBytes::from_string(n)),
        (None, true) => None,
        (None, false) => Some(StrBytes::default()),
    };
    let response = JoinGroupResponse::default().with_generation_id(-1);
    match to_coordinator(ctx, &group_id, msg).await {
        Ok(r) => {
            let mut response = response
                .with_generation_id(r.generation_id)
                .with_protocol_name(empty_name(r.protocol_name))
                .with_leader(StrBytes::from_string(r.leader))
                .with_member_id(StrBytes::from_string(r.member_id))
                .with_members(
                    r.members
                        .into_iter()
                        .map(|m| {
                            JoinGroupResponseMember::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_group_instance_id(if version >= 5 {
                                    m.group_instance_id.map(StrBytes::from_string)
                                } else {
                                    None
                                })
                                .with_metadata(Bytes::from(m.metadata))
                        })
                        .collect(),
                );
            if version >= 7 {
                response.protocol_type = r.protocol_type.map(StrBytes::from_string);
            }
            if version >= 9 {
                response.skip_assignment = r.skip_assignment;
            }
            response
        }
        Err(e) => {
            let member_id = match &e {
                GroupError::MemberIdRequired(id) => id.clone(),
                _ => request.member_id.to_string(),
            };
            response
                .with_error_code(group_error_code(&e))
                .with_protocol_name(empty_name(None))
                .with_member_id(StrBytes::from_string(member_id))
        }
    }
}
