//! The client's error type, and Kafka's error codes as the client reads them.

use std::time::Duration;

/// Everything the client reports.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// A socket could not be opened, or failed (the address and the cause).
    #[error("{addr}: {reason}")]
    Io { addr: String, reason: String },
    /// The connection closed before the answer came.
    #[error("connection to {0} closed")]
    Disconnected(String),
    /// The broker's bytes could not be decoded (or a frame was larger than allowed).
    #[error("protocol error from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    /// The broker answered with a Kafka error code.
    #[error("{what}: {} ({code}){}", error_name(*.code), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        what: String,
        code: i16,
        message: Option<String>,
    },
    /// No broker supports a version of this API that the client speaks.
    #[error("{addr} does not support {api} in any version this client speaks")]
    UnsupportedVersion { addr: String, api: String },
    /// Waited longer than the configured time.
    #[error("timed out after {0:?}: {1}")]
    Timeout(Duration, String),
    /// A setting is missing, malformed or out of range (the key and why).
    #[error("invalid client config {key}: {reason}")]
    Config { key: String, reason: String },
    /// A key or value could not be serialized.
    #[error("serialization: {0}")]
    Serialization(String),
    /// A record or batch could not be built or read.
    #[error("records: {0}")]
    Records(String),
    /// The producer or consumer was closed.
    #[error("closed: {0}")]
    Closed(String),
    /// An argument the caller gave is invalid (e.g. a partition that does not exist).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    /// A Kafka error for `what` (a topic-partition, a group...).
    pub fn kafka(what: impl Into<String>, code: i16, message: Option<String>) -> ClientError {
        ClientError::Kafka {
            what: what.into(),
            code,
            message,
        }
    }

    /// The Kafka error code, if the broker answered with one.
    pub fn code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether trying again (after a metadata refresh and a backoff) may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Io { .. } | ClientError::Disconnected(_) | ClientError::Timeout(..) => {
                true
            }
            ClientError::Kafka { code, .. } => is_retriable(*code),
            _ => false,
        }
    }

    /// Whether the error means the client's metadata is stale (leader moved, topic
    /// unknown so far, connection lost): refresh before retrying.
    pub fn needs_metadata_refresh(&self) -> bool {
        match self {
            ClientError::Io { .. } | ClientError::Disconnected(_) => true,
            ClientError::Kafka { code, .. } => matches!(
                *code,
                code::UNKNOWN_TOPIC_OR_PARTITION
                    | code::LEADER_NOT_AVAILABLE
                    | code::NOT_LEADER_OR_FOLLOWER
                    | code::FENCED_LEADER_EPOCH
                    | code::UNKNOWN_LEADER_EPOCH
                    | code::KAFKA_STORAGE_ERROR
                    | code::NOT_COORDINATOR
                    | code::COORDINATOR_NOT_AVAILABLE
            ),
            _ => false,
        }
    }
}

/// The Kafka error codes the client acts on.
pub mod code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const NETWORK_EXCEPTION: i16 = 13;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const FENCED_INSTANCE_ID: i16 = 82;
}

/// Kafka's retriable errors (those whose Java exception extends `RetriableException`).
pub fn is_retriable(code: i16) -> bool {
    matches!(
        code,
        1 | 2 | 3 | 5 | 6 | 7 | 13 | 14 | 15 | 16 | 19 | 20 | 56 | 70 | 71 | 74 | 75 | 89 | 97
    )
}

/// Kafka's name for an error code.
pub fn error_name(code: i16) -> &'static str {
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        0 => "NONE",
        1 => "OFFSET_OUT_OF_RANGE",
        2 => "CORRUPT_MESSAGE",
        3 => "UNKNOWN_TOPIC_OR_PARTITION",
        4 => "INVALID_FETCH_SIZE",
        5 => "LEADER_NOT_AVAILABLE",
        6 => "NOT_LEADER_OR_FOLLOWER",
        7 => "REQUEST_TIMED_OUT",
        10 => "MESSAGE_TOO_LARGE",
        13 => "NETWORK_EXCEPTION",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        16 => "NOT_COORDINATOR",
        17 => "INVALID_TOPIC_EXCEPTION",
        18 => "RECORD_LIST_TOO_LARGE",
        19 => "NOT_ENOUGH_REPLICAS",
        20 => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        21 => "INVALID_REQUIRED_ACKS",
        22 => "ILLEGAL_GENERATION",
        23 => "INCONSISTENT_GROUP_PROTOCOL",
        24 => "INVALID_GROUP_ID",
        25 => "UNKNOWN_MEMBER_ID",
        26 => "INVALID_SESSION_TIMEOUT",
        27 => "REBALANCE_IN_PROGRESS",
        28 => "INVALID_COMMIT_OFFSET_SIZE",
        29 => "TOPIC_AUTHORIZATION_FAILED",
        30 => "GROUP_AUTHORIZATION_FAILED",
        32 => "INVALID_TIMESTAMP",
        33 => "UNSUPPORTED_SASL_MECHANISM",
        35 => "UNSUPPORTED_VERSION",
        36 => "TOPIC_ALREADY_EXISTS",
        37 => "INVALID_PARTITIONS",
        38 => "INVALID_REPLICATION_FACTOR",
        39 => "INVALID_REPLICA_ASSIGNMENT",
        40 => "INVALID_CONFIG",
        41 => "NOT_CONTROLLER",
        42 => "INVALID_REQUEST",
        44 => "POLICY_VIOLATION",
        45 => "OUT_OF_ORDER_SEQUENCE_NUMBER",
        46 => "DUPLICATE_SEQUENCE_NUMBER",
        47 => "INVALID_PRODUCER_EPOCH",
        56 => "KAFKA_STORAGE_ERROR",
        59 => "UNKNOWN_PRODUCER_ID",
        68 => "NON_EMPTY_GROUP",
        69 => "GROUP_ID_NOT_FOUND",
        70 => "FETCH_SESSION_ID_NOT_FOUND",
        71 => "INVALID_FETCH_SESSION_EPOCH",
        74 => "FENCED_LEADER_EPOCH",
        75 => "UNKNOWN_LEADER_EPOCH",
        79 => "MEMBER_ID_REQUIRED",
        81 => "GROUP_MAX_SIZE_REACHED",
        82 => "FENCED_INSTANCE_ID",
        86 => "GROUP_SUBSCRIBED_TO_TOPIC",
        87 => "INVALID_RECORD",
        _ => "UNKNOWN_ERROR_CODE",
    }
}

/// `Ok(())` for code 0, the Kafka error otherwise.
pub fn check(what: impl FnOnce() -> String, code: i16, message: Option<String>) -> Result<()> {
    if code == code::NONE {
        Ok(())
    } else {
        Err(ClientError::kafka(what(), code, message))
    }
}
