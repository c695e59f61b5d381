//! [`PartitionReplica`]: one partition replica on this broker — the only owner and writer
//! of its [`Log`]. Owns, besides the log: the topic id, leader epoch, whether this broker
//! leads, the ISR (broker ids), `min.insync.replicas`, the followers' log end offsets, the
//! high watermark (and its watch channel), the idempotent-producer state, the waiting
//! room of acks=all produces, and the compaction checkpoint (first dirty offset).
//!
//! # Produce
//! Leader check → acks=all with an ISR below `min.insync.replicas` is refused before
//! anything is appended → idempotence checks on the batch headers (a retry answers the
//! original offsets) → `Log::append_as_leader` (validation, offsets, leader epoch) →
//! producer state updated → [`maybe_advance_high_watermark`] → acks=all produces wait in
//! the [`AckWaitingRoom`] until the high watermark passes their last offset (at once
//! while the ISR is this broker alone) or their timeout expires.
//!
//! # High watermark
//! `maybe_advance_high_watermark` is the only place that moves it: the minimum log end
//! offset over the ISR (this broker's from the log; followers' from
//! [`UpdateFollowerOffset`], a follower in the ISR whose offset is not known yet holds it
//! back). It never goes down. Every move is published on a `watch` channel, which
//! long-poll fetches wait on ([`SubscribeHighWatermark`]), and completes waiting acks=all
//! produces. Consumers never read at or above it.
//!
//! # Blocking work
//! Appends (a `write` into the page cache) and reads (index lookups and a few header
//! `pread`s; the records go out as a [`FileSlice`](crate::log::segment::FileSlice), never
//! copied) run on the actor, on its arbiter thread. What can stall runs on tokio's blocking
//! pool, never on an arbiter:
//!
//! - **fsync**, in two phases. Phase 1 fsyncs the unflushed segment files through fresh
//!   file handles on the blocking pool while the actor keeps serving (fsync writes back a
//!   file's dirty pages whichever descriptor asks). Phase 2 calls `Log::flush`, cheap by
//!   then, to move the recovery point. Flushes happen when a segment rolls (as Kafka
//!   does, so recovery after a crash starts near the end), when `flush.messages` is reached
//!   (the produce answers after the flush) and when `flush.ms` is due.
//! - **Work that needs `&mut Log` and may block** — phase 2 of a flush, retention's segment
//!   deletions, compaction, DeleteRecords (it rewrites `leader-epoch-checkpoint`), close —
//!   *moves the `Log`* into `spawn_blocking` and back while the actor waits (`ctx.wait` /
//!   [`AtomicResponse`]): the mailbox is not read until the log is back, so no handler
//!   ever finds it missing, and the arbiter thread serves other partitions meanwhile.
//!
//! Why not `Arc<Mutex<Log>>` with the blocking work on another thread: an append on the
//! actor would then block the arbiter thread — and every partition on it — on the lock
//! for as long as the blocking work holds it. Moving the log confines the wait to this
//! partition and makes it explicit. The price: while a retention pass or compaction runs,
//! this partition's requests queue. Compaction of a large log is the long one: the engine's
//! cleaner needs `&mut Log` for a whole pass (a read-only rewrite followed by a short swap
//! would lift this). One blocking write stays on the actor: the first append of a new
//! leader epoch rewrites `leader-epoch-checkpoint` (small, once per epoch) inside
//! `Log::append_as_leader`.
//!
//! # Periodic work (`run_interval`)
//! Retention every `log.retention.check.interval.ms` (`Log::delete_old_segments` below the
//! high watermark; the files that reads of rolled segments opened are closed then),
//! compaction every `log.cleaner.backoff.ms` when the log is compacted and dirty enough
//! (`cleaner::maybe_clean` from the first dirty offset, which the
//! [`ReplicaManager`](super::ReplicaManager) checkpoints from [`Status`]), the `flush.ms`
//! check every `log.flush.scheduler.interval.ms`, producer-id expiry every
//! `producer.id.expiration.check.interval.ms`.
//!
//! Producer-state snapshots (`<offset>.snapshot`, see `snapshot.rs`) are written on the
//! blocking pool without moving the log: at a segment roll (the state before the rolling
//! append, at the new segment's base) while the actor keeps serving, and at [`Shutdown`]
//! after the log closed (at the log end offset). Retention deletes those below the new log
//! start offset inside its blocking pass.
//!
//! Crash behaviour: the log recovers itself when opened; the high watermark restarts from
//! the manager's checkpoint (clamped to the log); producer state is loaded from the latest
//! snapshot at or below the log end offset plus the batch headers after it (or rebuilt
//! from the whole log); waiting produces were never acknowledged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use actix::fut::{self, ActorFuture, ActorFutureExt, WrapFuture};
use actix::{Actor, ActorContext, AsyncContext, AtomicResponse, Context, Handler, ResponseFuture};
use tokio::sync::{oneshot, watch};

use super::log_dir::LogDirHealth;
use crate::log::batch::BatchHeader;
use crate::log::checkpoint::TopicPartition;
use crate::log::cleaner;
use crate::log::index::TimestampOffset;
use crate::log::manager::LogOffsets;
use crate::log::{Log, LogError};
use crate::{Error, Result};

use super::config::{schedule, ReplicaConfig};
use super::messages::{
    BecomeFollower, BecomeLeader, ClosedReplica, DeleteRecords, EpochEndOffset, Fetch, FetchResult,
    ListOffsets, OffsetForLeaderEpoch, Produce, ProduceResult, ReplicaStatus, Shutdown, Status,
    SubscribeHighWatermark, UpdateConfig, UpdateFollowerOffset, EARLIEST_TIMESTAMP,
    HIGH_WATERMARK_OFFSET, LATEST_TIMESTAMP, MAX_TIMESTAMP, READ_COMMITTED, READ_UNCOMMITTED,
};
use super::now_ms;
use super::producer_state::ProducerStateManager;
use super::snapshot;
use super::waiting_room::{AckOutcome, AckWaitingRoom};

/// Messages a replica may queue before senders wait (actix's default of 16 is too small
/// for a partition that many connections produce to).
const MAILBOX_CAPACITY: usize = 1024;

/// What a replica starts from: its opened log and the facts the metadata and the data
/// dir's checkpoints hold about it.
#[derive(Debug)]
pub struct ReplicaInit {
    pub tp: TopicPartition,
    pub topic_id: String,
    pub log: Log,
    pub leader_epoch: i32,
    pub is_leader: bool,
    /// Broker ids; this broker among them when it leads.
    pub isr: Vec<i32>,
    /// From `replication-offset-checkpoint` (0 if unknown); clamped to the log.
    pub high_watermark: i64,
    /// From `cleaner-offset-checkpoint` (0 if unknown); clamped to the log.
    pub cleaner_first_dirty_offset: i64,
    pub config: ReplicaConfig,
    /// The data directory's health, shared by every replica of the broker.
    pub log_dir: LogDirHealth,
}

/// One partition replica. See the module documentation.
#[derive(Debug)]
pub struct PartitionReplica {
    tp: TopicPartition,
    topic_id: String,
    dir: PathBuf,
    config: ReplicaConfig,
    log_dir: LogDirHealth,
    /// `None` only while a blocking operation holds it (the mailbox is paused then) and
    /// after [`Shutdown`].
    log: Option<Log>,
    leader_epoch: i32,
    is_leader: bool,
    isr: Vec<i32>,
    min_insync_replicas: i32,
    high_watermark: i64,
    high_watermark_tx: watch::Sender<i64>,
    /// Followers' log end offsets as their fetches showed them (none until replication).
    follower_log_end_offsets: HashMap<i32, i64>,
    producers: ProducerStateManager,
    ack_waiting_room: AckWaitingRoom,
    cleaner_first_dirty_offset: i64,
    flush_in_progress: bool,
    /// Produces (`flush.messages`) waiting for the flush in progress.
    flush_waiters: Vec<oneshot::Sender<AckOutcome>>,
}

impl PartitionReplica {
    /// Builds the replica around an opened log, loading the producer state from the latest
    /// snapshot and the log's batch headers after it — file reads (and deletes of snapshots
    /// above the log end offset): call it off the arbiter threads (the
    /// [`ReplicaManager`](super::ReplicaManager) does, on the blocking pool).
    pub fn new(init: ReplicaInit) -> Result<PartitionReplica> {
        let ReplicaInit {
            tp,
            topic_id,
            mut log,
            leader_epoch,
            is_leader,
            isr,
            high_watermark,
            cleaner_first_dirty_offset,
            config,
            log_dir,
        } = init;
        let producers = ProducerStateManager::load(&log, now_ms())?;
        // Loading may have read rolled segments; their files need not stay open.
        log.close_inactive_files()?;
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        let high_watermark = high_watermark.clamp(start, end);
        let mut replica = PartitionReplica {
            dir: log.dir().to_path_buf(),
            min_insync_replicas: log.config().min_insync_replicas,
            cleaner_first_dirty_offset: cleaner_first_dirty_offset.clamp(start, end),
            log: Some(log),
            tp,
            topic_id,
            config,
            log_dir,
            leader_epoch,
            is_leader,
            isr,
            high_watermark,
            high_watermark_tx: watch::Sender::new(high_watermark),
            follower_log_end_offsets: HashMap::new(),
            producers,
            ack_waiting_room: AckWaitingRoom::default(),
            flush_in_progress: false,
            flush_waiters: Vec::new(),
        };
        replica.maybe_advance_high_watermark();
        Ok(replica)
    }

    fn log(&self) -> Result<&Log> {
        self.log
            .as_ref()
            .ok_or_else(|| Error::Stopped(self.tp.to_string()))
    }

    /// Leads, and its data directory is online.
    fn check_leader(&self) -> Result<()> {
        self.log_dir.check()?;
        if self.is_leader {
            Ok(())
        } else {
            Err(Error::NotLeaderOrFollower(self.tp.to_string()))
        }
    }

    /// Moves the high watermark to the minimum log end offset over the ISR if that is
    /// higher; publishes it and completes the acks=all produces it covers. The one place
    /// that moves the high watermark. Followers set theirs from the leader (wave 2).
    fn maybe_advance_high_watermark(&mut self) -> bool {
        if !self.is_leader {
            return false;
        }
        let Some(log) = &self.log else {
            return false;
        };
        let mut candidate = log.log_end_offset();
        for id in self.isr.iter().filter(|id| **id != self.config.broker_id) {
            match self.follower_log_end_offsets.get(id) {
                Some(leo) => candidate = candidate.min(*leo),
                None => return false,
            }
        }
        if candidate <= self.high_watermark {
            return false;
        }
        self.high_watermark = candidate;
        self.high_watermark_tx.send_replace(candidate);
        let (isr, min) = (self.isr.len(), self.min_insync_replicas);
        self.ack_waiting_room.complete_up_to(candidate, || {
            if (isr as i64) < min as i64 {
                Err(Error::NotEnoughReplicasAfterAppend { isr, min })
            } else {
                Ok(())
            }
        });
        true
    }

    /// The produce path up to the append; see the module documentation.
    fn produce(&mut self, msg: Produce, ctx: &mut Context<Self>) -> Result<PendingProduce> {
        self.check_leader()?;
        if !matches!(msg.acks, -1..=1) {
            return Err(Error::InvalidRequest(format!(
                "acks must be -1, 0 or 1, not {}",
                msg.acks
            )));
        }
        if msg.acks == -1 && (self.isr.len() as i64) < self.min_insync_replicas as i64 {
            return Err(Error::NotEnoughReplicas {
                isr: self.isr.len(),
                min: self.min_insync_replicas,
            });
        }
        let records = msg.records;
        let headers = batch_headers(&records)?;
        if let Some(dup) = self.producers.check_append(&headers)? {
            tracing::debug!(partition = %self.tp, base_offset = dup.base_offset, "duplicate batch from an idempotent producer");
            let result = ProduceResult {
                base_offset: dup.base_offset,
                log_append_time: dup.log_append_time,
                log_start_offset: self.log()?.log_start_offset(),
            };
            let replicated = (msg.acks == -1)
                .then(|| self.wait_for_high_watermark(dup.last_offset + 1))
                .flatten();
            return Ok(self.pending(result, None, replicated));
        }
        let leader_epoch = self.leader_epoch;
        let Some(log) = self.log.as_mut() else {
            return Err(Error::Stopped(self.tp.to_string()));
        };
        let segments_before = log.segment_count();
        let info = log.append_as_leader(&records, leader_epoch, msg.now_ms)?;
        let rolled = log.segment_count() > segments_before;
        // The state before this append is the state as of the new segment's base.
        let roll_snapshot = rolled
            .then(|| log.segment_bases().last().copied())
            .flatten()
            .map(|base| (base, self.producers.encode_snapshot()));
        let needs_flush = log.needs_flush(msg.now_ms);
        let log_start_offset = log.log_start_offset();
        if headers.iter().any(BatchHeader::has_producer_id) {
            // Offsets are assigned now, in order from the first: which batch got which.
            let mut appended = headers;
            let mut next = info.first_offset;
            for h in appended.iter_mut() {
                h.base_offset = next;
                h.partition_leader_epoch = leader_epoch;
                next = h.next_offset();
            }
            self.producers
                .on_appended(&appended, info.log_append_time, msg.now_ms);
        }
        self.maybe_advance_high_watermark();
        if let Some((base, bytes)) = roll_snapshot {
            self.write_snapshot(ctx, base, bytes);
        }
        let flushed = if needs_flush {
            let (tx, rx) = oneshot::channel();
            self.start_flush(ctx, Some(tx));
            Some(rx)
        } else {
            if rolled {
                self.start_flush(ctx, None);
            }
            None
        };
        let replicated = if msg.acks == -1 {
            self.wait_for_high_watermark(info.last_offset + 1)
        } else {
            None
        };
        let result = ProduceResult {
            base_offset: info.first_offset,
            log_append_time: info.log_append_time,
            log_start_offset,
        };
        Ok(self.pending(result, flushed, replicated))
    }

    fn pending(
        &self,
        result: ProduceResult,
        flushed: Option<oneshot::Receiver<AckOutcome>>,
        replicated: Option<oneshot::Receiver<AckOutcome>>,
    ) -> PendingProduce {
        // The name is for error messages of produces that wait; most do not.
        let waits = flushed.is_some() || replicated.is_some();
        PendingProduce {
            result,
            flushed,
            replicated,
            partition: if waits {
                self.tp.to_string()
            } else {
                String::new()
            },
        }
    }

    /// `None` if the high watermark already reached `required_offset`, else a parked
    /// produce's receiver.
    fn wait_for_high_watermark(
        &mut self,
        required_offset: i64,
    ) -> Option<oneshot::Receiver<AckOutcome>> {
        (self.high_watermark < required_offset).then(|| self.ack_waiting_room.park(required_offset))
    }

    /// Runs `op` on the blocking pool with the log moved into it; the returned future puts
    /// the log back. Run it with `ctx.wait` or [`AtomicResponse`] so that no message is
    /// handled while the log is away. A panic in `op` loses the log: the replica stops.
    ///
    /// Timer callbacks must check that the log is here first: actix calls an interval's
    /// callback once per missed tick in a row, without pausing for a wait in between.
    fn with_log_blocking<R, F>(&mut self, op: F) -> impl ActorFuture<Self, Output = Result<R>>
    where
        R: Send + 'static,
        F: FnOnce(&mut Log) -> Result<R> + Send + 'static,
    {
        let log = self.log.take();
        let partition = self.tp.to_string();
        async move {
            let Some(mut log) = log else {
                return (Blocking::Absent, Err(Error::Stopped(partition)));
            };
            match tokio::task::spawn_blocking(move || {
                let result = op(&mut log);
                (log, result)
            })
            .await
            {
                Ok((log, result)) => (Blocking::Returned(Box::new(log)), result),
                Err(e) => (
                    Blocking::Lost,
                    Err(Error::Stopped(format!(
                        "{partition}: a blocking log operation failed: {e}"
                    ))),
                ),
            }
        }
        .into_actor(self)
        .map(|(log, result), act, ctx| {
            match log {
                Blocking::Returned(log) => act.log = Some(*log),
                Blocking::Absent => {}
                Blocking::Lost => {
                    tracing::error!(partition = %act.tp, "log lost; stopping the replica");
                    ctx.stop();
                }
            }
            result
        })
    }

    /// Starts a two-phase flush (module documentation) unless one is running; `waiter`
    /// hears when the recovery point has reached the log end offset as it was when phase 2
    /// began — after every append made before this call.
    fn start_flush(
        &mut self,
        ctx: &mut Context<Self>,
        waiter: Option<oneshot::Sender<AckOutcome>>,
    ) {
        self.flush_waiters.extend(waiter);
        if self.flush_in_progress {
            return;
        }
        let Some(log) = &self.log else {
            self.finish_flush(Err(Error::Stopped(self.tp.to_string())));
            return;
        };
        self.flush_in_progress = true;
        let paths = unflushed_segment_paths(log);
        let phase1 = async move { tokio::task::spawn_blocking(move || presync(&paths)).await };
        ctx.spawn(phase1.into_actor(self).map(|presynced, act, ctx| {
            match presynced {
                Ok(Ok(())) => {}
                // Phase 2 fsyncs everything again and reports what still fails.
                Ok(Err(e)) => {
                    tracing::debug!(partition = %act.tp, error = %e, "pre-flush fsync failed")
                }
                Err(e) => tracing::debug!(partition = %act.tp, error = %e, "pre-flush task failed"),
            }
            let now = now_ms();
            ctx.wait(
                act.with_log_blocking(move |log| Ok(log.flush(now)?))
                    .map(|result, act, _| act.finish_flush(result)),
            );
        }));
    }

    /// Writes a producer-state snapshot at `offset` on the blocking pool while the actor
    /// keeps serving (it needs the directory, not the log). A failure is logged: the next
    /// open falls back to an older snapshot or a scan.
    fn write_snapshot(&mut self, ctx: &mut Context<Self>, offset: i64, bytes: Vec<u8>) {
        let dir = self.dir.clone();
        let write = async move {
            tokio::task::spawn_blocking(move || snapshot::write(&dir, offset, &bytes)).await
        };
        ctx.spawn(write.into_actor(self).map(move |written, act, _| match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(partition = %act.tp, offset, error = %e, "producer-state snapshot failed")
            }
            Err(e) => {
                tracing::warn!(partition = %act.tp, offset, error = %e, "producer-state snapshot task failed")
            }
        }));
    }

    fn finish_flush(&mut self, result: Result<()>) {
        self.flush_in_progress = false;
        if let Err(e) = &result {
            tracing::error!(partition = %self.tp, error = %e, "flush failed");
            self.log_dir.observe(e);
        }
        for waiter in self.flush_waiters.drain(..) {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::Log(LogError::Io {
                    op: "flush",
                    path: self.dir.clone(),
                    source: std::io::Error::other(e.to_string()),
                })),
            };
            let _ = waiter.send(outcome);
        }
    }

    /// `flush.ms` check (`log.flush.scheduler.interval.ms`).
    fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        if !self.log_dir.is_offline()
            && self
                .log
                .as_ref()
                .is_some_and(|log| log.needs_flush(now_ms()))
        {
            self.start_flush(ctx, None);
        }
    }

    /// Retention pass (`log.retention.check.interval.ms`), on the blocking pool.
    fn delete_old_segments(&mut self, ctx: &mut Context<Self>) {
        if self.log.is_none() || self.log_dir.is_offline() {
            return;
        }
        // Also the time to close the files that reads of rolled segments opened (cheap:
        // `close`s), so an idle partition holds one descriptor; a reader still going
        // reopens its segment once.
        if let Some(Err(e)) = self.log.as_mut().map(Log::close_inactive_files) {
            let e = Error::from(e);
            tracing::warn!(partition = %self.tp, error = %e, "closing idle segment files failed");
            self.log_dir.observe(&e);
        }
        let (high_watermark, now) = (self.high_watermark, now_ms());
        let pass = self.with_log_blocking(move |log| {
            let deleted = log.delete_old_segments(high_watermark, now)?;
            if deleted > 0 {
                // Not fatal: the segments went, and an old snapshot is harmless.
                if let Err(e) = snapshot::delete_below(log.dir(), log.log_start_offset()) {
                    tracing::warn!(dir = %log.dir().display(), error = %e, "deleting old producer-state snapshots failed");
                }
            }
            Ok((deleted, log.log_start_offset()))
        });
        ctx.wait(pass.map(|result, act, _| match result {
            Ok((0, _)) => {}
            Ok((deleted, log_start_offset)) => {
                act.producers.truncate_head(log_start_offset);
                tracing::debug!(partition = %act.tp, deleted, log_start_offset, "retention deleted segments");
            }
            Err(e) => {
                tracing::warn!(partition = %act.tp, error = %e, "retention pass failed");
                act.log_dir.observe(&e);
            }
        }));
    }

    /// Compaction pass (`log.cleaner.backoff.ms`) if the log is compacted and dirty
    /// enough, on the blocking pool.
    fn maybe_clean(&mut self, ctx: &mut Context<Self>) {
        let Some(log) = self.log.as_ref().filter(|_| !self.log_dir.is_offline()) else {
            return;
        };
        let (first_dirty, high_watermark, now) = (
            self.cleaner_first_dirty_offset,
            self.high_watermark,
            now_ms(),
        );
        // The same test `maybe_clean` makes, in memory, so that an idle compacted log does
        // not pause its mailbox for nothing.
        let due = log.config().cleanup_policy.compact
            && cleaner::cleanable_range(log, first_dirty, high_watermark, now).is_some_and(|r| {
                r.dirty_ratio >= log.config().min_cleanable_dirty_ratio
                    && r.first_dirty_offset < r.end_offset
            });
        if !due {
            return;
        }
        let cleaner_config = self.config.cleaner.clone();
        let pass = self.with_log_blocking(move |log| {
            Ok(cleaner::maybe_clean(
                log,
                &cleaner_config,
                first_dirty,
                high_watermark,
                now,
            )?)
        });
        ctx.wait(pass.map(|result, act, _| match result {
            Ok(Some(cleaned)) => act.cleaner_first_dirty_offset = cleaned.first_dirty_offset,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(partition = %act.tp, error = %e, "compaction failed");
                act.log_dir.observe(&e);
            }
        }));
    }

    fn status(&self) -> Result<ReplicaStatus> {
        let log = self.log()?;
        Ok(ReplicaStatus {
            topic_partition: self.tp.clone(),
            topic_id: self.topic_id.clone(),
            log_end_offset: log.log_end_offset(),
            high_watermark: self.high_watermark,
            log_start_offset: log.log_start_offset(),
            recovery_point: log.recovery_point(),
            leader_epoch: self.leader_epoch,
            is_leader: self.is_leader,
            isr: self.isr.clone(),
            size: log.size(),
            segment_count: log.segment_count(),
            cleaner_first_dirty_offset: self.cleaner_first_dirty_offset,
            producer_count: self.producers.len(),
            waiting_produces: self.ack_waiting_room.len(),
            thread: std::thread::current().name().map(str::to_owned),
        })
    }
}

impl Actor for PartitionReplica {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if let Some(every) = schedule(self.config.retention_check_interval_ms) {
            ctx.run_interval(every, |act, ctx| act.delete_old_segments(ctx));
        }
        if self.config.cleaner.enabled {
            if let Some(every) = schedule(self.config.cleaner_backoff_ms) {
                ctx.run_interval(every, |act, ctx| act.maybe_clean(ctx));
            }
        }
        if let Some(every) = schedule(self.config.flush_scheduler_interval_ms) {
            ctx.run_interval(every, |act, ctx| act.maybe_flush(ctx));
        }
        if let Some(every) = schedule(self.config.producer_id_expiration_check_interval_ms) {
            ctx.run_interval(every, |act, _| {
                let expired = act
                    .producers
                    .remove_expired(now_ms(), act.config.producer_id_expiration_ms);
                if expired > 0 {
                    tracing::debug!(partition = %act.tp, expired, "producer ids expired");
                }
            });
        }
        tracing::info!(partition = %self.tp, leader = self.is_leader, leader_epoch = self.leader_epoch, "replica started");
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let partition = self.tp.to_string();
        self.ack_waiting_room
            .fail_all(|| Error::Stopped(partition.clone()));
        tracing::info!(%partition, "replica stopped");
    }
}

/// Where the log is after a blocking operation.
enum Blocking {
    Returned(Box<Log>),
    /// It was not here to begin with (stopped, or another operation holds it).
    Absent,
    /// The operation panicked with it.
    Lost,
}

/// A produce after its append: what it still waits for.
struct PendingProduce {
    result: ProduceResult,
    /// `flush.messages` asked for an fsync before the answer.
    flushed: Option<oneshot::Receiver<AckOutcome>>,
    /// acks=all: the high watermark must pass the batch.
    replicated: Option<oneshot::Receiver<AckOutcome>>,
    partition: String,
}

impl PendingProduce {
    async fn wait(self, timeout: Duration) -> Result<ProduceResult> {
        let PendingProduce {
            result,
            flushed,
            replicated,
            partition,
        } = self;
        if let Some(rx) = flushed {
            rx.await.map_err(|_| Error::Stopped(partition.clone()))??;
        }
        if let Some(rx) = replicated {
            match tokio::time::timeout(timeout, rx).await {
                Ok(outcome) => outcome.map_err(|_| Error::Stopped(partition.clone()))??,
                Err(_) => {
                    return Err(Error::Timeout(format!(
                    "{partition}: acks=all produce at offset {} not replicated within {timeout:?}",
                    result.base_offset
                )))
                }
            }
        }
        Ok(result)
    }
}

impl Handler<Produce> for PartitionReplica {
    type Result = ResponseFuture<Result<ProduceResult>>;

    fn handle(&mut self, msg: Produce, ctx: &mut Context<Self>) -> Self::Result {
        let timeout = Duration::from_millis(msg.timeout_ms);
        match self.produce(msg, ctx) {
            Ok(pending) => Box::pin(pending.wait(timeout)),
            Err(e) => {
                self.log_dir.observe(&e);
                Box::pin(std::future::ready(Err(e)))
            }
        }
    }
}

impl Handler<Fetch> for PartitionReplica {
    type Result = Result<FetchResult>;

    fn handle(&mut self, msg: Fetch, _ctx: &mut Context<Self>) -> Self::Result {
        self.check_leader()?;
        check_isolation_level(msg.isolation_level)?;
        let high_watermark = self.high_watermark;
        let log = self.log()?;
        let data = log.read(
            msg.offset,
            msg.max_bytes,
            Some(high_watermark),
            msg.min_one_batch,
        )?;
        Ok(FetchResult {
            high_watermark,
            last_stable_offset: high_watermark,
            log_start_offset: log.log_start_offset(),
            records: data.slice,
            first_batch_offset: data.first_batch_offset,
        })
    }
}

impl Handler<SubscribeHighWatermark> for PartitionReplica {
    type Result = Result<watch::Receiver<i64>>;

    fn handle(&mut self, _: SubscribeHighWatermark, _ctx: &mut Context<Self>) -> Self::Result {
        Ok(self.high_watermark_tx.subscribe())
    }
}

impl Handler<ListOffsets> for PartitionReplica {
    type Result = Result<Option<TimestampOffset>>;

    fn handle(&mut self, msg: ListOffsets, _ctx: &mut Context<Self>) -> Self::Result {
        self.check_leader()?;
        check_isolation_level(msg.isolation_level)?;
        // Without transactions the last stable offset is the high watermark, so both
        // isolation levels read up to it.
        let last_fetchable = self.high_watermark;
        let log = self.log()?;
        let below_last_fetchable =
            |found: Option<TimestampOffset>| found.filter(|t| t.offset < last_fetchable);
        match msg.timestamp {
            EARLIEST_TIMESTAMP => Ok(Some(TimestampOffset {
                timestamp: -1,
                offset: log.log_start_offset(),
            })),
            LATEST_TIMESTAMP => Ok(Some(TimestampOffset {
                timestamp: -1,
                offset: last_fetchable,
            })),
            MAX_TIMESTAMP => Ok(below_last_fetchable(log.max_timestamp_and_offset()?)),
            t if t >= 0 => Ok(below_last_fetchable(log.offset_for_timestamp(t)?)),
            t => Err(Error::InvalidRequest(format!(
                "ListOffsets timestamp {t} is neither ≥ 0 nor one of -1, -2, -3"
            ))),
        }
    }
}

impl Handler<DeleteRecords> for PartitionReplica {
    type Result = AtomicResponse<Self, Result<i64>>;

    fn handle(&mut self, msg: DeleteRecords, _ctx: &mut Context<Self>) -> Self::Result {
        let checked = self.check_leader().and_then(|()| {
            let log = self.log()?;
            if !log.config().cleanup_policy.delete {
                return Err(Error::PolicyViolation(format!(
                    "records of {} cannot be deleted: cleanup.policy does not include delete",
                    self.tp
                )));
            }
            let target = if msg.offset == HIGH_WATERMARK_OFFSET {
                self.high_watermark
            } else {
                msg.offset
            };
            if target < 0 || target > self.high_watermark {
                return Err(Error::Log(LogError::OffsetOutOfRange {
                    offset: msg.offset,
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: self.high_watermark,
                }));
            }
            Ok(target)
        });
        let target = match checked {
            Ok(target) => target,
            Err(e) => return AtomicResponse::new(Box::pin(fut::ready(Err(e)))),
        };
        let high_watermark = self.high_watermark;
        let op = self.with_log_blocking(move |log| {
            log.maybe_increment_log_start_offset(target, high_watermark)?;
            Ok(log.log_start_offset())
        });
        AtomicResponse::new(Box::pin(op.map(|result, act, _| {
            if let Ok(log_start_offset) = result {
                act.producers.truncate_head(log_start_offset);
            }
            result
        })))
    }
}

impl Handler<OffsetForLeaderEpoch> for PartitionReplica {
    type Result = Result<EpochEndOffset>;

    fn handle(&mut self, msg: OffsetForLeaderEpoch, _ctx: &mut Context<Self>) -> Self::Result {
        self.check_leader()?;
        let (leader_epoch, end_offset) = self.log()?.end_offset_for_epoch(msg.leader_epoch);
        Ok(EpochEndOffset {
            leader_epoch,
            end_offset,
        })
    }
}

impl Handler<BecomeLeader> for PartitionReplica {
    type Result = Result<()>;

    fn handle(&mut self, msg: BecomeLeader, _ctx: &mut Context<Self>) -> Self::Result {
        if msg.leader_epoch < self.leader_epoch {
            return Err(Error::InvalidRequest(format!(
                "{}: leader epoch {} is older than the current {}",
                self.tp, msg.leader_epoch, self.leader_epoch
            )));
        }
        if !self.is_leader || msg.leader_epoch > self.leader_epoch {
            // A new term: followers must show their offsets to this leader afresh.
            self.follower_log_end_offsets.clear();
        }
        if !msg.isr.contains(&self.config.broker_id) {
            tracing::warn!(partition = %self.tp, isr = ?msg.isr, broker = self.config.broker_id, "leading a partition whose ISR does not list this broker");
        }
        self.leader_epoch = msg.leader_epoch;
        self.is_leader = true;
        self.isr = msg.isr;
        self.maybe_advance_high_watermark();
        Ok(())
    }
}

impl Handler<BecomeFollower> for PartitionReplica {
    type Result = Result<()>;

    fn handle(&mut self, msg: BecomeFollower, _ctx: &mut Context<Self>) -> Self::Result {
        if msg.leader_epoch < self.leader_epoch {
            return Err(Error::InvalidRequest(format!(
                "{}: leader epoch {} is older than the current {}",
                self.tp, msg.leader_epoch, self.leader_epoch
            )));
        }
        self.leader_epoch = msg.leader_epoch;
        self.is_leader = false;
        self.follower_log_end_offsets.clear();
        let partition = self.tp.to_string();
        self.ack_waiting_room
            .fail_all(|| Error::NotLeaderOrFollower(partition.clone()));
        tracing::info!(%partition, leader = msg.leader_id, leader_epoch = msg.leader_epoch, "now a follower");
        Ok(())
    }
}

impl Handler<UpdateFollowerOffset> for PartitionReplica {
    type Result = Result<i64>;

    fn handle(&mut self, msg: UpdateFollowerOffset, _ctx: &mut Context<Self>) -> Self::Result {
        self.check_leader()?;
        self.follower_log_end_offsets
            .insert(msg.replica_id, msg.log_end_offset);
        self.maybe_advance_high_watermark();
        Ok(self.high_watermark)
    }
}

impl Handler<UpdateConfig> for PartitionReplica {
    type Result = Result<()>;

    fn handle(&mut self, msg: UpdateConfig, _ctx: &mut Context<Self>) -> Self::Result {
        let min_insync_replicas = msg.config.min_insync_replicas;
        let Some(log) = self.log.as_mut() else {
            return Err(Error::Stopped(self.tp.to_string()));
        };
        log.update_config(msg.config)?;
        self.min_insync_replicas = min_insync_replicas;
        Ok(())
    }
}

impl Handler<Status> for PartitionReplica {
    type Result = Result<ReplicaStatus>;

    fn handle(&mut self, _: Status, _ctx: &mut Context<Self>) -> Self::Result {
        self.status()
    }
}

impl Handler<Shutdown> for PartitionReplica {
    type Result = AtomicResponse<Self, Result<ClosedReplica>>;

    fn handle(&mut self, _: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let partition = self.tp.to_string();
        self.ack_waiting_room
            .fail_all(|| Error::Stopped(partition.clone()));
        let (high_watermark, cleaner_first_dirty_offset) =
            (self.high_watermark, self.cleaner_first_dirty_offset);
        let log = self.log.take();
        let producer_snapshot = self.producers.encode_snapshot();
        let close = async move {
            let Some(mut log) = log else {
                return Err(Error::Stopped(partition));
            };
            tokio::task::spawn_blocking(move || -> Result<LogOffsets> {
                let now = now_ms();
                log.flush(now)?;
                let offsets = LogOffsets::of(&log);
                let (dir, end) = (log.dir().to_path_buf(), log.log_end_offset());
                log.close(now)?;
                // After the close: a snapshot must never be ahead of durable data.
                if let Err(e) = snapshot::write(&dir, end, &producer_snapshot) {
                    tracing::warn!(dir = %dir.display(), error = %e, "producer-state snapshot at shutdown failed");
                }
                Ok(offsets)
            })
            .await
            .map_err(|e| Error::Stopped(format!("{partition}: closing the log failed: {e}")))?
        };
        AtomicResponse::new(Box::pin(close.into_actor(self).map(
            move |result, act, ctx| {
                // The close flushed everything: produces waiting for a flush are durable.
                act.flush_in_progress = false;
                for waiter in act.flush_waiters.drain(..) {
                    let _ = waiter.send(match &result {
                        Ok(_) => Ok(()),
                        Err(_) => Err(Error::Stopped(act.tp.to_string())),
                    });
                }
                ctx.stop();
                result.map(|offsets| ClosedReplica {
                    offsets,
                    high_watermark,
                    cleaner_first_dirty_offset,
                })
            },
        )))
    }
}

fn check_isolation_level(level: i8) -> Result<()> {
    if level == READ_UNCOMMITTED || level == READ_COMMITTED {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "isolation level {level} is neither 0 (read_uncommitted) nor 1 (read_committed)"
        )))
    }
}

/// The headers of the batches in `records`, walking their length fields only (the log
/// validates CRCs and records on append).
fn batch_headers(records: &[u8]) -> Result<Vec<BatchHeader>, LogError> {
    let mut out = Vec::new();
    let mut position = 0;
    while let Some(rest) = records.get(position..).filter(|r| !r.is_empty()) {
        let header = BatchHeader::parse(rest)?;
        if header.size() > rest.len() {
            return Err(LogError::CorruptBatch(format!(
                "batch at byte {position} claims {} bytes but only {} remain",
                header.size(),
                rest.len()
            )));
        }
        position += header.size();
        out.push(header);
    }
    if out.is_empty() {
        return Err(LogError::CorruptBatch("no record batch".into()));
    }
    Ok(out)
}

/// The `.log` files of the segments from the one holding the recovery point on.
fn unflushed_segment_paths(log: &Log) -> Vec<PathBuf> {
    let recovery_point = log.recovery_point();
    let skip = log
        .segment_bases()
        .iter()
        .rposition(|base| *base <= recovery_point)
        .unwrap_or(0);
    log.segments()
        .skip(skip)
        .map(|s| s.log_path().to_path_buf())
        .collect()
}

/// Phase 1 of a flush: fsync each file through its own handle. A segment deleted
/// meanwhile (retention) is skipped.
fn presync(paths: &[PathBuf]) -> std::io::Result<()> {
    for path in paths {
        match std::fs::File::open(path) {
            Ok(file) => file.sync_data()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
