//! OffsetCommit (key 8): commits offsets for a group — a member's (generation checked) or,
//! with generation -1 and no member id, a consumer's outside group management. Partitions of
//! unknown topics get UNKNOWN_TOPIC_OR_PARTITION here; the others are appended to
//! `__consumer_offsets` by the coordinator and answered once the append is acknowledged.

use std::collections::HashMap;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use sluice_actors::group::messages::{CommitOffset, OffsetCommit};

use super::{code, group_error_code, now_ms, to_coordinator, Context};

/// Answers an OffsetCommit request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group_id = request.group_id.0.to_string();
    // (topic, partition) → error code, filled in below.
    let mut results: HashMap<(String, i32), i16> = HashMap::new();
    let mut offsets = Vec::new();
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let count = ctx
            .broker
            .metadata
            .topic(&name)
            .map(|t| t.partition_count());
        for p in &topic.partitions {
            let known =
                count.is_some_and(|n| usize::try_from(p.partition_index).is_ok_and(|i| i < n));
            if !known {
                results.insert(
                    (name.clone(), p.partition_index),
                    code::UNKNOWN_TOPIC_OR_PARTITION,
                );
                continue;
            }
            offsets.push(CommitOffset {
                topic: name.clone(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
    }
    if !offsets.is_empty() {
        let msg = OffsetCommit {
            group_id: group_id.clone(),
            generation_id: request.generation_id_or_member_epoch,
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            retention_time_ms: if (2..=4).contains(&version) {
                request.retention_time_ms
            } else {
                -1
            },
            offsets: offsets.clone(),
            now_ms: now_ms(),
        };
        match to_coordinator(ctx, &group_id, msg).await {
            Ok(per_partition) => {
                for (c, r) in per_partition {
                    let error = r.map_or_else(|e| group_error_code(&e), |()| code::NONE);
                    results.insert((c.topic, c.partition), error);
                }
            }
            Err(e) => {
                let error = group_error_code(&e);
                for c in offsets {
                    results.insert((c.topic, c.partition), error);
                }
            }
        }
    }
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let error = results
                        .get(&(name.clone(), p.partition_index))
                        .copied()
                        .unwrap_or(code::UNKNOWN_SERVER_ERROR);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
