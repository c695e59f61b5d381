//! The group coordinator's errors: Kafka's group error codes, named as Kafka names them. The
//! network layer maps each variant to its code (one place, `src/handlers`).

/// What a group request can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// COORDINATOR_NOT_AVAILABLE (15): `__consumer_offsets` does not exist yet (or cannot
    /// be created: fewer live brokers than `offsets.topic.replication.factor`), its
    /// partition has no leader, or the coordinator is shutting down.
    #[error("coordinator not available: {0}")]
    CoordinatorNotAvailable(String),
    /// NOT_COORDINATOR (16): another broker leads the group's `__consumer_offsets` partition.
    #[error("this broker is not the coordinator of group {0}")]
    NotCoordinator(String),
    /// COORDINATOR_LOAD_IN_PROGRESS (14): the coordinator is still loading its partition.
    #[error("the coordinator is loading the offsets partition of group {0}")]
    CoordinatorLoadInProgress(String),
    /// ILLEGAL_GENERATION (22).
    #[error("generation {got} is not the group's generation {current}")]
    IllegalGeneration { got: i32, current: i32 },
    /// UNKNOWN_MEMBER_ID (25).
    #[error("unknown member id {0:?}")]
    UnknownMemberId(String),
    /// REBALANCE_IN_PROGRESS (27).
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    /// FENCED_INSTANCE_ID (82): a static member's `group.instance.id` now belongs to
    /// another member id.
    #[error("group.instance.id {0:?} belongs to another member")]
    FencedInstanceId(String),
    /// MEMBER_ID_REQUIRED (79): JoinGroup v4+ without a member id; the client rejoins with
    /// this one.
    #[error("a member id is required; rejoin with {0}")]
    MemberIdRequired(String),
    /// INCONSISTENT_GROUP_PROTOCOL (23): an empty protocol list, another protocol type, or
    /// no protocol common to all members.
    #[error("inconsistent group protocol: {0}")]
    InconsistentGroupProtocol(String),
    /// INVALID_SESSION_TIMEOUT (26): outside `group.min.session.timeout.ms` ..
    /// `group.max.session.timeout.ms`.
    #[error("session timeout {0} ms is outside the broker's allowed range")]
    InvalidSessionTimeout(i32),
    /// GROUP_MAX_SIZE_REACHED (81): `group.max.size` members (and pending members).
    #[error("group {0} has reached group.max.size")]
    GroupMaxSizeReached(String),
    /// INVALID_GROUP_ID (24): an empty group id where one is required.
    #[error("invalid group id {0:?}")]
    InvalidGroupId(String),
    /// GROUP_ID_NOT_FOUND (69): DeleteGroups / OffsetDelete / DescribeGroups of a group the
    /// coordinator does not know.
    #[error("group {0} does not exist")]
    GroupIdNotFound(String),
    /// NON_EMPTY_GROUP (68): DeleteGroups of a group with members.
    #[error("group {0} is not empty")]
    NonEmptyGroup(String),
    /// GROUP_SUBSCRIBED_TO_TOPIC (86): OffsetDelete of a topic the group's members consume.
    #[error("the group is subscribed to topic {0}")]
    GroupSubscribedToTopic(String),
    /// OFFSET_METADATA_TOO_LARGE (12): commit metadata over `offset.metadata.max.bytes`.
    #[error("offset metadata of {size} bytes is over offset.metadata.max.bytes={max}")]
    OffsetMetadataTooLarge { size: usize, max: usize },
    /// UNKNOWN_TOPIC_OR_PARTITION (3): a commit for a partition that does not exist.
    #[error("unknown topic or partition {0}")]
    UnknownTopicOrPartition(String),
    /// REQUEST_TIMED_OUT (7): the append to `__consumer_offsets` was not acknowledged in
    /// `offsets.commit.timeout.ms`.
    #[error("timed out: {0}")]
    Timeout(String),
    /// UNKNOWN_SERVER_ERROR (-1) or the code of the underlying error: the append to
    /// `__consumer_offsets` failed (storage error, not leader any more ...). The handler
    /// maps the inner error with the broker's usual mapping, except that
    /// NOT_LEADER_OR_FOLLOWER becomes NOT_COORDINATOR as in Kafka.
    #[error(transparent)]
    Storage(StorageError),
}

impl From<crate::Error> for GroupError {
    fn from(e: crate::Error) -> GroupError {
        GroupError::Storage(StorageError(std::sync::Arc::new(e)))
    }
}

/// An actor error behind a group error (shared, so that one failed append can answer many
/// requests). Two are equal when they describe the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[error(transparent)]
pub struct StorageError(pub std::sync::Arc<crate::Error>);

impl PartialEq for StorageError {
    fn eq(&self, other: &StorageError) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for StorageError {}
