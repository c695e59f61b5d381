//! Stored metadata written by earlier builds must keep decoding: one checked-in fixture
//! per format version of every record `sluice_actors::metadata::records` stores (bincode
//! has no field tags, so a changed struct would otherwise misread them). The fixtures
//! were computed by hand from bincode's rules (see the comments), not by this build's
//! encoder. When a record gains a version, add its fixture here and keep the old ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Debug;

use sluice_actors::metadata::records::{
    BrokerConfigRecord, BrokerRegistration, ClusterId, CreateTopicRequestRecord, PartitionState,
    ProducerIdBlock, TopicAssignment, TopicConfigRecord,
};
use sluice_coordination::codec::{self, Envelope};

/// Decodes the fixture into `expected`, and — while the record is at version 1 — checks
/// that today's encoding is byte-identical (a change without a version bump would break
/// stored values).
fn check<T: Envelope + PartialEq + Debug>(fixture: &[u8], expected: T) {
    assert_eq!(T::VERSION, 1, "add a fixture for the new version");
    assert_eq!(codec::decode::<T>(fixture).unwrap(), expected);
    assert_eq!(codec::encode(&expected).unwrap(), fixture);
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn broker_registration_v1() {
    // 00 01 version | 02 id 1 (zigzag) | 10 "broker-1.example" | fb 23 84 port 9092 (u16
    // follows) | 01 02 "r1" | fd + 8 bytes incarnation
    check(
        include_bytes!("fixtures/broker_registration.v1.bin"),
        BrokerRegistration {
            id: 1,
            host: "broker-1.example".into(),
            port: 9092,
            rack: Some("r1".into()),
            incarnation: 0x0123_4567_89ab_cdef,
        },
    );
}

#[test]
fn topic_assignment_v1() {
    // 00 01 | 16 raw bytes of the id (a fixed array has no length) | 03 partitions, each
    // 02 replicas, zigzag: [1, 2] = 02 04, [2, 3] = 04 06, [3, 1] = 06 02
    let mut topic_id = [0u8; 16];
    for (i, b) in topic_id.iter_mut().enumerate() {
        *b = i as u8 + 1;
    }
    check(
        include_bytes!("fixtures/topic_assignment.v1.bin"),
        TopicAssignment {
            topic_id,
            partitions: vec![vec![1, 2], vec![2, 3], vec![3, 1]],
        },
    );
}

#[test]
fn partition_state_v1() {
    // 00 01 | 04 leader 2 | fb 02 58 epoch 300 (zigzag 600) | 02 04 06 isr [2, 3] | 0e 7
    check(
        include_bytes!("fixtures/partition_state.v1.bin"),
        PartitionState {
            leader: 2,
            leader_epoch: 300,
            isr: vec![2, 3],
            controller_epoch: 7,
        },
    );
}

#[test]
fn topic_config_record_v1() {
    // 00 01 | 02 entries, sorted by key, each key then value with a length prefix
    check(
        include_bytes!("fixtures/topic_config_record.v1.bin"),
        TopicConfigRecord {
            configs: map(&[("cleanup.policy", "compact"), ("retention.ms", "-1")]),
        },
    );
}

#[test]
fn broker_config_record_v1() {
    check(
        include_bytes!("fixtures/broker_config_record.v1.bin"),
        BrokerConfigRecord {
            configs: map(&[("log.retention.ms", "3600000")]),
        },
    );
}

#[test]
fn create_topic_request_record_v1() {
    // 00 01 | 01 partitions -1 (zigzag 1) | 06 replication factor 3 | 01 entry
    check(
        include_bytes!("fixtures/create_topic_request_record.v1.bin"),
        CreateTopicRequestRecord {
            partitions: -1,
            replication_factor: 3,
            configs: map(&[("min.insync.replicas", "2")]),
        },
    );
}

#[test]
fn cluster_id_v1() {
    check(
        include_bytes!("fixtures/cluster_id.v1.bin"),
        ClusterId {
            id: "ASNFZ4mrze_-3LqYdlQyEA".into(),
        },
    );
}

#[test]
fn producer_id_block_v1() {
    // 00 01 | 02 broker 1 | fb 27 10 first 5000 (zigzag 10000) | fb 07 d0 size 1000
    check(
        include_bytes!("fixtures/producer_id_block.v1.bin"),
        ProducerIdBlock {
            broker: 1,
            first: 5000,
            size: 1000,
        },
    );
}
