//! Sparse indexes of a segment: [`OffsetIndex`] and [`TimeIndex`].
//!
//! Both are memory-mapped files of fixed-size big-endian entries, preallocated to
//! `segment.index.bytes` while their segment is active and trimmed to their entries when
//! it is rolled or closed, as in Kafka. An entry is added every `index.interval.bytes` of
//! log. No index keeps a file descriptor; an index without entries is left empty on disk
//! (preallocated at its first entry), and a file is mapped only from its first use until
//! its segment stops being active: see `mmap`.
//!
//! - `.index`: 8-byte entries `relative offset: i32, file position: i32`, both strictly
//!   increasing. The offset is the *last* offset of a batch, the position where that
//!   batch starts.
//! - `.timeindex`: 12-byte entries `timestamp: i64, relative offset: i32`, timestamps
//!   strictly increasing, offsets non-decreasing: "every record up to this offset has a
//!   timestamp at most this", so a lookup starts scanning at the offset found.
//!
//! Crash behaviour: after an unclean shutdown the active segment's index files may end in
//! a preallocated zero tail; opening stops counting at the first entry that breaks the
//! ordering and, if only zeros follow, treats it as that tail. Anything else is
//! corruption ([`IndexLoad::Corrupt`]) and the segment rebuilds the index from its log.
//! Not thread-safe; owned by one segment.

use std::path::Path;

use crate::log::mmap::IndexFile;
use crate::log::Result;

const OFFSET_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

/// What opening an index file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexLoad {
    /// Entries are well ordered (possibly followed by a zero tail).
    Ok,
    /// The file breaks the format: it must be rebuilt from the log.
    Corrupt(String),
}

/// An offset and the file position of the batch holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

/// A timestamp and the offset from which to search for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

fn i32_at(b: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]])
}
fn i64_at(b: &[u8], pos: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[pos..pos + 8]);
    i64::from_be_bytes(a)
}

/// Counts the well-ordered leading entries. `ordered(prev, cur)` says whether `cur` may
/// follow `prev`.
fn count_valid(
    file: &IndexFile,
    entry_size: usize,
    ordered: impl Fn(&[u8], &[u8]) -> bool,
    valid: impl Fn(&[u8]) -> bool,
) -> (usize, IndexLoad) {
    let n = file.entries();
    for i in 0..n {
        let Some(cur) = file.entry(i) else { break };
        let fits =
            valid(cur) && (i == 0 || file.entry(i - 1).is_some_and(|prev| ordered(prev, cur)));
        if !fits {
            return if file.is_zero_from(i * entry_size) {
                (i, IndexLoad::Ok)
            } else {
                (i, IndexLoad::Corrupt(format!("entry {i} is out of order")))
            };
        }
    }
    (n, IndexLoad::Ok)
}

/// Binary search for the last entry whose key is <= `target`.
fn last_at_or_below(entries: usize, key: impl Fn(usize) -> i64, target: i64) -> Option<usize> {
    if entries == 0 || key(0) > target {
        return None;
    }
    let (mut lo, mut hi) = (0, entries - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if key(mid) <= target {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// How many leading entries are for offsets below `offset` (entries ordered by offset).
fn entries_below(entries: usize, offset_of: impl Fn(usize) -> Option<i64>, offset: i64) -> usize {
    last_at_or_below(entries, |i| offset_of(i).unwrap_or(i64::MAX), offset - 1).map_or(0, |i| i + 1)
}

/// Sparse map from offsets to file positions in a segment's `.log`.
#[derive(Debug)]
pub struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    /// Opens or creates the index of the segment starting at `base_offset`.
    pub fn open(path: &Path, base_offset: i64) -> Result<(OffsetIndex, IndexLoad)> {
        let (mut file, partial) = IndexFile::open(path, OFFSET_ENTRY)?;
        let (n, mut load) = count_valid(
            &file,
            OFFSET_ENTRY,
            |p, c| i32_at(c, 0) > i32_at(p, 0) && i32_at(c, 4) > i32_at(p, 4),
            |c| i32_at(c, 0) >= 0 && i32_at(c, 4) >= 0,
        );
        if partial && load == IndexLoad::Ok && file.capacity() % OFFSET_ENTRY != 0 {
            load = IndexLoad::Corrupt("length is not a multiple of 8".into());
        }
        file.set_entries(n);
        Ok((OffsetIndex { file, base_offset }, load))
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn path(&self) -> &Path {
        self.file.path()
    }
    pub fn entries(&self) -> usize {
        self.file.entries()
    }
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }
    /// Whether the file is mapped now (not before its first entry, nor after
    /// [`Self::unmap`] until the next lookup).
    pub fn is_mapped(&self) -> bool {
        self.file.is_mapped()
    }

    /// Entry `i`.
    pub fn entry(&self, i: usize) -> Option<OffsetPosition> {
        self.file.entry(i).map(|e| OffsetPosition {
            offset: self.base_offset + i32_at(e, 0) as i64,
            position: i32_at(e, 4) as u32,
        })
    }

    /// The last entry, or (base offset, 0) if there is none.
    pub fn last_entry(&self) -> OffsetPosition {
        self.entries()
            .checked_sub(1)
            .and_then(|i| self.entry(i))
            .unwrap_or(OffsetPosition {
                offset: self.base_offset,
                position: 0,
            })
    }

    /// The last entry at or below `target`, or (base offset, 0): where a scan for
    /// `target` starts.
    pub fn lookup(&self, target: i64) -> OffsetPosition {
        let rel = target - self.base_offset;
        last_at_or_below(
            self.entries(),
            |i| {
                self.entry(i)
                    .map_or(i64::MAX, |e| e.offset - self.base_offset)
            },
            rel,
        )
        .and_then(|i| self.entry(i))
        .unwrap_or(OffsetPosition {
            offset: self.base_offset,
            position: 0,
        })
    }

    /// Adds an entry; ignored unless both offset and position grow (idempotent on
    /// rebuild).
    pub fn append(&mut self, offset: i64, position: u32) -> Result<()> {
        if self.entries() > 0 {
            let last = self.last_entry();
            if offset <= last.offset || position <= last.position {
                return Ok(());
            }
        }
        let mut e = [0u8; OFFSET_ENTRY];
        e[..4].copy_from_slice(&((offset - self.base_offset) as i32).to_be_bytes());
        e[4..].copy_from_slice(&(position as i32).to_be_bytes());
        self.file.append(&e)
    }

    /// Allocates disk blocks for the next `n` entries now, so that a full disk fails the
    /// append before its batches are written rather than half-way (or with a SIGBUS).
    pub fn reserve(&mut self, n: usize) -> Result<()> {
        self.file.reserve_entries(n)
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let keep = entries_below(self.entries(), |i| self.entry(i).map(|e| e.offset), offset);
        self.file.truncate_entries(keep)
    }

    /// Drops every entry.
    pub fn reset(&mut self) -> Result<()> {
        self.file.truncate_entries(0)
    }

    pub fn resize(&mut self, bytes: usize) -> Result<()> {
        self.file.resize(bytes)
    }
    pub fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }
    pub fn flush(&self) -> Result<()> {
        self.file.flush()
    }
    /// Gives the map back until the next lookup (a segment that stopped being active).
    pub fn unmap(&mut self) -> Result<()> {
        self.file.unmap()
    }
    pub fn rename(&mut self, to: &Path) -> Result<()> {
        self.file.rename(to)
    }
}

/// Sparse map from timestamps to offsets in a segment.
#[derive(Debug)]
pub struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    /// Opens or creates the time index of the segment starting at `base_offset`.
    pub fn open(path: &Path, base_offset: i64) -> Result<(TimeIndex, IndexLoad)> {
        let (mut file, partial) = IndexFile::open(path, TIME_ENTRY)?;
        let (n, mut load) = count_valid(
            &file,
            TIME_ENTRY,
            |p, c| i64_at(c, 0) > i64_at(p, 0) && i32_at(c, 8) >= i32_at(p, 8),
            |c| i32_at(c, 8) >= 0,
        );
        if partial && load == IndexLoad::Ok {
            load = IndexLoad::Corrupt("length is not a multiple of 12".into());
        }
        file.set_entries(n);
        Ok((TimeIndex { file, base_offset }, load))
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }
    pub fn entries(&self) -> usize {
        self.file.entries()
    }
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }
    /// Whether the file is mapped now (not before its first entry, nor after
    /// [`Self::unmap`] until the next lookup).
    pub fn is_mapped(&self) -> bool {
        self.file.is_mapped()
    }

    pub fn entry(&self, i: usize) -> Option<TimestampOffset> {
        self.file.entry(i).map(|e| TimestampOffset {
            timestamp: i64_at(e, 0),
            offset: self.base_offset + i32_at(e, 8) as i64,
        })
    }

    /// The last entry, if any: for a rolled segment, its max timestamp.
    pub fn last_entry(&self) -> Option<TimestampOffset> {
        self.entries().checked_sub(1).and_then(|i| self.entry(i))
    }

    /// The last entry with timestamp <= `target`, or (-1, base offset): every record
    /// with timestamp >= `target` is at or after the returned offset's batch.
    pub fn lookup(&self, target: i64) -> TimestampOffset {
        last_at_or_below(
            self.entries(),
            |i| self.entry(i).map_or(i64::MAX, |e| e.timestamp),
            target,
        )
        .and_then(|i| self.entry(i))
        .unwrap_or(TimestampOffset {
            timestamp: -1,
            offset: self.base_offset,
        })
    }

    /// Adds an entry if `timestamp` is above the last one. `force` (a roll or a close)
    /// grows a full file by one entry rather than losing the segment's max timestamp.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64, force: bool) -> Result<()> {
        if let Some(last) = self.last_entry() {
            if timestamp <= last.timestamp || offset < last.offset {
                return Ok(());
            }
        }
        if self.file.is_full() {
            if !force {
                return Ok(());
            }
            self.file.resize((self.entries() + 1) * TIME_ENTRY)?;
        }
        let mut e = [0u8; TIME_ENTRY];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&((offset - self.base_offset) as i32).to_be_bytes());
        self.file.append(&e)
    }

    /// Allocates disk blocks for the next `n` entries now, so that a full disk fails the
    /// append before its batches are written rather than half-way (or with a SIGBUS).
    pub fn reserve(&mut self, n: usize) -> Result<()> {
        self.file.reserve_entries(n)
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let keep = entries_below(self.entries(), |i| self.entry(i).map(|e| e.offset), offset);
        self.file.truncate_entries(keep)
    }

    /// Drops every entry.
    pub fn reset(&mut self) -> Result<()> {
        self.file.truncate_entries(0)
    }
    pub fn resize(&mut self, bytes: usize) -> Result<()> {
        self.file.resize(bytes)
    }
    pub fn trim(&mut self) -> Result<()> {
        self.file.trim()
    }
    pub fn flush(&self) -> Result<()> {
        self.file.flush()
    }
    /// Gives the map back until the next lookup (a segment that stopped being active).
    pub fn unmap(&mut self) -> Result<()> {
        self.file.unmap()
    }
    pub fn rename(&mut self, to: &Path) -> Result<()> {
        self.file.rename(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let (mut idx, load) = OffsetIndex::open(&path, 100).unwrap();
        assert_eq!(load, IndexLoad::Ok);
        idx.resize(80).unwrap();
        assert_eq!(
            idx.lookup(150),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        for i in 1..=5 {
            idx.append(100 + i * 10, i as u32 * 1000).unwrap();
        }
        assert_eq!(idx.lookup(99).offset, 100);
        assert_eq!(
            idx.lookup(125),
            OffsetPosition {
                offset: 120,
                position: 2000
            }
        );
        assert_eq!(idx.lookup(150).offset, 150);
        assert_eq!(idx.lookup(1_000_000).offset, 150);
        idx.truncate_to(130).unwrap();
        assert_eq!(idx.entries(), 2);
        assert_eq!(idx.last_entry().offset, 120);
        // Reopen with the preallocated zero tail: only real entries count.
        drop(idx);
        let (idx, load) = OffsetIndex::open(&path, 100).unwrap();
        assert_eq!(load, IndexLoad::Ok);
        assert_eq!(idx.entries(), 2);
    }

    #[test]
    fn garbage_index_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut bytes = Vec::new();
        for (o, p) in [(5i32, 100i32), (3, 50), (1, 1)] {
            bytes.extend(o.to_be_bytes());
            bytes.extend(p.to_be_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        let (_, load) = OffsetIndex::open(&path, 0).unwrap();
        assert!(matches!(load, IndexLoad::Corrupt(_)));
        std::fs::write(&path, &bytes[..5]).unwrap();
        let (_, load) = OffsetIndex::open(&path, 0).unwrap();
        assert!(matches!(load, IndexLoad::Corrupt(_)));
    }

    #[test]
    fn zero_tail_is_checked_where_blocks_are_allocated() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let (mut idx, _) = OffsetIndex::open(&path, 0).unwrap();
        // Like an active segment's index at a crash: preallocated (sparse), a few entries.
        idx.resize(10 << 20).unwrap();
        for i in 1..=3 {
            idx.append(i * 10, i as u32 * 100).unwrap();
        }
        assert!(idx.is_mapped());
        drop(idx);
        let (idx, load) = OffsetIndex::open(&path, 0).unwrap();
        assert_eq!((idx.entries(), load), (3, IndexLoad::Ok));
        drop(idx);
        // A stray byte far into the preallocated tail, past a hole: corruption.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[7], 5 << 20).unwrap();
        drop(file);
        let (_, load) = OffsetIndex::open(&path, 0).unwrap();
        assert!(matches!(load, IndexLoad::Corrupt(_)), "{load:?}");
    }

    #[test]
    fn an_index_without_entries_stays_empty_and_unmapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let (mut idx, _) = TimeIndex::open(&path, 0).unwrap();
        idx.resize(1 << 20).unwrap();
        assert!(!idx.is_mapped());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert_eq!(idx.lookup(5).offset, 0);
        idx.maybe_append(1000, 5, false).unwrap();
        assert!(idx.is_mapped());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), (1 << 20) / 12 * 12);
        idx.unmap().unwrap();
        assert!(!idx.is_mapped());
        // A lookup maps it again.
        assert_eq!(idx.lookup(1500).offset, 5);
        assert!(idx.is_mapped());
        idx.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 12);
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let (mut idx, _) = TimeIndex::open(&path, 0).unwrap();
        idx.resize(24).unwrap();
        idx.maybe_append(1000, 5, false).unwrap();
        idx.maybe_append(900, 6, false).unwrap(); // not above the last timestamp: skipped
        idx.maybe_append(2000, 9, false).unwrap();
        assert_eq!(idx.entries(), 2);
        idx.maybe_append(3000, 12, false).unwrap(); // full: skipped
        assert_eq!(idx.entries(), 2);
        idx.maybe_append(3000, 12, true).unwrap(); // forced: grows
        assert_eq!(idx.entries(), 3);
        assert_eq!(
            idx.lookup(500),
            TimestampOffset {
                timestamp: -1,
                offset: 0
            }
        );
        assert_eq!(idx.lookup(1500).offset, 5);
        assert_eq!(idx.lookup(2000).offset, 9);
        assert_eq!(idx.last_entry().map(|e| e.timestamp), Some(3000));
    }
}
