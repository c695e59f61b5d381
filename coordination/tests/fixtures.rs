//! Stored values written by earlier builds must keep decoding: one checked-in fixture per
//! format version of every record this crate stores (bincode has no field tags, so a
//! changed struct would otherwise misread them). When a record gains a version, add its
//! fixture here and keep the old ones.
#![allow(clippy::unwrap_used)]

use sluice_coordination::codec;
use sluice_coordination::election::LeaderRecord;

#[test]
fn leader_record_v1() {
    // version 1 (u16 BE) | epoch 42 (zigzag varint 0x54) | value: length 3, bytes 1 2 3
    let bytes = include_bytes!("fixtures/leader_record.v1.bin");
    let record: LeaderRecord = codec::decode(bytes).unwrap();
    assert_eq!(
        record,
        LeaderRecord {
            epoch: 42,
            value: vec![1, 2, 3]
        }
    );
}

#[test]
fn the_current_format_of_leader_record_is_pinned() {
    // While LeaderRecord::VERSION is 1, today's encoding must be byte-identical to the
    // fixture; a change here without a version bump would break stored values.
    let now = codec::encode(&LeaderRecord {
        epoch: 42,
        value: vec![1, 2, 3],
    })
    .unwrap();
    assert_eq!(
        now.as_slice(),
        include_bytes!("fixtures/leader_record.v1.bin")
    );
}
