#!/usr/bin/env python3
"""confluent-kafka AdminClient checks against one broker (driven by tests/admin.rs).

Modes:
  admin      create a topic with configs and describe them back; AlterConfigs and
             IncrementalAlterConfigs; CreatePartitions 3 -> 5; DeleteTopics; the errors
             TOPIC_ALREADY_EXISTS, INVALID_CONFIG and INVALID_REPLICATION_FACTOR.
  offsets    ListOffsets by timestamp (offsets_for_times and AdminClient.list_offsets, including
             OffsetSpec.max_timestamp) over records with known timestamps.
  retention  a topic with tiny segments and retention: the earliest offset moves past 0.
  compact    a compacted topic with tiny segments: after cleaning, one value per key (the
             latest) below the active segment.

Prints JSON lines; the last one is {"event": "result", "ok": true, ...}. Exits 1 on failure.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, fail  # noqa: E402

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,  # noqa: E402
                                   ConfigSource, NewPartitions, NewTopic, OffsetSpec, ResourceType)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True, help="host:port")
    p.add_argument("--mode", choices=["admin", "offsets", "retention", "compact"], required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--timeout", type=float, default=25, help="seconds for each wait")
    return p.parse_args()


def admin_client(args):
    return AdminClient({"bootstrap.servers": args.bootstrap})


def check(cond, message, **fields):
    if not cond:
        fail(message, **fields)


def error_of(future, timeout):
    """The KafkaError a future failed with, or None when it succeeded."""
    try:
        future.result(timeout=timeout)
        return None
    except KafkaException as e:
        return e.args[0]


def create(admin, args, topic, partitions, config):
    err = error_of(admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                                 config=config)], request_timeout=15)[topic], args.timeout)
    check(err is None, "create_topics %s failed: %s" % (topic, err))
    wait_partitions(admin, args, topic, partitions)


def wait_partitions(admin, args, topic, n):
    """Polls metadata until `topic` has `n` partitions, each with a leader."""
    deadline = time.monotonic() + args.timeout
    while True:
        t = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == n and \
                all(p.leader >= 0 and p.error is None for p in t.partitions.values()):
            return
        check(time.monotonic() < deadline, "topic %s: no %d led partitions in metadata: %r"
              % (topic, n, t and (t.error, sorted(t.partitions))))
        time.sleep(0.1)


def describe(admin, args, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res], request_timeout=15)[res].result(timeout=args.timeout)


def expect_config(configs, name, value, source):
    e = configs.get(name)
    check(e is not None, "%s not described" % name)
    check(e.value == value and e.source == source, "%s = %r (source %s), expected %r (source %s)"
          % (name, e.value, ConfigSource(e.source), value, ConfigSource(source)))


def mode_admin(args):
    admin = admin_client(args)
    topic = args.topic
    create(admin, args, topic, 3, {"retention.ms": "3600000", "cleanup.policy": "compact",
                                   "max.message.bytes": "200000"})
    c = describe(admin, args, topic)
    expect_config(c, "retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    expect_config(c, "cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    expect_config(c, "max.message.bytes", "200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    check(c["segment.bytes"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value, "segment.bytes was not set")
    emit("described", configs=len(c))

    # AlterConfigs replaces the whole set: cleanup.policy and max.message.bytes go back to defaults.
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "7200000"})
    err = error_of(admin.alter_configs([res], request_timeout=15)[res], args.timeout)
    check(err is None, "alter_configs failed: %s" % err)
    c = describe(admin, args, topic)
    expect_config(c, "retention.ms", "7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    check(c["cleanup.policy"].value == "delete" and
          c["cleanup.policy"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
          "cleanup.policy after AlterConfigs: %r" % (c["cleanup.policy"],))
    check(c["max.message.bytes"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
          "max.message.bytes kept after AlterConfigs: %r" % (c["max.message.bytes"],))

    # IncrementalAlterConfigs: SET one key, DELETE another; the rest stays.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET),
    ])
    err = error_of(admin.incremental_alter_configs([res], request_timeout=15)[res], args.timeout)
    check(err is None, "incremental_alter_configs (set) failed: %s" % err)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    err = error_of(admin.incremental_alter_configs([res], request_timeout=15)[res], args.timeout)
    check(err is None, "incremental_alter_configs (delete) failed: %s" % err)
    c = describe(admin, args, topic)
    expect_config(c, "segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    expect_config(c, "cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    check(c["retention.ms"].source != ConfigSource.DYNAMIC_TOPIC_CONFIG.value and
          c["retention.ms"].value != "7200000", "retention.ms not deleted: %r" % (c["retention.ms"],))
    # A bad value in an incremental alter is refused and changes nothing.
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("segment.bytes", "big", incremental_operation=AlterConfigOpType.SET)])
    err = error_of(admin.incremental_alter_configs([res], request_timeout=15)[res], args.timeout)
    check(err is not None and err.code() == KafkaError.INVALID_CONFIG,
          "incremental alter segment.bytes=big: %s" % err)
    expect_config(describe(admin, args, topic), "segment.bytes", "1048576",
                  ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    emit("altered")

    # CreatePartitions 3 -> 5.
    err = error_of(admin.create_partitions([NewPartitions(topic, 5)], request_timeout=15)[topic], args.timeout)
    check(err is None, "create_partitions failed: %s" % err)
    wait_partitions(admin, args, topic, 5)
    # Shrinking is refused.
    err = error_of(admin.create_partitions([NewPartitions(topic, 4)], request_timeout=15)[topic], args.timeout)
    check(err is not None and err.code() == KafkaError.INVALID_PARTITIONS, "shrink to 4: %s" % err)
    emit("partitions", partitions=5)

    # Errors on create.
    err = error_of(admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=15)[topic], args.timeout)
    check(err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS, "duplicate create: %s" % err)
    bad = topic + "-bad"
    err = error_of(admin.create_topics([NewTopic(bad, 1, 1, config={"retention.ms": "soon"})],
                                       request_timeout=15)[bad], args.timeout)
    check(err is not None and err.code() == KafkaError.INVALID_CONFIG, "retention.ms=soon: %s" % err)
    err = error_of(admin.create_topics([NewTopic(bad, 1, 1, config={"segment.bytes": "13"})],
                                       request_timeout=15)[bad], args.timeout)
    check(err is not None and err.code() == KafkaError.INVALID_CONFIG, "segment.bytes=13: %s" % err)
    err = error_of(admin.create_topics([NewTopic(bad, 1, 3)], request_timeout=15)[bad], args.timeout)
    check(err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR,
          "replication factor 3: %s" % err)
    md = admin.list_topics(timeout=10)
    check(bad not in md.topics, "refused topic %s exists: %r" % (bad, md.topics.get(bad)))
    emit("errors")

    # DeleteTopics: gone from metadata, and deleting again is UNKNOWN_TOPIC_OR_PART.
    err = error_of(admin.delete_topics([topic], request_timeout=15)[topic], args.timeout)
    check(err is None, "delete_topics failed: %s" % err)
    deadline = time.monotonic() + args.timeout
    while topic in admin.list_topics(timeout=10).topics:
        check(time.monotonic() < deadline, "deleted topic %s still in metadata" % topic)
        time.sleep(0.1)
    err = error_of(admin.delete_topics([topic], request_timeout=15)[topic], args.timeout)
    check(err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, "delete again: %s" % err)
    emit("result", ok=True, mode="admin")


def produce(args, records, per_batch=None):
    """Produces (key, value, timestamp) records to partition 0 in order, all acknowledged;
    with `per_batch`, flushes after every so many records (a segment rolls between batches only)."""
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "linger.ms": 20,
                  "enable.idempotence": False, "max.in.flight": 1})
    failed = []

    def on_delivery(err, msg):
        if err is not None:
            failed.append(str(err))

    for i, (key, value, ts) in enumerate(records):
        kw = {"timestamp": ts} if ts is not None else {}
        p.produce(args.topic, key=key, value=value, partition=0, on_delivery=on_delivery, **kw)
        if per_batch and i % per_batch == per_batch - 1:
            p.flush(args.timeout)
    left = p.flush(args.timeout)
    check(left == 0 and not failed, "produce: %d undelivered, errors %r" % (left, failed[:5]))


def list_offsets(admin, args, spec):
    tp = TopicPartition(args.topic, 0)
    r = admin.list_offsets({tp: spec}, request_timeout=15)[tp].result(timeout=args.timeout)
    return r.offset, r.timestamp


def mode_offsets(args):
    admin = admin_client(args)
    # Tiny segments and batches of 3: the records span four segments, so the lookups cross
    # segments and batches as well as records within a batch.
    create(admin, args, args.topic, 1, {"segment.bytes": "100"})
    base = int(time.time() * 1000) - 600000
    ts = [base + 1000 * i for i in range(10)]
    ts[7] = base + 50000  # the largest timestamp is not the last record's
    produce(args, [(b"k%d" % i, b"v%d" % i, t) for i, t in enumerate(ts)], per_batch=3)
    cases = [(base - 1, 0), (base, 0), (base + 2500, 3), (base + 3000, 3), (base + 6001, 7),
             (base + 9500, 7), (base + 50000, 7), (base + 50001, -1)]
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "sluice-admin-%d" % os.getpid(),
                         "enable.auto.commit": False})
    # One target per call: a request holds one timestamp per partition.
    for t, want in cases:
        tp, = consumer.offsets_for_times([TopicPartition(args.topic, 0, t)], timeout=args.timeout)
        check(tp.error is None and tp.offset == want, "offsets_for_times(base%+d): %s offset %d, expected %d"
              % (t - base, tp.error, tp.offset, want))
    consumer.close()
    for t, want in cases:
        off, _ = list_offsets(admin, args, OffsetSpec.for_timestamp(t))
        check(off == want, "list_offsets(for_timestamp base%+d) = %d, expected %d" % (t - base, off, want))
    off, t = list_offsets(admin, args, OffsetSpec.max_timestamp())
    check((off, t) == (7, base + 50000), "max_timestamp: offset %d ts %d, expected 7 at base+50000 (base %d)"
          % (off, t, base))
    off, _ = list_offsets(admin, args, OffsetSpec.earliest())
    check(off == 0, "earliest %d" % off)
    off, _ = list_offsets(admin, args, OffsetSpec.latest())
    check(off == 10, "latest %d" % off)
    emit("result", ok=True, mode="offsets", cases=len(cases))


def mode_retention(args):
    admin = admin_client(args)
    create(admin, args, args.topic, 1, {"segment.bytes": "1024", "retention.ms": "1000"})
    n = 200
    # Timestamps now: retention must go by the broker's clock, a second after.
    produce(args, [(b"k%d" % i, b"v-%d-" % i + b"x" * 90, None) for i in range(n)], per_batch=10)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    while True:
        earliest, _ = list_offsets(admin, args, OffsetSpec.earliest())
        if earliest > 0:
            break
        check(time.monotonic() < deadline, "earliest offset still %d after %.1fs" % (earliest, args.timeout))
        time.sleep(0.1)
    latest, _ = list_offsets(admin, args, OffsetSpec.latest())
    check(0 < earliest <= n and latest == n, "earliest %d latest %d, expected 0 < earliest <= %d = latest"
          % (earliest, latest, n))
    # The retained records read from the new log start on, offsets contiguous.
    if earliest < n:
        recs = read_all(args, earliest, n)
        offs = [o for o, _, _ in recs]
        check(offs == list(range(offs[0], n)) and offs[0] >= earliest,
              "read after retention: offsets %r..%r" % (offs[:3], offs[-3:]))
        check(all(v.startswith(b"v-%d-" % o) for o, _, v in recs), "values do not match offsets")
    emit("result", ok=True, mode="retention", earliest=earliest, latest=latest,
         seconds=round(time.monotonic() - t0, 3))


def read_all(args, start, end):
    """Every record of partition 0 from `start` until offset `end` - 1 has been passed."""
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "sluice-admin-%d" % os.getpid(),
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 50})
    c.assign([TopicPartition(args.topic, 0, start)])
    out = []
    deadline = time.monotonic() + args.timeout
    pos = start
    while pos < end:
        check(time.monotonic() < deadline, "read timed out at offset %d of %d" % (pos, end))
        for m in c.consume(num_messages=1000, timeout=0.5):
            if m.error():
                fail("consume error: %s" % m.error())
            out.append((m.offset(), m.key(), m.value()))
            pos = m.offset() + 1
    c.close()
    return out


def mode_compact(args):
    admin = admin_client(args)
    create(admin, args, args.topic, 1, {"cleanup.policy": "compact", "segment.bytes": "1024",
                                        "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "0"})
    keys, rounds = 5, 20
    records = [(b"k%d" % k, b"v-%d-%d-" % (r, k) + b"x" * 60, None) for r in range(rounds) for k in range(keys)]
    # Then distinct keys, so the values above are all below the active segment.
    filler = [(b"f%d" % i, b"filler-%d-" % i + b"y" * 60, None) for i in range(60)]
    produce(args, records + filler, per_batch=keys)
    n = len(records) + len(filler)
    latest_offset = {b"k%d" % k: (rounds - 1) * keys + k for k in range(keys)}
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    while True:
        recs = read_all(args, 0, n)
        seen = {}
        for o, k, v in recs:
            seen.setdefault(k, []).append((o, v))
        ks = {k: v for k, v in seen.items() if k.startswith(b"k")}
        if all(len(v) == 1 for v in ks.values()) and len(recs) < n:
            break
        check(time.monotonic() < deadline, "not compacted after %.1fs: %d records, values per key %r"
              % (args.timeout, len(recs), {k.decode(): len(v) for k, v in ks.items()}))
        time.sleep(0.2)
    for k, off in latest_offset.items():
        check(k in ks, "key %s lost by compaction" % k)
        o, v = ks[k][0]
        r, kk = off // keys, off % keys
        check(o == off and v.startswith(b"v-%d-%d-" % (r, kk)),
              "key %s: offset %d value %r, expected the latest at %d" % (k, o, v[:12], off))
    offs = [o for o, _, _ in recs]
    check(offs == sorted(offs) and len(set(offs)) == len(offs), "offsets not increasing after compaction")
    fillers = [k for k in seen if k.startswith(b"f")]
    check(len(fillers) == len(filler) and all(len(seen[k]) == 1 for k in fillers), "filler records lost")
    latest, _ = list_offsets(admin, args, OffsetSpec.latest())
    check(latest == n, "latest %d after compaction, expected %d" % (latest, n))
    emit("result", ok=True, mode="compact", records_after=len(recs), produced=n,
         seconds=round(time.monotonic() - t0, 3))


def main():
    args = parse_args()
    {"admin": mode_admin, "offsets": mode_offsets, "retention": mode_retention,
     "compact": mode_compact}[args.mode](args)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - any uncaught client error is a failure line
        import traceback
        traceback.print_exc()
        fail("uncaught %s: %s" % (type(e).__name__, e))
