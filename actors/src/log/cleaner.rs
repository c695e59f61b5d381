//! Log compaction (`cleanup.policy=compact`): keep the latest record per key.
//!
//! One pass over a log, as Kafka's `LogCleaner` does it:
//! 1. The *cleanable range* ends at the first uncleanable offset: the active segment's
//!    base, the caller's upper bound (high watermark), or the first segment with records
//!    younger than `min.compaction.lag.ms`. Only whole segments below it are rewritten.
//! 2. An offset map (key → latest offset) is built over the *dirty* part — from the
//!    cleaner checkpoint (the first dirty offset) to the end of the range — bounded by
//!    `log.cleaner.dedupe.buffer.size`; keys are stored as 128-bit hashes.
//! 3. Every segment from the log start to the end of the range is rewritten, one to one:
//!    a record survives unless the map holds a later offset for its key. Tombstones (null
//!    value) survive their first pass with a delete horizon of `now + delete.retention.ms`
//!    stamped into the batch (KIP-534: attribute bit 6, the horizon in
//!    `base_timestamp`, record timestamp deltas rebased), and go in the first pass after
//!    the horizon. The last batch of every producer id is kept — empty if need be — so
//!    the producer's sequence state survives. Offsets never change; batches whose records
//!    all survive are copied byte for byte; compressed batches are decompressed and
//!    re-compressed with the same codec.
//!
//! Crash safety (the swap protocol, completed or undone by `Log::open`): the new segment
//! is written as `<base>.{log,index,timeindex}.cleaned` and fsync'd; renamed to `.swap`
//! (indexes first, the `.log` last — its `.log.swap` is the commit point); the old
//! segment is renamed `.deleted` and removed; the `.swap` files are renamed to their
//! final names (the `.log` last). A crash before the commit leaves `.cleaned` (or
//! uncommitted index `.swap`) files, which are discarded; after it, `.swap` files which
//! replace the originals.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::log::batch::{
    self, AppendOrigin, BatchHeader, BatchSpec, ValidationOptions, DELETE_HORIZON_BIT,
};
use crate::log::files::{self, CLEANED_SUFFIX, SWAP_SUFFIX};
use crate::log::segment::{Segment, SegmentConfig, Written, MAX_DECOMPRESSED_BATCH};
use crate::log::{Log, LogError, Result};

/// Bytes Kafka budgets per offset-map entry (16-byte hash + 8-byte offset).
const BYTES_PER_MAP_ENTRY: usize = 24;

/// Broker-wide cleaner settings (Kafka's `log.cleaner.*`).
#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`: off turns compaction off; retention by deletion goes on.
    pub enabled: bool,
    /// `log.cleaner.dedupe.buffer.size`: memory for the offset map of one pass.
    pub dedupe_buffer_size: usize,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enabled: true,
            dedupe_buffer_size: 128 * 1024 * 1024,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanerStats {
    pub segments_cleaned: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
}

/// The outcome of a pass: the new first dirty offset (store it in
/// `cleaner-offset-checkpoint`) and the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanResult {
    pub first_dirty_offset: i64,
    pub stats: CleanerStats,
}

/// Where cleaning may happen in a log, and how dirty it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanableRange {
    /// First offset not yet covered by a cleaning pass.
    pub first_dirty_offset: i64,
    /// Segments wholly below this offset may be rewritten.
    pub end_offset: i64,
    /// Dirty bytes / all bytes below `end_offset`.
    pub dirty_ratio: f64,
}

/// Computes the cleanable range of `log` given its cleaner checkpoint and the high
/// watermark; `None` if no whole segment is cleanable.
pub fn cleanable_range(
    log: &Log,
    first_dirty_offset: i64,
    upper_bound: i64,
    now_ms: i64,
) -> Option<CleanableRange> {
    let config = log.config();
    let first_dirty = first_dirty_offset.max(log.log_start_offset());
    let active_base = log.segments.keys().next_back().copied()?;
    let mut uncleanable = active_base.min(upper_bound);
    let lag = config.min_compaction_lag_ms;
    if lag > 0 {
        if let Some(young) = log.segments.values().find(|s| {
            s.base_offset() >= first_dirty && s.max_timestamp() > now_ms.saturating_sub(lag)
        }) {
            uncleanable = uncleanable.min(young.base_offset());
        }
    }
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    let mut end = None;
    let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
    for pair in bases.windows(2) {
        if pair[1] > uncleanable {
            break;
        }
        end = Some(pair[1]);
        let size = log.segments.get(&pair[0]).map_or(0, Segment::size);
        if pair[1] <= first_dirty {
            clean_bytes += size;
        } else {
            dirty_bytes += size;
        }
    }
    let end_offset = end?;
    let total = clean_bytes + dirty_bytes;
    Some(CleanableRange {
        first_dirty_offset: first_dirty,
        end_offset,
        dirty_ratio: if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        },
    })
}

/// Cleans `log` if its policy includes `compact`, the cleaner is enabled and the dirty
/// ratio reached `min.cleanable.dirty.ratio`. `None` when nothing was due.
pub fn maybe_clean(
    log: &mut Log,
    cleaner: &CleanerConfig,
    first_dirty_offset: i64,
    upper_bound: i64,
    now_ms: i64,
) -> Result<Option<CleanResult>> {
    if !cleaner.enabled || !log.config().cleanup_policy.compact {
        return Ok(None);
    }
    let Some(range) = cleanable_range(log, first_dirty_offset, upper_bound, now_ms) else {
        return Ok(None);
    };
    if range.dirty_ratio < log.config().min_cleanable_dirty_ratio
        || range.first_dirty_offset >= range.end_offset
    {
        return Ok(None);
    }
    clean(log, cleaner, first_dirty_offset, upper_bound, now_ms).map(Some)
}

/// One cleaning pass, regardless of the dirty ratio (still only under a `compact`
/// policy with the cleaner enabled; otherwise nothing happens and the checkpoint stays).
pub fn clean(
    log: &mut Log,
    cleaner: &CleanerConfig,
    first_dirty_offset: i64,
    upper_bound: i64,
    now_ms: i64,
) -> Result<CleanResult> {
    let unchanged = CleanResult {
        first_dirty_offset,
        stats: CleanerStats::default(),
    };
    if !cleaner.enabled || !log.config().cleanup_policy.compact {
        return Ok(unchanged);
    }
    let Some(range) = cleanable_range(log, first_dirty_offset, upper_bound, now_ms) else {
        return Ok(unchanged);
    };
    let capacity = (cleaner.dedupe_buffer_size / BYTES_PER_MAP_ENTRY).max(1);
    let (map, end_offset) =
        build_offset_map(log, range.first_dirty_offset, range.end_offset, capacity)?;
    let last_batch_of_producer = last_batches_of_producers(log)?;
    let ctx = FilterContext {
        map: &map,
        last_batch_of_producer: &last_batch_of_producer,
        now_ms,
        delete_retention_ms: log.config().delete_retention_ms,
    };
    let mut stats = CleanerStats::default();
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    for pair in bases.windows(2) {
        if pair[1] > end_offset {
            break;
        }
        clean_segment(log, pair[0], &ctx, &mut stats, now_ms)?;
    }
    tracing::info!(dir = %log.dir().display(), ?stats, end_offset, "cleaned log");
    Ok(CleanResult {
        first_dirty_offset: end_offset.max(first_dirty_offset),
        stats,
    })
}

type OffsetMap = HashMap<u128, i64>;

/// A 128-bit hash of a key: two SipHash passes with different prefixes. Kafka uses MD5;
/// either way a collision is astronomically unlikely.
fn key_hash(key: &[u8]) -> u128 {
    let mut a = DefaultHasher::new();
    0u8.hash(&mut a);
    key.hash(&mut a);
    let mut b = DefaultHasher::new();
    1u8.hash(&mut b);
    key.hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// Maps every key in the dirty range to its latest offset. Stops at a segment boundary
/// when the map is full (at least one segment is always taken); returns the map and the
/// offset the pass can clean up to.
fn build_offset_map(
    log: &Log,
    first_dirty: i64,
    end_offset: i64,
    capacity: usize,
) -> Result<(OffsetMap, i64)> {
    let mut map = OffsetMap::new();
    let bases: Vec<i64> = log.segments.keys().copied().collect();
    for pair in bases.windows(2) {
        let (base, next_base) = (pair[0], pair[1]);
        if next_base <= first_dirty {
            continue;
        }
        if next_base > end_offset {
            break;
        }
        let Some(segment) = log.segments.get(&base) else {
            break;
        };
        let mut added = OffsetMap::new();
        for_each_batch(segment, |h, bytes| {
            if h.is_control() || h.last_offset() < first_dirty {
                return Ok(());
            }
            let payload = batch::records_payload(bytes, h, MAX_DECOMPRESSED_BATCH)?;
            let mut records = batch::RecordIter::new(&payload, h.record_count);
            while let Some(r) = records.next_record()? {
                let offset = h.base_offset + r.offset_delta as i64;
                if let (Some(key), true) = (r.key, offset >= first_dirty) {
                    added.insert(key_hash(key), offset);
                }
            }
            Ok(())
        })?;
        let new_keys = added.keys().filter(|k| !map.contains_key(*k)).count();
        if !map.is_empty() && map.len() + new_keys > capacity {
            tracing::info!(dir = %log.dir().display(), stop = base, "offset map full; cleaning up to here this pass");
            return Ok((map, base));
        }
        map.extend(added);
    }
    Ok((map, end_offset))
}

/// The base offset of the last batch of every producer id in the log (headers only).
fn last_batches_of_producers(log: &Log) -> Result<HashMap<i64, i64>> {
    let mut last = HashMap::new();
    for segment in log.segments.values() {
        let mut position = 0;
        while let Some(h) = segment.read_header_at(position)? {
            if h.has_producer_id() {
                last.insert(h.producer_id, h.base_offset);
            }
            position += h.size() as u64;
        }
    }
    Ok(last)
}

/// Calls `f` with every batch of a segment, read whole.
fn for_each_batch(
    segment: &Segment,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut position = 0;
    while let Some(h) = segment.read_header_at(position)? {
        let bytes = segment.read_batch(position, &h)?;
        f(&h, &bytes)?;
        position += h.size() as u64;
    }
    Ok(())
}

struct FilterContext<'a> {
    map: &'a OffsetMap,
    last_batch_of_producer: &'a HashMap<i64, i64>,
    now_ms: i64,
    delete_retention_ms: i64,
}

enum Filtered {
    Keep,
    Rewrite(Vec<u8>),
    Drop,
}

/// Decides the fate of one batch's records.
fn filter_batch(
    bytes: &[u8],
    h: &BatchHeader,
    ctx: &FilterContext<'_>,
    stats: &mut CleanerStats,
) -> Result<Filtered> {
    if h.is_control() {
        return Ok(Filtered::Keep);
    }
    let payload = batch::records_payload(bytes, h, MAX_DECOMPRESSED_BATCH)?;
    let horizon = h.has_delete_horizon().then_some(h.base_timestamp);
    let mut records = batch::RecordIter::new(&payload, h.record_count);
    let mut kept = Vec::new();
    let mut kept_tombstone = false;
    while let Some(r) = records.next_record()? {
        stats.records_read += 1;
        let offset = h.base_offset + r.offset_delta as i64;
        let superseded = r
            .key
            .and_then(|k| ctx.map.get(&key_hash(k)))
            .is_some_and(|&latest| latest > offset);
        let tombstone = r.value.is_none();
        let expired_tombstone = tombstone && horizon.is_some_and(|t| t <= ctx.now_ms);
        if superseded || expired_tombstone {
            stats.records_removed += 1;
            if tombstone {
                stats.tombstones_removed += 1;
            }
            continue;
        }
        kept_tombstone |= tombstone;
        kept.push(r);
    }
    let new_horizon = horizon.is_none() && kept_tombstone;
    if kept.len() == h.record_count as usize && !new_horizon {
        return Ok(Filtered::Keep);
    }
    let mut spec = BatchSpec::of(h);
    if kept.is_empty() {
        if !(h.has_producer_id()
            && ctx.last_batch_of_producer.get(&h.producer_id) == Some(&h.base_offset))
        {
            return Ok(Filtered::Drop);
        }
        // The producer's last batch stays, empty, so its sequence state survives.
        spec.attributes &= !0x07;
        return Ok(Filtered::Rewrite(batch::build_batch(&spec, &[], 0)?));
    }
    let mut encoded = Vec::with_capacity(payload.len());
    if new_horizon {
        let horizon = ctx.now_ms.saturating_add(ctx.delete_retention_ms);
        spec.attributes |= DELETE_HORIZON_BIT;
        spec.base_timestamp = horizon;
        for r in &kept {
            let timestamp = h.base_timestamp + r.timestamp_delta;
            reencode_record(&mut encoded, r, timestamp - horizon);
        }
    } else {
        for r in &kept {
            encoded.extend_from_slice(r.encoded);
        }
    }
    Ok(Filtered::Rewrite(batch::build_batch(
        &spec,
        &encoded,
        kept.len() as i32,
    )?))
}

/// Writes `r` again with a new timestamp delta (everything else as it was).
fn reencode_record(out: &mut Vec<u8>, r: &batch::Record<'_>, timestamp_delta: i64) {
    let mut body = Vec::with_capacity(r.encoded.len() + 8);
    body.push(r.attributes as u8);
    batch::put_varlong(&mut body, timestamp_delta);
    batch::put_varint(&mut body, r.offset_delta);
    for field in [r.key, r.value] {
        match field {
            Some(b) => {
                batch::put_varint(&mut body, b.len() as i32);
                body.extend_from_slice(b);
            }
            None => batch::put_varint(&mut body, -1),
        }
    }
    body.extend_from_slice(r.headers);
    batch::put_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

/// Rewrites one segment through the swap protocol (module doc).
fn clean_segment(
    log: &mut Log,
    base: i64,
    ctx: &FilterContext<'_>,
    stats: &mut CleanerStats,
    now_ms: i64,
) -> Result<()> {
    let dir = log.dir().to_path_buf();
    let seg_config = SegmentConfig {
        index_interval_bytes: log.config().index_interval_bytes,
        segment_index_bytes: log.config().segment_index_bytes,
    };
    let Some(old) = log.segments.get(&base) else {
        return Ok(());
    };
    let mut out = Vec::new();
    let mut changed = false;
    for_each_batch(old, |h, bytes| {
        stats.bytes_read += bytes.len() as u64;
        match filter_batch(bytes, h, ctx, stats)? {
            Filtered::Keep => out.extend_from_slice(bytes),
            Filtered::Rewrite(b) => {
                out.extend_from_slice(&b);
                changed = true;
            }
            Filtered::Drop => changed = true,
        }
        Ok(())
    })?;
    if !changed {
        return Ok(());
    }
    let mut cleaned = Segment::create_with_suffix(&dir, base, seg_config, now_ms, CLEANED_SUFFIX)?;
    if !out.is_empty() {
        let opts = ValidationOptions {
            origin: AppendOrigin::Replication,
            max_batch_bytes: usize::MAX,
            require_keys: false,
            max_decompressed_bytes: MAX_DECOMPRESSED_BATCH,
        };
        let batches = batch::validate_batches(&out, &opts).map_err(|e| LogError::CorruptFile {
            path: old.log_path().to_path_buf(),
            reason: format!("cleaner produced an invalid batch: {e}"),
        })?;
        cleaned.append(&out, &batches, Written::AsIs)?;
    }
    cleaned.on_become_inactive()?;
    cleaned.flush()?;
    cleaned.set_suffix(SWAP_SUFFIX)?;
    files::sync_dir(&dir)?;
    if let Some(old) = log.segments.remove(&base) {
        old.delete()?;
    }
    cleaned.set_suffix("")?;
    files::sync_dir(&dir)?;
    stats.bytes_written += out.len() as u64;
    stats.segments_cleaned += 1;
    log.segments.insert(base, cleaned);
    Ok(())
}
