#!/usr/bin/env python3
"""kafka-python round trip against a broker, driven by tests/clients.rs; runs under kafka-python
2.3.x (.venv) and 3.0.x (.venv-kp3).

Admin: describe_cluster() (2.x sends Metadata v8 asking for cluster authorized operations; 3.x
sends DescribeCluster) and create_topics() of an N-partition topic. Then produce N keyed records
with headers and explicit timestamps (waiting for every future), consume them with assign() +
seek(0) (no group), and verify every key, value, header and timestamp, offsets contiguous from 0
per partition, order per partition, same key -> same partition.

Prints JSON lines; the last one is {"event": "result", "ok": true, ...}. Exits 1 on any failure.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Checker, emit, fail, record_headers, record_key, record_ts, record_value  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True, help="host:port")
    p.add_argument("--topic", required=True)
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--keys", type=int, default=97)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--acks", choices=["0", "1", "all"], default="all")
    p.add_argument("--compression", choices=["none", "gzip"], default="none",
                   help="only codecs kafka-python has without extra packages")
    p.add_argument("--idempotence", choices=["default", "on", "off"], default="default",
                   help="enable_idempotence (default: the client's own default: off in 2.x, on in 3.x)")
    p.add_argument("--skip-describe-cluster", action="store_true")
    p.add_argument("--timeout", type=float, default=120)
    return p.parse_args()


def main():
    args = parse_args()
    import kafka
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    major = int(kafka.__version__.split(".")[0])
    emit("client", kafka_python=kafka.__version__)
    timeout_ms = int(args.timeout * 1000)

    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, request_timeout_ms=30000,
                             client_id="sluice-test-admin")
    if not args.skip_describe_cluster:
        try:
            cluster = admin.describe_cluster()
        except Exception as e:  # noqa: BLE001
            fail("describe_cluster failed: %r" % e)
        brokers = cluster.get("brokers") if isinstance(cluster, dict) else None
        if not brokers:
            fail("describe_cluster returned no brokers: %r" % (cluster,))
        emit("describe_cluster", cluster_id=cluster.get("cluster_id"), controller_id=cluster.get("controller_id"),
             brokers=[{"node_id": b.get("node_id", b.get("broker_id")), "host": b.get("host"), "port": b.get("port")}
                      for b in brokers])

    t0 = time.monotonic()
    try:
        resp = admin.create_topics([NewTopic(args.topic, args.partitions, 1)], timeout_ms=30000)
    except Exception as e:  # noqa: BLE001
        fail("create_topics failed: %r" % e)
    # 2.x returns the raw response (errors inside); 3.x returns a dict (and raises on errors).
    if isinstance(resp, dict):
        entries = [(t.get("name"), t.get("error_code"), t.get("error_message")) for t in resp.get("topics", [])]
    else:
        entries = [tuple(t[:3]) for t in resp.topic_errors]
    if [e[0] for e in entries] != [args.topic]:
        fail("create_topics answered for %r, asked for %r" % ([e[0] for e in entries], args.topic))
    for name, err, msg in entries:
        if err:
            fail("create_topics: topic %r error %r %r" % (name, err, msg))
    admin.close()
    emit("created", topic=args.topic, partitions=args.partitions, seconds=round(time.monotonic() - t0, 3))

    pconf = dict(bootstrap_servers=args.bootstrap, acks=(args.acks if args.acks == "all" else int(args.acks)),
                 linger_ms=5, request_timeout_ms=30000)
    if args.compression != "none":
        pconf["compression_type"] = args.compression
    if args.idempotence != "default":
        pconf["enable_idempotence"] = args.idempotence == "on"
    producer = KafkaProducer(**pconf)
    # Wait until the producer's metadata knows every partition, so keyed partitioning is stable.
    deadline = time.monotonic() + args.timeout
    while True:
        parts = producer.partitions_for(args.topic)
        if parts and len(parts) == args.partitions:
            break
        if time.monotonic() > deadline:
            fail("producer sees partitions %r for %s" % (parts, args.topic))
        time.sleep(0.2)

    base_ts = int(time.time() * 1000) - args.records
    t0 = time.monotonic()
    futures = []
    for i in range(args.records):
        futures.append(producer.send(args.topic, key=record_key(i, args.keys), value=record_value(i, args.value_size),
                                     headers=record_headers(i, args.topic), timestamp_ms=record_ts(base_ts, i)))
    producer.flush(timeout=args.timeout)
    delivered = {}
    key_partition = {}
    errors = []
    for i, fut in enumerate(futures):
        try:
            md = fut.get(timeout=max(1.0, deadline - time.monotonic()))
        except Exception as e:  # noqa: BLE001
            fail("record %d not delivered: %r" % (i, e))
        delivered[i] = (md.partition, md.offset)
        kp = key_partition.setdefault(record_key(i, args.keys), md.partition)
        if kp != md.partition and len(errors) < 20:
            errors.append("key %r delivered to %d and %d" % (record_key(i, args.keys), kp, md.partition))
    producer.close(timeout=10)
    secs = time.monotonic() - t0
    emit("produced", acked=len(delivered), seconds=round(secs, 3), records_per_s=round(len(delivered) / secs, 1))
    if errors:
        fail("delivery metadata inconsistent", errors=errors)

    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest",
                             consumer_timeout_ms=1000, fetch_max_wait_ms=100)
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    checker = Checker(args.topic, args.keys, args.value_size, base_ts)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    while checker.count < args.records:
        if time.monotonic() > deadline:
            fail("consume timed out after %d of %d records" % (checker.count, args.records), errors=checker.errors)
        batches = consumer.poll(timeout_ms=500, max_records=1000)
        for tp, recs in batches.items():
            for r in recs:
                checker.add(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
    ends = consumer.end_offsets(tps)
    consumer.close()
    secs = time.monotonic() - t0
    emit("consumed", records=checker.count, seconds=round(secs, 3),
         records_per_s=round(checker.count / secs, 1) if secs else None,
         end_offsets={str(tp.partition): o for tp, o in ends.items()})
    if checker.count != args.records:
        checker.error("read %d records, produced %d" % (checker.count, args.records))
    missing = checker.missing(args.records)
    if missing:
        checker.error("%d records missing, first %r" % (len(missing), missing[:10]))
    if sum(ends.values()) != args.records:
        checker.error("end offsets %r do not add up to %d" % (ends, args.records))
    if args.acks != "0":
        wrong = [(i, delivered[i], checker.seen.get(i)) for i in delivered if delivered[i] != checker.seen.get(i)]
        if wrong:
            checker.error("%d records read elsewhere than their send future said, first %r" % (len(wrong), wrong[:5]))
    if checker.errors:
        fail("verification failed", errors=checker.errors)
    emit("result", ok=True, records=args.records, kafka_python=kafka.__version__, acks=args.acks,
         compression=args.compression, partitions_used=len(checker.next_offset))


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - any uncaught client error is a failure line
        import traceback
        traceback.print_exc()
        fail("uncaught %s: %s" % (type(e).__name__, e))
