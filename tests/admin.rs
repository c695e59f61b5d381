//! Topic administration, ListOffsets by timestamp, retention and compaction against the broker
//! binary, driven by confluent-kafka's AdminClient, Producer and Consumer
//! (`tests/clients/confluent_admin.py`). Each test starts its own broker from a config whose
//! `[config]` section makes retention checks and the cleaner run every 100 ms, so the
//! retention and compaction tests see their effects within seconds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{assert_ok, json_field, python, run, script, Broker, Coordination};

/// A broker with embedded coordination, retention and cleaning checked every 100 ms, and
/// no auto-creation (so a refused topic cannot reappear through a metadata request).
fn start_broker() -> Broker {
    Broker::start_with_config(
        Coordination::Embedded,
        &[
            ("auto.create.topics.enable", "false"),
            ("log.retention.check.interval.ms", "100"),
            ("log.cleaner.backoff.ms", "100"),
        ],
    )
}

/// Runs one mode of the admin script against `broker` and asserts it succeeded; returns
/// its `result` line.
fn admin_script(broker: &Broker, mode: &str, topic: &str) -> String {
    let started = Instant::now();
    let o = run(
        Command::new(python(".venv"))
            .arg(script("confluent_admin.py"))
            .args([
                "--bootstrap",
                &broker.addr(),
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
            eprintln!("--- broker log (tail) ---\n{}", broker.log_tail());
            std::panic::resume_unwind(e)
        }
    };
    eprintln!("{mode}: {line} ({:?})", started.elapsed());
    line
}

/// Create with configs and describe them back, AlterConfigs, IncrementalAlterConfigs (SET,
/// DELETE, a bad value), CreatePartitions 3 → 5 (and a refused shrink), the create errors
/// TOPIC_ALREADY_EXISTS, INVALID_CONFIG and INVALID_REPLICATION_FACTOR, DeleteTopics.
#[test]
fn admin_client_topic_lifecycle_and_errors() {
    let b = start_broker();
    let line = admin_script(&b, "admin", "admin-lifecycle");
    assert_eq!(json_field(&line, "mode"), Some("admin"));
}

/// offsets_for_times and list_offsets by timestamp give the earliest offset whose timestamp is
/// at least the target; max_timestamp gives the record with the largest timestamp even when it
/// is not the last one.
#[test]
fn list_offsets_by_timestamp_and_max_timestamp() {
    let b = start_broker();
    admin_script(&b, "offsets", "by-time");
}

/// Tiny segments and retention.ms = 1000: the retention check deletes old segments and the
/// earliest offset moves past 0, the rest still readable.
#[test]
fn retention_moves_the_log_start() {
    let b = start_broker();
    let line = admin_script(&b, "retention", "retained");
    let earliest: u64 = json_field(&line, "earliest").unwrap().parse().unwrap();
    assert!(earliest > 0, "{line}");
}

/// cleanup.policy = compact, tiny segments, min.cleanable.dirty.ratio = 0: the cleaner leaves
/// only the latest value of each key, at its original offset.
#[test]
fn compaction_keeps_the_latest_value_per_key() {
    let b = start_broker();
    let line = admin_script(&b, "compact", "compacted");
    let after: u64 = json_field(&line, "records_after").unwrap().parse().unwrap();
    let produced: u64 = json_field(&line, "produced").unwrap().parse().unwrap();
    assert!(after < produced, "{line}");
}
