//! Per-topic log configuration, with Kafka's topic-level config names, meanings,
//! defaults and validation rules.
//!
//! A [`LogConfig`] is built in layers, as Kafka does: start from Kafka's defaults, apply
//! the broker-level defaults ([`LogConfig::from_broker_props`], which understands the
//! broker's historical names such as `log.retention.hours` or `message.max.bytes`), then
//! apply the topic's own overrides by topic-level name ([`LogConfig::with_overrides`]).
//! [`LogConfig::to_props`] prints every topic-level config the way Kafka prints it, for
//! DescribeConfigs.
//!
//! Values are parsed as Kafka's `ConfigDef` parses them: surrounding whitespace is
//! ignored, booleans are `true`/`false` in any case, enumerated strings are
//! case-sensitive, lists are comma-separated.
//!
//! The defaults and limits follow Kafka 3.x (`segment.bytes` at least 14,
//! `message.timestamp.after.max.ms` defaulting to `Long.MAX_VALUE`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::log::{LogError, Result};

// ---------------------------------------------------------------------------------------
// Topic-level config names (Kafka's `TopicConfig`).
// ---------------------------------------------------------------------------------------

/// `segment.bytes`: the maximum size of one segment file.
pub const SEGMENT_BYTES_CONFIG: &str = "segment.bytes";
/// `segment.ms`: roll a new segment after this long even if the active one is not full.
pub const SEGMENT_MS_CONFIG: &str = "segment.ms";
/// `segment.jitter.ms`: the maximum random jitter subtracted from `segment.ms`.
pub const SEGMENT_JITTER_MS_CONFIG: &str = "segment.jitter.ms";
/// `segment.index.bytes`: the maximum size of a segment's offset (and time) index.
pub const SEGMENT_INDEX_BYTES_CONFIG: &str = "segment.index.bytes";
/// `index.interval.bytes`: how many log bytes between two offset-index entries.
pub const INDEX_INTERVAL_BYTES_CONFIG: &str = "index.interval.bytes";
/// `retention.ms`: delete segments older than this; `-1` keeps them forever.
pub const RETENTION_MS_CONFIG: &str = "retention.ms";
/// `retention.bytes`: delete old segments while the partition is larger; negative = no limit.
pub const RETENTION_BYTES_CONFIG: &str = "retention.bytes";
/// `cleanup.policy`: `delete`, `compact`, or both.
pub const CLEANUP_POLICY_CONFIG: &str = "cleanup.policy";
/// `delete.retention.ms`: how long tombstones are kept on compacted topics.
pub const DELETE_RETENTION_MS_CONFIG: &str = "delete.retention.ms";
/// `min.cleanable.dirty.ratio`: the dirty fraction that makes a log eligible for cleaning.
pub const MIN_CLEANABLE_DIRTY_RATIO_CONFIG: &str = "min.cleanable.dirty.ratio";
/// `min.compaction.lag.ms`: records younger than this are never compacted.
pub const MIN_COMPACTION_LAG_MS_CONFIG: &str = "min.compaction.lag.ms";
/// `max.compaction.lag.ms`: records older than this make the log eligible for cleaning.
pub const MAX_COMPACTION_LAG_MS_CONFIG: &str = "max.compaction.lag.ms";
/// `max.message.bytes`: the largest record batch the topic accepts.
pub const MAX_MESSAGE_BYTES_CONFIG: &str = "max.message.bytes";
/// `message.timestamp.type`: `CreateTime` or `LogAppendTime`.
pub const MESSAGE_TIMESTAMP_TYPE_CONFIG: &str = "message.timestamp.type";
/// `message.timestamp.before.max.ms`: how far in the past a `CreateTime` may be (KIP-937).
pub const MESSAGE_TIMESTAMP_BEFORE_MAX_MS_CONFIG: &str = "message.timestamp.before.max.ms";
/// `message.timestamp.after.max.ms`: how far in the future a `CreateTime` may be (KIP-937).
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS_CONFIG: &str = "message.timestamp.after.max.ms";
/// `flush.messages`: fsync after this many appended messages.
pub const FLUSH_MESSAGES_CONFIG: &str = "flush.messages";
/// `flush.ms`: fsync when the last flush is older than this.
pub const FLUSH_MS_CONFIG: &str = "flush.ms";
/// `file.delete.delay.ms`: how long a deleted segment's files linger before removal.
pub const FILE_DELETE_DELAY_MS_CONFIG: &str = "file.delete.delay.ms";
/// `min.insync.replicas`: the ISR size an `acks=all` produce needs.
pub const MIN_INSYNC_REPLICAS_CONFIG: &str = "min.insync.replicas";
/// `unclean.leader.election.enable`: whether an out-of-sync replica may become leader.
pub const UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG: &str = "unclean.leader.election.enable";
/// `compression.type`: the codec the broker stores batches with (`producer` = as sent).
pub const COMPRESSION_TYPE_CONFIG: &str = "compression.type";
/// `preallocate`: whether new segment files are preallocated to `segment.bytes`.
pub const PREALLOCATE_CONFIG: &str = "preallocate";

/// Every topic-level config name [`LogConfig`] supports, sorted.
pub const TOPIC_CONFIG_NAMES: &[&str] = &[
    CLEANUP_POLICY_CONFIG,
    COMPRESSION_TYPE_CONFIG,
    DELETE_RETENTION_MS_CONFIG,
    FILE_DELETE_DELAY_MS_CONFIG,
    FLUSH_MESSAGES_CONFIG,
    FLUSH_MS_CONFIG,
    INDEX_INTERVAL_BYTES_CONFIG,
    MAX_COMPACTION_LAG_MS_CONFIG,
    MAX_MESSAGE_BYTES_CONFIG,
    MESSAGE_TIMESTAMP_AFTER_MAX_MS_CONFIG,
    MESSAGE_TIMESTAMP_BEFORE_MAX_MS_CONFIG,
    MESSAGE_TIMESTAMP_TYPE_CONFIG,
    MIN_CLEANABLE_DIRTY_RATIO_CONFIG,
    MIN_COMPACTION_LAG_MS_CONFIG,
    MIN_INSYNC_REPLICAS_CONFIG,
    PREALLOCATE_CONFIG,
    RETENTION_BYTES_CONFIG,
    RETENTION_MS_CONFIG,
    SEGMENT_BYTES_CONFIG,
    SEGMENT_INDEX_BYTES_CONFIG,
    SEGMENT_JITTER_MS_CONFIG,
    SEGMENT_MS_CONFIG,
    UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG,
];

// ---------------------------------------------------------------------------------------
// Value ranges (Kafka's validators). INT configs are capped at i32::MAX like Java's int.
// ---------------------------------------------------------------------------------------

/// An inclusive integer range a config value must lie in.
#[derive(Debug, Clone, Copy)]
struct Range {
    min: i64,
    max: i64,
}

const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;

/// Kafka's `LegacyRecord.RECORD_OVERHEAD_V0`, the minimum `segment.bytes`.
pub const MIN_SEGMENT_BYTES: u64 = 14;

const SEGMENT_BYTES_RANGE: Range = Range {
    min: MIN_SEGMENT_BYTES as i64,
    max: INT_MAX,
};
const SEGMENT_MS_RANGE: Range = Range {
    min: 1,
    max: i64::MAX,
};
const NON_NEGATIVE_LONG: Range = Range {
    min: 0,
    max: i64::MAX,
};
const NON_NEGATIVE_INT: Range = Range {
    min: 0,
    max: INT_MAX,
};
const SEGMENT_INDEX_BYTES_RANGE: Range = Range {
    min: 4,
    max: INT_MAX,
};
const RETENTION_MS_RANGE: Range = Range {
    min: -1,
    max: i64::MAX,
};
const ANY_LONG: Range = Range {
    min: i64::MIN,
    max: i64::MAX,
};
const AT_LEAST_ONE_LONG: Range = Range {
    min: 1,
    max: i64::MAX,
};
const AT_LEAST_ONE_INT: Range = Range {
    min: 1,
    max: INT_MAX,
};
const ANY_INT: Range = Range {
    min: INT_MIN,
    max: INT_MAX,
};

impl Range {
    fn describe(self) -> String {
        match (self.min, self.max) {
            (i64::MIN, i64::MAX) => "a 64-bit integer".to_string(),
            (INT_MIN, INT_MAX) => "a 32-bit integer".to_string(),
            (min, i64::MAX) => format!("an integer >= {min}"),
            (min, max) => format!("an integer in [{min}, {max}]"),
        }
    }

    /// Checks an already-typed value, naming `key` on failure.
    fn check(self, key: &str, value: i64) -> Result<i64> {
        if value < self.min || value > self.max {
            return Err(config_error(
                key,
                format!("{value} is out of range; expected {}", self.describe()),
            ));
        }
        Ok(value)
    }

    /// Parses `raw` as an integer in this range.
    fn parse(self, key: &str, raw: &str) -> Result<i64> {
        let value = raw.trim().parse::<i64>().map_err(|_| {
            config_error(
                key,
                format!("{raw:?} is not a number; expected {}", self.describe()),
            )
        })?;
        self.check(key, value)
    }

    /// Parses `raw` as an integer in this range and narrows it to the field's type.
    fn parse_as<T: TryFrom<i64>>(self, key: &str, raw: &str) -> Result<T> {
        let value = self.parse(key, raw)?;
        narrow(key, value)
    }
}

/// Converts a range-checked integer to the field's type.
fn narrow<T: TryFrom<i64>>(key: &str, value: i64) -> Result<T> {
    T::try_from(value).map_err(|_| config_error(key, format!("{value} does not fit")))
}

fn config_error(key: &str, reason: impl Into<String>) -> LogError {
    LogError::Config {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn parse_bool(key: &str, raw: &str) -> Result<bool> {
    let trimmed = raw.trim();
    if trimmed.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if trimmed.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(config_error(
            key,
            format!("{raw:?} is not a boolean; expected true or false"),
        ))
    }
}

fn check_ratio(key: &str, value: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(config_error(
            key,
            format!("{value} is out of range; expected a number in [0, 1]"),
        ))
    }
}

fn parse_ratio(key: &str, raw: &str) -> Result<f64> {
    let value = raw.trim().parse::<f64>().map_err(|_| {
        config_error(
            key,
            format!("{raw:?} is not a number; expected a number in [0, 1]"),
        )
    })?;
    check_ratio(key, value)
}

/// Formats a double the way Java's `Double.toString` does for values in `[0, 1]`
/// (`0.0`, `0.5`, `1.0`).
fn format_double(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e7 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

// ---------------------------------------------------------------------------------------
// Enumerated values.
// ---------------------------------------------------------------------------------------

/// Which timestamp a topic's records carry (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamp is kept (subject to the before/after bounds).
    #[default]
    CreateTime,
    /// The broker overwrites the batch's max timestamp with its append time.
    LogAppendTime,
}

impl TimestampType {
    /// Kafka's name for this type: `CreateTime` or `LogAppendTime`.
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }

    /// Parses Kafka's (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<TimestampType> {
        match name {
            "CreateTime" => Some(TimestampType::CreateTime),
            "LogAppendTime" => Some(TimestampType::LogAppendTime),
            _ => None,
        }
    }
}

impl fmt::Display for TimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The topic-level `compression.type` (Kafka's `BrokerCompressionType`): either a codec
/// the broker recompresses to, or `producer` to keep whatever the producer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerCompressionType {
    /// Keep the producer's codec.
    #[default]
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl BrokerCompressionType {
    /// All values, in Kafka's order.
    pub const ALL: [BrokerCompressionType; 6] = [
        BrokerCompressionType::Uncompressed,
        BrokerCompressionType::Zstd,
        BrokerCompressionType::Lz4,
        BrokerCompressionType::Snappy,
        BrokerCompressionType::Gzip,
        BrokerCompressionType::Producer,
    ];

    /// Kafka's name: `producer`, `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            BrokerCompressionType::Producer => "producer",
            BrokerCompressionType::Uncompressed => "uncompressed",
            BrokerCompressionType::Gzip => "gzip",
            BrokerCompressionType::Snappy => "snappy",
            BrokerCompressionType::Lz4 => "lz4",
            BrokerCompressionType::Zstd => "zstd",
        }
    }

    /// Parses Kafka's (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<BrokerCompressionType> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for BrokerCompressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `cleanup.policy`: a list of `delete` and/or `compact`. An empty list (allowed by
/// Kafka) means neither: segments are never deleted nor compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Old segments are deleted by `retention.ms` / `retention.bytes`.
    pub delete: bool,
    /// The log is compacted by key.
    pub compact: bool,
}

impl CleanupPolicy {
    /// `delete` (Kafka's default).
    pub const DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: false,
    };
    /// `compact`.
    pub const COMPACT: CleanupPolicy = CleanupPolicy {
        delete: false,
        compact: true,
    };
    /// `compact,delete`.
    pub const COMPACT_DELETE: CleanupPolicy = CleanupPolicy {
        delete: true,
        compact: true,
    };

    /// Parses a comma-separated list of `delete` / `compact` (case-sensitive, whitespace
    /// around items ignored). Returns the offending item on failure.
    pub fn parse(list: &str) -> std::result::Result<CleanupPolicy, String> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        let list = list.trim();
        if list.is_empty() {
            return Ok(policy);
        }
        for item in list.split(',') {
            match item.trim() {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                other => return Err(other.to_string()),
            }
        }
        Ok(policy)
    }
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy::DELETE
    }
}

impl fmt::Display for CleanupPolicy {
    /// Prints `delete`, `compact`, `compact,delete`, or the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            (false, true) => "delete",
            (false, false) => "",
        };
        f.write_str(text)
    }
}

// ---------------------------------------------------------------------------------------
// LogConfig.
// ---------------------------------------------------------------------------------------

/// A topic's log configuration. Field names mirror Kafka's topic-level config names.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` (default 1 GiB, in [14, 2^31-1]).
    pub segment_bytes: u64,
    /// `segment.ms` (default 7 days, >= 1).
    pub segment_ms: i64,
    /// `segment.jitter.ms` (default 0, >= 0).
    pub segment_jitter_ms: i64,
    /// `segment.index.bytes` (default 10 MiB, in [4, 2^31-1]).
    pub segment_index_bytes: u32,
    /// `index.interval.bytes` (default 4096, in [0, 2^31-1]).
    pub index_interval_bytes: u32,
    /// `retention.ms` (default 7 days; -1 = unlimited).
    pub retention_ms: i64,
    /// `retention.bytes` (default -1; any negative value = unlimited).
    pub retention_bytes: i64,
    /// `cleanup.policy` (default `delete`).
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms` (default 1 day, >= 0).
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio` (default 0.5, in [0, 1]).
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms` (default 0, >= 0, <= `max.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms` (default `i64::MAX`, >= 1).
    pub max_compaction_lag_ms: i64,
    /// `max.message.bytes` (default 1048588, in [0, 2^31-1]).
    pub max_message_bytes: u32,
    /// `message.timestamp.type` (default `CreateTime`).
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms` (default `i64::MAX`, >= 0).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (default `i64::MAX`, >= 0).
    pub message_timestamp_after_max_ms: i64,
    /// `flush.messages` (default `i64::MAX`, >= 1).
    pub flush_messages: i64,
    /// `flush.ms` (default `i64::MAX`, >= 0).
    pub flush_ms: i64,
    /// `file.delete.delay.ms` (default 60000, >= 0).
    pub file_delete_delay_ms: i64,
    /// `min.insync.replicas` (default 1, >= 1).
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable` (default false).
    pub unclean_leader_election_enable: bool,
    /// `compression.type` (default `producer`).
    pub compression_type: BrokerCompressionType,
    /// `preallocate` (default false).
    pub preallocate: bool,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        const DAY_MS: i64 = 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * DAY_MS,
            segment_jitter_ms: 0,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: DAY_MS,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            // 1 MiB plus the 12-byte log overhead (offset + size).
            max_message_bytes: 1024 * 1024 + 12,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: i64::MAX,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            compression_type: BrokerCompressionType::Producer,
            preallocate: false,
        }
    }
}

impl LogConfig {
    /// Kafka's defaults with the given topic-level overrides (by topic config name)
    /// applied. Unknown names and invalid values are errors naming the key.
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<LogConfig> {
        LogConfig::default().with_overrides(props)
    }

    /// This config with the given topic-level overrides applied on top. Every name is
    /// checked before any value; the result is validated as a whole (so a base built by
    /// hand with out-of-range fields is rejected too).
    pub fn with_overrides(&self, props: &BTreeMap<String, String>) -> Result<LogConfig> {
        if let Some(unknown) = props
            .keys()
            .find(|key| !TOPIC_CONFIG_NAMES.contains(&key.as_str()))
        {
            return Err(config_error(unknown, "unknown topic config name"));
        }
        let mut config = self.clone();
        for (key, value) in props {
            config.set(key, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The log config the broker-level properties define: Kafka's defaults overridden by
    /// the broker keys that are synonyms of topic configs (see [`broker_synonyms`]).
    /// Other broker keys are ignored. When several synonyms of one topic config are set,
    /// the first in Kafka's order wins (`log.retention.ms` over `log.retention.minutes`
    /// over `log.retention.hours`); every synonym that is set must still be valid.
    /// Hours and minutes are converted to milliseconds, and a negative retention time
    /// (from any of its synonyms) means unlimited (-1).
    pub fn from_broker_props(props: &BTreeMap<String, String>) -> Result<LogConfig> {
        let mut config = LogConfig::default();
        for &(topic_key, synonyms) in BROKER_SYNONYMS {
            // Lowest precedence first, so the highest-precedence synonym set is applied last.
            for synonym in synonyms.iter().rev() {
                let Some(raw) = props.get(synonym.name) else {
                    continue;
                };
                let value = synonym.to_topic_value(topic_key, raw)?;
                config
                    .set(topic_key, &value)
                    .map_err(|err| rename_key(err, synonym.name))?;
            }
        }
        config.validate().map_err(|err| match err {
            LogError::Config { key, reason } => {
                let broker_key = broker_synonyms(&key).first().map(|s| s.name.to_string());
                LogError::Config {
                    key: broker_key.unwrap_or(key),
                    reason,
                }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Every topic-level config with its current value, formatted as Kafka prints it.
    pub fn to_props(&self) -> BTreeMap<String, String> {
        let entries: [(&str, String); 23] = [
            (SEGMENT_BYTES_CONFIG, self.segment_bytes.to_string()),
            (SEGMENT_MS_CONFIG, self.segment_ms.to_string()),
            (SEGMENT_JITTER_MS_CONFIG, self.segment_jitter_ms.to_string()),
            (
                SEGMENT_INDEX_BYTES_CONFIG,
                self.segment_index_bytes.to_string(),
            ),
            (
                INDEX_INTERVAL_BYTES_CONFIG,
                self.index_interval_bytes.to_string(),
            ),
            (RETENTION_MS_CONFIG, self.retention_ms.to_string()),
            (RETENTION_BYTES_CONFIG, self.retention_bytes.to_string()),
            (CLEANUP_POLICY_CONFIG, self.cleanup_policy.to_string()),
            (
                DELETE_RETENTION_MS_CONFIG,
                self.delete_retention_ms.to_string(),
            ),
            (
                MIN_CLEANABLE_DIRTY_RATIO_CONFIG,
                format_double(self.min_cleanable_dirty_ratio),
            ),
            (
                MIN_COMPACTION_LAG_MS_CONFIG,
                self.min_compaction_lag_ms.to_string(),
            ),
            (
                MAX_COMPACTION_LAG_MS_CONFIG,
                self.max_compaction_lag_ms.to_string(),
            ),
            (MAX_MESSAGE_BYTES_CONFIG, self.max_message_bytes.to_string()),
            (
                MESSAGE_TIMESTAMP_TYPE_CONFIG,
                self.message_timestamp_type.name().to_string(),
            ),
            (
                MESSAGE_TIMESTAMP_BEFORE_MAX_MS_CONFIG,
                self.message_timestamp_before_max_ms.to_string(),
            ),
            (
                MESSAGE_TIMESTAMP_AFTER_MAX_MS_CONFIG,
                self.message_timestamp_after_max_ms.to_string(),
            ),
            (FLUSH_MESSAGES_CONFIG, self.flush_messages.to_string()),
            (FLUSH_MS_CONFIG, self.flush_ms.to_string()),
            (
                FILE_DELETE_DELAY_MS_CONFIG,
                self.file_delete_delay_ms.to_string(),
            ),
            (
                MIN_INSYNC_REPLICAS_CONFIG,
                self.min_insync_replicas.to_string(),
            ),
            (
                UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG,
                self.unclean_leader_election_enable.to_string(),
            ),
            (
                COMPRESSION_TYPE_CONFIG,
                self.compression_type.name().to_string(),
            ),
            (PREALLOCATE_CONFIG, self.preallocate.to_string()),
        ];
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect()
    }

    /// Checks every field against Kafka's limits, and the cross-field rule
    /// `min.compaction.lag.ms <= max.compaction.lag.ms`.
    pub fn validate(&self) -> Result<()> {
        let segment_bytes = i64::try_from(self.segment_bytes).unwrap_or(i64::MAX);
        SEGMENT_BYTES_RANGE.check(SEGMENT_BYTES_CONFIG, segment_bytes)?;
        SEGMENT_MS_RANGE.check(SEGMENT_MS_CONFIG, self.segment_ms)?;
        NON_NEGATIVE_LONG.check(SEGMENT_JITTER_MS_CONFIG, self.segment_jitter_ms)?;
        SEGMENT_INDEX_BYTES_RANGE.check(
            SEGMENT_INDEX_BYTES_CONFIG,
            i64::from(self.segment_index_bytes),
        )?;
        NON_NEGATIVE_INT.check(
            INDEX_INTERVAL_BYTES_CONFIG,
            i64::from(self.index_interval_bytes),
        )?;
        RETENTION_MS_RANGE.check(RETENTION_MS_CONFIG, self.retention_ms)?;
        NON_NEGATIVE_LONG.check(DELETE_RETENTION_MS_CONFIG, self.delete_retention_ms)?;
        check_ratio(
            MIN_CLEANABLE_DIRTY_RATIO_CONFIG,
            self.min_cleanable_dirty_ratio,
        )?;
        NON_NEGATIVE_LONG.check(MIN_COMPACTION_LAG_MS_CONFIG, self.min_compaction_lag_ms)?;
        AT_LEAST_ONE_LONG.check(MAX_COMPACTION_LAG_MS_CONFIG, self.max_compaction_lag_ms)?;
        NON_NEGATIVE_INT.check(MAX_MESSAGE_BYTES_CONFIG, i64::from(self.max_message_bytes))?;
        NON_NEGATIVE_LONG.check(
            MESSAGE_TIMESTAMP_BEFORE_MAX_MS_CONFIG,
            self.message_timestamp_before_max_ms,
        )?;
        NON_NEGATIVE_LONG.check(
            MESSAGE_TIMESTAMP_AFTER_MAX_MS_CONFIG,
            self.message_timestamp_after_max_ms,
        )?;
        AT_LEAST_ONE_LONG.check(FLUSH_MESSAGES_CONFIG, self.flush_messages)?;
        NON_NEGATIVE_LONG.check(FLUSH_MS_CONFIG, self.flush_ms)?;
        NON_NEGATIVE_LONG.check(FILE_DELETE_DELAY_MS_CONFIG, self.file_delete_delay_ms)?;
        AT_LEAST_ONE_INT.check(
            MIN_INSYNC_REPLICAS_CONFIG,
            i64::from(self.min_insync_replicas),
        )?;
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(config_error(
                MIN_COMPACTION_LAG_MS_CONFIG,
                format!(
                    "{} exceeds {MAX_COMPACTION_LAG_MS_CONFIG} ({}); it must not be larger",
                    self.min_compaction_lag_ms, self.max_compaction_lag_ms
                ),
            ));
        }
        Ok(())
    }

    /// Sets one topic-level config from its string form, checking its type and range.
    fn set(&mut self, key: &str, raw: &str) -> Result<()> {
        match key {
            SEGMENT_BYTES_CONFIG => self.segment_bytes = SEGMENT_BYTES_RANGE.parse_as(key, raw)?,
            SEGMENT_MS_CONFIG => self.segment_ms = SEGMENT_MS_RANGE.parse(key, raw)?,
            SEGMENT_JITTER_MS_CONFIG => {
                self.segment_jitter_ms = NON_NEGATIVE_LONG.parse(key, raw)?;
            }
            SEGMENT_INDEX_BYTES_CONFIG => {
                self.segment_index_bytes = SEGMENT_INDEX_BYTES_RANGE.parse_as(key, raw)?;
            }
            INDEX_INTERVAL_BYTES_CONFIG => {
                self.index_interval_bytes = NON_NEGATIVE_INT.parse_as(key, raw)?;
            }
            RETENTION_MS_CONFIG => self.retention_ms = RETENTION_MS_RANGE.parse(key, raw)?,
            RETENTION_BYTES_CONFIG => self.retention_bytes = ANY_LONG.parse(key, raw)?,
            CLEANUP_POLICY_CONFIG => {
                self.cleanup_policy = CleanupPolicy::parse(raw).map_err(|item| {
                    config_error(
                        key,
                        format!(
                            "{item:?} in {raw:?} is not a cleanup policy; expected a \
                             comma-separated list of delete and/or compact"
                        ),
                    )
                })?;
            }
            DELETE_RETENTION_MS_CONFIG => {
                self.delete_retention_ms = NON_NEGATIVE_LONG.parse(key, raw)?;
            }
            MIN_CLEANABLE_DIRTY_RATIO_CONFIG => {
                self.min_cleanable_dirty_ratio = parse_ratio(key, raw)?;
            }
            MIN_COMPACTION_LAG_MS_CONFIG => {
                self.min_compaction_lag_ms = NON_NEGATIVE_LONG.parse(key, raw)?;
            }
            MAX_COMPACTION_LAG_MS_CONFIG => {
                self.max_compaction_lag_ms = AT_LEAST_ONE_LONG.parse(key, raw)?;
            }
            MAX_MESSAGE_BYTES_CONFIG => {
                self.max_message_bytes = NON_NEGATIVE_INT.parse_as(key, raw)?;
            }
            MESSAGE_TIMESTAMP_TYPE_CONFIG => {
                self.message_timestamp_type =
                    TimestampType::from_name(raw.trim()).ok_or_else(|| {
                        config_error(
                            key,
                            format!("{raw:?} is not allowed; expected CreateTime or LogAppendTime"),
                        )
                    })?;
            }
            MESSAGE_TIMESTAMP_BEFORE_MAX_MS_CONFIG => {
                self.message_timestamp_before_max_ms = NON_NEGATIVE_LONG.parse(key, raw)?;
            }
            MESSAGE_TIMESTAMP_AFTER_MAX_MS_CONFIG => {
                self.message_timestamp_after_max_ms = NON_NEGATIVE_LONG.parse(key, raw)?;
            }
            FLUSH_MESSAGES_CONFIG => self.flush_messages = AT_LEAST_ONE_LONG.parse(key, raw)?,
            FLUSH_MS_CONFIG => self.flush_ms = NON_NEGATIVE_LONG.parse(key, raw)?,
            FILE_DELETE_DELAY_MS_CONFIG => {
                self.file_delete_delay_ms = NON_NEGATIVE_LONG.parse(key, raw)?;
            }
            MIN_INSYNC_REPLICAS_CONFIG => {
                self.min_insync_replicas = AT_LEAST_ONE_INT.parse_as(key, raw)?;
            }
            UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG => {
                self.unclean_leader_election_enable = parse_bool(key, raw)?;
            }
            COMPRESSION_TYPE_CONFIG => {
                self.compression_type =
                    BrokerCompressionType::from_name(raw.trim()).ok_or_else(|| {
                        config_error(
                            key,
                            format!(
                                "{raw:?} is not allowed; expected one of producer, \
                                 uncompressed, gzip, snappy, lz4, zstd"
                            ),
                        )
                    })?;
            }
            PREALLOCATE_CONFIG => self.preallocate = parse_bool(key, raw)?,
            _ => return Err(config_error(key, "unknown topic config name")),
        }
        Ok(())
    }

    /// `retention.ms` as a limit: `None` when retention by time is unlimited (negative).
    pub fn retention_ms_limit(&self) -> Option<i64> {
        (self.retention_ms >= 0).then_some(self.retention_ms)
    }

    /// `retention.bytes` as a limit: `None` when retention by size is unlimited (negative).
    pub fn retention_bytes_limit(&self) -> Option<u64> {
        u64::try_from(self.retention_bytes).ok()
    }

    /// The age after which the active segment is rolled, as Kafka computes it: on a
    /// compacted topic `max.compaction.lag.ms` caps `segment.ms`.
    pub fn max_segment_ms(&self) -> i64 {
        if self.cleanup_policy.compact && self.max_compaction_lag_ms > 0 {
            self.max_compaction_lag_ms.min(self.segment_ms)
        } else {
            self.segment_ms
        }
    }

    /// The roll jitter for a new segment, derived from the caller's random number:
    /// `random % min(segment.jitter.ms, segment.ms)`, or 0 without jitter.
    pub fn segment_jitter(&self, random: u64) -> i64 {
        let bound = self.segment_jitter_ms.min(self.segment_ms);
        match u64::try_from(bound) {
            Ok(bound) if bound > 0 => i64::try_from(random % bound).unwrap_or(0),
            _ => 0,
        }
    }

    /// The initial size of a new segment file: `segment.bytes` when preallocating, else 0.
    pub fn init_file_size(&self) -> u64 {
        if self.preallocate {
            self.segment_bytes
        } else {
            0
        }
    }
}

fn rename_key(err: LogError, new_key: &str) -> LogError {
    match err {
        LogError::Config { reason, .. } => LogError::Config {
            key: new_key.to_string(),
            reason,
        },
        other => other,
    }
}

// ---------------------------------------------------------------------------------------
// Broker-level synonyms (Kafka's `ServerTopicConfigSynonyms`).
// ---------------------------------------------------------------------------------------

/// How a broker-level value converts to its topic-level synonym's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynonymConversion {
    /// The value is used as is.
    None,
    /// A 32-bit count of minutes, converted to milliseconds.
    MinutesToMillis,
    /// A 32-bit count of hours, converted to milliseconds.
    HoursToMillis,
}

/// A broker-level config that supplies the default of a topic-level config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerSynonym {
    /// The broker config name, e.g. `log.retention.hours`.
    pub name: &'static str,
    /// How its value converts to the topic config's value.
    pub conversion: SynonymConversion,
}

impl BrokerSynonym {
    const fn same(name: &'static str) -> BrokerSynonym {
        BrokerSynonym {
            name,
            conversion: SynonymConversion::None,
        }
    }

    const fn minutes(name: &'static str) -> BrokerSynonym {
        BrokerSynonym {
            name,
            conversion: SynonymConversion::MinutesToMillis,
        }
    }

    const fn hours(name: &'static str) -> BrokerSynonym {
        BrokerSynonym {
            name,
            conversion: SynonymConversion::HoursToMillis,
        }
    }

    /// The broker-level validator of a minutes/hours synonym (Kafka INT configs).
    fn unit_range(self) -> Range {
        match self.name {
            "log.roll.hours" => AT_LEAST_ONE_INT,
            "log.roll.jitter.hours" => NON_NEGATIVE_INT,
            _ => ANY_INT,
        }
    }

    /// Converts the broker value `raw` to the string form of `topic_key`'s value.
    fn to_topic_value<'a>(self, topic_key: &str, raw: &'a str) -> Result<Cow<'a, str>> {
        let factor: i64 = match self.conversion {
            SynonymConversion::None => {
                if topic_key == RETENTION_MS_CONFIG {
                    // log.retention.ms has no validator: any negative value means unlimited.
                    let millis = ANY_LONG.parse(self.name, raw)?;
                    return Ok(Cow::Owned(millis.max(-1).to_string()));
                }
                return Ok(Cow::Borrowed(raw));
            }
            SynonymConversion::MinutesToMillis => 60 * 1000,
            SynonymConversion::HoursToMillis => 60 * 60 * 1000,
        };
        let units = self.unit_range().parse(self.name, raw)?;
        // |units| <= 2^31 and factor < 2^22, so this cannot overflow; saturate anyway.
        let mut millis = units.saturating_mul(factor);
        if topic_key == RETENTION_MS_CONFIG {
            millis = millis.max(-1);
        }
        Ok(Cow::Owned(millis.to_string()))
    }
}

/// Topic config name → its broker-level synonyms, highest precedence first.
const BROKER_SYNONYMS: &[(&str, &[BrokerSynonym])] = &[
    (
        SEGMENT_BYTES_CONFIG,
        &[BrokerSynonym::same("log.segment.bytes")],
    ),
    (
        SEGMENT_MS_CONFIG,
        &[
            BrokerSynonym::same("log.roll.ms"),
            BrokerSynonym::hours("log.roll.hours"),
        ],
    ),
    (
        SEGMENT_JITTER_MS_CONFIG,
        &[
            BrokerSynonym::same("log.roll.jitter.ms"),
            BrokerSynonym::hours("log.roll.jitter.hours"),
        ],
    ),
    (
        SEGMENT_INDEX_BYTES_CONFIG,
        &[BrokerSynonym::same("log.index.size.max.bytes")],
    ),
    (
        FLUSH_MESSAGES_CONFIG,
        &[BrokerSynonym::same("log.flush.interval.messages")],
    ),
    (
        FLUSH_MS_CONFIG,
        &[
            BrokerSynonym::same("log.flush.interval.ms"),
            BrokerSynonym::same("log.flush.scheduler.interval.ms"),
        ],
    ),
    (
        RETENTION_BYTES_CONFIG,
        &[BrokerSynonym::same("log.retention.bytes")],
    ),
    (
        RETENTION_MS_CONFIG,
        &[
            BrokerSynonym::same("log.retention.ms"),
            BrokerSynonym::minutes("log.retention.minutes"),
            BrokerSynonym::hours("log.retention.hours"),
        ],
    ),
    (
        MAX_MESSAGE_BYTES_CONFIG,
        &[BrokerSynonym::same("message.max.bytes")],
    ),
    (
        INDEX_INTERVAL_BYTES_CONFIG,
        &[BrokerSynonym::same("log.index.interval.bytes")],
    ),
    (
        DELETE_RETENTION_MS_CONFIG,
        &[BrokerSynonym::same("log.cleaner.delete.retention.ms")],
    ),
    (
        MIN_COMPACTION_LAG_MS_CONFIG,
        &[BrokerSynonym::same("log.cleaner.min.compaction.lag.ms")],
    ),
    (
        MAX_COMPACTION_LAG_MS_CONFIG,
        &[BrokerSynonym::same("log.cleaner.max.compaction.lag.ms")],
    ),
    (
        FILE_DELETE_DELAY_MS_CONFIG,
        &[BrokerSynonym::same("log.segment.delete.delay.ms")],
    ),
    (
        MIN_CLEANABLE_DIRTY_RATIO_CONFIG,
        &[BrokerSynonym::same("log.cleaner.min.cleanable.ratio")],
    ),
    (
        CLEANUP_POLICY_CONFIG,
        &[BrokerSynonym::same("log.cleanup.policy")],
    ),
    (
        UNCLEAN_LEADER_ELECTION_ENABLE_CONFIG,
        &[BrokerSynonym::same("unclean.leader.election.enable")],
    ),
    (
        MIN_INSYNC_REPLICAS_CONFIG,
        &[BrokerSynonym::same("min.insync.replicas")],
    ),
    (
        COMPRESSION_TYPE_CONFIG,
        &[BrokerSynonym::same("compression.type")],
    ),
    (
        PREALLOCATE_CONFIG,
        &[BrokerSynonym::same("log.preallocate")],
    ),
    (
        MESSAGE_TIMESTAMP_TYPE_CONFIG,
        &[BrokerSynonym::same("log.message.timestamp.type")],
    ),
    (
        MESSAGE_TIMESTAMP_BEFORE_MAX_MS_CONFIG,
        &[BrokerSynonym::same("log.message.timestamp.before.max.ms")],
    ),
    (
        MESSAGE_TIMESTAMP_AFTER_MAX_MS_CONFIG,
        &[BrokerSynonym::same("log.message.timestamp.after.max.ms")],
    ),
];

/// The broker-level synonyms of a topic config, highest precedence first (e.g.
/// `retention.ms` → `log.retention.ms`, `log.retention.minutes`, `log.retention.hours`).
/// Empty for an unknown name.
pub fn broker_synonyms(topic_config: &str) -> &'static [BrokerSynonym] {
    BROKER_SYNONYMS
        .iter()
        .find(|(name, _)| *name == topic_config)
        .map_or(&[], |(_, synonyms)| *synonyms)
}

/// The topic config a broker-level config is a synonym of, if any (e.g.
/// `log.roll.hours` → `segment.ms`).
pub fn topic_config_for_broker_config(broker_config: &str) -> Option<&'static str> {
    BROKER_SYNONYMS
        .iter()
        .find(|(_, synonyms)| synonyms.iter().any(|s| s.name == broker_config))
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Asserts `result` is a config error naming `key`, and returns its reason.
    fn config_err(result: Result<LogConfig>, key: &str) -> String {
        match result {
            Err(LogError::Config { key: k, reason }) => {
                assert_eq!(k, key, "error names the wrong key: {reason}");
                reason
            }
            other => panic!("expected a config error for {key}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.segment_ms, 604_800_000);
        assert_eq!(c.segment_jitter_ms, 0);
        assert_eq!(c.segment_index_bytes, 10_485_760);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.cleanup_policy, CleanupPolicy::DELETE);
        assert_eq!(c.delete_retention_ms, 86_400_000);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.5);
        assert_eq!(c.min_compaction_lag_ms, 0);
        assert_eq!(c.max_compaction_lag_ms, i64::MAX);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert_eq!(c.message_timestamp_type, TimestampType::CreateTime);
        assert_eq!(c.message_timestamp_before_max_ms, i64::MAX);
        assert_eq!(c.message_timestamp_after_max_ms, i64::MAX);
        assert_eq!(c.flush_messages, i64::MAX);
        assert_eq!(c.flush_ms, i64::MAX);
        assert_eq!(c.file_delete_delay_ms, 60_000);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(!c.unclean_leader_election_enable);
        assert_eq!(c.compression_type, BrokerCompressionType::Producer);
        assert!(!c.preallocate);
        assert!(c.validate().is_ok());
        assert_eq!(
            LogConfig::from_props(&BTreeMap::new()).ok(),
            Some(c.clone())
        );
        assert_eq!(LogConfig::from_broker_props(&BTreeMap::new()).ok(), Some(c));
    }

    #[test]
    fn default_props_print_like_kafka() {
        let p = LogConfig::default().to_props();
        let get = |k: &str| p.get(k).map(String::as_str);
        assert_eq!(get("segment.bytes"), Some("1073741824"));
        assert_eq!(get("retention.ms"), Some("604800000"));
        assert_eq!(get("retention.bytes"), Some("-1"));
        assert_eq!(get("cleanup.policy"), Some("delete"));
        assert_eq!(get("min.cleanable.dirty.ratio"), Some("0.5"));
        assert_eq!(get("max.compaction.lag.ms"), Some("9223372036854775807"));
        assert_eq!(get("message.timestamp.type"), Some("CreateTime"));
        assert_eq!(get("compression.type"), Some("producer"));
        assert_eq!(get("unclean.leader.election.enable"), Some("false"));
        assert_eq!(get("max.message.bytes"), Some("1048588"));
    }

    #[test]
    fn names_are_sorted_and_match_to_props() {
        let mut sorted = TOPIC_CONFIG_NAMES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, TOPIC_CONFIG_NAMES);
        let printed: Vec<String> = LogConfig::default().to_props().into_keys().collect();
        assert_eq!(printed, TOPIC_CONFIG_NAMES);
        for name in TOPIC_CONFIG_NAMES {
            assert!(
                !broker_synonyms(name).is_empty(),
                "{name} has no broker synonym"
            );
        }
    }

    #[test]
    fn overrides_parse() -> Result<()> {
        let c = LogConfig::from_props(&props(&[
            ("segment.bytes", "1048576"),
            ("segment.ms", " 3600000 "),
            ("segment.jitter.ms", "1000"),
            ("segment.index.bytes", "4096"),
            ("index.interval.bytes", "0"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1000000"),
            ("cleanup.policy", "compact"),
            ("delete.retention.ms", "0"),
            ("min.cleanable.dirty.ratio", "0.1"),
            ("min.compaction.lag.ms", "100"),
            ("max.compaction.lag.ms", "200"),
            ("max.message.bytes", "2000000"),
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.before.max.ms", "5000"),
            ("message.timestamp.after.max.ms", "6000"),
            ("flush.messages", "1"),
            ("flush.ms", "0"),
            ("file.delete.delay.ms", "0"),
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "TRUE"),
            ("compression.type", "zstd"),
            ("preallocate", "true"),
        ]))?;
        assert_eq!(c.segment_bytes, 1_048_576);
        assert_eq!(c.segment_ms, 3_600_000);
        assert_eq!(c.segment_jitter_ms, 1000);
        assert_eq!(c.segment_index_bytes, 4096);
        assert_eq!(c.index_interval_bytes, 0);
        assert_eq!(c.retention_ms, -1);
        assert_eq!(c.retention_ms_limit(), None);
        assert_eq!(c.retention_bytes, 1_000_000);
        assert_eq!(c.retention_bytes_limit(), Some(1_000_000));
        assert_eq!(c.cleanup_policy, CleanupPolicy::COMPACT);
        assert_eq!(c.delete_retention_ms, 0);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.1);
        assert_eq!(c.min_compaction_lag_ms, 100);
        assert_eq!(c.max_compaction_lag_ms, 200);
        assert_eq!(c.max_message_bytes, 2_000_000);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.message_timestamp_before_max_ms, 5000);
        assert_eq!(c.message_timestamp_after_max_ms, 6000);
        assert_eq!(c.flush_messages, 1);
        assert_eq!(c.flush_ms, 0);
        assert_eq!(c.file_delete_delay_ms, 0);
        assert_eq!(c.min_insync_replicas, 2);
        assert!(c.unclean_leader_election_enable);
        assert_eq!(c.compression_type, BrokerCompressionType::Zstd);
        assert!(c.preallocate);
        assert_eq!(c.init_file_size(), 1_048_576);
        // Compacted: max.compaction.lag.ms caps segment.ms.
        assert_eq!(c.max_segment_ms(), 200);
        Ok(())
    }

    #[test]
    fn every_compression_type_parses() -> Result<()> {
        for codec in BrokerCompressionType::ALL {
            let c = LogConfig::from_props(&props(&[("compression.type", codec.name())]))?;
            assert_eq!(c.compression_type, codec);
        }
        Ok(())
    }

    #[test]
    fn with_overrides_keeps_the_base() -> Result<()> {
        let base = LogConfig::from_broker_props(&props(&[
            ("log.retention.hours", "1"),
            ("log.segment.bytes", "1000"),
        ]))?;
        let c = base.with_overrides(&props(&[("segment.bytes", "2000")]))?;
        assert_eq!(c.retention_ms, 3_600_000);
        assert_eq!(c.segment_bytes, 2000);
        // The base is untouched and an empty override is the identity.
        assert_eq!(base.segment_bytes, 1000);
        assert_eq!(base.with_overrides(&BTreeMap::new())?, base);
        Ok(())
    }

    #[test]
    fn unknown_key_is_an_error() {
        let reason = config_err(
            LogConfig::from_props(&props(&[("segment.bytes", "100"), ("no.such.config", "1")])),
            "no.such.config",
        );
        assert!(reason.contains("unknown"), "{reason}");
        // A broker-level name is not a topic-level name.
        config_err(
            LogConfig::from_props(&props(&[("log.retention.hours", "1")])),
            "log.retention.hours",
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("segment.bytes", "big", "[14, 2147483647]"),
            ("segment.bytes", "13", "[14, 2147483647]"),
            ("segment.bytes", "2147483648", "[14, 2147483647]"),
            ("segment.ms", "0", ">= 1"),
            ("segment.ms", "1.5", ">= 1"),
            ("segment.jitter.ms", "-1", ">= 0"),
            ("segment.index.bytes", "3", "[4, 2147483647]"),
            ("index.interval.bytes", "-1", "[0, 2147483647]"),
            ("retention.ms", "-2", ">= -1"),
            ("retention.bytes", "", "64-bit integer"),
            ("retention.bytes", "9223372036854775808", "64-bit integer"),
            ("cleanup.policy", "remove", "delete and/or compact"),
            ("cleanup.policy", "Compact", "delete and/or compact"),
            ("cleanup.policy", "delete,,compact", "delete and/or compact"),
            ("delete.retention.ms", "-5", ">= 0"),
            ("min.cleanable.dirty.ratio", "1.5", "[0, 1]"),
            ("min.cleanable.dirty.ratio", "-0.1", "[0, 1]"),
            ("min.cleanable.dirty.ratio", "NaN", "[0, 1]"),
            ("min.cleanable.dirty.ratio", "half", "[0, 1]"),
            ("min.compaction.lag.ms", "-1", ">= 0"),
            ("max.compaction.lag.ms", "0", ">= 1"),
            ("max.message.bytes", "-1", "[0, 2147483647]"),
            (
                "message.timestamp.type",
                "createtime",
                "CreateTime or LogAppendTime",
            ),
            ("message.timestamp.before.max.ms", "-1", ">= 0"),
            ("message.timestamp.after.max.ms", "x", ">= 0"),
            ("flush.messages", "0", ">= 1"),
            ("flush.ms", "-1", ">= 0"),
            ("file.delete.delay.ms", "-1", ">= 0"),
            ("min.insync.replicas", "0", "[1, 2147483647]"),
            ("unclean.leader.election.enable", "yes", "true or false"),
            ("compression.type", "brotli", "producer, uncompressed, gzip"),
            ("compression.type", "GZIP", "producer, uncompressed, gzip"),
            ("preallocate", "1", "true or false"),
        ];
        for &(key, value, allowed) in cases {
            let reason = config_err(LogConfig::from_props(&props(&[(key, value)])), key);
            assert!(
                reason.contains(allowed),
                "{key}={value}: reason {reason:?} does not say {allowed:?}"
            );
        }
    }

    #[test]
    fn error_message_names_key() {
        let err = LogConfig::from_props(&props(&[("segment.bytes", "1")]));
        let text = err.map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            text,
            Err(
                "invalid value for segment.bytes: 1 is out of range; expected an integer in \
                 [14, 2147483647]"
                    .to_string()
            )
        );
    }

    #[test]
    fn cross_field_compaction_lags() {
        let reason = config_err(
            LogConfig::from_props(&props(&[
                ("min.compaction.lag.ms", "1000"),
                ("max.compaction.lag.ms", "999"),
            ])),
            "min.compaction.lag.ms",
        );
        assert!(reason.contains("max.compaction.lag.ms"), "{reason}");
        assert!(LogConfig::from_props(&props(&[
            ("min.compaction.lag.ms", "1000"),
            ("max.compaction.lag.ms", "1000"),
        ]))
        .is_ok());
    }

    #[test]
    fn validate_rejects_hand_built_fields() {
        let c = LogConfig {
            segment_bytes: 10,
            ..LogConfig::default()
        };
        config_err(c.with_overrides(&BTreeMap::new()), "segment.bytes");
        let c = LogConfig {
            min_cleanable_dirty_ratio: f64::NAN,
            ..LogConfig::default()
        };
        config_err(
            c.with_overrides(&BTreeMap::new()),
            "min.cleanable.dirty.ratio",
        );
    }

    #[test]
    fn cleanup_policy_combinations() -> Result<()> {
        let cases: &[(&str, CleanupPolicy, &str)] = &[
            ("delete", CleanupPolicy::DELETE, "delete"),
            ("compact", CleanupPolicy::COMPACT, "compact"),
            (
                "compact,delete",
                CleanupPolicy::COMPACT_DELETE,
                "compact,delete",
            ),
            (
                "delete,compact",
                CleanupPolicy::COMPACT_DELETE,
                "compact,delete",
            ),
            (
                " compact , delete ",
                CleanupPolicy::COMPACT_DELETE,
                "compact,delete",
            ),
            ("delete,delete", CleanupPolicy::DELETE, "delete"),
            (
                "",
                CleanupPolicy {
                    delete: false,
                    compact: false,
                },
                "",
            ),
        ];
        for &(raw, expected, printed) in cases {
            let c = LogConfig::from_props(&props(&[("cleanup.policy", raw)]))?;
            assert_eq!(c.cleanup_policy, expected, "{raw:?}");
            assert_eq!(
                c.to_props().get("cleanup.policy").map(String::as_str),
                Some(printed)
            );
        }
        Ok(())
    }

    #[test]
    fn to_props_from_props_round_trip() -> Result<()> {
        let configs = [
            LogConfig::default(),
            LogConfig {
                segment_bytes: 14,
                segment_ms: 1,
                segment_jitter_ms: 7,
                segment_index_bytes: 4,
                index_interval_bytes: 0,
                retention_ms: -1,
                retention_bytes: -12345,
                cleanup_policy: CleanupPolicy::COMPACT_DELETE,
                delete_retention_ms: 0,
                min_cleanable_dirty_ratio: 1.0,
                min_compaction_lag_ms: 5,
                max_compaction_lag_ms: 5,
                max_message_bytes: 0,
                message_timestamp_type: TimestampType::LogAppendTime,
                message_timestamp_before_max_ms: 0,
                message_timestamp_after_max_ms: 1,
                flush_messages: 1,
                flush_ms: 0,
                file_delete_delay_ms: 0,
                min_insync_replicas: 3,
                unclean_leader_election_enable: true,
                compression_type: BrokerCompressionType::Lz4,
                preallocate: true,
            },
            LogConfig {
                min_cleanable_dirty_ratio: 0.0,
                cleanup_policy: CleanupPolicy {
                    delete: false,
                    compact: false,
                },
                ..LogConfig::default()
            },
            LogConfig {
                min_cleanable_dirty_ratio: 0.123_456_789,
                ..LogConfig::default()
            },
        ];
        for config in configs {
            let printed = config.to_props();
            assert_eq!(LogConfig::from_props(&printed)?, config, "{printed:?}");
        }
        let p = LogConfig {
            min_cleanable_dirty_ratio: 1.0,
            ..LogConfig::default()
        }
        .to_props();
        assert_eq!(
            p.get("min.cleanable.dirty.ratio").map(String::as_str),
            Some("1.0")
        );
        Ok(())
    }

    #[test]
    fn broker_retention_precedence() -> Result<()> {
        let all = props(&[
            ("log.retention.ms", "1234"),
            ("log.retention.minutes", "2"),
            ("log.retention.hours", "3"),
        ]);
        assert_eq!(LogConfig::from_broker_props(&all)?.retention_ms, 1234);
        let minutes_hours = props(&[("log.retention.minutes", "2"), ("log.retention.hours", "3")]);
        assert_eq!(
            LogConfig::from_broker_props(&minutes_hours)?.retention_ms,
            120_000
        );
        let hours = props(&[("log.retention.hours", "3")]);
        assert_eq!(
            LogConfig::from_broker_props(&hours)?.retention_ms,
            10_800_000
        );
        let ms_hours = props(&[("log.retention.ms", "5"), ("log.retention.hours", "3")]);
        assert_eq!(LogConfig::from_broker_props(&ms_hours)?.retention_ms, 5);
        // Any negative retention time means unlimited.
        for (key, value) in [
            ("log.retention.ms", "-7"),
            ("log.retention.minutes", "-1"),
            ("log.retention.hours", "-1"),
        ] {
            let c = LogConfig::from_broker_props(&props(&[(key, value)]))?;
            assert_eq!(c.retention_ms, -1, "{key}={value}");
        }
        // Large hour counts do not overflow.
        let big = props(&[("log.retention.hours", "2147483647")]);
        assert_eq!(
            LogConfig::from_broker_props(&big)?.retention_ms,
            2_147_483_647 * 3_600_000
        );
        Ok(())
    }

    #[test]
    fn broker_roll_and_flush_precedence() -> Result<()> {
        let c = LogConfig::from_broker_props(&props(&[("log.roll.hours", "2")]))?;
        assert_eq!(c.segment_ms, 7_200_000);
        let c = LogConfig::from_broker_props(&props(&[
            ("log.roll.ms", "1000"),
            ("log.roll.hours", "2"),
        ]))?;
        assert_eq!(c.segment_ms, 1000);
        let c = LogConfig::from_broker_props(&props(&[("log.roll.jitter.hours", "1")]))?;
        assert_eq!(c.segment_jitter_ms, 3_600_000);
        let c = LogConfig::from_broker_props(&props(&[
            ("log.roll.jitter.ms", "10"),
            ("log.roll.jitter.hours", "1"),
        ]))?;
        assert_eq!(c.segment_jitter_ms, 10);
        let c =
            LogConfig::from_broker_props(&props(&[("log.flush.scheduler.interval.ms", "3000")]))?;
        assert_eq!(c.flush_ms, 3000);
        let c = LogConfig::from_broker_props(&props(&[
            ("log.flush.interval.ms", "1000"),
            ("log.flush.scheduler.interval.ms", "3000"),
        ]))?;
        assert_eq!(c.flush_ms, 1000);
        Ok(())
    }

    #[test]
    fn broker_names_map_to_topic_configs() -> Result<()> {
        let c = LogConfig::from_broker_props(&props(&[
            ("log.segment.bytes", "5000"),
            ("log.index.size.max.bytes", "8192"),
            ("log.index.interval.bytes", "100"),
            ("log.retention.bytes", "99999"),
            ("log.cleanup.policy", "delete,compact"),
            ("log.cleaner.delete.retention.ms", "11"),
            ("log.cleaner.min.cleanable.ratio", "0.25"),
            ("log.cleaner.min.compaction.lag.ms", "12"),
            ("log.cleaner.max.compaction.lag.ms", "13"),
            ("message.max.bytes", "777"),
            ("log.message.timestamp.type", "LogAppendTime"),
            ("log.message.timestamp.before.max.ms", "14"),
            ("log.message.timestamp.after.max.ms", "15"),
            ("log.flush.interval.messages", "16"),
            ("log.segment.delete.delay.ms", "17"),
            ("min.insync.replicas", "2"),
            ("unclean.leader.election.enable", "true"),
            ("compression.type", "gzip"),
            ("log.preallocate", "true"),
            // Not log configs: ignored.
            ("broker.id", "not-validated-here"),
            ("log.dirs", "/tmp/x"),
            ("segment.bytes", "1"),
        ]))?;
        assert_eq!(c.segment_bytes, 5000);
        assert_eq!(c.segment_index_bytes, 8192);
        assert_eq!(c.index_interval_bytes, 100);
        assert_eq!(c.retention_bytes, 99_999);
        assert_eq!(c.cleanup_policy, CleanupPolicy::COMPACT_DELETE);
        assert_eq!(c.delete_retention_ms, 11);
        assert_eq!(c.min_cleanable_dirty_ratio, 0.25);
        assert_eq!(c.min_compaction_lag_ms, 12);
        assert_eq!(c.max_compaction_lag_ms, 13);
        assert_eq!(c.max_message_bytes, 777);
        assert_eq!(c.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.message_timestamp_before_max_ms, 14);
        assert_eq!(c.message_timestamp_after_max_ms, 15);
        assert_eq!(c.flush_messages, 16);
        assert_eq!(c.file_delete_delay_ms, 17);
        assert_eq!(c.min_insync_replicas, 2);
        assert!(c.unclean_leader_election_enable);
        assert_eq!(c.compression_type, BrokerCompressionType::Gzip);
        assert!(c.preallocate);
        Ok(())
    }

    #[test]
    fn bad_broker_values_name_the_broker_key() {
        let cases: &[(&str, &str)] = &[
            ("log.segment.bytes", "10"),
            ("log.roll.hours", "0"),
            ("log.roll.hours", "2147483648"),
            ("log.roll.ms", "0"),
            ("log.roll.jitter.hours", "-1"),
            ("log.retention.hours", "forever"),
            ("log.retention.minutes", "1.5"),
            ("log.retention.ms", "soon"),
            ("log.cleaner.min.cleanable.ratio", "2"),
            ("log.cleanup.policy", "archive"),
            ("message.max.bytes", "-1"),
            ("compression.type", "lzma"),
            ("log.message.timestamp.type", "Now"),
            ("log.preallocate", "maybe"),
        ];
        for &(key, value) in cases {
            config_err(LogConfig::from_broker_props(&props(&[(key, value)])), key);
        }
        // A shadowed synonym is still validated, as Kafka parses every broker config.
        config_err(
            LogConfig::from_broker_props(&props(&[
                ("log.retention.ms", "1000"),
                ("log.retention.hours", "x"),
            ])),
            "log.retention.hours",
        );
        // Cross-field errors name the broker synonym.
        config_err(
            LogConfig::from_broker_props(&props(&[
                ("log.cleaner.min.compaction.lag.ms", "10"),
                ("log.cleaner.max.compaction.lag.ms", "5"),
            ])),
            "log.cleaner.min.compaction.lag.ms",
        );
    }

    #[test]
    fn synonym_lookups() {
        let names: Vec<&str> = broker_synonyms("retention.ms")
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [
                "log.retention.ms",
                "log.retention.minutes",
                "log.retention.hours"
            ]
        );
        assert_eq!(
            broker_synonyms("segment.ms")[1],
            BrokerSynonym {
                name: "log.roll.hours",
                conversion: SynonymConversion::HoursToMillis
            }
        );
        assert!(broker_synonyms("nope").is_empty());
        assert_eq!(
            topic_config_for_broker_config("log.roll.hours"),
            Some("segment.ms")
        );
        assert_eq!(
            topic_config_for_broker_config("log.index.size.max.bytes"),
            Some("segment.index.bytes")
        );
        assert_eq!(
            topic_config_for_broker_config("message.max.bytes"),
            Some("max.message.bytes")
        );
        assert_eq!(topic_config_for_broker_config("broker.id"), None);
    }

    #[test]
    fn enum_names() {
        assert_eq!(TimestampType::CreateTime.to_string(), "CreateTime");
        assert_eq!(
            TimestampType::from_name("LogAppendTime"),
            Some(TimestampType::LogAppendTime)
        );
        assert_eq!(TimestampType::from_name("logappendtime"), None);
        assert_eq!(
            BrokerCompressionType::Uncompressed.to_string(),
            "uncompressed"
        );
        assert_eq!(
            BrokerCompressionType::from_name("snappy"),
            Some(BrokerCompressionType::Snappy)
        );
        assert_eq!(
            CleanupPolicy::parse("compact,bogus"),
            Err("bogus".to_string())
        );
    }

    #[test]
    fn jitter_and_segment_limits() {
        let c = LogConfig::default();
        assert_eq!(c.segment_jitter(12345), 0);
        assert_eq!(c.max_segment_ms(), c.segment_ms);
        assert_eq!(c.init_file_size(), 0);
        assert_eq!(c.retention_ms_limit(), Some(604_800_000));
        assert_eq!(c.retention_bytes_limit(), None);
        let c = LogConfig {
            segment_jitter_ms: 100,
            segment_ms: 50,
            ..LogConfig::default()
        };
        assert_eq!(c.segment_jitter(123), 123 % 50);
        // Compaction with the default max lag leaves segment.ms alone.
        let c = LogConfig {
            cleanup_policy: CleanupPolicy::COMPACT,
            ..LogConfig::default()
        };
        assert_eq!(c.max_segment_ms(), c.segment_ms);
    }
}
