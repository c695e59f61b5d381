//! A full disk under the real binary: the data directory is a small tmpfs mounted by the
//! test (skipped, with the reason printed, where this machine does not allow mounting).
//! Produce until the disk is full: the refused produce gets KAFKA_STORAGE_ERROR, the broker
//! keeps serving, every acknowledged record is there and nothing partial is visible, and
//! once space is freed writes resume without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, CreateTopicsResponse, ListOffsetsRequest,
    ProduceRequest,
};
use sluice::actors::log::batch;
use sluice::actors::log::compression::Compression;
use support::kafka::{name, Client};
use support::{Broker, Coordination};

const KAFKA_STORAGE_ERROR: i16 = 56;
const RECORDS_PER_BATCH: i64 = 4;

fn mount_tmpfs(at: &Path, bytes: u64) -> Result<(), String> {
    std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("size={bytes}"))
        .arg("tmpfs")
        .arg(at)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Unmounts on drop (after the broker is gone).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn produce(c: &mut Client, value_len: usize) -> i16 {
    let value = vec![b'x'; value_len];
    let kv: Vec<batch::KeyValue<'_>> =
        vec![(Some(b"k"), Some(&value[..])); RECORDS_PER_BATCH as usize];
    let records = batch::simple_batch(Compression::None, 1_700_000_000_000, &kv).unwrap();
    let r = c.call(
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("full"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(records)))])]),
        7,
    );
    r.responses[0].partition_responses[0].error_code
}

fn latest(c: &mut Client) -> i64 {
    let r = c.call(
        ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("full"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)])]),
        1,
    );
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{r:?}");
    p.offset
}

#[test]
fn a_full_disk_refuses_produces_keeps_acknowledged_records_and_recovers() {
    let mut refused_mount = None;
    let mut mounted = None;
    let mut b = Broker::start_prepared(
        Coordination::Embedded,
        &[("log.segment.bytes", "1048576")],
        |data| match mount_tmpfs(data, 24 << 20) {
            Ok(()) => mounted = Some(Unmount(data.to_path_buf())),
            Err(e) => refused_mount = Some(e),
        },
    );
    if let Some(reason) = refused_mount {
        println!("SKIPPED: cannot mount a tmpfs here ({reason}): the full-disk test needs the privilege to mount");
        return;
    }
    let data = b.dir.path().join("data");
    let mut c = Client::connect(&b.addr());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r: CreateTopicsResponse = c.call(
            CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name("full"))
                    .with_num_partitions(1)
                    .with_replication_factor(1)])
                .with_timeout_ms(10_000),
            4,
        );
        if r.topics[0].error_code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    while produce(&mut c, 10) != 0 {
        assert!(Instant::now() < deadline, "the topic never took a write");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut acked = RECORDS_PER_BATCH;
    // A filler leaves a few MiB; then produce 64 KiB batches until the disk refuses one.
    let filler = data.join("filler");
    let free = nix_free_bytes(&data);
    std::fs::write(&filler, vec![0u8; free.saturating_sub(6 << 20) as usize]).unwrap();
    let mut refused = None;
    for _ in 0..1000 {
        match produce(&mut c, 16 * 1024) {
            0 => acked += RECORDS_PER_BATCH,
            code => {
                refused = Some(code);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(KAFKA_STORAGE_ERROR),
        "the disk never filled, or the wrong error\n{}",
        b.log_tail()
    );
    // Still serving: nothing partial is counted, every acknowledged record is there.
    c.send(&ApiVersionsRequest::default(), 3, 99);
    assert!(c.try_recv().is_some());
    assert_eq!(latest(&mut c), acked);
    // Space comes back: writes resume, no restart.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(produce(&mut c, 16 * 1024), 0, "{}", b.log_tail());
    acked += RECORDS_PER_BATCH;
    assert_eq!(latest(&mut c), acked);
    // And a restart recovers exactly that.
    drop(c);
    b.stop();
    b.spawn();
    let mut c = Client::connect(&b.addr());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.call(
            ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name("full"))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
            1,
        );
        let p = &r.topics[0].partitions[0];
        if p.error_code == 0 {
            assert_eq!(p.offset, acked);
            break;
        }
        assert!(Instant::now() < deadline, "{r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.stop();
    drop(mounted);
}

/// Free bytes of the file system holding `path` (`df`).
fn nix_free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}
