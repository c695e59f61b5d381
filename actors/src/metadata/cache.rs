//! `MetadataCache`: this broker's watched view of the cluster — cluster id, controller,
//! live brokers, topics with their assignments and partition states, topic and broker
//! configs — for Metadata answers, routing, and the replica manager.
//!
//! It is plain shared state, not an actor: an `Arc<RwLock<ClusterView>>` that readers
//! (Metadata handlers, the controller, the replica manager) lock briefly, kept current by
//! one tokio task. The lock is a std `RwLock`, not tokio's: every section holding it is
//! short CPU-only work, and handlers read it without awaiting.
//!
//! The task watches `/brokers`, `/config`, `/controller` and `/cluster`; the watches are
//! set up before everything is read, so no change falls between the read and the first
//! event. It applies `Put`/`Delete` events in order and re-reads everything on `Resync`.
//! Every applied change bumps [`ClusterView::version`] and publishes it on a
//! `tokio::sync::watch` channel ([`MetadataCache::subscribe`]): subscribers see the
//! latest version, intermediate ones coalesce, and they read the view for the rest.
//!
//! When the coordination session ends (closed or expired) the watches end and the task
//! stops: the view freezes at its last state and [`MetadataCache::is_running`] turns
//! false. The broker then makes a new client and a new cache.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use sluice_coordination::election::LeaderRecord;
use sluice_coordination::{codec, keys, Coordination, Version, Watch, WatchEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::paths::{self, Path};
use super::records::{
    self, BrokerConfigRecord, BrokerRegistration, ClusterId, PartitionState, TopicAssignment,
    TopicConfigRecord,
};
use crate::Result;

/// The elected controller, as read from `/controller`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerInfo {
    pub broker_id: i32,
    /// The controller's epoch (the election's epoch).
    pub epoch: i64,
}

/// A partition state with the version of its key (for compare-and-set writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPartitionState {
    pub state: PartitionState,
    pub version: Version,
}

/// One topic as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub topic_id: [u8; 16],
    /// The replicas of partition `p` at index `p`, preferred leader first.
    pub replicas: Vec<Vec<i32>>,
    /// The version of the assignment key (for compare-and-set writes).
    pub version: Version,
    /// The partitions whose state has been written. A partition of `replicas` missing
    /// here is being created (or its creation was interrupted): it has no leader yet.
    pub states: BTreeMap<i32, StoredPartitionState>,
}

impl TopicMetadata {
    /// The number of partitions.
    pub fn partition_count(&self) -> usize {
        self.replicas.len()
    }

    /// The replication factor (of partition 0; every partition has the same).
    pub fn replication_factor(&self) -> usize {
        self.replicas.first().map_or(0, Vec::len)
    }
}

/// A partition with a replica on a given broker (see
/// [`MetadataCache::partitions_hosted_by`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedPartition {
    pub topic: String,
    pub partition: i32,
    pub topic_id: [u8; 16],
    pub state: PartitionState,
    /// Every replica of the partition, preferred leader first.
    pub replicas: Vec<i32>,
}

/// Everything the cache knows, as of [`ClusterView::version`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Bumped on every applied change.
    pub version: u64,
    pub cluster_id: Option<String>,
    pub controller: Option<ControllerInfo>,
    /// Live brokers by id.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by name (only those whose assignment has been written).
    pub topics: BTreeMap<String, TopicMetadata>,
    /// Topic config overrides by topic name.
    pub topic_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Dynamic broker configs by broker id.
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
}

impl ClusterView {
    /// Reads everything from the coordination service.
    pub async fn load(coord: &dyn Coordination) -> Result<ClusterView> {
        let mut view = ClusterView::default();
        for key in [paths::CLUSTER_ID, paths::CONTROLLER] {
            if let Some(v) = coord.get(key).await? {
                view.apply_put(key, &v.value, v.version);
            }
        }
        for parent in [
            paths::BROKER_IDS,
            paths::TOPIC_CONFIGS,
            paths::BROKER_CONFIGS,
        ] {
            for (name, v) in coord.children(parent).await? {
                view.apply_put(&keys::join(parent, &name), &v.value, v.version);
            }
        }
        for (name, v) in coord.children(paths::TOPICS).await? {
            if !view.apply_put(&paths::topic(&name), &v.value, v.version) {
                continue;
            }
            for (p, _) in coord.children(&paths::partitions(&name)).await? {
                let Ok(p) = p.parse::<i32>() else { continue };
                let key = paths::partition_state(&name, p);
                if let Some(v) = coord.get(&key).await? {
                    view.apply_put(&key, &v.value, v.version);
                }
            }
        }
        Ok(view)
    }

    /// Applies one watch event (`Resync` is the caller's business); returns whether the
    /// view changed.
    pub fn apply(&mut self, event: &WatchEvent) -> bool {
        match event {
            WatchEvent::Put {
                key,
                value,
                version,
            } => self.apply_put(key, value, *version),
            WatchEvent::Delete { key } => self.apply_delete(key),
            WatchEvent::Resync => false,
        }
    }

    /// Records `key`'s new value. Values that do not decode are logged and skipped (a
    /// parent key created implicitly has an empty value).
    fn apply_put(&mut self, key: &str, value: &[u8], version: Version) -> bool {
        match self.try_apply_put(key, value, version) {
            Ok(applied) => applied,
            Err(e) => {
                if !value.is_empty() {
                    tracing::warn!(key, error = %e, "skipping a stored value that does not decode");
                }
                false
            }
        }
    }

    fn try_apply_put(&mut self, key: &str, value: &[u8], version: Version) -> Result<bool> {
        match paths::parse(key) {
            Path::ClusterId => {
                self.cluster_id = Some(records::decode::<ClusterId>(key, value)?.id);
            }
            Path::Controller => {
                let record: LeaderRecord = codec::decode(value)?;
                self.controller =
                    records::controller_broker_id(&record.value).map(|broker_id| ControllerInfo {
                        broker_id,
                        epoch: record.epoch,
                    });
            }
            Path::Broker(id) => {
                self.brokers.insert(id, records::decode(key, value)?);
            }
            Path::Topic(name) => {
                let a: TopicAssignment = records::decode(key, value)?;
                let topic = self
                    .topics
                    .entry(name.to_owned())
                    .or_insert_with(|| TopicMetadata {
                        topic_id: a.topic_id,
                        replicas: Vec::new(),
                        version,
                        states: BTreeMap::new(),
                    });
                if topic.topic_id != a.topic_id {
                    // A new incarnation of the name: the old states are not its.
                    topic.topic_id = a.topic_id;
                    topic.states.clear();
                }
                topic.replicas = a.partitions;
                topic.version = version;
            }
            Path::PartitionState(name, p) => {
                let state: PartitionState = records::decode(key, value)?;
                let Some(topic) = self.topics.get_mut(name) else {
                    tracing::debug!(key, "partition state of an unknown topic");
                    return Ok(false);
                };
                topic
                    .states
                    .insert(p, StoredPartitionState { state, version });
            }
            Path::TopicConfig(name) => {
                let record: TopicConfigRecord = records::decode(key, value)?;
                self.topic_configs.insert(name.to_owned(), record.configs);
            }
            Path::BrokerConfig(id) => {
                let record: BrokerConfigRecord = records::decode(key, value)?;
                self.broker_configs.insert(id, record.configs);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Forgets `key` and everything below it.
    fn apply_delete(&mut self, key: &str) -> bool {
        match paths::parse(key) {
            Path::ClusterId => self.cluster_id.take().is_some(),
            Path::Controller => self.controller.take().is_some(),
            Path::Broker(id) => self.brokers.remove(&id).is_some(),
            Path::Topic(name) => self.topics.remove(name).is_some(),
            Path::Partitions(name) => self.topics.get_mut(name).is_some_and(|t| {
                let had = !t.states.is_empty();
                t.states.clear();
                had
            }),
            Path::Partition(name, p) | Path::PartitionState(name, p) => self
                .topics
                .get_mut(name)
                .is_some_and(|t| t.states.remove(&p).is_some()),
            Path::TopicConfig(name) => self.topic_configs.remove(name).is_some(),
            Path::BrokerConfig(id) => self.broker_configs.remove(&id).is_some(),
            Path::CreateTopicRequest(_) | Path::DeleteTopicRequest(_) => false,
            // A parent (`/brokers`, `/config/topics`, ...): clear what lies below it.
            Path::Other => {
                let below = |base: &str| keys::is_at_or_below(base, key);
                let mut changed = false;
                if below(paths::CLUSTER_ID) {
                    changed |= self.cluster_id.take().is_some();
                }
                if below(paths::CONTROLLER) {
                    changed |= self.controller.take().is_some();
                }
                if below(paths::BROKER_IDS) {
                    changed |= !std::mem::take(&mut self.brokers).is_empty();
                }
                if below(paths::TOPICS) {
                    changed |= !std::mem::take(&mut self.topics).is_empty();
                }
                if below(paths::TOPIC_CONFIGS) {
                    changed |= !std::mem::take(&mut self.topic_configs).is_empty();
                }
                if below(paths::BROKER_CONFIGS) {
                    changed |= !std::mem::take(&mut self.broker_configs).is_empty();
                }
                changed
            }
        }
    }

    /// Every partition with a replica on `broker_id` and a written state.
    pub fn partitions_hosted_by(&self, broker_id: i32) -> Vec<HostedPartition> {
        let mut out = Vec::new();
        for (name, topic) in &self.topics {
            for (p, replicas) in topic.replicas.iter().enumerate() {
                if !replicas.contains(&broker_id) {
                    continue;
                }
                let Ok(partition) = i32::try_from(p) else {
                    break;
                };
                if let Some(stored) = topic.states.get(&partition) {
                    out.push(HostedPartition {
                        topic: name.clone(),
                        partition,
                        topic_id: topic.topic_id,
                        state: stored.state.clone(),
                        replicas: replicas.clone(),
                    });
                }
            }
        }
        out
    }
}

/// Aborts the watch task when the last [`MetadataCache`] handle is dropped.
#[derive(Debug)]
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A handle on the watched view; cheap to clone. See the module doc.
#[derive(Debug, Clone)]
pub struct MetadataCache {
    view: Arc<RwLock<ClusterView>>,
    changes: watch::Receiver<u64>,
    task: Arc<TaskGuard>,
}

impl MetadataCache {
    /// Sets up the watches, reads everything, and starts the task that keeps the view
    /// current. The returned cache is already loaded. Must be called inside a tokio
    /// runtime (an actix System is one).
    pub async fn start(coord: Arc<dyn Coordination>) -> Result<MetadataCache> {
        let watches = Watches {
            brokers: coord.watch(paths::BROKERS).await?,
            config: coord.watch(paths::CONFIG).await?,
            controller: coord.watch(paths::CONTROLLER).await?,
            cluster: coord.watch(paths::CLUSTER).await?,
        };
        let mut view = ClusterView::load(coord.as_ref()).await?;
        view.version = 1;
        let (tx, rx) = watch::channel(view.version);
        let view = Arc::new(RwLock::new(view));
        let task = tokio::spawn(run(coord, Arc::clone(&view), tx, watches));
        Ok(MetadataCache {
            view,
            changes: rx,
            task: Arc::new(TaskGuard(task)),
        })
    }

    /// Runs `f` on the current view, under the read lock (keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&ClusterView) -> R) -> R {
        let view = self.view.read().unwrap_or_else(PoisonError::into_inner);
        f(&view)
    }

    /// A copy of the whole view.
    pub fn snapshot(&self) -> ClusterView {
        self.read(ClusterView::clone)
    }

    /// The view's version: bumped on every applied change.
    pub fn version(&self) -> u64 {
        self.read(|v| v.version)
    }

    /// Changes: the receiver holds the latest [`ClusterView::version`]; `changed()`
    /// resolves when it moves (and fails once the cache has stopped).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Whether the view is still kept current (false once the session has ended).
    pub fn is_running(&self) -> bool {
        !self.task.0.is_finished()
    }

    /// The cluster id, once `/cluster/id` exists.
    pub fn cluster_id(&self) -> Option<String> {
        self.read(|v| v.cluster_id.clone())
    }

    /// The controller's broker id, if one is elected.
    pub fn controller_id(&self) -> Option<i32> {
        self.read(|v| v.controller.map(|c| c.broker_id))
    }

    /// The live brokers, by id.
    pub fn brokers(&self) -> Vec<BrokerRegistration> {
        self.read(|v| v.brokers.values().cloned().collect())
    }

    /// One live broker.
    pub fn broker(&self, id: i32) -> Option<BrokerRegistration> {
        self.read(|v| v.brokers.get(&id).cloned())
    }

    /// One topic.
    pub fn topic(&self, name: &str) -> Option<TopicMetadata> {
        self.read(|v| v.topics.get(name).cloned())
    }

    /// The names of every topic, sorted.
    pub fn topics(&self) -> Vec<String> {
        self.read(|v| v.topics.keys().cloned().collect())
    }

    /// A topic's config overrides (empty if it has none).
    pub fn topic_config(&self, name: &str) -> BTreeMap<String, String> {
        self.read(|v| v.topic_configs.get(name).cloned().unwrap_or_default())
    }

    /// A broker's dynamic config (empty if it has none).
    pub fn broker_config(&self, id: i32) -> BTreeMap<String, String> {
        self.read(|v| v.broker_configs.get(&id).cloned().unwrap_or_default())
    }

    /// Every partition with a replica on `broker_id` and a written state: what the
    /// replica manager of that broker should run.
    pub fn partitions_hosted_by(&self, broker_id: i32) -> Vec<HostedPartition> {
        self.read(|v| v.partitions_hosted_by(broker_id))
    }

    /// Waits until `condition` holds for the view, or `timeout` passes; returns whether
    /// it holds. Re-checks on every change, never by sleeping.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&ClusterView) -> bool,
    ) -> bool {
        let mut changes = self.subscribe();
        let check = async {
            loop {
                changes.borrow_and_update();
                if self.read(&mut condition) {
                    return true;
                }
                if changes.changed().await.is_err() {
                    return self.read(&mut condition);
                }
            }
        };
        tokio::time::timeout(timeout, check).await.unwrap_or(false)
    }
}

/// The cache's watches.
struct Watches {
    brokers: Watch,
    config: Watch,
    controller: Watch,
    cluster: Watch,
}

/// How long to wait before re-reading after a failed re-read.
const RELOAD_BACKOFF: Duration = Duration::from_millis(200);

/// Applies watch events to the view until the session ends.
async fn run(
    coord: Arc<dyn Coordination>,
    view: Arc<RwLock<ClusterView>>,
    changes: watch::Sender<u64>,
    mut watches: Watches,
) {
    loop {
        let event = tokio::select! {
            e = watches.brokers.next() => e,
            e = watches.config.next() => e,
            e = watches.controller.next() => e,
            e = watches.cluster.next() => e,
        };
        let fresh = match event {
            None => {
                tracing::warn!("metadata cache: coordination session ended; view frozen");
                return;
            }
            Some(WatchEvent::Resync) => match reload(coord.as_ref()).await {
                Some(fresh) => Some(fresh),
                None => return,
            },
            Some(_) => None,
        };
        let mut guard = view.write().unwrap_or_else(PoisonError::into_inner);
        let changed = match (fresh, &event) {
            (Some(mut fresh), _) => {
                fresh.version = guard.version;
                let changed = fresh != *guard;
                *guard = fresh;
                changed
            }
            (None, Some(event)) => guard.apply(event),
            (None, None) => false,
        };
        if changed {
            guard.version += 1;
            changes.send_replace(guard.version);
        }
    }
}

/// Re-reads everything after a `Resync`, retrying passing failures; `None` once the
/// session is gone.
async fn reload(coord: &dyn Coordination) -> Option<ClusterView> {
    loop {
        match ClusterView::load(coord).await {
            Ok(view) => return Some(view),
            Err(crate::Error::Coordination(e)) if e.is_retriable() => {
                tracing::warn!(error = %e, "metadata cache: re-read failed; retrying");
                tokio::time::sleep(RELOAD_BACKOFF).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "metadata cache: cannot re-read; view frozen");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn put(key: &str, value: Vec<u8>, version: Version) -> WatchEvent {
        WatchEvent::Put {
            key: key.to_owned(),
            value,
            version,
        }
    }

    fn state(leader: i32) -> PartitionState {
        PartitionState {
            leader,
            leader_epoch: 0,
            isr: vec![leader],
            controller_epoch: 1,
        }
    }

    #[test]
    fn events_build_and_tear_down_the_view() {
        let mut view = ClusterView::default();
        let assignment = TopicAssignment {
            topic_id: [7; 16],
            partitions: vec![vec![1, 2], vec![2, 1]],
        };
        assert!(view.apply(&put(
            &paths::topic("t"),
            records::encode(&assignment).unwrap(),
            5
        )));
        // An implicitly created parent has an empty value: ignored.
        assert!(!view.apply(&put(&paths::partition("t", 0), Vec::new(), 6)));
        for p in 0..2 {
            let key = paths::partition_state("t", p);
            let value = records::encode(&state(p + 1)).unwrap();
            assert!(view.apply(&put(&key, value, 10 + i64::from(p))));
        }
        assert_eq!(view.partitions_hosted_by(1).len(), 2);
        let hosted = view.partitions_hosted_by(2);
        assert_eq!(hosted[1].state.leader, 2);
        assert_eq!(hosted[1].replicas, vec![2, 1]);
        assert_eq!(view.topics["t"].states[&1].version, 11);

        assert!(view.apply(&WatchEvent::Delete {
            key: paths::partition("t", 0)
        }));
        assert_eq!(view.partitions_hosted_by(1).len(), 1);
        assert!(view.apply(&WatchEvent::Delete {
            key: paths::BROKERS.to_owned()
        }));
        assert!(view.topics.is_empty());
        // An orphan state (no assignment) is not kept.
        let key = paths::partition_state("u", 0);
        assert!(!view.apply(&put(&key, records::encode(&state(1)).unwrap(), 1)));
    }
}
