//! [`ReplicaManager`]: starts and stops this broker's partition replicas as the metadata
//! says, and owns the data directory. Owns: the [`LogManager`] (checkpoints, the
//! clean-shutdown marker), the arbiters replicas run on, the high-watermark checkpoint,
//! and the [`ReplicaMap`] it publishes for the network handlers. It is not on the
//! produce/fetch path: handlers look a replica up in the map and message it directly.
//!
//! # API
//! Plain methods, before the actor starts (inside the actix `System`):
//! [`ReplicaManager::open`] (reads the data dir's checkpoints, starts the arbiters),
//! [`ReplicaManager::replicas`] (the shared map handle), [`ReplicaManager::had_clean_shutdown`].
//! Messages (see `messages.rs`): [`EnsureReplica`] → `Addr<PartitionReplica>`,
//! [`StopReplica`], [`CheckpointReplicas`], [`ShutdownReplicas`].
//!
//! # Start-up
//! Opening the data dir reads the checkpoints only. A partition's log is opened — and
//! recovered if the last shutdown was not clean — when the metadata layer sends
//! [`EnsureReplica`] for it; directories the metadata does not mention stay closed and
//! untouched.
//!
//! # Placement
//! A replica runs on arbiter [`arbiter_index`]`(tp, N)`: a fixed hash (FNV-1a of topic and
//! partition, then a 64-bit finaliser) modulo the number of arbiters — stable across
//! processes and restarts; a replica never migrates.
//!
//! # Concurrency
//! Messages for different partitions proceed in parallel (logs open on the blocking pool,
//! several at once under the `LogManager`'s read lock). Messages for one partition are
//! serialised by a per-partition async lock, so two `EnsureReplica`s never start two
//! actors. Checkpoint writes and partition deletions are serialised by the `LogManager`'s
//! write lock, and a checkpoint records a partition only if the same replica is still
//! running then, so a deleted partition's offsets never come back.
//!
//! # Files
//! Besides the `LogManager`'s: `<data_dir>/replication-offset-checkpoint` (high
//! watermarks, [`OffsetCheckpointFile`] format), read at open, seeded into replicas
//! (clamped to their logs) and written every
//! `replica.high.watermark.checkpoint.interval.ms`, at a replica's stop and at shutdown.
//!
//! Crash behaviour: checkpoints are replaced atomically; after a crash they may lag, which
//! costs recovery time (older recovery points), never records: a log start offset only
//! lags (DeleteRecords may need repeating) and a lagging high watermark is raised again
//! by the leader.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use actix::fut::{ActorFutureExt, WrapFuture};
use actix::{
    Actor, ActorContext, Addr, Arbiter, ArbiterHandle, AsyncContext, Context, Handler,
    MailboxError, ResponseActFuture, ResponseFuture,
};

use crate::log::checkpoint::{OffsetCheckpointFile, TopicPartition};
use crate::log::manager::{read_checkpoint_or_forget, LogManager, LogOffsets};
use crate::{Error, Result};

use super::config::{schedule, ReplicaManagerConfig};
use super::log_dir::LogDirHealth;
use super::messages::{
    BecomeFollower, BecomeLeader, CheckpointReplicas, ClosedReplica, EnsureReplica, Shutdown,
    ShutdownReplicas, Status, StopReplica, UpdateConfig,
};
use super::now_ms;
use super::partition::{PartitionReplica, ReplicaInit};

/// The high-watermark checkpoint file in the data dir (Kafka's name).
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";

/// TopicPartition → replica address, shared read-mostly: the [`ReplicaManager`] writes it
/// when replicas start and stop; network handlers read it on every request. A std lock,
/// not an async one: it is held only to clone an address, never across an await.
#[derive(Clone, Default)]
pub struct ReplicaMap(Arc<RwLock<HashMap<TopicPartition, Addr<PartitionReplica>>>>);

impl ReplicaMap {
    /// The replica of `tp` on this broker, if it runs.
    pub fn get(&self, tp: &TopicPartition) -> Option<Addr<PartitionReplica>> {
        self.read().get(tp).cloned()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The partitions with a running replica, sorted.
    pub fn topic_partitions(&self) -> Vec<TopicPartition> {
        let mut out: Vec<TopicPartition> = self.read().keys().cloned().collect();
        out.sort();
        out
    }

    fn entries(&self) -> Vec<(TopicPartition, Addr<PartitionReplica>)> {
        let mut out: Vec<_> = self
            .read()
            .iter()
            .map(|(tp, addr)| (tp.clone(), addr.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn insert(&self, tp: TopicPartition, addr: Addr<PartitionReplica>) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(tp, addr);
    }

    fn remove(&self, tp: &TopicPartition) -> Option<Addr<PartitionReplica>> {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tp)
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<TopicPartition, Addr<PartitionReplica>>> {
        // A panic while holding the lock cannot leave the map half-updated (single
        // insert/remove calls), so a poisoned lock is still a consistent map.
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ReplicaMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaMap")
            .field("replicas", &self.len())
            .finish()
    }
}

/// The arbiter (0..`arbiters`) a partition's replica runs on; see the module's placement.
pub fn arbiter_index(tp: &TopicPartition, arbiters: usize) -> usize {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET;
    for b in tp.topic.bytes().chain(tp.partition.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    // MurmurHash3's fmix64: spreads consecutive partitions over the low bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % arbiters.max(1) as u64) as usize
}

/// Which checkpoint files a checkpoint writes.
#[derive(Debug, Clone, Copy)]
struct Checkpoints {
    /// Recovery points, log start offsets, cleaner offsets.
    offsets: bool,
    high_watermarks: bool,
}

const ALL_CHECKPOINTS: Checkpoints = Checkpoints {
    offsets: true,
    high_watermarks: true,
};

/// A partition's offsets to checkpoint; `running`: record them only if this replica still
/// runs when the files are written (periodic checkpoints), `None`: unconditionally (a
/// replica's final offsets).
type CheckpointEntry = (
    TopicPartition,
    Option<Addr<PartitionReplica>>,
    ClosedReplica,
);

/// What the manager's message futures share (they run concurrently, and its blocking
/// parts on the blocking pool).
#[derive(Debug)]
struct Inner {
    config: ReplicaManagerConfig,
    /// `None` once shut down. Read lock: opening logs; write lock: checkpoints, deletions.
    log_manager: RwLock<Option<LogManager>>,
    /// The latest high watermark known per partition (`replication-offset-checkpoint`).
    high_watermarks: Mutex<BTreeMap<TopicPartition, i64>>,
    replicas: ReplicaMap,
    arbiters: Vec<ArbiterHandle>,
    partition_locks: Mutex<HashMap<TopicPartition, Arc<tokio::sync::Mutex<()>>>>,
    shutting_down: AtomicBool,
    /// Offline after an I/O error (not a full disk): nothing more is written to it.
    log_dir: LogDirHealth,
}

/// Starts and stops replicas; owns the data dir. See the module documentation.
#[derive(Debug)]
pub struct ReplicaManager {
    inner: Arc<Inner>,
    checkpoint_running: bool,
}

impl ReplicaManager {
    /// Opens the data dir (reads its checkpoints and removes the clean-shutdown marker:
    /// file I/O, done once at start-up) and starts `num_arbiters` arbiters. Must run
    /// inside the actix `System`. Start the actor with [`Actor::start`].
    pub fn open(config: ReplicaManagerConfig) -> Result<ReplicaManager> {
        if actix::System::try_current().is_none() {
            return Err(Error::InvalidRequest(
                "the replica manager must be opened inside the actix System".into(),
            ));
        }
        let log_manager = LogManager::open(&config.data_dir)?;
        let high_watermarks = read_checkpoint_or_forget(
            &config.data_dir.join(REPLICATION_OFFSET_CHECKPOINT),
            "high watermarks restart at each log's start until its leader advances them",
        )?
        .unwrap_or_default();
        let arbiters = (0..config.num_arbiters.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        Ok(ReplicaManager {
            inner: Arc::new(Inner {
                log_dir: LogDirHealth::new(&config.data_dir),
                config,
                log_manager: RwLock::new(Some(log_manager)),
                high_watermarks: Mutex::new(high_watermarks),
                replicas: ReplicaMap::default(),
                arbiters,
                partition_locks: Mutex::new(HashMap::new()),
                shutting_down: AtomicBool::new(false),
            }),
            checkpoint_running: false,
        })
    }

    /// The shared TopicPartition → replica map that network handlers read.
    pub fn replicas(&self) -> ReplicaMap {
        self.inner.replicas.clone()
    }

    /// The data directory's health, which every replica shares.
    pub fn log_dir(&self) -> LogDirHealth {
        self.inner.log_dir.clone()
    }

    /// Whether the previous run ended with a clean shutdown (logs open without recovery).
    pub fn had_clean_shutdown(&self) -> bool {
        self.inner
            .log_manager
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(LogManager::had_clean_shutdown)
    }

    /// The partitions with a directory in the data dir, open or not (lists a directory).
    pub fn partitions_on_disk(&self) -> Result<Vec<TopicPartition>> {
        match &*self
            .inner
            .log_manager
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(lm) => Ok(lm.partitions_on_disk()?),
            None => Err(stopped_manager()),
        }
    }

    fn spawn_checkpoint(&mut self, ctx: &mut Context<Self>, what: Checkpoints) {
        if self.checkpoint_running
            || self.inner.shutting_down.load(Ordering::Acquire)
            || self.inner.log_dir.is_offline()
        {
            return;
        }
        self.checkpoint_running = true;
        let checkpoint = Arc::clone(&self.inner).checkpoint(what);
        ctx.spawn(checkpoint.into_actor(self).map(|result, act, _| {
            act.checkpoint_running = false;
            if let Err(e) = result {
                tracing::warn!(error = %e, "writing the data dir checkpoints failed");
                act.inner.log_dir.observe(&e);
            }
        }));
    }
}

impl Actor for ReplicaManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let config = &self.inner.config;
        if let Some(every) = schedule(config.offset_checkpoint_interval_ms) {
            ctx.run_interval(every, |act, ctx| {
                act.spawn_checkpoint(ctx, ALL_CHECKPOINTS);
            });
        }
        if let Some(every) = schedule(config.high_watermark_checkpoint_interval_ms) {
            ctx.run_interval(every, |act, ctx| {
                let what = Checkpoints {
                    offsets: false,
                    high_watermarks: true,
                };
                act.spawn_checkpoint(ctx, what);
            });
        }
    }
}

impl Handler<EnsureReplica> for ReplicaManager {
    type Result = ResponseFuture<Result<Addr<PartitionReplica>>>;

    fn handle(&mut self, msg: EnsureReplica, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(Arc::clone(&self.inner).ensure(msg))
    }
}

impl Handler<StopReplica> for ReplicaManager {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: StopReplica, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(Arc::clone(&self.inner).stop(msg))
    }
}

impl Handler<CheckpointReplicas> for ReplicaManager {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, _: CheckpointReplicas, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(Arc::clone(&self.inner).checkpoint(ALL_CHECKPOINTS))
    }
}

impl Handler<ShutdownReplicas> for ReplicaManager {
    type Result = ResponseActFuture<Self, Result<()>>;

    fn handle(&mut self, _: ShutdownReplicas, _ctx: &mut Context<Self>) -> Self::Result {
        let shutdown = Arc::clone(&self.inner).shutdown();
        Box::pin(shutdown.into_actor(self).map(|result, _act, ctx| {
            ctx.stop();
            result
        }))
    }
}

impl Inner {
    fn partition_lock(&self, tp: &TopicPartition) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .partition_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(tp.clone()).or_default())
    }

    fn check_running(&self) -> Result<()> {
        if self.shutting_down.load(Ordering::Acquire) {
            Err(stopped_manager())
        } else {
            Ok(())
        }
    }

    async fn ensure(self: Arc<Self>, msg: EnsureReplica) -> Result<Addr<PartitionReplica>> {
        let lock = self.partition_lock(&msg.tp);
        let _guard = lock.lock().await;
        self.check_running()?;
        if let Some(addr) = self.replicas.get(&msg.tp) {
            match addr.send(Status).await {
                Ok(Ok(status)) if status.topic_id == msg.topic_id => {
                    self.update_running(&addr, &msg).await?;
                    return Ok(addr);
                }
                Ok(Ok(status)) => {
                    tracing::warn!(partition = %msg.tp, old = %status.topic_id, new = %msg.topic_id, "topic re-created: deleting the old incarnation's replica");
                    self.stop_locked(&msg.tp, true, &status.topic_id).await?;
                }
                // It stopped on its own (a lost log): start it afresh.
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(partition = %msg.tp, "replica found stopped; restarting it");
                    self.replicas.remove(&msg.tp);
                }
            }
        }
        let tp = msg.tp.clone();
        let this = Arc::clone(&self);
        let replica = blocking(move || this.open_replica(&msg)).await?;
        let arbiter = &self.arbiters[arbiter_index(&tp, self.arbiters.len())];
        let addr = PartitionReplica::start_in_arbiter(arbiter, move |_| replica);
        self.replicas.insert(tp, addr.clone());
        Ok(addr)
    }

    async fn update_running(
        &self,
        addr: &Addr<PartitionReplica>,
        msg: &EnsureReplica,
    ) -> Result<()> {
        let stopped = replica_stopped(&msg.tp);
        addr.send(UpdateConfig {
            config: msg.config.clone(),
        })
        .await
        .map_err(&stopped)??;
        if msg.is_leader {
            addr.send(BecomeLeader {
                leader_epoch: msg.leader_epoch,
                isr: msg.isr.clone(),
            })
            .await
            .map_err(&stopped)?
        } else {
            addr.send(BecomeFollower {
                leader_epoch: msg.leader_epoch,
                // Not in EnsureReplica yet: the fetcher (wave 2) will need it.
                leader_id: -1,
            })
            .await
            .map_err(&stopped)?
        }
    }

    /// Opens the log and builds the replica. Blocking (log recovery, producer state).
    fn open_replica(&self, msg: &EnsureReplica) -> Result<PartitionReplica> {
        self.log_dir.check()?;
        let now = now_ms();
        let (log, cleaner_first_dirty_offset) = {
            let guard = self
                .log_manager
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let lm = guard.as_ref().ok_or_else(stopped_manager)?;
            let log = lm.open_log(&msg.tp, msg.config.clone(), Some(&msg.topic_id), now)?;
            (log, lm.cleaner_offset(&msg.tp))
        };
        let high_watermark = self
            .high_watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&msg.tp)
            .copied()
            .unwrap_or(0);
        PartitionReplica::new(ReplicaInit {
            tp: msg.tp.clone(),
            topic_id: msg.topic_id.clone(),
            log,
            leader_epoch: msg.leader_epoch,
            is_leader: msg.is_leader,
            isr: msg.isr.clone(),
            high_watermark,
            cleaner_first_dirty_offset,
            config: self.config.replica.clone(),
            log_dir: self.log_dir.clone(),
        })
    }

    async fn stop(self: Arc<Self>, msg: StopReplica) -> Result<()> {
        let lock = self.partition_lock(&msg.tp);
        let _guard = lock.lock().await;
        self.stop_locked(&msg.tp, msg.delete, &now_ms().to_string())
            .await?;
        drop(_guard);
        if msg.delete {
            // Forget the lock unless someone waits on it (they hold clones).
            let mut locks = self
                .partition_locks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if locks
                .get(&msg.tp)
                .is_some_and(|l| Arc::strong_count(l) <= 2)
            {
                locks.remove(&msg.tp);
            }
        }
        Ok(())
    }

    /// Stops `tp`'s replica (caller holds its partition lock); if `delete`, removes its
    /// directory (renamed with `tag` first) and checkpoint entries.
    async fn stop_locked(
        self: &Arc<Self>,
        tp: &TopicPartition,
        delete: bool,
        tag: &str,
    ) -> Result<()> {
        let closed = match self.replicas.remove(tp) {
            Some(addr) => Some(
                addr.send(Shutdown)
                    .await
                    .map_err(replica_stopped(tp))
                    .and_then(|r| r),
            ),
            None => None,
        };
        let this = Arc::clone(self);
        let tp = tp.clone();
        if delete {
            if let Some(Err(e)) = &closed {
                tracing::warn!(partition = %tp, error = %e, "closing the log before deleting it failed");
            }
            let tag = tag.to_owned();
            return blocking(move || this.delete_partition(&tp, &tag)).await;
        }
        match closed {
            None => Ok(()),
            Some(Err(e)) => Err(e),
            Some(Ok(offsets)) => {
                blocking(move || this.record(vec![(tp, None, offsets)], ALL_CHECKPOINTS)).await
            }
        }
    }

    /// Blocking.
    fn delete_partition(&self, tp: &TopicPartition, tag: &str) -> Result<()> {
        let mut guard = self
            .log_manager
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let lm = guard.as_mut().ok_or_else(stopped_manager)?;
        lm.delete_partition(tp, tag)?;
        let mut high_watermarks = self
            .high_watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if high_watermarks.remove(tp).is_some() {
            self.write_high_watermarks(&high_watermarks)?;
        }
        tracing::info!(partition = %tp, "partition deleted");
        Ok(())
    }

    async fn checkpoint(self: Arc<Self>, what: Checkpoints) -> Result<()> {
        // Ask every replica first, then collect: they answer in parallel.
        let asked: Vec<_> = self
            .replicas
            .entries()
            .into_iter()
            .map(|(tp, addr)| {
                let status = addr.send(Status);
                (tp, addr, status)
            })
            .collect();
        let mut entries = Vec::with_capacity(asked.len());
        for (tp, addr, status) in asked {
            // A replica stopping meanwhile records its own final offsets.
            if let Ok(Ok(s)) = status.await {
                let offsets = ClosedReplica {
                    offsets: LogOffsets {
                        recovery_point: s.recovery_point,
                        log_start_offset: s.log_start_offset,
                    },
                    high_watermark: s.high_watermark,
                    cleaner_first_dirty_offset: s.cleaner_first_dirty_offset,
                };
                entries.push((tp, Some(addr), offsets));
            }
        }
        let this = Arc::clone(&self);
        blocking(move || this.record(entries, what)).await
    }

    /// Writes `entries` into the checkpoint files `what` names. Blocking.
    fn record(&self, entries: Vec<CheckpointEntry>, what: Checkpoints) -> Result<()> {
        let mut guard = self
            .log_manager
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let lm = guard.as_mut().ok_or_else(stopped_manager)?;
        let entries: Vec<(TopicPartition, ClosedReplica)> = entries
            .into_iter()
            .filter(|(tp, running, _)| match running {
                Some(addr) => self.replicas.get(tp).as_ref() == Some(addr),
                None => true,
            })
            .map(|(tp, _, offsets)| (tp, offsets))
            .collect();
        if what.offsets {
            lm.checkpoint(entries.iter().map(|(tp, c)| (tp.clone(), c.offsets)))?;
            for (tp, c) in &entries {
                if lm.cleaner_offset(tp) != c.cleaner_first_dirty_offset {
                    lm.set_cleaner_offset(tp, c.cleaner_first_dirty_offset)?;
                }
            }
        }
        if what.high_watermarks {
            let mut high_watermarks = self
                .high_watermarks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (tp, c) in &entries {
                high_watermarks.insert(tp.clone(), c.high_watermark);
            }
            self.write_high_watermarks(&high_watermarks)?;
        }
        Ok(())
    }

    fn write_high_watermarks(&self, high_watermarks: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        let path = self.config.data_dir.join(REPLICATION_OFFSET_CHECKPOINT);
        Ok(OffsetCheckpointFile::new(path).write(high_watermarks)?)
    }

    async fn shutdown(self: Arc<Self>) -> Result<()> {
        self.shutting_down.store(true, Ordering::Release);
        // Let EnsureReplica / StopReplica in flight finish: take every partition's lock.
        let locks: Vec<_> = self
            .partition_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut guards = Vec::with_capacity(locks.len());
        for lock in locks {
            guards.push(lock.lock_owned().await);
        }
        // Every replica flushes and closes at once; answers are collected in order.
        let mut asked = Vec::new();
        for (tp, addr) in self.replicas.entries() {
            self.replicas.remove(&tp);
            let closed = addr.send(Shutdown);
            asked.push((tp, closed));
        }
        let mut closed = Vec::with_capacity(asked.len());
        let mut failure = None;
        for (tp, answer) in asked {
            match answer.await.map_err(replica_stopped(&tp)).and_then(|r| r) {
                Ok(offsets) => closed.push((tp, None, offsets)),
                Err(e) => {
                    tracing::error!(partition = %tp, error = %e, "closing a log failed: no clean-shutdown marker");
                    failure.get_or_insert(e);
                }
            }
        }
        if let Err(offline) = self.log_dir.check() {
            tracing::error!(error = %offline, "no checkpoints and no clean-shutdown marker written: \
                the next start recovers every log");
            for arbiter in &self.arbiters {
                arbiter.stop();
            }
            return Err(offline);
        }
        let clean = failure.is_none();
        let this = Arc::clone(&self);
        let written = blocking(move || {
            this.record(closed, ALL_CHECKPOINTS)?;
            let lm = this
                .log_manager
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .ok_or_else(stopped_manager)?;
            if clean {
                // Every log is closed and checkpointed: write the marker last.
                lm.shutdown(std::iter::empty(), now_ms())?;
            }
            Ok(())
        })
        .await;
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        drop(guards);
        written?;
        match failure {
            Some(e) => Err(e),
            None => {
                tracing::info!(dir = %self.config.data_dir.display(), "replicas shut down cleanly");
                Ok(())
            }
        }
    }
}

/// Runs `f` on the blocking pool.
async fn blocking<R, F>(f: F) -> Result<R>
where
    R: Send + 'static,
    F: FnOnce() -> Result<R> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Stopped(format!("replica manager: a blocking task failed: {e}")))?
}

fn stopped_manager() -> Error {
    Error::Stopped("replica manager".into())
}

fn replica_stopped(tp: &TopicPartition) -> impl Fn(MailboxError) -> Error + '_ {
    move |_| Error::Stopped(tp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable_and_spreads() {
        let tp = TopicPartition::new("orders", 3);
        assert_eq!(arbiter_index(&tp, 4), arbiter_index(&tp.clone(), 4));
        assert_eq!(arbiter_index(&tp, 1), 0);
        assert_eq!(arbiter_index(&tp, 0), 0);
        let mut used = [0usize; 4];
        for p in 0..64 {
            used[arbiter_index(&TopicPartition::new("orders", p), 4)] += 1;
        }
        assert!(used.iter().all(|n| *n >= 8), "uneven spread: {used:?}");
    }
}
