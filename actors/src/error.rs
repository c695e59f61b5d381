//! The actors crate's error type. Wire error codes are chosen in one place in the network
//! layer (`src/`), from these variants.

use crate::log::LogError;

/// Everything the actors (replicas, controller, metadata) report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log engine refused or failed (carries its own kind: corrupt batch, too large,
    /// out of range, I/O ...).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The coordination service failed or refused.
    #[error("coordination: {0}")]
    Coordination(#[from] sluice_coordination::Error),
    /// No such topic or partition (on this broker).
    #[error("unknown topic or partition {0}")]
    UnknownTopicOrPartition(String),
    /// This broker is not the partition's leader (or the epoch the client saw is stale).
    #[error("not the leader of {0}")]
    NotLeaderOrFollower(String),
    /// acks=all and the ISR is smaller than `min.insync.replicas`.
    #[error("ISR size {isr} is below min.insync.replicas={min}")]
    NotEnoughReplicas { isr: usize, min: i32 },
    /// This broker is not the controller.
    #[error("not the controller")]
    NotController,
    /// The actor stopped (partition deleted or moved, broker shutting down).
    #[error("{0} is shutting down")]
    Stopped(String),
    /// A request that cannot be valid (bad partition count, replication factor, config).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Topic already exists.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// More replicas asked for than brokers alive.
    #[error("replication factor {requested} is larger than the {available} available brokers")]
    InvalidReplicationFactor { requested: i32, available: usize },
    /// The request waited too long (e.g. for partitions to get leaders).
    #[error("timed out: {0}")]
    Timeout(String),
    /// Idempotent producer: the producer's epoch is older than the one on record.
    #[error("producer {producer_id} epoch {epoch} is stale (current {current})")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    /// Idempotent producer: a sequence gap.
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// Idempotent producer: no state for this producer id (expired or never seen) and a
    /// non-zero sequence.
    #[error("unknown producer id {0}")]
    UnknownProducerId(i64),
    /// A stored value the broker cannot decode.
    #[error("cannot decode {what}: {reason}")]
    Decode { what: String, reason: String },
    /// A topic name Kafka refuses (empty, `.` or `..`, over 249 characters, a character
    /// other than ASCII alphanumerics, `.`, `_`, `-`), or one that collides with an
    /// existing topic once `.` and `_` are treated alike (Kafka: INVALID_TOPIC_EXCEPTION).
    #[error("invalid topic: {0}")]
    InvalidTopic(String),
    /// `/brokers/ids/<id>` is held by another live session: two brokers share an id, or
    /// an earlier session of this broker has not expired yet.
    #[error("broker id {id} is already registered by {holder}")]
    BrokerIdInUse { id: i32, holder: String },
    /// acks=all: the record was appended, but when the high watermark passed it the ISR
    /// was smaller than `min.insync.replicas` (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    #[error("appended, but the ISR size {isr} fell below min.insync.replicas={min}")]
    NotEnoughReplicasAfterAppend { isr: usize, min: i32 },
    /// The data directory is offline after an I/O error (see `replica::LogDirHealth`):
    /// its partitions answer KAFKA_STORAGE_ERROR until the broker restarts.
    #[error("log directory {} is offline: {reason}", dir.display())]
    LogDirOffline {
        dir: std::path::PathBuf,
        reason: String,
    },
    /// The topic's configuration forbids the request (e.g. DeleteRecords on a topic
    /// without `cleanup.policy=delete`; POLICY_VIOLATION).
    #[error("policy violation: {0}")]
    PolicyViolation(String),
}

/// The actors crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
