"""Shared pieces of the real-client test scripts (driven by tests/clients.rs).

Every record is derived from its index, so a reader can check it without the writer's state:
key = b"k<i % keys>", value = b"v-<i>-" + padding, headers [("idx", i), ("run", topic)],
timestamp = base_ts + i (ms, CreateTime).
"""

import json
import sys
import time


def emit(event, **fields):
    """One JSON line on stdout: what the Rust side reads."""
    fields = {"event": event, **fields}
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message, **fields):
    emit("error", ok=False, message=message, **fields)
    sys.exit(1)


def record_key(i, keys):
    return b"k%d" % (i % keys)


def record_value(i, value_size):
    head = b"v-%d-" % i
    return head + b"x" * max(0, value_size - len(head))


def record_headers(i, topic):
    return [("idx", str(i).encode()), ("run", topic.encode())]


def record_ts(base_ts, i):
    return base_ts + i


def index_of_value(value):
    if not value or not value.startswith(b"v-"):
        raise ValueError("value %r is not one of ours" % (value[:40] if value else value,))
    return int(value[2:].split(b"-", 1)[0])


class Checker:
    """Checks consumed records: contents, offsets contiguous from 0 per partition, order per
    partition, one partition per key. Call add() per record, then result()."""

    def __init__(self, topic, keys, value_size, base_ts, check_ts=True):
        self.topic = topic
        self.keys = keys
        self.value_size = value_size
        self.base_ts = base_ts
        self.check_ts = check_ts
        self.next_offset = {}
        self.last_index = {}
        self.key_partition = {}
        self.seen = {}  # index -> (partition, offset)
        self.errors = []
        self.count = 0

    def error(self, msg):
        if len(self.errors) < 20:
            self.errors.append(msg)

    def add(self, partition, offset, key, value, headers, ts):
        self.count += 1
        expect_off = self.next_offset.get(partition, 0)
        if offset != expect_off:
            self.error("partition %d: offset %d where %d was expected" % (partition, offset, expect_off))
        self.next_offset[partition] = offset + 1
        try:
            i = index_of_value(value)
        except ValueError as e:
            self.error("partition %d offset %d: %s" % (partition, offset, e))
            return
        if i in self.seen:
            self.error("index %d read twice: at %r and at %r" % (i, self.seen[i], (partition, offset)))
        self.seen[i] = (partition, offset)
        if value != record_value(i, self.value_size):
            self.error("index %d: value differs (%d bytes)" % (i, len(value)))
        if key != record_key(i, self.keys):
            self.error("index %d: key %r, expected %r" % (i, key, record_key(i, self.keys)))
        hdrs = [(k, bytes(v) if v is not None else None) for k, v in (headers or [])]
        if hdrs != record_headers(i, self.topic):
            self.error("index %d: headers %r, expected %r" % (i, hdrs, record_headers(i, self.topic)))
        if self.check_ts and ts != record_ts(self.base_ts, i):
            self.error("index %d: timestamp %r, expected %d" % (i, ts, record_ts(self.base_ts, i)))
        last = self.last_index.get(partition)
        if last is not None and i <= last:
            self.error("partition %d: index %d after index %d (order)" % (partition, i, last))
        self.last_index[partition] = i
        kp = self.key_partition.setdefault(key, partition)
        if kp != partition:
            self.error("key %r in partitions %d and %d" % (key, kp, partition))

    def missing(self, n):
        return [i for i in range(n) if i not in self.seen]


class RateLimiter:
    def __init__(self, per_second):
        self.per_second = per_second
        self.start = time.monotonic()

    def wait(self, done):
        if not self.per_second:
            return
        ahead = done / self.per_second - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)
