//! CreateTopics (key 19): sent to the controller (clients send it to Metadata's
//! `controller_id` and retry on NOT_CONTROLLER, trap 13). Answers once the new topics'
//! partitions have leaders (and this broker's replicas of them run), bounded by the
//! request's timeout.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::controller::{CreateTopics, CreatedTopic, NewTopic};
use sluice_actors::Error;

use super::{
    code, error_code, has_leaders, timeout, topic_uuid, wait_for_metadata, Context, Family,
};

/// A topic's outcome so far: created (once the controller answered), or an error code and
/// message.
type TopicOutcome = Result<Option<CreatedTopic>, (i16, String)>;

/// Answers a CreateTopics request.
pub async fn handle(
    ctx: &Context,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let validate_only = version >= 1 && request.validate_only;
    let wait = timeout(request.timeout_ms);
    let mut results: Vec<(TopicName, TopicOutcome)> = Vec::new();
    let mut topics = Vec::new();
    let mut slots = Vec::new();
    for t in request.topics {
        let name = t.name.0.to_string();
        let assignments = match assignments(&t.assignments) {
            Ok(a) => a,
            Err(message) => {
                results.push((t.name, Err((code::INVALID_REPLICA_ASSIGNMENT, message))));
                continue;
            }
        };
        let configs: BTreeMap<String, String> = t
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        topics.push(NewTopic {
            name,
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments,
            configs,
        });
        slots.push(results.len());
        results.push((t.name, Ok(None)));
    }

    if !topics.is_empty() {
        let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
        let answer = ctx
            .broker
            .controller
            .send(CreateTopics {
                topics,
                validate_only,
                timeout: wait,
            })
            .await
            .map_err(|e| Error::Stopped(format!("controller: {e}")))
            .and_then(|r| r);
        match answer {
            Ok(per_topic) => {
                for (slot, (_, result)) in slots.iter().zip(per_topic) {
                    if let Some(entry) = results.get_mut(*slot) {
                        entry.1 = match result {
                            Ok(created) => Ok(Some(created)),
                            Err(e) => Err((error_code(&e, Family::CreateTopics), e.to_string())),
                        };
                    }
                }
            }
            Err(e) => {
                let code = error_code(&e, Family::CreateTopics);
                for slot in &slots {
                    if let Some(entry) = results.get_mut(*slot) {
                        entry.1 = Err((code, e.to_string()));
                    }
                }
            }
        }
        if !validate_only && !wait.is_zero() {
            let created: Vec<&String> = names
                .iter()
                .zip(&slots)
                .filter(|(_, slot)| {
                    results
                        .get(**slot)
                        .is_some_and(|r| matches!(r.1, Ok(Some(_))))
                })
                .map(|(name, _)| name)
                .collect();
            let ready = wait_for_metadata(ctx, wait, |view| {
                created.iter().all(|name| has_leaders(view, name))
            })
            .await
                && wait_for_local_replicas(ctx, &created, wait).await;
            if !ready {
                for slot in &slots {
                    if let Some(entry) = results.get_mut(*slot) {
                        if matches!(entry.1, Ok(Some(_))) {
                            entry.1 = Err((
                                code::REQUEST_TIMED_OUT,
                                "the topic was created but its partitions have no leader yet"
                                    .into(),
                            ));
                        }
                    }
                }
            }
        }
    }

    let topics = results
        .into_iter()
        .map(|(name, result)| {
            let mut r = CreatableTopicResult::default().with_name(name);
            match result {
                Ok(created) => {
                    if let Some(created) = created {
                        if version >= 7 {
                            r.topic_id = topic_uuid(&created.topic_id);
                        }
                        if version >= 5 {
                            r.num_partitions = created.partitions;
                            r.replication_factor = created.replication_factor;
                        }
                    }
                }
                Err((code, message)) => {
                    r.error_code = code;
                    if version >= 1 {
                        r.error_message = Some(StrBytes::from_string(message));
                    }
                }
            }
            r
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// Waits until this broker's replicas of `topics`' partitions it leads are running.
async fn wait_for_local_replicas(
    ctx: &Context,
    topics: &[&String],
    wait: std::time::Duration,
) -> bool {
    let broker_id = ctx.broker.broker_id;
    let replicas = ctx.broker.replicas.clone();
    wait_for_metadata(ctx, wait, |view| {
        topics.iter().all(|name| {
            view.topics.get(name.as_str()).is_some_and(|t| {
                t.states.iter().all(|(p, s)| {
                    s.state.leader != broker_id
                        || replicas
                            .get(&sluice_actors::log::checkpoint::TopicPartition::new(
                                name.as_str(),
                                *p,
                            ))
                            .is_some()
                })
            })
        })
    })
    .await
}

/// The wire's `(partition index, broker ids)` pairs as replicas by partition; gaps or
/// duplicates are refused.
fn assignments(
    wire: &[kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment],
) -> Result<Option<Vec<Vec<i32>>>, String> {
    if wire.is_empty() {
        return Ok(None);
    }
    let mut sorted: Vec<_> = wire.iter().collect();
    sorted.sort_by_key(|a| a.partition_index);
    for (i, a) in sorted.iter().enumerate() {
        if usize::try_from(a.partition_index).ok() != Some(i) {
            return Err("partitions of the replica assignment must be 0..n without gaps".into());
        }
    }
    Ok(Some(
        sorted
            .into_iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
            .collect(),
    ))
}
