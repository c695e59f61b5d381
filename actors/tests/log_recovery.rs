//! Integration tests of opening a log after a crash or a fault: torn and corrupt tails,
//! damaged or missing index files (with and without a clean shutdown), files left by
//! interrupted operations, and a partition directory of another topic incarnation.
//!
//! The rule checked throughout: after reopening, every offset and timestamp lookup gives
//! the same answer as before the fault, or — when data was lost — the answer a brute-force
//! scan of the surviving `.log` bytes gives, and nothing past the damage is served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::OpenOptions;
use std::path::Path;

use common::*;
use sluice_actors::log::config::LogConfig;
use sluice_actors::log::files::{LEADER_EPOCH_CHECKPOINT, PARTITION_METADATA};
use sluice_actors::log::log::LogOpenOptions;
use sluice_actors::log::{Log, LogError};

/// Several segments with several index entries each.
fn cfg() -> LogConfig {
    config(1500, 100)
}

const BATCHES: i64 = 40;
/// Batches from this one on are written in leader epoch 1, the others in epoch 0.
const EPOCH_1_FROM: i64 = 30;

/// Appends the standard content: 40 batches of 1-4 records with timestamps out of order
/// inside each batch but rising overall; epoch 0, then epoch 1.
fn fill(log: &mut Log) {
    for i in 0..BATCHES {
        let t = 1_000_000 + i * 100;
        let ts: Vec<i64> = match i % 4 {
            0 => vec![t + 5],
            1 => vec![t + 50, t, t + 20],
            2 => vec![t + 10, t + 90],
            _ => vec![t + 30, t + 1, t + 60, t + 2],
        };
        let epoch = if i < EPOCH_1_FROM { 0 } else { 1 };
        append(
            log,
            batch_with_timestamps(&ts, 20 + (i as usize * 7) % 30),
            epoch,
            NOW,
        );
    }
}

fn build(dir: &Path) -> Log {
    let mut log = open(dir, &cfg());
    fill(&mut log);
    assert!(log.segment_count() >= 4, "{:?}", log.segment_bases());
    log
}

/// The batches of the active (last) segment.
fn active_batches(log: &Log) -> Vec<DiskBatch> {
    let active = *log.segment_bases().last().unwrap();
    scan_dir(log.dir())
        .into_iter()
        .filter(|b| b.segment == active)
        .collect()
}

fn all_timestamps(log: &Log) -> Vec<i64> {
    interesting_timestamps(&scan_dir(log.dir()))
}

/// How the broker went down before the reopen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shutdown {
    /// `close()`, then reopened with the clean-shutdown marker.
    Clean,
    /// `close()`, but reopened without the marker; everything was flushed.
    Unmarked,
    /// The process died: no close; reopened without the marker from the last flush.
    Crash,
}

/// Brings the log down as `how` says; returns the recovery point to reopen with.
fn shut_down(log: Log, how: Shutdown) -> i64 {
    match how {
        Shutdown::Clean | Shutdown::Unmarked => {
            let leo = log.log_end_offset();
            log.close(NOW).unwrap();
            leo
        }
        Shutdown::Crash => {
            // Everything flushed but the last batch, whose index entries exist only in
            // the mapped files' preallocated area.
            let rp = log.recovery_point();
            drop(log);
            rp
        }
    }
}

fn reopen(dir: &Path, how: Shutdown, recovery_point: i64) -> Log {
    match how {
        Shutdown::Clean => open(dir, &cfg()),
        Shutdown::Unmarked | Shutdown::Crash => open_unclean(dir, &cfg(), recovery_point),
    }
}

/// Builds the standard log, flushed up to the last batch, ready to be brought down.
fn build_flushed(dir: &Path) -> Log {
    let mut log = build(dir);
    log.flush(NOW).unwrap();
    // One more batch after the flush, in the active segment.
    let t = 1_000_000 + BATCHES * 100;
    append(&mut log, batch_with_timestamps(&[t + 3, t], 10), 1, NOW);
    log
}

// ---------------------------------------------------------------------------------------
// Torn, garbage and corrupt tails.
// ---------------------------------------------------------------------------------------

#[test]
fn a_torn_tail_is_cut_back_to_the_last_whole_batch() {
    // How many bytes of the last batch survive, given its size: none (a cut exactly at a
    // batch boundary must change nothing before it), part of the header, the header
    // alone, all but the last byte.
    let cuts: [fn(u64) -> u64; 4] = [|_| 0, |_| 30, |_| 61, |size| size - 1];
    for cut in cuts {
        for use_recovery_point in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let log = build_flushed(dir.path());
            let last = active_batches(&log).pop().unwrap();
            let cut_into = cut(last.bytes.len() as u64);
            let before = answers(&log, &all_timestamps(&log));
            let active = *log.segment_bases().last().unwrap();
            let rp = shut_down(log, Shutdown::Crash);
            let path = log_path(dir.path(), active);
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(last.position + cut_into)
                .unwrap();

            let rp = if use_recovery_point { rp } else { 0 };
            let mut log = open_unclean(dir.path(), &cfg(), rp);
            let what = format!("cut {cut_into} bytes into the batch, recovery point {rp}");
            assert_eq!(log.log_end_offset(), last.base_offset, "{what}");
            assert_eq!(file_len(&path), last.position, "{what}");
            assert_matches_disk(&log);
            // Everything before the torn batch reads as it did.
            let now = answers(&log, &[]);
            assert!(now.reads[..] == before.reads[..now.reads.len()], "{what}");
            // Nothing of the torn batch is served, and the log goes on from there.
            assert!(log
                .read(last.base_offset, 1, None, true)
                .unwrap()
                .slice
                .is_none());
            assert_out_of_range(
                log.read(last.base_offset + 1, 1, None, true),
                last.base_offset + 1,
            );
            let info = append(&mut log, batch(2, 5_000_000, 10), 1, NOW);
            assert_eq!(info.first_offset, last.base_offset, "{what}");
            assert_matches_disk(&log);
        }
    }
}

#[test]
fn garbage_after_the_last_batch_is_cut_off() {
    let valid_header = batch(1, 1, 1)[..61].to_vec();
    let garbage: Vec<(&str, Vec<u8>)> = vec![
        (
            "pseudo-random bytes",
            (0..300u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        ("zeros", vec![0; 200]),
        ("fewer bytes than a header", vec![0xab; 20]),
        ("a plausible header and no body", valid_header),
    ];
    for (what, junk) in garbage {
        for how in [Shutdown::Crash, Shutdown::Unmarked] {
            let dir = tempfile::tempdir().unwrap();
            let log = build_flushed(dir.path());
            let before = answers(&log, &all_timestamps(&log));
            let active = *log.segment_bases().last().unwrap();
            let rp = shut_down(log, how);
            let path = log_path(dir.path(), active);
            let len = file_len(&path);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(&junk);
            std::fs::write(&path, &bytes).unwrap();

            let log = reopen(dir.path(), how, rp);
            assert_eq!(file_len(&path), len, "{what} ({how:?}): file cut back");
            assert_answers_eq(&answers(&log, &all_timestamps(&log)), &before);
            assert_matches_disk(&log);
        }
    }
}

/// Flips a byte inside the records of `b` (covered by the CRC).
fn flip_crc_covered_byte(dir: &Path, b: &DiskBatch) {
    let path = log_path(dir, b.segment);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = b.position as usize + b.bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
}

#[test]
fn a_corrupt_batch_in_the_middle_of_the_active_segment_truncates_there() {
    for recover_from_start in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = build_flushed(dir.path());
        let batches = active_batches(&log);
        assert!(
            batches.len() >= 3,
            "{} batches in the active segment",
            batches.len()
        );
        let bad = batches[batches.len() / 2].clone();
        let before = answers(&log, &[]);
        let rp = shut_down(log, Shutdown::Crash);
        flip_crc_covered_byte(dir.path(), &bad);

        let rp = if recover_from_start { 0 } else { rp };
        let mut log = open_unclean(dir.path(), &cfg(), rp);
        assert_eq!(log.log_end_offset(), bad.base_offset);
        assert_eq!(file_len(&log_path(dir.path(), bad.segment)), bad.position);
        assert!(log
            .read(bad.base_offset, 1 << 20, None, true)
            .unwrap()
            .slice
            .is_none());
        for o in bad.base_offset + 1..=before.log_end_offset {
            assert_out_of_range(log.read(o, 1 << 20, None, true), o);
        }
        // Lookups by time never land on the lost records.
        let found = log.offset_for_timestamp(bad.max_timestamp).unwrap();
        assert!(found.is_none_or(|f| f.offset < bad.base_offset));
        let now = answers(&log, &[]);
        assert!(now.reads[..] == before.reads[..now.reads.len()]);
        assert_matches_disk(&log);
        // The epoch that wrote the lost batches now ends at the new log end.
        assert_eq!(log.end_offset_for_epoch(1), (1, bad.base_offset));
        let info = append(&mut log, batch(1, 6_000_000, 1), 2, NOW);
        assert_eq!(info.first_offset, bad.base_offset);
        assert_matches_disk(&log);
    }
}

#[test]
fn a_corrupt_batch_in_an_older_segment_truncates_there_and_deletes_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = build_flushed(dir.path());
    let bases = log.segment_bases();
    let victim_segment = bases[1];
    let in_segment: Vec<DiskBatch> = scan_dir(dir.path())
        .into_iter()
        .filter(|b| b.segment == victim_segment)
        .collect();
    let bad = in_segment[in_segment.len() / 2].clone();
    assert!(
        bad.base_offset < epoch_1_start(),
        "the lost range must cover epoch 1's start"
    );
    let before = answers(&log, &[]);
    shut_down(log, Shutdown::Crash);
    flip_crc_covered_byte(dir.path(), &bad);

    let mut log = open_unclean(dir.path(), &cfg(), 0);
    assert_eq!(log.log_end_offset(), bad.base_offset);
    assert_eq!(log.segment_bases(), bases[..2]);
    assert_eq!(
        segment_files(dir.path()),
        bases[..2],
        "later segment files deleted"
    );
    for later in &bases[2..] {
        assert!(!index_path(dir.path(), *later).exists());
        assert!(!time_index_path(dir.path(), *later).exists());
    }
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".deleted"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for o in bad.base_offset + 1..=before.log_end_offset {
        assert_out_of_range(log.read(o, 1 << 20, None, true), o);
    }
    let now = answers(&log, &[]);
    assert!(now.reads[..] == before.reads[..now.reads.len()]);
    assert_matches_disk(&log);
    // Epoch 1 started after the cut: it is gone from the cache.
    assert_eq!(log.end_offset_for_epoch(0), (0, bad.base_offset));
    assert_eq!(log.end_offset_for_epoch(1), (-1, -1));
    assert_eq!(log.leader_epoch_cache().entries().len(), 1);
    // The truncated segment is the active one again.
    let info = append(&mut log, batch(1, 6_000_000, 1), 2, NOW);
    assert_eq!(info.first_offset, bad.base_offset);
    assert_eq!(log.segment_bases(), bases[..2]);
    log.close(NOW).unwrap();
    let log = open(dir.path(), &cfg());
    assert_matches_disk(&log);
    assert_eq!(log.end_offset_for_epoch(0), (0, bad.base_offset));
}

// ---------------------------------------------------------------------------------------
// Damaged index files.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Fault {
    Deleted,
    /// Every byte zero, the length unchanged.
    Zeroed,
    /// Cut to a length that is not a whole number of entries.
    CutMidEntry,
    /// Cut to one entry fewer.
    CutOneEntry,
    /// Cut to no entries at all.
    CutToEmpty,
}

const FAULTS: [Fault; 5] = [
    Fault::Deleted,
    Fault::Zeroed,
    Fault::CutMidEntry,
    Fault::CutOneEntry,
    Fault::CutToEmpty,
];

fn damage(path: &Path, entry_size: u64, entries: u64, fault: Fault) {
    let file = || OpenOptions::new().write(true).open(path).unwrap();
    match fault {
        Fault::Deleted => std::fs::remove_file(path).unwrap(),
        Fault::Zeroed => {
            let len = file_len(path);
            std::fs::write(path, vec![0u8; len as usize]).unwrap();
        }
        Fault::CutMidEntry => file()
            .set_len(entries.saturating_sub(1) * entry_size + entry_size / 2)
            .unwrap(),
        Fault::CutOneEntry => file()
            .set_len(entries.saturating_sub(1) * entry_size)
            .unwrap(),
        Fault::CutToEmpty => file().set_len(0).unwrap(),
    }
}

/// For every fault, on either index file, of the oldest and of the active segment, after
/// each kind of shutdown: reopening answers every lookup exactly as before the fault, and
/// the log keeps working afterwards.
#[test]
fn damaged_indexes_give_the_same_answers_after_reopening() {
    let mut scenarios = 0;
    for how in [Shutdown::Clean, Shutdown::Unmarked, Shutdown::Crash] {
        for time_index in [false, true] {
            for oldest in [true, false] {
                for fault in FAULTS {
                    let what = format!(
                        "{fault:?} {} of the {} segment, {how:?}",
                        if time_index { ".timeindex" } else { ".index" },
                        if oldest { "oldest" } else { "active" },
                    );
                    let dir = tempfile::tempdir().unwrap();
                    let log = build_flushed(dir.path());
                    let timestamps = all_timestamps(&log);
                    let before = answers(&log, &timestamps);
                    let bases = log.segment_bases();
                    let base = if oldest {
                        bases[0]
                    } else {
                        *bases.last().unwrap()
                    };
                    let rp = shut_down(log, how);

                    let (path, entry_size, entries) = if time_index {
                        let p = time_index_path(dir.path(), base);
                        let n = time_index_entries(&p).len();
                        (p, 12, n as u64)
                    } else {
                        let p = index_path(dir.path(), base);
                        let n = offset_index_entries(&p).len();
                        (p, 8, n as u64)
                    };
                    assert!(entries >= 2, "{what}: only {entries} entries to damage");
                    damage(&path, entry_size, entries, fault);

                    let mut log = reopen(dir.path(), how, rp);
                    let after = answers(&log, &timestamps);
                    eprintln!("checking {what}");
                    assert_answers_eq(&after, &before);
                    assert_eq!(log.segment_bases(), bases, "{what}");
                    // The log keeps working: append, close, reopen, still right.
                    let t = 3_000_000;
                    append(&mut log, batch_with_timestamps(&[t + 9, t], 10), 1, NOW);
                    assert_matches_disk(&log);
                    log.close(NOW).unwrap();
                    let log = open(dir.path(), &cfg());
                    assert_matches_disk(&log);
                    scenarios += 1;
                }
            }
        }
    }
    assert_eq!(scenarios, 3 * 2 * 2 * FAULTS.len());
}

#[test]
fn rebuilding_an_old_segments_index_keeps_the_later_leader_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(dir.path());
    let epochs_before = log.leader_epoch_cache().entries().to_vec();
    assert_eq!(epochs_before.len(), 2);
    let answers_before = (log.end_offset_for_epoch(0), log.end_offset_for_epoch(1));
    assert_eq!(answers_before.0, (0, epoch_1_start()));
    let first = log.segment_bases()[0];
    log.close(NOW).unwrap();
    std::fs::remove_file(index_path(dir.path(), first)).unwrap();

    let log = open(dir.path(), &cfg());
    assert_eq!(log.leader_epoch_cache().entries(), &epochs_before[..]);
    assert_eq!(
        (log.end_offset_for_epoch(0), log.end_offset_for_epoch(1)),
        answers_before
    );
}

/// The first offset of batch `EPOCH_1_FROM` in the standard content.
fn epoch_1_start() -> i64 {
    (0..EPOCH_1_FROM)
        .map(|i| match i % 4 {
            0 => 1,
            1 => 3,
            2 => 2,
            _ => 4,
        })
        .sum()
}

#[test]
fn a_lost_leader_epoch_checkpoint_is_rebuilt_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(dir.path());
    let epochs_before = log.leader_epoch_cache().entries().to_vec();
    assert_eq!(epochs_before[1].start_offset, epoch_1_start());
    log.close(NOW).unwrap();
    std::fs::remove_file(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
    let log = open_unclean(dir.path(), &cfg(), 0);
    assert_eq!(log.leader_epoch_cache().entries(), &epochs_before[..]);
}

// ---------------------------------------------------------------------------------------
// Leftovers of interrupted operations; foreign directories.
// ---------------------------------------------------------------------------------------

#[test]
fn files_left_by_interrupted_operations_are_removed_on_open() {
    for how in [Shutdown::Clean, Shutdown::Crash] {
        let dir = tempfile::tempdir().unwrap();
        let log = build_flushed(dir.path());
        let before = answers(&log, &all_timestamps(&log));
        let bases = log.segment_bases();
        let rp = shut_down(log, how);
        let leftovers = [
            // A deletion that crashed between the rename and the remove.
            "00000000000000000000.log.deleted".to_string(),
            "00000000000000000000.index.deleted".to_string(),
            "00000000000000000000.timeindex.deleted".to_string(),
            format!("{:020}.log.deleted", bases[1] - 1),
            // A cleaner run that crashed while writing.
            format!("{:020}.log.cleaned", bases[1]),
            format!("{:020}.index.cleaned", bases[1]),
            format!("{:020}.timeindex.cleaned", bases[1]),
            // Atomic checkpoint writes that crashed before the rename.
            format!("{LEADER_EPOCH_CHECKPOINT}.tmp"),
            "partition.tmp".to_string(),
        ];
        for name in &leftovers {
            std::fs::write(dir.path().join(name), b"left over by a crash").unwrap();
        }
        let log = reopen(dir.path(), how, rp);
        for name in &leftovers {
            assert!(
                !dir.path().join(name).exists(),
                "{how:?}: {name} is still there"
            );
        }
        assert_eq!(log.segment_bases(), bases);
        assert_answers_eq(&answers(&log, &all_timestamps(&log)), &before);
    }
}

#[test]
fn an_index_without_its_log_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = build(dir.path());
    let bases = log.segment_bases();
    log.close(NOW).unwrap();
    let orphan = index_path(dir.path(), 9999);
    let orphan_time = time_index_path(dir.path(), 9999);
    std::fs::write(&orphan, [0u8; 16]).unwrap();
    std::fs::write(&orphan_time, [0u8; 24]).unwrap();
    let log = open(dir.path(), &cfg());
    assert!(!orphan.exists() && !orphan_time.exists());
    assert_eq!(log.segment_bases(), bases);
}

#[test]
fn a_directory_of_another_topic_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = |id: &str| LogOpenOptions {
        topic_id: Some(id.to_string()),
        clean_shutdown: true,
        now_ms: NOW,
        ..LogOpenOptions::default()
    };
    let mut log = Log::open(dir.path(), cfg(), opts("AAAAAAAAAAAAAAAAAAAAAA")).unwrap();
    append(&mut log, batch(3, 100, 10), 0, NOW);
    log.close(NOW).unwrap();
    let metadata = dir.path().join(PARTITION_METADATA);
    let written = std::fs::read_to_string(&metadata).unwrap();
    assert!(
        written.contains("topic_id: AAAAAAAAAAAAAAAAAAAAAA"),
        "{written}"
    );

    match Log::open(dir.path(), cfg(), opts("BBBBBBBBBBBBBBBBBBBBBB")) {
        Err(LogError::TopicIdMismatch {
            path,
            expected,
            found,
        }) => {
            assert_eq!(path, dir.path());
            assert_eq!(expected, "BBBBBBBBBBBBBBBBBBBBBB");
            assert_eq!(found, "AAAAAAAAAAAAAAAAAAAAAA");
        }
        other => panic!("expected TopicIdMismatch, got {other:?}"),
    }
    // Refusing changed nothing: the metadata and the data are as they were.
    assert_eq!(std::fs::read_to_string(&metadata).unwrap(), written);
    let log = Log::open(dir.path(), cfg(), opts("AAAAAAAAAAAAAAAAAAAAAA")).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert_matches_disk(&log);
    drop(log);
    // Without an expected id, any directory opens.
    let log = open(dir.path(), &cfg());
    assert_eq!(log.log_end_offset(), 3);
}
