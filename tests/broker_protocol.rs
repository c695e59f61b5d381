//! The broker binary spoken to in raw Kafka protocol over real TCP, through the shared raw
//! client of `tests/support/kafka.rs` (requests and responses in kafka-protocol's types; the
//! malformed frames are built from the codec's `sluice::protocol::encode_request`). Each test
//! starts its own `sluice` process on a free port with a temporary config and data dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::actors::log::batch;
use sluice::actors::log::compression::Compression;
use sluice::protocol::encode_request;
use support::kafka::{decode, Client};

/// One broker process, killed on drop.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("broker.toml");
        std::fs::write(
            &config,
            format!(
                "broker_id = 1\n\
                 listen = \"127.0.0.1:{port}\"\n\
                 data_dir = \"{data}\"\n\
                 log_level = \"info\"\n\
                 [coordination]\n\
                 backend = \"embedded\"\n\
                 root = \"/sluice\"\n\
                 [config]\n\
                 \"num.partitions\" = 1\n\
                 \"default.replication.factor\" = 1\n\
                 \"socket.request.max.bytes\" = 1048576\n",
                data = dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut broker = Broker { child, port, dir };
        broker.wait_ready();
        broker
    }

    /// Ready = a TCP connection answers ApiVersions.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the broker exited with {status}");
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut c = Client::new(stream);
                c.send(&ApiVersionsRequest::default(), 0, 1);
                if c.try_recv().is_some() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the broker did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self) -> Client {
        Client::new(TcpStream::connect(("127.0.0.1", self.port)).unwrap())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Creates `topic` through CreateTopics, retrying while no controller is elected.
fn create_topic(c: &mut Client, topic: &str, partitions: i32) -> CreateTopicsResponse {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let request = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(1)])
            .with_timeout_ms(10_000);
        let response: CreateTopicsResponse = c.call_corr(request, 4, 7);
        if response.topics[0].error_code != 41 || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn produce_request(topic: &str, acks: i16, records: &[u8]) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::copy_from_slice(records)))])])
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])])
}

#[test]
fn api_versions_supported_and_unsupported() {
    let broker = Broker::start();
    let mut c = broker.client();
    for version in [0, 3] {
        let r: ApiVersionsResponse = c.call_corr(ApiVersionsRequest::default(), version, 2);
        assert_eq!(r.error_code, 0);
        let keys: Vec<i16> = r.api_keys.iter().map(|a| a.api_key).collect();
        for key in [
            0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 22, 42, 47,
        ] {
            assert!(keys.contains(&key), "API {key} is not advertised: {keys:?}");
        }
        // Not implemented, so not advertised (trap 2): transactions (24 AddPartitionsToTxn,
        // 26 EndTxn), ConsumerGroupHeartbeat (68), ConsumerGroupDescribe (69),
        // GetTelemetrySubscriptions (71).
        for key in [24, 26, 68, 69, 71] {
            assert!(!keys.contains(&key), "API {key} is advertised");
        }
    }
    // A version from the future: UNSUPPORTED_VERSION in the v0 format, with the ranges.
    c.send(&ApiVersionsRequest::default(), 0, 3);
    // Rewrite the version field of a v0 frame to 99 (the body of v0 is empty either way).
    let mut frame = encode_request(&ApiVersionsRequest::default().into(), 0, 4, None)
        .unwrap()
        .to_vec();
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    let _ = c.try_recv().unwrap();
    c.stream.write_all(&frame).unwrap();
    let r: ApiVersionsResponse = decode(ApiKey::ApiVersions, 0, 4, c.try_recv().unwrap());
    assert_eq!(r.error_code, 35);
    assert!(r
        .api_keys
        .iter()
        .any(|a| a.api_key == 18 && a.max_version >= 3));
    // The connection stays usable.
    let r: ApiVersionsResponse = c.call_corr(ApiVersionsRequest::default(), 3, 5);
    assert_eq!(r.error_code, 0);
}

#[test]
fn create_produce_fetch_list_offsets() {
    let broker = Broker::start();
    let mut c = broker.client();
    let created = create_topic(&mut c, "orders", 1);
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let created = create_topic(&mut c, "orders", 1);
    assert_eq!(created.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");

    // Metadata v1 (librdkafka 2.0 era) and v12 (topic ids, flexible).
    let m: MetadataResponse = c.call_corr(
        MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("orders")))
        ])),
        12,
        8,
    );
    assert_eq!(m.controller_id.0, 1);
    assert_eq!(m.brokers.len(), 1);
    assert_eq!(m.brokers[0].port, i32::from(broker.port));
    assert!(m.cluster_id.is_some());
    let topic = &m.topics[0];
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.partitions[0].leader_id.0, 1);
    assert_eq!(topic.partitions[0].leader_epoch, 0);
    assert!(!topic.topic_id.is_nil());
    let topic_id = topic.topic_id;
    let m: MetadataResponse = c.call_corr(MetadataRequest::default().with_topics(None), 1, 9);
    assert_eq!(m.topics.len(), 1);

    // Produce acks=1 then acks=-1 (v9, flexible) and v3.
    let first =
        batch::simple_batch(Compression::None, now(), &[(Some(b"k1"), Some(b"v1"))]).unwrap();
    let second = batch::simple_batch(
        Compression::None,
        now(),
        &[(Some(b"k2"), Some(b"v2")), (None, Some(b"v3"))],
    )
    .unwrap();
    let p: ProduceResponse = c.call_corr(produce_request("orders", 1, &first), 9, 10);
    let part = &p.responses[0].partition_responses[0];
    assert_eq!((part.error_code, part.base_offset), (0, 0), "{p:?}");
    let p: ProduceResponse = c.call_corr(produce_request("orders", -1, &second), 3, 11);
    let part = &p.responses[0].partition_responses[0];
    assert_eq!((part.error_code, part.base_offset), (0, 1), "{p:?}");
    // Unknown topic.
    let p: ProduceResponse = c.call_corr(produce_request("nope", 1, &first), 9, 12);
    assert_eq!(p.responses[0].partition_responses[0].error_code, 3);

    // Fetch returns the same batches: the broker rewrites base offset and leader epoch
    // only, which the CRC does not cover; everything from the magic byte on is as sent.
    for version in [4, 11, 12] {
        let f: FetchResponse = c.call_corr(fetch_request("orders", 0, 100), version, 13);
        let p = &f.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        assert_eq!(p.high_watermark, 3);
        assert_eq!(p.last_stable_offset, 3);
        let records = p.records.clone().unwrap();
        assert_eq!(records.len(), first.len() + second.len(), "v{version}");
        assert_eq!(&records[16..first.len()], &first[16..]);
        assert_eq!(&records[first.len() + 16..], &second[16..]);
        assert_eq!(&records[..8], &0i64.to_be_bytes());
        assert_eq!(&records[first.len()..first.len() + 8], &1i64.to_be_bytes());
    }
    // v13+: by topic id.
    let mut request = fetch_request("", 1, 100);
    request.topics[0].topic = TopicName::default();
    request.topics[0].topic_id = topic_id;
    let f: FetchResponse = c.call_corr(request, 16, 14);
    assert_eq!(f.responses[0].topic_id, topic_id);
    let p = &f.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.records.as_ref().unwrap().len(), second.len());
    // Out of range.
    let f: FetchResponse = c.call_corr(fetch_request("orders", 50, 0), 12, 15);
    assert_eq!(f.responses[0].partitions[0].error_code, 1);

    // ListOffsets earliest and latest, v1 and v7.
    for (version, timestamp, expected) in [(1, -2, 0), (1, -1, 3), (7, -2, 0), (7, -1, 3)] {
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("orders"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)])]);
        let r: ListOffsetsResponse = c.call_corr(request, version, 16);
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.offset),
            (0, expected),
            "v{version} ts {timestamp}"
        );
    }
    // Produce v13+ addresses the topic by id.
    if sluice::protocol::supported_versions(ApiKey::Produce)
        .unwrap()
        .max
        >= 13
    {
        let mut request = produce_request("", 1, &first);
        request.topic_data[0].name = TopicName::default();
        request.topic_data[0].topic_id = topic_id;
        let p: ProduceResponse = c.call_corr(request, 13, 11);
        assert_eq!(p.responses[0].topic_id, topic_id);
        let part = &p.responses[0].partition_responses[0];
        assert_eq!((part.error_code, part.base_offset), (0, 3), "{p:?}");
    }
}

#[test]
fn pipelined_responses_keep_request_order_and_acks_zero_is_silent() {
    let broker = Broker::start();
    let mut c = broker.client();
    assert_eq!(create_topic(&mut c, "pipe", 1).topics[0].error_code, 0);
    // A long-poll fetch at the end of the log, then ApiVersions: the second finishes first
    // but is written second.
    c.send(&fetch_request("pipe", 0, 300), 12, 100);
    c.send(&ApiVersionsRequest::default(), 3, 101);
    let start = Instant::now();
    let f: FetchResponse = decode(ApiKey::Fetch, 12, 100, c.try_recv().unwrap());
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "the fetch did not wait"
    );
    assert_eq!(
        f.responses[0].partitions[0]
            .records
            .as_ref()
            .map_or(0, |r| r.len()),
        0
    );
    let _: ApiVersionsResponse = decode(ApiKey::ApiVersions, 3, 101, c.try_recv().unwrap());

    // acks=0: no response; the next request's response comes next.
    let records = batch::simple_batch(Compression::None, now(), &[(None, Some(b"x"))]).unwrap();
    c.send(&produce_request("pipe", 0, &records), 9, 102);
    let f: FetchResponse = c.call_corr(fetch_request("pipe", 0, 2000), 12, 103);
    assert_eq!(f.responses[0].partitions[0].high_watermark, 1);
    // A long poll wakes when a record arrives from another connection.
    let mut other = broker.client();
    c.send(&fetch_request("pipe", 1, 10_000), 12, 104);
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let p: ProduceResponse = other.call_corr(produce_request("pipe", 1, &records), 9, 1);
    assert_eq!(p.responses[0].partition_responses[0].error_code, 0);
    let f: FetchResponse = decode(ApiKey::Fetch, 12, 104, c.try_recv().unwrap());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(f.responses[0].partitions[0].high_watermark, 2);
    assert!(!f.responses[0].partitions[0]
        .records
        .as_ref()
        .unwrap()
        .is_empty());

    // acks=0 to an unknown topic: the connection is closed.
    c.send(&produce_request("unknown-topic", 0, &records), 9, 105);
    assert!(c.is_closed());
}

#[test]
fn bad_frames_close_only_their_connection() {
    let broker = Broker::start();
    let mut good = broker.client();
    let _: ApiVersionsResponse = good.call_corr(ApiVersionsRequest::default(), 3, 1);

    // A negative size.
    let mut bad = broker.client();
    bad.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(bad.is_closed());
    let _: ApiVersionsResponse = good.call_corr(ApiVersionsRequest::default(), 3, 2);

    // Above socket.request.max.bytes (1 MiB here), before any body arrives.
    let mut bad = broker.client();
    bad.stream.write_all(&(2_000_000i32).to_be_bytes()).unwrap();
    assert!(bad.is_closed());
    let _: ApiVersionsResponse = good.call_corr(ApiVersionsRequest::default(), 3, 3);

    // An unknown API key.
    let mut bad = broker.client();
    let mut frame = encode_request(&ApiVersionsRequest::default().into(), 0, 9, None)
        .unwrap()
        .to_vec();
    frame[4..6].copy_from_slice(&999i16.to_be_bytes());
    bad.stream.write_all(&frame).unwrap();
    assert!(bad.is_closed());

    // A version of Metadata the broker does not know: Kafka closes the connection (only
    // ApiVersions is answered at any version).
    let mut bad = broker.client();
    let mut frame = encode_request(&MetadataRequest::default().into(), 1, 9, None)
        .unwrap()
        .to_vec();
    frame[6..8].copy_from_slice(&99i16.to_be_bytes());
    bad.stream.write_all(&frame).unwrap();
    assert!(bad.is_closed());

    // A body that does not decode: a topics array of 1000 entries, then nothing.
    let mut bad = broker.client();
    let request = MetadataRequest::default().with_topics(Some(vec![]));
    let mut frame = encode_request(&request.into(), 1, 9, None)
        .unwrap()
        .to_vec();
    let n = frame.len();
    frame[n - 4..].copy_from_slice(&1000i32.to_be_bytes());
    bad.stream.write_all(&frame).unwrap();
    assert!(bad.is_closed());

    // Bytes after a valid body are ignored, as Kafka does (librdkafka 2.16 sends three
    // after Metadata v13).
    let mut lenient = broker.client();
    let mut frame = encode_request(&MetadataRequest::default().into(), 13, 10, None)
        .unwrap()
        .to_vec();
    frame.extend_from_slice(&[1, 0, 0]);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    lenient.stream.write_all(&frame).unwrap();
    let m: MetadataResponse = decode(ApiKey::Metadata, 13, 10, lenient.try_recv().unwrap());
    assert_eq!(m.brokers.len(), 1);

    // A client that half-closes still gets its answer.
    let mut half = broker.client();
    half.send(&ApiVersionsRequest::default(), 3, 4);
    half.stream.shutdown(Shutdown::Write).unwrap();
    assert!(half.try_recv().is_some());

    let _: ApiVersionsResponse = good.call_corr(ApiVersionsRequest::default(), 3, 5);
}

#[test]
fn metadata_auto_creates_topics() {
    let broker = Broker::start();
    let mut c = broker.client();
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("auto")))
        ]))
        .with_allow_auto_topic_creation(true)
        .with_include_topic_authorized_operations(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m: MetadataResponse = c.call_corr(request.clone(), 8, 1);
        let t = &m.topics[0];
        assert!(
            t.topic_authorized_operations > 0,
            "a real bit field (trap 6)"
        );
        if t.error_code == 0 && t.partitions.first().is_some_and(|p| p.leader_id.0 == 1) {
            break;
        }
        assert!(
            t.error_code == 5 || t.error_code == 0,
            "LEADER_NOT_AVAILABLE while being created: {t:?}"
        );
        assert!(Instant::now() < deadline, "the topic was not created");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Without the flag: UNKNOWN_TOPIC_OR_PARTITION.
    let m: MetadataResponse = c.call_corr(
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("no-auto")))
            ]))
            .with_allow_auto_topic_creation(false),
        8,
        2,
    );
    assert_eq!(m.topics[0].error_code, 3);
}

/// A multi-megabyte Fetch: the records go out with `sendfile` in several rounds (the socket
/// buffer fills), and arrive byte for byte.
#[test]
fn large_fetch_is_sent_whole() {
    let broker = Broker::start();
    let mut c = broker.client();
    assert_eq!(create_topic(&mut c, "big", 1).topics[0].error_code, 0);
    let value = vec![0x5a_u8; 200 * 1024];
    let mut sent = Vec::new();
    for i in 0..20 {
        let records = batch::simple_batch(
            Compression::None,
            now(),
            &[(Some(format!("k{i}").as_bytes()), Some(&value[..]))],
        )
        .unwrap();
        let p: ProduceResponse = c.call_corr(produce_request("big", 1, &records), 9, i);
        let part = &p.responses[0].partition_responses[0];
        assert_eq!((part.error_code, part.base_offset), (0, i64::from(i)));
        sent.push(records);
    }
    let mut request = fetch_request("big", 0, 0);
    request.max_bytes = 64 << 20;
    request.topics[0].partitions[0].partition_max_bytes = 64 << 20;
    // Read slowly at first, so that the broker's writes would block.
    c.send(&request, 12, 99);
    std::thread::sleep(Duration::from_millis(200));
    let f: FetchResponse = decode(ApiKey::Fetch, 12, 99, c.try_recv().unwrap());
    let records = f.responses[0].partitions[0].records.clone().unwrap();
    let total: usize = sent.iter().map(Vec::len).sum();
    assert_eq!(records.len(), total);
    let mut at = 0;
    for (i, batch) in sent.iter().enumerate() {
        assert_eq!(&records[at..at + 8], &(i as i64).to_be_bytes());
        assert_eq!(&records[at + 16..at + batch.len()], &batch[16..]);
        at += batch.len();
    }
    // The connection is still in step.
    let _: ApiVersionsResponse = c.call_corr(ApiVersionsRequest::default(), 3, 100);
}

/// SIGTERM: requests already read are answered, then the broker shuts down cleanly (the
/// clean-shutdown marker is written) and exits 0.
#[test]
fn sigterm_answers_in_flight_requests_and_stops_cleanly() {
    let mut broker = Broker::start();
    let mut c = broker.client();
    assert_eq!(create_topic(&mut c, "stop", 1).topics[0].error_code, 0);
    c.send(&fetch_request("stop", 0, 1000), 12, 1);
    std::thread::sleep(Duration::from_millis(100));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(broker.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let f: FetchResponse = decode(ApiKey::Fetch, 12, 1, c.try_recv().unwrap());
    assert_eq!(f.responses[0].partitions[0].error_code, 0);
    assert!(c.is_closed());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(status) = broker.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the broker did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");
    assert!(broker.dir.path().join("data/.clean-shutdown").exists());
}
