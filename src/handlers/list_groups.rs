//! ListGroups (key 16): the groups of every coordinator on this broker (admin clients ask
//! every broker), filtered by state (v4+) and type (v5+: all of Sluice's are "classic").

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::group::messages::ListGroups;

use super::{code, group_error_code, Context};

/// Answers a ListGroups request.
pub async fn handle(ctx: &Context, version: i16, request: ListGroupsRequest) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_string())
        .collect();
    let classic_only = request.types_filter.is_empty()
        || request
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    let mut groups = Vec::new();
    let mut error = code::NONE;
    if classic_only {
        for coordinator in ctx.broker.groups.coordinators() {
            match coordinator
                .send(ListGroups {
                    states: states.clone(),
                })
                .await
            {
                Ok(Ok(listed)) => groups.extend(listed),
                Ok(Err(e)) => error = group_error_code(&e),
                // A coordinator that stopped meanwhile: its groups are elsewhere now.
                Err(_) => {}
            }
        }
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let groups = groups
        .into_iter()
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            if version >= 4 {
                listed.group_state = StrBytes::from_string(g.state);
            }
            if version >= 5 {
                listed.group_type = StrBytes::from_static_str("classic");
            }
            listed
        })
        .collect();
    ListGroupsResponse::default()
        .with_error_code(error)
        .with_groups(groups)
}
