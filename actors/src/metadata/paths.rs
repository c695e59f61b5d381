//! Every coordination key Sluice uses, in one place: Kafka's ZooKeeper-mode paths, below
//! the configured root (the coordination client adds the root; these paths never carry it).
//!
//! ```text
//! /cluster/id                                   ClusterId, created once
//! /controller                                   the controller election's leader key
//! /controller_epoch                             the election's epoch key (never deleted)
//! /brokers/ids/<id>                             BrokerRegistration, ephemeral
//! /brokers/topics/<name>                        TopicAssignment
//! /brokers/topics/<name>/partitions/<p>/state   PartitionState
//! /config/topics/<name>                         TopicConfigRecord
//! /config/brokers/<id>                          BrokerConfigRecord
//! /admin/create_topics/<name>                   CreateTopicRequestRecord
//! /admin/delete_topics/<name>                   a pending deletion (empty value)
//! /latest_producer_id_block                     ProducerIdBlock
//! ```
//!
//! Topic names are safe path segments: [`crate::controller`] only creates topics whose
//! names are ASCII alphanumerics, `.`, `_` and `-`, never `.` or `..`.

/// `/cluster`: the parent of [`CLUSTER_ID`], watched by the metadata cache.
pub const CLUSTER: &str = "/cluster";
/// `/cluster/id`: the cluster id, created once by the first broker.
pub const CLUSTER_ID: &str = "/cluster/id";
/// `/controller`: the controller election's leader key.
pub const CONTROLLER: &str = "/controller";
/// `/controller_epoch`: the controller election's epoch key; every controller write is
/// guarded by a check on its version.
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
/// `/brokers`: registrations and topics.
pub const BROKERS: &str = "/brokers";
/// `/brokers/ids`: one ephemeral key per live broker.
pub const BROKER_IDS: &str = "/brokers/ids";
/// `/brokers/topics`: one key per topic (its assignment), partition states below it.
pub const TOPICS: &str = "/brokers/topics";
/// `/config`: dynamic configuration.
pub const CONFIG: &str = "/config";
/// `/config/topics`: per-topic config overrides.
pub const TOPIC_CONFIGS: &str = "/config/topics";
/// `/config/brokers`: dynamic per-broker config.
pub const BROKER_CONFIGS: &str = "/config/brokers";
/// `/admin`: requests to the controller.
pub const ADMIN: &str = "/admin";
/// `/admin/create_topics`: topic creation requests (auto-creation from Metadata).
pub const CREATE_TOPIC_REQUESTS: &str = "/admin/create_topics";
/// `/admin/delete_topics`: pending topic deletions.
pub const DELETE_TOPIC_REQUESTS: &str = "/admin/delete_topics";
/// `/latest_producer_id_block`: the last block of producer ids handed out.
pub const LATEST_PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";

/// `/brokers/ids/<id>`.
pub fn broker(id: i32) -> String {
    format!("{BROKER_IDS}/{id}")
}

/// `/brokers/topics/<name>`.
pub fn topic(name: &str) -> String {
    format!("{TOPICS}/{name}")
}

/// `/brokers/topics/<name>/partitions`.
pub fn partitions(name: &str) -> String {
    format!("{TOPICS}/{name}/partitions")
}

/// `/brokers/topics/<name>/partitions/<p>`.
pub fn partition(name: &str, partition: i32) -> String {
    format!("{TOPICS}/{name}/partitions/{partition}")
}

/// `/brokers/topics/<name>/partitions/<p>/state`.
pub fn partition_state(name: &str, partition: i32) -> String {
    format!("{TOPICS}/{name}/partitions/{partition}/state")
}

/// `/config/topics/<name>`.
pub fn topic_config(name: &str) -> String {
    format!("{TOPIC_CONFIGS}/{name}")
}

/// `/config/brokers/<id>`.
pub fn broker_config(id: i32) -> String {
    format!("{BROKER_CONFIGS}/{id}")
}

/// `/admin/create_topics/<name>`.
pub fn create_topic_request(name: &str) -> String {
    format!("{CREATE_TOPIC_REQUESTS}/{name}")
}

/// `/admin/delete_topics/<name>`.
pub fn delete_topic_request(name: &str) -> String {
    format!("{DELETE_TOPIC_REQUESTS}/{name}")
}

/// What a key is, as far as Sluice's metadata is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path<'a> {
    /// `/cluster/id`.
    ClusterId,
    /// `/controller`.
    Controller,
    /// `/brokers/ids/<id>`.
    Broker(i32),
    /// `/brokers/topics/<name>`.
    Topic(&'a str),
    /// `/brokers/topics/<name>/partitions` (a parent key without a value).
    Partitions(&'a str),
    /// `/brokers/topics/<name>/partitions/<p>` (a parent key without a value).
    Partition(&'a str, i32),
    /// `/brokers/topics/<name>/partitions/<p>/state`.
    PartitionState(&'a str, i32),
    /// `/config/topics/<name>`.
    TopicConfig(&'a str),
    /// `/config/brokers/<id>`.
    BrokerConfig(i32),
    /// `/admin/create_topics/<name>`.
    CreateTopicRequest(&'a str),
    /// `/admin/delete_topics/<name>`.
    DeleteTopicRequest(&'a str),
    /// Anything else: a parent such as `/brokers`, or a key Sluice does not use.
    Other,
}

/// Classifies `key`. Broker ids and partition numbers must be non-negative decimal
/// integers; anything else is [`Path::Other`].
pub fn parse(key: &str) -> Path<'_> {
    let Some(rest) = key.strip_prefix('/') else {
        return Path::Other;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["cluster", "id"] => Path::ClusterId,
        ["controller"] => Path::Controller,
        ["brokers", "ids", id] => id_segment(id).map_or(Path::Other, Path::Broker),
        ["brokers", "topics", name] => Path::Topic(name),
        ["brokers", "topics", name, "partitions"] => Path::Partitions(name),
        ["brokers", "topics", name, "partitions", p] => {
            id_segment(p).map_or(Path::Other, |p| Path::Partition(name, p))
        }
        ["brokers", "topics", name, "partitions", p, "state"] => {
            id_segment(p).map_or(Path::Other, |p| Path::PartitionState(name, p))
        }
        ["config", "topics", name] => Path::TopicConfig(name),
        ["config", "brokers", id] => id_segment(id).map_or(Path::Other, Path::BrokerConfig),
        ["admin", "create_topics", name] => Path::CreateTopicRequest(name),
        ["admin", "delete_topics", name] => Path::DeleteTopicRequest(name),
        _ => Path::Other,
    }
}

/// A non-negative decimal `i32` written the canonical way (no sign, no leading zero).
fn id_segment(segment: &str) -> Option<i32> {
    let canonical = !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'));
    if canonical {
        segment.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_coordination::keys;

    #[test]
    fn builders_and_parser_agree() {
        assert_eq!(parse(&broker(3)), Path::Broker(3));
        assert_eq!(parse(&topic("t")), Path::Topic("t"));
        assert_eq!(parse(&partitions("t")), Path::Partitions("t"));
        assert_eq!(parse(&partition("t", 7)), Path::Partition("t", 7));
        assert_eq!(
            parse(&partition_state("t", 7)),
            Path::PartitionState("t", 7)
        );
        assert_eq!(parse(&topic_config("t")), Path::TopicConfig("t"));
        assert_eq!(parse(&broker_config(2)), Path::BrokerConfig(2));
        assert_eq!(
            parse(&create_topic_request("t")),
            Path::CreateTopicRequest("t")
        );
        assert_eq!(
            parse(&delete_topic_request("t")),
            Path::DeleteTopicRequest("t")
        );
        assert_eq!(parse(CLUSTER_ID), Path::ClusterId);
        assert_eq!(parse(CONTROLLER), Path::Controller);
        for other in [
            "/",
            "/brokers",
            BROKER_IDS,
            TOPICS,
            "/brokers/ids/-1",
            "/brokers/ids/01",
            "/brokers/ids/x",
            "/brokers/topics/t/partitions/99999999999/state",
            CONTROLLER_EPOCH,
            "relative",
        ] {
            assert_eq!(parse(other), Path::Other, "{other}");
        }
        for key in [
            broker(1),
            partition_state("a.b_c-d", 0),
            topic_config("t"),
            create_topic_request("t"),
            LATEST_PRODUCER_ID_BLOCK.to_owned(),
        ] {
            assert!(keys::validate(&key).is_ok(), "{key}");
        }
    }
}
