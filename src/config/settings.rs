//! Kafka's broker-level configuration keys that are not topic-config synonyms: their
//! names, types, defaults and ranges, in one table ([`BrokerSettings`]).
//!
//! The broker keys that supply a topic config's default (`log.retention.hours`,
//! `message.max.bytes`, `min.insync.replicas`, …) are not here: they belong to
//! [`LogConfig::from_broker_props`](sluice_actors::log::config::LogConfig::from_broker_props),
//! so that their precedence and validation live in one place. The one key in both is
//! `log.flush.scheduler.interval.ms`, which is Kafka's flush-scheduler period *and* the
//! fallback of `flush.ms`.
//!
//! Values are parsed as Kafka's `ConfigDef` parses them: surrounding whitespace is
//! ignored, booleans are `true`/`false` in any case, INT and SHORT values must fit Java's
//! `int` and `short`.

use std::collections::BTreeMap;

/// The range a setting's value must lie in, on top of its type's own range.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Any value of the field's type.
    Any,
    /// An integer at least this large.
    AtLeast(i64),
    /// A finite number in (0, 1].
    Fraction,
    /// A finite number above 0.
    Positive,
}

/// A type a broker setting can have: Kafka's INT (`i32`), SHORT (`i16`), LONG (`i64`),
/// BOOLEAN, DOUBLE and nullable STRING.
trait SettingValue: Sized {
    /// Parses Kafka's string form; the error is the reason, without the key.
    fn parse_setting(raw: &str, check: Check) -> Result<Self, String>;
    /// Kafka's string form; `None` for a null value.
    fn kafka_string(&self) -> Option<String>;
    /// The value as a TOML literal; `None` for a null value (TOML has no null).
    fn toml_literal(&self) -> Option<String>;
}

fn parse_int<T: TryFrom<i64>>(
    raw: &str,
    check: Check,
    type_min: i64,
    type_max: i64,
) -> Result<T, String> {
    let min = match check {
        Check::AtLeast(min) => min.max(type_min),
        Check::Any | Check::Fraction | Check::Positive => type_min,
    };
    let expected = match (min, type_max) {
        (min, i64::MAX) if min == i64::MIN => "a 64-bit integer".to_string(),
        (min, i64::MAX) => format!("an integer >= {min}"),
        (min, max) => format!("an integer in [{min}, {max}]"),
    };
    let value = raw
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("{raw:?} is not an integer; expected {expected}"))?;
    if value < min || value > type_max {
        return Err(format!("{value} is out of range; expected {expected}"));
    }
    T::try_from(value).map_err(|_| format!("{value} is out of range; expected {expected}"))
}

impl SettingValue for i16 {
    fn parse_setting(raw: &str, check: Check) -> Result<Self, String> {
        parse_int(raw, check, i64::from(i16::MIN), i64::from(i16::MAX))
    }
    fn kafka_string(&self) -> Option<String> {
        Some(self.to_string())
    }
    fn toml_literal(&self) -> Option<String> {
        self.kafka_string()
    }
}

impl SettingValue for i32 {
    fn parse_setting(raw: &str, check: Check) -> Result<Self, String> {
        parse_int(raw, check, i64::from(i32::MIN), i64::from(i32::MAX))
    }
    fn kafka_string(&self) -> Option<String> {
        Some(self.to_string())
    }
    fn toml_literal(&self) -> Option<String> {
        self.kafka_string()
    }
}

impl SettingValue for i64 {
    fn parse_setting(raw: &str, check: Check) -> Result<Self, String> {
        parse_int(raw, check, i64::MIN, i64::MAX)
    }
    fn kafka_string(&self) -> Option<String> {
        Some(self.to_string())
    }
    fn toml_literal(&self) -> Option<String> {
        self.kafka_string()
    }
}

impl SettingValue for bool {
    fn parse_setting(raw: &str, _check: Check) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if trimmed.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(format!("{raw:?} is not a boolean; expected true or false"))
        }
    }
    fn kafka_string(&self) -> Option<String> {
        Some(self.to_string())
    }
    fn toml_literal(&self) -> Option<String> {
        self.kafka_string()
    }
}

impl SettingValue for f64 {
    fn parse_setting(raw: &str, check: Check) -> Result<Self, String> {
        let expected = match check {
            Check::Fraction => "a number in (0, 1]",
            Check::Positive => "a number > 0",
            Check::Any | Check::AtLeast(_) => "a finite number",
        };
        let value = raw
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{raw:?} is not a number; expected {expected}"))?;
        let ok = value.is_finite()
            && match check {
                Check::Fraction => value > 0.0 && value <= 1.0,
                Check::Positive => value > 0.0,
                Check::Any | Check::AtLeast(_) => true,
            };
        if ok {
            Ok(value)
        } else {
            Err(format!("{raw} is out of range; expected {expected}"))
        }
    }
    fn kafka_string(&self) -> Option<String> {
        Some(java_double(*self))
    }
    fn toml_literal(&self) -> Option<String> {
        // Debug keeps the decimal point (`1.0`) and uses an exponent for huge values, so
        // the literal reads back as a TOML float.
        Some(format!("{self:?}"))
    }
}

impl SettingValue for Option<String> {
    fn parse_setting(raw: &str, _check: Check) -> Result<Self, String> {
        let trimmed = raw.trim();
        Ok((!trimmed.is_empty()).then(|| trimmed.to_string()))
    }
    fn kafka_string(&self) -> Option<String> {
        self.clone()
    }
    fn toml_literal(&self) -> Option<String> {
        self.as_deref().map(toml_string)
    }
}

/// Formats a double as Java's `Double.toString` does: `0.9`, `1.0`, `1.0E7`,
/// `1.7976931348623157E308`.
pub(crate) fn java_double(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let text = format!("{value}");
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// A TOML basic string literal for `text`.
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Declares [`BrokerSettings`]: one line per key gives the field, its type (Kafka's),
/// the key, Kafka's default and the range. Everything else (the struct, `Default`, the
/// key list, the parser, the printers) is generated from those lines, so a key cannot be
/// parsed without also being printed and documented.
macro_rules! broker_settings {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty = $key:literal, default $default:expr, $check:expr;
    )*) => {
        /// The broker's own settings, by Kafka's broker config names and with Kafka's
        /// defaults. Field names are the keys with `.` replaced by `_`.
        ///
        /// Broker keys that are synonyms of topic configs (`log.segment.bytes`,
        /// `log.retention.{ms,minutes,hours}`, `log.roll.*`, `log.flush.interval.*`,
        /// `log.cleaner.{delete.retention.ms,min.cleanable.ratio,*.compaction.lag.ms}`,
        /// `log.cleanup.policy`, `message.max.bytes`, `min.insync.replicas`,
        /// `unclean.leader.election.enable`, `compression.type`, `log.preallocate`,
        /// `log.message.timestamp.*`, …) live in
        /// [`BrokerConfig::log_defaults`](super::BrokerConfig::log_defaults) instead.
        #[derive(Debug, Clone, PartialEq)]
        pub struct BrokerSettings {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for BrokerSettings {
            /// Kafka's defaults.
            fn default() -> Self {
                BrokerSettings { $( $field: $default, )* }
            }
        }

        impl BrokerSettings {
            /// Every key this struct holds, in declaration order.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Sets `key` from Kafka's string form. `None` if `key` is not one of
            /// [`Self::KEYS`]; `Some(Err(reason))` if the value is bad.
            pub(crate) fn set(&mut self, key: &str, raw: &str) -> Option<Result<(), String>> {
                match key {
                    $( $key => Some(SettingValue::parse_setting(raw, $check).map(|value| {
                        self.$field = value;
                    })), )*
                    _ => None,
                }
            }

            /// Every key with its value in Kafka's string form, as DescribeConfigs shows
            /// it. Keys whose value is null (`broker.rack` when unset) are left out.
            pub fn to_props(&self) -> BTreeMap<String, String> {
                let mut props = BTreeMap::new();
                $( if let Some(value) = self.$field.kafka_string() {
                    props.insert($key.to_string(), value);
                } )*
                props
            }

            /// Every key with its value as a TOML literal (`None` for null).
            pub(crate) fn toml_literals(&self) -> Vec<(&'static str, Option<String>)> {
                vec![ $( ($key, self.$field.toml_literal()), )* ]
            }
        }
    };
}

broker_settings! {
    // --- Topics ---------------------------------------------------------------------
    /// `num.partitions` (default 1): partitions of an auto-created topic, and of a
    /// CreateTopics request that asks for the default (-1).
    num_partitions: i32 = "num.partitions", default 1, Check::AtLeast(1);
    /// `default.replication.factor` (default 1): replicas of an auto-created topic, and
    /// of a CreateTopics request that asks for the default (-1).
    default_replication_factor: i32 = "default.replication.factor", default 1, Check::AtLeast(1);
    /// `auto.create.topics.enable` (default true): a Metadata request for an unknown
    /// topic creates it.
    auto_create_topics_enable: bool = "auto.create.topics.enable", default true, Check::Any;
    /// `delete.topic.enable` (default true): DeleteTopics is allowed.
    delete_topic_enable: bool = "delete.topic.enable", default true, Check::Any;
    /// `auto.leader.rebalance.enable` (default true): the controller moves leadership
    /// back to preferred replicas.
    auto_leader_rebalance_enable: bool = "auto.leader.rebalance.enable", default true, Check::Any;
    /// `leader.imbalance.check.interval.seconds` (default 300).
    leader_imbalance_check_interval_seconds: i64 =
        "leader.imbalance.check.interval.seconds", default 300, Check::AtLeast(1);
    /// `leader.imbalance.per.broker.percentage` (default 10): the share of non-preferred
    /// leaders per broker that triggers a rebalance.
    leader_imbalance_per_broker_percentage: i32 =
        "leader.imbalance.per.broker.percentage", default 10, Check::AtLeast(0);
    /// `broker.rack` (default null): the rack reported in Metadata responses.
    broker_rack: Option<String> = "broker.rack", default None, Check::Any;

    // --- Requests and connections -----------------------------------------------------
    /// `socket.request.max.bytes` (default 100 MiB): larger requests are refused and
    /// their connection closed.
    socket_request_max_bytes: i32 = "socket.request.max.bytes", default 104_857_600, Check::AtLeast(1);
    /// `socket.send.buffer.bytes` (default 100 KiB; -1 = the OS default): SO_SNDBUF.
    socket_send_buffer_bytes: i32 = "socket.send.buffer.bytes", default 102_400, Check::AtLeast(-1);
    /// `socket.receive.buffer.bytes` (default 100 KiB; -1 = the OS default): SO_RCVBUF.
    socket_receive_buffer_bytes: i32 = "socket.receive.buffer.bytes", default 102_400, Check::AtLeast(-1);
    /// `connections.max.idle.ms` (default 10 min): idle connections are closed.
    connections_max_idle_ms: i64 = "connections.max.idle.ms", default 600_000, Check::Any;
    /// `max.connections` (default unlimited): connections accepted in total.
    max_connections: i32 = "max.connections", default i32::MAX, Check::AtLeast(0);
    /// `max.connections.per.ip` (default unlimited).
    max_connections_per_ip: i32 = "max.connections.per.ip", default i32::MAX, Check::AtLeast(0);
    /// `queued.max.requests` (default 500): requests read but not yet handled, per
    /// broker, before the network stops reading.
    queued_max_requests: i32 = "queued.max.requests", default 500, Check::AtLeast(1);
    /// `queued.max.request.bytes`: the bytes of requests read and not yet answered, across
    /// all connections; when they are used up the broker stops reading sockets until
    /// responses free them. Kafka's default is -1 (unbounded); Sluice's is 512 MiB, so
    /// that many clients sending large requests at once cannot grow the broker's memory
    /// without limit. -1 disables it. A request larger than the budget waits for all of it.
    queued_max_request_bytes: i64 = "queued.max.request.bytes", default 512 * 1024 * 1024, Check::Any;
    /// `fetch.max.bytes` (default 55 MiB): the most one Fetch response carries.
    fetch_max_bytes: i32 = "fetch.max.bytes", default 57_671_680, Check::AtLeast(1024);
    /// `max.incremental.fetch.session.cache.slots` (default 1000).
    max_incremental_fetch_session_cache_slots: i32 =
        "max.incremental.fetch.session.cache.slots", default 1000, Check::AtLeast(0);

    // --- Threads (sizing hints) ---------------------------------------------------------
    /// `num.network.threads` (default 3). A sizing hint: Sluice's network side runs on
    /// the async runtime, whose worker count this suggests.
    num_network_threads: i32 = "num.network.threads", default 3, Check::AtLeast(1);
    /// `num.io.threads` (default 8). A sizing hint for the threads doing disk work
    /// (`spawn_blocking`, sync arbiters).
    num_io_threads: i32 = "num.io.threads", default 8, Check::AtLeast(1);
    /// `background.threads` (default 10). A sizing hint for background tasks.
    background_threads: i32 = "background.threads", default 10, Check::AtLeast(1);
    /// `num.recovery.threads.per.data.dir` (default 1): logs recovered in parallel at
    /// start-up after an unclean shutdown.
    num_recovery_threads_per_data_dir: i32 =
        "num.recovery.threads.per.data.dir", default 1, Check::AtLeast(1);
    /// `num.replica.fetchers` (default 1): fetcher tasks per source broker.
    num_replica_fetchers: i32 = "num.replica.fetchers", default 1, Check::Any;

    // --- Log manager, retention, flushing and checkpoints ------------------------------
    /// `log.retention.check.interval.ms` (default 5 min): how often retention runs.
    log_retention_check_interval_ms: i64 =
        "log.retention.check.interval.ms", default 300_000, Check::AtLeast(1);
    /// `log.flush.scheduler.interval.ms` (default `Long.MAX_VALUE`): how often the flush
    /// scheduler checks whether a log needs flushing (also the fallback of `flush.ms`).
    log_flush_scheduler_interval_ms: i64 =
        "log.flush.scheduler.interval.ms", default i64::MAX, Check::Any;
    /// `log.flush.offset.checkpoint.interval.ms` (default 60 s): how often the
    /// recovery-point checkpoint is written.
    log_flush_offset_checkpoint_interval_ms: i32 =
        "log.flush.offset.checkpoint.interval.ms", default 60_000, Check::AtLeast(0);
    /// `log.flush.start.offset.checkpoint.interval.ms` (default 60 s): how often the
    /// log-start-offset checkpoint is written.
    log_flush_start_offset_checkpoint_interval_ms: i32 =
        "log.flush.start.offset.checkpoint.interval.ms", default 60_000, Check::AtLeast(0);

    // --- Log cleaner (compaction) -----------------------------------------------------
    /// `log.cleaner.enable` (default true): off stops compaction; retention by time and
    /// size goes on.
    log_cleaner_enable: bool = "log.cleaner.enable", default true, Check::Any;
    /// `log.cleaner.threads` (default 1).
    log_cleaner_threads: i32 = "log.cleaner.threads", default 1, Check::AtLeast(0);
    /// `log.cleaner.dedupe.buffer.size` (default 128 MiB): memory for the key → offset
    /// map, shared by all cleaner threads (at least 1 MiB per thread).
    log_cleaner_dedupe_buffer_size: i64 =
        "log.cleaner.dedupe.buffer.size", default 128 * 1024 * 1024, Check::Any;
    /// `log.cleaner.io.buffer.size` (default 512 KiB): read and write buffers, shared by
    /// all cleaner threads.
    log_cleaner_io_buffer_size: i32 = "log.cleaner.io.buffer.size", default 512 * 1024, Check::AtLeast(0);
    /// `log.cleaner.io.buffer.load.factor` (default 0.9): how full the dedupe map may get.
    log_cleaner_io_buffer_load_factor: f64 =
        "log.cleaner.io.buffer.load.factor", default 0.9, Check::Fraction;
    /// `log.cleaner.io.max.bytes.per.second` (default unlimited): the cleaner's I/O
    /// throttle.
    log_cleaner_io_max_bytes_per_second: f64 =
        "log.cleaner.io.max.bytes.per.second", default f64::MAX, Check::Positive;
    /// `log.cleaner.backoff.ms` (default 15 s): how long the cleaner sleeps when no log
    /// needs cleaning.
    log_cleaner_backoff_ms: i64 = "log.cleaner.backoff.ms", default 15_000, Check::AtLeast(0);

    // --- Replication --------------------------------------------------------------------
    /// `replica.lag.time.max.ms` (default 30 s): a follower that has not caught up for
    /// this long leaves the ISR.
    replica_lag_time_max_ms: i64 = "replica.lag.time.max.ms", default 30_000, Check::Any;
    /// `replica.fetch.max.bytes` (default 1 MiB): per partition, per follower fetch.
    replica_fetch_max_bytes: i32 = "replica.fetch.max.bytes", default 1_048_576, Check::AtLeast(0);
    /// `replica.fetch.min.bytes` (default 1).
    replica_fetch_min_bytes: i32 = "replica.fetch.min.bytes", default 1, Check::Any;
    /// `replica.fetch.wait.max.ms` (default 500; at most `replica.lag.time.max.ms` and
    /// `replica.socket.timeout.ms`).
    replica_fetch_wait_max_ms: i32 = "replica.fetch.wait.max.ms", default 500, Check::Any;
    /// `replica.fetch.response.max.bytes` (default 10 MiB): per follower fetch.
    replica_fetch_response_max_bytes: i32 =
        "replica.fetch.response.max.bytes", default 10_485_760, Check::AtLeast(0);
    /// `replica.fetch.backoff.ms` (default 1 s): sleep after a failed follower fetch.
    replica_fetch_backoff_ms: i32 = "replica.fetch.backoff.ms", default 1000, Check::AtLeast(0);
    /// `replica.socket.timeout.ms` (default 30 s).
    replica_socket_timeout_ms: i32 = "replica.socket.timeout.ms", default 30_000, Check::Any;
    /// `replica.high.watermark.checkpoint.interval.ms` (default 5 s): how often the
    /// high-watermark checkpoint is written.
    replica_high_watermark_checkpoint_interval_ms: i64 =
        "replica.high.watermark.checkpoint.interval.ms", default 5000, Check::Any;
    /// `controller.socket.timeout.ms` (default 30 s): controller → broker requests.
    controller_socket_timeout_ms: i32 = "controller.socket.timeout.ms", default 30_000, Check::Any;

    // --- Consumer groups and `__consumer_offsets` ----------------------------------------
    /// `offsets.topic.num.partitions` (default 50): fixed once the topic exists.
    offsets_topic_num_partitions: i32 = "offsets.topic.num.partitions", default 50, Check::AtLeast(1);
    /// `offsets.topic.replication.factor` (default 3). As in Kafka, `__consumer_offsets`
    /// is not created until this many brokers are alive (COORDINATOR_NOT_AVAILABLE
    /// meanwhile): a single broker must set it to 1 (`config/single-node.toml` does).
    offsets_topic_replication_factor: i16 =
        "offsets.topic.replication.factor", default 3, Check::AtLeast(1);
    /// `offsets.topic.segment.bytes` (default 100 MiB).
    offsets_topic_segment_bytes: i32 =
        "offsets.topic.segment.bytes", default 104_857_600, Check::AtLeast(1);
    /// `offsets.load.buffer.size` (default 5 MiB): read size when loading a group
    /// partition.
    offsets_load_buffer_size: i32 = "offsets.load.buffer.size", default 5 * 1024 * 1024, Check::AtLeast(1);
    /// `offsets.retention.minutes` (default 7 days): committed offsets of an empty group
    /// are kept this long.
    offsets_retention_minutes: i32 = "offsets.retention.minutes", default 7 * 24 * 60, Check::AtLeast(1);
    /// `offsets.retention.check.interval.ms` (default 10 min).
    offsets_retention_check_interval_ms: i64 =
        "offsets.retention.check.interval.ms", default 600_000, Check::AtLeast(1);
    /// `offsets.commit.timeout.ms` (default 5 s): how long a commit waits for the
    /// offsets topic's replicas.
    offsets_commit_timeout_ms: i32 = "offsets.commit.timeout.ms", default 5000, Check::AtLeast(1);
    /// `group.initial.rebalance.delay.ms` (default 3 s): how long a new group waits for
    /// more members before its first rebalance.
    group_initial_rebalance_delay_ms: i32 = "group.initial.rebalance.delay.ms", default 3000, Check::Any;
    /// `group.min.session.timeout.ms` (default 6 s).
    group_min_session_timeout_ms: i32 = "group.min.session.timeout.ms", default 6000, Check::Any;
    /// `group.max.session.timeout.ms` (default 30 min).
    group_max_session_timeout_ms: i32 = "group.max.session.timeout.ms", default 1_800_000, Check::Any;
    /// `group.max.size`: members (and members that joined without a member id and were
    /// handed one) per group. Kafka's default is unbounded; Sluice's is 1000, so that one
    /// client cannot grow a group — and the coordinator's memory — without limit.
    group_max_size: i32 = "group.max.size", default 1000, Check::AtLeast(1);
    /// `offset.metadata.max.bytes` (default 4096): the longest metadata string of a
    /// committed offset (OFFSET_METADATA_TOO_LARGE above it).
    offset_metadata_max_bytes: i32 = "offset.metadata.max.bytes", default 4096, Check::AtLeast(0);

    // --- Idempotent producers and transactions -------------------------------------------
    /// `producer.id.expiration.ms` (default 1 day): a producer id's state is dropped
    /// after this long without a write.
    producer_id_expiration_ms: i32 = "producer.id.expiration.ms", default 86_400_000, Check::AtLeast(1);
    /// `producer.id.expiration.check.interval.ms` (default 10 min).
    producer_id_expiration_check_interval_ms: i32 =
        "producer.id.expiration.check.interval.ms", default 600_000, Check::AtLeast(1);
    /// `transactional.id.expiration.ms` (default 7 days).
    transactional_id_expiration_ms: i32 =
        "transactional.id.expiration.ms", default 604_800_000, Check::AtLeast(1);
    /// `transaction.max.timeout.ms` (default 15 min).
    transaction_max_timeout_ms: i32 = "transaction.max.timeout.ms", default 900_000, Check::AtLeast(1);
    /// `transaction.state.log.num.partitions` (default 50).
    transaction_state_log_num_partitions: i32 =
        "transaction.state.log.num.partitions", default 50, Check::AtLeast(1);
    /// `transaction.state.log.replication.factor` (default 3).
    transaction_state_log_replication_factor: i16 =
        "transaction.state.log.replication.factor", default 3, Check::AtLeast(1);
    /// `transaction.state.log.min.isr` (default 2).
    transaction_state_log_min_isr: i32 = "transaction.state.log.min.isr", default 2, Check::AtLeast(1);
    /// `transaction.state.log.segment.bytes` (default 100 MiB).
    transaction_state_log_segment_bytes: i32 =
        "transaction.state.log.segment.bytes", default 104_857_600, Check::AtLeast(1);
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (default 10 s).
    transaction_abort_timed_out_transaction_cleanup_interval_ms: i32 =
        "transaction.abort.timed.out.transaction.cleanup.interval.ms", default 10_000, Check::AtLeast(1);
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (default 1 hour).
    transaction_remove_expired_transaction_cleanup_interval_ms: i32 =
        "transaction.remove.expired.transaction.cleanup.interval.ms", default 3_600_000, Check::AtLeast(1);
}

/// Broker keys whose Kafka value is a comma-separated list: the config file may also
/// give them as a TOML array of strings.
pub(crate) const LIST_KEYS: &[&str] = &["log.cleanup.policy"];

/// Kafka broker keys that duplicate a top-level (or `[coordination]`) setting of the
/// config file, with where to set them instead. Refused under `[config]` so that one
/// setting never has two sources.
pub(crate) const REFUSED_KEYS: &[(&str, &str)] = &[
    ("broker.id", "set the top-level `broker_id` instead"),
    ("node.id", "set the top-level `broker_id` instead"),
    (
        "listeners",
        "set the top-level `listen` (one host:port) instead",
    ),
    ("port", "set the top-level `listen` instead"),
    ("host.name", "set the top-level `listen` instead"),
    (
        "advertised.listeners",
        "set the top-level `advertised` (one host:port) instead",
    ),
    (
        "advertised.host.name",
        "set the top-level `advertised` instead",
    ),
    ("advertised.port", "set the top-level `advertised` instead"),
    ("log.dirs", "set the top-level `data_dir` instead"),
    ("log.dir", "set the top-level `data_dir` instead"),
    (
        "zookeeper.connect",
        "set `endpoints` (and `root` for a chroot) under [coordination] instead",
    ),
    (
        "zookeeper.session.timeout.ms",
        "set `session_timeout_ms` under [coordination] instead",
    ),
    (
        "zookeeper.connection.timeout.ms",
        "set `connect_timeout_ms` under [coordination] instead",
    ),
];

/// Where to set a refused key instead, if `key` is one.
pub(crate) fn refused(key: &str) -> Option<&'static str> {
    REFUSED_KEYS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, pointer)| *pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_defaults() {
        let s = BrokerSettings::default();
        assert_eq!(s.num_partitions, 1);
        assert_eq!(s.default_replication_factor, 1);
        assert!(s.auto_create_topics_enable);
        assert!(s.delete_topic_enable);
        assert_eq!(s.socket_request_max_bytes, 104_857_600);
        assert_eq!(s.offsets_topic_num_partitions, 50);
        assert_eq!(s.offsets_topic_replication_factor, 3);
        assert_eq!(s.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(s.log_retention_check_interval_ms, 300_000);
        assert!(s.log_cleaner_enable);
        assert_eq!(s.log_cleaner_dedupe_buffer_size, 134_217_728);
        assert_eq!(s.replica_lag_time_max_ms, 30_000);
        assert_eq!(s.producer_id_expiration_ms, 86_400_000);
        assert_eq!(s.transactional_id_expiration_ms, 604_800_000);
        assert_eq!(s.num_network_threads, 3);
        assert_eq!(s.num_io_threads, 8);
        assert_eq!(s.broker_rack, None);
    }

    #[test]
    fn keys_are_unique_and_settable() {
        let mut seen = std::collections::BTreeSet::new();
        let defaults = BrokerSettings::default().to_props();
        for key in BrokerSettings::KEYS {
            assert!(seen.insert(*key), "{key} declared twice");
            assert!(refused(key).is_none(), "{key} is also refused");
            if let Some(default) = defaults.get(*key) {
                let mut s = BrokerSettings::default();
                assert_eq!(s.set(key, default), Some(Ok(())), "{key}={default}");
                assert_eq!(s, BrokerSettings::default(), "{key} round trip");
            }
        }
        assert_eq!(BrokerSettings::default().set("nope", "1"), None);
    }

    #[test]
    fn values_are_typed_and_ranged() {
        let mut s = BrokerSettings::default();
        let bad: &[(&str, &str, &str)] = &[
            ("num.partitions", "0", "out of range"),
            ("num.partitions", "2147483648", "out of range"),
            ("num.partitions", "one", "not an integer"),
            ("num.partitions", "1.0", "not an integer"),
            ("offsets.topic.replication.factor", "32768", "[1, 32767]"),
            ("auto.create.topics.enable", "yes", "not a boolean"),
            ("log.cleaner.io.buffer.load.factor", "1.5", "(0, 1]"),
            ("log.cleaner.io.buffer.load.factor", "NaN", "(0, 1]"),
            ("log.cleaner.io.max.bytes.per.second", "inf", "> 0"),
            ("fetch.max.bytes", "1023", "[1024, "),
        ];
        for &(key, raw, reason) in bad {
            match s.set(key, raw) {
                Some(Err(text)) => assert!(text.contains(reason), "{key}={raw}: {text}"),
                other => panic!("{key}={raw}: {other:?}"),
            }
        }
        assert_eq!(s.set("auto.create.topics.enable", " FALSE "), Some(Ok(())));
        assert!(!s.auto_create_topics_enable);
        assert_eq!(s.set("num.partitions", " 12 "), Some(Ok(())));
        assert_eq!(s.num_partitions, 12);
        assert_eq!(s.set("broker.rack", "r1"), Some(Ok(())));
        assert_eq!(s.broker_rack.as_deref(), Some("r1"));
        assert_eq!(s.set("broker.rack", "  "), Some(Ok(())));
        assert_eq!(s.broker_rack, None);
    }

    #[test]
    fn java_double_format() {
        assert_eq!(java_double(0.9), "0.9");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(f64::MAX), "1.7976931348623157E308");
        assert_eq!(java_double(12345.5), "12345.5");
    }

    #[test]
    fn toml_strings_escape() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(toml_string("\u{1}"), "\"\\u0001\"");
    }
}
