//! The log engine's error type.
//!
//! Wire error codes are not chosen here: the network layer maps these variants to Kafka
//! error codes at one boundary (`CorruptBatch` → CORRUPT_MESSAGE, `InvalidRecord` →
//! INVALID_RECORD, `BatchTooLarge` → MESSAGE_TOO_LARGE, `OffsetOutOfRange` →
//! OFFSET_OUT_OF_RANGE, `InvalidTimestamp` → INVALID_TIMESTAMP, `Io` → KAFKA_STORAGE_ERROR, `Config` → INVALID_CONFIG, ...).

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the log engine.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed; `path` names the file or directory.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Bytes that do not form a valid v2 record batch (bad length, magic, CRC, framing).
    #[error("corrupt record batch: {0}")]
    CorruptBatch(String),
    /// A well-formed batch that this log must refuse (e.g. a keyless record on a
    /// compacted topic, a non-monotonic offset from a leader).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A `CreateTime` timestamp outside `message.timestamp.{before,after}.max.ms`.
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// A follower append whose first offset is below the log end offset.
    #[error("unexpected append offset {first_offset}: log end offset is {log_end_offset}")]
    UnexpectedAppendOffset {
        first_offset: i64,
        log_end_offset: i64,
    },
    /// A batch larger than the topic's `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes={max}")]
    BatchTooLarge { size: usize, max: usize },
    /// A read or truncation below the log start offset or above the log end offset.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A configuration value that is missing, of the wrong type, or out of range.
    #[error("invalid value for {key}: {reason}")]
    Config { key: String, reason: String },
    /// A compression codec failed, or the codec id is unknown.
    #[error("compression: {0}")]
    Compression(String),
    /// A checkpoint or metadata file that cannot be parsed; `path` names it.
    #[error("corrupt file {path}: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    /// The partition directory belongs to another incarnation of the topic.
    #[error("partition directory {path} holds topic id {found}, expected {expected}")]
    TopicIdMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// The log engine's result type.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

impl LogError {
    /// Wraps an I/O error with the operation and the path it concerned. The path is
    /// copied only when there is an error (this sits on every write and read).
    pub fn io<'a, P: AsRef<std::path::Path> + ?Sized>(
        op: &'static str,
        path: &'a P,
    ) -> impl FnOnce(io::Error) -> LogError + 'a {
        move |source| LogError::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}
