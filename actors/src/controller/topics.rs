//! The controller's topic operations: CreateTopics (Kafka's validation, replica
//! assignment, the assignment-first write), DeleteTopics (chunked and resumable for large
//! topics) and CreatePartitions (continuing the assignment).

use std::collections::{BTreeMap, BTreeSet};

use sluice_coordination::{keys, ConflictKind, Error as CoordError, Limits, Op};

use super::active::{fenced, partition_id, ActiveController};
use super::assignment::{self, AssignmentStart};
use super::leader_election;
use super::messages::{CreatedTopic, NewPartitions, NewTopic, TopicResults};
use crate::log::LogError;
use crate::metadata::paths;
use crate::metadata::records::{self, PartitionState, TopicAssignment, TopicConfigRecord};
use crate::metadata::{ids, topic};
use crate::{Error, Result};

impl ActiveController {
    // ---------------------------------------------------------------------------------
    // CreateTopics.
    // ---------------------------------------------------------------------------------

    /// Creates topics (see [`super::messages::CreateTopics`]); one result per topic, in
    /// request order. A name given twice fails every time it appears.
    pub async fn create_topics(
        &mut self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> TopicResults<CreatedTopic> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for t in &topics {
            *counts.entry(t.name.as_str()).or_default() += 1;
        }
        let duplicates: BTreeSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(name, _)| name.to_owned())
            .collect();
        let live = self.live_brokers().await;
        let mut out = Vec::with_capacity(topics.len());
        for t in topics {
            let result = if duplicates.contains(&t.name) {
                Err(Error::InvalidRequest(format!(
                    "Create topics request from client contains a duplicate topic name: {}",
                    t.name
                )))
            } else {
                match &live {
                    Ok(live) => self.create_topic(&t, live, validate_only).await,
                    Err(e) => Err(Error::Coordination(e.clone())),
                }
            };
            match &result {
                Ok(created) if !validate_only => tracing::info!(
                    topic = %t.name, partitions = created.partitions,
                    replication_factor = created.replication_factor, "created topic"
                ),
                Err(e) => tracing::debug!(topic = %t.name, error = %e, "topic not created"),
                Ok(_) => {}
            }
            out.push((t.name, result));
        }
        out
    }

    /// Validates one topic as Kafka does, in Kafka's order, then writes it.
    pub(super) async fn create_topic(
        &self,
        t: &NewTopic,
        live: &BTreeSet<i32>,
        validate_only: bool,
    ) -> Result<CreatedTopic> {
        topic::validate_name(&t.name)?;
        if self.coord.get(&paths::topic(&t.name)).await?.is_some() {
            return Err(Error::TopicExists(t.name.clone()));
        }
        if let Some(other) = self
            .cache
            .topics()
            .into_iter()
            .find(|other| topic::collide(other, &t.name))
        {
            return Err(Error::InvalidTopic(format!(
                "Topic '{}' collides with existing topic: {other}",
                t.name
            )));
        }
        let replicas = self.plan_assignment(t, live)?;
        self.config
            .log_defaults
            .with_overrides(&t.configs)
            .map_err(|e| match e {
                LogError::Config { key, reason } => {
                    Error::InvalidRequest(format!("invalid config {key}: {reason}"))
                }
                other => Error::Log(other),
            })?;
        let created = CreatedTopic {
            topic_id: ids::random_uuid(),
            partitions: i32::try_from(replicas.len())
                .map_err(|_| Error::InvalidRequest("too many partitions".into()))?,
            replication_factor: replicas
                .first()
                .and_then(|r| i16::try_from(r.len()).ok())
                .unwrap_or(0),
        };
        if !validate_only {
            self.write_new_topic(&t.name, created.topic_id, replicas, &t.configs, live)
                .await?;
        }
        Ok(created)
    }

    /// The replica assignment of a new topic: the manual one, checked, or Kafka's.
    fn plan_assignment(&self, t: &NewTopic, live: &BTreeSet<i32>) -> Result<Vec<Vec<i32>>> {
        if let Some(manual) = &t.assignments {
            if t.partitions != -1 || t.replication_factor != -1 {
                return Err(Error::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. \
                     Both cannot be used at the same time."
                        .into(),
                ));
            }
            assignment::validate_manual(manual, None, live)?;
            return Ok(manual.clone());
        }
        let partitions = match t.partitions {
            -1 => self.config.num_partitions,
            n => n,
        };
        if partitions <= 0 {
            return Err(Error::InvalidRequest(
                "Number of partitions must be larger than 0.".into(),
            ));
        }
        let replication_factor = match t.replication_factor {
            -1 => self.config.default_replication_factor,
            n => n,
        };
        let brokers: Vec<i32> = live.iter().copied().collect();
        let start = AssignmentStart {
            start_index: ids::random_index(brokers.len()),
            replica_shift: ids::random_index(brokers.len()),
            first_partition: 0,
        };
        assignment::assign_replicas(&brokers, partitions, replication_factor, start)
    }

    /// Writes a new topic: assignment and config first (the first chunk), then every
    /// partition state, in as many fenced chunks as the backend needs.
    async fn write_new_topic(
        &self,
        name: &str,
        topic_id: [u8; 16],
        replicas: Vec<Vec<i32>>,
        configs: &BTreeMap<String, String>,
        live: &BTreeSet<i32>,
    ) -> Result<()> {
        let states: Vec<PartitionState> = replicas
            .iter()
            .map(|r| leader_election::initial_state(r, live, self.epoch))
            .collect();
        let assignment = TopicAssignment {
            topic_id,
            partitions: replicas,
        };
        let mut ops = vec![Op::Create {
            key: paths::topic(name),
            value: records::encode(&assignment)?,
            ephemeral: false,
        }];
        let config_key = paths::topic_config(name);
        let config_value = records::encode(&TopicConfigRecord {
            configs: configs.clone(),
        })?;
        ops.push(match self.coord.get(&config_key).await? {
            // Left over from an earlier topic of this name: replaced.
            Some(old) => Op::Set {
                key: config_key,
                value: config_value,
                version: Some(old.version),
            },
            None => Op::Create {
                key: config_key,
                value: config_value,
                ephemeral: false,
            },
        });
        for (p, state) in states.iter().enumerate() {
            ops.push(Op::Create {
                key: paths::partition_state(name, partition_id(p)?),
                value: records::encode(state)?,
                ephemeral: false,
            });
        }
        for (i, chunk) in self.fenced_chunks(ops, &[])?.into_iter().enumerate() {
            match self.coord.transact(chunk).await {
                Ok(_) => {}
                Err(CoordError::Conflict {
                    index: 1,
                    kind: ConflictKind::Exists,
                    ..
                }) if i == 0 => return Err(Error::TopicExists(name.to_owned())),
                Err(e) => {
                    if i > 0 {
                        tracing::warn!(topic = name, error = %e,
                            "topic creation interrupted after its assignment; the next reconcile completes it");
                    }
                    return Err(fenced(e));
                }
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // DeleteTopics.
    // ---------------------------------------------------------------------------------

    /// Deletes topics by name; one result per name, in request order.
    pub async fn delete_topics(&mut self, names: Vec<String>) -> TopicResults<()> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let result = self.delete_topic(&name).await;
            match &result {
                Ok(()) => tracing::info!(topic = %name, "deleted topic"),
                Err(e) => tracing::debug!(topic = %name, error = %e, "topic not deleted"),
            }
            out.push((name, result));
        }
        out
    }

    /// Deletes one topic's keys, its config and any pending deletion marker.
    pub(super) async fn delete_topic(&self, name: &str) -> Result<()> {
        let unknown = || Error::UnknownTopicOrPartition(name.to_owned());
        if topic::validate_name(name).is_err() {
            return Err(unknown());
        }
        let topic_key = paths::topic(name);
        let config_key = paths::topic_config(name);
        let marker_key = paths::delete_topic_request(name);
        let exists = self.coord.get(&topic_key).await?.is_some();
        let has_config = self.coord.get(&config_key).await?.is_some();
        let mut has_marker = self.coord.get(&marker_key).await?.is_some();
        let delete = |key: &str| Op::Delete {
            key: key.to_owned(),
            version: None,
        };
        if !exists {
            // Nothing to delete but leftovers of an interrupted deletion.
            let mut ops = Vec::new();
            if has_config {
                ops.push(delete(&config_key));
            }
            if has_marker {
                ops.push(delete(&marker_key));
            }
            if !ops.is_empty() {
                self.write(ops).await?;
            }
            return Err(unknown());
        }
        let partitions: Vec<String> = self
            .coord
            .children(&paths::partitions(name))
            .await?
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        let limits = self.coord.limits();
        // A backend that deletes key by key (ZooKeeper) turns the topic's Delete into one
        // operation per key below it: two per partition (the partition and its state).
        let keys_below = 2 * partitions.len() + 2;
        if keys_below + 4 > limits.max_ops_per_txn {
            if !has_marker {
                self.write(vec![Op::Create {
                    key: marker_key.clone(),
                    value: Vec::new(),
                    ephemeral: false,
                }])
                .await?;
                has_marker = true;
            }
            let halved = Limits {
                max_ops_per_txn: (limits.max_ops_per_txn / 2).max(2),
                ..limits
            };
            let base = paths::partitions(name);
            let ops = partitions
                .iter()
                .map(|p| delete(&keys::join(&base, p)))
                .collect();
            for chunk in keys::chunk(ops, Some(&self.guard), &halved)? {
                self.transact(chunk).await?;
            }
        }
        let mut ops = vec![delete(&topic_key)];
        if has_config {
            ops.push(delete(&config_key));
        }
        if has_marker {
            ops.push(delete(&marker_key));
        }
        self.write(ops).await
    }

    // ---------------------------------------------------------------------------------
    // CreatePartitions.
    // ---------------------------------------------------------------------------------

    /// Adds partitions to topics; one result per topic, in request order.
    pub async fn create_partitions(
        &mut self,
        topics: Vec<NewPartitions>,
        validate_only: bool,
    ) -> TopicResults<()> {
        let live = self.live_brokers().await;
        let mut out = Vec::with_capacity(topics.len());
        for t in topics {
            let result = match &live {
                Ok(live) => self.create_partitions_for(&t, live, validate_only).await,
                Err(e) => Err(Error::Coordination(e.clone())),
            };
            if let (Ok(()), false) = (&result, validate_only) {
                tracing::info!(topic = %t.topic, partitions = t.new_total, "added partitions");
            }
            out.push((t.topic, result));
        }
        out
    }

    async fn create_partitions_for(
        &self,
        req: &NewPartitions,
        live: &BTreeSet<i32>,
        validate_only: bool,
    ) -> Result<()> {
        let unknown = || Error::UnknownTopicOrPartition(req.topic.clone());
        if topic::validate_name(&req.topic).is_err() {
            return Err(unknown());
        }
        let key = paths::topic(&req.topic);
        let stored = self.coord.get(&key).await?.ok_or_else(unknown)?;
        let mut assignment: TopicAssignment = records::decode(&key, &stored.value)?;
        let current = assignment.partitions.len();
        let current_i32 = partition_id(current)?;
        if req.new_total < current_i32 {
            return Err(Error::InvalidRequest(format!(
                "Topic currently has {current} partitions, which is higher than the requested {}.",
                req.new_total
            )));
        }
        if req.new_total == current_i32 {
            return Err(Error::InvalidRequest(format!(
                "Topic already has {current} partitions."
            )));
        }
        let to_add = req.new_total - current_i32;
        let rf = assignment.partitions.first().map_or(0, Vec::len);
        let added = match &req.assignments {
            Some(manual) => {
                if manual.len() != usize::try_from(to_add).unwrap_or(0) {
                    return Err(Error::InvalidRequest(format!(
                        "Increasing the number of partitions by {to_add} but {} assignments provided.",
                        manual.len()
                    )));
                }
                assignment::validate_manual(manual, Some(rf), live)?;
                manual.clone()
            }
            None => {
                let brokers: Vec<i32> = live.iter().copied().collect();
                // Continue the round of preferred leaders from partition 0's (Kafka: the
                // first broker at or above partition 0's first replica).
                let start_index = assignment
                    .partitions
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|leader| brokers.iter().position(|b| b >= leader))
                    .unwrap_or_else(|| ids::random_index(brokers.len()));
                let start = AssignmentStart {
                    start_index,
                    replica_shift: start_index,
                    first_partition: current_i32,
                };
                let rf = i16::try_from(rf)
                    .map_err(|_| Error::InvalidRequest("replication factor too large".into()))?;
                assignment::assign_replicas(&brokers, to_add, rf, start)?
            }
        };
        if validate_only {
            return Ok(());
        }
        let states: Vec<PartitionState> = added
            .iter()
            .map(|r| leader_election::initial_state(r, live, self.epoch))
            .collect();
        assignment.partitions.extend(added);
        let mut ops = vec![Op::Set {
            key,
            value: records::encode(&assignment)?,
            version: Some(stored.version),
        }];
        for (i, state) in states.iter().enumerate() {
            ops.push(Op::Create {
                key: paths::partition_state(&req.topic, partition_id(current + i)?),
                value: records::encode(state)?,
                ephemeral: false,
            });
        }
        for chunk in self.fenced_chunks(ops, &[])? {
            self.transact(chunk).await?;
        }
        Ok(())
    }
}
