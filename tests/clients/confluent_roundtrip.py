#!/usr/bin/env python3
"""confluent-kafka (librdkafka) round trip against a broker, driven by tests/clients.rs.

Modes:
  roundtrip  create the topic (AdminClient), produce N keyed records with headers and explicit
             timestamps, wait for every delivery report, consume them with assign() from offset 0,
             and verify every key, value, header and timestamp, offsets contiguous from 0 per
             partition, order per partition, same key -> same partition.
  produce    create the topic and produce, appending every acknowledged record to --acked-file
             (one JSON line each; the first line holds base_ts). --stop-on-failure exits 3 at the
             first failed delivery (the broker went away), after flushing that file.
  verify     read the topic from offset 0 to its high watermarks and check it against
             --acked-file: every acknowledged record is there at its partition and offset, offsets
             are contiguous; --exact also requires nothing else is there.

Prints JSON lines; the last one is {"event": "result", "ok": true, ...}. Exits non-zero on any
failure (1), or 3 for --stop-on-failure.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (Checker, RateLimiter, emit, fail, index_of_value, record_headers, record_key,  # noqa: E402
                    record_ts, record_value)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True, help="host:port")
    p.add_argument("--topic", required=True)
    p.add_argument("--mode", choices=["roundtrip", "produce", "verify"], default="roundtrip")
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--keys", type=int, default=97, help="distinct keys (records cycle through them)")
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--acks", choices=["0", "1", "all", "-1"], default="all")
    p.add_argument("--compression", choices=["none", "gzip", "snappy", "lz4", "zstd"], default="none")
    p.add_argument("--idempotence", action="store_true", help="enable.idempotence=true")
    p.add_argument("--no-create", action="store_true", help="do not create the topic")
    p.add_argument("--rate", type=float, default=0, help="records per second (0: unlimited)")
    p.add_argument("--message-timeout-ms", type=int, default=30000)
    p.add_argument("--acked-file", help="produce: write acknowledged records; verify: read them")
    p.add_argument("--stop-on-failure", action="store_true")
    p.add_argument("--exact", action="store_true", help="verify: the topic holds exactly the acked records")
    p.add_argument("--timeout", type=float, default=120, help="overall seconds for each phase")
    return p.parse_args()


def create_topic(args):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    t0 = time.monotonic()
    futures = admin.create_topics([NewTopic(args.topic, num_partitions=args.partitions, replication_factor=1)],
                                  operation_timeout=30, request_timeout=30)
    try:
        futures[args.topic].result(timeout=args.timeout)
    except Exception as e:  # noqa: BLE001 - report whatever the client raised
        fail("create_topics failed: %r" % (e,))
    # Wait until metadata shows every partition with a leader.
    deadline = time.monotonic() + args.timeout
    while True:
        md = admin.list_topics(topic=args.topic, timeout=10)
        t = md.topics.get(args.topic)
        if t is not None and t.error is None and len(t.partitions) == args.partitions and \
                all(p.leader >= 0 and p.error is None for p in t.partitions.values()):
            break
        if time.monotonic() > deadline:
            fail("topic %s not ready in metadata: %r" % (args.topic, t and (t.error, t.partitions)))
        time.sleep(0.2)
    emit("created", topic=args.topic, partitions=args.partitions, brokers=sorted(md.brokers),
         seconds=round(time.monotonic() - t0, 3))


def produce(args, base_ts, acked_out=None):
    from confluent_kafka import KafkaError, Producer

    conf = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "compression.type": args.compression,
        "enable.idempotence": args.idempotence,
        "linger.ms": 5,
        "message.timeout.ms": args.message_timeout_ms,
        "queue.buffering.max.messages": 200000,
    }
    producer = Producer(conf)
    state = {"ok": 0, "failed": 0, "first_error": None}
    delivered = {}  # index -> (partition, offset)
    key_partition = {}
    errors = []

    def on_delivery(err, msg):
        # Delivery reports carry no headers: the value says which record this is.
        i = index_of_value(msg.value())
        if err is not None:
            state["failed"] += 1
            if state["first_error"] is None:
                state["first_error"] = "%s (index %d)" % (err, i)
            return
        state["ok"] += 1
        p, o = msg.partition(), msg.offset()
        delivered[i] = (p, o)
        kp = key_partition.setdefault(msg.key(), p)
        if kp != p and len(errors) < 20:
            errors.append("key %r delivered to partitions %d and %d" % (msg.key(), kp, p))
        if acked_out is not None:
            acked_out.write(json.dumps({"i": i, "p": p, "o": o}) + "\n")

    limiter = RateLimiter(args.rate)
    payload_bytes = 0
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    for i in range(args.records):
        key, value = record_key(i, args.keys), record_value(i, args.value_size)
        payload_bytes += len(key) + len(value)
        while True:
            try:
                producer.produce(args.topic, value=value, key=key, headers=record_headers(i, args.topic),
                                 timestamp=record_ts(base_ts, i), on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
            if time.monotonic() > deadline:
                fail("produce timed out with a full queue at index %d" % i)
        if i % 1000 == 999:
            producer.poll(0)
            if acked_out is not None:
                acked_out.flush()
            if args.stop_on_failure and state["failed"]:
                break
            limiter.wait(i + 1)
    while len(producer) > 0 and time.monotonic() < deadline:
        producer.poll(0.1)
        if acked_out is not None:
            acked_out.flush()
        if args.stop_on_failure and state["failed"]:
            break
    remaining = len(producer)
    if acked_out is not None:
        acked_out.flush()
    secs = time.monotonic() - t0
    emit("produced", acks=args.acks, compression=args.compression, sent=i + 1, acked=state["ok"],
         failed=state["failed"], undelivered=remaining, first_error=state["first_error"],
         seconds=round(secs, 3), records_per_s=round(state["ok"] / secs, 1),
         mb_per_s=round(payload_bytes / secs / 1e6, 3))
    if state["failed"] and args.stop_on_failure:
        emit("result", ok=False, stopped_on_failure=True, acked=state["ok"])
        sys.exit(3)
    if state["failed"] or remaining:
        fail("not every record was delivered: %d failed, %d still queued; first error: %s"
             % (state["failed"], remaining, state["first_error"]))
    if errors:
        fail("delivery reports inconsistent", errors=errors)
    _ = KafkaError  # imported to fail early if the module is broken
    return delivered


def consume_range(args, ends, want, checker):
    """Read from offset 0 in every partition until `want` records or every partition reaches its
    end offset in `ends` (partition -> offset, or None: stop on `want` only)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        # confluent-kafka insists on a group.id even for assign(); nothing is committed.
        "group.id": "sluice-test-%s-%d" % (args.topic, os.getpid()),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
    })
    consumer.assign([TopicPartition(args.topic, p, 0) for p in range(args.partitions)])
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    pos = {p: 0 for p in range(args.partitions)}
    nbytes = 0
    while True:
        if want is not None and checker.count >= want:
            break
        if ends is not None and all(pos[p] >= ends[p] for p in ends):
            break
        if time.monotonic() > deadline:
            fail("consume timed out: %d records read, wanted %s; positions %r, ends %r"
                 % (checker.count, want, pos, ends), errors=checker.errors)
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                fail("consume error: %s" % msg.error())
            ts_type, ts = msg.timestamp()
            checker.add(msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers(), ts)
            pos[msg.partition()] = msg.offset() + 1
            nbytes += len(msg.value() or b"") + len(msg.key() or b"")
    secs = time.monotonic() - t0
    # The high watermarks: nothing beyond what was read.
    hw = {}
    for p in range(args.partitions):
        hw[p] = watermark(consumer, TopicPartition(args.topic, p), deadline)
    consumer.close()
    emit("consumed", records=checker.count, seconds=round(secs, 3),
         records_per_s=round(checker.count / secs, 1) if secs else None,
         mb_per_s=round(nbytes / secs / 1e6, 3) if secs else None,
         per_partition={str(p): pos[p] for p in pos}, watermarks={str(p): hw[p] for p in hw})
    return hw


def watermark(consumer, tp, deadline):
    """(low, high) of one partition, retrying retriable errors (a restarted broker answers
    NOT_LEADER until the partition's replica is up) until the deadline."""
    from confluent_kafka import KafkaError, KafkaException

    transient = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                 KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError._TRANSPORT,
                 KafkaError._TIMED_OUT}
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as e:
            err = e.args[0]
            if not (err.retriable() or err.code() in transient) or time.monotonic() > deadline:
                fail("watermarks of %s[%d]: %s" % (tp.topic, tp.partition, err))
            time.sleep(0.1)


def watermarks(args):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "sluice-test-wm-%d" % os.getpid(),
                  "enable.auto.commit": False})
    deadline = time.monotonic() + args.timeout
    while True:
        md = c.list_topics(topic=args.topic, timeout=10)
        t = md.topics.get(args.topic)
        if t is not None and t.error is None and t.partitions:
            break
        if time.monotonic() > deadline:
            fail("topic %s not in metadata: %r" % (args.topic, t and t.error))
        time.sleep(0.2)
    args.partitions = len(t.partitions)
    ends = {}
    for p in range(args.partitions):
        ends[p] = watermark(c, TopicPartition(args.topic, p), deadline)
    c.close()
    return ends


def main():
    args = parse_args()
    if args.records < 1:
        fail("--records must be at least 1")
    if args.mode == "roundtrip":
        if not args.no_create:
            create_topic(args)
        base_ts = int(time.time() * 1000) - args.records
        delivered = produce(args, base_ts)
        checker = Checker(args.topic, args.keys, args.value_size, base_ts)
        hw = consume_range(args, None, args.records, checker)
        if checker.count != args.records:
            fail("read %d records, produced %d" % (checker.count, args.records))
        missing = checker.missing(args.records)
        if missing:
            fail("%d records missing, first %r" % (len(missing), missing[:10]))
        total_hw = sum(hi for _, hi in hw.values())
        if total_hw != args.records or any(lo != 0 for lo, _ in hw.values()):
            checker.error("watermarks %r do not add up to %d records from 0" % (hw, args.records))
        if args.acks != "0":
            wrong = [(i, delivered[i], checker.seen[i]) for i in delivered if delivered[i] != checker.seen.get(i)]
            if wrong:
                checker.error("%d records read elsewhere than their delivery report said, first %r"
                              % (len(wrong), wrong[:5]))
        if checker.errors:
            fail("verification failed", errors=checker.errors)
        emit("result", ok=True, mode="roundtrip", records=args.records, acks=args.acks,
             compression=args.compression, partitions_used=len(checker.next_offset))
    elif args.mode == "produce":
        if not args.acked_file:
            fail("--mode produce needs --acked-file")
        if not args.no_create:
            create_topic(args)
        base_ts = int(time.time() * 1000) - args.records
        with open(args.acked_file, "w") as out:
            out.write(json.dumps({"base_ts": base_ts, "keys": args.keys, "value_size": args.value_size}) + "\n")
            out.flush()
            delivered = produce(args, base_ts, out)
        emit("result", ok=True, mode="produce", acked=len(delivered))
    else:
        if not args.acked_file:
            fail("--mode verify needs --acked-file")
        acked = {}
        with open(args.acked_file) as f:
            header = json.loads(f.readline())
            for line in f:
                if not line.endswith("\n"):
                    break  # a torn last line: the writer was killed mid-write
                r = json.loads(line)
                acked[r["i"]] = (r["p"], r["o"])
        ends = watermarks(args)
        checker = Checker(args.topic, header["keys"], header["value_size"], header["base_ts"])
        consume_range(args, {p: hi for p, (lo, hi) in ends.items()}, None, checker)
        for p, (lo, hi) in ends.items():
            if lo != 0:
                checker.error("partition %d starts at %d, not 0" % (p, lo))
        lost = [i for i, po in acked.items() if checker.seen.get(i) != po]
        if lost:
            checker.error("%d acknowledged records missing or moved, first %r"
                          % (len(lost), [(i, acked[i], checker.seen.get(i)) for i in sorted(lost)[:5]]))
        extra = checker.count - len(acked)
        if args.exact and extra:
            checker.error("%d records beyond the acknowledged ones" % extra)
        if checker.errors:
            fail("verification failed", errors=checker.errors)
        emit("result", ok=True, mode="verify", acked=len(acked), records=checker.count, unacked_present=extra,
             watermarks={str(p): v for p, v in ends.items()})


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - any uncaught client error is a failure line
        import traceback
        traceback.print_exc()
        fail("uncaught %s: %s" % (type(e).__name__, e))
