//! The native Kafka client: it speaks the wire protocol, so it works against Sluice and
//! against Apache Kafka. Built with the `client` feature (on by default through `broker`);
//! a client-only build (`default-features = false, features = ["client"]`) pulls in no
//! actix, sled or coordination service.
//!
//! - [`producer`]: the producer (record accumulator, background sender, idempotence).
//! - [`Cluster`]: metadata and one connection per broker, shared by a client's tasks.
//! - [`records`]: record batches — built for producing, read from fetches without copies.

mod cluster;
mod config;
mod conn;
pub mod error;
pub mod producer;
pub mod records;

pub use cluster::{BrokerInfo, Cluster, PartitionInfo, TopicInfo};
pub use config::ClientConfig;
pub use error::{ClientError, Result};
pub use producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use sluice_actors::log::compression::Compression;
