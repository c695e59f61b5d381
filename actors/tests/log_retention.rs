//! Integration tests of retention: whole segments deleted by age (their max timestamp),
//! by total size, or below the log start offset — never the active segment, never a
//! segment reaching the high watermark — and DeleteRecords moving the log start offset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use sluice_actors::log::config::{CleanupPolicy, LogConfig};
use sluice_actors::log::log::LogOpenOptions;
use sluice_actors::log::Log;

/// A log whose segments hold one-record batches with the given timestamps, one segment
/// per slice (the last one active). Offsets run 0, 1, 2, ... across them.
fn log_with_segments(dir: &Path, cfg: &LogConfig, segments: &[&[i64]]) -> Log {
    let mut log = open(dir, cfg);
    for (i, timestamps) in segments.iter().enumerate() {
        if i > 0 {
            log.roll(NOW).unwrap();
        }
        for &ts in timestamps.iter() {
            append(&mut log, batch(1, ts, 10), 0, NOW);
        }
    }
    assert_eq!(log.segment_count(), segments.len());
    log
}

fn retention(retention_ms: i64, retention_bytes: i64) -> LogConfig {
    LogConfig {
        retention_ms,
        retention_bytes,
        ..LogConfig::default()
    }
}

/// Asserts the segments are gone from the directory and the log, the log start moved to
/// the first survivor, and reads below it are refused.
fn assert_deleted_up_to(log: &Log, surviving: &[i64]) {
    assert_eq!(log.segment_bases(), surviving);
    assert_eq!(segment_files(log.dir()), surviving);
    let names: Vec<String> = std::fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".deleted") || n.ends_with(".index") || n.ends_with(".timeindex"))
        .collect();
    assert_eq!(
        names.len(),
        2 * surviving.len(),
        "index files left: {names:?}"
    );
    assert_eq!(log.log_start_offset(), surviving[0]);
    if surviving[0] > 0 {
        assert_out_of_range(log.read(surviving[0] - 1, 1, None, true), surviving[0] - 1);
        assert_out_of_range(log.read(0, 1, None, true), 0);
    }
    assert_eq!(read_one(log, surviving[0]).0, Some(surviving[0]));
    assert_matches_disk(log);
}

#[test]
fn retention_by_time_goes_by_each_segments_max_timestamp() {
    let now = 10_000;
    let segments: &[&[i64]] = &[
        &[1000, 2000], // 0-1: expired
        &[500, 8000],  // 2-3: expired by its max, though its first record is not the oldest
        &[100, 9000],  // 4-5: max exactly retention.ms old: kept
        &[1000],       // 6: expired, but behind a segment that is kept
        &[50],         // 7: expired, but active
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), &retention(1000, -1), segments);
    let leo = log.log_end_offset();

    assert_eq!(log.delete_old_segments(leo, now).unwrap(), 2);
    assert_deleted_up_to(&log, &[4, 6, 7]);
    // Nothing more at the same time: retention stops at the first segment it keeps.
    assert_eq!(log.delete_old_segments(leo, now).unwrap(), 0);
    // A millisecond later segment 4 is too old, and with it segment 6; the active stays.
    assert_eq!(log.delete_old_segments(leo, now + 1).unwrap(), 2);
    assert_deleted_up_to(&log, &[7]);
    assert_eq!(log.delete_old_segments(leo, i64::MAX).unwrap(), 0);
    assert_deleted_up_to(&log, &[7]);
}

#[test]
fn unlimited_retention_by_time_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), &retention(-1, -1), &[&[1], &[2], &[3]]);
    assert_eq!(log.delete_old_segments(3, i64::MAX).unwrap(), 0);
    assert_eq!(log.segment_bases(), [0, 1, 2]);
}

#[test]
fn retention_by_size_deletes_the_oldest_segments_in_excess() {
    let segments: &[&[i64]] = &[&[1, 2, 3], &[4, 5, 6], &[7, 8, 9], &[10, 11, 12], &[13]];
    let dir = tempfile::tempdir().unwrap();
    let probe = log_with_segments(dir.path(), &retention(-1, -1), segments);
    let seg = file_len(&log_path(dir.path(), 0));
    let total = probe.size();
    assert_eq!(total, 4 * seg + file_len(&log_path(dir.path(), 12)));
    drop(probe);

    // (limit, segments deleted): a segment goes only if the log is still at least the
    // limit without it.
    let cases = [
        (total, 0),
        (total - seg + 1, 0),
        (total - seg, 1),
        (total - 2 * seg + 1, 1),
        (total - 2 * seg, 2),
        (0, 4),
    ];
    for (limit, deleted) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut log = log_with_segments(dir.path(), &retention(-1, limit as i64), segments);
        let leo = log.log_end_offset();
        assert_eq!(
            log.delete_old_segments(leo, NOW).unwrap(),
            deleted,
            "limit {limit}"
        );
        let surviving: Vec<i64> = [0, 3, 6, 9, 12][deleted..].to_vec();
        assert_deleted_up_to(&log, &surviving);
        assert!(
            deleted == 0 || log.size() >= limit || surviving.len() == 1,
            "limit {limit}: deleted too much ({} bytes left)",
            log.size()
        );
    }
}

#[test]
fn retention_never_deletes_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), &retention(0, 0), &[&[1, 2], &[3, 4], &[5, 6]]);
    assert_eq!(log.delete_old_segments(6, i64::MAX).unwrap(), 2);
    assert_deleted_up_to(&log, &[4]);
    assert_eq!(log.delete_old_segments(6, i64::MAX).unwrap(), 0);
    assert_deleted_up_to(&log, &[4]);
    assert_eq!(log.log_end_offset(), 6);
    // It still takes appends at the log end.
    let info = append(&mut log, batch(1, 7, 1), 0, NOW);
    assert_eq!(info.first_offset, 6);

    // A log of a single, active segment loses nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), &retention(0, 0), &[&[1, 2, 3]]);
    assert_eq!(log.delete_old_segments(3, i64::MAX).unwrap(), 0);
    assert_eq!(log.log_end_offset(), 3);
    assert_matches_disk(&log);
}

#[test]
fn retention_never_deletes_at_or_above_the_high_watermark() {
    // Segments 0-1, 2-3, 4-5, active 6-7; everything is expired and over the size limit.
    let segments: &[&[i64]] = &[&[1, 2], &[3, 4], &[5, 6], &[7, 8]];
    for cfg in [retention(0, -1), retention(-1, 0)] {
        // (high watermark, surviving segments)
        let cases: [(i64, &[i64]); 6] = [
            (0, &[0, 2, 4, 6]),
            (1, &[0, 2, 4, 6]),
            (2, &[2, 4, 6]),
            (3, &[2, 4, 6]),
            (5, &[4, 6]),
            (8, &[6]),
        ];
        for (hw, surviving) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut log = log_with_segments(dir.path(), &cfg, segments);
            log.delete_old_segments(hw, i64::MAX).unwrap();
            assert_eq!(
                log.segment_bases(),
                surviving,
                "high watermark {hw}, {cfg:?}"
            );
            assert_deleted_up_to(&log, surviving);
        }
    }
}

#[test]
fn a_compacted_topic_is_not_deleted_by_time_or_size() {
    let cfg = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        ..retention(0, 0)
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = log_with_segments(dir.path(), &cfg, &[&[1, 2], &[3, 4], &[5, 6]]);
    assert_eq!(log.delete_old_segments(6, i64::MAX).unwrap(), 0);
    assert_eq!(log.segment_bases(), [0, 2, 4]);
    // Below the log start offset still goes.
    assert!(log.maybe_increment_log_start_offset(3, 6).unwrap());
    assert_eq!(log.delete_old_segments(6, i64::MAX).unwrap(), 1);
    assert_eq!(log.segment_bases(), [2, 4]);
    assert_eq!(log.log_start_offset(), 3);
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    // Epoch 0 in segment 0-3, epoch 1 from offset 4; segments 0-3, 4-7, 8-11, active 12-13.
    let dir = tempfile::tempdir().unwrap();
    let cfg = retention(-1, -1);
    let mut log = open(dir.path(), &cfg);
    for i in 0..14i64 {
        if i > 0 && i % 4 == 0 {
            log.roll(NOW).unwrap();
        }
        append(
            &mut log,
            batch(1, 1000 + i * 10, 10),
            if i < 4 { 0 } else { 1 },
            NOW,
        );
    }
    assert_eq!(log.segment_bases(), [0, 4, 8, 12]);
    let hw = 12;

    // Beyond the high watermark: refused, nothing changes.
    assert_out_of_range(log.maybe_increment_log_start_offset(13, hw), 13);
    assert_eq!(log.log_start_offset(), 0);

    assert!(log.maybe_increment_log_start_offset(6, hw).unwrap());
    assert_eq!(log.log_start_offset(), 6);
    // Not moving backwards, nor to where it is.
    assert!(!log.maybe_increment_log_start_offset(6, hw).unwrap());
    assert!(!log.maybe_increment_log_start_offset(2, hw).unwrap());
    assert_eq!(log.log_start_offset(), 6);

    // Reads below it are out of range; from it, they start at its batch.
    for o in 0..6 {
        assert_out_of_range(log.read(o, 1 << 20, None, true), o);
    }
    assert_eq!(read_one(&log, 6).0, Some(6));
    // Lookups by time never answer below it.
    let found = log.offset_for_timestamp(0).unwrap().unwrap();
    assert_eq!((found.timestamp, found.offset), (1060, 6));
    assert_matches_disk(&log);
    // The epoch cache forgets what lies below.
    let entries = log.leader_epoch_cache().entries().to_vec();
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].epoch, entries[0].start_offset), (1, 6));

    // The next retention pass deletes the segment wholly below it, not the one holding it.
    assert_eq!(log.delete_old_segments(hw, NOW).unwrap(), 1);
    assert_eq!(log.segment_bases(), [4, 8, 12]);
    assert_eq!(
        log.log_start_offset(),
        6,
        "the log start stays where DeleteRecords put it"
    );
    assert_out_of_range(log.read(5, 1, None, true), 5);

    // Through a restart, when the checkpoint passes it back.
    log.close(NOW).unwrap();
    let reopened = open_with(
        dir.path(),
        &cfg,
        LogOpenOptions {
            log_start_offset: 6,
            clean_shutdown: true,
            now_ms: NOW,
            ..LogOpenOptions::default()
        },
    );
    assert_eq!(reopened.log_start_offset(), 6);
    assert_out_of_range(reopened.read(5, 1, None, true), 5);
    assert_eq!(read_one(&reopened, 6).0, Some(6));
    assert_eq!(reopened.leader_epoch_cache().entries()[0].start_offset, 6);
    assert_matches_disk(&reopened);
    drop(reopened);
    // Without it the log could only know its first segment's base.
    let forgetful = open(dir.path(), &cfg);
    assert_eq!(forgetful.log_start_offset(), 4);

    // Moving the log start to the high watermark leaves nothing readable below it.
    let mut log = forgetful;
    assert!(log.maybe_increment_log_start_offset(12, 12).unwrap());
    assert_eq!(log.delete_old_segments(12, NOW).unwrap(), 2);
    assert_eq!(log.segment_bases(), [12]);
    assert_out_of_range(log.read(11, 1, None, true), 11);
    assert_eq!(read_one(&log, 12).0, Some(12));
}
