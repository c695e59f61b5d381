//! The conformance suite: written once against the `Coordination` trait, instantiated
//! for every backend — embedded (in-process), ZooKeeper and etcd (real servers started
//! by the harness on free loopback ports, stopped afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_coordination::election::Election;
use sluice_coordination::embedded::EmbeddedStore;
use sluice_coordination::etcd::EtcdClient;
use sluice_coordination::zookeeper::ZkClient;
use sluice_coordination::{
    keys, Backend, ConflictKind, Coordination, CoordinationConfig, Error, Op, SessionState,
    WatchEvent,
};
use support::etcd::EtcdServer;
use support::eventually;
use support::proxy::Proxy;
use support::zookeeper::ZkServer;

const SESSION: Duration = Duration::from_secs(3);
const PATIENCE: Duration = Duration::from_secs(30);

/// How a test ends a client's session against its will.
enum Cut {
    Proxy(Proxy),
    Embedded(Arc<EmbeddedStore>, u64),
}

impl Cut {
    fn cut(&self) {
        match self {
            Cut::Proxy(p) => p.cut(),
            Cut::Embedded(store, id) => store.expire_session(*id),
        }
    }
}

/// One backend under test.
enum Harness {
    Embedded(Arc<EmbeddedStore>),
    ZooKeeper(ZkServer),
    Etcd(EtcdServer),
}

impl Harness {
    async fn start(backend: Backend) -> Harness {
        match backend {
            Backend::Embedded => Harness::Embedded(EmbeddedStore::temporary().unwrap()),
            Backend::ZooKeeper => Harness::ZooKeeper(ZkServer::start().await),
            Backend::Etcd => Harness::Etcd(EtcdServer::start().await),
        }
    }

    fn config(&self, endpoint: String) -> CoordinationConfig {
        let backend = match self {
            Harness::Embedded(_) => Backend::Embedded,
            Harness::ZooKeeper(_) => Backend::ZooKeeper,
            Harness::Etcd(_) => Backend::Etcd,
        };
        CoordinationConfig {
            endpoints: vec![endpoint],
            root: "/conformance".into(),
            session_timeout: SESSION,
            connect_timeout: Duration::from_secs(10),
            ..CoordinationConfig::new(backend)
        }
    }

    async fn connect_to(&self, endpoint: String) -> Arc<dyn Coordination> {
        let config = self.config(endpoint);
        match self {
            Harness::Embedded(store) => Arc::new(store.connect(&config.root, SESSION).unwrap()),
            Harness::ZooKeeper(_) => Arc::new(ZkClient::connect(&config).await.unwrap()),
            Harness::Etcd(_) => Arc::new(EtcdClient::connect(&config).await.unwrap()),
        }
    }

    async fn client(&self) -> Arc<dyn Coordination> {
        let endpoint = match self {
            Harness::Embedded(_) => String::new(),
            Harness::ZooKeeper(s) => s.endpoint(),
            Harness::Etcd(s) => s.endpoint(),
        };
        self.connect_to(endpoint).await
    }

    /// A client whose session the test can end (network cut past the TTL, or expiry).
    async fn cuttable_client(&self) -> (Arc<dyn Coordination>, Cut) {
        match self {
            Harness::Embedded(store) => {
                let client = store.connect("/conformance", SESSION).unwrap();
                let id = client.session_id();
                (Arc::new(client), Cut::Embedded(Arc::clone(store), id))
            }
            Harness::ZooKeeper(s) => {
                let proxy = Proxy::start(s.addr()).await;
                (self.connect_to(proxy.endpoint()).await, Cut::Proxy(proxy))
            }
            Harness::Etcd(s) => {
                let proxy = Proxy::start(s.addr()).await;
                let endpoint = s
                    .endpoint()
                    .replace(&s.addr().to_string(), &proxy.endpoint());
                (self.connect_to(endpoint).await, Cut::Proxy(proxy))
            }
        }
    }
}

async fn exists(c: &Arc<dyn Coordination>, key: &str) -> bool {
    c.get(key).await.unwrap().is_some()
}

fn conflict_kind(r: Result<impl std::fmt::Debug, Error>) -> (usize, ConflictKind) {
    match r {
        Err(Error::Conflict { index, kind, .. }) => (index, kind),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn cas_conflicts(h: Harness) {
    let c = h.client().await;
    let v1 = c.create("/cas", b"one".to_vec()).await.unwrap();
    assert_eq!(
        conflict_kind(c.create("/cas", b"again".to_vec()).await).1,
        ConflictKind::Exists
    );
    let v2 = c.set("/cas", b"two".to_vec(), Some(v1)).await.unwrap();
    assert_ne!(v1, v2, "a write gives a new version");
    assert_eq!(
        conflict_kind(c.set("/cas", b"stale".to_vec(), Some(v1)).await).1,
        ConflictKind::VersionMismatch
    );
    assert_eq!(c.get("/cas").await.unwrap().unwrap().value, b"two");
    assert_eq!(
        conflict_kind(c.set("/missing", b"x".to_vec(), None).await).1,
        ConflictKind::Missing
    );
    assert_eq!(
        conflict_kind(c.delete("/cas", Some(v1)).await).1,
        ConflictKind::VersionMismatch
    );
    c.delete("/cas", Some(v2)).await.unwrap();
    assert!(!exists(&c, "/cas").await);
    // Re-created: a version never seen for that key before.
    let v3 = c.create("/cas", b"three".to_vec()).await.unwrap();
    assert!(
        v3 != v1 || h_is_zookeeper(&h),
        "a re-created key must not reuse a version (ZooKeeper restarts at 0)"
    );
    c.close().await.unwrap();
}

fn h_is_zookeeper(h: &Harness) -> bool {
    matches!(h, Harness::ZooKeeper(_))
}

async fn create_if_absent_race(h: Harness) {
    let clients: Vec<Arc<dyn Coordination>> = futures_join(4, |_| h.client()).await;
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().cycle().take(12).enumerate() {
        let c = Arc::clone(c);
        tasks.push(tokio::spawn(async move {
            c.create("/race/winner", format!("{i}").into_bytes()).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Conflict {
                kind: ConflictKind::Exists,
                ..
            }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(wins, 1, "exactly one creator wins");
}

async fn futures_join<F, Fut>(n: usize, f: F) -> Vec<Arc<dyn Coordination>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Coordination>>,
{
    let mut out = Vec::new();
    for i in 0..n {
        out.push(f(i).await);
    }
    out
}

async fn multi_is_all_or_nothing(h: Harness) {
    let c = h.client().await;
    let ops = vec![
        Op::Create {
            key: "/m/a".into(),
            value: b"a".to_vec(),
            ephemeral: false,
        },
        Op::Create {
            key: "/m/b".into(),
            value: b"b".to_vec(),
            ephemeral: false,
        },
        Op::Set {
            key: "/m/missing".into(),
            value: b"c".to_vec(),
            version: None,
        },
    ];
    let (index, kind) = conflict_kind(c.transact(ops).await);
    assert_eq!((index, kind), (2, ConflictKind::Missing));
    assert!(
        !exists(&c, "/m/a").await && !exists(&c, "/m/b").await,
        "nothing of a failed transaction is applied"
    );

    let results = c
        .transact(vec![
            Op::Create {
                key: "/m/a".into(),
                value: b"a".to_vec(),
                ephemeral: false,
            },
            Op::Create {
                key: "/m/b".into(),
                value: b"b".to_vec(),
                ephemeral: false,
            },
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(c.get("/m/b").await.unwrap().unwrap().value, b"b");
}

async fn a_failed_guard_aborts_everything(h: Harness) {
    let c = h.client().await;
    let epoch_v = c
        .create("/epoch", 1i64.to_be_bytes().to_vec())
        .await
        .unwrap();
    let target_v = c.create("/state", b"s0".to_vec()).await.unwrap();
    // Someone else moved the epoch: a deposed writer's guarded write does nothing, even
    // though its own compare-and-set on the target would have succeeded.
    let new_epoch_v = c
        .set("/epoch", 2i64.to_be_bytes().to_vec(), Some(epoch_v))
        .await
        .unwrap();
    let fenced = c
        .transact(vec![
            Op::Check {
                key: "/epoch".into(),
                version: epoch_v,
            },
            Op::Set {
                key: "/state".into(),
                value: b"stale".to_vec(),
                version: Some(target_v),
            },
            Op::Create {
                key: "/side-effect".into(),
                value: vec![],
                ephemeral: false,
            },
        ])
        .await;
    assert_eq!(conflict_kind(fenced), (0, ConflictKind::VersionMismatch));
    assert_eq!(c.get("/state").await.unwrap().unwrap().value, b"s0");
    assert!(!exists(&c, "/side-effect").await);
    c.transact(vec![
        Op::Check {
            key: "/epoch".into(),
            version: new_epoch_v,
        },
        Op::Set {
            key: "/state".into(),
            value: b"s1".to_vec(),
            version: Some(target_v),
        },
    ])
    .await
    .unwrap();
    assert_eq!(c.get("/state").await.unwrap().unwrap().value, b"s1");
}

async fn one_transaction_creates_a_key_and_its_deep_descendants(h: Harness) {
    // A topic and its partition states in one write: the parents in between
    // (`/t/partitions`, `/t/partitions/0`) exist nowhere yet and must be made too.
    let c = h.client().await;
    c.transact(vec![
        Op::Create {
            key: "/t".into(),
            value: b"assignment".to_vec(),
            ephemeral: false,
        },
        Op::Create {
            key: "/t/partitions/0/state".into(),
            value: b"s0".to_vec(),
            ephemeral: false,
        },
        Op::Create {
            key: "/t/partitions/1/state".into(),
            value: b"s1".to_vec(),
            ephemeral: false,
        },
    ])
    .await
    .unwrap();
    assert_eq!(c.get("/t").await.unwrap().unwrap().value, b"assignment");
    assert_eq!(
        c.get("/t/partitions/1/state").await.unwrap().unwrap().value,
        b"s1"
    );
    let names: Vec<String> = c
        .children("/t/partitions")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["0", "1"]);
}

async fn hierarchy_children_and_recursive_delete(h: Harness) {
    let c = h.client().await;
    c.create("/topics/b/partitions/0", b"p0".to_vec())
        .await
        .unwrap();
    c.create("/topics/a", b"ta".to_vec()).await.unwrap();
    c.create("/topics/c", b"tc".to_vec()).await.unwrap();
    let names: Vec<String> = c
        .children("/topics")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["a", "b", "c"],
        "direct children, sorted, parents created on the way"
    );
    assert_eq!(
        c.children("/topics/b/partitions").await.unwrap()[0].1.value,
        b"p0"
    );
    assert!(c.children("/nothing/here").await.unwrap().is_empty());
    c.delete("/topics/b", None).await.unwrap();
    assert!(
        !exists(&c, "/topics/b/partitions/0").await,
        "delete takes the subtree"
    );
    let names: Vec<String> = c
        .children("/topics")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert!(matches!(c.get("no-slash").await, Err(Error::InvalidKey(_))));
}

async fn ephemeral_keys_die_with_a_closed_session(h: Harness) {
    let (a, b) = (h.client().await, h.client().await);
    a.create_ephemeral("/brokers/ids/1", b"broker-1".to_vec())
        .await
        .unwrap();
    assert!(exists(&b, "/brokers/ids/1").await);
    a.close().await.unwrap();
    eventually(PATIENCE, "ephemeral key gone after close", || async {
        !exists(&b, "/brokers/ids/1").await
    })
    .await;
}

async fn ephemeral_keys_die_with_an_expired_session(h: Harness) {
    let b = h.client().await;
    let (a, cut) = h.cuttable_client().await;
    let mut state = a.session_state();
    a.create_ephemeral("/brokers/ids/2", b"broker-2".to_vec())
        .await
        .unwrap();
    a.create("/persistent", b"stays".to_vec()).await.unwrap();
    let mut watch = b.watch("/brokers/ids").await.unwrap();
    cut.cut();
    let started = Instant::now();
    eventually(PATIENCE, "ephemeral key gone after expiry", || async {
        !exists(&b, "/brokers/ids/2").await
    })
    .await;
    let mut seen_delete = false;
    while let Ok(Some(event)) = tokio::time::timeout(PATIENCE, watch.next()).await {
        if event
            == (WatchEvent::Delete {
                key: "/brokers/ids/2".into(),
            })
        {
            seen_delete = true;
            break;
        }
    }
    assert!(seen_delete, "a watcher sees the ephemeral key's deletion");
    assert!(
        started.elapsed() < SESSION * 4 + Duration::from_secs(5),
        "expiry took {:?}",
        started.elapsed()
    );
    eventually(
        PATIENCE,
        "the cut client learns its session expired",
        || {
            let s = *state.borrow_and_update();
            async move { s == SessionState::Expired }
        },
    )
    .await;
    assert!(exists(&b, "/persistent").await, "persistent keys stay");
}

async fn election_with_five_contenders(h: Harness) {
    let observer = h.client().await;
    let observer_election =
        Election::new(Arc::clone(&observer), "/controller", "/controller_epoch").unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut cuts = Vec::new();
    let mut resign_signals = Vec::new();
    for id in 0..5u8 {
        let (client, cut) = h.cuttable_client().await;
        cuts.push(cut);
        let (resign_tx, resign_rx) = tokio::sync::oneshot::channel::<()>();
        resign_signals.push(Some(resign_tx));
        let tx = tx.clone();
        tokio::spawn(async move {
            let election = Election::new(client, "/controller", "/controller_epoch").unwrap();
            let leadership = election.campaign(vec![id]).await;
            let Ok(leadership) = leadership else { return };
            let _ = tx.send((id, leadership.epoch(), Instant::now()));
            let _ = resign_rx.await;
            let _ = leadership.resign().await;
        });
    }
    let mut epochs = Vec::new();
    let mut winners = BTreeSet::new();
    for round in 0..5 {
        let (id, epoch, _) = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .expect("a leader is elected")
            .unwrap();
        let seen = observer_election
            .leader()
            .await
            .unwrap()
            .expect("the store names a leader");
        assert_eq!(
            (seen.value, seen.epoch),
            (vec![id], epoch),
            "the store and the winner agree"
        );
        assert!(winners.insert(id), "each contender wins once");
        // Nobody else believes they lead while this one does.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "two leaders at once"
        );
        epochs.push(epoch);
        // The last winner stays: it will lose its session instead of resigning.
        if round < 4 {
            resign_signals[id as usize]
                .take()
                .unwrap()
                .send(())
                .unwrap();
        }
    }
    assert!(
        epochs.windows(2).all(|w| w[0] < w[1]),
        "epochs strictly increase: {epochs:?}"
    );

    // Failover when a leader's session ends: a sixth contender takes over within TTL + margin.
    let (late, _late_cut) = h.cuttable_client().await;
    let late_task = tokio::spawn(async move {
        let e = Election::new(late, "/controller", "/controller_epoch").unwrap();
        let l = e.campaign(vec![9]).await.unwrap();
        (l.epoch(), Instant::now())
    });
    let leader_id = observer_election.leader().await.unwrap().unwrap().value[0];
    assert!(winners.contains(&leader_id));
    let cut_at = Instant::now();
    cuts[leader_id as usize].cut();
    let (epoch, elected_at) = tokio::time::timeout(PATIENCE, late_task)
        .await
        .expect("failover")
        .unwrap();
    assert!(epoch > *epochs.last().unwrap());
    let failover = elected_at - cut_at;
    assert!(
        failover < SESSION * 4 + Duration::from_secs(5),
        "failover took {failover:?}"
    );
}

async fn watch_delivers_every_change_in_order(h: Harness) {
    let (c, w) = (h.client().await, h.client().await);
    // The parent exists first, so its implicit creation is not among the events.
    c.create("/w", vec![]).await.unwrap();
    let mut watch = w.watch("/w").await.unwrap();
    let mut expected = Vec::new();
    for i in 0..50 {
        let key = format!("/w/k{i:02}");
        c.create(&key, format!("{i}").into_bytes()).await.unwrap();
        expected.push(format!("put {key}"));
    }
    for i in 0..5 {
        c.set("/w/k00", format!("again-{i}").into_bytes(), None)
            .await
            .unwrap();
        expected.push("put /w/k00".to_string());
    }
    c.delete("/w/k07", None).await.unwrap();
    expected.push("delete /w/k07".to_string());
    c.create("/wx/not-below", vec![]).await.unwrap();
    let mut got = Vec::new();
    let mut last_version = None;
    while got.len() < expected.len() {
        let event = tokio::time::timeout(PATIENCE, watch.next())
            .await
            .expect("events keep coming")
            .expect("watch open");
        match event {
            WatchEvent::Put { key, version, .. } => {
                if key == "/w/k00" {
                    assert!(
                        last_version.is_none_or(|v| v != version) || h_is_zookeeper(&h),
                        "each change a new version"
                    );
                    last_version = Some(version);
                }
                got.push(format!("put {key}"));
            }
            WatchEvent::Delete { key } => got.push(format!("delete {key}")),
            WatchEvent::Resync => panic!("no reconnect happened, so no resync is due"),
        }
    }
    assert_eq!(got, expected);
    // The last value is the last write.
    assert_eq!(w.get("/w/k00").await.unwrap().unwrap().value, b"again-4");
}

async fn large_writes_go_in_guarded_chunks(h: Harness) {
    let c = h.client().await;
    let guard_v = c.create("/big_epoch", vec![1]).await.unwrap();
    let guard = Op::Check {
        key: "/big_epoch".into(),
        version: guard_v,
    };
    let ops: Vec<Op> = (0..1000)
        .map(|p| Op::Create {
            key: format!("/big/partitions/{p}"),
            value: vec![7; 64],
            ephemeral: false,
        })
        .collect();
    let chunks = keys::chunk(ops, Some(&guard), &c.limits()).unwrap();
    assert!(chunks
        .iter()
        .all(|ch| ch.len() <= c.limits().max_ops_per_txn));
    for chunk in chunks {
        c.transact(chunk).await.unwrap();
    }
    assert_eq!(c.children("/big/partitions").await.unwrap().len(), 1000);
}

async fn survives_a_server_kill_and_restart(mut h: Harness) {
    let c = h.client().await;
    let mut state = c.session_state();
    c.create("/durable", b"kept".to_vec()).await.unwrap();
    let mut watch = c.watch("/durable").await.unwrap();
    match &mut h {
        Harness::ZooKeeper(s) => s.kill9().await,
        Harness::Etcd(s) => s.kill9().await,
        Harness::Embedded(_) => return,
    }
    eventually(PATIENCE, "Suspended after the server died", || {
        let s = *state.borrow_and_update();
        async move { s == SessionState::Suspended }
    })
    .await;
    match &mut h {
        Harness::ZooKeeper(s) => s.restart().await,
        Harness::Etcd(s) => s.restart().await,
        Harness::Embedded(_) => {}
    }
    eventually(PATIENCE, "Connected again after restart", || {
        let s = *state.borrow_and_update();
        async move { s == SessionState::Connected }
    })
    .await;
    eventually(PATIENCE, "data intact", || async {
        matches!(c.get("/durable").await, Ok(Some(v)) if v.value == b"kept")
    })
    .await;
    let mut resynced = false;
    while let Ok(Some(event)) = tokio::time::timeout(PATIENCE, watch.next()).await {
        if event == WatchEvent::Resync {
            resynced = true;
            break;
        }
    }
    assert!(resynced, "a watcher is told to re-read after the reconnect");
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Harness::start(super::Backend::Embedded).await).await })*
        }
        mod zookeeper {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Harness::start(super::Backend::ZooKeeper).await).await })*
        }
        mod etcd {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Harness::start(super::Backend::Etcd).await).await })*
        }
    };
}

for_each_backend!(
    cas_conflicts,
    create_if_absent_race,
    multi_is_all_or_nothing,
    a_failed_guard_aborts_everything,
    hierarchy_children_and_recursive_delete,
    one_transaction_creates_a_key_and_its_deep_descendants,
    ephemeral_keys_die_with_a_closed_session,
    ephemeral_keys_die_with_an_expired_session,
    election_with_five_contenders,
    watch_delivers_every_change_in_order,
    large_writes_go_in_guarded_chunks,
    survives_a_server_kill_and_restart,
);
