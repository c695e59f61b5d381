//! The consumer (SPEC §3): `subscribe` (group management, classic protocol) or `assign`
//! (manual), `poll` for records, commits (automatic, synchronous, asynchronous with a
//! callback), `seek`, `pause`/`resume`, `position`, `committed`, and a
//! [`RebalanceListener`] told of revoked partitions before a rebalance and of assigned ones
//! after it (so it can commit before losing a partition).
//!
//! - **poll**: rejoins the group if a rebalance is due (eager protocol: revoke everything —
//!   committing first when auto-commit is on — join, the leader assigns with the agreed
//!   [`assignor`], sync), finds a start position for partitions without one (the committed
//!   offset, else `auto.offset.reset`), then fetches from every leader at once and returns
//!   up to `max.poll.records` records. Fetched records beyond that stay buffered.
//! - **Heartbeats** run on a background task every `heartbeat.interval.ms`. A rebalance the
//!   coordinator announces makes the next `poll` rejoin; a consumer that has not polled for
//!   `max.poll.interval.ms` leaves the group, as the Java client does.
//! - **Commits** (synchronous and asynchronous alike) go through one task, in the order they
//!   were made, so a later commit is never overtaken by an earlier one.

pub mod assignor;
mod config;
pub(crate) mod group;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, oneshot};

pub use self::config::{ConsumerConfig, OffsetReset};
use self::group::Member;
use super::cluster::Cluster;
use super::conn::Connection;
use super::error::{code, ClientError, Result};
use super::records::{decode_records, next_offset_after, ConsumerRecord};
use super::TopicPartition;

/// Fetch v12: the newest the client sends (v13 names topics by id).
const FETCH_VERSION: i16 = 12;

/// Told of partitions leaving and joining this consumer's assignment. Both run inside
/// `poll`, without any consumer lock held, so they may call the consumer (e.g.
/// `commit_sync` in `on_partitions_revoked`).
pub trait RebalanceListener: Send + Sync {
    /// Before a rebalance: these partitions are about to go.
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

    /// After a rebalance: this consumer's new partitions.
    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// Called once with the outcome of an asynchronous commit.
pub type CommitCallback = Box<dyn FnOnce(Result<()>) + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    /// Committed offset, else `auto.offset.reset`.
    Committed,
    Policy(OffsetReset),
    Timestamp(i64),
}

#[derive(Debug)]
struct PartitionState {
    /// The next offset `poll` returns (what a commit records).
    position: Option<i64>,
    /// The next offset to fetch (ahead of `position` by what is buffered).
    fetch_offset: Option<i64>,
    reset: Option<Reset>,
    paused: bool,
    high_watermark: i64,
}

impl PartitionState {
    fn new() -> PartitionState {
        PartitionState {
            position: None,
            fetch_offset: None,
            reset: Some(Reset::Committed),
            paused: false,
            high_watermark: -1,
        }
    }
}

#[derive(Debug, Default)]
enum Mode {
    #[default]
    None,
    Subscribed(Vec<String>),
    Assigned,
}

#[derive(Debug)]
struct GroupState {
    member_id: String,
    generation_id: i32,
    protocol: String,
    coordinator: Option<Arc<Connection>>,
    needs_rejoin: bool,
    /// Set while a join is under way: heartbeats pause.
    joining: bool,
    /// The assignment before the last revocation (the sticky assignor's user data).
    previous: Vec<(String, Vec<i32>)>,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    assignment: BTreeMap<TopicPartition, PartitionState>,
    group: GroupState,
    buffered: VecDeque<ConsumerRecord>,
    last_poll: Instant,
    last_auto_commit: Instant,
    closed: bool,
    /// Brokers with a fetch in flight (one each).
    fetching: BTreeSet<i32>,
    /// Fetch sessions, by broker.
    sessions: BTreeMap<i32, FetchSession>,
}

struct CommitJob {
    offsets: BTreeMap<TopicPartition, i64>,
    done: CommitCallback,
}

/// A Kafka consumer; see the module documentation. Create it inside a tokio runtime.
pub struct Consumer {
    config: ConsumerConfig,
    cluster: Arc<Cluster>,
    state: Arc<Mutex<State>>,
    listener: Mutex<Option<Arc<dyn RebalanceListener>>>,
    commits: mpsc::UnboundedSender<CommitJob>,
    heartbeat: tokio::task::JoinHandle<()>,
    /// Notified when a fetch in flight finishes.
    arrived: Arc<tokio::sync::Notify>,
    metrics: Arc<ConsumerMetrics>,
}

/// Counters of what the consumer did.
#[derive(Debug, Default)]
pub struct ConsumerMetrics {
    /// Fetches that named every partition (sessionless, or opening a session).
    pub full_fetches: std::sync::atomic::AtomicU64,
    /// Incremental fetches in a session (KIP-227).
    pub incremental_fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.config.group_id)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer (nothing is contacted until `subscribe`/`assign` and `poll`).
    pub fn new(config: ConsumerConfig) -> Result<Consumer> {
        for name in &config.assignment_strategies {
            if assignor::assignor_by_name(name).is_none() {
                return Err(ClientError::Config {
                    key: "partition.assignment.strategy".into(),
                    reason: format!("unknown strategy {name:?}"),
                });
            }
        }
        let cluster = Cluster::new(config.client.clone());
        let now = Instant::now();
        let state = Arc::new(Mutex::new(State {
            mode: Mode::None,
            assignment: BTreeMap::new(),
            group: GroupState {
                member_id: String::new(),
                generation_id: -1,
                protocol: String::new(),
                coordinator: None,
                needs_rejoin: false,
                joining: false,
                previous: Vec::new(),
            },
            buffered: VecDeque::new(),
            last_poll: now,
            last_auto_commit: now,
            closed: false,
            fetching: BTreeSet::new(),
            sessions: BTreeMap::new(),
        }));
        let (commits, rx) = mpsc::unbounded_channel();
        tokio::spawn(commit_loop(
            rx,
            Arc::clone(&cluster),
            Arc::clone(&state),
            config.group_id.clone(),
            config.group_instance_id.clone(),
        ));
        let heartbeat = tokio::spawn(heartbeat_loop(
            Arc::clone(&cluster),
            Arc::clone(&state),
            config.clone(),
        ));
        Ok(Consumer {
            config,
            cluster,
            state,
            listener: Mutex::new(None),
            commits,
            heartbeat,
            arrived: Arc::new(tokio::sync::Notify::new()),
            metrics: Arc::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn listener(&self) -> Option<Arc<dyn RebalanceListener>> {
        self.listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn group_id(&self) -> Result<&str> {
        self.config
            .group_id
            .as_deref()
            .ok_or_else(|| ClientError::Config {
                key: "group.id".into(),
                reason: "needed for subscribe and commits".into(),
            })
    }

    /// What the consumer did so far.
    pub fn metrics(&self) -> &ConsumerMetrics {
        &self.metrics
    }

    /// The cluster view (metadata) this consumer uses.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// Subscribes to `topics` with group management; `poll` joins the group.
    pub fn subscribe(&self, topics: &[&str]) -> Result<()> {
        self.group_id()?;
        let mut state = self.state();
        state.mode = Mode::Subscribed(topics.iter().map(|t| (*t).to_owned()).collect());
        state.group.needs_rejoin = true;
        Ok(())
    }

    /// Subscribes with a listener for revoked and assigned partitions.
    pub fn subscribe_with_listener(
        &self,
        topics: &[&str],
        listener: Arc<dyn RebalanceListener>,
    ) -> Result<()> {
        *self.listener.lock().unwrap_or_else(PoisonError::into_inner) = Some(listener);
        self.subscribe(topics)
    }

    /// Consumes exactly `partitions`, without group management (commits still go to
    /// `group.id` if it is set).
    pub fn assign(&self, partitions: &[TopicPartition]) {
        let mut state = self.state();
        state.mode = Mode::Assigned;
        let keep: BTreeSet<&TopicPartition> = partitions.iter().collect();
        state.assignment.retain(|tp, _| keep.contains(tp));
        for tp in partitions {
            state
                .assignment
                .entry(tp.clone())
                .or_insert_with(PartitionState::new);
        }
        state
            .buffered
            .retain(|r| keep.contains(&TopicPartition::new(r.topic.clone(), r.partition)));
    }

    /// The partitions assigned to this consumer now.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.state().assignment.keys().cloned().collect()
    }

    /// The next offset `poll` returns for `tp` (what a commit would record), if known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.state().assignment.get(tp).and_then(|p| p.position)
    }

    /// Starts `tp` at `offset` from the next `poll`.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let mut state = self.state();
        let p = state.assignment.get_mut(tp).ok_or_else(|| {
            ClientError::InvalidArgument(format!("{tp} is not assigned to this consumer"))
        })?;
        p.position = Some(offset);
        p.fetch_offset = Some(offset);
        p.reset = None;
        state
            .buffered
            .retain(|r| !(r.topic == tp.topic && r.partition == tp.partition));
        Ok(())
    }

    /// Starts `tp` at its first offset (`true`) or its end (`false`) from the next `poll`.
    pub fn seek_to(&self, tp: &TopicPartition, beginning: bool) -> Result<()> {
        self.set_reset(
            tp,
            Reset::Policy(if beginning {
                OffsetReset::Earliest
            } else {
                OffsetReset::Latest
            }),
        )
    }

    /// Starts `tp` at the first record at or after `timestamp_ms` (its end if none).
    pub fn seek_to_timestamp(&self, tp: &TopicPartition, timestamp_ms: i64) -> Result<()> {
        self.set_reset(tp, Reset::Timestamp(timestamp_ms))
    }

    fn set_reset(&self, tp: &TopicPartition, reset: Reset) -> Result<()> {
        let mut state = self.state();
        let p = state.assignment.get_mut(tp).ok_or_else(|| {
            ClientError::InvalidArgument(format!("{tp} is not assigned to this consumer"))
        })?;
        p.position = None;
        p.fetch_offset = None;
        p.reset = Some(reset);
        state
            .buffered
            .retain(|r| !(r.topic == tp.topic && r.partition == tp.partition));
        Ok(())
    }

    /// Stops fetching (and returning) records of `partitions` until `resume`.
    pub fn pause(&self, partitions: &[TopicPartition]) {
        let mut state = self.state();
        for tp in partitions {
            if let Some(p) = state.assignment.get_mut(tp) {
                p.paused = true;
            }
        }
    }

    /// Fetches `partitions` again.
    pub fn resume(&self, partitions: &[TopicPartition]) {
        let mut state = self.state();
        for tp in partitions {
            if let Some(p) = state.assignment.get_mut(tp) {
                p.paused = false;
            }
        }
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.state()
            .assignment
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The group's committed offsets of `partitions` (absent: none committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let group_id = self.group_id()?;
        let conn = group::coordinator(&self.cluster, group_id).await?;
        group::fetch_offsets(&conn, group_id, Some(partitions)).await
    }

    /// The positions of the assigned partitions (what `commit_sync(None)` commits).
    pub fn positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.state()
            .assignment
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect()
    }

    /// Commits `offsets` (`None`: the current positions) and waits for the answer.
    pub async fn commit_sync(&self, offsets: Option<BTreeMap<TopicPartition, i64>>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.commit_async(
            offsets,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await
            .unwrap_or_else(|_| Err(ClientError::Closed("the consumer stopped".into())))
    }

    /// Commits `offsets` (`None`: the current positions) in the background; `callback`
    /// gets the outcome. Commits complete in the order they were made.
    pub fn commit_async(
        &self,
        offsets: Option<BTreeMap<TopicPartition, i64>>,
        callback: CommitCallback,
    ) {
        let offsets = offsets.unwrap_or_else(|| self.positions());
        if offsets.is_empty() {
            callback(Ok(()));
            return;
        }
        if let Err(mpsc::error::SendError(job)) = self.commits.send(CommitJob {
            offsets,
            done: callback,
        }) {
            (job.done)(Err(ClientError::Closed("the consumer is closed".into())));
        }
    }

    /// Records, waiting up to `timeout` for some (an empty vector when none came).
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        {
            let mut state = self.state();
            if state.closed {
                return Err(ClientError::Closed("the consumer is closed".into()));
            }
            state.last_poll = Instant::now();
        }
        loop {
            self.ensure_active_group(deadline).await?;
            self.maybe_auto_commit();
            self.update_positions().await?;
            let records = self.take_buffered();
            // Fetch ahead (or for the first time) while the caller works.
            self.start_fetches().await;
            if !records.is_empty() {
                return Ok(records);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            self.await_fetches(deadline - now).await;
        }
    }

    /// Up to `max.poll.records` buffered records of partitions that are assigned and not
    /// paused, moving their positions past them.
    fn take_buffered(&self) -> Vec<ConsumerRecord> {
        let mut state = self.state();
        let state = &mut *state;
        let mut out = Vec::new();
        let mut kept = VecDeque::new();
        while let Some(r) = state.buffered.pop_front() {
            let tp = TopicPartition::new(r.topic.clone(), r.partition);
            match state.assignment.get_mut(&tp) {
                Some(p) if p.paused => kept.push_back(r),
                Some(p) if out.len() < self.config.max_poll_records => {
                    p.position = Some(r.offset + 1);
                    out.push(r);
                }
                Some(_) => kept.push_back(r),
                None => {}
            }
        }
        state.buffered = kept;
        out
    }

    fn maybe_auto_commit(&self) {
        if !self.config.enable_auto_commit || self.config.group_id.is_none() {
            return;
        }
        let due = {
            let mut state = self.state();
            let due = state.last_auto_commit.elapsed()
                >= Duration::from_millis(self.config.auto_commit_interval_ms);
            if due {
                state.last_auto_commit = Instant::now();
            }
            due
        };
        if due {
            self.commit_async(
                None,
                Box::new(|r| {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "auto-commit failed");
                    }
                }),
            );
        }
    }

    /// Start positions for partitions without one: the committed offset, else the reset
    /// policy (`none`: an error).
    async fn update_positions(&self) -> Result<()> {
        let pending: Vec<(TopicPartition, Reset)> = self
            .state()
            .assignment
            .iter()
            .filter(|(_, p)| p.fetch_offset.is_none())
            .filter_map(|(tp, p)| p.reset.map(|r| (tp.clone(), r)))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let mut found: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let committed_wanted: Vec<TopicPartition> = pending
            .iter()
            .filter(|(_, r)| *r == Reset::Committed)
            .map(|(tp, _)| tp.clone())
            .collect();
        if let (false, Some(group_id)) =
            (committed_wanted.is_empty(), self.config.group_id.as_deref())
        {
            let conn = group::coordinator(&self.cluster, group_id).await?;
            found.extend(group::fetch_offsets(&conn, group_id, Some(&committed_wanted)).await?);
        }
        let mut by_timestamp: BTreeMap<i64, Vec<TopicPartition>> = BTreeMap::new();
        for (tp, reset) in &pending {
            if found.contains_key(tp) {
                continue;
            }
            let policy = match reset {
                Reset::Committed => self.config.auto_offset_reset,
                Reset::Policy(p) => *p,
                Reset::Timestamp(t) => {
                    by_timestamp.entry(*t).or_default().push(tp.clone());
                    continue;
                }
            };
            let timestamp = match policy {
                OffsetReset::Earliest => -2,
                OffsetReset::Latest => -1,
                OffsetReset::None => {
                    return Err(ClientError::InvalidArgument(format!(
                        "{tp} has no committed offset and auto.offset.reset is none"
                    )))
                }
            };
            by_timestamp.entry(timestamp).or_default().push(tp.clone());
        }
        for (timestamp, tps) in by_timestamp {
            let isolation = self.config.isolation_level;
            let offsets = group::list_offsets(&self.cluster, &tps, timestamp, isolation).await?;
            // No record at or after a timestamp: start at the end.
            let past_end: Vec<TopicPartition> = tps
                .iter()
                .filter(|tp| offsets.get(*tp).is_none_or(|o| *o < 0))
                .cloned()
                .collect();
            let ends = if past_end.is_empty() {
                BTreeMap::new()
            } else {
                group::list_offsets(&self.cluster, &past_end, -1, isolation).await?
            };
            for tp in tps {
                let offset = offsets
                    .get(&tp)
                    .filter(|o| **o >= 0)
                    .or_else(|| ends.get(&tp))
                    .copied()
                    .unwrap_or(0);
                found.insert(tp, offset);
            }
        }
        let mut state = self.state();
        for (tp, offset) in found {
            if let Some(p) = state.assignment.get_mut(&tp) {
                if p.fetch_offset.is_none() {
                    p.position = Some(offset);
                    p.fetch_offset = Some(offset);
                    p.reset = None;
                }
            }
        }
        Ok(())
    }

    /// Starts a fetch to every leader that has none in flight, for the partitions that are
    /// fetchable and have nothing buffered (so at most one response per partition waits in
    /// memory). Each fetch runs on its own task and puts what it gets into the buffer; the
    /// next `poll` finds it there — fetching goes on while the caller processes records.
    async fn start_fetches(&self) {
        let (fetchable, busy): (Vec<(TopicPartition, i64)>, BTreeSet<i32>) = {
            let state = self.state();
            let buffered: BTreeSet<(&str, i32)> = state
                .buffered
                .iter()
                .map(|r| (r.topic.as_str(), r.partition))
                .collect();
            let fetchable = state
                .assignment
                .iter()
                .filter(|(tp, p)| {
                    !p.paused && !buffered.contains(&(tp.topic.as_str(), tp.partition))
                })
                .filter_map(|(tp, p)| p.fetch_offset.map(|o| (tp.clone(), o)))
                .collect();
            (fetchable, state.fetching.clone())
        };
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64)>> = BTreeMap::new();
        let mut refresh = false;
        for (tp, offset) in fetchable {
            let leader = match self.cluster.topic_or_fetch(&tp.topic).await {
                Ok(t) => t
                    .partitions
                    .iter()
                    .find(|p| p.partition == tp.partition)
                    .map_or(-1, |p| p.leader),
                Err(_) => -1,
            };
            if leader < 0 {
                refresh = true;
            } else if !busy.contains(&leader) {
                by_leader.entry(leader).or_default().push((tp, offset));
            }
        }
        if refresh {
            let cluster = Arc::clone(&self.cluster);
            tokio::spawn(async move { cluster.refresh(None).await });
        }
        let wait = Duration::from_millis(self.config.fetch_max_wait_ms);
        for (leader, partitions) in by_leader {
            let plan = {
                let mut state = self.state();
                state.fetching.insert(leader);
                state.sessions.entry(leader).or_default().plan(&partitions)
            };
            let metrics = Arc::clone(&self.metrics);
            let (cluster, state, config, arrived) = (
                Arc::clone(&self.cluster),
                Arc::clone(&self.state),
                self.config.clone(),
                Arc::clone(&self.arrived),
            );
            tokio::spawn(async move {
                let counter = if plan.epoch > 0 {
                    &metrics.incremental_fetches
                } else {
                    &metrics.full_fetches
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let result = fetch_from(&cluster, &config, leader, &plan, wait).await;
                let refresh = match result {
                    Ok((answers, session_id)) => {
                        if let Some(session) = state
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .sessions
                            .get_mut(&leader)
                        {
                            session.advance(&plan, session_id);
                        }
                        absorb(&state, &config, &partitions, answers)
                    }
                    Err(e) => {
                        // The session is lost with the request (or refused): start a new one.
                        state
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .sessions
                            .remove(&leader);
                        let session_error = matches!(
                            e.code(),
                            Some(
                                code::FETCH_SESSION_ID_NOT_FOUND
                                    | code::INVALID_FETCH_SESSION_EPOCH
                            )
                        );
                        if !session_error {
                            tracing::debug!(error = %e, broker = leader, "fetch failed");
                            tokio::time::sleep(config.client.retry_backoff()).await;
                        }
                        e.needs_metadata_refresh()
                    }
                };
                if refresh {
                    let _ = cluster.refresh(None).await;
                }
                state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .fetching
                    .remove(&leader);
                arrived.notify_waiters();
            });
        }
    }

    /// Waits up to `wait` for a fetch in flight to finish (or for `wait` if none is).
    async fn await_fetches(&self, wait: Duration) {
        let arrived = self.arrived.notified();
        if self.state().fetching.is_empty() {
            // Nothing to wait for: back off a little (no partition is fetchable).
            tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
            return;
        }
        let _ = tokio::time::timeout(wait, arrived).await;
    }

    /// Rejoins the group if a rebalance is due (subscribe mode only).
    async fn ensure_active_group(&self, deadline: Instant) -> Result<()> {
        let topics = {
            let state = self.state();
            match &state.mode {
                Mode::Subscribed(topics)
                    if state.group.needs_rejoin || state.group.generation_id < 0 =>
                {
                    topics.clone()
                }
                _ => return Ok(()),
            }
        };
        self.revoke_all().await;
        loop {
            match self.join(&topics).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retriable() || is_rejoin_error(&e) => {
                    tracing::debug!(error = %e, "joining the group failed; retrying");
                    {
                        let mut state = self.state();
                        state.group.coordinator = None;
                        if matches!(e.code(), Some(code::UNKNOWN_MEMBER_ID)) {
                            state.group.member_id.clear();
                        }
                    }
                    if Instant::now() >= deadline {
                        return Ok(());
                    }
                    tokio::time::sleep(self.config.client.retry_backoff()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Eager protocol: every partition goes before a join (after an auto-commit).
    async fn revoke_all(&self) {
        let revoked: Vec<TopicPartition> = self.state().assignment.keys().cloned().collect();
        if revoked.is_empty() {
            return;
        }
        if self.config.enable_auto_commit {
            if let Err(e) = self.commit_sync(None).await {
                tracing::debug!(error = %e, "commit before the rebalance failed");
            }
        }
        if let Some(l) = self.listener() {
            l.on_partitions_revoked(self, &revoked).await;
        }
        let mut state = self.state();
        let mut previous: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in state.assignment.keys() {
            previous
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        state.group.previous = previous.into_iter().collect();
        state.assignment.clear();
        state.buffered.clear();
    }

    async fn join(&self, topics: &[String]) -> Result<()> {
        let group_id = self.group_id()?.to_owned();
        let conn = group::coordinator(&self.cluster, &group_id).await?;
        let (member_id, generation, previous) = {
            let mut state = self.state();
            state.group.coordinator = Some(Arc::clone(&conn));
            state.group.joining = true;
            (
                state.group.member_id.clone(),
                state.group.generation_id,
                state.group.previous.clone(),
            )
        };
        let result = self
            .join_and_sync(&conn, &group_id, topics, &member_id, generation, &previous)
            .await;
        let (joined, assigned) = {
            let mut state = self.state();
            state.group.joining = false;
            let (joined, assigned) = result?;
            state.group.member_id = joined.member_id.clone();
            state.group.generation_id = joined.generation_id;
            state.group.protocol = joined.protocol_name.clone();
            state.group.needs_rejoin = false;
            state.assignment = assigned
                .iter()
                .map(|tp| (tp.clone(), PartitionState::new()))
                .collect();
            state.buffered.clear();
            state.last_poll = Instant::now();
            (joined, assigned)
        };
        tracing::debug!(group = %group_id, generation = joined.generation_id, partitions = assigned.len(), "joined the group");
        if let Some(l) = self.listener() {
            l.on_partitions_assigned(self, &assigned).await;
        }
        Ok(())
    }

    async fn join_and_sync(
        &self,
        conn: &Connection,
        group_id: &str,
        topics: &[String],
        member_id: &str,
        generation: i32,
        previous: &[(String, Vec<i32>)],
    ) -> Result<(group::Joined, Vec<TopicPartition>)> {
        let protocols: Vec<(String, Bytes)> = self
            .config
            .assignment_strategies
            .iter()
            .filter_map(|name| assignor::assignor_by_name(name))
            .map(|a| {
                let subscription = assignor::Subscription {
                    topics: topics.to_vec(),
                    user_data: a.user_data(previous, generation),
                    owned_partitions: Vec::new(),
                    generation_id: generation,
                    rack_id: None,
                };
                (
                    a.name().to_owned(),
                    assignor::encode_subscription(&subscription, 1),
                )
            })
            .collect();
        let member = Member {
            group_id,
            member_id,
            instance_id: self.config.group_instance_id.as_deref(),
            generation_id: generation,
        };
        let rebalance_timeout = i32::try_from(self.config.max_poll_interval_ms).unwrap_or(i32::MAX);
        let joined = group::join_group(
            conn,
            &member,
            self.config.session_timeout_ms,
            rebalance_timeout,
            &protocols,
        )
        .await?;
        let assignments = if joined.leader == joined.member_id {
            self.assign_as_leader(&joined).await?
        } else {
            Vec::new()
        };
        let synced = Member {
            group_id,
            member_id: &joined.member_id,
            instance_id: self.config.group_instance_id.as_deref(),
            generation_id: joined.generation_id,
        };
        let bytes = group::sync_group(conn, &synced, &joined.protocol_name, assignments).await?;
        let assignment =
            assignor::decode_assignment(&bytes).map_err(|e| ClientError::Protocol {
                addr: format!("coordinator of {group_id}"),
                reason: format!("undecodable assignment: {e}"),
            })?;
        let subscribed: BTreeSet<&String> = topics.iter().collect();
        let mut assigned: Vec<TopicPartition> = assignment
            .partitions
            .iter()
            .filter(|(t, _)| subscribed.contains(t))
            .flat_map(|(t, ps)| ps.iter().map(move |p| TopicPartition::new(t.clone(), *p)))
            .collect();
        assigned.sort();
        Ok((joined, assigned))
    }

    /// The leader's part: every member's assignment with the agreed strategy.
    async fn assign_as_leader(&self, joined: &group::Joined) -> Result<Vec<(String, Bytes)>> {
        let strategy = assignor::assignor_by_name(&joined.protocol_name).ok_or_else(|| {
            ClientError::Protocol {
                addr: "group coordinator".into(),
                reason: format!(
                    "the group chose strategy {:?}, which this client lacks",
                    joined.protocol_name
                ),
            }
        })?;
        let mut members = BTreeMap::new();
        let mut all_topics = BTreeSet::new();
        for (id, metadata) in &joined.members {
            let subscription =
                assignor::decode_subscription(metadata).map_err(|e| ClientError::Protocol {
                    addr: "group coordinator".into(),
                    reason: format!("member {id}: undecodable subscription: {e}"),
                })?;
            all_topics.extend(subscription.topics.iter().cloned());
            members.insert(id.clone(), subscription);
        }
        let topics: Vec<String> = all_topics.into_iter().collect();
        self.cluster.refresh(Some(&topics)).await?;
        let partitions: BTreeMap<String, i32> = topics
            .iter()
            .filter_map(|t| {
                self.cluster
                    .topic(t)
                    .filter(|info| info.error_code == code::NONE)
                    .map(|info| (t.clone(), info.partitions.len() as i32))
            })
            .collect();
        let plan = strategy.assign(&members, &partitions);
        Ok(members
            .keys()
            .map(|id| {
                let partitions = plan.get(id).cloned().unwrap_or_default();
                let assignment = assignor::Assignment {
                    partitions,
                    user_data: None,
                };
                (id.clone(), assignor::encode_assignment(&assignment))
            })
            .collect())
    }

    /// Commits (auto-commit on), tells the listener the partitions go, leaves the group
    /// and stops the background tasks.
    pub async fn close(&self) {
        let in_group = matches!(self.state().mode, Mode::Subscribed(_));
        if in_group {
            self.revoke_all().await;
        } else if self.config.enable_auto_commit && self.config.group_id.is_some() {
            let _ = self.commit_sync(None).await;
        }
        let (conn, member_id) = {
            let mut state = self.state();
            state.closed = true;
            (
                state.group.coordinator.clone(),
                state.group.member_id.clone(),
            )
        };
        if let (true, Some(conn), Some(group_id)) = (
            in_group && !member_id.is_empty(),
            conn,
            self.config.group_id.as_deref(),
        ) {
            let member = Member {
                group_id,
                member_id: &member_id,
                instance_id: self.config.group_instance_id.as_deref(),
                generation_id: -1,
            };
            if let Err(e) = group::leave_group(&conn, &member, "the consumer is closing").await {
                tracing::debug!(error = %e, "LeaveGroup failed");
            }
        }
        self.heartbeat.abort();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Errors after which the member must join again.
fn is_rejoin_error(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(
            code::REBALANCE_IN_PROGRESS
                | code::ILLEGAL_GENERATION
                | code::UNKNOWN_MEMBER_ID
                | code::MEMBER_ID_REQUIRED
        )
    )
}

/// Takes a fetch's answers into the buffer, if the partitions still expect them (a seek or
/// a rebalance meanwhile makes an answer stale). Returns whether the metadata needs a
/// refresh (a partition's leader moved).
fn absorb(
    state: &Mutex<State>,
    config: &ConsumerConfig,
    asked: &[(TopicPartition, i64)],
    answers: Vec<FetchAnswer>,
) -> bool {
    let mut refresh = false;
    let mut guard = state.lock().unwrap_or_else(PoisonError::into_inner);
    let state = &mut *guard;
    for answer in answers {
        let Some(&(_, asked_offset)) = asked.iter().find(|(tp, _)| *tp == answer.tp) else {
            continue;
        };
        let Some(p) = state.assignment.get_mut(&answer.tp) else {
            continue;
        };
        if p.fetch_offset != Some(asked_offset) {
            continue;
        }
        match answer.error {
            code::NONE => {}
            code::OFFSET_OUT_OF_RANGE => {
                p.position = None;
                p.fetch_offset = None;
                p.reset = Some(Reset::Policy(config.auto_offset_reset));
                let tp = &answer.tp;
                state
                    .buffered
                    .retain(|r| !(r.topic == tp.topic && r.partition == tp.partition));
                continue;
            }
            _ => {
                refresh = true;
                continue;
            }
        }
        p.high_watermark = answer.high_watermark;
        let Some(data) = answer.records else {
            continue;
        };
        let max_batch = usize::try_from(config.fetch_max_bytes).unwrap_or(0).max(1) * 4;
        match decode_records(
            &answer.tp.topic,
            answer.tp.partition,
            &data,
            asked_offset,
            max_batch,
        ) {
            Ok(records) => {
                if let Some(next) = next_offset_after(&data) {
                    p.fetch_offset = Some(next.max(asked_offset));
                }
                state.buffered.extend(records);
            }
            Err(e) => tracing::warn!(partition = %answer.tp, error = %e, "undecodable records"),
        }
    }
    refresh
}

/// One partition's part of a fetch response.
struct FetchAnswer {
    tp: TopicPartition,
    error: i16,
    high_watermark: i64,
    records: Option<Bytes>,
}

/// A consumer's fetch session with one broker (KIP-227): its id and next epoch, and the
/// fetch offset the broker holds for each partition in it.
#[derive(Debug, Default, Clone)]
struct FetchSession {
    id: i32,
    epoch: i32,
    offsets: BTreeMap<TopicPartition, i64>,
}

/// What one Fetch request sends: the session fields, the partitions whose offsets the
/// broker does not have, and the ones it should forget.
#[derive(Debug)]
struct FetchPlan {
    session_id: i32,
    epoch: i32,
    send: Vec<(TopicPartition, i64)>,
    forget: Vec<TopicPartition>,
}

impl FetchSession {
    /// The request for `wanted` (every partition to fetch from this broker now).
    fn plan(&self, wanted: &[(TopicPartition, i64)]) -> FetchPlan {
        if self.id == 0 {
            // No session yet (or the broker declined one): a full fetch asking for one.
            return FetchPlan {
                session_id: 0,
                epoch: 0,
                send: wanted.to_vec(),
                forget: Vec::new(),
            };
        }
        let keep: BTreeSet<&TopicPartition> = wanted.iter().map(|(tp, _)| tp).collect();
        FetchPlan {
            session_id: self.id,
            epoch: self.epoch,
            send: wanted
                .iter()
                .filter(|(tp, offset)| self.offsets.get(tp) != Some(offset))
                .cloned()
                .collect(),
            forget: self
                .offsets
                .keys()
                .filter(|tp| !keep.contains(tp))
                .cloned()
                .collect(),
        }
    }

    /// What the broker holds after `plan` was answered with `session_id`.
    fn advance(&mut self, plan: &FetchPlan, session_id: i32) {
        if plan.epoch == 0 {
            self.id = session_id;
            self.epoch = 1;
            self.offsets = plan.send.iter().cloned().collect();
            return;
        }
        self.epoch = if self.epoch == i32::MAX {
            1
        } else {
            self.epoch + 1
        };
        self.offsets.extend(plan.send.iter().cloned());
        for tp in &plan.forget {
            self.offsets.remove(tp);
        }
    }
}

/// One Fetch request to `leader` as `plan` says; the answers per partition and the session
/// id the broker answered with.
async fn fetch_from(
    cluster: &Cluster,
    config: &ConsumerConfig,
    leader: i32,
    plan: &FetchPlan,
    wait: Duration,
) -> Result<(Vec<FetchAnswer>, i32)> {
    let conn = cluster.broker(leader).await?;
    let version = conn.version::<FetchRequest>(FETCH_VERSION)?;
    // Topic → (partitions to fetch, partitions to forget).
    let mut topics: BTreeMap<&str, (Vec<FetchPartition>, Vec<i32>)> = BTreeMap::new();
    for (tp, offset) in &plan.send {
        topics.entry(&tp.topic).or_default().0.push(
            FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(*offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(config.max_partition_fetch_bytes),
        );
    }
    for tp in &plan.forget {
        topics.entry(&tp.topic).or_default().1.push(tp.partition);
    }
    let name = |t: &str| TopicName(StrBytes::from_string(t.to_owned()));
    let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    let (session_id, epoch) = if version >= 7 {
        (plan.session_id, plan.epoch)
    } else {
        (0, -1)
    };
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(config.fetch_max_bytes)
        .with_isolation_level(config.isolation_level)
        .with_session_id(session_id)
        .with_session_epoch(epoch)
        .with_topics(
            topics
                .iter()
                .filter(|(_, (send, _))| !send.is_empty())
                .map(|(t, (send, _))| {
                    FetchTopic::default()
                        .with_topic(name(t))
                        .with_partitions(send.clone())
                })
                .collect(),
        )
        .with_forgotten_topics_data(if version >= 7 {
            topics
                .iter()
                .filter(|(_, (_, forget))| !forget.is_empty())
                .map(|(t, (_, forget))| {
                    ForgottenTopic::default()
                        .with_topic(name(t))
                        .with_partitions(forget.clone())
                })
                .collect()
        } else {
            Vec::new()
        })
        .with_rack_id(StrBytes::default());
    let timeout = wait + Duration::from_millis(config.client.request_timeout_ms);
    let response = conn.send_at_within(request, version, timeout).await?;
    super::error::check(
        || format!("Fetch from broker {leader}"),
        response.error_code,
        None,
    )?;
    let mut out = Vec::new();
    for t in response.responses {
        let topic = t.topic.0.to_string();
        for p in t.partitions {
            out.push(FetchAnswer {
                tp: TopicPartition::new(topic.clone(), p.partition_index),
                error: p.error_code,
                high_watermark: p.high_watermark,
                records: p.records,
            });
        }
    }
    Ok((out, if version >= 7 { response.session_id } else { 0 }))
}

/// Commits in order, one at a time, with the member identity current when each is sent.
async fn commit_loop(
    mut rx: mpsc::UnboundedReceiver<CommitJob>,
    cluster: Arc<Cluster>,
    state: Arc<Mutex<State>>,
    group_id: Option<String>,
    instance_id: Option<String>,
) {
    while let Some(job) = rx.recv().await {
        let Some(group_id) = group_id.as_deref() else {
            (job.done)(Err(ClientError::Config {
                key: "group.id".into(),
                reason: "needed for commits".into(),
            }));
            continue;
        };
        let (member_id, generation, subscribed, coordinator) = {
            let s = state.lock().unwrap_or_else(PoisonError::into_inner);
            (
                s.group.member_id.clone(),
                s.group.generation_id,
                matches!(s.mode, Mode::Subscribed(_)),
                s.group.coordinator.clone(),
            )
        };
        let result = async {
            let conn = match coordinator.filter(|c| !c.is_closed()) {
                Some(c) => c,
                None => group::coordinator(&cluster, group_id).await?,
            };
            let member = if subscribed {
                Member {
                    group_id,
                    member_id: &member_id,
                    instance_id: instance_id.as_deref(),
                    generation_id: generation,
                }
            } else {
                Member {
                    group_id,
                    member_id: "",
                    instance_id: None,
                    generation_id: -1,
                }
            };
            group::commit_offsets(&conn, &member, &job.offsets).await
        }
        .await;
        if let Err(e) = &result {
            if is_rejoin_error(e) {
                let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                s.group.needs_rejoin = true;
            }
        }
        (job.done)(result);
    }
}

/// Heartbeats while in a group; leaves it when `poll` has not been called for
/// `max.poll.interval.ms`.
async fn heartbeat_loop(cluster: Arc<Cluster>, state: Arc<Mutex<State>>, config: ConsumerConfig) {
    let Some(group_id) = config.group_id.clone() else {
        return;
    };
    let interval = Duration::from_millis(config.heartbeat_interval_ms);
    let max_poll = Duration::from_millis(config.max_poll_interval_ms);
    loop {
        tokio::time::sleep(interval).await;
        let (member_id, generation, coordinator, poll_late) = {
            let s = state.lock().unwrap_or_else(PoisonError::into_inner);
            if s.closed {
                return;
            }
            if s.group.joining
                || s.group.generation_id < 0
                || !matches!(s.mode, Mode::Subscribed(_))
            {
                continue;
            }
            (
                s.group.member_id.clone(),
                s.group.generation_id,
                s.group.coordinator.clone(),
                s.last_poll.elapsed() > max_poll,
            )
        };
        let member = Member {
            group_id: &group_id,
            member_id: &member_id,
            instance_id: config.group_instance_id.as_deref(),
            generation_id: generation,
        };
        let conn = match coordinator.filter(|c| !c.is_closed()) {
            Some(c) => c,
            None => match group::coordinator(&cluster, &group_id).await {
                Ok(c) => {
                    state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .group
                        .coordinator = Some(Arc::clone(&c));
                    c
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no group coordinator for heartbeats");
                    continue;
                }
            },
        };
        if poll_late {
            tracing::warn!(group = %group_id, "max.poll.interval.ms passed without a poll; leaving the group");
            let _ = group::leave_group(&conn, &member, "max.poll.interval.ms expired").await;
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.group.generation_id = -1;
            s.group.member_id.clear();
            s.group.needs_rejoin = true;
            continue;
        }
        match group::heartbeat(&conn, &member).await {
            Ok(()) => {}
            Err(e) => {
                let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                match e.code() {
                    Some(code::REBALANCE_IN_PROGRESS) => s.group.needs_rejoin = true,
                    Some(code::ILLEGAL_GENERATION) => {
                        s.group.generation_id = -1;
                        s.group.needs_rejoin = true;
                    }
                    Some(code::UNKNOWN_MEMBER_ID | code::FENCED_INSTANCE_ID) => {
                        s.group.generation_id = -1;
                        s.group.member_id.clear();
                        s.group.needs_rejoin = true;
                    }
                    _ => s.group.coordinator = None,
                }
                tracing::debug!(error = %e, "heartbeat failed");
            }
        }
    }
}
