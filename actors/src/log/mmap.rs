//! The one place with `unsafe` in the log engine: memory-mapping index files.
//!
//! Why `unsafe` cannot be avoided: `memmap2` marks mapping as unsafe because another
//! process truncating or rewriting the file while it is mapped would make reads fault or
//! change under us. Index files live in the broker's own data directory, which only this
//! process writes (Kafka makes the same assumption); and every read through the map is
//! bounds-checked against `entries`, so a corrupt file yields wrong numbers — which the
//! index sanity checks catch — never an out-of-bounds access.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::log::{LogError, Result};

/// How much of an index file is backed by allocated disk blocks ahead of the entries, at
/// most: see [`IndexFile::append`].
const RESERVE_CHUNK: usize = 64 * 1024;

/// Zeros written to reserve blocks.
static ZEROS: [u8; RESERVE_CHUNK] = [0; RESERVE_CHUNK];

/// A file of fixed-size entries, mapped read-write, with room for `capacity` bytes.
///
/// Not thread-safe; owned by one segment. After a crash the file may carry a
/// preallocated zero tail: callers decide how many leading entries are real
/// ([`IndexFile::set_entries`]).
///
/// The file is grown sparse (`set_len`), and a store through the map into a hole of a full
/// file system cannot fail politely: the kernel raises SIGBUS and the process dies. So no
/// entry is ever stored beyond `reserved`, the prefix whose blocks were allocated by an
/// ordinary `pwrite` of zeros — which on a full disk returns ENOSPC, an error the append
/// reports (KAFKA_STORAGE_ERROR) while the broker keeps running.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    /// Bytes from the start known to be backed by allocated blocks (written through `pwrite`
    /// or holding entries found at open).
    reserved: usize,
}

impl IndexFile {
    /// Opens (creating if absent) and maps `path`. `entries` starts as the number of whole
    /// entries in the file as found; a file whose length is not a multiple of the entry
    /// size reports it through [`IndexFile::had_partial_entry`].
    pub(crate) fn open(path: &Path, entry_size: usize) -> Result<(IndexFile, bool)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(LogError::io("open", path))?;
        let len = file.metadata().map_err(LogError::io("stat", path))?.len() as usize;
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
            entry_size,
            entries: len / entry_size,
            reserved: 0,
        };
        index.remap(len)?;
        Ok((index, len % entry_size != 0))
    }

    fn remap(&mut self, len: usize) -> Result<()> {
        self.mmap = None;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: see the module comment — the file is private to this process, and all
        // access goes through bounds-checked slices of the map.
        let map =
            unsafe { MmapMut::map_mut(&self.file) }.map_err(LogError::io("mmap", &self.path))?;
        self.mmap = Some(map);
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Mapped bytes (the file's current length).
    pub(crate) fn capacity(&self) -> usize {
        self.mmap.as_ref().map_or(0, |m| m.len())
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
        self.mmap.as_ref()?.get(start..start + self.entry_size)
    }

    /// The whole mapped area, including a possible zero tail past `entries`.
    pub(crate) fn raw(&self) -> &[u8] {
        self.mmap.as_deref().unwrap_or(&[])
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
        let map = self
            .mmap
            .as_mut()
            .filter(|m| m.len() >= start + entry.len())
            .ok_or_else(|| LogError::CorruptFile {
                path: self.path.clone(),
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
    /// the mapped capacity) by writing zeros there. Only bytes past the entries are written.
    fn reserve(&mut self, needed: usize) -> Result<()> {
        let from = self.reserved.max(self.entries * self.entry_size);
        let to = (from + RESERVE_CHUNK).max(needed).min(self.capacity());
        let mut at = from;
        while at < to {
            let n = (to - at).min(RESERVE_CHUNK);
            self.file
                .write_all_at(&ZEROS[..n], at as u64)
                .map_err(LogError::io("reserve", &self.path))?;
            at += n;
        }
        self.reserved = to.max(self.reserved);
        Ok(())
    }

    /// Forgets entries from `n` on and zeroes them, so a later scan does not find them.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        let (from, to) = (n * self.entry_size, self.entries * self.entry_size);
        if let Some(map) = self.mmap.as_mut() {
            map[from..to].fill(0);
        }
        self.entries = n;
    }

    /// Sets the file length to `bytes` (rounded down to whole entries) and remaps: grows
    /// the active segment's index to `segment.index.bytes`, or trims a closed one to its
    /// entries.
    pub(crate) fn resize(&mut self, bytes: usize) -> Result<()> {
        let bytes = (bytes / self.entry_size) * self.entry_size;
        let bytes = bytes.max(self.entries * self.entry_size);
        if bytes == self.capacity() {
            return Ok(());
        }
        self.flush()?;
        self.mmap = None;
        self.file
            .set_len(bytes as u64)
            .map_err(LogError::io("resize", &self.path))?;
        self.reserved = self.reserved.min(bytes);
        self.remap(bytes)
    }

    /// Trims the file to its entries (a closed or rolled segment).
    pub(crate) fn trim(&mut self) -> Result<()> {
        self.resize(self.entries * self.entry_size)
    }

    /// Writes dirty pages to disk.
    pub(crate) fn flush(&self) -> Result<()> {
        if let Some(map) = self.mmap.as_ref() {
            map.flush().map_err(LogError::io("msync", &self.path))?;
        }
        Ok(())
    }

    /// Renames the file (the map stays valid: it refers to the inode).
    pub(crate) fn rename(&mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).map_err(LogError::io("rename", &self.path))?;
        self.path = to.to_path_buf();
        Ok(())
    }
}
