//! The messages of the replica layer's two actors: [`PartitionReplica`] (produce, fetch,
//! offsets, leadership, lifecycle) and [`ReplicaManager`] (starting and stopping
//! replicas, checkpoints, shutdown).
//!
//! Every reply is owned: a fetch carries a [`FileSlice`] (shared file handle, position,
//! length), never a view of the actor's state. Errors are [`crate::Error`]; the network
//! layer maps them to Kafka error codes.
//!
//! [`PartitionReplica`]: super::PartitionReplica
//! [`ReplicaManager`]: super::ReplicaManager

use actix::{Addr, Message};
use bytes::Bytes;
use tokio::sync::watch;

use crate::log::checkpoint::TopicPartition;
use crate::log::config::LogConfig;
use crate::log::index::TimestampOffset;
use crate::log::manager::LogOffsets;
use crate::log::segment::FileSlice;
use crate::Error;

use super::PartitionReplica;

/// `isolation_level` of Fetch and ListOffsets: every record below the high watermark.
pub const READ_UNCOMMITTED: i8 = 0;
/// `isolation_level`: only committed transactions (below the last stable offset, equal to
/// the high watermark until transactions exist).
pub const READ_COMMITTED: i8 = 1;

/// ListOffsets `timestamp`: the high watermark (the last stable offset for
/// read_committed).
pub const LATEST_TIMESTAMP: i64 = -1;
/// ListOffsets `timestamp`: the log start offset.
pub const EARLIEST_TIMESTAMP: i64 = -2;
/// ListOffsets `timestamp`: the record with the largest timestamp (KIP-734).
pub const MAX_TIMESTAMP: i64 = -3;

/// DeleteRecords `offset`: delete everything below the high watermark.
pub const HIGH_WATERMARK_OFFSET: i64 = -1;

// ---------------------------------------------------------------------------------------
// PartitionReplica
// ---------------------------------------------------------------------------------------

/// Produce to this partition (leader only). The replica validates the batches, checks the
/// idempotent-producer state, assigns offsets and appends (the offsets are patched in as
/// the batches are written; `records` is not copied). acks=0 and 1 answer once appended (after an fsync if `flush.messages` asks
/// for one); acks=-1 (all) answers once the high watermark passes the last offset, or
/// fails with [`Error::Timeout`] after `timeout_ms`.
///
/// A retry of one of a producer's last 5 batches appends nothing and answers with the
/// original base offset (see `producer_state` for the rules).
#[derive(Debug, Message)]
#[rtype(result = "Result<ProduceResult, Error>")]
pub struct Produce {
    /// This partition's record batches as received (v2, one or more): typically a slice of
    /// the request's own buffer.
    pub records: Bytes,
    /// -1 (all), 0 or 1.
    pub acks: i16,
    /// How long an acks=all produce may wait for replication (the request's timeout).
    pub timeout_ms: u64,
    /// The broker's clock (timestamp checks, LogAppendTime).
    pub now_ms: i64,
}

/// What a produce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceResult {
    /// Offset of the first record appended (of the original append, for a retry).
    pub base_offset: i64,
    /// The broker's clock stamped on the batches for `LogAppendTime` topics, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// Fetch from this partition (leader only; followers' fetches come in wave 2). Never
/// returns a record at or above the high watermark.
#[derive(Debug, Message)]
#[rtype(result = "Result<FetchResult, Error>")]
pub struct Fetch {
    /// First offset wanted. Outside [log start, log end] → the log's `OffsetOutOfRange`;
    /// between the high watermark and the log end → an empty answer.
    pub offset: i64,
    /// Bytes wanted at most (whole batches, except as `min_one_batch` allows).
    pub max_bytes: u64,
    /// Return the first batch whole even if it exceeds `max_bytes` (KIP-74: true for the
    /// first partition of a response that has data).
    pub min_one_batch: bool,
    /// [`READ_UNCOMMITTED`] or [`READ_COMMITTED`].
    pub isolation_level: i8,
    pub now_ms: i64,
}

/// A fetch's answer. `records` is a slice of a segment file (sent with `sendfile`), not a
/// copy; it may end inside a batch, which consumers drop.
#[derive(Debug, Clone)]
pub struct FetchResult {
    pub high_watermark: i64,
    /// Equal to the high watermark until transactions exist.
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub records: Option<FileSlice>,
    /// Base offset of the first batch in `records`.
    pub first_batch_offset: Option<i64>,
}

/// A receiver of this partition's high watermark, for long-poll fetches spanning many
/// partitions: it changes when the high watermark advances (not on every append).
#[derive(Debug, Message)]
#[rtype(result = "Result<watch::Receiver<i64>, Error>")]
pub struct SubscribeHighWatermark;

/// ListOffsets for this partition (leader only), with Kafka's semantics:
/// [`EARLIEST_TIMESTAMP`] → (-1, log start offset); [`LATEST_TIMESTAMP`] → (-1, high
/// watermark, for both isolation levels until transactions exist); [`MAX_TIMESTAMP`] →
/// the record with the largest timestamp; `timestamp ≥ 0` → the first record with a
/// timestamp ≥ it. The last two answer `None` (offset -1 on the wire) when there is no
/// such record below the high watermark.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<TimestampOffset>, Error>")]
pub struct ListOffsets {
    pub timestamp: i64,
    /// [`READ_UNCOMMITTED`] or [`READ_COMMITTED`].
    pub isolation_level: i8,
}

/// DeleteRecords (leader only): moves the log start offset up to `offset`
/// ([`HIGH_WATERMARK_OFFSET`] = the high watermark). Answers the new log start offset.
/// Above the high watermark → `OffsetOutOfRange`; a topic without `cleanup.policy=delete`
/// → [`Error::PolicyViolation`]. Whole segments below go at the next retention pass.
#[derive(Debug, Message)]
#[rtype(result = "Result<i64, Error>")]
pub struct DeleteRecords {
    pub offset: i64,
}

/// OffsetForLeaderEpoch (leader only): the largest epoch ≤ `leader_epoch` this log knows
/// and the offset where it ended (the log end offset for the current epoch).
#[derive(Debug, Message)]
#[rtype(result = "Result<EpochEndOffset, Error>")]
pub struct OffsetForLeaderEpoch {
    pub leader_epoch: i32,
}

/// OffsetForLeaderEpoch's answer (-1, -1 when the epoch is unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEndOffset {
    pub leader_epoch: i32,
    pub end_offset: i64,
}

/// This broker leads the partition from `leader_epoch` on, with this ISR (broker ids,
/// this broker included). The same epoch with another ISR is an ISR change. An older
/// epoch is refused with [`Error::InvalidRequest`].
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct BecomeLeader {
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
}

/// This broker follows `leader_id` from `leader_epoch` on: produces, fetches and offset
/// requests are refused with [`Error::NotLeaderOrFollower`], and waiting acks=all
/// produces fail with it. (Truncation and fetching from the leader come in wave 2.)
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct BecomeFollower {
    pub leader_epoch: i32,
    pub leader_id: i32,
}

/// A follower's log end offset, as its fetch showed it (leader only): may advance the
/// high watermark. Answers the high watermark after the update.
#[derive(Debug, Message)]
#[rtype(result = "Result<i64, Error>")]
pub struct UpdateFollowerOffset {
    pub replica_id: i32,
    pub log_end_offset: i64,
}

/// A topic configuration change: applies to later appends, rolls, retention and
/// compaction passes; `min.insync.replicas` to later acks=all produces.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct UpdateConfig {
    pub config: LogConfig,
}

/// A snapshot of the replica's offsets and role, for Metadata, DescribeLogDirs,
/// checkpoints and tests.
#[derive(Debug, Message)]
#[rtype(result = "Result<ReplicaStatus, Error>")]
pub struct Status;

/// [`Status`]'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    pub topic_partition: TopicPartition,
    pub topic_id: String,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Everything below is on disk (fsync'd).
    pub recovery_point: i64,
    pub leader_epoch: i32,
    pub is_leader: bool,
    pub isr: Vec<i32>,
    /// Bytes of all segments.
    pub size: u64,
    pub segment_count: usize,
    /// The compaction checkpoint: first offset not yet cleaned.
    pub cleaner_first_dirty_offset: i64,
    /// Producers with idempotence state.
    pub producer_count: usize,
    /// acks=all produces waiting for the high watermark.
    pub waiting_produces: usize,
    /// Name of the arbiter thread the replica runs on (diagnostics: placement).
    pub thread: Option<String>,
}

/// Flush and close the log, fail waiting produces with [`Error::Stopped`], and stop the
/// actor. Answers the final offsets for the data dir's checkpoints.
#[derive(Debug, Message)]
#[rtype(result = "Result<ClosedReplica, Error>")]
pub struct Shutdown;

/// What a closed replica leaves for the data dir's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedReplica {
    pub offsets: LogOffsets,
    pub high_watermark: i64,
    pub cleaner_first_dirty_offset: i64,
}

// ---------------------------------------------------------------------------------------
// ReplicaManager
// ---------------------------------------------------------------------------------------

/// The metadata says this broker hosts the partition: open its log (a directory of an
/// earlier incarnation of the topic — another topic id — is wiped first) and start its
/// replica if it is not running; otherwise apply the config, leadership and ISR (a
/// running replica of another topic id is stopped and deleted, then started afresh).
/// Answers the replica's address, which is also published in the shared
/// [`ReplicaMap`](super::ReplicaMap).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Addr<PartitionReplica>, Error>")]
pub struct EnsureReplica {
    pub tp: TopicPartition,
    pub topic_id: String,
    pub config: LogConfig,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub is_leader: bool,
}

/// Stop the partition's replica (flushing and closing its log) and, if `delete`, remove
/// its directory and checkpoint entries (also when it was not running).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct StopReplica {
    pub tp: TopicPartition,
    pub delete: bool,
}

/// Write the data dir's checkpoints now (recovery points, log start offsets, cleaner
/// offsets, high watermarks) from every running replica. Also runs periodically.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct CheckpointReplicas;

/// Clean shutdown of the replica layer: refuse new replicas, stop every replica (each
/// flushes and closes its log), write the checkpoints and then — only if every log closed
/// cleanly — the `.clean-shutdown` marker; stop the arbiters and the manager.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct ShutdownReplicas;
