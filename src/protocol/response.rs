//! Response encoding: a [`Response`] and the request's version and correlation id in, one
//! size-prefixed frame out.
//!
//! The response header version follows `ApiKey::response_header_version`, except for
//! ApiVersions, whose response header is v0 (no tagged fields) in every version, so that a
//! client that does not yet know which versions the broker speaks can always parse it (trap 1
//! of the compatibility notes; kafka-protocol agrees, and [`response_header_version`] does not
//! rely on it).
//!
//! Encoding fails, rather than panics, when a handler set a field the version does not have
//! (kafka-protocol: "A field is set that is not available on the selected protocol version",
//! trap 4): that is a bug in the handler, reported as [`EncodeError::Body`].

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use super::error::EncodeError;
use super::frame::encode_frame;
use super::versions::{api_versions_response, api_versions_response_version, is_supported};

macro_rules! define_response {
    ($($api:ident($request:ident, $response:ident)),* $(,)?) => {
        /// A response body, one variant per API of the codec, wrapping kafka-protocol's
        /// response struct.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Response {
            $(
                #[doc = concat!("A ", stringify!($response), ".")]
                $api(kafka_protocol::messages::$response),
            )*
        }

        impl Response {
            /// The API this response belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(Response::$api(_) => ApiKey::$api,)*
                }
            }

            /// Encodes the response to a request of `api_version` carrying `correlation_id`:
            /// size prefix, header, body.
            pub fn encode(
                &self,
                api_version: i16,
                correlation_id: i32,
            ) -> Result<Bytes, EncodeError> {
                match self {
                    $(Response::$api(body) => {
                        encode_response(ApiKey::$api, api_version, correlation_id, body)
                    })*
                }
            }

            /// Decodes a response body (the client side of the codec), for tests. Not bounded
            /// like request decoding: do not use it on untrusted bytes.
            #[cfg(test)]
            pub(crate) fn decode_body(
                api_key: ApiKey,
                buf: &mut Bytes,
                version: i16,
            ) -> Result<Response, String> {
                use kafka_protocol::protocol::Decodable;
                match api_key {
                    $(ApiKey::$api => kafka_protocol::messages::$response::decode(buf, version)
                        .map(Response::$api)
                        .map_err(|e| format!("{e:#}")),)*
                    other => Err(format!("{other:?} is not an API of the codec")),
                }
            }
        }

        $(
            impl From<kafka_protocol::messages::$response> for Response {
                fn from(body: kafka_protocol::messages::$response) -> Self {
                    Response::$api(body)
                }
            }
        )*
    };
}
super::for_each_api!(define_response);

/// The response header version for `api_key` at `api_version`: always 0 for ApiVersions.
pub fn response_header_version(api_key: ApiKey, api_version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(api_version)
    }
}

/// Encodes one response frame: size prefix, response header, `body` at `api_version`.
/// `body` must be `api_key`'s response type; [`Response::encode`] guarantees that.
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, EncodeError> {
    if !is_supported(api_key, api_version) {
        return Err(EncodeError::UnsupportedVersion {
            api_key,
            version: api_version,
        });
    }
    let encode_error = |part: &str, e: &dyn std::fmt::Display| EncodeError::Body {
        api_key,
        version: api_version,
        reason: format!("{part}{e:#}"),
    };
    // compute_size fails on the same fields encode would; fail early, before allocating.
    let body_size = body
        .compute_size(api_version)
        .map_err(|e| encode_error("", &e))?;
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = response_header_version(api_key, api_version);
    encode_frame(body_size.saturating_add(8), |buf: &mut BytesMut| {
        header
            .encode(buf, header_version)
            .map_err(|e| encode_error("response header: ", &e))?;
        body.encode(buf, api_version)
            .map_err(|e| encode_error("", &e))
    })
}

/// Encodes the ApiVersions answer to a request of `request_version`, listing the APIs in
/// `implemented` (see [`super::versions::api_versions_response`]). A request version this
/// codec does not support — including one [`super::request::decode_request`] reported as
/// [`super::RequestOutcome::UnsupportedVersion`] — is answered with error UNSUPPORTED_VERSION
/// in the v0 format.
pub fn encode_api_versions_response(
    correlation_id: i32,
    request_version: i16,
    implemented: &[ApiKey],
) -> Result<Bytes, EncodeError> {
    let body = api_versions_response(implemented, request_version);
    let version = api_versions_response_version(request_version);
    encode_response(ApiKey::ApiVersions, version, correlation_id, &body)
}

#[cfg(test)]
mod tests {
    use bytes::Buf;
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::{
        ApiVersionsResponse, FindCoordinatorResponse, ListOffsetsResponse, MetadataResponse,
    };
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;
    use crate::protocol::versions::{advertised_versions, CODEC_APIS};

    /// Splits a response frame: checks the size prefix, returns (correlation id, rest after
    /// the header of `header_version`).
    fn split(frame: &Bytes, header_version: i16) -> (i32, Bytes) {
        let mut buf = frame.clone();
        assert_eq!(buf.get_i32() as usize, frame.len() - 4);
        let header = ResponseHeader::decode(&mut buf, header_version).unwrap();
        (header.correlation_id, buf)
    }

    #[test]
    fn api_versions_v0_to_v4_use_header_v0() {
        for version in 0..=4 {
            let frame = encode_api_versions_response(77, version, CODEC_APIS).unwrap();
            // Header v0: the correlation id and nothing else, even for flexible v3 and v4.
            let (correlation_id, mut body) = split(&frame, 0);
            assert_eq!(correlation_id, 77);
            let response = ApiVersionsResponse::decode(&mut body, version).unwrap();
            assert!(body.is_empty());
            assert_eq!(response.error_code, 0);
            assert_eq!(response.api_keys, advertised_versions(CODEC_APIS));
        }
    }

    /// Trap 1: an ApiVersions version we do not know is answered with error 35 in the v0
    /// format, listing the ranges, so that the client can retry with one it finds there.
    #[test]
    fn unsupported_api_versions_answer_is_v0_with_error_35() {
        let implemented = [ApiKey::ApiVersions, ApiKey::Metadata, ApiKey::Produce];
        for request_version in [5, 9, i16::MAX] {
            let frame = encode_api_versions_response(3, request_version, &implemented).unwrap();
            let (correlation_id, mut body) = split(&frame, 0);
            assert_eq!(correlation_id, 3);
            // v0 body: error_code, then an int32-counted array of (key, min, max).
            assert_eq!(&body[..2], &[0, 35]);
            assert_eq!(&body[2..6], &[0, 0, 0, 3]);
            let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
            assert!(body.is_empty());
            assert_eq!(response.error_code, 35);
            let api_versions = response
                .api_keys
                .iter()
                .find(|a| a.api_key == ApiKey::ApiVersions as i16)
                .unwrap();
            assert_eq!((api_versions.min_version, api_versions.max_version), (0, 4));
        }
    }

    #[test]
    fn header_version_follows_the_api_except_api_versions() {
        // Metadata v9+ is flexible: response header v1 (an empty tag section after the id).
        let response = Response::from(MetadataResponse::default());
        let v8 = response.encode(8, 1).unwrap();
        let v9 = response.encode(9, 1).unwrap();
        let (_, mut body8) = split(&v8, 0);
        let (_, mut body9) = split(&v9, 1);
        MetadataResponse::decode(&mut body8, 8).unwrap();
        MetadataResponse::decode(&mut body9, 9).unwrap();
        assert!(body8.is_empty() && body9.is_empty());
        assert_eq!(response_header_version(ApiKey::Metadata, 9), 1);
        assert_eq!(response_header_version(ApiKey::ApiVersions, 3), 0);
        assert_eq!(response_header_version(ApiKey::Fetch, 11), 0);
        assert_eq!(response_header_version(ApiKey::Fetch, 12), 1);
    }

    /// Every API and version of the table encodes its default response, and the crate reads
    /// it back from the frame.
    #[test]
    fn every_api_and_version_encodes() {
        for &api_key in CODEC_APIS {
            let range = crate::protocol::versions::supported_versions(api_key).unwrap();
            for version in range.min..=range.max {
                let response = default_response(api_key);
                let frame = response.encode(version, 5).unwrap();
                let (correlation_id, mut body) =
                    split(&frame, response_header_version(api_key, version));
                assert_eq!(correlation_id, 5);
                let decoded = Response::decode_body(api_key, &mut body, version).unwrap();
                assert!(body.is_empty(), "{api_key:?} v{version}");
                assert_eq!(decoded, response, "{api_key:?} v{version}");
            }
        }
    }

    fn default_response(api_key: ApiKey) -> Response {
        use kafka_protocol::messages::*;
        match api_key {
            ApiKey::Produce => ProduceResponse::default().into(),
            ApiKey::Fetch => FetchResponse::default().into(),
            ApiKey::ListOffsets => ListOffsetsResponse::default().into(),
            ApiKey::Metadata => MetadataResponse::default().into(),
            ApiKey::OffsetCommit => OffsetCommitResponse::default().into(),
            ApiKey::OffsetFetch => OffsetFetchResponse::default().into(),
            ApiKey::FindCoordinator => FindCoordinatorResponse::default().into(),
            ApiKey::JoinGroup => JoinGroupResponse::default().into(),
            ApiKey::Heartbeat => HeartbeatResponse::default().into(),
            ApiKey::LeaveGroup => LeaveGroupResponse::default().into(),
            ApiKey::SyncGroup => SyncGroupResponse::default().into(),
            ApiKey::DescribeGroups => DescribeGroupsResponse::default().into(),
            ApiKey::ListGroups => ListGroupsResponse::default().into(),
            ApiKey::ApiVersions => ApiVersionsResponse::default().into(),
            ApiKey::CreateTopics => CreateTopicsResponse::default().into(),
            ApiKey::DeleteTopics => DeleteTopicsResponse::default().into(),
            ApiKey::DeleteRecords => DeleteRecordsResponse::default().into(),
            ApiKey::InitProducerId => InitProducerIdResponse::default().into(),
            ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochResponse::default().into(),
            ApiKey::DescribeConfigs => DescribeConfigsResponse::default().into(),
            ApiKey::AlterConfigs => AlterConfigsResponse::default().into(),
            ApiKey::CreatePartitions => CreatePartitionsResponse::default().into(),
            ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsResponse::default().into(),
            ApiKey::DescribeCluster => DescribeClusterResponse::default().into(),
            ApiKey::DeleteGroups => DeleteGroupsResponse::default().into(),
            ApiKey::OffsetDelete => OffsetDeleteResponse::default().into(),
            other => panic!("{other:?}"),
        }
    }

    /// Trap 4: a field the version lacks is an error, not a panic and not silently dropped.
    #[test]
    fn fields_absent_from_the_version_are_errors() {
        // FindCoordinator: top-level fields up to v3, the coordinators array from v4.
        let v4_style =
            FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
                .with_key(StrBytes::from_static_str("group"))
                .with_node_id(1.into())
                .with_host(StrBytes::from_static_str("localhost"))
                .with_port(9092)]);
        for version in 0..=3 {
            let err = Response::from(v4_style.clone())
                .encode(version, 1)
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    EncodeError::Body {
                        api_key: ApiKey::FindCoordinator,
                        ..
                    }
                ),
                "{err}"
            );
        }
        for version in 4..=6 {
            Response::from(v4_style.clone()).encode(version, 1).unwrap();
        }
        let v3_style = FindCoordinatorResponse::default()
            .with_node_id(1.into())
            .with_host(StrBytes::from_static_str("localhost"))
            .with_port(9092);
        assert!(Response::from(v3_style).encode(4, 1).is_err());

        // ListOffsets leader_epoch exists from v4.
        let with_epoch =
            ListOffsetsResponse::default()
                .with_topics(vec![ListOffsetsTopicResponse::default().with_partitions(
                    vec![ListOffsetsPartitionResponse::default().with_leader_epoch(3)],
                )]);
        assert!(Response::from(with_epoch.clone()).encode(3, 1).is_err());
        Response::from(with_epoch).encode(4, 1).unwrap();
    }

    #[test]
    fn versions_outside_the_table_are_refused() {
        let err = Response::from(MetadataResponse::default())
            .encode(14, 1)
            .unwrap_err();
        assert_eq!(
            err,
            EncodeError::UnsupportedVersion {
                api_key: ApiKey::Metadata,
                version: 14
            }
        );
        // InitProducerId v6 exists in the crate's response type but is not advertised.
        assert!(encode_response(
            ApiKey::InitProducerId,
            6,
            1,
            &kafka_protocol::messages::InitProducerIdResponse::default()
        )
        .is_err());
    }
}
