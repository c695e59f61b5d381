//! Incremental fetch sessions (KIP-227) over raw Fetch v12 against the real binary: a new
//! session answers everything and hands out an id; incremental fetches answer only the
//! partitions with news; forgotten partitions leave the session; a wrong epoch, an unknown
//! id and a closed session get Kafka's errors; sessionless fetches are unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use support::kafka::{name, ops, Client};
use support::{Broker, Coordination};

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

fn fetch(
    c: &mut Client,
    session_id: i32,
    epoch: i32,
    partitions: &[(i32, i64)],
    forget: &[i32],
) -> FetchResponse {
    let mut request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_session_id(session_id)
        .with_session_epoch(epoch);
    if !partitions.is_empty() {
        request.topics = vec![FetchTopic::default().with_topic(name("s")).with_partitions(
            partitions
                .iter()
                .map(|&(p, offset)| {
                    FetchPartition::default()
                        .with_partition(p)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20)
                        .with_current_leader_epoch(-1)
                        .with_log_start_offset(-1)
                })
                .collect(),
        )];
    }
    if !forget.is_empty() {
        request.forgotten_topics_data = vec![ForgottenTopic::default()
            .with_topic(name("s"))
            .with_partitions(forget.to_vec())];
    }
    c.call(request, 12)
}

/// (partition, high watermark, has records) of each partition in the answer.
fn answered(r: &FetchResponse) -> Vec<(i32, i64, bool)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            (
                p.partition_index,
                p.high_watermark,
                p.records.as_ref().is_some_and(|b| !b.is_empty()),
            )
        })
        .collect()
}

fn produce_to(c: &mut Client, partition: i32) {
    use bytes::Bytes;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::ProduceRequest;
    let batch = sluice::actors::log::batch::simple_batch(
        sluice::actors::log::compression::Compression::None,
        1_700_000_000_000,
        &[(Some(b"k"), Some(b"v"))],
    )
    .unwrap();
    let r = c.call(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("s"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(Bytes::from(batch)))])]),
        7,
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

#[test]
fn incremental_fetch_sessions_answer_only_what_changed() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut c = Client::connect(&b.addr());
    ops::create_topic(&mut c, "s", 3, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while ops::produce(&mut c, "s", 1, b"v") != 0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Sessionless: everything, session id 0.
    let r = fetch(&mut c, 0, -1, &[(0, 0), (1, 0), (2, 0)], &[]);
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(answered(&r).len(), 3);

    // A new session: everything, and an id.
    let r = fetch(&mut c, 0, 0, &[(0, 0), (1, 0), (2, 0)], &[]);
    assert_eq!(r.error_code, 0);
    let id = r.session_id;
    assert_ne!(id, 0, "no session was created");
    assert_eq!(answered(&r), [(0, 1, true), (1, 0, false), (2, 0, false)]);

    // Incremental, partition 0 moved on to offset 1: nothing is new anywhere.
    let r = fetch(&mut c, id, 1, &[(0, 1)], &[]);
    assert_eq!((r.error_code, r.session_id), (0, id));
    assert_eq!(answered(&r), []);

    // A record in partition 1: only it is answered (the session remembers its offset 0).
    produce_to(&mut c, 1);
    let r = fetch(&mut c, id, 2, &[], &[]);
    assert_eq!(answered(&r), [(1, 1, true)]);

    // Forget partition 1: a record there is no longer answered.
    let r = fetch(&mut c, id, 3, &[(1, 1)], &[1]);
    assert_eq!(answered(&r), []);
    produce_to(&mut c, 1);
    let r = fetch(&mut c, id, 4, &[], &[]);
    assert_eq!(answered(&r), []);
    // ... while partition 2 still is.
    produce_to(&mut c, 2);
    let r = fetch(&mut c, id, 5, &[], &[]);
    assert_eq!(answered(&r), [(2, 1, true)]);

    // A wrong epoch and an unknown id are refused.
    assert_eq!(
        fetch(&mut c, id, 9, &[], &[]).error_code,
        INVALID_FETCH_SESSION_EPOCH
    );
    assert_eq!(
        fetch(&mut c, id + 1000, 1, &[], &[]).error_code,
        FETCH_SESSION_ID_NOT_FOUND
    );
    // The refused request did not advance the session.
    assert_eq!(fetch(&mut c, id, 6, &[], &[]).error_code, 0);

    // Closing it (epoch -1) answers sessionless; the id is gone afterwards.
    let r = fetch(&mut c, id, -1, &[(0, 0)], &[]);
    assert_eq!((r.error_code, r.session_id), (0, 0));
    assert_eq!(answered(&r).len(), 1);
    assert_eq!(
        fetch(&mut c, id, 7, &[], &[]).error_code,
        FETCH_SESSION_ID_NOT_FOUND
    );
}
