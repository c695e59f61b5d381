//! Log engine throughput against the raw bandwidth of the same filesystem.
//!
//! Run with `cargo bench -p sluice-actors --bench log_append`. One run measures, for
//! 16 KiB and 1 MiB uncompressed v2 batches (records with 1 KiB values):
//!
//! 1. `Log::append_as_leader` of `SLUICE_BENCH_BYTES` (default 1 GiB) followed by
//!    `Log::flush` (fsync), against plain `write`s of the same sizes and byte count plus
//!    one `fdatasync` in the same directory. The goal is append ≥ 80% of raw.
//! 2. Sequential `Log::read` from offset 0 with 1 MiB `max_bytes`, the slice copied out
//!    with `pread` into a reused buffer, against plain 1 MiB `read`s of the same segment
//!    files (both from the page cache).
//!
//! Every measurement is repeated 3 times (the order of raw and log runs alternates) and
//! reported as median [min–max]. Each timed write run is preceded by an untimed,
//! unsynced write of a scratch file of the same size, deleted at once, so that every run
//! starts from an equally warm page cache (see `warm_page_cache`). Besides wall time, each phase records this thread's
//! time on a CPU and its time spent runnable but waiting for one (from
//! `/proc/thread-self/schedstat`): the CPU time compares the code paths even when the
//! machine is busy, and the waiting time says how busy it was. The Markdown report goes
//! to stdout and to `<target dir>/bench/log_append.md`.
//!
//! Environment:
//! - `SLUICE_BENCH_BYTES`: bytes written per case (suffixes K, M, G are binary); default
//!   1 GiB.
//! - `SLUICE_BENCH_DIR`: where the data goes (a temporary directory is created inside);
//!   default `<target dir>/bench/tmp`. Not `/tmp`, which is often a tmpfs: the point is
//!   the bandwidth of the disk the broker would use. A tmpfs data dir is flagged.
//! - `SLUICE_BENCH_REPS`: repetitions of each measurement; default 3.
//! - `CARGO_TARGET_DIR`: where the report goes; default `<workspace>/target`.
//!
//! Without `--bench` on the command line (`cargo test --all-targets` runs bench targets
//! that way) it does a quick smoke run of 8 MiB, once, and writes no report file.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_actors::log::batch::{self, BatchHeader, BatchSpec, BATCH_HEADER_SIZE};
use sluice_actors::log::compression::Compression;
use sluice_actors::log::config::LogConfig;
use sluice_actors::log::log::LogOpenOptions;
use sluice_actors::log::Log;

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const DEFAULT_BYTES: u64 = 1 << 30;
const SMOKE_BYTES: u64 = 8 << 20;
const REPS: usize = 3;
const BATCH_SIZES: [usize; 2] = [16 << 10, 1 << 20];
/// Value size of every record but the last of a batch (which is sized to fill the batch
/// exactly, so that 1 MiB reads hold whole batches).
const VALUE_LEN: usize = 1024;
/// Total size of the pre-built batches cycled through by both the append and the raw
/// runs: well above the last-level cache, so neither reads a cache-hot buffer.
const POOL_BYTES: usize = 64 << 20;
/// `max_bytes` of each `Log::read`, and the buffer size of the raw reads.
const READ_BYTES: usize = 1 << 20;
const LEADER_EPOCH: i32 = 0;
const MB: f64 = 1e6;

fn main() -> BoxResult<()> {
    let settings = Settings::from_env()?;
    fs::create_dir_all(&settings.base_dir)?;
    let root = tempfile::Builder::new()
        .prefix("log_append-")
        .tempdir_in(&settings.base_dir)?;
    let mount = mount_of(root.path());
    if mount.as_ref().is_some_and(|m| m.fs_type == "tmpfs") {
        eprintln!(
            "warning: {} is on tmpfs; set SLUICE_BENCH_DIR to a directory on a real disk",
            root.path().display()
        );
    }
    let load_before = load_average();
    let mut cases = Vec::new();
    for batch_size in BATCH_SIZES {
        cases.push(bench_case(root.path(), batch_size, &settings)?);
    }
    let load = (load_before, load_average());
    let report = render(&settings, root.path(), mount.as_ref(), load, &cases);
    print!("{report}");
    if let Some(path) = &settings.report_path {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, &report)?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

struct Settings {
    bytes: u64,
    reps: usize,
    base_dir: PathBuf,
    report_path: Option<PathBuf>,
}

impl Settings {
    fn from_env() -> BoxResult<Settings> {
        let bench_mode = std::env::args().any(|a| a == "--bench");
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
                manifest.parent().unwrap_or(manifest).join("target")
            });
        let bytes = match std::env::var("SLUICE_BENCH_BYTES") {
            Ok(raw) => parse_bytes(&raw)?,
            Err(_) if bench_mode => DEFAULT_BYTES,
            Err(_) => SMOKE_BYTES,
        };
        let base_dir = std::env::var_os("SLUICE_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir.join("bench/tmp"));
        Ok(Settings {
            bytes,
            reps: match std::env::var("SLUICE_BENCH_REPS") {
                Ok(raw) => raw
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("SLUICE_BENCH_REPS={raw:?}: not a positive count"))?,
                Err(_) if bench_mode => REPS,
                Err(_) => 1,
            },
            base_dir,
            report_path: bench_mode.then(|| target_dir.join("bench/log_append.md")),
        })
    }
}

/// `1073741824`, `1024M`, `1G`, `512k`: binary suffixes.
fn parse_bytes(raw: &str) -> BoxResult<u64> {
    let raw = raw.trim();
    let (digits, shift) = match raw.char_indices().last() {
        Some((i, 'k' | 'K')) => (&raw[..i], 10),
        Some((i, 'm' | 'M')) => (&raw[..i], 20),
        Some((i, 'g' | 'G')) => (&raw[..i], 30),
        _ => (raw, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|e| format!("SLUICE_BENCH_BYTES={raw:?}: {e}"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n && *v > 0)
        .ok_or_else(|| format!("SLUICE_BENCH_BYTES={raw:?} is out of range").into())
}

// ---------------------------------------------------------------------------------------
// Batches.
// ---------------------------------------------------------------------------------------

/// Pre-built batches of exactly `batch_size` bytes, `POOL_BYTES` of them in all (fewer if
/// the run is shorter), each with its own random values.
///
/// Why a pool of ready buffers appended as they are, with no per-append copy: the log
/// rewrites only `base_offset` and `partition_leader_epoch` in place on append (and on
/// `LogAppendTime` topics the attributes, max timestamp and CRC); none of these make the
/// batch invalid for a later client append, which ignores the incoming base offset. So a
/// buffer can be appended again and again, like a request buffer fresh from the network,
/// and the timed loop holds only the broker's work. Copying a template per append would
/// add a producer's memcpy that the raw baseline does not pay. Cycling through 64 MiB of
/// distinct buffers (the raw runs write the very same buffers) keeps both sides from
/// reading a buffer that sits in the CPU cache. That is somewhat pessimistic for the
/// log, whose CRC pass is then the one to pull the bytes from memory: a request buffer
/// just filled from a socket may still be cached.
///
/// Every batch of the pool carries the same timestamps, so the time index gets one entry
/// per segment rather than one per offset index entry; that entry is a 12-byte store
/// into a mapped page, which does not change the picture.
fn build_pool(batch_size: usize, count: usize) -> BoxResult<Vec<Vec<u8>>> {
    let mut rng = 0x243F_6A88_85A3_08D3_u64 ^ batch_size as u64;
    let ts = now_ms();
    (0..count)
        .map(|_| build_exact_batch(batch_size, &mut rng, ts))
        .collect()
}

/// An uncompressed v2 batch of exactly `size` bytes: records with `VALUE_LEN`-byte random
/// values and no key, the last record's value sized to fill the batch.
fn build_exact_batch(size: usize, rng: &mut u64, ts: i64) -> BoxResult<Vec<u8>> {
    const MIN_TAIL: usize = 16;
    let room_total = size
        .checked_sub(BATCH_HEADER_SIZE + MIN_TAIL)
        .ok_or("batch size too small")?
        + MIN_TAIL;
    let mut records = Vec::with_capacity(room_total);
    let mut value = vec![0u8; VALUE_LEN + 64];
    let mut rec = Vec::with_capacity(value.len() + 16);
    let mut n: i32 = 0;
    loop {
        let room = room_total - records.len();
        if room < MIN_TAIL {
            break;
        }
        fill_random(&mut value, rng);
        rec.clear();
        batch::encode_record(&mut rec, n, n.into(), None, Some(&value[..VALUE_LEN]));
        n += 1;
        if rec.len() + MIN_TAIL <= room || rec.len() == room {
            records.extend_from_slice(&rec);
            continue;
        }
        // The last record: the largest value that fits what is left (exactly, unless a
        // varint length boundary skips that size).
        let mut v = room.min(value.len());
        loop {
            rec.clear();
            batch::encode_record(&mut rec, n - 1, (n - 1).into(), None, Some(&value[..v]));
            if rec.len() <= room || v == 0 {
                break;
            }
            v -= 1;
        }
        records.extend_from_slice(&rec);
        break;
    }
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: Compression::None.id(),
        last_offset_delta: n - 1,
        base_timestamp: ts,
        max_timestamp: ts + i64::from(n - 1),
        producer_id: batch::NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
    };
    let batch = batch::build_batch(&spec, &records, n)?;
    if batch.len() != size {
        return Err(format!("built a batch of {} bytes, wanted {size}", batch.len()).into());
    }
    Ok(batch)
}

/// xorshift64 bytes: incompressible, cheap, deterministic.
fn fill_random(buf: &mut [u8], state: &mut u64) {
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let bytes = state.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ---------------------------------------------------------------------------------------
// Runs.
// ---------------------------------------------------------------------------------------

/// A point in time: the wall clock and this thread's scheduler counters.
#[derive(Clone, Copy)]
struct Clock {
    wall: Instant,
    on_cpu_ns: u64,
    waiting_ns: u64,
}

impl Clock {
    fn now() -> Clock {
        // `/proc/thread-self/schedstat`: ns on a CPU, ns runnable but waiting, slices. The
        // kernel updates the first two at ticks and context switches, so they are good to a
        // few milliseconds: plenty for runs of a tenth of a second and more.
        let (on_cpu_ns, waiting_ns) = fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| {
                let mut fields = s.split_whitespace().map(|f| f.parse::<u64>().ok());
                Some((fields.next()??, fields.next()??))
            })
            .unwrap_or((0, 0));
        Clock {
            wall: Instant::now(),
            on_cpu_ns,
            waiting_ns,
        }
    }

    fn until(&self, later: &Clock) -> Span {
        Span {
            wall: later.wall.duration_since(self.wall),
            cpu: Duration::from_nanos(later.on_cpu_ns.saturating_sub(self.on_cpu_ns)),
            wait: Duration::from_nanos(later.waiting_ns.saturating_sub(self.waiting_ns)),
        }
    }
}

/// What a phase took: wall time, time on a CPU, and time runnable but waiting for a CPU
/// (other processes competing for it).
#[derive(Clone, Copy)]
struct Span {
    wall: Duration,
    cpu: Duration,
    wait: Duration,
}

/// One write run: the write loop, then the fsync.
#[derive(Clone, Copy)]
struct WriteRun {
    write: Span,
    sync: Span,
}

impl WriteRun {
    fn total(&self) -> Duration {
        self.write.wall + self.sync.wall
    }
    fn wait(&self) -> Duration {
        self.write.wait + self.sync.wait
    }
}

struct CaseResult {
    batch_size: usize,
    batches: u64,
    bytes: u64,
    records_per_batch: i64,
    raw_write: Vec<WriteRun>,
    append: Vec<WriteRun>,
    raw_read: Vec<Span>,
    log_read: Vec<Span>,
    log_read_calls: u64,
    /// Offset index entries of the log written by the last append run.
    index_entries: usize,
}

fn bench_case(root: &Path, batch_size: usize, s: &Settings) -> BoxResult<CaseResult> {
    let batches = (s.bytes / batch_size as u64).max(1);
    let bytes = batches * batch_size as u64;
    let pool_len = (POOL_BYTES / batch_size).clamp(1, batches.min(usize::MAX as u64) as usize);
    let mut pool = build_pool(batch_size, pool_len)?;
    let records_per_batch = pool
        .first()
        .map(|b| BatchHeader::parse(b).map(|h| i64::from(h.record_count)))
        .transpose()?
        .unwrap_or(0);
    let label = size_label(batch_size);
    let mut result = CaseResult {
        batch_size,
        batches,
        bytes,
        records_per_batch,
        raw_write: Vec::new(),
        append: Vec::new(),
        raw_read: Vec::new(),
        log_read: Vec::new(),
        log_read_calls: 0,
        index_entries: 0,
    };

    // Writes. The log of the last append run is kept for the reads.
    let mut kept: Option<Log> = None;
    for rep in 0..s.reps {
        for raw_turn in [rep % 2 == 0, rep % 2 != 0] {
            warm_page_cache(root, bytes)?;
            if raw_turn {
                let path = root.join(format!("raw-{batch_size}-{rep}.bin"));
                let run = raw_write_run(&path, &pool, batches)?;
                fs::remove_file(&path)?;
                sync_dir(root)?;
                eprintln!("{label} raw write  #{rep}: {}", fmt_write_run(&run, bytes));
                result.raw_write.push(run);
            } else {
                let dir = root.join(format!("append-{batch_size}-{rep}"));
                let (run, log) = append_run(&dir, &mut pool, batches, bytes)?;
                eprintln!("{label} append     #{rep}: {}", fmt_write_run(&run, bytes));
                result.append.push(run);
                if rep + 1 == s.reps {
                    kept = Some(log);
                } else {
                    drop(log);
                    fs::remove_dir_all(&dir)?;
                    sync_dir(root)?;
                }
            }
        }
    }
    drop(pool);

    // Reads, from the page cache (one untimed pass first to make sure of it).
    let log = kept.ok_or("no append run")?;
    result.index_entries = log.segments().map(|seg| seg.offset_index().entries()).sum();
    let paths: Vec<PathBuf> = log
        .segments()
        .map(|seg| seg.log_path().to_path_buf())
        .collect();
    let mut buf = vec![0u8; READ_BYTES];
    raw_read_run(&paths, &mut buf, bytes)?;
    for rep in 0..s.reps {
        for raw_turn in [rep % 2 == 0, rep % 2 != 0] {
            if raw_turn {
                let t = raw_read_run(&paths, &mut buf, bytes)?;
                eprintln!("{label} raw read   #{rep}: {}", fmt_span(&t, bytes));
                result.raw_read.push(t);
            } else {
                let (t, calls) = log_read_run(&log, &mut buf, bytes)?;
                eprintln!("{label} Log::read  #{rep}: {}", fmt_span(&t, bytes));
                result.log_read.push(t);
                result.log_read_calls = calls;
            }
        }
    }
    let dir = log.dir().to_path_buf();
    drop(log);
    fs::remove_dir_all(&dir)?;
    sync_dir(root)?;
    Ok(result)
}

/// `append_as_leader` of `batches` batches into a fresh log, then `Log::flush`.
fn append_run(
    dir: &Path,
    pool: &mut [Vec<u8>],
    batches: u64,
    bytes: u64,
) -> BoxResult<(WriteRun, Log)> {
    let mut log = Log::open(dir, LogConfig::default(), LogOpenOptions::default())?;
    let mut records = 0i64;
    let start = Clock::now();
    let (mut next, len) = (0, pool.len());
    for _ in 0..batches {
        let buf = &pool[next];
        next = if next + 1 == len { 0 } else { next + 1 };
        let info = log.append_as_leader(buf, LEADER_EPOCH, now_ms())?;
        records += info.last_offset - info.first_offset + 1;
    }
    let written = Clock::now();
    log.flush(now_ms())?;
    let synced = Clock::now();
    let (write, sync) = (start.until(&written), written.until(&synced));
    if log.size() != bytes || log.log_end_offset() != records {
        return Err(format!(
            "log holds {} bytes / {} offsets, expected {bytes} / {records}",
            log.size(),
            log.log_end_offset()
        )
        .into());
    }
    Ok((WriteRun { write, sync }, log))
}

/// Plain `write`s of the same buffers into a fresh file, then one `fdatasync`.
fn raw_write_run(path: &Path, pool: &[Vec<u8>], batches: u64) -> BoxResult<WriteRun> {
    let mut file = File::create(path)?;
    let start = Clock::now();
    for buf in pool.iter().cycle().take(batches as usize) {
        file.write_all(buf)?;
    }
    let written = Clock::now();
    file.sync_data()?;
    let synced = Clock::now();
    Ok(WriteRun {
        write: start.until(&written),
        sync: written.until(&synced),
    })
}

/// The whole log from offset 0 as a consumer fetches it: `Log::read` with `READ_BYTES`,
/// the slice copied out with `pread`, whole batches walked to find the next offset (a
/// partial trailing batch is fetched again by the next call, as Kafka clients do).
fn log_read_run(log: &Log, buf: &mut Vec<u8>, bytes: u64) -> BoxResult<(Span, u64)> {
    let end = log.log_end_offset();
    let (mut offset, mut delivered, mut calls) = (log.log_start_offset(), 0u64, 0u64);
    let start = Clock::now();
    while offset < end {
        let fetch = log.read(offset, READ_BYTES as u64, None, true)?;
        calls += 1;
        let Some(slice) = fetch.slice else { break };
        let len = slice.len as usize;
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let data = &mut buf[..len];
        slice.file.read_exact_at(data, slice.position)?;
        let mut pos = 0;
        while pos + BATCH_HEADER_SIZE <= len {
            let h = BatchHeader::parse(&data[pos..])?;
            if pos + h.size() > len {
                break;
            }
            offset = h.next_offset();
            pos += h.size();
        }
        if pos == 0 {
            return Err(format!("no whole batch in a fetch at offset {offset}").into());
        }
        delivered += pos as u64;
    }
    let elapsed = start.until(&Clock::now());
    if delivered != bytes {
        return Err(format!("read {delivered} bytes of {bytes}").into());
    }
    Ok((elapsed, calls))
}

/// Plain sequential `read`s of the segment files with a `READ_BYTES` buffer.
fn raw_read_run(paths: &[PathBuf], buf: &mut [u8], bytes: u64) -> BoxResult<Span> {
    let mut total = 0u64;
    let start = Clock::now();
    for path in paths {
        let mut file = File::open(path)?;
        loop {
            let n = file.read(buf)?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    let elapsed = start.until(&Clock::now());
    if total != bytes {
        return Err(format!("segment files hold {total} bytes, expected {bytes}").into());
    }
    Ok(elapsed)
}

/// Writes `bytes` (plus some slack) into a scratch file and deletes it unsynced, just
/// before a timed write run: no disk I/O, but the run then fills its page cache with
/// pages the hypervisor has backed.
///
/// Why: on VMs whose balloon device reports free pages to the host (Firecracker and
/// others; `page_reporting.page_reporting_order` on the kernel command line), memory
/// left free for a couple of seconds is handed back, and touching it again costs a host
/// page fault per page. Measured on the machine this was written on, with `dd` writing
/// 1 GiB into the page cache: 0.25 s right after another such write was deleted, 1.2 to
/// 2.5 s after 3 to 6 s of idleness; dirtying and dropping a scratch file first brought
/// it back to 0.25–0.3 s (touching anonymous memory did not). Without this the write
/// loop's time varied fivefold from run to run with the pages it happened to get. A
/// broker in steady state recycles a warm page cache, which is what this reproduces,
/// for the raw and the log runs alike. It costs one page-cache write, outside the timing.
fn warm_page_cache(root: &Path, bytes: u64) -> std::io::Result<()> {
    let path = root.join("warm-up.tmp");
    let chunk = vec![0u8; 1 << 20];
    let mut file = File::create(&path)?;
    let mut left = bytes + (64 << 20);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    drop(file);
    fs::remove_file(&path)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

// ---------------------------------------------------------------------------------------
// Environment and report.
// ---------------------------------------------------------------------------------------

struct Mount {
    point: PathBuf,
    fs_type: String,
    source: String,
}

/// The mount holding `path`, from `/proc/self/mountinfo` (longest matching mount point).
fn mount_of(path: &Path) -> Option<Mount> {
    let path = fs::canonicalize(path).ok()?;
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let point = PathBuf::from(fields.get(4)?.replace("\\040", " "));
            let sep = fields.iter().position(|f| *f == "-")?;
            Some(Mount {
                point,
                fs_type: (*fields.get(sep + 1)?).to_string(),
                source: (*fields.get(sep + 2)?).to_string(),
            })
        })
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| m.point.components().count())
}

fn rate(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64().max(1e-9) / MB
}

fn fmt_write_run(run: &WriteRun, bytes: u64) -> String {
    format!(
        "{:.0} MB/s (write {:.2} s [cpu {:.2} s] + sync {:.2} s; waited for a CPU {:.2} s)",
        rate(bytes, run.total()),
        run.write.wall.as_secs_f64(),
        run.write.cpu.as_secs_f64(),
        run.sync.wall.as_secs_f64(),
        run.wait().as_secs_f64()
    )
}

fn fmt_span(span: &Span, bytes: u64) -> String {
    format!(
        "{:.0} MB/s ({:.3} s, cpu {:.3} s, waited for a CPU {:.3} s)",
        rate(bytes, span.wall),
        span.wall.as_secs_f64(),
        span.cpu.as_secs_f64(),
        span.wait.as_secs_f64()
    )
}

/// `/proc/loadavg`'s 1-minute figure.
fn load_average() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn size_label(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// Median, min, max.
fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    match (v.first(), v.last()) {
        (Some(&min), Some(&max)) => (v[v.len() / 2], min, max),
        _ => (f64::NAN, f64::NAN, f64::NAN),
    }
}

fn fmt_stats((median, min, max): (f64, f64, f64), decimals: usize) -> String {
    format!("{median:.decimals$} [{min:.decimals$}–{max:.decimals$}]")
}

fn write_rates(runs: &[WriteRun], bytes: u64, part: fn(&WriteRun) -> Duration) -> Vec<f64> {
    runs.iter().map(|r| rate(bytes, part(r))).collect()
}

fn secs<T>(runs: &[T], part: fn(&T) -> Duration) -> Vec<f64> {
    runs.iter().map(|r| part(r).as_secs_f64()).collect()
}

fn render(
    s: &Settings,
    dir: &Path,
    mount: Option<&Mount>,
    load: (Option<f64>, Option<f64>),
    cases: &[CaseResult],
) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let fmt_load = |l: Option<f64>| l.map_or("?".into(), |l| format!("{l:.2}"));
    let timed: Vec<(Duration, Duration)> = cases
        .iter()
        .flat_map(|c| {
            let writes = c.raw_write.iter().chain(&c.append);
            let reads = c.raw_read.iter().chain(&c.log_read);
            writes
                .map(|r| (r.total(), r.wait()))
                .chain(reads.map(|r| (r.wall, r.wait)))
        })
        .collect();
    let wall: Duration = timed.iter().map(|t| t.0).sum();
    let wait: Duration = timed.iter().map(|t| t.1).sum();
    line("## Sluice log engine: append and read throughput\n".into());
    if s.report_path.is_none() {
        line("- **smoke run** (no `--bench` argument, likely an unoptimized test build): the figures mean nothing".into());
    }
    line(format!(
        "- data dir: `{}` ({})",
        dir.display(),
        mount.map_or("filesystem unknown".into(), |m| format!(
            "{} on {}, mounted at `{}`",
            m.fs_type,
            m.source,
            m.point.display()
        ))
    ));
    line(format!(
        "- {} bytes ({:.2} GiB) per case; {} run(s) of each measurement, shown as median [min–max]; MB = 10^6 bytes",
        s.bytes,
        s.bytes as f64 / f64::from(1u32 << 30),
        s.reps
    ));
    line(format!(
        "- uncompressed v2 batches of exactly the stated size, {VALUE_LEN}-byte random values, no keys, \
         cycled from a {} MiB pool of pre-built batches (the raw runs write the same buffers); \
         `LogConfig::default()` (1 GiB segments, an index entry every 4096 bytes)",
        POOL_BYTES >> 20
    ));
    line(format!(
        "- machine: {cpus} CPUs, load average {} before, {} after; the timed phases spent {:.2} s of {:.2} s ({:.1}%) waiting for a CPU{}",
        fmt_load(load.0),
        fmt_load(load.1),
        wait.as_secs_f64(),
        wall.as_secs_f64(),
        wait.as_secs_f64() / wall.as_secs_f64().max(1e-9) * 100.0,
        if wait.as_secs_f64() > 0.05 * wall.as_secs_f64() {
            " — **the machine was busy: wall-clock figures are noisy, compare CPU times**"
        } else {
            ""
        }
    ));
    line(String::new());
    line("### Write: `Log::append_as_leader` + `Log::flush` vs `write` + `fdatasync`\n".into());
    line("| batch | records/batch | index entries | raw MB/s | append MB/s | append batches/s | append/raw (medians) | append/raw (best runs) | ≥ 80% (medians) |".into());
    line("|---|---|---|---|---|---|---|---|---|".into());
    for c in cases {
        let raw = stats(write_rates(&c.raw_write, c.bytes, WriteRun::total));
        let app = stats(write_rates(&c.append, c.bytes, WriteRun::total));
        let per_batch = c.bytes as f64 / c.batches as f64 / MB;
        let app_batches = (app.0 / per_batch, app.1 / per_batch, app.2 / per_batch);
        let ratio = app.0 / raw.0;
        line(format!(
            "| {} | {} | {} | {} | {} | {} | {:.1}% | {:.1}% | {} |",
            size_label(c.batch_size),
            c.records_per_batch,
            c.index_entries,
            fmt_stats(raw, 0),
            fmt_stats(app, 0),
            fmt_stats(app_batches, 0),
            ratio * 100.0,
            app.2 / raw.2 * 100.0,
            if ratio >= 0.8 { "yes" } else { "**no**" }
        ));
    }
    line(String::new());
    line(
        "Interference (other processes, the hypervisor) only ever slows a run down, so the best \
         runs are the least noisy comparison of the two code paths.\n"
            .into(),
    );
    line(
        "The same runs split: the write loop (into the page cache; wall and CPU seconds) and the fsync.\n"
            .into(),
    );
    line("| batch | raw `write` loop MB/s | append loop MB/s | append/raw (loop) | raw loop CPU s | append loop CPU s | append/raw (CPU) | raw `fdatasync` s | `Log::flush` s |".into());
    line("|---|---|---|---|---|---|---|---|---|".into());
    for c in cases {
        let raw = stats(write_rates(&c.raw_write, c.bytes, |r| r.write.wall));
        let app = stats(write_rates(&c.append, c.bytes, |r| r.write.wall));
        let raw_cpu = stats(secs(&c.raw_write, |r| r.write.cpu));
        let app_cpu = stats(secs(&c.append, |r| r.write.cpu));
        line(format!(
            "| {} | {} | {} | {:.1}% | {} | {} | {:.1}% | {} | {} |",
            size_label(c.batch_size),
            fmt_stats(raw, 0),
            fmt_stats(app, 0),
            app.0 / raw.0 * 100.0,
            fmt_stats(raw_cpu, 3),
            fmt_stats(app_cpu, 3),
            app_cpu.0 / raw_cpu.0 * 100.0,
            fmt_stats(stats(secs(&c.raw_write, |r| r.sync.wall)), 2),
            fmt_stats(stats(secs(&c.append, |r| r.sync.wall)), 2)
        ));
    }
    line(String::new());
    line(format!(
        "### Sequential read from the page cache: `Log::read` ({} MiB max_bytes) + `pread` vs `read` ({} MiB buffer)\n",
        READ_BYTES >> 20,
        READ_BYTES >> 20
    ));
    line("| batch | raw `read` MB/s | `Log::read` MB/s | Log/raw | raw CPU s | `Log::read` CPU s | `Log::read` calls |".into());
    line("|---|---|---|---|---|---|---|".into());
    for c in cases {
        let raw = stats(c.raw_read.iter().map(|t| rate(c.bytes, t.wall)).collect());
        let log = stats(c.log_read.iter().map(|t| rate(c.bytes, t.wall)).collect());
        line(format!(
            "| {} | {} | {} | {:.1}% | {} | {} | {} |",
            size_label(c.batch_size),
            fmt_stats(raw, 0),
            fmt_stats(log, 0),
            log.0 / raw.0 * 100.0,
            fmt_stats(stats(secs(&c.raw_read, |t| t.cpu)), 3),
            fmt_stats(stats(secs(&c.log_read, |t| t.cpu)), 3),
            c.log_read_calls
        ));
    }
    out
}
