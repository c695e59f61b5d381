#!/usr/bin/env python3
"""kafka-python consumer-group checks against one broker (driven by tests/groups.rs).

Subcommands (JSON lines; the last one is {"event": "result", "ok": true, ...}; on failure
{"event": "error", "ok": false, ...} and exit 1):

  assignors  --strategy range|roundrobin|sticky: --members consumers (one thread each, one
             KafkaConsumer per thread) in one group over two topics of --partitions partitions.
             Once the group is stable the assignment must be disjoint, complete and what the
             strategy defines:
               range       per topic, each member holds a contiguous block; blocks differ by at
                           most one partition, and the member with a bigger block in one topic
                           has it in every topic (members in member-id order, per topic);
               roundrobin  the partitions in (topic, partition) order go to the members in turn
                           (the owner sequence repeats with period = number of members);
               sticky      balanced (sizes differ by at most one).
             Then one member closes (LeaveGroup); the survivors' new assignment is checked the
             same way, and for sticky each survivor keeps every partition it had.
  roundtrip  produce --records records with the client's default producer (kafka-python 3.x:
             idempotent), consume them all in a group, commit, and check a second consumer of
             the group sees the committed offsets at the end of the topic.
"""

import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, fail  # noqa: E402

import kafka  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from kafka.errors import TopicAlreadyExistsError  # noqa: E402
from kafka.coordinator.assignors.range import RangePartitionAssignor  # noqa: E402
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor  # noqa: E402
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor  # noqa: E402

ASSIGNORS = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
             "sticky": StickyPartitionAssignor}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["assignors", "roundtrip"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True, help="assignors: prefix of the two topics' names")
    p.add_argument("--group", required=True)
    p.add_argument("--strategy", choices=sorted(ASSIGNORS), default="range")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--session-ms", type=int, default=6000)
    p.add_argument("--timeout", type=float, default=60)
    return p.parse_args()


def check(cond, message, **fields):
    if not cond:
        fail(message, **fields)


def create_topics(args, names, partitions):
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names], timeout_ms=15000)
    except TopicAlreadyExistsError:
        pass
    admin.close()
    # Until the metadata shows every partition.
    c = KafkaConsumer(bootstrap_servers=args.bootstrap)
    deadline = time.monotonic() + args.timeout
    for n in names:
        while len(c.partitions_for_topic(n) or ()) != partitions:
            check(time.monotonic() < deadline, "topic %s: metadata lacks partitions" % n)
            time.sleep(0.1)
    c.close()


class Member(threading.Thread):
    """One KafkaConsumer polling in its own thread; `assignment` is its latest assignment."""

    def __init__(self, args, name, topics, assignor):
        super().__init__(daemon=True)
        self.args = args
        self.name = name
        self.topics = topics
        # kafka-python's sticky assignor keeps the member's previous assignment in *class*
        # attributes (StickyPartitionAssignor.member_assignment, .generation): members that
        # share a process would share them. A subclass per member gives each its own.
        self.assignor = type("%s_%s" % (assignor.__name__, name), (assignor,), {})
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.assignment = frozenset()
        self.error = None
        self.closed = threading.Event()

    def run(self):
        try:
            c = KafkaConsumer(bootstrap_servers=self.args.bootstrap, group_id=self.args.group,
                              client_id=self.name, enable_auto_commit=False, auto_offset_reset="earliest",
                              partition_assignment_strategy=[self.assignor],
                              session_timeout_ms=self.args.session_ms, heartbeat_interval_ms=500,
                              request_timeout_ms=max(30000, self.args.session_ms + 5000))
            c.subscribe(self.topics)
            while not self.stop.is_set():
                c.poll(timeout_ms=100)
                a = frozenset((tp.topic, tp.partition) for tp in c.assignment())
                with self.lock:
                    changed = a != self.assignment
                    self.assignment = a
                if changed:
                    emit("assignment", name=self.name, partitions=sorted("%s:%d" % x for x in a), ts=time.time())
            c.close()
        except Exception as e:  # reported by the orchestrating thread
            self.error = repr(e)
        finally:
            self.closed.set()

    def get(self):
        with self.lock:
            return self.assignment


def wait_stable(args, members, all_parts):
    """Waits until every member holds partitions, disjoint, covering all; returns {name: set}."""
    deadline = time.monotonic() + args.timeout
    while True:
        for m in members:
            check(m.error is None, "member %s failed: %s" % (m.name, m.error))
        snap = {m.name: m.get() for m in members}
        union = set()
        total = 0
        for a in snap.values():
            union |= a
            total += len(a)
        if all(snap.values()) and union == all_parts and total == len(all_parts):
            return snap
        check(time.monotonic() < deadline, "no stable assignment",
              assignment={k: sorted("%s:%d" % x for x in v) for k, v in snap.items()})
        time.sleep(0.05)


def check_strategy(strategy, snap, topics, partitions):
    sizes = sorted(len(a) for a in snap.values())
    check(sizes[-1] - sizes[0] <= (1 if strategy != "range" else len(topics)), "unbalanced: %r" % sizes)
    if strategy == "range":
        orders = []
        for t in topics:
            blocks = {name: sorted(p for (tt, p) in a if tt == t) for name, a in snap.items()}
            for name, ps in blocks.items():
                check(not ps or ps == list(range(ps[0], ps[0] + len(ps))),
                      "range: %s holds %s %r, not a contiguous block" % (name, t, ps))
            order = sorted((n for n in blocks if blocks[n]), key=lambda n: blocks[n][0])
            lens = [len(blocks[n]) for n in order]
            # members in member-id order: the bigger blocks first, sizes differ by at most one
            check(lens == sorted(lens, reverse=True) and lens[0] - lens[-1] <= 1,
                  "range: %s blocks %r" % (t, blocks))
            orders.append(order)
        check(all(o == orders[0] for o in orders), "range: the member order differs between topics: %r" % orders)
    elif strategy == "roundrobin":
        owner = {}
        for name, a in snap.items():
            for tp in a:
                owner[tp] = name
        seq = [owner[tp] for tp in sorted(owner)]
        m = len(snap)
        check(len(set(seq[:m])) == m, "roundrobin: first %d partitions go to %r" % (m, seq[:m]))
        check(all(seq[i] == seq[i % m] for i in range(len(seq))), "roundrobin: owners in order %r" % seq)


def cmd_assignors(args):
    topics = ["%s-a" % args.topic, "%s-b" % args.topic]
    create_topics(args, topics, args.partitions)
    all_parts = {(t, p) for t in topics for p in range(args.partitions)}
    assignor = ASSIGNORS[args.strategy]
    members = [Member(args, "m%d" % i, topics, assignor) for i in range(args.members)]
    for m in members:
        m.start()
    snap = wait_stable(args, members, all_parts)
    check_strategy(args.strategy, snap, topics, args.partitions)
    emit("stable", phase="all", assignment={k: sorted("%s:%d" % x for x in v) for k, v in snap.items()})
    # One member leaves.
    leaver = members[0]
    leaver.stop.set()
    check(leaver.closed.wait(args.timeout), "member %s did not close" % leaver.name)
    check(leaver.error is None, "member %s: %s" % (leaver.name, leaver.error))
    survivors = members[1:]
    after = wait_stable(args, survivors, all_parts)
    check_strategy(args.strategy, after, topics, args.partitions)
    emit("stable", phase="after_leave", assignment={k: sorted("%s:%d" % x for x in v) for k, v in after.items()})
    if args.strategy == "sticky":
        for m in survivors:
            lost = snap[m.name] - after[m.name]
            check(not lost, "sticky: %s lost %r when %s left" % (m.name, sorted(lost), leaver.name))
    for m in survivors:
        m.stop.set()
    for m in survivors:
        check(m.closed.wait(args.timeout), "member %s did not close" % m.name)
    emit("result", ok=True, strategy=args.strategy, kafka_python=kafka.__version__)


def cmd_roundtrip(args):
    create_topics(args, [args.topic], args.partitions)
    p = KafkaProducer(bootstrap_servers=args.bootstrap)
    emit("producer", enable_idempotence=bool(p.config.get("enable_idempotence")), acks=str(p.config.get("acks")))
    futures = [p.send(args.topic, key=b"k%d" % i, value=b"v-%d" % i, partition=i % args.partitions)
               for i in range(args.records)]
    p.flush(timeout=args.timeout)
    for f in futures:
        f.get(timeout=args.timeout)
    p.close()
    c = KafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      session_timeout_ms=args.session_ms, heartbeat_interval_ms=500)
    seen = set()
    deadline = time.monotonic() + args.timeout
    while len(seen) < args.records:
        check(time.monotonic() < deadline, "consumed %d of %d" % (len(seen), args.records))
        for tp, recs in c.poll(timeout_ms=200).items():
            for r in recs:
                i = int(r.value[2:])
                check(r.value == b"v-%d" % i and i % args.partitions == tp.partition,
                      "record %r at %s:%d" % (r.value, tp.topic, tp.partition))
                check(i not in seen, "record %d read twice" % i)
                seen.add(i)
    c.commit()
    c.close()
    end = {pp: len(range(pp, args.records, args.partitions)) for pp in range(args.partitions)}
    c2 = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False)
    committed = {pp: c2.committed(TopicPartition(args.topic, pp)) for pp in range(args.partitions)}
    c2.close()
    check(committed == end, "committed %r, end %r" % (committed, end))
    emit("result", ok=True, records=len(seen), kafka_python=kafka.__version__)


def main():
    args = parse_args()
    {"assignors": cmd_assignors, "roundtrip": cmd_roundtrip}[args.command](args)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # a client error: reported as a JSON line like the checks
        fail("%s: %s" % (type(e).__name__, e))
