//! Producer-state snapshot files: `<partition dir>/<20-digit offset>.snapshot`, the
//! [`ProducerStateManager`](super::producer_state::ProducerStateManager) as of that offset
//! (every batch below it applied, none at or above it), as Kafka's `ProducerStateManager`
//! keeps them.
//!
//! Taken when a segment rolls (offset = the new segment's base) and at clean shutdown
//! (offset = the log end offset). At open the latest readable snapshot at or below the log
//! end offset is loaded and only the batch headers from its offset on are replayed.
//! Snapshots above the log end offset (a truncated log) are deleted when the state is
//! loaded; after retention, those below the log start offset go, and only the newest
//! [`SNAPSHOTS_TO_KEEP`] are kept after each write.
//!
//! # Format (version 1, integers big-endian)
//! `magic "SLPS"`, `version: u16`, `crc32c: u32` of everything after it, `count: u32`, then
//! per producer: `producer_id: i64`, `epoch: i16`, `batches: u8`, then per batch (oldest
//! first) `first_seq: i32`, `last_seq: i32`, `base_offset: i64`, `last_offset: i64`,
//! `log_append_time: i64`. A file whose magic, version, checksum or length is wrong is
//! ignored (an older snapshot or a full scan is used instead).
//!
//! Crash behaviour: files are written temp-then-rename ([`files::write_atomically`]), so a
//! crash leaves the old file set plus at most a `.tmp` that `Log::open` removes.
//!
//! Every function here does blocking file I/O: call them off the arbiter threads.

use std::path::{Path, PathBuf};

use crate::log::files::{self, SNAPSHOT_SUFFIX};
use crate::log::{LogError, Result};

/// Snapshots kept after a write (Kafka keeps a couple for a follower truncating a little).
pub(crate) const SNAPSHOTS_TO_KEEP: usize = 2;

pub(crate) const MAGIC: &[u8; 4] = b"SLPS";
pub(crate) const VERSION: u16 = 1;
/// Magic, version, checksum.
pub(crate) const HEADER_SIZE: usize = 4 + 2 + 4;

/// `<dir>/<20-digit offset>.snapshot`.
pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    files::offset_file(dir, offset, SNAPSHOT_SUFFIX)
}

/// Wraps an encoded body in the header (magic, version, checksum).
pub(crate) fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a framed snapshot, or why it cannot be used.
pub(crate) fn unframe(bytes: &[u8]) -> std::result::Result<&[u8], String> {
    if bytes.len() < HEADER_SIZE {
        return Err(format!("{} bytes, shorter than the header", bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err("bad magic".into());
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(format!("unknown version {version}"));
    }
    let crc = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[HEADER_SIZE..];
    let actual = crc32c::crc32c(body);
    if crc != actual {
        return Err(format!("checksum {actual:#010x} != stored {crc:#010x}"));
    }
    Ok(body)
}

/// Offsets of the snapshot files in `dir`, ascending.
pub(crate) fn list(dir: &Path) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LogError::io("list", dir))? {
        let entry = entry.map_err(LogError::io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some((offset, SNAPSHOT_SUFFIX)) = files::parse_offset_file_name(name) {
            out.push(offset);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn remove(dir: &Path, offset: i64) -> Result<()> {
    let path = snapshot_path(dir, offset);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("remove", &path)(e)),
    }
}

/// Writes the snapshot at `offset` crash-safely, then keeps only the newest
/// [`SNAPSHOTS_TO_KEEP`].
pub(crate) fn write(dir: &Path, offset: i64, bytes: &[u8]) -> Result<()> {
    files::write_atomically(&snapshot_path(dir, offset), bytes)?;
    let offsets = list(dir)?;
    let excess = offsets.len().saturating_sub(SNAPSHOTS_TO_KEEP);
    for old in &offsets[..excess] {
        remove(dir, *old)?;
    }
    Ok(())
}

/// Deletes the snapshots above `log_end_offset` (after a truncation). Returns how many.
pub(crate) fn delete_above(dir: &Path, log_end_offset: i64) -> Result<usize> {
    let doomed: Vec<i64> = list(dir)?
        .into_iter()
        .filter(|o| *o > log_end_offset)
        .collect();
    for offset in &doomed {
        remove(dir, *offset)?;
    }
    Ok(doomed.len())
}

/// Deletes the snapshots below `log_start_offset` (after retention). Returns how many.
pub(crate) fn delete_below(dir: &Path, log_start_offset: i64) -> Result<usize> {
    let doomed: Vec<i64> = list(dir)?
        .into_iter()
        .filter(|o| *o < log_start_offset)
        .collect();
    for offset in &doomed {
        remove(dir, *offset)?;
    }
    Ok(doomed.len())
}

/// Reads the snapshot at `offset`: `Ok(None)` if it is missing.
pub(crate) fn read(dir: &Path, offset: i64) -> Result<Option<Vec<u8>>> {
    let path = snapshot_path(dir, offset);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io("read", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn frames_detect_corruption_and_truncation() {
        let framed = frame(b"hello");
        assert_eq!(unframe(&framed).unwrap(), b"hello");
        let mut flipped = framed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(unframe(&flipped).is_err());
        assert!(unframe(&framed[..framed.len() - 1]).is_err());
        assert!(unframe(&framed[..3]).is_err());
        let mut version = framed.clone();
        version[5] = 9;
        assert!(unframe(&version).unwrap_err().contains("version"));
    }

    #[test]
    fn writes_keep_the_newest_and_deletes_bound_by_offsets() {
        let dir = tempfile::tempdir().unwrap();
        for offset in [10, 20, 30] {
            write(dir.path(), offset, &frame(b"x")).unwrap();
        }
        assert_eq!(list(dir.path()).unwrap(), vec![20, 30]);
        assert_eq!(delete_above(dir.path(), 25).unwrap(), 1);
        assert_eq!(list(dir.path()).unwrap(), vec![20]);
        write(dir.path(), 40, &frame(b"y")).unwrap();
        assert_eq!(delete_below(dir.path(), 40).unwrap(), 1);
        assert_eq!(list(dir.path()).unwrap(), vec![40]);
        assert_eq!(read(dir.path(), 40).unwrap().unwrap(), frame(b"y"));
        assert!(read(dir.path(), 41).unwrap().is_none());
    }
}
