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

/// Kafka's error codes (shared with the broker).
pub use crate::protocol::code;
/// Kafka's name for an error code.
pub use crate::protocol::code::name as error_name;

/// Kafka's retriable errors (those whose Java exception extends `RetriableException`).
pub fn is_retriable(code: i16) -> bool {
    matches!(
        code,
        1 | 2 | 3 | 5 | 6 | 7 | 13 | 14 | 15 | 16 | 19 | 20 | 56 | 70 | 71 | 74 | 75 | 89 | 97
    )
}

/// `Ok(())` for code 0, the Kafka error otherwise.
pub fn check(what: impl FnOnce() -> String, code: i16, message: Option<String>) -> Result<()> {
    if code == code::NONE {
        Ok(())
    } else {
        Err(ClientError::kafka(what(), code, message))
    }
}
