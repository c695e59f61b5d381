//! One consumer group's state machine (Kafka's classic group protocol), plain Rust: no
//! actix, no I/O, time passed in. The [`GroupCoordinator`](super::GroupCoordinator) owns a
//! [`Group`] per group, persists what the methods ask it to, and drives the timers with
//! [`Group::tick`].
//!
//! States: Empty → PreparingRebalance → CompletingRebalance → Stable (and Dead once
//! deleted or expired). A rebalance completes when every member has rejoined, or when the
//! largest rebalance timeout passes (the members that did not rejoin are dropped); the first
//! rebalance of an empty group waits `group.initial.rebalance.delay.ms` for more members
//! (extended by each join, never past the rebalance timeout). Join and sync answers wait in
//! oneshot channels until their step completes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::messages::{
    CommitOffset, DescribedGroup, DescribedMember, Heartbeat, JoinGroup, JoinGroupResult,
    JoinedMember, LeavingMember, OffsetCommit, SyncGroup, SyncGroupResult,
};
use super::records::{subscription_topics, GroupValue, MemberValue, OffsetValue};
use super::{GroupConfig, GroupError};

/// Where a parked JoinGroup answer goes.
pub(crate) type JoinReply = oneshot::Sender<Result<JoinGroupResult, GroupError>>;
/// Where a parked SyncGroup answer goes.
pub(crate) type SyncReply = oneshot::Sender<Result<SyncGroupResult, GroupError>>;

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// Kafka's name for the state (ListGroups, DescribeGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) session_timeout_ms: i32,
    pub(crate) rebalance_timeout_ms: i32,
    /// (name, metadata) in the member's order of preference.
    pub(crate) protocols: Vec<(String, Vec<u8>)>,
    pub(crate) assignment: Vec<u8>,
    join: Option<JoinReply>,
    sync: Option<SyncReply>,
    /// Session expiry: renewed by heartbeats, joins and syncs.
    deadline: Instant,
    /// Join order (the first member leads when the leader left).
    order: u64,
}

impl Member {
    fn renew(&mut self, now: Instant) {
        self.deadline = now + ms(self.session_timeout_ms);
    }

    fn metadata(&self, protocol: Option<&str>) -> Vec<u8> {
        protocol
            .and_then(|p| self.protocols.iter().find(|(name, _)| name == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// LeaveGroup's per-member results, in request order.
pub(crate) type LeaveResults = Vec<(LeavingMember, Result<(), GroupError>)>;

/// What the coordinator must do after a call.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    /// The group's metadata changed in a way that is persisted (a new generation with its
    /// assignment, the group became Empty): append it.
    pub(crate) persist_metadata: bool,
}

/// One group.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) id: String,
    pub(crate) state: GroupState,
    /// When the state last changed (ms since the epoch): offsets retention of empty groups.
    pub(crate) state_since_ms: i64,
    pub(crate) generation: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol: Option<String>,
    pub(crate) leader: Option<String>,
    pub(crate) members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they rejoin or time out.
    pending: HashMap<String, Instant>,
    /// group.instance.id → member id.
    statics: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    /// The initial rebalance delay of a new group: (until, cap).
    initial_delay: Option<(Instant, Instant)>,
    /// Committed offsets.
    pub(crate) offsets: BTreeMap<(String, i32), OffsetValue>,
    next_order: u64,
}

fn ms(v: i32) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

fn new_member_id(client_id: &str) -> String {
    format!(
        "{client_id}-{}",
        crate::metadata::ids::uuid_string(&random_uuid())
    )
}

fn random_uuid() -> [u8; 16] {
    let a = crate::metadata::ids::random_u64().to_be_bytes();
    let b = crate::metadata::ids::random_u64().to_be_bytes();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a);
    out[8..].copy_from_slice(&b);
    out
}

impl Group {
    /// A new, empty group.
    pub(crate) fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            rebalance_deadline: None,
            initial_delay: None,
            offsets: BTreeMap::new(),
            next_order: 0,
        }
    }

    /// The group as its persisted metadata says (loading): members get a full session
    /// from `now`; Stable with members, Empty without.
    pub(crate) fn from_value(id: &str, v: GroupValue, now: Instant) -> Group {
        let mut g = Group::new(id, v.current_state_timestamp);
        g.generation = v.generation;
        g.protocol_type = (!v.protocol_type.is_empty()).then_some(v.protocol_type);
        g.protocol = v.protocol;
        g.leader = v.leader;
        for m in v.members {
            let order = g.next_order;
            g.next_order += 1;
            if let Some(instance) = &m.group_instance_id {
                g.statics.insert(instance.clone(), m.member_id.clone());
            }
            let protocols = match &g.protocol {
                Some(p) => vec![(p.clone(), m.subscription)],
                None => Vec::new(),
            };
            let mut member = Member {
                id: m.member_id.clone(),
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout_ms: m.session_timeout,
                rebalance_timeout_ms: m.rebalance_timeout,
                protocols,
                assignment: m.assignment,
                join: None,
                sync: None,
                deadline: now,
                order,
            };
            member.renew(now);
            g.members.insert(m.member_id, member);
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }

    /// The persisted form of the group's metadata.
    pub(crate) fn to_value(&self) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_since_ms,
            members: self
                .ordered_members()
                .into_iter()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(self.protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    fn ordered_members(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.order);
        v
    }

    fn set_state(&mut self, state: GroupState, now_ms: i64) {
        if self.state != state {
            self.state = state;
            self.state_since_ms = now_ms;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members and pending members (what `group.max.size` bounds).
    pub(crate) fn size(&self) -> usize {
        self.members.len() + self.pending.len()
    }

    /// The protocols every member (and `extra`) supports.
    fn candidates(&self, extra: Option<&[(String, Vec<u8>)]>) -> Vec<String> {
        let mut sets = self
            .members
            .values()
            .map(|m| m.protocols.as_slice())
            .chain(extra);
        let Some(first) = sets.next() else {
            return Vec::new();
        };
        let mut out: Vec<String> = first.iter().map(|(n, _)| n.clone()).collect();
        for set in sets {
            out.retain(|n| set.iter().any(|(m, _)| m == n));
        }
        out
    }

    /// Kafka's protocol selection: every member votes for its most preferred candidate;
    /// the most votes win (ties: the first candidate in the first member's order).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates(None);
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == name) {
                    v.1 += 1;
                }
            }
        }
        let best = votes.iter().map(|(_, n)| *n).max()?;
        votes.into_iter().find(|(_, n)| *n == best).map(|(c, _)| c)
    }

    fn check_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Vec<u8>)],
    ) -> Result<(), GroupError> {
        if protocol_type.is_empty() || protocols.is_empty() {
            return Err(GroupError::InconsistentGroupProtocol(
                "empty protocol type or protocol list".into(),
            ));
        }
        if self.members.is_empty() {
            return Ok(());
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return Err(GroupError::InconsistentGroupProtocol(format!(
                "protocol type {protocol_type:?} differs from the group's {:?}",
                self.protocol_type.as_deref().unwrap_or("")
            )));
        }
        if self.candidates(Some(protocols)).is_empty() {
            return Err(GroupError::InconsistentGroupProtocol(
                "no protocol in common with the group's members".into(),
            ));
        }
        Ok(())
    }

    /// The answer a member gets for the current generation.
    fn join_result(&self, member_id: &str) -> JoinGroupResult {
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinGroupResult {
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_string(),
            members: if is_leader {
                self.ordered_members()
                    .into_iter()
                    .map(|m| JoinedMember {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        metadata: m.metadata(self.protocol.as_deref()),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Static membership: `member_id` must be the one `instance_id` maps to.
    fn check_static(&self, instance_id: Option<&str>, member_id: &str) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            if let Some(current) = self.statics.get(instance) {
                if current != member_id {
                    return Err(GroupError::FencedInstanceId(instance.to_string()));
                }
            }
        }
        Ok(())
    }

    /// JoinGroup. `reply` is answered now or when the rebalance completes.
    pub(crate) fn join(
        &mut self,
        req: JoinGroup,
        reply: JoinReply,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> Effects {
        let answer_now = |reply: JoinReply, r| {
            let _ = reply.send(r);
            Effects::default()
        };
        if req.session_timeout_ms < cfg.group_min_session_timeout_ms
            || req.session_timeout_ms > cfg.group_max_session_timeout_ms
        {
            return answer_now(
                reply,
                Err(GroupError::InvalidSessionTimeout(req.session_timeout_ms)),
            );
        }
        if let Err(e) = self.check_protocols(&req.protocol_type, &req.protocols) {
            return answer_now(reply, Err(e));
        }
        if self.state == GroupState::Dead {
            return answer_now(
                reply,
                Err(GroupError::CoordinatorNotAvailable(format!(
                    "group {} is being removed",
                    self.id
                ))),
            );
        }
        if req.member_id.is_empty() {
            return self.join_new(req, reply, cfg, now, now_ms);
        }
        if self.pending.remove(&req.member_id).is_some() {
            return self.add_member(req.member_id.clone(), req, reply, cfg, now, now_ms);
        }
        if let Err(e) = self.check_static(req.group_instance_id.as_deref(), &req.member_id) {
            return answer_now(reply, Err(e));
        }
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return answer_now(reply, Err(GroupError::UnknownMemberId(req.member_id)));
        };
        let changed = member.protocols != req.protocols;
        member.protocols = req.protocols;
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.renew(now);
        let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.park_join(&req.member_id, reply);
                self.try_complete_join(now, now_ms)
            }
            GroupState::CompletingRebalance if !changed => {
                answer_now(reply, Ok(self.join_result(&req.member_id)))
            }
            GroupState::Stable if !changed && !is_leader => {
                answer_now(reply, Ok(self.join_result(&req.member_id)))
            }
            GroupState::Empty => answer_now(reply, Err(GroupError::UnknownMemberId(req.member_id))),
            _ => {
                self.park_join(&req.member_id, reply);
                self.prepare_rebalance(cfg, now, now_ms);
                self.try_complete_join(now, now_ms)
            }
        }
    }

    fn park_join(&mut self, member_id: &str, reply: JoinReply) {
        if let Some(m) = self.members.get_mut(member_id) {
            if let Some(old) = m.join.replace(reply) {
                let _ = old.send(Err(GroupError::RebalanceInProgress));
            }
        }
    }

    fn join_new(
        &mut self,
        req: JoinGroup,
        reply: JoinReply,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> Effects {
        // A static member rejoining after a restart takes over its instance's place.
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.statics.get(&instance).cloned() {
                if let Some(mut member) = self.members.remove(&old_id) {
                    let new_id = new_member_id(&req.client_id);
                    if let Some(j) = member.join.take() {
                        let _ = j.send(Err(GroupError::FencedInstanceId(instance.clone())));
                    }
                    if let Some(s) = member.sync.take() {
                        let _ = s.send(Err(GroupError::FencedInstanceId(instance.clone())));
                    }
                    let changed = member.protocols != req.protocols;
                    member.id = new_id.clone();
                    member.protocols = req.protocols.clone();
                    member.client_id = req.client_id.clone();
                    member.client_host = req.client_host.clone();
                    member.session_timeout_ms = req.session_timeout_ms;
                    member.rebalance_timeout_ms = req.rebalance_timeout_ms;
                    member.renew(now);
                    self.members.insert(new_id.clone(), member);
                    self.statics.insert(instance, new_id.clone());
                    if self.leader.as_deref() == Some(old_id.as_str()) {
                        self.leader = Some(new_id.clone());
                    }
                    return match self.state {
                        GroupState::Stable | GroupState::CompletingRebalance if !changed => {
                            let _ = reply.send(Ok(self.join_result(&new_id)));
                            // The new id must be persisted, or a coordinator move would fence it.
                            Effects {
                                persist_metadata: self.state == GroupState::Stable,
                            }
                        }
                        _ => {
                            self.park_join(&new_id, reply);
                            self.prepare_rebalance(cfg, now, now_ms);
                            self.try_complete_join(now, now_ms)
                        }
                    };
                }
            }
        }
        if self.size() >= cfg.group_max_size {
            let _ = reply.send(Err(GroupError::GroupMaxSizeReached(self.id.clone())));
            return Effects::default();
        }
        let id = new_member_id(&req.client_id);
        if req.require_known_member_id && req.group_instance_id.is_none() {
            self.pending
                .insert(id.clone(), now + ms(req.session_timeout_ms));
            let _ = reply.send(Err(GroupError::MemberIdRequired(id)));
            return Effects::default();
        }
        self.add_member(id, req, reply, cfg, now, now_ms)
    }

    fn add_member(
        &mut self,
        id: String,
        req: JoinGroup,
        reply: JoinReply,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> Effects {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.statics.insert(instance.clone(), id.clone());
        }
        let order = self.next_order;
        self.next_order += 1;
        let mut member = Member {
            id: id.clone(),
            instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols,
            assignment: Vec::new(),
            join: Some(reply),
            sync: None,
            deadline: now,
            order,
        };
        member.renew(now);
        self.members.insert(id, member);
        if let Some((until, cap)) = self.initial_delay {
            // A join during the initial delay extends it, never past the cap.
            let extended =
                (now + Duration::from_millis(cfg.group_initial_rebalance_delay_ms)).min(cap);
            self.initial_delay = Some((until.max(extended), cap));
        }
        self.prepare_rebalance(cfg, now, now_ms);
        self.try_complete_join(now, now_ms)
    }

    /// Starts a rebalance (no-op while one is being prepared): members awaiting their
    /// assignment are told to rejoin.
    fn prepare_rebalance(&mut self, cfg: &GroupConfig, now: Instant, now_ms: i64) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        for m in self.members.values_mut() {
            if let Some(s) = m.sync.take() {
                let _ = s.send(Err(GroupError::RebalanceInProgress));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.rebalance_deadline = Some(now + ms(timeout));
        if self.state == GroupState::Empty && cfg.group_initial_rebalance_delay_ms > 0 {
            let delay = Duration::from_millis(cfg.group_initial_rebalance_delay_ms);
            self.initial_delay = Some((now + delay, now + ms(timeout).max(delay)));
        }
        self.set_state(GroupState::PreparingRebalance, now_ms);
    }

    /// Completes the join phase when it is due: every member rejoined (and the initial
    /// delay passed), or the rebalance timeout passed.
    pub(crate) fn try_complete_join(&mut self, now: Instant, now_ms: i64) -> Effects {
        if self.state != GroupState::PreparingRebalance {
            return Effects::default();
        }
        let all_joined = self.members.values().all(|m| m.join.is_some());
        let delayed = self.initial_delay.is_some_and(|(until, _)| now < until);
        let timed_out = self.rebalance_deadline.is_some_and(|d| now >= d);
        if !(timed_out || (all_joined && !delayed)) {
            return Effects::default();
        }
        self.initial_delay = None;
        self.rebalance_deadline = None;
        // Members that did not rejoin in time are dropped.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            self.set_state(GroupState::Empty, now_ms);
            return Effects {
                persist_metadata: true,
            };
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.ordered_members().first().map(|m| m.id.clone());
        }
        self.set_state(GroupState::CompletingRebalance, now_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment.clear();
                m.renew(now);
                if let Some(reply) = m.join.take() {
                    let _ = reply.send(Ok(result));
                }
            }
        }
        Effects::default()
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(j) = m.join.take() {
                let _ = j.send(Err(GroupError::UnknownMemberId(id.to_string())));
            }
            if let Some(s) = m.sync.take() {
                let _ = s.send(Err(GroupError::UnknownMemberId(id.to_string())));
            }
            if let Some(instance) = &m.instance_id {
                if self.statics.get(instance).map(String::as_str) == Some(id) {
                    self.statics.remove(instance);
                }
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    /// SyncGroup. `Ok(Some(generation))`: the leader's assignment is stored and must be
    /// persisted; then call [`Group::sync_persisted`].
    pub(crate) fn sync(&mut self, req: SyncGroup, reply: SyncReply, now: Instant) -> Option<i32> {
        let fail = |reply: SyncReply, e| {
            let _ = reply.send(Err(e));
            None
        };
        if let Err(e) = self.check_static(req.group_instance_id.as_deref(), &req.member_id) {
            return fail(reply, e);
        }
        if !self.members.contains_key(&req.member_id) {
            return fail(reply, GroupError::UnknownMemberId(req.member_id));
        }
        if req.generation_id != self.generation {
            return fail(
                reply,
                GroupError::IllegalGeneration {
                    got: req.generation_id,
                    current: self.generation,
                },
            );
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != self.protocol.as_ref())
        {
            return fail(
                reply,
                GroupError::InconsistentGroupProtocol("protocol differs from the group's".into()),
            );
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                fail(reply, GroupError::UnknownMemberId(req.member_id))
            }
            GroupState::PreparingRebalance => fail(reply, GroupError::RebalanceInProgress),
            GroupState::Stable => {
                let m = self.members.get_mut(&req.member_id)?;
                m.renew(now);
                let _ = reply.send(Ok(SyncGroupResult {
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol.clone(),
                    assignment: m.assignment.clone(),
                }));
                None
            }
            GroupState::CompletingRebalance => {
                let is_leader = self.leader.as_deref() == Some(req.member_id.as_str());
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.renew(now);
                    if let Some(old) = m.sync.replace(reply) {
                        let _ = old.send(Err(GroupError::RebalanceInProgress));
                    }
                }
                if !is_leader {
                    return None;
                }
                let assignments: HashMap<String, Vec<u8>> = req.assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
                }
                Some(self.generation)
            }
        }
    }

    /// The leader's assignment of `generation` was persisted (or not): answer the waiting
    /// syncs and go Stable, or — on failure — answer the error and rebalance.
    pub(crate) fn sync_persisted(
        &mut self,
        generation: i32,
        result: Result<(), GroupError>,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> Effects {
        if generation != self.generation || self.state != GroupState::CompletingRebalance {
            return Effects::default();
        }
        match result {
            Ok(()) => {
                self.set_state(GroupState::Stable, now_ms);
                for m in self.members.values_mut() {
                    if let Some(s) = m.sync.take() {
                        let _ = s.send(Ok(SyncGroupResult {
                            protocol_type: self.protocol_type.clone(),
                            protocol_name: self.protocol.clone(),
                            assignment: m.assignment.clone(),
                        }));
                    }
                }
                Effects::default()
            }
            Err(e) => {
                for m in self.members.values_mut() {
                    m.assignment.clear();
                    if let Some(s) = m.sync.take() {
                        let _ = s.send(Err(e.clone()));
                    }
                }
                self.prepare_rebalance(cfg, now, now_ms);
                Effects::default()
            }
        }
    }

    /// Heartbeat.
    pub(crate) fn heartbeat(&mut self, req: &Heartbeat, now: Instant) -> Result<(), GroupError> {
        self.check_static(req.group_instance_id.as_deref(), &req.member_id)?;
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable(format!(
                "group {} is being removed",
                self.id
            )));
        }
        let generation = self.generation;
        let state = self.state;
        let Some(m) = self.members.get_mut(&req.member_id) else {
            return Err(GroupError::UnknownMemberId(req.member_id.clone()));
        };
        if req.generation_id != generation {
            return Err(GroupError::IllegalGeneration {
                got: req.generation_id,
                current: generation,
            });
        }
        m.renew(now);
        match state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::Empty => Err(GroupError::UnknownMemberId(req.member_id.clone())),
            _ => Ok(()),
        }
    }

    /// LeaveGroup: per-member results, in order.
    pub(crate) fn leave(
        &mut self,
        members: Vec<LeavingMember>,
        cfg: &GroupConfig,
        now: Instant,
        now_ms: i64,
    ) -> (LeaveResults, Effects) {
        let mut results = Vec::with_capacity(members.len());
        let mut removed = false;
        for l in members {
            let id = match (&l.group_instance_id, l.member_id.is_empty()) {
                (Some(instance), _) => match self.statics.get(instance).cloned() {
                    Some(id) if l.member_id.is_empty() || id == l.member_id => Ok(id),
                    Some(_) => Err(GroupError::FencedInstanceId(instance.clone())),
                    None => Err(GroupError::UnknownMemberId(l.member_id.clone())),
                },
                (None, _) => {
                    if self.members.contains_key(&l.member_id) {
                        Ok(l.member_id.clone())
                    } else if self.pending.remove(&l.member_id).is_some() {
                        results.push((l, Ok(())));
                        continue;
                    } else {
                        Err(GroupError::UnknownMemberId(l.member_id.clone()))
                    }
                }
            };
            match id {
                Ok(id) if self.members.contains_key(&id) => {
                    self.remove_member(&id);
                    removed = true;
                    results.push((l, Ok(())));
                }
                Ok(_) => {
                    let id = l.member_id.clone();
                    results.push((l, Err(GroupError::UnknownMemberId(id))));
                }
                Err(e) => results.push((l, Err(e))),
            }
        }
        let effects = if removed {
            self.after_removal(cfg, now, now_ms)
        } else {
            Effects::default()
        };
        (results, effects)
    }

    fn after_removal(&mut self, cfg: &GroupConfig, now: Instant, now_ms: i64) -> Effects {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(cfg, now, now_ms);
                self.try_complete_join(now, now_ms)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, now_ms),
            _ => Effects::default(),
        }
    }

    /// Timers: expired sessions (members without a parked join or sync), expired pending
    /// member ids, a due rebalance.
    pub(crate) fn tick(&mut self, cfg: &GroupConfig, now: Instant, now_ms: i64) -> Effects {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none() && m.sync.is_none() && m.deadline <= now)
            .map(|m| m.id.clone())
            .collect();
        let mut effects = Effects::default();
        if !expired.is_empty() {
            for id in &expired {
                tracing::info!(group = %self.id, member = %id, "member's session expired; removing it");
                self.remove_member(id);
            }
            effects = self.after_removal(cfg, now, now_ms);
        }
        let more = self.try_complete_join(now, now_ms);
        Effects {
            persist_metadata: effects.persist_metadata || more.persist_metadata,
        }
    }

    /// Whether an OffsetCommit from this member may commit now.
    pub(crate) fn check_commit(&self, req: &OffsetCommit) -> Result<(), GroupError> {
        self.check_static(req.group_instance_id.as_deref(), &req.member_id)?;
        if req.generation_id < 0 && req.member_id.is_empty() {
            // A commit outside group management: only while nobody manages the group.
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(GroupError::UnknownMemberId(String::new()))
            };
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        if !self.members.contains_key(&req.member_id) {
            return Err(GroupError::UnknownMemberId(req.member_id.clone()));
        }
        if req.generation_id != self.generation {
            return Err(GroupError::IllegalGeneration {
                got: req.generation_id,
                current: self.generation,
            });
        }
        Ok(())
    }

    /// The topics the members consume (consumer protocol), for OffsetDelete.
    pub(crate) fn subscribed_topics(&self) -> Vec<String> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return Vec::new();
        }
        let mut topics: Vec<String> = self
            .members
            .values()
            .flat_map(|m| subscription_topics(&m.metadata(self.protocol.as_deref())))
            .collect();
        topics.sort();
        topics.dedup();
        topics
    }

    /// DescribeGroups' view.
    pub(crate) fn describe(&self) -> DescribedGroup {
        let stable = self.state == GroupState::Stable;
        DescribedGroup {
            group_id: self.id.clone(),
            state: self.state.name().to_string(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable {
                self.protocol.clone().unwrap_or_default()
            } else {
                String::new()
            },
            members: self
                .ordered_members()
                .into_iter()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(self.protocol.as_deref())
                    } else {
                        Vec::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        }
    }

    /// Fails every parked answer (the coordinator stops or moves).
    pub(crate) fn fail_all(&mut self, error: &GroupError) {
        for m in self.members.values_mut() {
            if let Some(j) = m.join.take() {
                let _ = j.send(Err(error.clone()));
            }
            if let Some(s) = m.sync.take() {
                let _ = s.send(Err(error.clone()));
            }
        }
    }

    /// The offsets a commit would write, or the per-partition metadata error.
    pub(crate) fn offset_value(
        c: &CommitOffset,
        cfg: &GroupConfig,
        retention_time_ms: i64,
        now_ms: i64,
    ) -> Result<OffsetValue, GroupError> {
        let metadata = c.metadata.clone().unwrap_or_default();
        if metadata.len() > cfg.offset_metadata_max_bytes {
            return Err(GroupError::OffsetMetadataTooLarge {
                size: metadata.len(),
                max: cfg.offset_metadata_max_bytes,
            });
        }
        Ok(OffsetValue {
            offset: c.offset,
            leader_epoch: c.leader_epoch,
            metadata,
            commit_timestamp: now_ms,
            expire_timestamp: if retention_time_ms >= 0 {
                now_ms.saturating_add(retention_time_ms)
            } else {
                -1
            },
        })
    }

    /// Offsets due for expiry at `now_ms` (groups without members only).
    pub(crate) fn expired_offsets(&self, retention_ms: i64, now_ms: i64) -> Vec<(String, i32)> {
        if !self.members.is_empty() {
            return Vec::new();
        }
        self.offsets
            .iter()
            .filter(|(_, v)| {
                let expires = if v.expire_timestamp >= 0 {
                    v.expire_timestamp
                } else {
                    v.commit_timestamp
                        .max(self.state_since_ms)
                        .saturating_add(retention_ms)
                };
                now_ms >= expires
            })
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GroupConfig {
        GroupConfig {
            group_initial_rebalance_delay_ms: 0,
            group_min_session_timeout_ms: 100,
            group_max_size: 3,
            ..GroupConfig::with_defaults("/nonexistent")
        }
    }

    fn join_req(member: &str, protocols: &[&str]) -> JoinGroup {
        JoinGroup {
            group_id: "g".into(),
            member_id: member.into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 1000,
            rebalance_timeout_ms: 2000,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| (p.to_string(), vec![1])).collect(),
            require_known_member_id: false,
            reason: None,
        }
    }

    type JoinRx = oneshot::Receiver<Result<JoinGroupResult, GroupError>>;

    fn join(g: &mut Group, req: JoinGroup, now: Instant) -> JoinRx {
        let (tx, rx) = oneshot::channel();
        g.join(req, tx, &cfg(), now, 0);
        rx
    }

    fn done(rx: &mut JoinRx) -> Option<Result<JoinGroupResult, GroupError>> {
        rx.try_recv().ok()
    }

    #[test]
    fn two_members_join_sync_and_heartbeat() {
        let now = Instant::now();
        let mut g = Group::new("g", 0);
        let mut a = join(&mut g, join_req("", &["range"]), now);
        // One member: the rebalance completes at once (no initial delay).
        let ra = done(&mut a).unwrap().unwrap();
        assert_eq!(ra.generation_id, 1);
        assert_eq!(ra.leader, ra.member_id);
        assert_eq!(g.state, GroupState::CompletingRebalance);
        // A second member: rebalance; it waits until the first rejoins.
        let mut b = join(&mut g, join_req("", &["range", "roundrobin"]), now);
        assert!(done(&mut b).is_none());
        assert_eq!(g.state, GroupState::PreparingRebalance);
        assert_eq!(
            g.heartbeat(
                &Heartbeat {
                    group_id: "g".into(),
                    generation_id: 1,
                    member_id: ra.member_id.clone(),
                    group_instance_id: None
                },
                now
            ),
            Err(GroupError::RebalanceInProgress)
        );
        let mut a2 = join(&mut g, join_req(&ra.member_id, &["range"]), now);
        let ra2 = done(&mut a2).unwrap().unwrap();
        let rb = done(&mut b).unwrap().unwrap();
        assert_eq!((ra2.generation_id, rb.generation_id), (2, 2));
        assert_eq!(ra2.protocol_name.as_deref(), Some("range"));
        assert_eq!(ra2.members.len(), 2, "the leader sees every member");
        assert!(rb.members.is_empty());
        // Follower syncs first and waits; the leader's assignment completes both.
        let (tx, mut sb) = oneshot::channel();
        let sync = |member: &str, assignments: Vec<(String, Vec<u8>)>| SyncGroup {
            group_id: "g".into(),
            generation_id: 2,
            member_id: member.into(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments,
        };
        assert_eq!(g.sync(sync(&rb.member_id, vec![]), tx, now), None);
        let (tx, mut sa) = oneshot::channel();
        let assignments = vec![
            (ra2.member_id.clone(), vec![b'a']),
            (rb.member_id.clone(), vec![b'b']),
        ];
        assert_eq!(g.sync(sync(&ra2.member_id, assignments), tx, now), Some(2));
        assert!(sb.try_recv().is_err(), "answered only after persisting");
        g.sync_persisted(2, Ok(()), &cfg(), now, 0);
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(sa.try_recv().unwrap().unwrap().assignment, b"a");
        assert_eq!(sb.try_recv().unwrap().unwrap().assignment, b"b");
        let hb = |member: &str, generation| Heartbeat {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            group_instance_id: None,
        };
        assert_eq!(g.heartbeat(&hb(&rb.member_id, 2), now), Ok(()));
        assert_eq!(
            g.heartbeat(&hb(&rb.member_id, 1), now),
            Err(GroupError::IllegalGeneration { got: 1, current: 2 })
        );
        assert!(matches!(
            g.heartbeat(&hb("nobody", 2), now),
            Err(GroupError::UnknownMemberId(_))
        ));
    }

    #[test]
    fn member_id_required_then_max_size() {
        let now = Instant::now();
        let mut g = Group::new("g", 0);
        let mut req = join_req("", &["range"]);
        req.require_known_member_id = true;
        let mut rx = join(&mut g, req.clone(), now);
        let Some(Err(GroupError::MemberIdRequired(id))) = done(&mut rx) else {
            panic!("expected MEMBER_ID_REQUIRED");
        };
        assert!(id.starts_with("c-"));
        // Pending members count towards group.max.size (3).
        for _ in 0..2 {
            let mut rx = join(&mut g, req.clone(), now);
            assert!(matches!(
                done(&mut rx),
                Some(Err(GroupError::MemberIdRequired(_)))
            ));
        }
        let mut rx = join(&mut g, req.clone(), now);
        assert!(matches!(
            done(&mut rx),
            Some(Err(GroupError::GroupMaxSizeReached(_)))
        ));
        // The pending member joins with its id.
        let mut known = req.clone();
        known.member_id = id.clone();
        let mut rx = join(&mut g, known, now);
        assert_eq!(done(&mut rx).unwrap().unwrap().member_id, id);
        // Pending ids expire with their session timeout.
        assert_eq!(g.size(), 3);
        g.tick(&cfg(), now + Duration::from_millis(1001), 0);
        assert!(g.pending.is_empty());
    }

    #[test]
    fn bad_joins_are_refused() {
        let now = Instant::now();
        let mut g = Group::new("g", 0);
        let mut rx = join(&mut g, join_req("", &[]), now);
        assert!(matches!(
            done(&mut rx),
            Some(Err(GroupError::InconsistentGroupProtocol(_)))
        ));
        let mut short = join_req("", &["range"]);
        short.session_timeout_ms = 10;
        let mut rx = join(&mut g, short, now);
        assert_eq!(
            done(&mut rx),
            Some(Err(GroupError::InvalidSessionTimeout(10)))
        );
        let mut rx = join(&mut g, join_req("ghost", &["range"]), now);
        assert!(matches!(
            done(&mut rx),
            Some(Err(GroupError::UnknownMemberId(_)))
        ));
        let mut a = join(&mut g, join_req("", &["range"]), now);
        assert!(done(&mut a).unwrap().is_ok());
        let mut rx = join(&mut g, join_req("", &["roundrobin"]), now);
        assert!(matches!(
            done(&mut rx),
            Some(Err(GroupError::InconsistentGroupProtocol(_)))
        ));
    }

    #[test]
    fn expired_sessions_leave_and_rebalance_timeouts_drop_stragglers() {
        let now = Instant::now();
        let mut g = Group::new("g", 0);
        let long = || {
            let mut r = join_req("", &["range"]);
            r.session_timeout_ms = 5000;
            r
        };
        let mut a = join(&mut g, long(), now);
        let ra = done(&mut a).unwrap().unwrap();
        let mut b = join(&mut g, long(), now);
        // a never rejoins: after the rebalance timeout (2 s) b's join completes alone.
        assert!(done(&mut b).is_none());
        g.tick(&cfg(), now + Duration::from_millis(1999), 0);
        assert!(done(&mut b).is_none());
        g.tick(&cfg(), now + Duration::from_millis(2000), 0);
        let rb = done(&mut b).unwrap().unwrap();
        assert_eq!(rb.leader, rb.member_id);
        assert!(!g.members.contains_key(&ra.member_id));
        // b's session (5 s from the rebalance) expires without heartbeats: Empty.
        assert!(g.tick(&cfg(), now + Duration::from_millis(6999), 5) == Effects::default());
        let later = now + Duration::from_millis(7000);
        let effects = g.tick(&cfg(), later, 5);
        assert!(effects.persist_metadata);
        assert_eq!(g.state, GroupState::Empty);
        assert_eq!(g.generation, 3);
    }

    #[test]
    fn static_member_rejoins_in_place_and_fences_the_old_id() {
        let now = Instant::now();
        let mut g = Group::new("g", 0);
        let mut req = join_req("", &["range"]);
        req.group_instance_id = Some("i1".into());
        let mut a = join(&mut g, req.clone(), now);
        let ra = done(&mut a).unwrap().unwrap();
        let (tx, _rx) = oneshot::channel();
        let sync = SyncGroup {
            group_id: "g".into(),
            generation_id: 1,
            member_id: ra.member_id.clone(),
            group_instance_id: Some("i1".into()),
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(ra.member_id.clone(), vec![7])],
        };
        assert_eq!(g.sync(sync, tx, now), Some(1));
        g.sync_persisted(1, Ok(()), &cfg(), now, 0);
        // Restart: same instance id, no member id → same generation, new id, no rebalance.
        let mut again = join(&mut g, req, now);
        let r = done(&mut again).unwrap().unwrap();
        assert_eq!(r.generation_id, 1);
        assert_ne!(r.member_id, ra.member_id);
        assert_eq!(g.state, GroupState::Stable);
        assert_eq!(
            g.heartbeat(
                &Heartbeat {
                    group_id: "g".into(),
                    generation_id: 1,
                    member_id: ra.member_id.clone(),
                    group_instance_id: Some("i1".into()),
                },
                now
            ),
            Err(GroupError::FencedInstanceId("i1".into()))
        );
        assert_eq!(g.members[&r.member_id].assignment, vec![7]);
    }

    #[test]
    fn protocol_selection_follows_votes() {
        let now = Instant::now();
        let mut g = Group::new("g", 0);
        let mut a = join(&mut g, join_req("", &["roundrobin", "range"]), now);
        let ra = done(&mut a).unwrap().unwrap();
        assert_eq!(ra.protocol_name.as_deref(), Some("roundrobin"));
        let _b = join(&mut g, join_req("", &["range", "roundrobin"]), now);
        let _c = join(&mut g, join_req("", &["range", "roundrobin"]), now);
        let mut a2 = join(
            &mut g,
            join_req(&ra.member_id, &["roundrobin", "range"]),
            now,
        );
        let r = done(&mut a2).unwrap().unwrap();
        assert_eq!(r.protocol_name.as_deref(), Some("range"), "2 votes to 1");
    }

    #[test]
    fn leaving_members_and_commits() {
        let now = Instant::now();
        let mut g = Group::new("g", 0);
        let mut a = join(&mut g, join_req("", &["range"]), now);
        let ra = done(&mut a).unwrap().unwrap();
        let commit = |member: &str, generation| OffsetCommit {
            group_id: "g".into(),
            generation_id: generation,
            member_id: member.into(),
            group_instance_id: None,
            retention_time_ms: -1,
            offsets: vec![],
            now_ms: 0,
        };
        assert_eq!(
            g.check_commit(&commit(&ra.member_id, 1)),
            Err(GroupError::RebalanceInProgress),
            "CompletingRebalance"
        );
        assert!(
            g.check_commit(&commit("", -1)).is_err(),
            "the group has members"
        );
        let (results, effects) = g.leave(
            vec![
                LeavingMember {
                    member_id: ra.member_id.clone(),
                    group_instance_id: None,
                    reason: None,
                },
                LeavingMember {
                    member_id: "ghost".into(),
                    group_instance_id: None,
                    reason: None,
                },
            ],
            &cfg(),
            now,
            0,
        );
        assert!(results[0].1.is_ok());
        assert!(matches!(results[1].1, Err(GroupError::UnknownMemberId(_))));
        assert!(effects.persist_metadata);
        assert_eq!(g.state, GroupState::Empty);
        assert_eq!(g.check_commit(&commit("", -1)), Ok(()));
    }
}
