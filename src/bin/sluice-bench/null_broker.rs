//! The null broker: a Kafka-protocol endpoint that acknowledges Produce without storing
//! anything — the ceiling a load generator reaches against a broker that does no work.
//!
//! It speaks through Sluice's own wire codec ([`sluice::protocol`]) and answers five APIs,
//! the only ones it advertises: ApiVersions, Metadata, InitProducerId, Produce (every version
//! the codec supports) and Fetch, with no records (see [`Cluster::fetch`] for why it is
//! there at all). The cluster it describes is one broker, node 1, at the listen address;
//! every topic a client names exists with [`DEFAULT_PARTITIONS`] partitions led by node 1.
//! Produce reads only each batch's header (length and record count), advances the
//! partition's log end offset by the record count and answers with the old one as
//! `base_offset`: no CRC check, no per-record work, nothing kept. acks=0 gets no answer, as
//! from Kafka. Anything else — an API it does not answer, an unsupported version, a frame
//! that cannot be read — closes that connection, and only that one.
//!
//! Each connection has its own OS thread, running a single-threaded tokio runtime: the
//! thread keeps connections off each other's core and parks in `epoll_wait` when idle (two
//! cores are shared with the load generator: nothing spins), and tokio's `read_buf` reads
//! into the read buffer's uninitialised capacity, which blocking `std::io::Read` cannot do
//! without `unsafe` or zeroing it first. Requests are answered in the order they arrive; the
//! answers to all requests found in one read go out in one `write_all`.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, InitProducerIdRequest, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::protocol::{
    code, decode_request, encode_api_versions_response, parse_frame, Request, RequestKey,
    RequestOutcome, Response, DEFAULT_MAX_REQUEST_SIZE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// Partitions of every topic.
pub(crate) const DEFAULT_PARTITIONS: i32 = 8;

/// The null broker's node id.
const NODE_ID: i32 = 1;

/// What ApiVersions advertises: exactly the APIs answered here.
const IMPLEMENTED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::InitProducerId,
];

/// First Produce version addressing topics by id (Metadata gives them from v10).
const PRODUCE_TOPIC_IDS: i16 = 13;

/// First Fetch version addressing topics by id.
const FETCH_TOPIC_IDS: i16 = 13;

/// The longest a Fetch is held before its empty answer, whatever its `max_wait_ms`.
const MAX_FETCH_WAIT: Duration = Duration::from_millis(500);

/// Spare room kept in a connection's read buffer before each read, so that a large Produce
/// is read in a few large reads rather than many 64 KiB steps. A fixed amount, whatever a
/// frame declares: the buffer holds the bytes received and not yet answered (no frame above
/// `socket.request.max.bytes`: `parse_frame` refuses it at its prefix) plus this.
const READ_AHEAD: usize = 256 * 1024;

/// Serves on `listen` until the process is killed. Prints `listening on ADDR` (the bound
/// address, useful with port 0) on stdout once bound.
pub(crate) fn serve(listen: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(listen)?;
    let bound = listener.local_addr()?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {bound}")?;
    stdout.flush()?;
    drop(stdout);
    serve_on(listener, DEFAULT_PARTITIONS)
}

/// Serves on an already bound `listener`, every topic with `partitions` partitions. Returns
/// only if the listener fails for good.
pub(crate) fn serve_on(listener: TcpListener, partitions: i32) -> io::Result<()> {
    let cluster = Arc::new(Cluster::new(listener.local_addr()?, partitions));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before accept: not fatal.
                // The pause keeps a persistent error (EMFILE) from spinning a core.
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let cluster = Arc::clone(&cluster);
        let spawned = std::thread::Builder::new()
            .name("null-broker-conn".into())
            .spawn(move || {
                if let Err(e) = run_connection(stream, &cluster) {
                    tracing::debug!(error = %e, "connection closed");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
    Ok(())
}

/// One connection, on its own thread, until the client closes it or a request closes it.
fn run_connection(stream: std::net::TcpStream, cluster: &Cluster) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stream = tokio::net::TcpStream::from_std(stream)?;
        serve_connection(stream, cluster).await
    })
}

/// Read → answer every complete frame in order → write the answers → read again.
async fn serve_connection(mut stream: tokio::net::TcpStream, cluster: &Cluster) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(READ_AHEAD);
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            let frame = match parse_frame(&mut buf, DEFAULT_MAX_REQUEST_SIZE) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
            match answer(cluster, frame) {
                Answer::Frame(frame) => out.extend_from_slice(&frame),
                Answer::After(wait, frame) => {
                    // Held like a long poll: the answers before it go out first, the
                    // requests after it wait (answers stay in request order).
                    stream.write_all(&out).await?;
                    out.clear();
                    tokio::time::sleep(wait).await;
                    out.extend_from_slice(&frame);
                }
                Answer::Nothing => {}
                Answer::Close(reason) => {
                    // Kafka answers what came before the offending request, then closes.
                    stream.write_all(&out).await?;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        // The frames taken off `buf` have been dropped, so this reuses its allocation.
        buf.reserve(READ_AHEAD);
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

/// What a request gets.
#[derive(Debug)]
enum Answer {
    /// One response frame, size prefix included.
    Frame(Bytes),
    /// One response frame, sent after a wait (an empty Fetch).
    After(Duration, Bytes),
    /// No response (acks=0 Produce).
    Nothing,
    /// Close the connection, for this reason.
    Close(String),
}

/// Decodes one request frame and answers it.
fn answer(cluster: &Cluster, frame: Bytes) -> Answer {
    let request = match decode_request(frame) {
        RequestOutcome::Request(request) => request,
        // An ApiVersions version newer than the codec: error 35 in the v0 format, so that the
        // client retries with a version from the list.
        RequestOutcome::UnsupportedVersion(key) if key.api_key == ApiKey::ApiVersions => {
            return api_versions(key)
        }
        RequestOutcome::UnsupportedVersion(key) => {
            return Answer::Close(format!(
                "unsupported version {} of {:?}",
                key.api_version, key.api_key
            ))
        }
        RequestOutcome::UnknownApiKey { api_key, .. } => {
            return Answer::Close(format!("unknown API key {api_key}"))
        }
        RequestOutcome::Malformed { error, .. } => {
            return Answer::Close(format!("malformed request: {error}"))
        }
    };
    let key = request.key();
    let version = key.api_version;
    match request.body {
        Request::ApiVersions(_) => api_versions(key),
        Request::Metadata(body) => encode(key, cluster.metadata(version, &body)),
        Request::InitProducerId(body) => encode(key, cluster.init_producer_id(&body)),
        Request::Fetch(body) => {
            let wait = Duration::from_millis(u64::try_from(body.max_wait_ms).unwrap_or(0));
            match encode(key, cluster.fetch(version, &body)) {
                Answer::Frame(frame) => Answer::After(wait.min(MAX_FETCH_WAIT), frame),
                other => other,
            }
        }
        Request::Produce(body) => {
            let acks = body.acks;
            if !matches!(acks, -1..=1) {
                return Answer::Close(format!("invalid acks {acks}"));
            }
            let (response, failed) = cluster.produce(version, body);
            match (acks, failed) {
                // Kafka closes an acks=0 connection whose produce failed: the producer has no
                // other way to notice and refresh its metadata.
                (0, true) => Answer::Close("an acks=0 produce failed".into()),
                (0, false) => Answer::Nothing,
                _ => encode(key, response),
            }
        }
        other => Answer::Close(format!(
            "{:?} is not answered by the null broker",
            other.api_key()
        )),
    }
}

fn api_versions(key: RequestKey) -> Answer {
    match encode_api_versions_response(key.correlation_id, key.api_version, IMPLEMENTED) {
        Ok(frame) => Answer::Frame(frame),
        Err(e) => Answer::Close(format!("cannot encode ApiVersions: {e}")),
    }
}

fn encode(key: RequestKey, response: impl Into<Response>) -> Answer {
    match response.into().encode(key.api_version, key.correlation_id) {
        Ok(frame) => Answer::Frame(frame),
        Err(e) => Answer::Close(format!("cannot encode {:?}: {e}", key.api_key)),
    }
}

/// Everything the null broker knows: where it listens, the topics named so far with their
/// partitions' log end offsets, the next producer id. Shared by every connection thread.
#[derive(Debug)]
struct Cluster {
    /// Advertised in Metadata: the listen address (127.0.0.1 for a wildcard).
    host: String,
    port: i32,
    partitions: i32,
    /// One lock for every topic: a Produce takes it once for all its partitions.
    topics: Mutex<Topics>,
    next_producer_id: AtomicI64,
}

/// The topics named so far, by name and by id. Topics are only ever added, so the maps'
/// indices into `topics` stay valid.
#[derive(Debug, Default)]
struct Topics {
    /// Sorted, so that "all topics" comes back in a stable order.
    by_name: BTreeMap<String, usize>,
    by_id: HashMap<Uuid, usize>,
    topics: Vec<TopicOffsets>,
}

/// One topic: its name, id and every partition's log end offset.
#[derive(Debug)]
struct TopicOffsets {
    name: String,
    topic_id: Uuid,
    log_end_offsets: Vec<i64>,
}

impl Cluster {
    fn new(listen: SocketAddr, partitions: i32) -> Cluster {
        let ip = if listen.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            listen.ip()
        };
        Cluster {
            host: ip.to_string(),
            port: i32::from(listen.port()),
            partitions: partitions.max(1),
            topics: Mutex::new(Topics::default()),
            next_producer_id: AtomicI64::new(1000),
        }
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, Topics> {
        // The state is counters only: a panicked holder cannot leave them inconsistent.
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Metadata: this broker, and the requested topics (all topics named so far for a null
    /// list, or an empty one at v0).
    fn metadata(&self, version: i16, request: &MetadataRequest) -> MetadataResponse {
        let all = match &request.topics {
            None => true,
            Some(t) => t.is_empty() && version == 0,
        };
        let mut topics = self.topics();
        let mut answered = Vec::new();
        if all {
            for topic in topics.all() {
                answered.push(self.topic_metadata(version, &topic.name, topic.topic_id));
            }
        } else {
            for requested in request.topics.iter().flatten() {
                match &requested.name {
                    Some(name) => {
                        let topic_id = topics.get_or_create(name, self.partitions).topic_id;
                        answered.push(self.topic_metadata(version, name, topic_id));
                    }
                    // v10+: by topic id.
                    None => match topics.by_id(requested.topic_id) {
                        Some(topic) => {
                            answered.push(self.topic_metadata(version, &topic.name, topic.topic_id))
                        }
                        None => answered.push(
                            MetadataResponseTopic::default()
                                .with_error_code(code::UNKNOWN_TOPIC_ID)
                                .with_topic_id(requested.topic_id),
                        ),
                    },
                }
            }
        }
        drop(topics);
        let broker = MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(StrBytes::from_string(self.host.clone()))
            .with_port(self.port);
        let mut response = MetadataResponse::default()
            .with_brokers(vec![broker])
            .with_topics(answered);
        if version >= 1 {
            response.controller_id = BrokerId(NODE_ID);
        }
        if version >= 2 {
            response.cluster_id = Some(StrBytes::from_static_str("sluice-null-broker"));
        }
        response
    }

    fn topic_metadata(&self, version: i16, name: &str, topic_id: Uuid) -> MetadataResponseTopic {
        let partitions = (0..self.partitions)
            .map(|index| {
                let mut p = MetadataResponsePartition::default()
                    .with_partition_index(index)
                    .with_leader_id(BrokerId(NODE_ID))
                    .with_replica_nodes(vec![BrokerId(NODE_ID)])
                    .with_isr_nodes(vec![BrokerId(NODE_ID)]);
                if version >= 7 {
                    p.leader_epoch = 0;
                }
                p
            })
            .collect();
        let mut topic = MetadataResponseTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
            .with_partitions(partitions);
        if version >= 10 {
            topic.topic_id = topic_id;
        }
        topic
    }

    /// InitProducerId: a new producer id, epoch 0. Transactions are refused, as by Sluice.
    fn init_producer_id(&self, request: &InitProducerIdRequest) -> InitProducerIdResponse {
        if request.transactional_id.is_some() {
            return InitProducerIdResponse::default()
                .with_error_code(code::INVALID_REQUEST)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
        }
        let id = self.next_producer_id.fetch_add(1, Ordering::Relaxed);
        InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0)
    }

    /// Fetch, answered with no records: each partition empty, its high watermark at its log
    /// end offset.
    ///
    /// It is advertised only because librdkafka writes v2 record batches (its "MsgVer2"
    /// feature) only to a broker that lists Fetch v4+ as well as Produce v3+; without Fetch
    /// it sends magic-0 message sets inside Produce v3, which Kafka (and this broker) refuse
    /// as CORRUPT_MESSAGE. The connection holds the answer for `max_wait_ms` (at most
    /// [`MAX_FETCH_WAIT`]), as Kafka holds a fetch that finds nothing, so that a consumer
    /// pointed here polls rather than spins.
    fn fetch(&self, version: i16, request: &FetchRequest) -> FetchResponse {
        let topics = self.topics();
        let responses = request
            .topics
            .iter()
            .map(|requested| {
                let (topic, unknown) = if version >= FETCH_TOPIC_IDS {
                    (topics.by_id(requested.topic_id), code::UNKNOWN_TOPIC_ID)
                } else {
                    (
                        topics.by_name(&requested.topic),
                        code::UNKNOWN_TOPIC_OR_PARTITION,
                    )
                };
                let partitions = requested
                    .partitions
                    .iter()
                    .map(|p| {
                        let end = topic.map(|t| t.log_end_offset(p.partition));
                        let mut data = PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_records(Some(Bytes::new()));
                        match end {
                            Some(Some(end)) => {
                                data.high_watermark = end;
                                data.last_stable_offset = end;
                                data.log_start_offset = 0;
                            }
                            Some(None) => {
                                data.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
                                data.high_watermark = -1;
                            }
                            None => {
                                data.error_code = unknown;
                                data.high_watermark = -1;
                            }
                        }
                        data
                    })
                    .collect();
                let mut response = FetchableTopicResponse::default().with_partitions(partitions);
                if version >= FETCH_TOPIC_IDS {
                    response.topic_id = requested.topic_id;
                } else {
                    response.topic = requested.topic.clone();
                }
                response
            })
            .collect();
        drop(topics);
        FetchResponse::default().with_responses(responses)
    }

    /// Produce: every partition's log end offset advances by its batches' record counts.
    /// Returns the response and whether any partition failed.
    fn produce(&self, version: i16, request: ProduceRequest) -> (ProduceResponse, bool) {
        let mut failed = false;
        let mut responses = Vec::with_capacity(request.topic_data.len());
        let mut topics = self.topics();
        for topic in request.topic_data {
            let offsets = if version >= PRODUCE_TOPIC_IDS {
                topics.by_id_mut(topic.topic_id)
            } else {
                Some(topics.get_or_create(&topic.name, self.partitions))
            };
            let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
            let mut offsets = offsets;
            for partition in &topic.partition_data {
                let result = match offsets.as_deref_mut() {
                    None => Err(code::UNKNOWN_TOPIC_ID),
                    Some(offsets) => offsets.append(partition.index, partition.records.as_ref()),
                };
                let mut p = PartitionProduceResponse::default().with_index(partition.index);
                match result {
                    Ok(base_offset) => {
                        p.base_offset = base_offset;
                        if version >= 5 {
                            p.log_start_offset = 0;
                        }
                    }
                    Err(error) => {
                        failed = true;
                        p.error_code = error;
                        p.base_offset = -1;
                    }
                }
                partition_responses.push(p);
            }
            let mut response =
                TopicProduceResponse::default().with_partition_responses(partition_responses);
            if version >= PRODUCE_TOPIC_IDS {
                response.topic_id = topic.topic_id;
            } else {
                response.name = topic.name;
            }
            responses.push(response);
        }
        drop(topics);
        (ProduceResponse::default().with_responses(responses), failed)
    }
}

impl Topics {
    /// The topic `name`, created with `partitions` partitions if it is new.
    fn get_or_create(&mut self, name: &str, partitions: i32) -> &mut TopicOffsets {
        let index = match self.by_name.get(name) {
            Some(&index) => index,
            None => {
                let index = self.topics.len();
                // Ids are handed out in order; never the nil id, which means "no id".
                let serial = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
                let topic_id = Uuid::from_u64_pair(0x736c_7569_6365_0000, serial);
                self.topics.push(TopicOffsets {
                    name: name.to_owned(),
                    topic_id,
                    log_end_offsets: vec![0; usize::try_from(partitions).unwrap_or(1)],
                });
                self.by_name.insert(name.to_owned(), index);
                self.by_id.insert(topic_id, index);
                index
            }
        };
        &mut self.topics[index]
    }

    fn by_name(&self, name: &str) -> Option<&TopicOffsets> {
        self.topics.get(*self.by_name.get(name)?)
    }

    fn by_id(&self, topic_id: Uuid) -> Option<&TopicOffsets> {
        self.topics.get(*self.by_id.get(&topic_id)?)
    }

    fn by_id_mut(&mut self, topic_id: Uuid) -> Option<&mut TopicOffsets> {
        let index = *self.by_id.get(&topic_id)?;
        self.topics.get_mut(index)
    }

    /// Every topic, sorted by name.
    fn all(&self) -> impl Iterator<Item = &TopicOffsets> {
        self.by_name
            .values()
            .filter_map(|&index| self.topics.get(index))
    }
}

impl TopicOffsets {
    /// Partition `index`'s log end offset; `None` for a partition the topic does not have.
    fn log_end_offset(&self, index: i32) -> Option<i64> {
        let index = usize::try_from(index).ok()?;
        self.log_end_offsets.get(index).copied()
    }

    /// Appends `records` to partition `index`: returns the base offset, or the error code.
    fn append(&mut self, index: i32, records: Option<&Bytes>) -> Result<i64, i16> {
        let offset = usize::try_from(index)
            .ok()
            .and_then(|i| self.log_end_offsets.get_mut(i))
            .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
        let count = records
            .and_then(|r| record_count(r))
            .ok_or(code::CORRUPT_MESSAGE)?;
        let base_offset = *offset;
        *offset = base_offset.saturating_add(count);
        Ok(base_offset)
    }
}

/// Byte offsets in a v2 record batch header (Kafka's `DefaultRecordBatch`).
mod batch {
    /// `batchLength`: the bytes after this field (i32).
    pub(super) const LENGTH: usize = 8;
    /// The 12 bytes in front of `batchLength`'s count: baseOffset (i64) and batchLength.
    pub(super) const LOG_OVERHEAD: usize = 12;
    /// `magic` (i8), 2 for these batches.
    pub(super) const MAGIC: usize = 16;
    /// `recordsCount` (i32), the last header field.
    pub(super) const RECORDS_COUNT: usize = 57;
    /// The whole header.
    pub(super) const HEADER_LEN: usize = 61;
}

/// The records in a Produce partition's `records`: one or more v2 batches back to back,
/// reading only each header's length and record count. `None` if there are no batches, or
/// a header is cut short, not magic 2, or declares a length or count that cannot be.
fn record_count(records: &[u8]) -> Option<i64> {
    if records.is_empty() {
        return None;
    }
    let mut rest = records;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let header = rest.get(..batch::HEADER_LEN)?;
        let length = usize::try_from(be_i32(header, batch::LENGTH)?).ok()?;
        let span = batch::LOG_OVERHEAD.checked_add(length)?;
        if span < batch::HEADER_LEN || header.get(batch::MAGIC) != Some(&2) {
            return None;
        }
        let count = be_i32(header, batch::RECORDS_COUNT)?;
        if count < 0 {
            return None;
        }
        total = total.saturating_add(i64::from(count));
        rest = rest.get(span..)?;
    }
    Some(total)
}

fn be_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let field: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i32::from_be_bytes(field))
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpStream;

    use bytes::{Buf, BufMut};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        ApiVersionsRequest, ApiVersionsResponse, ListOffsetsRequest, ResponseHeader,
    };
    use kafka_protocol::protocol::Decodable;
    use sluice::protocol::encode_request;

    use super::*;

    /// A v2 batch header claiming `count` records, followed by `payload` filler bytes (the
    /// null broker reads neither the CRC nor the records).
    fn batch(count: i32, payload: usize) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_i64(0); // base offset
        b.put_i32(i32::try_from(batch::HEADER_LEN - batch::LOG_OVERHEAD + payload).unwrap());
        b.put_i32(-1); // partition leader epoch
        b.put_i8(2); // magic
        b.put_u32(0); // crc, not checked
        b.put_i16(0); // attributes
        b.put_i32(count - 1); // last offset delta
        b.put_i64(0); // first timestamp
        b.put_i64(0); // max timestamp
        b.put_i64(-1); // producer id
        b.put_i16(-1); // producer epoch
        b.put_i32(-1); // base sequence
        b.put_i32(count);
        assert_eq!(b.len(), batch::HEADER_LEN);
        b.resize(batch::HEADER_LEN + payload, 0xab);
        b
    }

    struct Client {
        stream: TcpStream,
        correlation_id: i32,
    }

    impl Client {
        fn connect(addr: SocketAddr) -> Client {
            let stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            Client {
                stream,
                correlation_id: 0,
            }
        }

        fn send(&mut self, request: impl Into<Request>, version: i16) -> i32 {
            self.correlation_id += 1;
            let frame = encode_request(
                &request.into(),
                version,
                self.correlation_id,
                Some("null-broker-test"),
            )
            .unwrap();
            self.stream.write_all(&frame).unwrap();
            self.correlation_id
        }

        /// Reads one response; checks its correlation id and returns the body.
        fn receive(&mut self, api_key: ApiKey, version: i16, correlation_id: i32) -> Bytes {
            let mut size = [0; 4];
            self.stream.read_exact(&mut size).unwrap();
            let mut body = vec![0; usize::try_from(i32::from_be_bytes(size)).unwrap()];
            self.stream.read_exact(&mut body).unwrap();
            let mut body = Bytes::from(body);
            let header_version = if api_key == ApiKey::ApiVersions {
                0
            } else {
                api_key.response_header_version(version)
            };
            let header = ResponseHeader::decode(&mut body, header_version).unwrap();
            assert_eq!(header.correlation_id, correlation_id);
            body
        }

        fn call<R: Decodable>(&mut self, request: impl Into<Request>, version: i16) -> R {
            let request = request.into();
            let api_key = request.api_key();
            let id = self.send(request, version);
            let mut body = self.receive(api_key, version, id);
            let response = R::decode(&mut body, version).unwrap();
            assert!(!body.has_remaining());
            response
        }

        /// True once the server has closed the connection.
        fn closed(&mut self) -> bool {
            let mut byte = [0; 1];
            matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
        }
    }

    fn start() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve_on(listener, DEFAULT_PARTITIONS));
        addr
    }

    fn produce_request(
        acks: i16,
        topic: &str,
        topic_id: Uuid,
        partitions: &[(i32, Vec<u8>)],
    ) -> ProduceRequest {
        let partition_data = partitions
            .iter()
            .map(|(index, records)| {
                PartitionProduceData::default()
                    .with_index(*index)
                    .with_records(Some(Bytes::from(records.clone())))
            })
            .collect();
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_topic_id(topic_id)
                .with_partition_data(partition_data)])
    }

    /// (index, error, base offset) of every partition of the response's only topic.
    fn offsets(response: &ProduceResponse) -> Vec<(i32, i16, i64)> {
        assert_eq!(response.responses.len(), 1);
        response.responses[0]
            .partition_responses
            .iter()
            .map(|p| (p.index, p.error_code, p.base_offset))
            .collect()
    }

    #[test]
    fn api_versions_metadata_and_produce() {
        let addr = start();
        let mut client = Client::connect(addr);

        // ApiVersions advertises the five APIs answered, nothing else.
        let versions: ApiVersionsResponse = client.call(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("test"))
                .with_client_software_version(StrBytes::from_static_str("1")),
            3,
        );
        assert_eq!(versions.error_code, 0);
        let keys: Vec<i16> = versions.api_keys.iter().map(|a| a.api_key).collect();
        assert_eq!(keys, [0, 1, 3, 18, 22]);

        // Metadata: this broker, the topic with eight partitions led by node 1, its id.
        let metadata: MetadataResponse = client.call(
            MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("bench"))))])),
            12,
        );
        assert_eq!(metadata.brokers.len(), 1);
        assert_eq!(metadata.brokers[0].node_id, BrokerId(1));
        assert_eq!(metadata.brokers[0].host.as_str(), "127.0.0.1");
        assert_eq!(metadata.brokers[0].port, i32::from(addr.port()));
        assert_eq!(metadata.topics.len(), 1);
        let topic = &metadata.topics[0];
        assert_eq!(topic.error_code, 0);
        assert_eq!(topic.partitions.len(), 8);
        assert!(topic.partitions.iter().all(|p| p.leader_id == BrokerId(1)));
        let topic_id = topic.topic_id;
        assert!(!topic_id.is_nil());

        // InitProducerId: an id, epoch 0.
        let init: InitProducerIdResponse = client.call(
            InitProducerIdRequest::default().with_transactional_id(None),
            4,
        );
        assert_eq!(init.error_code, 0);
        assert!(init.producer_id.0 >= 0);
        assert_eq!(init.producer_epoch, 0);

        // Produce by name (v3): two batches back to back in partition 0 (3 + 2 records),
        // one batch of 4 in partition 5, an unknown partition.
        let two_batches = [batch(3, 40), batch(2, 7)].concat();
        let response: ProduceResponse = client.call(
            produce_request(
                -1,
                "bench",
                Uuid::nil(),
                &[(0, two_batches), (5, batch(4, 0)), (8, batch(1, 0))],
            ),
            3,
        );
        assert_eq!(offsets(&response), [(0, 0, 0), (5, 0, 0), (8, 3, -1)]);

        // acks=0 gets no answer but still advances the offsets; pipelined requests are
        // answered in order.
        client.send(
            produce_request(0, "bench", Uuid::nil(), &[(0, batch(10, 3))]),
            9,
        );
        let first = client.send(
            produce_request(1, "bench", Uuid::nil(), &[(0, batch(1, 0))]),
            9,
        );
        let second = client.send(
            produce_request(1, "", topic_id, &[(0, batch(1, 0)), (5, batch(6, 0))]),
            13,
        );
        let mut body = client.receive(ApiKey::Produce, 9, first);
        let response = ProduceResponse::decode(&mut body, 9).unwrap();
        assert_eq!(offsets(&response), [(0, 0, 15)]);
        // By topic id (v13).
        let mut body = client.receive(ApiKey::Produce, 13, second);
        let response = ProduceResponse::decode(&mut body, 13).unwrap();
        assert_eq!(response.responses[0].topic_id, topic_id);
        assert_eq!(offsets(&response), [(0, 0, 16), (5, 0, 4)]);

        // An unknown topic id, a corrupt batch: errors, the connection stays open.
        let response: ProduceResponse = client.call(
            produce_request(-1, "", Uuid::from_u64_pair(1, 2), &[(0, batch(1, 0))]),
            13,
        );
        assert_eq!(offsets(&response), [(0, 100, -1)]);
        let mut cut = batch(5, 10);
        cut.truncate(50);
        let response: ProduceResponse =
            client.call(produce_request(-1, "bench", Uuid::nil(), &[(1, cut)]), 7);
        assert_eq!(offsets(&response), [(1, 2, -1)]);

        // Fetch: no records, the high watermark at the log end offset; by name and by id.
        for (version, name, id) in [(12, "bench", Uuid::nil()), (13, "", topic_id)] {
            let request = FetchRequest::default()
                .with_max_wait_ms(10)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str(name)))
                    .with_topic_id(id)
                    .with_partitions(vec![
                        FetchPartition::default().with_partition(0),
                        FetchPartition::default().with_partition(5),
                        FetchPartition::default().with_partition(9),
                    ])]);
            let response: FetchResponse = client.call(request, version);
            let partitions: Vec<(i32, i16, i64, usize)> = response.responses[0]
                .partitions
                .iter()
                .map(|p| {
                    let records = p.records.as_ref().map_or(0, Bytes::len);
                    (p.partition_index, p.error_code, p.high_watermark, records)
                })
                .collect();
            assert_eq!(partitions, [(0, 0, 17, 0), (5, 0, 10, 0), (9, 3, -1, 0)]);
        }

        // A null topic list: every topic named so far.
        let metadata: MetadataResponse =
            client.call(MetadataRequest::default().with_topics(None), 4);
        let names: Vec<&str> = metadata
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str()))
            .collect();
        assert_eq!(names, ["bench"]);

        // An API not advertised closes the connection.
        client.send(ListOffsetsRequest::default(), 7);
        assert!(client.closed());
    }

    #[test]
    fn garbage_closes_the_connection_only() {
        let addr = start();
        for bytes in [
            &[0xff, 0xff, 0xff, 0xff][..],          // negative size
            &[0x7f, 0xff, 0xff, 0xff][..],          // above the frame limit
            &[0, 0, 0, 3, 0, 1, 2][..],             // truncated header
            &[0, 0, 0, 8, 0, 77, 0, 0, 0, 0, 0, 1], // unknown API key
        ] {
            let mut client = Client::connect(addr);
            client.stream.write_all(bytes).unwrap();
            assert!(client.closed(), "{bytes:?}");
        }
        let mut client = Client::connect(addr);
        let versions: ApiVersionsResponse = client.call(ApiVersionsRequest::default(), 0);
        assert_eq!(versions.error_code, 0);
    }

    #[test]
    fn record_count_reads_headers_only() {
        assert_eq!(record_count(&batch(7, 100)), Some(7));
        assert_eq!(
            record_count(&[batch(1, 0), batch(2, 5), batch(3, 9)].concat()),
            Some(6)
        );
        assert_eq!(record_count(&[]), None);
        let one = batch(4, 20);
        for len in 1..one.len() {
            assert_eq!(record_count(&one[..len]), None, "cut at {len}");
        }
        let mut bad_magic = batch(1, 0);
        bad_magic[batch::MAGIC] = 1;
        assert_eq!(record_count(&bad_magic), None);
        let mut short_length = batch(1, 0);
        short_length[batch::LENGTH..batch::LENGTH + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(record_count(&short_length), None);
        let mut negative = batch(1, 0);
        negative[batch::RECORDS_COUNT..].copy_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(record_count(&negative), None);
    }
}
