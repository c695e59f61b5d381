//! Integration tests of the leader-epoch cache and of truncation: `truncate_to` (a
//! follower diverged from its leader) and `truncate_fully_and_start_at` keep the log, its
//! indexes and its epoch cache consistent, through appends and restarts; follower appends
//! keep the leader's offsets, gaps included, and refuse to go backwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use proptest::prelude::*;
use sluice_actors::log::config::LogConfig;
use sluice_actors::log::log::LogOpenOptions;
use sluice_actors::log::{Log, LogError};

#[test]
fn the_epoch_cache_answers_where_each_epoch_ended() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig::default();
    let mut log = open(dir.path(), &cfg);
    // Epochs 0, 0, 1, 3 over offsets 0-1, 2-4, 5, 6-9.
    for (records, epoch) in [(2, 0), (3, 0), (1, 1), (4, 3)] {
        append(&mut log, batch(records, 100, 5), epoch, NOW);
    }
    let check = |log: &Log| {
        let entries: Vec<(i32, i64)> = log
            .leader_epoch_cache()
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect();
        assert_eq!(entries, [(0, 0), (1, 5), (3, 6)]);
        assert_eq!(log.end_offset_for_epoch(-1), (-1, -1));
        assert_eq!(log.end_offset_for_epoch(0), (0, 5));
        assert_eq!(log.end_offset_for_epoch(1), (1, 6));
        // An epoch this log never saw: the largest below it, ending where the next began.
        assert_eq!(log.end_offset_for_epoch(2), (1, 6));
        // The current epoch ends at the log end.
        assert_eq!(log.end_offset_for_epoch(3), (3, 10));
        assert_eq!(log.end_offset_for_epoch(4), (-1, -1));
    };
    check(&log);
    let epochs: Vec<i32> = assert_matches_disk(&log)
        .iter()
        .map(|b| b.leader_epoch)
        .collect();
    assert_eq!(epochs, [0, 0, 1, 3], "each stored batch carries its epoch");

    log.close(NOW).unwrap();
    let log = open(dir.path(), &cfg);
    check(&log);
    drop(log);
    let log = open_unclean(dir.path(), &cfg, 0);
    check(&log);
}

/// Index entries every few batches (so a truncation lands between them), several
/// segments, out-of-order timestamps, epochs 0, 1 and 2.
fn cfg() -> LogConfig {
    config(1200, 250)
}

/// The standard content: 40 batches; returns the first offset of each.
fn fill(log: &mut Log) -> Vec<i64> {
    let mut starts = Vec::new();
    for i in 0..40i64 {
        let t = 5_000_000 + i * 1000;
        let ts: Vec<i64> = match i % 3 {
            0 => vec![t + 500, t],
            1 => vec![t + 1, t + 900, t + 2],
            _ => vec![t + 700],
        };
        let epoch = (i / 14) as i32;
        starts.push(
            append(
                log,
                batch_with_timestamps(&ts, 15 + (i as usize * 11) % 40),
                epoch,
                NOW,
            )
            .first_offset,
        );
    }
    starts
}

fn epochs(log: &Log) -> Vec<(i32, i64)> {
    log.leader_epoch_cache()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

/// Truncates a fresh copy of the standard log to `target` and checks everything;
/// returns the log end offset it ended at.
fn truncate_and_check(dir: &Path, target: i64) -> i64 {
    let mut log = open(dir, &cfg());
    let starts = fill(&mut log);
    let bases = log.segment_bases();
    assert!(bases.len() >= 4, "{bases:?}");
    let before = answers(&log, &[]);
    let epochs_before = epochs(&log);

    assert!(log.truncate_to(target, NOW).unwrap());
    // Whole batches go: the log ends at the start of the batch holding the target.
    let new_end = *starts.iter().rfind(|&&s| s <= target).unwrap();
    let what = format!("truncate_to({target})");
    assert_eq!(log.log_end_offset(), new_end, "{what}");
    assert!(log.recovery_point() <= new_end, "{what}");
    // Segments from the target on are gone, from the log and the directory.
    let surviving: Vec<i64> = bases.iter().copied().filter(|&b| b < target).collect();
    assert_eq!(log.segment_bases(), surviving, "{what}");
    assert_eq!(segment_files(dir), surviving, "{what}");
    let last = *surviving.last().unwrap();
    let kept_bytes: u64 = scan_dir(dir)
        .iter()
        .filter(|b| b.segment == last)
        .map(|b| b.bytes.len() as u64)
        .sum();
    assert_eq!(
        file_len(&log_path(dir, last)),
        kept_bytes,
        "{what}: the active segment ends with its last whole batch"
    );

    // Nothing at or past the new end is served; everything before reads as it did.
    assert!(log
        .read(new_end, 1 << 20, None, true)
        .unwrap()
        .slice
        .is_none());
    for o in new_end + 1..=before.log_end_offset {
        assert_out_of_range(log.read(o, 1, None, true), o);
    }
    let now = answers(&log, &[]);
    assert!(now.reads[..] == before.reads[..now.reads.len()], "{what}");
    // Offset and timestamp lookups agree with the bytes left.
    assert_matches_disk(&log);

    // Epochs that started at or after the new end are gone; the last one ends there.
    let kept: Vec<(i32, i64)> = epochs_before
        .iter()
        .copied()
        .filter(|e| e.1 < new_end)
        .collect();
    assert_eq!(epochs(&log), kept, "{what}");
    let latest = kept.last().unwrap().0;
    assert_eq!(
        log.end_offset_for_epoch(latest),
        (latest, new_end),
        "{what}"
    );
    assert_eq!(log.end_offset_for_epoch(latest + 1), (-1, -1), "{what}");

    // Appending goes on from the new end, contiguously, in a new epoch.
    let first = append(
        &mut log,
        batch_with_timestamps(&[9_000_000, 8_000_000], 10),
        7,
        NOW,
    );
    assert_eq!(first.first_offset, new_end, "{what}");
    let second = append(&mut log, batch(3, 9_100_000, 10), 7, NOW);
    assert_eq!(second.first_offset, new_end + 2, "{what}");
    assert_eq!(log.end_offset_for_epoch(latest), (latest, new_end));
    assert_eq!(log.end_offset_for_epoch(7), (7, new_end + 5));
    assert_matches_disk(&log);

    // A restart, clean or not, gives the same state.
    let timestamps = interesting_timestamps(&scan_dir(dir));
    let state = answers(&log, &timestamps);
    let epoch_state = epochs(&log);
    let segment_state = log.segment_bases();
    log.close(NOW).unwrap();
    let log = open(dir, &cfg());
    assert_answers_eq(&answers(&log, &timestamps), &state);
    assert_eq!(epochs(&log), epoch_state);
    assert_eq!(log.segment_bases(), segment_state);
    drop(log); // a crash: no close
    let log = open_unclean(dir, &cfg(), 0);
    assert_answers_eq(&answers(&log, &timestamps), &state);
    assert_eq!(epochs(&log), epoch_state);
    assert_eq!(log.segment_bases(), segment_state);
    new_end
}

#[test]
fn truncate_to_keeps_the_log_its_indexes_and_its_epochs_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let mut probe = open(dir.path(), &cfg());
    let starts = fill(&mut probe);
    let bases = probe.segment_bases();
    drop(probe);
    let mid_segment = |i: usize| {
        // A batch boundary in the middle of segment i.
        let inside: Vec<i64> = starts
            .iter()
            .copied()
            .filter(|&s| s > bases[i] && bases.get(i + 1).is_none_or(|&n| s < n))
            .collect();
        inside[inside.len() / 2]
    };
    let targets = [
        mid_segment(1),               // a batch boundary in an older segment
        mid_segment(1) + 1,           // inside a batch (its records go too)
        mid_segment(bases.len() - 1), // in the active segment
        bases[2],                     // exactly a segment's base
        bases[1] + 1,                 // just after the first batch of a segment
    ];
    for target in targets {
        let dir = tempfile::tempdir().unwrap();
        truncate_and_check(dir.path(), target);
    }
}

#[test]
fn truncate_to_at_or_past_the_end_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), &cfg());
    fill(&mut log);
    let before = answers(&log, &[]);
    let leo = log.log_end_offset();
    assert!(!log.truncate_to(leo, NOW).unwrap());
    assert!(!log.truncate_to(leo + 100, NOW).unwrap());
    assert_out_of_range(log.truncate_to(-1, NOW), -1);
    assert_eq!(answers(&log, &[]), before);
}

#[test]
fn truncate_to_at_or_below_the_first_segment_starts_over_there() {
    // Retention took the first two segments; then a truncation reaches below what is left.
    let probe_dir = tempfile::tempdir().unwrap();
    let mut probe = open(probe_dir.path(), &cfg());
    fill(&mut probe);
    let first_kept = probe.segment_bases()[2];
    drop(probe);

    for target in [first_kept, first_kept - 3] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), &cfg());
        fill(&mut log);
        assert!(log
            .maybe_increment_log_start_offset(first_kept, first_kept)
            .unwrap());
        assert_eq!(log.delete_old_segments(first_kept, NOW).unwrap(), 2);
        assert_eq!(log.segment_bases()[0], first_kept);

        assert!(log.truncate_to(target, NOW).unwrap());
        assert_eq!(log.segment_bases(), [target]);
        assert_eq!(segment_files(dir.path()), [target]);
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (target, target)
        );
        assert!(epochs(&log).is_empty());
        assert!(log.read(target, 1, None, true).unwrap().slice.is_none());
        assert_eq!(
            append(&mut log, batch(1, 1, 1), 9, NOW).first_offset,
            target
        );
        assert_matches_disk(&log);
    }
}

#[test]
fn truncate_fully_and_start_at_empties_the_log() {
    for start in [1000, 3] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), &cfg());
        fill(&mut log);
        log.truncate_fully_and_start_at(start, NOW).unwrap();
        assert_eq!(log.segment_bases(), [start]);
        assert_eq!(segment_files(dir.path()), [start]);
        assert_eq!(file_len(&log_path(dir.path(), start)), 0);
        assert_eq!(log.log_start_offset(), start);
        assert_eq!(log.log_end_offset(), start);
        assert_eq!(log.recovery_point(), start);
        assert!(epochs(&log).is_empty());
        assert_eq!(log.end_offset_for_epoch(0), (-1, -1));
        assert_out_of_range(log.read(start - 1, 1, None, true), start - 1);
        assert!(log.read(start, 1, None, true).unwrap().slice.is_none());
        assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
        assert_eq!(log.max_timestamp_and_offset().unwrap(), None);

        let info = append(&mut log, batch(2, 100, 5), 4, NOW);
        assert_eq!(info.first_offset, start);
        assert_eq!(epochs(&log), [(4, start)]);
        assert_matches_disk(&log);
        log.close(NOW).unwrap();
        let log = open_with(
            dir.path(),
            &cfg(),
            LogOpenOptions {
                log_start_offset: start,
                clean_shutdown: true,
                now_ms: NOW,
                ..LogOpenOptions::default()
            },
        );
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset()),
            (start, start + 2)
        );
        assert_eq!(epochs(&log), [(4, start)]);
        assert_matches_disk(&log);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any content, any truncation point: afterwards every lookup agrees with the bytes
    /// left, the epoch cache ends at the new log end, and appends and a restart keep it so.
    #[test]
    fn truncation_anywhere_leaves_a_consistent_log(
        batches in prop::collection::vec(
            (prop::collection::vec(0i64..150, 1..6), 0usize..80, 0i32..3),
            1..30,
        ),
        index_interval_bytes in prop_oneof![Just(0u32), 1u32..1000],
        segment_bytes in prop_oneof![Just(1u64 << 30), 300u64..2000],
        target_fraction in 0.0f64..1.0,
    ) {
        let cfg = config(segment_bytes, index_interval_bytes);
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), &cfg);
        let mut epoch = 0;
        // Timestamps rise from batch to batch, with overlap and disorder (deltas up to
        // 150 on steps of 100), so a truncation can cut below the time index's last
        // entry while later batches still raise the max.
        for (i, (deltas, value_len, epoch_step)) in batches.iter().enumerate() {
            epoch += epoch_step;
            let timestamps: Vec<i64> = deltas.iter().map(|d| 1000 + i as i64 * 100 + d).collect();
            append(&mut log, batch_with_timestamps(&timestamps, *value_len), epoch, NOW);
        }
        let leo = log.log_end_offset();
        let target = ((leo as f64) * target_fraction) as i64;
        let epochs_before = epochs(&log);
        log.truncate_to(target, NOW).unwrap();
        let new_end = log.log_end_offset();
        prop_assert!(new_end <= target);
        assert_matches_disk(&log);
        let kept: Vec<(i32, i64)> = epochs_before.into_iter().filter(|e| e.1 < new_end).collect();
        prop_assert_eq!(epochs(&log), kept);

        let info = append(&mut log, batch_with_timestamps(&[500, 2000, 1], 10), epoch + 1, NOW);
        prop_assert_eq!(info.first_offset, new_end);
        assert_matches_disk(&log);
        log.close(NOW).unwrap();
        let log = open(dir.path(), &cfg);
        prop_assert_eq!(log.log_end_offset(), new_end + 3);
        assert_matches_disk(&log);
    }
}

// ---------------------------------------------------------------------------------------
// Follower appends.
// ---------------------------------------------------------------------------------------

#[test]
fn follower_appends_keep_the_leaders_offsets_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(1 << 30, 0);
    let mut log = open(dir.path(), &cfg);
    // 0-2; 5-6 (3-4 compacted away); 7-10 holding only 7 and 10.
    let info = log
        .append_as_follower(&follower_batch(0, 0, &[0, 1, 2], 2, 100), NOW)
        .unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 2));
    let mut buf = follower_batch(5, 0, &[0, 1], 1, 200);
    buf.extend(follower_batch(7, 2, &[0, 3], 3, 300));
    let info = log.append_as_follower(&buf, NOW).unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.batches),
        (5, 10, 2)
    );
    assert_eq!(log.log_end_offset(), 11);
    assert_eq!(epochs(&log), [(0, 0), (2, 7)]);

    // Offsets in a gap read from the next batch.
    for (offset, first) in [(3, 5), (4, 5), (5, 5), (8, 7), (9, 7), (10, 7)] {
        assert_eq!(read_one(&log, offset).0, Some(first), "read from {offset}");
    }
    let on_disk = assert_matches_disk(&log);
    assert_eq!(on_disk[2].records, [(7, 300), (10, 303)]);

    // Below the log end: refused, nothing written.
    let size = file_len(&log_path(dir.path(), 0));
    for (buf, first, leo) in [
        (follower_batch(10, 2, &[0], 0, 400), 10, 11),
        (follower_batch(0, 0, &[0], 0, 400), 0, 11),
        // The second batch overlaps the first of the same buffer.
        (
            [
                follower_batch(11, 2, &[0, 1], 1, 400),
                follower_batch(12, 2, &[0], 0, 400),
            ]
            .concat(),
            12,
            13,
        ),
    ] {
        match log.append_as_follower(&buf, NOW) {
            Err(LogError::UnexpectedAppendOffset {
                first_offset,
                log_end_offset,
            }) => assert_eq!((first_offset, log_end_offset), (first, leo)),
            other => panic!("expected UnexpectedAppendOffset, got {other:?}"),
        }
        assert_eq!(log.log_end_offset(), 11);
        assert_eq!(file_len(&log_path(dir.path(), 0)), size);
    }
    // At the log end, and past it (a gap): accepted.
    log.append_as_follower(&follower_batch(11, 2, &[0], 0, 500), NOW)
        .unwrap();
    log.append_as_follower(&follower_batch(20, 3, &[0, 1], 1, 600), NOW)
        .unwrap();
    assert_eq!(log.log_end_offset(), 22);
    assert_eq!(epochs(&log), [(0, 0), (2, 7), (3, 20)]);
    assert_eq!(read_one(&log, 15).0, Some(20));
    assert_matches_disk(&log);

    log.close(NOW).unwrap();
    let log = open(dir.path(), &cfg);
    assert_eq!(log.log_end_offset(), 22);
    assert_eq!(epochs(&log), [(0, 0), (2, 7), (3, 20)]);
    assert_matches_disk(&log);
}

#[test]
fn a_follower_rolls_at_the_base_offset_of_the_batch_it_appends() {
    let dir = tempfile::tempdir().unwrap();
    let one = follower_batch(0, 0, &[0], 0, 1).len() as u64;
    let cfg = config(2 * one, 4096);
    let mut log = open(dir.path(), &cfg);
    log.append_as_follower(&follower_batch(0, 0, &[0], 0, 1), NOW)
        .unwrap();
    log.append_as_follower(&follower_batch(1, 0, &[0], 0, 2), NOW)
        .unwrap();
    // Full: the next batch, past a gap, starts a segment named after it.
    log.append_as_follower(&follower_batch(100, 0, &[0], 0, 3), NOW)
        .unwrap();
    assert_eq!(log.segment_bases(), [0, 100]);
    assert_eq!(log.log_end_offset(), 101);
    // The gap reads from the next segment.
    assert_eq!(read_one(&log, 50).0, Some(100));
    assert_eq!(read_one(&log, 2).0, Some(100));
    assert_matches_disk(&log);
}
