//! The Kafka-specific values Sluice stores in the coordination service (paths in
//! [`super::paths`]).
//!
//! Each is a serde struct in the coordination crate's versioned envelope
//! (`[format version: u16 BE][bincode body]`, bincode's standard config with big-endian
//! varints: unsigned integers below 251 are one byte, signed ones are zigzag-encoded first,
//! strings and sequences carry a varint length, an `Option` a 0/1 byte, a `[u8; 16]` its
//! 16 bytes). bincode has no field tags, so a struct that changes gets a new `VERSION`
//! and keeps decoding the old one; `actors/tests/metadata_records.rs` decodes a
//! checked-in fixture of every version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_coordination::codec::{self, Envelope};

use crate::{Error, Result};

/// A live broker, at `/brokers/ids/<id>` (ephemeral: it goes with the broker's session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// `broker.id`.
    pub id: i32,
    /// The host clients are told to connect to (the advertised listener).
    pub host: String,
    /// The advertised listener's port.
    pub port: u16,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// Different for every start of the broker process (and every new session), so the
    /// controller can tell a broker that bounced from one that stayed (Kafka's broker
    /// epoch).
    pub incarnation: u64,
}

/// A topic's id and replica assignment, at `/brokers/topics/<name>`. Written first when a
/// topic is created, so a topic whose partition states are incomplete can be detected and
/// completed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicAssignment {
    /// The topic id (a random version-4 UUID); a re-created topic gets a new one, so no
    /// broker serves a new topic from an old topic's files.
    pub topic_id: [u8; 16],
    /// The replicas of partition `p` at index `p`, preferred leader first.
    pub partitions: Vec<Vec<i32>>,
}

/// A partition's leadership, at `/brokers/topics/<name>/partitions/<p>/state`. Written by
/// the controller only, with a compare-and-set on the key's version and the controller
/// guard (wave 2: the leader also writes it to shrink or expand the ISR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The leader's broker id, or [`NO_LEADER`] (-1) while the partition is offline.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// The in-sync replicas. Never empty once written: when the last in-sync replica
    /// dies it stays listed (as in Kafka), so that it can come back as a clean leader.
    pub isr: Vec<i32>,
    /// The epoch of the controller that wrote this state.
    pub controller_epoch: i64,
}

/// The leader id of an offline partition.
pub const NO_LEADER: i32 = -1;

/// A topic's config overrides (topic-level names), at `/config/topics/<name>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfigRecord {
    pub configs: BTreeMap<String, String>,
}

/// A broker's dynamic config (broker-level names), at `/config/brokers/<id>`; it
/// overrides the broker's config file, as in Kafka.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerConfigRecord {
    pub configs: BTreeMap<String, String>,
}

/// A request to the controller to create a topic, at `/admin/create_topics/<name>`
/// (written by any broker when a Metadata request auto-creates a topic). `-1` means the
/// broker default (`num.partitions`, `default.replication.factor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicRequestRecord {
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// The cluster's id, at `/cluster/id`: created once, by the first broker to start
/// (Kafka's format: a random UUID in URL-safe base64 without padding, 22 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterId {
    pub id: String,
}

/// The last block of producer ids handed out, at `/latest_producer_id_block`: the next
/// block starts at `first + size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdBlock {
    /// The broker the block was given to.
    pub broker: i32,
    /// The block's first producer id.
    pub first: i64,
    /// How many ids the block holds.
    pub size: i64,
}

impl ProducerIdBlock {
    /// The block's last producer id.
    pub fn last(&self) -> i64 {
        self.first + self.size - 1
    }
}

/// Implements [`Envelope`] for structs still at format version 1: the body is the
/// struct's bincode encoding.
macro_rules! envelope_v1 {
    ($($record:ty),* $(,)?) => {$(
        impl Envelope for $record {
            const VERSION: u16 = 1;
            fn decode_body(_version: u16, body: &[u8]) -> sluice_coordination::Result<Self> {
                codec::from_bincode(body)
            }
            fn encode_body(&self) -> sluice_coordination::Result<Vec<u8>> {
                codec::to_bincode(self)
            }
        }
    )*};
}

envelope_v1!(
    BrokerRegistration,
    TopicAssignment,
    PartitionState,
    TopicConfigRecord,
    BrokerConfigRecord,
    CreateTopicRequestRecord,
    ClusterId,
    ProducerIdBlock,
);

/// Encodes a record in its envelope.
pub fn encode<T: Envelope>(record: &T) -> Result<Vec<u8>> {
    Ok(codec::encode(record)?)
}

/// Decodes the record stored at `key`; a failure names the key.
pub fn decode<T: Envelope>(key: &str, bytes: &[u8]) -> Result<T> {
    codec::decode(bytes).map_err(|e| Error::Decode {
        what: key.to_owned(),
        reason: e.to_string(),
    })
}

/// The controller election's candidate value: the broker id, 4 bytes big-endian (the
/// election wraps it in its own `LeaderRecord` at `/controller`).
pub fn controller_candidate(broker_id: i32) -> Vec<u8> {
    broker_id.to_be_bytes().to_vec()
}

/// The broker id in a controller election value written by [`controller_candidate`].
pub fn controller_broker_id(value: &[u8]) -> Option<i32> {
    <[u8; 4]>::try_from(value).ok().map(i32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn records_round_trip() {
        let state = PartitionState {
            leader: 2,
            leader_epoch: 7,
            isr: vec![2, 3],
            controller_epoch: 4,
        };
        let bytes = encode(&state).unwrap();
        // version 1 | leader 2 → zigzag 4 | epoch 7 → 14 | isr: len 2, 2 → 4, 3 → 6 | 4 → 8
        assert_eq!(bytes, [0, 1, 4, 14, 2, 4, 6, 8]);
        assert_eq!(decode::<PartitionState>("/k", &bytes).unwrap(), state);
        assert!(matches!(
            decode::<PartitionState>("/k", &[0, 1, 4]),
            Err(Error::Decode { what, .. }) if what == "/k"
        ));
        assert_eq!(controller_broker_id(&controller_candidate(-7)), Some(-7));
        assert_eq!(controller_broker_id(&[1, 2]), None);
    }
}
