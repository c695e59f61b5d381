//! `ActiveController`: what the elected controller decides and writes — topic creation,
//! deletion and growth (`topics.rs`), auto-creation and deletion requests (here),
//! and partition leadership as brokers come and go (`broker_changes.rs`).
//!
//! Every write is one transaction (or a sequence of chunks, each under the backend's
//! [`Limits`]) that starts with the leadership's guard — a check on `/controller_epoch`'s
//! version — so a deposed controller that has not noticed yet writes nothing: its guard
//! fails and the operation answers [`Error::NotController`]. Partition states are also
//! compare-and-set on their own version.
//!
//! Crash behaviour: a topic is written assignment first, then its partition states; a
//! controller that stops in between leaves a topic whose partitions lack states, which
//! the next reconcile (on election, on every change of the live brokers, and after a
//! failed step) completes. A large deletion writes `/admin/delete_topics/<name>` first and
//! removes that marker last, so the next controller finishes it.
//!
//! Not thread-safe: owned by the controller's event loop, which runs one operation at a
//! time; the leadership itself stays with the loop (it watches for its loss).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sluice_coordination::election::Leadership;
use sluice_coordination::{keys, Coordination, Error as CoordError, Limits, Op, Versioned};

use super::messages::NewTopic;
use super::ControllerConfig;
use crate::metadata::paths::{self, Path};
use crate::metadata::records::{self, CreateTopicRequestRecord};
use crate::metadata::MetadataCache;
use crate::{Error, Result};

/// The elected controller's operations. Built from a [`Leadership`] (whose guard and
/// epoch it copies); the loop that owns the leadership stops using it once the
/// leadership is lost — and should it not, the guard stops its writes.
#[derive(Debug)]
pub struct ActiveController {
    pub(super) coord: Arc<dyn Coordination>,
    pub(super) cache: MetadataCache,
    pub(super) config: ControllerConfig,
    pub(super) guard: Op,
    pub(super) epoch: i64,
    /// The live brokers (id → incarnation) the last reconcile acted on; `None` forces
    /// the next one.
    pub(super) known_brokers: Option<BTreeMap<i32, u64>>,
}

impl ActiveController {
    /// The operations of the controller elected with `leadership`.
    pub fn new(
        coord: Arc<dyn Coordination>,
        cache: MetadataCache,
        config: ControllerConfig,
        leadership: &Leadership,
    ) -> ActiveController {
        ActiveController {
            coord,
            cache,
            config,
            guard: leadership.guard(),
            epoch: leadership.epoch(),
            known_brokers: None,
        }
    }

    /// The controller epoch written into partition states.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    // ---------------------------------------------------------------------------------
    // Fenced writes.
    // ---------------------------------------------------------------------------------

    /// Splits `ops` into transactions under the backend's limits, each starting with the
    /// controller guard and then `extra_guards` (checks that must hold for every chunk).
    pub(super) fn fenced_chunks(&self, ops: Vec<Op>, extra_guards: &[Op]) -> Result<Vec<Vec<Op>>> {
        let guards: Vec<&Op> = std::iter::once(&self.guard).chain(extra_guards).collect();
        let limits = self.coord.limits();
        let room = Limits {
            max_ops_per_txn: limits.max_ops_per_txn.saturating_sub(guards.len()).max(1),
            max_txn_bytes: limits
                .max_txn_bytes
                .saturating_sub(guards.iter().map(|g| g.size()).sum()),
            ..limits
        };
        Ok(keys::chunk(ops, None, &room)?
            .into_iter()
            .map(|chunk| guards.iter().map(|g| (*g).clone()).chain(chunk).collect())
            .collect())
    }

    /// Runs one fenced transaction: the guard, then `ops`.
    pub(super) async fn write(&self, ops: Vec<Op>) -> Result<()> {
        let txn = std::iter::once(self.guard.clone()).chain(ops).collect();
        self.transact(txn).await
    }

    /// Runs a transaction whose first operation is the guard; a failed guard means this
    /// controller has been replaced.
    pub(super) async fn transact(&self, txn: Vec<Op>) -> Result<()> {
        match self.coord.transact(txn).await {
            Ok(_) => Ok(()),
            Err(e) => Err(fenced(e)),
        }
    }

    /// The registered brokers, read from the service (not the cache): an assignment must
    /// not wait for the cache to catch up with a broker that just started.
    pub(super) async fn live_brokers(&self) -> Result<BTreeSet<i32>, CoordError> {
        Ok(self
            .coord
            .children(paths::BROKER_IDS)
            .await?
            .into_iter()
            .filter_map(|(name, _)| name.parse().ok())
            .collect())
    }

    /// Whether `name`'s config allows unclean leader election (broker default if its
    /// stored overrides are unreadable).
    pub(super) fn unclean_allowed(&self, overrides: Option<&BTreeMap<String, String>>) -> bool {
        let defaults = &self.config.log_defaults;
        match overrides.map(|o| defaults.with_overrides(o)) {
            Some(Ok(config)) => config.unclean_leader_election_enable,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "stored topic config is invalid; using the broker defaults");
                defaults.unclean_leader_election_enable
            }
            None => defaults.unclean_leader_election_enable,
        }
    }
    // ---------------------------------------------------------------------------------
    // Requests under /admin.
    // ---------------------------------------------------------------------------------

    /// Handles every pending request under `/admin/create_topics` and
    /// `/admin/delete_topics` (on election and after a watch's `Resync`).
    pub async fn process_admin_requests(&mut self) -> Result<()> {
        for (name, value) in self.coord.children(paths::CREATE_TOPIC_REQUESTS).await? {
            self.process_create_request(&name, value).await?;
        }
        for (name, _) in self.coord.children(paths::DELETE_TOPIC_REQUESTS).await? {
            self.process_delete_request(&name).await?;
        }
        Ok(())
    }

    /// Handles the request at `key` if it is one and is still there (watch events may
    /// be stale: the request may already be handled).
    pub async fn process_admin_key(&mut self, key: &str) -> Result<()> {
        match paths::parse(key) {
            Path::CreateTopicRequest(name) => match self.coord.get(key).await? {
                Some(value) => self.process_create_request(name, value).await,
                None => Ok(()),
            },
            Path::DeleteTopicRequest(name) => match self.coord.get(key).await? {
                Some(_) => self.process_delete_request(name).await,
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Creates the requested topic (the broker defaults for what the request leaves at
    /// -1) and removes the request. A request that cannot succeed (bad name, too few
    /// brokers, ...) is logged and removed; one that failed for want of the coordination
    /// service stays, for the next attempt.
    async fn process_create_request(&mut self, name: &str, request: Versioned) -> Result<()> {
        let key = paths::create_topic_request(name);
        let t = match records::decode::<CreateTopicRequestRecord>(&key, &request.value) {
            Ok(r) => NewTopic {
                name: name.to_owned(),
                partitions: r.partitions,
                replication_factor: r.replication_factor,
                assignments: None,
                configs: r.configs,
            },
            Err(e) => {
                if !request.value.is_empty() {
                    tracing::warn!(topic = name, error = %e, "creation request does not decode; using the defaults");
                }
                NewTopic::with_defaults(name)
            }
        };
        let live = self.live_brokers().await?;
        match self.create_topic(&t, &live, false).await {
            Ok(created) => tracing::info!(
                topic = name,
                partitions = created.partitions,
                replication_factor = created.replication_factor,
                "auto-created topic"
            ),
            Err(Error::TopicExists(_)) => {}
            Err(e @ (Error::NotController | Error::Coordination(_))) => return Err(e),
            Err(e) => tracing::warn!(topic = name, error = %e, "topic creation request refused"),
        }
        let removed = self
            .write(vec![Op::Delete {
                key,
                version: Some(request.version),
            }])
            .await;
        match removed {
            // Rewritten or removed meanwhile: its own event brings it back here if needed.
            Err(Error::Coordination(CoordError::Conflict { .. })) => Ok(()),
            other => other,
        }
    }

    async fn process_delete_request(&mut self, name: &str) -> Result<()> {
        match self.delete_topic(name).await {
            Ok(()) => {
                tracing::info!(topic = name, "deleted topic on request");
                Ok(())
            }
            // Gone already; the marker went with the leftovers.
            Err(Error::UnknownTopicOrPartition(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A failed guard (the first operation) means another controller has been elected.
pub(super) fn fenced(e: CoordError) -> Error {
    match e {
        CoordError::Conflict { index: 0, .. } => Error::NotController,
        e => Error::Coordination(e),
    }
}

/// A partition index as Kafka's `i32`.
pub(super) fn partition_id(index: usize) -> Result<i32> {
    i32::try_from(index)
        .map_err(|_| Error::InvalidRequest(format!("partition {index} is out of range")))
}
