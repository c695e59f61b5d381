//! Which API versions Sluice advertises, and the ApiVersions answer built from them.
//!
//! For every API of the codec the range is kafka-protocol's `Request::VERSIONS ∩
//! Response::VERSIONS`: both the request decoder and the response encoder accept every version
//! in it. `ApiKey::valid_versions()` is *not* used: it over-advertises OffsetFetch v10,
//! OffsetCommit v10 and InitProducerId v6, whose requests the crate cannot decode (its
//! decoders stop at v9, v9 and v5; the v10/v6 fields exist on the structs but are never read),
//! and franz-go breaks on exactly that. The test `advertised_table` pins the resulting table,
//! so a crate upgrade that moves a range fails loudly instead of silently advertising more.
//!
//! Only the APIs the handlers implement are listed ("advertise only what you answer"): a
//! client that sees an API calls it — librdkafka 2.16 calls GetTelemetrySubscriptions and
//! ConsumerGroupDescribe as soon as they are advertised.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Message, VersionRange};
use kafka_protocol::ResponseError;

macro_rules! define_version_table {
    ($($api:ident($request:ident, $response:ident)),* $(,)?) => {
        /// Every API this codec decodes and encodes, in the order of the list in `mod.rs`.
        pub const CODEC_APIS: &[ApiKey] = &[$(ApiKey::$api),*];

        /// The versions of `api_key` this codec decodes (requests) and encodes (responses);
        /// `None` for an API it does not handle.
        pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
            use kafka_protocol::messages::*;
            match api_key {
                $(ApiKey::$api => Some(
                    <$request as Message>::VERSIONS.intersect(&<$response as Message>::VERSIONS),
                ),)*
                _ => None,
            }
        }
    };
}
super::for_each_api!(define_version_table);

/// Whether this codec decodes `api_key` requests and encodes its responses at `version`.
pub fn is_supported(api_key: ApiKey, version: i16) -> bool {
    supported_versions(api_key).is_some_and(|r| r.min <= version && version <= r.max)
}

/// The ranges to advertise: those of [`supported_versions`] for each API in `implemented`,
/// sorted by API key, without duplicates. API keys this codec does not handle are left out:
/// their requests could not be decoded.
pub fn advertised_versions(implemented: &[ApiKey]) -> Vec<ApiVersion> {
    let mut apis: Vec<ApiVersion> = implemented
        .iter()
        .filter_map(|&key| {
            let range = supported_versions(key)?;
            Some(
                ApiVersion::default()
                    .with_api_key(key as i16)
                    .with_min_version(range.min)
                    .with_max_version(range.max),
            )
        })
        .collect();
    apis.sort_by_key(|a| a.api_key);
    apis.dedup_by_key(|a| a.api_key);
    apis
}

/// The ApiVersions answer to a request of `request_version`, listing `implemented`.
///
/// For a version this codec does not support (a client newer than the crate) the answer is
/// error UNSUPPORTED_VERSION (35) with the same list, and must be encoded in the v0 format
/// (see [`api_versions_response_version`]): the client reads the ApiVersions range from it and
/// retries with a version it finds there (trap 1 of the compatibility notes). Kafka lists only
/// the ApiVersions range in that answer; listing all costs nothing and serves clients that
/// read the whole list.
///
/// Every field is valid in every version: throttle time 0, no features, no tagged fields.
pub fn api_versions_response(implemented: &[ApiKey], request_version: i16) -> ApiVersionsResponse {
    let error_code = if is_supported(ApiKey::ApiVersions, request_version) {
        0
    } else {
        ResponseError::UnsupportedVersion.code()
    };
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(advertised_versions(implemented))
}

/// The version to encode the ApiVersions response in: the request's own, or 0 when this codec
/// does not support the request's version.
pub fn api_versions_response_version(request_version: i16) -> i16 {
    if is_supported(ApiKey::ApiVersions, request_version) {
        request_version
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;

    /// The table Sluice advertises when every codec API is implemented. Changing it is a
    /// decision: check the compatibility notes, then update this list.
    #[test]
    fn advertised_table() {
        let table: Vec<(i16, i16, i16)> = advertised_versions(CODEC_APIS)
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect();
        assert_eq!(
            table,
            [
                (0, 3, 13), // Produce
                (1, 4, 18), // Fetch
                (2, 1, 10), // ListOffsets
                (3, 0, 13), // Metadata
                (8, 2, 9),  // OffsetCommit (valid_versions() says 10)
                (9, 1, 9),  // OffsetFetch (valid_versions() says 10)
                (10, 0, 6), // FindCoordinator
                (11, 0, 9), // JoinGroup
                (12, 0, 4), // Heartbeat
                (13, 0, 5), // LeaveGroup
                (14, 0, 5), // SyncGroup
                (15, 0, 6), // DescribeGroups
                (16, 0, 5), // ListGroups
                (18, 0, 4), // ApiVersions
                (19, 2, 7), // CreateTopics
                (20, 1, 6), // DeleteTopics
                (21, 0, 2), // DeleteRecords
                (22, 0, 5), // InitProducerId (valid_versions() says 6)
                (23, 2, 4), // OffsetForLeaderEpoch
                (32, 1, 4), // DescribeConfigs
                (33, 0, 2), // AlterConfigs
                (37, 0, 3), // CreatePartitions
                (42, 0, 2), // DeleteGroups
                (44, 0, 1), // IncrementalAlterConfigs
                (47, 0, 0), // OffsetDelete
                (60, 0, 2), // DescribeCluster
            ]
        );
    }

    #[test]
    fn valid_versions_over_advertises_exactly_the_known_three() {
        let over: Vec<(ApiKey, i16, i16)> = CODEC_APIS
            .iter()
            .filter_map(|&key| {
                let ours = supported_versions(key)?;
                let crate_says = key.valid_versions();
                (ours != crate_says).then_some((key, ours.max, crate_says.max))
            })
            .collect();
        assert_eq!(
            over,
            [
                (ApiKey::OffsetCommit, 9, 10),
                (ApiKey::OffsetFetch, 9, 10),
                (ApiKey::InitProducerId, 5, 6),
            ]
        );
    }

    /// Every advertised version really decodes: a default request encoded by the crate's
    /// client side comes back through its broker side; one version above does not encode.
    #[test]
    fn every_advertised_version_decodes() {
        for &key in CODEC_APIS {
            let range = supported_versions(key).unwrap();
            let request = Request::default_for(key).unwrap();
            for version in range.min..=range.max {
                let mut buf = bytes::BytesMut::new();
                request.encode_body(&mut buf, version).unwrap();
                let decoded = Request::decode_body(key, &mut buf.freeze(), version);
                assert_eq!(decoded.as_ref(), Ok(&request), "{key:?} v{version}");
            }
            let mut buf = bytes::BytesMut::new();
            assert!(
                request.encode_body(&mut buf, range.max + 1).is_err(),
                "{key:?}"
            );
        }
    }

    #[test]
    fn only_implemented_apis_are_listed() {
        let response = api_versions_response(
            &[
                ApiKey::Metadata,
                ApiKey::ApiVersions,
                ApiKey::Metadata,
                ApiKey::SaslHandshake,
            ],
            3,
        );
        assert_eq!(response.error_code, 0);
        let keys: Vec<i16> = response.api_keys.iter().map(|a| a.api_key).collect();
        assert_eq!(keys, [3, 18]);
    }

    #[test]
    fn unsupported_api_versions_version_gets_error_35_in_v0() {
        for version in [5, 127, i16::MAX, -1] {
            let response = api_versions_response(&[ApiKey::ApiVersions, ApiKey::Fetch], version);
            assert_eq!(response.error_code, 35);
            assert_eq!(response.api_keys.len(), 2);
            assert_eq!(api_versions_response_version(version), 0);
        }
        for version in 0..=4 {
            assert_eq!(api_versions_response_version(version), version);
        }
    }

    #[test]
    fn support_check() {
        assert!(is_supported(ApiKey::Fetch, 4));
        assert!(is_supported(ApiKey::Fetch, 18));
        assert!(!is_supported(ApiKey::Fetch, 3));
        assert!(!is_supported(ApiKey::Fetch, 19));
        assert!(!is_supported(ApiKey::OffsetFetch, 10));
        assert!(!is_supported(ApiKey::SaslHandshake, 1));
    }
}
