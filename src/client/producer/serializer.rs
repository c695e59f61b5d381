//! Turning keys and values into bytes: the [`Serializer`] trait and the serializers that come
//! with the client (raw bytes, UTF-8 strings, serde JSON, bincode 2 over serde).

use super::super::error::{ClientError, Result};

/// Serializes a `T` for `topic`. Implement it for your own formats.
pub trait Serializer<T: ?Sized>: Send + Sync {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>>;
}

/// Bytes as they are (`Vec<u8>`, `&[u8]`, `Bytes`, ...).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerializer;

impl<T: AsRef<[u8]> + ?Sized> Serializer<T> for BytesSerializer {
    fn serialize(&self, _topic: &str, value: &T) -> Result<Vec<u8>> {
        Ok(value.as_ref().to_vec())
    }
}

/// UTF-8 text.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;

impl<T: AsRef<str> + ?Sized> Serializer<T> for StringSerializer {
    fn serialize(&self, _topic: &str, value: &T) -> Result<Vec<u8>> {
        Ok(value.as_ref().as_bytes().to_vec())
    }
}

/// JSON through serde.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerializer;

impl<T: serde::Serialize + ?Sized> Serializer<T> for JsonSerializer {
    fn serialize(&self, _topic: &str, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| ClientError::Serialization(e.to_string()))
    }
}

/// bincode 2 (standard configuration) through serde.
#[derive(Debug, Clone, Copy, Default)]
pub struct BincodeSerializer;

impl<T: serde::Serialize + ?Sized> Serializer<T> for BincodeSerializer {
    fn serialize(&self, _topic: &str, value: &T) -> Result<Vec<u8>> {
        bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| ClientError::Serialization(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Order {
        id: u32,
        customer: String,
    }

    #[test]
    fn each_serializer_writes_its_format() {
        assert_eq!(
            BytesSerializer.serialize("t", &b"\x00\x01"[..]).unwrap(),
            [0, 1]
        );
        assert_eq!(
            StringSerializer.serialize("t", "héllo").unwrap(),
            "héllo".as_bytes()
        );
        let order = Order {
            id: 7,
            customer: "acme".into(),
        };
        assert_eq!(
            JsonSerializer.serialize("t", &order).unwrap(),
            br#"{"id":7,"customer":"acme"}"#
        );
        let bytes = BincodeSerializer.serialize("t", &order).unwrap();
        let (back, _): (Order, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, order);
    }
}
