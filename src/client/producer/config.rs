//! The producer's settings, with the Java client's names and defaults.

use sluice_actors::log::compression::Compression;

use super::super::config::{invalid, parse, parse_bool, ClientConfig};
use super::super::error::Result;

/// Producer settings (Kafka's names; `set` takes them as properties).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub client: ClientConfig,
    /// `acks`: -1 (`all`, the default), 0 or 1.
    pub acks: i16,
    /// `linger.ms` (5): how long a batch that is not full waits for more records.
    pub linger_ms: u64,
    /// `batch.size` (16384): a batch this large is sent at once.
    pub batch_size: usize,
    /// `buffer.memory` (33554432): bytes of records waiting to be sent; `send` waits for
    /// room up to `max.block.ms`, then fails.
    pub buffer_memory: usize,
    /// `max.block.ms` (60000): how long `send` may wait for metadata or buffer room.
    pub max_block_ms: u64,
    /// `max.request.size` (1048576): the largest record, and the most one Produce request
    /// carries.
    pub max_request_size: usize,
    /// `compression.type` (none): none, gzip, snappy, lz4, zstd.
    pub compression: Compression,
    /// `retries` (2147483647): attempts after the first, within `delivery.timeout.ms`.
    pub retries: u32,
    /// `delivery.timeout.ms` (120000): a record not acknowledged this long after `send`
    /// fails.
    pub delivery_timeout_ms: u64,
    /// `max.in.flight.requests.per.connection` (5).
    pub max_in_flight: usize,
    /// `enable.idempotence` (true): producer id and sequence numbers, so a retry writes
    /// nothing twice. Needs acks=all; when not set explicitly, a conflicting `acks` turns
    /// it off (as the Java client does), when set explicitly it is an error.
    pub enable_idempotence: bool,
    idempotence_explicit: bool,
}

impl ProducerConfig {
    /// The Java client's defaults, with `bootstrap.servers`.
    pub fn new(bootstrap: &str) -> ProducerConfig {
        ProducerConfig {
            client: ClientConfig::new(bootstrap),
            acks: -1,
            linger_ms: 5,
            batch_size: 16_384,
            buffer_memory: 32 << 20,
            max_block_ms: 60_000,
            max_request_size: 1_048_576,
            compression: Compression::None,
            retries: i32::MAX as u32,
            delivery_timeout_ms: 120_000,
            max_in_flight: 5,
            enable_idempotence: true,
            idempotence_explicit: false,
        }
    }

    /// Sets one property by its Kafka name (an unknown key is an error naming it).
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        match key {
            "acks" => {
                self.acks = match value.trim() {
                    "all" | "-1" => -1,
                    "0" => 0,
                    "1" => 1,
                    other => return Err(invalid(key, format!("{other:?}: use all, -1, 0 or 1"))),
                }
            }
            "linger.ms" => self.linger_ms = parse(key, value, 0..)?,
            "batch.size" => self.batch_size = parse(key, value, 0..)?,
            "buffer.memory" => self.buffer_memory = parse(key, value, 1..)?,
            "max.block.ms" => self.max_block_ms = parse(key, value, 0..)?,
            "max.request.size" => self.max_request_size = parse(key, value, 1..)?,
            "compression.type" | "compression.codec" => {
                self.compression = Compression::from_name(value.trim()).ok_or_else(|| {
                    invalid(
                        key,
                        format!("{value:?}: use none, gzip, snappy, lz4 or zstd"),
                    )
                })?
            }
            "retries" => self.retries = parse(key, value, 0..)?,
            "delivery.timeout.ms" => self.delivery_timeout_ms = parse(key, value, 1..)?,
            "max.in.flight.requests.per.connection" => self.max_in_flight = parse(key, value, 1..)?,
            "enable.idempotence" => {
                self.enable_idempotence = parse_bool(key, value)?;
                self.idempotence_explicit = true;
            }
            _ => {
                if !self.client.set(key, value)? {
                    return Err(invalid(key, "not a producer setting"));
                }
            }
        }
        Ok(self)
    }

    /// Resolves idempotence against `acks`, `retries` and `max.in.flight` as the Java
    /// client does; an explicit conflict is an error naming the key.
    pub(crate) fn validated(mut self) -> Result<ProducerConfig> {
        if self.enable_idempotence {
            let conflict = if self.acks != -1 {
                Some(("acks", "idempotence needs acks=all"))
            } else if self.retries == 0 {
                Some(("retries", "idempotence needs retries > 0"))
            } else if self.max_in_flight > 5 {
                Some((
                    "max.in.flight.requests.per.connection",
                    "idempotence allows at most 5",
                ))
            } else {
                None
            };
            if let Some((key, reason)) = conflict {
                if self.idempotence_explicit {
                    return Err(invalid(key, format!("{reason} (enable.idempotence=true)")));
                }
                self.enable_idempotence = false;
            }
        }
        Ok(self)
    }
}
