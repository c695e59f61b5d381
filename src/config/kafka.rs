//! The `[config]` section: Kafka broker keys, given as TOML values, converted to Kafka's
//! string form, and validated by [`BrokerSettings`] and [`LogConfig::from_broker_props`]
//! plus the cross-key rules Kafka's `KafkaConfig` checks at start-up.

use std::collections::BTreeMap;

use sluice_actors::log::config::{
    broker_synonyms, topic_config_for_broker_config, LogConfig, TOPIC_CONFIG_NAMES,
};
use sluice_actors::log::LogError;

use super::settings::{self, BrokerSettings};
use super::{describe, invalid, suggest, ConfigError, Section};

type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// `[config]`: Kafka broker keys. Returns the typed settings, the broker-level log
/// defaults, and the keys as given.
pub(super) fn parse_kafka_section(
    origin: &str,
    table: toml::Table,
) -> Result<(BrokerSettings, LogConfig, BTreeMap<String, String>)> {
    let section = Section::Config;
    let mut flat = Vec::new();
    flatten("", table, &mut flat);

    let mut overrides = BTreeMap::new();
    for (key, value) in flat {
        if let Some(pointer) = settings::refused(&key) {
            return Err(ConfigError::Refused {
                origin: origin.to_string(),
                section,
                key,
                pointer: format!("it duplicates a top-level setting; {pointer}"),
            });
        }
        if !is_known_broker_key(&key) {
            let hint = suggest::config_hint(&key);
            return Err(ConfigError::UnknownKey {
                origin: origin.to_string(),
                section,
                key,
                hint,
            });
        }
        let list = settings::LIST_KEYS.contains(&key.as_str());
        let raw =
            kafka_string(&value, list).map_err(|reason| invalid(origin, section, &key, reason))?;
        if overrides.insert(key.clone(), raw).is_some() {
            return Err(invalid(
                origin,
                section,
                &key,
                "set more than once (as a quoted key and as dotted keys)",
            ));
        }
    }

    let mut broker = BrokerSettings::default();
    for (key, raw) in &overrides {
        if let Some(Err(reason)) = broker.set(key, raw) {
            return Err(invalid(origin, section, key, reason));
        }
    }
    let log_defaults = LogConfig::from_broker_props(&overrides).map_err(|err| match err {
        LogError::Config { key, reason } => invalid(origin, section, &key, reason),
        other => invalid(origin, section, "config", other.to_string()),
    })?;
    check_kafka_rules(origin, &broker, &log_defaults, &overrides)?;
    Ok((broker, log_defaults, overrides))
}

/// The cross-key rules Kafka's `KafkaConfig` enforces at start-up.
fn check_kafka_rules(
    origin: &str,
    broker: &BrokerSettings,
    log: &LogConfig,
    overrides: &BTreeMap<String, String>,
) -> Result<()> {
    let section = Section::Config;
    if log.retention_ms == 0 {
        let key = broker_synonyms("retention.ms")
            .iter()
            .map(|synonym| synonym.name)
            .find(|name| overrides.contains_key(*name))
            .unwrap_or("log.retention.ms");
        return Err(invalid(
            origin,
            section,
            key,
            "log.retention.ms must be unlimited (-1) or at least 1",
        ));
    }
    if broker.log_cleaner_threads > 0
        && broker.log_cleaner_dedupe_buffer_size / i64::from(broker.log_cleaner_threads)
            <= 1024 * 1024
    {
        return Err(invalid(
            origin,
            section,
            "log.cleaner.dedupe.buffer.size",
            format!(
                "{} bytes for {} cleaner thread(s); it must be more than 1 MiB per cleaner thread",
                broker.log_cleaner_dedupe_buffer_size, broker.log_cleaner_threads
            ),
        ));
    }
    let wait = i64::from(broker.replica_fetch_wait_max_ms);
    if wait > i64::from(broker.replica_socket_timeout_ms) {
        return Err(invalid(
            origin,
            section,
            "replica.fetch.wait.max.ms",
            format!(
                "{wait} exceeds replica.socket.timeout.ms ({}); followers' fetches would time out",
                broker.replica_socket_timeout_ms
            ),
        ));
    }
    if wait > broker.replica_lag_time_max_ms {
        return Err(invalid(
            origin,
            section,
            "replica.fetch.wait.max.ms",
            format!(
                "{wait} exceeds replica.lag.time.max.ms ({}); followers would keep leaving the ISR",
                broker.replica_lag_time_max_ms
            ),
        ));
    }
    Ok(())
}

/// Flattens `[config]`: unquoted dotted keys (`log.retention.ms = 1`) are nested tables
/// in TOML, and mean the same as the quoted key.
fn flatten(prefix: &str, table: toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&key, inner, out),
            value => out.push((key, value)),
        }
    }
}

/// A `[config]` value in Kafka's string form. Floats keep their decimal point (`1.0`),
/// so an INT key given a float is refused as Kafka would refuse it.
fn kafka_string(value: &toml::Value, list: bool) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(x) => Ok(format!("{x:?}")),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) if list => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "expected an array of strings, found {} in it",
                    describe(other)
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        other => Err(format!(
            "expected a string, number or boolean, found {}",
            describe(other)
        )),
    }
}

pub(super) fn is_known_broker_key(key: &str) -> bool {
    BrokerSettings::KEYS.contains(&key) || topic_config_for_broker_config(key).is_some()
}

/// Every `[config]` key Sluice knows, sorted.
pub fn known_broker_keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = BrokerSettings::KEYS.to_vec();
    for topic_key in TOPIC_CONFIG_NAMES {
        keys.extend(
            broker_synonyms(topic_key)
                .iter()
                .map(|synonym| synonym.name),
        );
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}
