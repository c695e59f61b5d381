//! Partition leadership as brokers come and go (Kafka's `onBrokerFailure` /
//! `onBrokerStartup`): on every change of the live brokers — and on election — the
//! controller goes over every partition, elects leaders where the leader died or there is
//! none ([`super::leader_election`]), drops dead replicas from ISRs, and completes
//! half-written topics. Writes are compare-and-set on each state's version, in fenced
//! chunks; a chunk that conflicts (the cached view was stale) is redone partition by
//! partition from fresh reads.

use std::collections::{BTreeMap, BTreeSet};

use sluice_coordination::{Error as CoordError, Op, Version};

use super::active::{fenced, partition_id, ActiveController};
use super::leader_election::{self, Election};
use crate::metadata::paths::{self, Path};
use crate::metadata::records::{self, PartitionState, TopicAssignment};
use crate::metadata::TopicMetadata;
use crate::{Error, Result};

/// One partition state to write.
#[derive(Debug)]
struct StateUpdate {
    topic: String,
    partition: i32,
    state: PartitionState,
    /// `None`: create the key (a partition of a half-written topic).
    version: Option<Version>,
}

impl ActiveController {
    // ---------------------------------------------------------------------------------
    // Partition leadership as brokers come and go.
    // ---------------------------------------------------------------------------------

    /// Reconciles partition states with the live brokers if they changed since the last
    /// reconcile (or on the first call).
    pub async fn maybe_reconcile(&mut self) -> Result<()> {
        let brokers: BTreeMap<i32, u64> = self.cache.read(|v| {
            v.brokers
                .iter()
                .map(|(id, r)| (*id, r.incarnation))
                .collect()
        });
        if self.known_brokers.as_ref() == Some(&brokers) {
            return Ok(());
        }
        // A broker whose incarnation changed went away and came back in between: it is
        // handled as failed (leadership moves off it, it leaves ISRs), then as back.
        let bounced: BTreeSet<i32> = match &self.known_brokers {
            Some(known) => brokers
                .iter()
                .filter(|(id, inc)| known.get(id).is_some_and(|k| k != *inc))
                .map(|(id, _)| *id)
                .collect(),
            None => BTreeSet::new(),
        };
        let live: BTreeSet<i32> = brokers.keys().copied().collect();
        let mut passes = Vec::new();
        if !bounced.is_empty() {
            tracing::info!(?bounced, "brokers restarted since the last reconcile");
            passes.push(live.difference(&bounced).copied().collect());
        }
        passes.push(live);
        self.reconcile(&passes).await?;
        self.known_brokers = Some(brokers);
        Ok(())
    }

    /// Forgets which brokers were last acted on, so the next
    /// [`ActiveController::maybe_reconcile`] goes over every partition.
    pub fn force_reconcile(&mut self) {
        self.known_brokers = None;
    }

    /// Goes over every partition of the cached view: writes the states missing from
    /// half-written topics, and applies [`leader_election::next_state`] for each set of
    /// live brokers in `passes`, in turn.
    async fn reconcile(&self, passes: &[BTreeSet<i32>]) -> Result<()> {
        let Some(live) = passes.last() else {
            return Ok(());
        };
        let (topics, configs) = self
            .cache
            .read(|v| (v.topics.clone(), v.topic_configs.clone()));
        let mut updates = Vec::new();
        for (name, t) in &topics {
            let unclean = self.unclean_allowed(configs.get(name));
            let mut missing = Vec::new();
            for (p, replicas) in t.replicas.iter().enumerate() {
                let partition = partition_id(p)?;
                match t.states.get(&partition) {
                    None => missing.push(StateUpdate {
                        topic: name.clone(),
                        partition,
                        state: leader_election::initial_state(replicas, live, self.epoch),
                        version: None,
                    }),
                    Some(stored) => {
                        let next =
                            self.elect(name, partition, &stored.state, replicas, passes, unclean);
                        if let Some(state) = next {
                            updates.push(StateUpdate {
                                topic: name.clone(),
                                partition,
                                state,
                                version: Some(stored.version),
                            });
                        }
                    }
                }
            }
            if !missing.is_empty() {
                tracing::info!(topic = %name, partitions = missing.len(),
                    "completing a half-written topic");
                self.complete_topic(name, t, missing, passes, unclean)
                    .await?;
            }
        }
        if !updates.is_empty() {
            tracing::info!(
                partitions = updates.len(),
                "writing partition leadership changes"
            );
            self.write_updates(updates, &topics, passes, &configs)
                .await?;
        }
        Ok(())
    }

    /// The state after every pass, if it changed; logs each election.
    fn elect(
        &self,
        topic: &str,
        partition: i32,
        current: &PartitionState,
        replicas: &[i32],
        passes: &[BTreeSet<i32>],
        unclean: bool,
    ) -> Option<PartitionState> {
        let mut state = current.clone();
        let mut changed = false;
        for live in passes {
            if let Some((next, how)) =
                leader_election::next_state(&state, replicas, live, unclean, self.epoch)
            {
                match how {
                    Election::Unclean => tracing::warn!(
                        topic,
                        partition,
                        leader = next.leader,
                        previous = state.leader,
                        "unclean leader election: the new leader was not in the ISR; \
                         acknowledged records may be lost"
                    ),
                    Election::Offline => tracing::warn!(
                        topic, partition, isr = ?next.isr,
                        "partition offline: no live in-sync replica"
                    ),
                    Election::Clean => tracing::debug!(
                        topic,
                        partition,
                        leader = next.leader,
                        leader_epoch = next.leader_epoch,
                        "new leader"
                    ),
                    Election::IsrShrink => {
                        tracing::debug!(topic, partition, isr = ?next.isr, "ISR shrunk")
                    }
                }
                state = next;
                changed = true;
            }
        }
        changed.then_some(state)
    }

    /// Creates the missing states of a half-written topic, every chunk checking that the
    /// topic is still the one read (not deleted meanwhile). A conflict means the cached
    /// view was stale: each partition is then redone from a fresh read.
    async fn complete_topic(
        &self,
        name: &str,
        t: &TopicMetadata,
        missing: Vec<StateUpdate>,
        passes: &[BTreeSet<i32>],
        unclean: bool,
    ) -> Result<()> {
        let check = Op::Check {
            key: paths::topic(name),
            version: t.version,
        };
        let mut ops = Vec::with_capacity(missing.len());
        for u in &missing {
            ops.push(Op::Create {
                key: paths::partition_state(name, u.partition),
                value: records::encode(&u.state)?,
                ephemeral: false,
            });
        }
        for chunk in self.fenced_chunks(ops, std::slice::from_ref(&check))? {
            let partitions: Vec<i32> = chunk.iter().filter_map(state_partition).collect();
            match self.coord.transact(chunk).await {
                Ok(_) => {}
                Err(CoordError::Conflict { index, .. }) if index > 0 => {
                    for p in partitions {
                        self.update_from_fresh_read(name, p, passes, unclean)
                            .await?;
                    }
                }
                Err(e) => return Err(fenced(e)),
            }
        }
        Ok(())
    }

    /// Writes state changes in fenced chunks of compare-and-set operations; a chunk that
    /// conflicts (the cached view was stale) is redone partition by partition from fresh
    /// reads.
    async fn write_updates(
        &self,
        updates: Vec<StateUpdate>,
        topics: &BTreeMap<String, TopicMetadata>,
        passes: &[BTreeSet<i32>],
        configs: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<()> {
        let mut ops = Vec::with_capacity(updates.len());
        for u in &updates {
            ops.push(Op::Set {
                key: paths::partition_state(&u.topic, u.partition),
                value: records::encode(&u.state)?,
                version: u.version,
            });
        }
        let mut done = 0;
        for chunk in self.fenced_chunks(ops, &[])? {
            let n = chunk.len() - 1;
            let these = updates.get(done..done + n).unwrap_or_default();
            done += n;
            match self.coord.transact(chunk).await {
                Ok(_) => {}
                Err(CoordError::Conflict { index, .. }) if index > 0 => {
                    for u in these {
                        if topics.contains_key(&u.topic) {
                            let unclean = self.unclean_allowed(configs.get(&u.topic));
                            self.update_from_fresh_read(&u.topic, u.partition, passes, unclean)
                                .await?;
                        }
                    }
                }
                Err(e) => return Err(fenced(e)),
            }
        }
        Ok(())
    }

    /// Re-reads one partition's assignment and state and writes what the passes make of
    /// it, retrying on conflicts. A partition whose topic is gone is left alone.
    async fn update_from_fresh_read(
        &self,
        name: &str,
        partition: i32,
        passes: &[BTreeSet<i32>],
        unclean: bool,
    ) -> Result<()> {
        let Some(live) = passes.last() else {
            return Ok(());
        };
        loop {
            let topic_key = paths::topic(name);
            let Some(stored) = self.coord.get(&topic_key).await? else {
                return Ok(());
            };
            let assignment: TopicAssignment = records::decode(&topic_key, &stored.value)?;
            let Some(replicas) = usize::try_from(partition)
                .ok()
                .and_then(|p| assignment.partitions.get(p))
            else {
                return Ok(());
            };
            let key = paths::partition_state(name, partition);
            let op = match self.coord.get(&key).await? {
                None => Op::Create {
                    key,
                    value: records::encode(&leader_election::initial_state(
                        replicas, live, self.epoch,
                    ))?,
                    ephemeral: false,
                },
                Some(current) => {
                    let state: PartitionState = records::decode(&key, &current.value)?;
                    match self.elect(name, partition, &state, replicas, passes, unclean) {
                        None => return Ok(()),
                        Some(next) => Op::Set {
                            key,
                            value: records::encode(&next)?,
                            version: Some(current.version),
                        },
                    }
                }
            };
            let check = Op::Check {
                key: topic_key,
                version: stored.version,
            };
            match self.write(vec![check, op]).await {
                Ok(()) => return Ok(()),
                // The topic or the state moved between the reads and the write: again.
                Err(Error::Coordination(CoordError::Conflict { .. })) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The partition a state-creating operation writes.
fn state_partition(op: &Op) -> Option<i32> {
    match op {
        Op::Create { key, .. } => match paths::parse(key) {
            Path::PartitionState(_, p) => Some(p),
            _ => None,
        },
        _ => None,
    }
}
