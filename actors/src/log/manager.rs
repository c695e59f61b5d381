//! [`LogManager`]: the data directory — its partition logs' shared checkpoints and the
//! clean-shutdown marker.
//!
//! Files it owns, in `<data_dir>/`:
//! - `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//!   `cleaner-offset-checkpoint` ([`OffsetCheckpointFile`] format), written
//!   temp-then-rename;
//! - `.clean-shutdown`: written last by [`LogManager::shutdown`], removed by
//!   [`LogManager::open`], so its presence at start-up proves the previous run closed
//!   every log cleanly and recovery can be skipped;
//! - `<topic>-<partition>/` per partition ([`Log`]); `<topic>-<partition>.<tag>-delete/`
//!   for a partition being deleted (removed at start-up if a crash left it).
//!
//! Not thread-safe. The logs themselves are owned by their partition replicas; the
//! manager is told their offsets when it checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::log::checkpoint::{OffsetCheckpointFile, TopicPartition};
use crate::log::config::LogConfig;
use crate::log::files::{
    self, CLEANER_OFFSET_CHECKPOINT, CLEAN_SHUTDOWN, LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
};
use crate::log::log::LogOpenOptions;
use crate::log::{Log, LogError, Result};

const DELETE_DIR_SUFFIX: &str = "-delete";

/// A partition's offsets as the data dir's checkpoints record them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    pub recovery_point: i64,
    pub log_start_offset: i64,
}

impl LogOffsets {
    /// The offsets of an open log.
    pub fn of(log: &Log) -> LogOffsets {
        LogOffsets {
            recovery_point: log.recovery_point(),
            log_start_offset: log.log_start_offset(),
        }
    }
}

/// The data directory. See the module documentation.
#[derive(Debug)]
pub struct LogManager {
    data_dir: PathBuf,
    clean_shutdown: bool,
    recovery_points: BTreeMap<TopicPartition, i64>,
    log_start_offsets: BTreeMap<TopicPartition, i64>,
    cleaner_offsets: BTreeMap<TopicPartition, i64>,
}

impl LogManager {
    /// Opens `data_dir` (creating it): reads the checkpoints, notes and removes the
    /// clean-shutdown marker, and finishes partition deletions a crash interrupted.
    pub fn open(data_dir: &Path) -> Result<LogManager> {
        std::fs::create_dir_all(data_dir).map_err(LogError::io("create", data_dir))?;
        let marker = data_dir.join(CLEAN_SHUTDOWN);
        let mut clean_shutdown = marker.exists();
        let recovery_points = read_checkpoint_or_forget(
            &data_dir.join(RECOVERY_POINT_CHECKPOINT),
            "every log is recovered from its first segment",
        )?;
        if recovery_points.is_none() {
            // Without recovery points a clean shutdown proves nothing about the logs.
            clean_shutdown = false;
        }
        let manager = LogManager {
            data_dir: data_dir.to_path_buf(),
            clean_shutdown,
            recovery_points: recovery_points.unwrap_or_default(),
            log_start_offsets: read_checkpoint_or_forget(
                &data_dir.join(LOG_START_OFFSET_CHECKPOINT),
                "each log starts at its first segment; records removed by DeleteRecords \
                 inside that segment are served again until retention deletes it",
            )?
            .unwrap_or_default(),
            cleaner_offsets: read_checkpoint_or_forget(
                &data_dir.join(CLEANER_OFFSET_CHECKPOINT),
                "compacted logs are cleaned again from their start",
            )?
            .unwrap_or_default(),
        };
        if marker.exists() {
            std::fs::remove_file(&marker).map_err(LogError::io("remove", &marker))?;
            files::sync_dir(data_dir)?;
        } else {
            tracing::info!(dir = %data_dir.display(), "no clean-shutdown marker: logs will be recovered from their recovery points");
        }
        for entry in std::fs::read_dir(data_dir).map_err(LogError::io("list", data_dir))? {
            let path = entry.map_err(LogError::io("list", data_dir))?.path();
            if path.is_dir()
                && path
                    .to_str()
                    .is_some_and(|p| p.ends_with(DELETE_DIR_SUFFIX))
            {
                tracing::info!(dir = %path.display(), "finishing an interrupted partition deletion");
                std::fs::remove_dir_all(&path).map_err(LogError::io("remove", &path))?;
            }
        }
        Ok(manager)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the previous run ended with a clean shutdown.
    pub fn had_clean_shutdown(&self) -> bool {
        self.clean_shutdown
    }

    /// `<data_dir>/<topic>-<partition>`.
    pub fn partition_dir(&self, tp: &TopicPartition) -> PathBuf {
        self.data_dir
            .join(files::partition_dir_name(&tp.topic, tp.partition))
    }

    /// The partitions with a directory here.
    pub fn partitions_on_disk(&self) -> Result<Vec<TopicPartition>> {
        let mut out = Vec::new();
        for entry in
            std::fs::read_dir(&self.data_dir).map_err(LogError::io("list", &self.data_dir))?
        {
            let entry = entry.map_err(LogError::io("list", &self.data_dir))?;
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name();
            if let Some((topic, partition)) =
                name.to_str().and_then(files::parse_partition_dir_name)
            {
                out.push(TopicPartition::new(topic, partition));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Opens a partition's log with the offsets the checkpoints hold for it. A directory
    /// left by an earlier incarnation of the topic (another topic id) is deleted first, so
    /// its records are never served.
    pub fn open_log(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        topic_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Log> {
        let dir = self.partition_dir(tp);
        let opts = || LogOpenOptions {
            recovery_point: self.recovery_points.get(tp).copied().unwrap_or(0),
            log_start_offset: self.log_start_offsets.get(tp).copied().unwrap_or(0),
            clean_shutdown: self.clean_shutdown,
            topic_id: topic_id.map(str::to_owned),
            now_ms,
        };
        match Log::open(&dir, config.clone(), opts()) {
            Err(LogError::TopicIdMismatch {
                expected, found, ..
            }) => {
                tracing::warn!(dir = %dir.display(), %expected, %found, "partition directory belongs to a deleted incarnation of the topic; removing it");
                self.remove_dir(&dir, &found)?;
                Log::open(
                    &dir,
                    config,
                    LogOpenOptions {
                        recovery_point: 0,
                        log_start_offset: 0,
                        ..opts()
                    },
                )
            }
            other => other,
        }
    }

    /// Deletes a partition's directory crash-safely (renamed `…-delete` first) and forgets
    /// its checkpoint entries. The caller has closed or dropped its log.
    pub fn delete_partition(&mut self, tp: &TopicPartition, tag: &str) -> Result<()> {
        let dir = self.partition_dir(tp);
        if dir.exists() {
            self.remove_dir(&dir, tag)?;
        }
        self.recovery_points.remove(tp);
        self.log_start_offsets.remove(tp);
        self.cleaner_offsets.remove(tp);
        self.write_checkpoints()
    }

    fn remove_dir(&self, dir: &Path, tag: &str) -> Result<()> {
        let tag: String = tag.chars().filter(char::is_ascii_alphanumeric).collect();
        let mut doomed = dir.as_os_str().to_owned();
        doomed.push(format!(".{tag}{DELETE_DIR_SUFFIX}"));
        let doomed = PathBuf::from(doomed);
        std::fs::rename(dir, &doomed).map_err(LogError::io("rename", dir))?;
        files::sync_dir(&self.data_dir)?;
        std::fs::remove_dir_all(&doomed).map_err(LogError::io("remove", &doomed))
    }

    /// The cleaner checkpoint of a partition (its first dirty offset).
    pub fn cleaner_offset(&self, tp: &TopicPartition) -> i64 {
        self.cleaner_offsets.get(tp).copied().unwrap_or(0)
    }

    /// Records a cleaning pass's new first dirty offset, durably.
    pub fn set_cleaner_offset(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.cleaner_offsets.insert(tp.clone(), offset);
        OffsetCheckpointFile::new(self.data_dir.join(CLEANER_OFFSET_CHECKPOINT))
            .write(&self.cleaner_offsets)
    }

    /// Updates the recovery points and log start offsets of the given partitions and
    /// writes both checkpoint files.
    pub fn checkpoint(
        &mut self,
        logs: impl IntoIterator<Item = (TopicPartition, LogOffsets)>,
    ) -> Result<()> {
        for (tp, offsets) in logs {
            self.recovery_points
                .insert(tp.clone(), offsets.recovery_point);
            self.log_start_offsets.insert(tp, offsets.log_start_offset);
        }
        self.write_checkpoints()
    }

    fn write_checkpoints(&self) -> Result<()> {
        OffsetCheckpointFile::new(self.data_dir.join(RECOVERY_POINT_CHECKPOINT))
            .write(&self.recovery_points)?;
        OffsetCheckpointFile::new(self.data_dir.join(LOG_START_OFFSET_CHECKPOINT))
            .write(&self.log_start_offsets)?;
        OffsetCheckpointFile::new(self.data_dir.join(CLEANER_OFFSET_CHECKPOINT))
            .write(&self.cleaner_offsets)
    }

    /// Clean shutdown: closes every log (flush, final index entries), writes the
    /// checkpoints, and only then the clean-shutdown marker.
    pub fn shutdown(
        mut self,
        logs: impl IntoIterator<Item = (TopicPartition, Log)>,
        now_ms: i64,
    ) -> Result<()> {
        let mut offsets = Vec::new();
        for (tp, log) in logs {
            let mut log = log;
            log.flush(now_ms)?;
            offsets.push((tp, LogOffsets::of(&log)));
            log.close(now_ms)?;
        }
        self.checkpoint(offsets)?;
        files::write_atomically(&self.data_dir.join(CLEAN_SHUTDOWN), b"")
    }
}

/// Reads an offset checkpoint of the data dir. A corrupt one does not stop the broker: it
/// is logged as an error naming the file and what follows (`outcome`), and answered `None`
/// — the caller falls back to the safe default. I/O errors (an unreadable disk) still fail.
pub(crate) fn read_checkpoint_or_forget(
    path: &Path,
    outcome: &str,
) -> Result<Option<BTreeMap<TopicPartition, i64>>> {
    match OffsetCheckpointFile::new(path.to_path_buf()).read() {
        Ok(entries) => Ok(Some(entries)),
        Err(LogError::CorruptFile { path, reason }) => {
            tracing::error!(file = %path.display(), %reason, "corrupt checkpoint file ignored: {outcome}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
