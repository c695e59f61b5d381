//! [`Log`]: one partition's log — an ordered set of segments plus its leader-epoch cache.
//!
//! Layout of the partition directory `<topic>-<partition>/`:
//! `<base>.log|.index|.timeindex` per segment, `leader-epoch-checkpoint`,
//! `partition.metadata`. The newest segment is the active one; only it is appended to.
//!
//! Offsets: `log_start_offset` ≤ every served offset < `log_end_offset` (LEO, the next
//! offset to assign). The caller (the partition replica) passes its high watermark as
//! the upper bound of reads and of retention; the log itself knows nothing of replication.
//!
//! Crash behaviour: [`Log::open`] finishes or undoes what a crash interrupted (`.deleted`,
//! `.cleaned`, `.swap`, `.tmp` files), then — without a clean shutdown — recovers every
//! segment from the one holding the recovery point on (see [`Segment::recover`]),
//! deleting all segments after the first one that had to be truncated. With a clean
//! shutdown it only sanity-checks indexes and rebuilds those that fail.
//!
//! Not thread-safe: owned by the partition's replica, the only writer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::log::batch::{self, AppendOrigin, ValidBatch, ValidationOptions};
use crate::log::checkpoint::PartitionMetadataFile;
use crate::log::config::{LogConfig, TimestampType};
use crate::log::files::{
    self, CLEANED_SUFFIX, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, SWAP_SUFFIX, TIME_INDEX_SUFFIX,
};
use crate::log::index::TimestampOffset;
use crate::log::leader_epoch::LeaderEpochCache;
use crate::log::segment::{
    append_suffix, FileSlice, Segment, SegmentConfig, Written, MAX_DECOMPRESSED_BATCH,
};
use crate::log::{LogError, Result};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogAppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// Max timestamp over the appended batches, and the last offset of the batch with it.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// The broker's clock for `LogAppendTime` topics, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub batches: usize,
    pub bytes: usize,
}

/// The answer to a read: the bytes to send, and the first batch's base offset.
#[derive(Debug, Clone)]
pub struct FetchDataInfo {
    /// `None`: nothing to send (at the end of the log or at the upper bound).
    pub slice: Option<FileSlice>,
    pub first_batch_offset: Option<i64>,
}

impl FetchDataInfo {
    fn empty() -> Self {
        FetchDataInfo {
            slice: None,
            first_batch_offset: None,
        }
    }
}

/// Facts about a partition kept outside its directory (the data dir's checkpoints).
#[derive(Debug, Clone, Default)]
pub struct LogOpenOptions {
    /// From `recovery-point-offset-checkpoint`: everything below is known flushed.
    pub recovery_point: i64,
    /// From `log-start-offset-checkpoint` (DeleteRecords survives a restart).
    pub log_start_offset: i64,
    /// The data dir's `.clean-shutdown` marker was present.
    pub clean_shutdown: bool,
    /// The topic id this partition must belong to; a directory holding another id is
    /// refused ([`LogError::TopicIdMismatch`]).
    pub topic_id: Option<String>,
    /// The clock at open.
    pub now_ms: i64,
}

/// One partition's log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    pub(crate) segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    recovery_point: i64,
    last_flush_ms: i64,
    /// `segment.jitter.ms` drawn for the active segment.
    roll_jitter_ms: i64,
    epoch_cache: LeaderEpochCache,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering as the module doc says.
    pub fn open(dir: &Path, config: LogConfig, opts: LogOpenOptions) -> Result<Log> {
        config.validate()?;
        std::fs::create_dir_all(dir).map_err(LogError::io("create", dir))?;
        if let Some(expected) = &opts.topic_id {
            let meta = PartitionMetadataFile::new(dir.join(files::PARTITION_METADATA));
            match meta.read()? {
                Some(found) if &found != expected => {
                    return Err(LogError::TopicIdMismatch {
                        path: dir.to_path_buf(),
                        expected: expected.clone(),
                        found,
                    })
                }
                Some(_) => {}
                None => meta.write(expected)?,
            }
        }
        complete_interrupted_operations(dir)?;
        let seg_config = segment_config(&config);
        let mut segments = BTreeMap::new();
        let mut rebuild = BTreeMap::new();
        for base in list_segment_bases(dir)? {
            let (segment, needs_rebuild) = Segment::open(dir, base, seg_config, opts.now_ms)?;
            rebuild.insert(base, needs_rebuild);
            segments.insert(base, segment);
        }
        let mut epoch_cache = LeaderEpochCache::open(dir.join(files::LEADER_EPOCH_CHECKPOINT))?;

        // Recovery: every segment from the one holding the recovery point after an
        // unclean shutdown, and any segment whose indexes failed to load.
        let recover_from = if opts.clean_shutdown {
            i64::MAX
        } else {
            segments
                .range(..=opts.recovery_point)
                .next_back()
                .map_or(i64::MIN, |(base, _)| *base)
        };
        let bases: Vec<i64> = segments.keys().copied().collect();
        let mut recovered_any = false;
        for (i, base) in bases.iter().enumerate() {
            if *base < recover_from && !rebuild.get(base).copied().unwrap_or(false) {
                continue;
            }
            let Some(segment) = segments.get_mut(base) else {
                continue;
            };
            let result = segment.recover(|h| {
                // Only epochs above the latest known one, as Kafka does: the checkpoint
                // already holds the earlier ones, and assigning an older epoch again
                // (rebuilding an old segment's index) would drop every later entry.
                let epoch = h.partition_leader_epoch;
                if epoch >= 0
                    && epoch_cache
                        .latest_epoch()
                        .is_none_or(|latest| epoch > latest)
                {
                    epoch_cache.assign(epoch, h.base_offset)?;
                }
                Ok(())
            })?;
            recovered_any = true;
            if result.truncated_bytes > 0 {
                tracing::warn!(
                    dir = %dir.display(),
                    segment = base,
                    bytes = result.truncated_bytes,
                    "truncated a corrupt or torn log tail"
                );
                for later in &bases[i + 1..] {
                    if let Some(s) = segments.remove(later) {
                        tracing::warn!(dir = %dir.display(), segment = later, "deleting segment after a truncated one");
                        s.delete()?;
                    }
                }
                break;
            }
        }
        if segments.is_empty() {
            let base = opts.log_start_offset.max(0);
            segments.insert(base, Segment::create(dir, base, seg_config, opts.now_ms)?);
        }
        let last_base = segments.keys().next_back().copied().unwrap_or(0);
        for (base, segment) in segments.iter_mut() {
            if *base == last_base {
                segment.on_become_active()?;
            } else {
                segment.on_become_inactive()?;
            }
        }
        let mut log = Log {
            dir: dir.to_path_buf(),
            roll_jitter_ms: config.segment_jitter(jitter_seed(last_base, opts.now_ms)),
            config,
            segments,
            log_start_offset: 0,
            log_end_offset: 0,
            recovery_point: 0,
            last_flush_ms: opts.now_ms,
            epoch_cache,
        };
        log.log_end_offset = log.active_segment()?.next_offset()?;
        let first_base = log.segments.keys().next().copied().unwrap_or(0);
        log.log_start_offset = opts
            .log_start_offset
            .max(first_base)
            .min(log.log_end_offset);
        log.epoch_cache.truncate_from_end(log.log_end_offset)?;
        log.epoch_cache.truncate_from_start(log.log_start_offset)?;
        if recovered_any && !opts.clean_shutdown {
            // What recovery validated is now known good; make it durable before the
            // recovery point says so.
            log.recovery_point = opts.recovery_point.min(log.log_end_offset);
            log.flush(opts.now_ms)?;
        } else {
            log.recovery_point = opts
                .recovery_point
                .clamp(log.log_start_offset, log.log_end_offset);
        }
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    /// Applies a new configuration (a topic config change); affects later appends, rolls
    /// and retention passes.
    pub fn update_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    /// Offset below which everything has been fsync'd.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn leader_epoch_cache(&self) -> &LeaderEpochCache {
        &self.epoch_cache
    }
    /// OffsetForLeaderEpoch: the largest epoch ≤ `epoch` and the offset where it ended.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epoch_cache.end_offset_for(epoch, self.log_end_offset)
    }
    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.values()
    }

    /// Closes the `.log` files and unmaps the indexes of the segments that are not active
    /// (reads open them again): an idle partition then holds one file descriptor, its
    /// active segment's, and no map.
    pub fn close_inactive_files(&mut self) -> Result<()> {
        let mut segments = self.segments.values_mut();
        segments.next_back();
        for segment in segments {
            segment.close_files()?;
        }
        Ok(())
    }

    pub(crate) fn active_segment(&self) -> Result<&Segment> {
        self.segments
            .values()
            .next_back()
            .ok_or_else(|| self.no_segment())
    }
    fn active_segment_mut(&mut self) -> Result<&mut Segment> {
        let Log { segments, dir, .. } = self;
        segments
            .values_mut()
            .next_back()
            .ok_or_else(|| LogError::CorruptFile {
                path: dir.clone(),
                reason: "log has no segment".into(),
            })
    }
    fn no_segment(&self) -> LogError {
        LogError::CorruptFile {
            path: self.dir.clone(),
            reason: "log has no segment".into(),
        }
    }

    fn validation(&self, origin: AppendOrigin) -> ValidationOptions {
        ValidationOptions {
            origin,
            max_batch_bytes: self.config.max_message_bytes as usize,
            require_keys: self.config.cleanup_policy.compact,
            // A producer's batch may not inflate past `max.message.bytes` when the broker
            // decompresses it (compacted topics): a decompression bomb is refused after at
            // most that many bytes, not inflated. What a leader accepted, a follower takes.
            max_decompressed_bytes: match origin {
                AppendOrigin::Client => usize::try_from(self.config.max_message_bytes)
                    .unwrap_or(MAX_DECOMPRESSED_BATCH)
                    .clamp(batch::BATCH_HEADER_SIZE, MAX_DECOMPRESSED_BATCH),
                AppendOrigin::Replication => MAX_DECOMPRESSED_BATCH,
            },
        }
    }

    /// Appends batches from a producer: validates every batch (nothing is appended if one
    /// fails), assigns offsets from the log end offset and stamps `leader_epoch`, then writes
    /// the bytes as they came, each batch's base offset and leader epoch patched in as it is
    /// written (`records` itself is not changed, so it can be the request's own buffer).
    /// `LogAppendTime` topics change timestamps under the CRC: their batches are copied and
    /// rewritten first.
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<LogAppendInfo> {
        let mut batches = batch::validate_batches(records, &self.validation(AppendOrigin::Client))?;
        self.check_timestamps(&batches, now_ms)?;
        let first_offset = self.log_end_offset;
        let count: i64 = batches
            .iter()
            .map(|b| b.header.last_offset_delta as i64 + 1)
            .sum();
        let max_ts = batches
            .iter()
            .map(|b| b.header.max_timestamp)
            .max()
            .unwrap_or(-1);
        self.maybe_roll(
            records.len() as u64,
            max_ts,
            first_offset,
            first_offset + count - 1,
            now_ms,
        )?;
        if leader_epoch >= 0 {
            self.epoch_cache.assign(leader_epoch, first_offset)?;
        }
        if self.config.message_timestamp_type == TimestampType::LogAppendTime {
            let mut owned = records.to_vec();
            batch::assign_offsets(&mut owned, &mut batches, first_offset, leader_epoch);
            for b in batches.iter_mut() {
                batch::set_log_append_time(&mut owned, b, now_ms);
            }
            return self.append_validated(&owned, &batches, now_ms, Written::AsIs);
        }
        batch::assign_offsets_to_headers(&mut batches, first_offset, leader_epoch);
        self.append_validated(records, &batches, -1, Written::Patched)
    }

    /// Appends batches copied from the leader: offsets and epochs are kept; the first
    /// must not be below the log end offset (gaps left by compaction are fine).
    pub fn append_as_follower(&mut self, records: &[u8], now_ms: i64) -> Result<LogAppendInfo> {
        let opts = ValidationOptions {
            // The leader already enforced its limit; a follower must take what it has.
            max_batch_bytes: usize::MAX,
            require_keys: false,
            ..self.validation(AppendOrigin::Replication)
        };
        let batches = batch::validate_batches(records, &opts)?;
        let mut expected = self.log_end_offset;
        for b in &batches {
            if b.header.base_offset < expected {
                return Err(LogError::UnexpectedAppendOffset {
                    first_offset: b.header.base_offset,
                    log_end_offset: expected,
                });
            }
            expected = b.header.next_offset();
        }
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Err(LogError::CorruptBatch("no record batch".into()));
        };
        let max_ts = batches
            .iter()
            .map(|b| b.header.max_timestamp)
            .max()
            .unwrap_or(-1);
        self.maybe_roll(
            records.len() as u64,
            max_ts,
            first.header.base_offset,
            last.header.last_offset(),
            now_ms,
        )?;
        for b in &batches {
            let epoch = b.header.partition_leader_epoch;
            if epoch >= 0
                && self
                    .epoch_cache
                    .latest_epoch()
                    .is_none_or(|latest| epoch > latest)
            {
                self.epoch_cache.assign(epoch, b.header.base_offset)?;
            }
        }
        self.append_validated(records, &batches, -1, Written::AsIs)
    }

    fn append_validated(
        &mut self,
        records: &[u8],
        batches: &[ValidBatch],
        log_append_time: i64,
        written: Written,
    ) -> Result<LogAppendInfo> {
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Err(LogError::CorruptBatch("no record batch".into()));
        };
        let (mut max_timestamp, mut offset_of_max_timestamp) = (-1, -1);
        for b in batches {
            if b.header.max_timestamp > max_timestamp {
                max_timestamp = b.header.max_timestamp;
                offset_of_max_timestamp = b.header.last_offset();
            }
        }
        let info = LogAppendInfo {
            first_offset: first.header.base_offset,
            last_offset: last.header.last_offset(),
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time,
            log_start_offset: self.log_start_offset,
            batches: batches.len(),
            bytes: last.position + last.size() - first.position,
        };
        self.active_segment_mut()?
            .append(records, batches, written)?;
        self.log_end_offset = info.last_offset + 1;
        Ok(info)
    }

    /// `message.timestamp.before.max.ms` / `after.max.ms` on `CreateTime` topics, checked
    /// on batch headers (base and max timestamp bound every record's timestamp).
    fn check_timestamps(&self, batches: &[ValidBatch], now_ms: i64) -> Result<()> {
        if self.config.message_timestamp_type != TimestampType::CreateTime {
            return Ok(());
        }
        let before = self.config.message_timestamp_before_max_ms;
        let after = self.config.message_timestamp_after_max_ms;
        for b in batches {
            let (lo, hi) = (b.header.base_timestamp, b.header.max_timestamp);
            if lo >= 0 && now_ms.saturating_sub(lo) > before {
                return Err(LogError::InvalidTimestamp(format!(
                    "timestamp {lo} is more than message.timestamp.before.max.ms={before} before now ({now_ms})"
                )));
            }
            if hi.saturating_sub(now_ms) > after {
                return Err(LogError::InvalidTimestamp(format!(
                    "timestamp {hi} is more than message.timestamp.after.max.ms={after} after now ({now_ms})"
                )));
            }
        }
        Ok(())
    }

    /// Rolls the active segment if the coming append would not fit it: `segment.bytes`,
    /// `segment.ms` (minus jitter), a full index, or a relative offset overflowing int32.
    fn maybe_roll(
        &mut self,
        append_bytes: u64,
        max_timestamp: i64,
        first_offset: i64,
        last_offset: i64,
        now_ms: i64,
    ) -> Result<()> {
        let max_segment_ms = self.config.max_segment_ms();
        let segment_bytes = self.config.segment_bytes;
        let jitter = self.roll_jitter_ms;
        let active = self.active_segment()?;
        if active.is_empty() {
            return Ok(());
        }
        let reason = if active.size() + append_bytes > segment_bytes {
            "segment.bytes"
        } else if active.time_waited_for_roll(now_ms, max_timestamp) > max_segment_ms - jitter {
            "segment.ms"
        } else if active.indexes_full() {
            "index full"
        } else if !active.can_hold_offset(last_offset) {
            "relative offset overflow"
        } else {
            return Ok(());
        };
        tracing::debug!(dir = %self.dir.display(), new_base = first_offset, reason, "rolling segment");
        self.roll_at(first_offset, now_ms)
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        if self.active_segment()?.is_empty() {
            return Ok(());
        }
        self.roll_at(self.log_end_offset, now_ms)
    }

    fn roll_at(&mut self, base: i64, now_ms: i64) -> Result<()> {
        self.active_segment_mut()?.on_become_inactive()?;
        let segment = Segment::create(&self.dir, base, segment_config(&self.config), now_ms)?;
        self.segments.insert(base, segment);
        self.roll_jitter_ms = self.config.segment_jitter(jitter_seed(base, now_ms));
        Ok(())
    }

    /// Reads from `start_offset`: whole batches up to `max_bytes` (the first whole even if
    /// larger, when `min_one_batch`), nothing at or above `upper_bound` (the high
    /// watermark; the log end offset if `None`).
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: u64,
        upper_bound: Option<i64>,
        min_one_batch: bool,
    ) -> Result<FetchDataInfo> {
        if start_offset < self.log_start_offset || start_offset > self.log_end_offset {
            return Err(self.out_of_range(start_offset));
        }
        let upper = upper_bound
            .unwrap_or(self.log_end_offset)
            .min(self.log_end_offset);
        if start_offset >= upper {
            return Ok(FetchDataInfo::empty());
        }
        let from = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let mut iter = self.segments.range(from..).peekable();
        while let Some((_, segment)) = iter.next() {
            let next_base = iter.peek().map_or(i64::MAX, |(b, _)| **b);
            // The upper bound cuts this segment only if it falls inside it (at the log
            // end offset it cuts nothing: no scan for it).
            let max_position = if upper < next_base && upper < self.log_end_offset {
                match segment.translate_offset(upper)? {
                    Some((_, position)) => position,
                    None => segment.size(),
                }
            } else {
                segment.size()
            };
            if let Some((slice, first)) =
                segment.read(start_offset, max_bytes, max_position, min_one_batch)?
            {
                if slice.len == 0 {
                    return Ok(FetchDataInfo::empty());
                }
                return Ok(FetchDataInfo {
                    slice: Some(slice),
                    first_batch_offset: Some(first),
                });
            }
            if upper < next_base {
                break;
            }
        }
        Ok(FetchDataInfo::empty())
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
        }
    }

    /// ListOffsets by timestamp: the earliest record whose timestamp is ≥ `timestamp`.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        for segment in self.segments.values() {
            if segment.max_timestamp() >= timestamp {
                if let Some(found) =
                    segment.find_offset_by_timestamp(timestamp, self.log_start_offset)?
                {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// ListOffsets `MAX_TIMESTAMP` (KIP-734): the record with the largest timestamp
    /// (the earliest one if several share it).
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampOffset>> {
        let max = self
            .segments
            .values()
            .map(Segment::max_timestamp)
            .max()
            .unwrap_or(-1);
        if max < 0 {
            return Ok(None);
        }
        self.offset_for_timestamp(max)
    }

    /// DeleteRecords: moves the log start offset up to `new_start` (not past
    /// `high_watermark`). Segments wholly below it go at the next retention pass.
    pub fn maybe_increment_log_start_offset(
        &mut self,
        new_start: i64,
        high_watermark: i64,
    ) -> Result<bool> {
        if new_start > high_watermark.min(self.log_end_offset) {
            return Err(self.out_of_range(new_start));
        }
        if new_start <= self.log_start_offset {
            return Ok(false);
        }
        self.log_start_offset = new_start;
        self.epoch_cache.truncate_from_start(new_start)?;
        Ok(true)
    }

    /// Retention: deletes whole segments, oldest first, that are not active, lie wholly
    /// below `high_watermark`, and are below the log start offset, older than
    /// `retention.ms` (by their max timestamp) or in excess of `retention.bytes`. The
    /// latter two only under `cleanup.policy=delete`. Returns how many went.
    pub fn delete_old_segments(&mut self, high_watermark: i64, now_ms: i64) -> Result<usize> {
        let delete_policy = self.config.cleanup_policy.delete;
        let retention_ms = self.config.retention_ms_limit().filter(|_| delete_policy);
        let mut excess = match self
            .config
            .retention_bytes_limit()
            .filter(|_| delete_policy)
        {
            Some(limit) => self.size() as i64 - limit as i64,
            None => i64::MIN / 2,
        };
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut doomed = Vec::new();
        for pair in bases.windows(2) {
            let (base, next_base) = (pair[0], pair[1]);
            if next_base > high_watermark {
                break;
            }
            let Some(segment) = self.segments.get(&base) else {
                break;
            };
            let below_start = next_base <= self.log_start_offset;
            let expired = retention_ms
                .is_some_and(|ms| now_ms.saturating_sub(segment_timestamp(segment)) > ms);
            let oversize = excess >= segment.size() as i64;
            if !(below_start || expired || oversize) {
                break;
            }
            excess = excess.saturating_sub(segment.size() as i64);
            doomed.push(base);
        }
        for base in &doomed {
            if let Some(segment) = self.segments.remove(base) {
                tracing::info!(dir = %self.dir.display(), segment = base, "deleting segment (retention)");
                segment.delete()?;
            }
        }
        if let Some(first) = self.segments.keys().next() {
            if *first > self.log_start_offset {
                self.log_start_offset = *first;
                self.epoch_cache.truncate_from_start(*first)?;
            }
        }
        Ok(doomed.len())
    }

    /// Truncates the log to end at `offset` (a follower diverged from its leader).
    /// Keeps segments, indexes, the epoch cache and the recovery point consistent.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<bool> {
        if offset < 0 {
            return Err(self.out_of_range(offset));
        }
        if offset >= self.log_end_offset {
            return Ok(false);
        }
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        if offset <= first_base || offset < self.log_start_offset {
            self.truncate_fully_and_start_at(offset, now_ms)?;
            return Ok(true);
        }
        let later: Vec<i64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
        for base in later {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete()?;
            }
        }
        let active = self.active_segment_mut()?;
        active.truncate_to(offset)?;
        active.on_become_active()?;
        self.log_end_offset = active.next_offset()?;
        self.epoch_cache.truncate_from_end(self.log_end_offset)?;
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        Ok(true)
    }

    /// Deletes every segment and starts empty at `offset` (a follower far behind, or
    /// below its leader's log start).
    pub fn truncate_fully_and_start_at(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        for (_, segment) in std::mem::take(&mut self.segments) {
            segment.delete()?;
        }
        let segment = Segment::create(&self.dir, offset, segment_config(&self.config), now_ms)?;
        self.segments.insert(offset, segment);
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.recovery_point = offset;
        self.epoch_cache.clear_and_flush()?;
        Ok(())
    }

    /// Whether `flush.messages` or `flush.ms` asks for an fsync now.
    pub fn needs_flush(&self, now_ms: i64) -> bool {
        let unflushed = self.log_end_offset - self.recovery_point;
        unflushed > 0
            && (unflushed >= self.config.flush_messages
                || now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms)
    }

    /// fsyncs every segment holding unflushed data and moves the recovery point to the
    /// log end offset.
    pub fn flush(&mut self, now_ms: i64) -> Result<()> {
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for segment in self.segments.range(from..).map(|(_, s)| s) {
            segment.flush()?;
        }
        files::sync_dir(&self.dir)?;
        self.recovery_point = self.log_end_offset;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// Flushes and closes: the active segment writes its final time index entry and
    /// trims its indexes, as on a roll.
    pub fn close(mut self, now_ms: i64) -> Result<()> {
        self.flush(now_ms)?;
        self.active_segment_mut()?.on_become_inactive()?;
        Ok(())
    }
}

fn segment_config(config: &LogConfig) -> SegmentConfig {
    SegmentConfig {
        index_interval_bytes: config.index_interval_bytes,
        segment_index_bytes: config.segment_index_bytes,
    }
}

/// A deterministic spread for `segment.jitter.ms` (no RNG dependency for one number).
fn jitter_seed(base: i64, now_ms: i64) -> u64 {
    (base as u64 ^ (now_ms as u64).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A segment's age reference for `retention.ms`: its max timestamp, or the file's mtime
/// if no batch carried one.
fn segment_timestamp(segment: &Segment) -> i64 {
    if segment.max_timestamp() >= 0 {
        return segment.max_timestamp();
    }
    std::fs::metadata(segment.log_path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(i64::MAX, |d| d.as_millis() as i64)
}

/// Base offsets of the `.log` files in `dir`, ascending; orphan index files are removed.
fn list_segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io("list", dir))? {
        let entry = entry.map_err(LogError::io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match files::parse_offset_file_name(name) {
            Some((base, LOG_SUFFIX)) => logs.push(base),
            Some((base, INDEX_SUFFIX | TIME_INDEX_SUFFIX)) => indexes.push((base, entry.path())),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(file = %path.display(), "removing index file without a log");
            std::fs::remove_file(&path).map_err(LogError::io("remove", &path))?;
        }
    }
    Ok(logs)
}

/// Finishes or undoes what a crash interrupted (see [`crate::log::cleaner`] for the swap
/// protocol): `.deleted`, `.cleaned` and `.tmp` files go; a `<base>.log.swap` means a
/// cleaned segment was committed, so its `.swap` files replace the originals; `.swap`
/// index files without a `.log.swap` were never committed and go.
fn complete_interrupted_operations(dir: &Path) -> Result<()> {
    let mut swaps = Vec::new();
    // Whether a file was removed or renamed: only then is the directory fsynced (an fsync
    // per partition would dominate the start-up of a broker with many).
    let mut changed = false;
    for entry in std::fs::read_dir(dir).map_err(LogError::io("list", dir))? {
        let entry = entry.map_err(LogError::io("list", dir))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(DELETED_SUFFIX)
            || name.ends_with(CLEANED_SUFFIX)
            || name.ends_with(".tmp")
        {
            tracing::info!(file = %path.display(), "removing file left by an interrupted operation");
            std::fs::remove_file(&path).map_err(LogError::io("remove", &path))?;
            changed = true;
        } else if name.ends_with(SWAP_SUFFIX) {
            swaps.push(path);
        }
    }
    let committed: Vec<PathBuf> = swaps
        .iter()
        .filter(|p| {
            p.to_str()
                .is_some_and(|s| s.ends_with(&format!("{LOG_SUFFIX}{SWAP_SUFFIX}")))
        })
        .cloned()
        .collect();
    for swap in &swaps {
        if committed.contains(swap) {
            continue;
        }
        let Some(name) = swap.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((base, _)) = files::parse_offset_file_name(name) else {
            continue;
        };
        let log_swap = append_suffix(&files::offset_file(dir, base, LOG_SUFFIX), SWAP_SUFFIX);
        if !committed.contains(&log_swap) {
            tracing::info!(file = %swap.display(), "removing uncommitted swap file");
            std::fs::remove_file(swap).map_err(LogError::io("remove", swap))?;
            changed = true;
        }
    }
    for log_swap in committed {
        let Some(name) = log_swap.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((base, _)) = files::parse_offset_file_name(name) else {
            continue;
        };
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let target = files::offset_file(dir, base, suffix);
            let swap = append_suffix(&target, SWAP_SUFFIX);
            if swap.exists() {
                std::fs::rename(&swap, &target).map_err(LogError::io("rename", &swap))?;
            } else if target.exists() {
                // Stale index of the replaced log: rebuilt on open.
                std::fs::remove_file(&target).map_err(LogError::io("remove", &target))?;
            }
        }
        let target = files::offset_file(dir, base, LOG_SUFFIX);
        tracing::info!(file = %target.display(), "completing an interrupted segment swap");
        std::fs::rename(&log_swap, &target).map_err(LogError::io("rename", &log_swap))?;
        changed = true;
    }
    if changed {
        files::sync_dir(dir)?;
    }
    Ok(())
}
