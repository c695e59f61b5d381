//! A blocking Kafka connection of the harness's own, for the raw fetch-and-discard reader and
//! the metadata latency of the partition-count runs: requests encoded and answers decoded with
//! kafka-protocol, nothing else.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::load::{OrderCheck, Outcome};
use crate::Fail;

/// The largest answer read (fetch.max.bytes is far below it).
const MAX_FRAME: usize = 256 << 20;

pub(crate) struct Conn {
    stream: TcpStream,
    correlation: i32,
    buf: BytesMut,
}

impl Conn {
    pub(crate) fn connect(addr: &str) -> Result<Conn, Fail> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            correlation: 0,
            buf: BytesMut::new(),
        })
    }

    /// Sends `request` at `version` and decodes its answer.
    pub(crate) fn call<Q: Request>(
        &mut self,
        request: &Q,
        version: i16,
    ) -> Result<Q::Response, Fail> {
        let size = self.send_and_size(request, version)?;
        self.buf.clear();
        self.buf.resize(size, 0);
        self.stream.read_exact(&mut self.buf)?;
        let mut frame: Bytes = self.buf.split().freeze();
        let answer = ResponseHeader::decode(&mut frame, Q::Response::header_version(version))
            .map_err(|e| Fail::msg(format!("response header: {e}")))?;
        if answer.correlation_id != self.correlation {
            return Err(Fail::msg("answers out of order"));
        }
        Q::Response::decode(&mut frame, version)
            .map_err(|e| Fail::msg(format!("decode answer: {e}")))
    }

    /// Sends `request` at `version` and reads the size of its answer, whose bytes (header
    /// included) are next on the stream.
    fn send_and_size<Q: Request>(&mut self, request: &Q, version: i16) -> Result<usize, Fail> {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(Q::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("sluice-bench")));
        let mut out = BytesMut::with_capacity(256);
        out.extend_from_slice(&[0; 4]);
        header
            .encode(&mut out, Q::header_version(version))
            .map_err(|e| Fail::msg(format!("encode header: {e}")))?;
        request
            .encode(&mut out, version)
            .map_err(|e| Fail::msg(format!("encode request: {e}")))?;
        let len = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&out)?;

        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let size = i32::from_be_bytes(size);
        usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_FRAME)
            .ok_or_else(|| Fail::msg(format!("answer of {size} bytes")))
    }
}

fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map(i64::from_be_bytes)
}
fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(i32::from_be_bytes)
}

/// A reader over a byte slice (big-endian, Kafka's non-flexible encodings).
struct Walk<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Walk<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Fail> {
        let s = self
            .b
            .get(self.at..self.at + n)
            .ok_or_else(|| Fail::msg("a fetch answer ends early"))?;
        self.at += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, Fail> {
        let s = self.take(2)?;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32(&mut self) -> Result<i32, Fail> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn skip(&mut self, n: usize) -> Result<(), Fail> {
        self.take(n).map(|_| ())
    }
}

/// Fetches every partition of `topic` from offset 0 until `records` records were read; each
/// answer's record sets are walked batch by batch and handed to `batch(check, partition, base
/// offset, record count, bytes)`.
///
/// Answers are read into one buffer kept across requests and parsed in place (Fetch v11 by
/// hand), so the reader costs what a reader must — the copy out of the socket — and not a
/// fresh zeroed buffer per answer.
pub(crate) fn fetch_all(
    addr: &str,
    topic: &str,
    partitions: i32,
    records: u64,
    mut batch: impl FnMut(&mut OrderCheck, i32, i64, i64, u64) -> Result<(), Fail>,
) -> Result<Outcome, Fail> {
    const VERSION: i16 = 11;
    let mut conn = Conn::connect(addr)?;
    let mut offsets = vec![0i64; partitions as usize];
    let mut check = OrderCheck::default();
    let mut buf: Vec<u8> = Vec::new();
    let started = std::time::Instant::now();
    let name = TopicName(StrBytes::from_string(topic.to_owned()));
    while check.records < records {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name.clone())
                .with_partitions(
                    (0..partitions)
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_current_leader_epoch(-1)
                                .with_fetch_offset(offsets[p as usize])
                                .with_log_start_offset(-1)
                                .with_partition_max_bytes(8 << 20)
                        })
                        .collect(),
                )]);
        let size = conn.send_and_size(&request, VERSION)?;
        if buf.len() < size {
            buf.resize(size, 0);
        }
        conn.stream.read_exact(&mut buf[..size])?;
        let mut w = Walk {
            b: &buf[..size],
            at: 0,
        };
        if w.i32()? != conn.correlation {
            return Err(Fail::msg("answers out of order"));
        }
        w.skip(4)?; // throttle_time_ms
        let error = w.i16()?;
        if error != 0 {
            return Err(Fail::msg(format!("fetch error {error}")));
        }
        w.skip(4)?; // session_id
        for _ in 0..w.i32()? {
            let name_len = w.i16()?;
            w.skip(name_len.max(0) as usize)?;
            for _ in 0..w.i32()? {
                let partition = w.i32()?;
                let error = w.i16()?;
                if error != 0 {
                    return Err(Fail::msg(format!(
                        "fetch partition {partition} error {error}"
                    )));
                }
                w.skip(24)?; // high watermark, last stable offset, log start offset
                let aborted = w.i32()?;
                w.skip(16 * aborted.max(0) as usize)?;
                w.skip(4)?; // preferred_read_replica
                let len = w.i32()?;
                let set = w.take(len.max(0) as usize)?;
                let next = offsets
                    .get_mut(partition as usize)
                    .ok_or_else(|| Fail::msg(format!("an answer for partition {partition}")))?;
                let mut at = 0usize;
                // Whole batches only: a fetch may end in a partial one.
                while let (Some(base), Some(len)) = (i64_at(set, at), i32_at(set, at + 8)) {
                    let end = at + 12 + len.max(0) as usize;
                    if end > set.len() {
                        break;
                    }
                    let delta = i32_at(set, at + 23).unwrap_or(0);
                    let count = i32_at(set, at + 57).unwrap_or(0);
                    if delta + 1 != count {
                        return Err(Fail::msg(format!(
                            "a batch at {base} holds {count} records over {} offsets",
                            delta + 1
                        )));
                    }
                    batch(
                        &mut check,
                        partition,
                        base,
                        i64::from(count),
                        (end - at) as u64,
                    )?;
                    *next = base + i64::from(count);
                    at = end;
                }
            }
        }
    }
    Ok(Outcome {
        elapsed: started.elapsed(),
        records: check.records,
        bytes: check.bytes,
    })
}
