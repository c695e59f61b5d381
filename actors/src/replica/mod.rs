//! The replica layer: a [`PartitionReplica`] actor per partition replica hosted on this
//! broker — the only writer of its log, owner of its high watermark, leader epoch, ISR,
//! idempotent-producer state and acks=all waiting room — and the [`ReplicaManager`] that
//! owns the data dir, starts and stops replicas on arbiters, and publishes them in the
//! shared [`ReplicaMap`] that network handlers read.
//!
//! Produce path: handler → [`ReplicaMap::get`] → [`messages::Produce`] → `partition.rs`
//! (idempotence in `producer_state.rs`, acks=all in `waiting_room.rs`).
//! Fetch path: handler → [`messages::Fetch`] (a file slice up to the high watermark), with
//! [`messages::SubscribeHighWatermark`] for long polls.
//! Lifecycle: metadata → [`messages::EnsureReplica`] / [`messages::StopReplica`] →
//! `manager.rs`.

mod config;
mod log_dir;
mod manager;
pub mod messages;
mod partition;
mod producer_state;
mod snapshot;
mod waiting_room;

pub use config::{ReplicaConfig, ReplicaManagerConfig};
pub use log_dir::{is_dir_failure, LogDirFailure, LogDirHealth};
pub use manager::{arbiter_index, ReplicaManager, ReplicaMap, REPLICATION_OFFSET_CHECKPOINT};
pub use partition::{PartitionReplica, ReplicaInit};

/// The broker's wall clock in milliseconds (what Kafka's `time.milliseconds()` gives).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
