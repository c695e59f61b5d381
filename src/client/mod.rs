//! The native Kafka client: it speaks the wire protocol, so it works against Sluice and
//! against Apache Kafka. Built with the `client` feature (on by default through `broker`);
//! a client-only build (`default-features = false, features = ["client"]`) pulls in no
//! actix, sled or coordination service.
//!
//! - [`producer`]: the producer (record accumulator, background sender, idempotence).
//! - [`Cluster`]: metadata and one connection per broker, shared by a client's tasks.
//! - [`records`]: record batches — built for producing, read from fetches without copies.

pub mod admin;
mod cluster;
mod config;
mod conn;
pub mod consumer;
pub mod error;
pub mod producer;
pub mod records;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

pub use admin::{Admin, NewTopic, OffsetSpec};
pub use cluster::{BrokerInfo, Cluster, PartitionInfo, TopicInfo};
pub use config::ClientConfig;
pub use consumer::{Consumer, ConsumerConfig, OffsetReset, RebalanceListener};
pub use error::{ClientError, Result};
pub use producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use records::ConsumerRecord;
pub use sluice_actors::log::compression::Compression;
