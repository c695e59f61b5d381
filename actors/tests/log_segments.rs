//! Integration tests of segments as the `Log` drives them: appends and reads, offsets
//! across rolls, read limits, every reason to roll, `LogAppendTime`, and input the append
//! path must refuse without writing anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_actors::log::batch::{self, BatchSpec, NO_PRODUCER_ID};
use sluice_actors::log::compression::Compression;
use sluice_actors::log::config::{LogConfig, TimestampType};
use sluice_actors::log::{Log, LogError};

/// Reads forward from `from` with `max_bytes` per read until the log end, as a consumer
/// does, returning every whole batch received.
fn consume_all(log: &Log, from: i64, max_bytes: u64) -> Vec<DiskBatch> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let info = log.read(offset, max_bytes, None, true).unwrap();
        let bytes = info
            .slice
            .expect("data below the log end")
            .read_to_vec()
            .unwrap();
        let mut pos = 0;
        // Only whole batches; a consumer drops a partial trailing one.
        while pos + 12 <= bytes.len() {
            let size =
                12 + i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
            if pos + size > bytes.len() {
                break;
            }
            let b = parse_batch(-1, pos as u64, &bytes[pos..pos + size]);
            offset = b.last_offset + 1;
            out.push(b);
            pos += size;
        }
        assert!(pos > 0, "a read from {offset} returned no whole batch");
    }
    out
}

/// One append of 700 batches: the segment writes each with its offset patched in, 1,400
/// iovecs, more than one `pwritev` takes (1,024) — every byte lands where it belongs.
#[test]
fn an_append_of_many_batches_is_written_whole_with_each_offset_patched_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    let first = append(&mut log, batch(3, 500, 10), 0, NOW);
    let mut records = Vec::new();
    for i in 0..700 {
        records.extend_from_slice(&batch(1 + i % 3, 1000 + i as i64, 10 + i % 50));
    }
    let info = log.append_as_leader(&records, 7, NOW).unwrap();
    assert_eq!(info.batches, 700);
    assert_eq!(info.first_offset, first.last_offset + 1);
    let on_disk = assert_matches_disk(&log);
    assert_eq!(on_disk.len(), 701);
    let written: Vec<u8> = on_disk[1..].iter().flat_map(|d| d.bytes.clone()).collect();
    assert!(
        written == as_stored(&records, info.first_offset, 7),
        "the batches on disk differ from the appended ones with offsets and epoch patched in"
    );
    assert!(on_disk[1..].iter().all(|d| d.leader_epoch == 7));
}

#[test]
fn append_then_read_round_trips_bytes_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    let mut stored = Vec::new();
    let mut next = 0;
    for (i, n) in [1usize, 3, 5, 2].into_iter().enumerate() {
        let records = batch(n, 1000 + i as i64 * 10, 20);
        let info = log.append_as_leader(&records, 0, NOW).unwrap();
        assert_eq!(info.first_offset, next);
        assert_eq!(info.last_offset, next + n as i64 - 1);
        assert_eq!(info.batches, 1);
        assert_eq!(info.bytes, records.len());
        assert_eq!(info.max_timestamp, 1000 + i as i64 * 10 + n as i64 - 1);
        assert_eq!(info.offset_of_max_timestamp, info.last_offset);
        assert_eq!(info.log_append_time, -1);
        next += n as i64;
        // Stored with its offset assigned and its epoch stamped; the buffer is not changed.
        stored.push(as_stored(&records, info.first_offset, 0));
    }
    assert_eq!(log.log_end_offset(), 11);

    let on_disk = assert_matches_disk(&log);
    assert_eq!(on_disk.len(), 4);
    for (d, s) in on_disk.iter().zip(&stored) {
        assert!(d.bytes == *s, "stored bytes differ from the appended batch");
        assert_eq!(d.leader_epoch, 0);
    }
    // Every offset reads back the batch holding it, whole.
    for (d, s) in on_disk.iter().zip(&stored) {
        for o in d.base_offset..=d.last_offset {
            let (first, bytes) = read_one(&log, o);
            assert_eq!(first, Some(d.base_offset));
            assert!(bytes == *s);
        }
    }
    // A big read returns everything, in order.
    let all = log.read(0, 1 << 20, None, false).unwrap();
    let bytes = all.slice.unwrap().read_to_vec().unwrap();
    assert!(bytes == stored.concat());
    assert_eq!(all.first_batch_offset, Some(0));
    // At the log end: nothing; past it: out of range.
    assert!(log.read(11, 1 << 20, None, true).unwrap().slice.is_none());
    assert_out_of_range(log.read(12, 1 << 20, None, true), 12);
    assert_out_of_range(log.read(-1, 1 << 20, None, true), -1);
}

#[test]
fn a_multi_batch_append_gets_consecutive_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    let mut buf = batch(2, 100, 5);
    buf.extend(batch(3, 200, 5));
    buf.extend(batch(1, 300, 5));
    let info = log.append_as_leader(&buf, 4, NOW).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.batches),
        (0, 5, 3)
    );
    assert_eq!((info.max_timestamp, info.offset_of_max_timestamp), (300, 5));
    let on_disk = assert_matches_disk(&log);
    let ranges: Vec<(i64, i64, i32)> = on_disk
        .iter()
        .map(|b| (b.base_offset, b.last_offset, b.leader_epoch))
        .collect();
    assert_eq!(ranges, [(0, 1, 4), (2, 4, 4), (5, 5, 4)]);
}

#[test]
fn offsets_stay_contiguous_across_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &config(600, 100));
    let mut expected_next = 0;
    for i in 0..60 {
        let n = 1 + (i * 7) % 5;
        let info = append(
            &mut log,
            batch(n, 10_000 + i as i64, 10 + (i * 13) % 90),
            0,
            NOW,
        );
        assert_eq!(info.first_offset, expected_next, "append {i}");
        expected_next = info.last_offset + 1;
    }
    assert_eq!(log.log_end_offset(), expected_next);
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    let on_disk = assert_matches_disk(&log);
    // No offset is missing, and each segment starts where the previous one ended.
    for pair in on_disk.windows(2) {
        assert_eq!(pair[1].base_offset, pair[0].last_offset + 1);
    }
    let bases = log.segment_bases();
    assert_eq!(bases, segment_files(dir.path()));
    for base in &bases {
        let first = on_disk.iter().find(|b| b.segment == *base).unwrap();
        assert_eq!(
            first.base_offset, *base,
            "segment named after its first offset"
        );
        assert_eq!(first.position, 0);
    }
    for base in &bases[..bases.len() - 1] {
        assert!(file_len(&log_path(dir.path(), *base)) <= 600);
    }
}

#[test]
fn reads_cross_segment_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &config(500, 64));
    for i in 0..40 {
        append(
            &mut log,
            batch(1 + i % 4, 5_000 + i as i64 * 10, 30),
            0,
            NOW,
        );
    }
    assert!(log.segment_count() >= 4);
    let on_disk = assert_matches_disk(&log);

    // A consumer reading forward with any fetch size sees every batch once, in order,
    // passing from one segment to the next.
    for max_bytes in [1, 100, 250, 1 << 20] {
        let consumed = consume_all(&log, 0, max_bytes);
        let got: Vec<(i64, &[u8])> = consumed
            .iter()
            .map(|b| (b.base_offset, b.bytes.as_slice()))
            .collect();
        let want: Vec<(i64, &[u8])> = on_disk
            .iter()
            .map(|b| (b.base_offset, b.bytes.as_slice()))
            .collect();
        assert!(got == want, "max_bytes {max_bytes}");
    }

    // A read never spans two segments: from the last batch of a segment, it stops at the
    // segment's end; from the next segment's base, it starts there.
    let bases = log.segment_bases();
    for pair in bases.windows(2) {
        let last_of_first = on_disk.iter().rfind(|b| b.segment == pair[0]).unwrap();
        let info = log.read(pair[1] - 1, 1 << 20, None, false).unwrap();
        let bytes = info.slice.unwrap().read_to_vec().unwrap();
        assert_eq!(info.first_batch_offset, Some(last_of_first.base_offset));
        assert!(bytes == last_of_first.bytes);
        let info = log.read(pair[1], 1, None, true).unwrap();
        assert_eq!(info.first_batch_offset, Some(pair[1]));
    }
}

#[test]
fn read_honours_max_bytes_and_min_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    append(&mut log, batch(3, 100, 50), 0, NOW);
    append(&mut log, batch(2, 200, 80), 0, NOW);
    append(&mut log, batch(4, 300, 10), 0, NOW);
    let b = assert_matches_disk(&log);
    let sizes: Vec<u64> = b.iter().map(|b| b.bytes.len() as u64).collect();
    let all: Vec<u8> = b.iter().flat_map(|b| b.bytes.clone()).collect();

    let read = |offset: i64, max: u64, min_one: bool| {
        let info = log.read(offset, max, None, min_one).unwrap();
        let bytes = info.slice.map(|s| s.read_to_vec().unwrap());
        (info.first_batch_offset, bytes)
    };

    // Exactly max_bytes, even if that ends inside a batch (the consumer drops the rest).
    let (first, bytes) = read(0, sizes[0] + sizes[1], false);
    assert_eq!(first, Some(0));
    assert!(bytes.unwrap() == all[..(sizes[0] + sizes[1]) as usize]);
    let (_, bytes) = read(0, sizes[0] + 7, false);
    assert!(bytes.unwrap() == all[..(sizes[0] + 7) as usize]);
    let (_, bytes) = read(0, 10, false);
    assert!(bytes.unwrap() == all[..10]);
    // Nothing at all when nothing fits and one batch is not required.
    assert_eq!(read(0, 0, false), (None, None));

    // min_one_batch: the first batch whole even if max_bytes is smaller, and no more.
    for max in [0, 1, sizes[0] - 1, sizes[0]] {
        let (first, bytes) = read(0, max, true);
        assert_eq!(first, Some(0));
        assert!(bytes.unwrap() == b[0].bytes, "max {max}");
    }
    // ... but max_bytes still wins when it is larger.
    let (_, bytes) = read(0, sizes[0] + 1, true);
    assert_eq!(bytes.unwrap().len() as u64, sizes[0] + 1);

    // A read from inside a batch starts at that batch.
    let (first, bytes) = read(4, 1, true);
    assert_eq!(first, Some(3));
    assert!(bytes.unwrap() == b[1].bytes);
    // More than the log holds: everything.
    let (_, bytes) = read(0, 1 << 20, false);
    assert!(bytes.unwrap() == all);
}

#[test]
fn read_stops_at_the_upper_bound() {
    let dir = tempfile::tempdir().unwrap();
    // Three batches per segment: offsets 0-1 2-3 4-5 | 6-7 8-9 10-11 | 12-13.
    let one = batch(2, 100, 20).len() as u64;
    let mut log = open(dir.path(), &config(3 * one, 4096));
    for i in 0..7 {
        append(&mut log, batch(2, 100 + i * 2, 20), 0, NOW);
    }
    assert_eq!(log.segment_bases(), [0, 6, 12]);
    let b = assert_matches_disk(&log);
    let read = |offset: i64, upper: Option<i64>, min_one: bool| {
        let info = log.read(offset, 1 << 20, upper, min_one).unwrap();
        let bytes = info.slice.map(|s| s.read_to_vec().unwrap());
        (info.first_batch_offset, bytes)
    };
    let concat = |range: std::ops::Range<usize>| -> Vec<u8> {
        b[range].iter().flat_map(|b| b.bytes.clone()).collect()
    };

    // A bound at a batch boundary: the batches below it.
    assert_eq!(read(0, Some(4), true), (Some(0), Some(concat(0..2))));
    // A bound inside a batch: that batch is not served at all.
    assert_eq!(read(0, Some(3), true), (Some(0), Some(concat(0..1))));
    assert_eq!(read(2, Some(3), true), (None, None));
    // At or above the bound: nothing, even with min_one_batch.
    assert_eq!(read(4, Some(4), true), (None, None));
    assert_eq!(read(5, Some(4), true), (None, None));
    // A bound in a later segment does not cut this one; one at its base neither.
    assert_eq!(read(0, Some(9), false), (Some(0), Some(concat(0..3))));
    assert_eq!(read(0, Some(6), false), (Some(0), Some(concat(0..3))));
    // A bound inside the segment read from, after a roll.
    assert_eq!(read(6, Some(10), false), (Some(6), Some(concat(3..5))));
    assert_eq!(read(7, Some(8), false), (Some(6), Some(concat(3..4))));
    // A bound above the log end is the log end.
    assert_eq!(read(12, Some(1000), false), (Some(12), Some(concat(6..7))));
    assert_eq!(read(0, None, false), (Some(0), Some(concat(0..3))));
    // The bound never makes an out-of-range offset readable.
    assert_out_of_range(log.read(15, 1 << 20, Some(100), true), 15);
}

#[test]
fn rolls_when_the_next_append_would_exceed_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let size = batch(2, 0, 40).len() as u64;
    let mut log = open(dir.path(), &config(3 * size, 4096));
    for i in 0..10 {
        append(&mut log, batch(2, i, 40), 0, NOW);
    }
    // Exactly three batches fit; the fourth would exceed segment.bytes.
    assert_eq!(log.segment_bases(), [0, 6, 12, 18]);
    for base in [0, 6, 12] {
        assert_eq!(file_len(&log_path(dir.path(), base)), 3 * size);
    }
    assert_eq!(file_len(&log_path(dir.path(), 18)), size);
    // A batch larger than segment.bytes still goes into an empty segment, alone.
    log.roll(NOW).unwrap();
    let big = batch(2, 100, 4 * size as usize);
    let big_len = big.len() as u64;
    let info = append(&mut log, big, 0, NOW);
    assert_eq!(info.first_offset, 20);
    assert_eq!(log.segment_bases(), [0, 6, 12, 18, 20]);
    assert_eq!(file_len(&log_path(dir.path(), 20)), big_len);
    append(&mut log, batch(2, 100, 1), 0, NOW);
    assert_eq!(log.segment_bases(), [0, 6, 12, 18, 20, 22]);
    // An explicit roll starts a segment at the log end; rolling an empty one does nothing.
    log.roll(NOW).unwrap();
    assert_eq!(log.segment_bases(), [0, 6, 12, 18, 20, 22, 24]);
    log.roll(NOW).unwrap();
    assert_eq!(log.segment_count(), 7);
    assert_matches_disk(&log);
}

#[test]
fn rolls_after_segment_ms_measured_with_record_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    // The clock is far ahead and jumps around: with record timestamps it is not used.
    append(&mut log, batch(1, 50_000, 5), 0, 9_000_000);
    append(&mut log, batch(1, 50_500, 5), 0, 1);
    append(&mut log, batch(1, 51_000, 5), 0, 9_999_999); // waited exactly segment.ms
    assert_eq!(log.segment_count(), 1);
    let info = append(&mut log, batch(1, 51_001, 5), 0, 2); // waited longer
    assert_eq!(log.segment_bases(), [0, 3]);
    assert_eq!(info.first_offset, 3);
    // The new segment counts from its own first batch.
    append(&mut log, batch(1, 52_001, 5), 0, NOW);
    assert_eq!(log.segment_count(), 2);
    append(&mut log, batch(1, 52_002, 5), 0, NOW);
    assert_eq!(log.segment_bases(), [0, 3, 5]);
    // An old timestamp after a new one does not roll.
    append(&mut log, batch(1, 10, 5), 0, NOW);
    assert_eq!(log.segment_count(), 3);
    assert_matches_disk(&log);
}

/// A batch without timestamps (`-1`), as very old producers send.
fn untimed_batch() -> Vec<u8> {
    let mut encoded = Vec::new();
    batch::encode_record(&mut encoded, 0, 0, Some(b"k"), Some(b"v"));
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: 0,
        last_offset_delta: 0,
        base_timestamp: -1,
        max_timestamp: -1,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
    };
    batch::build_batch(&spec, &encoded, 1).unwrap()
}

#[test]
fn rolls_after_segment_ms_measured_with_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let mut log = Log::open(
        dir.path(),
        cfg,
        sluice_actors::log::log::LogOpenOptions {
            now_ms: 0,
            ..Default::default()
        },
    )
    .unwrap();
    append(&mut log, untimed_batch(), 0, 0);
    append(&mut log, untimed_batch(), 0, 999);
    append(&mut log, untimed_batch(), 0, 1000); // exactly segment.ms since creation
    assert_eq!(log.segment_count(), 1);
    append(&mut log, untimed_batch(), 0, 1001);
    assert_eq!(log.segment_bases(), [0, 3]);
    // The new segment was created at 1001.
    append(&mut log, untimed_batch(), 0, 2001);
    assert_eq!(log.segment_count(), 2);
    append(&mut log, untimed_batch(), 0, 2002);
    assert_eq!(log.segment_bases(), [0, 3, 5]);
    assert_matches_disk(&log);
}

#[test]
fn segment_jitter_rolls_early_but_never_late() {
    let cfg = LogConfig {
        segment_ms: 1000,
        segment_jitter_ms: 500,
        ..LogConfig::default()
    };
    // The jitter is drawn per segment from the clock; try a few clocks.
    let mut waits = Vec::new();
    for start in [1_234_567, 2_000_003, 987_654_321, 5, 77_777] {
        let dir = tempfile::tempdir().unwrap();
        let opts = sluice_actors::log::log::LogOpenOptions {
            now_ms: start,
            ..Default::default()
        };
        let mut log = Log::open(dir.path(), cfg.clone(), opts).unwrap();
        append(&mut log, untimed_batch(), 0, start);
        let mut rolled_after = None;
        for waited in 1..=1001 {
            append(&mut log, untimed_batch(), 0, start + waited);
            if log.segment_count() == 2 {
                rolled_after = Some(waited);
                break;
            }
        }
        let waited = rolled_after.expect("rolled by segment.ms");
        // segment.ms - jitter < waited <= segment.ms + 1, jitter < 500.
        assert!(waited > 500 && waited <= 1001, "rolled after {waited} ms");
        waits.push(waited);
    }
    assert!(
        waits.iter().any(|&w| w < 1001),
        "no jitter in any of {waits:?}"
    );
}

#[test]
fn rolls_when_an_index_is_full() {
    // segment.index.bytes = 32: four offset-index entries, two time-index entries.
    let cfg = LogConfig {
        segment_index_bytes: 32,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    // Rising timestamps fill the time index first; equal ones fill the offset index.
    for rising in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), &cfg);
        for i in 0..30 {
            let ts = if rising { 1000 + i } else { 1000 };
            append(&mut log, batch(2, ts, 10), 0, NOW);
        }
        assert!(
            log.segment_count() >= 4,
            "rising={rising}: {:?}",
            log.segment_bases()
        );
        let on_disk = assert_matches_disk(&log);
        for base in log.segment_bases() {
            let offsets = offset_index_entries(&index_path(dir.path(), base));
            let times = time_index_entries(&time_index_path(dir.path(), base));
            assert!(offsets.len() <= 4, "segment {base}: {offsets:?}");
            // Up to the preallocated two, plus the max timestamp written at the roll.
            assert!(times.len() <= 3, "segment {base}: {times:?}");
        }
        let batches_per_segment = on_disk.iter().filter(|b| b.segment == 0).count();
        // Index entries start with the second batch: one batch more than entries.
        assert_eq!(
            batches_per_segment,
            if rising { 3 } else { 5 },
            "rising={rising}"
        );
        log.close(NOW).unwrap();
        let log = open(dir.path(), &cfg);
        assert_matches_disk(&log);
    }
}

#[test]
fn a_multi_batch_append_into_a_nearly_full_index_succeeds() {
    // Room for two offset-index entries; one append of six batches wants five.
    let cfg = LogConfig {
        segment_index_bytes: 16,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &cfg);
    let mut buf = Vec::new();
    for i in 0..6 {
        buf.extend(batch(2, 100 + i * 2, 10));
    }
    let len = buf.len() as u64;
    let info = log.append_as_leader(&buf, 0, NOW).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 11));
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(file_len(&log_path(dir.path(), 0)), len);
    assert_matches_disk(&log);
    // The next append finds the index full and rolls.
    append(&mut log, batch(1, 200, 10), 0, NOW);
    assert_eq!(log.segment_bases(), [0, 12]);
    assert_matches_disk(&log);
    log.close(NOW).unwrap();
    let log = open(dir.path(), &cfg);
    assert_matches_disk(&log);
}

#[test]
fn log_append_time_overwrites_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        index_interval_bytes: 0,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    let first = append(&mut log, batch(3, 1000, 10), 0, 5000);
    assert_eq!(first.log_append_time, 5000);
    assert_eq!(
        (first.max_timestamp, first.offset_of_max_timestamp),
        (5000, 2)
    );
    let second = append(
        &mut log,
        batch_with_codec(Compression::Gzip, 2, 9_999_999, 10),
        0,
        6000,
    );
    assert_eq!(second.log_append_time, 6000);
    let on_disk = assert_matches_disk(&log);
    for (b, t) in on_disk.iter().zip([5000, 6000]) {
        assert!(b.log_append_time, "timestamp type bit set");
        assert_eq!(b.max_timestamp, t);
        assert!(b.records.iter().all(|&(_, ts)| ts == t));
    }
    // Lookups see the append time, not the producer's.
    let find = |t: i64| {
        log.offset_for_timestamp(t)
            .unwrap()
            .map(|f| (f.timestamp, f.offset))
    };
    assert_eq!(find(1000), Some((5000, 0)));
    assert_eq!(find(5000), Some((5000, 0)));
    assert_eq!(find(5001), Some((6000, 3)));
    assert_eq!(find(6001), None);
    assert_eq!(
        log.max_timestamp_and_offset()
            .unwrap()
            .map(|f| (f.timestamp, f.offset)),
        Some((6000, 3))
    );

    // CreateTime keeps the producer's timestamps.
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &LogConfig::default());
    let info = append(&mut log, batch(3, 1000, 10), 0, 5000);
    assert_eq!((info.log_append_time, info.max_timestamp), (-1, 1002));
    let on_disk = assert_matches_disk(&log);
    assert!(!on_disk[0].log_append_time);
    assert_eq!(on_disk[0].records, [(0, 1000), (1, 1001), (2, 1002)]);
}

// ---------------------------------------------------------------------------------------
// Bad input: a typed error, and nothing appended.
// ---------------------------------------------------------------------------------------

const MAGIC_POS: usize = 16;
const CRC_POS: usize = 17;
const LENGTH_POS: usize = 8;
const RECORD_COUNT_POS: usize = 57;

/// A log holding one good batch, and the state a refused append must leave unchanged.
fn log_with_one_batch(dir: &std::path::Path) -> (Log, i64, u64) {
    let mut log = open(dir, &LogConfig::default());
    append(&mut log, batch(2, 100, 10), 0, NOW);
    let leo = log.log_end_offset();
    let size = file_len(&log_path(dir, 0));
    (log, leo, size)
}

fn fix_crc(b: &mut [u8]) {
    let crc = batch::compute_crc(b);
    b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A bad buffer: what is wrong with it, its bytes, and a check of the error it must
/// produce.
type BadInput = (&'static str, Vec<u8>, fn(&LogError) -> bool);

/// Bad buffers, each with a check of the error it must produce.
fn bad_inputs() -> Vec<BadInput> {
    let good = batch(3, 100, 10);
    let mut out: Vec<BadInput> = Vec::new();

    let mut b = good.clone();
    b[MAGIC_POS] = 1;
    out.push((
        "bad magic",
        b,
        |e| matches!(e, LogError::CorruptBatch(m) if m.contains("magic")),
    ));

    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0x55;
    out.push((
        "bad CRC (record bytes changed)",
        b,
        |e| matches!(e, LogError::CorruptBatch(m) if m.contains("CRC")),
    ));

    let mut b = good.clone();
    b[CRC_POS] ^= 0x01;
    out.push((
        "bad CRC (CRC field changed)",
        b,
        |e| matches!(e, LogError::CorruptBatch(m) if m.contains("CRC")),
    ));

    let mut b = good.clone();
    let len = i32::from_be_bytes(b[LENGTH_POS..LENGTH_POS + 4].try_into().unwrap()) + 10;
    b[LENGTH_POS..LENGTH_POS + 4].copy_from_slice(&len.to_be_bytes());
    out.push(("length past the end", b, |e| {
        matches!(e, LogError::CorruptBatch(_))
    }));

    out.push(("truncated batch", good[..good.len() - 3].to_vec(), |e| {
        matches!(e, LogError::CorruptBatch(_))
    }));
    out.push(("shorter than a header", good[..40].to_vec(), |e| {
        matches!(e, LogError::CorruptBatch(_))
    }));
    out.push(("empty", Vec::new(), |e| {
        matches!(e, LogError::CorruptBatch(_))
    }));

    // The count disagrees with last_offset_delta (CRC fixed, so only the count is wrong).
    let mut b = good.clone();
    b[RECORD_COUNT_POS..RECORD_COUNT_POS + 4].copy_from_slice(&4i32.to_be_bytes());
    fix_crc(&mut b);
    out.push((
        "record count above last offset delta + 1",
        b,
        |e| matches!(e, LogError::InvalidRecord(m) if m.contains("record count")),
    ));

    // Count and delta agree with each other but not with the records in the batch.
    let mut encoded = Vec::new();
    for i in 0..2 {
        batch::encode_record(&mut encoded, i, 0, Some(b"k"), Some(b"v"));
    }
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: 0,
        last_offset_delta: 2,
        base_timestamp: 100,
        max_timestamp: 100,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
    };
    out.push((
        "record count above the records present",
        batch::build_batch(&spec, &encoded, 3).unwrap(),
        |e| matches!(e, LogError::CorruptBatch(_)),
    ));
    let spec = BatchSpec {
        last_offset_delta: 0,
        ..spec
    };
    out.push((
        "record count below the records present",
        batch::build_batch(&spec, &encoded, 1).unwrap(),
        |e| matches!(e, LogError::CorruptBatch(m) if m.contains("after the last")),
    ));

    // A good batch followed by a bad one: the whole buffer is refused.
    let mut b = good.clone();
    let mut second = good.clone();
    second[MAGIC_POS] = 0;
    b.extend(second);
    out.push((
        "good batch then bad magic",
        b,
        |e| matches!(e, LogError::CorruptBatch(m) if m.contains("magic")),
    ));
    out
}

#[test]
fn bad_batches_from_a_producer_are_refused_and_nothing_is_appended() {
    for (what, buf, expected) in bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, leo, size) = log_with_one_batch(dir.path());
        let err = log.append_as_leader(&buf, 0, NOW).expect_err(what);
        assert!(expected(&err), "{what}: unexpected error {err:?}");
        assert_eq!(log.log_end_offset(), leo, "{what}: log end offset moved");
        assert_eq!(
            file_len(&log_path(dir.path(), 0)),
            size,
            "{what}: file grew"
        );
        assert_eq!(log.segment_count(), 1, "{what}");
        // The log still works, and the next append lands right after the good batch.
        let info = append(&mut log, batch(1, 200, 1), 0, NOW);
        assert_eq!(info.first_offset, leo, "{what}");
        assert_matches_disk(&log);
    }
}

#[test]
fn bad_batches_from_a_leader_are_refused_and_nothing_is_appended() {
    for (what, buf, expected) in bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, leo, size) = log_with_one_batch(dir.path());
        let mut buf = buf;
        if buf.len() >= 8 {
            buf[..8].copy_from_slice(&leo.to_be_bytes());
        }
        let err = log.append_as_follower(&buf, NOW).expect_err(what);
        let ok = expected(&err)
            || (what.starts_with("record count above last")
                && matches!(err, LogError::CorruptBatch(_)));
        assert!(ok, "{what}: unexpected error {err:?}");
        assert_eq!(log.log_end_offset(), leo, "{what}");
        assert_eq!(file_len(&log_path(dir.path(), 0)), size, "{what}");
    }
}

#[test]
fn oversized_batches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        max_message_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    let big = batch(5, 100, 100);
    let size = big.len();
    match log.append_as_leader(&big, 0, NOW) {
        Err(LogError::BatchTooLarge { size: s, max }) => assert_eq!((s, max), (size, 200)),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(file_len(&log_path(dir.path(), 0)), 0);
    // A follower takes what its leader accepted.
    let mut leader_copy = batch(5, 100, 100);
    leader_copy[..8].copy_from_slice(&0i64.to_be_bytes());
    log.append_as_follower(&leader_copy, NOW).unwrap();
    assert_eq!(log.log_end_offset(), 5);
}

#[test]
fn timestamps_outside_the_allowed_window_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        message_timestamp_before_max_ms: 1000,
        message_timestamp_after_max_ms: 100,
        ..LogConfig::default()
    };
    let mut log = open(dir.path(), &cfg);
    let now = 10_000;
    for (base_ts, ok) in [
        (9_000, true),
        (8_999, false),
        (10_100, true),
        (10_101, false),
    ] {
        // One record, so base and max timestamp are both base_ts.
        let b = batch(1, base_ts, 1);
        let before = log.log_end_offset();
        match log.append_as_leader(&b, 0, now) {
            Ok(_) => assert!(ok, "{base_ts} accepted"),
            Err(LogError::InvalidTimestamp(_)) => {
                assert!(!ok, "{base_ts} refused");
                assert_eq!(log.log_end_offset(), before);
            }
            Err(e) => panic!("{base_ts}: {e:?}"),
        }
    }
    assert_matches_disk(&log);
}
