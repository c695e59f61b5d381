//! Settings every client shares, with Kafka's names and defaults. Each config struct takes
//! Kafka-style properties with `set(key, value)` (what a `.properties` file or a CLI
//! `--property` gives), and refuses unknown keys and bad values with an error naming the key.

use std::time::Duration;

use super::conn::ConnectionConfig;
use super::error::{ClientError, Result};

/// Settings every client (producer, consumer, admin) shares.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `bootstrap.servers`: `host:port` of brokers to ask for the cluster's metadata.
    pub bootstrap_servers: Vec<String>,
    /// `client.id` (default `sluice-rust`).
    pub client_id: String,
    /// `request.timeout.ms` (30000).
    pub request_timeout_ms: u64,
    /// `socket.connection.setup.timeout.ms` (10000).
    pub connection_setup_timeout_ms: u64,
    /// `metadata.max.age.ms` (300000): metadata older than this is refreshed.
    pub metadata_max_age_ms: u64,
    /// `retry.backoff.ms` (100).
    pub retry_backoff_ms: u64,
    /// `receive.message.max.bytes` (librdkafka's, 100000000): larger response frames close
    /// the connection rather than being allocated.
    pub receive_message_max_bytes: usize,
    /// `allow.auto.create.topics` (true): metadata requests for a topic let the broker
    /// create it (if its `auto.create.topics.enable` is on). The admin client never does.
    pub allow_auto_create_topics: bool,
}

impl ClientConfig {
    /// Kafka's defaults, with `bootstrap` (`host:port[,host:port...]`).
    pub fn new(bootstrap: &str) -> ClientConfig {
        ClientConfig {
            bootstrap_servers: split_list(bootstrap),
            client_id: "sluice-rust".into(),
            request_timeout_ms: 30_000,
            connection_setup_timeout_ms: 10_000,
            metadata_max_age_ms: 300_000,
            retry_backoff_ms: 100,
            receive_message_max_bytes: 100_000_000,
            allow_auto_create_topics: true,
        }
    }

    /// Sets `key` if it is one of these settings; `Ok(false)` if it is not.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool> {
        match key {
            "bootstrap.servers" => {
                self.bootstrap_servers = split_list(value);
                if self.bootstrap_servers.is_empty() {
                    return Err(invalid(key, "no host:port given"));
                }
            }
            "client.id" => self.client_id = value.to_owned(),
            "request.timeout.ms" => self.request_timeout_ms = parse(key, value, 1..)?,
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout_ms = parse(key, value, 1..)?
            }
            "metadata.max.age.ms" => self.metadata_max_age_ms = parse(key, value, 0..)?,
            "retry.backoff.ms" => self.retry_backoff_ms = parse(key, value, 0..)?,
            "allow.auto.create.topics" => self.allow_auto_create_topics = parse_bool(key, value)?,
            "receive.message.max.bytes" => {
                self.receive_message_max_bytes = parse(key, value, 1000..)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(crate) fn connection(&self) -> ConnectionConfig {
        ConnectionConfig {
            client_id: self.client_id.clone(),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            connect_timeout: Duration::from_millis(self.connection_setup_timeout_ms),
            max_response_bytes: self.receive_message_max_bytes,
        }
    }

    pub(crate) fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms)
    }
}

/// `a,b , c` → `["a", "b", "c"]`.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An error naming `key`.
pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> ClientError {
    ClientError::Config {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Parses a number within `range`.
pub(crate) fn parse<T>(key: &str, value: &str, range: std::ops::RangeFrom<T>) -> Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let v: T = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, format!("{value:?} is not a number")))?;
    if !range.contains(&v) {
        return Err(invalid(key, format!("{v} is below {}", range.start)));
    }
    Ok(v)
}

/// Parses `true`/`false`.
pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(invalid(key, format!("{other:?} is neither true nor false"))),
    }
}
