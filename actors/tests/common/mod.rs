//! Helpers shared by the log engine's integration tests: batch builders, a brute-force
//! reader of the `.log` files that knows nothing of the engine's indexes, and the
//! engine's answers to every offset and timestamp lookup, to compare against it.
//!
//! The brute-force reader parses the v2 batch format itself (it only borrows the engine's
//! decompression), so a bug in the engine's parsing or indexing cannot hide in both.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use sluice_actors::log::batch::{self, BatchSpec, NO_PRODUCER_ID};
use sluice_actors::log::compression::{self, Compression};
use sluice_actors::log::config::LogConfig;
use sluice_actors::log::files::{self, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use sluice_actors::log::log::{LogAppendInfo, LogOpenOptions};
use sluice_actors::log::{Log, LogError};

/// The clock the tests pass when time does not matter.
pub(crate) const NOW: i64 = 1_000_000;

/// A config with Kafka's defaults except the sizes a test cares about.
pub(crate) fn config(segment_bytes: u64, index_interval_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes,
        ..LogConfig::default()
    }
}

/// Opens `dir` as after a clean shutdown with nothing known from the data dir.
pub(crate) fn open(dir: &Path, config: &LogConfig) -> Log {
    open_with(
        dir,
        config,
        LogOpenOptions {
            clean_shutdown: true,
            now_ms: NOW,
            ..LogOpenOptions::default()
        },
    )
}

pub(crate) fn open_with(dir: &Path, config: &LogConfig, opts: LogOpenOptions) -> Log {
    Log::open(dir, config.clone(), opts).expect("open log")
}

/// Reopens after a crash: no clean-shutdown marker, recovery from `recovery_point`.
pub(crate) fn open_unclean(dir: &Path, config: &LogConfig, recovery_point: i64) -> Log {
    open_with(
        dir,
        config,
        LogOpenOptions {
            clean_shutdown: false,
            recovery_point,
            now_ms: NOW,
            ..LogOpenOptions::default()
        },
    )
}

/// An uncompressed producer batch of `records` records with timestamps `base_ts + i` and
/// values of `value_len` bytes.
pub(crate) fn batch(records: usize, base_ts: i64, value_len: usize) -> Vec<u8> {
    batch_with_codec(Compression::None, records, base_ts, value_len)
}

pub(crate) fn batch_with_codec(
    codec: Compression,
    records: usize,
    base_ts: i64,
    value_len: usize,
) -> Vec<u8> {
    let keys: Vec<Vec<u8>> = (0..records)
        .map(|i| format!("key-{i}").into_bytes())
        .collect();
    let value: Vec<u8> = (0..value_len).map(|i| (i % 251) as u8).collect();
    let pairs: Vec<_> = keys
        .iter()
        .map(|k| (Some(k.as_slice()), Some(value.as_slice())))
        .collect();
    batch::simple_batch(codec, base_ts, &pairs).unwrap()
}

/// A producer batch whose records carry exactly `timestamps` (in any order; the first is
/// the base timestamp, the largest the max timestamp).
pub(crate) fn batch_with_timestamps(timestamps: &[i64], value_len: usize) -> Vec<u8> {
    assert!(!timestamps.is_empty());
    let base = timestamps[0];
    let value: Vec<u8> = (0..value_len).map(|i| (i % 251) as u8).collect();
    let mut encoded = Vec::new();
    for (i, ts) in timestamps.iter().enumerate() {
        let key = format!("key-{i}");
        batch::encode_record(
            &mut encoded,
            i as i32,
            ts - base,
            Some(key.as_bytes()),
            Some(&value),
        );
    }
    let n = timestamps.len() as i32;
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: 0,
        last_offset_delta: n - 1,
        base_timestamp: base,
        max_timestamp: timestamps.iter().copied().max().unwrap(),
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
    };
    batch::build_batch(&spec, &encoded, n).unwrap()
}

/// A batch as a leader's log holds it, for a follower to copy: records at
/// `base_offset + offset_deltas[i]` (gaps allowed, as compaction leaves them), the batch
/// spanning up to `base_offset + last_offset_delta`, timestamps `base_ts + delta`.
pub(crate) fn follower_batch(
    base_offset: i64,
    leader_epoch: i32,
    offset_deltas: &[i32],
    last_offset_delta: i32,
    base_ts: i64,
) -> Vec<u8> {
    let mut encoded = Vec::new();
    for &d in offset_deltas {
        let key = format!("key-{d}");
        batch::encode_record(
            &mut encoded,
            d,
            i64::from(d),
            Some(key.as_bytes()),
            Some(b"v"),
        );
    }
    let spec = BatchSpec {
        base_offset,
        partition_leader_epoch: leader_epoch,
        attributes: 0,
        last_offset_delta,
        base_timestamp: base_ts,
        max_timestamp: base_ts + i64::from(offset_deltas.iter().copied().max().unwrap_or(0)),
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
    };
    batch::build_batch(&spec, &encoded, offset_deltas.len() as i32).unwrap()
}

/// `records` (batches back to back) as the log stores them after appending them at
/// `first_offset` with `leader_epoch`: each batch's base offset and leader epoch set, every
/// other byte as given. Computed here from the batch layout, independently of the log engine.
pub(crate) fn as_stored(records: &[u8], first_offset: i64, leader_epoch: i32) -> Vec<u8> {
    let mut out = records.to_vec();
    let (mut at, mut next) = (0usize, first_offset);
    while at + 27 <= out.len() {
        let len = i32::from_be_bytes(out[at + 8..at + 12].try_into().unwrap()) as usize;
        let delta = i32::from_be_bytes(out[at + 23..at + 27].try_into().unwrap()) as i64;
        out[at..at + 8].copy_from_slice(&next.to_be_bytes());
        out[at + 12..at + 16].copy_from_slice(&leader_epoch.to_be_bytes());
        next += delta + 1;
        at += 12 + len;
    }
    out
}

/// Appends one buffer as the leader, returning what the log says it did.
pub(crate) fn append(log: &mut Log, records: Vec<u8>, epoch: i32, now_ms: i64) -> LogAppendInfo {
    log.append_as_leader(&records, epoch, now_ms)
        .expect("append as leader")
}

// ---------------------------------------------------------------------------------------
// Brute force: the .log files as bytes.
// ---------------------------------------------------------------------------------------

/// One batch found by scanning a `.log` file from its first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskBatch {
    /// Base offset of the segment (file) holding it.
    pub(crate) segment: i64,
    pub(crate) position: u64,
    pub(crate) bytes: Vec<u8>,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) max_timestamp: i64,
    pub(crate) log_append_time: bool,
    /// (offset, timestamp) of every record, as a consumer would see them.
    pub(crate) records: Vec<(i64, i64)>,
}

fn be_i16(b: &[u8], p: usize) -> i16 {
    i16::from_be_bytes(b[p..p + 2].try_into().unwrap())
}
fn be_i32(b: &[u8], p: usize) -> i32 {
    i32::from_be_bytes(b[p..p + 4].try_into().unwrap())
}
fn be_i64(b: &[u8], p: usize) -> i64 {
    i64::from_be_bytes(b[p..p + 8].try_into().unwrap())
}

fn unsigned_varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = b[*pos];
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}
fn varint(b: &[u8], pos: &mut usize) -> i64 {
    let raw = unsigned_varint(b, pos);
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// Parses one whole batch (CRC checked) into a [`DiskBatch`].
pub(crate) fn parse_batch(segment: i64, position: u64, bytes: &[u8]) -> DiskBatch {
    assert_eq!(bytes[16], 2, "magic at position {position}");
    let crc = be_i32(bytes, 17) as u32;
    assert_eq!(
        batch::compute_crc(bytes),
        crc,
        "CRC of the batch at {position} in segment {segment}"
    );
    let base_offset = be_i64(bytes, 0);
    let attributes = be_i16(bytes, 21);
    let last_offset = base_offset + i64::from(be_i32(bytes, 23));
    let base_ts = be_i64(bytes, 27);
    let max_timestamp = be_i64(bytes, 35);
    let count = be_i32(bytes, 57);
    let log_append_time = attributes & 0x08 != 0;
    let codec = Compression::from_attributes(attributes).unwrap();
    let payload = compression::decompress(codec, &bytes[61..], 1 << 28).unwrap();
    let mut records = Vec::new();
    let mut pos = 0;
    for _ in 0..count {
        let len = varint(&payload, &mut pos) as usize;
        let end = pos + len;
        pos += 1; // attributes
        let ts_delta = varint(&payload, &mut pos);
        let offset_delta = varint(&payload, &mut pos);
        let ts = if log_append_time {
            max_timestamp
        } else {
            base_ts + ts_delta
        };
        records.push((base_offset + offset_delta, ts));
        pos = end;
    }
    assert_eq!(
        pos,
        payload.len(),
        "records framing of the batch at {position}"
    );
    DiskBatch {
        segment,
        position,
        bytes: bytes.to_vec(),
        base_offset,
        last_offset,
        leader_epoch: be_i32(bytes, 12),
        max_timestamp,
        log_append_time,
        records,
    }
}

/// Every batch of one `.log` file; fails the test on a torn or corrupt tail.
pub(crate) fn scan_log_file(path: &Path) -> Vec<DiskBatch> {
    let name = path.file_name().unwrap().to_str().unwrap();
    let (segment, _) = files::parse_offset_file_name(name).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        assert!(
            pos + 61 <= bytes.len(),
            "{}: {} stray bytes at the end",
            path.display(),
            bytes.len() - pos
        );
        let size = 12 + be_i32(&bytes, pos + 8) as usize;
        assert!(
            pos + size <= bytes.len(),
            "{}: batch at {pos} runs past the end",
            path.display()
        );
        out.push(parse_batch(segment, pos as u64, &bytes[pos..pos + size]));
        pos += size;
    }
    out
}

/// Base offsets of the segments on disk, from the `.log` file names, ascending.
pub(crate) fn segment_files(dir: &Path) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            match files::parse_offset_file_name(&name) {
                Some((base, LOG_SUFFIX)) => Some(base),
                _ => None,
            }
        })
        .collect();
    bases.sort_unstable();
    bases
}

pub(crate) fn log_path(dir: &Path, base: i64) -> PathBuf {
    files::offset_file(dir, base, LOG_SUFFIX)
}
pub(crate) fn index_path(dir: &Path, base: i64) -> PathBuf {
    files::offset_file(dir, base, INDEX_SUFFIX)
}
pub(crate) fn time_index_path(dir: &Path, base: i64) -> PathBuf {
    files::offset_file(dir, base, TIME_INDEX_SUFFIX)
}

/// Every batch of every segment in the directory, in offset order.
pub(crate) fn scan_dir(dir: &Path) -> Vec<DiskBatch> {
    let batches: Vec<DiskBatch> = segment_files(dir)
        .into_iter()
        .flat_map(|base| scan_log_file(&log_path(dir, base)))
        .collect();
    for pair in batches.windows(2) {
        assert!(
            pair[1].base_offset > pair[0].last_offset,
            "offsets go backwards: {} after {}",
            pair[1].base_offset,
            pair[0].last_offset
        );
    }
    batches
}

/// The batch a fetch from `offset` must start with: the first whose last offset is at
/// or above it.
pub(crate) fn brute_batch_for(batches: &[DiskBatch], offset: i64) -> Option<&DiskBatch> {
    batches.iter().find(|b| b.last_offset >= offset)
}

/// The earliest record in offset order, at or above `log_start`, whose timestamp is at
/// least `target`: (timestamp, offset).
pub(crate) fn brute_offset_for_timestamp(
    batches: &[DiskBatch],
    target: i64,
    log_start: i64,
) -> Option<(i64, i64)> {
    batches
        .iter()
        .flat_map(|b| b.records.iter())
        .find(|(offset, ts)| *offset >= log_start && *ts >= target)
        .map(|(offset, ts)| (*ts, *offset))
}

/// The largest record timestamp at or above `log_start`, at its earliest offset; `None`
/// if no record has a timestamp (`-1` means none).
pub(crate) fn brute_max_timestamp(batches: &[DiskBatch], log_start: i64) -> Option<(i64, i64)> {
    let max = batches
        .iter()
        .flat_map(|b| b.records.iter())
        .filter(|(offset, ts)| *offset >= log_start && *ts >= 0)
        .map(|(_, ts)| *ts)
        .max()?;
    brute_offset_for_timestamp(batches, max, log_start)
}

/// Timestamps worth asking about: every record's, its neighbours, and both ends. Only
/// non-negative ones: ListOffsets gives negative targets other meanings before they
/// reach the log.
pub(crate) fn interesting_timestamps(batches: &[DiskBatch]) -> Vec<i64> {
    let mut out: Vec<i64> = batches
        .iter()
        .flat_map(|b| b.records.iter())
        .flat_map(|(_, ts)| [ts - 1, *ts, ts + 1])
        .filter(|ts| *ts >= 0)
        .collect();
    out.extend([0, i64::MAX]);
    out.sort_unstable();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------
// The engine's answers.
// ---------------------------------------------------------------------------------------

/// Everything a client can ask a log, to compare a log with itself before and after a
/// fault, or with the brute force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answers {
    pub(crate) log_start_offset: i64,
    pub(crate) log_end_offset: i64,
    /// For every offset from the log start to the log end: the first batch offset and
    /// the bytes of `read(offset, 1, None, true)`.
    pub(crate) reads: Vec<(i64, Option<i64>, Vec<u8>)>,
    /// `offset_for_timestamp` for each asked timestamp: (timestamp, offset).
    pub(crate) by_time: Vec<(i64, Option<(i64, i64)>)>,
    pub(crate) max_timestamp: Option<(i64, i64)>,
}

/// `read(offset, 1, None, true)`: the first batch offset and the bytes.
pub(crate) fn read_one(log: &Log, offset: i64) -> (Option<i64>, Vec<u8>) {
    let info = log.read(offset, 1, None, true).expect("read");
    let bytes = info
        .slice
        .map(|s| s.read_to_vec().expect("read slice"))
        .unwrap_or_default();
    (info.first_batch_offset, bytes)
}

pub(crate) fn answers(log: &Log, timestamps: &[i64]) -> Answers {
    let reads = (log.log_start_offset()..log.log_end_offset())
        .map(|o| {
            let (first, bytes) = read_one(log, o);
            (o, first, bytes)
        })
        .collect();
    let by_time = timestamps
        .iter()
        .map(|&t| {
            let found = log.offset_for_timestamp(t).expect("offset_for_timestamp");
            (t, found.map(|f| (f.timestamp, f.offset)))
        })
        .collect();
    let max_timestamp = log
        .max_timestamp_and_offset()
        .expect("max_timestamp_and_offset")
        .map(|f| (f.timestamp, f.offset));
    Answers {
        log_start_offset: log.log_start_offset(),
        log_end_offset: log.log_end_offset(),
        reads,
        by_time,
        max_timestamp,
    }
}

/// What a correct log over exactly the batches on disk answers.
pub(crate) fn brute_answers(
    batches: &[DiskBatch],
    log_start: i64,
    log_end: i64,
    timestamps: &[i64],
) -> Answers {
    let reads = (log_start..log_end)
        .map(|o| match brute_batch_for(batches, o) {
            Some(b) => (o, Some(b.base_offset), b.bytes.clone()),
            None => (o, None, Vec::new()),
        })
        .collect();
    let by_time = timestamps
        .iter()
        .map(|&t| (t, brute_offset_for_timestamp(batches, t, log_start)))
        .collect();
    Answers {
        log_start_offset: log_start,
        log_end_offset: log_end,
        reads,
        by_time,
        max_timestamp: brute_max_timestamp(batches, log_start),
    }
}

/// Asserts that the log answers every offset and timestamp lookup exactly as a brute-force
/// scan of its `.log` files does, and that its log end offset follows the last batch.
/// Returns the batches found.
pub(crate) fn assert_matches_disk(log: &Log) -> Vec<DiskBatch> {
    let batches = scan_dir(log.dir());
    if let Some(last) = batches.last() {
        assert_eq!(log.log_end_offset(), last.last_offset + 1, "log end offset");
    }
    let timestamps = interesting_timestamps(&batches);
    let expected = brute_answers(
        &batches,
        log.log_start_offset(),
        log.log_end_offset(),
        &timestamps,
    );
    let actual = answers(log, &timestamps);
    assert_answers_eq(&actual, &expected);
    batches
}

/// Compares answers field by field, so that a failure names the first wrong lookup
/// instead of printing two huge structs.
pub(crate) fn assert_answers_eq(actual: &Answers, expected: &Answers) {
    assert_eq!(
        actual.log_start_offset, expected.log_start_offset,
        "log start offset"
    );
    assert_eq!(
        actual.log_end_offset, expected.log_end_offset,
        "log end offset"
    );
    assert_eq!(
        actual.reads.len(),
        expected.reads.len(),
        "number of readable offsets"
    );
    for (a, e) in actual.reads.iter().zip(&expected.reads) {
        assert_eq!(a.0, e.0);
        assert_eq!(a.1, e.1, "first batch offset of a read from {}", a.0);
        assert!(a.2 == e.2, "bytes of a read from {}", a.0);
    }
    for (a, e) in actual.by_time.iter().zip(&expected.by_time) {
        assert_eq!(a, e, "offset_for_timestamp({})", e.0);
    }
    assert_eq!(actual.by_time.len(), expected.by_time.len());
    assert_eq!(
        actual.max_timestamp, expected.max_timestamp,
        "max timestamp and offset"
    );
}

/// Asserts `result` failed with `OffsetOutOfRange` for `offset`.
pub(crate) fn assert_out_of_range<T: std::fmt::Debug>(result: Result<T, LogError>, offset: i64) {
    match result {
        Err(LogError::OffsetOutOfRange { offset: o, .. }) => assert_eq!(o, offset),
        other => panic!("expected OffsetOutOfRange for {offset}, got {other:?}"),
    }
}

/// Size of a file in bytes.
pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Leading well-formed entries of an offset index file, stopping at the preallocated
/// zero tail (a real entry never points at position 0: the first batch gets none).
pub(crate) fn offset_index_entries(path: &Path) -> Vec<(i32, i32)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out: Vec<(i32, i32)> = Vec::new();
    for e in bytes.chunks_exact(8) {
        let (rel, pos) = (be_i32(e, 0), be_i32(e, 4));
        if pos == 0 || out.last().is_some_and(|&(r, p)| rel <= r || pos <= p) {
            break;
        }
        out.push((rel, pos));
    }
    out
}

/// Leading well-formed entries of a time index file: (timestamp, relative offset),
/// stopping at the preallocated zero tail (the tests never use timestamp 0).
pub(crate) fn time_index_entries(path: &Path) -> Vec<(i64, i32)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out: Vec<(i64, i32)> = Vec::new();
    for e in bytes.chunks_exact(12) {
        let (ts, rel) = (be_i64(e, 0), be_i32(e, 8));
        if (ts, rel) == (0, 0) || out.last().is_some_and(|&(t, r)| ts <= t || rel < r) {
            break;
        }
        out.push((ts, rel));
    }
    out
}
