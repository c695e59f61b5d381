//! [`GroupCoordinator`]: the actor of one `__consumer_offsets` partition this broker leads.
//! It owns the [`Group`]s hashed to that partition and the partition's materialised view in
//! sled, and it is the only writer of group records to that partition.
//!
//! Start: the actor loads before it reads its mailbox (`ctx.wait`): the sled tree of the
//! partition (its applied log offset and topic id) → catch-up from the log after that
//! offset through the partition's replica (`Fetch`) → groups rebuilt. A view whose topic id
//! differs (a re-created topic) or whose applied offset is at or past the log end (the view
//! is ahead of the log, and the log is the truth) is cleared and rebuilt from the log. Only
//! then does the coordinator register itself where [`Groups::coordinator_for`] finds it;
//! until then requests get COORDINATOR_LOAD_IN_PROGRESS.
//!
//! Writes: every commit and group-metadata change is one record batch appended with
//! acks=all through the replica; it is applied to memory and to sled (one atomic sled
//! batch, with the new applied offset) only once the append succeeded, and only then is
//! the request answered.
//!
//! [`Groups::coordinator_for`]: super::Groups::coordinator_for

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use actix::fut::{ActorFutureExt, WrapFuture};
use actix::{
    Actor, ActorContext, Addr, AsyncContext, Context, Handler, Message, ResponseActFuture,
    ResponseFuture,
};
use tokio::sync::oneshot;

use super::messages::{
    CommitOffset, DeleteGroup, DescribeGroup, DescribedGroup, FetchedOffset, Heartbeat, JoinGroup,
    JoinGroupResult, LeaveGroup, LeavingMember, ListGroups, ListedGroup, OffsetCommit,
    OffsetDelete, OffsetFetch, SyncGroup, SyncGroupResult,
};
use super::records::{
    self, decode_key, decode_value, encode_group_value, encode_key, encode_offset_value, RecordKey,
    RecordValue,
};
use super::state::{Effects, Group, GroupState};
use super::{partition_for, GroupConfig, GroupError};
use crate::log::checkpoint::TopicPartition;
use crate::replica::messages::{Fetch, Produce, Status, READ_UNCOMMITTED};
use crate::replica::PartitionReplica;

/// sled marker key: the last log offset applied to the view (i64, big-endian).
const APPLIED_KEY: &[u8] = b"\xffapplied";
/// sled marker key: the topic id the view was built from.
const TOPIC_ID_KEY: &[u8] = b"\xfftopic_id";
/// How much of the log one load step reads (Kafka's `offsets.load.buffer.size`).
const LOAD_CHUNK: u64 = 5 << 20;
/// Messages the coordinator may queue before senders wait.
const MAILBOX_CAPACITY: usize = 4096;
/// How often timers (sessions, rebalance deadlines) are checked.
const TICK: Duration = Duration::from_millis(100);

/// Where loaded coordinators are published (partition → address).
pub(crate) type Registry = Arc<RwLock<HashMap<i32, Addr<GroupCoordinator>>>>;

/// A record to append: key bytes and value bytes (`None`: tombstone).
type Write = (Vec<u8>, Option<Vec<u8>>);

/// The coordinator of one `__consumer_offsets` partition.
pub struct GroupCoordinator {
    partition: i32,
    partitions: i32,
    replica: Addr<PartitionReplica>,
    tree: sled::Tree,
    config: Arc<GroupConfig>,
    registry: Registry,
    groups: HashMap<String, Group>,
    /// Log offset of the latest applied record per key (appends may complete out of order).
    positions: HashMap<Vec<u8>, i64>,
    /// The last log offset applied to the view.
    applied: i64,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("partition", &self.partition)
            .field("groups", &self.groups.len())
            .finish()
    }
}

fn now_ms() -> i64 {
    crate::replica::now_ms()
}

impl GroupCoordinator {
    pub(crate) fn new(
        partition: i32,
        partitions: i32,
        replica: Addr<PartitionReplica>,
        tree: sled::Tree,
        config: Arc<GroupConfig>,
        registry: Registry,
    ) -> GroupCoordinator {
        GroupCoordinator {
            partition,
            partitions,
            replica,
            tree,
            config,
            registry,
            groups: HashMap::new(),
            positions: HashMap::new(),
            applied: -1,
        }
    }

    fn check_owner(&self, group_id: &str) -> Result<(), GroupError> {
        if partition_for(group_id, self.partitions) == self.partition {
            Ok(())
        } else {
            Err(GroupError::NotCoordinator(group_id.to_string()))
        }
    }

    /// Appends `writes` as one batch (acks=all); answers the base offset once the log has
    /// them. The caller then applies them with [`GroupCoordinator::apply_written`].
    fn append(&self, writes: &[Write]) -> impl Future<Output = Result<i64, GroupError>> {
        let timeout_ms = self.config.offsets_commit_timeout_ms;
        let now = now_ms();
        // Sent now, not when the returned future is first polled: actix polls an actor's
        // pending futures in no fixed order, and two commits of one key must reach the log in
        // the order their requests came (a later async commit must not be overwritten by an
        // earlier one).
        let produced = records::build_batch(writes, now).map(|records| {
            self.replica.send(Produce {
                records: records.into(),
                acks: -1,
                timeout_ms,
                now_ms: now,
            })
        });
        async move {
            let produced = produced?
                .await
                .map_err(|e| GroupError::NotCoordinator(format!("offsets partition: {e}")))?
                .map_err(storage_error)?;
            Ok(produced.base_offset)
        }
    }

    /// Applies appended `writes` (at `base`, `base + 1`, ...) to the sled view, in log
    /// order whatever order appends complete in: a key already applied at a later offset
    /// keeps its value. Answers, per write, whether it was applied (is the latest).
    fn apply_written(&mut self, writes: &[Write], base: i64) -> Vec<bool> {
        let mut b = sled::Batch::default();
        let mut fresh = Vec::with_capacity(writes.len());
        for (i, (k, v)) in writes.iter().enumerate() {
            let at = base + i as i64;
            let newer = self.positions.get(k).is_none_or(|p| *p < at);
            fresh.push(newer);
            if !newer {
                continue;
            }
            self.positions.insert(k.clone(), at);
            match v {
                Some(v) => b.insert(k.as_slice(), v.as_slice()),
                None => b.remove(k.as_slice()),
            }
        }
        let last = base + writes.len() as i64 - 1;
        if last > self.applied {
            self.applied = last;
            b.insert(APPLIED_KEY, &last.to_be_bytes());
        }
        if let Err(e) = self.tree.apply_batch(b) {
            // The log has them: the next load catches the view up.
            tracing::warn!(error = %e, "cannot update the offsets view in sled");
        }
        fresh
    }

    /// Appends the group's metadata (a tombstone once Dead) in the background.
    fn persist_metadata(&self, group_id: &str, ctx: &mut Context<Self>) {
        let Some(group) = self.groups.get(group_id) else {
            return;
        };
        let key = encode_key(&RecordKey::Group {
            group: group_id.to_string(),
        });
        let value =
            (group.state != GroupState::Dead).then(|| encode_group_value(&group.to_value()));
        let id = group_id.to_string();
        let writes = vec![(key, value)];
        ctx.spawn(
            self.append(&writes)
                .into_actor(self)
                .map(move |result, act, _| match result {
                    Ok(base) => {
                        act.apply_written(&writes, base);
                    }
                    Err(e) => {
                        tracing::warn!(group = %id, error = %e, "cannot persist group metadata")
                    }
                }),
        );
    }

    fn apply_effects(&mut self, group_id: &str, effects: Effects, ctx: &mut Context<Self>) {
        if effects.persist_metadata {
            self.persist_metadata(group_id, ctx);
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let ms = now_ms();
        let config = Arc::clone(&self.config);
        let due: Vec<String> = self
            .groups
            .iter_mut()
            .filter_map(|(id, g)| {
                g.tick(&config, now, ms)
                    .persist_metadata
                    .then(|| id.clone())
            })
            .collect();
        for id in due {
            self.persist_metadata(&id, ctx);
        }
    }

    /// Offsets retention: tombstones for expired offsets of groups without members; a group
    /// left with no offsets and no members is removed.
    fn expire_offsets(&mut self, ctx: &mut Context<Self>) {
        let ms = now_ms();
        let retention = self.config.offsets_retention_ms;
        for (id, group) in &self.groups {
            let expired = group.expired_offsets(retention, ms);
            if expired.is_empty() {
                continue;
            }
            let all = expired.len() == group.offsets.len() && group.state == GroupState::Empty;
            let mut writes = offset_tombstones(id, expired.iter());
            if all {
                writes.push((encode_key(&RecordKey::Group { group: id.clone() }), None));
            }
            tracing::info!(group = %id, offsets = expired.len(), "expiring committed offsets");
            let id = id.clone();
            ctx.spawn(
                self.append(&writes)
                    .into_actor(self)
                    .map(move |result, act, _| {
                        match result {
                            Ok(base) => {
                                act.apply_written(&writes, base);
                            }
                            Err(e) => {
                                tracing::warn!(group = %id, error = %e, "cannot expire offsets");
                                return;
                            }
                        }
                        if let Some(g) = act.groups.get_mut(&id) {
                            for k in &expired {
                                g.offsets.remove(k);
                            }
                            if all && g.is_empty() && g.offsets.is_empty() {
                                act.groups.remove(&id);
                            }
                        }
                    }),
            );
        }
    }

    /// Rebuilds the groups from the loaded view.
    fn rebuild(&mut self, view: Vec<(Vec<u8>, Vec<u8>)>) {
        let now = Instant::now();
        let mut offsets = Vec::new();
        for (k, v) in view {
            let (key, value) = match decode_key(&k)
                .and_then(|key| decode_value(&key, Some(&v)).map(|value| (key, value)))
            {
                Ok((key, Some(value))) => (key, value),
                Ok((_, None)) => continue,
                Err(e) => {
                    tracing::warn!(partition = self.partition, error = %e, "skipping an unreadable offsets record");
                    continue;
                }
            };
            match (key, value) {
                (RecordKey::Group { group }, RecordValue::Group(g)) => {
                    let loaded = Group::from_value(&group, g, now);
                    self.groups.insert(group, loaded);
                }
                (
                    RecordKey::Offset {
                        group,
                        topic,
                        partition,
                    },
                    RecordValue::Offset(o),
                ) => offsets.push((group, topic, partition, o)),
                _ => {}
            }
        }
        let ms = now_ms();
        for (group, topic, partition, o) in offsets {
            self.groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, ms))
                .offsets
                .insert((topic, partition), o);
        }
    }
}

/// Tombstones for the committed offsets of `group` on `partitions`.
fn offset_tombstones<'a>(
    group: &str,
    partitions: impl Iterator<Item = &'a (String, i32)>,
) -> Vec<Write> {
    partitions
        .map(|(topic, partition)| {
            let key = RecordKey::Offset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            (encode_key(&key), None)
        })
        .collect()
}

/// The actor error behind a failed append, as a group error (a moved partition means
/// another coordinator).
fn storage_error(e: crate::Error) -> GroupError {
    match e {
        crate::Error::NotLeaderOrFollower(p) | crate::Error::Stopped(p) => {
            GroupError::NotCoordinator(p)
        }
        crate::Error::Timeout(t) => GroupError::Timeout(t),
        other => other.into(),
    }
}

/// Loads the partition's view: sled, then the log after the applied offset.
/// What a load gives: the view's records and the last log offset applied to it.
type Loaded = (Vec<(Vec<u8>, Vec<u8>)>, i64);

async fn load(replica: Addr<PartitionReplica>, tree: sled::Tree) -> Result<Loaded, GroupError> {
    let status = replica
        .send(Status)
        .await
        .map_err(|e| GroupError::CoordinatorNotAvailable(format!("offsets partition: {e}")))?
        .map_err(storage_error)?;
    let sled_err = |e: sled::Error| {
        GroupError::from(crate::Error::Decode {
            what: "the offsets view in sled".into(),
            reason: e.to_string(),
        })
    };
    let topic_id = tree.get(TOPIC_ID_KEY).map_err(sled_err)?;
    let applied = tree
        .get(APPLIED_KEY)
        .map_err(sled_err)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(i64::from_be_bytes);
    let stale_topic = topic_id.as_deref() != Some(status.topic_id.as_bytes());
    let ahead = applied.is_some_and(|a| a >= status.log_end_offset);
    if stale_topic || ahead {
        if ahead && !stale_topic {
            tracing::warn!(partition = %status.topic_partition, "the offsets view in sled is ahead of the log; rebuilding it from the log");
        }
        tree.clear().map_err(sled_err)?;
        tree.insert(TOPIC_ID_KEY, status.topic_id.as_bytes())
            .map_err(sled_err)?;
    }
    let mut offset = match applied {
        Some(a) if !stale_topic && !ahead => (a + 1).max(status.log_start_offset),
        _ => status.log_start_offset,
    };
    let mut replayed = 0usize;
    while offset < status.high_watermark {
        let fetched = replica
            .send(Fetch {
                offset,
                max_bytes: LOAD_CHUNK,
                min_one_batch: true,
                isolation_level: READ_UNCOMMITTED,
                now_ms: now_ms(),
            })
            .await
            .map_err(|e| GroupError::CoordinatorNotAvailable(format!("offsets partition: {e}")))?
            .map_err(storage_error)?;
        let Some(slice) = fetched.records else { break };
        let bytes = tokio::task::spawn_blocking(move || slice.read_to_vec())
            .await
            .map_err(|e| GroupError::CoordinatorNotAvailable(e.to_string()))?
            .map_err(|e| {
                GroupError::from(crate::Error::Log(crate::log::LogError::Io {
                    op: "read",
                    path: status.topic_partition.to_string().into(),
                    source: e,
                }))
            })?;
        let (records, next) =
            records::parse_batches(&bytes, crate::log::segment::MAX_DECOMPRESSED_BATCH)?;
        let Some(next) = next else { break };
        let mut b = sled::Batch::default();
        for (at, key, value) in records {
            if at < offset {
                continue;
            }
            replayed += 1;
            match value {
                Some(v) => b.insert(key, v),
                None => b.remove(key),
            }
        }
        b.insert(APPLIED_KEY, &(next - 1).to_be_bytes());
        tree.apply_batch(b).map_err(sled_err)?;
        offset = next;
    }
    let mut view = Vec::new();
    for entry in tree.iter() {
        let (k, v) = entry.map_err(sled_err)?;
        if k.first() == Some(&0xff) {
            continue;
        }
        view.push((k.to_vec(), v.to_vec()));
    }
    tracing::info!(partition = %status.topic_partition, records = view.len(), replayed, "group coordinator loaded");
    Ok((view, offset - 1))
}

impl Actor for GroupCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Requests reach the mailbox in the order connections send them as long as no
        // sender has to wait for room (actix's default capacity is 16).
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        let loading = load(self.replica.clone(), self.tree.clone());
        ctx.wait(loading.into_actor(self).map(|result, act, ctx| match result {
            Ok((view, applied)) => {
                act.applied = applied;
                act.rebuild(view);
                act.registry
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(act.partition, ctx.address());
                ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
                let every = Duration::from_millis(act.config.offsets_retention_check_interval_ms.max(1));
                ctx.run_interval(every, |act, ctx| act.expire_offsets(ctx));
            }
            Err(e) => {
                tracing::error!(partition = act.partition, error = %e, "cannot load the group coordinator");
                ctx.stop();
            }
        }));
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        let mut registry = self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if registry
            .get(&self.partition)
            .is_some_and(|a| *a == ctx.address())
        {
            registry.remove(&self.partition);
        }
        drop(registry);
        let error = GroupError::NotCoordinator(format!("partition {}", self.partition));
        for g in self.groups.values_mut() {
            g.fail_all(&error);
        }
    }
}

/// Stop: parked joins and syncs answer NOT_COORDINATOR; the actor stops.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct StopCoordinator;

impl Handler<StopCoordinator> for GroupCoordinator {
    type Result = ();
    fn handle(&mut self, _: StopCoordinator, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn wait_for<T: 'static>(
    rx: oneshot::Receiver<Result<T, GroupError>>,
) -> ResponseFuture<Result<T, GroupError>> {
    Box::pin(async move {
        rx.await.unwrap_or_else(|_| {
            Err(GroupError::CoordinatorNotAvailable(
                "the coordinator stopped".into(),
            ))
        })
    })
}

impl Handler<JoinGroup> for GroupCoordinator {
    type Result = ResponseFuture<Result<JoinGroupResult, GroupError>>;
    fn handle(&mut self, msg: JoinGroup, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if msg.group_id.is_empty() {
            let _ = tx.send(Err(GroupError::InvalidGroupId(msg.group_id)));
            return wait_for(rx);
        }
        if let Err(e) = self.check_owner(&msg.group_id) {
            let _ = tx.send(Err(e));
            return wait_for(rx);
        }
        let id = msg.group_id.clone();
        let ms = now_ms();
        let group = self
            .groups
            .entry(id.clone())
            .or_insert_with(|| Group::new(&id, ms));
        let effects = group.join(msg, tx, &self.config, Instant::now(), ms);
        self.apply_effects(&id, effects, ctx);
        wait_for(rx)
    }
}

impl Handler<SyncGroup> for GroupCoordinator {
    type Result = ResponseFuture<Result<SyncGroupResult, GroupError>>;
    fn handle(&mut self, msg: SyncGroup, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.check_owner(&msg.group_id) {
            let _ = tx.send(Err(e));
            return wait_for(rx);
        }
        let id = msg.group_id.clone();
        let Some(group) = self.groups.get_mut(&id) else {
            let _ = tx.send(Err(GroupError::UnknownMemberId(msg.member_id)));
            return wait_for(rx);
        };
        if let Some(generation) = group.sync(msg, tx, Instant::now()) {
            let key = encode_key(&RecordKey::Group { group: id.clone() });
            let value = encode_group_value(&group.to_value());
            let writes = vec![(key, Some(value))];
            ctx.spawn(
                self.append(&writes)
                    .into_actor(self)
                    .map(move |result, act, ctx| {
                        let result = result.map(|base| {
                            act.apply_written(&writes, base);
                        });
                        if let Some(g) = act.groups.get_mut(&id) {
                            let effects = g.sync_persisted(
                                generation,
                                result,
                                &act.config,
                                Instant::now(),
                                now_ms(),
                            );
                            act.apply_effects(&id, effects, ctx);
                        }
                    }),
            );
        }
        wait_for(rx)
    }
}

impl Handler<Heartbeat> for GroupCoordinator {
    type Result = Result<(), GroupError>;
    fn handle(&mut self, msg: Heartbeat, _: &mut Context<Self>) -> Self::Result {
        self.check_owner(&msg.group_id)?;
        match self.groups.get_mut(&msg.group_id) {
            Some(g) => g.heartbeat(&msg, Instant::now()),
            None => Err(GroupError::UnknownMemberId(msg.member_id)),
        }
    }
}

impl Handler<LeaveGroup> for GroupCoordinator {
    type Result = Result<Vec<(LeavingMember, Result<(), GroupError>)>, GroupError>;
    fn handle(&mut self, msg: LeaveGroup, ctx: &mut Context<Self>) -> Self::Result {
        self.check_owner(&msg.group_id)?;
        let Some(group) = self.groups.get_mut(&msg.group_id) else {
            return Ok(msg
                .members
                .into_iter()
                .map(|m| {
                    let id = m.member_id.clone();
                    (m, Err(GroupError::UnknownMemberId(id)))
                })
                .collect());
        };
        let (results, effects) = group.leave(msg.members, &self.config, Instant::now(), now_ms());
        self.apply_effects(&msg.group_id, effects, ctx);
        Ok(results)
    }
}

/// Per-partition results of a commit.
type CommitResults = Vec<(CommitOffset, Result<(), GroupError>)>;

impl Handler<OffsetCommit> for GroupCoordinator {
    type Result = ResponseActFuture<Self, Result<CommitResults, GroupError>>;
    fn handle(&mut self, msg: OffsetCommit, _: &mut Context<Self>) -> Self::Result {
        let refuse = |e| -> Self::Result { Box::pin(actix::fut::ready(Err(e))) };
        if msg.group_id.is_empty() {
            return refuse(GroupError::InvalidGroupId(msg.group_id));
        }
        if let Err(e) = self.check_owner(&msg.group_id) {
            return refuse(e);
        }
        let id = msg.group_id.clone();
        match self.groups.get(&id) {
            Some(g) if g.state != GroupState::Dead => {
                if let Err(e) = g.check_commit(&msg) {
                    return refuse(e);
                }
            }
            _ if msg.generation_id < 0 => {
                let ms = now_ms();
                self.groups.insert(id.clone(), Group::new(&id, ms));
            }
            _ => {
                return refuse(GroupError::IllegalGeneration {
                    got: msg.generation_id,
                    current: -1,
                })
            }
        }
        let mut results: Vec<(CommitOffset, Result<(), GroupError>)> = Vec::new();
        let mut writes = Vec::new();
        let mut values = Vec::new();
        for c in msg.offsets {
            match Group::offset_value(&c, &self.config, msg.retention_time_ms, msg.now_ms) {
                Ok(v) => {
                    let key = RecordKey::Offset {
                        group: id.clone(),
                        topic: c.topic.clone(),
                        partition: c.partition,
                    };
                    writes.push((encode_key(&key), Some(encode_offset_value(&v))));
                    values.push(((c.topic.clone(), c.partition), v));
                    results.push((c, Ok(())));
                }
                Err(e) => results.push((c, Err(e))),
            }
        }
        if writes.is_empty() {
            return Box::pin(actix::fut::ready(Ok(results)));
        }
        Box::pin(
            self.append(&writes)
                .into_actor(self)
                .map(move |result, act, _| match result {
                    Ok(base) => {
                        let fresh = act.apply_written(&writes, base);
                        if let Some(g) = act.groups.get_mut(&id) {
                            for (value, fresh) in values.into_iter().zip(fresh) {
                                if fresh {
                                    g.offsets.insert(value.0, value.1);
                                }
                            }
                        }
                        Ok(results)
                    }
                    Err(e) => Ok(results
                        .into_iter()
                        .map(|(c, r)| (c, r.and(Err(e.clone()))))
                        .collect()),
                }),
        )
    }
}

impl Handler<OffsetFetch> for GroupCoordinator {
    type Result = Result<Vec<FetchedOffset>, GroupError>;
    fn handle(&mut self, msg: OffsetFetch, _: &mut Context<Self>) -> Self::Result {
        self.check_owner(&msg.group_id)?;
        let group = self.groups.get(&msg.group_id);
        let fetched = |topic: &str, partition: i32| match group
            .and_then(|g| g.offsets.get(&(topic.to_string(), partition)))
        {
            Some(v) => FetchedOffset {
                topic: topic.to_string(),
                partition,
                offset: v.offset,
                leader_epoch: v.leader_epoch,
                metadata: Some(v.metadata.clone()),
            },
            None => FetchedOffset {
                topic: topic.to_string(),
                partition,
                offset: -1,
                leader_epoch: -1,
                metadata: Some(String::new()),
            },
        };
        Ok(match msg.partitions {
            Some(parts) => parts.iter().map(|(t, p)| fetched(t, *p)).collect(),
            None => group
                .map(|g| g.offsets.keys().map(|(t, p)| fetched(t, *p)).collect())
                .unwrap_or_default(),
        })
    }
}

impl Handler<ListGroups> for GroupCoordinator {
    type Result = Result<Vec<ListedGroup>, GroupError>;
    fn handle(&mut self, msg: ListGroups, _: &mut Context<Self>) -> Self::Result {
        let mut out: Vec<ListedGroup> = self
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| {
                msg.states.is_empty()
                    || msg
                        .states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name().to_string(),
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }
}

impl Handler<DescribeGroup> for GroupCoordinator {
    type Result = Result<DescribedGroup, GroupError>;
    fn handle(&mut self, msg: DescribeGroup, _: &mut Context<Self>) -> Self::Result {
        self.check_owner(&msg.group_id)?;
        Ok(match self.groups.get(&msg.group_id) {
            Some(g) => g.describe(),
            None => DescribedGroup {
                group_id: msg.group_id,
                state: GroupState::Dead.name().to_string(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            },
        })
    }
}

impl Handler<DeleteGroup> for GroupCoordinator {
    type Result = ResponseActFuture<Self, Result<(), GroupError>>;
    fn handle(&mut self, msg: DeleteGroup, _: &mut Context<Self>) -> Self::Result {
        let refuse = |e| -> Self::Result { Box::pin(actix::fut::ready(Err(e))) };
        if let Err(e) = self.check_owner(&msg.group_id) {
            return refuse(e);
        }
        let id = msg.group_id;
        let Some(group) = self.groups.get(&id).filter(|g| g.state != GroupState::Dead) else {
            return refuse(GroupError::GroupIdNotFound(id));
        };
        if !group.is_empty() {
            return refuse(GroupError::NonEmptyGroup(id));
        }
        let mut writes = offset_tombstones(&id, group.offsets.keys());
        writes.push((encode_key(&RecordKey::Group { group: id.clone() }), None));
        Box::pin(
            self.append(&writes)
                .into_actor(self)
                .map(move |result, act, _| {
                    let base = result?;
                    act.apply_written(&writes, base);
                    act.groups.remove(&id);
                    tracing::info!(group = %id, "group deleted");
                    Ok(())
                }),
        )
    }
}

/// Per-partition results of an OffsetDelete.
type DeleteResults = Vec<((String, i32), Result<(), GroupError>)>;

impl Handler<OffsetDelete> for GroupCoordinator {
    type Result = ResponseActFuture<Self, Result<DeleteResults, GroupError>>;
    fn handle(&mut self, msg: OffsetDelete, _: &mut Context<Self>) -> Self::Result {
        let refuse = |e| -> Self::Result { Box::pin(actix::fut::ready(Err(e))) };
        if let Err(e) = self.check_owner(&msg.group_id) {
            return refuse(e);
        }
        let id = msg.group_id;
        let Some(group) = self.groups.get(&id).filter(|g| g.state != GroupState::Dead) else {
            return refuse(GroupError::GroupIdNotFound(id));
        };
        let subscribed = group.subscribed_topics();
        let mut results = Vec::new();
        let mut writes = Vec::new();
        let mut deleted = Vec::new();
        for (topic, partition) in msg.partitions {
            if subscribed.contains(&topic) {
                let e = GroupError::GroupSubscribedToTopic(topic.clone());
                results.push(((topic, partition), Err(e)));
                continue;
            }
            if group.offsets.contains_key(&(topic.clone(), partition)) {
                let key = RecordKey::Offset {
                    group: id.clone(),
                    topic: topic.clone(),
                    partition,
                };
                writes.push((encode_key(&key), None));
                deleted.push((topic.clone(), partition));
            }
            results.push(((topic, partition), Ok(())));
        }
        if writes.is_empty() {
            return Box::pin(actix::fut::ready(Ok(results)));
        }
        Box::pin(
            self.append(&writes)
                .into_actor(self)
                .map(move |result, act, _| match result {
                    Ok(base) => {
                        act.apply_written(&writes, base);
                        if let Some(g) = act.groups.get_mut(&id) {
                            for k in &deleted {
                                g.offsets.remove(k);
                            }
                        }
                        Ok(results)
                    }
                    Err(e) => Ok(results
                        .into_iter()
                        .map(|(k, r)| (k, r.and(Err(e.clone()))))
                        .collect()),
                }),
        )
    }
}

/// The `__consumer_offsets` partition's topic-partition.
pub(crate) fn offsets_tp(partition: i32) -> TopicPartition {
    TopicPartition::new(super::OFFSETS_TOPIC, partition)
}
