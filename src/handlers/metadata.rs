//! Metadata (key 3): brokers, the controller, topics and their partitions, from the
//! metadata cache. Unknown topics are created on request (`allow_auto_topic_creation` and
//! `auto.create.topics.enable`, trap 9) through the controller's creation requests, and
//! answered LEADER_NOT_AVAILABLE until their partitions have leaders.

use std::collections::BTreeMap;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use sluice_actors::metadata::cache::{ClusterView, TopicMetadata};
use sluice_actors::metadata::records::CreateTopicRequestRecord;
use sluice_actors::metadata::registration::request_topic_creation;
use sluice_actors::metadata::topic::validate_name;

use super::{code, error_code, topic_uuid, Context, Family};

/// ACL operation codes (`AclOperation`), as bits of the authorized-operations fields.
mod acl {
    pub(super) const READ: i32 = 3;
    pub(super) const WRITE: i32 = 4;
    pub(super) const CREATE: i32 = 5;
    pub(super) const DELETE: i32 = 6;
    pub(super) const ALTER: i32 = 7;
    pub(super) const DESCRIBE: i32 = 8;
    pub(super) const CLUSTER_ACTION: i32 = 9;
    pub(super) const DESCRIBE_CONFIGS: i32 = 10;
    pub(super) const ALTER_CONFIGS: i32 = 11;
    pub(super) const IDEMPOTENT_WRITE: i32 = 12;

    pub(super) fn bits(ops: &[i32]) -> i32 {
        ops.iter().fold(0, |acc, op| acc | (1 << op))
    }
}

/// Every operation on a topic: Sluice has no authorizer, so everything is allowed. A real
/// bit field, never the "not requested" sentinel, when a client asks (trap 6).
pub fn topic_authorized_operations() -> i32 {
    use acl::*;
    bits(&[
        READ,
        WRITE,
        CREATE,
        DELETE,
        ALTER,
        DESCRIBE,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
    ])
}

/// Every operation on the cluster (see [`topic_authorized_operations`]).
pub fn cluster_authorized_operations() -> i32 {
    use acl::*;
    bits(&[
        CREATE,
        ALTER,
        DESCRIBE,
        CLUSTER_ACTION,
        DESCRIBE_CONFIGS,
        ALTER_CONFIGS,
        IDEMPOTENT_WRITE,
    ])
}

/// Names of the internal topics (`is_internal`).
fn is_internal(name: &str) -> bool {
    name == "__consumer_offsets" || name == "__transaction_state"
}

/// The live brokers, as Metadata and DescribeCluster list them.
pub fn brokers(view: &ClusterView) -> Vec<MetadataResponseBroker> {
    view.brokers
        .values()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.clone().map(StrBytes::from_string))
        })
        .collect()
}

/// Answers a Metadata request.
pub async fn handle(ctx: &Context, version: i16, request: MetadataRequest) -> MetadataResponse {
    // v0 sends an empty list for "all topics"; later versions send null.
    let all = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    // Before v4 there is no flag: those clients expect Kafka's default, auto-creation.
    let allow_auto_create = (version < 4 || request.allow_auto_topic_creation)
        && ctx.settings.auto_create_topics_enable;

    let view = ctx.broker.metadata.snapshot();
    let mut topics = Vec::new();
    let mut to_create = Vec::new();
    if all {
        for (name, topic) in &view.topics {
            topics.push(known_topic(&view, name, topic, version));
        }
    } else {
        for requested in request.topics.iter().flatten() {
            let by_name = requested.name.as_ref().map(|n| n.0.to_string());
            let name = match by_name {
                Some(name) => name,
                None => {
                    // v10+: by topic id.
                    let id = *requested.topic_id.as_bytes();
                    match view.topics.iter().find(|(_, t)| t.topic_id == id) {
                        Some((name, _)) => name.clone(),
                        None => {
                            topics.push(
                                MetadataResponseTopic::default()
                                    .with_error_code(code::UNKNOWN_TOPIC_ID)
                                    .with_name(None)
                                    .with_topic_id(requested.topic_id),
                            );
                            continue;
                        }
                    }
                }
            };
            match view.topics.get(&name) {
                Some(topic) => topics.push(known_topic(&view, &name, topic, version)),
                None => {
                    let error = if let Err(e) = validate_name(&name) {
                        error_code(&e, Family::Data)
                    } else if allow_auto_create {
                        to_create.push(name.clone());
                        code::LEADER_NOT_AVAILABLE
                    } else {
                        code::UNKNOWN_TOPIC_OR_PARTITION
                    };
                    topics.push(
                        MetadataResponseTopic::default()
                            .with_error_code(error)
                            .with_name(Some(TopicName(StrBytes::from_string(name)))),
                    );
                }
            }
        }
    }
    for name in to_create {
        let record = CreateTopicRequestRecord {
            partitions: ctx.settings.num_partitions,
            replication_factor: ctx.settings.default_replication_factor,
            configs: BTreeMap::new(),
        };
        if let Err(e) = request_topic_creation(&ctx.broker.coordination, &name, &record).await {
            tracing::warn!(topic = %name, error = %e, "cannot request auto-creation");
        } else {
            tracing::info!(topic = %name, "auto-creating topic (Metadata)");
        }
    }
    if version >= 8 && request.include_topic_authorized_operations {
        for t in &mut topics {
            t.topic_authorized_operations = topic_authorized_operations();
        }
    }

    let mut response = MetadataResponse::default()
        .with_brokers(brokers(&view))
        .with_topics(topics);
    if version >= 2 {
        response.cluster_id = view
            .cluster_id
            .clone()
            .or_else(|| Some(ctx.broker.cluster_id.clone()))
            .map(StrBytes::from_string);
    }
    if version >= 1 {
        response.controller_id = BrokerId(view.controller.as_ref().map_or(-1, |c| c.broker_id));
    }
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = cluster_authorized_operations();
    }
    response
}

/// A topic the cache knows.
fn known_topic(
    view: &ClusterView,
    name: &str,
    topic: &TopicMetadata,
    version: i16,
) -> MetadataResponseTopic {
    let mut partitions = Vec::with_capacity(topic.replicas.len());
    for (index, replicas) in topic.replicas.iter().enumerate() {
        let Ok(index) = i32::try_from(index) else {
            break;
        };
        let state = topic.states.get(&index).map(|s| &s.state);
        let leader = state.map_or(-1, |s| s.leader);
        let mut p = MetadataResponsePartition::default()
            .with_partition_index(index)
            .with_error_code(if leader >= 0 {
                code::NONE
            } else {
                code::LEADER_NOT_AVAILABLE
            })
            .with_leader_id(BrokerId(leader))
            .with_replica_nodes(replicas.iter().map(|&b| BrokerId(b)).collect())
            .with_isr_nodes(
                state
                    .map(|s| s.isr.iter().map(|&b| BrokerId(b)).collect())
                    .unwrap_or_default(),
            );
        if version >= 7 {
            p.leader_epoch = state.map_or(-1, |s| s.leader_epoch);
        }
        if version >= 5 {
            p.offline_replicas = replicas
                .iter()
                .filter(|b| !view.brokers.contains_key(b))
                .map(|&b| BrokerId(b))
                .collect();
        }
        partitions.push(p);
    }
    let mut t = MetadataResponseTopic::default()
        .with_error_code(code::NONE)
        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
        .with_partitions(partitions);
    if version >= 1 {
        t.is_internal = is_internal(name);
    }
    if version >= 10 {
        t.topic_id = topic_uuid(&topic.topic_id);
    }
    t
}
