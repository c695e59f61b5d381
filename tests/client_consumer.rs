//! The Sluice consumer (`sluice::client`) against the real broker binary: records written by
//! confluent-kafka read intact; each commit mode; each assignor, alone and beside a
//! confluent-kafka member of the same group; `auto.offset.reset` each value; the rebalance
//! listener's order; resuming from the committed offsets after a broker restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice::client::{
    ClientError, Consumer, ConsumerConfig, ConsumerRecord, Producer, ProducerConfig,
    ProducerRecord, RebalanceListener, TopicPartition,
};
use support::kafka::{ops, Client};
use support::member::{Member, SETTLE};
use support::{assert_ok, python, runtime, Broker, Coordination};

fn consumer(b: &Broker, group: Option<&str>, props: &[(&str, &str)]) -> Consumer {
    let mut config = ConsumerConfig::new(&b.addr());
    config
        .set("group.id", group.unwrap_or(""))
        .unwrap()
        .set("heartbeat.interval.ms", "200")
        .unwrap()
        .set("session.timeout.ms", "6000")
        .unwrap()
        .set("fetch.max.wait.ms", "100")
        .unwrap();
    for (k, v) in props {
        config.set(k, v).unwrap();
    }
    Consumer::new(config).unwrap()
}

/// Produces records `from..to` of `topic`: record i in partition i % partitions, key
/// `k<i>`, value `v-<i>`.
async fn produce(b: &Broker, topic: &str, partitions: i32, range: std::ops::Range<usize>) {
    let p = Producer::new(ProducerConfig::new(&b.addr())).unwrap();
    let mut deliveries = Vec::new();
    for i in range {
        let record = ProducerRecord::new(topic)
            .partition(i as i32 % partitions)
            .key(format!("k{i}"))
            .value(format!("v-{i}"));
        deliveries.push(p.send(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    p.close(Duration::from_secs(10)).await;
}

fn index(r: &ConsumerRecord) -> usize {
    std::str::from_utf8(r.value.as_deref().unwrap()).unwrap()[2..]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Polls until `n` records came (or 30 s passed); they are returned in poll order.
async fn poll_n(c: &Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "{} of {n} records", out.len());
        out.extend(c.poll(Duration::from_millis(200)).await.unwrap());
    }
    out
}

fn all_partitions(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

#[test]
fn records_from_confluent_kafka_are_read_intact_for_every_codec() {
    let b = Broker::start_with(Coordination::Embedded);
    let rt = runtime();
    let (records, keys, value_size) = (400usize, 37usize, 120usize);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("from-confluent-{codec}");
        let acked = b.dir.path().join(format!("acked-{codec}.jsonl"));
        let out = support::confluent(
            &python(".venv"),
            &[
                "--bootstrap",
                &b.addr(),
                "--topic",
                &topic,
                "--mode",
                "produce",
                "--records",
                &records.to_string(),
                "--partitions",
                "3",
                "--keys",
                &keys.to_string(),
                "--value-size",
                &value_size.to_string(),
                "--compression",
                codec,
                "--acked-file",
                acked.to_str().unwrap(),
            ],
            Duration::from_secs(120),
        );
        assert_ok(&format!("confluent produce {codec}"), &out);
        let text = std::fs::read_to_string(&acked).unwrap();
        let mut lines = text.lines();
        let base_ts: i64 = support::json_field(lines.next().unwrap(), "base_ts")
            .unwrap()
            .parse()
            .unwrap();
        let at: BTreeMap<usize, (i32, i64)> = lines
            .map(|l| {
                let f = |k| support::json_field(l, k).unwrap().parse::<i64>().unwrap();
                (f("i") as usize, (f("p") as i32, f("o")))
            })
            .collect();
        assert_eq!(at.len(), records);
        let got = rt.block_on(async {
            let c = consumer(&b, None, &[("auto.offset.reset", "earliest")]);
            c.assign(&all_partitions(&topic, 3));
            let got = poll_n(&c, records).await;
            // Nothing more: the fetches go on in their session, incrementally.
            assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());
            let m = c.metrics();
            assert!(
                m.incremental_fetches.load(Ordering::Relaxed) > 0,
                "no incremental fetch ({} full)",
                m.full_fetches.load(Ordering::Relaxed)
            );
            c.close().await;
            got
        });
        assert_eq!(got.len(), records, "{codec}: extra records");
        for r in &got {
            let i = index(r);
            assert_eq!(at[&i], (r.partition, r.offset), "{codec}: record {i}");
            assert_eq!(r.key.as_deref(), Some(format!("k{}", i % keys).as_bytes()));
            let mut value = format!("v-{i}-").into_bytes();
            value.resize(value_size, b'x');
            assert_eq!(
                r.value.as_deref(),
                Some(&value[..]),
                "{codec}: value of {i}"
            );
            assert_eq!(r.timestamp, base_ts + i as i64, "{codec}: timestamp of {i}");
            let headers: Vec<(String, Vec<u8>)> = r
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.as_deref().unwrap().to_vec()))
                .collect();
            assert_eq!(
                headers,
                [
                    ("idx".to_owned(), i.to_string().into_bytes()),
                    ("run".to_owned(), topic.clone().into_bytes())
                ]
            );
        }
    }
}

#[test]
fn synchronous_asynchronous_and_automatic_commits() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "commits", 3, &[]);
    let rt = runtime();
    rt.block_on(async {
        produce(&b, "commits", 3, 0..60).await;
        let ends: BTreeMap<TopicPartition, i64> = all_partitions("commits", 3)
            .into_iter()
            .map(|tp| (tp, 20))
            .collect();

        // Synchronous: what was consumed is committed when commit_sync returns.
        let c = consumer(
            &b,
            Some("sync"),
            &[
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        );
        c.subscribe(&["commits"]).unwrap();
        poll_n(&c, 60).await;
        c.commit_sync(None).await.unwrap();
        assert_eq!(
            c.committed(&all_partitions("commits", 3)).await.unwrap(),
            ends
        );
        c.close().await;

        // Asynchronous, one commit per record: every callback succeeds, in order, and the last
        // one sent is what stays.
        let c = consumer(
            &b,
            Some("async"),
            &[
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        );
        c.subscribe(&["commits"]).unwrap();
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut consumed = 0;
        while consumed < 60 {
            for r in c.poll(Duration::from_millis(200)).await.unwrap() {
                consumed += 1;
                let offsets =
                    BTreeMap::from([(TopicPartition::new("commits", r.partition), r.offset + 1)]);
                let done = Arc::clone(&done);
                let n = consumed;
                c.commit_async(
                    Some(offsets),
                    Box::new(move |outcome| done.lock().unwrap().push((n, outcome.is_ok()))),
                );
            }
        }
        c.commit_sync(Some(BTreeMap::new())).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while done.lock().unwrap().len() < 60 {
            assert!(Instant::now() < deadline, "async commit callbacks missing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let done = done.lock().unwrap().clone();
        assert!(done.iter().all(|(_, ok)| *ok), "{done:?}");
        assert_eq!(
            done.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            (1..=60).collect::<Vec<_>>(),
            "callbacks out of order"
        );
        assert_eq!(
            c.committed(&all_partitions("commits", 3)).await.unwrap(),
            ends
        );
        c.close().await;

        // Automatic: nothing is committed by hand, yet the committed offsets reach the end.
        let c = consumer(
            &b,
            Some("auto"),
            &[
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", "100"),
                ("auto.offset.reset", "earliest"),
            ],
        );
        c.subscribe(&["commits"]).unwrap();
        poll_n(&c, 60).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            c.poll(Duration::from_millis(150)).await.unwrap();
            if c.committed(&all_partitions("commits", 3)).await.unwrap() == ends {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "auto-commit never reached the end"
            );
        }
        c.close().await;
    });
}

/// Consumers polling in the background until `stop`.
struct Polling {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Polling {
    fn start(rt: &tokio::runtime::Runtime, consumers: &[Arc<Consumer>]) -> Polling {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = consumers
            .iter()
            .map(|c| {
                let (c, stop) = (Arc::clone(c), Arc::clone(&stop));
                rt.spawn(async move {
                    while !stop.load(Ordering::Acquire) {
                        c.poll(Duration::from_millis(100)).await.unwrap();
                    }
                })
            })
            .collect();
        Polling { stop, tasks }
    }

    fn stop(self, rt: &tokio::runtime::Runtime) {
        self.stop.store(true, Ordering::Release);
        for t in self.tasks {
            rt.block_on(t).unwrap();
        }
    }
}

/// The consumers' assignments once they are complete and disjoint over `partitions`.
fn wait_balanced(consumers: &[Arc<Consumer>], partitions: i32) -> Vec<Vec<i32>> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let a: Vec<Vec<i32>> = consumers
            .iter()
            .map(|c| c.assignment().iter().map(|tp| tp.partition).collect())
            .collect();
        let mut all: Vec<i32> = a.concat();
        all.sort_unstable();
        if all == (0..partitions).collect::<Vec<_>>() && a.iter().all(|x| !x.is_empty()) {
            return a;
        }
        assert!(Instant::now() < deadline, "never balanced: {a:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_assignor_shares_the_partitions_and_the_survivor_takes_them_all() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "assign", 6, &[]);
    let rt = runtime();
    for strategy in ["range", "roundrobin", "sticky"] {
        let group = format!("assign-{strategy}");
        let make = || {
            Arc::new(consumer(
                &b,
                Some(&group),
                &[("partition.assignment.strategy", strategy)],
            ))
        };
        let (a, c) = rt.block_on(async { (make(), make()) });
        a.subscribe(&["assign"]).unwrap();
        c.subscribe(&["assign"]).unwrap();
        let polling = Polling::start(&rt, &[Arc::clone(&a), Arc::clone(&c)]);
        let shares = wait_balanced(&[Arc::clone(&a), Arc::clone(&c)], 6);
        match strategy {
            // Sorted member ids: one gets 0..3, the other 3..6.
            "range" => assert!(
                shares.contains(&vec![0, 1, 2]) && shares.contains(&vec![3, 4, 5]),
                "{shares:?}"
            ),
            // Dealt out in turn.
            "roundrobin" => assert!(
                shares.contains(&vec![0, 2, 4]) && shares.contains(&vec![1, 3, 5]),
                "{shares:?}"
            ),
            _ => assert!(shares.iter().all(|s| s.len() == 3), "{shares:?}"),
        }
        // One leaves: the other takes everything.
        polling.stop(&rt);
        rt.block_on(c.close());
        let polling = Polling::start(&rt, &[Arc::clone(&a)]);
        let alone = wait_balanced(&[Arc::clone(&a)], 6);
        assert_eq!(alone[0], (0..6).collect::<Vec<_>>());
        polling.stop(&rt);
        rt.block_on(a.close());
        eprintln!("{strategy}: {shares:?}");
    }
}

#[test]
fn a_group_of_a_sluice_and_a_confluent_consumer_shares_partitions_without_overlap() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "mixed", 6, &[]);
    let rt = runtime();
    let mut member = Member::start(
        &b,
        "confluent",
        "mixed",
        "mixed-group",
        &["--assignor", "range"],
    );
    let ours = rt.block_on(async {
        Arc::new(consumer(
            &b,
            Some("mixed-group"),
            &[("partition.assignment.strategy", "range")],
        ))
    });
    ours.subscribe(&["mixed"]).unwrap();
    let polling = Polling::start(&rt, &[Arc::clone(&ours)]);
    let deadline = Instant::now() + SETTLE;
    loop {
        let theirs: Vec<i32> = member
            .assignment()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p as i32)
            .collect();
        let mine: Vec<i32> = ours.assignment().iter().map(|tp| tp.partition).collect();
        let mut all = [theirs.clone(), mine.clone()].concat();
        all.sort_unstable();
        if !theirs.is_empty() && !mine.is_empty() && all == (0..6).collect::<Vec<_>>() {
            // Range over two members: contiguous halves.
            assert!(
                [theirs.clone(), mine.clone()].iter().all(|s| s.len() == 3),
                "{theirs:?} {mine:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "confluent {theirs:?}, sluice {mine:?}\n{}",
            member.describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    polling.stop(&rt);
    rt.block_on(ours.close());
    member.close();
}

#[test]
fn auto_offset_reset_earliest_latest_and_none() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "reset", 1, &[]);
    let rt = runtime();
    rt.block_on(async {
        produce(&b, "reset", 1, 0..10).await;
        let earliest = consumer(
            &b,
            Some("reset-earliest"),
            &[("auto.offset.reset", "earliest")],
        );
        earliest.subscribe(&["reset"]).unwrap();
        let got = poll_n(&earliest, 10).await;
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        earliest.close().await;

        let latest = consumer(&b, Some("reset-latest"), &[("auto.offset.reset", "latest")]);
        latest.subscribe(&["reset"]).unwrap();
        let tp = TopicPartition::new("reset", 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        while latest.position(&tp).is_none() {
            assert!(Instant::now() < deadline, "no position");
            assert!(latest
                .poll(Duration::from_millis(100))
                .await
                .unwrap()
                .is_empty());
        }
        assert_eq!(latest.position(&tp), Some(10));
        produce(&b, "reset", 1, 10..15).await;
        let got = poll_n(&latest, 5).await;
        assert_eq!(
            got.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (10..15).collect::<Vec<_>>()
        );
        latest.close().await;

        let none = consumer(&b, Some("reset-none"), &[("auto.offset.reset", "none")]);
        none.subscribe(&["reset"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let error = loop {
            match none.poll(Duration::from_millis(100)).await {
                Err(e) => break e,
                Ok(records) => assert!(records.is_empty()),
            }
            assert!(
                Instant::now() < deadline,
                "auto.offset.reset=none never failed"
            );
        };
        assert!(
            matches!(error, ClientError::InvalidArgument(_)),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("auto.offset.reset is none"),
            "{error}"
        );
        none.close().await;
    });
}

/// Records the listener calls, and commits on revocation.
struct Recorder {
    events: Mutex<Vec<(String, Vec<i32>)>>,
    commits_on_revoke: AtomicUsize,
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.events.lock().unwrap().push((
                "revoked".into(),
                partitions.iter().map(|tp| tp.partition).collect(),
            ));
            if consumer.commit_sync(None).await.is_ok() {
                self.commits_on_revoke.fetch_add(1, Ordering::AcqRel);
            }
        })
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.events.lock().unwrap().push((
                "assigned".into(),
                partitions.iter().map(|tp| tp.partition).collect(),
            ));
        })
    }
}

#[test]
fn the_rebalance_listener_hears_revocation_before_assignment_and_can_commit() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "listen", 4, &[]);
    let rt = runtime();
    rt.block_on(produce(&b, "listen", 4, 0..40));
    let recorder = Arc::new(Recorder {
        events: Mutex::default(),
        commits_on_revoke: AtomicUsize::new(0),
    });
    let first = rt.block_on(async {
        Arc::new(consumer(
            &b,
            Some("listen-group"),
            &[
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
            ],
        ))
    });
    first
        .subscribe_with_listener(
            &["listen"],
            Arc::clone(&recorder) as Arc<dyn RebalanceListener>,
        )
        .unwrap();
    rt.block_on(async { poll_n(&first, 40).await });
    let second = rt.block_on(async {
        Arc::new(consumer(
            &b,
            Some("listen-group"),
            &[("auto.offset.reset", "earliest")],
        ))
    });
    second.subscribe(&["listen"]).unwrap();
    let polling = Polling::start(&rt, &[Arc::clone(&first), Arc::clone(&second)]);
    wait_balanced(&[Arc::clone(&first), Arc::clone(&second)], 4);
    polling.stop(&rt);
    let events = recorder.events.lock().unwrap().clone();
    assert!(events.len() >= 3, "{events:?}");
    assert_eq!(events[0], ("assigned".to_owned(), vec![0, 1, 2, 3]));
    assert_eq!(
        events[1],
        ("revoked".to_owned(), vec![0, 1, 2, 3]),
        "{events:?}"
    );
    assert_eq!(events[2].0, "assigned", "{events:?}");
    assert_eq!(events[2].1.len(), 2, "{events:?}");
    // The commit made inside on_partitions_revoked landed: the second member started after it.
    assert!(recorder.commits_on_revoke.load(Ordering::Acquire) >= 1);
    let committed = rt
        .block_on(first.committed(&all_partitions("listen", 4)))
        .unwrap();
    assert_eq!(committed.values().copied().collect::<Vec<_>>(), vec![10; 4]);
    rt.block_on(async {
        first.close().await;
        second.close().await;
    });
}

#[test]
fn a_consumer_resumes_from_the_committed_offsets_after_a_broker_restart() {
    let mut b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "resume", 2, &[]);
    drop(raw);
    let rt = runtime();
    let committed = rt.block_on(async {
        produce(&b, "resume", 2, 0..100).await;
        let c = consumer(
            &b,
            Some("resume-group"),
            &[
                ("enable.auto.commit", "false"),
                ("auto.offset.reset", "earliest"),
                ("max.poll.records", "7"),
            ],
        );
        c.subscribe(&["resume"]).unwrap();
        let mut seen = 0;
        while seen < 50 {
            seen += c.poll(Duration::from_millis(200)).await.unwrap().len();
        }
        c.commit_sync(None).await.unwrap();
        let committed = c.positions();
        c.close().await;
        committed
    });
    b.stop();
    b.spawn();
    let (first_offsets, total) = rt.block_on(async {
        let c = consumer(
            &b,
            Some("resume-group"),
            &[("auto.offset.reset", "earliest")],
        );
        c.subscribe(&["resume"]).unwrap();
        let left: usize = committed.values().map(|o| 50 - *o as usize).sum();
        let records = poll_n(&c, left).await;
        let mut first = BTreeMap::new();
        for r in &records {
            first
                .entry(TopicPartition::new(r.topic.clone(), r.partition))
                .or_insert(r.offset);
        }
        c.close().await;
        (first, records.len())
    });
    // Each partition resumes exactly where the commit left it, and nothing is read twice.
    for (tp, offset) in &committed {
        if *offset < 50 {
            assert_eq!(first_offsets.get(tp), Some(offset), "{tp}");
        }
    }
    let expected: usize = committed.values().map(|o| 50 - *o as usize).sum();
    assert_eq!(total, expected);
}

#[test]
fn sticky_keeps_the_survivors_partitions_when_a_member_leaves() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "sticky", 9, &[]);
    let rt = runtime();
    let make = || {
        Arc::new(consumer(
            &b,
            Some("sticky-group"),
            &[("partition.assignment.strategy", "sticky")],
        ))
    };
    let members: Vec<Arc<Consumer>> = rt.block_on(async { (0..3).map(|_| make()).collect() });
    for m in &members {
        m.subscribe(&["sticky"]).unwrap();
    }
    let polling = Polling::start(&rt, &members);
    let before = wait_balanced(&members, 9);
    assert!(before.iter().all(|s| s.len() == 3), "{before:?}");
    polling.stop(&rt);
    rt.block_on(members[2].close());
    let survivors = &members[..2];
    let polling = Polling::start(&rt, survivors);
    let after = wait_balanced(survivors, 9);
    for (old, new) in before.iter().zip(&after) {
        let new: BTreeSet<i32> = new.iter().copied().collect();
        assert!(
            old.iter().all(|p| new.contains(p)),
            "sticky moved partitions: {before:?} -> {after:?}"
        );
    }
    polling.stop(&rt);
    rt.block_on(async {
        for m in survivors {
            m.close().await;
        }
    });
}

#[test]
fn seek_pause_resume_and_positions() {
    let b = Broker::start_with(Coordination::Embedded);
    let mut raw = Client::connect(&b.addr());
    ops::create_topic(&mut raw, "seek", 2, &[]);
    let rt = runtime();
    rt.block_on(async {
        // Record i: partition i % 2, timestamp 1_700_000_000_000 + i.
        let p = Producer::new(ProducerConfig::new(&b.addr())).unwrap();
        let base = 1_700_000_000_000;
        for i in 0..40 {
            let r = ProducerRecord::new("seek")
                .partition(i % 2)
                .value(format!("v-{i}"))
                .timestamp(base + i64::from(i));
            p.send(r).await.unwrap().await.unwrap();
        }
        p.close(Duration::from_secs(5)).await;
        let (p0, p1) = (
            TopicPartition::new("seek", 0),
            TopicPartition::new("seek", 1),
        );
        let c = consumer(&b, None, &[("auto.offset.reset", "earliest")]);
        c.assign(&[p0.clone(), p1.clone()]);
        // Paused partitions are neither fetched nor returned.
        c.pause(std::slice::from_ref(&p1));
        assert_eq!(c.paused(), std::slice::from_ref(&p1));
        c.seek(&p0, 5).unwrap();
        let got = poll_n(&c, 15).await;
        assert!(
            got.iter().all(|r| r.partition == 0),
            "a paused partition was returned"
        );
        assert_eq!(got[0].offset, 5);
        assert_eq!(c.position(&p0), Some(20));
        assert!(c.poll(Duration::from_millis(300)).await.unwrap().is_empty());
        // Resumed: partition 1 from its start.
        c.resume(std::slice::from_ref(&p1));
        let got = poll_n(&c, 20).await;
        assert_eq!(
            got.iter()
                .map(|r| (r.partition, r.offset))
                .collect::<Vec<_>>(),
            (0..20).map(|o| (1, o)).collect::<Vec<_>>()
        );
        // By timestamp: partition 0 holds even i at offset i / 2, so base + 15 is offset 8 (i = 16).
        c.seek_to_timestamp(&p0, base + 15).unwrap();
        let got = poll_n(&c, 1).await;
        assert_eq!(
            (got[0].partition, got[0].offset, got[0].timestamp),
            (0, 8, base + 16)
        );
        // To the end: nothing more, and the position is the end.
        c.seek_to(&p0, false).unwrap();
        c.seek_to(&p1, true).unwrap();
        let got = poll_n(&c, 20).await;
        assert!(
            got.iter().all(|r| r.partition == 1),
            "partition 0 was read after seeking to its end"
        );
        assert_eq!(c.position(&p0), Some(20));
        c.close().await;
    });
}
