//! The Sluice producer (`sluice::client`) against the real broker binary, read back by
//! confluent-kafka: contents, headers, timestamps and compression intact; the same partition
//! as librdkafka's murmur2 for every key; and each producer setting changing behaviour
//! observably (linger, buffer.memory, delivery.timeout.ms, idempotent retries across a
//! broker crash).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use sluice::client::producer::key_partition;
use sluice::client::{ClientError, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
use support::kafka::{ops, Client};
use support::{assert_ok, python, runtime, Broker, Coordination};

fn producer(b: &Broker, props: &[(&str, &str)]) -> Producer {
    let mut config = ProducerConfig::new(&b.addr());
    for (k, v) in props {
        config.set(k, v).unwrap();
    }
    Producer::new(config).unwrap()
}

/// Record `i` as `tests/clients/common.py` derives it (so its checker can verify it).
fn record(topic: &str, i: usize, keys: usize, value_size: usize, base_ts: i64) -> ProducerRecord {
    let head = format!("v-{i}-");
    let mut value = head.into_bytes();
    value.resize(value_size.max(value.len()), b'x');
    ProducerRecord::new(topic)
        .key(format!("k{}", i % keys))
        .value(value)
        .header("idx", Some(i.to_string().as_bytes()))
        .header("run", Some(topic.as_bytes()))
        .timestamp(base_ts + i as i64)
}

/// Writes the acked-file `confluent_roundtrip.py --mode verify` reads.
fn write_acked(
    path: &std::path::Path,
    base_ts: i64,
    keys: usize,
    value_size: usize,
    acked: &[(usize, RecordMetadata)],
) {
    let mut f = std::fs::File::create(path).unwrap();
    writeln!(
        f,
        r#"{{"base_ts": {base_ts}, "keys": {keys}, "value_size": {value_size}}}"#
    )
    .unwrap();
    for (i, m) in acked {
        writeln!(
            f,
            r#"{{"i": {i}, "p": {}, "o": {}}}"#,
            m.partition, m.offset
        )
        .unwrap();
    }
}

fn verify_with_confluent(b: &Broker, topic: &str, acked_file: &std::path::Path) {
    let out = support::confluent(
        &python(".venv"),
        &[
            "--bootstrap",
            &b.addr(),
            "--topic",
            topic,
            "--mode",
            "verify",
            "--acked-file",
            acked_file.to_str().unwrap(),
            "--exact",
            "--no-create",
        ],
        Duration::from_secs(120),
    );
    assert_ok(&format!("confluent verify of {topic}"), &out);
}

#[test]
fn records_from_the_sluice_producer_are_read_intact_by_confluent_kafka() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut c = Client::connect(&b.addr());
    let rt = runtime();
    let (records, keys, value_size) = (600, 37, 150);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("from-sluice-{codec}");
        ops::create_topic(&mut c, &topic, 3, &[]);
        let p = rt
            .block_on(async { producer(&b, &[("compression.type", codec), ("linger.ms", "10")]) });
        let base_ts = 1_700_000_000_000;
        let acked: Vec<(usize, RecordMetadata)> = rt.block_on(async {
            let mut futures = Vec::new();
            for i in 0..records {
                futures.push((
                    i,
                    p.send(record(&topic, i, keys, value_size, base_ts))
                        .await
                        .unwrap(),
                ));
            }
            let mut acked = Vec::new();
            for (i, f) in futures {
                acked.push((i, f.await.unwrap()));
            }
            p.close(Duration::from_secs(10)).await;
            acked
        });
        // Same key, same partition; offsets as the broker assigned them.
        for (i, m) in &acked {
            assert_eq!(
                m.partition,
                key_partition(format!("k{}", i % keys).as_bytes(), 3)
            );
        }
        let file = b.dir.path().join(format!("acked-{codec}.jsonl"));
        write_acked(&file, base_ts, keys, value_size, &acked);
        verify_with_confluent(&b, &topic, &file);
    }
}

/// A deterministic stream of keys of 0 to 40 bytes (xorshift64*).
fn random_keys(n: usize) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..n)
        .map(|_| {
            let len = (next() % 41) as usize;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

#[test]
fn keyed_partitions_match_confluent_kafka_murmur2_random_for_10000_keys() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut c = Client::connect(&b.addr());
    ops::create_topic(&mut c, "keys", 7, &[]);
    // Empty keys are left out: librdkafka treats an empty key as no key (random partition).
    let keys: Vec<Vec<u8>> = random_keys(10_000)
        .into_iter()
        .filter(|k| !k.is_empty())
        .collect();
    let file = b.dir.path().join("keys.txt");
    let hex: String = keys
        .iter()
        .map(|k| k.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
        .collect();
    std::fs::write(&file, hex).unwrap();
    let out = support::run(
        std::process::Command::new(python(".venv"))
            .arg(support::script("confluent_partitions.py"))
            .args(["--bootstrap", &b.addr(), "--topic", "keys", "--keys-file"])
            .arg(&file),
        None,
        Duration::from_secs(120),
    );
    let line = assert_ok("confluent_partitions.py", &out);
    let list = line
        .split("\"partitions\": [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .expect("a partitions list");
    let theirs: Vec<i32> = list.split(',').map(|p| p.trim().parse().unwrap()).collect();
    assert_eq!(theirs.len(), keys.len());
    let ours: Vec<i32> = keys.iter().map(|k| key_partition(k, 7)).collect();
    let differ: Vec<usize> = (0..keys.len()).filter(|&i| ours[i] != theirs[i]).collect();
    assert!(
        differ.is_empty(),
        "{} of {} keys differ, first {:?}",
        differ.len(),
        keys.len(),
        &differ[..differ.len().min(5)]
    );
    // And the Sluice producer sends them there.
    let rt = runtime();
    rt.block_on(async {
        let p = producer(&b, &[]);
        for (k, expected) in keys.iter().zip(&ours).take(300) {
            let m = p
                .send(ProducerRecord::new("keys").key(k.clone()).value("v"))
                .await
                .unwrap()
                .await
                .unwrap();
            assert_eq!(m.partition, *expected);
        }
    });
}

/// Produce requests for `n` records sent 1 ms apart (deliveries awaited at the end).
fn requests_for(
    b: &Broker,
    rt: &tokio::runtime::Runtime,
    topic: &str,
    linger: &str,
    n: usize,
) -> u64 {
    rt.block_on(async {
        let p = producer(b, &[("linger.ms", linger), ("batch.size", "1000000")]);
        // Metadata first, so that the first record does not wait for it.
        p.send(ProducerRecord::new(topic).value("warm-up"))
            .await
            .unwrap()
            .await
            .unwrap();
        let before = p
            .metrics()
            .produce_requests
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut futures = Vec::new();
        for i in 0..n {
            futures.push(
                p.send(ProducerRecord::new(topic).value(format!("r{i}")))
                    .await
                    .unwrap(),
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for f in futures {
            f.await.unwrap();
        }
        p.metrics()
            .produce_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            - before
    })
}

#[test]
fn linger_batches_records_into_fewer_produce_requests() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut c = Client::connect(&b.addr());
    ops::create_topic(&mut c, "linger", 1, &[]);
    let rt = runtime();
    let eager = requests_for(&b, &rt, "linger", "0", 100);
    let lingering = requests_for(&b, &rt, "linger", "1000", 100);
    assert!(
        lingering <= 2,
        "linger.ms=1000 sent {lingering} requests for 100 records"
    );
    assert!(
        eager > lingering * 5,
        "linger.ms=0 sent {eager} requests, linger.ms=1000 {lingering}"
    );
}

#[test]
fn a_full_buffer_blocks_send_then_fails_after_max_block_ms() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut c = Client::connect(&b.addr());
    ops::create_topic(&mut c, "buffer", 1, &[]);
    let rt = runtime();
    rt.block_on(async {
        // Nothing is sent for a minute (linger), so the buffer only fills.
        let p = producer(
            &b,
            &[
                ("buffer.memory", "5000"),
                ("max.block.ms", "300"),
                ("linger.ms", "60000"),
                ("batch.size", "1000000"),
            ],
        );
        let value = vec![b'x'; 1000];
        let mut queued = Vec::new();
        let failure = loop {
            match p
                .send(ProducerRecord::new("buffer").value(value.clone()))
                .await
            {
                Ok(f) => queued.push(f),
                Err(e) => break e,
            }
            assert!(
                queued.len() < 10,
                "buffer.memory=5000 took {} records of 1000 bytes",
                queued.len()
            );
        };
        assert!(matches!(failure, ClientError::Timeout(..)), "{failure:?}");
        assert!(failure.to_string().contains("buffer.memory"), "{failure}");
        assert_eq!(queued.len(), 4, "records of ~1032 bytes in 5000 bytes");
        // Flushing sends them: they were queued, not lost, and room is back.
        p.flush().await;
        for f in queued {
            f.await.unwrap();
        }
        p.send(ProducerRecord::new("buffer").value(value))
            .await
            .unwrap();
        p.close(Duration::from_secs(10)).await;
    });
}

#[test]
fn records_expire_after_delivery_timeout_when_the_broker_is_down() {
    let mut b = Broker::start_with(Coordination::Embedded);
    let mut c = Client::connect(&b.addr());
    ops::create_topic(&mut c, "expire", 1, &[]);
    drop(c);
    let rt = runtime();
    let p = rt.block_on(async {
        let p = producer(
            &b,
            &[
                ("delivery.timeout.ms", "1500"),
                ("request.timeout.ms", "1000"),
                ("linger.ms", "0"),
            ],
        );
        p.send(ProducerRecord::new("expire").value("first"))
            .await
            .unwrap()
            .await
            .unwrap();
        p
    });
    b.kill9();
    let outcome = rt.block_on(async {
        let f = p
            .send(ProducerRecord::new("expire").value("second"))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("the delivery never resolved")
    });
    match outcome {
        Err(ClientError::Timeout(..)) => {}
        other => panic!("expected a delivery timeout, got {other:?}"),
    }
    assert_eq!(
        p.metrics()
            .records_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// A TCP proxy in front of the broker that can lose responses: while `lose` is set, the
/// next bytes the broker sends are dropped and that connection is cut (the client never
/// hears the answer to a request the broker carried out).
struct LossyProxy {
    lose: Arc<std::sync::atomic::AtomicBool>,
    lost: Arc<std::sync::atomic::AtomicUsize>,
}

impl LossyProxy {
    fn start(port: u16, broker: Arc<std::sync::Mutex<String>>) -> LossyProxy {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let lose = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicUsize::new(0));
        let (l, n) = (Arc::clone(&lose), Arc::clone(&lost));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let target = broker.lock().unwrap().clone();
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue; // the broker is down: the client sees the connection close
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Both);
                });
                let (l, n) = (Arc::clone(&l), Arc::clone(&n));
                std::thread::spawn(move || {
                    let (mut s_read, mut c_write) = (server, client);
                    let mut buf = [0u8; 65536];
                    while let Ok(read @ 1..) = std::io::Read::read(&mut s_read, &mut buf) {
                        if l.swap(false, std::sync::atomic::Ordering::AcqRel) {
                            n.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                            break; // lost, and the connection goes
                        }
                        if c_write.write_all(&buf[..read]).is_err() {
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                    let _ = s_read.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        LossyProxy { lose, lost }
    }
}

/// A Produce whose response is lost, then a broker crash and restart before the retry: the
/// idempotent producer's retry is recognised by the restarted broker (producer state rebuilt
/// from the log) and the record is written once. (With enable.idempotence=false the same
/// run writes it twice — checked by hand when this test was written.)
#[test]
fn idempotent_retries_after_a_lost_response_and_a_broker_crash_write_every_record_once() {
    let proxy_port = support::free_port();
    let mut b =
        Broker::start_advertising(Coordination::Embedded, &format!("127.0.0.1:{proxy_port}"));
    let target = Arc::new(std::sync::Mutex::new(b.addr()));
    let proxy = LossyProxy::start(proxy_port, Arc::clone(&target));
    let mut c = Client::connect(&b.addr());
    ops::create_topic(&mut c, "exactly-once", 1, &[]);
    drop(c);
    let rt = runtime();
    let (keys, value_size, base_ts) = (1, 50, 1_700_000_000_000);
    let proxied = format!("127.0.0.1:{proxy_port}");
    let p = rt.block_on(async {
        let mut config = ProducerConfig::new(&proxied);
        for (k, v) in [
            ("linger.ms", "0"),
            ("retry.backoff.ms", "100"),
            ("request.timeout.ms", "5000"),
        ] {
            config.set(k, v).unwrap();
        }
        Producer::new(config).unwrap()
    });
    let mut acked = Vec::new();
    // Record 0 goes through normally.
    acked.push((
        0,
        rt.block_on(async {
            p.send(record("exactly-once", 0, keys, value_size, base_ts))
                .await
                .unwrap()
                .await
                .unwrap()
        }),
    ));
    // Record 1: the broker writes it, its answer is lost.
    proxy.lose.store(true, std::sync::atomic::Ordering::Release);
    #[allow(clippy::async_yields_async)] // the delivery is awaited after the crash
    let delivery = rt.block_on(async {
        p.send(record("exactly-once", 1, keys, value_size, base_ts))
            .await
            .unwrap()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while proxy.lost.load(std::sync::atomic::Ordering::Acquire) == 0 {
        assert!(std::time::Instant::now() < deadline, "no response was lost");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The broker crashes before the retry comes, and restarts on the same port and data.
    b.kill9();
    b.spawn();
    acked.push((1, rt.block_on(delivery).unwrap()));
    assert!(
        p.metrics()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "no retry happened"
    );
    acked.push((
        2,
        rt.block_on(async {
            p.send(record("exactly-once", 2, keys, value_size, base_ts))
                .await
                .unwrap()
                .await
                .unwrap()
        }),
    ));
    let file = b.dir.path().join("acked.jsonl");
    write_acked(&file, base_ts, keys, value_size, &acked);
    // Exactly the three records, once each, at the offsets their acks named.
    verify_with_confluent(&b, "exactly-once", &file);
}
