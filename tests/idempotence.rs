//! Idempotent produce at the protocol level, against the real `sluice` binary: a producer id
//! from InitProducerId (non-transactional), idempotent batches (producer id, epoch, base
//! sequence) sent with acks=-1, and what the broker answers to a retried batch (no error, the
//! original offsets, nothing appended: trap 12 of the compatibility notes), a sequence gap
//! (OUT_OF_ORDER_SEQUENCE_NUMBER) and a stale epoch (INVALID_PRODUCER_EPOCH). Requests are
//! encoded and responses decoded with kafka-protocol by the shared raw client of
//! `tests/support/kafka.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, InitProducerIdRequest,
    InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice::actors::log::batch::{self, BatchHeader, BatchSpec, RecordIter};
use sluice::actors::log::compression::Compression;
use support::kafka::Client;
use support::Broker;

const NONE: i16 = 0;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;

/// Produce v9: the last version before topic ids, with per-record errors.
const PRODUCE_VERSION: i16 = 9;

/// The requests this test repeats, on the shared raw client.
trait IdempotenceRequests {
    fn create_topic(&mut self, topic: &str);
    fn init_producer_id(&mut self, version: i16) -> (i64, i16);
    fn produce(&mut self, topic: &str, records: &[u8]) -> PartitionProduceResponse;
    fn log_end_offset(&mut self, topic: &str) -> i64;
    fn read_all(&mut self, topic: &str) -> Vec<(i64, Vec<u8>, i64, i16, i32)>;
}

impl IdempotenceRequests for Client {
    /// Creates a one-partition topic, retrying while no controller is elected yet.
    fn create_topic(&mut self, topic: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let request = CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(1)
                    .with_replication_factor(1)])
                .with_timeout_ms(10_000);
            let r: CreateTopicsResponse = self.call(request, 4);
            let code = r.topics[0].error_code;
            if code == NONE {
                return;
            }
            assert!(
                code == 41 && Instant::now() < deadline,
                "CreateTopics {topic}: error {code}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new producer id and its epoch (non-transactional InitProducerId).
    fn init_producer_id(&mut self, version: i16) -> (i64, i16) {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000);
        let r: InitProducerIdResponse = self.call(request, version);
        assert_eq!(r.error_code, NONE, "InitProducerId v{version}: {r:?}");
        (r.producer_id.0, r.producer_epoch)
    }

    /// Produces `records` (one encoded batch) to partition 0 with acks=-1.
    fn produce(&mut self, topic: &str, records: &[u8]) -> PartitionProduceResponse {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::copy_from_slice(records)))])]);
        let mut r: ProduceResponse = self.call(request, PRODUCE_VERSION);
        assert_eq!(r.responses.len(), 1, "{r:?}");
        let mut topic_response = r.responses.remove(0);
        assert_eq!(topic_response.partition_responses.len(), 1);
        topic_response.partition_responses.remove(0)
    }

    /// The log end offset of partition 0 (ListOffsets "latest").
    fn log_end_offset(&mut self, topic: &str) -> i64 {
        let request = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]);
        let r: ListOffsetsResponse = self.call(request, 1);
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, NONE, "ListOffsets: {r:?}");
        p.offset
    }

    /// Every record value in partition 0, in offset order, with its offset and the producer
    /// id, epoch and sequence of its batch.
    fn read_all(&mut self, topic: &str) -> Vec<(i64, Vec<u8>, i64, i16, i32)> {
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_isolation_level(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        let r: FetchResponse = self.call(request, 11);
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, NONE, "Fetch: {r:?}");
        let mut out = Vec::new();
        let mut buf: &[u8] = p.records.as_deref().unwrap_or_default();
        while !buf.is_empty() {
            let h = BatchHeader::parse(buf).expect("a batch header");
            let (one, rest) = buf.split_at(h.size());
            let body = batch::records_payload(one, &h, 1 << 20).expect("records");
            let mut records = RecordIter::new(&body, h.record_count);
            while let Some(rec) = records.next_record().expect("a record") {
                out.push((
                    h.base_offset + i64::from(rec.offset_delta),
                    rec.value.unwrap_or_default().to_vec(),
                    h.producer_id,
                    h.producer_epoch,
                    h.base_sequence + rec.offset_delta,
                ));
            }
            buf = rest;
        }
        out
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An idempotent batch of `values` from producer `pid` at `epoch`, the first record at
/// sequence `seq`.
fn idempotent_batch(pid: i64, epoch: i16, seq: i32, values: &[&str]) -> Vec<u8> {
    let mut encoded = Vec::new();
    for (i, v) in values.iter().enumerate() {
        batch::encode_record(&mut encoded, i as i32, i as i64, None, Some(v.as_bytes()));
    }
    let n = values.len() as i32;
    let ts = now();
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: Compression::None.id(),
        last_offset_delta: n - 1,
        base_timestamp: ts,
        max_timestamp: ts + i64::from(n - 1),
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
    };
    batch::build_batch(&spec, &encoded, n).unwrap()
}

#[test]
fn retried_gapped_and_fenced_idempotent_batches() {
    let t0 = Instant::now();
    let broker = Broker::start();
    let mut c = Client::connect(&broker.addr()).with_client_id("sluice-idempotence-test");
    let topic = "idempotence";
    c.create_topic(topic);

    // Producer ids: every InitProducerId (v1 as kafka-python 2.x and kafkajs send it, v4 as
    // librdkafka does) hands out a new id at epoch 0.
    let (other_pid, other_epoch) = c.init_producer_id(1);
    let (pid, epoch) = c.init_producer_id(4);
    assert!(
        pid >= 0 && other_pid >= 0,
        "producer ids {other_pid}, {pid}"
    );
    assert_ne!(pid, other_pid, "two InitProducerId calls gave the same id");
    assert_eq!((epoch, other_epoch), (0, 0));

    // Three plain records first, so the idempotent batch does not start at offset 0. The
    // first produce after CreateTopics may meet a partition without its leader yet.
    let plain = batch::simple_batch(
        Compression::None,
        now(),
        &[
            (None, Some(b"p0")),
            (None, Some(b"p1")),
            (None, Some(b"p2")),
        ],
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.produce(topic, &plain);
        if r.error_code == NONE {
            assert_eq!(r.base_offset, 0, "{r:?}");
            break;
        }
        // NOT_LEADER_OR_FOLLOWER / LEADER_NOT_AVAILABLE / UNKNOWN_TOPIC_OR_PARTITION.
        assert!(
            [6, 5, 3].contains(&r.error_code) && Instant::now() < deadline,
            "plain produce: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.log_end_offset(topic), 3);

    // The first idempotent batch: sequences 0..=4 at offsets 3..=7.
    let first = idempotent_batch(pid, epoch, 0, &["a0", "a1", "a2", "a3", "a4"]);
    let r = c.produce(topic, &first);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 3),
        "first batch: {r:?}"
    );
    assert_eq!(c.log_end_offset(topic), 8);

    // A retry of the same batch (its response was lost, say): no error, the original base
    // offset, nothing appended.
    let r = c.produce(topic, &first);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 3),
        "a retried batch must be answered with no error and its original base offset: {r:?}"
    );
    assert_eq!(
        c.log_end_offset(topic),
        8,
        "a retried batch moved the log end offset"
    );

    // The next batch in sequence, then retries of it and of the older batch (both within the
    // last five batches the broker remembers), also on a fresh connection.
    let second = idempotent_batch(pid, epoch, 5, &["b5", "b6"]);
    let r = c.produce(topic, &second);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 8),
        "second batch: {r:?}"
    );
    let mut c2 = Client::connect(&broker.addr()).with_client_id("sluice-idempotence-test");
    for (what, batch, base) in [("second", &second, 8), ("first", &first, 3)] {
        let r = c2.produce(topic, batch);
        assert_eq!(
            (r.error_code, r.base_offset),
            (NONE, base),
            "retry of the {what} batch: {r:?}"
        );
    }
    assert_eq!(c.log_end_offset(topic), 10);

    // A sequence gap (7 is next; 9 skips two): OUT_OF_ORDER_SEQUENCE_NUMBER, nothing appended.
    let gap = idempotent_batch(pid, epoch, 9, &["gap"]);
    let r = c.produce(topic, &gap);
    assert_eq!(
        r.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER,
        "a sequence gap: {r:?}"
    );
    assert_eq!(c.log_end_offset(topic), 10);

    // The producer still goes on in sequence after the rejected batch.
    let third = idempotent_batch(pid, epoch, 7, &["c7"]);
    let r = c.produce(topic, &third);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 10),
        "third batch: {r:?}"
    );

    // Another producer's sequence is its own: it starts at 0 wherever the log is.
    let other = idempotent_batch(other_pid, other_epoch, 0, &["o0"]);
    let r = c.produce(topic, &other);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 11),
        "other producer: {r:?}"
    );

    // The producer bumps its epoch (as librdkafka does after a failed idempotent batch): a
    // higher epoch starts again at sequence 0. Then the old epoch is stale:
    // INVALID_PRODUCER_EPOCH, nothing appended, in sequence or as a retry.
    let bumped = idempotent_batch(pid, epoch + 1, 0, &["d0"]);
    let r = c.produce(topic, &bumped);
    assert_eq!(
        (r.error_code, r.base_offset),
        (NONE, 12),
        "bumped epoch: {r:?}"
    );
    let bumped_wrong_start = idempotent_batch(pid, epoch + 2, 3, &["x"]);
    let r = c.produce(topic, &bumped_wrong_start);
    assert_eq!(
        r.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER,
        "a new epoch must start at sequence 0: {r:?}"
    );
    for (what, batch) in [
        ("in sequence", idempotent_batch(pid, epoch, 8, &["stale"])),
        ("a retry", third.clone()),
    ] {
        let r = c.produce(topic, &batch);
        assert_eq!(
            r.error_code, INVALID_PRODUCER_EPOCH,
            "a batch of the stale epoch ({what}): {r:?}"
        );
    }
    assert_eq!(c.log_end_offset(topic), 13);

    // The log holds each record once, in order, with its producer's sequence numbers.
    let records = c.read_all(topic);
    let got: Vec<(i64, String, i64, i16, i32)> = records
        .into_iter()
        .map(|(o, v, p, e, s)| (o, String::from_utf8(v).unwrap(), p, e, s))
        .collect();
    let mut want = vec![
        (0, "p0".to_owned(), -1, -1, -1),
        (1, "p1".to_owned(), -1, -1, -1),
        (2, "p2".to_owned(), -1, -1, -1),
    ];
    // Plain batches have base sequence -1: the per-record "sequence" above is -1 + delta.
    for (i, w) in want.iter_mut().enumerate() {
        w.4 = -1 + i as i32;
    }
    for (o, v, s) in [
        (3, "a0", 0),
        (4, "a1", 1),
        (5, "a2", 2),
        (6, "a3", 3),
        (7, "a4", 4),
        (8, "b5", 5),
        (9, "b6", 6),
        (10, "c7", 7),
    ] {
        want.push((o, v.to_owned(), pid, epoch, s));
    }
    want.push((11, "o0".to_owned(), other_pid, other_epoch, 0));
    want.push((12, "d0".to_owned(), pid, epoch + 1, 0));
    assert_eq!(got, want);
    eprintln!("idempotence test in {:?}", t0.elapsed());
}
