//! The group layer inside a whole broker (no network): `__consumer_offsets` created on first
//! FindCoordinator, a group formed through its coordinator actor, offsets committed, and
//! everything found again after a restart — from sled and the log, and from the log alone
//! when the sled view is lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_actors::broker::{self, BrokerHandle, BrokerOptions};
use sluice_actors::controller::ControllerConfig;
use sluice_actors::group::messages::{
    CommitOffset, DescribeGroup, JoinGroup, OffsetCommit, OffsetFetch, SyncGroup,
};
use sluice_actors::group::{GroupConfig, GroupCoordinator, GroupError};
use sluice_actors::log::config::LogConfig;
use sluice_actors::replica::ReplicaManagerConfig;
use sluice_coordination::embedded::EmbeddedStore;

fn options(dir: &std::path::Path) -> BrokerOptions {
    let data = dir.join("data");
    BrokerOptions {
        broker_id: 1,
        advertised_host: "127.0.0.1".into(),
        advertised_port: 9092,
        rack: None,
        log_defaults: LogConfig::default(),
        controller: ControllerConfig::new(1),
        replicas: ReplicaManagerConfig::new(&data),
        groups: GroupConfig {
            offsets_topic_num_partitions: 3,
            offsets_topic_replication_factor: 1,
            group_initial_rebalance_delay_ms: 0,
            group_min_session_timeout_ms: 100,
            ..GroupConfig::with_defaults(&data)
        },
        registration_wait: Duration::from_secs(5),
    }
}

async fn start(store: &Arc<EmbeddedStore>, dir: &std::path::Path) -> BrokerHandle {
    let coord = Arc::new(store.connect("/sluice", Duration::from_secs(10)).unwrap());
    broker::start(coord, options(dir)).await.unwrap()
}

/// FindCoordinator until it answers (the first call asks for the topic), then the local
/// coordinator once it has loaded.
async fn coordinator(b: &BrokerHandle, group: &str) -> actix::Addr<GroupCoordinator> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = b.groups.find_coordinator(group).await;
        if found == Ok(1) {
            if let Ok(addr) = b.groups.coordinator_for(group) {
                return addr;
            }
        } else {
            assert!(
                matches!(found, Err(GroupError::CoordinatorNotAvailable(_))),
                "{found:?}"
            );
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn join(group: &str, member: &str) -> JoinGroup {
    JoinGroup {
        group_id: group.into(),
        member_id: member.into(),
        group_instance_id: None,
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), vec![1, 2, 3])],
        require_known_member_id: false,
        reason: None,
    }
}

async fn fetch(c: &actix::Addr<GroupCoordinator>, group: &str) -> Vec<(String, i32, i64)> {
    c.send(OffsetFetch {
        group_id: group.into(),
        partitions: None,
    })
    .await
    .unwrap()
    .unwrap()
    .into_iter()
    .map(|f| (f.topic, f.partition, f.offset))
    .collect()
}

#[actix::test]
async fn groups_and_offsets_survive_restarts_and_a_lost_sled_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let b = start(&store, dir.path()).await;
    let c = coordinator(&b, "g1").await;
    let topic = b.metadata.topic("__consumer_offsets").unwrap();
    assert_eq!(topic.partition_count(), 3);
    assert_eq!(topic.replication_factor(), 1);
    assert_eq!(
        b.metadata
            .topic_config("__consumer_offsets")
            .get("cleanup.policy"),
        Some(&"compact".to_string())
    );

    // Two members: the first join completes alone (generation 1); the second triggers a
    // rebalance that completes when the first rejoins (generation 2).
    let first = c.send(join("g1", "")).await.unwrap().unwrap();
    assert_eq!(first.generation_id, 1);
    let second = {
        let c = c.clone();
        actix::spawn(async move { c.send(join("g1", "")).await.unwrap() })
    };
    // The first member would learn of the rebalance from its heartbeat; here it rejoins
    // once the group shows the rebalance.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = c
            .send(DescribeGroup {
                group_id: "g1".into(),
            })
            .await
            .unwrap()
            .unwrap();
        if d.state == "PreparingRebalance" {
            break;
        }
        assert!(Instant::now() < deadline, "no rebalance: {d:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let leader = c.send(join("g1", &first.member_id)).await.unwrap().unwrap();
    let second = second.await.unwrap().unwrap();
    assert_eq!((leader.generation_id, second.generation_id), (2, 2));
    assert_eq!(leader.leader, leader.member_id);
    assert_eq!(leader.members.len(), 2);
    let sync = |member: &str, assignments: Vec<(String, Vec<u8>)>| SyncGroup {
        group_id: "g1".into(),
        generation_id: 2,
        member_id: member.into(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments,
    };
    let follower_sync = {
        let c = c.clone();
        let msg = sync(&second.member_id, vec![]);
        actix::spawn(async move { c.send(msg).await.unwrap() })
    };
    let assignments = vec![
        (leader.member_id.clone(), b"to-leader".to_vec()),
        (second.member_id.clone(), b"to-follower".to_vec()),
    ];
    let mine = c
        .send(sync(&leader.member_id, assignments))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mine.assignment, b"to-leader");
    assert_eq!(
        follower_sync.await.unwrap().unwrap().assignment,
        b"to-follower"
    );

    // Commits by a member, then one outside group management in another group.
    let commit = |group: &str, generation, member: &str, offset| OffsetCommit {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        offsets: vec![CommitOffset {
            topic: "orders".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: Some("m".into()),
        }],
        now_ms: 0,
    };
    for offset in [10, 20, 42] {
        let r = c
            .send(commit("g1", 2, &leader.member_id, offset))
            .await
            .unwrap()
            .unwrap();
        assert!(r[0].1.is_ok(), "{r:?}");
    }
    let stale = c.send(commit("g1", 1, &leader.member_id, 5)).await.unwrap();
    assert_eq!(
        stale,
        Err(GroupError::IllegalGeneration { got: 1, current: 2 })
    );
    let c2 = coordinator(&b, "simple").await;
    c2.send(commit("simple", -1, "", 7)).await.unwrap().unwrap();
    assert_eq!(fetch(&c, "g1").await, [("orders".into(), 0, 42)]);

    // A clean restart: sled and the log agree; the group comes back Stable, generation 2.
    b.shutdown().await.unwrap();
    let b = start(&store, dir.path()).await;
    let c = coordinator(&b, "g1").await;
    assert_eq!(fetch(&c, "g1").await, [("orders".into(), 0, 42)]);
    let described = c
        .send(DescribeGroup {
            group_id: "g1".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(described.state, "Stable");
    assert_eq!(described.members.len(), 2);
    let again = c
        .send(sync(&second.member_id, vec![]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.assignment, b"to-follower",
        "generation 2 is still current"
    );
    let c2 = coordinator(&b, "simple").await;
    assert_eq!(fetch(&c2, "simple").await, [("orders".into(), 0, 7)]);

    // The sled view is lost: the log alone brings everything back.
    b.shutdown().await.unwrap();
    std::fs::remove_dir_all(dir.path().join("data/sled")).unwrap();
    let b = start(&store, dir.path()).await;
    let c = coordinator(&b, "g1").await;
    assert_eq!(fetch(&c, "g1").await, [("orders".into(), 0, 42)]);
    let c2 = coordinator(&b, "simple").await;
    assert_eq!(fetch(&c2, "simple").await, [("orders".into(), 0, 7)]);
    b.shutdown().await.unwrap();
}

/// Offsets retention: the offsets of a group without members expire
/// `offsets.retention.minutes` after the commit (here a few hundred ms), get tombstones,
/// and the group disappears; a group with members keeps its offsets.
#[actix::test]
async fn offsets_of_empty_groups_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let coord = Arc::new(store.connect("/sluice", Duration::from_secs(10)).unwrap());
    let mut opts = options(dir.path());
    opts.groups.offsets_retention_ms = 300;
    opts.groups.offsets_retention_check_interval_ms = 50;
    let b = broker::start(coord, opts).await.unwrap();
    let c = coordinator(&b, "idle").await;
    let commit = |group: &str, generation, member: &str| OffsetCommit {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        retention_time_ms: -1,
        offsets: vec![CommitOffset {
            topic: "orders".into(),
            partition: 0,
            offset: 5,
            leader_epoch: -1,
            metadata: None,
        }],
        now_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    };
    c.send(commit("idle", -1, "")).await.unwrap().unwrap();
    assert_eq!(fetch(&c, "idle").await, [("orders".into(), 0, 5)]);
    // An active group on the same coordinator keeps its offsets.
    let busy = coordinator(&b, "busy").await;
    let member = busy.send(join("busy", "")).await.unwrap().unwrap();
    let sync = SyncGroup {
        group_id: "busy".into(),
        generation_id: member.generation_id,
        member_id: member.member_id.clone(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: vec![(member.member_id.clone(), vec![1])],
    };
    busy.send(sync).await.unwrap().unwrap();
    busy.send(commit("busy", member.generation_id, &member.member_id))
        .await
        .unwrap()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while !fetch(&c, "idle").await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the idle group's offsets never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = c
        .send(sluice_actors::group::messages::ListGroups { states: vec![] })
        .await
        .unwrap()
        .unwrap();
    assert!(
        listed.iter().all(|g| g.group_id != "idle"),
        "the expired group is still listed: {listed:?}"
    );
    assert_eq!(fetch(&busy, "busy").await, [("orders".into(), 0, 5)]);
    b.shutdown().await.unwrap();
}

/// Commits of one partition sent back to back, without waiting for each answer (librdkafka's
/// asynchronous commits): the last one sent is the one that stays, whatever order the
/// coordinator's appends complete in.
#[actix::test]
async fn pipelined_commits_of_one_partition_keep_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let b = start(&store, dir.path()).await;
    let c = coordinator(&b, "pipelined").await;
    let commit = |offset| OffsetCommit {
        group_id: "pipelined".into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        offsets: vec![CommitOffset {
            topic: "orders".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: None,
        }],
        now_ms: 0,
    };
    for round in 0..20 {
        // Sent in small bursts, so that earlier appends complete while later commits are
        // still arriving.
        let mut sent = Vec::new();
        for i in 1..=200 {
            sent.push(c.send(commit(round * 1000 + i)));
            if i % 2 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for answer in futures_join(sent).await {
            answer.unwrap().unwrap();
        }
        assert_eq!(
            fetch(&c, "pipelined").await,
            [("orders".into(), 0, round * 1000 + 200)],
            "round {round}"
        );
    }
    b.shutdown().await.unwrap();
}

/// Awaits every future, in order (they all run meanwhile: actix sent the messages already).
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await);
    }
    out
}
