//! The Kafka wire codec, sans I/O: bytes in, values out, and back. No sockets, no actors.
//!
//! A request's path through this module, as the connection drives it:
//!
//! 1. [`frame::parse_frame`] takes a size-prefixed frame off the read buffer (bounded by
//!    `socket.request.max.bytes`, allocating only as bytes arrive).
//! 2. [`request::decode_request`] reads the header, checks the API and version against
//!    [`versions`], walks the frame with [`prevalidate`] so that kafka-protocol's decoders
//!    cannot be made to over-allocate, then decodes it into a [`Request`]. The
//!    [`RequestOutcome`] tells decoded requests apart from unknown APIs, unsupported versions
//!    and malformed frames, with the correlation id whenever there is one to answer.
//! 3. A handler answers with a [`Response`]; [`Response::encode`] writes the response header
//!    (v0 for ApiVersions, always) and body, size-prefixed. Fetch answers that carry records
//!    from segment files go through [`fetch::encode_fetch_response`] instead, which leaves a
//!    placeholder for each partition's records so that the connection can `sendfile` them.
//!
//! What is advertised is decided by the handlers ("advertise only what you answer"): they pass
//! the API keys they implement to [`versions::api_versions_response`], which intersects them
//! with what this codec can decode and encode.
//!
//! Records inside Produce requests stay opaque `Bytes` here (sliced out of the frame without a
//! copy). Never hand client bytes to kafka-protocol's `RecordBatchDecoder`: it reserves
//! `record_count` records and `num_headers` headers from untrusted counts before reading
//! them. The log engine's own batch parser validates batches instead.

pub mod code;
mod error;
pub mod fetch;
pub mod frame;
pub mod prevalidate;
pub mod request;
pub mod response;
#[rustfmt::skip]
mod schema;
pub mod versions;

pub use error::{DecodeError, EncodeError, FrameError};
pub use fetch::{encode_fetch_response, FetchResponsePiece, PartitionRecords};
pub use frame::{parse_frame, DEFAULT_MAX_REQUEST_SIZE};
pub use prevalidate::{DECODE_BUDGET_FACTOR, DECODE_BUDGET_FLOOR};
pub use request::{
    decode_request, encode_request, DecodedRequest, Request, RequestKey, RequestOutcome,
};
pub use response::{encode_api_versions_response, Response};
pub use versions::{api_versions_response, is_supported, supported_versions};

/// The APIs this codec decodes and encodes, each with kafka-protocol's request and response
/// types. Expanded once each by `request.rs` (the [`Request`] enum), `response.rs` (the
/// [`Response`] enum) and `versions.rs` (the version table), so the three cannot drift apart.
/// Adding an API here also needs its request schema in `schema.rs` (regenerate it).
macro_rules! for_each_api {
    ($callback:ident) => {
        $callback! {
            Produce(ProduceRequest, ProduceResponse),
            Fetch(FetchRequest, FetchResponse),
            ListOffsets(ListOffsetsRequest, ListOffsetsResponse),
            Metadata(MetadataRequest, MetadataResponse),
            OffsetCommit(OffsetCommitRequest, OffsetCommitResponse),
            OffsetFetch(OffsetFetchRequest, OffsetFetchResponse),
            FindCoordinator(FindCoordinatorRequest, FindCoordinatorResponse),
            JoinGroup(JoinGroupRequest, JoinGroupResponse),
            Heartbeat(HeartbeatRequest, HeartbeatResponse),
            LeaveGroup(LeaveGroupRequest, LeaveGroupResponse),
            SyncGroup(SyncGroupRequest, SyncGroupResponse),
            DescribeGroups(DescribeGroupsRequest, DescribeGroupsResponse),
            ListGroups(ListGroupsRequest, ListGroupsResponse),
            ApiVersions(ApiVersionsRequest, ApiVersionsResponse),
            CreateTopics(CreateTopicsRequest, CreateTopicsResponse),
            DeleteTopics(DeleteTopicsRequest, DeleteTopicsResponse),
            DeleteRecords(DeleteRecordsRequest, DeleteRecordsResponse),
            InitProducerId(InitProducerIdRequest, InitProducerIdResponse),
            OffsetForLeaderEpoch(OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse),
            DescribeConfigs(DescribeConfigsRequest, DescribeConfigsResponse),
            AlterConfigs(AlterConfigsRequest, AlterConfigsResponse),
            CreatePartitions(CreatePartitionsRequest, CreatePartitionsResponse),
            IncrementalAlterConfigs(
                IncrementalAlterConfigsRequest,
                IncrementalAlterConfigsResponse
            ),
            DescribeCluster(DescribeClusterRequest, DescribeClusterResponse),
            DeleteGroups(DeleteGroupsRequest, DeleteGroupsResponse),
            OffsetDelete(OffsetDeleteRequest, OffsetDeleteResponse),
        }
    };
}
use for_each_api;
