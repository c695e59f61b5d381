//! ApiVersions (key 18): the APIs and versions this broker answers.
//!
//! A version this broker does not know is answered too, with UNSUPPORTED_VERSION in the v0
//! format (trap 1): the connection routes [`crate::protocol::RequestOutcome::UnsupportedVersion`]
//! for ApiVersions here as well.

use crate::protocol::{encode_api_versions_response, RequestKey};

use super::{Reply, IMPLEMENTED};

/// Answers ApiVersions at any version, supported or not.
pub fn handle(key: RequestKey) -> Reply {
    match encode_api_versions_response(key.correlation_id, key.api_version, IMPLEMENTED) {
        Ok(frame) => Reply::Frame(frame),
        Err(e) => Reply::Close(format!("cannot encode ApiVersions response: {e}")),
    }
}
