//! The load generators: librdkafka (through the `rdkafka` crate) and the Sluice client produce
//! and consume; a raw fetch-and-discard reader of the harness's own.
//!
//! Every record's value starts with its sequence number in its partition (big-endian u64),
//! and record i goes to partition i mod P — so a reader checks, per partition, that offsets
//! run without a gap and that each value holds its own offset: a lost, duplicated or
//! reordered record fails the run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig as RdConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::Fail;

/// What one produce run sends.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) topic: String,
    pub(crate) partitions: i32,
    pub(crate) size: usize,
    pub(crate) records: u64,
    /// "0", "1" or "all".
    pub(crate) acks: &'static str,
}

/// How long a run took for how much.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) elapsed: Duration,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
}

impl Outcome {
    pub(crate) fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }
}

/// Record `i`'s partition and value.
fn record(i: u64, partitions: i32, value: &mut [u8]) -> i32 {
    let p = (i % partitions as u64) as i32;
    let seq = i / partitions as u64;
    value[..8].copy_from_slice(&seq.to_be_bytes());
    p
}

#[derive(Default)]
struct Counting {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

struct CountingContext(Arc<Counting>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.0.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// librdkafka's settings for a throughput producer.
fn rd_producer_config(addr: &str, acks: &str, linger_ms: &str) -> RdConfig {
    let mut c = RdConfig::new();
    c.set("bootstrap.servers", addr)
        .set("acks", acks)
        .set("linger.ms", linger_ms)
        .set("batch.size", "1000000")
        .set("batch.num.messages", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("compression.type", "none")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "60000")
        .set("log_level", "3");
    c
}

/// librdkafka produces `load`; done when every delivery report is in.
pub(crate) fn rdkafka_produce(addr: &str, load: &Load) -> Result<Outcome, Fail> {
    let counts = Arc::new(Counting::default());
    let producer: BaseProducer<CountingContext> = rd_producer_config(addr, load.acks, "5")
        .create_with_context(CountingContext(counts.clone()))?;
    let mut value = vec![b'x'; load.size.max(8)];
    let started = Instant::now();
    for i in 0..load.records {
        let p = record(i, load.partitions, &mut value);
        let mut rec = BaseRecord::<(), [u8]>::to(&load.topic)
            .partition(p)
            .payload(&value[..]);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, back)) => {
                    if e.rdkafka_error_code() != Some(rdkafka::types::RDKafkaErrorCode::QueueFull) {
                        return Err(Fail::msg(format!("librdkafka send: {e}")));
                    }
                    rec = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let elapsed = started.elapsed();
    let delivered = counts.delivered.load(Ordering::Relaxed);
    let failed = counts.failed.load(Ordering::Relaxed);
    if delivered != load.records || failed != 0 {
        let first = counts
            .first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        return Err(Fail::msg(format!(
            "librdkafka: {delivered} of {} delivered, {failed} failed (first: {first})",
            load.records
        )));
    }
    Ok(Outcome {
        elapsed,
        records: load.records,
        bytes: load.records * load.size as u64,
    })
}

/// The Sluice client produces `load`; done when every delivery is acknowledged.
pub(crate) async fn sluice_produce(addr: &str, load: &Load) -> Result<Outcome, Fail> {
    use sluice::client::{Producer, ProducerConfig, ProducerRecord};
    let mut config = ProducerConfig::new(addr);
    config
        .set("acks", load.acks)?
        .set("linger.ms", "5")?
        .set("batch.size", "1000000")?
        .set("buffer.memory", "268435456")?
        .set("enable.idempotence", "false")?;
    let producer = Producer::new(config)?;
    let mut value = vec![b'x'; load.size.max(8)];
    let mut pending = VecDeque::new();
    let started = Instant::now();
    for i in 0..load.records {
        let p = record(i, load.partitions, &mut value);
        pending.push_back(
            producer
                .send(
                    ProducerRecord::new(&load.topic)
                        .partition(p)
                        .value(value.clone()),
                )
                .await?,
        );
        if pending.len() > 200_000 {
            if let Some(d) = pending.pop_front() {
                d.await?;
            }
        }
    }
    for d in pending {
        d.await?;
    }
    let elapsed = started.elapsed();
    producer.close(Duration::from_secs(10)).await;
    Ok(Outcome {
        elapsed,
        records: load.records,
        bytes: load.records * load.size as u64,
    })
}

/// Per partition: the next offset expected, checked against each record's own sequence.
#[derive(Debug, Default)]
pub(crate) struct OrderCheck {
    next: BTreeMap<i32, i64>,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
}

impl OrderCheck {
    fn record(&mut self, partition: i32, offset: i64, value: Option<&[u8]>) -> Result<(), Fail> {
        let next = self.next.entry(partition).or_insert(0);
        if offset != *next {
            return Err(Fail::msg(format!(
                "partition {partition}: offset {offset} where {next} was expected"
            )));
        }
        let seq = value
            .and_then(|v| v.get(..8))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_be_bytes);
        if seq != Some(offset as u64) {
            return Err(Fail::msg(format!(
                "partition {partition}: offset {offset} holds sequence {seq:?}"
            )));
        }
        *next += 1;
        self.records += 1;
        self.bytes += value.map_or(0, |v| v.len() as u64);
        Ok(())
    }

    /// A whole batch of `count` records from `base`, without looking inside it.
    fn batch(&mut self, partition: i32, base: i64, count: i64, bytes: u64) -> Result<(), Fail> {
        let next = self.next.entry(partition).or_insert(0);
        if base != *next {
            return Err(Fail::msg(format!(
                "partition {partition}: a batch at {base} where {next} was expected"
            )));
        }
        *next += count;
        self.records += count as u64;
        self.bytes += bytes;
        Ok(())
    }
}

/// librdkafka reads `records` records of `topic` from the beginning of each partition.
pub(crate) fn rdkafka_consume(
    addr: &str,
    topic: &str,
    partitions: i32,
    records: u64,
) -> Result<Outcome, Fail> {
    let consumer: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "sluice-bench")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.max.bytes", "67108864")
        .set("max.partition.fetch.bytes", "8388608")
        // librdkafka's default (1000) paces a reader faster than its fetcher to one fetch a
        // second whenever its local queue holds queued.min.messages.
        .set("fetch.queue.backoff.ms", "10")
        .set("log_level", "3")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut check = OrderCheck::default();
    // From the first record: librdkafka's start-up (bootstrap, metadata) is not the broker's
    // fetch path.
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while check.records < records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                started.get_or_insert_with(Instant::now);
                check.record(m.partition(), m.offset(), m.payload())?
            }
            Some(Err(e)) => return Err(Fail::msg(format!("librdkafka consume: {e}"))),
            None if Instant::now() > deadline => {
                return Err(Fail::msg(format!(
                    "librdkafka read {} of {records} records in 300 s",
                    check.records
                )))
            }
            None => {}
        }
    }
    Ok(Outcome {
        elapsed: started.map(|s| s.elapsed()).unwrap_or_default(),
        records: check.records,
        bytes: check.bytes,
    })
}

/// The Sluice client reads `records` records of `topic` from the beginning of each partition.
pub(crate) async fn sluice_consume(
    addr: &str,
    topic: &str,
    partitions: i32,
    records: u64,
) -> Result<Outcome, Fail> {
    use sluice::client::{Consumer, ConsumerConfig, TopicPartition};
    let mut config = ConsumerConfig::new(addr);
    config
        .set("auto.offset.reset", "earliest")?
        .set("max.poll.records", "100000")?
        .set("fetch.max.bytes", "52428800")?
        .set("max.partition.fetch.bytes", "4194304")?;
    let consumer = Consumer::new(config)?;
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&tps);
    let mut check = OrderCheck::default();
    // From the first record, as for librdkafka.
    let mut started = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    while check.records < records {
        for r in consumer.poll(Duration::from_millis(100)).await? {
            started.get_or_insert_with(Instant::now);
            check.record(r.partition, r.offset, r.value.as_deref())?;
        }
        if Instant::now() > deadline {
            return Err(Fail::msg(format!(
                "the Sluice client read {} of {records} records in 300 s",
                check.records
            )));
        }
    }
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    consumer.close().await;
    Ok(Outcome {
        elapsed,
        records: check.records,
        bytes: check.bytes,
    })
}

/// The raw reader: Fetch requests (one in flight) for every partition, answers walked batch
/// by batch (base offset, length, record count from the batch header — no record parsing).
pub(crate) fn raw_consume(
    addr: &str,
    topic: &str,
    partitions: i32,
    records: u64,
) -> Result<Outcome, Fail> {
    crate::raw::fetch_all(
        addr,
        topic,
        partitions,
        records,
        |check, p, base, count, len| check.batch(p, base, count, len),
    )
}

/// A consumer of the latency run: reads from the beginning of partition 0 and hands each
/// record's value and the time it arrived to `seen`, until `stop` says so.
pub(crate) fn rdkafka_tail(
    addr: &str,
    topic: &str,
    mut seen: impl FnMut(&[u8]) -> bool,
) -> Result<(), Fail> {
    let consumer: BaseConsumer = RdConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "sluice-bench-latency")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("log_level", "3")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if !seen(m.payload().unwrap_or_default()) => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Fail::msg(format!("librdkafka consume: {e}"))),
            None if Instant::now() > deadline => {
                return Err(Fail::msg("the latency consumer timed out"))
            }
            None => {}
        }
    }
}

/// A producer of the latency run: `linger.ms=0`, acks=1.
pub(crate) fn rdkafka_latency_producer(
    addr: &str,
) -> Result<(BaseProducer<CountingContextPub>, Arc<AtomicU64>), Fail> {
    let failed = Arc::new(AtomicU64::new(0));
    let p = rd_producer_config(addr, "1", "0")
        .create_with_context(CountingContextPub(failed.clone()))?;
    Ok((p, failed))
}

/// Counts failed deliveries of the latency producer.
pub(crate) struct CountingContextPub(Arc<AtomicU64>);
impl ClientContext for CountingContextPub {}
impl ProducerContext for CountingContextPub {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
