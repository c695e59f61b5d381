//! Broker-level settings of the replica layer, with Kafka's names and defaults. Topic-level
//! settings (retention, `min.insync.replicas`, `flush.ms`, ...) live in each log's
//! [`LogConfig`](crate::log::config::LogConfig); parsing the broker's properties into these
//! structs is the config module's job in `src/`.

use std::path::PathBuf;
use std::time::Duration;

use crate::log::cleaner::CleanerConfig;

/// Settings every [`PartitionReplica`](super::PartitionReplica) of a broker shares.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// `broker.id`: this broker, a member of the ISR of every partition it leads.
    pub broker_id: i32,
    /// `log.retention.check.interval.ms` (300000): how often retention runs.
    pub retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`: how often `flush.ms` is checked. Kafka's
    /// default, `Long.MAX_VALUE`, means never (data reaches disk through the page cache,
    /// on segment rolls and at shutdown; `flush.messages` still flushes on append).
    pub flush_scheduler_interval_ms: u64,
    /// `log.cleaner.*`: compaction on or off, and its memory.
    pub cleaner: CleanerConfig,
    /// `log.cleaner.backoff.ms` (15000): how often a compacted log is checked for
    /// cleaning.
    pub cleaner_backoff_ms: u64,
    /// `producer.id.expiration.ms` (86400000): idempotent-producer state of a producer
    /// that has not written for this long is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms` (600000).
    pub producer_id_expiration_check_interval_ms: u64,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            broker_id: 0,
            retention_check_interval_ms: 300_000,
            flush_scheduler_interval_ms: i64::MAX as u64,
            cleaner: CleanerConfig::default(),
            cleaner_backoff_ms: 15_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
        }
    }
}

/// Settings of the [`ReplicaManager`](super::ReplicaManager).
#[derive(Debug, Clone)]
pub struct ReplicaManagerConfig {
    /// `log.dirs` (one directory: Sluice keeps one data dir per broker).
    pub data_dir: PathBuf,
    /// Arbiters (threads) the replicas are spread over; about one per core.
    pub num_arbiters: usize,
    /// `log.flush.offset.checkpoint.interval.ms` (60000): how often the recovery points,
    /// log start offsets and cleaner offsets are written.
    pub offset_checkpoint_interval_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000): how often the high
    /// watermarks are written (`replication-offset-checkpoint`).
    pub high_watermark_checkpoint_interval_ms: u64,
    /// What every replica shares.
    pub replica: ReplicaConfig,
}

impl ReplicaManagerConfig {
    /// Kafka's defaults for `data_dir`, one arbiter per available core.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ReplicaManagerConfig {
            data_dir: data_dir.into(),
            num_arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()),
            offset_checkpoint_interval_ms: 60_000,
            high_watermark_checkpoint_interval_ms: 5_000,
            replica: ReplicaConfig::default(),
        }
    }
}

/// An interval for `run_interval`, or `None` for "never": Kafka spells "never" as
/// `Long.MAX_VALUE`, which would overflow a timer's deadline.
pub(crate) fn schedule(interval_ms: u64) -> Option<Duration> {
    const NEVER_MS: u64 = 100 * 365 * 24 * 3600 * 1000;
    (interval_ms > 0 && interval_ms < NEVER_MS).then(|| Duration::from_millis(interval_ms))
}
