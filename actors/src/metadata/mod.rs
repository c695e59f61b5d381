//! Kafka's cluster metadata as Sluice keeps it in the coordination service: the stored
//! records ([`records`]) at Kafka's ZooKeeper-mode paths ([`paths`]), the watched view
//! every broker reads ([`cache::MetadataCache`]), and the writes every broker makes for
//! itself ([`registration`]: broker registration, cluster id, producer id blocks,
//! requests to the controller).

pub mod cache;
pub mod ids;
pub mod paths;
pub mod records;
pub mod registration;
pub mod topic;

pub use cache::{
    ClusterView, ControllerInfo, HostedPartition, MetadataCache, StoredPartitionState,
    TopicMetadata,
};
pub use records::{
    BrokerConfigRecord, BrokerRegistration, ClusterId, CreateTopicRequestRecord, PartitionState,
    ProducerIdBlock, TopicAssignment, TopicConfigRecord, NO_LEADER,
};
pub use registration::{
    allocate_producer_id_block, ensure_cluster_id, register_broker, request_topic_creation,
    request_topic_deletion, PRODUCER_ID_BLOCK_SIZE,
};
