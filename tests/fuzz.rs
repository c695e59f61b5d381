//! Fuzzing on the stable toolchain: two targets fed with mutated inputs by a small,
//! dependency-free mutator, with a counting allocator that holds every call to its bound.
//!
//! - `request`: a byte stream as a client sends it → `parse_frame` (size prefix,
//!   `socket.request.max.bytes`) → `decode_request` for each frame. Must never panic, and
//!   decoding a frame of `n` bytes must never allocate more than the pre-decode walk's
//!   budget (`DECODE_BUDGET_FACTOR × n + DECODE_BUDGET_FLOOR`) plus a fixed slack.
//! - `batch`: a Produce's records field → `validate_batches` as a leader does for a
//!   compacted topic (CRC, framing, decompression with its bound, keys) and then
//!   `records_payload` + `RecordIter` over each batch found valid. Must never panic, and
//!   must never allocate more than `max.message.bytes`-derived bounds (a decompression bomb
//!   is refused, not inflated).
//!
//! `make test` runs [`replay_corpus`] (every checked-in input under `tests/fuzz/corpus/`)
//! and [`smoke`] (a fixed-seed run of a few thousand mutations per target). `make fuzz`
//! runs [`fuzz_long`] in release mode for `FUZZ_SECONDS` per target (default 60) with a
//! time-based seed; with `FUZZ_SAVE=1` it adds inputs that reach an outcome the corpus
//! does not have yet (a coarse stand-in for coverage) to the corpus, and it writes any
//! input that panics or overspends to `tests/fuzz/crashes/` before failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    produce_request::{PartitionProduceData, TopicProduceData},
    JoinGroupRequest, MetadataRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::actors::log::batch::{
    self, records_payload, validate_batches, AppendOrigin, RecordIter, ValidationOptions,
};
use sluice::actors::log::compression::Compression;
use sluice::protocol::versions::{supported_versions, CODEC_APIS};
use sluice::protocol::{
    decode_request, encode_request, parse_frame, Request, RequestOutcome, DECODE_BUDGET_FACTOR,
    DECODE_BUDGET_FLOOR,
};

// ---------------------------------------------------------------------------------------
// A counting allocator: bytes live and the peak, per thread (tests run in parallel).
// ---------------------------------------------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(size);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        // SAFETY: as `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and answers its result and the most bytes it had allocated at once (beyond
/// what was live before).
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get).saturating_sub(base);
    (out, peak)
}

// ---------------------------------------------------------------------------------------
// The targets.
// ---------------------------------------------------------------------------------------

/// `socket.request.max.bytes` for the request target (Kafka's default is 100 MiB; the
/// fuzzer's inputs are small, so a small limit exercises the "too large" path too).
const MAX_REQUEST: usize = 1 << 20;
/// Allocation slack on top of the decode budget: the frame buffer's own growth, the
/// outcome's error strings.
const SLACK: usize = 256 * 1024;

/// `max.message.bytes` for the batch target.
const MAX_BATCH: usize = 1 << 20;
/// Decompressed bound per batch.
const MAX_DECOMPRESSED: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Request,
    Batch,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Request => "request",
            Target::Batch => "batch",
        }
    }

    /// Runs the target on `input`; `Err` describes a violated bound. The `String` is the
    /// outcome's signature (what kind of answer it got), for corpus growth.
    fn run(self, input: &[u8]) -> Result<String, String> {
        match self {
            Target::Request => run_request(input),
            Target::Batch => run_batch(input),
        }
    }
}

fn run_request(input: &[u8]) -> Result<String, String> {
    let mut buf = BytesMut::from(input);
    // The signature is the first frame's outcome (and whether more followed): coarse on
    // purpose, so that the corpus grows by kinds of answer, not by combinations of them.
    let mut signature = String::new();
    let mut frames = 0;
    loop {
        if frames == 1 {
            signature.push_str("+more");
        }
        let frame = match parse_frame(&mut buf, MAX_REQUEST) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                if frames == 0 {
                    signature = format!("frame:{}", kind(&e.to_string()));
                }
                break;
            }
        };
        frames += 1;
        let len = frame.len();
        let (outcome, peak) = measure(|| decode_request(frame));
        let bound = len * DECODE_BUDGET_FACTOR + DECODE_BUDGET_FLOOR + SLACK;
        if peak > bound {
            return Err(format!(
                "decoding a {len}-byte frame allocated {peak} bytes (bound {bound})"
            ));
        }
        if frames > 1 {
            continue;
        }
        signature = match outcome {
            RequestOutcome::Request(r) => format!("ok:{:?}", r.body.api_key()),
            RequestOutcome::UnsupportedVersion(k) => format!("unsupported:{:?}", k.api_key),
            RequestOutcome::UnknownApiKey { .. } => "unknown-key".into(),
            RequestOutcome::Malformed { key, error } => format!(
                "malformed:{:?}:{}",
                key.map(|k| k.api_key),
                kind(&error.to_string())
            ),
        };
    }
    Ok(signature)
}

fn run_batch(input: &[u8]) -> Result<String, String> {
    let opts = ValidationOptions {
        origin: AppendOrigin::Client,
        max_batch_bytes: MAX_BATCH,
        require_keys: true,
        max_decompressed_bytes: MAX_DECOMPRESSED,
    };
    let (outcome, peak) = measure(|| -> Result<String, String> {
        let batches = match validate_batches(input, &opts) {
            Ok(b) => b,
            Err(e) => return Ok(format!("invalid:{}", kind(&e.to_string()))),
        };
        let mut records = 0usize;
        for b in &batches {
            let bytes = &input[b.position..b.position + b.size()];
            let payload = records_payload(bytes, &b.header, MAX_DECOMPRESSED)
                .map_err(|e| format!("a batch found valid does not decompress: {e}"))?;
            let mut iter = RecordIter::new(&payload, b.header.record_count);
            while let Some(_r) = iter
                .next_record()
                .map_err(|e| format!("a batch found valid has a bad record: {e}"))?
            {
                records += 1;
            }
        }
        Ok(format!("valid:{}:{}", batches.len(), records.min(3)))
    });
    let outcome = outcome?;
    // Input, validation's own vector, and at most two decompressed copies of a batch.
    let bound = input.len() * 2 + 2 * MAX_DECOMPRESSED + SLACK;
    if peak > bound {
        return Err(format!(
            "checking {} bytes of batches allocated {peak} bytes (bound {bound})",
            input.len()
        ));
    }
    Ok(outcome)
}

/// An error message without its numbers: the kind of outcome.
fn kind(message: &str) -> String {
    message
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(48)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Seeds, corpus, mutations.
// ---------------------------------------------------------------------------------------

/// Inputs built in code: every API's default request at every version Sluice decodes,
/// some with content; batches of every codec.
fn seeds(target: Target) -> Vec<Vec<u8>> {
    match target {
        Target::Request => request_seeds(),
        Target::Batch => batch_seeds(),
    }
}

fn request_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for &key in CODEC_APIS {
        let range = supported_versions(key).unwrap();
        let request = Request::default_for(key).unwrap();
        for version in range.min..=range.max {
            out.push(
                encode_request(&request, version, 7, Some("fuzz"))
                    .unwrap()
                    .to_vec(),
            );
        }
    }
    let metadata = MetadataRequest::default().with_topics(Some(
        (0..3)
            .map(|i| {
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(format!("topic-{i}")))))
            })
            .collect(),
    ));
    for version in [1, 4, 9, 12] {
        out.push(
            encode_request(&Request::Metadata(metadata.clone()), version, 1, None)
                .unwrap()
                .to_vec(),
        );
    }
    let records = batch_seeds().swap_remove(1);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])]);
    for version in [3, 7, 9, 10] {
        out.push(
            encode_request(&Request::Produce(produce.clone()), version, 2, Some("p"))
                .unwrap()
                .to_vec(),
        );
    }
    let join = JoinGroupRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(
            StrBytes::from_static_str("g"),
        ))
        .with_session_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\0\0\0\0")),
        ]);
    for version in [0, 5, 7] {
        out.push(
            encode_request(&Request::JoinGroup(join.clone()), version, 3, Some("c"))
                .unwrap()
                .to_vec(),
        );
    }
    // Two pipelined requests in one input.
    let two = [out[0].clone(), out[out.len() - 1].clone()].concat();
    out.push(two);
    out
}

fn batch_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let kv: Vec<batch::KeyValue<'_>> = vec![
        (Some(b"k1"), Some(b"value one")),
        (Some(b"k2"), None),
        (Some(b"k3"), Some(&[0u8; 300])),
    ];
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        out.push(batch::simple_batch(codec, 1_700_000_000_000, &kv).unwrap());
    }
    // Two batches back to back; a batch whose values compress extremely well.
    out.push([out[0].clone(), out[1].clone()].concat());
    let zeros = vec![0u8; 200_000];
    out.push(batch::simple_batch(Compression::Gzip, 1, &[(Some(b"k"), Some(&zeros[..]))]).unwrap());
    out
}

fn corpus_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target.name())
}

fn corpus(target: Target) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// xorshift64*: deterministic for a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING_32: [i32; 10] = [0, 1, -1, 2, 127, 128, 255, 0x7fff, i32::MAX, i32::MIN];

/// One to four random mutations of `input` (and sometimes a splice with `other`).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = [0, 0xff, 0x7f, 0x80, 1][rng.below(5)];
            }
            2 if len >= 4 => {
                let i = rng.below(len - 3);
                let v = INTERESTING_32[rng.below(INTERESTING_32.len())];
                out[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            3 if len >= 2 => {
                let i = rng.below(len - 1);
                let v = INTERESTING_32[rng.below(INTERESTING_32.len())] as i16;
                out[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
            4 if len > 0 => {
                let at = rng.below(len);
                out.truncate(at);
            }
            5 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, bytes);
            }
            6 if len > 1 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(32)).min(len);
                out.drain(from..to);
            }
            7 if !other.is_empty() => {
                let at = rng.below(len + 1);
                let from = rng.below(other.len());
                let to = (from + 1 + rng.below(other.len() - from)).min(other.len());
                out.truncate(at);
                out.extend_from_slice(&other[from..to]);
            }
            8 if len > 4 => {
                // Duplicate a range (repeated elements, repeated batches).
                let from = rng.below(len);
                let to = (from + 1 + rng.below(64)).min(len);
                let piece = out[from..to].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, piece);
            }
            _ if len >= 4 && matches!(rng.below(2), 0) => {
                // Fix a size prefix to the real length (gets deeper than random sizes).
                let n = (len - 4) as i32;
                out[0..4].copy_from_slice(&n.to_be_bytes());
            }
            _ => {}
        }
    }
    out
}

/// Runs one input; a panic or an overspend is reported with the input saved for
/// reproduction (only when `save_crashes`).
fn check(target: Target, input: &[u8], save_crashes: bool) -> Result<String, String> {
    let result = catch_unwind(AssertUnwindSafe(|| target.run(input)));
    let failure = match result {
        Ok(Ok(signature)) => return Ok(signature),
        Ok(Err(overspend)) => overspend,
        Err(panic) => format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        ),
    };
    if save_crashes {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/crashes");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}-{:016x}", target.name(), fnv(input)));
        let _ = std::fs::write(&path, input);
        return Err(format!("{failure} (input saved to {})", path.display()));
    }
    Err(failure)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Mutation rounds over seeds + corpus; answers (executions, new-signature inputs).
fn fuzz(
    target: Target,
    seed: u64,
    budget: impl Fn(u64) -> bool,
    save_crashes: bool,
) -> (u64, Vec<Vec<u8>>) {
    let mut pool: Vec<Vec<u8>> = seeds(target);
    pool.extend(corpus(target).into_iter().map(|(_, b)| b));
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for input in &pool {
        if let Ok(sig) = check(target, input, save_crashes) {
            seen.insert(sig);
        }
    }
    let mut fresh = Vec::new();
    let mut rng = Rng(seed | 1);
    let mut runs = 0u64;
    while budget(runs) {
        let a = rng.below(pool.len());
        let b = rng.below(pool.len());
        let input = mutate(&mut rng, &pool[a], &pool[b]);
        runs += 1;
        match check(target, &input, save_crashes) {
            Ok(sig) => {
                if seen.insert(sig) && input.len() <= 64 * 1024 {
                    fresh.push(input.clone());
                    pool.push(input);
                }
            }
            Err(e) => panic!("{} target, run {runs}: {e}", target.name()),
        }
    }
    (runs, fresh)
}

// ---------------------------------------------------------------------------------------
// Tests.
// ---------------------------------------------------------------------------------------

/// Every checked-in input (and every seed) runs without a panic and within its bounds.
#[test]
fn replay_corpus() {
    for target in [Target::Request, Target::Batch] {
        let corpus = corpus(target);
        assert!(
            !corpus.is_empty(),
            "no corpus under {}",
            corpus_dir(target).display()
        );
        for (path, input) in &corpus {
            if let Err(e) = check(target, input, false) {
                panic!("{}: {e}", path.display());
            }
        }
        for input in seeds(target) {
            check(target, &input, false).unwrap();
        }
    }
}

/// The seeds decode as what they are (so the fuzzer starts from valid inputs).
#[test]
fn seeds_are_valid_inputs() {
    for input in seeds(Target::Request) {
        let sig = check(Target::Request, &input, false).unwrap();
        assert!(sig.starts_with("ok:"), "{sig}");
    }
    let batches = seeds(Target::Batch);
    for input in &batches {
        let sig = check(Target::Batch, input, false).unwrap();
        assert!(sig.starts_with("valid:"), "{sig}");
    }
}

/// A zstd/gzip bomb: a small batch that inflates past the bound is refused, and checking
/// it allocates no more than the bound (not the bomb's size).
#[test]
fn decompression_bombs_are_refused_within_the_bound() {
    let big = vec![0u8; MAX_DECOMPRESSED * 4];
    for codec in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
    ] {
        let bomb = batch::simple_batch(codec, 1, &[(Some(b"k"), Some(&big[..]))]).unwrap();
        assert!(bomb.len() < MAX_BATCH, "{codec:?}: {} bytes", bomb.len());
        let sig = check(Target::Batch, &bomb, false).unwrap();
        assert!(sig.starts_with("invalid:"), "{codec:?}: {sig}");
    }
}

/// A short fixed-seed run: part of `make test`.
#[test]
fn smoke() {
    for target in [Target::Request, Target::Batch] {
        let (runs, _) = fuzz(target, 0x5eed_0000 + target as u64, |n| n < 3000, false);
        assert_eq!(runs, 3000);
    }
}

/// `make fuzz`: `FUZZ_SECONDS` (default 60) per target, a time-based seed; `FUZZ_SAVE=1`
/// adds inputs with new outcomes to the corpus.
#[test]
#[ignore = "long-running: `make fuzz`"]
fn fuzz_long() {
    let seconds: u64 = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let save = std::env::var("FUZZ_SAVE").is_ok_and(|v| v == "1");
    for target in [Target::Request, Target::Batch] {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let start = Instant::now();
        let end = start + Duration::from_secs(seconds);
        let (runs, fresh) = fuzz(target, seed, |_| Instant::now() < end, true);
        println!(
            "FUZZ {}: {runs} executions in {:.1} s (seed {seed:#x}), {} inputs with new outcomes, no failure",
            target.name(),
            start.elapsed().as_secs_f64(),
            fresh.len()
        );
        if save {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).unwrap();
            // At most 300 per run, the smallest first: the corpus stays reviewable.
            let mut fresh = fresh;
            fresh.sort_by_key(Vec::len);
            for input in fresh.into_iter().take(300) {
                std::fs::write(dir.join(format!("{:016x}", fnv(&input))), &input).unwrap();
            }
        }
    }
}

/// The allocation bound checks are not vacuous: the counting allocator sees allocations
/// made inside `measure`, and not those freed before it.
#[test]
fn the_allocator_counts() {
    let (v, peak) = measure(|| Vec::<u8>::with_capacity(1 << 20));
    assert!(peak >= 1 << 20, "{peak}");
    drop(v);
    let ((), peak) = measure(|| ());
    assert_eq!(peak, 0);
}
