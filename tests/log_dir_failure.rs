//! A failing data directory under the real binary: an I/O error that is not a full disk
//! (here: a partition directory removed under the running broker, so that the next segment
//! roll fails with ENOENT) takes the whole directory offline, as Kafka's
//! `LogDirFailureChannel` does — every partition in it answers KAFKA_STORAGE_ERROR, one
//! ERROR line names the directory and the failing file, the broker withdraws its
//! registration so that leadership can move, and the process keeps running and answering.
//! After a restart the partitions that were not damaged are served with all their records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, MetadataResponse};
use support::kafka::{name, ops, Client};
use support::{Broker, Coordination};

const KAFKA_STORAGE_ERROR: i16 = 56;
const RECORDS: usize = 5;

fn metadata(c: &mut Client, topic: &str) -> MetadataResponse {
    c.call(
        MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name(topic)))
        ])),
        9,
    )
}

#[test]
fn an_io_error_takes_the_data_directory_offline_without_stopping_the_broker() {
    let mut b = Broker::start_with_config(Coordination::Embedded, &[]);
    let mut c = Client::connect(&b.addr());
    // Small segments: the doomed partition rolls every few batches.
    ops::create_topic(&mut c, "doomed", 1, &[("segment.bytes", "1024")]);
    ops::create_topic(&mut c, "bystander", 1, &[]);
    for topic in ["doomed", "bystander"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while ops::produce(&mut c, topic, RECORDS, b"v") != 0 {
            assert!(Instant::now() < deadline, "cannot produce to {topic}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(ops::latest(&mut c, "bystander"), (0, RECORDS as i64));

    // The disk "fails" under the doomed partition: its directory goes away.
    let data = b.dir.path().join("data");
    std::fs::remove_dir_all(data.join("doomed-0")).unwrap();
    let value = vec![b'x'; 300];
    let mut code = 0;
    for _ in 0..100 {
        code = ops::produce(&mut c, "doomed", 1, &value);
        if code != 0 {
            break;
        }
    }
    assert_eq!(
        code,
        KAFKA_STORAGE_ERROR,
        "the failed append's answer\n{}",
        b.log_tail()
    );

    // The whole directory is offline: the untouched partition stops serving too.
    assert_eq!(
        ops::produce(&mut c, "bystander", 1, b"v"),
        KAFKA_STORAGE_ERROR
    );
    assert_eq!(ops::latest(&mut c, "bystander").0, KAFKA_STORAGE_ERROR);
    let log = b.log();
    let line = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("log directory is offline"))
        .unwrap_or_else(|| {
            panic!(
                "no ERROR line says the directory is offline:\n{}",
                b.log_tail()
            )
        });
    assert!(
        line.contains(&data.display().to_string()) && line.contains("doomed-0"),
        "the line names neither the directory nor the failing file: {line}"
    );

    // The broker withdrew its registration (leadership can move) and keeps answering.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = metadata(&mut c, "bystander");
        let p = &m.topics[0].partitions[0];
        if m.brokers.is_empty() && p.offline_replicas.iter().any(|b| b.0 == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broker is still registered: {m:?}\n{}",
            b.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.call(ApiVersionsRequest::default(), 3);
    assert!(b.is_running(), "the broker exited:\n{}", b.log_tail());

    // A stop writes no clean-shutdown marker into the failed directory (the next start
    // recovers every log) and says so with a non-zero status.
    drop(c);
    let status = b.terminate();
    assert!(
        !status.success(),
        "a broker whose data directory failed exited 0"
    );
    assert!(!data.join(".clean-shutdown").exists());

    // Repaired (the damaged partition starts empty: its files are gone), the broker serves
    // the undamaged partition with every acknowledged record.
    b.spawn();
    let mut c = Client::connect(&b.addr());
    let deadline = Instant::now() + Duration::from_secs(20);
    while ops::latest(&mut c, "bystander") != (0, RECORDS as i64) {
        assert!(
            Instant::now() < deadline,
            "bystander after the restart: {:?}\n{}",
            ops::latest(&mut c, "bystander"),
            b.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ops::produce(&mut c, "bystander", 1, b"v"), 0);
    assert_eq!(ops::latest(&mut c, "bystander"), (0, RECORDS as i64 + 1));
    b.stop();
}
