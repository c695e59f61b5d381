//! A small raw Kafka client for the protocol-level tests: one TCP connection, requests encoded
//! with kafka-protocol's own types (header and body, size-prefixed), responses decoded with
//! them. Deliberately independent of the broker's codec, so that a request the broker's codec
//! does not know (yet) can still be sent, and a codec bug cannot hide itself on both sides.
//!
//! Shared by `tests/broker_protocol.rs`, `tests/configs.rs`, `tests/idempotence.rs` and
//! `tests/groups.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The client id every request carries unless [`Client::with_client_id`] says otherwise.
pub const CLIENT_ID: &str = "sluice-protocol-test";

/// How long a read waits for the broker before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// One connection to a broker.
pub struct Client {
    /// The socket itself, for tests that write raw or malformed bytes.
    pub stream: TcpStream,
    client_id: String,
    correlation_id: i32,
}

impl Client {
    /// Wraps a connected stream (reads time out after [`READ_TIMEOUT`]).
    pub fn new(stream: TcpStream) -> Client {
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("set_read_timeout");
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            client_id: CLIENT_ID.to_owned(),
            correlation_id: 0,
        }
    }

    /// Connects to `addr` (`host:port`).
    pub fn connect(addr: &str) -> Client {
        Client::new(TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}")))
    }

    /// The client id sent in the request headers from now on.
    pub fn with_client_id(mut self, client_id: &str) -> Client {
        self.client_id = client_id.to_owned();
        self
    }

    /// The next correlation id (1, 2, 3, ...).
    pub fn next_correlation_id(&mut self) -> i32 {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        self.correlation_id
    }

    /// Writes one request with `correlation_id`.
    pub fn send<Q: Request>(&mut self, body: &Q, version: i16, correlation_id: i32) {
        let frame = encode(body, version, correlation_id, Some(&self.client_id));
        self.stream.write_all(&frame).expect("write a request");
    }

    /// Writes bytes as they are (frames built by the test).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write raw bytes");
    }

    /// The next response frame (size prefix removed), or `None` if the connection closed.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        read_frame(&mut self.stream)
    }

    /// Sends a request with the next correlation id and decodes its response.
    pub fn call<Q: Request>(&mut self, body: Q, version: i16) -> Q::Response {
        let correlation_id = self.next_correlation_id();
        self.call_corr(body, version, correlation_id)
    }

    /// Sends a request with `correlation_id` and decodes its response.
    pub fn call_corr<Q: Request>(
        &mut self,
        body: Q,
        version: i16,
        correlation_id: i32,
    ) -> Q::Response {
        self.send(&body, version, correlation_id);
        let frame = self.try_recv().unwrap_or_else(|| {
            panic!(
                "the broker closed the connection instead of answering API {} v{version}",
                Q::KEY
            )
        });
        decode_response::<Q>(version, correlation_id, frame)
    }

    /// Whether the broker closed the connection (EOF or reset) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

/// One size-prefixed request frame: header (the version `Q` says) and body.
pub fn encode<Q: Request>(
    body: &Q,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(Q::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|id| StrBytes::from_string(id.to_owned())));
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0u8; 4]);
    header
        .encode(&mut buf, Q::header_version(version))
        .expect("encode the request header");
    body.encode(&mut buf, version).unwrap_or_else(|e| {
        panic!(
            "kafka-protocol cannot encode API {} v{version}: {e:#}",
            Q::KEY
        )
    });
    let size = i32::try_from(buf.len() - 4).expect("frame size");
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// Reads one size-prefixed frame; `None` on EOF or error.
pub fn read_frame(stream: &mut impl Read) -> Option<Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

/// Decodes the response to a `Q` request: header (checking the correlation id), body, and
/// nothing after it.
pub fn decode_response<Q: Request>(version: i16, correlation_id: i32, frame: Bytes) -> Q::Response {
    decode_body(
        Q::Response::header_version(version),
        version,
        correlation_id,
        frame,
    )
}

/// Decodes a response frame for `api_key` (ApiVersions answers with header v0, always).
pub fn decode<R: Decodable>(api_key: ApiKey, version: i16, correlation_id: i32, frame: Bytes) -> R {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    decode_body(header_version, version, correlation_id, frame)
}

fn decode_body<R: Decodable>(
    header_version: i16,
    version: i16,
    correlation_id: i32,
    mut frame: Bytes,
) -> R {
    let header = ResponseHeader::decode(&mut frame, header_version).expect("a response header");
    assert_eq!(
        header.correlation_id, correlation_id,
        "the response's correlation id"
    );
    let response = R::decode(&mut frame, version).expect("a response body");
    assert_eq!(frame.remaining(), 0, "trailing bytes in the response");
    response
}

/// The correlation id of a response frame (its first four bytes).
pub fn correlation_id_of(frame: &[u8]) -> i32 {
    i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"))
}

/// A topic name.
pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// A string field.
pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Requests that many tests make: create a topic, produce a batch, ask for the latest offset.
pub mod ops {
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        CreateTopicsRequest, CreateTopicsResponse, ListOffsetsRequest, ProduceRequest,
    };
    use sluice::actors::log::batch;
    use sluice::actors::log::compression::Compression;

    use super::{name, s, Client};

    /// Creates `topic` (replication factor 1) with `configs`, retrying while the broker is
    /// not ready (no controller yet); panics if it cannot within 20 s.
    pub fn create_topic(c: &mut Client, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r: CreateTopicsResponse = c.call(
                CreateTopicsRequest::default()
                    .with_topics(vec![CreatableTopic::default()
                        .with_name(name(topic))
                        .with_num_partitions(partitions)
                        .with_replication_factor(1)
                        .with_configs(
                            configs
                                .iter()
                                .map(|(k, v)| {
                                    CreatableTopicConfig::default()
                                        .with_name(s(k))
                                        .with_value(Some(s(v)))
                                })
                                .collect(),
                        )])
                    .with_timeout_ms(10_000),
                4,
            );
            if r.topics[0].error_code == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "cannot create {topic}: {r:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Produces one uncompressed batch of `records` records (`k` → `value`) to partition
    /// 0 with acks=all; the partition's error code.
    pub fn produce(c: &mut Client, topic: &str, records: usize, value: &[u8]) -> i16 {
        let kv: Vec<batch::KeyValue<'_>> = vec![(Some(b"k"), Some(value)); records];
        let batch =
            batch::simple_batch(Compression::None, 1_700_000_000_000, &kv).expect("build a batch");
        let r = c.call(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(10_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(name(topic))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(batch)))])]),
            7,
        );
        r.responses[0].partition_responses[0].error_code
    }

    /// (error code, latest offset) of partition 0 (ListOffsets v1, timestamp -1).
    pub fn latest(c: &mut Client, topic: &str) -> (i16, i64) {
        let r = c.call(
            ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
            1,
        );
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset)
    }
}
