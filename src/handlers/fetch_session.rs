//! Incremental fetch sessions (KIP-227). A client that asks for a session (session id 0,
//! epoch 0) gets an id; its next fetches (epoch 1, 2, ...) name only the partitions whose
//! fetch offset changed and the ones to forget, and the answer carries only the partitions
//! with something new (records, a moved high watermark or log start offset, an error). The
//! cache holds `max.incremental.fetch.session.cache.slots` sessions (Kafka's default, 1000);
//! the least recently used goes when it is full.
//!
//! A request is turned into the equivalent full request here ([`FetchSessions::begin`]), the
//! Fetch handler reads it as usual, and [`FetchSessions::finish`] decides which partitions the
//! answer keeps and remembers what it told the client.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};

use super::code;

/// Kafka's `max.incremental.fetch.session.cache.slots` default.
pub const CACHE_SLOTS: usize = 1000;

/// A partition of a session: (topic name, topic id, partition).
type Key = (TopicName, [u8; 16], i32);

#[derive(Debug, Clone)]
struct Cached {
    fetch_offset: i64,
    partition_max_bytes: i32,
    /// What the client was last told (-1: nothing yet, so the next answer includes it).
    high_watermark: i64,
    log_start_offset: i64,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    epoch: i32,
    partitions: BTreeMap<Key, Cached>,
    last_used: Instant,
}

/// One partition as a fetch answered it.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    /// Index of its topic in the request.
    pub topic: usize,
    pub partition: i32,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Records or an error: always worth answering.
    pub news: bool,
}

/// What [`FetchSessions::begin`] decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// No session: answer everything, session id 0.
    Sessionless,
    /// Create a session from this (full) request and answer everything with its id.
    New,
    /// An incremental fetch in session `id`: answer only what changed.
    Incremental(i32),
}

/// The broker's fetch sessions; shared by every connection.
#[derive(Debug)]
pub struct FetchSessions {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    sessions: HashMap<i32, Session>,
    next_id: i32,
    slots: usize,
}

impl Default for FetchSessions {
    fn default() -> Self {
        FetchSessions::with_slots(CACHE_SLOTS)
    }
}

impl FetchSessions {
    /// A cache of `slots` sessions (0: no sessions are ever created).
    pub fn with_slots(slots: usize) -> FetchSessions {
        FetchSessions {
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                next_id: 1,
                slots,
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the session fields of `request` (v7+): closes a session the client gives up,
    /// or, for an incremental fetch, rewrites `request.topics` to every partition of the
    /// session (the request's own partitions updated, forgotten ones removed). An unknown
    /// session or a wrong epoch is the error code to answer with.
    pub fn begin(&self, request: &mut FetchRequest) -> Result<Plan, i16> {
        let (id, epoch) = (request.session_id, request.session_epoch);
        let mut inner = self.inner();
        match (id, epoch) {
            (0, -1) => Ok(Plan::Sessionless),
            (0, 0) => Ok(if inner.slots > 0 {
                Plan::New
            } else {
                Plan::Sessionless
            }),
            (0, _) => Err(code::INVALID_FETCH_SESSION_EPOCH),
            (id, -1) => {
                inner.sessions.remove(&id);
                Ok(Plan::Sessionless)
            }
            (id, 0) => {
                inner.sessions.remove(&id);
                Ok(if inner.slots > 0 {
                    Plan::New
                } else {
                    Plan::Sessionless
                })
            }
            (id, epoch) => {
                let session = inner
                    .sessions
                    .get_mut(&id)
                    .ok_or(code::FETCH_SESSION_ID_NOT_FOUND)?;
                if epoch != session.epoch {
                    return Err(code::INVALID_FETCH_SESSION_EPOCH);
                }
                session.epoch = next_epoch(epoch);
                session.last_used = Instant::now();
                // As Kafka does: the request's partitions first, then the forgotten ones.
                for t in &request.topics {
                    for p in &t.partitions {
                        let key = (t.topic.clone(), *t.topic_id.as_bytes(), p.partition);
                        let cached = session.partitions.entry(key).or_insert(Cached {
                            fetch_offset: p.fetch_offset,
                            partition_max_bytes: p.partition_max_bytes,
                            high_watermark: -1,
                            log_start_offset: -1,
                        });
                        cached.fetch_offset = p.fetch_offset;
                        cached.partition_max_bytes = p.partition_max_bytes;
                    }
                }
                for forgotten in &request.forgotten_topics_data {
                    for p in &forgotten.partitions {
                        session.partitions.remove(&(
                            forgotten.topic.clone(),
                            *forgotten.topic_id.as_bytes(),
                            *p,
                        ));
                    }
                }
                request.topics = full_topics(&session.partitions);
                Ok(Plan::Incremental(id))
            }
        }
    }

    /// After the reads (`answered`, in request order; `request` holds the topics the reads
    /// were made for): the session id to answer with (a new session's, 0 if the cache has no
    /// room) and, per answered partition, whether the answer keeps it — everything, except in
    /// an incremental fetch, where only partitions with news stay. Remembers what the client
    /// has now been told.
    pub fn finish(
        &self,
        plan: Plan,
        request: &FetchRequest,
        answered: &[Answered],
    ) -> (i32, Vec<bool>) {
        let mut inner = self.inner();
        match plan {
            Plan::Sessionless => (0, vec![true; answered.len()]),
            Plan::New => {
                let mut partitions = BTreeMap::new();
                for &Answered {
                    topic: t,
                    partition,
                    high_watermark,
                    log_start_offset,
                    ..
                } in answered
                {
                    let Some(topic) = request.topics.get(t) else {
                        continue;
                    };
                    let (fetch_offset, max_bytes) = topic
                        .partitions
                        .iter()
                        .find(|p| p.partition == partition)
                        .map_or((0, 0), |p| (p.fetch_offset, p.partition_max_bytes));
                    partitions.insert(
                        (topic.topic.clone(), *topic.topic_id.as_bytes(), partition),
                        Cached {
                            fetch_offset,
                            partition_max_bytes: max_bytes,
                            high_watermark,
                            log_start_offset,
                        },
                    );
                }
                let id = inner.create(partitions);
                (id, vec![true; answered.len()])
            }
            Plan::Incremental(id) => {
                let Some(session) = inner.sessions.get_mut(&id) else {
                    return (id, vec![true; answered.len()]);
                };
                let keep = answered
                    .iter()
                    .map(
                        |&Answered {
                             topic: t,
                             partition,
                             high_watermark,
                             log_start_offset,
                             news,
                         }| {
                            let Some(topic) = request.topics.get(t) else {
                                return true;
                            };
                            let key = (topic.topic.clone(), *topic.topic_id.as_bytes(), partition);
                            match session.partitions.get_mut(&key) {
                                Some(cached) => {
                                    let changed = news
                                        || cached.high_watermark != high_watermark
                                        || cached.log_start_offset != log_start_offset;
                                    cached.high_watermark = high_watermark;
                                    cached.log_start_offset = log_start_offset;
                                    changed
                                }
                                None => true,
                            }
                        },
                    )
                    .collect();
                (id, keep)
            }
        }
    }

    /// How many sessions are cached.
    pub fn len(&self) -> usize {
        self.inner().sessions.len()
    }

    /// Whether no session is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// A new session (evicting the least recently used when full); its id.
    fn create(&mut self, partitions: BTreeMap<Key, Cached>) -> i32 {
        if self.slots == 0 {
            return 0;
        }
        if self.sessions.len() >= self.slots {
            if let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id)
            {
                self.sessions.remove(&oldest);
            }
        }
        let mut id = self.next_id;
        while id == 0 || self.sessions.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        self.next_id = id.wrapping_add(1).max(1);
        self.sessions.insert(
            id,
            Session {
                epoch: 1,
                partitions,
                last_used: Instant::now(),
            },
        );
        id
    }
}

/// Kafka's `nextEpoch`: 1, 2, ... wrapping to 1 after `i32::MAX`.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// The session's partitions as a full request's topics.
fn full_topics(partitions: &BTreeMap<Key, Cached>) -> Vec<FetchTopic> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((name, id, partition), cached) in partitions {
        let same = topics
            .last()
            .is_some_and(|t| t.topic == *name && t.topic_id.as_bytes() == id);
        if !same {
            topics.push(
                FetchTopic::default()
                    .with_topic(name.clone())
                    .with_topic_id(uuid::Uuid::from_bytes(*id)),
            );
        }
        if let Some(t) = topics.last_mut() {
            t.partitions.push(
                FetchPartition::default()
                    .with_partition(*partition)
                    .with_fetch_offset(cached.fetch_offset)
                    .with_partition_max_bytes(cached.partition_max_bytes)
                    .with_current_leader_epoch(-1)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1),
            );
        }
    }
    topics
}
