//! OffsetDelete (key 47): removes a group's committed offsets of partitions it does not
//! consume (GROUP_SUBSCRIBED_TO_TOPIC otherwise); an unknown group is GROUP_ID_NOT_FOUND.

use std::collections::HashMap;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use sluice_actors::group::messages::OffsetDelete;

use super::{code, group_error_code, to_coordinator, Context};

/// Answers an OffsetDelete request.
pub async fn handle(
    ctx: &Context,
    _version: i16,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group_id = request.group_id.0.to_string();
    let mut results: HashMap<(String, i32), i16> = HashMap::new();
    let mut asked = Vec::new();
    for t in &request.topics {
        let name = t.name.0.to_string();
        let count = ctx
            .broker
            .metadata
            .topic(&name)
            .map(|m| m.partition_count());
        for p in &t.partitions {
            let known =
                count.is_some_and(|n| usize::try_from(p.partition_index).is_ok_and(|i| i < n));
            if known {
                asked.push((name.clone(), p.partition_index));
            } else {
                results.insert(
                    (name.clone(), p.partition_index),
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                );
            }
        }
    }
    let msg = OffsetDelete {
        group_id: group_id.clone(),
        partitions: asked,
    };
    let top = match to_coordinator(ctx, &group_id, msg).await {
        Ok(per_partition) => {
            for (k, r) in per_partition {
                results.insert(k, r.map_or_else(|e| group_error_code(&e), |()| code::NONE));
            }
            code::NONE
        }
        Err(e) => return OffsetDeleteResponse::default().with_error_code(group_error_code(&e)),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(
                            results
                                .get(&(name.clone(), p.partition_index))
                                .copied()
                                .unwrap_or(code::NONE),
                        )
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default()
        .with_error_code(top)
        .with_topics(topics)
}
