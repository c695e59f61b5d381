//! OffsetFetch (key 9): a group's committed offsets — of the partitions asked for (offset
//! -1 where nothing is committed) or, with a null topic list (v2+), of every partition the
//! group committed. v8+ asks for several groups at once, each answered by its own
//! coordinator.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::group::messages::{FetchedOffset, OffsetFetch};

use super::{code, group_error_code, to_coordinator, Context};

/// Answers an OffsetFetch request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in request.groups {
            let partitions = g.topics.map(|topics| {
                topics
                    .into_iter()
                    .flat_map(|t| {
                        let name = t.name.0.to_string();
                        t.partition_indexes
                            .into_iter()
                            .map(move |p| (name.clone(), p))
                    })
                    .collect::<Vec<_>>()
            });
            let group_id = g.group_id.0.to_string();
            let response = OffsetFetchResponseGroup::default().with_group_id(g.group_id);
            groups.push(match fetch(ctx, &group_id, partitions).await {
                Ok(fetched) => response.with_topics(
                    by_topic(fetched)
                        .into_iter()
                        .map(|(name, parts)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(
                                    parts
                                        .into_iter()
                                        .map(|f| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(f.partition)
                                                .with_committed_offset(f.offset)
                                                .with_committed_leader_epoch(f.leader_epoch)
                                                .with_metadata(
                                                    f.metadata.map(StrBytes::from_string),
                                                )
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
                Err(error) => response.with_error_code(error),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group_id = request.group_id.0.to_string();
    let asked: Option<Vec<(String, i32)>> = request.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partition_indexes.iter().map(move |p| (name.clone(), *p))
            })
            .collect()
    });
    let (fetched, error) = match fetch(ctx, &group_id, asked.clone()).await {
        Ok(f) => (f, code::NONE),
        // v0–1 have no top-level error: the partitions carry it.
        Err(error) => (
            asked
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, partition)| FetchedOffset {
                    topic,
                    partition,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: Some(String::new()),
                })
                .collect(),
            error,
        ),
    };
    let partition_error = if version < 2 { error } else { code::NONE };
    let topics = by_topic(fetched)
        .into_iter()
        .map(|(name, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|f| {
                            let p = OffsetFetchResponsePartition::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(f.offset)
                                .with_metadata(f.metadata.map(StrBytes::from_string))
                                .with_error_code(partition_error);
                            if version >= 5 {
                                p.with_committed_leader_epoch(f.leader_epoch)
                            } else {
                                p
                            }
                        })
                        .collect(),
                )
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(error)
    } else {
        response
    }
}

/// One group's offsets, or its error code.
async fn fetch(
    ctx: &Context,
    group_id: &str,
    partitions: Option<Vec<(String, i32)>>,
) -> Result<Vec<FetchedOffset>, i16> {
    let msg = OffsetFetch {
        group_id: group_id.to_string(),
        partitions,
    };
    to_coordinator(ctx, group_id, msg)
        .await
        .map_err(|e| group_error_code(&e))
}

/// Offsets grouped by topic, in request (or name) order of first appearance.
fn by_topic(fetched: Vec<FetchedOffset>) -> Vec<(String, Vec<FetchedOffset>)> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
    for f in fetched {
        if !map.contains_key(&f.topic) {
            order.push(f.topic.clone());
        }
        map.entry(f.topic.clone()).or_default().push(f);
    }
    order
        .into_iter()
        .filter_map(|t| map.remove(&t).map(|v| (t, v)))
        .collect()
}
