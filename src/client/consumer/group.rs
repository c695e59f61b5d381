//! The group and offset requests a consumer (and the admin client) makes: FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, and ListOffsets
//! to the partitions' leaders.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, ListOffsetsRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::super::cluster::Cluster;
use super::super::conn::Connection;
use super::super::error::{check, code, ClientError, Result};
use super::super::TopicPartition;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// The connection to `group_id`'s coordinator (FindCoordinator, key type 0).
pub(crate) async fn coordinator(cluster: &Cluster, group_id: &str) -> Result<Arc<Connection>> {
    let conn = cluster.any_broker().await?;
    let version = conn.version::<FindCoordinatorRequest>(4)?;
    let mut request = FindCoordinatorRequest::default().with_key_type(0);
    if version >= 4 {
        request.coordinator_keys = vec![s(group_id)];
    } else {
        request.key = s(group_id);
    }
    let response = conn.send_at(request, version).await?;
    let (error, message, host, port) = match response.coordinators.first() {
        Some(c) if version >= 4 => (
            c.error_code,
            c.error_message.clone(),
            c.host.to_string(),
            c.port,
        ),
        _ => (
            response.error_code,
            response.error_message.clone(),
            response.host.to_string(),
            response.port,
        ),
    };
    check(
        || format!("FindCoordinator for group {group_id}"),
        error,
        message.map(|m| m.to_string()),
    )?;
    cluster.connection_to(&format!("{host}:{port}")).await
}

/// What JoinGroup answered.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    pub generation_id: i32,
    pub member_id: String,
    pub leader: String,
    pub protocol_name: String,
    /// For the leader: every member's id and subscription metadata.
    pub members: Vec<(String, Bytes)>,
}

/// The identity of a member in requests.
#[derive(Debug, Clone)]
pub(crate) struct Member<'a> {
    pub group_id: &'a str,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub generation_id: i32,
}

/// JoinGroup, repeating it once with the member id the coordinator hands out
/// (MEMBER_ID_REQUIRED, KIP-394). The answer may take a whole rebalance: it is awaited for
/// the rebalance timeout plus 5 s (as the Java client does), not `request.timeout.ms`.
pub(crate) async fn join_group(
    conn: &Connection,
    member: &Member<'_>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: &[(String, Bytes)],
) -> Result<Joined> {
    let version = conn.version::<JoinGroupRequest>(9)?;
    let wait = std::time::Duration::from_millis(u64::try_from(rebalance_timeout_ms).unwrap_or(0))
        + std::time::Duration::from_secs(5);
    let mut member_id = member.member_id.to_owned();
    for _ in 0..2 {
        let request = JoinGroupRequest::default()
            .with_group_id(group(member.group_id))
            .with_session_timeout_ms(session_timeout_ms)
            .with_rebalance_timeout_ms(rebalance_timeout_ms)
            .with_member_id(s(&member_id))
            .with_group_instance_id(member.instance_id.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(
                protocols
                    .iter()
                    .map(|(name, metadata)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(s(name))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            );
        let response = conn.send_at_within(request, version, wait).await?;
        if response.error_code == code::MEMBER_ID_REQUIRED {
            member_id = response.member_id.to_string();
            continue;
        }
        check(
            || format!("JoinGroup {}", member.group_id),
            response.error_code,
            None,
        )?;
        return Ok(Joined {
            generation_id: response.generation_id,
            member_id: response.member_id.to_string(),
            leader: response.leader.to_string(),
            protocol_name: response
                .protocol_name
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            members: response
                .members
                .into_iter()
                .map(|m| (m.member_id.to_string(), m.metadata))
                .collect(),
        });
    }
    Err(ClientError::kafka(
        format!("JoinGroup {}", member.group_id),
        code::MEMBER_ID_REQUIRED,
        Some("asked for a member id twice".into()),
    ))
}

/// SyncGroup: the leader sends every member's assignment; everyone gets its own back.
pub(crate) async fn sync_group(
    conn: &Connection,
    member: &Member<'_>,
    protocol_name: &str,
    assignments: Vec<(String, Bytes)>,
) -> Result<Bytes> {
    let request = SyncGroupRequest::default()
        .with_group_id(group(member.group_id))
        .with_generation_id(member.generation_id)
        .with_member_id(s(member.member_id))
        .with_group_instance_id(member.instance_id.map(s))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s(protocol_name)))
        .with_assignments(
            assignments
                .into_iter()
                .map(|(id, assignment)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&id))
                        .with_assignment(assignment)
                })
                .collect(),
        );
    let response = conn.send(request, 5).await?;
    check(
        || format!("SyncGroup {}", member.group_id),
        response.error_code,
        None,
    )?;
    Ok(response.assignment)
}

/// Heartbeat.
pub(crate) async fn heartbeat(conn: &Connection, member: &Member<'_>) -> Result<()> {
    let request = HeartbeatRequest::default()
        .with_group_id(group(member.group_id))
        .with_generation_id(member.generation_id)
        .with_member_id(s(member.member_id))
        .with_group_instance_id(member.instance_id.map(s));
    let response = conn.send(request, 4).await?;
    check(
        || format!("Heartbeat {}", member.group_id),
        response.error_code,
        None,
    )
}

/// LeaveGroup (v3+: the member in the members array).
pub(crate) async fn leave_group(
    conn: &Connection,
    member: &Member<'_>,
    reason: &str,
) -> Result<()> {
    let version = conn.version::<LeaveGroupRequest>(5)?;
    let mut request = LeaveGroupRequest::default().with_group_id(group(member.group_id));
    if version >= 3 {
        request.members = vec![MemberIdentity::default()
            .with_member_id(s(member.member_id))
            .with_group_instance_id(member.instance_id.map(s))
            .with_reason(Some(s(reason)))];
    } else {
        request.member_id = s(member.member_id);
    }
    let response = conn.send_at(request, version).await?;
    check(
        || format!("LeaveGroup {}", member.group_id),
        response.error_code,
        None,
    )?;
    for m in &response.members {
        check(
            || format!("LeaveGroup {}", member.group_id),
            m.error_code,
            None,
        )?;
    }
    Ok(())
}

/// OffsetCommit of `offsets`; the first partition error fails the whole commit.
pub(crate) async fn commit_offsets(
    conn: &Connection,
    member: &Member<'_>,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, offset) in offsets {
        topics.entry(&tp.topic).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::default())),
        );
    }
    let request = OffsetCommitRequest::default()
        .with_group_id(group(member.group_id))
        .with_generation_id_or_member_epoch(member.generation_id)
        .with_member_id(s(member.member_id))
        .with_group_instance_id(member.instance_id.map(s))
        .with_retention_time_ms(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, partitions)| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = conn.send(request, 8).await?;
    for t in &response.topics {
        for p in &t.partitions {
            check(
                || {
                    format!(
                        "OffsetCommit {} {}-{}",
                        member.group_id, t.name.0, p.partition_index
                    )
                },
                p.error_code,
                None,
            )?;
        }
    }
    Ok(())
}

/// OffsetFetch: the committed offset of each partition (all of the group's if `partitions`
/// is `None`); partitions without one are left out.
pub(crate) async fn fetch_offsets(
    conn: &Connection,
    group_id: &str,
    partitions: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let topics = partitions.map(|ps| {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in ps {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        by_topic
            .into_iter()
            .map(|(t, ids)| {
                OffsetFetchRequestTopic::default()
                    .with_name(topic_name(t))
                    .with_partition_indexes(ids)
            })
            .collect()
    });
    let request = OffsetFetchRequest::default()
        .with_group_id(group(group_id))
        .with_topics(topics);
    let response = conn.send(request, 7).await?;
    check(
        || format!("OffsetFetch {group_id}"),
        response.error_code,
        None,
    )?;
    let mut out = BTreeMap::new();
    for t in response.topics {
        for p in t.partitions {
            check(
                || format!("OffsetFetch {group_id} {}-{}", t.name.0, p.partition_index),
                p.error_code,
                None,
            )?;
            if p.committed_offset >= 0 {
                out.insert(
                    TopicPartition::new(t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// ListOffsets to each partition's leader: the offset for `timestamp` (-2 earliest, -1
/// latest, ≥ 0 the first offset at or after that time; -1 if there is none).
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    timestamp: i64,
    isolation_level: i8,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut by_leader: BTreeMap<i32, Vec<&TopicPartition>> = BTreeMap::new();
    for tp in partitions {
        let topic = cluster.topic_or_fetch(&tp.topic).await?;
        let leader = topic
            .partitions
            .iter()
            .find(|p| p.partition == tp.partition)
            .map(|p| p.leader)
            .ok_or_else(|| {
                ClientError::kafka(tp.to_string(), code::UNKNOWN_TOPIC_OR_PARTITION, None)
            })?;
        by_leader.entry(leader).or_default().push(tp);
    }
    let mut out = BTreeMap::new();
    for (leader, tps) in by_leader {
        let conn = cluster.broker(leader).await?;
        let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
        for tp in tps {
            topics.entry(&tp.topic).or_default().push(
                ListOffsetsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_current_leader_epoch(-1)
                    .with_timestamp(timestamp),
            );
        }
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_isolation_level(isolation_level)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let response = conn.send(request, 7).await?;
        for t in response.topics {
            for p in t.partitions {
                let tp = TopicPartition::new(t.name.0.to_string(), p.partition_index);
                check(|| format!("ListOffsets {tp}"), p.error_code, None)?;
                out.insert(tp, p.offset);
            }
        }
    }
    Ok(out)
}
