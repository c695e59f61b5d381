//! Hostile input over raw TCP against the real binary, one case per test. Each case runs on
//! its own broker (`socket.request.max.bytes` = 16 MiB), then checks that another client is
//! still served, and that the broker's peak RSS grew by less than twice the request-size
//! limit over what it was just before the case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, CreateTopicsResponse, ProduceRequest,
};
use sluice::actors::log::batch;
use sluice::actors::log::compression::Compression;
use support::kafka::{name, s, Client};
use support::{Broker, Coordination};

const LIMIT: usize = 16 << 20;

/// A broker with a 16 MiB request limit and a topic "t" (and a compacted "c"), ready. Its
/// `queued.max.request.bytes` is the request limit too: several connections each reading a
/// frame of up to the limit (the garbage flood) would otherwise hold one limit each, and
/// "peak RSS below twice the limit" is a promise only a global budget can keep.
fn broker() -> Broker {
    let b = Broker::start_with_config(
        Coordination::Embedded,
        &[
            ("socket.request.max.bytes", &LIMIT.to_string()),
            ("queued.max.request.bytes", &LIMIT.to_string()),
        ],
    );
    let mut c = Client::connect(&b.addr());
    for (topic, compact) in [("t", false), ("c", true)] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut t = CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(1)
                .with_replication_factor(1);
            if compact {
                t.configs = vec![CreatableTopicConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact")))];
            }
            let r: CreateTopicsResponse = c.call(
                CreateTopicsRequest::default()
                    .with_topics(vec![t])
                    .with_timeout_ms(10_000),
                4,
            );
            if r.topics[0].error_code == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{r:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    b
}

fn peak_rss(b: &Broker) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", b.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

/// Runs `case` against a fresh broker, then: another client is served, and the peak RSS
/// grew by less than twice the request limit.
fn hostile(case: impl FnOnce(&str)) {
    let mut b = broker();
    let before = peak_rss(&b);
    case(&b.addr());
    let mut other = Client::connect(&b.addr());
    other.send(&ApiVersionsRequest::default(), 3, 77);
    assert!(
        other.try_recv().is_some(),
        "another client is not served:\n{}",
        b.log_tail()
    );
    let grown = peak_rss(&b).saturating_sub(before);
    eprintln!("MEASURE: peak RSS grew by {} KiB", grown / 1024);
    assert!(
        grown < 2 * LIMIT as u64,
        "peak RSS grew by {grown} bytes (limit {LIMIT})"
    );
    b.stop();
}

fn raw(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Whether the broker closed the connection (EOF or reset) rather than answering.
fn closed(stream: &mut TcpStream) -> bool {
    let mut c = Client::new(stream.try_clone().unwrap());
    c.is_closed()
}

#[test]
fn size_minus_one_closes_the_connection() {
    hostile(|addr| {
        let mut s = raw(addr);
        s.write_all(&(-1i32).to_be_bytes()).unwrap();
        assert!(closed(&mut s));
    });
}

#[test]
fn size_i32_max_closes_the_connection_without_allocating() {
    hostile(|addr| {
        let mut s = raw(addr);
        s.write_all(&i32::MAX.to_be_bytes()).unwrap();
        assert!(closed(&mut s));
    });
}

#[test]
fn size_just_above_the_limit_closes_the_connection() {
    hostile(|addr| {
        let mut s = raw(addr);
        s.write_all(&(LIMIT as i32 + 1).to_be_bytes()).unwrap();
        assert!(closed(&mut s));
    });
}

#[test]
fn truncated_frame_then_close() {
    hostile(|addr| {
        let mut s = raw(addr);
        s.write_all(&1000i32.to_be_bytes()).unwrap();
        s.write_all(&[0, 18, 0, 3, 0, 0, 0, 1]).unwrap();
        drop(s);
    });
}

#[test]
fn metadata_with_a_topic_count_of_i32_max_in_8_bytes() {
    hostile(|addr| {
        let mut s = raw(addr);
        // Metadata v0: api key 3, version 0, correlation id, null client id, then the
        // topic array's count — 2^31-1 topics announced, none there.
        let mut body = vec![0, 3, 0, 0, 0, 0, 0, 7, 0xff, 0xff];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        s.write_all(&frame).unwrap();
        assert!(closed(&mut s));
    });
}

fn produce(topic: &str, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])])
}

/// The produce's error code for partition 0 (the connection stays open).
fn produce_error(addr: &str, topic: &str, records: Vec<u8>) -> i16 {
    let mut c = Client::connect(addr);
    let r = c.call(produce(topic, records), 7);
    r.responses[0].partition_responses[0].error_code
}

fn one_batch() -> Vec<u8> {
    batch::simple_batch(
        Compression::None,
        1_700_000_000_000,
        &[(Some(b"key"), Some(b"value")), (Some(b"k2"), Some(b"v2"))],
    )
    .unwrap()
}

#[test]
fn produce_whose_record_count_lies_is_refused() {
    hostile(|addr| {
        let mut b = one_batch();
        // record count (bytes 57..61) says 1000; CRC recomputed so only the count lies.
        b[57..61].copy_from_slice(&1000i32.to_be_bytes());
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let code = produce_error(addr, "t", b);
        assert!(code == 2 || code == 87, "error code {code}");
    });
}

#[test]
fn produce_whose_record_length_lies_is_refused() {
    hostile(|addr| {
        let mut b = one_batch();
        // The first record's length varint (byte 61) made huge.
        b[61] = 0x7e;
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let code = produce_error(addr, "t", b);
        assert!(code == 2 || code == 87, "error code {code}");
    });
}

#[test]
fn crc_corrupted_batch_is_corrupt_message() {
    hostile(|addr| {
        let mut b = one_batch();
        let n = b.len();
        b[n - 1] ^= 0xff;
        assert_eq!(produce_error(addr, "t", b), 2);
    });
}

/// A batch far under `message.max.bytes` that inflates to 256 MiB, to a compacted topic
/// (where the broker decompresses to check keys): refused, not inflated.
fn bomb(codec: Compression) {
    hostile(|addr| {
        let zeros = vec![0u8; 256 << 20];
        let b = batch::simple_batch(codec, 1_700_000_000_000, &[(Some(b"k"), Some(&zeros[..]))])
            .unwrap();
        drop(zeros);
        assert!(b.len() < 1 << 20, "{codec:?} bomb is {} bytes", b.len());
        assert_ne!(produce_error(addr, "c", b), 0);
    });
}

#[test]
fn zstd_bomb_is_refused() {
    bomb(Compression::Zstd);
}

#[test]
fn gzip_bomb_is_refused() {
    bomb(Compression::Gzip);
}

#[test]
fn four_kib_of_random_bytes_close_the_connection() {
    hostile(|addr| {
        let mut s = raw(addr);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = s.write_all(&bytes);
        assert!(closed(&mut s));
    });
}

#[test]
fn four_connections_flooding_garbage_for_seconds() {
    hostile(|addr| {
        let until = Instant::now() + Duration::from_secs(3);
        let floods: Vec<_> = (0..4u64)
            .map(|i| {
                let addr = addr.to_string();
                std::thread::spawn(move || {
                    let mut x = 0x1234_5678_9abc_def0u64 ^ i;
                    let mut connections = 0;
                    while Instant::now() < until {
                        let Ok(mut s) = TcpStream::connect(&addr) else {
                            continue;
                        };
                        connections += 1;
                        let garbage: Vec<u8> = (0..65536)
                            .map(|_| {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                x as u8
                            })
                            .collect();
                        while Instant::now() < until && s.write_all(&garbage).is_ok() {}
                    }
                    connections
                })
            })
            .collect();
        // Served throughout.
        while Instant::now() < until {
            let mut c = Client::connect(addr);
            c.send(&ApiVersionsRequest::default(), 3, 1);
            assert!(c.try_recv().is_some(), "not served during the flood");
            std::thread::sleep(Duration::from_millis(100));
        }
        for f in floods {
            assert!(f.join().unwrap() > 0);
        }
    });
}
