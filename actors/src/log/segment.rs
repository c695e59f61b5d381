//! One segment of a partition log: `<base>.log` with its `.index` and `.timeindex`.
//!
//! The `.log` file is a plain concatenation of v2 record batches with their offsets
//! assigned, byte for byte what consumers receive. Index entries are added every
//! `index.interval.bytes` of log: the offset index maps the last offset of a batch to the
//! position where the batch starts; the time index records the max timestamp seen so far
//! and the last offset of the batch that carried it.
//!
//! Crash behaviour: a segment may end in a torn batch and its indexes may be stale,
//! missing or carry a zero tail; [`Segment::recover`] rescans the log from its start,
//! verifies each batch (magic, length, CRC-32C, offsets increasing), truncates at the first
//! bad byte and rebuilds both indexes. Not thread-safe; owned by the partition's `Log`.
//! Reads hand out [`FileSlice`]s that keep the file open, so a segment deleted while a
//! slice is being sent is still read whole.
//!
//! File handles and maps: the active segment keeps its `.log` open; a segment that stops
//! being active closes it and unmaps its indexes ([`Segment::on_become_inactive`]), opens
//! and maps them again at its next read, and keeps them until [`Segment::close_files`].
//! The indexes hold no descriptor at all, and no map before their first entry (see
//! [`crate::log::index`]). So an idle partition holds one descriptor and no map, however
//! many segments it has.

use std::cell::OnceCell;
use std::fs::{File, OpenOptions};
use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::log::batch::{self, BatchHeader, ValidBatch, BATCH_HEADER_SIZE, MAGIC_V2};
use crate::log::files::{self, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::log::index::{IndexLoad, OffsetIndex, TimeIndex, TimestampOffset};
use crate::log::{LogError, Result};

/// Upper bound on one stored batch's decompressed size when the log itself reads records
/// (timestamp lookups, compaction): far above any sane batch, small enough to allocate.
pub const MAX_DECOMPRESSED_BATCH: usize = 256 << 20;

/// A byte range of a segment file, with the file kept open: what a fetch sends with
/// `sendfile`.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: u64,
}

impl FileSlice {
    /// Copies the bytes out (tests and non-sendfile paths).
    pub fn read_to_vec(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len as usize];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }
}

/// Index-related settings a segment needs (from the topic's `LogConfig`).
#[derive(Debug, Clone, Copy)]
pub struct SegmentConfig {
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: preallocated size of each index while active.
    pub segment_index_bytes: u32,
}

/// What recovering a segment found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryResult {
    /// Bytes cut from the end (a torn or corrupt tail).
    pub truncated_bytes: u64,
    /// Valid batches found.
    pub batches: u64,
}

/// One segment. See the module documentation for the format.
#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    /// The `.log` file, opened on demand; see the module doc on file handles.
    log: OnceCell<Arc<File>>,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    config: SegmentConfig,
    bytes_since_last_index_entry: u64,
    /// Max timestamp of the batches in this segment so far, and the last offset of the
    /// batch carrying it (`-1` when unknown or empty).
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: `segment.ms` counts from it when it is known.
    rolling_based_timestamp: Option<i64>,
    /// Wall clock when this segment was created or loaded.
    created_ms: i64,
}

impl Segment {
    /// Creates an empty segment (files are created; indexes preallocated).
    pub fn create(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        now_ms: i64,
    ) -> Result<Segment> {
        Segment::create_with_suffix(dir, base_offset, config, now_ms, "")
    }

    /// Creates an empty segment whose three files carry `suffix` after their usual names
    /// (the cleaner writes `.cleaned` segments, then renames them with
    /// [`Segment::set_suffix`]).
    pub fn create_with_suffix(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        now_ms: i64,
        suffix: &str,
    ) -> Result<Segment> {
        let named = |ext: &str| append_suffix(&files::offset_file(dir, base_offset, ext), suffix);
        let log_path = named(LOG_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(LogError::io("create", &log_path))?;
        // The indexes stay empty on disk until their first entry (see `index`).
        let (mut offset_index, _) = OffsetIndex::open(&named(INDEX_SUFFIX), base_offset)?;
        let (mut time_index, _) = TimeIndex::open(&named(TIME_INDEX_SUFFIX), base_offset)?;
        offset_index.reset()?;
        time_index.reset()?;
        offset_index.resize(config.segment_index_bytes as usize)?;
        time_index.resize(config.segment_index_bytes as usize)?;
        Ok(Segment {
            base_offset,
            log_path,
            log: OnceCell::from(Arc::new(log)),
            size: 0,
            offset_index,
            time_index,
            config,
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            rolling_based_timestamp: None,
            created_ms: now_ms,
        })
    }

    /// Opens an existing segment. Returns whether its indexes need a rebuild (missing,
    /// corrupt, or failing the sanity check).
    pub fn open(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        now_ms: i64,
    ) -> Result<(Segment, bool)> {
        let log_path = files::offset_file(dir, base_offset, LOG_SUFFIX);
        let log = open_log_file(&log_path)?;
        let size = log
            .metadata()
            .map_err(LogError::io("stat", &log_path))?
            .len();
        let index_path = files::offset_file(dir, base_offset, INDEX_SUFFIX);
        let time_path = files::offset_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let indexes_existed = index_path.exists() && time_path.exists();
        let (offset_index, load_o) = OffsetIndex::open(&index_path, base_offset)?;
        let (time_index, load_t) = TimeIndex::open(&time_path, base_offset)?;
        let mut segment = Segment {
            base_offset,
            log_path,
            log: OnceCell::from(Arc::new(log)),
            size,
            offset_index,
            time_index,
            config,
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            rolling_based_timestamp: None,
            created_ms: now_ms,
        };
        if let Some(last) = segment.time_index.last_entry() {
            segment.max_timestamp = last.timestamp;
            segment.offset_of_max_timestamp = last.offset;
        }
        let mut rebuild = !indexes_existed && size > 0;
        for load in [load_o, load_t] {
            if let IndexLoad::Corrupt(reason) = load {
                tracing::warn!(segment = %segment.log_path.display(), %reason, "corrupt index, rebuilding");
                rebuild = true;
            }
        }
        if !rebuild {
            if let Err(reason) = segment.sanity_check() {
                tracing::warn!(segment = %segment.log_path.display(), %reason, "index fails its sanity check, rebuilding");
                rebuild = true;
            }
        }
        if !rebuild {
            segment.rolling_based_timestamp = segment.read_header_at(0)?.map(|h| h.max_timestamp);
        }
        Ok((segment, rebuild))
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// Bytes in the `.log` file.
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    /// Max timestamp of the segment's batches, `-1` if unknown or empty.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// Max timestamp and the last offset of the batch that carried it.
    pub fn max_timestamp_and_offset(&self) -> TimestampOffset {
        TimestampOffset {
            timestamp: self.max_timestamp,
            offset: self.offset_of_max_timestamp,
        }
    }
    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The `.log` file, opened if it was closed.
    fn file(&self) -> Result<&Arc<File>> {
        if let Some(file) = self.log.get() {
            return Ok(file);
        }
        let file = Arc::new(open_log_file(&self.log_path)?);
        Ok(self.log.get_or_init(|| file))
    }

    /// Whether the `.log` file is open now.
    pub fn has_open_file(&self) -> bool {
        self.log.get().is_some()
    }

    /// Closes the `.log` file and unmaps the indexes until the next read needs them (a
    /// fetch in progress keeps its own handle in its [`FileSlice`]). For segments that are
    /// not active.
    pub fn close_files(&mut self) -> Result<()> {
        self.log.take();
        self.offset_index.unmap()?;
        self.time_index.unmap()
    }

    /// Whether the offset index and the time index are mapped now (not before their first
    /// entry, nor after [`Segment::close_files`] until the next lookup).
    pub fn indexes_mapped(&self) -> (bool, bool) {
        (self.offset_index.is_mapped(), self.time_index.is_mapped())
    }
    /// Whether either index has no room left (the log rolls before appending).
    pub fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Whether `offset` can be stored as a relative offset (int32) in this segment's
    /// indexes.
    pub fn can_hold_offset(&self, offset: i64) -> bool {
        let rel = offset - self.base_offset;
        (0..=i32::MAX as i64).contains(&rel)
    }

    /// How long this segment has been collecting, for `segment.ms`: measured with record
    /// timestamps when the first batch has one (so a replica rolls where its leader did),
    /// otherwise with the wall clock since creation.
    pub fn time_waited_for_roll(&self, now_ms: i64, incoming_max_timestamp: i64) -> i64 {
        match self.rolling_based_timestamp {
            Some(t) if t >= 0 => incoming_max_timestamp - t,
            _ => now_ms - self.created_ms,
        }
    }

    /// Appends validated batches (offsets already assigned) found in `buf`, then adds
    /// index entries every `index.interval.bytes`. The bytes are written as they are.
    pub fn append(&mut self, buf: &[u8], batches: &[ValidBatch], written: Written) -> Result<()> {
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Ok(());
        };
        let bytes = &buf[first.position..last.position + last.size()];
        if self.size + bytes.len() as u64 > i32::MAX as u64 {
            return Err(LogError::InvalidRecord(format!(
                "segment {} would exceed 2 GiB",
                self.log_path.display()
            )));
        }
        // Room in the indexes first: a full disk then refuses the append before any byte
        // of it is written, and the index stores below can no longer fail. Only if this
        // append can add an entry at all (see `track_batch`): an index without entries
        // stays empty and unmapped.
        if self.bytes_since_last_index_entry + bytes.len() as u64
            > self.config.index_interval_bytes as u64
        {
            self.offset_index.reserve(batches.len())?;
            self.time_index.reserve(batches.len() + 1)?;
        }
        let log = self.file()?;
        let outcome = match written {
            Written::AsIs => log.write_all_at(bytes, self.size),
            Written::Patched => write_patched_at(log, buf, batches, self.size),
        };
        if let Err(e) = outcome {
            // A full disk (ENOSPC) or a failing one: part of the batches may be in the file.
            // Cut it off so nothing half-written is ever read, recovered or appended after;
            // the append is refused and later ones start at the same position.
            if let Err(cut) = log.set_len(self.size) {
                tracing::error!(path = %self.log_path.display(), error = %cut, "cannot cut a failed append off the segment");
            }
            return Err(LogError::io("write", &self.log_path)(e));
        }
        let mut position = self.size;
        for b in batches {
            self.track_batch(&b.header, position)?;
            position += b.size() as u64;
        }
        self.size = position;
        Ok(())
    }

    /// Index and timestamp bookkeeping for one batch written at `position`.
    fn track_batch(&mut self, h: &BatchHeader, position: u64) -> Result<()> {
        if self.rolling_based_timestamp.is_none() {
            self.rolling_based_timestamp = Some(h.max_timestamp);
        }
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        if self.bytes_since_last_index_entry > self.config.index_interval_bytes as u64 {
            // One append (or a recovery scan) may carry more batches than the index has
            // room for: the log rolls before the next append, and a missing sparse entry
            // only lengthens a scan, whereas failing here would leave the batches written
            // but not counted.
            if !self.offset_index.is_full() {
                self.offset_index.append(h.last_offset(), position as u32)?;
            }
            if self.max_timestamp >= 0 {
                self.time_index.maybe_append(
                    self.max_timestamp,
                    self.offset_of_max_timestamp,
                    false,
                )?;
            }
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += h.size() as u64;
        Ok(())
    }

    /// Reads the batch header at `position`; `None` at the end of the file or if fewer
    /// than a header's bytes remain (a torn tail).
    pub fn read_header_at(&self, position: u64) -> Result<Option<BatchHeader>> {
        if position + BATCH_HEADER_SIZE as u64 > self.size {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_SIZE];
        self.file()?
            .read_exact_at(&mut buf, position)
            .map_err(LogError::io("read", &self.log_path))?;
        BatchHeader::parse(&buf).map(Some)
    }

    /// The first batch whose last offset is >= `offset`, searching from the index entry
    /// at or below it; with its position.
    pub fn translate_offset(&self, offset: i64) -> Result<Option<(BatchHeader, u64)>> {
        let mut position = self.offset_index.lookup(offset).position as u64;
        while let Some(h) = self.read_header_at(position)? {
            if h.last_offset() >= offset {
                return Ok(Some((h, position)));
            }
            position += h.size() as u64;
        }
        Ok(None)
    }

    /// The bytes to serve for a fetch from `start_offset`: whole batches from the one
    /// holding it, at most `max_size` bytes (the first batch whole even if larger, when
    /// `min_one_batch`), never past `max_position`. `None` if nothing here is at or after
    /// `start_offset`. Like Kafka, the slice may end inside a batch; clients drop a
    /// partial trailing batch.
    pub fn read(
        &self,
        start_offset: i64,
        max_size: u64,
        max_position: u64,
        min_one_batch: bool,
    ) -> Result<Option<(FileSlice, i64)>> {
        let Some((first, position)) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        let max_size = if min_one_batch {
            max_size.max(first.size() as u64)
        } else {
            max_size
        };
        let len = max_size.min(max_position.saturating_sub(position));
        Ok(Some((
            FileSlice {
                file: Arc::clone(self.file()?),
                position,
                len,
            },
            first.base_offset,
        )))
    }

    /// Reads a whole batch at `position` (header already known).
    pub fn read_batch(&self, position: u64, h: &BatchHeader) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; h.size()];
        self.file()?
            .read_exact_at(&mut buf, position)
            .map_err(LogError::io("read", &self.log_path))?;
        Ok(buf)
    }

    /// Offset after the last batch, or the base offset if the segment is empty. Scans
    /// from the last index entry.
    pub fn next_offset(&self) -> Result<i64> {
        let mut position = self.offset_index.last_entry().position as u64;
        let mut next = self.base_offset;
        while let Some(h) = self.read_header_at(position)? {
            next = h.next_offset();
            position += h.size() as u64;
        }
        Ok(next)
    }

    /// The earliest record at or after `start_offset` with timestamp >= `timestamp`:
    /// time index, then offset index, then a scan of batch headers; only the batch that
    /// holds the answer has its records read.
    pub fn find_offset_by_timestamp(
        &self,
        timestamp: i64,
        start_offset: i64,
    ) -> Result<Option<TimestampOffset>> {
        let from = self.time_index.lookup(timestamp).offset.max(start_offset);
        let mut position = self.offset_index.lookup(from).position as u64;
        while let Some(h) = self.read_header_at(position)? {
            if h.max_timestamp >= timestamp && h.last_offset() >= start_offset {
                let bytes = self.read_batch(position, &h)?;
                if let Some(found) = first_record_at_or_after(&bytes, &h, timestamp, start_offset)?
                {
                    return Ok(Some(found));
                }
            }
            position += h.size() as u64;
        }
        Ok(None)
    }

    /// Rescans the whole log: verifies every batch, truncates at the first bad byte and
    /// rebuilds both indexes and the timestamp bookkeeping. `on_batch` sees every valid
    /// batch header (the log rebuilds its leader-epoch cache with it).
    pub fn recover(
        &mut self,
        mut on_batch: impl FnMut(&BatchHeader) -> Result<()>,
    ) -> Result<RecoveryResult> {
        self.offset_index.reset()?;
        self.time_index.reset()?;
        self.offset_index
            .resize(self.config.segment_index_bytes as usize)?;
        self.time_index
            .resize(self.config.segment_index_bytes as usize)?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.rolling_based_timestamp = None;
        let mut position = 0u64;
        let mut batches = 0;
        let mut last_offset = self.base_offset - 1;
        let mut buf = Vec::new();
        loop {
            let h = match self.read_header_at(position) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(LogError::CorruptBatch(reason)) => {
                    tracing::warn!(segment = %self.log_path.display(), position, %reason, "corrupt batch header");
                    break;
                }
                Err(e) => return Err(e),
            };
            if let Err(reason) = self.check_stored_batch(&h, position, last_offset, &mut buf) {
                tracing::warn!(segment = %self.log_path.display(), position, %reason, "invalid batch, truncating here");
                break;
            }
            on_batch(&h)?;
            self.track_batch(&h, position)?;
            last_offset = h.last_offset();
            position += h.size() as u64;
            batches += 1;
        }
        let truncated_bytes = self.size - position;
        if truncated_bytes > 0 {
            self.truncate_file(position)?;
        }
        Ok(RecoveryResult {
            truncated_bytes,
            batches,
        })
    }

    /// Magic, length in bounds, CRC, offsets above the previous batch's.
    fn check_stored_batch(
        &self,
        h: &BatchHeader,
        position: u64,
        prev_last_offset: i64,
        buf: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        if h.magic != MAGIC_V2 {
            return Err(format!("magic {}", h.magic));
        }
        if position + h.size() as u64 > self.size {
            return Err(format!(
                "batch of {} bytes runs past the end of the file",
                h.size()
            ));
        }
        if h.base_offset <= prev_last_offset
            || !self.can_hold_offset(h.last_offset())
            || h.last_offset_delta < 0
        {
            return Err(format!(
                "offset {} does not follow {prev_last_offset}",
                h.base_offset
            ));
        }
        buf.resize(h.size(), 0);
        self.file()
            .map_err(|e| e.to_string())?
            .read_exact_at(buf, position)
            .map_err(|e| format!("read: {e}"))?;
        if batch::compute_crc(buf) != h.crc {
            return Err("CRC mismatch".into());
        }
        Ok(())
    }

    /// Cheap checks of the indexes against the log, as Kafka does on a clean start:
    /// the last entry of each index must point at a real batch that matches it.
    pub fn sanity_check(&self) -> std::result::Result<(), String> {
        if self.offset_index.entries() > 0 {
            let last = self.offset_index.last_entry();
            match self.read_header_at(last.position as u64) {
                Ok(Some(h)) if h.last_offset() == last.offset => {}
                _ => {
                    return Err(format!(
                        "offset index entry {} -> {} matches no batch",
                        last.offset, last.position
                    ))
                }
            }
        }
        let (mut position, max_timestamp) = match self.time_index.last_entry() {
            Some(last) => match self.translate_offset(last.offset) {
                Ok(Some((h, position)))
                    if h.max_timestamp == last.timestamp && h.last_offset() == last.offset =>
                {
                    (position, last.timestamp)
                }
                _ => {
                    return Err(format!(
                        "time index entry {} -> {} matches no batch",
                        last.timestamp, last.offset
                    ))
                }
            },
            None => (0, -1),
        };
        // The last entry carries the segment's max timestamp (written at roll or close at
        // the latest): a later batch with a larger one means trailing entries were lost —
        // a file cut to fewer entries looks well-formed — and the segment's max
        // timestamp, which lookups and retention trust, would be wrong. Usually only the
        // last batch or two follow the entry.
        loop {
            match self.read_header_at(position) {
                Ok(Some(h)) if h.max_timestamp > max_timestamp => {
                    return Err(format!(
                        "batch at {position} has timestamp {} above the time index's last \
                         entry {max_timestamp}",
                        h.max_timestamp
                    ))
                }
                Ok(Some(h)) => position += h.size() as u64,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("reading the batch at {position}: {e}")),
            }
        }
    }

    /// Cuts the log at the batch holding `offset` (and everything after), with the index
    /// entries for it. Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let Some((_, position)) = self.translate_offset(offset)? else {
            return Ok(0);
        };
        self.offset_index.truncate_to(offset)?;
        self.time_index.truncate_to(offset)?;
        let removed = self.size - position;
        self.truncate_file(position)?;
        self.bytes_since_last_index_entry =
            position - self.offset_index.last_entry().position as u64;
        // The time index is sparse: start from its last surviving entry, then catch up
        // with the batches between it and the cut that it did not cover.
        let mut p = match self.time_index.last_entry() {
            Some(last) => {
                self.max_timestamp = last.timestamp;
                self.offset_of_max_timestamp = last.offset;
                self.offset_index.lookup(last.offset).position as u64
            }
            None => {
                self.max_timestamp = -1;
                self.offset_of_max_timestamp = -1;
                0
            }
        };
        while let Some(h) = self.read_header_at(p)? {
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.last_offset();
            }
            p += h.size() as u64;
        }
        if position == 0 {
            self.rolling_based_timestamp = None;
        }
        Ok(removed)
    }

    fn truncate_file(&mut self, size: u64) -> Result<()> {
        self.file()?
            .set_len(size)
            .map_err(LogError::io("truncate", &self.log_path))?;
        self.size = size;
        Ok(())
    }

    /// The segment stops being active: write the final time index entry (so its max
    /// timestamp survives), trim both indexes to their entries, and close the `.log` file
    /// and unmap the indexes until a read needs them.
    pub fn on_become_inactive(&mut self) -> Result<()> {
        // Trimmed first: the final entry then grows the time index by one entry, rather
        // than growing a still empty file to `segment.index.bytes` for one entry.
        self.offset_index.trim()?;
        self.time_index.trim()?;
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true)?;
        }
        self.close_files()
    }

    /// Makes this segment the active one again (after truncation removed later
    /// segments): indexes regain their preallocated room.
    pub fn on_become_active(&mut self) -> Result<()> {
        self.offset_index
            .resize(self.config.segment_index_bytes as usize)?;
        self.time_index
            .resize(self.config.segment_index_bytes as usize)
    }

    /// fsync the log, msync the indexes. A closed `.log` is fsynced through a handle
    /// opened for it and closed again (fsync writes back the file's pages whichever
    /// descriptor asks).
    pub fn flush(&self) -> Result<()> {
        let synced = match self.log.get() {
            Some(file) => file.sync_data(),
            None => open_log_file(&self.log_path)?.sync_data(),
        };
        synced.map_err(LogError::io("fsync", &self.log_path))?;
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// Renames all three files with `suffix` appended (e.g. `.deleted`).
    /// Renames the three files to their canonical names plus `suffix` (`""` for the
    /// canonical names). The `.log` goes last: its rename is the commit point of the
    /// cleaner's swap.
    pub fn set_suffix(&mut self, suffix: &str) -> Result<()> {
        let dir = self
            .log_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let base = self.base_offset;
        let named = |ext: &str| append_suffix(&files::offset_file(&dir, base, ext), suffix);
        self.offset_index.rename(&named(INDEX_SUFFIX))?;
        self.time_index.rename(&named(TIME_INDEX_SUFFIX))?;
        let to = named(LOG_SUFFIX);
        std::fs::rename(&self.log_path, &to).map_err(LogError::io("rename", &self.log_path))?;
        self.log_path = to;
        Ok(())
    }

    pub fn rename_with_suffix(&mut self, suffix: &str) -> Result<()> {
        let to = append_suffix(&self.log_path, suffix);
        std::fs::rename(&self.log_path, &to).map_err(LogError::io("rename", &self.log_path))?;
        self.log_path = to;
        let to = append_suffix(self.offset_index.path(), suffix);
        self.offset_index.rename(&to)?;
        let to = append_suffix(self.time_index.path(), suffix);
        self.time_index.rename(&to)
    }

    /// Deletes the segment crash-safely: rename to `.deleted` (a crash after this leaves
    /// files that start-up removes), then remove.
    pub fn delete(mut self) -> Result<()> {
        self.rename_with_suffix(files::DELETED_SUFFIX)?;
        for path in [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("remove", &path)(e)),
            }
        }
        Ok(())
    }
}

/// Opens an existing `.log` file for reading and appending.
fn open_log_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(LogError::io("open", path))
}

/// `path` with `suffix` appended to its file name.
pub fn append_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// How [`Segment::append`] writes validated batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The bytes as they are.
    AsIs,
    /// Each batch with its first [`batch::PATCHED_PREFIX`] bytes (base offset, length, leader
    /// epoch) taken from its parsed header: offsets assigned without rewriting the buffer.
    Patched,
}

/// The most iovecs one `pwritev` takes (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Writes `batches` (contiguous in `buf`) at `offset`, each as its patched prefix followed by
/// the rest of its bytes, with `pwritev`: one system call for a request's batches, no copy.
fn write_patched_at(
    file: &File,
    buf: &[u8],
    batches: &[ValidBatch],
    mut offset: u64,
) -> std::io::Result<()> {
    let prefixes: Vec<[u8; batch::PATCHED_PREFIX]> = batches
        .iter()
        .map(|b| batch::patched_prefix(&b.header))
        .collect();
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(batches.len() * 2);
    for (b, prefix) in batches.iter().zip(&prefixes) {
        let rest = buf
            .get(b.position + batch::PATCHED_PREFIX..b.position + b.size())
            .ok_or_else(|| std::io::Error::other("a validated batch lies outside its buffer"))?;
        slices.push(IoSlice::new(prefix));
        slices.push(IoSlice::new(rest));
    }
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = rest.len().min(IOV_MAX);
        let at = i64::try_from(offset).map_err(std::io::Error::other)?;
        let wrote = match nix::sys::uio::pwritev(file, &rest[..n], at) {
            Ok(wrote) => wrote,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if wrote == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        offset += wrote as u64;
        IoSlice::advance_slices(&mut rest, wrote);
    }
    Ok(())
}

/// Within one batch, the first record with timestamp >= `timestamp` and offset >=
/// `start_offset`. `LogAppendTime` batches give every record the batch's max timestamp.
fn first_record_at_or_after(
    bytes: &[u8],
    h: &BatchHeader,
    timestamp: i64,
    start_offset: i64,
) -> Result<Option<TimestampOffset>> {
    let payload = batch::records_payload(bytes, h, MAX_DECOMPRESSED_BATCH.max(bytes.len()))?;
    let mut records = batch::RecordIter::new(&payload, h.record_count);
    while let Some(r) = records.next_record()? {
        let offset = h.base_offset + r.offset_delta as i64;
        let ts = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp + r.timestamp_delta
        };
        if ts >= timestamp && offset >= start_offset {
            return Ok(Some(TimestampOffset {
                timestamp: ts,
                offset,
            }));
        }
    }
    Ok(None)
}
