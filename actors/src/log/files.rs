//! File names and suffixes of the on-disk layout, in one place (Kafka's `LogFileUtils`).

use std::path::{Path, PathBuf};

/// Record batches of a segment.
pub const LOG_SUFFIX: &str = ".log";
/// Sparse offset index of a segment.
pub const INDEX_SUFFIX: &str = ".index";
/// Sparse time index of a segment.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Producer-state snapshot taken at a segment roll.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Appended to a file scheduled for deletion; removed at start-up if a crash left it.
pub const DELETED_SUFFIX: &str = ".deleted";
/// Appended to a file the cleaner is writing; a crash leaves it to be discarded.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Appended to a cleaned file ready to replace the original; a crash leaves it to be
/// completed.
pub const SWAP_SUFFIX: &str = ".swap";

/// Per-partition leader-epoch cache.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Per-partition topic id.
pub const PARTITION_METADATA: &str = "partition.metadata";
/// Per data dir: offset below which every partition's log is known flushed.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Per data dir: every partition's log start offset.
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Per data dir: offset up to which every compacted partition has been cleaned.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Per data dir: present only after a clean shutdown.
pub const CLEAN_SHUTDOWN: &str = ".clean-shutdown";

/// `00000000000000000042` for 42: Kafka's zero-padded file-name form of an offset.
pub fn offset_file_stem(offset: i64) -> String {
    format!("{offset:020}")
}

/// `<dir>/<20-digit offset><suffix>`.
pub fn offset_file(dir: &Path, offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{}{}", offset_file_stem(offset), suffix))
}

/// The base offset encoded in a segment file name, if the name is `<20 digits><suffix…>`.
pub fn parse_offset_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, rest) = name.split_at_checked(20)?;
    if !stem.bytes().all(|b| b.is_ascii_digit()) || !rest.starts_with('.') {
        return None;
    }
    Some((stem.parse().ok()?, rest))
}

/// A partition directory's name: `<topic>-<partition>`.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Splits `<topic>-<partition>` at its last dash (topic names may contain dashes).
pub fn parse_partition_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() {
        return None;
    }
    let partition: i32 = partition.parse().ok()?;
    (partition >= 0).then_some((topic, partition))
}

/// Writes `bytes` to `path` crash-safely: a temp file beside it, fsync, rename over,
/// fsync the directory. Readers see the old contents or the new, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> crate::log::Result<()> {
    use crate::log::LogError;
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(LogError::io("create", &tmp))?;
    file.write_all(bytes).map_err(LogError::io("write", &tmp))?;
    file.sync_all().map_err(LogError::io("fsync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(LogError::io("rename", path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory so that renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> crate::log::Result<()> {
    let d = std::fs::File::open(dir).map_err(crate::log::LogError::io("open", dir))?;
    d.sync_all().map_err(crate::log::LogError::io("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_names_round_trip() {
        assert_eq!(offset_file_stem(42), "00000000000000000042");
        assert_eq!(
            parse_offset_file_name("00000000000000000042.log"),
            Some((42, ".log"))
        );
        assert_eq!(
            parse_offset_file_name("00000000000000000042.log.deleted"),
            Some((42, ".log.deleted"))
        );
        assert_eq!(parse_offset_file_name("0000000000000000004x.log"), None);
        assert_eq!(parse_offset_file_name("leader-epoch-checkpoint"), None);
    }

    #[test]
    fn partition_dir_names_split_at_last_dash() {
        assert_eq!(
            parse_partition_dir_name("my-topic-3"),
            Some(("my-topic", 3))
        );
        assert_eq!(parse_partition_dir_name("t-0"), Some(("t", 0)));
        assert_eq!(parse_partition_dir_name("-1"), None);
        assert_eq!(parse_partition_dir_name("t--1"), Some(("t-", 1)));
        assert_eq!(parse_partition_dir_name("nodash"), None);
    }
}
