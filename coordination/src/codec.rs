//! Typed values in a versioned envelope: `[format version: u16 big-endian][bincode body]`.
//!
//! bincode has no field tags: adding a field to a struct changes its encoding, so every
//! stored struct carries the format version it was written with, and its decoder keeps
//! reading every earlier version (decode the old struct, convert). Checked-in fixtures of
//! each earlier version (`tests/fixtures/`) prove it. Decoding is bounded: a value larger
//! than [`MAX_VALUE_BYTES`] is refused before bincode sees it, and bincode's own limit stops
//! a length prefix from sizing an allocation beyond it.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Upper bound on an encoded value (etcd's default request limit is ~1.5 MiB,
/// ZooKeeper's `jute.maxbuffer` ~1 MiB).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

type Config = bincode::config::Configuration<
    bincode::config::BigEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_VALUE_BYTES>,
>;

fn config() -> Config {
    bincode::config::standard()
        .with_big_endian()
        .with_limit::<MAX_VALUE_BYTES>()
}

/// A struct stored in the coordination service.
pub trait Envelope: Sized {
    /// The format version this build writes.
    const VERSION: u16;

    /// Decodes a body written with format `version` (≤ [`Envelope::VERSION`]); older
    /// versions are decoded as they were written and converted.
    fn decode_body(version: u16, body: &[u8]) -> Result<Self>;

    /// Encodes the body in the current format.
    fn encode_body(&self) -> Result<Vec<u8>>;
}

/// Encodes `value` with its format version in front.
pub fn encode<T: Envelope>(value: &T) -> Result<Vec<u8>> {
    let body = value.encode_body()?;
    let mut out = Vec::with_capacity(2 + body.len());
    out.extend_from_slice(&T::VERSION.to_be_bytes());
    out.extend_from_slice(&body);
    if out.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge {
            what: "encoded value",
            size: out.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(out)
}

/// Decodes a value of any version this build knows.
pub fn decode<T: Envelope>(bytes: &[u8]) -> Result<T> {
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge {
            what: "stored value",
            size: bytes.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    let (version, body) = match bytes {
        [a, b, body @ ..] => (u16::from_be_bytes([*a, *b]), body),
        _ => return Err(Error::Codec("value shorter than its version header".into())),
    };
    if version == 0 || version > T::VERSION {
        return Err(Error::Codec(format!(
            "format version {version} is not known to this build (newest: {})",
            T::VERSION
        )));
    }
    T::decode_body(version, body)
}

/// bincode-encodes a serde value (for [`Envelope::encode_body`]).
pub fn to_bincode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| Error::Codec(e.to_string()))
}

/// bincode-decodes a serde value, refusing trailing bytes (for [`Envelope::decode_body`]).
pub fn from_bincode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    let (value, used) = bincode::serde::decode_from_slice(body, config())
        .map_err(|e| Error::Codec(e.to_string()))?;
    if used != body.len() {
        return Err(Error::Codec(format!(
            "{} bytes after the value",
            body.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// A record that gained a field in version 2.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct RecordV1 {
        id: u32,
        name: String,
    }
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Record {
        id: u32,
        name: String,
        rack: Option<String>,
    }
    impl Envelope for Record {
        const VERSION: u16 = 2;
        fn decode_body(version: u16, body: &[u8]) -> Result<Self> {
            match version {
                1 => {
                    let v1: RecordV1 = from_bincode(body)?;
                    Ok(Record {
                        id: v1.id,
                        name: v1.name,
                        rack: None,
                    })
                }
                _ => from_bincode(body),
            }
        }
        fn encode_body(&self) -> Result<Vec<u8>> {
            to_bincode(self)
        }
    }

    #[test]
    fn old_versions_still_decode() {
        let mut v1 = 1u16.to_be_bytes().to_vec();
        v1.extend(
            to_bincode(&RecordV1 {
                id: 7,
                name: "b".into(),
            })
            .expect("encode"),
        );
        let r: Record = decode(&v1).expect("v1 decodes");
        assert_eq!(
            r,
            Record {
                id: 7,
                name: "b".into(),
                rack: None
            }
        );
        let now = Record {
            id: 1,
            name: "x".into(),
            rack: Some("r1".into()),
        };
        assert_eq!(
            decode::<Record>(&encode(&now).expect("encode")).expect("decode"),
            now
        );
    }

    #[test]
    fn unknown_versions_garbage_and_huge_lengths_are_refused() {
        let mut future = 3u16.to_be_bytes().to_vec();
        future.extend([0, 0]);
        assert!(matches!(decode::<Record>(&future), Err(Error::Codec(_))));
        assert!(decode::<Record>(&[0]).is_err());
        // A string claiming 2^60 bytes: refused without allocating it.
        let mut huge = 2u16.to_be_bytes().to_vec();
        huge.push(1);
        huge.push(0xFD); // bincode varint: a u64 follows
        huge.extend((1u64 << 60).to_be_bytes());
        assert!(decode::<Record>(&huge).is_err());
        let mut trailing = encode(&Record {
            id: 1,
            name: "x".into(),
            rack: None,
        })
        .expect("encode");
        trailing.push(0);
        assert!(decode::<Record>(&trailing).is_err());
    }
}
