//! The one place with `unsafe` in the log engine: memory-mapping index files (and asking
//! the kernel where their holes are, with `lseek`).
//!
//! Why `unsafe` cannot be avoided: `memmap2` marks mapping as unsafe because another
//! process truncating or rewriting the file while it is mapped would make reads fault or
//! change under us. Index files live in the broker's own data directory, which only this
//! process writes (Kafka makes the same assumption); and every read through the map is
//! bounds-checked against `entries`, so a corrupt file yields wrong numbers — which the
//! index sanity checks catch — never an out-of-bounds access.
#![allow(unsafe_code)]

use std::cell::OnceCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapMut};

use crate::log::{LogError, Result};

/// How much of an index file is backed by allocated disk blocks ahead of the entries, at
/// most: see [`IndexFile::append`]. One page: the zeros written stay in the page cache, and
/// a read fault on the map maps every cached page around it (fault-around, 16 pages), so
/// a larger chunk would add its size to the resident set of every partition with an index
/// entry (64 KiB × 2 indexes × 10,000 partitions = 1.3 GB counted in RSS). A page holds
/// 512 offset-index entries: about 2 MB of log at the default `index.interval.bytes`.
const RESERVE_CHUNK: usize = 4096;

/// Zeros written to reserve blocks.
static ZEROS: [u8; RESERVE_CHUNK] = [0; RESERVE_CHUNK];

/// A file of fixed-size entries, mapped read-write, with room for `capacity` bytes.
///
/// Not thread-safe; owned by one segment. After a crash the file may carry a
/// preallocated zero tail: callers decide how many leading entries are real
/// ([`IndexFile::set_entries`]).
///
/// Only what is needed is held. No file descriptor: a mapping outlives the descriptor it
/// was made from, so the file is opened by path for the rare operations that need one
/// (growing, trimming, reserving blocks, mapping) and closed again. A map only while the
/// index is in use: the file is mapped at its first lookup or store, and
/// [`IndexFile::unmap`] lets a segment that stopped being active give the map back. And
/// no preallocation while there is no entry: a file without entries stays empty on disk
/// and unmapped, `capacity` being the length it will be given at its first entry (a
/// sparse index gets its first entry only after `index.interval.bytes` of log). A broker
/// with many idle partitions thus holds no descriptor and no map for their indexes.
///
/// The file is grown sparse (`set_len`), and a store through the map into a hole of a full
/// file system cannot fail politely: the kernel raises SIGBUS and the process dies. So no
/// entry is ever stored beyond `reserved`, the prefix whose blocks were allocated by an
/// ordinary `pwrite` of zeros — which on a full disk returns ENOSPC, an error the append
/// reports (KAFKA_STORAGE_ERROR) while the broker keeps running.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    /// The map of the whole file (`len` bytes), made on first use; a cell so that lookups
    /// through `&self` can make it.
    mmap: OnceCell<MmapMut>,
    /// The file's length on disk. 0: nothing to map, and no entry.
    len: usize,
    /// Bytes of room: `len` once the file has been grown; while it is empty, the length
    /// its first entry will grow it to.
    capacity: usize,
    entry_size: usize,
    entries: usize,
    /// Bytes from the start known to be backed by allocated blocks (written through `pwrite`
    /// or holding entries found at open).
    reserved: usize,
}

impl IndexFile {
    /// Opens (creating if absent) and maps `path` unless it is empty. `entries` starts as
    /// the number of whole entries in the file as found; a file whose length is not a
    /// multiple of the entry size reports it through the returned flag.
    pub(crate) fn open(path: &Path, entry_size: usize) -> Result<(IndexFile, bool)> {
        let file = open_rw(path, true)?;
        let len = file.metadata().map_err(LogError::io("stat", path))?.len() as usize;
        // Mapped now unless empty: the caller scans the entries at once.
        let mmap = if len > 0 {
            OnceCell::from(map(&file, path)?)
        } else {
            OnceCell::new()
        };
        let index = IndexFile {
            path: path.to_path_buf(),
            mmap,
            len,
            capacity: len,
            entry_size,
            entries: len / entry_size,
            reserved: 0,
        };
        Ok((index, len % entry_size != 0))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of room: the file's length, or what it will be grown to at its first entry.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the file is mapped now.
    pub(crate) fn is_mapped(&self) -> bool {
        self.mmap.get().is_some()
    }

    /// The map, made if it was not. A lookup that cannot map the file (an I/O error) sees
    /// no entry, which only makes it scan its segment from the start: the error is
    /// logged, and the read of the `.log` that follows reports a failing disk.
    fn map_for_read(&self) -> Option<&MmapMut> {
        if self.len == 0 {
            return None;
        }
        if let Some(map) = self.mmap.get() {
            return Some(map);
        }
        match open_rw(&self.path, false).and_then(|file| map(&file, &self.path)) {
            Ok(map) => Some(self.mmap.get_or_init(|| map)),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot map an index; lookups scan the segment");
                None
            }
        }
    }

    /// The map for a store, made if it was not (`None` while the file is empty).
    fn map_for_write(&mut self) -> Result<Option<&mut MmapMut>> {
        if self.len > 0 && self.mmap.get().is_none() {
            self.mmap = OnceCell::from(map(&open_rw(&self.path, false)?, &self.path)?);
        }
        Ok(self.mmap.get_mut())
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.capacity() / self.entry_size
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries()
    }

    /// Declares how many leading entries are real (after a scan of what was found).
    pub(crate) fn set_entries(&mut self, n: usize) {
        self.entries = n.min(self.max_entries());
        // Entries found in the file occupy allocated blocks.
        self.reserved = self.reserved.max(self.entries * self.entry_size);
    }

    /// The bytes of entry `i`, if it exists.
    pub(crate) fn entry(&self, i: usize) -> Option<&[u8]> {
        if i >= self.entries {
            return None;
        }
        let start = i * self.entry_size;
        self.map_for_read()?.get(start..start + self.entry_size)
    }

    /// The whole file, including a possible zero tail past `entries`.
    pub(crate) fn raw(&self) -> &[u8] {
        self.map_for_read().map_or(&[], |m| &m[..])
    }

    /// Whether every byte from `from` to the end of the file is zero. Holes read as
    /// zeros, so only the allocated ranges are read: after a crash an active segment's
    /// index is `segment.index.bytes` long (10 MiB by default) but allocated only up to
    /// its entries and the chunk reserved after them, and reading it all would fault in
    /// every page — for each of thousands of partitions at start-up.
    pub(crate) fn is_zero_from(&self, from: usize) -> bool {
        let raw = self.raw();
        if from >= raw.len() {
            return true;
        }
        let zero = |range: std::ops::Range<usize>| raw[range].iter().all(|&b| b == 0);
        match open_rw(&self.path, false)
            .and_then(|file| data_ranges(&file, &self.path, from, raw.len()))
        {
            Ok(ranges) => ranges.into_iter().all(zero),
            // No hole information: read it all.
            Err(_) => zero(from..raw.len()),
        }
    }

    /// Appends one entry. The caller checks [`IndexFile::is_full`] first. Before the entries
    /// reach unreserved bytes, the next chunk is reserved with a `pwrite` of zeros (see the
    /// type's doc): a full disk fails here with an I/O error instead of a SIGBUS.
    pub(crate) fn append(&mut self, entry: &[u8]) -> Result<()> {
        debug_assert_eq!(entry.len(), self.entry_size);
        let start = self.entries * self.entry_size;
        if start + entry.len() > self.reserved {
            self.reserve(start + entry.len())?;
        }
        let path = self.path.clone();
        let map = self
            .map_for_write()?
            .filter(|m| m.len() >= start + entry.len())
            .ok_or_else(|| LogError::CorruptFile {
                path,
                reason: "index is full".into(),
            })?;
        map[start..start + entry.len()].copy_from_slice(entry);
        self.entries += 1;
        Ok(())
    }

    /// Makes sure the next `n` entries land on allocated blocks (see the type's doc), so that
    /// a segment can check for room before it writes a batch, rather than fail half-way.
    pub(crate) fn reserve_entries(&mut self, n: usize) -> Result<()> {
        let needed = ((self.entries + n) * self.entry_size).min(self.capacity());
        if needed > self.reserved {
            self.reserve(needed)?;
        }
        Ok(())
    }

    /// Allocates blocks for the bytes up to at least `needed` (a chunk at a time, never past
    /// the capacity) by writing zeros there, growing the file to its capacity first if it
    /// was still empty. Only bytes past the entries are written.
    fn reserve(&mut self, needed: usize) -> Result<()> {
        let from = self.reserved.max(self.entries * self.entry_size);
        let to = (from + RESERVE_CHUNK).max(needed).min(self.capacity());
        if to <= from {
            return Ok(());
        }
        let file = open_rw(&self.path, false)?;
        if self.len == 0 {
            file.set_len(self.capacity as u64)
                .map_err(LogError::io("resize", &self.path))?;
            self.len = self.capacity;
        }
        let mut at = from;
        while at < to {
            let n = (to - at).min(RESERVE_CHUNK);
            file.write_all_at(&ZEROS[..n], at as u64)
                .map_err(LogError::io("reserve", &self.path))?;
            at += n;
        }
        self.reserved = to.max(self.reserved);
        Ok(())
    }

    /// Forgets entries from `n` on and zeroes them, so a later scan does not find them.
    pub(crate) fn truncate_entries(&mut self, n: usize) -> Result<()> {
        if n >= self.entries {
            return Ok(());
        }
        let (from, to) = (n * self.entry_size, self.entries * self.entry_size);
        if let Some(map) = self.map_for_write()? {
            map[from..to].fill(0);
        }
        self.entries = n;
        Ok(())
    }

    /// Sets the capacity to `bytes` (rounded down to whole entries, never below the
    /// entries): grows the active segment's index to `segment.index.bytes`, or trims a
    /// closed one to its entries. A file still empty on disk only notes the new capacity
    /// (see the type's doc); one trimmed to nothing is left empty. A file with content
    /// keeps its allocated blocks otherwise, so that recovery rewriting its entries needs
    /// no new space on a full disk.
    pub(crate) fn resize(&mut self, bytes: usize) -> Result<()> {
        let bytes = (bytes / self.entry_size) * self.entry_size;
        let bytes = bytes.max(self.entries * self.entry_size);
        if self.len == 0 {
            self.capacity = bytes;
            return Ok(());
        }
        if bytes == self.len {
            self.capacity = bytes;
            return Ok(());
        }
        self.unmap()?;
        open_rw(&self.path, false)?
            .set_len(bytes as u64)
            .map_err(LogError::io("resize", &self.path))?;
        self.len = bytes;
        self.capacity = bytes;
        self.reserved = self.reserved.min(bytes);
        Ok(())
    }

    /// Trims the file to its entries (a closed or rolled segment).
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.resize(self.entries * self.entry_size)
    }

    /// Writes dirty pages to disk. (An unmapped file has none: [`IndexFile::unmap`]
    /// writes them first.)
    pub(crate) fn flush(&self) -> Result<()> {
        if let Some(map) = self.mmap.get() {
            map.flush().map_err(LogError::io("msync", &self.path))?;
        }
        Ok(())
    }

    /// Gives the map back (after writing its dirty pages); the next use maps the file
    /// again.
    pub(crate) fn unmap(&mut self) -> Result<()> {
        self.flush()?;
        self.mmap.take();
        Ok(())
    }

    /// Renames the file (a map stays valid: it refers to the inode).
    pub(crate) fn rename(&mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).map_err(LogError::io("rename", &self.path))?;
        self.path = to.to_path_buf();
        Ok(())
    }
}

/// Opens an index file for reading and writing; the descriptor is closed by the caller as
/// soon as it has served (see [`IndexFile`]).
fn open_rw(path: &Path, create: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
        .map_err(LogError::io("open", path))
}

/// The ranges of `file` between `from` and `len` that hold data (not holes), as
/// `lseek(SEEK_DATA / SEEK_HOLE)` reports them. A file system without hole information
/// reports everything as data.
fn data_ranges(
    file: &File,
    path: &Path,
    from: usize,
    len: usize,
) -> Result<Vec<std::ops::Range<usize>>> {
    use std::os::fd::AsRawFd;
    let seek = |offset: usize, whence: libc::c_int| -> std::io::Result<Option<usize>> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EOVERFLOW))?;
        // SAFETY: `lseek` on a descriptor `file` owns for the whole call; it touches no
        // memory of ours.
        let found = unsafe { libc::lseek(file.as_raw_fd(), offset, whence) };
        if found >= 0 {
            return Ok(usize::try_from(found).ok());
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            // No data at or after `offset`.
            Some(libc::ENXIO) => Ok(None),
            _ => Err(error),
        }
    };
    let mut ranges = Vec::new();
    let mut at = from;
    while at < len {
        let Some(data) = seek(at, libc::SEEK_DATA).map_err(LogError::io("seek", path))? else {
            break;
        };
        if data >= len {
            break;
        }
        let hole = seek(data, libc::SEEK_HOLE)
            .map_err(LogError::io("seek", path))?
            .unwrap_or(len)
            .min(len);
        if hole <= data {
            // Not a sane answer: treat the rest as data.
            ranges.push(data..len);
            break;
        }
        ranges.push(data..hole);
        at = hole;
    }
    Ok(ranges)
}

/// Maps the whole of `file` (not empty), for random access: lookups are binary searches,
/// and the kernel's read-ahead on a fault would bring 128 KiB of the (mostly sparse) file
/// into the page cache, of which fault-around then maps 64 KiB into the resident set — for
/// every partition with an index entry.
fn map(file: &File, path: &Path) -> Result<MmapMut> {
    // SAFETY: see the module comment — the file is private to this process, and all
    // access goes through bounds-checked slices of the map.
    let map = unsafe { MmapMut::map_mut(file) }.map_err(LogError::io("mmap", path))?;
    if let Err(e) = map.advise(Advice::Random) {
        // Advice only: the map works without it.
        tracing::debug!(path = %path.display(), error = %e, "madvise(MADV_RANDOM) failed");
    }
    Ok(map)
}
