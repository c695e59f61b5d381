//! The replica layer through its messages: `PartitionReplica` (produce, fetch, acks=all,
//! idempotence, offsets, retention, compaction, flushes) and `ReplicaManager` (start,
//! stop, delete, checkpoints, clean shutdown and restart, placement on arbiters).
//!
//! Nothing here sleeps to synchronise: waits are polls with a deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr};
use sluice_actors::log::batch::{self, BatchHeader, BatchSpec};
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::log::compression::Compression;
use sluice_actors::log::config::{CleanupPolicy, LogConfig};
use sluice_actors::log::index::TimestampOffset;
use sluice_actors::log::log::LogOpenOptions;
use sluice_actors::log::{Log, LogError};
use sluice_actors::replica::messages::*;
use sluice_actors::replica::{
    arbiter_index, LogDirHealth, PartitionReplica, ReplicaConfig, ReplicaInit, ReplicaManager,
    ReplicaManagerConfig,
};
use sluice_actors::Error;

const BROKER: i32 = 0;
const FOLLOWER: i32 = 1;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn orders(partition: i32) -> TopicPartition {
    TopicPartition::new("orders", partition)
}

/// A plain (non-idempotent) batch: one record per value, key "k", timestamps `ts + i`.
fn batch_at(ts: i64, values: &[&str]) -> Vec<u8> {
    let pairs: Vec<_> = values
        .iter()
        .map(|v| (Some(b"k".as_slice()), Some(v.as_bytes())))
        .collect();
    batch::simple_batch(Compression::None, ts, &pairs).unwrap()
}

fn batch_of(values: &[&str]) -> Vec<u8> {
    batch_at(now(), values)
}

/// A batch from idempotent producer `pid` with `epoch`, starting at sequence `seq`.
fn idempotent(pid: i64, epoch: i16, seq: i32, records: i32) -> Vec<u8> {
    let mut encoded = Vec::new();
    for i in 0..records {
        batch::encode_record(&mut encoded, i, 0, Some(b"k"), Some(b"v"));
    }
    let ts = now();
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: Compression::None.id(),
        last_offset_delta: records - 1,
        base_timestamp: ts,
        max_timestamp: ts,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
    };
    batch::build_batch(&spec, &encoded, records).unwrap()
}

/// (base offset, last offset) of every whole batch in `bytes`.
fn batch_offsets(bytes: &[u8]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + batch::BATCH_HEADER_SIZE <= bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).unwrap();
        if pos + h.size() > bytes.len() {
            break;
        }
        out.push((h.base_offset, h.last_offset()));
        pos += h.size();
    }
    out
}

fn replica_config() -> ReplicaConfig {
    ReplicaConfig {
        broker_id: BROKER,
        ..ReplicaConfig::default()
    }
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 200,
        segment_index_bytes: 4096,
        ..LogConfig::default()
    }
}

/// A leader replica of `orders-0` with ISR [this broker], on the test's arbiter.
fn start_replica(dir: &Path, config: LogConfig, replica: ReplicaConfig) -> Addr<PartitionReplica> {
    let log = Log::open(
        dir,
        config,
        LogOpenOptions {
            clean_shutdown: true,
            now_ms: now(),
            ..LogOpenOptions::default()
        },
    )
    .unwrap();
    PartitionReplica::new(ReplicaInit {
        tp: orders(0),
        topic_id: "id-1".into(),
        log,
        leader_epoch: 0,
        is_leader: true,
        isr: vec![BROKER],
        high_watermark: 0,
        cleaner_first_dirty_offset: 0,
        config: replica,
        log_dir: LogDirHealth::new(dir),
    })
    .unwrap()
    .start()
}

fn produce_msg(records: Vec<u8>, acks: i16) -> Produce {
    Produce {
        records: records.into(),
        acks,
        timeout_ms: 10_000,
        now_ms: now(),
    }
}

async fn produce(
    addr: &Addr<PartitionReplica>,
    records: Vec<u8>,
    acks: i16,
) -> Result<ProduceResult, Error> {
    addr.send(produce_msg(records, acks)).await.unwrap()
}

async fn status(addr: &Addr<PartitionReplica>) -> ReplicaStatus {
    addr.send(Status).await.unwrap().unwrap()
}

async fn fetch(addr: &Addr<PartitionReplica>, offset: i64) -> Result<FetchResult, Error> {
    addr.send(Fetch {
        offset,
        max_bytes: 1 << 20,
        min_one_batch: true,
        isolation_level: READ_UNCOMMITTED,
        now_ms: now(),
    })
    .await
    .unwrap()
}

async fn list_offsets(addr: &Addr<PartitionReplica>, timestamp: i64) -> Option<TimestampOffset> {
    addr.send(ListOffsets {
        timestamp,
        isolation_level: READ_UNCOMMITTED,
    })
    .await
    .unwrap()
    .unwrap()
}

/// Polls `check` every few milliseconds until it holds; fails after 10 s.
async fn poll_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn is_out_of_range(e: &Error) -> bool {
    matches!(e, Error::Log(LogError::OffsetOutOfRange { .. }))
}

// ---------------------------------------------------------------------------------------
// PartitionReplica
// ---------------------------------------------------------------------------------------

#[actix::test]
async fn produce_fetch_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), LogConfig::default(), replica_config());

    let first = produce(&addr, batch_of(&["a", "b"]), 1).await.unwrap();
    assert_eq!(first.base_offset, 0);
    assert_eq!(first.log_append_time, -1);
    let second = produce(&addr, batch_of(&["c"]), 1).await.unwrap();
    assert_eq!(second.base_offset, 2);

    let s = status(&addr).await;
    assert_eq!(
        (s.log_end_offset, s.high_watermark),
        (3, 3),
        "ISR of one: HW = LEO"
    );

    let all = fetch(&addr, 0).await.unwrap();
    assert_eq!(all.high_watermark, 3);
    assert_eq!(all.last_stable_offset, 3);
    assert_eq!(all.log_start_offset, 0);
    assert_eq!(all.first_batch_offset, Some(0));
    let bytes = all.records.expect("records").read_to_vec().unwrap();
    assert_eq!(batch_offsets(&bytes), vec![(0, 1), (2, 2)]);

    let tail = fetch(&addr, 2).await.unwrap();
    assert_eq!(tail.first_batch_offset, Some(2));
    let at_end = fetch(&addr, 3).await.unwrap();
    assert!(at_end.records.is_none());
    assert!(is_out_of_range(&fetch(&addr, 4).await.unwrap_err()));

    let garbage = produce(&addr, vec![1, 2, 3], 1).await.unwrap_err();
    assert!(
        matches!(garbage, Error::Log(LogError::CorruptBatch(_))),
        "{garbage:?}"
    );
    assert!(matches!(
        produce(&addr, batch_of(&["x"]), 2).await.unwrap_err(),
        Error::InvalidRequest(_)
    ));
}

#[actix::test]
async fn acks_all_below_min_insync_replicas_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_insync_replicas: 2,
        ..LogConfig::default()
    };
    let addr = start_replica(dir.path(), config, replica_config());

    let err = produce(&addr, batch_of(&["a"]), -1).await.unwrap_err();
    assert!(
        matches!(err, Error::NotEnoughReplicas { isr: 1, min: 2 }),
        "{err:?}"
    );
    assert_eq!(status(&addr).await.log_end_offset, 0, "nothing appended");

    // acks=1 does not care about min.insync.replicas.
    assert_eq!(
        produce(&addr, batch_of(&["a"]), 1)
            .await
            .unwrap()
            .base_offset,
        0
    );
}

#[actix::test]
async fn a_follower_refuses_client_requests_and_fails_waiting_produces() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), LogConfig::default(), replica_config());
    produce(&addr, batch_of(&["a"]), 1).await.unwrap();

    // An acks=all produce waits (the follower's offset is unknown) ...
    addr.send(BecomeLeader {
        leader_epoch: 1,
        isr: vec![BROKER, FOLLOWER],
    })
    .await
    .unwrap()
    .unwrap();
    let waiting = addr.send(produce_msg(batch_of(&["b"]), -1));
    // ... until leadership moves away.
    addr.send(BecomeFollower {
        leader_epoch: 2,
        leader_id: FOLLOWER,
    })
    .await
    .unwrap()
    .unwrap();
    let err = waiting.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::NotLeaderOrFollower(_)), "{err:?}");

    let not_leader = |e: Error| assert!(matches!(e, Error::NotLeaderOrFollower(_)), "{e:?}");
    not_leader(produce(&addr, batch_of(&["c"]), 1).await.unwrap_err());
    not_leader(fetch(&addr, 0).await.unwrap_err());
    not_leader(
        addr.send(ListOffsets {
            timestamp: LATEST_TIMESTAMP,
            isolation_level: READ_UNCOMMITTED,
        })
        .await
        .unwrap()
        .unwrap_err(),
    );
    not_leader(
        addr.send(DeleteRecords { offset: 0 })
            .await
            .unwrap()
            .unwrap_err(),
    );
    not_leader(
        addr.send(OffsetForLeaderEpoch { leader_epoch: 0 })
            .await
            .unwrap()
            .unwrap_err(),
    );
    // A stale epoch is refused.
    assert!(addr
        .send(BecomeLeader {
            leader_epoch: 1,
            isr: vec![BROKER],
        })
        .await
        .unwrap()
        .is_err());
}

#[actix::test]
async fn idempotent_retries_gaps_and_stale_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), LogConfig::default(), replica_config());
    let pid = 4242;

    assert_eq!(
        produce(&addr, idempotent(pid, 0, 0, 2), 1)
            .await
            .unwrap()
            .base_offset,
        0
    );
    assert_eq!(
        produce(&addr, idempotent(pid, 0, 2, 1), 1)
            .await
            .unwrap()
            .base_offset,
        2
    );
    assert_eq!(status(&addr).await.log_end_offset, 3);

    // A retry of the first batch: original offsets, nothing appended.
    let retry = produce(&addr, idempotent(pid, 0, 0, 2), -1).await.unwrap();
    assert_eq!(retry.base_offset, 0);
    assert_eq!(status(&addr).await.log_end_offset, 3);

    // A gap.
    let err = produce(&addr, idempotent(pid, 0, 5, 1), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfOrderSequence {
                producer_id: 4242,
                expected: 3,
                got: 5
            }
        ),
        "{err:?}"
    );
    // A new epoch must start at 0 ...
    let err = produce(&addr, idempotent(pid, 1, 3, 1), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OutOfOrderSequence { expected: 0, .. }),
        "{err:?}"
    );
    assert_eq!(
        produce(&addr, idempotent(pid, 1, 0, 1), 1)
            .await
            .unwrap()
            .base_offset,
        3
    );
    // ... and fences the old one.
    let err = produce(&addr, idempotent(pid, 0, 3, 1), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidProducerEpoch {
                epoch: 0,
                current: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // An unknown producer may start anywhere (Kafka 3.x, KIP-360).
    assert_eq!(
        produce(&addr, idempotent(7, 0, 99, 1), 1)
            .await
            .unwrap()
            .base_offset,
        4
    );
    let s = status(&addr).await;
    assert_eq!((s.log_end_offset, s.producer_count), (5, 2));
}

#[actix::test]
async fn acks_all_waits_for_the_high_watermark_and_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        min_insync_replicas: 2,
        ..LogConfig::default()
    };
    let addr = start_replica(dir.path(), config, replica_config());
    addr.send(BecomeLeader {
        leader_epoch: 1,
        isr: vec![BROKER, FOLLOWER],
    })
    .await
    .unwrap()
    .unwrap();
    let mut hw = addr.send(SubscribeHighWatermark).await.unwrap().unwrap();
    assert_eq!(*hw.borrow(), 0);

    let waiting = addr.send(produce_msg(batch_of(&["a", "b"]), -1));
    let s = status(&addr).await;
    assert_eq!(
        (s.log_end_offset, s.high_watermark, s.waiting_produces),
        (2, 0, 1)
    );
    assert!(
        !hw.has_changed().unwrap(),
        "an append alone does not move the HW"
    );
    // Consumers see nothing above the high watermark.
    assert!(fetch(&addr, 0).await.unwrap().records.is_none());
    assert_eq!(
        list_offsets(&addr, LATEST_TIMESTAMP).await.unwrap().offset,
        0
    );

    // The follower catches up part way: not enough for the batch.
    let moved = addr
        .send(UpdateFollowerOffset {
            replica_id: FOLLOWER,
            log_end_offset: 1,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved, 1);
    tokio::time::timeout(Duration::from_secs(5), hw.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*hw.borrow_and_update(), 1);
    assert_eq!(status(&addr).await.waiting_produces, 1);

    // All the way: the produce completes.
    addr.send(UpdateFollowerOffset {
        replica_id: FOLLOWER,
        log_end_offset: 2,
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().base_offset, 0);
    assert_eq!(*hw.borrow_and_update(), 2);

    // Without the follower, a produce times out (it was appended all the same).
    let err = addr
        .send(Produce {
            timeout_ms: 30,
            ..produce_msg(batch_of(&["c"]), -1)
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert_eq!(status(&addr).await.log_end_offset, 3);
}

#[actix::test]
async fn high_watermark_subscription_fires_on_append_with_one_replica() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), LogConfig::default(), replica_config());
    let mut hw = addr.send(SubscribeHighWatermark).await.unwrap().unwrap();
    produce(&addr, batch_of(&["a", "b", "c"]), 1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), hw.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*hw.borrow(), 3);
}

#[actix::test]
async fn list_offsets_earliest_latest_max_and_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), LogConfig::default(), replica_config());
    assert_eq!(list_offsets(&addr, MAX_TIMESTAMP).await, None, "empty log");
    for ts in [1_000, 3_000, 2_000] {
        produce(&addr, batch_at(ts, &["v"]), 1).await.unwrap();
    }
    let at = |timestamp, offset| Some(TimestampOffset { timestamp, offset });
    assert_eq!(list_offsets(&addr, EARLIEST_TIMESTAMP).await, at(-1, 0));
    assert_eq!(list_offsets(&addr, LATEST_TIMESTAMP).await, at(-1, 3));
    assert_eq!(list_offsets(&addr, MAX_TIMESTAMP).await, at(3_000, 1));
    assert_eq!(list_offsets(&addr, 500).await, at(1_000, 0));
    assert_eq!(list_offsets(&addr, 1_500).await, at(3_000, 1));
    assert_eq!(list_offsets(&addr, 3_001).await, None);
    let committed = addr
        .send(ListOffsets {
            timestamp: LATEST_TIMESTAMP,
            isolation_level: READ_COMMITTED,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        committed,
        at(-1, 3),
        "the LSO is the HW without transactions"
    );
    assert!(addr
        .send(ListOffsets {
            timestamp: -4,
            isolation_level: READ_UNCOMMITTED,
        })
        .await
        .unwrap()
        .is_err());
}

#[actix::test]
async fn delete_records_moves_the_log_start_offset() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), LogConfig::default(), replica_config());
    produce(&addr, batch_of(&["a", "b", "c", "d", "e"]), 1)
        .await
        .unwrap();

    assert_eq!(
        addr.send(DeleteRecords { offset: 3 })
            .await
            .unwrap()
            .unwrap(),
        3
    );
    assert_eq!(status(&addr).await.log_start_offset, 3);
    assert!(is_out_of_range(&fetch(&addr, 0).await.unwrap_err()));
    assert_eq!(
        list_offsets(&addr, EARLIEST_TIMESTAMP)
            .await
            .unwrap()
            .offset,
        3
    );
    let err = addr
        .send(DeleteRecords { offset: 6 })
        .await
        .unwrap()
        .unwrap_err();
    assert!(is_out_of_range(&err), "{err:?}");
    assert_eq!(
        addr.send(DeleteRecords {
            offset: HIGH_WATERMARK_OFFSET
        })
        .await
        .unwrap()
        .unwrap(),
        5
    );

    // Compacted topics keep their records.
    addr.send(UpdateConfig {
        config: LogConfig {
            cleanup_policy: CleanupPolicy::COMPACT,
            ..LogConfig::default()
        },
    })
    .await
    .unwrap()
    .unwrap();
    let err = addr
        .send(DeleteRecords { offset: 5 })
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::PolicyViolation(_)), "{err:?}");
}

#[actix::test]
async fn offset_for_leader_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), LogConfig::default(), replica_config());
    produce(&addr, batch_of(&["a", "b"]), 1).await.unwrap();
    addr.send(BecomeLeader {
        leader_epoch: 3,
        isr: vec![BROKER],
    })
    .await
    .unwrap()
    .unwrap();
    produce(&addr, batch_of(&["c"]), 1).await.unwrap();
    let ask = |leader_epoch| addr.send(OffsetForLeaderEpoch { leader_epoch });
    let end = |leader_epoch, end_offset| EpochEndOffset {
        leader_epoch,
        end_offset,
    };
    assert_eq!(ask(0).await.unwrap().unwrap(), end(0, 2));
    assert_eq!(ask(2).await.unwrap().unwrap(), end(0, 2));
    assert_eq!(ask(3).await.unwrap().unwrap(), end(3, 3));
}

#[actix::test]
async fn retention_runs_on_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 60_000,
        ..small_segments()
    };
    let replica = ReplicaConfig {
        retention_check_interval_ms: 10,
        ..replica_config()
    };
    let addr = start_replica(dir.path(), config, replica);
    // Timestamps from 1970: every closed segment is past retention.
    let mut appended = 0;
    for i in 0..8 {
        let batch = batch_at(1_000 + i, &["some value"]);
        appended += batch.len() as u64;
        produce(&addr, batch, 1).await.unwrap();
    }
    assert!(
        appended > 3 * small_segments().segment_bytes,
        "several segments were rolled"
    );
    poll_until("retention to delete the old segments", || async {
        let s = status(&addr).await;
        s.segment_count == 1 && s.log_start_offset > 0
    })
    .await;
    let s = status(&addr).await;
    assert_eq!(s.log_end_offset, 8);
    assert!(is_out_of_range(&fetch(&addr, 0).await.unwrap_err()));
    assert!(fetch(&addr, s.log_start_offset)
        .await
        .unwrap()
        .records
        .is_some());
}

#[actix::test]
async fn segment_rolls_and_flush_messages_flush_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let addr = start_replica(dir.path(), small_segments(), replica_config());
    for _ in 0..4 {
        produce(&addr, batch_of(&["some value"]), 1).await.unwrap();
    }
    assert!(status(&addr).await.segment_count > 1);
    poll_until("a roll to flush the log", || async {
        status(&addr).await.recovery_point > 0
    })
    .await;

    // flush.messages=1: the answer comes after the fsync.
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: 1,
        ..LogConfig::default()
    };
    let addr = start_replica(dir.path(), config, replica_config());
    for i in 1..=3 {
        produce(&addr, batch_of(&["v"]), 1).await.unwrap();
        assert_eq!(status(&addr).await.recovery_point, i);
    }
}

#[actix::test]
async fn compaction_runs_on_its_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        ..small_segments()
    };
    let replica = ReplicaConfig {
        cleaner_backoff_ms: 10,
        ..replica_config()
    };
    let addr = start_replica(dir.path(), config, replica);
    let mut appended = 0;
    for _ in 0..10 {
        let batch = batch_of(&["same key, newer value"]);
        appended += batch.len() as u64;
        produce(&addr, batch, 1).await.unwrap();
    }
    poll_until("the cleaner to pass", || async {
        status(&addr).await.cleaner_first_dirty_offset > 0
    })
    .await;
    let after = status(&addr).await;
    assert!(
        after.size < appended,
        "{appended} bytes appended: {after:?}"
    );
    assert_eq!(after.log_end_offset, 10);
    // The latest value of the key is still there.
    let last = fetch(&addr, 9).await.unwrap();
    assert_eq!(last.first_batch_offset, Some(9));
}

// ---------------------------------------------------------------------------------------
// Producer-state snapshots
// ---------------------------------------------------------------------------------------

/// Offsets of the files in `dir` named `<20 digits><suffix>`, ascending.
fn offset_files(dir: &Path, suffix: &str) -> Vec<i64> {
    let mut out: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(suffix)?;
            (stem.len() == 20).then(|| stem.parse().unwrap())
        })
        .collect();
    out.sort_unstable();
    out
}

const SNAPSHOT_PID: i64 = 77;

/// Produces one-record batches of [`SNAPSHOT_PID`] (sequence = offset) until the log has
/// four segments, waits for the roll's snapshot, and shuts the replica down. Returns the
/// active segment's base and the log end offset (the base + 1).
async fn produce_rolls_and_shut_down(dir: &Path) -> (i64, i64) {
    let addr = start_replica(dir, small_segments(), replica_config());
    let mut seq = 0;
    while status(&addr).await.segment_count < 4 {
        let r = produce(&addr, idempotent(SNAPSHOT_PID, 0, seq, 1), 1)
            .await
            .unwrap();
        assert_eq!(r.base_offset, seq as i64);
        seq += 1;
    }
    let base = *offset_files(dir, ".log").last().unwrap();
    assert_eq!(base, seq as i64 - 1, "the last batch rolled the log");
    poll_until("the roll's snapshot", || async {
        offset_files(dir, ".snapshot").contains(&base)
    })
    .await;
    let closed = addr.send(Shutdown).await.unwrap().unwrap();
    assert_eq!(closed.offsets.recovery_point, base + 1);
    assert_eq!(
        offset_files(dir, ".snapshot"),
        vec![base, base + 1],
        "the roll's and the shutdown's snapshots, older ones pruned"
    );
    (base, base + 1)
}

/// Whether a retry of the batch at `offset` (sequence = offset) is answered with it.
async fn retry_recognised(addr: &Addr<PartitionReplica>, offset: i64) -> bool {
    let leo = status(addr).await.log_end_offset;
    match produce(addr, idempotent(SNAPSHOT_PID, 0, offset as i32, 1), 1).await {
        Ok(r) => r.base_offset == offset && status(addr).await.log_end_offset == leo,
        Err(_) => false,
    }
}

#[actix::test]
async fn producer_state_loads_from_a_snapshot_and_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (base, leo) = produce_rolls_and_shut_down(dir.path()).await;
    // Keep the roll's snapshot only, and delete every segment below it: what the state
    // knows of earlier batches can only come from the snapshot, and the batch after it
    // only from replaying the active segment.
    std::fs::remove_file(dir.path().join(format!("{leo:020}.snapshot"))).unwrap();
    for old in offset_files(dir.path(), ".log")
        .into_iter()
        .filter(|b| *b < base)
    {
        for suffix in [".log", ".index", ".timeindex"] {
            let _ = std::fs::remove_file(dir.path().join(format!("{old:020}{suffix}")));
        }
    }
    let addr = start_replica(dir.path(), small_segments(), replica_config());
    let s = status(&addr).await;
    assert_eq!((s.log_start_offset, s.log_end_offset), (base, leo));
    assert_eq!(s.producer_count, 1);
    for offset in [base - 2, base - 1, base] {
        assert!(retry_recognised(&addr, offset).await, "retry of {offset}");
    }
    assert_eq!(
        produce(&addr, idempotent(SNAPSHOT_PID, 0, leo as i32, 1), 1)
            .await
            .unwrap()
            .base_offset,
        leo
    );
    let err = produce(&addr, idempotent(SNAPSHOT_PID, 0, leo as i32 + 5, 1), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OutOfOrderSequence { expected, .. } if expected as i64 == leo + 1),
        "{err:?}"
    );
    addr.send(Shutdown).await.unwrap().unwrap();
}

#[actix::test]
async fn a_corrupt_snapshot_falls_back_to_an_older_one_or_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (base, leo) = produce_rolls_and_shut_down(dir.path()).await;
    let corrupt = |offset: i64| {
        let path = dir.path().join(format!("{offset:020}.snapshot"));
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    };
    // The shutdown's snapshot is corrupt: the roll's one plus the tail.
    corrupt(leo);
    let addr = start_replica(dir.path(), small_segments(), replica_config());
    for offset in [base - 1, base] {
        assert!(retry_recognised(&addr, offset).await, "retry of {offset}");
    }
    addr.send(Shutdown).await.unwrap().unwrap();
    // Both corrupt: a full scan.
    corrupt(leo);
    corrupt(base);
    let addr = start_replica(dir.path(), small_segments(), replica_config());
    for offset in [base - 1, base] {
        assert!(retry_recognised(&addr, offset).await, "retry of {offset}");
    }
    assert_eq!(status(&addr).await.log_end_offset, leo);
    addr.send(Shutdown).await.unwrap().unwrap();
}

#[actix::test]
async fn truncation_removes_snapshots_above_the_new_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let (base, leo) = produce_rolls_and_shut_down(dir.path()).await;
    let mut log = Log::open(
        dir.path(),
        small_segments(),
        LogOpenOptions {
            clean_shutdown: true,
            recovery_point: leo,
            now_ms: now(),
            ..LogOpenOptions::default()
        },
    )
    .unwrap();
    assert!(log.truncate_to(base, now()).unwrap());
    log.close(now()).unwrap();

    let addr = start_replica(dir.path(), small_segments(), replica_config());
    assert_eq!(status(&addr).await.log_end_offset, base);
    assert_eq!(
        offset_files(dir.path(), ".snapshot"),
        vec![base],
        "the snapshot above the new end went"
    );
    // The truncated batch is no longer known: sending it again appends it.
    assert!(retry_recognised(&addr, base - 1).await);
    assert_eq!(
        produce(&addr, idempotent(SNAPSHOT_PID, 0, base as i32, 1), 1)
            .await
            .unwrap()
            .base_offset,
        base
    );
    assert_eq!(status(&addr).await.log_end_offset, base + 1);
    addr.send(Shutdown).await.unwrap().unwrap();
}

// ---------------------------------------------------------------------------------------
// ReplicaManager
// ---------------------------------------------------------------------------------------

fn manager_config(dir: &Path, arbiters: usize) -> ReplicaManagerConfig {
    ReplicaManagerConfig {
        num_arbiters: arbiters,
        replica: replica_config(),
        ..ReplicaManagerConfig::new(dir)
    }
}

fn ensure(tp: TopicPartition, topic_id: &str, leader_epoch: i32) -> EnsureReplica {
    EnsureReplica {
        tp,
        topic_id: topic_id.into(),
        config: LogConfig::default(),
        leader_epoch,
        isr: vec![BROKER],
        is_leader: true,
    }
}

#[actix::test]
async fn manager_ensures_stops_and_deletes_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ReplicaManager::open(manager_config(dir.path(), 2)).unwrap();
    let replicas = manager.replicas();
    let manager = manager.start();
    let tp = orders(0);
    let partition_dir = dir.path().join("orders-0");

    let addr = manager
        .send(ensure(tp.clone(), "id-1", 0))
        .await
        .unwrap()
        .unwrap();
    assert!(replicas.get(&tp).is_some_and(|a| a == addr));
    produce(&addr, batch_of(&["a", "b", "c"]), 1).await.unwrap();

    // Ensuring again updates the running replica.
    let again = manager
        .send(ensure(tp.clone(), "id-1", 2))
        .await
        .unwrap()
        .unwrap();
    assert!(again == addr);
    assert_eq!(status(&addr).await.leader_epoch, 2);

    // Stop: the directory stays; ensure reopens it with its high watermark.
    manager
        .send(StopReplica {
            tp: tp.clone(),
            delete: false,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(replicas.get(&tp).is_none());
    assert!(addr.send(Status).await.is_err(), "the actor stopped");
    assert!(partition_dir.exists());
    let addr = manager
        .send(ensure(tp.clone(), "id-1", 2))
        .await
        .unwrap()
        .unwrap();
    let s = status(&addr).await;
    assert_eq!((s.log_end_offset, s.high_watermark), (3, 3));

    // A re-created topic (new id) starts empty.
    let addr = manager
        .send(ensure(tp.clone(), "id-2", 0))
        .await
        .unwrap()
        .unwrap();
    let s = status(&addr).await;
    assert_eq!((s.topic_id.as_str(), s.log_end_offset), ("id-2", 0));

    // Delete.
    manager
        .send(StopReplica {
            tp: tp.clone(),
            delete: true,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(replicas.is_empty());
    assert!(!partition_dir.exists());
    manager.send(CheckpointReplicas).await.unwrap().unwrap();
    let checkpoint =
        std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert!(!checkpoint.contains("orders"), "{checkpoint}");
}

#[actix::test]
async fn clean_shutdown_then_restart_without_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ReplicaManager::open(manager_config(dir.path(), 2)).unwrap();
    assert!(!manager.had_clean_shutdown());
    let replicas = manager.replicas();
    let manager = manager.start();
    for p in 0..3 {
        let addr = manager
            .send(ensure(orders(p), "id-1", 0))
            .await
            .unwrap()
            .unwrap();
        produce(&addr, batch_of(&["a", "b"]), 1).await.unwrap();
    }
    let addr = replicas.get(&orders(0)).unwrap();
    assert_eq!(
        produce(&addr, idempotent(9, 0, 0, 1), 1)
            .await
            .unwrap()
            .base_offset,
        2
    );

    manager.send(ShutdownReplicas).await.unwrap().unwrap();
    assert!(dir.path().join(".clean-shutdown").exists());
    assert!(replicas.is_empty());
    assert!(
        manager.send(CheckpointReplicas).await.is_err(),
        "the manager stopped"
    );

    let manager = ReplicaManager::open(manager_config(dir.path(), 2)).unwrap();
    assert!(manager.had_clean_shutdown());
    assert!(!dir.path().join(".clean-shutdown").exists());
    assert_eq!(manager.partitions_on_disk().unwrap().len(), 3);
    let replicas = manager.replicas();
    let manager = manager.start();
    assert!(replicas.is_empty(), "logs open only when the metadata asks");
    let addr = manager
        .send(ensure(orders(0), "id-1", 1))
        .await
        .unwrap()
        .unwrap();
    let s = status(&addr).await;
    assert_eq!(
        (s.log_end_offset, s.recovery_point, s.high_watermark),
        (3, 3, 3),
        "everything was flushed and checkpointed"
    );
    // The producer state came back from the log: a retry is still recognised.
    assert_eq!(
        produce(&addr, idempotent(9, 0, 0, 1), 1)
            .await
            .unwrap()
            .base_offset,
        2
    );
    assert_eq!(status(&addr).await.log_end_offset, 3);
    manager.send(ShutdownReplicas).await.unwrap().unwrap();
}

#[actix::test]
async fn replicas_spread_over_arbiters() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ReplicaManager::open(manager_config(dir.path(), 4))
        .unwrap()
        .start();
    let mut threads = Vec::new();
    for p in 0..8 {
        let addr = manager
            .send(ensure(orders(p), "id-1", 0))
            .await
            .unwrap()
            .unwrap();
        let thread = status(&addr).await.thread.expect("named arbiter thread");
        threads.push((arbiter_index(&orders(p), 4), thread));
    }
    let here = std::thread::current().name().map(str::to_owned);
    assert!(threads.iter().all(|(_, t)| Some(t) != here.as_ref()));
    let distinct: BTreeSet<_> = threads.iter().map(|(_, t)| t.clone()).collect();
    assert!(distinct.len() > 1, "{threads:?}");
    // Same arbiter index, same thread; different index, different thread.
    for (i, a) in &threads {
        for (j, b) in &threads {
            assert_eq!(i == j, a == b, "{threads:?}");
        }
    }
    manager.send(ShutdownReplicas).await.unwrap().unwrap();
}
