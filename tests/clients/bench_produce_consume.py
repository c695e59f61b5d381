#!/usr/bin/env python3
"""Produce/consume throughput against a running broker with confluent-kafka (librdkafka).

Not part of `make test`. For each value size: create a fresh topic, produce --records records
(acks=1, linger.ms=5, batch.size=1 MiB, no compression, no keys) and wait for every delivery
report, then read them all back with assign() from offset 0 (no consumer group). Prints one JSON
line per phase and a Markdown table at the end.

The Python client is itself a bottleneck (one Python call and one delivery callback per record),
so these figures are a floor for what the broker can do, not its limit.

  .venv/bin/python tests/clients/bench_produce_consume.py --bootstrap 127.0.0.1:9092
"""

import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True, help="host:port")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--value-sizes", default="100,1024", help="comma-separated bytes")
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--topic-prefix", default="bench")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--fetch-queue-backoff-ms", type=int, default=10,
                   help="consumer fetch.queue.backoff.ms (librdkafka's default, 1000, paces a fast reader "
                        "to one fetch per second whenever its local queue holds queued.min.messages)")
    p.add_argument("--broker-pid", type=int, help="also report the broker's CPU seconds per phase (Linux /proc)")
    return p.parse_args()


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, **fields}, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message):
    emit("error", ok=False, message=message)
    sys.exit(1)


def cpu_seconds(pid):
    """User + system CPU seconds of a process (all its threads), or None."""
    if pid is None:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                             operation_timeout=30, request_timeout=30)
    fs[topic].result(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        t = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and \
                all(p.leader >= 0 for p in t.partitions.values()):
            return
        time.sleep(0.2)
    fail("topic %s not ready" % topic)


PRODUCER_SETTINGS = {
    "acks": "1",
    "linger.ms": 5,
    "batch.size": 1 << 20,
    "compression.type": "none",
    "enable.idempotence": False,
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1 << 20,
}


def produce(args, topic, value_size):
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": args.bootstrap, **PRODUCER_SETTINGS})
    value = os.urandom(value_size)
    state = {"acked": 0, "errors": 0, "first_error": None}

    def on_delivery(err, _msg):
        if err is None:
            state["acked"] += 1
        else:
            state["errors"] += 1
            state["first_error"] = state["first_error"] or str(err)

    n = args.records
    t0 = time.monotonic()
    for i in range(n):
        while True:
            try:
                p.produce(topic, value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.005)
        # Serve delivery callbacks now and then without blocking.
        if i % 10_000 == 0:
            p.poll(0)
    left = p.flush(args.timeout)
    seconds = time.monotonic() - t0
    if left or state["errors"] or state["acked"] != n:
        fail("produce: %d acked, %d failed (%s), %d still queued" % (
            state["acked"], state["errors"], state["first_error"], left))
    return seconds


def consume(args, topic, value_size):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        # confluent-kafka insists on a group.id even for assign(); nothing is committed.
        "group.id": "bench-%s-%d" % (topic, os.getpid()),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.max.bytes": 64 << 20,
        "max.partition.fetch.bytes": 8 << 20,
        "fetch.queue.backoff.ms": args.fetch_queue_backoff_ms,
    })
    c.assign([TopicPartition(topic, p, 0) for p in range(args.partitions)])
    n, nbytes = 0, 0
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    while n < args.records:
        if time.monotonic() > deadline:
            fail("consume: %d of %d records within %ss" % (n, args.records, args.timeout))
        for m in c.consume(num_messages=10_000, timeout=1.0):
            if m.error():
                fail("consume: %s" % m.error())
            n += 1
            nbytes += len(m.value())
    seconds = time.monotonic() - t0
    c.close()
    if n != args.records or nbytes != args.records * value_size:
        fail("consume: %d records / %d bytes, expected %d / %d" % (n, nbytes, args.records,
                                                                     args.records * value_size))
    return seconds


def main():
    args = parse_args()
    import confluent_kafka

    emit("start", client="confluent-kafka %s (librdkafka %s)" % (confluent_kafka.version(),
                                                                 confluent_kafka.libversion()[0]),
         records=args.records, partitions=args.partitions, producer=PRODUCER_SETTINGS,
         consumer={"fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 8 << 20,
                   "fetch.queue.backoff.ms": args.fetch_queue_backoff_ms})
    rows = []
    for size in [int(s) for s in args.value_sizes.split(",")]:
        topic = "%s-%d-%d" % (args.topic_prefix, size, os.getpid())
        create_topic(args.bootstrap, topic, args.partitions)
        for phase, fn in (("produce", produce), ("consume", consume)):
            b0, c0 = cpu_seconds(args.broker_pid), os.times()
            seconds = fn(args, topic, size)
            b1, c1 = cpu_seconds(args.broker_pid), os.times()
            client_cpu = (c1.user - c0.user) + (c1.system - c0.system)
            broker_cpu = None if b0 is None or b1 is None else b1 - b0
            rps = args.records / seconds
            mbps = args.records * size / seconds / 1e6
            emit(phase, value_size=size, records=args.records, seconds=round(seconds, 3),
                 records_per_s=round(rps), mb_per_s=round(mbps, 1), client_cpu_s=round(client_cpu, 2),
                 broker_cpu_s=None if broker_cpu is None else round(broker_cpu, 2))
            rows.append((phase, size, seconds, rps, mbps, client_cpu, broker_cpu))
    print()
    print("| phase | value size | records | seconds | records/s | MB/s (values) | client CPU s | broker CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for phase, size, seconds, rps, mbps, client_cpu, broker_cpu in rows:
        print("| %s | %d B | %d | %.2f | %s | %.1f | %.1f | %s |" % (
            phase, size, args.records, seconds, format(round(rps), ","), mbps, client_cpu,
            "-" if broker_cpu is None else "%.1f" % broker_cpu))
    emit("result", ok=True)


if __name__ == "__main__":
    main()
