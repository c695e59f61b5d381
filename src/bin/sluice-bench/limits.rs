//! The machine's own limits, measured in the same run as the broker's figures.
//!
//! Each figure is in bytes/s and takes a few seconds at most on a machine worth
//! benchmarking. The files are created in the directory given (the broker's `log.dirs`
//! file system, for the disk figures to mean something) and removed afterwards, also on
//! error.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The block written and read at a time.
const BLOCK: usize = 1024 * 1024;

/// Bytes written for the disk figure.
const DISK_WRITE_TOTAL: usize = 1024 * 1024 * 1024;

/// The file read back from the page cache, and how many times.
const PAGE_CACHE_FILE: usize = 512 * 1024 * 1024;
const PAGE_CACHE_PASSES: usize = 5;

/// How long the loopback stream runs.
const LOOPBACK_DURATION: Duration = Duration::from_secs(2);

/// Sequential write bandwidth of `dir`'s file system (write + fdatasync), bytes/s.
///
/// 1 GiB in 1 MiB `write`s to a new file, then one `fdatasync` at the end; the time runs
/// from the first write to the end of the `fdatasync`. That is how a broker that writes
/// segments and lets the page cache flush them uses the disk: the writes land in the page
/// cache, the kernel writes back behind them, and the final `fdatasync` waits for what is
/// left. [`disk_write_synced_every`] gives the figure for a writer that syncs as it goes.
pub(crate) fn disk_write(dir: &Path) -> std::io::Result<f64> {
    write_file(dir, DISK_WRITE_TOTAL, None)
}

/// Page-cache write bandwidth of `dir`'s file system, bytes/s: 1 GiB in 1 MiB `write`s to a
/// new file and no sync — the copy into the page cache that every produced byte costs the
/// broker (its `pwrite` of each batch), before any write-back.
pub(crate) fn page_cache_write(dir: &Path) -> std::io::Result<f64> {
    let mut temp = TempFile::create(dir)?;
    let block = pattern(BLOCK);
    let start = Instant::now();
    for _ in 0..DISK_WRITE_TOTAL / BLOCK {
        temp.file.write_all(&block)?;
    }
    Ok(rate(DISK_WRITE_TOTAL, start.elapsed()))
}

/// Like [`disk_write`], with an `fdatasync` after every `every` bytes (and at the end): the
/// bandwidth of a writer that flushes as it goes (Kafka's `flush.messages`), bytes/s.
/// Not printed by default; `print_limits` below shows it.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn disk_write_synced_every(dir: &Path, every: usize) -> std::io::Result<f64> {
    write_file(dir, DISK_WRITE_TOTAL, Some(every.max(BLOCK)))
}

/// Page-cache read bandwidth (a file just written, read back), bytes/s.
///
/// A 512 MiB file is written (not synced: it stays in the page cache, 512 MiB being far
/// below the kernel's dirty thresholds on a machine with a few GiB), then read back whole
/// with 1 MiB `read`s five times; the figure is the median pass.
pub(crate) fn page_cache_read(dir: &Path) -> std::io::Result<f64> {
    let temp = cached_file(dir)?;
    let mut buf = vec![0u8; BLOCK];
    let mut rates = Vec::with_capacity(PAGE_CACHE_PASSES);
    for _ in 0..PAGE_CACHE_PASSES {
        // A fresh descriptor per pass: the same as seeking to 0, and what a fetch does.
        let mut file = File::open(&temp.path)?;
        let start = Instant::now();
        let mut read = 0usize;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if read != PAGE_CACHE_FILE {
            return Err(io::Error::other(format!(
                "read back {read} bytes of {PAGE_CACHE_FILE}"
            )));
        }
        rates.push(rate(read, start.elapsed()));
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// Loopback TCP bandwidth, one stream, bytes/s.
///
/// A sender thread `write_all`s 1 MiB buffers on one TCP stream over 127.0.0.1; this thread
/// reads them into a 1 MiB buffer and discards them for two seconds. The figure is the bytes
/// received over the time from the first byte received to the last.
pub(crate) fn loopback_tcp() -> std::io::Result<f64> {
    let block = pattern(BLOCK);
    one_stream("loopback-sender", move |mut stream, stop| {
        while !stop.load(Ordering::Relaxed) {
            stream.write_all(&block)?;
        }
        Ok(())
    })
}

/// Loopback TCP bandwidth of `sendfile(2)` from the page cache, one stream, bytes/s: the
/// ceiling of a broker's fetch path on this machine (page-cache pages spliced into the
/// socket, the kernel's loopback receive path, the reader's copy out).
///
/// A 512 MiB file is written (it stays in the page cache); a sender thread `sendfile`s it to
/// the stream over and over, 8 MiB a call; this thread reads into a 1 MiB buffer for two
/// seconds, as in [`loopback_tcp`].
pub(crate) fn loopback_sendfile(dir: &Path) -> std::io::Result<f64> {
    const CHUNK: usize = 8 << 20;
    let temp = cached_file(dir)?;
    let file = File::open(&temp.path)?;
    one_stream("sendfile-sender", move |stream, stop| {
        let mut offset: i64 = 0;
        while !stop.load(Ordering::Relaxed) {
            if offset as usize >= PAGE_CACHE_FILE {
                offset = 0;
            }
            let want = CHUNK.min(PAGE_CACHE_FILE - offset as usize);
            nix::sys::sendfile::sendfile(&stream, &file, Some(&mut offset), want)
                .map_err(io::Error::from)?;
        }
        Ok(())
    })
}

/// One TCP stream over 127.0.0.1: `send` runs on a thread of its own until the flag it is
/// given is set, this thread [`receive`]s; bytes/s received.
fn one_stream(
    name: &str,
    send: impl FnOnce(TcpStream, &AtomicBool) -> io::Result<()> + Send + 'static,
) -> io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // Connected here, before the sender thread starts: nothing can leave `accept` waiting.
    let stream = TcpStream::connect(listener.local_addr()?)?;
    let (receiving, _) = listener.accept()?;
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || send(stream, &stop))?
    };
    let received = receive(receiving, &stop);
    // Stops the sender: the flag for its next loop, the closed stream for a call blocked on
    // a full socket buffer (it fails with EPIPE or ECONNRESET, by design).
    stop.store(true, Ordering::Relaxed);
    let received = received?;
    // The sender's own result is the expected broken-pipe error: not a failure.
    let _ = sender
        .join()
        .map_err(|_| io::Error::other(format!("the {name} thread panicked")))?;
    Ok(received)
}

/// A new [`PAGE_CACHE_FILE`]-byte file in `dir`, written and not synced: it stays in the
/// page cache.
fn cached_file(dir: &Path) -> io::Result<TempFile> {
    let mut temp = TempFile::create(dir)?;
    let block = pattern(BLOCK);
    for _ in 0..PAGE_CACHE_FILE / BLOCK {
        temp.file.write_all(&block)?;
    }
    Ok(temp)
}

/// The receiving end of [`loopback_tcp`]: reads for [`LOOPBACK_DURATION`], closes the
/// stream, returns bytes/s.
fn receive(mut stream: TcpStream, stop: &AtomicBool) -> io::Result<f64> {
    // A sender that stalls without closing fails the measurement instead of hanging it.
    stream.set_read_timeout(Some(LOOPBACK_DURATION * 5))?;
    let mut buf = vec![0u8; BLOCK];
    let mut received = 0usize;
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        last = Instant::now();
        let started = *first.get_or_insert(last);
        // The first read's bytes arrived before the clock started: not counted.
        if last > started {
            received += n;
        }
        if last.duration_since(started) >= LOOPBACK_DURATION {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = stream.shutdown(Shutdown::Both);
    let started = first.ok_or_else(|| io::Error::other("the loopback sender sent nothing"))?;
    Ok(rate(received, last.duration_since(started)))
}

/// Writes `total` bytes in [`BLOCK`]s to a new file in `dir`, `fdatasync`ing after every
/// `sync_every` bytes if set and always at the end; bytes/s from the first write to the end
/// of the last `fdatasync`.
fn write_file(dir: &Path, total: usize, sync_every: Option<usize>) -> io::Result<f64> {
    let mut temp = TempFile::create(dir)?;
    let block = pattern(BLOCK);
    let start = Instant::now();
    let mut written = 0usize;
    let mut unsynced = 0usize;
    while written < total {
        temp.file.write_all(&block)?;
        written += block.len();
        unsynced += block.len();
        if sync_every.is_some_and(|every| unsynced >= every) {
            temp.file.sync_data()?;
            unsynced = 0;
        }
    }
    temp.file.sync_data()?;
    Ok(rate(written, start.elapsed()))
}

/// A file of ours, removed when dropped.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    file: File,
}

impl TempFile {
    fn create(dir: &Path) -> io::Result<TempFile> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(
            ".sluice-bench-limits-{}-{nanos}.tmp",
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(TempFile { path, file })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// `len` bytes of a fixed pseudo-random pattern: not zeros, which a compressing or
/// deduplicating file system would not write.
fn pattern(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn rate(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let mut temp = TempFile::create(dir.path()).unwrap();
            temp.file.write_all(b"x").unwrap();
            temp.path.clone()
        };
        assert!(!path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn write_file_writes_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let rate = write_file(dir.path(), 4 * BLOCK, Some(2 * BLOCK)).unwrap();
        assert!(rate > 0.0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn loopback_moves_bytes() {
        assert!(loopback_tcp().unwrap() > 0.0);
    }

    /// Every figure, for a look by hand:
    /// `cargo test --release --features bench --bin sluice-bench -- --ignored --nocapture`.
    #[test]
    #[ignore = "takes ~15 s and a 1 GiB file"]
    fn print_limits() {
        let dir = std::env::temp_dir();
        let gb = |r: f64| r / 1e9;
        let started = Instant::now();
        println!("disk_write: {:.3} GB/s", gb(disk_write(&dir).unwrap()));
        println!("  ({:.1} s)", started.elapsed().as_secs_f64());
        let started = Instant::now();
        println!(
            "disk_write, fdatasync every 16 MiB: {:.3} GB/s",
            gb(disk_write_synced_every(&dir, 16 * BLOCK).unwrap())
        );
        println!("  ({:.1} s)", started.elapsed().as_secs_f64());
        let started = Instant::now();
        println!(
            "page_cache_read: {:.3} GB/s",
            gb(page_cache_read(&dir).unwrap())
        );
        println!("  ({:.1} s)", started.elapsed().as_secs_f64());
        let started = Instant::now();
        println!("loopback_tcp: {:.3} GB/s", gb(loopback_tcp().unwrap()));
        println!("  ({:.1} s)", started.elapsed().as_secs_f64());
    }
}
