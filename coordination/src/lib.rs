//! Cluster coordination for Sluice: sessions with ephemeral keys, versioned keys with
//! compare-and-set and guarded multi-key operations, prefix watches, and leader election
//! — behind one trait, [`Coordination`], with three backends:
//!
//! - [`embedded`]: in-process, persisted with sled; several clients in one process can
//!   share one store. The default: one command runs a broker.
//! - [`zookeeper`]: ZooKeeper through `zookeeper-client`.
//! - [`etcd`]: etcd v3 through `etcd-client`.
//!
//! This crate knows nothing about Kafka. Keys are absolute paths (`/brokers/ids/1`) under
//! a configured root (ZooKeeper chroot, etcd key prefix) so several clusters can share one
//! service. Values are bytes; [`codec`] encodes typed values with bincode inside a
//! versioned envelope. [`election::Election`] builds leader election with strictly
//! increasing epochs on top of the trait, identically for every backend.
//!
//! ## Semantics every backend provides
//! - **Versions** are opaque numbers, compared only for equality; every write of a key
//!   gives it a new version. (ZooKeeper restarts the version of a deleted and re-created
//!   key at 0; guard such keys with a check on a key that is never deleted, as the
//!   election's epoch key is.)
//! - **Hierarchy**: keys form a tree as in ZooKeeper. [`Coordination::children`] lists a
//!   key's direct children; creating a key creates missing parents (empty values);
//!   deleting a key deletes everything below it.
//! - **Transactions** ([`Coordination::transact`]) apply all operations or none; a
//!   [`Op::Check`] guard writes nothing but fails the whole transaction on a version
//!   mismatch (ZooKeeper's CheckOp, an etcd Compare).
//! - **Watches** deliver, in order, a [`WatchEvent`] for every change to a key at or
//!   below the watched key. After a reconnect or a gap in history a watcher receives
//!   [`WatchEvent::Resync`] and must re-read; no change is lost silently. The value in a
//!   `Put` is the key's value when the backend read it, which may already be newer than
//!   the change that triggered it (ZooKeeper notifications carry no data). Set up the
//!   watch first, then read, so nothing falls between the two.
//! - **Sessions** have a TTL; their state goes Connected → Suspended (connection lost,
//!   session may live) → Connected again, or → Expired (gone for good; its ephemeral keys
//!   are deleted; make a new client).

pub mod codec;
pub mod config;
pub mod election;
pub mod embedded;
mod error;
pub mod etcd;
pub mod keys;
pub mod zookeeper;

use std::fmt::Debug;

use tokio::sync::{mpsc, watch};

pub use config::{connect, Backend, CoordinationConfig};
pub use error::{ConflictKind, Error, Result};

/// A key's version: opaque, compared for equality only.
pub type Version = i64;

/// A value with the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub version: Version,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a key that must not exist. `ephemeral` binds it to this client's session.
    Create {
        key: String,
        value: Vec<u8>,
        ephemeral: bool,
    },
    /// Overwrite a key that must exist, at `version` if given.
    Set {
        key: String,
        value: Vec<u8>,
        version: Option<Version>,
    },
    /// Delete a key that must exist (at `version` if given) and everything below it.
    Delete {
        key: String,
        version: Option<Version>,
    },
    /// Write nothing; fail the transaction unless `key` exists at `version`.
    Check { key: String, version: Version },
}

impl Op {
    /// The key the operation concerns.
    pub fn key(&self) -> &str {
        match self {
            Op::Create { key, .. }
            | Op::Set { key, .. }
            | Op::Delete { key, .. }
            | Op::Check { key, .. } => key,
        }
    }

    /// Bytes the operation adds to a transaction (key + value), for [`Limits`].
    pub fn size(&self) -> usize {
        match self {
            Op::Create { key, value, .. } | Op::Set { key, value, .. } => key.len() + value.len(),
            Op::Delete { key, .. } | Op::Check { key, .. } => key.len(),
        }
    }
}

/// The result of one operation of a successful transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpResult {
    /// Create or Set: the key's new version.
    Written(Version),
    Deleted,
    Checked,
}

/// What a backend accepts in one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Operations in one transaction (etcd: `--max-txn-ops`, 128 by default).
    pub max_ops_per_txn: usize,
    /// Bytes in one transaction (etcd: ~1.5 MiB request size; ZooKeeper: `jute.maxbuffer`,
    /// ~1 MiB).
    pub max_txn_bytes: usize,
    /// Bytes in one value.
    pub max_value_bytes: usize,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// `key` was created or written; its value and version as read.
    Put {
        key: String,
        value: Vec<u8>,
        version: Version,
    },
    /// `key` was deleted.
    Delete { key: String },
    /// Events may have been missed (reconnect, compacted history): re-read the state.
    Resync,
}

/// A session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Connected; ephemeral keys are alive.
    Connected,
    /// Connection lost; the session may still be alive on the server.
    Suspended,
    /// The session is gone; so are its ephemeral keys. Make a new client.
    Expired,
}

/// A stream of [`WatchEvent`]s; dropping it cancels the watch.
#[derive(Debug)]
pub struct Watch {
    events: mpsc::Receiver<WatchEvent>,
}

impl Watch {
    /// Wraps the receiving end a backend feeds.
    pub fn new(events: mpsc::Receiver<WatchEvent>) -> Watch {
        Watch { events }
    }

    /// The next event; `None` once the client is closed or the session expired.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }
}

/// Capacity of a watch's event queue. A backend that finds the queue full drops the
/// backlog's tail and sends [`WatchEvent::Resync`] instead of blocking or losing
/// events silently.
pub const WATCH_QUEUE: usize = 4096;

/// One client's view of a coordination service, with one session.
///
/// Keys are absolute paths below the configured root ([`keys::validate`]). Every method
/// is cancel-safe in the sense that dropping its future leaves the store consistent
/// (a transaction is applied whole or not at all).
#[async_trait::async_trait]
pub trait Coordination: Send + Sync + Debug {
    /// Which backend this is (`embedded`, `zookeeper`, `etcd`), for logs.
    fn backend(&self) -> &'static str;

    /// The backend's request limits.
    fn limits(&self) -> Limits;

    /// This client's session state, as a stream of changes.
    fn session_state(&self) -> watch::Receiver<SessionState>;

    /// The value and version of `key`.
    async fn get(&self, key: &str) -> Result<Option<Versioned>>;

    /// The direct children of `key` (their last path segment) with values, sorted by
    /// name. Empty if `key` has none or does not exist.
    async fn children(&self, key: &str) -> Result<Vec<(String, Versioned)>>;

    /// Applies `ops` atomically: all of them or, on the first failing one, none
    /// ([`Error::Conflict`] names it).
    async fn transact(&self, ops: Vec<Op>) -> Result<Vec<OpResult>>;

    /// Watches `key` and everything below it.
    async fn watch(&self, key: &str) -> Result<Watch>;

    /// Ends the session: its ephemeral keys are deleted at once; watches end.
    async fn close(&self) -> Result<()>;

    /// Creates `key` (it must not exist); returns its version.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Version> {
        self.write_one(Op::Create {
            key: key.to_owned(),
            value,
            ephemeral: false,
        })
        .await
    }

    /// Creates `key` bound to this session.
    async fn create_ephemeral(&self, key: &str, value: Vec<u8>) -> Result<Version> {
        self.write_one(Op::Create {
            key: key.to_owned(),
            value,
            ephemeral: true,
        })
        .await
    }

    /// Overwrites `key` (it must exist), at `version` if given.
    async fn set(&self, key: &str, value: Vec<u8>, version: Option<Version>) -> Result<Version> {
        self.write_one(Op::Set {
            key: key.to_owned(),
            value,
            version,
        })
        .await
    }

    /// Creates or overwrites `key`, whatever its version.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Version> {
        loop {
            let op = match self.get(key).await? {
                Some(v) => Op::Set {
                    key: key.to_owned(),
                    value: value.clone(),
                    version: Some(v.version),
                },
                None => Op::Create {
                    key: key.to_owned(),
                    value: value.clone(),
                    ephemeral: false,
                },
            };
            match self.write_one(op).await {
                Err(Error::Conflict { .. }) => continue,
                other => return other,
            }
        }
    }

    /// Deletes `key` and everything below it, at `version` if given.
    async fn delete(&self, key: &str, version: Option<Version>) -> Result<()> {
        self.transact(vec![Op::Delete {
            key: key.to_owned(),
            version,
        }])
        .await
        .map(|_| ())
    }

    /// Runs a one-operation transaction that writes, returning the new version.
    async fn write_one(&self, op: Op) -> Result<Version> {
        match self.transact(vec![op]).await?.first() {
            Some(OpResult::Written(v)) => Ok(*v),
            other => Err(Error::Backend(format!(
                "unexpected transaction result {other:?}"
            ))),
        }
    }
}
