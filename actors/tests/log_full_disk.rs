//! A full disk under a log: the data directory lives on a small tmpfs mounted by the test.
//! Appends go on until the file system refuses one (ENOSPC); the refused append is an
//! error (never acknowledged), nothing half-written is ever readable, every acknowledged
//! batch reads back, the index files never fault the process (SIGBUS), and once space is
//! freed appends resume on the same open log — then survive a reopen.
//!
//! Mounting needs the privilege to mount (root, or a user namespace): where the machine
//! does not allow it, the test prints why and returns without asserting anything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sluice_actors::log::LogError;

/// A tmpfs mounted at a fresh temporary directory, unmounted on drop.
struct SmallFs {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallFs {
    /// `None` (with the reason printed) when this machine does not let the test mount.
    fn mount(bytes: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("fs");
        std::fs::create_dir(&mount).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes}"))
            .arg("tmpfs")
            .arg(&mount)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs { _dir: dir, mount }),
            Ok(o) => {
                println!(
                    "SKIPPED: cannot mount a tmpfs here ({}): the full-disk test needs the \
                     privilege to mount",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("SKIPPED: cannot run mount ({e}): the full-disk test needs it");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

#[test]
fn enospc_refuses_the_append_keeps_every_acknowledged_batch_and_recovers_when_space_frees() {
    let Some(fs) = SmallFs::mount(4 << 20) else {
        return;
    };
    // A filler that takes a chunk of the space, deleted later to free it.
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![1u8; 1 << 20]).unwrap();
    let dir = fs.path().join("topic-0");
    // Small segments and a dense index: rolls and index pages happen while filling up
    // (each new segment preallocates sparse index files of segment.index.bytes).
    let mut cfg = config(256 * 1024, 256);
    cfg.segment_index_bytes = 1 << 20;
    let mut log = open(&dir, &cfg);

    let mut acknowledged: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut refused = None;
    for i in 0..10_000i64 {
        let records = batch(4, NOW + i, 1000 + (i as usize % 7) * 100);
        match log.append_as_leader(&records, 0, NOW) {
            Ok(info) => {
                acknowledged.push((info.first_offset, as_stored(&records, info.first_offset, 0)))
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let error = refused.expect("a 4 MiB file system never filled up");
    match &error {
        LogError::Io { source, .. } => assert_eq!(
            source.raw_os_error(),
            Some(libc_enospc()),
            "expected ENOSPC, got {error}"
        ),
        other => panic!("expected an I/O error, got {other}"),
    }
    let end = log.log_end_offset();
    let (last_offset, _) = acknowledged.last().unwrap();
    assert_eq!(end, last_offset + 4, "the refused append moved the log end");

    // Every acknowledged batch reads back byte for byte, and nothing else is there.
    check_reads(&log, &acknowledged);
    assert_matches_disk(&log);
    // Further appends keep failing cleanly while the disk is full (no SIGBUS, no panic).
    for _ in 0..3 {
        let records = batch(4, NOW, 2000);
        assert!(log.append_as_leader(&records, 0, NOW).is_err());
        assert_eq!(log.log_end_offset(), end);
    }

    // Space comes back: appends resume on the same open log, at the same offset.
    std::fs::remove_file(&filler).unwrap();
    for i in 0..50 {
        let records = batch(4, NOW + i, 1000);
        let info = log.append_as_leader(&records, 0, NOW).unwrap();
        assert_eq!(info.first_offset, end + i * 4);
        acknowledged.push((info.first_offset, as_stored(&records, info.first_offset, 0)));
    }
    check_reads(&log, &acknowledged);
    assert_matches_disk(&log);

    // And everything is there after a reopen (clean close, then an unclean open).
    log.close(NOW).unwrap();
    let log = open_unclean(&dir, &cfg, 0);
    check_reads(&log, &acknowledged);
    assert_matches_disk(&log);
}

/// Reads each acknowledged batch back and compares bytes (as stored: offsets assigned).
fn check_reads(log: &sluice_actors::log::Log, acknowledged: &[(i64, Vec<u8>)]) {
    for (offset, bytes) in acknowledged {
        let (first, read) = read_one(log, *offset);
        assert_eq!(first, Some(*offset), "batch at {offset}");
        assert_eq!(&read[..bytes.len()], &bytes[..], "batch at {offset}");
    }
}

fn libc_enospc() -> i32 {
    28
}

/// The index trap: with the file system full to the last byte, a small batch still fits in
/// the log file's last (allocated) page, but its index entry is the first of a new page of
/// the sparse index file. A store through the map there would SIGBUS the process; the
/// index reserves its blocks with ordinary writes instead, so the append either succeeds
/// (blocks reserved earlier) or fails with ENOSPC — and the process lives to check it.
#[test]
fn a_full_disk_never_faults_the_index_map() {
    let Some(fs) = SmallFs::mount(2 << 20) else {
        return;
    };
    let dir = fs.path().join("topic-0");
    // An index entry for every batch: 512 batches fill the first 4 KiB page of the
    // offset index exactly.
    let cfg = config(1 << 30, 0);
    let mut log = open(&dir, &cfg);
    for i in 0..512 {
        append(&mut log, batch(1, NOW + i, 0), 0, NOW);
    }
    // Fill the file system to its last byte.
    let filler = fs.path().join("filler");
    fill_up(&filler);
    let mut outcomes = (0, 0);
    for i in 0..64 {
        let records = batch(1, NOW + 512 + i, 0);
        match log.append_as_leader(&records, 0, NOW) {
            Ok(_) => outcomes.0 += 1,
            Err(LogError::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc_enospc()));
                outcomes.1 += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    println!(
        "appends on a full disk: {} accepted, {} refused",
        outcomes.0, outcomes.1
    );
    assert!(outcomes.1 > 0, "the disk never refused an append");
    assert_matches_disk(&log);
    std::fs::remove_file(&filler).unwrap();
    append(&mut log, batch(1, NOW + 1000, 0), 0, NOW);
    assert_matches_disk(&log);
}

/// Writes `path` until the file system has no byte left.
fn fill_up(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    for chunk in [65536usize, 4096, 512, 64, 8, 1] {
        let buf = vec![7u8; chunk];
        while f.write_all(&buf).is_ok() {}
    }
    let _ = f.flush();
}
