//! The controller and the metadata cache against the embedded coordination backend:
//! several clients of one in-process store are several brokers. Every broker's client is
//! wrapped so that it reports — and enforces — etcd's request limits (128 operations per
//! transaction), so chunking is exercised as on a real backend.
//!
//! Nothing waits by sleeping: conditions are polled with a deadline, or awaited on the
//! cache's change notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use sluice_actors::controller::{
    ActiveController, Controller, ControllerConfig, CreatePartitions, CreateTopics, CreatedTopic,
    DeleteTopics, IsActive, NewPartitions, NewTopic, TopicResults,
};
use sluice_actors::metadata::{
    self, paths, records, BrokerRegistration, ClusterView, CreateTopicRequestRecord, MetadataCache,
    PartitionState, TopicAssignment, TopicConfigRecord, NO_LEADER,
};
use sluice_actors::Error;
use sluice_coordination::election::Election;
use sluice_coordination::embedded::{EmbeddedClient, EmbeddedStore};
use sluice_coordination::{Coordination, Limits, Op, OpResult, SessionState, Versioned, Watch};
use tokio::sync::watch;
use tokio::time::Instant;

const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);
const ROOT: &str = "/sluice";

// -------------------------------------------------------------------------------------
// A client with etcd's limits.
// -------------------------------------------------------------------------------------

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type CoordResult<T> = sluice_coordination::Result<T>;

/// An embedded client that reports and enforces a real backend's limits.
#[derive(Debug)]
struct Limited {
    inner: EmbeddedClient,
    limits: Limits,
}

/// etcd's defaults: `--max-txn-ops` 128, ~1.5 MiB per request.
const ETCD_LIKE: Limits = Limits {
    max_ops_per_txn: 128,
    max_txn_bytes: 1536 * 1024,
    max_value_bytes: 1 << 20,
};

impl Coordination for Limited {
    fn backend(&self) -> &'static str {
        "embedded (etcd limits)"
    }
    fn limits(&self) -> Limits {
        self.limits
    }
    fn session_state(&self) -> watch::Receiver<SessionState> {
        self.inner.session_state()
    }
    fn get<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, CoordResult<Option<Versioned>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.get(key)
    }
    fn children<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, CoordResult<Vec<(String, Versioned)>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.children(key)
    }
    fn transact<'life0, 'async_trait>(
        &'life0 self,
        ops: Vec<Op>,
    ) -> BoxFuture<'async_trait, CoordResult<Vec<OpResult>>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let bytes: usize = ops.iter().map(Op::size).sum();
        if ops.len() > self.limits.max_ops_per_txn || bytes > self.limits.max_txn_bytes {
            let err = sluice_coordination::Error::TooLarge {
                what: "transaction (test limits)",
                size: ops.len().max(bytes),
                limit: self.limits.max_ops_per_txn,
            };
            return Box::pin(async move { Err(err) });
        }
        self.inner.transact(ops)
    }
    fn watch<'life0, 'life1, 'async_trait>(
        &'life0 self,
        key: &'life1 str,
    ) -> BoxFuture<'async_trait, CoordResult<Watch>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.watch(key)
    }
    fn close<'life0, 'async_trait>(&'life0 self) -> BoxFuture<'async_trait, CoordResult<()>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.close()
    }
}

// -------------------------------------------------------------------------------------
// Brokers in one process.
// -------------------------------------------------------------------------------------

struct Broker {
    id: i32,
    session: u64,
    coord: Arc<dyn Coordination>,
    cache: MetadataCache,
    controller: Addr<Controller>,
}

fn config(id: i32) -> ControllerConfig {
    ControllerConfig {
        num_partitions: 3,
        default_replication_factor: 2,
        ..ControllerConfig::new(id)
    }
}

fn connect(store: &Arc<EmbeddedStore>) -> (Arc<dyn Coordination>, u64) {
    let inner = store.connect(ROOT, Duration::from_secs(18)).unwrap();
    let session = inner.session_id();
    let coord: Arc<dyn Coordination> = Arc::new(Limited {
        inner,
        limits: ETCD_LIKE,
    });
    (coord, session)
}

async fn register(coord: &Arc<dyn Coordination>, id: i32) {
    let registration = BrokerRegistration {
        id,
        host: "127.0.0.1".into(),
        port: 9090 + id as u16,
        rack: None,
        incarnation: metadata::ids::random_u64(),
    };
    metadata::register_broker(coord, &registration, Duration::from_secs(5))
        .await
        .unwrap();
}

/// Starts a broker as the `Broker` actor would: cluster id, registration, cache,
/// controller.
async fn start_broker(store: &Arc<EmbeddedStore>, id: i32) -> Broker {
    let (coord, session) = connect(store);
    metadata::ensure_cluster_id(&coord).await.unwrap();
    register(&coord, id).await;
    let cache = MetadataCache::start(Arc::clone(&coord)).await.unwrap();
    let controller = Controller::new(Arc::clone(&coord), cache.clone(), config(id)).start();
    Broker {
        id,
        session,
        coord,
        cache,
        controller,
    }
}

async fn cluster(n: i32) -> (Arc<EmbeddedStore>, Vec<Broker>) {
    let store = EmbeddedStore::temporary().unwrap();
    let mut brokers = Vec::new();
    for id in 1..=n {
        brokers.push(start_broker(&store, id).await);
    }
    (store, brokers)
}

/// Polls until exactly one of `brokers` is the active controller; returns its index.
async fn wait_for_controller(brokers: &[&Broker]) -> usize {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut active = Vec::new();
        for (i, b) in brokers.iter().enumerate() {
            if b.controller.send(IsActive).await.unwrap() {
                active.push(i);
            }
        }
        if let [only] = active.as_slice() {
            return *only;
        }
        assert!(Instant::now() < deadline, "controllers active: {active:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `condition` holds on every broker's cache.
async fn converge(brokers: &[&Broker], what: &str, condition: impl Fn(&ClusterView) -> bool) {
    for b in brokers {
        assert!(
            b.cache.wait_until(TIMEOUT, |v| condition(v)).await,
            "broker {}: {what}; view: {:?}",
            b.id,
            b.cache.snapshot().topics.keys().collect::<Vec<_>>()
        );
    }
}

async fn create(c: &Addr<Controller>, topics: Vec<NewTopic>) -> TopicResults<CreatedTopic> {
    c.send(CreateTopics {
        topics,
        validate_only: false,
        timeout: TIMEOUT,
    })
    .await
    .unwrap()
    .unwrap()
}

async fn create_one(c: &Addr<Controller>, topic: NewTopic) -> Result<CreatedTopic, Error> {
    create(c, vec![topic]).await.pop().unwrap().1
}

async fn assignment(coord: &Arc<dyn Coordination>, topic: &str) -> Option<TopicAssignment> {
    let key = paths::topic(topic);
    let v = coord.get(&key).await.unwrap()?;
    Some(records::decode(&key, &v.value).unwrap())
}

async fn state(coord: &Arc<dyn Coordination>, topic: &str, p: i32) -> Option<PartitionState> {
    let key = paths::partition_state(topic, p);
    let v = coord.get(&key).await.unwrap()?;
    Some(records::decode(&key, &v.value).unwrap())
}

async fn controller_epoch(coord: &Arc<dyn Coordination>) -> i64 {
    Election::new(
        Arc::clone(coord),
        paths::CONTROLLER,
        paths::CONTROLLER_EPOCH,
    )
    .unwrap()
    .current_epoch()
    .await
    .unwrap()
}

fn all(brokers: &[Broker]) -> Vec<&Broker> {
    brokers.iter().collect()
}

// -------------------------------------------------------------------------------------
// Election.
// -------------------------------------------------------------------------------------

#[actix::test]
async fn exactly_one_controller_is_elected_and_a_successor_takes_over() {
    let (store, brokers) = cluster(3).await;
    let c = wait_for_controller(&all(&brokers)).await;
    let controller_id = brokers[c].id;
    let epoch = controller_epoch(&brokers[0].coord).await;
    converge(&all(&brokers), "controller id known", |v| {
        v.controller.map(|c| (c.broker_id, c.epoch)) == Some((controller_id, epoch))
    })
    .await;
    let cluster_id = brokers[0].cache.cluster_id().unwrap();
    assert_eq!(cluster_id.len(), 22);
    assert!(brokers
        .iter()
        .all(|b| b.cache.cluster_id() == Some(cluster_id.clone())));

    // A non-controller refuses controller work.
    let other = &brokers[(c + 1) % 3];
    let refused = other
        .controller
        .send(CreateTopics {
            topics: vec![NewTopic::new("t", 1, 1)],
            validate_only: false,
            timeout: TIMEOUT,
        })
        .await
        .unwrap();
    assert!(matches!(refused, Err(Error::NotController)));

    // The controller's session expires: one of the others takes over, with a higher epoch.
    store.expire_session(brokers[c].session);
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id != controller_id).collect();
    let next = wait_for_controller(&survivors).await;
    let next_id = survivors[next].id;
    assert_ne!(next_id, controller_id);
    assert!(controller_epoch(&survivors[0].coord).await > epoch);
    converge(&survivors, "new controller id known", |v| {
        v.controller.map(|c| c.broker_id) == Some(next_id)
    })
    .await;
    assert!(!brokers[c].controller.send(IsActive).await.unwrap());
}

#[actix::test]
async fn a_deposed_controllers_guarded_writes_fail() {
    let store = EmbeddedStore::temporary().unwrap();
    let (a, _) = connect(&store);
    let (b, _) = connect(&store);
    register(&a, 1).await;
    register(&b, 2).await;
    let cache_a = MetadataCache::start(Arc::clone(&a)).await.unwrap();
    let election = |coord: &Arc<dyn Coordination>| {
        Election::new(
            Arc::clone(coord),
            paths::CONTROLLER,
            paths::CONTROLLER_EPOCH,
        )
        .unwrap()
    };
    let leadership_a = election(&a)
        .campaign(records::controller_candidate(1))
        .await
        .unwrap();
    let mut controller_a = ActiveController::new(
        Arc::clone(&a),
        cache_a,
        ControllerConfig::new(1),
        &leadership_a,
    );
    let before = controller_a
        .create_topics(vec![NewTopic::new("before", 2, 2)], false)
        .await;
    assert!(before[0].1.is_ok(), "{before:?}");

    // A is deposed without noticing: its leader key goes (as an operator deleting
    // /controller would do, or a session expiry it has not seen yet) and B wins.
    b.delete(paths::CONTROLLER, None).await.unwrap();
    let leadership_b = election(&b)
        .campaign(records::controller_candidate(2))
        .await
        .unwrap();
    assert!(leadership_b.epoch() > leadership_a.epoch());

    let after = controller_a
        .create_topics(vec![NewTopic::new("after", 2, 2)], false)
        .await;
    assert!(matches!(after[0].1, Err(Error::NotController)), "{after:?}");
    assert!(b.get(&paths::topic("after")).await.unwrap().is_none());
    let deleted = controller_a.delete_topics(vec!["before".into()]).await;
    assert!(
        matches!(deleted[0].1, Err(Error::NotController)),
        "{deleted:?}"
    );
    assert!(b.get(&paths::topic("before")).await.unwrap().is_some());
    let grown = controller_a
        .create_partitions(
            vec![NewPartitions {
                topic: "before".into(),
                new_total: 4,
                assignments: None,
            }],
            false,
        )
        .await;
    assert!(matches!(grown[0].1, Err(Error::NotController)), "{grown:?}");
    assert_eq!(assignment(&b, "before").await.unwrap().partitions.len(), 2);
}

// -------------------------------------------------------------------------------------
// Topics.
// -------------------------------------------------------------------------------------

#[actix::test]
async fn created_topics_spread_leaders_over_distinct_replicas() {
    let (_store, brokers) = cluster(3).await;
    let c = &brokers[wait_for_controller(&all(&brokers)).await];
    let mut topic = NewTopic::new("orders", 6, 3);
    topic
        .configs
        .insert("cleanup.policy".into(), "compact".into());
    let created = create_one(&c.controller, topic).await.unwrap();
    assert_eq!((created.partitions, created.replication_factor), (6, 3));

    let coord = &c.coord;
    let stored = assignment(coord, "orders").await.unwrap();
    assert_eq!(stored.topic_id, created.topic_id);
    assert_eq!(stored.partitions.len(), 6);
    let epoch = controller_epoch(coord).await;
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for (p, replicas) in stored.partitions.iter().enumerate() {
        assert_eq!(
            replicas.iter().collect::<BTreeSet<_>>().len(),
            3,
            "{replicas:?}"
        );
        let s = state(coord, "orders", p as i32).await.unwrap();
        assert_eq!(
            s,
            PartitionState {
                leader: replicas[0],
                leader_epoch: 0,
                isr: replicas.clone(),
                controller_epoch: epoch,
            }
        );
        *leaders.entry(s.leader).or_default() += 1;
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
    let config_key = paths::topic_config("orders");
    let config = coord.get(&config_key).await.unwrap().unwrap();
    let config: TopicConfigRecord = records::decode(&config_key, &config.value).unwrap();
    assert_eq!(config.configs["cleanup.policy"], "compact");

    // Every broker's cache sees the topic, its states and its config.
    converge(&all(&brokers), "orders fully visible", |v| {
        v.topics.get("orders").is_some_and(|t| t.states.len() == 6)
            && v.topic_configs.contains_key("orders")
    })
    .await;
    for b in &brokers {
        let hosted = b.cache.partitions_hosted_by(b.id);
        assert_eq!(hosted.len(), 6, "RF 3 on 3 brokers: every broker hosts all");
        assert!(hosted.iter().all(|h| h.topic_id == created.topic_id));
        assert_eq!(b.cache.topic("orders").unwrap().replicas, stored.partitions);
    }

    // Defaults: num.partitions = 3, default.replication.factor = 2 in this cluster.
    let defaults = create_one(&c.controller, NewTopic::with_defaults("defaults"))
        .await
        .unwrap();
    assert_eq!((defaults.partitions, defaults.replication_factor), (3, 2));
    // A manual assignment is taken as given.
    let mut manual = NewTopic::with_defaults("manual");
    manual.assignments = Some(vec![vec![3, 1], vec![1, 2]]);
    create_one(&c.controller, manual).await.unwrap();
    assert_eq!(
        assignment(coord, "manual").await.unwrap().partitions,
        vec![vec![3, 1], vec![1, 2]]
    );
    assert_eq!(state(coord, "manual", 0).await.unwrap().leader, 3);
    // validate_only writes nothing.
    let validated = c
        .controller
        .send(CreateTopics {
            topics: vec![NewTopic::new("dry", 2, 2)],
            validate_only: true,
            timeout: TIMEOUT,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(validated[0].1.is_ok());
    assert!(assignment(coord, "dry").await.is_none());
}

#[actix::test]
async fn invalid_topics_are_refused_as_kafka_refuses_them() {
    let (_store, brokers) = cluster(3).await;
    let c = &brokers[wait_for_controller(&all(&brokers)).await];
    create_one(&c.controller, NewTopic::new("taken", 1, 1))
        .await
        .unwrap();
    create_one(&c.controller, NewTopic::new("my.topic", 1, 1))
        .await
        .unwrap();

    let with_config = |key: &str, value: &str| {
        let mut t = NewTopic::new(&format!("configured-{key}"), 1, 1);
        t.configs.insert(key.into(), value.into());
        t
    };
    let mut both = NewTopic::new("both", 1, 1);
    both.assignments = Some(vec![vec![1]]);
    let mut unknown_broker = NewTopic::with_defaults("unknown-broker");
    unknown_broker.assignments = Some(vec![vec![1, 9]]);
    let results = create(
        &c.controller,
        vec![
            NewTopic::new("taken", 1, 1),
            NewTopic::new("too-many-replicas", 1, 4),
            NewTopic::new("no-partitions", 0, 1),
            NewTopic::new("no-replicas", 1, 0),
            with_config("retention.ms", "soon"),
            with_config("no.such.config", "1"),
            NewTopic::new("a/b", 1, 1),
            NewTopic::new("..", 1, 1),
            NewTopic::new(&"x".repeat(250), 1, 1),
            NewTopic::new("my_topic", 1, 1),
            both,
            unknown_broker,
            NewTopic::new("twice", 1, 1),
            NewTopic::new("twice", 1, 1),
        ],
    )
    .await;
    let errors: Vec<&Error> = results
        .iter()
        .map(|(name, r)| r.as_ref().err().unwrap_or_else(|| panic!("{name} created")))
        .collect();
    assert!(matches!(errors[0], Error::TopicExists(t) if t == "taken"));
    assert!(matches!(
        errors[1],
        Error::InvalidReplicationFactor {
            requested: 4,
            available: 3
        }
    ));
    assert!(matches!(errors[2], Error::InvalidRequest(_)));
    assert!(matches!(errors[3], Error::InvalidRequest(_)));
    assert!(matches!(errors[4], Error::InvalidRequest(m) if m.contains("retention.ms")));
    assert!(matches!(errors[5], Error::InvalidRequest(m) if m.contains("no.such.config")));
    for e in &errors[6..10] {
        assert!(matches!(e, Error::InvalidTopic(_)), "{e:?}");
    }
    assert!(matches!(errors[10], Error::InvalidRequest(_)));
    assert!(matches!(errors[11], Error::InvalidRequest(m) if m.contains("Unknown broker")));
    assert!(matches!(errors[12], Error::InvalidRequest(_)));
    assert!(matches!(errors[13], Error::InvalidRequest(_)));
    for name in [
        "configured-retention.ms",
        "too-many-replicas",
        "twice",
        "my_topic",
    ] {
        assert!(assignment(&c.coord, name).await.is_none(), "{name}");
    }
}

#[actix::test]
async fn auto_creation_requests_are_served_and_removed() {
    let (_store, brokers) = cluster(3).await;
    let c = wait_for_controller(&all(&brokers)).await;
    // Any broker (here not the controller) asks, as a Metadata request would.
    let asker = &brokers[(c + 1) % 3];
    let request = CreateTopicRequestRecord {
        partitions: -1,
        replication_factor: -1,
        configs: BTreeMap::new(),
    };
    metadata::request_topic_creation(&asker.coord, "auto", &request)
        .await
        .unwrap();
    converge(&all(&brokers), "auto-created topic with leaders", |v| {
        v.topics
            .get("auto")
            .is_some_and(|t| t.states.len() == 3 && t.replication_factor() == 2)
    })
    .await;
    let deadline = Instant::now() + TIMEOUT;
    while asker
        .coord
        .get(&paths::create_topic_request("auto"))
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "request never removed");
        tokio::time::sleep(POLL).await;
    }
    // A request that cannot succeed is dropped, not retried forever.
    let bad = CreateTopicRequestRecord {
        replication_factor: 7,
        ..request
    };
    metadata::request_topic_creation(&asker.coord, "impossible", &bad)
        .await
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while asker
        .coord
        .get(&paths::create_topic_request("impossible"))
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "bad request never removed");
        tokio::time::sleep(POLL).await;
    }
    assert!(assignment(&asker.coord, "impossible").await.is_none());
    assert!(metadata::request_topic_creation(&asker.coord, "a/b", &bad)
        .await
        .is_err());
}

#[actix::test]
async fn topics_are_deleted_directly_and_on_request() {
    let (_store, brokers) = cluster(3).await;
    let c = &brokers[wait_for_controller(&all(&brokers)).await];
    for name in ["doomed", "requested", "kept"] {
        let mut t = NewTopic::new(name, 4, 2);
        t.configs.insert("retention.ms".into(), "1000".into());
        create_one(&c.controller, t).await.unwrap();
    }
    converge(&all(&brokers), "three topics", |v| v.topics.len() == 3).await;

    let results = c
        .controller
        .send(DeleteTopics {
            names: vec!["doomed".into(), "never-was".into()],
            timeout: TIMEOUT,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(results[0].1.is_ok());
    assert!(matches!(&results[1].1, Err(Error::UnknownTopicOrPartition(t)) if t == "never-was"));
    assert!(c
        .coord
        .get(&paths::topic("doomed"))
        .await
        .unwrap()
        .is_none());
    assert!(c
        .coord
        .get(&paths::topic_config("doomed"))
        .await
        .unwrap()
        .is_none());

    let other = &brokers.iter().find(|b| b.id != c.id).unwrap();
    metadata::request_topic_deletion(&other.coord, "requested")
        .await
        .unwrap();
    converge(&all(&brokers), "deleted topics gone, the other kept", |v| {
        v.topics.keys().collect::<Vec<_>>() == ["kept"]
            && !v.topic_configs.contains_key("doomed")
            && !v.topic_configs.contains_key("requested")
    })
    .await;
    assert!(brokers.iter().all(|b| b
        .cache
        .partitions_hosted_by(b.id)
        .iter()
        .all(|h| h.topic == "kept")));
    let deadline = Instant::now() + TIMEOUT;
    while !c
        .coord
        .children(paths::DELETE_TOPIC_REQUESTS)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "deletion marker never removed");
        tokio::time::sleep(POLL).await;
    }
    // The name can be used again, with a new id.
    let again = create_one(&c.controller, NewTopic::new("doomed", 1, 1))
        .await
        .unwrap();
    converge(&all(&brokers), "re-created topic", |v| {
        v.topics
            .get("doomed")
            .is_some_and(|t| t.topic_id == again.topic_id && t.states.len() == 1)
    })
    .await;
}

#[actix::test]
async fn partitions_are_added_continuing_the_assignment() {
    let (_store, brokers) = cluster(3).await;
    let c = &brokers[wait_for_controller(&all(&brokers)).await];
    create_one(&c.controller, NewTopic::new("grow", 2, 2))
        .await
        .unwrap();
    let send = |topics: Vec<NewPartitions>| {
        c.controller.send(CreatePartitions {
            topics,
            validate_only: false,
            timeout: TIMEOUT,
        })
    };
    let grow = |new_total: i32, assignments: Option<Vec<Vec<i32>>>| NewPartitions {
        topic: "grow".into(),
        new_total,
        assignments,
    };
    let results = send(vec![grow(5, None)]).await.unwrap().unwrap();
    assert!(results[0].1.is_ok(), "{results:?}");
    let stored = assignment(&c.coord, "grow").await.unwrap();
    assert_eq!(stored.partitions.len(), 5);
    for (p, replicas) in stored.partitions.iter().enumerate() {
        assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 2);
        assert_eq!(
            state(&c.coord, "grow", p as i32).await.unwrap().leader,
            replicas[0]
        );
    }
    // Preferred leaders keep going round the brokers.
    let leaders: Vec<i32> = stored.partitions.iter().map(|r| r[0]).collect();
    for pair in leaders.windows(2) {
        assert_eq!(pair[1], pair[0] % 3 + 1, "{leaders:?}");
    }

    let results = send(vec![
        grow(3, None),
        grow(5, None),
        grow(6, Some(vec![vec![1, 2], vec![2, 3]])),
        grow(6, Some(vec![vec![1]])),
        NewPartitions {
            topic: "nope".into(),
            new_total: 2,
            assignments: None,
        },
    ])
    .await
    .unwrap()
    .unwrap();
    assert!(matches!(results[0].1, Err(Error::InvalidRequest(_))));
    assert!(matches!(results[1].1, Err(Error::InvalidRequest(_))));
    assert!(matches!(results[2].1, Err(Error::InvalidRequest(_))));
    assert!(matches!(results[3].1, Err(Error::InvalidRequest(_))));
    assert!(matches!(
        results[4].1,
        Err(Error::UnknownTopicOrPartition(_))
    ));
    let results = send(vec![grow(6, Some(vec![vec![3, 1]]))])
        .await
        .unwrap()
        .unwrap();
    assert!(results[0].1.is_ok(), "{results:?}");
    converge(&all(&brokers), "six partitions with states", |v| {
        v.topics
            .get("grow")
            .is_some_and(|t| t.states.len() == 6 && t.replicas.get(5) == Some(&vec![3, 1]))
    })
    .await;
}

// -------------------------------------------------------------------------------------
// Broker failures.
// -------------------------------------------------------------------------------------

#[actix::test]
async fn a_dead_brokers_partitions_get_new_leaders_from_the_isr() {
    let (store, brokers) = cluster(3).await;
    let c = wait_for_controller(&all(&brokers)).await;
    let controller = &brokers[c];
    create_one(&controller.controller, NewTopic::new("events", 6, 3))
        .await
        .unwrap();
    converge(&all(&brokers), "events", |v| {
        v.topics.get("events").is_some_and(|t| t.states.len() == 6)
    })
    .await;
    let before = controller.cache.topic("events").unwrap();
    let victim = brokers[(c + 1) % 3].id;
    let led_by_victim = before
        .states
        .values()
        .filter(|s| s.state.leader == victim)
        .count();
    assert_eq!(led_by_victim, 2);

    store.expire_session(brokers[(c + 1) % 3].session);
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id != victim).collect();
    converge(&survivors, "victim out of every leader and ISR", |v| {
        !v.brokers.contains_key(&victim)
            && v.topics.get("events").is_some_and(|t| {
                t.states
                    .values()
                    .all(|s| s.state.leader != victim && !s.state.isr.contains(&victim))
            })
    })
    .await;
    let after = controller.cache.topic("events").unwrap();
    let epoch = controller_epoch(&controller.coord).await;
    for (p, replicas) in before.replicas.iter().enumerate() {
        let p = p as i32;
        let (old, new) = (&before.states[&p].state, &after.states[&p].state);
        let survivors_in_order: Vec<i32> =
            replicas.iter().copied().filter(|r| *r != victim).collect();
        if old.leader == victim {
            // The first replica in assignment order that is alive and in the ISR.
            assert_eq!(new.leader, survivors_in_order[0], "partition {p}");
            assert_eq!(new.leader_epoch, old.leader_epoch + 1);
        } else {
            assert_eq!(new.leader, old.leader);
            assert_eq!(new.leader_epoch, old.leader_epoch);
        }
        assert_eq!(
            new.isr,
            old.isr
                .iter()
                .copied()
                .filter(|r| *r != victim)
                .collect::<Vec<_>>()
        );
        assert_eq!(new.controller_epoch, epoch);
    }
}

#[actix::test]
async fn offline_partitions_get_a_leader_when_their_broker_returns() {
    let (store, brokers) = cluster(3).await;
    let c = wait_for_controller(&all(&brokers)).await;
    let controller = &brokers[c];
    let victim = &brokers[(c + 1) % 3];
    let other = &brokers[(c + 2) % 3];
    // "solo": one replica, on the victim. "clean"/"unclean": two replicas, but only the
    // victim in the ISR (as a leader shrinks it when a follower lags).
    let mut solo = NewTopic::with_defaults("solo");
    solo.assignments = Some(vec![vec![victim.id]]);
    let mut clean = NewTopic::with_defaults("clean");
    clean.assignments = Some(vec![vec![victim.id, other.id]]);
    let mut unclean = NewTopic::with_defaults("unclean");
    unclean.assignments = Some(vec![vec![victim.id, other.id]]);
    unclean
        .configs
        .insert("unclean.leader.election.enable".into(), "true".into());
    for r in create(&controller.controller, vec![solo, clean, unclean]).await {
        r.1.unwrap();
    }
    for topic in ["clean", "unclean"] {
        let key = paths::partition_state(topic, 0);
        let current = controller.coord.get(&key).await.unwrap().unwrap();
        let mut s: PartitionState = records::decode(&key, &current.value).unwrap();
        s.isr = vec![victim.id];
        controller
            .coord
            .set(&key, records::encode(&s).unwrap(), Some(current.version))
            .await
            .unwrap();
    }

    store.expire_session(victim.session);
    let expected = |leader: i32, leader_epoch: i32, isr: Vec<i32>| (leader, leader_epoch, isr);
    let of = |v: &ClusterView, t: &str| {
        v.topics
            .get(t)
            .and_then(|t| t.states.get(&0))
            .map(|s| (s.state.leader, s.state.leader_epoch, s.state.isr.clone()))
    };
    converge(&[controller, other], "offline / unclean leaders", |v| {
        of(v, "solo") == Some(expected(NO_LEADER, 1, vec![victim.id]))
            && of(v, "clean") == Some(expected(NO_LEADER, 1, vec![victim.id]))
            && of(v, "unclean") == Some(expected(other.id, 1, vec![other.id]))
    })
    .await;

    // The broker comes back (a new process: new session, new incarnation).
    let returned = start_broker(&store, victim.id).await;
    converge(&[controller, other, &returned], "leaders back", |v| {
        of(v, "solo") == Some(expected(victim.id, 2, vec![victim.id]))
            && of(v, "clean") == Some(expected(victim.id, 2, vec![victim.id]))
            && of(v, "unclean") == Some(expected(other.id, 1, vec![other.id]))
    })
    .await;
    assert_eq!(returned.cache.partitions_hosted_by(victim.id).len(), 3);
}

#[actix::test]
async fn a_new_controller_completes_a_half_written_topic() {
    let (store, brokers) = cluster(3).await;
    let c = wait_for_controller(&all(&brokers)).await;
    // A controller that stopped after writing the assignment and one partition state.
    let coord = &brokers[c].coord;
    let half = TopicAssignment {
        topic_id: [9; 16],
        partitions: vec![vec![1, 2], vec![2, 3], vec![3, 1]],
    };
    let first = PartitionState {
        leader: 1,
        leader_epoch: 0,
        isr: vec![1, 2],
        controller_epoch: controller_epoch(coord).await,
    };
    coord
        .transact(vec![
            Op::Create {
                key: paths::topic("half"),
                value: records::encode(&half).unwrap(),
                ephemeral: false,
            },
            Op::Create {
                key: paths::partition_state("half", 0),
                value: records::encode(&first).unwrap(),
                ephemeral: false,
            },
        ])
        .await
        .unwrap();
    store.expire_session(brokers[c].session);
    let survivors: Vec<&Broker> = brokers.iter().filter(|b| b.id != brokers[c].id).collect();
    let gone = brokers[c].id;
    converge(&survivors, "half-written topic completed", |v| {
        v.topics.get("half").is_some_and(|t| {
            t.states.len() == 3
                && t.states.iter().all(|(p, s)| {
                    let replicas = &half.partitions[*p as usize];
                    let live: Vec<i32> = replicas.iter().copied().filter(|r| *r != gone).collect();
                    s.state.leader == live[0] && s.state.isr == live
                })
        })
    })
    .await;
}

// -------------------------------------------------------------------------------------
// Scale.
// -------------------------------------------------------------------------------------

#[actix::test]
async fn a_ten_thousand_partition_topic_is_written_in_chunks() {
    let (_store, brokers) = cluster(3).await;
    let c = &brokers[wait_for_controller(&all(&brokers)).await];
    let created = create_one(&c.controller, NewTopic::new("huge", 10_000, 2))
        .await
        .unwrap();
    assert_eq!(created.partitions, 10_000);
    let states = c.coord.children(&paths::partitions("huge")).await.unwrap();
    assert_eq!(states.len(), 10_000);
    converge(&all(&brokers), "10,000 partition states", |v| {
        v.topics
            .get("huge")
            .is_some_and(|t| t.states.len() == 10_000)
    })
    .await;
    for b in &brokers {
        let hosted = b.cache.partitions_hosted_by(b.id).len();
        assert!(
            (6000..=7000).contains(&hosted),
            "broker {} hosts {hosted}",
            b.id
        );
    }

    let results = c
        .controller
        .send(DeleteTopics {
            names: vec!["huge".into()],
            timeout: TIMEOUT,
        })
        .await
        .unwrap()
        .unwrap();
    assert!(results[0].1.is_ok(), "{results:?}");
    converge(&all(&brokers), "huge gone", |v| v.topics.is_empty()).await;
    assert!(c.coord.children(paths::TOPICS).await.unwrap().is_empty());
}

// -------------------------------------------------------------------------------------
// What every broker writes.
// -------------------------------------------------------------------------------------

#[actix::test]
async fn registration_cluster_id_and_producer_id_blocks() {
    let store = EmbeddedStore::temporary().unwrap();
    let (a, _) = connect(&store);
    let (b, _) = connect(&store);
    let id = metadata::ensure_cluster_id(&a).await.unwrap();
    assert_eq!(metadata::ensure_cluster_id(&b).await.unwrap(), id);

    // Blocks from concurrent brokers are disjoint and consecutive.
    let (x, y) = tokio::join!(
        metadata::allocate_producer_id_block(&a, 1),
        metadata::allocate_producer_id_block(&b, 2)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let mut firsts = [x.first, y.first];
    firsts.sort();
    assert_eq!(firsts, [0, 1000]);
    assert_eq!((x.size, x.last() - x.first), (1000, 999));
    let z = metadata::allocate_producer_id_block(&a, 1).await.unwrap();
    assert_eq!(z.first, 2000);

    // A second broker with the same id waits, then fails naming the holder.
    register(&a, 7).await;
    let clash = BrokerRegistration {
        id: 7,
        host: "other".into(),
        port: 1,
        rack: None,
        incarnation: 1,
    };
    let err = metadata::register_broker(&b, &clash, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BrokerIdInUse { id: 7, .. }), "{err}");
    // Once the holder's session ends, registration succeeds (waiting for the key to go).
    let waiting = tokio::spawn({
        let b = Arc::clone(&b);
        async move { metadata::register_broker(&b, &clash, TIMEOUT).await }
    });
    a.close().await.unwrap();
    waiting.await.unwrap().unwrap();
    let stored = b.get(&paths::broker(7)).await.unwrap().unwrap();
    let stored: BrokerRegistration = records::decode(&paths::broker(7), &stored.value).unwrap();
    assert_eq!(stored.host, "other");
}
