//! Kafka's v2 record batch (magic 2): parsing, validation and in-place offset assignment.
//!
//! On-disk and on-wire layout of one batch, big-endian, byte offsets from its start:
//!
//! ```text
//!  0  base_offset             i64   rewritten by the log on append
//!  8  batch_length            i32   bytes after this field (total size = 12 + batch_length)
//! 12  partition_leader_epoch  i32   rewritten by the log on append (outside the CRC)
//! 16  magic                   i8    always 2
//! 17  crc                     u32   CRC-32C of bytes 21..end
//! 21  attributes              i16   bits 0-2 codec, 3 timestamp type, 4 transactional,
//!                                   5 control, 6 delete horizon
//! 23  last_offset_delta       i32
//! 27  base_timestamp          i64
//! 35  max_timestamp           i64
//! 43  producer_id             i64
//! 51  producer_epoch          i16
//! 53  base_sequence           i32
//! 57  record_count            i32
//! 61  records …                     possibly compressed as a whole
//! ```
//!
//! One record (inside the records section, after decompression):
//! `length varint, attributes i8, timestamp_delta varlong, offset_delta varint,
//! key_length varint (-1 = null), key, value_length varint (-1 = null), value,
//! header_count varint, headers [key_length varint, key, value_length varint, value]`.
//!
//! The broker stores batches exactly as produced: appending rewrites only the base offset
//! and the partition leader epoch (neither is covered by the CRC), and for `LogAppendTime`
//! topics the timestamp type and max timestamp (then the CRC is recomputed). Records are
//! never re-encoded on the append path.

use std::borrow::Cow;

use crate::log::compression::{self, Compression};
use crate::log::{LogError, Result};

/// Bytes before `batch_length` is known: base offset + batch length.
pub const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header, records excluded.
pub const BATCH_HEADER_SIZE: usize = 61;
/// The only record format this log stores.
pub const MAGIC_V2: i8 = 2;
/// `producer_id` of a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// `timestamp` meaning "none".
pub const NO_TIMESTAMP: i64 = -1;

const BASE_OFFSET_POS: usize = 0;
const LENGTH_POS: usize = 8;
const LEADER_EPOCH_POS: usize = 12;
const MAGIC_POS: usize = 16;
const CRC_POS: usize = 17;
const ATTRIBUTES_POS: usize = 21;
const LAST_OFFSET_DELTA_POS: usize = 23;
const BASE_TIMESTAMP_POS: usize = 27;
const MAX_TIMESTAMP_POS: usize = 35;
const PRODUCER_ID_POS: usize = 43;
const PRODUCER_EPOCH_POS: usize = 51;
const BASE_SEQUENCE_POS: usize = 53;
const RECORD_COUNT_POS: usize = 57;

const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Attribute bit 6 (KIP-534): `base_timestamp` holds the delete horizon of the batch's
/// tombstones, set by the cleaner.
pub const DELETE_HORIZON_BIT: i16 = 0x40;

/// The smallest encoded record: length, attributes, three one-byte varints, header count.
const MIN_RECORD_SIZE: usize = 7;

fn be_i16(b: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([b[pos], b[pos + 1]])
}
fn be_i32(b: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes([b[pos], b[pos + 1], b[pos + 2], b[pos + 3]])
}
fn be_i64(b: &[u8], pos: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[pos..pos + 8]);
    i64::from_be_bytes(a)
}

/// The fixed-size header of a v2 batch, decoded. A copy: it borrows nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`. Checks only that the bytes are there and
    /// that the length field is plausible; [`validate_batches`] does the rest.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() < BATCH_HEADER_SIZE {
            return Err(LogError::CorruptBatch(format!(
                "{} bytes is shorter than a batch header ({BATCH_HEADER_SIZE})",
                buf.len()
            )));
        }
        let header = BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_POS),
            batch_length: be_i32(buf, LENGTH_POS),
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_POS),
            magic: buf[MAGIC_POS] as i8,
            crc: be_i32(buf, CRC_POS) as u32,
            attributes: be_i16(buf, ATTRIBUTES_POS),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_POS),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_POS),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_POS),
            producer_id: be_i64(buf, PRODUCER_ID_POS),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_POS),
            base_sequence: be_i32(buf, BASE_SEQUENCE_POS),
            record_count: be_i32(buf, RECORD_COUNT_POS),
        };
        if (header.batch_length as i64) < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i64 {
            return Err(LogError::CorruptBatch(format!(
                "batch length {} is below the minimum {}",
                header.batch_length,
                BATCH_HEADER_SIZE - LOG_OVERHEAD
            )));
        }
        Ok(header)
    }

    /// Total bytes of the batch, header included.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }
    /// Offset of the batch's last record (records may have been compacted away before it).
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    /// Offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_attributes(self.attributes)
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id > NO_PRODUCER_ID
    }
}

/// CRC-32C of a batch as stored in its header: over attributes..end.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_POS..])
}

/// Who is appending: decides how strict validation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: offsets are assigned by the log, records must be dense
    /// (offset deltas 0..n), no control batches, no empty batches.
    Client,
    /// A follower copying the leader's log, or the log's own recovery: offsets are kept,
    /// gaps left by compaction and empty batches are legal.
    Replication,
}

/// How [`validate_batches`] judges a buffer.
#[derive(Debug, Clone, Copy)]
pub struct ValidationOptions {
    pub origin: AppendOrigin,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_batch_bytes: usize,
    /// Compacted topics: every record needs a key (compressed batches are decompressed to
    /// check).
    pub require_keys: bool,
    /// Bound on the decompressed size of one batch (a hostile client sizes it).
    pub max_decompressed_bytes: usize,
}

/// A batch found valid inside a buffer: where it is and its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidBatch {
    /// Byte position of the batch in the validated buffer.
    pub position: usize,
    pub header: BatchHeader,
}

impl ValidBatch {
    pub fn size(&self) -> usize {
        self.header.size()
    }
}

/// Checks every batch of `buf` (one or more concatenated v2 batches) and returns where
/// each one is. Nothing is modified; a single bad batch fails the whole buffer, so
/// nothing of it is appended.
///
/// Checks: framing (length within the buffer), magic 2, CRC-32C, `last_offset_delta`
/// against the record count, and for uncompressed batches the record framing (varint
/// lengths, offset deltas, count). Compressed batches are decompressed only when
/// `require_keys` (compacted topics).
pub fn validate_batches(buf: &[u8], opts: &ValidationOptions) -> Result<Vec<ValidBatch>> {
    if buf.is_empty() {
        return Err(LogError::CorruptBatch("no record batch".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let header = BatchHeader::parse(rest)?;
        let size = header.size();
        if size > rest.len() {
            return Err(LogError::CorruptBatch(format!(
                "batch at byte {pos} claims {size} bytes but only {} remain",
                rest.len()
            )));
        }
        if size > opts.max_batch_bytes {
            return Err(LogError::BatchTooLarge {
                size,
                max: opts.max_batch_bytes,
            });
        }
        validate_one(&rest[..size], &header, opts)?;
        out.push(ValidBatch {
            position: pos,
            header,
        });
        pos += size;
    }
    Ok(out)
}

fn validate_one(batch: &[u8], h: &BatchHeader, opts: &ValidationOptions) -> Result<()> {
    if h.magic != MAGIC_V2 {
        return Err(LogError::CorruptBatch(format!(
            "magic {} is not supported (only 2)",
            h.magic
        )));
    }
    let crc = compute_crc(batch);
    if crc != h.crc {
        return Err(LogError::CorruptBatch(format!(
            "CRC mismatch: header says {:#010x}, bytes give {crc:#010x}",
            h.crc
        )));
    }
    let codec = h.compression()?;
    if h.record_count < 0 || h.last_offset_delta < 0 {
        return Err(LogError::CorruptBatch(format!(
            "negative record count {} or last offset delta {}",
            h.record_count, h.last_offset_delta
        )));
    }
    match opts.origin {
        AppendOrigin::Client => {
            if h.is_control() {
                return Err(LogError::InvalidRecord(
                    "clients may not write control batches".into(),
                ));
            }
            if h.record_count == 0 {
                return Err(LogError::InvalidRecord("empty record batch".into()));
            }
            if h.last_offset_delta as i64 + 1 != h.record_count as i64 {
                return Err(LogError::InvalidRecord(format!(
                    "record count {} does not match last offset delta {}",
                    h.record_count, h.last_offset_delta
                )));
            }
        }
        AppendOrigin::Replication => {
            if h.record_count as i64 > h.last_offset_delta as i64 + 1 {
                return Err(LogError::CorruptBatch(format!(
                    "record count {} exceeds the offset range {}",
                    h.record_count,
                    h.last_offset_delta as i64 + 1
                )));
            }
        }
    }
    let records = &batch[BATCH_HEADER_SIZE..];
    let payload: Cow<'_, [u8]> = match codec {
        Compression::None => Cow::Borrowed(records),
        _ if opts.require_keys && !h.is_control() => Cow::Owned(compression::decompress(
            codec,
            records,
            opts.max_decompressed_bytes,
        )?),
        // Compressed and no key needed: the inner framing is trusted (the consumer's
        // CRC check of the batch covers it), so no per-record work here.
        _ => return Ok(()),
    };
    let dense = opts.origin == AppendOrigin::Client;
    if !opts.require_keys || h.is_control() {
        return walk_framing(&payload, h, dense);
    }
    let mut iter = RecordIter::new(&payload, h.record_count);
    let mut prev_delta = -1i64;
    while let Some(record) = iter.next_record()? {
        let delta = record.offset_delta as i64;
        let bad = if dense {
            delta != prev_delta + 1
        } else {
            delta <= prev_delta || delta > h.last_offset_delta as i64
        };
        if bad {
            return Err(LogError::InvalidRecord(format!(
                "record offset delta {delta} out of sequence after {prev_delta}"
            )));
        }
        prev_delta = delta;
        if opts.require_keys && !h.is_control() && record.key.is_none() {
            return Err(LogError::InvalidRecord(
                "compacted topic: every record needs a key".into(),
            ));
        }
    }
    if !iter.remaining().is_empty() {
        return Err(LogError::CorruptBatch(format!(
            "{} bytes after the last of {} records",
            iter.remaining().len(),
            h.record_count
        )));
    }
    Ok(())
}

/// The append path's per-record check, kept lean: each record's length varint stays
/// inside the batch, its offset delta is in sequence (dense from 0 for producers,
/// increasing for replicated batches), the count matches and no byte is left over. Keys,
/// values and headers are not parsed (the CRC vouches for their bytes).
fn walk_framing(payload: &[u8], h: &BatchHeader, dense: bool) -> Result<()> {
    let mut cur = Cursor {
        buf: payload,
        pos: 0,
    };
    let mut prev_delta = -1i64;
    for _ in 0..h.record_count {
        let len = cur.varint()?;
        let end = usize::try_from(len)
            .ok()
            .filter(|&l| l >= MIN_RECORD_SIZE - 1)
            .and_then(|l| cur.pos.checked_add(l))
            .filter(|&e| e <= payload.len())
            .ok_or_else(|| {
                LogError::CorruptBatch(format!("record length {len} runs past the batch"))
            })?;
        let mut body = Cursor {
            buf: &payload[..end],
            pos: cur.pos,
        };
        body.byte()?; // attributes
        body.skip_varint(10)?; // timestamp delta
        let delta = body.varint()? as i64;
        let in_sequence = if dense {
            delta == prev_delta + 1
        } else {
            delta > prev_delta && delta <= h.last_offset_delta as i64
        };
        if !in_sequence {
            return Err(LogError::InvalidRecord(format!(
                "record offset delta {delta} out of sequence after {prev_delta}"
            )));
        }
        prev_delta = delta;
        cur.pos = end;
    }
    if cur.pos != payload.len() {
        return Err(LogError::CorruptBatch(format!(
            "{} bytes after the last of {} records",
            payload.len() - cur.pos,
            h.record_count
        )));
    }
    Ok(())
}

/// Assigns offsets to validated batches in place: batch `i` gets the next free offset,
/// and every batch gets `leader_epoch`. Neither field is covered by the CRC, so the CRC
/// stays valid. Returns the offset after the last batch.
pub fn assign_offsets(
    buf: &mut [u8],
    batches: &mut [ValidBatch],
    first_offset: i64,
    leader_epoch: i32,
) -> i64 {
    let next = assign_offsets_to_headers(batches, first_offset, leader_epoch);
    for b in batches.iter() {
        let p = b.position;
        buf[p..p + PATCHED_PREFIX].copy_from_slice(&patched_prefix(&b.header));
    }
    next
}

/// As [`assign_offsets`], on the parsed headers only: the bytes are left as received and
/// the segment writes each batch's [`patched_prefix`] in place of its first bytes.
pub fn assign_offsets_to_headers(
    batches: &mut [ValidBatch],
    first_offset: i64,
    leader_epoch: i32,
) -> i64 {
    let mut next = first_offset;
    for b in batches.iter_mut() {
        b.header.base_offset = next;
        b.header.partition_leader_epoch = leader_epoch;
        next = b.header.next_offset();
    }
    next
}

/// The length of the batch prefix that offset assignment changes: base offset, batch length
/// and partition leader epoch — none of it under the CRC, which starts at the attributes.
pub const PATCHED_PREFIX: usize = MAGIC_POS;

/// A batch's first [`PATCHED_PREFIX`] bytes as `header` says them.
pub fn patched_prefix(header: &BatchHeader) -> [u8; PATCHED_PREFIX] {
    let mut out = [0u8; PATCHED_PREFIX];
    out[BASE_OFFSET_POS..BASE_OFFSET_POS + 8].copy_from_slice(&header.base_offset.to_be_bytes());
    out[LENGTH_POS..LENGTH_POS + 4].copy_from_slice(&header.batch_length.to_be_bytes());
    out[LEADER_EPOCH_POS..LEADER_EPOCH_POS + 4]
        .copy_from_slice(&header.partition_leader_epoch.to_be_bytes());
    out
}

/// Marks a batch as `LogAppendTime` with `now_ms` as its max timestamp (the timestamp of
/// every record in it, as consumers read it) and recomputes the CRC.
pub fn set_log_append_time(buf: &mut [u8], batch: &mut ValidBatch, now_ms: i64) {
    let p = batch.position;
    let bytes = &mut buf[p..p + batch.header.size()];
    let attributes = batch.header.attributes | TIMESTAMP_TYPE_BIT;
    bytes[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(bytes);
    bytes[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    batch.header.attributes = attributes;
    batch.header.max_timestamp = now_ms;
    batch.header.crc = crc;
}

/// One record inside a batch's (decompressed) records section, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The encoded headers section (count + headers), unparsed.
    pub headers: &'a [u8],
    /// The whole encoded record, length prefix included: what the cleaner copies.
    pub encoded: &'a [u8],
}

/// Walks the records of a batch with bounds checks on every length; never panics and
/// never allocates on the strength of a length it read.
#[derive(Debug)]
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    left: i32,
}

impl<'a> RecordIter<'a> {
    pub fn new(records: &'a [u8], count: i32) -> Self {
        RecordIter {
            buf: records,
            pos: 0,
            left: count,
        }
    }

    /// Bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The next record, `None` once `count` records were read.
    pub fn next_record(&mut self) -> Result<Option<Record<'a>>> {
        if self.left <= 0 {
            return Ok(None);
        }
        self.left -= 1;
        let start = self.pos;
        let mut cur = Cursor {
            buf: self.buf,
            pos: self.pos,
        };
        let len = cur.varint()?;
        if len < 0 || (len as usize) < MIN_RECORD_SIZE - 1 {
            return Err(LogError::CorruptBatch(format!("record length {len}")));
        }
        let body_end = cur
            .pos
            .checked_add(len as usize)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                LogError::CorruptBatch(format!("record of {len} bytes runs past the batch"))
            })?;
        let mut body = Cursor {
            buf: &self.buf[..body_end],
            pos: cur.pos,
        };
        let attributes = body.byte()? as i8;
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let key = body.bytes_or_null()?;
        let value = body.bytes_or_null()?;
        let headers_start = body.pos;
        let header_count = body.varint()?;
        if header_count < 0 {
            return Err(LogError::CorruptBatch(format!(
                "header count {header_count}"
            )));
        }
        for _ in 0..header_count {
            if body.bytes_or_null()?.is_none() {
                return Err(LogError::CorruptBatch("null header key".into()));
            }
            body.bytes_or_null()?;
        }
        if body.pos != body_end {
            return Err(LogError::CorruptBatch(format!(
                "record framing: {} bytes declared, {} used",
                len,
                body.pos - (body_end - len as usize)
            )));
        }
        self.pos = body_end;
        Ok(Some(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers: &self.buf[headers_start..body_end],
            encoded: &self.buf[start..body_end],
        }))
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| LogError::CorruptBatch("record truncated".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn unsigned_varint(&mut self, max_bytes: u32) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(LogError::CorruptBatch("varint too long".into()))
    }

    /// Steps over a varint without decoding it.
    fn skip_varint(&mut self, max_bytes: u32) -> Result<()> {
        for _ in 0..max_bytes {
            if self.byte()? & 0x80 == 0 {
                return Ok(());
            }
        }
        Err(LogError::CorruptBatch("varint too long".into()))
    }

    fn varint(&mut self) -> Result<i32> {
        let raw = self.unsigned_varint(5)? as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64> {
        let raw = self.unsigned_varint(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn bytes_or_null(&mut self) -> Result<Option<&'a [u8]>> {
        let len = self.varint()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self
            .pos
            .checked_add(len as usize)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                LogError::CorruptBatch(format!("field of {len} bytes runs past the record"))
            })?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(Some(b))
    }
}

/// Appends a zigzag varint (Kafka's record encoding).
pub fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned_varint(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Appends a zigzag varlong.
pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_unsigned_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The records section of a batch, decompressed if needed (bounded by `max_bytes`).
pub fn records_payload<'a>(
    batch: &'a [u8],
    h: &BatchHeader,
    max_bytes: usize,
) -> Result<Cow<'a, [u8]>> {
    let records = batch
        .get(BATCH_HEADER_SIZE..h.size())
        .ok_or_else(|| LogError::CorruptBatch("batch shorter than its length field".into()))?;
    match h.compression()? {
        Compression::None => Ok(Cow::Borrowed(records)),
        codec => Ok(Cow::Owned(compression::decompress(
            codec, records, max_bytes,
        )?)),
    }
}

/// Fields of a batch to build with [`build_batch`]; the records are given encoded.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpec {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchSpec {
    /// The spec of an existing batch (the cleaner rewrites batches keeping these).
    pub fn of(h: &BatchHeader) -> BatchSpec {
        BatchSpec {
            base_offset: h.base_offset,
            partition_leader_epoch: h.partition_leader_epoch,
            attributes: h.attributes,
            last_offset_delta: h.last_offset_delta,
            base_timestamp: h.base_timestamp,
            max_timestamp: h.max_timestamp,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
        }
    }
}

/// Encodes a v2 batch around already-encoded records, compressing them with the codec in
/// `spec.attributes`, and computes the CRC. Used by the cleaner and by tests and clients;
/// the append path never calls it.
pub fn build_batch(spec: &BatchSpec, encoded_records: &[u8], record_count: i32) -> Result<Vec<u8>> {
    let codec = Compression::from_attributes(spec.attributes)?;
    let body: Cow<'_, [u8]> = match codec {
        Compression::None => Cow::Borrowed(encoded_records),
        c => Cow::Owned(compression::compress(c, encoded_records)?),
    };
    let total = BATCH_HEADER_SIZE + body.len();
    let batch_length = i32::try_from(total - LOG_OVERHEAD)
        .map_err(|_| LogError::InvalidRecord(format!("batch of {total} bytes is too large")))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&spec.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&spec.partition_leader_epoch.to_be_bytes());
    out.push(MAGIC_V2 as u8);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&spec.attributes.to_be_bytes());
    out.extend_from_slice(&spec.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&spec.base_timestamp.to_be_bytes());
    out.extend_from_slice(&spec.max_timestamp.to_be_bytes());
    out.extend_from_slice(&spec.producer_id.to_be_bytes());
    out.extend_from_slice(&spec.producer_epoch.to_be_bytes());
    out.extend_from_slice(&spec.base_sequence.to_be_bytes());
    out.extend_from_slice(&record_count.to_be_bytes());
    out.extend_from_slice(&body);
    let crc = compute_crc(&out);
    out[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Encodes one record (with no headers) as Kafka's v2 format does.
pub fn encode_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    encode_record_with_headers(out, offset_delta, timestamp_delta, key, value, &[]);
}

/// A record header: a key and a possibly null value.
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

/// Encodes one record with its headers as Kafka's v2 format does, straight into `out` (the
/// body's length is computed first, so nothing is allocated per record).
pub fn encode_record_with_headers(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header<'_>],
) {
    let field_len = |f: Option<&[u8]>| match f {
        Some(b) => varint_len(b.len() as i32) + b.len(),
        None => varint_len(-1),
    };
    let body_len = 1
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + field_len(key)
        + field_len(value)
        + varint_len(headers.len() as i32)
        + headers
            .iter()
            .map(|(k, v)| field_len(Some(k)) + field_len(*v))
            .sum::<usize>();
    out.reserve(body_len + 5);
    put_varint(out, body_len as i32);
    out.push(0); // attributes
    put_varlong(out, timestamp_delta);
    put_varint(out, offset_delta);
    put_bytes_or_null(out, key);
    put_bytes_or_null(out, value);
    put_varint(out, headers.len() as i32);
    for (k, v) in headers {
        put_bytes_or_null(out, Some(k));
        put_bytes_or_null(out, *v);
    }
}

/// Bytes of a zigzag varint.
fn varint_len(v: i32) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Bytes of a zigzag varlong.
fn varlong_len(v: i64) -> usize {
    unsigned_varint_len(((v << 1) ^ (v >> 63)) as u64)
}

fn put_bytes_or_null(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

fn unsigned_varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The headers of a record, from its encoded headers section ([`Record::headers`]). The
/// count is checked against the bytes before anything is reserved.
pub fn parse_headers(section: &[u8]) -> Result<Vec<Header<'_>>> {
    let mut cur = Cursor {
        buf: section,
        pos: 0,
    };
    let count = cur.varint()?;
    // Each header takes at least two bytes (two varint lengths).
    if count < 0 || count as usize > section.len() / 2 {
        return Err(LogError::CorruptBatch(format!("header count {count}")));
    }
    let mut headers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let key = cur
            .bytes_or_null()?
            .ok_or_else(|| LogError::CorruptBatch("null header key".into()))?;
        headers.push((key, cur.bytes_or_null()?));
    }
    Ok(headers)
}

/// A record's key and value, either possibly null.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A simple producer-side batch of records, used by tests, benchmarks and the client:
/// `records` are (key, value) pairs with timestamps `base_timestamp + i`.
pub fn simple_batch(
    codec: Compression,
    base_timestamp: i64,
    records: &[KeyValue<'_>],
) -> Result<Vec<u8>> {
    let mut encoded = Vec::new();
    for (i, (k, v)) in records.iter().enumerate() {
        encode_record(&mut encoded, i as i32, i as i64, *k, *v);
    }
    let n = records.len() as i32;
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: codec.id(),
        last_offset_delta: (n - 1).max(0),
        base_timestamp,
        max_timestamp: base_timestamp + (n as i64 - 1).max(0),
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
    };
    build_batch(&spec, &encoded, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths_match_the_encoder() {
        for v in [
            0i64,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(varlong_len(v), out.len(), "varlong {v}");
            if let Ok(v) = i32::try_from(v) {
                out.clear();
                put_varint(&mut out, v);
                assert_eq!(varint_len(v), out.len(), "varint {v}");
            }
        }
    }

    fn opts(origin: AppendOrigin) -> ValidationOptions {
        ValidationOptions {
            origin,
            max_batch_bytes: 1 << 20,
            require_keys: false,
            max_decompressed_bytes: 1 << 24,
        }
    }

    fn batch(n: usize) -> Vec<u8> {
        let recs: Vec<KeyValue<'_>> = (0..n)
            .map(|_| (Some(&b"key"[..]), Some(&b"value"[..])))
            .collect();
        simple_batch(Compression::None, 1000, &recs).unwrap()
    }

    #[test]
    fn built_batch_validates_and_parses() {
        let b = batch(3);
        let v = validate_batches(&b, &opts(AppendOrigin::Client)).unwrap();
        assert_eq!(v.len(), 1);
        let h = v[0].header;
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp, 1002);
        assert_eq!(h.size(), b.len());
        let mut it = RecordIter::new(&b[BATCH_HEADER_SIZE..], 3);
        let mut n = 0;
        while let Some(r) = it.next_record().unwrap() {
            assert_eq!(r.key, Some(&b"key"[..]));
            assert_eq!(r.value, Some(&b"value"[..]));
            assert_eq!(r.offset_delta, n);
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn several_batches_get_consecutive_offsets_without_crc_change() {
        let mut buf = batch(2);
        buf.extend(batch(5));
        let mut v = validate_batches(&buf, &opts(AppendOrigin::Client)).unwrap();
        let next = assign_offsets(&mut buf, &mut v, 100, 7);
        assert_eq!(next, 107);
        let again = validate_batches(&buf, &opts(AppendOrigin::Replication)).unwrap();
        assert_eq!(again[0].header.base_offset, 100);
        assert_eq!(again[1].header.base_offset, 102);
        assert_eq!(again[1].header.partition_leader_epoch, 7);
    }

    #[test]
    fn log_append_time_rewrites_timestamp_and_crc() {
        let mut buf = batch(2);
        let mut v = validate_batches(&buf, &opts(AppendOrigin::Client)).unwrap();
        set_log_append_time(&mut buf, &mut v[0], 555);
        let again = validate_batches(&buf, &opts(AppendOrigin::Client)).unwrap();
        assert!(again[0].header.is_log_append_time());
        assert_eq!(again[0].header.max_timestamp, 555);
    }

    #[test]
    fn bad_magic_crc_length_and_count_are_refused() {
        let good = batch(2);
        let o = opts(AppendOrigin::Client);

        let mut bad_magic = good.clone();
        bad_magic[MAGIC_POS] = 1;
        assert!(
            matches!(validate_batches(&bad_magic, &o), Err(LogError::CorruptBatch(m)) if m.contains("magic"))
        );

        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        assert!(
            matches!(validate_batches(&bad_crc, &o), Err(LogError::CorruptBatch(m)) if m.contains("CRC"))
        );

        let mut too_long = good.clone();
        let len = be_i32(&too_long, LENGTH_POS) + 10;
        too_long[LENGTH_POS..LENGTH_POS + 4].copy_from_slice(&len.to_be_bytes());
        assert!(
            matches!(validate_batches(&too_long, &o), Err(LogError::CorruptBatch(m)) if m.contains("remain"))
        );

        // A record count that disagrees with the records (CRC fixed up so only the count is wrong).
        let mut bad_count = good.clone();
        bad_count[RECORD_COUNT_POS..RECORD_COUNT_POS + 4].copy_from_slice(&3i32.to_be_bytes());
        bad_count[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4]
            .copy_from_slice(&2i32.to_be_bytes());
        let crc = compute_crc(&bad_count);
        bad_count[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(validate_batches(&bad_count, &o).is_err());

        let mut mismatch = good.clone();
        mismatch[LAST_OFFSET_DELTA_POS..LAST_OFFSET_DELTA_POS + 4]
            .copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&mismatch);
        mismatch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_batches(&mismatch, &o),
            Err(LogError::InvalidRecord(_))
        ));

        assert!(validate_batches(&good[..40], &o).is_err());
        assert!(validate_batches(&[], &o).is_err());
    }

    #[test]
    fn oversized_batch_is_refused() {
        let b = batch(100);
        let o = ValidationOptions {
            max_batch_bytes: 100,
            ..opts(AppendOrigin::Client)
        };
        assert!(matches!(
            validate_batches(&b, &o),
            Err(LogError::BatchTooLarge { .. })
        ));
    }

    #[test]
    fn compacted_topics_need_keys_even_in_compressed_batches() {
        let o = ValidationOptions {
            require_keys: true,
            ..opts(AppendOrigin::Client)
        };
        for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let keyed = simple_batch(codec, 0, &[(Some(b"k"), Some(b"v"))]).unwrap();
            assert!(validate_batches(&keyed, &o).is_ok());
            let keyless =
                simple_batch(codec, 0, &[(Some(b"k"), Some(b"v")), (None, Some(b"v"))]).unwrap();
            assert!(
                matches!(
                    validate_batches(&keyless, &o),
                    Err(LogError::InvalidRecord(_))
                ),
                "{codec:?}"
            );
        }
    }

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.varint().unwrap(), v);
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            let mut c = Cursor { buf: &out, pos: 0 };
            assert_eq!(c.varlong().unwrap(), v);
        }
    }

    #[test]
    fn garbage_never_panics() {
        let o = opts(AppendOrigin::Replication);
        let mut seed = 12345u64;
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = validate_batches(&buf, &o);
            let _ = RecordIter::new(&buf, 1000).next_record();
        }
    }
}
