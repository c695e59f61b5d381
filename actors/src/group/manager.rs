//! [`Groups`]: the broker's consumer-group layer as the network handlers see it — which
//! broker coordinates a group (creating `__consumer_offsets` on first use), the local
//! coordinator actor of a group, and the lifecycle of those actors, which follow the
//! leadership of `__consumer_offsets` partitions ([`Groups::sync`], called after every pass
//! of the broker's replica sync).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use actix::{Actor, Addr};
use sluice_coordination::Coordination;

use super::coordinator::{offsets_tp, GroupCoordinator, Registry, StopCoordinator};
use super::{partition_for, GroupConfig, GroupError, OFFSETS_TOPIC};
use crate::metadata::cache::MetadataCache;
use crate::metadata::records::CreateTopicRequestRecord;
use crate::metadata::registration::request_topic_creation;
use crate::replica::{PartitionReplica, ReplicaMap};
use crate::{Error, Result};

/// The consumer-group layer of one broker. Cheap to clone.
#[derive(Clone)]
pub struct Groups {
    inner: Arc<Inner>,
}

/// A started coordinator and the replica it writes through.
type Started = (Addr<GroupCoordinator>, Addr<PartitionReplica>);

struct Inner {
    config: Arc<GroupConfig>,
    broker_id: i32,
    metadata: MetadataCache,
    coordination: Arc<dyn Coordination>,
    replicas: ReplicaMap,
    /// `None` once shut down (sled's lock on the directory goes with the last handle).
    db: Mutex<Option<sled::Db>>,
    /// Coordinators started here (loading or loaded), with the replica they write through.
    started: Mutex<HashMap<i32, Started>>,
    /// Loaded coordinators: what requests are routed to.
    ready: Registry,
}

impl std::fmt::Debug for Groups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Groups")
            .field("broker_id", &self.inner.broker_id)
            .field("coordinators", &self.coordinators().len())
            .finish()
    }
}

impl Groups {
    /// Opens the sled database of committed offsets (`config.state_dir`). Start-up I/O.
    pub fn open(
        config: GroupConfig,
        broker_id: i32,
        metadata: MetadataCache,
        coordination: Arc<dyn Coordination>,
        replicas: ReplicaMap,
    ) -> Result<Groups> {
        let db = sled::Config::new()
            .path(&config.state_dir)
            .open()
            .map_err(|e| Error::Decode {
                what: format!("the group state database {}", config.state_dir.display()),
                reason: e.to_string(),
            })?;
        Ok(Groups {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                broker_id,
                metadata,
                coordination,
                replicas,
                db: Mutex::new(Some(db)),
                started: Mutex::new(HashMap::new()),
                ready: Arc::new(RwLock::new(HashMap::new())),
            }),
        })
    }

    pub fn config(&self) -> &GroupConfig {
        &self.inner.config
    }

    /// The number of `__consumer_offsets` partitions: the topic's, once it exists.
    fn partition_count(&self) -> i32 {
        self.inner
            .metadata
            .topic(OFFSETS_TOPIC)
            .and_then(|t| i32::try_from(t.partition_count()).ok())
            .filter(|n| *n > 0)
            .unwrap_or(self.inner.config.offsets_topic_num_partitions)
    }

    /// The group's `__consumer_offsets` partition.
    pub fn partition_for(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.partition_count())
    }

    /// FindCoordinator: the broker leading the group's partition. Asks the controller to
    /// create `__consumer_offsets` when it does not exist — only once
    /// `offsets.topic.replication.factor` brokers are alive, never with fewer replicas.
    pub async fn find_coordinator(&self, group_id: &str) -> Result<i32, GroupError> {
        let inner = &self.inner;
        let Some(topic) = inner.metadata.topic(OFFSETS_TOPIC) else {
            let live = inner.metadata.brokers().len();
            let rf = inner.config.offsets_topic_replication_factor;
            if live < usize::try_from(rf).unwrap_or(usize::MAX) {
                return Err(GroupError::CoordinatorNotAvailable(format!(
                    "{OFFSETS_TOPIC} needs offsets.topic.replication.factor={rf} live brokers, {live} are alive"
                )));
            }
            let request = CreateTopicRequestRecord {
                partitions: inner.config.offsets_topic_num_partitions,
                replication_factor: rf,
                configs: BTreeMap::from([
                    ("cleanup.policy".to_string(), "compact".to_string()),
                    (
                        "segment.bytes".to_string(),
                        inner.config.offsets_topic_segment_bytes.to_string(),
                    ),
                    ("compression.type".to_string(), "producer".to_string()),
                ]),
            };
            request_topic_creation(&inner.coordination, OFFSETS_TOPIC, &request)
                .await
                .map_err(GroupError::from)?;
            tracing::info!("creating {OFFSETS_TOPIC} on first use");
            return Err(GroupError::CoordinatorNotAvailable(format!(
                "{OFFSETS_TOPIC} is being created"
            )));
        };
        let n = i32::try_from(topic.partition_count()).unwrap_or(0);
        let p = partition_for(group_id, n);
        match topic.states.get(&p).map(|s| s.state.leader) {
            Some(leader) if leader >= 0 => Ok(leader),
            _ => Err(GroupError::CoordinatorNotAvailable(format!(
                "{OFFSETS_TOPIC}-{p} has no leader"
            ))),
        }
    }

    /// The local coordinator of `group_id`.
    pub fn coordinator_for(&self, group_id: &str) -> Result<Addr<GroupCoordinator>, GroupError> {
        let p = self.partition_for(group_id);
        if let Some(addr) = self
            .inner
            .ready
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&p)
        {
            return Ok(addr.clone());
        }
        let Some(topic) = self.inner.metadata.topic(OFFSETS_TOPIC) else {
            return Err(GroupError::CoordinatorNotAvailable(format!(
                "{OFFSETS_TOPIC} does not exist yet"
            )));
        };
        match topic.states.get(&p).map(|s| s.state.leader) {
            Some(leader) if leader == self.inner.broker_id => {
                Err(GroupError::CoordinatorLoadInProgress(group_id.to_string()))
            }
            Some(leader) if leader >= 0 => Err(GroupError::NotCoordinator(group_id.to_string())),
            _ => Err(GroupError::CoordinatorNotAvailable(format!(
                "{OFFSETS_TOPIC}-{p} has no leader"
            ))),
        }
    }

    /// Every loaded coordinator on this broker.
    pub fn coordinators(&self) -> Vec<Addr<GroupCoordinator>> {
        self.inner
            .ready
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Makes the running coordinators follow leadership: one for each `__consumer_offsets`
    /// partition this broker leads whose replica runs here (restarted when the replica
    /// was); the others stopped.
    pub fn sync(&self) {
        let inner = &self.inner;
        let mut wanted: HashMap<i32, Addr<PartitionReplica>> = HashMap::new();
        if let Some(topic) = inner.metadata.topic(OFFSETS_TOPIC) {
            let n = i32::try_from(topic.partition_count()).unwrap_or(0);
            for (p, s) in &topic.states {
                if s.state.leader != inner.broker_id {
                    continue;
                }
                if let Some(replica) = inner.replicas.get(&offsets_tp(*p)) {
                    wanted.insert(*p, replica);
                }
            }
            let mut started = inner.started.lock().unwrap_or_else(PoisonError::into_inner);
            started.retain(|p, (coordinator, replica)| {
                let keep = wanted.get(p) == Some(replica) && coordinator.connected();
                if !keep {
                    coordinator.do_send(StopCoordinator);
                }
                keep
            });
            for (p, replica) in wanted {
                if started.contains_key(&p) {
                    continue;
                }
                let opened = inner
                    .db
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .map(|db| db.open_tree(format!("{OFFSETS_TOPIC}-{p}")));
                let tree = match opened {
                    // Shut down: no coordinators any more.
                    None => return,
                    Some(Ok(t)) => t,
                    Some(Err(e)) => {
                        tracing::error!(partition = p, error = %e, "cannot open the offsets view in sled");
                        continue;
                    }
                };
                let coordinator = GroupCoordinator::new(
                    p,
                    n,
                    replica.clone(),
                    tree,
                    Arc::clone(&inner.config),
                    Arc::clone(&inner.ready),
                )
                .start();
                started.insert(p, (coordinator, replica));
            }
        } else {
            let mut started = inner.started.lock().unwrap_or_else(PoisonError::into_inner);
            for (_, (coordinator, _)) in started.drain() {
                coordinator.do_send(StopCoordinator);
            }
        }
    }

    /// Stops every coordinator and flushes sled (off the arbiter thread).
    pub async fn shutdown(&self) {
        let coordinators: Vec<Addr<GroupCoordinator>> = self
            .inner
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, (c, _))| c)
            .collect();
        for c in &coordinators {
            let _ = c.send(StopCoordinator).await;
        }
        // Their sled trees go with the actors: wait until they are gone, so that the
        // directory's lock is free once this returns (an embedding service may restart
        // the broker in the same process).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        for c in &coordinators {
            while c.connected() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        let db = self
            .inner
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(db) = db {
            match tokio::task::spawn_blocking(move || db.flush()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "flushing the group state database"),
                Err(e) => tracing::warn!(error = %e, "flushing the group state database"),
            }
        }
    }
}
