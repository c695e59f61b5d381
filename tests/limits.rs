//! Broker-wide resource limits against the real binary: `max.connections.per.ip`,
//! `connections.max.idle.ms` and the `queued.max.request.bytes` budget of request bytes in
//! flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiVersionsRequest, CreateTopicsRequest, ProduceRequest};
use sluice::actors::log::batch;
use sluice::actors::log::compression::Compression;
use support::kafka::{decode_response, name, Client};
use support::{Broker, Coordination};

/// A connection that answered ApiVersions, or `None` if the broker closed it.
fn connect_ok(addr: &str) -> Option<Client> {
    let mut c = Client::new(TcpStream::connect(addr).unwrap());
    c.send(&ApiVersionsRequest::default(), 0, 1);
    c.try_recv().map(|_| c)
}

/// Retries `connect_ok` until it succeeds (connections the harness closed may still be
/// counted for a moment).
fn connect_eventually(addr: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(c) = connect_ok(addr) {
            return c;
        }
        assert!(Instant::now() < deadline, "no connection accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn connections_per_ip_are_limited() {
    let b = Broker::start_with_config(Coordination::Embedded, &[("max.connections.per.ip", "2")]);
    let addr = b.addr();
    let first = connect_eventually(&addr);
    let mut second = connect_eventually(&addr);
    // A third from the same address is closed at once, and says nothing.
    assert!(connect_ok(&addr).is_none(), "a third connection was served");
    // The two still work.
    second.send(&ApiVersionsRequest::default(), 0, 2);
    assert!(second.try_recv().is_some());
    // One goes: a new one is accepted again.
    drop(first);
    let mut again = connect_eventually(&addr);
    again.send(&ApiVersionsRequest::default(), 0, 3);
    assert!(again.try_recv().is_some());
    assert!(
        b.log().contains("max.connections.per.ip reached"),
        "{}",
        b.log_tail()
    );
}

#[test]
fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let b = Broker::start_with_config(Coordination::Embedded, &[("max.connections", "2")]);
    let addr = b.addr();
    let first = connect_eventually(&addr);
    let mut second = connect_eventually(&addr);
    // The third is not accepted (it waits in the listen backlog): no answer yet.
    let mut third = Client::new(TcpStream::connect(&addr).unwrap());
    third.send(&ApiVersionsRequest::default(), 0, 7);
    third
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert!(third.try_recv().is_none(), "a third connection was served");
    second.send(&ApiVersionsRequest::default(), 0, 2);
    assert!(second.try_recv().is_some());
    // A slot frees: the waiting connection is accepted and its request answered.
    drop(first);
    third
        .stream
        .set_read_timeout(Some(support::kafka::READ_TIMEOUT))
        .unwrap();
    let frame = third
        .try_recv()
        .expect("the waiting connection was not served");
    assert_eq!(support::kafka::correlation_id_of(&frame), 7);
}

#[test]
fn idle_connections_are_closed_and_busy_ones_are_not() {
    let b = Broker::start_with_config(
        Coordination::Embedded,
        &[("connections.max.idle.ms", "400")],
    );
    let addr = b.addr();
    let mut idle = connect_eventually(&addr);
    let mut busy = connect_eventually(&addr);
    let started = Instant::now();
    // The busy one sends a request every 100 ms for three idle periods.
    let mut correlation_id = 10;
    while started.elapsed() < Duration::from_millis(1200) {
        correlation_id += 1;
        busy.send(&ApiVersionsRequest::default(), 0, correlation_id);
        assert!(
            busy.try_recv().is_some(),
            "a busy connection was closed after {:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The idle one was closed by the broker: EOF (a read timeout here would be `false`).
    assert!(idle.is_closed(), "an idle connection is still open");
}

/// The peak resident set of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap()
}

/// Many clients send large produce requests at once: the broker reads no more than
/// `queued.max.request.bytes` of them at a time (it stops reading sockets instead), so its
/// peak memory grows by a bounded amount, and every request is answered.
#[test]
fn large_concurrent_produces_stay_within_the_request_budget() {
    const BUDGET: usize = 8 << 20;
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 4;
    const VALUE: usize = 4 << 20;
    let b = Broker::start_with_config(
        Coordination::Embedded,
        &[
            ("queued.max.request.bytes", &BUDGET.to_string()),
            ("message.max.bytes", "10485760"),
        ],
    );
    let addr = b.addr();
    let mut c = connect_eventually(&addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r: kafka_protocol::messages::CreateTopicsResponse = c.call(
            CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name("big"))
                    .with_num_partitions(1)
                    .with_replication_factor(1)])
                .with_timeout_ms(10_000),
            4,
        );
        if r.topics[0].error_code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "cannot create the topic: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let value = vec![7u8; VALUE];
    let records =
        batch::simple_batch(Compression::None, 1, &[(Some(b"k"), Some(&value[..]))]).unwrap();
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("big"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])]);
    let idle = peak_rss(b.pid());
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = addr.clone();
            let produce = produce.clone();
            std::thread::spawn(move || {
                let mut c = connect_eventually(&addr);
                // Pipelined: every request is written before any answer is read.
                for i in 0..REQUESTS {
                    c.send(&produce, 7, i as i32 + 10);
                }
                (0..REQUESTS)
                    .map(|i| {
                        let frame = c.try_recv().expect("an answer");
                        let r: kafka_protocol::messages::ProduceResponse =
                            decode_response::<ProduceRequest>(7, i as i32 + 10, frame);
                        r.responses[0].partition_responses[0].error_code
                    })
                    .collect::<Vec<i16>>()
            })
        })
        .collect();
    for t in threads {
        let codes = t.join().unwrap();
        assert!(codes.iter().all(|c| *c == 0), "{codes:?}");
    }
    let grown = peak_rss(b.pid()).saturating_sub(idle);
    let sent = (CLIENTS * REQUESTS * VALUE) as u64;
    println!(
        "MEASURE: {} MiB sent by {CLIENTS} clients at once; the broker's peak RSS grew by {} MiB (budget {} MiB)",
        sent >> 20,
        grown >> 20,
        BUDGET >> 20
    );
    // Each request in flight exists about three times (the frame, the records handed to
    // the replica, the log write): a few budgets, far below what was sent.
    assert!(
        grown < (8 * BUDGET) as u64,
        "peak RSS grew by {grown} bytes with a budget of {BUDGET}"
    );
}
