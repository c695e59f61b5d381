//! Consumer groups against the real `sluice` binary: real clients (confluent-kafka in
//! `tests/clients/confluent_groups.py`, kafka-python 2.x and 3.x in
//! `tests/clients/kafka_python_groups.py`) and raw protocol (the shared client of
//! `tests/support/kafka.rs`). Each test starts its own broker (`Broker::start_with_config`).
//!
//! Group members whose membership matters run as separate OS processes (the `member`
//! subcommand), so a test can close one (a "close" line on its stdin) or kill it with -9.
//! Timing is never asserted on; what is measured is printed with the prefix `MEASURE:`.
//!
//! Needs `make venv` (`.venv`, `.venv-kp3`), and for the ZooKeeper/etcd variants the servers of
//! `make deps`; without them the tests fail saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, DescribeConfigsRequest, FindCoordinatorResponse,
    GroupId, HeartbeatRequest, InitProducerIdRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use support::etcd::EtcdServer;
use support::kafka::{self, name, s, Client};
use support::member::{close_all, describe_all, json_i64, wait_for, wait_settled, Member, SETTLE};
use support::{
    assert_ok, event, json_field, json_u64, python, run, script, Broker, Coordination, Output,
    ZooKeeper,
};

// Kafka's error codes.
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const INVALID_REQUEST: i16 = 42;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_MAX_SIZE_REACHED: i16 = 81;
const FENCED_INSTANCE_ID: i16 = 82;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

/// How long one client script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a group may take to settle (joins, rebalances, a dead member's session timeout).
/// The session timeout of the members the kill -9 tests kill (the broker's minimum is 1000).
const SESSION_MS: &str = "3000";

/// A broker for group tests: a short minimum session timeout (so that dead members go
/// quickly) and, unless `extra` says otherwise, 4 offsets-topic partitions (quicker to create
/// than Kafka's 50; the tests that say `("offsets.topic.num.partitions", "50")` use the default).
fn group_broker(coordination: Coordination, extra: &[(&str, &str)]) -> Broker {
    let mut keys: Vec<(&str, &str)> = vec![
        ("group.min.session.timeout.ms", "1000"),
        ("offsets.topic.num.partitions", "4"),
    ];
    for (k, v) in extra {
        match keys.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => keys.push((k, v)),
        }
    }
    Broker::start_with_config(coordination, &keys)
}

// ---------------------------------------------------------------------------------------------
// confluent-kafka scripts
// ---------------------------------------------------------------------------------------------

/// Runs `confluent_groups.py <command> --bootstrap <broker> <args>`.
fn confluent_groups(b: &Broker, command: &str, args: &[&str]) -> Output {
    let addr = b.addr();
    run(
        Command::new(python(".venv"))
            .arg(script("confluent_groups.py"))
            .args([command, "--bootstrap", &addr])
            .args(args),
        None,
        SCRIPT_TIMEOUT,
    )
}

/// Runs a subcommand and asserts it succeeded; returns its output.
fn cg_ok(b: &Broker, command: &str, args: &[&str]) -> Output {
    let o = confluent_groups(b, command, args);
    assert_ok(&format!("confluent_groups.py {command} {args:?}"), &o);
    o
}

fn create_topic(b: &Broker, topic: &str, partitions: usize) {
    cg_ok(
        b,
        "create",
        &["--topic", topic, "--partitions", &partitions.to_string()],
    );
}

/// Produces records `start..start + n` (record i to partition i % partitions).
fn produce(b: &Broker, topic: &str, partitions: usize, start: usize, n: usize) {
    cg_ok(
        b,
        "produce",
        &[
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
            "--start",
            &start.to_string(),
            "--records",
            &n.to_string(),
        ],
    );
}

/// The `partition` lines of an output: partition -> the line.
fn partition_lines(o: &Output) -> BTreeMap<i64, String> {
    o.stdout
        .lines()
        .filter(|l| json_field(l, "event") == Some("partition"))
        .map(|l| (json_i64(l, "p").expect("p"), l.to_owned()))
        .collect()
}

/// How many times each (partition, offset) was processed, over all `members`.
fn consumed(members: &[&Member]) -> BTreeMap<(i64, i64), usize> {
    let mut seen = BTreeMap::new();
    for m in members {
        for r in m.records() {
            *seen.entry(r).or_insert(0) += 1;
        }
    }
    seen
}

/// Waits until every offset below `end` of every partition was processed by some member.
fn wait_consumed(what: &str, members: &[&Member], partitions: i64, end: i64) {
    wait_for(
        what,
        SETTLE,
        || {
            let seen = consumed(members);
            (0..partitions)
                .all(|p| (0..end).all(|o| seen.contains_key(&(p, o))))
                .then_some(())
        },
        || {
            let seen = consumed(members);
            let missing: Vec<(i64, i64)> = (0..partitions)
                .flat_map(|p| (0..end).map(move |o| (p, o)))
                .filter(|k| !seen.contains_key(k))
                .take(20)
                .collect();
            format!(
                "missing (partition, offset): {missing:?}\n{}",
                describe_all(members)
            )
        },
    );
}

// ---------------------------------------------------------------------------------------------
// confluent-kafka: membership
// ---------------------------------------------------------------------------------------------

/// 3 members on 6 partitions; a 4th joins; one closes; one is killed with -9 after consuming
/// records it did not commit. Every record is processed; the only duplicates are exactly the
/// killed member's uncommitted tail.
#[test]
fn confluent_group_rebalances_on_join_close_and_kill9_without_losing_records() {
    let t0 = Instant::now();
    let mut b = group_broker(Coordination::Embedded, &[]);
    let (topic, group, parts) = ("members", "members-group", 6usize);
    create_topic(&b, topic, parts);
    let member_args = ["--session-ms", SESSION_MS, "--heartbeat-ms", "500"];
    let mut a = Member::start(&b, "a", topic, group, &member_args);
    let mut bm = Member::start(&b, "b", topic, group, &member_args);
    let mut c = Member::start(&b, "c", topic, group, &member_args);
    wait_settled("3 members", &[&a, &bm, &c], 6);

    let per_phase = 60; // 10 records per partition
    let mut produced = 0;
    let mut phase = |b: &Broker, members: &[&Member], what: &str| {
        produce(b, topic, parts, produced, per_phase);
        produced += per_phase;
        wait_consumed(what, members, 6, (produced / parts) as i64);
    };
    phase(&b, &[&a, &bm, &c], "3 members consume");

    let mut d = Member::start(&b, "d", topic, group, &member_args);
    let four = wait_settled("a 4th member joins", &[&a, &bm, &c, &d], 6);
    phase(&b, &[&a, &bm, &c, &d], "4 members consume");

    let c_had = four[2].clone();
    c.close();
    let three = wait_settled("c closed", &[&a, &bm, &d], 6);
    for p in &c_had {
        assert!(
            three.iter().any(|x| x.contains(p)),
            "partition {p} of the closed member was not moved: {three:?}"
        );
    }
    phase(&b, &[&a, &bm, &c, &d], "after close");

    // b stops committing, processes a phase of records, then dies without a word.
    bm.send("nocommit");
    wait_for(
        "nocommit acknowledged",
        SETTLE,
        || (!bm.events("nocommit").is_empty()).then_some(()),
        || bm.describe(),
    );
    phase(&b, &[&a, &bm, &c, &d], "b's uncommitted tail");
    let b_had = bm.assignment().unwrap();
    bm.kill9();
    let killed = Instant::now();
    let two = wait_settled("b killed with -9", &[&a, &d], 6);
    eprintln!(
        "MEASURE: partitions of a member killed with -9 reassigned after {:?} (session.timeout.ms {SESSION_MS})",
        killed.elapsed()
    );
    for p in &b_had {
        assert!(
            two.iter().any(|x| x.contains(p)),
            "partition {p} of the killed member: {two:?}"
        );
    }
    phase(&b, &[&a, &bm, &c, &d], "after kill -9");
    a.close();
    d.close();

    // Nothing lost.
    let end = (produced / parts) as i64;
    let all = [&a, &bm, &c, &d];
    let seen = consumed(&all);
    for p in 0..6 {
        for o in 0..end {
            assert!(
                seen.contains_key(&(p, o)),
                "record {p}/{o} was never processed\n{}",
                describe_all(&all)
            );
        }
    }
    // Duplicates: exactly b's uncommitted tail, each at or after b's last commit of its
    // partition (the committed offset is the next one to read) and within what b consumed.
    let b_committed = bm.committed();
    let b_records = bm.records();
    let mut b_max: BTreeMap<i64, i64> = BTreeMap::new();
    for &(p, o) in &b_records {
        let e = b_max.entry(p).or_insert(o);
        *e = (*e).max(o);
    }
    let tail: BTreeSet<(i64, i64)> = b_records
        .iter()
        .copied()
        .filter(|(p, o)| *o >= b_committed.get(p).copied().unwrap_or(0))
        .collect();
    let dups: BTreeSet<(i64, i64)> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| *k)
        .collect();
    for &(p, o) in &dups {
        let committed = b_committed.get(&p).copied().unwrap_or(0);
        assert!(
            o >= committed && o <= b_max.get(&p).copied().unwrap_or(-1),
            "record {p}/{o} processed {} times, outside the killed member's uncommitted tail \
             (its last commit of partition {p}: {committed}, its last record there: {:?})\n{}",
            seen[&(p, o)],
            b_max.get(&p),
            describe_all(&all)
        );
        assert_eq!(
            seen[&(p, o)],
            2,
            "record {p}/{o} processed {} times",
            seen[&(p, o)]
        );
    }
    assert!(
        !tail.is_empty(),
        "the killed member had no uncommitted tail\n{}",
        bm.describe()
    );
    assert_eq!(
        dups, tail,
        "the duplicates are not exactly the killed member's uncommitted tail"
    );
    eprintln!(
        "membership test: {} records, {} duplicates (b's tail), {:?}",
        produced,
        dups.len(),
        t0.elapsed()
    );
    b.stop();
}

/// A static member (group.instance.id) killed with -9 and restarted within the session
/// timeout gets its old partitions back, and the other members do not rebalance.
#[test]
fn confluent_static_member_restart_keeps_its_partitions_without_rebalance() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let (topic, group) = ("static", "static-group");
    create_topic(&b, topic, 6);
    let args = |id: &'static str| {
        vec![
            "--session-ms",
            "15000",
            "--heartbeat-ms",
            "500",
            "--instance-id",
            id,
        ]
    };
    let mut a = Member::start(&b, "a", topic, group, &args("static-a"));
    let mut bm = Member::start(&b, "b", topic, group, &args("static-b"));
    let mut c = Member::start(&b, "c", topic, group, &args("static-c"));
    let before = wait_settled("3 static members", &[&a, &bm, &c], 6);
    let b_events = bm.events("assignment").len();
    let c_events = c.events("assignment").len();

    a.kill9();
    let a2 = Member::start(&b, "a2", topic, group, &args("static-a"));
    let after = wait_settled("static member restarted", &[&a2, &bm, &c], 6);
    assert_eq!(
        after[0],
        before[0],
        "the restarted static member got other partitions\n{}",
        a2.describe()
    );
    // Records flow to the same owners; meanwhile any rebalance would show in b's and c's events.
    produce(&b, topic, 6, 0, 60);
    wait_consumed("static members consume", &[&a2, &bm, &c], 6, 10);
    for (m, owned) in [(&a2, &before[0]), (&bm, &before[1]), (&c, &before[2])] {
        for (p, _) in m.records() {
            assert!(
                owned.contains(&p),
                "{} read partition {p}, not its own {owned:?}",
                m.name
            );
        }
    }
    assert_eq!(
        bm.events("assignment").len(),
        b_events,
        "b rebalanced\n{}",
        bm.describe()
    );
    assert_eq!(
        c.events("assignment").len(),
        c_events,
        "c rebalanced\n{}",
        c.describe()
    );
    drop(a2);
    bm.kill9();
    c.kill9();
    b.stop();
}

/// The time from the 10th member's subscribe to all 10 holding their new assignment.
#[test]
fn confluent_rebalance_time_of_a_10_member_group() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let (topic, group) = ("ten", "ten-group");
    create_topic(&b, topic, 20);
    let args = ["--session-ms", "6000", "--heartbeat-ms", "500"];
    let mut members: Vec<Member> = (0..9)
        .map(|i| Member::start(&b, &format!("m{i}"), topic, group, &args))
        .collect();
    {
        let refs: Vec<&Member> = members.iter().collect();
        wait_settled("9 members", &refs, 20);
    }
    let started = Instant::now();
    members.push(Member::start(&b, "m9", topic, group, &args));
    let refs: Vec<&Member> = members.iter().collect();
    wait_settled("10 members", &refs, 20);
    let wall = started.elapsed();
    let subscribed = json_field(&members[9].events("subscribing")[0], "ts")
        .unwrap()
        .parse::<f64>()
        .unwrap();
    let last = refs
        .iter()
        .map(|m| {
            let e = m.events("assignment");
            json_field(e.last().unwrap(), "ts")
                .unwrap()
                .parse::<f64>()
                .unwrap()
        })
        .fold(f64::MIN, f64::max);
    eprintln!(
        "MEASURE: rebalance of a 10-member group (confluent-kafka, 20 partitions): {:.0} ms from \
         the 10th member's subscribe to all 10 assigned ({wall:?} including its process start)",
        (last - subscribed) * 1000.0
    );
    drop(refs);
    close_all(&mut members);
    b.stop();
}

// ---------------------------------------------------------------------------------------------
// confluent-kafka: offsets
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Restart {
    Sigterm,
    Kill9,
}

/// Commits half of a 3-partition topic, restarts the broker, and a new consumer of the group
/// resumes exactly at the committed offsets.
fn commit_restart_resume(b: &mut Broker, how: Restart, tag: &str) {
    let topic = format!("resume-{tag}");
    let group = format!("resume-group-{tag}");
    create_topic(b, &topic, 3);
    produce(b, &topic, 3, 0, 300);
    let o = cg_ok(
        b,
        "consume",
        &[
            "--topic",
            &topic,
            "--group",
            &group,
            "--partitions",
            "3",
            "--max-records",
            "150",
        ],
    );
    let first = partition_lines(&o);
    let committed: BTreeMap<i64, i64> = first
        .iter()
        .map(|(p, l)| (*p, json_i64(l, "committed").unwrap()))
        .collect();
    // A partition it read nothing from has no committed offset (-1001): the group starts it
    // from the beginning (auto.offset.reset earliest).
    let mut resume_at = BTreeMap::new();
    for (p, l) in &first {
        let count = json_i64(l, "count").unwrap();
        let c = committed[p];
        assert!(
            c == count || (count == 0 && c == -1001),
            "partition {p}: committed {c} after reading {count} from 0\n{}",
            o.describe()
        );
        resume_at.insert(*p, c.max(0));
    }
    assert_eq!(resume_at.values().sum::<i64>(), 150);
    match how {
        Restart::Sigterm => b.stop(),
        Restart::Kill9 => b.kill9(),
    }
    b.spawn();
    let o = cg_ok(
        b,
        "committed",
        &["--topic", &topic, "--group", &group, "--partitions", "3"],
    );
    for (p, l) in partition_lines(&o) {
        assert_eq!(
            json_i64(&l, "committed"),
            Some(committed[&p]),
            "partition {p}: committed offset after a {how:?} restart\n{}",
            o.describe()
        );
    }
    let o = cg_ok(
        b,
        "consume",
        &[
            "--topic",
            &topic,
            "--group",
            &group,
            "--partitions",
            "3",
            "--max-records",
            "150",
        ],
    );
    for (p, l) in partition_lines(&o) {
        let c = resume_at[&p];
        let count = json_i64(&l, "count").unwrap();
        if c < 100 {
            assert_eq!(
                json_i64(&l, "first"),
                Some(c),
                "partition {p} resumed elsewhere\n{}",
                o.describe()
            );
        }
        assert_eq!(
            count,
            100 - c,
            "partition {p}: read {count} after resuming at {c}\n{}",
            o.describe()
        );
    }
}

/// With Kafka's default of 50 offsets-topic partitions.
#[test]
fn confluent_committed_offsets_survive_sigterm_restart() {
    let mut b = group_broker(
        Coordination::Embedded,
        &[("offsets.topic.num.partitions", "50")],
    );
    commit_restart_resume(&mut b, Restart::Sigterm, "term");
    b.stop();
}

#[test]
fn confluent_committed_offsets_survive_kill9_restart() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    commit_restart_resume(&mut b, Restart::Kill9, "kill9");
    b.stop();
}

#[test]
fn confluent_auto_offset_reset_earliest_latest_none() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let topic = "reset";
    create_topic(&b, topic, 2);
    produce(&b, topic, 2, 0, 20);
    let common = ["--topic", topic, "--partitions", "2", "--records", "20"];
    let o = cg_ok(
        &b,
        "reset",
        &[
            &common[..],
            &["--group", "reset-earliest", "--reset", "earliest"],
        ]
        .concat(),
    );
    let r = event(&o.stdout, "result").unwrap();
    assert_eq!(json_u64(r, "records"), Some(20), "{}", o.describe());
    assert_eq!(json_u64(r, "first"), Some(0), "{}", o.describe());
    let o = cg_ok(
        &b,
        "reset",
        &[
            &common[..],
            &["--group", "reset-latest", "--reset", "latest"],
        ]
        .concat(),
    );
    let r = event(&o.stdout, "result").unwrap();
    assert!(
        json_u64(r, "first").unwrap() >= 10,
        "latest read old records\n{}",
        o.describe()
    );
    let o = cg_ok(
        &b,
        "reset",
        &[&common[..], &["--group", "reset-none", "--reset", "error"]].concat(),
    );
    let r = event(&o.stdout, "result").unwrap();
    assert_eq!(
        json_field(r, "error"),
        Some("_AUTO_OFFSET_RESET"),
        "{}",
        o.describe()
    );
    b.stop();
}

/// Asynchronous commits (one per record, every callback checked), a synchronous one, and the
/// synchronous commit rate of one consumer.
#[test]
fn confluent_manual_sync_and_async_commits() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    create_topic(&b, "commits", 3);
    produce(&b, "commits", 3, 0, 90);
    let o = cg_ok(
        &b,
        "commits",
        &[
            "--topic",
            "commits",
            "--group",
            "commits-group",
            "--partitions",
            "3",
            "--records",
            "90",
            "--bench-seconds",
            "3",
        ],
    );
    let m = event(&o.stdout, "measure").expect("a measure line");
    eprintln!(
        "MEASURE: synchronous commits from one confluent-kafka consumer: {} commits/s ({} in 3 s)",
        json_field(m, "value").unwrap(),
        json_field(m, "commits").unwrap()
    );
    b.stop();
}

#[test]
fn confluent_auto_commit_with_interval() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    create_topic(&b, "autocommit", 3);
    produce(&b, "autocommit", 3, 0, 90);
    let o = cg_ok(
        &b,
        "autocommit",
        &[
            "--topic",
            "autocommit",
            "--group",
            "auto-group",
            "--partitions",
            "3",
            "--records",
            "90",
            "--interval-ms",
            "200",
        ],
    );
    eprintln!("{}", event(&o.stdout, "autocommitted").unwrap());
    b.stop();
}

/// assign() and commit with a group.id but no membership; another consumer with the group.id
/// reads the commits (without subscribing) and resumes there.
#[test]
fn confluent_manual_assign_commits_without_membership() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    create_topic(&b, "assigned", 3);
    produce(&b, "assigned", 3, 0, 30);
    cg_ok(
        &b,
        "assign",
        &[
            "--topic",
            "assigned",
            "--group",
            "assign-group",
            "--partitions",
            "3",
        ],
    );
    b.stop();
}

/// AdminClient: list, describe (members, assignment), delete (non-empty: error; empty: ok),
/// list the group's offsets.
#[test]
fn confluent_admin_list_describe_delete_groups_and_offsets() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    create_topic(&b, "admin-groups", 3);
    produce(&b, "admin-groups", 3, 0, 30);
    let o = cg_ok(
        &b,
        "admin",
        &[
            "--topic",
            "admin-groups",
            "--group",
            "admin-group",
            "--partitions",
            "3",
            "--records",
            "30",
        ],
    );
    let d = event(&o.stdout, "delete_non_empty").unwrap();
    eprintln!("{d}");
    b.stop();
}

// ---------------------------------------------------------------------------------------------
// kafka-python
// ---------------------------------------------------------------------------------------------

fn kafka_python_groups(b: &Broker, venv: &str, args: &[&str]) -> Output {
    let addr = b.addr();
    let o = run(
        Command::new(python(venv))
            .arg(script("kafka_python_groups.py"))
            .args(args)
            .args(["--bootstrap", &addr]),
        None,
        SCRIPT_TIMEOUT,
    );
    assert_ok(&format!("kafka_python_groups.py {args:?} ({venv})"), &o);
    o
}

fn kafka_python_assignor(strategy: &str) {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let topic = format!("kp-{strategy}");
    let o = kafka_python_groups(
        &b,
        ".venv",
        &[
            "assignors",
            "--strategy",
            strategy,
            "--topic",
            &topic,
            "--group",
            &topic,
            "--members",
            "3",
            "--partitions",
            "4",
        ],
    );
    for l in o
        .stdout
        .lines()
        .filter(|l| json_field(l, "event") == Some("stable"))
    {
        eprintln!("{strategy}: {l}");
    }
    let r = event(&o.stdout, "result").unwrap();
    assert!(
        json_field(r, "kafka_python").unwrap().starts_with("2."),
        "{r}"
    );
    b.stop();
}

#[test]
fn kafka_python_2x_range_assignor() {
    kafka_python_assignor("range");
}

#[test]
fn kafka_python_2x_roundrobin_assignor() {
    kafka_python_assignor("roundrobin");
}

#[test]
fn kafka_python_2x_sticky_assignor() {
    kafka_python_assignor("sticky");
}

#[test]
fn kafka_python_3x_group_round_trip() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let o = kafka_python_groups(
        &b,
        ".venv-kp3",
        &[
            "roundtrip",
            "--topic",
            "kp3",
            "--group",
            "kp3-group",
            "--partitions",
            "3",
            "--records",
            "1000",
        ],
    );
    let r = event(&o.stdout, "result").unwrap();
    assert!(
        json_field(r, "kafka_python").unwrap().starts_with("3."),
        "{r}"
    );
    assert_eq!(json_u64(r, "records"), Some(1000));
    // kafka-python 3.x produces idempotently by default: InitProducerId and sequences.
    let producer = event(&o.stdout, "producer").unwrap();
    assert_eq!(
        json_field(producer, "enable_idempotence"),
        Some("true"),
        "{producer}"
    );
    b.stop();
}

// ---------------------------------------------------------------------------------------------
// ZooKeeper and etcd coordination: the core of the suite
// ---------------------------------------------------------------------------------------------

/// 3 members settle, one closes and its partitions move, every record is read; committed
/// offsets survive a SIGTERM restart.
fn core_suite(coordination: Coordination) {
    let mut b = group_broker(coordination, &[]);
    let (topic, group) = ("core", "core-group");
    create_topic(&b, topic, 6);
    let args = ["--session-ms", SESSION_MS];
    let mut a = Member::start(&b, "a", topic, group, &args);
    let mut bm = Member::start(&b, "b", topic, group, &args);
    let mut c = Member::start(&b, "c", topic, group, &args);
    wait_settled("3 members", &[&a, &bm, &c], 6);
    produce(&b, topic, 6, 0, 60);
    wait_consumed("3 members consume", &[&a, &bm, &c], 6, 10);
    bm.close();
    wait_settled("b closed", &[&a, &c], 6);
    produce(&b, topic, 6, 60, 60);
    wait_consumed("2 members consume", &[&a, &bm, &c], 6, 20);
    let dups: Vec<_> = consumed(&[&a, &bm, &c])
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(
        dups.is_empty(),
        "records processed twice without any failure: {dups:?}"
    );
    a.close();
    c.close();
    commit_restart_resume(&mut b, Restart::Sigterm, "core");
    b.stop();
}

#[test]
fn zookeeper_group_core() {
    let zk = ZooKeeper::start();
    core_suite(Coordination::ZooKeeper(zk.endpoint()));
}

#[test]
fn etcd_group_core() {
    let etcd = EtcdServer::start();
    core_suite(Coordination::Etcd(etcd.endpoint()));
}

// ---------------------------------------------------------------------------------------------
// Raw protocol
// ---------------------------------------------------------------------------------------------

const JOIN_VERSION: i16 = 5;
const SYNC_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;

/// A consumer protocol subscription (version 0) to `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(topics.len() as i32);
    for t in topics {
        b.put_i16(t.len() as i16);
        b.put_slice(t.as_bytes());
    }
    b.put_i32(-1); // no user data
    b.freeze()
}

/// A consumer protocol assignment (version 0) of `partitions` of `topic`.
fn assignment(topic: &str, partitions: &[i32]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(1);
    b.put_i16(topic.len() as i16);
    b.put_slice(topic.as_bytes());
    b.put_i32(partitions.len() as i32);
    for p in partitions {
        b.put_i32(*p);
    }
    b.put_i32(-1);
    b.freeze()
}

fn join_request(
    group: &str,
    member_id: &str,
    protocols: Vec<JoinGroupRequestProtocol>,
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(protocols)
}

fn range_protocol(topics: &[&str]) -> Vec<JoinGroupRequestProtocol> {
    vec![JoinGroupRequestProtocol::default()
        .with_name(s("range"))
        .with_metadata(subscription(topics))]
}

/// FindCoordinator (v3) for a group, retrying while the offsets topic is being created or
/// loaded; asserts this broker is the coordinator.
fn find_group_coordinator(c: &mut Client, b: &Broker, group: &str) {
    let r: FindCoordinatorResponse = wait_for(
        &format!("the coordinator of {group}"),
        SETTLE,
        || {
            let r = c.call(
                FindCoordinatorRequest::default()
                    .with_key(s(group))
                    .with_key_type(0),
                3,
            );
            (r.error_code != COORDINATOR_NOT_AVAILABLE
                && r.error_code != COORDINATOR_LOAD_IN_PROGRESS)
                .then_some(r)
        },
        || b.log_tail(),
    );
    assert_eq!(r.error_code, NONE, "FindCoordinator {group}: {r:?}");
    assert_eq!((r.node_id.0, r.port), (1, i32::from(b.port)), "{r:?}");
}

/// Repeats `call` while the coordinator is not ready (COORDINATOR_NOT_AVAILABLE or
/// COORDINATOR_LOAD_IN_PROGRESS), as clients do.
fn while_loading<T>(mut call: impl FnMut() -> T, code: impl Fn(&T) -> i16) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        let r = call();
        let e = code(&r);
        if (e != COORDINATOR_NOT_AVAILABLE && e != COORDINATOR_LOAD_IN_PROGRESS)
            || Instant::now() > deadline
        {
            return r;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Joins `group` as a new member (the MEMBER_ID_REQUIRED round trip), becomes its leader
/// (the only member), and syncs an assignment of `topic` partition 0. Returns (member id,
/// generation).
fn join_and_sync(c: &mut Client, b: &Broker, group: &str, topic: &str) -> (String, i32) {
    find_group_coordinator(c, b, group);
    let r: JoinGroupResponse = while_loading(
        || {
            c.call(
                join_request(group, "", range_protocol(&[topic])),
                JOIN_VERSION,
            )
        },
        |r| r.error_code,
    );
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED, "first JoinGroup: {r:?}");
    assert!(
        !r.member_id.is_empty(),
        "MEMBER_ID_REQUIRED without a member id: {r:?}"
    );
    let member = r.member_id.to_string();
    let r: JoinGroupResponse = c.call(
        join_request(group, &member, range_protocol(&[topic])),
        JOIN_VERSION,
    );
    assert_eq!(r.error_code, NONE, "second JoinGroup: {r:?}");
    assert_eq!(r.leader.as_str(), member, "the only member leads: {r:?}");
    assert_eq!(r.protocol_name.as_deref(), Some("range"), "{r:?}");
    assert_eq!(r.members.len(), 1, "{r:?}");
    let generation = r.generation_id;
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&member))
            .with_assignment(assignment(topic, &[0]))]);
    let r = c.call(sync, SYNC_VERSION);
    assert_eq!(r.error_code, NONE, "SyncGroup: {r:?}");
    assert_eq!(
        r.assignment,
        assignment(topic, &[0]),
        "the leader's own assignment"
    );
    (member, generation)
}

fn heartbeat(c: &mut Client, group: &str, generation: i32, member: &str) -> i16 {
    c.call(
        HeartbeatRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s(member)),
        HEARTBEAT_VERSION,
    )
    .error_code
}

fn raw_create_topic(c: &mut Client, topic: &str, partitions: i32) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let deadline = Instant::now() + SETTLE;
    loop {
        let r = c.call(
            CreateTopicsRequest::default()
                .with_topics(vec![CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)])
                .with_timeout_ms(10_000),
            4,
        );
        let code = r.topics[0].error_code;
        if code == NONE {
            return;
        }
        assert!(
            code == 41 && Instant::now() < deadline,
            "CreateTopics {topic}: {r:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn commit_request(
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o);
        match topics.iter_mut().find(|x| x.name.as_str() == *t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(name(t))
                    .with_partitions(vec![part]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(topics)
}

/// The committed offsets of several groups in one OffsetFetch (v8): group -> (topic,
/// partition) -> offset.
fn fetch_offsets(
    c: &mut Client,
    groups: &[(&str, &str, &[i32])],
) -> BTreeMap<String, BTreeMap<(String, i32), i64>> {
    let request = OffsetFetchRequest::default().with_groups(
        groups
            .iter()
            .map(|(g, t, ps)| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s(g)))
                    .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                        .with_name(name(t))
                        .with_partition_indexes(ps.to_vec())]))
            })
            .collect(),
    );
    let r = c.call(request, 8);
    let mut out = BTreeMap::new();
    for g in r.groups {
        assert_eq!(
            g.error_code,
            NONE,
            "OffsetFetch {}: {g:?}",
            g.group_id.as_str()
        );
        let m: &mut BTreeMap<(String, i32), i64> = out.entry(g.group_id.to_string()).or_default();
        for t in g.topics {
            for p in t.partitions {
                assert_eq!(p.error_code, NONE, "{p:?}");
                m.insert((t.name.to_string(), p.partition_index), p.committed_offset);
            }
        }
    }
    out
}

/// JoinGroup without protocols, Heartbeat/SyncGroup of an unknown member, a stale generation.
#[test]
fn raw_join_sync_heartbeat_errors() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let mut c = Client::connect(&b.addr());
    raw_create_topic(&mut c, "errors", 1);
    let group = "errors-group";
    find_group_coordinator(&mut c, &b, group);

    let r = c.call(join_request("empty-protocols", "", vec![]), JOIN_VERSION);
    assert_eq!(
        r.error_code, INCONSISTENT_GROUP_PROTOCOL,
        "JoinGroup with no protocols: {r:?}"
    );

    let (member, generation) = join_and_sync(&mut c, &b, group, "errors");
    assert_eq!(heartbeat(&mut c, group, generation, &member), NONE);

    assert_eq!(
        heartbeat(&mut c, group, generation, "no-such-member"),
        UNKNOWN_MEMBER_ID
    );
    let r = c.call(
        SyncGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id(generation)
            .with_member_id(s("no-such-member")),
        SYNC_VERSION,
    );
    assert_eq!(
        r.error_code, UNKNOWN_MEMBER_ID,
        "SyncGroup of an unknown member: {r:?}"
    );

    for stale in [generation - 1, generation + 1] {
        assert_eq!(
            heartbeat(&mut c, group, stale, &member),
            ILLEGAL_GENERATION,
            "Heartbeat at generation {stale} (current {generation})"
        );
    }
    let r = c.call(
        commit_request(group, generation + 1, &member, &[("errors", 0, 1)]),
        8,
    );
    assert_eq!(
        r.topics[0].partitions[0].error_code, ILLEGAL_GENERATION,
        "OffsetCommit at a stale generation: {r:?}"
    );
    // Still a member in good standing.
    assert_eq!(heartbeat(&mut c, group, generation, &member), NONE);

    // group.min/max.session.timeout.ms (1000 here / Kafka's 1800000): INVALID_SESSION_TIMEOUT.
    for session in [500, 1_800_001] {
        let r = c.call(
            join_request("session-bounds", "", range_protocol(&["errors"]))
                .with_session_timeout_ms(session),
            JOIN_VERSION,
        );
        assert_eq!(
            r.error_code, INVALID_SESSION_TIMEOUT,
            "JoinGroup with session.timeout.ms {session}: {r:?}"
        );
    }

    // LeaveGroup v3 (batched): the member leaves, an unknown one gets UNKNOWN_MEMBER_ID.
    let r = c.call(
        LeaveGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_members(vec![
                MemberIdentity::default().with_member_id(s(&member)),
                MemberIdentity::default().with_member_id(s("no-such-member")),
            ]),
        3,
    );
    assert_eq!(r.error_code, NONE, "LeaveGroup: {r:?}");
    let codes: Vec<(String, i16)> = r
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (member.clone(), NONE),
            ("no-such-member".to_owned(), UNKNOWN_MEMBER_ID)
        ],
        "{r:?}"
    );
    assert_eq!(
        heartbeat(&mut c, group, generation, &member),
        UNKNOWN_MEMBER_ID
    );
    b.stop();
}

/// OffsetCommit: a partition of an unknown topic gets UNKNOWN_TOPIC_OR_PARTITION, the known
/// one in the same request is committed; OffsetFetch of several groups in one request;
/// OffsetDelete of an empty group's offsets, and GROUP_SUBSCRIBED_TO_TOPIC while a member is
/// subscribed.
#[test]
fn raw_offset_commit_fetch_and_delete() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let mut c = Client::connect(&b.addr());
    raw_create_topic(&mut c, "known", 2);
    find_group_coordinator(&mut c, &b, "g1");
    find_group_coordinator(&mut c, &b, "g2");
    let r = while_loading(
        || {
            c.call(
                commit_request(
                    "g1",
                    -1,
                    "",
                    &[("known", 0, 5), ("known", 1, 7), ("no-such-topic", 0, 1)],
                ),
                8,
            )
        },
        |r| r.topics[0].partitions[0].error_code,
    );
    for t in &r.topics {
        for p in &t.partitions {
            let want = if t.name.as_str() == "known" {
                NONE
            } else {
                UNKNOWN_TOPIC_OR_PARTITION
            };
            assert_eq!(
                p.error_code,
                want,
                "{} {}: {r:?}",
                t.name.as_str(),
                p.partition_index
            );
        }
    }
    let r = c.call(commit_request("g2", -1, "", &[("known", 0, 3)]), 8);
    assert_eq!(r.topics[0].partitions[0].error_code, NONE, "{r:?}");
    let got = fetch_offsets(
        &mut c,
        &[("g1", "known", &[0, 1]), ("g2", "known", &[0, 1])],
    );
    let k = |p: i32| ("known".to_owned(), p);
    assert_eq!(got["g1"][&k(0)], 5);
    assert_eq!(got["g1"][&k(1)], 7);
    assert_eq!(got["g2"][&k(0)], 3);
    assert_eq!(got["g2"][&k(1)], -1);

    // OffsetDelete (AdminClient.delete_consumer_group_offsets; not in the Python clients).
    let delete = |group: &str, p: i32| {
        OffsetDeleteRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(name("known"))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(p)
                ])])
    };
    let r = c.call(delete("g1", 0), 0);
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert_eq!(r.topics[0].partitions[0].error_code, NONE, "{r:?}");
    let got = fetch_offsets(&mut c, &[("g1", "known", &[0, 1])]);
    assert_eq!(
        (got["g1"][&k(0)], got["g1"][&k(1)]),
        (-1, 7),
        "after OffsetDelete of partition 0"
    );

    // A member subscribed to the topic: its offsets cannot be deleted.
    let (member, generation) = join_and_sync(&mut c, &b, "g2", "known");
    let r = c.call(delete("g2", 0), 0);
    let code = if r.error_code != NONE {
        r.error_code
    } else {
        r.topics[0].partitions[0].error_code
    };
    assert_eq!(
        code, GROUP_SUBSCRIBED_TO_TOPIC,
        "OffsetDelete under an active subscription: {r:?}"
    );
    assert_eq!(heartbeat(&mut c, "g2", generation, &member), NONE);
    b.stop();
}

/// 100,000 JoinGroup (v5, no member id) pipelined on one connection: the first group.max.size
/// get MEMBER_ID_REQUIRED, the rest GROUP_MAX_SIZE_REACHED, and meanwhile another group on
/// another connection joins, syncs and heartbeats.
#[test]
fn raw_join_flood_hits_group_max_size_and_other_groups_still_work() {
    const FLOOD: usize = 100_000;
    const MAX: usize = 100;
    let mut b = group_broker(Coordination::Embedded, &[("group.max.size", "100")]);
    let mut other = Client::connect(&b.addr());
    raw_create_topic(&mut other, "flood", 1);
    find_group_coordinator(&mut other, &b, "flooded");

    let flood = Client::connect(&b.addr());
    // One encoded request; each copy gets its own correlation id (bytes 8..12 of a frame).
    // A long session: the handed-out member ids must not expire (and free room in the
    // group) while the flood is still being answered on a slow machine.
    let template = kafka::encode(
        &join_request("flooded", "", range_protocol(&["flood"])).with_session_timeout_ms(600_000),
        JOIN_VERSION,
        0,
        Some("flood"),
    );
    let mut writer = flood.stream.try_clone().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let sent_w = Arc::clone(&sent);
    let started = Instant::now();
    let w = thread::spawn(move || {
        let per_chunk = 2000;
        let mut chunk = Vec::with_capacity(template.len() * per_chunk);
        let mut i = 0;
        while i < FLOOD {
            chunk.clear();
            for j in i..(i + per_chunk).min(FLOOD) {
                let mut f = template.to_vec();
                f[8..12].copy_from_slice(&(j as i32).to_be_bytes());
                chunk.extend_from_slice(&f);
            }
            writer.write_all(&chunk).expect("write the flood");
            i = (i + per_chunk).min(FLOOD);
            sent_w.store(i, Ordering::SeqCst);
        }
    });
    let received = Arc::new(AtomicUsize::new(0));
    let received_r = Arc::clone(&received);
    let mut read_stream = flood.stream;
    let r = thread::spawn(move || {
        let mut codes: BTreeMap<i16, usize> = BTreeMap::new();
        let mut wrong = Vec::new();
        for i in 0..FLOOD {
            let frame = kafka::read_frame(&mut read_stream)
                .unwrap_or_else(|| panic!("the flood connection closed after {i} responses"));
            let r: JoinGroupResponse =
                kafka::decode_response::<JoinGroupRequest>(JOIN_VERSION, i as i32, frame);
            *codes.entry(r.error_code).or_insert(0) += 1;
            let want = if i < MAX {
                MEMBER_ID_REQUIRED
            } else {
                GROUP_MAX_SIZE_REACHED
            };
            if r.error_code != want && wrong.len() < 10 {
                wrong.push((i, r.error_code));
            }
            received_r.store(i + 1, Ordering::SeqCst);
        }
        (codes, wrong)
    });

    // While the flood is being answered: another group works.
    wait_for(
        "the flood under way",
        SETTLE,
        || (received.load(Ordering::SeqCst) >= 1000).then_some(()),
        || b.log_tail(),
    );
    let t = Instant::now();
    let (member, generation) = join_and_sync(&mut other, &b, "bystanders", "flood");
    assert_eq!(
        heartbeat(&mut other, "bystanders", generation, &member),
        NONE
    );
    let during = received.load(Ordering::SeqCst);
    eprintln!(
        "MEASURE: join+sync+heartbeat of another group during the JoinGroup flood: {:?} \
         ({during} of {FLOOD} flood responses read by then)",
        t.elapsed()
    );
    w.join().expect("writer");
    let (codes, wrong) = r.join().expect("reader");
    eprintln!(
        "MEASURE: {FLOOD} pipelined JoinGroup answered in {:?}: {codes:?}",
        started.elapsed()
    );
    assert!(
        wrong.is_empty(),
        "unexpected answers (index, error code): {wrong:?}; all: {codes:?}"
    );
    assert_eq!(codes.get(&MEMBER_ID_REQUIRED), Some(&MAX));
    assert_eq!(codes.get(&GROUP_MAX_SIZE_REACHED), Some(&(FLOOD - MAX)));
    assert_eq!(sent.load(Ordering::SeqCst), FLOOD);
    // After the flood the coordinator still serves other groups. (The bystander of
    // above may have outlived its 10 s session while a slow machine answered the flood,
    // so a new group is formed instead of heartbeating the old member.)
    let (member, generation) = join_and_sync(&mut other, &b, "after-the-flood", "flood");
    assert_eq!(
        heartbeat(&mut other, "after-the-flood", generation, &member),
        NONE
    );
    let _ = other.call(ApiVersionsRequest::default(), 3);
    b.stop();
}

/// FindCoordinator with key type TRANSACTION (1): error 42 with a message about transactions
/// (v3 and batched v4); the coordinator of "polygenelubricants", whose Java hashCode is
/// i32::MIN, is found (partition 0 of Kafka's default 50) and serves the group; the offsets topic
/// has 50 partitions, is internal and compacted.
#[test]
fn raw_find_coordinator_transaction_key_and_min_hash_group() {
    let mut b = group_broker(
        Coordination::Embedded,
        &[("offsets.topic.num.partitions", "50")],
    );
    let mut c = Client::connect(&b.addr());
    raw_create_topic(&mut c, "poly", 1);

    let r = c.call(
        FindCoordinatorRequest::default()
            .with_key(s("some-txn"))
            .with_key_type(1),
        3,
    );
    let msg = r.error_message.as_deref().unwrap_or("").to_lowercase();
    assert_eq!(
        r.error_code, INVALID_REQUEST,
        "FindCoordinator(TRANSACTION) v3: {r:?}"
    );
    assert!(
        msg.contains("transaction"),
        "the error message does not mention transactions: {r:?}"
    );
    // InitProducerId with a transactional id: INVALID_REQUEST too (its response has no
    // message field), not the misleading TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
    let r = c.call(
        InitProducerIdRequest::default()
            .with_transactional_id(Some(kafka_protocol::messages::TransactionalId(s(
                "some-txn",
            ))))
            .with_transaction_timeout_ms(60_000),
        4,
    );
    assert_eq!(
        r.error_code, INVALID_REQUEST,
        "InitProducerId(transactional): {r:?}"
    );
    assert_eq!(r.producer_id.0, -1);
    let r = c.call(
        FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![s("some-txn")]),
        4,
    );
    assert_eq!(r.coordinators.len(), 1, "{r:?}");
    let k = &r.coordinators[0];
    assert_eq!(
        k.error_code, INVALID_REQUEST,
        "FindCoordinator(TRANSACTION) v4: {r:?}"
    );
    assert!(
        k.error_message
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains("transaction"),
        "{r:?}"
    );

    let group = "polygenelubricants";
    find_group_coordinator(&mut c, &b, group);
    // Batched (v4): several groups at once.
    let keys = [group, "my-group", "test-group-1"];
    let r = c.call(
        FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(keys.iter().map(|k| s(k)).collect()),
        4,
    );
    assert_eq!(r.coordinators.len(), 3, "{r:?}");
    for (k, want) in r.coordinators.iter().zip(keys) {
        assert_eq!(k.key.as_str(), want, "{r:?}");
        assert_eq!(
            (k.error_code, k.node_id.0, k.port),
            (NONE, 1, i32::from(b.port)),
            "{r:?}"
        );
    }
    // The offsets topic, created on first use: Kafka's 50 partitions, internal, compacted.
    let m = c.call(
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name("__consumer_offsets")))
            ]))
            .with_allow_auto_topic_creation(false),
        9,
    );
    let t = &m.topics[0];
    assert_eq!(t.error_code, NONE, "Metadata __consumer_offsets: {t:?}");
    assert_eq!(t.partitions.len(), 50, "__consumer_offsets partitions");
    assert!(t.is_internal, "__consumer_offsets is not internal: {t:?}");
    let d = c.call(
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("__consumer_offsets"))
            .with_configuration_keys(Some(vec![s("cleanup.policy")]))]),
        4,
    );
    let policy = d.results[0]
        .configs
        .iter()
        .find(|e| e.name.as_str() == "cleanup.policy")
        .and_then(|e| e.value.as_ref().map(ToString::to_string));
    assert_eq!(policy.as_deref(), Some("compact"), "{d:?}");

    let (member, generation) = join_and_sync(&mut c, &b, group, "poly");
    let r = c.call(
        commit_request(group, generation, &member, &[("poly", 0, 42)]),
        8,
    );
    assert_eq!(r.topics[0].partitions[0].error_code, NONE, "{r:?}");
    let got = fetch_offsets(&mut c, &[(group, "poly", &[0])]);
    assert_eq!(got[group][&("poly".to_owned(), 0)], 42);
    assert_eq!(heartbeat(&mut c, group, generation, &member), NONE);
    let _ = c.call(ApiVersionsRequest::default(), 3);
    b.stop();
}

/// A second member's join puts the group in rebalance: the first member's heartbeat gets
/// REBALANCE_IN_PROGRESS, its rejoin completes the round (new generation for both). A static
/// member (group.instance.id) replaced by a new join with the same instance id is fenced:
/// FENCED_INSTANCE_ID for the old member id.
#[test]
fn raw_rebalance_in_progress_and_fenced_static_member() {
    let mut b = group_broker(Coordination::Embedded, &[]);
    let mut c1 = Client::connect(&b.addr());
    raw_create_topic(&mut c1, "rebalance", 2);
    let group = "rebalance-group";
    let (m1, gen1) = join_and_sync(&mut c1, &b, group, "rebalance");

    // A second member: MEMBER_ID_REQUIRED, then a join that waits for m1 to rejoin.
    let mut c2 = Client::connect(&b.addr());
    let r = c2.call(
        join_request(group, "", range_protocol(&["rebalance"])),
        JOIN_VERSION,
    );
    assert_eq!(r.error_code, MEMBER_ID_REQUIRED, "{r:?}");
    let m2 = r.member_id.to_string();
    let corr = c2.next_correlation_id();
    c2.send(
        &join_request(group, &m2, range_protocol(&["rebalance"])),
        JOIN_VERSION,
        corr,
    );
    let code = wait_for(
        "REBALANCE_IN_PROGRESS on m1's heartbeat",
        SETTLE,
        || {
            let e = heartbeat(&mut c1, group, gen1, &m1);
            (e != NONE).then_some(e)
        },
        || b.log_tail(),
    );
    assert_eq!(code, REBALANCE_IN_PROGRESS);
    let r1 = c1.call(
        join_request(group, &m1, range_protocol(&["rebalance"])),
        JOIN_VERSION,
    );
    let r2 = kafka::decode_response::<JoinGroupRequest>(
        JOIN_VERSION,
        corr,
        c2.try_recv().expect("m2's join answered"),
    );
    assert_eq!(
        (r1.error_code, r2.error_code),
        (NONE, NONE),
        "{r1:?}\n{r2:?}"
    );
    assert_eq!(r1.generation_id, r2.generation_id);
    assert!(r1.generation_id > gen1, "{r1:?}");
    assert_eq!(r1.leader, r2.leader);
    let leader_members = if r1.leader.as_str() == m1 {
        &r1.members
    } else {
        &r2.members
    };
    assert_eq!(leader_members.len(), 2, "the leader sees both members");

    // Static membership: a new join with the same group.instance.id fences the old member id.
    let static_group = "static-raw";
    find_group_coordinator(&mut c1, &b, static_group);
    let join_static = |member: &str| {
        join_request(static_group, member, range_protocol(&["rebalance"]))
            .with_group_instance_id(Some(s("instance-1")))
    };
    let first = while_loading(|| c1.call(join_static(""), JOIN_VERSION), |r| r.error_code);
    assert_eq!(
        first.error_code, NONE,
        "a static member needs no MEMBER_ID_REQUIRED: {first:?}"
    );
    let old = first.member_id.to_string();
    let sync = c1.call(
        SyncGroupRequest::default()
            .with_group_id(GroupId(s(static_group)))
            .with_generation_id(first.generation_id)
            .with_member_id(s(&old))
            .with_group_instance_id(Some(s("instance-1")))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&old))
                .with_assignment(assignment("rebalance", &[0, 1]))]),
        SYNC_VERSION,
    );
    assert_eq!(sync.error_code, NONE, "{sync:?}");
    let second = c2.call(join_static(""), JOIN_VERSION);
    assert_eq!(
        second.error_code, NONE,
        "the static member's restart: {second:?}"
    );
    assert_ne!(second.member_id.as_str(), old, "{second:?}");
    let r = c1.call(
        HeartbeatRequest::default()
            .with_group_id(GroupId(s(static_group)))
            .with_generation_id(first.generation_id)
            .with_member_id(s(&old))
            .with_group_instance_id(Some(s("instance-1"))),
        HEARTBEAT_VERSION,
    );
    assert_eq!(
        r.error_code, FENCED_INSTANCE_ID,
        "the replaced member's heartbeat: {r:?}"
    );
    b.stop();
}
