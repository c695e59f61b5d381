//! Real Kafka clients against a real `sluice` process: confluent-kafka (librdkafka 2.16),
//! kafka-python 2.x and 3.x, and kcat. Each test starts its own broker from a temporary config
//! (embedded coordination, data in a tempdir, a free loopback port), drives the scripts in
//! `tests/clients/` (which print JSON lines and exit non-zero on any failure), and stops the
//! broker with SIGTERM, checking it exits 0.
//!
//! Needs `make deps` (kcat) and `make venv` (`.venv`, `.venv-kp3`); without them the tests fail
//! saying so, rather than pass without testing anything. The harness is in `tests/support/`,
//! shared with `tests/backends.rs` (the same clients against ZooKeeper and etcd coordination).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    assert_ok, confluent, confluent_roundtrip, event, json_field, json_u64, kcat, python, reader,
    root, run, script, tail, wait_deadline, Broker, Output,
};

/// 20,000 records over the 15 cells of acks {0, 1, all} x five codecs: one test per acks value.
const MATRIX_RECORDS_PER_CELL: u64 = 1334;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn confluent_matrix_row(acks: &str) {
    let mut b = Broker::start();
    for codec in CODECS {
        let topic = format!(
            "confluent-acks{}-{codec}",
            if acks == "all" { "all" } else { acks }
        );
        confluent_roundtrip(&b, &topic, MATRIX_RECORDS_PER_CELL, acks, codec);
    }
    b.stop();
}

#[test]
fn confluent_kafka_acks_0_every_codec() {
    confluent_matrix_row("0");
}

#[test]
fn confluent_kafka_acks_1_every_codec() {
    confluent_matrix_row("1");
}

#[test]
fn confluent_kafka_acks_all_every_codec() {
    confluent_matrix_row("all");
}

#[test]
fn confluent_kafka_100k_records_acks_all() {
    let mut b = Broker::start();
    confluent_roundtrip(&b, "confluent-100k", 100_000, "all", "none");
    b.stop();
}

fn kafka_python(venv: &str, major: &str) {
    let py = python(venv);
    let mut b = Broker::start();
    let addr = b.addr();
    for codec in ["none", "gzip"] {
        let topic = format!("kafka-python{major}-{codec}");
        let o = run(
            Command::new(&py)
                .arg(script("kafka_python_roundtrip.py"))
                .args([
                    "--bootstrap",
                    &addr,
                    "--topic",
                    &topic,
                    "--records",
                    "2000",
                    "--acks",
                    "all",
                    "--compression",
                    codec,
                    "--timeout",
                    "120",
                ]),
            None,
            Duration::from_secs(300),
        );
        let line = assert_ok(&format!("kafka-python {major}.x round trip ({codec})"), &o);
        assert_eq!(json_u64(line, "records"), Some(2000), "{}", o.describe());
        let version = json_field(line, "kafka_python").unwrap_or("");
        assert!(
            version.starts_with(&format!("{major}.")),
            "ran kafka-python {version}, wanted {major}.x"
        );
        let cluster = event(&o.stdout, "describe_cluster")
            .unwrap_or_else(|| panic!("no describe_cluster\n{}", o.describe()));
        assert!(
            cluster.contains(&format!("\"port\": {}", b.port)),
            "describe_cluster: {cluster}"
        );
    }
    b.stop();
}

#[test]
fn kafka_python_2x_round_trip() {
    kafka_python(".venv", "2");
}

#[test]
fn kafka_python_3x_round_trip() {
    kafka_python(".venv-kp3", "3");
}

#[test]
fn kcat_list_produce_consume() {
    let kcat = kcat();
    let mut b = Broker::start();
    let addr = b.addr();
    let t = Duration::from_secs(60);

    let o = run(
        Command::new(kcat).args(["-L", "-b", &addr, "-m", "10"]),
        None,
        t,
    );
    assert!(o.status.success(), "kcat -L\n{}", o.describe());
    assert!(
        o.stdout
            .contains(&format!("broker 1 at 127.0.0.1:{}", b.port)),
        "kcat -L does not list broker 1 at {addr}\n{}",
        o.describe()
    );

    // -P: 100 keyed records with a header into an auto-created topic.
    let topic = "kcat-topic";
    let input: String = (0..100).map(|i| format!("key{i}:value-{i}\n")).collect();
    let o = run(
        Command::new(kcat).args([
            "-P",
            "-b",
            &addr,
            "-t",
            topic,
            "-p",
            "0",
            "-K",
            ":",
            "-H",
            "source=kcat",
            "-X",
            "acks=all",
        ]),
        Some(input.into_bytes()),
        t,
    );
    assert!(o.status.success(), "kcat -P\n{}", o.describe());
    assert!(
        !o.stderr.contains("ERROR"),
        "kcat -P reported errors\n{}",
        o.describe()
    );

    let o = run(
        Command::new(kcat).args(["-L", "-b", &addr, "-t", topic, "-m", "10"]),
        None,
        t,
    );
    assert!(
        o.status.success()
            && o.stdout
                .contains(&format!("topic \"{topic}\" with 1 partitions")),
        "kcat -L -t {topic}\n{}",
        o.describe()
    );

    // -C -e: read it all back, with offsets, keys, values and headers.
    let o = run(
        Command::new(kcat).args([
            "-C",
            "-b",
            &addr,
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-m",
            "10",
            "-f",
            "%p|%o|%k|%s|%h\\n",
        ]),
        None,
        t,
    );
    assert!(o.status.success(), "kcat -C\n{}", o.describe());
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        100,
        "kcat -C read {} records, wanted 100\n{}",
        lines.len(),
        o.describe()
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!("0|{i}|key{i}|value-{i}|source=kcat"),
            "record {i}"
        );
    }
    b.stop();
}

#[test]
fn restart_after_sigterm_keeps_every_record() {
    let py = python(".venv");
    let mut b = Broker::start();
    let addr = b.addr();
    let acked = b.dir.path().join("acked.jsonl");
    let acked_s = acked.to_str().expect("utf-8 path").to_string();
    let t = Duration::from_secs(300);
    let o = confluent(
        &py,
        &[
            "--mode",
            "produce",
            "--bootstrap",
            &addr,
            "--topic",
            "restart",
            "--records",
            "10000",
            "--acks",
            "all",
            "--compression",
            "lz4",
            "--acked-file",
            &acked_s,
        ],
        t,
    );
    let line = assert_ok("produce before restart", &o);
    assert_eq!(json_u64(line, "acked"), Some(10_000), "{}", o.describe());
    for round in 1..=2 {
        b.stop();
        b.spawn();
        let o = confluent(
            &py,
            &[
                "--mode",
                "verify",
                "--bootstrap",
                &addr,
                "--topic",
                "restart",
                "--acked-file",
                &acked_s,
                "--exact",
            ],
            t,
        );
        let line = assert_ok(&format!("verify after restart {round}"), &o);
        assert_eq!(json_u64(line, "records"), Some(10_000), "{}", o.describe());
    }
    b.stop();
}

fn count_lines(p: &Path) -> usize {
    let mut s = String::new();
    if let Ok(mut f) = File::open(p) {
        let _ = f.read_to_string(&mut s);
    }
    s.matches('\n').count().saturating_sub(1) // the first line is the header
}

#[test]
fn kill_9_mid_stream_keeps_every_acknowledged_record() {
    let py = python(".venv");
    let mut b = Broker::start();
    let addr = b.addr();
    let acked = b.dir.path().join("acked.jsonl");
    let acked_s = acked.to_str().expect("utf-8 path").to_string();
    // 200,000 records at 20,000/s: the broker is killed after at least 20,000 acknowledgements,
    // seconds before the producer would be done.
    let mut producer = Command::new(&py)
        .arg(script("confluent_roundtrip.py"))
        .args([
            "--mode",
            "produce",
            "--bootstrap",
            &addr,
            "--topic",
            "crash",
            "--records",
            "200000",
            "--rate",
            "20000",
            "--acks",
            "all",
            "--acked-file",
            &acked_s,
            "--stop-on-failure",
            "--message-timeout-ms",
            "5000",
            "--timeout",
            "120",
        ])
        .current_dir(root())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn producer");
    let out = reader(producer.stdout.take().expect("stdout"));
    let err = reader(producer.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if count_lines(&acked) >= 20_000 {
            break;
        }
        if let Some(s) = producer.try_wait().expect("try_wait") {
            panic!(
                "the producer exited ({s}) before 20,000 acknowledgements\n--- stdout ---\n{}\n--- stderr ---\n{}",
                tail(&out.join().expect("join"), 30),
                tail(&err.join().expect("join"), 30)
            );
        }
        if Instant::now() >= deadline {
            let _ = producer.kill();
            panic!(
                "fewer than 20,000 acknowledgements within 120 s ({} so far)",
                count_lines(&acked)
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    b.kill9();
    // The producer notices (message.timeout.ms = 5 s), writes out what was acknowledged, exits 3.
    let status = wait_deadline(&mut producer, Duration::from_secs(60));
    if status.is_none() {
        let _ = producer.kill();
        let _ = producer.wait();
    }
    let o = Output {
        status: status.unwrap_or_else(|| producer.wait().expect("wait")),
        stdout: out.join().expect("join"),
        stderr: err.join().expect("join"),
    };
    assert_eq!(
        o.status.code(),
        Some(3),
        "the producer should stop on the first failed delivery after kill -9 (exit 3)\n{}",
        o.describe()
    );
    let acked_n = count_lines(&acked);
    assert!(
        (20_000..200_000).contains(&acked_n),
        "{acked_n} acknowledged: not mid-stream"
    );

    b.spawn();
    let o = confluent(
        &py,
        &[
            "--mode",
            "verify",
            "--bootstrap",
            &addr,
            "--topic",
            "crash",
            "--acked-file",
            &acked_s,
        ],
        Duration::from_secs(300),
    );
    let line = assert_ok("verify after kill -9 and restart", &o);
    assert_eq!(
        json_u64(line, "acked"),
        Some(acked_n as u64),
        "{}",
        o.describe()
    );
    eprintln!("kill -9: {line}");
    b.stop();
}
