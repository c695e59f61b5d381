//! Errors of the wire codec, one enum per stage: framing, request decoding, response encoding.
//!
//! None of them is a Kafka error code. The connection maps them at its boundary: a
//! [`FrameError`] closes the connection (Kafka's `InvalidReceiveException`), a [`DecodeError`]
//! closes it too (Kafka answers nothing to a request it cannot parse), an [`EncodeError`] is a
//! bug on our side — logged, and the connection closed rather than a corrupt answer written.
//! kafka-protocol reports its own failures as `anyhow` errors; they are kept here as text
//! (`{:#}`, the whole chain) so that this crate does not depend on `anyhow`.

use kafka_protocol::messages::ApiKey;

/// A size prefix that no request may have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The 4-byte size prefix is negative.
    #[error("invalid frame size {0}: negative")]
    NegativeSize(i32),
    /// The frame is larger than `socket.request.max.bytes` (or, for a response, than the
    /// largest size the 4-byte prefix can carry).
    #[error("frame size {size} is larger than the maximum of {max} bytes")]
    TooLarge {
        /// The declared (request) or computed (response) size, prefix excluded.
        size: usize,
        /// The limit it broke.
        max: usize,
    },
}

/// Why a request frame could not be turned into a [`super::Request`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed part of a request header (api key, version, correlation id).
    #[error("frame of {len} bytes is too short for a request header")]
    TruncatedHeader {
        /// Length of the frame, size prefix excluded.
        len: usize,
    },
    /// A length or count in the frame claims more than the bytes left after it. Checked before
    /// kafka-protocol's decoder runs, because that decoder sizes vectors from these counts.
    #[error(
        "{schema}.{field}: length {len} is larger than the {remaining} bytes left in the frame"
    )]
    LengthExceedsFrame {
        /// The message or struct being read.
        schema: &'static str,
        /// Its field holding the length.
        field: &'static str,
        /// The declared length (elements for arrays, bytes for strings and bytes).
        len: u64,
        /// Bytes left in the frame after the length itself.
        remaining: usize,
    },
    /// Decoding would allocate more than the frame's decode budget (see
    /// [`super::prevalidate`]): many tiny elements, each decoded into a much larger struct.
    #[error(
        "decoding would allocate about {estimate} bytes, over the {limit} allowed \
         for a {frame_len}-byte frame"
    )]
    DecodeBudgetExceeded {
        /// Estimated bytes of vectors and maps the decoder would allocate.
        estimate: usize,
        /// The budget for this frame.
        limit: usize,
        /// Length of the frame.
        frame_len: usize,
    },
    /// Any other structural fault found by the pre-decode walk: a truncated field, a negative
    /// length, an over-long varint, a tagged field whose size disagrees with its content.
    #[error("{schema}.{field}: {reason}")]
    Invalid {
        /// The message or struct being read.
        schema: &'static str,
        /// The field being read.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// kafka-protocol's decoder rejected the header or body (for instance invalid UTF-8 in a
    /// string, or null where the schema forbids it).
    #[error("{api_key:?} v{version}: {reason}")]
    Body {
        /// The request's API.
        api_key: ApiKey,
        /// The request's version.
        version: i16,
        /// The decoder's error chain.
        reason: String,
    },
}

/// A response Sluice could not encode. Always a bug on our side: a handler filled a field the
/// negotiated version does not have, or asked for a version we never advertised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// kafka-protocol refused the body or header, typically "A field is set that is not
    /// available on the selected protocol version" (trap 4 of the compatibility notes).
    #[error("encoding {api_key:?} v{version} response: {reason}")]
    Body {
        /// The response's API.
        api_key: ApiKey,
        /// The version asked for.
        version: i16,
        /// The encoder's error chain.
        reason: String,
    },
    /// Sluice does not encode this API at this version.
    #[error("{api_key:?} v{version} is not a response version Sluice encodes")]
    UnsupportedVersion {
        /// The response's API.
        api_key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The response (or one of its length-prefixed parts) does not fit its size field.
    #[error(transparent)]
    Frame(#[from] FrameError),
}
