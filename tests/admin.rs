//! Topic administration, ListOffsets by timestamp, retention and compaction against the broker
//! binary, driven by confluent-kafka's AdminClient, Producer and Consumer
//! (`tests/clients/confluent_admin.py`). Each test starts its own broker from a config whose
//! `[config]` section makes retention checks and the cleaner run every 100 ms, so the
//! retention and compaction tests see their effects within seconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::{self, OpenOptions};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{api_versions, assert_ok, free_port, json_field, python, run, script, tail};
use tempfile::TempDir;

/// One broker with embedded coordination and fast retention and cleaning; killed on drop.
struct Broker {
    dir: TempDir,
    port: u16,
    child: Child,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("sluice-admin-")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let config = dir.path().join("broker.toml");
        fs::write(
            &config,
            format!(
                "broker_id = 1\n\
                 listen = \"127.0.0.1:{port}\"\n\
                 data_dir = \"{data}\"\n\
                 log_level = \"info\"\n\
                 \n\
                 [coordination]\n\
                 backend = \"embedded\"\n\
                 root = \"/sluice\"\n\
                 \n\
                 [config]\n\
                 \"num.partitions\" = 1\n\
                 \"default.replication.factor\" = 1\n\
                 \"min.insync.replicas\" = 1\n\
                 \"auto.create.topics.enable\" = false\n\
                 \"log.retention.check.interval.ms\" = 100\n\
                 \"log.cleaner.backoff.ms\" = 100\n",
                data = dir.path().join("data").display(),
            ),
        )
        .expect("write config");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("broker.log"))
            .expect("open broker log");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn sluice");
        let mut b = Broker { dir, port, child };
        b.wait_ready();
        b
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        tail(
            &fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default(),
            40,
        )
    }

    fn wait_ready(&mut self) {
        let addr = self.addr().parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "the broker exited with {status} before serving\n--- broker log ---\n{}",
                    self.log_tail()
                );
            }
            let err = match api_versions(addr) {
                Ok(()) => return,
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "the broker did not start ({err})\n--- broker log ---\n{}",
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs one mode of the admin script against this broker and asserts it succeeded;
    /// returns its `result` line.
    fn script(&self, mode: &str, topic: &str) -> String {
        let started = Instant::now();
        let o = run(
            Command::new(python(".venv"))
                .arg(script("confluent_admin.py"))
                .args([
                    "--bootstrap",
                    &self.addr(),
                    "--mode",
                    mode,
                    "--topic",
                    topic,
                ])
                .args(["--timeout", "25"]),
            None,
            Duration::from_secs(90),
        );
        let line = match std::panic::catch_unwind(|| assert_ok(mode, &o).to_owned()) {
            Ok(line) => line,
            Err(e) => {
                eprintln!("--- broker log (tail) ---\n{}", self.log_tail());
                std::panic::resume_unwind(e)
            }
        };
        eprintln!("{mode}: {line} ({:?})", started.elapsed());
        line
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Create with configs and describe them back, AlterConfigs, IncrementalAlterConfigs (SET,
/// DELETE, a bad value), CreatePartitions 3 → 5 (and a refused shrink), the create errors
/// TOPIC_ALREADY_EXISTS, INVALID_CONFIG and INVALID_REPLICATION_FACTOR, DeleteTopics.
#[test]
fn admin_client_topic_lifecycle_and_errors() {
    let b = Broker::start();
    let line = b.script("admin", "admin-lifecycle");
    assert_eq!(json_field(&line, "mode"), Some("admin"));
}

/// offsets_for_times and list_offsets by timestamp give the earliest offset whose timestamp is
/// at least the target; max_timestamp gives the record with the largest timestamp even when it
/// is not the last one.
#[test]
fn list_offsets_by_timestamp_and_max_timestamp() {
    let b = Broker::start();
    b.script("offsets", "by-time");
}

/// Tiny segments and retention.ms = 1000: the retention check deletes old segments and the
/// earliest offset moves past 0, the rest still readable.
#[test]
fn retention_moves_the_log_start() {
    let b = Broker::start();
    let line = b.script("retention", "retained");
    let earliest: u64 = json_field(&line, "earliest").unwrap().parse().unwrap();
    assert!(earliest > 0, "{line}");
}

/// cleanup.policy = compact, tiny segments, min.cleanable.dirty.ratio = 0: the cleaner leaves
/// only the latest value of each key, at its original offset.
#[test]
fn compaction_keeps_the_latest_value_per_key() {
    let b = Broker::start();
    let line = b.script("compact", "compacted");
    let after: u64 = json_field(&line, "records_after").unwrap().parse().unwrap();
    let produced: u64 = json_field(&line, "produced").unwrap().parse().unwrap();
    assert!(after < produced, "{line}");
}
