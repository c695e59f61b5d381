//! The group coordinator's settings, by Kafka's broker config names.

use std::path::PathBuf;

/// Group coordinator settings (Kafka's broker keys; defaults are Kafka's except
/// `group.max.size`).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions` (50).
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (3). The topic is not created while fewer
    /// brokers are alive (COORDINATOR_NOT_AVAILABLE meanwhile).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes` (104857600), the topic's `segment.bytes`.
    pub offsets_topic_segment_bytes: i32,
    /// `offsets.retention.minutes` (10080 = 7 days), in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms` (600000).
    pub offsets_retention_check_interval_ms: u64,
    /// `offsets.commit.timeout.ms` (5000): how long a commit waits for its append to be
    /// acknowledged (acks=all).
    pub offsets_commit_timeout_ms: u64,
    /// `offset.metadata.max.bytes` (4096).
    pub offset_metadata_max_bytes: usize,
    /// `group.min.session.timeout.ms` (6000).
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub group_max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms` (3000): how long the first rebalance of an empty
    /// group waits for more members (extended by each join, up to the rebalance timeout).
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.max.size`: members plus pending members (joined without a member id) per
    /// group. Kafka's default is unbounded; Sluice's is 1000 so that one client cannot
    /// grow a group without limit.
    pub group_max_size: usize,
    /// Where the sled database of committed offsets and group metadata lives
    /// (`<data_dir>/sled`).
    pub state_dir: PathBuf,
}

/// The internal topic of committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Sluice's default `group.max.size`.
pub const DEFAULT_GROUP_MAX_SIZE: usize = 1000;

impl GroupConfig {
    /// Kafka's defaults (Sluice's `group.max.size`), with the sled database in
    /// `<data_dir>/sled`.
    pub fn with_defaults(data_dir: impl Into<PathBuf>) -> GroupConfig {
        GroupConfig {
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
            offsets_retention_ms: 10_080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
            offsets_commit_timeout_ms: 5_000,
            offset_metadata_max_bytes: 4096,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            group_initial_rebalance_delay_ms: 3_000,
            group_max_size: DEFAULT_GROUP_MAX_SIZE,
            state_dir: data_dir.into().join("sled"),
        }
    }
}
