//! Fetch (key 1): reads each partition through its replica (a `Fetch` message answering a
//! file slice), within the partition's `partition_max_bytes` and the request's `max_bytes`,
//! and answers with the slices left as placeholders for the connection to `sendfile`.
//!
//! Long poll: while fewer than `min_bytes` are available and `max_wait_ms` has not passed,
//! the handler waits on the replicas' high-watermark receivers and reads again.
//!
//! Fetch sessions (KIP-227, v7+; `fetch_session.rs`): an incremental request is turned into
//! the session's full request before the reads, and the answer keeps only the partitions
//! with something new. Both isolation levels read up to the high watermark (the last stable
//! offset equals it without transactions, trap 11).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use sluice_actors::log::checkpoint::TopicPartition;
use sluice_actors::log::segment::FileSlice;
use sluice_actors::replica::messages::{Fetch, SubscribeHighWatermark};
use sluice_actors::replica::PartitionReplica;
use sluice_actors::Error;
use tokio::sync::Notify;

use crate::protocol::fetch::{failed_partition, fetched_partition, FetchedPartition};
use crate::protocol::{encode_fetch_response, PartitionRecords, RequestKey};

use super::fetch_session::{Answered, Plan};
use super::produce::not_hosted_code;
use super::{code, error_code, now_ms, Context, Family, Reply};

/// First Fetch version addressing topics by id.
const TOPIC_IDS: i16 = 13;
/// First Fetch version with sessions.
const SESSIONS: i16 = 7;

/// One partition of the request, resolved.
struct Wanted {
    topic: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: u64,
    /// The replica, or the error to answer.
    replica: Result<actix::Addr<PartitionReplica>, i16>,
}

/// One read pass's result for a partition.
struct Read {
    data: PartitionData,
    slice: Option<FileSlice>,
    high_watermark: i64,
}

/// Answers a Fetch request.
pub async fn handle(ctx: &Context, key: RequestKey, mut request: FetchRequest) -> Reply {
    let version = key.api_version;
    let plan = if version >= SESSIONS {
        match ctx.fetch_sessions.begin(&mut request) {
            Ok(plan) => plan,
            Err(error) => {
                let response = FetchResponse::default().with_error_code(error);
                return encode(&response, version, key, HashMap::new());
            }
        }
    } else {
        Plan::Sessionless
    };
    // What the session needs to know of the request after its topics are consumed.
    let session_request = (plan != Plan::Sessionless)
        .then(|| FetchRequest::default().with_topics(request.topics.clone()));
    let isolation_level = request.isolation_level;
    let max_bytes = u64::try_from(request.max_bytes).unwrap_or(0);
    let min_bytes = u64::try_from(request.min_bytes).unwrap_or(0);
    let deadline = tokio::time::Instant::now()
        + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));

    let mut topics = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    for (t, topic) in request.topics.into_iter().enumerate() {
        let name = if version >= TOPIC_IDS {
            let id = *topic.topic_id.as_bytes();
            ctx.broker.metadata.read(|view| {
                view.topics
                    .iter()
                    .find(|(_, m)| m.topic_id == id)
                    .map(|(name, _)| name.clone())
            })
        } else {
            Some(topic.topic.0.to_string())
        };
        for p in &topic.partitions {
            let replica = match &name {
                None => Err(code::UNKNOWN_TOPIC_ID),
                Some(name) => {
                    let tp = TopicPartition::new(name.clone(), p.partition);
                    ctx.broker
                        .replicas
                        .get(&tp)
                        .ok_or_else(|| not_hosted_code(ctx, name, p.partition))
                }
            };
            wanted.push(Wanted {
                topic: t,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: u64::try_from(p.partition_max_bytes).unwrap_or(0),
                replica,
            });
        }
        let mut response = FetchableTopicResponse::default();
        if version >= TOPIC_IDS {
            response.topic_id = topic.topic_id;
        } else {
            response.topic = topic.topic;
        }
        topics.push(response);
    }

    let notify = Rc::new(Notify::new());
    let mut watchers: Option<Vec<tokio::task::JoinHandle<()>>> = None;
    let reads = loop {
        let reads = read_all(&wanted, max_bytes, isolation_level, version).await;
        let gathered: u64 = reads
            .iter()
            .map(|r| r.slice.as_ref().map_or(0, |s| s.len))
            .sum();
        let any_error = reads.iter().any(|r| r.data.error_code != code::NONE);
        if gathered >= min_bytes || any_error || tokio::time::Instant::now() >= deadline {
            break reads;
        }
        if watchers.is_none() {
            watchers = Some(subscribe_all(&wanted, &reads, &notify).await);
        }
        if tokio::time::timeout_at(deadline, notify.notified())
            .await
            .is_err()
        {
            break read_all(&wanted, max_bytes, isolation_level, version).await;
        }
    };
    for handle in watchers.into_iter().flatten() {
        handle.abort();
    }

    // Sessionless fetches (the common case) skip this bookkeeping entirely.
    let (session_id, keep) = match &session_request {
        Some(session_request) => {
            let answered: Vec<Answered> = wanted
                .iter()
                .zip(&reads)
                .map(|(w, r)| Answered {
                    topic: w.topic,
                    partition: w.partition,
                    high_watermark: r.data.high_watermark,
                    log_start_offset: r.data.log_start_offset,
                    news: r.slice.is_some() || r.data.error_code != code::NONE,
                })
                .collect();
            let (id, keep) = ctx.fetch_sessions.finish(plan, session_request, &answered);
            (id, Some(keep))
        }
        None => (0, None),
    };
    let mut slices = HashMap::new();
    for (i, (w, read)) in wanted.iter().zip(reads).enumerate() {
        let Some(topic) = topics.get_mut(w.topic) else {
            continue;
        };
        if keep
            .as_ref()
            .is_some_and(|k| !k.get(i).copied().unwrap_or(true))
        {
            continue;
        }
        if let Some(slice) = read.slice {
            slices.insert((w.topic, topic.partitions.len()), slice);
        }
        topic.partitions.push(read.data);
    }
    // An incremental answer names only the topics with something in them (the slices are
    // re-keyed by the topics' new positions).
    if matches!(plan, Plan::Incremental(_)) {
        let mut kept = Vec::with_capacity(topics.len());
        let mut kept_slices = HashMap::with_capacity(slices.len());
        for (t, topic) in topics.into_iter().enumerate() {
            if topic.partitions.is_empty() {
                continue;
            }
            for p in 0..topic.partitions.len() {
                if let Some(slice) = slices.remove(&(t, p)) {
                    kept_slices.insert((kept.len(), p), slice);
                }
            }
            kept.push(topic);
        }
        topics = kept;
        slices = kept_slices;
    }
    let response = FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(topics);
    encode(&response, version, key, slices)
}

/// The response, with the records of `slices` ((topic, partition) positions) left for
/// `sendfile`.
fn encode(
    response: &FetchResponse,
    version: i16,
    key: RequestKey,
    mut slices: HashMap<(usize, usize), FileSlice>,
) -> Reply {
    let pieces = encode_fetch_response(response, version, key.correlation_id, |t, p| match slices
        .remove(&(t, p))
    {
        Some(slice) => {
            let len = usize::try_from(slice.len).unwrap_or(usize::MAX);
            PartitionRecords::File { slice, len }
        }
        None => PartitionRecords::Inline,
    });
    match pieces {
        Ok(pieces) => Reply::Fetch(pieces),
        Err(e) => {
            tracing::error!(version, error = %e, "cannot encode Fetch response");
            Reply::Close(format!("cannot encode Fetch response: {e}"))
        }
    }
}

/// One pass over every partition, in request order, within the byte budgets.
async fn read_all(
    wanted: &[Wanted],
    max_bytes: u64,
    isolation_level: i8,
    version: i16,
) -> Vec<Read> {
    let mut remaining = max_bytes;
    let mut gathered = 0u64;
    let mut reads = Vec::with_capacity(wanted.len());
    for w in wanted {
        let read = match &w.replica {
            Err(error) => failed(w.partition, *error),
            Ok(replica) => {
                let fetch = Fetch {
                    offset: w.fetch_offset,
                    max_bytes: w.partition_max_bytes.min(remaining),
                    // KIP-74: the first partition with data returns its first batch whole.
                    min_one_batch: gathered == 0,
                    isolation_level,
                    now_ms: now_ms(),
                };
                match replica.send(fetch).await {
                    Ok(Ok(result)) => {
                        let mut data = fetched_partition(
                            FetchedPartition {
                                partition_index: w.partition,
                                high_watermark: result.high_watermark,
                                last_stable_offset: result.last_stable_offset,
                                log_start_offset: result.log_start_offset,
                            },
                            isolation_level,
                        );
                        if version < 5 {
                            data.log_start_offset = -1;
                        }
                        let slice = result.records.filter(|s| s.len > 0);
                        let len = slice.as_ref().map_or(0, |s| s.len);
                        gathered += len;
                        remaining = remaining.saturating_sub(len);
                        Read {
                            data,
                            slice,
                            high_watermark: result.high_watermark,
                        }
                    }
                    Ok(Err(e)) => failed(w.partition, error_code(&e, Family::Data)),
                    Err(e) => failed(
                        w.partition,
                        error_code(&Error::Stopped(e.to_string()), Family::Data),
                    ),
                }
            }
        };
        reads.push(read);
    }
    reads
}

fn failed(partition: i32, error: i16) -> Read {
    Read {
        data: failed_partition(partition, error),
        slice: None,
        high_watermark: -1,
    }
}

/// Subscribes to every readable partition's high watermark; each change wakes `notify`.
/// A high watermark that moved since `reads` wakes it at once.
async fn subscribe_all(
    wanted: &[Wanted],
    reads: &[Read],
    notify: &Rc<Notify>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for (w, read) in wanted.iter().zip(reads) {
        let Ok(replica) = &w.replica else { continue };
        let Ok(Ok(mut rx)) = replica.send(SubscribeHighWatermark).await else {
            continue;
        };
        if *rx.borrow_and_update() != read.high_watermark {
            notify.notify_one();
        }
        let notify = Rc::clone(notify);
        handles.push(actix::spawn(async move {
            while rx.changed().await.is_ok() {
                notify.notify_one();
            }
        }));
    }
    handles
}
