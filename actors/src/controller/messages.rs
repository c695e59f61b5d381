//! The [`super::Controller`] actor's messages and the values they carry.
//!
//! Every request message answers `Err(Error::NotController)` as a whole when this broker
//! is not the elected controller (the handler maps it to NOT_CONTROLLER in every topic's
//! result, and clients retry at Metadata's `controller_id`); otherwise each topic gets its
//! own result, in request order.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::Message;

use crate::Result;

/// One topic to create (CreateTopics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// `-1`: the broker's `num.partitions`. Must be -1 when `assignments` is given.
    pub partitions: i32,
    /// `-1`: the broker's `default.replication.factor`. Must be -1 when `assignments` is
    /// given.
    pub replication_factor: i16,
    /// A manual assignment: partition `p`'s replicas at index `p` (the handler turns the
    /// wire's `(partition index, broker ids)` pairs into this, refusing gaps).
    pub assignments: Option<Vec<Vec<i32>>>,
    /// Topic-level config overrides, by Kafka's topic config names.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with the broker defaults for everything.
    pub fn with_defaults(name: &str) -> NewTopic {
        NewTopic {
            name: name.to_owned(),
            partitions: -1,
            replication_factor: -1,
            assignments: None,
            configs: BTreeMap::new(),
        }
    }

    /// A topic with `partitions` partitions of `replication_factor` replicas.
    pub fn new(name: &str, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            partitions,
            replication_factor,
            ..NewTopic::with_defaults(name)
        }
    }
}

/// A created (or, with `validate_only`, creatable) topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedTopic {
    pub topic_id: [u8; 16],
    pub partitions: i32,
    pub replication_factor: i16,
}

/// Partitions to add to one topic (CreatePartitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    pub topic: String,
    /// The partition count wanted, larger than the current one.
    pub new_total: i32,
    /// A manual assignment of the new partitions only, in order.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// Per-topic results, in request order.
pub type TopicResults<T> = Vec<(String, Result<T>)>;

/// Creates topics: validates each as Kafka does, assigns replicas, writes the assignment,
/// config and partition states (fenced by the controller epoch). With `validate_only`
/// nothing is written. `timeout` bounds how long the request may wait for the
/// controller: if it has not started by then it answers `Error::Timeout` and writes
/// nothing; once started, a topic's writes complete (a zero timeout waits as long as it
/// takes, as Kafka's "do not wait" cannot mean "do not create").
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<TopicResults<CreatedTopic>>")]
pub struct CreateTopics {
    pub topics: Vec<NewTopic>,
    pub validate_only: bool,
    pub timeout: Duration,
}

/// Deletes topics by name: the topic's keys and its config go (fenced); every broker's
/// metadata cache sees them go and stops the replicas. An unknown name answers
/// `Error::UnknownTopicOrPartition`. `timeout` as for [`CreateTopics`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<TopicResults<()>>")]
pub struct DeleteTopics {
    pub names: Vec<String>,
    pub timeout: Duration,
}

/// Adds partitions to existing topics. `timeout` as for [`CreateTopics`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<TopicResults<()>>")]
pub struct CreatePartitions {
    pub topics: Vec<NewPartitions>,
    pub validate_only: bool,
    pub timeout: Duration,
}

/// Whether this broker is the active (elected) controller now.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct IsActive;
