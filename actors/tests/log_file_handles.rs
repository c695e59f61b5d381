//! What many idle logs cost the process in file descriptors and memory maps: a broker
//! with 10,000 partitions must fit under a few tens of thousands of each. An idle log holds
//! one descriptor (its active segment's `.log`), however many segments it has; an index
//! holds no descriptor, and no map until its first entry; a rolled segment's `.log` is
//! opened by a read and closed again by [`Log::close_inactive_files`].
//!
//! The counts come from `/proc/self`, so this file holds a single test: the test harness
//! runs the tests of one binary in threads of one process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sluice_actors::log::Log;

/// Logs in the test; half of them get three segments.
const LOGS: usize = 200;
/// Descriptors and maps the process may gain besides the logs' (the test harness,
/// allocator arenas).
const SLACK: usize = 16;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Every segment but the active one has its `.log` closed, and no index is mapped (the
/// segments are smaller than `index.interval.bytes`, so they have no index entry).
fn assert_idle(log: &Log) {
    let last = log.segment_count() - 1;
    for (i, segment) in log.segments().enumerate() {
        assert_eq!(
            segment.has_open_file(),
            i == last,
            "segment {} of {} (active: {})",
            segment.base_offset(),
            log.dir().display(),
            i == last
        );
        assert_eq!(segment.indexes_mapped(), (false, false));
    }
}

#[test]
fn idle_logs_hold_one_descriptor_each_and_no_index_map() {
    let root = tempfile::tempdir().unwrap();
    // Segments of 2 KiB, index entries every 4 KiB: no segment gets an index entry.
    let cfg = config(2048, 4096);
    let (fds_before, maps_before) = (open_fds(), maps());

    let mut logs: Vec<Log> = (0..LOGS)
        .map(|i| open(&root.path().join(format!("t-{i}")), &cfg))
        .collect();
    for log in logs.iter_mut().step_by(2) {
        for _ in 0..6 {
            append(log, batch(1, NOW, 700), 0, NOW);
        }
        assert_eq!(log.segment_count(), 3, "{}", log.dir().display());
    }
    for log in &logs {
        assert_idle(log);
    }
    assert!(
        open_fds() <= fds_before + LOGS + SLACK,
        "{LOGS} logs hold {} descriptors",
        open_fds() - fds_before
    );
    assert!(
        maps() <= maps_before + SLACK,
        "{LOGS} logs hold {} maps",
        maps().saturating_sub(maps_before)
    );

    // The same after a clean close and a reopen.
    for log in logs.drain(..) {
        log.close(NOW).unwrap();
    }
    let mut logs: Vec<Log> = (0..LOGS)
        .map(|i| open(&root.path().join(format!("t-{i}")), &cfg))
        .collect();
    for log in &logs {
        assert_idle(log);
    }
    assert!(open_fds() <= fds_before + LOGS + SLACK);
    assert!(maps() <= maps_before + SLACK);

    // A read of a rolled segment opens its file; closing idle files closes it again, and a
    // later read reopens it.
    let log = &mut logs[0];
    let (first, bytes) = read_one(log, 0);
    assert_eq!(first, Some(0));
    assert!(!bytes.is_empty());
    assert!(log.segments().next().unwrap().has_open_file());
    log.close_inactive_files().unwrap();
    assert_idle(log);
    assert_eq!(read_one(log, 0), (first, bytes));

    // An index is mapped from its first entry on, and still holds no descriptor.
    let dense = config(1 << 20, 128);
    let mut log = open(&root.path().join("dense-0"), &dense);
    let fds = open_fds();
    for i in 0..4 {
        append(&mut log, batch(1, NOW + i, 300), 0, NOW);
    }
    let active = log.segments().last().unwrap();
    assert!(active.offset_index().entries() > 0);
    assert_eq!(active.indexes_mapped(), (true, true));
    assert_eq!(open_fds(), fds, "mapping the indexes kept a descriptor");
}
