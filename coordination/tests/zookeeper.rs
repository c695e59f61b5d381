//! ZooKeeper-specific behaviour of [`ZkClient`] against a real server: chroots, connect
//! failures, session expiry and server restarts, ZooKeeper's limits and quirks — plus
//! basic CRUD, transaction and watch checks (the shared conformance suite covers the
//! trait's semantics for every backend).
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The harness in `support` is `pub` for every test crate; here it is private.
#![allow(unreachable_pub)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_coordination::election::Election;
use sluice_coordination::zookeeper::ZkClient;
use sluice_coordination::{
    Backend, ConflictKind, Coordination, CoordinationConfig, Error, Op, OpResult, SessionState,
    Watch, WatchEvent, WATCH_QUEUE,
};
use support::eventually;
use support::proxy::Proxy;
use support::zookeeper::ZkServer;

const SESSION: Duration = Duration::from_secs(2);
const PATIENCE: Duration = Duration::from_secs(20);

fn config(endpoint: &str, root: &str, session: Duration) -> CoordinationConfig {
    CoordinationConfig {
        endpoints: vec![endpoint.to_owned()],
        root: root.to_owned(),
        session_timeout: session,
        connect_timeout: Duration::from_secs(10),
        ..CoordinationConfig::new(Backend::ZooKeeper)
    }
}

async fn client(server: &ZkServer, root: &str) -> ZkClient {
    ZkClient::connect(&config(&server.endpoint(), root, SESSION))
        .await
        .unwrap()
}

fn conflict(r: Result<impl std::fmt::Debug, Error>) -> (usize, ConflictKind) {
    match r {
        Err(Error::Conflict { index, kind, .. }) => (index, kind),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn next_event(watch: &mut Watch) -> WatchEvent {
    tokio::time::timeout(PATIENCE, watch.next())
        .await
        .expect("an event in time")
        .expect("watch open")
}

fn put(key: &str, value: &[u8], version: i64) -> WatchEvent {
    WatchEvent::Put {
        key: key.into(),
        value: value.to_vec(),
        version,
    }
}

fn delete(key: &str) -> WatchEvent {
    WatchEvent::Delete { key: key.into() }
}

async fn wait_for_state(
    state: &mut tokio::sync::watch::Receiver<SessionState>,
    want: SessionState,
) {
    eventually(PATIENCE, &format!("session state {want:?}"), || {
        let now = *state.borrow_and_update();
        async move { now == want }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_versions_and_hierarchy() {
    let server = ZkServer::start().await;
    let c = client(&server, "/crud").await;
    assert_eq!(c.backend(), "zookeeper");

    // Versions are ZooKeeper's data versions: 0 on create, +1 per write.
    assert_eq!(
        c.create("/a/b/c", b"1".to_vec()).await.unwrap(),
        0,
        "parents are created on the way"
    );
    assert_eq!(
        c.get("/a").await.unwrap().unwrap().value,
        b"",
        "parents are empty"
    );
    assert_eq!(c.set("/a/b/c", b"2".to_vec(), Some(0)).await.unwrap(), 1);
    assert_eq!(c.set("/a/b/c", b"3".to_vec(), None).await.unwrap(), 2);
    assert_eq!(
        conflict(c.set("/a/b/c", b"x".to_vec(), Some(1)).await),
        (0, ConflictKind::VersionMismatch)
    );
    assert_eq!(
        conflict(c.set("/a/b/c", b"x".to_vec(), Some(-1)).await),
        (0, ConflictKind::VersionMismatch),
        "-1 is not 'any'"
    );
    assert_eq!(
        conflict(c.create("/a/b/c", vec![]).await),
        (0, ConflictKind::Exists)
    );
    assert_eq!(
        conflict(c.set("/nope", vec![], None).await),
        (0, ConflictKind::Missing)
    );
    assert_eq!(
        conflict(c.delete("/nope", None).await),
        (0, ConflictKind::Missing)
    );
    assert_eq!(c.put("/a/b/c", b"4".to_vec()).await.unwrap(), 3);
    assert_eq!(c.put("/fresh", b"f".to_vec()).await.unwrap(), 0);
    let got = c.get("/a/b/c").await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.version), (&b"4"[..], 3));
    assert!(c.get("/missing").await.unwrap().is_none());

    for name in ["z", "m", "a"] {
        c.create(&format!("/list/{name}"), name.as_bytes().to_vec())
            .await
            .unwrap();
    }
    let children = c.children("/list").await.unwrap();
    let names: Vec<&str> = children.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "m", "z"]);
    assert_eq!(children[1].1.value, b"m");
    assert!(c.children("/missing").await.unwrap().is_empty());

    // Recursive delete, with the version checked on the top key only.
    assert_eq!(
        conflict(c.delete("/a", Some(5)).await),
        (0, ConflictKind::VersionMismatch)
    );
    assert!(
        c.get("/a/b/c").await.unwrap().is_some(),
        "a failed delete deletes nothing"
    );
    c.delete("/a", Some(0)).await.unwrap();
    assert!(c.get("/a/b/c").await.unwrap().is_none() && c.get("/a").await.unwrap().is_none());

    // The root itself: it stays, its children go.
    c.delete("/", None).await.unwrap();
    assert!(c.children("/").await.unwrap().is_empty());
    assert!(c.get("/").await.unwrap().is_some(), "the root stays");
    assert_eq!(
        conflict(c.create("/", vec![]).await).1,
        ConflictKind::Exists
    );

    assert!(matches!(c.get("relative").await, Err(Error::InvalidKey(_))));
    assert!(matches!(
        c.create("/bad\u{1}char", vec![]).await,
        Err(Error::InvalidKey(_))
    ));
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_all_or_nothing_and_name_the_failing_op() {
    let server = ZkServer::start().await;
    let c = client(&server, "/txn").await;
    let epoch = c.create("/epoch", vec![1]).await.unwrap();
    let state = c.create("/state", b"s0".to_vec()).await.unwrap();

    let r = c
        .transact(vec![
            Op::Create {
                key: "/t/new".into(),
                value: vec![],
                ephemeral: false,
            },
            Op::Check {
                key: "/epoch".into(),
                version: epoch + 1,
            },
            Op::Set {
                key: "/state".into(),
                value: b"s1".to_vec(),
                version: Some(state),
            },
        ])
        .await;
    assert_eq!(conflict(r), (1, ConflictKind::VersionMismatch));
    assert!(c.get("/t/new").await.unwrap().is_none(), "nothing applied");
    assert_eq!(c.get("/state").await.unwrap().unwrap().value, b"s0");

    let r = c.transact(vec![
        Op::Check {
            key: "/epoch".into(),
            version: epoch,
        },
        Op::Check {
            key: "/gone".into(),
            version: 0,
        },
    ]);
    assert_eq!(conflict(r.await), (1, ConflictKind::Missing));

    let results = c
        .transact(vec![
            Op::Check {
                key: "/epoch".into(),
                version: epoch,
            },
            Op::Set {
                key: "/state".into(),
                value: b"s1".to_vec(),
                version: Some(state),
            },
            Op::Create {
                key: "/t/deep/new".into(),
                value: b"n".to_vec(),
                ephemeral: false,
            },
            Op::Delete {
                key: "/epoch".into(),
                version: None,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        results,
        [
            OpResult::Checked,
            OpResult::Written(1),
            OpResult::Written(0),
            OpResult::Deleted
        ]
    );

    // A transaction sees its own earlier steps: create below a key it deletes, delete a
    // subtree holding a key it just created, create under a parent it created.
    c.create("/tree/old/leaf", vec![]).await.unwrap();
    let results = c
        .transact(vec![
            Op::Create {
                key: "/tree/added".into(),
                value: vec![],
                ephemeral: false,
            },
            Op::Delete {
                key: "/tree".into(),
                version: None,
            },
            Op::Create {
                key: "/tree/again/x".into(),
                value: b"x".to_vec(),
                ephemeral: false,
            },
            Op::Create {
                key: "/p".into(),
                value: b"p".to_vec(),
                ephemeral: false,
            },
            Op::Create {
                key: "/p/q".into(),
                value: b"q".to_vec(),
                ephemeral: false,
            },
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 5);
    assert!(
        c.get("/tree/old").await.unwrap().is_none()
            && c.get("/tree/added").await.unwrap().is_none()
    );
    assert_eq!(c.get("/tree/again/x").await.unwrap().unwrap().value, b"x");
    assert_eq!(
        c.get("/p").await.unwrap().unwrap().value,
        b"p",
        "an explicit create is not a parent"
    );

    // Creating a parent after its child: the child's parent is made empty first, so the
    // explicit create then finds it.
    let r = c
        .transact(vec![
            Op::Create {
                key: "/late/child".into(),
                value: vec![],
                ephemeral: false,
            },
            Op::Create {
                key: "/late".into(),
                value: b"l".to_vec(),
                ephemeral: false,
            },
        ])
        .await;
    assert_eq!(conflict(r), (1, ConflictKind::Exists));

    assert!(c.transact(vec![]).await.unwrap().is_empty());
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_keys_cannot_have_children() {
    let server = ZkServer::start().await;
    let c = client(&server, "/eph").await;
    c.create_ephemeral("/e", vec![]).await.unwrap();
    match c.create("/e/child", vec![]).await {
        Err(Error::Backend(msg)) => assert!(msg.contains("ephemeral"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    match c.create("/e/deeper/child", vec![]).await {
        Err(Error::Backend(msg)) => assert!(msg.contains("ephemeral"), "{msg}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(c.children("/e").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_see_every_change_in_order_even_before_the_key_exists() {
    let server = ZkServer::start().await;
    let (c, w) = (client(&server, "/w").await, client(&server, "/w").await);
    // ZooKeeper accepts a persistent watch on a path that does not exist yet.
    let mut watch = w.watch("/topics").await.unwrap();
    c.create("/topics/a/0", b"a0".to_vec()).await.unwrap();
    c.set("/topics/a/0", b"a0'".to_vec(), None).await.unwrap();
    c.create("/topics/b", b"b".to_vec()).await.unwrap();
    c.create("/topicsx", b"not below".to_vec()).await.unwrap();
    c.delete("/topics", None).await.unwrap();
    c.create("/topics", b"back".to_vec()).await.unwrap();
    let want = [
        put("/topics", b"", 0),
        put("/topics/a", b"", 0),
        put("/topics/a/0", b"a0'", 1),
        put("/topics/a/0", b"a0'", 1),
        put("/topics/b", b"b", 0),
    ];
    // The value is read when the notification arrives, so it may be newer than the change
    // (the first put of /topics/a/0 may already read a0'); versions and order are exact
    // up to that.
    let mut got = Vec::new();
    while got.len() < want.len() {
        got.push(next_event(&mut watch).await);
    }
    for (g, w) in got.iter().zip(&want) {
        match (g, w) {
            (WatchEvent::Put { key: gk, .. }, WatchEvent::Put { key: wk, .. }) => {
                assert_eq!(gk, wk, "{got:?}")
            }
            _ => panic!("{got:?}"),
        }
    }
    assert_eq!(got[4], want[4]);
    // The recursive delete: bottom-up, one Delete per key; then the re-created key.
    let mut deletes = Vec::new();
    for _ in 0..4 {
        match next_event(&mut watch).await {
            WatchEvent::Delete { key } => deletes.push(key),
            other => panic!("expected a delete, got {other:?}"),
        }
    }
    assert_eq!(
        deletes.last().map(String::as_str),
        Some("/topics"),
        "{deletes:?}"
    );
    assert!(
        deletes.iter().position(|k| k == "/topics/a/0")
            < deletes.iter().position(|k| k == "/topics/a")
    );
    assert_eq!(next_event(&mut watch).await, put("/topics", b"back", 0));

    // A key deleted before its notification is read: no Put, just the Delete.
    c.create("/topics/brief", vec![]).await.unwrap();
    c.delete("/topics/brief", None).await.unwrap();
    let mut last = next_event(&mut watch).await;
    if matches!(last, WatchEvent::Put { .. }) {
        last = next_event(&mut watch).await;
    }
    assert_eq!(last, delete("/topics/brief"));

    // Two watches on one key in one session, one dropped: the other keeps going.
    let mut second = w.watch("/topics").await.unwrap();
    drop(watch);
    c.set("/topics", b"again".to_vec(), None).await.unwrap();
    assert_eq!(next_event(&mut second).await, put("/topics", b"again", 1));

    // Watching the root sees everything below it, with keys as callers name them.
    let mut root = w.watch("/").await.unwrap();
    c.create("/elsewhere", b"e".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut root).await, put("/elsewhere", b"e", 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_changes_is_delivered_whole_or_followed_by_a_resync() {
    let server = ZkServer::start().await;
    let (c, w) = (
        client(&server, "/flood").await,
        client(&server, "/flood").await,
    );
    let mut watch = w.watch("/k").await.unwrap();
    let mut control = w.watch("/k").await.unwrap();
    let total = 3 * WATCH_QUEUE;
    let ops: Vec<Op> = (0..total)
        .map(|i| Op::Create {
            key: format!("/k/{i:05}"),
            value: vec![],
            ephemeral: false,
        })
        .collect();
    for chunk in sluice_coordination::keys::chunk(ops, None, &c.limits()).unwrap() {
        c.transact(chunk).await.unwrap();
    }
    // Nobody reads `watch` until `control`, fed from the same notifications, has seen the
    // last key: by then `watch`'s queue has most likely filled and dropped the rest. (That
    // is not certain; the queue's behaviour is unit-tested. Here: either everything
    // arrives, in order, or a Resync says something did not.)
    let last = format!("/k/{:05}", total - 1);
    loop {
        match next_event(&mut control).await {
            WatchEvent::Put { key, .. } if key == last => break,
            WatchEvent::Put { .. } | WatchEvent::Resync => {}
            WatchEvent::Delete { key } => panic!("unexpected delete of {key}"),
        }
    }
    let mut want =
        std::iter::once("/k".to_string()).chain((0..total).map(|i| format!("/k/{i:05}")));
    let mut puts = 0;
    let resynced = loop {
        match next_event(&mut watch).await {
            WatchEvent::Put { key, .. } => {
                assert_eq!(Some(key), want.next(), "in order");
                puts += 1;
                if puts == total + 1 {
                    break false;
                }
            }
            WatchEvent::Resync => break true,
            WatchEvent::Delete { key } => panic!("unexpected delete of {key}"),
        }
    };
    assert!(
        puts <= WATCH_QUEUE || !resynced,
        "{puts} events before the resync"
    );
    eprintln!(
        "flood: {puts} of {} puts, then resync: {resynced}",
        total + 1
    );
    // The watch goes on.
    c.create("/k/after", vec![]).await.unwrap();
    loop {
        if let WatchEvent::Put { key, .. } = next_event(&mut watch).await {
            if key == "/k/after" {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roots_are_isolated() {
    let server = ZkServer::start().await;
    let a = client(&server, "/tenants/a").await;
    let b = client(&server, "/tenants/b").await;
    let top = client(&server, "/").await;
    let mut b_watch = b.watch("/").await.unwrap();

    a.create("/brokers/ids/1", b"a1".to_vec()).await.unwrap();
    b.create("/brokers/ids/2", b"b2".to_vec()).await.unwrap();
    assert!(b.get("/brokers/ids/1").await.unwrap().is_none());
    let names = |v: Vec<(String, sluice_coordination::Versioned)>| {
        v.into_iter().map(|(n, _)| n).collect::<Vec<_>>()
    };
    assert_eq!(names(a.children("/brokers/ids").await.unwrap()), ["1"]);
    assert_eq!(names(b.children("/brokers/ids").await.unwrap()), ["2"]);
    assert_eq!(
        names(top.children("/tenants").await.unwrap()),
        ["a", "b"],
        "roots are created with their ancestors"
    );
    assert_eq!(
        top.get("/tenants/a/brokers/ids/1")
            .await
            .unwrap()
            .unwrap()
            .value,
        b"a1"
    );

    // b's watch on its root sees b's writes only, named without the root.
    let mut keys = Vec::new();
    for _ in 0..3 {
        match next_event(&mut b_watch).await {
            WatchEvent::Put { key, .. } => keys.push(key),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(keys, ["/brokers", "/brokers/ids", "/brokers/ids/2"]);
    b.create("/marker", vec![]).await.unwrap();
    assert_eq!(
        next_event(&mut b_watch).await,
        put("/marker", b"", 0),
        "nothing of a's arrived in between"
    );

    // Deleting a's whole root content leaves b alone.
    a.delete("/", None).await.unwrap();
    assert!(a.children("/").await.unwrap().is_empty());
    assert!(b.get("/brokers/ids/2").await.unwrap().is_some());

    // Without a root, deleting everything spares ZooKeeper's own /zookeeper.
    top.delete("/", None).await.unwrap();
    assert_eq!(names(top.children("/").await.unwrap()), ["zookeeper"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_fails_within_the_connect_timeout() {
    let port = support::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let mut cfg = config(&endpoint, "/x", SESSION);
    cfg.connect_timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let r = ZkClient::connect(&cfg).await;
    let took = started.elapsed();
    match r {
        Err(Error::Unreachable { endpoints, reason }) => {
            assert!(endpoints.contains(&endpoint), "{endpoints}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(3),
        "took {took:?}"
    );

    // Two endpoints are joined; the error names both.
    cfg.endpoints
        .push(format!("127.0.0.1:{}", support::free_port()));
    cfg.connect_timeout = Duration::from_millis(300);
    match ZkClient::connect(&cfg).await {
        Err(e @ Error::Unreachable { .. }) => {
            assert!(e.to_string().contains(&cfg.endpoints.join(",")), "{e}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_longer_than_the_session_expires_it() {
    let server = ZkServer::start().await;
    let proxy = Proxy::start(server.addr()).await;
    let a = ZkClient::connect(&config(&proxy.endpoint(), "/expiry", SESSION))
        .await
        .unwrap();
    let b = client(&server, "/expiry").await;
    let mut state = a.session_state();
    assert_eq!(*state.borrow(), SessionState::Connected);
    a.create_ephemeral("/brokers/ids/1", b"a".to_vec())
        .await
        .unwrap();
    a.create("/kept", vec![]).await.unwrap();
    let mut a_watch = a.watch("/").await.unwrap();
    let mut b_watch = b.watch("/brokers/ids").await.unwrap();

    let cut_at = Instant::now();
    proxy.cut();
    wait_for_state(&mut state, SessionState::Suspended).await;
    eventually(PATIENCE, "the ephemeral key gone", || async {
        b.get("/brokers/ids/1").await.unwrap().is_none()
    })
    .await;
    assert_eq!(next_event(&mut b_watch).await, delete("/brokers/ids/1"));
    wait_for_state(&mut state, SessionState::Expired).await;
    let took = cut_at.elapsed();
    assert!(took < SESSION * 3, "expiry took {took:?}");

    // The client is dead for good, even with the network back.
    proxy.restore();
    assert!(matches!(a.get("/kept").await, Err(Error::SessionExpired)));
    assert!(matches!(
        a.create("/more", vec![]).await,
        Err(Error::SessionExpired)
    ));
    let end = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = a_watch.next().await {
            assert_eq!(
                event,
                WatchEvent::Resync,
                "nothing but a resync before the end"
            );
        }
    });
    end.await.expect("the expired session's watch ends");
    assert!(
        b.get("/kept").await.unwrap().is_some(),
        "persistent keys stay"
    );
    assert!(matches!(a.watch("/").await, Err(Error::SessionExpired)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_suspends_then_resumes_the_session() {
    let mut server = ZkServer::start().await;
    let c = ZkClient::connect(&config(
        &server.endpoint(),
        "/restart",
        Duration::from_secs(4),
    ))
    .await
    .unwrap();
    let mut state = c.session_state();
    c.create("/durable", b"kept".to_vec()).await.unwrap();
    c.create_ephemeral("/mine", vec![]).await.unwrap();
    let mut watch = c.watch("/").await.unwrap();

    server.kill9().await;
    wait_for_state(&mut state, SessionState::Suspended).await;
    server.restart().await;
    wait_for_state(&mut state, SessionState::Connected).await;

    assert_eq!(next_event(&mut watch).await, WatchEvent::Resync);
    assert_eq!(c.get("/durable").await.unwrap().unwrap().value, b"kept");
    assert!(
        c.get("/mine").await.unwrap().is_some(),
        "the session, and so its ephemeral key, survived"
    );
    // The watch still works after the reconnect.
    c.set("/durable", b"again".to_vec(), None).await.unwrap();
    assert_eq!(next_event(&mut watch).await, put("/durable", b"again", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_the_session_at_once() {
    let server = ZkServer::start().await;
    let (a, b) = (
        client(&server, "/close").await,
        client(&server, "/close").await,
    );
    a.create_ephemeral("/e", vec![]).await.unwrap();
    let mut watch = a.watch("/").await.unwrap();
    let state = a.session_state();
    a.close().await.unwrap();
    // No polling: close returns once the server has ended the session.
    assert!(
        b.get("/e").await.unwrap().is_none(),
        "ephemeral key gone when close returns"
    );
    assert_eq!(*state.borrow(), SessionState::Expired);
    // The watch ends, after at most the deletion of the session's ephemeral key.
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = watch.next().await {
            assert_eq!(event, delete("/e"));
        }
    })
    .await
    .expect("watch ended");
    assert!(matches!(a.get("/e").await, Err(Error::Closed)));
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_stay_within_jute_maxbuffer() {
    let server = ZkServer::start().await;
    let c = client(&server, "/limits").await;
    let limits = c.limits();
    assert_eq!(limits.max_ops_per_txn, 1000);

    // The largest value goes through; one byte more is refused before sending.
    c.create("/big", vec![7; limits.max_value_bytes])
        .await
        .unwrap();
    assert_eq!(
        c.get("/big").await.unwrap().unwrap().value.len(),
        limits.max_value_bytes
    );
    match c
        .set("/big", vec![7; limits.max_value_bytes + 1], None)
        .await
    {
        Err(Error::TooLarge { what: "value", .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // A transaction at both limits at once goes through too.
    let per_op = limits.max_txn_bytes / limits.max_ops_per_txn;
    let ops: Vec<Op> = (0..limits.max_ops_per_txn)
        .map(|i| {
            let key = format!("/full/{i:04}");
            let value = vec![1; per_op - key.len()];
            Op::Create {
                key,
                value,
                ephemeral: false,
            }
        })
        .collect();
    c.transact(ops).await.unwrap();
    assert_eq!(
        c.children("/full").await.unwrap().len(),
        limits.max_ops_per_txn
    );
    let too_many = (0..=limits.max_ops_per_txn)
        .map(|i| Op::Check {
            key: format!("/{i}"),
            version: 0,
        })
        .collect();
    assert!(matches!(
        c.transact(too_many).await,
        Err(Error::TooLarge {
            what: "operation count",
            ..
        })
    ));

    // A recursive delete whose expansion would not fit is refused, not sent. (Each key
    // has a parent of its own: one transaction creates them all.)
    let long = "x".repeat(3500);
    let ops: Vec<Op> = (0..300)
        .map(|i| Op::Create {
            key: format!("/wide/{i:03}/{long}"),
            value: vec![],
            ephemeral: false,
        })
        .collect();
    for chunk in sluice_coordination::keys::chunk(ops, None, &limits).unwrap() {
        c.transact(chunk).await.unwrap();
    }
    match c.delete("/wide", None).await {
        Err(Error::TooLarge {
            what: "transaction request",
            ..
        }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(
        c.children("/wide").await.unwrap().len(),
        300,
        "nothing deleted"
    );
    assert_eq!(
        *c.session_state().borrow(),
        SessionState::Connected,
        "the connection survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_fails_over_when_the_leader_closes() {
    let server = ZkServer::start().await;
    let first: Arc<dyn Coordination> = Arc::new(client(&server, "/elect").await);
    let second: Arc<dyn Coordination> = Arc::new(client(&server, "/elect").await);
    let e1 = Election::new(Arc::clone(&first), "/controller", "/controller_epoch").unwrap();
    let e2 = Election::new(Arc::clone(&second), "/controller", "/controller_epoch").unwrap();
    let leader = e1.campaign(vec![1]).await.unwrap();
    assert_eq!(leader.epoch(), 1);
    let waiting = tokio::spawn(async move { e2.campaign(vec![2]).await.map(|l| l.epoch()) });
    first.close().await.unwrap();
    let epoch = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("failover")
        .unwrap()
        .unwrap();
    assert_eq!(epoch, 2);
    let observer = Election::new(second, "/controller", "/controller_epoch").unwrap();
    assert_eq!(observer.leader().await.unwrap().unwrap().value, vec![2]);
}
