//! Request decoding: a frame (size prefix removed) in, a [`RequestOutcome`] out.
//!
//! The header's fixed part — api key (i16), api version (i16), correlation id (i32) — sits at
//! the same offsets in every header version, so it is read by hand first: that is enough to
//! answer an unsupported version, and it avoids kafka-protocol's
//! `decode_request_header_from_buffer`, which panics on frames shorter than 4 bytes (it slices
//! `peek_bytes(0..2)` unchecked). The rest of the header (client id, tagged fields, per
//! `ApiKey::request_header_version`) and the body are decoded by kafka-protocol after the
//! [`super::prevalidate`] walk has checked the frame.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::error::{DecodeError, EncodeError};
use super::frame::encode_frame;
use super::prevalidate::check_request;
use super::versions::{is_supported, supported_versions};

macro_rules! define_request {
    ($($api:ident($request:ident, $response:ident)),* $(,)?) => {
        /// A decoded request body, one variant per API of the codec, wrapping kafka-protocol's
        /// request struct.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Request {
            $(
                #[doc = concat!("A ", stringify!($request), ".")]
                $api(kafka_protocol::messages::$request),
            )*
        }

        impl Request {
            /// The API this request belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(Request::$api(_) => ApiKey::$api,)*
                }
            }

            /// Decodes a body with kafka-protocol. Only for frames that passed the
            /// pre-decode walk: the crate pre-sizes vectors from the counts it reads.
            pub(crate) fn decode_body(
                api_key: ApiKey,
                buf: &mut Bytes,
                version: i16,
            ) -> Result<Request, DecodeError> {
                let body_error = |e: &dyn std::fmt::Display| DecodeError::Body {
                    api_key,
                    version,
                    reason: format!("{e:#}"),
                };
                match api_key {
                    $(ApiKey::$api => kafka_protocol::messages::$request::decode(buf, version)
                        .map(Request::$api)
                        .map_err(|e| body_error(&e)),)*
                    _ => Err(body_error(&"not an API of the codec")),
                }
            }

            /// Appends the body encoded at `version` (the client side of the codec).
            pub(crate) fn encode_body(
                &self,
                buf: &mut BytesMut,
                version: i16,
            ) -> Result<(), EncodeError> {
                let result = match self {
                    $(Request::$api(body) => body.encode(buf, version),)*
                };
                result.map_err(|e| EncodeError::Body {
                    api_key: self.api_key(),
                    version,
                    reason: format!("{e:#}"),
                })
            }

            /// kafka-protocol's `compute_size` for the body, if it can tell.
            fn body_size(&self, version: i16) -> Option<usize> {
                match self {
                    $(Request::$api(body) => body.compute_size(version).ok(),)*
                }
            }

            /// The default request of `api_key` (every field at its default), for tests and
            /// the fuzz harness's seeds.
            pub fn default_for(api_key: ApiKey) -> Option<Request> {
                match api_key {
                    $(ApiKey::$api => Some(Request::$api(Default::default())),)*
                    _ => None,
                }
            }
        }

        $(
            impl From<kafka_protocol::messages::$request> for Request {
                fn from(body: kafka_protocol::messages::$request) -> Self {
                    Request::$api(body)
                }
            }
        )*
    };
}
super::for_each_api!(define_request);

/// The fixed part of a request header: enough to answer the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestKey {
    /// The request's API.
    pub api_key: ApiKey,
    /// The request's version.
    pub api_version: i16,
    /// Echoed in the response header.
    pub correlation_id: i32,
}

/// A request ready for its handler.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    /// The whole header, client id included.
    pub header: RequestHeader,
    /// The body; its variant matches `header.request_api_key`.
    pub body: Request,
}

impl DecodedRequest {
    /// The request's API, version and correlation id.
    pub fn key(&self) -> RequestKey {
        RequestKey {
            api_key: self.body.api_key(),
            api_version: self.header.request_api_version,
            correlation_id: self.header.correlation_id,
        }
    }
}

/// What became of one request frame.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestOutcome {
    /// Decoded; hand it to its handler.
    Request(Box<DecodedRequest>),
    /// An API key Kafka does not define, or one this codec does not handle (Kafka: "Received
    /// request for api key X which is not enabled"). Nothing can be answered: close the
    /// connection.
    UnknownApiKey {
        /// The key as sent.
        api_key: i16,
        /// The version as sent.
        api_version: i16,
        /// The correlation id, if the frame was long enough to hold one.
        correlation_id: Option<i32>,
    },
    /// A known API at a version outside [`super::versions::supported_versions`]. For
    /// ApiVersions, answer with [`super::response::encode_api_versions_response`] (error 35 in
    /// the v0 format); for any other API, Kafka closes the connection.
    UnsupportedVersion(RequestKey),
    /// A frame that cannot be decoded; close the connection. `key` is set when the header's
    /// fixed part was readable and its API and version supported, for logging.
    Malformed {
        /// The request, as far as it could be read.
        key: Option<RequestKey>,
        /// What is wrong with the frame.
        error: DecodeError,
    },
}

/// Decodes one request frame, as returned by [`super::frame::parse_frame`]. Never panics and
/// never allocates more than the pre-decode walk's budget, whatever the bytes.
pub fn decode_request(frame: Bytes) -> RequestOutcome {
    let malformed = |key, error| RequestOutcome::Malformed { key, error };
    let (Some(key_bytes), Some(version_bytes)) = (frame.get(0..2), frame.get(2..4)) else {
        return malformed(None, DecodeError::TruncatedHeader { len: frame.len() });
    };
    let raw_key = i16::from_be_bytes([key_bytes[0], key_bytes[1]]);
    let api_version = i16::from_be_bytes([version_bytes[0], version_bytes[1]]);
    let correlation_id = frame
        .get(4..8)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));

    let api_key = match ApiKey::try_from(raw_key) {
        Ok(key) if supported_versions(key).is_some() => key,
        _ => {
            return RequestOutcome::UnknownApiKey {
                api_key: raw_key,
                api_version,
                correlation_id,
            }
        }
    };
    let Some(correlation_id) = correlation_id else {
        return malformed(None, DecodeError::TruncatedHeader { len: frame.len() });
    };
    let key = RequestKey {
        api_key,
        api_version,
        correlation_id,
    };
    if !is_supported(api_key, api_version) {
        return RequestOutcome::UnsupportedVersion(key);
    }

    let header_version = api_key.request_header_version(api_version);
    if let Err(error) = check_request(&frame, header_version, api_key, api_version) {
        return malformed(Some(key), error);
    }
    let mut buf = frame;
    let header = match RequestHeader::decode(&mut buf, header_version) {
        Ok(header) => header,
        Err(e) => {
            let error = DecodeError::Body {
                api_key,
                version: api_version,
                reason: format!("request header: {e:#}"),
            };
            return malformed(Some(key), error);
        }
    };
    let body = match Request::decode_body(api_key, &mut buf, api_version) {
        Ok(body) => body,
        Err(error) => return malformed(Some(key), error),
    };
    if buf.has_remaining() {
        // Kafka reads the fields it knows and ignores what follows the body; librdkafka 2.16
        // sends Metadata v13 with three bytes after it. The pre-decode walk has already
        // bounded everything the body sized.
        tracing::debug!(
            ?key,
            trailing = buf.remaining(),
            "ignoring bytes after the request body"
        );
    }
    RequestOutcome::Request(Box::new(DecodedRequest { header, body }))
}

/// Encodes a request frame (size prefix, header, body) as a client sends it: for Sluice's own
/// client, its replica fetchers, and tests.
pub fn encode_request(
    body: &Request,
    api_version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> Result<Bytes, EncodeError> {
    let api_key = body.api_key();
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(api_version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|id| StrBytes::from_string(id.to_owned())));
    let header_version = api_key.request_header_version(api_version);
    let capacity = body.body_size(api_version).unwrap_or(0) + 64;
    encode_frame(capacity, |buf| {
        header
            .encode(buf, header_version)
            .map_err(|e| EncodeError::Body {
                api_key,
                version: api_version,
                reason: format!("request header: {e:#}"),
            })?;
        body.encode_body(buf, api_version)
    })
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;
    use kafka_protocol::messages::{ApiVersionsRequest, FetchRequest, ProduceRequest, TopicName};

    use super::*;
    use crate::protocol::prevalidate::tests::{random_body, Rng};
    use crate::protocol::versions::CODEC_APIS;

    /// A frame without its size prefix: header (crate-encoded) + body.
    fn frame(api_key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        buf.put_slice(body);
        buf.freeze()
    }

    fn decoded(outcome: RequestOutcome) -> DecodedRequest {
        match outcome {
            RequestOutcome::Request(request) => *request,
            other => panic!("{other:?}"),
        }
    }

    /// Every API and version of the table, with random content in every field the version
    /// has: the frame decodes, and encoding the decoded request gives the same bytes back.
    #[test]
    fn round_trip_every_api_and_version() {
        let mut rng = Rng(0xfeed_0000_0000_0042);
        for &api_key in CODEC_APIS {
            let range = supported_versions(api_key).unwrap();
            for version in range.min..=range.max {
                for i in 0..5 {
                    let body = random_body(&mut rng, api_key, version);
                    let frame = frame(api_key, version, i, &body);
                    let request = decoded(decode_request(frame.clone()));
                    assert_eq!(
                        request.key(),
                        RequestKey {
                            api_key,
                            api_version: version,
                            correlation_id: i
                        }
                    );
                    assert_eq!(request.header.client_id.as_deref(), Some("sluice-test"));
                    let again =
                        encode_request(&request.body, version, i, Some("sluice-test")).unwrap();
                    assert_eq!(&again[4..], &frame[..], "{api_key:?} v{version}");
                    assert_eq!(
                        again.len() - 4,
                        u32::from_be_bytes(again[..4].try_into().unwrap()) as usize
                    );
                }
            }
        }
    }

    #[test]
    fn api_versions_v0_to_v4() {
        for version in 0..=4 {
            let mut body = ApiVersionsRequest::default();
            if version >= 3 {
                body = body
                    .with_client_software_name(StrBytes::from_static_str("librdkafka"))
                    .with_client_software_version(StrBytes::from_static_str("2.16.0"));
            }
            let frame = encode_request(&body.clone().into(), version, 42, Some("rdkafka")).unwrap();
            let request = decoded(decode_request(frame.slice(4..)));
            assert_eq!(request.body, Request::ApiVersions(body));
            assert_eq!(request.key().correlation_id, 42);
            // v3+ uses request header v2 (tagged fields), v0-v2 header v1.
            let header_version = ApiKey::ApiVersions.request_header_version(version);
            assert_eq!(header_version, if version >= 3 { 2 } else { 1 });
        }
    }

    #[test]
    fn produce_records_are_shared_with_the_frame() {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        let records = Bytes::from_static(b"not parsed here: opaque record batches");
        let body = ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("orders")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(3)
                    .with_records(Some(records.clone()))])]);
        for version in [3, 7, 9, 10] {
            let frame = encode_request(&body.clone().into(), version, 1, None).unwrap();
            let request = decoded(decode_request(frame.slice(4..)));
            let Request::Produce(produce) = request.body else {
                panic!()
            };
            let got = produce.topic_data[0].partition_data[0]
                .records
                .clone()
                .unwrap();
            assert_eq!(got, records);
            assert!(request.header.client_id.is_none());
        }
    }

    #[test]
    fn fetch_v16_round_trip() {
        let body = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_isolation_level(1)
            .with_session_epoch(-1);
        let frame = encode_request(&body.clone().into(), 16, 9, Some("rdkafka")).unwrap();
        assert_eq!(
            decoded(decode_request(frame.slice(4..))).body,
            Request::Fetch(body)
        );
    }

    #[test]
    fn truncated_headers() {
        let full = frame(ApiKey::Metadata, 1, 5, &[0, 0, 0, 0]);
        for len in 0..8 {
            let outcome = decode_request(full.slice(..len));
            assert_eq!(
                outcome,
                RequestOutcome::Malformed {
                    key: None,
                    error: DecodeError::TruncatedHeader { len }
                }
            );
        }
        // Past the fixed part, a cut anywhere is malformed with the key known.
        for len in 8..full.len() {
            match decode_request(full.slice(..len)) {
                RequestOutcome::Malformed { key: Some(key), .. } => {
                    assert_eq!(key.correlation_id, 5)
                }
                other => panic!("{len}: {other:?}"),
            }
        }
    }

    #[test]
    fn every_truncation_of_every_api_is_malformed() {
        let mut rng = Rng(77);
        for &api_key in CODEC_APIS {
            let version = supported_versions(api_key).unwrap().max;
            let frame = frame(
                api_key,
                version,
                3,
                &random_body(&mut rng, api_key, version),
            );
            for len in 8..frame.len() {
                let outcome = decode_request(frame.slice(..len));
                assert!(
                    matches!(outcome, RequestOutcome::Malformed { key: Some(_), .. }),
                    "{api_key:?} cut at {len}: {outcome:?}"
                );
            }
        }
    }

    #[test]
    fn unknown_api_keys() {
        for raw in [
            999, -1, 17, /* SaslHandshake: Kafka's, not ours */
            69, 71,
        ] {
            let mut buf = BytesMut::new();
            buf.put_i16(raw);
            buf.put_i16(0);
            buf.put_i32(11);
            buf.put_i16(-1);
            assert_eq!(
                decode_request(buf.freeze()),
                RequestOutcome::UnknownApiKey {
                    api_key: raw,
                    api_version: 0,
                    correlation_id: Some(11)
                }
            );
        }
        assert_eq!(
            decode_request(Bytes::from_static(&[3, 231, 0, 0, 0])),
            RequestOutcome::UnknownApiKey {
                api_key: 999,
                api_version: 0,
                correlation_id: None
            }
        );
    }

    #[test]
    fn unsupported_versions_keep_the_correlation_id() {
        for (api_key, version) in [
            (ApiKey::Fetch, 3),
            (ApiKey::Fetch, 19),
            (ApiKey::Metadata, 14),
            (ApiKey::OffsetFetch, 10),
            (ApiKey::InitProducerId, 6),
            (ApiKey::ApiVersions, 5),
            (ApiKey::ApiVersions, -1),
        ] {
            // The body is never looked at: a future version may look like anything.
            let frame = frame(api_key, version, 1234, b"\xff\xff garbage");
            assert_eq!(
                decode_request(frame),
                RequestOutcome::UnsupportedVersion(RequestKey {
                    api_key,
                    api_version: version,
                    correlation_id: 1234
                })
            );
        }
    }

    #[test]
    fn trailing_bytes_are_ignored_as_kafka_does() {
        // Metadata v1 with an empty topic array, then one stray byte.
        let frame = frame(ApiKey::Metadata, 1, 5, &[0, 0, 0, 0, 9]);
        match decode_request(frame) {
            RequestOutcome::Request(request) => match request.body {
                Request::Metadata(m) => assert_eq!(m.topics.map(|t| t.len()), Some(0)),
                other => panic!("decoded as {other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_is_malformed_not_a_panic() {
        let frame = frame(ApiKey::Metadata, 1, 5, &[0, 0, 0, 1, 0, 2, 0xff, 0xfe]);
        assert!(matches!(
            decode_request(frame),
            RequestOutcome::Malformed {
                error: DecodeError::Body { .. },
                ..
            }
        ));
    }

    /// Garbage never panics: random frames, random bodies behind valid headers, and valid
    /// frames with random bytes overwritten (counts and lengths turned into anything).
    #[test]
    fn garbage_never_panics() {
        let mut rng = Rng(0x0bad_f00d_dead_beef);
        let mut outcomes = [0usize; 4];
        for i in 0..30_000u32 {
            let frame = match i % 3 {
                0 => {
                    let len = rng.below(48) as usize;
                    Bytes::from((0..len).map(|_| rng.next() as u8).collect::<Vec<u8>>())
                }
                1 => {
                    let api_key = CODEC_APIS[rng.below(CODEC_APIS.len() as u64) as usize];
                    let range = supported_versions(api_key).unwrap();
                    let version = range.min + rng.below((range.max - range.min + 1) as u64) as i16;
                    let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                    frame(api_key, version, 1, &junk)
                }
                _ => {
                    let api_key = CODEC_APIS[rng.below(CODEC_APIS.len() as u64) as usize];
                    let range = supported_versions(api_key).unwrap();
                    let version = range.min + rng.below((range.max - range.min + 1) as u64) as i16;
                    let body = random_body(&mut rng, api_key, version);
                    let mut bytes = BytesMut::from(&frame(api_key, version, 1, &body)[..]);
                    for _ in 0..1 + rng.below(4) {
                        let at = 8 + rng.below((bytes.len() - 8) as u64) as usize;
                        bytes[at] = match rng.below(4) {
                            0 => 0xff,
                            1 => 0x7f,
                            2 => 0x80,
                            _ => rng.next() as u8,
                        };
                    }
                    bytes.freeze()
                }
            };
            let slot = match decode_request(frame) {
                RequestOutcome::Request(_) => 0,
                RequestOutcome::UnknownApiKey { .. } => 1,
                RequestOutcome::UnsupportedVersion(_) => 2,
                RequestOutcome::Malformed { .. } => 3,
            };
            outcomes[slot] += 1;
        }
        assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    }
}
