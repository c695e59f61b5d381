#!/usr/bin/env python3
"""Which partition confluent-kafka (librdkafka) puts each key in, with
partitioner=murmur2_random (the Java client's default for keyed records).

Reads keys from --keys-file (one hex-encoded key per line), produces one record per key to
--topic, and prints {"event": "result", "ok": true, "partitions": [...]} with the partition
of each key's delivery report, in file order.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, fail  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--keys-file", required=True)
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    from confluent_kafka import Producer

    keys = [bytes.fromhex(line.strip()) for line in open(args.keys_file) if line.strip() != "-"]
    partitions = [None] * len(keys)
    errors = []

    def report(i):
        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                partitions[i] = msg.partition()
        return on_delivery

    producer = Producer({"bootstrap.servers": args.bootstrap, "partitioner": "murmur2_random",
                         "linger.ms": 20})
    for i, key in enumerate(keys):
        while True:
            try:
                producer.produce(args.topic, key=key, value=b"v", on_delivery=report(i))
                break
            except BufferError:
                producer.poll(0.1)
    left = producer.flush(args.timeout)
    if left or errors:
        fail("%d undelivered, errors %r" % (left, errors[:5]))
    emit("result", ok=True, partitions=partitions)


if __name__ == "__main__":
    main()
