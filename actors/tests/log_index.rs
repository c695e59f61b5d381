//! Integration tests of the offset and time indexes through the `Log`: every lookup is
//! checked against a brute-force scan of the `.log` bytes, for random batch sizes, counts
//! and timestamps (in and out of order), with indexes dense enough to be exercised.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use sluice_actors::log::compression::Compression;
use sluice_actors::log::config::{LogConfig, TimestampType};
use std::path::Path;

/// One batch to append: its records' timestamps, value size and codec.
#[derive(Debug, Clone)]
struct BatchPlan {
    timestamps: Vec<i64>,
    value_len: usize,
    codec: Compression,
}

fn batch_plan() -> impl Strategy<Value = BatchPlan> {
    (
        prop::collection::vec(0i64..400, 1..8),
        any::<bool>(),
        0usize..120,
        prop_oneof![
            6 => Just(Compression::None),
            1 => Just(Compression::Gzip),
            1 => Just(Compression::Lz4),
            1 => Just(Compression::Snappy),
            1 => Just(Compression::Zstd),
        ],
    )
        .prop_map(|(mut deltas, in_order, value_len, codec)| {
            if in_order {
                deltas.sort_unstable();
            }
            BatchPlan {
                timestamps: deltas.into_iter().map(|d| 1_000_000 + d).collect(),
                value_len,
                codec,
            }
        })
}

/// The batch a plan describes, compressed with its codec.
fn build(plan: &BatchPlan) -> Vec<u8> {
    let plain = batch_with_timestamps(&plan.timestamps, plan.value_len);
    if plan.codec == Compression::None {
        return plain;
    }
    // Re-encode the same records compressed.
    use sluice_actors::log::batch::{self, BatchHeader, BatchSpec};
    let h = BatchHeader::parse(&plain).unwrap();
    let spec = BatchSpec {
        attributes: plan.codec.id(),
        ..BatchSpec::of(&h)
    };
    batch::build_batch(&spec, &plain[batch::BATCH_HEADER_SIZE..], h.record_count).unwrap()
}

/// Checks every entry of every index file against the log bytes (after a close, when
/// the files hold exactly their entries):
/// - an offset-index entry points at the start of the batch whose last offset it names;
/// - a time-index entry's timestamp is the largest of the segment up to its offset, and
///   that offset ends the batch carrying it; the last entry holds the segment's max.
fn assert_index_files_agree_with_log(dir: &Path, batches: &[DiskBatch]) {
    for base in segment_files(dir) {
        let seg: Vec<&DiskBatch> = batches.iter().filter(|b| b.segment == base).collect();
        for (rel, pos) in offset_index_entries(&index_path(dir, base)) {
            let b = seg
                .iter()
                .find(|b| b.position == pos as u64)
                .unwrap_or_else(|| panic!("segment {base}: index points at {pos}, no batch"));
            assert_eq!(b.last_offset, base + i64::from(rel), "segment {base}");
        }
        let times = time_index_entries(&time_index_path(dir, base));
        for &(ts, rel) in &times {
            let offset = base + i64::from(rel);
            let max_so_far = seg
                .iter()
                .filter(|b| b.last_offset <= offset)
                .map(|b| b.max_timestamp)
                .max();
            assert_eq!(
                max_so_far,
                Some(ts),
                "segment {base}: time entry ({ts}, {offset})"
            );
            let carrier = seg.iter().find(|b| b.last_offset == offset);
            assert_eq!(carrier.map(|b| b.max_timestamp), Some(ts));
        }
        let seg_max = seg.iter().map(|b| b.max_timestamp).max();
        assert_eq!(
            times.last().map(|t| t.0),
            seg_max,
            "segment {base}: last time entry"
        );
    }
}

fn run_case(plans: &[BatchPlan], cfg: &LogConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), cfg);
    for (i, plan) in plans.iter().enumerate() {
        // A clock that moves, for LogAppendTime.
        append(&mut log, build(plan), 0, 2_000_000 + i as i64 * 3);
    }
    let batches = assert_matches_disk(&log);
    let total_records: usize = plans.iter().map(|p| p.timestamps.len()).sum();
    assert_eq!(log.log_end_offset(), total_records as i64);
    assert_eq!(batches.len(), plans.len());
    let timestamps = interesting_timestamps(&batches);
    let before = answers(&log, &timestamps);

    log.close(NOW).unwrap();
    assert_index_files_agree_with_log(dir.path(), &batches);
    let log = open(dir.path(), cfg);
    assert_answers_eq(&answers(&log, &timestamps), &before);
    assert_matches_disk(&log);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn lookups_match_a_scan_of_the_log_bytes(
        plans in prop::collection::vec(batch_plan(), 1..40),
        index_interval_bytes in prop_oneof![Just(0u32), 1u32..300],
        segment_bytes in prop_oneof![Just(1u64 << 30), 400u64..3000],
        log_append_time in prop::bool::weighted(0.2),
    ) {
        let cfg = LogConfig {
            segment_bytes,
            index_interval_bytes,
            message_timestamp_type: if log_append_time {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            ..LogConfig::default()
        };
        run_case(&plans, &cfg);
    }
}

#[test]
fn timestamp_lookup_returns_the_earliest_offset_not_the_closest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 30, 0);
    let mut log = open(dir.path(), &cfg);
    append(&mut log, batch_with_timestamps(&[100, 300, 200], 5), 0, NOW); // 0-2
    append(&mut log, batch_with_timestamps(&[150, 250], 5), 0, NOW); // 3-4
    log.roll(NOW).unwrap();
    append(&mut log, batch_with_timestamps(&[50, 400], 5), 0, NOW); // 5-6
    append(&mut log, batch_with_timestamps(&[350], 5), 0, NOW); // 7
    let find = |t: i64| {
        log.offset_for_timestamp(t)
            .unwrap()
            .map(|f| (f.timestamp, f.offset))
    };
    assert_eq!(find(0), Some((100, 0)));
    assert_eq!(find(100), Some((100, 0)));
    assert_eq!(find(101), Some((300, 1)));
    assert_eq!(find(200), Some((300, 1)));
    assert_eq!(find(300), Some((300, 1)));
    assert_eq!(find(301), Some((400, 6)));
    assert_eq!(find(350), Some((400, 6)));
    assert_eq!(find(400), Some((400, 6)));
    assert_eq!(find(401), None);
    assert_eq!(
        log.max_timestamp_and_offset()
            .unwrap()
            .map(|f| (f.timestamp, f.offset)),
        Some((400, 6))
    );
    assert_matches_disk(&log);
}

#[test]
fn the_same_max_timestamp_twice_answers_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &config(1 << 30, 0));
    append(&mut log, batch_with_timestamps(&[10, 90], 5), 0, NOW); // 0-1
    append(&mut log, batch_with_timestamps(&[90, 90, 20], 5), 0, NOW); // 2-4
    append(&mut log, batch_with_timestamps(&[30], 5), 0, NOW); // 5
    assert_eq!(
        log.max_timestamp_and_offset()
            .unwrap()
            .map(|f| (f.timestamp, f.offset)),
        Some((90, 1))
    );
    assert_eq!(
        log.offset_for_timestamp(25).unwrap().map(|f| f.offset),
        Some(1)
    );
    assert_matches_disk(&log);
}

#[test]
fn index_entries_are_sparse_and_lookups_scan_between_them() {
    // With a large interval most batches have no entry of their own: lookups must scan.
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 30, 1000);
    let mut log = open(dir.path(), &cfg);
    for i in 0..100 {
        append(&mut log, batch(1 + i % 3, 1000 + i as i64 * 5, 40), 0, NOW);
    }
    let batches = assert_matches_disk(&log);
    let entries = offset_index_entries(&index_path(dir.path(), 0));
    assert!(
        entries.len() > 2 && entries.len() < batches.len() / 4,
        "{} entries for {} batches",
        entries.len(),
        batches.len()
    );
    log.close(NOW).unwrap();
    assert_index_files_agree_with_log(dir.path(), &batches);
    let log = open(dir.path(), &cfg);
    assert_matches_disk(&log);
}
