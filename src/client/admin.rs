//! The admin client: topics (create, delete, list, describe, add partitions), configs
//! (describe, alter incrementally), groups (list, describe, delete, reset offsets) and
//! offsets (list by earliest/latest/timestamp). Topic changes go to the controller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteGroupsRequest, DeleteTopicsRequest, DeleteTopicsResponse, DescribeConfigsRequest,
    DescribeGroupsRequest, GroupId, IncrementalAlterConfigsRequest, ListGroupsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::cluster::{Cluster, TopicInfo};
use super::config::ClientConfig;
use super::conn::Connection;
use super::consumer::{assignor, group};
use super::error::{check, code, ClientError, Result};
use super::TopicPartition;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's `num.partitions`.
    pub partitions: i32,
    /// -1: the broker's `default.replication.factor`.
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }
}

/// What a config is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    Topic(String),
    Broker(i32),
}

impl ConfigResource {
    fn kind_and_name(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(t) => (2, t.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
        }
    }
}

/// One config value as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Kafka's source codes: 1 topic, 2 dynamic broker, 4 static broker, 5 default...
    pub source: i8,
    pub read_only: bool,
    pub is_sensitive: bool,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Decoded from the member's assignment (consumer groups).
    pub assignment: Vec<TopicPartition>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// Which offset to look up, or to reset a group to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset at or after this time (ms), the end if none.
    Timestamp(i64),
    /// This offset exactly.
    Offset(i64),
}

/// The admin client. Create it inside a tokio runtime.
#[derive(Debug)]
pub struct Admin {
    cluster: Arc<Cluster>,
    /// How long topic operations wait for the controller (`timeout_ms` on the wire).
    pub operation_timeout: Duration,
}

impl Admin {
    pub fn new(mut config: ClientConfig) -> Admin {
        config.allow_auto_create_topics = false;
        Admin {
            cluster: Cluster::new(config),
            operation_timeout: Duration::from_secs(30),
        }
    }

    /// The cluster view (metadata) this client uses.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.operation_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// The controller's connection (any broker if none is known).
    async fn controller(&self) -> Result<Arc<Connection>> {
        self.cluster.refresh(Some(&[])).await?;
        match self.cluster.controller_id() {
            id if id >= 0 => self.cluster.broker(id).await,
            _ => self.cluster.any_broker().await,
        }
    }

    /// Sends `request` to the controller; if the answer says the broker is not (or no longer)
    /// the controller, once more after a metadata refresh (the controller moved).
    async fn to_controller<Q>(
        &self,
        request: Q,
        max: i16,
        not_controller: impl Fn(&Q::Response) -> bool,
    ) -> Result<Q::Response>
    where
        Q: kafka_protocol::protocol::Request + Clone,
    {
        let response = self.controller().await?.send(request.clone(), max).await?;
        if !not_controller(&response) {
            return Ok(response);
        }
        self.controller().await?.send(request, max).await
    }

    /// Creates `topics`; each topic's outcome (TOPIC_ALREADY_EXISTS and the like are
    /// per-topic errors, not a failure of the call).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<Vec<(String, Result<()>)>> {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(s(&t.name)))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(s(k))
                                            .with_value(Some(s(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let response = self
            .to_controller(request, 7, |r: &CreateTopicsResponse| {
                r.topics
                    .iter()
                    .any(|t| t.error_code == code::NOT_CONTROLLER)
            })
            .await?;
        Ok(response
            .topics
            .into_iter()
            .map(|t| {
                let name = t.name.0.to_string();
                let outcome = check(
                    || format!("create topic {name}"),
                    t.error_code,
                    t.error_message.map(|m| m.to_string()),
                );
                (name, outcome)
            })
            .collect())
    }

    /// Deletes topics by name; each topic's outcome.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topic_names(names.iter().map(|n| TopicName(s(n))).collect());
        let response = self
            .to_controller(request, 5, |r: &DeleteTopicsResponse| {
                r.responses
                    .iter()
                    .any(|t| t.error_code == code::NOT_CONTROLLER)
            })
            .await?;
        Ok(response
            .responses
            .into_iter()
            .map(|t| {
                let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
                let outcome = check(
                    || format!("delete topic {name}"),
                    t.error_code,
                    t.error_message.map(|m| m.to_string()),
                );
                (name, outcome)
            })
            .collect())
    }

    /// Every topic (internal ones too if asked), sorted by name.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<Arc<TopicInfo>>> {
        self.cluster.refresh(None).await?;
        Ok(self
            .cluster
            .topics()
            .into_iter()
            .filter(|t| include_internal || !t.is_internal)
            .collect())
    }

    /// The metadata of `names` (an unknown topic is an error naming it).
    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<Arc<TopicInfo>>> {
        self.cluster.refresh(Some(names)).await?;
        names
            .iter()
            .map(|n| {
                let t = self.cluster.topic(n).ok_or_else(|| {
                    ClientError::kafka(n.clone(), code::UNKNOWN_TOPIC_OR_PARTITION, None)
                })?;
                check(|| n.clone(), t.error_code, None)?;
                Ok(t)
            })
            .collect()
    }

    /// Grows `topic` to `total` partitions.
    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_count(total)
                // Null (not empty): the controller places the new partitions.
                .with_assignments(None)]);
        let response = self
            .to_controller(request, 3, |r: &CreatePartitionsResponse| {
                r.results
                    .iter()
                    .any(|t| t.error_code == code::NOT_CONTROLLER)
            })
            .await?;
        for r in response.results {
            check(
                || format!("create partitions of {topic}"),
                r.error_code,
                r.error_message.map(|m| m.to_string()),
            )?;
        }
        Ok(())
    }

    /// The configs of `resource` (every key, with its source).
    pub async fn describe_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let (kind, name) = resource.kind_and_name();
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(&name))
                .with_configuration_keys(None),
        ]);
        let conn = match resource {
            ConfigResource::Broker(id) => {
                self.cluster.refresh(Some(&[])).await?;
                self.cluster.broker(*id).await?
            }
            ConfigResource::Topic(_) => self.cluster.any_broker().await?,
        };
        let response = conn.send(request, 4).await?;
        let mut out = Vec::new();
        for r in response.results {
            check(
                || format!("describe configs of {name}"),
                r.error_code,
                r.error_message.map(|m| m.to_string()),
            )?;
            out.extend(r.configs.into_iter().map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: c.config_source,
                read_only: c.read_only,
                is_sensitive: c.is_sensitive,
            }));
        }
        Ok(out)
    }

    /// Sets (`Some`) or deletes (`None`: back to the default) configs of `resource`
    /// (IncrementalAlterConfigs).
    pub async fn alter_configs(
        &self,
        resource: &ConfigResource,
        changes: &[(String, Option<String>)],
    ) -> Result<()> {
        let (kind, name) = resource.kind_and_name();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(s(&name))
                .with_configs(
                    changes
                        .iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(s(k))
                                .with_config_operation(if v.is_some() { 0 } else { 1 })
                                .with_value(v.as_deref().map(s))
                        })
                        .collect(),
                ),
        ]);
        let conn = match resource {
            ConfigResource::Broker(id) => {
                self.cluster.refresh(Some(&[])).await?;
                self.cluster.broker(*id).await?
            }
            ConfigResource::Topic(_) => self.controller().await?,
        };
        let response = conn.send(request, 1).await?;
        for r in response.responses {
            check(
                || format!("alter configs of {name}"),
                r.error_code,
                r.error_message.map(|m| m.to_string()),
            )?;
        }
        Ok(())
    }

    /// Every group on every broker, sorted by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        self.cluster.refresh(Some(&[])).await?;
        let mut out = Vec::new();
        for b in self.cluster.brokers() {
            let conn = self.cluster.broker(b.id).await?;
            let response = conn.send(ListGroupsRequest::default(), 4).await?;
            check(
                || format!("ListGroups on broker {}", b.id),
                response.error_code,
                None,
            )?;
            out.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// A group's state and members (with their assignments, for consumer groups).
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        let conn = group::coordinator(&self.cluster, group_id).await?;
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group_id))]);
        let response = conn.send(request, 5).await?;
        let g = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Protocol {
                addr: format!("coordinator of {group_id}"),
                reason: "DescribeGroups answered no group".into(),
            })?;
        check(
            || format!("describe group {group_id}"),
            g.error_code,
            g.error_message.map(|m| m.to_string()),
        )?;
        let consumer = g.protocol_type.as_str() == "consumer";
        Ok(GroupDescription {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: if consumer {
                        assignor::decode_assignment(&m.member_assignment)
                            .map(|a| {
                                a.partitions
                                    .into_iter()
                                    .flat_map(|(t, ps)| {
                                        ps.into_iter()
                                            .map(move |p| TopicPartition::new(t.clone(), p))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        })
    }

    /// Deletes groups (they must be empty); each group's outcome.
    pub async fn delete_groups(&self, group_ids: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::new();
        for g in group_ids {
            let conn = group::coordinator(&self.cluster, g).await?;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(g))]);
            let response = conn.send(request, 2).await?;
            for r in response.results {
                let id = r.group_id.0.to_string();
                out.push((
                    id.clone(),
                    check(|| format!("delete group {id}"), r.error_code, None),
                ));
            }
        }
        Ok(out)
    }

    /// The offsets `spec` names for `partitions` (every partition of a topic given with
    /// partition -1).
    pub async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let partitions = self.expand(partitions).await?;
        match spec {
            OffsetSpec::Offset(o) => Ok(partitions.into_iter().map(|tp| (tp, o)).collect()),
            OffsetSpec::Earliest => group::list_offsets(&self.cluster, &partitions, -2, 0).await,
            OffsetSpec::Latest => group::list_offsets(&self.cluster, &partitions, -1, 0).await,
            OffsetSpec::Timestamp(t) => {
                let found = group::list_offsets(&self.cluster, &partitions, t, 0).await?;
                let ends = group::list_offsets(&self.cluster, &partitions, -1, 0).await?;
                Ok(partitions
                    .into_iter()
                    .map(|tp| {
                        let o = found
                            .get(&tp)
                            .filter(|o| **o >= 0)
                            .or_else(|| ends.get(&tp))
                            .copied()
                            .unwrap_or(0);
                        (tp, o)
                    })
                    .collect())
            }
        }
    }

    /// `tp` with partition -1 → every partition of its topic.
    async fn expand(&self, partitions: &[TopicPartition]) -> Result<Vec<TopicPartition>> {
        let mut out = Vec::new();
        for tp in partitions {
            if tp.partition >= 0 {
                out.push(tp.clone());
                continue;
            }
            let t = self.cluster.topic_or_fetch(&tp.topic).await?;
            out.extend(
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(tp.topic.clone(), p.partition)),
            );
        }
        Ok(out)
    }

    /// The group's committed offsets (every partition it has one for).
    pub async fn group_offsets(&self, group_id: &str) -> Result<BTreeMap<TopicPartition, i64>> {
        let conn = group::coordinator(&self.cluster, group_id).await?;
        group::fetch_offsets(&conn, group_id, None).await
    }

    /// Sets the group's committed offsets of `partitions` to what `spec` names (clamped
    /// to each partition's [earliest, latest]); only while the group has no active members,
    /// as `kafka-consumer-groups --reset-offsets` requires. Returns the new offsets.
    pub async fn reset_group_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let description = self.describe_group(group_id).await?;
        if !matches!(description.state.as_str(), "Empty" | "Dead") {
            return Err(ClientError::InvalidArgument(format!(
                "group {group_id} is {} with {} members: offsets can only be reset while it is \
                 inactive (stop its consumers first)",
                description.state,
                description.members.len()
            )));
        }
        let partitions = self.expand(partitions).await?;
        let wanted = self.list_offsets(&partitions, spec).await?;
        let earliest = group::list_offsets(&self.cluster, &partitions, -2, 0).await?;
        let latest = group::list_offsets(&self.cluster, &partitions, -1, 0).await?;
        let offsets: BTreeMap<TopicPartition, i64> = wanted
            .into_iter()
            .map(|(tp, o)| {
                let lo = earliest.get(&tp).copied().unwrap_or(0);
                let hi = latest.get(&tp).copied().unwrap_or(i64::MAX).max(lo);
                (tp, o.clamp(lo, hi))
            })
            .collect();
        let conn = group::coordinator(&self.cluster, group_id).await?;
        let member = group::Member {
            group_id,
            member_id: "",
            instance_id: None,
            generation_id: -1,
        };
        group::commit_offsets(&conn, &member, &offsets).await?;
        Ok(offsets)
    }

    /// Waits until `topic` has a leader for each partition (after creating it), up to
    /// `timeout`.
    pub async fn wait_for_leaders(&self, topic: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.cluster.refresh(Some(&[topic.to_owned()])).await?;
            if let Some(t) = self.cluster.topic(topic) {
                if t.error_code == code::NONE
                    && !t.partitions.is_empty()
                    && t.partitions.iter().all(|p| p.leader >= 0)
                {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(
                    timeout,
                    format!("leaders for {topic}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
