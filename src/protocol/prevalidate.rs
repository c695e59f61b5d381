//! The pre-decode walk: bounds what kafka-protocol's decoders allocate for a request frame.
//!
//! # Why
//! kafka-protocol 0.18 sizes vectors from counts read off the wire before reading a single
//! element: `types::Array` does `Vec::with_capacity(n)` with `n` up to `i32::MAX`,
//! `types::CompactArray` `Vec::with_capacity(n - 1)` with `n` up to `u32::MAX`
//! (`protocol/types.rs`), and `records.rs` does `records.reserve(record_count)` and
//! `IndexMap::with_capacity(num_headers)`. An 18-byte Metadata v1 request (null client id,
//! size prefix included) announcing `i32::MAX` topics asks the allocator for 2^31 × 72 bytes
//! (`MetadataRequestTopic`) = 144 GiB; the allocation fails and Rust aborts the process
//! (`handle_alloc_error` aborts, it does not unwind), or with overcommit it succeeds virtually
//! and the next such frame goes further. `records.reserve` is the same: 2^31 × 176 bytes
//! (`Record`) from a 61-byte batch header — which is why Produce records stay opaque here.
//!
//! # How
//! Before the crate's decoder sees a frame, `check_request` walks it with the crate's own
//! wire layout (`schema.rs`, extracted from the crate's generated decoders), reading
//! every length, count and tagged field the decoder will read, in the same order, and:
//! - rejects any count or length larger than the bytes left after it (Kafka's own rule: its
//!   generated Java readers throw "Tried to allocate a collection of size N, but there are
//!   only M bytes remaining");
//! - walks every element, so a count that passes is a count of elements that really are in the
//!   frame: the decoder's `with_capacity(n)` then reserves exactly what it is about to fill;
//! - adds up what the decoder will allocate (`count × size_of::<Element>()` for each vector, a
//!   fixed cost per unknown tagged field) and rejects the frame if that exceeds its budget,
//!   [`DECODE_BUDGET_FACTOR`] × frame length + [`DECODE_BUDGET_FLOOR`]. Strings, bytes and
//!   records cost nothing: the decoder slices them out of the frame's `Bytes` without copying.
//!
//! So decoding a frame of `n` bytes allocates at most `16 n + 1 MiB` besides the frame itself,
//! and never aborts. The walk is strict where the crate is lax: it rejects varints longer than
//! 5 bytes and known tagged fields whose declared size differs from their content, so the
//! walk and the decoder can never disagree about where a field starts.
//!
//! Forking the crate was the alternative; the walk keeps it unmodified, costs one pass over
//! the header and the (small) non-records part of a request, and its table is checked against
//! the crate by the tests below.

use kafka_protocol::messages::ApiKey;

use super::error::DecodeError;
use super::schema::request_schema;

/// Allocation budget for decoding a frame, per byte of frame. Real requests stay far below it
/// (their decoded structs are at most a few times their wire size, records and strings being
/// shared with the frame); only crafted frames of many tiny elements get near it.
pub const DECODE_BUDGET_FACTOR: usize = 16;

/// Allocation budget every frame gets regardless of its size, so that small requests with
/// many short names (a Metadata request for a thousand one-letter topics) always pass.
pub const DECODE_BUDGET_FLOOR: usize = 1024 * 1024;

/// What one unknown tagged field costs once decoded: a `BTreeMap<i32, Bytes>` entry and its
/// share of a node.
const TAGGED_FIELD_COST: usize = 64;

/// `flexible` for a struct that has no flexible version.
#[allow(dead_code)] // used by the generated table when some struct has no flexible version
pub(super) const NEVER: i16 = i16::MAX;

/// The layout of one struct of a request, all versions.
#[derive(Debug)]
pub(super) struct StructSchema {
    /// The crate's name for the struct, for error messages.
    pub(super) name: &'static str,
    /// First version with a tagged-field section ([`NEVER`] if none).
    pub(super) flexible: i16,
    /// `size_of` the crate's struct: what one element of a vector of it costs.
    pub(super) size_of: usize,
    /// Fields in wire order; a field appears once per encoding it has across versions.
    pub(super) fields: &'static [Field],
    /// Tagged fields the crate's decoder knows (and decodes, whatever their declared size).
    pub(super) tagged: &'static [Tagged],
}

/// One field of a [`StructSchema`], present in `versions` (inclusive) with encoding `ty`.
#[derive(Debug)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) versions: (i16, i16),
    pub(super) ty: Ty,
}

/// A known tagged field: `tag`, valid in `versions`, encoded as `ty` inside its tagged-field
/// envelope (tag, size, value).
#[derive(Debug)]
pub(super) struct Tagged {
    pub(super) tag: u32,
    pub(super) name: &'static str,
    pub(super) versions: (i16, i16),
    pub(super) ty: Ty,
}

/// A wire encoding, named after kafka-protocol's `types::*` decoder that reads it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Uuid,
    /// i16 length (-1 = null), then bytes.
    String,
    /// Unsigned varint length + 1 (0 = null), then bytes.
    CompactString,
    /// i32 length (-1 = null), then bytes.
    Bytes,
    /// Unsigned varint length + 1 (0 = null), then bytes.
    CompactBytes,
    /// i32 count (-1 = null), then the elements.
    Array(&'static StructSchema),
    /// Unsigned varint count + 1 (0 = null), then the elements.
    CompactArray(&'static StructSchema),
    ArrayInt32,
    ArrayString,
    CompactArrayInt32,
    CompactArrayCompactString,
    /// A struct inline (only as a tagged field's value).
    Struct(&'static StructSchema),
}

impl Field {
    fn in_version(&self, version: i16) -> bool {
        self.versions.0 <= version && version <= self.versions.1
    }
}

/// The request header, versions 1 and 2 (version 0 is only used by ControlledShutdown v0).
static REQUEST_HEADER: StructSchema = StructSchema {
    name: "RequestHeader",
    flexible: 2,
    size_of: 0,
    fields: &[
        Field {
            name: "request_api_key",
            versions: (1, 2),
            ty: Ty::Int16,
        },
        Field {
            name: "request_api_version",
            versions: (1, 2),
            ty: Ty::Int16,
        },
        Field {
            name: "correlation_id",
            versions: (1, 2),
            ty: Ty::Int32,
        },
        Field {
            name: "client_id",
            versions: (1, 2),
            ty: Ty::String,
        },
    ],
    tagged: &[],
};

/// Walks a whole request frame (header at `header_version`, then the `api_key` body at
/// `version`) and checks that kafka-protocol can decode it within bounded memory: see the
/// module documentation. Bytes after the body are ignored (Kafka does the same).
pub(crate) fn check_request(
    frame: &[u8],
    header_version: i16,
    api_key: ApiKey,
    version: i16,
) -> Result<(), DecodeError> {
    let Some(body) = request_schema(api_key) else {
        return Err(DecodeError::Invalid {
            schema: "request",
            field: "request_api_key",
            reason: "no schema for this API",
        });
    };
    let mut walk = Walk::new(frame);
    walk.walk_struct(&REQUEST_HEADER, header_version)?;
    walk.walk_struct(body, version)?;
    // Bytes after the body are left alone, as Kafka's parser does: the decoders never read
    // them, so they size nothing.
    Ok(())
}

/// A cursor over a frame that reads the way kafka-protocol's decoders do and keeps a running
/// estimate of what they will allocate.
struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
    estimate: usize,
    limit: usize,
}

impl<'a> Walk<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Walk {
            buf,
            pos: 0,
            estimate: 0,
            limit: buf
                .len()
                .saturating_mul(DECODE_BUDGET_FACTOR)
                .saturating_add(DECODE_BUDGET_FLOOR),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn walk_struct(
        &mut self,
        schema: &'static StructSchema,
        version: i16,
    ) -> Result<(), DecodeError> {
        for field in schema.fields.iter().filter(|f| f.in_version(version)) {
            self.walk_ty(schema, field.name, field.ty, version)?;
        }
        if version >= schema.flexible {
            self.walk_tagged_fields(schema, version)?;
        }
        Ok(())
    }

    fn walk_ty(
        &mut self,
        schema: &'static StructSchema,
        field: &'static str,
        ty: Ty,
        version: i16,
    ) -> Result<(), DecodeError> {
        let at = At { schema, field };
        match ty {
            Ty::Bool | Ty::Int8 => self.skip(at, 1),
            Ty::Int16 => self.skip(at, 2),
            Ty::Int32 => self.skip(at, 4),
            Ty::Int64 => self.skip(at, 8),
            Ty::Uuid => self.skip(at, 16),
            Ty::String => {
                let len = self.read_i16(at)?;
                self.skip_nullable(at, i64::from(len))
            }
            Ty::Bytes => {
                let len = self.read_i32(at)?;
                self.skip_nullable(at, i64::from(len))
            }
            Ty::CompactString | Ty::CompactBytes => {
                let len = self.read_compact_len(at)?;
                self.skip_nullable(at, len)
            }
            Ty::Array(element) => {
                let count = self.read_i32(at)?;
                self.walk_elements(at, i64::from(count), element, version)
            }
            Ty::CompactArray(element) => {
                let count = self.read_compact_len(at)?;
                self.walk_elements(at, count, element, version)
            }
            Ty::ArrayInt32 => {
                let count = self.read_i32(at)?;
                self.walk_ints(at, i64::from(count))
            }
            Ty::CompactArrayInt32 => {
                let count = self.read_compact_len(at)?;
                self.walk_ints(at, count)
            }
            Ty::ArrayString => {
                let count = self.read_i32(at)?;
                self.walk_strings(at, i64::from(count), Ty::String)
            }
            Ty::CompactArrayCompactString => {
                let count = self.read_compact_len(at)?;
                self.walk_strings(at, count, Ty::CompactString)
            }
            Ty::Struct(inner) => self.walk_struct(inner, version),
        }
    }

    /// The tagged-field section of a flexible struct. Known tags are walked as their type and
    /// must fill their declared size exactly (the crate decodes them ignoring the size, so a
    /// mismatch would desynchronise it); a known tag outside its versions is an error, as in
    /// the crate; unknown tags are skipped and charged as the map entries they become.
    fn walk_tagged_fields(
        &mut self,
        schema: &'static StructSchema,
        version: i16,
    ) -> Result<(), DecodeError> {
        let at = At {
            schema,
            field: "tagged fields",
        };
        let count = self.read_uvarint(at)?;
        self.check_len(at, u64::from(count))?;
        for _ in 0..count {
            let tag = self.read_uvarint(at)?;
            let size = self.read_uvarint(at)?;
            self.check_len(at, u64::from(size))?;
            let size = size as usize;
            match schema.tagged.iter().find(|t| t.tag == tag) {
                Some(known) if known.versions.0 <= version && version <= known.versions.1 => {
                    let start = self.pos;
                    self.walk_ty(schema, known.name, known.ty, version)?;
                    if self.pos - start != size {
                        return Err(at.invalid("tagged field size differs from its content"));
                    }
                }
                Some(_) => return Err(at.invalid("tagged field not valid in this version")),
                None => {
                    self.charge(TAGGED_FIELD_COST)?;
                    self.skip(at, size)?;
                }
            }
        }
        Ok(())
    }

    fn walk_elements(
        &mut self,
        at: At,
        count: i64,
        element: &'static StructSchema,
        version: i16,
    ) -> Result<(), DecodeError> {
        let Some(count) = self.array_count(at, count)? else {
            return Ok(());
        };
        self.charge(count.saturating_mul(element.size_of))?;
        for _ in 0..count {
            self.walk_struct(element, version)?;
        }
        Ok(())
    }

    fn walk_ints(&mut self, at: At, count: i64) -> Result<(), DecodeError> {
        let Some(count) = self.array_count(at, count)? else {
            return Ok(());
        };
        let bytes = count.saturating_mul(4);
        self.check_len(at, bytes as u64)?;
        self.charge(bytes)?;
        self.skip(at, bytes)
    }

    fn walk_strings(&mut self, at: At, count: i64, string: Ty) -> Result<(), DecodeError> {
        let Some(count) = self.array_count(at, count)? else {
            return Ok(());
        };
        self.charge(count.saturating_mul(size_of::<kafka_protocol::protocol::StrBytes>()))?;
        for _ in 0..count {
            self.walk_ty(at.schema, at.field, string, 0)?;
        }
        Ok(())
    }

    /// `None` for a null array; the count otherwise, once checked against the bytes left
    /// (every element takes at least one byte in every struct the crate decodes as an array
    /// element, so this is never stricter than the format).
    fn array_count(&self, at: At, count: i64) -> Result<Option<usize>, DecodeError> {
        match count {
            -1 => Ok(None),
            c if c < -1 => Err(at.invalid("negative array length")),
            c => {
                self.check_len(at, c as u64)?;
                Ok(Some(c as usize))
            }
        }
    }

    /// Skips a string or byte field whose length has been read (-1 = null).
    fn skip_nullable(&mut self, at: At, len: i64) -> Result<(), DecodeError> {
        match len {
            -1 => Ok(()),
            l if l < -1 => Err(at.invalid("negative length")),
            l => {
                self.check_len(at, l as u64)?;
                self.skip(at, l as usize)
            }
        }
    }

    fn check_len(&self, at: At, len: u64) -> Result<(), DecodeError> {
        if len > self.remaining() as u64 {
            return Err(DecodeError::LengthExceedsFrame {
                schema: at.schema.name,
                field: at.field,
                len,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    fn charge(&mut self, bytes: usize) -> Result<(), DecodeError> {
        self.estimate = self.estimate.saturating_add(bytes);
        if self.estimate > self.limit {
            return Err(DecodeError::DecodeBudgetExceeded {
                estimate: self.estimate,
                limit: self.limit,
                frame_len: self.buf.len(),
            });
        }
        Ok(())
    }

    fn skip(&mut self, at: At, n: usize) -> Result<(), DecodeError> {
        if n > self.remaining() {
            return Err(at.invalid("truncated"));
        }
        self.pos += n;
        Ok(())
    }

    fn read_u8(&mut self, at: At) -> Result<u8, DecodeError> {
        let byte = *self.buf.get(self.pos).ok_or(at.invalid("truncated"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn read_array<const N: usize>(&mut self, at: At) -> Result<[u8; N], DecodeError> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or(at.invalid("truncated"))?;
        self.pos += N;
        Ok(bytes)
    }

    fn read_i16(&mut self, at: At) -> Result<i16, DecodeError> {
        self.read_array(at).map(i16::from_be_bytes)
    }

    fn read_i32(&mut self, at: At) -> Result<i32, DecodeError> {
        self.read_array(at).map(i32::from_be_bytes)
    }

    /// An unsigned varint exactly as kafka-protocol reads it (7 bits per byte, the bits past
    /// 32 dropped), but at most 5 bytes: the crate would stop after the fifth byte and read
    /// the rest as the next field, Kafka rejects it, so do we.
    fn read_uvarint(&mut self, at: At) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..5 {
            let byte = self.read_u8(at)?;
            value |= u32::from(byte & 0x7f) << (i * 7);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(at.invalid("varint longer than 5 bytes"))
    }

    /// A compact length or count: stored + 1, so 0 is null (returned as -1).
    fn read_compact_len(&mut self, at: At) -> Result<i64, DecodeError> {
        Ok(i64::from(self.read_uvarint(at)?) - 1)
    }
}

/// Where the walk is, for error messages.
#[derive(Clone, Copy)]
struct At {
    schema: &'static StructSchema,
    field: &'static str,
}

impl At {
    fn invalid(self, reason: &'static str) -> DecodeError {
        DecodeError::Invalid {
            schema: self.schema.name,
            field: self.field,
            reason,
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::ApiKey;

    use super::*;
    use crate::protocol::request::{decode_request, encode_request, Request, RequestOutcome};
    use crate::protocol::versions::{supported_versions, CODEC_APIS};

    /// A small deterministic PRNG (xorshift64*), so the tests need no extra dependency.
    pub(in crate::protocol) struct Rng(pub(in crate::protocol) u64);

    impl Rng {
        pub(in crate::protocol) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(in crate::protocol) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn put_uvarint(buf: &mut BytesMut, mut value: u32) {
        while value >= 0x80 {
            buf.put_u8((value as u8) | 0x80);
            value >>= 7;
        }
        buf.put_u8(value as u8);
    }

    fn gen_text(rng: &mut Rng) -> Vec<u8> {
        (0..rng.below(8))
            .map(|_| b'a' + rng.below(26) as u8)
            .collect()
    }

    /// Random bytes laid out as `schema` says for `version`: what a client following the
    /// table would send. Never null, booleans 0/1, tags ascending, unknown tags above the
    /// known ones — so that the crate re-encodes exactly these bytes.
    fn gen_struct(rng: &mut Rng, buf: &mut BytesMut, schema: &StructSchema, version: i16) {
        for field in schema.fields.iter().filter(|f| f.in_version(version)) {
            gen_ty(rng, buf, field.ty, version);
        }
        if version < schema.flexible {
            return;
        }
        let mut tags: Vec<(u32, BytesMut)> = Vec::new();
        for tagged in schema.tagged {
            if tagged.versions.0 <= version && version <= tagged.versions.1 && rng.below(2) == 0 {
                let mut value = BytesMut::new();
                gen_ty(rng, &mut value, tagged.ty, version);
                tags.push((tagged.tag, value));
            }
        }
        for tag in 20..20 + rng.below(3) as u32 {
            let mut value = BytesMut::new();
            value.put_slice(&gen_text(rng));
            tags.push((tag, value));
        }
        put_uvarint(buf, tags.len() as u32);
        for (tag, value) in tags {
            put_uvarint(buf, tag);
            put_uvarint(buf, value.len() as u32);
            buf.put_slice(&value);
        }
    }

    fn gen_ty(rng: &mut Rng, buf: &mut BytesMut, ty: Ty, version: i16) {
        let count = |rng: &mut Rng| rng.below(3) as u32;
        match ty {
            Ty::Bool => buf.put_u8(rng.below(2) as u8),
            Ty::Int8 => buf.put_u8(rng.next() as u8),
            Ty::Int16 => buf.put_u16(rng.next() as u16),
            Ty::Int32 => buf.put_u32(rng.next() as u32),
            Ty::Int64 => buf.put_u64(rng.next()),
            Ty::Uuid => {
                buf.put_u64(rng.next());
                buf.put_u64(rng.next());
            }
            Ty::String => {
                let text = gen_text(rng);
                buf.put_i16(text.len() as i16);
                buf.put_slice(&text);
            }
            Ty::CompactString | Ty::CompactBytes => {
                let text = gen_text(rng);
                put_uvarint(buf, text.len() as u32 + 1);
                buf.put_slice(&text);
            }
            Ty::Bytes => {
                let text = gen_text(rng);
                buf.put_i32(text.len() as i32);
                buf.put_slice(&text);
            }
            Ty::Array(element) | Ty::CompactArray(element) => {
                let n = count(rng);
                if matches!(ty, Ty::Array(_)) {
                    buf.put_i32(n as i32);
                } else {
                    put_uvarint(buf, n + 1);
                }
                for _ in 0..n {
                    gen_struct(rng, buf, element, version);
                }
            }
            Ty::ArrayInt32 | Ty::CompactArrayInt32 => {
                let n = count(rng);
                if matches!(ty, Ty::ArrayInt32) {
                    buf.put_i32(n as i32);
                } else {
                    put_uvarint(buf, n + 1);
                }
                for _ in 0..n {
                    buf.put_u32(rng.next() as u32);
                }
            }
            Ty::ArrayString | Ty::CompactArrayCompactString => {
                let n = count(rng);
                let inner = if matches!(ty, Ty::ArrayString) {
                    buf.put_i32(n as i32);
                    Ty::String
                } else {
                    put_uvarint(buf, n + 1);
                    Ty::CompactString
                };
                for _ in 0..n {
                    gen_ty(rng, buf, inner, version);
                }
            }
            Ty::Struct(inner) => gen_struct(rng, buf, inner, version),
        }
    }

    /// A random body of `api_key` at `version`, laid out by the schema table.
    pub(in crate::protocol) fn random_body(rng: &mut Rng, api_key: ApiKey, version: i16) -> Bytes {
        let mut body = BytesMut::new();
        gen_struct(rng, &mut body, request_schema(api_key).unwrap(), version);
        body.freeze()
    }

    /// The table agrees with kafka-protocol, field for field: random bodies laid out by the
    /// table are walked to their end, decode with the crate to their end, and re-encode with
    /// the crate to the same bytes. A field missing from, extra in, or wrongly typed in the
    /// table breaks one of the three.
    #[test]
    fn schema_matches_the_crate() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for &api_key in CODEC_APIS {
            let schema = request_schema(api_key).unwrap();
            let range = supported_versions(api_key).unwrap();
            for version in range.min..=range.max {
                for _ in 0..40 {
                    let body = random_body(&mut rng, api_key, version);

                    let mut walk = Walk::new(&body);
                    walk.walk_struct(schema, version).unwrap();
                    assert_eq!(walk.remaining(), 0, "{api_key:?} v{version}");

                    let mut buf = body.clone();
                    let decoded = Request::decode_body(api_key, &mut buf, version)
                        .unwrap_or_else(|e| panic!("{e} {body:?}"));
                    assert!(buf.is_empty(), "{api_key:?} v{version}: crate left {buf:?}");

                    let mut again = BytesMut::new();
                    decoded.encode_body(&mut again, version).unwrap();
                    assert_eq!(again.freeze(), body, "{api_key:?} v{version}: {decoded:?}");
                }
            }
        }
    }

    #[test]
    fn every_codec_api_has_a_schema() {
        for &api_key in CODEC_APIS {
            assert!(request_schema(api_key).is_some(), "{api_key:?}");
        }
    }

    /// The smallest encoding of `schema` at `version`: nulls and empty arrays everywhere.
    fn min_wire_size(schema: &StructSchema, version: i16) -> usize {
        let fields: usize = schema
            .fields
            .iter()
            .filter(|f| f.in_version(version))
            .map(|f| match f.ty {
                Ty::Bool | Ty::Int8 | Ty::CompactString | Ty::CompactBytes => 1,
                Ty::CompactArray(_) | Ty::CompactArrayInt32 | Ty::CompactArrayCompactString => 1,
                Ty::Int16 | Ty::String => 2,
                Ty::Int32 | Ty::Bytes | Ty::Array(_) | Ty::ArrayInt32 | Ty::ArrayString => 4,
                Ty::Int64 => 8,
                Ty::Uuid => 16,
                Ty::Struct(inner) => min_wire_size(inner, version),
            })
            .sum();
        fields + usize::from(version >= schema.flexible)
    }

    fn array_elements(
        schema: &'static StructSchema,
        version: i16,
        out: &mut Vec<&'static StructSchema>,
    ) {
        for field in schema.fields.iter().filter(|f| f.in_version(version)) {
            if let Ty::Array(e) | Ty::CompactArray(e) = field.ty {
                out.push(e);
                array_elements(e, version, out);
            }
        }
    }

    /// Every array element takes at least one byte, so "count ≤ bytes left" never rejects a
    /// valid frame. And the reason for the budget: the worst element (OffsetFetchRequestGroup
    /// v8: 3 bytes on the wire, 120 in memory) decodes to 40 times its size, so a frame made
    /// of such elements would cost 40 × its length without the budget's 16 ×. If a crate
    /// upgrade pushes this far higher, revisit DECODE_BUDGET_FACTOR.
    #[test]
    fn array_elements_take_at_least_one_byte() {
        let mut worst = (0.0f64, "", 0);
        for &api_key in CODEC_APIS {
            let range = supported_versions(api_key).unwrap();
            for version in range.min..=range.max {
                let mut elements = Vec::new();
                array_elements(request_schema(api_key).unwrap(), version, &mut elements);
                for element in elements {
                    let wire = min_wire_size(element, version);
                    assert!(wire >= 1, "{} v{version} can be empty", element.name);
                    let ratio = element.size_of as f64 / wire as f64;
                    if ratio > worst.0 {
                        worst = (ratio, element.name, version);
                    }
                }
            }
        }
        assert!(
            worst.0 > DECODE_BUDGET_FACTOR as f64,
            "the budget binds: {worst:?}"
        );
        assert!(worst.0 <= 64.0, "{worst:?}");
    }

    fn frame_of(header_and_body: &[u8]) -> Bytes {
        Bytes::copy_from_slice(header_and_body)
    }

    /// Header bytes for `api_key` v`version`, correlation id 7, client id "c".
    fn header(api_key: ApiKey, version: i16) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_i16(api_key as i16);
        buf.put_i16(version);
        buf.put_i32(7);
        buf.put_i16(1);
        buf.put_u8(b'c');
        if api_key.request_header_version(version) >= 2 {
            buf.put_u8(0);
        }
        buf
    }

    fn assert_length_rejected(frame: Bytes) {
        match decode_request(frame) {
            RequestOutcome::Malformed {
                key: Some(key),
                error: DecodeError::LengthExceedsFrame { .. },
            } => assert_eq!(key.correlation_id, 7),
            other => panic!("{other:?}"),
        }
    }

    /// The attack the walk exists for: a tiny frame announcing 2^31 - 1 array elements (≈ 150
    /// GiB once pre-sized by the crate) is refused before the crate sees it.
    #[test]
    fn huge_array_counts_are_rejected_not_allocated() {
        // Metadata v1: topics, i32 count.
        let mut frame = header(ApiKey::Metadata, 1);
        frame.put_i32(i32::MAX);
        frame.put_u16(0);
        assert_length_rejected(frame.freeze());

        // Metadata v12: compact count u32::MAX - 1 (varint ff ff ff ff 0f).
        let mut frame = header(ApiKey::Metadata, 12);
        frame.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        frame.put_slice(&[0, 0, 0]);
        assert_length_rejected(frame.freeze());

        // Produce v7, nested: one topic whose partition count is huge.
        let mut frame = header(ApiKey::Produce, 7);
        frame.put_i16(-1); // transactional id
        frame.put_i16(1); // acks
        frame.put_i32(1000); // timeout
        frame.put_i32(1); // one topic
        frame.put_i16(1);
        frame.put_u8(b't');
        frame.put_i32(0x4000_0000); // partitions
        assert_length_rejected(frame.freeze());

        // CreateTopics v4: an int32 array (broker ids) of 2^30 entries.
        let mut frame = header(ApiKey::CreateTopics, 4);
        frame.put_i32(1);
        frame.put_i16(1);
        frame.put_u8(b't');
        frame.put_i32(1);
        frame.put_i16(1);
        frame.put_i32(1); // one assignment
        frame.put_i32(0); // partition index
        frame.put_i32(0x4000_0000); // broker ids
        frame.put_i32(0);
        assert_length_rejected(frame.freeze());

        // A record set (bytes) longer than the frame.
        let mut frame = header(ApiKey::Produce, 3);
        frame.put_i16(-1);
        frame.put_i16(1);
        frame.put_i32(1000);
        frame.put_i32(1);
        frame.put_i16(1);
        frame.put_u8(b't');
        frame.put_i32(1);
        frame.put_i32(0);
        frame.put_i32(i32::MAX);
        assert_length_rejected(frame.freeze());

        // A huge count of tagged fields in a flexible body.
        let mut frame = header(ApiKey::ApiVersions, 3);
        frame.put_u8(1);
        frame.put_u8(1);
        frame.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_length_rejected(frame.freeze());
    }

    /// Under the count rule but over the budget: a frame of a million empty topic names
    /// (2 bytes each on the wire, a 50+ byte struct each once decoded).
    #[test]
    fn many_tiny_elements_exceed_the_budget() {
        let n = 1_000_000;
        let mut frame = header(ApiKey::Metadata, 1);
        frame.put_i32(n);
        for _ in 0..n {
            frame.put_i16(0);
        }
        match decode_request(frame.freeze()) {
            RequestOutcome::Malformed {
                error: DecodeError::DecodeBudgetExceeded { .. },
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }

    /// A large but ordinary request passes: Metadata for 20 000 topics with real names.
    #[test]
    fn large_ordinary_requests_pass() {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        use kafka_protocol::messages::{MetadataRequest, TopicName};
        let topics: Vec<_> = (0..20_000)
            .map(|i| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(format!("orders-{i}").into())))
            })
            .collect();
        for version in [1, 9, 12] {
            let body = Request::from(MetadataRequest::default().with_topics(Some(topics.clone())));
            let mut frame = encode_request(&body, version, 7, Some("c")).unwrap();
            let frame = frame.split_off(4);
            match decode_request(frame) {
                RequestOutcome::Request(request) => assert_eq!(request.body, body),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn overlong_varints_and_bad_tag_sizes_are_rejected() {
        // A 6-byte varint as the count of tagged fields.
        let mut frame = header(ApiKey::ApiVersions, 3);
        frame.put_u8(1);
        frame.put_u8(1);
        frame.put_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
        let outcome = decode_request(frame_of(&frame));
        assert!(
            matches!(
                outcome,
                RequestOutcome::Malformed {
                    error: DecodeError::Invalid {
                        reason: "varint longer than 5 bytes",
                        ..
                    },
                    ..
                }
            ),
            "{outcome:?}"
        );

        // Fetch v12 cluster_id (tag 0) whose declared size (5) disagrees with its content (2).
        let mut frame = header(ApiKey::Fetch, 12);
        frame.put_i32(-1); // replica id
        frame.put_i32(0);
        frame.put_i32(0);
        frame.put_i32(0);
        frame.put_u8(0);
        frame.put_i32(0);
        frame.put_i32(-1);
        frame.put_u8(1); // no topics
        frame.put_u8(1); // no forgotten topics
        frame.put_u8(1); // rack ""
        frame.put_u8(1); // one tagged field
        frame.put_u8(0); // tag 0
        frame.put_u8(5); // size 5
        frame.put_slice(&[2, b'x', 0, 0, 0]);
        let outcome = decode_request(frame_of(&frame));
        assert!(
            matches!(
                outcome,
                RequestOutcome::Malformed {
                    error: DecodeError::Invalid {
                        reason: "tagged field size differs from its content",
                        ..
                    },
                    ..
                }
            ),
            "{outcome:?}"
        );
    }
}
