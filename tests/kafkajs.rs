//! kafkajs 2.2.4 (Node.js) against a real `sluice` process: `tests/clients/js/roundtrip.js`
//! creates a topic with the admin client, produces keyed records with headers (acks=-1), checks
//! ListOffsets, and reads everything back with kafkajs's own Fetch request and decoder. Then kcat
//! reads the topic independently and the test checks every record again.
//!
//! kafkajs has no `assign()`: its public consumer needs consumer groups (FindCoordinator,
//! JoinGroup, ...), which Sluice does not implement yet. So the script reads through kafkajs's
//! internal cluster/broker objects (the ones its consumer is built on), and only *probes* the
//! group consumer, reporting what happened without failing on it.
//!
//! Needs `node` and `make node_modules` (run by `make test`; installs the pinned kafkajs from
//! `tests/clients/js/package-lock.json`), and kcat (`make deps`); without them the test fails
//! saying so, rather than pass without testing anything.
//!
//! The broker and client harness is `tests/support/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{assert_ok, event, json_u64, kcat, root, run, Broker, Output};

/// How long one client command may run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

fn js_dir() -> PathBuf {
    root().join("tests").join("clients").join("js")
}

/// `node` on PATH with kafkajs installed under `tests/clients/js`; fails the test otherwise.
fn node() -> &'static str {
    let ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "node is not installed (Node.js >= 14 is needed for kafkajs)"
    );
    let pkg = js_dir()
        .join("node_modules")
        .join("kafkajs")
        .join("package.json");
    let text = fs::read_to_string(&pkg).unwrap_or_default();
    assert!(
        text.contains("\"version\": \"2.2.4\""),
        "{} is missing or not kafkajs 2.2.4: run `make node_modules` (npm ci from \
         tests/clients/js/package-lock.json)",
        pkg.display()
    );
    "node"
}

fn roundtrip(
    broker: &Broker,
    topic: &str,
    records: u64,
    value_size: usize,
    extra: &[&str],
) -> Output {
    let o = run(
        Command::new(node())
            .arg(js_dir().join("roundtrip.js"))
            .args(["--bootstrap", &broker.addr(), "--topic", topic])
            .args(["--records", &records.to_string()])
            .args(["--value-size", &value_size.to_string()])
            .args(["--partitions", "3", "--keys", "97"])
            .args(extra),
        None,
        CLIENT_TIMEOUT,
    );
    let result = assert_ok("kafkajs roundtrip.js", &o);
    assert_eq!(
        json_u64(result, "produced"),
        Some(records),
        "{}",
        o.describe()
    );
    assert_eq!(
        json_u64(result, "consumed"),
        Some(records),
        "{}",
        o.describe()
    );
    o
}

/// Reads the whole topic with kcat (librdkafka, assign() per partition, no group) and checks
/// every record kafkajs produced: key, value, both headers and timestamp, once each, offsets
/// contiguous from 0 per partition, one partition per key.
fn verify_with_kcat(broker: &Broker, topic: &str, records: u64, value_size: usize, base_ts: u64) {
    let o = run(
        Command::new(kcat()).args([
            "-C",
            "-b",
            &broker.addr(),
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p|%o|%k|%T|%h|%s\\n",
        ]),
        None,
        CLIENT_TIMEOUT,
    );
    assert!(o.status.success(), "kcat -C\n{}", o.describe());
    let mut next_offset: BTreeMap<u32, u64> = BTreeMap::new();
    let mut key_partition: BTreeMap<String, u32> = BTreeMap::new();
    let mut seen = vec![false; records as usize];
    for line in o.stdout.lines() {
        let f: Vec<&str> = line.splitn(6, '|').collect();
        assert_eq!(f.len(), 6, "kcat line {line:?}");
        let partition: u32 = f[0].parse().expect("partition");
        let offset: u64 = f[1].parse().expect("offset");
        let (key, ts, headers, value) = (f[2], f[3], f[4], f[5]);
        let i: usize = value
            .strip_prefix("v-")
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("value {value:?} is not one of ours"));
        let at = format!("{topic}/{partition}@{offset} (record {i})");
        assert!(i < seen.len() && !seen[i], "{at}: out of range or twice");
        seen[i] = true;
        let want = *next_offset.get(&partition).unwrap_or(&0);
        assert_eq!(offset, want, "{at}: offsets not contiguous");
        next_offset.insert(partition, offset + 1);
        assert_eq!(key, format!("k{}", i % 97), "{at}: key");
        let head = format!("v-{i}-");
        let want_value = format!(
            "{head}{}",
            "x".repeat(value_size.saturating_sub(head.len()))
        );
        assert_eq!(value, want_value, "{at}: value");
        assert_eq!(headers, format!("idx={i},run={topic}"), "{at}: headers");
        assert_eq!(
            ts.parse::<u64>().ok(),
            Some(base_ts + i as u64),
            "{at}: timestamp"
        );
        if let Some(p) = key_partition.insert(key.to_string(), partition) {
            assert_eq!(p, partition, "{at}: key {key} in two partitions");
        }
    }
    let n = seen.iter().filter(|s| **s).count();
    assert_eq!(
        n as u64,
        records,
        "kcat read {n} of {records} records\n{}",
        o.describe()
    );
}

#[test]
fn kafkajs_produces_and_reads_back() {
    let mut b = Broker::start();
    let topic = "kafkajs-roundtrip";
    let (records, value_size) = (2000, 100);
    let o = roundtrip(&b, topic, records, value_size, &["--probe-group"]);
    // What the public (group) consumer did: not asserted, since Sluice has no groups yet.
    if let Some(line) = event(&o.stdout, "group_consumer") {
        eprintln!("kafkajs group consumer probe: {line}");
    }
    let base_ts = event(&o.stdout, "produced")
        .and_then(|l| json_u64(l, "base_ts"))
        .unwrap_or_else(|| panic!("no base_ts in the produced event\n{}", o.describe()));
    verify_with_kcat(&b, topic, records, value_size, base_ts);
    b.stop();
}

#[test]
fn kafkajs_large_values_in_small_batches() {
    let mut b = Broker::start();
    let topic = "kafkajs-large";
    let (records, value_size) = (300, 64 * 1024);
    let o = roundtrip(&b, topic, records, value_size, &["--batch", "7"]);
    let base_ts = event(&o.stdout, "produced")
        .and_then(|l| json_u64(l, "base_ts"))
        .unwrap_or_else(|| panic!("no base_ts in the produced event\n{}", o.describe()));
    verify_with_kcat(&b, topic, records, value_size, base_ts);
    b.stop();
}
