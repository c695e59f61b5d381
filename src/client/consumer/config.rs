//! The consumer's settings, with the Java client's names and defaults.

use super::super::config::{invalid, parse, parse_bool, split_list, ClientConfig};
use super::super::error::Result;

/// Where a partition without a committed offset starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records written from now on.
    Latest,
    /// No default: `poll` fails for that partition.
    None,
}

/// Consumer settings (Kafka's names; `set` takes them as properties).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub client: ClientConfig,
    /// `group.id`: needed for `subscribe` and for commits.
    pub group_id: Option<String>,
    /// `group.instance.id`: static membership.
    pub group_instance_id: Option<String>,
    /// `auto.offset.reset` (latest).
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit` (true): positions are committed from `poll` every
    /// `auto.commit.interval.ms` and before a rebalance or close.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (5000).
    pub auto_commit_interval_ms: u64,
    /// `session.timeout.ms` (45000).
    pub session_timeout_ms: i32,
    /// `heartbeat.interval.ms` (3000).
    pub heartbeat_interval_ms: u64,
    /// `max.poll.interval.ms` (300000): a member that does not poll for this long leaves
    /// the group (its partitions go to the others).
    pub max_poll_interval_ms: u64,
    /// `partition.assignment.strategy` (range): protocol names in preference order —
    /// range, roundrobin, sticky (Java class names are accepted too).
    pub assignment_strategies: Vec<String>,
    /// `fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes` (52428800).
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes` (1048576).
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.wait.ms` (500).
    pub fetch_max_wait_ms: u64,
    /// `max.poll.records` (500).
    pub max_poll_records: usize,
    /// `isolation.level` (read_uncommitted = 0; read_committed = 1).
    pub isolation_level: i8,
}

impl ConsumerConfig {
    /// The Java client's defaults, with `bootstrap.servers`.
    pub fn new(bootstrap: &str) -> ConsumerConfig {
        ConsumerConfig {
            client: ClientConfig::new(bootstrap),
            group_id: None,
            group_instance_id: None,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval_ms: 5_000,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_interval_ms: 300_000,
            assignment_strategies: vec!["range".into()],
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            fetch_max_wait_ms: 500,
            max_poll_records: 500,
            isolation_level: 0,
        }
    }

    /// Sets one property by its Kafka name (an unknown key is an error naming it).
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        match key {
            "group.id" => self.group_id = Some(value.to_owned()).filter(|g| !g.is_empty()),
            "group.instance.id" => {
                self.group_instance_id = Some(value.to_owned()).filter(|g| !g.is_empty())
            }
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.trim() {
                    "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                    "latest" | "largest" | "end" => OffsetReset::Latest,
                    "none" | "error" => OffsetReset::None,
                    other => {
                        return Err(invalid(
                            key,
                            format!("{other:?}: use earliest, latest or none"),
                        ))
                    }
                }
            }
            "enable.auto.commit" => self.enable_auto_commit = parse_bool(key, value)?,
            "auto.commit.interval.ms" => self.auto_commit_interval_ms = parse(key, value, 1..)?,
            "session.timeout.ms" => self.session_timeout_ms = parse(key, value, 1..)?,
            "heartbeat.interval.ms" => self.heartbeat_interval_ms = parse(key, value, 1..)?,
            "max.poll.interval.ms" => self.max_poll_interval_ms = parse(key, value, 1..)?,
            "partition.assignment.strategy" => {
                let names = split_list(value);
                for name in &names {
                    if super::assignor::assignor_by_name(name).is_none() {
                        return Err(invalid(
                            key,
                            format!("{name:?}: use range, roundrobin or sticky"),
                        ));
                    }
                }
                if names.is_empty() {
                    return Err(invalid(key, "no strategy given"));
                }
                self.assignment_strategies = names;
            }
            "fetch.min.bytes" => self.fetch_min_bytes = parse(key, value, 0..)?,
            "fetch.max.bytes" => self.fetch_max_bytes = parse(key, value, 1..)?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = parse(key, value, 1..)?,
            "fetch.max.wait.ms" => self.fetch_max_wait_ms = parse(key, value, 0..)?,
            "max.poll.records" => self.max_poll_records = parse(key, value, 1..)?,
            "isolation.level" => {
                self.isolation_level = match value.trim() {
                    "read_uncommitted" => 0,
                    "read_committed" => 1,
                    other => {
                        return Err(invalid(
                            key,
                            format!("{other:?}: use read_uncommitted or read_committed"),
                        ))
                    }
                }
            }
            _ => {
                if !self.client.set(key, value)? {
                    return Err(invalid(key, "not a consumer setting"));
                }
            }
        }
        Ok(self)
    }
}
