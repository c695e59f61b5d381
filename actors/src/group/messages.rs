//! The [`GroupCoordinator`](super::GroupCoordinator)'s messages: one per group API.
//!
//! Plain Rust values, no wire types: the network layer turns each request into one of
//! these (after looking the coordinator up with [`Groups::coordinator_for`]) and the
//! answer into the response of the request's version. Every message for a group the
//! coordinator does not own (another partition) answers `GroupError::NotCoordinator`;
//! while the coordinator loads, `GroupError::CoordinatorLoadInProgress`.
//!
//! JoinGroup and SyncGroup answer when the rebalance step completes (their handlers return
//! a future; the actor keeps serving meanwhile).
//!
//! [`Groups::coordinator_for`]: super::Groups::coordinator_for

use actix::Message;

use super::GroupError;

/// JoinGroup (key 11).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<JoinGroupResult, GroupError>")]
pub struct JoinGroup {
    pub group_id: String,
    /// Empty for a new member.
    pub member_id: String,
    /// `group.instance.id` (static membership, v5+).
    pub group_instance_id: Option<String>,
    pub client_id: String,
    /// The client's address as the broker sees it (`/127.0.0.1`, as Kafka prints it).
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// v0 has none: the handler passes the session timeout.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// v4+: a new member without a member id gets `GroupError::MemberIdRequired` with its
    /// id (KIP-394) instead of joining at once.
    pub require_known_member_id: bool,
    pub reason: Option<String>,
}

/// One member as the leader sees it in its JoinGroup answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Vec<u8>,
}

/// JoinGroup's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupResult {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    /// v9: a static leader rejoining without change skips computing an assignment.
    pub skip_assignment: bool,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol — for the leader only; empty
    /// for the others.
    pub members: Vec<JoinedMember>,
}

/// SyncGroup (key 14).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<SyncGroupResult, GroupError>")]
pub struct SyncGroup {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v5+: checked against the group's when given (INCONSISTENT_GROUP_PROTOCOL).
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment bytes); empty from followers.
    pub assignments: Vec<(String, Vec<u8>)>,
}

/// SyncGroup's answer: this member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroupResult {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Vec<u8>,
}

/// Heartbeat (key 12). REBALANCE_IN_PROGRESS tells the member to rejoin.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), GroupError>")]
pub struct Heartbeat {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One member leaving (LeaveGroup v3+ batches them; v0–2 is one member id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavingMember {
    /// May be empty for a static member identified by `group_instance_id` (v3+).
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: Option<String>,
}

/// LeaveGroup (key 13): the group-level result, and one result per member in request
/// order.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<(LeavingMember, Result<(), GroupError>)>, GroupError>")]
pub struct LeaveGroup {
    pub group_id: String,
    pub members: Vec<LeavingMember>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// OffsetCommit (key 8). `generation_id` -1 with an empty member id is a commit outside
/// group management (a consumer using `assign()`); it is refused only while the group has
/// members (Kafka: accepted for an Empty or unknown group). The handler has already
/// answered UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist and sends only the
/// others. Answered once the append to `__consumer_offsets` is acknowledged (acks=all) or
/// fails; per partition, in request order.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<(CommitOffset, Result<(), GroupError>)>, GroupError>")]
pub struct OffsetCommit {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// v2–4 `retention_time_ms`; -1: the broker's `offsets.retention.minutes`.
    pub retention_time_ms: i64,
    pub offsets: Vec<CommitOffset>,
    pub now_ms: i64,
}

/// One committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when nothing is committed for the partition.
    pub offset: i64,
    pub leader_epoch: i32,
    /// Empty string when nothing is committed (Kafka answers "").
    pub metadata: Option<String>,
}

/// OffsetFetch (key 9) for one group. `partitions: None` asks for every partition the group
/// has committed (v2+); otherwise each asked-for partition is answered, with offset -1
/// when nothing is committed. An unknown group answers its partitions with -1 (no error).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<FetchedOffset>, GroupError>")]
pub struct OffsetFetch {
    pub group_id: String,
    pub partitions: Option<Vec<(String, i32)>>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    /// Kafka's state names: `Empty`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Stable`, `Dead`.
    pub state: String,
}

/// ListGroups (key 16) on this coordinator: its groups (not Dead), filtered by state when
/// `states` is not empty (v4+, case-insensitive).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<ListedGroup>, GroupError>")]
pub struct ListGroups {
    pub states: Vec<String>,
}

/// One member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the group's protocol.
    pub metadata: Vec<u8>,
    /// Empty unless the group is Stable.
    pub assignment: Vec<u8>,
}

/// DescribeGroups' answer for one group. An unknown group is described as `Dead` with no
/// members, as Kafka does (v0–5); the handler turns it into GROUP_ID_NOT_FOUND for v6+.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    /// The chosen protocol, only when Stable (Kafka: empty otherwise).
    pub protocol_data: String,
    pub members: Vec<DescribedMember>,
}

/// DescribeGroups (key 15) for one group.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<DescribedGroup, GroupError>")]
pub struct DescribeGroup {
    pub group_id: String,
}

/// DeleteGroups (key 42) for one group: only an Empty group (NON_EMPTY_GROUP otherwise);
/// its offsets and metadata get tombstones in `__consumer_offsets`; unknown →
/// GROUP_ID_NOT_FOUND.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), GroupError>")]
pub struct DeleteGroup {
    pub group_id: String,
}

/// OffsetDelete (key 47): removes committed offsets of a group that does not consume the
/// topic (GROUP_SUBSCRIBED_TO_TOPIC per partition otherwise). Per partition, in request
/// order; an unknown group → GROUP_ID_NOT_FOUND as a whole.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<((String, i32), Result<(), GroupError>)>, GroupError>")]
pub struct OffsetDelete {
    pub group_id: String,
    pub partitions: Vec<(String, i32)>,
}
