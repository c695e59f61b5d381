//! The records of `__consumer_offsets`, in Kafka's formats exactly (so Kafka's tooling can
//! read the topic): keys `OffsetCommitKey` (version 0/1) and `GroupMetadataKey` (version 2);
//! values `OffsetCommitValue` v0–v3 and `GroupMetadataValue` v0–v3; a null value is a
//! tombstone. Non-flexible encoding: int16-length strings, int32-count arrays, int32-length
//! bytes, big-endian integers.
//!
//! Decoding is bounded: every length and count is checked against the bytes left before
//! anything is allocated, and nothing here can panic on any input.

use crate::log::batch::{self, BatchHeader, BatchSpec, RecordIter, NO_PRODUCER_ID};
use crate::log::compression::Compression;
use crate::{Error, Result};

/// A record's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    /// A committed offset of (group, topic, partition).
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// A group's metadata.
    Group { group: String },
}

impl RecordKey {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::Offset { group, .. } | RecordKey::Group { group } => group,
        }
    }
}

/// A committed offset (`OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1 when unknown (and in v0–v2).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// v1 only (an OffsetCommit v2–v4 `retention_time_ms`); -1 otherwise.
    pub expire_timestamp: i64,
}

/// A member in a group's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A group's metadata (`GroupMetadataValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    Offset(OffsetValue),
    Group(GroupValue),
}

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}
/// A string; longer than i16::MAX bytes is cut (never happens: group ids, topics and
/// metadata are bounded far below it by the request limits and `offset.metadata.max.bytes`).
fn put_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    put_i16(out, bytes.len() as i16);
    out.extend_from_slice(bytes);
}
fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => put_i16(out, -1),
    }
}
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_i32(out, i32::try_from(b.len()).unwrap_or(i32::MAX));
    out.extend_from_slice(&b[..b.len().min(i32::MAX as usize)]);
}

/// Encodes a key (`OffsetCommitKey` v1, `GroupMetadataKey` v2).
pub fn encode_key(key: &RecordKey) -> Vec<u8> {
    let mut out = Vec::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            put_i16(&mut out, 1);
            put_str(&mut out, group);
            put_str(&mut out, topic);
            put_i32(&mut out, *partition);
        }
        RecordKey::Group { group } => {
            put_i16(&mut out, 2);
            put_str(&mut out, group);
        }
    }
    out
}

/// Encodes an offset: `OffsetCommitValue` v3, or v1 when it carries an expire timestamp
/// (what Kafka writes for those).
pub fn encode_offset_value(v: &OffsetValue) -> Vec<u8> {
    let mut out = Vec::new();
    if v.expire_timestamp >= 0 {
        put_i16(&mut out, 1);
        put_i64(&mut out, v.offset);
        put_str(&mut out, &v.metadata);
        put_i64(&mut out, v.commit_timestamp);
        put_i64(&mut out, v.expire_timestamp);
    } else {
        put_i16(&mut out, 3);
        put_i64(&mut out, v.offset);
        put_i32(&mut out, v.leader_epoch);
        put_str(&mut out, &v.metadata);
        put_i64(&mut out, v.commit_timestamp);
    }
    out
}

/// Encodes a group's metadata as `GroupMetadataValue` v3.
pub fn encode_group_value(v: &GroupValue) -> Vec<u8> {
    let mut out = Vec::new();
    put_i16(&mut out, 3);
    put_str(&mut out, &v.protocol_type);
    put_i32(&mut out, v.generation);
    put_nullable_str(&mut out, v.protocol.as_deref());
    put_nullable_str(&mut out, v.leader.as_deref());
    put_i64(&mut out, v.current_state_timestamp);
    put_i32(&mut out, i32::try_from(v.members.len()).unwrap_or(i32::MAX));
    for m in &v.members {
        put_str(&mut out, &m.member_id);
        put_nullable_str(&mut out, m.group_instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        put_i32(&mut out, m.rebalance_timeout);
        put_i32(&mut out, m.session_timeout);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

/// Encodes a value.
pub fn encode_value(v: &RecordValue) -> Vec<u8> {
    match v {
        RecordValue::Offset(o) => encode_offset_value(o),
        RecordValue::Group(g) => encode_group_value(g),
    }
}

/// One record batch (v2, uncompressed, no producer id) holding `records` as (key, value or
/// tombstone), timestamped `now_ms`: what a coordinator appends.
pub fn build_batch(records: &[(Vec<u8>, Option<Vec<u8>>)], now_ms: i64) -> Result<Vec<u8>> {
    let mut encoded = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let delta = i32::try_from(i).unwrap_or(i32::MAX);
        batch::encode_record(&mut encoded, delta, 0, Some(key), value.as_deref());
    }
    let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
    let spec = BatchSpec {
        base_offset: 0,
        partition_leader_epoch: -1,
        attributes: Compression::None.id(),
        last_offset_delta: (count - 1).max(0),
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: -1,
        base_sequence: -1,
    };
    Ok(batch::build_batch(&spec, &encoded, count)?)
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn fail(&self, reason: &str) -> Error {
        Error::Decode {
            what: self.what.to_string(),
            reason: reason.to_string(),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(self.fail(&format!("{n} bytes wanted, {} left", self.buf.len())));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn nullable_str(&mut self) -> Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(len as usize)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| self.fail("string is not UTF-8"))
    }
    fn str(&mut self) -> Result<String> {
        self.nullable_str()?
            .ok_or_else(|| self.fail("null where a string is required"))
    }
    fn bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Vec::new());
        }
        Ok(self.take(len as usize)?.to_vec())
    }
    /// An array count, checked against the bytes left (each element takes at least
    /// `min_element` bytes).
    fn count(&mut self, min_element: usize) -> Result<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(0);
        }
        let n = n as usize;
        if n.saturating_mul(min_element.max(1)) > self.buf.len() {
            return Err(self.fail(&format!(
                "{n} elements cannot fit in {} bytes",
                self.buf.len()
            )));
        }
        Ok(n)
    }
}

/// Decodes a key.
pub fn decode_key(bytes: &[u8]) -> Result<RecordKey> {
    let mut r = Reader {
        buf: bytes,
        what: "__consumer_offsets key",
    };
    match r.i16()? {
        0 | 1 => Ok(RecordKey::Offset {
            group: r.str()?,
            topic: r.str()?,
            partition: r.i32()?,
        }),
        2 => Ok(RecordKey::Group { group: r.str()? }),
        v => Err(r.fail(&format!("unknown key version {v}"))),
    }
}

/// Decodes an `OffsetCommitValue` (v0–v3).
pub fn decode_offset_value(bytes: &[u8]) -> Result<OffsetValue> {
    let mut r = Reader {
        buf: bytes,
        what: "OffsetCommitValue",
    };
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp = r.i64()?;
    let expire_timestamp = if version == 1 { r.i64()? } else { -1 };
    if !(0..=3).contains(&version) {
        return Err(r.fail(&format!("unknown version {version}")));
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

/// Decodes a `GroupMetadataValue` (v0–v3).
pub fn decode_group_value(bytes: &[u8]) -> Result<GroupValue> {
    let mut r = Reader {
        buf: bytes,
        what: "GroupMetadataValue",
    };
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(r.fail(&format!("unknown version {version}")));
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    // The smallest member: 3 empty strings, a null string, 2 or 3 int32s, 2 empty bytes.
    let n = r.count(2 * 3 + 2 + 4 * 2 + 4 * 2)?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        let member_id = r.str()?;
        let group_instance_id = if version >= 3 {
            r.nullable_str()?
        } else {
            None
        };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout = r.i32()?;
        let rebalance_timeout = if version >= 1 {
            rebalance_timeout
        } else {
            session_timeout
        };
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout,
            session_timeout,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

/// Decodes a value for `key`; `None` for a tombstone.
pub fn decode_value(key: &RecordKey, value: Option<&[u8]>) -> Result<Option<RecordValue>> {
    let Some(value) = value else {
        return Ok(None);
    };
    Ok(Some(match key {
        RecordKey::Offset { .. } => RecordValue::Offset(decode_offset_value(value)?),
        RecordKey::Group { .. } => RecordValue::Group(decode_group_value(value)?),
    }))
}

/// The topics of a consumer-protocol subscription (`ConsumerProtocolSubscription`: int16
/// version, array of topic strings, ...); empty when it does not parse.
pub fn subscription_topics(subscription: &[u8]) -> Vec<String> {
    let mut r = Reader {
        buf: subscription,
        what: "ConsumerProtocolSubscription",
    };
    let parse = |r: &mut Reader<'_>| -> Result<Vec<String>> {
        r.i16()?;
        let n = r.count(2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.str()?);
        }
        Ok(topics)
    };
    parse(&mut r).unwrap_or_default()
}

/// One record read back from the log: its offset, key and value (`None`: tombstone).
pub type LogRecord = (i64, Vec<u8>, Option<Vec<u8>>);

/// Parses the whole batches at the start of `bytes` (a fetch's slice: it may end inside a
/// batch) into records; control batches are skipped. Answers the records and the offset
/// after the last whole batch (`None` when no whole batch was there).
pub fn parse_batches(bytes: &[u8], max_batch: usize) -> Result<(Vec<LogRecord>, Option<i64>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut next = None;
    while let Some(rest) = bytes.get(pos..) {
        if rest.len() < batch::BATCH_HEADER_SIZE {
            break;
        }
        let h = BatchHeader::parse(rest)?;
        let size = h.size();
        let Some(whole) = rest.get(..size) else {
            break;
        };
        next = Some(h.next_offset());
        pos += size;
        if h.is_control() {
            continue;
        }
        let payload = batch::records_payload(whole, &h, max_batch)?;
        let mut records = RecordIter::new(&payload, h.record_count);
        while let Some(r) = records.next_record()? {
            let Some(key) = r.key else { continue };
            out.push((
                h.base_offset + i64::from(r.offset_delta),
                key.to_vec(),
                r.value.map(<[u8]>::to_vec),
            ));
        }
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_kafkas_bytes() {
        let k = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
        };
        assert_eq!(encode_key(&k), [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2]);
        assert_eq!(decode_key(&encode_key(&k)).unwrap(), k);
        let g = RecordKey::Group { group: "g".into() };
        assert_eq!(encode_key(&g), [0, 2, 0, 1, b'g']);
        assert_eq!(decode_key(&encode_key(&g)).unwrap(), g);
        // Version 0 offset keys read like version 1.
        assert_eq!(
            decode_key(&[0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2]).unwrap(),
            k
        );
        assert!(decode_key(&[0, 9]).is_err());
        assert!(decode_key(&[0, 1, 0, 50, b'g']).is_err());
    }

    #[test]
    fn offset_values_round_trip_in_v3_and_v1() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: -1,
        };
        let bytes = encode_offset_value(&v);
        assert_eq!(
            bytes,
            [0, 3, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 3, 0, 1, b'm', 0, 0, 0, 0, 0, 0, 3, 232]
        );
        assert_eq!(decode_offset_value(&bytes).unwrap(), v);
        let v1 = OffsetValue {
            expire_timestamp: 5000,
            leader_epoch: -1,
            ..v.clone()
        };
        assert_eq!(decode_offset_value(&encode_offset_value(&v1)).unwrap(), v1);
        // v0: offset, metadata, timestamp.
        let v0 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
        let d = decode_offset_value(&v0).unwrap();
        assert_eq!((d.offset, d.commit_timestamp, d.leader_epoch), (7, 9, -1));
        assert!(decode_offset_value(&bytes[..10]).is_err());
    }

    #[test]
    fn group_values_round_trip_and_hostile_counts_fail_cleanly() {
        let v = GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp: 77,
            members: vec![MemberValue {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300,
                session_timeout: 100,
                subscription: vec![1, 2],
                assignment: vec![3],
            }],
        };
        let bytes = encode_group_value(&v);
        assert_eq!(decode_group_value(&bytes).unwrap(), v);
        // A member count of i32::MAX in a short value: an error, no allocation.
        let mut hostile = encode_group_value(&GroupValue {
            members: vec![],
            ..v.clone()
        });
        let n = hostile.len();
        hostile[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_group_value(&hostile).is_err());
        for cut in 0..bytes.len() {
            assert!(decode_group_value(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn subscriptions_give_their_topics() {
        let mut sub = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        sub.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(subscription_topics(&sub), ["a", "bc"]);
        assert!(subscription_topics(&[0, 1, 0x7f, 0, 0, 0]).is_empty());
    }

    #[test]
    fn batches_round_trip_through_the_log_format() {
        let records = vec![
            (
                encode_key(&RecordKey::Group { group: "g".into() }),
                Some(vec![1, 2, 3]),
            ),
            (encode_key(&RecordKey::Group { group: "h".into() }), None),
        ];
        let mut b = build_batch(&records, 1000).unwrap();
        // Offsets as the log would assign them.
        b[..8].copy_from_slice(&10i64.to_be_bytes());
        let mut two = b.clone();
        two.extend_from_slice(&b[..30]); // a partial batch after it
        let (parsed, next) = parse_batches(&two, 1 << 20).unwrap();
        assert_eq!(next, Some(12));
        assert_eq!(
            parsed,
            vec![
                (10, records[0].0.clone(), records[0].1.clone()),
                (11, records[1].0.clone(), None),
            ]
        );
    }
}
