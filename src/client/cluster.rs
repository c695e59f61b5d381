//! The client's view of the cluster: brokers, topics, partition leaders (from Metadata
//! responses), and one connection per broker, opened on first use and replaced when it fails.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::config::ClientConfig;
use super::conn::Connection;
use super::error::{code, ClientError, Result};

/// Metadata v12: the newest the client reads (topic ids, no cluster authorized operations).
const METADATA_VERSION: i16 = 12;

/// One partition as the last metadata showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    /// The leader's broker id, -1 if none.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error_code: i16,
}

/// One topic as the last metadata showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub error_code: i16,
    pub is_internal: bool,
    /// Sorted by partition id.
    pub partitions: Vec<PartitionInfo>,
}

/// A broker: its id and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Default)]
struct State {
    brokers: HashMap<i32, BrokerInfo>,
    controller_id: i32,
    cluster_id: Option<String>,
    topics: HashMap<String, Arc<TopicInfo>>,
    refreshed: Option<Instant>,
}

/// Brokers, topics and connections; shared by a client's tasks.
#[derive(Debug)]
pub struct Cluster {
    config: ClientConfig,
    state: Mutex<State>,
    /// Broker id → connection; -1-based keys for bootstrap addresses (by index).
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

impl Cluster {
    pub fn new(config: ClientConfig) -> Arc<Cluster> {
        Arc::new(Cluster {
            config,
            state: Mutex::default(),
            connections: tokio::sync::Mutex::default(),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection to `addr`, opened if there is none or the last one failed.
    pub(crate) async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>> {
        let mut conns = self.connections.lock().await;
        if let Some(c) = conns.get(addr).filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(Connection::connect(addr, self.config.connection()).await?);
        conns.insert(addr.to_owned(), Arc::clone(&c));
        Ok(c)
    }

    /// A connection to broker `id` (known from the metadata).
    pub(crate) async fn broker(&self, id: i32) -> Result<Arc<Connection>> {
        let addr = self
            .state()
            .brokers
            .get(&id)
            .map(BrokerInfo::addr)
            .ok_or_else(|| {
                ClientError::kafka(
                    format!("broker {id}"),
                    code::LEADER_NOT_AVAILABLE,
                    Some("not in the metadata".into()),
                )
            })?;
        self.connection_to(&addr).await
    }

    /// A connection to any broker: a known one first, else a bootstrap server.
    pub(crate) async fn any_broker(&self) -> Result<Arc<Connection>> {
        let mut candidates: Vec<String> = self
            .state()
            .brokers
            .values()
            .map(BrokerInfo::addr)
            .collect();
        candidates.sort();
        candidates.extend(self.config.bootstrap_servers.iter().cloned());
        let mut last = None;
        for addr in candidates {
            match self.connection_to(&addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config {
            key: "bootstrap.servers".into(),
            reason: "no broker to connect to".into(),
        }))
    }

    /// Asks a broker for the metadata of `topics` (`None`: all topics) and records it.
    /// Topics the broker does not know come back with their error code, not as an error.
    pub async fn refresh(&self, topics: Option<&[String]>) -> Result<()> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(
                topics.is_some() && self.config.allow_auto_create_topics,
            );
        let conn = self.any_broker().await?;
        let response: MetadataResponse = conn.send(request, METADATA_VERSION).await?;
        self.record(response, topics.is_none());
        Ok(())
    }

    fn record(&self, response: MetadataResponse, all_topics: bool) {
        let mut state = self.state();
        state.brokers = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerInfo {
                        id: b.node_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.to_string()),
                    },
                )
            })
            .collect();
        state.controller_id = response.controller_id.0;
        state.cluster_id = response.cluster_id.as_ref().map(|c| c.to_string());
        if all_topics {
            state.topics.clear();
        }
        for t in response.topics {
            let Some(name) = t.name.as_ref().map(|n| n.0.to_string()) else {
                continue;
            };
            let mut partitions: Vec<PartitionInfo> = t
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let info = TopicInfo {
                name: name.clone(),
                error_code: t.error_code,
                is_internal: t.is_internal,
                partitions,
            };
            state.topics.insert(name, Arc::new(info));
        }
        state.refreshed = Some(Instant::now());
    }

    /// The last metadata of `topic`, if any was fetched.
    pub fn topic(&self, topic: &str) -> Option<Arc<TopicInfo>> {
        self.state().topics.get(topic).cloned()
    }

    /// Every topic the last full refresh listed.
    pub fn topics(&self) -> Vec<Arc<TopicInfo>> {
        let mut topics: Vec<_> = self.state().topics.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// The brokers, by id.
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        let mut brokers: Vec<_> = self.state().brokers.values().cloned().collect();
        brokers.sort_by_key(|b| b.id);
        brokers
    }

    /// The controller's broker id (-1 if unknown).
    pub fn controller_id(&self) -> i32 {
        self.state().controller_id
    }

    /// The metadata of `topic`, fetched if not known yet or older than `metadata.max.age.ms`.
    /// An unknown topic is an error (UNKNOWN_TOPIC_OR_PARTITION).
    pub async fn topic_or_fetch(&self, topic: &str) -> Result<Arc<TopicInfo>> {
        let fresh = {
            let state = self.state();
            state.topics.get(topic).cloned().filter(|t| {
                t.error_code == code::NONE
                    && state.refreshed.is_some_and(|at| {
                        at.elapsed().as_millis() < u128::from(self.config.metadata_max_age_ms)
                    })
            })
        };
        if let Some(t) = fresh {
            return Ok(t);
        }
        self.refresh(Some(&[topic.to_owned()])).await?;
        let t = self
            .topic(topic)
            .ok_or_else(|| ClientError::kafka(topic, code::UNKNOWN_TOPIC_OR_PARTITION, None))?;
        super::error::check(|| topic.to_owned(), t.error_code, None)?;
        Ok(t)
    }
}
