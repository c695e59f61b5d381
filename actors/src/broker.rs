//! The `Broker`: starts and stops everything one broker process runs, in order — the
//! library entry point that the `sluice` binary (and any service embedding Sluice) uses.
//!
//! Start: cluster id → metadata cache (watches) → replica manager (data dir) → broker
//! registration (ephemeral key) → controller (campaigns) → the replica sync task,
//! which makes the running replicas follow the watched partition states: every partition
//! whose replica set holds this broker gets a replica (leader or not, as its state says);
//! replicas of deleted topics are stopped and their directories removed. A change of a
//! topic's config (`/config/topics/<name>`) or of this broker's dynamic config
//! (`/config/brokers/<id>`) is re-applied to the running replicas (`UpdateConfig`).
//!
//! Stop ([`BrokerHandle::shutdown`]): the sync task stops, the controller resigns, every
//! replica flushes and closes, checkpoints and the clean-shutdown marker are written, and
//! the coordination session is closed (the registration goes at once).
//!
//! No network I/O here: the Kafka listener lives in the root crate and talks to the
//! handles this returns.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use sluice_coordination::Coordination;
use tokio::sync::watch;

use crate::controller::{Controller, ControllerConfig};
use crate::group::{GroupConfig, Groups};
use crate::log::checkpoint::TopicPartition;
use crate::log::config::{topic_config_for_broker_config, LogConfig};
use crate::metadata::cache::MetadataCache;
use crate::metadata::ids;
use crate::metadata::records::BrokerRegistration;
use crate::metadata::registration::{ensure_cluster_id, register_broker};
use crate::replica::messages::{EnsureReplica, ShutdownReplicas, StopReplica};
use crate::replica::{ReplicaManager, ReplicaManagerConfig, ReplicaMap};
use crate::{Error, Result};

/// What a broker needs to start.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    pub broker_id: i32,
    /// The address clients are told (Metadata).
    pub advertised_host: String,
    pub advertised_port: u16,
    pub rack: Option<String>,
    /// Topic config defaults from the broker's `[config]` (Kafka's broker-level names).
    pub log_defaults: LogConfig,
    pub controller: ControllerConfig,
    pub replicas: ReplicaManagerConfig,
    /// Consumer groups and `__consumer_offsets`.
    pub groups: GroupConfig,
    /// How long to wait for a stale registration of this broker id to expire.
    pub registration_wait: Duration,
}

/// A running broker's parts, for the network layer and for embedding.
#[derive(Debug, Clone)]
pub struct BrokerHandle {
    pub broker_id: i32,
    pub cluster_id: String,
    pub coordination: Arc<dyn Coordination>,
    pub metadata: MetadataCache,
    pub controller: Addr<Controller>,
    pub replica_manager: Addr<ReplicaManager>,
    /// TopicPartition → replica, read directly by request handlers.
    pub replicas: ReplicaMap,
    /// Consumer groups: coordinators of the `__consumer_offsets` partitions led here.
    pub groups: Groups,
    pub log_defaults: LogConfig,
    stop_sync: watch::Sender<bool>,
}

/// Starts a broker on `coordination` inside the current actix System.
pub async fn start(
    coordination: Arc<dyn Coordination>,
    mut options: BrokerOptions,
) -> Result<BrokerHandle> {
    // One broker id for every part (a replica that thought itself another broker would
    // never count itself in the ISR).
    options.replicas.replica.broker_id = options.broker_id;
    options.controller.broker_id = options.broker_id;
    options.controller.log_defaults = options.log_defaults.clone();
    let cluster_id = ensure_cluster_id(&coordination).await?;
    check_meta_properties(&options.replicas.data_dir, options.broker_id, &cluster_id)?;
    let metadata = MetadataCache::start(Arc::clone(&coordination)).await?;
    let manager = ReplicaManager::open(options.replicas.clone())?;
    let replicas = manager.replicas();
    let log_dir = manager.log_dir();
    let replica_manager = manager.start();
    let groups = Groups::open(
        options.groups.clone(),
        options.broker_id,
        metadata.clone(),
        Arc::clone(&coordination),
        replicas.clone(),
    )?;
    let registration = BrokerRegistration {
        id: options.broker_id,
        host: options.advertised_host.clone(),
        port: options.advertised_port,
        rack: options.rack.clone(),
        incarnation: ids::random_u64(),
    };
    let registered =
        register_broker(&coordination, &registration, options.registration_wait).await?;
    let incarnation = registration.incarnation;
    let seen = metadata
        .wait_until(options.registration_wait, |view| {
            view.brokers
                .get(&options.broker_id)
                .is_some_and(|b| b.incarnation == incarnation)
        })
        .await;
    if !seen {
        return Err(Error::Timeout(
            "the metadata cache did not see this broker's registration".into(),
        ));
    }
    // Registered (and seen) first, then the controller: a controller elected on this broker must
    // see it alive, or it would take this broker's partitions offline at start-up.
    let controller = Controller::new(
        Arc::clone(&coordination),
        metadata.clone(),
        options.controller.clone(),
    )
    .start();
    let (stop_sync, stop_rx) = watch::channel(false);
    actix::spawn(sync_replicas(
        options.broker_id,
        metadata.clone(),
        replica_manager.clone(),
        replicas.clone(),
        groups.clone(),
        options.log_defaults.clone(),
        stop_rx,
    ));
    actix::spawn(withdraw_when_offline(
        Arc::clone(&coordination),
        options.broker_id,
        registered,
        log_dir.subscribe(),
    ));
    tracing::info!(broker = options.broker_id, %cluster_id, "broker started");
    Ok(BrokerHandle {
        broker_id: options.broker_id,
        cluster_id,
        coordination,
        metadata,
        controller,
        replica_manager,
        replicas,
        groups,
        log_defaults: options.log_defaults,
        stop_sync,
    })
}

impl BrokerHandle {
    /// The topic config of `topic`: broker defaults (the file's, with this broker's dynamic
    /// config at `/config/brokers/<id>` on top) with the topic's overrides applied.
    pub fn topic_log_config(&self, topic: &str) -> Result<LogConfig> {
        Ok(self
            .dynamic_log_defaults()?
            .with_overrides(&self.metadata.topic_config(topic))?)
    }

    /// The broker-level topic config defaults in force: the file's, with the topic-config
    /// synonyms of this broker's dynamic config applied on top.
    pub fn dynamic_log_defaults(&self) -> Result<LogConfig> {
        with_dynamic_broker_config(
            &self.log_defaults,
            &self.metadata.broker_config(self.broker_id),
        )
    }

    /// Clean shutdown (see the module doc). Idempotent enough to call once at exit.
    pub async fn shutdown(&self) -> Result<()> {
        let _ = self.stop_sync.send(true);
        self.controller.do_send(StopController);
        // Group coordinators first: they write through the replicas.
        self.groups.shutdown().await;
        let result = self
            .replica_manager
            .send(ShutdownReplicas)
            .await
            .map_err(|e| Error::Stopped(format!("replica manager: {e}")))?;
        if let Err(e) = self.coordination.close().await {
            tracing::warn!(error = %e, "closing the coordination session");
        }
        result.map(|_| ())
    }
}

/// Once the data directory goes offline (see [`LogDirHealth`](crate::replica::LogDirHealth)),
/// deletes this broker's registration — the version it wrote, not a later one — so that
/// the controller moves its leaderships to other replicas, as it would if the broker had
/// halted (Kafka halts when its last log directory fails). The process keeps running.
async fn withdraw_when_offline(
    coordination: Arc<dyn Coordination>,
    broker_id: i32,
    registered: sluice_coordination::Version,
    mut offline: watch::Receiver<bool>,
) {
    if offline.wait_for(|offline| *offline).await.is_err() {
        return;
    }
    let key = crate::metadata::paths::broker(broker_id);
    match coordination.delete(&key, Some(registered)).await {
        Ok(()) => tracing::warn!(
            broker = broker_id,
            "data directory offline: broker registration withdrawn, so that the controller \
             moves this broker's leaderships to other replicas"
        ),
        Err(e) => tracing::error!(
            broker = broker_id,
            error = %e,
            "data directory offline, and withdrawing the broker registration failed"
        ),
    }
}

/// `log_defaults` (from the config file) with the topic-config synonyms set in a broker's
/// dynamic config (`/config/brokers/<id>`, broker-level names such as
/// `log.retention.ms`) applied on top. A dynamic key wins over the file whatever the
/// synonym (a dynamic `log.retention.hours` beats a file `log.retention.ms`); among the
/// dynamic keys Kafka's synonym precedence holds. Other dynamic keys are ignored here.
pub fn with_dynamic_broker_config(
    log_defaults: &LogConfig,
    dynamic: &BTreeMap<String, String>,
) -> Result<LogConfig> {
    let topic_keys: Vec<&str> = dynamic
        .keys()
        .filter_map(|k| topic_config_for_broker_config(k))
        .collect();
    if topic_keys.is_empty() {
        return Ok(log_defaults.clone());
    }
    let from_dynamic = LogConfig::from_broker_props(dynamic)?.to_props();
    let overrides: BTreeMap<String, String> = topic_keys
        .into_iter()
        .filter_map(|k| Some((k.to_string(), from_dynamic.get(k)?.clone())))
        .collect();
    Ok(log_defaults.with_overrides(&overrides)?)
}

/// Stops the controller actor (it resigns if it leads).
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
struct StopController;

impl actix::Handler<StopController> for Controller {
    type Result = ();
    fn handle(&mut self, _: StopController, ctx: &mut Self::Context) {
        use actix::ActorContext;
        ctx.stop();
    }
}

/// How many `EnsureReplica`s the replica sync task keeps in flight: enough to overlap the
/// fsyncs of many partitions' start-up (a new partition's `partition.metadata`), few
/// enough not to flood the blocking pool.
const MAX_CONCURRENT_ENSURES: usize = 32;

/// What the replica sync task last applied to a replica: leader epoch, ISR, whether it
/// leads, topic config.
type Applied = (i32, Vec<i32>, bool, LogConfig);

/// What an `EnsureReplica` sent by [`sync_replicas`] answered, with what it applied.
type Ensured = (
    TopicPartition,
    Applied,
    std::result::Result<Result<Addr<crate::replica::PartitionReplica>>, actix::MailboxError>,
);

/// Records a finished `EnsureReplica` in `applied`; `false` if the replica manager is gone
/// (the sync task ends).
fn note_ensured(
    done: std::result::Result<Ensured, tokio::task::JoinError>,
    applied: &mut std::collections::HashMap<TopicPartition, Applied>,
) -> bool {
    match done {
        Ok((tp, key, Ok(Ok(_)))) => {
            applied.insert(tp, key);
        }
        Ok((tp, _, Ok(Err(e)))) => {
            tracing::error!(partition = %tp, error = %e, "cannot start replica")
        }
        Ok((_, _, Err(e))) => {
            tracing::error!(error = %e, "replica manager is gone");
            return false;
        }
        Err(e) => tracing::error!(error = %e, "starting a replica failed"),
    }
    true
}

/// Keeps the running replicas in line with the watched partition states.
async fn sync_replicas(
    broker_id: i32,
    metadata: MetadataCache,
    manager: Addr<ReplicaManager>,
    replicas: ReplicaMap,
    groups: Groups,
    log_defaults: LogConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = metadata.subscribe();
    // What was last applied to each replica: epoch, ISR, role and topic config. A change of
    // the topic's overrides or of this broker's dynamic config re-applies the config to the
    // running replica (EnsureReplica → UpdateConfig).
    let mut applied: std::collections::HashMap<TopicPartition, Applied> = Default::default();
    loop {
        let hosted = metadata.partitions_hosted_by(broker_id);
        let defaults = match with_dynamic_broker_config(
            &log_defaults,
            &metadata.broker_config(broker_id),
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "dynamic broker config is invalid; using the file's defaults");
                log_defaults.clone()
            }
        };
        let mut wanted = HashSet::new();
        // EnsureReplicas in flight: partitions start in parallel (their logs open on the
        // blocking pool), so that a broker with thousands of them starts in seconds.
        let mut starting = tokio::task::JoinSet::new();
        // Each topic's config, computed once per pass.
        let mut configs: std::collections::HashMap<String, LogConfig> = Default::default();
        for p in hosted {
            let tp = TopicPartition::new(p.topic.clone(), p.partition);
            wanted.insert(tp.clone());
            let is_leader = p.state.leader == broker_id;
            let config = configs
                .entry(p.topic.clone())
                .or_insert_with(|| {
                    match defaults.with_overrides(&metadata.topic_config(&p.topic)) {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!(topic = %p.topic, error = %e, "topic config is invalid; using broker defaults");
                            defaults.clone()
                        }
                    }
                })
                .clone();
            let key = (
                p.state.leader_epoch,
                p.state.isr.clone(),
                is_leader,
                config.clone(),
            );
            if applied.get(&tp) == Some(&key) && replicas.get(&tp).is_some() {
                continue;
            }
            let ensure = EnsureReplica {
                tp: tp.clone(),
                topic_id: ids::uuid_string(&p.topic_id),
                config,
                leader_epoch: p.state.leader_epoch,
                isr: p.state.isr.clone(),
                is_leader,
            };
            if starting.len() >= MAX_CONCURRENT_ENSURES {
                if let Some(done) = starting.join_next().await {
                    if !note_ensured(done, &mut applied) {
                        return;
                    }
                }
            }
            let manager = manager.clone();
            starting.spawn_local(async move { (tp, key, manager.send(ensure).await) });
        }
        while let Some(done) = starting.join_next().await {
            if !note_ensured(done, &mut applied) {
                return;
            }
        }
        let running = replicas.topic_partitions();
        for tp in running.into_iter().filter(|tp| !wanted.contains(tp)) {
            let deleted = metadata.topic(&tp.topic).is_none();
            applied.remove(&tp);
            if let Ok(Err(e)) = manager
                .send(StopReplica {
                    tp: tp.clone(),
                    delete: deleted,
                })
                .await
            {
                tracing::error!(partition = %tp, error = %e, "cannot stop replica");
            }
        }
        groups.sync();
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// `<data_dir>/meta.properties` (Kafka's format: `version`, `broker.id`, `cluster.id`)
/// ties a data directory to one broker of one cluster. Written on the first start;
/// afterwards a different broker id or cluster id is refused, so a directory is never
/// served by the wrong broker or joined to another cluster (e.g. a config pointing at the
/// wrong coordination root).
pub fn check_meta_properties(
    data_dir: &std::path::Path,
    broker_id: i32,
    cluster_id: &str,
) -> Result<()> {
    use crate::log::LogError;
    let path = data_dir.join("meta.properties");
    let invalid = |reason: String| Error::InvalidRequest(format!("{}: {reason}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props: BTreeMap<&str, &str> = text
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            let found_broker = props.get("broker.id").and_then(|v| v.parse::<i32>().ok());
            if found_broker != Some(broker_id) {
                return Err(invalid(format!(
                    "the data directory belongs to broker.id {}, not {broker_id}",
                    props.get("broker.id").unwrap_or(&"<missing>")
                )));
            }
            if props.get("cluster.id") != Some(&cluster_id) {
                return Err(invalid(format!(
                    "the data directory belongs to cluster {}, but the coordination service is cluster {cluster_id}",
                    props.get("cluster.id").unwrap_or(&"<missing>")
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(LogError::io("create", data_dir))?;
            let text = format!(
                "#Written by Sluice\nversion=0\nbroker.id={broker_id}\ncluster.id={cluster_id}\n"
            );
            crate::log::files::write_atomically(&path, text.as_bytes())?;
            Ok(())
        }
        Err(e) => Err(LogError::io("read", &path)(e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dynamic_broker_config_overrides_the_file_defaults() {
        let file = LogConfig::from_broker_props(&props(&[("log.retention.ms", "1000")])).unwrap();
        assert_eq!(
            with_dynamic_broker_config(&file, &BTreeMap::new()).unwrap(),
            file
        );
        let dynamic = props(&[("log.retention.hours", "2"), ("log.segment.bytes", "4096")]);
        let config = with_dynamic_broker_config(&file, &dynamic).unwrap();
        assert_eq!(config.retention_ms, 7_200_000);
        assert_eq!(config.segment_bytes, 4096);
        // Keys that are not topic-config synonyms are ignored here.
        let config = with_dynamic_broker_config(&file, &props(&[("num.partitions", "3")])).unwrap();
        assert_eq!(config, file);
        assert!(with_dynamic_broker_config(&file, &props(&[("log.segment.bytes", "-1")])).is_err());
    }
}
