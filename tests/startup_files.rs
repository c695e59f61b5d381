//! Damaged partition files at broker start-up (the real binary): each case gets a defined
//! outcome — recovered, or that partition taken offline with an error naming the file —
//! while the broker starts and serves every other partition, and no wrong data is served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::kafka::{ops, Client};
use support::{Broker, Coordination};

const TOPICS: [&str; 4] = [
    "intact",
    "no-metadata",
    "garbage-metadata",
    "unreadable-segment",
];
const RECORDS: i64 = 10;

fn create(c: &mut Client, topic: &str) {
    ops::create_topic(c, topic, 1, &[]);
}

fn produce(c: &mut Client, topic: &str) -> i16 {
    ops::produce(c, topic, RECORDS as usize, b"v")
}

#[test]
fn damaged_partition_files_take_only_their_partition_offline() {
    let mut b = Broker::start_with_config(Coordination::Embedded, &[]);
    let mut c = Client::connect(&b.addr());
    for t in TOPICS {
        create(&mut c, t);
        let deadline = Instant::now() + Duration::from_secs(20);
        while produce(&mut c, t) != 0 {
            assert!(Instant::now() < deadline, "cannot produce to {t}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(c);
    b.stop();

    let data = b.dir.path().join("data");
    let dir = |t: &str| data.join(format!("{t}-0"));
    std::fs::remove_file(dir("no-metadata").join("partition.metadata")).unwrap();
    std::fs::write(
        dir("garbage-metadata").join("partition.metadata"),
        b"\x00\x01 this is not a partition.metadata file",
    )
    .unwrap();
    // A segment that cannot be read: its name now holds a directory.
    let segment = dir("unreadable-segment").join("00000000000000000000.log");
    std::fs::remove_file(&segment).unwrap();
    std::fs::create_dir(&segment).unwrap();

    b.spawn();
    let mut c = Client::connect(&b.addr());
    // The intact partition is served as before, and a missing partition.metadata is
    // recovered: rewritten from the metadata, data intact. (Replicas start one by one.)
    for topic in ["intact", "no-metadata"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while ops::latest(&mut c, topic) != (0, RECORDS) {
            assert!(
                Instant::now() < deadline,
                "{topic}: {:?}\n{}",
                ops::latest(&mut c, topic),
                b.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(dir("no-metadata").join("partition.metadata").exists());
    // Garbage and an unreadable segment: the partition is offline (never served with
    // wrong or missing data), with an error line naming the file; the broker keeps going.
    for (topic, file) in [
        ("garbage-metadata", "partition.metadata"),
        ("unreadable-segment", "00000000000000000000.log"),
    ] {
        let (code, _) = ops::latest(&mut c, topic);
        assert_ne!(code, 0, "{topic} is served: {}", b.log_tail());
        assert_ne!(produce(&mut c, topic), 0, "{topic} accepted a produce");
        let log = b.log();
        assert!(
            log.lines().any(|l| l.contains("ERROR")
                && l.contains(&format!("{topic}-0"))
                && l.contains(file)),
            "no error line names {topic}-0/{file}:\n{}",
            b.log_tail()
        );
    }
    // And the broker still takes writes elsewhere.
    assert_eq!(produce(&mut c, "intact"), 0);
    assert_eq!(ops::latest(&mut c, "intact"), (0, 2 * RECORDS));
    b.stop();
}
