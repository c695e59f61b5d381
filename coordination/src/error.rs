//! The coordination crate's one error type.

use std::time::Duration;

/// Why a compare-and-set or guarded operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// Create on a key that exists.
    Exists,
    /// Set, delete or check on a key that does not exist.
    Missing,
    /// The key's version is not the expected one.
    VersionMismatch,
}

/// Everything a coordination backend can report. [`Error::is_retriable`] separates
/// passing trouble (the connection, a timeout) from outcomes that retrying cannot change.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Could not reach any endpoint within the connect timeout.
    #[error("cannot reach coordination service at {endpoints}: {reason}")]
    Unreachable { endpoints: String, reason: String },
    /// The connection dropped during the operation; the session may still be alive.
    #[error("connection to the coordination service lost: {0}")]
    ConnectionLoss(String),
    /// The operation did not complete in time.
    #[error("coordination operation {op} timed out after {after:?}")]
    Timeout { op: &'static str, after: Duration },
    /// The session is gone for good: its ephemeral keys are deleted; a new client is needed.
    #[error("coordination session expired")]
    SessionExpired,
    /// A compare-and-set, create-if-absent or guard failed. `index` is the failing
    /// operation's position in a multi-key operation.
    #[error("conflict on {key} (operation {index}): {kind:?}")]
    Conflict {
        index: usize,
        key: String,
        kind: ConflictKind,
    },
    /// A value or an operation over the backend's limits.
    #[error("{what} of {size} exceeds the limit of {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    /// A key that is not an absolute path (`/a/b`), or one the backend refuses.
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// A configuration that cannot work (bad backend name, no endpoint, ...).
    #[error("coordination config: {0}")]
    Config(String),
    /// A stored value that does not decode.
    #[error("cannot decode stored value: {0}")]
    Codec(String),
    /// The client was closed.
    #[error("coordination client is closed")]
    Closed,
    /// Anything else the backend reported.
    #[error("coordination backend: {0}")]
    Backend(String),
}

impl Error {
    /// Whether the same operation may succeed if tried again later.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. } | Error::ConnectionLoss(_) | Error::Timeout { .. }
        )
    }
}

/// The coordination crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
