//! The producer (SPEC §1): callers append records to a record accumulator — per partition, a
//! queue of batches — and a background sender task drains the ready batches, grouped by
//! leader, into one Produce request per broker.
//!
//! - **Caller side** ([`Producer::send`]): metadata for the topic (fetched if needed, waiting
//!   up to `max.block.ms`), the partition (explicit, else the [`Partitioner`]), room in
//!   `buffer.memory` (waiting up to `max.block.ms`), then the record is encoded into its
//!   partition's open batch. The returned [`DeliveryFuture`] resolves exactly once.
//! - **Sender side** (`sender` task): a batch is ready when full (`batch.size`), when
//!   `linger.ms` has passed since its first record, or while a `flush`/`close` waits. Ready
//!   batches go to their leader's connection, at most `max.in.flight.requests.per.connection`
//!   requests per broker. A retriable error puts the batch back at the head of its
//!   partition's queue after `retry.backoff.ms` (with a metadata refresh when the leader may
//!   have moved); a batch older than `delivery.timeout.ms` fails.
//! - **Idempotence** (default): a producer id from InitProducerId; each batch gets its
//!   sequence number once and keeps it across retries, and a partition has one batch in
//!   flight at a time, so the broker can drop a retry of a batch it already wrote and the
//!   order of a partition's records is kept.

mod config;
mod partitioner;
mod serializer;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};

pub use self::config::ProducerConfig;
pub use self::partitioner::{key_partition, murmur2, DefaultPartitioner, Partitioner};
pub use self::serializer::{
    BincodeSerializer, BytesSerializer, JsonSerializer, Serializer, StringSerializer,
};
use super::cluster::Cluster;
use super::error::{code, ClientError, Result};
use super::records::{BatchBuilder, Header};

/// Produce v9: the newest the client sends (v10+ adds nothing it uses).
const PRODUCE_VERSION: i16 = 9;

/// A record to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: the partitioner chooses.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    /// Milliseconds since the epoch; `None`: now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value or headers yet.
    pub fn new(topic: impl Into<String>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            ..ProducerRecord::default()
        }
    }

    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn value(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// The key, serialized with `serializer`.
    pub fn key_as<T: ?Sized, S: Serializer<T>>(mut self, serializer: &S, key: &T) -> Result<Self> {
        self.key = Some(serializer.serialize(&self.topic, key)?);
        Ok(self)
    }

    /// The value, serialized with `serializer`.
    pub fn value_as<T: ?Sized, S: Serializer<T>>(
        mut self,
        serializer: &S,
        value: &T,
    ) -> Result<Self> {
        self.value = Some(serializer.serialize(&self.topic, value)?);
        Ok(self)
    }

    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    pub fn header(mut self, key: impl Into<String>, value: Option<&[u8]>) -> Self {
        self.headers.push(Header {
            key: key.into(),
            value: value.map(Bytes::copy_from_slice),
        });
        self
    }

    /// Bytes this record takes in a batch, at most (what `buffer.memory` is charged).
    fn size_estimate(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + 10)
            .sum();
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + headers
            + 32
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    /// -1 with acks=0 (the broker does not say).
    pub offset: i64,
    /// The record's timestamp, or the broker's LogAppendTime.
    pub timestamp: i64,
}

/// Resolves once the record is acknowledged (or has failed): exactly once.
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(ClientError::Closed("the producer stopped".into()))))
    }
}

/// Counters of what the producer did.
#[derive(Debug, Default)]
pub struct ProducerMetrics {
    /// Produce requests sent (each carries one batch per partition, for one broker).
    pub produce_requests: AtomicU64,
    /// Batches sent (retries included).
    pub batches_sent: AtomicU64,
    /// Records acknowledged.
    pub records_acked: AtomicU64,
    /// Batches put back for a retry.
    pub retries: AtomicU64,
    /// Records that failed.
    pub records_failed: AtomicU64,
}

type Delivery = (oneshot::Sender<Result<RecordMetadata>>, i64);

/// Records for one partition, sent together.
#[derive(Debug)]
struct Batch {
    topic: String,
    partition: i32,
    builder: BatchBuilder,
    deliveries: Vec<Delivery>,
    created: Instant,
    /// `buffer.memory` held until the batch is done.
    _memory: Option<OwnedSemaphorePermit>,
    attempts: u32,
    /// Idempotence: the sequence of the first record, set when first sent.
    sequence: Option<i32>,
    /// The encoded batch, built when first sent and re-sent as it is.
    encoded: Option<Bytes>,
    retry_at: Option<Instant>,
}

impl Batch {
    fn complete(
        self,
        result: std::result::Result<(i64, i64), ClientError>,
        metrics: &ProducerMetrics,
    ) {
        let n = self.deliveries.len() as u64;
        match &result {
            Ok(_) => metrics.records_acked.fetch_add(n, Ordering::Relaxed),
            Err(_) => metrics.records_failed.fetch_add(n, Ordering::Relaxed),
        };
        for (i, (tx, timestamp)) in self.deliveries.into_iter().enumerate() {
            let outcome = match &result {
                Ok((base_offset, log_append_time)) => Ok(RecordMetadata {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    offset: if *base_offset < 0 {
                        -1
                    } else {
                        base_offset + i as i64
                    },
                    timestamp: if *log_append_time >= 0 {
                        *log_append_time
                    } else {
                        timestamp
                    },
                }),
                Err(e) => Err(e.clone()),
            };
            let _ = tx.send(outcome);
        }
    }
}

#[derive(Debug, Default)]
struct PartitionQueue {
    open: Option<Batch>,
    ready: VecDeque<Batch>,
    in_flight: bool,
    next_sequence: i32,
}

#[derive(Debug)]
struct Inner {
    config: ProducerConfig,
    cluster: Arc<Cluster>,
    partitioner: Arc<dyn Partitioner>,
    queues: Mutex<BTreeMap<(String, i32), PartitionQueue>>,
    memory: Arc<Semaphore>,
    wake: Notify,
    /// Records sent and not resolved yet; `idle` is notified when it reaches 0.
    pending: AtomicUsize,
    idle: Notify,
    /// Flushes (and a close) waiting: every batch is ready meanwhile.
    flushing: AtomicUsize,
    closed: AtomicBool,
    /// (producer id, epoch) once InitProducerId answered.
    producer_id: Mutex<Option<(i64, i16)>>,
    in_flight: Mutex<HashMap<i32, Arc<Semaphore>>>,
    metrics: ProducerMetrics,
}

/// A Kafka producer; see the module documentation. Create it inside a tokio runtime.
#[derive(Debug)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl Producer {
    /// A producer with the default partitioner.
    pub fn new(config: ProducerConfig) -> Result<Producer> {
        Producer::with_partitioner(config, Arc::new(DefaultPartitioner::default()))
    }

    /// A producer with a custom partitioner (used for records without a partition).
    pub fn with_partitioner(
        config: ProducerConfig,
        partitioner: Arc<dyn Partitioner>,
    ) -> Result<Producer> {
        let config = config.validated()?;
        let inner = Arc::new(Inner {
            cluster: Cluster::new(config.client.clone()),
            memory: Arc::new(Semaphore::new(
                config.buffer_memory.min(Semaphore::MAX_PERMITS),
            )),
            partitioner,
            config,
            queues: Mutex::default(),
            wake: Notify::new(),
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
            flushing: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            producer_id: Mutex::new(None),
            in_flight: Mutex::default(),
            metrics: ProducerMetrics::default(),
        });
        tokio::spawn(sender(Arc::clone(&inner)));
        Ok(Producer { inner })
    }

    /// What the producer did so far.
    pub fn metrics(&self) -> &ProducerMetrics {
        &self.inner.metrics
    }

    /// The cluster view (metadata) this producer uses.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.inner.cluster
    }

    /// Queues `record`: returns once it is in a batch (after waiting for metadata or buffer
    /// room, up to `max.block.ms`), with a future that resolves when it is acknowledged.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(ClientError::Closed("the producer is closed".into()));
        }
        let max_block = Duration::from_millis(inner.config.max_block_ms);
        let deadline = Instant::now() + max_block;
        let size = record.size_estimate();
        if size > inner.config.max_request_size || size > inner.config.buffer_memory {
            return Err(ClientError::kafka(
                format!("a record of about {size} bytes"),
                code::MESSAGE_TOO_LARGE,
                Some("larger than max.request.size or buffer.memory".into()),
            ));
        }
        let partition = self.choose_partition(&record, deadline).await?;
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        let memory = tokio::time::timeout_at(
            deadline.into(),
            Arc::clone(&inner.memory).acquire_many_owned(permits),
        )
        .await
        .map_err(|_| {
            ClientError::Timeout(
                max_block,
                format!(
                    "buffer.memory ({} bytes) stayed full",
                    inner.config.buffer_memory
                ),
            )
        })?
        .map_err(|_| ClientError::Closed("the producer is closed".into()))?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let (tx, rx) = oneshot::channel();
        inner.pending.fetch_add(1, Ordering::AcqRel);
        let wake = {
            let mut queues = inner.queues();
            let queue = queues.entry((record.topic.clone(), partition)).or_default();
            let mut wake = false;
            if let Some(open) = &queue.open {
                if open.builder.count() > 0 && open.builder.size() + size > inner.config.batch_size
                {
                    queue.ready.extend(queue.open.take());
                    wake = true;
                }
            }
            // A new batch: the sender must learn its linger deadline.
            wake |= queue.open.is_none();
            let batch = queue.open.get_or_insert_with(|| Batch {
                topic: record.topic.clone(),
                partition,
                builder: BatchBuilder::new(inner.config.batch_size.min(1 << 20)),
                deliveries: Vec::new(),
                created: Instant::now(),
                _memory: None,
                attempts: 0,
                sequence: None,
                encoded: None,
                retry_at: None,
            });
            batch.builder.push(
                timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &record.headers,
            );
            batch.deliveries.push((tx, timestamp));
            match &mut batch._memory {
                Some(held) => held.merge(memory),
                None => batch._memory = Some(memory),
            }
            if batch.builder.size() >= inner.config.batch_size {
                queue.ready.extend(queue.open.take());
                wake = true;
            }
            wake || inner.config.linger_ms == 0
        };
        if wake {
            inner.wake.notify_one();
        }
        Ok(DeliveryFuture { rx })
    }

    /// Sends `record` and calls `callback` with its outcome, once.
    pub async fn send_with_callback<F>(&self, record: ProducerRecord, callback: F) -> Result<()>
    where
        F: FnOnce(Result<RecordMetadata>) + Send + 'static,
    {
        let delivery = self.send(record).await?;
        tokio::spawn(async move { callback(delivery.await) });
        Ok(())
    }

    async fn choose_partition(&self, record: &ProducerRecord, deadline: Instant) -> Result<i32> {
        let inner = &self.inner;
        let topic = loop {
            match inner.cluster.topic_or_fetch(&record.topic).await {
                Ok(t) => break t,
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tokio::time::sleep(inner.config.client.retry_backoff()).await;
                }
                Err(e) if e.is_retriable() => {
                    return Err(ClientError::Timeout(
                        Duration::from_millis(inner.config.max_block_ms),
                        format!("no metadata for topic {}: {e}", record.topic),
                    ))
                }
                Err(e) => return Err(e),
            }
        };
        let count = topic.partitions.len() as i32;
        match record.partition {
            Some(p) if (0..count).contains(&p) => Ok(p),
            Some(p) => Err(ClientError::InvalidArgument(format!(
                "partition {p} of {} does not exist ({count} partitions)",
                record.topic
            ))),
            None => {
                let available: Vec<i32> = topic
                    .partitions
                    .iter()
                    .filter(|p| p.leader >= 0)
                    .map(|p| p.partition)
                    .collect();
                let p = inner.partitioner.partition(
                    &record.topic,
                    record.key.as_deref(),
                    count,
                    &available,
                );
                if (0..count).contains(&p) {
                    Ok(p)
                } else {
                    Err(ClientError::InvalidArgument(format!(
                        "the partitioner chose partition {p} of {} ({count} partitions)",
                        record.topic
                    )))
                }
            }
        }
    }

    /// Sends everything queued now and waits until each of those records resolved.
    pub async fn flush(&self) {
        let inner = &self.inner;
        inner.flushing.fetch_add(1, Ordering::AcqRel);
        inner.wake.notify_one();
        loop {
            let idle = inner.idle.notified();
            if inner.pending.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
        inner.flushing.fetch_sub(1, Ordering::AcqRel);
    }

    /// Stops taking records, delivers what is queued within `timeout`, and fails what is
    /// left after it (each such record's future resolves with an error).
    pub async fn close(&self, timeout: Duration) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::Release);
        if tokio::time::timeout(timeout, self.flush()).await.is_err() {
            let mut queues = inner.queues();
            for queue in queues.values_mut() {
                for batch in queue.open.take().into_iter().chain(queue.ready.drain(..)) {
                    let n = batch.deliveries.len();
                    batch.complete(
                        Err(ClientError::Closed(format!(
                            "not delivered within the close timeout of {timeout:?}"
                        ))),
                        &inner.metrics,
                    );
                    inner.resolved(n);
                }
            }
        }
        inner.memory.close();
        inner.wake.notify_one();
    }
}

impl Drop for Producer {
    /// Stops taking records; what is queued is still sent in the background (use `close`
    /// to wait for it).
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.flushing.fetch_add(1, Ordering::AcqRel);
        self.inner.wake.notify_one();
    }
}

impl Inner {
    fn queues(&self) -> MutexGuard<'_, BTreeMap<(String, i32), PartitionQueue>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn resolved(&self, records: usize) {
        if self.pending.fetch_sub(records, Ordering::AcqRel) == records {
            self.idle.notify_waiters();
        }
    }

    fn broker_slots(&self, broker: i32) -> Arc<Semaphore> {
        Arc::clone(
            self.in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(broker)
                .or_insert_with(|| Arc::new(Semaphore::new(self.config.max_in_flight))),
        )
    }

    /// Takes the batches that are ready to go, grouped by leader; fails expired ones.
    /// Returns them and when to look again.
    fn drain(&self, now: Instant) -> (BTreeMap<i32, Vec<Batch>>, Option<Instant>, bool) {
        let linger = Duration::from_millis(self.config.linger_ms);
        let delivery_timeout = Duration::from_millis(self.config.delivery_timeout_ms);
        let flushing = self.flushing.load(Ordering::Acquire) > 0;
        let producer = *self
            .producer_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let idempotent = self.config.enable_idempotence;
        let mut by_leader: BTreeMap<i32, Vec<Batch>> = BTreeMap::new();
        let mut next: Option<Instant> = None;
        let mut unknown_leader = false;
        let mut expired = Vec::new();
        let mut queues = self.queues();
        for ((topic, partition), queue) in queues.iter_mut() {
            // Expiry: whatever waits here longer than delivery.timeout.ms fails.
            for batch in queue.ready.iter().chain(queue.open.iter()) {
                let at = batch.created + delivery_timeout;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            while queue
                .ready
                .front()
                .is_some_and(|b| now >= b.created + delivery_timeout)
            {
                expired.extend(queue.ready.pop_front());
            }
            if queue
                .open
                .as_ref()
                .is_some_and(|b| now >= b.created + delivery_timeout)
            {
                expired.extend(queue.open.take());
            }
            if queue.in_flight {
                continue;
            }
            if queue.ready.is_empty() {
                if let Some(open) = &queue.open {
                    let due = open.created + linger;
                    if flushing || now >= due {
                        queue.ready.extend(queue.open.take());
                    } else {
                        next = Some(next.map_or(due, |n| n.min(due)));
                    }
                }
            }
            let Some(front) = queue.ready.front() else {
                continue;
            };
            if let Some(at) = front.retry_at.filter(|at| *at > now) {
                next = Some(next.map_or(at, |n| n.min(at)));
                continue;
            }
            if idempotent && producer.is_none() {
                continue;
            }
            let leader = self
                .cluster
                .topic(topic)
                .and_then(|t| {
                    t.partitions
                        .iter()
                        .find(|p| p.partition == *partition)
                        .map(|p| p.leader)
                })
                .unwrap_or(-1);
            if leader < 0 {
                unknown_leader = true;
                continue;
            }
            let Some(mut batch) = queue.ready.pop_front() else {
                continue;
            };
            if batch.encoded.is_none() {
                let (pid, epoch, sequence) = match producer.filter(|_| idempotent) {
                    Some((pid, epoch)) => {
                        let sequence = queue.next_sequence;
                        queue.next_sequence =
                            sequence.wrapping_add(batch.builder.count()) & i32::MAX;
                        (pid, epoch, sequence)
                    }
                    None => (-1, -1, -1),
                };
                match batch
                    .builder
                    .build(self.config.compression, pid, epoch, sequence)
                {
                    Ok(encoded) => {
                        batch.encoded = Some(encoded);
                        batch.sequence = Some(sequence);
                    }
                    Err(e) => {
                        let n = batch.deliveries.len();
                        batch.complete(Err(e), &self.metrics);
                        self.resolved(n);
                        continue;
                    }
                }
            }
            queue.in_flight = true;
            by_leader.entry(leader).or_default().push(batch);
        }
        drop(queues);
        for batch in expired {
            let n = batch.deliveries.len();
            let what = format!(
                "{}-{}: not acknowledged within delivery.timeout.ms",
                batch.topic, batch.partition
            );
            batch.complete(
                Err(ClientError::Timeout(delivery_timeout, what)),
                &self.metrics,
            );
            self.resolved(n);
        }
        (by_leader, next, unknown_leader)
    }

    /// A batch's request finished: done, failed, or back at the head of its queue.
    fn finish(&self, mut batch: Batch, outcome: std::result::Result<(i64, i64), ClientError>) {
        let key = (batch.topic.clone(), batch.partition);
        let delivery_timeout = Duration::from_millis(self.config.delivery_timeout_ms);
        let retry = match &outcome {
            Err(e) => {
                e.is_retriable()
                    && batch.attempts < self.config.retries
                    && batch.created.elapsed() < delivery_timeout
                    && !self.closed_and_abandoned()
            }
            Ok(_) => false,
        };
        let mut queues = self.queues();
        let queue = queues.entry(key).or_default();
        queue.in_flight = false;
        if retry {
            batch.attempts += 1;
            batch.retry_at = Some(Instant::now() + self.config.client.retry_backoff());
            self.metrics.retries.fetch_add(1, Ordering::Relaxed);
            queue.ready.push_front(batch);
            drop(queues);
        } else {
            drop(queues);
            let n = batch.deliveries.len();
            batch.complete(outcome, &self.metrics);
            self.resolved(n);
        }
        self.wake.notify_one();
    }

    fn closed_and_abandoned(&self) -> bool {
        self.memory.is_closed()
    }

    /// InitProducerId until it answers (retriable errors are retried).
    async fn init_producer_id(&self) {
        loop {
            if self.memory.is_closed() {
                return;
            }
            let result = async {
                let conn = self.cluster.any_broker().await?;
                let request = InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(i32::MAX)
                    .with_producer_id((-1).into())
                    .with_producer_epoch(-1);
                let response = conn.send(request, 4).await?;
                super::error::check(|| "InitProducerId".into(), response.error_code, None)?;
                Ok::<_, ClientError>((response.producer_id.0, response.producer_epoch))
            }
            .await;
            match result {
                Ok(id) => {
                    *self
                        .producer_id
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(id);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "InitProducerId failed; retrying");
                    tokio::time::sleep(self.config.client.retry_backoff()).await;
                }
            }
        }
    }
}

/// The background sender; see the module documentation.
async fn sender(inner: Arc<Inner>) {
    if inner.config.enable_idempotence {
        let init = Arc::clone(&inner);
        tokio::spawn(async move {
            init.init_producer_id().await;
            init.wake.notify_one();
        });
    }
    let mut last_refresh: Option<Instant> = None;
    loop {
        let wake = inner.wake.notified();
        let now = Instant::now();
        let (by_leader, next, unknown_leader) = inner.drain(now);
        if unknown_leader
            && last_refresh.is_none_or(|at| at.elapsed() >= inner.config.client.retry_backoff())
        {
            last_refresh = Some(now);
            let refresh = Arc::clone(&inner);
            tokio::spawn(async move {
                if let Err(e) = refresh.cluster.refresh(None).await {
                    tracing::debug!(error = %e, "metadata refresh failed");
                }
                refresh.wake.notify_one();
            });
        }
        for (leader, batches) in by_leader {
            for request in split_by_size(batches, inner.config.max_request_size) {
                let inner = Arc::clone(&inner);
                tokio::spawn(async move {
                    let slots = inner.broker_slots(leader);
                    let Ok(_slot) = slots.acquire_owned().await else {
                        return;
                    };
                    produce(&inner, leader, request).await;
                });
            }
        }
        if inner.closed.load(Ordering::Acquire) && inner.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let sleep = async {
            match next {
                Some(at) => {
                    tokio::time::sleep_until((at.max(now + Duration::from_millis(1))).into()).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wake => {}
            () = sleep => {}
        }
    }
}

/// Splits one broker's batches into requests of at most `max` bytes (a batch alone may be
/// larger; it goes in a request of its own).
fn split_by_size(batches: Vec<Batch>, max: usize) -> Vec<Vec<Batch>> {
    let mut requests: Vec<Vec<Batch>> = Vec::new();
    let mut size = 0;
    for batch in batches {
        let len = batch.encoded.as_ref().map_or(0, Bytes::len);
        match requests.last_mut() {
            Some(last) if size + len <= max => {
                size += len;
                last.push(batch);
            }
            _ => {
                size = len;
                requests.push(vec![batch]);
            }
        }
    }
    requests
}

/// Sends one Produce request to `leader` and finishes each of its batches.
async fn produce(inner: &Arc<Inner>, leader: i32, batches: Vec<Batch>) {
    inner
        .metrics
        .produce_requests
        .fetch_add(1, Ordering::Relaxed);
    inner
        .metrics
        .batches_sent
        .fetch_add(batches.len() as u64, Ordering::Relaxed);
    let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
    for b in &batches {
        topics.entry(&b.topic).or_default().push(
            PartitionProduceData::default()
                .with_index(b.partition)
                .with_records(b.encoded.clone()),
        );
    }
    let request = ProduceRequest::default()
        .with_acks(inner.config.acks)
        .with_timeout_ms(i32::try_from(inner.config.client.request_timeout_ms).unwrap_or(i32::MAX))
        .with_topic_data(
            topics
                .into_iter()
                .map(|(t, partitions)| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(t.to_owned())))
                        .with_partition_data(partitions)
                })
                .collect(),
        );
    let sent = async {
        let conn = inner.cluster.broker(leader).await?;
        let version = conn.version::<ProduceRequest>(PRODUCE_VERSION)?;
        if inner.config.acks == 0 {
            conn.send_no_response(request, version).await?;
            return Ok(None);
        }
        conn.send_at(request, version).await.map(Some)
    }
    .await;
    let response = match sent {
        Ok(Some(r)) => r,
        Ok(None) => {
            for b in batches {
                inner.finish(b, Ok((-1, -1)));
            }
            return;
        }
        Err(e) => {
            if e.needs_metadata_refresh() {
                let _ = inner.cluster.refresh(None).await;
            }
            for b in batches {
                inner.finish(b, Err(e.clone()));
            }
            return;
        }
    };
    let mut answers: HashMap<(String, i32), std::result::Result<(i64, i64), ClientError>> =
        HashMap::new();
    for t in response.responses {
        let topic = t.name.0.to_string();
        for p in t.partition_responses {
            let outcome =
                if p.error_code == code::NONE || p.error_code == code::DUPLICATE_SEQUENCE_NUMBER {
                    Ok((p.base_offset, p.log_append_time_ms))
                } else {
                    Err(ClientError::kafka(
                        format!("{topic}-{}", p.index),
                        p.error_code,
                        p.error_message.as_ref().map(|m| m.to_string()),
                    ))
                };
            answers.insert((topic.clone(), p.index), outcome);
        }
    }
    let mut refresh = false;
    for b in batches {
        let outcome = answers
            .remove(&(b.topic.clone(), b.partition))
            .unwrap_or_else(|| {
                Err(ClientError::Protocol {
                    addr: format!("broker {leader}"),
                    reason: format!("no answer for {}-{}", b.topic, b.partition),
                })
            });
        refresh |= outcome
            .as_ref()
            .is_err_and(ClientError::needs_metadata_refresh);
        inner.finish(b, outcome);
    }
    if refresh {
        if let Err(e) = inner.cluster.refresh(None).await {
            tracing::debug!(error = %e, "metadata refresh failed");
        }
        inner.wake.notify_one();
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
