//! Fetch responses whose records are written from segment files with `sendfile`.
//!
//! kafka-protocol's `FetchResponse` holds each partition's records as in-memory `Bytes`. A
//! broker serving from its log should not read them into memory: [`encode_fetch_response`]
//! writes everything *around* the records (size prefix, response header, every topic and
//! partition field) and leaves, for each partition the caller marks as file-backed, a
//! [`FetchResponsePiece::FileRecords`] placeholder. The connection writes the pieces in order,
//! `Bytes` with `write`, placeholders with `sendfile` from the file slice.
//!
//! Only the lengths of the slices are needed up front: the records field's own length prefix
//! (an int32 before v12, an unsigned varint of length + 1 from v12, the flexible versions) and
//! the frame's size prefix are computed from them. The slices must then deliver exactly `len`
//! bytes — a segment truncated in between would corrupt the stream, so the caller keeps the
//! file handle open and the slice within what the log had when it answered.
//!
//! The layout is kafka-protocol's, field for field, for every version Sluice advertises
//! (v4 to v18); the tests encode the same responses through the crate and through this module
//! and compare bytes. Wherever the crate refuses a value (a field set that the version lacks),
//! this module refuses it too. Sub-structures without records (aborted transactions, tagged
//! fields' values, node endpoints) are encoded by the crate itself.
//!
//! # Fetch layout, v4 to v18
//! ```text
//! FetchResponse      throttle_time_ms i32, error_code i16 (v7+), session_id i32 (v7+),
//!                    responses [FetchableTopicResponse], tags (v12+: 0 node_endpoints v16+)
//! FetchableTopic…    topic string (≤ v12), topic_id uuid (v13+), partitions [PartitionData],
//!                    tags (v12+)
//! PartitionData      partition_index i32, error_code i16, high_watermark i64,
//!                    last_stable_offset i64, log_start_offset i64 (v5+),
//!                    aborted_transactions [AbortedTransaction] nullable,
//!                    preferred_read_replica i32 (v11+), records bytes nullable,
//!                    tags (v12+: 0 diverging_epoch, 1 current_leader, 2 snapshot_id)
//! ```
//! Arrays, strings and bytes are compact (varint length + 1, 0 = null) from v12.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::error::{EncodeError, FrameError};
use super::frame::{size_prefix, MAX_FRAME_SIZE, SIZE_PREFIX_LEN};
use super::response::response_header_version;
use super::versions::is_supported;

/// First Fetch version with flexible (compact, tagged) encoding.
const FLEXIBLE: i16 = 12;

/// Where one partition's records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionRecords<F> {
    /// `PartitionData::records` as it is: `None` is encoded as null, `Some` as those bytes
    /// (shared, not copied).
    Inline,
    /// `len` bytes from the file slice `slice`, written by the connection.
    File {
        /// The caller's handle on the bytes (a file slice, or an index into its own list).
        slice: F,
        /// Exactly how many bytes the slice delivers.
        len: usize,
    },
}

/// One part of an encoded Fetch response frame, in write order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResponsePiece<F> {
    /// Bytes encoded here (the first one starts with the frame's size prefix), or a partition's
    /// inline records.
    Bytes(Bytes),
    /// A partition's records: write `len` bytes from `slice`.
    FileRecords {
        /// The handle the caller gave in [`PartitionRecords::File`].
        slice: F,
        /// Its length, already counted in the frame's size prefix.
        len: usize,
    },
}

impl<F> FetchResponsePiece<F> {
    /// How many bytes this piece puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            FetchResponsePiece::Bytes(bytes) => bytes.len(),
            FetchResponsePiece::FileRecords { len, .. } => *len,
        }
    }

    /// Whether the piece is empty (never produced by [`encode_fetch_response`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Encodes a Fetch response frame for a request of `api_version` carrying `correlation_id`.
///
/// `records(t, p)` says where the records of `response.responses[t].partitions[p]` come from;
/// for [`PartitionRecords::File`] that partition's `records` field is ignored. The pieces'
/// lengths add up to the frame's size prefix + 4.
pub fn encode_fetch_response<F>(
    response: &FetchResponse,
    api_version: i16,
    correlation_id: i32,
    mut records: impl FnMut(usize, usize) -> PartitionRecords<F>,
) -> Result<Vec<FetchResponsePiece<F>>, EncodeError> {
    if !is_supported(ApiKey::Fetch, api_version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key: ApiKey::Fetch,
            version: api_version,
        });
    }
    let mut w = PieceWriter::new(api_version);
    w.buf.put_bytes(0, SIZE_PREFIX_LEN);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    w.crate_encode(&header, response_header_version(ApiKey::Fetch, api_version))?;
    w.put_response(response, &mut records)?;
    w.finish()
}

/// Accumulates the encoded bytes and where records are spliced in.
struct PieceWriter<F> {
    version: i16,
    /// Everything encoded here, size prefix first.
    buf: BytesMut,
    /// Records to splice in, with the offset in `buf` they go at, in order.
    inserts: Vec<(usize, FetchResponsePiece<F>)>,
    /// Bytes of the inserts.
    inserted: usize,
}

impl<F> PieceWriter<F> {
    fn new(version: i16) -> Self {
        PieceWriter {
            version,
            buf: BytesMut::with_capacity(256),
            inserts: Vec::new(),
            inserted: 0,
        }
    }

    fn flexible(&self) -> bool {
        self.version >= FLEXIBLE
    }

    fn error(&self, reason: impl Into<String>) -> EncodeError {
        EncodeError::Body {
            api_key: ApiKey::Fetch,
            version: self.version,
            reason: reason.into(),
        }
    }

    fn put_response(
        &mut self,
        response: &FetchResponse,
        records: &mut impl FnMut(usize, usize) -> PartitionRecords<F>,
    ) -> Result<(), EncodeError> {
        self.buf.put_i32(response.throttle_time_ms);
        if self.version >= 7 {
            self.buf.put_i16(response.error_code);
            self.buf.put_i32(response.session_id);
        } else if response.session_id != 0 {
            return Err(self.error("session_id is set, but only exists from v7"));
        }
        self.put_array_len(Some(response.responses.len()))?;
        for (t, topic) in response.responses.iter().enumerate() {
            self.put_topic(topic, |p| records(t, p))?;
        }
        if self.flexible() {
            let mut known = Vec::new();
            if self.version >= 16 && !response.node_endpoints.is_empty() {
                let mut value = BytesMut::new();
                put_uvarint(&mut value, compact_len(response.node_endpoints.len())?);
                for endpoint in &response.node_endpoints {
                    self.crate_encode_into(&mut value, endpoint, self.version)?;
                }
                known.push((0, value));
            }
            self.put_tagged_fields(known, &response.unknown_tagged_fields, 1)?;
        }
        Ok(())
    }

    fn put_topic(
        &mut self,
        topic: &FetchableTopicResponse,
        mut records: impl FnMut(usize) -> PartitionRecords<F>,
    ) -> Result<(), EncodeError> {
        if self.version <= 12 {
            self.put_string(topic.topic.as_bytes())?;
        }
        if self.version >= 13 {
            self.buf.put_slice(topic.topic_id.as_bytes());
        }
        self.put_array_len(Some(topic.partitions.len()))?;
        for (p, partition) in topic.partitions.iter().enumerate() {
            self.put_partition(partition, records(p))?;
        }
        if self.flexible() {
            self.put_tagged_fields(Vec::new(), &topic.unknown_tagged_fields, 0)?;
        }
        Ok(())
    }

    fn put_partition(
        &mut self,
        partition: &PartitionData,
        records: PartitionRecords<F>,
    ) -> Result<(), EncodeError> {
        self.buf.put_i32(partition.partition_index);
        self.buf.put_i16(partition.error_code);
        self.buf.put_i64(partition.high_watermark);
        self.buf.put_i64(partition.last_stable_offset);
        if self.version >= 5 {
            self.buf.put_i64(partition.log_start_offset);
        }
        self.put_aborted_transactions(partition.aborted_transactions.as_deref())?;
        if self.version >= 11 {
            self.buf.put_i32(*partition.preferred_read_replica);
        } else if partition.preferred_read_replica != -1 {
            return Err(self.error("preferred_read_replica is set, but only exists from v11"));
        }
        match records {
            PartitionRecords::Inline => match &partition.records {
                None => self.put_bytes_len(None)?,
                Some(bytes) => {
                    self.put_bytes_len(Some(bytes.len()))?;
                    self.insert(FetchResponsePiece::Bytes(bytes.clone()));
                }
            },
            PartitionRecords::File { slice, len } => {
                self.put_bytes_len(Some(len))?;
                self.insert(FetchResponsePiece::FileRecords { slice, len });
            }
        }
        if self.flexible() {
            let mut known = Vec::new();
            if partition.diverging_epoch != Default::default() {
                known.push((0, self.crate_encoded(&partition.diverging_epoch)?));
            }
            if partition.current_leader != Default::default() {
                known.push((1, self.crate_encoded(&partition.current_leader)?));
            }
            if partition.snapshot_id != Default::default() {
                known.push((2, self.crate_encoded(&partition.snapshot_id)?));
            }
            self.put_tagged_fields(known, &partition.unknown_tagged_fields, 3)?;
        }
        Ok(())
    }

    fn put_aborted_transactions(
        &mut self,
        aborted: Option<&[AbortedTransaction]>,
    ) -> Result<(), EncodeError> {
        self.put_array_len(aborted.map(<[_]>::len))?;
        for transaction in aborted.unwrap_or_default() {
            self.crate_encode(transaction, self.version)?;
        }
        Ok(())
    }

    /// Splices `piece` in at the current position.
    fn insert(&mut self, piece: FetchResponsePiece<F>) {
        if piece.is_empty() {
            return;
        }
        self.inserted = self.inserted.saturating_add(piece.len());
        self.inserts.push((self.buf.len(), piece));
    }

    /// An array's length: int32 (-1 = null), or from v12 a varint of length + 1 (0 = null).
    fn put_array_len(&mut self, len: Option<usize>) -> Result<(), EncodeError> {
        match (self.flexible(), len) {
            (true, None) => put_uvarint(&mut self.buf, 0),
            (true, Some(len)) => put_uvarint(&mut self.buf, compact_len(len)?),
            (false, None) => self.buf.put_i32(-1),
            (false, Some(len)) => self.buf.put_i32(int32_len(len)?),
        }
        Ok(())
    }

    /// The length in front of a bytes (records) field; same encodings as an array's.
    fn put_bytes_len(&mut self, len: Option<usize>) -> Result<(), EncodeError> {
        self.put_array_len(len)
    }

    /// A non-null string: int16 length, or from v12 a varint of length + 1.
    fn put_string(&mut self, s: &[u8]) -> Result<(), EncodeError> {
        if self.flexible() {
            put_uvarint(&mut self.buf, compact_len(s.len())?);
        } else {
            let len = i16::try_from(s.len())
                .map_err(|_| self.error(format!("string of {} bytes is too long", s.len())))?;
            self.buf.put_i16(len);
        }
        self.buf.put_slice(s);
        Ok(())
    }

    /// A tagged-field section: the known fields given (tag, encoded value), in tag order, then
    /// the unknown ones. kafka-protocol writes only unknown tags from `first_unknown` on but
    /// counts them all; an unknown tag below it would corrupt its output, so it is refused.
    fn put_tagged_fields(
        &mut self,
        known: Vec<(u32, BytesMut)>,
        unknown: &BTreeMap<i32, Bytes>,
        first_unknown: i32,
    ) -> Result<(), EncodeError> {
        if unknown.keys().any(|&tag| tag < first_unknown) {
            return Err(self.error(format!(
                "unknown tagged field below tag {first_unknown} collides with known tags"
            )));
        }
        let count = u32::try_from(known.len() + unknown.len())
            .map_err(|_| self.error("too many tagged fields"))?;
        put_uvarint(&mut self.buf, count);
        let unknown = unknown.iter().map(|(&tag, value)| (tag as u32, &value[..]));
        for (tag, value) in known.iter().map(|(tag, v)| (*tag, &v[..])).chain(unknown) {
            let size =
                u32::try_from(value.len()).map_err(|_| self.error("tagged field too large"))?;
            put_uvarint(&mut self.buf, tag);
            put_uvarint(&mut self.buf, size);
            self.buf.put_slice(value);
        }
        Ok(())
    }

    fn crate_encode<T: Encodable>(&mut self, value: &T, version: i16) -> Result<(), EncodeError> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = self.crate_encode_into(&mut buf, value, version);
        self.buf = buf;
        result
    }

    fn crate_encode_into<T: Encodable>(
        &self,
        buf: &mut BytesMut,
        value: &T,
        version: i16,
    ) -> Result<(), EncodeError> {
        value
            .encode(buf, version)
            .map_err(|e| self.error(format!("{e:#}")))
    }

    fn crate_encoded<T: Encodable>(&self, value: &T) -> Result<BytesMut, EncodeError> {
        let mut buf = BytesMut::new();
        self.crate_encode_into(&mut buf, value, self.version)?;
        Ok(buf)
    }

    /// Writes the size prefix and cuts the buffer into pieces around the inserts.
    fn finish(self) -> Result<Vec<FetchResponsePiece<F>>, EncodeError> {
        let total = (self.buf.len() - SIZE_PREFIX_LEN).saturating_add(self.inserted);
        if total > MAX_FRAME_SIZE {
            return Err(FrameError::TooLarge {
                size: total,
                max: MAX_FRAME_SIZE,
            }
            .into());
        }
        let mut buf = self.buf;
        buf[..SIZE_PREFIX_LEN].copy_from_slice(&size_prefix(total)?);
        let buf = buf.freeze();
        let mut pieces = Vec::with_capacity(2 * self.inserts.len() + 1);
        let mut start = 0;
        for (offset, piece) in self.inserts {
            if offset > start {
                pieces.push(FetchResponsePiece::Bytes(buf.slice(start..offset)));
            }
            pieces.push(piece);
            start = offset;
        }
        if buf.len() > start {
            pieces.push(FetchResponsePiece::Bytes(buf.slice(start..)));
        }
        Ok(pieces)
    }
}

/// A compact (flexible-version) length: `len + 1`, as an unsigned varint's value.
fn compact_len(len: usize) -> Result<u32, EncodeError> {
    len.checked_add(1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| FrameError::TooLarge {
            size: len,
            max: u32::MAX as usize - 1,
        })
        .map_err(EncodeError::from)
}

/// A non-flexible length: an int32.
fn int32_len(len: usize) -> Result<i32, EncodeError> {
    i32::try_from(len).map_err(|_| {
        EncodeError::from(FrameError::TooLarge {
            size: len,
            max: MAX_FRAME_SIZE,
        })
    })
}

fn put_uvarint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// What one partition of a Fetch answer carries, as the replica reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchedPartition {
    /// The partition.
    pub partition_index: i32,
    /// The high watermark: the end of what consumers may read.
    pub high_watermark: i64,
    /// The last stable offset; equal to the high watermark while Sluice has no transactions.
    pub last_stable_offset: i64,
    /// The log start offset.
    pub log_start_offset: i64,
}

/// The `PartitionData` Kafka sends for a partition that was read, records left empty for the
/// caller to fill or to mark as file-backed: preferred read replica -1 (no follower fetching),
/// and aborted transactions null for `read_uncommitted` (isolation level 0), an empty list
/// for `read_committed` (1) — what Kafka's `LocalLog.read` reports when there are none.
pub fn fetched_partition(partition: FetchedPartition, isolation_level: i8) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition.partition_index)
        .with_error_code(0)
        .with_high_watermark(partition.high_watermark)
        .with_last_stable_offset(partition.last_stable_offset)
        .with_log_start_offset(partition.log_start_offset)
        .with_aborted_transactions((isolation_level == 1).then(Vec::new))
        .with_preferred_read_replica((-1).into())
        .with_records(Some(Bytes::new()))
}

/// The `PartitionData` Kafka sends for a partition that could not be read (its
/// `FetchResponse.partitionResponse(partition, error)`): high watermark, last stable offset
/// and log start offset -1, no aborted transactions, empty (not null) records.
pub fn failed_partition(partition_index: i32, error_code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition_index)
        .with_error_code(error_code)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
        .with_aborted_transactions(Some(Vec::new()))
        .with_preferred_read_replica((-1).into())
        .with_records(Some(Bytes::new()))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{
        EpochEndOffset, LeaderIdAndEpoch, NodeEndpoint, SnapshotId,
    };
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::protocol::response::Response;

    /// A struct holding the topic id `[n; 16]` (the `uuid` crate is not a dependency of
    /// Sluice, so ids are made by decoding one).
    fn with_id(n: u8) -> MetadataRequestTopic {
        let mut bytes = Bytes::from([vec![n; 16], vec![0, 0]].concat());
        MetadataRequestTopic::decode(&mut bytes, 10).unwrap()
    }

    fn records(seed: u8, len: usize) -> Bytes {
        Bytes::from(
            (0..len)
                .map(|i| seed.wrapping_add(i as u8))
                .collect::<Vec<u8>>(),
        )
    }

    /// A response using every field the version has, with records inline.
    fn rich_response(version: i16) -> FetchResponse {
        let fetched = FetchedPartition {
            partition_index: 0,
            high_watermark: 100,
            last_stable_offset: 90,
            log_start_offset: 5,
        };
        let mut p0 = fetched_partition(fetched, 1).with_records(Some(records(1, 61)));
        let mut p1 = fetched_partition(
            FetchedPartition {
                partition_index: 1,
                ..fetched
            },
            1,
        )
        .with_aborted_transactions(Some(vec![AbortedTransaction::default()
            .with_producer_id(7.into())
            .with_first_offset(3)]))
        .with_records(Some(records(2, 300)));
        let p2 = failed_partition(2, 6);
        let mut p3 = fetched_partition(
            FetchedPartition {
                partition_index: 3,
                ..fetched
            },
            0,
        )
        .with_records(None);
        let mut b0 = fetched_partition(
            FetchedPartition {
                partition_index: 0,
                ..fetched
            },
            0,
        )
        .with_records(Some(records(3, 70_000)));
        if version >= 11 {
            p1 = p1.with_preferred_read_replica(2.into());
        }
        if version >= 12 {
            p0 = p0
                .with_diverging_epoch(EpochEndOffset::default().with_epoch(4).with_end_offset(80))
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(1.into())
                        .with_leader_epoch(4),
                )
                .with_snapshot_id(SnapshotId::default().with_end_offset(9).with_epoch(1))
                .with_unknown_tagged_field(5, Bytes::from_static(b"five"));
            p3 = p3.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(2.into())
                    .with_leader_epoch(1),
            );
            b0 = b0.with_unknown_tagged_field(3, Bytes::from_static(b"3"));
        }
        let mut orders = FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![p0, p1, p2, p3]);
        let mut big = FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_string("b".repeat(300))))
            .with_partitions(vec![b0]);
        if version >= 13 {
            orders = orders.with_topic_id(with_id(0xab).topic_id);
            big = big.with_topic_id(with_id(0xcd).topic_id);
        }
        if version >= 12 {
            orders = orders.with_unknown_tagged_field(0, Bytes::from_static(b"t"));
        }
        let mut response = FetchResponse::default()
            .with_throttle_time_ms(25)
            .with_responses(vec![orders, big]);
        if version >= 7 {
            response = response.with_session_id(1234).with_error_code(0);
        }
        if version >= 12 {
            response = response.with_unknown_tagged_field(7, Bytes::from_static(b"seven"));
        }
        if version >= 16 {
            response = response.with_node_endpoints(vec![NodeEndpoint::default()
                .with_node_id(1.into())
                .with_host(StrBytes::from_static_str("broker-1"))
                .with_port(9092)
                .with_rack(Some(StrBytes::from_static_str("r1")))]);
        }
        response
    }

    /// Which partitions the tests serve from "files": the first of `orders`, its failed one
    /// (an empty slice) and the big one.
    fn from_file(t: usize, p: usize) -> bool {
        matches!((t, p), (0, 0) | (0, 2) | (1, 0))
    }

    /// Encodes through this module with file placeholders, then substitutes the slices.
    fn encode_with_files(response: &FetchResponse, version: i16) -> Result<Vec<u8>, EncodeError> {
        let lens: Vec<Vec<usize>> = response
            .responses
            .iter()
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|p| p.records.as_ref().map_or(0, Bytes::len))
                    .collect()
            })
            .collect();
        // The file-backed partitions' records are blanked: the encoder must not look at them.
        let mut blanked = response.clone();
        for (t, topic) in blanked.responses.iter_mut().enumerate() {
            for (p, partition) in topic.partitions.iter_mut().enumerate() {
                if from_file(t, p) {
                    partition.records = Some(Bytes::from_static(b"ignored"));
                }
            }
        }
        let pieces = encode_fetch_response(&blanked, version, 99, |t, p| {
            if from_file(t, p) {
                PartitionRecords::File {
                    slice: (t, p),
                    len: lens[t][p],
                }
            } else {
                PartitionRecords::Inline
            }
        })?;
        let total: usize = pieces.iter().map(FetchResponsePiece::len).sum();
        let mut out = Vec::with_capacity(total);
        let mut files = 0;
        for piece in pieces {
            match piece {
                FetchResponsePiece::Bytes(bytes) => out.extend_from_slice(&bytes),
                FetchResponsePiece::FileRecords { slice: (t, p), len } => {
                    let bytes = response.responses[t].partitions[p].records.clone().unwrap();
                    assert_eq!(bytes.len(), len);
                    out.extend_from_slice(&bytes);
                    files += 1;
                }
            }
        }
        assert_eq!(
            files, 2,
            "one file-backed partition has no records, so no piece"
        );
        assert_eq!(out.len(), total);
        assert_eq!(
            u32::from_be_bytes(out[..4].try_into().unwrap()) as usize,
            total - 4
        );
        Ok(out)
    }

    fn assert_same(ours: &[u8], expected: &[u8], version: i16) {
        if let Some(at) = (0..ours.len().min(expected.len())).find(|&i| ours[i] != expected[i]) {
            let window = |b: &[u8]| b[at.saturating_sub(16)..(at + 16).min(b.len())].to_vec();
            panic!(
                "v{version}: first difference at byte {at}: ours {:?}, crate {:?}",
                window(ours),
                window(expected)
            );
        }
        assert_eq!(ours.len(), expected.len(), "v{version}");
    }

    /// Byte for byte what kafka-protocol writes, in every advertised version.
    #[test]
    fn pieces_match_the_crate_in_every_version() {
        for version in 4..=18 {
            let response = rich_response(version);
            let expected = Response::Fetch(response.clone())
                .encode(version, 99)
                .unwrap();
            let ours = encode_with_files(&response, version).unwrap();
            assert_same(&ours, &expected, version);
        }
    }

    #[test]
    fn defaults_match_the_crate_in_every_version() {
        for version in 4..=18 {
            let response = FetchResponse::default()
                .with_responses(vec![FetchableTopicResponse::default()
                    .with_partitions(vec![PartitionData::default()])]);
            let expected = Response::Fetch(response.clone())
                .encode(version, 1)
                .unwrap();
            let pieces =
                encode_fetch_response::<()>(&response, version, 1, |_, _| PartitionRecords::Inline)
                    .unwrap();
            assert_eq!(pieces, [FetchResponsePiece::Bytes(expected)], "v{version}");
        }
    }

    /// Where the crate refuses a field the version lacks, so does the piece encoder.
    #[test]
    fn refuses_what_the_crate_refuses() {
        let partition = PartitionData::default().with_preferred_read_replica(2.into());
        let response = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(vec![partition]),
        ]);
        for version in 4..=18 {
            let crate_result = Response::Fetch(response.clone()).encode(version, 1);
            let ours =
                encode_fetch_response::<()>(&response, version, 1, |_, _| PartitionRecords::Inline);
            assert_eq!(crate_result.is_ok(), ours.is_ok(), "v{version}");
            assert_eq!(ours.is_err(), version < 11);
        }
        let response = FetchResponse::default().with_session_id(5);
        for version in 4..=18 {
            let ours =
                encode_fetch_response::<()>(&response, version, 1, |_, _| PartitionRecords::Inline);
            assert_eq!(ours.is_err(), version < 7, "v{version}");
        }
        assert!(matches!(
            encode_fetch_response::<()>(&FetchResponse::default(), 19, 1, |_, _| {
                PartitionRecords::Inline
            }),
            Err(EncodeError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn records_length_prefix_per_version() {
        let response =
            FetchResponse::default()
                .with_responses(vec![FetchableTopicResponse::default()
                    .with_partitions(vec![PartitionData::default()])]);
        for (version, prefix) in [(11, vec![0, 0, 0x01, 0x2c]), (12, vec![0xad, 0x02])] {
            let pieces =
                encode_fetch_response(&response, version, 1, |_, _| PartitionRecords::File {
                    slice: "segment",
                    len: 300,
                })
                .unwrap();
            let (FetchResponsePiece::Bytes(head), FetchResponsePiece::FileRecords { slice, len }) =
                (&pieces[0], &pieces[1])
            else {
                panic!("{pieces:?}");
            };
            assert!(head.ends_with(&prefix), "v{version}: {head:?}");
            assert_eq!((*slice, *len), ("segment", 300));
        }
        // A slice too long for the int32 prefix is refused.
        let too_long = encode_fetch_response(&response, 11, 1, |_, _| PartitionRecords::File {
            slice: (),
            len: i32::MAX as usize + 1,
        });
        assert!(matches!(too_long, Err(EncodeError::Frame(_))));
    }

    #[test]
    fn partitions_filled_as_kafka_fills_them() {
        let fetched = FetchedPartition {
            partition_index: 4,
            high_watermark: 10,
            last_stable_offset: 10,
            log_start_offset: 0,
        };
        let uncommitted = fetched_partition(fetched, 0);
        assert_eq!(uncommitted.aborted_transactions, None);
        assert_eq!(uncommitted.preferred_read_replica, -1);
        assert_eq!(uncommitted.records, Some(Bytes::new()));
        let committed = fetched_partition(fetched, 1);
        assert_eq!(committed.aborted_transactions, Some(Vec::new()));
        assert_eq!(committed.last_stable_offset, 10);
        let failed = failed_partition(4, 6);
        assert_eq!(
            (
                failed.high_watermark,
                failed.last_stable_offset,
                failed.log_start_offset
            ),
            (-1, -1, -1)
        );
        assert_eq!(failed.records, Some(Bytes::new()));
        // All three encode in every version.
        let response = FetchResponse::default()
            .with_responses(vec![FetchableTopicResponse::default()
                .with_partitions(vec![uncommitted, committed, failed])]);
        for version in 4..=18 {
            encode_fetch_response::<()>(&response, version, 1, |_, _| PartitionRecords::Inline)
                .unwrap();
        }
    }
}
