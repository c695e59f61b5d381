#!/usr/bin/env python3
"""confluent-kafka consumer-group checks against one broker (driven by tests/groups.rs).

Records: record i of a run goes to partition i % partitions, key b"k<i>", value b"v-<i>", so a
reader knows where every record belongs without the writer's state.

Subcommands (each prints JSON lines; the last one is {"event": "result", "ok": true, ...}; on
failure {"event": "error", "ok": false, ...} and exit 1):

  create      create a topic with --partitions partitions and wait until each has a leader.
  produce     produce records --start .. --start+--records-1 (acks=all).
  member      one long-lived group member (its own process, so that tests can kill -9 it).
              Commands on stdin, one a line: "close" (commit what is pending, close, exit 0),
              "nocommit" (stop committing: what it consumes from now on is its uncommitted
              tail). Prints "assignment" on every assign/revoke/lost (the full assignment
              after it), "record" per record processed, "committed" per partition after each
              successful synchronous commit (the committed offset = next offset to read).
  consume     consume --max-records records from a new or existing group, then commit them
              synchronously (unless --commit none); prints per partition the first offset
              read and the committed offset.
  committed   the committed offsets of --group for --partitions partitions, without joining.
  reset       auto.offset.reset earliest / latest / error ("none") on a group without
              committed offsets.
  commits     manual commits: one asynchronous commit per record (callbacks checked), then a
              synchronous one; then --bench-seconds of synchronous commits (commits/s).
  autocommit  enable.auto.commit with auto.commit.interval.ms: the committed offsets reach the
              end of the topic without any explicit commit.
  assign      assign() without subscribe: commit with a group.id but no membership, read the
              commits back from another consumer with the same group.id.
  admin       AdminClient: list, describe, delete groups; list the group's offsets.
"""

import argparse
import json
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, fail  # noqa: E402

import confluent_kafka  # noqa: E402
from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions,  # noqa: E402
                             KafkaError, KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["create", "produce", "member", "consume", "committed", "reset",
                                       "commits", "autocommit", "assign", "admin"])
    p.add_argument("--bootstrap", required=True, help="host:port")
    p.add_argument("--topic", required=True)
    p.add_argument("--group", default="")
    p.add_argument("--name", default="member", help="member: the name printed with its events")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--records", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="produce: index of the first record")
    p.add_argument("--max-records", type=int, default=0)
    p.add_argument("--commit", choices=["sync", "none"], default="sync")
    p.add_argument("--commit-every", type=int, default=1, help="member: commit after every N records")
    p.add_argument("--instance-id", default=None, help="member: group.instance.id (static membership)")
    p.add_argument("--assignor", default=None, help="partition.assignment.strategy")
    p.add_argument("--session-ms", type=int, default=6000)
    p.add_argument("--heartbeat-ms", type=int, default=500)
    p.add_argument("--reset", default="earliest", help="auto.offset.reset")
    p.add_argument("--interval-ms", type=int, default=200, help="autocommit: auto.commit.interval.ms")
    p.add_argument("--bench-seconds", type=float, default=0)
    p.add_argument("--timeout", type=float, default=60, help="seconds for each wait")
    return p.parse_args()


def check(cond, message, **fields):
    if not cond:
        fail(message, **fields)


def value_of(i):
    return b"v-%d" % i


def consumer_conf(args, group, **extra):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": args.reset,
        "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": args.heartbeat_ms,
        "fetch.wait.max.ms": 100,
        "enable.partition.eof": False,
    }
    if args.assignor:
        conf["partition.assignment.strategy"] = args.assignor
    conf.update(extra)
    return conf


def offsets_json(tps):
    return {str(tp.partition): tp.offset for tp in sorted(tps, key=lambda t: t.partition)}


def check_record(msg):
    """A consumed record is the one its offset says it is: value v-<i> with i at its partition."""
    check(msg.error() is None, "consume error: %s" % (msg.error(),))
    v = msg.value() or b""
    check(v.startswith(b"v-"), "partition %d offset %d: value %r is not ours" % (msg.partition(), msg.offset(), v[:40]))


def wait_leaders(admin, args, topic, n):
    deadline = time.monotonic() + args.timeout
    while True:
        t = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == n and \
                all(p.leader >= 0 and p.error is None for p in t.partitions.values()):
            return
        check(time.monotonic() < deadline, "topic %s: no %d led partitions: %r"
              % (topic, n, t and (t.error, sorted(t.partitions))))
        time.sleep(0.1)


def cmd_create(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    fut = admin.create_topics([NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)],
                              request_timeout=15)[args.topic]
    try:
        fut.result(timeout=args.timeout)
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, "create_topics: %s" % e)
    wait_leaders(admin, args, args.topic, args.partitions)
    emit("result", ok=True, topic=args.topic, partitions=args.partitions)


def produce(args, start, count):
    """Produces records start..start+count-1 to their partitions; returns the count acked."""
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    acked = [0]

    def cb(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked[0] += 1

    for i in range(start, start + count):
        while True:
            try:
                p.produce(args.topic, key=b"k%d" % i, value=value_of(i), partition=i % args.partitions,
                          on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(args.timeout)
    check(left == 0 and not errors, "produce: %d not delivered, errors %r" % (left, errors[:5]))
    return acked[0]


def cmd_produce(args):
    n = produce(args, args.start, args.records)
    emit("result", ok=True, acked=n)


def cmd_member(args):
    commands = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("eof")

    threading.Thread(target=read_stdin, daemon=True).start()
    extra = {}
    if args.instance_id:
        extra["group.instance.id"] = args.instance_id
    c = Consumer(consumer_conf(args, args.group, **extra))
    state = {"committing": True, "pending": {}, "since_commit": 0}

    def commit_pending(consumer):
        pending = state["pending"]
        if not pending or not state["committing"]:
            return
        offsets = [TopicPartition(args.topic, p, o) for p, o in sorted(pending.items())]
        try:
            res = consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            emit("commit_failed", name=args.name, error=str(e.args[0]), ts=time.time())
            return
        for tp in res:
            if tp.error is None:
                emit("committed", name=args.name, p=tp.partition, o=tp.offset)
                pending.pop(tp.partition, None)
            else:
                emit("commit_failed", name=args.name, p=tp.partition, error=str(tp.error), ts=time.time())
        state["since_commit"] = 0

    def show(kind, consumer):
        try:
            parts = sorted(tp.partition for tp in consumer.assignment())
        except KafkaException:
            # Revoked during close(): the handle is being destroyed and has no assignment
            # to report (librdkafka raises _DESTROY here, whatever the broker).
            parts = []
        emit("assignment", name=args.name, kind=kind, partitions=parts, ts=time.time())

    def on_assign(consumer, partitions):
        consumer.assign(partitions)
        show("assign", consumer)

    def on_revoke(consumer, partitions):
        commit_pending(consumer)
        consumer.unassign()
        show("revoke", consumer)

    def on_lost(consumer, partitions):
        state["pending"].clear()
        consumer.unassign()
        show("lost", consumer)

    emit("subscribing", name=args.name, ts=time.time(), pid=os.getpid())
    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    while True:
        try:
            cmd = commands.get_nowait()
        except queue.Empty:
            cmd = None
        if cmd == "nocommit":
            state["committing"] = False
            emit("nocommit", name=args.name)
        elif cmd in ("close", "eof"):
            commit_pending(c)
            c.close()
            emit("result", ok=True, name=args.name)
            return
        msg = c.poll(0.1)
        if msg is None:
            continue
        if msg.error() is not None:
            emit("consume_error", name=args.name, error=str(msg.error()))
            continue
        check_record(msg)
        emit("record", name=args.name, p=msg.partition(), o=msg.offset())
        state["pending"][msg.partition()] = msg.offset() + 1
        state["since_commit"] += 1
        if state["since_commit"] >= args.commit_every:
            commit_pending(c)


def consume_n(c, n, timeout):
    """Consumes n records; returns {partition: [offsets]}."""
    got = {}
    count = 0
    deadline = time.monotonic() + timeout
    while count < n:
        check(time.monotonic() < deadline, "consumed %d of %d records" % (count, n),
              partitions={str(p): len(o) for p, o in got.items()})
        msg = c.poll(0.2)
        if msg is None:
            continue
        check_record(msg)
        got.setdefault(msg.partition(), []).append(msg.offset())
        count += 1
    return got


def cmd_consume(args):
    c = Consumer(consumer_conf(args, args.group))
    c.subscribe([args.topic])
    got = consume_n(c, args.max_records, args.timeout)
    if args.commit == "sync":
        offsets = [TopicPartition(args.topic, p, max(o) + 1) for p, o in got.items()]
        res = c.commit(offsets=offsets, asynchronous=False)
        check(all(tp.error is None for tp in res), "commit failed: %r" % res)
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=args.timeout)}
    for p in range(args.partitions):
        offs = got.get(p, [])
        check(offs == sorted(offs) and len(set(offs)) == len(offs), "partition %d: offsets out of order" % p)
        emit("partition", p=p, first=offs[0] if offs else -1, last=offs[-1] if offs else -1, count=len(offs),
             committed=committed.get(p, -1001))
    c.close()
    emit("result", ok=True, records=sum(len(o) for o in got.values()))


def cmd_committed(args):
    c = Consumer(consumer_conf(args, args.group))
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    res = c.committed(tps, timeout=args.timeout)
    for tp in res:
        check(tp.error is None, "committed: %s" % tp.error)
        emit("partition", p=tp.partition, committed=tp.offset)
    c.close()
    emit("result", ok=True)


def cmd_reset(args):
    """The topic holds --records records before this consumer subscribes."""
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    wait_leaders(admin, args, args.topic, args.partitions)
    policy = args.reset
    c = Consumer(consumer_conf(args, args.group, **{"auto.offset.reset": policy}))
    assigned = threading.Event()
    c.subscribe([args.topic], on_assign=lambda cons, parts: assigned.set())
    deadline = time.monotonic() + args.timeout
    if policy == "error":
        # No committed offset and no reset policy: the client reports the error.
        while time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                fail("read offset %s with auto.offset.reset=error" % msg.offset())
            emit("consume_error", code=err.code(), name=err.name(), message=err.str())
            if err.code() == KafkaError._AUTO_OFFSET_RESET:
                c.close()
                emit("result", ok=True, error=err.name())
                return
        fail("no error with auto.offset.reset=error within %ss" % args.timeout)
    if policy == "earliest":
        got = consume_n(c, args.records, args.timeout)
        for p, offs in got.items():
            check(offs == list(range(len(offs))), "partition %d: offsets %r, expected 0.." % (p, offs[:10]))
        emit("result", ok=True, records=sum(len(o) for o in got.values()), first=min(min(o) for o in got.values()))
        c.close()
        return
    # latest: nothing of the first --records records; records produced after the assignment are
    # read. The reset happens at the first fetch, which may follow the first new records, so
    # produce one record per partition at a time until one arrives on every partition.
    while not assigned.is_set():
        check(time.monotonic() < deadline, "no assignment")
        c.poll(0.1)
    seen = {}
    nxt = args.records
    while len(seen) < args.partitions:
        check(time.monotonic() < deadline, "latest: records seen on %r only" % sorted(seen))
        produce(args, nxt, args.partitions)
        nxt += args.partitions
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            msg = c.poll(0.1)
            if msg is None:
                continue
            check_record(msg)
            seen.setdefault(msg.partition(), msg.offset())
    before = args.records // args.partitions
    for p, first in sorted(seen.items()):
        check(first >= before, "latest: partition %d read offset %d, written before the consumer joined" % (p, first))
        emit("partition", p=p, first=first)
    c.close()
    emit("result", ok=True, first=min(seen.values()))


def cmd_commits(args):
    results = []
    cb_errors = []

    def on_commit(err, partitions):
        if err is not None:
            cb_errors.append(str(err))
        for tp in partitions or []:
            if tp.error is not None:
                cb_errors.append(str(tp.error))
        results.append(len(partitions or []))

    c = Consumer(consumer_conf(args, args.group, on_commit=on_commit))
    c.subscribe([args.topic])
    count = 0
    last = {}
    deadline = time.monotonic() + args.timeout
    while count < args.records:
        check(time.monotonic() < deadline, "consumed %d of %d" % (count, args.records))
        msg = c.poll(0.2)
        if msg is None:
            continue
        check_record(msg)
        count += 1
        last[msg.partition()] = msg.offset() + 1
        # asynchronous: returns at once, the callback reports the outcome from a later poll
        c.commit(offsets=[TopicPartition(args.topic, msg.partition(), msg.offset() + 1)], asynchronous=True)
    # Serve the remaining callbacks.
    while len(results) < count:
        check(time.monotonic() < deadline, "%d of %d async commit callbacks" % (len(results), count))
        c.poll(0.1)
    check(not cb_errors, "async commits failed: %r" % cb_errors[:5])
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=args.timeout)}
    check(all(committed[p] == o for p, o in last.items()), "after async commits: committed %r, consumed up to %r"
          % (committed, last))
    emit("async_commits", callbacks=len(results), committed=offsets_json(c.committed(tps, timeout=args.timeout)))
    # synchronous
    res = c.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in last.items()], asynchronous=False)
    check(all(tp.error is None for tp in res), "sync commit: %r" % res)
    committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=args.timeout)}
    check(all(committed[p] == o for p, o in last.items()), "after sync commit: %r vs %r" % (committed, last))
    emit("sync_commit", committed=json.dumps(committed))
    rate = None
    if args.bench_seconds > 0:
        p, o = sorted(last.items())[0]
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.bench_seconds:
            # alternate between two offsets so that every commit changes the stored value
            res = c.commit(offsets=[TopicPartition(args.topic, p, o - (n % 2))], asynchronous=False)
            check(res[0].error is None, "bench commit: %s" % res[0].error)
            n += 1
        rate = n / (time.monotonic() - t0)
        emit("measure", what="sync_commits_per_s", value=round(rate, 1), commits=n)
    c.close()
    emit("result", ok=True, records=count, commits_per_s=round(rate, 1) if rate else 0)


def cmd_autocommit(args):
    c = Consumer(consumer_conf(args, args.group, **{"enable.auto.commit": True,
                                                    "auto.commit.interval.ms": args.interval_ms}))
    c.subscribe([args.topic])
    got = consume_n(c, args.records, args.timeout)
    end = {p: max(o) + 1 for p, o in got.items()}
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    while True:
        committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=args.timeout)}
        if all(committed.get(p) == o for p, o in end.items()):
            break
        check(time.monotonic() < deadline, "auto commit: committed %r, consumed up to %r" % (committed, end))
        c.poll(0.05)
    emit("autocommitted", after_ms=round((time.monotonic() - t0) * 1000), committed=json.dumps(committed))
    c.close()
    emit("result", ok=True, records=len(got))


def cmd_assign(args):
    """Partition p holds records with offsets 0..; commit offset 2*p+1 for each partition."""
    c = Consumer(consumer_conf(args, args.group))
    tps = [TopicPartition(args.topic, p, 0) for p in range(args.partitions)]
    c.assign(tps)
    want = {p: 2 * p + 1 for p in range(args.partitions)}
    got = consume_n(c, args.partitions, args.timeout)
    res = c.commit(offsets=[TopicPartition(args.topic, p, o) for p, o in want.items()], asynchronous=False)
    check(all(tp.error is None for tp in res), "commit without membership: %r" % res)
    c.close()
    other = Consumer(consumer_conf(args, args.group))
    committed = {tp.partition: tp.offset for tp in
                 other.committed([TopicPartition(args.topic, p) for p in range(args.partitions)], timeout=args.timeout)}
    check(committed == want, "another consumer of the group reads %r, committed %r" % (committed, want))
    # It resumes there when assigned without an offset.
    other.assign([TopicPartition(args.topic, p) for p in range(args.partitions)])
    first = {}
    deadline = time.monotonic() + args.timeout
    while len(first) < args.partitions:
        check(time.monotonic() < deadline, "resume: first offsets %r" % first)
        msg = other.poll(0.2)
        if msg is None:
            continue
        check_record(msg)
        first.setdefault(msg.partition(), msg.offset())
    check(first == want, "assigned consumer resumed at %r, committed %r" % (first, want))
    other.close()
    emit("result", ok=True, committed=json.dumps(committed), consumed=sum(len(o) for o in got.values()))


def cmd_admin(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    g = args.group
    c = Consumer(consumer_conf(args, g, **{"client.id": "admin-test-member"}))
    assigned = threading.Event()
    c.subscribe([args.topic], on_assign=lambda cons, parts: assigned.set())
    got = consume_n(c, args.records, args.timeout)
    check(assigned.is_set(), "not assigned")
    res = c.commit(offsets=[TopicPartition(args.topic, p, max(o) + 1) for p, o in got.items()], asynchronous=False)
    check(all(tp.error is None for tp in res), "commit: %r" % res)
    end = {p: max(o) + 1 for p, o in got.items()}

    def poll_some():
        c.poll(0.05)

    # ListGroups
    listing = admin.list_consumer_groups(request_timeout=15).result(timeout=args.timeout)
    check(not listing.errors, "list_consumer_groups errors: %r" % listing.errors)
    mine = [x for x in listing.valid if x.group_id == g]
    check(len(mine) == 1, "list_consumer_groups: %s not listed: %r" % (g, [x.group_id for x in listing.valid]))
    check(mine[0].state == ConsumerGroupState.STABLE, "listed state %r" % mine[0].state)
    emit("listed", group=g, state=str(mine[0].state), simple=mine[0].is_simple_consumer_group)
    poll_some()
    # DescribeGroups
    d = admin.describe_consumer_groups([g], request_timeout=15)[g].result(timeout=args.timeout)
    check(d.state == ConsumerGroupState.STABLE, "described state %r" % d.state)
    check(len(d.members) == 1, "described members %r" % d.members)
    m = d.members[0]
    parts = sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == args.topic)
    check(parts == list(range(args.partitions)), "described assignment %r" % parts)
    check(m.client_id == "admin-test-member", "described client id %r" % m.client_id)
    check(d.partition_assignor in ("range", "roundrobin"), "partition assignor %r" % d.partition_assignor)
    emit("described", group=g, state=str(d.state), members=len(d.members), assignor=d.partition_assignor,
         partitions=parts, member_id=m.member_id, host=m.host)
    poll_some()
    # OffsetFetch through the admin API
    lo = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=15)[g] \
        .result(timeout=args.timeout)
    offs = {tp.partition: tp.offset for tp in lo.topic_partitions if tp.topic == args.topic}
    check(offs == end, "list_consumer_group_offsets %r, committed %r" % (offs, end))
    emit("group_offsets", offsets=json.dumps(offs))
    # DeleteGroups of a group with a member: GROUP_NOT_EMPTY.
    try:
        admin.delete_consumer_groups([g], request_timeout=15)[g].result(timeout=args.timeout)
        fail("delete_consumer_groups of a group with a member succeeded")
    except KafkaException as e:
        err = e.args[0]
        emit("delete_non_empty", code=err.code(), name=err.name())
        check(err.code() == KafkaError.NON_EMPTY_GROUP, "delete non-empty group: %s" % err)
    c.close()
    # Once empty: the state is Empty, deletion succeeds, and the group is gone.
    deadline = time.monotonic() + args.timeout
    while True:
        d = admin.describe_consumer_groups([g], request_timeout=15)[g].result(timeout=args.timeout)
        if d.state == ConsumerGroupState.EMPTY and not d.members:
            break
        check(time.monotonic() < deadline, "group not empty after close: %r" % d.state)
        time.sleep(0.1)
    admin.delete_consumer_groups([g], request_timeout=15)[g].result(timeout=args.timeout)
    emit("deleted", group=g)
    listing = admin.list_consumer_groups(request_timeout=15).result(timeout=args.timeout)
    check(g not in [x.group_id for x in listing.valid], "%s still listed after deletion" % g)
    lo = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=15)[g] \
        .result(timeout=args.timeout)
    left = [tp for tp in lo.topic_partitions if tp.offset >= 0]
    check(not left, "offsets left after deletion: %r" % left)
    emit("result", ok=True, confluent_kafka=confluent_kafka.version()[0], librdkafka=confluent_kafka.libversion()[0])


def main():
    args = parse_args()
    {"create": cmd_create, "produce": cmd_produce, "member": cmd_member, "consume": cmd_consume,
     "committed": cmd_committed, "reset": cmd_reset, "commits": cmd_commits, "autocommit": cmd_autocommit,
     "assign": cmd_assign, "admin": cmd_admin}[args.command](args)


if __name__ == "__main__":
    try:
        main()
    except KafkaException as e:
        fail("KafkaException: %s" % (e.args[0],))
