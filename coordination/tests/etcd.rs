//! The etcd backend against a real etcd 3.4: what only etcd can show (key prefixes,
//! leases, restarts, compaction, etcd's request limits), and a quick pass over the basic
//! semantics the conformance suite covers for every backend.
// A test crate exports nothing (its helpers are `pub` for each other) and may panic.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_coordination::election::Election;
use sluice_coordination::etcd::EtcdClient;
use sluice_coordination::{
    Backend, ConflictKind, Coordination, CoordinationConfig, Error, Op, OpResult, SessionState,
    Watch, WatchEvent, WATCH_QUEUE,
};
use support::etcd::EtcdServer;
use support::eventually;
use support::proxy::Proxy;

/// How long any awaited outcome may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// The TTL of sessions that must survive a disconnection: never waited for, so long
/// enough to stay alive on a slow machine.
const LONG_TTL: Duration = Duration::from_secs(10);

fn config(endpoint: &str, root: &str, ttl: Duration) -> CoordinationConfig {
    let mut config = CoordinationConfig::new(Backend::Etcd);
    config.endpoints = vec![endpoint.to_owned()];
    config.root = root.to_owned();
    config.session_timeout = ttl;
    config.connect_timeout = Duration::from_secs(5);
    config
}

async fn client(endpoint: &str, root: &str) -> EtcdClient {
    client_with_ttl(endpoint, root, Duration::from_secs(3)).await
}

async fn client_with_ttl(endpoint: &str, root: &str, ttl: Duration) -> EtcdClient {
    EtcdClient::connect(&config(endpoint, root, ttl))
        .await
        .expect("connect")
}

/// The next watch event, failing the test if none comes in time.
async fn next(watch: &mut Watch) -> WatchEvent {
    tokio::time::timeout(PATIENCE, watch.next())
        .await
        .expect("a watch event in time")
        .expect("the watch is still open")
}

fn put(key: &str) -> impl Fn(&WatchEvent) -> bool + '_ {
    move |e| matches!(e, WatchEvent::Put { key: k, .. } if k == key)
}

async fn wait_for_state(c: &EtcdClient, want: SessionState) {
    let state = c.session_state();
    eventually(PATIENCE, &format!("session state {want:?}"), || {
        let now = *state.borrow();
        async move { now == want }
    })
    .await;
}

fn conflict_of(result: Result<impl std::fmt::Debug, Error>) -> (usize, String, ConflictKind) {
    match result {
        Err(Error::Conflict { index, key, kind }) => (index, key, kind),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_compare_and_set_and_hierarchy() {
    let server = EtcdServer::start().await;
    let c = client(&server.endpoint(), "/sluice").await;

    let v1 = c.create("/a/b/c", b"one".to_vec()).await.unwrap();
    let got = c.get("/a/b/c").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (&b"one"[..], v1));
    // Parents were created, empty.
    assert_eq!(c.get("/a").await.unwrap().unwrap().value, Vec::<u8>::new());
    assert_eq!(
        c.get("/a/b").await.unwrap().unwrap().value,
        Vec::<u8>::new()
    );

    assert_eq!(
        conflict_of(c.create("/a/b/c", vec![]).await),
        (0, "/a/b/c".into(), ConflictKind::Exists)
    );
    assert_eq!(
        conflict_of(c.set("/nope", vec![], None).await),
        (0, "/nope".into(), ConflictKind::Missing)
    );
    assert_eq!(
        conflict_of(c.set("/a/b/c", vec![], Some(v1 + 1000)).await),
        (0, "/a/b/c".into(), ConflictKind::VersionMismatch)
    );
    assert_eq!(
        conflict_of(c.set("/a/b/c", vec![], Some(0)).await).2,
        ConflictKind::VersionMismatch
    );
    let v2 = c.set("/a/b/c", b"two".to_vec(), Some(v1)).await.unwrap();
    assert_ne!(v1, v2);
    let v3 = c.put("/a/b/c", b"three".to_vec()).await.unwrap();
    assert_ne!(v2, v3);
    c.put("/a/b/d", b"d".to_vec()).await.unwrap();
    c.put("/a/bb", b"bb".to_vec()).await.unwrap();

    let children = c.children("/a/b").await.unwrap();
    let names: Vec<&str> = children.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["c", "d"]);
    assert_eq!(children[0].1.version, v3);
    let names: Vec<String> = c
        .children("/a")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["b", "bb"]);
    let names: Vec<String> = c
        .children("/")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a"]);
    assert!(c.children("/missing").await.unwrap().is_empty());

    assert_eq!(
        conflict_of(c.delete("/a/b", Some(v3)).await).2,
        ConflictKind::VersionMismatch
    );
    c.delete("/a/b", None).await.unwrap();
    assert!(c.get("/a/b").await.unwrap().is_none());
    assert!(c.get("/a/b/c").await.unwrap().is_none());
    assert!(
        c.get("/a/bb").await.unwrap().is_some(),
        "a sibling sharing the prefix survives"
    );
    assert_eq!(
        conflict_of(c.delete("/a/b", None).await).2,
        ConflictKind::Missing
    );

    assert!(matches!(c.get("relative").await, Err(Error::InvalidKey(_))));
    assert!(matches!(
        c.create("/", vec![]).await,
        Err(Error::InvalidKey(_))
    ));
    c.close().await.unwrap();
    assert!(matches!(c.get("/a").await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_atomic_and_name_the_failing_operation() {
    let server = EtcdServer::start().await;
    let c = client(&server.endpoint(), "/sluice").await;
    let epoch = c.create("/epoch", vec![1]).await.unwrap();
    let x = c.create("/x", vec![]).await.unwrap();

    let ops = vec![
        Op::Check {
            key: "/epoch".into(),
            version: epoch,
        },
        Op::Create {
            key: "/new".into(),
            value: vec![1],
            ephemeral: false,
        },
        Op::Set {
            key: "/x".into(),
            value: vec![2],
            version: Some(x),
        },
        Op::Delete {
            key: "/gone".into(),
            version: None,
        },
    ];
    assert_eq!(
        conflict_of(c.transact(ops.clone()).await),
        (3, "/gone".into(), ConflictKind::Missing)
    );
    assert!(
        c.get("/new").await.unwrap().is_none(),
        "nothing of a failed transaction is applied"
    );
    assert_eq!(c.get("/x").await.unwrap().unwrap().version, x);

    // A stale guard fails first, even when later operations would fail too.
    c.set("/epoch", vec![2], None).await.unwrap();
    assert_eq!(
        conflict_of(c.transact(ops.clone()).await),
        (0, "/epoch".into(), ConflictKind::VersionMismatch)
    );

    let epoch = c.get("/epoch").await.unwrap().unwrap().version;
    let results = c
        .transact(vec![
            Op::Check {
                key: "/epoch".into(),
                version: epoch,
            },
            Op::Create {
                key: "/new".into(),
                value: vec![1],
                ephemeral: false,
            },
            Op::Set {
                key: "/x".into(),
                value: vec![2],
                version: Some(x),
            },
            Op::Delete {
                key: "/epoch_old".into(),
                version: None,
            },
        ])
        .await;
    assert_eq!(conflict_of(results).0, 3);
    let results = c
        .transact(vec![
            Op::Check {
                key: "/epoch".into(),
                version: epoch,
            },
            Op::Create {
                key: "/new".into(),
                value: vec![1],
                ephemeral: false,
            },
            Op::Set {
                key: "/x".into(),
                value: vec![2],
                version: Some(x),
            },
        ])
        .await
        .unwrap();
    assert_eq!(results[0], OpResult::Checked);
    let OpResult::Written(v) = results[1] else {
        panic!("{results:?}")
    };
    assert_eq!(c.get("/new").await.unwrap().unwrap().version, v);

    // A key and keys below it in one transaction: the ancestors between them are
    // written inside it, the ones above it before it.
    let results = c
        .transact(vec![
            Op::Create {
                key: "/brokers/topics/t".into(),
                value: b"t".to_vec(),
                ephemeral: false,
            },
            Op::Create {
                key: "/brokers/topics/t/partitions/0/state".into(),
                value: b"0".to_vec(),
                ephemeral: false,
            },
            Op::Create {
                key: "/brokers/topics/t/partitions/1/state".into(),
                value: b"1".to_vec(),
                ephemeral: false,
            },
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    let names: Vec<String> = c
        .children("/brokers/topics/t/partitions")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["0", "1"]);
    assert_eq!(
        c.get("/brokers/topics/t").await.unwrap().unwrap().value,
        b"t"
    );
    assert!(c.get("/brokers").await.unwrap().is_some());

    // A failed create leaves no key of its own behind.
    let failing = vec![
        Op::Create {
            key: "/deep/a/b".into(),
            value: vec![],
            ephemeral: false,
        },
        Op::Check {
            key: "/epoch".into(),
            version: epoch + 1000,
        },
    ];
    assert_eq!(conflict_of(c.transact(failing).await).0, 1);
    assert!(c.get("/deep/a/b").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_match_what_etcd_accepts() {
    let server = EtcdServer::start().await;
    let c = client(&server.endpoint(), "/sluice").await;
    let limits = c.limits();

    // A full transaction of the most expensive operation (a recursive delete) fits
    // etcd's --max-txn-ops.
    let creates: Vec<Op> = (0..limits.max_ops_per_txn)
        .map(|i| Op::Create {
            key: format!("/many/{i}/x"),
            value: vec![],
            ephemeral: false,
        })
        .collect();
    c.transact(creates).await.unwrap();
    let deletes: Vec<Op> = (0..limits.max_ops_per_txn)
        .map(|i| Op::Delete {
            key: format!("/many/{i}"),
            version: None,
        })
        .collect();
    let results = c.transact(deletes.clone()).await.unwrap();
    assert!(results.iter().all(|r| *r == OpResult::Deleted));
    let too_many: Vec<Op> = (0..=limits.max_ops_per_txn)
        .map(|i| Op::Delete {
            key: format!("/many/{i}"),
            version: None,
        })
        .collect();
    assert!(matches!(
        c.transact(too_many).await,
        Err(Error::TooLarge { .. })
    ));

    // The largest value and a transaction of max_txn_bytes fit etcd's --max-request-bytes.
    let big = vec![7u8; limits.max_value_bytes];
    let v = c.create("/big", big.clone()).await.unwrap();
    assert_eq!(c.get("/big").await.unwrap().unwrap().value.len(), big.len());
    c.set("/big", big, Some(v)).await.unwrap();
    let half = limits.max_txn_bytes / 2 - 16;
    c.transact(vec![
        Op::Create {
            key: "/half1".into(),
            value: vec![1; half],
            ephemeral: false,
        },
        Op::Create {
            key: "/half2".into(),
            value: vec![2; half],
            ephemeral: false,
        },
    ])
    .await
    .unwrap();
    let children = c.children("/").await.unwrap();
    assert_eq!(
        children
            .iter()
            .filter(|(n, _)| n.starts_with("half"))
            .count(),
        2
    );
    let too_big = vec![0u8; limits.max_value_bytes + 1];
    assert!(matches!(
        c.create("/bigger", too_big).await,
        Err(Error::TooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_isolate_clusters() {
    let server = EtcdServer::start().await;
    let one = client(&server.endpoint(), "/one").await;
    let one_more = client(&server.endpoint(), "/one2").await;
    let bare = client(&server.endpoint(), "/").await;
    let mut watch = one.watch("/").await.unwrap();

    one_more.create("/k", b"other".to_vec()).await.unwrap();
    one.create("/k", b"mine".to_vec()).await.unwrap();
    assert_eq!(one.get("/k").await.unwrap().unwrap().value, b"mine");
    assert_eq!(one_more.get("/k").await.unwrap().unwrap().value, b"other");
    let names: Vec<String> = one
        .children("/")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["k"]);
    // The root is a plain key prefix: a client at `/` sees both trees.
    let names: Vec<String> = bare
        .children("/")
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["one", "one2"]);
    assert_eq!(bare.get("/one/k").await.unwrap().unwrap().value, b"mine");

    // `/one`'s watch on `/` saw its own key only, as `/k`.
    match next(&mut watch).await {
        WatchEvent::Put { key, value, .. } => {
            assert_eq!((key.as_str(), value.as_slice()), ("/k", &b"mine"[..]))
        }
        other => panic!("unexpected {other:?}"),
    }
    one_more.delete("/k", None).await.unwrap();
    one.delete("/k", None).await.unwrap();
    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Delete { key: "/k".into() }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_deliver_changes_at_or_below_the_key_in_order() {
    let server = EtcdServer::start().await;
    let c = client(&server.endpoint(), "/sluice").await;
    c.create("/w", vec![]).await.unwrap();
    let mut watch = c.watch("/w").await.unwrap();

    c.create("/wx", vec![]).await.unwrap(); // a sibling sharing the prefix: not seen
    let v1 = c.create("/w/a", b"1".to_vec()).await.unwrap();
    let v2 = c.set("/w/a", b"2".to_vec(), Some(v1)).await.unwrap();
    let v3 = c.set("/w", b"top".to_vec(), None).await.unwrap();
    c.delete("/w", None).await.unwrap();

    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Put {
            key: "/w/a".into(),
            value: b"1".to_vec(),
            version: v1
        }
    );
    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Put {
            key: "/w/a".into(),
            value: b"2".to_vec(),
            version: v2
        }
    );
    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Put {
            key: "/w".into(),
            value: b"top".to_vec(),
            version: v3
        }
    );
    let mut deleted = vec![next(&mut watch).await, next(&mut watch).await];
    deleted.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        deleted,
        [
            WatchEvent::Delete { key: "/w".into() },
            WatchEvent::Delete { key: "/w/a".into() }
        ]
    );

    // Closing ends the watch.
    c.close().await.unwrap();
    assert_eq!(
        tokio::time::timeout(PATIENCE, watch.next()).await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_watch_queue_gives_one_resync() {
    let server = EtcdServer::start().await;
    let c = client(&server.endpoint(), "/sluice").await;
    let mut watch = c.watch("/q").await.unwrap();
    // Unread, the queue fills; 64 keys per transaction keeps this quick.
    let batches = WATCH_QUEUE / 64 + 2;
    for batch in 0..batches {
        let ops = (0..64)
            .map(|i| Op::Create {
                key: format!("/q/{batch}-{i}"),
                value: vec![],
                ephemeral: false,
            })
            .collect();
        c.transact(ops).await.unwrap();
    }
    let mut puts = 0;
    loop {
        match next(&mut watch).await {
            WatchEvent::Put { .. } => puts += 1,
            WatchEvent::Resync => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(puts <= WATCH_QUEUE, "{puts} events queued");
    // After the Resync the watch goes on.
    c.create("/q/after", vec![]).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "no event after the Resync");
        if put("/q/after")(&next(&mut watch).await) {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_keys_go_with_the_session() {
    let server = EtcdServer::start().await;
    let a = client(&server.endpoint(), "/sluice").await;
    let b = client(&server.endpoint(), "/sluice").await;
    let v = a.create_ephemeral("/live/a", b"a".to_vec()).await.unwrap();
    // A Set keeps the key bound to the session.
    a.set("/live/a", b"a2".to_vec(), Some(v)).await.unwrap();
    assert!(b.get("/live/a").await.unwrap().is_some());
    let mut watch = b.watch("/live").await.unwrap();
    a.close().await.unwrap();
    // Closing revokes the lease: the key goes at once, not after the TTL.
    assert_eq!(
        next(&mut watch).await,
        WatchEvent::Delete {
            key: "/live/a".into()
        }
    );
    assert!(b.get("/live/a").await.unwrap().is_none());
    assert!(
        b.get("/live").await.unwrap().is_some(),
        "the parent is persistent"
    );
    assert!(matches!(
        a.create_ephemeral("/live/again", vec![]).await,
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoints_fail_within_the_connect_timeout() {
    // Nothing listens on one; the other accepts connections and never answers.
    let refused = format!("127.0.0.1:{}", support::free_port());
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = silent.local_addr().unwrap().to_string();
    for endpoints in [
        vec![refused.clone()],
        vec![silent.clone()],
        vec![refused.clone(), silent.clone()],
    ] {
        let mut config = config(&endpoints[0], "/sluice", Duration::from_secs(2));
        config.endpoints = endpoints.clone();
        config.connect_timeout = Duration::from_secs(1);
        let started = Instant::now();
        let result = EtcdClient::connect(&config).await;
        let took = started.elapsed();
        match result {
            Err(Error::Unreachable {
                endpoints: named,
                reason,
            }) => {
                for e in &endpoints {
                    assert!(named.contains(e.as_str()), "{named} names {e} ({reason})");
                }
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cut_off_past_its_ttl_expires() {
    let server = EtcdServer::start().await;
    let proxy = Proxy::start(server.addr()).await;
    let ttl = Duration::from_secs(2);
    let a = Arc::new(client_with_ttl(&proxy.endpoint(), "/sluice", ttl).await);
    let b = client(&server.endpoint(), "/sluice").await;
    a.create_ephemeral("/brokers/ids/1", b"a".to_vec())
        .await
        .unwrap();
    let mut a_watch = a.watch("/brokers").await.unwrap();
    assert!(b.get("/brokers/ids/1").await.unwrap().is_some());

    let cut_at = Instant::now();
    proxy.cut();
    wait_for_state(&a, SessionState::Suspended).await;
    wait_for_state(&a, SessionState::Expired).await;
    assert!(
        // The last keep-alive went out up to TTL/3 before the cut.
        cut_at.elapsed() >= ttl / 2,
        "expired after {:?}",
        cut_at.elapsed()
    );
    eventually(PATIENCE, "the ephemeral key to go", || async {
        matches!(b.get("/brokers/ids/1").await, Ok(None))
    })
    .await;

    // The client is dead even once the network is back.
    proxy.restore();
    assert!(matches!(
        a.get("/brokers/ids/1").await,
        Err(Error::SessionExpired)
    ));
    assert!(matches!(
        a.create("/x", vec![]).await,
        Err(Error::SessionExpired)
    ));
    assert!(matches!(a.watch("/").await, Err(Error::SessionExpired)));
    assert_eq!(
        tokio::time::timeout(PATIENCE, a_watch.next())
            .await
            .unwrap(),
        None,
        "the watch ends"
    );
    assert_eq!(*a.session_state().borrow(), SessionState::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_cut_only_suspends_and_the_watch_resyncs() {
    let server = EtcdServer::start().await;
    let proxy = Proxy::start(server.addr()).await;
    let a = client_with_ttl(&proxy.endpoint(), "/sluice", LONG_TTL).await;
    let b = client(&server.endpoint(), "/sluice").await;
    a.create_ephemeral("/e", vec![]).await.unwrap();
    a.create("/r", vec![]).await.unwrap();
    let mut watch = a.watch("/r").await.unwrap();
    b.create("/r/before", vec![]).await.unwrap();
    assert!(put("/r/before")(&next(&mut watch).await));

    proxy.cut();
    wait_for_state(&a, SessionState::Suspended).await;
    b.create("/r/during", b"d".to_vec()).await.unwrap();
    proxy.restore();
    wait_for_state(&a, SessionState::Connected).await;
    // After the reconnect: a Resync, then a re-read finds what changed meanwhile, then
    // the changes after it (nothing older is replayed).
    assert_eq!(next(&mut watch).await, WatchEvent::Resync);
    assert_eq!(a.get("/r/during").await.unwrap().unwrap().value, b"d");
    b.create("/r/after", vec![]).await.unwrap();
    assert!(put("/r/after")(&next(&mut watch).await));
    assert!(
        b.get("/e").await.unwrap().is_some(),
        "the session outlived the cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_rides_out_a_server_restart() {
    let mut server = EtcdServer::start().await;
    let a = client_with_ttl(&server.endpoint(), "/sluice", LONG_TTL).await;
    a.create_ephemeral("/brokers/ids/1", b"a".to_vec())
        .await
        .unwrap();
    let data = a.create("/data", b"kept".to_vec()).await.unwrap();
    a.create("/r", vec![]).await.unwrap();
    let mut watch = a.watch("/r").await.unwrap();

    server.kill9().await;
    wait_for_state(&a, SessionState::Suspended).await;
    assert!(a.get("/data").await.unwrap_err().is_retriable());
    server.restart().await;
    // A change made before this client is back.
    let b = client(&server.endpoint(), "/sluice").await;
    b.create("/r/while-away", b"w".to_vec()).await.unwrap();
    wait_for_state(&a, SessionState::Connected).await;

    let got = a.get("/data").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (&b"kept"[..], data));
    assert!(
        a.get("/brokers/ids/1").await.unwrap().is_some(),
        "the session survived the restart"
    );
    assert_eq!(next(&mut watch).await, WatchEvent::Resync);
    assert_eq!(a.get("/r/while-away").await.unwrap().unwrap().value, b"w");
    // The watch may have come back before that change, and then delivers it too.
    b.create("/r/after", vec![]).await.unwrap();
    loop {
        match next(&mut watch).await {
            e if put("/r/after")(&e) => break,
            e => assert!(put("/r/while-away")(&e), "unexpected {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_cut_off_across_a_compaction_resyncs() {
    let server = EtcdServer::start().await;
    let proxy = Proxy::start(server.addr()).await;
    let a = client_with_ttl(&proxy.endpoint(), "/sluice", LONG_TTL).await;
    let b = client(&server.endpoint(), "/sluice").await;
    a.create("/c", vec![]).await.unwrap();
    let mut watch = a.watch("/c").await.unwrap();
    b.create("/c/first", vec![]).await.unwrap();
    assert!(put("/c/first")(&next(&mut watch).await));

    proxy.cut();
    wait_for_state(&a, SessionState::Suspended).await;
    b.create("/c/lost", vec![]).await.unwrap();
    b.set("/c/lost", vec![1], None).await.unwrap();
    server.compact(server.revision().await).await;
    proxy.restore();

    assert_eq!(next(&mut watch).await, WatchEvent::Resync);
    b.create("/c/after", vec![]).await.unwrap();
    assert!(put("/c/after")(&next(&mut watch).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_hands_over_when_the_leader_closes() {
    let server = EtcdServer::start().await;
    let a: Arc<dyn Coordination> = Arc::new(client(&server.endpoint(), "/sluice").await);
    let b: Arc<dyn Coordination> = Arc::new(client(&server.endpoint(), "/sluice").await);
    let ea = Election::new(Arc::clone(&a), "/controller", "/controller_epoch").unwrap();
    let eb = Election::new(Arc::clone(&b), "/controller", "/controller_epoch").unwrap();

    let mut first = ea.campaign(b"a".to_vec()).await.unwrap();
    let waiting = tokio::spawn(async move { eb.campaign(b"b".to_vec()).await });
    // The leader's guard fences its writes.
    a.transact(vec![
        first.guard(),
        Op::Create {
            key: "/by-a".into(),
            value: vec![],
            ephemeral: false,
        },
    ])
    .await
    .unwrap();
    a.close().await.unwrap();
    tokio::time::timeout(PATIENCE, first.lost())
        .await
        .expect("leadership lost");

    let second = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("elected in time")
        .unwrap()
        .unwrap();
    assert!(second.epoch() > first.epoch());
    let stale = b
        .transact(vec![
            first.guard(),
            Op::Create {
                key: "/by-old".into(),
                value: vec![],
                ephemeral: false,
            },
        ])
        .await;
    assert_eq!(conflict_of(stale).0, 0);
    b.transact(vec![
        second.guard(),
        Op::Create {
            key: "/by-b".into(),
            value: vec![],
            ephemeral: false,
        },
    ])
    .await
    .unwrap();
}
