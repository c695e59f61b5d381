//! The leader-epoch cache of one partition (Kafka's `LeaderEpochFileCache`): for every
//! leader epoch that wrote to this log, the offset of its first record.
//!
//! Followers use it to answer and to evaluate `OffsetForLeaderEpoch` (so that a replica
//! truncates exactly the records the new leader does not have), consumers to validate
//! their positions after a leader change.
//!
//! # File format
//!
//! `<partition dir>/leader-epoch-checkpoint`, UTF-8 text in Kafka's checkpoint framing,
//! every line terminated by `\n` (0x0A):
//!
//! ```text
//! 0\n              line 1: the version, always `0`
//! 2\n              line 2: the number of entry lines that follow
//! 0 0\n            one line per epoch: <epoch> SP <start offset>, ascending
//! 3 1200\n
//! ```
//!
//! `<epoch>` is a decimal `i32`, `<start offset>` a decimal `i64`, both non-negative. An
//! empty cache is written as `0\n0\n`. Reading follows the rules of
//! [`OffsetCheckpointFile`](crate::log::checkpoint::OffsetCheckpointFile) (a missing or
//! zero-byte file is empty; anything malformed, including a negative epoch or offset, is
//! [`LogError::CorruptFile`] naming the file and the line).
//!
//! # Crash behaviour
//!
//! Every change is persisted synchronously, before the mutating call returns, by a
//! whole-file atomic replace (temp file, fsync, rename, directory fsync), so after a crash
//! the file holds the state before or after the last change. Unlike Kafka, truncations are
//! flushed synchronously too (Kafka flushes them in the background and relies on the log
//! re-applying them at recovery); the log still re-applies its truncations when it loads,
//! so either way a stale file is harmless. If a write fails, the in-memory cache already
//! holds the new state and the error is returned: the caller treats the directory as
//! failed.

use std::path::{Path, PathBuf};

use crate::log::checkpoint::{encode_checkpoint, parse_checkpoint, read_if_exists};
use crate::log::files::write_atomically;
use crate::log::{LogError, Result};

/// The epoch returned when no epoch is known (Kafka's `UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;

/// The end offset returned when no epoch is known (Kafka's `UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// One leader epoch and the offset of its first record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

impl EpochEntry {
    fn new(epoch: i32, start_offset: i64) -> Self {
        EpochEntry {
            epoch,
            start_offset,
        }
    }
}

/// The leader-epoch cache of one partition, backed by its `leader-epoch-checkpoint`.
///
/// Invariant: entries are strictly increasing in both epoch and start offset.
///
/// Not thread-safe: owned by the partition's log, which is its only user.
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the cache from `path` (a missing file is an empty cache).
    ///
    /// As in Kafka, the file's entries are replayed through the rules of
    /// [`assign`](Self::assign), so a non-monotonic file (which this cache never writes)
    /// loads as the monotonic cache those rules produce; the file itself is not rewritten
    /// until the next change.
    pub fn open(path: PathBuf) -> Result<Self> {
        let parsed = match read_if_exists(&path)? {
            Some(text) => parse_checkpoint(&path, &text, parse_epoch_entry)?,
            None => Vec::new(),
        };
        let mut cache = LeaderEpochCache {
            path,
            entries: Vec::with_capacity(parsed.len()),
        };
        for entry in parsed {
            cache.apply(entry);
        }
        Ok(cache)
    }

    /// The backing file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that `epoch` starts at `start_offset`, with Kafka's rules:
    ///
    /// * If `epoch` is the latest epoch and `start_offset` is not below its start offset,
    ///   nothing changes (the common case: every batch of the current epoch calls this).
    /// * Otherwise every entry whose epoch is `>= epoch` or whose start offset is
    ///   `>= start_offset` is removed (only a suffix can match, by the invariant) and the
    ///   new entry is appended. So a same-epoch call with a lower offset moves the latest
    ///   epoch's start down, and a lower epoch or lower offset than the latest entry
    ///   replaces the conflicting tail (logged as a warning when it drops data-bearing
    ///   entries).
    ///
    /// The file is rewritten only if the cache changed. A negative epoch or start offset is
    /// refused with [`LogError::InvalidRecord`] (Kafka throws `IllegalArgumentException`;
    /// callers assign only for batches that carry a partition leader epoch).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 || start_offset < 0 {
            return Err(LogError::InvalidRecord(format!(
                "invalid leader epoch entry (epoch {epoch}, start offset {start_offset}) for {}",
                self.path.display()
            )));
        }
        if self.apply(EpochEntry::new(epoch, start_offset)) {
            self.flush()?;
        }
        Ok(())
    }

    /// The in-memory part of [`assign`](Self::assign); `true` if the cache changed.
    fn apply(&mut self, new: EpochEntry) -> bool {
        if let Some(latest) = self.entries.last() {
            if latest.epoch == new.epoch && new.start_offset >= latest.start_offset {
                return false;
            }
        }
        let keep = self
            .entries
            .iter()
            .rposition(|e| e.epoch < new.epoch && e.start_offset < new.start_offset)
            .map_or(0, |i| i + 1);
        let removed = self.entries.split_off(keep);
        // Removing a single entry that starts at the same offset is the expected case (an
        // epoch that never wrote anything superseded by a newer one); anything else means
        // data of the removed epochs is being discarded.
        if removed.len() > 1
            || removed
                .first()
                .is_some_and(|e| e.start_offset != new.start_offset)
        {
            tracing::warn!(
                path = %self.path.display(),
                ?new,
                ?removed,
                "new leader epoch entry truncated conflicting entries"
            );
        }
        self.entries.push(new);
        true
    }

    /// Whether no epoch is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries, ascending by epoch (and by start offset).
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest entry: the current epoch and where it started.
    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The earliest entry still cached.
    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// The latest epoch that has records in this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// The epoch the record at `offset` was written in: that of the entry with the largest
    /// start offset `<= offset`; `None` if `offset` is below the earliest entry or the
    /// cache is empty. (Offsets at or above the log end offset map to the latest epoch;
    /// the caller bounds them.)
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let n = self.entries.partition_point(|e| e.start_offset <= offset);
        n.checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|e| e.epoch)
    }

    /// `OffsetForLeaderEpoch`: the largest known epoch `<= requested_epoch` and that
    /// epoch's end offset (exclusive), exactly as Kafka's `endOffsetFor`:
    ///
    /// 1. `requested_epoch == UNDEFINED_EPOCH` (-1) → `(UNDEFINED_EPOCH,
    ///    UNDEFINED_EPOCH_OFFSET)`.
    /// 2. `requested_epoch` is the latest epoch → `(requested_epoch, log_end_offset)`:
    ///    the current epoch is still being written to.
    /// 3. No known epoch is above `requested_epoch` — it is above the latest epoch, or the
    ///    cache is empty → `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)`.
    /// 4. `requested_epoch` is below the earliest known epoch → `(requested_epoch, start
    ///    offset of the earliest entry)`. Note: Kafka echoes the *requested* epoch here,
    ///    not -1 — the data before the earliest entry is gone (the log start moved past
    ///    it), and the follower should truncate to where the leader's log begins.
    /// 5. Otherwise → `(largest known epoch <= requested_epoch, start offset of the
    ///    smallest known epoch > requested_epoch)`. A requested epoch between two known
    ///    epochs (one this replica never saw) thus answers with the lower known epoch and
    ///    the start of the next one.
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        if requested_epoch == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        // Index of the first entry with an epoch above the requested one.
        let higher = self.entries.partition_point(|e| e.epoch <= requested_epoch);
        let Some(next) = self.entries.get(higher) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match higher.checked_sub(1).and_then(|i| self.entries.get(i)) {
            None => (requested_epoch, next.start_offset),
            Some(floor) => (floor.epoch, next.start_offset),
        }
    }

    /// The log was truncated to `end_offset` (records at `end_offset` and above removed):
    /// removes every entry whose start offset is `>= end_offset`. A negative
    /// `end_offset` is ignored, as in Kafka. Persists only if something was removed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<()> {
        if end_offset < 0 {
            return Ok(());
        }
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        self.flush()
    }

    /// The log start offset advanced to `start_offset` (records below it removed): drops
    /// every entry that starts at or below `start_offset` except the last of them, whose
    /// start moves up to `start_offset` — the epoch that the record at `start_offset`
    /// belongs to now starts there. An entry starting exactly at `start_offset` is kept
    /// unchanged; if every entry starts above `start_offset` nothing changes. Persists
    /// only if the cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<()> {
        let below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(last_below) = below.checked_sub(1) else {
            return Ok(());
        };
        let Some(&covering) = self.entries.get(last_below) else {
            return Ok(());
        };
        if last_below == 0 && covering.start_offset == start_offset {
            return Ok(());
        }
        self.entries.drain(..last_below);
        if let Some(first) = self.entries.first_mut() {
            first.start_offset = start_offset;
        }
        self.flush()
    }

    /// Removes every entry and persists the empty cache (used when a log is deleted or
    /// fully truncated and its epochs become meaningless).
    pub fn clear_and_flush(&mut self) -> Result<()> {
        self.entries.clear();
        self.flush()
    }

    /// Rewrites the checkpoint file from the in-memory entries, atomically.
    fn flush(&self) -> Result<()> {
        let text = encode_checkpoint(
            self.entries.len(),
            self.entries
                .iter()
                .map(|e| format!("{} {}", e.epoch, e.start_offset)),
        );
        write_atomically(&self.path, text.as_bytes())
    }
}

fn parse_epoch_entry(line: &str) -> Option<EpochEntry> {
    if line.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let epoch: i32 = fields.next()?.parse().ok()?;
    let start_offset: i64 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || epoch < 0 || start_offset < 0 {
        return None;
    }
    Some(EpochEntry::new(epoch, start_offset))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::log::files::LEADER_EPOCH_CHECKPOINT;
    use std::fs;

    fn e(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry::new(epoch, start_offset)
    }

    fn open(dir: &tempfile::TempDir) -> LeaderEpochCache {
        LeaderEpochCache::open(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap()
    }

    fn file_text(dir: &tempfile::TempDir) -> String {
        fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap()
    }

    /// A cache holding (2, 10), (4, 20), (6, 30).
    fn sample(dir: &tempfile::TempDir) -> LeaderEpochCache {
        let mut c = open(dir);
        c.assign(2, 10).unwrap();
        c.assign(4, 20).unwrap();
        c.assign(6, 30).unwrap();
        c
    }

    #[test]
    fn missing_file_is_empty_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir);
        assert!(c.is_empty());
        assert_eq!(c.latest_epoch(), None);
        assert_eq!(c.latest_entry(), None);
        assert_eq!(c.earliest_entry(), None);
        assert!(!dir.path().join(LEADER_EPOCH_CHECKPOINT).exists());
    }

    #[test]
    fn assign_sequence_persists_exact_bytes_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let c = sample(&dir);
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(6, 30)]);
        assert_eq!(c.latest_epoch(), Some(6));
        assert_eq!(c.earliest_entry(), Some(e(2, 10)));
        assert_eq!(file_text(&dir), "0\n3\n2 10\n4 20\n6 30\n");
        drop(c);
        let c = open(&dir);
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(6, 30)]);
    }

    #[test]
    fn duplicates_and_later_offsets_of_latest_epoch_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(&dir);
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        // Remove the file: if an ignored assign wrote, it would reappear.
        fs::remove_file(&path).unwrap();
        c.assign(6, 30).unwrap();
        c.assign(6, 31).unwrap();
        c.assign(6, 1000).unwrap();
        assert!(!path.exists());
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(6, 30)]);
    }

    #[test]
    fn same_epoch_with_lower_offset_moves_latest_start_down() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(&dir);
        c.assign(6, 25).unwrap();
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(6, 25)]);
        // Lower than the previous entry's start too: that one goes.
        c.assign(6, 15).unwrap();
        assert_eq!(c.entries(), &[e(2, 10), e(6, 15)]);
        assert_eq!(open(&dir).entries(), c.entries());
    }

    #[test]
    fn conflicting_entries_are_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(&dir);
        // Lower epoch than the latest, higher offset: epochs >= 5 go.
        c.assign(5, 40).unwrap();
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(5, 40)]);
        // Higher epoch, offset not above earlier starts: those starts go.
        c.assign(7, 20).unwrap();
        assert_eq!(c.entries(), &[e(2, 10), e(7, 20)]);
        // Epoch below everything: all go.
        c.assign(1, 50).unwrap();
        assert_eq!(c.entries(), &[e(1, 50)]);
        // New epoch at the same offset as the latest (empty epoch superseded).
        c.assign(3, 50).unwrap();
        assert_eq!(c.entries(), &[e(3, 50)]);
        assert_eq!(open(&dir).entries(), &[e(3, 50)]);
    }

    #[test]
    fn negative_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(&dir);
        assert!(matches!(c.assign(-1, 5), Err(LogError::InvalidRecord(_))));
        assert!(matches!(c.assign(7, -1), Err(LogError::InvalidRecord(_))));
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(6, 30)]);
    }

    #[test]
    fn end_offset_for_every_case() {
        let dir = tempfile::tempdir().unwrap();
        let c = sample(&dir);
        let leo = 45;
        // Undefined epoch requested.
        assert_eq!(
            c.end_offset_for(UNDEFINED_EPOCH, leo),
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        );
        // Latest epoch: the log end offset.
        assert_eq!(c.end_offset_for(6, leo), (6, 45));
        // A known middle epoch: start of the next epoch.
        assert_eq!(c.end_offset_for(2, leo), (2, 20));
        assert_eq!(c.end_offset_for(4, leo), (4, 30));
        // Between two known epochs: the lower known epoch, start of the next.
        assert_eq!(c.end_offset_for(3, leo), (2, 20));
        assert_eq!(c.end_offset_for(5, leo), (4, 30));
        // Below the earliest epoch: the requested epoch, start of the earliest.
        assert_eq!(c.end_offset_for(1, leo), (1, 10));
        assert_eq!(c.end_offset_for(0, leo), (0, 10));
        // Above the latest epoch: undefined.
        assert_eq!(
            c.end_offset_for(7, leo),
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        );
    }

    #[test]
    fn end_offset_for_empty_cache_is_undefined() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir);
        for epoch in [UNDEFINED_EPOCH, 0, 5] {
            assert_eq!(
                c.end_offset_for(epoch, 100),
                (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
            );
        }
    }

    #[test]
    fn epoch_for_offset_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let c = sample(&dir);
        assert_eq!(c.epoch_for_offset(9), None);
        assert_eq!(c.epoch_for_offset(10), Some(2));
        assert_eq!(c.epoch_for_offset(19), Some(2));
        assert_eq!(c.epoch_for_offset(20), Some(4));
        assert_eq!(c.epoch_for_offset(30), Some(6));
        assert_eq!(c.epoch_for_offset(1000), Some(6));
        assert_eq!(
            open(&tempfile::tempdir().unwrap()).epoch_for_offset(0),
            None
        );
    }

    #[test]
    fn truncate_from_end_cases() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(&dir);
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        // Nothing at or above 31: no change, no write.
        fs::remove_file(&path).unwrap();
        c.truncate_from_end(31).unwrap();
        c.truncate_from_end(-1).unwrap();
        assert!(!path.exists());
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(6, 30)]);
        // Exactly at a start offset: that entry goes.
        c.truncate_from_end(30).unwrap();
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20)]);
        assert_eq!(open(&dir).entries(), &[e(2, 10), e(4, 20)]);
        // Inside an epoch: later ones go, the containing one stays.
        c.truncate_from_end(15).unwrap();
        assert_eq!(c.entries(), &[e(2, 10)]);
        // Below everything: empty.
        c.truncate_from_end(0).unwrap();
        assert!(c.is_empty());
        assert_eq!(file_text(&dir), "0\n0\n");
        assert!(open(&dir).is_empty());
    }

    #[test]
    fn truncate_from_start_cases() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(&dir);
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        // Below the first entry, or exactly at it: no change, no write.
        fs::remove_file(&path).unwrap();
        c.truncate_from_start(5).unwrap();
        c.truncate_from_start(10).unwrap();
        assert!(!path.exists());
        assert_eq!(c.entries(), &[e(2, 10), e(4, 20), e(6, 30)]);
        // Inside the first epoch: its start moves up.
        c.truncate_from_start(12).unwrap();
        assert_eq!(c.entries(), &[e(2, 12), e(4, 20), e(6, 30)]);
        // Inside the second epoch: the first goes, the second's start moves up.
        c.truncate_from_start(25).unwrap();
        assert_eq!(c.entries(), &[e(4, 25), e(6, 30)]);
        assert_eq!(open(&dir).entries(), &[e(4, 25), e(6, 30)]);
        // Exactly at a later entry's start: earlier ones go, it is kept as is.
        c.truncate_from_start(30).unwrap();
        assert_eq!(c.entries(), &[e(6, 30)]);
        // Beyond every entry: the latest epoch now starts there.
        c.truncate_from_start(100).unwrap();
        assert_eq!(c.entries(), &[e(6, 100)]);
        assert_eq!(file_text(&dir), "0\n1\n6 100\n");
    }

    #[test]
    fn clear_and_flush_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sample(&dir);
        c.clear_and_flush().unwrap();
        assert!(c.is_empty());
        assert_eq!(file_text(&dir), "0\n0\n");
        assert!(open(&dir).is_empty());
        c.assign(9, 50).unwrap();
        assert_eq!(open(&dir).entries(), &[e(9, 50)]);
    }

    #[test]
    fn open_replays_kafka_rules_over_a_non_monotonic_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        fs::write(&path, "0\n4\n1 0\n3 10\n2 20\n5 15\n").unwrap();
        let c = open(&dir);
        assert_eq!(c.entries(), &[e(1, 0), e(5, 15)]);
    }

    #[test]
    fn corrupt_files_name_the_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LEADER_EPOCH_CHECKPOINT);
        let cases: &[(&str, &str)] = &[
            ("1\n0\n", "line 1: unrecognized version 1"),
            (
                "0\n2\n1 0\n",
                "line 2: entry count is 2 but the file holds 1",
            ),
            (
                "0\n1\n1 0\n2 5\n",
                "line 2: entry count is 1 but the file holds 2",
            ),
            ("0\n1\nnonsense\n", "line 3: malformed entry"),
            ("0\n2\n1 0\n2 x\n", "line 4: malformed entry"),
            ("0\n1\n1 0 7\n", "line 3: malformed entry"),
            ("0\n1\n-1 0\n", "line 3: malformed entry"),
            ("0\n1\n1 -5\n", "line 3: malformed entry"),
            ("0\n1\n1 1", "line 3: no terminating newline"),
            ("0\n", "line 2: missing entry count"),
        ];
        for (content, needle) in cases {
            fs::write(&path, content).unwrap();
            match LeaderEpochCache::open(path.clone()) {
                Err(LogError::CorruptFile { path: p, reason }) => {
                    assert_eq!(p, path);
                    assert!(reason.contains(needle), "{reason:?} vs {needle:?}");
                }
                other => panic!("expected CorruptFile for {content:?}, got {other:?}"),
            }
        }
    }
}
