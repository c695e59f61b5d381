//! Partition assignment for Kafka's classic consumer-group protocol: the `ConsumerProtocol`
//! subscription and assignment formats carried in JoinGroup metadata and SyncGroup
//! assignments, and the `range`, `roundrobin` and `sticky` assignors, interoperable with the
//! Java client and librdkafka.
//!
//! Decoding never trusts the lengths and counts inside the bytes: the input is walked with
//! bounds checks before kafka-protocol's decoders (which pre-allocate from counts) see it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    consumer_protocol_assignment, consumer_protocol_subscription, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Encoded subscriptions, assignments and sticky user data larger than this are refused.
pub const MAX_ENCODED_LEN: usize = 1 << 20;

/// The highest `ConsumerProtocol` version understood; higher versions decode as this one.
pub const MAX_VERSION: i16 = 3;

/// Partitions by topic: `(topic, partition ids)`.
pub type TopicPartitions = Vec<(String, Vec<i32>)>;

/// A member's subscription: the `ConsumerProtocolSubscription` in its JoinGroup metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topics the member wants to consume.
    pub topics: Vec<String>,
    /// Assignor-specific data (sticky: the member's current assignment and generation).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now, by topic (version 1+).
    pub owned_partitions: Vec<(String, Vec<i32>)>,
    /// The generation the member last joined, -1 if none (version 2+).
    pub generation_id: i32,
    /// The member's `client.rack` (version 3+).
    pub rack_id: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

/// A member's assignment: the `ConsumerProtocolAssignment` the leader sends through SyncGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The assigned partitions, by topic.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
}

/// Encodes `s` as a `ConsumerProtocolSubscription` of `version` (clamped to 0..=3; callers
/// normally use 1), prefixed with the version. Fields the version lacks are left out, and so
/// are names too long for a Kafka string (32767 bytes), which no valid topic has.
pub fn encode_subscription(s: &Subscription, version: i16) -> Bytes {
    let message = ConsumerProtocolSubscription::default()
        .with_topics(s.topics.iter().filter_map(|t| str_bytes(t)).collect())
        .with_user_data(s.user_data.clone())
        .with_owned_partitions(
            s.owned_partitions
                .iter()
                .filter_map(|(topic, partitions)| {
                    Some(
                        consumer_protocol_subscription::TopicPartition::default()
                            .with_topic(TopicName(str_bytes(topic)?))
                            .with_partitions(partitions.clone()),
                    )
                })
                .collect(),
        )
        .with_generation_id(s.generation_id)
        .with_rack_id(s.rack_id.as_deref().and_then(str_bytes));
    encode_versioned(&message, version.clamp(0, MAX_VERSION))
}

/// Decodes a version-prefixed `ConsumerProtocolSubscription` of any version (above 3 decodes
/// as 3, as Kafka does; trailing bytes are ignored). Fields older versions lack get their
/// defaults (no owned partitions, generation -1, no rack).
pub fn decode_subscription(bytes: &[u8]) -> Result<Subscription, String> {
    let (version, mut r) = versioned(bytes)?;
    let mut body = Bytes::copy_from_slice(r.0);
    for _ in 0..r.len(2)? {
        r.string()?.ok_or("null topic name")?;
    }
    r.bytes()?;
    if version >= 1 {
        r.skip_topic_partitions()?;
    }
    if version >= 2 {
        r.i32()?;
    }
    if version >= 3 {
        r.string()?;
    }
    let m = ConsumerProtocolSubscription::decode(&mut body, version)
        .map_err(|e| format!("invalid subscription: {e}"))?;
    Ok(Subscription {
        topics: m.topics.iter().map(|t| t.to_string()).collect(),
        user_data: m.user_data,
        owned_partitions: m
            .owned_partitions
            .into_iter()
            .map(|tp| (tp.topic.to_string(), tp.partitions))
            .collect(),
        generation_id: m.generation_id,
        rack_id: m.rack_id.map(|r| r.to_string()),
    })
}

/// Encodes `a` as a version-1 `ConsumerProtocolAssignment` (versions 0 to 3 are identical on
/// the wire), prefixed with the version.
pub fn encode_assignment(a: &Assignment) -> Bytes {
    let message = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            a.partitions
                .iter()
                .filter_map(|(topic, partitions)| {
                    Some(
                        consumer_protocol_assignment::TopicPartition::default()
                            .with_topic(TopicName(str_bytes(topic)?))
                            .with_partitions(partitions.clone()),
                    )
                })
                .collect(),
        )
        .with_user_data(a.user_data.clone());
    encode_versioned(&message, 1)
}

/// Decodes a version-prefixed `ConsumerProtocolAssignment` of any version. An empty input is
/// an empty assignment: brokers send that to the members of a failed rebalance.
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, String> {
    if bytes.is_empty() {
        return Ok(Assignment::default());
    }
    let (version, mut r) = versioned(bytes)?;
    let mut body = Bytes::copy_from_slice(r.0);
    r.skip_topic_partitions()?;
    r.bytes()?;
    let m = ConsumerProtocolAssignment::decode(&mut body, version)
        .map_err(|e| format!("invalid assignment: {e}"))?;
    Ok(Assignment {
        partitions: m
            .assigned_partitions
            .into_iter()
            .map(|tp| (tp.topic.to_string(), tp.partitions))
            .collect(),
        user_data: m.user_data,
    })
}

/// Encodes Java's `StickyAssignor` user data: `[{topic: string, partitions: [int32]}]`, then
/// the generation as an int32 (version 1; version 0, `generation: None`, has none).
pub fn encode_sticky_user_data(
    partitions: &[(String, Vec<i32>)],
    generation: Option<i32>,
) -> Bytes {
    let topics: Vec<_> = partitions.iter().filter(|(t, _)| fits_string(t)).collect();
    let mut buf = BytesMut::new();
    buf.put_i32(topics.len() as i32);
    for (topic, partitions) in topics {
        buf.put_i16(topic.len() as i16);
        buf.put_slice(topic.as_bytes());
        buf.put_i32(partitions.len() as i32);
        partitions.iter().for_each(|&p| buf.put_i32(p));
    }
    if let Some(generation) = generation {
        buf.put_i32(generation);
    }
    buf.freeze()
}

/// Decodes Java's `StickyAssignor` user data (version 1, or version 0 whose generation is
/// `None`), as Java does: a version 1 read, else a version 0 one; trailing bytes are ignored.
pub fn decode_sticky_user_data(bytes: &[u8]) -> Result<(TopicPartitions, Option<i32>), String> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(format!(
            "sticky user data of {} bytes is too large",
            bytes.len()
        ));
    }
    let mut r = Reader(bytes);
    let partitions = r.topic_partitions()?;
    Ok((partitions, r.i32().ok()))
}

/// A partition assignment strategy of the classic consumer-group protocol.
pub trait Assignor: Send + Sync + Debug {
    /// Kafka's protocol name ("range", "roundrobin", "sticky").
    fn name(&self) -> &'static str;

    /// The user data this member puts in its subscription (sticky: its current assignment and
    /// generation).
    fn user_data(&self, current: &[(String, Vec<i32>)], generation: i32) -> Option<Bytes> {
        let _ = (current, generation);
        None
    }

    /// Computes the assignment for every member (the group leader calls this).
    /// `members`: member id -> its subscription (already decoded); `partitions`: topic ->
    /// partition count. Every member gets an entry; topics come sorted, partitions ascending.
    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<(String, Vec<i32>)>>;
}

/// The assignor with Kafka protocol name `name` ("range", "roundrobin", "sticky", in any case)
/// or Java class name (`org.apache.kafka.clients.consumer.RangeAssignor`, …); `None` for
/// others (including the cooperative sticky assignor, which this protocol version lacks).
pub fn assignor_by_name(name: &str) -> Option<Arc<dyn Assignor>> {
    let name = name.trim();
    let class = name.strip_prefix("org.apache.kafka.clients.consumer.");
    let is = |short: &str, class_name: &str| {
        name.eq_ignore_ascii_case(short) || class == Some(class_name)
    };
    if is("range", "RangeAssignor") {
        Some(Arc::new(RangeAssignor))
    } else if is("roundrobin", "RoundRobinAssignor") {
        Some(Arc::new(RoundRobinAssignor))
    } else if is("sticky", "StickyAssignor") {
        Some(Arc::new(StickyAssignor))
    } else {
        None
    }
}

/// Java's `RangeAssignor` (without rack awareness): per topic, its subscribers sorted by member
/// id get contiguous ranges of partitions, the first `partitions % subscribers` one extra.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<(String, Vec<i32>)>> {
        let ids: Vec<&String> = members.keys().collect();
        let mut out = empty_assignment(members);
        for (topic, count, subscribers) in subscribers(members, partitions) {
            let (count, m) = (count as usize, subscribers.len());
            let (per, extra) = (count / m, count % m);
            for (i, &member) in subscribers.iter().enumerate() {
                let start = per * i + i.min(extra);
                let end = start + per + usize::from(i < extra);
                for p in start..end {
                    push(&mut out, ids[member], topic, p as i32);
                }
            }
        }
        out
    }
}

/// Java's `RoundRobinAssignor`: every partition of every subscribed topic, sorted by topic then
/// partition, dealt to the members sorted by id in turn, skipping members not subscribed to
/// the partition's topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<(String, Vec<i32>)>> {
        let ids: Vec<&String> = members.keys().collect();
        let mut out = empty_assignment(members);
        let mut next = 0;
        for (topic, count, subscribers) in subscribers(members, partitions) {
            for p in 0..count {
                while subscribers.binary_search(&next).is_err() {
                    next = (next + 1) % ids.len();
                }
                push(&mut out, ids[next], topic, p);
                next = (next + 1) % ids.len();
            }
        }
        out
    }
}

/// Java's (eager) `StickyAssignor` guarantees: the assignment is balanced — no partition could
/// move to an eligible member holding two or more fewer, so members with identical
/// subscriptions differ by at most one partition — and members keep their previous partitions
/// where balance allows. Previous partitions come from a member's `owned_partitions`, else
/// from its sticky user data; when two members claim a partition, the higher generation wins.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

impl StickyAssignor {
    /// A member's previous partitions and the generation they belong to (-1 if unknown).
    fn previous(sub: &Subscription) -> (TopicPartitions, i32) {
        let user_data = sub
            .user_data
            .as_deref()
            .and_then(|d| decode_sticky_user_data(d).ok());
        let user_generation = user_data.as_ref().and_then(|(_, g)| *g);
        let generation = (sub.generation_id >= 0).then_some(sub.generation_id);
        match user_data {
            _ if !sub.owned_partitions.is_empty() => (
                sub.owned_partitions.clone(),
                generation.or(user_generation).unwrap_or(-1),
            ),
            Some((partitions, _)) => (partitions, user_generation.or(generation).unwrap_or(-1)),
            None => (Vec::new(), -1),
        }
    }
}

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn user_data(&self, current: &[(String, Vec<i32>)], generation: i32) -> Option<Bytes> {
        (generation >= 0 || !current.is_empty())
            .then(|| encode_sticky_user_data(current, Some(generation)))
    }

    fn assign(
        &self,
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Vec<(String, Vec<i32>)>> {
        let topics = subscribers(members, partitions);
        let index: BTreeMap<&str, usize> = topics
            .iter()
            .enumerate()
            .map(|(k, (t, _, _))| (*t, k))
            .collect();
        let eligible = |member: usize, k: usize| topics[k].2.binary_search(&member).is_ok();

        // The winning previous claim on every partition: (generation, member).
        let mut claims: Vec<Vec<Option<(i32, usize)>>> = topics
            .iter()
            .map(|(_, n, _)| vec![None; *n as usize])
            .collect();
        for (member, sub) in members.values().enumerate() {
            let (previous, generation) = Self::previous(sub);
            for (topic, ps) in &previous {
                let Some(&k) = index.get(topic.as_str()).filter(|&&k| eligible(member, k)) else {
                    continue;
                };
                for &p in ps {
                    let slot = usize::try_from(p).ok().and_then(|p| claims[k].get_mut(p));
                    if let Some(slot) = slot.filter(|s| s.is_none_or(|(g, _)| generation > g)) {
                        *slot = Some((generation, member));
                    }
                }
            }
        }
        let previous_owner = |k: usize, p: i32| claims[k][p as usize].map(|(_, m)| m);

        // Keep previous partitions up to a fair share; the rest go to the least-loaded
        // eligible member, partitions with the fewest eligible members first.
        let active: BTreeSet<usize> = topics.iter().flat_map(|t| t.2.iter().copied()).collect();
        let total: usize = topics.iter().map(|(_, n, _)| *n as usize).sum();
        let cap = total.div_ceil(active.len().max(1));
        let mut held: Vec<BTreeSet<(usize, i32)>> = vec![BTreeSet::new(); members.len()];
        let mut unassigned = Vec::new();
        for (k, slots) in claims.iter().enumerate() {
            for (p, slot) in slots.iter().enumerate() {
                match slot {
                    Some((_, m)) if held[*m].len() < cap => {
                        held[*m].insert((k, p as i32));
                    }
                    _ => unassigned.push((k, p as i32)),
                }
            }
        }
        unassigned.sort_by_key(|&(k, p)| (topics[k].2.len(), k, p));
        for (k, p) in unassigned {
            if let Some(&m) = topics[k].2.iter().min_by_key(|&&m| (held[m].len(), m)) {
                held[m].insert((k, p));
            }
        }

        // Move partitions from members holding at least two more than an eligible one, fullest
        // to emptiest, preferring partitions the giver did not own before. Each move lowers
        // the sum of squared counts, so this ends.
        loop {
            let mut order: Vec<usize> = (0..members.len()).collect();
            order.sort_by_key(|&m| (held[m].len(), m));
            let found = order.iter().find_map(|&to| {
                order
                    .iter()
                    .rev()
                    .take_while(|&&from| held[from].len() > held[to].len() + 1)
                    .find_map(|&from| {
                        let mut movable =
                            held[from].iter().rev().filter(|&&(k, _)| eligible(to, k));
                        let first = movable.clone().next()?;
                        let fresh = movable.find(|&&(k, p)| previous_owner(k, p) != Some(from));
                        Some((from, to, *fresh.unwrap_or(first)))
                    })
            });
            let Some((from, to, tp)) = found else { break };
            held[from].remove(&tp);
            held[to].insert(tp);
        }

        let mut out = empty_assignment(members);
        for ((id, _), partitions) in members.iter().zip(&held) {
            for &(k, p) in partitions {
                push(&mut out, id, topics[k].0, p);
            }
        }
        out
    }
}

/// Every topic with partitions and subscribers, sorted: (topic, partition count, indexes of its
/// subscribers in `members`' order).
fn subscribers<'a>(
    members: &BTreeMap<String, Subscription>,
    partitions: &'a BTreeMap<String, i32>,
) -> Vec<(&'a str, i32, Vec<usize>)> {
    let mut by_topic: BTreeMap<&str, (i32, Vec<usize>)> = BTreeMap::new();
    for (member, sub) in members.values().enumerate() {
        for topic in &sub.topics {
            let Some((name, &n)) = partitions.get_key_value(topic.as_str()) else {
                continue;
            };
            if n > 0 {
                let subs = &mut by_topic.entry(name.as_str()).or_insert((n, Vec::new())).1;
                if subs.last() != Some(&member) {
                    subs.push(member);
                }
            }
        }
    }
    by_topic
        .into_iter()
        .map(|(t, (n, subs))| (t, n, subs))
        .collect()
}

/// An empty assignment for every member.
fn empty_assignment(
    members: &BTreeMap<String, Subscription>,
) -> BTreeMap<String, Vec<(String, Vec<i32>)>> {
    members.keys().map(|id| (id.clone(), Vec::new())).collect()
}

/// Appends `topic`'s partition `p` to `member`'s assignment (partitions arrive grouped by topic).
fn push(out: &mut BTreeMap<String, Vec<(String, Vec<i32>)>>, member: &str, topic: &str, p: i32) {
    let Some(assigned) = out.get_mut(member) else {
        return;
    };
    match assigned.last_mut() {
        Some((t, ps)) if t == topic => ps.push(p),
        _ => assigned.push((topic.to_owned(), vec![p])),
    }
}

/// Whether `s` fits a Kafka (int16-length) string.
fn fits_string(s: &str) -> bool {
    s.len() <= i16::MAX as usize
}

/// `s` as a Kafka string, `None` if it cannot be one.
fn str_bytes(s: &str) -> Option<StrBytes> {
    fits_string(s).then(|| StrBytes::from_string(s.to_owned()))
}

/// `message` encoded at `version` after an int16 version prefix. Encoding fails only for
/// fields beyond the wire format's limits (over 2 GiB of user data); that yields an empty
/// message rather than a truncated one.
fn encode_versioned<M: Encodable + Default>(message: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    if let Err(e) = message.encode(&mut buf, version) {
        tracing::warn!("cannot encode consumer protocol message: {e}");
        buf.truncate(2);
        if M::default().encode(&mut buf, version).is_err() {
            buf.truncate(2);
        }
    }
    buf.freeze()
}

/// Checks the size of a version-prefixed message and reads its version (above 3 reads as 3).
fn versioned(bytes: &[u8]) -> Result<(i16, Reader<'_>), String> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(format!("message of {} bytes is too large", bytes.len()));
    }
    let mut r = Reader(bytes);
    match r.i16()? {
        v if v < 0 => Err(format!("unsupported consumer protocol version {v}")),
        v => Ok((v.min(MAX_VERSION), r)),
    }
}

/// A bounds-checked reader of Kafka's classic (non-flexible) encoding.
#[derive(Debug)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err(format!(
                "truncated: {n} bytes needed, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, String> {
        self.fixed().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Result<i32, String> {
        self.fixed().map(i32::from_be_bytes)
    }

    /// A nullable string.
    fn string(&mut self) -> Result<Option<&'a str>, String> {
        match self.i16()? {
            -1 => Ok(None),
            n if n >= 0 => std::str::from_utf8(self.take(n as usize)?)
                .map(Some)
                .map_err(|e| e.to_string()),
            n => Err(format!("negative string length {n}")),
        }
    }

    /// Nullable bytes.
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, String> {
        match self.i32()? {
            -1 => Ok(None),
            n if n >= 0 => self.take(n as usize).map(Some),
            n => Err(format!("negative bytes length {n}")),
        }
    }

    /// A non-null array's length, refused if that many `min_size`-byte elements cannot fit.
    fn len(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| format!("invalid array length {n}"))?;
        if n.saturating_mul(min_size) > self.0.len() {
            return Err(format!("truncated: array of {n} in {} bytes", self.0.len()));
        }
        Ok(n)
    }

    /// `[{topic: string, partitions: [int32]}]`, validated only.
    fn skip_topic_partitions(&mut self) -> Result<(), String> {
        for _ in 0..self.len(6)? {
            self.string()?.ok_or("null topic name")?;
            let n = self.len(4)?;
            self.take(4 * n)?;
        }
        Ok(())
    }

    /// `[{topic: string, partitions: [int32]}]`.
    fn topic_partitions(&mut self) -> Result<TopicPartitions, String> {
        (0..self.len(6)?)
            .map(|_| {
                let topic = self.string()?.ok_or("null topic name")?.to_owned();
                let partitions = (0..self.len(4)?)
                    .map(|_| self.i32())
                    .collect::<Result<_, _>>()?;
                Ok((topic, partitions))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(topics: &[&str]) -> Subscription {
        Subscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    fn tps(list: &[(&str, &[i32])]) -> Vec<(String, Vec<i32>)> {
        list.iter()
            .map(|(t, ps)| (t.to_string(), ps.to_vec()))
            .collect()
    }

    fn group(list: &[(&str, Subscription)]) -> BTreeMap<String, Subscription> {
        list.iter()
            .map(|(id, s)| (id.to_string(), s.clone()))
            .collect()
    }

    fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    /// xorshift64: deterministic test randomness.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn range_splits_one_topic_into_ranges() {
        let members = group(&[("b", sub(&["t"])), ("a", sub(&["t"]))]);
        let out = RangeAssignor.assign(&members, &counts(&[("t", 5)]));
        assert_eq!(out["a"], tps(&[("t", &[0, 1, 2])]));
        assert_eq!(out["b"], tps(&[("t", &[3, 4])]));
    }

    #[test]
    fn range_assigns_each_topic_separately() {
        // Java's RangeAssignor example: C0 gets t0p0, t0p1, t1p0, t1p1; C1 gets t0p2, t1p2.
        let members = group(&[("c0", sub(&["t0", "t1"])), ("c1", sub(&["t0", "t1"]))]);
        let out = RangeAssignor.assign(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(out["c0"], tps(&[("t0", &[0, 1]), ("t1", &[0, 1])]));
        assert_eq!(out["c1"], tps(&[("t0", &[2]), ("t1", &[2])]));
        // Subscribers only, unknown topics ignored, every member listed.
        let members = group(&[
            ("a", sub(&["t0", "x"])),
            ("b", sub(&["t1"])),
            ("c", sub(&["x"])),
        ]);
        let out = RangeAssignor.assign(&members, &counts(&[("t0", 2), ("t1", 1), ("u", 4)]));
        assert_eq!(out["a"], tps(&[("t0", &[0, 1])]));
        assert_eq!(out["b"], tps(&[("t1", &[0])]));
        assert_eq!(out["c"], tps(&[]));
    }

    #[test]
    fn roundrobin_interleaves_across_topics() {
        let members = group(&[
            ("a", sub(&["t0", "t1"])),
            ("b", sub(&["t0", "t1"])),
            ("c", sub(&["t1", "t0"])),
        ]);
        let out = RoundRobinAssignor.assign(&members, &counts(&[("t0", 3), ("t1", 2)]));
        assert_eq!(out["a"], tps(&[("t0", &[0]), ("t1", &[0])]));
        assert_eq!(out["b"], tps(&[("t0", &[1]), ("t1", &[1])]));
        assert_eq!(out["c"], tps(&[("t0", &[2])]));
        // Java's RoundRobinAssignor example with two members and two 3-partition topics.
        let members = group(&[("c0", sub(&["t0", "t1"])), ("c1", sub(&["t0", "t1"]))]);
        let out = RoundRobinAssignor.assign(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(out["c0"], tps(&[("t0", &[0, 2]), ("t1", &[1])]));
        assert_eq!(out["c1"], tps(&[("t0", &[1]), ("t1", &[0, 2])]));
    }

    #[test]
    fn roundrobin_skips_members_not_subscribed() {
        // Java's example: C0 on t0; C1 on t0, t1; C2 on t0, t1, t2 (1, 2, 3 partitions).
        let members = group(&[
            ("c0", sub(&["t0"])),
            ("c1", sub(&["t0", "t1"])),
            ("c2", sub(&["t0", "t1", "t2"])),
        ]);
        let out = RoundRobinAssignor.assign(&members, &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(out["c0"], tps(&[("t0", &[0])]));
        assert_eq!(out["c1"], tps(&[("t1", &[0])]));
        assert_eq!(out["c2"], tps(&[("t1", &[1]), ("t2", &[0, 1, 2])]));
    }

    /// Checks every partition of a subscribed topic goes to exactly one subscriber, and Java's
    /// balance condition; returns member -> set of (topic, partition).
    fn check(
        members: &BTreeMap<String, Subscription>,
        partitions: &BTreeMap<String, i32>,
        out: &BTreeMap<String, Vec<(String, Vec<i32>)>>,
    ) -> BTreeMap<String, BTreeSet<(String, i32)>> {
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            members.keys().collect::<Vec<_>>()
        );
        let mut owner = BTreeMap::new();
        let sets: BTreeMap<String, BTreeSet<(String, i32)>> = out
            .iter()
            .map(|(m, a)| {
                let set = a
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
                    .collect();
                (m.clone(), set)
            })
            .collect();
        for (m, a) in out {
            for (t, ps) in a {
                assert!(members[m].topics.contains(t), "{m} got {t} unsubscribed");
                for &p in ps {
                    assert!((0..partitions[t]).contains(&p));
                    assert!(
                        owner.insert((t.clone(), p), m.clone()).is_none(),
                        "{t}-{p} twice"
                    );
                }
            }
        }
        for (t, &n) in partitions {
            if members.values().any(|s| s.topics.contains(t)) {
                assert!(
                    (0..n).all(|p| owner.contains_key(&(t.clone(), p))),
                    "{t} not all assigned"
                );
            }
        }
        for (m, s) in members {
            for ((t, _), other) in &owner {
                if s.topics.contains(t) {
                    assert!(
                        sets[other].len() <= sets[m].len() + 1,
                        "unbalanced: {out:?}"
                    );
                }
            }
        }
        sets
    }

    fn with_owned(
        s: &Subscription,
        owned: &BTreeSet<(String, i32)>,
        generation: i32,
    ) -> Subscription {
        let mut owned_partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (t, p) in owned {
            match owned_partitions.last_mut() {
                Some((last, ps)) if last == t => ps.push(*p),
                _ => owned_partitions.push((t.clone(), vec![*p])),
            }
        }
        Subscription {
            owned_partitions,
            generation_id: generation,
            ..s.clone()
        }
    }

    #[test]
    fn sticky_is_balanced_and_sticky_for_identical_subscriptions() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..400 {
            let n_members = 1 + rng.below(8);
            let n_topics = 1 + rng.below(4);
            let topics: Vec<String> = (0..n_topics).map(|t| format!("t{t}")).collect();
            let partitions: BTreeMap<String, i32> = topics
                .iter()
                .map(|t| (t.clone(), 1 + rng.below(20) as i32))
                .collect();
            let s = Subscription {
                topics: topics.clone(),
                ..Default::default()
            };
            let mut members: BTreeMap<String, Subscription> = (0..n_members)
                .map(|_| (format!("m{}", rng.next() % 1000), s.clone()))
                .collect();
            let first = check(
                &members,
                &partitions,
                &StickyAssignor.assign(&members, &partitions),
            );
            let (lo, hi) = (
                first.values().map(BTreeSet::len).min(),
                first.values().map(BTreeSet::len).max(),
            );
            assert!(hi.unwrap() - lo.unwrap() <= 1);

            // A member leaves: the others keep everything they had.
            let gone = members
                .keys()
                .nth(rng.below(members.len()))
                .unwrap()
                .clone();
            members.remove(&gone);
            let members: BTreeMap<_, _> = members
                .iter()
                .map(|(m, s)| (m.clone(), with_owned(s, &first[m], 1)))
                .collect();
            let second = check(
                &members,
                &partitions,
                &StickyAssignor.assign(&members, &partitions),
            );
            for m in members.keys() {
                assert!(first[m].is_subset(&second[m]), "{m} lost partitions");
            }

            // A member joins: the others keep as many as their new share allows.
            let mut members: BTreeMap<_, _> = members
                .iter()
                .map(|(m, s)| (m.clone(), with_owned(s, &second[m], 2)))
                .collect();
            members.insert("new".into(), s.clone());
            let third = check(
                &members,
                &partitions,
                &StickyAssignor.assign(&members, &partitions),
            );
            for (m, had) in &second {
                let kept = had.intersection(&third[m]).count();
                assert_eq!(kept, had.len().min(third[m].len()), "{m} moved needlessly");
            }
        }
    }

    #[test]
    fn sticky_is_valid_and_balanced_for_mixed_subscriptions() {
        let mut rng = Rng(42);
        for _ in 0..400 {
            let n_topics = 1 + rng.below(4);
            let partitions: BTreeMap<String, i32> = (0..n_topics)
                .map(|t| (format!("t{t}"), 1 + rng.below(20) as i32))
                .collect();
            let mut members = BTreeMap::new();
            for m in 0..1 + rng.below(8) {
                let topics = partitions
                    .keys()
                    .filter(|_| rng.below(2) == 0)
                    .cloned()
                    .collect();
                members.insert(
                    format!("m{m}"),
                    Subscription {
                        topics,
                        ..Default::default()
                    },
                );
            }
            let first = check(
                &members,
                &partitions,
                &StickyAssignor.assign(&members, &partitions),
            );
            // Identical subscriptions differ by at most one.
            for (a, sa) in &members {
                for (b, sb) in &members {
                    if sa.topics == sb.topics {
                        assert!(first[a].len() <= first[b].len() + 1);
                    }
                }
            }
            // Resubscribing with random other topics keeps the result valid.
            let members: BTreeMap<_, _> = members
                .iter()
                .map(|(m, s)| {
                    let topics = partitions
                        .keys()
                        .filter(|_| rng.below(3) != 0)
                        .cloned()
                        .collect();
                    (
                        m.clone(),
                        with_owned(
                            &Subscription {
                                topics,
                                ..s.clone()
                            },
                            &first[m],
                            1,
                        ),
                    )
                })
                .collect();
            check(
                &members,
                &partitions,
                &StickyAssignor.assign(&members, &partitions),
            );
        }
    }

    #[test]
    fn sticky_higher_generation_wins_conflicts() {
        let partitions = counts(&[("t", 2)]);
        for (ga, gb, a_gets) in [(3, 2, 0), (2, 3, 1)] {
            let members = group(&[
                (
                    "a",
                    Subscription {
                        owned_partitions: tps(&[("t", &[0])]),
                        generation_id: ga,
                        ..sub(&["t"])
                    },
                ),
                (
                    "b",
                    Subscription {
                        owned_partitions: tps(&[("t", &[0, 1])]),
                        generation_id: gb,
                        ..sub(&["t"])
                    },
                ),
            ]);
            let out = StickyAssignor.assign(&members, &partitions);
            assert_eq!(out["a"], tps(&[("t", &[a_gets])]));
            assert_eq!(out["b"], tps(&[("t", &[1 - a_gets])]));
        }
    }

    #[test]
    fn sticky_reads_java_user_data() {
        // Version 0 subscriptions (no owned partitions): the previous assignment and generation
        // come from the user data; "a"'s claim on t-1 is older than "b"'s.
        let ud = |ps: &[(&str, &[i32])], g| Some(encode_sticky_user_data(&tps(ps), g));
        let members = group(&[
            (
                "a",
                Subscription {
                    user_data: ud(&[("t", &[1, 3])], Some(4)),
                    ..sub(&["t"])
                },
            ),
            (
                "b",
                Subscription {
                    user_data: ud(&[("t", &[1, 2])], Some(5)),
                    ..sub(&["t"])
                },
            ),
            (
                "c",
                Subscription {
                    user_data: Some(Bytes::from_static(b"\xff\x00garbage")),
                    ..sub(&["t"])
                },
            ),
        ]);
        let out = StickyAssignor.assign(&members, &counts(&[("t", 6)]));
        assert!(out["a"].iter().any(|(_, ps)| ps.contains(&3)) && !out["a"][0].1.contains(&1));
        assert_eq!(out["b"], tps(&[("t", &[1, 2])]));
        check(&members, &counts(&[("t", 6)]), &out);
    }

    #[test]
    fn sticky_user_data_round_trips() {
        let parts = tps(&[("orders", &[0, 5, 2]), ("payments", &[]), ("x", &[7])]);
        let encoded = StickyAssignor.user_data(&parts, 9).unwrap();
        assert_eq!(
            decode_sticky_user_data(&encoded).unwrap(),
            (parts.clone(), Some(9))
        );
        let v0 = encode_sticky_user_data(&parts, None);
        assert_eq!(decode_sticky_user_data(&v0).unwrap(), (parts, None));
        assert_eq!(StickyAssignor.user_data(&[], -1), None);
        assert_eq!(RangeAssignor.user_data(&tps(&[("t", &[0])]), 1), None);
        // Exact bytes: [{"t", [1]}], generation 2.
        let bytes = encode_sticky_user_data(&tps(&[("t", &[1])]), Some(2));
        assert_eq!(
            &bytes[..],
            b"\0\0\0\x01\0\x01t\0\0\0\x01\0\0\0\x01\0\0\0\x02"
        );
        for cut in 0..bytes.len() - 4 {
            assert!(decode_sticky_user_data(&bytes[..cut]).is_err());
        }
        assert!(decode_sticky_user_data(b"\x7f\xff\xff\xff\0\x01").is_err());
    }

    fn full_subscription() -> Subscription {
        Subscription {
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"\x01\x02\x03")),
            owned_partitions: tps(&[("orders", &[0, 2]), ("payments", &[1])]),
            generation_id: 7,
            rack_id: Some("rack-1".into()),
        }
    }

    #[test]
    fn subscription_round_trips_every_version() {
        let s = full_subscription();
        for version in 0..=3 {
            let encoded = encode_subscription(&s, version);
            assert_eq!(&encoded[..2], &version.to_be_bytes());
            let expected = Subscription {
                topics: s.topics.clone(),
                user_data: s.user_data.clone(),
                owned_partitions: if version >= 1 {
                    s.owned_partitions.clone()
                } else {
                    Vec::new()
                },
                generation_id: if version >= 2 { 7 } else { -1 },
                rack_id: if version >= 3 {
                    s.rack_id.clone()
                } else {
                    None
                },
            };
            assert_eq!(
                decode_subscription(&encoded).unwrap(),
                expected,
                "version {version}"
            );
        }
        // Newer versions decode as 3 and may carry fields after the known ones.
        let mut newer = encode_subscription(&s, 3).to_vec();
        newer[1] = 9;
        newer.extend_from_slice(b"\0\0\0\0");
        assert_eq!(decode_subscription(&newer).unwrap(), s);
        let empty = Subscription::default();
        assert_eq!(
            decode_subscription(&encode_subscription(&empty, 1)).unwrap(),
            empty
        );
    }

    #[test]
    fn subscription_matches_the_java_layout() {
        let s = Subscription {
            owned_partitions: tps(&[("t", &[0])]),
            ..sub(&["t"])
        };
        let expected: &[u8] =
            b"\0\x01\0\0\0\x01\0\x01t\xff\xff\xff\xff\0\0\0\x01\0\x01t\0\0\0\x01\0\0\0\0";
        assert_eq!(&encode_subscription(&s, 1)[..], expected);
    }

    #[test]
    fn assignment_round_trips_every_version() {
        let a = Assignment {
            partitions: tps(&[("orders", &[0, 2]), ("payments", &[])]),
            user_data: Some(Bytes::from_static(b"ud")),
        };
        let encoded = encode_assignment(&a);
        assert_eq!(decode_assignment(&encoded).unwrap(), a);
        for version in [0i16, 1, 2, 3, 4, 100] {
            let mut bytes = encoded.to_vec();
            bytes[..2].copy_from_slice(&version.to_be_bytes());
            assert_eq!(decode_assignment(&bytes).unwrap(), a, "version {version}");
        }
        assert_eq!(decode_assignment(b"").unwrap(), Assignment::default());
        let empty = Assignment::default();
        assert_eq!(
            decode_assignment(&encode_assignment(&empty)).unwrap(),
            empty
        );
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        for version in 0..=3 {
            let bytes = encode_subscription(&full_subscription(), version);
            for cut in 0..bytes.len() {
                assert!(
                    decode_subscription(&bytes[..cut]).is_err(),
                    "v{version} cut at {cut}"
                );
            }
        }
        let bytes = encode_assignment(&Assignment {
            partitions: tps(&[("t", &[1, 2])]),
            user_data: None,
        });
        for cut in 1..bytes.len() {
            assert!(decode_assignment(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Huge counts, negative lengths and versions, invalid UTF-8, oversized input.
        for bad in [
            &b"\0\x01\x7f\xff\xff\xff"[..],
            b"\0\x01\0\0\0\x01\xff\xfe",
            b"\0\x01\0\0\0\x01\xff\xff\xff\xff\xff\xff",
            b"\xff\xff\0\0\0\0\xff\xff\xff\xff",
            b"\0\0\0\0\0\x01\0\x02\xc3\x28\xff\xff\xff\xff",
        ] {
            assert!(decode_subscription(bad).is_err(), "{bad:?}");
            assert!(decode_assignment(bad).is_err(), "{bad:?}");
        }
        assert!(decode_subscription(&vec![0; MAX_ENCODED_LEN + 1]).is_err());
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.below(40))
                .map(|_| match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    _ => rng.next() as u8,
                })
                .collect();
            let _ = decode_subscription(&bytes);
            let _ = decode_assignment(&bytes);
            let _ = decode_sticky_user_data(&bytes);
        }
    }

    #[test]
    fn assignors_by_name() {
        for (name, expected) in [
            ("range", "range"),
            ("RoundRobin", "roundrobin"),
            (" sticky ", "sticky"),
            ("org.apache.kafka.clients.consumer.RangeAssignor", "range"),
            (
                "org.apache.kafka.clients.consumer.RoundRobinAssignor",
                "roundrobin",
            ),
            ("org.apache.kafka.clients.consumer.StickyAssignor", "sticky"),
        ] {
            assert_eq!(assignor_by_name(name).unwrap().name(), expected);
        }
        for name in [
            "cooperative-sticky",
            "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
            "",
        ] {
            assert!(assignor_by_name(name).is_none());
        }
    }
}
