//! The real-client suite of `tests/clients.rs` with the broker coordinated through a real
//! ZooKeeper server and a real etcd member instead of the embedded store: each test starts its
//! own server on free loopback ports, a broker whose config names it (`backend = "zookeeper"` /
//! `"etcd"`, a root of its own), and runs confluent-kafka (a keyed round trip with acks=all and
//! compression, then a SIGTERM restart that must keep every record) and kcat -L against it.
//!
//! Needs Java with Debian's ZooKeeper jars, `/usr/bin/etcd`, `make deps` (kcat) and
//! `make venv` (`.venv`); without them the tests fail saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::etcd::EtcdServer;
use support::{
    assert_ok, confluent, confluent_roundtrip, json_u64, kcat, python, run, Broker, Coordination,
    ZooKeeper,
};

/// Records per round trip: enough for several batches per partition, seconds to run.
const RECORDS: u64 = 5_000;

/// Asserts the broker's log shows a session with the server at `coordination`'s endpoint:
/// the broker really is coordinated through it, not through a store of its own.
fn assert_coordinated_through(b: &Broker, coordination: &Coordination) {
    let (opened, endpoint) = match coordination {
        Coordination::ZooKeeper(e) => ("ZooKeeper session established", e),
        Coordination::Etcd(e) => ("etcd session opened", e),
        Coordination::Embedded => unreachable!("the backends tests use servers"),
    };
    let log = b.log();
    assert!(
        log.lines()
            .any(|l| l.contains(opened) && l.contains(endpoint.as_str())),
        "the broker log shows no \"{opened}\" with {endpoint}\n--- broker log (tail) ---\n{}",
        b.log_tail()
    );
}

/// confluent-kafka's round trip (acks=all, `codec`) and kcat -L listing the broker and the
/// topic with its 3 partitions.
fn round_trip_and_kcat(coordination: Coordination, codec: &str) {
    let t0 = Instant::now();
    let mut b = Broker::start_with(coordination.clone());
    eprintln!("{coordination:?}: broker serving after {:?}", t0.elapsed());
    assert_coordinated_through(&b, &coordination);
    let topic = format!("backend-{codec}");
    confluent_roundtrip(&b, &topic, RECORDS, "all", codec);

    let addr = b.addr();
    let o = run(
        Command::new(kcat()).args(["-L", "-b", &addr, "-t", &topic, "-m", "10"]),
        None,
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "kcat -L\n{}", o.describe());
    assert!(
        o.stdout
            .contains(&format!("broker 1 at 127.0.0.1:{}", b.port)),
        "kcat -L does not list broker 1 at {addr}\n{}",
        o.describe()
    );
    assert!(
        o.stdout
            .contains(&format!("topic \"{topic}\" with 3 partitions")),
        "kcat -L -t {topic}\n{}",
        o.describe()
    );
    for p in 0..3 {
        assert!(
            o.stdout
                .contains(&format!("partition {p}, leader 1, replicas: 1, isrs: 1")),
            "kcat -L: partition {p} is not led by broker 1 with ISR [1]\n{}",
            o.describe()
        );
    }
    b.stop();
    eprintln!(
        "{coordination:?}: round trip and kcat in {:?}",
        t0.elapsed()
    );
}

/// Produces with acks=all (lz4), then stops the broker with SIGTERM and starts it again on
/// the same config, data and coordination root, twice: every acknowledged record is read back
/// at its partition and offset, and nothing else.
fn restart_keeps_every_record(coordination: Coordination) {
    let t0 = Instant::now();
    let py = python(".venv");
    let mut b = Broker::start_with(coordination.clone());
    assert_coordinated_through(&b, &coordination);
    let addr = b.addr();
    let acked = b.dir.path().join("acked.jsonl");
    let acked_s = acked.to_str().expect("utf-8 path").to_string();
    let records = RECORDS.to_string();
    let t = Duration::from_secs(300);
    let o = confluent(
        &py,
        &[
            "--mode",
            "produce",
            "--bootstrap",
            &addr,
            "--topic",
            "restart",
            "--records",
            &records,
            "--acks",
            "all",
            "--compression",
            "lz4",
            "--acked-file",
            &acked_s,
            "--timeout",
            "120",
        ],
        t,
    );
    let line = assert_ok("produce before restart", &o);
    assert_eq!(json_u64(line, "acked"), Some(RECORDS), "{}", o.describe());
    for round in 1..=2 {
        let r0 = Instant::now();
        b.stop();
        b.spawn();
        eprintln!(
            "{coordination:?}: restart {round} serving after {:?}",
            r0.elapsed()
        );
        let o = confluent(
            &py,
            &[
                "--mode",
                "verify",
                "--bootstrap",
                &addr,
                "--topic",
                "restart",
                "--acked-file",
                &acked_s,
                "--exact",
                "--timeout",
                "120",
            ],
            t,
        );
        let line = assert_ok(&format!("verify after restart {round}"), &o);
        assert_eq!(json_u64(line, "records"), Some(RECORDS), "{}", o.describe());
    }
    b.stop();
    eprintln!("{coordination:?}: restart test in {:?}", t0.elapsed());
}

#[test]
fn zookeeper_confluent_round_trip_and_kcat() {
    let zk = ZooKeeper::start();
    round_trip_and_kcat(Coordination::ZooKeeper(zk.endpoint()), "zstd");
}

#[test]
fn zookeeper_restart_after_sigterm_keeps_every_record() {
    let zk = ZooKeeper::start();
    restart_keeps_every_record(Coordination::ZooKeeper(zk.endpoint()));
}

#[test]
fn etcd_confluent_round_trip_and_kcat() {
    let etcd = EtcdServer::start();
    round_trip_and_kcat(Coordination::Etcd(etcd.endpoint()), "snappy");
}

#[test]
fn etcd_restart_after_sigterm_keeps_every_record() {
    let etcd = EtcdServer::start();
    restart_keeps_every_record(Coordination::Etcd(etcd.endpoint()));
}
