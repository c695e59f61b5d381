//! Record-batch compression codecs.
//!
//! In Kafka's v2 record batch format the codec is named by bits 0..2 of the batch
//! `attributes` (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd; 5..7 are unassigned). Only
//! the records section — everything after the 61-byte batch header — is compressed,
//! as one stream; the header stays plain so the broker can assign offsets and check
//! the CRC without decompressing.
//!
//! The codecs' wire shapes are not all what their names suggest:
//!
//! * **gzip** is an RFC 1952 gzip stream (Java's `GZIPOutputStream`).
//! * **lz4** is the LZ4 *frame* format (magic `04 22 4D 18`, frame descriptor, blocks,
//!   end mark), not a bare LZ4 block. Kafka's Java reader (`KafkaLZ4BlockInputStream`)
//!   understands a single frame with block sizes of 64 KiB to 4 MiB, and so do we.
//! * **snappy** arrives in two framings. librdkafka (and clients built on it) send one
//!   *raw* snappy block (the block format: a varint uncompressed length, then tagged
//!   literals and copies). The Java client sends snappy-java's *xerial* framing: the
//!   magic `\x82SNAPPY\0`, a version int32 BE, a compatible-version int32 BE, then
//!   repeated `[int32 BE length][raw snappy block]` chunks. Neither is the official
//!   snappy "framing format" (`sNaPpY` stream identifier), which Kafka never uses.
//! * **zstd** is a standard zstd frame.
//!
//! Decompression takes a `max_output` bound because the compressed bytes come from a
//! client: a megabyte of gzip expands to a gigabyte, and zstd or LZ4 go further. Every
//! decoder here stops, with an error, as soon as the output would pass the bound, and
//! the output buffer never grows beyond it.

use std::fmt;
use std::io::{self, Read, Write};

use super::{LogError, Result};

/// Bits of the batch attributes that hold the codec id.
const CODEC_MASK: i16 = 0x07;

/// snappy-java's stream header magic, which starts every xerial-framed stream.
const XERIAL_MAGIC: [u8; 8] = *b"\x82SNAPPY\0";
/// Magic plus the two int32 version fields.
const XERIAL_HEADER_LEN: usize = 16;
/// What snappy-java's `SnappyOutputStream` writes (`DEFAULT_VERSION`,
/// `MINIMUM_COMPATIBLE_VERSION`); its reader refuses streams it is not compatible with.
const XERIAL_VERSION: i32 = 1;
const XERIAL_COMPATIBLE_VERSION: i32 = 1;
/// snappy-java's default chunk size; Java readers size their buffers for it.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// The LZ4 frame magic number (little-endian on the wire).
const LZ4_FRAME_MAGIC: u32 = 0x184D_2204;
const LZ4_FLG_DICTIONARY_ID: u8 = 0x01;
const LZ4_FLG_CONTENT_CHECKSUM: u8 = 0x04;
const LZ4_FLG_CONTENT_SIZE: u8 = 0x08;
const LZ4_FLG_BLOCK_CHECKSUM: u8 = 0x10;
/// Set in a block's size word when the block is stored uncompressed.
const LZ4_BLOCK_UNCOMPRESSED_BIT: u32 = 0x8000_0000;

/// Kafka's default zstd level (`compression.zstd.level` = 3, also zstd's own default).
const ZSTD_LEVEL: i32 = 3;
/// Largest zstd window a frame may ask for: zstd's own default decoder limit (128 MiB),
/// stated explicitly so a library default change cannot loosen it. It is not tied to
/// `max_output` because streaming producers (zstd-jni without a pledged size) declare a
/// window from the level — 2 MiB at level 3, up to 128 MiB at level 22 — regardless of
/// how small the batch is; only the part of the window actually written is touched.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Size of the scratch buffer the streaming decoders are drained through.
const READ_CHUNK: usize = 32 * 1024;

/// A record batch's compression codec.
///
/// Kept as a closed enum (rather than the raw attribute bits) so that an unknown codec
/// is refused once, when the batch header is parsed, and every later `match` is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Records stored as they are.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// snappy, raw block or xerial-framed on input; xerial-framed on output.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// zstd frame format.
    Zstd,
}

impl Compression {
    /// Reads the codec from a v2 batch's attributes, so that callers never have to know
    /// which bits hold it; the other attribute bits (timestamp type, transactional,
    /// control, delete horizon) are ignored.
    ///
    /// Codec ids 5..7 are refused: a batch we cannot decompress cannot be validated, and
    /// storing it would hand consumers something they cannot read either.
    pub fn from_attributes(attributes: i16) -> Result<Compression> {
        match attributes & CODEC_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(LogError::Compression(format!(
                "unknown compression codec {other}"
            ))),
        }
    }

    /// The codec id as written into attribute bits 0..2, for building batch headers
    /// (e.g. when the broker re-compresses to a topic's `compression.type`).
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Kafka's name for the codec (`CompressionType.name`), as used in configs, logs and
    /// metrics, so operators see the same words as with a Java broker.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses one of Kafka's codec names, for config values such as `compression.type`.
    ///
    /// Matching is exact (lower case), like Kafka's. `"uncompressed"` is accepted as
    /// well as `"none"` because that is how the topic-level `compression.type` spells
    /// it; `"producer"` is not a codec and is left to the config layer.
    pub fn from_name(name: &str) -> Option<Compression> {
        match name {
            "none" | "uncompressed" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            "lz4" => Some(Compression::Lz4),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Decompresses a batch's records section.
///
/// `max_output` is the most bytes the caller is prepared to hold: the input comes from a
/// client, so the output is never allowed to grow past it — the decoders are drained
/// incrementally and stopped with an error as soon as they would exceed it, and raw
/// snappy's declared length is checked before anything is allocated. (The codecs' own
/// working memory is separate and bounded by the format: LZ4 buffers of about three
/// 4 MiB blocks, a zstd window of at most 128 MiB of which only what is written gets
/// touched.)
///
/// Empty input is refused for every real codec: each one encodes even an empty payload
/// as a non-empty stream, so empty input can only be a truncated or forged batch.
pub fn decompress(codec: Compression, input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    match codec {
        Compression::None => {
            if input.len() > max_output {
                return Err(too_large(codec, max_output));
            }
            Ok(input.to_vec())
        }
        _ if input.is_empty() => Err(corrupt(codec, "empty input")),
        Compression::Gzip => read_bounded(
            codec,
            flate2::bufread::MultiGzDecoder::new(input),
            input.len(),
            max_output,
        ),
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                decompress_xerial(input, max_output)
            } else {
                decompress_snappy_block(input, max_output)
            }
        }
        Compression::Lz4 => {
            check_lz4_framing(input)?;
            read_bounded(
                codec,
                lz4_flex::frame::FrameDecoder::new(input),
                input.len(),
                max_output,
            )
        }
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| corrupt(codec, e))?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, decoder, input.len(), max_output)
        }
    }
}

/// Compresses a records section the way Kafka clients expect to read it.
///
/// Snappy is written in the xerial framing, not as a raw block: the Java client's
/// `SnappyInputStream` and librdkafka both read xerial, while a raw block is only safe
/// for librdkafka (snappy-java falls back to raw only for a stream shorter than its
/// header), and the Java broker itself re-compresses snappy with xerial. LZ4 is written
/// as one frame of independent 64 KiB blocks without checksums, what Kafka's own
/// `KafkaLZ4BlockOutputStream` produces and the only block mode its reader handles.
/// gzip uses level 6 and zstd level 3, Kafka's defaults.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>> {
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(input.len() / 2 + 32),
                flate2::Compression::new(6),
            );
            encoder
                .write_all(input)
                .map_err(|e| compress_failed(codec, e))?;
            encoder.finish().map_err(|e| compress_failed(codec, e))
        }
        Compression::Snappy => compress_xerial(input),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(input.len() / 2 + 32),
            );
            encoder
                .write_all(input)
                .map_err(|e| compress_failed(codec, e))?;
            encoder.finish().map_err(|e| compress_failed(codec, e))
        }
        Compression::Zstd => {
            zstd::bulk::compress(input, ZSTD_LEVEL).map_err(|e| compress_failed(codec, e))
        }
    }
}

fn too_large(codec: Compression, max_output: usize) -> LogError {
    LogError::Compression(format!(
        "{codec}: decompressed size exceeds the limit of {max_output} bytes"
    ))
}

fn corrupt(codec: Compression, reason: impl fmt::Display) -> LogError {
    LogError::Compression(format!("{codec}: invalid compressed data: {reason}"))
}

fn compress_failed(codec: Compression, reason: impl fmt::Display) -> LogError {
    LogError::Compression(format!("{codec}: compression failed: {reason}"))
}

/// Makes room for `additional` more bytes without letting the capacity pass
/// `max_output`; the caller has checked that `out.len() + additional <= max_output`.
/// Plain `Vec` growth doubles, which could allocate up to twice the bound.
fn reserve_bounded(out: &mut Vec<u8>, additional: usize, max_output: usize) {
    let needed = out.len().saturating_add(additional);
    if needed > out.capacity() {
        let target = out
            .capacity()
            .saturating_mul(2)
            .max(needed)
            .min(max_output)
            .max(needed);
        out.reserve_exact(target - out.len());
    }
}

/// Drains a streaming decoder, failing as soon as the output would exceed `max_output`,
/// so a decompression bomb is cut off after at most `max_output` + one chunk of work.
fn read_bounded(
    codec: Compression,
    mut reader: impl Read,
    input_len: usize,
    max_output: usize,
) -> Result<Vec<u8>> {
    // A guess at the output size (records compress a few times over) to avoid most
    // regrowth, never more than the bound.
    let mut out = Vec::with_capacity(input_len.saturating_mul(4).min(max_output));
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(codec, e)),
        };
        let data = chunk
            .get(..n)
            .ok_or_else(|| corrupt(codec, "decoder reported more bytes than its buffer"))?;
        if n > max_output - out.len() {
            return Err(too_large(codec, max_output));
        }
        reserve_bounded(&mut out, n, max_output);
        out.extend_from_slice(data);
    }
}

/// One raw snappy block, as librdkafka sends it. The block states its uncompressed
/// length up front, so the bound is checked before the output is allocated.
fn decompress_snappy_block(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    let len = snap::raw::decompress_len(input).map_err(|e| corrupt(codec, e))?;
    if len > max_output {
        return Err(too_large(codec, max_output));
    }
    let mut out = vec![0; len];
    let written = snap::raw::Decoder::new()
        .decompress(input, &mut out)
        .map_err(|e| corrupt(codec, e))?;
    out.truncate(written);
    Ok(out)
}

/// snappy-java's xerial framing, as the Java client sends it. The version fields are
/// not checked (librdkafka does not either); a chunk length equal to the start of the
/// magic marks a concatenated stream, which snappy-java also accepts.
fn decompress_xerial(input: &[u8], max_output: usize) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    let mut rest = input
        .get(XERIAL_HEADER_LEN..)
        .ok_or_else(|| corrupt(codec, "truncated xerial header"))?;
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.starts_with(&XERIAL_MAGIC) {
            rest = rest
                .get(XERIAL_HEADER_LEN..)
                .ok_or_else(|| corrupt(codec, "truncated xerial header"))?;
            continue;
        }
        let (len_bytes, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(codec, "truncated xerial chunk length"))?;
        let len = i32::from_be_bytes(*len_bytes);
        let len = usize::try_from(len)
            .map_err(|_| corrupt(codec, format!("negative xerial chunk length {len}")))?;
        if len > tail.len() {
            return Err(corrupt(
                codec,
                format!(
                    "xerial chunk of {len} bytes overruns the input ({} bytes left)",
                    tail.len()
                ),
            ));
        }
        let (block, next) = tail.split_at(len);
        let block_len = snap::raw::decompress_len(block).map_err(|e| corrupt(codec, e))?;
        if block_len > max_output - out.len() {
            return Err(too_large(codec, max_output));
        }
        reserve_bounded(&mut out, block_len, max_output);
        let start = out.len();
        out.resize(start + block_len, 0);
        let dest = out
            .get_mut(start..)
            .ok_or_else(|| corrupt(codec, "xerial output buffer"))?;
        let written = decoder
            .decompress(block, dest)
            .map_err(|e| corrupt(codec, e))?;
        out.truncate(start + written);
        rest = next;
    }
    Ok(out)
}

fn compress_xerial(input: &[u8]) -> Result<Vec<u8>> {
    let codec = Compression::Snappy;
    let mut encoder = snap::raw::Encoder::new();
    let mut scratch = vec![0; snap::raw::max_compress_len(XERIAL_BLOCK_SIZE)];
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + input.len() / 2);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_COMPATIBLE_VERSION.to_be_bytes());
    for block in input.chunks(XERIAL_BLOCK_SIZE) {
        let n = encoder
            .compress(block, &mut scratch)
            .map_err(|e| compress_failed(codec, e))?;
        let len = i32::try_from(n).map_err(|e| compress_failed(codec, e))?;
        let compressed = scratch
            .get(..n)
            .ok_or_else(|| compress_failed(codec, "snappy block larger than its bound"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(compressed);
    }
    Ok(out)
}

/// Walks the LZ4 frame structure (header, block sizes, end mark) without
/// decompressing, and requires the input to be exactly one frame.
///
/// `lz4_flex`'s decoder treats input that stops at a block boundary as a clean end of
/// stream, and stops after the first frame without looking at what follows. A frame
/// missing its end mark — which Kafka's Java reader refuses as "Stream ended
/// prematurely" — would otherwise decode as a silently shortened payload, and bytes
/// after the frame would be silently dropped. This also refuses the legacy and
/// skippable frame kinds and block sizes outside the standard 64 KiB..4 MiB, none of
/// which Kafka clients produce (Kafka's reader handles one standard frame only).
fn check_lz4_framing(input: &[u8]) -> Result<()> {
    let codec = Compression::Lz4;
    let mut rest = input;
    let magic = u32::from_le_bytes(lz4_take(&mut rest, "frame magic")?);
    if magic != LZ4_FRAME_MAGIC {
        return Err(corrupt(
            codec,
            format!("not an LZ4 frame (magic {magic:#010x})"),
        ));
    }
    let [flg, bd] = lz4_take(&mut rest, "frame descriptor")?;
    let block_size_id = (bd >> 4) & 0x07;
    if !(4..=7).contains(&block_size_id) {
        return Err(corrupt(
            codec,
            format!("unsupported LZ4 block size id {block_size_id}"),
        ));
    }
    let max_block = 1usize << (8 + 2 * usize::from(block_size_id));
    let mut descriptor_rest = 1; // header checksum byte
    if flg & LZ4_FLG_CONTENT_SIZE != 0 {
        descriptor_rest += 8;
    }
    if flg & LZ4_FLG_DICTIONARY_ID != 0 {
        descriptor_rest += 4;
    }
    lz4_skip(&mut rest, descriptor_rest, "frame descriptor")?;
    loop {
        let size = u32::from_le_bytes(lz4_take(&mut rest, "block size")?);
        if size == 0 {
            if flg & LZ4_FLG_CONTENT_CHECKSUM != 0 {
                lz4_skip(&mut rest, 4, "content checksum")?;
            }
            break;
        }
        let len =
            usize::try_from(size & !LZ4_BLOCK_UNCOMPRESSED_BIT).map_err(|e| corrupt(codec, e))?;
        if len > max_block {
            return Err(corrupt(
                codec,
                format!("LZ4 block of {len} bytes exceeds the frame's {max_block}"),
            ));
        }
        lz4_skip(&mut rest, len, "block")?;
        if flg & LZ4_FLG_BLOCK_CHECKSUM != 0 {
            lz4_skip(&mut rest, 4, "block checksum")?;
        }
    }
    if !rest.is_empty() {
        return Err(corrupt(
            codec,
            format!("{} bytes after the end of the LZ4 frame", rest.len()),
        ));
    }
    Ok(())
}

fn lz4_take<const N: usize>(rest: &mut &[u8], what: &str) -> Result<[u8; N]> {
    let (head, tail) = rest
        .split_first_chunk::<N>()
        .ok_or_else(|| corrupt(Compression::Lz4, format!("truncated LZ4 {what}")))?;
    *rest = tail;
    Ok(*head)
}

fn lz4_skip(rest: &mut &[u8], n: usize, what: &str) -> Result<()> {
    *rest = rest
        .get(n..)
        .ok_or_else(|| corrupt(Compression::Lz4, format!("truncated LZ4 {what}")))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    const COMPRESSED: [Compression; 4] = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    const MIB: usize = 1024 * 1024;

    /// Deterministic bytes that look like records: words drawn from a small vocabulary
    /// by an LCG, so they compress but are not trivially repetitive.
    fn compressible(len: usize) -> Vec<u8> {
        const WORDS: [&[u8]; 8] = [
            b"topic",
            b"partition",
            b"offset",
            b"key=",
            b"value:",
            b"\x00\x01",
            b"sluice ",
            b"1234567890",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let word = WORDS[(state >> 61) as usize];
            out.extend_from_slice(word);
            out.push((state >> 33) as u8);
        }
        out.truncate(len);
        out
    }

    fn inputs() -> Vec<Vec<u8>> {
        vec![
            Vec::new(),
            b"a".to_vec(),
            b"hello, sluice! hello, sluice! hello, sluice!".to_vec(),
            compressible(100_000),
            compressible(MIB),
        ]
    }

    /// Builds xerial framing by hand, the way snappy-java's `SnappyOutputStream` does.
    fn xerial(input: &[u8], chunk: usize) -> Vec<u8> {
        let mut out = b"\x82SNAPPY\0".to_vec();
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        let mut encoder = snap::raw::Encoder::new();
        for block in input.chunks(chunk) {
            let compressed = encoder.compress_vec(block).unwrap();
            out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
            out.extend_from_slice(&compressed);
        }
        out
    }

    fn assert_too_large(result: Result<Vec<u8>>) {
        match result {
            Err(LogError::Compression(msg)) => {
                assert!(
                    msg.contains("exceeds the limit"),
                    "unexpected message: {msg}"
                )
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(out) => panic!("bomb decompressed to {} bytes", out.len()),
        }
    }

    #[test]
    fn round_trip_every_codec() {
        for codec in ALL {
            for input in inputs() {
                let compressed = compress(codec, &input).unwrap();
                let output = decompress(codec, &compressed, input.len()).unwrap();
                assert!(
                    output == input,
                    "{codec} round trip of {} bytes",
                    input.len()
                );
            }
        }
    }

    #[test]
    fn compressible_input_shrinks() {
        let input = compressible(MIB);
        for codec in COMPRESSED {
            let compressed = compress(codec, &input).unwrap();
            assert!(
                compressed.len() < input.len() / 2,
                "{codec}: {} bytes",
                compressed.len()
            );
        }
    }

    #[test]
    fn output_at_exactly_the_limit_is_accepted_and_capacity_stays_bounded() {
        let input = compressible(300_000);
        for codec in ALL {
            let compressed = compress(codec, &input).unwrap();
            let output = decompress(codec, &compressed, input.len()).unwrap();
            assert_eq!(output.len(), input.len());
            assert!(output.capacity() <= input.len(), "{codec} over-allocated");
            assert_too_large(decompress(codec, &compressed, input.len() - 1));
        }
    }

    #[test]
    fn snappy_output_is_xerial_framed() {
        let out = compress(Compression::Snappy, &compressible(100_000)).unwrap();
        assert_eq!(&out[..8], b"\x82SNAPPY\0");
        assert_eq!(&out[8..12], &1i32.to_be_bytes());
        assert_eq!(&out[12..16], &1i32.to_be_bytes());
        // Chunks hold at most 32 KiB of input, as snappy-java's do.
        let mut rest = &out[16..];
        let mut decoded = 0;
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let n = snap::raw::decompress_len(&rest[4..4 + len]).unwrap();
            assert!(n <= 32 * 1024);
            decoded += n;
            rest = &rest[4 + len..];
        }
        assert_eq!(decoded, 100_000);
        // An empty payload is the header alone.
        assert_eq!(compress(Compression::Snappy, b"").unwrap().len(), 16);
    }

    #[test]
    fn hand_built_xerial_decodes() {
        let input = compressible(200_000);
        for chunk in [1000, 32 * 1024, 200_000] {
            let framed = xerial(&input, chunk);
            assert_eq!(
                decompress(Compression::Snappy, &framed, MIB).unwrap(),
                input
            );
        }
        // Header only: an empty payload.
        assert_eq!(
            decompress(Compression::Snappy, &xerial(b"", 1), MIB).unwrap(),
            b""
        );
    }

    #[test]
    fn concatenated_xerial_streams_decode() {
        let a = compressible(50_000);
        let b = b"second stream".to_vec();
        let mut framed = xerial(&a, 32 * 1024);
        framed.extend_from_slice(&xerial(&b, 32 * 1024));
        let mut expected = a;
        expected.extend_from_slice(&b);
        assert_eq!(
            decompress(Compression::Snappy, &framed, MIB).unwrap(),
            expected
        );
    }

    #[test]
    fn raw_snappy_decodes() {
        for input in [b"x".to_vec(), compressible(100_000), compressible(MIB)] {
            let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
            assert_eq!(
                decompress(Compression::Snappy, &raw, input.len()).unwrap(),
                input
            );
        }
    }

    #[test]
    fn decompression_bombs_are_refused() {
        let zeros = vec![0u8; 64 * MIB];
        for codec in COMPRESSED {
            let bomb = compress(codec, &zeros).unwrap();
            assert!(
                bomb.len() * 10 < zeros.len(),
                "{codec} bomb is {} bytes",
                bomb.len()
            );
            assert_too_large(decompress(codec, &bomb, MIB));
        }
        // Raw snappy, checked from its declared length before allocating.
        let raw = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        assert_too_large(decompress(Compression::Snappy, &raw, MIB));
        // Uncompressed input larger than the bound.
        assert_too_large(decompress(Compression::None, &zeros[..2 * MIB], MIB));
    }

    #[test]
    fn oversized_declared_lengths_are_refused_before_allocating() {
        // A raw snappy block claiming 2 GiB (varint 0x80_00_00_00) followed by junk:
        // refused from the header alone, without a 2 GiB allocation.
        let mut raw = vec![0x80, 0x80, 0x80, 0x80, 0x08];
        raw.extend_from_slice(&[0u8; 16]);
        assert_too_large(decompress(Compression::Snappy, &raw, MIB));
        // The same block inside xerial framing.
        let mut framed = xerial(b"", 1);
        framed.extend_from_slice(&(raw.len() as i32).to_be_bytes());
        framed.extend_from_slice(&raw);
        assert_too_large(decompress(Compression::Snappy, &framed, MIB));
        // Many small xerial chunks whose sum passes the bound.
        let framed = xerial(&vec![7u8; 2 * MIB], 32 * 1024);
        assert_too_large(decompress(Compression::Snappy, &framed, MIB));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let valid = compressible(100_000);
        for codec in COMPRESSED {
            let compressed = compress(codec, &valid).unwrap();
            let must_fail: Vec<Vec<u8>> = vec![
                Vec::new(),
                vec![0xff; 64],
                vec![0x00; 3],
                b"definitely not compressed data, just text".to_vec(),
                compressed[..compressed.len() / 2].to_vec(),
                compressed[..compressed.len() - 1].to_vec(),
            ];
            for input in must_fail {
                match decompress(codec, &input, 10 * MIB) {
                    Err(LogError::Compression(_)) => {}
                    Err(other) => panic!("{codec}: unexpected error kind {other}"),
                    Ok(out) => panic!(
                        "{codec}: garbage of {} bytes decoded to {} bytes",
                        input.len(),
                        out.len()
                    ),
                }
            }
            // Bytes flipped inside a stream: snappy, LZ4 (as written here) and zstd
            // frames carry no content checksum, so a flip inside a literal can decode
            // to wrong bytes (the batch CRC is what catches that); it must not panic.
            for offset in [8, compressed.len() / 3, compressed.len() / 2] {
                let mut flipped = compressed.clone();
                for b in flipped.iter_mut().skip(offset).take(8) {
                    *b ^= 0x5a;
                }
                match decompress(codec, &flipped, 10 * MIB) {
                    Ok(_) | Err(LogError::Compression(_)) => {}
                    Err(other) => panic!("{codec}: unexpected error kind {other}"),
                }
            }
        }
    }

    #[test]
    fn truncated_xerial_is_an_error() {
        let framed = xerial(&compressible(10_000), 1000);
        for cut in [3, 8, 12, 17, 20, framed.len() - 1] {
            assert!(
                decompress(Compression::Snappy, &framed[..cut], MIB).is_err(),
                "cut at {cut}"
            );
        }
        // A negative chunk length.
        let mut negative = xerial(b"", 1);
        negative.extend_from_slice(&(-5i32).to_be_bytes());
        assert!(decompress(Compression::Snappy, &negative, MIB).is_err());
    }

    #[test]
    fn lz4_input_must_be_exactly_one_complete_frame() {
        let input = compressible(200_000);
        let frame = compress(Compression::Lz4, &input).unwrap();
        // Drop the 4-byte end mark: lz4_flex alone would accept this.
        let without_end_mark = &frame[..frame.len() - 4];
        assert!(decompress(Compression::Lz4, without_end_mark, MIB).is_err());
        // Trailing junk after a complete frame.
        let mut trailing = frame.clone();
        trailing.extend_from_slice(b"junk");
        assert!(decompress(Compression::Lz4, &trailing, MIB).is_err());
        // A second frame would be dropped by lz4_flex and by Kafka's Java reader alike.
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        assert!(decompress(Compression::Lz4, &two, MIB).is_err());
        // A frame with block checksums, a content checksum and a content size (what
        // the lz4 command-line tool and librdkafka may write) is accepted.
        let info = lz4_flex::frame::FrameInfo::new()
            .block_size(lz4_flex::frame::BlockSize::Max256KB)
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(input.len() as u64));
        let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        encoder.write_all(&input).unwrap();
        let full = encoder.finish().unwrap();
        assert_eq!(decompress(Compression::Lz4, &full, MIB).unwrap(), input);
    }

    #[test]
    fn codec_from_attributes() {
        assert_eq!(Compression::from_attributes(0).unwrap(), Compression::None);
        for codec in ALL {
            assert_eq!(Compression::from_attributes(codec.id()).unwrap(), codec);
            // Higher attribute bits (timestamp type, transactional, control) are ignored.
            assert_eq!(
                Compression::from_attributes(codec.id() | 0b0111_1000).unwrap(),
                codec
            );
        }
        for id in 5..=7 {
            match Compression::from_attributes(id) {
                Err(LogError::Compression(msg)) => {
                    assert_eq!(msg, format!("unknown compression codec {id}"))
                }
                other => panic!("codec {id}: {other:?}"),
            }
        }
        assert!(Compression::from_attributes(-1).is_err());
    }

    #[test]
    fn codec_names() {
        for codec in ALL {
            assert_eq!(Compression::from_name(codec.name()), Some(codec));
            assert_eq!(codec.to_string(), codec.name());
        }
        assert_eq!(
            Compression::from_name("uncompressed"),
            Some(Compression::None)
        );
        assert_eq!(Compression::from_name("producer"), None);
        assert_eq!(Compression::from_name("GZIP"), None);
        assert_eq!(Compression::from_name(""), None);
    }
}
