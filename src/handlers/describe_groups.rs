//! DescribeGroups (key 15): state, protocol and members of groups. An unknown group is
//! described as `Dead` with no members, as Kafka does; from v6 it is GROUP_ID_NOT_FOUND.

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::group::messages::DescribeGroup;

use super::{code, group_error_code, to_coordinator, Context};

/// ACL operations on a group (`AclOperation`): READ 3, DELETE 6, DESCRIBE 8 — everything,
/// Sluice having no authorizer. A real bit field, never the "not requested" sentinel.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Answers a DescribeGroups request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut groups = Vec::with_capacity(request.groups.len());
    for group_id in request.groups {
        let id = group_id.0.to_string();
        let mut described = DescribedGroup::default().with_group_id(group_id);
        if version >= 3 && request.include_authorized_operations {
            described.authorized_operations = GROUP_AUTHORIZED_OPERATIONS;
        }
        let msg = DescribeGroup {
            group_id: id.clone(),
        };
        groups.push(match to_coordinator(ctx, &id, msg).await {
            Ok(g) if version >= 6 && g.state == "Dead" && g.members.is_empty() => described
                .with_error_code(code::GROUP_ID_NOT_FOUND)
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Group {id} not found."
                ))))
                .with_group_state(StrBytes::from_static_str("Dead")),
            Ok(g) => described
                .with_group_state(StrBytes::from_string(g.state))
                .with_protocol_type(StrBytes::from_string(g.protocol_type))
                .with_protocol_data(StrBytes::from_string(g.protocol_data))
                .with_members(
                    g.members
                        .into_iter()
                        .map(|m| {
                            let member = DescribedGroupMember::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_member_metadata(Bytes::from(m.metadata))
                                .with_member_assignment(Bytes::from(m.assignment));
                            if version >= 4 {
                                member.with_group_instance_id(
                                    m.group_instance_id.map(StrBytes::from_string),
                                )
                            } else {
                                member
                            }
                        })
                        .collect(),
                ),
            Err(e) => {
                let d = described.with_error_code(group_error_code(&e));
                if version >= 6 {
                    d.with_error_message(Some(StrBytes::from_string(e.to_string())))
                } else {
                    d
                }
            }
        });
    }
    DescribeGroupsResponse::default().with_groups(groups)
}
