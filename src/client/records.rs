//! Record batches on the client side: building a producer's batch (Kafka's v2 format, the
//! log engine's encoder) and reading the batches a fetch returns into records whose keys,
//! values and headers are slices of the received bytes (decompressed batches: of one buffer
//! per batch), never copied per record.

use bytes::Bytes;
use sluice_actors::log::batch::{
    self, BatchHeader, BatchSpec, RecordIter, BATCH_HEADER_SIZE, LOG_OVERHEAD,
};
use sluice_actors::log::compression::{self, Compression};

use super::error::{ClientError, Result};

/// A header of a record: a key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

/// A record as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch: the producer's (CreateTime) or the broker's
    /// (LogAppendTime), as `timestamp_type` says.
    pub timestamp: i64,
    /// 0 = CreateTime, 1 = LogAppendTime.
    pub timestamp_type: i8,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    pub leader_epoch: i32,
}

/// Records of a producer batch being filled (encoded as they come).
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    records: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    pub(crate) fn new(capacity: usize) -> BatchBuilder {
        BatchBuilder {
            records: Vec::with_capacity(capacity),
            count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Bytes of encoded records so far (before compression).
    pub(crate) fn size(&self) -> usize {
        self.records.len() + BATCH_HEADER_SIZE
    }

    pub(crate) fn count(&self) -> i32 {
        self.count
    }

    /// Appends a record; its offset delta is its position in the batch.
    pub(crate) fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        let encoded: Vec<batch::Header<'_>> = headers
            .iter()
            .map(|h| (h.key.as_bytes(), h.value.as_deref()))
            .collect();
        batch::encode_record_with_headers(
            &mut self.records,
            self.count,
            timestamp - self.base_timestamp,
            key,
            value,
            &encoded,
        );
        self.max_timestamp = self.max_timestamp.max(timestamp);
        self.count += 1;
    }

    /// The batch, compressed with `codec`, for an idempotent producer if `producer_id`
    /// is not -1.
    pub(crate) fn build(
        &self,
        codec: Compression,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<Bytes> {
        let spec = BatchSpec {
            base_offset: 0,
            partition_leader_epoch: -1,
            attributes: codec.id(),
            last_offset_delta: self.count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
        };
        batch::build_batch(&spec, &self.records, self.count)
            .map(Bytes::from)
            .map_err(|e| ClientError::Records(e.to_string()))
    }
}

/// The offset after the last whole batch in `data` (what to fetch next even when every
/// record in it was skipped: control batches, records below the fetch offset), if any.
pub fn next_offset_after(data: &[u8]) -> Option<i64> {
    let mut pos = 0;
    let mut next = None;
    while data.len() - pos >= BATCH_HEADER_SIZE {
        let Ok(header) = BatchHeader::parse(&data[pos..]) else {
            break;
        };
        if header.size() > data.len() - pos {
            break;
        }
        pos += header.size();
        next = Some(header.next_offset());
    }
    next
}

/// The records of `data` (a fetch response's record set for one partition) at or after
/// `from_offset`. Control batches are skipped; a batch cut off at the end (the broker sends
/// whole batches up to its limit and may end with a partial one) is ignored. A compressed
/// batch may not inflate past `max_batch_bytes`.
pub fn decode_records(
    topic: &str,
    partition: i32,
    data: &Bytes,
    from_offset: i64,
    max_batch_bytes: usize,
) -> Result<Vec<ConsumerRecord>> {
    let corrupt =
        |e: sluice_actors::log::LogError| ClientError::Records(format!("{topic}-{partition}: {e}"));
    let mut out = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= BATCH_HEADER_SIZE {
        let rest = &data[pos..];
        let size = LOG_OVERHEAD
            + usize::try_from(i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]])).map_err(
                |_| ClientError::Records(format!("{topic}-{partition}: negative batch length")),
            )?;
        if size > rest.len() {
            break; // a partial batch at the end
        }
        let header = BatchHeader::parse(rest).map_err(corrupt)?;
        let batch_bytes = data.slice(pos..pos + size);
        pos += size;
        if header.is_control() || header.last_offset() < from_offset {
            continue;
        }
        if batch::compute_crc(&batch_bytes) != header.crc {
            return Err(ClientError::Records(format!(
                "{topic}-{partition}: CRC mismatch in the batch at offset {}",
                header.base_offset
            )));
        }
        let codec = header.compression().map_err(corrupt)?;
        let payload: Bytes = match codec {
            Compression::None => batch_bytes.slice(BATCH_HEADER_SIZE..),
            c => Bytes::from(
                compression::decompress(c, &batch_bytes[BATCH_HEADER_SIZE..], max_batch_bytes)
                    .map_err(corrupt)?,
            ),
        };
        let log_append_time = header.is_log_append_time();
        let mut records = RecordIter::new(&payload, header.record_count);
        while let Some(r) = records.next_record().map_err(corrupt)? {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < from_offset {
                continue;
            }
            let slice = |b: &[u8]| payload.slice_ref(b);
            let headers = batch::parse_headers(r.headers)
                .map_err(corrupt)?
                .into_iter()
                .map(|(k, v)| Header {
                    key: String::from_utf8_lossy(k).into_owned(),
                    value: v.map(slice),
                })
                .collect();
            out.push(ConsumerRecord {
                topic: topic.to_owned(),
                partition,
                offset,
                timestamp: if log_append_time {
                    header.max_timestamp
                } else {
                    header.base_timestamp + r.timestamp_delta
                },
                timestamp_type: i8::from(log_append_time),
                key: r.key.map(slice),
                value: r.value.map(slice),
                headers,
                leader_epoch: header.partition_leader_epoch,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_batch_reads_back_with_every_field_for_every_codec() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = BatchBuilder::new(256);
            let headers = vec![
                Header {
                    key: "h1".into(),
                    value: Some(Bytes::from_static(b"v1")),
                },
                Header {
                    key: "h2".into(),
                    value: None,
                },
            ];
            b.push(1_000, Some(b"k1"), Some(b"value one"), &headers);
            b.push(1_005, None, None, &[]);
            b.push(999, Some(b""), Some(b"v3"), &[]);
            let mut batch = b.build(codec, 7, 1, 40).unwrap().to_vec();
            // The broker sets the base offset (and recomputes nothing: the CRC does not cover it).
            batch[..8].copy_from_slice(&100i64.to_be_bytes());
            let data = Bytes::from(batch);
            let records = decode_records("t", 2, &data, 101, 1 << 20).unwrap();
            assert_eq!(records.len(), 2, "{codec}: offset 100 is below from_offset");
            assert_eq!(records[0].offset, 101);
            assert_eq!(records[0].timestamp, 1_005);
            assert_eq!(
                (records[0].key.clone(), records[0].value.clone()),
                (None, None)
            );
            assert_eq!(records[1].key.as_deref(), Some(&b""[..]));
            assert_eq!(records[1].timestamp, 999);
            let all = decode_records("t", 2, &data, 0, 1 << 20).unwrap();
            assert_eq!(all[0].headers, headers, "{codec}");
            assert_eq!(all[0].value.as_deref(), Some(&b"value one"[..]));
            // A cut-off batch at the end is not an error: nothing of it is returned.
            let cut = data.slice(..data.len() - 1);
            assert!(decode_records("t", 2, &cut, 0, 1 << 20).unwrap().is_empty());
        }
    }
}
