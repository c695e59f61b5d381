//! The Kafka API handlers: one file per API, each answering one decoded request from the
//! broker's handles (metadata cache, replica map, controller).
//!
//! [`handle`] dispatches a request to its handler and encodes the answer; [`error_code`] is
//! the one place where the actors' errors become Kafka error codes. [`IMPLEMENTED`] lists
//! the APIs answered here, and only those are advertised in ApiVersions ("advertise only what
//! you answer", trap 2 of the compatibility notes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use sluice_actors::broker::BrokerHandle;
use sluice_actors::group::{GroupCoordinator, GroupError};
use sluice_actors::log::segment::FileSlice;
use sluice_actors::log::LogError;
use sluice_actors::Error;

use crate::protocol::{DecodedRequest, FetchResponsePiece, Request, RequestKey, Response};

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod fetch;
pub mod fetch_session;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

/// The APIs this broker answers, and so advertises. Transaction APIs are left out until
/// they are implemented: a client that sees an API calls it.
pub const IMPLEMENTED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::CreatePartitions,
    ApiKey::DescribeCluster,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
];

/// Kafka's error codes (shared with the client).
pub use crate::protocol::code;

/// Which family of request an [`Error::InvalidRequest`] answers, for the code Kafka uses
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Produce, Fetch, offsets: INVALID_REQUEST.
    Data,
    /// CreateTopics: a bad count or config is INVALID_PARTITIONS / INVALID_CONFIG.
    CreateTopics,
    /// CreatePartitions: INVALID_PARTITIONS.
    CreatePartitions,
}

/// The Kafka error code for an actor error. The one mapping of the broker.
pub fn error_code(error: &Error, family: Family) -> i16 {
    match error {
        Error::Log(e) => log_error_code(e),
        Error::Coordination(_) | Error::Decode { .. } | Error::BrokerIdInUse { .. } => {
            code::UNKNOWN_SERVER_ERROR
        }
        Error::UnknownTopicOrPartition(_) => code::UNKNOWN_TOPIC_OR_PARTITION,
        // A stopped replica moved or is being deleted: the client refreshes its metadata.
        Error::NotLeaderOrFollower(_) | Error::Stopped(_) => code::NOT_LEADER_OR_FOLLOWER,
        Error::NotEnoughReplicas { .. } => code::NOT_ENOUGH_REPLICAS,
        Error::NotEnoughReplicasAfterAppend { .. } => code::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        Error::NotController => code::NOT_CONTROLLER,
        Error::InvalidRequest(reason) => match family {
            Family::Data => code::INVALID_REQUEST,
            Family::CreatePartitions => code::INVALID_PARTITIONS,
            Family::CreateTopics => {
                let reason = reason.to_ascii_lowercase();
                if reason.contains("config") {
                    code::INVALID_CONFIG
                } else if reason.contains("assignment") {
                    code::INVALID_REPLICA_ASSIGNMENT
                } else if reason.contains("partition") {
                    code::INVALID_PARTITIONS
                } else if reason.contains("replication") {
                    code::INVALID_REPLICATION_FACTOR
                } else {
                    code::INVALID_REQUEST
                }
            }
        },
        Error::TopicExists(_) => code::TOPIC_ALREADY_EXISTS,
        Error::InvalidReplicationFactor { .. } => code::INVALID_REPLICATION_FACTOR,
        Error::Timeout(_) => code::REQUEST_TIMED_OUT,
        Error::InvalidProducerEpoch { .. } => code::INVALID_PRODUCER_EPOCH,
        Error::OutOfOrderSequence { .. } => code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        Error::UnknownProducerId(_) => code::UNKNOWN_PRODUCER_ID,
        Error::InvalidTopic(_) => code::INVALID_TOPIC_EXCEPTION,
        Error::PolicyViolation(_) => code::POLICY_VIOLATION,
        Error::LogDirOffline { .. } => code::KAFKA_STORAGE_ERROR,
    }
}

/// The Kafka error code for a group coordinator error.
pub fn group_error_code(error: &GroupError) -> i16 {
    match error {
        GroupError::CoordinatorNotAvailable(_) => code::COORDINATOR_NOT_AVAILABLE,
        GroupError::NotCoordinator(_) => code::NOT_COORDINATOR,
        GroupError::CoordinatorLoadInProgress(_) => code::COORDINATOR_LOAD_IN_PROGRESS,
        GroupError::IllegalGeneration { .. } => code::ILLEGAL_GENERATION,
        GroupError::UnknownMemberId(_) => code::UNKNOWN_MEMBER_ID,
        GroupError::RebalanceInProgress => code::REBALANCE_IN_PROGRESS,
        GroupError::FencedInstanceId(_) => code::FENCED_INSTANCE_ID,
        GroupError::MemberIdRequired(_) => code::MEMBER_ID_REQUIRED,
        GroupError::InconsistentGroupProtocol(_) => code::INCONSISTENT_GROUP_PROTOCOL,
        GroupError::InvalidSessionTimeout(_) => code::INVALID_SESSION_TIMEOUT,
        GroupError::GroupMaxSizeReached(_) => code::GROUP_MAX_SIZE_REACHED,
        GroupError::InvalidGroupId(_) => code::INVALID_GROUP_ID,
        GroupError::GroupIdNotFound(_) => code::GROUP_ID_NOT_FOUND,
        GroupError::NonEmptyGroup(_) => code::NON_EMPTY_GROUP,
        GroupError::GroupSubscribedToTopic(_) => code::GROUP_SUBSCRIBED_TO_TOPIC,
        GroupError::OffsetMetadataTooLarge { .. } => code::OFFSET_METADATA_TOO_LARGE,
        GroupError::UnknownTopicOrPartition(_) => code::UNKNOWN_TOPIC_OR_PARTITION,
        GroupError::Timeout(_) => code::REQUEST_TIMED_OUT,
        GroupError::Storage(e) => match error_code(&e.0, Family::Data) {
            // The offsets partition moved: so did the coordinator.
            code::NOT_LEADER_OR_FOLLOWER => code::NOT_COORDINATOR,
            other => other,
        },
    }
}

/// Sends `msg` to the coordinator of `group_id` on this broker and awaits its answer; a
/// coordinator that is elsewhere, loading or gone is the matching group error.
pub async fn to_coordinator<M, R>(ctx: &Context, group_id: &str, msg: M) -> Result<R, GroupError>
where
    M: actix::Message<Result = Result<R, GroupError>> + Send + 'static,
    R: Send + 'static,
    GroupCoordinator: actix::Handler<M>,
{
    let coordinator = ctx.broker.groups.coordinator_for(group_id)?;
    coordinator
        .send(msg)
        .await
        .map_err(|e| GroupError::NotCoordinator(format!("{group_id}: {e}")))?
}

/// The Kafka error code for a log engine error.
pub fn log_error_code(error: &LogError) -> i16 {
    match error {
        LogError::Io { .. } | LogError::CorruptFile { .. } | LogError::TopicIdMismatch { .. } => {
            code::KAFKA_STORAGE_ERROR
        }
        LogError::CorruptBatch(_) | LogError::Compression(_) => code::CORRUPT_MESSAGE,
        LogError::InvalidRecord(_) => code::INVALID_RECORD,
        LogError::InvalidTimestamp(_) => code::INVALID_TIMESTAMP,
        LogError::BatchTooLarge { .. } => code::MESSAGE_TOO_LARGE,
        LogError::OffsetOutOfRange { .. } => code::OFFSET_OUT_OF_RANGE,
        LogError::UnexpectedAppendOffset { .. } => code::UNKNOWN_SERVER_ERROR,
        LogError::Config { .. } => code::INVALID_CONFIG,
    }
}

/// Broker settings the handlers read, from the `[config]` section.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `num.partitions`, for auto-created topics.
    pub num_partitions: i32,
    /// `default.replication.factor`, for auto-created topics.
    pub default_replication_factor: i16,
}

/// What every handler shares: the broker's handles and settings. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    pub broker: BrokerHandle,
    pub settings: Arc<HandlerSettings>,
    /// The broker's config file, for DescribeConfigs (sources and synonyms); `None` when
    /// the broker is embedded without one.
    pub broker_config: Option<Arc<crate::config::BrokerConfig>>,
    /// The producer ids this broker hands out next (InitProducerId): `(next, last)` of the
    /// block it owns. A std mutex: held for a few instructions, never across an await.
    producer_ids: Arc<Mutex<Option<(i64, i64)>>>,
    /// The client's address (per connection), for JoinGroup's `client_host`.
    pub peer: Option<std::net::SocketAddr>,
    /// Incremental fetch sessions (KIP-227), shared by every connection.
    pub fetch_sessions: Arc<fetch_session::FetchSessions>,
}

impl Context {
    /// The handlers' context for `broker`.
    pub fn new(broker: BrokerHandle, settings: HandlerSettings) -> Context {
        Context {
            broker,
            settings: Arc::new(settings),
            broker_config: None,
            producer_ids: Arc::new(Mutex::new(None)),
            peer: None,
            fetch_sessions: Arc::default(),
        }
    }

    /// This context, with the broker's config file for DescribeConfigs.
    pub fn with_broker_config(mut self, config: crate::config::BrokerConfig) -> Context {
        self.broker_config = Some(Arc::new(config));
        self
    }
}

/// What the connection writes for one request.
#[derive(Debug)]
pub enum Reply {
    /// One encoded response frame.
    Frame(Bytes),
    /// A Fetch response: encoded bytes and file slices to `sendfile`, in order.
    Fetch(Vec<FetchResponsePiece<FileSlice>>),
    /// Nothing to write (acks=0 produce).
    Nothing,
    /// Close the connection (an acks=0 produce that failed, or a response that cannot be
    /// encoded), after writing the replies before this one.
    Close(String),
}

/// Answers one request.
pub async fn handle(ctx: &Context, request: DecodedRequest) -> Reply {
    let key = request.key();
    let version = key.api_version;
    match request.body {
        Request::ApiVersions(_) => api_versions::handle(key),
        Request::Metadata(r) => encode(key, metadata::handle(ctx, version, r).await),
        Request::Produce(r) => produce::handle(ctx, key, r).await,
        Request::Fetch(r) => fetch::handle(ctx, key, r).await,
        Request::ListOffsets(r) => encode(key, list_offsets::handle(ctx, version, r).await),
        Request::CreateTopics(r) => encode(key, create_topics::handle(ctx, version, r).await),
        Request::DeleteTopics(r) => encode(key, delete_topics::handle(ctx, version, r).await),
        Request::CreatePartitions(r) => {
            encode(key, create_partitions::handle(ctx, version, r).await)
        }
        Request::InitProducerId(r) => encode(key, init_producer_id::handle(ctx, version, r).await),
        Request::DescribeCluster(r) => encode(key, describe_cluster::handle(ctx, version, r)),
        Request::OffsetForLeaderEpoch(r) => {
            encode(key, offset_for_leader_epoch::handle(ctx, version, r).await)
        }
        Request::DeleteRecords(r) => encode(key, delete_records::handle(ctx, version, r).await),
        Request::DescribeConfigs(r) => encode(key, describe_configs::handle(ctx, version, r)),
        Request::AlterConfigs(r) => encode(key, alter_configs::handle(ctx, version, r).await),
        Request::IncrementalAlterConfigs(r) => encode(
            key,
            incremental_alter_configs::handle(ctx, version, r).await,
        ),
        Request::FindCoordinator(r) => encode(key, find_coordinator::handle(ctx, version, r).await),
        Request::JoinGroup(r) => {
            let client_id = request
                .header
                .client_id
                .as_deref()
                .unwrap_or("")
                .to_string();
            encode(key, join_group::handle(ctx, version, &client_id, r).await)
        }
        Request::SyncGroup(r) => encode(key, sync_group::handle(ctx, version, r).await),
        Request::Heartbeat(r) => encode(key, heartbeat::handle(ctx, version, r).await),
        Request::LeaveGroup(r) => encode(key, leave_group::handle(ctx, version, r).await),
        Request::OffsetCommit(r) => encode(key, offset_commit::handle(ctx, version, r).await),
        Request::OffsetFetch(r) => encode(key, offset_fetch::handle(ctx, version, r).await),
        Request::ListGroups(r) => encode(key, list_groups::handle(ctx, version, r).await),
        Request::DescribeGroups(r) => encode(key, describe_groups::handle(ctx, version, r).await),
        Request::DeleteGroups(r) => encode(key, delete_groups::handle(ctx, version, r).await),
        Request::OffsetDelete(r) => encode(key, offset_delete::handle(ctx, version, r).await),
    }
}

/// Encodes a response; a response that does not encode is a bug in its handler, and the
/// client gets a closed connection rather than a frame it cannot parse.
pub fn encode(key: RequestKey, response: impl Into<Response>) -> Reply {
    match response.into().encode(key.api_version, key.correlation_id) {
        Ok(frame) => Reply::Frame(frame),
        Err(e) => {
            tracing::error!(api = ?key.api_key, version = key.api_version, error = %e, "cannot encode response");
            Reply::Close(format!("cannot encode response: {e}"))
        }
    }
}

/// The broker's clock in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A request's `timeout_ms` as a duration (negative → zero).
pub fn timeout(timeout_ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0))
}

/// A Kafka topic id from the 16 bytes the metadata keeps.
pub fn topic_uuid(id: &[u8; 16]) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id)
}

/// Waits until `ready` holds on the metadata cache, or `timeout` passes. Returns whether it
/// holds. Wakes on every metadata change, not by polling.
pub async fn wait_for_metadata(
    ctx: &Context,
    timeout: Duration,
    mut ready: impl FnMut(&sluice_actors::metadata::cache::ClusterView) -> bool,
) -> bool {
    let mut changes = ctx.broker.metadata.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if ctx.broker.metadata.read(&mut ready) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        // Also wake on a short tick: some conditions (a replica starting) change state
        // outside the metadata cache.
        let tick = (tokio::time::Instant::now() + Duration::from_millis(20)).min(deadline);
        if let Ok(Err(_)) = tokio::time::timeout_at(tick, changes.changed()).await {
            return ctx.broker.metadata.read(&mut ready);
        }
    }
}

/// Whether every partition of `topic` has a leader in the cache.
pub fn has_leaders(view: &sluice_actors::metadata::cache::ClusterView, topic: &str) -> bool {
    view.topics.get(topic).is_some_and(|t| {
        t.partition_count() > 0
            && (0..t.partition_count()).all(|p| {
                i32::try_from(p)
                    .ok()
                    .and_then(|p| t.states.get(&p))
                    .is_some_and(|s| s.state.leader >= 0)
            })
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn error_codes() {
        let io = LogError::Io {
            op: "read",
            path: PathBuf::from("x"),
            source: std::io::Error::other("disk"),
        };
        let cases: Vec<(Error, Family, i16)> = vec![
            (
                Error::Log(LogError::CorruptBatch("crc".into())),
                Family::Data,
                2,
            ),
            (
                Error::Log(LogError::InvalidRecord("key".into())),
                Family::Data,
                87,
            ),
            (
                Error::Log(LogError::BatchTooLarge { size: 2, max: 1 }),
                Family::Data,
                10,
            ),
            (
                Error::Log(LogError::OffsetOutOfRange {
                    offset: 9,
                    log_start_offset: 0,
                    log_end_offset: 1,
                }),
                Family::Data,
                1,
            ),
            (
                Error::Log(LogError::InvalidTimestamp("old".into())),
                Family::Data,
                32,
            ),
            (Error::Log(io), Family::Data, 56),
            (Error::UnknownTopicOrPartition("t".into()), Family::Data, 3),
            (Error::NotLeaderOrFollower("t".into()), Family::Data, 6),
            (
                Error::NotEnoughReplicas { isr: 1, min: 2 },
                Family::Data,
                19,
            ),
            (
                Error::NotEnoughReplicasAfterAppend { isr: 1, min: 2 },
                Family::Data,
                20,
            ),
            (Error::NotController, Family::CreateTopics, 41),
            (Error::TopicExists("t".into()), Family::CreateTopics, 36),
            (
                Error::InvalidReplicationFactor {
                    requested: 3,
                    available: 1,
                },
                Family::CreateTopics,
                38,
            ),
            (Error::InvalidTopic("..".into()), Family::CreateTopics, 17),
            (Error::InvalidRequest("bad".into()), Family::Data, 42),
            (
                Error::InvalidRequest("bad".into()),
                Family::CreatePartitions,
                37,
            ),
            (
                Error::InvalidRequest("unknown config x".into()),
                Family::CreateTopics,
                40,
            ),
            (
                Error::InvalidProducerEpoch {
                    producer_id: 1,
                    epoch: 0,
                    current: 1,
                },
                Family::Data,
                47,
            ),
            (
                Error::OutOfOrderSequence {
                    producer_id: 1,
                    expected: 1,
                    got: 3,
                },
                Family::Data,
                45,
            ),
            (Error::Timeout("slow".into()), Family::Data, 7),
            (Error::PolicyViolation("compact".into()), Family::Data, 44),
        ];
        for (error, family, expected) in cases {
            assert_eq!(error_code(&error, family), expected, "{error}");
        }
    }

    #[test]
    fn implemented_apis_are_all_in_the_codec() {
        for &key in IMPLEMENTED {
            assert!(
                crate::protocol::supported_versions(key).is_some(),
                "{key:?}"
            );
        }
    }
}
