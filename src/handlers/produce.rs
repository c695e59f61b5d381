//! Produce (key 0): the request is split per partition, each partition's batches go to its
//! replica (looked up in the replica map) as a `Produce` message, all partitions at once,
//! and the results are joined into one response in request order.
//!
//! acks=0: no response is written; if any partition failed, the connection is closed, as
//! Kafka does, so that the producer notices and refreshes its metadata.

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::replica::messages::{Produce, ProduceResult};
use sluice_actors::Error;

use crate::protocol::RequestKey;

use super::{code, encode, error_code, now_ms, Context, Family, Reply};

/// First Produce version addressing topics by id.
const TOPIC_IDS: i16 = 13;

/// Where one partition's answer comes from. Held by value only while the request is answered
/// (no box: that would be an allocation per partition per Produce).
#[allow(clippy::large_enum_variant)]
enum Pending {
    /// Answered already (unknown partition, not hosted, bad request).
    Done(i16),
    /// Sent to the replica.
    Sent(actix::prelude::Request<sluice_actors::replica::PartitionReplica, Produce>),
}

/// Answers a Produce request.
pub async fn handle(ctx: &Context, key: RequestKey, request: ProduceRequest) -> Reply {
    let version = key.api_version;
    let acks = request.acks;
    if !matches!(acks, -1..=1) {
        return Reply::Close(format!("invalid acks {acks}"));
    }
    let timeout_ms = u64::try_from(request.timeout_ms).unwrap_or(0);
    let now = now_ms();

    // Send every partition's batches before waiting for any: the replicas work in parallel.
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = if version >= TOPIC_IDS {
            let id = *topic.topic_id.as_bytes();
            ctx.broker.metadata.read(|view| {
                view.topics
                    .iter()
                    .find(|(_, t)| t.topic_id == id)
                    .map(|(name, _)| name.clone())
            })
        } else {
            Some(topic.name.0.to_string())
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for partition in topic.partition_data {
            let index = partition.index;
            let pending = match (&name, partition.records) {
                (None, _) => Pending::Done(code::UNKNOWN_TOPIC_ID),
                (Some(_), None) => Pending::Done(code::CORRUPT_MESSAGE),
                (Some(name), Some(records)) => {
                    let tp = TopicPartition::new(name.clone(), index);
                    match ctx.broker.replicas.get(&tp) {
                        Some(replica) => Pending::Sent(replica.send(Produce {
                            records,
                            acks,
                            timeout_ms,
                            now_ms: now,
                        })),
                        None => Pending::Done(not_hosted_code(ctx, name, index)),
                    }
                }
            };
            partitions.push((index, pending));
        }
        topics.push((topic.name, topic.topic_id, partitions));
    }

    let mut failed = false;
    let mut responses = Vec::with_capacity(topics.len());
    for (name, topic_id, partitions) in topics {
        let mut partition_responses = Vec::with_capacity(partitions.len());
        for (index, pending) in partitions {
            let result = match pending {
                Pending::Done(error) => Err(error),
                Pending::Sent(request) => match request.await {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(e)) => {
                        tracing::debug!(partition = index, error = %e, "produce failed");
                        Err(error_code(&e, Family::Data))
                    }
                    Err(e) => Err(error_code(&Error::Stopped(e.to_string()), Family::Data)),
                },
            };
            failed |= result.is_err();
            partition_responses.push(partition_response(version, index, result));
        }
        let mut topic =
            TopicProduceResponse::default().with_partition_responses(partition_responses);
        if version >= TOPIC_IDS {
            topic.topic_id = topic_id;
        } else {
            topic.name = name;
        }
        responses.push(topic);
    }
    if acks == 0 {
        return if failed {
            Reply::Close("an acks=0 produce failed".into())
        } else {
            Reply::Nothing
        };
    }
    encode(key, ProduceResponse::default().with_responses(responses))
}

/// The error for a partition whose replica does not run here: unknown topic or partition,
/// or not the leader.
pub fn not_hosted_code(ctx: &Context, topic: &str, partition: i32) -> i16 {
    let known = ctx.broker.metadata.read(|view| {
        view.topics
            .get(topic)
            .is_some_and(|t| usize::try_from(partition).is_ok_and(|p| p < t.partition_count()))
    });
    if known {
        code::NOT_LEADER_OR_FOLLOWER
    } else {
        code::UNKNOWN_TOPIC_OR_PARTITION
    }
}

fn partition_response(
    version: i16,
    index: i32,
    result: Result<ProduceResult, i16>,
) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default().with_index(index);
    match result {
        Ok(r) => {
            p.base_offset = r.base_offset;
            if version >= 2 {
                p.log_append_time_ms = r.log_append_time;
            }
            if version >= 5 {
                p.log_start_offset = r.log_start_offset;
            }
        }
        Err(error) => {
            p.error_code = error;
            p.base_offset = -1;
        }
    }
    p
}

/// A topic name for responses.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
